//! JSON responses.

use lambda_http::http::StatusCode;
use lambda_http::http::header::{CONTENT_TYPE, ETAG};
use lambda_http::{Body, Response};
use serde::Serialize;

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    raw_json(
        status,
        serde_json::to_string(value).expect("response bodies always serialise"),
    )
}

/// A JSON body of something with a version (an order, a product), with `ETag: "<version>"`
/// for `If-Match` on the next change.
pub fn versioned_json<T: Serialize>(status: StatusCode, value: &T, version: u64) -> Response<Body> {
    let mut response = json(status, value);
    response.headers_mut().insert(
        ETAG,
        format!("\"{version}\"")
            .parse()
            .expect("a number is header-safe"),
    );
    response
}

/// A JSON body that is already serialised (e.g. a stored idempotent response).
pub fn raw_json(status: StatusCode, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .body(Body::Text(body))
        .expect("a valid response")
}
