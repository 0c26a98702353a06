//! Everything the WebSocket handlers share: the API, the runtime, the limits, the live
//! connections, and the shutdown signal.
//!
//! Why: the upgrade handler, the socket tasks and the management API are separate entry points
//! into one emulated API Gateway; this is the one state they hold. It also counts the
//! connection tasks, so that shutdown can wait for their `$disconnect` invocations before the
//! functions are stopped.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::Value;
use tokio::sync::watch;

use crate::instances::{InvokeError, Runtime};
use crate::websocket::api::{WsApi, WsLimits, WsRoute};
use crate::websocket::connections::Connections;

/// The emulated WebSocket API.
pub struct WsGateway {
    pub api: WsApi,
    pub runtime: Runtime,
    pub limits: WsLimits,
    pub connections: Connections,
    /// `true` once the server stops: every connection closes (1001) and disconnects.
    shutdown: watch::Sender<bool>,
    /// Connection tasks that have not finished (their `$disconnect` included).
    tasks: watch::Sender<usize>,
}

/// Why an integration produced no response.
#[derive(Debug, thiserror::Error)]
pub enum IntegrationError {
    #[error("the route's integration does not lead to a runnable function ({0})")]
    NotRunnable(String),
    #[error("integration timed out after {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Invoke(#[from] InvokeError),
}

impl IntegrationError {
    /// What API Gateway tells the client.
    pub fn client_message(&self) -> &'static str {
        match self {
            IntegrationError::Timeout(_) => "Endpoint request timed out",
            _ => "Internal server error",
        }
    }

    /// The status API Gateway refuses a `$connect` with.
    pub fn status(&self) -> StatusCode {
        match self {
            IntegrationError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Lambda's error type, for logs.
    pub fn error_type(&self) -> &str {
        match self {
            IntegrationError::NotRunnable(_) => "NotRunnable",
            IntegrationError::Timeout(_) => "IntegrationTimeout",
            IntegrationError::Invoke(err) => err.error_type(),
        }
    }
}

/// Held by a connection task; dropping it marks the task finished.
pub struct TaskGuard(watch::Sender<usize>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl WsGateway {
    pub fn new(api: WsApi, runtime: Runtime, limits: WsLimits) -> Self {
        Self {
            api,
            runtime,
            limits,
            connections: Connections::default(),
            shutdown: watch::Sender::new(false),
            tasks: watch::Sender::new(0),
        }
    }

    /// Invokes `route`'s function with `event`, within API Gateway's integration timeout.
    pub async fn invoke(&self, route: &WsRoute, event: &Value) -> Result<Value, IntegrationError> {
        let Some(function) = route.function.as_deref() else {
            return Err(IntegrationError::NotRunnable(route.integration.clone()));
        };
        let timeout = self.limits.integration_timeout;
        match tokio::time::timeout(timeout, self.runtime.invoke(function, event)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(IntegrationError::Timeout(timeout)),
        }
    }

    /// A receiver that turns `true` when the server stops.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Closes every connection (1001 Going away); each then invokes `$disconnect`.
    pub fn close_all(&self) {
        self.shutdown.send_replace(true);
    }

    /// Counts a connection task until the guard is dropped.
    pub fn task_started(&self) -> TaskGuard {
        self.tasks.send_modify(|n| *n += 1);
        TaskGuard(self.tasks.clone())
    }

    /// Waits (up to `grace`) for every connection task to finish; `false` on timeout.
    pub async fn wait_for_tasks(&self, grace: Duration) -> bool {
        let mut tasks = self.tasks.subscribe();
        tokio::time::timeout(grace, async move {
            let _ = tasks.wait_for(|n| *n == 0).await;
        })
        .await
        .is_ok()
    }
}
