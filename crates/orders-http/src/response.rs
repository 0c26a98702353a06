//! JSON responses.

use lambda_http::http::StatusCode;
use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::{Body, Response};
use serde::Serialize;

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    raw_json(
        status,
        serde_json::to_string(value).expect("response bodies always serialise"),
    )
}

/// A JSON body that is already serialised (e.g. a stored idempotent response).
pub fn raw_json(status: StatusCode, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .body(Body::Text(body))
        .expect("a valid response")
}
