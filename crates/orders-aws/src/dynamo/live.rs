//! The connections table: open sockets and the tickets that open them, both expired by
//! DynamoDB TTL (`expiresAt`).
//!
//! | item       | `pk`              | attributes                                   |
//! |------------|-------------------|----------------------------------------------|
//! | ticket     | `ticket#<id>`     | `ticketAudience`, `expiresAt`                |
//! | connection | `connection#<id>` | `audience`, `topics` (list), `expiresAt`     |
//!
//! Only connections carry `audience`, so the `byAudience` index (key `audience`) holds
//! connections alone: the notifier finds staff's sockets (`all`) and one customer's
//! (`customer#c-1`) with one Query each, whatever else the table holds.

use crate::dynamo::condition_failed;
use crate::errors::{classify, corrupt};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use orders_core::live::{Audience, Connection, Ticket, Topic};
use orders_core::ports::LiveConnections;
use orders_core::{OrderError, Timestamp};
use std::collections::{BTreeSet, HashMap};

type Item = HashMap<String, AttributeValue>;

/// The index that finds an audience's connections.
pub const BY_AUDIENCE_INDEX: &str = "byAudience";

#[derive(Debug, Clone)]
pub struct DynamoLiveConnections {
    client: Client,
    table: String,
}

impl DynamoLiveConnections {
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

fn ticket_key(id: &str) -> AttributeValue {
    AttributeValue::S(format!("ticket#{id}"))
}

fn connection_key(id: &str) -> AttributeValue {
    AttributeValue::S(format!("connection#{id}"))
}

fn epoch(at: Timestamp) -> AttributeValue {
    AttributeValue::N(at.unix_seconds().to_string())
}

fn topics_value(topics: &BTreeSet<Topic>) -> AttributeValue {
    AttributeValue::L(
        topics
            .iter()
            .map(|t| AttributeValue::S(t.as_str().to_owned()))
            .collect(),
    )
}

#[derive(Debug, thiserror::Error)]
#[error("attribute {0} is missing or malformed")]
struct Malformed(&'static str);

fn string<'a>(item: &'a Item, name: &'static str) -> Result<&'a str, OrderError> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s),
        _ => Err(corrupt("reading the connections table", Malformed(name))),
    }
}

fn expires_at(item: &Item) -> Result<Timestamp, OrderError> {
    match item.get("expiresAt") {
        Some(AttributeValue::N(n)) => n
            .parse::<i64>()
            .ok()
            .and_then(|s| Timestamp::from_unix_millis(s.saturating_mul(1000))),
        _ => None,
    }
    .ok_or_else(|| corrupt("reading the connections table", Malformed("expiresAt")))
}

fn audience(item: &Item, name: &'static str) -> Result<Audience, OrderError> {
    Audience::parse(string(item, name)?)
        .ok_or_else(|| corrupt("reading the connections table", Malformed(name)))
}

fn connection_from(item: &Item) -> Result<Connection, OrderError> {
    let id = string(item, "pk")?
        .strip_prefix("connection#")
        .ok_or_else(|| corrupt("reading the connections table", Malformed("pk")))?;
    let topics = match item.get("topics") {
        Some(AttributeValue::L(list)) => list
            .iter()
            .filter_map(|v| match v {
                AttributeValue::S(s) => Topic::ALL.into_iter().find(|t| t.as_str() == s),
                _ => None,
            })
            .collect(),
        _ => BTreeSet::new(),
    };
    Ok(Connection {
        id: id.to_owned(),
        audience: audience(item, "audience")?,
        topics,
        expires_at: expires_at(item)?,
    })
}

#[async_trait]
impl LiveConnections for DynamoLiveConnections {
    async fn put_ticket(&self, ticket: &Ticket) -> Result<(), OrderError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", ticket_key(&ticket.id))
            .item("ticketAudience", AttributeValue::S(ticket.audience.key()))
            .item("expiresAt", epoch(ticket.expires_at))
            // A random id never repeats; if it did, the older ticket must not change hands.
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn take_ticket(&self, id: &str) -> Result<Option<Ticket>, OrderError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", ticket_key(id))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(classify)?;
        let Some(item) = output.attributes.filter(|a| !a.is_empty()) else {
            return Ok(None);
        };
        Ok(Some(Ticket {
            id: id.to_owned(),
            audience: audience(&item, "ticketAudience")?,
            expires_at: expires_at(&item)?,
        }))
    }

    async fn open(&self, connection: &Connection) -> Result<(), OrderError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", connection_key(&connection.id))
            .item("audience", AttributeValue::S(connection.audience.key()))
            .item("topics", topics_value(&connection.topics))
            .item("expiresAt", epoch(connection.expires_at))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<Connection>, OrderError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", connection_key(id))
            .send()
            .await
            .map_err(classify)?;
        output.item.as_ref().map(connection_from).transpose()
    }

    async fn subscribe(
        &self,
        id: &str,
        topics: &BTreeSet<Topic>,
    ) -> Result<Option<Connection>, OrderError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", connection_key(id))
            .update_expression("SET topics = :topics")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":topics", topics_value(topics))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => output.attributes.as_ref().map(connection_from).transpose(),
            Err(err) if condition_failed(&err) => Ok(None),
            Err(err) => Err(classify(err)),
        }
    }

    async fn close(&self, id: &str) -> Result<(), OrderError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", connection_key(id))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn listening(
        &self,
        audience: &Audience,
        topic: Topic,
    ) -> Result<Vec<String>, OrderError> {
        let now = Timestamp::now();
        let mut ids = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_AUDIENCE_INDEX)
            .key_condition_expression("audience = :a")
            .expression_attribute_values(":a", AttributeValue::S(audience.key()))
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let connection = connection_from(&item.map_err(classify)?)?;
            // TTL deletes up to days late: an expired socket is closed already.
            if connection.topics.contains(&topic) && now < connection.expires_at {
                ids.push(connection.id);
            }
        }
        Ok(ids)
    }
}
