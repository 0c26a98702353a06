//! Command-side writes: an order's new state and its stock change in one transaction,
//! guarded by the order's version, so stock and status can never disagree.

use super::orders::order_item;
use crate::errors::{classify, corrupt};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use orders_core::ports::{Applied, OrderCommands, StockChange};
use orders_core::{Money, Order, OrderError, OrderId, ProductId};
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
        let mut sets = Vec::with_capacity(item.len());
        for (i, (name, value)) in item.into_iter().enumerate() {
            sets.push(format!("#a{i} = :v{i}"));
            names.insert(format!("#a{i}"), name);
            values.insert(format!(":v{i}"), value);
        }
        Update::builder()
            .table_name(&self.orders_table)
            .key("orderId", id)
            .update_expression(format!("SET {}", sets.join(", ")))
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
