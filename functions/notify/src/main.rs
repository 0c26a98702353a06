//! Lambda entry point: configuration and clients are built once per cold start.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use notify::{Config, Notifier};
use orders_aws::deadline::Deadline;
use orders_aws::{ApiGatewayPusher, DynamoLiveConnections, SqsDeadLetterQueue};
use orders_core::ports::SystemClock;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    orders_aws::telemetry::init("notify")?;
    let config = Config::from_env()?;
    let sdk = orders_aws::config::sdk_config_for_streams().await;
    let notifier = Arc::new(Notifier {
        connections: DynamoLiveConnections::from_sdk(&sdk, &config.connections_table),
        pusher: ApiGatewayPusher::from_sdk(&sdk, &config.callback_url),
        dead_letters: SqsDeadLetterQueue::from_sdk(&sdk, &config.dlq_url),
        clock: Arc::new(SystemClock),
        function_name: config.function_name,
    });
    run(service_fn(move |event: LambdaEvent<_>| {
        let notifier = Arc::clone(&notifier);
        async move {
            let deadline = Deadline::from_epoch_millis(event.context.deadline);
            let response = notifier.handle_until(event.payload, deadline).await;
            orders_aws::telemetry::flush();
            Ok::<_, Error>(response)
        }
    }))
    .await
}
