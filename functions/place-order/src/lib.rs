//! `place-order`: the command side of the HTTP API — placing orders, changing their
//! status (`PATCH`/`DELETE /orders/{id}`, see [`commands`]) and writing the catalog
//! (`PUT /products/{id}`).
//!
//! `POST /orders` validates the body, stores the order (`PENDING`, version 1) with a
//! conditional write, publishes `OrderPlaced` to the stream, and only then answers `201`.
//!
//! # Why the steps are ordered this way
//! With an `Idempotency-Key`, the key is claimed *first*, recording the order id chosen for
//! it. If anything fails later (the publish is throttled, the function times out), the
//! client's retry with the same key finds that id, skips the already-done create (its
//! conditional write reports the existing order) and finishes the publish. So a retried
//! request never leaves an order without its event and never creates a second order.
//! Concurrent duplicates race on the same conditional writes and converge on one order;
//! at worst the event is published twice with the same derived `eventId`, which consumers
//! deduplicate.

pub mod commands;
pub mod config;
pub mod handler;
pub mod service;

pub use commands::CommandService;
pub use config::Config;
pub use handler::{App, handle};
pub use service::{PlaceOrderService, Placed};
