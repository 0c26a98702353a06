//! Kinesis Data Streams as a [`StreamSource`]: shard listing, shard iterators, `GetRecords`, and
//! the Lambda Kinesis event record (`Records[]` entry) for each record.

use anyhow::Context as _;
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_lambda_events::encodings::SecondTimestamp;
use aws_lambda_events::kinesis::{KinesisEncryptionType, KinesisEventRecord, KinesisRecord};
use aws_sdk_kinesis::error::ProvideErrorMetadata as _;
use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::ShardIteratorType;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::event_sources::{Position, ShardInfo, ShardReader, StreamRecord, StreamSource};

/// A Kinesis data stream read through the emulator (or AWS).
pub struct KinesisSource {
    client: aws_sdk_kinesis::Client,
    stream_arn: String,
    region: String,
    /// `invokeIdentityArn` of the events (the function's execution role).
    identity_arn: String,
}

impl KinesisSource {
    pub fn new(sdk: &SdkConfig, stream_arn: &str, identity_arn: &str) -> Self {
        let region = stream_arn
            .split(':')
            .nth(3)
            .filter(|r| !r.is_empty())
            .or_else(|| sdk.region().map(|r| r.as_ref()))
            .unwrap_or("us-east-1")
            .to_owned();
        Self {
            client: aws_sdk_kinesis::Client::new(sdk),
            stream_arn: stream_arn.to_owned(),
            region,
            identity_arn: identity_arn.to_owned(),
        }
    }
}

#[async_trait]
impl StreamSource for KinesisSource {
    fn batch_info_key(&self) -> &'static str {
        "KinesisBatchInfo"
    }

    async fn list_shards(&self) -> anyhow::Result<Vec<ShardInfo>> {
        let mut shards = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let request = self.client.list_shards();
            // StreamARN and NextToken are mutually exclusive.
            let request = match next_token.take() {
                Some(token) => request.next_token(token),
                None => request.stream_arn(&self.stream_arn),
            };
            let page = request
                .send()
                .await
                .with_context(|| format!("ListShards {}", self.stream_arn))?;
            for shard in page.shards() {
                shards.push(ShardInfo {
                    shard_id: shard.shard_id().to_owned(),
                    parent_shard_id: shard.parent_shard_id().map(str::to_owned),
                    adjacent_parent_shard_id: shard.adjacent_parent_shard_id().map(str::to_owned),
                    ending_sequence_number: shard
                        .sequence_number_range()
                        .and_then(|r| r.ending_sequence_number())
                        .map(str::to_owned),
                });
            }
            match page.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => break,
            }
        }
        Ok(shards)
    }

    async fn open_shard(
        &self,
        shard_id: &str,
        position: &Position,
    ) -> anyhow::Result<Box<dyn ShardReader>> {
        let mut reader = KinesisShardReader {
            client: self.client.clone(),
            stream_arn: self.stream_arn.clone(),
            region: self.region.clone(),
            identity_arn: self.identity_arn.clone(),
            shard_id: shard_id.to_owned(),
            start: position.clone(),
            last_sequence_number: None,
            iterator: None,
        };
        reader.iterator = Some(reader.new_iterator().await?);
        Ok(Box::new(reader))
    }
}

struct KinesisShardReader {
    client: aws_sdk_kinesis::Client,
    stream_arn: String,
    region: String,
    identity_arn: String,
    shard_id: String,
    start: Position,
    /// Last record handed out: an expired iterator is renewed after it.
    last_sequence_number: Option<String>,
    iterator: Option<String>,
}

impl KinesisShardReader {
    async fn new_iterator(&self) -> anyhow::Result<String> {
        let position = match &self.last_sequence_number {
            Some(seq) => Position::AfterSequenceNumber(seq.clone()),
            None => self.start.clone(),
        };
        let request = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(&self.shard_id);
        let request = match &position {
            Position::TrimHorizon => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            Position::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
            Position::AtTimestamp(at) => request
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(
                    DateTime::from_nanos(at.unix_timestamp_nanos())
                        .unwrap_or(DateTime::from_secs(at.unix_timestamp())),
                ),
            Position::AfterSequenceNumber(seq) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(seq),
        };
        let output = request.send().await.with_context(|| {
            format!(
                "GetShardIterator {} {} {position:?}",
                self.stream_arn, self.shard_id
            )
        })?;
        output
            .shard_iterator()
            .map(str::to_owned)
            .context("GetShardIterator returned no iterator")
    }
}

#[async_trait]
impl ShardReader for KinesisShardReader {
    async fn read(&mut self, limit: usize) -> anyhow::Result<Option<Vec<StreamRecord>>> {
        let Some(iterator) = self.iterator.clone() else {
            return Ok(None);
        };
        let result = self
            .client
            .get_records()
            .stream_arn(&self.stream_arn)
            .shard_iterator(iterator)
            .limit(i32::try_from(limit.clamp(1, 10_000)).unwrap_or(10_000))
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(err) => {
                let expired = err
                    .as_service_error()
                    .and_then(|e| e.code())
                    .is_some_and(|code| code == "ExpiredIteratorException");
                if expired {
                    self.iterator = Some(self.new_iterator().await?);
                    return Ok(Some(Vec::new()));
                }
                return Err(err).with_context(|| format!("GetRecords {}", self.shard_id));
            }
        };
        let mut records = Vec::with_capacity(output.records().len());
        for record in output.records() {
            let arrival = record
                .approximate_arrival_timestamp()
                .map(|t| {
                    OffsetDateTime::from_unix_timestamp_nanos(
                        i128::from(t.secs()) * 1_000_000_000 + i128::from(t.subsec_nanos()),
                    )
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH)
                })
                .unwrap_or_else(OffsetDateTime::now_utc);
            let event = lambda_record(&LambdaRecordInput {
                shard_id: &self.shard_id,
                stream_arn: &self.stream_arn,
                region: &self.region,
                identity_arn: &self.identity_arn,
                sequence_number: record.sequence_number(),
                partition_key: record.partition_key().unwrap_or_default(),
                data: record.data().as_ref(),
                arrival,
                kms: record
                    .encryption_type()
                    .is_some_and(|e| e.as_str() == "KMS"),
            })?;
            let size = serde_json::to_vec(&event).map(|v| v.len()).unwrap_or(0);
            records.push(StreamRecord {
                sequence_number: record.sequence_number().to_owned(),
                arrival,
                event,
                size,
            });
        }
        if let Some(last) = records.last() {
            self.last_sequence_number = Some(last.sequence_number.clone());
        }
        // No next iterator: the shard is closed and everything has been read.
        self.iterator = output.next_shard_iterator().map(str::to_owned);
        if self.iterator.is_none() && records.is_empty() {
            return Ok(None);
        }
        Ok(Some(records))
    }
}

/// What one Kinesis record contributes to the Lambda event.
pub struct LambdaRecordInput<'a> {
    pub shard_id: &'a str,
    pub stream_arn: &'a str,
    pub region: &'a str,
    pub identity_arn: &'a str,
    pub sequence_number: &'a str,
    pub partition_key: &'a str,
    pub data: &'a [u8],
    pub arrival: OffsetDateTime,
    pub kms: bool,
}

/// One entry of the Lambda Kinesis event's `Records[]`, built with `aws_lambda_events` types:
///
/// ```json
/// {"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "1",
///              "sequenceNumber": "4959...", "data": "SGVsbG8=",
///              "approximateArrivalTimestamp": 1545084650.987, "encryptionType": "NONE"},
///  "eventSource": "aws:kinesis", "eventVersion": "1.0",
///  "eventID": "shardId-000000000006:4959...", "eventName": "aws:kinesis:record",
///  "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
///  "awsRegion": "us-east-1", "eventSourceARN": "arn:aws:kinesis:...:stream/name"}
/// ```
///
/// `approximateArrivalTimestamp` is a JSON number (epoch seconds with milliseconds) as Lambda
/// sends it; `aws_lambda_events` would serialise it as a string, so it is rewritten.
pub fn lambda_record(input: &LambdaRecordInput<'_>) -> anyhow::Result<Value> {
    let millis = i64::try_from(input.arrival.unix_timestamp_nanos() / 1_000_000)
        .context("arrival timestamp out of range")?;
    let seconds = millis as f64 / 1000.0;
    let timestamp: SecondTimestamp =
        serde_json::from_value(json!(seconds)).context("building the arrival timestamp")?;

    let mut kinesis = KinesisRecord::default();
    kinesis.kinesis_schema_version = Some("1.0".to_owned());
    kinesis.partition_key = input.partition_key.to_owned();
    kinesis.sequence_number = input.sequence_number.to_owned();
    *kinesis.data = input.data.to_vec();
    kinesis.approximate_arrival_timestamp = timestamp;
    kinesis.encryption_type = if input.kms {
        KinesisEncryptionType::Kms
    } else {
        KinesisEncryptionType::None
    };

    let mut record = KinesisEventRecord::default();
    record.kinesis = kinesis;
    record.event_source = Some("aws:kinesis".to_owned());
    record.event_version = Some("1.0".to_owned());
    record.event_id = Some(format!("{}:{}", input.shard_id, input.sequence_number));
    record.event_name = Some("aws:kinesis:record".to_owned());
    record.aws_region = Some(input.region.to_owned());
    record.invoke_identity_arn = Some(input.identity_arn.to_owned());
    record.event_source_arn = Some(input.stream_arn.to_owned());

    let mut value = serde_json::to_value(&record).context("serialising the Kinesis record")?;
    value["kinesis"]["approximateArrivalTimestamp"] = json!(seconds);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinesis_record_matches_the_lambda_event_format() -> anyhow::Result<()> {
        let arrival = OffsetDateTime::from_unix_timestamp_nanos(1_545_084_650_987_000_000)?;
        let seq = "49590338271490256608559692538361571095921575989136588898";
        let record = lambda_record(&LambdaRecordInput {
            shard_id: "shardId-000000000006",
            stream_arn: "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream",
            region: "us-east-2",
            identity_arn: "arn:aws:iam::123456789012:role/lambda-role",
            sequence_number: seq,
            partition_key: "1",
            data: b"Hello, this is a test.",
            arrival,
            kms: false,
        })?;
        assert_eq!(
            record,
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "1",
                    "sequenceNumber": seq,
                    "data": "SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==",
                    "approximateArrivalTimestamp": 1_545_084_650.987,
                    "encryptionType": "NONE"
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("shardId-000000000006:{seq}"),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
                "awsRegion": "us-east-2",
                "eventSourceARN": "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream"
            })
        );
        // The functions' own deserialiser accepts it.
        let parsed: aws_lambda_events::kinesis::KinesisEvent =
            serde_json::from_value(json!({"Records": [record]}))?;
        assert_eq!(
            parsed.records[0].kinesis.data.as_slice(),
            b"Hello, this is a test."
        );
        assert_eq!(parsed.records[0].kinesis.sequence_number, seq);
        Ok(())
    }
}
