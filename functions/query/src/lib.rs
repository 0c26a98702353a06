//! `query`: the read side of the HTTP API.
//!
//! - `GET /orders/{orderId}` — one order, with `ETag: "<version>"`;
//! - `GET /orders?status=&customerId=&limit=&cursor=` — newest first, served by the
//!   orders table's GSIs (never a Scan), with an opaque `nextCursor`;
//! - `GET /products/{productId}`, `GET /products?limit=&cursor=` — the catalog;
//! - `GET /health` — 200 once the function can reach its table.

pub mod config;
pub mod handler;

pub use config::Config;
pub use handler::{QueryService, handle};
