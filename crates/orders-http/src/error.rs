//! [`ApiError`]: what a client sees when a request fails, and the single place where domain
//! errors become HTTP statuses.

use lambda_http::http::StatusCode;
use lambda_http::http::header::{CONTENT_TYPE, RETRY_AFTER};
use lambda_http::{Body, Response};
use orders_core::{FieldError, OrderError};
use serde::Serialize;
use tracing::{error, warn};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: Vec<FieldError>,
    /// Seconds, for 503s the client should retry.
    pub retry_after: Option<u32>,
    /// API Gateway's request id, so a client can quote it (set by [`crate::finish`]).
    pub request_id: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
            retry_after: None,
            request_id: None,
        }
    }

    pub fn validation(fields: Vec<FieldError>) -> Self {
        let message = match fields.as_slice() {
            [one] => format!("{} {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        Self {
            fields,
            ..Self::new(StatusCode::BAD_REQUEST, "validation_failed", message)
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn into_response(self) -> Response<Body> {
        #[derive(Serialize)]
        struct Envelope<'a> {
            error: Inner<'a>,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Inner<'a> {
            code: &'a str,
            message: &'a str,
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            fields: &'a [FieldError],
            #[serde(skip_serializing_if = "Option::is_none")]
            request_id: Option<&'a str>,
        }
        let body = serde_json::to_string(&Envelope {
            error: Inner {
                code: self.code,
                message: &self.message,
                fields: &self.fields,
                request_id: self.request_id.as_deref(),
            },
        })
        .expect("error bodies always serialise");
        let mut builder = Response::builder()
            .status(self.status)
            .header(CONTENT_TYPE, "application/json");
        if let Some(seconds) = self.retry_after {
            builder = builder.header(RETRY_AFTER, seconds.to_string());
        }
        builder.body(Body::Text(body)).expect("a valid response")
    }
}

/// The one mapping from use-case errors to HTTP. Server-side failures are logged here with
/// their full source chain; the client gets a stable code and no internals.
impl From<OrderError> for ApiError {
    fn from(err: OrderError) -> Self {
        match err {
            OrderError::Validation(fields) => ApiError::validation(fields),
            OrderError::NotFound(what) => ApiError::not_found(format!("{what} was not found")),
            OrderError::Forbidden(message) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
            }
            OrderError::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            err @ OrderError::PreconditionFailed { what, .. } => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                format!("{err}; read the {what} again and retry with its ETag"),
            ),
            OrderError::PreconditionRequired(message) => ApiError::new(
                StatusCode::PRECONDITION_REQUIRED,
                "precondition_required",
                message,
            ),
            OrderError::PriceChanged(lines) => {
                let message = format!(
                    "the catalog price of {} line(s) differs from the unitPrice sent; read the products again and resend the order",
                    lines.len()
                );
                ApiError {
                    fields: lines
                        .iter()
                        .map(|l| {
                            FieldError::new(
                                format!("items[{}].unitPrice", l.line),
                                format!(
                                    "is {}; the catalog price of {} is {}",
                                    l.unit_price.minor(),
                                    l.product_id,
                                    l.catalog_price.minor()
                                ),
                            )
                        })
                        .collect(),
                    ..ApiError::new(StatusCode::CONFLICT, "price_changed", message)
                }
            }
            OrderError::IdempotencyKeyReused => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request body; use a new key for a new request",
            ),
            OrderError::Throttled(source) => {
                warn!(error = %source, detail = ?source, "dependency throttled");
                ApiError {
                    retry_after: Some(1),
                    ..ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "throttled",
                        "the service is busy; retry shortly (a POST with the same Idempotency-Key)",
                    )
                }
            }
            OrderError::Unavailable(source) => {
                error!(error = %source, detail = ?source, "dependency unavailable");
                ApiError {
                    retry_after: Some(2),
                    ..ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "a dependency is unavailable; retry shortly (a POST with the same Idempotency-Key)",
                    )
                }
            }
            OrderError::Unexpected(source) => {
                error!(error = %source, detail = ?source, "unexpected error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "something went wrong on our side",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(err: ApiError) -> (u16, serde_json::Value, Option<String>) {
        let response = err.into_response();
        let retry = response
            .headers()
            .get(RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        let Body::Text(text) = response.body() else {
            panic!("text body")
        };
        (
            response.status().as_u16(),
            serde_json::from_str(text).unwrap(),
            retry,
        )
    }

    #[test]
    fn validation_shape_names_fields() {
        let (status, json, _) = body(
            OrderError::Validation(vec![
                FieldError::new("items[0].quantity", "must be between 1 and 10000"),
                FieldError::new("customerId", "is required"),
            ])
            .into(),
        );
        assert_eq!(status, 400);
        assert_eq!(json["error"]["code"], "validation_failed");
        assert_eq!(json["error"]["fields"][0]["field"], "items[0].quantity");
        assert_eq!(json["error"]["fields"][1]["message"], "is required");
    }

    #[test]
    fn statuses() {
        assert_eq!(body(OrderError::NotFound("x".into()).into()).0, 404);
        assert_eq!(body(OrderError::IdempotencyKeyReused.into()).0, 422);
        assert_eq!(body(OrderError::Conflict("no".into()).into()).0, 409);
        let (status, json, _) = body(
            OrderError::PreconditionFailed {
                what: "order",
                current: 3,
            }
            .into(),
        );
        assert_eq!(
            (status, json["error"]["code"].as_str()),
            (412, Some("precondition_failed"))
        );
        let (status, json, _) =
            body(OrderError::PreconditionRequired("send If-Match".into()).into());
        assert_eq!(
            (status, json["error"]["code"].as_str()),
            (428, Some("precondition_required"))
        );
        let (status, json, retry) = body(OrderError::Throttled("slow down".into()).into());
        assert_eq!((status, retry.as_deref()), (503, Some("1")));
        assert_eq!(json["error"]["code"], "throttled");
        assert_eq!(
            body(OrderError::Unavailable("timeout".into()).into()).0,
            503
        );
        let (status, json, _) = body(OrderError::Unexpected("bug".into()).into());
        assert_eq!(status, 500);
        assert!(json["error"].get("fields").is_none());
        assert!(
            !json.to_string().contains("bug"),
            "internals stay in the logs"
        );
    }
}
