//! `GET /orders?from=&to=` through the local stack: a run-unique customer's orders, searched
//! by creation time in small pages. Windows are cut at the orders' own `createdAt` (the
//! server sets it), so the expected answer is known exactly: every order created in
//! `[from, to)`, once, newest first — with a status and without, for staff and for the
//! customer itself. Bad windows are 400s naming the field.

use crate::pipeline::{get_json, orders_of, put_product, wait_until_processed};
use crate::{api, client, client_as, unique};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

const ORDERS: usize = 12;

/// Places `ORDERS` orders for `customer`, one after another: every fourth of a product not
/// in the catalog (it fails), the others of `product` (processed). No Idempotency-Key: a
/// retried 5xx may store a second order, which the listing the test compares with shows too.
async fn place_orders(customer: &str, product: &str) {
    for i in 0..ORDERS {
        let line = if i % 4 == 0 {
            json!({"productId": format!("{product}-unknown"), "quantity": 1, "unitPrice": 100})
        } else {
            json!({"productId": product, "quantity": 1})
        };
        let body = json!({"customerId": customer, "items": [line]});
        let mut placed = false;
        for _ in 0..10 {
            let response = client()
                .post(format!("{}/orders", api()))
                .json(&body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("the local stack is not serving {} ({e})", api()));
            if response.status().is_server_error() {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            assert_eq!(response.status().as_u16(), 201);
            placed = true;
            break;
        }
        assert!(placed, "placing an order kept failing with 5xx");
        // A few milliseconds apart, so windows can cut between orders.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn created(order: &Value) -> &str {
    order["createdAt"].as_str().expect("createdAt")
}

/// Whether `order` was created in `[from, to)` (RFC 3339 UTC with milliseconds, as the API
/// writes times, compare as text).
fn in_window(order: &Value, from: Option<&str>, to: Option<&str>) -> bool {
    let at = created(order);
    from.is_none_or(|f| f <= at) && to.is_none_or(|t| at < t)
}

fn millis(at: &str) -> i64 {
    orders_core::Timestamp::parse(at)
        .expect("an RFC 3339 time")
        .unix_millis()
}

/// Every page of `GET /orders?{query}`, following nextCursor with the same parameters.
async fn search(http: &reqwest::Client, query: &str) -> Vec<Value> {
    let mut orders = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let mut url = format!("{}/orders?{query}", api());
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = get_as(http, &url).await;
        orders.extend(page["orders"].as_array().expect("orders").iter().cloned());
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return orders,
        }
    }
    panic!("GET /orders?{query} never ended");
}

/// GET as JSON with `http`'s token, retrying 5xx as a client would.
async fn get_as(http: &reqwest::Client, url: &str) -> Value {
    for _ in 0..20 {
        match http.get(url).send().await {
            Ok(r) if r.status().is_success() => return r.json().await.unwrap(),
            Ok(r) if r.status().is_server_error() => {}
            Ok(r) => panic!("GET {url}: {} {}", r.status(), r.text().await.unwrap()),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("GET {url} kept failing");
}

fn ids(orders: &[Value]) -> Vec<&str> {
    orders
        .iter()
        .map(|o| o["orderId"].as_str().expect("orderId"))
        .collect()
}

/// Newest first (ids are time-ordered), no order twice.
fn assert_newest_first_once(orders: &[Value], what: &str) {
    let ids = ids(orders);
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "{what}: not strictly newest first: {ids:?}"
    );
}

#[tokio::test]
async fn a_creation_window_lists_exactly_its_orders_in_pages() {
    let customer = unique("e2e-search");
    let product = unique("e2e-search-mug");
    put_product(&product, 100).await;
    place_orders(&customer, &product).await;
    // Statuses settle first, so the status filters compare with final statuses.
    wait_until_processed(std::slice::from_ref(&customer), Duration::from_secs(90)).await;
    let all = orders_of(&customer).await;
    assert!(all.len() >= ORDERS, "{} orders listed", all.len());
    assert_newest_first_once(&all, "the customer's listing");

    // `from` at the third oldest order's createdAt (it is in), `to` at the third newest's (it
    // and anything of the same millisecond are out).
    let n = all.len();
    let (from, to) = (created(&all[n - 3]), created(&all[2]));
    assert!(from < to, "orders placed apart: {from} {to}");
    let windows = [
        (Some(from), Some(to)),
        (Some(created(&all[4])), None),
        (None, Some(created(&all[n - 5]))),
    ];
    for (from, to) in windows {
        let mut window = String::new();
        if let Some(from) = from {
            window.push_str(&format!("&from={from}"));
        }
        if let Some(to) = to {
            window.push_str(&format!("&to={to}"));
        }
        for status in [None, Some("PROCESSED"), Some("FAILED")] {
            let expected: Vec<&Value> = all
                .iter()
                .filter(|o| in_window(o, from, to))
                .filter(|o| status.is_none_or(|s| o["status"] == s))
                .collect();
            let status_param = status.map(|s| format!("&status={s}")).unwrap_or_default();
            let query = format!("customerId={customer}&limit=2{status_param}{window}");
            let found = search(&client(), &query).await;
            assert_eq!(
                found.iter().collect::<Vec<_>>(),
                expected,
                "{query}: exactly the orders created in the window, once, newest first"
            );
        }
    }
    // The edges themselves: the order at `from` is in, the one at `to` is out.
    let window = format!("from={from}&to={to}");
    let found = search(
        &client(),
        &format!("customerId={customer}&limit=2&{window}"),
    )
    .await;
    let found_ids: HashSet<&str> = ids(&found).into_iter().collect();
    assert!(found_ids.contains(all[n - 3]["orderId"].as_str().unwrap()));
    assert!(!found_ids.contains(all[2]["orderId"].as_str().unwrap()));

    // The customer itself, without naming itself: its own orders of the window.
    let own = client_as(orders_tests::Holder::Customer(&customer));
    let found = search(&own, &format!("limit=3&{window}")).await;
    let expected: Vec<&Value> = all
        .iter()
        .filter(|o| in_window(o, Some(from), Some(to)))
        .collect();
    assert_eq!(
        found.iter().collect::<Vec<_>>(),
        expected,
        "as the customer"
    );

    // Staff without a customer: every order of the window (other tests' too, on the sharded
    // indexes), ours among them exactly.
    for status in ["", "&status=PROCESSED"] {
        let found = search(&client(), &format!("limit=50{status}&{window}")).await;
        assert_newest_first_once(&found, &format!("all orders{status}"));
        // Others' orders by their ids' time: an order whose placement was resumed under its
        // Idempotency-Key (tests/e2e/faults.rs does that) is created at the retry but keeps
        // the id, and so the place in the listings, of its first attempt.
        let (low, high) = (millis(from), millis(to));
        for order in &found {
            let id = order["orderId"].as_str().expect("orderId");
            let at = ulid::Ulid::from_string(id).expect("a ULID").timestamp_ms() as i64;
            assert!(
                (low..high).contains(&at),
                "all orders{status}: {id} is outside the window"
            );
        }
        let ours: Vec<&Value> = found
            .iter()
            .filter(|o| o["customerId"] == customer.as_str())
            .collect();
        let expected: Vec<&Value> = all
            .iter()
            .filter(|o| in_window(o, Some(from), Some(to)))
            .filter(|o| status.is_empty() || o["status"] == "PROCESSED")
            .collect();
        assert_eq!(ours, expected, "all orders{status}: ours");
    }
}

#[tokio::test]
async fn bad_windows_are_400s_naming_the_field() {
    let customer = unique("e2e-search-bad");
    let product = unique("e2e-search-bad-mug");
    put_product(&product, 100).await;
    place_orders(&customer, &product).await;
    let all = orders_of(&customer).await;
    let (from, to) = (created(&all[all.len() - 1]), created(&all[0]));
    let first = get_json(&format!(
        "{}/orders?customerId={customer}&limit=1&from={from}&to={to}",
        api()
    ))
    .await;
    let cursor = first["nextCursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let plain = get_json(&format!("{}/orders?customerId={customer}&limit=1", api())).await;
    let plain_cursor = plain["nextCursor"]
        .as_str()
        .expect("a second page")
        .to_owned();

    for (query, fields) in [
        ("from=yesterday".to_owned(), vec!["from"]),
        ("to=2026-13-01T00:00:00Z".to_owned(), vec!["to"]),
        ("from=2026-11-22&to=noon".to_owned(), vec!["from", "to"]),
        (format!("from={to}&to={from}"), vec!["from"]),
        (format!("from={from}&to={from}"), vec!["from"]),
        ("from=1969-12-31T23:59:59Z".to_owned(), vec!["from"]),
        ("to=9999-06-01T00:00:00Z".to_owned(), vec!["to"]),
        (
            "from=x&limit=0&status=lost".to_owned(),
            vec!["from", "limit", "status"],
        ),
        // A cursor continues only the window it was returned for.
        (format!("from={from}&cursor={cursor}"), vec!["cursor"]),
        (format!("cursor={cursor}"), vec!["cursor"]),
        (
            format!("from={from}&to={to}&cursor={plain_cursor}"),
            vec!["cursor"],
        ),
    ] {
        let url = format!("{}/orders?customerId={customer}&{query}", api());
        let response = client().get(&url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 400, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "validation_failed", "{query}");
        let mut named: Vec<&str> = body["error"]["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|f| f["field"].as_str().expect("a field name"))
            .collect();
        named.sort_unstable();
        let mut fields = fields;
        fields.sort_unstable();
        assert_eq!(named, fields, "{query}: {body}");
    }
    // With its own window the cursor goes on.
    let second = get_json(&format!(
        "{}/orders?customerId={customer}&limit=1&from={from}&to={to}&cursor={cursor}",
        api()
    ))
    .await;
    assert_eq!(second["orders"].as_array().map(Vec::len), Some(1));
    assert_ne!(
        second["orders"][0]["orderId"],
        first["orders"][0]["orderId"]
    );
}
