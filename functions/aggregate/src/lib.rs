//! `aggregate`: folds order events into time-bucketed analytics, exactly once in effect
//! under at-least-once delivery.
//!
//! # Why the Kinesis stream, and how duplicates are neutralised
//! Kinesis delivers at least once in two ways: the same *record* again (retries, bisected
//! batches, partial-batch retries), and the same *event* in two records (a producer retried
//! a publish). The first is handled for free by per-shard watermarks stored on each counter
//! item and checked by the same conditional write that adds the delta; the second by
//! claiming each `eventId` for its first record (one small write per order per batch).
//! The orders table's change stream has no producer duplicates, but Lambda's DynamoDB
//! stream events do not say which shard a record came from, so watermarks could not be kept
//! per shard — every record would need its own dedup write, and the change stream carries
//! more records per order (the outbox marker updates). Details and costs:
//! `docs/aggregation.md`.
//!
//! # Failure handling
//! - Undecodable records go to the function's dead-letter queue and are skipped.
//! - Any other failure (throttling, timeouts) reports the lowest affected record, so Lambda
//!   retries from it; the watermarks make the retry exact. The mapping retries without limit
//!   (Terraform): an aggregate that dropped a batch would be wrong forever, so a stuck shard
//!   is preferred and alarmed on.

pub mod aggregator;
pub mod config;

pub use aggregator::Aggregator;
pub use config::Config;
