//! `orders-sim`: see the crate docs (`src/lib.rs`) and `orders-sim --help`.

use anyhow::{Context as _, bail};
use clap::Parser;
use orders_sim::api::Api;
use orders_sim::ledger::Ledger;
use orders_sim::reconcile::{ReconcileReport, reconcile};
use orders_sim::run::{RunPlan, RunReport, run};
use orders_sim::stats::write_table;
use orders_sim::traffic::Settings;
use orders_sim::traffic::sessions::SessionSettings;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Places realistic orders against the orders API and, with --reconcile, checks that the
/// analytics equal what was placed.
///
/// Traffic is bounded by --orders and/or --duration (100 requests when neither is given).
/// After it, --sessions storefront sessions (20 by default; 0: none) send their events to
/// POST /events in batches (--event-batch, some delivered again with --redeliver-ratio), and
/// the carts of some checkouts are ordered; --reconcile then also checks /analytics/activity
/// and /analytics/funnel against the events sent.
/// Exit status: 0 when all went as planned, 1 when the reconcile found differences.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// The API: the local stack or a deployed API Gateway endpoint.
    #[arg(long, env = "ORDERS_API_URL", default_value = "http://127.0.0.1:3000")]
    base_url: String,
    /// A staff bearer token (it places orders for the simulated customers, runs the catalog
    /// and ships): `orders-admin token --staff` for the local stack.
    #[arg(long, env = "ORDERS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Seed of the traffic: the same seed sends the same requests in the same order.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Requests to send (valid orders, plus invalid ones with --invalid-ratio).
    #[arg(long)]
    orders: Option<u64>,
    /// Stop sending after this long: `90s`, `10m`, `1h` or plain seconds.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Requests per second. Without it: as fast as --concurrency allows.
    #[arg(long)]
    rate: Option<f64>,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// Products in the catalog, loaded with PUT /products/{id} before the traffic.
    #[arg(long, default_value_t = 200)]
    products: usize,
    /// Customers the orders come from.
    #[arg(long, default_value_t = 1000)]
    customers: usize,
    /// Stock of each product. Lower it to see out-of-stock failures.
    #[arg(long, default_value_t = 1_000_000)]
    stock: u64,
    /// Zipf exponent of product popularity (0 = uniform).
    #[arg(long, default_value_t = 1.0)]
    zipf: f64,
    /// Probability that an order comes from a customer who already ordered in this run.
    #[arg(long, default_value_t = 0.7)]
    repeat_ratio: f64,
    /// Fraction of requests that break an API rule (must be answered 4xx).
    #[arg(long, default_value_t = 0.0)]
    invalid_ratio: f64,
    /// Fraction of orders naming a product missing from the catalog (processed to FAILED).
    #[arg(long, default_value_t = 0.0)]
    unknown_product_ratio: f64,
    /// Fraction of processed orders then cancelled (DELETE with If-Match).
    #[arg(long, default_value_t = 0.0)]
    cancel_ratio: f64,
    /// Fraction of processed orders then shipped, half of them delivered too (PATCH with If-Match).
    #[arg(long, default_value_t = 0.0)]
    ship_ratio: f64,
    /// Storefront sessions, sent after the orders as fast as --concurrency allows: shoppers
    /// view products (as popular as the orders'), add to and remove from a cart, some start
    /// a checkout and some order the cart. Their events go to POST /events in batches. 0: none.
    #[arg(long, default_value_t = 20)]
    sessions: usize,
    /// Fraction of sessions signed in: their events carry one of the run's customers.
    #[arg(long, default_value_t = 0.4)]
    signed_in_ratio: f64,
    /// Fraction of sessions ending with a non-empty cart that start a checkout.
    #[arg(long, default_value_t = 0.5)]
    checkout_ratio: f64,
    /// Fraction of checkouts whose cart is then ordered (POST /orders, with follow-ups as
    /// drawn by --cancel-ratio and --ship-ratio).
    #[arg(long, default_value_t = 0.6)]
    session_order_ratio: f64,
    /// Events per POST /events at most (batch sizes vary from 1 to this).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=500))]
    event_batch: u16,
    /// Fraction of event batches delivered again later, half unchanged and half regrouped
    /// (the same events split differently): the server must count each event once.
    #[arg(long, default_value_t = 0.0)]
    redeliver_ratio: f64,
    /// Product ids are `<prefix>-p00000`…: one catalog shared by runs with the same prefix.
    #[arg(long, default_value = "sim")]
    catalog_prefix: String,
    /// Prefix of customer ids and idempotency keys; default `sim-<seed>-<time>`, unique per run.
    #[arg(long)]
    run_id: Option<String>,
    /// Don't load the catalog (already loaded by an earlier run).
    #[arg(long)]
    no_catalog: bool,
    /// After the run: wait until every order is processed, then compare the analytics with
    /// what was placed; exit 1 on any difference.
    #[arg(long)]
    reconcile: bool,
    /// Reconcile a run saved with --ledger instead of sending traffic.
    #[arg(long, conflicts_with_all = ["orders", "duration", "rate", "reconcile", "sessions"])]
    reconcile_ledger: Option<PathBuf>,
    /// How long the reconcile may wait for processing and for the analytics to catch up.
    #[arg(long, default_value = "180s", value_parser = parse_duration)]
    reconcile_timeout: Duration,
    /// Save what was placed (for a later --reconcile-ledger).
    #[arg(long)]
    ledger: Option<PathBuf>,
    /// Print the report as JSON on stdout (for scripts and the bench suite).
    #[arg(long)]
    json: bool,
    /// Per-request timeout.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,
    /// How long a follow-up (cancel, ship) waits for its order to be processed.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    follow_up_timeout: Duration,
    /// No progress bar (it is hidden anyway when stderr is not a terminal).
    #[arg(long)]
    quiet: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, "s"), |i| text.split_at(i));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 90s, 10m or 1h"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("`{text}`: unit must be ms, s, m or h")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
}

#[derive(Serialize)]
struct Output<'a> {
    run: Option<&'a RunReport>,
    reconcile: Option<&'a ReconcileReport>,
}

#[tokio::main]
async fn main() -> ExitCode {
    match main_inner().await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("orders-sim: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

async fn main_inner() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let api = Api::new(&cli.base_url, cli.timeout, cli.token.as_deref())?;

    let (report, mut ledger) = if let Some(path) = &cli.reconcile_ledger {
        (None, Ledger::load(path)?)
    } else {
        let run_id = match &cli.run_id {
            Some(id) => id.clone(),
            None => format!(
                "sim-{}-{}",
                cli.seed,
                SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis()
            ),
        };
        let settings = Settings {
            seed: cli.seed,
            run_id,
            catalog_prefix: cli.catalog_prefix.clone(),
            products: cli.products,
            customers: cli.customers,
            stock: cli.stock,
            zipf_exponent: cli.zipf,
            repeat_ratio: cli.repeat_ratio,
            invalid_ratio: cli.invalid_ratio,
            unknown_product_ratio: cli.unknown_product_ratio,
            cancel_ratio: cli.cancel_ratio,
            ship_ratio: cli.ship_ratio,
            sessions: SessionSettings {
                sessions: cli.sessions,
                signed_in_ratio: cli.signed_in_ratio,
                checkout_ratio: cli.checkout_ratio,
                order_ratio: cli.session_order_ratio,
                batch_events: usize::from(cli.event_batch),
                redeliver_ratio: cli.redeliver_ratio,
            },
        };
        if let Err(why) = settings.check() {
            bail!(why);
        }
        if cli.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            bail!("--rate must be a positive number of requests per second");
        }
        let plan = RunPlan {
            settings,
            requests: match (cli.orders, cli.duration) {
                (None, None) => Some(100),
                (orders, _) => orders,
            },
            duration: cli.duration,
            rate: cli.rate,
            concurrency: usize::from(cli.concurrency),
            load_catalog: !cli.no_catalog,
            progress: !cli.quiet,
            follow_up_timeout: cli.follow_up_timeout,
        };
        let (report, ledger) = run(&api, &plan).await?;
        if !cli.json {
            print_run(&report)?;
        }
        (Some(report), ledger)
    };
    if let Some(path) = &cli.ledger {
        ledger.save(path)?;
        eprintln!(
            "ledger: {} orders, {} events -> {}",
            ledger.orders.len(),
            ledger.events.len(),
            path.display()
        );
    }

    let reconciled = if cli.reconcile || cli.reconcile_ledger.is_some() {
        if !cli.json {
            eprintln!(
                "reconciling {} orders and {} storefront events (up to {:?})…",
                ledger.orders.len(),
                ledger.events.len(),
                cli.reconcile_timeout
            );
        }
        let r = reconcile(&api, &mut ledger, cli.reconcile_timeout).await;
        if !cli.json {
            print_reconcile(&r);
        }
        Some(r)
    } else {
        None
    };

    if cli.json {
        let output = Output {
            run: report.as_ref(),
            reconcile: reconciled.as_ref(),
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&output).context("report")?
        );
    }
    Ok(match reconciled {
        Some(r) if !r.ok => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    })
}

fn print_run(r: &RunReport) -> anyhow::Result<()> {
    println!(
        "run {} against {} (seed {}): {} requests in {:.1} s",
        r.run_id, r.base_url, r.seed, r.sent, r.elapsed_seconds
    );
    println!(
        "  accepted {}, answers by status {{{}}}, retries {}",
        r.accepted,
        by_status(&r.by_status),
        r.retries
    );
    println!(
        "  invalid requests: {} sent, {} refused with 4xx",
        r.invalid.sent, r.invalid.refused
    );
    let target = r.target_rate.map_or("as fast as possible".to_owned(), |t| {
        format!("target {t}/s")
    });
    println!(
        "  rate: {:.1} orders/s accepted, {:.1} requests/s sent ({target}, concurrency {})",
        r.achieved_rate, r.sent_rate, r.concurrency
    );
    let f = &r.follow_ups;
    println!(
        "  follow-ups: {} cancelled, {} shipped, {} delivered, {} out of stock, {} errors",
        f.cancelled, f.shipped, f.delivered, f.out_of_stock, f.errors
    );
    let mut latencies = vec![r.latency.clone()];
    if let Some(s) = &r.sessions {
        println!(
            "  sessions: {} ({} signed in, {} checkouts), {} events, {} acknowledged",
            s.sessions, s.signed_in, s.checkouts, s.events, s.events_acknowledged
        );
        println!(
            "  event batches: {} ({} resent, {} regrouped), answers by status {{{}}}, retries {}; \
             session orders by status {{{}}}",
            s.batches,
            s.resent,
            s.regrouped,
            by_status(&s.by_status),
            s.retries,
            by_status(&s.orders_by_status)
        );
        latencies.push(s.latency.clone());
    }
    write_table(&mut std::io::stdout().lock(), &latencies)?;
    for u in r.unexpected.iter().take(20) {
        println!("  unexpected: {u}");
    }
    if r.unexpected.len() > 20 {
        println!(
            "  … and {} more unexpected outcomes",
            r.unexpected.len() - 20
        );
    }
    Ok(())
}

fn by_status(counts: &std::collections::BTreeMap<String, u64>) -> String {
    let statuses: Vec<String> = counts.iter().map(|(s, n)| format!("{s}: {n}")).collect();
    statuses.join(", ")
}

fn print_reconcile(r: &ReconcileReport) {
    println!(
        "reconcile {}: window {}, {} orders of this run, {} of other clients; settled in {:.1} s, compared {} times in {:.1} s",
        if r.ok { "OK" } else { "FAILED" },
        r.window.as_deref().unwrap_or("-"),
        r.own_orders,
        r.foreign_orders
            .map_or("an unknown number".to_owned(), |n| n.to_string()),
        r.settle_seconds,
        r.attempts,
        r.match_seconds
    );
    if let Some(window) = &r.activity_window {
        println!(
            "  storefront: window {window}, {} events of this run",
            r.own_events
        );
    }
    for d in &r.own_differences {
        println!("  difference: {d}");
    }
    for d in &r.shared_differences {
        println!("  difference (in figures other clients also feed): {d}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_common_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn the_cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
