//! Lambda entry point: configuration and clients are built once per cold start.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use orders_aws::deadline::Deadline;
use orders_aws::{KinesisPublisher, SqsDeadLetterQueue};
use orders_core::ports::SystemClock;
use relay::{Config, Relay};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    orders_aws::telemetry::init("relay")?;
    let config = Config::from_env()?;
    let sdk = orders_aws::config::sdk_config_for_streams().await;
    let relay = Arc::new(Relay {
        publisher: KinesisPublisher::from_sdk(&sdk, &config.events_stream_name),
        dead_letters: SqsDeadLetterQueue::from_sdk(&sdk, &config.dlq_url),
        clock: Arc::new(SystemClock),
        function_name: config.function_name,
    });
    run(service_fn(move |event: LambdaEvent<_>| {
        let relay = Arc::clone(&relay);
        async move {
            let deadline = Deadline::from_epoch_millis(event.context.deadline);
            let response = relay.handle_until(event.payload, deadline).await;
            orders_aws::telemetry::flush();
            Ok::<_, Error>(response)
        }
    }))
    .await
}
