//! Configuration, read once at cold start.

use orders_aws::config::{ConfigError, optional, required};

#[derive(Debug, Clone)]
pub struct Config {
    pub events_stream_name: String,
    /// Where change records that can never be published go.
    pub dlq_url: String,
    /// Named in dead letters, so a shared queue still says who gave up.
    pub function_name: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            events_stream_name: required("EVENTS_STREAM_NAME")?,
            dlq_url: required("DLQ_URL")?,
            function_name: optional("AWS_LAMBDA_FUNCTION_NAME", "relay".to_owned(), |s| {
                Some(s.to_owned())
            })?,
        })
    }
}
