//! Publishes order events to the Kinesis stream, partitioned by order id so each order's
//! events stay in order on one shard.

use crate::errors::classify;
use async_trait::async_trait;
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use orders_core::ports::EventPublisher;
use orders_core::{EventEnvelope, OrderError};
use tracing::debug;

/// PutRecords takes at most 500 records and 5 MiB (data and partition keys) per request.
const MAX_RECORDS_PER_PUT: usize = 500;
const MAX_BYTES_PER_PUT: usize = 5 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct KinesisPublisher {
    client: Client,
    stream_name: String,
}

impl KinesisPublisher {
    pub fn new(client: Client, stream_name: impl Into<String>) -> Self {
        Self {
            client,
            stream_name: stream_name.into(),
        }
    }

    pub fn from_sdk(sdk: &aws_config::SdkConfig, stream_name: impl Into<String>) -> Self {
        Self::new(crate::config::kinesis_client(sdk), stream_name)
    }
}

#[async_trait]
impl EventPublisher for KinesisPublisher {
    async fn publish(&self, event: &EventEnvelope) -> Result<(), OrderError> {
        let output = self
            .client
            .put_record()
            .stream_name(&self.stream_name)
            .partition_key(event.partition_key())
            .data(Blob::new(event.to_json()))
            .send()
            .await
            .map_err(classify)?;
        debug!(
            event_id = %event.event_id,
            shard_id = output.shard_id(),
            sequence_number = output.sequence_number(),
            "event published"
        );
        Ok(())
    }

    /// One PutRecords per 500 events (or 5 MiB); a record Kinesis refused (throttled, internal
    /// failure) reports its error code, the others succeed.
    async fn publish_all(&self, events: &[EventEnvelope]) -> Vec<Result<(), OrderError>> {
        let mut outcomes = Vec::with_capacity(events.len());
        for chunk in chunks(events) {
            outcomes.extend(self.put_records(chunk).await);
        }
        outcomes
    }
}

impl KinesisPublisher {
    async fn put_records(&self, events: &[EventEnvelope]) -> Vec<Result<(), OrderError>> {
        // Both fields are always set, so building an entry cannot fail; if it ever did, no
        // event of the chunk went out.
        let entries: Result<Vec<_>, _> = events
            .iter()
            .map(|event| {
                PutRecordsRequestEntry::builder()
                    .partition_key(event.partition_key())
                    .data(Blob::new(event.to_json()))
                    .build()
            })
            .collect();
        let entries = match entries {
            Ok(entries) => entries,
            Err(e) => return every(events, || OrderError::Unexpected(e.to_string().into())),
        };
        let output = match self
            .client
            .put_records()
            .stream_name(&self.stream_name)
            .set_records(Some(entries))
            .send()
            .await
        {
            Ok(output) => output,
            Err(err) => {
                // The whole request failed: every event of the chunk failed the same way.
                let err = classify(err);
                let detail = format!("{err}: {:?}", std::error::Error::source(&err));
                return match err {
                    OrderError::Throttled(_) => {
                        every(events, || OrderError::Throttled(detail.clone().into()))
                    }
                    OrderError::Unavailable(_) => {
                        every(events, || OrderError::Unavailable(detail.clone().into()))
                    }
                    _ => every(events, || OrderError::Unexpected(detail.clone().into())),
                };
            }
        };
        let records = output.records();
        events
            .iter()
            .enumerate()
            .map(|(i, event)| match records.get(i) {
                Some(r) if r.error_code().is_none() => {
                    debug!(event_id = %event.event_id, shard_id = r.shard_id(), sequence_number = r.sequence_number(), "event published");
                    Ok(())
                }
                Some(r) => {
                    let detail = format!(
                        "{}: {}",
                        r.error_code().unwrap_or_default(),
                        r.error_message().unwrap_or_default()
                    );
                    Err(if r.error_code() == Some("ProvisionedThroughputExceededException") {
                        OrderError::Throttled(detail.into())
                    } else {
                        OrderError::Unavailable(detail.into())
                    })
                }
                None => Err(OrderError::Unavailable(
                    "PutRecords answered fewer records than it was sent".into(),
                )),
            })
            .collect()
    }
}

fn every(events: &[EventEnvelope], error: impl Fn() -> OrderError) -> Vec<Result<(), OrderError>> {
    events.iter().map(|_| Err(error())).collect()
}

/// Consecutive runs of events that fit one PutRecords request.
fn chunks(events: &[EventEnvelope]) -> Vec<&[EventEnvelope]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, event) in events.iter().enumerate() {
        let size = event.to_json().len() + event.partition_key().len();
        if i > start && (i - start == MAX_RECORDS_PER_PUT || bytes + size > MAX_BYTES_PER_PUT) {
            out.push(&events[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < events.len() {
        out.push(&events[start..]);
    }
    out
}
