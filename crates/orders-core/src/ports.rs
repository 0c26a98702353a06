//! Ports: what the use cases need from the outside world, in the domain's own terms.
//! `orders-aws` implements them with DynamoDB and Kinesis; tests may use fakes.

use crate::error::OrderError;
use crate::event::EventEnvelope;
use crate::idempotency::{Claim, IdempotencyRecord, StoredResponse};
use crate::ids::{IdempotencyKey, OrderId};
use crate::listing::{ListOrders, OrderPage};
use crate::order::Order;
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
