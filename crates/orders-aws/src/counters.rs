//! The watermarked counter writes of the stream aggregates (order analytics and storefront
//! activity), written once. Each counter item gets one conditional write per stream shard
//! per batch: the delta of the batch's records that touch it, applied only on top of the
//! shard's watermark it was computed against (`orders_core::ports::AnalyticsStore`), so a
//! redelivered batch, a bisected half or a partial retry never counts twice. A delta with
//! more counters than one update expression may hold is written as consecutive runs of
//! records, each exactly once on its own.
//!
//! What differs between the aggregates — which effect lands in which item, and the store
//! call — is the [`Counters`] an aggregate implements.

use crate::deadline::Deadline;
use async_trait::async_trait;
use orders_core::analytics::{CounterItem, MAX_COUNTERS_PER_WRITE};
use orders_core::ports::CountersApplied;
use orders_core::{OrderError, sequence};
use std::cmp::Ordering;
use std::collections::BTreeSet;
use tracing::warn;

/// A step not started because the invocation is about to end (retryable: it comes again).
pub fn near_deadline() -> OrderError {
    OrderError::Unavailable("the invocation's deadline is near; not started".into())
}

/// Why a write did not land.
#[derive(Debug)]
pub enum WriteFailure {
    /// Worth another attempt: redeliver from this record (the item's first in the batch).
    Retry(String),
    /// The store refused the write as sent (a limit, a bug): the records that touched it.
    Refused {
        sequences: Vec<String>,
        error: String,
    },
}

impl WriteFailure {
    /// One rule for every write: [`OrderError::is_retryable`]. `item` names what was
    /// written, for the logs and the dead letters.
    pub fn of(err: OrderError, mut sequences: Vec<String>, item: &str) -> Self {
        if err.is_retryable() {
            warn!(error = %err, item, "write failed; will retry");
            sequences.sort_by(|a, b| sequence::compare(a, b));
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

/// One aggregate's counter items and the store that keeps them.
#[async_trait]
pub trait Counters: Sync {
    /// A record that contributes (its effect, and where it is on its shard).
    type Record: Sync;
    /// The change of some records to one item.
    type Delta: Send + Sync;

    fn sequence(record: &Self::Record) -> &str;

    /// The part of `records`' effects that lands in `item`.
    fn delta(item: &CounterItem, records: &[&Self::Record]) -> Self::Delta;

    /// The stored counters `delta` changes (one update expression holds at most
    /// [`MAX_COUNTERS_PER_WRITE`]).
    fn names(delta: &Self::Delta) -> Vec<String>;

    /// Adds `delta` unless the shard's watermark on `item` has reached `first`.
    async fn add(
        &self,
        item: &CounterItem,
        shard: &str,
        first: &str,
        last: &str,
        delta: &Self::Delta,
    ) -> Result<CountersApplied, OrderError>;

    /// Adds `delta` if the shard's watermark on `item` is exactly `watermark`.
    async fn add_after(
        &self,
        item: &CounterItem,
        shard: &str,
        watermark: &str,
        last: &str,
        delta: &Self::Delta,
    ) -> Result<bool, OrderError>;

    /// One write applied (for the metrics).
    fn written(&self);
}

/// Writes `records`' changes to `item` (records of one shard, in stream order); `name`
/// is the item as logs and dead letters show it.
pub async fn write_item<C: Counters>(
    counters: &C,
    shard: &str,
    item: &CounterItem,
    records: &[&C::Record],
    deadline: Deadline,
    name: &str,
) -> Result<(), WriteFailure> {
    let result = if deadline.allows_more() {
        try_write_item(counters, shard, item, records).await
    } else {
        Err(near_deadline())
    };
    result.map_err(|err| {
        let sequences = records.iter().map(|r| C::sequence(r).to_owned()).collect();
        WriteFailure::of(err, sequences, name)
    })
}

async fn try_write_item<C: Counters>(
    counters: &C,
    shard: &str,
    item: &CounterItem,
    records: &[&C::Record],
) -> Result<(), OrderError> {
    let delta = C::delta(item, records);
    if C::names(&delta).len() <= MAX_COUNTERS_PER_WRITE {
        return write_run(counters, shard, item, records, delta).await;
    }
    // Too many counters for one update expression: consecutive runs of records, each its
    // own conditional write. The watermark makes each run exactly-once on its own.
    for run in runs(records, |one| C::names(&C::delta(item, one))) {
        let delta = C::delta(item, &run);
        write_run(counters, shard, item, &run, delta).await?;
    }
    Ok(())
}

/// Adds `delta`, the change `records` make to `item`, unless the item has seen them.
async fn write_run<C: Counters>(
    counters: &C,
    shard: &str,
    item: &CounterItem,
    records: &[&C::Record],
    delta: C::Delta,
) -> Result<(), OrderError> {
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Ok(());
    };
    let (first, last) = (C::sequence(first), C::sequence(last));
    match counters.add(item, shard, first, last, &delta).await? {
        CountersApplied::Done => {
            counters.written();
            Ok(())
        }
        CountersApplied::Behind(watermark) => {
            // Redelivery: keep only what the item has not seen yet.
            let newer: Vec<&C::Record> = records
                .iter()
                .copied()
                .filter(|r| sequence::compare(C::sequence(r), &watermark) == Ordering::Greater)
                .collect();
            if newer.is_empty() {
                return Ok(());
            }
            let delta = C::delta(item, &newer);
            if counters
                .add_after(item, shard, &watermark, last, &delta)
                .await?
            {
                counters.written();
                Ok(())
            } else {
                Err(OrderError::Unavailable(
                    "counter item changed concurrently (more than one consumer per shard?)".into(),
                ))
            }
        }
    }
}

/// Consecutive runs of `records` whose changes to `item` fit one write each (a record alone
/// always does: see [`MAX_COUNTERS_PER_WRITE`]); `names` are the counters some records
/// change.
fn runs<'a, R>(records: &[&'a R], names: impl Fn(&[&'a R]) -> Vec<String>) -> Vec<Vec<&'a R>> {
    let mut out: Vec<Vec<&R>> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for &record in records {
        let mine = names(&[record]);
        let added = mine.iter().filter(|n| !seen.contains(*n)).count();
        match out.last_mut() {
            Some(run) if seen.len() + added <= MAX_COUNTERS_PER_WRITE => run.push(record),
            _ => {
                out.push(vec![record]);
                seen.clear();
            }
        }
        seen.extend(mine);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_split_where_the_next_record_would_overflow_a_write() {
        // Each record changes 100 counters of its own: two fit one write (at most 297), a
        // third does not.
        let records: Vec<u32> = (0..7).collect();
        let refs: Vec<&u32> = records.iter().collect();
        let names = |rs: &[&u32]| {
            rs.iter()
                .flat_map(|r| (0..100).map(move |i| format!("{r}#{i}")))
                .collect()
        };
        let sizes: Vec<usize> = runs(&refs, names).iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 2, 2, 1]);
    }
}
