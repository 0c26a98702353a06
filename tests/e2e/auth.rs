//! Sign-in through the local stack, as on AWS: the runner's JWT authorizer refuses missing
//! and bad tokens (401) and tokens without the route's scope (403) before any function runs;
//! the functions keep each customer to its own orders.

use crate::pipeline::put_product_at;
use crate::{api, client_as, unique, with_token};
use orders_tests::{Holder, mint};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn status_and_json(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("the local stack answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_customer_cannot_read_cancel_or_list_another_customers_orders() {
    let run = unique("auth");
    let (alice_id, bob_id) = (format!("{run}-alice"), format!("{run}-bob"));
    let (alice, bob) = (
        client_as(Holder::Customer(&alice_id)),
        client_as(Holder::Customer(&bob_id)),
    );
    let product = format!("{run}-mug");
    put_product_at(&product, 1299, 10).await;
    let order = json!({"items": [{"productId": product, "quantity": 1}]});

    let (status, mine) =
        status_and_json(alice.post(format!("{}/orders", api())).json(&order)).await;
    assert_eq!(status, StatusCode::CREATED, "{mine}");
    assert_eq!(mine["customerId"], alice_id.as_str(), "the token's subject");
    let (status, theirs) =
        status_and_json(bob.post(format!("{}/orders", api())).json(&order)).await;
    assert_eq!(status, StatusCode::CREATED, "{theirs}");
    let theirs = theirs["orderId"].as_str().unwrap().to_owned();

    // Bob's order does not exist for Alice: not readable, not cancellable.
    let url = format!("{}/orders/{theirs}", api());
    assert_eq!(
        alice.get(&url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        alice.delete(&url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let (_, still) = status_and_json(bob.get(&url)).await;
    assert_ne!(still["status"], "CANCELLED", "nothing changed");
    // Listings are hers only; asking for Bob's is refused.
    let (status, list) = status_and_json(alice.get(format!("{}/orders?limit=100", api()))).await;
    assert_eq!(status, StatusCode::OK);
    let owners: Vec<&str> = list["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["customerId"].as_str().unwrap())
        .collect();
    assert!(
        !owners.is_empty() && owners.iter().all(|c| *c == alice_id),
        "{owners:?}"
    );
    let asked = format!("{}/orders?customerId={bob_id}", api());
    assert_eq!(
        alice.get(&asked).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    // Placing for Bob is refused; staff routes are closed to her at the gateway.
    let for_bob = json!({"customerId": bob_id, "items": [{"productId": product, "quantity": 1}]});
    let (status, _) = status_and_json(alice.post(format!("{}/orders", api())).json(&for_bob)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = status_and_json(alice.get(format!("{}/analytics/summary", api()))).await;
    assert_eq!(
        (status, body),
        (StatusCode::FORBIDDEN, json!({"message": "Forbidden"}))
    );
    let ship = alice.patch(&url).json(&json!({"status": "SHIPPED"}));
    assert_eq!(ship.send().await.unwrap().status(), StatusCode::FORBIDDEN);

    // A zero price for a priced product is never accepted.
    let free = json!({"items": [{"productId": product, "quantity": 1, "unitPrice": 0}]});
    let (status, body) = status_and_json(alice.post(format!("{}/orders", api())).json(&free)).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::CONFLICT, &json!("price_changed"))
    );
}

#[tokio::test]
async fn missing_and_bad_tokens_are_401_and_change_nothing_while_public_routes_stay_open() {
    let run = unique("noauth");
    let customer = format!("{run}-c");
    let bad: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("malformed", Some("not-a-jwt".to_owned())),
        (
            "expired",
            Some(mint(
                Holder::Customer(&customer),
                &orders_tests::issuer(),
                -10,
            )),
        ),
        (
            "another issuer",
            Some(mint(Holder::Customer(&customer), "http://127.0.0.1:9", 600)),
        ),
        ("alg none", Some(alg_none(&customer))),
    ];
    let order = json!({"customerId": customer, "items": [{"productId": "sku-x", "quantity": 1}]});
    for (what, token) in &bad {
        let client = match token {
            Some(token) => with_token(token),
            None => reqwest::Client::new(),
        };
        let (status, body) =
            status_and_json(client.post(format!("{}/orders", api())).json(&order)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(body, json!({"message": "Unauthorized"}), "{what}");
        let (status, _) = status_and_json(client.get(format!("{}/orders", api()))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
    }
    // Nothing was placed for that customer.
    let staff = crate::client();
    let (_, list) =
        status_and_json(staff.get(format!("{}/orders?customerId={customer}", api()))).await;
    assert_eq!(list["orders"], json!([]));

    for open in ["/health", "/openapi.json", "/asyncapi.json", "/"] {
        let status = reqwest::get(format!("{}{open}", api()))
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::OK, "{open} is public");
    }
}

/// A token that claims to need no signature.
fn alg_none(customer: &str) -> String {
    use base64::Engine;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(
            json!({"iss": orders_tests::issuer(), "aud": "orders-local", "sub": customer,
                   "scope": "openid orders/customer orders/admin", "iat": now, "exp": now + 600})
        )
    )
}
