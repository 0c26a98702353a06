//! `reports`: latency and DynamoDB reads of the analytics routes over realistic data.
//!
//! 1. Generates `--orders` orders (seeded) over 31 days starting 2019-01-01 — a range no
//!    test or live traffic writes — with a daily cycle, Zipf-like product and customer
//!    popularity, 1–4 lines per basket, and the status mix of a working shop (most
//!    processed, some failed, cancelled, shipped, delivered).
//! 2. Folds them exactly as the aggregate function would (`Fold::add_order`) and bulk-loads
//!    every minute, hour and day bucket into the analytics table the stack serves from.
//! 3. Calls each analytics route over a 24-hour and a 30-day window whose edges fall
//!    mid-hour (so the cover mixes days, hours and minutes), shifting the window a minute
//!    per request so every call is computed, not served from the 2 s cache; then once more
//!    cached. DynamoDB requests per call are counted by the SDK interceptor while the query
//!    function's handler serves the same route in-process.

use crate::Rng;
use crate::stats::{Summary, print_table};
use anyhow::Context;
use orders_aws::metrics::take_request_counts;
use orders_aws::{DynamoAnalytics, DynamoAnalyticsReader, DynamoCatalog, DynamoOrderStore};
use orders_core::analytics::Fold;
use orders_core::order::NewLineItem;
use orders_core::report::Window;
use orders_core::{
    Currency, CustomerId, FailureReason, Money, Order, OrderId, OrderStatus, PlaceOrder, ProductId,
    Quantity, Timestamp,
};
use serde::Serialize;
use std::time::Instant;

/// 2019-01-01T00:00:00Z: in the past, like the windows dashboards ask for (so settled
/// buckets behave as they do live), and before the days the e2e tests write.
const START: i64 = 1_546_300_800;
const DAY: i64 = 86_400;
const PRODUCTS: usize = 500;
const CUSTOMERS: usize = 20_000;

#[derive(Debug, Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub latency: Summary,
    pub cached_ms: f64,
    /// DynamoDB requests of one computed (uncached) call.
    pub dynamodb_requests: u64,
    /// The same, by operation.
    pub requests: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub orders: usize,
    pub items_loaded: usize,
    pub load_seconds: f64,
    pub routes: Vec<Row>,
}

/// Cumulative weights of a Zipf-like law (exponent `s`) over `n` ranks.
fn zipf(n: usize, s: f64) -> Vec<f64> {
    let mut acc = 0.0;
    (1..=n)
        .map(|k| {
            acc += 1.0 / (k as f64).powf(s);
            acc
        })
        .collect()
}

fn pick(cdf: &[f64], rng: &mut Rng) -> usize {
    let x = (rng.next() as f64 / u64::MAX as f64) * cdf[cdf.len() - 1];
    cdf.partition_point(|c| *c < x).min(cdf.len() - 1)
}

/// The orders, deterministic for a seed (January 2019; also the listings benchmark's backlog).
pub(crate) fn generate(count: usize, seed: u64) -> Vec<Order> {
    let mut rng = Rng(seed);
    let products = zipf(PRODUCTS, 1.1);
    let customers = zipf(CUSTOMERS, 0.8);
    let usd = Currency::parse("USD").expect("a currency");
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        // A daily cycle: quiet at night, busy in the evening (rejection sampling).
        let at = START + rng.below(31 * DAY as u64) as i64;
        let hour = (at % DAY) / 3_600;
        let weight = 0.25
            + 0.75
                * ((hour as f64 - 4.0) / 24.0 * std::f64::consts::PI)
                    .sin()
                    .abs();
        if (rng.below(1_000) as f64) >= weight * 1_000.0 {
            continue;
        }
        let created = Timestamp::from_unix_millis(at * 1_000).expect("a valid time");
        let lines = 1 + rng.below(4) as usize;
        let command = PlaceOrder {
            customer_id: CustomerId::parse(&format!("cust-{}", pick(&customers, &mut rng)))
                .expect("an id"),
            currency: usd.clone(),
            items: (0..lines)
                .map(|_| {
                    let p = pick(&products, &mut rng);
                    NewLineItem {
                        product_id: ProductId::parse(&format!("sku-{p}")).expect("an id"),
                        quantity: Quantity::new(1 + rng.below(3) as u32).expect("a quantity"),
                        unit_price: Money::from_minor(499 + 100 * (p as i64 % 40))
                            .expect("a price"),
                    }
                })
                .collect(),
        };
        let id = OrderId::new(ulid::Ulid::from_parts(
            at as u64 * 1_000,
            u128::from(rng.next()),
        ));
        let placed = Order::place(id, &command, created);
        let later = created.plus_seconds(2);
        let roll = rng.below(100);
        let order = if roll < 6 {
            placed.fail(FailureReason::OutOfStock, later)
        } else {
            let processed = placed
                .transition(OrderStatus::Processed, later)
                .expect("pending orders can be processed");
            Ok(match roll {
                6..=9 => processed.transition(OrderStatus::Cancelled, later),
                10..=39 => processed.transition(OrderStatus::Shipped, later),
                40..=59 => processed
                    .transition(OrderStatus::Shipped, later)
                    .and_then(|o| o.transition(OrderStatus::Delivered, later)),
                _ => Ok(processed),
            }
            .expect("a legal status flow"))
        }
        .expect("a legal status flow");
        out.push(order);
    }
    out
}

pub struct Tables {
    pub orders: String,
    pub products: String,
    pub analytics: String,
}

pub async fn run(
    base_url: &str,
    tables: &Tables,
    orders: usize,
    requests: usize,
    load: bool,
) -> anyhow::Result<Report> {
    let sdk = orders_aws::config::sdk_config_for_api().await;
    let writer = DynamoAnalytics::from_sdk(&sdk, &tables.analytics, "unused", 0);
    let service = query::QueryService::new(
        DynamoOrderStore::from_sdk(&sdk, &tables.orders),
        DynamoCatalog::from_sdk(&sdk, &tables.products),
        DynamoAnalyticsReader::from_sdk(&sdk, &tables.analytics),
    );

    let (mut items_loaded, mut load_seconds) = (0, 0.0);
    if load {
        eprintln!("generating {orders} orders over 31 days from 2019-01-01");
        let mut fold = Fold::default();
        for order in generate(orders, 2019) {
            fold.add_order(&order);
        }
        let views: Vec<_> = fold.views().into_iter().collect();
        let started = Instant::now();
        items_loaded = writer
            .load_buckets(&views)
            .await
            .context("loading the analytics table")?;
        load_seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "loaded {items_loaded} items ({} buckets) in {load_seconds:.1} s",
            views.len()
        );
    }

    let client = crate::http::client(std::time::Duration::from_secs(60))?;
    // Windows ending at 10:31 on the 31st day: their covers have hours and minutes at both
    // edges, as a dashboard's "last 24 h / 30 days" does.
    let end = START + 30 * DAY + 10 * 3_600 + 31 * 60;
    let mut rows = Vec::new();
    for (label, span) in [("24h", DAY), ("30d", 30 * DAY)] {
        for (route, query) in [
            (
                "sales",
                if span == DAY {
                    "granularity=minute"
                } else {
                    "granularity=hour"
                },
            ),
            ("summary", ""),
            ("top-products", "limit=10"),
            ("customers", ""),
        ] {
            let url = |shift: i64| {
                let window = Window {
                    from: end - span - shift * 60,
                    to: end - shift * 60,
                };
                format!(
                    "{base_url}/analytics/{route}?from={}&to={}&{query}",
                    window.from_time(),
                    window.to_time()
                )
            };
            let mut samples = Vec::with_capacity(requests);
            let mut errors = 0;
            for i in 0..requests {
                let t = Instant::now();
                let ok = client
                    .get(url(i as i64))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                samples.push(t.elapsed());
                errors += usize::from(!ok);
            }
            // The last URL again, inside the freshness bound: the in-function cache.
            let t = Instant::now();
            client.get(url(requests as i64 - 1)).send().await?;
            let cached_ms = t.elapsed().as_secs_f64() * 1e3;

            // The same route in-process, through the query function's handler, with the SDK
            // interceptor counting what it sends.
            let (query, path) = url(requests as i64)
                .split_once('?')
                .map(|(p, q)| (q.to_owned(), p.trim_start_matches(base_url).to_owned()))
                .expect("a query string");
            take_request_counts();
            let request = lambda_http::request::from_str(&api_event(&path, &query).to_string())
                .context("building an API Gateway event")?;
            let response = query::handle(&service, request).await;
            anyhow::ensure!(
                response.status() == 200,
                "{path}?{query}: {}",
                response.status()
            );
            let counts = take_request_counts();
            rows.push(Row {
                latency: Summary::new(&format!("{route} {label}"), &samples, errors),
                cached_ms,
                dynamodb_requests: counts
                    .iter()
                    .filter(|(k, _)| k.starts_with("DynamoDB."))
                    .map(|(_, v)| v)
                    .sum(),
                requests: orders_aws::metrics::format_counts(&counts),
            });
        }
    }
    print_table(&rows.iter().map(|r| r.latency.clone()).collect::<Vec<_>>());
    println!(
        "\n{:<18} {:>9} {:>9}  by operation",
        "route", "cached ms", "DDB reqs"
    );
    for r in &rows {
        println!(
            "{:<18} {:>9.1} {:>9}  {}",
            r.latency.route, r.cached_ms, r.dynamodb_requests, r.requests
        );
    }
    Ok(Report {
        orders,
        items_loaded,
        load_seconds,
        routes: rows,
    })
}

/// An API Gateway v2 (payload 2.0) event for `GET {path}?{query}`, as the local runner and
/// AWS deliver it.
fn api_event(path: &str, query: &str) -> serde_json::Value {
    let params: serde_json::Map<String, serde_json::Value> = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.to_owned())))
        .collect();
    serde_json::json!({
        "version": "2.0",
        "routeKey": format!("GET {path}"),
        "rawPath": path,
        "rawQueryString": query,
        "queryStringParameters": params,
        "headers": {"host": "localhost"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "localhost",
            "domainPrefix": "localhost", "requestId": "bench", "routeKey": format!("GET {path}"),
            "stage": "$default", "time": "01/Jan/2031:00:00:00 +0000", "timeEpoch": 0,
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "orders-bench"}
        },
        "isBase64Encoded": false
    })
}
