//! No input makes a query route panic or answer 5xx: arbitrary query strings, path
//! parameters and conditional headers on every route, through the handler the function
//! serves, against in-memory stores. A 4xx always carries the JSON error envelope.

use orders_core::memory::{MemoryAnalytics, MemoryCatalog, MemoryOrderStore};
use proptest::prelude::*;
use query::handler::{QueryService, handle};
use serde_json::{Map, Value, json};

const ROUTES: [(&str, &str); 13] = [
    ("GET /orders", "/orders"),
    ("GET /orders/{orderId}", "/orders/{orderId}"),
    ("GET /products", "/products"),
    ("GET /products/{productId}", "/products/{productId}"),
    ("GET /analytics/sales", "/analytics/sales"),
    ("GET /analytics/top-products", "/analytics/top-products"),
    ("GET /analytics/customers", "/analytics/customers"),
    ("GET /analytics/summary", "/analytics/summary"),
    ("GET /analytics/activity", "/analytics/activity"),
    ("GET /analytics/funnel", "/analytics/funnel"),
    ("GET /health", "/health"),
    ("GET /openapi.json", "/openapi.json"),
    ("GET /asyncapi.json", "/asyncapi.json"),
];

/// Parameter names the routes read, and anything else.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "from",
            "to",
            "granularity",
            "limit",
            "cursor",
            "status",
            "customerId",
            "by",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,12}",
    ]
}

/// Values near every edge the parsers have, and anything else.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "0",
            "-1",
            "1",
            "100",
            "101",
            "18446744073709551616",
            "9223372036854775807",
            "1e9",
            "NaN",
            "minute",
            "hour",
            "day",
            "PENDING",
            "DELIVERED",
            "units",
            "revenue",
            "2026-11-21T10:00:00Z",
            "9999-12-31T23:59:59Z",
            "9999-12-31T22:00:00-01:00",
            "0000-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "2026-02-30T00:00:00Z",
            "2026-11-21T10:00:00+14:00",
            "2026-11-21",
            "eyJhIjoxfQ",
            "%00",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,40}",
        any::<i64>().prop_map(|n| n.to_string()),
    ]
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An API Gateway v2 event for `route`, as the HTTP API sends it.
fn request(
    route: usize,
    params: &[(String, String)],
    id: &str,
    headers: &[(String, String)],
) -> lambda_http::Request {
    let (key, template) = ROUTES[route];
    let path = template
        .replace("{orderId}", &encode(id))
        .replace("{productId}", &encode(id));
    // API Gateway joins repeated parameters with commas.
    let mut query = Map::new();
    for (k, v) in params {
        let joined = match query.get(k).and_then(Value::as_str) {
            Some(before) => format!("{before},{v}"),
            None => v.clone(),
        };
        query.insert(k.clone(), Value::String(joined));
    }
    let raw_query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let mut header_map = Map::new();
    header_map.insert("host".into(), json!("api.example.com"));
    for (k, v) in headers {
        header_map.insert(k.clone(), Value::String(v.clone()));
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": key,
        "rawPath": path,
        "rawQueryString": raw_query.join("&"),
        "headers": header_map,
        "requestContext": {
            "accountId": "123456789012", "apiId": "fuzz", "domainName": "api.example.com",
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "fuzz"},
            "requestId": "fuzz", "routeKey": key, "stage": "$default",
            "time": "21/Nov/2026:23:55:16 +0000", "timeEpoch": 1795305316789_u64
        },
        "isBase64Encoded": false
    });
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if template.contains('{') {
        let name = if template.contains("orderId") {
            "orderId"
        } else {
            "productId"
        };
        event["pathParameters"] = json!({ name: id });
    }
    lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event")
}

fn header() -> impl Strategy<Value = (String, String)> {
    (
        prop::sample::select(vec!["if-none-match", "accept", "x-anything"]).prop_map(str::to_owned),
        prop_oneof![Just("\"3\"".to_owned()), Just("*".to_owned()), "\\PC{0,20}"],
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_query_gets_a_json_answer_below_500(
        route in 0..ROUTES.len(),
        params in prop::collection::vec((name(), value()), 0..6),
        id in prop_oneof![Just("01JDA3Z6Q7W8X9Y0Z1A2B3C4D5".to_owned()), "\\PC{0,70}"],
        headers in prop::collection::vec(header(), 0..3),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let service = QueryService::new(
            MemoryOrderStore::new(),
            MemoryCatalog::new(),
            MemoryAnalytics::new(),
        );
        let response = runtime.block_on(handle(&service, request(route, &params, &id, &headers)));
        let status = response.status().as_u16();
        prop_assert!(status < 500, "{} {params:?} {id:?}: {status}", ROUTES[route].0);
        if status >= 400 {
            let body = match response.body() {
                lambda_http::Body::Text(t) => t.clone(),
                other => panic!("a 4xx without a text body: {other:?}"),
            };
            let json: Value = serde_json::from_str(&body).expect("a 4xx body is JSON");
            prop_assert!(json["error"]["message"].is_string(), "{body}");
        }
    }
}
