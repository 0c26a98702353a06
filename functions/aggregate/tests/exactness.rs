//! Property: for random order histories spread over shards — retried orders among them,
//! some re-priced by their retry — with producer duplicates,
//! events the outbox relay publishes late (after a crash between an order's write and its
//! publish) or a second time, redelivered batches, bisected halves, write failures mid-batch
//! followed by retries, and a rebuild from the orders table in the middle of it all, the
//! stored aggregates equal a straightforward fold over the unique events. The relay is
//! upgraded mid-stream: each shard's records up to a point are `OrderPlaced` version 1 as
//! the old relay wrote it, the rest version 2 — so a change published by the old relay and
//! again by the new one arrives as both versions, with one event id.
//!
//! The store here is in memory but keeps the DynamoDB adapter's conditional semantics
//! (watermark per shard on each item, first-occurrence claims, idempotent customer sets),
//! and can fail writes on demand.

use aggregate::Aggregator;
use async_trait::async_trait;
use aws_lambda_events::event::kinesis::KinesisEvent;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use orders_core::analytics::{Bucket, CounterItem, Effect, Fold, ItemDelta};
use orders_core::memory::FixedClock;
use orders_core::order::NewLineItem;
use orders_core::ports::{AnalyticsStore, CountersApplied, DeadLetter, DeadLetterQueue};
use orders_core::rebuild::{self, StreamOwned};
use orders_core::{
    Currency, CustomerId, EventEnvelope, EventId, FailureReason, Money, Order, OrderError,
    OrderEvent, OrderId, OrderStatus, PlaceOrder, Product, ProductId, Quantity, Timestamp,
    sequence,
};
use orders_tests::event_samples::as_written_by_v1;
use proptest::prelude::*;
use serde_json::json;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct State {
    claims: HashMap<String, String>,
    counters: BTreeMap<CounterItem, (HashMap<String, String>, ItemDelta)>,
    customers: BTreeMap<(Bucket, u32), BTreeSet<CustomerId>>,
    /// Fail the n-th upcoming write (claim, counter or customer) with a transient error.
    fail_writes: usize,
}

#[derive(Default, Clone)]
struct MemoryAnalytics(Arc<Mutex<State>>);

fn add(into: &mut ItemDelta, delta: &ItemDelta) {
    into.totals.add(&delta.totals);
    for (id, p) in &delta.products {
        let entry = into.products.entry(id.clone()).or_default();
        entry.units += p.units;
        entry.revenue += p.revenue;
        entry.orders += p.orders;
    }
}

impl MemoryAnalytics {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap()
    }

    /// What `orders-admin rebuild-aggregates` does, on this store: fold the orders table
    /// (here every order, in its final state: the table is ahead of the stream), claim
    /// every event, and set each item to the rebuild's target under its watermarks.
    fn rebuild(&self, orders: &[Order]) {
        let mut state = self.state();
        let mut fold = Fold::default();
        let mut owned = Vec::new();
        for order in orders {
            // The real rebuild reads orders from the byCreated index, which does not carry
            // `retries`: the history must come from the version.
            let mut order = order.clone();
            order.retries = 0;
            order.retried_at = None;
            let order = &order;
            fold.add_order(order);
            for event in OrderEvent::history(order).unwrap() {
                let owner = state
                    .claims
                    .entry(event.event_id.to_string())
                    .or_insert_with(|| "rebuild".to_owned())
                    .clone();
                if owner != "rebuild" {
                    owned.extend(StreamOwned::at(&event, &owner));
                }
            }
        }
        // The real rebuild reads every counter item of a bucket, stored or not: an item
        // only a stream-owned event touches (an order cancelled since, whose products the
        // stream has yet to count) must be set below zero now, ready for that count.
        let items: BTreeSet<CounterItem> = state
            .counters
            .keys()
            .chain(fold.counters.keys())
            .chain(owned.iter().flat_map(|o| o.counters.keys()))
            .cloned()
            .collect();
        for item in items {
            let (watermarks, total) = state.counters.entry(item.clone()).or_default();
            let watermarks: BTreeMap<String, String> = watermarks
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            *total = rebuild::target(&item, &fold, &watermarks, &owned);
        }
        for (key, ids) in fold.customers {
            state.customers.entry(key).or_default().extend(ids);
        }
    }

    /// Fails the `fail_writes`-th write from now, once: a failure after some of the batch's
    /// writes landed (claims first, then counter items and sets), as a throttled table does.
    fn injected_failure(state: &mut State) -> Result<(), OrderError> {
        match state.fail_writes {
            0 => Ok(()),
            1 => {
                state.fail_writes = 0;
                Err(OrderError::Throttled("injected write failure".into()))
            }
            _ => {
                state.fail_writes -= 1;
                Ok(())
            }
        }
    }
}

#[async_trait]
impl AnalyticsStore for MemoryAnalytics {
    async fn claim_events(
        &self,
        _order: &OrderId,
        claims: &[(EventId, String)],
    ) -> Result<Vec<bool>, OrderError> {
        let mut state = self.state();
        Self::injected_failure(&mut state)?;
        Ok(claims
            .iter()
            .map(|(event_id, position)| {
                let owner = state
                    .claims
                    .entry(event_id.to_string())
                    .or_insert_with(|| position.clone());
                owner == position
            })
            .collect())
    }

    async fn add_counters(
        &self,
        item: &CounterItem,
        shard: &str,
        first: &str,
        last: &str,
        delta: &ItemDelta,
    ) -> Result<CountersApplied, OrderError> {
        let mut state = self.state();
        Self::injected_failure(&mut state)?;
        let (watermarks, total) = state.counters.entry(item.clone()).or_default();
        if let Some(w) = watermarks.get(shard)
            && sequence::compare(w, first) != Ordering::Less
        {
            return Ok(CountersApplied::Behind(w.clone()));
        }
        watermarks.insert(shard.to_owned(), last.to_owned());
        add(total, delta);
        Ok(CountersApplied::Done)
    }

    async fn add_counters_after(
        &self,
        item: &CounterItem,
        shard: &str,
        watermark: &str,
        last: &str,
        delta: &ItemDelta,
    ) -> Result<bool, OrderError> {
        let mut state = self.state();
        Self::injected_failure(&mut state)?;
        let (watermarks, total) = state.counters.entry(item.clone()).or_default();
        if watermarks.get(shard).map(String::as_str) != Some(watermark) {
            return Ok(false);
        }
        watermarks.insert(shard.to_owned(), last.to_owned());
        add(total, delta);
        Ok(true)
    }

    async fn add_customers(
        &self,
        bucket: &Bucket,
        shard: u32,
        customers: &BTreeSet<CustomerId>,
    ) -> Result<(), OrderError> {
        let mut state = self.state();
        Self::injected_failure(&mut state)?;
        state
            .customers
            .entry((*bucket, shard))
            .or_default()
            .extend(customers.iter().cloned());
        Ok(())
    }
}

struct NoDeadLetters;

#[async_trait]
impl DeadLetterQueue for NoDeadLetters {
    async fn send(&self, letter: &DeadLetter) -> Result<(), OrderError> {
        panic!("no record here is poison: {letter:?}");
    }
}

/// What happens to one generated order.
#[derive(Debug, Clone)]
struct History {
    minute: i64,
    customer: u8,
    lines: Vec<(u8, u32, i64)>,
    /// Failed and retried this often first; the failures alternate between price_changed
    /// (the retry re-prices the lines) and out_of_stock.
    retries: u8,
    /// Then: 0 pending, 1 processed, 2 failed, 3 processed+cancelled, 4 cancelled while
    /// pending, 5 shipped, 6 delivered.
    path: u8,
    shard: u8,
}

fn history() -> impl Strategy<Value = History> {
    (
        0i64..150,
        0u8..6,
        prop::collection::btree_map(0u8..8, (1u32..5, 0i64..5000), 1..4),
        prop_oneof![2 => Just(0u8), 1 => 1u8..4],
        0u8..7,
        0u8..3,
    )
        .prop_map(|(minute, customer, lines, retries, path, shard)| History {
            minute,
            customer,
            lines: lines
                .into_iter()
                .map(|(p, (q, price))| (p, q, price))
                .collect(),
            retries,
            path,
            shard,
        })
}

fn events_of(index: usize, h: &History) -> Vec<EventEnvelope> {
    // 23:00 plus up to 150 minutes: crosses an hour and a day boundary.
    let created = Timestamp::parse("2026-11-21T23:00:00Z")
        .unwrap()
        .plus_seconds(h.minute * 60 + 7);
    let command = PlaceOrder {
        customer_id: CustomerId::parse(&format!("c-{}", h.customer)).unwrap(),
        currency: Currency::parse("USD").unwrap(),
        items: h
            .lines
            .iter()
            .map(|(p, q, price)| NewLineItem {
                product_id: ProductId::parse(&format!("sku-{p}")).unwrap(),
                quantity: Quantity::new(*q).unwrap(),
                unit_price: Money::from_minor(*price).unwrap(),
            })
            .collect(),
    };
    let placed = Order::place(
        OrderId::new(ulid::Ulid::from_parts(
            created.unix_millis() as u64,
            index as u128,
        )),
        &command,
        created,
    );
    let later = created.plus_seconds(30);
    let mut orders = vec![placed.clone()];
    let mut placed = placed;
    for attempt in 0..h.retries {
        let reason = if attempt % 2 == 0 {
            FailureReason::PriceChanged
        } else {
            FailureReason::OutOfStock
        };
        let failed = placed.fail(reason, later).unwrap();
        // The catalog when the customer retries: every price moved since the last attempt.
        let catalog: Vec<Product> = h
            .lines
            .iter()
            .map(|(p, _, price)| Product {
                product_id: ProductId::parse(&format!("sku-{p}")).unwrap(),
                name: format!("sku-{p}"),
                price: Money::from_minor(price + 17 * i64::from(attempt + 1)).unwrap(),
                stock: 0,
                version: 1,
                updated_at: later,
            })
            .collect();
        placed = failed.retry(&catalog, later).unwrap();
        orders.push(failed);
        orders.push(placed.clone());
    }
    let step = |o: &Order, s: OrderStatus| o.transition(s, later).unwrap();
    match h.path {
        1 => orders.push(step(&placed, OrderStatus::Processed)),
        2 => orders.push(placed.fail(FailureReason::OutOfStock, later).unwrap()),
        3 => {
            let p = step(&placed, OrderStatus::Processed);
            orders.push(p.clone());
            orders.push(step(&p, OrderStatus::Cancelled));
        }
        4 => orders.push(step(&placed, OrderStatus::Cancelled)),
        5 | 6 => {
            let p = step(&placed, OrderStatus::Processed);
            let s = step(&p, OrderStatus::Shipped);
            orders.push(p);
            orders.push(s.clone());
            if h.path == 6 {
                orders.push(step(&s, OrderStatus::Delivered));
            }
        }
        _ => {}
    }
    orders
        .iter()
        .map(|o| EventEnvelope::new(OrderEvent::for_current_state(o)))
        .collect()
}

/// One simulated delivery action on a shard.
#[derive(Debug, Clone)]
enum Action {
    /// Deliver the next `n` records; fail the `k`-th write of the batch first (0 = none).
    Next { n: usize, fail: usize },
    /// Redeliver an earlier range (a repeated batch, or a bisected half).
    Again { back: usize, n: usize },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (1usize..9, prop_oneof![3 => Just(0usize), 1 => 1usize..4, 1 => 4usize..24]).prop_map(|(n, fail)| Action::Next { n, fail }),
        1 => (1usize..12, 1usize..9).prop_map(|(back, n)| Action::Again { back, n }),
    ]
}

struct Record {
    shard: String,
    sequence: String,
    data: Vec<u8>,
}

fn kinesis_event(records: &[Record]) -> KinesisEvent {
    let records: Vec<_> = records
        .iter()
        .map(|r| {
            json!({
                "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "k", "sequenceNumber": r.sequence,
                            "data": STANDARD.encode(&r.data), "approximateArrivalTimestamp": 1.0},
                "eventSource": "aws:kinesis", "eventVersion": "1.0",
                "eventID": format!("{}:{}", r.shard, r.sequence), "eventName": "aws:kinesis:record",
                "awsRegion": "us-east-1", "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/s"
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

fn normalise(
    counters: impl IntoIterator<Item = (CounterItem, ItemDelta)>,
) -> BTreeMap<CounterItem, ItemDelta> {
    counters
        .into_iter()
        .map(|(k, mut d)| {
            d.products.retain(|_, p| *p != Default::default());
            (k, d)
        })
        .filter(|(_, d)| !d.is_zero())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn stored_aggregates_equal_the_fold_of_unique_events(
        histories in prop::collection::vec(history(), 1..25),
        fates in prop::collection::vec(0u8..4, 25),
        delays in prop::collection::vec(0usize..30, 25),
        actions in prop::collection::vec(action(), 40..120),
        shard_picks in prop::collection::vec(0u8..3, 120),
        rebuild_before in prop::option::of(0usize..120),
        upgraded_at in prop::collection::vec(0usize..60, 3),
    ) {
        // Build each shard's stream: orders' events in order; some published twice by the
        // producer (right after), some by the relay `delay` events later as well, or only
        // then (the process died between writing the order and publishing).
        let mut shards: Vec<Vec<(usize, EventEnvelope)>> = vec![Vec::new(); 3];
        let mut unique: Vec<EventEnvelope> = Vec::new();
        let mut orders: Vec<Order> = Vec::new();
        for (i, h) in histories.iter().enumerate() {
            let events = events_of(i, h);
            orders.push(events.last().unwrap().event.order().clone());
            for (j, event) in events.into_iter().enumerate() {
                let stream = &mut shards[h.shard as usize];
                let at = stream.len() * 100;
                let pick = (i * 7 + j) % fates.len();
                let later = at + delays[pick] * 100 + 50;
                match fates[pick] {
                    0 => stream.push((at, event.clone())),
                    1 => stream.extend([(at, event.clone()), (at + 1, event.clone())]),
                    2 => stream.extend([(at, event.clone()), (later, event.clone())]),
                    _ => stream.push((later, event.clone())),
                }
                unique.push(event);
            }
        }
        let shards: Vec<Vec<EventEnvelope>> = shards
            .into_iter()
            .map(|mut stream| {
                stream.sort_by_key(|(at, _)| *at);
                stream.into_iter().map(|(_, e)| e).collect()
            })
            .collect();
        let streams: Vec<Vec<Record>> = shards
            .into_iter()
            .enumerate()
            .map(|(s, events)| {
                events
                    .into_iter()
                    .enumerate()
                    .map(|(n, e)| Record {
                        shard: format!("shardId-00000000000{s}"),
                        sequence: format!("4959033827149025660855969253836157109592157598913{:07}", n * 3 + 1),
                        data: if n < upgraded_at[s] { as_written_by_v1(&e) } else { e.to_json() },
                    })
                    .collect()
            })
            .collect();

        let store = MemoryAnalytics::default();
        let aggregator = Aggregator {
            store: store.clone(),
            dead_letters: NoDeadLetters,
            clock: Arc::new(FixedClock(Timestamp::now())),
            function_name: "aggregate".into(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let mut cursors = [0usize; 3];
            let mut picks = shard_picks.iter().cycle();
            let step = |shard: usize, range: std::ops::Range<usize>, fail: usize| {
                let batch = &streams[shard][range.clone()];
                store.state().fail_writes = fail;
                let response = futures::executor::block_on(aggregator.handle(kinesis_event(batch)));
                store.state().fail_writes = 0;
                // Lambda resumes from the reported record, or after the batch.
                match response.batch_item_failures.first().and_then(|f| f.item_identifier.clone()) {
                    Some(seq) => range.start + batch.iter().position(|r| r.sequence == seq).unwrap(),
                    None => range.end,
                }
            };
            for (n, action) in actions.iter().enumerate() {
                if rebuild_before == Some(n) {
                    store.rebuild(&orders);
                }
                let shard = *picks.next().unwrap() as usize;
                let len = streams[shard].len();
                match action {
                    Action::Next { n, fail } if cursors[shard] < len => {
                        let end = (cursors[shard] + n).min(len);
                        cursors[shard] = step(shard, cursors[shard]..end, *fail);
                    }
                    Action::Again { back, n } if cursors[shard] > 0 => {
                        let start = cursors[shard].saturating_sub(*back);
                        let end = (start + n).min(cursors[shard]);
                        step(shard, start..end, 0);
                    }
                    _ => {}
                }
            }
            // Drain: Lambda keeps going until every shard is consumed.
            for (shard, cursor) in cursors.iter_mut().enumerate() {
                while *cursor < streams[shard].len() {
                    let end = (*cursor + 10).min(streams[shard].len());
                    *cursor = step(shard, *cursor..end, 0);
                }
            }
        });

        let mut reference = Fold::default();
        for event in &unique {
            reference.add(&Effect::of(event));
        }
        let state = store.state();
        let stored = normalise(state.counters.iter().map(|(k, (_, d))| (k.clone(), d.clone())));
        prop_assert_eq!(stored, normalise(reference.counters));
        prop_assert_eq!(&state.customers, &reference.customers);
    }
}

/// The deploy of `OrderPlaced` version 2, on one shard: the old relay published an order's
/// placement as version 1, the new one publishes it again as version 2 (a publish retried
/// across the deploy), and a batch of the old records is redelivered after that. The two
/// versions carry one event id, so the claims count the placement once.
#[test]
fn a_placement_published_as_v1_and_again_as_v2_counts_once() {
    let at = Timestamp::parse("2026-12-07T09:58:00.250Z").unwrap();
    let order = |n: u128, customer: &str| {
        Order::place(
            OrderId::new(ulid::Ulid::from_parts(at.unix_millis() as u64, n)),
            &PlaceOrder {
                customer_id: CustomerId::parse(customer).unwrap(),
                currency: Currency::parse("USD").unwrap(),
                items: vec![
                    NewLineItem {
                        product_id: ProductId::parse("sku-1").unwrap(),
                        quantity: Quantity::new(2).unwrap(),
                        unit_price: Money::from_minor(1999).unwrap(),
                    },
                    NewLineItem {
                        product_id: ProductId::parse("sku-2").unwrap(),
                        quantity: Quantity::new(1).unwrap(),
                        unit_price: Money::from_minor(500).unwrap(),
                    },
                ],
            },
            at,
        )
    };
    let (a, b) = (order(1, "c-1"), order(2, "c-2"));
    let later = at.plus_seconds(5);
    let a_processed = a.transition(OrderStatus::Processed, later).unwrap();
    let b_processed = b.transition(OrderStatus::Processed, later).unwrap();
    let event = |o: &Order| EventEnvelope::new(OrderEvent::for_current_state(o));
    let (a_placed, b_placed) = (event(&a), event(&b));
    let unique = [
        a_placed.clone(),
        b_placed.clone(),
        event(&a_processed),
        event(&b_processed),
    ];
    let v1 = as_written_by_v1;
    let v2 = EventEnvelope::to_json;
    let data = [
        v1(&a_placed),
        v1(&b_placed),
        v2(&a_placed), // the new relay publishes a's placement again
        v2(&unique[2]),
        v1(&a_placed), // the old records, redelivered
        v1(&b_placed),
        v2(&b_placed),
        v2(&unique[3]),
    ];
    // What makes them duplicates: one id, read as one event.
    for (old, new) in [(&data[0], &a_placed), (&data[1], &b_placed)] {
        let old: serde_json::Value = serde_json::from_slice(old).unwrap();
        assert_eq!(
            (&old["schemaVersion"], &old["eventId"]),
            (&json!(1), &json!(new.event_id))
        );
        assert_eq!(
            EventEnvelope::decode(&serde_json::to_vec(&old).unwrap()),
            Ok(orders_core::Decoded::Event(Box::new(new.clone())))
        );
    }
    let records: Vec<Record> = data
        .into_iter()
        .enumerate()
        .map(|(n, data)| Record {
            shard: "shardId-000000000000".into(),
            sequence: format!(
                "4959033827149025660855969253836157109592157598913{:07}",
                n * 3 + 1
            ),
            data,
        })
        .collect();
    let store = MemoryAnalytics::default();
    let aggregator = Aggregator {
        store: store.clone(),
        dead_letters: NoDeadLetters,
        clock: Arc::new(FixedClock(Timestamp::now())),
        function_name: "aggregate".into(),
    };
    for batch in [&records[..3], &records[3..6], &records[6..]] {
        let response = futures::executor::block_on(aggregator.handle(kinesis_event(batch)));
        assert!(response.batch_item_failures.is_empty());
    }
    let mut reference = Fold::default();
    for event in &unique {
        reference.add(&Effect::of(event));
    }
    let state = store.state();
    let stored = normalise(
        state
            .counters
            .iter()
            .map(|(k, (_, d))| (k.clone(), d.clone())),
    );
    assert_eq!(stored, normalise(reference.counters));
    assert_eq!(state.customers, reference.customers);
    let minute = Bucket::containing(orders_core::analytics::Granularity::Minute, at);
    let totals = stored[&CounterItem::Totals(minute)].totals;
    assert_eq!((totals.orders, totals.processed, totals.units), (2, 2, 6));
    assert_eq!(state.claims.len(), unique.len(), "one claim per event id");
}
