//! The local API Gateway HTTP API front door (`--listen`, default `127.0.0.1:3000`).
//!
//! Why: clients and the e2e tests talk HTTP to the API exactly as they would to API Gateway.
//! For every request this selects the route ([`crate::routes`]), builds the 2.0 event and
//! translates the result ([`crate::payload`]), and invokes the function through
//! [`crate::instances::Runtime`]. Errors look like API Gateway's (`{"message": ...}` bodies).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use bytes::Bytes;
use time::OffsetDateTime;
use tracing::{error, info};

use crate::authorizer::JwtAuthorizer;
use crate::instances::Runtime;
use crate::payload::{EventContext, IncomingRequest, build_event, translate_response};
use crate::routes::RouteTable;
use dev_auth::Rejection;

/// API Gateway's request payload limit.
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

/// Where a route sends requests.
#[derive(Debug, Clone)]
pub struct RouteTarget {
    /// Function name, or `None` if the integration does not point at a runnable function
    /// (requests to it fail with 500, as a broken integration would).
    pub function: Option<String>,
    /// Human-readable integration description for logs and the startup table.
    pub integration: String,
    /// The route's JWT authorizer and scopes (`authorization_type = "JWT"`), if any.
    pub auth: Option<RouteAuth>,
}

/// A route's authorization: its authorizer and the scopes a token needs one of.
#[derive(Clone)]
pub struct RouteAuth {
    pub authorizer: Arc<JwtAuthorizer>,
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for RouteAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteAuth")
            .field("authorizer", &self.authorizer.name)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Everything the front door needs.
pub struct Gateway {
    pub api_id: String,
    pub account_id: String,
    pub routes: RouteTable<RouteTarget>,
    pub runtime: Runtime,
}

/// Serves `gateway` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = Router::new().fallback(handle).with_state(gateway);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    Ok(())
}

async fn handle(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request<Body>,
) -> Response<Body> {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let (response, route) = dispatch(&gateway, peer, &request_id, request).await;
    let mut response = response;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("apigw-requestid", value);
    }
    info!(
        %method,
        %path,
        route = route.as_deref().unwrap_or("-"),
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_millis() as u64,
        request_id,
        "request"
    );
    response
}

async fn dispatch(
    gateway: &Gateway,
    peer: SocketAddr,
    request_id: &str,
    request: Request<Body>,
) -> (Response<Body>, Option<String>) {
    let (parts, body) = request.into_parts();
    let declared_too_large = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|len| len > MAX_REQUEST_BYTES);
    if declared_too_large {
        return (too_large(), None);
    }
    let body = match axum::body::to_bytes(body, MAX_REQUEST_BYTES).await {
        Ok(body) => body,
        Err(_) => return (too_large(), None),
    };

    let Some(matched) = gateway.routes.find(&parts.method, parts.uri.path()) else {
        return (message(StatusCode::NOT_FOUND, "Not Found"), None);
    };
    let route_key = matched.route_key.to_owned();
    let Some(function) = matched.target.function.clone() else {
        error!(route = %route_key, integration = %matched.target.integration, "route has no runnable function");
        return (internal_error(), Some(route_key));
    };

    // The route's authorizer runs before the function, as on API Gateway; a refused
    // request never reaches it.
    let verified = match &matched.target.auth {
        None => None,
        Some(auth) => {
            let authorization = parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            let now = OffsetDateTime::now_utc().unix_timestamp();
            match auth
                .authorizer
                .check(authorization, &auth.scopes, now)
                .await
            {
                Ok(verified) => Some(verified),
                Err(Rejection::Unauthorized(why)) => {
                    info!(route = %route_key, why, "authorizer refused the request");
                    return (unauthorized(), Some(route_key));
                }
                Err(Rejection::Forbidden) => {
                    return (message(StatusCode::FORBIDDEN, "Forbidden"), Some(route_key));
                }
            }
        }
    };

    let domain_name = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let ctx = EventContext {
        account_id: gateway.account_id.clone(),
        api_id: gateway.api_id.clone(),
        domain_name,
        source_ip: peer.ip().to_string(),
        request_id: request_id.to_owned(),
        now: OffsetDateTime::now_utc(),
    };
    let incoming = IncomingRequest {
        method: parts.method,
        uri: parts.uri,
        version: parts.version,
        headers: parts.headers,
        body,
    };
    let event = match build_event(&incoming, &route_key, matched.path_parameters, &ctx) {
        Ok(mut event) => {
            if let Some(verified) = verified {
                event["requestContext"]["authorizer"] = serde_json::json!({"jwt": {
                    "claims": verified.claims,
                    "scopes": verified.scopes,
                }});
            }
            event
        }
        Err(err) => {
            error!(route = %route_key, "could not build the event: {err:#}");
            return (internal_error(), Some(route_key));
        }
    };
    let result = match gateway.runtime.invoke(&function, &event).await {
        Ok(result) => result,
        Err(err) => {
            error!(route = %route_key, %function, error_type = err.error_type(), "invocation failed: {err}");
            return (internal_error(), Some(route_key));
        }
    };
    match translate_response(&result) {
        Ok(response) => (response.map(Body::from), Some(route_key)),
        Err(err) => {
            error!(route = %route_key, %function, "malformed Lambda proxy response: {err:#}");
            (internal_error(), Some(route_key))
        }
    }
}

fn message(status: StatusCode, text: &str) -> Response<Body> {
    let body = serde_json::json!({ "message": text }).to_string();
    let mut response = Response::new(Body::from(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// API Gateway's answer when its JWT authorizer refuses a token (or finds none).
fn unauthorized() -> Response<Body> {
    let mut response = message(StatusCode::UNAUTHORIZED, "Unauthorized");
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

fn internal_error() -> Response<Body> {
    message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
}

fn too_large() -> Response<Body> {
    message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large")
}
