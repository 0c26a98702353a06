//! A retried order is processed exactly like a placed one — `OrderRetried` reserves stock and
//! sets the order `PROCESSED` or `FAILED` at its own version — and idempotently: its
//! redelivery, and a redelivered `OrderPlaced` of the attempt before, change nothing.
//! Over the in-memory ports (the same conditional semantics as the DynamoDB adapters).

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::streams::KinesisEventResponse;
use base64::Engine as _;
use orders_core::memory::{FixedClock, MemoryCatalog, MemoryCommands};
use orders_core::order::NewLineItem;
use orders_core::ports::{Catalog, DeadLetter, DeadLetterQueue, OrderCommands, OrderStore};
use orders_core::{
    Currency, CustomerId, EventEnvelope, FailureReason, Money, Order, OrderError, OrderEvent,
    OrderId, OrderStatus, PlaceOrder, Product, ProductId, Quantity, Timestamp,
};
use process_order::OrderProcessor;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

struct NoDeadLetters;

#[async_trait::async_trait]
impl DeadLetterQueue for NoDeadLetters {
    async fn send(&self, letter: &DeadLetter) -> Result<(), OrderError> {
        panic!("nothing here is poison: {letter:?}")
    }
}

struct Setup {
    processor: OrderProcessor<MemoryCommands, MemoryCatalog, NoDeadLetters>,
    sequence: AtomicU64,
    now: Timestamp,
}

fn sku() -> ProductId {
    ProductId::parse("sku-mug").unwrap()
}

impl Setup {
    async fn new(stock: u64) -> Self {
        let now = Timestamp::parse("2026-12-07T10:00:00Z").unwrap();
        let commands = MemoryCommands::default();
        let setup = Self {
            processor: OrderProcessor {
                commands: commands.clone(),
                catalog: commands.catalog.clone(),
                dead_letters: NoDeadLetters,
                clock: Arc::new(FixedClock(now)),
                function_name: "process-order".into(),
            },
            sequence: AtomicU64::new(0),
            now,
        };
        setup.product(1000, stock).await;
        setup
    }

    async fn product(&self, price: i64, stock: u64) {
        self.processor
            .catalog
            .put(&Product {
                product_id: sku(),
                name: "Mug".into(),
                price: Money::from_minor(price).unwrap(),
                stock,
                version: 1,
                updated_at: self.now,
            })
            .await
            .unwrap();
    }

    async fn stock(&self) -> u64 {
        self.processor
            .catalog
            .get(&sku())
            .await
            .unwrap()
            .unwrap()
            .stock
    }

    async fn place(&self, quantity: u32) -> Order {
        let command = PlaceOrder {
            customer_id: CustomerId::parse("c-1").unwrap(),
            currency: Currency::parse("USD").unwrap(),
            items: vec![NewLineItem {
                product_id: sku(),
                quantity: Quantity::new(quantity).unwrap(),
                unit_price: Money::from_minor(1000).unwrap(),
            }],
        };
        let order = Order::place(OrderId::new(ulid::Ulid::new()), &command, self.now);
        self.processor.commands.store.create(&order).await.unwrap();
        order
    }

    async fn stored(&self, order: &Order) -> Order {
        self.processor
            .commands
            .load(&order.order_id)
            .await
            .unwrap()
            .unwrap()
    }

    /// The event the relay publishes for `order`'s stored version.
    fn event_of(order: &Order) -> EventEnvelope {
        EventEnvelope::new(OrderEvent::for_current_state(order))
    }

    /// Delivers `events` as one Kinesis batch.
    async fn deliver(&self, events: &[&EventEnvelope]) -> KinesisEventResponse {
        let records: Vec<serde_json::Value> = events
            .iter()
            .map(|e| {
                let n = self.sequence.fetch_add(1, Ordering::SeqCst);
                let sequence = format!("4959033827149025660855969253836157109592157598913{n:07}");
                serde_json::json!({
                    "kinesis": {
                        "kinesisSchemaVersion": "1.0",
                        "partitionKey": e.partition_key(),
                        "sequenceNumber": sequence,
                        "data": base64::engine::general_purpose::STANDARD.encode(e.to_json()),
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
        self.processor.handle(event).await
    }

    /// Retries `order` as place-order does: the stored version is the relay's input.
    async fn retry(&self, order: &Order) -> Order {
        let retried = order.retry(&[], self.now).unwrap();
        let applied = self
            .processor
            .commands
            .apply(&retried, &orders_core::ports::StockChange::None)
            .await
            .unwrap();
        assert_eq!(applied, orders_core::ports::Applied::Done);
        retried
    }
}

#[tokio::test]
async fn a_retried_order_is_processed_like_a_placed_one() {
    let setup = Setup::new(1).await;
    let placed = setup.place(2).await;
    let placed_event = Setup::event_of(&placed);
    assert!(
        setup
            .deliver(&[&placed_event])
            .await
            .batch_item_failures
            .is_empty()
    );
    let failed = setup.stored(&placed).await;
    assert_eq!(
        (failed.status, failed.failure_reason),
        (OrderStatus::Failed, Some(FailureReason::OutOfStock))
    );

    // Staff add stock; the customer retries.
    setup
        .processor
        .catalog
        .adjust_stock(&sku(), 5, setup.now)
        .await
        .unwrap();
    let retried = setup.retry(&failed).await;
    let retried_event = Setup::event_of(&retried);
    assert_eq!(retried_event.event.event_type(), "OrderRetried");
    assert!(
        setup
            .deliver(&[&retried_event])
            .await
            .batch_item_failures
            .is_empty()
    );
    let processed = setup.stored(&placed).await;
    assert_eq!(
        (processed.status, processed.version, processed.retries),
        (OrderStatus::Processed, 4, 1)
    );
    assert_eq!(processed.failure_reason, None);
    assert_eq!(setup.stock().await, 4, "reserved once");

    // Redelivered, together with the attempt before: nothing moves, nothing is retried.
    let response = setup
        .deliver(&[&placed_event, &retried_event, &retried_event])
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(setup.stored(&placed).await, processed);
    assert_eq!(setup.stock().await, 4);
}

#[tokio::test]
async fn a_retried_order_that_still_cannot_be_served_fails_again() {
    let setup = Setup::new(0).await;
    let placed = setup.place(1).await;
    setup.deliver(&[&Setup::event_of(&placed)]).await;
    let retried = setup.retry(&setup.stored(&placed).await).await;
    // The catalog's price changed meanwhile: the retry kept the order's price (it failed
    // out of stock), so it fails as price_changed, selling nothing.
    setup.product(1200, 10).await;
    setup.deliver(&[&Setup::event_of(&retried)]).await;
    let failed = setup.stored(&placed).await;
    assert_eq!(
        (failed.status, failed.version, failed.failure_reason),
        (OrderStatus::Failed, 4, Some(FailureReason::PriceChanged))
    );
    assert_eq!(setup.stock().await, 10);

    // A second retry re-prices it, and it is processed at the catalog's price.
    let product = setup.processor.catalog.get(&sku()).await.unwrap().unwrap();
    let repriced = failed.retry(&[product], setup.now).unwrap();
    setup
        .processor
        .commands
        .apply(&repriced, &orders_core::ports::StockChange::None)
        .await
        .unwrap();
    setup.deliver(&[&Setup::event_of(&repriced)]).await;
    let processed = setup.stored(&placed).await;
    assert_eq!(
        (processed.status, processed.version, processed.total.minor()),
        (OrderStatus::Processed, 6, 1200)
    );
    assert_eq!(setup.stock().await, 9);
}

/// An `OrderPlaced` redelivered while the order is PENDING again after a retry is not the
/// retry's to process (its `OrderRetried` is): it must neither process the order at the old
/// version nor keep the record failing.
#[tokio::test]
async fn an_old_attempt_s_event_is_a_duplicate_once_the_order_is_retried() {
    let setup = Setup::new(0).await;
    let placed = setup.place(1).await;
    let placed_event = Setup::event_of(&placed);
    setup.deliver(&[&placed_event]).await;
    let retried = setup.retry(&setup.stored(&placed).await).await;
    let response = setup.deliver(&[&placed_event]).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        setup.stored(&placed).await,
        retried,
        "left to its own event"
    );
}
