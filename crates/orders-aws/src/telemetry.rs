//! Business metrics as CloudWatch Embedded Metric Format (EMF): one JSON document per line on
//! stdout, which Lambda ships to CloudWatch Logs, which turns them into metrics. No
//! `PutMetricData` call, no latency on the request path, no IAM permission.
//!
//! Handler libraries count with the `metrics` facade (`metrics::counter!(metric::ORDERS_PLACED)`)
//! and know nothing of the format. A function's `main` calls [`init`] once and [`flush`] at the
//! end of every invocation — Lambda freezes the process between invocations, so a timer-driven
//! flush would publish late or never. Where [`init`] is not called (tests, benchmarks) the
//! facade's calls go nowhere, or to the recorder a test installs.
//!
//! Every metric is in the [`NAMESPACE`] namespace with a [`FUNCTION_DIMENSION`] dimension
//! holding the deployed function name (so two deployments in one account do not mix); a
//! metric's labels (`reason`, `kind`) become further dimensions. The catalog, and the alarms
//! built on it, are in `docs/observability.md`.

use anyhow::anyhow;
use metrics::Unit;
use metrics_cloudwatch_embedded::{Builder, Collector};
use std::io::Write;
use std::sync::OnceLock;

pub const NAMESPACE: &str = "Orders";
pub const FUNCTION_DIMENSION: &str = "function";

/// Metric names. Terraform alarms and the dashboard name them too
/// (`infra/modules/orders/observability.tf`): rename in both places.
pub mod metric {
    /// Once per process, at [`super::init`]: a Lambda cold start.
    pub const COLD_START: &str = "ColdStart";
    /// place-order: a `201` for a new order (idempotent replays excluded).
    pub const ORDERS_PLACED: &str = "OrdersPlaced";
    /// place-order: a stored answer replayed for a repeated `Idempotency-Key`.
    pub const IDEMPOTENT_REPLAYS: &str = "IdempotentReplays";
    /// place-order: `POST /orders` answered with an error; label `reason` = the error code.
    pub const ORDERS_REJECTED: &str = "OrdersRejected";
    /// process-order: an order reserved its stock and became `PROCESSED`.
    pub const ORDERS_PROCESSED: &str = "OrdersProcessed";
    /// process-order: an order became `FAILED`; label `reason` (`out_of_stock`, `unknown_product`).
    pub const ORDERS_FAILED: &str = "OrdersFailed";
    /// Stream consumers: a record sent to the function's dead-letter queue.
    pub const DEAD_LETTERED: &str = "DeadLettered";
    /// Stream consumers: records in one invocation's batch (a distribution).
    pub const BATCH_SIZE: &str = "BatchSize";
    /// Stream consumers: records handed back to Lambda in `batchItemFailures` to be retried.
    pub const BATCH_ITEM_FAILURES: &str = "BatchItemFailures";
    /// Stream consumers: records whose event had already been applied (redeliveries,
    /// producer duplicates) and so changed nothing.
    pub const DUPLICATE_RECORDS: &str = "DuplicateRecords";
    /// aggregate: analytics items written; label `kind` = `counter` or `customers`.
    pub const AGGREGATE_WRITES: &str = "AggregateWrites";
    /// relay: order versions put on the event stream.
    pub const EVENTS_RELAYED: &str = "EventsRelayed";
    /// process-order: transactions refused by a concurrent one on the same items, tried
    /// again in-process.
    pub const TRANSACTION_CONFLICTS: &str = "TransactionConflicts";
    /// notify: frames pushed to sockets (one per socket per batch: what API Gateway bills).
    pub const PUSHES: &str = "Pushes";
    /// notify: sockets found closed (API Gateway's 410) and forgotten.
    pub const CONNECTIONS_GONE: &str = "ConnectionsGone";
}

/// Every metric counts something, so every one has the unit `Count`.
const COUNTERS: [&str; 14] = [
    metric::COLD_START,
    metric::PUSHES,
    metric::CONNECTIONS_GONE,
    metric::EVENTS_RELAYED,
    metric::TRANSACTION_CONFLICTS,
    metric::ORDERS_PLACED,
    metric::IDEMPOTENT_REPLAYS,
    metric::ORDERS_REJECTED,
    metric::ORDERS_PROCESSED,
    metric::ORDERS_FAILED,
    metric::DEAD_LETTERED,
    metric::BATCH_ITEM_FAILURES,
    metric::DUPLICATE_RECORDS,
    metric::AGGREGATE_WRITES,
];
const HISTOGRAMS: [&str; 1] = [metric::BATCH_SIZE];

static COLLECTOR: OnceLock<&'static Collector> = OnceLock::new();

/// Installs the EMF recorder for this process and counts a cold start. `function` is the
/// `function` dimension's value where Lambda does not name the function
/// (`AWS_LAMBDA_FUNCTION_NAME`, set on AWS and by the local runner).
pub fn init(function: &str) -> anyhow::Result<()> {
    let name = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| function.to_owned());
    install(name)
}

fn install(function: String) -> anyhow::Result<()> {
    let collector = Builder::new()
        .cloudwatch_namespace(NAMESPACE)
        .with_dimension(FUNCTION_DIMENSION, function)
        .init()
        .map_err(|e| anyhow!("installing the EMF metrics recorder: {e}"))?;
    COLLECTOR
        .set(collector)
        .map_err(|_| anyhow!("telemetry::init called twice"))?;
    for name in COUNTERS {
        metrics::describe_counter!(name, Unit::Count, "");
    }
    for name in HISTOGRAMS {
        metrics::describe_histogram!(name, Unit::Count, "");
    }
    metrics::counter!(metric::COLD_START).increment(1);
    Ok(())
}

/// Writes the metrics counted since the last flush to stdout and resets them. Call it once
/// at the end of every invocation; without [`init`] it does nothing.
pub fn flush() {
    let documents = render();
    if documents.is_empty() {
        return;
    }
    // One write of whole lines while holding the lock, so a log line written by another
    // thread cannot land inside a document (CloudWatch would drop the document).
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = stdout.write_all(&documents).and_then(|()| stdout.flush()) {
        tracing::warn!(error = %err, "could not write the metrics");
    }
}

/// The pending EMF documents, one per line (one document per set of labels).
fn render() -> Vec<u8> {
    let mut documents = Vec::new();
    if let Some(collector) = COLLECTOR.get()
        && let Err(err) = collector.flush(&mut documents)
    {
        tracing::warn!(error = %err, "could not serialise the metrics");
        documents.clear();
    }
    documents
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn documents() -> Vec<Value> {
        String::from_utf8(render())
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).expect("each line is one JSON document"))
            .collect()
    }

    /// The only test in this crate that installs the process-wide recorder.
    #[test]
    fn emits_one_emf_document_per_label_set_and_resets_after_a_flush() {
        install("orders-process-order".into()).unwrap();
        metrics::counter!(metric::ORDERS_PROCESSED).increment(2);
        metrics::counter!(metric::ORDERS_FAILED, "reason" => "out_of_stock").increment(1);
        metrics::histogram!(metric::BATCH_SIZE).record(3.0);
        metrics::histogram!(metric::BATCH_SIZE).record(5.0);

        let docs = documents();
        assert_eq!(docs.len(), 2, "{docs:#?}");
        let plain = docs
            .iter()
            .find(|d| d.get("reason").is_none())
            .expect("the document without labels");
        let directive = &plain["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["function"]]));
        assert_eq!(plain["function"], "orders-process-order");
        assert!(plain["_aws"]["Timestamp"].as_u64().unwrap() > 1_700_000_000_000);
        let mut declared: Vec<(String, String)> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["Name"].as_str().unwrap().to_owned(),
                    m["Unit"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        declared.sort();
        assert_eq!(
            declared,
            [
                ("BatchSize".to_owned(), "Count".to_owned()),
                ("ColdStart".to_owned(), "Count".to_owned()),
                ("OrdersProcessed".to_owned(), "Count".to_owned()),
            ]
        );
        assert_eq!(plain["ColdStart"], 1);
        assert_eq!(plain["OrdersProcessed"], 2);
        assert_eq!(plain["BatchSize"], json!([3.0, 5.0]));

        let failed = docs.iter().find(|d| d.get("reason").is_some()).unwrap();
        assert_eq!(
            failed["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["function", "reason"]])
        );
        assert_eq!(failed["reason"], "out_of_stock");
        assert_eq!(failed["OrdersFailed"], 1);

        // Flushed counters start again from zero, and nothing new means no output at all.
        assert!(documents().is_empty());
        metrics::counter!(metric::ORDERS_PROCESSED).increment(1);
        let docs = documents();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0]["OrdersProcessed"], 1);
        assert!(docs[0].get("ColdStart").is_none());

        assert!(
            install("again".into()).is_err(),
            "a second recorder is refused"
        );
    }
}
