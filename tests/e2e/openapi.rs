//! `api/openapi.json` against the running API: every route is called with valid and invalid
//! input, and every answer — status, media type, body and documented headers — must be one
//! the document lists for that operation. Each test also asserts that it saw every documented
//! status that a local stack can produce (all but 429, 500 and 503), so a documented answer
//! the code can no longer give shows up as well as an undocumented one.
//!
//! Inputs the code rejects are also checked against the document: it must reject them too
//! (a request body schema or parameter schema looser than the code is drift as well).

#[path = "../openapi/contract.rs"]
mod contract;

use crate::{api, client, unique};
use contract::{Contract, DOCUMENT, escape};
use orders_core::Timestamp;
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Statuses only a failing dependency or a throttling gateway produces.
const NOT_PRODUCIBLE_LOCALLY: [u16; 3] = [429, 500, 503];

/// An order id that is well formed and never issued (its time is the Unix epoch).
const UNKNOWN_ORDER: &str = "00000000000000000000000000";

struct Reply {
    status: u16,
    headers: HeaderMap,
    /// JSON bodies parsed, other bodies as a string, no body as null.
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header"))
    }
}

/// Sends requests and checks every answer against the document.
struct Checker {
    contract: Contract,
    /// `(route, status)` of every answer seen.
    seen: BTreeSet<(String, u16)>,
}

impl Checker {
    fn new() -> Self {
        Self {
            contract: Contract::load(),
            seen: BTreeSet::new(),
        }
    }

    /// Sends `request` for `route` (`"GET /orders/{orderId}"`), checks the answer, and
    /// retries a 5xx (after checking it too) the way a client would with a loaded local stack.
    async fn send(&mut self, route: &str, request: RequestBuilder) -> Reply {
        let built = request
            .try_clone()
            .and_then(|r| r.build().ok())
            .expect("a valid request");
        assert!(
            matches_route(route, built.method().as_str(), built.url().path()),
            "{} {} is not a request for {route}",
            built.method(),
            built.url().path()
        );
        let mut attempts = 0;
        loop {
            let response = request
                .try_clone()
                .expect("test requests have buffered bodies")
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "the local stack is not serving {} ({e}); run `make test`",
                        api()
                    )
                });
            let reply = self.check(route, response).await;
            attempts += 1;
            if reply.status < 500 || attempts == 10 {
                return reply;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// [`Self::send`], asserting the status.
    async fn expect(&mut self, status: StatusCode, route: &str, request: RequestBuilder) -> Reply {
        let reply = self.send(route, request).await;
        assert_eq!(
            reply.status,
            status.as_u16(),
            "{route}: expected {status}, got {}: {}",
            reply.status,
            reply.body
        );
        reply
    }

    async fn check(&mut self, route: &str, response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a readable body");
        let c = &self.contract;
        let (method, path) = route.split_once(' ').expect("METHOD /path");
        let operation = c.operation(method, path);
        let documented = &c.at(&operation)["responses"];
        assert!(
            documented.get(status.to_string()).is_some(),
            "{route} answered {status}, which api/openapi.json does not document: {text}"
        );
        let at = c.resolved_pointer(&format!("{operation}/responses/{status}"));
        let documented = c.at(&at);

        let body = match documented.get("content").and_then(Value::as_object) {
            None => {
                assert!(
                    text.is_empty(),
                    "{route} {status} has no documented body, got {text}"
                );
                Value::Null
            }
            Some(content) => {
                let media_type = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(';').next())
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                assert!(
                    content.contains_key(&media_type),
                    "{route} {status} answered {media_type:?}; documented: {:?}",
                    content.keys().collect::<Vec<_>>()
                );
                let body = if media_type.ends_with("json") {
                    serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("{route} {status}: not JSON ({e}): {text}"))
                } else {
                    Value::String(text)
                };
                let schema = format!("{at}/content/{}/schema", escape(&media_type));
                let violations = c.violations(&schema, &body);
                assert!(
                    violations.is_empty(),
                    "{route} {status} body breaks {schema}: {violations:#?}\n{body}"
                );
                body
            }
        };

        for (name, _) in documented["headers"].as_object().into_iter().flatten() {
            let header_at = c.resolved_pointer(&format!("{at}/headers/{}", escape(name)));
            let header = c.at(&header_at);
            let Some(value) = headers.get(name.as_str()) else {
                assert!(
                    header["required"] != true,
                    "{route} {status}: the documented header {name} is missing"
                );
                continue;
            };
            let value = value.to_str().expect("a visible ASCII header");
            let schema = format!("{header_at}/schema");
            let typed = typed(c.at(&schema), value)
                .unwrap_or_else(|| panic!("{route} {status}: {name}: {value} is not of its type"));
            let violations = c.violations(&schema, &typed);
            assert!(
                violations.is_empty(),
                "{route} {status}: header {name}: {value}: {violations:#?}"
            );
        }

        self.seen.insert((route.to_owned(), status));
        Reply {
            status,
            headers,
            body,
        }
    }

    /// GET `path`, then again with the ETag it answered in If-None-Match, which must be a 304.
    /// Reports are recomputed every 2 s while other tests place orders, so a report that
    /// changed in between (a 200, checked like any answer) is tried again.
    async fn revalidate(&mut self, route: &str, path: &str) -> Reply {
        for _ in 0..5 {
            let first = self
                .expect(StatusCode::OK, route, client().get(url(path)))
                .await;
            let tag = first.header("etag").to_owned();
            let second = self
                .send(route, client().get(url(path)).header("If-None-Match", &tag))
                .await;
            if second.status == StatusCode::NOT_MODIFIED.as_u16() {
                assert_eq!(second.header("etag"), tag);
                return first;
            }
        }
        panic!("{route}: {path} never answered 304 to its own ETag");
    }

    /// Whether the document's request body schema for `route` accepts `body`.
    fn body_conforms(&self, route: &str, body: &Value) -> bool {
        let (method, path) = route.split_once(' ').expect("METHOD /path");
        let schema = format!(
            "{}/requestBody/content/application~1json/schema",
            self.contract.operation(method, path)
        );
        self.contract.violations(&schema, body).is_empty()
    }

    /// Whether the document declares query parameter `name` for `route` and accepts `raw`.
    fn parameter_conforms(&self, route: &str, name: &str, raw: &str) -> bool {
        let c = &self.contract;
        let (method, path) = route.split_once(' ').expect("METHOD /path");
        let operation = c.operation(method, path);
        let count = c.at(&operation)["parameters"]
            .as_array()
            .map_or(0, Vec::len);
        let Some(index) = (0..count).find(|i| {
            let p = c.at(&format!("{operation}/parameters/{i}"));
            p["name"] == name && p["in"] == "query"
        }) else {
            return false;
        };
        let schema = format!(
            "{}/schema",
            c.resolved_pointer(&format!("{operation}/parameters/{index}"))
        );
        typed(c.at(&schema), raw).is_some_and(|v| c.violations(&schema, &v).is_empty())
    }

    /// Asserts this checker saw every documented status of the routes `routes` selects, but
    /// those a local stack cannot produce.
    /// Every role against every route of `routes`, as the document's `security` says: without
    /// a token a protected route is 401, a customer's token on a route whose scopes are
    /// staff's is 403 — both from the authorizer, before any function runs — and every role
    /// the scopes admit gets through to the function. (What a customer may then do with
    /// others' orders is tests/e2e/auth.rs.)
    async fn role_matrix(&mut self, routes: impl Fn(&str) -> bool) {
        let customer = crate::client_as(orders_tests::Holder::Customer("matrix-customer"));
        let anonymous = reqwest::Client::new();
        let staff = client();
        let operations: Vec<(String, Vec<String>)> = self.contract.doc["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .expect("a path item")
                    .iter()
                    .filter(|(method, _)| *method != "parameters")
                    .map(move |(method, op)| {
                        let scopes = op["security"]
                            .as_array()
                            .and_then(|s| s.first())
                            .and_then(|r| r["signIn"].as_array())
                            .map(|a| {
                                a.iter()
                                    .filter_map(Value::as_str)
                                    .map(str::to_owned)
                                    .collect()
                            })
                            .unwrap_or_default();
                        (format!("{} {path}", method.to_ascii_uppercase()), scopes)
                    })
            })
            .collect();
        for (route, scopes) in operations.into_iter().filter(|(r, _)| routes(r)) {
            if scopes.is_empty() {
                continue; // public: the rest of the tests call it without a token
            }
            let (method, template) = route.split_once(' ').expect("METHOD /path");
            let path = template
                .replace("{orderId}", UNKNOWN_ORDER)
                .replace("{productId}", "matrix-product");
            let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
            let request = |client: &reqwest::Client| client.request(method.clone(), url(&path));
            self.expect(StatusCode::UNAUTHORIZED, &route, request(&anonymous))
                .await;
            // Each role the route's scopes admit gets past the authorizer (whatever the
            // function then answers an empty request: 2xx, 404, 415…, all documented).
            let admitted: Vec<&reqwest::Client> = if scopes.iter().any(|s| s == "orders/customer") {
                vec![&customer, &staff]
            } else {
                self.expect(StatusCode::FORBIDDEN, &route, request(&customer))
                    .await;
                vec![&staff]
            };
            for client in admitted {
                let reply = self.send(&route, request(client)).await;
                assert!(
                    reply.status != 401 && reply.status != 403,
                    "{route}: a role its scopes admit got {}",
                    reply.status
                );
            }
        }
        // A customer acting for another: refused by the function (`forbidden`).
        if routes("POST /orders") {
            let other = json!({"customerId": "someone-else",
                "items": [{"productId": "matrix-product", "quantity": 1}]});
            let post = customer.post(url("/orders")).json(&other);
            self.expect(StatusCode::FORBIDDEN, "POST /orders", post)
                .await;
            let list = customer.get(url("/orders?customerId=someone-else"));
            self.expect(StatusCode::FORBIDDEN, "GET /orders", list)
                .await;
        }
    }

    fn assert_covered(&self, routes: impl Fn(&str) -> bool) {
        let mut missing = Vec::new();
        for (path, item) in self.contract.doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("a path item") {
                let route = format!("{} {path}", method.to_ascii_uppercase());
                if method == "parameters" || !routes(&route) {
                    continue;
                }
                for status in operation["responses"]
                    .as_object()
                    .expect("responses")
                    .keys()
                {
                    let status: u16 = status.parse().expect("numeric statuses");
                    if !NOT_PRODUCIBLE_LOCALLY.contains(&status)
                        && !self.seen.contains(&(route.clone(), status))
                    {
                        missing.push(format!("{route} {status}"));
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "documented but never seen (unreachable, or this test misses a case): {missing:#?}"
        );
    }
}

/// Whether `method path` is a request for `route`, whose `{name}` segments match any segment.
fn matches_route(route: &str, method: &str, path: &str) -> bool {
    let (route_method, template) = route.split_once(' ').expect("METHOD /path");
    let (template, path): (Vec<_>, Vec<_>) =
        (template.split('/').collect(), path.split('/').collect());
    route_method == method
        && template.len() == path.len()
        && template
            .iter()
            .zip(&path)
            .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
}

/// A header or query string value as the JSON type its schema expects.
fn typed(schema: &Value, raw: &str) -> Option<Value> {
    match schema["type"].as_str() {
        Some("integer") => raw.parse::<i64>().ok().map(Value::from),
        _ => Some(Value::String(raw.to_owned())),
    }
}

/// `name=value`, percent-encoded.
fn query(name: &str, value: &str) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    format!("{}={}", encode(name), encode(value))
}

fn url(path: &str) -> String {
    format!("{}{path}", api())
}

/// A JSON body over the functions' 64 KiB limit (well under API Gateway's 10 MB).
fn oversized() -> String {
    json!({"status": "SHIPPED", "padding": "x".repeat(70 * 1024)}).to_string()
}

async fn wait_for_status(checker: &mut Checker, id: &str, wanted: &str) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = checker
            .expect(
                StatusCode::OK,
                "GET /orders/{orderId}",
                client().get(url(&format!("/orders/{id}"))),
            )
            .await;
        if reply.body["status"] == wanted {
            return reply;
        }
        assert!(
            Instant::now() < deadline,
            "order {id} is {} after 60 s, not {wanted}",
            reply.body["status"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn commands_and_reads_answer_as_documented() {
    let mut c = Checker::new();
    let run = unique("oapi");
    let (mug, tea) = (format!("{run}-mug"), format!("{run}-tea"));
    let (alice, bob) = (format!("{run}-alice"), format!("{run}-bob"));

    // The catalog.
    const PUT_PRODUCT: &str = "PUT /products/{productId}";
    let product = json!({"name": "Blue mug", "price": 1299, "stock": 50});
    assert!(c.body_conforms(PUT_PRODUCT, &product));
    let created = c
        .expect(
            StatusCode::CREATED,
            PUT_PRODUCT,
            client()
                .put(url(&format!("/products/{mug}")))
                .json(&product),
        )
        .await;
    assert_eq!(created.header("location"), format!("/products/{mug}"));
    assert_eq!(created.header("etag"), "\"1\"");
    // Stock of an existing product: only with If-Match (428 without, 412 when stale).
    c.expect(
        StatusCode::PRECONDITION_REQUIRED,
        PUT_PRODUCT,
        client()
            .put(url(&format!("/products/{mug}")))
            .json(&product),
    )
    .await;
    c.expect(
        StatusCode::PRECONDITION_FAILED,
        PUT_PRODUCT,
        client()
            .put(url(&format!("/products/{mug}")))
            .header("if-match", "\"7\"")
            .json(&product),
    )
    .await;
    let replaced = c
        .expect(
            StatusCode::OK,
            PUT_PRODUCT,
            client()
                .put(url(&format!("/products/{mug}")))
                .header("if-match", "\"1\"")
                .json(&product),
        )
        .await;
    assert_eq!(replaced.header("etag"), "\"2\"");

    const STOCK: &str = "POST /products/{productId}/stock";
    let stock_url = url(&format!("/products/{mug}/stock"));
    let reply = c
        .expect(
            StatusCode::OK,
            STOCK,
            client().post(&stock_url).json(&json!({"add": 10})),
        )
        .await;
    assert_eq!(reply.body["stock"], 60);
    c.expect(
        StatusCode::CONFLICT,
        STOCK,
        client().post(&stock_url).json(&json!({"add": -61})),
    )
    .await;
    c.expect(
        StatusCode::BAD_REQUEST,
        STOCK,
        client().post(&stock_url).json(&json!({"add": 0, "set": 3})),
    )
    .await;
    c.expect(
        StatusCode::NOT_FOUND,
        STOCK,
        client()
            .post(url(&format!("/products/{run}-none/stock")))
            .json(&json!({"add": 1})),
    )
    .await;
    c.expect(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        STOCK,
        client()
            .post(&stock_url)
            .header("content-type", "text/plain")
            .body("10"),
    )
    .await;
    c.expect(
        StatusCode::PAYLOAD_TOO_LARGE,
        STOCK,
        client()
            .post(&stock_url)
            .header("content-type", "application/json")
            .body(oversized()),
    )
    .await;
    c.expect(
        StatusCode::CREATED,
        PUT_PRODUCT,
        client()
            .put(url(&format!("/products/{tea}")))
            .json(&json!({"name": "Earl Grey", "price": 850, "stock": 50})),
    )
    .await;
    let bad = json!({"name": "", "price": 12.5, "stock": -1, "colour": "red"});
    assert!(!c.body_conforms(PUT_PRODUCT, &bad));
    let reply = c
        .expect(
            StatusCode::BAD_REQUEST,
            PUT_PRODUCT,
            client().put(url(&format!("/products/{mug}"))).json(&bad),
        )
        .await;
    assert_eq!(
        reply.body["error"]["fields"].as_array().map(Vec::len),
        Some(4)
    );
    let long_id = "x".repeat(65);
    c.expect(
        StatusCode::BAD_REQUEST,
        PUT_PRODUCT,
        client()
            .put(url(&format!("/products/{long_id}")))
            .json(&product),
    )
    .await;
    let reply = c
        .expect(
            StatusCode::BAD_REQUEST,
            PUT_PRODUCT,
            client()
                .put(url(&format!("/products/{mug}")))
                .header("content-type", "application/json"),
        )
        .await;
    assert_eq!(reply.body["error"]["code"], "malformed_json");
    c.expect(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        PUT_PRODUCT,
        client()
            .put(url(&format!("/products/{mug}")))
            .header("content-type", "text/plain")
            .body("Blue mug"),
    )
    .await;
    c.expect(
        StatusCode::PAYLOAD_TOO_LARGE,
        PUT_PRODUCT,
        client()
            .put(url(&format!("/products/{mug}")))
            .header("content-type", "application/json")
            .body(oversized()),
    )
    .await;

    const GET_PRODUCT: &str = "GET /products/{productId}";
    let reply = c
        .expect(
            StatusCode::OK,
            GET_PRODUCT,
            client().get(url(&format!("/products/{mug}"))),
        )
        .await;
    assert_eq!(reply.body["name"], "Blue mug");
    c.expect(
        StatusCode::NOT_FOUND,
        GET_PRODUCT,
        client().get(url(&format!("/products/{run}-none"))),
    )
    .await;
    c.expect(
        StatusCode::BAD_REQUEST,
        GET_PRODUCT,
        client().get(url(&format!("/products/{long_id}"))),
    )
    .await;

    const LIST_PRODUCTS: &str = "GET /products";
    let page = c
        .expect(
            StatusCode::OK,
            LIST_PRODUCTS,
            client().get(url("/products?limit=1")),
        )
        .await;
    let cursor = page.body["nextCursor"]
        .as_str()
        .expect("more than one product")
        .to_owned();
    assert!(c.parameter_conforms(LIST_PRODUCTS, "cursor", &cursor));
    c.expect(
        StatusCode::OK,
        LIST_PRODUCTS,
        client().get(url(&format!("/products?limit=2&cursor={cursor}"))),
    )
    .await;
    for (name, value) in [("limit", "0"), ("limit", "101"), ("status", "PENDING")] {
        assert!(
            !c.parameter_conforms(LIST_PRODUCTS, name, value),
            "{name}={value}"
        );
        c.expect(
            StatusCode::BAD_REQUEST,
            LIST_PRODUCTS,
            client().get(url(&format!("/products?{name}={value}"))),
        )
        .await;
    }
    c.expect(
        StatusCode::BAD_REQUEST,
        LIST_PRODUCTS,
        client().get(url("/products?cursor=zz")),
    )
    .await;

    // Placing orders.
    const POST_ORDER: &str = "POST /orders";
    // The prices the catalog above lists (a client may quote them; lines are priced from it).
    let price_of = |p: &str| if p == tea { 850 } else { 1299 };
    let order_of = |customer: &str, lines: &[(&str, u32)]| {
        json!({"customerId": customer, "currency": "USD", "items": lines.iter()
            .map(|(p, q)| json!({"productId": p, "quantity": q, "unitPrice": price_of(p)}))
            .collect::<Vec<_>>()})
    };
    // A line quoted at another price than the catalog's is refused, naming the line.
    let refused = c
        .expect(
            StatusCode::CONFLICT,
            POST_ORDER,
            client()
                .post(url("/orders"))
                .json(&json!({"customerId": alice,
                "items": [{"productId": mug, "quantity": 1, "unitPrice": 0}]})),
        )
        .await;
    assert_eq!(refused.body["error"]["code"], "price_changed");
    assert_eq!(
        refused.body["error"]["fields"][0]["field"],
        "items[0].unitPrice"
    );
    let first = order_of(&alice, &[(&mug, 2), (&tea, 1)]);
    assert!(c.body_conforms(POST_ORDER, &first));
    let key = unique("key");
    let placed = c
        .expect(
            StatusCode::CREATED,
            POST_ORDER,
            client()
                .post(url("/orders"))
                .header("Idempotency-Key", &key)
                .json(&first),
        )
        .await;
    let a = placed.body["orderId"]
        .as_str()
        .expect("an order id")
        .to_owned();
    assert_eq!(placed.header("location"), format!("/orders/{a}"));
    assert!(placed.headers.get("idempotent-replayed").is_none());
    let replay = c
        .expect(
            StatusCode::CREATED,
            POST_ORDER,
            client()
                .post(url("/orders"))
                .header("Idempotency-Key", &key)
                .json(&first),
        )
        .await;
    assert_eq!(replay.header("idempotent-replayed"), "true");
    assert_eq!(replay.body, placed.body);
    c.expect(
        StatusCode::UNPROCESSABLE_ENTITY,
        POST_ORDER,
        client()
            .post(url("/orders"))
            .header("Idempotency-Key", &key)
            .json(&order_of(&alice, &[(&mug, 3)])),
    )
    .await;
    let b = c
        .expect(
            StatusCode::CREATED,
            POST_ORDER,
            client()
                .post(url("/orders"))
                .header("Idempotency-Key", unique("key"))
                .json(&order_of(&alice, &[(&mug, 1)])),
        )
        .await
        .body["orderId"]
        .as_str()
        .expect("an order id")
        .to_owned();
    let unknown_product = format!("{run}-discontinued");
    let failing = json!({"customerId": bob, "items": [{"productId": unknown_product, "quantity": 1, "unitPrice": 4500}]});
    assert!(c.body_conforms(POST_ORDER, &failing));
    let f = c
        .expect(
            StatusCode::CREATED,
            POST_ORDER,
            client()
                .post(url("/orders"))
                .header("Idempotency-Key", unique("key"))
                .json(&failing),
        )
        .await
        .body["orderId"]
        .as_str()
        .expect("an order id")
        .to_owned();

    let invalid = json!({"customerId": "a b", "currency": "EUR", "items": [{"productId": "p", "quantity": 0, "unitPrice": 19.99}]});
    assert!(!c.body_conforms(POST_ORDER, &invalid));
    let reply = c
        .expect(
            StatusCode::BAD_REQUEST,
            POST_ORDER,
            client().post(url("/orders")).json(&invalid),
        )
        .await;
    assert_eq!(
        reply.body["error"]["fields"].as_array().map(Vec::len),
        Some(4)
    );
    c.expect(
        StatusCode::BAD_REQUEST,
        POST_ORDER,
        client()
            .post(url("/orders"))
            .header("Idempotency-Key", "has space")
            .json(&first),
    )
    .await;
    c.expect(
        StatusCode::BAD_REQUEST,
        POST_ORDER,
        client()
            .post(url("/orders"))
            .header("content-type", "application/json")
            .body("{\"customerId\":"),
    )
    .await;
    c.expect(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        POST_ORDER,
        client()
            .post(url("/orders"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("customerId=c-1"),
    )
    .await;
    c.expect(
        StatusCode::PAYLOAD_TOO_LARGE,
        POST_ORDER,
        client()
            .post(url("/orders"))
            .header("content-type", "application/json")
            .body(oversized()),
    )
    .await;

    // Reading orders.
    const GET_ORDER: &str = "GET /orders/{orderId}";
    let reply = c
        .expect(
            StatusCode::OK,
            GET_ORDER,
            client().get(url(&format!("/orders/{a}"))),
        )
        .await;
    assert_eq!(reply.body["orderId"], a.as_str());
    c.expect(
        StatusCode::BAD_REQUEST,
        GET_ORDER,
        client().get(url(&format!("/orders/{}", a.to_lowercase()))),
    )
    .await;
    c.expect(
        StatusCode::NOT_FOUND,
        GET_ORDER,
        client().get(url(&format!("/orders/{UNKNOWN_ORDER}"))),
    )
    .await;

    const LIST_ORDERS: &str = "GET /orders";
    let page = c
        .expect(
            StatusCode::OK,
            LIST_ORDERS,
            client().get(url(&format!("/orders?customerId={alice}&limit=1"))),
        )
        .await;
    assert_eq!(
        page.body["orders"][0]["orderId"],
        b.as_str(),
        "newest first"
    );
    let cursor = page.body["nextCursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    assert!(c.parameter_conforms(LIST_ORDERS, "cursor", &cursor));
    let page = c
        .expect(
            StatusCode::OK,
            LIST_ORDERS,
            client().get(url(&format!(
                "/orders?customerId={alice}&limit=1&cursor={cursor}"
            ))),
        )
        .await;
    assert_eq!(page.body["orders"][0]["orderId"], a.as_str());
    // Searching by creation time, from `a`'s own createdAt (inclusive): `a` is the oldest.
    let a_created = page.body["orders"][0]["createdAt"]
        .as_str()
        .expect("createdAt")
        .to_owned();
    assert!(c.parameter_conforms(LIST_ORDERS, "from", &a_created));
    let window = format!("from={a_created}&to=9998-12-31T23:59:59Z");
    let mut last = None;
    let mut window_cursor: Option<String> = None;
    loop {
        let paging = window_cursor
            .as_ref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let page = c
            .expect(
                StatusCode::OK,
                LIST_ORDERS,
                client().get(url(&format!(
                    "/orders?customerId={alice}&limit=1&{window}{paging}"
                ))),
            )
            .await;
        last = page.body["orders"][0]["orderId"]
            .as_str()
            .map(str::to_owned)
            .or(last);
        match page.body["nextCursor"].as_str() {
            Some(next) => window_cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        last.as_deref(),
        Some(a.as_str()),
        "the order at `from` is in"
    );
    // A cursor goes with its own window only (here: the one without a window).
    c.expect(
        StatusCode::BAD_REQUEST,
        LIST_ORDERS,
        client().get(url(&format!(
            "/orders?customerId={alice}&limit=1&{window}&cursor={cursor}"
        ))),
    )
    .await;
    // `from` not before `to`: the code's rule alone (each value alone is a valid time).
    c.expect(
        StatusCode::BAD_REQUEST,
        LIST_ORDERS,
        client().get(url(&format!("/orders?from={a_created}&to={a_created}"))),
    )
    .await;
    for (name, value) in [
        ("limit", "1000"),
        ("status", "failed"),
        ("customerId", "a:b/c"),
        ("staus", "FAILED"),
        ("from", "yesterday"),
        ("to", "2026-13-01T00:00:00Z"),
    ] {
        assert!(
            !c.parameter_conforms(LIST_ORDERS, name, value),
            "{name}={value}"
        );
        c.expect(
            StatusCode::BAD_REQUEST,
            LIST_ORDERS,
            client().get(url(&format!("/orders?{}", query(name, value)))),
        )
        .await;
    }
    c.expect(
        StatusCode::BAD_REQUEST,
        LIST_ORDERS,
        client().get(url("/orders?cursor=nope")),
    )
    .await;

    // Processing decides; then the status changes clients make.
    let processed = wait_for_status(&mut c, &a, "PROCESSED").await;
    let b_etag = wait_for_status(&mut c, &b, "PROCESSED")
        .await
        .header("etag")
        .to_owned();
    let failed = wait_for_status(&mut c, &f, "FAILED").await;
    assert_eq!(failed.body["failureReason"], "unknown_product");
    let processed_page = c
        .expect(
            StatusCode::OK,
            LIST_ORDERS,
            client().get(url(&format!("/orders?status=PROCESSED&customerId={alice}"))),
        )
        .await;
    assert_eq!(
        processed_page.body["orders"].as_array().map(Vec::len),
        Some(2)
    );

    const PATCH: &str = "PATCH /orders/{orderId}";
    const DELETE: &str = "DELETE /orders/{orderId}";
    let order_url = |id: &str| url(&format!("/orders/{id}"));
    let etag = processed.header("etag").to_owned();
    let ship = json!({"status": "SHIPPED"});
    assert!(c.body_conforms(PATCH, &ship));
    for stale in ["\"1\"", "W/\"1\"", "banana"] {
        c.expect(
            StatusCode::PRECONDITION_FAILED,
            PATCH,
            client()
                .patch(order_url(&a))
                .header("If-Match", stale)
                .json(&ship),
        )
        .await;
    }
    let to_processing = json!({"status": "PROCESSED"});
    assert!(
        !c.body_conforms(PATCH, &to_processing),
        "the document offers clients SHIPPED, DELIVERED, CANCELLED only"
    );
    c.expect(
        StatusCode::CONFLICT,
        PATCH,
        client().patch(order_url(&a)).json(&to_processing),
    )
    .await;
    for bad in [
        json!({"status": "LOST"}),
        json!({"status": "SHIPPED", "total": 1}),
        json!(["SHIPPED"]),
    ] {
        assert!(!c.body_conforms(PATCH, &bad), "{bad}");
        c.expect(
            StatusCode::BAD_REQUEST,
            PATCH,
            client().patch(order_url(&a)).json(&bad),
        )
        .await;
    }
    c.expect(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        PATCH,
        client()
            .patch(order_url(&a))
            .header("content-type", "text/plain")
            .body("SHIPPED"),
    )
    .await;
    c.expect(
        StatusCode::PAYLOAD_TOO_LARGE,
        PATCH,
        client()
            .patch(order_url(&a))
            .header("content-type", "application/json")
            .body(oversized()),
    )
    .await;
    let shipped = c
        .expect(
            StatusCode::OK,
            PATCH,
            client()
                .patch(order_url(&a))
                .header("If-Match", &etag)
                .json(&ship),
        )
        .await;
    assert_eq!(shipped.body["status"], "SHIPPED");
    assert_eq!(
        shipped.header("etag"),
        format!("\"{}\"", shipped.body["version"])
    );
    let again = c
        .expect(
            StatusCode::OK,
            PATCH,
            client().patch(order_url(&a)).json(&ship),
        )
        .await;
    assert_eq!(
        again.body, shipped.body,
        "asking for the current status changes nothing"
    );
    c.expect(StatusCode::CONFLICT, DELETE, client().delete(order_url(&a)))
        .await;
    let delivered = c
        .expect(
            StatusCode::OK,
            PATCH,
            client()
                .patch(order_url(&a))
                .json(&json!({"status": "DELIVERED"})),
        )
        .await;
    assert!(delivered.body["deliveredAt"].is_string());
    c.expect(
        StatusCode::NOT_FOUND,
        PATCH,
        client().patch(order_url(UNKNOWN_ORDER)).json(&ship),
    )
    .await;
    c.expect(
        StatusCode::BAD_REQUEST,
        PATCH,
        client().patch(order_url("not-an-order")).json(&ship),
    )
    .await;

    c.expect(
        StatusCode::PRECONDITION_FAILED,
        DELETE,
        client().delete(order_url(&b)).header("If-Match", "\"1\""),
    )
    .await;
    let cancelled = c
        .expect(
            StatusCode::OK,
            DELETE,
            client().delete(order_url(&b)).header("If-Match", &b_etag),
        )
        .await;
    assert_eq!(cancelled.body["status"], "CANCELLED");
    c.expect(StatusCode::OK, DELETE, client().delete(order_url(&b)))
        .await;
    c.expect(StatusCode::CONFLICT, DELETE, client().delete(order_url(&f)))
        .await;
    c.expect(
        StatusCode::NOT_FOUND,
        DELETE,
        client().delete(order_url(UNKNOWN_ORDER)),
    )
    .await;
    c.expect(
        StatusCode::BAD_REQUEST,
        DELETE,
        client().delete(order_url("not-an-order")),
    )
    .await;

    // Retrying failed orders: one out of stock (retried once stock is added), one of a
    // product not in the catalog (never retried).
    const RETRY: &str = "POST /orders/{orderId}/retry";
    let retry_url = |id: &str| url(&format!("/orders/{id}/retry"));
    let scarce = format!("{run}-scarce");
    c.expect(
        StatusCode::CREATED,
        PUT_PRODUCT,
        client()
            .put(url(&format!("/products/{scarce}")))
            .json(&json!({"name": "Scarce", "price": 700, "stock": 0})),
    )
    .await;
    let s = c
        .expect(
            StatusCode::CREATED,
            POST_ORDER,
            client()
                .post(url("/orders"))
                .header("Idempotency-Key", unique("key"))
                .json(
                    &json!({"customerId": alice, "items": [{"productId": scarce, "quantity": 2}]}),
                ),
        )
        .await
        .body["orderId"]
        .as_str()
        .expect("an order id")
        .to_owned();
    let short = wait_for_status(&mut c, &s, "FAILED").await;
    assert_eq!(short.body["failureReason"], "out_of_stock");
    c.expect(
        StatusCode::OK,
        STOCK,
        client()
            .post(url(&format!("/products/{scarce}/stock")))
            .json(&json!({"add": 5})),
    )
    .await;
    let expected = json!({"expectedTotal": 1400});
    assert!(c.body_conforms(RETRY, &expected));
    for bad in [json!({"expectedTotal": "1400"}), json!({"total": 1400})] {
        assert!(!c.body_conforms(RETRY, &bad), "{bad}");
        c.expect(
            StatusCode::BAD_REQUEST,
            RETRY,
            client().post(retry_url(&s)).json(&bad),
        )
        .await;
    }
    c.expect(
        StatusCode::BAD_REQUEST,
        RETRY,
        client().post(retry_url("not-an-order")),
    )
    .await;
    c.expect(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        RETRY,
        client()
            .post(retry_url(&s))
            .header("content-type", "text/plain")
            .body("again"),
    )
    .await;
    c.expect(
        StatusCode::PAYLOAD_TOO_LARGE,
        RETRY,
        client()
            .post(retry_url(&s))
            .header("content-type", "application/json")
            .body(oversized()),
    )
    .await;
    c.expect(
        StatusCode::PRECONDITION_FAILED,
        RETRY,
        client().post(retry_url(&s)).header("If-Match", "\"1\""),
    )
    .await;
    // A token whose subject is no customer id, and not staff's.
    let nobody = crate::client_as(orders_tests::Holder::Customer("not a customer"));
    let refused = c
        .expect(StatusCode::FORBIDDEN, RETRY, nobody.post(retry_url(&s)))
        .await;
    assert_eq!(refused.body["error"]["code"], "forbidden");
    // Live tickets: for callers the API knows (the rest of the role matrix covers 201/401).
    let refused = c
        .expect(
            StatusCode::FORBIDDEN,
            "POST /live/tickets",
            nobody.post(url("/live/tickets")),
        )
        .await;
    assert_eq!(refused.body["error"]["code"], "forbidden");
    c.expect(
        StatusCode::NOT_FOUND,
        RETRY,
        client().post(retry_url(UNKNOWN_ORDER)),
    )
    .await;
    let key = unique("key");
    let retried = c
        .expect(
            StatusCode::OK,
            RETRY,
            client()
                .post(retry_url(&s))
                .header("Idempotency-Key", &key)
                .header("If-Match", short.header("etag"))
                .json(&expected),
        )
        .await;
    assert_eq!(retried.body["retries"], 1);
    assert_eq!(
        retried.header("etag"),
        format!("\"{}\"", retried.body["version"])
    );
    assert!(retried.headers.get("idempotent-replayed").is_none());
    let replay = c
        .expect(
            StatusCode::OK,
            RETRY,
            client()
                .post(retry_url(&s))
                .header("Idempotency-Key", &key)
                .header("If-Match", short.header("etag"))
                .json(&expected),
        )
        .await;
    assert_eq!(replay.header("idempotent-replayed"), "true");
    assert_eq!(replay.body, retried.body);
    c.expect(
        StatusCode::UNPROCESSABLE_ENTITY,
        RETRY,
        client()
            .post(retry_url(&s))
            .header("Idempotency-Key", &key)
            .json(&json!({"expectedTotal": 1})),
    )
    .await;
    let again = c
        .expect(StatusCode::CONFLICT, RETRY, client().post(retry_url(&s)))
        .await;
    assert_eq!(again.body["error"]["code"], "conflict");
    let never = c
        .expect(StatusCode::CONFLICT, RETRY, client().post(retry_url(&f)))
        .await;
    assert_eq!(never.body["error"]["code"], "not_retryable");
    wait_for_status(&mut c, &s, "PROCESSED").await;

    c.expect(StatusCode::OK, "GET /health", client().get(url("/health")))
        .await;

    // Customers: alice's summary (her orders so far), to her and to staff; not bob's to her.
    const CUSTOMER: &str = "GET /customers/{customerId}";
    let reply = c
        .expect(
            StatusCode::OK,
            CUSTOMER,
            client().get(url(&format!("/customers/{alice}"))),
        )
        .await;
    assert!(reply.body["orders"].as_u64() >= Some(1), "{}", reply.body);
    c.expect(
        StatusCode::OK,
        CUSTOMER,
        crate::client_as(orders_tests::Holder::Customer(&alice))
            .get(url(&format!("/customers/{alice}"))),
    )
    .await;
    c.expect(
        StatusCode::FORBIDDEN,
        CUSTOMER,
        crate::client_as(orders_tests::Holder::Customer(&alice))
            .get(url(&format!("/customers/{bob}"))),
    )
    .await;
    c.expect(
        StatusCode::NOT_FOUND,
        CUSTOMER,
        client().get(url(&format!("/customers/{run}-nobody"))),
    )
    .await;
    c.expect(
        StatusCode::BAD_REQUEST,
        CUSTOMER,
        client().get(url("/customers/not%20an%20id")),
    )
    .await;

    // Storefront activity, dated yesterday (the orders-sim run reconciles today's minutes).
    const EVENTS: &str = "POST /events";
    let yesterday = Timestamp::from_unix_millis(
        (Timestamp::now().unix_seconds() - 23 * 3600 - 600) / 60 * 60 * 1000,
    )
    .expect("a valid time");
    let session = unique("oapi-session");
    let viewed = json!({"eventId": "e-1", "eventType": "ProductViewed", "sessionId": session,
        "occurredAt": yesterday.to_string(), "productId": "sku-1"});
    let reply = c
        .expect(
            StatusCode::ACCEPTED,
            EVENTS,
            client()
                .post(url("/events"))
                .json(&json!({"events": [viewed]})),
        )
        .await;
    assert_eq!(reply.body, json!({"accepted": 1}));
    let reply = c
        .expect(
            StatusCode::BAD_REQUEST,
            EVENTS,
            client()
                .post(url("/events"))
                .json(&json!({"events": [{"eventId": "e-2", "eventType": "Teleported"}]})),
        )
        .await;
    assert_eq!(reply.body["error"]["code"], "validation_failed");
    let mut theirs = viewed.clone();
    theirs["customerId"] = json!("someone-else");
    c.expect(
        StatusCode::FORBIDDEN,
        EVENTS,
        crate::client_as(orders_tests::Holder::Customer("oapi-shopper"))
            .post(url("/events"))
            .json(&json!({"events": [theirs]})),
    )
    .await;
    c.expect(
        StatusCode::PAYLOAD_TOO_LARGE,
        EVENTS,
        client()
            .post(url("/events"))
            .header("content-type", "application/json")
            .body(json!({"events": [], "padding": "x".repeat(1024 * 1024)}).to_string()),
    )
    .await;

    // The document and the dashboard, with revalidation.
    c.revalidate("GET /openapi.json", "/openapi.json").await;
    c.revalidate("GET /asyncapi.json", "/asyncapi.json").await;
    c.revalidate("GET /", "/").await;

    c.role_matrix(|route| !route.contains(" /analytics/")).await;
    c.assert_covered(|route| !route.contains(" /analytics/"));
}

/// The stack serves the document these tests hold it to (else: rebuild and restart it).
#[tokio::test]
async fn the_served_document_is_api_openapi_json() {
    let served = Checker::new()
        .expect(
            StatusCode::OK,
            "GET /openapi.json",
            client().get(url("/openapi.json")),
        )
        .await;
    let file: Value = serde_json::from_str(DOCUMENT).expect("the document is JSON");
    assert!(
        served.body == file,
        "GET /openapi.json is not api/openapi.json: rebuild and restart the stack"
    );
}

/// The stack serves api/asyncapi.json with the event contracts of api/events inlined.
#[tokio::test]
async fn the_served_asyncapi_document_is_api_asyncapi_json_bundled() {
    let served = Checker::new()
        .expect(
            StatusCode::OK,
            "GET /asyncapi.json",
            client().get(url("/asyncapi.json")),
        )
        .await
        .body;
    let read = |path: &str| -> Value {
        let text = std::fs::read_to_string(orders_tests::repo_root().join(path)).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let file = read("api/asyncapi.json");
    for part in ["info", "servers", "operations"] {
        assert_eq!(
            served[part], file[part],
            "GET /asyncapi.json is not api/asyncapi.json: rebuild and restart the stack"
        );
    }
    for (event_type, _) in orders_core::event::EVENT_TYPES {
        let schema = read(&format!("api/events/{event_type}.schema.json"));
        let bundled = &served["components"]["schemas"][event_type];
        assert_eq!(bundled["required"], schema["required"], "{event_type}");
        assert_eq!(
            bundled["properties"]["schemaVersion"], schema["properties"]["schemaVersion"],
            "{event_type}"
        );
    }
}

#[tokio::test]
async fn analytics_answer_as_documented() {
    let mut c = Checker::new();
    let run = unique("oapi-analytics");
    let product = format!("{run}-mug");
    c.expect(
        StatusCode::CREATED,
        "PUT /products/{productId}",
        client()
            .put(url(&format!("/products/{product}")))
            .json(&json!({"name": "Blue mug", "price": 1299, "stock": 10})),
    )
    .await;
    for customer in ["a", "b"] {
        c.expect(
            StatusCode::CREATED,
            "POST /orders",
            client()
                .post(url("/orders"))
                .header("Idempotency-Key", unique("key"))
                .json(&json!({
                    "customerId": format!("{run}-{customer}"),
                    "items": [{"productId": product, "quantity": 2, "unitPrice": 1299}]
                })),
        )
        .await;
    }

    // A window around this test's orders (placed just now): they are counted within seconds.
    let now = Timestamp::now().unix_seconds();
    let from = Timestamp::from_unix_millis((now - now % 60 - 60) * 1000).expect("a valid time");
    let to = from.plus_seconds(180);
    let window = format!("from={from}&to={to}");
    // Other tests sell in the same window, so wait for what only this test sold.
    const TOP: &str = "GET /analytics/top-products";
    let top = format!("/analytics/top-products?limit=100&by=units&{window}");
    let sold =
        json!({"productId": product, "name": "Blue mug", "units": 4, "revenue": 5196, "orders": 2});
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = c.expect(StatusCode::OK, TOP, client().get(url(&top))).await;
        let ours = reply.body["products"]
            .as_array()
            .expect("products")
            .iter()
            .find(|p| p["productId"] == product.as_str());
        if ours == Some(&sold) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{product} was not counted as {sold} within 30 s: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let reply = c.revalidate(TOP, &top).await;
    assert_eq!(reply.body["by"], "units");
    assert_eq!(reply.body["from"], from.to_string());
    assert_eq!(reply.body["to"], to.to_string());

    const SUMMARY: &str = "GET /analytics/summary";
    let reply = c
        .revalidate(SUMMARY, &format!("/analytics/summary?{window}"))
        .await;
    assert!(reply.body["processed"].as_i64() >= Some(2));

    // Defaults: the last 24 hours, to the next minute boundary.
    let reply = c.revalidate(SUMMARY, "/analytics/summary").await;
    let span = seconds(&reply.body["to"]) - seconds(&reply.body["from"]);
    assert_eq!(span, 24 * 3600);

    const SALES: &str = "GET /analytics/sales";
    for granularity in ["minute", "hour", "day"] {
        let reply = c
            .revalidate(
                SALES,
                &format!("/analytics/sales?granularity={granularity}&{window}"),
            )
            .await;
        assert_eq!(reply.body["granularity"], granularity);
    }
    let reply = c
        .expect(StatusCode::OK, SALES, client().get(url("/analytics/sales")))
        .await;
    assert_eq!(reply.body["granularity"], "hour", "the default granularity");

    const CUSTOMERS: &str = "GET /analytics/customers";
    let reply = c
        .revalidate(CUSTOMERS, &format!("/analytics/customers?{window}"))
        .await;
    assert!(reply.body["activeCustomers"].as_u64() >= Some(2));

    const ACTIVITY: &str = "GET /analytics/activity";
    let reply = c
        .revalidate(ACTIVITY, &format!("/analytics/activity?{window}"))
        .await;
    assert_eq!(reply.body["from"], from.to_string());
    let reply = c
        .revalidate(
            ACTIVITY,
            &format!("/analytics/activity?granularity=minute&{window}"),
        )
        .await;
    assert_eq!(reply.body["buckets"].as_array().map(Vec::len), Some(3));
    const FUNNEL: &str = "GET /analytics/funnel";
    let reply = c
        .revalidate(
            FUNNEL,
            &format!("/analytics/funnel?productId={product}&{window}"),
        )
        .await;
    assert_eq!(
        reply.body["orders"], 2,
        "the funnel's orders are top products'"
    );

    // Bad parameters: 400 from the code, and outside the document's parameter schemas where
    // those can say so (the window rules are the code's alone).
    let rejected_by_both = [
        (ACTIVITY, "granularity", "week"),
        (ACTIVITY, "by", "units"),
        (FUNNEL, "limit", "5"),
        (SALES, "granularity", "week"),
        (SALES, "from", "yesterday"),
        (SALES, "limit", "5"),
        (TOP, "limit", "0"),
        (TOP, "limit", "101"),
        (TOP, "by", "price"),
        (TOP, "granularity", "hour"),
        (CUSTOMERS, "to", "2026-13-01T00:00:00Z"),
        (CUSTOMERS, "by", "units"),
        (SUMMARY, "from", "2026-11-22"),
        (SUMMARY, "limit", "10"),
    ];
    for (route, name, value) in rejected_by_both {
        assert!(
            !c.parameter_conforms(route, name, value),
            "{route}: {name}={value}"
        );
        let path = route.trim_start_matches("GET ");
        let reply = c
            .expect(
                StatusCode::BAD_REQUEST,
                route,
                client().get(url(&format!("{path}?{}", query(name, value)))),
            )
            .await;
        assert_eq!(
            reply.body["error"]["fields"][0]["field"], name,
            "{route}: {name}={value}"
        );
    }
    let backwards = format!("from={to}&to={from}");
    let too_long = "from=2025-01-01T00:00:00Z&to=2026-02-01T00:00:00Z";
    let two_days_of_minutes =
        "granularity=minute&from=2026-11-20T00:00:00Z&to=2026-11-22T00:00:00Z";
    for (route, query) in [
        (SUMMARY, backwards.as_str()),
        (CUSTOMERS, too_long),
        (TOP, backwards.as_str()),
        (SALES, two_days_of_minutes),
    ] {
        let path = route.trim_start_matches("GET ");
        c.expect(
            StatusCode::BAD_REQUEST,
            route,
            client().get(url(&format!("{path}?{query}"))),
        )
        .await;
    }

    c.role_matrix(|route| route.contains(" /analytics/")).await;
    c.assert_covered(|route| route.contains(" /analytics/"));
}

fn seconds(value: &Value) -> i64 {
    Timestamp::parse(value.as_str().expect("a timestamp"))
        .expect("an RFC 3339 timestamp")
        .unix_seconds()
}
