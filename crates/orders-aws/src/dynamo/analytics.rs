//! The analytics table (partition `bucket`, sort `item`) and the event-claims table.
//! See `orders_core::ports::AnalyticsStore` for the exactly-once mechanism and
//! `orders_core::analytics` for the item layout.

use crate::errors::{classify, corrupt};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use orders_core::analytics::{Bucket, BucketView, CounterItem, ItemDelta};
use orders_core::ports::{AnalyticsStore, CountersApplied};
use orders_core::{CustomerId, EventId, OrderError, Timestamp, sequence};
use std::collections::{BTreeSet, HashMap};

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
        Item::from([
            (
                "bucket".to_owned(),
                AttributeValue::S(item.bucket().to_string()),
            ),
            ("item".to_owned(), AttributeValue::S(item.sort_key())),
        ])
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

    /// Everything stored for `bucket` (one Query over its partition).
    pub async fn bucket(&self, bucket: &Bucket) -> Result<BucketView, OrderError> {
        let mut view = BucketView::default();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#b = :b")
                .expression_attribute_names("#b", "bucket")
                .expression_attribute_values(":b", AttributeValue::S(bucket.to_string()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(classify)?;
            for item in output.items.unwrap_or_default() {
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
            }
            match output.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(view),
            }
        }
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

fn is_condition_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(err: &E) -> bool {
    err.code() == Some("ConditionalCheckFailedException")
}

#[async_trait]
impl AnalyticsStore for DynamoAnalytics {
    async fn claim_event(
        &self,
        event_id: &EventId,
        shard: &str,
        sequence_number: &str,
    ) -> Result<bool, OrderError> {
        let position = format!("{shard}/{}", sequence::pad(sequence_number));
        let expires = Timestamp::now().unix_seconds() + self.claim_ttl_seconds;
        let result = self
            .client
            .put_item()
            .table_name(&self.claims_table)
            .item("eventId", AttributeValue::S(event_id.to_string()))
            .item("position", AttributeValue::S(position.clone()))
            .item("expiresAt", AttributeValue::N(expires.to_string()))
            // Free, or already claimed by this very record (a redelivery).
            .condition_expression("attribute_not_exists(eventId) OR #p = :p")
            .expression_attribute_names("#p", "position")
            .expression_attribute_values(":p", AttributeValue::S(position))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if err.as_service_error().is_some_and(is_condition_failure) => Ok(false),
            Err(err) => Err(classify(err)),
        }
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
            Err(err) if err.as_service_error().is_some_and(is_condition_failure) => {
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
            Err(err) if err.as_service_error().is_some_and(is_condition_failure) => Ok(false),
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
            .key("bucket", AttributeValue::S(bucket.to_string()))
            .key("item", AttributeValue::S(format!("customers#{shard:02}")))
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
