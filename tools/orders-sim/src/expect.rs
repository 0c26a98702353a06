//! What the analytics routes must answer for a set of orders, computed from the orders alone
//! with the contract's rules, and the differences from what they did answer.
//!
//! Rules (docs: the analytics API contract): an order counts in the minute of its
//! `createdAt`; `processed` / `failed` / `cancelled` count orders that reached that status;
//! `revenue`, `units` and the per-product figures are those of processed orders not later
//! cancelled; `byStatus` is the current status; `activeCustomers` counts distinct customers.
//!
//! Storefront activity (`/analytics/activity`, `/analytics/funnel`): [`activity`].

pub mod activity;

use crate::api::{CustomersView, OrderView, SalesBucketView, SummaryView, TopProductsView};
use crate::window::{Window, format, minute_of, minute_start, parse_time};
use std::collections::{BTreeMap, BTreeSet};

/// One order as the analytics see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub order_id: String,
    pub customer_id: String,
    pub minute: i64,
    pub status: String,
    /// Reached `PROCESSED` at some point (a cancelled order may have).
    pub processed: bool,
    /// (product, units, revenue) per line.
    pub lines: Vec<(String, i64, i64)>,
}

impl Facts {
    /// The facts of an order read from the API: `processedAt` tells whether it was processed.
    pub fn from_view(order: &OrderView) -> anyhow::Result<Self> {
        Ok(Self {
            order_id: order.order_id.clone(),
            customer_id: order.customer_id.clone(),
            minute: minute_of(parse_time(&order.created_at)?),
            status: order.status.clone(),
            processed: order.processed_at.is_some(),
            lines: order
                .items
                .iter()
                .map(|i| (i.product_id.clone(), i64::from(i.quantity), i.line_total))
                .collect(),
        })
    }

    fn counted(&self) -> bool {
        self.processed && self.status != "CANCELLED"
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub orders: i64,
    pub processed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub revenue: i64,
    pub units: i64,
    pub by_status: BTreeMap<String, i64>,
}

impl Totals {
    fn add(&mut self, f: &Facts) {
        self.orders += 1;
        self.processed += i64::from(f.processed);
        self.failed += i64::from(f.status == "FAILED");
        self.cancelled += i64::from(f.status == "CANCELLED");
        *self.by_status.entry(f.status.clone()).or_default() += 1;
        if f.counted() {
            for (_, units, revenue) in &f.lines {
                self.units += units;
                self.revenue += revenue;
            }
        }
    }

    /// Orders holding revenue: processed, not cancelled.
    fn holding_revenue(&self) -> i64 {
        ["PROCESSED", "SHIPPED", "DELIVERED"]
            .iter()
            .map(|s| self.by_status.get(*s).copied().unwrap_or(0))
            .sum()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProductTotals {
    pub units: i64,
    pub revenue: i64,
    pub orders: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub window: Window,
    pub totals: Totals,
    pub minutes: BTreeMap<i64, Totals>,
    pub products: BTreeMap<String, ProductTotals>,
    pub customers: BTreeSet<String>,
}

impl Expected {
    /// The figures of `window` from the orders in `facts` (orders outside it are ignored).
    pub fn of<'a>(window: Window, facts: impl IntoIterator<Item = &'a Facts>) -> Self {
        let mut e = Self {
            window,
            totals: Totals::default(),
            minutes: BTreeMap::new(),
            products: BTreeMap::new(),
            customers: BTreeSet::new(),
        };
        for f in facts {
            if !(window.from_minute..window.to_minute).contains(&f.minute) {
                continue;
            }
            e.totals.add(f);
            e.minutes.entry(f.minute).or_default().add(f);
            e.customers.insert(f.customer_id.clone());
            if f.counted() {
                for (product, units, revenue) in &f.lines {
                    let p = e.products.entry(product.clone()).or_default();
                    p.units += units;
                    p.revenue += revenue;
                    p.orders += 1;
                }
            }
        }
        e
    }

    pub fn compare_summary(&self, got: &SummaryView) -> Vec<String> {
        let t = &self.totals;
        let mut diffs = Vec::new();
        let mut field = |name: &str, want: i64, got: i64| {
            if want != got {
                diffs.push(format!("summary.{name}: expected {want}, got {got}"));
            }
        };
        field("orders", t.orders, got.orders);
        field("processed", t.processed, got.processed);
        field("failed", t.failed, got.failed);
        field("cancelled", t.cancelled, got.cancelled);
        field("revenue", t.revenue, got.revenue);
        field("units", t.units, got.units);
        for status in [
            "PENDING",
            "PROCESSED",
            "FAILED",
            "SHIPPED",
            "DELIVERED",
            "CANCELLED",
        ] {
            field(
                &format!("byStatus.{status}"),
                t.by_status.get(status).copied().unwrap_or(0),
                got.by_status.get(status).copied().unwrap_or(0),
            );
        }
        // The contract says "integer minor units" without naming the rounding: floor and
        // half-up are both accepted.
        let holding = t.holding_revenue();
        let (floor, half_up) = if holding == 0 {
            (0, 0)
        } else {
            (
                t.revenue / holding,
                (2 * t.revenue + holding) / (2 * holding),
            )
        };
        if got.average_order_value != floor && got.average_order_value != half_up {
            diffs.push(format!(
                "summary.averageOrderValue: expected {floor} (= {} / {holding}), got {}",
                t.revenue, got.average_order_value
            ));
        }
        let settled = t.processed + t.failed;
        let rate = if settled == 0 {
            0.0
        } else {
            t.failed as f64 / settled as f64
        };
        // Shown with four decimals in the contract's example.
        if (rate - got.failure_rate).abs() > 0.000_051 {
            diffs.push(format!(
                "summary.failureRate: expected {rate:.4} (= {} / {settled}), got {}",
                t.failed, got.failure_rate
            ));
        }
        diffs
    }

    /// `buckets`: the minute buckets of the whole window (several responses concatenated).
    pub fn compare_sales(&self, buckets: &[SalesBucketView]) -> Vec<String> {
        let mut diffs = Vec::new();
        let mut got: BTreeMap<i64, &SalesBucketView> = BTreeMap::new();
        for b in buckets {
            match parse_time(&b.start) {
                Ok(t) => {
                    got.insert(minute_of(t), b);
                }
                Err(err) => diffs.push(format!("sales: {err:#}")),
            }
        }
        let empty = Totals::default();
        for minute in self.window.from_minute..self.window.to_minute {
            let want = self.minutes.get(&minute).unwrap_or(&empty);
            let at = format(minute_start(minute));
            let Some(b) = got.remove(&minute) else {
                diffs.push(format!("sales[{at}]: bucket missing"));
                continue;
            };
            for (name, w, g) in [
                ("orders", want.orders, b.orders),
                ("processed", want.processed, b.processed),
                ("failed", want.failed, b.failed),
                ("cancelled", want.cancelled, b.cancelled),
                ("revenue", want.revenue, b.revenue),
                ("units", want.units, b.units),
            ] {
                if w != g {
                    diffs.push(format!("sales[{at}].{name}: expected {w}, got {g}"));
                }
            }
        }
        for minute in got.keys() {
            diffs.push(format!(
                "sales: unexpected bucket {}",
                format(minute_start(*minute))
            ));
        }
        diffs
    }

    /// Top products by `by` (`revenue` or `units`) with `limit`: every product shown must
    /// have exactly its expected figures (and, when `names` knows it, its name); the list
    /// must be as long as it can be, sorted, and hold every product that beats its last row.
    /// Each difference names the product it is about, if one.
    pub fn compare_top(
        &self,
        got: &TopProductsView,
        limit: usize,
        names: &BTreeMap<String, String>,
    ) -> Vec<(Option<String>, String)> {
        let by = got.by.as_str();
        let key = |p: &ProductTotals| if by == "units" { p.units } else { p.revenue };
        let mut diffs = Vec::new();
        let want_len = self.products.len().min(limit);
        if got.products.len() != want_len {
            diffs.push((
                None,
                format!(
                    "top-products(by={by}): expected {want_len} rows, got {}",
                    got.products.len()
                ),
            ));
        }
        let mut previous = i64::MAX;
        for row in &got.products {
            let about = Some(row.product_id.clone());
            let shown = ProductTotals {
                units: row.units,
                revenue: row.revenue,
                orders: row.orders,
            };
            if key(&shown) > previous {
                diffs.push((
                    about.clone(),
                    format!("top-products(by={by}): {} is out of order", row.product_id),
                ));
            }
            previous = key(&shown);
            match self.products.get(&row.product_id) {
                None => diffs.push((
                    about.clone(),
                    format!(
                        "top-products(by={by}): unexpected product {} {shown:?}",
                        row.product_id
                    ),
                )),
                Some(want) if *want != shown => diffs.push((
                    about.clone(),
                    format!(
                        "top-products(by={by}).{}: expected {want:?}, got {shown:?}",
                        row.product_id
                    ),
                )),
                Some(_) => {}
            }
            if let Some(name) = names.get(&row.product_id)
                && row.name.as_deref() != Some(name.as_str())
            {
                diffs.push((
                    about,
                    format!(
                        "top-products(by={by}).{}.name: expected {name:?}, got {:?}",
                        row.product_id, row.name
                    ),
                ));
            }
        }
        let shown: BTreeSet<&str> = got.products.iter().map(|r| r.product_id.as_str()).collect();
        let cut = got.products.len() == limit;
        for (product, totals) in &self.products {
            // A list cut at its limit may leave out products that tie with its last row.
            if !shown.contains(product.as_str()) && (!cut || key(totals) > previous) {
                diffs.push((
                    Some(product.clone()),
                    format!("top-products(by={by}): {product} ({totals:?}) is missing"),
                ));
            }
        }
        diffs
    }

    pub fn compare_customers(&self, got: &CustomersView) -> Vec<String> {
        let want = self.customers.len() as i64;
        // An approximate count (a sketch) may be off by a few percent.
        let tolerance = if got.approximate { want / 50 + 1 } else { 0 };
        if (want - got.active_customers).abs() > tolerance {
            vec![format!(
                "customers.activeCustomers: expected {want}, got {}{}",
                got.active_customers,
                if got.approximate {
                    " (approximate)"
                } else {
                    ""
                }
            )]
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::TopProductView;

    fn facts(id: &str, customer: &str, minute: i64, status: &str, processed: bool) -> Facts {
        Facts {
            order_id: id.into(),
            customer_id: customer.into(),
            minute,
            status: status.into(),
            processed,
            lines: vec![("p1".into(), 2, 200), ("p2".into(), 1, 50)],
        }
    }

    fn sample() -> Expected {
        let window = Window {
            from_minute: 100,
            to_minute: 103,
        };
        let orders = [
            facts("a", "c1", 100, "PROCESSED", true),
            facts("b", "c1", 100, "FAILED", false),
            facts("c", "c2", 102, "CANCELLED", true), // processed, then cancelled
            facts("d", "c3", 102, "CANCELLED", false), // cancelled while pending
            facts("e", "c2", 102, "DELIVERED", true),
            facts("f", "c4", 102, "PENDING", false),
            facts("g", "c9", 103, "PROCESSED", true), // outside the window
        ];
        Expected::of(window, &orders)
    }

    fn summary(e: &Expected) -> SummaryView {
        let t = &e.totals;
        SummaryView {
            from: String::new(),
            to: String::new(),
            orders: t.orders,
            processed: t.processed,
            failed: t.failed,
            cancelled: t.cancelled,
            revenue: t.revenue,
            units: t.units,
            average_order_value: 250,
            failure_rate: 0.25,
            by_status: t.by_status.clone(),
        }
    }

    #[test]
    fn totals_follow_the_contract() {
        let e = sample();
        let t = &e.totals;
        assert_eq!((t.orders, t.processed, t.failed, t.cancelled), (6, 3, 1, 2));
        // a and e hold revenue; c was cancelled after processing and does not.
        assert_eq!((t.revenue, t.units), (500, 6));
        assert_eq!(t.by_status["CANCELLED"], 2);
        assert_eq!(e.minutes[&100].orders, 2);
        assert!(!e.minutes.contains_key(&101));
        assert_eq!(e.minutes[&102].revenue, 250);
        assert_eq!(
            e.products["p1"],
            ProductTotals {
                units: 4,
                revenue: 400,
                orders: 2
            }
        );
        assert_eq!(e.customers.len(), 4);
        assert!(e.compare_summary(&summary(&e)).is_empty());
    }

    #[test]
    fn every_summary_difference_is_named() {
        let e = sample();
        let mut got = summary(&e);
        got.revenue += 1;
        got.by_status.insert("PENDING".into(), 0);
        got.failure_rate = 0.3;
        got.average_order_value = 249; // floor of 501/2 would be 250: still wrong
        let diffs = e.compare_summary(&got);
        assert_eq!(diffs.len(), 4, "{diffs:#?}");
        assert!(diffs.iter().any(|d| d.starts_with("summary.revenue")));
        assert!(
            diffs
                .iter()
                .any(|d| d.starts_with("summary.byStatus.PENDING"))
        );
    }

    fn bucket(minute: i64, t: &Totals) -> SalesBucketView {
        SalesBucketView {
            start: format(minute_start(minute)),
            orders: t.orders,
            processed: t.processed,
            failed: t.failed,
            cancelled: t.cancelled,
            revenue: t.revenue,
            units: t.units,
        }
    }

    #[test]
    fn sales_must_be_zero_filled_and_exact() {
        let e = sample();
        let empty = Totals::default();
        let mut buckets: Vec<SalesBucketView> = (100..103)
            .map(|m| bucket(m, e.minutes.get(&m).unwrap_or(&empty)))
            .collect();
        assert!(e.compare_sales(&buckets).is_empty());
        buckets[2].units -= 1;
        buckets.remove(1);
        let diffs = e.compare_sales(&buckets);
        assert_eq!(diffs.len(), 2, "{diffs:#?}");
    }

    fn row(id: &str, p: ProductTotals) -> TopProductView {
        TopProductView {
            product_id: id.into(),
            name: Some(format!("name {id}")),
            units: p.units,
            revenue: p.revenue,
            orders: p.orders,
        }
    }

    #[test]
    fn top_products_are_exact_sorted_and_complete() {
        let e = sample();
        let names: BTreeMap<String, String> = [("p1".to_string(), "name p1".to_string())].into();
        let full = TopProductsView {
            from: String::new(),
            to: String::new(),
            by: "revenue".into(),
            products: vec![row("p1", e.products["p1"]), row("p2", e.products["p2"])],
        };
        assert!(e.compare_top(&full, 10, &names).is_empty());
        let text = |diffs: Vec<(Option<String>, String)>| -> Vec<String> {
            diffs.into_iter().map(|(_, d)| d).collect()
        };
        // Cut at the limit: fine when the cut rows are not above the last one shown.
        let mut cut = full.clone();
        cut.products.truncate(1);
        assert!(e.compare_top(&cut, 1, &names).is_empty());
        // Wrong order, wrong figures, wrong name, missing rows: each is named.
        let mut bad = full.clone();
        bad.products.reverse();
        bad.products[0].orders += 1;
        bad.products[1].name = Some("Mug".into());
        let diffs = e.compare_top(&bad, 10, &names);
        assert_eq!(diffs.len(), 3, "{diffs:#?}");
        assert!(diffs.iter().all(|(about, _)| about.is_some()));
        let diffs = text(e.compare_top(&cut, 10, &names));
        assert!(diffs.iter().any(|d| d.contains("p2 (")), "{diffs:#?}");
        assert!(
            diffs.iter().any(|d| d.contains("expected 2 rows")),
            "{diffs:#?}"
        );
    }

    #[test]
    fn customers_are_exact_unless_approximate() {
        let e = sample();
        let view = |n, approximate| CustomersView {
            from: String::new(),
            to: String::new(),
            active_customers: n,
            approximate,
        };
        assert!(e.compare_customers(&view(4, false)).is_empty());
        assert_eq!(e.compare_customers(&view(5, false)).len(), 1);
        assert!(e.compare_customers(&view(5, true)).is_empty());
    }
}
