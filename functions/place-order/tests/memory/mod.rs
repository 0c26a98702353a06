//! The place-order app over in-memory ports, for tests that need no emulator.

use orders_core::memory::{
    FixedClock, MemoryCatalog, MemoryCommands, MemoryIdempotencyStore, MemoryOrderStore,
    RecordingActivity, SequentialIds,
};
use orders_core::{Currency, Timestamp};
use place_order::activity::ActivityService;
use place_order::commands::CommandService;
use place_order::handler::App;
use place_order::service::PlaceOrderService;
use std::sync::Arc;

pub type MemoryApp =
    App<MemoryOrderStore, MemoryIdempotencyStore, MemoryCommands, MemoryCatalog, RecordingActivity>;

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
            clock: clock.clone(),
        },
        activity: ActivityService {
            publisher: RecordingActivity::new(),
            clock,
        },
    }
}

pub fn request(event: serde_json::Value) -> lambda_http::Request {
    lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event")
}
