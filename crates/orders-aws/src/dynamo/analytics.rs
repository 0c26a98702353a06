//! The analytics table and the event-claims table.
//!
//! Each stored item is its own partition (`pk` = `m#2026-11-22T10:31/totals`): the items of
//! one hot bucket (totals, product shards, customer shards) are written by every shard's
//! batches, and spreading them keeps each partition far below DynamoDB's 1,000 writes/s.
//! A bucket is read back with one BatchGetItem of its known keys.
//! See `orders_core::ports::AnalyticsStore` for the exactly-once mechanism and
//! `orders_core::analytics` for the item layout.

use super::chain::{self, Chains, Guard, Outcome, read_chains};
use crate::errors::{classify, corrupt};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use orders_core::activity::{ActivityDelta, ActivityView, Counts, SessionSet};
use orders_core::analytics::{
    Bucket, BucketView, CounterItem, ItemDelta, MAX_COUNTERS_PER_WRITE, PRODUCT_SHARDS,
    ProductTotals, Totals,
};
use orders_core::distinct::{self, Distinct, Member, Registers, ShardSet, ShardSetOf};
use orders_core::ports::{
    ActivityReader, ActivityStore, AnalyticsReader, AnalyticsStore, CountersApplied,
};
use orders_core::shard::shard_of;
use orders_core::{
    CustomerId, EventId, OrderError, OrderId, ProductId, SessionId, Timestamp, sequence,
};
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
    /// Where this instance found each counter item's open link.
    chains: Arc<Chains>,
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
            chains: Arc::default(),
        }
    }

    fn remembered_sketch(&self, key: &str) -> Option<Registers> {
        self.sketches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(key)
            .cloned()
    }

    fn remember_sketch<T>(&self, key: &str, set: &ShardSetOf<T>) {
        let mut sketches = self
            .sketches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match set {
            ShardSetOf::Sketch(registers) => {
                if sketches.len() >= REMEMBERED_SKETCHES {
                    sketches.clear();
                }
                sketches.insert(key.to_owned(), registers.clone());
            }
            ShardSetOf::Exact(_) => {
                sketches.remove(key);
            }
        }
    }

    /// A write of `delta` to `item`'s chain under `guard`. Refuses a delta DynamoDB would
    /// refuse (the emulator would not): callers split their writes by
    /// [`MAX_COUNTERS_PER_WRITE`], so this is a bug, never retried into success.
    async fn write_chain(
        &self,
        bucket: &Bucket,
        name: &str,
        counters: &[(String, i64)],
        guard: Guard<'_>,
    ) -> Result<Outcome, OrderError> {
        if counters.len() > MAX_COUNTERS_PER_WRITE {
            return Err(OrderError::Unexpected(
                format!(
                    "{} counters in one write to {name}; at most {MAX_COUNTERS_PER_WRITE}",
                    counters.len(),
                )
                .into(),
            ));
        }
        chain::Write {
            client: &self.client,
            table: &self.table,
            chains: &self.chains,
            prefix: &format!("{bucket}/"),
            name,
            counters,
            guard,
        }
        .send()
        .await
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
                attrs.extend(pk(bucket, &name));
                items.push(attrs);
            }
        }
        super::batch_put(&self.client, &self.table, items).await
    }

    /// The stored items of `bucket` (every link of its counter items), by `pk`.
    async fn items_of(&self, bucket: &Bucket) -> Result<HashMap<String, Item>, OrderError> {
        let keys: Vec<Item> = counter_items(bucket)
            .map(|item| item.sort_key())
            .chain((0..distinct::SHARDS).map(customer_item))
            .map(|name| pk(bucket, &name))
            .collect();
        let mut items = HashMap::new();
        let stored = read_chains(&self.client, &self.table, keys, true).await?;
        for item in stored {
            if let Some(AttributeValue::S(key)) = item.get("pk") {
                items.insert(key.clone(), item);
            }
        }
        Ok(items)
    }

    /// Claims each event for its position; for each, whether that position owns it (is
    /// its first claimant, now or on an earlier delivery of the same record).
    async fn claim_first(
        &self,
        key: &str,
        claims: &[(String, String)],
    ) -> Result<Vec<bool>, OrderError> {
        let owners = self.claim(key, claims).await?;
        Ok(claims
            .iter()
            .zip(owners)
            .map(|((_, position), owner)| owner.as_ref() == Some(position))
            .collect())
    }

    /// Claims each event for `position` unless someone claimed it first; returns who owns
    /// each now (the position of its first claimant).
    async fn claim(
        &self,
        key: &str,
        claims: &[(String, String)],
    ) -> Result<Vec<Option<String>>, OrderError> {
        let mut owners = Vec::with_capacity(claims.len());
        for chunk in claims.chunks(CLAIMS_PER_WRITE) {
            owners.extend(self.claim_chunk(key, chunk).await?);
        }
        Ok(owners)
    }

    async fn claim_chunk(
        &self,
        key: &str,
        claims: &[(String, String)],
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
            .key("orderId", AttributeValue::S(key.to_owned()))
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
        let claims: Vec<(String, String)> = events
            .iter()
            .map(|id| (id.to_string(), REBUILD_POSITION.to_owned()))
            .collect();
        Ok(self
            .claim(&order_id.to_string(), &claims)
            .await?
            .into_iter()
            .map(|owner| owner.filter(|p| p != REBUILD_POSITION))
            .collect())
    }

    /// What `bucket` stores now, read consistently: its counter items (totals and product
    /// shards, every link) with their watermarks, and its customers.
    pub async fn read_for_rebuild(&self, bucket: &Bucket) -> Result<StoredBucket, OrderError> {
        let mut items = self.items_of(bucket).await?;
        let mut customers = BucketView::default();
        for shard in 0..distinct::SHARDS {
            if let Some(item) = items.remove(&format!("{bucket}/{}", customer_item(shard))) {
                add_item(&mut customers, item)?;
            }
        }
        let counters = counter_items(bucket)
            .map(|item| {
                let mut counters = StoredCounters::default();
                let name = item.sort_key();
                for link in 0.. {
                    let Some(found) =
                        items.remove(&format!("{bucket}/{}", chain::link_name(&name, link)))
                    else {
                        break;
                    };
                    counters.read_link(link, &found)?;
                }
                Ok((item, counters))
            })
            .collect::<Result<_, OrderError>>()?;
        Ok(StoredBucket {
            counters,
            customers: customers.customers,
        })
    }

    /// Makes `item`'s counters add up to `want` (a rebuild) by adding the difference to
    /// its open link, on condition that no watermark of `shards` moved since `before` was
    /// read (and that the item still does not exist, if it did not). A big difference
    /// takes several requests, each under that condition.
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
        let mut difference: BTreeMap<String, i64> = want.attributes().into_iter().collect();
        for (name, value) in &before.values {
            let entry = difference.entry(name.clone()).or_default();
            *entry = entry
                .checked_sub(*value)
                .ok_or_else(|| OrderError::Unexpected(format!("{name} overflows").into()))?;
        }
        let difference: Vec<(String, i64)> =
            difference.into_iter().filter(|(_, n)| *n != 0).collect();
        let mut open = before.open_link;
        let mut expected = before.open_watermarks.clone();
        let mut fresh = !before.open_exists;
        for chunk in difference.chunks(MAX_COUNTERS_PER_WRITE) {
            let guard = Guard::Unchanged {
                open,
                expected: &expected,
                shards,
                fresh,
            };
            if self
                .write_chain(&item.bucket(), &item.sort_key(), chunk, guard)
                .await?
                != Outcome::Applied
            {
                return Ok(Replaced::Moved);
            }
            // Later chunks find the link this one created (or the one it moved on to).
            let written = self
                .chains
                .open_link(&format!("{}/{}", item.bucket(), item.sort_key()));
            if written != open {
                open = written;
                expected.clear();
            }
            fresh = false;
        }
        Ok(Replaced::Written)
    }

    /// A set shard item, read consistently (empty when it does not exist yet).
    async fn set_item(&self, key: &Item) -> Result<Item, OrderError> {
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
        let items = read_chains(&self.client, &self.table, keys, false).await?;
        for item in items {
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

#[async_trait]
impl ActivityReader for DynamoAnalyticsReader {
    /// Two rounds: every bucket's totals, then the 256 set shards of the buckets that
    /// hold any event (a quiet minute has none, and reads nothing more).
    async fn activity(&self, buckets: &[Bucket]) -> Result<Vec<ActivityView>, OrderError> {
        let totals = format!("{ACTIVITY}totals");
        let mut by_bucket = self
            .activity_items(buckets.iter().map(|b| pk(b, &totals)).collect())
            .await?;
        let sets: Vec<String> = (0..distinct::SHARDS)
            .flat_map(|shard| {
                SessionSet::ALL
                    .iter()
                    .map(move |set| format!("{ACTIVITY}{}", set.sort_key(shard)))
                    .chain(std::iter::once(format!(
                        "{ACTIVITY}{}",
                        customer_item(shard)
                    )))
            })
            .collect();
        let busy: Vec<Item> = buckets
            .iter()
            .filter(|b| {
                by_bucket
                    .get(&b.to_string())
                    .is_some_and(|v| !v.totals.is_zero())
            })
            .flat_map(|b| sets.iter().map(move |name| pk(b, name)))
            .collect();
        for (bucket, view) in self.activity_items(busy).await? {
            by_bucket.entry(bucket).or_default().merge(&view);
        }
        Ok(buckets
            .iter()
            .map(|b| by_bucket.remove(&b.to_string()).unwrap_or_default())
            .collect())
    }

    async fn product_activity(
        &self,
        buckets: &[Bucket],
        product: &ProductId,
    ) -> Result<Vec<Counts>, OrderError> {
        let shard = shard_of(product.as_str(), PRODUCT_SHARDS);
        let keys = buckets
            .iter()
            .map(|b| pk(b, &activity_item(&CounterItem::Products(*b, shard))))
            .collect();
        let mut by_bucket = self.activity_items(keys).await?;
        Ok(buckets
            .iter()
            .map(|b| {
                by_bucket
                    .remove(&b.to_string())
                    .and_then(|mut view| view.products.remove(product))
                    .unwrap_or_default()
            })
            .collect())
    }
}

impl DynamoAnalyticsReader {
    /// The activity items of `keys`, folded into one view per bucket (by its name).
    async fn activity_items(
        &self,
        keys: Vec<Item>,
    ) -> Result<HashMap<String, ActivityView>, OrderError> {
        let mut by_bucket: HashMap<String, ActivityView> = HashMap::new();
        for item in read_chains(&self.client, &self.table, keys, false).await? {
            let Some(AttributeValue::S(key)) = item.get("pk") else {
                continue;
            };
            let Some((bucket, name)) = key.split_once('/') else {
                continue;
            };
            let view = by_bucket.entry(bucket.to_owned()).or_default();
            add_activity_item(view, name.strip_prefix(ACTIVITY).unwrap_or(name), &item)?;
        }
        Ok(by_bucket)
    }
}

/// Adds one stored activity item (`name` without its prefix) to `view`: a set shard
/// (`sessions#07`, `customers#07`, …) or counters.
fn add_activity_item(view: &mut ActivityView, name: &str, item: &Item) -> Result<(), OrderError> {
    if let Some((set, shard)) = name.split_once('#')
        && let Ok(shard) = shard.parse::<u32>()
    {
        if set == "customers" {
            view.customers.add_shard(shard, &stored_set(item, IDS)?);
            return Ok(());
        }
        if let Some(set) = SessionSet::ALL
            .into_iter()
            .find(|s| s.sort_key(shard) == name)
        {
            view.session_set(set)
                .add_shard(shard, &stored_set(item, IDS)?);
            return Ok(());
        }
    }
    // `totals`, `products#NN` and their links.
    for (name, n) in counters_of(item)? {
        view.add_counter(name, n);
    }
    Ok(())
}

/// The counters a stored counter link holds, `(name, value)`: its number attributes
/// (`itemBytes` is one too, and every view ignores names it does not count).
fn counters_of(item: &Item) -> Result<Vec<(&str, i64)>, OrderError> {
    item.iter()
        .filter_map(|(name, value)| match value {
            AttributeValue::N(n) => Some((name.as_str(), n)),
            _ => None,
        })
        .map(|(name, n)| {
            n.parse::<i64>()
                .map(|n| (name, n))
                .map_err(|e| corrupt("reading a counter", e))
        })
        .collect()
}

/// Every item of `bucket` as `view` would be stored, by item name (`totals`,
/// `products#NN`, `products#NN.1`, `customers#NN`), without keys or watermarks; items with
/// nothing to hold are left out.
fn stored_items(bucket: &Bucket, view: &BucketView) -> BTreeMap<String, Item> {
    let number = |n: i64| AttributeValue::N(n.to_string());
    let mut counters: BTreeMap<String, Vec<(String, AttributeValue)>> = BTreeMap::new();
    counters.insert(
        "totals".into(),
        view.totals
            .attributes()
            .into_iter()
            .map(|(name, n)| (name, number(n)))
            .collect(),
    );
    for (id, p) in &view.products {
        let item = CounterItem::Products(*bucket, shard_of(id.as_str(), PRODUCT_SHARDS)).sort_key();
        let attrs = counters.entry(item).or_default();
        for (prefix, n) in [("u", p.units), ("r", p.revenue), ("o", p.orders)] {
            if n != 0 {
                attrs.push((format!("{prefix}#{id}"), number(n)));
            }
        }
    }
    let mut wanted = BTreeMap::new();
    let prefix = format!("{bucket}/");
    for (name, attrs) in counters {
        if attrs.is_empty() {
            continue;
        }
        for (link, item) in chain::pack(&prefix, &name, attrs).into_iter().enumerate() {
            wanted.insert(chain::link_name(&name, link as u32), item);
        }
    }
    for (shard, set) in view.customers.bounded().shards() {
        let attrs = customer_attributes(set);
        if !attrs.is_empty() {
            wanted.insert(customer_item(shard), attrs);
        }
    }
    wanted
}

/// A customer shard as stored: `customers` (a string set) or `hll` (the sketch's registers).
fn customer_attributes(set: &ShardSet) -> Item {
    set_attributes(set, CUSTOMERS)
}

/// A stored customer shard read back; `Err` when it holds neither form's valid value.
fn customer_shard(item: &Item) -> Result<ShardSet, OrderError> {
    stored_set(item, CUSTOMERS)
}

/// A distinct-set shard as stored: its ids under `ids` (a string set) or `hll` (the
/// sketch's registers).
fn set_attributes<T: Member>(set: &ShardSetOf<T>, ids: &str) -> Item {
    match set {
        ShardSetOf::Exact(members) if members.is_empty() => Item::new(),
        ShardSetOf::Exact(members) => Item::from([(ids.to_owned(), ids_value(members))]),
        ShardSetOf::Sketch(registers) => Item::from([(
            SKETCH.to_owned(),
            AttributeValue::B(Blob::new(registers.as_bytes())),
        )]),
    }
}

/// A stored set shard read back; `Err` when it holds neither form's valid value.
fn stored_set<T: Member>(item: &Item, ids: &str) -> Result<ShardSetOf<T>, OrderError> {
    if let Some(value) = item.get(SKETCH) {
        let bytes = value
            .as_b()
            .map_err(|_| OrderError::Unexpected("hll is not binary".into()))?;
        return Registers::from_bytes(bytes.as_ref())
            .map(ShardSetOf::Sketch)
            .ok_or_else(|| OrderError::Unexpected("hll has the wrong length".into()));
    }
    Ok(ShardSetOf::Exact(match item.get(ids) {
        Some(AttributeValue::Ss(keys)) => keys.iter().filter_map(|k| T::from_key(k)).collect(),
        _ => BTreeSet::new(),
    }))
}

/// The claim position of events a rebuild counted (the stream's are `<shard>/<sequence>`).
pub const REBUILD_POSITION: &str = "rebuild";

/// A counter item as a rebuild read it, all its links.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredCounters {
    /// Whether any link of the item is stored.
    pub exists: bool,
    /// The counters (`orders`, `u#sku-1`, …) summed over the links, zeros left out.
    pub values: BTreeMap<String, i64>,
    /// The padded sequence number each stream shard's records are applied up to (the
    /// highest in the chain).
    pub watermarks: BTreeMap<String, String>,
    /// The link writes go to, whether it exists, and its own watermarks.
    open_link: u32,
    open_exists: bool,
    open_watermarks: BTreeMap<String, String>,
}

impl StoredCounters {
    /// Whether the item holds exactly these counters.
    pub fn holds(&self, want: &ItemDelta) -> bool {
        let want: BTreeMap<String, i64> = want.attributes().into_iter().collect();
        self.values == want
    }

    /// Adds link `link` (read in order from 0).
    fn read_link(&mut self, link: u32, item: &Item) -> Result<(), OrderError> {
        self.exists = true;
        for (name, value) in item {
            if chain::is_bookkeeping(name) || name.starts_with("wm#") {
                continue;
            }
            if let AttributeValue::N(n) = value {
                let n = n
                    .parse::<i64>()
                    .map_err(|e| corrupt("reading a counter", e))?;
                let sum = self.values.entry(name.clone()).or_default();
                *sum = sum
                    .checked_add(n)
                    .ok_or_else(|| OrderError::Unexpected(format!("{name} overflows").into()))?;
            }
        }
        self.values.retain(|_, n| *n != 0);
        let marks = chain::watermarks(item);
        for (shard, w) in &marks {
            let entry = self.watermarks.entry(shard.clone()).or_default();
            if w > entry {
                *entry = w.clone();
            }
        }
        if chain::is_sealed(item) {
            self.open_link = link + 1;
            self.open_exists = false;
            self.open_watermarks.clear();
        } else {
            self.open_link = link;
            self.open_exists = true;
            self.open_watermarks = marks;
        }
        Ok(())
    }
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
            .copied()
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

/// The counter items of `bucket`: its totals and product shards.
fn counter_items(bucket: &Bucket) -> impl Iterator<Item = CounterItem> + '_ {
    std::iter::once(CounterItem::Totals(*bucket))
        .chain((0..PRODUCT_SHARDS).map(|s| CounterItem::Products(*bucket, s)))
}

/// Claims per UpdateItem: DynamoDB refuses expressions over 4 KB (the emulator does not),
/// and a clause (`#e63 = if_not_exists(#e63, :p63), `) is ≤ 36 bytes.
const CLAIMS_PER_WRITE: usize = 64;

/// Storefront activity's items live in the analytics table beside the orders' (same
/// bucket partition keys, names prefixed): the same access pattern (known keys, each its
/// own partition), grants, backups and alarms. `activity.totals`, `activity.products#NN`,
/// `activity.sessions#NN`, `activity.carted#NN`, `activity.checkedOut#NN`,
/// `activity.customers#NN`.
const ACTIVITY: &str = "activity.";
/// The ids attribute of an activity set shard.
const IDS: &str = "ids";

fn activity_item(item: &CounterItem) -> String {
    format!("{ACTIVITY}{}", item.sort_key())
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
    for (name, n) in counters_of(&item)? {
        view.add_counter(name, n);
    }
    Ok(())
}

#[async_trait]
impl AnalyticsStore for DynamoAnalytics {
    async fn claim_events(
        &self,
        order_id: &OrderId,
        claims: &[(EventId, String)],
    ) -> Result<Vec<bool>, OrderError> {
        let named: Vec<(String, String)> = claims
            .iter()
            .map(|(id, position)| (id.to_string(), position.clone()))
            .collect();
        self.claim_first(&order_id.to_string(), &named).await
    }

    async fn add_counters(
        &self,
        item: &CounterItem,
        shard: &str,
        first: &str,
        last: &str,
        delta: &ItemDelta,
    ) -> Result<CountersApplied, OrderError> {
        let counters = delta.attributes();
        self.add_after(item, &item.sort_key(), shard, (first, last), &counters)
            .await
    }

    async fn add_counters_after(
        &self,
        item: &CounterItem,
        shard: &str,
        watermark: &str,
        last: &str,
        delta: &ItemDelta,
    ) -> Result<bool, OrderError> {
        let counters = delta.attributes();
        self.add_at(item, &item.sort_key(), shard, (watermark, last), &counters)
            .await
    }

    async fn add_customers(
        &self,
        bucket: &Bucket,
        shard: u32,
        customers: &BTreeSet<CustomerId>,
    ) -> Result<(), OrderError> {
        self.add_set(bucket, &customer_item(shard), CUSTOMERS, customers)
            .await
    }
}

#[async_trait]
impl ActivityStore for DynamoAnalytics {
    async fn claim_activity(
        &self,
        group: &str,
        claims: &[(String, String)],
    ) -> Result<Vec<bool>, OrderError> {
        self.claim_first(group, claims).await
    }

    async fn add_activity(
        &self,
        item: &CounterItem,
        shard: &str,
        first: &str,
        last: &str,
        delta: &ActivityDelta,
    ) -> Result<CountersApplied, OrderError> {
        let counters = delta.attributes();
        self.add_after(item, &activity_item(item), shard, (first, last), &counters)
            .await
    }

    async fn add_activity_after(
        &self,
        item: &CounterItem,
        shard: &str,
        watermark: &str,
        last: &str,
        delta: &ActivityDelta,
    ) -> Result<bool, OrderError> {
        let counters = delta.attributes();
        self.add_at(
            item,
            &activity_item(item),
            shard,
            (watermark, last),
            &counters,
        )
        .await
    }

    async fn add_sessions(
        &self,
        bucket: &Bucket,
        set: SessionSet,
        shard: u32,
        sessions: &BTreeSet<SessionId>,
    ) -> Result<(), OrderError> {
        let item = format!("{ACTIVITY}{}", set.sort_key(shard));
        self.add_set(bucket, &item, IDS, sessions).await
    }

    async fn add_active_customers(
        &self,
        bucket: &Bucket,
        shard: u32,
        customers: &BTreeSet<CustomerId>,
    ) -> Result<(), OrderError> {
        let item = format!("{ACTIVITY}{}", customer_item(shard));
        self.add_set(bucket, &item, IDS, customers).await
    }
}

impl DynamoAnalytics {
    /// Adds `counters` to the counter item `name` of `item`'s bucket and moves the shard's
    /// watermark to `last`, unless it has reached `first` already (then says where it is).
    async fn add_after(
        &self,
        item: &CounterItem,
        name: &str,
        shard: &str,
        (first, last): (&str, &str),
        counters: &[(String, i64)],
    ) -> Result<CountersApplied, OrderError> {
        let (first, last) = (sequence::pad(first), sequence::pad(last));
        let guard = Guard::After {
            shard,
            first: &first,
            last: &last,
        };
        match self
            .write_chain(&item.bucket(), name, counters, guard)
            .await?
        {
            Outcome::Applied => Ok(CountersApplied::Done),
            Outcome::Refused(Some(watermark)) => Ok(CountersApplied::Behind(watermark)),
            Outcome::Refused(None) => Err(OrderError::Unavailable(
                "a counter item refused a write but holds no watermark for its shard".into(),
            )),
        }
    }

    /// Adds `counters` if the shard's watermark on the item is exactly `watermark`.
    async fn add_at(
        &self,
        item: &CounterItem,
        name: &str,
        shard: &str,
        (watermark, last): (&str, &str),
        counters: &[(String, i64)],
    ) -> Result<bool, OrderError> {
        let (expected, last) = (sequence::pad(watermark), sequence::pad(last));
        let guard = Guard::At {
            shard,
            expected: &expected,
            last: &last,
        };
        Ok(self
            .write_chain(&item.bucket(), name, counters, guard)
            .await?
            == Outcome::Applied)
    }

    /// Adds `ids` to the set shard `item` of `bucket` (its ids under the attribute
    /// `attr`), keeping the shard in its bounded form; idempotent.
    async fn add_set<T: Member>(
        &self,
        bucket: &Bucket,
        item: &str,
        attr: &str,
        ids: &BTreeSet<T>,
    ) -> Result<(), OrderError> {
        if ids.is_empty() {
            return Ok(());
        }
        let key = pk(bucket, item);
        let name = format!("{bucket}/{item}");
        let remembered = self.remembered_sketch(&name);
        // The common case, one request: add to an exact set that stays within its limit.
        let mut stored = if let Some(registers) = remembered {
            Some(set_attributes::<T>(&ShardSetOf::Sketch(registers), attr))
        } else if ids.len() <= distinct::EXACT_LIMIT {
            let room = distinct::EXACT_LIMIT - ids.len();
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .update_expression("ADD #c :ids")
                .condition_expression(
                    "attribute_not_exists(#h) AND (attribute_not_exists(#c) OR size(#c) <= :room)",
                )
                .expression_attribute_names("#c", attr)
                .expression_attribute_names("#h", SKETCH)
                .expression_attribute_values(":ids", ids_value(ids))
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
                None => self.set_item(&key).await?,
            };
            let before: ShardSetOf<T> = stored_set(&current, attr)?;
            let after = before.bounded_union(ids);
            if after == before {
                self.remember_sketch(&name, &after);
                return Ok(());
            }
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .expression_attribute_names("#c", attr)
                .expression_attribute_names("#h", SKETCH)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            update = match &after {
                ShardSetOf::Exact(members) => update
                    .update_expression("SET #c = :new")
                    .expression_attribute_values(":new", ids_value(members)),
                ShardSetOf::Sketch(registers) => update
                    .update_expression("SET #h = :new REMOVE #c")
                    .expression_attribute_values(
                        ":new",
                        AttributeValue::B(Blob::new(registers.as_bytes())),
                    ),
            };
            // Sets only grow, so an exact set of the same size is the same set.
            update = match &before {
                ShardSetOf::Exact(members) if members.is_empty() => update
                    .condition_expression("attribute_not_exists(#h) AND attribute_not_exists(#c)"),
                ShardSetOf::Exact(members) => update
                    .condition_expression("attribute_not_exists(#h) AND size(#c) = :n")
                    .expression_attribute_values(
                        ":n",
                        AttributeValue::N(members.len().to_string()),
                    ),
                ShardSetOf::Sketch(registers) => update
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
            "set shard kept changing while being rewritten".into(),
        ))
    }
}

fn ids_value<T: Member>(ids: &BTreeSet<T>) -> AttributeValue {
    AttributeValue::Ss(ids.iter().map(|id| id.key().to_owned()).collect())
}
