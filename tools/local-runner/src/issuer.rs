//! The development OIDC issuer the local stack signs in with: its discovery document and
//! JWKS, served on 127.0.0.1 (API Gateway's JWT authorizer fetches exactly these from an
//! issuer; the local one fetches them here). Keys live under `.local/` (`dev_auth::keys`).

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use dev_auth::SigningKey;
use dev_auth::keys::discovery;
use std::sync::Arc;

struct Issuer {
    url: String,
    key: SigningKey,
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    url: String,
    key: SigningKey,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let issuer = Arc::new(Issuer { url, key });
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(configuration))
        .route("/.well-known/jwks.json", get(jwks))
        .with_state(issuer);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

async fn configuration(State(issuer): State<Arc<Issuer>>) -> impl IntoResponse {
    Json(discovery(&issuer.url))
}

async fn jwks(State(issuer): State<Arc<Issuer>>) -> impl IntoResponse {
    Json(issuer.key.jwks())
}
