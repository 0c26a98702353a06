//! The analytics table and the event-claims table.
//!
//! Each stored item is its own partition (`pk` = `m#2026-11-22T10:31/totals`): the items of
//! one hot bucket (totals, product shards, customer shards) are written by every shard's
//! batches, and spreading them keeps each partition far below DynamoDB's 1,000 writes/s.
//! A bucket is read back with one BatchGetItem of its known keys.
//! See `orders_core::ports::AnalyticsStore` for the exactly-once mechanism and
//! `orders_core::analytics` for the item layout.

use crate::errors::{classify, corrupt};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use orders_core::analytics::{
    Bucket, BucketView, CUSTOMER_SHARDS, CounterItem, ItemDelta, PRODUCT_SHARDS, ProductTotals,
    Totals, shard_of,
};
use orders_core::ports::{AnalyticsReader, AnalyticsStore, CountersApplied};
use orders_core::{CustomerId, EventId, OrderError, OrderId, ProductId, Timestamp, sequence};
use std::collections::{BTreeMap, BTreeSet, HashMap};

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone)]
pub struct DynamoAnalytics {
    client: Client,
    table: String,
    claims_table: String,
    claim_ttl_seconds: i64,
}

impl DynamoAnalytics {
    pub fn from_sdk(
        sdk: &aws_config::SdkConfig,
        table: impl Into<String>,
        claims_table: impl Into<String>,
        claim_ttl_seconds: i64,
    ) -> Self {
        Self {
            client: crate::config::dynamodb_client(sdk),
            table: table.into(),
            claims_table: claims_table.into(),
            claim_ttl_seconds,
        }
    }

    fn key(item: &CounterItem) -> Item {
        pk(&item.bucket(), &item.sort_key())
    }

    /// `SET #wm = :last ADD #a0 :v0, …` with the watermark attribute named after the shard.
    fn update(
        &self,
        item: &CounterItem,
        shard: &str,
        last: &str,
        delta: &ItemDelta,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        let mut names = HashMap::from([("#wm".to_owned(), format!("wm#{shard}"))]);
        let mut values =
            HashMap::from([(":last".to_owned(), AttributeValue::S(sequence::pad(last)))]);
        let mut adds = Vec::new();
        for (i, (name, n)) in delta.attributes().into_iter().enumerate() {
            adds.push(format!("#a{i} :v{i}"));
            names.insert(format!("#a{i}"), name);
            values.insert(format!(":v{i}"), AttributeValue::N(n.to_string()));
        }
        let mut expression = "SET #wm = :last".to_owned();
        if !adds.is_empty() {
            expression.push_str(&format!(" ADD {}", adds.join(", ")));
        }
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(item)))
            .update_expression(expression)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
    }

    /// Everything stored for `bucket`: one BatchGetItem of its known item keys.
    pub async fn bucket(&self, bucket: &Bucket) -> Result<BucketView, OrderError> {
        let mut view = BucketView::default();
        for item in self.items_of(bucket).await?.into_values() {
            add_item(&mut view, item)?;
        }
        Ok(view)
    }

    /// Replaces what is stored for `bucket` with `desired` (a rebuild), keeping every item's
    /// watermarks so the stream's later records still apply exactly once on top. Items that
    /// already hold the desired values are not written. Returns the number of items written.
    pub async fn replace_bucket(
        &self,
        bucket: &Bucket,
        desired: &BucketView,
    ) -> Result<usize, OrderError> {
        let existing = self.items_of(bucket).await?;
        let wanted = stored_items(bucket, desired);
        let mut written = 0;
        for (name, want) in wanted {
            let key = pk(bucket, &name);
            let pk_value = key["pk"]
                .as_s()
                .map_err(|_| OrderError::Unexpected("pk is a string".into()))?
                .clone();
            let current: HashMap<String, AttributeValue> = existing
                .get(&pk_value)
                .map(|item| {
                    item.iter()
                        .filter(|(k, _)| *k != "pk" && !k.starts_with("wm#"))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            if same_values(&current, &want) {
                continue;
            }
            let mut names = HashMap::new();
            let mut values = HashMap::new();
            let mut sets = Vec::new();
            let mut removes = Vec::new();
            for (i, (attr, value)) in want.iter().enumerate() {
                sets.push(format!("#s{i} = :s{i}"));
                names.insert(format!("#s{i}"), attr.clone());
                values.insert(format!(":s{i}"), value.clone());
            }
            for (i, attr) in current
                .keys()
                .filter(|k| !want.contains_key(*k))
                .enumerate()
            {
                removes.push(format!("#r{i}"));
                names.insert(format!("#r{i}"), attr.clone());
            }
            let mut expression = String::new();
            if !sets.is_empty() {
                expression.push_str(&format!("SET {}", sets.join(", ")));
            }
            if !removes.is_empty() {
                expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
            }
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key))
                .update_expression(expression.trim())
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values((!values.is_empty()).then_some(values))
                .send()
                .await
                .map_err(classify)?;
            written += 1;
        }
        Ok(written)
    }

    /// Writes whole buckets into a table that holds nothing for them yet (a bulk load:
    /// benchmarks, or a rebuild into a fresh table), 25 items per BatchWriteItem. Returns
    /// the number of items written; empty items are skipped.
    pub async fn load_buckets(&self, views: &[(Bucket, BucketView)]) -> Result<usize, OrderError> {
        let mut items = Vec::new();
        for (bucket, view) in views {
            for (name, mut attrs) in stored_items(bucket, view) {
                if attrs.is_empty() {
                    continue;
                }
                attrs.extend(pk(bucket, &name));
                items.push(attrs);
            }
        }
        super::batch_put(&self.client, &self.table, items).await
    }

    /// The stored items of `bucket`, by `pk`.
    async fn items_of(&self, bucket: &Bucket) -> Result<HashMap<String, Item>, OrderError> {
        let keys: Vec<Item> = std::iter::once("totals".to_owned())
            .chain((0..PRODUCT_SHARDS).map(|s| CounterItem::Products(*bucket, s).sort_key()))
            .chain((0..CUSTOMER_SHARDS).map(customer_item))
            .map(|name| pk(bucket, &name))
            .collect();
        let mut items = HashMap::new();
        for item in super::batch_get(&self.client, &self.table, keys, true).await? {
            if let Some(AttributeValue::S(key)) = item.get("pk") {
                items.insert(key.clone(), item);
            }
        }
        Ok(items)
    }

    async fn watermark(
        &self,
        item: &CounterItem,
        shard: &str,
    ) -> Result<Option<String>, OrderError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(item)))
            .consistent_read(true)
            .projection_expression("#wm")
            .expression_attribute_names("#wm", format!("wm#{shard}"))
            .send()
            .await
            .map_err(classify)?;
        Ok(output.item.and_then(|i| {
            i.get(&format!("wm#{shard}"))
                .and_then(|v| v.as_s().ok().cloned())
        }))
    }
}

/// The query side's reads of the analytics table: BatchGetItem of known keys (never a
/// Scan), eventually consistent — a report may trail the latest write by a moment, at half
/// the read cost.
#[derive(Debug, Clone)]
pub struct DynamoAnalyticsReader {
    client: Client,
    table: String,
}

impl DynamoAnalyticsReader {
    pub fn from_sdk(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        // A report reads up to thousands of keys in parallel chunks: give each chunk more
        // than an order lookup's 2 s, still well inside the function's 10 s timeout. (Only
        // an emulator gets near it: moto spends ~75 µs per attribute returned, so a chunk of
        // day-bucket product items takes ~0.7 s there, ~20 ms on DynamoDB.)
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(std::time::Duration::from_secs(1))
            .operation_attempt_timeout(std::time::Duration::from_secs(4))
            .operation_timeout(std::time::Duration::from_secs(8))
            .build();
        let sdk = sdk.to_builder().timeout_config(timeouts).build();
        Self {
            client: crate::config::dynamodb_client(&sdk),
            table: table.into(),
        }
    }

    /// The items `items(bucket)` of every bucket, folded into one view per bucket (in the
    /// order of `buckets`; empty where nothing is stored).
    async fn views(
        &self,
        buckets: &[Bucket],
        items: impl Fn(&Bucket) -> Vec<String>,
    ) -> Result<Vec<BucketView>, OrderError> {
        let keys = buckets
            .iter()
            .flat_map(|b| items(b).into_iter().map(move |name| pk(b, &name)))
            .collect();
        let mut by_bucket: HashMap<String, BucketView> = HashMap::new();
        for item in super::batch_get(&self.client, &self.table, keys, false).await? {
            let Some(AttributeValue::S(key)) = item.get("pk") else {
                continue;
            };
            let bucket = key.split_once('/').map_or("", |(b, _)| b).to_owned();
            add_item(by_bucket.entry(bucket).or_default(), item)?;
        }
        Ok(buckets
            .iter()
            .map(|b| by_bucket.remove(&b.to_string()).unwrap_or_default())
            .collect())
    }
}

#[async_trait]
impl AnalyticsReader for DynamoAnalyticsReader {
    async fn totals(&self, buckets: &[Bucket]) -> Result<Vec<Totals>, OrderError> {
        let views = self.views(buckets, |_| vec!["totals".to_owned()]).await?;
        Ok(views.into_iter().map(|v| v.totals).collect())
    }

    async fn products(
        &self,
        buckets: &[Bucket],
    ) -> Result<Vec<BTreeMap<ProductId, ProductTotals>>, OrderError> {
        let views = self
            .views(buckets, |b| {
                (0..PRODUCT_SHARDS)
                    .map(|s| CounterItem::Products(*b, s).sort_key())
                    .collect()
            })
            .await?;
        Ok(views.into_iter().map(|v| v.products).collect())
    }

    async fn customers(&self, buckets: &[Bucket]) -> Result<Vec<BTreeSet<CustomerId>>, OrderError> {
        let views = self
            .views(buckets, |_| {
                (0..CUSTOMER_SHARDS).map(customer_item).collect()
            })
            .await?;
        Ok(views.into_iter().map(|v| v.customers).collect())
    }
}

/// Every item of `bucket` as `view` would be stored, by item name (`totals`,
/// `products#NN`, `customers#NN`), without keys or watermarks; an item with nothing to
/// hold maps to no attributes.
fn stored_items(bucket: &Bucket, view: &BucketView) -> BTreeMap<String, Item> {
    let mut wanted: BTreeMap<String, Item> = BTreeMap::new();
    let totals: Item = view
        .totals
        .attributes()
        .into_iter()
        .map(|(name, n)| (name, AttributeValue::N(n.to_string())))
        .collect();
    wanted.insert("totals".into(), totals);
    for shard in 0..PRODUCT_SHARDS {
        wanted.insert(
            CounterItem::Products(*bucket, shard).sort_key(),
            HashMap::new(),
        );
    }
    for (id, p) in &view.products {
        let item = CounterItem::Products(*bucket, shard_of(id.as_str(), PRODUCT_SHARDS)).sort_key();
        let attrs = wanted.entry(item).or_default();
        for (prefix, n) in [("u", p.units), ("r", p.revenue), ("o", p.orders)] {
            if n != 0 {
                attrs.insert(format!("{prefix}#{id}"), AttributeValue::N(n.to_string()));
            }
        }
    }
    for shard in 0..CUSTOMER_SHARDS {
        let ids: Vec<String> = view
            .customers
            .iter()
            .filter(|c| shard_of(c.as_str(), CUSTOMER_SHARDS) == shard)
            .map(|c| c.to_string())
            .collect();
        let mut attrs = HashMap::new();
        if !ids.is_empty() {
            attrs.insert("customers".to_owned(), AttributeValue::Ss(ids));
        }
        wanted.insert(customer_item(shard), attrs);
    }
    wanted
}

fn pk(bucket: &Bucket, item: &str) -> Item {
    Item::from([(
        "pk".to_owned(),
        AttributeValue::S(format!("{bucket}/{item}")),
    )])
}

fn customer_item(shard: u32) -> String {
    format!("customers#{shard:02}")
}

fn add_item(view: &mut BucketView, item: Item) -> Result<(), OrderError> {
    for (name, value) in item {
        match value {
            AttributeValue::N(n) => {
                let n = n
                    .parse::<i64>()
                    .map_err(|e| corrupt("reading a counter", e))?;
                view.add_counter(&name, n);
            }
            AttributeValue::Ss(ids) if name == "customers" => {
                view.customers
                    .extend(ids.iter().filter_map(|id| CustomerId::parse(id).ok()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Equal as DynamoDB values: numbers by value, string sets regardless of order.
fn same_values(a: &HashMap<String, AttributeValue>, b: &HashMap<String, AttributeValue>) -> bool {
    a.len() == b.len()
        && a.iter().all(|(k, v)| match (v, b.get(k)) {
            (AttributeValue::N(x), Some(AttributeValue::N(y))) => {
                x.parse::<i64>().ok() == y.parse::<i64>().ok()
            }
            (AttributeValue::Ss(x), Some(AttributeValue::Ss(y))) => {
                x.iter().collect::<BTreeSet<_>>() == y.iter().collect::<BTreeSet<_>>()
            }
            (x, Some(y)) => x == y,
            (_, None) => false,
        })
}

#[async_trait]
impl AnalyticsStore for DynamoAnalytics {
    async fn claim_events(
        &self,
        order_id: &OrderId,
        claims: &[(EventId, String)],
    ) -> Result<Vec<bool>, OrderError> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let expires = Timestamp::now().unix_seconds() + self.claim_ttl_seconds;
        let mut names = HashMap::from([("#x".to_owned(), "expiresAt".to_owned())]);
        let mut values = HashMap::from([(":x".to_owned(), AttributeValue::N(expires.to_string()))]);
        let mut sets = vec!["#x = :x".to_owned()];
        for (i, (event_id, position)) in claims.iter().enumerate() {
            // Keep the first claimant: a later record with the same event is a duplicate.
            sets.push(format!("#e{i} = if_not_exists(#e{i}, :p{i})"));
            names.insert(format!("#e{i}"), format!("e#{event_id}"));
            values.insert(format!(":p{i}"), AttributeValue::S(position.clone()));
        }
        let output = self
            .client
            .update_item()
            .table_name(&self.claims_table)
            .key("orderId", AttributeValue::S(order_id.to_string()))
            .update_expression(format!("SET {}", sets.join(", ")))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(classify)?;
        let stored = output.attributes.unwrap_or_default();
        Ok(claims
            .iter()
            .map(|(event_id, position)| {
                stored
                    .get(&format!("e#{event_id}"))
                    .and_then(|v| v.as_s().ok())
                    == Some(position)
            })
            .collect())
    }

    async fn add_counters(
        &self,
        item: &CounterItem,
        shard: &str,
        first: &str,
        last: &str,
        delta: &ItemDelta,
    ) -> Result<CountersApplied, OrderError> {
        let result = self
            .update(item, shard, last, delta)
            .condition_expression("attribute_not_exists(#wm) OR #wm < :first")
            .expression_attribute_values(":first", AttributeValue::S(sequence::pad(first)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(CountersApplied::Done),
            Err(err) if super::condition_failed(&err) => {
                // The refused item comes back with the error (ALL_OLD); read it only if not.
                let returned = match err.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(e)) => e
                        .item()
                        .and_then(|i| i.get(&format!("wm#{shard}")))
                        .and_then(|v| v.as_s().ok().cloned()),
                    _ => None,
                };
                let watermark = match returned {
                    Some(w) => w,
                    None => self.watermark(item, shard).await?.ok_or_else(|| {
                        OrderError::Unavailable(
                            "watermark vanished after a conditional failure".into(),
                        )
                    })?,
                };
                Ok(CountersApplied::Behind(watermark))
            }
            Err(err) => Err(classify(err)),
        }
    }

    async fn add_counters_after(
        &self,
        item: &CounterItem,
        shard: &str,
        watermark: &str,
        last: &str,
        delta: &ItemDelta,
    ) -> Result<bool, OrderError> {
        let result = self
            .update(item, shard, last, delta)
            .condition_expression("#wm = :expected")
            .expression_attribute_values(":expected", AttributeValue::S(sequence::pad(watermark)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if super::condition_failed(&err) => Ok(false),
            Err(err) => Err(classify(err)),
        }
    }

    async fn add_customers(
        &self,
        bucket: &Bucket,
        shard: u32,
        customers: &BTreeSet<CustomerId>,
    ) -> Result<(), OrderError> {
        if customers.is_empty() {
            return Ok(());
        }
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(pk(bucket, &customer_item(shard))))
            .update_expression("ADD customers :ids")
            .expression_attribute_values(
                ":ids",
                AttributeValue::Ss(customers.iter().map(|c| c.to_string()).collect()),
            )
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}
