//! What every stream consumer does around its own decisions, written once: records that can
//! never be handled go to the consumer's DLQ whole and with why; records are grouped by the
//! order they belong to; the batch's answer names the lowest record to retry (Lambda resumes
//! the shard there, so naming more changes nothing); batch metrics are counted.
//! process-order keeps only its per-order decision, the relay its rounds of puts, the
//! aggregate its claim / fold / write steps.

use crate::telemetry::metric;
use aws_lambda_events::event::dynamodb::EventRecord;
use aws_lambda_events::event::kinesis::KinesisEventRecord;
use aws_lambda_events::streams::{
    DynamoDbBatchItemFailure, DynamoDbEventResponse, KinesisBatchItemFailure, KinesisEventResponse,
};
use orders_core::ports::{Clock, DeadLetter, DeadLetterQueue};
use orders_core::{OrderError, sequence};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::Hash;

/// The lowest sequence number of the batch that must be retried, if any.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RetryPoint(Option<String>);

impl RetryPoint {
    /// `sequence` must be retried (and so everything after it).
    pub fn at(&mut self, sequence: &str) {
        if self
            .0
            .as_deref()
            .is_none_or(|s| sequence::compare(sequence, s) == Ordering::Less)
        {
            self.0 = Some(sequence.to_owned());
        }
    }

    /// Whether `sequence` comes before the retry point (so this attempt handles it).
    pub fn before(&self, sequence: &str) -> bool {
        self.0
            .as_deref()
            .is_none_or(|s| sequence::compare(sequence, s) == Ordering::Less)
    }

    pub fn sequence(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// Counts the batch (size, and whether it is handed back) and answers a Kinesis mapping.
    pub fn kinesis_response(self, records: usize) -> KinesisEventResponse {
        count_batch(records, &self);
        let mut response = KinesisEventResponse::default();
        if let Some(sequence) = self.0 {
            let mut failure = KinesisBatchItemFailure::default();
            failure.item_identifier = Some(sequence);
            response.batch_item_failures.push(failure);
        }
        response
    }

    /// Counts the batch and answers a DynamoDB-stream mapping.
    pub fn dynamodb_response(self, records: usize) -> DynamoDbEventResponse {
        count_batch(records, &self);
        let mut response = DynamoDbEventResponse::default();
        if let Some(sequence) = self.0 {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence);
            response.batch_item_failures.push(failure);
        }
        response
    }
}

fn count_batch(records: usize, retry: &RetryPoint) {
    metrics::histogram!(metric::BATCH_SIZE).record(records as f64);
    metrics::counter!(metric::BATCH_ITEM_FAILURES).increment(u64::from(retry.0.is_some()));
}

/// `records` grouped by `key`: groups in the order of their first record, each in order.
pub fn group_by<R, K: Eq + Hash>(records: &[R], key: impl Fn(&R) -> K) -> Vec<Vec<&R>> {
    let mut groups: Vec<Vec<&R>> = Vec::new();
    let mut index: HashMap<K, usize> = HashMap::new();
    for record in records {
        let i = *index.entry(key(record)).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[i].push(record);
    }
    groups
}

/// The Kinesis shard a record came from: its `eventID` is `shardId-…:sequence`.
pub fn kinesis_shard(record: &KinesisEventRecord) -> String {
    record
        .event_id
        .as_deref()
        .and_then(|id| id.split(':').next())
        .unwrap_or("unknown-shard")
        .to_owned()
}

/// A consumer's dead-letter queue, as its records go there: the whole record, why, which
/// function, when.
pub struct DeadLetters<'a, D> {
    pub queue: &'a D,
    pub clock: &'a dyn Clock,
    pub function: &'a str,
}

impl<D: DeadLetterQueue> DeadLetters<'_, D> {
    /// A Kinesis record, with its shard made explicit (it is only the `eventID` prefix in
    /// Lambda's record) for whoever reads or replays the letter.
    pub async fn kinesis(
        &self,
        record: &KinesisEventRecord,
        reason: &str,
        error: String,
    ) -> Result<(), OrderError> {
        let mut source = to_value(record)?;
        source["shardId"] = serde_json::Value::String(kinesis_shard(record));
        self.send(source, reason, error).await
    }

    /// A DynamoDB-stream record.
    pub async fn dynamodb(
        &self,
        record: &EventRecord,
        reason: &str,
        error: String,
    ) -> Result<(), OrderError> {
        self.send(to_value(record)?, reason, error).await
    }

    async fn send(
        &self,
        record: serde_json::Value,
        reason: &str,
        error: String,
    ) -> Result<(), OrderError> {
        self.queue
            .send(&DeadLetter {
                reason: reason.to_owned(),
                error,
                function: self.function.to_owned(),
                dead_lettered_at: self.clock.now(),
                record,
            })
            .await?;
        metrics::counter!(metric::DEAD_LETTERED).increment(1);
        Ok(())
    }
}

fn to_value(record: &impl Serialize) -> Result<serde_json::Value, OrderError> {
    serde_json::to_value(record).map_err(|e| OrderError::Unexpected(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_point_is_the_lowest_sequence_numerically() {
        let mut retry = RetryPoint::default();
        assert!(retry.before("5"));
        retry.at("49590338271490256608559692538361571095921575989136588898");
        retry.at("9");
        retry.at("10");
        assert_eq!(retry.sequence(), Some("9"));
        assert!(retry.before("8") && !retry.before("9") && !retry.before("10"));
        let response = retry.kinesis_response(3);
        assert_eq!(response.batch_item_failures.len(), 1);
        assert_eq!(
            response.batch_item_failures[0].item_identifier.as_deref(),
            Some("9")
        );
        assert!(
            RetryPoint::default()
                .dynamodb_response(1)
                .batch_item_failures
                .is_empty()
        );
    }

    #[test]
    fn groups_keep_first_seen_order_and_record_order() {
        let records = ["a1", "b1", "a2", "c1", "b2"];
        let groups = group_by(&records, |r| r.as_bytes()[0]);
        assert_eq!(
            groups,
            vec![vec![&"a1", &"a2"], vec![&"b1", &"b2"], vec![&"c1"]]
        );
    }
}
