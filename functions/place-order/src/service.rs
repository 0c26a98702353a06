//! The place-order use case, generic over the ports so tests can drive it against the
//! emulator (or fakes) with a controlled clock and ids.

use orders_aws::telemetry::metric;
use orders_core::idempotency::{Claim, IdempotencyRecord, StoredResponse};
use orders_core::ports::{Catalog, Clock, Created, IdempotencyStore, OrderIds, OrderStore};
use orders_core::{Currency, IdempotencyKey, Order, OrderError, OrderRequest};
use std::sync::Arc;
use tracing::{info, instrument, warn};

pub struct PlaceOrderService<S, I, K> {
    pub store: S,
    pub idempotency: I,
    /// Where prices come from.
    pub catalog: K,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn OrderIds>,
    pub currency: Currency,
    pub idempotency_ttl_seconds: i64,
}

/// The answer to a place-order request: status and the exact JSON body, so an idempotent
/// replay is byte-identical to the first answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub status: u16,
    pub body: String,
    pub order_id: String,
    /// True when this is a stored answer to an earlier request with the same key.
    pub replayed: bool,
}

impl<S: OrderStore, I: IdempotencyStore, K: Catalog> PlaceOrderService<S, I, K> {
    /// Places `request` at catalog prices. With a key, the key is bound to the request as
    /// sent: a retry replays the first answer, even if prices changed since; a request
    /// refused for a price (409) leaves the key to the same request, which is priced again.
    // No customer id or idempotency key in logs (personal data, and a key is a capability to
    // read an answer back): the order id leads to both for those allowed to see them.
    #[instrument(skip_all, fields(lines = request.items.len(), idempotent = key.is_some()))]
    pub async fn place(
        &self,
        request: OrderRequest,
        key: Option<IdempotencyKey>,
    ) -> Result<Placed, OrderError> {
        let now = self.clock.now();
        let mut order_id = self.ids.next_id(now);

        if let Some(key) = &key {
            let record = IdempotencyRecord {
                key: key.clone(),
                request_fingerprint: request.fingerprint(),
                order_id,
                created_at: now,
                expires_at: now.plus_seconds(self.idempotency_ttl_seconds),
                response: None,
            };
            if let Claim::Existing(existing) = self.idempotency.claim(&record).await? {
                if existing.request_fingerprint != record.request_fingerprint {
                    return Err(OrderError::IdempotencyKeyReused);
                }
                if let Some(response) = existing.response {
                    info!(order_id = %existing.order_id, "idempotent replay");
                    metrics::counter!(metric::IDEMPOTENT_REPLAYS).increment(1);
                    return Ok(Placed {
                        status: response.status,
                        body: response.body,
                        order_id: existing.order_id.to_string(),
                        replayed: true,
                    });
                }
                // An earlier attempt claimed the key but did not finish: finish *its* order.
                info!(order_id = %existing.order_id, "resuming an unfinished request");
                order_id = existing.order_id;
            }
        }

        let ids: Vec<_> = request.items.iter().map(|i| i.product_id.clone()).collect();
        let command = request
            .price(&self.catalog.get_many(&ids).await?)
            .map_err(OrderError::PriceChanged)?;
        let new_order = Order::place(order_id, &command, now);
        // The relay publishes `OrderPlaced` from the table's change stream. A retry that finds
        // the order already stored answers with it as it is now (perhaps processed since);
        // it publishes nothing, so no second `OrderPlaced` for a later version can appear.
        let order = match self.store.create(&new_order).await? {
            Created::New => new_order,
            Created::AlreadyExists(existing) => *existing,
        };

        let body = serde_json::to_string(&order).map_err(|e| OrderError::Unexpected(e.into()))?;
        if let Some(key) = &key {
            let response = StoredResponse {
                status: 201,
                body: body.clone(),
            };
            // The order exists; failing to remember the answer only means a retry redoes the
            // (idempotent) create, so the client still gets its 201.
            if let Err(err) = self.idempotency.complete(key, &response).await {
                warn!(error = %err, order_id = %order.order_id, "could not record the idempotent response");
            }
        }
        info!(
            order_id = %order.order_id,
            total = order.total.minor(),
            currency = %order.currency,
            lines = order.items.len(),
            "order placed"
        );
        metrics::counter!(metric::ORDERS_PLACED).increment(1);
        Ok(Placed {
            status: 201,
            body,
            order_id: order.order_id.to_string(),
            replayed: false,
        })
    }
}
