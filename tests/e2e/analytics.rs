//! Analytics through the whole local stack: orders stored and published the way place-order
//! does (but with `createdAt` spread over minutes of a past day, so the test owns its
//! buckets), processed by process-order, some cancelled over HTTP, and aggregated by the
//! aggregate function through its event source mapping. The buckets must equal sums
//! computed from the orders table — and stay equal when the same batches come again.

use crate::pipeline::put_product_at;
use crate::{api, client, unique};
use aws_lambda_events::event::kinesis::KinesisEvent;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::stream::{self, StreamExt};
use orders_aws::{DynamoAnalytics, DynamoOrderStore, SqsDeadLetterQueue};
use orders_core::analytics::{Bucket, BucketView, Fold, Granularity};
use orders_core::order::NewLineItem;
use orders_core::ports::{OrderStore, SystemClock};
use orders_core::{
    Currency, CustomerId, Money, Order, OrderId, OrderStatus, PlaceOrder, ProductId, Quantity,
    Timestamp,
};
use orders_tests::Emulator;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ORDERS: usize = 2_000;

/// The buckets expected from the orders as they are now in the table.
fn expected(orders: &[Order]) -> BTreeMap<Bucket, BucketView> {
    let mut fold = Fold::default();
    for order in orders {
        fold.add_order(order);
    }
    fold.buckets()
        .into_iter()
        .map(|b| (b, fold.view(&b)))
        .collect()
}

async fn stored(
    analytics: &DynamoAnalytics,
    buckets: impl Iterator<Item = Bucket>,
) -> BTreeMap<Bucket, BucketView> {
    let mut views = BTreeMap::new();
    for bucket in buckets {
        let mut view = analytics.bucket(&bucket).await.unwrap();
        view.products.retain(|_, p| *p != Default::default());
        views.insert(bucket, view);
    }
    views
}

#[tokio::test]
async fn minute_hour_and_day_totals_equal_the_orders_table_and_survive_redelivery() {
    let emulator = Emulator::connect().await;
    let run = unique("agg");
    let day = own_day(&run);
    let start = Timestamp::from_unix_millis((day + 10 * 3600 + 57 * 60) * 1000).unwrap(); // 10:57, crossing 11:00

    let products: Vec<String> = (0..12).map(|i| format!("{run}-p{i}")).collect();
    // Orders are stored directly, at the catalog's prices (processing checks them).
    let price = |i: usize| 250 + 10 * (i % 3) as i64;
    for (i, p) in products.iter().enumerate() {
        put_product_at(p, price(i), 150 + 50 * (i as u64 % 3)).await;
    }
    let customers: Vec<String> = (0..40).map(|i| format!("{run}-c{i}")).collect();

    // Store exactly as place-order does, with a chosen createdAt (the relay publishes).
    let store = DynamoOrderStore::from_sdk(&emulator.sdk, emulator.output("orders_table"));
    let placed: Vec<Order> = stream::iter(0..ORDERS)
        .map(|i| {
            let store = &store;
            let created = start.plus_seconds((i as i64 * 360) / ORDERS as i64); // six minutes
            let command = PlaceOrder {
                customer_id: CustomerId::parse(&customers[(i * 7) % customers.len()]).unwrap(),
                currency: Currency::parse("USD").unwrap(),
                items: (0..1 + i % 3)
                    .map(|l| {
                        let p = (i * 5 + l * 3) % products.len();
                        NewLineItem {
                            product_id: ProductId::parse(&products[p]).unwrap(),
                            quantity: Quantity::new(1 + (i % 2) as u32).unwrap(),
                            unit_price: Money::from_minor(price(p)).unwrap(),
                        }
                    })
                    .collect(),
            };
            async move { place_at(store, &command, created).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;

    // Wait for processing, then cancel every tenth order over HTTP (processed or failed:
    // failed ones answer 409, which is part of the point).
    settle(&store, placed.iter().map(|o| o.order_id)).await;
    let cancelled: Vec<u16> = stream::iter(placed.iter().step_by(10))
        .map(|o| async move {
            client()
                .delete(format!("{}/orders/{}", api(), o.order_id))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(
        cancelled.iter().all(|s| *s == 200 || *s == 409),
        "{cancelled:?}"
    );
    assert!(cancelled.contains(&200));

    let mut current = Vec::with_capacity(ORDERS);
    for o in &placed {
        current.push(store.get(&o.order_id).await.unwrap().unwrap());
    }
    let want = expected(&current);
    assert_eq!(
        want.keys()
            .filter(|b| b.granularity == Granularity::Minute)
            .count(),
        6
    );
    assert_eq!(
        want.keys()
            .filter(|b| b.granularity == Granularity::Hour)
            .count(),
        2
    );
    let analytics = DynamoAnalytics::from_sdk(
        &emulator.sdk,
        emulator.output("analytics_table"),
        emulator.output("event_claims_table"),
        86_400,
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got = stored(&analytics, want.keys().copied()).await;
        if got == want {
            break;
        }
        if Instant::now() > deadline {
            let (bucket, view) = want.iter().find(|(b, v)| got.get(b) != Some(v)).unwrap();
            panic!(
                "bucket {bucket} differs:\n want {view:?}\n got  {:?}",
                got.get(bucket)
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // The same batches again: every record of our orders, with its original shard and
    // sequence number, through the aggregate function's handler.
    let ours: BTreeSet<String> = placed.iter().map(|o| o.order_id.to_string()).collect();
    let records = our_records(&emulator, &ours).await;
    assert!(
        records.len() >= ORDERS * 2,
        "placed + processed/failed (+ cancelled) events"
    );
    let aggregator = aggregate::Aggregator {
        store: analytics.clone(),
        dead_letters: SqsDeadLetterQueue::from_sdk(
            &emulator.sdk,
            emulator.output("aggregate_dlq_url"),
        ),
        clock: Arc::new(SystemClock),
        function_name: "orders-aggregate".into(),
    };
    for (shard, batch) in
        &records
            .iter()
            .fold(BTreeMap::<&str, Vec<&Value>>::new(), |mut m, (s, r)| {
                m.entry(s.as_str()).or_default().push(r);
                m
            })
    {
        for chunk in batch.chunks(500) {
            let event: KinesisEvent = serde_json::from_value(json!({ "Records": chunk })).unwrap();
            let response = aggregator.handle(event).await;
            assert!(response.batch_item_failures.is_empty(), "{shard}");
        }
    }
    assert_eq!(
        stored(&analytics, want.keys().copied()).await,
        want,
        "unchanged after redelivery"
    );
}

/// A day (Unix seconds of its 00:00 UTC) in 2020–2025 picked by the run id: no other test
/// run writes its buckets, so a test can assert exact totals.
pub(crate) fn own_day(run: &str) -> i64 {
    1_577_836_800 + 86_400 * (u64::from_str_radix(&run[run.len() - 4..], 16).unwrap() % 2000) as i64
}

/// Stores an order exactly as place-order does, but with a chosen `createdAt` (so a test owns
/// its buckets). Nothing publishes it here: the relay turns the stored version into its
/// `OrderPlaced` (as for a place-order that died right after the write), and process-order
/// takes it from there.
pub(crate) async fn place_at(
    store: &DynamoOrderStore,
    command: &PlaceOrder,
    created: Timestamp,
) -> Order {
    let order = Order::place(
        OrderId::new(ulid::Ulid::from_parts(
            created.unix_millis() as u64,
            ulid::Ulid::new().random(),
        )),
        command,
        created,
    );
    store.create(&order).await.unwrap();
    order
}

/// Waits until none of `ids` is PENDING any more.
pub(crate) async fn settle(store: &DynamoOrderStore, ids: impl IntoIterator<Item = OrderId>) {
    let ids: Vec<OrderId> = ids.into_iter().collect();
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let mut pending = 0;
        for id in &ids {
            if store.get(id).await.unwrap().unwrap().status == OrderStatus::Pending {
                pending += 1;
            }
        }
        if pending == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{pending} orders still PENDING");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Lambda-shaped Kinesis records (shard, record JSON) of the stream whose order id is ours.
async fn our_records(emulator: &Emulator, ours: &BTreeSet<String>) -> Vec<(String, Value)> {
    let kinesis = emulator.kinesis();
    let stream = emulator.output("events_stream_name");
    let shards = kinesis
        .list_shards()
        .stream_name(&stream)
        .send()
        .await
        .unwrap()
        .shards
        .unwrap_or_default();
    let mut out = Vec::new();
    for shard in shards {
        let mut iterator = kinesis
            .get_shard_iterator()
            .stream_name(&stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator;
        while let Some(it) = iterator {
            let output = kinesis
                .get_records()
                .shard_iterator(it)
                .limit(10_000)
                .send()
                .await
                .unwrap();
            for record in output.records() {
                let key = record.partition_key().unwrap_or_default();
                if !ours.contains(key) {
                    continue;
                }
                // Every event of our orders the relay published keeps its contract.
                let event: Value = serde_json::from_slice(record.data().as_ref())
                    .expect("the relay publishes JSON");
                orders_tests::assert_event_conforms(&event);
                out.push((
                    shard.shard_id().to_owned(),
                    json!({
                        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": key,
                                    "sequenceNumber": record.sequence_number(),
                                    "data": STANDARD.encode(record.data().as_ref()), "approximateArrivalTimestamp": 1.0},
                        "eventSource": "aws:kinesis", "eventVersion": "1.0",
                        "eventID": format!("{}:{}", shard.shard_id(), record.sequence_number()),
                        "eventName": "aws:kinesis:record", "awsRegion": "us-east-1",
                        "eventSourceARN": emulator.output("events_stream_arn")
                    }),
                ));
            }
            if output.records().is_empty() || output.millis_behind_latest() == Some(0) {
                break;
            }
            iterator = output.next_shard_iterator;
        }
    }
    out
}
