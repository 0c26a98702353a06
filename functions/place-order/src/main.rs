//! Lambda entry point: configuration and clients are built once per cold start.

use lambda_http::{Error, service_fn};
use orders_aws::metrics::{format_counts, take_request_counts};
use orders_aws::{
    DynamoCatalog, DynamoIdempotencyStore, DynamoOrderCommands, DynamoOrderStore, KinesisPublisher,
};
use orders_core::ports::{SystemClock, UlidIds};
use place_order::{ActivityService, App, CommandService, Config, PlaceOrderService, handle};
use std::convert::Infallible;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    orders_aws::telemetry::init("place-order")?;
    let config = Config::from_env()?;
    let sdk = orders_aws::config::sdk_config_for_api().await;
    let app = Arc::new(App {
        place: PlaceOrderService {
            store: DynamoOrderStore::from_sdk(&sdk, &config.orders_table),
            idempotency: DynamoIdempotencyStore::from_sdk(&sdk, &config.idempotency_table),
            catalog: DynamoCatalog::from_sdk(&sdk, &config.products_table),
            clock: Arc::new(SystemClock),
            ids: Arc::new(UlidIds),
            currency: config.currency,
            idempotency_ttl_seconds: i64::from(config.idempotency_ttl_hours) * 3600,
        },
        commands: CommandService {
            commands: DynamoOrderCommands::from_sdk(
                &sdk,
                &config.orders_table,
                &config.products_table,
            ),
            catalog: DynamoCatalog::from_sdk(&sdk, &config.products_table),
            clock: Arc::new(SystemClock),
        },
        activity: ActivityService {
            publisher: KinesisPublisher::from_sdk(&sdk, &config.activity_stream_name),
            clock: Arc::new(SystemClock),
        },
    });
    lambda_http::run(service_fn(move |request| {
        let app = Arc::clone(&app);
        async move {
            let response = handle(&app, request).await;
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
