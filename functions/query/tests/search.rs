//! `GET /orders?from=&to=`: searching orders by creation time through the handler, with
//! in-memory ports (the same window semantics as the DynamoDB adapter: both read the id range
//! `ListOrders::id_range` gives). Pages through windows with small pages, with and without
//! filters, and checks every answer against the orders' own `createdAt`.

use orders_core::memory::{MemoryAnalytics, MemoryCatalog, MemoryOrderStore};
use orders_core::order::NewLineItem;
use orders_core::ports::OrderStore;
use orders_core::{
    Currency, CustomerId, Money, Order, OrderId, OrderStatus, PlaceOrder, ProductId, Quantity,
    Timestamp,
};
use orders_tests::{Claims, api_event};
use query::handler::{QueryService, handle};
use serde_json::Value;

type Service = QueryService<MemoryOrderStore, MemoryCatalog, MemoryAnalytics>;

const STAFF: Claims = Claims::staff();

fn t0() -> i64 {
    Timestamp::parse("2026-11-22T10:00:00Z")
        .unwrap()
        .unix_millis()
}

fn ms(offset: i64) -> Timestamp {
    Timestamp::from_unix_millis(t0() + offset).unwrap()
}

/// Stores an order created at `at` as place-order would (its id minted at the same instant).
async fn seed(service: &Service, customer: &str, status: OrderStatus, at: Timestamp, n: u128) {
    let command = PlaceOrder {
        customer_id: CustomerId::parse(customer).unwrap(),
        currency: Currency::parse("USD").unwrap(),
        items: vec![NewLineItem {
            product_id: ProductId::parse("sku-1").unwrap(),
            quantity: Quantity::new(1).unwrap(),
            unit_price: Money::from_minor(100).unwrap(),
        }],
    };
    let id = OrderId::new(ulid::Ulid::from_parts(at.unix_millis() as u64, n));
    let mut order = Order::place(id, &command, at);
    order.status = status;
    service.store.create(&order).await.unwrap();
}

/// Three orders in each of 12 milliseconds (t0 + 0..12), customers `alice`/`bob`
/// alternating, every third order FAILED.
async fn service() -> Service {
    let service = QueryService::new(
        MemoryOrderStore::new(),
        MemoryCatalog::new(),
        MemoryAnalytics::new(),
    );
    for n in 0..36u128 {
        let customer = if n % 2 == 0 { "alice" } else { "bob" };
        let status = if n % 3 == 0 {
            OrderStatus::Failed
        } else {
            OrderStatus::Pending
        };
        seed(&service, customer, status, ms((n / 3) as i64), n).await;
    }
    service
}

async fn list(service: &Service, params: &[(&str, &str)], token: &Claims<'_>) -> (u16, Value) {
    let mut event = api_event("GET /orders", "/orders", &[], &[], None, Some(token));
    if !params.is_empty() {
        let encode = |s: &str| s.replace('+', "%2B").replace(':', "%3A");
        event["rawQueryString"] = params
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect::<Vec<_>>()
            .join("&")
            .into();
        let decoded: serde_json::Map<String, Value> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).into()))
            .collect();
        event["queryStringParameters"] = decoded.into();
    }
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = handle(service, request).await;
    let status = response.status().as_u16();
    let json = match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap(),
        _ => Value::Null,
    };
    (status, json)
}

/// Every page of a listing, following `nextCursor` with the same parameters.
async fn all_pages(
    service: &Service,
    params: &[(&str, &str)],
    token: &Claims<'_>,
) -> (Vec<Value>, usize) {
    let mut orders = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut with_cursor = params.to_vec();
        if let Some(c) = &cursor {
            with_cursor.push(("cursor", c.as_str()));
        }
        let (status, page) = list(service, &with_cursor, token).await;
        assert_eq!(status, 200, "{params:?}: {page}");
        pages += 1;
        orders.extend(page["orders"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (orders, pages),
        }
    }
}

fn created(order: &Value) -> Timestamp {
    Timestamp::parse(order["createdAt"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn a_window_lists_exactly_the_orders_created_in_it_newest_first() {
    let service = service().await;
    let (everything, _) = all_pages(&service, &[("limit", "100")], &STAFF).await;
    assert_eq!(everything.len(), 36);

    let (from, to) = (ms(3).to_string(), ms(8).to_string());
    for filters in [
        vec![],
        vec![("status", "FAILED")],
        vec![("customerId", "bob")],
        vec![("status", "PENDING"), ("customerId", "alice")],
    ] {
        let mut params = filters.clone();
        params.extend([("from", from.as_str()), ("to", to.as_str()), ("limit", "2")]);
        let (found, pages) = all_pages(&service, &params, &STAFF).await;
        let expected: Vec<&Value> = everything
            .iter()
            .filter(|o| (ms(3)..ms(8)).contains(&created(o)))
            .filter(|o| filters.iter().all(|(k, v)| o[*k] == *v))
            .collect();
        assert!(!expected.is_empty(), "{filters:?}");
        assert_eq!(
            found.iter().collect::<Vec<_>>(),
            expected,
            "{filters:?}: every order of the window once, newest first"
        );
        assert_eq!(pages, expected.len().div_ceil(2).max(1), "{filters:?}");
        // An order at exactly `from` is in, one at `to` is out.
        assert_eq!(created(found.last().unwrap()), ms(3), "{filters:?}");
        assert!(found.iter().all(|o| created(o) < ms(8)), "{filters:?}");
    }

    // One side open.
    let (found, _) = all_pages(&service, &[("from", &ms(10).to_string())], &STAFF).await;
    assert_eq!(found.len(), 6);
    let (found, _) = all_pages(
        &service,
        &[("to", &ms(1).to_string()), ("limit", "1")],
        &STAFF,
    )
    .await;
    assert_eq!(found.len(), 3);
    // Other offsets, sub-millisecond digits: the same instants select the same orders.
    let (found, _) = all_pages(
        &service,
        &[
            ("from", "2026-11-22T11:00:00.0029+01:00"),
            ("to", "2026-11-22T10:00:00.0040001Z"),
        ],
        &STAFF,
    )
    .await;
    let times: Vec<Timestamp> = found.iter().map(created).collect();
    assert_eq!(times, [ms(4), ms(4), ms(4), ms(3), ms(3), ms(3)]);
    // A window nothing was created in.
    let (status, page) = list(
        &service,
        &[("from", &ms(100).to_string()), ("to", &ms(200).to_string())],
        &STAFF,
    )
    .await;
    assert_eq!(
        (status, page),
        (200, serde_json::json!({"orders": [], "nextCursor": null}))
    );
}

#[tokio::test]
async fn a_customer_searches_only_its_own_orders() {
    let service = service().await;
    let (from, to) = (ms(0).to_string(), ms(12).to_string());
    let alice = Claims::customer("alice");
    let (found, _) = all_pages(
        &service,
        &[("from", &from), ("to", &to), ("limit", "5")],
        &alice,
    )
    .await;
    assert_eq!(found.len(), 18);
    assert!(found.iter().all(|o| o["customerId"] == "alice"));
    let (status, _) = list(&service, &[("from", &from), ("customerId", "bob")], &alice).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn bad_windows_are_400s_naming_each_field() {
    let service = service().await;
    let fields = |body: &Value| -> Vec<String> {
        body["error"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap().to_owned())
            .collect()
    };
    let (from, to) = (ms(0).to_string(), ms(12).to_string());
    let (_, first) = list(
        &service,
        &[("from", &from), ("to", &to), ("limit", "2")],
        &STAFF,
    )
    .await;
    let cursor = first["nextCursor"].as_str().unwrap().to_owned();
    let (_, unwindowed) = list(&service, &[("limit", "2")], &STAFF).await;
    let plain_cursor = unwindowed["nextCursor"].as_str().unwrap().to_owned();
    let later = ms(13).to_string();
    for (params, expected) in [
        (vec![("from", "yesterday")], vec!["from"]),
        (
            vec![("from", "2026-11-22"), ("to", "noon")],
            vec!["from", "to"],
        ),
        (
            vec![("from", to.as_str()), ("to", from.as_str())],
            vec!["from"],
        ),
        (
            vec![("from", from.as_str()), ("to", from.as_str())],
            vec!["from"],
        ),
        (vec![("to", "1969-12-31T23:59:59Z")], vec!["to"]),
        (vec![("from", "9999-06-01T00:00:00Z")], vec!["from"]),
        (
            vec![("from", "x"), ("limit", "0"), ("status", "lost")],
            vec!["from", "limit", "status"],
        ),
        // A cursor continues only the window it was returned for.
        (
            vec![
                ("from", from.as_str()),
                ("to", later.as_str()),
                ("cursor", cursor.as_str()),
            ],
            vec!["cursor"],
        ),
        (vec![("cursor", cursor.as_str())], vec!["cursor"]),
        (
            vec![("from", from.as_str()), ("cursor", plain_cursor.as_str())],
            vec!["cursor"],
        ),
    ] {
        let (status, body) = list(&service, &params, &STAFF).await;
        assert_eq!(status, 400, "{params:?}: {body}");
        assert_eq!(body["error"]["code"], "validation_failed", "{params:?}");
        let mut named = fields(&body);
        named.sort();
        let mut expected: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
        expected.sort();
        assert_eq!(named, expected, "{params:?}: {body}");
    }
    // The cursor with its own window continues it.
    let (status, _) = list(
        &service,
        &[
            ("from", &from),
            ("to", &to),
            ("limit", "2"),
            ("cursor", &cursor),
        ],
        &STAFF,
    )
    .await;
    assert_eq!(status, 200);
}
