//! `relay`: the outbox relay. The orders table's change stream (DynamoDB Streams, new and
//! old images) is the outbox: every version a writer stores — placement, processing, a
//! client's cancel or ship — appears on it once the write commits, in write order per order,
//! whatever happens to the writer afterwards. This function turns each new version into its
//! event ([`orders_core::OrderEvent::for_current_state`], with the derived `eventId`) and
//! puts it on the order events stream, partitioned by order id.
//!
//! # Why a change stream and not a publish after each write
//! A writer that stores and then publishes loses the event when it dies in between (a
//! timeout, a crash, a throttled put), and a sweeper of "unpublished" markers costs an extra
//! write per version and a schedule. The change stream costs no write at all, keeps the
//! versions of one order in order, and is read by Lambda for free (see docs/cost.md).
//!
//! # Exactly once in effect
//! Records of one order are published one after the other; the first failure stops that
//! order and is reported as the batch item failure, so Lambda resumes there. Versions that
//! went out before the failure may go out again: with the same `eventId`, which consumers
//! drop. A record that can never become an event (an image that is not an order) goes to the
//! dead-letter queue with the whole record and why, and the shard moves on.

pub mod config;
pub mod relay;

pub use config::Config;
pub use relay::{Change, Relay, change_of};
