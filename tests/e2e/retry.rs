//! Retrying a failed order through the whole local stack: an order fails out of stock, staff
//! add stock, its customer retries it over HTTP, process-order processes it from its
//! `OrderRetried`, and the analytics of its minute count it once — placed, processed, not
//! failed. Only its own customer may retry it, only once without a key, and an order of a
//! product not in the catalog is never retried.

use crate::analytics::{own_day, place_at};
use crate::pipeline::put_product_at;
use crate::{api, client, client_as, unique};
use orders_aws::DynamoOrderStore;
use orders_core::order::NewLineItem;
use orders_core::ports::OrderStore;
use orders_core::{
    Currency, CustomerId, FailureReason, Money, Order, OrderStatus, PlaceOrder, ProductId,
    Quantity, Timestamp,
};
use orders_tests::{Emulator, Holder};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const DAY: i64 = 86_400;

/// Waits until the order is no longer PENDING, and returns it.
async fn settled(store: &DynamoOrderStore, order: &Order) -> Order {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = store.get(&order.order_id).await.unwrap().unwrap();
        if now.status != OrderStatus::Pending {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "order {} still PENDING after 120 s",
            order.order_id
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `POST /orders/{id}/retry` as `client`, retrying the 5xx a loaded local stack may answer
/// with the same Idempotency-Key, as a client would.
async fn retry(client: &reqwest::Client, order: &Order) -> (StatusCode, Value) {
    let key = unique("retry");
    for _ in 0..10 {
        let response = client
            .post(format!("{}/orders/{}/retry", api(), order.order_id))
            .header("Idempotency-Key", &key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("the local stack is not serving {} ({e})", api()));
        let status = response.status();
        if status.is_server_error() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        return (status, response.json().await.unwrap_or(Value::Null));
    }
    panic!("retrying order {} kept failing with 5xx", order.order_id);
}

#[tokio::test]
async fn a_failed_order_retried_after_a_restock_is_processed_and_counted_once() {
    let emulator = Emulator::connect().await;
    let run = unique("retry");
    // 2000–2005, 05:41: a minute no other test (nor another run of this one, but by a
    // one-in-2000 chance) writes to, so its counts are this order's alone.
    let minute = own_day(&run) - 2 * 3_652 * DAY + 5 * 3_600 + 41 * 60;
    let (alice, bob) = (format!("{run}-alice"), format!("{run}-bob"));
    let product = format!("{run}-mug");
    put_product_at(&product, 900, 0).await;

    // Stored as place-order stores it, at a chosen createdAt; the relay publishes it and
    // process-order fails it: there is no stock.
    let store = DynamoOrderStore::from_sdk(&emulator.sdk, emulator.output("orders_table"));
    let line = |id: &str, price: i64| NewLineItem {
        product_id: ProductId::parse(id).unwrap(),
        quantity: Quantity::new(2).unwrap(),
        unit_price: Money::from_minor(price).unwrap(),
    };
    let command = PlaceOrder {
        customer_id: CustomerId::parse(&alice).unwrap(),
        currency: Currency::parse("USD").unwrap(),
        items: vec![line(&product, 900)],
    };
    let created = Timestamp::from_unix_millis((minute + 7) * 1000).unwrap();
    let order = place_at(&store, &command, created).await;
    let failed = settled(&store, &order).await;
    assert_eq!(
        (failed.status, failed.failure_reason),
        (OrderStatus::Failed, Some(FailureReason::OutOfStock))
    );

    // Staff add stock; another customer cannot retry it; its own customer does.
    let restock = client()
        .post(format!("{}/products/{product}/stock", api()))
        .json(&json!({"add": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(restock.status(), StatusCode::OK);
    let (alice_client, bob_client) = (
        client_as(Holder::Customer(&alice)),
        client_as(Holder::Customer(&bob)),
    );
    let (status, body) = retry(&bob_client, &order).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, retried) = retry(&alice_client, &order).await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_eq!(retried["retries"], 1);
    assert!(retried.get("failureReason").is_none());

    let processed = settled(&store, &order).await;
    assert_eq!(
        (processed.status, processed.version, processed.retries),
        (OrderStatus::Processed, 4, 1)
    );
    assert_eq!(crate::pipeline::stock(&product).await, 3, "reserved once");

    // Retrying again is refused: it is no longer FAILED.
    let (status, body) = retry(&alice_client, &order).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "conflict");

    // Its minute counts one order, processed, not failed — once the aggregate caught up.
    let from = Timestamp::from_unix_millis(minute * 1000).unwrap();
    let to = Timestamp::from_unix_millis((minute + 60) * 1000).unwrap();
    let sales = format!(
        "{}/analytics/sales?granularity=minute&from={from}&to={to}",
        api()
    );
    let want = json!({"orders": 1, "processed": 1, "failed": 0, "cancelled": 0,
                      "revenue": 1800, "units": 2});
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let report = crate::pipeline::get_json(&sales).await;
        let bucket = &report["buckets"][0];
        let got = json!({"orders": bucket["orders"], "processed": bucket["processed"],
                         "failed": bucket["failed"], "cancelled": bucket["cancelled"],
                         "revenue": bucket["revenue"], "units": bucket["units"]});
        if got == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "minute {from}: {got} after 120 s, not {want}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn an_order_of_a_product_not_in_the_catalog_is_not_retried() {
    let emulator = Emulator::connect().await;
    let run = unique("retry-gone");
    let alice = format!("{run}-alice");
    let store = DynamoOrderStore::from_sdk(&emulator.sdk, emulator.output("orders_table"));
    let command = PlaceOrder {
        customer_id: CustomerId::parse(&alice).unwrap(),
        currency: Currency::parse("USD").unwrap(),
        items: vec![NewLineItem {
            product_id: ProductId::parse(&format!("{run}-discontinued")).unwrap(),
            quantity: Quantity::new(1).unwrap(),
            unit_price: Money::from_minor(4500).unwrap(),
        }],
    };
    let order = place_at(&store, &command, Timestamp::now()).await;
    let failed = settled(&store, &order).await;
    assert_eq!(failed.failure_reason, Some(FailureReason::UnknownProduct));

    let (status, body) = retry(&client_as(Holder::Customer(&alice)), &order).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "not_retryable");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown_product")),
        "{body}"
    );
    assert_eq!(
        store.get(&order.order_id).await.unwrap().unwrap(),
        failed,
        "nothing changed"
    );
}
