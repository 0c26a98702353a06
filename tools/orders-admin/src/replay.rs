//! Replaying dead-lettered records onto the stream.
//!
//! * A **poison dead letter** carries its record: its `data` is re-put with the same
//!   `partitionKey`, to the stream of the record's `eventSourceARN` (or `--stream`).
//! * A **Lambda on-failure record** carries only `KinesisBatchInfo` (shard, first and last
//!   sequence number): the range is read back from the source stream and every record in it
//!   is re-put, in order, with its partition key and data. If the range is no longer
//!   entirely on the stream (trimmed by retention, unknown shard, beyond the tip), nothing
//!   is re-put and the message stays in the queue.
//!
//! A message is deleted only after all its records were re-published; any message not
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
use std::io::Write;

/// How long a message stays hidden while a run looks at it.
const VISIBILITY_SECS: i32 = 300;

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Re-put here instead of the stream the records came from.
    pub stream: Option<StreamRef>,
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
    Skip(String),
}

/// Replays up to `options.max` messages of `queue`, printing one line per message to `out`.
pub async fn replay(
    queue: &Queue,
    kinesis: &aws_sdk_kinesis::Client,
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
                let (kind, plan) = plan(kinesis, &message, options.stream.as_ref()).await;
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
    target: Option<&StreamRef>,
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
    let plan = match parsed {
        DlqMessage::Poison(letter) => {
            let stream = match (target, &letter.record.event_source_arn) {
                (Some(stream), _) => stream.clone(),
                (None, Some(arn)) => StreamRef::parse(arn),
                (None, None) => {
                    return (
                        kind,
                        Plan::Skip("the record has no eventSourceARN: pass --stream".into()),
                    );
                }
            };
            match letter.data() {
                Ok(data) => Plan::Put {
                    stream,
                    records: vec![StreamRecord {
                        partition_key: letter.record.kinesis.partition_key.clone(),
                        data,
                        sequence_number: letter.record.kinesis.sequence_number.to_string(),
                    }],
                },
                Err(err) => Plan::Skip(format!("the record's data is not base64: {err}")),
            }
        }
        DlqMessage::OnFailure(record) => {
            let batch = &record.batch;
            let source = StreamRef::parse(&batch.stream_arn);
            let range = format!(
                "{} {}..{}",
                batch.shard_id, batch.start_sequence_number, batch.end_sequence_number
            );
            match stream::read_range(
                kinesis,
                &source,
                &batch.shard_id,
                &batch.start_sequence_number,
                &batch.end_sequence_number,
            )
            .await
            {
                Ok(RangeRead::Found(records)) => Plan::Put {
                    stream: target.cloned().unwrap_or(source),
                    records,
                },
                Ok(RangeRead::Gone(why)) => {
                    Plan::Skip(format!("range {range} is no longer on the stream: {why}"))
                }
                Err(err) => Plan::Skip(format!("cannot read range {range}: {err:#}")),
            }
        }
    };
    (kind, plan)
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
