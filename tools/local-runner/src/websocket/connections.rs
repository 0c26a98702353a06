//! The live connections, by connection id.
//!
//! Why: the socket tasks own the connections, but the management API (`@connections`) and the
//! message handlers must reach them by id. Each connection registers a channel to its socket
//! task here; a connection that is gone has no entry (or a closed channel), which is exactly
//! API Gateway's `410 Gone`. A `std::sync::Mutex` guards the map: it is held for a lookup or an
//! insert only, never across an `.await`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::ws::Message;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

/// What API Gateway knows about a connection from its upgrade request.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub connection_id: String,
    pub stage: String,
    /// `Host` as the client used it (`requestContext.domainName`).
    pub domain_name: String,
    pub source_ip: String,
    pub user_agent: Option<String>,
    pub connected_at: OffsetDateTime,
}

/// A request to a connection's socket task.
#[derive(Debug)]
pub enum Outbound {
    /// Send a frame; `written` says whether it reached the socket.
    Frame {
        message: Message,
        written: oneshot::Sender<bool>,
    },
    /// Close the connection (`DELETE @connections/{id}`).
    Close,
}

/// When a frame last went either way (`lastActiveAt`); written by the socket task.
#[derive(Debug)]
pub struct Activity(Mutex<OffsetDateTime>);

impl Activity {
    pub fn new(at: OffsetDateTime) -> Self {
        Self(Mutex::new(at))
    }

    pub fn touch(&self) {
        *self.lock() = OffsetDateTime::now_utc();
    }

    pub fn last(&self) -> OffsetDateTime {
        *self.lock()
    }

    fn lock(&self) -> MutexGuard<'_, OffsetDateTime> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One live connection, as others reach it.
#[derive(Debug, Clone)]
pub struct ConnectionHandle {
    pub info: Arc<ConnectionInfo>,
    pub activity: Arc<Activity>,
    outbound: mpsc::Sender<Outbound>,
}

impl ConnectionHandle {
    pub fn new(
        info: Arc<ConnectionInfo>,
        activity: Arc<Activity>,
        outbound: mpsc::Sender<Outbound>,
    ) -> Self {
        Self {
            info,
            activity,
            outbound,
        }
    }

    /// Sends `message` to the client; `false` if the connection is gone.
    pub async fn send(&self, message: Message) -> bool {
        let (written, ack) = oneshot::channel();
        let queued = self
            .outbound
            .send(Outbound::Frame { message, written })
            .await;
        queued.is_ok() && ack.await.unwrap_or(false)
    }

    /// Asks the socket task to close the connection; `false` if it is already gone.
    pub async fn close(&self) -> bool {
        self.outbound.send(Outbound::Close).await.is_ok()
    }
}

/// The registry. Cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct Connections {
    map: Mutex<HashMap<String, ConnectionHandle>>,
}

impl Connections {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, ConnectionHandle>> {
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn insert(&self, handle: ConnectionHandle) {
        let id = handle.info.connection_id.clone();
        self.lock().insert(id, handle);
    }

    pub fn remove(&self, connection_id: &str) {
        self.lock().remove(connection_id);
    }

    pub fn get(&self, connection_id: &str) -> Option<ConnectionHandle> {
        self.lock().get(connection_id).cloned()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}
