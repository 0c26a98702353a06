//! The idempotency table: one item per `Idempotency-Key`, expired by DynamoDB TTL.

use crate::errors::{classify, corrupt};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use orders_core::idempotency::{Claim, IdempotencyRecord, StoredResponse};
use orders_core::ports::IdempotencyStore;
use orders_core::{IdempotencyKey, OrderError, OrderId, Timestamp};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone)]
pub struct DynamoIdempotencyStore {
    client: Client,
    table: String,
}

impl DynamoIdempotencyStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn from_sdk(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(crate::config::dynamodb_client(sdk), table)
    }
}

fn to_item(record: &IdempotencyRecord) -> Item {
    let mut item = Item::from([
        (
            "idempotencyKey".into(),
            AttributeValue::S(record.key.to_string()),
        ),
        (
            "requestFingerprint".into(),
            AttributeValue::S(record.request_fingerprint.clone()),
        ),
        (
            "orderId".into(),
            AttributeValue::S(record.order_id.to_string()),
        ),
        (
            "createdAt".into(),
            AttributeValue::S(record.created_at.to_string()),
        ),
        // DynamoDB TTL wants epoch seconds as a number.
        (
            "expiresAt".into(),
            AttributeValue::N(record.expires_at.unix_seconds().to_string()),
        ),
    ]);
    if let Some(response) = &record.response {
        item.insert(
            "responseStatus".into(),
            AttributeValue::N(response.status.to_string()),
        );
        item.insert(
            "responseBody".into(),
            AttributeValue::S(response.body.clone()),
        );
    }
    item
}

fn from_item(item: &Item) -> Result<IdempotencyRecord, OrderError> {
    let s = |name: &str| match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s.as_str()),
        _ => Err(corrupt(
            "reading an idempotency record",
            MissingAttribute(name.to_owned()),
        )),
    };
    let n = |name: &str| match item.get(name) {
        Some(AttributeValue::N(n)) => n
            .parse::<i64>()
            .map_err(|e| corrupt("reading an idempotency record", e)),
        _ => Err(corrupt(
            "reading an idempotency record",
            MissingAttribute(name.to_owned()),
        )),
    };
    let bad = |e| corrupt("reading an idempotency record", e);
    let response = match item.get("responseStatus") {
        Some(_) => Some(StoredResponse {
            status: u16::try_from(n("responseStatus")?).map_err(bad)?,
            body: s("responseBody")?.to_owned(),
        }),
        None => None,
    };
    Ok(IdempotencyRecord {
        key: IdempotencyKey::stored(s("idempotencyKey")?).map_err(bad_id)?,
        request_fingerprint: s("requestFingerprint")?.to_owned(),
        order_id: OrderId::parse(s("orderId")?).map_err(bad_id)?,
        created_at: Timestamp::parse(s("createdAt")?).ok_or_else(|| {
            corrupt(
                "reading an idempotency record",
                MissingAttribute("createdAt".into()),
            )
        })?,
        expires_at: Timestamp::from_unix_millis(n("expiresAt")?.saturating_mul(1000)).ok_or_else(
            || {
                corrupt(
                    "reading an idempotency record",
                    MissingAttribute("expiresAt".into()),
                )
            },
        )?,
        response,
    })
}

fn bad_id(e: orders_core::ids::InvalidId) -> OrderError {
    corrupt("reading an idempotency record", e)
}

#[derive(Debug, thiserror::Error)]
#[error("attribute {0} is missing or has the wrong type")]
struct MissingAttribute(String);

#[async_trait]
impl IdempotencyStore for DynamoIdempotencyStore {
    async fn claim(&self, record: &IdempotencyRecord) -> Result<Claim, OrderError> {
        // TTL deletes lazily (up to days late), so an expired record counts as free.
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)))
            .condition_expression("attribute_not_exists(idempotencyKey) OR expiresAt < :now")
            .expression_attribute_values(
                ":now",
                AttributeValue::N(record.created_at.unix_seconds().to_string()),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Claimed),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                let output = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("idempotencyKey", AttributeValue::S(record.key.to_string()))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(classify)?;
                let item = output.item.ok_or_else(|| {
                    OrderError::Unavailable("idempotency record expired while being read".into())
                })?;
                Ok(Claim::Existing(from_item(&item)?))
            }
            Err(err) => Err(classify(err)),
        }
    }

    async fn complete(
        &self,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> Result<(), OrderError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("idempotencyKey", AttributeValue::S(key.to_string()))
            .update_expression("SET responseStatus = :status, responseBody = :body")
            .condition_expression("attribute_exists(idempotencyKey)")
            .expression_attribute_values(":status", AttributeValue::N(response.status.to_string()))
            .expression_attribute_values(":body", AttributeValue::S(response.body.clone()))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_items() {
        let now = Timestamp::parse("2026-11-21T10:00:00.123Z").unwrap();
        let mut record = IdempotencyRecord {
            key: IdempotencyKey::parse("key-1").unwrap(),
            request_fingerprint: "abc".into(),
            order_id: OrderId::new(ulid::Ulid::from_parts(1, 2)),
            created_at: now,
            expires_at: Timestamp::parse("2026-11-22T10:00:00Z").unwrap(),
            response: None,
        };
        assert_eq!(from_item(&to_item(&record)).unwrap(), record);
        record.response = Some(StoredResponse {
            status: 201,
            body: "{}".into(),
        });
        assert_eq!(from_item(&to_item(&record)).unwrap(), record);
    }
}
