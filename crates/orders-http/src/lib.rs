//! The HTTP edge shared by the API functions (`place-order`, `query`): the error shape,
//! JSON bodies in and out, and the one mapping from domain errors to status codes.
//!
//! Every error response has the same shape:
//! `{"error":{"code":"validation_failed","message":"…","fields":[{"field":"…","message":"…"}]}}`

pub mod error;
pub mod request;
pub mod response;

pub use error::ApiError;
pub use lambda_http::{Body, Request, RequestExt, Response};
