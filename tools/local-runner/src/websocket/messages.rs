//! One message from a client: route selection, the route's function, the route response.
//!
//! Why: API Gateway handles each message on its own — select the route from the body, invoke
//! its integration, send the integration's response back only on a two-way route, and answer
//! with its error frames (`Forbidden`, `Internal server error`) otherwise. Every message runs
//! in its own task, so a slow function does not hold up the connection.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{Message, Utf8Bytes};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde_json::Value;
use time::OffsetDateTime;
use tracing::{error, info, warn};

use crate::websocket::connections::ConnectionHandle;
use crate::websocket::event::{Invocation, message_event};
use crate::websocket::gateway::WsGateway;
use crate::websocket::ids::new_id;
use crate::websocket::route_selection::select_route;

/// Routes one message, invokes its function, and sends the route response or API Gateway's
/// error frame.
pub async fn handle_message(gateway: Arc<WsGateway>, connection: ConnectionHandle, message: Bytes) {
    let started = Instant::now();
    let request_id = new_id();
    let connection_id = connection.info.connection_id.as_str();
    let Some((route_key, route)) =
        select_route(&gateway.api.routes, &gateway.api.route_selection, &message)
    else {
        info!(connection_id, request_id, "no route for the message");
        connection
            .send(error_frame("Forbidden", connection_id, &request_id))
            .await;
        return;
    };
    let message_id = new_id();
    let invocation = Invocation {
        api_id: &gateway.api.api_id,
        request_id: &request_id,
        now: OffsetDateTime::now_utc(),
    };
    let result = match message_event(
        &connection.info,
        route_key,
        &message_id,
        &message,
        &invocation,
    ) {
        Ok(event) => gateway.invoke(route, &event).await,
        Err(err) => {
            error!(
                connection_id,
                route = route_key,
                "could not build the event: {err:#}"
            );
            connection
                .send(error_frame(
                    "Internal server error",
                    connection_id,
                    &request_id,
                ))
                .await;
            return;
        }
    };
    match result {
        Ok(result) => {
            let reply = route
                .is_two_way()
                .then(|| route_response(&result))
                .flatten();
            let replied = reply.is_some();
            if let Some(reply) = reply {
                connection.send(reply).await;
            }
            info!(
                connection_id,
                route = route_key,
                request_id,
                replied,
                duration_ms = started.elapsed().as_millis() as u64,
                "message"
            );
        }
        Err(err) => {
            error!(
                connection_id,
                route = route_key,
                request_id,
                error_type = err.error_type(),
                "integration failed: {err}"
            );
            connection
                .send(error_frame(
                    err.client_message(),
                    connection_id,
                    &request_id,
                ))
                .await;
        }
    }
}

/// The frame a two-way route sends back: the proxy result's `body` (binary when
/// `isBase64Encoded`), or the result itself when it is a string.
fn route_response(result: &Value) -> Option<Message> {
    if let Value::String(text) = result {
        return Some(Message::Text(Utf8Bytes::from(text.clone())));
    }
    let body = result.get("body")?;
    let is_base64 = result
        .get("isBase64Encoded")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match body {
        Value::Null => None,
        Value::String(text) if is_base64 => match BASE64.decode(text) {
            Ok(data) => Some(Message::Binary(Bytes::from(data))),
            Err(err) => {
                warn!("route response body is not valid base64: {err}");
                None
            }
        },
        Value::String(text) => Some(Message::Text(Utf8Bytes::from(text.clone()))),
        other => Some(Message::Text(Utf8Bytes::from(other.to_string()))),
    }
}

/// API Gateway's error frame: `{"message", "connectionId", "requestId"}`.
fn error_frame(text: &str, connection_id: &str, request_id: &str) -> Message {
    let body = serde_json::json!({
        "message": text,
        "connectionId": connection_id,
        "requestId": request_id,
    });
    Message::Text(Utf8Bytes::from(body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_responses_are_the_body_or_the_string() {
        let text = |m: Option<Message>| match m {
            Some(Message::Text(t)) => Some(t.as_str().to_owned()),
            _ => None,
        };
        assert_eq!(
            text(route_response(
                &serde_json::json!({"statusCode": 200, "body": "hi"})
            )),
            Some("hi".to_owned())
        );
        assert_eq!(
            text(route_response(&serde_json::json!("plain"))),
            Some("plain".to_owned())
        );
        assert!(route_response(&serde_json::json!({"statusCode": 200})).is_none());
        assert!(matches!(
            route_response(&serde_json::json!({"body": "AAE=", "isBase64Encoded": true})),
            Some(Message::Binary(data)) if data.as_ref() == [0u8, 1]
        ));
    }
}
