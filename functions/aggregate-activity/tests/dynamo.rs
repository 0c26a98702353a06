//! The activity aggregator against the emulator through the production adapter
//! (`DynamoAnalytics` as `ActivityStore`, `DynamoAnalyticsReader` as `ActivityReader`):
//! what it stores equals one fold of the unique events — after a batch is delivered again,
//! a retry reaches past it, a session sends more events in a minute than one claim write
//! takes, and a set shard outgrows its exact limit and becomes a sketch.

use aggregate_activity::ActivityAggregator;
use aws_lambda_events::event::kinesis::KinesisEvent;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use orders_aws::{DynamoAnalytics, DynamoAnalyticsReader, SqsDeadLetterQueue};
use orders_core::activity::{ActivityEnvelope, ActivityEvent, ActivityFold, ActivityKind};
use orders_core::analytics::{Bucket, Granularity};
use orders_core::distinct;
use orders_core::ports::{ActivityReader, SystemClock};
use orders_core::shard::shard_of;
use orders_core::{ActivityEventId, CustomerId, ProductId, Quantity, SessionId, Timestamp};
use orders_tests::Emulator;
use serde_json::json;
use std::sync::Arc;

struct Stack {
    aggregator: ActivityAggregator<DynamoAnalytics, SqsDeadLetterQueue>,
    reader: DynamoAnalyticsReader,
    emulator: Emulator,
    dlq: String,
}

async fn stack() -> Stack {
    let emulator = Emulator::connect().await;
    let (analytics, claims, dlq) = tokio::join!(
        emulator.clone_table("analytics_table"),
        emulator.clone_table("event_claims_table"),
        emulator.fresh_queue()
    );
    Stack {
        aggregator: ActivityAggregator {
            store: DynamoAnalytics::from_sdk(&emulator.sdk, &analytics, &claims, 86_400),
            dead_letters: SqsDeadLetterQueue::from_sdk(&emulator.sdk, &dlq),
            clock: Arc::new(SystemClock),
            function_name: "orders-aggregate-activity".into(),
        },
        reader: DynamoAnalyticsReader::from_sdk(&emulator.sdk, &analytics),
        emulator,
        dlq,
    }
}

/// Records of one shard, numbered from `first`.
fn batch(events: &[ActivityEvent], first: usize) -> KinesisEvent {
    let received = Timestamp::parse("2026-11-22T11:00:00Z").unwrap();
    let records: Vec<_> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let sequence = format!("{}", 49_000_000_000u64 + (first + i) as u64);
            json!({
                "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "k", "sequenceNumber": sequence,
                            "data": STANDARD.encode(ActivityEnvelope::new(e.clone(), received).to_json()),
                            "approximateArrivalTimestamp": 1.0},
                "eventSource": "aws:kinesis", "eventVersion": "1.0",
                "eventID": format!("shardId-000000000000:{sequence}"), "eventName": "aws:kinesis:record",
                "awsRegion": "us-east-1", "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/activity"
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

fn event(
    id: usize,
    session: &str,
    customer: Option<&str>,
    at: &str,
    kind: ActivityKind,
) -> ActivityEvent {
    ActivityEvent {
        event_id: ActivityEventId::parse(&format!("e-{id}")).unwrap(),
        session_id: SessionId::parse(session).unwrap(),
        customer_id: customer.map(|c| CustomerId::parse(c).unwrap()),
        occurred_at: Timestamp::parse(at).unwrap(),
        kind,
    }
}

fn sku(n: usize) -> ProductId {
    ProductId::parse(&format!("sku-{n}")).unwrap()
}

/// What the store must hold for `events` (each once): every bucket's view, bounded.
async fn assert_stored(stack: &Stack, events: &[ActivityEvent]) {
    let mut fold = ActivityFold::default();
    for e in events {
        fold.add_event(e);
    }
    for (bucket, want) in fold.views() {
        let want = want.bounded();
        let got = stack.reader.activity(&[bucket]).await.unwrap().remove(0);
        assert_eq!(got.totals, want.totals, "{bucket} totals");
        assert_eq!(got.sessions, want.sessions, "{bucket} sessions");
        assert_eq!(got.carted, want.carted, "{bucket} carted");
        assert_eq!(got.checked_out, want.checked_out, "{bucket} checked out");
        assert_eq!(got.customers, want.customers, "{bucket} customers");
        for (product, counts) in &want.products {
            let stored = stack
                .reader
                .product_activity(&[bucket], product)
                .await
                .unwrap()
                .remove(0);
            assert_eq!(&stored, counts, "{bucket} {product}");
        }
    }
}

#[tokio::test]
async fn redelivered_and_retried_batches_count_each_event_once() {
    let stack = stack().await;
    let mut events = Vec::new();
    // One busy session in one minute: 150 events, more than one claim write takes (64).
    for i in 0..150 {
        let kind = match i % 3 {
            0 => ActivityKind::ProductViewed {
                product_id: sku(i % 7),
            },
            1 => ActivityKind::AddedToCart {
                product_id: sku(i % 5),
                quantity: Quantity::new(1).unwrap(),
            },
            _ => ActivityKind::RemovedFromCart {
                product_id: sku(i % 5),
                quantity: Quantity::new(1).unwrap(),
            },
        };
        events.push(event(
            i,
            "s-busy",
            Some("c-1"),
            "2026-11-22T10:31:05Z",
            kind,
        ));
    }
    // Others, across an hour boundary, with a checkout naming 99 products.
    events.push(event(
        150,
        "s-2",
        None,
        "2026-11-22T10:59:59Z",
        ActivityKind::CheckoutStarted {
            cart: (0..99).map(sku).collect(),
        },
    ));
    events.push(event(
        151,
        "s-3",
        Some("c-2"),
        "2026-11-22T11:00:00Z",
        ActivityKind::ProductViewed { product_id: sku(1) },
    ));

    let agg = &stack.aggregator;
    assert!(
        agg.handle(batch(&events[..100], 0))
            .await
            .batch_item_failures
            .is_empty()
    );
    // The same batch again (a timeout Lambda never saw answered), then a retry reaching past it.
    assert!(
        agg.handle(batch(&events[..100], 0))
            .await
            .batch_item_failures
            .is_empty()
    );
    assert!(
        agg.handle(batch(&events[50..140], 50))
            .await
            .batch_item_failures
            .is_empty()
    );
    assert!(
        agg.handle(batch(&events[140..], 140))
            .await
            .batch_item_failures
            .is_empty()
    );
    // A producer's copies: the same events as new records later on the shard.
    assert!(
        agg.handle(batch(&events[120..], 200))
            .await
            .batch_item_failures
            .is_empty()
    );

    assert_stored(&stack, &events).await;
    assert!(stack.emulator.queue_messages(&stack.dlq).await.is_empty());
}

#[tokio::test]
async fn a_set_shard_past_its_exact_limit_is_stored_as_the_sketch_the_domain_computes() {
    let stack = stack().await;
    // Sessions that all land in shard 0 of the session sets: one more than it keeps exactly.
    let sessions: Vec<String> = (0..)
        .map(|n| format!("s-{n}"))
        .filter(|s| shard_of(s, distinct::SHARDS) == 0)
        .take(distinct::EXACT_LIMIT + 6)
        .collect();
    let events: Vec<ActivityEvent> = sessions
        .iter()
        .enumerate()
        .map(|(i, s)| {
            event(
                i,
                s,
                None,
                "2026-11-22T10:40:00Z",
                ActivityKind::ProductViewed { product_id: sku(1) },
            )
        })
        .collect();
    // In two batches: the second turns the exact set into a sketch (a conditional rewrite).
    let half = events.len() / 2;
    assert!(
        stack
            .aggregator
            .handle(batch(&events[..half], 0))
            .await
            .batch_item_failures
            .is_empty()
    );
    assert!(
        stack
            .aggregator
            .handle(batch(&events[half..], half))
            .await
            .batch_item_failures
            .is_empty()
    );
    assert_stored(&stack, &events).await;

    let minute = Bucket::containing(
        Granularity::Minute,
        Timestamp::parse("2026-11-22T10:40:00Z").unwrap(),
    );
    let view = stack.reader.activity(&[minute]).await.unwrap().remove(0);
    let count = view.sessions.count();
    assert!(count.approximate, "a sketch past the exact limit");
    let n = sessions.len() as f64;
    assert!(
        (count.value as f64 - n).abs() / n < 0.1,
        "{} of {n}",
        count.value
    );
}
