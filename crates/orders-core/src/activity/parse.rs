//! `POST /events`: an untrusted JSON batch into [`ActivityEvent`]s, all or nothing.
//!
//! ```json
//! {"events":[{"eventId":"e-1","eventType":"AddedToCart","sessionId":"s-1",
//!             "productId":"sku-1","quantity":2,"occurredAt":"2026-11-22T10:31:07.120Z"}]}
//! ```
//!
//! Like an order body, the batch is walked by hand so that every bad field is named at
//! once by its path (`events[3].productId`), and one bad field refuses the whole batch:
//! the client fixes and resends it, and nothing of it was stored.
//!
//! **Duplicates inside a batch** (same session and `eventId`) are collapsed when they are
//! the same event — what a client that re-queues an unsent event produces, and what the
//! stream consumer does with copies across batches anyway — and refused when their
//! contents differ: that is a client bug (an id reused), and keeping either would
//! silently lose the other.

use super::{ActivityEvent, ActivityKind};
use crate::caller::Caller;
use crate::error::{FieldError, OrderError};
use crate::ids::{ActivityEventId, CustomerId, ProductId, SessionId};
use crate::money::{MAX_QUANTITY, MIN_QUANTITY, Quantity};
use crate::time::Timestamp;
use crate::validation::{MAX_ITEMS, reject_unknown, required_integer, required_str};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// Events per batch: one Kinesis `PutRecords` call takes at most 500 records.
pub const MAX_BATCH_EVENTS: usize = 500;
/// Products a checkout's cart names: as many as an order may have lines.
pub const MAX_CART_PRODUCTS: usize = MAX_ITEMS;
/// How far ahead of the server's clock an event may be: device clocks drift by seconds to
/// minutes; more than this is a wrong clock, whose events would land in buckets that have
/// not happened yet.
pub const MAX_FUTURE_SECONDS: i64 = 5 * 60;
/// How old an event may be when it arrives: long enough for a client that was offline or
/// retried through an outage, short enough that a day's buckets settle the day after, and
/// well inside the stream's retention and the claims' lifetime (`docs/activity.md`).
pub const MAX_AGE_SECONDS: i64 = 24 * 60 * 60;

const BATCH_FIELDS: [&str; 1] = ["events"];
const EVENT_FIELDS: [&str; 8] = [
    "eventId",
    "eventType",
    "sessionId",
    "customerId",
    "productId",
    "quantity",
    "cart",
    "occurredAt",
];

/// Validates a `POST /events` body sent by `caller`, received at `now` (the server's
/// clock). `Validation` names every bad field; `Forbidden` when the body is valid but a
/// customer sent an event for another customer (as for orders, [`Caller::event_customer`]).
/// A signed-in customer's events without `customerId` are attributed to it.
pub fn parse_activity_batch(
    body: &Value,
    caller: &Caller,
    now: Timestamp,
) -> Result<Vec<ActivityEvent>, OrderError> {
    let mut errors = Vec::new();
    let Some(object) = body.as_object() else {
        return Err(OrderError::validation(
            "$",
            "the body must be a JSON object",
        ));
    };
    reject_unknown(object, &BATCH_FIELDS, "", &mut errors);
    let items = match object.get("events") {
        None | Some(Value::Null) => {
            errors.push(FieldError::new("events", "is required"));
            &[][..]
        }
        Some(Value::Array(items)) if items.is_empty() || items.len() > MAX_BATCH_EVENTS => {
            errors.push(FieldError::new(
                "events",
                format!(
                    "must contain 1 to {MAX_BATCH_EVENTS} events (got {})",
                    items.len()
                ),
            ));
            &[][..]
        }
        Some(Value::Array(items)) => &items[..],
        Some(_) => {
            errors.push(FieldError::new("events", "must be an array"));
            &[][..]
        }
    };

    let mut events: Vec<ActivityEvent> = Vec::with_capacity(items.len());
    // dedup key -> (index in the body, index in `events`)
    let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
    let mut forbidden = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let path = format!("events[{index}]");
        let Some(event) = parse_event(item, &path, now, &mut errors) else {
            continue;
        };
        let event = match caller.event_customer(event.customer_id.clone()) {
            Ok(customer_id) => ActivityEvent {
                customer_id,
                ..event
            },
            Err(_) => {
                forbidden.push(format!("{path}.customerId"));
                continue;
            }
        };
        match seen.get(&event.dedup_key()) {
            Some(&(_, kept)) if events[kept] == event => {}
            Some(&(first, _)) => errors.push(FieldError::new(
                format!("{path}.eventId"),
                format!(
                    "events[{first}] has the same eventId and sessionId with other contents; \
                     each event needs its own eventId"
                ),
            )),
            None => {
                seen.insert(event.dedup_key(), (index, events.len()));
                events.push(event);
            }
        }
    }
    if !errors.is_empty() {
        return Err(OrderError::Validation(errors));
    }
    if !forbidden.is_empty() {
        return Err(OrderError::Forbidden(format!(
            "a customer sends events only for itself: leave customerId out, or send its own \
             ({})",
            forbidden.join(", ")
        )));
    }
    Ok(events)
}

/// One event, or `None` with its errors added.
fn parse_event(
    item: &Value,
    path: &str,
    now: Timestamp,
    errors: &mut Vec<FieldError>,
) -> Option<ActivityEvent> {
    let Some(object) = item.as_object() else {
        errors.push(FieldError::new(path, "must be an object"));
        return None;
    };
    let before = errors.len();
    reject_unknown(object, &EVENT_FIELDS, path, errors);
    let field = |name: &str| format!("{path}.{name}");

    let event_id = required_id(object, "eventId", &field("eventId"), errors, |s| {
        ActivityEventId::parse(s).map_err(|e| e.0)
    });
    let session_id = required_id(object, "sessionId", &field("sessionId"), errors, |s| {
        SessionId::parse(s).map_err(|e| e.0)
    });
    let customer_id = match object.get("customerId") {
        None | Some(Value::Null) => Some(None),
        Some(_) => required_id(object, "customerId", &field("customerId"), errors, |s| {
            CustomerId::parse(s).map_err(|e| e.0)
        })
        .map(Some),
    };
    let occurred_at = occurred_at(object, &field("occurredAt"), now, errors);

    // The type says which of productId, quantity and cart belong: one that does not is
    // named as such; one that does is checked for itself (all of them when the type is
    // unknown, so every bad field is named in one round).
    let type_field = field("eventType");
    let event_type = required_str(object, "eventType", &type_field, errors).and_then(|t| {
        let known = super::ACTIVITY_EVENT_TYPES
            .iter()
            .find(|k| **k == t)
            .copied();
        if known.is_none() {
            errors.push(FieldError::new(
                &type_field,
                format!("must be one of {}", super::ACTIVITY_EVENT_TYPES.join(", ")),
            ));
        }
        known
    });
    // (productId, quantity, cart) each type takes; the first two are required when taken.
    let takes = |name: &str| match (event_type, name) {
        (None, _) => true,
        (Some("ProductViewed"), name) => name == "productId",
        (Some("CheckoutStarted"), name) => name == "cart",
        (Some(_), name) => name != "cart",
    };
    let mut present = |name: &str| match object.get(name) {
        None | Some(Value::Null) => {
            if let Some(t) = event_type.filter(|_| takes(name) && name != "cart") {
                errors.push(FieldError::new(field(name), format!("is required for {t}")));
            }
            false
        }
        Some(_) if !takes(name) => {
            let t = event_type.unwrap_or_default();
            errors.push(FieldError::new(
                field(name),
                format!("is not a field of {t}"),
            ));
            false
        }
        Some(_) => true,
    };
    let (has_product, has_quantity, has_cart) =
        (present("productId"), present("quantity"), present("cart"));
    let product_id = has_product
        .then(|| {
            required_id(object, "productId", &field("productId"), errors, |s| {
                ProductId::parse(s).map_err(|e| e.0)
            })
        })
        .flatten();
    let quantity = has_quantity
        .then(|| quantity(object, &field("quantity"), errors))
        .flatten();
    let cart = if has_cart {
        parse_cart(&object["cart"], &field("cart"), errors)
    } else {
        Some(Vec::new())
    };
    let kind = match event_type? {
        "ProductViewed" => ActivityKind::ProductViewed {
            product_id: product_id?,
        },
        "AddedToCart" => ActivityKind::AddedToCart {
            product_id: product_id?,
            quantity: quantity?,
        },
        "RemovedFromCart" => ActivityKind::RemovedFromCart {
            product_id: product_id?,
            quantity: quantity?,
        },
        _ => ActivityKind::CheckoutStarted { cart: cart? },
    };

    if errors.len() != before {
        return None;
    }
    Some(ActivityEvent {
        event_id: event_id?,
        session_id: session_id?,
        customer_id: customer_id?,
        occurred_at: occurred_at?,
        kind,
    })
}

fn required_id<T>(
    object: &Map<String, Value>,
    key: &str,
    field: &str,
    errors: &mut Vec<FieldError>,
    parse: impl FnOnce(&str) -> Result<T, &'static str>,
) -> Option<T> {
    let s = required_str(object, key, field, errors)?;
    parse(s)
        .map_err(|e| errors.push(FieldError::new(field, e)))
        .ok()
}

fn quantity(
    object: &Map<String, Value>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Quantity> {
    let n = required_integer(object, "quantity", field, errors)?;
    let q = u32::try_from(n).ok().and_then(Quantity::new);
    if q.is_none() {
        errors.push(FieldError::new(
            field,
            format!("must be between {MIN_QUANTITY} and {MAX_QUANTITY}"),
        ));
    }
    q
}

fn occurred_at(
    object: &Map<String, Value>,
    field: &str,
    now: Timestamp,
    errors: &mut Vec<FieldError>,
) -> Option<Timestamp> {
    let text = required_str(object, "occurredAt", field, errors)?;
    let Some(at) = Timestamp::parse(text) else {
        errors.push(FieldError::new(
            field,
            "must be an RFC 3339 time, e.g. 2026-11-22T10:31:07.120Z",
        ));
        return None;
    };
    let (at_ms, now_ms) = (at.unix_millis(), now.unix_millis());
    if at_ms > now_ms + MAX_FUTURE_SECONDS * 1000 {
        errors.push(FieldError::new(
            field,
            format!(
                "is more than {} minutes after the server's time ({now}): check the device's clock",
                MAX_FUTURE_SECONDS / 60
            ),
        ));
        return None;
    }
    if at_ms < now_ms - MAX_AGE_SECONDS * 1000 {
        errors.push(FieldError::new(
            field,
            format!(
                "is more than {} hours before the server's time ({now}): events are accepted \
                 for {} hours",
                MAX_AGE_SECONDS / 3600,
                MAX_AGE_SECONDS / 3600
            ),
        ));
        return None;
    }
    Some(at)
}

/// The cart's products, each once; `None` (errors added) when any is bad.
fn parse_cart(cart: &Value, field: &str, errors: &mut Vec<FieldError>) -> Option<Vec<ProductId>> {
    let items = match cart {
        Value::Array(items) if items.len() > MAX_CART_PRODUCTS => {
            errors.push(FieldError::new(
                field,
                format!(
                    "must hold at most {MAX_CART_PRODUCTS} products (got {})",
                    items.len()
                ),
            ));
            return None;
        }
        Value::Array(items) => items,
        _ => {
            errors.push(FieldError::new(field, "must be an array of product ids"));
            return None;
        }
    };
    let before = errors.len();
    let mut seen = HashSet::new();
    let mut products = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("{field}[{i}]");
        match item.as_str().map(ProductId::parse) {
            None => errors.push(FieldError::new(path, "must be a product id (a string)")),
            Some(Err(e)) => errors.push(FieldError::new(path, e.0)),
            Some(Ok(id)) if !seen.insert(id.clone()) => {
                errors.push(FieldError::new(path, "appears more than once in the cart"))
            }
            Some(Ok(id)) => products.push(id),
        }
    }
    (errors.len() == before).then_some(products)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        Timestamp::parse("2026-11-22T12:00:00Z").unwrap()
    }

    fn view(id: &str) -> Value {
        json!({"eventId": id, "eventType": "ProductViewed", "sessionId": "s-1",
               "productId": "sku-1", "occurredAt": "2026-11-22T11:59:00Z"})
    }

    fn fields(body: Value) -> Vec<String> {
        match parse_activity_batch(&body, &Caller::Staff, now()) {
            Err(OrderError::Validation(errors)) => {
                let mut fields: Vec<String> = errors.into_iter().map(|e| e.field).collect();
                fields.sort();
                fields
            }
            other => panic!("should be a validation error: {other:?}"),
        }
    }

    #[test]
    fn accepts_every_type() {
        let body = json!({"events": [
            view("e-1"),
            {"eventId":"e-2","eventType":"AddedToCart","sessionId":"s-1","customerId":"c-1",
             "productId":"sku-1","quantity":2,"occurredAt":"2026-11-22T11:59:01Z"},
            {"eventId":"e-3","eventType":"RemovedFromCart","sessionId":"s-1",
             "productId":"sku-1","quantity":1,"occurredAt":"2026-11-22T11:59:02Z"},
            {"eventId":"e-4","eventType":"CheckoutStarted","sessionId":"s-1",
             "cart":["sku-1","sku-2"],"occurredAt":"2026-11-22T12:04:59Z"},
            {"eventId":"e-5","eventType":"CheckoutStarted","sessionId":"s-2",
             "occurredAt":"2026-11-21T12:00:00Z"},
        ]});
        let events = parse_activity_batch(&body, &Caller::Anonymous, now()).unwrap();
        assert_eq!(events.len(), 5);
        assert_eq!(events[1].customer_id.as_ref().unwrap().as_str(), "c-1");
        assert!(events[0].customer_id.is_none());
        assert_eq!(
            events[1].kind,
            ActivityKind::AddedToCart {
                product_id: ProductId::parse("sku-1").unwrap(),
                quantity: Quantity::new(2).unwrap()
            }
        );
        assert!(
            matches!(&events[3].kind, ActivityKind::CheckoutStarted { cart } if cart.len() == 2)
        );
        assert!(
            matches!(&events[4].kind, ActivityKind::CheckoutStarted { cart } if cart.is_empty())
        );
    }

    #[test]
    fn names_every_bad_field_at_once() {
        let body = json!({
            "colour": "red",
            "events": [
                view("e-1"),
                {"eventId":"", "eventType":"ProductViewed", "sessionId":"s 1",
                 "productId":"sku/1", "occurredAt":"yesterday", "note": 1},
                {"eventId":"e-3", "eventType":"AddedToCart", "sessionId":"s-1",
                 "customerId": 7, "productId":"sku-1", "quantity": 0,
                 "occurredAt":"2026-11-22T12:00:00Z"},
                {"eventId":"e-4", "eventType":"RemovedFromCart", "sessionId":"s-1",
                 "occurredAt":"2026-11-22T12:00:00Z", "cart": []},
                {"eventId":"e-5", "eventType":"CheckoutStarted", "sessionId":"s-1",
                 "productId":"sku-1", "quantity": 1.5,
                 "cart":["sku-1", 3, "sku-1", "a#b"], "occurredAt":"2026-11-22T12:00:00Z"},
                {"eventId":"e-6", "eventType":"Purchased", "sessionId":"s-1",
                 "occurredAt":"2026-11-22T12:00:00Z"},
                {"sessionId": 5},
                "not an object",
            ]
        });
        assert_eq!(
            fields(body),
            [
                "colour",
                "events[1].eventId",
                "events[1].note",
                "events[1].occurredAt",
                "events[1].productId",
                "events[1].sessionId",
                "events[2].customerId",
                "events[2].quantity",
                "events[3].cart",
                "events[3].productId",
                "events[3].quantity",
                "events[4].cart[1]",
                "events[4].cart[2]",
                "events[4].cart[3]",
                "events[4].productId",
                "events[4].quantity",
                "events[5].eventType",
                "events[6].eventId",
                "events[6].eventType",
                "events[6].occurredAt",
                "events[6].sessionId",
                "events[7]",
            ]
        );
    }

    #[test]
    fn limits() {
        let batch = |n: usize| json!({"events": (0..n).map(|i| view(&format!("e-{i}"))).collect::<Vec<_>>()});
        assert_eq!(
            parse_activity_batch(&batch(MAX_BATCH_EVENTS), &Caller::Staff, now())
                .unwrap()
                .len(),
            MAX_BATCH_EVENTS
        );
        assert_eq!(fields(batch(MAX_BATCH_EVENTS + 1)), ["events"]);
        assert_eq!(fields(batch(0)), ["events"]);
        assert_eq!(fields(json!({})), ["events"]);
        assert_eq!(fields(json!({"events": {}})), ["events"]);
        assert_eq!(fields(json!([view("e-1")])), ["$"]);

        let long = "x".repeat(65);
        for key in ["eventId", "sessionId", "customerId", "productId"] {
            let mut event = view("e-1");
            event[key] = json!(long);
            assert_eq!(
                fields(json!({"events":[event]})),
                [format!("events[0].{key}")]
            );
        }

        let checkout = |n: usize| {
            json!({"events":[{"eventId":"e-1","eventType":"CheckoutStarted","sessionId":"s-1",
                "cart": (0..n).map(|i| format!("sku-{i}")).collect::<Vec<_>>(),
                "occurredAt":"2026-11-22T12:00:00Z"}]})
        };
        assert!(parse_activity_batch(&checkout(MAX_CART_PRODUCTS), &Caller::Staff, now()).is_ok());
        assert_eq!(fields(checkout(MAX_CART_PRODUCTS + 1)), ["events[0].cart"]);

        let added = |q: Value| {
            json!({"events":[{"eventId":"e-1","eventType":"AddedToCart","sessionId":"s-1",
                "productId":"p","quantity":q,"occurredAt":"2026-11-22T12:00:00Z"}]})
        };
        assert!(parse_activity_batch(&added(json!(MAX_QUANTITY)), &Caller::Staff, now()).is_ok());
        for bad in [
            json!(MAX_QUANTITY + 1),
            json!(-1),
            json!(u64::MAX),
            json!("2"),
        ] {
            assert_eq!(fields(added(bad)), ["events[0].quantity"]);
        }
    }

    #[test]
    fn occurred_at_is_bounded_by_the_servers_clock() {
        let at = |t: &str| {
            let mut event = view("e-1");
            event["occurredAt"] = json!(t);
            json!({"events": [event]})
        };
        for ok in [
            "2026-11-22T12:05:00Z",
            "2026-11-21T12:00:00Z",
            "2026-11-22T13:04:00+01:00",
        ] {
            assert!(
                parse_activity_batch(&at(ok), &Caller::Staff, now()).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "2026-11-22T12:05:00.001Z",
            "2026-11-21T11:59:59.999Z",
            "2026-11-22",
            "9999-12-31T23:59:59Z",
        ] {
            assert_eq!(fields(at(bad)), ["events[0].occurredAt"], "{bad}");
        }
    }

    #[test]
    fn a_customer_sends_only_its_own_events() {
        let alice = Caller::Customer(CustomerId::parse("alice").unwrap());
        let mut own = view("e-1");
        own["customerId"] = json!("alice");
        let unnamed = view("e-2");
        let events =
            parse_activity_batch(&json!({"events": [own, unnamed]}), &alice, now()).unwrap();
        assert!(
            events
                .iter()
                .all(|e| e.customer_id.as_ref().map(|c| c.as_str()) == Some("alice")),
            "an unnamed customer is the caller"
        );

        let mut other = view("e-3");
        other["customerId"] = json!("bob");
        let refused = parse_activity_batch(&json!({"events": [view("e-1"), other]}), &alice, now());
        match refused {
            Err(OrderError::Forbidden(message)) => {
                assert!(message.contains("events[1].customerId"), "{message}")
            }
            other => panic!("{other:?}"),
        }

        // Staff relay for any shopper; a shopper not signed in has no customer.
        let mut bob = view("e-4");
        bob["customerId"] = json!("bob");
        for caller in [Caller::Staff, Caller::Anonymous] {
            let events = parse_activity_batch(
                &json!({"events": [bob.clone(), view("e-5")]}),
                &caller,
                now(),
            )
            .unwrap();
            assert_eq!(events[0].customer_id.as_ref().unwrap().as_str(), "bob");
            assert_eq!(events[1].customer_id, None);
        }
    }

    #[test]
    fn field_errors_come_before_the_callers_rule() {
        let alice = Caller::Customer(CustomerId::parse("alice").unwrap());
        let mut other = view("e-1");
        other["customerId"] = json!("bob");
        let mut bad = view("e-2");
        bad["productId"] = json!("");
        assert!(matches!(
            parse_activity_batch(&json!({"events": [other, bad]}), &alice, now()),
            Err(OrderError::Validation(e)) if e.len() == 1 && e[0].field == "events[1].productId"
        ));
    }

    #[test]
    fn duplicates_are_collapsed_when_equal_and_refused_when_not() {
        let mut other_session = view("e-1");
        other_session["sessionId"] = json!("s-2");
        let events = parse_activity_batch(
            &json!({"events": [view("e-1"), view("e-2"), view("e-1"), other_session]}),
            &Caller::Staff,
            now(),
        )
        .unwrap();
        let keys: Vec<String> = events.iter().map(ActivityEvent::dedup_key).collect();
        assert_eq!(keys, ["s-1/e-1", "s-1/e-2", "s-2/e-1"]);

        let mut changed = view("e-1");
        changed["productId"] = json!("sku-2");
        assert_eq!(
            fields(json!({"events": [view("e-1"), view("e-2"), changed]})),
            ["events[2].eventId"]
        );
    }
}
