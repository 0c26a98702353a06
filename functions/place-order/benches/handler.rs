//! `place_order::handle` end to end — routing, header and body parsing, validation, the
//! use case and the response — over in-memory ports: the handler's own time, without the
//! DynamoDB and Kinesis round trips. Requests are built from the API Gateway v2 fixture
//! outside the timed loop; `request/from-event` times that step (the runtime does it per
//! invocation) on its own.
//!
//! `cargo bench -p place-order --bench handler`

use criterion::{Criterion, criterion_group, criterion_main};
use place_order::handle;
use serde_json::Value;
use std::hint::black_box;
use std::time::{Duration, Instant};

const FIXTURE: &str = include_str!("../tests/fixtures/post-order.json");
const BODY: &str = r#"{"customerId":"c-1","items":[{"productId":"sku-1","quantity":2,"unitPrice":1999},{"productId":"sku-2","quantity":1,"unitPrice":500}],"currency":"USD"}"#;

// The same in-memory app the handler's tests use.
#[path = "../tests/memory/mod.rs"]
#[allow(dead_code)] // the bench needs only the app
mod memory;

type Service = memory::MemoryApp;

fn service() -> Service {
    memory::app()
}

/// Empties the in-memory ports so memory stays flat however many iterations criterion runs.
fn reset(service: &Service) {
    service.place.store.clear();
    service.place.idempotency.clear();
}

/// The fixture event with the typical body and, optionally, an `Idempotency-Key`.
fn event(key: Option<&str>) -> String {
    let mut event: Value = serde_json::from_str(FIXTURE).unwrap();
    event["body"] = Value::String(BODY.to_owned());
    if let Some(key) = key {
        event["headers"]["idempotency-key"] = Value::String(key.to_owned());
    }
    event.to_string()
}

fn request(event: &str) -> lambda_http::Request {
    lambda_http::request::from_str(event).expect("a valid API Gateway v2 event")
}

/// Times `iters` calls of the handler, each with a fresh request built beforehand.
fn run_batch(
    rt: &tokio::runtime::Runtime,
    service: &Service,
    iters: u64,
    key: impl Fn(u64) -> Option<String>,
) -> Duration {
    let requests: Vec<_> = (0..iters)
        .map(|i| request(&event(key(i).as_deref())))
        .collect();
    let start = Instant::now();
    rt.block_on(async {
        for request in requests {
            let response = handle(service, request).await;
            debug_assert_eq!(response.status(), 201);
            black_box(response);
        }
    });
    let elapsed = start.elapsed();
    reset(service);
    elapsed
}

fn post_orders(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let service = service();
    let mut group = c.benchmark_group("place-order");

    group.bench_function("POST /orders", |b| {
        b.iter_custom(|iters| run_batch(&rt, &service, iters, |_| None))
    });

    let mut batch = 0u64;
    group.bench_function("POST /orders + Idempotency-Key", |b| {
        b.iter_custom(|iters| {
            batch += 1;
            run_batch(&rt, &service, iters, |i| Some(format!("key-{batch}-{i}")))
        })
    });

    // The same key and body again: the stored response is replayed, nothing is written.
    group.bench_function("POST /orders replay", |b| {
        b.iter_custom(|iters| {
            let first = rt.block_on(handle(&service, request(&event(Some("replayed")))));
            assert_eq!(first.status(), 201);
            let requests: Vec<_> = (0..iters)
                .map(|_| request(&event(Some("replayed"))))
                .collect();
            let start = Instant::now();
            rt.block_on(async {
                for request in requests {
                    black_box(handle(&service, request).await);
                }
            });
            let elapsed = start.elapsed();
            reset(&service);
            elapsed
        })
    });

    let raw = event(Some("key-1"));
    group.bench_function("request/from-event", |b| {
        b.iter(|| request(black_box(&raw)))
    });
    group.finish();
}

criterion_group!(benches, post_orders);
criterion_main!(benches);
