//! Publishes order events to the Kinesis stream, partitioned by order id so each order's
//! events stay in order on one shard; and storefront events to the activity stream,
//! partitioned by session.

use crate::errors::classify;
use async_trait::async_trait;
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use orders_core::activity::ActivityEnvelope;
use orders_core::ports::{ActivityPublisher, EventPublisher};
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
        let records = events
            .iter()
            .map(|e| Record {
                key: e.partition_key().to_owned(),
                data: e.to_json(),
            })
            .collect();
        self.put_all(records).await
    }
}

#[async_trait]
impl ActivityPublisher for KinesisPublisher {
    /// As [`EventPublisher::publish_all`], partitioned by session.
    async fn publish_activity(&self, events: &[ActivityEnvelope]) -> Vec<Result<(), OrderError>> {
        let records = events
            .iter()
            .map(|e| Record {
                key: e.event.partition_key().to_owned(),
                data: e.to_json(),
            })
            .collect();
        self.put_all(records).await
    }
}

/// A stream record to put: its partition key and data.
struct Record {
    key: String,
    data: Vec<u8>,
}

impl Record {
    fn size(&self) -> usize {
        self.key.len() + self.data.len()
    }
}

impl KinesisPublisher {
    async fn put_all(&self, records: Vec<Record>) -> Vec<Result<(), OrderError>> {
        let mut outcomes = Vec::with_capacity(records.len());
        for chunk in chunks(&records) {
            outcomes.extend(self.put_records(chunk).await);
        }
        outcomes
    }

    async fn put_records(&self, records: &[Record]) -> Vec<Result<(), OrderError>> {
        // Both fields are always set, so building an entry cannot fail; if it ever did, no
        // record of the chunk went out.
        let entries: Result<Vec<_>, _> = records
            .iter()
            .map(|record| {
                PutRecordsRequestEntry::builder()
                    .partition_key(&record.key)
                    .data(Blob::new(record.data.clone()))
                    .build()
            })
            .collect();
        let entries = match entries {
            Ok(entries) => entries,
            Err(e) => return every(records, || OrderError::Unexpected(e.to_string().into())),
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
                // The whole request failed: every record of the chunk failed the same way.
                let err = classify(err);
                let detail = format!("{err}: {:?}", std::error::Error::source(&err));
                return match err {
                    OrderError::Throttled(_) => {
                        every(records, || OrderError::Throttled(detail.clone().into()))
                    }
                    OrderError::Unavailable(_) => {
                        every(records, || OrderError::Unavailable(detail.clone().into()))
                    }
                    _ => every(records, || OrderError::Unexpected(detail.clone().into())),
                };
            }
        };
        let answers = output.records();
        records
            .iter()
            .enumerate()
            .map(|(i, record)| match answers.get(i) {
                Some(r) if r.error_code().is_none() => {
                    debug!(partition_key = %record.key, shard_id = r.shard_id(), sequence_number = r.sequence_number(), "record published");
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

fn every(records: &[Record], error: impl Fn() -> OrderError) -> Vec<Result<(), OrderError>> {
    records.iter().map(|_| Err(error())).collect()
}

/// Consecutive runs of records that fit one PutRecords request.
fn chunks(records: &[Record]) -> Vec<&[Record]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, record) in records.iter().enumerate() {
        let size = record.size();
        if i > start && (i - start == MAX_RECORDS_PER_PUT || bytes + size > MAX_BYTES_PER_PUT) {
            out.push(&records[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < records.len() {
        out.push(&records[start..]);
    }
    out
}
