//! What place-order logs carries no personal data: no customer id, no idempotency key.

mod memory;

use place_order::handler::handle;
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn placing_an_order_logs_neither_the_customer_nor_the_idempotency_key() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let body = json!({"customerId": "alice-private-42", "items": [{"productId": "sku-1", "quantity": 1, "unitPrice": 250}]});
    let request = memory::request(orders_tests::api_event(
        "POST /orders",
        "/orders",
        &[],
        &[("idempotency-key", "secret-key-7f3a")],
        Some(&body.to_string()),
        None,
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let response = runtime.block_on(handle(&memory::app(), request));
    assert_eq!(response.status(), 201);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("order placed"),
        "the test sees the logs: {logs}"
    );
    assert!(!logs.contains("alice-private-42"), "{logs}");
    assert!(!logs.contains("secret-key-7f3a"), "{logs}");
}
