//! Order commands after placement — cancel, ship, deliver — and catalog writes.
//!
//! Every change is a conditional write on the order's `version` (optimistic concurrency):
//! of two concurrent changes exactly one is stored; the other gets `409` (or `412` when the
//! client sent `If-Match`). A repeated command (cancelling a cancelled order) returns the
//! order as it is. Events come from the relay (the table's change stream), never from here.

use orders_core::ports::{Applied, Catalog, Clock, OrderCommands, StockChange};
use orders_core::{Order, OrderError, OrderId, OrderStatus, Product, ProductId, PutProduct};
use std::sync::Arc;
use tracing::{info, instrument};

pub struct CommandService<C, K> {
    pub commands: C,
    pub catalog: K,
    pub clock: Arc<dyn Clock>,
}

/// Statuses clients may set; the others belong to order processing.
pub const CLIENT_STATUSES: [OrderStatus; 3] = [
    OrderStatus::Shipped,
    OrderStatus::Delivered,
    OrderStatus::Cancelled,
];

impl<C: OrderCommands, K: Catalog> CommandService<C, K> {
    /// Moves an order to `target`. `if_match` is the version the client last saw.
    #[instrument(skip(self), fields(order_id = %id, target = %target))]
    pub async fn change_status(
        &self,
        id: &OrderId,
        target: OrderStatus,
        if_match: Option<u64>,
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
            .ok_or_else(|| OrderError::NotFound(id.to_string()))?;
        if let Some(expected) = if_match
            && expected != order.version
        {
            return Err(OrderError::PreconditionFailed {
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
                    current: order.version + 1,
                });
            }
            Applied::StaleVersion => {
                return Err(OrderError::Conflict(
                    "the order changed while this request was being handled; read it again".into(),
                ));
            }
            Applied::OutOfStock(product) => {
                return Err(OrderError::Unexpected(
                    format!("releasing stock of {product} reported out of stock").into(),
                ));
            }
        }
        info!(from = %order.status, version = next.version, "order status changed");
        Ok(next)
    }

    /// Creates or replaces a catalog entry; true when created.
    #[instrument(skip(self, body), fields(product_id = %id))]
    pub async fn put_product(
        &self,
        id: ProductId,
        body: PutProduct,
    ) -> Result<(Product, bool), OrderError> {
        let product = Product {
            product_id: id,
            name: body.name,
            price: body.price,
            stock: body.stock,
            updated_at: self.clock.now(),
        };
        let created = self.catalog.put(&product).await?;
        info!(created, stock = product.stock, "product stored");
        Ok((product, created))
    }
}
