//! `local-runner`: runs the real function binaries the way Lambda does, behind a local
//! API Gateway HTTP API, using the configuration Terraform deployed to the emulator.
//!
//! The emulator (moto) stores functions and APIs but cannot execute functions. This crate fills
//! that gap:
//!
//! - [`discovery`]: reads functions (env, timeout, memory, `orders:binary` tag) and the HTTP
//!   API's routes/integrations from the emulator.
//! - [`instances`]: invocation queues, on-demand process instances, timeouts, crash handling;
//!   exposes [`instances::Runtime::invoke`] for any event source.
//! - [`runtime_api`]: the Lambda Runtime API the function binaries talk to.
//! - [`routes`] + [`payload`] + [`gateway`]: the API Gateway front door (route selection,
//!   payload format 2.0, response translation); [`authorizer`]: the routes' JWT authorizers,
//!   checked as API Gateway checks them; [`issuer`]: the development OIDC issuer they trust.
//! - [`event_sources`] + [`kinesis_poller`] + [`dynamodb_streams`]: Lambda event source mappings
//!   for streams (Kinesis data streams, DynamoDB Streams):
//!   per-shard polling, batching, partial batch responses, bisection, retries, on-failure
//!   destinations and persistent checkpoints.
//! - [`websocket`]: the API Gateway WebSocket API (`$connect` / messages / `$disconnect`
//!   routes, route selection and responses, the `@connections` management API).

pub mod authorizer;
pub mod discovery;
pub mod dynamodb_streams;
pub mod event_sources;
pub mod gateway;
pub mod instances;
pub mod invoke_api;
pub mod issuer;
pub mod kinesis_poller;
pub mod payload;
pub mod routes;
pub mod runtime_api;
pub mod websocket;

pub use instances::{FunctionConfig, InvokeError, PoolStats, Runtime, RuntimeSettings};
