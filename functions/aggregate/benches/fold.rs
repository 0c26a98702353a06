//! CPU throughput of the in-memory fold: decoding a batch's events and collapsing them into
//! per-item deltas, on one core. Run: `cargo bench -p aggregate --bench fold`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use orders_core::analytics::{Effect, Fold};
use orders_core::order::NewLineItem;
use orders_core::{
    Currency, CustomerId, EventEnvelope, Money, Order, OrderEvent, OrderId, OrderStatus,
    PlaceOrder, ProductId, Quantity, Timestamp,
};
use std::hint::black_box;

fn batch(n: usize) -> Vec<Vec<u8>> {
    let start = Timestamp::parse("2026-11-21T10:00:00Z").unwrap();
    (0..n)
        .map(|i| {
            let created = start.plus_seconds(i as i64 / 20);
            let command = PlaceOrder {
                customer_id: CustomerId::parse(&format!("customer-{}", i % 500)).unwrap(),
                currency: Currency::parse("USD").unwrap(),
                items: (0..1 + i % 3)
                    .map(|l| NewLineItem {
                        product_id: ProductId::parse(&format!("sku-{:04}", (i * 7 + l) % 200))
                            .unwrap(),
                        quantity: Quantity::new(1 + l as u32).unwrap(),
                        unit_price: Money::from_minor(999).unwrap(),
                    })
                    .collect(),
            };
            let order = Order::place(
                OrderId::new(ulid::Ulid::from_parts(
                    created.unix_millis() as u64,
                    i as u128,
                )),
                &command,
                created,
            );
            let event = if i % 2 == 0 {
                OrderEvent::placed(order)
            } else {
                OrderEvent::for_current_state(
                    &order.transition(OrderStatus::Processed, created).unwrap(),
                )
            };
            EventEnvelope::new(event).to_json()
        })
        .collect()
}

fn fold(c: &mut Criterion) {
    let records = batch(500);
    let mut group = c.benchmark_group("aggregate_fold");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("decode_and_fold_500_events", |b| {
        b.iter(|| {
            let mut fold = Fold::default();
            for data in &records {
                if let Ok(orders_core::Decoded::Event(envelope)) =
                    EventEnvelope::decode(black_box(data))
                {
                    fold.add(&Effect::of(&envelope));
                }
            }
            black_box(fold)
        })
    });
    let effects: Vec<Effect> = records
        .iter()
        .filter_map(|d| match EventEnvelope::decode(d) {
            Ok(orders_core::Decoded::Event(e)) => Some(Effect::of(&e)),
            _ => None,
        })
        .collect();
    group.bench_function("fold_500_effects", |b| {
        b.iter(|| {
            let mut fold = Fold::default();
            for effect in &effects {
                fold.add(black_box(effect));
            }
            black_box(fold)
        })
    });
    group.finish();
}

criterion_group!(benches, fold);
criterion_main!(benches);
