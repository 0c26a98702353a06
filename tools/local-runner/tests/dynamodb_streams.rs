//! DynamoDB Streams event source mappings end to end against the emulator (`AWS_ENDPOINT_URL`,
//! default http://127.0.0.1:4566): each test creates its own table (stream NEW_AND_OLD_IMAGES),
//! queue, function (tagged `orders:binary = echo-function`) and mapping, writes items, and runs
//! the pollers in-process against the real `echo-function` binary, which logs every invocation.
//!
//! moto quirk: moto hooks a DynamoDB mapping into its own table object and, on every write, tries
//! to invoke the function itself (Docker) and then *empties the stream* because the attempt
//! "returned" an error text. The fixture therefore re-creates the table after creating the
//! mapping: the mapping (and its stream ARN) stays, moto's hook goes, and moto's DynamoDB Streams
//! API resolves the stream by table name.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, StreamSpecification, StreamViewType,
};
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
    bisect: bool,
    max_retries: i32,
}

struct Fixture {
    sdk: SdkConfig,
    function: String,
    function_arn: String,
    table: String,
    stream_arn: String,
    shard_id: String,
    queue_url: String,
    mapping_uuid: String,
    dir: PathBuf,
    invocations: PathBuf,
    checkpoints: PathBuf,
    runtime: Runtime,
}

async fn create_table(ddb: &aws_sdk_dynamodb::Client, table: &str) -> String {
    ddb.create_table()
        .table_name(table)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateTable (is the emulator up at {}?): {e:?}", endpoint()))
        .table_description()
        .and_then(|t| t.latest_stream_arn())
        .unwrap_or_else(|| panic!("no stream ARN"))
        .to_owned()
}

impl Fixture {
    async fn new(tag: &str, settings: Settings) -> Self {
        let sdk = sdk().await;
        let id = &uuid::Uuid::new_v4().simple().to_string()[..10];
        let function = format!("lr-ddb-{tag}-{id}");
        let table = format!("lr-ddb-{tag}-{id}");
        let dir = std::env::temp_dir().join(format!("local-runner-ddb-{tag}-{id}"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let invocations = dir.join("invocations.jsonl");
        let checkpoints = dir.join("checkpoints.json");

        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        let stream_arn = create_table(&ddb, &table).await;

        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("lr-ddb-{tag}-{id}-dlq"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateQueue: {e:?}"))
            .queue_url()
            .unwrap_or_else(|| panic!("no queue URL"))
            .to_owned();
        let queue_arn = format!("arn:aws:sqs:us-east-1:123456789012:lr-ddb-{tag}-{id}-dlq");

        let role_arn = ensure_role().await;
        let lambda = aws_sdk_lambda::Client::new(&sdk);
        let function_arn = lambda
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
            .unwrap_or_else(|e| panic!("CreateFunction: {e:?}"))
            .function_arn()
            .unwrap_or_else(|| panic!("no function ARN"))
            .to_owned();

        let mapping_uuid = lambda
            .create_event_source_mapping()
            .function_name(&function)
            .event_source_arn(&stream_arn)
            .starting_position(EventSourcePosition::TrimHorizon)
            .batch_size(settings.batch_size)
            .maximum_batching_window_in_seconds(0)
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

        // Drop moto's own (stream-emptying) mapping hook: see the module docs.
        ddb.delete_table()
            .table_name(&table)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DeleteTable: {e:?}"));
        create_table(&ddb, &table).await;

        let shard_id = aws_sdk_dynamodbstreams::Client::new(&sdk)
            .describe_stream()
            .stream_arn(&stream_arn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeStream: {e:?}"))
            .stream_description()
            .and_then(|d| d.shards().first())
            .and_then(|s| s.shard_id())
            .unwrap_or_else(|| panic!("no shard"))
            .to_owned();

        let config = FunctionConfig {
            name: function.clone(),
            arn: function_arn.clone(),
            binary: PathBuf::from(env!("CARGO_BIN_EXE_echo-function")),
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
            table,
            stream_arn,
            shard_id,
            queue_url,
            mapping_uuid,
            dir,
            invocations,
            checkpoints,
            runtime,
        }
    }

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
        let _ = aws_sdk_dynamodb::Client::new(&self.sdk)
            .delete_table()
            .table_name(&self.table)
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
        assert_eq!(mappings[0].source_arn, self.stream_arn);
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

    fn ddb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }

    async fn put(&self, pk: &str, data: &str) {
        self.ddb()
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(pk.to_owned()))
            .item("data", AttributeValue::S(data.to_owned()))
            .item("qty", AttributeValue::N("1".to_owned()))
            .item(
                "lines",
                AttributeValue::L(vec![AttributeValue::M(
                    [
                        ("sku".to_owned(), AttributeValue::S("A-1".to_owned())),
                        ("price".to_owned(), AttributeValue::N("12.50".to_owned())),
                    ]
                    .into(),
                )]),
            )
            .item(
                "tags",
                AttributeValue::Ss(vec!["x".to_owned(), "y".to_owned()]),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutItem: {e:?}"));
    }

    async fn update(&self, pk: &str, data: &str, qty: &str) {
        self.ddb()
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .update_expression("SET #d = :d, qty = :q")
            .expression_attribute_names("#d", "data")
            .expression_attribute_values(":d", AttributeValue::S(data.to_owned()))
            .expression_attribute_values(":q", AttributeValue::N(qty.to_owned()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("UpdateItem: {e:?}"));
    }

    async fn delete(&self, pk: &str) {
        self.ddb()
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("DeleteItem: {e:?}"));
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
        doc["checkpoints"][&self.mapping_uuid][&self.shard_id]
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

fn data_of(invocation: &Value) -> Vec<String> {
    strings(&invocation["data"])
}

fn summary(invocations: &[Value]) -> Vec<Vec<String>> {
    invocations.iter().map(data_of).collect()
}

fn delivered(invocations: &[Value]) -> Vec<String> {
    invocations.iter().flat_map(seqs_of).collect()
}

fn delivered_data(invocations: &[Value]) -> Vec<String> {
    invocations.iter().flat_map(data_of).collect()
}

fn records(invocations: &[Value]) -> Vec<Value> {
    invocations
        .iter()
        .flat_map(|i| {
            i["event"]["Records"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn changes_arrive_in_order_with_images_and_resume_from_the_checkpoint() {
    let fx = Fixture::new(
        "order",
        Settings {
            batch_size: 5,
            bisect: false,
            max_retries: 5,
        },
    )
    .await;
    for i in 0..8 {
        fx.put(&format!("item-{i}"), &format!("v{i}")).await;
    }
    fx.update("item-0", "v0 updated", "7").await;
    fx.delete("item-1").await;
    let sources = fx.start().await;

    let invocations = fx
        .wait_for("10 changes", |inv| delivered(inv).len() >= 10)
        .await;
    let mut expected: Vec<String> = (0..8).map(|i| format!("INSERT v{i}")).collect();
    expected.extend(["MODIFY v0 updated".to_owned(), "REMOVE v1".to_owned()]);
    assert_eq!(delivered_data(&invocations), expected);
    assert!(invocations.iter().all(|i| seqs_of(i).len() <= 5));
    let seqs = delivered(&invocations);
    assert!(
        seqs.windows(2)
            .all(|w| w[0].len() >= 21 && (w[0].len(), &w[0]) < (w[1].len(), &w[1])),
        "{seqs:?}"
    );

    // The exact Lambda DynamoDB event shape.
    let all = records(&invocations);
    let insert = &all[0];
    assert_eq!(insert["eventName"], "INSERT");
    assert_eq!(insert["eventVersion"], "1.1");
    assert_eq!(insert["eventSource"], "aws:dynamodb");
    assert_eq!(insert["awsRegion"], "us-east-1");
    assert_eq!(insert["eventSourceARN"], fx.stream_arn.as_str());
    assert!(insert["eventID"].as_str().is_some_and(|id| !id.is_empty()));
    let change = &insert["dynamodb"];
    assert_eq!(change["Keys"], serde_json::json!({"pk": {"S": "item-0"}}));
    assert_eq!(change["NewImage"]["qty"], serde_json::json!({"N": "1"}));
    assert_eq!(
        change["NewImage"]["lines"],
        serde_json::json!({"L": [{"M": {"sku": {"S": "A-1"}, "price": {"N": "12.50"}}}]})
    );
    assert!(change.get("OldImage").is_none(), "{change}");
    assert_eq!(change["SequenceNumber"], seqs[0].as_str());
    assert_eq!(change["StreamViewType"], "NEW_AND_OLD_IMAGES");
    assert!(change["SizeBytes"].as_i64().is_some_and(|n| n > 0));
    let created = change["ApproximateCreationDateTime"]
        .as_i64()
        .unwrap_or_else(|| panic!("not whole epoch seconds: {change}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    assert!(
        now.abs_diff(created.unsigned_abs()) < 120,
        "{created} vs {now}"
    );
    let modify = &all[8];
    assert_eq!(modify["dynamodb"]["OldImage"]["data"]["S"], "v0");
    assert_eq!(modify["dynamodb"]["NewImage"]["data"]["S"], "v0 updated");
    assert_eq!(modify["dynamodb"]["NewImage"]["qty"]["N"], "7");
    let remove = &all[9];
    assert!(remove["dynamodb"].get("NewImage").is_none());
    assert_eq!(remove["dynamodb"]["OldImage"]["data"]["S"], "v1");

    // What the functions deserialise.
    for invocation in &invocations {
        let event: aws_lambda_events::event::dynamodb::Event =
            serde_json::from_value(invocation["event"].clone())
                .unwrap_or_else(|e| panic!("{e}: {}", invocation["event"]));
        assert!(!event.records.is_empty());
    }

    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(delivered(&fx.invocations()), seqs);
    assert_eq!(fx.checkpoint().as_deref(), seqs.last().map(String::as_str));

    // Restart: only the new changes, and a partial batch failure retried from the failed record.
    sources.stop().await;
    fx.put("item-8", "v8 fail-once").await;
    fx.put("item-9", "v9").await;
    let sources = fx.start().await;
    let invocations = fx
        .wait_for("the retried batch", |inv| {
            inv.len() >= invocations.len() + 2
        })
        .await;
    let new: Vec<Vec<String>> = summary(&invocations[invocations.len() - 2..]);
    assert_eq!(
        new,
        vec![
            vec!["INSERT v8 fail-once".to_owned(), "INSERT v9".to_owned()],
            vec!["INSERT v8 fail-once".to_owned(), "INSERT v9".to_owned()],
        ]
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let all = fx.invocations();
    assert_eq!(delivered(&all).len(), 14, "{:?}", summary(&all));
    assert_eq!(
        fx.checkpoint().as_deref(),
        delivered(&all).last().map(String::as_str)
    );
    assert!(fx.receive_all(Duration::from_millis(300)).await.is_empty());
    fx.finish(sources).await;
}

#[tokio::test]
async fn a_failing_record_is_bisected_out_and_reported_with_ddb_stream_batch_info() {
    let fx = Fixture::new(
        "poison",
        Settings {
            batch_size: 10,
            bisect: true,
            max_retries: 1,
        },
    )
    .await;
    for (i, data) in ["r0", "r1", "r2", "r3 poison", "r4", "r5"]
        .iter()
        .enumerate()
    {
        fx.put(&format!("item-{i}"), data).await;
    }
    let sources = fx.start().await;

    let invocations = fx
        .wait_for("r5 after the poison record", |inv| {
            inv.iter().any(|i| {
                data_of(i).contains(&"INSERT r5".to_owned())
                    && !data_of(i).contains(&"INSERT r3 poison".to_owned())
            })
        })
        .await;
    let seqs: Vec<String> = seqs_of(&invocations[0]);
    assert_eq!(seqs.len(), 6);
    // [0..5] ✗ → [0,1,2] ✓ → [3,4,5] ✗ → [3,4] ✗ → [3] ✗ → retry [3] ✗ → destination → [4] ✓
    // → [5] ✓
    let expected: Vec<Vec<String>> = vec![
        seqs.clone(),
        seqs[0..3].to_vec(),
        seqs[3..6].to_vec(),
        seqs[3..5].to_vec(),
        seqs[3..4].to_vec(),
        seqs[3..4].to_vec(),
        seqs[4..5].to_vec(),
        seqs[5..6].to_vec(),
    ];
    let got: Vec<Vec<String>> = invocations.iter().map(seqs_of).collect();
    assert_eq!(got, expected, "{:?}", summary(&invocations));

    let messages = fx.receive_all(Duration::from_millis(1200)).await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let record = &messages[0];
    assert_eq!(
        record["requestContext"]["functionArn"],
        fx.function_arn.as_str()
    );
    assert_eq!(
        record["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 5);
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    assert!(record.get("KinesisBatchInfo").is_none());
    let info = &record["DDBStreamBatchInfo"];
    assert_eq!(info["shardId"], fx.shard_id.as_str());
    assert_eq!(info["startSequenceNumber"], seqs[3].as_str());
    assert_eq!(info["endSequenceNumber"], seqs[3].as_str());
    assert_eq!(info["batchSize"], 1);
    assert_eq!(info["streamArn"], fx.stream_arn.as_str());
    for key in [
        "approximateArrivalOfFirstRecord",
        "approximateArrivalOfLastRecord",
    ] {
        assert!(
            info[key]
                .as_str()
                .is_some_and(|t| t.ends_with('Z') && t.contains('T')),
            "{info}"
        );
    }
    assert_eq!(fx.checkpoint().as_deref(), Some(seqs[5].as_str()));
    fx.finish(sources).await;
}
