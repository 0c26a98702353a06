//! Lambda entry point: configuration and clients are built once per cold start.

use lambda_http::{Error, service_fn};
use orders_aws::metrics::{format_counts, take_request_counts};
use orders_aws::{DynamoAnalyticsReader, DynamoCatalog, DynamoOrderStore};
use query::dashboard::Dashboard;
use query::{Config, QueryService, handle};
use std::convert::Infallible;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    orders_aws::telemetry::init("query")?;
    let config = Config::from_env()?;
    let sdk = orders_aws::config::sdk_config_for_api().await;
    let mut service = QueryService::new(
        DynamoOrderStore::from_sdk(&sdk, &config.orders_table),
        DynamoCatalog::from_sdk(&sdk, &config.products_table),
        DynamoAnalyticsReader::from_sdk(&sdk, &config.analytics_table),
    );
    service.dashboard = Dashboard::new(config.sign_in.as_ref(), config.live_url.as_deref());
    let service = Arc::new(service);
    lambda_http::run(service_fn(move |request| {
        let service = Arc::clone(&service);
        async move {
            let response = handle(&service, request).await;
            tracing::info!(
                status = response.status().as_u16(),
                aws_requests = %format_counts(&take_request_counts()),
                "request handled"
            );
            orders_aws::telemetry::flush();
            Ok::<_, Infallible>(response)
        }
    }))
    .await
}
