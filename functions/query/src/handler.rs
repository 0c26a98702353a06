//! HTTP entry point for reads.

use crate::analytics::{ReportCache, report};
use crate::dashboard::Dashboard;
use lambda_http::http::StatusCode;
use lambda_http::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use orders_core::customer::summarize;
use orders_core::listing::{ListOrders, ListProducts, encode_cursor, encode_product_cursor};
use orders_core::ports::{
    ActivityReader, AnalyticsReader, Catalog, Clock, OrderStore, SystemClock,
};
use orders_core::{CustomerId, FieldError, Order, OrderError, OrderId, Product, ProductId};
use orders_http::request::{caller, path_parameter, query_pairs, route_key};
use orders_http::response::{json, versioned_json};
use orders_http::{ApiError, Body, Request, Response};
use serde::Serialize;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use tracing::instrument;

/// The OpenAPI 3.1 document of the whole HTTP API (commands and queries).
const OPENAPI: &str = include_str!("../../../api/openapi.json");

pub struct QueryService<S, K, A> {
    pub store: S,
    pub catalog: K,
    pub analytics: A,
    /// "Now", for the analytics routes' default window.
    pub clock: Arc<dyn Clock>,
    pub cache: ReportCache,
    /// The dashboard page as served (sign-in settings filled in).
    pub dashboard: Dashboard,
}

impl<S, K, A> QueryService<S, K, A> {
    pub fn new(store: S, catalog: K, analytics: A) -> Self {
        Self {
            store,
            catalog,
            analytics,
            clock: Arc::new(SystemClock),
            cache: ReportCache::default(),
            dashboard: Dashboard::new(None, None),
        }
    }
}

pub async fn handle<S: OrderStore, K: Catalog, A: AnalyticsReader + ActivityReader>(
    service: &QueryService<S, K, A>,
    request: Request,
) -> Response<Body> {
    let result = match route_key(&request).as_deref() {
        Some("GET /orders/{orderId}") => get_order(service, &request).await,
        Some("GET /orders") => list_orders(service, &request).await,
        Some("GET /products/{productId}") => get_product(service, &request).await,
        Some("GET /products") => list_products(service, &request).await,
        Some("GET /customers/{customerId}") => get_customer(service, &request).await,
        Some("GET /health") => health(service).await,
        Some("GET /analytics/sales") => report(service, &request, "sales").await,
        Some("GET /analytics/top-products") => report(service, &request, "top-products").await,
        Some("GET /analytics/customers") => report(service, &request, "customers").await,
        Some("GET /analytics/summary") => report(service, &request, "summary").await,
        Some("GET /analytics/activity") => report(service, &request, "activity").await,
        Some("GET /analytics/funnel") => report(service, &request, "funnel").await,
        Some("GET /") => Ok(dashboard(service, &request)),
        Some("GET /openapi.json") => Ok(asset(&request, OPENAPI, "application/json")),
        Some("GET /asyncapi.json") => Ok(asset(
            &request,
            crate::asyncapi::document(),
            "application/json",
        )),
        other => Err(ApiError::not_found(format!(
            "no such route on query: {}",
            other.unwrap_or("(none)")
        ))),
    };
    orders_http::finish(&request, result)
}

#[instrument(skip_all)]
async fn get_order<S: OrderStore, K: Catalog, A: AnalyticsReader>(
    service: &QueryService<S, K, A>,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let caller = caller(request)?;
    let raw = path_parameter(request, "orderId").unwrap_or_default();
    let id = OrderId::parse(&raw)
        .map_err(|e| ApiError::validation(vec![FieldError::new("orderId", e.0)]))?;
    let order = service
        .store
        .get(&id)
        .await?
        .filter(|order| caller.may_see(order))
        .ok_or_else(|| OrderError::NotFound(format!("order {id}")))?;
    let mut response = versioned_json(StatusCode::OK, &order, order.version);
    let headers = response.headers_mut();
    // Orders change status within seconds of being placed: let clients revalidate, not cache.
    headers.insert(CACHE_CONTROL, "no-cache".parse().expect("static header"));
    Ok(response)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OrderList {
    orders: Vec<Order>,
    next_cursor: Option<String>,
}

#[instrument(skip_all)]
async fn list_orders<S: OrderStore, K: Catalog, A: AnalyticsReader>(
    service: &QueryService<S, K, A>,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let pairs = query_pairs(request);
    let mut query = ListOrders::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(ApiError::validation)?;
    query.customer_id = caller(request)?.listing_scope(query.customer_id)?;
    let page = service.store.list(&query).await?;
    Ok(json(
        StatusCode::OK,
        &OrderList {
            orders: page.orders,
            // The cursor carries the window, so it continues only this listing.
            next_cursor: page
                .next
                .as_ref()
                .map(|last| encode_cursor(last, &query.window)),
        },
    ))
}

/// `GET /customers/{customerId}`: the customer's history from its orders; a customer
/// reads only its own, and a customer without orders is not found.
#[instrument(skip_all)]
async fn get_customer<S: OrderStore, K: Catalog, A: AnalyticsReader>(
    service: &QueryService<S, K, A>,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let raw = path_parameter(request, "customerId").unwrap_or_default();
    let id = CustomerId::parse(&raw)
        .map_err(|e| ApiError::validation(vec![FieldError::new("customerId", e.0)]))?;
    caller(request)?.require_self(&id)?;
    let summary = summarize(&service.store, &id).await?;
    if summary.orders == 0 {
        return Err(ApiError::not_found(format!("customer {id} has no orders")));
    }
    let mut response = json(StatusCode::OK, &summary);
    // Its orders change status within seconds: revalidate, do not cache.
    response
        .headers_mut()
        .insert(CACHE_CONTROL, "no-cache".parse().expect("static header"));
    Ok(response)
}

/// Any failure to reach the table is "not ready" (503), whatever its cause: a load balancer
/// or deploy check only needs to know whether to send traffic here.
async fn health<S: OrderStore, K: Catalog, A: AnalyticsReader>(
    service: &QueryService<S, K, A>,
) -> Result<Response<Body>, ApiError> {
    match service.store.ping().await {
        Ok(()) => Ok(json(StatusCode::OK, &serde_json::json!({"status": "ok"}))),
        Err(err) => {
            tracing::warn!(error = %err, detail = ?err, "health check failed");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unhealthy",
                "the orders table is not reachable",
            ))
        }
    }
}

#[instrument(skip_all)]
async fn get_product<S: OrderStore, K: Catalog, A: AnalyticsReader>(
    service: &QueryService<S, K, A>,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let raw = path_parameter(request, "productId").unwrap_or_default();
    let id = ProductId::parse(&raw)
        .map_err(|e| ApiError::validation(vec![FieldError::new("productId", e.0)]))?;
    let product = service
        .catalog
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("product {id} was not found")))?;
    // Stock moves with every sale: revalidate, and send the ETag back as If-Match to change it.
    let mut response = versioned_json(StatusCode::OK, &product, product.version);
    response
        .headers_mut()
        .insert(CACHE_CONTROL, "no-cache".parse().expect("static header"));
    Ok(response)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProductList {
    products: Vec<Product>,
    next_cursor: Option<String>,
}

#[instrument(skip_all)]
async fn list_products<S: OrderStore, K: Catalog, A: AnalyticsReader>(
    service: &QueryService<S, K, A>,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let pairs = query_pairs(request);
    let query = ListProducts::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(ApiError::validation)?;
    let (products, next) = service
        .catalog
        .list(query.limit, query.after.as_ref())
        .await?;
    Ok(json(
        StatusCode::OK,
        &ProductList {
            products,
            next_cursor: next.as_ref().map(encode_product_cursor),
        },
    ))
}

/// A static document. Deploys change it, so clients revalidate (cheap: 304 on a match).
fn asset(request: &Request, body: &str, content_type: &'static str) -> Response<Body> {
    let tag = etag_of(body);
    if_none_match(request, &tag).unwrap_or_else(|| {
        Response::builder()
            .status(StatusCode::OK)
            .header(CONTENT_TYPE, content_type)
            .header(CACHE_CONTROL, "no-cache")
            .header(ETAG, tag)
            .body(Body::Text(body.to_owned()))
            .expect("a valid response")
    })
}

/// The dashboard page, under its Content-Security-Policy.
fn dashboard<S, K, A>(service: &QueryService<S, K, A>, request: &Request) -> Response<Body> {
    let page = &service.dashboard;
    let mut response = asset(request, &page.page, "text/html; charset=utf-8");
    if let Ok(policy) = page.policy.parse() {
        response
            .headers_mut()
            .insert("content-security-policy", policy);
    }
    response
}

/// A strong validator for a body: a hash of its bytes, stable within a build.
pub(crate) fn etag_of(body: &str) -> String {
    let mut hasher = std::hash::DefaultHasher::new();
    body.hash(&mut hasher);
    format!("\"{:016x}\"", hasher.finish())
}

/// 304 when the client already holds `tag`.
pub(crate) fn if_none_match(request: &Request, tag: &str) -> Option<Response<Body>> {
    let held = request.headers().get(IF_NONE_MATCH)?.to_str().ok()?;
    held.split(',')
        .any(|t| t.trim() == tag || t.trim() == "*")
        .then(|| {
            Response::builder()
                .status(StatusCode::NOT_MODIFIED)
                .header(ETAG, tag)
                .body(Body::Empty)
                .expect("a valid response")
        })
}
