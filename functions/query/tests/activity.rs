//! `GET /analytics/activity` and `GET /analytics/funnel` over in-memory analytics: the
//! window's figures (distinct counts of the window, not sums of buckets), one report per
//! bucket with a granularity, the funnel joined with the order analytics, and who may read.

use orders_core::activity::{ActivityEvent, ActivityFold, ActivityKind};
use orders_core::memory::{MemoryAnalytics, MemoryCatalog, MemoryOrderStore};
use orders_core::order::NewLineItem;
use orders_core::ports::ActivityStore;
use orders_core::{
    ActivityEventId, Currency, CustomerId, Money, Order, OrderId, OrderStatus, PlaceOrder,
    ProductId, Quantity, SessionId, Timestamp,
};
use orders_tests::{Claims, api_event};
use query::handler::{QueryService, handle};
use serde_json::{Value, json};
use std::sync::Arc;

type Service = QueryService<MemoryOrderStore, MemoryCatalog, MemoryAnalytics>;

fn event(
    id: &str,
    session: &str,
    customer: Option<&str>,
    at: &str,
    kind: ActivityKind,
) -> ActivityEvent {
    ActivityEvent {
        event_id: ActivityEventId::parse(id).unwrap(),
        session_id: SessionId::parse(session).unwrap(),
        customer_id: customer.map(|c| CustomerId::parse(c).unwrap()),
        occurred_at: Timestamp::parse(at).unwrap(),
        kind,
    }
}

fn sku(id: &str) -> ProductId {
    ProductId::parse(id).unwrap()
}

/// Stores `events` as the aggregate would: every counter item and set shard once.
async fn store(analytics: &MemoryAnalytics, events: &[ActivityEvent]) {
    let mut fold = ActivityFold::default();
    for e in events {
        fold.add_event(e);
    }
    let store = &analytics.activity;
    for (item, delta) in &fold.counters {
        store
            .add_activity(item, "shard-0", "1", "1", delta)
            .await
            .unwrap();
    }
    for ((bucket, set, shard), ids) in &fold.sessions {
        store.add_sessions(bucket, *set, *shard, ids).await.unwrap();
    }
    for ((bucket, shard), ids) in &fold.customers {
        store
            .add_active_customers(bucket, *shard, ids)
            .await
            .unwrap();
    }
}

fn service() -> Service {
    let mut service = QueryService::new(
        MemoryOrderStore::new(),
        MemoryCatalog::new(),
        MemoryAnalytics::new(),
    );
    service.clock = Arc::new(orders_core::memory::FixedClock(
        Timestamp::parse("2026-11-22T12:00:00Z").unwrap(),
    ));
    service
}

async fn get(service: &Service, route: &str, query: &str, token: &Claims<'_>) -> (u16, Value) {
    let path = route.trim_start_matches("GET ");
    let mut event = api_event(route, path, &[], &[], None, Some(token));
    event["rawQueryString"] = query.into();
    let pairs: serde_json::Map<String, Value> = query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.into()))
        .collect();
    event["queryStringParameters"] = pairs.into();
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = handle(service, request).await;
    let status = response.status().as_u16();
    let json = match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (status, json)
}

/// Two sessions over two hours: s-1 (alice) views, adds twice and checks out; s-2 views
/// and adds, in both hours, and never checks out.
fn shop() -> Vec<ActivityEvent> {
    let viewed = |p: &str| ActivityKind::ProductViewed { product_id: sku(p) };
    let added = |p: &str| ActivityKind::AddedToCart {
        product_id: sku(p),
        quantity: Quantity::new(3).unwrap(),
    };
    vec![
        event(
            "e-1",
            "s-1",
            Some("alice"),
            "2026-11-22T10:01:00Z",
            viewed("sku-1"),
        ),
        event(
            "e-2",
            "s-1",
            Some("alice"),
            "2026-11-22T10:02:00Z",
            added("sku-1"),
        ),
        event(
            "e-3",
            "s-1",
            Some("alice"),
            "2026-11-22T10:03:00Z",
            added("sku-2"),
        ),
        event(
            "e-4",
            "s-1",
            Some("alice"),
            "2026-11-22T10:04:00Z",
            ActivityKind::CheckoutStarted {
                cart: vec![sku("sku-1"), sku("sku-2")],
            },
        ),
        event("e-5", "s-2", None, "2026-11-22T10:30:00Z", viewed("sku-1")),
        event("e-6", "s-2", None, "2026-11-22T11:10:00Z", viewed("sku-2")),
        event("e-7", "s-2", None, "2026-11-22T11:11:00Z", added("sku-1")),
    ]
}

#[tokio::test]
async fn a_window_counts_distinct_sessions_once_and_abandonment_by_session() {
    let service = service();
    store(&service.analytics, &shop()).await;
    let window = "from=2026-11-22T10:00:00Z&to=2026-11-22T12:00:00Z";
    let (status, report) = get(
        &service,
        "GET /analytics/activity",
        window,
        &Claims::staff(),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report,
        json!({
            "from": "2026-11-22T10:00:00.000Z", "to": "2026-11-22T12:00:00.000Z",
            "activeSessions": 2, "activeCustomers": 1, "approximate": false,
            "views": 3, "cartAdds": 3, "cartRemoves": 0, "checkouts": 1,
            "cartSessions": 2, "checkoutSessions": 1, "abandonedSessions": 1,
            "abandonmentRate": 0.5
        })
    );

    let (status, series) = get(
        &service,
        "GET /analytics/activity",
        &format!("{window}&granularity=hour"),
        &Claims::staff(),
    )
    .await;
    assert_eq!(status, 200, "{series}");
    let sessions: Vec<&Value> = series["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| &b["activeSessions"])
        .collect();
    assert_eq!(
        sessions,
        [&json!(2), &json!(1)],
        "s-2 is active in both hours"
    );
}

#[tokio::test]
async fn the_funnel_joins_a_products_activity_with_its_orders() {
    let service = service();
    store(&service.analytics, &shop()).await;
    let order = processed_order("sku-1");
    service.analytics.add_order(&order);
    let query = "productId=sku-1&from=2026-11-22T10:00:00Z&to=2026-11-22T12:00:00Z";
    let (status, funnel) = get(&service, "GET /analytics/funnel", query, &Claims::staff()).await;
    assert_eq!(status, 200, "{funnel}");
    assert_eq!(
        funnel,
        json!({
            "from": "2026-11-22T10:00:00.000Z", "to": "2026-11-22T12:00:00.000Z",
            "productId": "sku-1", "views": 2, "cartAdds": 2, "cartRemoves": 0,
            "checkouts": 1, "orders": 1,
            "viewToCartRate": 1.0, "cartToOrderRate": 0.5, "viewToOrderRate": 0.5
        })
    );

    let (status, quiet) = get(
        &service,
        "GET /analytics/funnel",
        "productId=sku-9",
        &Claims::staff(),
    )
    .await;
    assert_eq!(
        status, 200,
        "a product without activity has a funnel of zeros"
    );
    assert_eq!(quiet["views"], 0);
}

#[tokio::test]
async fn bad_parameters_are_named_and_customers_read_no_activity() {
    let service = service();
    let (status, body) = get(
        &service,
        "GET /analytics/funnel",
        "from=yesterday",
        &Claims::staff(),
    )
    .await;
    assert_eq!(status, 400);
    let fields: Vec<&str> = body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"productId") && fields.contains(&"from"),
        "{body}"
    );

    let (status, _) = get(
        &service,
        "GET /analytics/activity",
        "granularity=week",
        &Claims::staff(),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = get(
        &service,
        "GET /analytics/activity",
        "productId=sku-1",
        &Claims::staff(),
    )
    .await;
    assert_eq!(status, 400);
    for route in ["GET /analytics/activity", "GET /analytics/funnel"] {
        let (status, _) = get(
            &service,
            route,
            "productId=sku-1",
            &Claims::customer("alice"),
        )
        .await;
        assert_eq!(status, 403, "{route}");
    }
}

fn processed_order(product: &str) -> Order {
    let command = PlaceOrder {
        customer_id: CustomerId::parse("alice").unwrap(),
        currency: Currency::parse("USD").unwrap(),
        items: vec![NewLineItem {
            product_id: sku(product),
            quantity: Quantity::new(1).unwrap(),
            unit_price: Money::from_minor(100).unwrap(),
        }],
    };
    let placed = Timestamp::parse("2026-11-22T10:05:00Z").unwrap();
    let order = Order::place(
        OrderId::new(ulid::Ulid::from_parts(placed.unix_millis() as u64, 1)),
        &command,
        placed,
    );
    order
        .transition(
            OrderStatus::Processed,
            Timestamp::parse("2026-11-22T10:05:02Z").unwrap(),
        )
        .unwrap()
}
