//! The Lambda Runtime API (<https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>),
//! served to one instance.
//!
//! Why: `lambda_runtime` inside the function binaries polls `AWS_LAMBDA_RUNTIME_API` for events
//! and posts results back; implementing that contract lets the unmodified binaries run locally.
//! The handlers here are thin: the queue, deadlines and instance bookkeeping live in
//! [`crate::instances`]. One router is bound per instance so that every call can be attributed
//! to the process that made it.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::watch;
use tracing::warn;

use crate::instances::{CompleteError, FunctionPool, InvokeError};

/// Lambda's synchronous response payload limit.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

#[derive(Clone)]
struct Instance {
    pool: Arc<FunctionPool>,
    id: u64,
    dead: watch::Receiver<bool>,
}

/// Routes of the Runtime API for instance `id` of `pool`.
pub(crate) fn router(pool: Arc<FunctionPool>, id: u64, dead: watch::Receiver<bool>) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{request_id}/response",
            post(response),
        )
        .route(
            "/2018-06-01/runtime/invocation/{request_id}/error",
            post(invocation_error),
        )
        .route("/2018-06-01/runtime/init/error", post(init_error))
        // Accept a bit more than the limit so that oversized payloads get a proper 413 below.
        .layer(DefaultBodyLimit::max(MAX_RESPONSE_BYTES + 1024 * 1024))
        .with_state(Instance { pool, id, dead })
}

async fn next(State(instance): State<Instance>) -> Response {
    let Some(assigned) = instance
        .pool
        .next_invocation(instance.id, instance.dead.clone())
        .await
    else {
        return runtime_error(
            StatusCode::GONE,
            "Runtime.Terminated",
            "this execution environment is shutting down",
        );
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (name, value) in [
        ("lambda-runtime-aws-request-id", assigned.request_id.clone()),
        (
            "lambda-runtime-deadline-ms",
            assigned.deadline_ms.to_string(),
        ),
        (
            "lambda-runtime-invoked-function-arn",
            assigned.function_arn.clone(),
        ),
        ("lambda-runtime-trace-id", trace_id()),
    ] {
        match HeaderValue::from_str(&value) {
            Ok(value) => {
                headers.insert(name, value);
            }
            Err(err) => warn!("cannot send header {name}={value:?}: {err}"),
        }
    }
    (StatusCode::OK, headers, assigned.payload).into_response()
}

async fn response(
    State(instance): State<Instance>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> Response {
    let result = if body.len() > MAX_RESPONSE_BYTES {
        Err(InvokeError::ResponseTooLarge)
    } else if body.iter().all(u8::is_ascii_whitespace) {
        Ok(Value::Null)
    } else {
        serde_json::from_slice(&body).map_err(|e| InvokeError::InvalidResponse(e.to_string()))
    };
    let too_large = matches!(result, Err(InvokeError::ResponseTooLarge));
    match instance.pool.complete(instance.id, &request_id, result) {
        Ok(()) if too_large => runtime_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "response payload exceeds 6291556 bytes",
        ),
        Ok(()) => accepted(),
        Err(err) => complete_error(err),
    }
}

async fn invocation_error(
    State(instance): State<Instance>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (error_type, error_message, payload) = parse_error_document(&headers, &body);
    let error = InvokeError::Function {
        error_type,
        error_message,
        payload,
    };
    match instance.pool.complete(instance.id, &request_id, Err(error)) {
        Ok(()) => accepted(),
        Err(err) => complete_error(err),
    }
}

async fn init_error(State(instance): State<Instance>, headers: HeaderMap, body: Bytes) -> Response {
    let (error_type, error_message, _) = parse_error_document(&headers, &body);
    instance
        .pool
        .init_error(instance.id, error_type, error_message);
    accepted()
}

/// Reads `{"errorMessage","errorType"}` (falling back to `Lambda-Runtime-Function-Error-Type`).
fn parse_error_document(headers: &HeaderMap, body: &[u8]) -> (String, String, Value) {
    let payload: Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
    let header_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok());
    let error_type = payload
        .get("errorType")
        .and_then(Value::as_str)
        .or(header_type)
        .unwrap_or("Unhandled")
        .to_owned();
    let error_message = match payload.get("errorMessage") {
        Some(Value::String(message)) => message.clone(),
        Some(other) => other.to_string(),
        None => payload.as_str().unwrap_or_default().to_owned(),
    };
    (error_type, error_message, payload)
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

fn complete_error(err: CompleteError) -> Response {
    warn!("rejected Runtime API call: {err}");
    runtime_error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestID",
        &err.to_string(),
    )
}

fn runtime_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"errorType": error_type, "errorMessage": message})),
    )
        .into_response()
}

/// An X-Ray style trace header (`Root=1-<epoch hex>-<24 hex>;Parent=<16 hex>;Sampled=0`).
fn trace_id() -> String {
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{epoch:08x}-{};Parent={};Sampled=0",
        &random[..24],
        &random[16..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_document_prefers_body_then_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "lambda-runtime-function-error-type",
            HeaderValue::from_static("FromHeader"),
        );
        let (t, m, _) =
            parse_error_document(&headers, br#"{"errorType":"Boom","errorMessage":"bad"}"#);
        assert_eq!((t.as_str(), m.as_str()), ("Boom", "bad"));
        let (t, m, _) = parse_error_document(&headers, br#"{"errorMessage":"bad"}"#);
        assert_eq!((t.as_str(), m.as_str()), ("FromHeader", "bad"));
        let (t, _, _) = parse_error_document(&HeaderMap::new(), b"not json");
        assert_eq!(t, "Unhandled");
    }

    #[test]
    fn trace_id_has_xray_shape() {
        let id = trace_id();
        assert!(id.starts_with("Root=1-"), "{id}");
        assert!(id.ends_with(";Sampled=0"), "{id}");
        let root = id.split(';').next().unwrap_or_default();
        assert_eq!(root.len(), "Root=1-".len() + 8 + 1 + 24, "{id}");
    }
}
