//! `process-order`: consumes the order event stream.
//!
//! In this first slice it decodes each `OrderPlaced` event and logs it; catalog checks,
//! stock reservation, status changes and dead-lettering arrive with the stream-processing
//! work. Records it cannot decode are logged with their position so nothing passes silently.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::streams::KinesisEventResponse;
use lambda_runtime::{Error, LambdaEvent};
use orders_core::EventEnvelope;
use tracing::{info, warn};

/// Decodes every record of the batch; returns no item failures (nothing here can fail
/// transiently yet).
pub async fn handle(event: LambdaEvent<KinesisEvent>) -> Result<KinesisEventResponse, Error> {
    let mut decoded = 0usize;
    for record in &event.payload.records {
        match serde_json::from_slice::<EventEnvelope>(&record.kinesis.data) {
            Ok(envelope) => {
                decoded += 1;
                info!(
                    event_id = %envelope.event_id,
                    event_type = envelope.event.event_type(),
                    order_id = %envelope.order_id,
                    "event received"
                );
            }
            Err(err) => warn!(
                error = %err,
                sequence_number = record.kinesis.sequence_number.as_str(),
                partition_key = record.kinesis.partition_key.as_str(),
                "undecodable record"
            ),
        }
    }
    info!(
        records = event.payload.records.len(),
        decoded, "batch handled"
    );
    Ok(KinesisEventResponse::default())
}
