//! `live`: the two doors of live updates (see `orders_core::live` for the rules).
//!
//! - HTTP API, `POST /live/tickets`: a signed-in caller (the route has the API's JWT
//!   authorizer) gets a single-use ticket and the socket URL to open with it.
//! - WebSocket API: `$connect` redeems the ticket (anything else is refused with 401 before
//!   the socket opens), `subscribe` sets the topics, `$disconnect` forgets the socket; other
//!   messages get an error reply.
//!
//! One function serves both because they share one table and one rule set; it reads the
//! event itself (an API Gateway WebSocket event has `requestContext.eventType`).

pub mod config;
pub mod handler;
pub mod service;

pub use config::Config;
pub use handler::handle;
pub use service::LiveService;
