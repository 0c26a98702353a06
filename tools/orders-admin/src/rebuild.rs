//! `rebuild-aggregates`: recompute analytics buckets from the orders table, the source of
//! truth, and replace what is stored — for recovery (a bug wrote wrong totals, a write was
//! dead-lettered as unwritable) and for schema changes. Exact while orders keep flowing and
//! the aggregate keeps consuming.
//!
//! Per UTC day (the range is widened to whole days, so every minute, hour and day bucket in
//! it is rebuilt from all of its orders):
//! 1. the day's orders are read, to know which hours hold any;
//! 2. the stored buckets are read, consistently, with every counter item's per-shard
//!    watermarks: the day, its 24 hours, and the minutes of hours that hold anything (stored,
//!    ordered, or the current hour of a live day);
//! 3. the orders are read again: every event that reached an item read in 2 is in this read
//!    (an order is stored before it is published);
//! 4. every event of those orders (`OrderEvent::history`: one per version) is claimed for
//!    the rebuild in the event-claims table, so the stream skips it when its record comes
//!    (again). An event the stream claimed first stays the stream's; where its record is
//!    above an item's watermark the stream has still to add it there (a batch in flight, or
//!    retried after a failure), so the rebuild leaves exactly that much out of the item;
//! 5. each counter item is brought to what the orders add up to (`orders_core::rebuild`)
//!    by adding the difference to its open link, on condition that none of its watermarks
//!    moved since 2 — a write of the stream in between starts the day over (at most three
//!    times), so no live write is lost. Customer shards are merged (set union,
//!    register maximum), never replaced: a customer is never counted twice.
//!
//! Orders created in a minute that 2 did not read are left to the stream entirely: their
//! hour was empty when read, so none of their events is in what the rebuild replaces.
//! `--dry-run` claims and writes nothing.

use futures::stream::{self, StreamExt, TryStreamExt};
use orders_aws::{DynamoAnalytics, DynamoOrderStore, Replaced, StoredBucket};
use orders_core::analytics::{Bucket, BucketView, CounterItem, Fold, Granularity};
use orders_core::distinct::ShardSet;
use orders_core::ports::AnalyticsStore;
use orders_core::rebuild::{self, StreamOwned};
use orders_core::{EventEnvelope, Order, OrderEvent, Timestamp};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

/// Attempts per day when the stream writes an item between the read and the write.
const ATTEMPTS: usize = 3;
/// Orders claimed at once.
const CONCURRENT_CLAIMS: usize = 16;

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

impl RebuildReport {
    fn add(&mut self, other: &RebuildReport) {
        self.orders += other.orders;
        self.buckets += other.buckets;
        self.differing += other.differing;
        self.items_written += other.items_written;
    }
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

/// Rebuilds `[from, to)` widened to whole days. `shards` are the ids of every shard of the
/// order-events stream (the watermarks an item may carry).
pub async fn rebuild(
    orders: &DynamoOrderStore,
    analytics: &DynamoAnalytics,
    shards: &[String],
    options: &RebuildOptions,
    out: &mut dyn Write,
) -> anyhow::Result<RebuildReport> {
    let (from, to) = whole_days(options.from, options.to);
    writeln!(
        out,
        "rebuilding [{from}, {to}) from the orders table{}",
        if options.dry_run { " (dry run)" } else { "" }
    )?;
    let days = Days {
        orders,
        analytics,
        shards,
        dry_run: options.dry_run,
    };
    let mut report = RebuildReport::default();
    let mut day = Bucket::containing(Granularity::Day, from);
    while day.start_time() < to {
        let mut attempt = 1;
        loop {
            match days.rebuild(day, out).await? {
                Some(done) => {
                    report.add(&done);
                    break;
                }
                None if attempt < ATTEMPTS => {
                    writeln!(
                        out,
                        "{day}: the stream wrote an item meanwhile; starting the day over"
                    )?;
                    attempt += 1;
                }
                None => anyhow::bail!(
                    "{day}: the stream kept writing the day's items in {ATTEMPTS} attempts; \
                     disable the aggregate's event source mapping and run again"
                ),
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

struct Days<'a> {
    orders: &'a DynamoOrderStore,
    analytics: &'a DynamoAnalytics,
    shards: &'a [String],
    dry_run: bool,
}

impl Days<'_> {
    /// One day; `None` when a watermark moved under it (start over).
    async fn rebuild(
        &self,
        day: Bucket,
        out: &mut dyn Write,
    ) -> anyhow::Result<Option<RebuildReport>> {
        let started = Timestamp::now();
        let end = day.next().start_time();
        // 1. Which hours hold orders.
        let mut busy: BTreeSet<Bucket> = self
            .orders
            .created_between(day.start_time(), end)
            .await?
            .iter()
            .map(|o| Bucket::containing(Granularity::Hour, o.created_at))
            .collect();
        // A live day: orders arrive in the current hour (and the next, if it is close).
        for at in [started, started.plus_seconds(600)] {
            if at >= day.start_time() && at < end {
                busy.insert(Bucket::containing(Granularity::Hour, at));
            }
        }

        // 2. What is stored, before the orders are read again.
        let mut stored: BTreeMap<Bucket, StoredBucket> = BTreeMap::new();
        stored.insert(day, self.analytics.read_for_rebuild(&day).await?);
        for (hour, read) in self
            .read_all(&buckets_within(day, Granularity::Hour))
            .await?
        {
            if !read.is_empty() {
                busy.insert(hour);
            }
            stored.insert(hour, read);
        }
        let minutes: Vec<Bucket> = busy
            .iter()
            .flat_map(|hour| buckets_within(*hour, Granularity::Minute))
            .collect();
        stored.extend(self.read_all(&minutes).await?);

        // 3. The orders again; those of minutes read in 2 are the rebuild's.
        let covered: Vec<Order> = self
            .orders
            .created_between(day.start_time(), end)
            .await?
            .into_iter()
            .filter(|o| stored.contains_key(&Bucket::containing(Granularity::Minute, o.created_at)))
            .collect();
        let histories = covered
            .iter()
            .map(|o| {
                OrderEvent::history(o).ok_or_else(|| {
                    anyhow::anyhow!(
                        "order {} is {} at version {}: not a state the known transitions reach",
                        o.order_id,
                        o.status,
                        o.version
                    )
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;

        // 4. Claim every event; keep those the stream owns.
        let owned = if self.dry_run {
            Vec::new()
        } else {
            self.claim(&covered, &histories).await?
        };

        // 5. What the orders add up to, written under the watermarks read in 2.
        let mut fold = Fold::default();
        for order in &covered {
            fold.add_order(order);
        }
        let mut report = RebuildReport {
            orders: covered.len(),
            buckets: stored.len(),
            ..RebuildReport::default()
        };
        let views = fold.views();
        let nothing = BucketView::default();
        for (bucket, before) in &stored {
            let mut written = 0;
            let mut differs = false;
            for (item, counters) in &before.counters {
                let want = rebuild::target(item, &fold, &counters.watermarks, &owned);
                if counters.holds(&want) {
                    continue;
                }
                differs = true;
                if self.dry_run {
                    continue;
                }
                match self
                    .analytics
                    .replace_counters(item, &want, counters, self.shards)
                    .await?
                {
                    Replaced::Unchanged => {}
                    Replaced::Written => written += 1,
                    Replaced::Moved => return Ok(None),
                }
            }
            let view = views.get(bucket).unwrap_or(&nothing);
            for (shard, set) in view.customers.shards() {
                let ShardSet::Exact(ids) = set else { continue };
                let current = before.customers.shard(shard);
                if current.bounded_union(ids) == current {
                    continue;
                }
                differs = true;
                if !self.dry_run {
                    self.analytics.add_customers(bucket, shard, ids).await?;
                }
            }
            if differs {
                report.differing += 1;
                report.items_written += written;
                let item = CounterItem::Totals(*bucket);
                writeln!(
                    out,
                    "{bucket}: stored orders={} revenue={}, recomputed orders={} revenue={}",
                    before.counter(&item, "orders"),
                    before.counter(&item, "revenue"),
                    view.totals.orders,
                    view.totals.revenue
                )?;
            }
        }
        Ok(Some(report))
    }

    async fn read_all(&self, buckets: &[Bucket]) -> anyhow::Result<Vec<(Bucket, StoredBucket)>> {
        Ok(stream::iter(buckets.iter().copied())
            .map(|b| async move {
                self.analytics
                    .read_for_rebuild(&b)
                    .await
                    .map(|read| (b, read))
            })
            .buffered(8)
            .try_collect()
            .await?)
    }

    /// Claims every event of `orders` for the rebuild; returns those the stream owns.
    async fn claim(
        &self,
        orders: &[Order],
        histories: &[Vec<EventEnvelope>],
    ) -> anyhow::Result<Vec<StreamOwned>> {
        let claimed: Vec<Vec<StreamOwned>> = stream::iter(orders.iter().zip(histories))
            .map(|(order, events)| async move {
                let ids: Vec<_> = events.iter().map(|e| e.event_id).collect();
                let owners = self
                    .analytics
                    .claim_for_rebuild(&order.order_id, &ids)
                    .await?;
                let owned = events
                    .iter()
                    .zip(owners)
                    .filter_map(|(event, owner)| StreamOwned::at(event, &owner?))
                    .collect();
                Ok::<_, anyhow::Error>(owned)
            })
            .buffer_unordered(CONCURRENT_CLAIMS)
            .try_collect()
            .await?;
        Ok(claimed.into_iter().flatten().collect())
    }
}

/// The buckets of `granularity` within `parent`.
fn buckets_within(parent: Bucket, granularity: Granularity) -> Vec<Bucket> {
    let end = parent.next().start_time();
    let mut out = Vec::new();
    let mut b = Bucket::containing(granularity, parent.start_time());
    while b.start_time() < end {
        out.push(b);
        b = b.next();
    }
    out
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
