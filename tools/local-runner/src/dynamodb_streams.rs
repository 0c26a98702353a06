//! DynamoDB Streams as a [`StreamSource`]: shard discovery with `DescribeStream`, shard
//! iterators, `GetRecords`, and the Lambda DynamoDB event record (`Records[]` entry) for each
//! stream record.
//!
//! Shards of a DynamoDB stream roll over regularly on AWS (a shard is closed and a child shard
//! with `ParentShardId` takes over); the shared poller in [`crate::event_sources`] starts a child
//! only once its parent is fully processed, so changes to one item stay in order.

use std::collections::HashMap;

use anyhow::Context as _;
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_lambda_events::event::dynamodb::{EventRecord, StreamRecord as LambdaStreamRecord};
use aws_sdk_dynamodbstreams::error::ProvideErrorMetadata as _;
use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
use base64::Engine as _;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use tracing::warn;

use crate::event_sources::{Position, ShardInfo, ShardReader, StreamRecord, StreamSource};

/// DynamoDB Streams `GetRecords` returns at most this many records.
pub const MAX_GET_RECORDS: usize = 1000;

/// A DynamoDB table's stream read through the emulator (or AWS).
pub struct DynamoDbStreamSource {
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    region: String,
}

impl DynamoDbStreamSource {
    pub fn new(sdk: &SdkConfig, stream_arn: &str) -> Self {
        let region = stream_arn
            .split(':')
            .nth(3)
            .filter(|r| !r.is_empty())
            .or_else(|| sdk.region().map(|r| r.as_ref()))
            .unwrap_or("us-east-1")
            .to_owned();
        Self {
            client: aws_sdk_dynamodbstreams::Client::new(sdk),
            stream_arn: stream_arn.to_owned(),
            region,
        }
    }
}

#[async_trait]
impl StreamSource for DynamoDbStreamSource {
    fn batch_info_key(&self) -> &'static str {
        "DDBStreamBatchInfo"
    }

    async fn list_shards(&self) -> anyhow::Result<Vec<ShardInfo>> {
        let mut shards = Vec::new();
        let mut exclusive_start: Option<String> = None;
        loop {
            let output = self
                .client
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(exclusive_start.take())
                .send()
                .await
                .with_context(|| format!("DescribeStream {}", self.stream_arn))?;
            let Some(description) = output.stream_description() else {
                break;
            };
            for shard in description.shards() {
                let Some(shard_id) = shard.shard_id() else {
                    continue;
                };
                shards.push(ShardInfo {
                    shard_id: shard_id.to_owned(),
                    parent_shard_id: shard.parent_shard_id().map(str::to_owned),
                    adjacent_parent_shard_id: None,
                    ending_sequence_number: shard
                        .sequence_number_range()
                        .and_then(|r| r.ending_sequence_number())
                        .map(str::to_owned),
                });
            }
            match description.last_evaluated_shard_id() {
                Some(last) if !last.is_empty() => exclusive_start = Some(last.to_owned()),
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
        let mut reader = DynamoDbShardReader {
            client: self.client.clone(),
            stream_arn: self.stream_arn.clone(),
            region: self.region.clone(),
            shard_id: shard_id.to_owned(),
            start: position.clone(),
            last_sequence_number: None,
            iterator: None,
        };
        reader.iterator = Some(reader.new_iterator().await?);
        Ok(Box::new(reader))
    }
}

struct DynamoDbShardReader {
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    region: String,
    shard_id: String,
    start: Position,
    /// Last record handed out: an expired iterator is renewed after it.
    last_sequence_number: Option<String>,
    iterator: Option<String>,
}

impl DynamoDbShardReader {
    async fn new_iterator(&self) -> anyhow::Result<String> {
        let position = match &self.last_sequence_number {
            Some(seq) => Position::AfterSequenceNumber(seq.clone()),
            None => self.start.clone(),
        };
        match self.get_iterator(&position).await {
            Ok(iterator) => Ok(iterator),
            // The checkpoint is older than the stream's 24 h retention: the records in between are
            // gone; carry on from the oldest record still available (what Lambda does).
            Err(err)
                if matches!(position, Position::AfterSequenceNumber(_))
                    && err.to_string().contains("TrimmedDataAccessException") =>
            {
                warn!(stream = %self.stream_arn, shard = %self.shard_id, ?position, "checkpoint trimmed from the stream; resuming at TRIM_HORIZON");
                self.get_iterator(&Position::TrimHorizon).await
            }
            Err(err) => Err(err),
        }
    }

    async fn get_iterator(&self, position: &Position) -> anyhow::Result<String> {
        let request = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(&self.shard_id);
        let request = match position {
            Position::TrimHorizon => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            Position::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
            // DynamoDB Streams has no AT_TIMESTAMP (Lambda rejects it for DynamoDB mappings).
            Position::AtTimestamp(_) => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            Position::AfterSequenceNumber(seq) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(seq),
        };
        let output = request.send().await.map_err(|err| {
            let code = err.code().unwrap_or("unknown").to_owned();
            anyhow::Error::new(err).context(format!(
                "GetShardIterator {} {} {position:?}: {code}",
                self.stream_arn, self.shard_id
            ))
        })?;
        output
            .shard_iterator()
            .map(str::to_owned)
            .context("GetShardIterator returned no iterator")
    }
}

#[async_trait]
impl ShardReader for DynamoDbShardReader {
    async fn read(&mut self, limit: usize) -> anyhow::Result<Option<Vec<StreamRecord>>> {
        let Some(iterator) = self.iterator.clone() else {
            return Ok(None);
        };
        let result = self
            .client
            .get_records()
            .shard_iterator(iterator)
            .limit(i32::try_from(limit.clamp(1, MAX_GET_RECORDS)).unwrap_or(1000))
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(err) => {
                let code = err.as_service_error().and_then(|e| e.code());
                // Iterators expire after 15 minutes; a trimmed position restarts at the horizon.
                match code {
                    Some("ExpiredIteratorException") => {
                        self.iterator = Some(self.new_iterator().await?);
                        return Ok(Some(Vec::new()));
                    }
                    Some("TrimmedDataAccessException") => {
                        warn!(stream = %self.stream_arn, shard = %self.shard_id, "iterator position trimmed from the stream; resuming at TRIM_HORIZON");
                        self.iterator = Some(self.get_iterator(&Position::TrimHorizon).await?);
                        return Ok(Some(Vec::new()));
                    }
                    _ => {
                        return Err(err).with_context(|| format!("GetRecords {}", self.shard_id));
                    }
                }
            }
        };
        let mut records = Vec::with_capacity(output.records().len());
        for record in output.records() {
            let Some(change) = record.dynamodb() else {
                continue;
            };
            let Some(sequence_number) = change.sequence_number() else {
                continue;
            };
            let created = change
                .approximate_creation_date_time()
                .map(|t| {
                    OffsetDateTime::from_unix_timestamp_nanos(
                        i128::from(t.secs()) * 1_000_000_000 + i128::from(t.subsec_nanos()),
                    )
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH)
                })
                .unwrap_or_else(OffsetDateTime::now_utc);
            let event = lambda_record(&DynamoDbRecordInput {
                event_id: record.event_id().unwrap_or(sequence_number),
                event_name: record.event_name().map_or("MODIFY", |n| n.as_str()),
                region: record
                    .aws_region()
                    .filter(|r| !r.is_empty())
                    .unwrap_or(&self.region),
                stream_arn: &self.stream_arn,
                created,
                keys: change.keys().map(item_json),
                new_image: change.new_image().map(item_json),
                old_image: change.old_image().map(item_json),
                sequence_number,
                size_bytes: change.size_bytes().unwrap_or(0),
                stream_view_type: change.stream_view_type().map(|v| v.as_str()),
                user_identity: record
                    .user_identity()
                    .map(|u| (u.r#type().unwrap_or(""), u.principal_id().unwrap_or(""))),
            })?;
            let size = serde_json::to_vec(&event).map(|v| v.len()).unwrap_or(0);
            records.push(StreamRecord {
                sequence_number: sequence_number.to_owned(),
                arrival: created,
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

/// DynamoDB JSON of one attribute value: `{"S": "…"}`, `{"N": "…"}`, `{"B": "<base64>"}`,
/// `{"M": {…}}`, `{"L": […]}`, `{"SS": […]}`, `{"NS": […]}`, `{"BS": […]}`, `{"BOOL": …}`,
/// `{"NULL": true}`.
pub fn attribute_json(value: &AttributeValue) -> Value {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    match value {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::B(b) => json!({"B": b64(b.as_ref())}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(n) => json!({"NULL": n}),
        AttributeValue::M(m) => json!({"M": item_json(m)}),
        AttributeValue::L(l) => json!({"L": l.iter().map(attribute_json).collect::<Vec<_>>()}),
        AttributeValue::Ss(ss) => json!({"SS": ss}),
        AttributeValue::Ns(ns) => json!({"NS": ns}),
        AttributeValue::Bs(bs) => {
            json!({"BS": bs.iter().map(|b| b64(b.as_ref())).collect::<Vec<_>>()})
        }
        _ => json!({"NULL": true}),
    }
}

/// DynamoDB JSON of an item (keys sorted, for stable output).
pub fn item_json(item: &HashMap<String, AttributeValue>) -> Map<String, Value> {
    let mut names: Vec<&String> = item.keys().collect();
    names.sort();
    names
        .into_iter()
        .map(|name| (name.clone(), attribute_json(&item[name])))
        .collect()
}

/// What one DynamoDB stream record contributes to the Lambda event.
pub struct DynamoDbRecordInput<'a> {
    pub event_id: &'a str,
    /// `INSERT`, `MODIFY` or `REMOVE`.
    pub event_name: &'a str,
    pub region: &'a str,
    pub stream_arn: &'a str,
    pub created: OffsetDateTime,
    pub keys: Option<Map<String, Value>>,
    pub new_image: Option<Map<String, Value>>,
    pub old_image: Option<Map<String, Value>>,
    pub sequence_number: &'a str,
    pub size_bytes: i64,
    pub stream_view_type: Option<&'a str>,
    /// `(type, principalId)` for items deleted by TTL.
    pub user_identity: Option<(&'a str, &'a str)>,
}

/// One entry of the Lambda DynamoDB event's `Records[]`, built with `aws_lambda_events` types:
///
/// ```json
/// {"eventID": "c4ca4238a0b923820dcc509a6f75849b", "eventName": "INSERT", "eventVersion": "1.1",
///  "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
///  "dynamodb": {"ApproximateCreationDateTime": 1428537600, "Keys": {"Id": {"N": "101"}},
///               "NewImage": {"Message": {"S": "New item!"}, "Id": {"N": "101"}},
///               "SequenceNumber": "4421584500000000017450439091", "SizeBytes": 26,
///               "StreamViewType": "NEW_AND_OLD_IMAGES"},
///  "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/2015-06-27T00:48:05.899"}
/// ```
///
/// Lambda sends `ApproximateCreationDateTime` as whole epoch seconds and leaves out the images the
/// record does not have (`NewImage` of a `REMOVE`, `OldImage` of an `INSERT`) and the fields
/// `aws_lambda_events` would serialise as `null` (`userIdentity` unless TTL, `recordFormat`,
/// `tableName`); the serialised record is adjusted accordingly.
pub fn lambda_record(input: &DynamoDbRecordInput<'_>) -> anyhow::Result<Value> {
    let seconds = input.created.unix_timestamp();

    let mut change = LambdaStreamRecord::default();
    let utc = input.created.to_offset(time::UtcOffset::UTC);
    let rfc3339 = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    );
    // chrono's `DateTime<Utc>` (not a dependency here) deserialises from RFC 3339.
    change.approximate_creation_date_time =
        serde_json::from_value(json!(rfc3339)).context("building ApproximateCreationDateTime")?;
    let item = |m: &Option<Map<String, Value>>| -> anyhow::Result<_> {
        serde_json::from_value(Value::Object(m.clone().unwrap_or_default()))
            .context("converting a DynamoDB item")
    };
    change.keys = item(&input.keys)?;
    change.new_image = item(&input.new_image)?;
    change.old_image = item(&input.old_image)?;
    change.sequence_number = Some(input.sequence_number.to_owned());
    change.size_bytes = input.size_bytes;
    change.stream_view_type = input
        .stream_view_type
        .map(|v| serde_json::from_value(json!(v)))
        .transpose()
        .context("StreamViewType")?;

    let mut record = EventRecord::default();
    record.aws_region = input.region.to_owned();
    record.change = change;
    record.event_id = input.event_id.to_owned();
    record.event_name = input.event_name.to_owned();
    record.event_source = Some("aws:dynamodb".to_owned());
    record.event_version = Some("1.1".to_owned());
    record.event_source_arn = Some(input.stream_arn.to_owned());
    if let Some((kind, principal)) = input.user_identity {
        record.user_identity =
            serde_json::from_value(json!({"type": kind, "principalId": principal}))
                .context("userIdentity")?;
    }

    let mut value = serde_json::to_value(&record).context("serialising the DynamoDB record")?;
    if let Some(object) = value.as_object_mut() {
        object.retain(|_, v| !v.is_null());
    }
    let dynamodb = &mut value["dynamodb"];
    dynamodb["ApproximateCreationDateTime"] = json!(seconds);
    // Keep the items exactly as read (no float/ordering surprises) and drop absent images.
    for (name, source) in [
        ("Keys", &input.keys),
        ("NewImage", &input.new_image),
        ("OldImage", &input.old_image),
    ] {
        if let Some(object) = dynamodb.as_object_mut() {
            match source {
                Some(map) => {
                    object.insert(name.to_owned(), Value::Object(map.clone()));
                }
                None => {
                    object.remove(name);
                }
            }
        }
    }
    if let Some(object) = dynamodb.as_object_mut() {
        object.retain(|_, v| !v.is_null());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodbstreams::primitives::Blob;

    fn map(value: Value) -> Option<Map<String, Value>> {
        value.as_object().cloned()
    }

    /// The sample event of the Lambda developer guide ("Using AWS Lambda with Amazon DynamoDB"),
    /// with the `eventVersion` and `ApproximateCreationDateTime` Lambda sends today.
    #[test]
    fn dynamodb_record_matches_the_lambda_event_format() -> anyhow::Result<()> {
        let arn = "arn:aws:dynamodb:us-east-1:123456789012:table/ExampleTableWithStream/stream/2015-06-27T00:48:05.899";
        let insert = lambda_record(&DynamoDbRecordInput {
            event_id: "c4ca4238a0b923820dcc509a6f75849b",
            event_name: "INSERT",
            region: "us-east-1",
            stream_arn: arn,
            created: OffsetDateTime::from_unix_timestamp(1_428_537_600)?,
            keys: map(json!({"Id": {"N": "101"}})),
            new_image: map(json!({"Message": {"S": "New item!"}, "Id": {"N": "101"}})),
            old_image: None,
            sequence_number: "4421584500000000017450439091",
            size_bytes: 26,
            stream_view_type: Some("NEW_AND_OLD_IMAGES"),
            user_identity: None,
        })?;
        assert_eq!(
            insert,
            json!({
                "eventID": "c4ca4238a0b923820dcc509a6f75849b",
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {
                    "Keys": {"Id": {"N": "101"}},
                    "NewImage": {"Message": {"S": "New item!"}, "Id": {"N": "101"}},
                    "ApproximateCreationDateTime": 1_428_537_600,
                    "SequenceNumber": "4421584500000000017450439091",
                    "SizeBytes": 26,
                    "StreamViewType": "NEW_AND_OLD_IMAGES"
                },
                "eventSourceARN": arn
            })
        );
        let remove = lambda_record(&DynamoDbRecordInput {
            event_id: "eccbc87e4b5ce2fe28308fd9f2a7baf3",
            event_name: "REMOVE",
            region: "us-east-1",
            stream_arn: arn,
            created: OffsetDateTime::from_unix_timestamp(1_428_537_600)?,
            keys: map(json!({"Id": {"N": "101"}})),
            new_image: None,
            old_image: map(json!({"Message": {"S": "This item has changed"}, "Id": {"N": "101"}})),
            sequence_number: "4421584500000000017450439093",
            size_bytes: 38,
            stream_view_type: Some("NEW_AND_OLD_IMAGES"),
            user_identity: Some(("Service", "dynamodb.amazonaws.com")),
        })?;
        assert!(remove["dynamodb"].get("NewImage").is_none());
        assert_eq!(
            remove["dynamodb"]["OldImage"]["Message"]["S"],
            "This item has changed"
        );
        assert_eq!(
            remove["userIdentity"],
            json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"})
        );

        // The functions' own deserialiser accepts it.
        let parsed: aws_lambda_events::event::dynamodb::Event =
            serde_json::from_value(json!({"Records": [insert, remove]}))?;
        let first = &parsed.records[0];
        assert_eq!(first.event_name, "INSERT");
        assert_eq!(first.event_source_arn.as_deref(), Some(arn));
        assert_eq!(
            first.change.sequence_number.as_deref(),
            Some("4421584500000000017450439091")
        );
        assert_eq!(
            first.change.approximate_creation_date_time.timestamp(),
            1_428_537_600
        );
        assert_eq!(first.change.size_bytes, 26);
        assert!(first.change.old_image.is_empty());
        assert_eq!(
            first.change.new_image.get("Message"),
            Some(&serde_dynamo::AttributeValue::S("New item!".to_owned()))
        );
        assert!(parsed.records[1].change.new_image.is_empty());
        Ok(())
    }

    #[test]
    fn attribute_values_round_trip_through_the_lambda_types() -> anyhow::Result<()> {
        let item: HashMap<String, AttributeValue> = HashMap::from([
            ("id".to_owned(), AttributeValue::S("order-1".to_owned())),
            ("total".to_owned(), AttributeValue::N("12.50".to_owned())),
            (
                "big".to_owned(),
                AttributeValue::N("123456789012345678901234567890".to_owned()),
            ),
            ("paid".to_owned(), AttributeValue::Bool(true)),
            ("note".to_owned(), AttributeValue::Null(true)),
            (
                "blob".to_owned(),
                AttributeValue::B(Blob::new(vec![0u8, 1, 2, 255])),
            ),
            (
                "tags".to_owned(),
                AttributeValue::Ss(vec!["a".to_owned(), "b".to_owned()]),
            ),
            (
                "qtys".to_owned(),
                AttributeValue::Ns(vec!["1".to_owned(), "2.5".to_owned()]),
            ),
            (
                "blobs".to_owned(),
                AttributeValue::Bs(vec![Blob::new(b"x".to_vec())]),
            ),
            (
                "lines".to_owned(),
                AttributeValue::L(vec![AttributeValue::M(HashMap::from([
                    ("sku".to_owned(), AttributeValue::S("A-1".to_owned())),
                    ("qty".to_owned(), AttributeValue::N("3".to_owned())),
                    (
                        "dims".to_owned(),
                        AttributeValue::L(vec![
                            AttributeValue::N("1".to_owned()),
                            AttributeValue::M(HashMap::new()),
                        ]),
                    ),
                ]))]),
            ),
        ]);
        let image = item_json(&item);
        assert_eq!(
            Value::Object(image.clone()),
            json!({
                "big": {"N": "123456789012345678901234567890"},
                "blob": {"B": "AAEC/w=="},
                "blobs": {"BS": ["eA=="]},
                "id": {"S": "order-1"},
                "lines": {"L": [{"M": {
                    "dims": {"L": [{"N": "1"}, {"M": {}}]},
                    "qty": {"N": "3"},
                    "sku": {"S": "A-1"}
                }}]},
                "note": {"NULL": true},
                "paid": {"BOOL": true},
                "qtys": {"NS": ["1", "2.5"]},
                "tags": {"SS": ["a", "b"]},
                "total": {"N": "12.50"}
            })
        );
        let record = lambda_record(&DynamoDbRecordInput {
            event_id: "1",
            event_name: "MODIFY",
            region: "us-east-1",
            stream_arn: "arn:aws:dynamodb:us-east-1:123456789012:table/orders-orders/stream/2026-11-22T00:33:41.236471",
            created: OffsetDateTime::from_unix_timestamp(1_795_307_695)?,
            keys: map(json!({"id": {"S": "order-1"}})),
            new_image: Some(image.clone()),
            old_image: Some(image.clone()),
            sequence_number: "1100000000017454423009",
            size_bytes: 321,
            stream_view_type: Some("NEW_AND_OLD_IMAGES"),
            user_identity: None,
        })?;
        let parsed: aws_lambda_events::event::dynamodb::Event =
            serde_json::from_value(json!({"Records": [record.clone()]}))?;
        let change = &parsed.records[0].change;
        use serde_dynamo::AttributeValue as A;
        assert_eq!(
            change.new_image.get("total"),
            Some(&A::N("12.50".to_owned()))
        );
        assert_eq!(
            change.new_image.get("big"),
            Some(&A::N("123456789012345678901234567890".to_owned()))
        );
        assert_eq!(
            change.new_image.get("blob"),
            Some(&A::B(vec![0, 1, 2, 255]))
        );
        let Some(A::L(lines)) = change.old_image.get("lines") else {
            panic!("lines: {:?}", change.old_image.get("lines"));
        };
        let Some(A::M(line)) = lines.first() else {
            panic!("line: {lines:?}");
        };
        assert_eq!(line.get("qty"), Some(&A::N("3".to_owned())));
        // Serialising the parsed event again gives the same images (what a function forwarding
        // the event would produce).
        let again = serde_json::to_value(&parsed.records[0])?;
        assert_eq!(
            again["dynamodb"]["NewImage"],
            record["dynamodb"]["NewImage"]
        );
        assert_eq!(again["dynamodb"]["Keys"], record["dynamodb"]["Keys"]);
        Ok(())
    }
}
