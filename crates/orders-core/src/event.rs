//! The events published to the order stream, in a versioned envelope.
//!
//! ```json
//! {"eventId":"…","eventType":"OrderPlaced","schemaVersion":1,
//!  "occurredAt":"2026-11-21T10:00:00.000Z","orderId":"01J…","payload":{"order":{…}}}
//! ```
//!
//! The stream's partition key is the order id, so all events of one order stay in order on
//! one shard. Event ids are *derived* (UUIDv5 of order id, version and type), not random: a
//! retried publish of the same change carries the same `eventId`, which is what lets
//! consumers drop producer-side duplicates.

use crate::ids::OrderId;
use crate::order::{FailureReason, Order, OrderStatus};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// Bumped on any incompatible change of an event's payload. Consumers reject versions they
/// do not know rather than guess.
pub const SCHEMA_VERSION: u32 = 1;

/// Namespace for derived event ids (a fixed random UUID, never to change).
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f1d_2c4e_8b3a_4f57_9e21_7c0d_5a9b_3e18);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(Uuid);

impl EventId {
    /// The id of the event that records `order` reaching its current version.
    pub fn for_change(order_id: &OrderId, version: u64, event_type: &str) -> Self {
        let name = format!("{order_id}/{version}/{event_type}");
        Self(Uuid::new_v5(&EVENT_ID_NAMESPACE, name.as_bytes()))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What happened to an order. The variant name is the envelope's `eventType`; every payload
/// carries the order as of that event, so consumers never need to read the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "eventType", content = "payload")]
pub enum OrderEvent {
    OrderPlaced {
        order: Order,
    },
    OrderProcessed {
        order: Order,
    },
    OrderFailed {
        order: Order,
        reason: FailureReason,
    },
    /// A failed order back in `PENDING` for another attempt (`POST /orders/{orderId}/retry`),
    /// processed like a placed one. Its `order` carries the prices of the attempt (re-priced
    /// after `price_changed`) and `retries`.
    OrderRetried {
        order: Order,
    },
    #[serde(rename_all = "camelCase")]
    OrderCancelled {
        order: Order,
        previous_status: OrderStatus,
    },
    OrderShipped {
        order: Order,
    },
    OrderDelivered {
        order: Order,
    },
}

impl OrderEvent {
    /// The event recording `order`'s current state, derived from the order alone — which is
    /// what lets a writer re-publish an event whose first publish failed.
    pub fn for_current_state(order: &Order) -> Self {
        let order = order.clone();
        match order.status {
            // Only a retry makes a version after the first PENDING again.
            OrderStatus::Pending if order.version > 1 => OrderEvent::OrderRetried { order },
            OrderStatus::Pending => OrderEvent::OrderPlaced { order },
            OrderStatus::Processed => OrderEvent::OrderProcessed { order },
            OrderStatus::Failed => OrderEvent::OrderFailed {
                reason: order.failure_reason.unwrap_or(FailureReason::OutOfStock),
                order,
            },
            OrderStatus::Cancelled => OrderEvent::OrderCancelled {
                // Cancellation is only allowed from PENDING or PROCESSED, and only processed
                // orders have `processedAt`.
                previous_status: if order.processed_at.is_some() {
                    OrderStatus::Processed
                } else {
                    OrderStatus::Pending
                },
                order,
            },
            OrderStatus::Shipped => OrderEvent::OrderShipped { order },
            OrderStatus::Delivered => OrderEvent::OrderDelivered { order },
        }
    }

    /// The events that brought `order` to its current state, one per version (version 1 is
    /// `OrderPlaced`), as the relay published them, with their derived ids: what a rebuild
    /// of the analytics covers. `None` when the state cannot come from the transitions there
    /// are (its version does not match any path to it).
    ///
    /// Every retry puts two versions — `OrderFailed`, then `OrderRetried` — between placement
    /// and the rest of the path, so the version alone says how many retries there were: the
    /// rebuild reads orders from a listing index that need not carry `retries`. What an event
    /// here cannot know is what the table no longer holds: an earlier attempt's failure
    /// reason (a retry clears it; its `OrderFailed` says `out_of_stock`) and the prices it
    /// was made at (the order's current lines). Neither changes an event's id or what it adds
    /// to the analytics: `OrderPlaced`, `OrderFailed` and `OrderRetried` count no money, and
    /// the only event that does, `OrderProcessed`, was published with the lines the order
    /// still has (only a FAILED order is re-priced).
    pub fn history(order: &Order) -> Option<Vec<EventEnvelope>> {
        use OrderStatus::*;
        let tail: &[OrderStatus] = match (order.status, order.processed_at.is_some()) {
            (Pending, _) => &[],
            (Processed, _) => &[Processed],
            (Failed, _) => &[Failed],
            (Cancelled, true) => &[Processed, Cancelled],
            (Cancelled, false) => &[Cancelled],
            (Shipped, _) => &[Processed, Shipped],
            (Delivered, _) => &[Processed, Shipped, Delivered],
        };
        let retried_versions = order.version.checked_sub(1 + tail.len() as u64)?;
        if retried_versions % 2 != 0 {
            return None;
        }
        let retries = retried_versions / 2;
        if order.retries != 0 && u64::from(order.retries) != retries {
            return None;
        }
        let attempts = std::iter::repeat_n([Failed, Pending], usize::try_from(retries).ok()?);
        let path: Vec<OrderStatus> = std::iter::once(Pending)
            .chain(attempts.flatten())
            .chain(tail.iter().copied())
            .collect();
        let mut retried = 0u32;
        let mut processed = false;
        let mut events = Vec::with_capacity(path.len());
        for (i, status) in path.iter().enumerate() {
            if *status == Pending && i > 0 {
                retried += 1;
            }
            processed |= *status == Processed;
            let mut state = order.clone();
            state.status = *status;
            state.version = i as u64 + 1;
            state.retries = retried;
            if retried == 0 {
                state.retried_at = None;
            }
            if !processed {
                state.processed_at = None;
            }
            if *status != Failed {
                state.failed_at = None;
                state.failure_reason = None;
            }
            events.push(EventEnvelope::new(OrderEvent::for_current_state(&state)));
        }
        Some(events)
    }

    pub fn event_type(&self) -> &'static str {
        match self {
            OrderEvent::OrderPlaced { .. } => "OrderPlaced",
            OrderEvent::OrderProcessed { .. } => "OrderProcessed",
            OrderEvent::OrderFailed { .. } => "OrderFailed",
            OrderEvent::OrderRetried { .. } => "OrderRetried",
            OrderEvent::OrderCancelled { .. } => "OrderCancelled",
            OrderEvent::OrderShipped { .. } => "OrderShipped",
            OrderEvent::OrderDelivered { .. } => "OrderDelivered",
        }
    }

    pub fn order(&self) -> &Order {
        match self {
            OrderEvent::OrderPlaced { order }
            | OrderEvent::OrderProcessed { order }
            | OrderEvent::OrderFailed { order, .. }
            | OrderEvent::OrderRetried { order }
            | OrderEvent::OrderCancelled { order, .. }
            | OrderEvent::OrderShipped { order }
            | OrderEvent::OrderDelivered { order } => order,
        }
    }
}

/// Why a stream record could not be read as an event. All of these are permanent: the
/// same bytes will fail the same way, so the record belongs in a dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the record is not JSON: {0}")]
    NotJson(String),
    #[error("schema version {0} is not supported (this consumer reads version {SCHEMA_VERSION})")]
    UnsupportedSchemaVersion(String),
    #[error("the event is malformed: {0}")]
    Malformed(String),
}

impl DecodeError {
    /// A short, stable code for dead-letter messages and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::NotJson(_) => "not_json",
            DecodeError::UnsupportedSchemaVersion(_) => "unsupported_schema_version",
            DecodeError::Malformed(_) => "malformed_event",
        }
    }
}

/// A decoded stream record: an event we know, or one of a type this build does not know
/// (published by a newer producer) that consumers skip rather than reject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    Event(Box<EventEnvelope>),
    UnknownType(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    pub event_id: EventId,
    pub schema_version: u32,
    pub occurred_at: Timestamp,
    pub order_id: OrderId,
    #[serde(flatten)]
    pub event: OrderEvent,
}

impl EventEnvelope {
    /// Wraps an event about the order's current version; `occurredAt` is when that version
    /// was written, so a re-published event is byte-identical to the first.
    pub fn new(event: OrderEvent) -> Self {
        let order = event.order();
        Self {
            event_id: EventId::for_change(&order.order_id, order.version, event.event_type()),
            schema_version: SCHEMA_VERSION,
            occurred_at: order.updated_at,
            order_id: order.order_id,
            event,
        }
    }

    /// The stream partition key.
    pub fn partition_key(&self) -> String {
        self.order_id.to_string()
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("events always serialise")
    }

    /// Reads a stream record. The schema version is checked before the payload, so a
    /// version-2 event is reported as such rather than as "malformed".
    pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::NotJson(e.to_string()))?;
        match value.get("schemaVersion") {
            Some(v) if v.as_u64() == Some(u64::from(SCHEMA_VERSION)) => {}
            Some(v) => return Err(DecodeError::UnsupportedSchemaVersion(v.to_string())),
            None => return Err(DecodeError::Malformed("schemaVersion is missing".into())),
        }
        let event_type = value
            .get("eventType")
            .and_then(|t| t.as_str())
            .ok_or_else(|| DecodeError::Malformed("eventType is missing".into()))?;
        if !KNOWN_TYPES.contains(&event_type) {
            return Ok(Decoded::UnknownType(event_type.to_owned()));
        }
        serde_json::from_value(value)
            .map(|e| Decoded::Event(Box::new(e)))
            .map_err(|e| DecodeError::Malformed(e.to_string()))
    }
}

const KNOWN_TYPES: [&str; 7] = [
    "OrderPlaced",
    "OrderProcessed",
    "OrderFailed",
    "OrderRetried",
    "OrderCancelled",
    "OrderShipped",
    "OrderDelivered",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CustomerId, ProductId};
    use crate::money::{Currency, Money, Quantity};
    use crate::order::{NewLineItem, PlaceOrder};
    use ulid::Ulid;

    fn order() -> Order {
        let now = Timestamp::parse("2026-11-21T10:00:00Z").unwrap();
        let command = PlaceOrder {
            customer_id: CustomerId::parse("c-1").unwrap(),
            currency: Currency::parse("USD").unwrap(),
            items: vec![NewLineItem {
                product_id: ProductId::parse("sku-1").unwrap(),
                quantity: Quantity::new(2).unwrap(),
                unit_price: Money::from_minor(1999).unwrap(),
            }],
        };
        Order::place(OrderId::new(Ulid::from_parts(1, 2)), &command, now)
    }

    #[test]
    fn the_history_of_a_state_is_the_events_of_the_transitions_that_made_it() {
        use crate::analytics::{Effect, Fold};
        use OrderStatus::*;
        let at = Timestamp::parse("2026-11-21T10:05:00Z").unwrap();
        let placed = order();
        // The catalog a retry re-prices at: the order was placed at 1999.
        let catalog = [crate::product::Product {
            product_id: placed.items[0].product_id.clone(),
            name: "Mug".into(),
            price: Money::from_minor(2500).unwrap(),
            stock: 10,
            version: 3,
            updated_at: at,
        }];
        // `Pending` after `Failed` is a retry. Failures alternate between out_of_stock and
        // price_changed, so some retries re-price the order (the published events carry the
        // prices of their attempt; the history only the order's current ones).
        for path in [
            vec![],
            vec![Processed],
            vec![Failed],
            vec![Cancelled],
            vec![Processed, Cancelled],
            vec![Processed, Shipped],
            vec![Processed, Shipped, Delivered],
            vec![Failed, Pending],
            vec![Failed, Pending, Processed],
            vec![Failed, Pending, Failed],
            vec![Failed, Pending, Cancelled],
            vec![Failed, Pending, Failed, Pending, Processed, Cancelled],
            vec![
                Failed, Pending, Failed, Pending, Processed, Shipped, Delivered,
            ],
        ] {
            let mut states = vec![placed.clone()];
            let mut failures = 0;
            for next in &path {
                let last = states.last().unwrap();
                let state = match next {
                    Failed => {
                        failures += 1;
                        let reason = if failures % 2 == 0 {
                            FailureReason::PriceChanged
                        } else {
                            FailureReason::OutOfStock
                        };
                        last.fail(reason, at).unwrap()
                    }
                    Pending => last.retry(&catalog, at).unwrap(),
                    _ => last.transition(*next, at).unwrap(),
                };
                states.push(state);
            }
            let published: Vec<EventEnvelope> = states
                .iter()
                .map(|s| EventEnvelope::new(OrderEvent::for_current_state(s)))
                .collect();
            let history = OrderEvent::history(states.last().unwrap()).unwrap();
            let ids = |events: &[EventEnvelope]| -> Vec<(EventId, &'static str)> {
                events
                    .iter()
                    .map(|e| (e.event_id, e.event.event_type()))
                    .collect()
            };
            assert_eq!(ids(&history), ids(&published), "{path:?}");
            let fold = |events: &[EventEnvelope]| {
                let mut fold = Fold::default();
                for e in events {
                    fold.add(&Effect::of(e));
                }
                fold
            };
            assert_eq!(fold(&history), fold(&published), "{path:?}");
            // The rebuild reads orders from an index that does not carry `retries`: the
            // version tells.
            let mut listed = states.last().unwrap().clone();
            listed.retries = 0;
            listed.retried_at = None;
            assert_eq!(
                ids(&OrderEvent::history(&listed).unwrap()),
                ids(&published),
                "{path:?}"
            );
        }
        let retried = placed
            .fail(FailureReason::OutOfStock, at)
            .unwrap()
            .retry(&catalog, at)
            .unwrap();
        let types: Vec<&str> = OrderEvent::history(&retried.transition(Processed, at).unwrap())
            .unwrap()
            .iter()
            .map(|e| e.event.event_type())
            .collect();
        assert_eq!(
            types,
            [
                "OrderPlaced",
                "OrderFailed",
                "OrderRetried",
                "OrderProcessed"
            ]
        );
        let mut impossible = placed.transition(Processed, at).unwrap();
        impossible.version = 5;
        assert!(OrderEvent::history(&impossible).is_none());
        impossible.version = 4;
        impossible.retries = 2;
        assert!(
            OrderEvent::history(&impossible).is_none(),
            "version 4 is one retry"
        );
    }

    #[test]
    fn envelope_shape() {
        let envelope = EventEnvelope::new(OrderEvent::OrderPlaced { order: order() });
        let json: serde_json::Value = serde_json::from_slice(&envelope.to_json()).unwrap();
        assert_eq!(json["eventType"], "OrderPlaced");
        assert_eq!(json["schemaVersion"], 1);
        assert_eq!(json["orderId"], envelope.order_id.to_string());
        assert_eq!(json["occurredAt"], "2026-11-21T10:00:00.000Z");
        assert_eq!(json["payload"]["order"]["total"], 3998);
        assert!(json["eventId"].as_str().unwrap().len() == 36);
        let back: EventEnvelope = serde_json::from_value(json).unwrap();
        assert_eq!(back, envelope);
        assert_eq!(envelope.partition_key(), envelope.order_id.to_string());
    }

    #[test]
    fn decode_classifies_records() {
        let envelope = EventEnvelope::new(OrderEvent::OrderPlaced { order: order() });
        assert_eq!(
            EventEnvelope::decode(&envelope.to_json()),
            Ok(Decoded::Event(Box::new(envelope.clone())))
        );
        assert!(matches!(
            EventEnvelope::decode(b"\x00\x01garbage"),
            Err(DecodeError::NotJson(_))
        ));
        let mut v2: serde_json::Value = serde_json::from_slice(&envelope.to_json()).unwrap();
        v2["schemaVersion"] = 2.into();
        assert_eq!(
            EventEnvelope::decode(v2.to_string().as_bytes()),
            Err(DecodeError::UnsupportedSchemaVersion("2".into()))
        );
        let mut other: serde_json::Value = serde_json::from_slice(&envelope.to_json()).unwrap();
        other["eventType"] = "OrderGiftWrapped".into();
        assert_eq!(
            EventEnvelope::decode(other.to_string().as_bytes()),
            Ok(Decoded::UnknownType("OrderGiftWrapped".into()))
        );
        let mut broken: serde_json::Value = serde_json::from_slice(&envelope.to_json()).unwrap();
        broken["payload"] = serde_json::json!({});
        assert!(matches!(
            EventEnvelope::decode(broken.to_string().as_bytes()),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            EventEnvelope::decode(b"{}"),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn events_for_each_state() {
        let now = Timestamp::parse("2026-11-21T10:00:01Z").unwrap();
        let placed = order();
        let processed = placed.transition(OrderStatus::Processed, now).unwrap();
        let cancelled = processed.transition(OrderStatus::Cancelled, now).unwrap();
        let event = OrderEvent::for_current_state(&cancelled);
        assert_eq!(event.event_type(), "OrderCancelled");
        let json = serde_json::to_value(EventEnvelope::new(event)).unwrap();
        assert_eq!(json["payload"]["previousStatus"], "PROCESSED");
        let failed = placed.fail(FailureReason::UnknownProduct, now).unwrap();
        let json = serde_json::to_value(EventEnvelope::new(OrderEvent::for_current_state(&failed)))
            .unwrap();
        assert_eq!(json["eventType"], "OrderFailed");
        assert_eq!(json["payload"]["reason"], "unknown_product");
        let retried = failed
            .transition(OrderStatus::Pending, now)
            .map(|mut o| {
                o.retries = 1;
                o
            })
            .unwrap();
        let json =
            serde_json::to_value(EventEnvelope::new(OrderEvent::for_current_state(&retried)))
                .unwrap();
        assert_eq!(json["eventType"], "OrderRetried");
        assert_eq!(json["payload"]["order"]["version"], 3);
        assert!(matches!(
            EventEnvelope::decode(json.to_string().as_bytes()),
            Ok(Decoded::Event(e)) if e.event.event_type() == "OrderRetried"
        ));
        let early = placed.transition(OrderStatus::Cancelled, now).unwrap();
        assert_eq!(
            OrderEvent::for_current_state(&early),
            OrderEvent::OrderCancelled {
                order: early.clone(),
                previous_status: OrderStatus::Pending
            }
        );
    }

    #[test]
    fn event_ids_are_stable_per_change() {
        let o = order();
        let a = EventEnvelope::new(OrderEvent::OrderPlaced { order: o.clone() });
        let b = EventEnvelope::new(OrderEvent::OrderPlaced { order: o.clone() });
        assert_eq!(a.event_id, b.event_id);
        assert_eq!(a.to_json(), b.to_json());
        let mut next = o;
        next.version = 2;
        assert_ne!(
            EventId::for_change(&next.order_id, 2, "OrderPlaced"),
            a.event_id
        );
    }
}
