//! The `@connections` management API: `POST` / `GET` / `DELETE /{stage}/@connections/{id}`.
//!
//! Why: functions push to clients and drop them through this API (the SDK's
//! `aws-sdk-apigatewaymanagement`, endpoint = the stage's callback URL). Answers follow API
//! Gateway's: `410 GoneException` for a connection that is gone, `413` over the 128 KB message
//! limit. Requests are not authenticated — SigV4 signatures are accepted unchecked, as on the
//! HTTP front door — which is why the listener is loopback-only.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::ws::{Message, Utf8Bytes};
use axum::extract::{Path, State};
use axum::http::{Method, Response, StatusCode, header};
use bytes::Bytes;
use time::OffsetDateTime;
use time::macros::format_description;
use tracing::info;

use crate::websocket::gateway::WsGateway;
use crate::websocket::responses;

/// `POST`: sends the body to the client (a text frame if UTF-8, else binary).
pub async fn post(
    State(gateway): State<Arc<WsGateway>>,
    Path((stage, connection_id)): Path<(String, String)>,
    request: axum::http::Request<Body>,
) -> Response<Body> {
    let started = Instant::now();
    let response = post_to_connection(&gateway, &stage, &connection_id, request).await;
    log(Method::POST, &connection_id, &response, started);
    response
}

async fn post_to_connection(
    gateway: &WsGateway,
    stage: &str,
    connection_id: &str,
    request: axum::http::Request<Body>,
) -> Response<Body> {
    if !gateway.api.has_stage(stage) {
        return responses::forbidden();
    }
    let limit = gateway.limits.max_message_bytes;
    let declared_too_large = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|len| len > limit);
    if declared_too_large {
        return too_large();
    }
    let Ok(data) = axum::body::to_bytes(request.into_body(), limit).await else {
        return too_large();
    };
    let Some(connection) = gateway.connections.get(connection_id) else {
        return responses::gone();
    };
    let message = match String::from_utf8(data.to_vec()) {
        Ok(text) => Message::Text(Utf8Bytes::from(text)),
        Err(_) => Message::Binary(data),
    };
    if connection.send(message).await {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::OK;
        response
    } else {
        responses::gone()
    }
}

/// `GET`: when the connection opened, who opened it, and when it was last active.
pub async fn get(
    State(gateway): State<Arc<WsGateway>>,
    Path((stage, connection_id)): Path<(String, String)>,
) -> Response<Body> {
    let started = Instant::now();
    let response = if !gateway.api.has_stage(&stage) {
        responses::forbidden()
    } else {
        match gateway.connections.get(&connection_id) {
            None => responses::gone(),
            Some(connection) => {
                let body = serde_json::json!({
                    "connectedAt": iso8601(connection.info.connected_at),
                    "identity": {
                        "sourceIp": connection.info.source_ip,
                        "userAgent": connection.info.user_agent,
                    },
                    "lastActiveAt": iso8601(connection.activity.last()),
                });
                let mut response = Response::new(Body::from(Bytes::from(body.to_string())));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_static("application/json"),
                );
                response
            }
        }
    };
    log(Method::GET, &connection_id, &response, started);
    response
}

/// `DELETE`: closes the connection (its `$disconnect` follows).
pub async fn delete(
    State(gateway): State<Arc<WsGateway>>,
    Path((stage, connection_id)): Path<(String, String)>,
) -> Response<Body> {
    let started = Instant::now();
    let response = if !gateway.api.has_stage(&stage) {
        responses::forbidden()
    } else {
        match gateway.connections.get(&connection_id) {
            Some(connection) if connection.close().await => {
                let mut response = Response::new(Body::empty());
                *response.status_mut() = StatusCode::NO_CONTENT;
                response
            }
            _ => responses::gone(),
        }
    };
    log(Method::DELETE, &connection_id, &response, started);
    response
}

fn too_large() -> Response<Body> {
    responses::message(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request Entity Too Large",
        Some("PayloadTooLargeException"),
    )
}

/// ISO 8601 in UTC with milliseconds, as the SDK parses `connectedAt` / `lastActiveAt`.
fn iso8601(at: OffsetDateTime) -> Option<String> {
    at.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .ok()
}

fn log(method: Method, connection_id: &str, response: &Response<Body>, started: Instant) {
    info!(
        %method,
        connection_id,
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_millis() as u64,
        "@connections"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_iso8601_utc_with_milliseconds() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        assert_eq!(iso8601(at).as_deref(), Some("2023-11-14T22:13:20.123Z"));
    }
}
