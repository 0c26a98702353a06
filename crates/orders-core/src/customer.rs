//! `GET /customers/{customerId}`: one customer's history — orders by status, revenue,
//! first and last order — folded from its orders as the orders table holds them now.
//!
//! Revenue is the analytics' (`crate::analytics`): the totals of orders processed and not
//! cancelled since (`PROCESSED`, `SHIPPED`, `DELIVERED`), so the figures agree with the
//! dashboard's. Orders are counted by their current status: a cancelled order counts as
//! cancelled, whatever it was before.

use crate::error::OrderError;
use crate::ids::CustomerId;
use crate::listing::{CreatedWindow, ListOrders, MAX_LIMIT};
use crate::money::Currency;
use crate::order::{Order, OrderStatus};
use crate::ports::OrderStore;
use crate::report::average_half_up;
use crate::time::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerSummary {
    pub customer_id: CustomerId,
    /// Every order the customer placed, in any status.
    pub orders: u64,
    /// Orders by current status, every status present (0 when none).
    pub by_status: BTreeMap<&'static str, u64>,
    /// Minor units of `currency`: processed orders not cancelled since.
    pub revenue: i64,
    /// The orders' currency (a deployment takes one); absent without orders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    /// Units of the orders that hold revenue.
    pub units: u64,
    /// Revenue per order that holds revenue, rounded half up; 0 when none does.
    pub average_order_value: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_order_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_order_at: Option<Timestamp>,
}

impl CustomerSummary {
    pub fn new(customer_id: CustomerId) -> Self {
        Self {
            customer_id,
            orders: 0,
            by_status: OrderStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect(),
            revenue: 0,
            currency: None,
            units: 0,
            average_order_value: 0,
            first_order_at: None,
            last_order_at: None,
        }
    }

    /// Counts one order of the customer (each once: the caller pages through them).
    pub fn add(&mut self, order: &Order) -> Result<(), OrderError> {
        let overflow = || OrderError::Unexpected("a customer's revenue overflows i64".into());
        self.orders += 1;
        *self.by_status.entry(order.status.as_str()).or_default() += 1;
        self.currency.get_or_insert(order.currency.clone());
        if holds_revenue(order.status) {
            self.revenue = self
                .revenue
                .checked_add(order.total.minor())
                .ok_or_else(overflow)?;
            self.units = self.units.saturating_add(order.units());
        }
        let with_revenue: u64 = OrderStatus::ALL
            .iter()
            .filter(|s| holds_revenue(**s))
            .map(|s| self.by_status[s.as_str()])
            .sum();
        self.average_order_value = average_half_up(
            self.revenue,
            i64::try_from(with_revenue).unwrap_or(i64::MAX),
        );
        let at = order.created_at;
        self.first_order_at = Some(self.first_order_at.map_or(at, |t| t.min(at)));
        self.last_order_at = Some(self.last_order_at.map_or(at, |t| t.max(at)));
        Ok(())
    }
}

/// The customer's summary from its orders, read page by page (newest first, [`MAX_LIMIT`]
/// a page) from the customer's listing: ⌈orders / 100⌉ reads of the index the listing
/// uses, each of items a listing already returns.
pub async fn summarize<S: OrderStore>(
    store: &S,
    customer: &CustomerId,
) -> Result<CustomerSummary, OrderError> {
    let mut summary = CustomerSummary::new(customer.clone());
    let mut before = None;
    loop {
        let page = store
            .list(&ListOrders {
                status: None,
                customer_id: Some(customer.clone()),
                limit: MAX_LIMIT,
                before,
                window: CreatedWindow::ALL,
            })
            .await?;
        for order in &page.orders {
            summary.add(order)?;
        }
        match page.next {
            Some(last) => before = Some(last),
            None => return Ok(summary),
        }
    }
}

/// Whether an order in `status` holds revenue: processed and not cancelled since.
fn holds_revenue(status: OrderStatus) -> bool {
    matches!(
        status,
        OrderStatus::Processed | OrderStatus::Shipped | OrderStatus::Delivered
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::SequentialIds;
    use crate::order::NewLineItem;
    use crate::ports::OrderIds;
    use crate::{Money, PlaceOrder, ProductId, Quantity};

    fn order(ids: &SequentialIds, at: &str, total: i64, status: OrderStatus) -> Order {
        let now = Timestamp::parse(at).unwrap();
        let command = PlaceOrder {
            customer_id: CustomerId::parse("c-1").unwrap(),
            currency: Currency::parse("USD").unwrap(),
            items: vec![NewLineItem {
                product_id: ProductId::parse("sku-1").unwrap(),
                quantity: Quantity::new(2).unwrap(),
                unit_price: Money::from_minor(total / 2).unwrap(),
            }],
        };
        let mut order = Order::place(ids.next_id(now), &command, now);
        order.status = status;
        order
    }

    #[test]
    fn revenue_is_of_processed_orders_not_cancelled_and_times_span_all_orders() {
        let ids = SequentialIds::new();
        let mut summary = CustomerSummary::new(CustomerId::parse("c-1").unwrap());
        for o in [
            order(&ids, "2026-11-02T10:00:00Z", 1000, OrderStatus::Delivered),
            order(&ids, "2026-11-01T09:00:00Z", 500, OrderStatus::Cancelled),
            order(&ids, "2026-11-03T08:00:00Z", 301, OrderStatus::Processed),
            order(&ids, "2026-11-04T08:00:00Z", 700, OrderStatus::Failed),
            order(&ids, "2026-11-05T08:00:00Z", 900, OrderStatus::Pending),
        ] {
            summary.add(&o).unwrap();
        }
        assert_eq!(summary.orders, 5);
        assert_eq!(summary.revenue, 1000 + 300);
        assert_eq!(summary.units, 4);
        assert_eq!(summary.average_order_value, 650);
        assert_eq!(summary.by_status["CANCELLED"], 1);
        assert_eq!(summary.by_status["SHIPPED"], 0);
        assert_eq!(summary.by_status.len(), OrderStatus::ALL.len());
        assert_eq!(
            summary.first_order_at.unwrap().to_string(),
            "2026-11-01T09:00:00.000Z"
        );
        assert_eq!(
            summary.last_order_at.unwrap().to_string(),
            "2026-11-05T08:00:00.000Z"
        );
    }

    #[test]
    fn a_summary_reads_every_page_of_the_customers_orders_and_no_one_elses() {
        crate::memory::run(every_page());
    }

    async fn every_page() {
        let store = crate::memory::MemoryOrderStore::new();
        let ids = SequentialIds::new();
        for i in 0..(MAX_LIMIT as i64 * 2 + 5) {
            let o = order(
                &ids,
                "2026-11-02T10:00:00Z",
                100 + 2 * i,
                OrderStatus::Processed,
            );
            store.create(&o).await.unwrap();
        }
        let mut other = order(&ids, "2026-11-02T10:00:00Z", 5000, OrderStatus::Processed);
        other.customer_id = CustomerId::parse("c-2").unwrap();
        store.create(&other).await.unwrap();
        let summary = summarize(&store, &CustomerId::parse("c-1").unwrap())
            .await
            .unwrap();
        assert_eq!(summary.orders, 205);
        let n = 205i64;
        assert_eq!(summary.revenue, 100 * n + n * (n - 1));
    }

    #[test]
    fn without_orders_everything_is_zero() {
        let summary = CustomerSummary::new(CustomerId::parse("c-1").unwrap());
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["orders"], 0);
        assert!(json.get("firstOrderAt").is_none() && json.get("currency").is_none());
    }
}
