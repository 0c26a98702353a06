//! Reading the analytics back: query windows, which stored buckets answer them, and the
//! report shapes the API returns.
//!
//! # Windows
//! `from`/`to` are RFC 3339, `to` exclusive, widened to whole minutes (the finest bucket):
//! every instant of the asked window is covered and the response echoes the window used.
//! Without them the window is the last 24 hours, ending at the next minute boundary so the
//! current minute is included. Windows are at most [`MAX_WINDOW_DAYS`] long.
//!
//! # Reading the coarsest buckets that fit
//! Totals, products and customer sets are stored per minute, hour and day. A window is
//! answered by its [`Window::cover`]: whole days where they fit, hours at the edges of the
//! days, minutes at the edges of the hours — a 30-day window reads about 30 + 46 + 118
//! buckets at worst, not 43,200 minutes. Counters add up across the cover; customer sets
//! are unioned, so distinct counts stay exact.

use crate::analytics::{Bucket, Granularity, ProductTotals, Totals};
use crate::error::FieldError;
use crate::ids::ProductId;
use crate::order::OrderStatus;
use crate::time::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;

/// The most buckets one sales report returns.
pub const MAX_SALES_BUCKETS: usize = 1_500;
/// The longest window any analytics route accepts. Bounds the reads of one call (a year is
/// at most ~530 buckets in its cover).
pub const MAX_WINDOW_DAYS: i64 = 366;
pub const DEFAULT_TOP_PRODUCTS: usize = 10;
pub const MAX_TOP_PRODUCTS: usize = 100;

const MINUTE: i64 = 60;
const DAY: i64 = 86_400;
/// Window bounds must lie in `[1970-01-01, 9999-01-01)`: widening to whole buckets then
/// never leaves the years a timestamp can represent (0000–9999), so every bucket of any
/// accepted window has a start time and a key.
const EARLIEST: i64 = 0;
const LATEST: i64 = 253_370_764_800; // 9999-01-01T00:00:00Z

/// A half-open window `[from, to)` of whole minutes, in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    pub from: i64,
    pub to: i64,
}

impl Window {
    /// The window from the `from`/`to` parameters, defaulting to the last 24 hours before
    /// `now`'s next minute boundary.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        now: Timestamp,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut instant = |name: &str, value: Option<&str>| {
            window_bound(name, Timestamp::parse(value?))
                .map_err(|e| errors.push(e))
                .ok()
        };
        let from = instant("from", from);
        let to = instant("to", to);
        if !errors.is_empty() {
            return Err(errors);
        }
        let to = match to {
            Some(to) => ceil(to.unix_millis(), MINUTE * 1000) / 1000,
            // The next boundary, so the current minute is in even at its first instant.
            None => floor(now.unix_seconds(), MINUTE) + MINUTE,
        };
        let from = match from {
            Some(from) => floor(from.unix_seconds(), MINUTE),
            None => to - DAY,
        };
        let window = Window { from, to };
        if from >= to {
            return Err(vec![FieldError::new("from", "must be before to")]);
        }
        if to - from > MAX_WINDOW_DAYS * DAY {
            return Err(vec![FieldError::new(
                "to",
                format!("the window is at most {MAX_WINDOW_DAYS} days"),
            )]);
        }
        Ok(window)
    }

    /// The window widened to whole buckets of `granularity`.
    pub fn aligned(&self, granularity: Granularity) -> Window {
        let size = granularity.seconds();
        Window {
            from: floor(self.from, size),
            to: ceil(self.to, size),
        }
    }

    /// Every bucket of `granularity` overlapping the window, oldest first, or an error when
    /// there would be more than [`MAX_SALES_BUCKETS`].
    pub fn buckets(&self, granularity: Granularity) -> Result<Vec<Bucket>, FieldError> {
        let aligned = self.aligned(granularity);
        let count = (aligned.to - aligned.from) / granularity.seconds();
        if count > MAX_SALES_BUCKETS as i64 {
            return Err(FieldError::new(
                "granularity",
                format!(
                    "{count} {} buckets is more than {MAX_SALES_BUCKETS}; use a coarser \
                     granularity or a shorter window",
                    granularity.as_str()
                ),
            ));
        }
        Ok((0..count)
            .map(|i| Bucket {
                granularity,
                start: aligned.from + i * granularity.seconds(),
            })
            .collect())
    }

    /// The fewest stored buckets that tile the window exactly: at each point the coarsest
    /// bucket that starts there and ends inside the window.
    pub fn cover(&self) -> Vec<Bucket> {
        let mut out = Vec::new();
        let mut at = self.from;
        while at < self.to {
            let granularity = [Granularity::Day, Granularity::Hour, Granularity::Minute]
                .into_iter()
                .find(|g| at % g.seconds() == 0 && at + g.seconds() <= self.to)
                .expect("windows are whole minutes");
            out.push(Bucket {
                granularity,
                start: at,
            });
            at += granularity.seconds();
        }
        out
    }

    pub fn from_time(&self) -> Timestamp {
        time_of(self.from)
    }

    pub fn to_time(&self) -> Timestamp {
        time_of(self.to)
    }
}

/// One bound of a time window given as a query parameter (`name`), parsed as the route
/// parses it: an RFC 3339 time within `[1970-01-01, 9999-01-01)`. Every windowed route —
/// analytics and order search — shares this rule, so one time is valid everywhere or nowhere.
pub fn window_bound(name: &str, parsed: Option<Timestamp>) -> Result<Timestamp, FieldError> {
    match parsed {
        None => Err(FieldError::new(
            name,
            "must be an RFC 3339 time, e.g. 2026-11-22T10:00:00Z",
        )),
        Some(at) if !(EARLIEST..LATEST).contains(&at.unix_seconds()) => Err(FieldError::new(
            name,
            "must be between 1970-01-01T00:00:00Z and 9998-12-31T23:59:59Z",
        )),
        Some(at) => Ok(at),
    }
}

fn floor(seconds: i64, size: i64) -> i64 {
    seconds - seconds.rem_euclid(size)
}

fn ceil(seconds: i64, size: i64) -> i64 {
    floor(seconds + size - 1, size)
}

fn time_of(seconds: i64) -> Timestamp {
    Timestamp::from_unix_millis(seconds * 1000).expect("windows are within the valid range")
}

/// `minute|hour|day`.
pub fn parse_granularity(value: &str) -> Result<Granularity, FieldError> {
    Granularity::ALL
        .into_iter()
        .find(|g| g.as_str() == value)
        .ok_or_else(|| FieldError::new("granularity", "must be one of minute, hour, day"))
}

/// What top products are ranked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RankBy {
    Revenue,
    Units,
}

impl RankBy {
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        match value {
            "revenue" => Ok(RankBy::Revenue),
            "units" => Ok(RankBy::Units),
            _ => Err(FieldError::new("by", "must be revenue or units")),
        }
    }
}

/// One row of `GET /analytics/sales`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SalesBucket {
    pub start: Timestamp,
    pub orders: i64,
    pub processed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub revenue: i64,
    pub units: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SalesReport {
    pub granularity: &'static str,
    pub from: Timestamp,
    pub to: Timestamp,
    pub buckets: Vec<SalesBucket>,
}

impl SalesReport {
    /// `totals[i]` is what is stored for `buckets[i]` (zero when nothing is).
    pub fn new(granularity: Granularity, buckets: &[Bucket], totals: &[Totals]) -> Self {
        let window = Window {
            from: buckets.first().map_or(0, |b| b.start),
            to: buckets.last().map_or(0, |b| b.next().start),
        };
        SalesReport {
            granularity: granularity.as_str(),
            from: window.from_time(),
            to: window.to_time(),
            buckets: buckets
                .iter()
                .zip(totals)
                .map(|(bucket, t)| SalesBucket {
                    start: bucket.start_time(),
                    orders: t.orders,
                    processed: t.processed,
                    failed: t.failed,
                    cancelled: t.cancelled,
                    revenue: t.revenue,
                    units: t.units,
                })
                .collect(),
        }
    }
}

/// `total / n` in minor units rounded half up (an average order value); 0 when `n` is not
/// positive.
pub fn average_half_up(total: i64, n: i64) -> i64 {
    if n > 0 { (2 * total + n) / (2 * n) } else { 0 }
}

/// `GET /analytics/summary`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub from: Timestamp,
    pub to: Timestamp,
    pub orders: i64,
    pub processed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub revenue: i64,
    pub units: i64,
    /// Revenue per order that holds revenue (processed, shipped or delivered), in minor
    /// units rounded half up; 0 when there are none.
    pub average_order_value: i64,
    /// failed / (processed + failed): the share of decided orders that failed; 0 when none.
    pub failure_rate: f64,
    pub by_status: BTreeMap<&'static str, i64>,
}

impl Summary {
    pub fn new(window: &Window, totals: &Totals) -> Self {
        let count = |status: OrderStatus| {
            let i = OrderStatus::ALL
                .iter()
                .position(|s| *s == status)
                .expect("every status is listed");
            totals.by_status[i]
        };
        let with_revenue = count(OrderStatus::Processed)
            + count(OrderStatus::Shipped)
            + count(OrderStatus::Delivered);
        let average_order_value = average_half_up(totals.revenue, with_revenue);
        let decided = totals.processed + totals.failed;
        let failure_rate = if decided > 0 {
            // Four decimals: a rate, not a measurement of the floating-point unit.
            (totals.failed as f64 / decided as f64 * 10_000.0).round() / 10_000.0
        } else {
            0.0
        };
        Summary {
            from: window.from_time(),
            to: window.to_time(),
            orders: totals.orders,
            processed: totals.processed,
            failed: totals.failed,
            cancelled: totals.cancelled,
            revenue: totals.revenue,
            units: totals.units,
            average_order_value,
            failure_rate,
            by_status: OrderStatus::ALL
                .iter()
                .map(|s| (s.as_str(), count(*s)))
                .collect(),
        }
    }
}

/// One row of `GET /analytics/top-products`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopProduct {
    pub product_id: ProductId,
    /// The catalog name; `null` when the product is no longer in the catalog.
    pub name: Option<String>,
    pub units: i64,
    pub revenue: i64,
    pub orders: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopProducts {
    pub from: Timestamp,
    pub to: Timestamp,
    pub by: RankBy,
    pub products: Vec<TopProduct>,
}

/// The `limit` best products by `by` (ties: the other measure, then id), leaving out those
/// whose sales were all cancelled.
pub fn rank_products(
    products: BTreeMap<ProductId, ProductTotals>,
    by: RankBy,
    limit: usize,
) -> Vec<(ProductId, ProductTotals)> {
    let mut ranked: Vec<_> = products
        .into_iter()
        .filter(|(_, p)| p.units != 0 || p.revenue != 0)
        .collect();
    let key = |p: &ProductTotals| match by {
        RankBy::Revenue => (p.revenue, p.units),
        RankBy::Units => (p.units, p.revenue),
    };
    ranked.sort_by(|(a_id, a), (b_id, b)| key(b).cmp(&key(a)).then_with(|| a_id.cmp(b_id)));
    ranked.truncate(limit);
    ranked
}

/// `GET /analytics/customers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveCustomers {
    pub from: Timestamp,
    pub to: Timestamp,
    pub active_customers: u64,
    /// True when any bucket of the window holds more customers than it keeps exactly: the
    /// count is then a HyperLogLog estimate (~0.8 % standard error; `orders_core::distinct`).
    pub approximate: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn window(from: &str, to: &str) -> Window {
        Window::parse(Some(from), Some(to), at("2026-11-22T12:00:00Z")).unwrap()
    }

    #[test]
    fn the_latest_representable_year_is_accepted_and_beyond_it_is_a_field_error() {
        let last = window("9998-12-31T00:00:00Z", "9998-12-31T23:59:59Z");
        assert_eq!(last.buckets(Granularity::Day).unwrap().len(), 1);
        assert!(!last.cover().is_empty());
        // 22:00-01:00 on the last day of 9999 is 9999-12-31T23:00Z; a day bucket would end
        // in the year 10000, which a timestamp cannot hold.
        for (from, to) in [
            ("9999-12-31T22:00:00-01:00", "9999-12-31T23:00:00-01:00"),
            ("9999-12-30T00:00:00Z", "9999-12-31T00:01:00Z"),
            ("1969-12-31T00:00:00Z", "1970-01-01T01:00:00Z"),
        ] {
            let errors = Window::parse(Some(from), Some(to), at("2026-11-22T12:00:00Z"))
                .expect_err("outside the supported years");
            assert!(errors.iter().all(|e| e.field == "from" || e.field == "to"));
        }
    }

    proptest::proptest! {
        /// Any pair of valid RFC 3339 times either is refused with field errors or gives a
        /// window whose every bucket, at every granularity, has a key and a start time.
        #[test]
        fn every_accepted_window_has_printable_buckets(
            from in -62_135_596_800i64..253_402_300_799,
            len in 0i64..40_000_000,
            offset_minutes in -1439i32..1440,
        ) {
            let offset = time::UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap();
            let print = |s: i64| {
                time::OffsetDateTime::from_unix_timestamp(s)
                    .ok()
                    .map(|t| t.to_offset(offset))
                    .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            };
            let (Some(f), Some(t)) = (print(from), print(from.saturating_add(len))) else {
                return Ok(());
            };
            if let Ok(w) = Window::parse(Some(&f), Some(&t), at("2026-11-22T12:00:00Z")) {
                for g in Granularity::ALL {
                    if let Ok(buckets) = w.buckets(g) {
                        for b in buckets {
                            let _ = (b.to_string(), b.start_time(), b.next().start_time());
                        }
                    }
                }
                let cover = w.cover();
                for b in &cover {
                    let _ = (b.to_string(), b.start_time());
                }
                let covered: i64 = cover.iter().map(|b| b.granularity.seconds()).sum();
                proptest::prop_assert_eq!(covered, w.to - w.from);
                let _ = (w.from_time(), w.to_time());
            }
        }
    }

    #[test]
    fn defaults_to_the_last_24_hours_including_the_current_minute() {
        let w = Window::parse(None, None, at("2026-11-22T10:31:20.5Z")).unwrap();
        assert_eq!(w.to_time().to_string(), "2026-11-22T10:32:00.000Z");
        assert_eq!(w.from_time().to_string(), "2026-11-21T10:32:00.000Z");
        let on_the_minute = Window::parse(None, None, at("2026-11-22T10:31:00Z")).unwrap();
        assert_eq!(
            on_the_minute.to_time().to_string(),
            "2026-11-22T10:32:00.000Z",
            "the current minute is included even at its first instant"
        );
    }

    #[test]
    fn windows_widen_to_whole_minutes() {
        let w = window("2026-11-22T10:31:20Z", "2026-11-22T10:40:00.001Z");
        assert_eq!(w.from_time().to_string(), "2026-11-22T10:31:00.000Z");
        assert_eq!(w.to_time().to_string(), "2026-11-22T10:41:00.000Z");
        let exact = window("2026-11-22T10:31:00Z", "2026-11-22T10:40:00Z");
        assert_eq!(exact.to_time().to_string(), "2026-11-22T10:40:00.000Z");
    }

    #[test]
    fn bad_windows_name_the_field() {
        let now = at("2026-11-22T12:00:00Z");
        let err = Window::parse(Some("yesterday"), Some("nope"), now).unwrap_err();
        let fields: Vec<_> = err.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["from", "to"]);
        let err = Window::parse(
            Some("2026-11-22T10:00:00Z"),
            Some("2026-11-22T10:00:00Z"),
            now,
        )
        .unwrap_err();
        assert_eq!(err[0].field, "from");
        let err = Window::parse(
            Some("2024-01-01T00:00:00Z"),
            Some("2026-01-01T00:00:00Z"),
            now,
        )
        .unwrap_err();
        assert_eq!(err[0].field, "to");
        assert!(parse_granularity("week").is_err());
        assert!(RankBy::parse("orders").is_err());
    }

    #[test]
    fn a_30_day_window_reads_days_with_hours_and_minutes_at_the_edges() {
        let w = window("2026-10-23T10:31:00Z", "2026-11-22T10:31:00Z");
        let cover = w.cover();
        let count = |g| cover.iter().filter(|b| b.granularity == g).count();
        assert_eq!(count(Granularity::Day), 29);
        assert_eq!(count(Granularity::Hour), 13 + 10);
        assert_eq!(count(Granularity::Minute), 29 + 31);
        assert!(cover.len() < 200, "not 43,200 minutes");
    }

    #[test]
    fn the_cover_tiles_the_window_exactly() {
        for (from, to) in [
            ("2026-11-22T10:31:00Z", "2026-11-22T10:32:00Z"),
            ("2026-11-21T23:59:00Z", "2026-11-22T00:01:00Z"),
            ("2026-11-01T00:00:00Z", "2026-11-30T00:00:00Z"),
            ("2026-10-23T10:31:00Z", "2026-11-22T10:31:00Z"),
        ] {
            let w = window(from, to);
            let cover = w.cover();
            let mut at = w.from;
            for bucket in &cover {
                assert_eq!(bucket.start, at, "contiguous");
                assert_eq!(bucket.start % bucket.granularity.seconds(), 0, "aligned");
                at = bucket.next().start;
            }
            assert_eq!(at, w.to, "ends at the window's end");
        }
    }

    #[test]
    fn sales_buckets_are_contiguous_and_bounded() {
        let w = window("2026-11-21T22:30:00Z", "2026-11-22T01:10:00Z");
        let hours = w.buckets(Granularity::Hour).unwrap();
        let starts: Vec<_> = hours.iter().map(|b| b.start_time().to_string()).collect();
        assert_eq!(
            starts,
            [
                "2026-11-21T22:00:00.000Z",
                "2026-11-21T23:00:00.000Z",
                "2026-11-22T00:00:00.000Z",
                "2026-11-22T01:00:00.000Z"
            ]
        );
        assert_eq!(w.buckets(Granularity::Day).unwrap().len(), 2);
        let day = window("2026-11-21T00:00:00Z", "2026-11-22T01:00:00Z");
        assert_eq!(day.buckets(Granularity::Minute).unwrap().len(), 1_500);
        let longer = window("2026-11-21T00:00:00Z", "2026-11-22T01:01:00Z");
        assert_eq!(
            longer.buckets(Granularity::Minute).unwrap_err().field,
            "granularity"
        );
    }

    #[test]
    fn summary_derives_rates_from_the_counters() {
        let totals = Totals {
            orders: 10,
            processed: 7,
            failed: 2,
            cancelled: 1,
            revenue: 10_001,
            units: 20,
            by_status: [1, 4, 2, 1, 1, 1],
        };
        let s = Summary::new(
            &window("2026-11-22T10:00:00Z", "2026-11-22T11:00:00Z"),
            &totals,
        );
        assert_eq!(s.average_order_value, 1_667, "10,001 / 6 rounded half up");
        assert_eq!(s.failure_rate, 0.2222);
        assert_eq!(s.by_status["CANCELLED"], 1);
        let empty = Summary::new(
            &window("2026-11-22T10:00:00Z", "2026-11-22T11:00:00Z"),
            &Totals::default(),
        );
        assert_eq!((empty.average_order_value, empty.failure_rate), (0, 0.0));
    }

    #[test]
    fn products_rank_by_the_chosen_measure_and_drop_cancelled_ones() {
        let id = |s: &str| ProductId::parse(s).unwrap();
        let p = |units, revenue| ProductTotals {
            units,
            revenue,
            orders: 1,
        };
        let products = BTreeMap::from([
            (id("a"), p(1, 900)),
            (id("b"), p(5, 500)),
            (id("c"), p(0, 0)),
            (id("d"), p(5, 100)),
        ]);
        let by_revenue: Vec<_> = rank_products(products.clone(), RankBy::Revenue, 10)
            .into_iter()
            .map(|(id, _)| id.to_string())
            .collect();
        assert_eq!(by_revenue, ["a", "b", "d"]);
        let by_units: Vec<_> = rank_products(products, RankBy::Units, 2)
            .into_iter()
            .map(|(id, _)| id.to_string())
            .collect();
        assert_eq!(by_units, ["b", "d"]);
    }
}
