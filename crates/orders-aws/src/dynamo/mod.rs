//! DynamoDB adapters.
//!
//! # The orders table
//! Key: `orderId`. Four GSIs serve the listings, all sorted by `orderId` (a ULID, so
//! sorting by id sorts by creation time and `ScanIndexForward=false` is newest first):
//!
//! | index              | partition key                       | serves                           |
//! |--------------------|-------------------------------------|----------------------------------|
//! | `byCustomer`       | `customerId`                        | `GET /orders?customerId=`        |
//! | `byCustomerStatus` | `customerStatus` = `CUSTOMER#STATUS`| `GET /orders?customerId=&status=`|
//! | `byStatus`         | `statusShard` = `STATUS#n`          | `GET /orders?status=`            |
//! | `byCreated`        | `listShard` = `n`                   | `GET /orders`                    |
//!
//! `byStatus` and `byCreated` would otherwise put every order of a status (or every order)
//! in one index partition, which accepts about 1,000 writes/s; a GSI that falls behind
//! throttles writes to the table itself. So their keys are spread over
//! [`LIST_SHARDS`] shards by a hash of the order id, and a listing queries every shard
//! and merges — 16 small parallel queries per page instead of a ceiling at 1,000 orders/s.
//!
//! So a page costs at most 16 Queries of at most `limit + 1` items each, whatever the table
//! holds (one Query for a customer, with or without a status; with or without a `from`/`to`
//! creation window, which is a range of the sort key, `orderId BETWEEN`): no filter
//! expressions, which would read and bill items they then drop. Hot partitions at 1,000 orders/s: an order is
//! written about four times in its life (placed, processed, shipped, delivered) and each
//! write changes projected attributes, so `byCreated` takes ~4,000 index writes/s, ~250 per
//! shard; a status change moves the `byStatus` key (a delete and an insert), so one status
//! partition takes at most one insert and one delete per order, ≤ 2,000/s, ~125 per shard.
//! Both stay under a quarter of a partition's 1,000 writes/s (items under 1 KB); ULID sort
//! keys put every write at the end of its partition, so splitting for heat would not help —
//! the shards are what spreads them.

/// Whether a request failed only because its condition expression did not hold (nothing was
/// written). Works on any DynamoDB operation's error.
pub(crate) fn condition_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(err: &E) -> bool {
    err.code() == Some("ConditionalCheckFailedException")
}

pub mod analytics;
pub mod catalog;
pub mod chain;
pub mod commands;
pub mod idempotency;
pub mod live;
pub mod orders;

/// BatchWriteItem writes at most 25 items per call.
const BATCH_WRITE_LIMIT: usize = 25;
/// BatchGetItem reads at most 100 keys per call.
const BATCH_GET_LIMIT: usize = 100;
/// Chunks of one read in flight at once: enough to hide round trips for the analytics
/// routes' thousands of keys without bursting a table's partitions.
const BATCH_GET_CONCURRENCY: usize = 8;

type Key = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

/// Reads of many items of one table by key: chunks of 100 keys, several in flight, asking
/// again (with backoff) for the keys DynamoDB leaves unprocessed under load. Missing items
/// are simply absent. `consistent` costs twice the read units: use it where the value
/// decides a write (stock), not for reports.
pub(crate) async fn batch_get(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: Vec<Key>,
    consistent: bool,
) -> Result<Vec<Key>, orders_core::OrderError> {
    use futures::{StreamExt, TryStreamExt};
    let chunks: Vec<Vec<Key>> = keys.chunks(BATCH_GET_LIMIT).map(<[Key]>::to_vec).collect();
    let pages: Vec<Vec<Key>> = futures::stream::iter(chunks)
        .map(|chunk| batch_get_chunk(client, table, chunk, consistent))
        .buffer_unordered(BATCH_GET_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(pages.into_iter().flatten().collect())
}

/// Puts many items into one table (bulk loads: benchmarks, rebuilds into a fresh table),
/// 25 per BatchWriteItem, asking again with backoff for the items DynamoDB leaves
/// unprocessed. Unconditional: only for items nothing else writes meanwhile. Returns how many.
pub(crate) async fn batch_put(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    items: Vec<Key>,
) -> Result<usize, orders_core::OrderError> {
    use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
    let written = items.len();
    let mut requests = Vec::with_capacity(items.len());
    for item in items {
        let put = PutRequest::builder()
            .set_item(Some(item))
            .build()
            .map_err(|e| orders_core::OrderError::Unexpected(e.into()))?;
        requests.push(WriteRequest::builder().put_request(put).build());
    }
    for chunk in requests.chunks(BATCH_WRITE_LIMIT) {
        let mut pending = chunk.to_vec();
        let mut retries = 0u32;
        while !pending.is_empty() {
            if retries > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(25 << retries.min(6))).await;
            }
            let output = client
                .batch_write_item()
                .request_items(table, pending)
                .send()
                .await
                .map_err(crate::errors::classify)?;
            pending = output
                .unprocessed_items
                .and_then(|mut u| u.remove(table))
                .unwrap_or_default();
            retries += 1;
        }
    }
    Ok(written)
}

async fn batch_get_chunk(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    chunk: Vec<Key>,
    consistent: bool,
) -> Result<Vec<Key>, orders_core::OrderError> {
    let mut items = Vec::with_capacity(chunk.len());
    let mut pending = Some(
        aws_sdk_dynamodb::types::KeysAndAttributes::builder()
            .set_keys(Some(chunk))
            .consistent_read(consistent)
            .build()
            .map_err(|e| orders_core::OrderError::Unexpected(e.into()))?,
    );
    let mut retries = 0u32;
    while let Some(request) = pending.take() {
        if retries > 0 {
            // Unprocessed keys mean the table is over its capacity: back off, as DynamoDB
            // asks, instead of hammering it (25 ms, 50 ms, … capped at 1.6 s).
            tokio::time::sleep(std::time::Duration::from_millis(25 << retries.min(6))).await;
        }
        let output = client
            .batch_get_item()
            .request_items(table, request)
            .send()
            .await
            .map_err(crate::errors::classify)?;
        items.extend(
            output
                .responses
                .unwrap_or_default()
                .remove(table)
                .unwrap_or_default(),
        );
        pending = output
            .unprocessed_keys
            .and_then(|mut u| u.remove(table))
            .filter(|k| !k.keys().is_empty());
        retries += 1;
    }
    Ok(items)
}

/// Write shards of the status and "all orders" indexes. Fixed for the life of a table:
/// readers must query exactly the shards writers used.
pub const LIST_SHARDS: u32 = 16;

/// The index shard of an order id (the system's one stable hash).
pub fn shard_of(order_id: &str) -> u32 {
    orders_core::shard::shard_of(order_id, LIST_SHARDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(
            shard_of("01JDA3Z6Q7W8X9Y0Z1A2B3C4D5"),
            shard_of("01JDA3Z6Q7W8X9Y0Z1A2B3C4D5")
        );
        let mut counts = [0u32; LIST_SHARDS as usize];
        for i in 0..16_000u32 {
            let id = ulid::Ulid::from_parts(1_700_000_000_000 + u64::from(i), u128::from(i) * 7919);
            counts[shard_of(&id.to_string()) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }
}
