//! The use-case error shared by every function. The HTTP edge maps it to a status code in
//! exactly one place (`orders-http`); stream consumers use [`OrderError::is_retryable`].

use std::error::Error as StdError;

pub type BoxError = Box<dyn StdError + Send + Sync>;

/// One bad field of a request, named by its JSON path (`items[0].quantity`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// The client sent something we will not accept; nothing was written.
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),

    /// What was not found: `order 01J…`, `product sku-1`.
    #[error("{0} was not found")]
    NotFound(String),

    /// The caller's role does not allow this (a customer on a staff route, or acting for
    /// another customer).
    #[error("{0}")]
    Forbidden(String),

    /// The request conflicts with the order's current state (an illegal status change, or
    /// a concurrent change won the race).
    #[error("{0}")]
    Conflict(String),

    /// `If-Match` named a version that is no longer current (`what`: order, product).
    #[error("the {what} is at version {current}, not the version given in If-Match")]
    PreconditionFailed { what: &'static str, current: u64 },

    /// The change is only safe against a known version: the request must send `If-Match`.
    #[error("{0}")]
    PreconditionRequired(String),

    /// Lines were sent with a price that is not the catalog's; nothing was stored.
    #[error("the catalog price of {} line(s) differs from the unitPrice sent", .0.len())]
    PriceChanged(Vec<crate::order::PriceMismatch>),

    /// A retry of an order whose failure cannot change by processing it again
    /// (`unknown_product`); nothing was written.
    #[error("{0}")]
    NotRetryable(String),

    /// A retry would leave the order at a total other than the one the caller expected
    /// (`expectedTotal`), having re-priced it; nothing was written. `lines` names each line
    /// whose price changed.
    #[error(
        "at the catalog's current prices the order's total is {total}, not the expected {expected}"
    )]
    TotalChanged {
        expected: crate::money::Money,
        total: crate::money::Money,
        lines: Vec<crate::order::PriceMismatch>,
    },

    /// The `Idempotency-Key` was first used with a different request body.
    #[error("the Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,

    /// AWS asked us to slow down; the client should retry after a moment.
    #[error("a dependency is throttling requests")]
    Throttled(#[source] BoxError),

    /// A dependency failed or timed out; a retry may succeed.
    #[error("a dependency is unavailable")]
    Unavailable(#[source] BoxError),

    /// A bug or corrupt data; retrying will not help.
    #[error(transparent)]
    Unexpected(BoxError),
}

impl OrderError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// Whether retrying the same request later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Throttled(_) | Self::Unavailable(_))
    }
}
