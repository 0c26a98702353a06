//! Idempotency keys belong to the caller (the subject of the token API Gateway accepted):
//! the same key from another caller is another request.

mod memory;

use place_order::handler::handle;
use serde_json::{Value, json};

async fn order_id(app: &memory::MemoryApp, caller: Option<&str>) -> (u16, String) {
    let body = json!({"customerId": "c-1", "items": [{"productId": "sku-1", "quantity": 1}]});
    let response = handle(app, memory::post_order(&body, "same-key", caller)).await;
    let status = response.status().as_u16();
    let lambda_http::Body::Text(text) = response.body() else {
        panic!("a JSON body")
    };
    let json: Value = serde_json::from_str(text).unwrap();
    (
        status,
        json["orderId"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn one_key_sent_by_two_callers_places_two_orders_and_replays_each() {
    let app = memory::app();
    let (s1, alice) = order_id(&app, Some("alice")).await;
    let (s2, bob) = order_id(&app, Some("bob")).await;
    assert_eq!((s1, s2), (201, 201));
    assert_ne!(alice, bob, "bob's request is not a replay of alice's");
    assert_eq!(order_id(&app, Some("alice")).await, (201, alice.clone()));
    assert_eq!(order_id(&app, Some("bob")).await, (201, bob));
    // Without an authorizer there is no caller: keys are shared, as before.
    let (_, anonymous) = order_id(&app, None).await;
    assert_ne!(anonymous, alice);
    assert_eq!(order_id(&app, None).await.1, anonymous);
}
