//! Command-side writes: an order's new state and its stock change in one transaction,
//! guarded by the order's version, so stock and status can never disagree.

use super::orders::order_item;
use crate::errors::{classify, corrupt};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use orders_core::ports::{Applied, OrderCommands, StockChange};
use orders_core::{Money, Order, OrderError, OrderId, OrderStatus, ProductId};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone)]
pub struct DynamoOrderCommands {
    client: Client,
    orders_table: String,
    products_table: String,
}

impl DynamoOrderCommands {
    pub fn from_sdk(
        sdk: &aws_config::SdkConfig,
        orders_table: impl Into<String>,
        products_table: impl Into<String>,
    ) -> Self {
        Self {
            client: crate::config::dynamodb_client(sdk),
            orders_table: orders_table.into(),
            products_table: products_table.into(),
        }
    }

    /// `SET` every attribute of the new state (so index keys follow the status) except the
    /// key, if the stored version is the one `next` was built from.
    fn order_update(&self, next: &Order) -> Result<Update, OrderError> {
        let mut item = order_item(next)?;
        let id = item
            .remove("orderId")
            .ok_or_else(|| OrderError::Unexpected("order item without a key".into()))?;
        let mut names = HashMap::from([("#version".to_owned(), "version".to_owned())]);
        let mut values = HashMap::from([(
            ":expected".to_owned(),
            AttributeValue::N((next.version - 1).to_string()),
        )]);
        let removed = removed_attributes(next, &item);
        let mut sets = Vec::with_capacity(item.len());
        for (i, (name, value)) in item.into_iter().enumerate() {
            sets.push(format!("#a{i} = :v{i}"));
            names.insert(format!("#a{i}"), name);
            values.insert(format!(":v{i}"), value);
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removed.is_empty() {
            let removes: Vec<String> = removed
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    names.insert(format!("#r{i}"), (*name).to_owned());
                    format!("#r{i}")
                })
                .collect();
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        Update::builder()
            .table_name(&self.orders_table)
            .key("orderId", id)
            .update_expression(expression)
            .condition_expression("#version = :expected")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(|e| OrderError::Unexpected(e.into()))
    }

    /// `price`: for a reservation, the order's unit price, which must still be the catalog's.
    fn stock_update(
        &self,
        product: &str,
        quantity: u32,
        price: Option<Money>,
    ) -> Result<Update, OrderError> {
        let reserve = price.is_some();
        // A sale or a release changes the product: its version moves, so an If-Match read
        // before it is stale (PUT /products cannot write back the stock it saw).
        let (expression, condition) = if reserve {
            (
                "SET stock = stock - :q, version = if_not_exists(version, :zero) + :one",
                "attribute_exists(productId) AND stock >= :q AND price = :p",
            )
        } else {
            (
                "SET stock = stock + :q, version = if_not_exists(version, :zero) + :one",
                "attribute_exists(productId)",
            )
        };
        Update::builder()
            .table_name(&self.products_table)
            .key("productId", AttributeValue::S(product.to_owned()))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_values(price.map(|p| {
                HashMap::from([(":p".to_owned(), AttributeValue::N(p.minor().to_string()))])
            }))
            .expression_attribute_values(":q", AttributeValue::N(quantity.to_string()))
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .build()
            .map_err(|e| OrderError::Unexpected(e.into()))
    }
}

/// Order attributes a version may lack (serialised only when set).
const OPTIONAL_ATTRIBUTES: [&str; 8] = [
    "processedAt",
    "failedAt",
    "failureReason",
    "cancelledAt",
    "shippedAt",
    "deliveredAt",
    "retries",
    "retriedAt",
];

/// The optional attributes to remove from the stored item because `next` (whose item is
/// `item`) lacks them: a `SET` of the new state alone would leave the old values in place.
/// Only a retry — the one update to `PENDING`; placement is a put — drops attributes (the
/// failure it clears). Every other change only adds to the previous version, so it stays a
/// plain `SET`, which the emulator applies on its fast path (on AWS a `REMOVE` of a missing
/// attribute would cost nothing either way).
fn removed_attributes(next: &Order, item: &Item) -> Vec<&'static str> {
    if next.status != OrderStatus::Pending {
        return Vec::new();
    }
    OPTIONAL_ATTRIBUTES
        .into_iter()
        .filter(|name| !item.contains_key(*name))
        .collect()
}

/// The unit price of `product`'s line in `order` (the lines a change reserves are the order's).
fn price_of(order: &Order, product: &ProductId) -> Money {
    order
        .items
        .iter()
        .find(|i| &i.product_id == product)
        .map_or(Money::ZERO, |i| i.unit_price)
}

#[async_trait]
impl OrderCommands for DynamoOrderCommands {
    async fn load(&self, id: &OrderId) -> Result<Option<Order>, OrderError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.orders_table)
            .key("orderId", AttributeValue::S(id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        output
            .item
            .map(|item| {
                serde_dynamo::from_item::<Item, Order>(item)
                    .map_err(|e| corrupt("reading an order item", e))
            })
            .transpose()
    }

    async fn apply(&self, next: &Order, stock: &StockChange) -> Result<Applied, OrderError> {
        let order_update = self.order_update(next)?;
        let (lines, reserve) = match stock {
            StockChange::None => {
                // One item: a plain conditional update costs half a transaction.
                let u = order_update;
                let result = self
                    .client
                    .update_item()
                    .table_name(u.table_name())
                    .set_key(Some(u.key().clone()))
                    .update_expression(u.update_expression())
                    .set_condition_expression(u.condition_expression().map(str::to_owned))
                    .set_expression_attribute_names(u.expression_attribute_names().cloned())
                    .set_expression_attribute_values(u.expression_attribute_values().cloned())
                    .send()
                    .await;
                return match result {
                    Ok(_) => Ok(Applied::Done),
                    Err(err)
                        if err
                            .as_service_error()
                            .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                    {
                        Ok(Applied::StaleVersion)
                    }
                    Err(err) => Err(classify(err)),
                };
            }
            StockChange::Reserve(lines) => (lines, true),
            StockChange::Release(lines) => (lines, false),
        };
        let mut actions = vec![TransactWriteItem::builder().update(order_update).build()];
        for (product, quantity) in lines {
            actions.push(
                TransactWriteItem::builder()
                    .update(self.stock_update(
                        product.as_str(),
                        quantity.get(),
                        reserve.then(|| price_of(next, product)),
                    )?)
                    .build(),
            );
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Applied::Done),
            Err(err) => {
                if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
                    err.as_service_error()
                {
                    // Reasons are positional: [order, line 0, line 1, …].
                    let reasons = cancelled.cancellation_reasons();
                    let failed = |i: usize| {
                        reasons.get(i).and_then(|r| r.code()) == Some("ConditionalCheckFailed")
                    };
                    if failed(0) {
                        return Ok(Applied::StaleVersion);
                    }
                    if let Some(i) = (0..lines.len()).find(|i| failed(i + 1)) {
                        return Ok(Applied::Refused(lines[i].0.clone()));
                    }
                    if reasons
                        .iter()
                        .any(|r| r.code() == Some("TransactionConflict"))
                    {
                        return Ok(Applied::Contended);
                    }
                    // Throttling inside the transaction and the like: nothing was written, a
                    // retry can succeed.
                    return Err(OrderError::Unavailable(Box::new(err)));
                }
                Err(classify(err))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orders_core::order::NewLineItem;
    use orders_core::{Currency, CustomerId, FailureReason, PlaceOrder, Quantity, Timestamp};

    fn placed() -> Order {
        let command = PlaceOrder {
            customer_id: CustomerId::parse("c-1").unwrap(),
            currency: Currency::parse("USD").unwrap(),
            items: vec![NewLineItem {
                product_id: ProductId::parse("sku-1").unwrap(),
                quantity: Quantity::new(1).unwrap(),
                unit_price: Money::from_minor(100).unwrap(),
            }],
        };
        let at = Timestamp::parse("2026-11-21T10:00:00Z").unwrap();
        Order::place(OrderId::new(ulid::Ulid::from_parts(1, 1)), &command, at)
    }

    #[test]
    fn the_optional_attributes_are_those_an_order_may_lack() {
        let at = Timestamp::parse("2026-11-21T10:00:01Z").unwrap();
        let mut full = placed();
        full.processed_at = Some(at);
        full.failed_at = Some(at);
        full.failure_reason = Some(FailureReason::OutOfStock);
        full.cancelled_at = Some(at);
        full.shipped_at = Some(at);
        full.delivered_at = Some(at);
        full.retries = 1;
        full.retried_at = Some(at);
        let (full, placed) = (order_item(&full).unwrap(), order_item(&placed()).unwrap());
        let mut optional: Vec<&str> = full
            .keys()
            .filter(|k| !placed.contains_key(*k))
            .map(String::as_str)
            .collect();
        optional.sort_unstable();
        let mut listed = OPTIONAL_ATTRIBUTES.to_vec();
        listed.sort_unstable();
        assert_eq!(optional, listed);
    }

    #[test]
    fn a_retry_removes_the_failure_and_other_changes_only_set() {
        let at = Timestamp::parse("2026-11-21T10:00:01Z").unwrap();
        let failed = placed().fail(FailureReason::OutOfStock, at).unwrap();
        let retried = failed.retry(&[], at).unwrap();
        let removed = removed_attributes(&retried, &order_item(&retried).unwrap());
        assert!(removed.contains(&"failedAt") && removed.contains(&"failureReason"));
        assert!(!removed.contains(&"retries") && !removed.contains(&"retriedAt"));
        assert!(removed_attributes(&failed, &order_item(&failed).unwrap()).is_empty());
        let processed = retried
            .transition(orders_core::OrderStatus::Processed, at)
            .unwrap();
        assert!(removed_attributes(&processed, &order_item(&processed).unwrap()).is_empty());
    }
}
