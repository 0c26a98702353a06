//! The orders API as the sim sees it: typed requests and responses (per the API docs and the
//! analytics contract), and retries that are safe because they repeat an `Idempotency-Key`
//! or an `If-Match`. Storefront activity (`POST /events`, its reports): [`activity`].

pub mod activity;

pub use activity::{ActivityView, FunnelView, Posted};

use anyhow::{Context as _, bail};
use reqwest::{Client, Method, Response, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// An order as the API returns it (only the fields the sim reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub order_id: String,
    pub customer_id: String,
    pub status: String,
    pub items: Vec<ItemView>,
    pub total: i64,
    pub version: u64,
    pub created_at: String,
    #[serde(default)]
    pub processed_at: Option<String>,
    #[serde(default)]
    pub failure_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemView {
    pub product_id: String,
    pub quantity: u32,
    pub unit_price: i64,
    pub line_total: i64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderPage {
    orders: Vec<OrderView>,
    next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryView {
    pub from: String,
    pub to: String,
    pub orders: i64,
    pub processed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub revenue: i64,
    pub units: i64,
    pub average_order_value: i64,
    pub failure_rate: f64,
    pub by_status: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SalesBucketView {
    pub start: String,
    pub orders: i64,
    pub processed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub revenue: i64,
    pub units: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SalesView {
    pub granularity: String,
    pub from: String,
    pub to: String,
    pub buckets: Vec<SalesBucketView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopProductView {
    pub product_id: String,
    pub name: Option<String>,
    pub units: i64,
    pub revenue: i64,
    pub orders: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopProductsView {
    pub from: String,
    pub to: String,
    pub by: String,
    pub products: Vec<TopProductView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomersView {
    pub from: String,
    pub to: String,
    pub active_customers: i64,
    pub approximate: bool,
}

/// How one placement ended after its retries.
#[derive(Debug)]
pub enum Placed {
    Created(OrderView),
    /// A final answer other than 201 (4xx, or 5xx once retries ran out).
    Refused {
        status: u16,
        body: String,
    },
    /// No HTTP answer at all once retries ran out.
    Unreachable(String),
}

/// The result of one request, with what it cost.
#[derive(Debug)]
pub struct Timed<T> {
    pub value: T,
    pub latency: Duration,
    /// Attempts after the first.
    pub retries: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 10,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exponential = self
            .first_backoff
            .saturating_mul(1 << attempt.min(16))
            .min(self.max_backoff);
        retry_after.map_or(exponential, |r| r.min(self.max_backoff).max(exponential))
    }
}

/// Statuses worth repeating an idempotent request for: the server may not have finished.
fn transient(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

fn retry_after(response: &Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[derive(Clone)]
pub struct Api {
    base: String,
    client: Client,
    pub retry: RetryPolicy,
}

impl Api {
    /// `token`: sent as `Authorization: Bearer …` on every request.
    pub fn new(base_url: &str, timeout: Duration, token: Option<&str>) -> anyhow::Result<Self> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token {
            let value = format!("Bearer {token}")
                .parse()
                .context("the token is not a valid header value")?;
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let client = Client::builder()
            .default_headers(headers)
            .timeout(timeout)
            .pool_max_idle_per_host(64)
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            base: base_url.trim_end_matches('/').to_owned(),
            client,
            retry: RetryPolicy::default(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request built by `build` until it gets an answer that is not transient, or the
    /// attempts run out. Only for requests that are safe to repeat.
    async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
        retry_on: impl Fn(StatusCode) -> bool,
    ) -> Timed<Result<(StatusCode, reqwest::header::HeaderMap, Vec<u8>), String>> {
        let start = Instant::now();
        let mut attempt = 0;
        loop {
            let outcome = match build().send().await {
                Ok(response) => {
                    let status = response.status();
                    let wait = retry_after(&response);
                    let headers = response.headers().clone();
                    match response.bytes().await {
                        Ok(bytes) => Ok((status, headers, bytes.to_vec(), wait)),
                        Err(err) => Err(format!("reading the body: {err}")),
                    }
                }
                Err(err) => Err(format!("{err}")),
            };
            let again = match &outcome {
                Ok((status, ..)) => retry_on(*status),
                Err(_) => true,
            };
            if !again || attempt + 1 >= self.retry.attempts {
                return Timed {
                    value: outcome.map(|(s, h, b, _)| (s, h, b)),
                    latency: start.elapsed(),
                    retries: attempt,
                };
            }
            let wait = outcome.as_ref().ok().and_then(|(.., wait)| *wait);
            tokio::time::sleep(self.retry.backoff(attempt, wait)).await;
            attempt += 1;
        }
    }

    /// Sets a catalog entry, stock included: `PUT /products/{id}` creates it, or replaces it
    /// against the version a `GET` just read (`If-Match`), again if a sale moved it between.
    pub async fn put_product(
        &self,
        id: &str,
        name: &str,
        price: i64,
        stock: u64,
    ) -> anyhow::Result<()> {
        let url = format!("{}/products/{id}", self.base);
        let body = serde_json::json!({"name": name, "price": price, "stock": stock});
        for _ in 0..10 {
            let read = self.send(|| self.client.get(&url), transient).await;
            let etag = match read.value {
                Ok((StatusCode::NOT_FOUND, ..)) => None,
                Ok((status, headers, _)) if status.is_success() => headers
                    .get(reqwest::header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                Ok((status, ..)) => bail!("GET /products/{id}: {status}"),
                Err(err) => bail!("GET /products/{id}: {err}"),
            };
            let sent = self
                .send(
                    || {
                        let put = self.client.put(&url).json(&body);
                        match &etag {
                            Some(tag) => put.header(reqwest::header::IF_MATCH, tag),
                            None => put,
                        }
                    },
                    transient,
                )
                .await;
            match sent.value {
                Ok((status, _, _)) if status.is_success() => return Ok(()),
                // Sold (or created) since the read: read again.
                Ok((StatusCode::PRECONDITION_FAILED | StatusCode::PRECONDITION_REQUIRED, ..)) => {}
                Ok((status, _, body)) => bail!(
                    "PUT /products/{id}: {status}: {}",
                    String::from_utf8_lossy(&body)
                ),
                Err(err) => bail!("PUT /products/{id}: {err}"),
            }
        }
        bail!("PUT /products/{id}: the product kept changing")
    }

    /// `POST /orders` with an `Idempotency-Key`, retried on transient failures: the key makes
    /// every retry land on the same order.
    pub async fn place(&self, body: &Value, key: &str) -> Timed<Placed> {
        let url = format!("{}/orders", self.base);
        let bytes = body.to_string();
        // Only transient failures: a retry of the same key resumes an unfinished attempt, and
        // every 409 here (a price that changed) is the answer, not a race.
        let sent = self
            .send(
                || {
                    self.client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("idempotency-key", key)
                        .body(bytes.clone())
                },
                transient,
            )
            .await;
        let value = match sent.value {
            Ok((status, _, body)) if status == StatusCode::CREATED => {
                match serde_json::from_slice::<OrderView>(&body) {
                    Ok(order) => Placed::Created(order),
                    Err(err) => Placed::Refused {
                        status: status.as_u16(),
                        body: format!(
                            "unreadable order ({err}): {}",
                            String::from_utf8_lossy(&body)
                        ),
                    },
                }
            }
            Ok((status, _, body)) => Placed::Refused {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).into_owned(),
            },
            Err(err) => Placed::Unreachable(err),
        };
        Timed {
            value,
            latency: sent.latency,
            retries: sent.retries,
        }
    }

    /// `POST /orders` of a request that must be refused. Sent again only when no answer came
    /// at all (the API was down): it stores nothing whatever happens, so that is safe; any
    /// status, even a 5xx, is the answer to judge.
    pub async fn send_invalid(&self, content_type: &str, body: Vec<u8>) -> Timed<Option<u16>> {
        let url = format!("{}/orders", self.base);
        let sent = self
            .send(
                || {
                    self.client
                        .post(&url)
                        .header("content-type", content_type)
                        .body(body.clone())
                },
                |_| false,
            )
            .await;
        Timed {
            value: sent.value.ok().map(|(status, ..)| status.as_u16()),
            latency: sent.latency,
            retries: sent.retries,
        }
    }

    async fn get_json<T: DeserializeOwned>(&self, path_and_query: &str) -> anyhow::Result<T> {
        let url = format!("{}{path_and_query}", self.base);
        let sent = self.send(|| self.client.get(&url), transient).await;
        match sent.value {
            Ok((status, _, body)) if status == StatusCode::OK => serde_json::from_slice(&body)
                .with_context(|| {
                    format!(
                        "GET {path_and_query}: unexpected body {}",
                        String::from_utf8_lossy(&body)
                    )
                }),
            Ok((status, _, body)) => bail!(
                "GET {path_and_query}: {status}: {}",
                String::from_utf8_lossy(&body)
            ),
            Err(err) => bail!("GET {path_and_query}: {err}"),
        }
    }

    pub async fn order(&self, id: &str) -> anyhow::Result<OrderView> {
        self.get_json(&format!("/orders/{id}")).await
    }

    /// Moves an order to `target` (`CANCELLED` via `DELETE`, else `PATCH`) with `If-Match` on
    /// the version last seen. A retry after a lost answer meets a newer version (412): the
    /// order is read again and the change counts as done if it is already there.
    pub async fn change_status(
        &self,
        order: &OrderView,
        target: &str,
    ) -> Timed<Result<OrderView, String>> {
        let url = format!("{}/orders/{}", self.base, order.order_id);
        let if_match = format!("\"{}\"", order.version);
        let sent = self
            .send(
                || {
                    let request = if target == "CANCELLED" {
                        self.client.request(Method::DELETE, &url)
                    } else {
                        self.client
                            .request(Method::PATCH, &url)
                            .json(&serde_json::json!({"status": target}))
                    };
                    request.header("if-match", &if_match)
                },
                transient,
            )
            .await;
        let value = match sent.value {
            Ok((status, _, body)) if status == StatusCode::OK => {
                serde_json::from_slice::<OrderView>(&body).map_err(|e| e.to_string())
            }
            Ok((StatusCode::PRECONDITION_FAILED, _, body)) => {
                match self.order(&order.order_id).await {
                    Ok(now) if now.status == target => Ok(now),
                    Ok(now) => Err(format!(
                        "412 and the order is {} (v{}): {}",
                        now.status,
                        now.version,
                        String::from_utf8_lossy(&body)
                    )),
                    Err(err) => Err(format!("412, then {err:#}")),
                }
            }
            Ok((status, _, body)) => Err(format!("{status}: {}", String::from_utf8_lossy(&body))),
            Err(err) => Err(err),
        };
        Timed {
            value,
            latency: sent.latency,
            retries: sent.retries,
        }
    }

    /// Every order created at or after `since`, from the listing (newest first, by order id).
    /// Paging stops a minute past `since`: order ids and `createdAt` come from slightly
    /// different instants, so the listing's order is only nearly that of `createdAt`.
    pub async fn orders_since(
        &self,
        since: time::OffsetDateTime,
    ) -> anyhow::Result<Vec<OrderView>> {
        let stop = since - time::Duration::minutes(1);
        let mut orders = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/orders?limit=100&cursor={c}"),
                None => "/orders?limit=100".to_owned(),
            };
            let page: OrderPage = self.get_json(&path).await?;
            let mut older = false;
            for order in page.orders {
                let created = crate::window::parse_time(&order.created_at)?;
                if created < stop {
                    older = true;
                } else if created >= since {
                    orders.push(order);
                }
            }
            match page.next_cursor {
                Some(next) if !older => cursor = Some(next),
                _ => return Ok(orders),
            }
        }
    }

    pub async fn summary(&self, window: &crate::window::Window) -> anyhow::Result<SummaryView> {
        self.get_json(&format!("/analytics/summary?{}", window.query()))
            .await
    }

    pub async fn sales_by_minute(
        &self,
        window: &crate::window::Window,
    ) -> anyhow::Result<SalesView> {
        self.get_json(&format!(
            "/analytics/sales?granularity=minute&{}",
            window.query()
        ))
        .await
    }

    pub async fn top_products(
        &self,
        window: &crate::window::Window,
        by: &str,
        limit: usize,
    ) -> anyhow::Result<TopProductsView> {
        self.get_json(&format!(
            "/analytics/top-products?{}&by={by}&limit={limit}",
            window.query()
        ))
        .await
    }

    pub async fn customers(&self, window: &crate::window::Window) -> anyhow::Result<CustomersView> {
        self.get_json(&format!("/analytics/customers?{}", window.query()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_and_honours_retry_after() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(0, None), Duration::from_millis(200));
        assert_eq!(p.backoff(2, None), Duration::from_millis(800));
        assert_eq!(p.backoff(10, None), Duration::from_secs(5));
        assert_eq!(
            p.backoff(0, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            p.backoff(0, Some(Duration::from_secs(60))),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn orders_and_analytics_parse_as_documented() {
        let order: OrderView = serde_json::from_value(serde_json::json!({
            "orderId": "01J", "customerId": "c-1", "status": "PROCESSED", "currency": "USD",
            "items": [{"productId": "p", "quantity": 2, "unitPrice": 100, "lineTotal": 200}],
            "total": 200, "version": 2, "createdAt": "2026-11-22T10:00:00.000Z",
            "updatedAt": "2026-11-22T10:00:01.000Z", "processedAt": "2026-11-22T10:00:01.000Z"
        }))
        .unwrap();
        assert_eq!(
            order.processed_at.as_deref(),
            Some("2026-11-22T10:00:01.000Z")
        );
        let summary: SummaryView = serde_json::from_str(
            r#"{"from":"2026-11-22T10:00:00.000Z","to":"2026-11-22T11:00:00.000Z","orders":10,"processed":7,"failed":2,"cancelled":1,
               "revenue":12345,"units":20,"averageOrderValue":2057,"failureRate":0.2222,
               "byStatus":{"PENDING":1,"PROCESSED":4,"FAILED":2,"SHIPPED":1,"DELIVERED":1,"CANCELLED":1}}"#,
        )
        .unwrap();
        assert_eq!(summary.by_status["DELIVERED"], 1);
        let top: TopProductsView = serde_json::from_str(
            r#"{"from":"a","to":"b","by":"revenue","products":[{"productId":"sku-1","name":null,"units":4,"revenue":2000,"orders":2}]}"#,
        )
        .unwrap();
        assert_eq!(top.products[0].name, None);
        let customers: CustomersView = serde_json::from_str(
            r#"{"from":"a","to":"b","activeCustomers":17,"approximate":false}"#,
        )
        .unwrap();
        assert_eq!(customers.active_customers, 17);
    }
}
