//! `orders-admin dlq` against the emulator (`AWS_ENDPOINT_URL`, default
//! `http://127.0.0.1:4566`). Each test makes its own one-shard stream and queue, so it needs
//! nothing deployed and tests run in parallel.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{ShardIteratorType, StreamStatus};
use aws_sdk_sqs::types::QueueAttributeName;
use axum::extract::{Path, State};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use orders_admin::queue::Queue;
use orders_admin::replay::{Destination, Outcome, ReplayOptions, ReplayReport, replay};
use serde_json::{Value, json};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SHARD: &str = "shardId-000000000000";

struct Fixture {
    sqs: aws_sdk_sqs::Client,
    kinesis: aws_sdk_kinesis::Client,
    /// Talks to `functions`, a stand-in for Lambda's Invoke API.
    lambda: aws_sdk_lambda::Client,
    functions: FakeLambda,
    stream: String,
    stream_arn: String,
    queue_url: String,
}

/// A stand-in for Lambda's Invoke API: records every invocation (function, event) and
/// answers each with `answer` (a batch response).
#[derive(Clone)]
struct FakeLambda {
    calls: Arc<Mutex<Vec<(String, Value)>>>,
    answer: Arc<Mutex<Value>>,
}

impl FakeLambda {
    async fn start() -> (FakeLambda, String) {
        async fn invoke(
            State(fake): State<FakeLambda>,
            Path(name): Path<String>,
            body: axum::body::Bytes,
        ) -> axum::Json<Value> {
            let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            fake.calls.lock().unwrap().push((name, event));
            axum::Json(fake.answer.lock().unwrap().clone())
        }
        let fake = FakeLambda {
            calls: Arc::default(),
            answer: Arc::new(Mutex::new(json!({"batchItemFailures": []}))),
        };
        let app = axum::Router::new()
            .route(
                "/2015-03-31/functions/{name}/invocations",
                axum::routing::post(invoke),
            )
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (fake, url)
    }

    fn calls(&self) -> Vec<(String, Value)> {
        self.calls.lock().unwrap().clone()
    }
}

/// A stored stream record: (partition key, data, sequence number).
type Rec = (String, Vec<u8>, String);

/// Unique per test and per run: nanoseconds since the epoch, process id and a counter.
fn unique_id() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_nanos();
    format!(
        "{nanos:x}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

async fn sdk() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(orders_tests::endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await
}

impl Fixture {
    async fn new() -> Self {
        let sdk = sdk().await;
        let kinesis = aws_sdk_kinesis::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let id = unique_id();
        let stream = format!("orders-admin-test-{id}");
        kinesis
            .create_stream()
            .stream_name(&stream)
            .shard_count(1)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot create a stream on the emulator at {} ({e:?}); start one with \
                     scripts/emulator.sh start",
                    orders_tests::endpoint()
                )
            });
        let mut stream_arn = None;
        for _ in 0..50 {
            let summary = kinesis
                .describe_stream_summary()
                .stream_name(&stream)
                .send()
                .await
                .expect("describe stream")
                .stream_description_summary
                .expect("a summary");
            if summary.stream_status == StreamStatus::Active {
                stream_arn = Some(summary.stream_arn);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("orders-admin-test-{id}-dlq"))
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("a queue url");
        let (functions, url) = FakeLambda::start().await;
        let lambda = aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::config::Builder::from(&sdk)
                .endpoint_url(url)
                .build(),
        );
        Self {
            sqs,
            kinesis,
            lambda,
            functions,
            stream,
            stream_arn: stream_arn.expect("the stream became active"),
            queue_url,
        }
    }

    async fn replay_to_functions(&self) -> (ReplayReport, String) {
        let queue = Queue::resolve(self.sqs.clone(), &self.queue_url)
            .await
            .expect("queue");
        let options = ReplayOptions {
            to: Destination::Function,
            dry_run: false,
            max: 100,
        };
        let mut out = Vec::new();
        let report = replay(&queue, &self.kinesis, &self.lambda, &options, &mut out)
            .await
            .expect("replay runs");
        report.write_summary(&mut out).unwrap();
        (report, String::from_utf8(out).unwrap())
    }

    async fn put(&self, key: &str, data: &[u8]) -> String {
        self.kinesis
            .put_record()
            .stream_name(&self.stream)
            .partition_key(key)
            .data(Blob::new(data))
            .send()
            .await
            .expect("put record")
            .sequence_number
    }

    async fn send(&self, body: &Value) -> String {
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body.to_string())
            .send()
            .await
            .expect("send message")
            .message_id
            .expect("a message id")
    }

    /// (visible, in flight) messages.
    async fn queue_depth(&self) -> (u64, u64) {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .expect("queue attributes")
            .attributes
            .expect("attributes");
        let get = |name| {
            attributes
                .get(&name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(u64::MAX)
        };
        (
            get(QueueAttributeName::ApproximateNumberOfMessages),
            get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }

    /// Everything on the stream, in order.
    async fn records(&self) -> Vec<Rec> {
        let mut iterator = self
            .kinesis
            .get_shard_iterator()
            .stream_name(&self.stream)
            .shard_id(SHARD)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("iterator")
            .shard_iterator;
        let mut records = Vec::new();
        while let Some(it) = iterator {
            let output = self
                .kinesis
                .get_records()
                .shard_iterator(it)
                .send()
                .await
                .expect("get records");
            if output.records().is_empty() {
                break;
            }
            for r in output.records() {
                records.push((
                    r.partition_key().unwrap_or_default().to_owned(),
                    r.data().as_ref().to_vec(),
                    r.sequence_number().to_owned(),
                ));
            }
            iterator = output.next_shard_iterator;
        }
        records
    }

    /// A dead letter exactly as our functions write it (`DeadLetter` around the Lambda record).
    fn poison(&self, key: &str, data: &[u8], sequence: &str) -> Value {
        json!({
            "reason": "order_not_found",
            "error": "order does not exist",
            "function": "orders-process-order",
            "deadLetteredAt": "2025-03-14T09:26:53.589Z",
            "record": {
                "awsRegion": "us-east-1",
                "eventID": format!("{SHARD}:{sequence}"),
                "eventName": "aws:kinesis:record",
                "eventSource": "aws:kinesis",
                "eventSourceARN": self.stream_arn,
                "eventVersion": "1.0",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/orders-process-order",
                "kinesis": {
                    "approximateArrivalTimestamp": 1741944413.123,
                    "data": STANDARD.encode(data),
                    "encryptionType": "NONE",
                    "partitionKey": key,
                    "sequenceNumber": sequence,
                    "kinesisSchemaVersion": "1.0"
                },
                "shardId": SHARD
            }
        })
    }

    /// Lambda's on-failure record for `shard` `start..=end` of this stream.
    fn on_failure(&self, shard: &str, start: &str, end: &str, size: u64) -> Value {
        json!({
            "requestContext": {
                "requestId": "c9b8fa9f-5a7f-4c1e-af9c-0c604cde93a5",
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
                "shardId": shard,
                "startSequenceNumber": start,
                "endSequenceNumber": end,
                "approximateArrivalOfFirstRecord": "2025-03-14T09:26:04.835Z",
                "approximateArrivalOfLastRecord": "2025-03-14T09:26:05.580Z",
                "batchSize": size,
                "streamArn": self.stream_arn
            }
        })
    }

    async fn replay(&self, dry_run: bool) -> (ReplayReport, String) {
        let queue = Queue::resolve(self.sqs.clone(), &self.queue_url)
            .await
            .expect("queue");
        let options = ReplayOptions {
            to: Destination::Stream(None),
            dry_run,
            max: 100,
        };
        let mut out = Vec::new();
        let report = replay(&queue, &self.kinesis, &self.lambda, &options, &mut out)
            .await
            .expect("replay runs");
        report.write_summary(&mut out).unwrap();
        (report, String::from_utf8(out).unwrap())
    }

    /// Runs the real binary with only `AWS_ENDPOINT_URL` set (no credentials, no region),
    /// as an operator would against the local stack.
    fn cli(&self, args: &[&str]) -> (i32, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_orders-admin"))
            .args(args)
            .env("AWS_ENDPOINT_URL", orders_tests::endpoint())
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .output()
            .expect("run orders-admin");
        let stdout = String::from_utf8(output.stdout).unwrap();
        let code = output.status.code().unwrap_or(-1);
        assert!(
            code == 0 || code == 2,
            "orders-admin {args:?} failed ({code}): {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        (code, stdout)
    }
}

#[tokio::test]
async fn poison_letter_is_re_put_with_its_data_and_key_then_deleted() {
    let f = Fixture::new().await;
    let data = br#"{"type":"OrderPlaced","orderId":"01JPAXQ3M4Z8N6B1C2D3E4F5G6"}"#;
    let key = "01JPAXQ3M4Z8N6B1C2D3E4F5G6";
    let original = f.put(key, data).await;
    f.send(&f.poison(key, data, &original)).await;

    let (report, out) = f.replay(false).await;

    assert_eq!(
        (report.replayed(), report.records_published()),
        (1, 1),
        "{out}"
    );
    assert_eq!(report.skipped() + report.failed(), 0, "{out}");
    let records = f.records().await;
    assert_eq!(records.len(), 2, "exactly one record re-put");
    let (replayed_key, replayed_data, replayed_seq) = &records[1];
    assert_eq!(replayed_key, key);
    assert_eq!(replayed_data, data);
    assert_ne!(*replayed_seq, original, "a replay is a new stream record");
    assert_eq!(f.queue_depth().await, (0, 0), "the message is deleted");
}

#[tokio::test]
async fn on_failure_record_re_publishes_exactly_its_range_in_order() {
    let f = Fixture::new().await;
    let mut sequences = Vec::new();
    for i in 0..6 {
        let key = format!("order-{}", i % 2); // two keys, interleaved
        sequences.push(f.put(&key, format!("event-{i}").as_bytes()).await);
    }
    let before = f.records().await;
    assert_eq!(before.len(), 6);
    f.send(&f.on_failure(SHARD, &sequences[1], &sequences[3], 3))
        .await;

    let (report, out) = f.replay(false).await;

    assert_eq!(
        (report.replayed(), report.records_published()),
        (1, 3),
        "{out}"
    );
    let after = f.records().await;
    assert_eq!(after.len(), 9, "{out}");
    let strip = |r: &[Rec]| -> Vec<(String, Vec<u8>)> {
        r.iter().map(|(k, d, _)| (k.clone(), d.clone())).collect()
    };
    assert_eq!(
        strip(&after[..6]),
        strip(&before),
        "the stream's history is untouched"
    );
    assert_eq!(
        strip(&after[6..]),
        strip(&before[1..4]),
        "records 1..=3, same keys and data, in order"
    );
    assert_eq!(f.queue_depth().await, (0, 0), "the message is deleted");
}

#[tokio::test]
async fn list_and_dry_run_consume_nothing() {
    let f = Fixture::new().await;
    let first = f.put("order-a", b"first").await;
    let second = f.put("order-a", b"second").await;
    let poison = f.poison("order-a", b"first", &first);
    let on_failure = f.on_failure(SHARD, &first, &second, 2);
    let poison_id = f.send(&poison).await;
    let on_failure_id = f.send(&on_failure).await;

    // The table, through the real binary, by queue name.
    let name = f.queue_url.rsplit('/').next().unwrap().to_owned();
    let (code, table) = f.cli(&["dlq", "list", "--queue", &name]);
    assert_eq!(code, 0);
    let line = |id: &str| {
        table
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("no row for {id}: {table}"))
            .to_owned()
    };
    let row = line(&poison_id);
    for cell in [
        "poison",
        "order_not_found",
        "orders-process-order",
        SHARD,
        &first,
        "order-a",
        "first",
    ] {
        assert!(row.contains(cell), "{cell} missing: {row}");
    }
    let row = line(&on_failure_id);
    for cell in [
        "on-failure",
        "RetryAttemptsExhausted",
        "orders-aggregate",
        &format!("{first}..{second}"),
    ] {
        assert!(row.contains(cell), "{cell} missing: {row}");
    }
    assert_eq!(f.queue_depth().await, (2, 0), "list consumed nothing");

    // Raw bodies as JSON lines, by URL.
    let (_, json_lines) = f.cli(&["dlq", "list", "--queue", &f.queue_url, "--json"]);
    let mut bodies: Vec<Value> = json_lines
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    bodies.sort_by_key(|b| b.get("KinesisBatchInfo").is_some());
    assert_eq!(bodies, vec![poison, on_failure]);
    assert_eq!(
        f.queue_depth().await,
        (2, 0),
        "list --json consumed nothing"
    );

    // Dry run: says what it would do, changes nothing.
    let (code, out) = f.cli(&["dlq", "replay", "--queue", &name, "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("would be replayed (3 record(s))"), "{out}");
    assert_eq!(f.records().await.len(), 2, "dry run put nothing");
    assert_eq!(f.queue_depth().await, (2, 0), "dry run deleted nothing");
}

#[tokio::test]
async fn empty_queue_is_said_so() {
    let f = Fixture::new().await;
    let (code, out) = f.cli(&["dlq", "list", "--queue", &f.queue_url]);
    assert_eq!(code, 0);
    assert!(out.contains("is empty"), "{out}");
    let (code, out) = f.cli(&["dlq", "replay", "--queue", &f.queue_url]);
    assert_eq!(code, 0);
    assert!(out.contains("queue is empty"), "{out}");
}

#[tokio::test]
async fn ranges_no_longer_on_the_stream_are_reported_and_kept() {
    let f = Fixture::new().await;
    let mut sequences = Vec::new();
    for i in 0..3 {
        sequences.push(f.put("order-b", format!("event-{i}").as_bytes()).await);
    }
    // A shard that does not exist, a range beyond the tip of the shard (56 digits, as on
    // AWS), and a range whose start is not on the shard any more (as after trimming).
    let beyond = "49651505085739424282347553331460231169997014936545116162";
    let gone = [
        f.on_failure("shardId-000000000042", &sequences[0], &sequences[1], 2),
        f.on_failure(SHARD, beyond, &format!("{beyond}9"), 2),
        f.on_failure(SHARD, "0", &sequences[1], 3),
    ];
    for body in &gone {
        f.send(body).await;
    }
    // A replayable message in the same queue still goes.
    f.send(&f.poison("order-b", b"event-0", &sequences[0]))
        .await;

    let (report, out) = f.replay(false).await;

    assert_eq!(report.skipped(), 3, "{out}");
    assert_eq!(
        (report.replayed(), report.records_published()),
        (1, 1),
        "{out}"
    );
    for m in &report.messages {
        if let Outcome::Skipped { why } = &m.outcome {
            assert_eq!(m.kind, "on-failure");
            assert!(why.contains("no longer on the stream"), "{why}");
        }
    }
    assert!(
        out.contains("skipped 3 message(s), left in the queue"),
        "{out}"
    );
    assert_eq!(
        f.records().await.len(),
        4,
        "only the poison record was re-put"
    );
    assert_eq!(
        f.queue_depth().await,
        (3, 0),
        "the skipped messages stay, visible"
    );

    // The binary exits 2 while messages are skipped, and leaves them.
    let (code, out) = f.cli(&["dlq", "replay", "--queue", &f.queue_url]);
    assert_eq!(code, 2, "{out}");
    assert_eq!(f.queue_depth().await, (3, 0));
}

#[tokio::test]
async fn a_poison_letter_goes_back_only_to_the_function_that_failed_it() {
    let f = Fixture::new().await;
    let data = br#"{"type":"OrderPlaced","orderId":"01JPAXQ3M4Z8N6B1C2D3E4F5G7"}"#;
    let key = "01JPAXQ3M4Z8N6B1C2D3E4F5G7";
    let original = f.put(key, data).await;
    f.send(&f.poison(key, data, &original)).await;

    let (report, out) = f.replay_to_functions().await;

    assert_eq!(report.replayed(), 1, "{out}");
    let calls = f.functions.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let (function, event) = &calls[0];
    assert_eq!(function, "orders-process-order");
    let record = &event["Records"][0];
    assert_eq!(event["Records"].as_array().unwrap().len(), 1);
    assert_eq!(
        record["kinesis"]["sequenceNumber"],
        original.as_str(),
        "the same record"
    );
    assert_eq!(record["kinesis"]["partitionKey"], key);
    assert_eq!(record["kinesis"]["data"], STANDARD.encode(data));
    assert_eq!(record["eventID"], format!("{SHARD}:{original}"));
    assert_eq!(record["eventSourceARN"], f.stream_arn.as_str());
    assert_eq!(
        f.records().await.len(),
        1,
        "nothing re-put for other consumers"
    );
    assert_eq!(f.queue_depth().await, (0, 0), "the message is deleted");
}

#[tokio::test]
async fn an_on_failure_range_goes_back_to_its_function_whole_and_in_order() {
    let f = Fixture::new().await;
    let mut sequences = Vec::new();
    for i in 0..6 {
        sequences.push(
            f.put(&format!("order-{}", i % 2), format!("event-{i}").as_bytes())
                .await,
        );
    }
    f.send(&f.on_failure(SHARD, &sequences[1], &sequences[3], 3))
        .await;

    let (report, out) = f.replay_to_functions().await;

    assert_eq!(report.replayed(), 1, "{out}");
    let calls = f.functions.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, "orders-aggregate");
    let delivered: Vec<&str> = calls[0].1["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kinesis"]["sequenceNumber"].as_str().unwrap())
        .collect();
    assert_eq!(
        delivered,
        sequences[1..=3]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    assert_eq!(f.records().await.len(), 6, "nothing re-put");
    assert_eq!(f.queue_depth().await, (0, 0));
}

#[tokio::test]
async fn a_function_that_hands_records_back_keeps_its_message() {
    let f = Fixture::new().await;
    let data = b"{}";
    let original = f.put("k", data).await;
    f.send(&f.poison("k", data, &original)).await;
    *f.functions.answer.lock().unwrap() =
        json!({"batchItemFailures": [{"itemIdentifier": original}]});

    let (report, out) = f.replay_to_functions().await;

    assert_eq!((report.replayed(), report.failed()), (0, 1), "{out}");
    assert!(out.contains("handed 1 record(s) back"), "{out}");
    assert_eq!(f.queue_depth().await.0, 1, "the message stays in the queue");
}
