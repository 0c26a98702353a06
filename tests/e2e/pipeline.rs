//! The whole pipeline through the local stack: orders placed over HTTP are processed by
//! process-order, invoked by the local event source mapping that Terraform declared, against
//! the deployed tables, stream and dead-letter queue.

use crate::{api, client, unique};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kinesis::primitives::Blob;
use futures::stream::{self, StreamExt};
use orders_tests::Emulator;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// A small deterministic generator (xorshift), so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The price `put_product` lists (and `place` quotes).
pub const PRICE: i64 = 500;

pub async fn put_product(id: &str, stock: u64) {
    put_product_at(id, PRICE, stock).await;
}

/// `PUT /products/{id}` of a new product at `price`.
pub async fn put_product_at(id: &str, price: i64, stock: u64) {
    for _ in 0..10 {
        let response = client()
            .put(format!("{}/products/{id}", api()))
            .json(&json!({"name": id, "price": price, "stock": stock}))
            .send()
            .await
            .unwrap();
        if response.status().is_server_error() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        assert!(
            response.status().is_success(),
            "{}",
            response.text().await.unwrap()
        );
        return;
    }
    panic!("PUT /products/{id} kept failing");
}

/// `POST /products/{id}/stock`: adds `units` atomically.
async fn add_stock(id: &str, units: i64) {
    let response = client()
        .post(format!("{}/products/{id}/stock", api()))
        .json(&json!({ "add": units }))
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );
}

pub(crate) async fn stock(id: &str) -> i64 {
    let product = get_json(&format!("{}/products/{id}", api())).await;
    product["stock"].as_i64().expect("stock")
}

pub async fn place(customer: &str, lines: &[(String, u64)]) -> String {
    let items: Vec<Value> = lines
        .iter()
        .map(|(p, q)| json!({"productId": p, "quantity": q, "unitPrice": PRICE}))
        .collect();
    let key = unique("key");
    // A real client retries 5xx answers with the same key; so do we.
    for _ in 0..10 {
        let response = client()
            .post(format!("{}/orders", api()))
            .header("Idempotency-Key", &key)
            .json(&json!({"customerId": customer, "items": items}))
            .send()
            .await
            .unwrap();
        if response.status().is_server_error() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        assert_eq!(response.status().as_u16(), 201);
        return response.json::<Value>().await.unwrap()["orderId"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    panic!("placing an order kept failing with 5xx");
}

/// GET as JSON, retrying the 5xx a loaded local stack may answer (a real client retries too).
pub async fn get_json(url: &str) -> Value {
    for _ in 0..20 {
        match client().get(url).send().await {
            Ok(r) if r.status().is_success() => return r.json().await.unwrap(),
            Ok(r) if r.status().is_server_error() => {}
            Ok(r) => panic!("GET {url}: {}", r.status()),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("GET {url} kept failing");
}

/// Every order of `customer`, all pages.
pub(crate) async fn orders_of(customer: &str) -> Vec<Value> {
    let mut orders = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{}/orders?customerId={customer}&limit=100", api());
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = get_json(&url).await;
        orders.extend(page["orders"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return orders,
        }
    }
}

/// Waits until none of the customers' orders is still `PENDING`.
pub(crate) async fn wait_until_processed(customers: &[String], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let mut pending = 0;
        for customer in customers {
            let page = get_json(&format!(
                "{}/orders?customerId={customer}&status=PENDING&limit=100",
                api()
            ))
            .await;
            pending += page["orders"].as_array().unwrap().len();
        }
        if pending == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{pending}+ orders still PENDING after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Dead letters in the deployed process-order DLQ that satisfy `wanted`, waiting up to
/// `timeout` for `count` of them. Other tests share the queue, so messages are only
/// hidden briefly while read.
async fn dead_letters(
    emulator: &Emulator,
    wanted: impl Fn(&Value) -> bool,
    count: usize,
    timeout: Duration,
) -> Vec<Value> {
    let queue = emulator.output("process_order_dlq_url");
    let deadline = Instant::now() + timeout;
    let mut found: HashMap<String, Value> = HashMap::new();
    while found.len() < count && Instant::now() < deadline {
        let output = emulator
            .sqs()
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .visibility_timeout(1)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for message in output.messages.unwrap_or_default() {
            let body: Value =
                serde_json::from_str(message.body().unwrap_or("null")).unwrap_or(Value::Null);
            if wanted(&body) {
                found.insert(message.message_id().unwrap_or_default().to_owned(), body);
            }
        }
    }
    found.into_values().collect()
}

#[tokio::test]
async fn a_thousand_orders_with_limited_stock_all_settle_exactly() {
    let run = unique("load");
    let products: Vec<(String, u64)> = (0..25)
        .map(|i| (format!("{run}-p{i}"), 20 + 10 * (i % 4)))
        .collect();
    for (id, stock) in &products {
        put_product(id, *stock).await;
    }
    let customers: Vec<String> = (0..10).map(|i| format!("{run}-c{i}")).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let orders: Vec<(String, Vec<(String, u64)>)> = (0..1000)
        .map(|i| {
            let lines = 1 + rng.below(3) as usize;
            let mut chosen = HashSet::new();
            let items = (0..lines)
                .filter_map(|_| {
                    let p = &products[rng.below(products.len() as u64) as usize].0;
                    chosen
                        .insert(p.clone())
                        .then(|| (p.clone(), 1 + rng.below(3)))
                })
                .collect();
            (customers[i % customers.len()].clone(), items)
        })
        .collect();

    let placed: Vec<String> = stream::iter(orders.iter())
        .map(|(customer, lines)| place(customer, lines))
        .buffer_unordered(16)
        .collect()
        .await;
    assert_eq!(placed.len(), 1000);
    wait_until_processed(&customers, Duration::from_secs(120)).await;

    let mut settled = Vec::new();
    for customer in &customers {
        settled.extend(orders_of(customer).await);
    }
    assert_eq!(settled.len(), 1000, "every placed order is there once");
    let ids: HashSet<&str> = settled
        .iter()
        .map(|o| o["orderId"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        placed.iter().map(String::as_str).collect::<HashSet<_>>()
    );
    let processed: Vec<&Value> = settled
        .iter()
        .filter(|o| o["status"] == "PROCESSED")
        .collect();
    let failed = settled.iter().filter(|o| o["status"] == "FAILED").count();
    assert_eq!(
        processed.len() + failed,
        1000,
        "processed + failed = placed (nothing dead-lettered)"
    );
    assert!(
        failed > 0 && !processed.is_empty(),
        "stock is limited: some succeed, some fail"
    );
    assert!(
        settled
            .iter()
            .filter(|o| o["status"] == "FAILED")
            .all(|o| o["failureReason"] == "out_of_stock")
    );

    let mut reserved: HashMap<&str, i64> = HashMap::new();
    for order in &processed {
        for item in order["items"].as_array().unwrap() {
            *reserved
                .entry(item["productId"].as_str().unwrap())
                .or_default() += item["quantity"].as_i64().unwrap();
        }
    }
    for (id, initial) in &products {
        let left = stock(id).await;
        assert!(left >= 0, "{id} oversold: {left}");
        assert_eq!(
            *initial as i64 - left,
            reserved.get(id.as_str()).copied().unwrap_or(0),
            "{id}: reserved = initial - final"
        );
    }
}

#[tokio::test]
async fn poison_on_the_stream_is_dead_lettered_and_the_shard_keeps_moving() {
    let emulator = Emulator::connect().await;
    let run = unique("poison");
    let product = format!("{run}-p");
    put_product(&product, 100).await;
    let customer = format!("{run}-c");
    let before = place(&customer, &[(product.clone(), 1)]).await;

    let stream = emulator.output("events_stream_name");
    let put = |key: String, data: Vec<u8>| {
        let kinesis = emulator.kinesis();
        let stream = stream.clone();
        async move {
            kinesis
                .put_record()
                .stream_name(stream)
                .partition_key(key)
                .data(Blob::new(data))
                .send()
                .await
                .unwrap();
        }
    };
    put(format!("{run}-garbage"), vec![0xde, 0xad, 0xbe, 0xef]).await;
    put(
        format!("{run}-v9"),
        json!({"eventId":"x","eventType":"OrderPlaced","schemaVersion":9,"orderId":"x","payload":{}}).to_string().into_bytes(),
    )
    .await;
    // A well-formed OrderPlaced for an order that was never stored.
    let mut ghost: Value = client()
        .get(format!("{}/orders/{before}", api()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ghost_id = "01JZZZZZZZZZZZZZZZZZZZZZZZ";
    ghost["orderId"] = json!(ghost_id);
    let envelope = json!({"eventId":"6f1d2c4e-8b3a-4f57-9e21-7c0d5a9b3e18","eventType":"OrderPlaced","schemaVersion":1,
        "occurredAt": ghost["createdAt"], "orderId": ghost_id, "payload": {"order": ghost}});
    put(format!("{run}-ghost"), envelope.to_string().into_bytes()).await;
    let after = place(&customer, &[(product.clone(), 2)]).await;

    wait_until_processed(std::slice::from_ref(&customer), Duration::from_secs(60)).await;
    for id in [&before, &after] {
        let order = get_json(&format!("{}/orders/{id}", api())).await;
        assert_eq!(
            order["status"], "PROCESSED",
            "records around the poison are processed"
        );
    }
    let ours = |letter: &Value| {
        letter["record"]["kinesis"]["partitionKey"]
            .as_str()
            .is_some_and(|k| k.starts_with(&run))
    };
    let letters = dead_letters(&emulator, ours, 3, Duration::from_secs(30)).await;
    let reasons: HashSet<&str> = letters
        .iter()
        .map(|l| l["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        HashSet::from(["not_json", "unsupported_schema_version", "order_not_found"]),
        "{letters:#?}"
    );
    let garbage = letters.iter().find(|l| l["reason"] == "not_json").unwrap();
    assert_eq!(
        garbage["record"]["kinesis"]["data"], "3q2+7w==",
        "the full payload, base64"
    );
    assert!(
        garbage["record"]["kinesis"]["sequenceNumber"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert_eq!(garbage["function"], "orders-process-order");
}

/// Fault injection pauses the emulator for everyone, so it runs alone: `make test` runs the
/// ignored tests one at a time after the rest.
#[tokio::test]
#[ignore = "fault injection: run alone (make test runs it after the others)"]
async fn emulator_pause_mid_run_loses_nothing() {
    let pid: i32 = std::env::var("ORDERS_EMULATOR_PID")
        .expect("ORDERS_EMULATOR_PID: the pid of the moto_server make test started")
        .parse()
        .unwrap();
    let run = unique("pause");
    let product = format!("{run}-p");
    put_product(&product, 30).await;
    let customer = format!("{run}-c");
    let placed: Vec<String> = stream::iter(0..60)
        .map(|_| {
            let lines = vec![(product.clone(), 1)];
            let customer = customer.clone();
            async move { place(&customer, &lines).await }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    // Pause (never kill: moto keeps its state in memory) long enough for SDK attempts to time
    // out, then resume.
    signal(pid, "STOP");
    tokio::time::sleep(Duration::from_secs(7)).await;
    signal(pid, "CONT");

    wait_until_processed(std::slice::from_ref(&customer), Duration::from_secs(120)).await;
    let settled = orders_of(&customer).await;
    assert_eq!(settled.len(), placed.len());
    let processed = settled
        .iter()
        .filter(|o| o["status"] == "PROCESSED")
        .count();
    assert_eq!(processed, 30, "exactly the stock");
    assert_eq!(stock(&product).await, 0);
}

/// The scenario: concurrent `POST /orders` *without* an Idempotency-Key while the
/// emulator freezes. Some requests time out after their order was stored; before the relay
/// those orders stayed PENDING forever (stored, never published). Now every stored order
/// settles, whatever its client was told.
#[tokio::test]
#[ignore = "fault injection: run alone (make test runs it after the others)"]
async fn orders_stored_by_requests_cut_off_mid_way_are_still_processed() {
    let pid: i32 = std::env::var("ORDERS_EMULATOR_PID")
        .expect("ORDERS_EMULATOR_PID: the pid of the moto_server make test started")
        .parse()
        .unwrap();
    let run = unique("cutoff");
    let product = format!("{run}-p");
    put_product(&product, 1_000).await;
    let customer = format!("{run}-c");
    let post = |customer: String, product: String| async move {
        client()
            .post(format!("{}/orders", api()))
            .json(&json!({"customerId": customer,
                "items": [{"productId": product, "quantity": 1, "unitPrice": 500}]}))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    let requests = tokio::spawn({
        let (customer, product) = (customer.clone(), product.clone());
        async move {
            stream::iter(0..100)
                .map(|_| post(customer.clone(), product.clone()))
                .buffer_unordered(100)
                .collect::<Vec<u16>>()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    signal(pid, "STOP");
    tokio::time::sleep(Duration::from_secs(7)).await;
    signal(pid, "CONT");
    let statuses = requests.await.unwrap();
    let created = statuses.iter().filter(|s| **s == 201).count();

    wait_until_processed(std::slice::from_ref(&customer), Duration::from_secs(120)).await;
    let stored = orders_of(&customer).await;
    assert!(
        stored.len() >= created,
        "{created} answered 201 but {} stored",
        stored.len()
    );
    assert!(
        stored.iter().all(|o| o["status"] == "PROCESSED"),
        "every stored order processed (stock suffices): {:?}",
        stored.iter().map(|o| &o["status"]).collect::<Vec<_>>()
    );
    assert_eq!(stock(&product).await, 1_000 - stored.len() as i64);
}

/// Retries exhausted on a record that keeps failing (an order item that cannot be read)
/// → the Lambda on-failure record lands in the DLQ; after the data is repaired,
/// `orders-admin dlq replay` finishes the work.
#[tokio::test]
#[ignore = "replays the shared DLQ: run alone (make test runs it after the others)"]
async fn exhausted_retries_end_in_the_dlq_and_replay_completes_the_work() {
    let emulator = Emulator::connect().await;
    let run = unique("exhaust");
    let product = format!("{run}-p");
    put_product(&product, 5).await;
    let customer = format!("{run}-c");
    // A real, processed order; we corrupt its item and deliver its event again.
    let good = place(&customer, &[(product.clone(), 2)]).await;
    wait_until_processed(std::slice::from_ref(&customer), Duration::from_secs(30)).await;
    let table = emulator.output("orders_table");
    let original = emulator
        .dynamodb()
        .get_item()
        .table_name(&table)
        .key("orderId", AttributeValue::S(good.clone()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let mut corrupt = original.clone();
    corrupt.insert("version".into(), AttributeValue::S("garbled".into()));
    corrupt.insert("status".into(), AttributeValue::S("PENDING".into()));
    corrupt.insert("total".into(), AttributeValue::S("garbled".into()));
    emulator
        .dynamodb()
        .put_item()
        .table_name(&table)
        .set_item(Some(corrupt))
        .send()
        .await
        .unwrap();
    let event = emulator
        .stream_records(&emulator.output("events_stream_name"))
        .await
        .into_iter()
        .find(|(_, e)| e["orderId"] == good.as_str() && e["eventType"] == "OrderPlaced")
        .expect("the OrderPlaced event")
        .1;
    orders_tests::assert_event_conforms(&event);
    let put = emulator
        .kinesis()
        .put_record()
        .stream_name(emulator.output("events_stream_name"))
        .partition_key(&good)
        .data(Blob::new(event.to_string()))
        .send()
        .await
        .unwrap();
    let sequence = put.sequence_number().to_owned();

    let covers_ours = |letter: &Value| {
        let info = &letter["KinesisBatchInfo"];
        let (Some(start), Some(end)) = (
            info["startSequenceNumber"].as_str(),
            info["endSequenceNumber"].as_str(),
        ) else {
            return false;
        };
        let le = |a: &str, b: &str| (a.len(), a) <= (b.len(), b);
        le(start, &sequence) && le(&sequence, end)
    };
    let letters = dead_letters(&emulator, covers_ours, 1, Duration::from_secs(90)).await;
    assert_eq!(letters.len(), 1, "an on-failure record for our record");
    assert_eq!(
        letters[0]["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );

    // Repair: the item back to a readable PENDING order at version 1 and the stock as it was
    // before the first processing, then replay.
    let mut repaired = original;
    repaired.insert("version".into(), AttributeValue::N("1".into()));
    repaired.insert("status".into(), AttributeValue::S("PENDING".into()));
    // And the listing keys of a PENDING order, as `order_item` writes them.
    repaired.insert(
        "statusShard".into(),
        AttributeValue::S(original_status_shard(&repaired)),
    );
    repaired.insert(
        "customerStatus".into(),
        AttributeValue::S(format!("{customer}#PENDING")),
    );
    repaired.remove("processedAt");
    emulator
        .dynamodb()
        .put_item()
        .table_name(&table)
        .set_item(Some(repaired))
        .send()
        .await
        .unwrap();
    // The stock as before the first processing (it took 2 of the 5 units).
    add_stock(&product, 2).await;
    // Messages we just read stay invisible for their 1 s visibility timeout.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let admin = orders_tests::repo_root().join("target/debug/orders-admin");
    let output = std::process::Command::new(&admin)
        .args([
            "dlq",
            "replay",
            "--queue",
            &emulator.output("process_order_dlq_url"),
        ])
        .env("AWS_ENDPOINT_URL", orders_tests::endpoint())
        // Back to process-order, through the runner's Lambda Invoke API.
        .env(
            "AWS_ENDPOINT_URL_LAMBDA",
            std::env::var("ORDERS_LAMBDA_URL").unwrap_or_else(|_| "http://127.0.0.1:3001".into()),
        )
        .output()
        .unwrap_or_else(|e| panic!("run {} ({e}); cargo build builds it", admin.display()));
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    wait_until_processed(std::slice::from_ref(&customer), Duration::from_secs(60)).await;
    let order = get_json(&format!("{}/orders/{good}", api())).await;
    assert_eq!(order["status"], "PROCESSED");
    assert_eq!(stock(&product).await, 3);
}

fn original_status_shard(item: &HashMap<String, AttributeValue>) -> String {
    let shard = item["listShard"].as_s().unwrap();
    format!("PENDING#{shard}")
}

fn signal(pid: i32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}
