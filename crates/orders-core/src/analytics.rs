//! Time-bucketed analytics: what each order event contributes to which bucket, and the
//! in-memory fold that collapses a batch into one delta per stored item.
//!
//! # Semantics
//! Every order belongs to the buckets of its `createdAt` (UTC) at three granularities.
//! Per bucket: `orders` placed; `processed`, `failed`, `cancelled` — orders of the bucket
//! that reached that status (cancelled after processing counts in both; `failed` counts the
//! orders failed now, so a retry takes its order out of it); `revenue` and
//! `units` of processed orders minus those later cancelled; per product `units`, `revenue`
//! and `orders` of processed-not-cancelled orders; the current count per status; and the
//! distinct customers who placed an order.
//!
//! # Stored items
//! Per bucket (`m#2026-11-22T10:31`, `h#2026-11-22T10`, `d#2026-11-22`):
//! - `totals` — the counters;
//! - `products#NN` — per-product counters for the products hashed to shard `NN`, so no
//!   item grows with the whole catalog (a write costs one unit per KB of the item);
//! - `customers#NN` — the bucket's customers hashed to shard `NN`: a string set of ids up
//!   to 64, a 256-byte HyperLogLog sketch beyond ([`crate::distinct`]). Both merge
//!   idempotently, so these need no deduplication, and neither grows with the ids sent.

use crate::distinct::{self, Distinct, ShardSet};
use crate::event::{EventEnvelope, OrderEvent};
use crate::ids::{CustomerId, ProductId};
use crate::order::{Order, OrderStatus};
use crate::shard::shard_of;
use crate::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Product shards per bucket. At 40 bytes per product entry, a 1 KB item holds ~25
/// products, so 16 shards keep items under a write unit for catalogs of ~400 products
/// active per bucket; larger catalogs pay proportionally more per write, never more writes.
/// A shard that outgrows the adapter's item cap continues in further items (see
/// `orders_aws::dynamo::chain`): no item grows without bound, and a write still goes to one.
pub const PRODUCT_SHARDS: u32 = 16;

/// Counters one write may change. DynamoDB refuses an update expression over 4 KB or with
/// more than 300 operations; 297 `ADD #aN :vN` clauses plus the watermark's `SET` stay under
/// both, and one order (at most 99 lines, three counters each) always fits in one write.
pub const MAX_COUNTERS_PER_WRITE: usize = 3 * crate::validation::MAX_ITEMS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Granularity {
    Minute,
    Hour,
    Day,
}

impl Granularity {
    pub const ALL: [Granularity; 3] = [Granularity::Minute, Granularity::Hour, Granularity::Day];

    pub fn seconds(&self) -> i64 {
        match self {
            Granularity::Minute => 60,
            Granularity::Hour => 3_600,
            Granularity::Day => 86_400,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Granularity::Minute => "minute",
            Granularity::Hour => "hour",
            Granularity::Day => "day",
        }
    }
}

/// The start of a bucket at some granularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bucket {
    pub granularity: Granularity,
    /// Seconds since the Unix epoch, a multiple of the granularity.
    pub start: i64,
}

impl Bucket {
    pub fn containing(granularity: Granularity, at: Timestamp) -> Self {
        let seconds = at.unix_seconds();
        Self {
            granularity,
            start: seconds - seconds.rem_euclid(granularity.seconds()),
        }
    }

    pub fn start_time(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.start * 1000).expect("bucket starts are valid times")
    }

    pub fn next(&self) -> Self {
        Self {
            granularity: self.granularity,
            start: self.start + self.granularity.seconds(),
        }
    }
}

/// The partition key: `m#2026-11-22T10:31`, `h#2026-11-22T10`, `d#2026-11-22`.
impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.start_time().to_string(); // 2026-11-22T10:31:00.000Z
        match self.granularity {
            Granularity::Minute => write!(f, "m#{}", &text[..16]),
            Granularity::Hour => write!(f, "h#{}", &text[..13]),
            Granularity::Day => write!(f, "d#{}", &text[..10]),
        }
    }
}

/// Counters of a bucket. Signed: a cancellation subtracts revenue added by processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub orders: i64,
    pub processed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub revenue: i64,
    pub units: i64,
    /// Orders of the bucket currently in each status, indexed like [`OrderStatus::ALL`].
    pub by_status: [i64; 6],
}

impl Totals {
    pub fn add(&mut self, other: &Totals) {
        self.orders += other.orders;
        self.processed += other.processed;
        self.failed += other.failed;
        self.cancelled += other.cancelled;
        self.revenue += other.revenue;
        self.units += other.units;
        for (a, b) in self.by_status.iter_mut().zip(other.by_status) {
            *a += b;
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == Totals::default()
    }

    /// `(attribute, delta)` pairs as stored; zero deltas are left out.
    pub fn attributes(&self) -> Vec<(String, i64)> {
        let mut out = vec![
            ("orders".to_owned(), self.orders),
            ("processed".to_owned(), self.processed),
            ("failed".to_owned(), self.failed),
            ("cancelled".to_owned(), self.cancelled),
            ("revenue".to_owned(), self.revenue),
            ("units".to_owned(), self.units),
        ];
        for (status, n) in OrderStatus::ALL.iter().zip(self.by_status) {
            out.push((format!("status#{status}"), n));
        }
        out.retain(|(_, n)| *n != 0);
        out
    }

    fn move_status(&mut self, from: Option<OrderStatus>, to: OrderStatus) {
        if let Some(from) = from {
            self.by_status[status_index(from)] -= 1;
        }
        self.by_status[status_index(to)] += 1;
    }
}

fn status_index(status: OrderStatus) -> usize {
    OrderStatus::ALL
        .iter()
        .position(|s| *s == status)
        .expect("every status is listed")
}

/// Per-product counters (processed, not cancelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProductTotals {
    pub units: i64,
    pub revenue: i64,
    pub orders: i64,
}

impl ProductTotals {
    pub fn add(&mut self, other: &ProductTotals) {
        self.units += other.units;
        self.revenue += other.revenue;
        self.orders += other.orders;
    }
}

/// What one event changes, independent of buckets (the same for all three granularities).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    /// The order's `createdAt`: which buckets the effect lands in.
    pub created_at: Timestamp,
    pub totals: Totals,
    pub products: Vec<(ProductId, ProductTotals)>,
    /// The customer, for `OrderPlaced` (distinct customers who placed an order).
    pub customer: Option<CustomerId>,
}

impl Effect {
    /// The contribution of `event`. Every event type contributes (at least a status move).
    pub fn of(event: &EventEnvelope) -> Effect {
        let order = event.event.order();
        let mut totals = Totals::default();
        let mut products = Vec::new();
        let mut customer = None;
        match &event.event {
            OrderEvent::OrderPlaced { .. } => {
                totals.orders = 1;
                totals.move_status(None, OrderStatus::Pending);
                customer = Some(order.customer_id.clone());
            }
            OrderEvent::OrderProcessed { .. } => {
                totals.processed = 1;
                totals.revenue = order.total.minor();
                totals.units = units(order);
                totals.move_status(Some(OrderStatus::Pending), OrderStatus::Processed);
                products = product_lines(order, 1);
            }
            OrderEvent::OrderFailed { .. } => {
                totals.failed = 1;
                totals.move_status(Some(OrderStatus::Pending), OrderStatus::Failed);
            }
            // The order is no longer failed, and is the same order: `orders` and the
            // customers stay as placement counted them, so a retried order that is then
            // processed counts as one order, processed, not failed — as its state says
            // (`Fold::add_order`).
            OrderEvent::OrderRetried { .. } => {
                totals.failed = -1;
                totals.move_status(Some(OrderStatus::Failed), OrderStatus::Pending);
            }
            OrderEvent::OrderCancelled {
                previous_status, ..
            } => {
                totals.cancelled = 1;
                totals.move_status(Some(*previous_status), OrderStatus::Cancelled);
                if *previous_status == OrderStatus::Processed {
                    totals.revenue = -order.total.minor();
                    totals.units = -units(order);
                    products = product_lines(order, -1);
                }
            }
            OrderEvent::OrderShipped { .. } => {
                totals.move_status(Some(OrderStatus::Processed), OrderStatus::Shipped)
            }
            OrderEvent::OrderDelivered { .. } => {
                totals.move_status(Some(OrderStatus::Shipped), OrderStatus::Delivered)
            }
        }
        Effect {
            created_at: order.created_at,
            totals,
            products,
            customer,
        }
    }
}

fn units(order: &Order) -> i64 {
    i64::try_from(order.units()).unwrap_or(i64::MAX)
}

fn product_lines(order: &Order, sign: i64) -> Vec<(ProductId, ProductTotals)> {
    order
        .items
        .iter()
        .map(|item| {
            (
                item.product_id.clone(),
                ProductTotals {
                    units: sign * i64::from(item.quantity.get()),
                    revenue: sign * item.line_total.minor(),
                    orders: sign,
                },
            )
        })
        .collect()
}

/// A stored item that counters land in. Customer sets are handled apart (they are
/// idempotent sets, not counters).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CounterItem {
    Totals(Bucket),
    Products(Bucket, u32),
}

impl CounterItem {
    pub fn bucket(&self) -> Bucket {
        match self {
            CounterItem::Totals(b) | CounterItem::Products(b, _) => *b,
        }
    }

    /// The sort key within the bucket's partition.
    pub fn sort_key(&self) -> String {
        match self {
            CounterItem::Totals(_) => "totals".to_owned(),
            CounterItem::Products(_, shard) => format!("products#{shard:02}"),
        }
    }
}

/// The change to one counter item.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ItemDelta {
    pub totals: Totals,
    pub products: BTreeMap<ProductId, ProductTotals>,
}

impl ItemDelta {
    pub fn is_zero(&self) -> bool {
        self.totals.is_zero()
            && self
                .products
                .values()
                .all(|p| *p == ProductTotals::default())
    }

    /// Takes `other` away (what records still to come will add back).
    pub fn subtract(&mut self, other: &ItemDelta) {
        let t = &mut self.totals;
        let o = &other.totals;
        t.orders -= o.orders;
        t.processed -= o.processed;
        t.failed -= o.failed;
        t.cancelled -= o.cancelled;
        t.revenue -= o.revenue;
        t.units -= o.units;
        for (a, b) in t.by_status.iter_mut().zip(o.by_status) {
            *a -= b;
        }
        for (id, p) in &other.products {
            let mine = self.products.entry(id.clone()).or_default();
            mine.units -= p.units;
            mine.revenue -= p.revenue;
            mine.orders -= p.orders;
        }
    }

    /// How many counters [`ItemDelta::attributes`] holds, without building them.
    pub fn counter_count(&self) -> usize {
        let t = &self.totals;
        [
            t.orders,
            t.processed,
            t.failed,
            t.cancelled,
            t.revenue,
            t.units,
        ]
        .into_iter()
        .chain(t.by_status)
        .chain(
            self.products
                .values()
                .flat_map(|p| [p.units, p.revenue, p.orders]),
        )
        .filter(|n| *n != 0)
        .count()
    }

    /// `(attribute, delta)` pairs: totals by name, products as `u#id`, `r#id`, `o#id`.
    pub fn attributes(&self) -> Vec<(String, i64)> {
        let mut out = self.totals.attributes();
        for (id, p) in &self.products {
            for (prefix, n) in [("u", p.units), ("r", p.revenue), ("o", p.orders)] {
                if n != 0 {
                    out.push((format!("{prefix}#{id}"), n));
                }
            }
        }
        out
    }
}

/// Everything stored for one bucket, merged across its shard items.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BucketView {
    pub totals: Totals,
    pub products: BTreeMap<ProductId, ProductTotals>,
    pub customers: Distinct,
}

impl BucketView {
    /// Adds a stored counter (`orders`, `status#FAILED`, `u#sku-1`, …); unknown names are
    /// ignored so old readers survive new counters.
    pub fn add_counter(&mut self, name: &str, value: i64) {
        let t = &mut self.totals;
        match name {
            "orders" => t.orders += value,
            "processed" => t.processed += value,
            "failed" => t.failed += value,
            "cancelled" => t.cancelled += value,
            "revenue" => t.revenue += value,
            "units" => t.units += value,
            _ => {
                if let Some(status) = name.strip_prefix("status#") {
                    if let Ok(status) = status.parse::<OrderStatus>() {
                        t.by_status[status_index(status)] += value;
                    }
                } else if let Some((kind, id)) = name.split_once('#')
                    && value != 0
                    && let Ok(id) = ProductId::parse(id)
                {
                    let p = self.products.entry(id).or_default();
                    match kind {
                        "u" => p.units += value,
                        "r" => p.revenue += value,
                        "o" => p.orders += value,
                        _ => {}
                    }
                }
            }
        }
    }
}

/// A record's place in the stream, comparable as text: `<shard>/<64-digit sequence>`.
pub fn position(shard: &str, sequence_number: &str) -> String {
    format!("{shard}/{}", crate::sequence::pad(sequence_number))
}

/// Collapses effects into one delta per counter item and one id set per customer shard.
/// The number of writes a batch needs is the number of keys here — bounded by buckets ×
/// shards touched, not by the number of records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fold {
    pub counters: BTreeMap<CounterItem, ItemDelta>,
    pub customers: BTreeMap<(Bucket, u32), BTreeSet<CustomerId>>,
}

impl Fold {
    pub fn add(&mut self, effect: &Effect) {
        for granularity in Granularity::ALL {
            let bucket = Bucket::containing(granularity, effect.created_at);
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
            if let Some(customer) = &effect.customer {
                let shard = shard_of(customer.as_str(), distinct::SHARDS);
                self.customers
                    .entry((bucket, shard))
                    .or_default()
                    .insert(customer.clone());
            }
        }
    }

    /// Adds what all of `order`'s events so far add up to, from its current state alone —
    /// how analytics are rebuilt from the orders table (the source of truth).
    pub fn add_order(&mut self, order: &Order) {
        let mut totals = Totals {
            orders: 1,
            processed: i64::from(order.processed_at.is_some()),
            failed: i64::from(order.status == OrderStatus::Failed),
            cancelled: i64::from(order.status == OrderStatus::Cancelled),
            ..Totals::default()
        };
        totals.by_status[status_index(order.status)] = 1;
        // Processed and not cancelled: shipped and delivered orders keep their revenue.
        let counted = order.processed_at.is_some() && order.status != OrderStatus::Cancelled;
        if counted {
            totals.revenue = order.total.minor();
            totals.units = units(order);
        }
        self.add(&Effect {
            created_at: order.created_at,
            totals,
            products: if counted {
                product_lines(order, 1)
            } else {
                Vec::new()
            },
            customer: Some(order.customer_id.clone()),
        });
    }

    /// Every bucket's view in one pass (calling [`Fold::view`] per bucket is quadratic).
    pub fn views(&self) -> BTreeMap<Bucket, BucketView> {
        let mut out: BTreeMap<Bucket, BucketView> = BTreeMap::new();
        for (item, delta) in &self.counters {
            let view = out.entry(item.bucket()).or_default();
            for (name, value) in delta.attributes() {
                view.add_counter(&name, value);
            }
        }
        for ((bucket, shard), ids) in &self.customers {
            out.entry(*bucket)
                .or_default()
                .customers
                .add_shard(*shard, &ShardSet::Exact(ids.clone()));
        }
        out
    }

    /// What this fold holds for `bucket`, shaped like what the store returns for it.
    pub fn view(&self, bucket: &Bucket) -> BucketView {
        let mut view = BucketView::default();
        for (_, delta) in self
            .counters
            .iter()
            .filter(|(item, _)| item.bucket() == *bucket)
        {
            for (name, value) in delta.attributes() {
                view.add_counter(&name, value);
            }
        }
        for ((b, shard), ids) in &self.customers {
            if b == bucket {
                view.customers
                    .add_shard(*shard, &ShardSet::Exact(ids.clone()));
            }
        }
        view
    }

    /// The buckets this fold touches.
    pub fn buckets(&self) -> BTreeSet<Bucket> {
        self.counters
            .keys()
            .map(CounterItem::bucket)
            .chain(self.customers.keys().map(|(b, _)| *b))
            .collect()
    }

    /// The counter items one effect touches (to know which records an item's delta holds).
    pub fn items_of(effect: &Effect) -> BTreeSet<CounterItem> {
        let mut fold = Fold::default();
        fold.add(effect);
        fold.counters.into_keys().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::OrderId;
    use crate::money::{Currency, Money, Quantity};
    use crate::order::{FailureReason, NewLineItem, PlaceOrder};

    fn order(at: &str) -> Order {
        let command = PlaceOrder {
            customer_id: CustomerId::parse("c-1").unwrap(),
            currency: Currency::parse("USD").unwrap(),
            items: vec![
                NewLineItem {
                    product_id: ProductId::parse("sku-1").unwrap(),
                    quantity: Quantity::new(2).unwrap(),
                    unit_price: Money::from_minor(500).unwrap(),
                },
                NewLineItem {
                    product_id: ProductId::parse("sku-2").unwrap(),
                    quantity: Quantity::new(1).unwrap(),
                    unit_price: Money::from_minor(300).unwrap(),
                },
            ],
        };
        Order::place(
            OrderId::new(ulid::Ulid::from_parts(1, 1)),
            &command,
            Timestamp::parse(at).unwrap(),
        )
    }

    #[test]
    fn buckets_are_utc_aligned_and_named() {
        let at = Timestamp::parse("2026-11-22T10:31:59.999Z").unwrap();
        assert_eq!(
            Bucket::containing(Granularity::Minute, at).to_string(),
            "m#2026-11-22T10:31"
        );
        assert_eq!(
            Bucket::containing(Granularity::Hour, at).to_string(),
            "h#2026-11-22T10"
        );
        assert_eq!(
            Bucket::containing(Granularity::Day, at).to_string(),
            "d#2026-11-22"
        );
        let minute = Bucket::containing(Granularity::Minute, at);
        assert_eq!(minute.next().to_string(), "m#2026-11-22T10:32");
    }

    #[test]
    fn an_order_processed_then_cancelled_counts_in_both_and_leaves_no_revenue() {
        let placed = order("2026-11-22T10:31:00Z");
        let now = Timestamp::parse("2026-11-22T10:35:00Z").unwrap();
        let processed = placed.transition(OrderStatus::Processed, now).unwrap();
        let cancelled = processed.transition(OrderStatus::Cancelled, now).unwrap();
        let mut fold = Fold::default();
        for event in [
            OrderEvent::placed(placed.clone()),
            OrderEvent::OrderProcessed { order: processed },
            OrderEvent::for_current_state(&cancelled),
        ] {
            fold.add(&Effect::of(&EventEnvelope::new(event)));
        }
        let minute = Bucket::containing(Granularity::Minute, placed.created_at);
        let totals = fold.counters[&CounterItem::Totals(minute)].totals;
        assert_eq!(
            (totals.orders, totals.processed, totals.cancelled),
            (1, 1, 1)
        );
        assert_eq!((totals.revenue, totals.units), (0, 0));
        assert_eq!(totals.by_status, [0, 0, 0, 0, 0, 1]);
        let products = fold
            .counters
            .iter()
            .filter(|(k, _)| matches!(k, CounterItem::Products(..)));
        for (_, delta) in products {
            assert!(delta.is_zero(), "{delta:?}");
        }
        assert_eq!(fold.customers.len(), 3, "one customer set per granularity");
    }

    #[test]
    fn an_orders_state_adds_up_to_its_events() {
        let placed = order("2026-11-22T10:31:00Z");
        let now = Timestamp::parse("2026-11-22T10:35:00Z").unwrap();
        let processed = placed.transition(OrderStatus::Processed, now).unwrap();
        let shipped = processed.transition(OrderStatus::Shipped, now).unwrap();
        let cancelled = processed.transition(OrderStatus::Cancelled, now).unwrap();
        let failed = placed.fail(FailureReason::UnknownProduct, now).unwrap();
        let short = placed.fail(FailureReason::OutOfStock, now).unwrap();
        let retried = short.retry(&[], now).unwrap();
        let repriced_catalog = [crate::product::Product {
            product_id: ProductId::parse("sku-1").unwrap(),
            name: "sku-1".into(),
            price: Money::from_minor(650).unwrap(),
            stock: 10,
            version: 2,
            updated_at: now,
        }];
        let price_failed = retried.fail(FailureReason::PriceChanged, now).unwrap();
        let repriced = price_failed.retry(&repriced_catalog, now).unwrap();
        assert_ne!(
            repriced.total, placed.total,
            "the second retry re-priced it"
        );
        let repriced_processed = repriced.transition(OrderStatus::Processed, now).unwrap();
        for history in [
            vec![placed.clone(), short.clone(), retried.clone()],
            vec![
                placed.clone(),
                short.clone(),
                retried.clone(),
                retried.transition(OrderStatus::Processed, now).unwrap(),
            ],
            vec![
                placed.clone(),
                short.clone(),
                retried.clone(),
                price_failed.clone(),
            ],
            vec![
                placed.clone(),
                short.clone(),
                retried.clone(),
                price_failed.clone(),
                repriced.clone(),
                repriced_processed.clone(),
                repriced_processed
                    .transition(OrderStatus::Cancelled, now)
                    .unwrap(),
            ],
            vec![
                placed.clone(),
                short.clone(),
                retried.clone(),
                price_failed.clone(),
                repriced.clone(),
                repriced_processed.clone(),
                repriced_processed
                    .transition(OrderStatus::Shipped, now)
                    .unwrap(),
            ],
            vec![placed.clone()],
            vec![placed.clone(), processed.clone()],
            vec![placed.clone(), processed.clone(), shipped.clone()],
            vec![placed.clone(), processed.clone(), cancelled.clone()],
            vec![
                placed.clone(),
                placed.transition(OrderStatus::Cancelled, now).unwrap(),
            ],
            vec![placed.clone(), failed.clone()],
        ] {
            let mut by_events = Fold::default();
            for state in &history {
                by_events.add(&Effect::of(&EventEnvelope::new(
                    OrderEvent::for_current_state(state),
                )));
            }
            let mut by_state = Fold::default();
            by_state.add_order(history.last().unwrap());
            let views = by_events.views();
            assert_eq!(
                views.keys().copied().collect::<BTreeSet<_>>(),
                by_events.buckets()
            );
            for (bucket, view) in &views {
                assert_eq!(*view, by_events.view(bucket), "one pass equals per bucket");
            }
            for bucket in by_events.buckets() {
                let mut a = by_events.view(&bucket);
                a.products.retain(|_, p| *p != ProductTotals::default());
                assert_eq!(
                    a,
                    by_state.view(&bucket),
                    "{:?}",
                    history.last().unwrap().status
                );
            }
        }
    }

    #[test]
    fn the_counter_count_is_the_number_of_attributes() {
        let placed = order("2026-11-22T10:31:00Z");
        let processed = placed
            .transition(OrderStatus::Processed, Timestamp::now())
            .unwrap();
        let mut fold = Fold::default();
        fold.add(&Effect::of(&EventEnvelope::new(
            OrderEvent::for_current_state(&processed),
        )));
        for delta in fold.counters.values() {
            assert_eq!(delta.counter_count(), delta.attributes().len(), "{delta:?}");
        }
        assert_eq!(ItemDelta::default().counter_count(), 0);
    }

    #[test]
    fn failed_orders_move_status_only() {
        let placed = order("2026-11-22T23:59:59Z");
        let failed = placed
            .fail(FailureReason::OutOfStock, Timestamp::now())
            .unwrap();
        let effect = Effect::of(&EventEnvelope::new(OrderEvent::for_current_state(&failed)));
        assert_eq!(effect.totals.failed, 1);
        assert_eq!(effect.totals.by_status, [-1, 0, 1, 0, 0, 0]);
        assert!(effect.products.is_empty() && effect.customer.is_none());
        let attrs = effect.totals.attributes();
        assert_eq!(
            attrs,
            vec![
                ("failed".into(), 1),
                ("status#PENDING".into(), -1),
                ("status#FAILED".into(), 1)
            ]
        );
    }

    #[test]
    fn a_retried_order_that_is_then_processed_counts_once_as_processed() {
        let placed = order("2026-11-22T10:31:00Z");
        let now = Timestamp::parse("2026-11-22T10:35:00Z").unwrap();
        let failed = placed.fail(FailureReason::OutOfStock, now).unwrap();
        let retried = failed.retry(&[], now).unwrap();
        let effect = Effect::of(&EventEnvelope::new(OrderEvent::for_current_state(&retried)));
        assert_eq!(effect.totals.failed, -1);
        assert_eq!(effect.totals.orders, 0, "the same order, not another");
        assert_eq!(effect.totals.by_status, [1, 0, -1, 0, 0, 0]);
        assert!(effect.products.is_empty() && effect.customer.is_none());

        let processed = retried.transition(OrderStatus::Processed, now).unwrap();
        let mut fold = Fold::default();
        for state in [&placed, &failed, &retried, &processed] {
            fold.add(&Effect::of(&EventEnvelope::new(
                OrderEvent::for_current_state(state),
            )));
        }
        let minute = Bucket::containing(Granularity::Minute, placed.created_at);
        let totals = fold.counters[&CounterItem::Totals(minute)].totals;
        assert_eq!((totals.orders, totals.processed, totals.failed), (1, 1, 0));
        assert_eq!(totals.revenue, processed.total.minor());
        assert_eq!(totals.by_status, [0, 1, 0, 0, 0, 0]);
    }
}
