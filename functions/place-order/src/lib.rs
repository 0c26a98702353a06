//! `place-order`: the command side of the HTTP API — placing orders, changing their
//! status (`PATCH`/`DELETE /orders/{id}`, `POST /orders/{id}/retry` for a failed one, see
//! [`commands`]), writing the catalog (`PUT /products/{id}`) and taking storefront
//! activity (`POST /events`, [`activity`]).
//!
//! `POST /orders` validates the body, stores the order (`PENDING`, version 1) with a
//! conditional write and answers `201`. Nothing here publishes: the orders table's change
//! stream carries every stored version to the `relay` function, which puts its event on the
//! order stream — so an order stored by a request that then times out or crashes is still
//! published, exactly once in effect, and its `OrderPlaced` is always version 1's.
//!
//! # Why the steps are ordered this way
//! With an `Idempotency-Key`, the key is claimed *first*, recording the order id chosen for
//! it. If anything fails later (the function times out before answering), the client's
//! retry with the same key finds that id, skips the already-done create (its conditional
//! write reports the existing order, whatever happened to it since) and answers with it. So
//! a retried request never creates a second order. Concurrent duplicates race on the same
//! conditional writes and converge on one order.

pub mod activity;
pub mod commands;
pub mod config;
pub mod handler;
pub mod service;

pub use activity::ActivityService;
pub use commands::CommandService;
pub use config::Config;
pub use handler::{App, handle};
pub use service::{PlaceOrderService, Placed};
