//! Replaying dead-lettered records — by default only to the consumer that failed them.
//!
//! * A **poison dead letter** carries its record and names the function that dead-lettered
//!   it; a **Lambda on-failure record** carries the function's ARN and only
//!   `KinesisBatchInfo` (shard, first and last sequence number): the range is read back from
//!   the source stream. If it is no longer entirely there (trimmed by retention, unknown
//!   shard, beyond the tip), nothing is replayed and the message stays in the queue.
//! * **To the function** (the default): the function is invoked (`RequestResponse`) with a
//!   Kinesis event of exactly those records — their own sequence numbers, shard and stream,
//!   as its event source mapping delivered them — so no other consumer of the stream sees
//!   them again, and the failed consumer sees them as the same records (its claims and
//!   watermarks apply). The message is deleted when the function reports no batch item
//!   failure. Locally the runner serves the Invoke API (`AWS_ENDPOINT_URL_LAMBDA`).
//! * **To a stream** (`--to stream`, or `--stream NAME`): the records are re-put, with their
//!   partition keys and data, as new records every consumer reads.
//!
//! A message is deleted only after all its records were replayed; any message not
//! replayed is made visible again at the end of the run. `--dry-run` reads, never writes.
//!
//! **Why replay is safe.** Replayed records are *new* stream records (new sequence
//! numbers), and a record may be re-published twice (a run that fails between the puts and
//! the delete, two operators…). That is harmless because every consumer is idempotent:
//! events carry derived `eventId`s and processing is conditional on the order's version,
//! so a record that was in fact already applied is recognised and skipped.

use crate::dlq::{self, DlqMessage};
use crate::queue::{Queue, Received};
use crate::stream::{self, RangeRead, StreamRecord, StreamRef};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use std::io::Write;

/// How long a message stays hidden while a run looks at it.
const VISIBILITY_SECS: i32 = 300;

/// Where replayed records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// The function that dead-lettered them, invoked with them.
    Function,
    /// Re-put on this stream, or (`None`) on the one they came from.
    Stream(Option<StreamRef>),
}

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub to: Destination,
    pub dry_run: bool,
    /// At most this many messages.
    pub max: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// All records re-published, message deleted.
    Replayed { records: usize, stream: String },
    /// `--dry-run`: what would happen.
    WouldReplay { records: usize, stream: String },
    /// Not replayed; the message stays in the queue.
    Skipped { why: String },
    /// Something failed on the way; `published` records went out; the message stays.
    Failed { published: usize, why: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageOutcome {
    pub message_id: String,
    pub kind: &'static str,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    pub messages: Vec<MessageOutcome>,
}

impl ReplayReport {
    pub fn replayed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Replayed { .. }))
    }

    pub fn would_replay(&self) -> usize {
        self.count(|o| matches!(o, Outcome::WouldReplay { .. }))
    }

    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skipped { .. }))
    }

    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed { .. }))
    }

    /// Records written to a stream (including those of failed messages).
    pub fn records_published(&self) -> usize {
        self.messages
            .iter()
            .map(|m| match m.outcome {
                Outcome::Replayed { records, .. } => records,
                Outcome::Failed { published, .. } => published,
                _ => 0,
            })
            .sum()
    }

    fn count(&self, predicate: impl Fn(&Outcome) -> bool) -> usize {
        self.messages
            .iter()
            .filter(|m| predicate(&m.outcome))
            .count()
    }

    pub fn write_summary(&self, out: &mut dyn Write) -> std::io::Result<()> {
        if self.messages.is_empty() {
            return writeln!(out, "queue is empty: nothing to replay");
        }
        let would: usize = self
            .messages
            .iter()
            .map(|m| match m.outcome {
                Outcome::WouldReplay { records, .. } => records,
                _ => 0,
            })
            .sum();
        if self.would_replay() > 0 {
            writeln!(
                out,
                "dry run: {} message(s) would be replayed ({would} record(s)); nothing was changed",
                self.would_replay()
            )?;
        } else {
            writeln!(
                out,
                "replayed {} message(s), re-published {} record(s)",
                self.replayed(),
                self.records_published()
            )?;
        }
        if self.skipped() > 0 {
            writeln!(
                out,
                "skipped {} message(s), left in the queue:",
                self.skipped()
            )?;
            for m in &self.messages {
                if let Outcome::Skipped { why } = &m.outcome {
                    writeln!(out, "  {} ({}): {why}", m.message_id, m.kind)?;
                }
            }
        }
        if self.failed() > 0 {
            writeln!(
                out,
                "failed {} message(s), left in the queue:",
                self.failed()
            )?;
            for m in &self.messages {
                if let Outcome::Failed { published, why } = &m.outcome {
                    writeln!(
                        out,
                        "  {} ({}): {why} ({published} record(s) already re-published)",
                        m.message_id, m.kind
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// What one message asks for.
enum Plan {
    Put {
        stream: StreamRef,
        records: Vec<StreamRecord>,
    },
    Invoke {
        function: String,
        event: Value,
        records: usize,
    },
    Skip(String),
}

/// Replays up to `options.max` messages of `queue`, printing one line per message to `out`.
pub async fn replay(
    queue: &Queue,
    kinesis: &aws_sdk_kinesis::Client,
    lambda: &aws_sdk_lambda::Client,
    options: &ReplayOptions,
    out: &mut dyn Write,
) -> anyhow::Result<ReplayReport> {
    let mut session = queue.session(VISIBILITY_SECS);
    let mut report = ReplayReport::default();
    let result = async {
        while report.messages.len() < options.max {
            let batch = session
                .next_batch(options.max - report.messages.len())
                .await?;
            if batch.is_empty() {
                break;
            }
            for message in batch {
                let (kind, plan) = plan(kinesis, &message, &options.to).await;
                let outcome = match plan {
                    Plan::Skip(why) => {
                        session.hold(&message);
                        Outcome::Skipped { why }
                    }
                    Plan::Put { stream, records } if options.dry_run => {
                        session.hold(&message);
                        Outcome::WouldReplay {
                            records: records.len(),
                            stream: stream.to_string(),
                        }
                    }
                    Plan::Invoke {
                        function, records, ..
                    } if options.dry_run => {
                        session.hold(&message);
                        Outcome::WouldReplay {
                            records,
                            stream: format!("function {function}"),
                        }
                    }
                    Plan::Invoke {
                        function,
                        event,
                        records,
                    } => match invoke(lambda, &function, &event).await {
                        Err(why) => {
                            session.hold(&message);
                            Outcome::Failed { published: 0, why }
                        }
                        Ok(()) => match session.delete(&message).await {
                            Ok(()) => Outcome::Replayed {
                                records,
                                stream: format!("function {function}"),
                            },
                            Err(err) => Outcome::Failed {
                                published: records,
                                why: format!("handled, but {err:#}"),
                            },
                        },
                    },
                    Plan::Put { stream, records } => {
                        match stream::put_records(kinesis, &stream, &records).await {
                            Err((published, err)) => {
                                session.hold(&message);
                                Outcome::Failed {
                                    published,
                                    why: format!("{err:#}"),
                                }
                            }
                            Ok(published) => match session.delete(&message).await {
                                Ok(()) => Outcome::Replayed {
                                    records: published,
                                    stream: stream.to_string(),
                                },
                                Err(err) => Outcome::Failed {
                                    published,
                                    why: format!("re-published, but {err:#}"),
                                },
                            },
                        }
                    }
                };
                print_outcome(out, &message.message_id, kind, &outcome)?;
                report.messages.push(MessageOutcome {
                    message_id: message.message_id,
                    kind,
                    outcome,
                });
            }
        }
        anyhow::Ok(())
    }
    .await;
    // Whatever happened, what was not replayed becomes visible again.
    let released = session.release().await;
    result?;
    released?;
    Ok(report)
}

async fn plan(
    kinesis: &aws_sdk_kinesis::Client,
    message: &Received,
    to: &Destination,
) -> (&'static str, Plan) {
    let parsed = match dlq::parse(&message.body) {
        Ok(parsed) => parsed,
        Err(err) => {
            return (
                "unknown",
                Plan::Skip(format!("unrecognised message: {err}")),
            );
        }
    };
    let kind = parsed.kind();
    // The records, with the stream and shard they came from.
    let (source, shard, records) = match &parsed {
        DlqMessage::Poison(letter) => {
            let data = match letter.data() {
                Ok(data) => data,
                Err(err) => {
                    return (
                        kind,
                        Plan::Skip(format!("the record's data is not base64: {err}")),
                    );
                }
            };
            let record = StreamRecord {
                partition_key: letter.record.kinesis.partition_key.clone(),
                data,
                sequence_number: letter.record.kinesis.sequence_number.to_string(),
            };
            (
                letter.record.event_source_arn.clone(),
                letter.shard().map(str::to_owned),
                vec![record],
            )
        }
        DlqMessage::OnFailure(record) => {
            let batch = &record.batch;
            let range = format!(
                "{} {}..{}",
                batch.shard_id, batch.start_sequence_number, batch.end_sequence_number
            );
            let read = stream::read_range(
                kinesis,
                &StreamRef::parse(&batch.stream_arn),
                &batch.shard_id,
                &batch.start_sequence_number,
                &batch.end_sequence_number,
            )
            .await;
            match read {
                Ok(RangeRead::Found(records)) => (
                    Some(batch.stream_arn.clone()),
                    Some(batch.shard_id.clone()),
                    records,
                ),
                Ok(RangeRead::Gone(why)) => {
                    return (
                        kind,
                        Plan::Skip(format!("range {range} is no longer on the stream: {why}")),
                    );
                }
                Err(err) => {
                    return (
                        kind,
                        Plan::Skip(format!("cannot read range {range}: {err:#}")),
                    );
                }
            }
        }
    };
    let plan = match to {
        Destination::Stream(target) => match (target, source) {
            (Some(stream), _) => Plan::Put {
                stream: stream.clone(),
                records,
            },
            (None, Some(arn)) => Plan::Put {
                stream: StreamRef::parse(&arn),
                records,
            },
            (None, None) => Plan::Skip("the record has no eventSourceARN: pass --stream".into()),
        },
        Destination::Function => {
            let function = parsed.function();
            match (function, source, shard) {
                ("-", _, _) => {
                    Plan::Skip("the message names no function: replay it with --to stream".into())
                }
                (_, None, _) | (_, _, None) => Plan::Skip(
                    "the record names no stream or shard: replay it with --stream".into(),
                ),
                (function, Some(arn), Some(shard)) => Plan::Invoke {
                    function: function.to_owned(),
                    event: kinesis_event(&arn, &shard, &records),
                    records: records.len(),
                },
            }
        }
    };
    (kind, plan)
}

/// The Kinesis event Lambda's event source mapping delivers for `records` of `shard`.
fn kinesis_event(stream_arn: &str, shard: &str, records: &[StreamRecord]) -> Value {
    let region = stream_arn.split(':').nth(3).unwrap_or("us-east-1");
    // Seconds with milliseconds, as Lambda sends it (finer is refused by the runtime's parser).
    let arrival = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as f64 / 1000.0)
        .unwrap_or(0.0);
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.partition_key,
                    "sequenceNumber": r.sequence_number,
                    "data": STANDARD.encode(&r.data),
                    "approximateArrivalTimestamp": arrival
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{shard}:{}", r.sequence_number),
                "eventName": "aws:kinesis:record",
                "awsRegion": region,
                "eventSourceARN": stream_arn
            })
        })
        .collect();
    json!({ "Records": records })
}

/// Invokes `function` with `event`; `Ok` only when it handled every record (no function
/// error, no batch item failure).
async fn invoke(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    event: &Value,
) -> Result<(), String> {
    let output = lambda
        .invoke()
        .function_name(function)
        .payload(aws_sdk_lambda::primitives::Blob::new(event.to_string()))
        .send()
        .await
        .map_err(|err| {
            format!(
                "invoking {function}: {}",
                aws_sdk_lambda::error::DisplayErrorContext(&err)
            )
        })?;
    let payload = output.payload.map(|b| b.into_inner()).unwrap_or_default();
    if let Some(error) = output.function_error {
        return Err(format!(
            "{function} failed ({error}): {}",
            String::from_utf8_lossy(&payload)
        ));
    }
    let response: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
    match response["batchItemFailures"].as_array() {
        Some(failures) if !failures.is_empty() => Err(format!(
            "{function} handed {} record(s) back (from {})",
            failures.len(),
            failures[0]["itemIdentifier"]
        )),
        _ => Ok(()),
    }
}

fn print_outcome(
    out: &mut dyn Write,
    id: &str,
    kind: &str,
    outcome: &Outcome,
) -> std::io::Result<()> {
    match outcome {
        Outcome::Replayed { records, stream } => writeln!(
            out,
            "replayed      {id} ({kind}): {records} record(s) -> {stream}; message deleted"
        ),
        Outcome::WouldReplay { records, stream } => writeln!(
            out,
            "would replay  {id} ({kind}): {records} record(s) -> {stream}"
        ),
        Outcome::Skipped { why } => writeln!(out, "skipped       {id} ({kind}): {why}"),
        Outcome::Failed { published, why } => writeln!(
            out,
            "FAILED        {id} ({kind}): {why} ({published} record(s) re-published)"
        ),
    }
}
