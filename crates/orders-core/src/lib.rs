//! The order domain: values that can only hold valid data, the order aggregate, its events,
//! and the ports (traits) the use cases need from the outside world.
//!
//! # Layout
//! - [`ids`], [`money`]: newtypes that parse at the edge (`OrderId`, `ProductId`, `Quantity`,
//!   `Money` in integer minor units — never floats).
//! - [`order`]: the `Order` aggregate, its status flow and the `PlaceOrder` command.
//! - [`product`]: catalog entries, with the stock that processing reserves.
//! - [`sequence`]: stream sequence numbers as big integers.
//! - [`validation`]: turns an untrusted JSON body into a command, naming every bad field.
//! - [`analytics`]: time buckets, what each event contributes, and the batch fold.
//! - [`report`]: analytics query windows, the buckets that answer them, report shapes.
//! - [`activity`]: storefront events (`POST /events`: views, cart changes, checkouts), their
//!   validation, and their analytics — active users, product funnels, cart abandonment —
//!   on the same buckets, product shards and distinct sets (`docs/activity.md`).
//! - [`event`]: the versioned event envelope the relay publishes for every stored order
//!   version (the orders table's change stream is the outbox), each type's schema version,
//!   and the upcasters that read older versions (contracts: `api/events`, `docs/events.md`).
//! - [`listing`]: the list-orders query and its opaque cursor.
//! - [`idempotency`]: what is remembered about an `Idempotency-Key`.
//! - [`live`]: sockets, their tickets and subscriptions, and what each event pushes to whom.
//! - [`ports`]: what the use cases need (store, publisher, clock, ids), implemented by
//!   `orders-aws` in production and by fakes in tests.
//! - [`memory`]: in-memory ports, a fixed clock and sequential ids (tests, benchmarks).
//! - [`error`]: the use-case error every function maps to HTTP in one place.
//!
//! Nothing here depends on an AWS crate: the compiler keeps the domain free of SDK types.

pub mod activity;
pub mod analytics;
pub mod caller;
pub mod customer;
pub mod distinct;
pub mod error;
pub mod event;
pub mod idempotency;
pub mod ids;
pub mod listing;
pub mod live;
pub mod memory;
pub mod money;
pub mod order;
pub mod ports;
pub mod product;
pub mod rebuild;
pub mod report;
pub mod sequence;
pub mod shard;
pub mod time;
pub mod validation;

pub use caller::Caller;
pub use error::{FieldError, OrderError};
pub use event::{
    DecodeError, Decoded, EventEnvelope, EventId, OrderEvent, OrderTotals, SCHEMA_VERSION,
};
pub use ids::{ActivityEventId, CustomerId, IdempotencyKey, OrderId, ProductId, SessionId};
pub use money::{Currency, Money, Quantity};
pub use order::{
    FailureReason, IllegalTransition, LineItem, Order, OrderRequest, OrderStatus, PlaceOrder,
    PriceMismatch, RequestedLine, RetryOrder, RetryRefused,
};
pub use product::{Product, PutProduct, StockAdjustment};
pub use time::Timestamp;
