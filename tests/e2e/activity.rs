//! Storefront activity through the stack: `POST /events` → the activity stream →
//! aggregate-activity → `GET /analytics/activity` and `/analytics/funnel`. The test's
//! events are dated in a minute of yesterday that nothing else writes (events are accepted
//! up to 24 h late), so its figures are exactly its own: a batch resent whole, resent
//! regrouped, and a refused batch must leave exactly one count of each unique event.

use crate::{api, client, client_as, unique};
use orders_core::Timestamp;
use orders_tests::Holder;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Sends one batch, again while the API answers 503 (as a storefront's client does: the
/// claims drop what did go through); the answer's status and body.
pub async fn send(client: &reqwest::Client, events: &[Value]) -> (StatusCode, Value) {
    let body = json!({ "events": events });
    for _ in 0..10 {
        let response = client
            .post(format!("{}/events", api()))
            .json(&body)
            .send()
            .await
            .expect("the stack answers");
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status != StatusCode::SERVICE_UNAVAILABLE {
            return (status, answer);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("POST /events kept answering 503");
}

/// An event of the test: `kind` is its type and type-specific fields.
pub fn event(id: &str, session: &str, at: Timestamp, kind: Value) -> Value {
    let mut event = json!({"eventId": id, "sessionId": session, "occurredAt": at.to_string()});
    for (k, v) in kind.as_object().expect("an object") {
        event[k] = v.clone();
    }
    event
}

/// Polls `path` (staff) until it answers `want`, for up to 90 s.
pub async fn converges(path: &str, want: &Value) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let response = client()
            .get(format!("{}{path}", api()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let got: Value = response.json().await.unwrap();
        if &got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} did not converge:\n got  {got}\n want {want}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A whole minute, about 23 hours ago, picked by the run (tests of one stack start at
/// different moments, so they do not share it).
fn yesterdays_minute() -> Timestamp {
    let now = Timestamp::now().unix_seconds();
    let minute = (now - 23 * 3600) / 60 * 60;
    Timestamp::from_unix_millis(minute * 1000).unwrap()
}

fn at(minute: Timestamp, second: i64) -> Timestamp {
    Timestamp::from_unix_millis(minute.unix_millis() + second * 1000).unwrap()
}

#[tokio::test]
async fn activity_and_funnel_count_each_event_once_through_retries() {
    let run = unique("act");
    let minute = yesterdays_minute();
    let (s1, s2, s3) = (
        format!("{run}-s1"),
        format!("{run}-s2"),
        format!("{run}-s3"),
    );
    let (p1, p2) = (format!("{run}-p1"), format!("{run}-p2"));
    let customer = format!("{run}-alice");
    let viewed = |p: &str| json!({"eventType": "ProductViewed", "productId": p});
    let added = |p: &str| json!({"eventType": "AddedToCart", "productId": p, "quantity": 2});
    let mut signed_in = event("e-1", &s1, at(minute, 1), viewed(&p1));
    signed_in["customerId"] = json!(customer);
    let events = vec![
        signed_in,
        event("e-2", &s1, at(minute, 2), added(&p1)),
        event("e-3", &s1, at(minute, 3), added(&p2)),
        event(
            "e-4",
            &s1,
            at(minute, 4),
            json!({"eventType": "RemovedFromCart", "productId": p2, "quantity": 1}),
        ),
        event(
            "e-5",
            &s1,
            at(minute, 5),
            json!({"eventType": "CheckoutStarted", "cart": [p1]}),
        ),
        event("e-1", &s2, at(minute, 10), viewed(&p1)),
        event("e-2", &s2, at(minute, 11), added(&p1)),
        event("e-1", &s3, at(minute, 20), viewed(&p2)),
    ];

    let (status, answer) = send(&client(), &events).await;
    assert_eq!(
        (status, answer),
        (StatusCode::ACCEPTED, json!({"accepted": 8}))
    );
    // The client got no answer and resends the batch; then resends part of it regrouped
    // with an identical copy inside the batch (collapsed there).
    send(&client(), &events).await;
    let regrouped = [&events[5..], &events[..3], &events[..1]].concat();
    let (status, answer) = send(&client(), &regrouped).await;
    assert_eq!(
        (status, answer),
        (StatusCode::ACCEPTED, json!({"accepted": 6}))
    );
    // A batch with one bad event stores nothing, not even its good ones.
    let bad = vec![
        event("e-9", &format!("{run}-s9"), at(minute, 30), viewed(&p1)),
        event(
            "e-10",
            &format!("{run}-s9"),
            at(minute, 31),
            json!({"eventType": "AddedToCart", "productId": p1}),
        ),
    ];
    let (status, answer) = send(&client(), &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["fields"][0]["field"], "events[1].quantity");

    let from = minute.to_string();
    let to = at(minute, 60).to_string();
    let window = format!("from={from}&to={to}");
    let report = json!({
        "from": from, "to": to,
        "activeSessions": 3, "activeCustomers": 1, "approximate": false,
        "views": 3, "cartAdds": 3, "cartRemoves": 1, "checkouts": 1,
        "cartSessions": 2, "checkoutSessions": 1, "abandonedSessions": 1,
        "abandonmentRate": 0.5
    });
    converges(&format!("/analytics/activity?{window}"), &report).await;
    converges(
        &format!("/analytics/funnel?productId={p1}&{window}"),
        &json!({
            "from": from, "to": to, "productId": p1,
            "views": 2, "cartAdds": 2, "cartRemoves": 0, "checkouts": 1, "orders": 0,
            "viewToCartRate": 1.0, "cartToOrderRate": 0.0, "viewToOrderRate": 0.0
        }),
    )
    .await;
    // One report per bucket: the window is one minute. (A minute of yesterday is settled:
    // an instance that read it before the events landed serves that for up to 30 s.)
    converges(
        &format!("/analytics/activity?{window}&granularity=minute"),
        &json!({"granularity": "minute", "from": from, "to": to, "buckets": [report]}),
    )
    .await;

    // What went on the activity stream is what api/events documents.
    let emulator = orders_tests::Emulator::connect().await;
    let records = emulator
        .stream_records(&emulator.output("activity_stream_name"))
        .await;
    let ours: Vec<&Value> = records
        .iter()
        .map(|(_, record)| record)
        .filter(|r| r["sessionId"].as_str().is_some_and(|s| s.starts_with(&run)))
        .collect();
    assert_eq!(
        ours.len(),
        8 + 8 + 6,
        "every put of every batch, copies included"
    );
    for record in ours {
        orders_tests::assert_event_conforms(record);
    }
}

#[tokio::test]
async fn customers_send_only_their_own_events_and_read_no_activity() {
    let run = unique("actc");
    let alice = client_as(Holder::Customer(&format!("{run}-alice")));
    // Dated before the other test's minute, and not now: the orders-sim run reconciles the
    // current minutes exactly.
    let when = at(yesterdays_minute(), -300);
    let mine = event(
        "e-1",
        &format!("{run}-s1"),
        when,
        json!({"eventType": "ProductViewed", "productId": format!("{run}-p")}),
    );
    let (status, answer) = send(&alice, std::slice::from_ref(&mine)).await;
    assert_eq!(
        (status, answer),
        (StatusCode::ACCEPTED, json!({"accepted": 1}))
    );
    let mut theirs = mine.clone();
    theirs["eventId"] = json!("e-2");
    theirs["customerId"] = json!(format!("{run}-bob"));
    let (status, answer) = send(&alice, &[theirs]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    for path in ["/analytics/activity", "/analytics/funnel?productId=sku-1"] {
        let response = alice.get(format!("{}{path}", api())).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let anonymous = reqwest::Client::new()
        .post(format!("{}/events", api()))
        .json(&json!({"events": [mine]}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}
