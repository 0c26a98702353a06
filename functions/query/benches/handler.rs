//! `query::handle` over an in-memory store: the handler's own time for reads, without the
//! DynamoDB round trip. Requests come from the API Gateway v2 fixtures and are built
//! outside the timed loop.
//!
//! `cargo bench -p query --bench handler`

use criterion::{Criterion, criterion_group, criterion_main};
use orders_core::memory::{MemoryAnalytics, MemoryCatalog, MemoryOrderStore, SequentialIds};
use orders_core::order::{NewLineItem, PlaceOrder};
use orders_core::ports::OrderIds;
use orders_core::{Currency, CustomerId, Money, Order, OrderId, ProductId, Quantity, Timestamp};
use query::{QueryService, handle};
use std::hint::black_box;
use std::time::{Duration, Instant};

const GET_ORDER: &str = include_str!("../tests/fixtures/get-order.json");
const LIST_ORDERS: &str = include_str!("../tests/fixtures/list-orders.json");
/// The order id in `get-order.json`.
const FIXTURE_ID: &str = "01JDA3Z6Q7W8X9Y0Z1A2B3C4D5";

type Service = QueryService<MemoryOrderStore, MemoryCatalog, MemoryAnalytics>;

fn order(id: OrderId, customer: &str, lines: u32) -> Order {
    let command = PlaceOrder {
        customer_id: CustomerId::parse(customer).unwrap(),
        currency: Currency::parse("USD").unwrap(),
        items: (0..lines)
            .map(|i| NewLineItem {
                product_id: ProductId::parse(&format!("sku-{i}")).unwrap(),
                quantity: Quantity::new(1 + i % 3).unwrap(),
                unit_price: Money::from_minor(1999 + i64::from(i)).unwrap(),
            })
            .collect(),
    };
    Order::place(
        id,
        &command,
        Timestamp::parse("2026-11-21T10:00:00Z").unwrap(),
    )
}

/// A store holding the fixture's order among 1,000 others.
fn service() -> Service {
    let store = MemoryOrderStore::new();
    let ids = SequentialIds::new();
    let now = Timestamp::parse("2026-11-21T10:00:00Z").unwrap();
    for n in 0..1_000 {
        store.insert(order(ids.next_id(now), &format!("c-{}", n % 50), 2));
    }
    store.insert(order(OrderId::parse(FIXTURE_ID).unwrap(), "c-1", 2));
    QueryService::new(store, MemoryCatalog::new(), MemoryAnalytics::new())
}

fn request(event: &str) -> lambda_http::Request {
    lambda_http::request::from_str(event).expect("a valid API Gateway v2 event")
}

fn time_requests(
    rt: &tokio::runtime::Runtime,
    service: &Service,
    event: &str,
    iters: u64,
) -> Duration {
    let requests: Vec<_> = (0..iters).map(|_| request(event)).collect();
    let start = Instant::now();
    rt.block_on(async {
        for request in requests {
            let response = handle(service, request).await;
            debug_assert_eq!(response.status(), 200);
            black_box(response);
        }
    });
    start.elapsed()
}

fn reads(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let service = service();
    let mut group = c.benchmark_group("query");
    group.bench_function("GET /orders/{id}", |b| {
        b.iter_custom(|iters| time_requests(&rt, &service, GET_ORDER, iters))
    });
    // status=PENDING&limit=2, as in the fixture.
    group.bench_function("GET /orders?status&limit=2", |b| {
        b.iter_custom(|iters| time_requests(&rt, &service, LIST_ORDERS, iters))
    });
    group.bench_function("request/from-event", |b| {
        b.iter(|| request(black_box(GET_ORDER)))
    });
    group.finish();
}

criterion_group!(benches, reads);
criterion_main!(benches);
