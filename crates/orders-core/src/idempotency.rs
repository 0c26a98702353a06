//! What we remember about an `Idempotency-Key`.
//!
//! The record is written *before* the order, with the order id chosen up front. A retry
//! after a crash or a failed publish therefore finds the id and finishes the same order
//! instead of creating a second one; once finished, the stored response is replayed
//! byte for byte.

use crate::ids::{IdempotencyKey, OrderId};
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub key: IdempotencyKey,
    /// The fingerprint of the first request that used the key
    /// ([`crate::OrderRequest::fingerprint`], or [`crate::RetryOrder::fingerprint`]).
    pub request_fingerprint: String,
    /// The order placed (chosen before it is written), or the order retried.
    pub order_id: OrderId,
    pub created_at: Timestamp,
    /// When the store may forget the key (DynamoDB TTL).
    pub expires_at: Timestamp,
    /// Set once the order is stored and its event published.
    pub response: Option<StoredResponse>,
}

/// The response first given for a key, replayed verbatim on retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// The outcome of claiming a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key was free; the caller owns it now.
    Claimed,
    /// The key was already used; here is what was recorded.
    Existing(IdempotencyRecord),
}
