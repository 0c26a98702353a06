//! The place-order app over in-memory ports, for tests that need no emulator.

use orders_core::memory::{
    FixedClock, MemoryCatalog, MemoryCommands, MemoryIdempotencyStore, MemoryOrderStore,
    SequentialIds,
};
use orders_core::{Currency, Timestamp};
use place_order::commands::CommandService;
use place_order::handler::App;
use place_order::service::PlaceOrderService;
use std::sync::Arc;

pub type MemoryApp = App<MemoryOrderStore, MemoryIdempotencyStore, MemoryCommands, MemoryCatalog>;

pub fn app() -> MemoryApp {
    let clock = Arc::new(FixedClock(
        Timestamp::parse("2026-11-21T10:00:00Z").unwrap(),
    ));
    let store = MemoryOrderStore::new();
    let catalog = MemoryCatalog::new();
    App {
        place: PlaceOrderService {
            store: store.clone(),
            idempotency: MemoryIdempotencyStore::new(),
            catalog: catalog.clone(),
            clock: clock.clone(),
            ids: Arc::new(SequentialIds::new()),
            currency: Currency::parse("USD").unwrap(),
            idempotency_ttl_seconds: 86_400,
        },
        commands: CommandService {
            commands: MemoryCommands {
                store,
                catalog: catalog.clone(),
            },
            catalog,
            clock,
        },
    }
}

/// A `POST /orders` event as API Gateway sends it, with an `Idempotency-Key` and, when
/// `caller` is given, the claims of the token its JWT authorizer accepted.
pub fn post_order(
    body: &serde_json::Value,
    key: &str,
    caller: Option<&str>,
) -> lambda_http::Request {
    let mut event = serde_json::json!({
        "version": "2.0", "routeKey": "POST /orders", "rawPath": "/orders", "rawQueryString": "",
        "headers": {"content-type": "application/json", "idempotency-key": key},
        "requestContext": {
            "accountId": "123456789012", "apiId": "memory", "domainName": "api.example.com",
            "http": {"method": "POST", "path": "/orders", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "test"},
            "requestId": "memory", "routeKey": "POST /orders", "stage": "$default",
            "time": "21/Nov/2026:23:55:16 +0000", "timeEpoch": 1795305316789_u64
        },
        "body": body.to_string(),
        "isBase64Encoded": false
    });
    if let Some(sub) = caller {
        event["requestContext"]["authorizer"] = serde_json::json!({
            "jwt": {"claims": {"sub": sub, "iss": "https://issuer.example"}, "scopes": null}
        });
    }
    lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event")
}
