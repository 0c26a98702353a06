//! In-memory implementations of the [ports](crate::ports), with the same semantics as the
//! DynamoDB/Kinesis adapters: conditional create, newest-first listing with filters and a
//! cursor, claim/complete idempotency with expiry, a catalog. Plus a fixed clock and
//! sequential ids.
//!
//! They exist so tests and benchmarks can run a use case or a whole handler without any
//! network: a benchmark over these ports measures "the handler alone", i.e. the time a
//! function spends outside its AWS calls.

use crate::error::OrderError;
use crate::event::EventEnvelope;
use crate::idempotency::{Claim, IdempotencyRecord, StoredResponse};
use crate::ids::ProductId;
use crate::ids::{IdempotencyKey, OrderId};
use crate::listing::{IdRange, ListOrders, OrderPage};
use crate::order::Order;
use crate::ports::{
    Applied, Catalog, CatalogWrite, Clock, Created, EventPublisher, IdempotencyStore,
    OrderCommands, OrderIds, OrderStore, StockChange,
};
use crate::product::Product;
use crate::time::Timestamp;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these maps half-updated; keep going.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Orders keyed by id; ids are time-ordered, so the map's order is creation order.
/// Clones share the same orders (see [`MemoryCommands`]).
#[derive(Debug, Default, Clone)]
pub struct MemoryOrderStore {
    orders: Arc<Mutex<BTreeMap<OrderId, Order>>>,
}

impl MemoryOrderStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts an order as is (test and benchmark setup), replacing any with the same id.
    pub fn insert(&self, order: Order) {
        lock(&self.orders).insert(order.order_id, order);
    }

    pub fn len(&self) -> usize {
        lock(&self.orders).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&self) {
        lock(&self.orders).clear();
    }
}

#[async_trait]
impl OrderStore for MemoryOrderStore {
    async fn create(&self, order: &Order) -> Result<Created, OrderError> {
        let mut orders = lock(&self.orders);
        if let Some(existing) = orders.get(&order.order_id) {
            return Ok(Created::AlreadyExists(Box::new(existing.clone())));
        }
        orders.insert(order.order_id, order.clone());
        Ok(Created::New)
    }

    async fn get(&self, id: &OrderId) -> Result<Option<Order>, OrderError> {
        Ok(lock(&self.orders).get(id).cloned())
    }

    async fn list(&self, query: &ListOrders) -> Result<OrderPage, OrderError> {
        let orders = lock(&self.orders);
        // The id range the DynamoDB adapter puts in its key condition, so a window and a
        // cursor select here exactly what they select there.
        let older = match query.id_range() {
            IdRange::All => orders.range(..),
            IdRange::Below(before) => orders.range(..before),
            IdRange::Between(low, high) => orders.range(low..=high),
            IdRange::Empty => {
                return Ok(OrderPage {
                    orders: Vec::new(),
                    next: None,
                });
            }
        };
        let mut page: Vec<Order> = older
            .rev()
            .map(|(_, order)| order)
            .filter(|o| query.status.is_none_or(|s| o.status == s))
            .filter(|o| {
                query
                    .customer_id
                    .as_ref()
                    .is_none_or(|c| &o.customer_id == c)
            })
            .take(query.limit + 1)
            .cloned()
            .collect();
        let next = if page.len() > query.limit {
            page.truncate(query.limit);
            page.last().map(|o| o.order_id)
        } else {
            None
        };
        Ok(OrderPage { orders: page, next })
    }

    async fn ping(&self) -> Result<(), OrderError> {
        Ok(())
    }
}

/// Records every published event, in order.
#[derive(Debug, Default)]
pub struct RecordingPublisher {
    events: Mutex<Vec<EventEnvelope>>,
}

impl RecordingPublisher {
    pub fn new() -> Self {
        Self::default()
    }

    /// The events published so far.
    pub fn events(&self) -> Vec<EventEnvelope> {
        lock(&self.events).clone()
    }

    pub fn clear(&self) {
        lock(&self.events).clear();
    }
}

#[async_trait]
impl EventPublisher for RecordingPublisher {
    async fn publish(&self, event: &EventEnvelope) -> Result<(), OrderError> {
        lock(&self.events).push(event.clone());
        Ok(())
    }
}

/// Records every accepted storefront event; `fail_next(n)` makes the next `n` puts fail
/// as a throttled stream would (each event's outcome on its own, as PutRecords reports).
#[derive(Debug, Default, Clone)]
pub struct RecordingActivity {
    events: Arc<Mutex<Vec<crate::activity::ActivityEnvelope>>>,
    failures: Arc<Mutex<usize>>,
}

impl RecordingActivity {
    pub fn new() -> Self {
        Self::default()
    }

    /// The events put so far, in order.
    pub fn events(&self) -> Vec<crate::activity::ActivityEnvelope> {
        lock(&self.events).clone()
    }

    pub fn fail_next(&self, puts: usize) {
        *lock(&self.failures) = puts;
    }
}

#[async_trait]
impl crate::ports::ActivityPublisher for RecordingActivity {
    async fn publish_activity(
        &self,
        events: &[crate::activity::ActivityEnvelope],
    ) -> Vec<Result<(), OrderError>> {
        events
            .iter()
            .map(|event| {
                let mut failures = lock(&self.failures);
                if *failures > 0 {
                    *failures -= 1;
                    return Err(OrderError::Throttled("injected".into()));
                }
                lock(&self.events).push(event.clone());
                Ok(())
            })
            .collect()
    }
}

/// Idempotency records by key. As in DynamoDB, an expired record (TTL deletes lazily)
/// counts as free when claimed again.
#[derive(Debug, Default)]
pub struct MemoryIdempotencyStore {
    records: Mutex<HashMap<IdempotencyKey, IdempotencyRecord>>,
}

impl MemoryIdempotencyStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, key: &IdempotencyKey) -> Option<IdempotencyRecord> {
        lock(&self.records).get(key).cloned()
    }

    pub fn clear(&self) {
        lock(&self.records).clear();
    }
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotencyStore {
    async fn claim(&self, record: &IdempotencyRecord) -> Result<Claim, OrderError> {
        let mut records = lock(&self.records);
        match records.get(&record.key) {
            Some(existing) if existing.expires_at >= record.created_at => {
                Ok(Claim::Existing(existing.clone()))
            }
            _ => {
                records.insert(record.key.clone(), record.clone());
                Ok(Claim::Claimed)
            }
        }
    }

    async fn complete(
        &self,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> Result<(), OrderError> {
        match lock(&self.records).get_mut(key) {
            Some(record) => {
                record.response = Some(response.clone());
                Ok(())
            }
            // DynamoDB's `attribute_exists` condition fails the same way.
            None => Err(OrderError::Unexpected(
                format!("no idempotency record for key {key}").into(),
            )),
        }
    }
}

/// Products by id, listed in id order. Clones share the same products.
#[derive(Debug, Default, Clone)]
pub struct MemoryCatalog {
    products: Arc<Mutex<BTreeMap<ProductId, Product>>>,
}

impl MemoryCatalog {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Catalog for MemoryCatalog {
    async fn put(&self, product: &Product) -> Result<bool, OrderError> {
        let previous = lock(&self.products).insert(product.product_id.clone(), product.clone());
        Ok(previous.is_none())
    }

    async fn create(&self, product: &Product) -> Result<CatalogWrite, OrderError> {
        let mut products = lock(&self.products);
        if products.contains_key(&product.product_id) {
            return Ok(CatalogWrite::Refused);
        }
        products.insert(product.product_id.clone(), product.clone());
        Ok(CatalogWrite::Done)
    }

    async fn update(&self, next: &Product, set_stock: bool) -> Result<CatalogWrite, OrderError> {
        let mut products = lock(&self.products);
        match products.get_mut(&next.product_id) {
            Some(current) if current.version + 1 == next.version => {
                let stock = if set_stock { next.stock } else { current.stock };
                *current = Product {
                    stock,
                    ..next.clone()
                };
                Ok(CatalogWrite::Done)
            }
            _ => Ok(CatalogWrite::Refused),
        }
    }

    async fn adjust_stock(
        &self,
        id: &ProductId,
        add: i64,
        at: Timestamp,
    ) -> Result<Option<Product>, OrderError> {
        let mut products = lock(&self.products);
        let Some(product) = products.get_mut(id) else {
            return Ok(None);
        };
        let Some(stock) = product.stock.checked_add_signed(add) else {
            return Ok(None);
        };
        product.stock = stock;
        product.version += 1;
        product.updated_at = at;
        Ok(Some(product.clone()))
    }

    async fn get(&self, id: &ProductId) -> Result<Option<Product>, OrderError> {
        Ok(lock(&self.products).get(id).cloned())
    }

    async fn get_many(&self, ids: &[ProductId]) -> Result<Vec<Product>, OrderError> {
        let products = lock(&self.products);
        Ok(ids
            .iter()
            .filter_map(|id| products.get(id).cloned())
            .collect())
    }

    async fn list(
        &self,
        limit: usize,
        after: Option<&ProductId>,
    ) -> Result<(Vec<Product>, Option<ProductId>), OrderError> {
        use std::ops::Bound;
        let products = lock(&self.products);
        let from = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.clone()));
        let mut page: Vec<Product> = products
            .range((from, Bound::Unbounded))
            .map(|(_, p)| p.clone())
            .take(limit + 1)
            .collect();
        let next = if page.len() > limit {
            page.truncate(limit);
            page.last().map(|p| p.product_id.clone())
        } else {
            None
        };
        Ok((page, next))
    }
}

/// The command side over a [`MemoryOrderStore`] and a [`MemoryCatalog`] (clones sharing their
/// state): an order's new version and its stock change are applied together or not at all.
#[derive(Debug, Default, Clone)]
pub struct MemoryCommands {
    pub store: MemoryOrderStore,
    pub catalog: MemoryCatalog,
}

#[async_trait]
impl OrderCommands for MemoryCommands {
    async fn load(&self, id: &OrderId) -> Result<Option<Order>, OrderError> {
        Ok(lock(&self.store.orders).get(id).cloned())
    }

    async fn apply(&self, next: &Order, stock: &StockChange) -> Result<Applied, OrderError> {
        let mut orders = lock(&self.store.orders);
        let current = orders.get(&next.order_id).map(|o| o.version);
        if current != Some(next.version.wrapping_sub(1)) {
            return Ok(Applied::StaleVersion);
        }
        let mut products = lock(&self.catalog.products);
        let (lines, reserve) = match stock {
            StockChange::None => (&[][..], false),
            StockChange::Reserve(lines) => (&lines[..], true),
            StockChange::Release(lines) => (&lines[..], false),
        };
        // Check every line before changing any, as a transaction would.
        for (id, quantity) in lines {
            let product = products.get(id);
            let enough = product.is_some_and(|p| !reserve || p.stock >= u64::from(quantity.get()));
            // A reservation sells at the order's price, which must still be the catalog's.
            let priced = !reserve
                || product.is_some_and(|p| {
                    next.items
                        .iter()
                        .any(|i| &i.product_id == id && i.unit_price == p.price)
                });
            if !enough || !priced {
                return Ok(Applied::Refused(id.clone()));
            }
        }
        for (id, quantity) in lines {
            let product = products.get_mut(id).expect("checked above");
            let units = u64::from(quantity.get());
            product.stock = if reserve {
                product.stock - units
            } else {
                product.stock + units
            };
            // A sale changes the product: an ETag read before it is stale.
            product.version += 1;
        }
        orders.insert(next.order_id, next.clone());
        Ok(Applied::Done)
    }
}

/// A clock that always shows the same instant.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

/// Order ids stamped with the given time and a counter (1, 2, 3, …) as the random part, so
/// ids are predictable and strictly increasing even when the clock stands still.
#[derive(Debug, Default)]
pub struct SequentialIds {
    next: AtomicU64,
}

impl SequentialIds {
    pub fn new() -> Self {
        Self::default()
    }
}

impl OrderIds for SequentialIds {
    fn next_id(&self, now: Timestamp) -> OrderId {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let millis = u64::try_from(now.unix_millis()).unwrap_or(0);
        OrderId::new(ulid::Ulid::from_parts(millis, u128::from(n)))
    }
}

/// Runs a future over in-memory ports: they never wait, so polling once completes it.
#[cfg(test)]
pub(crate) fn run<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("in-memory ports never wait"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::OrderEvent;
    use crate::ids::{CustomerId, ProductId};
    use crate::listing::CreatedWindow;
    use crate::money::{Currency, Money, Quantity};
    use crate::order::{NewLineItem, OrderStatus, PlaceOrder};

    fn now() -> Timestamp {
        Timestamp::parse("2026-11-21T10:00:00Z").unwrap()
    }

    fn order(ids: &SequentialIds, customer: &str) -> Order {
        let command = PlaceOrder {
            customer_id: CustomerId::parse(customer).unwrap(),
            currency: Currency::parse("USD").unwrap(),
            items: vec![NewLineItem {
                product_id: ProductId::parse("sku-1").unwrap(),
                quantity: Quantity::new(1).unwrap(),
                unit_price: Money::from_minor(100).unwrap(),
            }],
        };
        Order::place(ids.next_id(now()), &command, now())
    }

    #[test]
    fn create_is_conditional_on_the_id() {
        let store = MemoryOrderStore::new();
        let ids = SequentialIds::new();
        let first = order(&ids, "c-1");
        assert_eq!(run(store.create(&first)).unwrap(), Created::New);
        let mut again = first.clone();
        again.total = Money::from_minor(1).unwrap();
        assert_eq!(
            run(store.create(&again)).unwrap(),
            Created::AlreadyExists(Box::new(first.clone()))
        );
        assert_eq!(run(store.get(&first.order_id)).unwrap(), Some(first));
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn lists_newest_first_with_filters_and_cursor() {
        let store = MemoryOrderStore::new();
        let ids = SequentialIds::new();
        let mut all = Vec::new();
        for n in 0..5 {
            let mut o = order(&ids, if n % 2 == 0 { "even" } else { "odd" });
            if n == 3 {
                o.status = OrderStatus::Failed;
            }
            store.insert(o.clone());
            all.push(o);
        }
        let query = |limit, before, status, customer: Option<&str>| ListOrders {
            status,
            customer_id: customer.map(|c| CustomerId::parse(c).unwrap()),
            limit,
            before,
            window: CreatedWindow::ALL,
        };
        let page = run(store.list(&query(2, None, None, None))).unwrap();
        assert_eq!(page.orders, vec![all[4].clone(), all[3].clone()]);
        assert_eq!(page.next, Some(all[3].order_id));
        let page = run(store.list(&query(2, page.next, None, None))).unwrap();
        assert_eq!(page.orders, vec![all[2].clone(), all[1].clone()]);
        let page = run(store.list(&query(2, page.next, None, None))).unwrap();
        assert_eq!(page.orders, vec![all[0].clone()]);
        assert_eq!(page.next, None);

        let even = run(store.list(&query(10, None, None, Some("even")))).unwrap();
        assert_eq!(even.orders.len(), 3);
        let failed = run(store.list(&query(10, None, Some(OrderStatus::Failed), None))).unwrap();
        assert_eq!(failed.orders, vec![all[3].clone()]);
        let none = run(store.list(&query(10, None, Some(OrderStatus::Failed), Some("even"))));
        assert!(none.unwrap().orders.is_empty());
    }

    #[test]
    fn lists_a_creation_window_in_pages_exactly() {
        let store = MemoryOrderStore::new();
        let ids = SequentialIds::new();
        let t0 = now().unix_millis();
        let mut all = Vec::new();
        // Two orders in each of ten milliseconds, alternating customers and statuses.
        for n in 0..20i64 {
            let at = Timestamp::from_unix_millis(t0 + n / 2).unwrap();
            let mut o = order(&ids, if n % 2 == 0 { "even" } else { "odd" });
            o.order_id = ids.next_id(at);
            o.created_at = at;
            if n % 3 == 0 {
                o.status = OrderStatus::Failed;
            }
            store.insert(o.clone());
            all.push(o);
        }
        let ms = |n: i64| Timestamp::from_unix_millis(t0 + n).unwrap();
        let windows = [
            CreatedWindow {
                from: Some(ms(2)),
                to: Some(ms(7)),
            },
            CreatedWindow {
                from: Some(ms(9)),
                to: None,
            },
            CreatedWindow {
                from: None,
                to: Some(ms(1)),
            },
            CreatedWindow {
                from: Some(ms(20)),
                to: None,
            },
        ];
        for window in windows {
            for (status, customer) in [
                (None, None),
                (Some(OrderStatus::Failed), None),
                (None, Some("odd")),
                (Some(OrderStatus::Failed), Some("even")),
            ] {
                let customer = customer.map(|c| CustomerId::parse(c).unwrap());
                let mut expected: Vec<OrderId> = all
                    .iter()
                    .filter(|o| window.contains(o.created_at))
                    .filter(|o| status.is_none_or(|s| o.status == s))
                    .filter(|o| customer.as_ref().is_none_or(|c| &o.customer_id == c))
                    .map(|o| o.order_id)
                    .collect();
                expected.reverse();
                let mut seen = Vec::new();
                let mut before = None;
                loop {
                    let query = ListOrders {
                        status,
                        customer_id: customer.clone(),
                        limit: 2,
                        before,
                        window,
                    };
                    let page = run(store.list(&query)).unwrap();
                    assert!(page.orders.len() <= 2);
                    seen.extend(page.orders.iter().map(|o| o.order_id));
                    match page.next {
                        Some(next) => before = Some(next),
                        None => break,
                    }
                }
                assert_eq!(seen, expected, "{window:?} {status:?} {customer:?}");
            }
        }
    }

    #[test]
    fn idempotency_claim_complete_and_expiry() {
        let store = MemoryIdempotencyStore::new();
        let ids = SequentialIds::new();
        let key = IdempotencyKey::parse("k-1").unwrap();
        let record = IdempotencyRecord {
            key: key.clone(),
            request_fingerprint: "f".into(),
            order_id: ids.next_id(now()),
            created_at: now(),
            expires_at: now().plus_seconds(60),
            response: None,
        };
        assert_eq!(run(store.claim(&record)).unwrap(), Claim::Claimed);
        let mut second = record.clone();
        second.order_id = ids.next_id(now());
        assert_eq!(
            run(store.claim(&second)).unwrap(),
            Claim::Existing(record.clone())
        );
        let response = StoredResponse {
            status: 201,
            body: "{}".into(),
        };
        run(store.complete(&key, &response)).unwrap();
        assert_eq!(store.get(&key).unwrap().response, Some(response.clone()));

        // After expiry the key is free again.
        let mut later = second.clone();
        later.created_at = now().plus_seconds(61);
        assert_eq!(run(store.claim(&later)).unwrap(), Claim::Claimed);
        assert_eq!(store.get(&key).unwrap().order_id, later.order_id);

        let unknown = IdempotencyKey::parse("k-2").unwrap();
        assert!(run(store.complete(&unknown, &response)).is_err());
    }

    #[test]
    fn catalog_puts_gets_and_pages_in_id_order() {
        let catalog = MemoryCatalog::new();
        let product = |id: &str| Product {
            product_id: ProductId::parse(id).unwrap(),
            name: id.to_uppercase(),
            price: Money::from_minor(100).unwrap(),
            stock: 5,
            version: 1,
            updated_at: now(),
        };
        for id in ["b", "a", "c"] {
            assert!(run(catalog.put(&product(id))).unwrap());
        }
        assert!(
            !run(catalog.put(&product("a"))).unwrap(),
            "replaced, not created"
        );
        let a = ProductId::parse("a").unwrap();
        let z = ProductId::parse("z").unwrap();
        assert_eq!(run(catalog.get(&a)).unwrap(), Some(product("a")));
        assert_eq!(
            run(catalog.get_many(&[a.clone(), z])).unwrap(),
            vec![product("a")]
        );
        let (page, next) = run(catalog.list(2, None)).unwrap();
        assert_eq!(page, vec![product("a"), product("b")]);
        let (page, next) = run(catalog.list(2, next.as_ref())).unwrap();
        assert_eq!((page, next), (vec![product("c")], None));
    }

    #[test]
    fn commands_apply_version_and_stock_together() {
        let commands = MemoryCommands::default();
        let ids = SequentialIds::new();
        let placed = order(&ids, "c-1");
        run(commands.store.create(&placed)).unwrap();
        let sku = ProductId::parse("sku-1").unwrap();
        let product = Product {
            product_id: sku.clone(),
            name: "Sku".into(),
            price: Money::from_minor(100).unwrap(),
            stock: 1,
            version: 1,
            updated_at: now(),
        };
        run(commands.catalog.put(&product)).unwrap();

        let mut next = placed.clone();
        next.version = 2;
        next.status = OrderStatus::Processed;
        let two = StockChange::Reserve(vec![(sku.clone(), Quantity::new(2).unwrap())]);
        assert_eq!(
            run(commands.apply(&next, &two)).unwrap(),
            Applied::Refused(sku.clone())
        );
        let one = StockChange::Reserve(StockChange::lines(&placed));
        assert_eq!(run(commands.apply(&next, &one)).unwrap(), Applied::Done);
        assert_eq!(run(commands.catalog.get(&sku)).unwrap().unwrap().stock, 0);
        assert_eq!(
            run(commands.apply(&next, &StockChange::None)).unwrap(),
            Applied::StaleVersion
        );
        assert_eq!(run(commands.load(&placed.order_id)).unwrap(), Some(next));
    }

    #[test]
    fn publisher_records_and_ids_are_sequential() {
        let ids = SequentialIds::new();
        let (a, b) = (ids.next_id(now()), ids.next_id(now()));
        assert!(a < b);
        assert_eq!(a.timestamp_ms(), now().unix_millis() as u64);
        assert_eq!(FixedClock(now()).now(), now());

        let publisher = RecordingPublisher::new();
        let event = EventEnvelope::new(OrderEvent::placed(order(&ids, "c-1")));
        run(publisher.publish(&event)).unwrap();
        assert_eq!(publisher.events(), vec![event]);
        publisher.clear();
        assert!(publisher.events().is_empty());
    }
}

/// Analytics held as a [`Fold`](crate::analytics::Fold) of effects: what the aggregate
/// function would have stored for them; storefront activity beside it, as the table
/// holds both.
#[derive(Debug, Default, Clone)]
pub struct MemoryAnalytics {
    fold: Arc<Mutex<crate::analytics::Fold>>,
    pub activity: MemoryActivity,
}

impl MemoryAnalytics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts `order` as all its events so far would have.
    pub fn add_order(&self, order: &Order) {
        lock(&self.fold).add_order(order);
    }
}

#[async_trait]
impl crate::ports::AnalyticsReader for MemoryAnalytics {
    async fn totals(
        &self,
        buckets: &[crate::analytics::Bucket],
    ) -> Result<Vec<crate::analytics::Totals>, OrderError> {
        let fold = lock(&self.fold);
        Ok(buckets.iter().map(|b| fold.view(b).totals).collect())
    }

    async fn products(
        &self,
        buckets: &[crate::analytics::Bucket],
    ) -> Result<Vec<BTreeMap<ProductId, crate::analytics::ProductTotals>>, OrderError> {
        let fold = lock(&self.fold);
        Ok(buckets.iter().map(|b| fold.view(b).products).collect())
    }

    async fn customers(
        &self,
        buckets: &[crate::analytics::Bucket],
    ) -> Result<Vec<crate::distinct::Distinct>, OrderError> {
        let fold = lock(&self.fold);
        Ok(buckets.iter().map(|b| fold.view(b).customers).collect())
    }
}

#[async_trait]
impl crate::ports::ActivityReader for MemoryAnalytics {
    async fn activity(
        &self,
        buckets: &[crate::analytics::Bucket],
    ) -> Result<Vec<crate::activity::ActivityView>, OrderError> {
        self.activity.activity(buckets).await
    }

    async fn product_activity(
        &self,
        buckets: &[crate::analytics::Bucket],
        product: &ProductId,
    ) -> Result<Vec<crate::activity::Counts>, OrderError> {
        self.activity.product_activity(buckets, product).await
    }
}

/// Sockets, subscriptions and tickets in memory, as the connections table keeps them.
/// Clones share the same state.
#[derive(Debug, Default, Clone)]
pub struct MemoryLiveConnections {
    tickets: Arc<Mutex<BTreeMap<String, crate::live::Ticket>>>,
    connections: Arc<Mutex<BTreeMap<String, crate::live::Connection>>>,
}

#[async_trait]
impl crate::ports::LiveConnections for MemoryLiveConnections {
    async fn put_ticket(&self, ticket: &crate::live::Ticket) -> Result<(), OrderError> {
        lock(&self.tickets).insert(ticket.id.clone(), ticket.clone());
        Ok(())
    }

    async fn take_ticket(&self, id: &str) -> Result<Option<crate::live::Ticket>, OrderError> {
        Ok(lock(&self.tickets).remove(id))
    }

    async fn open(&self, connection: &crate::live::Connection) -> Result<(), OrderError> {
        lock(&self.connections).insert(connection.id.clone(), connection.clone());
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<crate::live::Connection>, OrderError> {
        Ok(lock(&self.connections).get(id).cloned())
    }

    async fn subscribe(
        &self,
        id: &str,
        topics: &std::collections::BTreeSet<crate::live::Topic>,
    ) -> Result<Option<crate::live::Connection>, OrderError> {
        Ok(lock(&self.connections).get_mut(id).map(|c| {
            c.topics = topics.clone();
            c.clone()
        }))
    }

    async fn close(&self, id: &str) -> Result<(), OrderError> {
        lock(&self.connections).remove(id);
        Ok(())
    }

    async fn listening(
        &self,
        audience: &crate::live::Audience,
        topic: crate::live::Topic,
    ) -> Result<Vec<String>, OrderError> {
        Ok(lock(&self.connections)
            .values()
            .filter(|c| &c.audience == audience && c.topics.contains(&topic))
            .map(|c| c.id.clone())
            .collect())
    }
}

/// Records what was pushed to which socket; sockets named in `gone` answer 410.
#[derive(Debug, Default, Clone)]
pub struct RecordingPusher {
    pub pushed: Arc<Mutex<Vec<(String, String)>>>,
    pub gone: Arc<Mutex<std::collections::BTreeSet<String>>>,
}

impl RecordingPusher {
    pub fn pushed(&self) -> Vec<(String, String)> {
        lock(&self.pushed).clone()
    }
}

#[async_trait]
impl crate::ports::Pusher for RecordingPusher {
    async fn push(
        &self,
        connection_id: &str,
        body: &str,
    ) -> Result<crate::ports::Delivery, OrderError> {
        if lock(&self.gone).contains(connection_id) {
            return Ok(crate::ports::Delivery::Gone);
        }
        lock(&self.pushed).push((connection_id.to_owned(), body.to_owned()));
        Ok(crate::ports::Delivery::Sent)
    }
}

/// Keeps every dead letter sent.
#[derive(Debug, Default, Clone)]
pub struct MemoryDeadLetters(pub Arc<Mutex<Vec<crate::ports::DeadLetter>>>);

impl MemoryDeadLetters {
    pub fn letters(&self) -> Vec<crate::ports::DeadLetter> {
        lock(&self.0).clone()
    }
}

#[async_trait]
impl crate::ports::DeadLetterQueue for MemoryDeadLetters {
    async fn send(&self, letter: &crate::ports::DeadLetter) -> Result<(), OrderError> {
        lock(&self.0).push(letter.clone());
        Ok(())
    }
}

/// Storefront activity stored as the activity store keeps it: counter items with per-shard
/// watermarks, claims by group, set shards in their bounded form. Reads answer from the
/// same state, so a test can aggregate and report through one value. Clones share state.
#[derive(Debug, Default, Clone)]
pub struct MemoryActivity {
    state: Arc<Mutex<ActivityState>>,
}

#[derive(Debug, Default)]
struct ActivityState {
    claims: BTreeMap<(String, String), String>,
    counters: BTreeMap<crate::analytics::CounterItem, crate::activity::ActivityDelta>,
    watermarks: BTreeMap<(crate::analytics::CounterItem, String), String>,
    views: BTreeMap<crate::analytics::Bucket, crate::activity::ActivityView>,
    /// Counter writes applied (for tests of what a batch costs).
    writes: usize,
}

impl MemoryActivity {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counter writes applied so far.
    pub fn counter_writes(&self) -> usize {
        lock(&self.state).writes
    }

    /// What `bucket` holds now: counters and sets (as stored, bounded).
    pub fn view(&self, bucket: &crate::analytics::Bucket) -> crate::activity::ActivityView {
        let state = lock(&self.state);
        let mut view = state.views.get(bucket).cloned().unwrap_or_default();
        for (item, delta) in &state.counters {
            if item.bucket() == *bucket {
                for (name, value) in delta.attributes() {
                    view.add_counter(&name, value);
                }
            }
        }
        view
    }

    fn apply(
        &self,
        item: &crate::analytics::CounterItem,
        shard: &str,
        expected: impl FnOnce(Option<&String>) -> Result<(), Option<String>>,
        last: &str,
        delta: &crate::activity::ActivityDelta,
    ) -> Result<(), Option<String>> {
        let mut state = lock(&self.state);
        let key = (item.clone(), shard.to_owned());
        expected(state.watermarks.get(&key))?;
        state.watermarks.insert(key, last.to_owned());
        state.counters.entry(item.clone()).or_default().add(delta);
        state.writes += 1;
        Ok(())
    }
}

#[async_trait]
impl crate::ports::ActivityStore for MemoryActivity {
    async fn claim_activity(
        &self,
        group: &str,
        claims: &[(String, String)],
    ) -> Result<Vec<bool>, OrderError> {
        let mut state = lock(&self.state);
        Ok(claims
            .iter()
            .map(|(id, position)| {
                let owner = state
                    .claims
                    .entry((group.to_owned(), id.clone()))
                    .or_insert_with(|| position.clone());
                owner == position
            })
            .collect())
    }

    async fn add_activity(
        &self,
        item: &crate::analytics::CounterItem,
        shard: &str,
        first: &str,
        last: &str,
        delta: &crate::activity::ActivityDelta,
    ) -> Result<crate::ports::CountersApplied, OrderError> {
        let seen = |wm: Option<&String>| match wm {
            Some(wm) if crate::sequence::compare(wm, first) != std::cmp::Ordering::Less => {
                Err(Some(wm.clone()))
            }
            _ => Ok(()),
        };
        Ok(match self.apply(item, shard, seen, last, delta) {
            Ok(()) => crate::ports::CountersApplied::Done,
            Err(wm) => crate::ports::CountersApplied::Behind(wm.unwrap_or_default()),
        })
    }

    async fn add_activity_after(
        &self,
        item: &crate::analytics::CounterItem,
        shard: &str,
        watermark: &str,
        last: &str,
        delta: &crate::activity::ActivityDelta,
    ) -> Result<bool, OrderError> {
        let at = |wm: Option<&String>| {
            if wm.map(String::as_str) == Some(watermark) {
                Ok(())
            } else {
                Err(None)
            }
        };
        Ok(self.apply(item, shard, at, last, delta).is_ok())
    }

    async fn add_sessions(
        &self,
        bucket: &crate::analytics::Bucket,
        set: crate::activity::SessionSet,
        shard: u32,
        sessions: &std::collections::BTreeSet<crate::ids::SessionId>,
    ) -> Result<(), OrderError> {
        let mut state = lock(&self.state);
        let stored = state.views.entry(*bucket).or_default().session_set(set);
        // The bounded union holds the shard's ids (or their registers): adding it is the
        // store's rewrite of the shard.
        let now = stored.shard(shard).bounded_union(sessions);
        stored.add_shard(shard, &now);
        Ok(())
    }

    async fn add_active_customers(
        &self,
        bucket: &crate::analytics::Bucket,
        shard: u32,
        customers: &std::collections::BTreeSet<crate::ids::CustomerId>,
    ) -> Result<(), OrderError> {
        let mut state = lock(&self.state);
        let stored = &mut state.views.entry(*bucket).or_default().customers;
        let now = stored.shard(shard).bounded_union(customers);
        stored.add_shard(shard, &now);
        Ok(())
    }
}

#[async_trait]
impl crate::ports::ActivityReader for MemoryActivity {
    async fn activity(
        &self,
        buckets: &[crate::analytics::Bucket],
    ) -> Result<Vec<crate::activity::ActivityView>, OrderError> {
        Ok(buckets
            .iter()
            .map(|b| {
                let mut view = self.view(b);
                view.products.clear();
                view
            })
            .collect())
    }

    async fn product_activity(
        &self,
        buckets: &[crate::analytics::Bucket],
        product: &ProductId,
    ) -> Result<Vec<crate::activity::Counts>, OrderError> {
        Ok(buckets
            .iter()
            .map(|b| self.view(b).products.remove(product).unwrap_or_default())
            .collect())
    }
}
