//! The HTTP edge shared by the API functions (`place-order`, `query`): the error shape,
//! JSON bodies in and out, and the one mapping from domain errors to status codes.
//!
//! Every error response has the same shape:
//! `{"error":{"code":"validation_failed","message":"…","fields":[{"field":"…","message":"…"}],"requestId":"…"}}`

pub mod error;
pub mod request;
pub mod response;

pub use error::ApiError;
pub use lambda_http::http::StatusCode;
pub use lambda_http::{Body, Request, RequestExt, Response};

use lambda_http::http::HeaderValue;

/// Headers no answer should lack (also those of functions that build API Gateway responses
/// themselves, such as the live function).
pub const SECURITY_HEADERS: [(&str, &str); 2] = [
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
];

/// The last step of every API function: an error becomes its response (with the request id,
/// so a client can quote it), and every response gets the headers no answer should lack —
/// `X-Content-Type-Options: nosniff` (a JSON body is never sniffed into HTML) and
/// `Referrer-Policy: no-referrer`.
pub fn finish(request: &Request, result: Result<Response<Body>, ApiError>) -> Response<Body> {
    let mut response = result.unwrap_or_else(|mut error| {
        error.request_id = request::request_id(request);
        error.into_response()
    });
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
