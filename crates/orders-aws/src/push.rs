//! Pushing to WebSocket clients through API Gateway's `@connections` API.

use crate::errors::classify;
use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use orders_core::OrderError;
use orders_core::ports::{Delivery, Pusher};

/// API Gateway's limit on one WebSocket message.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

#[derive(Debug, Clone)]
pub struct ApiGatewayPusher {
    client: Client,
}

impl ApiGatewayPusher {
    /// `callback_url`: the stage's `https://{api}.execute-api.{region}.amazonaws.com/{stage}`
    /// (the management API has no endpoint of its own: each API's stage is one).
    pub fn from_sdk(sdk: &aws_config::SdkConfig, callback_url: &str) -> Self {
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(callback_url)
            .interceptor(crate::metrics::CountRequests)
            .build();
        Self {
            client: Client::from_conf(config),
        }
    }
}

#[async_trait]
impl Pusher for ApiGatewayPusher {
    async fn push(&self, connection_id: &str, body: &str) -> Result<Delivery, OrderError> {
        // API Gateway would refuse it; a message that big is a bug of ours, not a retry.
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(OrderError::Unexpected(
                format!(
                    "a pushed message of {} bytes exceeds API Gateway's {MAX_MESSAGE_BYTES}",
                    body.len()
                )
                .into(),
            ));
        }
        let result = self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(body.as_bytes()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Delivery::Sent),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_gone_exception()) =>
            {
                Ok(Delivery::Gone)
            }
            Err(err) => Err(classify(err)),
        }
    }
}
