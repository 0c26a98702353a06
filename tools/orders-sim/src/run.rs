//! Driving the traffic: load the catalog, send requests at a rate (open loop, at most
//! `concurrency` in flight) or as fast as `concurrency` allows (closed loop), follow up on
//! processed orders (cancel, ship, deliver), and count everything. Storefront sessions are
//! sent after the order traffic: see `run/sessions.rs`.

mod sessions;

pub use sessions::SessionReport;

use crate::api::{Api, OrderView, Placed};
use crate::ledger::{Entry, Ledger};
use crate::stats::Summary;
use crate::traffic::sessions::Event;
use crate::traffic::{FollowUp, Generator, OrderPlan, Product, Request, Settings};
use futures::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct RunPlan {
    pub settings: Settings,
    /// Requests to send (valid and invalid); with `duration`, whichever ends first.
    pub requests: Option<u64>,
    pub duration: Option<Duration>,
    /// Requests per second; `None`: as fast as `concurrency` allows.
    pub rate: Option<f64>,
    pub concurrency: usize,
    pub load_catalog: bool,
    pub progress: bool,
    /// How long a follow-up waits for its order to leave `PENDING`.
    pub follow_up_timeout: Duration,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct FollowUpTally {
    pub cancelled: u64,
    pub shipped: u64,
    pub delivered: u64,
    /// Not applied because processing failed the order for lack of stock.
    pub out_of_stock: u64,
    pub errors: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct InvalidTally {
    pub sent: u64,
    /// Answered 4xx, as they must be.
    pub refused: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub run_id: String,
    pub base_url: String,
    pub seed: u64,
    pub target_rate: Option<f64>,
    pub concurrency: usize,
    /// From the first request to the last answer of the sending phase (follow-ups excluded).
    pub elapsed_seconds: f64,
    pub sent: u64,
    /// Orders created (`201`).
    pub accepted: u64,
    /// Final answers by status (`unreachable`: no answer after the retries).
    pub by_status: BTreeMap<String, u64>,
    /// Repeated attempts (same `Idempotency-Key`) after transient failures.
    pub retries: u64,
    pub invalid: InvalidTally,
    /// `POST /orders`, request sent → answer read, retries included.
    pub latency: Summary,
    /// Orders accepted per second of the sending phase.
    pub achieved_rate: f64,
    /// Requests sent per second of the sending phase.
    pub sent_rate: f64,
    pub follow_ups: FollowUpTally,
    /// The storefront sessions, when there were any (not in the figures above).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<SessionReport>,
    /// Outcomes that contradict the plan (see `Ledger::unexpected`).
    pub unexpected: Vec<String>,
}

#[derive(Default)]
struct Tally {
    sent: u64,
    accepted: u64,
    by_status: BTreeMap<String, u64>,
    latencies: Vec<Duration>,
    retries: u64,
    invalid: InvalidTally,
    follow_ups: FollowUpTally,
    orders: BTreeMap<u64, Entry>,
    unexpected: Vec<String>,
    sessions: sessions::SessionTally,
    /// Storefront events acknowledged by the API, in the order they happened.
    events: Vec<Event>,
}

type Shared = Arc<Mutex<Tally>>;
type FollowUps = Mutex<Vec<JoinHandle<()>>>;

/// Which figures an order placement counts in: the traffic's (`sent`, `accepted`, latency)
/// or the sessions'. Its ledger entry and follow-up are the same either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Traffic,
    Session,
}

fn lock(tally: &Shared) -> std::sync::MutexGuard<'_, Tally> {
    tally
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `PUT`s the catalog, `concurrency` at a time.
pub async fn load_catalog(
    api: &Api,
    catalog: &[Product],
    stock: u64,
    concurrency: usize,
) -> anyhow::Result<()> {
    let results: Vec<anyhow::Result<()>> = stream::iter(catalog)
        .map(|p| api.put_product(&p.id, &p.name, p.price, stock))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

fn progress_bar(plan: &RunPlan) -> ProgressBar {
    if !plan.progress || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (len, unit) = match (plan.requests, plan.duration) {
        (Some(n), _) => (n, "requests"),
        (None, Some(d)) => (d.as_secs().max(1), "s"),
        (None, None) => (0, ""),
    };
    let bar = ProgressBar::new(len);
    let template = format!("{{elapsed_precise}} [{{wide_bar}}] {{pos}}/{{len}} {unit} {{msg}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

pub async fn run(api: &Api, plan: &RunPlan) -> anyhow::Result<(RunReport, Ledger)> {
    let mut generator = Generator::new(plan.settings.clone());
    let catalog = generator.catalog().to_vec();
    if plan.load_catalog {
        load_catalog(api, &catalog, plan.settings.stock, plan.concurrency).await?;
    }
    let tally: Shared = Arc::default();
    let permits = Arc::new(Semaphore::new(plan.concurrency.max(1)));
    let follow_ups: Arc<FollowUps> = Arc::default();
    let bar = progress_bar(plan);
    let by_count = plan.requests.is_some();

    let start = Instant::now();
    let started_at = orders_core::Timestamp::now().unix_millis();
    let mut sending = Vec::new();
    let mut n: u64 = 0;
    loop {
        if plan.requests.is_some_and(|max| n >= max)
            || plan.duration.is_some_and(|d| start.elapsed() >= d)
        {
            break;
        }
        if let Some(rate) = plan.rate {
            let due = start + Duration::from_secs_f64(n as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
            if plan.duration.is_some_and(|d| start.elapsed() >= d) {
                break;
            }
        }
        let permit = Arc::clone(&permits).acquire_owned().await?;
        if !by_count {
            bar.set_position(start.elapsed().as_secs());
        }
        let request = generator.next().expect("the generator never ends");
        n += 1;
        let (api, tally, bar, follow_ups) = (
            api.clone(),
            Arc::clone(&tally),
            bar.clone(),
            Arc::clone(&follow_ups),
        );
        let follow_up_timeout = plan.follow_up_timeout;
        sending.push(tokio::spawn(async move {
            send(&api, request, &tally, &follow_ups, follow_up_timeout).await;
            drop(permit);
            if by_count {
                bar.inc(1);
            }
            let t = lock(&tally);
            bar.set_message(format!(
                "{} accepted, {} refused",
                t.accepted,
                t.sent - t.accepted
            ));
        }));
    }
    for task in sending {
        task.await?;
    }
    let elapsed = start.elapsed();
    if plan.settings.sessions.sessions > 0 {
        bar.set_message("storefront sessions");
        sessions::send(api, plan, started_at, &tally, &follow_ups).await;
    }
    bar.set_message("waiting for follow-ups");
    loop {
        let pending: Vec<JoinHandle<()>> = std::mem::take(
            &mut *follow_ups
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        if pending.is_empty() {
            break;
        }
        for task in pending {
            task.await?;
        }
    }
    bar.finish_and_clear();

    let t = std::mem::take(&mut *lock(&tally));
    let seconds = elapsed.as_secs_f64().max(1e-9);
    let failed_posts = (t.sent - t.accepted - t.invalid.refused) as usize;
    let report = RunReport {
        run_id: plan.settings.run_id.clone(),
        base_url: api.base().to_owned(),
        seed: plan.settings.seed,
        target_rate: plan.rate,
        concurrency: plan.concurrency,
        elapsed_seconds: elapsed.as_secs_f64(),
        sent: t.sent,
        accepted: t.accepted,
        by_status: t.by_status,
        retries: t.retries,
        invalid: t.invalid,
        latency: Summary::new("POST /orders", &t.latencies, failed_posts),
        achieved_rate: t.accepted as f64 / seconds,
        sent_rate: t.sent as f64 / seconds,
        follow_ups: t.follow_ups,
        sessions: (plan.settings.sessions.sessions > 0).then(|| t.sessions.report()),
        unexpected: t.unexpected.clone(),
    };
    let ledger = Ledger {
        run_id: plan.settings.run_id.clone(),
        base_url: api.base().to_owned(),
        seed: plan.settings.seed,
        customer_prefix: format!("{}-c", plan.settings.run_id),
        catalog,
        stock: plan.settings.stock,
        orders: t.orders.into_values().collect(),
        events: t.events,
        unexpected: t.unexpected,
    };
    Ok((report, ledger))
}

async fn send(
    api: &Api,
    request: Request,
    tally: &Shared,
    follow_ups: &FollowUps,
    follow_up_timeout: Duration,
) {
    match request {
        Request::Invalid(invalid) => {
            let answer = api.send_invalid(invalid.content_type, invalid.body).await;
            let mut t = lock(tally);
            t.sent += 1;
            t.invalid.sent += 1;
            t.latencies.push(answer.latency);
            let key = answer
                .value
                .map_or("unreachable".to_owned(), |s| s.to_string());
            *t.by_status.entry(key.clone()).or_default() += 1;
            match answer.value {
                Some(400..=499) => t.invalid.refused += 1,
                _ => t.unexpected.push(format!(
                    "request #{} ({:?}) must be refused with a 4xx, got {key}",
                    invalid.seq, invalid.kind
                )),
            }
        }
        Request::Order(order) => {
            place_order(
                api,
                order,
                tally,
                follow_ups,
                follow_up_timeout,
                Source::Traffic,
            )
            .await
        }
    }
}

/// Places `order` (`Idempotency-Key`), enters it in the ledger when created, and starts its
/// follow-up.
async fn place_order(
    api: &Api,
    order: OrderPlan,
    tally: &Shared,
    follow_ups: &FollowUps,
    follow_up_timeout: Duration,
    source: Source,
) {
    let placed = api.place(&order.body(), &order.idempotency_key).await;
    let mut t = lock(tally);
    let status = |t: &mut Tally, key: &str| match source {
        Source::Traffic => *t.by_status.entry(key.to_owned()).or_default() += 1,
        Source::Session => t.sessions.order_answer(key),
    };
    if source == Source::Traffic {
        t.sent += 1;
        t.latencies.push(placed.latency);
        t.retries += u64::from(placed.retries);
    }
    let what = match source {
        Source::Traffic => "valid order",
        Source::Session => "session order",
    };
    match placed.value {
        Placed::Created(view) => {
            status(&mut t, "201");
            if source == Source::Traffic {
                t.accepted += 1;
            }
            if view.total != order.total() || view.customer_id != order.customer_id {
                t.unexpected.push(format!(
                    "order {} (#{}) was stored as {view:?}",
                    view.order_id, order.seq
                ));
            }
            t.orders.insert(
                order.seq,
                Entry {
                    seq: order.seq,
                    order_id: view.order_id.clone(),
                    customer_id: order.customer_id.clone(),
                    created_at: view.created_at.clone(),
                    lines: order.lines.clone(),
                    expect_failure: order.expect_failure,
                    follow_up: order.follow_up,
                    follow_up_done: false,
                    out_of_stock: false,
                },
            );
            drop(t);
            if order.follow_up != FollowUp::None {
                let (api, tally) = (api.clone(), Arc::clone(tally));
                let task = tokio::spawn(async move {
                    let outcome = follow_up(&api, view, order.follow_up, follow_up_timeout).await;
                    record_follow_up(&tally, order.seq, order.follow_up, outcome);
                });
                follow_ups
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push(task);
            }
        }
        Placed::Refused { status: code, body } => {
            status(&mut t, &code.to_string());
            t.unexpected
                .push(format!("{what} #{} refused with {code}: {body}", order.seq));
        }
        Placed::Unreachable(err) => {
            status(&mut t, "unreachable");
            t.unexpected.push(format!(
                "{what} #{} (key {}) got no answer: {err}",
                order.seq, order.idempotency_key
            ));
        }
    }
}

enum FollowUpOutcome {
    Done,
    OutOfStock,
    Failed(String),
}

/// Waits until processing is done with the order, then applies `follow_up` with `If-Match`.
async fn follow_up(
    api: &Api,
    placed: OrderView,
    follow_up: FollowUp,
    timeout: Duration,
) -> FollowUpOutcome {
    let deadline = Instant::now() + timeout;
    let mut order = placed;
    while order.status == "PENDING" {
        if Instant::now() > deadline {
            return FollowUpOutcome::Failed(format!(
                "order {} still PENDING after {timeout:?}",
                order.order_id
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        // A failed read (the emulator paused, say) is retried until the deadline.
        if let Ok(now) = api.order(&order.order_id).await {
            order = now;
        }
    }
    if order.status == "FAILED" && order.failure_reason.as_deref() == Some("out_of_stock") {
        return FollowUpOutcome::OutOfStock;
    }
    if order.status != "PROCESSED" {
        return FollowUpOutcome::Failed(format!(
            "order {} is {} after processing, expected PROCESSED",
            order.order_id, order.status
        ));
    }
    let steps: &[&str] = match follow_up {
        FollowUp::None => &[],
        FollowUp::Cancel => &["CANCELLED"],
        FollowUp::Ship => &["SHIPPED"],
        FollowUp::Deliver => &["SHIPPED", "DELIVERED"],
    };
    for target in steps {
        match api.change_status(&order, target).await.value {
            Ok(next) if next.status == *target => order = next,
            Ok(next) => {
                return FollowUpOutcome::Failed(format!(
                    "order {} is {} after asking for {target}",
                    order.order_id, next.status
                ));
            }
            Err(err) => {
                return FollowUpOutcome::Failed(format!(
                    "order {} to {target}: {err}",
                    order.order_id
                ));
            }
        }
    }
    FollowUpOutcome::Done
}

fn record_follow_up(tally: &Shared, seq: u64, follow_up: FollowUp, outcome: FollowUpOutcome) {
    let mut t = lock(tally);
    match outcome {
        FollowUpOutcome::Done => {
            match follow_up {
                FollowUp::Cancel => t.follow_ups.cancelled += 1,
                FollowUp::Ship => t.follow_ups.shipped += 1,
                FollowUp::Deliver => {
                    t.follow_ups.shipped += 1;
                    t.follow_ups.delivered += 1;
                }
                FollowUp::None => {}
            }
            if let Some(entry) = t.orders.get_mut(&seq) {
                entry.follow_up_done = true;
            }
        }
        FollowUpOutcome::OutOfStock => {
            t.follow_ups.out_of_stock += 1;
            if let Some(entry) = t.orders.get_mut(&seq) {
                entry.out_of_stock = true;
            }
        }
        FollowUpOutcome::Failed(why) => {
            t.follow_ups.errors += 1;
            t.unexpected.push(format!("follow-up of #{seq}: {why}"));
        }
    }
}
