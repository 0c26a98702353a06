//! What the activity routes must answer for the run's storefront events, computed from the
//! events the sim sent with the rules of `docs/activity.md`, and the differences from what
//! the routes did answer.
//!
//! Rules: an event counts in the minute of its `occurredAt`, once per `(sessionId, eventId)`
//! however often it was delivered; `views`, `cartAdds`, `cartRemoves` and `checkouts` count
//! events, not units; `activeSessions` / `activeCustomers` are the distinct sessions / signed-in
//! customers with any event; `cartSessions` / `checkoutSessions` the distinct sessions with an
//! `AddedToCart` / a `CheckoutStarted`; `abandonedSessions = |cartSessions \ checkoutSessions|`,
//! `abandonmentRate` its share of `cartSessions`. A product's funnel: its views, cart adds and
//! removes, the checkouts whose cart named it, and the order analytics' per-product `orders`.
//! Rates have four decimals, 0 without a denominator. With `approximate`, distinct counts may
//! be off by 3 % (of the union of both sets, for `abandonedSessions`).
//!
//! **Whose difference.** The routes are global, and no listing tells other clients' events
//! apart, but other clients can only *add*: counters add up, sets are unioned, and their
//! sessions are not the run's (ids carry its run id). So a figure **below** the run's own is
//! the run's loss ([`Side::Own`]); one **above** it may be other clients' events — or a copy
//! counted twice, or (abandonment) a checkout of the run's lost ([`Side::Shared`]). A rate must follow from the counts of its own answer,
//! whoever else writes: a rate that does not is an own difference.

use crate::api::{ActivityView, FunnelView};
use crate::expect::ProductTotals;
use crate::traffic::Product;
use crate::traffic::sessions::{Event, EventKind};
use crate::window::{Window, format, parse_time};
use anyhow::Context as _;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Whose figure a difference is about (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Short of what the run sent, or wrong whoever else writes.
    Own,
    /// More than the run sent: other clients' events, or the run's miscounted.
    Shared,
}

/// Events, not units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub views: i64,
    pub cart_adds: i64,
    pub cart_removes: i64,
    pub checkouts: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedActivity {
    pub window: Window,
    pub totals: Counters,
    /// Per product; a checkout counts for every product its cart named.
    pub products: BTreeMap<String, Counters>,
    pub sessions: BTreeSet<String>,
    pub customers: BTreeSet<String>,
    /// Sessions that added to cart.
    pub carted: BTreeSet<String>,
    /// Sessions that started a checkout.
    pub checked_out: BTreeSet<String>,
}

impl ExpectedActivity {
    /// The figures of `window` from `events` (those outside it are ignored, copies of one
    /// event counted once).
    pub fn of<'a>(
        window: Window,
        events: impl IntoIterator<Item = &'a Event>,
    ) -> anyhow::Result<Self> {
        let mut e = Self {
            window,
            totals: Counters::default(),
            products: BTreeMap::new(),
            sessions: BTreeSet::new(),
            customers: BTreeSet::new(),
            carted: BTreeSet::new(),
            checked_out: BTreeSet::new(),
        };
        let mut seen: HashSet<(&str, &str)> = HashSet::new();
        for event in events {
            let at = parse_time(&event.occurred_at)
                .with_context(|| format!("event {}/{}", event.session_id, event.event_id))?;
            if !window.contains(at) || !seen.insert((&event.session_id, &event.event_id)) {
                continue;
            }
            let session = &event.session_id;
            e.sessions.insert(session.clone());
            if let Some(customer) = &event.customer_id {
                e.customers.insert(customer.clone());
            }
            let mut product = |id: &str, count: fn(&mut Counters)| {
                count(&mut e.totals);
                count(e.products.entry(id.to_owned()).or_default());
            };
            match &event.kind {
                EventKind::ProductViewed { product_id } => product(product_id, |c| c.views += 1),
                EventKind::AddedToCart { product_id, .. } => {
                    product(product_id, |c| c.cart_adds += 1);
                    e.carted.insert(session.clone());
                }
                EventKind::RemovedFromCart { product_id, .. } => {
                    product(product_id, |c| c.cart_removes += 1)
                }
                EventKind::CheckoutStarted { cart } => {
                    e.totals.checkouts += 1;
                    for id in cart {
                        e.products.entry(id.clone()).or_default().checkouts += 1;
                    }
                    e.checked_out.insert(session.clone());
                }
            }
        }
        Ok(e)
    }

    pub fn abandoned(&self) -> i64 {
        self.carted.difference(&self.checked_out).count() as i64
    }

    pub fn abandonment_rate(&self) -> f64 {
        rate(self.abandoned(), self.carted.len() as i64)
    }

    /// The products whose funnels are worth checking: the `n` most viewed by the run, and
    /// one it never touched — the least popular without events (and without orders, if there
    /// is such a product), whose activity figures must all be zero.
    pub fn funnel_products(
        &self,
        catalog: &[Product],
        orders: &BTreeMap<String, ProductTotals>,
        n: usize,
    ) -> Vec<String> {
        let mut viewed: Vec<(&String, &Counters)> = self.products.iter().collect();
        viewed.sort_by_key(|(id, c)| (std::cmp::Reverse(c.views), *id));
        let mut chosen: Vec<String> = viewed.iter().take(n).map(|(id, _)| (*id).clone()).collect();
        let untouched = |p: &&Product| !self.products.contains_key(&p.id);
        let quiet = catalog
            .iter()
            .rev()
            .filter(untouched)
            .find(|p| !orders.contains_key(&p.id))
            .or_else(|| catalog.iter().rev().find(untouched));
        chosen.extend(quiet.map(|p| p.id.clone()));
        chosen
    }

    /// `GET /analytics/activity` over the window.
    pub fn compare_activity(&self, got: &ActivityView) -> Vec<(Side, String)> {
        let mut diffs = Vec::new();
        bounds(&mut diffs, "activity", self.window, &got.from, &got.to);
        let t = &self.totals;
        for (name, want, got) in [
            ("views", t.views, got.views),
            ("cartAdds", t.cart_adds, got.cart_adds),
            ("cartRemoves", t.cart_removes, got.cart_removes),
            ("checkouts", t.checkouts, got.checkouts),
        ] {
            figure(&mut diffs, &format!("activity.{name}"), want, got, None);
        }
        // An estimate may be off by 3 % (rounded up) of the set it estimates.
        let tolerance = |of: usize| got.approximate.then(|| (of * 3).div_ceil(100) as i64);
        let len = |s: &BTreeSet<String>| s.len() as i64;
        let either = self.carted.union(&self.checked_out).count();
        for (name, want, answered, tolerance) in [
            (
                "activeSessions",
                len(&self.sessions),
                got.active_sessions,
                tolerance(self.sessions.len()),
            ),
            (
                "activeCustomers",
                len(&self.customers),
                got.active_customers,
                tolerance(self.customers.len()),
            ),
            (
                "cartSessions",
                len(&self.carted),
                got.cart_sessions,
                tolerance(self.carted.len()),
            ),
            (
                "checkoutSessions",
                len(&self.checked_out),
                got.checkout_sessions,
                tolerance(self.checked_out.len()),
            ),
            (
                "abandonedSessions",
                self.abandoned(),
                got.abandoned_sessions,
                tolerance(either),
            ),
        ] {
            figure(
                &mut diffs,
                &format!("activity.{name}"),
                want,
                answered,
                tolerance,
            );
        }
        follows(
            &mut diffs,
            "activity.abandonmentRate",
            got.abandonment_rate,
            ("abandonedSessions", got.abandoned_sessions),
            ("cartSessions", got.cart_sessions),
        );
        diffs
    }

    /// `GET /analytics/funnel?productId=` over the window; `orders`: the product's
    /// expected per-product `orders` of the order analytics over the same window.
    pub fn compare_funnel(
        &self,
        product: &str,
        orders: i64,
        got: &FunnelView,
    ) -> Vec<(Side, String)> {
        let at = format!("funnel[{product}]");
        let mut diffs = Vec::new();
        bounds(&mut diffs, &at, self.window, &got.from, &got.to);
        if got.product_id != product {
            diffs.push((
                Side::Own,
                format!("{at}.productId: expected {product}, got {}", got.product_id),
            ));
        }
        let want = self.products.get(product).copied().unwrap_or_default();
        for (name, want, got) in [
            ("views", want.views, got.views),
            ("cartAdds", want.cart_adds, got.cart_adds),
            ("cartRemoves", want.cart_removes, got.cart_removes),
            ("checkouts", want.checkouts, got.checkouts),
            ("orders", orders, got.orders),
        ] {
            figure(&mut diffs, &format!("{at}.{name}"), want, got, None);
        }
        for (name, answered, numerator, denominator) in [
            (
                "viewToCartRate",
                got.view_to_cart_rate,
                ("cartAdds", got.cart_adds),
                ("views", got.views),
            ),
            (
                "cartToOrderRate",
                got.cart_to_order_rate,
                ("orders", got.orders),
                ("cartAdds", got.cart_adds),
            ),
            (
                "viewToOrderRate",
                got.view_to_order_rate,
                ("orders", got.orders),
                ("views", got.views),
            ),
        ] {
            follows(
                &mut diffs,
                &format!("{at}.{name}"),
                answered,
                numerator,
                denominator,
            );
        }
        diffs
    }
}

/// `n / d` to four decimals, 0 when `d` is not positive (the reports' rates).
pub fn rate(n: i64, d: i64) -> f64 {
    if d > 0 {
        (n as f64 / d as f64 * 10_000.0).round() / 10_000.0
    } else {
        0.0
    }
}

/// A count: below `want` (beyond the tolerance of an estimate) is the run's loss, above it
/// may be others'.
fn figure(
    diffs: &mut Vec<(Side, String)>,
    name: &str,
    want: i64,
    got: i64,
    tolerance: Option<i64>,
) {
    let slack = tolerance.unwrap_or(0);
    if (want - got).abs() <= slack {
        return;
    }
    let side = if got < want { Side::Own } else { Side::Shared };
    let approximate = tolerance
        .map(|t| format!(" (± {t}: approximate)"))
        .unwrap_or_default();
    diffs.push((
        side,
        format!("{name}: expected {want}{approximate}, got {got}"),
    ));
}

/// A rate must be its answer's `numerator / denominator`, rounded to four decimals.
fn follows(
    diffs: &mut Vec<(Side, String)>,
    name: &str,
    got: f64,
    (n_name, n): (&str, i64),
    (d_name, d): (&str, i64),
) {
    let want = rate(n, d);
    if (want - got).abs() > 0.000_051 {
        diffs.push((
            Side::Own,
            format!("{name}: expected {want:.4} (= {n_name} / {d_name} as answered: {n} / {d}), got {got}"),
        ));
    }
}

/// The answer must be about the window asked for.
fn bounds(diffs: &mut Vec<(Side, String)>, at: &str, window: Window, from: &str, to: &str) {
    for (name, want, got) in [("from", window.from(), from), ("to", window.to(), to)] {
        if parse_time(got).ok() != Some(want) {
            diffs.push((
                Side::Own,
                format!("{at}.{name}: expected {}, got {got}", format(want)),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::minute_start;

    const MINUTE: i64 = 29_922_360; // 2026-11-22T10:00Z

    fn window() -> Window {
        Window {
            from_minute: MINUTE,
            to_minute: MINUTE + 3,
        }
    }

    fn at(minute: i64, second: i64) -> String {
        format(minute_start(minute) + time::Duration::seconds(second))
    }

    fn event(
        session: &str,
        id: &str,
        customer: Option<&str>,
        minute: i64,
        kind: EventKind,
    ) -> Event {
        Event {
            event_id: id.into(),
            session_id: session.into(),
            customer_id: customer.map(str::to_owned),
            occurred_at: at(minute, 10),
            kind,
        }
    }

    fn view(p: &str) -> EventKind {
        EventKind::ProductViewed {
            product_id: p.into(),
        }
    }

    fn add(p: &str, quantity: u32) -> EventKind {
        EventKind::AddedToCart {
            product_id: p.into(),
            quantity,
        }
    }

    fn remove(p: &str, quantity: u32) -> EventKind {
        EventKind::RemovedFromCart {
            product_id: p.into(),
            quantity,
        }
    }

    fn checkout(cart: &[&str]) -> EventKind {
        EventKind::CheckoutStarted {
            cart: cart.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    /// Hand-made sessions:
    /// - s1 (c1) views p1, adds 3 of p1, checks out [p1];
    /// - s2 views p1 and p2, adds p2, leaves: abandoned;
    /// - s3 views p2 only;
    /// - s4 (c1) checks out [p1, p2] with a cart filled before the window: checked out,
    ///   never carted in the window;
    /// - s5 (c2) adds p2 and removes it again: still abandoned;
    /// - s6 adds p1 after the window ends: not counted at all.
    fn sample() -> Vec<Event> {
        vec![
            event("s1", "e0", Some("c1"), MINUTE, view("p1")),
            event("s1", "e1", Some("c1"), MINUTE, add("p1", 3)),
            event("s1", "e2", Some("c1"), MINUTE + 1, checkout(&["p1"])),
            event("s2", "e0", None, MINUTE, view("p1")),
            event("s2", "e1", None, MINUTE, view("p2")),
            event("s2", "e2", None, MINUTE + 2, add("p2", 1)),
            event("s3", "e0", None, MINUTE + 2, view("p2")),
            event("s4", "e9", Some("c1"), MINUTE, checkout(&["p1", "p2"])),
            event("s5", "e0", Some("c2"), MINUTE + 1, add("p2", 2)),
            event("s5", "e1", Some("c2"), MINUTE + 1, remove("p2", 2)),
            event("s6", "e0", None, MINUTE + 3, add("p1", 1)),
            // A copy of an event already counted (a redelivery kept twice by a client).
            event("s1", "e1", Some("c1"), MINUTE, add("p1", 3)),
        ]
    }

    #[test]
    fn abandonment_is_carted_sessions_without_a_checkout() {
        let e = ExpectedActivity::of(window(), &sample()).unwrap();
        fn ids(s: &BTreeSet<String>) -> Vec<&str> {
            s.iter().map(String::as_str).collect()
        }
        assert_eq!(ids(&e.sessions), ["s1", "s2", "s3", "s4", "s5"]);
        assert_eq!(ids(&e.customers), ["c1", "c2"]);
        assert_eq!(ids(&e.carted), ["s1", "s2", "s5"]);
        assert_eq!(ids(&e.checked_out), ["s1", "s4"]);
        assert_eq!(e.abandoned(), 2, "s2 and s5");
        assert_eq!(e.abandonment_rate(), 0.6667);
        assert_eq!(
            e.totals,
            Counters {
                views: 4,
                cart_adds: 3,
                cart_removes: 1,
                checkouts: 2
            }
        );
        // Events, not units; a checkout counts for each product of its cart.
        assert_eq!(
            e.products["p1"],
            Counters {
                views: 2,
                cart_adds: 1,
                cart_removes: 0,
                checkouts: 2
            }
        );
        assert_eq!(e.products["p2"].checkouts, 1);
        assert_eq!(e.products["p2"].cart_removes, 1);

        let nothing = ExpectedActivity::of(window(), &[]).unwrap();
        assert_eq!((nothing.abandoned(), nothing.abandonment_rate()), (0, 0.0));
        let mut bad = sample();
        bad[0].occurred_at = "yesterday".into();
        assert!(ExpectedActivity::of(window(), &bad).is_err());
    }

    fn answer(e: &ExpectedActivity) -> ActivityView {
        ActivityView {
            from: format(e.window.from()),
            to: format(e.window.to()),
            active_sessions: e.sessions.len() as i64,
            active_customers: e.customers.len() as i64,
            approximate: false,
            views: e.totals.views,
            cart_adds: e.totals.cart_adds,
            cart_removes: e.totals.cart_removes,
            checkouts: e.totals.checkouts,
            cart_sessions: e.carted.len() as i64,
            checkout_sessions: e.checked_out.len() as i64,
            abandoned_sessions: e.abandoned(),
            abandonment_rate: e.abandonment_rate(),
        }
    }

    #[test]
    fn activity_must_be_exact_and_short_figures_are_the_runs_own() {
        let e = ExpectedActivity::of(window(), &sample()).unwrap();
        assert!(e.compare_activity(&answer(&e)).is_empty());

        let mut lost = answer(&e);
        lost.views -= 1;
        lost.cart_sessions -= 1;
        lost.abandoned_sessions -= 1;
        lost.abandonment_rate = 0.5; // 1 / 2 as answered: consistent
        let diffs = e.compare_activity(&lost);
        assert_eq!(diffs.len(), 3, "{diffs:#?}");
        assert!(diffs.iter().all(|(side, _)| *side == Side::Own));
        assert!(
            diffs
                .iter()
                .any(|(_, d)| d == "activity.views: expected 4, got 3")
        );

        let mut more = answer(&e);
        more.active_sessions += 1;
        more.checkouts += 1;
        let diffs = e.compare_activity(&more);
        assert_eq!(diffs.len(), 2, "{diffs:#?}");
        assert!(diffs.iter().all(|(side, _)| *side == Side::Shared));

        let mut wrong_rate = answer(&e);
        wrong_rate.abandonment_rate = 0.6666;
        wrong_rate.to = "2026-11-22T10:04:00Z".into();
        let diffs = e.compare_activity(&wrong_rate);
        assert_eq!(diffs.len(), 2, "{diffs:#?}");
        assert!(diffs.iter().all(|(side, _)| *side == Side::Own));
    }

    #[test]
    fn estimates_may_be_off_by_three_percent() {
        let events: Vec<Event> = (0..1_000)
            .map(|i| event(&format!("s{i}"), "e0", None, MINUTE, add("p1", 1)))
            .collect();
        let e = ExpectedActivity::of(window(), &events).unwrap();
        let mut got = answer(&e);
        got.approximate = true;
        got.active_sessions = 1_030;
        got.cart_sessions = 970;
        got.abandoned_sessions = 970;
        assert!(
            e.compare_activity(&got).is_empty(),
            "{:#?}",
            e.compare_activity(&got)
        );
        got.active_sessions = 1_031;
        got.cart_sessions = 969;
        got.abandonment_rate = rate(970, 969);
        let diffs = e.compare_activity(&got);
        assert_eq!(diffs.len(), 2, "{diffs:#?}");
        // Counters are exact even when the sets are estimates.
        got = answer(&e);
        got.approximate = true;
        got.cart_adds += 1;
        assert_eq!(e.compare_activity(&got).len(), 1);
        // Exact answers get no slack.
        got = answer(&e);
        got.active_sessions += 1;
        assert_eq!(e.compare_activity(&got).len(), 1);
    }

    fn funnel(e: &ExpectedActivity, product: &str, orders: i64) -> FunnelView {
        let c = e.products.get(product).copied().unwrap_or_default();
        FunnelView {
            from: format(e.window.from()),
            to: format(e.window.to()),
            product_id: product.into(),
            views: c.views,
            cart_adds: c.cart_adds,
            cart_removes: c.cart_removes,
            checkouts: c.checkouts,
            orders,
            view_to_cart_rate: rate(c.cart_adds, c.views),
            cart_to_order_rate: rate(orders, c.cart_adds),
            view_to_order_rate: rate(orders, c.views),
        }
    }

    #[test]
    fn funnels_are_exact_per_product() {
        let e = ExpectedActivity::of(window(), &sample()).unwrap();
        let p1 = funnel(&e, "p1", 3);
        assert_eq!((p1.view_to_cart_rate, p1.cart_to_order_rate), (0.5, 3.0));
        assert!(e.compare_funnel("p1", 3, &p1).is_empty());
        let quiet = funnel(&e, "p9", 0);
        assert_eq!(
            (quiet.views, quiet.checkouts, quiet.view_to_order_rate),
            (0, 0, 0.0)
        );
        assert!(e.compare_funnel("p9", 0, &quiet).is_empty());

        let mut bad = p1.clone();
        bad.checkouts = 1; // s4's cart named p1 too
        bad.orders = 4;
        bad.cart_to_order_rate = 3.0; // no longer 4 / 1
        bad.view_to_order_rate = 2.0;
        let diffs = e.compare_funnel("p1", 3, &bad);
        let sides: Vec<Side> = diffs.iter().map(|(s, _)| *s).collect();
        assert_eq!(sides, [Side::Own, Side::Shared, Side::Own], "{diffs:#?}");
        assert!(
            diffs[0]
                .1
                .starts_with("funnel[p1].checkouts: expected 2, got 1")
        );
        // Another product's answer: its id, and four of its five counts.
        assert_eq!(e.compare_funnel("p2", 0, &p1).len(), 5);
    }

    #[test]
    fn funnels_are_checked_for_the_most_viewed_and_an_untouched_product() {
        let e = ExpectedActivity::of(window(), &sample()).unwrap();
        let catalog: Vec<Product> = ["p1", "p2", "p3", "p4"]
            .iter()
            .map(|id| Product {
                id: (*id).into(),
                name: String::new(),
                price: 100,
            })
            .collect();
        let ordered = |ids: &[&str]| -> BTreeMap<String, ProductTotals> {
            ids.iter()
                .map(|id| ((*id).to_owned(), ProductTotals::default()))
                .collect()
        };
        assert_eq!(e.funnel_products(&catalog, &ordered(&[]), 1), ["p1", "p4"]);
        assert_eq!(
            e.funnel_products(&catalog, &ordered(&["p4"]), 2),
            ["p1", "p2", "p3"]
        );
        assert_eq!(
            e.funnel_products(&catalog, &ordered(&["p3", "p4"]), 2),
            ["p1", "p2", "p4"]
        );
        assert_eq!(
            e.funnel_products(&catalog[..2], &ordered(&[]), 5),
            ["p1", "p2"]
        );
    }

    /// The run's events, delivered in batches with resent and regrouped copies as the sim
    /// sends them, through the API's validation, once per event (the consumer's claims) and
    /// the domain's fold and reports: the answers equal what is expected from the events as
    /// sent. A rule misread here (events vs units, whose checkout, which sets) fails it.
    #[test]
    fn the_domain_fold_of_generated_traffic_answers_what_is_expected() {
        use crate::traffic::batches;
        use crate::traffic::sessions::{
            SessionGenerator, SessionSettings, batch_body, stamped_events,
        };
        use crate::traffic::{Settings, catalog};
        use orders_core::activity::{
            self as core, ActivityFold, ActivityReport, FunnelReport, parse_activity_batch,
        };
        use orders_core::analytics::Granularity;
        use orders_core::{Caller, ProductId, Timestamp};

        let settings = Settings {
            seed: 11,
            run_id: "sim-test".into(),
            catalog_prefix: "sim".into(),
            // Enough that some product is never viewed: its funnel is all zeros.
            products: 2_000,
            customers: 40,
            stock: 1_000_000,
            zipf_exponent: 1.0,
            repeat_ratio: 0.7,
            invalid_ratio: 0.0,
            unknown_product_ratio: 0.0,
            cancel_ratio: 0.1,
            ship_ratio: 0.2,
            sessions: SessionSettings {
                sessions: 300,
                batch_events: 100,
                redeliver_ratio: 0.3,
                ..SessionSettings::default()
            },
        };
        let sent_at = (MINUTE + 60) * 60_000;
        let sessions: Vec<_> = SessionGenerator::new(settings.clone()).collect();
        let events = stamped_events(&sessions, sent_at, sent_at - 3_600_000);
        let now = Timestamp::from_unix_millis(sent_at).unwrap();
        let mut claimed = HashSet::new();
        let mut fold = ActivityFold::default();
        let plan = batches::plan(events.len(), &settings.sessions, settings.seed);
        assert!(plan.len() > events.len() / 100, "copies are sent too");
        for batch in plan {
            let body = batch_body(batch.events.iter().map(|&i| &events[i]));
            for event in parse_activity_batch(&body, &Caller::Staff, now).unwrap() {
                if claimed.insert(event.dedup_key()) {
                    fold.add_event(&event);
                }
            }
        }
        let window =
            Window::covering(events.iter().map(|e| parse_time(&e.occurred_at).unwrap())).unwrap();
        let mut merged = core::ActivityView::default();
        for (bucket, view) in fold.views() {
            if bucket.granularity == Granularity::Minute {
                merged.merge(&view);
            }
        }
        let domain_window = orders_core::report::Window {
            from: window.from_minute * 60,
            to: window.to_minute * 60,
        };
        let report = ActivityReport::for_window(&domain_window, &merged);
        let got: ActivityView =
            serde_json::from_value(serde_json::to_value(&report).unwrap()).unwrap();
        let e = ExpectedActivity::of(window, &events).unwrap();
        assert!(!got.approximate);
        assert_eq!(e.compare_activity(&got), vec![]);
        assert!(e.abandoned() > 0 && !e.checked_out.is_empty() && !e.customers.is_empty());
        assert!(e.totals.cart_removes > 0);

        let products = e.funnel_products(&catalog(&settings), &BTreeMap::new(), 3);
        assert_eq!(products.len(), 4);
        for product in products {
            let id = ProductId::parse(&product).unwrap();
            let counts = merged.products.get(&id).copied().unwrap_or_default();
            let orders = orders_core::analytics::ProductTotals {
                units: 9,
                revenue: 900,
                orders: 7,
            };
            let report = FunnelReport::new(&domain_window, id, &counts, &orders);
            let got: FunnelView =
                serde_json::from_value(serde_json::to_value(&report).unwrap()).unwrap();
            assert_eq!(e.compare_funnel(&product, 7, &got), vec![], "{product}");
        }
    }
}
