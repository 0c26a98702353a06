//! Configuration read once at cold start.

use aws_config::BehaviorVersion;
pub use aws_config::SdkConfig;
use aws_config::timeout::TimeoutConfig;
use std::time::Duration;

/// A missing or malformed environment variable, named, so a bad deployment fails its first
/// invocation with a message that says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

pub fn required(name: &'static str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(ConfigError::Missing(name)),
    }
}

/// An optional variable parsed with `parse`, or `default` when unset.
pub fn optional<T>(
    name: &'static str,
    default: T,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, ConfigError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => parse(value.trim()).ok_or(ConfigError::Invalid {
            name,
            reason: format!("cannot parse {value:?}"),
        }),
        _ => Ok(default),
    }
}

/// SDK configuration for request/response functions: API Gateway gives up after 30 s and
/// our functions after 10 s, so a hung connection must fail fast and leave time to answer
/// with a clean 503 instead of a gateway timeout.
pub async fn sdk_config_for_api() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(6))
                .build(),
        )
        .load()
        .await
}

/// SDK configuration for stream consumers: no client is waiting, so attempts may take
/// longer, but a whole batch must still finish well inside the function timeout (60 s).
pub async fn sdk_config_for_streams() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(15))
                .build(),
        )
        .load()
        .await
}

/// Clients carry the request-counting interceptor (see [`crate::metrics`]).
pub fn dynamodb_client(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .interceptor(crate::metrics::CountRequests)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

pub fn kinesis_client(sdk: &SdkConfig) -> aws_sdk_kinesis::Client {
    let config = aws_sdk_kinesis::config::Builder::from(sdk)
        .interceptor(crate::metrics::CountRequests)
        .build();
    aws_sdk_kinesis::Client::from_conf(config)
}

pub fn sqs_client(sdk: &SdkConfig) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::config::Builder::from(sdk)
        .interceptor(crate::metrics::CountRequests)
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}
