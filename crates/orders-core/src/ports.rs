//! Ports: what the use cases need from the outside world, in the domain's own terms.
//! `orders-aws` implements them with DynamoDB and Kinesis; tests may use fakes.

use crate::error::OrderError;
use crate::event::EventEnvelope;
use crate::idempotency::{Claim, IdempotencyRecord, StoredResponse};
use crate::ids::{IdempotencyKey, OrderId, ProductId};
use crate::listing::{ListOrders, OrderPage};
use crate::money::Quantity;
use crate::order::Order;
use crate::product::Product;
use crate::time::Timestamp;
use async_trait::async_trait;

/// The outcome of storing a new order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// This call created it.
    New,
    /// An order with this id already existed (a retry); here it is, as stored.
    AlreadyExists(Box<Order>),
}

#[async_trait]
pub trait OrderStore: Send + Sync {
    /// Stores a new order unless its id is already taken (conditional write).
    async fn create(&self, order: &Order) -> Result<Created, OrderError>;
    async fn get(&self, id: &OrderId) -> Result<Option<Order>, OrderError>;
    /// Newest first, served by indexes — never a table scan.
    async fn list(&self, query: &ListOrders) -> Result<OrderPage, OrderError>;
    /// Cheap check that the store is reachable (health endpoint).
    async fn ping(&self) -> Result<(), OrderError>;
}

#[async_trait]
pub trait EventPublisher: Send + Sync {
    async fn publish(&self, event: &EventEnvelope) -> Result<(), OrderError>;

    /// Publishes several events, in as few requests as the stream allows; the outcome of
    /// each, in order. A batch put keeps no order among its records (one may fail while a
    /// later one succeeds), so callers pass at most one event per partition key.
    async fn publish_all(&self, events: &[EventEnvelope]) -> Vec<Result<(), OrderError>> {
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            outcomes.push(self.publish(event).await);
        }
        outcomes
    }
}

/// Services that need the same publisher share it through an `Arc`.
#[async_trait]
impl<T: EventPublisher + ?Sized> EventPublisher for std::sync::Arc<T> {
    async fn publish(&self, event: &EventEnvelope) -> Result<(), OrderError> {
        (**self).publish(event).await
    }

    async fn publish_all(&self, events: &[EventEnvelope]) -> Vec<Result<(), OrderError>> {
        (**self).publish_all(events).await
    }
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Atomically claims `record.key`, or returns the record already holding it.
    async fn claim(&self, record: &IdempotencyRecord) -> Result<Claim, OrderError>;
    /// Records the response to replay for the key.
    async fn complete(
        &self,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> Result<(), OrderError>;
}

/// Time and ids are inputs, so tests control them without sleeping.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

pub trait OrderIds: Send + Sync {
    fn next_id(&self, now: Timestamp) -> OrderId;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// ULIDs stamped with the given time and 80 random bits.
#[derive(Debug, Clone, Copy, Default)]
pub struct UlidIds;

impl OrderIds for UlidIds {
    fn next_id(&self, now: Timestamp) -> OrderId {
        let millis = u64::try_from(now.unix_millis()).unwrap_or(0);
        OrderId::new(ulid::Ulid::from_parts(millis, rand_bits()))
    }
}

/// 80 random bits from the ULID crate's generator (no separate RNG dependency).
fn rand_bits() -> u128 {
    ulid::Ulid::new().random()
}

/// What happens to stock when an order changes state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StockChange {
    None,
    /// Decrement each product's stock, failing the whole change if any would go negative or
    /// if a product's price is not the order's line price (the price sold at is the
    /// catalog's at the moment of reservation).
    Reserve(Vec<(ProductId, Quantity)>),
    /// Give reserved units back (cancellation of a processed order).
    Release(Vec<(ProductId, Quantity)>),
}

impl StockChange {
    pub fn lines(order: &Order) -> Vec<(ProductId, Quantity)> {
        order
            .items
            .iter()
            .map(|i| (i.product_id.clone(), i.quantity))
            .collect()
    }
}

/// The outcome of applying a change to an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Done,
    /// The stored order is no longer at the version the change was based on (or is gone).
    StaleVersion,
    /// A reservation of this product was refused — it would take the stock below zero, or
    /// the product's price is no longer the order's (or it is gone); nothing was written.
    Refused(ProductId),
    /// Another transaction was writing one of the items at the same moment (DynamoDB's
    /// `TransactionConflict`); nothing was written, and trying again shortly can succeed.
    Contended,
}

/// Writes of the command side: an order's state and its stock move together, atomically.
///
/// Writers never publish events themselves: every stored version reaches the event stream
/// through the orders table's change stream and the relay function, so a process that dies
/// right after a write cannot lose (or reorder) an event.
#[async_trait]
pub trait OrderCommands: Send + Sync {
    /// Consistent read.
    async fn load(&self, id: &OrderId) -> Result<Option<Order>, OrderError>;
    /// Stores `next` if the order is still at `next.version - 1`, applying `stock` in the
    /// same transaction.
    async fn apply(&self, next: &Order, stock: &StockChange) -> Result<Applied, OrderError>;
}

/// The outcome of a conditional catalog write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogWrite {
    Done,
    /// Creating: the product exists. Updating: it is gone, or no longer at the version read.
    Refused,
}

/// The catalog.
#[async_trait]
pub trait Catalog: Send + Sync {
    /// Creates or replaces a product unconditionally; true when it was created (setup of
    /// tests and tools — the API creates and updates conditionally).
    async fn put(&self, product: &Product) -> Result<bool, OrderError>;
    /// Creates `product` unless its id exists.
    async fn create(&self, product: &Product) -> Result<CatalogWrite, OrderError>;
    /// Stores `next` (name, price, `updated_at`, `version`, and the stock when `set_stock`)
    /// if the stored product is still at `next.version - 1`.
    async fn update(&self, next: &Product, set_stock: bool) -> Result<CatalogWrite, OrderError>;
    /// Adds `add` units (negative: takes them out) atomically, bumping the version; `None`
    /// when the product does not exist or would go below zero (nothing changed).
    async fn adjust_stock(
        &self,
        id: &ProductId,
        add: i64,
        at: Timestamp,
    ) -> Result<Option<Product>, OrderError>;
    async fn get(&self, id: &ProductId) -> Result<Option<Product>, OrderError>;
    /// The products that exist among `ids` (consistent reads: stock must be current).
    async fn get_many(&self, ids: &[ProductId]) -> Result<Vec<Product>, OrderError>;
    /// A page of products after `after` (by product id), and whether more follow.
    async fn list(
        &self,
        limit: usize,
        after: Option<&ProductId>,
    ) -> Result<(Vec<Product>, Option<ProductId>), OrderError>;
}

/// A record a stream consumer can never process, with everything needed to understand
/// and replay it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// Stable code (`not_json`, `unsupported_schema_version`, `order_not_found`, …).
    pub reason: String,
    pub error: String,
    /// The function that gave up on it.
    pub function: String,
    pub dead_lettered_at: Timestamp,
    /// The source record as delivered (stream, shard, sequence number, partition key,
    /// base64 data).
    pub record: serde_json::Value,
}

#[async_trait]
pub trait DeadLetterQueue: Send + Sync {
    async fn send(&self, letter: &DeadLetter) -> Result<(), OrderError>;
}

/// Where a counter item stands for one shard when a delta was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CountersApplied {
    Done,
    /// The item already holds this shard's records up to this sequence number (the
    /// watermark), so part or all of the delta was applied before.
    Behind(String),
}

/// Storage of the time-bucketed analytics (see [`crate::analytics`]).
///
/// Exactly-once in effect rests on two mechanisms, both conditional writes:
/// - every counter item records, per stream shard, the last sequence number whose delta it
///   holds (its watermark). A delta is applied only on top of the watermark it was computed
///   against, so redelivered batches, bisected halves and partial retries never count twice;
/// - every event is claimed by the first record that carries it, so a producer's duplicate
///   (the same `eventId` put twice, with another sequence number) is skipped. Claims are
///   stored per order, so a batch pays one claim write per order, not per event.
#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    /// Claims events of one order for the records carrying them (`position` =
    /// [`crate::analytics::position`]): for each, true when that record is the event's first
    /// occurrence on the stream (a redelivery of the same record still is). One write per
    /// order per batch, however many of its events the batch holds. Event ids are distinct.
    async fn claim_events(
        &self,
        order_id: &crate::ids::OrderId,
        claims: &[(crate::event::EventId, String)],
    ) -> Result<Vec<bool>, OrderError>;

    /// Adds `delta` to `item` and moves the shard's watermark to `last`, unless the watermark
    /// has already reached `first` (then reports where it is and changes nothing).
    async fn add_counters(
        &self,
        item: &crate::analytics::CounterItem,
        shard: &str,
        first: &str,
        last: &str,
        delta: &crate::analytics::ItemDelta,
    ) -> Result<CountersApplied, OrderError>;

    /// Adds `delta` if the shard's watermark is exactly `watermark`; false when it moved.
    async fn add_counters_after(
        &self,
        item: &crate::analytics::CounterItem,
        shard: &str,
        watermark: &str,
        last: &str,
        delta: &crate::analytics::ItemDelta,
    ) -> Result<bool, OrderError>;

    /// Adds customers to one shard of a bucket's distinct customers, kept in its bounded
    /// form ([`crate::distinct::ShardSet::bounded_union`]); idempotent: repeats change nothing.
    async fn add_customers(
        &self,
        bucket: &crate::analytics::Bucket,
        shard: u32,
        customers: &std::collections::BTreeSet<crate::ids::CustomerId>,
    ) -> Result<(), OrderError>;
}

/// Reads of the analytics (the query side). Buckets are read by known keys, never scanned;
/// every answer has one entry per bucket asked, in order (empty for buckets nothing landed
/// in), so callers can cache per bucket.
#[async_trait]
pub trait AnalyticsReader: Send + Sync {
    /// The counters of each bucket.
    async fn totals(
        &self,
        buckets: &[crate::analytics::Bucket],
    ) -> Result<Vec<crate::analytics::Totals>, OrderError>;

    /// The per-product counters of each bucket.
    async fn products(
        &self,
        buckets: &[crate::analytics::Bucket],
    ) -> Result<
        Vec<std::collections::BTreeMap<ProductId, crate::analytics::ProductTotals>>,
        OrderError,
    >;

    /// The customers who placed an order in each bucket.
    async fn customers(
        &self,
        buckets: &[crate::analytics::Bucket],
    ) -> Result<Vec<crate::distinct::Distinct>, OrderError>;
}

/// Storage of the storefront activity analytics ([`crate::activity`]): the order analytics'
/// exactly-once scheme over other items — watermarked counter items (`totals`,
/// `products#NN`), claims per session and minute, and bounded distinct sets.
#[async_trait]
pub trait ActivityStore: Send + Sync {
    /// Claims events of one claim group ([`crate::activity::ActivityEvent::claim_group`])
    /// for the records carrying them: `(eventId, position)` pairs; for each, true when that
    /// record is the event's first occurrence on the stream. One write per group per batch.
    async fn claim_activity(
        &self,
        group: &str,
        claims: &[(String, String)],
    ) -> Result<Vec<bool>, OrderError>;

    /// As [`AnalyticsStore::add_counters`], for an activity counter item.
    async fn add_activity(
        &self,
        item: &crate::analytics::CounterItem,
        shard: &str,
        first: &str,
        last: &str,
        delta: &crate::activity::ActivityDelta,
    ) -> Result<CountersApplied, OrderError>;

    /// As [`AnalyticsStore::add_counters_after`], for an activity counter item.
    async fn add_activity_after(
        &self,
        item: &crate::analytics::CounterItem,
        shard: &str,
        watermark: &str,
        last: &str,
        delta: &crate::activity::ActivityDelta,
    ) -> Result<bool, OrderError>;

    /// Adds sessions to one shard of a bucket's session set, in its bounded form;
    /// idempotent.
    async fn add_sessions(
        &self,
        bucket: &crate::analytics::Bucket,
        set: crate::activity::SessionSet,
        shard: u32,
        sessions: &std::collections::BTreeSet<crate::ids::SessionId>,
    ) -> Result<(), OrderError>;

    /// Adds signed-in customers seen in the storefront to one shard of a bucket's set;
    /// idempotent.
    async fn add_active_customers(
        &self,
        bucket: &crate::analytics::Bucket,
        shard: u32,
        customers: &std::collections::BTreeSet<crate::ids::CustomerId>,
    ) -> Result<(), OrderError>;
}

/// Reads of the activity analytics; as [`AnalyticsReader`], one entry per bucket asked.
#[async_trait]
pub trait ActivityReader: Send + Sync {
    /// Totals and distinct sets of each bucket (not the per-product counters).
    async fn activity(
        &self,
        buckets: &[crate::analytics::Bucket],
    ) -> Result<Vec<crate::activity::ActivityView>, OrderError>;

    /// One product's activity counters in each bucket.
    async fn product_activity(
        &self,
        buckets: &[crate::analytics::Bucket],
        product: &ProductId,
    ) -> Result<Vec<crate::activity::Counts>, OrderError>;
}

/// Puts accepted storefront events on the activity stream.
#[async_trait]
pub trait ActivityPublisher: Send + Sync {
    /// Every event, one outcome each (in order); a failed one can be sent again as is.
    async fn publish_activity(
        &self,
        events: &[crate::activity::ActivityEnvelope],
    ) -> Vec<Result<(), OrderError>>;
}

/// Open sockets, their subscriptions and the tickets that open them (see [`crate::live`]).
#[async_trait]
pub trait LiveConnections: Send + Sync {
    async fn put_ticket(&self, ticket: &crate::live::Ticket) -> Result<(), OrderError>;
    /// Deletes the ticket and returns it as it was: `None` when unknown or already used, so
    /// a ticket opens one socket at most.
    async fn take_ticket(&self, id: &str) -> Result<Option<crate::live::Ticket>, OrderError>;
    async fn open(&self, connection: &crate::live::Connection) -> Result<(), OrderError>;
    async fn get(&self, id: &str) -> Result<Option<crate::live::Connection>, OrderError>;
    /// Sets what an open connection listens to: `None` when it is not stored (any more).
    async fn subscribe(
        &self,
        id: &str,
        topics: &std::collections::BTreeSet<crate::live::Topic>,
    ) -> Result<Option<crate::live::Connection>, OrderError>;
    async fn close(&self, id: &str) -> Result<(), OrderError>;
    /// The ids of `audience`'s connections subscribed to `topic`.
    async fn listening(
        &self,
        audience: &crate::live::Audience,
        topic: crate::live::Topic,
    ) -> Result<Vec<String>, OrderError>;
}

/// What became of one pushed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// The socket is closed (API Gateway's 410): forget the connection.
    Gone,
}

/// Sends a message down one socket (API Gateway's `@connections` API).
#[async_trait]
pub trait Pusher: Send + Sync {
    async fn push(&self, connection_id: &str, body: &str) -> Result<Delivery, OrderError>;
}
