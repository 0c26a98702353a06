//! Publishing a change after it is stored, without losing or duplicating it.
//!
//! Writers store a new order version first, then publish its event, then record the
//! version as published ([`OrderCommands::mark_published`]). A crash or a failed publish in
//! between leaves `published_version < version`; whoever retries the change finds that and
//! publishes the same event (same derived `eventId`). A duplicate *record* is possible only
//! if the process dies between publishing and marking — consumers drop it by `eventId`.

use crate::error::OrderError;
use crate::event::{EventEnvelope, OrderEvent};
use crate::order::Order;
use crate::ports::{EventPublisher, OrderCommands, StoredOrder};

/// Publishes the event for `order`'s current version and marks it published.
pub async fn publish_current<C, P>(
    commands: &C,
    publisher: &P,
    order: &Order,
) -> Result<(), OrderError>
where
    C: OrderCommands + ?Sized,
    P: EventPublisher + ?Sized,
{
    publisher
        .publish(&EventEnvelope::new(OrderEvent::for_current_state(order)))
        .await?;
    commands
        .mark_published(&order.order_id, order.version)
        .await
}

/// For a retried change that is already stored: publishes its event unless it is known to
/// be on the stream.
pub async fn publish_if_pending<C, P>(
    commands: &C,
    publisher: &P,
    stored: &StoredOrder,
) -> Result<(), OrderError>
where
    C: OrderCommands + ?Sized,
    P: EventPublisher + ?Sized,
{
    if stored.published_version < stored.order.version {
        publish_current(commands, publisher, &stored.order).await?;
    }
    Ok(())
}
