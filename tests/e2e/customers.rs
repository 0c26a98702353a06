//! `GET /customers/{customerId}` through the stack: a customer's orders in every state
//! they reach, summed as the analytics sum them (revenue of processed orders not
//! cancelled since), and the same figures as the customer's own listing.

use crate::pipeline::{PRICE, get_json, orders_of, place, put_product, wait_until_processed};
use crate::{api, client, unique};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_customers_summary_sums_its_orders_as_the_analytics_do() {
    let run = unique("cust");
    let (mug, rare) = (format!("{run}-mug"), format!("{run}-rare"));
    put_product(&mug, 100).await;
    put_product(&rare, 1).await;
    let customer = format!("{run}-dana");
    let shipped = place(&customer, &[(mug.clone(), 2)]).await;
    let cancelled = place(&customer, &[(mug.clone(), 1)]).await;
    place(&customer, &[(mug.clone(), 3), (rare.clone(), 1)]).await;
    let customers = std::slice::from_ref(&customer);
    wait_until_processed(customers, Duration::from_secs(60)).await;
    // The rare product's one unit is sold: this order fails.
    place(&customer, &[(rare.clone(), 1)]).await;
    wait_until_processed(customers, Duration::from_secs(60)).await;
    for (id, change) in [
        (
            &shipped,
            client()
                .patch(format!("{}/orders/{shipped}", api()))
                .json(&json!({"status": "SHIPPED"})),
        ),
        (
            &cancelled,
            client().delete(format!("{}/orders/{cancelled}", api())),
        ),
    ] {
        let response = change.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{id}");
    }

    let summary = get_json(&format!("{}/customers/{customer}", api())).await;
    let orders = orders_of(&customer).await;
    let created: Vec<&str> = orders
        .iter()
        .map(|o| o["createdAt"].as_str().unwrap())
        .collect();
    assert_eq!(
        summary,
        json!({
            "customerId": customer,
            "orders": 4,
            "byStatus": {"PENDING": 0, "PROCESSED": 1, "FAILED": 1, "SHIPPED": 1,
                         "DELIVERED": 0, "CANCELLED": 1},
            "revenue": PRICE * (2 + 3 + 1),
            "currency": "USD",
            "units": 2 + 4,
            "averageOrderValue": PRICE * 6 / 2,
            "firstOrderAt": created.iter().min().unwrap(),
            "lastOrderAt": created.iter().max().unwrap(),
        })
    );
}
