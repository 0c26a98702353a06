//! `listings`: latency of order listings and the 24 h summary as the orders table grows.
//!
//! For each level (1,000, 10,000, 100,000 orders by default) the orders table is topped up to
//! that many generated orders (the same generator as `reports`: January 2019, Zipf-like
//! customers, a working shop's status mix), bulk-loaded with their index keys, and then each
//! route is called `--requests` times in turn while a background task keeps placing orders
//! through the API (`--background-rate` per second), so listings are measured against a
//! table that is being written, as a dashboard sees it. The customer asked for is the
//! busiest one of the generated data (about 3 % of all orders), so `customerId` + `status`
//! is measured where a filter would hurt most.

use crate::reports::generate;
use crate::stats::{Summary, print_table};
use anyhow::Context;
use orders_aws::DynamoOrderStore;
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The most frequent customer of `reports::generate` (Zipf rank 1).
const BUSIEST_CUSTOMER: &str = "cust-1";
const PRODUCT: &str = "bench-listings-sku";

#[derive(Debug, Serialize)]
pub struct Level {
    pub orders_loaded: usize,
    pub load_seconds: f64,
    pub routes: Vec<Summary>,
    /// Answers with a 5xx status (counted in `errors` too).
    pub server_errors: usize,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub emulator: String,
    pub background_rate: f64,
    pub background_orders: usize,
    pub levels: Vec<Level>,
}

pub async fn run(
    base_url: &str,
    orders_table: &str,
    levels: &[usize],
    requests: usize,
    background_rate: f64,
    emulator: &str,
) -> anyhow::Result<Report> {
    let sdk = orders_aws::config::sdk_config_for_api().await;
    let store = DynamoOrderStore::from_sdk(&sdk, orders_table);
    let client = crate::http::client(Duration::from_secs(30))?;
    put_product(&client, base_url).await?;
    let most = levels.iter().copied().max().unwrap_or(0);
    eprintln!("generating {most} orders");
    let backlog = generate(most, 2019);

    let stop = Arc::new(AtomicBool::new(false));
    let placed = Arc::new(AtomicUsize::new(0));
    let background = tokio::spawn(place_in_background(
        client.clone(),
        base_url.to_owned(),
        background_rate,
        stop.clone(),
        placed.clone(),
    ));

    let mut loaded = 0;
    let mut out = Vec::new();
    for &level in levels {
        let started = Instant::now();
        for chunk in backlog[loaded..level.max(loaded)].chunks(2_500) {
            loaded += store.load(chunk).await.context("loading orders")?;
        }
        let load_seconds = started.elapsed().as_secs_f64();
        eprintln!("{loaded} orders in the table (loaded in {load_seconds:.1} s); measuring");
        let (routes, server_errors) = measure(&client, base_url, requests).await?;
        print_table(&routes);
        out.push(Level {
            orders_loaded: loaded,
            load_seconds,
            routes,
            server_errors,
        });
    }
    stop.store(true, Ordering::Relaxed);
    background.await??;
    Ok(Report {
        emulator: emulator.to_owned(),
        background_rate,
        background_orders: placed.load(Ordering::Relaxed),
        levels: out,
    })
}

async fn measure(
    client: &reqwest::Client,
    base_url: &str,
    requests: usize,
) -> anyhow::Result<(Vec<Summary>, usize)> {
    let routes = [
        ("GET /orders?limit=20", "/orders?limit=20".to_owned()),
        (
            "GET /orders?status=FAILED",
            "/orders?status=FAILED".to_owned(),
        ),
        (
            "GET /orders?customerId&status=DELIVERED",
            format!("/orders?customerId={BUSIEST_CUSTOMER}&status=DELIVERED"),
        ),
    ];
    let mut rows = Vec::new();
    let mut server_errors = 0;
    for (label, path) in &routes {
        let (row, failed) =
            time_route(client, label, requests, |_| format!("{base_url}{path}")).await?;
        rows.push(row);
        server_errors += failed;
    }
    // Each summary its own window (shifted a minute per request), so none is served from the
    // query function's 2 s report cache.
    let now = time::OffsetDateTime::now_utc().unix_timestamp() / 60 * 60;
    let (row, failed) = time_route(client, "GET /analytics/summary (24 h)", requests, |n| {
        let to = now - 60 * n as i64;
        format!(
            "{base_url}/analytics/summary?from={}&to={}",
            rfc3339(to - 86_400),
            rfc3339(to)
        )
    })
    .await?;
    rows.push(row);
    Ok((rows, server_errors + failed))
}

async fn time_route(
    client: &reqwest::Client,
    label: &str,
    requests: usize,
    url: impl Fn(usize) -> String,
) -> anyhow::Result<(Summary, usize)> {
    let (mut samples, mut errors, mut server_errors) = (Vec::with_capacity(requests), 0, 0);
    for n in 0..requests {
        let started = Instant::now();
        match client.get(url(n)).send().await {
            Ok(response) if response.status().is_success() => {
                response.bytes().await?;
                samples.push(started.elapsed());
            }
            Ok(response) => {
                errors += 1;
                server_errors += usize::from(response.status().is_server_error());
            }
            Err(_) => errors += 1,
        }
    }
    Ok((Summary::new(label, &samples, errors), server_errors))
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

async fn put_product(client: &reqwest::Client, base_url: &str) -> anyhow::Result<()> {
    let response = client
        .put(format!("{base_url}/products/{PRODUCT}"))
        .json(&json!({"name": "Listing benchmark", "price": 500, "stock": 100_000_000}))
        .send()
        .await
        .context("PUT /products")?;
    // 428: it exists from an earlier run on this stack (its stock is only set on creation;
    // 100 million units outlast any run).
    anyhow::ensure!(
        response.status().is_success()
            || response.status() == reqwest::StatusCode::PRECONDITION_REQUIRED,
        "PUT /products/{PRODUCT}: {}",
        response.status()
    );
    Ok(())
}

/// Orders at `rate` per second until `stop`, each with its own Idempotency-Key.
async fn place_in_background(
    client: reqwest::Client,
    base_url: String,
    rate: f64,
    stop: Arc<AtomicBool>,
    placed: Arc<AtomicUsize>,
) -> anyhow::Result<()> {
    if rate <= 0.0 {
        return Ok(());
    }
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        n += 1;
        let body = json!({
            "customerId": format!("bench-listings-{}", n % 50),
            "items": [{"productId": PRODUCT, "quantity": 1, "unitPrice": 500}],
        });
        let sent = client
            .post(format!("{base_url}/orders"))
            .header("idempotency-key", uuid::Uuid::new_v4().to_string())
            .json(&body)
            .send()
            .await;
        if matches!(sent, Ok(ref r) if r.status().is_success()) {
            placed.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}
