//! Storefront activity: what shoppers do before they order (`POST /events`), and the
//! analytics folded from it — active users, a per-product conversion funnel, cart
//! abandonment. The model, definitions, limits and the AWS wiring planned for it are in
//! `docs/activity.md`.
//!
//! # Layout
//! - this module: the event ([`ActivityEvent`], its [`ActivityKind`]) and the envelope it
//!   travels in on the `activity` stream ([`ActivityEnvelope`]);
//! - [`parse`]: a `POST /events` body into events, naming every bad field, or nothing;
//! - [`fold`]: what each event adds to which bucket and item, and the batch fold — the
//!   order analytics' buckets, product shards and distinct sets ([`crate::analytics`],
//!   [`crate::distinct`]), not copies of them;
//! - [`report`]: `GET /analytics/activity` and `GET /analytics/funnel` shapes.
//!
//! # Exactly once
//! Events are client-made, so a client's retry of a batch resends the same events: each
//! carries a client-chosen [`ActivityEventId`], and an event is identified by its session
//! and that id ([`ActivityEvent::dedup_key`]). Copies of one event are byte-identical in
//! everything the fold reads (bucketing is by the client's `occurredAt`, not by when the
//! copy arrived), so whichever copy is kept, the counters are the same.

pub mod fold;
pub mod parse;
pub mod report;
#[cfg(test)]
mod tests;

use crate::event::DecodeError;
use crate::ids::{ActivityEventId, CustomerId, ProductId, SessionId};
use crate::money::Quantity;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

pub use fold::{ActivityDelta, ActivityEffect, ActivityFold, ActivityView, Counts, SessionSet};
pub use parse::parse_activity_batch;
pub use report::{ActivityReport, ActivitySeries, FunnelReport};

/// The schema version every activity event type is written at (all at their first).
pub const ACTIVITY_SCHEMA_VERSION: u32 = 1;

/// Every activity event type, as `eventType` names it.
pub const ACTIVITY_EVENT_TYPES: [&str; 4] = [
    "ProductViewed",
    "AddedToCart",
    "RemovedFromCart",
    "CheckoutStarted",
];

/// What the shopper did. The variant is the envelope's `eventType`, its fields the
/// `payload`; a product is named where there is one (a checkout names its cart instead).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "eventType", content = "payload")]
pub enum ActivityKind {
    #[serde(rename_all = "camelCase")]
    ProductViewed { product_id: ProductId },
    #[serde(rename_all = "camelCase")]
    AddedToCart {
        product_id: ProductId,
        quantity: Quantity,
    },
    #[serde(rename_all = "camelCase")]
    RemovedFromCart {
        product_id: ProductId,
        quantity: Quantity,
    },
    /// `cart`: the products in the cart at checkout, each once, at most
    /// [`parse::MAX_CART_PRODUCTS`]; empty when the client did not say.
    #[serde(rename_all = "camelCase")]
    CheckoutStarted { cart: Vec<ProductId> },
}

impl ActivityKind {
    pub fn event_type(&self) -> &'static str {
        match self {
            ActivityKind::ProductViewed { .. } => "ProductViewed",
            ActivityKind::AddedToCart { .. } => "AddedToCart",
            ActivityKind::RemovedFromCart { .. } => "RemovedFromCart",
            ActivityKind::CheckoutStarted { .. } => "CheckoutStarted",
        }
    }
}

/// One storefront event, as validated from a client's batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityEvent {
    /// Chosen by the client, unique within the session, resent unchanged on a retry.
    pub event_id: ActivityEventId,
    pub session_id: SessionId,
    /// The signed-in customer; `None` for a shopper not signed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<CustomerId>,
    /// The client's time of the event, within [`parse::MAX_FUTURE_SECONDS`] ahead of and
    /// [`parse::MAX_AGE_SECONDS`] behind the server's receive time. Buckets are of this time.
    pub occurred_at: Timestamp,
    #[serde(flatten)]
    pub kind: ActivityKind,
}

impl ActivityEvent {
    /// What identifies the event among all copies of it: `<sessionId>/<eventId>` (ids
    /// hold no `/`, so no two pairs spell the same key). Scoping the client's id to its
    /// session means two shoppers' clients need not coordinate ids, and one cannot
    /// suppress another's events without knowing its session id.
    pub fn dedup_key(&self) -> String {
        format!("{}/{}", self.session_id, self.event_id)
    }

    /// Which claims item the event is claimed in: its session's events of one minute of
    /// `occurredAt` (`activity/m#2026-11-22T10:31/<sessionId>`). Grouping makes a batch
    /// pay one claim write per session-minute, not per event, and bounds an item by what
    /// one session does in a minute. (Order claims are keyed by order ids, which hold no
    /// `/`: the two never meet.)
    pub fn claim_group(&self) -> String {
        let minute = crate::analytics::Bucket::containing(
            crate::analytics::Granularity::Minute,
            self.occurred_at,
        );
        format!("activity/{minute}/{}", self.session_id)
    }

    /// The stream partition key: a session's events stay in order on one shard.
    pub fn partition_key(&self) -> &str {
        self.session_id.as_str()
    }
}

/// What goes on the `activity` stream: the event, its schema version, and when the API
/// received it (kept for lateness metrics and debugging; the analytics never read it, so
/// a retried copy received later counts the same).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityEnvelope {
    pub schema_version: u32,
    pub received_at: Timestamp,
    #[serde(flatten)]
    pub event: ActivityEvent,
}

impl ActivityEnvelope {
    pub fn new(event: ActivityEvent, received_at: Timestamp) -> Self {
        Self {
            schema_version: ACTIVITY_SCHEMA_VERSION,
            received_at,
            event,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("events always serialise")
    }

    /// Reads a stream record: `Ok(None)` for an event type this build does not know (a
    /// newer producer's, skipped as the order consumers skip theirs); errors are permanent
    /// (dead-letter the record).
    pub fn decode(bytes: &[u8]) -> Result<Option<Self>, DecodeError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::NotJson(e.to_string()))?;
        // The type first: a type this build does not know is skipped whatever its version,
        // as the order consumers skip theirs.
        let event_type = value
            .get("eventType")
            .and_then(|t| t.as_str())
            .ok_or_else(|| DecodeError::Malformed("eventType is missing".into()))?;
        if !ACTIVITY_EVENT_TYPES.contains(&event_type) {
            return Ok(None);
        }
        let version = value
            .get("schemaVersion")
            .ok_or_else(|| DecodeError::Malformed("schemaVersion is missing".into()))?;
        if version.as_u64() != Some(u64::from(ACTIVITY_SCHEMA_VERSION)) {
            return Err(DecodeError::UnsupportedSchemaVersion(version.to_string()));
        }
        serde_json::from_value(value)
            .map(Some)
            .map_err(|e| DecodeError::Malformed(e.to_string()))
    }
}
