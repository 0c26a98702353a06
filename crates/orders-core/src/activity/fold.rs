//! What each storefront event adds, to which bucket and item, and the in-memory fold that
//! collapses a batch into one delta per stored item — the order analytics' scheme
//! ([`crate::analytics`]) over other counters.
//!
//! # Stored items
//! Per bucket of the event's `occurredAt` (minute, hour, day: [`Bucket`]):
//! - `totals` ([`CounterItem::Totals`]): `views`, `cartAdds`, `cartRemoves`, `checkouts`;
//! - `products#NN` ([`CounterItem::Products`], [`PRODUCT_SHARDS`] shards by the system's
//!   one hash): per product `v#<id>`, `a#<id>`, `x#<id>`, `c#<id>` — views, cart adds,
//!   cart removes, checkouts whose cart held it. Stored in chained links capped in size
//!   exactly like the order analytics' product items;
//! - distinct sets, [`distinct::SHARDS`] shards each, exact up to [`distinct::EXACT_LIMIT`]
//!   ids per shard and a HyperLogLog sketch beyond ([`crate::distinct`]): `sessions#NN`
//!   (sessions with any event), `customers#NN` (signed-in customers with any event),
//!   `carted#NN` (sessions that added to cart), `checkedOut#NN` (sessions that started
//!   a checkout). Sets merge idempotently (union, register maximum).
//!
//! Counters count events, not units: a cart add of 3 is one cart add, comparable with the
//! order analytics' per-product `orders`. One event changes at most
//! [`crate::validation::MAX_ITEMS`] products (a checkout's cart), so its counters always fit
//! one write ([`crate::analytics::MAX_COUNTERS_PER_WRITE`]).

use super::{ActivityEvent, ActivityKind};
use crate::analytics::{Bucket, CounterItem, Granularity, PRODUCT_SHARDS};
use crate::distinct::{self, Distinct, DistinctOf, ShardSetOf};
use crate::ids::{CustomerId, ProductId, SessionId};
use crate::shard::shard_of;
use crate::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet};

/// The four activity counters, of a bucket or of one product in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub views: i64,
    pub cart_adds: i64,
    pub cart_removes: i64,
    pub checkouts: i64,
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.views += other.views;
        self.cart_adds += other.cart_adds;
        self.cart_removes += other.cart_removes;
        self.checkouts += other.checkouts;
    }

    pub fn is_zero(&self) -> bool {
        *self == Counts::default()
    }

    /// `(name, value)` of each counter, named for the totals item.
    fn named(&self) -> [(&'static str, i64); 4] {
        [
            ("views", self.views),
            ("cartAdds", self.cart_adds),
            ("cartRemoves", self.cart_removes),
            ("checkouts", self.checkouts),
        ]
    }

    /// `(prefix, value)` of each counter, as per-product attributes are named (`v#sku-1`).
    fn prefixed(&self) -> [(&'static str, i64); 4] {
        [
            ("v", self.views),
            ("a", self.cart_adds),
            ("x", self.cart_removes),
            ("c", self.checkouts),
        ]
    }

    /// The counter named `name` in the totals item, or `prefix` in a product's attributes.
    fn slot(&mut self, name_or_prefix: &str, product: bool) -> Option<&mut i64> {
        let names = if product {
            self.prefixed().map(|(n, _)| n)
        } else {
            self.named().map(|(n, _)| n)
        };
        let slots = [
            &mut self.views,
            &mut self.cart_adds,
            &mut self.cart_removes,
            &mut self.checkouts,
        ];
        names
            .iter()
            .zip(slots)
            .find_map(|(n, slot)| (*n == name_or_prefix).then_some(slot))
    }
}

/// Which sessions a session set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SessionSet {
    /// Sessions with any event.
    Active,
    /// Sessions that added to cart.
    Carted,
    /// Sessions that started a checkout.
    CheckedOut,
}

impl SessionSet {
    pub const ALL: [SessionSet; 3] = [
        SessionSet::Active,
        SessionSet::Carted,
        SessionSet::CheckedOut,
    ];

    /// The stored item's sort key within the bucket: `sessions#07`, `carted#07`, ….
    pub fn sort_key(&self, shard: u32) -> String {
        let name = match self {
            SessionSet::Active => "sessions",
            SessionSet::Carted => "carted",
            SessionSet::CheckedOut => "checkedOut",
        };
        format!("{name}#{shard:02}")
    }
}

/// What one event changes, independent of buckets (the same for all three granularities).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityEffect {
    /// The event's `occurredAt`: which buckets the effect lands in.
    pub at: Timestamp,
    pub totals: Counts,
    pub products: Vec<(ProductId, Counts)>,
    pub session: SessionId,
    /// The session sets it joins besides [`SessionSet::Active`].
    pub sets: Vec<SessionSet>,
    pub customer: Option<CustomerId>,
}

impl ActivityEffect {
    pub fn of(event: &ActivityEvent) -> Self {
        let one = |f: fn(&mut Counts)| {
            let mut c = Counts::default();
            f(&mut c);
            c
        };
        let (totals, products, sets) = match &event.kind {
            ActivityKind::ProductViewed { product_id } => {
                let c = one(|c| c.views = 1);
                (c, vec![(product_id.clone(), c)], vec![])
            }
            ActivityKind::AddedToCart { product_id, .. } => {
                let c = one(|c| c.cart_adds = 1);
                (c, vec![(product_id.clone(), c)], vec![SessionSet::Carted])
            }
            ActivityKind::RemovedFromCart { product_id, .. } => {
                let c = one(|c| c.cart_removes = 1);
                (c, vec![(product_id.clone(), c)], vec![])
            }
            ActivityKind::CheckoutStarted { cart } => {
                let c = one(|c| c.checkouts = 1);
                let products = cart.iter().map(|p| (p.clone(), c)).collect();
                (c, products, vec![SessionSet::CheckedOut])
            }
        };
        Self {
            at: event.occurred_at,
            totals,
            products,
            session: event.session_id.clone(),
            sets,
            customer: event.customer_id.clone(),
        }
    }
}

/// The change to one counter item (`totals` or a `products#NN`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActivityDelta {
    pub totals: Counts,
    pub products: BTreeMap<ProductId, Counts>,
}

impl ActivityDelta {
    pub fn add(&mut self, other: &ActivityDelta) {
        self.totals.add(&other.totals);
        for (id, c) in &other.products {
            self.products.entry(id.clone()).or_default().add(c);
        }
    }

    pub fn is_zero(&self) -> bool {
        self.totals.is_zero() && self.products.values().all(Counts::is_zero)
    }

    /// `(attribute, delta)` pairs as stored; zero deltas are left out.
    pub fn attributes(&self) -> Vec<(String, i64)> {
        let totals = self.totals.named().map(|(n, v)| (n.to_owned(), v));
        let products = self.products.iter().flat_map(|(id, c)| {
            c.prefixed()
                .map(|(prefix, v)| (format!("{prefix}#{id}"), v))
        });
        totals
            .into_iter()
            .chain(products)
            .filter(|(_, v)| *v != 0)
            .collect()
    }
}

/// Everything stored for one bucket — or a window, merged over its buckets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActivityView {
    pub totals: Counts,
    pub products: BTreeMap<ProductId, Counts>,
    pub sessions: DistinctOf<SessionId>,
    pub carted: DistinctOf<SessionId>,
    pub checked_out: DistinctOf<SessionId>,
    pub customers: Distinct,
}

impl ActivityView {
    /// Adds a stored counter (`views`, `a#sku-1`, …); unknown names are ignored so old
    /// readers survive new counters.
    pub fn add_counter(&mut self, name: &str, value: i64) {
        if let Some(slot) = self.totals.slot(name, false) {
            *slot += value;
        } else if let Some((prefix, id)) = name.split_once('#')
            && value != 0
            && Counts::default().slot(prefix, true).is_some()
            && let Ok(id) = ProductId::parse(id)
        {
            let counts = self.products.entry(id).or_default();
            if let Some(slot) = counts.slot(prefix, true) {
                *slot += value;
            }
        }
    }

    /// The session set `set` of this view.
    pub fn session_set(&mut self, set: SessionSet) -> &mut DistinctOf<SessionId> {
        match set {
            SessionSet::Active => &mut self.sessions,
            SessionSet::Carted => &mut self.carted,
            SessionSet::CheckedOut => &mut self.checked_out,
        }
    }

    /// Adds another bucket's view: counters add up, sets are unioned (so a window's
    /// distinct counts are of the window, not sums of its buckets').
    pub fn merge(&mut self, other: &ActivityView) {
        self.totals.add(&other.totals);
        for (id, c) in &other.products {
            self.products.entry(id.clone()).or_default().add(c);
        }
        self.sessions.merge(&other.sessions);
        self.carted.merge(&other.carted);
        self.checked_out.merge(&other.checked_out);
        self.customers.merge(&other.customers);
    }

    /// Every set in its stored form (what a bucket of these ids holds).
    pub fn bounded(&self) -> ActivityView {
        ActivityView {
            totals: self.totals,
            products: self.products.clone(),
            sessions: self.sessions.bounded(),
            carted: self.carted.bounded(),
            checked_out: self.checked_out.bounded(),
            customers: self.customers.bounded(),
        }
    }
}

/// Collapses effects into one delta per counter item and one id set per set shard: the
/// writes a batch needs are the keys here, bounded by buckets × shards touched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityFold {
    pub counters: BTreeMap<CounterItem, ActivityDelta>,
    pub sessions: BTreeMap<(Bucket, SessionSet, u32), BTreeSet<SessionId>>,
    pub customers: BTreeMap<(Bucket, u32), BTreeSet<CustomerId>>,
}

impl ActivityFold {
    pub fn add(&mut self, effect: &ActivityEffect) {
        let session_shard = shard_of(effect.session.as_str(), distinct::SHARDS);
        for granularity in Granularity::ALL {
            let bucket = Bucket::containing(granularity, effect.at);
            if !effect.totals.is_zero() {
                self.counters
                    .entry(CounterItem::Totals(bucket))
                    .or_default()
                    .totals
                    .add(&effect.totals);
            }
            for (product, delta) in &effect.products {
                let item =
                    CounterItem::Products(bucket, shard_of(product.as_str(), PRODUCT_SHARDS));
                self.counters
                    .entry(item)
                    .or_default()
                    .products
                    .entry(product.clone())
                    .or_default()
                    .add(delta);
            }
            for set in std::iter::once(&SessionSet::Active).chain(&effect.sets) {
                self.sessions
                    .entry((bucket, *set, session_shard))
                    .or_default()
                    .insert(effect.session.clone());
            }
            if let Some(customer) = &effect.customer {
                let shard = shard_of(customer.as_str(), distinct::SHARDS);
                self.customers
                    .entry((bucket, shard))
                    .or_default()
                    .insert(customer.clone());
            }
        }
    }

    pub fn add_event(&mut self, event: &ActivityEvent) {
        self.add(&ActivityEffect::of(event));
    }

    /// Adds another fold (what the store does with each batch's deltas and sets).
    pub fn merge(&mut self, other: &ActivityFold) {
        for (item, delta) in &other.counters {
            self.counters.entry(item.clone()).or_default().add(delta);
        }
        for (key, ids) in &other.sessions {
            self.sessions
                .entry(*key)
                .or_default()
                .extend(ids.iter().cloned());
        }
        for (key, ids) in &other.customers {
            self.customers
                .entry(*key)
                .or_default()
                .extend(ids.iter().cloned());
        }
    }

    /// Every bucket's view in one pass, shaped like what the store returns for it.
    pub fn views(&self) -> BTreeMap<Bucket, ActivityView> {
        let mut out: BTreeMap<Bucket, ActivityView> = BTreeMap::new();
        for (item, delta) in &self.counters {
            let view = out.entry(item.bucket()).or_default();
            for (name, value) in delta.attributes() {
                view.add_counter(&name, value);
            }
        }
        for ((bucket, set, shard), ids) in &self.sessions {
            out.entry(*bucket)
                .or_default()
                .session_set(*set)
                .add_shard(*shard, &ShardSetOf::Exact(ids.clone()));
        }
        for ((bucket, shard), ids) in &self.customers {
            out.entry(*bucket)
                .or_default()
                .customers
                .add_shard(*shard, &ShardSetOf::Exact(ids.clone()));
        }
        out
    }

    /// The buckets this fold touches.
    pub fn buckets(&self) -> BTreeSet<Bucket> {
        self.counters
            .keys()
            .map(CounterItem::bucket)
            .chain(self.sessions.keys().map(|(b, _, _)| *b))
            .chain(self.customers.keys().map(|(b, _)| *b))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ActivityEventId;
    use crate::money::Quantity;

    fn event(id: &str, session: &str, at: &str, kind: ActivityKind) -> ActivityEvent {
        ActivityEvent {
            event_id: ActivityEventId::parse(id).unwrap(),
            session_id: SessionId::parse(session).unwrap(),
            customer_id: None,
            occurred_at: Timestamp::parse(at).unwrap(),
            kind,
        }
    }

    fn sku(s: &str) -> ProductId {
        ProductId::parse(s).unwrap()
    }

    #[test]
    fn each_event_adds_its_counters_products_and_sets() {
        let at = "2026-11-22T10:31:00Z";
        let mut fold = ActivityFold::default();
        let mut signed_in = event(
            "e-1",
            "s-1",
            at,
            ActivityKind::ProductViewed {
                product_id: sku("p-1"),
            },
        );
        signed_in.customer_id = Some(CustomerId::parse("c-1").unwrap());
        for e in [
            signed_in,
            event(
                "e-2",
                "s-1",
                at,
                ActivityKind::AddedToCart {
                    product_id: sku("p-1"),
                    quantity: Quantity::new(3).unwrap(),
                },
            ),
            event(
                "e-3",
                "s-2",
                at,
                ActivityKind::RemovedFromCart {
                    product_id: sku("p-2"),
                    quantity: Quantity::new(1).unwrap(),
                },
            ),
            event(
                "e-4",
                "s-1",
                at,
                ActivityKind::CheckoutStarted {
                    cart: vec![sku("p-1"), sku("p-3")],
                },
            ),
        ] {
            fold.add_event(&e);
        }
        let minute = Bucket::containing(Granularity::Minute, Timestamp::parse(at).unwrap());
        let view = &fold.views()[&minute];
        assert_eq!(
            view.totals,
            Counts {
                views: 1,
                cart_adds: 1,
                cart_removes: 1,
                checkouts: 1
            }
        );
        assert_eq!(
            view.products[&sku("p-1")],
            Counts {
                views: 1,
                cart_adds: 1,
                cart_removes: 0,
                checkouts: 1
            }
        );
        assert_eq!(view.products[&sku("p-2")].cart_removes, 1);
        assert_eq!(view.products[&sku("p-3")].checkouts, 1);
        assert_eq!(view.sessions.count().value, 2);
        assert_eq!(view.carted.count().value, 1);
        assert_eq!(view.checked_out.count().value, 1);
        assert_eq!(view.customers.count().value, 1);
        assert_eq!(fold.buckets().len(), 3, "minute, hour and day");
        let attributes = fold.counters[&CounterItem::Totals(minute)].attributes();
        assert_eq!(attributes.len(), 4);
        assert!(
            fold.counters
                .values()
                .all(|d| d.attributes().len() <= crate::analytics::MAX_COUNTERS_PER_WRITE)
        );
    }

    #[test]
    fn stored_attribute_names_read_back_and_unknown_ones_are_ignored() {
        let mut view = ActivityView::default();
        for (name, value) in [
            ("views", 2),
            ("v#p-1", 2),
            ("a#p-1", 1),
            ("x#p-1", 1),
            ("c#p-1", 1),
            ("q#p-1", 9),
            ("later", 9),
            ("wm#shard-1", 9),
        ] {
            view.add_counter(name, value);
        }
        assert_eq!(view.totals.views, 2);
        assert_eq!(view.products.len(), 1, "{view:?}");
        assert_eq!(
            view.products[&sku("p-1")],
            Counts {
                views: 2,
                cart_adds: 1,
                cart_removes: 1,
                checkouts: 1
            }
        );
    }
}
