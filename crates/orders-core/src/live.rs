//! Live updates: who may open a socket, what it may subscribe to, and what each order
//! event pushes to whom.
//!
//! # Opening a socket
//! A browser cannot set an `Authorization` header on a WebSocket, and a token in the URL
//! ends up in access logs. So a signed-in client first asks the HTTP API (behind the same
//! JWT authorizer as every route) for a **ticket**: a random, single-use id that names the
//! caller's [`Audience`] and expires after [`TICKET_TTL_SECONDS`]. `$connect` redeems it
//! (deleting it, so it cannot be used twice) and records the connection with that audience.
//! A connection is kept for [`CONNECTION_TTL_SECONDS`] at most: API Gateway closes sockets
//! after two hours, and `$disconnect` is best-effort, so the store's TTL removes the rest.
//!
//! # What is pushed
//! Every order event becomes an [`OrderChanged`] message for the [`Topic::Orders`]
//! subscribers allowed to see the order (staff, and the customer who owns it), and an
//! [`AnalyticsDelta`] — exactly what the event adds to the analytics of its minute
//! ([`Effect::of`]) — for staff subscribed to [`Topic::Analytics`]. Delivery is at least
//! once (a retried batch pushes again; the relay may publish an event twice), so both carry
//! the `eventId` and the order's `version`: clients drop what they have seen. The deltas make
//! a dashboard fresh within a second; the exact figures stay the analytics routes', which a
//! dashboard reads again now and then.

use crate::analytics::{Bucket, Effect, Granularity};
use crate::caller::Caller;
use crate::error::{FieldError, OrderError};
use crate::event::EventEnvelope;
use crate::ids::{CustomerId, ProductId};
use crate::order::Order;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// How long a ticket can wait to be redeemed.
pub const TICKET_TTL_SECONDS: i64 = 60;
/// API Gateway's maximum connection duration (2 h) plus a margin for clock skew.
pub const CONNECTION_TTL_SECONDS: i64 = 2 * 3600 + 300;
/// What one connection may subscribe to at most (every topic there is).
pub const MAX_TOPICS: usize = 2;

/// A stream of pushed messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Topic {
    /// Order changes: every order for staff, its own for a customer.
    Orders,
    /// What each change adds to the analytics (staff only, as the analytics routes).
    Analytics,
}

impl Topic {
    pub const ALL: [Topic; 2] = [Topic::Orders, Topic::Analytics];

    pub fn as_str(&self) -> &'static str {
        match self {
            Topic::Orders => "orders",
            Topic::Analytics => "analytics",
        }
    }
}

/// Whose changes a connection may receive: the HTTP API's rules.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Audience {
    /// Staff, or anyone where the API runs without sign-in: every order, the analytics.
    Everyone,
    /// A customer: its own orders, no analytics.
    Customer(CustomerId),
}

impl Audience {
    pub fn of(caller: &Caller) -> Self {
        match caller {
            Caller::Customer(id) => Audience::Customer(id.clone()),
            Caller::Staff | Caller::Anonymous => Audience::Everyone,
        }
    }

    /// The audiences that receive a change of `order`.
    pub fn of_order(order: &Order) -> [Audience; 2] {
        [
            Audience::Everyone,
            Audience::Customer(order.customer_id.clone()),
        ]
    }

    /// The stored key that finds an audience's connections (`all`, `customer#c-1`).
    pub fn key(&self) -> String {
        match self {
            Audience::Everyone => "all".to_owned(),
            Audience::Customer(id) => format!("customer#{id}"),
        }
    }

    /// The audience a stored key names.
    pub fn parse(key: &str) -> Option<Self> {
        if key == "all" {
            return Some(Audience::Everyone);
        }
        let id = key.strip_prefix("customer#")?;
        CustomerId::parse(id).ok().map(Audience::Customer)
    }

    pub fn may_receive(&self, topic: Topic) -> bool {
        match self {
            Audience::Everyone => true,
            Audience::Customer(_) => topic == Topic::Orders,
        }
    }
}

/// A single-use permission to open one socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: String,
    pub audience: Audience,
    pub expires_at: Timestamp,
}

impl Ticket {
    pub fn issue(id: String, caller: &Caller, now: Timestamp) -> Self {
        Self {
            id,
            audience: Audience::of(caller),
            expires_at: now.plus_seconds(TICKET_TTL_SECONDS),
        }
    }

    /// DynamoDB's TTL deletes late, so an expired ticket may still be stored.
    pub fn is_valid_at(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }
}

/// An open socket and what it listens to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub id: String,
    pub audience: Audience,
    pub topics: BTreeSet<Topic>,
    pub expires_at: Timestamp,
}

impl Connection {
    /// A socket just opened with `ticket`: it listens to nothing until it subscribes.
    pub fn open(id: String, ticket: &Ticket, now: Timestamp) -> Self {
        Self {
            id,
            audience: ticket.audience.clone(),
            topics: BTreeSet::new(),
            expires_at: now.plus_seconds(CONNECTION_TTL_SECONDS),
        }
    }
}

/// A client's `{"action": "subscribe", "topics": [...]}`: the topics, each known and
/// allowed to `audience`, or every bad one named.
pub fn parse_subscribe(body: &str, audience: &Audience) -> Result<BTreeSet<Topic>, OrderError> {
    #[derive(Deserialize)]
    struct Subscribe {
        topics: Vec<String>,
    }
    let request: Subscribe = serde_json::from_str(body).map_err(|_| {
        OrderError::validation(
            "topics",
            "send {\"action\": \"subscribe\", \"topics\": [\"orders\", \"analytics\"]}",
        )
    })?;
    if request.topics.is_empty() || request.topics.len() > MAX_TOPICS * 4 {
        return Err(OrderError::validation(
            "topics",
            "must name one or more of: orders, analytics",
        ));
    }
    let mut topics = BTreeSet::new();
    let mut errors = Vec::new();
    for (i, name) in request.topics.iter().enumerate() {
        match Topic::ALL.into_iter().find(|t| t.as_str() == name) {
            Some(topic) if audience.may_receive(topic) => {
                topics.insert(topic);
            }
            Some(topic) => {
                return Err(OrderError::Forbidden(format!(
                    "the {} topic is for staff (a token with the orders/admin scope)",
                    topic.as_str()
                )));
            }
            None => errors.push(FieldError::new(
                format!("topics[{i}]"),
                "must be orders or analytics",
            )),
        }
    }
    if errors.is_empty() {
        Ok(topics)
    } else {
        Err(OrderError::Validation(errors))
    }
}

/// An order changed: its state after the change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderChanged<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub event_id: String,
    pub event_type: &'static str,
    pub order: &'a Order,
}

/// What one change adds to the analytics of the minute its order was placed in (the
/// minute, hour and day reports all count it there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalyticsDelta {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub event_id: String,
    pub order_id: String,
    pub version: u64,
    pub minute: Timestamp,
    pub orders: i64,
    pub processed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub revenue: i64,
    pub units: i64,
    pub products: Vec<ProductDelta>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductDelta {
    pub product_id: ProductId,
    pub units: i64,
    pub revenue: i64,
    pub orders: i64,
}

/// One message to push, and who receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub topic: Topic,
    pub audiences: Vec<Audience>,
    pub body: String,
}

/// What `event` pushes: the order change to those who may see the order, and its analytics
/// delta to staff.
pub fn pushes_of(event: &EventEnvelope) -> Vec<Push> {
    let order = event.event.order();
    let changed = OrderChanged {
        kind: "order",
        event_id: event.event_id.to_string(),
        event_type: event.event.event_type(),
        order,
    };
    let effect = Effect::of(event);
    let delta = AnalyticsDelta {
        kind: "analytics",
        event_id: event.event_id.to_string(),
        order_id: order.order_id.to_string(),
        version: order.version,
        minute: Bucket::containing(Granularity::Minute, effect.created_at).start_time(),
        orders: effect.totals.orders,
        processed: effect.totals.processed,
        failed: effect.totals.failed,
        cancelled: effect.totals.cancelled,
        revenue: effect.totals.revenue,
        units: effect.totals.units,
        products: effect
            .products
            .iter()
            .map(|(id, p)| ProductDelta {
                product_id: id.clone(),
                units: p.units,
                revenue: p.revenue,
                orders: p.orders,
            })
            .collect(),
    };
    vec![
        Push {
            topic: Topic::Orders,
            audiences: Audience::of_order(order).to_vec(),
            body: serde_json::to_string(&changed).unwrap_or_default(),
        },
        Push {
            topic: Topic::Analytics,
            audiences: vec![Audience::Everyone],
            body: serde_json::to_string(&delta).unwrap_or_default(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::{Currency, Money, Quantity};
    use crate::order::{NewLineItem, OrderStatus, PlaceOrder};
    use crate::{OrderEvent, OrderId};

    fn order(customer: &str) -> Order {
        let at = Timestamp::parse("2026-12-07T10:15:42Z").unwrap();
        Order::place(
            OrderId::new(ulid::Ulid::from_parts(at.unix_millis() as u64, 1)),
            &PlaceOrder {
                customer_id: CustomerId::parse(customer).unwrap(),
                currency: Currency::parse("USD").unwrap(),
                items: vec![NewLineItem {
                    product_id: ProductId::parse("sku-1").unwrap(),
                    quantity: Quantity::new(2).unwrap(),
                    unit_price: Money::from_minor(1999).unwrap(),
                }],
            },
            at,
        )
    }

    #[test]
    fn customers_get_their_own_orders_and_no_analytics() {
        let c1 = Audience::of(&Caller::Customer(CustomerId::parse("c-1").unwrap()));
        assert!(c1.may_receive(Topic::Orders));
        assert!(!c1.may_receive(Topic::Analytics));
        assert!(Audience::of(&Caller::Staff).may_receive(Topic::Analytics));
        assert_eq!(Audience::parse(&c1.key()), Some(c1.clone()));
        assert_eq!(Audience::parse("all"), Some(Audience::Everyone));
        assert_eq!(Audience::parse("customer#"), None);

        let placed = EventEnvelope::new(OrderEvent::for_current_state(&order("c-1")));
        let pushes = pushes_of(&placed);
        let orders = pushes.iter().find(|p| p.topic == Topic::Orders).unwrap();
        assert!(orders.audiences.contains(&c1));
        assert!(
            !orders
                .audiences
                .contains(&Audience::Customer(CustomerId::parse("c-2").unwrap()))
        );
        let analytics = pushes.iter().find(|p| p.topic == Topic::Analytics).unwrap();
        assert_eq!(analytics.audiences, vec![Audience::Everyone]);
    }

    #[test]
    fn a_delta_is_the_events_effect_in_its_minute() {
        let placed = order("c-1");
        let processed = placed
            .transition(OrderStatus::Processed, placed.created_at.plus_seconds(5))
            .unwrap();
        let event = EventEnvelope::new(OrderEvent::for_current_state(&processed));
        let pushes = pushes_of(&event);
        let delta: serde_json::Value = serde_json::from_str(&pushes[1].body).unwrap();
        assert_eq!(delta["type"], "analytics");
        assert_eq!(delta["minute"], "2026-12-07T10:15:00.000Z");
        assert_eq!(delta["orders"], 0);
        assert_eq!(delta["processed"], 1);
        assert_eq!(delta["revenue"], 3998);
        assert_eq!(delta["units"], 2);
        assert_eq!(delta["version"], 2);
        assert_eq!(delta["products"][0]["productId"], "sku-1");
        assert_eq!(delta["eventId"], event.event_id.to_string());
        let changed: serde_json::Value = serde_json::from_str(&pushes[0].body).unwrap();
        assert_eq!(changed["type"], "order");
        assert_eq!(changed["eventType"], "OrderProcessed");
        assert_eq!(changed["order"]["status"], "PROCESSED");
    }

    #[test]
    fn subscribing_names_every_bad_topic_and_refuses_analytics_to_customers() {
        let staff = Audience::Everyone;
        let customer = Audience::Customer(CustomerId::parse("c-1").unwrap());
        assert_eq!(
            parse_subscribe(
                r#"{"action":"subscribe","topics":["orders","analytics"]}"#,
                &staff
            )
            .unwrap(),
            BTreeSet::from([Topic::Orders, Topic::Analytics])
        );
        match parse_subscribe(r#"{"topics":["orders","nope",3]}"#, &staff) {
            Err(OrderError::Validation(_)) => {}
            other => panic!("expected a validation error, got {other:?}"),
        }
        match parse_subscribe(r#"{"topics":["orders","nope"]}"#, &staff) {
            Err(OrderError::Validation(fields)) => assert_eq!(fields[0].field, "topics[1]"),
            other => panic!("expected a validation error, got {other:?}"),
        }
        assert!(matches!(
            parse_subscribe(r#"{"topics":["analytics"]}"#, &customer),
            Err(OrderError::Forbidden(_))
        ));
        assert!(matches!(
            parse_subscribe(r#"{"topics":[]}"#, &customer),
            Err(OrderError::Validation(_))
        ));
    }

    #[test]
    fn tickets_expire() {
        let now = Timestamp::parse("2026-12-07T10:00:00Z").unwrap();
        let ticket = Ticket::issue("t".into(), &Caller::Staff, now);
        assert!(ticket.is_valid_at(now.plus_seconds(TICKET_TTL_SECONDS - 1)));
        assert!(!ticket.is_valid_at(now.plus_seconds(TICKET_TTL_SECONDS)));
        let connection = Connection::open("c".into(), &ticket, now);
        assert_eq!(connection.audience, Audience::Everyone);
        assert!(connection.topics.is_empty());
    }
}
