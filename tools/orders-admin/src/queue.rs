//! The dead-letter queue, read without consuming: every message received is either
//! deleted (replayed) or *held* and made visible again at the end of the run.

use anyhow::Context as _;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, QueueAttributeName};
use std::collections::HashSet;

/// A resolved queue.
#[derive(Debug, Clone)]
pub struct Queue {
    client: Client,
    pub url: String,
}

/// One received message.
#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
}

impl Queue {
    /// `name_or_url`: a queue URL (`https://…`/`http://…`), or a name resolved with GetQueueUrl.
    pub async fn resolve(client: Client, name_or_url: &str) -> anyhow::Result<Self> {
        let url = if name_or_url.starts_with("https://") || name_or_url.starts_with("http://") {
            name_or_url.to_owned()
        } else {
            client
                .get_queue_url()
                .queue_name(name_or_url)
                .send()
                .await
                .with_context(|| format!("cannot find queue {name_or_url:?}"))?
                .queue_url
                .with_context(|| format!("GetQueueUrl returned no URL for {name_or_url:?}"))?
        };
        Ok(Self { client, url })
    }

    /// Messages currently in flight (received by someone, not yet visible again), if known.
    pub async fn in_flight(&self) -> Option<u64> {
        let attributes = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .ok()?
            .attributes?;
        attributes
            .get(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible)?
            .parse()
            .ok()
    }

    /// Starts a reading session: messages stay hidden for `visibility_secs` while the run
    /// looks at them.
    pub fn session(&self, visibility_secs: i32) -> Session<'_> {
        Session {
            queue: self,
            visibility_secs,
            seen: HashSet::new(),
            held: Vec::new(),
        }
    }
}

/// Receives each message at most once per run; tracks what must be made visible again.
pub struct Session<'q> {
    queue: &'q Queue,
    visibility_secs: i32,
    seen: HashSet<String>,
    held: Vec<String>,
}

impl Session<'_> {
    /// Up to `limit` (≤ 10) messages not seen before in this run; empty when the queue has
    /// no more visible messages.
    pub async fn next_batch(&mut self, limit: usize) -> anyhow::Result<Vec<Received>> {
        let limit = limit.clamp(1, 10) as i32;
        // A receive can return only messages we already hold (if the run outlived their
        // visibility timeout); try a few times before calling the queue drained.
        for _ in 0..3 {
            let output = self
                .queue
                .client
                .receive_message()
                .queue_url(&self.queue.url)
                .max_number_of_messages(limit)
                .visibility_timeout(self.visibility_secs)
                // Long polling (1 s) asks every SQS server, so "empty" really means empty.
                .wait_time_seconds(1)
                .send()
                .await
                .with_context(|| format!("cannot receive from {}", self.queue.url))?;
            let messages = output.messages.unwrap_or_default();
            if messages.is_empty() {
                return Ok(Vec::new());
            }
            let mut fresh = Vec::new();
            for message in messages {
                let (Some(id), Some(handle)) = (message.message_id, message.receipt_handle) else {
                    continue;
                };
                if self.seen.insert(id.clone()) {
                    fresh.push(Received {
                        message_id: id,
                        receipt_handle: handle,
                        body: message.body.unwrap_or_default(),
                    });
                } else {
                    self.held.push(handle);
                }
            }
            if !fresh.is_empty() {
                return Ok(fresh);
            }
        }
        Ok(Vec::new())
    }

    /// Keeps `message` in the queue: it becomes visible again at [`Session::release`].
    pub fn hold(&mut self, message: &Received) {
        self.held.push(message.receipt_handle.clone());
    }

    pub async fn delete(&self, message: &Received) -> anyhow::Result<()> {
        self.queue
            .client
            .delete_message()
            .queue_url(&self.queue.url)
            .receipt_handle(&message.receipt_handle)
            .send()
            .await
            .with_context(|| format!("cannot delete message {}", message.message_id))?;
        Ok(())
    }

    /// Makes every held message visible again at once (visibility timeout 0).
    pub async fn release(self) -> anyhow::Result<()> {
        let mut failed = Vec::new();
        for chunk in self.held.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, handle)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(handle)
                        .visibility_timeout(0)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()?;
            let output = self
                .queue
                .client
                .change_message_visibility_batch()
                .queue_url(&self.queue.url)
                .set_entries(Some(entries))
                .send()
                .await
                .context("cannot make the messages visible again")?;
            failed.extend(
                output
                    .failed
                    .into_iter()
                    .map(|f| f.message.unwrap_or(f.code)),
            );
        }
        if !failed.is_empty() {
            anyhow::bail!(
                "{} message(s) could not be made visible again (they reappear after the \
                 visibility timeout): {}",
                failed.len(),
                failed.join("; ")
            );
        }
        Ok(())
    }
}
