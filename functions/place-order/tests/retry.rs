//! `POST /orders/{orderId}/retry` through the handler the function serves, over in-memory
//! ports: which failures may be retried, re-pricing and `expectedTotal`, ownership,
//! `If-Match` and `Idempotency-Key` — and that what it stores is what the relay publishes
//! as `OrderRetried`.

mod memory;

use memory::{MemoryApp, request};
use orders_core::idempotency::IdempotencyRecord;
use orders_core::ports::{Catalog, IdempotencyStore, OrderCommands, StockChange};
use orders_core::{
    EventEnvelope, FailureReason, IdempotencyKey, Money, Order, OrderEvent, OrderId, Product,
    ProductId, RetryOrder, Timestamp,
};
use orders_tests::{Claims, api_event};
use place_order::handler::handle;
use serde_json::{Value, json};

const ALICE: Claims = Claims::customer("alice");
const BOB: Claims = Claims::customer("bob");
const STAFF: Claims = Claims::staff();

struct Reply {
    status: u16,
    headers: lambda_http::http::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    fn code(&self) -> Value {
        self.json()["error"]["code"].clone()
    }
}

async fn call(app: &MemoryApp, event: Value) -> Reply {
    let response = handle(app, request(event)).await;
    let text = match response.body() {
        lambda_http::Body::Text(text) => text.clone(),
        _ => String::new(),
    };
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text,
    }
}

async fn put_product(app: &MemoryApp, id: &str, price: i64, stock: u64) {
    app.commands
        .catalog
        .put(&Product {
            product_id: ProductId::parse(id).unwrap(),
            name: id.into(),
            price: Money::from_minor(price).unwrap(),
            stock,
            version: 1,
            updated_at: Timestamp::parse("2026-11-21T09:00:00Z").unwrap(),
        })
        .await
        .unwrap();
}

/// Places an order for `token`'s customer over HTTP and fails it as processing would.
async fn failed_order(
    app: &MemoryApp,
    lines: Value,
    reason: FailureReason,
    token: &Claims<'_>,
) -> Order {
    let body = json!({ "items": lines }).to_string();
    let placed = call(
        app,
        api_event(
            "POST /orders",
            "/orders",
            &[],
            &[],
            Some(&body),
            Some(token),
        ),
    )
    .await;
    assert_eq!(placed.status, 201, "{}", placed.text);
    let id = OrderId::parse(placed.json()["orderId"].as_str().unwrap()).unwrap();
    let order = stored(app, &id).await;
    let failed = order.fail(reason, app.commands.clock.now()).unwrap();
    app.commands
        .commands
        .apply(&failed, &StockChange::None)
        .await
        .unwrap();
    failed
}

async fn stored(app: &MemoryApp, id: &OrderId) -> Order {
    app.commands.commands.load(id).await.unwrap().unwrap()
}

async fn retry(
    app: &MemoryApp,
    id: &OrderId,
    body: Option<Value>,
    headers: &[(&str, &str)],
    token: &Claims<'_>,
) -> Reply {
    let id = id.to_string();
    let body = body.map(|b| b.to_string());
    let event = api_event(
        "POST /orders/{orderId}/retry",
        &format!("/orders/{id}/retry"),
        &[("orderId", &id)],
        headers,
        body.as_deref(),
        Some(token),
    );
    call(app, event).await
}

fn mug() -> Value {
    json!([{"productId": "sku-mug", "quantity": 2}])
}

#[tokio::test]
async fn an_out_of_stock_order_goes_back_to_pending_once() {
    let app = memory::app();
    put_product(&app, "sku-mug", 1299, 1).await;
    let failed = failed_order(&app, mug(), FailureReason::OutOfStock, &ALICE).await;

    let reply = retry(&app, &failed.order_id, None, &[], &ALICE).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.headers["etag"], "\"3\"");
    assert!(reply.headers.get("idempotent-replayed").is_none());
    let order = reply.json();
    assert_eq!(
        (&order["status"], &order["version"], &order["retries"]),
        (&json!("PENDING"), &json!(3), &json!(1))
    );
    assert!(order.get("failureReason").is_none() && order.get("failedAt").is_none());
    assert_eq!(
        order["total"], 2598,
        "an out-of-stock order keeps its prices"
    );
    let now = stored(&app, &failed.order_id).await;
    assert_eq!(serde_json::to_value(&now).unwrap(), order, "what is stored");
    // What the relay publishes for the stored version.
    let event = EventEnvelope::new(OrderEvent::for_current_state(&now));
    assert_eq!(event.event.event_type(), "OrderRetried");

    // Again, without a key: the order is not FAILED any more.
    let again = retry(&app, &failed.order_id, None, &[], &ALICE).await;
    assert_eq!((again.status, again.code()), (409, json!("conflict")));
    assert_eq!(
        again.json()["error"]["message"],
        "only a FAILED order can be retried; this one is PENDING"
    );
    assert_eq!(stored(&app, &failed.order_id).await, now, "nothing changed");
}

#[tokio::test]
async fn a_customer_retries_only_its_own_orders_and_staff_any() {
    let app = memory::app();
    put_product(&app, "sku-mug", 1299, 0).await;
    let bobs = failed_order(&app, mug(), FailureReason::OutOfStock, &BOB).await;
    let reply = retry(&app, &bobs.order_id, None, &[], &ALICE).await;
    assert_eq!((reply.status, reply.code()), (404, json!("not_found")));
    assert_eq!(stored(&app, &bobs.order_id).await, bobs, "nothing changed");

    let reply = retry(&app, &bobs.order_id, None, &[], &STAFF).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["customerId"], "bob");

    let unknown = OrderId::parse("01JDA3Z6Q7W8X9Y0Z1A2B3C4D5").unwrap();
    assert_eq!(retry(&app, &unknown, None, &[], &STAFF).await.status, 404);
    let bad = api_event(
        "POST /orders/{orderId}/retry",
        "/orders/nope/retry",
        &[("orderId", "nope")],
        &[],
        None,
        Some(&ALICE),
    );
    assert_eq!(call(&app, bad).await.status, 400);
}

#[tokio::test]
async fn an_unknown_product_failure_is_not_retried() {
    let app = memory::app();
    let lines = json!([{"productId": "sku-gone", "quantity": 1, "unitPrice": 100}]);
    let failed = failed_order(&app, lines, FailureReason::UnknownProduct, &ALICE).await;
    let reply = retry(&app, &failed.order_id, None, &[], &ALICE).await;
    assert_eq!((reply.status, reply.code()), (409, json!("not_retryable")));
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("unknown_product") && message.contains("place a new order"),
        "{message}"
    );
    assert_eq!(stored(&app, &failed.order_id).await, failed);
}

#[tokio::test]
async fn a_price_changed_order_is_re_priced_unless_the_total_is_not_the_expected_one() {
    let app = memory::app();
    put_product(&app, "sku-mug", 1299, 10).await;
    let failed = failed_order(&app, mug(), FailureReason::PriceChanged, &ALICE).await;
    assert_eq!(failed.total.minor(), 2598);
    put_product(&app, "sku-mug", 1499, 10).await;

    // The customer expects what it was shown at placement: refused, nothing changes.
    let reply = retry(
        &app,
        &failed.order_id,
        Some(json!({"expectedTotal": 2598})),
        &[],
        &ALICE,
    )
    .await;
    assert_eq!((reply.status, reply.code()), (409, json!("price_changed")));
    let fields: Vec<(String, String)> = reply.json()["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap().to_owned(),
                f["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            (
                "expectedTotal".to_owned(),
                "is 2598; the order's total on retry is 2998".to_owned()
            ),
            (
                "items[0].unitPrice".to_owned(),
                "was 1299; the catalog price of sku-mug is 1499".to_owned()
            ),
        ]
    );
    assert_eq!(stored(&app, &failed.order_id).await, failed);

    // It accepts the new total.
    let reply = retry(
        &app,
        &failed.order_id,
        Some(json!({"expectedTotal": 2998})),
        &[],
        &ALICE,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let order = reply.json();
    assert_eq!(order["items"][0]["unitPrice"], 1499);
    assert_eq!(order["items"][0]["lineTotal"], 2998);
    assert_eq!(order["total"], 2998);
}

#[tokio::test]
async fn without_expected_total_a_price_changed_order_takes_the_catalog_s_prices() {
    let app = memory::app();
    put_product(&app, "sku-mug", 1299, 10).await;
    let failed = failed_order(&app, mug(), FailureReason::PriceChanged, &ALICE).await;
    put_product(&app, "sku-mug", 999, 10).await;
    let reply = retry(&app, &failed.order_id, Some(json!({})), &[], &ALICE).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["total"], 1998);
    // An out-of-stock order's expectedTotal is checked against the prices it keeps.
    let short = failed_order(&app, mug(), FailureReason::OutOfStock, &ALICE).await;
    let reply = retry(
        &app,
        &short.order_id,
        Some(json!({"expectedTotal": 1})),
        &[],
        &ALICE,
    )
    .await;
    assert_eq!((reply.status, reply.code()), (409, json!("price_changed")));
    assert_eq!(reply.json()["error"]["fields"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn if_match_guards_the_retry() {
    let app = memory::app();
    put_product(&app, "sku-mug", 1299, 0).await;
    let failed = failed_order(&app, mug(), FailureReason::OutOfStock, &ALICE).await;
    let stale = retry(
        &app,
        &failed.order_id,
        None,
        &[("if-match", "\"1\"")],
        &ALICE,
    )
    .await;
    assert_eq!(
        (stale.status, stale.code()),
        (412, json!("precondition_failed"))
    );
    let reply = retry(
        &app,
        &failed.order_id,
        None,
        &[("if-match", "\"2\"")],
        &ALICE,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[tokio::test]
async fn bad_bodies_are_refused_before_anything_changes() {
    let app = memory::app();
    put_product(&app, "sku-mug", 1299, 0).await;
    let failed = failed_order(&app, mug(), FailureReason::OutOfStock, &ALICE).await;
    for body in [
        json!({"expectedTotal": 25.98}),
        json!({"total": 1}),
        json!([1]),
    ] {
        let reply = retry(&app, &failed.order_id, Some(body.clone()), &[], &ALICE).await;
        assert_eq!(
            (reply.status, reply.code()),
            (400, json!("validation_failed")),
            "{body}"
        );
    }
    let id = failed.order_id.to_string();
    let mut event = api_event(
        "POST /orders/{orderId}/retry",
        &format!("/orders/{id}/retry"),
        &[("orderId", &id)],
        &[("content-type", "text/plain")],
        Some("again"),
        Some(&ALICE),
    );
    assert_eq!(call(&app, event.clone()).await.status, 415);
    event["headers"]["content-type"] = json!("application/json");
    event["body"] = json!("{\"expectedTotal\":");
    assert_eq!(call(&app, event).await.code(), json!("malformed_json"));
    assert_eq!(stored(&app, &failed.order_id).await, failed);
}

#[tokio::test]
async fn a_key_replays_its_retry_and_refuses_another_request() {
    let app = memory::app();
    put_product(&app, "sku-mug", 1299, 0).await;
    let failed = failed_order(&app, mug(), FailureReason::OutOfStock, &ALICE).await;
    let key = [("idempotency-key", "retry-1")];
    let first = retry(&app, &failed.order_id, None, &key, &ALICE).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let second = retry(&app, &failed.order_id, None, &key, &ALICE).await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.headers["idempotent-replayed"], "true");
    assert_eq!(second.headers["etag"], "\"3\"");
    assert_eq!(second.text, first.text, "byte for byte");
    assert_eq!(
        stored(&app, &failed.order_id).await.version,
        3,
        "retried once"
    );

    let other_body = retry(
        &app,
        &failed.order_id,
        Some(json!({"expectedTotal": 2598})),
        &key,
        &ALICE,
    )
    .await;
    assert_eq!(
        (other_body.status, other_body.code()),
        (422, json!("idempotency_key_reused"))
    );
    let another = failed_order(&app, mug(), FailureReason::OutOfStock, &ALICE).await;
    let reply = retry(&app, &another.order_id, None, &key, &ALICE).await;
    assert_eq!(reply.status, 422, "a key names one request");
    // Bob's identical key is his own request (and Alice's order is not found to him).
    let reply = retry(&app, &another.order_id, None, &key, &BOB).await;
    assert_eq!(reply.status, 404);
}

/// A request that claimed its key, then died: before its write, the repeat retries the
/// order; after it, the repeat answers the order as it is now and writes nothing.
#[tokio::test]
async fn a_key_whose_first_request_died_finishes_it() {
    let app = memory::app();
    put_product(&app, "sku-mug", 1299, 0).await;
    let now = app.commands.clock.now();
    let claim = |id: OrderId, key: &str| IdempotencyRecord {
        key: IdempotencyKey::parse(key)
            .unwrap()
            .for_caller(Some("alice")),
        request_fingerprint: RetryOrder::default().fingerprint(&id),
        order_id: id,
        created_at: now,
        expires_at: now.plus_seconds(3600),
        response: None,
    };

    let before_write = failed_order(&app, mug(), FailureReason::OutOfStock, &ALICE).await;
    let record = claim(before_write.order_id, "died-early");
    app.place.idempotency.claim(&record).await.unwrap();
    let reply = retry(
        &app,
        &before_write.order_id,
        None,
        &[("idempotency-key", "died-early")],
        &ALICE,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(stored(&app, &before_write.order_id).await.version, 3);

    let after_write = failed_order(&app, mug(), FailureReason::OutOfStock, &ALICE).await;
    let record = claim(after_write.order_id, "died-late");
    app.place.idempotency.claim(&record).await.unwrap();
    let retried = after_write.retry(&[], now).unwrap();
    app.commands
        .commands
        .apply(&retried, &StockChange::None)
        .await
        .unwrap();
    let reply = retry(
        &app,
        &after_write.order_id,
        None,
        &[("idempotency-key", "died-late")],
        &ALICE,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json(), serde_json::to_value(&retried).unwrap());
    assert_eq!(
        stored(&app, &after_write.order_id).await,
        retried,
        "retried once"
    );
    assert!(
        app.place
            .idempotency
            .get(&record.key)
            .unwrap()
            .response
            .is_some(),
        "the answer is remembered now"
    );
}
