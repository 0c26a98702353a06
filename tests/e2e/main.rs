//! End to end through the local stack: HTTP on 127.0.0.1:3000 (the local runner serving the
//! routes Terraform declared) → the real function binaries → the Terraform-deployed tables
//! and stream in the emulator. `make test` brings the stack up before running this.

mod activity;
mod analytics;
mod auth;
mod customers;
mod faults;
mod live;
mod openapi;
mod pipeline;
mod reports;
mod retention;
mod retry;
mod search;

use orders_tests::Emulator;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn api() -> String {
    std::env::var("ORDERS_API_URL").unwrap_or_else(|_| "http://127.0.0.1:3000".to_owned())
}

/// A client signed in as staff (every route, every order); tests of what a customer may do,
/// or of requests without a token, build their own requests.
/// (A client per call: each test has its own runtime, and a client's connections belong to
/// the runtime that opened them.)
fn client() -> reqwest::Client {
    static STAFF: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    with_token(STAFF.get_or_init(|| orders_tests::token(orders_tests::Holder::Staff)))
}

fn client_as(holder: orders_tests::Holder<'_>) -> reqwest::Client {
    with_token(&orders_tests::token(holder))
}

fn with_token(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Bearer {token}");
    headers.insert(
        reqwest::header::AUTHORIZATION,
        value.parse().expect("a token is header-safe"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("an HTTP client")
}

async fn post_order(body: &Value, key: Option<&str>) -> reqwest::Response {
    let mut request = client().post(format!("{}/orders", api())).json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.unwrap_or_else(|e| {
        panic!(
            "the local stack is not serving {} ({e}); run `make test`",
            api()
        )
    })
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid_like())
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:x}")
}

#[tokio::test]
async fn place_then_find_the_order_and_its_event() {
    let customer = unique("e2e");
    let body = json!({"customerId": customer, "items": [{"productId":"sku-1","quantity":2,"unitPrice":1999}], "currency": "USD"});
    let response = post_order(&body, None).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(response.headers().contains_key("apigw-requestid"));
    let placed: Value = response.json().await.unwrap();
    let id = placed["orderId"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/orders/{id}"));
    assert_eq!(placed["total"], 3998);

    // process-order runs in the stack too: by now the order may have moved on from PENDING.
    let same_order = |a: &Value, b: &Value| {
        [
            "orderId",
            "customerId",
            "items",
            "total",
            "currency",
            "createdAt",
        ]
        .iter()
        .all(|k| a[k] == b[k])
    };
    let response = client()
        .get(format!("{}{location}", api()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let fetched: Value = response.json().await.unwrap();
    assert!(same_order(&fetched, &placed), "{fetched} vs {placed}");
    assert_eq!(etag, format!("\"{}\"", fetched["version"]));

    let listed = pipeline::get_json(&format!("{}/orders?customerId={customer}", api())).await;
    let listed_orders = listed["orders"].as_array().unwrap();
    assert_eq!(listed_orders.len(), 1);
    assert!(same_order(&listed_orders[0], &placed));
    assert!(listed["nextCursor"].is_null());

    // The relay puts the event on the stream Terraform deployed, keyed by the order id, once
    // the write is on the table's change stream (moments later).
    let emulator = Emulator::connect().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let ours = loop {
        let records = emulator
            .stream_records(&emulator.output("events_stream_name"))
            .await;
        let ours: Vec<_> = records
            .into_iter()
            .filter(|(_, e)| e["orderId"] == id.as_str() && e["eventType"] == "OrderPlaced")
            .collect();
        if !ours.is_empty() || std::time::Instant::now() > deadline {
            break ours;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert_eq!(ours.len(), 1);
    // What the relay published keeps the event contract (api/events).
    orders_tests::assert_event_conforms(&ours[0].1);
    assert_eq!(ours[0].0, id);
    assert_eq!(ours[0].1["eventType"], "OrderPlaced");
    assert_eq!(ours[0].1["payload"]["order"], placed);
}

#[tokio::test]
async fn idempotent_retry_over_http() {
    let customer = unique("e2e-idem");
    let key = unique("key");
    let body = json!({"customerId": customer, "items": [{"productId":"sku-9","quantity":1,"unitPrice":250}]});
    let first = post_order(&body, Some(&key)).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first = first.text().await.unwrap();
    let second = post_order(&body, Some(&key)).await;
    assert_eq!(second.status(), StatusCode::CREATED);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(second.text().await.unwrap(), first);

    let mut other = body.clone();
    other["items"][0]["quantity"] = json!(2);
    let reused = post_order(&other, Some(&key)).await;
    assert_eq!(reused.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let listed = pipeline::get_json(&format!("{}/orders?customerId={customer}", api())).await;
    assert_eq!(listed["orders"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_requests_get_json_errors_through_the_gateway() {
    let response = client()
        .post(format!("{}/orders", api()))
        .header("content-type", "application/json")
        .body(r#"{"customerId":"c-1","items":[{"productId":"sku-1","quantity":0,"unitPrice":1}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["fields"][0]["field"], "items[0].quantity");

    let response = client()
        .post(format!("{}/orders", api()))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let response = client()
        .get(format!("{}/orders?limit=1000", api()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let response = client()
        .get(format!("{}/orders/01JDA3Z6Q7W8X9Y0Z1A2B3C4D5", api()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // No route declared in Terraform: API Gateway's own 404.
    let response = client()
        .delete(format!("{}/nowhere", api()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_is_ok() {
    let response = client()
        .get(format!("{}/health", api()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );
}
