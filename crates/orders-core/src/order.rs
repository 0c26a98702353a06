//! The order aggregate and its status flow.

use crate::ids::{CustomerId, OrderId, ProductId};
use crate::money::{Currency, Money, Quantity};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where an order is in its life.
///
/// ```text
///      ┌──── retry (out_of_stock, price_changed) ────┐
///      ▼                                              │
///   PENDING ──────────────────────────────────► FAILED
///      │
///      ├──► PROCESSED ──► SHIPPED ──► DELIVERED
///      │        └──► CANCELLED
///      └──► CANCELLED
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Pending,
    Processed,
    Failed,
    Shipped,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::Pending,
        OrderStatus::Processed,
        OrderStatus::Failed,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Processed => "PROCESSED",
            OrderStatus::Failed => "FAILED",
            OrderStatus::Shipped => "SHIPPED",
            OrderStatus::Delivered => "DELIVERED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    /// Whether the status flow allows moving from `self` to `next`.
    pub fn can_become(&self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Pending, Processed | Failed | Cancelled)
                | (Failed, Pending)
                | (Processed, Shipped | Cancelled)
                | (Shipped, Delivered)
        )
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OrderStatus {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|st| st.as_str() == s).ok_or(())
    }
}

/// One product line of an order. `line_total` is derived but stored, so readers (the
/// dashboard, analytics) never recompute money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineItem {
    pub product_id: ProductId,
    pub quantity: Quantity,
    pub unit_price: Money,
    pub line_total: Money,
}

/// A validated request to place an order (see [`crate::validation`]): what the client
/// asked for. Prices come from the catalog ([`OrderRequest::price`]); a client may send the
/// unit price it was shown, and the order is refused if the catalog's differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRequest {
    pub customer_id: CustomerId,
    pub currency: Currency,
    pub items: Vec<RequestedLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestedLine {
    pub product_id: ProductId,
    pub quantity: Quantity,
    /// The price the client saw, if it says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Money>,
}

/// A line whose price the client saw is not the catalog's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceMismatch {
    /// The line's index in `items`.
    pub line: usize,
    pub product_id: ProductId,
    /// What the client sent.
    pub unit_price: Money,
    /// What the catalog says.
    pub catalog_price: Money,
}

impl OrderRequest {
    /// A stable digest of the request's meaning (not its bytes): key order, whitespace and
    /// an omitted-but-defaulted currency do not change it. Used to tell an idempotent retry
    /// from a reuse of the key with another body.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let canonical = serde_json::to_vec(self).expect("a request always serialises");
        hex::encode(Sha256::digest(&canonical))
    }

    /// The order to place, every line at its catalog price (`catalog`: the products of the
    /// request that exist). A line of an unknown product keeps the price the client sent
    /// (or 0): processing fails the order as `unknown_product`, and sells nothing at a price
    /// the catalog did not set, because reservation checks the price too.
    pub fn price(
        &self,
        catalog: &[crate::product::Product],
    ) -> Result<PlaceOrder, Vec<PriceMismatch>> {
        let mut mismatches = Vec::new();
        let items = self
            .items
            .iter()
            .enumerate()
            .map(|(line, item)| {
                let listed = catalog
                    .iter()
                    .find(|p| p.product_id == item.product_id)
                    .map(|p| p.price);
                if let (Some(listed), Some(sent)) = (listed, item.unit_price)
                    && listed != sent
                {
                    mismatches.push(PriceMismatch {
                        line,
                        product_id: item.product_id.clone(),
                        unit_price: sent,
                        catalog_price: listed,
                    });
                }
                NewLineItem {
                    product_id: item.product_id.clone(),
                    quantity: item.quantity,
                    unit_price: listed.or(item.unit_price).unwrap_or(Money::ZERO),
                }
            })
            .collect();
        if !mismatches.is_empty() {
            return Err(mismatches);
        }
        Ok(PlaceOrder {
            customer_id: self.customer_id.clone(),
            currency: self.currency.clone(),
            items,
        })
    }
}

/// An order to place, priced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaceOrder {
    pub customer_id: CustomerId,
    pub currency: Currency,
    pub items: Vec<NewLineItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewLineItem {
    pub product_id: ProductId,
    pub quantity: Quantity,
    pub unit_price: Money,
}

/// An order: the aggregate every event and read model is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub status: OrderStatus,
    pub currency: Currency,
    pub items: Vec<LineItem>,
    pub total: Money,
    /// Incremented by every change; writes are conditional on it (optimistic concurrency),
    /// and clients see it as the `ETag`.
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<Timestamp>,
    /// Why processing failed (`unknown_product`, `out_of_stock`, `price_changed`); cleared,
    /// with `failed_at`, when the order is retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<FailureReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipped_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<Timestamp>,
    /// How often the order went back from `FAILED` to `PENDING` ([`Order::retry`]); absent
    /// while 0, so orders stored before retries existed read the same.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    /// When the last retry happened. An `Idempotency-Key` whose first request died after
    /// claiming the key compares it with the claim's time to tell whether that request's
    /// retry went through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retried_at: Option<Timestamp>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Why an order could not be processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// A line names a product that is not in the catalog.
    UnknownProduct,
    /// A line asks for more units than are in stock.
    OutOfStock,
    /// A line's price is not the catalog's any more (it changed after the order was placed).
    PriceChanged,
}

impl FailureReason {
    pub const ALL: [FailureReason; 3] = [
        FailureReason::UnknownProduct,
        FailureReason::OutOfStock,
        FailureReason::PriceChanged,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            FailureReason::UnknownProduct => "unknown_product",
            FailureReason::OutOfStock => "out_of_stock",
            FailureReason::PriceChanged => "price_changed",
        }
    }

    /// Whether processing the same order again can end differently: stock may have been
    /// added, and a retry re-prices the lines at the catalog's current prices. A product that
    /// is not in the catalog stays missing for this order (its lines cannot change), so
    /// retrying it would only fail again.
    pub fn is_retryable(&self) -> bool {
        match self {
            FailureReason::OutOfStock | FailureReason::PriceChanged => true,
            FailureReason::UnknownProduct => false,
        }
    }
}

/// A status change the flow does not allow (e.g. `SHIPPED` before `PROCESSED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an order cannot go from {from} to {to}")]
pub struct IllegalTransition {
    pub from: OrderStatus,
    pub to: OrderStatus,
}

/// A validated `POST /orders/{orderId}/retry` body: `{"expectedTotal": 4498}`, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryOrder {
    /// The total the caller agrees to pay, in minor units. A retry re-prices an order that
    /// failed for `price_changed`; with this, a total other than the one the customer was
    /// shown refuses the retry (`409 price_changed`) instead of charging it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_total: Option<Money>,
}

impl RetryOrder {
    /// Validates the body, naming every bad field (`None`: no body, which is valid).
    pub fn parse(body: Option<&serde_json::Value>) -> Result<Self, Vec<crate::FieldError>> {
        use crate::FieldError;
        let Some(body) = body else {
            return Ok(Self::default());
        };
        let Some(object) = body.as_object() else {
            return Err(vec![FieldError::new("$", "the body must be a JSON object")]);
        };
        let mut errors: Vec<FieldError> = object
            .keys()
            .filter(|k| k.as_str() != "expectedTotal")
            .map(|k| FieldError::new(k.clone(), "is not a known field"))
            .collect();
        let expected_total = match object.get("expectedTotal") {
            None => None,
            Some(value) => match value.as_i64().and_then(Money::from_minor) {
                Some(total) => Some(total),
                None => {
                    errors.push(FieldError::new(
                        "expectedTotal",
                        "must be a whole number of minor units, 0 or more",
                    ));
                    None
                }
            },
        };
        if errors.is_empty() {
            Ok(Self { expected_total })
        } else {
            Err(errors)
        }
    }

    /// A stable digest of this retry of `order_id`, to tell an `Idempotency-Key`'s repeat
    /// from its reuse for another request (placement's fingerprints hash another shape, so
    /// a key cannot be both).
    pub fn fingerprint(&self, order_id: &OrderId) -> String {
        use sha2::{Digest, Sha256};
        let canonical = serde_json::json!({"retry": order_id, "request": self});
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }
}

/// Why an order cannot be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RetryRefused {
    /// Only a `FAILED` order goes back to `PENDING`.
    #[error("only a FAILED order can be retried; this one is {0}")]
    NotFailed(OrderStatus),
    /// The failure cannot change by processing the order again.
    #[error(
        "the order failed with {}: a line names a product that is not in the catalog, and a \
         retry cannot change the lines; place a new order",
        .0.as_str()
    )]
    NotRetryable(FailureReason),
    /// A catalog price so large that a line total overflows: the catalog holds a price its
    /// own validation would refuse (corrupt data, not the client's mistake).
    #[error("re-pricing the order at the catalog's prices overflows its total")]
    TotalOverflow,
}

impl Order {
    /// A new `PENDING` order at version 1. Validation has already bounded quantities and
    /// prices so totals cannot overflow; the `expect`s document that invariant.
    pub fn place(order_id: OrderId, command: &PlaceOrder, now: Timestamp) -> Self {
        let items: Vec<LineItem> = command
            .items
            .iter()
            .map(|item| LineItem {
                product_id: item.product_id.clone(),
                quantity: item.quantity,
                unit_price: item.unit_price,
                line_total: item
                    .unit_price
                    .checked_mul(item.quantity)
                    .expect("validated line totals fit in i64"),
            })
            .collect();
        let total = items
            .iter()
            .try_fold(Money::ZERO, |sum, item| sum.checked_add(item.line_total))
            .expect("validated order totals fit in i64");
        Self {
            order_id,
            customer_id: command.customer_id.clone(),
            status: OrderStatus::Pending,
            currency: command.currency.clone(),
            items,
            total,
            version: 1,
            created_at: now,
            updated_at: now,
            processed_at: None,
            failed_at: None,
            failure_reason: None,
            cancelled_at: None,
            shipped_at: None,
            delivered_at: None,
            retries: 0,
            retried_at: None,
        }
    }

    /// The order after moving to `next` at `now`: version bumped and the matching timestamp
    /// recorded. The caller persists it conditionally on the *previous* version.
    pub fn transition(
        &self,
        next: OrderStatus,
        now: Timestamp,
    ) -> Result<Order, IllegalTransition> {
        if !self.status.can_become(next) {
            return Err(IllegalTransition {
                from: self.status,
                to: next,
            });
        }
        let mut order = self.clone();
        order.status = next;
        order.version += 1;
        order.updated_at = now;
        match next {
            OrderStatus::Processed => order.processed_at = Some(now),
            OrderStatus::Failed => order.failed_at = Some(now),
            OrderStatus::Cancelled => order.cancelled_at = Some(now),
            OrderStatus::Shipped => order.shipped_at = Some(now),
            OrderStatus::Delivered => order.delivered_at = Some(now),
            OrderStatus::Pending => {}
        }
        Ok(order)
    }

    /// The order marked `FAILED` for `reason`.
    pub fn fail(&self, reason: FailureReason, now: Timestamp) -> Result<Order, IllegalTransition> {
        let mut order = self.transition(OrderStatus::Failed, now)?;
        order.failure_reason = Some(reason);
        Ok(order)
    }

    /// The order back in `PENDING` for another processing attempt, as a new version: the
    /// failure fields cleared, the attempt counted. An order that failed for `price_changed`
    /// is re-priced at the catalog's current prices (`catalog`: the products of its lines
    /// that exist), so the retry can succeed — the reservation checks the order's prices
    /// against the catalog's, as at placement. An order that failed for `out_of_stock`
    /// keeps the prices its customer accepted: if the catalog changed them since, processing
    /// fails it as `price_changed`, and the next retry re-prices it.
    pub fn retry(
        &self,
        catalog: &[crate::product::Product],
        now: Timestamp,
    ) -> Result<Order, RetryRefused> {
        if self.status != OrderStatus::Failed {
            return Err(RetryRefused::NotFailed(self.status));
        }
        // An order stored FAILED without a reason (none is) would be an out-of-stock one:
        // the reason events have always defaulted to.
        let reason = self.failure_reason.unwrap_or(FailureReason::OutOfStock);
        if !reason.is_retryable() {
            return Err(RetryRefused::NotRetryable(reason));
        }
        let mut order = self
            .transition(OrderStatus::Pending, now)
            .map_err(|e| RetryRefused::NotFailed(e.from))?;
        if reason == FailureReason::PriceChanged {
            let mut total = Money::ZERO;
            for item in &mut order.items {
                if let Some(listed) = catalog.iter().find(|p| p.product_id == item.product_id) {
                    item.unit_price = listed.price;
                }
                item.line_total = item
                    .unit_price
                    .checked_mul(item.quantity)
                    .ok_or(RetryRefused::TotalOverflow)?;
                total = total
                    .checked_add(item.line_total)
                    .ok_or(RetryRefused::TotalOverflow)?;
            }
            order.total = total;
        }
        order.failed_at = None;
        order.failure_reason = None;
        // A u32 of retries is four billion failed attempts, each a write: unreachable.
        order.retries = self.retries.saturating_add(1);
        order.retried_at = Some(now);
        Ok(order)
    }

    /// The lines whose unit price differs between `self` and `repriced` (the same order
    /// after [`Order::retry`]), as the price-change error names them: what the order said,
    /// and what the catalog says now.
    pub fn price_changes(&self, repriced: &Order) -> Vec<PriceMismatch> {
        self.items
            .iter()
            .zip(&repriced.items)
            .enumerate()
            .filter(|(_, (old, new))| old.unit_price != new.unit_price)
            .map(|(line, (old, new))| PriceMismatch {
                line,
                product_id: old.product_id.clone(),
                unit_price: old.unit_price,
                catalog_price: new.unit_price,
            })
            .collect()
    }

    /// Whether this order holds reserved stock (to release on cancellation): stock is
    /// reserved exactly when processing succeeded.
    pub fn holds_stock(&self) -> bool {
        self.processed_at.is_some()
    }

    /// Total units across all lines.
    pub fn units(&self) -> u64 {
        self.items.iter().map(|i| u64::from(i.quantity.get())).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ulid::Ulid;

    fn command() -> PlaceOrder {
        PlaceOrder {
            customer_id: CustomerId::parse("c-1").unwrap(),
            currency: Currency::parse("USD").unwrap(),
            items: vec![
                NewLineItem {
                    product_id: ProductId::parse("sku-1").unwrap(),
                    quantity: Quantity::new(2).unwrap(),
                    unit_price: Money::from_minor(1999).unwrap(),
                },
                NewLineItem {
                    product_id: ProductId::parse("sku-2").unwrap(),
                    quantity: Quantity::new(1).unwrap(),
                    unit_price: Money::from_minor(500).unwrap(),
                },
            ],
        }
    }

    #[test]
    fn placing_an_order_computes_totals_and_starts_pending_at_version_1() {
        let now = Timestamp::parse("2026-11-21T10:00:00Z").unwrap();
        let id = OrderId::new(Ulid::from_parts(now.unix_millis() as u64, 7));
        let order = Order::place(id, &command(), now);
        assert_eq!(order.status, OrderStatus::Pending);
        assert_eq!(order.version, 1);
        assert_eq!(order.items[0].line_total.minor(), 3998);
        assert_eq!(order.total.minor(), 4498);
        assert_eq!(order.units(), 3);
        assert_eq!(order.created_at, now);
    }

    #[test]
    fn order_json_shape() {
        let now = Timestamp::parse("2026-11-21T10:00:00Z").unwrap();
        let id = OrderId::new(Ulid::from_parts(now.unix_millis() as u64, 7));
        let json = serde_json::to_value(Order::place(id, &command(), now)).unwrap();
        assert_eq!(json["status"], "PENDING");
        assert_eq!(json["customerId"], "c-1");
        assert_eq!(json["items"][0]["unitPrice"], 1999);
        assert_eq!(json["items"][0]["lineTotal"], 3998);
        assert_eq!(json["createdAt"], "2026-11-21T10:00:00.000Z");
        let back: Order = serde_json::from_value(json).unwrap();
        assert_eq!(back.total.minor(), 4498);
    }

    fn request() -> OrderRequest {
        let line = |id: &str, quantity, price: Option<i64>| RequestedLine {
            product_id: ProductId::parse(id).unwrap(),
            quantity: Quantity::new(quantity).unwrap(),
            unit_price: price.map(|p| Money::from_minor(p).unwrap()),
        };
        OrderRequest {
            customer_id: CustomerId::parse("c-1").unwrap(),
            currency: Currency::parse("USD").unwrap(),
            items: vec![
                line("sku-1", 2, Some(1999)),
                line("sku-2", 1, None),
                line("gone", 1, Some(5)),
            ],
        }
    }

    fn product(id: &str, price: i64) -> crate::product::Product {
        crate::product::Product {
            product_id: ProductId::parse(id).unwrap(),
            name: id.into(),
            price: Money::from_minor(price).unwrap(),
            stock: 10,
            version: 1,
            updated_at: Timestamp::parse("2026-11-21T10:00:00Z").unwrap(),
        }
    }

    #[test]
    fn fingerprint_depends_on_meaning_only() {
        let a = request();
        let mut b = request();
        assert_eq!(a.fingerprint(), b.fingerprint());
        b.items[0].quantity = Quantity::new(3).unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn lines_take_the_catalog_price_and_a_different_quoted_price_is_refused() {
        let catalog = [product("sku-1", 1999), product("sku-2", 500)];
        let priced = request().price(&catalog).unwrap();
        let prices: Vec<i64> = priced.items.iter().map(|i| i.unit_price.minor()).collect();
        // sku-2 sent no price: the catalog's; an unknown product keeps what was sent and
        // fails in processing.
        assert_eq!(prices, [1999, 500, 5]);

        let mut zero = request();
        zero.items[0].unit_price = Some(Money::ZERO);
        let refused = zero.price(&catalog).unwrap_err();
        assert_eq!(
            refused,
            [PriceMismatch {
                line: 0,
                product_id: ProductId::parse("sku-1").unwrap(),
                unit_price: Money::ZERO,
                catalog_price: Money::from_minor(1999).unwrap(),
            }]
        );
    }

    #[test]
    fn transitions_bump_the_version_and_stamp_the_time() {
        let t0 = Timestamp::parse("2026-11-21T10:00:00Z").unwrap();
        let t1 = Timestamp::parse("2026-11-21T10:00:01Z").unwrap();
        let placed = Order::place(OrderId::new(Ulid::from_parts(1, 1)), &command(), t0);
        let processed = placed.transition(OrderStatus::Processed, t1).unwrap();
        assert_eq!(
            (processed.version, processed.status),
            (2, OrderStatus::Processed)
        );
        assert_eq!(
            (processed.processed_at, processed.updated_at),
            (Some(t1), t1)
        );
        assert!(processed.holds_stock() && !placed.holds_stock());
        assert_eq!(
            processed.transition(OrderStatus::Pending, t1),
            Err(IllegalTransition {
                from: OrderStatus::Processed,
                to: OrderStatus::Pending
            })
        );
        let failed = placed.fail(FailureReason::OutOfStock, t1).unwrap();
        assert_eq!(failed.failure_reason, Some(FailureReason::OutOfStock));
        let json = serde_json::to_value(&failed).unwrap();
        assert_eq!(json["failureReason"], "out_of_stock");
        assert!(json.get("processedAt").is_none());
        assert!(placed.transition(OrderStatus::Shipped, t1).is_err());
    }

    #[test]
    fn status_flow() {
        use OrderStatus::*;
        assert!(Pending.can_become(Processed));
        assert!(Pending.can_become(Cancelled));
        assert!(Processed.can_become(Shipped));
        assert!(Shipped.can_become(Delivered));
        assert!(!Shipped.can_become(Cancelled));
        assert!(!Processed.can_become(Pending));
        assert!(Failed.can_become(Pending), "a retry");
        assert!(!Failed.can_become(Processed) && !Failed.can_become(Cancelled));
        assert!(!Pending.can_become(Shipped));
        assert!(!Delivered.can_become(Cancelled));
        for s in OrderStatus::ALL {
            assert_eq!(s.as_str().parse::<OrderStatus>(), Ok(s));
            assert!(!s.can_become(s));
        }
    }

    fn failed(reason: FailureReason) -> Order {
        let t0 = Timestamp::parse("2026-11-21T10:00:00Z").unwrap();
        let t1 = Timestamp::parse("2026-11-21T10:00:01Z").unwrap();
        Order::place(OrderId::new(Ulid::from_parts(1, 1)), &command(), t0)
            .fail(reason, t1)
            .unwrap()
    }

    #[test]
    fn a_retry_is_a_new_pending_version_without_the_failure() {
        let t2 = Timestamp::parse("2026-11-21T10:05:00Z").unwrap();
        let failed = failed(FailureReason::OutOfStock);
        // The catalog's prices moved since: an out-of-stock order keeps the prices its
        // customer accepted (processing will say if they changed).
        let catalog = [product("sku-1", 2500), product("sku-2", 600)];
        let retried = failed.retry(&catalog, t2).unwrap();
        assert_eq!(
            (retried.status, retried.version, retried.retries),
            (OrderStatus::Pending, 3, 1)
        );
        assert_eq!((retried.failed_at, retried.failure_reason), (None, None));
        assert_eq!((retried.updated_at, retried.retried_at), (t2, Some(t2)));
        assert_eq!(
            (retried.items.clone(), retried.total),
            (failed.items.clone(), failed.total)
        );
        assert!(failed.price_changes(&retried).is_empty());
        let json = serde_json::to_value(&retried).unwrap();
        assert_eq!(json["retries"], 1);
        assert_eq!(json["retriedAt"], "2026-11-21T10:05:00.000Z");
        assert!(json.get("failureReason").is_none() && json.get("failedAt").is_none());
        // Orders that were never retried serialise as before.
        let never = serde_json::to_value(&failed).unwrap();
        assert!(never.get("retries").is_none() && never.get("retriedAt").is_none());
        let back: Order = serde_json::from_value(never).unwrap();
        assert_eq!(back.retries, 0);

        let again = retried
            .fail(FailureReason::OutOfStock, t2)
            .unwrap()
            .retry(&catalog, t2)
            .unwrap();
        assert_eq!((again.version, again.retries), (5, 2));
    }

    #[test]
    fn a_price_changed_order_is_re_priced_at_the_catalog_s_prices() {
        let t2 = Timestamp::parse("2026-11-21T10:05:00Z").unwrap();
        let failed = failed(FailureReason::PriceChanged);
        // sku-2 is gone from the catalog: its line keeps its price (processing fails it
        // as unknown_product, and sells nothing at a price the catalog did not set).
        let retried = failed.retry(&[product("sku-1", 2100)], t2).unwrap();
        let prices: Vec<(i64, i64)> = retried
            .items
            .iter()
            .map(|i| (i.unit_price.minor(), i.line_total.minor()))
            .collect();
        assert_eq!(prices, [(2100, 4200), (500, 500)]);
        assert_eq!(retried.total.minor(), 4700);
        assert_eq!(
            failed.price_changes(&retried),
            [PriceMismatch {
                line: 0,
                product_id: ProductId::parse("sku-1").unwrap(),
                unit_price: Money::from_minor(1999).unwrap(),
                catalog_price: Money::from_minor(2100).unwrap(),
            }]
        );
        let huge = crate::product::Product {
            price: Money::from_minor(i64::MAX / 2).unwrap(),
            ..product("sku-1", 0)
        };
        assert_eq!(failed.retry(&[huge], t2), Err(RetryRefused::TotalOverflow));
    }

    #[test]
    fn only_a_failure_that_can_change_is_retried() {
        let t2 = Timestamp::parse("2026-11-21T10:05:00Z").unwrap();
        assert_eq!(
            failed(FailureReason::UnknownProduct).retry(&[], t2),
            Err(RetryRefused::NotRetryable(FailureReason::UnknownProduct))
        );
        let placed = Order::place(OrderId::new(Ulid::from_parts(1, 1)), &command(), t2);
        assert_eq!(
            placed.retry(&[], t2),
            Err(RetryRefused::NotFailed(OrderStatus::Pending))
        );
        let processed = placed.transition(OrderStatus::Processed, t2).unwrap();
        assert_eq!(
            processed.retry(&[], t2).unwrap_err().to_string(),
            "only a FAILED order can be retried; this one is PROCESSED"
        );
        let retryable: Vec<_> = FailureReason::ALL
            .into_iter()
            .filter(FailureReason::is_retryable)
            .collect();
        assert_eq!(
            retryable,
            [FailureReason::OutOfStock, FailureReason::PriceChanged]
        );
    }

    #[test]
    fn a_retry_body_is_optional_and_names_its_bad_fields() {
        use serde_json::json;
        assert_eq!(RetryOrder::parse(None), Ok(RetryOrder::default()));
        let body = json!({"expectedTotal": 4498});
        let parsed = RetryOrder::parse(Some(&body)).unwrap();
        assert_eq!(parsed.expected_total, Money::from_minor(4498));
        assert_eq!(
            RetryOrder::parse(Some(&json!({}))),
            Ok(RetryOrder::default())
        );
        let errors =
            RetryOrder::parse(Some(&json!({"expectedTotal": 44.98, "total": 1}))).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["total", "expectedTotal"]);
        assert!(RetryOrder::parse(Some(&json!({"expectedTotal": -1}))).is_err());
        assert!(RetryOrder::parse(Some(&json!({"expectedTotal": null}))).is_err());
        assert!(RetryOrder::parse(Some(&json!([4498]))).is_err());

        let (a, b) = (
            OrderId::new(Ulid::from_parts(1, 1)),
            OrderId::new(Ulid::from_parts(1, 2)),
        );
        assert_eq!(parsed.fingerprint(&a), parsed.fingerprint(&a));
        assert_ne!(parsed.fingerprint(&a), parsed.fingerprint(&b));
        assert_ne!(
            parsed.fingerprint(&a),
            RetryOrder::default().fingerprint(&a)
        );
    }
}
