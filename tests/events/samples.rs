//! Events of every kind the domain makes, made by the domain: every event type, status and
//! failure reason, orders retried (once, twice, re-priced), cancelled from either status,
//! each optional field of the order both present and absent, and the events a rebuild
//! derives from stored orders. What the contract tests hold `api/events` to.
//!
//! And events as the producer wrote them before a type's version was bumped, for the tests
//! that hold consumers to reading them: `OrderPlaced` version 1, recorded from the version-1
//! relay ([`RECORDED_V1_ORDER_PLACED`]) and, for any order, [`as_written_by_v1`].
//!
//! And the storefront activity events of the `activity` stream ([`every_activity_event`]),
//! made as place-order makes them: a `POST /events` body through the validation code, each
//! event in the envelope it travels in.

use orders_core::activity::{ActivityEnvelope, parse_activity_batch};
use orders_core::order::NewLineItem;
use orders_core::{
    Caller, Currency, CustomerId, EventEnvelope, EventId, FailureReason, Money, Order, OrderEvent,
    OrderId, OrderStatus, PlaceOrder, Product, ProductId, Quantity, Timestamp,
};
use serde::Serialize;

/// `OrderPlaced` records as the version-1 relay published them (`EventEnvelope::to_json` of
/// the build before `totals`, byte for byte), by name. `tests/events` holds them to
/// `api/events/released/1/`, and [`as_written_by_v1`] to them.
pub const RECORDED_V1_ORDER_PLACED: [(&str, &str); 2] = [
    (
        "one-line",
        include_str!("fixtures/v1/OrderPlaced.one-line.json"),
    ),
    (
        "two-lines",
        include_str!("fixtures/v1/OrderPlaced.two-lines.json"),
    ),
];

/// The record a version-1 relay published for the change `event` records: `OrderPlaced`
/// without `payload.totals`, at `schemaVersion` 1, its fields in the order that build wrote
/// them; the other types, which version 2 did not change, as this build writes them. The
/// event id is the change's: it never depended on the version.
pub fn as_written_by_v1(event: &EventEnvelope) -> Vec<u8> {
    /// The version-1 envelope of `OrderPlaced`.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct PlacedV1<'a> {
        event_id: EventId,
        schema_version: u32,
        occurred_at: Timestamp,
        order_id: OrderId,
        event_type: &'static str,
        payload: PayloadV1<'a>,
    }
    #[derive(Serialize)]
    struct PayloadV1<'a> {
        order: &'a Order,
    }
    match &event.event {
        OrderEvent::OrderPlaced { order, .. } => serde_json::to_vec(&PlacedV1 {
            event_id: event.event_id,
            schema_version: 1,
            occurred_at: event.occurred_at,
            order_id: event.order_id,
            event_type: "OrderPlaced",
            payload: PayloadV1 { order },
        })
        .expect("an event serialises"),
        _ => event.to_json(),
    }
}

/// The paths through the status flow the samples walk from a placed order (`Pending` after
/// `Failed` is a retry).
fn paths() -> Vec<Vec<OrderStatus>> {
    use OrderStatus::*;
    vec![
        vec![],
        vec![Processed],
        vec![Failed],
        vec![Cancelled],
        vec![Processed, Cancelled],
        vec![Processed, Shipped, Delivered],
        vec![Failed, Pending, Processed, Shipped],
        vec![Failed, Pending, Failed, Pending, Cancelled],
        vec![Failed, Pending, Failed, Pending, Processed, Cancelled],
    ]
}

/// Every event published along every path, for every failure reason a path fails with,
/// with one-line and several-line orders; then the events `OrderEvent::history` derives from
/// each final state.
pub fn every_event() -> Vec<EventEnvelope> {
    let mut events = Vec::new();
    for (n, lines) in [1usize, 3].into_iter().enumerate() {
        let placed = place(n, lines);
        for reason in FailureReason::ALL {
            for path in paths() {
                let states = walk(&placed, &path, reason);
                events.extend(
                    states
                        .iter()
                        .map(|s| EventEnvelope::new(OrderEvent::for_current_state(s))),
                );
                let last = states.last().expect("a path starts placed");
                events.extend(OrderEvent::history(last).expect("a reachable state"));
            }
        }
    }
    events
}

/// The `step`th change of a sample order: 1.5 s apart, so timestamps have milliseconds.
fn at(step: u64) -> Timestamp {
    let start = Timestamp::parse("2026-11-22T10:15:30.123Z").expect("a timestamp");
    Timestamp::from_unix_millis(start.unix_millis() + step as i64 * 1500).expect("in range")
}

fn place(n: usize, lines: usize) -> Order {
    let command = PlaceOrder {
        customer_id: CustomerId::parse(&format!("c-{n}")).expect("an id"),
        currency: Currency::parse(if n == 0 { "USD" } else { "EUR" }).expect("a currency"),
        items: (0..lines)
            .map(|i| NewLineItem {
                product_id: ProductId::parse(&format!("sku-{i}")).expect("an id"),
                quantity: Quantity::new(1 + i as u32 * 4).expect("a quantity"),
                unit_price: Money::from_minor(1999 - i as i64 * 500).expect("a price"),
            })
            .collect(),
    };
    Order::place(
        OrderId::parse(&format!("01M81C1XJBQQJM2S6R76FQCZ2{n}")).expect("an order id"),
        &command,
        at(0),
    )
}

/// The states of `placed` along `path`, failing for `reason` (then, as a retry re-prices
/// what failed for `price_changed`, at catalog prices one cent up).
fn walk(placed: &Order, path: &[OrderStatus], reason: FailureReason) -> Vec<Order> {
    let catalog: Vec<Product> = placed
        .items
        .iter()
        .map(|line| Product {
            product_id: line.product_id.clone(),
            name: "Mug".into(),
            price: Money::from_minor(line.unit_price.minor() + 1).expect("a price"),
            stock: 10,
            version: 1,
            updated_at: at(0),
        })
        .collect();
    let mut states = vec![placed.clone()];
    for (i, next) in path.iter().enumerate() {
        let last = states.last().expect("at least the placed state");
        let now = at(i as u64 + 1);
        let state = match next {
            // `unknown_product` is not retryable: a failure a retry follows is out of stock.
            OrderStatus::Failed if path.get(i + 1) == Some(&OrderStatus::Pending) => {
                last.fail(retryable(reason), now).expect("pending can fail")
            }
            OrderStatus::Failed => last.fail(reason, now).expect("pending can fail"),
            OrderStatus::Pending => last.retry(&catalog, now).expect("a retryable failure"),
            other => last.transition(*other, now).expect("a legal transition"),
        };
        states.push(state);
    }
    states
}

/// `reason` if a retry may follow it, else out of stock.
fn retryable(reason: FailureReason) -> FailureReason {
    if reason.is_retryable() {
        reason
    } else {
        FailureReason::OutOfStock
    }
}

/// When the sample activity batch arrives: its events are up to 5 minutes ahead of it and
/// up to 24 hours behind.
pub const ACTIVITY_RECEIVED_AT: &str = "2026-11-22T10:31:00.000Z";

/// Every storefront event type, with and without a customer, every optional field present
/// and absent (a checkout with a full cart, with one product, without one), quantities and
/// ids at their limits, times with an offset and without milliseconds (the envelope writes
/// them in UTC milliseconds): a `POST /events` body validated as place-order validates it
/// (a staff caller, which names any customer), each event in its stream envelope.
pub fn every_activity_event() -> Vec<ActivityEnvelope> {
    let now = Timestamp::parse(ACTIVITY_RECEIVED_AT).expect("a timestamp");
    let longest = "A-z_0.9:".repeat(8);
    let cart: Vec<String> = (0..orders_core::activity::parse::MAX_CART_PRODUCTS)
        .map(|i| format!("sku-{i}"))
        .collect();
    let body = serde_json::json!({"events": [
        {"eventId": "e-1", "eventType": "ProductViewed", "sessionId": "s-1",
         "occurredAt": "2026-11-22T10:30:01.250Z", "productId": "sku-mug-blue"},
        {"eventId": "e-2", "eventType": "AddedToCart", "sessionId": "s-1",
         "occurredAt": "2026-11-22T10:30:02.500Z", "productId": "sku-mug-blue", "quantity": 1},
        {"eventId": "e-3", "eventType": "RemovedFromCart", "sessionId": "s-1",
         "occurredAt": "2026-11-22T10:30:03Z", "productId": "sku-mug-blue", "quantity": 1},
        {"eventId": "e-4", "eventType": "CheckoutStarted", "sessionId": "s-1",
         "occurredAt": "2026-11-22T10:30:04.001Z"},
        {"eventId": "e-1", "eventType": "ProductViewed", "sessionId": "s-2", "customerId": "c-1",
         "occurredAt": "2026-11-22T11:35:00+01:00", "productId": "sku-tea-earl"},
        {"eventId": "e-2", "eventType": "AddedToCart", "sessionId": "s-2", "customerId": "c-1",
         "occurredAt": "2026-11-21T10:31:00Z", "productId": "sku-tea-earl",
         "quantity": orders_core::money::MAX_QUANTITY},
        {"eventId": "e-3", "eventType": "RemovedFromCart", "sessionId": "s-2",
         "customerId": "c-1", "occurredAt": "2026-11-22T10:30:05.999Z",
         "productId": "sku-tea-earl", "quantity": orders_core::money::MAX_QUANTITY},
        {"eventId": "e-4", "eventType": "CheckoutStarted", "sessionId": "s-2", "customerId": "c-1",
         "occurredAt": "2026-11-22T10:30:06.120Z", "cart": ["sku-tea-earl"]},
        {"eventId": longest, "eventType": "CheckoutStarted", "sessionId": longest,
         "customerId": longest, "occurredAt": "2026-11-22T10:30:07.120Z", "cart": cart},
        {"eventId": "e-5", "eventType": "ProductViewed", "sessionId": "s-3",
         "occurredAt": "2026-11-22T10:36:00Z", "productId": longest},
    ]});
    parse_activity_batch(&body, &Caller::Staff, now)
        .expect("the sample batch is valid")
        .into_iter()
        .map(|event| ActivityEnvelope::new(event, now))
        .collect()
}
