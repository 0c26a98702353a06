//! The notifier over in-memory ports: who gets which message, closed sockets, failures.

use async_trait::async_trait;
use aws_lambda_events::event::kinesis::KinesisEvent;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use notify::Notifier;
use orders_core::live::{Audience, Connection, Topic};
use orders_core::memory::{FixedClock, MemoryDeadLetters, MemoryLiveConnections, RecordingPusher};
use orders_core::order::NewLineItem;
use orders_core::ports::{Delivery, LiveConnections, Pusher};
use orders_core::{
    Currency, CustomerId, EventEnvelope, Money, Order, OrderError, OrderEvent, OrderId,
    OrderStatus, PlaceOrder, ProductId, Quantity, Timestamp,
};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

fn order(n: u128, customer: &str) -> Order {
    let at = Timestamp::parse("2026-12-07T10:15:42Z").unwrap();
    Order::place(
        OrderId::new(ulid::Ulid::from_parts(at.unix_millis() as u64, n)),
        &PlaceOrder {
            customer_id: CustomerId::parse(customer).unwrap(),
            currency: Currency::parse("USD").unwrap(),
            items: vec![NewLineItem {
                product_id: ProductId::parse("sku-1").unwrap(),
                quantity: Quantity::new(2).unwrap(),
                unit_price: Money::from_minor(1999).unwrap(),
            }],
        },
        at,
    )
}

fn batch(records: &[(&str, Vec<u8>)]) -> KinesisEvent {
    let records: Vec<Value> = records
        .iter()
        .map(|(sequence, data)| {
            json!({
                "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "k", "sequenceNumber": sequence,
                            "data": STANDARD.encode(data), "approximateArrivalTimestamp": 1.0},
                "eventSource": "aws:kinesis", "eventVersion": "1.0",
                "eventID": format!("shardId-000000000000:{sequence}"), "eventName": "aws:kinesis:record",
                "awsRegion": "us-east-1", "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/s"
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

fn event(order: &Order) -> Vec<u8> {
    EventEnvelope::new(OrderEvent::for_current_state(order)).to_json()
}

async fn listen(store: &MemoryLiveConnections, id: &str, audience: Audience, topics: &[Topic]) {
    store
        .open(&Connection {
            id: id.into(),
            audience,
            topics: topics.iter().copied().collect(),
            expires_at: Timestamp::now().plus_seconds(3600),
        })
        .await
        .unwrap();
}

fn customer(id: &str) -> Audience {
    Audience::Customer(CustomerId::parse(id).unwrap())
}

fn notifier<P: Pusher>(
    store: &MemoryLiveConnections,
    pusher: P,
    letters: &MemoryDeadLetters,
) -> Notifier<MemoryLiveConnections, P, MemoryDeadLetters> {
    Notifier {
        connections: store.clone(),
        pusher,
        dead_letters: letters.clone(),
        clock: Arc::new(FixedClock(Timestamp::now())),
        function_name: "notify".into(),
    }
}

/// The messages a socket got, batches unpacked.
fn received(pusher: &RecordingPusher, connection: &str) -> Vec<Value> {
    pusher
        .pushed()
        .into_iter()
        .filter(|(id, _)| id == connection)
        .flat_map(|(_, body)| {
            let frame: Value = serde_json::from_str(&body).unwrap();
            match frame["type"].as_str() {
                Some("batch") => frame["messages"].as_array().unwrap().clone(),
                _ => vec![frame],
            }
        })
        .collect()
}

fn frames(pusher: &RecordingPusher, connection: &str) -> usize {
    pusher
        .pushed()
        .iter()
        .filter(|(id, _)| id == connection)
        .count()
}

#[tokio::test]
async fn staff_get_every_change_and_the_deltas_a_customer_only_its_own_orders() {
    let store = MemoryLiveConnections::default();
    listen(
        &store,
        "staff",
        Audience::Everyone,
        &[Topic::Orders, Topic::Analytics],
    )
    .await;
    listen(&store, "staff-orders", Audience::Everyone, &[Topic::Orders]).await;
    listen(&store, "c1", customer("c-1"), &[Topic::Orders]).await;
    listen(&store, "c2", customer("c-2"), &[Topic::Orders]).await;
    listen(&store, "idle", Audience::Everyone, &[]).await;
    let pusher = RecordingPusher::default();
    let letters = MemoryDeadLetters::default();

    let mine = order(1, "c-1");
    let processed = mine
        .transition(OrderStatus::Processed, mine.created_at.plus_seconds(2))
        .unwrap();
    let theirs = order(2, "c-3");
    let response = notifier(&store, pusher.clone(), &letters)
        .handle(batch(&[
            ("1", event(&mine)),
            // A producer's duplicate: pushed once.
            ("2", event(&mine)),
            ("3", event(&theirs)),
            ("4", event(&processed)),
        ]))
        .await;
    assert!(response.batch_item_failures.is_empty());

    let staff = received(&pusher, "staff");
    assert_eq!(staff.iter().filter(|m| m["type"] == "order").count(), 3);
    assert_eq!(staff.iter().filter(|m| m["type"] == "analytics").count(), 3);
    let last_delta = staff.iter().rfind(|m| m["type"] == "analytics").unwrap();
    assert_eq!(last_delta["processed"], 1);
    assert_eq!(last_delta["revenue"], 3998);
    assert_eq!(received(&pusher, "staff-orders").len(), 3);
    let c1 = received(&pusher, "c1");
    assert_eq!(c1.len(), 2, "{c1:?}");
    assert!(
        c1.iter()
            .all(|m| m["type"] == "order" && m["order"]["customerId"] == "c-1")
    );
    assert_eq!(c1[1]["order"]["status"], "PROCESSED");
    assert!(received(&pusher, "c2").is_empty());
    assert!(received(&pusher, "idle").is_empty());
    // One message (frame) per socket for the whole batch.
    assert_eq!(frames(&pusher, "staff"), 1);
    assert_eq!(frames(&pusher, "c1"), 1);
}

#[test]
fn frames_hold_many_messages_up_to_the_metering_step() {
    let small = "{\"type\":\"order\"}";
    assert_eq!(
        notify::notifier::frames_of(&[small]),
        vec![small.to_owned()]
    );
    let two = notify::notifier::frames_of(&[small, small]);
    assert_eq!(two.len(), 1);
    let parsed: Value = serde_json::from_str(&two[0]).unwrap();
    assert_eq!(parsed["messages"].as_array().unwrap().len(), 2);
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(20_000));
    let frames = notify::notifier::frames_of(&[&big, &big, small]);
    assert_eq!(frames.len(), 2);
    assert!(
        frames
            .iter()
            .all(|f| f.len() <= notify::notifier::FRAME_BYTES)
    );
}

#[tokio::test]
async fn closed_sockets_are_forgotten_and_poison_is_dead_lettered() {
    let store = MemoryLiveConnections::default();
    listen(&store, "open", Audience::Everyone, &[Topic::Orders]).await;
    listen(&store, "closed", Audience::Everyone, &[Topic::Orders]).await;
    let pusher = RecordingPusher::default();
    pusher.gone.lock().unwrap().insert("closed".into());
    let letters = MemoryDeadLetters::default();
    let response = notifier(&store, pusher.clone(), &letters)
        .handle(batch(&[
            ("1", b"not json".to_vec()),
            ("2", event(&order(1, "c-1"))),
        ]))
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(received(&pusher, "open").len(), 1);
    assert!(store.get("closed").await.unwrap().is_none());
    assert!(store.get("open").await.unwrap().is_some());
    let dead = letters.letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].function, "notify");
}

/// Fails the `fail_at`-th push with a throttle, then delivers.
struct Flaky {
    calls: AtomicUsize,
    fail_at: usize,
    sent: Mutex<Vec<String>>,
}

#[async_trait]
impl Pusher for Flaky {
    async fn push(&self, connection_id: &str, body: &str) -> Result<Delivery, OrderError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_at {
            return Err(OrderError::Throttled("slow down".into()));
        }
        self.sent
            .lock()
            .unwrap()
            .push(format!("{connection_id} {body}"));
        Ok(Delivery::Sent)
    }
}

#[tokio::test]
async fn a_push_that_may_pass_later_hands_the_batch_back() {
    let store = MemoryLiveConnections::default();
    listen(&store, "staff-1", Audience::Everyone, &[Topic::Orders]).await;
    listen(&store, "staff-2", Audience::Everyone, &[Topic::Orders]).await;
    let letters = MemoryDeadLetters::default();
    let flaky = Flaky {
        calls: AtomicUsize::new(0),
        fail_at: 2,
        sent: Mutex::new(Vec::new()),
    };
    let live = notifier(&store, flaky, &letters);
    let response = live
        .handle(batch(&[
            ("10", event(&order(1, "c-1"))),
            ("11", event(&order(2, "c-1"))),
        ]))
        .await;
    let failures: Vec<_> = response
        .batch_item_failures
        .iter()
        .filter_map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failures, vec!["10".to_owned()]);
    // One socket got its frame; it gets it again with the retry and drops it by eventId.
    assert_eq!(live.pusher.sent.lock().unwrap().len(), 1);
}

/// `OrderPlaced` as the version-1 relay published it (recorded from that build): what the
/// live sockets get from it is what they get from its version-2 publish, and the two,
/// one change with one event id, are pushed once.
#[tokio::test]
async fn a_v1_order_placed_is_pushed_as_the_v2_one_and_its_v2_publish_is_its_duplicate() {
    let v1 = include_str!("../../../tests/events/fixtures/v1/OrderPlaced.one-line.json");
    let recorded: Value = serde_json::from_str(v1).unwrap();
    assert_eq!(recorded["schemaVersion"], 1);
    let order: Order = serde_json::from_value(recorded["payload"]["order"].clone()).unwrap();
    let v2 = event(&order);
    let pushed = |records: Vec<(&'static str, Vec<u8>)>| async move {
        let store = MemoryLiveConnections::default();
        listen(
            &store,
            "staff",
            Audience::Everyone,
            &[Topic::Orders, Topic::Analytics],
        )
        .await;
        listen(&store, "c1", customer("c-1"), &[Topic::Orders]).await;
        let pusher = RecordingPusher::default();
        let letters = MemoryDeadLetters::default();
        let response = notifier(&store, pusher.clone(), &letters)
            .handle(batch(&records))
            .await;
        assert!(response.batch_item_failures.is_empty());
        assert!(letters.letters().is_empty());
        (received(&pusher, "staff"), received(&pusher, "c1"))
    };
    let from_v1 = pushed(vec![("1", v1.as_bytes().to_vec())]).await;
    let from_v2 = pushed(vec![("1", v2.clone())]).await;
    assert_eq!(from_v1, from_v2);
    let (staff, c1) = &from_v1;
    assert_eq!(staff.len(), 2, "the order and its delta: {staff:?}");
    assert_eq!(c1.len(), 1);
    assert_eq!(c1[0]["eventId"], recorded["eventId"]);
    assert_eq!(c1[0]["order"], recorded["payload"]["order"]);
    let both = pushed(vec![("1", v1.as_bytes().to_vec()), ("2", v2)]).await;
    assert_eq!(both, from_v1, "pushed once");
}
