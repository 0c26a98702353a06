//! One client connection, from the upgrade request to `$disconnect`.
//!
//! Why: API Gateway runs `$connect` *before* it completes the upgrade (a refusal is a plain
//! HTTP answer), routes every message on its own (a slow function does not hold up the next
//! message), enforces its size and time limits, and tells `$disconnect` once how the
//! connection ended. One task per connection owns the socket; message handlers
//! ([`crate::websocket::messages`]) and the management API reach it through its channel (see
//! [`crate::websocket::connections`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode, Uri, header};
use axum::response::IntoResponse as _;
use bytes::Bytes;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::websocket::api::{CONNECT_ROUTE, DISCONNECT_ROUTE};
use crate::websocket::connections::{Activity, ConnectionHandle, ConnectionInfo, Outbound};
use crate::websocket::event::{Invocation, connect_event, disconnect_event};
use crate::websocket::gateway::{TaskGuard, WsGateway};
use crate::websocket::ids::new_id;
use crate::websocket::messages;
use crate::websocket::responses;

/// Frames waiting for a connection's socket task (backpressure for `@connections` posts).
const OUTBOUND_QUEUE: usize = 64;
/// How long a closing connection waits for the client's close frame.
const CLOSE_HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(1);

/// `GET /{stage}` with an upgrade: runs `$connect`, then completes the upgrade or refuses it.
pub async fn upgrade(
    State(gateway): State<Arc<WsGateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(stage): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response<Body> {
    if !gateway.api.has_stage(&stage) {
        return responses::forbidden();
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let started = Instant::now();
    let header = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let connection = Arc::new(ConnectionInfo {
        connection_id: new_id(),
        stage,
        domain_name: header(header::HOST).unwrap_or_else(|| "127.0.0.1".to_owned()),
        source_ip: peer.ip().to_string(),
        user_agent: header(header::USER_AGENT),
        connected_at: OffsetDateTime::now_utc(),
    });
    let task = gateway.task_started();

    let accepted = match gateway.api.routes.get(CONNECT_ROUTE) {
        // No `$connect` route: every connection is accepted.
        None => Ok(None),
        Some(route) => {
            let request_id = new_id();
            let invocation = Invocation {
                api_id: &gateway.api.api_id,
                request_id: &request_id,
                now: connection.connected_at,
            };
            match connect_event(&connection, &headers, uri.query(), &invocation) {
                Err(err) => {
                    error!(connection_id = %connection.connection_id, "could not build the $connect event: {err:#}");
                    Err(Refusal::internal_error())
                }
                Ok(event) => match gateway.invoke(route, &event).await {
                    Ok(result) => connect_verdict(&result).map(Some),
                    Err(err) => {
                        error!(connection_id = %connection.connection_id, error_type = err.error_type(), "$connect failed: {err}");
                        Err(Refusal::message(err.status(), err.client_message()))
                    }
                },
            }
        }
    };
    let connect_result = match accepted {
        Ok(result) => result,
        Err(refusal) => {
            info!(
                connection_id = %connection.connection_id,
                status = refusal.status.as_u16(),
                duration_ms = started.elapsed().as_millis() as u64,
                "connection refused by $connect"
            );
            return refusal.into_response();
        }
    };

    let mut upgrade = upgrade
        .max_message_size(gateway.limits.max_message_bytes)
        .max_frame_size(gateway.limits.max_frame_bytes);
    // A subprotocol is accepted by `$connect` answering with it, as on API Gateway.
    if let Some(protocol) = connect_result
        .as_ref()
        .and_then(|r| response_header(r, "sec-websocket-protocol"))
        .and_then(|p| HeaderValue::from_str(&p).ok())
    {
        upgrade.set_selected_protocol(protocol);
    }
    info!(
        connection_id = %connection.connection_id,
        stage = %connection.stage,
        source_ip = %connection.source_ip,
        duration_ms = started.elapsed().as_millis() as u64,
        "connection accepted"
    );
    let failed = (Arc::clone(&gateway), Arc::clone(&connection));
    upgrade
        .on_failed_upgrade(move |err| {
            let (gateway, connection) = failed;
            warn!(connection_id = %connection.connection_id, "upgrade failed after $connect: {err}");
            let task = gateway.task_started();
            tokio::spawn(async move {
                disconnect(&gateway, &connection, close_code::ABNORMAL, "Upgrade failed").await;
                drop(task);
            });
        })
        .on_upgrade(move |socket| run(socket, gateway, connection, task))
}

/// API Gateway's answer instead of the upgrade when `$connect` does not accept.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    /// The function's `body`, or API Gateway's `{"message": ...}`.
    body: String,
    is_json_message: bool,
}

impl Refusal {
    fn message(status: StatusCode, text: &str) -> Self {
        Self {
            status,
            body: serde_json::json!({ "message": text }).to_string(),
            is_json_message: true,
        }
    }

    fn internal_error() -> Self {
        Self::message(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    }

    fn into_response(self) -> Response<Body> {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        if self.is_json_message {
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        response
    }
}

/// `Ok(result)` if `$connect` accepted the connection (no `statusCode`, or a 2xx one);
/// otherwise the refusal: that status, with the function's body or `{"message": ...}`.
fn connect_verdict(result: &Value) -> Result<Value, Refusal> {
    let status = match result.get("statusCode") {
        None | Some(Value::Null) => return Ok(result.clone()),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    }
    .and_then(|code| u16::try_from(code).ok())
    .and_then(|code| StatusCode::from_u16(code).ok());
    let Some(status) = status else {
        error!(status = %result["statusCode"], "$connect returned an invalid statusCode");
        return Err(Refusal::internal_error());
    };
    if status.is_success() {
        return Ok(result.clone());
    }
    match result.get("body").and_then(Value::as_str) {
        Some(body) => Err(Refusal {
            status,
            body: body.to_owned(),
            is_json_message: false,
        }),
        None => Err(Refusal::message(
            status,
            status.canonical_reason().unwrap_or("Forbidden"),
        )),
    }
}

/// A header of a proxy result, by case-insensitive name.
fn response_header(result: &Value, name: &str) -> Option<String> {
    result
        .get("headers")?
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .and_then(|(_, value)| value.as_str())
        .map(str::to_owned)
}

/// How a connection ended: what `$disconnect` is told, and the close frame the server sends
/// (none when the client closed or vanished).
struct Ending {
    status_code: u16,
    reason: String,
    server_close: bool,
}

impl Ending {
    fn by_server(status_code: u16, reason: &str) -> Self {
        Self {
            status_code,
            reason: reason.to_owned(),
            server_close: true,
        }
    }

    fn by_client(frame: Option<CloseFrame>) -> Self {
        let (status_code, reason) = match frame {
            Some(frame) => (frame.code, frame.reason.as_str().to_owned()),
            None => (
                close_code::STATUS,
                "Client-side close frame status not set".to_owned(),
            ),
        };
        Self {
            status_code,
            reason,
            server_close: false,
        }
    }

    fn abnormal() -> Self {
        Self {
            status_code: close_code::ABNORMAL,
            reason: "Connection closed abnormally".to_owned(),
            server_close: false,
        }
    }
}

/// The connection's task: frames in, frames out, limits, then `$disconnect`.
async fn run(
    mut socket: WebSocket,
    gateway: Arc<WsGateway>,
    connection: Arc<ConnectionInfo>,
    task: TaskGuard,
) {
    let (outbound, mut requests) = mpsc::channel(OUTBOUND_QUEUE);
    let activity = Arc::new(Activity::new(connection.connected_at));
    let handle = ConnectionHandle::new(Arc::clone(&connection), Arc::clone(&activity), outbound);
    gateway.connections.insert(handle.clone());
    let connection_id = connection.connection_id.as_str();

    let limits = gateway.limits.clone();
    let closes_at = tokio::time::Instant::now() + limits.max_connection_duration;
    let idle = tokio::time::sleep(limits.idle_timeout);
    tokio::pin!(idle);
    let mut shutdown = gateway.shutdown_signal();
    let stopping = *shutdown.borrow_and_update();

    let ending = if stopping {
        Ending::by_server(close_code::AWAY, "Going away")
    } else {
        loop {
            tokio::select! {
                received = socket.recv() => {
                    let message = match received {
                        None => break Ending::abnormal(),
                        Some(Err(err)) if is_too_large(&err) => {
                            info!(connection_id, "message over the size limit: {err}");
                            break Ending::by_server(close_code::SIZE, "Message too big");
                        }
                        Some(Err(err)) => {
                            info!(connection_id, "connection lost: {err}");
                            break Ending::abnormal();
                        }
                        Some(Ok(message)) => message,
                    };
                    activity.touch();
                    idle.as_mut().reset(tokio::time::Instant::now() + limits.idle_timeout);
                    let data = match message {
                        Message::Text(text) => Bytes::from(text),
                        Message::Binary(data) => data,
                        Message::Ping(_) | Message::Pong(_) => continue,
                        Message::Close(frame) => break Ending::by_client(frame),
                    };
                    tokio::spawn(messages::handle_message(Arc::clone(&gateway), handle.clone(), data));
                }
                request = requests.recv() => match request {
                    Some(Outbound::Frame { message, written }) => {
                        let sent = socket.send(message).await.is_ok();
                        let _ = written.send(sent);
                        if !sent {
                            break Ending::abnormal();
                        }
                        activity.touch();
                        idle.as_mut().reset(tokio::time::Instant::now() + limits.idle_timeout);
                    }
                    Some(Outbound::Close) | None => {
                        break Ending::by_server(close_code::NORMAL, "Connection deleted");
                    }
                },
                () = &mut idle => break Ending::by_server(close_code::AWAY, "Going away"),
                () = tokio::time::sleep_until(closes_at) => {
                    break Ending::by_server(close_code::AWAY, "Going away");
                }
                _ = shutdown.changed() => break Ending::by_server(close_code::AWAY, "Going away"),
            }
        }
    };

    // Gone for everyone from here on: posts get 410 while `$disconnect` runs.
    gateway.connections.remove(connection_id);
    requests.close();
    while let Ok(request) = requests.try_recv() {
        if let Outbound::Frame { written, .. } = request {
            let _ = written.send(false);
        }
    }
    drop(handle);
    if ending.server_close {
        let frame = CloseFrame {
            code: ending.status_code,
            reason: Utf8Bytes::from(ending.reason.clone()),
        };
        let _ = socket.send(Message::Close(Some(frame))).await;
    }
    // Completes the close handshake (sends the reply to a client's close frame).
    let _ = tokio::time::timeout(CLOSE_HANDSHAKE, async {
        while let Some(Ok(_)) = socket.recv().await {}
    })
    .await;
    drop(socket);
    info!(
        connection_id,
        status_code = ending.status_code,
        reason = %ending.reason,
        "connection closed"
    );
    disconnect(&gateway, &connection, ending.status_code, &ending.reason).await;
    drop(task);
}

/// Whether a read failed because a message or frame exceeded the limits (→ 1009).
fn is_too_large(err: &axum::Error) -> bool {
    std::error::Error::source(err)
        .and_then(|source| source.downcast_ref::<tungstenite::Error>())
        .is_some_and(|err| matches!(err, tungstenite::Error::Capacity(_)))
}

/// Invokes `$disconnect` (if the API has one), best-effort: its result is only logged.
async fn disconnect(
    gateway: &WsGateway,
    connection: &ConnectionInfo,
    status_code: u16,
    reason: &str,
) {
    let Some(route) = gateway.api.routes.get(DISCONNECT_ROUTE) else {
        return;
    };
    let request_id = new_id();
    let invocation = Invocation {
        api_id: &gateway.api.api_id,
        request_id: &request_id,
        now: OffsetDateTime::now_utc(),
    };
    let connection_id = connection.connection_id.as_str();
    let event = match disconnect_event(connection, status_code, reason, &invocation) {
        Ok(event) => event,
        Err(err) => {
            error!(
                connection_id,
                "could not build the $disconnect event: {err:#}"
            );
            return;
        }
    };
    if let Err(err) = gateway.invoke(route, &event).await {
        warn!(
            connection_id,
            error_type = err.error_type(),
            "$disconnect failed: {err}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_refusals_carry_the_functions_status() {
        assert!(connect_verdict(&serde_json::json!({"statusCode": 200})).is_ok());
        assert!(connect_verdict(&serde_json::json!({"statusCode": "204"})).is_ok());
        assert!(connect_verdict(&serde_json::json!(null)).is_ok());
        assert!(connect_verdict(&serde_json::json!({"ok": true})).is_ok());
        let refused = connect_verdict(&serde_json::json!({"statusCode": 403})).unwrap_err();
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert_eq!(refused.body, r#"{"message":"Forbidden"}"#);
        let refused =
            connect_verdict(&serde_json::json!({"statusCode": 401, "body": "no"})).unwrap_err();
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert_eq!(refused.body, "no");
        let broken = connect_verdict(&serde_json::json!({"statusCode": "x"})).unwrap_err();
        assert_eq!(broken.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
