//! Configuration, read once at cold start.

use orders_aws::config::{ConfigError, required};

#[derive(Debug, Clone)]
pub struct Config {
    /// Sockets and tickets.
    pub connections_table: String,
    /// Where clients open sockets: the WebSocket API's stage URL (`wss://…/live`).
    pub live_url: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            connections_table: required("CONNECTIONS_TABLE")?,
            live_url: required("LIVE_URL")?,
        })
    }
}
