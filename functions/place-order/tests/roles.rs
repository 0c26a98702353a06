//! What each caller may do on the command routes, from the claims API Gateway passes on:
//! a customer acts only for itself (another's order is not found), staff run the catalog
//! and shipping, and idempotency keys are the caller's own.

mod memory;

use memory::{MemoryApp, request};
use orders_tests::{Claims, api_event};
use place_order::handler::handle;
use serde_json::{Value, json};

const ALICE: Claims = Claims::customer("alice");
const BOB: Claims = Claims::customer("bob");
const STAFF: Claims = Claims::staff();

async fn call(app: &MemoryApp, event: Value) -> (u16, Value) {
    let response = handle(app, request(event)).await;
    let status = response.status().as_u16();
    let json = match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap(),
        _ => Value::Null,
    };
    (status, json)
}

async fn place(
    app: &MemoryApp,
    body: Value,
    key: &str,
    token: Option<&Claims<'_>>,
) -> (u16, Value) {
    let event = api_event(
        "POST /orders",
        "/orders",
        &[],
        &[("idempotency-key", key)],
        Some(&body.to_string()),
        token,
    );
    call(app, event).await
}

fn lines() -> Value {
    json!([{"productId": "sku-1", "quantity": 1}])
}

async fn on_order(
    app: &MemoryApp,
    route: &str,
    id: &str,
    body: Option<Value>,
    token: &Claims<'_>,
) -> u16 {
    let path = format!("/orders/{id}");
    let body = body.map(|b| b.to_string());
    let event = api_event(
        route,
        &path,
        &[("orderId", id)],
        &[],
        body.as_deref(),
        Some(token),
    );
    call(app, event).await.0
}

#[tokio::test]
async fn a_customer_places_orders_only_for_itself() {
    let app = memory::app();
    let (status, order) = place(&app, json!({"items": lines()}), "k1", Some(&ALICE)).await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["customerId"], "alice", "the token's subject");
    let (status, _) = place(
        &app,
        json!({"customerId": "alice", "items": lines()}),
        "k2",
        Some(&ALICE),
    )
    .await;
    assert_eq!(status, 201);
    let (status, refused) = place(
        &app,
        json!({"customerId": "bob", "items": lines()}),
        "k3",
        Some(&ALICE),
    )
    .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    // Staff (and a deployment without sign-in) name the customer.
    let (status, _) = place(&app, json!({"items": lines()}), "k4", Some(&STAFF)).await;
    assert_eq!(status, 400, "staff must say for whom");
    let (status, order) = place(
        &app,
        json!({"customerId": "bob", "items": lines()}),
        "k5",
        Some(&STAFF),
    )
    .await;
    assert_eq!((status, order["customerId"].as_str()), (201, Some("bob")));
}

#[tokio::test]
async fn another_customers_order_is_not_found_and_staff_routes_are_forbidden() {
    let app = memory::app();
    let (_, order) = place(&app, json!({"items": lines()}), "k1", Some(&BOB)).await;
    let id = order["orderId"].as_str().unwrap().to_owned();

    // Alice can neither cancel nor see Bob's order; shipping and the catalog are staff's.
    assert_eq!(
        on_order(&app, "DELETE /orders/{orderId}", &id, None, &ALICE).await,
        404
    );
    let ship = Some(json!({"status": "SHIPPED"}));
    assert_eq!(
        on_order(&app, "PATCH /orders/{orderId}", &id, ship.clone(), &BOB).await,
        403
    );
    let product = json!({"name": "Mug", "price": 1299, "stock": 5}).to_string();
    for (route, path) in [
        ("PUT /products/{productId}", "/products/sku-9"),
        ("POST /products/{productId}/stock", "/products/sku-9/stock"),
    ] {
        let body = if route.starts_with("PUT") {
            product.clone()
        } else {
            json!({"add": 1}).to_string()
        };
        let event = api_event(
            route,
            path,
            &[("productId", "sku-9")],
            &[],
            Some(&body),
            Some(&BOB),
        );
        assert_eq!(call(&app, event).await.0, 403, "{route}");
    }
    let event = api_event(
        "PUT /products/{productId}",
        "/products/sku-9",
        &[("productId", "sku-9")],
        &[],
        Some(&product),
        Some(&STAFF),
    );
    assert_eq!(call(&app, event).await.0, 201, "staff run the catalog");

    // Bob cancels his own order.
    assert_eq!(
        on_order(&app, "DELETE /orders/{orderId}", &id, None, &BOB).await,
        200
    );
}

#[tokio::test]
async fn one_key_sent_by_two_callers_places_two_orders_and_replays_each() {
    let app = memory::app();
    let body = json!({"items": lines()});
    let (s1, alice) = place(&app, body.clone(), "same-key", Some(&ALICE)).await;
    let (s2, bob) = place(&app, body.clone(), "same-key", Some(&BOB)).await;
    assert_eq!((s1, s2), (201, 201));
    assert_ne!(
        alice["orderId"], bob["orderId"],
        "bob's request is not a replay of alice's"
    );
    assert_eq!(
        place(&app, body.clone(), "same-key", Some(&ALICE)).await.1,
        alice
    );
    assert_eq!(place(&app, body, "same-key", Some(&BOB)).await.1, bob);
}
