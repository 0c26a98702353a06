//! Lambda entry point: configuration and clients are built once per cold start.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use orders_aws::deadline::Deadline;
use orders_aws::{DynamoCatalog, DynamoOrderCommands, SqsDeadLetterQueue};
use orders_core::ports::SystemClock;
use process_order::{Config, OrderProcessor};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    orders_aws::telemetry::init("process-order")?;
    let config = Config::from_env()?;
    let sdk = orders_aws::config::sdk_config_for_streams().await;
    let processor = Arc::new(OrderProcessor {
        commands: DynamoOrderCommands::from_sdk(&sdk, &config.orders_table, &config.products_table),
        catalog: DynamoCatalog::from_sdk(&sdk, &config.products_table),
        dead_letters: SqsDeadLetterQueue::from_sdk(&sdk, &config.dlq_url),
        clock: Arc::new(SystemClock),
        function_name: config.function_name,
    });
    run(service_fn(move |event: LambdaEvent<_>| {
        let processor = Arc::clone(&processor);
        async move {
            let deadline = Deadline::from_epoch_millis(event.context.deadline);
            let response = processor.handle_until(event.payload, deadline).await;
            orders_aws::telemetry::flush();
            Ok::<_, Error>(response)
        }
    }))
    .await
}
