//! `orders-bench`: figures about the running system.
//!
//! - `http`: N sequential `POST /orders` (varied bodies, each with its own `Idempotency-Key`),
//!   then N sequential `GET /orders/{id}` of the orders just created; latency per route.
//! - `cold-init`: summarises the cold-init JSON lines written by `local-runner --metrics-file`.
//! - `sizes`: sizes of the release artefacts under `target/lambda/<bin>/`.
//! - `rss`: peak memory of the stream functions on one large batch (see [`rss`]), and of the
//!   instances a runner stopped (from its metrics file).
//! - `poison`: records no consumer can use, put on the event stream (see [`poison`]).
//! - `reports`: the analytics routes over 100,000 generated orders (see [`reports`]).
//! - `listings`: order listings and the summary at 1k / 10k / 100k orders (see [`listings`]).
//!
//! Each prints a table and, with `--out FILE`, writes the same figures as JSON.

mod http;
mod listings;
mod pipeline;
mod poison;
mod reports;
mod rss;
mod stats;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stats::{Summary, percentile, print_table};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Latency of POST /orders and GET /orders/{id}, one request at a time.
    Http {
        #[arg(long, env = "ORDERS_API_URL", default_value = "http://127.0.0.1:3000")]
        base_url: String,
        /// Requests per route.
        #[arg(long, default_value_t = 2000)]
        requests: usize,
        /// Requests per route sent first and left out of the figures (cold starts, connections).
        #[arg(long, default_value_t = 10)]
        warmup: usize,
        /// Per-request timeout, in seconds.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Cold init per function (min/median/max) from local-runner's `--metrics-file`.
    ColdInit {
        #[arg(long)]
        metrics: PathBuf,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The pipeline: time from `POST /orders` to `PROCESSED` (visible via GET) and to counted
    /// in its minute bucket, one order at a time; then a burst, to measure orders/s through
    /// process-order.
    Pipeline {
        #[arg(long, env = "ORDERS_API_URL", default_value = "http://127.0.0.1:3000")]
        base_url: String,
        /// Orders measured one at a time.
        #[arg(long, default_value_t = 200)]
        orders: usize,
        /// Orders in the burst.
        #[arg(long, default_value_t = 1000)]
        burst: usize,
        #[arg(long, env = "ANALYTICS_TABLE", default_value = "orders-analytics")]
        analytics_table: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Latency and DynamoDB reads of the analytics routes over a 24 h and a 30-day window of
    /// realistic data (generated, folded and bulk-loaded into January 2019, which nothing else uses).
    Reports {
        #[arg(long, env = "ORDERS_API_URL", default_value = "http://127.0.0.1:3000")]
        base_url: String,
        #[arg(long, env = "ANALYTICS_TABLE", default_value = "orders-analytics")]
        analytics_table: String,
        #[arg(long, env = "ORDERS_TABLE", default_value = "orders-orders")]
        orders_table: String,
        #[arg(long, env = "PRODUCTS_TABLE", default_value = "orders-products")]
        products_table: String,
        #[arg(long, default_value_t = 100_000)]
        orders: usize,
        /// Requests per route and window.
        #[arg(long, default_value_t = 50)]
        requests: usize,
        /// The data of an earlier run with the same `--orders` is in place: skip loading.
        #[arg(long)]
        no_load: bool,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Latency of the order listings and the 24 h summary with the orders table topped up to
    /// each level in turn, while orders keep being placed through the API.
    Listings {
        #[arg(long, env = "ORDERS_API_URL", default_value = "http://127.0.0.1:3000")]
        base_url: String,
        #[arg(long, env = "ORDERS_TABLE", default_value = "orders-orders")]
        orders_table: String,
        /// Orders in the table at each measurement (cumulative, ascending).
        #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
        levels: Vec<usize>,
        /// Requests per route and level.
        #[arg(long, default_value_t = 100)]
        requests: usize,
        /// Orders per second placed through the API meanwhile (0: none).
        #[arg(long, default_value_t = 5.0)]
        background_rate: f64,
        /// The emulator's name, recorded with the figures.
        #[arg(long, default_value = "moto 5.2.5 (scripts/moto_server.py)")]
        emulator: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Peak memory (VmHWM) of process-order and aggregate handling one batch of --records
    /// records each, run by local-runner's runtime against the emulator (AWS_ENDPOINT_URL).
    /// Run it with no runner polling the stack's stream.
    Rss {
        /// Where the function binaries are (named as their `orders:binary` tags).
        #[arg(long, default_value = "target/debug")]
        bin_dir: PathBuf,
        #[arg(long, default_value_t = 1000)]
        records: usize,
        /// A runner's --metrics-file: also report the peaks of the instances it stopped.
        #[arg(long)]
        metrics: Option<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Put records no consumer can use on the event stream (fault drills).
    Poison {
        #[arg(
            long,
            env = "EVENTS_STREAM_NAME",
            default_value = "orders-order-events"
        )]
        stream: String,
        #[arg(long, default_value_t = 3)]
        count: usize,
        /// Partition keys are `poison-<tag>-<n>`.
        #[arg(long, default_value = "drill")]
        tag: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Size of each `<bin>/bootstrap` and `<bin>/bootstrap.zip`.
    Sizes {
        #[arg(long, default_value = "target/lambda")]
        dir: PathBuf,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Http {
            base_url,
            requests,
            warmup,
            timeout,
            out,
        } => {
            let report = http(&base_url, requests, warmup, Duration::from_secs(timeout)).await?;
            write_json(out.as_deref(), &report)
        }
        Command::Pipeline {
            base_url,
            orders,
            burst,
            analytics_table,
            out,
        } => {
            let report = pipeline::run(&base_url, orders, burst, &analytics_table).await?;
            write_json(out.as_deref(), &report)
        }
        Command::Reports {
            base_url,
            analytics_table,
            orders_table,
            products_table,
            orders,
            requests,
            no_load,
            out,
        } => {
            let tables = reports::Tables {
                orders: orders_table,
                products: products_table,
                analytics: analytics_table,
            };
            let report = reports::run(&base_url, &tables, orders, requests, !no_load).await?;
            write_json(out.as_deref(), &report)
        }
        Command::Listings {
            base_url,
            orders_table,
            mut levels,
            requests,
            background_rate,
            emulator,
            out,
        } => {
            levels.sort_unstable();
            let report = listings::run(
                &base_url,
                &orders_table,
                &levels,
                requests,
                background_rate,
                &emulator,
            )
            .await?;
            write_json(out.as_deref(), &report)
        }
        Command::Rss {
            bin_dir,
            records,
            metrics,
            out,
        } => {
            let report = rss::run(&bin_dir, records, metrics.as_deref()).await?;
            write_json(out.as_deref(), &report)
        }
        Command::Poison {
            stream,
            count,
            tag,
            out,
        } => {
            let records = poison::put(&stream, count, &tag).await?;
            write_json(
                out.as_deref(),
                &json!({ "stream": stream, "records": records }),
            )
        }
        Command::ColdInit { metrics, out } => {
            let rows = cold_init(&metrics)?;
            write_json(out.as_deref(), &json!({ "functions": rows }))
        }
        Command::Sizes { dir, out } => {
            let rows = sizes(&dir)?;
            write_json(out.as_deref(), &json!({ "dir": dir, "artefacts": rows }))
        }
    }
}

fn write_json(path: Option<&Path>, value: &impl Serialize) -> anyhow::Result<()> {
    if let Some(path) = path {
        let text = serde_json::to_string_pretty(value)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------- http

/// A deterministic pseudo-random sequence (SplitMix64), so every run sends the same bodies.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A realistic order: one of 500 customers, 1–5 distinct products of a 2,000-item catalog,
/// small quantities, prices from $0.99 to $250.
fn order_body(rng: &mut Rng) -> Value {
    let lines = 1 + rng.below(5);
    let mut products: Vec<u64> = Vec::new();
    while products.len() < lines as usize {
        let p = rng.below(2000);
        if !products.contains(&p) {
            products.push(p);
        }
    }
    let items: Vec<Value> = products
        .iter()
        .map(|p| {
            json!({
                "productId": format!("sku-{p:04}"),
                "quantity": 1 + rng.below(4),
                "unitPrice": 99 + rng.below(24_901),
            })
        })
        .collect();
    json!({
        "customerId": format!("customer-{:03}", rng.below(500)),
        "items": items,
        "currency": "USD",
    })
}

#[derive(Debug, Serialize)]
struct HttpReport {
    base_url: String,
    requests_per_route: usize,
    warmup_per_route: usize,
    /// Unix seconds.
    started_at: u64,
    routes: Vec<Summary>,
}

async fn http(
    base_url: &str,
    requests: usize,
    warmup: usize,
    timeout: Duration,
) -> anyhow::Result<HttpReport> {
    let base = base_url.trim_end_matches('/');
    let client = http::client(timeout)?;
    let started_at = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    // Keys unique to this run, so a second run is not served idempotent replays.
    let run = format!(
        "bench-{}",
        SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis()
    );
    let mut rng = Rng(42);

    let mut post_samples = Vec::with_capacity(requests);
    let mut post_errors = 0;
    let mut ids = Vec::with_capacity(requests + warmup);
    for i in 0..warmup + requests {
        let body = order_body(&mut rng).to_string();
        let start = Instant::now();
        let result = async {
            let response = client
                .post(format!("{base}/orders"))
                .header("content-type", "application/json")
                .header("idempotency-key", format!("{run}-{i}"))
                .body(body)
                .send()
                .await?;
            let status = response.status();
            let bytes = response.bytes().await?;
            anyhow::Ok((status, bytes))
        }
        .await;
        let elapsed = start.elapsed();
        let created = match result {
            Ok((status, bytes)) if status.as_u16() == 201 => {
                serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .and_then(|v| v["orderId"].as_str().map(str::to_owned))
            }
            Ok((status, bytes)) => {
                report_error(
                    i,
                    "POST /orders",
                    &format!("{status}: {}", String::from_utf8_lossy(&bytes)),
                );
                None
            }
            Err(err) => {
                report_error(i, "POST /orders", &format!("{err:#}"));
                None
            }
        };
        if let Some(id) = &created {
            ids.push(id.clone());
        }
        if i >= warmup {
            post_samples.push(elapsed);
            post_errors += usize::from(created.is_none());
        }
    }
    if ids.is_empty() {
        bail!("no order was created; is the stack serving {base}?");
    }

    let mut get_samples = Vec::with_capacity(requests);
    let mut get_errors = 0;
    for i in 0..warmup + requests {
        let id = &ids[i % ids.len()];
        let start = Instant::now();
        let result = async {
            let response = client.get(format!("{base}/orders/{id}")).send().await?;
            let status = response.status();
            let bytes = response.bytes().await?;
            anyhow::Ok((status, bytes))
        }
        .await;
        let elapsed = start.elapsed();
        let ok = match result {
            Ok((status, _)) if status.as_u16() == 200 => true,
            Ok((status, bytes)) => {
                report_error(
                    i,
                    "GET /orders/{id}",
                    &format!("{status}: {}", String::from_utf8_lossy(&bytes)),
                );
                false
            }
            Err(err) => {
                report_error(i, "GET /orders/{id}", &format!("{err:#}"));
                false
            }
        };
        if i >= warmup {
            get_samples.push(elapsed);
            get_errors += usize::from(!ok);
        }
    }

    let routes = vec![
        Summary::new("POST /orders", &post_samples, post_errors),
        Summary::new("GET /orders/{id}", &get_samples, get_errors),
    ];
    println!(
        "{requests} sequential requests per route against {base} ({warmup} warm-up requests not counted)"
    );
    print_table(&routes);
    Ok(HttpReport {
        base_url: base.to_owned(),
        requests_per_route: requests,
        warmup_per_route: warmup,
        started_at,
        routes,
    })
}

/// Shows the first few failures; a flood of identical messages helps nobody.
fn report_error(i: usize, route: &str, message: &str) {
    static SHOWN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    if SHOWN.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 5 {
        eprintln!("request {i} {route} failed: {message}");
    }
}

// ----------------------------------------------------------------------------------- cold-init

/// One line of a runner's metrics file; lines of other metrics lack `cold_init_ms`.
#[derive(Debug, Deserialize)]
struct ColdInitLine {
    function: String,
    cold_init_ms: Option<f64>,
}

#[derive(Debug, Serialize)]
struct ColdInitRow {
    function: String,
    samples: usize,
    min_ms: f64,
    median_ms: f64,
    max_ms: f64,
}

fn cold_init(path: &Path) -> anyhow::Result<Vec<ColdInitRow>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let rows = summarise_cold_init(&text)?;
    if rows.is_empty() {
        bail!("{} holds no cold-init lines", path.display());
    }
    println!(
        "{:<24} {:>7} {:>9} {:>10} {:>9}",
        "function", "samples", "min ms", "median ms", "max ms"
    );
    for r in &rows {
        println!(
            "{:<24} {:>7} {:>9.1} {:>10.1} {:>9.1}",
            r.function, r.samples, r.min_ms, r.median_ms, r.max_ms
        );
    }
    Ok(rows)
}

fn summarise_cold_init(text: &str) -> anyhow::Result<Vec<ColdInitRow>> {
    let mut by_function: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let line: ColdInitLine =
            serde_json::from_str(line).with_context(|| format!("line {}", n + 1))?;
        if let Some(ms) = line.cold_init_ms {
            by_function.entry(line.function).or_default().push(ms);
        }
    }
    Ok(by_function
        .into_iter()
        .map(|(function, mut ms)| {
            ms.sort_by(f64::total_cmp);
            let at = |p| percentile(&ms, p).unwrap_or(0.0);
            ColdInitRow {
                samples: ms.len(),
                min_ms: at(0.0),
                median_ms: at(50.0),
                max_ms: at(100.0),
                function,
            }
        })
        .collect())
}

// --------------------------------------------------------------------------------------- sizes

#[derive(Debug, Serialize)]
struct SizeRow {
    function: String,
    bootstrap_bytes: Option<u64>,
    zip_bytes: Option<u64>,
}

fn sizes(dir: &Path) -> anyhow::Result<Vec<SizeRow>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("reading {} (run scripts/package.sh)", dir.display()))?;
    let size = |p: PathBuf| std::fs::metadata(p).ok().map(|m| m.len());
    let mut rows: Vec<SizeRow> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| SizeRow {
            function: e.file_name().to_string_lossy().into_owned(),
            bootstrap_bytes: size(e.path().join("bootstrap")),
            zip_bytes: size(e.path().join("bootstrap.zip")),
        })
        .filter(|r| r.bootstrap_bytes.is_some() || r.zip_bytes.is_some())
        .collect();
    rows.sort_by(|a, b| a.function.cmp(&b.function));
    if rows.is_empty() {
        bail!(
            "no <bin>/bootstrap or bootstrap.zip under {}",
            dir.display()
        );
    }
    let mib = |b: Option<u64>| {
        b.map_or("-".to_owned(), |b| {
            format!("{:.2} MiB", b as f64 / 1_048_576.0)
        })
    };
    println!(
        "{:<16} {:>14} {:>14}",
        "function", "bootstrap", "bootstrap.zip"
    );
    for r in &rows {
        println!(
            "{:<16} {:>14} {:>14}",
            r.function,
            mib(r.bootstrap_bytes),
            mib(r.zip_bytes)
        );
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_valid_varied_and_reproducible() {
        let mut rng = Rng(42);
        let bodies: Vec<Value> = (0..200).map(|_| order_body(&mut rng)).collect();
        let mut again = Rng(42);
        assert_eq!(order_body(&mut again), bodies[0], "same seed, same bodies");
        for body in &bodies {
            let items = body["items"].as_array().unwrap();
            assert!((1..=5).contains(&items.len()));
            let mut products: Vec<_> = items.iter().map(|i| i["productId"].to_string()).collect();
            products.sort();
            products.dedup();
            assert_eq!(products.len(), items.len(), "distinct products");
            assert_eq!(body["currency"], "USD");
        }
        assert!(
            bodies
                .iter()
                .any(|b| b["items"].as_array().unwrap().len() == 5)
        );
        assert!(
            bodies
                .iter()
                .any(|b| b["items"].as_array().unwrap().len() == 1)
        );
    }

    #[test]
    fn cold_init_summary_per_function() {
        let text = r#"{"function":"orders-query","cold_init_ms":30.5}
{"function":"orders-place-order","cold_init_ms":12.0}
{"function":"orders-query","cold_init_ms":10.0}

{"function":"orders-query","cold_init_ms":20.0}
{"function":"orders-query","instance":0,"peak_rss_kb":9000}
"#;
        let rows = summarise_cold_init(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].function, "orders-place-order");
        assert_eq!(rows[1].samples, 3);
        assert_eq!(
            (rows[1].min_ms, rows[1].median_ms, rows[1].max_ms),
            (10.0, 20.0, 30.5)
        );
        assert!(summarise_cold_init("not json").is_err());
    }
}
