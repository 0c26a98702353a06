//! `rebuild-aggregates` against the emulator: buckets recomputed from the orders table,
//! corrupted counters repaired, watermarks kept, nothing written when already right.

use aws_sdk_dynamodb::types::AttributeValue;
use orders_admin::rebuild::{RebuildOptions, parse_time, rebuild};
use orders_aws::{DynamoAnalytics, DynamoOrderStore};
use orders_core::analytics::{Bucket, Fold, Granularity};
use orders_core::order::NewLineItem;
use orders_core::ports::OrderStore;
use orders_core::{
    Currency, CustomerId, FailureReason, Money, Order, OrderId, OrderStatus, PlaceOrder, ProductId,
    Quantity, Timestamp,
};
use orders_tests::Emulator;

fn order(i: u32, created: Timestamp) -> Order {
    let command = PlaceOrder {
        customer_id: CustomerId::parse(&format!("c-{}", i % 4)).unwrap(),
        currency: Currency::parse("USD").unwrap(),
        items: vec![NewLineItem {
            product_id: ProductId::parse(&format!("sku-{}", i % 3)).unwrap(),
            quantity: Quantity::new(1 + i % 2).unwrap(),
            unit_price: Money::from_minor(700).unwrap(),
        }],
    };
    let placed = Order::place(
        OrderId::new(ulid::Ulid::from_parts(
            created.unix_millis() as u64,
            u128::from(i),
        )),
        &command,
        created,
    );
    let later = created.plus_seconds(1);
    match i % 4 {
        0 => placed,
        1 => placed.transition(OrderStatus::Processed, later).unwrap(),
        2 => placed.fail(FailureReason::OutOfStock, later).unwrap(),
        _ => placed
            .transition(OrderStatus::Processed, later)
            .unwrap()
            .transition(OrderStatus::Cancelled, later)
            .unwrap(),
    }
}

#[tokio::test]
async fn rebuilds_repairs_and_keeps_watermarks() {
    let emulator = Emulator::connect().await;
    let (orders_table, analytics_table) = tokio::join!(
        emulator.clone_table("orders_table"),
        emulator.clone_table("analytics_table")
    );
    let store = DynamoOrderStore::from_sdk(&emulator.sdk, &orders_table);
    let analytics = DynamoAnalytics::from_sdk(&emulator.sdk, &analytics_table, "unused", 0);

    let start = parse_time("2025-03-09T23:50:00Z").unwrap();
    let mut fold = Fold::default();
    for i in 0..30 {
        // Across midnight: two days, several hours' worth of minutes.
        let o = order(i, start.plus_seconds(i64::from(i) * 45));
        store.create(&o).await.unwrap();
        fold.add_order(&o);
    }
    // An order outside the range must not count.
    store
        .create(&order(99, parse_time("2025-03-12T08:00:00Z").unwrap()))
        .await
        .unwrap();

    let options = |dry_run| RebuildOptions {
        from: parse_time("2025-03-09").unwrap(),
        to: parse_time("2025-03-11").unwrap(),
        dry_run,
    };
    let mut out = Vec::new();
    let report = rebuild(&store, &analytics, &options(false), &mut out)
        .await
        .unwrap();
    assert_eq!(report.orders, 30);
    // Two days, the 24 hours of each, and the 60 minutes of the two hours with orders.
    assert_eq!(report.buckets, 2 + 48 + 2 * 60);
    assert!(report.items_written > 0);
    for bucket in fold.buckets() {
        let mut stored = analytics.bucket(&bucket).await.unwrap();
        stored.products.retain(|_, p| *p != Default::default());
        assert_eq!(stored, fold.view(&bucket), "{bucket}");
    }

    // Corrupt the day's totals (keeping a watermark on it), add a stray product counter.
    let day = Bucket::containing(Granularity::Day, start);
    let key = |item: &str| AttributeValue::S(format!("{day}/{item}"));
    emulator
        .dynamodb()
        .update_item()
        .table_name(&analytics_table)
        .key("pk", key("totals"))
        .update_expression("SET orders = :n, #wm = :w")
        .expression_attribute_names("#wm", "wm#shardId-000000000000")
        .expression_attribute_values(":n", AttributeValue::N("999".into()))
        .expression_attribute_values(":w", AttributeValue::S("0042".into()))
        .send()
        .await
        .unwrap();
    emulator
        .dynamodb()
        .update_item()
        .table_name(&analytics_table)
        .key("pk", key("products#00"))
        .update_expression("SET #u = :n")
        .expression_attribute_names("#u", "u#sku-ghost")
        .expression_attribute_values(":n", AttributeValue::N("5".into()))
        .send()
        .await
        .unwrap();

    let dry = rebuild(&store, &analytics, &options(true), &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(
        (dry.differing, dry.items_written),
        (1, 0),
        "the dry run reports, changes nothing"
    );
    assert_eq!(analytics.bucket(&day).await.unwrap().totals.orders, 999);

    let repair = rebuild(&store, &analytics, &options(false), &mut Vec::new())
        .await
        .unwrap();
    assert_eq!((repair.differing, repair.items_written), (1, 2));
    let mut repaired = analytics.bucket(&day).await.unwrap();
    repaired.products.retain(|_, p| *p != Default::default());
    assert_eq!(repaired, fold.view(&day));
    let totals = emulator
        .dynamodb()
        .get_item()
        .table_name(&analytics_table)
        .key("pk", key("totals"))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(
        totals["wm#shardId-000000000000"].as_s().unwrap(),
        "0042",
        "watermarks survive"
    );

    let again = rebuild(&store, &analytics, &options(false), &mut Vec::new())
        .await
        .unwrap();
    assert_eq!((again.differing, again.items_written), (0, 0), "idempotent");
}
