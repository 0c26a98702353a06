//! Lambda entry point: configuration and clients are built once per cold start.

use aggregate_activity::{ActivityAggregator, Config};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use orders_aws::deadline::Deadline;
use orders_aws::{DynamoAnalytics, SqsDeadLetterQueue};
use orders_core::ports::SystemClock;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    orders_aws::telemetry::init("aggregate-activity")?;
    let config = Config::from_env()?;
    let sdk = orders_aws::config::sdk_config_for_streams().await;
    let aggregator = Arc::new(ActivityAggregator {
        store: DynamoAnalytics::from_sdk(
            &sdk,
            &config.analytics_table,
            &config.dedup_table,
            i64::from(config.dedup_ttl_hours) * 3600,
        ),
        dead_letters: SqsDeadLetterQueue::from_sdk(&sdk, &config.dlq_url),
        clock: Arc::new(SystemClock),
        function_name: config.function_name,
    });
    run(service_fn(move |event: LambdaEvent<_>| {
        let aggregator = Arc::clone(&aggregator);
        async move {
            let deadline = Deadline::from_epoch_millis(event.context.deadline);
            let response = aggregator.handle_until(event.payload, deadline).await;
            orders_aws::telemetry::flush();
            Ok::<_, Error>(response)
        }
    }))
    .await
}
