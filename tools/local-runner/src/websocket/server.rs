//! The WebSocket API's listener: client connections on `/{stage}` and the `@connections`
//! management API on `/{stage}/@connections/{id}`, like API Gateway's two URLs of a stage.
//!
//! Why one listener: the functions get one origin to rewrite to (see
//! [`crate::websocket::env_rewrite`]), as on AWS where both URLs share the API's host.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::routing::{get, post};
use tracing::warn;

use crate::websocket::gateway::WsGateway;
use crate::websocket::{management, responses, socket};

/// How long shutdown waits for the connections' `$disconnect` invocations.
pub const DISCONNECT_GRACE: Duration = Duration::from_secs(3);

/// The routes of both URLs; anything else is `403 Forbidden`, as on API Gateway.
pub fn router(gateway: Arc<WsGateway>) -> Router {
    let forbidden = || async { responses::forbidden() };
    Router::new()
        .route("/{stage}", get(socket::upgrade).fallback(forbidden))
        .route(
            "/{stage}/@connections/{connection_id}",
            post(management::post)
                .get(management::get)
                .delete(management::delete)
                .fallback(forbidden),
        )
        .fallback(forbidden)
        .with_state(gateway)
}

/// Serves `gateway` on `listener` until `shutdown` resolves, then closes every connection
/// (1001) and waits up to [`DISCONNECT_GRACE`] for their `$disconnect` invocations.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Arc<WsGateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let closing = Arc::clone(&gateway);
    let served = axum::serve(
        listener,
        router(Arc::clone(&gateway)).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        closing.close_all();
    })
    .await;
    // Upgraded connections outlive the HTTP server; they close on `close_all`.
    gateway.close_all();
    if !gateway.wait_for_tasks(DISCONNECT_GRACE).await {
        warn!(
            open = gateway.connections.len(),
            "WebSocket connections did not finish their $disconnect within {DISCONNECT_GRACE:?}"
        );
    }
    served.context("serving the WebSocket API")
}
