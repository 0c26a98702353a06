//! The storefront part of the reconcile: `GET /analytics/activity`, and the funnels of the
//! run's most viewed products and of one it never touched, against what the run's
//! acknowledged events and its orders add up to ([`ExpectedActivity`]).
//!
//! **Which window.** The run's whole minutes from its first event or order to its last:
//! every event of the run is in it, and every order, those its sessions' checkouts led to
//! included, so a funnel's `orders` (the order analytics' per-product count, by `createdAt`)
//! is of the orders the sim knows. Buckets are of the events' `occurredAt`, which the sim
//! set, so the expected figures need nothing from the server.
//!
//! **Whose differences.** No listing tells other clients' events apart, but they can only
//! add to a figure: one short of the run's is its own, one above may be others' (see
//! `expect::activity`). A route that does not answer is the run's own difference.

use crate::api::Api;
use crate::expect::activity::{ExpectedActivity, Side};
use crate::expect::{Expected, Facts};
use crate::ledger::Ledger;
use crate::window::{Window, parse_time};

/// Funnels checked: of this many most viewed products, plus one untouched.
const FUNNEL_PRODUCTS: usize = 3;

/// The whole minutes of the run's events and orders; `None` without events (then nothing
/// of the storefront is reconciled).
pub(super) fn window(ledger: &Ledger) -> Option<Window> {
    if ledger.events.is_empty() {
        return None;
    }
    let events = ledger.events.iter().map(|e| &e.occurred_at);
    let orders = ledger.orders.iter().map(|o| &o.created_at);
    Window::covering(events.chain(orders).filter_map(|t| parse_time(t).ok()))
}

/// Differences: (the run's own, figures others may also feed).
pub(super) async fn compare(
    api: &Api,
    ledger: &Ledger,
    window: Window,
) -> (Vec<String>, Vec<String>) {
    let expected = match ExpectedActivity::of(window, &ledger.events) {
        Ok(e) => e,
        Err(err) => return (vec![format!("ledger: {err:#}")], Vec::new()),
    };
    // Orders whose facts cannot be read are reported by the orders' comparison.
    let facts: Vec<Facts> = ledger
        .orders
        .iter()
        .filter_map(|e| e.facts().ok())
        .collect();
    let orders = Expected::of(window, &facts).products;

    let mut diffs: Vec<(Side, String)> = Vec::new();
    match api.activity(&window).await {
        Ok(got) => diffs.extend(expected.compare_activity(&got)),
        Err(err) => diffs.push((Side::Own, format!("{err:#}"))),
    }
    for product in expected.funnel_products(&ledger.catalog, &orders, FUNNEL_PRODUCTS) {
        let want_orders = orders.get(&product).map_or(0, |p| p.orders);
        match api.funnel(&window, &product).await {
            Ok(got) => diffs.extend(expected.compare_funnel(&product, want_orders, &got)),
            Err(err) => diffs.push((Side::Own, format!("{err:#}"))),
        }
    }
    let (own, shared): (Vec<_>, Vec<_>) = diffs.into_iter().partition(|(s, _)| *s == Side::Own);
    (
        own.into_iter().map(|(_, d)| d).collect(),
        shared.into_iter().map(|(_, d)| d).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Entry;
    use crate::traffic::sessions::{Event, EventKind};
    use crate::traffic::{FollowUp, Line};

    fn ledger(events: Vec<Event>, orders: Vec<Entry>) -> Ledger {
        Ledger {
            run_id: "run".into(),
            base_url: String::new(),
            seed: 1,
            customer_prefix: "run-c".into(),
            catalog: Vec::new(),
            stock: 1_000,
            orders,
            events,
            unexpected: Vec::new(),
        }
    }

    #[test]
    fn the_window_covers_events_and_orders_and_needs_events() {
        let event = |at: &str| Event {
            event_id: "e000".into(),
            session_id: "run-s00000".into(),
            customer_id: None,
            occurred_at: at.into(),
            kind: EventKind::ProductViewed {
                product_id: "p".into(),
            },
        };
        let order = Entry {
            seq: 1,
            order_id: "o".into(),
            customer_id: "run-c00001".into(),
            created_at: "2026-11-22T10:07:30.000Z".into(),
            lines: vec![Line {
                product_id: "p".into(),
                quantity: 1,
                unit_price: 100,
            }],
            expect_failure: false,
            follow_up: FollowUp::None,
            follow_up_done: false,
            out_of_stock: false,
        };
        let w = window(&ledger(
            vec![
                event("2026-11-22T10:05:59.999Z"),
                event("2026-11-22T10:02:00.000Z"),
            ],
            vec![order.clone()],
        ))
        .unwrap();
        assert_eq!(
            w.to_string(),
            "[2026-11-22T10:02:00Z, 2026-11-22T10:08:00Z)"
        );
        assert_eq!(window(&ledger(Vec::new(), vec![order])), None);
    }
}
