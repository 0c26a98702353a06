//! Property: for random storefront events over sessions and shards — with producer copies
//! (a client resending a batch, the API putting a record twice), redelivered batches,
//! random batch sizes and transient write failures mid-batch followed by Lambda's retry
//! from the reported record — every bucket the aggregate stores equals one fold of the
//! unique events: counters, per-product counters and distinct sets.
//!
//! The store is `orders_core::memory::MemoryActivity`, which keeps the DynamoDB adapter's
//! conditional semantics (a watermark per shard on each counter item, first-occurrence
//! claims, bounded idempotent set shards); a wrapper fails writes on demand.

use aggregate_activity::ActivityAggregator;
use async_trait::async_trait;
use aws_lambda_events::event::kinesis::KinesisEvent;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use orders_core::activity::{
    ActivityDelta, ActivityEnvelope, ActivityEvent, ActivityFold, ActivityKind, SessionSet,
};
use orders_core::analytics::{Bucket, CounterItem};
use orders_core::memory::{FixedClock, MemoryActivity, MemoryDeadLetters};
use orders_core::ports::{ActivityStore, CountersApplied};
use orders_core::{
    ActivityEventId, CustomerId, OrderError, ProductId, Quantity, SessionId, Timestamp,
};
use proptest::prelude::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// The memory store, failing the next `n` writes (claims, counters, sets) when told to.
#[derive(Clone, Default)]
struct Flaky {
    store: MemoryActivity,
    fail: Arc<Mutex<usize>>,
}

impl Flaky {
    fn injected(&self) -> Result<(), OrderError> {
        let mut fail = self.fail.lock().unwrap();
        if *fail > 0 {
            *fail -= 1;
            return Err(OrderError::Throttled("injected write failure".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl ActivityStore for Flaky {
    async fn claim_activity(
        &self,
        group: &str,
        claims: &[(String, String)],
    ) -> Result<Vec<bool>, OrderError> {
        self.injected()?;
        self.store.claim_activity(group, claims).await
    }

    async fn add_activity(
        &self,
        item: &CounterItem,
        shard: &str,
        first: &str,
        last: &str,
        delta: &ActivityDelta,
    ) -> Result<CountersApplied, OrderError> {
        self.injected()?;
        self.store
            .add_activity(item, shard, first, last, delta)
            .await
    }

    async fn add_activity_after(
        &self,
        item: &CounterItem,
        shard: &str,
        watermark: &str,
        last: &str,
        delta: &ActivityDelta,
    ) -> Result<bool, OrderError> {
        self.injected()?;
        self.store
            .add_activity_after(item, shard, watermark, last, delta)
            .await
    }

    async fn add_sessions(
        &self,
        bucket: &Bucket,
        set: SessionSet,
        shard: u32,
        sessions: &BTreeSet<SessionId>,
    ) -> Result<(), OrderError> {
        self.injected()?;
        self.store.add_sessions(bucket, set, shard, sessions).await
    }

    async fn add_active_customers(
        &self,
        bucket: &Bucket,
        shard: u32,
        customers: &BTreeSet<CustomerId>,
    ) -> Result<(), OrderError> {
        self.injected()?;
        self.store
            .add_active_customers(bucket, shard, customers)
            .await
    }
}

/// One stream record: its shard, sequence number and data.
#[derive(Debug, Clone)]
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
                "awsRegion": "us-east-1", "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/activity"
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

const PRODUCTS: [&str; 5] = ["sku-1", "sku-2", "sku-3", "sku-4", "sku-5"];

/// (session, customer?, kind, seconds after 10:58:30, cart bits)
type Spec = (u8, Option<u8>, u8, u16, u8, u8);

fn event(i: usize, (session, customer, kind, offset, product, cart): Spec) -> ActivityEvent {
    let product_id = ProductId::parse(PRODUCTS[product as usize % PRODUCTS.len()]).unwrap();
    let kind = match kind % 4 {
        0 => ActivityKind::ProductViewed { product_id },
        1 => ActivityKind::AddedToCart {
            product_id,
            quantity: Quantity::new(2).unwrap(),
        },
        2 => ActivityKind::RemovedFromCart {
            product_id,
            quantity: Quantity::new(1).unwrap(),
        },
        _ => ActivityKind::CheckoutStarted {
            cart: PRODUCTS
                .iter()
                .enumerate()
                .filter(|(bit, _)| cart & (1 << bit) != 0)
                .map(|(_, p)| ProductId::parse(p).unwrap())
                .collect(),
        },
    };
    let start = Timestamp::parse("2026-11-22T10:58:30Z").unwrap();
    ActivityEvent {
        event_id: ActivityEventId::parse(&format!("e-{i}")).unwrap(),
        session_id: SessionId::parse(&format!("s-{session}")).unwrap(),
        customer_id: customer.map(|c| CustomerId::parse(&format!("c-{c}")).unwrap()),
        occurred_at: Timestamp::from_unix_millis(start.unix_millis() + i64::from(offset) * 1000)
            .unwrap(),
        kind,
    }
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0u8..6,
        prop::option::of(0u8..3),
        0u8..4,
        0u16..180,
        0u8..5,
        0u8..32,
    )
}

/// How one record goes out: a copy later (a producer retry) or not, and its shard.
fn plan() -> impl Strategy<Value = (bool, u8)> {
    (prop::bool::weighted(0.3), 0u8..2)
}

async fn deliver(
    aggregator: &ActivityAggregator<Flaky, MemoryDeadLetters>,
    records: &[Record],
    batch_sizes: &[usize],
    failures: &[usize],
    redeliver: &[bool],
) {
    let mut start = 0;
    let mut round = 0;
    while start < records.len() {
        let size = batch_sizes[round % batch_sizes.len()].max(1);
        let end = (start + size).min(records.len());
        // Transient: failures come in the first rounds only, as a throttled table recovers.
        let fail = if round < 3 * failures.len() {
            failures[round % failures.len()]
        } else {
            0
        };
        *aggregator.store.fail.lock().unwrap() = fail;
        let response = aggregator.handle(kinesis_event(&records[start..end])).await;
        *aggregator.store.fail.lock().unwrap() = 0;
        if redeliver[round % redeliver.len()] {
            // Lambda delivers the batch again (a timeout it never saw answered).
            aggregator.handle(kinesis_event(&records[start..end])).await;
        }
        start = match response.batch_item_failures.first() {
            Some(failure) => {
                let id = failure.item_identifier.clone().unwrap();
                records[start..end]
                    .iter()
                    .position(|r| r.sequence == id)
                    .map(|p| start + p)
                    .expect("the retry point is a record of the batch")
            }
            None => end,
        };
        round += 1;
        assert!(round < 10_000, "the shard never moved on");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn stored_activity_equals_one_fold_of_the_unique_events(
        specs in prop::collection::vec(spec(), 1..60),
        plans in prop::collection::vec(plan(), 60),
        batch_sizes in prop::collection::vec(1usize..12, 1..6),
        failures in prop::collection::vec(prop::sample::select(vec![0usize, 0, 1, 2, 5]), 1..6),
        redeliver in prop::collection::vec(prop::bool::weighted(0.25), 1..6),
    ) {
        let received = Timestamp::parse("2026-11-22T11:05:00Z").unwrap();
        let events: Vec<ActivityEvent> =
            specs.iter().enumerate().map(|(i, s)| event(i, *s)).collect();

        // Records per shard in stream order; a producer copy follows later on its shard.
        let mut shards: [Vec<Vec<u8>>; 2] = Default::default();
        let mut copies: [Vec<Vec<u8>>; 2] = Default::default();
        for (event, (copy, shard)) in events.iter().zip(&plans) {
            let data = ActivityEnvelope::new(event.clone(), received).to_json();
            shards[*shard as usize].push(data.clone());
            if *copy {
                copies[*shard as usize].push(data);
            }
        }
        let aggregator = ActivityAggregator {
            store: Flaky::default(),
            dead_letters: MemoryDeadLetters::default(),
            clock: Arc::new(FixedClock(received)),
            function_name: "aggregate-activity".into(),
        };
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(async {
                for (n, (records, copies)) in shards.iter().zip(&copies).enumerate() {
                    let records: Vec<Record> = records
                        .iter()
                        .chain(copies)
                        .enumerate()
                        .map(|(i, data)| Record {
                            shard: format!("shardId-00000000000{n}"),
                            sequence: format!("{}", 49_000_000_000u64 + i as u64 * 7),
                            data: data.clone(),
                        })
                        .collect();
                    deliver(&aggregator, &records, &batch_sizes, &failures, &redeliver).await;
                }
            });

        prop_assert!(aggregator.dead_letters.0.lock().unwrap().is_empty());
        let mut expected = ActivityFold::default();
        for event in &events {
            expected.add_event(event);
        }
        for (bucket, view) in expected.views() {
            prop_assert_eq!(aggregator.store.store.view(&bucket), view.bounded(), "bucket {}", bucket);
        }
    }
}
