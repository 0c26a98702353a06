//! What a WebSocket API is made of, as the runner serves it, and API Gateway's limits.
//!
//! Why separate: discovery fills these from the emulator, tests build them by hand, and the
//! server only reads them — no I/O here.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::websocket::route_selection::RouteSelectionExpression;
pub use crate::websocket::route_selection::{CONNECT_ROUTE, DEFAULT_ROUTE, DISCONNECT_ROUTE};

/// A WebSocket API: its stages (`/{stage}` on the listener), route selection and routes.
#[derive(Debug, Clone)]
pub struct WsApi {
    pub api_id: String,
    /// Stage names; clients connect to `ws://<listen>/{stage}`.
    pub stages: Vec<String>,
    /// The API's `route_selection_expression`, e.g. `$request.body.action`.
    pub route_selection: RouteSelectionExpression,
    /// Routes by route key (`$connect`, `$disconnect`, `$default`, or a selected value).
    pub routes: BTreeMap<String, WsRoute>,
}

impl WsApi {
    pub fn has_stage(&self, stage: &str) -> bool {
        self.stages.iter().any(|s| s == stage)
    }
}

/// Where a route sends its events.
#[derive(Debug, Clone)]
pub struct WsRoute {
    /// Function name, or `None` if the integration does not lead to a runnable function
    /// (invoking it fails as a broken integration would).
    pub function: Option<String>,
    /// Human-readable integration description for logs and the startup table.
    pub integration: String,
    /// The route's `route_response_selection_expression`. With one (and a route response,
    /// which Terraform pairs with it), the integration's response body goes back to the
    /// client as a frame: a two-way route.
    pub route_response_selection_expression: Option<String>,
}

impl WsRoute {
    /// Whether the function's response is sent back to the client.
    pub fn is_two_way(&self) -> bool {
        self.route_response_selection_expression.is_some()
    }
}

/// API Gateway's WebSocket quotas
/// (<https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html>), kept
/// configurable so tests can shorten the timeouts.
#[derive(Debug, Clone)]
pub struct WsLimits {
    /// A connection with no frame in either direction for this long is closed (1001).
    pub idle_timeout: Duration,
    /// A connection is closed (1001) this long after it was opened, active or not.
    pub max_connection_duration: Duration,
    /// Largest message (all frames together); larger closes the connection with 1009.
    pub max_message_bytes: usize,
    /// Largest single frame; larger closes the connection with 1009. Browsers never fragment,
    /// so for them this is the message limit, as on AWS.
    pub max_frame_bytes: usize,
    /// How long API Gateway waits for an integration (29 s) before answering
    /// `Endpoint request timed out`.
    pub integration_timeout: Duration,
}

/// API Gateway: idle connection timeout, 10 minutes.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// API Gateway: maximum connection duration, 2 hours.
pub const MAX_CONNECTION_DURATION: Duration = Duration::from_secs(2 * 60 * 60);
/// API Gateway: WebSocket message payload size, 128 KB.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;
/// API Gateway: WebSocket frame size, 32 KB.
pub const MAX_FRAME_BYTES: usize = 32 * 1024;
/// API Gateway: integration timeout, 29 seconds.
pub const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(29);

impl Default for WsLimits {
    fn default() -> Self {
        Self {
            idle_timeout: IDLE_TIMEOUT,
            max_connection_duration: MAX_CONNECTION_DURATION,
            max_message_bytes: MAX_MESSAGE_BYTES,
            max_frame_bytes: MAX_FRAME_BYTES,
            integration_timeout: INTEGRATION_TIMEOUT,
        }
    }
}
