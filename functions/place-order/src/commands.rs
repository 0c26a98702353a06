//! Order commands after placement — cancel, ship, deliver — and catalog writes.
//!
//! Every change is a conditional write on the order's `version` (optimistic concurrency):
//! of two concurrent changes exactly one is stored; the other gets `409` (or `412` when the
//! client sent `If-Match`). A repeated command (cancelling a cancelled order) returns the
//! order as it is. Events come from the relay (the table's change stream), never from here.

use orders_core::ports::{Applied, Catalog, CatalogWrite, Clock, OrderCommands, StockChange};
use orders_core::{
    Caller, Order, OrderError, OrderId, OrderStatus, Product, ProductId, PutProduct,
    StockAdjustment,
};
use std::sync::Arc;
use tracing::{info, instrument};

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
        match self.commands.apply(&next, &stock).await? {
            Applied::Done => {}
            Applied::StaleVersion if if_match.is_some() => {
                return Err(OrderError::PreconditionFailed {
                    what: "order",
                    current: order.version + 1,
                });
            }
            Applied::StaleVersion => {
                return Err(OrderError::Conflict(
                    "the order changed while this request was being handled; read it again".into(),
                ));
            }
            Applied::Contended => {
                return Err(OrderError::Unavailable(
                    "a concurrent transaction was writing the same stock; retry".into(),
                ));
            }
            Applied::Refused(product) => {
                return Err(OrderError::Unexpected(
                    format!("releasing stock of {product} reported out of stock").into(),
                ));
            }
        }
        info!(from = %order.status, version = next.version, "order status changed");
        Ok(next)
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
