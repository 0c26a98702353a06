//! Configuration, read once at cold start.

use orders_aws::config::{ConfigError, optional, required};

#[derive(Debug, Clone)]
pub struct Config {
    /// Activity items live in the analytics table beside the orders' (see
    /// `orders_aws::dynamo::analytics`).
    pub analytics_table: String,
    pub dedup_table: String,
    pub dlq_url: String,
    /// How long an event claim is kept: longer than the stream's retention, plus the
    /// API's 24-hour acceptance window for late events, plus a replay from the DLQ.
    pub dedup_ttl_hours: u32,
    pub function_name: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            analytics_table: required("ANALYTICS_TABLE")?,
            dedup_table: required("DEDUP_TABLE")?,
            dlq_url: required("DLQ_URL")?,
            dedup_ttl_hours: optional("DEDUP_TTL_HOURS", 216, |s| {
                s.parse().ok().filter(|h| *h >= 1)
            })?,
            function_name: optional(
                "AWS_LAMBDA_FUNCTION_NAME",
                "aggregate-activity".to_owned(),
                |s| Some(s.to_owned()),
            )?,
        })
    }
}
