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
use crate::order::Order;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// Bumped on any incompatible change of an event's payload. Consumers reject versions they
/// do not know rather than guess.
pub const SCHEMA_VERSION: u32 = 1;

/// Namespace for derived event ids (a fixed random UUID, never to change).
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f1d_2c4e_8b3a_4f57_9e21_7c0d_5a9b_3e18);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

/// What happened to an order. The variant name is the envelope's `eventType`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "eventType", content = "payload")]
pub enum OrderEvent {
    OrderPlaced { order: Order },
}

impl OrderEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            OrderEvent::OrderPlaced { .. } => "OrderPlaced",
        }
    }

    pub fn order(&self) -> &Order {
        match self {
            OrderEvent::OrderPlaced { order } => order,
        }
    }
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
