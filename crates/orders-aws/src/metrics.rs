//! Counts the AWS requests this process sends, per operation (`DynamoDB.TransactWriteItems`),
//! retries included — the figure that drives cost, measured where it happens instead of
//! estimated. Every client built by [`crate::config`] carries the interceptor; a function
//! reads and resets the counts once per invocation ([`take_request_counts`]) and logs them.

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Lambda runs one invocation per process at a time, so process-wide counts taken at the
/// end of an invocation are that invocation's counts.
static COUNTS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

#[derive(Debug, Clone, Copy, Default)]
pub struct CountRequests;

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(metadata) = cfg.load::<Metadata>() {
            let key = format!("{}.{}", metadata.service(), metadata.name());
            // A poisoned lock only means another thread panicked mid-increment: keep counting.
            let mut counts = COUNTS.lock().unwrap_or_else(|e| e.into_inner());
            *counts.entry(key).or_default() += 1;
        }
        Ok(())
    }
}

/// The counts since the last call, and resets them.
pub fn take_request_counts() -> BTreeMap<String, u64> {
    std::mem::take(&mut *COUNTS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// `DynamoDB.GetItem=2 Kinesis.PutRecord=1` — one log field.
pub fn format_counts(counts: &BTreeMap<String, u64>) -> String {
    counts
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}
