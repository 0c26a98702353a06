//! The use cases, over the connections port.

use orders_core::live::{Connection, Ticket, Topic, parse_subscribe};
use orders_core::ports::{Clock, LiveConnections};
use orders_core::{Caller, OrderError};
use std::collections::BTreeSet;
use std::sync::Arc;
use tracing::info;

pub struct LiveService<L> {
    pub connections: L,
    pub clock: Arc<dyn Clock>,
    /// The socket URL clients open (`wss://…/live`).
    pub live_url: String,
}

/// What `POST /live/tickets` answers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedTicket {
    pub ticket: String,
    pub expires_at: orders_core::Timestamp,
    /// The socket URL with the ticket in its query.
    pub url: String,
}

impl<L: LiveConnections> LiveService<L> {
    pub async fn issue_ticket(&self, caller: &Caller) -> Result<IssuedTicket, OrderError> {
        // 122 random bits: a ticket cannot be guessed within its minute.
        let id = uuid::Uuid::new_v4().simple().to_string();
        let ticket = Ticket::issue(id, caller, self.clock.now());
        self.connections.put_ticket(&ticket).await?;
        Ok(IssuedTicket {
            url: format!("{}?ticket={}", self.live_url, ticket.id),
            ticket: ticket.id,
            expires_at: ticket.expires_at,
        })
    }

    /// `$connect`: the connection, or `None` when the ticket is missing, used or expired
    /// (the socket is refused).
    pub async fn connect(
        &self,
        connection_id: &str,
        ticket: Option<&str>,
    ) -> Result<Option<Connection>, OrderError> {
        let Some(id) = ticket.filter(|t| !t.is_empty() && t.len() <= 64) else {
            return Ok(None);
        };
        let now = self.clock.now();
        let Some(ticket) = self
            .connections
            .take_ticket(id)
            .await?
            .filter(|t| t.is_valid_at(now))
        else {
            return Ok(None);
        };
        let connection = Connection::open(connection_id.to_owned(), &ticket, now);
        self.connections.open(&connection).await?;
        info!(
            connection = connection_id,
            staff = matches!(connection.audience, orders_core::live::Audience::Everyone),
            "socket opened"
        );
        Ok(Some(connection))
    }

    /// `subscribe`: the topics now listened to. The connection is read first: what it may
    /// subscribe to depends on whose it is.
    pub async fn subscribe(
        &self,
        connection_id: &str,
        body: &str,
    ) -> Result<BTreeSet<Topic>, OrderError> {
        let Some(connection) = self.connections.get(connection_id).await? else {
            return Err(OrderError::NotFound(format!("connection {connection_id}")));
        };
        let topics = parse_subscribe(body, &connection.audience)?;
        match self.connections.subscribe(connection_id, &topics).await? {
            Some(_) => Ok(topics),
            None => Err(OrderError::NotFound(format!("connection {connection_id}"))),
        }
    }

    pub async fn disconnect(&self, connection_id: &str) -> Result<(), OrderError> {
        self.connections.close(connection_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orders_core::CustomerId;
    use orders_core::Timestamp;
    use orders_core::live::{Audience, TICKET_TTL_SECONDS};
    use orders_core::memory::{FixedClock, MemoryLiveConnections};

    fn service(at: Timestamp, store: &MemoryLiveConnections) -> LiveService<MemoryLiveConnections> {
        LiveService {
            connections: store.clone(),
            clock: Arc::new(FixedClock(at)),
            live_url: "wss://example/live".into(),
        }
    }

    #[tokio::test]
    async fn a_ticket_opens_one_socket_for_its_callers_audience() {
        let now = Timestamp::parse("2026-12-07T10:00:00Z").unwrap();
        let store = MemoryLiveConnections::default();
        let live = service(now, &store);
        let customer = Caller::Customer(CustomerId::parse("c-1").unwrap());
        let issued = live.issue_ticket(&customer).await.unwrap();
        assert_eq!(
            issued.url,
            format!("wss://example/live?ticket={}", issued.ticket)
        );
        let opened = live.connect("conn-1", Some(&issued.ticket)).await.unwrap();
        assert_eq!(
            opened.map(|c| c.audience),
            Some(Audience::Customer(CustomerId::parse("c-1").unwrap()))
        );
        // Single use.
        assert_eq!(
            live.connect("conn-2", Some(&issued.ticket)).await.unwrap(),
            None
        );
        assert!(store.get("conn-2").await.unwrap().is_none());
        assert_eq!(live.connect("conn-3", None).await.unwrap(), None);
        assert_eq!(live.connect("conn-3", Some("made-up")).await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_expired_ticket_is_refused() {
        let now = Timestamp::parse("2026-12-07T10:00:00Z").unwrap();
        let store = MemoryLiveConnections::default();
        let issued = service(now, &store)
            .issue_ticket(&Caller::Staff)
            .await
            .unwrap();
        let later = service(now.plus_seconds(TICKET_TTL_SECONDS), &store);
        assert_eq!(
            later.connect("conn-1", Some(&issued.ticket)).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn subscriptions_follow_the_http_apis_rules() {
        let now = Timestamp::parse("2026-12-07T10:00:00Z").unwrap();
        let store = MemoryLiveConnections::default();
        let live = service(now, &store);
        let customer = Caller::Customer(CustomerId::parse("c-1").unwrap());
        let ticket = live.issue_ticket(&customer).await.unwrap().ticket;
        live.connect("conn-1", Some(&ticket)).await.unwrap();
        assert!(matches!(
            live.subscribe("conn-1", r#"{"action":"subscribe","topics":["analytics"]}"#)
                .await,
            Err(OrderError::Forbidden(_))
        ));
        let topics = live
            .subscribe("conn-1", r#"{"action":"subscribe","topics":["orders"]}"#)
            .await
            .unwrap();
        assert_eq!(topics, BTreeSet::from([Topic::Orders]));
        let listening = store
            .listening(
                &Audience::Customer(CustomerId::parse("c-1").unwrap()),
                Topic::Orders,
            )
            .await
            .unwrap();
        assert_eq!(listening, vec!["conn-1".to_owned()]);
        live.disconnect("conn-1").await.unwrap();
        assert!(matches!(
            live.subscribe("conn-1", r#"{"topics":["orders"]}"#).await,
            Err(OrderError::NotFound(_))
        ));
    }
}
