//! The events published to the order stream, in a versioned envelope.
//!
//! ```json
//! {"eventId":"…","eventType":"OrderPlaced","schemaVersion":2,
//!  "occurredAt":"2026-11-21T10:00:00.000Z","orderId":"01J…",
//!  "payload":{"order":{…},"totals":{"units":3,"lines":2}}}
//! ```
//!
//! The stream's partition key is the order id, so all events of one order stay in order on
//! one shard. Event ids are *derived* (UUIDv5 of order id, version and type), not random: a
//! retried publish of the same change carries the same `eventId`, which is what lets
//! consumers drop producer-side duplicates.
//!
//! The contract of each type is `api/events/<eventType>.schema.json`; `tests/events.rs` holds
//! what this module emits to it, and it to the released contract (`docs/events.md`).

use crate::ids::OrderId;
use crate::order::{FailureReason, Order, OrderStatus};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// The schema version every event type was first published at. Per type, the version this
/// build writes is in [`EVENT_TYPES`]; each version after this one has an [`Upcaster`].
pub const SCHEMA_VERSION: u32 = 1;

/// Every event type this build knows, with the schema version it writes it at — the newest
/// it reads. A type's version is bumped on an incompatible change of its payload, together
/// with an [`Upcaster`] from the previous version, so consumers read the events already on
/// the stream (and in dead-letter queues) as the new version. The contract of each
/// (type, version) is `api/events/<type>.schema.json`; `docs/events.md` says how to evolve it.
pub const EVENT_TYPES: [(&str, u32); 7] = [
    // 2: `payload.totals` (`docs/events.md`, "The v2 upgrade of OrderPlaced").
    ("OrderPlaced", 2),
    ("OrderProcessed", SCHEMA_VERSION),
    ("OrderFailed", SCHEMA_VERSION),
    ("OrderRetried", SCHEMA_VERSION),
    ("OrderCancelled", SCHEMA_VERSION),
    ("OrderShipped", SCHEMA_VERSION),
    ("OrderDelivered", SCHEMA_VERSION),
];

/// The schema version this build writes and reads `event_type` at; `None` for a type it
/// does not know.
pub fn current_version(event_type: &str) -> Option<u32> {
    EVENT_TYPES
        .iter()
        .find(|(known, _)| *known == event_type)
        .map(|(_, version)| *version)
}

/// One step of an event type's history: reads an envelope written at schema version `from`
/// (as JSON) and returns it as version `from + 1`. [`EventEnvelope::decode`] chains the steps
/// up to the type's current version and sets `schemaVersion` after each, so an upcaster only
/// reshapes the rest — and must, for every event that version allowed (its released schema,
/// `api/events/released/<from>/`).
#[derive(Debug, Clone, Copy)]
pub struct Upcaster {
    pub event_type: &'static str,
    pub from: u32,
    pub upcast: fn(serde_json::Value) -> serde_json::Value,
}

/// Every upcaster there is; the contract check (`tests/events`) refuses a schema whose
/// version was bumped without one. Each stays as long as events of its `from` version can
/// still be read: the stream's retention plus a dead letter's (`docs/events.md`).
pub const UPCASTERS: &[Upcaster] = &[Upcaster {
    event_type: "OrderPlaced",
    from: 1,
    upcast: placed_v1_to_v2,
}];

/// `OrderPlaced` 1 → 2: adds `payload.totals`, computed from `payload.order.items` as the
/// version-2 producer computes it ([`OrderTotals::of`]) — so a version-1 event reads exactly
/// as the version-2 event of the same order version, no default needed. A `totals` the
/// version-1 event carried (its schema was open, so it meant nothing) is replaced. An event
/// whose lines do not sum (version 1 never allowed that) is left as it is: `decode` reports
/// it malformed.
fn placed_v1_to_v2(mut event: serde_json::Value) -> serde_json::Value {
    let totals = event
        .pointer("/payload/order/items")
        .and_then(serde_json::Value::as_array)
        .and_then(|items| {
            let units = items.iter().try_fold(0u64, |sum, item| {
                sum.checked_add(item.get("quantity")?.as_u64()?)
            })?;
            Some(serde_json::json!({ "units": units, "lines": items.len() }))
        });
    if let (Some(totals), Some(payload)) = (
        totals,
        event
            .get_mut("payload")
            .and_then(serde_json::Value::as_object_mut),
    ) {
        payload.insert("totals".into(), totals);
    }
    event
}

/// The step from `from` to `from + 1` for `event_type`, if there is one.
pub fn upcaster(event_type: &str, from: u32) -> Option<&'static Upcaster> {
    find_upcaster(UPCASTERS, event_type, from)
}

fn find_upcaster<'a>(
    upcasters: &'a [Upcaster],
    event_type: &str,
    from: u32,
) -> Option<&'a Upcaster> {
    upcasters
        .iter()
        .find(|u| u.event_type == event_type && u.from == from)
}

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

/// What an order comes to in units and lines: `OrderPlaced`'s summary (since version 2),
/// so a consumer that sizes work by it (picking, packing, a fraud rule on bulk orders) need
/// not walk the lines. Both are fixed at placement — a retry re-prices lines but never
/// changes them — so every event derived for the order's placement, live or in a rebuild,
/// carries the same totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTotals {
    /// The sum of the lines' quantities.
    pub units: u64,
    /// How many lines the order has.
    pub lines: u32,
}

impl OrderTotals {
    pub fn of(order: &Order) -> Self {
        Self {
            units: order.units(),
            // Validation caps an order at 99 lines.
            lines: u32::try_from(order.items.len()).unwrap_or(u32::MAX),
        }
    }
}

/// What happened to an order. The variant name is the envelope's `eventType`; every payload
/// carries the order as of that event, so consumers never need to read the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "eventType", content = "payload")]
pub enum OrderEvent {
    /// A new order, `PENDING` at version 1. Make it with [`OrderEvent::placed`], which
    /// derives `totals` from the order.
    OrderPlaced {
        order: Order,
        totals: OrderTotals,
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
    /// `OrderPlaced` for `order`, its totals derived from its lines.
    pub fn placed(order: Order) -> Self {
        OrderEvent::OrderPlaced {
            totals: OrderTotals::of(&order),
            order,
        }
    }

    /// The event recording `order`'s current state, derived from the order alone — which is
    /// what lets a writer re-publish an event whose first publish failed.
    pub fn for_current_state(order: &Order) -> Self {
        let order = order.clone();
        match order.status {
            // Only a retry makes a version after the first PENDING again.
            OrderStatus::Pending if order.version > 1 => OrderEvent::OrderRetried { order },
            OrderStatus::Pending => OrderEvent::placed(order),
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
    /// still has (only a FAILED order is re-priced). `OrderPlaced`'s `totals` are the
    /// published ones: units and lines do not change after placement.
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
            OrderEvent::OrderPlaced { order, .. }
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
    /// Newer than this build reads, or older with no upcaster to bring it up to date.
    #[error("schema version {0} is not supported by this consumer")]
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
            schema_version: current_version(event.event_type())
                .expect("every event type is in EVENT_TYPES"),
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
    /// version-2 event is reported as such rather than as "malformed"; an older version is
    /// upcast to the current one ([`UPCASTERS`]), so callers only ever see current events.
    /// Unknown fields are ignored (a newer producer may add optional ones); a type this build
    /// does not know is [`Decoded::UnknownType`], whatever its version.
    pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
        Self::decode_with(bytes, UPCASTERS)
    }

    /// [`EventEnvelope::decode`] with the given upcasters (tests bring their own).
    pub fn decode_with(bytes: &[u8], upcasters: &[Upcaster]) -> Result<Decoded, DecodeError> {
        let mut value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::NotJson(e.to_string()))?;
        let unsupported =
            |v: &serde_json::Value| DecodeError::UnsupportedSchemaVersion(v.to_string());
        let written = value
            .get("schemaVersion")
            .ok_or_else(|| DecodeError::Malformed("schemaVersion is missing".into()))?;
        let mut version = written
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| unsupported(written))?;
        let event_type = value
            .get("eventType")
            .and_then(|t| t.as_str())
            .ok_or_else(|| DecodeError::Malformed("eventType is missing".into()))?
            .to_owned();
        let Some(current) = current_version(&event_type) else {
            return Ok(Decoded::UnknownType(event_type));
        };
        if version > current {
            return Err(unsupported(&version.into()));
        }
        let written = version;
        while version < current {
            let step = find_upcaster(upcasters, &event_type, version)
                .ok_or_else(|| unsupported(&written.into()))?;
            value = (step.upcast)(value);
            version += 1;
            value
                .as_object_mut()
                .ok_or_else(|| DecodeError::Malformed("an upcaster returned no object".into()))?
                .insert("schemaVersion".into(), version.into());
        }
        serde_json::from_value(value)
            .map(|e| Decoded::Event(Box::new(e)))
            .map_err(|e| DecodeError::Malformed(e.to_string()))
    }
}

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
            // Placement's totals too: a retry re-prices the lines, never changes them.
            let totals = |e: &EventEnvelope| match e.event {
                OrderEvent::OrderPlaced { totals, .. } => Some(totals),
                _ => None,
            };
            assert_eq!(totals(&history[0]), totals(&published[0]), "{path:?}");
            assert_eq!(totals(&history[0]), Some(OrderTotals::of(&placed)));
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
        let envelope = EventEnvelope::new(OrderEvent::placed(order()));
        let json: serde_json::Value = serde_json::from_slice(&envelope.to_json()).unwrap();
        assert_eq!(json["eventType"], "OrderPlaced");
        assert_eq!(json["schemaVersion"], 2);
        assert_eq!(json["orderId"], envelope.order_id.to_string());
        assert_eq!(json["occurredAt"], "2026-11-21T10:00:00.000Z");
        assert_eq!(json["payload"]["order"]["total"], 3998);
        assert_eq!(
            json["payload"]["totals"],
            serde_json::json!({"units": 2, "lines": 1})
        );
        assert!(json["eventId"].as_str().unwrap().len() == 36);
        let back: EventEnvelope = serde_json::from_value(json).unwrap();
        assert_eq!(back, envelope);
        assert_eq!(envelope.partition_key(), envelope.order_id.to_string());
    }

    #[test]
    fn decode_classifies_records() {
        let envelope = EventEnvelope::new(OrderEvent::placed(order()));
        assert_eq!(
            EventEnvelope::decode(&envelope.to_json()),
            Ok(Decoded::Event(Box::new(envelope.clone())))
        );
        assert!(matches!(
            EventEnvelope::decode(b"\x00\x01garbage"),
            Err(DecodeError::NotJson(_))
        ));
        let mut v3: serde_json::Value = serde_json::from_slice(&envelope.to_json()).unwrap();
        v3["schemaVersion"] = 3.into();
        assert_eq!(
            EventEnvelope::decode(v3.to_string().as_bytes()),
            Err(DecodeError::UnsupportedSchemaVersion("3".into()))
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

    /// A made-up version 0 of `OrderPlaced` that called the order `placed` (and, like
    /// version 1, had no totals).
    fn v0_placed(order: &Order) -> serde_json::Value {
        let mut v0 =
            serde_json::to_value(EventEnvelope::new(OrderEvent::placed(order.clone()))).unwrap();
        v0["schemaVersion"] = 0.into();
        let payload = v0["payload"].as_object_mut().unwrap();
        payload.remove("totals");
        let order = payload.remove("order").unwrap();
        v0["payload"]["placed"] = order;
        v0
    }

    fn rename_placed(mut v0: serde_json::Value) -> serde_json::Value {
        if let Some(order) = v0["payload"]
            .as_object_mut()
            .and_then(|p| p.remove("placed"))
        {
            v0["payload"]["order"] = order;
        }
        v0
    }

    #[test]
    fn decode_upcasts_older_versions_to_the_current_one() {
        let current = EventEnvelope::new(OrderEvent::placed(order()));
        let v0 = v0_placed(&order()).to_string();
        let upcasters = [
            Upcaster {
                event_type: "OrderPlaced",
                from: 0,
                upcast: rename_placed,
            },
            UPCASTERS[0],
        ];
        assert_eq!(
            EventEnvelope::decode_with(v0.as_bytes(), &upcasters),
            Ok(Decoded::Event(Box::new(current.clone()))),
            "read as version 2, step by step, schemaVersion included"
        );
        // Every step is needed: without the one from 1, version 0 stops there.
        assert_eq!(
            EventEnvelope::decode_with(v0.as_bytes(), &upcasters[..1]),
            Err(DecodeError::UnsupportedSchemaVersion("0".into()))
        );
        // Without a step from 0, or with one for another type, version 0 is unreadable.
        assert_eq!(
            EventEnvelope::decode(v0.as_bytes()),
            Err(DecodeError::UnsupportedSchemaVersion("0".into()))
        );
        let elsewhere = [Upcaster {
            event_type: "OrderShipped",
            ..upcasters[0]
        }];
        assert_eq!(
            EventEnvelope::decode_with(v0.as_bytes(), &elsewhere),
            Err(DecodeError::UnsupportedSchemaVersion("0".into()))
        );
        // Current events pass through untouched: no step runs.
        let never = Upcaster {
            event_type: "OrderPlaced",
            from: 1,
            upcast: |_| panic!("a current event is never upcast"),
        };
        let panics = [never, Upcaster { from: 2, ..never }];
        assert_eq!(
            EventEnvelope::decode_with(&current.to_json(), &panics),
            Ok(Decoded::Event(Box::new(current.clone())))
        );
        let broken = [Upcaster {
            upcast: |_| serde_json::Value::Null,
            ..upcasters[0]
        }];
        assert!(matches!(
            EventEnvelope::decode_with(v0.as_bytes(), &broken),
            Err(DecodeError::Malformed(_))
        ));
    }

    /// `OrderPlaced` as the version-1 relay wrote it, recorded from that build (before the
    /// bump) — `tests/events` holds them to `api/events/released/1/`.
    const RECORDED_V1: [&str; 2] = [
        include_str!("../../../tests/events/fixtures/v1/OrderPlaced.one-line.json"),
        include_str!("../../../tests/events/fixtures/v1/OrderPlaced.two-lines.json"),
    ];

    #[test]
    fn a_recorded_v1_order_placed_reads_as_the_v2_event_of_the_same_order_version() {
        for recorded in RECORDED_V1 {
            let v1: serde_json::Value = serde_json::from_str(recorded).unwrap();
            assert_eq!(v1["schemaVersion"], 1);
            let order: Order = serde_json::from_value(v1["payload"]["order"].clone()).unwrap();
            // What this build's relay publishes for the same stored version.
            let v2 = EventEnvelope::new(OrderEvent::for_current_state(&order));
            assert_eq!(
                EventEnvelope::decode(recorded.as_bytes()),
                Ok(Decoded::Event(Box::new(v2.clone())))
            );
            // The id is the change's, whatever the version: a v1 publish and a v2 re-publish
            // of one change are duplicates to consumers, who drop them by id.
            assert_eq!(v1["eventId"], v2.event_id.to_string());
            assert_eq!(v2.schema_version, 2);
            let OrderEvent::OrderPlaced { totals, .. } = v2.event else {
                panic!("a placed order's event is OrderPlaced")
            };
            let lines = v1["payload"]["order"]["items"].as_array().unwrap();
            let units: u64 = lines.iter().map(|l| l["quantity"].as_u64().unwrap()).sum();
            assert_eq!((totals.units, totals.lines as usize), (units, lines.len()));
            // Without the upcaster, the recorded event is a dead letter.
            assert_eq!(
                EventEnvelope::decode_with(recorded.as_bytes(), &[]),
                Err(DecodeError::UnsupportedSchemaVersion("1".into()))
            );
        }
    }

    #[test]
    fn the_v1_upcaster_reads_whatever_version_1_allowed_and_no_more() {
        let recorded: serde_json::Value = serde_json::from_str(RECORDED_V1[1]).unwrap();
        let decode = |v1: &serde_json::Value| EventEnvelope::decode(v1.to_string().as_bytes());
        let expected = decode(&recorded).unwrap();
        // Version 1 was open: unknown properties, a meaningless `totals` among them.
        let mut open = recorded.clone();
        open["traceId"] = "t-1".into();
        open["payload"]["channel"] = "web".into();
        open["payload"]["totals"] = serde_json::json!({"units": "many"});
        open["payload"]["order"]["items"][1]["sku"] = "x".into();
        assert_eq!(decode(&open), Ok(expected.clone()));
        // What version 1 never allowed is malformed, not a panic.
        for pointer in ["/payload/order/items", "/payload/order", "/payload"] {
            let (parent, field) = pointer.rsplit_once('/').unwrap();
            let mut broken = recorded.clone();
            let parent = if parent.is_empty() {
                &mut broken
            } else {
                broken.pointer_mut(parent).unwrap()
            };
            parent.as_object_mut().unwrap().remove(field);
            assert!(
                matches!(decode(&broken), Err(DecodeError::Malformed(_))),
                "without {pointer}"
            );
        }
        let mut huge = recorded.clone();
        for line in 0..2 {
            huge["payload"]["order"]["items"][line]["quantity"] = u64::MAX.into();
        }
        assert!(matches!(decode(&huge), Err(DecodeError::Malformed(_))));
        let mut not_an_object = recorded;
        not_an_object["payload"] = serde_json::json!([1]);
        assert!(matches!(
            decode(&not_an_object),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn decode_ignores_unknown_fields_and_skips_unknown_types_at_any_version() {
        let envelope = EventEnvelope::new(OrderEvent::placed(order()));
        let mut json: serde_json::Value = serde_json::from_slice(&envelope.to_json()).unwrap();
        json["traceId"] = "t-1".into();
        json["payload"]["channel"] = "web".into();
        json["payload"]["order"]["giftNote"] = "for you".into();
        json["payload"]["order"]["items"][0]["sku"] = "x".into();
        assert_eq!(
            EventEnvelope::decode(json.to_string().as_bytes()),
            Ok(Decoded::Event(Box::new(envelope)))
        );
        json["eventType"] = "OrderGiftWrapped".into();
        json["schemaVersion"] = 7.into();
        assert_eq!(
            EventEnvelope::decode(json.to_string().as_bytes()),
            Ok(Decoded::UnknownType("OrderGiftWrapped".into()))
        );
        json["eventType"] = "OrderPlaced".into();
        json["schemaVersion"] = "1".into();
        assert_eq!(
            EventEnvelope::decode(json.to_string().as_bytes()),
            Err(DecodeError::UnsupportedSchemaVersion("\"1\"".into()))
        );
    }

    #[test]
    fn every_event_type_has_a_version_and_every_version_is_reachable() {
        let at = Timestamp::parse("2026-11-21T10:05:00Z").unwrap();
        let placed = order();
        let processed = placed.transition(OrderStatus::Processed, at).unwrap();
        let failed = placed.fail(FailureReason::OutOfStock, at).unwrap();
        let shipped = processed.transition(OrderStatus::Shipped, at).unwrap();
        let states = [
            placed.clone(),
            processed.clone(),
            failed.clone(),
            failed.retry(&[], at).unwrap(),
            processed.transition(OrderStatus::Cancelled, at).unwrap(),
            shipped.clone(),
            shipped.transition(OrderStatus::Delivered, at).unwrap(),
        ];
        let mut types: Vec<&str> = states
            .iter()
            .map(|s| OrderEvent::for_current_state(s).event_type())
            .collect();
        let mut known: Vec<&str> = EVENT_TYPES.iter().map(|(t, _)| *t).collect();
        types.sort();
        known.sort();
        assert_eq!(types, known);
        for (event_type, version) in EVENT_TYPES {
            // A type at version n reads every version from 1 on: a step for each.
            for from in SCHEMA_VERSION..version {
                assert!(
                    upcaster(event_type, from).is_some(),
                    "{event_type}: no upcaster from version {from}"
                );
            }
        }
    }

    #[test]
    fn event_ids_are_stable_per_change() {
        let o = order();
        let a = EventEnvelope::new(OrderEvent::placed(o.clone()));
        let b = EventEnvelope::new(OrderEvent::placed(o.clone()));
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
