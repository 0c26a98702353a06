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
        let body = self.body();
        let mut builder = Response::builder()
            .status(self.status)
            .header(CONTENT_TYPE, "application/json");
        if let Some(seconds) = self.retry_after {
            builder = builder.header(RETRY_AFTER, seconds.to_string());
        }
        builder.body(Body::Text(body)).expect("a valid response")
    }

    /// The JSON body every error has (also a WebSocket reply's).
    pub fn body(&self) -> String {
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
        serde_json::to_string(&Envelope {
            error: Inner {
                code: self.code,
                message: &self.message,
                fields: &self.fields,
                request_id: self.request_id.as_deref(),
            },
        })
        .expect("error bodies always serialise")
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
            err @ OrderError::NotRetryable(_) => {
                ApiError::new(StatusCode::CONFLICT, "not_retryable", err.to_string())
            }
            // The shape of placement's price_changed: the client reads the order again
            // (or the products) and decides whether to retry at the new total.
            OrderError::TotalChanged {
                expected,
                total,
                lines,
            } => {
                let mut fields = vec![FieldError::new(
                    "expectedTotal",
                    format!(
                        "is {}; the order's total on retry is {}",
                        expected.minor(),
                        total.minor()
                    ),
                )];
                fields.extend(lines.iter().map(|l| {
                    FieldError::new(
                        format!("items[{}].unitPrice", l.line),
                        format!(
                            "was {}; the catalog price of {} is {}",
                            l.unit_price.minor(),
                            l.product_id,
                            l.catalog_price.minor()
                        ),
                    )
                }));
                ApiError {
                    fields,
                    ..ApiError::new(
                        StatusCode::CONFLICT,
                        "price_changed",
                        format!(
                            "the order's total on retry (at the catalog's current prices) is {}, not the expectedTotal {}; nothing changed: retry with the new total to accept it",
                            total.minor(),
                            expected.minor()
                        ),
                    )
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
                        "the service is busy; retry shortly with the same request (a POST with its Idempotency-Key, a batch of events unchanged)",
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
                        "a dependency is unavailable; retry shortly with the same request (a POST with its Idempotency-Key, a batch of events unchanged)",
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
        let (status, json, _) = body(OrderError::NotRetryable("unknown product".into()).into());
        assert_eq!(
            (
                status,
                json["error"]["code"].as_str(),
                json["error"]["message"].as_str()
            ),
            (409, Some("not_retryable"), Some("unknown product"))
        );
        let money = |n| orders_core::Money::from_minor(n).unwrap();
        let (status, json, _) = body(
            OrderError::TotalChanged {
                expected: money(3998),
                total: money(4200),
                lines: vec![orders_core::PriceMismatch {
                    line: 0,
                    product_id: orders_core::ProductId::parse("sku-1").unwrap(),
                    unit_price: money(1999),
                    catalog_price: money(2100),
                }],
            }
            .into(),
        );
        assert_eq!(
            (status, json["error"]["code"].as_str()),
            (409, Some("price_changed"))
        );
        let fields: Vec<&str> = json["error"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["expectedTotal", "items[0].unitPrice"]);
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
