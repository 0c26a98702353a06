//! `orders-sim`: realistic, reproducible traffic against the orders API (the local stack or
//! AWS), and a reconcile that checks the analytics add up to exactly what was placed.
//!
//! # Layout
//! - [`traffic`]: the seeded generator — catalog, customers who come back, Zipf-like product
//!   popularity, basket sizes, invalid requests, planned cancellations and shipments; storefront
//!   sessions ([`traffic::sessions`]) and their `POST /events` batches with redelivered copies
//!   ([`traffic::batches`]). Pure.
//! - [`api`]: the HTTP API as typed calls, retried only where an `Idempotency-Key` or an
//!   `If-Match` makes a retry safe.
//! - [`run`]: sends the traffic (at a rate or as fast as allowed), follows up on processed
//!   orders, then sends the sessions; counts answers and latency.
//! - [`ledger`]: what was placed and what each order must become; the events acknowledged.
//! - [`expect`]: the analytics a set of orders must produce (the contract's rules), and the
//!   differences from what the routes answered; the same for storefront events
//!   ([`expect::activity`]).
//! - [`reconcile`]: waits for processing, then compares (which window, and why: see there),
//!   the activity routes too when the run had sessions.
//! - [`stats`], [`window`]: latency percentiles; whole-minute windows.

pub mod api;
pub mod expect;
pub mod ledger;
pub mod reconcile;
pub mod run;
pub mod stats;
pub mod traffic;
pub mod window;
