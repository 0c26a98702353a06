//! Reading a range of a shard back, and re-putting records.

use crate::sequence::SequenceNumber;
use anyhow::Context as _;
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::ShardIteratorType;
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// A stream by name or by ARN (the APIs accept either).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamRef {
    Name(String),
    Arn(String),
}

impl StreamRef {
    pub fn parse(text: &str) -> Self {
        if text.starts_with("arn:") {
            StreamRef::Arn(text.to_owned())
        } else {
            StreamRef::Name(text.to_owned())
        }
    }

    fn name(&self) -> Option<String> {
        match self {
            StreamRef::Name(name) => Some(name.clone()),
            StreamRef::Arn(_) => None,
        }
    }

    fn arn(&self) -> Option<String> {
        match self {
            StreamRef::Arn(arn) => Some(arn.clone()),
            StreamRef::Name(_) => None,
        }
    }
}

impl fmt::Display for StreamRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamRef::Name(s) | StreamRef::Arn(s) => f.write_str(s),
        }
    }
}

/// The ids of every shard of `stream` (open and closed), as consumers name them.
pub async fn shard_ids(client: &Client, stream: &StreamRef) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut request = client.list_shards();
        request = match &next {
            Some(token) => request.next_token(token),
            None => request
                .set_stream_name(stream.name())
                .set_stream_arn(stream.arn()),
        };
        let output = request
            .send()
            .await
            .with_context(|| format!("listing the shards of {stream}"))?;
        ids.extend(output.shards().iter().map(|s| s.shard_id().to_owned()));
        match output.next_token {
            Some(token) => next = Some(token),
            None => return Ok(ids),
        }
    }
}

/// A record to (re-)put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    pub partition_key: String,
    pub data: Vec<u8>,
    /// Where it was read from (its new sequence number will differ).
    pub sequence_number: String,
}

/// The result of reading a range back.
#[derive(Debug)]
pub enum RangeRead {
    /// Every record from start to end inclusive, in shard order.
    Found(Vec<StreamRecord>),
    /// The range is not (entirely) on the stream any more, and why.
    Gone(String),
}

/// Consecutive empty GetRecords answers tolerated while the shard is not caught up.
const MAX_EMPTY_POLLS: usize = 50;

/// Reads `start..=end` of `shard` back: `AT_SEQUENCE_NUMBER start`, then GetRecords until
/// past `end`. The range counts as gone unless its first record is exactly `start` and
/// `end` is reached: a trimmed start, an unknown shard or a range beyond the tip of the
/// shard are all reported rather than replayed in part.
pub async fn read_range(
    client: &Client,
    stream: &StreamRef,
    shard: &str,
    start: &SequenceNumber,
    end: &SequenceNumber,
) -> anyhow::Result<RangeRead> {
    if start > end {
        return Ok(RangeRead::Gone(format!("empty range: {start} > {end}")));
    }
    let iterator = client
        .get_shard_iterator()
        .set_stream_name(stream.name())
        .set_stream_arn(stream.arn())
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .starting_sequence_number(start.as_str())
        .send()
        .await;
    let mut iterator = match iterator {
        Ok(output) => output.shard_iterator,
        Err(err) => {
            let err = err.into_service_error();
            if err.is_resource_not_found_exception() || err.is_invalid_argument_exception() {
                return Ok(RangeRead::Gone(format!(
                    "no iterator at {start} on {shard}: {}",
                    err.meta().message().unwrap_or("no message")
                )));
            }
            return Err(err).context(format!("GetShardIterator on {stream} {shard}"));
        }
    };
    let mut records = Vec::new();
    let mut empty_polls = 0;
    loop {
        let Some(current) = iterator.take() else {
            return Ok(RangeRead::Gone(format!(
                "shard {shard} ends (closed) before {end}"
            )));
        };
        let output = client
            .get_records()
            .set_stream_arn(stream.arn())
            .shard_iterator(current)
            .send()
            .await
            .with_context(|| format!("GetRecords on {stream} {shard}"))?;
        for record in output.records() {
            let sequence = SequenceNumber::parse(record.sequence_number())?;
            if records.is_empty() && sequence != *start {
                return Ok(RangeRead::Gone(format!(
                    "the first record at or after {start} is {sequence}: the start of the \
                     range is no longer retained"
                )));
            }
            if sequence > *end {
                return Ok(RangeRead::Found(records));
            }
            records.push(StreamRecord {
                partition_key: record.partition_key().unwrap_or_default().to_owned(),
                data: record.data().as_ref().to_vec(),
                sequence_number: sequence.to_string(),
            });
            if sequence == *end {
                return Ok(RangeRead::Found(records));
            }
        }
        if output.records().is_empty() {
            if output.millis_behind_latest() == Some(0) {
                return Ok(RangeRead::Gone(match records.last() {
                    None => format!("no record at {start} on {shard} (reached the tip)"),
                    Some(last) => format!(
                        "reached the tip of {shard} at {} before {end}",
                        last.sequence_number
                    ),
                }));
            }
            empty_polls += 1;
            if empty_polls >= MAX_EMPTY_POLLS {
                anyhow::bail!("{shard}: {MAX_EMPTY_POLLS} empty GetRecords before reaching {end}");
            }
            // Stay well under the 5 GetRecords/s per shard limit.
            tokio::time::sleep(Duration::from_millis(250)).await;
        } else {
            empty_polls = 0;
        }
        iterator = output.next_shard_iterator;
    }
}

/// Puts `records` one by one, in order (PutRecord with `SequenceNumberForOrdering` per
/// partition key, so each key's records keep their order). On failure returns how many
/// were put before it.
pub async fn put_records(
    client: &Client,
    stream: &StreamRef,
    records: &[StreamRecord],
) -> Result<usize, (usize, anyhow::Error)> {
    let mut last_per_key: HashMap<&str, String> = HashMap::new();
    for (done, record) in records.iter().enumerate() {
        let output = client
            .put_record()
            .set_stream_name(stream.name())
            .set_stream_arn(stream.arn())
            .partition_key(&record.partition_key)
            .data(Blob::new(record.data.clone()))
            .set_sequence_number_for_ordering(
                last_per_key.get(record.partition_key.as_str()).cloned(),
            )
            .send()
            .await
            .with_context(|| format!("PutRecord to {stream}"))
            .map_err(|e| (done, e))?;
        last_per_key.insert(&record.partition_key, output.sequence_number);
    }
    Ok(records.len())
}
