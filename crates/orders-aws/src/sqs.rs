//! Dead letters go to SQS as JSON, one message per record.

use crate::errors::classify;
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use orders_core::OrderError;
use orders_core::ports::{DeadLetter, DeadLetterQueue};
use tracing::warn;

#[derive(Debug, Clone)]
pub struct SqsDeadLetterQueue {
    client: Client,
    queue_url: String,
}

impl SqsDeadLetterQueue {
    pub fn from_sdk(sdk: &aws_config::SdkConfig, queue_url: impl Into<String>) -> Self {
        Self {
            client: crate::config::sqs_client(sdk),
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl DeadLetterQueue for SqsDeadLetterQueue {
    async fn send(&self, letter: &DeadLetter) -> Result<(), OrderError> {
        let body = serde_json::to_string(letter).map_err(|e| OrderError::Unexpected(e.into()))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(classify)?;
        warn!(reason = %letter.reason, error = %letter.error, "record dead-lettered");
        Ok(())
    }
}
