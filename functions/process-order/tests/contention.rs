//! process-order under contention: a concurrent transaction on the same items (DynamoDB's
//! TransactionConflict, which the emulator's lock never produces) is waited out in-process,
//! and only lasting contention hands the record back to Lambda.

use aws_lambda_events::event::kinesis::KinesisEvent;
use base64::Engine as _;
use orders_core::memory::{FixedClock, MemoryCatalog, MemoryCommands};
use orders_core::order::NewLineItem;
use orders_core::ports::{
    Applied, Catalog, DeadLetter, DeadLetterQueue, OrderCommands, StockChange,
};
use orders_core::{
    Currency, CustomerId, Money, OrderId, PlaceOrder, Product, ProductId, Quantity, Timestamp,
};
use orders_core::{EventEnvelope, Order, OrderError, OrderStatus};
use process_order::OrderProcessor;
use process_order::processor::CONTENDED_RETRIES;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// The command side, refusing the first `refusals` changes as a concurrent transaction
/// on the same items would (TransactionConflict).
struct Contending {
    inner: MemoryCommands,
    refusals: AtomicU32,
}

#[async_trait::async_trait]
impl OrderCommands for Contending {
    async fn load(&self, id: &OrderId) -> Result<Option<Order>, OrderError> {
        self.inner.load(id).await
    }

    async fn apply(&self, next: &Order, stock: &StockChange) -> Result<Applied, OrderError> {
        let refused = self
            .refusals
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if refused {
            return Ok(Applied::Contended);
        }
        self.inner.apply(next, stock).await
    }
}

struct NoDeadLetters;

#[async_trait::async_trait]
impl DeadLetterQueue for NoDeadLetters {
    async fn send(&self, letter: &DeadLetter) -> Result<(), OrderError> {
        panic!("nothing here is poison: {letter:?}")
    }
}

async fn setup(
    refusals: u32,
) -> (
    OrderProcessor<Contending, MemoryCatalog, NoDeadLetters>,
    Order,
    KinesisEvent,
) {
    let now = Timestamp::parse("2026-12-07T10:00:00Z").unwrap();
    let commands = MemoryCommands::default();
    commands
        .catalog
        .put(&Product {
            product_id: ProductId::parse("sku-hot").unwrap(),
            name: "Hot".into(),
            price: Money::from_minor(100).unwrap(),
            stock: 10,
            version: 1,
            updated_at: now,
        })
        .await
        .unwrap();
    let command = PlaceOrder {
        customer_id: CustomerId::parse("c-1").unwrap(),
        currency: Currency::parse("USD").unwrap(),
        items: vec![NewLineItem {
            product_id: ProductId::parse("sku-hot").unwrap(),
            quantity: Quantity::new(2).unwrap(),
            unit_price: Money::from_minor(100).unwrap(),
        }],
    };
    let placed = Order::place(OrderId::new(ulid::Ulid::new()), &command, now);
    use orders_core::ports::OrderStore as _;
    commands.store.create(&placed).await.unwrap();
    let data = EventEnvelope::new(orders_core::OrderEvent::placed(placed.clone())).to_json();
    let event: KinesisEvent = serde_json::from_value(serde_json::json!({"Records": [{
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": placed.order_id.to_string(),
            "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
            "data": base64::engine::general_purpose::STANDARD.encode(data),
            "approximateArrivalTimestamp": 1_795_305_314.123
        },
        "eventSource": "aws:kinesis",
        "eventID": "shardId-000000000000:49590338271490256608559692538361571095921575989136588898",
        "eventName": "aws:kinesis:record",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/orders-order-events"
    }]}))
    .unwrap();
    let processor = OrderProcessor {
        commands: Contending {
            inner: commands.clone(),
            refusals: AtomicU32::new(refusals),
        },
        catalog: commands.catalog.clone(),
        dead_letters: NoDeadLetters,
        clock: Arc::new(FixedClock(now)),
        function_name: "process-order".into(),
    };
    (processor, placed, event)
}

#[tokio::test]
async fn a_moment_of_contention_is_waited_out_without_handing_the_batch_back() {
    let (processor, placed, event) = setup(CONTENDED_RETRIES).await;
    let response = processor.handle(event).await;
    assert!(response.batch_item_failures.is_empty());
    let stored = processor
        .commands
        .load(&placed.order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.status, stored.version), (OrderStatus::Processed, 2));
    let stock = processor
        .catalog
        .get(&ProductId::parse("sku-hot").unwrap())
        .await
        .unwrap()
        .unwrap()
        .stock;
    assert_eq!(stock, 8, "reserved once");
}

#[tokio::test]
async fn lasting_contention_hands_the_record_back_having_written_nothing() {
    let (processor, placed, event) = setup(100).await;
    let sequence = event.records[0].kinesis.sequence_number.clone();
    let response = processor.handle(event).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap())
        .collect();
    assert_eq!(failed, vec![sequence]);
    let stored = processor
        .commands
        .load(&placed.order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, OrderStatus::Pending);
}
