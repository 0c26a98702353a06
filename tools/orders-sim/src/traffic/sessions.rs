//! Storefront sessions: shoppers who browse (`ProductViewed`, products as popular as the
//! orders' are), fill and sometimes empty a cart (`AddedToCart`, `RemovedFromCart`), sometimes
//! start a checkout of the cart (`CheckoutStarted`) and sometimes order it. Some are signed
//! in and name one of the run's customers; the others are anonymous.
//!
//! Drawn from the run's seed on a stream of their own, so adding sessions changes nothing of
//! the order traffic a seed sends. Pure: an event's time is an offset before the moment the
//! sessions are sent, stamped by the runner ([`Session::stamp`]): every event has happened
//! when it is sent, as on a real storefront that batches what it saw.

use super::{Line, OrderPlan, Product, Settings, Zipf, customer_id, follow_up, quantity};
use orders_core::SessionId;
use orders_core::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Products a checkout's cart names at most (99, an order's line limit) and events one
/// `POST /events` takes (500): the API's own limits (`docs/activity.md`, "Validation").
pub use orders_core::activity::parse::{MAX_BATCH_EVENTS, MAX_CART_PRODUCTS};
/// Pages a session views at most; with one addition per page at most, a cart never holds
/// more products than this, so it always fits a checkout and an order.
const MAX_PAGES: u32 = 40;
/// After each page: the chance of viewing another (a mean of about six pages).
const ANOTHER_PAGE: f64 = 0.83;
/// Per page viewed: the chance its product goes into the cart.
const ADD_RATIO: f64 = 0.3;
/// Per page, once the cart holds something: the chance a product is taken out again.
const REMOVE_RATIO: f64 = 0.12;
/// Sessions' orders are numbered (`OrderPlan::seq`, the ledger's `seq`) from here: past any
/// request count a run reaches, so they never collide with the traffic's.
pub const SESSION_ORDER_SEQ: u64 = 1_000_000_000_000;
/// Kept apart from the order traffic's stream (seeded with the seed itself).
const SESSION_STREAM: u64 = 0x5E55_1011;

/// What the session generator draws from, besides the run's [`Settings`].
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSettings {
    /// Sessions in the run; 0: none, and nothing of the storefront is sent or reconciled.
    pub sessions: usize,
    /// Sessions signed in: their events carry one of the run's customers.
    pub signed_in_ratio: f64,
    /// Of the sessions ending with something in the cart: those that start a checkout.
    pub checkout_ratio: f64,
    /// Of the checkouts: those whose cart is then ordered (`POST /orders`).
    pub order_ratio: f64,
    /// Events per `POST /events` at most.
    pub batch_events: usize,
    /// Of the batches: those delivered again, unchanged or regrouped (see [`super::batches`]).
    pub redeliver_ratio: f64,
}

impl Default for SessionSettings {
    /// A few sessions: enough to see every event type, cheap next to the orders.
    fn default() -> Self {
        Self {
            sessions: 20,
            signed_in_ratio: 0.4,
            checkout_ratio: 0.5,
            order_ratio: 0.6,
            batch_events: 50,
            redeliver_ratio: 0.0,
        }
    }
}

impl SessionSettings {
    /// `run_id` prefixes the session ids, which must be safe ids (at most 64 characters).
    pub fn check(&self, run_id: &str) -> Result<(), String> {
        for (name, value) in [
            ("--signed-in-ratio", self.signed_in_ratio),
            ("--checkout-ratio", self.checkout_ratio),
            ("--session-order-ratio", self.order_ratio),
            ("--redeliver-ratio", self.redeliver_ratio),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(format!("{name} must be between 0 and 1 (got {value})"));
            }
        }
        if !(1..=MAX_BATCH_EVENTS).contains(&self.batch_events) {
            return Err(format!(
                "--event-batch must be between 1 and {MAX_BATCH_EVENTS} (got {})",
                self.batch_events
            ));
        }
        if self.sessions > 0 {
            let longest = session_id(run_id, self.sessions - 1);
            if SessionId::parse(&longest).is_err() {
                return Err(format!(
                    "session ids such as `{longest}` must be 1 to 64 of A-Za-z0-9-_.: \
                     (shorten --run-id)"
                ));
            }
        }
        Ok(())
    }
}

pub fn session_id(run_id: &str, index: usize) -> String {
    format!("{run_id}-s{index:05}")
}

/// What the shopper did: `eventType`, and the fields that type takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "eventType")]
pub enum EventKind {
    #[serde(rename_all = "camelCase")]
    ProductViewed { product_id: String },
    #[serde(rename_all = "camelCase")]
    AddedToCart { product_id: String, quantity: u32 },
    #[serde(rename_all = "camelCase")]
    RemovedFromCart { product_id: String, quantity: u32 },
    /// `cart`: the products in the cart, each once, in the order they were first added.
    #[serde(rename_all = "camelCase")]
    CheckoutStarted { cart: Vec<String> },
}

/// One event of a session, its time an offset from when the sessions are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEvent {
    /// Unique within the session (`e000`, `e001`, …): with the session id, what the server
    /// counts each event once by.
    pub event_id: String,
    /// Milliseconds before the sending (at most 0).
    pub at_ms: i64,
    pub kind: EventKind,
}

/// An event as sent to `POST /events` and kept in the ledger: its serialisation is the
/// wire form (`{"eventId", "eventType", "sessionId", "customerId"?, "occurredAt",
/// "productId"? , "quantity"?, "cart"?}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub event_id: String,
    pub session_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// RFC 3339, milliseconds, UTC: the client's time of the event, which the analytics
    /// bucket it by.
    pub occurred_at: String,
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    pub fn body(&self) -> Value {
        serde_json::to_value(self).expect("events serialise")
    }
}

/// The `POST /events` body of `events`.
pub fn batch_body<'a>(events: impl IntoIterator<Item = &'a Event>) -> Value {
    json!({"events": events.into_iter().map(Event::body).collect::<Vec<_>>()})
}

/// One shopper's visit.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub index: usize,
    pub session_id: String,
    /// Signed in: one of the run's customers.
    pub customer_id: Option<String>,
    /// In the order they happened.
    pub events: Vec<PlannedEvent>,
    /// The cart's products, each once, when the session ends (what a checkout names).
    pub cart: Vec<Line>,
    /// The order of the cart, when the checkout went through.
    pub order: Option<OrderPlan>,
}

impl Session {
    /// The events as sent at `sent_at` (Unix milliseconds), none before `earliest`: a run
    /// dates its events within its own minutes, so runs on one stack never share a minute
    /// (an event planned earlier happened at `earliest`, in order still).
    pub fn stamp(&self, sent_at: i64, earliest: i64) -> Vec<Event> {
        self.events
            .iter()
            .map(|e| Event {
                event_id: e.event_id.clone(),
                session_id: self.session_id.clone(),
                customer_id: self.customer_id.clone(),
                occurred_at: Timestamp::from_unix_millis((sent_at + e.at_ms).max(earliest))
                    .expect("times of this era")
                    .to_string(),
                kind: e.kind.clone(),
            })
            .collect()
    }
}

/// The seeded sessions of a run: exactly `settings.sessions.sessions` of them.
pub struct SessionGenerator {
    settings: Settings,
    catalog: Vec<Product>,
    popularity: Zipf,
    rng: ChaCha8Rng,
    next: usize,
}

impl SessionGenerator {
    pub fn new(settings: Settings) -> Self {
        Self {
            catalog: super::catalog(&settings),
            popularity: Zipf::new(settings.products, settings.zipf_exponent),
            rng: ChaCha8Rng::seed_from_u64(settings.seed ^ SESSION_STREAM),
            next: 0,
            settings,
        }
    }

    fn customer(&mut self) -> String {
        let c = self.rng.random_range(0..self.settings.customers);
        customer_id(&self.settings.run_id, c)
    }

    fn session(&mut self, index: usize) -> Session {
        let s = self.settings.sessions.clone();
        let session_id = session_id(&self.settings.run_id, index);
        let customer_id = self
            .rng
            .random_bool(s.signed_in_ratio)
            .then(|| self.customer());
        let mut kinds: Vec<(i64, EventKind)> = Vec::new();
        // (catalog index, units), in the order first added.
        let mut cart: Vec<(usize, u32)> = Vec::new();
        let mut t: i64 = 0;
        let mut pages = 0;
        loop {
            pages += 1;
            t += self.rng.random_range(5_000..60_000);
            let p = self.popularity.sample(&mut self.rng);
            let id = self.catalog[p].id.clone();
            kinds.push((
                t,
                EventKind::ProductViewed {
                    product_id: id.clone(),
                },
            ));
            if self.rng.random_bool(ADD_RATIO) {
                t += self.rng.random_range(1_000..10_000);
                let quantity = quantity(&mut self.rng);
                match cart.iter_mut().find(|(q, _)| *q == p) {
                    Some((_, units)) => *units += quantity,
                    None => cart.push((p, quantity)),
                }
                kinds.push((
                    t,
                    EventKind::AddedToCart {
                        product_id: id,
                        quantity,
                    },
                ));
            }
            if !cart.is_empty() && self.rng.random_bool(REMOVE_RATIO) {
                t += self.rng.random_range(1_000..10_000);
                let i = self.rng.random_range(0..cart.len());
                let (p, units) = cart[i];
                let quantity = if units > 1 && self.rng.random_bool(0.5) {
                    self.rng.random_range(1..units)
                } else {
                    units
                };
                if quantity == units {
                    cart.remove(i);
                } else {
                    cart[i].1 -= quantity;
                }
                kinds.push((
                    t,
                    EventKind::RemovedFromCart {
                        product_id: self.catalog[p].id.clone(),
                        quantity,
                    },
                ));
            }
            if pages >= MAX_PAGES || !self.rng.random_bool(ANOTHER_PAGE) {
                break;
            }
        }
        let lines: Vec<Line> = cart
            .iter()
            .take(MAX_CART_PRODUCTS)
            .map(|&(p, quantity)| Line {
                product_id: self.catalog[p].id.clone(),
                quantity,
                unit_price: self.catalog[p].price,
            })
            .collect();
        let mut order = None;
        if !lines.is_empty() && self.rng.random_bool(s.checkout_ratio) {
            t += self.rng.random_range(5_000..30_000);
            kinds.push((
                t,
                EventKind::CheckoutStarted {
                    cart: lines.iter().map(|l| l.product_id.clone()).collect(),
                },
            ));
            if self.rng.random_bool(s.order_ratio) {
                // An anonymous shopper signs in to pay: the order needs a customer.
                let customer = match &customer_id {
                    Some(c) => c.clone(),
                    None => self.customer(),
                };
                let seq = SESSION_ORDER_SEQ + index as u64;
                order = Some(OrderPlan {
                    seq,
                    idempotency_key: format!("{session_id}-order"),
                    customer_id: customer,
                    lines: lines.clone(),
                    expect_failure: false,
                    follow_up: follow_up(&mut self.rng, &self.settings),
                });
            }
        }
        // The session ended up to two minutes before the sending.
        let end = t + self.rng.random_range(0..120_000);
        let events = kinds
            .into_iter()
            .enumerate()
            .map(|(i, (at, kind))| PlannedEvent {
                event_id: format!("e{i:03}"),
                at_ms: at - end,
                kind,
            })
            .collect();
        Session {
            index,
            session_id,
            customer_id,
            events,
            cart: lines,
            order,
        }
    }
}

impl Iterator for SessionGenerator {
    type Item = Session;

    fn next(&mut self) -> Option<Session> {
        if self.next >= self.settings.sessions.sessions {
            return None;
        }
        let index = self.next;
        self.next += 1;
        Some(self.session(index))
    }
}

/// Every session's events stamped as sent at `sent_at` and none before `earliest`, in the
/// order they happened (ties by session, then within the session): the order a relaying
/// storefront backend sees them.
pub fn stamped_events(sessions: &[Session], sent_at: i64, earliest: i64) -> Vec<Event> {
    let mut timed: Vec<(i64, usize, usize, Event)> = sessions
        .iter()
        .flat_map(|s| {
            s.stamp(sent_at, earliest)
                .into_iter()
                .zip(&s.events)
                .enumerate()
                .map(|(i, (event, planned))| (planned.at_ms, s.index, i, event))
                .collect::<Vec<_>>()
        })
        .collect();
    timed.sort_by_key(|(at, session, i, _)| (*at, *session, *i));
    timed.into_iter().map(|(.., event)| event).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::FollowUp;
    use orders_core::activity::{ActivityKind, parse_activity_batch};
    use orders_core::{Caller, CustomerId};
    use std::collections::{BTreeMap, HashSet};

    fn settings(seed: u64, sessions: usize) -> Settings {
        Settings {
            seed,
            run_id: "sim-test".into(),
            catalog_prefix: "sim".into(),
            products: 200,
            customers: 500,
            stock: 1_000_000,
            zipf_exponent: 1.0,
            repeat_ratio: 0.7,
            invalid_ratio: 0.05,
            unknown_product_ratio: 0.02,
            cancel_ratio: 0.1,
            ship_ratio: 0.2,
            sessions: SessionSettings {
                sessions,
                ..SessionSettings::default()
            },
        }
    }

    fn sessions(seed: u64, n: usize) -> Vec<Session> {
        SessionGenerator::new(settings(seed, n)).collect()
    }

    const SENT_AT: i64 = 1_795_341_600_000; // 2026-11-22T10:00:00Z

    #[test]
    fn the_same_seed_gives_the_same_sessions_and_leaves_the_orders_alone() {
        let a = sessions(7, 200);
        assert_eq!(a.len(), 200);
        assert_eq!(a, sessions(7, 200));
        assert_ne!(a, sessions(8, 200));
        // More sessions extend the run's, they do not redraw them.
        assert_eq!(a[..50], sessions(7, 50)[..]);
        // The order traffic of a seed is the same with or without sessions.
        let orders = |s: Settings| {
            super::super::Generator::new(s)
                .take(300)
                .collect::<Vec<_>>()
        };
        assert_eq!(orders(settings(7, 0)), orders(settings(7, 500)));
        assert!(sessions(7, 0).is_empty());
    }

    /// Every batch of every session passes the API's own validation (`parse_activity_batch`,
    /// docs/activity.md "Validation") as staff, and as each signed-in session's customer.
    #[test]
    fn every_event_passes_the_documented_validation() {
        let all = sessions(3, 300);
        let events = stamped_events(&all, SENT_AT, SENT_AT - 3_600_000);
        let now = Timestamp::from_unix_millis(SENT_AT).unwrap();
        for chunk in events.chunks(MAX_BATCH_EVENTS) {
            let parsed = parse_activity_batch(&batch_body(chunk), &Caller::Staff, now)
                .unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(
                parsed.len(),
                chunk.len(),
                "no event is a duplicate of another"
            );
            for (sent, got) in chunk.iter().zip(&parsed) {
                assert_eq!(got.session_id.as_str(), sent.session_id);
                assert_eq!(got.event_id.as_str(), sent.event_id);
                assert_eq!(got.occurred_at.to_string(), sent.occurred_at);
                assert_eq!(
                    got.customer_id.as_ref().map(CustomerId::as_str),
                    sent.customer_id.as_deref()
                );
                assert_eq!(got.kind.event_type(), type_of(&sent.kind));
                if let (
                    ActivityKind::AddedToCart { quantity, .. },
                    EventKind::AddedToCart { quantity: q, .. },
                ) = (&got.kind, &sent.kind)
                {
                    assert_eq!(quantity.get(), *q);
                }
            }
        }
        // A customer's own token takes its session's events as they are.
        for s in all.iter().filter(|s| s.customer_id.is_some()).take(20) {
            let me = CustomerId::parse(s.customer_id.as_deref().unwrap()).unwrap();
            let own = s.stamp(SENT_AT, SENT_AT - 3_600_000);
            let parsed = parse_activity_batch(&batch_body(&own), &Caller::Customer(me), now);
            assert_eq!(parsed.map(|p| p.len()).ok(), Some(own.len()));
        }
        // Sent at once, the oldest event is well inside the 24 hours, none in the future.
        let ms = |e: &Event| Timestamp::parse(&e.occurred_at).unwrap().unix_millis();
        assert!(events.iter().all(|e| ms(e) <= SENT_AT));
        assert!(events.iter().all(|e| ms(e) > SENT_AT - 3 * 3_600_000));
        assert!(events.windows(2).all(|w| ms(&w[0]) <= ms(&w[1])));
    }

    fn type_of(kind: &EventKind) -> &'static str {
        match kind {
            EventKind::ProductViewed { .. } => "ProductViewed",
            EventKind::AddedToCart { .. } => "AddedToCart",
            EventKind::RemovedFromCart { .. } => "RemovedFromCart",
            EventKind::CheckoutStarted { .. } => "CheckoutStarted",
        }
    }

    /// Replays a session's cart events: (product, units) in the order first added.
    fn replay(events: &[PlannedEvent]) -> Vec<(String, u32)> {
        let mut cart: Vec<(String, u32)> = Vec::new();
        for e in events {
            match &e.kind {
                EventKind::AddedToCart {
                    product_id,
                    quantity,
                } => match cart.iter_mut().find(|(p, _)| p == product_id) {
                    Some((_, units)) => *units += quantity,
                    None => cart.push((product_id.clone(), *quantity)),
                },
                EventKind::RemovedFromCart {
                    product_id,
                    quantity,
                } => {
                    let i = cart
                        .iter()
                        .position(|(p, _)| p == product_id)
                        .expect("only what is in the cart is removed");
                    assert!(cart[i].1 >= *quantity, "no more than is in the cart");
                    cart[i].1 -= quantity;
                    if cart[i].1 == 0 {
                        cart.remove(i);
                    }
                }
                _ => {}
            }
        }
        cart
    }

    #[test]
    fn a_checkout_names_the_cart_and_an_order_buys_it() {
        let all = sessions(5, 2_000);
        let prices: BTreeMap<String, i64> = crate::traffic::catalog(&settings(5, 0))
            .into_iter()
            .map(|p| (p.id, p.price))
            .collect();
        let (mut checkouts, mut orders, mut removals) = (0, 0, 0);
        for s in &all {
            assert!(s.session_id.starts_with("sim-test-s"));
            assert!(!s.events.is_empty());
            assert!(matches!(s.events[0].kind, EventKind::ProductViewed { .. }));
            let ids: HashSet<&str> = s.events.iter().map(|e| e.event_id.as_str()).collect();
            assert_eq!(
                ids.len(),
                s.events.len(),
                "event ids are unique in a session"
            );
            assert!(s.events.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
            assert!(s.events.iter().all(|e| (-3_600_000..=0).contains(&e.at_ms)));
            let checkout: Vec<&Vec<String>> = s
                .events
                .iter()
                .filter_map(|e| match &e.kind {
                    EventKind::CheckoutStarted { cart } => Some(cart),
                    _ => None,
                })
                .collect();
            removals += s
                .events
                .iter()
                .filter(|e| matches!(e.kind, EventKind::RemovedFromCart { .. }))
                .count();
            let cart = replay(&s.events);
            let lines: Vec<(String, u32)> = s
                .cart
                .iter()
                .map(|l| (l.product_id.clone(), l.quantity))
                .collect();
            assert_eq!(lines, cart, "the session's cart is what its events left");
            match checkout.as_slice() {
                [] => assert!(s.order.is_none()),
                [named] => {
                    checkouts += 1;
                    assert!(matches!(
                        s.events.last().unwrap().kind,
                        EventKind::CheckoutStarted { .. }
                    ));
                    let products: Vec<String> = cart.iter().map(|(p, _)| p.clone()).collect();
                    assert_eq!(**named, products, "the checkout names the cart's products");
                    assert!(!named.is_empty() && named.len() <= MAX_CART_PRODUCTS);
                }
                more => panic!("one checkout per session, got {}", more.len()),
            }
            if let Some(order) = &s.order {
                orders += 1;
                assert_eq!(order.lines, s.cart, "the order is the cart");
                assert_eq!(order.seq, SESSION_ORDER_SEQ + s.index as u64);
                assert!(order.customer_id.starts_with("sim-test-c"));
                if let Some(me) = &s.customer_id {
                    assert_eq!(&order.customer_id, me);
                }
                assert!(!order.expect_failure);
                assert!(
                    order
                        .lines
                        .iter()
                        .all(|l| prices[&l.product_id] == l.unit_price)
                );
            }
        }
        // The ratios show: some sessions check out, some of those order, some are signed in.
        let signed_in = all.iter().filter(|s| s.customer_id.is_some()).count();
        assert!((700..900).contains(&signed_in), "{signed_in}");
        assert!(
            checkouts > 100 && orders > 50 && orders < checkouts,
            "{checkouts} {orders}"
        );
        assert!(removals > 100, "{removals}");
        assert!(
            all.iter().any(|s| s
                .order
                .as_ref()
                .is_some_and(|o| o.follow_up == FollowUp::Cancel)),
            "some session orders are cancelled"
        );
    }

    #[test]
    fn views_follow_the_orders_popularity() {
        let mut by_rank = vec![0u32; 200];
        for s in sessions(9, 3_000) {
            for e in &s.events {
                if let EventKind::ProductViewed { product_id } = &e.kind {
                    by_rank[product_id[5..].parse::<usize>().unwrap()] += 1;
                }
            }
        }
        let ratio = |a: usize, b: usize| f64::from(by_rank[a]) / f64::from(by_rank[b]);
        assert!((1.6..2.4).contains(&ratio(0, 1)), "{by_rank:?}");
        assert!((7.0..13.0).contains(&ratio(0, 9)), "{by_rank:?}");
    }

    #[test]
    fn session_settings_are_checked() {
        let ok = SessionSettings::default();
        assert!(ok.check("sim-42-1795341600000").is_ok());
        let bad = |f: fn(&mut SessionSettings)| {
            let mut s = SessionSettings::default();
            f(&mut s);
            s.check("run").is_err()
        };
        assert!(bad(|s| s.signed_in_ratio = 1.5));
        assert!(bad(|s| s.redeliver_ratio = -0.1));
        assert!(bad(|s| s.batch_events = 0));
        assert!(bad(|s| s.batch_events = 501));
        assert!(ok.check(&"r".repeat(57)).is_ok());
        assert!(ok.check(&"r".repeat(58)).is_err(), "64 characters at most");
        assert!(ok.check("run id").is_err());
        let none = SessionSettings {
            sessions: 0,
            ..SessionSettings::default()
        };
        assert!(none.check("run id").is_ok(), "no session, no session id");
    }
}
