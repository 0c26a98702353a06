//! Lambda entry point: configuration and clients are built once per cold start.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use live::{Config, LiveService, handle};
use orders_aws::DynamoLiveConnections;
use orders_aws::metrics::{format_counts, take_request_counts};
use orders_core::ports::SystemClock;
use serde_json::Value;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    orders_aws::telemetry::init("live")?;
    let config = Config::from_env()?;
    let sdk = orders_aws::config::sdk_config_for_api().await;
    let live = Arc::new(LiveService {
        connections: DynamoLiveConnections::from_sdk(&sdk, &config.connections_table),
        clock: Arc::new(SystemClock),
        live_url: config.live_url,
    });
    run(service_fn(move |event: LambdaEvent<Value>| {
        let live = Arc::clone(&live);
        async move {
            let response = handle(&live, event.payload).await;
            tracing::info!(
                status = response["statusCode"].as_u64().unwrap_or_default(),
                aws_requests = %format_counts(&take_request_counts()),
                "request handled"
            );
            orders_aws::telemetry::flush();
            Ok::<_, Error>(response)
        }
    }))
    .await
}
