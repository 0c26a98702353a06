//! AWS adapters for the `orders-core` ports.
//!
//! # Layout
//! - [`config`]: reading configuration from the environment once, with clear errors, and
//!   building the SDK configuration (which honours `AWS_ENDPOINT_URL`, so the same binary
//!   talks to AWS, LocalStack or moto).
//! - [`dynamo`]: the orders table (and its listing indexes), the catalog, the idempotency
//!   table, and the analytics tables.
//! - [`kinesis`]: the event publisher.
//! - [`sqs`]: the dead-letter queue for records a stream consumer can never process.
//! - [`push`]: messages to WebSocket clients (API Gateway's `@connections` API).
//! - [`metrics`]: counting the AWS requests each invocation sends.
//! - [`telemetry`]: business metrics (orders placed, dead letters, …) as CloudWatch Embedded
//!   Metric Format on stdout, set up once per function and flushed after each invocation.
//! - [`batch`]: what every stream consumer does around its own decisions (dead letters,
//!   grouping by order, the retry point, batch metrics).
//! - [`deadline`]: stream consumers stop starting work near the end of an invocation.
//! - [`errors`]: turning SDK errors into the domain's retryable/non-retryable kinds, keeping
//!   the SDK error as the source.

pub mod batch;
pub mod config;
pub mod counters;
pub mod deadline;
pub mod dynamo;
pub mod errors;
pub mod kinesis;
pub mod metrics;
pub mod push;
pub mod sqs;
pub mod telemetry;

pub use dynamo::analytics::{
    DynamoAnalytics, DynamoAnalyticsReader, REBUILD_POSITION, Replaced, StoredBucket,
    StoredCounters,
};
pub use dynamo::catalog::DynamoCatalog;
pub use dynamo::commands::DynamoOrderCommands;
pub use dynamo::idempotency::DynamoIdempotencyStore;
pub use dynamo::live::DynamoLiveConnections;
pub use dynamo::orders::{Backfill, DynamoOrderStore};
pub use kinesis::KinesisPublisher;
pub use push::ApiGatewayPusher;
pub use sqs::SqsDeadLetterQueue;
