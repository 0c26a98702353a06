//! HTTP entry point: routes on API Gateway's decision, parses at the edge, and renders
//! results and errors (through `orders_http::ApiError`, the one error mapping).

use crate::service::PlaceOrderService;
use lambda_http::http::StatusCode;
use lambda_http::http::header::LOCATION;
use orders_core::ports::{EventPublisher, IdempotencyStore, OrderStore};
use orders_core::validation::parse_place_order;
use orders_core::{FieldError, IdempotencyKey};
use orders_http::request::{header, json_body, route_key};
use orders_http::{ApiError, Body, Request, Response};

pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

pub async fn handle<S, P, I>(
    service: &PlaceOrderService<S, P, I>,
    request: Request,
) -> Response<Body>
where
    S: OrderStore,
    P: EventPublisher,
    I: IdempotencyStore,
{
    let result = match route_key(&request).as_deref() {
        Some("POST /orders") => post_order(service, &request).await,
        other => Err(ApiError::not_found(format!(
            "no such route on place-order: {}",
            other.unwrap_or("(none)")
        ))),
    };
    result.unwrap_or_else(ApiError::into_response)
}

async fn post_order<S, P, I>(
    service: &PlaceOrderService<S, P, I>,
    request: &Request,
) -> Result<Response<Body>, ApiError>
where
    S: OrderStore,
    P: EventPublisher,
    I: IdempotencyStore,
{
    let key = match header(request, IDEMPOTENCY_KEY_HEADER) {
        None => None,
        Some(value) => Some(
            value
                .ok()
                .and_then(|v| IdempotencyKey::parse(v).ok())
                .ok_or_else(|| {
                    ApiError::validation(vec![FieldError::new(
                        "Idempotency-Key",
                        "must be 1 to 128 visible ASCII characters (a UUID is a good choice)",
                    )])
                })?,
        ),
    };
    let body = json_body(request)?;
    let command = parse_place_order(&body, &service.currency).map_err(ApiError::validation)?;
    let placed = service.place(command, key).await?;

    let status = StatusCode::from_u16(placed.status).unwrap_or(StatusCode::CREATED);
    let mut response = orders_http::response::raw_json(status, placed.body);
    let headers = response.headers_mut();
    headers.insert(
        LOCATION,
        format!("/orders/{}", placed.order_id)
            .parse()
            .expect("order ids are header-safe"),
    );
    if placed.replayed {
        headers.insert(
            "idempotent-replayed",
            "true".parse().expect("static header"),
        );
    }
    Ok(response)
}
