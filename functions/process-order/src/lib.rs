//! `process-order`: turns `OrderPlaced` and `OrderRetried` events into `PROCESSED` or
//! `FAILED` orders.
//!
//! For each `OrderPlaced` record (and each `OrderRetried`: a failed order back in `PENDING`,
//! processed the same way at its own version): every line's product must exist (else
//! `FAILED`, `unknown_product`), at the order's price (else `price_changed`), and have the
//! stock (else `FAILED`, `out_of_stock`); then the stock of
//! every line is reserved and the order set `PROCESSED` in one DynamoDB transaction guarded
//! by the order's version, so stock and status can never disagree. The outcome is published
//! to the same stream (`OrderProcessed` / `OrderFailed`); other event types are skipped.
//!
//! # Delivery semantics
//! Kinesis delivers at least once. Redelivery is harmless: the transition is conditional on
//! the event's version (1 for a placed order), so a second delivery finds the order already
//! handled and publishes nothing (unless the first delivery died before its event went out —
//! see `orders_core::outbox`). An `OrderPlaced` redelivered after the order was retried finds
//! it at a later version, which its own `OrderRetried` processes.
//! Failures are sorted by whether retrying can help:
//! - transient (throttling, timeouts, transaction conflicts): the record is reported in
//!   `batchItemFailures`, so Lambda retries from it (ReportBatchItemFailures);
//! - poison (not JSON, unknown schema version, malformed, order not found): retrying cannot
//!   help, so the record goes straight to the dead-letter queue with its full content and
//!   the shard moves on.

pub mod config;
pub mod processor;

pub use config::Config;
pub use processor::OrderProcessor;
