//! `GET /analytics/activity` and `GET /analytics/funnel?productId=` shapes. Windows are the
//! order analytics' ([`Window`]: whole minutes, answered by the coarsest stored buckets
//! that tile them); a window's view is the merge of its cover's bucket views
//! ([`ActivityView::merge`]): counters add up, distinct sets are unioned.

use super::fold::{ActivityView, Counts};
use crate::analytics::{Bucket, Granularity, ProductTotals};
use crate::distinct::Count;
use crate::ids::ProductId;
use crate::report::Window;
use crate::time::Timestamp;
use serde::Serialize;

/// `GET /analytics/activity`: one window (or one bucket of an [`ActivitySeries`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityReport {
    pub from: Timestamp,
    pub to: Timestamp,
    /// Distinct sessions with any event.
    pub active_sessions: u64,
    /// Distinct signed-in customers with any event.
    pub active_customers: u64,
    /// True when any distinct count below is a HyperLogLog estimate (~0.8 % standard
    /// error; a bucket's shard holds more ids than it keeps exactly: `crate::distinct`).
    pub approximate: bool,
    pub views: i64,
    pub cart_adds: i64,
    pub cart_removes: i64,
    pub checkouts: i64,
    /// Distinct sessions that added to cart.
    pub cart_sessions: u64,
    /// Distinct sessions that started a checkout.
    pub checkout_sessions: u64,
    /// Sessions that added to cart in the window and started no checkout in it.
    pub abandoned_sessions: u64,
    /// abandonedSessions / cartSessions, four decimals; 0 when no session added to cart.
    pub abandonment_rate: f64,
}

impl ActivityReport {
    /// The report of `view`, merged over `[from, to)`.
    pub fn new(from: Timestamp, to: Timestamp, view: &ActivityView) -> Self {
        let sessions = view.sessions.count();
        let customers = view.customers.count();
        let carted = view.carted.count();
        let checked_out = view.checked_out.count();
        // |carted \ checkedOut| = |carted ∪ checkedOut| − |checkedOut|: exact when both
        // sets are, an estimate from the sketches' union otherwise.
        let mut either = view.carted.clone();
        either.merge(&view.checked_out);
        let either = either.count();
        let abandoned = either.value.saturating_sub(checked_out.value);
        let approximate = [sessions, customers, carted, checked_out, either]
            .iter()
            .any(|c: &Count| c.approximate);
        ActivityReport {
            from,
            to,
            active_sessions: sessions.value,
            active_customers: customers.value,
            approximate,
            views: view.totals.views,
            cart_adds: view.totals.cart_adds,
            cart_removes: view.totals.cart_removes,
            checkouts: view.totals.checkouts,
            cart_sessions: carted.value,
            checkout_sessions: checked_out.value,
            // An estimate of the difference can exceed the estimate of the carted set.
            abandoned_sessions: abandoned.min(carted.value),
            abandonment_rate: rate(abandoned.min(carted.value) as i64, carted.value as i64),
        }
    }

    pub fn for_window(window: &Window, view: &ActivityView) -> Self {
        Self::new(window.from_time(), window.to_time(), view)
    }
}

/// `GET /analytics/activity?granularity=`: one report per bucket — active users per
/// minute, hour or day.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivitySeries {
    pub granularity: &'static str,
    pub from: Timestamp,
    pub to: Timestamp,
    pub buckets: Vec<ActivityReport>,
}

impl ActivitySeries {
    /// `views[i]` is what is stored for `buckets[i]` (empty when nothing is);
    /// `buckets` from [`Window::buckets`].
    pub fn new(granularity: Granularity, buckets: &[Bucket], views: &[ActivityView]) -> Self {
        let window = Window {
            from: buckets.first().map_or(0, |b| b.start),
            to: buckets.last().map_or(0, |b| b.next().start),
        };
        ActivitySeries {
            granularity: granularity.as_str(),
            from: window.from_time(),
            to: window.to_time(),
            buckets: buckets
                .iter()
                .zip(views)
                .map(|(b, view)| ActivityReport::new(b.start_time(), b.next().start_time(), view))
                .collect(),
        }
    }
}

/// `GET /analytics/funnel?productId=`: one product's way from a view to an order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunnelReport {
    pub from: Timestamp,
    pub to: Timestamp,
    pub product_id: ProductId,
    pub views: i64,
    pub cart_adds: i64,
    pub cart_removes: i64,
    /// Checkouts whose cart named the product.
    pub checkouts: i64,
    /// Orders of the window holding the product, processed and not cancelled (the order
    /// analytics' per-product `orders`, by the orders' `createdAt`).
    pub orders: i64,
    /// cartAdds / views. Rates have four decimals, are 0 without a denominator, and are
    /// not capped at 1: orders not preceded by a storefront event (placed through the API,
    /// or viewed outside the window) make a rate above 1, which is worth seeing.
    pub view_to_cart_rate: f64,
    /// orders / cartAdds.
    pub cart_to_order_rate: f64,
    /// orders / views.
    pub view_to_order_rate: f64,
}

impl FunnelReport {
    /// `activity`: the product's activity counters merged over the window; `orders`: its
    /// counters from the order analytics over the same window.
    pub fn new(
        window: &Window,
        product_id: ProductId,
        activity: &Counts,
        orders: &ProductTotals,
    ) -> Self {
        FunnelReport {
            from: window.from_time(),
            to: window.to_time(),
            product_id,
            views: activity.views,
            cart_adds: activity.cart_adds,
            cart_removes: activity.cart_removes,
            checkouts: activity.checkouts,
            orders: orders.orders,
            view_to_cart_rate: rate(activity.cart_adds, activity.views),
            cart_to_order_rate: rate(orders.orders, activity.cart_adds),
            view_to_order_rate: rate(orders.orders, activity.views),
        }
    }
}

/// `n / d` to four decimals (a rate, not a measurement of the floating-point unit), as
/// the order summary's rates; 0 when `d` is not positive.
fn rate(n: i64, d: i64) -> f64 {
    if d > 0 {
        (n as f64 / d as f64 * 10_000.0).round() / 10_000.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distinct::ShardSetOf;
    use crate::ids::SessionId;
    use crate::shard::shard_of;
    use std::collections::BTreeSet;

    fn sessions(ids: &[&str]) -> crate::distinct::DistinctOf<SessionId> {
        let mut d = crate::distinct::DistinctOf::default();
        for id in ids {
            let shard = shard_of(id, crate::distinct::SHARDS);
            d.add_shard(
                shard,
                &ShardSetOf::Exact(BTreeSet::from([SessionId::parse(id).unwrap()])),
            );
        }
        d
    }

    fn window() -> Window {
        let at = |s| Timestamp::parse(s);
        Window::parse(
            Some("2026-11-22T10:00:00Z"),
            Some("2026-11-22T11:00:00Z"),
            at("2026-11-22T12:00:00Z").unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn abandonment_is_carted_sessions_without_a_checkout() {
        let view = ActivityView {
            sessions: sessions(&["s-1", "s-2", "s-3", "s-4", "s-5"]),
            carted: sessions(&["s-1", "s-2", "s-3", "s-4"]),
            // s-5 checked out with a cart filled before the window: not in `carted`.
            checked_out: sessions(&["s-1", "s-5"]),
            ..ActivityView::default()
        };
        let report = ActivityReport::for_window(&window(), &view);
        assert_eq!(
            (
                report.active_sessions,
                report.cart_sessions,
                report.checkout_sessions,
                report.abandoned_sessions
            ),
            (5, 4, 2, 3)
        );
        assert_eq!(report.abandonment_rate, 0.75);
        assert!(!report.approximate);
        let json = serde_json::to_value(&report).unwrap();
        for key in [
            "activeSessions",
            "activeCustomers",
            "approximate",
            "cartAdds",
            "abandonmentRate",
        ] {
            assert!(json.get(key).is_some(), "{key}: {json}");
        }
        let empty = ActivityReport::for_window(&window(), &ActivityView::default());
        assert_eq!((empty.abandoned_sessions, empty.abandonment_rate), (0, 0.0));
    }

    #[test]
    fn the_funnel_takes_orders_from_the_order_analytics() {
        let activity = Counts {
            views: 200,
            cart_adds: 30,
            cart_removes: 5,
            checkouts: 12,
        };
        let orders = ProductTotals {
            units: 14,
            revenue: 9_000,
            orders: 9,
        };
        let funnel = FunnelReport::new(
            &window(),
            ProductId::parse("sku-1").unwrap(),
            &activity,
            &orders,
        );
        assert_eq!(funnel.orders, 9);
        assert_eq!(funnel.view_to_cart_rate, 0.15);
        assert_eq!(funnel.cart_to_order_rate, 0.3);
        assert_eq!(funnel.view_to_order_rate, 0.045);
        let none = FunnelReport::new(
            &window(),
            ProductId::parse("sku-1").unwrap(),
            &Counts::default(),
            &orders,
        );
        assert_eq!(none.view_to_order_rate, 0.0);
        let json = serde_json::to_value(&funnel).unwrap();
        assert_eq!(json["productId"], "sku-1");
        assert_eq!(json["viewToCartRate"], 0.15);
    }

    #[test]
    fn a_series_has_one_report_per_bucket() {
        let buckets = window().buckets(Granularity::Minute).unwrap();
        let views = vec![ActivityView::default(); buckets.len()];
        let series = ActivitySeries::new(Granularity::Minute, &buckets, &views);
        assert_eq!(series.buckets.len(), 60);
        assert_eq!(series.from, window().from_time());
        assert_eq!(series.to, window().to_time());
        assert_eq!(series.buckets[1].from, series.buckets[0].to);
    }
}
