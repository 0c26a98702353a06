//! `query`: the read side of the HTTP API.
//!
//! - `GET /orders/{orderId}` — one order, with `ETag: "<version>"`;
//! - `GET /orders?status=&customerId=&limit=&cursor=` — newest first, served by the
//!   orders table's GSIs (never a Scan), with an opaque `nextCursor`;
//! - `GET /products/{productId}`, `GET /products?limit=&cursor=` — the catalog;
//! - `GET /health` — 200 once the function can reach its table;
//! - `GET /analytics/{sales,top-products,customers,summary}?from=&to=…` — reports over a
//!   time window from the bucketed analytics table (see [`analytics`]);
//! - `GET /` — the dashboard page; `GET /openapi.json` — the API's OpenAPI 3.1 document;
//!   `GET /asyncapi.json` — the AsyncAPI 3.0 document of the live socket and the event
//!   streams, bundled with the event contracts (see [`asyncapi`]).

pub mod analytics;
pub mod asyncapi;
pub mod config;
pub mod dashboard;
pub mod handler;

pub use config::Config;
pub use handler::{QueryService, handle};
