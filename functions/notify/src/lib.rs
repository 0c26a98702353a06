//! `notify`: a consumer of the order events stream that pushes each change to the sockets
//! allowed to see it (`orders_core::live`: staff every order and the analytics deltas, a
//! customer its own orders).
//!
//! # Cost and failures
//! A batch looks up its listeners once (one Query for staff's sockets, one per customer in
//! the batch) and sends each socket one frame with all its messages (`{"type":"batch",…}`
//! when there are several): API Gateway bills messages, so a dashboard costs at most one
//! message per batch — about one a second per shard under load — whatever the traffic. A
//! socket found closed (410) is forgotten. A push that fails and may succeed later
//! (throttling, a timeout) hands the whole batch back: Lambda delivers it again, sockets
//! that already got their frame get it again and drop what they have seen by `eventId`; after
//! the mapping's retries the records go to the DLQ like any consumer's. A record that is not
//! an event goes to the DLQ at once; events of types this consumer does not know are skipped.
//!
pub mod config;
pub mod notifier;

pub use config::Config;
pub use notifier::Notifier;
