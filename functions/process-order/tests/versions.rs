//! Events written before a version bump are processed like current ones, exactly once: an
//! order whose `OrderPlaced` the version-1 relay published (recorded from that build) is
//! processed, and the same change published again by the version-2 relay — or the version-1
//! record redelivered — changes nothing. Over the in-memory ports (the same conditional
//! semantics as the DynamoDB adapters).

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::streams::KinesisEventResponse;
use base64::Engine as _;
use orders_core::memory::{FixedClock, MemoryCatalog, MemoryCommands};
use orders_core::ports::{Catalog, DeadLetter, DeadLetterQueue, OrderCommands, OrderStore};
use orders_core::{
    Decoded, EventEnvelope, Order, OrderError, OrderEvent, OrderStatus, Product, ProductId,
    Timestamp,
};
use orders_tests::event_samples::RECORDED_V1_ORDER_PLACED;
use process_order::OrderProcessor;
use std::sync::Arc;

struct NoDeadLetters;

#[async_trait::async_trait]
impl DeadLetterQueue for NoDeadLetters {
    async fn send(&self, letter: &DeadLetter) -> Result<(), OrderError> {
        panic!("nothing here is poison: {letter:?}")
    }
}

/// Delivers `records` (their data) as one Kinesis batch.
async fn deliver(
    processor: &OrderProcessor<MemoryCommands, MemoryCatalog, NoDeadLetters>,
    records: &[&[u8]],
) -> KinesisEventResponse {
    let records: Vec<serde_json::Value> = records
        .iter()
        .enumerate()
        .map(|(n, data)| {
            let sequence = format!("4959033827149025660855969253836157109592157598913{n:07}");
            serde_json::json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "k",
                    "sequenceNumber": sequence,
                    "data": base64::engine::general_purpose::STANDARD.encode(data),
                    "approximateArrivalTimestamp": 1_795_305_314.123
                },
                "eventSource": "aws:kinesis",
                "eventID": format!("shardId-000000000000:{sequence}"),
                "eventName": "aws:kinesis:record",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/orders-order-events"
            })
        })
        .collect();
    let event: KinesisEvent =
        serde_json::from_value(serde_json::json!({ "Records": records })).unwrap();
    processor.handle(event).await
}

#[tokio::test]
async fn an_order_placed_by_the_v1_relay_is_processed_exactly_once() {
    let (_, recorded) = RECORDED_V1_ORDER_PLACED
        .into_iter()
        .find(|(name, _)| *name == "one-line")
        .unwrap();
    let v1: serde_json::Value = serde_json::from_str(recorded).unwrap();
    assert_eq!(v1["schemaVersion"], 1);
    // The order as the table holds it: what the version-1 relay published it from.
    let order: Order = serde_json::from_value(v1["payload"]["order"].clone()).unwrap();
    let now = Timestamp::parse("2026-12-07T10:00:00Z").unwrap();
    let commands = MemoryCommands::default();
    let product = &order.items[0];
    commands
        .catalog
        .put(&Product {
            product_id: product.product_id.clone(),
            name: "Mug".into(),
            price: product.unit_price,
            stock: 10,
            version: 1,
            updated_at: now,
        })
        .await
        .unwrap();
    commands.store.create(&order).await.unwrap();
    let processor = OrderProcessor {
        catalog: commands.catalog.clone(),
        commands,
        dead_letters: NoDeadLetters,
        clock: Arc::new(FixedClock(now)),
        function_name: "process-order".into(),
    };
    let stock = || async {
        processor
            .catalog
            .get(&ProductId::parse("sku-mug").unwrap())
            .await
            .unwrap()
            .unwrap()
            .stock
    };
    let stored = || async {
        processor
            .commands
            .load(&order.order_id)
            .await
            .unwrap()
            .unwrap()
    };

    let response = deliver(&processor, &[recorded.as_bytes()]).await;
    assert!(response.batch_item_failures.is_empty());
    let processed = stored().await;
    assert_eq!(
        (processed.status, processed.version),
        (OrderStatus::Processed, 2)
    );
    assert_eq!(stock().await, 7, "3 units reserved");

    // The version-2 relay publishes the same change again (a retried publish across the
    // deploy), and the version-1 record comes round again: same event, nothing moves.
    let v2 = EventEnvelope::new(OrderEvent::for_current_state(&order));
    assert_eq!(v1["eventId"], v2.event_id.to_string());
    assert_eq!(
        EventEnvelope::decode(recorded.as_bytes()),
        Ok(Decoded::Event(Box::new(v2.clone())))
    );
    let response = deliver(&processor, &[&v2.to_json(), recorded.as_bytes()]).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(stored().await, processed);
    assert_eq!(stock().await, 7, "reserved once");
}
