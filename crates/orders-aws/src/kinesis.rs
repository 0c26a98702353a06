//! Publishes order events to the Kinesis stream, partitioned by order id so each order's
//! events stay in order on one shard.

use crate::errors::classify;
use async_trait::async_trait;
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use orders_core::ports::EventPublisher;
use orders_core::{EventEnvelope, OrderError};
use tracing::debug;

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
}
