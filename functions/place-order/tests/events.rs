//! `POST /events` over in-memory ports: what is accepted, what is refused whole, who may
//! name which customer, and what a stream that refuses records does to the answer.

mod memory;

use memory::{MemoryApp, app, request};
use orders_tests::{Claims, api_event};
use place_order::handler::handle;
use serde_json::{Value, json};

async fn post(app: &MemoryApp, body: Value, token: Option<&Claims<'_>>) -> (u16, Value) {
    let event = api_event(
        "POST /events",
        "/events",
        &[],
        &[],
        Some(&body.to_string()),
        token,
    );
    let response = handle(app, request(event)).await;
    let status = response.status().as_u16();
    let json = match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap(),
        _ => Value::Null,
    };
    (status, json)
}

/// The memory app's clock reads 2026-11-21T10:00:00Z.
fn viewed(id: &str, session: &str, customer: Option<&str>) -> Value {
    let mut event = json!({
        "eventId": id, "eventType": "ProductViewed", "sessionId": session,
        "occurredAt": "2026-11-21T09:59:30Z", "productId": "sku-1"
    });
    if let Some(c) = customer {
        event["customerId"] = json!(c);
    }
    event
}

#[tokio::test]
async fn a_batch_goes_on_the_stream_whole_and_identical_copies_count_once() {
    let app = app();
    let body = json!({"events": [
        viewed("e-1", "s-1", None),
        viewed("e-2", "s-1", None),
        viewed("e-1", "s-1", None),
        {"eventId": "e-3", "eventType": "CheckoutStarted", "sessionId": "s-2",
         "occurredAt": "2026-11-21T09:59:40Z", "cart": ["sku-1", "sku-2"]},
    ]});
    let (status, answer) = post(&app, body, Some(&Claims::staff())).await;
    assert_eq!((status, answer), (202, json!({"accepted": 3})));
    let events = app.activity.publisher.events();
    let keys: Vec<String> = events.iter().map(|e| e.event.dedup_key()).collect();
    assert_eq!(keys, ["s-1/e-1", "s-1/e-2", "s-2/e-3"]);
    assert!(
        events
            .iter()
            .all(|e| e.received_at.to_string() == "2026-11-21T10:00:00.000Z")
    );
}

#[tokio::test]
async fn one_bad_field_refuses_the_batch_and_names_every_bad_field() {
    let app = app();
    let mut late = viewed("e-2", "s-1", None);
    late["occurredAt"] = json!("2026-11-21T10:30:00Z");
    let body = json!({"events": [
        viewed("e-1", "s-1", None),
        late,
        {"eventId": "e-3", "eventType": "Teleported", "sessionId": "s-1",
         "occurredAt": "2026-11-21T09:59:30Z"},
    ]});
    let (status, answer) = post(&app, body, Some(&Claims::staff())).await;
    assert_eq!(status, 400, "{answer}");
    let fields: Vec<&str> = answer["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"events[1].occurredAt"), "{answer}");
    assert!(fields.contains(&"events[2].eventType"), "{answer}");
    assert!(app.activity.publisher.events().is_empty());

    for bad in [json!([]), json!({"events": []}), json!({"events": "x"})] {
        let (status, _) = post(&app, bad, Some(&Claims::staff())).await;
        assert_eq!(status, 400);
    }
    assert!(app.activity.publisher.events().is_empty());
}

#[tokio::test]
async fn a_customer_sends_only_its_own_events() {
    let app = app();
    let alice = Claims::customer("alice");
    let body = json!({"events": [viewed("e-1", "s-1", None), viewed("e-2", "s-1", Some("alice"))]});
    let (status, _) = post(&app, body, Some(&alice)).await;
    assert_eq!(status, 202);
    let customers: Vec<Option<String>> = app
        .activity
        .publisher
        .events()
        .iter()
        .map(|e| e.event.customer_id.as_ref().map(|c| c.to_string()))
        .collect();
    assert_eq!(customers, [Some("alice".into()), Some("alice".into())]);

    let body = json!({"events": [viewed("e-3", "s-1", Some("bob"))]});
    let (status, answer) = post(&app, body, Some(&alice)).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(app.activity.publisher.events().len(), 2);
}

#[tokio::test]
async fn refused_records_are_put_again_and_a_stream_that_keeps_refusing_is_a_503() {
    let app = app();
    app.activity.publisher.fail_next(2);
    let body = json!({"events": [viewed("e-1", "s-1", None), viewed("e-2", "s-2", None)]});
    let (status, _) = post(&app, body.clone(), None).await;
    assert_eq!(status, 202);
    assert_eq!(app.activity.publisher.events().len(), 2);

    app.activity.publisher.fail_next(100);
    let (status, answer) = post(&app, body, None).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "unavailable");
}
