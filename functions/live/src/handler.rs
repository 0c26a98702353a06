//! The entry point: tells an HTTP API event from a WebSocket one, routes, and renders
//! results and errors (through `orders_http::ApiError`, the one error mapping).

use crate::service::LiveService;
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayWebsocketProxyRequest};
use orders_core::ports::LiveConnections;
use orders_http::ApiError;
use orders_http::request::caller_of;
use serde_json::{Value, json};
use tracing::warn;

pub async fn handle<L: LiveConnections>(live: &LiveService<L>, event: Value) -> Value {
    if event["requestContext"]["eventType"].is_string() {
        match serde_json::from_value::<ApiGatewayWebsocketProxyRequest>(event) {
            Ok(event) => socket(live, event).await,
            Err(err) => reply(&bad_event(err)),
        }
    } else {
        match serde_json::from_value::<ApiGatewayV2httpRequest>(event) {
            Ok(event) => http(live, event).await,
            Err(err) => http_response(&bad_event(err)),
        }
    }
}

fn bad_event(err: serde_json::Error) -> ApiError {
    warn!(error = %err, "an event that is not API Gateway's");
    ApiError::from(orders_core::OrderError::Unexpected(
        format!("unreadable event: {err}").into(),
    ))
}

async fn http<L: LiveConnections>(live: &LiveService<L>, event: ApiGatewayV2httpRequest) -> Value {
    let request_id = event.request_context.request_id.clone();
    let result = match event.route_key.as_deref() {
        Some("POST /live/tickets") => {
            let token = event
                .request_context
                .authorizer
                .as_ref()
                .and_then(|a| a.jwt.as_ref());
            match caller_of(token) {
                Ok(caller) => live.issue_ticket(&caller).await.map_err(ApiError::from),
                Err(err) => Err(err),
            }
        }
        other => Err(ApiError::not_found(format!(
            "no such route on live: {}",
            other.unwrap_or("(none)")
        ))),
    };
    match result {
        Ok(issued) => json!({
            "statusCode": 201,
            "headers": headers(),
            "body": serde_json::to_string(&issued).unwrap_or_default(),
            "isBase64Encoded": false,
        }),
        Err(mut err) => {
            err.request_id = request_id;
            http_response(&err)
        }
    }
}

/// The headers every answer of the HTTP API has (`orders_http::finish`), and no caching: a
/// ticket is for one caller, once.
fn headers() -> Value {
    let mut headers = json!({
        "content-type": "application/json",
        "cache-control": "no-store",
    });
    for (name, value) in orders_http::SECURITY_HEADERS {
        headers[name] = json!(value);
    }
    headers
}

fn http_response(err: &ApiError) -> Value {
    let mut headers = headers();
    if let Some(seconds) = err.retry_after {
        headers["retry-after"] = json!(seconds.to_string());
    }
    json!({
        "statusCode": err.status.as_u16(),
        "headers": headers,
        "body": err.body(),
        "isBase64Encoded": false,
    })
}

async fn socket<L: LiveConnections>(
    live: &LiveService<L>,
    event: ApiGatewayWebsocketProxyRequest,
) -> Value {
    let context = &event.request_context;
    let connection = context.connection_id.clone().unwrap_or_default();
    let result: Result<Value, ApiError> = match context.route_key.as_deref() {
        Some("$connect") => {
            let ticket = event.query_string_parameters.first("ticket");
            match live.connect(&connection, ticket).await {
                Ok(Some(_)) => Ok(json!({"type": "connected"})),
                Ok(None) => Err(ApiError::new(
                    http_status(401),
                    "unauthorized",
                    "open the socket with a ticket from POST /live/tickets (single use, valid for a minute)",
                )),
                Err(err) => Err(err.into()),
            }
        }
        Some("$disconnect") => live
            .disconnect(&connection)
            .await
            .map(|()| json!({"type": "disconnected"}))
            .map_err(ApiError::from),
        Some("subscribe") => live
            .subscribe(&connection, event.body.as_deref().unwrap_or(""))
            .await
            .map(|topics| json!({"type": "subscribed", "topics": topics}))
            .map_err(ApiError::from),
        _ => Err(ApiError::new(
            http_status(400),
            "unknown_action",
            "send {\"action\": \"subscribe\", \"topics\": [\"orders\", \"analytics\"]}",
        )),
    };
    match result {
        Ok(body) => json!({"statusCode": 200, "body": body.to_string()}),
        Err(mut err) => {
            err.request_id = context.request_id.clone();
            reply(&err)
        }
    }
}

/// A WebSocket route's answer: for `$connect` its status decides whether the socket opens;
/// for a message with a route response, the body is the frame sent back.
fn reply(err: &ApiError) -> Value {
    json!({"statusCode": err.status.as_u16(), "body": err.body()})
}

fn http_status(code: u16) -> orders_http::StatusCode {
    orders_http::StatusCode::from_u16(code).unwrap_or(orders_http::StatusCode::BAD_REQUEST)
}
