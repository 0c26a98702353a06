//! place-order against the emulator, through the production adapters, with requests built
//! from a real API Gateway v2 event (`fixtures/post-order.json`). Each test gets its own
//! tables (cloned from the Terraform-deployed schema, the orders table's change stream
//! included). place-order publishes nothing itself: the events a test expects are the ones
//! the relay derives from the orders table's change stream.

use futures::future::join_all;
use orders_aws::{DynamoCatalog, DynamoIdempotencyStore, DynamoOrderCommands, DynamoOrderStore};
use orders_core::Currency;
use orders_core::memory::RecordingActivity;
use orders_core::ports::Catalog;
use orders_core::ports::{SystemClock, UlidIds};
use orders_tests::Emulator;
use orders_tests::RecordedMetrics;
use place_order::{ActivityService, App, CommandService, PlaceOrderService, handle};
use serde_json::{Value, json};
use std::sync::Arc;

const FIXTURE: &str = include_str!("fixtures/post-order.json");

struct Stack {
    emulator: Emulator,
    orders_table: String,
    idempotency_table: String,
    app: App<
        DynamoOrderStore,
        DynamoIdempotencyStore,
        DynamoOrderCommands,
        DynamoCatalog,
        RecordingActivity,
    >,
}

struct Reply {
    status: u16,
    headers: lambda_http::http::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

async fn spawn_stack() -> Stack {
    let emulator = Emulator::connect().await;
    let (orders_table, idempotency_table, products_table) = tokio::join!(
        emulator.clone_table("orders_table"),
        emulator.clone_table("idempotency_table"),
        emulator.clone_table("products_table"),
    );
    let place = PlaceOrderService {
        store: DynamoOrderStore::from_sdk(&emulator.sdk, &orders_table),
        idempotency: DynamoIdempotencyStore::from_sdk(&emulator.sdk, &idempotency_table),
        catalog: DynamoCatalog::from_sdk(&emulator.sdk, &products_table),
        clock: Arc::new(SystemClock),
        ids: Arc::new(UlidIds),
        currency: Currency::parse("USD").unwrap(),
        idempotency_ttl_seconds: 86_400,
    };
    let commands = CommandService {
        commands: DynamoOrderCommands::from_sdk(&emulator.sdk, &orders_table, &products_table),
        catalog: DynamoCatalog::from_sdk(&emulator.sdk, &products_table),
        clock: Arc::new(SystemClock),
    };
    Stack {
        emulator,
        orders_table,
        idempotency_table,
        app: App {
            place,
            commands,
            activity: ActivityService {
                publisher: RecordingActivity::new(),
                clock: Arc::new(SystemClock),
            },
        },
    }
}

/// The fixture event with another body and extra (or replaced) headers.
fn request(body: &str, headers: &[(&str, &str)]) -> lambda_http::Request {
    let mut event: Value = serde_json::from_str(FIXTURE).unwrap();
    event["body"] = Value::String(body.to_owned());
    for (name, value) in headers {
        if value.is_empty() {
            event["headers"].as_object_mut().unwrap().remove(*name);
        } else {
            event["headers"][name] = Value::String((*value).to_owned());
        }
    }
    lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event")
}

impl Stack {
    async fn call(&self, request: lambda_http::Request) -> Reply {
        let response = handle(&self.app, request).await;
        let text = match response.body() {
            lambda_http::Body::Text(t) => t.clone(),
            lambda_http::Body::Empty => String::new(),
            lambda_http::Body::Binary(b) => String::from_utf8(b.clone()).unwrap(),
            _ => String::new(),
        };
        Reply {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text,
        }
    }

    async fn post(&self, body: &Value, key: Option<&str>) -> Reply {
        let mut headers = vec![];
        if let Some(key) = key {
            headers.push(("idempotency-key", key));
        }
        self.call(request(&body.to_string(), &headers)).await
    }

    /// The events the relay publishes for what this test's requests stored, in order:
    /// `(partition key, event JSON)`.
    async fn events(&self) -> Vec<(String, Value)> {
        self.emulator
            .table_changes(&self.orders_table)
            .await
            .records
            .iter()
            .filter_map(|r| match relay::change_of(r) {
                relay::Change::Publish(e) => {
                    Some((e.partition_key(), serde_json::to_value(&*e).unwrap()))
                }
                _ => None,
            })
            .collect()
    }
}

fn order_body() -> Value {
    json!({"customerId":"c-1","items":[{"productId":"sku-1","quantity":2,"unitPrice":list_price("sku-1")},{"productId":"sku-2","quantity":1,"unitPrice":list_price("sku-2")}],"currency":"USD"})
}

/// The catalog price `put_product` gives a product (and `order_body` quotes).
fn list_price(id: &str) -> i64 {
    if id == "sku-2" { 500 } else { 1999 }
}

#[tokio::test]
async fn places_an_order_stores_it_and_publishes_its_event() {
    let stack = spawn_stack().await;
    let reply = stack.post(&order_body(), None).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let order = reply.json();
    let id = order["orderId"].as_str().unwrap().to_owned();
    assert_eq!(reply.headers["location"], format!("/orders/{id}").as_str());
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(order["status"], "PENDING");
    assert_eq!(order["version"], 1);
    assert_eq!(order["total"], 4498);
    assert_eq!(order["currency"], "USD");
    assert_eq!(order["items"][0]["lineTotal"], 3998);

    let stored = stack
        .emulator
        .dynamodb()
        .get_item()
        .table_name(&stack.orders_table)
        .key(
            "orderId",
            aws_sdk_dynamodb::types::AttributeValue::S(id.clone()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("the order is in DynamoDB");
    assert_eq!(stored["status"].as_s().unwrap(), "PENDING");
    assert_eq!(stored["total"].as_n().unwrap(), "4498");
    assert!(
        stored["statusShard"]
            .as_s()
            .unwrap()
            .starts_with("PENDING#")
    );

    let events = stack.events().await;
    assert_eq!(events.len(), 1);
    let (partition_key, event) = &events[0];
    assert_eq!(partition_key, &id, "partition key = order id");
    assert_eq!(event["eventType"], "OrderPlaced");
    assert_eq!(event["schemaVersion"], 2);
    assert_eq!(event["payload"]["totals"], json!({"units": 3, "lines": 2}));
    assert_eq!(event["orderId"], id.as_str());
    assert_eq!(event["payload"]["order"], order);
}

#[tokio::test]
async fn currency_defaults_to_the_deployment_currency() {
    let stack = spawn_stack().await;
    let reply = stack
        .post(
            &json!({"customerId":"c-2","items":[{"productId":"p","quantity":1,"unitPrice":100}]}),
            None,
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.json()["currency"], "USD");
}

#[tokio::test]
async fn same_key_and_body_replays_the_same_response_and_creates_one_order() {
    let stack = spawn_stack().await;
    let first = stack.post(&order_body(), Some("key-replay")).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert!(first.headers.get("idempotent-replayed").is_none());
    // Same meaning, different bytes: key order and an explicit default currency.
    let reordered =
        json!({"currency":"USD","items":order_body()["items"].clone(),"customerId":"c-1"});
    let second = stack.post(&reordered, Some("key-replay")).await;
    assert_eq!(second.status, first.status);
    assert_eq!(second.text, first.text, "byte-identical body");
    assert_eq!(second.headers["location"], first.headers["location"]);
    assert_eq!(second.headers["idempotent-replayed"], "true");
    assert_eq!(stack.emulator.item_count(&stack.orders_table).await, 1);
    assert_eq!(stack.events().await.len(), 1);
}

#[tokio::test]
async fn same_key_with_another_body_is_refused() {
    let stack = spawn_stack().await;
    assert_eq!(
        stack.post(&order_body(), Some("key-reuse")).await.status,
        201
    );
    let mut other = order_body();
    other["items"][0]["quantity"] = json!(3);
    let reply = stack.post(&other, Some("key-reuse")).await;
    assert_eq!(reply.status, 422);
    assert_eq!(reply.json()["error"]["code"], "idempotency_key_reused");
    assert_eq!(stack.emulator.item_count(&stack.orders_table).await, 1);
    assert_eq!(stack.events().await.len(), 1);
}

#[tokio::test]
async fn concurrent_duplicates_create_one_order() {
    let stack = spawn_stack().await;
    let body = order_body();
    let replies = join_all((0..8).map(|_| stack.post(&body, Some("key-concurrent")))).await;
    let ids: std::collections::HashSet<String> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, 201, "{}", r.text);
            r.json()["orderId"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "every duplicate got the same order");
    assert!(
        replies.windows(2).all(|w| w[0].text == w[1].text),
        "same body for all"
    );
    assert_eq!(stack.emulator.item_count(&stack.orders_table).await, 1);
    // Racing requests may each publish, but always the same event (same derived eventId).
    let events = stack.events().await;
    assert!(!events.is_empty());
    let event_ids: std::collections::HashSet<_> =
        events.iter().map(|(_, e)| e["eventId"].clone()).collect();
    assert_eq!(event_ids.len(), 1);
}

#[tokio::test]
async fn a_retry_after_a_lost_answer_returns_the_order_as_it_is_and_adds_no_event() {
    let stack = spawn_stack().await;
    stack.put_product("sku-1", 10).await;
    stack.put_product("sku-2", 10).await;
    let first = stack.post(&order_body(), Some("key-lost")).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let id = first.json()["orderId"].as_str().unwrap().to_owned();
    stack.process(&id).await;
    // The stored answer is gone, as after a timeout in `complete` or a Lambda killed before
    // it: the claim holds the order id but no response.
    stack
        .emulator
        .dynamodb()
        .update_item()
        .table_name(&stack.idempotency_table)
        .key(
            "idempotencyKey",
            aws_sdk_dynamodb::types::AttributeValue::S("key-lost".into()),
        )
        .update_expression("REMOVE responseStatus, responseBody")
        .send()
        .await
        .unwrap();

    let retried = stack.post(&order_body(), Some("key-lost")).await;
    assert_eq!(retried.status, 201, "{}", retried.text);
    assert_eq!(retried.json()["orderId"], id.as_str(), "the same order");
    assert_eq!(retried.json()["status"], "PROCESSED", "as it is now");
    assert_eq!(stack.emulator.item_count(&stack.orders_table).await, 1);
    let events: Vec<(String, u64)> = stack
        .events()
        .await
        .iter()
        .map(|(_, e)| {
            (
                e["eventType"].as_str().unwrap().to_owned(),
                e["payload"]["order"]["version"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("OrderPlaced".to_owned(), 1),
            ("OrderProcessed".to_owned(), 2)
        ],
        "one OrderPlaced, for version 1 only"
    );
}

#[tokio::test]
async fn unknown_route_is_a_404_in_the_error_shape() {
    let stack = spawn_stack().await;
    let mut event: Value = serde_json::from_str(FIXTURE).unwrap();
    event["routeKey"] = json!("PUT /orders");
    event["requestContext"]["routeKey"] = json!("PUT /orders");
    let reply = stack
        .call(lambda_http::request::from_str(&event.to_string()).unwrap())
        .await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"]["code"], "not_found");
}

/// (case, body, headers, status, code, field named in the error)
type BadInput<'a> = (
    &'a str,
    String,
    Vec<(&'a str, &'a str)>,
    u16,
    &'a str,
    Option<&'a str>,
);

/// Bad input: each case gets the right 4xx and names what is wrong; afterwards nothing was
/// written to the orders table, the idempotency table or the stream.
#[tokio::test]
async fn bad_input_is_refused_and_writes_nothing() {
    let stack = spawn_stack().await;
    let item = |q: Value, p: Value| json!({"customerId":"c-1","items":[{"productId":"sku-1","quantity":q,"unitPrice":p}]});
    let many: Vec<Value> = (0..100)
        .map(|i| json!({"productId":format!("p{i}"),"quantity":1,"unitPrice":1}))
        .collect();
    let huge = format!(
        r#"{{"customerId":"c-1","items":[],"pad":"{}"}}"#,
        "x".repeat(70_000)
    );
    let long_key = "k".repeat(129);
    let cases: Vec<BadInput> = vec![
        ("malformed JSON", r#"{"customerId":"#.into(), vec![], 400, "malformed_json", None),
        ("empty body", String::new(), vec![], 400, "malformed_json", None),
        ("trailing garbage", format!("{} x", order_body()), vec![], 400, "malformed_json", None),
        ("text/plain", order_body().to_string(), vec![("content-type", "text/plain")], 415, "unsupported_media_type", None),
        ("no content type", order_body().to_string(), vec![("content-type", "")], 415, "unsupported_media_type", None),
        ("form encoded", "customerId=c-1".into(), vec![("content-type", "application/x-www-form-urlencoded")], 415, "unsupported_media_type", None),
        ("body over 64 KiB", huge, vec![], 413, "payload_too_large", None),
        ("array body", "[]".into(), vec![], 400, "validation_failed", Some("$")),
        ("null body", "null".into(), vec![], 400, "validation_failed", Some("$")),
        ("missing customerId", json!({"items":[{"productId":"p","quantity":1,"unitPrice":1}]}).to_string(), vec![], 400, "validation_failed", Some("customerId")),
        ("customerId too long", json!({"customerId":"c".repeat(65),"items":[{"productId":"p","quantity":1,"unitPrice":1}]}).to_string(), vec![], 400, "validation_failed", Some("customerId")),
        ("customerId with a slash", json!({"customerId":"a/b","items":[{"productId":"p","quantity":1,"unitPrice":1}]}).to_string(), vec![], 400, "validation_failed", Some("customerId")),
        ("customerId a number", json!({"customerId":12,"items":[{"productId":"p","quantity":1,"unitPrice":1}]}).to_string(), vec![], 400, "validation_failed", Some("customerId")),
        ("missing items", json!({"customerId":"c-1"}).to_string(), vec![], 400, "validation_failed", Some("items")),
        ("no items", json!({"customerId":"c-1","items":[]}).to_string(), vec![], 400, "validation_failed", Some("items")),
        ("100 items (the limit is 99)", json!({"customerId":"c-1","items":many}).to_string(), vec![], 400, "validation_failed", Some("items")),
        ("items an object", json!({"customerId":"c-1","items":{}}).to_string(), vec![], 400, "validation_failed", Some("items")),
        ("quantity 0", item(json!(0), json!(1)).to_string(), vec![], 400, "validation_failed", Some("items[0].quantity")),
        ("quantity 10001", item(json!(10_001), json!(1)).to_string(), vec![], 400, "validation_failed", Some("items[0].quantity")),
        ("quantity a string", item(json!("2"), json!(1)).to_string(), vec![], 400, "validation_failed", Some("items[0].quantity")),
        ("quantity fractional", item(json!(1.5), json!(1)).to_string(), vec![], 400, "validation_failed", Some("items[0].quantity")),
        ("price in major units", item(json!(1), json!(19.99)).to_string(), vec![], 400, "validation_failed", Some("items[0].unitPrice")),
        ("negative price", item(json!(1), json!(-1)).to_string(), vec![], 400, "validation_failed", Some("items[0].unitPrice")),
        ("price too large", item(json!(1), json!(100_000_000)).to_string(), vec![], 400, "validation_failed", Some("items[0].unitPrice")),
        ("missing productId", json!({"customerId":"c-1","items":[{"quantity":1,"unitPrice":1}]}).to_string(), vec![], 400, "validation_failed", Some("items[0].productId")),
        ("duplicate product", json!({"customerId":"c-1","items":[{"productId":"p","quantity":1,"unitPrice":1},{"productId":"p","quantity":2,"unitPrice":1}]}).to_string(), vec![], 400, "validation_failed", Some("items[1].productId")),
        ("other currency", json!({"customerId":"c-1","currency":"EUR","items":[{"productId":"p","quantity":1,"unitPrice":1}]}).to_string(), vec![], 400, "validation_failed", Some("currency")),
        ("lowercase currency", json!({"customerId":"c-1","currency":"usd","items":[{"productId":"p","quantity":1,"unitPrice":1}]}).to_string(), vec![], 400, "validation_failed", Some("currency")),
        ("unknown field", json!({"customerId":"c-1","coupon":"X","items":[{"productId":"p","quantity":1,"unitPrice":1}]}).to_string(), vec![], 400, "validation_failed", Some("coupon")),
        ("Idempotency-Key too long", order_body().to_string(), vec![("idempotency-key", long_key.as_str())], 400, "validation_failed", Some("Idempotency-Key")),
        ("Idempotency-Key with a space", order_body().to_string(), vec![("idempotency-key", "a b")], 400, "validation_failed", Some("Idempotency-Key")),
    ];
    assert!(cases.len() >= 20);
    for (name, body, headers, status, code, field) in cases {
        let reply = stack.call(request(&body, &headers)).await;
        assert_eq!(reply.status, status, "{name}: {}", reply.text);
        let error = &reply.json()["error"];
        assert_eq!(error["code"], code, "{name}");
        assert!(
            !error["message"].as_str().unwrap_or_default().is_empty(),
            "{name}: a message"
        );
        if let Some(field) = field {
            let named = error["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|f| f["field"] == field);
            assert!(named, "{name}: expected field {field} in {error}");
        }
    }
    assert_eq!(stack.emulator.item_count(&stack.orders_table).await, 0);
    assert_eq!(stack.emulator.item_count(&stack.idempotency_table).await, 0);
    assert!(stack.events().await.is_empty());
}

#[tokio::test]
async fn every_bad_field_is_named_in_one_response() {
    let stack = spawn_stack().await;
    let body = json!({"customerId":"","currency":"EUR","items":[{"productId":"sku-1","quantity":0,"unitPrice":1.5}]});
    let reply = stack.post(&body, None).await;
    assert_eq!(reply.status, 400);
    let fields: Vec<String> = reply.json()["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        fields,
        [
            "customerId",
            "currency",
            "items[0].quantity",
            "items[0].unitPrice"
        ]
    );
}

// ---------------------------------------------------------------- order commands

impl Stack {
    /// A request for `route` (e.g. `PATCH /orders/{orderId}`) on `path`, built from the fixture.
    async fn command(
        &self,
        route: &str,
        path: &str,
        params: Value,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut event: Value = serde_json::from_str(FIXTURE).unwrap();
        let (method, _) = route.split_once(' ').unwrap();
        event["routeKey"] = json!(route);
        event["requestContext"]["routeKey"] = json!(route);
        event["requestContext"]["http"]["method"] = json!(method);
        event["requestContext"]["http"]["path"] = json!(path);
        event["rawPath"] = json!(path);
        event["pathParameters"] = params;
        match body {
            Some(body) => event["body"] = json!(body.to_string()),
            None => {
                event.as_object_mut().unwrap().remove("body");
            }
        }
        for (name, value) in headers {
            event["headers"][name] = json!(value);
        }
        self.call(lambda_http::request::from_str(&event.to_string()).unwrap())
            .await
    }

    async fn put_product(&self, id: &str, stock: u64) -> Reply {
        self.command(
            "PUT /products/{productId}",
            &format!("/products/{id}"),
            json!({ "productId": id }),
            Some(json!({"name": format!("Product {id}"), "price": list_price(id), "stock": stock})),
            &[],
        )
        .await
    }

    async fn put_product_with(&self, id: &str, body: Value, headers: &[(&str, &str)]) -> Reply {
        self.command(
            "PUT /products/{productId}",
            &format!("/products/{id}"),
            json!({ "productId": id }),
            Some(body),
            headers,
        )
        .await
    }

    async fn cancel(&self, id: &str, headers: &[(&str, &str)]) -> Reply {
        self.command(
            "DELETE /orders/{orderId}",
            &format!("/orders/{id}"),
            json!({ "orderId": id }),
            None,
            headers,
        )
        .await
    }

    async fn patch(&self, id: &str, status: &str, headers: &[(&str, &str)]) -> Reply {
        self.command(
            "PATCH /orders/{orderId}",
            &format!("/orders/{id}"),
            json!({ "orderId": id }),
            Some(json!({ "status": status })),
            headers,
        )
        .await
    }

    async fn placed_id(&self) -> String {
        let reply = self.post(&order_body(), None).await;
        assert_eq!(reply.status, 201);
        reply.json()["orderId"].as_str().unwrap().to_owned()
    }

    /// Processes an order the way process-order does (reserving stock), for command tests.
    async fn process(&self, id: &str) {
        use orders_core::ports::{OrderCommands, StockChange};
        let commands = &self.app.commands.commands;
        let stored = commands
            .load(&orders_core::OrderId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap();
        let next = stored
            .transition(
                orders_core::OrderStatus::Processed,
                orders_core::Timestamp::now(),
            )
            .unwrap();
        let applied = commands
            .apply(&next, &StockChange::Reserve(StockChange::lines(&stored)))
            .await
            .unwrap();
        assert_eq!(applied, orders_core::ports::Applied::Done);
    }

    async fn stock(&self, id: &str) -> u64 {
        use orders_core::ports::Catalog;
        let product = self
            .app
            .commands
            .catalog
            .get(&orders_core::ProductId::parse(id).unwrap())
            .await
            .unwrap();
        product.unwrap().stock
    }
}

#[tokio::test]
async fn put_product_creates_then_updates_and_validates() {
    let stack = spawn_stack().await;
    let created = stack.put_product("sku-1", 10).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.headers["location"], "/products/sku-1");
    assert_eq!(created.headers["etag"], "\"1\"");
    assert_eq!(
        (
            created.json()["stock"].clone(),
            created.json()["version"].clone()
        ),
        (json!(10), json!(1))
    );
    // Stock of an existing product: only against the version read.
    let blind = stack.put_product("sku-1", 4).await;
    assert_eq!(blind.status, 428, "{}", blind.text);
    assert_eq!(blind.json()["error"]["code"], "precondition_required");
    let replaced = stack
        .put_product_with(
            "sku-1",
            json!({"name": "P", "price": 1999, "stock": 4}),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    assert_eq!(replaced.headers["etag"], "\"2\"");
    assert_eq!(stack.stock("sku-1").await, 4);
    let bad = stack
        .command(
            "PUT /products/{productId}",
            "/products/sku-2",
            json!({"productId": "sku-2"}),
            Some(json!({"name": "", "price": 1.5, "stock": -3})),
            &[],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["fields"].as_array().unwrap().len(), 3);
    let bad_id = stack
        .command(
            "PUT /products/{productId}",
            "/products/a%20b",
            json!({"productId": "a b"}),
            Some(json!({"name":"x","price":1,"stock":1})),
            &[],
        )
        .await;
    assert_eq!(bad_id.status, 400);
}

/// The issue's scenario: a client reads a product, ten units are sold, then the client
/// saves a rename built from its read. The sale must stand.
#[tokio::test]
async fn a_catalog_edit_from_a_read_taken_before_a_sale_cannot_undo_the_sale() {
    let stack = spawn_stack().await;
    stack.put_product("sku-1", 10).await;
    stack.put_product("sku-2", 10).await;
    let seen = stack
        .app
        .commands
        .catalog
        .get(&orders_core::ProductId::parse("sku-1").unwrap())
        .await
        .unwrap()
        .unwrap();
    let id = stack.placed_id().await; // 2 × sku-1, 1 × sku-2
    stack.process(&id).await;
    assert_eq!(stack.stock("sku-1").await, 8);

    let stale = format!("\"{}\"", seen.version);
    let body = json!({"name": "Renamed", "price": seen.price.minor(), "stock": seen.stock});
    let refused = stack
        .put_product_with("sku-1", body, &[("if-match", &stale)])
        .await;
    assert_eq!(refused.status, 412, "{}", refused.text);
    assert_eq!(stack.stock("sku-1").await, 8, "the sale stands");
    // A rename without the stock goes through, and keeps the stock as it is now.
    let renamed = stack
        .put_product_with("sku-1", json!({"name": "Renamed", "price": 2500}), &[])
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(
        (
            renamed.json()["name"].clone(),
            renamed.json()["stock"].clone()
        ),
        (json!("Renamed"), json!(8))
    );
    assert_eq!(stack.stock("sku-1").await, 8);
}

#[tokio::test]
async fn stock_adjustments_are_atomic_and_never_go_below_zero() {
    let stack = spawn_stack().await;
    stack.put_product("sku-1", 5).await;
    let adjust = |add: Value| {
        stack.command(
            "POST /products/{productId}/stock",
            "/products/sku-1/stock",
            json!({"productId": "sku-1"}),
            Some(json!({ "add": add })),
            &[],
        )
    };
    // Concurrent restocks all count.
    let replies = join_all((0..6).map(|_| adjust(json!(10)))).await;
    assert!(
        replies.iter().all(|r| r.status == 200),
        "{:?}",
        replies.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    assert_eq!(stack.stock("sku-1").await, 65);
    let taken = adjust(json!(-60)).await;
    assert_eq!(
        (taken.status, taken.json()["stock"].clone()),
        (200, json!(5))
    );
    let too_many = adjust(json!(-6)).await;
    assert_eq!(too_many.status, 409, "{}", too_many.text);
    assert_eq!(stack.stock("sku-1").await, 5, "nothing taken");
    assert_eq!(adjust(json!(0)).await.status, 400);
    let missing = stack
        .command(
            "POST /products/{productId}/stock",
            "/products/sku-none/stock",
            json!({"productId": "sku-none"}),
            Some(json!({ "add": 1 })),
            &[],
        )
        .await;
    assert_eq!(missing.status, 404, "{}", missing.text);
}

#[tokio::test]
async fn cancelling_a_processed_order_releases_its_stock_once() {
    let stack = spawn_stack().await;
    stack.put_product("sku-1", 10).await;
    stack.put_product("sku-2", 10).await;
    let id = stack.placed_id().await;
    stack.process(&id).await;
    assert_eq!(
        (stack.stock("sku-1").await, stack.stock("sku-2").await),
        (8, 9)
    );

    let cancelled = stack.cancel(&id, &[("if-match", "\"2\"")]).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    assert_eq!(cancelled.json()["status"], "CANCELLED");
    assert_eq!(cancelled.headers["etag"], "\"3\"");
    assert_eq!(
        (stack.stock("sku-1").await, stack.stock("sku-2").await),
        (10, 10)
    );

    let again = stack.cancel(&id, &[]).await;
    assert_eq!(
        again.status, 200,
        "a repeated cancel returns the cancelled order"
    );
    assert_eq!(again.json(), cancelled.json());
    assert_eq!(
        (stack.stock("sku-1").await, stack.stock("sku-2").await),
        (10, 10),
        "released once"
    );

    let events = stack.events().await;
    let cancels: Vec<_> = events
        .iter()
        .filter(|(_, e)| e["eventType"] == "OrderCancelled")
        .collect();
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].1["payload"]["previousStatus"], "PROCESSED");
}

#[tokio::test]
async fn status_flow_through_patch_with_etags() {
    let stack = spawn_stack().await;
    stack.put_product("sku-1", 10).await;
    stack.put_product("sku-2", 10).await;
    let id = stack.placed_id().await;

    let early = stack.patch(&id, "SHIPPED", &[]).await;
    assert_eq!(
        early.status, 409,
        "SHIPPED before PROCESSED: {}",
        early.text
    );
    assert_eq!(early.json()["error"]["code"], "conflict");
    stack.process(&id).await;
    assert_eq!(
        stack.patch(&id, "PENDING", &[]).await.status,
        409,
        "back to PENDING"
    );
    assert_eq!(
        stack
            .patch(&id, "SHIPPED", &[("if-match", "\"1\"")])
            .await
            .status,
        412,
        "stale ETag"
    );

    let shipped = stack.patch(&id, "SHIPPED", &[("if-match", "\"2\"")]).await;
    assert_eq!(shipped.status, 200, "{}", shipped.text);
    assert_eq!(shipped.json()["status"], "SHIPPED");
    assert!(shipped.json()["shippedAt"].is_string());
    assert_eq!(
        stack.cancel(&id, &[]).await.status,
        409,
        "shipped orders cannot be cancelled"
    );
    let delivered = stack.patch(&id, "DELIVERED", &[]).await;
    assert_eq!(
        (delivered.status, delivered.json()["version"].as_u64()),
        (200, Some(4))
    );

    let bad = stack.patch(&id, "LOST", &[]).await;
    assert_eq!(bad.status, 400);
    let absent = orders_core::OrderId::new(ulid::Ulid::new()).to_string();
    assert_eq!(stack.patch(&absent, "SHIPPED", &[]).await.status, 404);
    assert_eq!(stack.cancel("nope", &[]).await.status, 400);

    let types: Vec<String> = stack
        .events()
        .await
        .iter()
        .map(|(_, e)| e["eventType"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        [
            "OrderPlaced",
            "OrderProcessed",
            "OrderShipped",
            "OrderDelivered"
        ],
        "one event per stored version (processing is simulated here)"
    );
}

#[tokio::test]
async fn concurrent_changes_to_one_order_have_exactly_one_winner() {
    let stack = spawn_stack().await;
    stack.put_product("sku-1", 10).await;
    stack.put_product("sku-2", 10).await;
    let id = stack.placed_id().await;
    stack.process(&id).await;
    let etag = [("if-match", "\"2\"")];
    let (stack, id, etag) = (&stack, &id, &etag);
    let requests = (0..6).map(|i| async move {
        if i % 2 == 0 {
            stack.cancel(id, etag).await
        } else {
            stack.patch(id, "SHIPPED", etag).await
        }
    });
    let replies = join_all(requests).await;
    let winners: Vec<_> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(
        winners.len(),
        1,
        "{:?}",
        replies
            .iter()
            .map(|r| (r.status, r.text.clone()))
            .collect::<Vec<_>>()
    );
    assert!(replies.iter().all(|r| [200, 409, 412].contains(&r.status)));
    let stored_version = winners[0].json()["version"].as_u64();
    assert_eq!(stored_version, Some(3));
    let expected_stock = if winners[0].json()["status"] == "CANCELLED" {
        10
    } else {
        8
    };
    assert_eq!(stack.stock("sku-1").await, expected_stock);
}

#[tokio::test]
async fn metrics_count_placed_replayed_and_rejected_orders() {
    let metrics = RecordedMetrics::start();
    let stack = spawn_stack().await;
    assert_eq!(stack.post(&order_body(), Some("key-m")).await.status, 201);
    assert_eq!(metrics.take(), json!({ "OrdersPlaced": 1 }));
    assert_eq!(stack.post(&order_body(), Some("key-m")).await.status, 201);
    assert_eq!(metrics.take(), json!({ "IdempotentReplays": 1 }));

    let mut other = order_body();
    other["items"][0]["quantity"] = json!(0);
    assert_eq!(stack.post(&other, None).await.status, 400);
    other["items"][0]["quantity"] = json!(3);
    assert_eq!(stack.post(&other, Some("key-m")).await.status, 422);
    assert_eq!(
        metrics.take(),
        json!({
            "OrdersRejected{reason=validation_failed}": 1,
            "OrdersRejected{reason=idempotency_key_reused}": 1,
        })
    );
}

#[tokio::test]
async fn lines_are_priced_from_the_catalog_and_a_different_quoted_price_stores_nothing() {
    let stack = spawn_stack().await;
    stack.put_product("sku-1", 10).await;
    // The product costs 19.99; an order quoting 0 is refused, naming the line.
    let cheap =
        json!({"customerId":"c-1","items":[{"productId":"sku-1","quantity":3,"unitPrice":0}]});
    let refused = stack.post(&cheap, Some("k-cheap")).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    let error = &refused.json()["error"];
    assert_eq!(error["code"], "price_changed");
    assert_eq!(error["fields"][0]["field"], "items[0].unitPrice");
    assert!(
        error["fields"][0]["message"]
            .as_str()
            .unwrap()
            .contains("1999"),
        "{error}"
    );
    assert!(stack.events().await.is_empty(), "nothing stored");
    // The same key and body is priced again (still refused), not replayed as a success.
    assert_eq!(stack.post(&cheap, Some("k-cheap")).await.status, 409);

    // Without a price, or with the right one, lines take the catalog's.
    let unpriced = json!({"customerId":"c-1","items":[{"productId":"sku-1","quantity":3}]});
    let placed = stack.post(&unpriced, None).await;
    assert_eq!(placed.status, 201, "{}", placed.text);
    let order = placed.json();
    assert_eq!(order["items"][0]["unitPrice"], 1999);
    assert_eq!(order["total"], 3 * 1999);
    let events = stack.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1["payload"]["order"]["total"], 3 * 1999);
}

#[tokio::test]
async fn a_callers_key_is_stored_scoped_and_replays_from_the_table() {
    let stack = spawn_stack().await;
    let body = json!({"items": [{"productId": "sku-1", "quantity": 1}]}).to_string();
    let as_caller = |sub: &str| {
        let mut event: Value = serde_json::from_str(FIXTURE).unwrap();
        event["body"] = Value::String(body.clone());
        event["headers"]["idempotency-key"] = json!("shared-key");
        event["requestContext"]["authorizer"] =
            json!({"jwt": {"claims": {"sub": sub}, "scopes": ["orders/customer"]}});
        lambda_http::request::from_str(&event.to_string()).unwrap()
    };
    let alice = stack.call(as_caller("alice")).await;
    let bob = stack.call(as_caller("bob")).await;
    assert_eq!(
        (alice.status, bob.status),
        (201, 201),
        "{} {}",
        alice.text,
        bob.text
    );
    assert_ne!(alice.json()["orderId"], bob.json()["orderId"]);
    // The replay reads the stored (scoped) key back from the table.
    let again = stack.call(as_caller("alice")).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.json(), alice.json());
}
