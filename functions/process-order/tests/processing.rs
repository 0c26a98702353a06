//! process-order against the emulator through the production adapters: its own orders and
//! products tables (cloned from the deployed schema, the orders table's change stream
//! included) and dead-letter queue. Batches are real Lambda Kinesis events built from the
//! records the relay would have written; what it stores is checked on the change stream,
//! through the relay's own mapping — that is what reaches the event stream.

use aws_lambda_events::event::kinesis::KinesisEvent;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use orders_aws::deadline::Deadline;
use orders_aws::{DynamoCatalog, DynamoOrderCommands, DynamoOrderStore, SqsDeadLetterQueue};
use orders_core::order::NewLineItem;
use orders_core::ports::{Applied, Catalog, OrderCommands, OrderStore, StockChange, SystemClock};
use orders_core::{
    Currency, CustomerId, EventEnvelope, Money, Order, OrderEvent, OrderId, OrderStatus,
    PlaceOrder, Product, ProductId, Quantity, Timestamp,
};
use orders_tests::Emulator;
use orders_tests::RecordedMetrics;
use process_order::OrderProcessor;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

struct Stack {
    emulator: Emulator,
    store: DynamoOrderStore,
    orders: String,
    dlq: String,
    processor: OrderProcessor<DynamoOrderCommands, DynamoCatalog, SqsDeadLetterQueue>,
    sequence: AtomicU64,
}

async fn spawn_stack() -> Stack {
    let emulator = Emulator::connect().await;
    let (orders, products, dlq) = tokio::join!(
        emulator.clone_table("orders_table"),
        emulator.clone_table("products_table"),
        emulator.fresh_queue()
    );
    let processor = OrderProcessor {
        commands: DynamoOrderCommands::from_sdk(&emulator.sdk, &orders, &products),
        catalog: DynamoCatalog::from_sdk(&emulator.sdk, &products),
        dead_letters: SqsDeadLetterQueue::from_sdk(&emulator.sdk, &dlq),
        clock: Arc::new(SystemClock),
        function_name: "orders-process-order".into(),
    };
    Stack {
        store: DynamoOrderStore::from_sdk(&emulator.sdk, &orders),
        emulator,
        orders,
        dlq,
        processor,
        sequence: AtomicU64::new(0),
    }
}

/// One record as Kinesis delivers it to Lambda.
struct Record {
    partition_key: String,
    data: Vec<u8>,
    sequence_number: String,
}

impl Stack {
    async fn product(&self, id: &str, stock: u64) {
        let product = Product {
            product_id: ProductId::parse(id).unwrap(),
            name: id.to_uppercase(),
            price: Money::from_minor(1000).unwrap(),
            stock,
            version: 1,
            updated_at: Timestamp::now(),
        };
        self.processor.catalog.put(&product).await.unwrap();
    }

    async fn stock(&self, id: &str) -> u64 {
        self.processor
            .catalog
            .get(&ProductId::parse(id).unwrap())
            .await
            .unwrap()
            .expect("product")
            .stock
    }

    /// Stores an order as place-order does and returns its `OrderPlaced` record.
    async fn place(&self, lines: &[(&str, u32)]) -> (Order, Record) {
        let command = PlaceOrder {
            customer_id: CustomerId::parse("c-1").unwrap(),
            currency: Currency::parse("USD").unwrap(),
            items: lines
                .iter()
                .map(|(p, q)| NewLineItem {
                    product_id: ProductId::parse(p).unwrap(),
                    quantity: Quantity::new(*q).unwrap(),
                    unit_price: Money::from_minor(1000).unwrap(),
                })
                .collect(),
        };
        let order = Order::place(OrderId::new(ulid::Ulid::new()), &command, Timestamp::now());
        self.store.create(&order).await.unwrap();
        let record = self.record(&EventEnvelope::new(OrderEvent::placed(order.clone())));
        (order, record)
    }

    fn record(&self, envelope: &EventEnvelope) -> Record {
        self.raw(&envelope.partition_key(), envelope.to_json())
    }

    /// A record with arbitrary bytes; sequence numbers grow like AWS's (56 digits).
    fn raw(&self, partition_key: &str, data: Vec<u8>) -> Record {
        let n = self.sequence.fetch_add(1, Ordering::SeqCst);
        Record {
            partition_key: partition_key.to_owned(),
            data,
            sequence_number: format!("4959033827149025660855969253836157109592157598913{n:07}"),
        }
    }

    async fn deliver(&self, records: &[&Record]) -> Vec<String> {
        self.deliver_until(records, Deadline::none()).await
    }

    async fn deliver_until(&self, records: &[&Record], deadline: Deadline) -> Vec<String> {
        let records: Vec<Value> = records
            .iter()
            .map(|r| {
                json!({
                    "kinesis": {
                        "kinesisSchemaVersion": "1.0",
                        "partitionKey": r.partition_key,
                        "sequenceNumber": r.sequence_number,
                        "data": STANDARD.encode(&r.data),
                        "approximateArrivalTimestamp": 1_795_305_314.123
                    },
                    "eventSource": "aws:kinesis",
                    "eventVersion": "1.0",
                    "eventID": format!("shardId-000000000000:{}", r.sequence_number),
                    "eventName": "aws:kinesis:record",
                    "invokeIdentityArn": "arn:aws:iam::123456789012:role/orders-process-order-role",
                    "awsRegion": "us-east-1",
                    "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/orders-order-events"
                })
            })
            .collect();
        let event: KinesisEvent = serde_json::from_value(json!({ "Records": records })).unwrap();
        let response = self.processor.handle_until(event, deadline).await;
        response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier.expect("an item identifier"))
            .collect()
    }

    async fn order(&self, order: &Order) -> Order {
        self.store
            .get(&order.order_id)
            .await
            .unwrap()
            .expect("stored order")
    }

    /// The events the relay publishes for the versions processing stored (the test's own
    /// placements, version 1, left out).
    async fn published(&self) -> Vec<Value> {
        self.emulator
            .table_changes(&self.orders)
            .await
            .records
            .iter()
            .filter_map(|r| match relay::change_of(r) {
                relay::Change::Publish(envelope) => Some(envelope),
                _ => None,
            })
            .filter(|e| e.event.order().version > 1)
            .map(|e| serde_json::to_value(&*e).unwrap())
            .collect()
    }
}

#[tokio::test]
async fn reserves_stock_processes_and_publishes() {
    let stack = spawn_stack().await;
    stack.product("sku-a", 5).await;
    stack.product("sku-b", 2).await;
    let (order, record) = stack.place(&[("sku-a", 2), ("sku-b", 1)]).await;
    assert!(stack.deliver(&[&record]).await.is_empty());

    let processed = stack.order(&order).await;
    assert_eq!(
        (processed.status, processed.version),
        (OrderStatus::Processed, 2)
    );
    assert!(processed.processed_at.is_some());
    assert_eq!(
        (stack.stock("sku-a").await, stack.stock("sku-b").await),
        (3, 1)
    );
    let events = stack.published().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["eventType"], "OrderProcessed");
    assert_eq!(
        events[0]["payload"]["order"],
        serde_json::to_value(&processed).unwrap()
    );
}

#[tokio::test]
async fn unknown_products_and_missing_stock_fail_the_order_with_a_reason() {
    let stack = spawn_stack().await;
    stack.product("sku-a", 1).await;
    let (unknown, r1) = stack.place(&[("sku-a", 1), ("sku-nope", 1)]).await;
    let (short, r2) = stack.place(&[("sku-a", 2)]).await;
    assert!(stack.deliver(&[&r1, &r2]).await.is_empty());
    let unknown = stack.order(&unknown).await;
    assert_eq!(
        (unknown.status, unknown.failure_reason.map(|r| r.as_str())),
        (OrderStatus::Failed, Some("unknown_product"))
    );
    assert!(unknown.failed_at.is_some());
    let short = stack.order(&short).await;
    assert_eq!(
        short.failure_reason.map(|r| r.as_str()),
        Some("out_of_stock")
    );
    assert_eq!(
        stack.stock("sku-a").await,
        1,
        "nothing reserved for failed orders"
    );
    let events = stack.published().await;
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e["eventType"] == "OrderFailed"));
    let reasons: Vec<_> = events
        .iter()
        .map(|e| e["payload"]["reason"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        reasons.contains(&"unknown_product".to_owned())
            && reasons.contains(&"out_of_stock".to_owned())
    );
}

#[tokio::test]
async fn a_price_changed_since_placement_fails_the_order_and_sells_nothing() {
    let stack = spawn_stack().await;
    stack.product("sku-p", 5).await;
    let (order, record) = stack.place(&[("sku-p", 2)]).await;
    // The catalog price moves from 10.00 to 12.99 after the order was placed at 10.00.
    let mut repriced = stack
        .processor
        .catalog
        .get(&ProductId::parse("sku-p").unwrap())
        .await
        .unwrap()
        .unwrap();
    repriced.price = Money::from_minor(1299).unwrap();
    stack.processor.catalog.put(&repriced).await.unwrap();

    // Even a reservation that skipped the check is refused by the stored price.
    let processed = order
        .transition(OrderStatus::Processed, Timestamp::now())
        .unwrap();
    let applied = stack
        .processor
        .commands
        .apply(
            &processed,
            &StockChange::Reserve(StockChange::lines(&order)),
        )
        .await
        .unwrap();
    assert_eq!(
        applied,
        Applied::Refused(ProductId::parse("sku-p").unwrap())
    );

    assert!(stack.deliver(&[&record]).await.is_empty());
    let failed = stack.order(&order).await;
    assert_eq!(
        (failed.status, failed.failure_reason.map(|r| r.as_str())),
        (OrderStatus::Failed, Some("price_changed"))
    );
    assert_eq!(stack.stock("sku-p").await, 5, "nothing sold");
}

#[tokio::test]
async fn limited_stock_is_never_oversold() {
    let stack = spawn_stack().await;
    stack.product("sku-hot", 7).await;
    let mut placed = Vec::new();
    for _ in 0..20 {
        placed.push(stack.place(&[("sku-hot", 1)]).await);
    }
    let records: Vec<&Record> = placed.iter().map(|(_, r)| r).collect();
    assert!(stack.deliver(&records).await.is_empty());
    let mut processed = 0;
    for (order, _) in &placed {
        match stack.order(order).await.status {
            OrderStatus::Processed => processed += 1,
            OrderStatus::Failed => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(processed, 7);
    assert_eq!(stack.stock("sku-hot").await, 0);
}

#[tokio::test]
async fn redelivered_batches_and_bisected_halves_change_nothing() {
    let stack = spawn_stack().await;
    stack.product("sku-a", 100).await;
    let mut placed = Vec::new();
    for q in 1..=6 {
        placed.push(stack.place(&[("sku-a", q)]).await);
    }
    let records: Vec<&Record> = placed.iter().map(|(_, r)| r).collect();
    assert!(stack.deliver(&records).await.is_empty());
    let stock = stack.stock("sku-a").await;
    assert_eq!(stock, 100 - 21);
    let events = stack.published().await.len();
    assert_eq!(events, 6);

    assert!(
        stack.deliver(&records).await.is_empty(),
        "the same batch again"
    );
    assert!(
        stack.deliver(&records[3..]).await.is_empty(),
        "a bisected half"
    );
    assert_eq!(stack.stock("sku-a").await, stock, "no double reservation");
    assert_eq!(stack.published().await.len(), events, "no duplicate events");
    for (order, _) in &placed {
        assert_eq!(stack.order(order).await.version, 2);
    }
}

#[tokio::test]
async fn poison_records_are_dead_lettered_whole_and_the_rest_processed() {
    let stack = spawn_stack().await;
    stack.product("sku-a", 10).await;
    let (first, r1) = stack.place(&[("sku-a", 1)]).await;
    let garbage = stack.raw("junk", vec![0xff, 0x00, 0x13, 0x37]);
    // A version newer than this build reads (OrderPlaced is at 2).
    let (_, newer_source) = stack.place(&[("sku-a", 1)]).await;
    let mut newer: Value = serde_json::from_slice(&newer_source.data).unwrap();
    newer["schemaVersion"] = json!(3);
    let newer = stack.raw(&newer_source.partition_key, newer.to_string().into_bytes());
    // Valid JSON for an order that is not in the table.
    let ghost_order = {
        let (mut o, _) = stack.place(&[("sku-a", 1)]).await;
        o.order_id = OrderId::new(ulid::Ulid::new());
        o
    };
    let ghost = stack.record(&EventEnvelope::new(OrderEvent::placed(ghost_order.clone())));
    let (last, r5) = stack.place(&[("sku-a", 2)]).await;

    let failures = stack.deliver(&[&r1, &garbage, &newer, &ghost, &r5]).await;
    assert!(failures.is_empty(), "poison is not retried: {failures:?}");
    assert_eq!(stack.order(&first).await.status, OrderStatus::Processed);
    assert_eq!(stack.order(&last).await.status, OrderStatus::Processed);
    assert_eq!(stack.stock("sku-a").await, 7);

    let letters = stack.emulator.queue_messages(&stack.dlq).await;
    assert_eq!(letters.len(), 3, "{letters:#?}");
    let by_reason = |reason: &str| {
        letters
            .iter()
            .find(|l| l["reason"] == reason)
            .unwrap_or_else(|| panic!("{reason} in {letters:#?}"))
    };
    let junk = by_reason("not_json");
    assert_eq!(
        junk["record"]["kinesis"]["data"],
        STANDARD.encode([0xff, 0x00, 0x13, 0x37]),
        "the full payload"
    );
    assert_eq!(
        junk["record"]["kinesis"]["sequenceNumber"],
        garbage.sequence_number.as_str()
    );
    assert_eq!(junk["record"]["kinesis"]["partitionKey"], "junk");
    assert_eq!(junk["record"]["shardId"], "shardId-000000000000");
    assert_eq!(junk["function"], "orders-process-order");
    assert!(!junk["error"].as_str().unwrap().is_empty());
    assert_eq!(
        by_reason("unsupported_schema_version")["record"]["kinesis"]["sequenceNumber"],
        newer.sequence_number.as_str()
    );
    let missing = by_reason("order_not_found");
    assert!(
        missing["error"]
            .as_str()
            .unwrap()
            .contains(&ghost_order.order_id.to_string())
    );
}

#[tokio::test]
async fn an_order_placed_event_for_a_version_past_pending_is_poison_not_retried() {
    let stack = spawn_stack().await;
    stack.product("sku-a", 10).await;
    let (order, _) = stack.place(&[("sku-a", 3)]).await;
    // What an old producer once published on an idempotent retry: OrderPlaced carrying the
    // order as processed (version 2). Retrying it can never succeed.
    let processed = order
        .transition(OrderStatus::Processed, Timestamp::now())
        .unwrap();
    let wrong = stack.record(&EventEnvelope::new(OrderEvent::placed(processed.clone())));
    assert!(stack.deliver(&[&wrong]).await.is_empty(), "not retried");
    assert_eq!(stack.order(&order).await.status, OrderStatus::Pending);
    assert_eq!(stack.stock("sku-a").await, 10);
    let letters = stack.emulator.queue_messages(&stack.dlq).await;
    assert_eq!(letters.len(), 1, "{letters:#?}");
    assert_eq!(letters[0]["reason"], "not_pending");
    assert!(stack.published().await.is_empty());
}

#[tokio::test]
async fn events_it_does_not_own_are_skipped() {
    let stack = spawn_stack().await;
    stack.product("sku-a", 10).await;
    let (order, _) = stack.place(&[("sku-a", 1)]).await;
    let processed = order
        .transition(OrderStatus::Processed, Timestamp::now())
        .unwrap();
    let other = stack.record(&EventEnvelope::new(OrderEvent::OrderProcessed {
        order: processed,
    }));
    let mut unknown: Value = serde_json::from_slice(&other.data).unwrap();
    unknown["eventType"] = json!("OrderGiftWrapped");
    let unknown = stack.raw(&other.partition_key, unknown.to_string().into_bytes());
    assert!(stack.deliver(&[&other, &unknown]).await.is_empty());
    assert_eq!(stack.order(&order).await.status, OrderStatus::Pending);
    assert_eq!(stack.stock("sku-a").await, 10);
    assert!(stack.published().await.is_empty());
    assert!(stack.emulator.queue_messages(&stack.dlq).await.is_empty());
}

#[tokio::test]
async fn metrics_count_processed_failed_dead_lettered_and_duplicate_records() {
    let metrics = RecordedMetrics::start();
    let stack = spawn_stack().await;
    stack.product("sku-a", 3).await;
    let (_, fits) = stack.place(&[("sku-a", 2)]).await;
    let (_, short) = stack.place(&[("sku-a", 5)]).await;
    let (_, unknown) = stack.place(&[("sku-nope", 1)]).await;
    let garbage = stack.raw("junk", b"{not json".to_vec());
    assert!(
        stack
            .deliver(&[&fits, &short, &unknown, &garbage])
            .await
            .is_empty()
    );
    assert_eq!(
        metrics.take(),
        json!({
            "BatchSize": [4.0],
            "OrdersProcessed": 1,
            "OrdersFailed{reason=out_of_stock}": 1,
            "OrdersFailed{reason=unknown_product}": 1,
            "DeadLettered": 1,
        })
    );

    assert!(stack.deliver(&[&fits, &short]).await.is_empty());
    assert_eq!(
        metrics.take(),
        json!({ "BatchSize": [2.0], "DuplicateRecords": 2 }),
        "a redelivery processes nothing again"
    );
}

/// An invocation whose deadline has come starts no order: every order's first record is
/// handed back, nothing is reserved, and the next invocation does all of it, once.
#[tokio::test]
async fn an_invocation_out_of_time_starts_nothing_and_hands_every_order_back() {
    let stack = spawn_stack().await;
    stack.product("sku-d", 10).await;
    let mut placed = Vec::new();
    for q in 1..=3 {
        placed.push(stack.place(&[("sku-d", q)]).await);
    }
    let records: Vec<&Record> = placed.iter().map(|(_, r)| r).collect();
    let past = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 1_000;
    let handed_back = stack
        .deliver_until(&records, Deadline::from_epoch_millis(past))
        .await;
    // Lambda resumes from the lowest record named: the batch's first.
    let lowest = records
        .iter()
        .map(|r| r.sequence_number.clone())
        .min_by(|a, b| orders_core::sequence::compare(a, b))
        .unwrap();
    assert_eq!(handed_back, vec![lowest]);
    assert_eq!(stack.stock("sku-d").await, 10, "nothing reserved");
    assert!(stack.deliver(&records).await.is_empty());
    assert_eq!(stack.stock("sku-d").await, 10 - 6);
    for (order, _) in &placed {
        assert_eq!(stack.order(order).await.version, 2);
    }
}
