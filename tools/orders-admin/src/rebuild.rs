//! `rebuild-aggregates`: recompute analytics buckets from the orders table, the source of
//! truth, and replace what is stored — for recovery (a bug wrote wrong totals) and for
//! schema changes.
//!
//! Each order's current state determines exactly what its events added up to
//! (`Fold::add_order`, tested against folding the events). The range is widened to whole
//! UTC days so every minute, hour and day bucket in it is rebuilt from all of its orders.
//! Only days and hours that hold something (stored or recomputed) are descended into.
//! Items keep their per-shard watermarks, so stream records that arrive later still apply
//! once on top. Exact when the orders in the range are not changing meanwhile (e.g. a past
//! day); for a range that is still live, pause the aggregate's event source mapping first.

use orders_aws::{DynamoAnalytics, DynamoOrderStore};
use orders_core::Timestamp;
use orders_core::analytics::{Bucket, BucketView, Fold, Granularity};
use std::io::Write;

pub struct RebuildOptions {
    pub from: Timestamp,
    pub to: Timestamp,
    pub dry_run: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct RebuildReport {
    pub orders: usize,
    pub buckets: usize,
    pub differing: usize,
    pub items_written: usize,
}

/// Parses `2026-11-21` or an RFC 3339 time.
pub fn parse_time(text: &str) -> Option<Timestamp> {
    Timestamp::parse(text).or_else(|| Timestamp::parse(&format!("{text}T00:00:00Z")))
}

/// `[from, to)` widened to whole UTC days.
pub fn whole_days(from: Timestamp, to: Timestamp) -> (Timestamp, Timestamp) {
    let day = |t: Timestamp| Bucket::containing(Granularity::Day, t);
    let start = day(from).start_time();
    let last = day(Timestamp::from_unix_millis(to.unix_millis() - 1).unwrap_or(to));
    (start, last.next().start_time())
}

/// Compares one bucket with its recomputed value and replaces it if they differ. Returns
/// whether the bucket holds anything (stored or recomputed), i.e. whether to descend.
async fn check(
    fold: &Fold,
    analytics: &DynamoAnalytics,
    bucket: Bucket,
    options: &RebuildOptions,
    report: &mut RebuildReport,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    report.buckets += 1;
    let desired = normalised(fold.view(&bucket));
    let stored = normalised(analytics.bucket(&bucket).await?);
    if stored != desired {
        report.differing += 1;
        writeln!(
            out,
            "{bucket}: stored orders={} revenue={} customers={}, recomputed orders={} revenue={} customers={}",
            stored.totals.orders,
            stored.totals.revenue,
            stored.customers.count().value,
            desired.totals.orders,
            desired.totals.revenue,
            desired.customers.count().value
        )?;
        if !options.dry_run {
            report.items_written += analytics.replace_bucket(&bucket, &desired).await?;
        }
    }
    Ok(stored != BucketView::default() || desired != BucketView::default())
}

fn normalised(mut view: BucketView) -> BucketView {
    view.products.retain(|_, p| *p != Default::default());
    view.customers = view.customers.bounded();
    view
}

pub async fn rebuild(
    orders: &DynamoOrderStore,
    analytics: &DynamoAnalytics,
    options: &RebuildOptions,
    out: &mut dyn Write,
) -> anyhow::Result<RebuildReport> {
    let (from, to) = whole_days(options.from, options.to);
    writeln!(
        out,
        "rebuilding [{from}, {to}) from the orders table{}",
        if options.dry_run { " (dry run)" } else { "" }
    )?;
    let created = orders.created_between(from, to).await?;
    let mut fold = Fold::default();
    for order in &created {
        fold.add_order(order);
    }
    let mut report = RebuildReport {
        orders: created.len(),
        ..RebuildReport::default()
    };
    // Days, then the hours of days that hold anything, then the minutes of such hours: a
    // bucket holds data only if its parent does, so empty stretches cost one read.
    let mut day = Bucket::containing(Granularity::Day, from);
    while day.start_time() < to {
        if check(&fold, analytics, day, options, &mut report, out).await? {
            let mut hour = Bucket::containing(Granularity::Hour, day.start_time());
            while hour.start_time() < day.next().start_time() {
                if check(&fold, analytics, hour, options, &mut report, out).await? {
                    let mut minute = Bucket::containing(Granularity::Minute, hour.start_time());
                    while minute.start_time() < hour.next().start_time() {
                        check(&fold, analytics, minute, options, &mut report, out).await?;
                        minute = minute.next();
                    }
                }
                hour = hour.next();
            }
        }
        day = day.next();
    }
    writeln!(
        out,
        "{} orders, {} buckets checked, {} differed, {} items written",
        report.orders, report.buckets, report.differing, report.items_written
    )?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_widen_to_whole_days() {
        let (from, to) = whole_days(
            parse_time("2026-11-21T10:30:00Z").unwrap(),
            parse_time("2026-11-22T00:00:00Z").unwrap(),
        );
        assert_eq!(
            (from.to_string().as_str(), to.to_string().as_str()),
            ("2026-11-21T00:00:00.000Z", "2026-11-22T00:00:00.000Z")
        );
        let (_, to) = whole_days(
            parse_time("2026-11-21").unwrap(),
            parse_time("2026-11-22T00:00:01Z").unwrap(),
        );
        assert_eq!(to.to_string(), "2026-11-23T00:00:00.000Z");
        assert!(parse_time("yesterday").is_none());
    }
}
