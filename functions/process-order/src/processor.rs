//! The batch handler and the per-order processing.

use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use aws_lambda_events::streams::KinesisEventResponse;
use futures::stream::{self, StreamExt};
use orders_aws::batch::{DeadLetters, RetryPoint, group_by};
use orders_aws::deadline::Deadline;
use orders_aws::metrics::{format_counts, take_request_counts};
use orders_aws::telemetry::metric;
use orders_core::ports::{Applied, Catalog, Clock, DeadLetterQueue, OrderCommands, StockChange};
use orders_core::{
    Decoded, EventEnvelope, FailureReason, Order, OrderError, OrderEvent, OrderStatus,
};
use std::collections::HashMap;
use std::sync::Arc;
use tracing::{info, instrument, warn};

/// Orders of one batch processed at the same time. Records of one order (one partition
/// key) are always handled in stream order; different orders are independent.
const CONCURRENT_ORDERS: usize = 8;

/// How often a change is retried in-process after losing a race for the same order.
const STALE_RETRIES: usize = 3;

/// How often a transaction that met a concurrent one on the same items (a popular product's
/// stock) is tried again in-process, waiting 50, 100, 200, 400 ms, before the record is
/// handed back to Lambda: redelivering the whole batch for a moment's contention would
/// redo every other order's work too.
pub const CONTENDED_RETRIES: u32 = 4;

pub struct OrderProcessor<C, K, D> {
    pub commands: C,
    pub catalog: K,
    pub dead_letters: D,
    pub clock: Arc<dyn Clock>,
    pub function_name: String,
}

/// What became of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Processed,
    Failed,
    /// Already handled by an earlier delivery.
    Duplicate,
    /// Not an event this function owns.
    Skipped,
    DeadLettered,
}

/// A permanent problem with a record: the reason code and the detail.
struct Poison(&'static str, String);

impl<C, K, D> OrderProcessor<C, K, D>
where
    C: OrderCommands,
    K: Catalog,
    D: DeadLetterQueue,
{
    /// A batch with no deadline (tests, tools).
    pub async fn handle(&self, event: KinesisEvent) -> KinesisEventResponse {
        self.handle_until(event, Deadline::none()).await
    }

    /// Handles a batch. Returns the records to retry: for each order whose processing hit a
    /// transient error, or that `deadline` left no time to start, the record where it
    /// stopped. Lambda resumes the shard from the lowest of them, so records after it are
    /// redelivered — which the idempotent processing absorbs.
    pub async fn handle_until(
        &self,
        event: KinesisEvent,
        deadline: Deadline,
    ) -> KinesisEventResponse {
        let records = event.records;
        let groups = group_by(&records, |r| r.kinesis.partition_key.clone());
        let results: Vec<(Vec<Outcome>, Option<String>)> = stream::iter(groups)
            .map(|group| self.handle_group(group, deadline))
            .buffer_unordered(CONCURRENT_ORDERS)
            .collect()
            .await;

        let mut counts: HashMap<Outcome, usize> = HashMap::new();
        let mut retry = RetryPoint::default();
        for (outcomes, failed_at) in results {
            for outcome in outcomes {
                *counts.entry(outcome).or_default() += 1;
            }
            if let Some(sequence) = failed_at {
                retry.at(&sequence);
            }
        }
        metrics::counter!(metric::DUPLICATE_RECORDS)
            .increment(counts.get(&Outcome::Duplicate).copied().unwrap_or(0) as u64);
        info!(
            records = records.len(),
            processed = counts.get(&Outcome::Processed).copied().unwrap_or(0),
            failed = counts.get(&Outcome::Failed).copied().unwrap_or(0),
            duplicates = counts.get(&Outcome::Duplicate).copied().unwrap_or(0),
            skipped = counts.get(&Outcome::Skipped).copied().unwrap_or(0),
            dead_lettered = counts.get(&Outcome::DeadLettered).copied().unwrap_or(0),
            retry_from = retry.sequence().unwrap_or(""),
            aws_requests = %format_counts(&take_request_counts()),
            "batch handled"
        );
        retry.kinesis_response(records.len())
    }

    /// One order's records in order; stops at the first transient failure and names it.
    async fn handle_group(
        &self,
        records: Vec<&KinesisEventRecord>,
        deadline: Deadline,
    ) -> (Vec<Outcome>, Option<String>) {
        let mut outcomes = Vec::with_capacity(records.len());
        for record in records {
            if !deadline.allows_more() {
                warn!(
                    sequence_number = %record.kinesis.sequence_number,
                    "the invocation's deadline is near; the order's remaining records come again"
                );
                return (outcomes, Some(record.kinesis.sequence_number.clone()));
            }
            match self.handle_record(record).await {
                Ok(outcome) => outcomes.push(outcome),
                Err(err) => {
                    warn!(
                        error = %err,
                        detail = ?err,
                        sequence_number = %record.kinesis.sequence_number,
                        partition_key = %record.kinesis.partition_key,
                        "record will be retried"
                    );
                    return (outcomes, Some(record.kinesis.sequence_number.clone()));
                }
            }
        }
        (outcomes, None)
    }

    async fn handle_record(&self, record: &KinesisEventRecord) -> Result<Outcome, OrderError> {
        let result = match EventEnvelope::decode(&record.kinesis.data) {
            Ok(Decoded::Event(envelope)) => match envelope.event {
                // A retried order is processed exactly like a placed one: it is PENDING again,
                // at its own version.
                OrderEvent::OrderPlaced { order, .. } | OrderEvent::OrderRetried { order } => {
                    self.process(order).await?
                }
                _ => Ok(Outcome::Skipped),
            },
            Ok(Decoded::UnknownType(_)) => Ok(Outcome::Skipped),
            Err(err) => Err(Poison(err.code(), err.to_string())),
        };
        match result {
            Ok(outcome) => Ok(outcome),
            Err(Poison(reason, error)) => {
                self.letters().kinesis(record, reason, error).await?;
                Ok(Outcome::DeadLettered)
            }
        }
    }

    fn letters(&self) -> DeadLetters<'_, D> {
        DeadLetters {
            queue: &self.dead_letters,
            clock: self.clock.as_ref(),
            function: &self.function_name,
        }
    }

    /// Processes one placed (or retried) order: the PENDING version the event carries. The
    /// outer `Result` is for transient errors (retry the record), the inner one for poison
    /// (dead-letter it).
    #[instrument(skip_all, fields(order_id = %placed.order_id, version = placed.version))]
    async fn process(&self, placed: Order) -> Result<Result<Outcome, Poison>, OrderError> {
        // The relay derives OrderPlaced / OrderRetried from a stored PENDING version; anything
        // else cannot become valid by retrying (a transition from it is illegal forever).
        if placed.status != OrderStatus::Pending {
            return Ok(Err(Poison(
                "not_pending",
                format!(
                    "the event for order {} carries status {} (version {}), not PENDING",
                    placed.order_id, placed.status, placed.version
                ),
            )));
        }
        for _ in 0..STALE_RETRIES {
            let now = self.clock.now();
            let (next, stock) = self.decide(&placed, now).await?;
            let applied = match self.apply(&next, &stock).await? {
                Applied::Refused(product) => {
                    // Another order took the last units, or the price changed, between our
                    // read and our write: decide again from the catalog as it is now.
                    info!(%product, "reservation refused; reading the catalog again");
                    continue;
                }
                Applied::Done => Some(next),
                // (`apply` turns lasting contention into an error; were it to come back here,
                // the order is re-read and the change tried again like a lost race.)
                Applied::StaleVersion | Applied::Contended => None,
            };
            if let Some(order) = applied {
                // The stored version is the outcome: the relay publishes its event from the
                // table's change stream, so nothing can fail between the write and the event.
                let outcome = match order.failure_reason {
                    None => {
                        metrics::counter!(metric::ORDERS_PROCESSED).increment(1);
                        Outcome::Processed
                    }
                    Some(reason) => {
                        metrics::counter!(metric::ORDERS_FAILED, "reason" => reason.as_str())
                            .increment(1);
                        Outcome::Failed
                    }
                };
                info!(status = %order.status, reason = ?order.failure_reason, "order processed");
                return Ok(Ok(outcome));
            }
            // Not at the event's version any more: handled by an earlier delivery, changed by
            // a client, or never stored at all.
            let Some(stored) = self.commands.load(&placed.order_id).await? else {
                return Ok(Err(Poison(
                    "order_not_found",
                    format!("order {} is not in the orders table", placed.order_id),
                )));
            };
            // PENDING at a later version is a retry of the order, which its own
            // `OrderRetried` processes: this (redelivered) event's attempt is over.
            if stored.status == OrderStatus::Pending && stored.version == placed.version {
                continue;
            }
            return Ok(Ok(Outcome::Duplicate));
        }
        Err(OrderError::Unavailable(
            format!(
                "order {} kept changing while being processed",
                placed.order_id
            )
            .into(),
        ))
    }

    /// Applies a change, trying again with backoff while concurrent transactions on the
    /// same items refuse it.
    async fn apply(&self, next: &Order, stock: &StockChange) -> Result<Applied, OrderError> {
        for attempt in 0..=CONTENDED_RETRIES {
            match self.commands.apply(next, stock).await? {
                Applied::Contended if attempt < CONTENDED_RETRIES => {
                    metrics::counter!(metric::TRANSACTION_CONFLICTS).increment(1);
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
                Applied::Contended => break,
                applied => return Ok(applied),
            }
        }
        Err(OrderError::Unavailable(
            format!(
                "order {}: concurrent transactions kept conflicting on its items",
                next.order_id
            )
            .into(),
        ))
    }

    /// The order's next state from the catalog as it is now.
    async fn decide(
        &self,
        placed: &Order,
        now: orders_core::Timestamp,
    ) -> Result<(Order, StockChange), OrderError> {
        let ids: Vec<_> = placed.items.iter().map(|i| i.product_id.clone()).collect();
        let products = self.catalog.get_many(&ids).await?;
        let listed: HashMap<_, _> = products.iter().map(|p| (&p.product_id, p)).collect();
        let line = |i: &orders_core::LineItem| listed.get(&i.product_id);
        // The price sold at is the catalog's when stock is reserved: the reservation is
        // conditional on it, so a price changed since placement fails the order.
        let reason = if placed.items.iter().any(|i| line(i).is_none()) {
            Some(FailureReason::UnknownProduct)
        } else if placed
            .items
            .iter()
            .any(|i| line(i).is_some_and(|p| p.price != i.unit_price))
        {
            Some(FailureReason::PriceChanged)
        } else if placed
            .items
            .iter()
            .any(|i| line(i).is_some_and(|p| p.stock < u64::from(i.quantity.get())))
        {
            Some(FailureReason::OutOfStock)
        } else {
            None
        };
        let illegal = |e: orders_core::IllegalTransition| OrderError::Unexpected(e.into());
        Ok(match reason {
            Some(reason) => (
                placed.fail(reason, now).map_err(illegal)?,
                StockChange::None,
            ),
            None => (
                placed
                    .transition(OrderStatus::Processed, now)
                    .map_err(illegal)?,
                StockChange::Reserve(StockChange::lines(placed)),
            ),
        })
    }
}
