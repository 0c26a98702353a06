//! `backfill-listing-keys` against the emulator: orders stored before the
//! customer-and-status index existed are found by that listing afterwards; a dry run and a
//! second run change nothing.

use aws_sdk_dynamodb::types::AttributeValue;
use orders_aws::DynamoOrderStore;
use orders_aws::dynamo::orders::order_item;
use orders_core::listing::{CreatedWindow, ListOrders};
use orders_core::order::NewLineItem;
use orders_core::ports::OrderStore;
use orders_core::{
    Currency, CustomerId, Money, Order, OrderId, OrderStatus, PlaceOrder, ProductId, Quantity,
    Timestamp,
};
use orders_tests::Emulator;

fn order(n: u128, status: OrderStatus) -> Order {
    let command = PlaceOrder {
        customer_id: CustomerId::parse("c-old").unwrap(),
        currency: Currency::parse("USD").unwrap(),
        items: vec![NewLineItem {
            product_id: ProductId::parse("sku-1").unwrap(),
            quantity: Quantity::new(1).unwrap(),
            unit_price: Money::from_minor(500).unwrap(),
        }],
    };
    let at = Timestamp::now();
    let mut order = Order::place(
        OrderId::new(ulid::Ulid::from_parts(at.unix_millis() as u64, n)),
        &command,
        at,
    );
    order.status = status;
    order
}

fn delivered(store_page: &orders_core::listing::OrderPage) -> Vec<OrderId> {
    store_page.orders.iter().map(|o| o.order_id).collect()
}

#[tokio::test]
async fn orders_stored_before_the_index_are_listed_by_customer_and_status_after_it() {
    let emulator = Emulator::connect().await;
    let table = emulator.clone_table("orders_table").await;
    let client = orders_aws::config::dynamodb_client(&emulator.sdk);
    let store = DynamoOrderStore::new(client.clone(), &table);
    // Two orders as an earlier version stored them (no customerStatus), one as today.
    let old: Vec<Order> = (0..2).map(|n| order(n, OrderStatus::Delivered)).collect();
    for o in &old {
        let mut item = order_item(o).unwrap();
        item.remove("customerStatus");
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }
    let new = order(2, OrderStatus::Delivered);
    store.create(&new).await.unwrap();
    let query = ListOrders {
        status: Some(OrderStatus::Delivered),
        customer_id: Some(CustomerId::parse("c-old").unwrap()),
        limit: 10,
        before: None,
        window: CreatedWindow::ALL,
    };
    assert_eq!(
        delivered(&store.list(&query).await.unwrap()),
        vec![new.order_id]
    );

    let dry = store.backfill_listing_keys(true).await.unwrap();
    assert_eq!((dry.missing, dry.updated), (2, 0));
    assert_eq!(
        store.list(&query).await.unwrap().orders.len(),
        1,
        "a dry run writes nothing"
    );

    let done = store.backfill_listing_keys(false).await.unwrap();
    assert_eq!(
        (done.missing, done.updated, done.changed_meanwhile),
        (2, 2, 0)
    );
    let mut expected: Vec<OrderId> = old
        .iter()
        .map(|o| o.order_id)
        .chain([new.order_id])
        .collect();
    expected.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(delivered(&store.list(&query).await.unwrap()), expected);
    let stored = client
        .get_item()
        .table_name(&table)
        .key("orderId", AttributeValue::S(old[0].order_id.to_string()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(
        stored.get("customerStatus"),
        Some(&AttributeValue::S("c-old#DELIVERED".into()))
    );

    let again = store.backfill_listing_keys(false).await.unwrap();
    assert_eq!(again, orders_aws::Backfill::default());
}
