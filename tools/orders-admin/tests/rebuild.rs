//! `rebuild-aggregates` against the emulator: buckets recomputed from the orders table,
//! corrupted counters repaired, watermarks kept, nothing written when already right — and
//! exact in the middle of a stream: events still to come, a batch waiting to be retried and
//! redeliveries after it are neither lost nor counted twice.

use aggregate::Aggregator;
use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use orders_admin::rebuild::{RebuildOptions, parse_time, rebuild};
use orders_aws::SqsDeadLetterQueue;
use orders_aws::{DynamoAnalytics, DynamoOrderStore};
use orders_core::analytics::{Bucket, Fold, Granularity};
use orders_core::order::NewLineItem;
use orders_core::ports::OrderStore;
use orders_core::ports::SystemClock;
use orders_core::{
    Currency, CustomerId, FailureReason, Money, Order, OrderId, OrderStatus, PlaceOrder, ProductId,
    Quantity, Timestamp,
};
use orders_core::{EventEnvelope, OrderEvent};
use orders_tests::{Emulator, FlakyAnalytics};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

fn order(i: u32, created: Timestamp) -> Order {
    let command = PlaceOrder {
        customer_id: CustomerId::parse(&format!("c-{}", i % 4)).unwrap(),
        currency: Currency::parse("USD").unwrap(),
        items: vec![NewLineItem {
            product_id: ProductId::parse(&format!("sku-{}", i % 3)).unwrap(),
            quantity: Quantity::new(1 + i % 2).unwrap(),
            unit_price: Money::from_minor(700).unwrap(),
        }],
    };
    let placed = Order::place(
        OrderId::new(ulid::Ulid::from_parts(
            created.unix_millis() as u64,
            u128::from(i),
        )),
        &command,
        created,
    );
    let later = created.plus_seconds(1);
    match i % 4 {
        0 => placed,
        1 => placed.transition(OrderStatus::Processed, later).unwrap(),
        2 => placed.fail(FailureReason::OutOfStock, later).unwrap(),
        _ => placed
            .transition(OrderStatus::Processed, later)
            .unwrap()
            .transition(OrderStatus::Cancelled, later)
            .unwrap(),
    }
}

#[tokio::test]
async fn rebuilds_repairs_and_keeps_watermarks() {
    let emulator = Emulator::connect().await;
    let (orders_table, analytics_table, claims_table) = tokio::join!(
        emulator.clone_table("orders_table"),
        emulator.clone_table("analytics_table"),
        emulator.clone_table("event_claims_table")
    );
    let store = DynamoOrderStore::from_sdk(&emulator.sdk, &orders_table);
    let analytics =
        DynamoAnalytics::from_sdk(&emulator.sdk, &analytics_table, &claims_table, 86_400);
    let shards = vec!["shardId-000000000000".to_owned()];

    let start = parse_time("2025-03-09T23:50:00Z").unwrap();
    let mut fold = Fold::default();
    for i in 0..30 {
        // Across midnight: two days, several hours' worth of minutes.
        let o = order(i, start.plus_seconds(i64::from(i) * 45));
        store.create(&o).await.unwrap();
        fold.add_order(&o);
    }
    // An order outside the range must not count.
    store
        .create(&order(99, parse_time("2025-03-12T08:00:00Z").unwrap()))
        .await
        .unwrap();

    let options = |dry_run| RebuildOptions {
        from: parse_time("2025-03-09").unwrap(),
        to: parse_time("2025-03-11").unwrap(),
        dry_run,
    };
    let mut out = Vec::new();
    let report = rebuild(&store, &analytics, &shards, &options(false), &mut out)
        .await
        .unwrap();
    assert_eq!(report.orders, 30);
    // Two days, the 24 hours of each, and the 60 minutes of the two hours with orders.
    assert_eq!(report.buckets, 2 + 48 + 2 * 60);
    assert!(report.items_written > 0);
    for bucket in fold.buckets() {
        let mut stored = analytics.bucket(&bucket).await.unwrap();
        stored.products.retain(|_, p| *p != Default::default());
        assert_eq!(stored, fold.view(&bucket), "{bucket}");
    }

    // Corrupt the day's totals (keeping a watermark on it), add a stray product counter.
    let day = Bucket::containing(Granularity::Day, start);
    let key = |item: &str| AttributeValue::S(format!("{day}/{item}"));
    emulator
        .dynamodb()
        .update_item()
        .table_name(&analytics_table)
        .key("pk", key("totals"))
        .update_expression("SET orders = :n, #wm = :w")
        .expression_attribute_names("#wm", "wm#shardId-000000000000")
        .expression_attribute_values(":n", AttributeValue::N("999".into()))
        .expression_attribute_values(":w", AttributeValue::S("0042".into()))
        .send()
        .await
        .unwrap();
    emulator
        .dynamodb()
        .update_item()
        .table_name(&analytics_table)
        .key("pk", key("products#00"))
        .update_expression("SET #u = :n")
        .expression_attribute_names("#u", "u#sku-ghost")
        .expression_attribute_values(":n", AttributeValue::N("5".into()))
        .send()
        .await
        .unwrap();

    let dry = rebuild(&store, &analytics, &shards, &options(true), &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(
        (dry.differing, dry.items_written),
        (1, 0),
        "the dry run reports, changes nothing"
    );
    assert_eq!(analytics.bucket(&day).await.unwrap().totals.orders, 999);

    let repair = rebuild(
        &store,
        &analytics,
        &shards,
        &options(false),
        &mut Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!((repair.differing, repair.items_written), (1, 2));
    let mut repaired = analytics.bucket(&day).await.unwrap();
    repaired.products.retain(|_, p| *p != Default::default());
    assert_eq!(repaired, fold.view(&day));
    let totals = emulator
        .dynamodb()
        .get_item()
        .table_name(&analytics_table)
        .key("pk", key("totals"))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(
        totals["wm#shardId-000000000000"].as_s().unwrap(),
        "0042",
        "watermarks survive"
    );

    let again = rebuild(
        &store,
        &analytics,
        &shards,
        &options(false),
        &mut Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!((again.differing, again.items_written), (0, 0), "idempotent");
}

/// Kinesis records of shard 0 carrying `events`, sequence numbers in order.
fn kinesis(events: &[(String, EventEnvelope)]) -> KinesisEvent {
    let records: Vec<_> = events
        .iter()
        .map(|(sequence, e)| {
            serde_json::json!({
                "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "k", "sequenceNumber": sequence,
                            "data": STANDARD.encode(e.to_json()), "approximateArrivalTimestamp": 1.0},
                "eventSource": "aws:kinesis", "eventVersion": "1.0",
                "eventID": format!("shardId-000000000000:{sequence}"), "eventName": "aws:kinesis:record",
                "awsRegion": "us-east-1", "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/orders-order-events"
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
}

#[tokio::test]
async fn a_rebuild_mid_stream_neither_loses_nor_doubles_what_the_stream_still_delivers() {
    let emulator = Emulator::connect().await;
    let (orders_table, analytics_table, claims_table, dlq) = tokio::join!(
        emulator.clone_table("orders_table"),
        emulator.clone_table("analytics_table"),
        emulator.clone_table("event_claims_table"),
        emulator.fresh_queue()
    );
    let store = DynamoOrderStore::from_sdk(&emulator.sdk, &orders_table);
    let analytics =
        || DynamoAnalytics::from_sdk(&emulator.sdk, &analytics_table, &claims_table, 86_400);
    let aggregator = Aggregator {
        store: FlakyAnalytics::new(analytics()),
        dead_letters: SqsDeadLetterQueue::from_sdk(&emulator.sdk, &dlq),
        clock: Arc::new(SystemClock),
        function_name: "orders-aggregate".into(),
    };

    // 40 orders of a past day in every state, and their events on the stream in order.
    let start = parse_time("2025-06-02T10:58:00Z").unwrap();
    let mut fold = Fold::default();
    let mut stream = Vec::new();
    for i in 0..40u32 {
        let o = order(i, start.plus_seconds(i64::from(i) * 7));
        store.create(&o).await.unwrap();
        fold.add_order(&o);
        stream.extend(OrderEvent::history(&o).unwrap());
    }
    let records: Vec<(String, EventEnvelope)> = stream
        .into_iter()
        .enumerate()
        .map(|(n, e)| {
            (
                format!(
                    "4959033827149025660855969253836157109592157598913{:07}",
                    10 + n
                ),
                e,
            )
        })
        .collect();
    let deliver = |batch: &[(String, EventEnvelope)]| {
        let event = kinesis(batch);
        let aggregator = &aggregator;
        async move {
            let response = aggregator.handle(event).await;
            response
                .batch_item_failures
                .first()
                .and_then(|f| f.item_identifier.clone())
        }
    };

    // The stream got through a third; the next batch failed half way (to be retried from
    // where it failed); the rest is still on the stream. Then a bug corrupts the day.
    let third = records.len() / 3;
    assert_eq!(deliver(&records[..third]).await, None);
    let batch = &records[third..2 * third];
    // Claims come first (one per order of the batch): the 4th counter write after them fails.
    let orders_in_batch = batch
        .iter()
        .map(|(_, e)| e.order_id)
        .collect::<BTreeSet<_>>()
        .len();
    aggregator.store.fail_write.store(
        aggregator.store.writes.load(Ordering::SeqCst) + orders_in_batch + 4,
        Ordering::SeqCst,
    );
    let retry_from = deliver(batch).await.expect("the failed write is reported");
    let day = Bucket::containing(Granularity::Day, start);
    emulator
        .dynamodb()
        .update_item()
        .table_name(&analytics_table)
        .key("pk", AttributeValue::S(format!("{day}/totals")))
        .update_expression("ADD orders :n")
        .expression_attribute_values(":n", AttributeValue::N("500".into()))
        .send()
        .await
        .unwrap();

    let options = RebuildOptions {
        from: parse_time("2025-06-02").unwrap(),
        to: parse_time("2025-06-03").unwrap(),
        dry_run: false,
    };
    let shards = vec!["shardId-000000000000".to_owned()];
    let report = rebuild(&store, &analytics(), &shards, &options, &mut Vec::new())
        .await
        .unwrap();
    assert!(
        report.items_written > 0 && report.orders == 40,
        "{report:?}"
    );

    // The stream carries on: the failed batch from where it failed, the rest, and then
    // everything once more (a replay, a bisected retry).
    let position = batch.iter().position(|(s, _)| *s == retry_from).unwrap();
    assert_eq!(deliver(&batch[position..]).await, None);
    assert_eq!(deliver(&records[2 * third..]).await, None);
    assert_eq!(deliver(&records).await, None);

    let reader = analytics();
    for bucket in fold.buckets() {
        let mut stored = reader.bucket(&bucket).await.unwrap();
        stored.products.retain(|_, p| *p != Default::default());
        assert_eq!(stored, fold.view(&bucket), "{bucket}");
    }
}
