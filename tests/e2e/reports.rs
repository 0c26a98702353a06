//! The analytics routes over data the real pipeline produced: orders stored and published
//! the way place-order does (with `createdAt` on a past day the test owns, from late morning
//! to just after midnight), processed or failed by process-order, cancelled and shipped over
//! HTTP, aggregated by the aggregate function. Every report must equal what the orders table
//! says, for windows whose covers mix days, hours and minutes.

use crate::analytics::{own_day, place_at, settle};
use crate::pipeline::put_product_at;
use crate::{api, client, unique};
use futures::stream::{self, StreamExt};
use orders_aws::DynamoOrderStore;
use orders_core::analytics::{Bucket, Fold, Granularity, Totals};
use orders_core::order::NewLineItem;
use orders_core::ports::OrderStore;
use orders_core::{
    Currency, CustomerId, Money, Order, OrderStatus, PlaceOrder, ProductId, Quantity, Timestamp,
};
use orders_tests::Emulator;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const MINUTE: i64 = 60;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

fn rfc3339(seconds: i64) -> String {
    Timestamp::from_unix_millis(seconds * 1000)
        .unwrap()
        .to_string()
}

async fn get(path: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = client()
        .get(format!("{}{path}", api()))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// What the orders created in `[from, to)` add up to, per bucket of `granularity`.
fn expected(orders: &[Order], from: i64, to: i64) -> Fold {
    let mut fold = Fold::default();
    for order in orders {
        let at = order.created_at.unix_seconds();
        if (from..to).contains(&at) {
            fold.add_order(order);
        }
    }
    fold
}

fn sum(fold: &Fold, from: i64, to: i64) -> Totals {
    let mut totals = Totals::default();
    let mut at = from;
    while at < to {
        totals.add(
            &fold
                .view(&Bucket {
                    granularity: Granularity::Minute,
                    start: at,
                })
                .totals,
        );
        at += MINUTE;
    }
    totals
}

fn summary_json(t: &Totals) -> Value {
    let with_revenue = t.by_status[1] + t.by_status[3] + t.by_status[4];
    let aov = if with_revenue > 0 {
        (2 * t.revenue + with_revenue) / (2 * with_revenue)
    } else {
        0
    };
    let decided = t.processed + t.failed;
    let rate = if decided > 0 {
        (t.failed as f64 / decided as f64 * 10_000.0).round() / 10_000.0
    } else {
        0.0
    };
    let statuses = OrderStatus::ALL
        .iter()
        .zip(t.by_status)
        .map(|(s, n)| (s.as_str().to_owned(), json!(n)))
        .collect::<serde_json::Map<_, _>>();
    json!({
        "orders": t.orders, "processed": t.processed, "failed": t.failed,
        "cancelled": t.cancelled, "revenue": t.revenue, "units": t.units,
        "averageOrderValue": aov, "failureRate": rate, "byStatus": statuses,
    })
}

fn bucket_json(start: i64, t: &Totals) -> Value {
    json!({
        "start": rfc3339(start), "orders": t.orders, "processed": t.processed,
        "failed": t.failed, "cancelled": t.cancelled, "revenue": t.revenue, "units": t.units,
    })
}

/// The summary's fields, without the echoed window.
fn counters(summary: &Value) -> Value {
    let mut v = summary.clone();
    let o = v.as_object_mut().unwrap();
    o.remove("from");
    o.remove("to");
    v
}

#[tokio::test]
async fn reports_equal_the_orders_table_across_day_boundaries() {
    let emulator = Emulator::connect().await;
    let run = unique("rep");
    // 2010–2015: apart from the aggregation test's days.
    let day = own_day(&run) - 3_652 * DAY;
    let products: Vec<String> = (0..4).map(|i| format!("{run}-p{i}")).collect();
    // Orders are stored directly, at the catalog's prices (processing checks them).
    let price = |p: usize| 1_000 + 7 * p as i64;
    for (i, p) in products.iter().enumerate() {
        put_product_at(p, price(i), 1_000 + i as u64).await;
    }
    let missing = format!("{run}-gone"); // not in the catalog: those orders fail
    let customers: Vec<String> = (0..5).map(|i| format!("{run}-c{i}")).collect();

    // 11:30 of day D (an hour of minutes), then 23:58 D to 00:02 D+1 across midnight.
    let mut times = vec![
        day + 11 * HOUR + 30 * MINUTE + 10,
        day + 11 * HOUR + 30 * MINUTE + 50,
    ];
    times.extend((0..16).map(|i| day + DAY - 2 * MINUTE + i * 15));
    let store = DynamoOrderStore::from_sdk(&emulator.sdk, emulator.output("orders_table"));
    let placed: Vec<Order> = stream::iter(times.iter().enumerate())
        .map(|(i, at)| {
            let store = &store;
            let index = i % 3 + usize::from(i % 5 == 0);
            let product = if i % 6 == 5 {
                &missing
            } else {
                &products[index]
            };
            let command = PlaceOrder {
                customer_id: CustomerId::parse(&customers[i % 4 + usize::from(i > 16)]).unwrap(),
                currency: Currency::parse("USD").unwrap(),
                items: vec![NewLineItem {
                    product_id: ProductId::parse(product).unwrap(),
                    quantity: Quantity::new(1 + (i % 3) as u32).unwrap(),
                    unit_price: Money::from_minor(price(index)).unwrap(),
                }],
            };
            let created = Timestamp::from_unix_millis(at * 1000).unwrap();
            async move { place_at(store, &command, created).await }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    settle(&store, placed.iter().map(|o| o.order_id)).await;

    // Two processed orders cancelled, one shipped: revenue moves out, statuses move on.
    let processed: Vec<&Order> = {
        let mut out = Vec::new();
        for o in &placed {
            if store.get(&o.order_id).await.unwrap().unwrap().status == OrderStatus::Processed {
                out.push(o);
            }
        }
        out
    };
    assert!(processed.len() >= 4, "most orders are processable");
    for o in &processed[..2] {
        let r = client()
            .delete(format!("{}/orders/{}", api(), o.order_id))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = client()
        .patch(format!("{}/orders/{}", api(), processed[2].order_id))
        .json(&json!({"status": "SHIPPED"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut current = Vec::new();
    for o in &placed {
        current.push(store.get(&o.order_id).await.unwrap().unwrap());
    }
    assert!(current.iter().any(|o| o.status == OrderStatus::Failed));

    // The widest window: the two days, read as two day buckets.
    let (all_from, all_to) = (day, day + 2 * DAY);
    let all = expected(&current, all_from, all_to);
    let want_all = summary_json(&sum(&all, all_from, all_to));
    let wide = format!(
        "/analytics/summary?from={}&to={}",
        rfc3339(all_from),
        rfc3339(all_to)
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (status, _, body) = get(&wide).await;
        assert_eq!(status, 200, "{body}");
        if counters(&body) == want_all {
            assert_eq!(body["from"], rfc3339(all_from));
            assert_eq!(body["to"], rfc3339(all_to));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "summary never matched:\n want {want_all}\n got  {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // A window whose cover is minutes, hours and a minute past midnight: 11:30:xx is in,
    // and orders after 00:01 D+1 are out.
    let (from, to) = (day + 11 * HOUR + 30 * MINUTE, day + DAY + MINUTE);
    let narrow = expected(&current, from, to);
    let (_, _, body) = get(&format!(
        "/analytics/summary?from={}&to={}",
        rfc3339(from),
        rfc3339(to)
    ))
    .await;
    assert_eq!(counters(&body), summary_json(&sum(&narrow, from, to)));
    assert!(
        sum(&narrow, from, to).orders < sum(&all, all_from, all_to).orders,
        "the narrow window leaves orders out"
    );

    // Minutes around midnight: contiguous, zero-filled at 23:56 and 23:57.
    let (from, to) = (day + DAY - 4 * MINUTE, day + DAY + 4 * MINUTE);
    let (status, headers, body) = get(&format!(
        "/analytics/sales?granularity=minute&from={}&to={}",
        rfc3339(from),
        rfc3339(to)
    ))
    .await;
    assert_eq!(status, 200);
    let want: Vec<Value> = (0..8)
        .map(|i| {
            let start = from + i * MINUTE;
            let t = all
                .view(&Bucket {
                    granularity: Granularity::Minute,
                    start,
                })
                .totals;
            bucket_json(start, &t)
        })
        .collect();
    assert_eq!(body["granularity"], "minute");
    assert_eq!(body["buckets"], json!(want));
    assert_eq!(body["buckets"][0]["orders"], 0, "zero-filled");
    assert_eq!(headers["cache-control"], "public, max-age=2");

    // Hours and days: widened to whole buckets, zero-filled.
    for (granularity, size, from, to, count) in [
        (
            "hour",
            HOUR,
            day + 10 * HOUR + 5 * MINUTE,
            day + DAY + 2 * HOUR,
            16,
        ),
        ("day", DAY, day - DAY, day + 2 * DAY, 3),
    ] {
        let (status, _, body) = get(&format!(
            "/analytics/sales?granularity={granularity}&from={}&to={}",
            rfc3339(from),
            rfc3339(to)
        ))
        .await;
        assert_eq!(status, 200, "{body}");
        let start = from - from.rem_euclid(size);
        let g = if size == HOUR {
            Granularity::Hour
        } else {
            Granularity::Day
        };
        let want: Vec<Value> = (0..count)
            .map(|i| {
                let b = Bucket {
                    granularity: g,
                    start: start + i * size,
                };
                bucket_json(b.start, &all.view(&b).totals)
            })
            .collect();
        assert_eq!(body["buckets"], json!(want), "{granularity}");
        assert_eq!(body["from"], rfc3339(start));
    }

    // Distinct customers: all five over the two days; the window around midnight has
    // fewer than all of them counted twice.
    let distinct = |from: i64, to: i64| -> usize {
        current
            .iter()
            .filter(|o| (from..to).contains(&o.created_at.unix_seconds()))
            .map(|o| o.customer_id.to_string())
            .collect::<BTreeSet<_>>()
            .len()
    };
    for (from, to) in [(all_from, all_to), (day + DAY - MINUTE, day + DAY + MINUTE)] {
        let (_, _, body) = get(&format!(
            "/analytics/customers?from={}&to={}",
            rfc3339(from),
            rfc3339(to)
        ))
        .await;
        assert_eq!(body["activeCustomers"], distinct(from, to), "{body}");
        assert_eq!(body["approximate"], false);
    }

    // Top products, by revenue and by units, with catalog names.
    let mut per_product: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    for o in &current {
        if matches!(
            o.status,
            OrderStatus::Processed | OrderStatus::Shipped | OrderStatus::Delivered
        ) {
            for item in &o.items {
                let e = per_product.entry(item.product_id.to_string()).or_default();
                e.0 += i64::from(item.quantity.get());
                e.1 += item.line_total.minor();
                e.2 += 1;
            }
        }
    }
    for (by, key) in [("revenue", 1), ("units", 0)] {
        let mut want: Vec<_> = per_product.iter().collect();
        want.sort_by(|a, b| {
            let k = |v: &(i64, i64, i64)| if key == 1 { (v.1, v.0) } else { (v.0, v.1) };
            k(b.1).cmp(&k(a.1)).then_with(|| a.0.cmp(b.0))
        });
        let want: Vec<Value> = want
            .into_iter()
            .take(2)
            .map(|(id, (units, revenue, orders))| {
                json!({"productId": id, "name": id, "units": units, "revenue": revenue, "orders": orders})
            })
            .collect();
        let (_, _, body) = get(&format!(
            "/analytics/top-products?from={}&to={}&limit=2&by={by}",
            rfc3339(all_from),
            rfc3339(all_to)
        ))
        .await;
        assert_eq!(body["products"], json!(want), "by {by}");
        assert_eq!(body["by"], by);
    }
}

#[tokio::test]
async fn bad_parameters_are_400s_that_name_the_field() {
    for (query, field) in [
        ("/analytics/sales?granularity=week", "granularity"),
        ("/analytics/sales?from=yesterday", "from"),
        (
            "/analytics/summary?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            "from",
        ),
        (
            "/analytics/summary?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "to",
        ),
        (
            "/analytics/sales?granularity=minute&from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z",
            "granularity",
        ),
        ("/analytics/top-products?limit=0", "limit"),
        ("/analytics/top-products?limit=101", "limit"),
        ("/analytics/top-products?by=price", "by"),
        ("/analytics/customers?granularity=hour", "granularity"),
    ] {
        let (status, _, body) = get(query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], "validation_failed", "{query}");
        assert_eq!(
            body["error"]["fields"][0]["field"], field,
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn reports_revalidate_with_etags() {
    let path = "/analytics/summary?from=2011-03-01T00:00:00Z&to=2011-03-02T00:00:00Z";
    let (status, headers, _) = get(path).await;
    assert_eq!(status, 200);
    let tag = headers["etag"].to_str().unwrap().to_owned();
    let again = client()
        .get(format!("{}{path}", api()))
        .header("If-None-Match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let stale = client()
        .get(format!("{}{path}", api()))
        .header("If-None-Match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
}
