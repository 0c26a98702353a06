//! The products table: key `productId`; `stock` is only ever changed by conditional
//! updates (reservations in [`super::commands`], adjustments here, a replace conditional on
//! the version read), and every change bumps `version`.

use crate::errors::{classify, corrupt};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use orders_core::ports::{Catalog, CatalogWrite};
use orders_core::{OrderError, Product, ProductId, Timestamp};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone)]
pub struct DynamoCatalog {
    client: Client,
    table: String,
}

impl DynamoCatalog {
    pub fn from_sdk(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self {
            client: crate::config::dynamodb_client(sdk),
            table: table.into(),
        }
    }
}

fn product_from_item(item: Item) -> Result<Product, OrderError> {
    serde_dynamo::from_item(item).map_err(|e| corrupt("reading a product item", e))
}

fn product_item(product: &Product) -> Result<Item, OrderError> {
    serde_dynamo::to_item(product).map_err(|e| corrupt("serialising a product", e))
}

fn key(id: &ProductId) -> Item {
    Item::from([("productId".to_owned(), AttributeValue::S(id.to_string()))])
}

#[async_trait]
impl Catalog for DynamoCatalog {
    async fn put(&self, product: &Product) -> Result<bool, OrderError> {
        let output = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(product_item(product)?))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(classify)?;
        Ok(output.attributes.is_none_or(|old| old.is_empty()))
    }

    async fn create(&self, product: &Product) -> Result<CatalogWrite, OrderError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(product_item(product)?))
            .condition_expression("attribute_not_exists(productId)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(CatalogWrite::Done),
            Err(err) if super::condition_failed(&err) => Ok(CatalogWrite::Refused),
            Err(err) => Err(classify(err)),
        }
    }

    async fn update(&self, next: &Product, set_stock: bool) -> Result<CatalogWrite, OrderError> {
        let mut sets = vec![
            "#name = :name",
            "price = :price",
            "updatedAt = :at",
            "version = :next",
        ];
        let mut values = HashMap::from([
            (":name".to_owned(), AttributeValue::S(next.name.clone())),
            (
                ":price".to_owned(),
                AttributeValue::N(next.price.minor().to_string()),
            ),
            (
                ":at".to_owned(),
                AttributeValue::S(next.updated_at.to_string()),
            ),
            (
                ":next".to_owned(),
                AttributeValue::N(next.version.to_string()),
            ),
        ]);
        if set_stock {
            sets.push("stock = :stock");
            values.insert(":stock".into(), AttributeValue::N(next.stock.to_string()));
        }
        let previous = next.version.saturating_sub(1);
        // Items from before versions existed have none: they count as version 0.
        let condition = if previous == 0 {
            "attribute_exists(productId) AND attribute_not_exists(version)"
        } else {
            values.insert(":previous".into(), AttributeValue::N(previous.to_string()));
            "version = :previous"
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&next.product_id)))
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression(condition)
            .expression_attribute_names("#name", "name")
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(CatalogWrite::Done),
            Err(err) if super::condition_failed(&err) => Ok(CatalogWrite::Refused),
            Err(err) => Err(classify(err)),
        }
    }

    async fn adjust_stock(
        &self,
        id: &ProductId,
        add: i64,
        at: Timestamp,
    ) -> Result<Option<Product>, OrderError> {
        let mut values = HashMap::from([
            (":add".to_owned(), AttributeValue::N(add.to_string())),
            (":one".to_owned(), AttributeValue::N("1".into())),
            (":zero".to_owned(), AttributeValue::N("0".into())),
            (":at".to_owned(), AttributeValue::S(at.to_string())),
        ]);
        let condition = if add < 0 {
            values.insert(
                ":take".into(),
                AttributeValue::N(add.unsigned_abs().to_string()),
            );
            "attribute_exists(productId) AND stock >= :take"
        } else {
            "attribute_exists(productId)"
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .update_expression(
                "SET stock = stock + :add, version = if_not_exists(version, :zero) + :one, updatedAt = :at",
            )
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => output.attributes.map(product_from_item).transpose(),
            Err(err) if super::condition_failed(&err) => Ok(None),
            Err(err) => Err(classify(err)),
        }
    }

    async fn get(&self, id: &ProductId) -> Result<Option<Product>, OrderError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        output.item.map(product_from_item).transpose()
    }

    async fn get_many(&self, ids: &[ProductId]) -> Result<Vec<Product>, OrderError> {
        super::batch_get(
            &self.client,
            &self.table,
            ids.iter().map(key).collect(),
            true,
        )
        .await?
        .into_iter()
        .map(product_from_item)
        .collect()
    }

    /// Pages through the table with a Scan, which reads only the requested page (products
    /// are few and have no natural partition to query by; order is by key hash, stable
    /// across pages).
    async fn list(
        &self,
        limit: usize,
        after: Option<&ProductId>,
    ) -> Result<(Vec<Product>, Option<ProductId>), OrderError> {
        let output = self
            .client
            .scan()
            .table_name(&self.table)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(after.map(key))
            .send()
            .await
            .map_err(classify)?;
        let products = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(product_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        let next = match output.last_evaluated_key {
            Some(_) if products.len() == limit => products.last().map(|p| p.product_id.clone()),
            _ => None,
        };
        Ok((products, next))
    }
}
