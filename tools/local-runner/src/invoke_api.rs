//! Lambda's Invoke API for the functions this runner runs: `POST
//! /2015-03-31/functions/{name}/invocations` (RequestResponse), on a listener of its own
//! (127.0.0.1 only). Tools that invoke a function on AWS — `orders-admin dlq replay` hands a
//! dead-lettered batch back to the consumer that failed it — do the same locally with
//! `AWS_ENDPOINT_URL_LAMBDA` pointing here.

use crate::instances::{InvokeError, Runtime};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{Response, StatusCode, header};
use axum::routing::post;
use serde_json::{Value, json};
use std::future::Future;

/// Serves the Invoke API of `runtime` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    runtime: Runtime,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/2015-03-31/functions/{name}/invocations", post(invoke))
        .with_state(runtime);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

async fn invoke(
    State(runtime): State<Runtime>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response<Body> {
    let payload: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(payload) => payload,
            Err(err) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContentException",
                    &format!("Could not parse request body into json: {err}"),
                );
            }
        }
    };
    let Some(function) = runtime.resolve(&name).map(|f| f.name.clone()) else {
        return error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {name}"),
        );
    };
    match runtime.invoke(&function, &payload).await {
        Ok(result) => json(StatusCode::OK, &result, None),
        // As Lambda answers a failed invocation: 200, the error document, and the header.
        Err(InvokeError::Function { payload, .. }) => {
            json(StatusCode::OK, &payload, Some("Unhandled"))
        }
        Err(InvokeError::UnknownFunction(name)) => error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not runnable here: {name}"),
        ),
        Err(other) => json(
            StatusCode::OK,
            &json!({"errorType": "Runtime.Error", "errorMessage": other.to_string()}),
            Some("Unhandled"),
        ),
    }
}

fn json(status: StatusCode, body: &Value, function_error: Option<&str>) -> Response<Body> {
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(kind) = function_error {
        response = response.header("x-amz-function-error", kind);
    }
    response
        .body(Body::from(body.to_string()))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    let mut response = json(status, &json!({ "Type": "User", "message": message }), None);
    if let Ok(value) = kind.parse() {
        response.headers_mut().insert("x-amzn-errortype", value);
    }
    response
}
