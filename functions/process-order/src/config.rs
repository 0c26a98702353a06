//! Configuration, read once at cold start.

use orders_aws::config::{ConfigError, optional, required};

#[derive(Debug, Clone)]
pub struct Config {
    pub orders_table: String,
    pub products_table: String,
    /// Where poison records go.
    pub dlq_url: String,
    /// Named in dead letters, so a shared queue still says who gave up.
    pub function_name: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            orders_table: required("ORDERS_TABLE")?,
            products_table: required("PRODUCTS_TABLE")?,
            dlq_url: required("DLQ_URL")?,
            function_name: optional(
                "AWS_LAMBDA_FUNCTION_NAME",
                "process-order".to_owned(),
                |s| Some(s.to_owned()),
            )?,
        })
    }
}
