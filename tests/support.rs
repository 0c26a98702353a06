//! Test support for integration tests that run against the emulator.
//!
//! Resources are never described twice: a test that needs its own table *clones the schema
//! of the table Terraform deployed* (read back with `DescribeTable`), so tests exercise the
//! real keys and indexes, yet run in parallel without seeing each other's data.
//!
//! The emulator endpoint comes from `AWS_ENDPOINT_URL` (default `http://127.0.0.1:4566`)
//! and the deployed names from `.local/outputs.json`, both written by `make test`.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, Projection,
};
use aws_sdk_kinesis::types::ShardIteratorType;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

#[path = "events/contract.rs"]
pub mod event_contract;
#[path = "events/samples.rs"]
pub mod event_samples;

pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4566";

/// Panics, naming every violation, unless `event` (a record read off the order events
/// stream or the storefront activity stream: both kinds of envelope have their schema in
/// `api/events`, found by `eventType`) conforms to the schema of its `eventType` — closed, so
/// a field the code emits but the contract does not name fails too.
pub fn assert_event_conforms(event: &Value) {
    static SCHEMAS: std::sync::OnceLock<event_contract::EventSchemas> = std::sync::OnceLock::new();
    let schemas = SCHEMAS
        .get_or_init(|| event_contract::EventSchemas::closed(&repo_root().join("api/events")));
    let violations = schemas.violations(event);
    assert!(
        violations.is_empty(),
        "an event on the stream breaks its contract (api/events):\n{}\n{event}",
        violations.join("\n")
    );
}

pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| DEFAULT_ENDPOINT.to_owned())
}

/// The repository root (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What Terraform deployed to the emulator.
pub struct Emulator {
    pub sdk: SdkConfig,
    outputs: Value,
}

impl Emulator {
    /// Connects to the emulator; fails with instructions when the local stack is not up.
    pub async fn connect() -> Self {
        let path = std::env::var("ORDERS_OUTPUTS")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo_root().join(".local/outputs.json"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read {} ({e}): integration tests need the local stack; run `make test`",
                path.display()
            )
        });
        let outputs = serde_json::from_str(&text).expect("outputs.json is terraform output -json");
        // SAFETY of the defaults: moto accepts any credentials; real AWS is never the target
        // here because the endpoint is always set explicitly.
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(endpoint())
            .region(Region::new(
                std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
            ))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "tests",
            ))
            .load()
            .await;
        let emulator = Self { sdk, outputs };
        let table = emulator.output("orders_table");
        aws_sdk_dynamodb::Client::new(&emulator.sdk)
            .describe_table()
            .table_name(&table)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "the emulator at {} has no table {table} ({e:?}): run `make test`",
                    endpoint()
                )
            });
        emulator
    }

    /// A `terraform output` value as text.
    pub fn output(&self, name: &str) -> String {
        match &self.outputs[name]["value"] {
            Value::String(s) => s.clone(),
            other => panic!("terraform output {name} is not a string: {other}"),
        }
    }

    /// A Terraform output that is not a string (a map such as `function_names`).
    pub fn output_value(&self, name: &str) -> &Value {
        &self.outputs[name]["value"]
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }

    pub fn kinesis(&self) -> aws_sdk_kinesis::Client {
        aws_sdk_kinesis::Client::new(&self.sdk)
    }

    /// A new, empty table with exactly the schema of the deployed table `output_name`.
    pub async fn clone_table(&self, output_name: &str) -> String {
        let source = self.output(output_name);
        let client = self.dynamodb();
        let description = client
            .describe_table()
            .table_name(&source)
            .send()
            .await
            .expect("describe the deployed table")
            .table
            .expect("a table description");
        let name = format!("{source}-test-{}", uuid::Uuid::new_v4().simple());
        let indexes: Vec<GlobalSecondaryIndex> = description
            .global_secondary_indexes()
            .iter()
            .map(|gsi| {
                GlobalSecondaryIndex::builder()
                    .index_name(gsi.index_name().expect("index name"))
                    .set_key_schema(Some(gsi.key_schema().to_vec()))
                    .projection(
                        gsi.projection()
                            .cloned()
                            .unwrap_or_else(|| Projection::builder().build()),
                    )
                    .build()
                    .expect("a valid index")
            })
            .collect();
        let keys: Vec<KeySchemaElement> = description.key_schema().to_vec();
        let attributes: Vec<AttributeDefinition> = description.attribute_definitions().to_vec();
        client
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .set_key_schema(Some(keys))
            .set_attribute_definitions(Some(attributes))
            .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes))
            // The orders table's change stream is the outbox the relay reads.
            .set_stream_specification(description.stream_specification().cloned())
            .send()
            .await
            .expect("create the test table");
        name
    }

    /// A new one-shard stream, so a test can read back exactly the events it caused.
    pub async fn fresh_stream(&self) -> String {
        let name = format!("orders-test-{}", uuid::Uuid::new_v4().simple());
        let client = self.kinesis();
        client
            .create_stream()
            .stream_name(&name)
            .shard_count(1)
            .send()
            .await
            .expect("create the test stream");
        for _ in 0..50 {
            let status = client
                .describe_stream_summary()
                .stream_name(&name)
                .send()
                .await
                .ok()
                .and_then(|d| d.stream_description_summary.map(|s| s.stream_status));
            if status == Some(aws_sdk_kinesis::types::StreamStatus::Active) {
                return name;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("stream {name} did not become active");
    }

    /// Every record on every shard of `stream`, from the beginning: `(partition key, JSON)`.
    pub async fn stream_records(&self, stream: &str) -> Vec<(String, Value)> {
        let client = self.kinesis();
        let shards = client
            .list_shards()
            .stream_name(stream)
            .send()
            .await
            .expect("list shards")
            .shards
            .unwrap_or_default();
        let mut records = Vec::new();
        for shard in shards {
            let mut iterator = client
                .get_shard_iterator()
                .stream_name(stream)
                .shard_id(shard.shard_id())
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .expect("shard iterator")
                .shard_iterator;
            while let Some(it) = iterator {
                let output = client
                    .get_records()
                    .shard_iterator(it)
                    .send()
                    .await
                    .expect("get records");
                let empty = output.records().is_empty();
                for record in output.records() {
                    // Poison tests put non-JSON on the shared stream: those show as null.
                    let json =
                        serde_json::from_slice(record.data().as_ref()).unwrap_or(Value::Null);
                    records.push((record.partition_key().unwrap_or_default().to_owned(), json));
                }
                if empty || output.millis_behind_latest() == Some(0) {
                    break;
                }
                iterator = output.next_shard_iterator;
            }
        }
        records
    }

    /// Every change record of `table`'s DynamoDB stream so far, as the Lambda event the local
    /// runner hands a change consumer (the relay): what the outbox holds for that table.
    pub async fn table_changes(&self, table: &str) -> aws_lambda_events::event::dynamodb::Event {
        use local_runner::event_sources::{Position, StreamSource};
        let arn = self
            .dynamodb()
            .describe_table()
            .table_name(table)
            .send()
            .await
            .expect("describe the table")
            .table
            .and_then(|t| t.latest_stream_arn)
            .expect("the table has a change stream");
        let source = local_runner::dynamodb_streams::DynamoDbStreamSource::new(&self.sdk, &arn);
        let mut records = Vec::new();
        for shard in source.list_shards().await.expect("list the change shards") {
            let mut reader = source
                .open_shard(&shard.shard_id, &Position::TrimHorizon)
                .await
                .expect("open a change shard");
            while let Some(batch) = reader.read(1000).await.expect("read changes") {
                if batch.is_empty() {
                    break;
                }
                records.extend(batch.into_iter().map(|r| r.event));
            }
        }
        serde_json::from_value(serde_json::json!({ "Records": records }))
            .expect("the runner's records are Lambda DynamoDB records")
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    /// A new queue (a stand-in for a dead-letter queue); returns its URL.
    pub async fn fresh_queue(&self) -> String {
        let name = format!("orders-test-{}", uuid::Uuid::new_v4().simple());
        self.sqs()
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .expect("create the test queue")
            .queue_url
            .expect("a queue url")
    }

    /// Every message body in the queue (received, not deleted), parsed as JSON.
    pub async fn queue_messages(&self, queue_url: &str) -> Vec<Value> {
        let mut bodies = Vec::new();
        loop {
            let output = self
                .sqs()
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(300)
                .send()
                .await
                .expect("receive messages");
            let messages = output.messages.unwrap_or_default();
            if messages.is_empty() {
                return bodies;
            }
            for message in messages {
                let body = message.body.unwrap_or_default();
                bodies.push(serde_json::from_str(&body).unwrap_or(Value::String(body)));
            }
        }
    }

    /// Number of items in a (test-owned, small) table.
    pub async fn item_count(&self, table: &str) -> usize {
        let output = self
            .dynamodb()
            .scan()
            .table_name(table)
            .consistent_read(true)
            .send()
            .await
            .expect("scan the test table");
        output.items().len()
    }
}

/// A publisher that fails its first `failures` calls with throttling, then delegates — the
/// one failure the emulator cannot produce on demand.
pub struct FlakyPublisher<P> {
    pub inner: P,
    pub failures: std::sync::atomic::AtomicUsize,
}

impl<P> FlakyPublisher<P> {
    pub fn new(inner: P, failures: usize) -> Self {
        Self {
            inner,
            failures: std::sync::atomic::AtomicUsize::new(failures),
        }
    }
}

#[async_trait::async_trait]
impl<P: orders_core::ports::EventPublisher> orders_core::ports::EventPublisher
    for FlakyPublisher<P>
{
    async fn publish(
        &self,
        event: &orders_core::EventEnvelope,
    ) -> Result<(), orders_core::OrderError> {
        use std::sync::atomic::Ordering;
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(orders_core::OrderError::Throttled(
                "injected: ProvisionedThroughputExceededException".into(),
            ));
        }
        self.inner.publish(event).await
    }

    /// The first events still owed a failure fail; the rest go to the inner publisher in one
    /// batch, as they would without the fault.
    async fn publish_all(
        &self,
        events: &[orders_core::EventEnvelope],
    ) -> Vec<Result<(), orders_core::OrderError>> {
        use std::sync::atomic::Ordering;
        let owed = self.failures.load(Ordering::SeqCst).min(events.len());
        self.failures.fetch_sub(owed, Ordering::SeqCst);
        let mut outcomes: Vec<Result<(), orders_core::OrderError>> = (0..owed)
            .map(|_| {
                Err(orders_core::OrderError::Throttled(
                    "injected: ProvisionedThroughputExceededException".into(),
                ))
            })
            .collect();
        outcomes.extend(self.inner.publish_all(&events[owed..]).await);
        outcomes
    }
}

/// An analytics store that fails one chosen write (counting every claim and write from 1)
/// with throttling, and refuses another as DynamoDB refuses a write that can never succeed —
/// the failures the emulator cannot produce on demand.
pub struct FlakyAnalytics<S> {
    pub inner: S,
    pub fail_write: std::sync::atomic::AtomicUsize,
    pub refuse_write: std::sync::atomic::AtomicUsize,
    pub writes: std::sync::atomic::AtomicUsize,
}

impl<S> FlakyAnalytics<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            fail_write: Default::default(),
            refuse_write: Default::default(),
            writes: Default::default(),
        }
    }

    fn check(&self) -> Result<(), orders_core::OrderError> {
        use std::sync::atomic::Ordering;
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_write.load(Ordering::SeqCst) {
            return Err(orders_core::OrderError::Throttled(
                "injected: ProvisionedThroughputExceededException".into(),
            ));
        }
        if n == self.refuse_write.load(Ordering::SeqCst) {
            return Err(orders_core::OrderError::Unexpected(
                "injected: ValidationException: Item size has exceeded the maximum allowed size"
                    .into(),
            ));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl<S: orders_core::ports::AnalyticsStore> orders_core::ports::AnalyticsStore
    for FlakyAnalytics<S>
{
    async fn claim_events(
        &self,
        order_id: &orders_core::OrderId,
        claims: &[(orders_core::EventId, String)],
    ) -> Result<Vec<bool>, orders_core::OrderError> {
        self.check()?;
        self.inner.claim_events(order_id, claims).await
    }

    async fn add_counters(
        &self,
        item: &orders_core::analytics::CounterItem,
        shard: &str,
        first: &str,
        last: &str,
        delta: &orders_core::analytics::ItemDelta,
    ) -> Result<orders_core::ports::CountersApplied, orders_core::OrderError> {
        self.check()?;
        self.inner
            .add_counters(item, shard, first, last, delta)
            .await
    }

    async fn add_counters_after(
        &self,
        item: &orders_core::analytics::CounterItem,
        shard: &str,
        watermark: &str,
        last: &str,
        delta: &orders_core::analytics::ItemDelta,
    ) -> Result<bool, orders_core::OrderError> {
        self.check()?;
        self.inner
            .add_counters_after(item, shard, watermark, last, delta)
            .await
    }

    async fn add_customers(
        &self,
        bucket: &orders_core::analytics::Bucket,
        shard: u32,
        customers: &std::collections::BTreeSet<orders_core::CustomerId>,
    ) -> Result<(), orders_core::OrderError> {
        self.check()?;
        self.inner.add_customers(bucket, shard, customers).await
    }
}

/// What a handler records through the `metrics` facade, captured on this test's thread
/// (`#[tokio::test]` polls everything on one thread, so a thread-local recorder sees it all).
pub struct RecordedMetrics {
    snapshotter: metrics_util::debugging::Snapshotter,
    _guard: metrics::LocalRecorderGuard<'static>,
}

impl RecordedMetrics {
    pub fn start() -> Self {
        let recorder: &'static metrics_util::debugging::DebuggingRecorder =
            Box::leak(Box::new(metrics_util::debugging::DebuggingRecorder::new()));
        RecordedMetrics {
            snapshotter: recorder.snapshotter(),
            _guard: metrics::set_default_local_recorder(recorder),
        }
    }

    /// What was recorded since the last call: `{"Name{label=value}": count or [values]}`,
    /// leaving out counters that stayed at zero.
    pub fn take(&self) -> Value {
        let mut taken = serde_json::Map::new();
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let key = key.key();
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let name = if labels.is_empty() {
                key.name().to_owned()
            } else {
                format!("{}{{{}}}", key.name(), labels.join(","))
            };
            match value {
                metrics_util::debugging::DebugValue::Counter(0) => {}
                metrics_util::debugging::DebugValue::Counter(n) => {
                    taken.insert(name, serde_json::json!(n));
                }
                metrics_util::debugging::DebugValue::Histogram(values) if !values.is_empty() => {
                    taken.insert(
                        name,
                        serde_json::json!(values.iter().map(|v| v.0).collect::<Vec<_>>()),
                    );
                }
                other => panic!("unexpected {name}: {other:?}"),
            }
        }
        Value::Object(taken)
    }
}

/// The claims of a token API Gateway's JWT authorizer accepted, as it passes them on.
#[derive(Debug, Clone)]
pub struct Claims<'a> {
    pub subject: &'a str,
    pub scopes: &'a [&'a str],
    /// `cognito:groups`, as a Cognito token carries them (empty: no such claim).
    pub groups: &'a [&'a str],
}

impl<'a> Claims<'a> {
    /// A customer's token: its subject is the customer id.
    pub const fn customer(id: &'a str) -> Self {
        Self {
            subject: id,
            scopes: &["openid"],
            groups: &[],
        }
    }

    /// A staff member's token (the staff scope, no group claim).
    pub const fn staff() -> Self {
        Self {
            subject: "ops-1",
            scopes: &["openid", orders_core::caller::STAFF_SCOPE],
            groups: &[],
        }
    }
}

/// An API Gateway HTTP API (payload 2.0) event for `route_key` (`GET /orders/{orderId}`) at
/// `path`, as API Gateway sends it to a function; with the authorizer's claims when `token`
/// is given. Turn it into a request with `lambda_http::request::from_str`.
pub fn api_event(
    route_key: &str,
    path: &str,
    path_parameters: &[(&str, &str)],
    headers: &[(&str, &str)],
    body: Option<&str>,
    token: Option<&Claims<'_>>,
) -> serde_json::Value {
    let (method, _) = route_key.split_once(' ').expect("METHOD /path");
    let mut all_headers = serde_json::Map::new();
    if body.is_some() {
        all_headers.insert("content-type".into(), "application/json".into());
    }
    for (name, value) in headers {
        all_headers.insert((*name).to_owned(), (*value).into());
    }
    let mut event = serde_json::json!({
        "version": "2.0", "routeKey": route_key, "rawPath": path, "rawQueryString": "",
        "headers": all_headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "test", "domainName": "api.example.com",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "test"},
            "requestId": "test-request", "routeKey": route_key, "stage": "$default",
            "time": "21/Nov/2026:23:55:16 +0000", "timeEpoch": 1795305316789_u64
        },
        "isBase64Encoded": false
    });
    if let Some(body) = body {
        event["body"] = body.into();
    }
    if !path_parameters.is_empty() {
        let params: serde_json::Map<String, serde_json::Value> = path_parameters
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).into()))
            .collect();
        event["pathParameters"] = params.into();
    }
    if let Some(token) = token {
        let mut claims = serde_json::json!({"sub": token.subject, "iss": "https://issuer.example",
            "scope": token.scopes.join(" ")});
        if !token.groups.is_empty() {
            // API Gateway passes a list claim as text.
            claims["cognito:groups"] = format!("[{}]", token.groups.join(" ")).into();
        }
        event["requestContext"]["authorizer"] = serde_json::json!({"jwt": {
            "claims": claims,
            "scopes": token.scopes,
        }});
    }
    event
}

/// Who a test acts as on the local stack.
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    /// A customer: its own orders only.
    Customer(&'a str),
    /// Staff: the catalog, shipping, every order, analytics.
    Staff,
}

/// A bearer token of the local stack's development issuer (`ORDERS_ISSUER`, default
/// `http://127.0.0.1:3002`; key in `ORDERS_ISSUER_DIR`, default `.local/dev-oidc`), valid
/// for an hour — what `orders-admin token` prints.
pub fn token(holder: Holder<'_>) -> String {
    mint(holder, &issuer(), 3_600)
}

/// The local stack's issuer URL.
pub fn issuer() -> String {
    std::env::var("ORDERS_ISSUER").unwrap_or_else(|_| "http://127.0.0.1:3002".to_owned())
}

/// A token signed with the development issuer's key, claiming `issuer`, valid for
/// `lifetime_seconds` (negative: already expired) — for tests of bad tokens too.
pub fn mint(holder: Holder<'_>, issuer: &str, lifetime_seconds: i64) -> String {
    use dev_auth::token::Subject;
    let dir = std::env::var("ORDERS_ISSUER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join(".local/dev-oidc"));
    let key = dev_auth::SigningKey::load_or_create(&dir)
        .unwrap_or_else(|e| panic!("the development issuer's key: {e:#}"));
    let subject = match holder {
        Holder::Customer(id) => Subject {
            id,
            scopes: &["openid", "orders/customer"],
        },
        Holder::Staff => Subject {
            id: "e2e-staff",
            scopes: &["openid", "orders/customer", "orders/admin"],
        },
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    key.mint(
        issuer,
        dev_auth::LOCAL_AUDIENCE,
        &subject,
        now - 5,
        lifetime_seconds,
    )
    .unwrap_or_else(|e| panic!("minting a token: {e:#}"))
}
