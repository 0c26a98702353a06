//! `POST /events`: a storefront's batch of activity events, validated whole
//! ([`parse_activity_batch`]: every bad field named, a bad batch stores nothing) and put on
//! the activity stream, partitioned by session. No table is written here, so there is no
//! outbox: a batch is either acknowledged after every event is on the stream, or answered
//! 503 and resent whole by the client — the consumer's claims drop the copies of events
//! that did go through (`docs/activity.md`).

use orders_core::activity::{ActivityEnvelope, parse_activity_batch};
use orders_core::ports::{ActivityPublisher, Clock};
use orders_core::{Caller, OrderError};
use serde_json::Value;
use std::sync::Arc;
use tracing::{info, warn};

/// Puts of the records PutRecords refused before the batch is answered 503: refusals are
/// per record (a throttled shard), and a second try usually lands them.
const PUT_ATTEMPTS: usize = 3;

pub struct ActivityService<P> {
    pub publisher: P,
    pub clock: Arc<dyn Clock>,
}

impl<P: ActivityPublisher> ActivityService<P> {
    /// Validates and publishes one batch; the number of events accepted (identical copies
    /// within the batch count once).
    pub async fn accept(&self, body: &Value, caller: &Caller) -> Result<usize, OrderError> {
        let now = self.clock.now();
        let events = parse_activity_batch(body, caller, now)?;
        let mut pending: Vec<ActivityEnvelope> = events
            .into_iter()
            .map(|event| ActivityEnvelope::new(event, now))
            .collect();
        let accepted = pending.len();
        let mut last_error = None;
        for attempt in 1..=PUT_ATTEMPTS {
            let outcomes = self.publisher.publish_activity(&pending).await;
            let mut failed = Vec::new();
            for (envelope, outcome) in pending.into_iter().zip(outcomes) {
                if let Err(err) = outcome {
                    last_error = Some(err);
                    failed.push(envelope);
                }
            }
            if failed.is_empty() {
                info!(events = accepted, attempts = attempt, "activity accepted");
                return Ok(accepted);
            }
            warn!(
                failed = failed.len(),
                attempt, "activity records refused; putting again"
            );
            pending = failed;
        }
        let cause = last_error.map_or_else(|| "no outcome".to_owned(), |e| e.to_string());
        Err(OrderError::Unavailable(
            format!(
                "{} of {accepted} events did not reach the stream ({cause}); send the batch again",
                pending.len()
            )
            .into(),
        ))
    }
}
