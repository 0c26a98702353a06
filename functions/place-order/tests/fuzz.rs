//! No input makes a command route panic or answer 5xx: arbitrary JSON (and non-JSON) bodies,
//! path parameters and headers on every route, through the handler the function serves,
//! against in-memory stores. A 4xx always carries the JSON error envelope.

// Test support shared by several test crates; this one needs only the app.
#[allow(dead_code)]
mod memory;

use memory::app;
use place_order::handler::handle;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const ROUTES: [(&str, &str, &str); 6] = [
    ("POST /orders", "POST", "/orders"),
    ("DELETE /orders/{orderId}", "DELETE", "/orders/{id}"),
    ("POST /orders/{orderId}/retry", "POST", "/orders/{id}/retry"),
    ("PATCH /orders/{orderId}", "PATCH", "/orders/{id}"),
    ("PUT /products/{productId}", "PUT", "/products/{id}"),
    (
        "POST /products/{productId}/stock",
        "POST",
        "/products/{id}/stock",
    ),
];

/// Any JSON, biased towards the fields the routes read and the values at their edges.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![
            "PROCESSED",
            "SHIPPED",
            "DELIVERED",
            "CANCELLED",
            "USD",
            "EUR",
            "usd",
            "p-1",
            "c-1",
            "",
            "\u{0}",
            "9999999999999999999999",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
        "\\PC{0,30}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    prop::sample::select(vec![
                        "customerId",
                        "items",
                        "productId",
                        "quantity",
                        "unitPrice",
                        "currency",
                        "status",
                        "name",
                        "price",
                        "stock",
                        "add",
                        "expectedTotal",
                    ])
                    .prop_map(str::to_owned),
                    "\\PC{0,10}",
                ],
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => json_value().prop_map(|v| v.to_string()),
        1 => "\\PC{0,60}",
        1 => Just(String::new()),
    ]
}

fn header() -> impl Strategy<Value = (String, String)> {
    (
        prop::sample::select(vec![
            "idempotency-key",
            "if-match",
            "content-type",
            "x-anything",
        ])
        .prop_map(str::to_owned),
        prop_oneof![
            Just("\"1\"".to_owned()),
            Just("W/\"2\"".to_owned()),
            Just("*".to_owned()),
            Just("application/json".to_owned()),
            Just("text/plain".to_owned()),
            "\\PC{0,140}",
        ],
    )
}

fn request(
    route: usize,
    id: &str,
    body: &str,
    headers: &[(String, String)],
) -> lambda_http::Request {
    let (key, method, template) = ROUTES[route];
    let path = template.replace("{id}", id);
    let mut header_map = Map::new();
    header_map.insert("host".into(), json!("api.example.com"));
    header_map.insert("content-type".into(), json!("application/json"));
    for (k, v) in headers {
        header_map.insert(k.clone(), Value::String(v.clone()));
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": header_map,
        "requestContext": {
            "accountId": "123456789012", "apiId": "fuzz", "domainName": "api.example.com",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "fuzz"},
            "requestId": "fuzz", "routeKey": key, "stage": "$default",
            "time": "21/Nov/2026:23:55:16 +0000", "timeEpoch": 1795305316789_u64
        },
        "body": body,
        "isBase64Encoded": false
    });
    if template.contains("{id}") {
        let name = if template.starts_with("/orders") {
            "orderId"
        } else {
            "productId"
        };
        event["pathParameters"] = json!({ name: id });
    }
    lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_request_gets_a_json_answer_below_500(
        requests in prop::collection::vec(
            (
                0..ROUTES.len(),
                prop_oneof![Just("p-1".to_owned()), Just("01JDA3Z6Q7W8X9Y0Z1A2B3C4D5".to_owned()), "[a-zA-Z0-9%._:-]{0,70}"],
                body(),
                prop::collection::vec(header(), 0..3),
            ),
            1..4,
        ),
    ) {
        // A few requests against one store, so later ones meet what earlier ones made.
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let app = app();
        for (route, id, body, headers) in &requests {
            let response = runtime.block_on(handle(&app, request(*route, id, body, headers)));
            let status = response.status().as_u16();
            prop_assert!(status < 500, "{} {id:?} {body:?} {headers:?}: {status}", ROUTES[*route].0);
            if status >= 400 {
                let text = match response.body() {
                    lambda_http::Body::Text(t) => t.clone(),
                    other => panic!("a 4xx without a text body: {other:?}"),
                };
                let json: Value = serde_json::from_str(&text).expect("a 4xx body is JSON");
                prop_assert!(json["error"]["message"].is_string(), "{text}");
            }
        }
    }
}
