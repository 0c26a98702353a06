//! `poison`: records on the order-event stream that no consumer can use, for fault drills.
//!
//! Three kinds, in turn: bytes that are not JSON, an envelope of an unknown schema version,
//! and JSON of no known shape. Every consumer must dead-letter them and move on; none is an
//! order, so none may change any figure. (A well-formed `OrderPlaced` for an order that was
//! never stored is left out on purpose: it is poison to process-order but a countable event
//! to the aggregate.) Partition keys start with `poison-<tag>-` so drills can find their
//! records in the dead-letter queues.

use anyhow::Context as _;
use aws_sdk_kinesis::primitives::Blob;
use serde::Serialize;
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    NotJson,
    UnknownSchemaVersion,
    UnknownShape,
}

#[derive(Debug, Serialize)]
pub struct PoisonRecord {
    pub kind: Kind,
    pub partition_key: String,
    pub shard_id: String,
    pub sequence_number: String,
}

/// The `i`-th poison record of a drill: its kind, partition key and data.
pub fn record(tag: &str, i: usize) -> (Kind, String, Vec<u8>) {
    let key = format!("poison-{tag}-{i}");
    match i % 3 {
        0 => (
            Kind::NotJson,
            key.clone(),
            format!("\u{0}{key} is not JSON").into_bytes(),
        ),
        1 => (
            Kind::UnknownSchemaVersion,
            key.clone(),
            json!({"eventId": key, "eventType": "OrderPlaced", "schemaVersion": 99,
                   "occurredAt": "2026-01-01T00:00:00.000Z", "orderId": key, "payload": {}})
            .to_string()
            .into_bytes(),
        ),
        _ => (
            Kind::UnknownShape,
            key.clone(),
            json!({"poison": key}).to_string().into_bytes(),
        ),
    }
}

pub async fn put(stream: &str, count: usize, tag: &str) -> anyhow::Result<Vec<PoisonRecord>> {
    let sdk = orders_aws::config::sdk_config_for_streams().await;
    let kinesis = aws_sdk_kinesis::Client::new(&sdk);
    let mut put = Vec::with_capacity(count);
    for i in 0..count {
        let (kind, key, data) = record(tag, i);
        let out = kinesis
            .put_record()
            .stream_name(stream)
            .partition_key(&key)
            .data(Blob::new(data))
            .send()
            .await
            .with_context(|| format!("putting {key} on {stream}"))?;
        put.push(PoisonRecord {
            kind,
            partition_key: key,
            shard_id: out.shard_id,
            sequence_number: out.sequence_number,
        });
    }
    println!("put {count} poison records on {stream} (partition keys poison-{tag}-*)");
    Ok(put)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poison_is_never_an_event() {
        for i in 0..6 {
            let (kind, key, data) = record("t", i);
            assert_eq!(key, format!("poison-t-{i}"));
            assert!(
                orders_core::EventEnvelope::decode(&data).is_err(),
                "{kind:?} must not decode as an event"
            );
            if kind == Kind::NotJson {
                assert!(serde_json::from_slice::<serde_json::Value>(&data).is_err());
            }
        }
    }
}
