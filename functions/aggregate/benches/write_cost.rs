//! Write cost of the aggregate function vs a naive per-event writer, on the same events.
//!
//! Reference mix: 1,000 orders/min for 10 minutes, 200 products (Zipf-like popularity),
//! 500 customers, 90% processed / 10% failed, 5% of processed orders cancelled; stream
//! batches of 500 records. Both writers run against an in-memory table that charges what
//! DynamoDB charges: one write request per call, and ceil(max(item size before, after) / 1 KB)
//! write units, with item size computed by DynamoDB's rules (attribute names + values).
//!
//! The naive writer updates every bucket × dimension per event (a totals item, one item per
//! product, one customer-set item per bucket) and has no deduplication at all; ours includes
//! its event claims. Run: `cargo bench -p aggregate --bench write_cost`.

use aggregate::Aggregator;
use async_trait::async_trait;
use aws_lambda_events::event::kinesis::KinesisEvent;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use orders_core::analytics::{Bucket, CounterItem, Effect, Fold, Granularity, ItemDelta};
use orders_core::distinct::{EXACT_LIMIT, Registers, ShardSet};
use orders_core::memory::FixedClock;
use orders_core::order::NewLineItem;
use orders_core::ports::{AnalyticsStore, CountersApplied, DeadLetter, DeadLetterQueue};
use orders_core::{
    Currency, CustomerId, EventEnvelope, EventId, FailureReason, Money, Order, OrderError,
    OrderEvent, OrderId, OrderStatus, PlaceOrder, ProductId, Quantity, Timestamp, sequence,
};
use serde_json::json;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// An attribute value as DynamoDB sizes it.
#[derive(Clone)]
enum Value {
    Number(i64),
    Text(String),
    TextSet(BTreeSet<String>),
    Bytes(Vec<u8>),
}

impl Value {
    fn size(&self) -> usize {
        match self {
            // DynamoDB: ~1 byte per two significant digits, plus one.
            Value::Number(n) => n.unsigned_abs().to_string().len().div_ceil(2) + 1,
            Value::Text(s) => s.len(),
            Value::TextSet(set) => set.iter().map(String::len).sum(),
            Value::Bytes(bytes) => bytes.len(),
        }
    }
}

type Attributes = BTreeMap<String, Value>;

/// A table that bills like DynamoDB.
#[derive(Default)]
struct Billing {
    items: HashMap<String, Attributes>,
    requests: u64,
    units: u64,
}

fn size(key: &str, item: &Attributes) -> usize {
    // The key attribute (`pk`) is part of the item.
    2 + key.len()
        + item
            .iter()
            .map(|(name, value)| name.len() + value.size())
            .sum::<usize>()
}

impl Billing {
    /// Applies `change` to the item at `key` and bills the write.
    fn write(&mut self, key: &str, change: impl FnOnce(&mut Attributes)) {
        let item = self.items.entry(key.to_owned()).or_default();
        let before = size(key, item);
        change(item);
        let after = size(key, item);
        self.requests += 1;
        self.units += before.max(after).div_ceil(1024).max(1) as u64;
    }
}

fn add_numbers(item: &mut Attributes, delta: &ItemDelta) {
    for (name, n) in delta.attributes() {
        match item.entry(name).or_insert(Value::Number(0)) {
            Value::Number(v) => *v += n,
            _ => unreachable!("counters are numbers"),
        }
    }
}

/// The adapter's bound on a counter item's size (`itemBytes`, see `orders_aws::dynamo::chain`):
/// grown by every attribute a write adds, counted at its largest. One writer here, so each
/// attribute is counted once; the item stays far under the cap, so it is never sealed.
fn track_size(item: &mut Attributes, shard: &str, delta: &ItemDelta) {
    let mut grows: usize = 0;
    if item.is_empty() {
        grows += 64; // its key, `itemBytes` and room for `sealed`
    }
    let watermark = format!("wm#{shard}");
    if !item.contains_key(&watermark) {
        grows += watermark.len() + 64;
    }
    for (name, _) in delta.attributes() {
        if !item.contains_key(&name) {
            grows += name.len() + 21;
        }
    }
    match item.entry("itemBytes".into()).or_insert(Value::Number(0)) {
        Value::Number(v) => *v += i64::try_from(grows).unwrap_or(i64::MAX),
        _ => unreachable!("itemBytes is a number"),
    }
}

fn add_customers(item: &mut Attributes, ids: impl IntoIterator<Item = String>) {
    match item
        .entry("customers".into())
        .or_insert(Value::TextSet(BTreeSet::new()))
    {
        Value::TextSet(set) => set.extend(ids),
        _ => unreachable!("customers are a set"),
    }
}

/// Our store, in memory, with the DynamoDB adapter's conditions and DynamoDB's billing.
#[derive(Clone, Default)]
struct Ours(Arc<Mutex<Billing>>);

fn item_key(item: &CounterItem) -> String {
    format!("{}/{}", item.bucket(), item.sort_key())
}

fn watermark(billing: &Billing, key: &str, shard: &str) -> Option<String> {
    match billing.items.get(key)?.get(&format!("wm#{shard}"))? {
        Value::Text(w) => Some(w.clone()),
        _ => None,
    }
}

#[async_trait]
impl AnalyticsStore for Ours {
    async fn claim_events(
        &self,
        order_id: &OrderId,
        claims: &[(EventId, String)],
    ) -> Result<Vec<bool>, OrderError> {
        let mut billing = self.0.lock().unwrap();
        let mut owned = Vec::with_capacity(claims.len());
        billing.write(&format!("claim/{order_id}"), |item| {
            item.insert("expiresAt".into(), Value::Number(1_800_000_000));
            for (event_id, position) in claims {
                let stored = item
                    .entry(format!("e#{event_id}"))
                    .or_insert_with(|| Value::Text(position.clone()));
                owned.push(matches!(stored, Value::Text(p) if p == position));
            }
        });
        Ok(owned)
    }

    async fn add_counters(
        &self,
        item: &CounterItem,
        shard: &str,
        first: &str,
        last: &str,
        delta: &ItemDelta,
    ) -> Result<CountersApplied, OrderError> {
        let mut billing = self.0.lock().unwrap();
        let key = item_key(item);
        if let Some(w) = watermark(&billing, &key, shard)
            && sequence::compare(&w, first) != Ordering::Less
        {
            billing.requests += 1;
            billing.units += 1;
            return Ok(CountersApplied::Behind(w));
        }
        billing.write(&key, |i| {
            track_size(i, shard, delta);
            i.insert(format!("wm#{shard}"), Value::Text(sequence::pad(last)));
            add_numbers(i, delta);
        });
        Ok(CountersApplied::Done)
    }

    async fn add_counters_after(
        &self,
        item: &CounterItem,
        shard: &str,
        watermark_was: &str,
        last: &str,
        delta: &ItemDelta,
    ) -> Result<bool, OrderError> {
        let mut billing = self.0.lock().unwrap();
        let key = item_key(item);
        if watermark(&billing, &key, shard).as_deref() != Some(watermark_was) {
            return Ok(false);
        }
        billing.write(&key, |i| {
            track_size(i, shard, delta);
            i.insert(format!("wm#{shard}"), Value::Text(sequence::pad(last)));
            add_numbers(i, delta);
        });
        Ok(true)
    }

    async fn add_customers(
        &self,
        bucket: &Bucket,
        shard: u32,
        customers: &BTreeSet<CustomerId>,
    ) -> Result<(), OrderError> {
        let mut billing = self.0.lock().unwrap();
        let key = format!("{bucket}/customers#{shard:02}");
        let before = match billing.items.get(&key).and_then(|i| i.get("customers")) {
            Some(Value::TextSet(ids)) => ShardSet::Exact(
                ids.iter()
                    .map(|id| CustomerId::parse(id).unwrap())
                    .collect(),
            ),
            Some(Value::Bytes(bytes)) => ShardSet::Sketch(Registers::from_bytes(bytes).unwrap()),
            _ => ShardSet::default(),
        };
        let after = before.bounded_union(customers);
        // The adapter's requests: one ADD while an exact set has room for the batch's ids;
        // else a rewrite in the bounded form, after a refused ADD if the set was exact.
        if let ShardSet::Exact(ids) = &before
            && customers.len() <= EXACT_LIMIT
        {
            if ids.len() + customers.len() <= EXACT_LIMIT {
                billing.write(&key, |i| {
                    add_customers(i, customers.iter().map(|c| c.to_string()))
                });
                return Ok(());
            }
            billing.write(&key, |_| {});
        }
        if after != before {
            billing.write(&key, |i| {
                let value = match &after {
                    ShardSet::Exact(ids) => {
                        Value::TextSet(ids.iter().map(|c| c.to_string()).collect())
                    }
                    ShardSet::Sketch(r) => Value::Bytes(r.as_bytes().to_vec()),
                };
                i.insert("customers".into(), value);
            });
        }
        Ok(())
    }
}

struct NoDeadLetters;

#[async_trait]
impl DeadLetterQueue for NoDeadLetters {
    async fn send(&self, _: &DeadLetter) -> Result<(), OrderError> {
        unreachable!("the reference mix has no poison")
    }
}

/// The naive writer: every bucket × dimension, per event, no batching, no dedup.
fn naive(billing: &mut Billing, events: &[EventEnvelope]) {
    for event in events {
        let effect = Effect::of(event);
        for granularity in Granularity::ALL {
            let bucket = Bucket::containing(granularity, effect.created_at);
            if !effect.totals.is_zero() {
                let delta = ItemDelta {
                    totals: effect.totals,
                    products: BTreeMap::new(),
                };
                billing.write(&format!("{bucket}/totals"), |i| add_numbers(i, &delta));
            }
            for (product, p) in &effect.products {
                let delta = ItemDelta {
                    totals: Default::default(),
                    products: BTreeMap::from([(product.clone(), *p)]),
                };
                billing.write(&format!("{bucket}/product/{product}"), |i| {
                    add_numbers(i, &delta)
                });
            }
            if let Some(customer) = &effect.customer {
                billing.write(&format!("{bucket}/customers"), |i| {
                    add_customers(i, [customer.to_string()])
                });
            }
        }
    }
}

/// xorshift: a reproducible mix.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Zipf-like: product k chosen with weight ~1/(k+1).
    fn zipf(&mut self, n: u64) -> u64 {
        let u = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        ((n as f64 + 1.0).powf(u) - 1.0).floor().min(n as f64 - 1.0) as u64
    }
}

fn reference_mix(orders: usize) -> Vec<EventEnvelope> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let start = Timestamp::parse("2026-11-21T10:00:00Z").unwrap();
    // Events in stream order: each order's follow-up events land a few seconds later.
    let mut timeline: Vec<(i64, EventEnvelope)> = Vec::new();
    for i in 0..orders {
        let at_ms = (i as i64) * 60_000 / 1_000; // 1,000 orders per minute
        let created = Timestamp::from_unix_millis(start.unix_millis() + at_ms).unwrap();
        let mut products = BTreeSet::new();
        for _ in 0..1 + rng.below(3) {
            products.insert(rng.zipf(200));
        }
        let command = PlaceOrder {
            customer_id: CustomerId::parse(&format!("customer-{}", rng.below(500))).unwrap(),
            currency: Currency::parse("USD").unwrap(),
            items: products
                .into_iter()
                .map(|p| NewLineItem {
                    product_id: ProductId::parse(&format!("sku-{p:04}")).unwrap(),
                    quantity: Quantity::new(1 + rng.below(3) as u32).unwrap(),
                    unit_price: Money::from_minor(500 + 37 * p as i64).unwrap(),
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
        let later = created.plus_seconds(1);
        timeline.push((at_ms, EventEnvelope::new(OrderEvent::placed(order.clone()))));
        if rng.below(10) == 0 {
            let failed = order.fail(FailureReason::OutOfStock, later).unwrap();
            timeline.push((
                at_ms + 1_000,
                EventEnvelope::new(OrderEvent::for_current_state(&failed)),
            ));
        } else {
            let processed = order.transition(OrderStatus::Processed, later).unwrap();
            timeline.push((
                at_ms + 1_000,
                EventEnvelope::new(OrderEvent::for_current_state(&processed)),
            ));
            if rng.below(20) == 0 {
                let cancelled = processed
                    .transition(OrderStatus::Cancelled, later.plus_seconds(30))
                    .unwrap();
                timeline.push((
                    at_ms + 31_000,
                    EventEnvelope::new(OrderEvent::for_current_state(&cancelled)),
                ));
            }
        }
    }
    timeline.sort_by_key(|(t, _)| *t);
    timeline.into_iter().map(|(_, e)| e).collect()
}

fn batch_event(events: &[EventEnvelope], first: usize) -> KinesisEvent {
    let records: Vec<_> = events
        .iter()
        .enumerate()
        .map(|(n, e)| {
            let seq = format!("4959033827149025660855969253836157109592157598913{:07}", first + n);
            json!({
                "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": e.partition_key(), "sequenceNumber": seq,
                            "data": STANDARD.encode(e.to_json()), "approximateArrivalTimestamp": 1.0},
                "eventSource": "aws:kinesis", "eventVersion": "1.0",
                "eventID": format!("shardId-000000000000:{seq}"), "eventName": "aws:kinesis:record",
                "awsRegion": "us-east-1", "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/s"
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

fn main() {
    const ORDERS: usize = 10_000;
    const BATCH: usize = 500;
    let events = reference_mix(ORDERS);

    let ours = Ours::default();
    let aggregator = Aggregator {
        store: ours.clone(),
        dead_letters: NoDeadLetters,
        clock: Arc::new(FixedClock(Timestamp::now())),
        function_name: "aggregate".into(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for (i, batch) in events.chunks(BATCH).enumerate() {
            let response = aggregator.handle(batch_event(batch, i * BATCH)).await;
            assert!(response.batch_item_failures.is_empty());
        }
    });

    // Exactness check: the stored totals equal the fold of the events.
    let mut fold = Fold::default();
    for event in &events {
        fold.add(&Effect::of(event));
    }
    let billing = ours.0.lock().unwrap();
    for (item, delta) in &fold.counters {
        let stored = billing
            .items
            .get(&item_key(item))
            .cloned()
            .unwrap_or_default();
        for (name, n) in delta.attributes() {
            match stored.get(&name) {
                Some(Value::Number(v)) => assert_eq!(*v, n, "{item:?} {name}"),
                _ => panic!("{item:?} lacks {name}"),
            }
        }
    }

    let mut naive_billing = Billing::default();
    naive(&mut naive_billing, &events);

    let per_k = |x: u64| x as f64 * 1000.0 / ORDERS as f64;
    println!(
        "write cost per 1,000 orders ({} orders, {} events, batches of {BATCH})",
        ORDERS,
        events.len()
    );
    println!("| writer | write requests | write units |");
    println!("|---|---:|---:|");
    println!(
        "| naive (every bucket × dimension per event, no dedup) | {:.0} | {:.0} |",
        per_k(naive_billing.requests),
        per_k(naive_billing.units)
    );
    println!(
        "| aggregate (batched, watermarks, event claims) | {:.0} | {:.0} |",
        per_k(billing.requests),
        per_k(billing.units)
    );
    println!(
        "ratio: {:.1}x fewer write requests, {:.1}x fewer write units; totals exact",
        naive_billing.requests as f64 / billing.requests as f64,
        naive_billing.units as f64 / billing.units as f64
    );
}
