//! The aggregator against the emulator through the production adapter: exact totals for a
//! known set of orders, unchanged by redelivery and producer duplicates, and exact after a
//! write fails halfway through a batch and the batch is retried.

use aggregate::Aggregator;
use async_trait::async_trait;
use aws_lambda_events::event::kinesis::KinesisEvent;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use orders_aws::{DynamoAnalytics, SqsDeadLetterQueue};
use orders_core::analytics::{Bucket, CounterItem, Effect, Fold, Granularity, ItemDelta};
use orders_core::order::NewLineItem;
use orders_core::ports::{AnalyticsStore, CountersApplied, SystemClock};
use orders_core::{
    Currency, CustomerId, EventEnvelope, EventId, FailureReason, Money, Order, OrderError,
    OrderEvent, OrderId, OrderStatus, PlaceOrder, ProductId, Quantity, Timestamp,
};
use orders_tests::Emulator;
use orders_tests::RecordedMetrics;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The real adapter, failing one chosen write (counting from 1) with throttling.
struct FlakyAnalytics {
    inner: DynamoAnalytics,
    fail_write: AtomicUsize,
    writes: AtomicUsize,
}

impl FlakyAnalytics {
    fn check(&self) -> Result<(), OrderError> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_write.load(Ordering::SeqCst) {
            return Err(OrderError::Throttled(
                "injected: ProvisionedThroughputExceededException".into(),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl AnalyticsStore for FlakyAnalytics {
    async fn claim_events(
        &self,
        order_id: &OrderId,
        claims: &[(EventId, String)],
    ) -> Result<Vec<bool>, OrderError> {
        self.check()?;
        self.inner.claim_events(order_id, claims).await
    }
    async fn add_counters(
        &self,
        item: &CounterItem,
        shard: &str,
        first: &str,
        last: &str,
        delta: &ItemDelta,
    ) -> Result<CountersApplied, OrderError> {
        self.check()?;
        self.inner
            .add_counters(item, shard, first, last, delta)
            .await
    }
    async fn add_counters_after(
        &self,
        item: &CounterItem,
        shard: &str,
        watermark: &str,
        last: &str,
        delta: &ItemDelta,
    ) -> Result<bool, OrderError> {
        self.check()?;
        self.inner
            .add_counters_after(item, shard, watermark, last, delta)
            .await
    }
    async fn add_customers(
        &self,
        bucket: &Bucket,
        shard: u32,
        customers: &BTreeSet<CustomerId>,
    ) -> Result<(), OrderError> {
        self.check()?;
        self.inner.add_customers(bucket, shard, customers).await
    }
}

struct Stack {
    aggregator: Aggregator<FlakyAnalytics, SqsDeadLetterQueue>,
}

async fn spawn_stack() -> Stack {
    let emulator = Emulator::connect().await;
    let (analytics, claims, dlq) = tokio::join!(
        emulator.clone_table("analytics_table"),
        emulator.clone_table("event_claims_table"),
        emulator.fresh_queue()
    );
    let aggregator = Aggregator {
        store: FlakyAnalytics {
            inner: DynamoAnalytics::from_sdk(&emulator.sdk, &analytics, &claims, 86_400),
            fail_write: AtomicUsize::new(0),
            writes: AtomicUsize::new(0),
        },
        dead_letters: SqsDeadLetterQueue::from_sdk(&emulator.sdk, &dlq),
        clock: Arc::new(SystemClock),
        function_name: "orders-aggregate".into(),
    };
    Stack { aggregator }
}

struct Record {
    sequence: String,
    data: Vec<u8>,
}

fn event(records: &[Record]) -> KinesisEvent {
    let records: Vec<_> = records
        .iter()
        .map(|r| {
            json!({
                "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "k", "sequenceNumber": r.sequence,
                            "data": STANDARD.encode(&r.data), "approximateArrivalTimestamp": 1.0},
                "eventSource": "aws:kinesis", "eventVersion": "1.0",
                "eventID": format!("shardId-000000000000:{}", r.sequence), "eventName": "aws:kinesis:record",
                "awsRegion": "us-east-1", "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/orders-order-events"
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

/// 40 orders over three minutes around an hour boundary, with every path.
fn history() -> Vec<EventEnvelope> {
    let start = Timestamp::parse("2026-11-21T09:58:30Z").unwrap();
    let mut events = Vec::new();
    for i in 0..40u32 {
        let created = start.plus_seconds(i64::from(i) * 5);
        let command = PlaceOrder {
            customer_id: CustomerId::parse(&format!("c-{}", i % 7)).unwrap(),
            currency: Currency::parse("USD").unwrap(),
            items: (0..1 + i % 3)
                .map(|l| NewLineItem {
                    product_id: ProductId::parse(&format!("sku-{}", (i + l) % 5)).unwrap(),
                    quantity: Quantity::new(1 + l).unwrap(),
                    unit_price: Money::from_minor(i64::from(100 * (l + 1))).unwrap(),
                })
                .collect(),
        };
        let placed = Order::place(
            OrderId::new(ulid::Ulid::from_parts(
                created.unix_millis() as u64,
                u128::from(i),
            )),
            &command,
            created,
        );
        let later = created.plus_seconds(2);
        events.push(EventEnvelope::new(OrderEvent::OrderPlaced {
            order: placed.clone(),
        }));
        match i % 4 {
            0 | 1 => {
                let processed = placed.transition(OrderStatus::Processed, later).unwrap();
                events.push(EventEnvelope::new(OrderEvent::for_current_state(
                    &processed,
                )));
                if i % 8 == 1 {
                    let cancelled = processed.transition(OrderStatus::Cancelled, later).unwrap();
                    events.push(EventEnvelope::new(OrderEvent::for_current_state(
                        &cancelled,
                    )));
                }
            }
            2 => {
                let failed = placed.fail(FailureReason::OutOfStock, later).unwrap();
                events.push(EventEnvelope::new(OrderEvent::for_current_state(&failed)));
            }
            _ => {}
        }
    }
    events
}

fn records(events: &[EventEnvelope]) -> Vec<Record> {
    events
        .iter()
        .enumerate()
        .map(|(n, e)| Record {
            sequence: format!(
                "4959033827149025660855969253836157109592157598913{:07}",
                10 + n
            ),
            data: e.to_json(),
        })
        .collect()
}

impl Stack {
    async fn deliver(&self, records: &[Record]) -> Option<String> {
        let response = self.aggregator.handle(event(records)).await;
        response
            .batch_item_failures
            .first()
            .and_then(|f| f.item_identifier.clone())
    }

    /// Asserts every bucket equals the fold of the unique events.
    async fn assert_exact(&self, unique: &[EventEnvelope]) {
        let mut reference = Fold::default();
        for e in unique {
            reference.add(&Effect::of(e));
        }
        let buckets = reference.buckets();
        assert!(
            buckets
                .iter()
                .any(|b| b.granularity == Granularity::Hour && b.to_string() == "h#2026-11-21T10")
        );
        for bucket in buckets {
            let stored = self.aggregator.store.inner.bucket(&bucket).await.unwrap();
            assert_eq!(stored, reference.view(&bucket), "bucket {bucket}");
        }
    }
}

#[tokio::test]
async fn batches_fold_into_exact_buckets_and_redelivery_changes_nothing() {
    let stack = spawn_stack().await;
    let events = history();
    let records = records(&events);
    for batch in records.chunks(17) {
        assert_eq!(stack.deliver(batch).await, None);
    }
    stack.assert_exact(&events).await;

    // The same batches again, a bisected half, and one big batch spanning them all.
    for batch in records.chunks(17) {
        assert_eq!(stack.deliver(batch).await, None);
    }
    assert_eq!(stack.deliver(&records[5..13]).await, None);
    assert_eq!(stack.deliver(&records).await, None);
    stack.assert_exact(&events).await;
}

#[tokio::test]
async fn producer_duplicates_count_once() {
    let stack = spawn_stack().await;
    let events = history();
    // Every third event put twice by its producer: the copy has its own sequence number.
    let mut with_duplicates = Vec::new();
    for (i, e) in events.iter().enumerate() {
        with_duplicates.push(e.clone());
        if i % 3 == 0 {
            with_duplicates.push(e.clone());
        }
    }
    for batch in records(&with_duplicates).chunks(25) {
        assert_eq!(stack.deliver(batch).await, None);
    }
    stack.assert_exact(&events).await;
}

#[tokio::test]
async fn a_write_failing_halfway_through_a_batch_then_the_retry_is_exact() {
    let stack = spawn_stack().await;
    let events = history();
    let records = records(&events);
    stack.aggregator.store.fail_write.store(6, Ordering::SeqCst);
    let retry_from = stack
        .deliver(&records)
        .await
        .expect("the failed write is reported");
    let position = records
        .iter()
        .position(|r| r.sequence == retry_from)
        .unwrap();
    // Lambda resumes from the reported record: the rest of the batch comes again.
    assert_eq!(stack.deliver(&records[position..]).await, None);
    stack.assert_exact(&events).await;
}

#[tokio::test]
async fn metrics_count_batches_dead_letters_duplicates_and_writes() {
    let metrics = RecordedMetrics::start();
    let stack = spawn_stack().await;
    let events = history();
    // One order placed and processed, its placement published twice by the producer, and a
    // record no consumer can read.
    let mut batch = records(&[events[0].clone(), events[1].clone(), events[0].clone()]);
    batch.push(Record {
        sequence: "49590338271490256608559692538361571095921575989139999999".into(),
        data: b"{not json".to_vec(),
    });
    let mut reference = Fold::default();
    for e in &events[..2] {
        reference.add(&Effect::of(e));
    }
    assert!(!reference.customers.is_empty());

    assert_eq!(stack.deliver(&batch).await, None);
    assert_eq!(
        metrics.take(),
        json!({
            "BatchSize": [4.0],
            "DeadLettered": 1,
            "DuplicateRecords": 1,
            "AggregateWrites{kind=counter}": reference.counters.len(),
            "AggregateWrites{kind=customers}": reference.customers.len(),
        })
    );

    // Redelivered: the watermarks already cover every counter item, so none is written;
    // customer sets are idempotent adds and are written again.
    assert_eq!(stack.deliver(&batch).await, None);
    assert_eq!(
        metrics.take(),
        json!({
            "BatchSize": [4.0],
            "DeadLettered": 1,
            "DuplicateRecords": 1,
            "AggregateWrites{kind=customers}": reference.customers.len(),
        })
    );
}

#[tokio::test]
async fn metrics_count_a_failed_write_as_one_batch_item_failure() {
    let metrics = RecordedMetrics::start();
    let stack = spawn_stack().await;
    let records = records(&history()[..2]);
    stack.aggregator.store.fail_write.store(1, Ordering::SeqCst);
    assert!(stack.deliver(&records).await.is_some());
    let taken = metrics.take();
    assert_eq!(taken["BatchItemFailures"], 1, "{taken:#}");
    assert_eq!(taken["BatchSize"], json!([2.0]));
    assert!(
        taken.get("AggregateWrites{kind=counter}").is_none(),
        "the claim failed, so nothing was counted: {taken:#}"
    );
}
