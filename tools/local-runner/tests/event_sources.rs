//! Kinesis event source mappings end to end against the emulator (`AWS_ENDPOINT_URL`, default
//! http://127.0.0.1:4566): each test creates its own stream, queue, function (tagged
//! `orders:binary = echo-function`) and mapping, then runs the pollers in-process against the
//! real `echo-function` binary, which logs every invocation to a file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    DestinationConfig, EventSourcePosition, FunctionCode, FunctionResponseType, OnFailure,
};
use local_runner::event_sources::{EventSourceOptions, EventSources, discover_mappings};
use local_runner::{FunctionConfig, Runtime, RuntimeSettings};
use serde_json::Value;

mod common;

use common::{empty_zip, endpoint, ensure_role, read_lines, sdk};

#[derive(Clone, Copy)]
struct Settings {
    batch_size: i32,
    window_s: i32,
    bisect: bool,
    max_retries: i32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            batch_size: 100,
            window_s: 0,
            bisect: false,
            max_retries: 5,
        }
    }
}

struct Fixture {
    sdk: SdkConfig,
    function: String,
    function_arn: String,
    role_arn: String,
    stream_name: String,
    stream_arn: String,
    queue_url: String,
    mapping_uuid: String,
    dir: PathBuf,
    invocations: PathBuf,
    checkpoints: PathBuf,
    runtime: Runtime,
}

impl Fixture {
    async fn new(tag: &str, settings: Settings) -> Self {
        let sdk = sdk().await;
        let id = &uuid::Uuid::new_v4().simple().to_string()[..10];
        let function = format!("lr-{tag}-{id}");
        let stream_name = format!("lr-{tag}-{id}");
        let dir = std::env::temp_dir().join(format!("local-runner-es-{tag}-{id}"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let invocations = dir.join("invocations.jsonl");
        let checkpoints = dir.join("checkpoints.json");

        let kinesis = aws_sdk_kinesis::Client::new(&sdk);
        kinesis
            .create_stream()
            .stream_name(&stream_name)
            .shard_count(1)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "CreateStream (is the emulator up at {}?): {e:?}",
                    endpoint()
                )
            });
        let stream_arn = kinesis
            .describe_stream_summary()
            .stream_name(&stream_name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeStreamSummary: {e:?}"))
            .stream_description_summary()
            .map(|s| s.stream_arn().to_owned())
            .unwrap_or_else(|| panic!("no stream ARN"));

        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("lr-{tag}-{id}-dlq"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateQueue: {e:?}"))
            .queue_url()
            .unwrap_or_else(|| panic!("no queue URL"))
            .to_owned();
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetQueueAttributes: {e:?}"))
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .cloned()
            .unwrap_or_else(|| panic!("no queue ARN"));

        let role_arn = ensure_role().await;
        let lambda = aws_sdk_lambda::Client::new(&sdk);
        let created = lambda
            .create_function()
            .function_name(&function)
            .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
            .handler("bootstrap")
            .role(&role_arn)
            .code(
                FunctionCode::builder()
                    .zip_file(Blob::new(empty_zip()))
                    .build(),
            )
            .tags("orders:binary", "echo-function")
            .timeout(5)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateFunction: {e:?}"));
        let function_arn = created
            .function_arn()
            .unwrap_or_else(|| panic!("no function ARN"))
            .to_owned();

        let mapping_uuid = lambda
            .create_event_source_mapping()
            .function_name(&function)
            .event_source_arn(&stream_arn)
            .starting_position(EventSourcePosition::TrimHorizon)
            .batch_size(settings.batch_size)
            .maximum_batching_window_in_seconds(settings.window_s)
            .function_response_types(FunctionResponseType::ReportBatchItemFailures)
            .bisect_batch_on_function_error(settings.bisect)
            .maximum_retry_attempts(settings.max_retries)
            .maximum_record_age_in_seconds(3600)
            .parallelization_factor(1)
            .destination_config(
                DestinationConfig::builder()
                    .on_failure(OnFailure::builder().destination(&queue_arn).build())
                    .build(),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateEventSourceMapping: {e:?}"))
            .uuid()
            .unwrap_or_default()
            .to_owned();

        let binary = PathBuf::from(env!("CARGO_BIN_EXE_echo-function"));
        let config = FunctionConfig {
            name: function.clone(),
            arn: function_arn.clone(),
            binary,
            environment: BTreeMap::from([(
                "ECHO_INVOCATIONS_FILE".to_owned(),
                invocations.display().to_string(),
            )]),
            timeout: Duration::from_secs(5),
            memory_mb: 128,
        };
        let runtime = Runtime::new(
            vec![config],
            RuntimeSettings::from_process_env(endpoint(), "us-east-1", 1, None, dir.clone()),
        );
        Self {
            sdk,
            function,
            function_arn,
            role_arn,
            stream_name,
            stream_arn,
            queue_url,
            mapping_uuid,
            dir,
            invocations,
            checkpoints,
            runtime,
        }
    }

    /// Stops everything and deletes what the test created, so that a runner started later
    /// against the same emulator does not pick the test mapping up.
    async fn finish(self, sources: EventSources) {
        sources.stop().await;
        self.runtime.shutdown(Duration::from_secs(2)).await;
        let lambda = aws_sdk_lambda::Client::new(&self.sdk);
        let _ = lambda
            .delete_event_source_mapping()
            .uuid(&self.mapping_uuid)
            .send()
            .await;
        let _ = lambda
            .delete_function()
            .function_name(&self.function)
            .send()
            .await;
        let _ = aws_sdk_kinesis::Client::new(&self.sdk)
            .delete_stream()
            .stream_name(&self.stream_name)
            .send()
            .await;
        let _ = aws_sdk_sqs::Client::new(&self.sdk)
            .delete_queue()
            .queue_url(&self.queue_url)
            .send()
            .await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    async fn start(&self) -> EventSources {
        let mappings = discover_mappings(&self.sdk, &self.runtime)
            .await
            .unwrap_or_else(|e| panic!("discover_mappings: {e:#}"));
        assert_eq!(mappings.len(), 1, "{mappings:?}");
        assert_eq!(mappings[0].function, self.function);
        EventSources::start(
            &self.sdk,
            &self.runtime,
            mappings,
            EventSourceOptions {
                checkpoint_file: self.checkpoints.clone(),
                idle_poll: Duration::from_millis(100),
                shard_refresh: Duration::from_secs(1),
            },
        )
        .unwrap_or_else(|e| panic!("start: {e:#}"))
    }

    /// Puts records with one `PutRecords` call (the poller sees them together, in order);
    /// returns their sequence numbers.
    async fn put(&self, data: &[&str]) -> Vec<String> {
        let kinesis = aws_sdk_kinesis::Client::new(&self.sdk);
        let mut request = kinesis.put_records().stream_name(&self.stream_name);
        for item in data {
            request = request.records(
                aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
                    .partition_key("pk")
                    .data(aws_sdk_kinesis::primitives::Blob::new(item.as_bytes()))
                    .build()
                    .unwrap_or_else(|e| panic!("{e}")),
            );
        }
        let out = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutRecords: {e:?}"));
        assert_eq!(out.failed_record_count(), Some(0));
        out.records()
            .iter()
            .map(|r| {
                r.sequence_number()
                    .unwrap_or_else(|| panic!("no sequence number"))
                    .to_owned()
            })
            .collect()
    }

    fn invocations(&self) -> Vec<Value> {
        read_lines(&self.invocations)
    }

    async fn wait_for(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let invocations = self.invocations();
            if done(&invocations) {
                return invocations;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "timed out waiting for {what}; invocations: {:#?}",
                summary(&invocations)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn receive_all(&self, wait: Duration) -> Vec<Value> {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        let deadline = Instant::now() + wait;
        let mut messages = Vec::new();
        while Instant::now() < deadline {
            let out = sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap_or_else(|e| panic!("ReceiveMessage: {e:?}"));
            for message in out.messages() {
                let body = message.body().unwrap_or_default();
                messages.push(serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}")));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        messages
    }

    fn checkpoint(&self) -> Option<String> {
        let doc: Value = serde_json::from_slice(&std::fs::read(&self.checkpoints).ok()?).ok()?;
        doc["checkpoints"]
            .as_object()?
            .values()
            .next()?
            .get("shardId-000000000000")?
            .as_str()
            .map(str::to_owned)
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn seqs_of(invocation: &Value) -> Vec<String> {
    strings(&invocation["seqs"])
}

fn summary(invocations: &[Value]) -> Vec<Vec<String>> {
    invocations.iter().map(|i| strings(&i["data"])).collect()
}

fn delivered(invocations: &[Value]) -> Vec<String> {
    invocations.iter().flat_map(seqs_of).collect()
}

#[tokio::test]
async fn records_are_delivered_in_order_across_batches_with_the_lambda_event_shape() {
    let fx = Fixture::new(
        "order",
        Settings {
            batch_size: 10,
            ..Settings::default()
        },
    )
    .await;
    let data: Vec<String> = (0..35).map(|i| format!("record-{i}")).collect();
    let refs: Vec<&str> = data.iter().map(String::as_str).collect();
    let seqs = fx.put(&refs).await;
    let sources = fx.start().await;

    let invocations = fx
        .wait_for("35 records", |inv| delivered(inv).len() >= 35)
        .await;
    assert_eq!(delivered(&invocations), seqs, "{:?}", summary(&invocations));
    assert!(invocations.iter().all(|i| seqs_of(i).len() <= 10));
    assert!(invocations.len() >= 4);
    let all_data: Vec<String> = invocations
        .iter()
        .flat_map(|i| strings(&i["data"]))
        .collect();
    assert_eq!(all_data, data);

    let record = &invocations[0]["event"]["Records"][0];
    assert_eq!(record["eventSource"], "aws:kinesis");
    assert_eq!(record["eventVersion"], "1.0");
    assert_eq!(record["eventName"], "aws:kinesis:record");
    assert_eq!(
        record["eventID"],
        format!("shardId-000000000000:{}", seqs[0])
    );
    assert_eq!(record["eventSourceARN"], fx.stream_arn.as_str());
    assert_eq!(record["awsRegion"], "us-east-1");
    assert_eq!(record["invokeIdentityArn"], fx.role_arn.as_str());
    assert_eq!(record["kinesis"]["kinesisSchemaVersion"], "1.0");
    assert_eq!(record["kinesis"]["partitionKey"], "pk");
    assert_eq!(record["kinesis"]["sequenceNumber"], seqs[0].as_str());
    assert_eq!(record["kinesis"]["data"], "cmVjb3JkLTA="); // base64("record-0")
    let arrival = record["kinesis"]["approximateArrivalTimestamp"]
        .as_f64()
        .unwrap_or_else(|| panic!("timestamp is not a number: {record}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    assert!((now - arrival).abs() < 120.0, "{arrival} vs {now}");

    // Nothing is delivered twice, and the checkpoint is the last record.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(delivered(&fx.invocations()), seqs);
    assert_eq!(fx.checkpoint().as_deref(), seqs.last().map(String::as_str));
    fx.finish(sources).await;
}

#[tokio::test]
async fn partial_batch_failures_are_retried_from_the_lowest_failed_record() {
    let fx = Fixture::new("partial", Settings::default()).await;
    let seqs = fx
        .put(&["a", "b", "c fail-once", "d", "e fail-once", "f"])
        .await;
    let sources = fx.start().await;

    let invocations = fx.wait_for("the retry", |inv| inv.len() >= 2).await;
    // First attempt: the whole batch; retry: from the lowest failed record (c) to the end,
    // including d and f which succeeded (Lambda's behaviour).
    assert_eq!(
        seqs_of(&invocations[0]),
        seqs,
        "{:?}",
        summary(&invocations)
    );
    assert_eq!(
        seqs_of(&invocations[1]),
        seqs[2..],
        "{:?}",
        summary(&invocations)
    );

    // An invalid itemIdentifier fails the whole batch, which is retried in full.
    let more = fx.put(&["g bad-id-once", "h"]).await;
    let invocations = fx
        .wait_for("the invalid-identifier retry", |inv| inv.len() >= 4)
        .await;
    assert_eq!(
        seqs_of(&invocations[2]),
        more,
        "{:?}",
        summary(&invocations)
    );
    assert_eq!(
        seqs_of(&invocations[3]),
        more,
        "{:?}",
        summary(&invocations)
    );

    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        fx.invocations().len(),
        4,
        "{:?}",
        summary(&fx.invocations())
    );
    assert_eq!(fx.checkpoint().as_deref(), more.last().map(String::as_str));
    assert!(fx.receive_all(Duration::from_millis(300)).await.is_empty());
    fx.finish(sources).await;
}

#[tokio::test]
async fn a_poison_record_is_bisected_out_and_sent_to_the_on_failure_destination() {
    let fx = Fixture::new(
        "poison",
        Settings {
            batch_size: 10,
            bisect: true,
            max_retries: 1,
            ..Settings::default()
        },
    )
    .await;
    let data = ["r0", "r1", "r2", "r3 poison", "r4", "r5", "r6", "r7"];
    let seqs = fx.put(&data).await;
    let sources = fx.start().await;

    let invocations = fx
        .wait_for("r7 after the poison record", |inv| {
            inv.iter()
                .any(|i| seqs_of(i).contains(&seqs[7]) && !seqs_of(i).contains(&seqs[3]))
        })
        .await;
    // [0..7] ✗ → [0..3] ✗ → [0,1] ✓ → [2,3] ✗ → [2] ✓ → [3] ✗ → retry [3] ✗ → destination
    // → [4..7] ✓
    let expected: Vec<Vec<String>> = vec![
        seqs.clone(),
        seqs[0..4].to_vec(),
        seqs[0..2].to_vec(),
        seqs[2..4].to_vec(),
        seqs[2..3].to_vec(),
        seqs[3..4].to_vec(),
        seqs[3..4].to_vec(),
        seqs[4..8].to_vec(),
    ];
    let got: Vec<Vec<String>> = invocations.iter().map(seqs_of).collect();
    assert_eq!(got, expected, "{:?}", summary(&invocations));

    let messages = fx.receive_all(Duration::from_millis(1500)).await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let record = &messages[0];
    assert_eq!(record["version"], "1.0");
    assert_eq!(
        record["requestContext"]["functionArn"],
        fx.function_arn.as_str()
    );
    assert_eq!(
        record["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 5);
    assert_eq!(record["responseContext"]["statusCode"], 200);
    assert_eq!(record["responseContext"]["executedVersion"], "$LATEST");
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    let info = &record["KinesisBatchInfo"];
    assert_eq!(info["shardId"], "shardId-000000000000");
    assert_eq!(info["startSequenceNumber"], seqs[3].as_str());
    assert_eq!(info["endSequenceNumber"], seqs[3].as_str());
    assert_eq!(info["batchSize"], 1);
    assert_eq!(info["streamArn"], fx.stream_arn.as_str());
    assert!(
        info["approximateArrivalOfFirstRecord"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.contains('T')),
        "{info}"
    );
    assert!(
        record["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    assert_eq!(fx.checkpoint().as_deref(), Some(seqs[7].as_str()));
    fx.finish(sources).await;
}

#[tokio::test]
async fn checkpoints_survive_a_restart_without_reprocessing() {
    let fx = Fixture::new("restart", Settings::default()).await;
    let first = fx.put(&["one", "two", "three", "four", "five"]).await;
    let sources = fx.start().await;
    fx.wait_for("the first records", |inv| delivered(inv).len() >= 5)
        .await;
    sources.stop().await;
    assert_eq!(fx.checkpoint().as_deref(), first.last().map(String::as_str));

    let second = fx.put(&["six", "seven", "eight"]).await;
    // Nothing runs while stopped.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(delivered(&fx.invocations()), first);

    let sources = fx.start().await;
    let invocations = fx
        .wait_for("the new records", |inv| delivered(inv).len() >= 8)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all: Vec<String> = first.iter().chain(&second).cloned().collect();
    assert_eq!(
        delivered(&fx.invocations()),
        all,
        "{:?}",
        summary(&invocations)
    );
    assert_eq!(
        fx.checkpoint().as_deref(),
        second.last().map(String::as_str)
    );
    fx.finish(sources).await;
}
