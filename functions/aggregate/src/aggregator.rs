//! The batch handler: decode, claim, fold, write.

use async_trait::async_trait;
use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use aws_lambda_events::streams::KinesisEventResponse;
use futures::stream::{self, StreamExt};
use orders_aws::batch::{DeadLetters, RetryPoint, kinesis_shard};
use orders_aws::counters::{self, Counters, WriteFailure, near_deadline};
use orders_aws::deadline::Deadline;
use orders_aws::metrics::{format_counts, take_request_counts};
use orders_aws::telemetry::metric;
use orders_core::analytics::{CounterItem, Effect, Fold, ItemDelta, position};
use orders_core::ports::{AnalyticsStore, Clock, CountersApplied, DeadLetterQueue};
use orders_core::sequence;
use orders_core::{EventEnvelope, EventId, OrderError, OrderId};
use std::cmp::Ordering;
use std::collections::BTreeMap;
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
        let name = format!("{}/{}", item.bucket(), item.sort_key());
        counters::write_item(
            &OrderCounters(&self.store),
            shard,
            item,
            &records,
            deadline,
            &name,
        )
        .await
    }

    fn letters(&self) -> DeadLetters<'_, D> {
        DeadLetters {
            queue: &self.dead_letters,
            clock: self.clock.as_ref(),
            function: &self.function_name,
        }
    }
}

/// The order analytics' counter items, for [`counters::write_item`].
struct OrderCounters<'a, A>(&'a A);

#[async_trait]
impl<A: AnalyticsStore> Counters for OrderCounters<'_, A> {
    type Record = Contribution;
    type Delta = ItemDelta;

    fn sequence(record: &Contribution) -> &str {
        &record.sequence
    }

    fn delta(item: &CounterItem, records: &[&Contribution]) -> ItemDelta {
        let mut fold = Fold::default();
        for contribution in records {
            fold.add(&contribution.effect);
        }
        fold.counters.remove(item).unwrap_or_default()
    }

    fn names(delta: &ItemDelta) -> Vec<String> {
        delta
            .attributes()
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }

    async fn add(
        &self,
        item: &CounterItem,
        shard: &str,
        first: &str,
        last: &str,
        delta: &ItemDelta,
    ) -> Result<CountersApplied, OrderError> {
        self.0.add_counters(item, shard, first, last, delta).await
    }

    async fn add_after(
        &self,
        item: &CounterItem,
        shard: &str,
        watermark: &str,
        last: &str,
        delta: &ItemDelta,
    ) -> Result<bool, OrderError> {
        self.0
            .add_counters_after(item, shard, watermark, last, delta)
            .await
    }

    fn written(&self) {
        metrics::counter!(metric::AGGREGATE_WRITES, "kind" => "counter").increment(1);
    }
}
