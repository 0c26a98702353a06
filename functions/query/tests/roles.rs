//! What each caller may read, from the claims API Gateway passes on: a customer sees and
//! lists only its own orders (another's is not found) and no analytics; staff see all.

use orders_core::caller::STAFF_SCOPE;
use orders_core::memory::{MemoryAnalytics, MemoryCatalog, MemoryOrderStore};
use orders_core::order::NewLineItem;
use orders_core::ports::OrderStore;
use orders_core::{
    Currency, CustomerId, Money, Order, OrderId, PlaceOrder, ProductId, Quantity, Timestamp,
};
use orders_tests::{Claims, api_event};
use query::handler::{QueryService, handle};
use serde_json::Value;

type Service = QueryService<MemoryOrderStore, MemoryCatalog, MemoryAnalytics>;

const ALICE: Claims = Claims::customer("alice");
const STAFF: Claims = Claims::staff();

async fn order_of(service: &Service, customer: &str, n: u128) -> String {
    let command = PlaceOrder {
        customer_id: CustomerId::parse(customer).unwrap(),
        currency: Currency::parse("USD").unwrap(),
        items: vec![NewLineItem {
            product_id: ProductId::parse("sku-1").unwrap(),
            quantity: Quantity::new(1).unwrap(),
            unit_price: Money::from_minor(100).unwrap(),
        }],
    };
    let now = Timestamp::parse("2026-11-21T10:00:00Z").unwrap();
    let order = Order::place(
        OrderId::new(ulid::Ulid::from_parts(now.unix_millis() as u64, n)),
        &command,
        now,
    );
    service.store.create(&order).await.unwrap();
    order.order_id.to_string()
}

async fn get(
    service: &Service,
    route: &str,
    path: &str,
    query: &str,
    token: &Claims<'_>,
) -> (u16, Value) {
    let mut event = api_event(route, path, &[], &[], None, Some(token));
    if let Some(id) = path.strip_prefix("/orders/") {
        event["pathParameters"] = serde_json::json!({"orderId": id});
    }
    if let Some(id) = path.strip_prefix("/customers/") {
        event["pathParameters"] = serde_json::json!({"customerId": id});
    }
    if !query.is_empty() {
        event["rawQueryString"] = query.into();
        let pairs: serde_json::Map<String, Value> = query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.into()))
            .collect();
        event["queryStringParameters"] = pairs.into();
    }
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = handle(service, request).await;
    let status = response.status().as_u16();
    let json = match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (status, json)
}

fn ids(list: &Value) -> Vec<&str> {
    list["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_customer_reads_only_its_own_orders_and_no_analytics() {
    let service = QueryService::new(
        MemoryOrderStore::new(),
        MemoryCatalog::new(),
        MemoryAnalytics::new(),
    );
    let mine = order_of(&service, "alice", 1).await;
    let theirs = order_of(&service, "bob", 2).await;

    let order = |id: &str| format!("/orders/{id}");
    assert_eq!(
        get(&service, "GET /orders/{orderId}", &order(&mine), "", &ALICE)
            .await
            .0,
        200
    );
    let (status, body) = get(
        &service,
        "GET /orders/{orderId}",
        &order(&theirs),
        "",
        &ALICE,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    // A listing is the customer's own, whatever it asks; asking for another's is refused.
    let (status, list) = get(&service, "GET /orders", "/orders", "", &ALICE).await;
    assert_eq!((status, ids(&list)), (200, vec![mine.as_str()]));
    let (status, _) = get(&service, "GET /orders", "/orders", "customerId=bob", &ALICE).await;
    assert_eq!(status, 403);
    let (status, _) = get(
        &service,
        "GET /analytics/summary",
        "/analytics/summary",
        "",
        &ALICE,
    )
    .await;
    assert_eq!(status, 403);

    // Staff see everything.
    let (status, list) = get(&service, "GET /orders", "/orders", "", &STAFF).await;
    assert_eq!((status, ids(&list).len()), (200, 2));
    assert_eq!(
        get(
            &service,
            "GET /orders/{orderId}",
            &order(&theirs),
            "",
            &STAFF
        )
        .await
        .0,
        200
    );
    let (status, _) = get(
        &service,
        "GET /analytics/summary",
        "/analytics/summary",
        "",
        &STAFF,
    )
    .await;
    assert_eq!(status, 200);

    // A Cognito token: the admin scope (any user of the client may ask for it) is staff's
    // only with the staff group.
    let summary = "/analytics/summary";
    let asked = Claims {
        subject: "alice",
        scopes: &["openid", STAFF_SCOPE],
        groups: &["buyers"],
    };
    let (status, _) = get(&service, "GET /analytics/summary", summary, "", &asked).await;
    assert_eq!(status, 403);
    let (status, list) = get(&service, "GET /orders", "/orders", "", &asked).await;
    assert_eq!(
        (status, ids(&list)),
        (200, vec![mine.as_str()]),
        "a customer still"
    );
    let grouped = Claims {
        subject: "ops-2",
        scopes: &["openid", STAFF_SCOPE],
        groups: &["staff", "buyers"],
    };
    let (status, _) = get(&service, "GET /analytics/summary", summary, "", &grouped).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_customer_reads_only_its_own_summary_and_staff_anyones() {
    let service = Service::new(
        MemoryOrderStore::new(),
        MemoryCatalog::new(),
        MemoryAnalytics::new(),
    );
    order_of(&service, "alice", 1).await;
    order_of(&service, "alice", 2).await;
    order_of(&service, "bob", 3).await;
    const ROUTE: &str = "GET /customers/{customerId}";
    let (status, mine) = get(&service, ROUTE, "/customers/alice", "", &ALICE).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["orders"], 2);
    assert_eq!(mine["byStatus"]["PENDING"], 2);
    assert_eq!(mine["revenue"], 0, "pending orders hold no revenue");
    assert_eq!(mine["firstOrderAt"], "2026-11-21T10:00:00.000Z");
    let (status, _) = get(&service, ROUTE, "/customers/bob", "", &ALICE).await;
    assert_eq!(status, 403);
    let (status, bob) = get(&service, ROUTE, "/customers/bob", "", &STAFF).await;
    assert_eq!((status, bob["orders"].clone()), (200, 1.into()));
    let (status, _) = get(&service, ROUTE, "/customers/carol", "", &STAFF).await;
    assert_eq!(status, 404, "a customer without orders");
    let (status, body) = get(&service, ROUTE, "/customers/not%20an%20id", "", &STAFF).await;
    assert_eq!(status, 400, "{body}");
}
