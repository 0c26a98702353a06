//! The orders table: conditional creates and index-backed listings (see the module above).

use super::{LIST_SHARDS, shard_of};
use crate::errors::{classify, corrupt};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Select};
use futures::future::try_join_all;
use orders_core::listing::{CreatedWindow, IdRange, ListOrders, OrderPage};
use orders_core::ports::{Created, OrderStore};
use orders_core::{Order, OrderError, OrderId, OrderStatus, Timestamp};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone)]
pub struct DynamoOrderStore {
    client: Client,
    table: String,
}

impl DynamoOrderStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn from_sdk(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(crate::config::dynamodb_client(sdk), table)
    }

    /// Every order created in `[from, to)`, from the `byCreated` index: order ids are ULIDs,
    /// so a creation-time range is an id range on every shard.
    pub async fn created_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Order>, OrderError> {
        let window = CreatedWindow {
            from: Some(from),
            to: Some(to),
        };
        let Some((low, high)) = window.id_bounds() else {
            return Ok(Vec::new());
        };
        let (low, high) = (low.to_string(), high.to_string());
        let mut orders = Vec::new();
        for shard in 0..LIST_SHARDS {
            let mut start: Option<Item> = None;
            loop {
                let output = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name("byCreated")
                    .key_condition_expression("listShard = :s AND orderId BETWEEN :lo AND :hi")
                    .expression_attribute_values(":s", AttributeValue::S(shard.to_string()))
                    .expression_attribute_values(":lo", AttributeValue::S(low.clone()))
                    .expression_attribute_values(":hi", AttributeValue::S(high.clone()))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(classify)?;
                for item in output.items.unwrap_or_default() {
                    orders.push(order_from_item(item)?);
                }
                match output.last_evaluated_key {
                    Some(key) => start = Some(key),
                    None => break,
                }
            }
        }
        Ok(orders)
    }

    /// Writes orders that do not exist yet, with their index keys, 25 per BatchWriteItem
    /// (a bulk load for benchmarks: no condition, no events). Returns how many.
    pub async fn load(&self, orders: &[Order]) -> Result<usize, OrderError> {
        let items = orders
            .iter()
            .map(order_item)
            .collect::<Result<Vec<_>, _>>()?;
        super::batch_put(&self.client, &self.table, items).await
    }

    /// Gives orders written before the `byCustomerStatus` index existed its key, so a
    /// customer's listing by status finds them: scans for items without `customerStatus`
    /// and sets it from the item's own customer and status, on the condition that the status
    /// is still the one read (an order changed meanwhile was rewritten with its keys by
    /// [`order_item`] already). `dry_run` counts without writing. A one-off for upgrades:
    /// every write since sets the key.
    pub async fn backfill_listing_keys(&self, dry_run: bool) -> Result<Backfill, OrderError> {
        let mut report = Backfill::default();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("attribute_not_exists(customerStatus)")
                .projection_expression("orderId, customerId, #status")
                .expression_attribute_names("#status", "status")
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(classify)?;
            for item in page.items.unwrap_or_default() {
                let text = |name: &str| match item.get(name) {
                    Some(AttributeValue::S(value)) => Ok(value.clone()),
                    _ => Err(OrderError::Unexpected(
                        format!("an order item without a string {name}").into(),
                    )),
                };
                let (id, customer, status) =
                    (text("orderId")?, text("customerId")?, text("status")?);
                report.missing += 1;
                if dry_run {
                    continue;
                }
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .key("orderId", AttributeValue::S(id))
                    .update_expression("SET customerStatus = :key")
                    .condition_expression(
                        "#status = :status AND attribute_not_exists(customerStatus)",
                    )
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(
                        ":key",
                        AttributeValue::S(format!("{customer}#{status}")),
                    )
                    .expression_attribute_values(":status", AttributeValue::S(status))
                    .send()
                    .await;
                match result {
                    Ok(_) => report.updated += 1,
                    Err(err)
                        if err
                            .as_service_error()
                            .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                    {
                        report.changed_meanwhile += 1;
                    }
                    Err(err) => return Err(classify(err)),
                }
            }
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(report),
            }
        }
    }

    /// Reads by consistent `GetItem`: the caller just wrote, or must see the latest status.
    async fn get_consistent(&self, id: &OrderId) -> Result<Option<Order>, OrderError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("orderId", AttributeValue::S(id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        output.item.map(order_from_item).transpose()
    }

    /// Up to `want` orders of one index partition, newest first, with ids in `range` (the
    /// cursor and the creation-time window): one Query, unless DynamoDB stops at its 1 MB
    /// page size first.
    async fn query_partition(
        &self,
        partition: Partition,
        range: IdRange,
        want: usize,
    ) -> Result<Vec<Order>, OrderError> {
        let (key_condition, sort_key_values) = key_condition(range);
        let mut found = Vec::new();
        let mut start_key: Option<Item> = None;
        loop {
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(partition.index)
                .key_condition_expression(key_condition)
                .expression_attribute_names("#pk", partition.key_attribute)
                .expression_attribute_values(":pk", AttributeValue::S(partition.value.clone()))
                .scan_index_forward(false)
                .select(Select::AllProjectedAttributes)
                .limit(i32::try_from(want - found.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start_key.take());
            for (name, id) in &sort_key_values {
                request =
                    request.expression_attribute_values(*name, AttributeValue::S(id.to_string()));
            }
            let output = request.send().await.map_err(classify)?;
            for item in output.items.unwrap_or_default() {
                found.push(order_from_item(item)?);
            }
            match output.last_evaluated_key {
                Some(key) if found.len() < want => start_key = Some(key),
                _ => break,
            }
        }
        found.truncate(want);
        Ok(found)
    }
}

/// What [`DynamoOrderStore::backfill_listing_keys`] found and did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Backfill {
    /// Orders without the `byCustomerStatus` key.
    pub missing: usize,
    /// Given their key.
    pub updated: usize,
    /// Changed (and so given their key) by another writer between the scan and the update.
    pub changed_meanwhile: usize,
}

/// One partition of one listing index.
#[derive(Debug, Clone)]
struct Partition {
    index: &'static str,
    key_attribute: &'static str,
    value: String,
}

/// The key condition of a listing Query on any listing index (partition `#pk` = `:pk`,
/// sorted by `orderId`) and the values of its sort-key placeholders. One condition on the
/// sort key at most, as DynamoDB allows: the window and the cursor arrive as one range.
fn key_condition(range: IdRange) -> (&'static str, Vec<(&'static str, OrderId)>) {
    match range {
        IdRange::All | IdRange::Empty => ("#pk = :pk", Vec::new()),
        IdRange::Below(before) => ("#pk = :pk AND orderId < :before", vec![(":before", before)]),
        IdRange::Between(low, high) => (
            "#pk = :pk AND orderId BETWEEN :lo AND :hi",
            vec![(":lo", low), (":hi", high)],
        ),
    }
}

fn status_shard(status: OrderStatus, shard: u32) -> String {
    format!("{status}#{shard}")
}

/// `byCustomerStatus` key: `#` cannot occur in a customer id (see `CustomerId`), so the
/// pair is unambiguous.
fn customer_status(customer: &str, status: OrderStatus) -> String {
    format!("{customer}#{status}")
}

/// The stored item: the order as JSON-shaped attributes plus the index keys derived from it.
/// Every write of an order goes through here, so the index keys can never disagree with it.
pub fn order_item(order: &Order) -> Result<Item, OrderError> {
    let mut item: Item =
        serde_dynamo::to_item(order).map_err(|e| corrupt("serialising an order", e))?;
    let shard = shard_of(&order.order_id.to_string());
    item.insert(
        "statusShard".into(),
        AttributeValue::S(status_shard(order.status, shard)),
    );
    item.insert("listShard".into(), AttributeValue::S(shard.to_string()));
    item.insert(
        "customerStatus".into(),
        AttributeValue::S(customer_status(order.customer_id.as_str(), order.status)),
    );
    Ok(item)
}

fn order_from_item(item: Item) -> Result<Order, OrderError> {
    serde_dynamo::from_item(item).map_err(|e| corrupt("reading an order item", e))
}

/// An order from an image of the table's change stream (the layout [`order_item`] writes;
/// the index keys are ignored).
pub fn order_from_image(image: serde_dynamo::Item) -> Result<Order, OrderError> {
    serde_dynamo::from_item(image).map_err(|e| corrupt("reading an order image", e))
}

#[async_trait]
impl OrderStore for DynamoOrderStore {
    async fn create(&self, order: &Order) -> Result<Created, OrderError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(order_item(order)?))
            .condition_expression("attribute_not_exists(orderId)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(Created::New),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                let existing = self.get_consistent(&order.order_id).await?.ok_or_else(|| {
                    OrderError::Unexpected("order vanished after a conflicting create".into())
                })?;
                Ok(Created::AlreadyExists(Box::new(existing)))
            }
            Err(err) => Err(classify(err)),
        }
    }

    async fn get(&self, id: &OrderId) -> Result<Option<Order>, OrderError> {
        self.get_consistent(id).await
    }

    async fn list(&self, query: &ListOrders) -> Result<OrderPage, OrderError> {
        let range = query.id_range();
        if range == IdRange::Empty {
            // Nothing can match (a cursor at the window's first order): no need to ask.
            return Ok(OrderPage {
                orders: Vec::new(),
                next: None,
            });
        }
        // One more than the page, to know whether a next page exists without an empty last page.
        let want = query.limit + 1;
        let partitions = match (&query.customer_id, query.status) {
            (Some(customer), Some(status)) => vec![Partition {
                index: "byCustomerStatus",
                key_attribute: "customerStatus",
                value: customer_status(customer.as_str(), status),
            }],
            (Some(customer), None) => vec![Partition {
                index: "byCustomer",
                key_attribute: "customerId",
                value: customer.to_string(),
            }],
            (None, Some(status)) => (0..LIST_SHARDS)
                .map(|n| Partition {
                    index: "byStatus",
                    key_attribute: "statusShard",
                    value: status_shard(status, n),
                })
                .collect(),
            (None, None) => (0..LIST_SHARDS)
                .map(|n| Partition {
                    index: "byCreated",
                    key_attribute: "listShard",
                    value: n.to_string(),
                })
                .collect(),
        };
        let pages = try_join_all(
            partitions
                .into_iter()
                .map(|p| self.query_partition(p, range, want)),
        )
        .await?;
        let mut orders: Vec<Order> = pages.into_iter().flatten().collect();
        orders.sort_unstable_by_key(|o| std::cmp::Reverse(o.order_id));
        orders.truncate(want);
        let next = if orders.len() > query.limit {
            orders.truncate(query.limit);
            orders.last().map(|o| o.order_id)
        } else {
            None
        };
        Ok(OrderPage { orders, next })
    }

    async fn ping(&self) -> Result<(), OrderError> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orders_core::listing::CreatedWindow;

    fn list(params: &[(&str, &str)]) -> ListOrders {
        ListOrders::parse(params.iter().copied()).unwrap()
    }

    #[test]
    fn a_window_is_one_sort_key_condition_on_any_index() {
        assert_eq!(key_condition(list(&[]).id_range()), ("#pk = :pk", vec![]));
        let window = list(&[
            ("from", "2026-11-22T10:00:00Z"),
            ("to", "2026-11-22T11:00:00Z"),
            ("status", "FAILED"),
        ]);
        let (condition, values) = key_condition(window.id_range());
        assert_eq!(condition, "#pk = :pk AND orderId BETWEEN :lo AND :hi");
        let (low, high) = window.window.id_bounds().unwrap();
        assert_eq!(values, vec![(":lo", low), (":hi", high)]);
        // DynamoDB refuses a BETWEEN whose bounds are reversed; the strings compare as ids do.
        assert!(low.to_string() < high.to_string());
        assert_eq!(low.timestamp_ms(), 1_795_341_600_000);
        assert_eq!(high.timestamp_ms(), 1_795_345_199_999);

        // With a cursor: still one condition, its upper end just below the last order shown.
        let last_shown = OrderId::new(ulid::Ulid::from_parts(1_795_343_000_000, 77));
        let next_page = ListOrders {
            before: Some(last_shown),
            ..window.clone()
        };
        let (condition, values) = key_condition(next_page.id_range());
        assert_eq!(condition, "#pk = :pk AND orderId BETWEEN :lo AND :hi");
        assert_eq!(
            values,
            vec![(":lo", low), (":hi", last_shown.previous().unwrap())]
        );
        let unwindowed = ListOrders {
            before: Some(last_shown),
            window: CreatedWindow::ALL,
            ..window
        };
        assert_eq!(
            key_condition(unwindowed.id_range()),
            (
                "#pk = :pk AND orderId < :before",
                vec![(":before", last_shown)]
            )
        );
    }
}
