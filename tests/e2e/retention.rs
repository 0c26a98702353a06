//! What the deployment keeps, and for how long, as applied to the emulator (not as written in
//! Terraform): the aggregate's event claims must outlive every way an event can come back —
//! the stream's retention and a dead letter's — or a late replay would count it twice.

use orders_tests::Emulator;

#[tokio::test]
async fn event_claims_outlive_the_stream_and_every_dead_letter_queue() {
    let emulator = Emulator::connect().await;
    let kinesis_hours = emulator
        .kinesis()
        .describe_stream_summary()
        .stream_name(emulator.output("events_stream_name"))
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap()
        .retention_period_hours;
    let mut dlq_hours = 0;
    for queue in [
        "process_order_dlq_url",
        "aggregate_dlq_url",
        "relay_dlq_url",
    ] {
        let attributes = emulator
            .sqs()
            .get_queue_attributes()
            .queue_url(emulator.output(queue))
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::MessageRetentionPeriod)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        let seconds: i64 = attributes
            [&aws_sdk_sqs::types::QueueAttributeName::MessageRetentionPeriod]
            .parse()
            .unwrap();
        dlq_hours = dlq_hours.max((seconds + 3599) / 3600);
    }
    let function = emulator.output_value("function_names")["aggregate"]
        .as_str()
        .expect("function_names.aggregate")
        .to_owned();
    let environment = aws_sdk_lambda::Client::new(&emulator.sdk)
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .unwrap()
        .environment
        .and_then(|e| e.variables)
        .unwrap_or_default();
    let claim_hours: i64 = environment["DEDUP_TTL_HOURS"].parse().unwrap();
    assert!(
        claim_hours >= i64::from(kinesis_hours) + dlq_hours,
        "claims kept {claim_hours} h; the stream keeps events {kinesis_hours} h and a dead letter {dlq_hours} h"
    );
}
