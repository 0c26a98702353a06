//! The products table: key `productId`; `stock` is only ever changed by conditional
//! updates (see [`super::commands`]) or replaced by `PUT /products/{id}`.

use crate::errors::{classify, corrupt};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use orders_core::ports::Catalog;
use orders_core::{OrderError, Product, ProductId};
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

fn key(id: &ProductId) -> Item {
    Item::from([("productId".to_owned(), AttributeValue::S(id.to_string()))])
}

#[async_trait]
impl Catalog for DynamoCatalog {
    async fn put(&self, product: &Product) -> Result<bool, OrderError> {
        let item: Item =
            serde_dynamo::to_item(product).map_err(|e| corrupt("serialising a product", e))?;
        let output = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(classify)?;
        Ok(output.attributes.is_none_or(|old| old.is_empty()))
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
