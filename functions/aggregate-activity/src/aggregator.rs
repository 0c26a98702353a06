//! The batch handler: decode, claim, fold, write — the order aggregate's steps
//! (`functions/aggregate`) over activity's items.

use async_trait::async_trait;
use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use aws_lambda_events::streams::KinesisEventResponse;
use futures::stream::{self, StreamExt};
use orders_aws::batch::{DeadLetters, RetryPoint, kinesis_shard};
use orders_aws::counters::{self, Counters, WriteFailure, near_deadline};
use orders_aws::deadline::Deadline;
use orders_aws::metrics::{format_counts, take_request_counts};
use orders_aws::telemetry::metric;
use orders_core::activity::{ActivityDelta, ActivityEffect, ActivityEnvelope, ActivityFold};
use orders_core::analytics::{CounterItem, position};
use orders_core::ports::{ActivityStore, Clock, CountersApplied, DeadLetterQueue};
use orders_core::{OrderError, sequence};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tracing::{info, warn};

/// Concurrent writes per batch: items are independent, and a batch touches many of them.
const CONCURRENT_WRITES: usize = 16;

pub struct ActivityAggregator<A, D> {
    pub store: A,
    pub dead_letters: D,
    pub clock: Arc<dyn Clock>,
    pub function_name: String,
}

/// A record read as an event: its shard, sequence number and envelope.
struct Decoded {
    shard: String,
    sequence: String,
    envelope: ActivityEnvelope,
}

/// A decoded record that owns its event, and so contributes.
struct Contribution {
    shard: String,
    sequence: String,
    effect: ActivityEffect,
}

/// One claim group's records and, per record, whether it owns its event.
type GroupClaims = (Vec<Decoded>, Result<Vec<bool>, OrderError>);

impl<A: ActivityStore, D: DeadLetterQueue> ActivityAggregator<A, D> {
    /// A batch with no deadline (tests, tools).
    pub async fn handle(&self, event: KinesisEvent) -> KinesisEventResponse {
        self.handle_until(event, Deadline::none()).await
    }

    /// A batch; near `deadline` no claim or write starts, and the records they would have
    /// covered are reported for retry (the watermarks keep the retry exact).
    pub async fn handle_until(
        &self,
        event: KinesisEvent,
        deadline: Deadline,
    ) -> KinesisEventResponse {
        let mut retry = RetryPoint::default();
        let records = event.records;

        // 1. Decode; dead-letter what can never be read; skip types this build does not know.
        let mut decoded = Vec::with_capacity(records.len());
        let mut dead_lettered = 0usize;
        for record in &records {
            let sequence = record.kinesis.sequence_number.clone();
            match ActivityEnvelope::decode(&record.kinesis.data) {
                Ok(Some(envelope)) => decoded.push(Decoded {
                    shard: kinesis_shard(record),
                    sequence,
                    envelope,
                }),
                Ok(None) => {}
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

        // 2. Claim each event for its first record, one write per session-minute: copies
        //    a client or the API sent again drop out here.
        let mut groups: BTreeMap<String, Vec<Decoded>> = BTreeMap::new();
        for record in decoded {
            groups
                .entry(record.envelope.event.claim_group())
                .or_default()
                .push(record);
        }
        let claimed: Vec<GroupClaims> = stream::iter(groups)
            .map(|(group, records)| async move {
                if !deadline.allows_more() {
                    return (records, Err(near_deadline()));
                }
                let result = self.claim(&group, &records).await;
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
                    for (record, owned) in records.into_iter().zip(owned) {
                        if owned {
                            contributions.push(Contribution {
                                effect: ActivityEffect::of(&record.envelope.event),
                                shard: record.shard,
                                sequence: record.sequence,
                            });
                        } else {
                            duplicates += 1;
                        }
                    }
                }
                Err(err) => {
                    warn!(error = %err, "claim failed; will retry");
                    for record in &records {
                        retry.at(&record.sequence);
                    }
                }
            }
        }
        // Only records before the retry point count now; the rest come again.
        contributions.retain(|c| retry.before(&c.sequence));
        contributions.sort_by(|a, b| sequence::compare(&a.sequence, &b.sequence));

        // 3. Fold, per shard (watermarks are per shard), one delta per counter item; sets
        //    need no watermark (adding an id twice changes nothing).
        let mut by_item: BTreeMap<(String, CounterItem), Vec<usize>> = BTreeMap::new();
        let mut fold = ActivityFold::default();
        let mut set_records: BTreeMap<SetKey, Vec<usize>> = BTreeMap::new();
        for (index, contribution) in contributions.iter().enumerate() {
            let mut one = ActivityFold::default();
            one.add(&contribution.effect);
            for item in one.counters.keys() {
                by_item
                    .entry((contribution.shard.clone(), item.clone()))
                    .or_default()
                    .push(index);
            }
            for key in set_keys(&one) {
                set_records.entry(key).or_default().push(index);
            }
            fold.merge(&one);
        }

        // 4. Write counters and sets.
        let writes = by_item.len() + set_records.len();
        let counter_failures: Vec<WriteFailure> = stream::iter(by_item.iter())
            .map(|((shard, item), indexes)| {
                self.write_item(shard, item, indexes, &contributions, deadline)
            })
            .buffer_unordered(CONCURRENT_WRITES)
            .filter_map(|r| async move { r.err() })
            .collect()
            .await;
        let set_failures: Vec<WriteFailure> = stream::iter(set_records.iter())
            .map(|(key, indexes)| {
                let sequences: Vec<String> = indexes
                    .iter()
                    .map(|&i| contributions[i].sequence.clone())
                    .collect();
                let fold = &fold;
                async move {
                    let name = key.name();
                    if !deadline.allows_more() {
                        return Err(WriteFailure::of(near_deadline(), sequences, &name));
                    }
                    match self.write_set(key, fold).await {
                        Ok(()) => {
                            metrics::counter!(metric::AGGREGATE_WRITES, "kind" => "activity-sets")
                                .increment(1);
                            Ok(())
                        }
                        Err(err) => Err(WriteFailure::of(err, sequences, &name)),
                    }
                }
            })
            .buffer_unordered(CONCURRENT_WRITES)
            .filter_map(|r| async move { r.err() })
            .collect()
            .await;
        let mut refused: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for failure in counter_failures.into_iter().chain(set_failures) {
            match failure {
                WriteFailure::Retry(sequence) => retry.at(&sequence),
                WriteFailure::Refused { sequences, error } => {
                    for sequence in sequences {
                        refused.entry(sequence).or_default().push(error.clone());
                    }
                }
            }
        }

        // 5. What the store refused can never be written as sent: those records go to the
        //    DLQ (the alarm fires) and the shard moves on.
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
            match self
                .letters()
                .kinesis(record, "unwritable", errors.join("; "))
                .await
            {
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
            "activity batch aggregated"
        );
        retry.kinesis_response(records.len())
    }

    /// Claims the events of one group for their first record in the batch; for each
    /// record, whether it owns its event.
    async fn claim(&self, group: &str, records: &[Decoded]) -> Result<Vec<bool>, OrderError> {
        // A copy inside the batch: only its first record may claim the event.
        let mut first_of: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, record) in records.iter().enumerate() {
            let id = record.envelope.event.event_id.as_str();
            let earlier = first_of.get(id).map(|&j| &records[j].sequence);
            if earlier.is_none_or(|e| sequence::compare(&record.sequence, e) == Ordering::Less) {
                first_of.insert(id, i);
            }
        }
        let claims: Vec<(String, String)> = first_of
            .iter()
            .map(|(id, &i)| {
                let record = &records[i];
                ((*id).to_owned(), position(&record.shard, &record.sequence))
            })
            .collect();
        let owned = self.store.claim_activity(group, &claims).await?;
        let winners: BTreeMap<usize, bool> = first_of.values().copied().zip(owned).collect();
        Ok((0..records.len())
            .map(|i| winners.get(&i).copied().unwrap_or(false))
            .collect())
    }

    async fn write_set(&self, key: &SetKey, fold: &ActivityFold) -> Result<(), OrderError> {
        match key {
            SetKey::Sessions(bucket, set, shard) => {
                let ids = &fold.sessions[&(*bucket, *set, *shard)];
                self.store.add_sessions(bucket, *set, *shard, ids).await
            }
            SetKey::Customers(bucket, shard) => {
                let ids = &fold.customers[&(*bucket, *shard)];
                self.store.add_active_customers(bucket, *shard, ids).await
            }
        }
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
        let name = format!("{}/activity.{}", item.bucket(), item.sort_key());
        counters::write_item(
            &ActivityCounters(&self.store),
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

/// A set shard a batch adds to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SetKey {
    Sessions(
        orders_core::analytics::Bucket,
        orders_core::activity::SessionSet,
        u32,
    ),
    Customers(orders_core::analytics::Bucket, u32),
}

impl SetKey {
    fn name(&self) -> String {
        match self {
            SetKey::Sessions(bucket, set, shard) => {
                format!("{bucket}/activity.{}", set.sort_key(*shard))
            }
            SetKey::Customers(bucket, shard) => format!("{bucket}/activity.customers#{shard:02}"),
        }
    }
}

fn set_keys(fold: &ActivityFold) -> BTreeSet<SetKey> {
    fold.sessions
        .keys()
        .map(|(b, set, shard)| SetKey::Sessions(*b, *set, *shard))
        .chain(
            fold.customers
                .keys()
                .map(|(b, shard)| SetKey::Customers(*b, *shard)),
        )
        .collect()
}

/// Activity's counter items, for [`counters::write_item`].
struct ActivityCounters<'a, A>(&'a A);

#[async_trait]
impl<A: ActivityStore> Counters for ActivityCounters<'_, A> {
    type Record = Contribution;
    type Delta = ActivityDelta;

    fn sequence(record: &Contribution) -> &str {
        &record.sequence
    }

    fn delta(item: &CounterItem, records: &[&Contribution]) -> ActivityDelta {
        let mut fold = ActivityFold::default();
        for contribution in records {
            fold.add(&contribution.effect);
        }
        fold.counters.remove(item).unwrap_or_default()
    }

    fn names(delta: &ActivityDelta) -> Vec<String> {
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
        delta: &ActivityDelta,
    ) -> Result<CountersApplied, OrderError> {
        self.0.add_activity(item, shard, first, last, delta).await
    }

    async fn add_after(
        &self,
        item: &CounterItem,
        shard: &str,
        watermark: &str,
        last: &str,
        delta: &ActivityDelta,
    ) -> Result<bool, OrderError> {
        self.0
            .add_activity_after(item, shard, watermark, last, delta)
            .await
    }

    fn written(&self) {
        metrics::counter!(metric::AGGREGATE_WRITES, "kind" => "activity").increment(1);
    }
}
