//! `rss`: peak memory of the stream functions handling one large batch, and a summary of the
//! peak memory `local-runner` reports for the instances it stops.
//!
//! The stream functions are run by `local-runner`'s [`Runtime`] (the same process model as
//! `make run`), one instance each, with one Kinesis event of `--records` records:
//!
//! - **process-order**: `OrderPlaced` for as many `PENDING` orders, written to the orders
//!   table first (so every record is real work: catalog read, reservation transaction,
//!   `OrderProcessed` published);
//! - **aggregate**: the same orders' `OrderPlaced` and `OrderProcessed` (half the orders, two
//!   events each), on a shard id of its own so no earlier watermark hides them.
//!
//! The instance is then stopped and its `VmHWM` (peak resident set) read: the closest local
//! figure to Lambda's "Max Memory Used". The orders are created directly in the tables and
//! their events exist only in the batches (nothing is put on the stream), so run this with no
//! runner polling the stream, or the stack's own consumers will see the same orders twice.

use anyhow::{Context as _, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::stream::{self, StreamExt};
use local_runner::{FunctionConfig, Runtime, RuntimeSettings, discovery};
use orders_aws::{DynamoCatalog, DynamoOrderStore};
use orders_core::order::NewLineItem;
use orders_core::ports::{Catalog as _, OrderStore as _};
use orders_core::{
    Currency, CustomerId, EventEnvelope, Money, Order, OrderEvent, OrderId, OrderStatus,
    PlaceOrder, Product, ProductId, Quantity, Timestamp,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Serialize)]
pub struct BatchRow {
    pub function: String,
    pub records: usize,
    pub peak_rss_kb: u64,
    pub invoke_seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct PeakRow {
    pub function: String,
    pub instances: usize,
    pub max_peak_rss_kb: u64,
}

#[derive(Debug, Serialize)]
pub struct RssReport {
    /// One large batch per stream function.
    pub batches: Vec<BatchRow>,
    /// From a runner's metrics file (`--metrics`): every instance it stopped, per function.
    pub stopped_instances: Vec<PeakRow>,
}

#[derive(Debug, Deserialize)]
struct PeakLine {
    function: String,
    peak_rss_kb: Option<u64>,
}

/// Per function, the highest peak of the `peak_rss_kb` lines of a runner metrics file.
pub fn summarise_peaks(text: &str) -> anyhow::Result<Vec<PeakRow>> {
    let mut by_function: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let line: PeakLine =
            serde_json::from_str(line).with_context(|| format!("line {}", n + 1))?;
        if let Some(kb) = line.peak_rss_kb {
            by_function.entry(line.function).or_default().push(kb);
        }
    }
    Ok(by_function
        .into_iter()
        .map(|(function, kbs)| PeakRow {
            function,
            instances: kbs.len(),
            max_peak_rss_kb: kbs.into_iter().max().unwrap_or(0),
        })
        .collect())
}

fn find<'a>(functions: &'a [FunctionConfig], binary: &str) -> anyhow::Result<&'a FunctionConfig> {
    functions
        .iter()
        .find(|f| f.binary.file_name().is_some_and(|n| n == binary))
        .with_context(|| format!("no deployed function runs the binary `{binary}`"))
}

fn env<'a>(function: &'a FunctionConfig, name: &str) -> anyhow::Result<&'a str> {
    function
        .environment
        .get(name)
        .map(String::as_str)
        .with_context(|| format!("{} has no {name} in its environment", function.name))
}

/// A Lambda Kinesis event with `events` as records of `shard`, in order.
fn kinesis_event(events: &[EventEnvelope], shard: &str, stream_arn: &str) -> Value {
    let records: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(n, e)| {
            let seq = format!("4960000000000000000000000000000000000000000000000{n:07}");
            json!({
                "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": e.partition_key(),
                            "sequenceNumber": seq, "data": STANDARD.encode(e.to_json()),
                            "approximateArrivalTimestamp": 1.0},
                "eventSource": "aws:kinesis", "eventVersion": "1.0",
                "eventID": format!("{shard}:{seq}"), "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/bench",
                "awsRegion": "us-east-1", "eventSourceARN": stream_arn
            })
        })
        .collect();
    json!({ "Records": records })
}

/// Invokes `function` once with `event` on a fresh instance; its peak memory once stopped.
async fn measure(
    function: &FunctionConfig,
    settings: &RuntimeSettings,
    event: &Value,
    records: usize,
) -> anyhow::Result<BatchRow> {
    let mut config = function.clone();
    // A big batch against a single-threaded emulator takes longer than production's timeout.
    config.timeout = Duration::from_secs(900);
    let runtime = Runtime::new(vec![config], settings.clone());
    let start = Instant::now();
    let response = runtime.invoke(&function.name, event).await;
    let invoke_seconds = start.elapsed().as_secs_f64();
    runtime.shutdown(Duration::from_secs(10)).await;
    let response = response.map_err(|e| anyhow::anyhow!("{} failed: {e}", function.name))?;
    let failures = response["batchItemFailures"].as_array().map_or(0, Vec::len);
    if failures > 0 {
        bail!("{} reported {failures} batch item failures", function.name);
    }
    let peak = runtime
        .stats(&function.name)
        .and_then(|s| s.peak_rss_kb)
        .context("no peak memory recorded (is /proc available?)")?;
    println!(
        "{:<24} {records:>6} records  peak RSS {:>8.1} MiB  in {invoke_seconds:.1} s",
        function.name,
        peak as f64 / 1024.0
    );
    Ok(BatchRow {
        function: function.name.clone(),
        records,
        peak_rss_kb: peak,
        invoke_seconds,
    })
}

pub async fn run(
    bin_dir: &Path,
    records: usize,
    metrics: Option<&Path>,
) -> anyhow::Result<RssReport> {
    let sdk = orders_aws::config::sdk_config_for_streams().await;
    let bin_dir = std::path::absolute(bin_dir)?;
    let functions = discovery::discover_functions(&sdk, &bin_dir).await?;
    let process = find(&functions, "process-order")?;
    let aggregate = find(&functions, "aggregate")?;
    let endpoint =
        std::env::var("AWS_ENDPOINT_URL").context("AWS_ENDPOINT_URL must name the emulator")?;
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let settings = RuntimeSettings::from_process_env(endpoint, region, 1, None, bin_dir);

    let run = format!(
        "rss{}",
        SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis()
    );
    let catalog = DynamoCatalog::from_sdk(&sdk, env(process, "PRODUCTS_TABLE")?);
    let now = Timestamp::now();
    let products: Vec<ProductId> = (0..50)
        .map(|i| ProductId::parse(&format!("{run}-p{i}")).expect("valid id"))
        .collect();
    for p in &products {
        catalog
            .put(&Product {
                product_id: p.clone(),
                name: format!("bench product {p}"),
                price: Money::from_minor(1_000).expect("valid price"),
                stock: 100_000_000,
                version: 1,
                updated_at: now,
            })
            .await?;
    }

    let store = DynamoOrderStore::from_sdk(&sdk, env(process, "ORDERS_TABLE")?);
    let currency = Currency::parse("USD").expect("valid currency");
    let orders: Vec<Order> = (0..records)
        .map(|i| {
            let command = PlaceOrder {
                customer_id: CustomerId::parse(&format!("{run}-c{}", i % 200)).expect("valid id"),
                currency: currency.clone(),
                items: (0..1 + i % 3)
                    .map(|l| NewLineItem {
                        product_id: products[(i * 7 + l * 13) % products.len()].clone(),
                        quantity: Quantity::new(1 + (i % 2) as u32).expect("valid quantity"),
                        unit_price: Money::from_minor(1_000).expect("valid price"),
                    })
                    .collect(),
            };
            Order::place(OrderId::new(ulid::Ulid::new()), &command, now)
        })
        .collect();
    let created: Vec<anyhow::Result<()>> = stream::iter(&orders)
        .map(|o| async {
            store
                .create(o)
                .await
                .map(|_| ())
                .map_err(anyhow::Error::from)
        })
        .buffer_unordered(8)
        .collect()
        .await;
    created.into_iter().collect::<anyhow::Result<()>>()?;

    let stream_arn = "arn:aws:kinesis:us-east-1:123456789012:stream/bench-rss";
    let placed: Vec<EventEnvelope> = orders
        .iter()
        .map(|o| EventEnvelope::new(OrderEvent::placed(o.clone())))
        .collect();
    let process_row = measure(
        process,
        &settings,
        &kinesis_event(&placed, &format!("shardId-{run}"), stream_arn),
        records,
    )
    .await?;

    let half = &orders[..records / 2];
    let mut mixed = Vec::with_capacity(records);
    for order in half {
        mixed.push(EventEnvelope::new(OrderEvent::placed(order.clone())));
        let processed = order.transition(OrderStatus::Processed, Timestamp::now())?;
        mixed.push(EventEnvelope::new(OrderEvent::for_current_state(
            &processed,
        )));
    }
    let aggregate_row = measure(
        aggregate,
        &settings,
        &kinesis_event(&mixed, &format!("shardId-{run}"), stream_arn),
        mixed.len(),
    )
    .await?;

    let stopped_instances = match metrics {
        Some(path) => summarise_peaks(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
        )?,
        None => Vec::new(),
    };
    for row in &stopped_instances {
        println!(
            "{:<24} {:>3} instances stopped by the runner, highest peak RSS {:>8.1} MiB",
            row.function,
            row.instances,
            row.max_peak_rss_kb as f64 / 1024.0
        );
    }
    Ok(RssReport {
        batches: vec![process_row, aggregate_row],
        stopped_instances,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_per_function_ignore_other_metric_lines() {
        let text = r#"{"function":"orders-query","cold_init_ms":30.5}
{"function":"orders-query","instance":0,"peak_rss_kb":9000}
{"function":"orders-query","instance":3,"peak_rss_kb":12000}

{"function":"orders-aggregate","instance":1,"peak_rss_kb":7000}
"#;
        let rows = summarise_peaks(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (
                rows[1].function.as_str(),
                rows[1].instances,
                rows[1].max_peak_rss_kb
            ),
            ("orders-query", 2, 12000)
        );
        assert!(summarise_peaks("{").is_err());
    }

    #[test]
    fn kinesis_events_keep_order_and_shard() {
        let order = Order::place(
            OrderId::new(ulid::Ulid::new()),
            &PlaceOrder {
                customer_id: CustomerId::parse("c").unwrap(),
                currency: Currency::parse("USD").unwrap(),
                items: vec![NewLineItem {
                    product_id: ProductId::parse("p").unwrap(),
                    quantity: Quantity::new(1).unwrap(),
                    unit_price: Money::from_minor(1).unwrap(),
                }],
            },
            Timestamp::now(),
        );
        let events = vec![
            EventEnvelope::new(OrderEvent::placed(order.clone())),
            EventEnvelope::new(OrderEvent::placed(order)),
        ];
        let event = kinesis_event(&events, "shardId-x", "arn:s");
        let records = event["Records"].as_array().unwrap();
        assert_eq!(records.len(), 2);
        let seq = |i: usize| {
            records[i]["kinesis"]["sequenceNumber"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert!(seq(0) < seq(1) && seq(0).len() == seq(1).len());
        assert!(
            records[1]["eventID"]
                .as_str()
                .unwrap()
                .starts_with("shardId-x:")
        );
        let parsed: aws_lambda_events::event::kinesis::KinesisEvent =
            serde_json::from_value(event).unwrap();
        assert_eq!(parsed.records.len(), 2);
    }
}
