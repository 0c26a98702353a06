//! Order commands after placement — cancel, ship, deliver, retry — and catalog writes.
//!
//! Every change is a conditional write on the order's `version` (optimistic concurrency):
//! of two concurrent changes exactly one is stored; the other gets `409` (or `412` when the
//! client sent `If-Match`). A repeated command (cancelling a cancelled order) returns the
//! order as it is; a retry, which moves the order on, is repeated safely with an
//! `Idempotency-Key` instead. Events come from the relay (the table's change stream), never
//! from here.

use orders_core::idempotency::{Claim, IdempotencyRecord, StoredResponse};
use orders_core::ports::{
    Applied, Catalog, CatalogWrite, Clock, IdempotencyStore, OrderCommands, StockChange,
};
use orders_core::{
    Caller, FailureReason, IdempotencyKey, Order, OrderError, OrderId, OrderStatus, Product,
    ProductId, PutProduct, RetryOrder, RetryRefused, StockAdjustment,
};
use std::sync::Arc;
use tracing::{info, instrument, warn};

pub struct CommandService<C, K> {
    pub commands: C,
    pub catalog: K,
    pub clock: Arc<dyn Clock>,
}

/// Statuses clients may set; the others belong to order processing.
/// How often a catalog update is redone after losing a race with a sale.
const STALE_RETRIES: usize = 3;

pub const CLIENT_STATUSES: [OrderStatus; 3] = [
    OrderStatus::Shipped,
    OrderStatus::Delivered,
    OrderStatus::Cancelled,
];

/// The answer to a retry: the order as JSON (what an `Idempotency-Key` replays, byte for
/// byte), its version for the `ETag`, and whether it is a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retried {
    pub body: String,
    pub version: u64,
    pub replayed: bool,
}

/// Where a retry's `Idempotency-Key` is remembered, and for how long.
pub struct Keyed<'a, I> {
    pub store: &'a I,
    pub key: IdempotencyKey,
    pub ttl_seconds: i64,
}

impl<C: OrderCommands, K: Catalog> CommandService<C, K> {
    /// Moves an order to `target`. `if_match` is the version the client last saw; an order
    /// `caller` may not see is not found.
    #[instrument(skip(self, caller), fields(order_id = %id, target = %target))]
    pub async fn change_status(
        &self,
        id: &OrderId,
        target: OrderStatus,
        if_match: Option<u64>,
        caller: &Caller,
    ) -> Result<Order, OrderError> {
        if !CLIENT_STATUSES.contains(&target) {
            return Err(OrderError::Conflict(format!(
                "{target} is set by order processing; clients may set SHIPPED, DELIVERED or CANCELLED"
            )));
        }
        let order = &self
            .commands
            .load(id)
            .await?
            .filter(|order| caller.may_see(order))
            .ok_or_else(|| OrderError::NotFound(format!("order {id}")))?;
        if let Some(expected) = if_match
            && expected != order.version
        {
            return Err(OrderError::PreconditionFailed {
                what: "order",
                current: order.version,
            });
        }
        if order.status == target {
            return Ok(order.clone());
        }
        let next = order
            .transition(target, self.clock.now())
            .map_err(|e| OrderError::Conflict(e.to_string()))?;
        let stock = if target == OrderStatus::Cancelled && order.holds_stock() {
            StockChange::Release(StockChange::lines(order))
        } else {
            StockChange::None
        };
        applied(
            self.commands.apply(&next, &stock).await?,
            order,
            if_match,
            "a concurrent transaction was writing the same stock; retry",
            |product| format!("releasing stock of {product} reported out of stock"),
        )?;
        info!(from = %order.status, version = next.version, "order status changed");
        Ok(next)
    }

    /// Puts a `FAILED` order back to `PENDING` for processing to try again ([`Order::retry`]):
    /// only when the failure can change (`out_of_stock`, `price_changed`), re-priced at the
    /// catalog's prices after `price_changed`, and refused without a change when the total
    /// is not `request.expected_total`. An order `caller` may not see is not found.
    ///
    /// With a key (`keyed`), as for placement: the key is claimed first; its repeat replays
    /// the first answer; a key whose first request died after claiming it answers the order
    /// as it is now if that request's retry went through (the order was retried since the
    /// claim), and retries it otherwise. Without a key, retrying an order that is no longer
    /// `FAILED` is a `409`, like any change its state does not allow.
    #[instrument(skip_all, fields(order_id = %id, idempotent = keyed.is_some()))]
    pub async fn retry<I: IdempotencyStore>(
        &self,
        id: &OrderId,
        request: RetryOrder,
        if_match: Option<u64>,
        caller: &Caller,
        keyed: Option<Keyed<'_, I>>,
    ) -> Result<Retried, OrderError> {
        let now = self.clock.now();
        let order = self
            .commands
            .load(id)
            .await?
            .filter(|order| caller.may_see(order))
            .ok_or_else(|| OrderError::NotFound(format!("order {id}")))?;

        if let Some(keyed) = &keyed {
            let record = IdempotencyRecord {
                key: keyed.key.clone(),
                request_fingerprint: request.fingerprint(id),
                order_id: *id,
                created_at: now,
                expires_at: now.plus_seconds(keyed.ttl_seconds),
                response: None,
            };
            if let Claim::Existing(existing) = keyed.store.claim(&record).await? {
                if existing.request_fingerprint != record.request_fingerprint {
                    return Err(OrderError::IdempotencyKeyReused);
                }
                if let Some(response) = existing.response {
                    info!("idempotent replay");
                    return Ok(Retried {
                        version: version_of(&response.body)?,
                        body: response.body,
                        replayed: true,
                    });
                }
                // The first request claimed the key and stopped before answering. If it got
                // as far as the write, the order was retried after the claim (clocks of two
                // instances agree far closer than a client's retry interval).
                if order.status != OrderStatus::Failed
                    && order.retried_at.is_some_and(|at| at >= existing.created_at)
                {
                    info!(status = %order.status, "finishing a retry whose answer was lost");
                    return self.answer(&order, Some(keyed)).await;
                }
            }
        }

        if let Some(expected) = if_match
            && expected != order.version
        {
            return Err(OrderError::PreconditionFailed {
                what: "order",
                current: order.version,
            });
        }
        // Re-pricing reads the catalog as placement does; other retries keep their prices.
        let catalog = if order.status == OrderStatus::Failed
            && order.failure_reason == Some(FailureReason::PriceChanged)
        {
            let ids: Vec<ProductId> = order.items.iter().map(|i| i.product_id.clone()).collect();
            self.catalog.get_many(&ids).await?
        } else {
            Vec::new()
        };
        let next = order
            .retry(&catalog, now)
            .map_err(|refused| match refused {
                RetryRefused::NotFailed(_) => OrderError::Conflict(refused.to_string()),
                RetryRefused::NotRetryable(_) => OrderError::NotRetryable(refused.to_string()),
                RetryRefused::TotalOverflow => OrderError::Unexpected(refused.into()),
            })?;
        if let Some(expected) = request.expected_total
            && expected != next.total
        {
            return Err(OrderError::TotalChanged {
                expected,
                total: next.total,
                lines: order.price_changes(&next),
            });
        }
        applied(
            self.commands.apply(&next, &StockChange::None).await?,
            &order,
            if_match,
            "a concurrent transaction was writing the order; retry",
            |product| format!("a retry, which reserves nothing, was refused for {product}"),
        )?;
        info!(
            version = next.version,
            retries = next.retries,
            total = next.total.minor(),
            repriced = next.total != order.total,
            "order retried"
        );
        self.answer(&next, keyed.as_ref()).await
    }

    /// The answer for `order`, remembered for the key if there is one.
    async fn answer<I: IdempotencyStore>(
        &self,
        order: &Order,
        keyed: Option<&Keyed<'_, I>>,
    ) -> Result<Retried, OrderError> {
        let body = serde_json::to_string(order).map_err(|e| OrderError::Unexpected(e.into()))?;
        if let Some(keyed) = keyed {
            let response = StoredResponse {
                status: 200,
                body: body.clone(),
            };
            // The order is retried; failing to remember the answer only means a repeat of the
            // key finds it unfinished, and answers the order as it is then.
            if let Err(err) = keyed.store.complete(&keyed.key, &response).await {
                warn!(error = %err, "could not record the idempotent response");
            }
        }
        Ok(Retried {
            body,
            version: order.version,
            replayed: false,
        })
    }

    /// Creates a catalog entry, or updates one: name and price always, the stock only
    /// against the version the client read (`if_match`), since a sale since then moved it.
    /// True when created.
    #[instrument(skip(self, body), fields(product_id = %id))]
    pub async fn put_product(
        &self,
        id: ProductId,
        body: PutProduct,
        if_match: Option<u64>,
    ) -> Result<(Product, bool), OrderError> {
        // A rename without If-Match only loses a race with a sale (the version moved under
        // it) and can simply be redone on the new version.
        for _ in 0..STALE_RETRIES {
            let now = self.clock.now();
            let Some(current) = self.catalog.get(&id).await? else {
                // If-Match on nothing can never hold (RFC 9110): there is no version 0.
                if if_match.is_some() {
                    return Err(OrderError::PreconditionFailed {
                        what: "product",
                        current: 0,
                    });
                }
                let product = Product {
                    product_id: id.clone(),
                    name: body.name.clone(),
                    price: body.price,
                    stock: body.stock.unwrap_or(0),
                    version: 1,
                    updated_at: now,
                };
                if self.catalog.create(&product).await? == CatalogWrite::Done {
                    info!(stock = product.stock, "product created");
                    return Ok((product, true));
                }
                continue; // created meanwhile: update it instead
            };
            if let Some(expected) = if_match
                && expected != current.version
            {
                return Err(OrderError::PreconditionFailed {
                    what: "product",
                    current: current.version,
                });
            }
            if body.stock.is_some() && if_match.is_none() {
                return Err(OrderError::PreconditionRequired(
                    "replacing the stock of an existing product needs If-Match with its ETag \
                     (a sale since your read would be undone); or adjust it with \
                     POST /products/{productId}/stock"
                        .into(),
                ));
            }
            let next = Product {
                product_id: id.clone(),
                name: body.name.clone(),
                price: body.price,
                stock: body.stock.unwrap_or(current.stock),
                version: current.version + 1,
                updated_at: now,
            };
            match self.catalog.update(&next, body.stock.is_some()).await? {
                CatalogWrite::Done => {
                    info!(
                        version = next.version,
                        stock_set = body.stock.is_some(),
                        "product updated"
                    );
                    return Ok((next, false));
                }
                CatalogWrite::Refused if if_match.is_some() => {
                    return Err(OrderError::PreconditionFailed {
                        what: "product",
                        current: current.version + 1,
                    });
                }
                CatalogWrite::Refused => continue,
            }
        }
        // Sales kept winning the race: transient, like a throttle.
        Err(OrderError::Unavailable(
            "the product kept changing while this request was being handled".into(),
        ))
    }

    /// Adds (or takes out) stock atomically; `None` when the product does not exist.
    #[instrument(skip(self), fields(product_id = %id))]
    pub async fn adjust_stock(
        &self,
        id: &ProductId,
        change: StockAdjustment,
    ) -> Result<Product, OrderError> {
        if let Some(product) = self
            .catalog
            .adjust_stock(id, change.add, self.clock.now())
            .await?
        {
            info!(add = change.add, stock = product.stock, "stock adjusted");
            return Ok(product);
        }
        match self.catalog.get(id).await? {
            None => Err(OrderError::NotFound(format!("product {id}"))),
            Some(product) => Err(OrderError::Conflict(format!(
                "product {id} has {} in stock: taking out {} would go below zero",
                product.stock,
                change.add.unsigned_abs()
            ))),
        }
    }
}

/// The version of an order answered earlier (a stored response), for its `ETag`.
fn version_of(body: &str) -> Result<u64, OrderError> {
    #[derive(serde::Deserialize)]
    struct Versioned {
        version: u64,
    }
    serde_json::from_str::<Versioned>(body)
        .map(|v| v.version)
        .map_err(|e| OrderError::Unexpected(format!("a stored retry answer: {e}").into()))
}

/// What a conditional write of the next version of `order` means to the client: a version
/// changed under it is `412` when it sent `If-Match`, else `409`; a lost transaction race
/// may pass on retry (`contended`); a refusal is a bug (`refused` names it).
fn applied(
    result: Applied,
    order: &Order,
    if_match: Option<u64>,
    contended: &str,
    refused: impl FnOnce(&ProductId) -> String,
) -> Result<(), OrderError> {
    match result {
        Applied::Done => Ok(()),
        Applied::StaleVersion if if_match.is_some() => Err(OrderError::PreconditionFailed {
            what: "order",
            current: order.version + 1,
        }),
        Applied::StaleVersion => Err(OrderError::Conflict(
            "the order changed while this request was being handled; read it again".into(),
        )),
        Applied::Contended => Err(OrderError::Unavailable(contended.to_owned().into())),
        Applied::Refused(product) => Err(OrderError::Unexpected(refused(&product).into())),
    }
}
