//! SDK errors → domain errors. Throttling and transport failures are retryable; anything
//! else is unexpected. The SDK error is kept as the source so logs show the whole story.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use orders_core::OrderError;
use std::error::Error as StdError;
use std::fmt::Debug;

/// Error codes AWS services use for "slow down".
const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "TooManyRequestsException",
    "KMSThrottlingException",
    "LimitExceededException",
];

pub fn classify<E, R>(err: SdkError<E, R>) -> OrderError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            OrderError::Unavailable(Box::new(err))
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            if THROTTLING_CODES.contains(&code) {
                OrderError::Throttled(Box::new(err))
            } else if matches!(
                code,
                "InternalServerError" | "ServiceUnavailable" | "InternalFailure"
            ) {
                OrderError::Unavailable(Box::new(err))
            } else {
                OrderError::Unexpected(Box::new(err))
            }
        }
        _ => OrderError::Unexpected(Box::new(err)),
    }
}

/// Data we wrote but cannot read back: a bug or a manual edit, never retryable.
pub fn corrupt(what: &str, err: impl StdError + Send + Sync + 'static) -> OrderError {
    OrderError::Unexpected(format!("{what}: {err}").into())
}
