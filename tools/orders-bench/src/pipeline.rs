//! End-to-end latency and throughput of the pipeline through a running stack.
//!
//! Latency: one order at a time, `POST /orders` → the order `PROCESSED` (or `FAILED`) as seen
//! by `GET /orders/{id}` → the order counted in its minute bucket (read from the analytics
//! table). Polling every 20 ms bounds the resolution. Throughput: a burst of orders sent 16 at
//! a time, and the time until none is `PENDING` any more.

use crate::stats::{Summary, print_table};
use anyhow::Context as _;
use futures::stream::{self, StreamExt};
use orders_aws::DynamoAnalytics;
use orders_core::Timestamp;
use orders_core::analytics::{Bucket, Granularity};
use serde::Serialize;
use serde_json::{Value, json};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Serialize)]
pub struct PipelineReport {
    latency: Vec<Summary>,
    burst_orders: usize,
    burst_seconds: f64,
    /// `None` without a burst.
    orders_per_second: Option<f64>,
}

pub async fn run(
    base_url: &str,
    orders: usize,
    burst: usize,
    analytics_table: &str,
) -> anyhow::Result<PipelineReport> {
    let base = base_url.trim_end_matches('/');
    let client = crate::http::client(Duration::from_secs(30))?;
    let sdk = orders_aws::config::sdk_config_for_api().await;
    let analytics = DynamoAnalytics::from_sdk(&sdk, analytics_table, "unused", 0);
    let run = format!(
        "pipe-{}",
        SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis()
    );
    let products: Vec<String> = (0..20).map(|i| format!("{run}-p{i}")).collect();
    for p in &products {
        let status = client
            .put(format!("{base}/products/{p}"))
            .json(&json!({"name": p, "price": 1000, "stock": 1_000_000}))
            .send()
            .await?
            .status();
        anyhow::ensure!(status.is_success(), "PUT /products/{p}: {status}");
    }
    let body = |i: usize| {
        json!({"customerId": format!("{run}-c{}", i % 50),
               "items": [{"productId": products[i % products.len()], "quantity": 1, "unitPrice": 1000}]})
    };

    let mut processed = Vec::new();
    let mut counted = Vec::new();
    let mut errors = 0;
    for i in 0..orders {
        let minute = Bucket::containing(Granularity::Minute, Timestamp::now());
        let before = analytics.bucket(&minute).await?.totals.orders;
        let start = Instant::now();
        let response = client
            .post(format!("{base}/orders"))
            .json(&body(i))
            .send()
            .await?;
        if response.status().as_u16() != 201 {
            errors += 1;
            continue;
        }
        let order: Value = response.json().await?;
        let id = order["orderId"].as_str().context("orderId")?.to_owned();
        let created = Timestamp::parse(order["createdAt"].as_str().context("createdAt")?)
            .context("createdAt")?;
        loop {
            let order: Value = client
                .get(format!("{base}/orders/{id}"))
                .send()
                .await?
                .json()
                .await?;
            if order["status"] != "PENDING" {
                processed.push(start.elapsed());
                break;
            }
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(60),
                "order {id} not processed in 60 s"
            );
            tokio::time::sleep(POLL).await;
        }
        if Bucket::containing(Granularity::Minute, created) != minute {
            continue; // crossed a minute boundary: the count we read was for another bucket
        }
        loop {
            if analytics.bucket(&minute).await?.totals.orders > before {
                counted.push(start.elapsed());
                break;
            }
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(60),
                "order {id} not counted in 60 s"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    let start = Instant::now();
    let placed: Vec<bool> = stream::iter(0..burst)
        .map(|i| {
            let client = &client;
            let body = body(orders + i);
            async move {
                matches!(client.post(format!("{base}/orders")).json(&body).send().await, Ok(r) if r.status().as_u16() == 201)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    errors += placed.iter().filter(|ok| !**ok).count();
    loop {
        // No burst (`--burst 0`): nothing to wait for.
        if burst == 0 {
            break;
        }
        let mut pending = 0;
        for c in 0..50 {
            let page: Value = client
                .get(format!(
                    "{base}/orders?customerId={run}-c{c}&status=PENDING&limit=1"
                ))
                .send()
                .await?
                .json()
                .await?;
            pending += page["orders"].as_array().map_or(0, Vec::len);
        }
        if pending == 0 {
            break;
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(600),
            "burst not processed in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seconds = start.elapsed().as_secs_f64();
    let latency = vec![
        Summary::new("POST → PROCESSED visible", &processed, errors),
        Summary::new("POST → counted in minute bucket", &counted, 0),
    ];
    print_table(&latency);
    let orders_per_second = (burst > 0).then(|| burst as f64 / seconds);
    if let Some(rate) = orders_per_second {
        println!(
            "burst: {burst} orders placed and processed in {seconds:.1} s = {rate:.1} orders/s"
        );
    }
    Ok(PipelineReport {
        latency,
        burst_orders: burst,
        burst_seconds: seconds,
        orders_per_second,
    })
}
