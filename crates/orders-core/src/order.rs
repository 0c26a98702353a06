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
/// PENDING ──► PROCESSED ──► SHIPPED ──► DELIVERED
///    │            │
///    ├──► FAILED  └──► CANCELLED
///    └──► CANCELLED
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
    /// Why processing failed (`unknown_product`, `out_of_stock`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<FailureReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipped_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<Timestamp>,
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
}

/// A status change the flow does not allow (e.g. `SHIPPED` before `PROCESSED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an order cannot go from {from} to {to}")]
pub struct IllegalTransition {
    pub from: OrderStatus,
    pub to: OrderStatus,
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
        assert!(!Pending.can_become(Shipped));
        assert!(!Delivered.can_become(Cancelled));
        for s in OrderStatus::ALL {
            assert_eq!(s.as_str().parse::<OrderStatus>(), Ok(s));
            assert!(!s.can_become(s));
        }
    }
}
