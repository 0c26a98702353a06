//! query against the emulator, through the production adapters, with requests built from
//! real API Gateway v2 events (`fixtures/`). Each test gets its own orders table, cloned
//! from the Terraform-deployed schema (keys and GSIs included).

use orders_aws::{DynamoAnalyticsReader, DynamoCatalog, DynamoOrderStore};
use orders_core::order::NewLineItem;
use orders_core::ports::{Catalog, OrderStore};
use orders_core::{
    Currency, CustomerId, Money, Order, OrderId, OrderStatus, PlaceOrder, ProductId, Quantity,
    Timestamp,
};
use orders_tests::Emulator;
use query::{QueryService, handle};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts the `Query` requests of one client: what a listing page costs, whatever other
/// tests running at the same time send.
#[derive(Debug, Clone)]
struct CountQueries(Arc<AtomicUsize>);

impl aws_sdk_dynamodb::config::Intercept for CountQueries {
    fn name(&self) -> &'static str {
        "CountQueries"
    }

    fn read_before_transmit(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        use aws_smithy_runtime_api::client::orchestrator::Metadata;
        if cfg.load::<Metadata>().is_some_and(|m| m.name() == "Query") {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

const GET_ORDER: &str = include_str!("fixtures/get-order.json");
const LIST_ORDERS: &str = include_str!("fixtures/list-orders.json");

struct Stack {
    table: String,
    /// Query requests sent by `service`'s order store.
    queries: Arc<AtomicUsize>,
    service: QueryService<DynamoOrderStore, DynamoCatalog, DynamoAnalyticsReader>,
}

async fn spawn_stack() -> Stack {
    let emulator = Emulator::connect().await;
    let (table, products, analytics) = tokio::join!(
        emulator.clone_table("orders_table"),
        emulator.clone_table("products_table"),
        emulator.clone_table("analytics_table")
    );
    let queries = Arc::new(AtomicUsize::new(0));
    let counted = aws_sdk_dynamodb::config::Builder::from(&emulator.sdk)
        .interceptor(CountQueries(queries.clone()))
        .build();
    let service = QueryService::new(
        DynamoOrderStore::new(aws_sdk_dynamodb::Client::from_conf(counted), &table),
        DynamoCatalog::from_sdk(&emulator.sdk, &products),
        DynamoAnalyticsReader::from_sdk(&emulator.sdk, &analytics),
    );
    Stack {
        table,
        queries,
        service,
    }
}

struct Reply {
    status: u16,
    headers: lambda_http::http::HeaderMap,
    json: Value,
}

impl Stack {
    async fn call(&self, event: Value) -> Reply {
        let request = lambda_http::request::from_str(&event.to_string())
            .expect("a valid API Gateway v2 event");
        let response = handle(&self.service, request).await;
        let lambda_http::Body::Text(text) = response.body() else {
            panic!("a JSON body")
        };
        Reply {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            json: serde_json::from_str(text).unwrap(),
        }
    }

    async fn get(&self, id: &str) -> Reply {
        let mut event: Value = serde_json::from_str(GET_ORDER).unwrap();
        event["pathParameters"]["orderId"] = json!(id);
        event["rawPath"] = json!(format!("/orders/{id}"));
        event["requestContext"]["http"]["path"] = json!(format!("/orders/{id}"));
        self.call(event).await
    }

    async fn list(&self, params: &[(&str, &str)]) -> Reply {
        self.route("/orders", params).await
    }

    /// `GET path?params` through the route of the same name.
    async fn route(&self, path: &str, params: &[(&str, &str)]) -> Reply {
        let mut event: Value = serde_json::from_str(LIST_ORDERS).unwrap();
        event["routeKey"] = json!(format!("GET {path}"));
        event["requestContext"]["routeKey"] = json!(format!("GET {path}"));
        event["rawPath"] = json!(path);
        event["requestContext"]["http"]["path"] = json!(path);
        let query: serde_json::Map<String, Value> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        let encoded = params
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace(' ', "%20")))
            .collect::<Vec<_>>();
        event["rawQueryString"] = json!(encoded.join("&"));
        if query.is_empty() {
            event
                .as_object_mut()
                .unwrap()
                .remove("queryStringParameters");
        } else {
            event["queryStringParameters"] = Value::Object(query);
        }
        self.call(event).await
    }

    /// Stores an order directly (the query side only reads), `minutes_ago` old.
    async fn seed(&self, customer: &str, status: OrderStatus, minutes_ago: i64, n: u128) -> Order {
        let at = Timestamp::now().plus_seconds(-60 * minutes_ago);
        let command = PlaceOrder {
            customer_id: CustomerId::parse(customer).unwrap(),
            currency: Currency::parse("USD").unwrap(),
            items: vec![NewLineItem {
                product_id: ProductId::parse("sku-1").unwrap(),
                quantity: Quantity::new(1).unwrap(),
                unit_price: Money::from_minor(1000).unwrap(),
            }],
        };
        let id = OrderId::new(ulid::Ulid::from_parts(at.unix_millis() as u64, n));
        let mut order = Order::place(id, &command, at);
        order.status = status;
        self.service.store.create(&order).await.unwrap();
        order
    }
}

fn ids(reply: &Reply) -> Vec<String> {
    reply.json["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn gets_an_order_with_its_version_as_etag() {
    let stack = spawn_stack().await;
    let order = stack.seed("c-get", OrderStatus::Pending, 1, 1).await;
    let reply = stack.get(&order.order_id.to_string()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json, serde_json::to_value(&order).unwrap());
    assert_eq!(reply.headers["etag"], "\"1\"");
}

#[tokio::test]
async fn missing_order_is_404_and_malformed_id_is_400() {
    let stack = spawn_stack().await;
    let absent = OrderId::new(ulid::Ulid::new()).to_string();
    let reply = stack.get(&absent).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json["error"]["code"], "not_found");
    // The request to quote when reporting it, and headers every answer carries.
    assert_eq!(reply.json["error"]["requestId"], "BxYkqgM4IAMEVJx=");
    assert_eq!(reply.headers["x-content-type-options"], "nosniff");
    assert_eq!(reply.headers["referrer-policy"], "no-referrer");
    assert!(
        reply.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&absent)
    );

    let reply = stack.get("not-an-order-id").await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json["error"]["fields"][0]["field"], "orderId");
}

#[tokio::test]
async fn paginates_newest_first_across_pages_without_gaps_or_repeats() {
    let stack = spawn_stack().await;
    let mut seeded = Vec::new();
    for i in 0..25 {
        seeded.push(
            stack
                .seed("c-pages", OrderStatus::Pending, 100 - i, i as u128)
                .await
                .order_id
                .to_string(),
        );
    }
    seeded.reverse(); // newest first
    for filter in [
        vec![("customerId", "c-pages")],
        vec![],
        vec![("status", "PENDING")],
    ] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut params = filter.clone();
            params.push(("limit", "10"));
            if let Some(c) = &cursor {
                params.push(("cursor", c.as_str()));
            }
            let reply = stack.list(&params).await;
            assert_eq!(reply.status, 200, "{}", reply.json);
            pages += 1;
            seen.extend(ids(&reply));
            match reply.json["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(pages, 3, "25 orders in pages of 10 ({filter:?})");
        assert_eq!(seen, seeded, "every order once, newest first ({filter:?})");
    }
}

#[tokio::test]
async fn last_full_page_has_no_next_cursor() {
    let stack = spawn_stack().await;
    for i in 0..4 {
        stack
            .seed("c-exact", OrderStatus::Pending, 10 - i, i as u128)
            .await;
    }
    let reply = stack
        .list(&[("customerId", "c-exact"), ("limit", "4")])
        .await;
    assert_eq!(ids(&reply).len(), 4);
    assert!(reply.json["nextCursor"].is_null());
}

#[tokio::test]
async fn filters_by_status_alone_and_with_a_customer() {
    let stack = spawn_stack().await;
    let statuses = [
        OrderStatus::Pending,
        OrderStatus::Failed,
        OrderStatus::Processed,
    ];
    let mut failed_for_a = HashSet::new();
    let mut failed_all = HashSet::new();
    for i in 0..18u128 {
        let customer = if i % 2 == 0 { "c-a" } else { "c-b" };
        let status = statuses[(i % 3) as usize];
        let order = stack.seed(customer, status, 50 - i as i64, i).await;
        if status == OrderStatus::Failed {
            failed_all.insert(order.order_id.to_string());
            if customer == "c-a" {
                failed_for_a.insert(order.order_id.to_string());
            }
        }
    }
    let reply = stack.list(&[("status", "FAILED"), ("limit", "100")]).await;
    assert_eq!(ids(&reply).into_iter().collect::<HashSet<_>>(), failed_all);
    assert!(
        reply.json["orders"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["status"] == "FAILED")
    );

    // The customer filter uses its own index; status is filtered within it, and small pages
    // still fill up to the limit.
    let reply = stack
        .list(&[("status", "FAILED"), ("customerId", "c-a"), ("limit", "2")])
        .await;
    let first = ids(&reply);
    assert_eq!(first.len(), 2);
    let cursor = reply.json["nextCursor"]
        .as_str()
        .expect("a third failed order remains")
        .to_owned();
    let rest = stack
        .list(&[
            ("status", "FAILED"),
            ("customerId", "c-a"),
            ("limit", "2"),
            ("cursor", &cursor),
        ])
        .await;
    let all: HashSet<String> = first.into_iter().chain(ids(&rest)).collect();
    assert_eq!(all, failed_for_a);
    assert!(rest.json["nextCursor"].is_null());

    let none = stack.list(&[("status", "DELIVERED")]).await;
    assert_eq!(none.json, json!({"orders": [], "nextCursor": null}));
}

#[tokio::test]
async fn a_listing_page_costs_a_fixed_number_of_queries_whatever_the_table_holds() {
    let stack = spawn_stack().await;
    // Two delivered orders of a customer behind 45 newer ones of another status: a filter on
    // the customer's index would read all 47 (three 21-item queries) to fill the page.
    for n in 0..2u128 {
        stack
            .seed("c-busy", OrderStatus::Delivered, 120 - n as i64, n)
            .await;
    }
    for n in 2..47u128 {
        stack
            .seed("c-busy", OrderStatus::Processed, 100 - n as i64, n)
            .await;
    }
    let cost = |before: usize| stack.queries.load(Ordering::SeqCst) - before;

    let before = stack.queries.load(Ordering::SeqCst);
    let reply = stack
        .list(&[
            ("customerId", "c-busy"),
            ("status", "DELIVERED"),
            ("limit", "20"),
        ])
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(ids(&reply).len(), 2);
    assert!(reply.json["nextCursor"].is_null());
    assert_eq!(cost(before), 1, "customer and status: one Query");

    let before = stack.queries.load(Ordering::SeqCst);
    let reply = stack
        .list(&[("customerId", "c-busy"), ("limit", "20")])
        .await;
    assert_eq!(ids(&reply).len(), 20);
    assert_eq!(cost(before), 1, "customer: one Query");

    // Every order and one status: one Query per write shard, each for at most a page + 1.
    for params in [
        vec![("limit", "20")],
        vec![("status", "PROCESSED"), ("limit", "20")],
    ] {
        let before = stack.queries.load(Ordering::SeqCst);
        let reply = stack.list(&params).await;
        assert_eq!(ids(&reply).len(), 20, "{params:?}");
        let shards = orders_aws::dynamo::LIST_SHARDS as usize;
        assert_eq!(cost(before), shards, "{params:?}: one Query per shard");
    }
}

#[tokio::test]
async fn a_creation_window_pages_through_every_index_at_the_same_cost() {
    let stack = spawn_stack().await;
    let mut seeded = Vec::new();
    for i in 0..30i64 {
        let status = if i % 3 == 0 {
            OrderStatus::Failed
        } else {
            OrderStatus::Pending
        };
        seeded.push(stack.seed("c-window", status, 60 - i, i as u128).await);
    }
    // Orders 10..20 by age: `from` is the 10th's createdAt (in), `to` the 20th's (out).
    let (from, to) = (
        seeded[10].created_at.to_string(),
        seeded[20].created_at.to_string(),
    );
    let shards = orders_aws::dynamo::LIST_SHARDS as usize;
    for (filter, queries_per_page) in [
        (vec![], shards),
        (vec![("status", "FAILED")], shards),
        (vec![("customerId", "c-window")], 1),
        (vec![("customerId", "c-window"), ("status", "PENDING")], 1),
    ] {
        let mut expected: Vec<String> = seeded[10..20]
            .iter()
            .filter(|o| {
                filter
                    .iter()
                    .all(|(k, v)| *k != "status" || o.status.as_str() == *v)
            })
            .map(|o| o.order_id.to_string())
            .collect();
        expected.reverse();
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut params = filter.clone();
            params.extend([("from", from.as_str()), ("to", to.as_str()), ("limit", "3")]);
            if let Some(c) = &cursor {
                params.push(("cursor", c.as_str()));
            }
            let before = stack.queries.load(Ordering::SeqCst);
            let reply = stack.list(&params).await;
            assert_eq!(reply.status, 200, "{params:?}: {}", reply.json);
            assert!(
                stack.queries.load(Ordering::SeqCst) - before <= queries_per_page,
                "{filter:?}: a page of a window costs what a page without one does"
            );
            seen.extend(ids(&reply));
            match reply.json["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(
            seen, expected,
            "{filter:?}: the window's orders, once, newest first"
        );
    }
}

#[tokio::test]
async fn bad_list_parameters_are_400s_naming_the_parameter() {
    let stack = spawn_stack().await;
    // Well-formed base64 of the right prefix, but not an order id we could have issued.
    let foreign_cursor = "djE6bm90LWFuLW9yZGVyLWlk"; // base64url("v1:not-an-order-id")
    for (params, field) in [
        (vec![("status", "SHIPPEDX")], "status"),
        (vec![("status", "pending")], "status"),
        (vec![("limit", "0")], "limit"),
        (vec![("limit", "101")], "limit"),
        (vec![("limit", "abc")], "limit"),
        (vec![("cursor", "garbage")], "cursor"),
        (vec![("cursor", foreign_cursor)], "cursor"),
        (vec![("customerId", "has space")], "customerId"),
        (vec![("sort", "asc")], "sort"),
        (vec![("from", "yesterday")], "from"),
        (vec![("to", "1969-12-31T00:00:00Z")], "to"),
        (
            vec![
                ("from", "2026-11-22T10:00:00Z"),
                ("to", "2026-11-22T10:00:00Z"),
            ],
            "from",
        ),
        (
            vec![
                ("from", "2026-11-22T10:00:00Z"),
                ("cursor", "djE6MDFNODFDMVhKQlFRSk0yUzZSNzZGUUNaMjU"),
            ],
            "cursor",
        ),
    ] {
        let reply = stack.list(&params).await;
        assert_eq!(reply.status, 400, "{params:?}: {}", reply.json);
        assert_eq!(reply.json["error"]["code"], "validation_failed");
        assert_eq!(
            reply.json["error"]["fields"][0]["field"], field,
            "{params:?}"
        );
    }
}

#[tokio::test]
async fn windows_past_the_last_representable_day_are_400s_not_panics() {
    let stack = spawn_stack().await;
    for (path, params) in [
        (
            "/analytics/summary",
            vec![
                ("from", "9999-12-31T22:00:00-01:00"),
                ("to", "9999-12-31T23:00:00-01:00"),
            ],
        ),
        (
            "/analytics/sales",
            vec![
                ("granularity", "day"),
                ("from", "9999-12-30T00:00:00Z"),
                ("to", "9999-12-31T00:01:00Z"),
            ],
        ),
        (
            "/analytics/top-products",
            vec![
                ("from", "9998-12-31T00:00:00Z"),
                ("to", "9999-01-02T00:00:00Z"),
            ],
        ),
        (
            "/analytics/summary",
            vec![
                ("from", "0001-01-01T00:00:00Z"),
                ("to", "0001-01-02T00:00:00Z"),
            ],
        ),
    ] {
        let reply = stack.route(path, &params).await;
        assert_eq!(reply.status, 400, "{path} {params:?}: {}", reply.json);
        assert_eq!(reply.json["error"]["code"], "validation_failed");
    }
    // The last supported day still answers.
    let reply = stack
        .route(
            "/analytics/sales",
            &[
                ("granularity", "day"),
                ("from", "9998-12-30T00:00:00Z"),
                ("to", "9998-12-31T00:01:00Z"),
            ],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
}

#[tokio::test]
async fn health_reports_whether_the_table_is_reachable() {
    let stack = spawn_stack().await;
    let mut event: Value = serde_json::from_str(LIST_ORDERS).unwrap();
    event["routeKey"] = json!("GET /health");
    event["requestContext"]["routeKey"] = json!("GET /health");
    event
        .as_object_mut()
        .unwrap()
        .remove("queryStringParameters");
    let reply = stack.call(event.clone()).await;
    assert_eq!(
        (reply.status, reply.json.clone()),
        (200, json!({"status": "ok"}))
    );

    let emulator = Emulator::connect().await;
    let missing = QueryService::new(
        DynamoOrderStore::from_sdk(&emulator.sdk, format!("{}-gone", stack.table)),
        DynamoCatalog::from_sdk(&emulator.sdk, "unused"),
        DynamoAnalyticsReader::from_sdk(&emulator.sdk, "unused"),
    );
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = handle(&missing, request).await;
    assert_eq!(response.status().as_u16(), 503);
}

#[tokio::test]
async fn serves_the_catalog_one_product_and_in_pages() {
    let stack = spawn_stack().await;
    let mut all = HashSet::new();
    for i in 0..7 {
        let product = orders_core::Product {
            product_id: ProductId::parse(&format!("sku-{i}")).unwrap(),
            name: format!("Product {i}"),
            price: Money::from_minor(100 * i).unwrap(),
            stock: 10,
            version: 1,
            updated_at: Timestamp::now(),
        };
        assert!(
            stack.service.catalog.put(&product).await.unwrap(),
            "created"
        );
        all.insert(product.product_id.to_string());
    }
    let mut event: Value = serde_json::from_str(GET_ORDER).unwrap();
    event["routeKey"] = json!("GET /products/{productId}");
    event["requestContext"]["routeKey"] = json!("GET /products/{productId}");
    event["pathParameters"] = json!({"productId": "sku-3"});
    let reply = stack.call(event.clone()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        (
            reply.json["name"].as_str(),
            reply.json["price"].as_i64(),
            reply.json["stock"].as_u64()
        ),
        (Some("Product 3"), Some(300), Some(10))
    );
    event["pathParameters"] = json!({"productId": "sku-404"});
    assert_eq!(stack.call(event).await.status, 404);

    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut list: Value = serde_json::from_str(LIST_ORDERS).unwrap();
        list["routeKey"] = json!("GET /products");
        list["requestContext"]["routeKey"] = json!("GET /products");
        let mut params = json!({"limit": "3"});
        if let Some(c) = &cursor {
            params["cursor"] = json!(c);
        }
        list["queryStringParameters"] = params;
        list["rawQueryString"] = json!("");
        let reply = stack.call(list).await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        for p in reply.json["products"].as_array().unwrap() {
            assert!(
                seen.insert(p["productId"].as_str().unwrap().to_owned()),
                "no repeats"
            );
        }
        match reply.json["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, all);
}
