//! The two kinds of message that land in a stream consumer's SQS dead-letter queue.
//!
//! * [`PoisonLetter`]: written by our own function code (`orders_core::ports::DeadLetter`)
//!   for a record it can never process. It embeds the Kinesis record *as Lambda delivered
//!   it*, data included, so it can be re-put as is.
//! * [`OnFailureRecord`]: written by the Lambda event source mapping when a batch exhausted
//!   its retries (or grew too old). It carries no data, only the shard and the range of
//!   sequence numbers on the stream, which must be read back from the stream.

use crate::sequence::SequenceNumber;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A parsed dead-letter queue message.
#[derive(Debug, Clone, PartialEq)]
pub enum DlqMessage {
    Poison(Box<PoisonLetter>),
    OnFailure(Box<OnFailureRecord>),
}

/// `{"reason", "error", "function", "deadLetteredAt", "record": {...}}` from our functions.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoisonLetter {
    /// Stable code: `not_json`, `unsupported_schema_version`, `malformed_event`, …
    pub reason: String,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub function: String,
    #[serde(default)]
    pub dead_lettered_at: Option<String>,
    pub record: PoisonRecord,
}

/// The Lambda Kinesis event record, as delivered to the function.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoisonRecord {
    pub kinesis: KinesisPayload,
    #[serde(rename = "eventID", default)]
    pub event_id: Option<String>,
    #[serde(rename = "eventSourceARN", default)]
    pub event_source_arn: Option<String>,
    /// Added by our functions (Lambda only has it as the `eventID` prefix).
    #[serde(default)]
    pub shard_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisPayload {
    pub partition_key: String,
    pub sequence_number: SequenceNumber,
    /// Base64, as Lambda delivers it.
    pub data: String,
    #[serde(default)]
    pub approximate_arrival_timestamp: Option<Value>,
}

/// Lambda's on-failure destination record for a Kinesis event source mapping.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnFailureRecord {
    pub request_context: RequestContext,
    #[serde(default)]
    pub response_context: Option<Value>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(rename = "KinesisBatchInfo")]
    pub batch: KinesisBatchInfo,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub function_arn: Option<String>,
    /// `RetryAttemptsExhausted`, `RecordAgeExceeded`, `MaximumPayloadSizeExceeded`, …
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(default)]
    pub approximate_invoke_count: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisBatchInfo {
    pub shard_id: String,
    pub start_sequence_number: SequenceNumber,
    pub end_sequence_number: SequenceNumber,
    #[serde(default)]
    pub approximate_arrival_of_first_record: Option<String>,
    #[serde(default)]
    pub approximate_arrival_of_last_record: Option<String>,
    #[serde(default)]
    pub batch_size: Option<u64>,
    pub stream_arn: String,
}

impl<'de> Deserialize<'de> for DlqMessage {
    /// Dispatches on the shape: `KinesisBatchInfo` marks an on-failure record, `reason` +
    /// `record` a poison dead letter. (Explicit rather than `untagged`, for useful errors.)
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let Some(object) = value.as_object() else {
            return Err(D::Error::custom("the message body is not a JSON object"));
        };
        if object.contains_key("KinesisBatchInfo") {
            serde_json::from_value(value)
                .map(|r| DlqMessage::OnFailure(Box::new(r)))
                .map_err(|e| D::Error::custom(format!("invalid on-failure record: {e}")))
        } else if object.contains_key("reason") && object.contains_key("record") {
            serde_json::from_value(value)
                .map(|r| DlqMessage::Poison(Box::new(r)))
                .map_err(|e| D::Error::custom(format!("invalid dead letter: {e}")))
        } else {
            Err(D::Error::custom(
                "neither a dead letter (reason, record) nor a Kinesis on-failure record \
                 (KinesisBatchInfo)",
            ))
        }
    }
}

/// Parses an SQS message body.
pub fn parse(body: &str) -> Result<DlqMessage, serde_json::Error> {
    serde_json::from_str(body)
}

impl PoisonLetter {
    /// The record's payload bytes.
    pub fn data(&self) -> Result<Vec<u8>, base64::DecodeError> {
        STANDARD.decode(self.record.kinesis.data.trim())
    }

    /// The shard: explicit, or the `eventID` prefix (`shardId-…:sequence`).
    pub fn shard(&self) -> Option<&str> {
        self.record.shard_id.as_deref().or_else(|| {
            self.record
                .event_id
                .as_deref()
                .and_then(|id| id.split_once(':').map(|(shard, _)| shard))
        })
    }
}

impl OnFailureRecord {
    /// The function name from `functionArn` (`arn:aws:lambda:region:account:function:name[:alias]`).
    pub fn function(&self) -> Option<&str> {
        let arn = self.request_context.function_arn.as_deref()?;
        Some(arn.split(':').nth(6).unwrap_or(arn))
    }
}

impl DlqMessage {
    pub fn kind(&self) -> &'static str {
        match self {
            DlqMessage::Poison(_) => "poison",
            DlqMessage::OnFailure(_) => "on-failure",
        }
    }

    /// The poison reason or the on-failure condition.
    pub fn reason(&self) -> &str {
        match self {
            DlqMessage::Poison(p) => &p.reason,
            DlqMessage::OnFailure(f) => f.request_context.condition.as_deref().unwrap_or("-"),
        }
    }

    pub fn function(&self) -> &str {
        match self {
            DlqMessage::Poison(p) if !p.function.is_empty() => &p.function,
            DlqMessage::Poison(_) => "-",
            DlqMessage::OnFailure(f) => f.function().unwrap_or("-"),
        }
    }

    pub fn shard(&self) -> &str {
        match self {
            DlqMessage::Poison(p) => p.shard().unwrap_or("-"),
            DlqMessage::OnFailure(f) => &f.batch.shard_id,
        }
    }

    /// One sequence number, or `start..end` for an on-failure range.
    pub fn sequences(&self) -> String {
        match self {
            DlqMessage::Poison(p) => p.record.kinesis.sequence_number.to_string(),
            DlqMessage::OnFailure(f) => format!(
                "{}..{}",
                f.batch.start_sequence_number, f.batch.end_sequence_number
            ),
        }
    }

    pub fn partition_key(&self) -> &str {
        match self {
            DlqMessage::Poison(p) => &p.record.kinesis.partition_key,
            DlqMessage::OnFailure(_) => "-",
        }
    }

    /// The first bytes of the data, printable; on-failure records carry none.
    pub fn data_preview(&self, max_bytes: usize) -> String {
        match self {
            DlqMessage::Poison(p) => match p.data() {
                Ok(bytes) => preview(&bytes, max_bytes),
                Err(_) => "<invalid base64>".to_owned(),
            },
            DlqMessage::OnFailure(f) => match f.batch.batch_size {
                Some(n) => format!("<{n} records on the stream>"),
                None => "<records on the stream>".to_owned(),
            },
        }
    }
}

/// Up to `max_bytes` of `bytes` as text, control characters shown as `.`.
pub fn preview(bytes: &[u8], max_bytes: usize) -> String {
    let head = &bytes[..bytes.len().min(max_bytes)];
    let mut text: String = String::from_utf8_lossy(head)
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect();
    if bytes.len() > max_bytes {
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `orders-process-order` sends for a record that is not JSON (serialized
    /// `DeadLetter` around a serialized `aws_lambda_events` `KinesisEventRecord`).
    const POISON: &str = r#"{
      "reason": "not_json",
      "error": "expected value at line 1 column 1",
      "function": "orders-process-order",
      "deadLetteredAt": "2025-03-14T09:26:53.589Z",
      "record": {
        "awsRegion": "us-east-1",
        "eventID": "shardId-000000000003:49651505085739424282347553331460231169997014936545116162",
        "eventName": "aws:kinesis:record",
        "eventSource": "aws:kinesis",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/orders-order-events",
        "eventVersion": "1.0",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/orders-process-order",
        "kinesis": {
          "approximateArrivalTimestamp": 1741944413.123,
          "data": "bm90IGpzb24gYXQgYWxs",
          "encryptionType": "NONE",
          "partitionKey": "01JPAXQ3M4Z8N6B1C2D3E4F5G6",
          "sequenceNumber": "49651505085739424282347553331460231169997014936545116162",
          "kinesisSchemaVersion": "1.0"
        },
        "shardId": "shardId-000000000003"
      }
    }"#;

    /// Lambda's on-failure destination record (format from the Lambda developer guide).
    const ON_FAILURE: &str = r#"{
      "requestContext": {
        "requestId": "c9b8fa9f-5a7f-xmpl-af9c-0c604cde93a5",
        "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:orders-aggregate",
        "condition": "RetryAttemptsExhausted",
        "approximateInvokeCount": 4
      },
      "responseContext": {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled"
      },
      "version": "1.0",
      "timestamp": "2025-03-14T09:27:06.021Z",
      "KinesisBatchInfo": {
        "shardId": "shardId-000000000001",
        "startSequenceNumber": "49601189658422359378836298521827638475320189012309704722",
        "endSequenceNumber": "49601189658422359378836298522902373528957594348623495186",
        "approximateArrivalOfFirstRecord": "2025-03-14T09:26:04.835Z",
        "approximateArrivalOfLastRecord": "2025-03-14T09:26:05.580Z",
        "batchSize": 3,
        "streamArn": "arn:aws:kinesis:us-east-1:123456789012:stream/orders-order-events"
      }
    }"#;

    #[test]
    fn parses_a_poison_dead_letter() {
        let DlqMessage::Poison(letter) = parse(POISON).unwrap() else {
            panic!("not parsed as poison");
        };
        assert_eq!(letter.reason, "not_json");
        assert_eq!(letter.function, "orders-process-order");
        assert_eq!(letter.data().unwrap(), b"not json at all");
        assert_eq!(
            letter.record.kinesis.partition_key,
            "01JPAXQ3M4Z8N6B1C2D3E4F5G6"
        );
        assert_eq!(
            letter.record.kinesis.sequence_number.as_str(),
            "49651505085739424282347553331460231169997014936545116162"
        );
        assert_eq!(
            letter.record.event_source_arn.as_deref(),
            Some("arn:aws:kinesis:us-east-1:123456789012:stream/orders-order-events")
        );
        assert_eq!(letter.shard(), Some("shardId-000000000003"));
    }

    #[test]
    fn poison_shard_falls_back_to_the_event_id() {
        let mut value: Value = serde_json::from_str(POISON).unwrap();
        value["record"].as_object_mut().unwrap().remove("shardId");
        value["record"]["eventID"] = "shardId-000000000007:123".into();
        let DlqMessage::Poison(letter) = parse(&value.to_string()).unwrap() else {
            panic!("not parsed as poison");
        };
        assert_eq!(letter.shard(), Some("shardId-000000000007"));
    }

    #[test]
    fn parses_an_on_failure_record() {
        let message = parse(ON_FAILURE).unwrap();
        assert_eq!(message.kind(), "on-failure");
        assert_eq!(message.reason(), "RetryAttemptsExhausted");
        assert_eq!(message.function(), "orders-aggregate");
        assert_eq!(message.shard(), "shardId-000000000001");
        assert_eq!(message.partition_key(), "-");
        let DlqMessage::OnFailure(record) = message else {
            unreachable!()
        };
        let batch = &record.batch;
        assert!(batch.start_sequence_number < batch.end_sequence_number);
        assert_eq!(batch.batch_size, Some(3));
        assert_eq!(
            batch.stream_arn,
            "arn:aws:kinesis:us-east-1:123456789012:stream/orders-order-events"
        );
        assert_eq!(record.request_context.approximate_invoke_count, Some(4));
    }

    #[test]
    fn summary_of_a_poison_letter() {
        let message = parse(POISON).unwrap();
        assert_eq!(message.kind(), "poison");
        assert_eq!(message.reason(), "not_json");
        assert_eq!(message.function(), "orders-process-order");
        assert_eq!(message.partition_key(), "01JPAXQ3M4Z8N6B1C2D3E4F5G6");
        assert_eq!(message.data_preview(8), "not json…");
        assert_eq!(message.data_preview(100), "not json at all");
    }

    #[test]
    fn rejects_other_shapes_with_a_clear_error() {
        let err = parse(r#"{"hello":"world"}"#).unwrap_err().to_string();
        assert!(err.contains("neither a dead letter"), "{err}");
        assert!(parse("not json").is_err());
        assert!(parse("[1,2]").is_err());
        // Right shape, broken content: the error says which kind and what is wrong.
        let broken = ON_FAILURE.replace(
            "\"startSequenceNumber\": \"49601189658422359378836298521827638475320189012309704722\"",
            "\"startSequenceNumber\": \"oops\"",
        );
        let err = parse(&broken).unwrap_err().to_string();
        assert!(err.contains("on-failure"), "{err}");
        assert!(err.contains("oops"), "{err}");
    }

    #[test]
    fn preview_escapes_control_characters() {
        assert_eq!(preview(b"a\nb\tc", 10), "a.b.c");
        assert_eq!(preview(&[0xff, b'x'], 10), "\u{fffd}x");
    }
}
