//! HTTP entry point: routes on API Gateway's decision, parses at the edge, and renders
//! results and errors (through `orders_http::ApiError`, the one error mapping).

use crate::activity::ActivityService;
use crate::commands::{CommandService, Keyed};
use crate::service::PlaceOrderService;
use lambda_http::http::StatusCode;
use lambda_http::http::header::{IF_MATCH, LOCATION};
use orders_aws::telemetry::metric;
use orders_core::ports::{ActivityPublisher, Catalog, IdempotencyStore, OrderCommands, OrderStore};
use orders_core::validation::parse_place_order_for;
use orders_core::{
    Caller, FieldError, IdempotencyKey, Order, OrderId, OrderStatus, ProductId, PutProduct,
    RetryOrder, StockAdjustment,
};
use orders_http::request::{
    caller, header, json_body, json_body_within, path_parameter, route_key, subject,
};
use orders_http::response::{raw_json, versioned_json};
use orders_http::{ApiError, Body, Request, Response};

pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// Everything the command side serves.
pub struct App<S, I, C, K, P> {
    pub place: PlaceOrderService<S, I, K>,
    pub commands: CommandService<C, K>,
    pub activity: ActivityService<P>,
}

pub async fn handle<S, I, C, K, P>(app: &App<S, I, C, K, P>, request: Request) -> Response<Body>
where
    S: OrderStore,
    I: IdempotencyStore,
    C: OrderCommands,
    K: Catalog,
    P: ActivityPublisher,
{
    let result = match route_key(&request).as_deref() {
        Some("POST /orders") => post_order(&app.place, &request).await.inspect_err(|e| {
            metrics::counter!(metric::ORDERS_REJECTED, "reason" => e.code).increment(1);
        }),
        Some("DELETE /orders/{orderId}") => cancel_order(&app.commands, &request).await,
        Some("POST /orders/{orderId}/retry") => retry_order(app, &request).await,
        Some("PATCH /orders/{orderId}") => patch_order(&app.commands, &request).await,
        Some("PUT /products/{productId}") => put_product(&app.commands, &request).await,
        Some("POST /products/{productId}/stock") => adjust_stock(&app.commands, &request).await,
        Some("POST /events") => post_events(&app.activity, &request).await,
        other => Err(ApiError::not_found(format!(
            "no such route on place-order: {}",
            other.unwrap_or("(none)")
        ))),
    };
    orders_http::finish(&request, result)
}

fn order_id(request: &Request) -> Result<OrderId, ApiError> {
    let raw = path_parameter(request, "orderId").unwrap_or_default();
    OrderId::parse(&raw).map_err(|e| ApiError::validation(vec![FieldError::new("orderId", e.0)]))
}

/// `If-Match: "3"` (also `W/"3"` or `3`); `*` matches any version. A value that is not a
/// version we could have issued can never match, so it is a 412 rather than a 400.
fn if_match(request: &Request) -> Result<Option<u64>, ApiError> {
    let Some(value) = header(request, IF_MATCH.as_str()) else {
        return Ok(None);
    };
    let value = value.unwrap_or("").trim();
    if value == "*" {
        return Ok(None);
    }
    let tag = value.trim_start_matches("W/").trim_matches('"');
    tag.parse::<u64>().map(Some).map_err(|_| {
        ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            "If-Match names no version this API issued; send the ETag of a GET, e.g. \"3\"",
        )
    })
}

/// The `Idempotency-Key` header, if sent.
fn idempotency_key(request: &Request) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = header(request, IDEMPOTENCY_KEY_HEADER) else {
        return Ok(None);
    };
    value
        .ok()
        .and_then(|v| IdempotencyKey::parse(v).ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::validation(vec![FieldError::new(
                "Idempotency-Key",
                "must be 1 to 128 visible ASCII characters (a UUID is a good choice)",
            )])
        })
}

fn product_id(request: &Request) -> Result<ProductId, ApiError> {
    let raw = path_parameter(request, "productId").unwrap_or_default();
    ProductId::parse(&raw)
        .map_err(|e| ApiError::validation(vec![FieldError::new("productId", e.0)]))
}

fn order_response(order: &Order) -> Response<Body> {
    versioned_json(StatusCode::OK, order, order.version)
}

/// Largest `POST /events` body: 500 events of ~2 KB (a checkout naming a large cart is
/// several KB, a view ~200 bytes), far inside Lambda's 6 MB request payload.
pub const MAX_EVENTS_BODY_BYTES: usize = 1024 * 1024;

/// `POST /events`: `202 {"accepted": n}` once every event is on the activity stream.
async fn post_events<P: ActivityPublisher>(
    activity: &ActivityService<P>,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let caller = caller(request)?;
    let body = json_body_within(request, MAX_EVENTS_BODY_BYTES)?;
    let accepted = activity.accept(&body, &caller).await?;
    Ok(raw_json(
        StatusCode::ACCEPTED,
        serde_json::json!({ "accepted": accepted }).to_string(),
    ))
}

async fn cancel_order<C: OrderCommands, K: Catalog>(
    commands: &CommandService<C, K>,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let id = order_id(request)?;
    let caller = caller(request)?;
    let order = commands
        .change_status(&id, OrderStatus::Cancelled, if_match(request)?, &caller)
        .await?;
    Ok(order_response(&order))
}

/// `POST /orders/{orderId}/retry`, with an optional body (`{"expectedTotal": 4498}`): an
/// empty one needs no `Content-Type`.
async fn retry_order<S, I, C, K, P>(
    app: &App<S, I, C, K, P>,
    request: &Request,
) -> Result<Response<Body>, ApiError>
where
    I: IdempotencyStore,
    C: OrderCommands,
    K: Catalog,
{
    let key = idempotency_key(request)?;
    let caller = caller(request)?;
    let id = order_id(request)?;
    let body = match request.body() {
        Body::Empty => None,
        Body::Text(text) if text.is_empty() => None,
        Body::Binary(bytes) if bytes.is_empty() => None,
        _ => Some(json_body(request)?),
    };
    let retry = RetryOrder::parse(body.as_ref()).map_err(ApiError::validation)?;
    let keyed = key.map(|k| Keyed {
        store: &app.place.idempotency,
        // Keys are the caller's, as for placement.
        key: k.for_caller(subject(request).as_deref()),
        ttl_seconds: app.place.idempotency_ttl_seconds,
    });
    let retried = app
        .commands
        .retry(&id, retry, if_match(request)?, &caller, keyed)
        .await?;
    let mut response = raw_json(StatusCode::OK, retried.body);
    let headers = response.headers_mut();
    headers.insert(
        lambda_http::http::header::ETAG,
        format!("\"{}\"", retried.version)
            .parse()
            .expect("a number is header-safe"),
    );
    if retried.replayed {
        headers.insert(
            "idempotent-replayed",
            "true".parse().expect("static header"),
        );
    }
    Ok(response)
}

async fn patch_order<C: OrderCommands, K: Catalog>(
    commands: &CommandService<C, K>,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let caller = caller(request)?;
    caller.require_staff("shipping and delivering orders")?;
    let id = order_id(request)?;
    let body = json_body(request)?;
    let Some(object) = body.as_object() else {
        return Err(ApiError::validation(vec![FieldError::new(
            "$",
            "the body must be a JSON object",
        )]));
    };
    let mut fields: Vec<FieldError> = object
        .keys()
        .filter(|k| k.as_str() != "status")
        .map(|k| {
            FieldError::new(
                k.clone(),
                "is not a known field (only status can be changed)",
            )
        })
        .collect();
    let status = object
        .get("status")
        .and_then(|s| s.as_str())
        .and_then(|s| s.parse::<OrderStatus>().ok());
    if status.is_none() {
        fields.push(FieldError::new(
            "status",
            "must be one of PENDING, PROCESSED, FAILED, SHIPPED, DELIVERED, CANCELLED",
        ));
    }
    match status {
        Some(status) if fields.is_empty() => {
            let order = commands
                .change_status(&id, status, if_match(request)?, &caller)
                .await?;
            Ok(order_response(&order))
        }
        _ => Err(ApiError::validation(fields)),
    }
}

async fn put_product<C: OrderCommands, K: Catalog>(
    commands: &CommandService<C, K>,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    caller(request)?.require_staff("the catalog")?;
    let id = product_id(request)?;
    let body = PutProduct::parse(&json_body(request)?).map_err(ApiError::validation)?;
    let (product, created) = commands.put_product(id, body, if_match(request)?).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = versioned_json(status, &product, product.version);
    response.headers_mut().insert(
        LOCATION,
        format!("/products/{}", product.product_id)
            .parse()
            .expect("product ids are header-safe"),
    );
    Ok(response)
}

async fn adjust_stock<C: OrderCommands, K: Catalog>(
    commands: &CommandService<C, K>,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    caller(request)?.require_staff("the catalog")?;
    let id = product_id(request)?;
    let change = StockAdjustment::parse(&json_body(request)?).map_err(ApiError::validation)?;
    let product = commands.adjust_stock(&id, change).await?;
    Ok(versioned_json(StatusCode::OK, &product, product.version))
}

async fn post_order<S, I, K>(
    service: &PlaceOrderService<S, I, K>,
    request: &Request,
) -> Result<Response<Body>, ApiError>
where
    S: OrderStore,
    I: IdempotencyStore,
    K: Catalog,
{
    let key = idempotency_key(request)?;
    let caller = caller(request)?;
    let me = match &caller {
        Caller::Customer(me) => Some(me),
        _ => None,
    };
    let body = json_body(request)?;
    let command =
        parse_place_order_for(&body, &service.currency, me).map_err(ApiError::validation)?;
    caller.orderer(Some(command.customer_id.clone()))?;
    // Keys are the caller's: another caller's identical key neither replays nor blocks.
    let key = key.map(|k| k.for_caller(subject(request).as_deref()));
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
