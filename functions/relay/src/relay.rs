//! The batch handler: change records in, events out, per order in stream order.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::DynamoDbEventResponse;
use orders_aws::batch::{DeadLetters, RetryPoint, group_by};
use orders_aws::deadline::Deadline;
use orders_aws::dynamo::orders::order_from_image;
use orders_aws::metrics::{format_counts, take_request_counts};
use orders_aws::telemetry::metric;
use orders_core::ports::{Clock, DeadLetterQueue, EventPublisher};
use orders_core::{EventEnvelope, Order, OrderError, OrderEvent};
use std::collections::VecDeque;
use std::sync::Arc;
use tracing::{info, warn};

pub struct Relay<P, D> {
    pub publisher: P,
    pub dead_letters: D,
    pub clock: Arc<dyn Clock>,
    pub function_name: String,
}

/// What one change record means for the event stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A new order version: publish this event.
    Publish(Box<EventEnvelope>),
    /// Not a new version (a delete, a write that kept the version such as a backfill of
    /// index keys): nothing to publish.
    Skip,
    /// The new image is not an order: it can never be published.
    Poison(String),
}

/// The event a change record stands for. A version is new when the old image is absent or
/// holds another version.
pub fn change_of(record: &EventRecord) -> Change {
    if record.event_name == "REMOVE" || record.change.new_image.is_empty() {
        return Change::Skip;
    }
    let order: Order = match order_from_image(record.change.new_image.clone()) {
        Ok(order) => order,
        Err(err) => return Change::Poison(err.to_string()),
    };
    let old_version = (!record.change.old_image.is_empty())
        .then(|| order_from_image(record.change.old_image.clone()).ok())
        .flatten()
        .map(|old| old.version);
    if old_version == Some(order.version) {
        return Change::Skip;
    }
    Change::Publish(Box::new(EventEnvelope::new(OrderEvent::for_current_state(
        &order,
    ))))
}

#[derive(Debug, Default)]
struct Counts {
    published: usize,
    skipped: usize,
    dead_lettered: usize,
}

impl<P: EventPublisher, D: DeadLetterQueue> Relay<P, D> {
    /// Publishes a batch. Returns the records to retry: for each order whose publishing hit
    /// an error, the record where it stopped (Lambda resumes the shard from the lowest; what
    /// went out after it goes out again with the same `eventId`).
    ///
    /// Versions go out in rounds: each round puts the next new version of every order still
    /// going in one batch request, so a batch costs about one request per version of its
    /// busiest order, not one per record — and a batch put, which keeps no order among its
    /// records, never holds two versions of one order.
    pub async fn handle(&self, event: Event) -> DynamoDbEventResponse {
        self.handle_until(event, Deadline::none()).await
    }

    /// A batch; near `deadline` no round starts, and every order's first record not yet
    /// published is reported for retry.
    pub async fn handle_until(&self, event: Event, deadline: Deadline) -> DynamoDbEventResponse {
        let records = event.records;
        // The item's key identifies the order (a poison image may not).
        let mut queues: Vec<VecDeque<&EventRecord>> = group_by(&records, |r| {
            serde_json::to_string(&r.change.keys).unwrap_or_default()
        })
        .into_iter()
        .map(VecDeque::from)
        .collect();

        let mut counts = Counts::default();
        let mut retry = RetryPoint::default();
        loop {
            if !deadline.allows_more() {
                let left: Vec<String> = queues
                    .iter()
                    .filter_map(|q| q.front())
                    .filter_map(|r| r.change.sequence_number.clone())
                    .collect();
                if !left.is_empty() {
                    warn!(
                        orders = left.len(),
                        "the invocation's deadline is near; the rest comes again"
                    );
                }
                for sequence in &left {
                    retry.at(sequence);
                }
                break;
            }
            let mut round: Vec<(usize, &EventRecord, EventEnvelope)> = Vec::new();
            for (index, queue) in queues.iter_mut().enumerate() {
                while let Some(record) = queue.pop_front() {
                    match change_of(record) {
                        Change::Skip => counts.skipped += 1,
                        Change::Publish(envelope) => {
                            round.push((index, record, *envelope));
                            break;
                        }
                        Change::Poison(error) => match self.dead_letter(record, error).await {
                            Ok(()) => counts.dead_lettered += 1,
                            Err(err) => {
                                stop(queue, record, &err, &mut retry);
                                break;
                            }
                        },
                    }
                }
            }
            if round.is_empty() {
                break;
            }
            let events: Vec<EventEnvelope> = round.iter().map(|(_, _, e)| e.clone()).collect();
            let outcomes = self.publisher.publish_all(&events).await;
            for ((index, record, _), outcome) in round.into_iter().zip(outcomes) {
                match outcome {
                    Ok(()) => counts.published += 1,
                    Err(err) => stop(&mut queues[index], record, &err, &mut retry),
                }
            }
        }

        metrics::counter!(metric::EVENTS_RELAYED).increment(counts.published as u64);
        info!(
            records = records.len(),
            published = counts.published,
            skipped = counts.skipped,
            dead_lettered = counts.dead_lettered,
            retry_from = retry.sequence().unwrap_or(""),
            aws_requests = %format_counts(&take_request_counts()),
            "batch handled"
        );
        retry.dynamodb_response(records.len())
    }

    async fn dead_letter(&self, record: &EventRecord, error: String) -> Result<(), OrderError> {
        DeadLetters {
            queue: &self.dead_letters,
            clock: self.clock.as_ref(),
            function: &self.function_name,
        }
        .dynamodb(record, "not_an_order", error)
        .await
    }
}

/// An order stops at its first failure: the rest of its records wait for the retry.
fn stop(
    queue: &mut VecDeque<&EventRecord>,
    record: &EventRecord,
    err: &OrderError,
    retry: &mut RetryPoint,
) {
    queue.clear();
    let sequence_number = record.change.sequence_number.as_deref();
    warn!(error = %err, detail = ?err, sequence_number = ?sequence_number, "record will be retried");
    if let Some(sequence) = sequence_number {
        retry.at(sequence);
    }
}
