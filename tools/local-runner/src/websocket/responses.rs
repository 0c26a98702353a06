//! API Gateway's JSON error answers (`{"message": ...}`), shared by the upgrade handler and
//! the management API.
//!
//! Why: clients and the AWS SDK tell errors apart by status, body and `x-amzn-ErrorType`
//! (e.g. `GoneException`), so the local answers carry all three.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Response, StatusCode, header};

/// `{"message": text}` with `status`, and the error type header when there is one.
pub fn message(status: StatusCode, text: &str, error_type: Option<&'static str>) -> Response<Body> {
    let body = serde_json::json!({ "message": text }).to_string();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(error_type) = error_type {
        response.headers_mut().insert(
            HeaderName::from_static("x-amzn-errortype"),
            HeaderValue::from_static(error_type),
        );
    }
    response
}

/// What API Gateway answers for a stage or path it does not serve.
pub fn forbidden() -> Response<Body> {
    message(
        StatusCode::FORBIDDEN,
        "Forbidden",
        Some("ForbiddenException"),
    )
}

/// The connection is gone (never existed, closed, or deleted).
pub fn gone() -> Response<Body> {
    message(StatusCode::GONE, "Gone", Some("GoneException"))
}
