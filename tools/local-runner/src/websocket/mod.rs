//! The local API Gateway WebSocket API (`--ws-api-id`, served on `--ws-listen`).
//!
//! Why: the functions behind a WebSocket API only work against API Gateway's contract — the
//! `$connect` / `$disconnect` / message events, route selection on the message body, route
//! responses, and the `@connections` management API they call back with the connection id.
//! This emulates that contract from what Terraform deployed, so the same functions and the same
//! clients run locally.
//!
//! # Layout
//! - [`api`]: the discovered API (stages, routes, route selection) and API Gateway's limits;
//!   [`discovery`] reads it from the emulator.
//! - [`route_selection`]: `$request.body.<path>` against a message, then the route (pure).
//! - [`ids`]: connection, request and message ids shaped like API Gateway's.
//! - [`event`]: the Lambda proxy events (`CONNECT`, `MESSAGE`, `DISCONNECT`) (pure).
//! - [`connections`]: the live connections, shared by the sockets and the management API.
//! - [`gateway`]: everything a request handler needs (API, runtime, limits, connections).
//! - [`socket`]: one client connection — `$connect` before the upgrade, frames, limits,
//!   `$disconnect` once at the end.
//! - [`responses`]: API Gateway's JSON error answers.
//! - [`messages`]: one message — route, function, route response or error frame.
//! - [`management`]: `POST` / `GET` / `DELETE /{stage}/@connections/{id}`.
//! - [`server`]: both on one listener, and closing every connection at shutdown.
//! - [`env_rewrite`]: points the functions' `execute-api` URLs at the local listener.

pub mod api;
pub mod connections;
pub mod discovery;
pub mod env_rewrite;
pub mod event;
pub mod gateway;
pub mod ids;
pub mod management;
pub mod messages;
pub mod responses;
pub mod route_selection;
pub mod server;
pub mod socket;

pub use api::{WsApi, WsLimits, WsRoute};
pub use gateway::WsGateway;
pub use server::serve;
