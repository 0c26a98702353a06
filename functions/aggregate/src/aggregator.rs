//! The batch handler: decode, claim, fold, write.

use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use aws_lambda_events::streams::KinesisEventResponse;
use futures::stream::{self, StreamExt};
use orders_aws::batch::{DeadLetters, RetryPoint, kinesis_shard};
use orders_aws::deadline::Deadline;
use orders_aws::metrics::{format_counts, take_request_counts};
use orders_aws::telemetry::metric;
use orders_core::analytics::{
    CounterItem, Effect, Fold, ItemDelta, MAX_COUNTERS_PER_WRITE, position,
};
use orders_core::ports::{AnalyticsStore, Clock, CountersApplied, DeadLetterQueue};
use orders_core::sequence;
use orders_core::{EventEnvelope, EventId, OrderError, OrderId};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tracing::{info, warn};

/// Concurrent writes per batch: items are independent, and a batch touches tens of them.
const CONCURRENT_WRITES: usize = 16;

pub struct Aggregator<A, D> {
    pub store: A,
    pub dead_letters: D,
    pub clock: Arc<dyn Clock>,
    pub function_name: String,
}

/// A record read as an event: its shard, sequence number and envelope.
type Decoded = (String, String, EventEnvelope);

/// One order's records of the batch, and which of them own their event.
type OrderClaims = (Vec<Decoded>, Result<Vec<bool>, OrderError>);

/// A decoded record that contributes.
struct Contribution {
    shard: String,
    sequence: String,
    effect: Effect,
}

/// A step not started because the invocation is about to end (retryable: it comes again).
fn near_deadline() -> OrderError {
    OrderError::Unavailable("the invocation's deadline is near; not started".into())
}

/// Why a write did not land.
enum WriteFailure {
    /// Worth another attempt: redeliver from this record (the item's first in the batch).
    Retry(String),
    /// The store refused the write as sent (a limit, a bug): the records that touched it.
    Refused {
        sequences: Vec<String>,
        error: String,
    },
}

impl WriteFailure {
    /// One rule for every write: [`OrderError::is_retryable`].
    fn of(err: OrderError, sequences: Vec<String>, item: &str) -> Self {
        if err.is_retryable() {
            warn!(error = %err, item, "write failed; will retry");
            WriteFailure::Retry(sequences.into_iter().next().unwrap_or_default())
        } else {
            warn!(error = %err, detail = ?err, item, "write refused; dead-lettering its records");
            WriteFailure::Refused {
                sequences,
                error: format!("{item}: {err}"),
            }
        }
    }
}

impl<A: AnalyticsStore, D: DeadLetterQueue> Aggregator<A, D> {
    /// A batch with no deadline (tests, tools).
    pub async fn handle(&self, event: KinesisEvent) -> KinesisEventResponse {
        self.handle_until(event, Deadline::none()).await
    }

    /// A batch; near `deadline` no claim or write starts, and the records they would have
    /// covered are reported for retry (exactly once still holds: see the watermarks).
    pub async fn handle_until(
        &self,
        event: KinesisEvent,
        deadline: Deadline,
    ) -> KinesisEventResponse {
        let mut retry = RetryPoint::default();
        let records = event.records;

        // 1. Decode; dead-letter what can never be read.
        let mut decoded = Vec::with_capacity(records.len());
        let mut dead_lettered = 0usize;
        for record in &records {
            let sequence = record.kinesis.sequence_number.clone();
            match EventEnvelope::decode(&record.kinesis.data) {
                Ok(orders_core::Decoded::Event(envelope)) => {
                    decoded.push((kinesis_shard(record), sequence, *envelope))
                }
                Ok(orders_core::Decoded::UnknownType(_)) => {}
                Err(err) => match self
                    .letters()
                    .kinesis(record, err.code(), err.to_string())
                    .await
                {
                    Ok(()) => dead_lettered += 1,
                    Err(e) => {
                        warn!(error = %e, %sequence, "dead-lettering failed; will retry");
                        retry.at(&sequence);
                    }
                },
            }
        }

        // 2. Claim each event for its first record (one write per order); producers'
        //    duplicates drop out here.
        let mut by_order: BTreeMap<OrderId, Vec<Decoded>> = BTreeMap::new();
        for (shard, sequence, envelope) in decoded {
            by_order
                .entry(envelope.order_id)
                .or_default()
                .push((shard, sequence, envelope));
        }
        let claimed: Vec<OrderClaims> = stream::iter(by_order)
            .map(|(order_id, records)| async move {
                if !deadline.allows_more() {
                    return (records, Err(near_deadline()));
                }
                // A duplicate inside the batch: only its first record may claim it.
                let mut first_of: BTreeMap<EventId, usize> = BTreeMap::new();
                for (i, (_, sequence, envelope)) in records.iter().enumerate() {
                    let earlier = first_of.get(&envelope.event_id).map(|&j| &records[j].1);
                    if earlier.is_none_or(|e| sequence::compare(sequence, e) == Ordering::Less) {
                        first_of.insert(envelope.event_id, i);
                    }
                }
                let claims: Vec<(EventId, String)> = first_of
                    .iter()
                    .map(|(id, &i)| (*id, position(&records[i].0, &records[i].1)))
                    .collect();
                let result = self
                    .store
                    .claim_events(&order_id, &claims)
                    .await
                    .map(|owned| {
                        let winners: BTreeMap<usize, bool> =
                            first_of.values().copied().zip(owned).collect();
                        (0..records.len())
                            .map(|i| winners.get(&i).copied().unwrap_or(false))
                            .collect()
                    });
                (records, result)
            })
            .buffer_unordered(CONCURRENT_WRITES)
            .collect()
            .await;
        let mut contributions = Vec::new();
        let mut duplicates = 0usize;
        for (records, result) in claimed {
            match result {
                Ok(owned) => {
                    for ((shard, sequence, envelope), owned) in records.into_iter().zip(owned) {
                        if owned {
                            contributions.push(Contribution {
                                effect: Effect::of(&envelope),
                                shard,
                                sequence,
                            });
                        } else {
                            duplicates += 1;
                        }
                    }
                }
                Err(err) => {
                    warn!(error = %err, "claim failed; will retry");
                    for (_, sequence, _) in &records {
                        retry.at(sequence);
                    }
                }
            }
        }
        // Only records before the retry point count now; the rest come again.
        contributions.retain(|c| retry.before(&c.sequence));
        contributions.sort_by(|a, b| sequence::compare(&a.sequence, &b.sequence));

        // 3. Fold, per shard (watermarks are per shard), one delta per counter item.
        let mut by_item: BTreeMap<(String, CounterItem), Vec<usize>> = BTreeMap::new();
        let mut fold = Fold::default();
        for (index, contribution) in contributions.iter().enumerate() {
            fold.add(&contribution.effect);
            for item in Fold::items_of(&contribution.effect) {
                by_item
                    .entry((contribution.shard.clone(), item))
                    .or_default()
                    .push(index);
            }
        }

        // 4. Write counters and customer sets.
        let writes = by_item.len() + fold.customers.len();
        let counter_failures: Vec<WriteFailure> = stream::iter(by_item.iter())
            .map(|((shard, item), indexes)| {
                self.write_item(shard, item, indexes, &contributions, deadline)
            })
            .buffer_unordered(CONCURRENT_WRITES)
            .filter_map(|r| async move { r.err() })
            .collect()
            .await;
        let customer_failures: Vec<WriteFailure> = stream::iter(fold.customers.iter())
            .map(|((bucket, shard), ids)| {
                let sequences: Vec<String> = contributions
                    .iter()
                    .filter(|c| {
                        c.effect
                            .customer
                            .as_ref()
                            .is_some_and(|id| ids.contains(id))
                    })
                    .map(|c| c.sequence.clone())
                    .collect();
                async move {
                    if !deadline.allows_more() {
                        let name = format!("{bucket}/customers#{shard:02}");
                        return Err(WriteFailure::of(near_deadline(), sequences, &name));
                    }
                    match self.store.add_customers(bucket, *shard, ids).await {
                        Ok(()) => {
                            metrics::counter!(metric::AGGREGATE_WRITES, "kind" => "customers")
                                .increment(1);
                            Ok(())
                        }
                        Err(err) => Err(WriteFailure::of(
                            err,
                            sequences,
                            &format!("{bucket}/customers#{shard:02}"),
                        )),
                    }
                }
            })
            .buffer_unordered(CONCURRENT_WRITES)
            .filter_map(|r| async move { r.err() })
            .collect()
            .await;
        let mut refused: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for failure in counter_failures.into_iter().chain(customer_failures) {
            match failure {
                WriteFailure::Retry(sequence) => retry.at(&sequence),
                WriteFailure::Refused { sequences, error } => {
                    for sequence in sequences {
                        refused.entry(sequence).or_default().push(error.clone());
                    }
                }
            }
        }

        // 5. What the store refused can never be written as sent: retrying would stop the
        //    shard forever. Those records go to the DLQ (the alarm fires; the repair is a
        //    rebuild of their buckets) and the shard moves on. Records that come again
        //    anyway (after the retry point) are left to that attempt.
        let raw: BTreeMap<&str, &KinesisEventRecord> = records
            .iter()
            .map(|r| (r.kinesis.sequence_number.as_str(), r))
            .collect();
        for (sequence, errors) in refused {
            let Some(record) = raw
                .get(sequence.as_str())
                .filter(|_| retry.before(&sequence))
            else {
                continue;
            };
            let error = format!(
                "{}; repair with orders-admin rebuild-aggregates over the order's day",
                errors.join("; ")
            );
            match self.letters().kinesis(record, "unwritable", error).await {
                Ok(()) => dead_lettered += 1,
                Err(e) => {
                    warn!(error = %e, %sequence, "dead-lettering failed; will retry");
                    retry.at(&sequence);
                }
            }
        }

        metrics::counter!(metric::DUPLICATE_RECORDS).increment(duplicates as u64);
        info!(
            records = records.len(),
            counted = contributions.len(),
            duplicates,
            dead_lettered,
            writes,
            retry_from = retry.sequence().unwrap_or(""),
            aws_requests = %format_counts(&take_request_counts()),
            "batch aggregated"
        );
        retry.kinesis_response(records.len())
    }

    /// Writes one counter item.
    async fn write_item(
        &self,
        shard: &str,
        item: &CounterItem,
        indexes: &[usize],
        all: &[Contribution],
        deadline: Deadline,
    ) -> Result<(), WriteFailure> {
        let records: Vec<&Contribution> = indexes.iter().map(|&i| &all[i]).collect();
        let result = if deadline.allows_more() {
            self.try_write_item(shard, item, &records).await
        } else {
            Err(near_deadline())
        };
        result.map_err(|err| {
            let sequences = records.iter().map(|c| c.sequence.clone()).collect();
            let name = format!("{}/{}", item.bucket(), item.sort_key());
            WriteFailure::of(err, sequences, &name)
        })
    }

    async fn try_write_item(
        &self,
        shard: &str,
        item: &CounterItem,
        records: &[&Contribution],
    ) -> Result<(), OrderError> {
        let delta = delta_for(item, records.iter().copied());
        if delta.counter_count() <= MAX_COUNTERS_PER_WRITE {
            return self.write_run(shard, item, records, delta).await;
        }
        // Too many counters for one update expression: consecutive runs of records, each
        // its own conditional write. The watermark makes each run exactly-once on its own.
        for run in runs(item, records) {
            let delta = delta_for(item, run.iter().copied());
            self.write_run(shard, item, &run, delta).await?;
        }
        Ok(())
    }

    /// Adds `delta`, the change `records` make to `item`, unless the item has seen them.
    async fn write_run(
        &self,
        shard: &str,
        item: &CounterItem,
        records: &[&Contribution],
        delta: ItemDelta,
    ) -> Result<(), OrderError> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(());
        };
        match self
            .store
            .add_counters(item, shard, &first.sequence, &last.sequence, &delta)
            .await?
        {
            CountersApplied::Done => {
                count_counter_write();
                Ok(())
            }
            CountersApplied::Behind(watermark) => {
                // Redelivery: keep only what the item has not seen yet.
                let newer: Vec<&Contribution> = records
                    .iter()
                    .copied()
                    .filter(|c| sequence::compare(&c.sequence, &watermark) == Ordering::Greater)
                    .collect();
                if newer.is_empty() {
                    return Ok(());
                }
                let delta = delta_for(item, newer.iter().copied());
                if self
                    .store
                    .add_counters_after(item, shard, &watermark, &last.sequence, &delta)
                    .await?
                {
                    count_counter_write();
                    Ok(())
                } else {
                    Err(OrderError::Unavailable(
                        "counter item changed concurrently (more than one consumer per shard?)"
                            .into(),
                    ))
                }
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
}

fn count_counter_write() {
    metrics::counter!(metric::AGGREGATE_WRITES, "kind" => "counter").increment(1);
}

/// The part of `records`' effects that lands in `item`.
fn delta_for<'a>(item: &CounterItem, records: impl Iterator<Item = &'a Contribution>) -> ItemDelta {
    let mut fold = Fold::default();
    for contribution in records {
        fold.add(&contribution.effect);
    }
    fold.counters.remove(item).unwrap_or_default()
}

/// Consecutive runs of `records` whose changes to `item` fit one write each (a record alone
/// always does: see [`MAX_COUNTERS_PER_WRITE`]).
fn runs<'a>(item: &CounterItem, records: &[&'a Contribution]) -> Vec<Vec<&'a Contribution>> {
    let mut out: Vec<Vec<&Contribution>> = Vec::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    for &record in records {
        let mine: Vec<String> = delta_for(item, std::iter::once(record))
            .attributes()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        let added = mine.iter().filter(|n| !names.contains(*n)).count();
        match out.last_mut() {
            Some(run) if names.len() + added <= MAX_COUNTERS_PER_WRITE => run.push(record),
            _ => {
                out.push(vec![record]);
                names.clear();
            }
        }
        names.extend(mine);
    }
    out
}
