//! `GET /analytics/*`: reports over time windows, read from the bucketed analytics table
//! (see `orders_core::report` for windows and which buckets answer them).
//!
//! # Freshness
//! A report is computed at most once per [`FRESHNESS`] per warm function instance, and
//! clients may reuse it as long (`Cache-Control: public, max-age=2`, with an `ETag` for a
//! cheap 304 after that). So a report trails the analytics table by at most 2 s, and the
//! table trails order placement by the pipeline (about a second: the stream's batching
//! window).
//!
//! Product counters and customer sets are the heavy reads (16 and 64 items per bucket).
//! Buckets that ended over an hour ago change only when an old order changes status
//! (cancelled, shipped, delivered), so a warm instance keeps theirs for
//! [`SETTLED_FRESHNESS`]: a dashboard polling "last 30 days" then reads the current hour's
//! buckets, not 30 days of shards, every time. Status changes of orders placed more than an
//! hour ago therefore reach top products and active customers within 30 s.

use crate::handler::{QueryService, etag_of, if_none_match};
use lambda_http::http::StatusCode;
use lambda_http::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG};
use orders_core::activity::{ActivityReport, ActivitySeries, ActivityView, Counts, FunnelReport};
use orders_core::analytics::Granularity;
use orders_core::analytics::{Bucket, ProductTotals, Totals};
use orders_core::distinct::Distinct;
use orders_core::ports::{ActivityReader, AnalyticsReader, Catalog, OrderStore};
use orders_core::report::{
    ActiveCustomers, DEFAULT_TOP_PRODUCTS, MAX_TOP_PRODUCTS, RankBy, SalesReport, Summary,
    TopProduct, TopProducts, Window, parse_granularity, rank_products,
};
use orders_core::{FieldError, ProductId};
use orders_http::request::{caller, query_pairs};
use orders_http::{ApiError, Body, Request, Response};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::instrument;

/// How long a computed report is served from memory, and how long clients may cache it.
pub const FRESHNESS: Duration = Duration::from_secs(2);
/// Distinct reports kept; dashboards ask for a handful, so this only bounds odd clients.
const CACHE_ENTRIES: usize = 256;
/// A bucket is settled once it ended this long ago (seconds): orders of it are long past
/// processing, and only later status changes still touch it.
const SETTLED_AFTER: i64 = 3_600;
/// How long a settled bucket's products and customers are reused.
pub const SETTLED_FRESHNESS: Duration = Duration::from_secs(30);
/// Settled buckets kept per kind: 30 days of cover is ~200 buckets; the bound only protects
/// memory from odd clients.
const SETTLED_ENTRIES: usize = 2_048;

/// Which report, with its parameters validated and normalised (the cache key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Report {
    Sales(Window, Granularity),
    TopProducts(Window, RankBy, usize),
    Customers(Window),
    Summary(Window),
    /// Storefront activity over the window, or per bucket of a granularity.
    Activity(Window, Option<Granularity>),
    Funnel(Window, ProductId),
}

impl Report {
    /// Parses the query string of `route`; every bad or unknown parameter is named.
    fn parse(
        route: &str,
        pairs: &[(String, String)],
        now: orders_core::Timestamp,
    ) -> Result<Self, ApiError> {
        let allowed: &[&str] = match route {
            "sales" | "activity" => &["from", "to", "granularity"],
            "top-products" => &["from", "to", "limit", "by"],
            "funnel" => &["from", "to", "productId"],
            _ => &["from", "to"],
        };
        let mut errors = Vec::new();
        let mut params: HashMap<&str, &str> = HashMap::new();
        for (name, value) in pairs {
            if allowed.contains(&name.as_str()) {
                params.insert(name, value);
            } else {
                errors.push(FieldError::new(
                    name.clone(),
                    format!("is not a known parameter ({})", allowed.join(", ")),
                ));
            }
        }
        let window = Window::parse(params.get("from").copied(), params.get("to").copied(), now)
            .map_err(|e| errors.extend(e))
            .ok();
        let granularity = parse_granularity(params.get("granularity").unwrap_or(&"hour"))
            .map_err(|e| errors.push(e))
            .ok();
        let product = match (route, params.get("productId")) {
            ("funnel", None) => {
                errors.push(FieldError::new("productId", "is required"));
                None
            }
            ("funnel", Some(id)) => ProductId::parse(id)
                .map_err(|e| errors.push(FieldError::new("productId", e.0)))
                .ok(),
            _ => None,
        };
        let by = RankBy::parse(params.get("by").unwrap_or(&"revenue"))
            .map_err(|e| errors.push(e))
            .ok();
        let limit = match params.get("limit").map(|v| v.parse::<usize>()) {
            None => Some(DEFAULT_TOP_PRODUCTS),
            Some(Ok(n)) if (1..=MAX_TOP_PRODUCTS).contains(&n) => Some(n),
            Some(_) => {
                errors.push(FieldError::new(
                    "limit",
                    format!("must be an integer from 1 to {MAX_TOP_PRODUCTS}"),
                ));
                None
            }
        };
        match (window, granularity, by, limit) {
            (Some(window), Some(granularity), Some(by), Some(limit)) if errors.is_empty() => {
                Ok(match (route, product) {
                    ("sales", _) => Report::Sales(window, granularity),
                    ("top-products", _) => Report::TopProducts(window, by, limit),
                    ("customers", _) => Report::Customers(window),
                    ("activity", _) => Report::Activity(
                        window,
                        params.contains_key("granularity").then_some(granularity),
                    ),
                    ("funnel", Some(product)) => Report::Funnel(window, product),
                    _ => Report::Summary(window),
                })
            }
            _ => Err(ApiError::validation(errors)),
        }
    }
}

/// Reports computed recently by this instance, and the settled buckets' heavy reads. A
/// Lambda instance serves one request at a time, so there is no stampede to guard against;
/// locks keep it correct regardless.
#[derive(Debug, Default)]
pub struct ReportCache {
    entries: Mutex<HashMap<Report, (Instant, Arc<String>)>>,
    products: Settled<BTreeMap<ProductId, ProductTotals>>,
    customers: Settled<Distinct>,
    activity: Settled<ActivityView>,
}

/// Per-bucket values of settled buckets.
#[derive(Debug)]
struct Settled<T>(Mutex<HashMap<Bucket, (Instant, Arc<T>)>>);

impl<T> Default for Settled<T> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<T> Settled<T> {
    /// Each bucket's value: settled ones from memory while fresh, the rest from `read`
    /// (called once, with the buckets missing).
    async fn get<F, Fut>(
        &self,
        buckets: &[Bucket],
        now: i64,
        read: F,
    ) -> Result<Vec<Arc<T>>, ApiError>
    where
        F: FnOnce(Vec<Bucket>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<T>, orders_core::OrderError>>,
    {
        let settled = |b: &Bucket| b.next().start + SETTLED_AFTER <= now;
        let mut found: Vec<Option<Arc<T>>> = {
            let entries = self.0.lock().unwrap_or_else(|p| p.into_inner());
            buckets
                .iter()
                .map(|b| {
                    entries
                        .get(b)
                        .filter(|(at, _)| settled(b) && at.elapsed() < SETTLED_FRESHNESS)
                        .map(|(_, v)| Arc::clone(v))
                })
                .collect()
        };
        let missing: Vec<Bucket> = buckets
            .iter()
            .zip(&found)
            .filter(|(_, f)| f.is_none())
            .map(|(b, _)| *b)
            .collect();
        if !missing.is_empty() {
            let values = read(missing.clone()).await?;
            let mut entries = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if entries.len() + missing.len() > SETTLED_ENTRIES {
                entries.retain(|_, (at, _)| at.elapsed() < SETTLED_FRESHNESS);
                if entries.len() + missing.len() > SETTLED_ENTRIES {
                    entries.clear();
                }
            }
            let mut values = missing.iter().zip(values.into_iter().map(Arc::new));
            for slot in found.iter_mut().filter(|f| f.is_none()) {
                let (bucket, value) = values.next().expect("one value per bucket asked");
                if settled(bucket) {
                    entries.insert(*bucket, (Instant::now(), Arc::clone(&value)));
                }
                *slot = Some(value);
            }
        }
        Ok(found.into_iter().flatten().collect())
    }
}

impl ReportCache {
    fn get(&self, report: &Report) -> Option<Arc<String>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(report)
            .filter(|(at, _)| at.elapsed() < FRESHNESS)
            .map(|(_, body)| Arc::clone(body))
    }

    fn put(&self, report: Report, body: Arc<String>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CACHE_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < FRESHNESS);
            if entries.len() >= CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(report, (Instant::now(), body));
    }
}

/// `GET /analytics/{route}`.
#[instrument(skip(service, request))]
pub async fn report<S: OrderStore, K: Catalog, A: AnalyticsReader + ActivityReader>(
    service: &QueryService<S, K, A>,
    request: &Request,
    route: &str,
) -> Result<Response<Body>, ApiError> {
    caller(request)?.require_staff("analytics")?;
    let report = Report::parse(route, &query_pairs(request), service.clock.now())?;
    let body = match service.cache.get(&report) {
        Some(body) => body,
        None => {
            let body = Arc::new(compute(service, &report).await?);
            service.cache.put(report, Arc::clone(&body));
            body
        }
    };
    let tag = etag_of(&body);
    if let Some(not_modified) = if_none_match(request, &tag) {
        return Ok(not_modified);
    }
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, "application/json")
        .header(
            CACHE_CONTROL,
            format!("public, max-age={}", FRESHNESS.as_secs()),
        )
        .header(ETAG, tag)
        .body(Body::Text(body.as_str().to_owned()))
        .expect("a valid response"))
}

async fn compute<S: OrderStore, K: Catalog, A: AnalyticsReader + ActivityReader>(
    service: &QueryService<S, K, A>,
    report: &Report,
) -> Result<String, ApiError> {
    let analytics = &service.analytics;
    let now = service.clock.now().unix_seconds();
    let json = match report {
        Report::Sales(window, granularity) => {
            let buckets = window
                .buckets(*granularity)
                .map_err(|e| ApiError::validation(vec![e]))?;
            let totals = analytics.totals(&buckets).await?;
            serde_json::to_string(&SalesReport::new(*granularity, &buckets, &totals))
        }
        Report::Summary(window) => {
            let mut sum = Totals::default();
            for totals in analytics.totals(&window.cover()).await? {
                sum.add(&totals);
            }
            serde_json::to_string(&Summary::new(window, &sum))
        }
        Report::Customers(window) => {
            let cover = window.cover();
            let busy = occupied(analytics, &cover, |t| t.orders != 0).await?;
            let sets = service
                .cache
                .customers
                .get(&busy, now, |b| async move { analytics.customers(&b).await })
                .await?;
            let mut customers = Distinct::default();
            for set in sets.iter() {
                customers.merge(set);
            }
            let count = customers.count();
            serde_json::to_string(&ActiveCustomers {
                from: window.from_time(),
                to: window.to_time(),
                active_customers: count.value,
                approximate: count.approximate,
            })
        }
        Report::Activity(window, None) => {
            let views = service
                .cache
                .activity
                .get(&window.cover(), now, |b| async move {
                    analytics.activity(&b).await
                })
                .await?;
            let mut merged = ActivityView::default();
            for view in views.iter() {
                merged.merge(view);
            }
            serde_json::to_string(&ActivityReport::for_window(window, &merged))
        }
        Report::Activity(window, Some(granularity)) => {
            let buckets = window
                .buckets(*granularity)
                .map_err(|e| ApiError::validation(vec![e]))?;
            let views = service
                .cache
                .activity
                .get(
                    &buckets,
                    now,
                    |b| async move { analytics.activity(&b).await },
                )
                .await?;
            let views: Vec<ActivityView> = views.iter().map(|v| (**v).clone()).collect();
            serde_json::to_string(&ActivitySeries::new(*granularity, &buckets, &views))
        }
        Report::Funnel(window, product) => {
            let cover = window.cover();
            let mut activity = Counts::default();
            for counts in analytics.product_activity(&cover, product).await? {
                activity.add(&counts);
            }
            let busy = occupied(analytics, &cover, |t| t.processed != 0).await?;
            let maps = service
                .cache
                .products
                .get(&busy, now, |b| async move { analytics.products(&b).await })
                .await?;
            let mut orders = ProductTotals::default();
            for p in maps.iter().filter_map(|m| m.get(product)) {
                orders.add(p);
            }
            serde_json::to_string(&FunnelReport::new(
                window,
                product.clone(),
                &activity,
                &orders,
            ))
        }
        Report::TopProducts(window, by, limit) => {
            let cover = window.cover();
            let busy = occupied(analytics, &cover, |t| t.processed != 0).await?;
            let maps = service
                .cache
                .products
                .get(&busy, now, |b| async move { analytics.products(&b).await })
                .await?;
            let mut products: BTreeMap<ProductId, ProductTotals> = BTreeMap::new();
            for (id, p) in maps.iter().flat_map(|m| m.iter()) {
                products.entry(id.clone()).or_default().add(p);
            }
            let ranked = rank_products(products, *by, *limit);
            let ids: Vec<_> = ranked.iter().map(|(id, _)| id.clone()).collect();
            let names: BTreeMap<_, _> = service
                .catalog
                .get_many(&ids)
                .await?
                .into_iter()
                .map(|p| (p.product_id, p.name))
                .collect();
            serde_json::to_string(&TopProducts {
                from: window.from_time(),
                to: window.to_time(),
                by: *by,
                products: ranked
                    .into_iter()
                    .map(|(id, p)| TopProduct {
                        name: names.get(&id).cloned(),
                        product_id: id,
                        units: p.units,
                        revenue: p.revenue,
                        orders: p.orders,
                    })
                    .collect(),
            })
        }
    };
    Ok(json.expect("reports always serialise"))
}

/// The buckets of `cover` whose totals pass `holds`. Customer sets and product counters are
/// spread over 64 and 16 items per bucket, but a bucket without orders has none of them: one
/// read of the totals (1 key per bucket) saves those reads for every quiet bucket — most
/// minutes of a quiet shop, all of a window's future.
async fn occupied<A: AnalyticsReader>(
    analytics: &A,
    cover: &[Bucket],
    holds: impl Fn(&Totals) -> bool,
) -> Result<Vec<Bucket>, ApiError> {
    let totals = analytics.totals(cover).await?;
    Ok(cover
        .iter()
        .zip(&totals)
        .filter(|(_, t)| holds(t))
        .map(|(b, _)| *b)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use orders_core::analytics::Granularity;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn hour(start: i64) -> Bucket {
        Bucket {
            granularity: Granularity::Hour,
            start,
        }
    }

    #[tokio::test]
    async fn settled_buckets_are_read_once_and_recent_ones_every_time() {
        let cache: Settled<i64> = Settled::default();
        let reads = AtomicUsize::new(0);
        let now = 100 * 3_600;
        let old = hour(90 * 3_600); // ended 9 h ago
        let current = hour(99 * 3_600); // ends at `now`: not settled
        for _ in 0..3 {
            let values = cache
                .get(&[old, current], now, |missing| {
                    reads.fetch_add(missing.len(), Ordering::SeqCst);
                    async move { Ok(missing.iter().map(|b| b.start).collect()) }
                })
                .await
                .unwrap();
            assert_eq!(*values[0], old.start, "values stay in bucket order");
            assert_eq!(*values[1], current.start);
        }
        assert_eq!(
            reads.load(Ordering::SeqCst),
            1 + 3,
            "old once, current thrice"
        );
    }
}
