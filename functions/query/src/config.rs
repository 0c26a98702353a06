//! Configuration, read once at cold start.

use orders_aws::config::{ConfigError, required};

#[derive(Debug, Clone)]
pub struct Config {
    pub orders_table: String,
    pub products_table: String,
    pub analytics_table: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            orders_table: required("ORDERS_TABLE")?,
            products_table: required("PRODUCTS_TABLE")?,
            analytics_table: required("ANALYTICS_TABLE")?,
        })
    }
}
