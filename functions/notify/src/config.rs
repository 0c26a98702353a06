//! Configuration, read once at cold start.

use orders_aws::config::{ConfigError, optional, required};

#[derive(Debug, Clone)]
pub struct Config {
    pub connections_table: String,
    /// The WebSocket API stage's management endpoint
    /// (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`).
    pub callback_url: String,
    /// Where records that are not events go.
    pub dlq_url: String,
    pub function_name: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            connections_table: required("CONNECTIONS_TABLE")?,
            callback_url: required("LIVE_CALLBACK_URL")?,
            dlq_url: required("DLQ_URL")?,
            function_name: optional("AWS_LAMBDA_FUNCTION_NAME", "notify".to_owned(), |s| {
                Some(s.to_owned())
            })?,
        })
    }
}
