//! Domain hot paths: validating a place-order body and encoding/decoding the event.
//!
//! `cargo bench -p orders-core --bench domain`

use criterion::{Criterion, criterion_group, criterion_main};
use orders_core::validation::{MAX_ITEMS, parse_place_order};
use orders_core::{Currency, EventEnvelope, Order, OrderEvent, OrderId, Timestamp};
use serde_json::{Value, json};
use std::hint::black_box;

/// A typical body: two lines, as in the API examples.
fn typical_body() -> Value {
    json!({"customerId":"c-1","items":[
        {"productId":"sku-1","quantity":2,"unitPrice":1999},
        {"productId":"sku-2","quantity":1,"unitPrice":500}
    ],"currency":"USD"})
}

/// The largest body the API accepts: `MAX_ITEMS` distinct lines.
fn large_body() -> Value {
    let items: Vec<Value> = (0..MAX_ITEMS)
        .map(|i| json!({"productId": format!("sku-{i:03}"), "quantity": 1 + i % 7, "unitPrice": 100 + i * 37}))
        .collect();
    json!({"customerId":"customer-42","items":items,"currency":"USD"})
}

fn order_from(body: &Value) -> Order {
    let usd = Currency::parse("USD").unwrap();
    // No catalog here: every line keeps the price it quotes (pricing is a lookup).
    let command = parse_place_order(body, &usd).unwrap().price(&[]).unwrap();
    let now = Timestamp::parse("2026-11-21T10:00:00Z").unwrap();
    Order::place(
        OrderId::new(ulid::Ulid::from_parts(now.unix_millis() as u64, 7)),
        &command,
        now,
    )
}

fn validation(c: &mut Criterion) {
    let usd = Currency::parse("USD").unwrap();
    let mut group = c.benchmark_group("validate");
    for (name, body) in [("typical", typical_body()), ("max-lines", large_body())] {
        let bytes = serde_json::to_vec(&body).unwrap();
        group.bench_function(format!("{name}/value"), |b| {
            b.iter(|| parse_place_order(black_box(&body), &usd).unwrap())
        });
        // What the handler does: bytes -> JSON value -> command.
        group.bench_function(format!("{name}/bytes"), |b| {
            b.iter(|| {
                let value: Value = serde_json::from_slice(black_box(&bytes)).unwrap();
                parse_place_order(&value, &usd).unwrap()
            })
        });
    }
    group.finish();
}

fn events(c: &mut Criterion) {
    let mut group = c.benchmark_group("event");
    for (name, body) in [("typical", typical_body()), ("max-lines", large_body())] {
        let envelope = EventEnvelope::new(OrderEvent::placed(order_from(&body)));
        let encoded = envelope.to_json();
        group.bench_function(format!("{name}/encode"), |b| {
            b.iter(|| black_box(&envelope).to_json())
        });
        group.bench_function(format!("{name}/decode"), |b| {
            b.iter(|| serde_json::from_slice::<EventEnvelope>(black_box(&encoded)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, validation, events);
criterion_main!(benches);
