//! Configuration, read once at cold start.

use orders_aws::config::{ConfigError, optional, required};
use orders_core::Currency;

#[derive(Debug, Clone)]
pub struct Config {
    pub orders_table: String,
    pub products_table: String,
    pub idempotency_table: String,
    /// The one currency this deployment takes orders in (fills in an omitted `currency`).
    pub currency: Currency,
    /// How long an `Idempotency-Key` is remembered.
    pub idempotency_ttl_hours: u32,
    /// The stream `POST /events` puts storefront activity on.
    pub activity_stream_name: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            orders_table: required("ORDERS_TABLE")?,
            products_table: required("PRODUCTS_TABLE")?,
            idempotency_table: required("IDEMPOTENCY_TABLE")?,
            activity_stream_name: required("ACTIVITY_STREAM_NAME")?,
            currency: optional(
                "DEFAULT_CURRENCY",
                Currency::parse("USD").expect("USD is valid"),
                Currency::parse,
            )?,
            idempotency_ttl_hours: optional("IDEMPOTENCY_TTL_HOURS", 24, |s| {
                s.parse().ok().filter(|h| (1..=24 * 30).contains(h))
            })?,
        })
    }
}
