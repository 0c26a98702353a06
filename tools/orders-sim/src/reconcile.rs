//! After a run: wait until every order the sim placed has been processed, then check that
//! the orders are stored as placed and that the analytics routes answer exactly what those
//! orders add up to.
//!
//! **Which window, and whose orders.** The analytics are global, so the check covers the
//! run's own whole minutes (`[first createdAt, last createdAt]`, widened to minutes). The
//! expected figures come from the sim's own knowledge — what it placed and did to each order
//! (told apart by this run's customer-id prefix), never from the server — and each of its
//! orders, read back one by one, must be stored exactly so. When the analytics equal the
//! run's own figures, that is the proof: nothing lost, nothing extra. Only when they differ
//! are other clients' orders of the same minutes (a shared stack, a test suite alongside)
//! listed and folded in as they are, and the comparison repeated; differences are then
//! split into those of figures only the run feeds and those others feed too. The listing is
//! kept off the normal path on purpose: an unfiltered listing fans out over every shard of
//! the "all" index and is the slowest read the API has (on moto, seconds with thousands of
//! orders). A before-and-after snapshot was rejected: it breaks as soon as anyone else
//! writes during the run, and its "before" is itself only as fresh as the pipeline.
//!
//! Analytics trail the tables (pipeline + a short in-function cache), so the comparison is
//! repeated until it matches or the timeout ends; only then are differences reported.
//!
//! A run with storefront sessions is also checked against the activity routes, in the same
//! rounds: see `reconcile/activity.rs`.

mod activity;

use crate::api::{Api, OrderView};
use crate::expect::{Expected, Facts};
use crate::ledger::{Entry, Ledger};
use crate::window::{Window, parse_time};
use futures::stream::{self, StreamExt};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

/// At most this many minute buckets per sales request (the route allows 1,500).
const SALES_CHUNK_MINUTES: i64 = 1_440;
/// Rows asked of top-products (the route's maximum).
const TOP_LIMIT: usize = 100;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    /// No difference at all.
    pub ok: bool,
    pub window: Option<String>,
    pub own_orders: usize,
    /// Orders of other clients created in the window: `0` when the analytics matched the
    /// run's own orders alone, `null` when they did not and the window could not be listed.
    pub foreign_orders: Option<usize>,
    /// From the start of the check until no order of the run was `PENDING`.
    pub settle_seconds: f64,
    /// Until the analytics matched (or the timeout).
    pub match_seconds: f64,
    pub attempts: u32,
    /// The storefront's window (the run's events and orders), when the run had sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity_window: Option<String>,
    /// Storefront events of the run the API acknowledged.
    pub own_events: usize,
    /// Differences in what only this run feeds: its orders, the figures of products no
    /// other client ordered in the window, and activity figures short of the run's events.
    /// Exact whoever else writes.
    pub own_differences: Vec<String>,
    /// Differences in figures other clients' orders feed too (the window's totals, buckets
    /// and customers, shared products). Exact when the run had its minutes to itself; with
    /// other writers about, they can also come from records that are not orders at all (a
    /// test's `OrderPlaced` for an order it never stored is counted, but never listed), and
    /// activity figures above the run's (other clients' events, or copies counted twice).
    pub shared_differences: Vec<String>,
}

/// The orders of the run that another run's limited stock may legitimately fail: some
/// product of theirs was ordered more often than it was stocked.
fn may_sell_out(ledger: &Ledger, stock: u64) -> impl Fn(&Entry) -> bool + use<> {
    let mut ordered: HashMap<String, u64> = HashMap::new();
    for entry in &ledger.orders {
        for line in &entry.lines {
            *ordered.entry(line.product_id.clone()).or_default() += u64::from(line.quantity);
        }
    }
    move |entry: &Entry| {
        entry
            .lines
            .iter()
            .any(|l| ordered.get(&l.product_id).is_some_and(|n| *n > stock))
    }
}

/// Differences between what the sim placed and its orders as the API returns them.
fn own_differences(ledger: &Ledger, listed: &HashMap<&str, &OrderView>) -> Vec<String> {
    let mut diffs = Vec::new();
    for entry in &ledger.orders {
        let Some(order) = listed.get(entry.order_id.as_str()) else {
            diffs.push(format!(
                "order {} (#{}) could not be read back",
                entry.order_id, entry.seq
            ));
            continue;
        };
        let (status, processed) = entry.expected_status();
        if order.status != status {
            diffs.push(format!(
                "order {} (#{}): expected {status}, got {}{}",
                entry.order_id,
                entry.seq,
                order.status,
                order
                    .failure_reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ));
        }
        if order.processed_at.is_some() != processed {
            diffs.push(format!(
                "order {} (#{}): processedAt {:?}, expected it {}",
                entry.order_id,
                entry.seq,
                order.processed_at,
                if processed { "set" } else { "absent" }
            ));
        }
        let items: Vec<(&str, u32, i64)> = order
            .items
            .iter()
            .map(|i| (i.product_id.as_str(), i.quantity, i.unit_price))
            .collect();
        let placed: Vec<(&str, u32, i64)> = entry
            .lines
            .iter()
            .map(|l| (l.product_id.as_str(), l.quantity, l.unit_price))
            .collect();
        if items != placed || order.total != entry.total() || order.customer_id != entry.customer_id
        {
            diffs.push(format!(
                "order {} (#{}) is stored as {order:?}, placed as {entry:?}",
                entry.order_id, entry.seq
            ));
        }
    }
    diffs
}

pub async fn reconcile(api: &Api, ledger: &mut Ledger, timeout: Duration) -> ReconcileReport {
    let start = Instant::now();
    let deadline = start + timeout;
    let times: Vec<_> = ledger
        .orders
        .iter()
        .filter_map(|e| parse_time(&e.created_at).ok())
        .collect();
    let mut report = ReconcileReport {
        ok: false,
        window: None,
        own_orders: ledger.orders.len(),
        foreign_orders: None,
        settle_seconds: 0.0,
        match_seconds: 0.0,
        attempts: 0,
        activity_window: None,
        own_events: ledger.events.len(),
        own_differences: ledger.unexpected.clone(),
        shared_differences: Vec::new(),
    };
    let Some(window) = Window::covering(times.iter().copied()) else {
        report
            .own_differences
            .push("no order was accepted: nothing to reconcile".into());
        return report;
    };
    if times.len() != ledger.orders.len() {
        report
            .own_differences
            .push("some createdAt of the run is not RFC 3339".into());
    }
    report.window = Some(window.to_string());
    let activity_window = activity::window(ledger);
    report.activity_window = activity_window.map(|w| w.to_string());
    let sells_out = may_sell_out(ledger, ledger.stock);
    let names: BTreeMap<String, String> = ledger
        .catalog
        .iter()
        .map(|p| (p.id.clone(), p.name.clone()))
        .collect();

    // 1. Settle: read every order of the run until none is PENDING (point reads: they
    // cost the same however many orders the deployment holds).
    let mut current: HashMap<String, OrderView> = HashMap::new();
    let mut pending: Vec<String> = ledger.orders.iter().map(|e| e.order_id.clone()).collect();
    let mut settled = false;
    loop {
        let reads: Vec<(String, anyhow::Result<OrderView>)> = stream::iter(pending)
            .map(|id| async move {
                let read = api.order(&id).await;
                (id, read)
            })
            .buffer_unordered(16)
            .collect()
            .await;
        pending = Vec::new();
        let mut last_error = None;
        for (id, read) in reads {
            match read {
                Ok(order) => {
                    if order.status == "PENDING" {
                        pending.push(id.clone());
                    }
                    current.insert(id, order);
                }
                Err(err) => {
                    last_error = Some(err);
                    pending.push(id);
                }
            }
        }
        if pending.is_empty() {
            settled = true;
            break;
        }
        if Instant::now() > deadline {
            report.own_differences.push(format!(
                "{} orders of the run still PENDING or unreadable after {timeout:?}{}",
                pending.len(),
                last_error
                    .map(|e| format!(" (last error: {e:#})"))
                    .unwrap_or_default()
            ));
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    report.settle_seconds = start.elapsed().as_secs_f64();
    // Sold out is the server's call when the run's own orders outnumber the stock.
    for entry in ledger.orders.iter_mut() {
        if let Some(order) = current.get(&entry.order_id)
            && !entry.expect_failure
            && order.status == "FAILED"
            && order.failure_reason.as_deref() == Some("out_of_stock")
            && sells_out(entry)
        {
            entry.out_of_stock = true;
        }
    }
    let by_id: HashMap<&str, &OrderView> = current.iter().map(|(k, v)| (k.as_str(), v)).collect();
    report
        .own_differences
        .extend(own_differences(ledger, &by_id));

    // 2. Compare, until equal or out of time.
    let base = report.own_differences.clone();
    loop {
        report.attempts += 1;
        let found = compare(api, ledger, window, &names).await;
        let (activity_own, activity_shared) = match activity_window {
            Some(w) => activity::compare(api, ledger, w).await,
            None => (Vec::new(), Vec::new()),
        };
        report.foreign_orders = found.foreign_orders;
        let done = found.own.is_empty()
            && found.shared.is_empty()
            && activity_own.is_empty()
            && activity_shared.is_empty()
            || Instant::now() > deadline
            || !settled;
        report.own_differences = base
            .iter()
            .cloned()
            .chain(found.own)
            .chain(activity_own)
            .collect();
        report.shared_differences = found.shared.into_iter().chain(activity_shared).collect();
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    report.match_seconds = start.elapsed().as_secs_f64();
    report.ok = report.own_differences.is_empty() && report.shared_differences.is_empty();
    report
}

struct Found {
    own: Vec<String>,
    shared: Vec<String>,
    foreign_orders: Option<usize>,
}

/// Differences between `expected` and the analytics routes over `window`, each with the
/// product it is about (`None`: a figure of the whole window).
async fn analytics_differences(
    api: &Api,
    expected: &Expected,
    window: Window,
    names: &BTreeMap<String, String>,
) -> Vec<(Option<String>, String)> {
    let mut diffs: Vec<String> = Vec::new();
    match api.summary(&window).await {
        Ok(got) => diffs.extend(expected.compare_summary(&got)),
        Err(err) => diffs.push(format!("{err:#}")),
    }
    let mut buckets = Vec::new();
    for chunk in window.chunks(SALES_CHUNK_MINUTES) {
        match api.sales_by_minute(&chunk).await {
            Ok(got) => buckets.extend(got.buckets),
            Err(err) => diffs.push(format!("{err:#}")),
        }
    }
    diffs.extend(expected.compare_sales(&buckets));
    match api.customers(&window).await {
        Ok(got) => diffs.extend(expected.compare_customers(&got)),
        Err(err) => diffs.push(format!("{err:#}")),
    }
    let mut tagged: Vec<(Option<String>, String)> = diffs.into_iter().map(|d| (None, d)).collect();
    for by in ["revenue", "units"] {
        match api.top_products(&window, by, TOP_LIMIT).await {
            Ok(got) => tagged.extend(expected.compare_top(&got, TOP_LIMIT, names)),
            Err(err) => tagged.push((None, format!("{err:#}"))),
        }
    }
    tagged
}

/// Compares the analytics with the run's own orders; only when they differ are other
/// clients' orders in the window looked up (the listing), folded in, and compared again.
async fn compare(
    api: &Api,
    ledger: &Ledger,
    window: Window,
    names: &BTreeMap<String, String>,
) -> Found {
    let mut found = Found {
        own: Vec::new(),
        shared: Vec::new(),
        foreign_orders: None,
    };
    let mut facts: Vec<Facts> = Vec::with_capacity(ledger.orders.len());
    for entry in &ledger.orders {
        match entry.facts() {
            Ok(f) => facts.push(f),
            Err(err) => found.own.push(format!("order {}: {err:#}", entry.order_id)),
        }
    }
    let own_only = analytics_differences(api, &Expected::of(window, &facts), window, names).await;
    if own_only.is_empty() {
        // The figures are exactly the run's: no one else's order is in them.
        found.foreign_orders = Some(0);
        return found;
    }
    let listed = match api.orders_since(window.from()).await {
        Ok(listed) => listed,
        Err(err) => {
            found.shared.push(format!(
                "listing the window's orders to account for other clients failed: {err:#}"
            ));
            found.shared.extend(own_only.into_iter().map(|(_, d)| d));
            return found;
        }
    };
    let ours: HashSet<&str> = ledger.orders.iter().map(|e| e.order_id.as_str()).collect();
    let mut foreign_products: HashSet<&str> = HashSet::new();
    let mut foreign = 0;
    for order in &listed {
        if ours.contains(order.order_id.as_str())
            || !parse_time(&order.created_at).is_ok_and(|t| window.contains(t))
        {
            continue;
        }
        if order.customer_id.starts_with(&ledger.customer_prefix) {
            found.own.push(format!(
                "order {} of this run's customer {} was never acknowledged to the sim: {order:?}",
                order.order_id, order.customer_id
            ));
        }
        foreign += 1;
        foreign_products.extend(order.items.iter().map(|i| i.product_id.as_str()));
        match Facts::from_view(order) {
            Ok(f) => facts.push(f),
            Err(err) => found
                .shared
                .push(format!("order {}: {err:#}", order.order_id)),
        }
    }
    found.foreign_orders = Some(foreign);
    let diffs = if foreign == 0 {
        own_only
    } else {
        analytics_differences(api, &Expected::of(window, &facts), window, names).await
    };
    for (product, diff) in diffs {
        match product {
            Some(p) if !foreign_products.contains(p.as_str()) => found.own.push(diff),
            _ => found.shared.push(diff),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ItemView;
    use crate::traffic::{FollowUp, Line};

    fn entry(seq: u64, follow_up: FollowUp) -> Entry {
        Entry {
            seq,
            order_id: format!("o{seq}"),
            customer_id: "run-c00001".into(),
            created_at: "2026-11-22T10:00:30.000Z".into(),
            lines: vec![Line {
                product_id: "p".into(),
                quantity: 2,
                unit_price: 100,
            }],
            expect_failure: false,
            follow_up,
            follow_up_done: true,
            out_of_stock: false,
        }
    }

    fn view(e: &Entry, status: &str, processed: bool) -> OrderView {
        OrderView {
            order_id: e.order_id.clone(),
            customer_id: e.customer_id.clone(),
            status: status.into(),
            items: vec![ItemView {
                product_id: "p".into(),
                quantity: 2,
                unit_price: 100,
                line_total: 200,
            }],
            total: 200,
            version: 2,
            created_at: e.created_at.clone(),
            processed_at: processed.then(|| "2026-11-22T10:00:31.000Z".into()),
            failure_reason: None,
        }
    }

    fn ledger(orders: Vec<Entry>) -> Ledger {
        Ledger {
            run_id: "run".into(),
            base_url: String::new(),
            seed: 1,
            customer_prefix: "run-c".into(),
            catalog: Vec::new(),
            stock: 1_000,
            orders,
            events: Vec::new(),
            unexpected: Vec::new(),
        }
    }

    #[test]
    fn own_orders_must_be_listed_as_placed() {
        let l = ledger(vec![
            entry(1, FollowUp::Cancel),
            entry(2, FollowUp::None),
            entry(3, FollowUp::None),
        ]);
        let a = view(&l.orders[0], "CANCELLED", true);
        let mut b = view(&l.orders[1], "PROCESSED", true);
        let listed: HashMap<&str, &OrderView> = [("o1", &a), ("o2", &b)].into();
        let diffs = own_differences(&l, &listed);
        assert_eq!(
            diffs,
            vec!["order o3 (#3) could not be read back".to_string()]
        );

        b.total = 201;
        b.status = "FAILED".into();
        let listed: HashMap<&str, &OrderView> = [("o1", &a), ("o2", &b)].into();
        let diffs = own_differences(&ledger(vec![l.orders[1].clone()]), &listed);
        assert_eq!(diffs.len(), 2, "{diffs:#?}");
    }

    #[test]
    fn only_oversubscribed_products_may_sell_out() {
        let mut l = ledger(vec![entry(1, FollowUp::None), entry(2, FollowUp::None)]);
        l.orders[1].lines[0].product_id = "q".into();
        let sells_out = may_sell_out(&l, 1);
        assert!(sells_out(&l.orders[0]), "2 units of p ordered, 1 in stock");
        let plenty = may_sell_out(&l, 100);
        assert!(!plenty(&l.orders[0]));
    }
}
