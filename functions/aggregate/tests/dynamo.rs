//! The aggregator against the emulator through the production adapter: exact totals for a
//! known set of orders, unchanged by redelivery and producer duplicates, and exact after a
//! write fails halfway through a batch and the batch is retried.

use aggregate::Aggregator;
use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use orders_aws::deadline::Deadline;
use orders_aws::dynamo::chain::{ITEM_CAP, item_size};
use orders_aws::{DynamoAnalytics, DynamoAnalyticsReader, Replaced, SqsDeadLetterQueue};
use orders_core::analytics::{
    Bucket, CounterItem, Effect, Fold, Granularity, ItemDelta, PRODUCT_SHARDS,
};
use orders_core::distinct::{self, Registers};
use orders_core::order::NewLineItem;
use orders_core::ports::AnalyticsReader;
use orders_core::ports::{AnalyticsStore, SystemClock};
use orders_core::shard::shard_of;
use orders_core::{
    Currency, CustomerId, EventEnvelope, FailureReason, Money, Order, OrderEvent, OrderId,
    OrderStatus, PlaceOrder, ProductId, Quantity, Timestamp,
};
use orders_tests::RecordedMetrics;
use orders_tests::{Emulator, FlakyAnalytics};
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

struct Stack {
    aggregator: Aggregator<FlakyAnalytics<DynamoAnalytics>, SqsDeadLetterQueue>,
    emulator: Emulator,
    table: String,
    claims: String,
    dlq: String,
}

async fn spawn_stack() -> Stack {
    let emulator = Emulator::connect().await;
    let (analytics, claims, dlq) = tokio::join!(
        emulator.clone_table("analytics_table"),
        emulator.clone_table("event_claims_table"),
        emulator.fresh_queue()
    );
    let aggregator = Aggregator {
        store: FlakyAnalytics::new(DynamoAnalytics::from_sdk(
            &emulator.sdk,
            &analytics,
            &claims,
            86_400,
        )),
        dead_letters: SqsDeadLetterQueue::from_sdk(&emulator.sdk, &dlq),
        clock: Arc::new(SystemClock),
        function_name: "orders-aggregate".into(),
    };
    Stack {
        aggregator,
        emulator,
        table: analytics,
        claims,
        dlq,
    }
}

struct Record {
    sequence: String,
    data: Vec<u8>,
}

fn event(records: &[Record]) -> KinesisEvent {
    let records: Vec<_> = records
        .iter()
        .map(|r| {
            json!({
                "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "k", "sequenceNumber": r.sequence,
                            "data": STANDARD.encode(&r.data), "approximateArrivalTimestamp": 1.0},
                "eventSource": "aws:kinesis", "eventVersion": "1.0",
                "eventID": format!("shardId-000000000000:{}", r.sequence), "eventName": "aws:kinesis:record",
                "awsRegion": "us-east-1", "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/orders-order-events"
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

/// 40 orders over three minutes around an hour boundary, with every path.
fn history() -> Vec<EventEnvelope> {
    let start = Timestamp::parse("2026-11-21T09:58:30Z").unwrap();
    let mut events = Vec::new();
    for i in 0..40u32 {
        let created = start.plus_seconds(i64::from(i) * 5);
        let command = PlaceOrder {
            customer_id: CustomerId::parse(&format!("c-{}", i % 7)).unwrap(),
            currency: Currency::parse("USD").unwrap(),
            items: (0..1 + i % 3)
                .map(|l| NewLineItem {
                    product_id: ProductId::parse(&format!("sku-{}", (i + l) % 5)).unwrap(),
                    quantity: Quantity::new(1 + l).unwrap(),
                    unit_price: Money::from_minor(i64::from(100 * (l + 1))).unwrap(),
                })
                .collect(),
        };
        let placed = Order::place(
            OrderId::new(ulid::Ulid::from_parts(
                created.unix_millis() as u64,
                u128::from(i),
            )),
            &command,
            created,
        );
        let later = created.plus_seconds(2);
        events.push(EventEnvelope::new(OrderEvent::placed(placed.clone())));
        match i % 4 {
            0 | 1 => {
                let processed = placed.transition(OrderStatus::Processed, later).unwrap();
                events.push(EventEnvelope::new(OrderEvent::for_current_state(
                    &processed,
                )));
                if i % 8 == 1 {
                    let cancelled = processed.transition(OrderStatus::Cancelled, later).unwrap();
                    events.push(EventEnvelope::new(OrderEvent::for_current_state(
                        &cancelled,
                    )));
                }
            }
            2 => {
                let failed = placed.fail(FailureReason::OutOfStock, later).unwrap();
                events.push(EventEnvelope::new(OrderEvent::for_current_state(&failed)));
            }
            _ => {}
        }
    }
    events
}

fn records(events: &[EventEnvelope]) -> Vec<Record> {
    events
        .iter()
        .enumerate()
        .map(|(n, e)| Record {
            sequence: format!(
                "4959033827149025660855969253836157109592157598913{:07}",
                10 + n
            ),
            data: e.to_json(),
        })
        .collect()
}

impl Stack {
    async fn deliver(&self, records: &[Record]) -> Option<String> {
        let response = self.aggregator.handle(event(records)).await;
        response
            .batch_item_failures
            .first()
            .and_then(|f| f.item_identifier.clone())
    }

    /// Asserts every bucket equals the fold of the unique events.
    async fn assert_exact(&self, unique: &[EventEnvelope]) {
        let mut reference = Fold::default();
        for e in unique {
            reference.add(&Effect::of(e));
        }
        let buckets = reference.buckets();
        assert!(
            buckets
                .iter()
                .any(|b| b.granularity == Granularity::Hour && b.to_string() == "h#2026-11-21T10")
        );
        for bucket in buckets {
            let stored = self.aggregator.store.inner.bucket(&bucket).await.unwrap();
            assert_eq!(stored, reference.view(&bucket), "bucket {bucket}");
        }
    }
}

#[tokio::test]
async fn batches_fold_into_exact_buckets_and_redelivery_changes_nothing() {
    let stack = spawn_stack().await;
    let events = history();
    let records = records(&events);
    for batch in records.chunks(17) {
        assert_eq!(stack.deliver(batch).await, None);
    }
    stack.assert_exact(&events).await;

    // The same batches again, a bisected half, and one big batch spanning them all.
    for batch in records.chunks(17) {
        assert_eq!(stack.deliver(batch).await, None);
    }
    assert_eq!(stack.deliver(&records[5..13]).await, None);
    assert_eq!(stack.deliver(&records).await, None);
    stack.assert_exact(&events).await;
}

#[tokio::test]
async fn producer_duplicates_count_once() {
    let stack = spawn_stack().await;
    let events = history();
    // Every third event put twice by its producer: the copy has its own sequence number.
    let mut with_duplicates = Vec::new();
    for (i, e) in events.iter().enumerate() {
        with_duplicates.push(e.clone());
        if i % 3 == 0 {
            with_duplicates.push(e.clone());
        }
    }
    for batch in records(&with_duplicates).chunks(25) {
        assert_eq!(stack.deliver(batch).await, None);
    }
    stack.assert_exact(&events).await;
}

#[tokio::test]
async fn a_write_failing_halfway_through_a_batch_then_the_retry_is_exact() {
    let stack = spawn_stack().await;
    let events = history();
    let records = records(&events);
    stack.aggregator.store.fail_write.store(6, Ordering::SeqCst);
    let retry_from = stack
        .deliver(&records)
        .await
        .expect("the failed write is reported");
    let position = records
        .iter()
        .position(|r| r.sequence == retry_from)
        .unwrap();
    // Lambda resumes from the reported record: the rest of the batch comes again.
    assert_eq!(stack.deliver(&records[position..]).await, None);
    stack.assert_exact(&events).await;
}

#[tokio::test]
async fn metrics_count_batches_dead_letters_duplicates_and_writes() {
    let metrics = RecordedMetrics::start();
    let stack = spawn_stack().await;
    let events = history();
    // One order placed and processed, its placement published twice by the producer, and a
    // record no consumer can read.
    let mut batch = records(&[events[0].clone(), events[1].clone(), events[0].clone()]);
    batch.push(Record {
        sequence: "49590338271490256608559692538361571095921575989139999999".into(),
        data: b"{not json".to_vec(),
    });
    let mut reference = Fold::default();
    for e in &events[..2] {
        reference.add(&Effect::of(e));
    }
    assert!(!reference.customers.is_empty());

    assert_eq!(stack.deliver(&batch).await, None);
    assert_eq!(
        metrics.take(),
        json!({
            "BatchSize": [4.0],
            "DeadLettered": 1,
            "DuplicateRecords": 1,
            "AggregateWrites{kind=counter}": reference.counters.len(),
            "AggregateWrites{kind=customers}": reference.customers.len(),
        })
    );

    // Redelivered: the watermarks already cover every counter item, so none is written;
    // customer sets are idempotent adds and are written again.
    assert_eq!(stack.deliver(&batch).await, None);
    assert_eq!(
        metrics.take(),
        json!({
            "BatchSize": [4.0],
            "DeadLettered": 1,
            "DuplicateRecords": 1,
            "AggregateWrites{kind=customers}": reference.customers.len(),
        })
    );
}

#[tokio::test]
async fn metrics_count_a_failed_write_as_one_batch_item_failure() {
    let metrics = RecordedMetrics::start();
    let stack = spawn_stack().await;
    let records = records(&history()[..2]);
    stack.aggregator.store.fail_write.store(1, Ordering::SeqCst);
    assert!(stack.deliver(&records).await.is_some());
    let taken = metrics.take();
    assert_eq!(taken["BatchItemFailures"], 1, "{taken:#}");
    assert_eq!(taken["BatchSize"], json!([2.0]));
    assert!(
        taken.get("AggregateWrites{kind=counter}").is_none(),
        "the claim failed, so nothing was counted: {taken:#}"
    );
}

/// `n` ids that all hash to `shard` of `shards`: anyone can find such ids (the hash is public).
fn ids_on_shard(shard: u32, shards: u32, n: usize, prefix: &str) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .filter(|s| shard_of(s, shards) == shard)
        .take(n)
        .collect()
}

impl Stack {
    async fn raw_item(&self, pk: &str) -> HashMap<String, AttributeValue> {
        self.emulator
            .dynamodb()
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap_or_default()
    }

    /// Adds ids to a customer shard the way the aggregate does: retried until it lands.
    async fn add_customers(&self, bucket: &Bucket, shard: u32, ids: &[String]) {
        let ids: BTreeSet<CustomerId> = ids.iter().map(|s| CustomerId::parse(s).unwrap()).collect();
        for _ in 0..10 {
            match self
                .aggregator
                .store
                .inner
                .add_customers(bucket, shard, &ids)
                .await
            {
                Ok(()) => return,
                Err(e) => assert!(e.is_retryable(), "{e}"),
            }
        }
        panic!("customer shard write kept failing");
    }
}

fn registers_of(ids: &[String]) -> Registers {
    let mut registers = Registers::default();
    for id in ids {
        registers.insert(id);
    }
    registers
}

#[tokio::test]
async fn customer_ids_flooding_one_shard_keep_its_item_small_and_the_count_close() {
    let stack = spawn_stack().await;
    let at = Timestamp::parse("2026-11-21T10:00:00Z").unwrap();
    let bucket = Bucket::containing(Granularity::Day, at);
    // 3,000 ids of shard 7 (as a set of ids that long was ~100 KB and grew without bound),
    // in batches as the aggregate sends them, then a redelivery of some.
    let flood = ids_on_shard(7, distinct::SHARDS, 3_000, "flood");
    for chunk in flood.chunks(50).chain(flood[..500].chunks(250)) {
        stack.add_customers(&bucket, 7, chunk).await;
    }
    let few = ids_on_shard(8, distinct::SHARDS, 40, "few");
    stack.add_customers(&bucket, 8, &few).await;

    let flooded = stack.raw_item(&format!("{bucket}/customers#07")).await;
    assert!(!flooded.contains_key("customers"), "{:?}", flooded.keys());
    assert!(item_size(&flooded) < 1024, "{} bytes", item_size(&flooded));
    // Exactly the sketch of every id sent: nothing lost on the way from a set to a sketch.
    assert_eq!(
        flooded["hll"].as_b().unwrap().as_ref(),
        registers_of(&flood).as_bytes()
    );
    let small = stack.raw_item(&format!("{bucket}/customers#08")).await;
    assert_eq!(
        small["customers"].as_ss().unwrap().len(),
        40,
        "a small shard stays exact"
    );

    let reader = DynamoAnalyticsReader::from_sdk(&stack.emulator.sdk, &stack.table);
    let count = reader.customers(&[bucket]).await.unwrap()[0].count();
    assert!(count.approximate);
    let error = (count.value as f64 - 3_040.0).abs() / 3_040.0;
    // 40 exact plus a one-shard sketch (256 registers: ~6.5 % standard error).
    assert!(error < 0.2, "{count:?}");
    let few_only = Bucket::containing(Granularity::Hour, at);
    stack.add_customers(&few_only, 8, &few).await;
    let count = reader.customers(&[few_only]).await.unwrap()[0].count();
    assert_eq!((count.value, count.approximate), (40, false));
}

#[tokio::test]
async fn concurrent_writers_of_one_customer_shard_lose_no_id() {
    let stack = spawn_stack().await;
    let bucket = Bucket::containing(
        Granularity::Hour,
        Timestamp::parse("2026-11-21T10:00:00Z").unwrap(),
    );
    // Eight writers at once (eight Kinesis shards' consumers), racing through the change
    // from an exact set to a sketch.
    let ids = ids_on_shard(3, distinct::SHARDS, 400, "race");
    futures::future::join_all(
        ids.chunks(50)
            .map(|chunk| stack.add_customers(&bucket, 3, chunk)),
    )
    .await;
    let stored = stack.raw_item(&format!("{bucket}/customers#03")).await;
    assert_eq!(
        stored["hll"].as_b().unwrap().as_ref(),
        registers_of(&ids).as_bytes()
    );
}

/// An order of `products` (one unit each) placed at `at` and processed.
fn processed_order(i: u32, customer: &str, products: &[String], at: Timestamp) -> [Order; 2] {
    let command = PlaceOrder {
        customer_id: CustomerId::parse(customer).unwrap(),
        currency: Currency::parse("USD").unwrap(),
        items: products
            .iter()
            .map(|p| NewLineItem {
                product_id: ProductId::parse(p).unwrap(),
                quantity: Quantity::new(1).unwrap(),
                unit_price: Money::from_minor(250).unwrap(),
            })
            .collect(),
    };
    let id = OrderId::new(ulid::Ulid::from_parts(
        at.unix_millis() as u64,
        u128::from(i),
    ));
    let placed = Order::place(id, &command, at);
    let processed = placed
        .transition(OrderStatus::Processed, at.plus_seconds(1))
        .unwrap();
    [placed, processed]
}

#[tokio::test]
async fn hundreds_of_products_of_one_shard_in_one_batch_are_written_in_runs_exactly() {
    let stack = spawn_stack().await;
    // 150 orders of two products each, all 300 products hashing to product shard 3: 900
    // counters for one item, three times what one update expression can carry.
    let products = ids_on_shard(3, PRODUCT_SHARDS, 300, "sku");
    let start = Timestamp::parse("2026-11-21T10:00:00Z").unwrap();
    let mut events = Vec::new();
    for (i, pair) in products.chunks(2).enumerate() {
        let i = i as u32;
        let [placed, processed] =
            processed_order(i, &format!("c-{i}"), pair, start.plus_seconds(i64::from(i)));
        events.push(EventEnvelope::new(OrderEvent::placed(placed)));
        events.push(EventEnvelope::new(OrderEvent::for_current_state(
            &processed,
        )));
    }
    let records = records(&events);
    assert_eq!(stack.deliver(&records).await, None);
    stack.assert_exact(&events).await;
    // Redelivered whole and from the middle of a run: still exact.
    assert_eq!(stack.deliver(&records).await, None);
    assert_eq!(stack.deliver(&records[137..]).await, None);
    stack.assert_exact(&events).await;
}

#[tokio::test]
async fn a_rebuild_writes_big_items_in_requests_dynamodb_accepts_and_never_over_a_live_write() {
    let stack = spawn_stack().await;
    let store = &stack.aggregator.store.inner;
    let at = Timestamp::parse("2026-11-21T10:00:00Z").unwrap();
    let bucket = Bucket::containing(Granularity::Day, at);
    // 400 products of one shard: 1,200 counters, six requests of 200.
    let products = ids_on_shard(5, PRODUCT_SHARDS, 400, "big");
    let mut fold = Fold::default();
    for (i, product) in products.iter().enumerate() {
        let [_, processed] = processed_order(i as u32, "c-1", std::slice::from_ref(product), at);
        fold.add_order(&processed);
    }
    let shards = vec!["shardId-000000000000".to_owned()];
    let item = CounterItem::Products(bucket, 5);
    let read = store.read_for_rebuild(&bucket).await.unwrap();
    let want = fold.counters[&item].clone();
    assert_eq!(
        store
            .replace_counters(&item, &want, &read.counters[&item], &shards)
            .await
            .unwrap(),
        Replaced::Written
    );
    let read = store.read_for_rebuild(&bucket).await.unwrap();
    assert!(read.counters[&item].holds(&want));
    // Replaced by a smaller truth: what is gone is removed, in as many requests.
    let smaller = ItemDelta {
        products: want
            .products
            .iter()
            .take(10)
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
        ..ItemDelta::default()
    };
    assert_eq!(
        store
            .replace_counters(&item, &smaller, &read.counters[&item], &shards)
            .await
            .unwrap(),
        Replaced::Written
    );
    let read = store.read_for_rebuild(&bucket).await.unwrap();
    assert!(read.counters[&item].holds(&smaller));

    // The stream writes the item between a rebuild's read and its write: nothing is
    // replaced (the rebuild reads again), so the stream's write is not lost.
    let [placed, processed] = processed_order(999, "c-2", &products[..1], at);
    let events = [
        EventEnvelope::new(OrderEvent::placed(placed)),
        EventEnvelope::new(OrderEvent::for_current_state(&processed)),
    ];
    assert_eq!(stack.deliver(&records(&events)).await, None);
    assert_eq!(
        store
            .replace_counters(&item, &want, &read.counters[&item], &shards)
            .await
            .unwrap(),
        Replaced::Moved
    );
    let first = ProductId::parse(&products[0]).unwrap();
    let had = smaller.products.get(&first).map_or(0, |p| p.orders);
    let after = store.bucket(&bucket).await.unwrap();
    assert_eq!(after.products[&first].orders, had + 1);
}

#[tokio::test]
async fn a_write_the_store_refuses_dead_letters_its_records_and_the_shard_moves_on() {
    let stack = spawn_stack().await;
    let events = history();
    let records = records(&events);
    // Write 1 is the first order's claim; one of the counter writes after the claims is
    // refused (as DynamoDB refuses an item over 400 KB: retrying cannot help).
    let orders = events
        .iter()
        .map(|e| e.order_id)
        .collect::<BTreeSet<_>>()
        .len();
    stack
        .aggregator
        .store
        .refuse_write
        .store(orders + 2, Ordering::SeqCst);
    assert_eq!(stack.deliver(&records).await, None, "the shard moves on");

    let messages = stack.emulator.queue_messages(&stack.dlq).await;
    assert!(!messages.is_empty());
    let sequences: BTreeSet<&str> = records.iter().map(|r| r.sequence.as_str()).collect();
    for message in &messages {
        assert_eq!(message["reason"], "unwritable", "{message}");
        let error = message["error"].as_str().unwrap();
        assert!(
            error.contains("ValidationException") && error.contains("rebuild-aggregates"),
            "{error}"
        );
        let sequence = message["record"]["kinesis"]["sequenceNumber"]
            .as_str()
            .unwrap();
        assert!(sequences.contains(sequence), "{message}");
    }
    let dead: BTreeSet<&str> = messages
        .iter()
        .map(|m| m["record"]["kinesis"]["sequenceNumber"].as_str().unwrap())
        .collect();
    assert_eq!(dead.len(), messages.len(), "one message per record");
}

/// An invocation whose deadline has come claims and writes nothing and hands the batch back
/// from its first record; the next invocation counts it exactly once.
#[tokio::test]
async fn an_invocation_out_of_time_writes_nothing_and_the_retry_is_exact() {
    let stack = spawn_stack().await;
    let events = history();
    let records = records(&events);
    let past = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 1_000;
    let response = stack
        .aggregator
        .handle_until(event(&records), Deadline::from_epoch_millis(past))
        .await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .filter_map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, vec![records[0].sequence.clone()]);
    let day = Bucket::containing(
        Granularity::Day,
        Timestamp::parse("2026-11-21T10:00:00Z").unwrap(),
    );
    assert_eq!(
        stack.aggregator.store.inner.bucket(&day).await.unwrap(),
        Default::default(),
        "nothing written"
    );
    assert_eq!(stack.deliver(&records).await, None);
    stack.assert_exact(&events).await;
}

#[tokio::test]
async fn a_product_shard_past_the_item_cap_continues_in_further_items_exactly() {
    let stack = spawn_stack().await;
    // 1,100 products of the longest ids, all of product shard 3, sold in one minute: ~230 KB
    // of counters for each of the minute's, hour's and day's `products#03`.
    let prefix = "p".repeat(58);
    let products = ids_on_shard(3, PRODUCT_SHARDS, 1_100, &prefix);
    let start = Timestamp::parse("2026-11-21T10:00:00Z").unwrap();
    let mut events = Vec::new();
    for (i, lines) in products.chunks(99).enumerate() {
        let [placed, processed] =
            processed_order(i as u32, "c-1", lines, start.plus_seconds(i as i64));
        events.push(EventEnvelope::new(OrderEvent::placed(placed)));
        events.push(EventEnvelope::new(OrderEvent::for_current_state(
            &processed,
        )));
    }
    let records = records(&events);
    for batch in records.chunks(5) {
        assert_eq!(stack.deliver(batch).await, None);
    }
    stack.assert_exact(&events).await;

    // Redelivered, from the start and from the middle, by this instance and by a new one
    // that knows nothing of the chains: every link's watermark still holds.
    assert_eq!(stack.deliver(&records).await, None);
    let cold = Aggregator {
        store: DynamoAnalytics::from_sdk(&stack.emulator.sdk, &stack.table, &stack.claims, 86_400),
        dead_letters: SqsDeadLetterQueue::from_sdk(&stack.emulator.sdk, &stack.dlq),
        clock: Arc::new(SystemClock),
        function_name: "orders-aggregate".into(),
    };
    assert!(
        cold.handle(event(&records[7..]))
            .await
            .batch_item_failures
            .is_empty()
    );
    assert!(
        cold.handle(event(&records))
            .await
            .batch_item_failures
            .is_empty()
    );
    stack.assert_exact(&events).await;

    // No stored item over the cap; the shard's items form chains of several links.
    let items: Vec<HashMap<String, AttributeValue>> = stack
        .emulator
        .dynamodb()
        .scan()
        .table_name(&stack.table)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .unwrap();
    let day = Bucket::containing(Granularity::Day, start);
    let links: Vec<&str> = items
        .iter()
        .filter_map(|i| i["pk"].as_s().ok())
        .filter(|pk| pk.starts_with(&format!("{day}/products#03")))
        .map(String::as_str)
        .collect();
    assert!(links.len() >= 4, "{links:?}");
    for item in &items {
        assert!(
            item_size(item) <= ITEM_CAP,
            "{:?}: {} bytes",
            item["pk"],
            item_size(item)
        );
    }

    // A rebuild of a chained item: the difference goes to the open link, exactly.
    let store = &stack.aggregator.store.inner;
    let read = store.read_for_rebuild(&day).await.unwrap();
    let item = CounterItem::Products(day, 3);
    let mut want = read.counters[&item].clone();
    let first = ProductId::parse(&products[0]).unwrap();
    let mut fold = Fold::default();
    for e in &events {
        fold.add(&Effect::of(e));
    }
    let mut truth = fold.counters[&item].clone();
    assert!(want.holds(&truth));
    truth.products.get_mut(&first).unwrap().units += 5;
    let shards = vec!["shardId-000000000000".to_owned()];
    assert_eq!(
        store
            .replace_counters(&item, &truth, &want, &shards)
            .await
            .unwrap(),
        Replaced::Written
    );
    want = store.read_for_rebuild(&day).await.unwrap().counters[&item].clone();
    assert!(want.holds(&truth));
}

#[tokio::test]
async fn a_shard_whose_watermark_stays_in_a_sealed_link_is_not_counted_twice() {
    let stack = spawn_stack().await;
    let fresh = || DynamoAnalytics::from_sdk(&stack.emulator.sdk, &stack.table, &stack.claims, 60);
    let (writer, cold) = (fresh(), fresh());
    let bucket = Bucket::containing(
        Granularity::Day,
        Timestamp::parse("2026-11-21T10:00:00Z").unwrap(),
    );
    let item = CounterItem::Products(bucket, 3);
    let products = ids_on_shard(3, PRODUCT_SHARDS, 400, &"q".repeat(58));
    let delta = |ids: &[String]| ItemDelta {
        products: ids
            .iter()
            .map(|id| {
                let p = orders_core::analytics::ProductTotals {
                    units: 1,
                    revenue: 100,
                    orders: 1,
                };
                (ProductId::parse(id).unwrap(), p)
            })
            .collect(),
        ..ItemDelta::default()
    };
    let small = delta(&products[..1]);
    // Shard B writes once to the first link; shard A then fills and seals it.
    let applied = writer
        .add_counters(&item, "shard-b", "10", "10", &small)
        .await
        .unwrap();
    assert!(matches!(applied, orders_core::ports::CountersApplied::Done));
    for (n, ids) in products.chunks(99).enumerate() {
        let at = format!("{}", 100 * (n + 1));
        let applied = writer
            .add_counters(&item, "shard-a", &at, &at, &delta(ids))
            .await
            .unwrap();
        assert!(matches!(applied, orders_core::ports::CountersApplied::Done));
    }
    let sealed = stack.raw_item(&format!("{bucket}/products#03")).await;
    assert!(sealed.contains_key("sealed"), "the first link filled up");

    // Shard B's batch again, from an instance that never saw the chain: the sealed link's
    // watermark refuses it, and the rest of B's records land after it.
    let again = cold
        .add_counters(&item, "shard-b", "10", "10", &small)
        .await
        .unwrap();
    assert!(
        matches!(&again, orders_core::ports::CountersApplied::Behind(w) if orders_core::sequence::compare(w, "10").is_eq()),
        "{again:?}"
    );
    assert!(
        cold.add_counters_after(&item, "shard-b", "10", "20", &small)
            .await
            .unwrap()
    );
    let first = ProductId::parse(&products[0]).unwrap();
    let view = stack.aggregator.store.inner.bucket(&bucket).await.unwrap();
    assert_eq!(view.products[&first].units, 3, "B twice, A once");
}
