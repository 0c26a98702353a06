//! The relay against the emulator: orders written through the production adapters into a
//! table cloned from the deployed one (change stream included), the table's change records
//! read the way the local runner hands them to Lambda, the relay publishing to a fresh stream.

use aws_lambda_events::event::dynamodb::EventRecord;
use orders_aws::deadline::Deadline;
use orders_aws::dynamo::orders::order_item;
use orders_aws::{DynamoCatalog, DynamoOrderCommands, DynamoOrderStore, KinesisPublisher};
use orders_core::memory::FixedClock;
use orders_core::order::NewLineItem;
use orders_core::ports::{
    Applied, Catalog, DeadLetter, DeadLetterQueue, OrderCommands, OrderStore, StockChange,
};
use orders_core::{
    Currency, CustomerId, Decoded, EventEnvelope, Money, Order, OrderError, OrderId, OrderStatus,
    PlaceOrder, Product, ProductId, Quantity, Timestamp,
};
use orders_tests::event_samples::RECORDED_V1_ORDER_PLACED;
use orders_tests::{Emulator, FlakyPublisher};
use relay::{Change, Relay, change_of};

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Letters(Mutex<Vec<DeadLetter>>);

#[async_trait::async_trait]
impl DeadLetterQueue for Letters {
    async fn send(&self, letter: &DeadLetter) -> Result<(), OrderError> {
        self.0.lock().unwrap().push(letter.clone());
        Ok(())
    }
}

struct Stack {
    emulator: Emulator,
    table: String,
    products: String,
    stream: String,
}

async fn stack() -> Stack {
    let emulator = Emulator::connect().await;
    let (table, products, stream) = tokio::join!(
        emulator.clone_table("orders_table"),
        emulator.clone_table("products_table"),
        emulator.fresh_stream()
    );
    Stack {
        emulator,
        table,
        products,
        stream,
    }
}

impl Stack {
    async fn changes(&self) -> aws_lambda_events::event::dynamodb::Event {
        self.emulator.table_changes(&self.table).await
    }

    fn relay(&self, failures: usize) -> Relay<FlakyPublisher<KinesisPublisher>, Letters> {
        Relay {
            publisher: FlakyPublisher::new(
                KinesisPublisher::from_sdk(&self.emulator.sdk, &self.stream),
                failures,
            ),
            dead_letters: Letters::default(),
            clock: Arc::new(FixedClock(Timestamp::now())),
            function_name: "relay".into(),
        }
    }

    /// (orderId, eventType, version) of every event on the stream, in order.
    async fn published(&self) -> Vec<(String, String, u64)> {
        self.emulator
            .stream_records(&self.stream)
            .await
            .into_iter()
            .map(|(key, e)| {
                assert_eq!(e["orderId"], json!(key), "partition key = order id");
                // At this build's version of its type (OrderPlaced: 2, with totals).
                orders_tests::assert_event_conforms(&e);
                (
                    key,
                    e["eventType"].as_str().unwrap().to_owned(),
                    e["payload"]["order"]["version"].as_u64().unwrap(),
                )
            })
            .collect()
    }
}

fn placed(n: u128, sku: &str, quantity: u32) -> Order {
    let now = Timestamp::now();
    let command = PlaceOrder {
        customer_id: CustomerId::parse("c-relay").unwrap(),
        currency: Currency::parse("USD").unwrap(),
        items: vec![NewLineItem {
            product_id: ProductId::parse(sku).unwrap(),
            quantity: Quantity::new(quantity).unwrap(),
            unit_price: Money::from_minor(250).unwrap(),
        }],
    };
    Order::place(
        OrderId::new(ulid::Ulid::from_parts(now.unix_millis() as u64, n)),
        &command,
        now,
    )
}

#[tokio::test]
async fn every_stored_version_is_published_once_in_order_and_nothing_else() {
    let stack = stack().await;
    let sdk = &stack.emulator.sdk;
    let store = DynamoOrderStore::from_sdk(sdk, &stack.table);
    let commands = DynamoOrderCommands::from_sdk(sdk, &stack.table, &stack.products);
    let catalog = DynamoCatalog::from_sdk(sdk, &stack.products);
    catalog
        .put(&Product {
            product_id: ProductId::parse("sku-r").unwrap(),
            name: "R".into(),
            price: Money::from_minor(250).unwrap(),
            stock: 1,
            version: 1,
            updated_at: Timestamp::now(),
        })
        .await
        .unwrap();

    // a: placed (the writer "dies" before anything else), then cancelled by a client.
    let a = placed(1, "sku-r", 1);
    store.create(&a).await.unwrap();
    let a2 = a
        .transition(OrderStatus::Cancelled, Timestamp::now())
        .unwrap();
    assert_eq!(
        commands.apply(&a2, &StockChange::None).await.unwrap(),
        Applied::Done
    );
    // b: a reservation that runs out of stock is cancelled as a whole, then b fails.
    let b = placed(2, "sku-r", 5);
    store.create(&b).await.unwrap();
    let b2 = b
        .transition(OrderStatus::Processed, Timestamp::now())
        .unwrap();
    assert!(matches!(
        commands
            .apply(&b2, &StockChange::Reserve(StockChange::lines(&b)))
            .await
            .unwrap(),
        Applied::Refused(_)
    ));
    let b2 = b
        .fail(orders_core::FailureReason::OutOfStock, Timestamp::now())
        .unwrap();
    assert_eq!(
        commands.apply(&b2, &StockChange::None).await.unwrap(),
        Applied::Done
    );
    // A write that keeps the version (an index-key backfill) is not a new version.
    stack
        .emulator
        .dynamodb()
        .update_item()
        .table_name(&stack.table)
        .key(
            "orderId",
            aws_sdk_dynamodb::types::AttributeValue::S(a.order_id.to_string()),
        )
        .update_expression("SET customerStatus = :s")
        .expression_attribute_values(":s", aws_sdk_dynamodb::types::AttributeValue::S("x".into()))
        .send()
        .await
        .unwrap();

    let relay = stack.relay(0);
    let response = relay.handle(stack.changes().await).await;
    assert!(response.batch_item_failures.is_empty());
    let (a_id, b_id) = (a.order_id.to_string(), b.order_id.to_string());
    let mut published = stack.published().await;
    published.sort_by(|x, y| x.0.cmp(&y.0).then(x.2.cmp(&y.2)));
    assert_eq!(
        published,
        vec![
            (a_id.clone(), "OrderPlaced".into(), 1),
            (a_id, "OrderCancelled".into(), 2),
            (b_id.clone(), "OrderPlaced".into(), 1),
            (b_id, "OrderFailed".into(), 2),
        ]
    );
}

#[tokio::test]
async fn a_failed_publish_is_retried_from_that_record_and_repeats_only_same_event_ids() {
    let stack = stack().await;
    let store = DynamoOrderStore::from_sdk(&stack.emulator.sdk, &stack.table);
    let orders: Vec<Order> = (10..14).map(|n| placed(n, "sku-x", 1)).collect();
    for order in &orders {
        store.create(order).await.unwrap();
    }
    let event = stack.changes().await;
    // The first publish is throttled: that order's record is reported, the others go out.
    let relay = stack.relay(1);
    let response = relay.handle(event.clone()).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    let failed = response.batch_item_failures[0]
        .item_identifier
        .clone()
        .unwrap();
    assert_eq!(stack.published().await.len(), 3);
    // Lambda redelivers from the failed record on: every order is now on the stream, and
    // the only repeats carry an eventId already there.
    let mut redelivered = event;
    redelivered.records.retain(|r| {
        orders_core::sequence::compare(r.change.sequence_number.as_deref().unwrap(), &failed)
            .is_ge()
    });
    assert!(
        relay
            .handle(redelivered)
            .await
            .batch_item_failures
            .is_empty()
    );
    let events: Vec<Value> = stack
        .emulator
        .stream_records(&stack.stream)
        .await
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    let ids: std::collections::BTreeSet<String> = events
        .iter()
        .map(|e| e["orderId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), orders.len());
    let event_ids: std::collections::BTreeSet<String> =
        events.iter().map(|e| e["eventId"].to_string()).collect();
    assert_eq!(event_ids.len(), orders.len(), "repeats are the same events");
}

#[tokio::test]
async fn an_image_that_is_not_an_order_is_dead_lettered_and_the_shard_moves_on() {
    let stack = stack().await;
    let client = stack.emulator.dynamodb();
    client
        .put_item()
        .table_name(&stack.table)
        .item(
            "orderId",
            aws_sdk_dynamodb::types::AttributeValue::S("junk".into()),
        )
        .item(
            "status",
            aws_sdk_dynamodb::types::AttributeValue::S("WHAT".into()),
        )
        .send()
        .await
        .unwrap();
    let good = placed(20, "sku-x", 1);
    DynamoOrderStore::from_sdk(&stack.emulator.sdk, &stack.table)
        .create(&good)
        .await
        .unwrap();
    let relay = stack.relay(0);
    let response = relay.handle(stack.changes().await).await;
    assert!(response.batch_item_failures.is_empty());
    let letters = relay.dead_letters.0.lock().unwrap().clone();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].reason, "not_an_order");
    assert_eq!(
        letters[0].record["dynamodb"]["Keys"]["orderId"]["S"],
        "junk"
    );
    assert_eq!(
        stack.published().await,
        vec![(good.order_id.to_string(), "OrderPlaced".into(), 1)]
    );
}

/// An invocation whose deadline has come publishes nothing and hands every order back.
#[tokio::test]
async fn an_invocation_out_of_time_publishes_nothing_and_hands_every_order_back() {
    let stack = stack().await;
    let store = DynamoOrderStore::from_sdk(&stack.emulator.sdk, &stack.table);
    for n in 20..23 {
        store.create(&placed(n, "sku-t", 1)).await.unwrap();
    }
    let event = stack.changes().await;
    let past = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 1_000;
    let relay = stack.relay(0);
    let response = relay
        .handle_until(event.clone(), Deadline::from_epoch_millis(past))
        .await;
    // Lambda resumes from the lowest record named: one is enough, and the lowest it is.
    let lowest = event
        .records
        .iter()
        .filter_map(|r| r.change.sequence_number.clone())
        .min_by(|a, b| orders_core::sequence::compare(a, b));
    let named: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(named, vec![lowest]);
    assert!(stack.published().await.is_empty());
    assert!(relay.handle(event).await.batch_item_failures.is_empty());
    assert_eq!(stack.published().await.len(), 3);
}

/// The change record of `order`'s write, as the table's change stream carries it: the item
/// the adapter stores (index keys included) as the new image, `old` as the old one.
fn change_record(order: &Order, old: Option<&Order>) -> EventRecord {
    let image = |o: &Order| serde_dynamo::Item::from(order_item(o).unwrap());
    let mut record = EventRecord::default();
    record.event_name = if old.is_some() { "MODIFY" } else { "INSERT" }.into();
    record.change.new_image = image(order);
    if let Some(old) = old {
        record.change.old_image = image(old);
    }
    record
}

/// Across the deploy of `OrderPlaced` version 2: an order the version-1 relay published
/// (recorded from that build), published again by this relay — a publish retried across
/// the deploy, or the same change record redelivered — goes out as version 2 with the same
/// event id, so consumers drop it as a duplicate; and its version-1 record reads as exactly
/// this event. No emulator: the mapping of one change record.
#[test]
fn a_change_published_as_v1_before_the_deploy_is_published_as_v2_with_the_same_id() {
    for (name, recorded) in RECORDED_V1_ORDER_PLACED {
        let v1: Value = serde_json::from_str(recorded).unwrap();
        let order: Order = serde_json::from_value(v1["payload"]["order"].clone()).unwrap();
        let Change::Publish(event) = change_of(&change_record(&order, None)) else {
            panic!("{name}: a new order is published")
        };
        let json: Value = serde_json::from_slice(&event.to_json()).unwrap();
        orders_tests::assert_event_conforms(&json);
        assert_eq!(
            (&json["eventType"], &json["schemaVersion"]),
            (&json!("OrderPlaced"), &json!(2)),
            "{name}"
        );
        assert_eq!(json["eventId"], v1["eventId"], "{name}: one change, one id");
        assert_eq!(json["payload"]["order"], v1["payload"]["order"], "{name}");
        let lines = order.items.len();
        assert_eq!(
            json["payload"]["totals"],
            json!({"units": order.units(), "lines": lines}),
            "{name}"
        );
        assert_eq!(
            EventEnvelope::decode(recorded.as_bytes()),
            Ok(Decoded::Event(event.clone())),
            "{name}: consumers read the v1 record as this event"
        );
        // The next version of the order is its own event, at its own type's version.
        let processed = order
            .transition(OrderStatus::Processed, order.created_at.plus_seconds(1))
            .unwrap();
        let Change::Publish(next) = change_of(&change_record(&processed, Some(&order))) else {
            panic!("{name}: a new version is published")
        };
        assert_eq!(
            (next.event.event_type(), next.schema_version),
            ("OrderProcessed", 1)
        );
        assert_ne!(next.event_id, event.event_id);
    }
}
