//! `aggregate-activity`: folds storefront activity (the `activity` stream, written by
//! `POST /events`) into time-bucketed counters and distinct sets, exactly once in effect
//! under at-least-once delivery — the order aggregate's scheme over other items
//! (`docs/activity.md`, `docs/aggregation.md`).
//!
//! - **Producer copies** (a client resent its batch; the API put a record twice) are
//!   dropped by claims: each event is claimed by its first record, keyed by its session
//!   and client-chosen id, grouped per session and minute (one write per group per batch).
//! - **Redeliveries** (retries, bisected batches) are neutralised by per-shard watermarks
//!   on every counter item, checked by the same conditional write that adds the delta.
//! - **Distinct sets** need neither: union and register maximum are idempotent.
//!
//! Undecodable records and writes the store refuses as sent go to the DLQ; anything else
//! (throttling, timeouts) hands the batch back from the lowest affected record, and the
//! mapping retries without limit, as the order aggregate's.

pub mod aggregator;
pub mod config;

pub use aggregator::ActivityAggregator;
pub use config::Config;
