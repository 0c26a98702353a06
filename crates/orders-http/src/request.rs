//! Reading requests: JSON bodies within limits, headers, and the API Gateway route.

use crate::ApiError;
use lambda_http::aws_lambda_events::apigw::ApiGatewayRequestAuthorizerJwtDescription;
use lambda_http::http::StatusCode;
use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};
use orders_core::Caller;
use serde_json::Value;

/// Largest request body accepted. Orders top out far below this (99 lines); the cap stops
/// a client from making us parse megabytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The body as JSON, after the checks a client can get wrong: size (413, over
/// [`MAX_BODY_BYTES`]), content type (415), syntax (400).
pub fn json_body(request: &Request) -> Result<Value, ApiError> {
    json_body_within(request, MAX_BODY_BYTES)
}

/// [`json_body`] with a route's own size limit (a batch route takes more than one order).
pub fn json_body_within(request: &Request, max_bytes: usize) -> Result<Value, ApiError> {
    let bytes: &[u8] = match request.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    if bytes.len() > max_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the body is {} bytes; the limit is {max_bytes}",
                bytes.len()
            ),
        ));
    }
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !is_json_media_type(content_type) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ));
    }
    if bytes.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the body is empty; send a JSON object",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {e}"),
        )
    })
}

/// `application/json` or a `+json` suffix type, with any parameters (`; charset=utf-8`).
fn is_json_media_type(value: &str) -> bool {
    let media_type = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media_type == "application/json"
        || (media_type.starts_with("application/") && media_type.ends_with("+json"))
}

/// A header as text, if present and visible ASCII.
pub fn header<'a>(request: &'a Request, name: &str) -> Option<Result<&'a str, ()>> {
    request
        .headers()
        .get(name)
        .map(|v| v.to_str().map_err(|_| ()))
}

/// The API Gateway route that matched (`"GET /orders/{orderId}"`): the gateway already did
/// the routing, so the function dispatches on its decision instead of re-parsing paths.
pub fn route_key(request: &Request) -> Option<String> {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.route_key.clone(),
        _ => None,
    }
}

/// API Gateway's id of this request (also in its access log and the `apigw-requestid`
/// header), for error bodies: a client quoting it finds the request in the logs.
pub fn request_id(request: &Request) -> Option<String> {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        _ => None,
    }
}

/// The JWT API Gateway's authorizer accepted (it verified the signature, issuer, audience
/// and expiry before invoking us); `None` on a route without an authorizer.
fn jwt(request: &Request) -> Option<&ApiGatewayRequestAuthorizerJwtDescription> {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => {
            context.authorizer.as_ref().and_then(|a| a.jwt.as_ref())
        }
        _ => None,
    }
}

/// The token's subject (`sub`).
pub fn subject(request: &Request) -> Option<String> {
    jwt(request)
        .and_then(|jwt| jwt.claims.get("sub"))
        .filter(|sub| !sub.is_empty())
        .cloned()
}

/// Who is calling, from the token's subject, scopes (the `scopes` API Gateway passes, else
/// the token's `scope` claim) and groups (`cognito:groups`, where the issuer sets it).
pub fn caller(request: &Request) -> Result<Caller, ApiError> {
    caller_of(jwt(request))
}

/// [`caller`] from the authorizer's part of an API Gateway event, for functions that read
/// the event themselves (the live function serves HTTP and WebSocket events).
pub fn caller_of(
    token: Option<&ApiGatewayRequestAuthorizerJwtDescription>,
) -> Result<Caller, ApiError> {
    let Some(token) = token else {
        return Ok(Caller::Anonymous);
    };
    let scopes: Vec<&str> = match &token.scopes {
        Some(scopes) => scopes.iter().map(String::as_str).collect(),
        None => token
            .claims
            .get("scope")
            .map(|s| s.split_whitespace().collect())
            .unwrap_or_default(),
    };
    // API Gateway passes a list claim as text: `[staff buyers]`.
    let groups: Option<Vec<&str>> = token.claims.get("cognito:groups").map(|g| {
        g.trim_start_matches('[')
            .trim_end_matches(']')
            .split_whitespace()
            .collect()
    });
    let subject = token.claims.get("sub").map(String::as_str);
    Ok(Caller::from_token(
        subject.or(Some("")),
        &scopes,
        groups.as_deref(),
    )?)
}

pub fn path_parameter(request: &Request, name: &str) -> Option<String> {
    request
        .path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_owned)
}

/// Query-string parameters as `(name, value)` pairs, repeated names included.
pub fn query_pairs(request: &Request) -> Vec<(String, String)> {
    let params = request.query_string_parameters();
    let mut pairs = Vec::new();
    for (name, _) in params.iter() {
        for value in params.all(name).unwrap_or_default() {
            pairs.push((name.to_owned(), value.to_owned()));
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
        ] {
            assert!(is_json_media_type(ok), "{ok}");
        }
        for bad in [
            "",
            "text/plain",
            "application/x-www-form-urlencoded",
            "text/json",
        ] {
            assert!(!is_json_media_type(bad), "{bad}");
        }
    }
}
