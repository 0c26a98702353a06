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
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use orders_core::analytics::{
    Bucket, BucketView, CounterItem, ItemDelta, MAX_COUNTERS_PER_WRITE, PRODUCT_SHARDS,
    ProductTotals, Totals,
};
use orders_core::distinct::{self, Distinct, Registers, ShardSet};
use orders_core::ports::{AnalyticsReader, AnalyticsStore, CountersApplied};
use orders_core::shard::shard_of;
use orders_core::{CustomerId, EventId, OrderError, OrderId, ProductId, Timestamp, sequence};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone)]
pub struct DynamoAnalytics {
    client: Client,
    table: String,
    claims_table: String,
    claim_ttl_seconds: i64,
    /// The last registers this instance wrote per sketched customer shard: the next write
    /// is then one conditional request (a Kinesis shard's consumer is usually the only
    /// writer of its batches' buckets), not a failed ADD or a read first.
    sketches: Arc<Mutex<HashMap<String, Registers>>>,
}

/// Sketched shards remembered per instance (256 bytes each); forgotten all at once beyond.
const REMEMBERED_SKETCHES: usize = 4_096;

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
            sketches: Arc::default(),
        }
    }

    fn remembered_sketch(&self, key: &str) -> Option<Registers> {
        self.sketches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(key)
            .cloned()
    }

    fn remember_sketch(&self, key: &str, set: &ShardSet) {
        let mut sketches = self
            .sketches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match set {
            ShardSet::Sketch(registers) => {
                if sketches.len() >= REMEMBERED_SKETCHES {
                    sketches.clear();
                }
                sketches.insert(key.to_owned(), registers.clone());
            }
            ShardSet::Exact(_) => {
                sketches.remove(key);
            }
        }
    }

    fn key(item: &CounterItem) -> Item {
        pk(&item.bucket(), &item.sort_key())
    }

    /// `SET #wm = :last ADD #a0 :v0, …` with the watermark attribute named after the shard.
    /// Refuses a delta DynamoDB would refuse (the emulator would not): callers split their
    /// writes by [`MAX_COUNTERS_PER_WRITE`], so this is a bug, never retried into success.
    fn update(
        &self,
        item: &CounterItem,
        shard: &str,
        last: &str,
        delta: &ItemDelta,
    ) -> Result<
        aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
        OrderError,
    > {
        let attributes = delta.attributes();
        if attributes.len() > MAX_COUNTERS_PER_WRITE {
            return Err(OrderError::Unexpected(
                format!(
                    "{} counters in one write to {}; at most {MAX_COUNTERS_PER_WRITE}",
                    attributes.len(),
                    item.sort_key()
                )
                .into(),
            ));
        }
        let mut names = HashMap::from([("#wm".to_owned(), format!("wm#{shard}"))]);
        let mut values =
            HashMap::from([(":last".to_owned(), AttributeValue::S(sequence::pad(last)))]);
        let mut adds = Vec::new();
        for (i, (name, n)) in attributes.into_iter().enumerate() {
            adds.push(format!("#a{i} :v{i}"));
            names.insert(format!("#a{i}"), name);
            values.insert(format!(":v{i}"), AttributeValue::N(n.to_string()));
        }
        let mut expression = "SET #wm = :last".to_owned();
        if !adds.is_empty() {
            expression.push_str(&format!(" ADD {}", adds.join(", ")));
        }
        if expression.len() > MAX_EXPRESSION_BYTES {
            return Err(OrderError::Unexpected(
                format!("update expression of {} bytes", expression.len()).into(),
            ));
        }
        Ok(self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(item)))
            .update_expression(expression)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values)))
    }

    /// Everything stored for `bucket`: one BatchGetItem of its known item keys.
    pub async fn bucket(&self, bucket: &Bucket) -> Result<BucketView, OrderError> {
        let mut view = BucketView::default();
        for item in self.items_of(bucket).await?.into_values() {
            add_item(&mut view, item)?;
        }
        Ok(view)
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
            .chain((0..distinct::SHARDS).map(customer_item))
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

    /// Claims each event for `position` unless someone claimed it first; returns who owns
    /// each now (the position of its first claimant).
    async fn claim(
        &self,
        order_id: &OrderId,
        claims: &[(EventId, String)],
    ) -> Result<Vec<Option<String>>, OrderError> {
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
            .map(|(event_id, _)| {
                stored
                    .get(&format!("e#{event_id}"))
                    .and_then(|v| v.as_s().ok())
                    .cloned()
            })
            .collect())
    }

    /// Claims `events` of one order for a rebuild ([`REBUILD_POSITION`]): the stream will
    /// skip every one the rebuild owns. For each, `None` when the rebuild owns it (now or
    /// from an earlier run), else the stream position (`<shard>/<sequence>`) that does.
    pub async fn claim_for_rebuild(
        &self,
        order_id: &OrderId,
        events: &[EventId],
    ) -> Result<Vec<Option<String>>, OrderError> {
        let claims: Vec<(EventId, String)> = events
            .iter()
            .map(|id| (*id, REBUILD_POSITION.to_owned()))
            .collect();
        Ok(self
            .claim(order_id, &claims)
            .await?
            .into_iter()
            .map(|owner| owner.filter(|p| p != REBUILD_POSITION))
            .collect())
    }

    /// What `bucket` stores now, read consistently: its counter items (totals and product
    /// shards) with their watermarks, and its customers.
    pub async fn read_for_rebuild(&self, bucket: &Bucket) -> Result<StoredBucket, OrderError> {
        let mut items = self.items_of(bucket).await?;
        let mut customers = BucketView::default();
        for shard in 0..distinct::SHARDS {
            if let Some(item) = items.remove(&format!("{bucket}/{}", customer_item(shard))) {
                add_item(&mut customers, item)?;
            }
        }
        let counters = std::iter::once(CounterItem::Totals(*bucket))
            .chain((0..PRODUCT_SHARDS).map(|s| CounterItem::Products(*bucket, s)))
            .map(|item| {
                let found = items.remove(&format!("{bucket}/{}", item.sort_key()));
                let mut counters = StoredCounters {
                    exists: found.is_some(),
                    ..StoredCounters::default()
                };
                for (attr, value) in found.unwrap_or_default() {
                    if let Some(shard) = attr.strip_prefix("wm#") {
                        if let AttributeValue::S(w) = value {
                            counters.watermarks.insert(shard.to_owned(), w);
                        }
                    } else if attr != "pk" {
                        counters.values.insert(attr, value);
                    }
                }
                (item, counters)
            })
            .collect();
        Ok(StoredBucket {
            counters,
            customers: customers.customers,
        })
    }

    /// Sets `item`'s counters to `want` (a rebuild), keeping its watermarks, on condition
    /// that none of them moved for `shards` since `before` was read (and that the item still
    /// does not exist, if it did not). A big item takes several requests, each under that
    /// condition.
    pub async fn replace_counters(
        &self,
        item: &CounterItem,
        want: &ItemDelta,
        before: &StoredCounters,
        shards: &[String],
    ) -> Result<Replaced, OrderError> {
        if before.holds(want) {
            return Ok(Replaced::Unchanged);
        }
        let want = counter_values(want);
        // New values, and attributes the item holds but should not.
        let actions: Vec<(&String, Option<&AttributeValue>)> = want
            .iter()
            .map(|(attr, value)| (attr, Some(value)))
            .chain(
                before
                    .values
                    .keys()
                    .filter(|k| !want.contains_key(*k))
                    .map(|attr| (attr, None)),
            )
            .collect();
        let key = Self::key(item);
        for (n, chunk) in actions.chunks(REPLACE_CHUNK).enumerate() {
            let mut names = HashMap::new();
            let mut values = HashMap::new();
            let (mut sets, mut removes) = (Vec::new(), Vec::new());
            for (j, (attr, value)) in chunk.iter().enumerate() {
                names.insert(format!("#a{j}"), (*attr).clone());
                match value {
                    Some(value) => {
                        sets.push(format!("#a{j} = :v{j}"));
                        values.insert(format!(":v{j}"), (*value).clone());
                    }
                    None => removes.push(format!("#a{j}")),
                }
            }
            let mut conditions = Vec::new();
            if n == 0 && !before.exists {
                conditions.push("attribute_not_exists(pk)".to_owned());
            }
            for (k, shard) in shards.iter().enumerate() {
                names.insert(format!("#w{k}"), format!("wm#{shard}"));
                match before.watermarks.get(shard) {
                    Some(w) => {
                        conditions.push(format!("#w{k} = :w{k}"));
                        values.insert(format!(":w{k}"), AttributeValue::S(w.clone()));
                    }
                    None => conditions.push(format!("attribute_not_exists(#w{k})")),
                }
            }
            let mut expression = Vec::new();
            if !sets.is_empty() {
                expression.push(format!("SET {}", sets.join(", ")));
            }
            if !removes.is_empty() {
                expression.push(format!("REMOVE {}", removes.join(", ")));
            }
            let mut request = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .update_expression(expression.join(" "))
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values((!values.is_empty()).then_some(values));
            if !conditions.is_empty() {
                request = request.condition_expression(conditions.join(" AND "));
            }
            match request.send().await {
                Ok(_) => {}
                Err(err) if super::condition_failed(&err) => return Ok(Replaced::Moved),
                Err(err) => return Err(classify(err)),
            }
        }
        Ok(Replaced::Written)
    }

    /// A customer shard item, read consistently (empty when it does not exist yet).
    async fn customer_item(&self, key: &Item) -> Result<Item, OrderError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(output.item.unwrap_or_default())
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

    async fn customers(&self, buckets: &[Bucket]) -> Result<Vec<Distinct>, OrderError> {
        let views = self
            .views(buckets, |_| {
                (0..distinct::SHARDS).map(customer_item).collect()
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
    for shard in 0..distinct::SHARDS {
        wanted.insert(customer_item(shard), HashMap::new());
    }
    for (shard, set) in view.customers.bounded().shards() {
        wanted.insert(customer_item(shard), customer_attributes(set));
    }
    wanted
}

/// A customer shard as stored: `customers` (a string set) or `hll` (the sketch's registers).
fn customer_attributes(set: &ShardSet) -> Item {
    match set {
        ShardSet::Exact(ids) if ids.is_empty() => Item::new(),
        ShardSet::Exact(ids) => Item::from([(
            CUSTOMERS.to_owned(),
            AttributeValue::Ss(ids.iter().map(|c| c.to_string()).collect()),
        )]),
        ShardSet::Sketch(registers) => Item::from([(
            SKETCH.to_owned(),
            AttributeValue::B(Blob::new(registers.as_bytes())),
        )]),
    }
}

/// A stored customer shard read back; `Err` when it holds neither form's valid value.
fn customer_shard(item: &Item) -> Result<ShardSet, OrderError> {
    if let Some(value) = item.get(SKETCH) {
        let bytes = value
            .as_b()
            .map_err(|_| OrderError::Unexpected("hll is not binary".into()))?;
        return Registers::from_bytes(bytes.as_ref())
            .map(ShardSet::Sketch)
            .ok_or_else(|| OrderError::Unexpected("hll has the wrong length".into()));
    }
    Ok(ShardSet::Exact(match item.get(CUSTOMERS) {
        Some(AttributeValue::Ss(ids)) => ids
            .iter()
            .filter_map(|id| CustomerId::parse(id).ok())
            .collect(),
        _ => BTreeSet::new(),
    }))
}

/// Attributes a rebuild sets per request: `#a199 = :v199, ` is 16 bytes, 200 stay < 4 KB.
const REPLACE_CHUNK: usize = 200;
/// DynamoDB's limit on one expression string.
const MAX_EXPRESSION_BYTES: usize = 4_096;

/// The claim position of events a rebuild counted (the stream's are `<shard>/<sequence>`).
pub const REBUILD_POSITION: &str = "rebuild";

/// A counter item as a rebuild read it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredCounters {
    pub exists: bool,
    /// The counters (`orders`, `u#sku-1`, …), as stored.
    pub values: Item,
    /// The padded sequence number each stream shard's records are applied up to.
    pub watermarks: BTreeMap<String, String>,
}

impl StoredCounters {
    /// Whether the item holds exactly these counters.
    pub fn holds(&self, want: &ItemDelta) -> bool {
        same_values(&self.values, &counter_values(want))
    }
}

/// Counters as stored: numbers, zeros left out.
fn counter_values(delta: &ItemDelta) -> Item {
    delta
        .attributes()
        .into_iter()
        .map(|(name, n)| (name, AttributeValue::N(n.to_string())))
        .collect()
}

/// A bucket as a rebuild read it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredBucket {
    pub counters: BTreeMap<CounterItem, StoredCounters>,
    pub customers: Distinct,
}

impl StoredBucket {
    /// Whether anything is stored (a counter item or a customer).
    pub fn is_empty(&self) -> bool {
        self.counters.values().all(|c| !c.exists) && self.customers == Distinct::default()
    }

    /// The stored value of a counter (0 when absent).
    pub fn counter(&self, item: &CounterItem, name: &str) -> i64 {
        self.counters
            .get(item)
            .and_then(|c| c.values.get(name))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

/// What [`DynamoAnalytics::replace_counters`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replaced {
    /// The item already held those counters.
    Unchanged,
    Written,
    /// A watermark moved since the item was read (the stream wrote it): nothing, or only
    /// part of a big item, was written; read again.
    Moved,
}

/// Attribute names of a customer shard item.
const CUSTOMERS: &str = "customers";
const SKETCH: &str = "hll";
/// Optimistic rewrites of a customer shard before giving up (each lost race means another
/// writer just added to the same shard; the record is retried later).
const SHARD_REWRITES: usize = 5;

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
    let shard = match item.get("pk") {
        Some(AttributeValue::S(key)) => key
            .rsplit_once("/customers#")
            .and_then(|(_, n)| n.parse::<u32>().ok()),
        _ => None,
    };
    if let Some(shard) = shard {
        view.customers.add_shard(shard, &customer_shard(&item)?);
        return Ok(());
    }
    for (name, value) in item {
        if let AttributeValue::N(n) = value {
            let n = n
                .parse::<i64>()
                .map_err(|e| corrupt("reading a counter", e))?;
            view.add_counter(&name, n);
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
        let owners = self.claim(order_id, claims).await?;
        Ok(claims
            .iter()
            .zip(owners)
            .map(|((_, position), owner)| owner.as_ref() == Some(position))
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
            .update(item, shard, last, delta)?
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
            .update(item, shard, last, delta)?
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
        let key = pk(bucket, &customer_item(shard));
        let name = format!("{bucket}/{}", customer_item(shard));
        let remembered = self.remembered_sketch(&name);
        // The common case, one request: add to an exact set that stays within its limit.
        let mut stored = if let Some(registers) = remembered {
            Some(customer_attributes(&ShardSet::Sketch(registers)))
        } else if customers.len() <= distinct::EXACT_LIMIT {
            let room = distinct::EXACT_LIMIT - customers.len();
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .update_expression("ADD #c :ids")
                .condition_expression(
                    "attribute_not_exists(#h) AND (attribute_not_exists(#c) OR size(#c) <= :room)",
                )
                .expression_attribute_names("#c", CUSTOMERS)
                .expression_attribute_names("#h", SKETCH)
                .expression_attribute_values(":ids", ids_value(customers))
                .expression_attribute_values(":room", AttributeValue::N(room.to_string()))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            match result {
                Ok(_) => return Ok(()),
                Err(err) if super::condition_failed(&err) => match err.into_service_error() {
                    UpdateItemError::ConditionalCheckFailedException(e) => e.item,
                    _ => None,
                },
                Err(err) => return Err(classify(err)),
            }
        } else {
            None
        };
        // The set would outgrow its limit (or is a sketch already): rewrite the shard in its
        // bounded form, on condition that nobody changed it since it was read.
        for _ in 0..SHARD_REWRITES {
            let current = match stored.take() {
                Some(item) => item,
                None => self.customer_item(&key).await?,
            };
            let before = customer_shard(&current)?;
            let after = before.bounded_union(customers);
            if after == before {
                self.remember_sketch(&name, &after);
                return Ok(());
            }
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .expression_attribute_names("#c", CUSTOMERS)
                .expression_attribute_names("#h", SKETCH)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            update = match &after {
                ShardSet::Exact(ids) => update
                    .update_expression("SET #c = :new")
                    .expression_attribute_values(":new", ids_value(ids)),
                ShardSet::Sketch(registers) => update
                    .update_expression("SET #h = :new REMOVE #c")
                    .expression_attribute_values(
                        ":new",
                        AttributeValue::B(Blob::new(registers.as_bytes())),
                    ),
            };
            // Sets only grow, so an exact set of the same size is the same set.
            update = match &before {
                ShardSet::Exact(ids) if ids.is_empty() => update
                    .condition_expression("attribute_not_exists(#h) AND attribute_not_exists(#c)"),
                ShardSet::Exact(ids) => update
                    .condition_expression("attribute_not_exists(#h) AND size(#c) = :n")
                    .expression_attribute_values(":n", AttributeValue::N(ids.len().to_string())),
                ShardSet::Sketch(registers) => update
                    .condition_expression("#h = :old")
                    .expression_attribute_values(
                        ":old",
                        AttributeValue::B(Blob::new(registers.as_bytes())),
                    ),
            };
            match update.send().await {
                Ok(_) => {
                    self.remember_sketch(&name, &after);
                    return Ok(());
                }
                Err(err) if super::condition_failed(&err) => {
                    stored = match err.into_service_error() {
                        UpdateItemError::ConditionalCheckFailedException(e) => e.item,
                        _ => None,
                    };
                }
                Err(err) => return Err(classify(err)),
            }
        }
        Err(OrderError::Unavailable(
            "customer shard kept changing while being rewritten".into(),
        ))
    }
}

fn ids_value(ids: &BTreeSet<CustomerId>) -> AttributeValue {
    AttributeValue::Ss(ids.iter().map(|c| c.to_string()).collect())
}
