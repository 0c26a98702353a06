//! Stream event source mappings (Kinesis data streams and DynamoDB Streams), run locally the way
//! the Lambda event source mapping service runs them.
//!
//! Why: the emulator stores the mappings Terraform created but never polls the streams. This module
//! reads the mappings, polls every shard and invokes the functions through
//! [`Runtime::invoke`](crate::Runtime::invoke) with Lambda's semantics: strictly in order per
//! shard (ParallelizationFactor 1), batching window, partial batch responses, bisection on
//! function errors, retry and record-age limits, the on-failure destination, and checkpoints that
//! survive a restart of the runner.
//!
//! The source-specific parts (listing shards, reading records, building the per-record event
//! JSON) sit behind [`StreamSource`] / [`ShardReader`]; everything else (batching, result
//! handling, checkpoints, on-failure records) is shared. See [`crate::kinesis_poller`] for Kinesis
//! and [`crate::dynamodb_streams`] for DynamoDB Streams.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_trait::async_trait;
use aws_config::SdkConfig;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::dynamodb_streams::DynamoDbStreamSource;
use crate::instances::{InvokeError, Runtime};
use crate::kinesis_poller::KinesisSource;

/// Lambda's invocation payload limit (synchronous invocations).
pub const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;
/// Kinesis `GetRecords` returns at most this many records (DynamoDB Streams: 1,000, enforced by
/// its reader); also Lambda's maximum batch size for both.
pub const MAX_GET_RECORDS: usize = 10_000;

// ---------------------------------------------------------------------------------------------
// Sequence numbers
// ---------------------------------------------------------------------------------------------

/// Compares two stream sequence numbers.
///
/// Sequence numbers are opaque decimal strings: AWS's have ~56 digits (they do not fit in a
/// `u64`), moto's are small integers. Compare them as arbitrary-precision integers: strip leading
/// zeros, then the longer is greater, then compare lexicographically.
pub fn compare_sequence_numbers(a: &str, b: &str) -> Ordering {
    let a = a.trim().trim_start_matches('0');
    let b = b.trim().trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

// ---------------------------------------------------------------------------------------------
// Source abstraction
// ---------------------------------------------------------------------------------------------

/// One record read from a shard, already in the shape it takes in the event's `Records[]`.
#[derive(Debug, Clone)]
pub struct StreamRecord {
    pub sequence_number: String,
    /// Approximate arrival time in the stream (drives `MaximumRecordAgeInSeconds`).
    pub arrival: OffsetDateTime,
    /// The record as it appears in `Records[]` of the event.
    pub event: Value,
    /// Serialized size of `event` (for the 6 MB payload cap).
    pub size: usize,
}

/// A shard as listed by the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    pub shard_id: String,
    pub parent_shard_id: Option<String>,
    pub adjacent_parent_shard_id: Option<String>,
    /// Set when the shard is closed (after a reshard): its last sequence number.
    pub ending_sequence_number: Option<String>,
}

/// Where to start reading a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    TrimHorizon,
    Latest,
    AtTimestamp(OffsetDateTime),
    /// Resume after a checkpoint.
    AfterSequenceNumber(String),
}

/// A stream the mapping reads from (Kinesis data stream, DynamoDB stream, ...).
#[async_trait]
pub trait StreamSource: Send + Sync + 'static {
    /// Key of the batch description in the on-failure record (`KinesisBatchInfo`,
    /// `DDBStreamBatchInfo`).
    fn batch_info_key(&self) -> &'static str;
    async fn list_shards(&self) -> anyhow::Result<Vec<ShardInfo>>;
    async fn open_shard(
        &self,
        shard_id: &str,
        position: &Position,
    ) -> anyhow::Result<Box<dyn ShardReader>>;
}

/// Sequential reader of one shard.
#[async_trait]
pub trait ShardReader: Send {
    /// Up to `limit` records following the ones already returned (possibly none). `Ok(None)` once
    /// the shard is closed and fully read.
    async fn read(&mut self, limit: usize) -> anyhow::Result<Option<Vec<StreamRecord>>>;
}

// ---------------------------------------------------------------------------------------------
// Mapping configuration
// ---------------------------------------------------------------------------------------------

/// The settings of one event source mapping that the poller honours.
#[derive(Debug, Clone)]
pub struct MappingConfig {
    pub uuid: String,
    /// Name of the runnable function (as known to the [`Runtime`]).
    pub function: String,
    pub function_arn: String,
    /// Execution role, reported as `invokeIdentityArn`.
    pub role_arn: String,
    pub source_arn: String,
    pub batch_size: usize,
    pub batching_window: Duration,
    pub starting_position: Position,
    pub report_batch_item_failures: bool,
    pub bisect_on_error: bool,
    /// `None` = infinite (`-1`).
    pub max_retry_attempts: Option<u32>,
    /// `None` = infinite (`-1`).
    pub max_record_age: Option<Duration>,
    pub on_failure_destination: Option<String>,
}

/// Reads every enabled stream mapping whose function is runnable by `runtime`.
pub async fn discover_mappings(
    sdk: &SdkConfig,
    runtime: &Runtime,
) -> anyhow::Result<Vec<MappingConfig>> {
    let lambda = aws_sdk_lambda::Client::new(sdk);
    let mut pages = lambda
        .list_event_source_mappings()
        .into_paginator()
        .items()
        .send();
    let mut mappings = Vec::new();
    while let Some(item) = pages.next().await {
        let m = item.context("ListEventSourceMappings failed")?;
        let uuid = m.uuid().unwrap_or_default().to_owned();
        let source_arn = m.event_source_arn().unwrap_or_default().to_owned();
        let Some(function) = m.function_arn().and_then(|arn| {
            runtime
                .resolve(arn)
                .or_else(|| runtime.resolve(arn_name(arn)))
        }) else {
            debug!(%uuid, function = ?m.function_arn(), "mapping skipped: function not runnable");
            continue;
        };
        let state = m.state().unwrap_or("Enabled");
        if !matches!(state, "Enabled" | "Creating" | "Enabling" | "Updating") {
            info!(%uuid, function = %function.name, state, "mapping skipped: not enabled");
            continue;
        }
        if !matches!(source_service(&source_arn), Some("kinesis" | "dynamodb")) {
            warn!(%uuid, function = %function.name, source = %source_arn, "mapping skipped: only Kinesis and DynamoDB Streams event sources are emulated");
            continue;
        }
        let starting_position = match m.starting_position().map(|p| p.as_str()) {
            Some("LATEST") => Position::Latest,
            Some("AT_TIMESTAMP") => {
                let ts = m
                    .starting_position_timestamp()
                    .map(|t| t.secs())
                    .unwrap_or_default();
                Position::AtTimestamp(
                    OffsetDateTime::from_unix_timestamp(ts).unwrap_or(OffsetDateTime::UNIX_EPOCH),
                )
            }
            _ => Position::TrimHorizon,
        };
        let role_arn = match lambda
            .get_function_configuration()
            .function_name(&function.arn)
            .send()
            .await
        {
            Ok(config) => config.role().map(str::to_owned),
            Err(err) => {
                debug!(function = %function.name, "GetFunctionConfiguration failed: {err}");
                None
            }
        }
        .unwrap_or_else(|| {
            format!(
                "arn:aws:iam::{}:role/lambda-role",
                arn_account(&function.arn).unwrap_or("123456789012")
            )
        });
        if let Some(parallelization) = m.parallelization_factor().filter(|p| *p > 1) {
            warn!(%uuid, parallelization, "ParallelizationFactor > 1 is not emulated; using 1");
        }
        mappings.push(MappingConfig {
            uuid,
            function: function.name.clone(),
            function_arn: function.arn.clone(),
            role_arn,
            source_arn,
            batch_size: m
                .batch_size()
                .filter(|b| *b > 0)
                .map_or(100, |b| usize::try_from(b).unwrap_or(100))
                .min(MAX_GET_RECORDS),
            batching_window: Duration::from_secs(u64::from(
                m.maximum_batching_window_in_seconds()
                    .unwrap_or(0)
                    .unsigned_abs(),
            )),
            starting_position,
            report_batch_item_failures: m
                .function_response_types()
                .iter()
                .any(|t| t.as_str() == "ReportBatchItemFailures"),
            bisect_on_error: m.bisect_batch_on_function_error().unwrap_or(false),
            max_retry_attempts: m
                .maximum_retry_attempts()
                .filter(|n| *n >= 0)
                .map(i32::unsigned_abs),
            max_record_age: m
                .maximum_record_age_in_seconds()
                .filter(|n| *n >= 0)
                .map(|n| Duration::from_secs(u64::from(n.unsigned_abs()))),
            on_failure_destination: m
                .destination_config()
                .and_then(|d| d.on_failure())
                .and_then(|f| f.destination())
                .filter(|d| !d.is_empty())
                .map(str::to_owned),
        });
    }
    Ok(mappings)
}

fn arn_parts(arn: &str) -> Vec<&str> {
    arn.splitn(6, ':').collect()
}

fn source_service(arn: &str) -> Option<&str> {
    arn_parts(arn).get(2).copied()
}

fn arn_account(arn: &str) -> Option<&str> {
    arn_parts(arn).get(4).copied().filter(|r| !r.is_empty())
}

/// `arn:aws:lambda:r:a:function:name[:qualifier]` → `name`.
fn arn_name(arn: &str) -> &str {
    arn.split(':').nth(6).unwrap_or(arn)
}

// ---------------------------------------------------------------------------------------------
// Checkpoints
// ---------------------------------------------------------------------------------------------

/// Last fully handled sequence number per (mapping UUID, shard id), persisted as JSON.
///
/// Keyed by mapping UUID: a re-deployed emulator creates new mappings (new UUIDs), which then
/// start from their configured starting position.
pub struct CheckpointStore {
    path: PathBuf,
    state: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
}

impl CheckpointStore {
    /// Loads `path` (a missing file means no checkpoints).
    pub fn load(path: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let path = path.into();
        let state = match std::fs::read(&path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => BTreeMap::new(),
            Ok(bytes) => {
                let doc: Value = serde_json::from_slice(&bytes)
                    .with_context(|| format!("parsing checkpoint file {}", path.display()))?;
                serde_json::from_value(doc.get("checkpoints").cloned().unwrap_or(json!({})))
                    .with_context(|| format!("reading checkpoints from {}", path.display()))?
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(err) => {
                return Err(err).with_context(|| format!("reading {}", path.display()));
            }
        };
        Ok(Self {
            path,
            state: Mutex::new(state),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn get(&self, mapping: &str, shard: &str) -> Option<String> {
        self.state.lock().await.get(mapping)?.get(shard).cloned()
    }

    /// Records `sequence_number` and rewrites the file atomically (temp file + rename).
    pub async fn set(
        &self,
        mapping: &str,
        shard: &str,
        sequence_number: &str,
    ) -> anyhow::Result<()> {
        let mut state = self.state.lock().await;
        state
            .entry(mapping.to_owned())
            .or_default()
            .insert(shard.to_owned(), sequence_number.to_owned());
        let doc = json!({"version": 1, "checkpoints": &*state});
        let bytes = serde_json::to_vec_pretty(&doc).context("serializing checkpoints")?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir)
                .await
                .with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(format!(".tmp-{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        tokio::fs::write(&tmp, &bytes)
            .await
            .with_context(|| format!("writing {}", tmp.display()))?;
        tokio::fs::rename(&tmp, &self.path)
            .await
            .with_context(|| format!("renaming {} to {}", tmp.display(), self.path.display()))?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Result interpretation, retry decisions, bisection, on-failure records (pure logic)
// ---------------------------------------------------------------------------------------------

/// What an invocation result means for the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOutcome {
    Success,
    /// `batchItemFailures` named valid records: index (in the batch) of the lowest one.
    PartialFailure {
        first_failed: usize,
    },
    /// The response reported failures Lambda cannot interpret (empty / null / unknown
    /// `itemIdentifier`, malformed list): the whole batch failed.
    InvalidBatchResponse(String),
    /// Function error, timeout or crash: the whole batch failed.
    FunctionError(String),
}

/// Interprets an invocation result like Lambda does for stream sources.
///
/// With `ReportBatchItemFailures`: an absent / null / empty `batchItemFailures` (or a null or
/// non-object response) is complete success; otherwise the batch is retried from the lowest
/// reported sequence number; an identifier that is empty, null, not a string or not in the batch
/// makes the whole batch fail. Without it, any successful invocation is complete success.
pub fn interpret_result(
    result: &Result<Value, InvokeError>,
    sequence_numbers: &[&str],
    report_batch_item_failures: bool,
) -> BatchOutcome {
    let response = match result {
        Ok(response) => response,
        Err(err) => return BatchOutcome::FunctionError(format!("{}: {err}", err.error_type())),
    };
    if !report_batch_item_failures {
        return BatchOutcome::Success;
    }
    let failures = match response.get("batchItemFailures") {
        None | Some(Value::Null) => return BatchOutcome::Success,
        Some(Value::Array(items)) if items.is_empty() => return BatchOutcome::Success,
        Some(Value::Array(items)) => items,
        Some(other) => {
            return BatchOutcome::InvalidBatchResponse(format!(
                "batchItemFailures is not a list: {other}"
            ));
        }
    };
    let mut lowest: Option<usize> = None;
    for item in failures {
        let identifier = item.get("itemIdentifier").and_then(Value::as_str);
        let Some(identifier) = identifier.filter(|id| !id.is_empty()) else {
            return BatchOutcome::InvalidBatchResponse(format!("invalid itemIdentifier in {item}"));
        };
        let Some(index) = sequence_numbers
            .iter()
            .position(|seq| compare_sequence_numbers(seq, identifier) == Ordering::Equal)
        else {
            return BatchOutcome::InvalidBatchResponse(format!(
                "itemIdentifier {identifier} is not in the batch"
            ));
        };
        lowest = Some(lowest.map_or(index, |l| l.min(index)));
    }
    match lowest {
        Some(first_failed) => BatchOutcome::PartialFailure { first_failed },
        None => BatchOutcome::Success,
    }
}

/// Why a batch is given up on (the `condition` of the on-failure record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    RetryAttemptsExhausted,
    RecordAgeExceeded,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::RetryAttemptsExhausted => "RetryAttemptsExhausted",
            Condition::RecordAgeExceeded => "RecordAgeExceeded",
        }
    }
}

/// After a failed attempt that counts toward the retry quota: `failures` is the number of such
/// failed attempts so far (including this one). `MaximumRetryAttempts = N` allows N retries after
/// the first attempt, so the batch is exhausted once `failures > N`. `None` = infinite.
pub fn retries_exhausted(failures: u32, max_retry_attempts: Option<u32>) -> bool {
    max_retry_attempts.is_some_and(|max| failures > max)
}

/// Number of leading records older than `max_age` at `now` (records are in arrival order).
pub fn expired_prefix(
    records: &[StreamRecord],
    max_age: Option<Duration>,
    now: OffsetDateTime,
) -> usize {
    let Some(max_age) = max_age else {
        return 0;
    };
    records
        .iter()
        .take_while(|r| (now - r.arrival) > max_age)
        .count()
}

/// Splits a failed batch in two for `BisectBatchOnFunctionError` (first half gets the extra
/// record); `None` for a single record.
pub fn bisect<T>(mut records: Vec<T>) -> Option<(Vec<T>, Vec<T>)> {
    if records.len() < 2 {
        return None;
    }
    let second = records.split_off(records.len().div_ceil(2));
    Some((records, second))
}

/// Retry delay before the `failures`-th retry: 200 ms doubling, capped at 5 s.
pub fn retry_backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(10);
    Duration::from_millis(200u64 << exp).min(Duration::from_secs(5))
}

fn rfc3339_millis(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Details of the failed batch for [`on_failure_record`].
pub struct FailedBatch<'a> {
    pub function_arn: &'a str,
    pub stream_arn: &'a str,
    pub shard_id: &'a str,
    pub batch_info_key: &'a str,
    pub records: &'a [StreamRecord],
    pub condition: Condition,
    /// Invocations that included these records.
    pub invoke_count: u32,
    /// `Some("Unhandled")` when the last attempt was a function error.
    pub function_error: Option<&'a str>,
}

/// The invocation record Lambda sends to a stream mapping's on-failure destination (see "Kinesis
/// on-failure destination" in the Lambda developer guide). `responseContext` is present when the
/// records were invoked at least once; `functionError` when the last attempt was a function error.
pub fn on_failure_record(batch: &FailedBatch<'_>, request_id: &str, now: OffsetDateTime) -> Value {
    let first = batch.records.first();
    let last = batch.records.last();
    let mut record = json!({
        "requestContext": {
            "requestId": request_id,
            "functionArn": batch.function_arn,
            "condition": batch.condition.as_str(),
            "approximateInvokeCount": batch.invoke_count,
        },
        "version": "1.0",
        "timestamp": rfc3339_millis(now),
    });
    if batch.invoke_count > 0 {
        let mut response = json!({"statusCode": 200, "executedVersion": "$LATEST"});
        if let Some(error) = batch.function_error {
            response["functionError"] = json!(error);
        }
        record["responseContext"] = response;
    }
    record[batch.batch_info_key] = json!({
        "shardId": batch.shard_id,
        "startSequenceNumber": first.map(|r| r.sequence_number.as_str()),
        "endSequenceNumber": last.map(|r| r.sequence_number.as_str()),
        "approximateArrivalOfFirstRecord": first.map(|r| rfc3339_millis(r.arrival)),
        "approximateArrivalOfLastRecord": last.map(|r| rfc3339_millis(r.arrival)),
        "batchSize": batch.records.len(),
        "streamArn": batch.stream_arn,
    });
    record
}

// ---------------------------------------------------------------------------------------------
// On-failure destinations
// ---------------------------------------------------------------------------------------------

/// Sends on-failure records to SQS destinations (queue URLs resolved once per ARN).
struct Destinations {
    sqs: aws_sdk_sqs::Client,
    urls: Mutex<HashMap<String, String>>,
}

impl Destinations {
    async fn send(&self, destination: &str, record: &Value) -> anyhow::Result<()> {
        let parts = arn_parts(destination);
        if parts.get(2) != Some(&"sqs") || parts.len() < 6 {
            anyhow::bail!(
                "unsupported on-failure destination {destination} (only SQS is emulated)"
            );
        }
        let url = {
            let cached = self.urls.lock().await.get(destination).cloned();
            match cached {
                Some(url) => url,
                None => {
                    let url = self
                        .sqs
                        .get_queue_url()
                        .queue_name(parts[5])
                        .queue_owner_aws_account_id(parts[4])
                        .send()
                        .await
                        .with_context(|| format!("GetQueueUrl for {destination}"))?
                        .queue_url()
                        .with_context(|| format!("GetQueueUrl for {destination} returned no URL"))?
                        .to_owned();
                    self.urls
                        .lock()
                        .await
                        .insert(destination.to_owned(), url.clone());
                    url
                }
            }
        };
        self.sqs
            .send_message()
            .queue_url(&url)
            .message_body(record.to_string())
            .send()
            .await
            .with_context(|| format!("SendMessage to {destination}"))?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

/// Tunables (defaults suit the local stack; tests shorten them).
#[derive(Debug, Clone)]
pub struct EventSourceOptions {
    pub checkpoint_file: PathBuf,
    /// Delay between `GetRecords` calls on an idle shard.
    pub idle_poll: Duration,
    /// How often shards are re-listed (new shards after a reshard).
    pub shard_refresh: Duration,
}

impl Default for EventSourceOptions {
    fn default() -> Self {
        Self {
            checkpoint_file: PathBuf::from(".local/checkpoints.json"),
            idle_poll: Duration::from_millis(300),
            shard_refresh: Duration::from_secs(10),
        }
    }
}

/// Running pollers; [`EventSources::stop`] ends them.
pub struct EventSources {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl EventSources {
    /// Starts one manager per mapping (which starts one poller per shard).
    pub fn start(
        sdk: &SdkConfig,
        runtime: &Runtime,
        mappings: Vec<MappingConfig>,
        options: EventSourceOptions,
    ) -> anyhow::Result<Self> {
        let checkpoints = Arc::new(CheckpointStore::load(&options.checkpoint_file)?);
        let destinations = Arc::new(Destinations {
            sqs: aws_sdk_sqs::Client::new(sdk),
            urls: Mutex::new(HashMap::new()),
        });
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for mapping in mappings {
            info!(
                uuid = %mapping.uuid,
                function = %mapping.function,
                source = %mapping.source_arn,
                batch_size = mapping.batch_size,
                batching_window_s = mapping.batching_window.as_secs(),
                starting_position = ?mapping.starting_position,
                report_batch_item_failures = mapping.report_batch_item_failures,
                bisect_on_error = mapping.bisect_on_error,
                max_retry_attempts = mapping.max_retry_attempts.map_or(-1, i64::from),
                max_record_age_s = mapping.max_record_age.map_or(-1, |a| i64::try_from(a.as_secs()).unwrap_or(i64::MAX)),
                on_failure = mapping.on_failure_destination.as_deref().unwrap_or("(none)"),
                "event source mapping"
            );
            let source: Arc<dyn StreamSource> = match source_service(&mapping.source_arn) {
                Some("dynamodb") => Arc::new(DynamoDbStreamSource::new(sdk, &mapping.source_arn)),
                _ => Arc::new(KinesisSource::new(
                    sdk,
                    &mapping.source_arn,
                    &mapping.role_arn,
                )),
            };
            let context = Arc::new(MappingContext {
                mapping,
                source,
                runtime: runtime.clone(),
                checkpoints: Arc::clone(&checkpoints),
                destinations: Arc::clone(&destinations),
                options: options.clone(),
                stop: stop_rx.clone(),
            });
            tasks.push(tokio::spawn(run_mapping(context)));
        }
        Ok(Self { stop, tasks })
    }

    /// Signals every poller to stop and waits for them (an in-flight batch is abandoned without
    /// checkpointing, so it is redelivered on the next start: at-least-once, like Lambda).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

struct MappingContext {
    mapping: MappingConfig,
    source: Arc<dyn StreamSource>,
    runtime: Runtime,
    checkpoints: Arc<CheckpointStore>,
    destinations: Arc<Destinations>,
    options: EventSourceOptions,
    stop: watch::Receiver<bool>,
}

impl MappingContext {
    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleeps `duration`; `false` if stopped meanwhile.
    async fn sleep(&self, duration: Duration) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            () = tokio::time::sleep(duration) => !self.stopped(),
            _ = stop.wait_for(|s| *s) => false,
        }
    }
}

/// Lists shards periodically and starts a poller per shard once its parents are finished.
async fn run_mapping(ctx: Arc<MappingContext>) {
    let mut started: HashSet<String> = HashSet::new();
    let mut pollers: Vec<(String, JoinHandle<bool>)> = Vec::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut first_listing = true;
    while !ctx.stopped() {
        // Collect shards whose poller ended because the shard was fully read.
        let mut still_running = Vec::new();
        for (shard, handle) in pollers {
            if handle.is_finished() {
                if let Ok(true) = handle.await {
                    finished.insert(shard);
                }
            } else {
                still_running.push((shard, handle));
            }
        }
        pollers = still_running;

        match ctx.source.list_shards().await {
            Ok(shards) => {
                let listed: HashSet<&str> = shards.iter().map(|s| s.shard_id.as_str()).collect();
                for shard in &shards {
                    if started.contains(&shard.shard_id) {
                        continue;
                    }
                    // Parent before child after a reshard: a parent still listed must be done.
                    let parents_done = [&shard.parent_shard_id, &shard.adjacent_parent_shard_id]
                        .into_iter()
                        .flatten()
                        .all(|p| !listed.contains(p.as_str()) || finished.contains(p));
                    if !parents_done {
                        continue;
                    }
                    started.insert(shard.shard_id.clone());
                    // Shards that appear after start-up are new: read them from the beginning.
                    let default_position = if first_listing {
                        ctx.mapping.starting_position.clone()
                    } else {
                        Position::TrimHorizon
                    };
                    let poller =
                        tokio::spawn(run_shard(Arc::clone(&ctx), shard.clone(), default_position));
                    pollers.push((shard.shard_id.clone(), poller));
                }
                first_listing = false;
            }
            Err(err) => {
                warn!(uuid = %ctx.mapping.uuid, source = %ctx.mapping.source_arn, "listing shards failed: {err:#}")
            }
        }
        // Re-list sooner when a poller just finished a closed shard (children may be waiting).
        let deadline = Instant::now() + ctx.options.shard_refresh;
        while Instant::now() < deadline && !pollers.iter().any(|(_, h)| h.is_finished()) {
            if !ctx.sleep(Duration::from_millis(200)).await {
                break;
            }
        }
    }
    for (_, handle) in pollers {
        let _ = handle.await;
    }
}

/// Polls one shard until stopped; returns `true` when the shard is closed and fully handled.
async fn run_shard(ctx: Arc<MappingContext>, shard: ShardInfo, default_position: Position) -> bool {
    let uuid = ctx.mapping.uuid.clone();
    let shard_id = shard.shard_id.clone();
    let mut checkpoint = ctx.checkpoints.get(&uuid, &shard_id).await;
    let mut failures_opening = 0;
    let mut reader = loop {
        if ctx.stopped() {
            return false;
        }
        if let (Some(end), Some(done)) = (&shard.ending_sequence_number, &checkpoint) {
            if compare_sequence_numbers(done, end) != Ordering::Less {
                return true;
            }
        }
        let position = checkpoint
            .clone()
            .map_or_else(|| default_position.clone(), Position::AfterSequenceNumber);
        match ctx.source.open_shard(&shard_id, &position).await {
            Ok(reader) => {
                info!(uuid = %uuid, function = %ctx.mapping.function, shard = %shard_id, ?position, "polling shard");
                break reader;
            }
            Err(err) => {
                failures_opening += 1;
                warn!(uuid = %uuid, shard = %shard_id, "opening the shard failed: {err:#}");
                if !ctx.sleep(retry_backoff(failures_opening)).await {
                    return false;
                }
            }
        }
    };

    let mut pending: VecDeque<StreamRecord> = VecDeque::new();
    let mut closed = false;
    let mut read_failures = 0;
    let limit = ctx.mapping.batch_size.min(MAX_GET_RECORDS);
    loop {
        if ctx.stopped() {
            return false;
        }
        // Read until a batch is ready: full, 6 MB, or the batching window elapsed since the first
        // record became available (window 0: as soon as there are records).
        let mut window_start: Option<Instant> = (!pending.is_empty()).then(Instant::now);
        loop {
            let full = pending.len() >= ctx.mapping.batch_size
                || pending.iter().map(|r| r.size).sum::<usize>() >= MAX_PAYLOAD_BYTES;
            let window_over =
                window_start.is_some_and(|start| start.elapsed() >= ctx.mapping.batching_window);
            if full || window_over || (closed && !pending.is_empty()) {
                break;
            }
            if closed {
                info!(uuid = %uuid, shard = %shard_id, "shard closed and fully processed");
                return true;
            }
            match reader.read(limit).await {
                Ok(Some(records)) => {
                    read_failures = 0;
                    if !records.is_empty() {
                        pending.extend(records);
                        window_start.get_or_insert_with(Instant::now);
                        continue;
                    }
                }
                Ok(None) => {
                    closed = true;
                    continue;
                }
                Err(err) => {
                    read_failures += 1;
                    warn!(uuid = %uuid, shard = %shard_id, "reading records failed: {err:#}");
                    if !ctx.sleep(retry_backoff(read_failures)).await {
                        return false;
                    }
                    continue;
                }
            }
            let wait = match window_start {
                Some(start) => ctx
                    .mapping
                    .batching_window
                    .saturating_sub(start.elapsed())
                    .min(ctx.options.idle_poll),
                None => ctx.options.idle_poll,
            };
            if !ctx.sleep(wait).await {
                return false;
            }
        }

        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(record) = pending.front() {
            if batch.len() >= ctx.mapping.batch_size
                || (!batch.is_empty() && bytes + record.size > MAX_PAYLOAD_BYTES)
            {
                break;
            }
            bytes += record.size;
            batch.extend(pending.pop_front());
        }
        if let Some(last) = batch.last() {
            checkpoint = Some(last.sequence_number.clone());
        }
        if !handle_batch(&ctx, &shard_id, batch).await {
            return false;
        }
        debug!(uuid = %uuid, shard = %shard_id, checkpoint = ?checkpoint, "batch handled");
    }
}

/// A batch (or a part of one) waiting to be invoked.
struct Work {
    records: Vec<StreamRecord>,
    /// Failed attempts counted toward `MaximumRetryAttempts`.
    failures: u32,
    /// Invocations that included these records.
    invokes: u32,
    /// Wait [`retry_backoff`] before invoking.
    retry: bool,
}

/// Invokes the function with `batch` until every record is handled (succeeded, or given up and
/// sent to the on-failure destination), checkpointing as it goes. `false` when stopped.
///
/// Bisection and the retry quota: the Lambda guide says "Splitting a batch does not count towards
/// the retry quota." We read that literally: a function error on a batch of two or more records
/// with `BisectBatchOnFunctionError` splits it (no retry consumed; the halves run immediately,
/// first half first, inheriting the parent's retry count and invoke count). Only failures that
/// cannot be split (a single record, bisection disabled, or a partial batch response) consume the
/// retry quota. So a poison record is isolated by repeated halving, then retried
/// `MaximumRetryAttempts` times on its own before it goes to the destination.
///
/// Partial batch responses: the records before the lowest failed one are checkpointed and the
/// rest (failed record and everything after it) is retried as the next attempt. Lambda re-reads
/// from the checkpoint and may top the retry up with newer records; we retry exactly the
/// remainder, which keeps ordering and counts identical.
async fn handle_batch(ctx: &MappingContext, shard_id: &str, batch: Vec<StreamRecord>) -> bool {
    let m = &ctx.mapping;
    let mut queue = VecDeque::from([Work {
        records: batch,
        failures: 0,
        invokes: 0,
        retry: false,
    }]);
    while let Some(mut work) = queue.pop_front() {
        if ctx.stopped() {
            return false;
        }
        let expired = expired_prefix(&work.records, m.max_record_age, OffsetDateTime::now_utc());
        if expired > 0 {
            let old: Vec<StreamRecord> = work.records.drain(..expired).collect();
            give_up(
                ctx,
                shard_id,
                &old,
                Condition::RecordAgeExceeded,
                work.invokes,
                None,
            )
            .await;
            if work.records.is_empty() {
                continue;
            }
        }
        if work.retry && !ctx.sleep(retry_backoff(work.failures)).await {
            return false;
        }

        let event = json!({
            "Records": work.records.iter().map(|r| &r.event).collect::<Vec<_>>(),
        });
        let started = Instant::now();
        let mut stop = ctx.stop.clone();
        let result = tokio::select! {
            result = ctx.runtime.invoke(&m.function, &event) => result,
            _ = stop.wait_for(|s| *s) => return false,
        };
        if matches!(result, Err(InvokeError::Shutdown)) {
            return false;
        }
        work.invokes += 1;
        let seqs: Vec<&str> = work
            .records
            .iter()
            .map(|r| r.sequence_number.as_str())
            .collect();
        let outcome = interpret_result(&result, &seqs, m.report_batch_item_failures);
        let outcome_text = match &outcome {
            BatchOutcome::Success => "success".to_owned(),
            BatchOutcome::PartialFailure { first_failed } => {
                format!("partial_failure(from {})", seqs[*first_failed])
            }
            BatchOutcome::InvalidBatchResponse(why) => format!("batch_failure({why})"),
            BatchOutcome::FunctionError(why) => format!("function_error({why})"),
        };
        info!(
            function = %m.function,
            shard = %shard_id,
            records = work.records.len(),
            first_seq = seqs.first().copied().unwrap_or_default(),
            last_seq = seqs.last().copied().unwrap_or_default(),
            duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            attempt = work.invokes,
            outcome = %outcome_text,
            "batch"
        );

        match outcome {
            BatchOutcome::Success => {
                save_checkpoint(ctx, shard_id, work.records.last()).await;
            }
            BatchOutcome::PartialFailure { first_failed } if first_failed > 0 => {
                let rest = work.records.split_off(first_failed);
                save_checkpoint(ctx, shard_id, work.records.last()).await;
                // The failed record has now failed once; a retry of it is the first retry.
                retry_or_give_up(
                    ctx,
                    shard_id,
                    &mut queue,
                    Work {
                        records: rest,
                        failures: 1,
                        invokes: work.invokes,
                        retry: true,
                    },
                    None,
                )
                .await;
            }
            BatchOutcome::PartialFailure { .. } | BatchOutcome::InvalidBatchResponse(_) => {
                work.failures += 1;
                work.retry = true;
                retry_or_give_up(ctx, shard_id, &mut queue, work, None).await;
            }
            BatchOutcome::FunctionError(_) => {
                if m.bisect_on_error && work.records.len() > 1 {
                    let (failures, invokes) = (work.failures, work.invokes);
                    if let Some((first, second)) = bisect(work.records) {
                        debug!(shard = %shard_id, first = first.len(), second = second.len(), "bisecting the failed batch");
                        for half in [second, first] {
                            queue.push_front(Work {
                                records: half,
                                failures,
                                invokes,
                                retry: false,
                            });
                        }
                    }
                } else {
                    work.failures += 1;
                    work.retry = true;
                    retry_or_give_up(ctx, shard_id, &mut queue, work, Some("Unhandled")).await;
                }
            }
        }
    }
    true
}

async fn retry_or_give_up(
    ctx: &MappingContext,
    shard_id: &str,
    queue: &mut VecDeque<Work>,
    work: Work,
    function_error: Option<&str>,
) {
    if retries_exhausted(work.failures, ctx.mapping.max_retry_attempts) {
        give_up(
            ctx,
            shard_id,
            &work.records,
            Condition::RetryAttemptsExhausted,
            work.invokes,
            function_error,
        )
        .await;
    } else {
        queue.push_front(work);
    }
}

/// Sends the on-failure record for `records` and checkpoints past them (Lambda discards them).
async fn give_up(
    ctx: &MappingContext,
    shard_id: &str,
    records: &[StreamRecord],
    condition: Condition,
    invoke_count: u32,
    function_error: Option<&str>,
) {
    let m = &ctx.mapping;
    let record = on_failure_record(
        &FailedBatch {
            function_arn: &m.function_arn,
            stream_arn: &m.source_arn,
            shard_id,
            batch_info_key: ctx.source.batch_info_key(),
            records,
            condition,
            invoke_count,
            function_error,
        },
        &uuid::Uuid::new_v4().to_string(),
        OffsetDateTime::now_utc(),
    );
    let first = records.first().map(|r| r.sequence_number.as_str());
    let last = records.last().map(|r| r.sequence_number.as_str());
    match &m.on_failure_destination {
        Some(destination) => {
            // Keep trying: losing the record silently would defeat the destination's purpose.
            let mut attempt = 0;
            loop {
                match ctx.destinations.send(destination, &record).await {
                    Ok(()) => {
                        warn!(function = %m.function, shard = %shard_id, condition = condition.as_str(), first_seq = first, last_seq = last, records = records.len(), %destination, "records discarded; on-failure record sent");
                        break;
                    }
                    Err(err) => {
                        attempt += 1;
                        error!(function = %m.function, %destination, "could not send the on-failure record: {err:#}");
                        if attempt >= 5 || !ctx.sleep(retry_backoff(attempt)).await {
                            error!(function = %m.function, record = %record, "on-failure record dropped");
                            break;
                        }
                    }
                }
            }
        }
        None => {
            error!(function = %m.function, shard = %shard_id, condition = condition.as_str(), first_seq = first, last_seq = last, records = records.len(), "records DISCARDED: the mapping has no on-failure destination");
        }
    }
    save_checkpoint(ctx, shard_id, records.last()).await;
}

async fn save_checkpoint(ctx: &MappingContext, shard_id: &str, last: Option<&StreamRecord>) {
    let Some(last) = last else {
        return;
    };
    if let Err(err) = ctx
        .checkpoints
        .set(&ctx.mapping.uuid, shard_id, &last.sequence_number)
        .await
    {
        error!(path = %ctx.checkpoints.path().display(), "could not save the checkpoint: {err:#}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AWS_A: &str = "49590338271490256608559692538361571095921575989136588898";
    const AWS_B: &str = "49590338271490256608559692540925702759324208523137515618";

    fn record(seq: &str, arrival: OffsetDateTime) -> StreamRecord {
        StreamRecord {
            sequence_number: seq.to_owned(),
            arrival,
            event: json!({"seq": seq}),
            size: 10,
        }
    }

    #[test]
    fn sequence_numbers_compare_as_big_integers() {
        assert_eq!(AWS_A.len(), 56);
        assert_eq!(compare_sequence_numbers(AWS_A, AWS_B), Ordering::Less);
        assert_eq!(compare_sequence_numbers(AWS_B, AWS_A), Ordering::Greater);
        assert_eq!(compare_sequence_numbers(AWS_A, AWS_A), Ordering::Equal);
        // Length wins over lexicographic order; leading zeros are ignored.
        assert_eq!(compare_sequence_numbers("9", "10"), Ordering::Less);
        assert_eq!(compare_sequence_numbers("0010", "10"), Ordering::Equal);
        assert_eq!(compare_sequence_numbers("0", ""), Ordering::Equal);
        let shorter = &AWS_B[1..];
        assert_eq!(compare_sequence_numbers(shorter, AWS_A), Ordering::Less);
        // One more than a 56-digit number with a carry.
        assert_eq!(
            compare_sequence_numbers(
                "49590338271490256608559692538361571095921575989136588899",
                "49590338271490256608559692538361571095921575989136588900"
            ),
            Ordering::Less
        );
    }

    #[test]
    fn batch_item_failures_retry_from_the_lowest_failed_record() {
        let seqs = ["1", "2", "3", "4"];
        let ok = |v: Value| Ok::<Value, InvokeError>(v);
        assert_eq!(
            interpret_result(
                &ok(
                    json!({"batchItemFailures": [{"itemIdentifier": "4"}, {"itemIdentifier": "2"}]})
                ),
                &seqs,
                true
            ),
            BatchOutcome::PartialFailure { first_failed: 1 }
        );
        // 56-digit identifiers, with leading zeros tolerated.
        let big = [AWS_A, AWS_B];
        assert_eq!(
            interpret_result(
                &ok(json!({"batchItemFailures": [{"itemIdentifier": AWS_B}]})),
                &big,
                true
            ),
            BatchOutcome::PartialFailure { first_failed: 1 }
        );
        for success in [
            json!(null),
            json!({}),
            json!({"batchItemFailures": []}),
            json!({"batchItemFailures": null}),
            json!("ok"),
        ] {
            assert_eq!(
                interpret_result(&ok(success.clone()), &seqs, true),
                BatchOutcome::Success,
                "{success}"
            );
        }
        for invalid in [
            json!({"batchItemFailures": [{"itemIdentifier": ""}]}),
            json!({"batchItemFailures": [{"itemIdentifier": null}]}),
            json!({"batchItemFailures": [{"itemIdentifier": "9"}, {"itemIdentifier": "1"}]}),
            json!({"batchItemFailures": [{"wrongKey": "1"}]}),
            json!({"batchItemFailures": [{"itemIdentifier": 2}]}),
            json!({"batchItemFailures": "2"}),
        ] {
            assert!(
                matches!(
                    interpret_result(&ok(invalid.clone()), &seqs, true),
                    BatchOutcome::InvalidBatchResponse(_)
                ),
                "{invalid}"
            );
        }
        // Without ReportBatchItemFailures the response is not inspected.
        assert_eq!(
            interpret_result(
                &ok(json!({"batchItemFailures": [{"itemIdentifier": "2"}]})),
                &seqs,
                false
            ),
            BatchOutcome::Success
        );
        assert!(matches!(
            interpret_result(
                &Err(InvokeError::Timeout(Duration::from_secs(3))),
                &seqs,
                true
            ),
            BatchOutcome::FunctionError(_)
        ));
    }

    #[test]
    fn bisect_splits_in_two_until_single_records() {
        assert_eq!(
            bisect(vec![1, 2, 3, 4, 5]),
            Some((vec![1, 2, 3], vec![4, 5]))
        );
        assert_eq!(bisect(vec![1, 2]), Some((vec![1], vec![2])));
        assert_eq!(bisect(vec![1]), None);
        assert_eq!(bisect(Vec::<u8>::new()), None);
    }

    #[test]
    fn retry_and_age_limits() {
        // -1 (None) = infinite.
        assert!(!retries_exhausted(10_000, None));
        // MaximumRetryAttempts 0: the first failure is final.
        assert!(retries_exhausted(1, Some(0)));
        // MaximumRetryAttempts 2: initial attempt + 2 retries.
        assert!(!retries_exhausted(1, Some(2)));
        assert!(!retries_exhausted(2, Some(2)));
        assert!(retries_exhausted(3, Some(2)));

        let now = OffsetDateTime::now_utc();
        let records = vec![
            record("1", now - Duration::from_secs(100)),
            record("2", now - Duration::from_secs(61)),
            record("3", now - Duration::from_secs(10)),
        ];
        assert_eq!(
            expired_prefix(&records, Some(Duration::from_secs(60)), now),
            2
        );
        assert_eq!(
            expired_prefix(&records, Some(Duration::from_secs(3600)), now),
            0
        );
        assert_eq!(expired_prefix(&records, None, now), 0);

        assert_eq!(retry_backoff(1), Duration::from_millis(200));
        assert_eq!(retry_backoff(2), Duration::from_millis(400));
        assert_eq!(retry_backoff(40), Duration::from_secs(5));
    }

    #[test]
    fn on_failure_record_has_lambdas_shape() {
        let first = OffsetDateTime::from_unix_timestamp_nanos(1_573_691_884_835_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let last = first + Duration::from_millis(745);
        let now = first + Duration::from_millis(1186);
        let records = vec![record(AWS_A, first), record(AWS_B, last)];
        let value = on_failure_record(
            &FailedBatch {
                function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f",
                stream_arn: "arn:aws:kinesis:us-east-1:123456789012:stream/s",
                shard_id: "shardId-000000000001",
                batch_info_key: "KinesisBatchInfo",
                records: &records,
                condition: Condition::RetryAttemptsExhausted,
                invoke_count: 4,
                function_error: Some("Unhandled"),
            },
            "c9b8fa9f-5a7f-4f6e-af9c-0c604cde93a5",
            now,
        );
        assert_eq!(
            value,
            json!({
                "requestContext": {
                    "requestId": "c9b8fa9f-5a7f-4f6e-af9c-0c604cde93a5",
                    "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f",
                    "condition": "RetryAttemptsExhausted",
                    "approximateInvokeCount": 4
                },
                "responseContext": {
                    "statusCode": 200,
                    "executedVersion": "$LATEST",
                    "functionError": "Unhandled"
                },
                "version": "1.0",
                "timestamp": "2019-11-14T00:38:06.021Z",
                "KinesisBatchInfo": {
                    "shardId": "shardId-000000000001",
                    "startSequenceNumber": AWS_A,
                    "endSequenceNumber": AWS_B,
                    "approximateArrivalOfFirstRecord": "2019-11-14T00:38:04.835Z",
                    "approximateArrivalOfLastRecord": "2019-11-14T00:38:05.580Z",
                    "batchSize": 2,
                    "streamArn": "arn:aws:kinesis:us-east-1:123456789012:stream/s"
                }
            })
        );
        // Expired before any invocation: no response context.
        let value = on_failure_record(
            &FailedBatch {
                function_arn: "f",
                stream_arn: "s",
                shard_id: "shardId-000000000001",
                batch_info_key: "DDBStreamBatchInfo",
                records: &records[..1],
                condition: Condition::RecordAgeExceeded,
                invoke_count: 0,
                function_error: None,
            },
            "id",
            now,
        );
        assert!(value.get("responseContext").is_none());
        assert_eq!(value["requestContext"]["condition"], "RecordAgeExceeded");
        assert_eq!(value["DDBStreamBatchInfo"]["batchSize"], 1);
        assert_eq!(value["DDBStreamBatchInfo"]["endSequenceNumber"], AWS_A);
    }

    #[tokio::test]
    async fn checkpoints_round_trip_through_the_file() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("local-runner-ckpt-{}", uuid::Uuid::new_v4()));
        let path = dir.join("nested").join("checkpoints.json");
        let store = CheckpointStore::load(&path)?;
        assert_eq!(store.get("m1", "shardId-000000000000").await, None);
        store.set("m1", "shardId-000000000000", "5").await?;
        store.set("m1", "shardId-000000000000", AWS_A).await?;
        store.set("m1", "shardId-000000000001", "7").await?;
        store.set("m2", "shardId-000000000000", "1").await?;

        let reloaded = CheckpointStore::load(&path)?;
        assert_eq!(
            reloaded.get("m1", "shardId-000000000000").await.as_deref(),
            Some(AWS_A)
        );
        assert_eq!(
            reloaded.get("m1", "shardId-000000000001").await.as_deref(),
            Some("7")
        );
        assert_eq!(
            reloaded.get("m2", "shardId-000000000000").await.as_deref(),
            Some("1")
        );
        // A new mapping UUID starts fresh.
        assert_eq!(reloaded.get("m3", "shardId-000000000000").await, None);
        // No temp files left behind.
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap_or(&dir))?
            .filter_map(Result::ok)
            .filter(|e| e.file_name() != "checkpoints.json")
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
