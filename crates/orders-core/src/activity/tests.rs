//! Properties of the whole path — a client's batches, validated, deduplicated by event id,
//! folded and merged as the store merges them — against one fold of the unique events.

use super::*;
use crate::analytics::{Bucket, Granularity};
use crate::caller::Caller;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::HashSet;

const SESSIONS: usize = 8;
const PRODUCTS: usize = 6;

/// 22:30 on one day to 01:30 the next: minutes, hours and two days.
fn base() -> Timestamp {
    Timestamp::parse("2026-11-22T22:30:00Z").unwrap()
}

fn now() -> Timestamp {
    base().plus_seconds(4 * 3600)
}

/// One random event, as a client sends it: (session, customer, kind, product, cart, time).
type Spec = (usize, Option<usize>, usize, usize, u8, i64);

fn body_of(i: usize, (session, customer, kind, product, cart, at): Spec) -> Value {
    let at = base().plus_seconds(at).to_string();
    let mut event = json!({
        "eventId": format!("e-{i}"),
        "sessionId": format!("s-{session}"),
        "occurredAt": at,
    });
    if let Some(c) = customer {
        event["customerId"] = json!(format!("c-{c}"));
    }
    let product = json!(format!("p-{product}"));
    match kind {
        0 => {
            event["eventType"] = json!("ProductViewed");
            event["productId"] = product;
        }
        1 | 2 => {
            event["eventType"] = json!(if kind == 1 {
                "AddedToCart"
            } else {
                "RemovedFromCart"
            });
            event["productId"] = product;
            event["quantity"] = json!(1 + i % 3);
        }
        _ => {
            event["eventType"] = json!("CheckoutStarted");
            let cart: Vec<String> = (0..PRODUCTS)
                .filter(|p| cart & (1 << p) != 0)
                .map(|p| format!("p-{p}"))
                .collect();
            event["cart"] = json!(cart);
        }
    }
    event
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0..SESSIONS,
        proptest::option::of(0usize..4),
        0usize..4,
        0..PRODUCTS,
        any::<u8>(),
        0i64..3 * 3600,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// A client's retries (whole events sent again, in the same batch or a later one) and
    /// any split into batches fold to what the unique events fold to, once each; and a
    /// bucket's minutes merged are its hour and its day.
    #[test]
    fn batches_with_retries_fold_to_the_unique_events(
        specs in proptest::collection::vec(spec(), 1..60),
        retries in proptest::collection::vec((any::<proptest::sample::Index>(), any::<proptest::sample::Index>()), 0..30),
        cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..8),
    ) {
        let unique: Vec<Value> = specs.iter().enumerate().map(|(i, s)| body_of(i, *s)).collect();
        // Each retry resends event `which` at position `at` of the delivery (later or earlier:
        // a client may flush its queue in any order).
        let mut sent = unique.clone();
        for (which, at) in &retries {
            let copy = unique[which.index(unique.len())].clone();
            let at = at.index(sent.len() + 1);
            sent.insert(at, copy);
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(sent.len() + 1)).collect();
        cuts.extend([0, sent.len()]);
        cuts.sort_unstable();
        cuts.dedup();

        let mut claimed = HashSet::new();
        let mut stored = ActivityFold::default();
        for batch in cuts.windows(2).map(|w| &sent[w[0]..w[1]]) {
            if batch.is_empty() {
                continue;
            }
            let events = parse_activity_batch(&json!({"events": batch}), &Caller::Staff, now())
                .expect("a client's valid batch");
            let mut fold = ActivityFold::default();
            for event in events.iter().filter(|e| claimed.insert(e.dedup_key())) {
                fold.add_event(event);
            }
            stored.merge(&fold);
        }

        let mut direct = ActivityFold::default();
        for event in parse_activity_batch(&json!({"events": unique}), &Caller::Staff, now()).unwrap() {
            direct.add_event(&event);
        }
        prop_assert_eq!(&stored, &direct);

        let views = direct.views();
        for (bucket, view) in &views {
            if bucket.granularity == Granularity::Minute {
                continue;
            }
            let mut merged = ActivityView::default();
            let minutes = views.iter().filter(|(b, _)| {
                b.granularity == Granularity::Minute
                    && Bucket::containing(bucket.granularity, b.start_time()) == *bucket
            });
            for (_, minute) in minutes {
                merged.merge(minute);
            }
            prop_assert_eq!(&merged, view, "{}", bucket);
            prop_assert_eq!(merged.bounded(), view.bounded());
        }
    }
}

#[test]
fn sketched_sets_merge_from_minutes_to_the_hours_stored_form() {
    // 10,000 sessions in one hour: each minute's shards stay exact (~2.6 ids), the hour's
    // pass 64 ids per shard and are sketches.
    let n = 10_000;
    let hour = Timestamp::parse("2026-11-22T10:00:00Z").unwrap();
    let mut fold = ActivityFold::default();
    for i in 0..n {
        let event = ActivityEvent {
            event_id: ActivityEventId::parse("e-1").unwrap(),
            session_id: SessionId::parse(&format!("s-{i}")).unwrap(),
            customer_id: None,
            occurred_at: hour.plus_seconds((i % 3600) as i64),
            kind: if i % 4 == 0 {
                ActivityKind::AddedToCart {
                    product_id: ProductId::parse("p-1").unwrap(),
                    quantity: Quantity::new(1).unwrap(),
                }
            } else {
                ActivityKind::ProductViewed {
                    product_id: ProductId::parse("p-1").unwrap(),
                }
            },
        };
        fold.add_event(&event);
    }
    let views = fold.views();
    let hour_bucket = Bucket::containing(Granularity::Hour, hour);
    let mut merged = ActivityView::default();
    for (bucket, view) in &views {
        if bucket.granularity == Granularity::Minute {
            let stored = view.bounded();
            assert!(!stored.sessions.count().approximate, "{bucket}");
            merged.merge(&stored);
        }
    }
    let stored_hour = views[&hour_bucket].bounded();
    assert_eq!(merged.bounded(), stored_hour);

    let report = ActivityReport::new(hour, hour.plus_seconds(3600), &stored_hour);
    assert!(report.approximate);
    let error = (report.active_sessions as f64 - n as f64).abs() / n as f64;
    assert!(error < 0.03, "{} of {n}", report.active_sessions);
    assert_eq!(
        report.views + report.cart_adds,
        n as i64,
        "counters stay exact"
    );
    let carted = n as f64 / 4.0;
    let abandoned = (report.abandoned_sessions as f64 - carted).abs() / carted;
    assert!(
        abandoned < 0.05,
        "{} of {carted}",
        report.abandoned_sessions
    );
}

#[test]
fn the_envelope_round_trips_and_unknown_types_are_skipped() {
    let event = ActivityEvent {
        event_id: ActivityEventId::parse("e-1").unwrap(),
        session_id: SessionId::parse("s-1").unwrap(),
        customer_id: Some(CustomerId::parse("c-1").unwrap()),
        occurred_at: base(),
        kind: ActivityKind::AddedToCart {
            product_id: ProductId::parse("sku-1").unwrap(),
            quantity: Quantity::new(2).unwrap(),
        },
    };
    let envelope = ActivityEnvelope::new(event.clone(), now());
    let json: Value = serde_json::from_slice(&envelope.to_json()).unwrap();
    assert_eq!(
        json,
        json!({
            "schemaVersion": 1,
            "receivedAt": "2026-11-23T02:30:00.000Z",
            "eventId": "e-1",
            "sessionId": "s-1",
            "customerId": "c-1",
            "occurredAt": "2026-11-22T22:30:00.000Z",
            "eventType": "AddedToCart",
            "payload": {"productId": "sku-1", "quantity": 2}
        })
    );
    assert_eq!(
        ActivityEnvelope::decode(&envelope.to_json()).unwrap(),
        Some(envelope)
    );
    assert_eq!(event.partition_key(), "s-1");

    let mut later = json.clone();
    later["eventType"] = json!("WishlistAdded");
    assert_eq!(
        ActivityEnvelope::decode(later.to_string().as_bytes()).unwrap(),
        None
    );
    let mut newer = json.clone();
    newer["schemaVersion"] = json!(2);
    assert_eq!(
        ActivityEnvelope::decode(newer.to_string().as_bytes())
            .unwrap_err()
            .code(),
        "unsupported_schema_version"
    );
    let mut broken = json;
    broken["payload"]["quantity"] = json!(0);
    assert_eq!(
        ActivityEnvelope::decode(broken.to_string().as_bytes())
            .unwrap_err()
            .code(),
        "malformed_event"
    );
    let checkout = ActivityEnvelope::new(
        ActivityEvent {
            customer_id: None,
            kind: ActivityKind::CheckoutStarted { cart: vec![] },
            ..event
        },
        now(),
    );
    let json: Value = serde_json::from_slice(&checkout.to_json()).unwrap();
    assert!(json.get("customerId").is_none());
    assert_eq!(json["payload"], json!({"cart": []}));
    assert_eq!(
        ActivityEnvelope::decode(&checkout.to_json()).unwrap(),
        Some(checkout)
    );
}

#[test]
fn every_known_type_is_listed() {
    let kinds = [
        ActivityKind::ProductViewed {
            product_id: ProductId::parse("p").unwrap(),
        },
        ActivityKind::AddedToCart {
            product_id: ProductId::parse("p").unwrap(),
            quantity: Quantity::new(1).unwrap(),
        },
        ActivityKind::RemovedFromCart {
            product_id: ProductId::parse("p").unwrap(),
            quantity: Quantity::new(1).unwrap(),
        },
        ActivityKind::CheckoutStarted { cart: vec![] },
    ];
    let types: Vec<&str> = kinds.iter().map(ActivityKind::event_type).collect();
    assert_eq!(types, ACTIVITY_EVENT_TYPES);
}

/// The write cost of the reference mix, as `docs/activity.md` quotes it:
/// `cargo test -p orders-core --release activity_write_cost -- --ignored --nocapture`.
/// Sessions of 20 events (14 views, 4 cart adds, 1 removal, 1 checkout in 40 % of them),
/// 30 % signed in, 2,000 products with Zipf-like popularity, 10,000 events a minute for 30
/// minutes, read by the consumer in batches of 500 in arrival order. Billed as DynamoDB
/// bills: a request per item written per batch; units = ceil(item size after / 1 KB), item
/// size by DynamoDB's rules (attribute name + 21 bytes a number, a string set's ids, 64 a
/// watermark, 256 bytes of registers).
#[test]
#[ignore]
fn activity_write_cost() {
    use crate::analytics::CounterItem;
    use crate::distinct::{EXACT_LIMIT, ShardSetOf};
    use std::collections::{BTreeSet, HashMap};
    let (per_minute, minutes, session_len, products) = (10_000usize, 30usize, 20usize, 2_000u64);
    let start = Timestamp::parse("2026-11-22T10:00:00Z").unwrap();
    // Sessions start evenly; each spreads its events over ~10 minutes.
    let total = per_minute * minutes;
    let mut events = Vec::with_capacity(total);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut n = 0;
    let mut session = 0usize;
    while n < total {
        let first = (session * session_len * 60_000 / per_minute) as i64;
        let customer = (next() % 10 < 3).then(|| format!("customer-{:06}", next() % 200_000));
        let checks_out = next() % 10 < 4;
        let mut cart = Vec::new();
        for k in 0..session_len {
            // Zipf-like: the product index is the square of a uniform fraction of the catalog.
            let u = (next() % 10_000) as f64 / 10_000.0;
            let product =
                ProductId::parse(&format!("sku-{:05}", (u * u * products as f64) as u64)).unwrap();
            let kind = match k {
                19 if checks_out => ActivityKind::CheckoutStarted { cart: cart.clone() },
                19 | 18 => ActivityKind::ProductViewed {
                    product_id: product,
                },
                17 if !cart.is_empty() => ActivityKind::RemovedFromCart {
                    product_id: cart.pop().unwrap(),
                    quantity: Quantity::new(1).unwrap(),
                },
                k if k % 4 == 1 && !cart.contains(&product) => {
                    cart.push(product.clone());
                    ActivityKind::AddedToCart {
                        product_id: product,
                        quantity: Quantity::new(1).unwrap(),
                    }
                }
                _ => ActivityKind::ProductViewed {
                    product_id: product,
                },
            };
            events.push(ActivityEvent {
                event_id: ActivityEventId::parse(&format!("{k:08x}-{:024x}", next())).unwrap(),
                session_id: SessionId::parse(&format!("sess-{session:012}")).unwrap(),
                customer_id: customer.as_deref().map(|c| CustomerId::parse(c).unwrap()),
                occurred_at: start
                    .plus_seconds(first / 1000 + (k as i64 * 30) + (next() % 20) as i64),
                kind,
            });
            n += 1;
        }
        session += 1;
    }
    events.sort_by_key(|e| e.occurred_at);

    let number = |name: &str| name.len() + 21;
    let mut counter_items: HashMap<CounterItem, BTreeSet<String>> = HashMap::new();
    let mut sets: HashMap<String, ShardSetOf<String>> = HashMap::new();
    let mut claims: HashMap<String, usize> = HashMap::new();
    let (mut requests, mut units) = ([0usize; 3], [0usize; 3]);
    let wru = |bytes: usize| bytes.div_ceil(1024).max(1);
    for batch in events.chunks(500) {
        let mut fold = ActivityFold::default();
        let mut batch_claims: HashMap<String, usize> = HashMap::new();
        for e in batch {
            fold.add_event(e);
            let minute = Bucket::containing(Granularity::Minute, e.occurred_at);
            // e#<eventId> = <shard>/<64-digit sequence>
            *batch_claims
                .entry(format!("{}/{minute}", e.session_id))
                .or_default() += 2 + e.event_id.as_str().len() + 20 + 64;
        }
        for (key, bytes) in batch_claims {
            let size = claims.entry(key.clone()).or_insert(key.len() + 5);
            *size += bytes;
            requests[0] += 1;
            units[0] += wru(*size);
        }
        for (item, delta) in &fold.counters {
            let names = counter_items.entry(item.clone()).or_default();
            names.extend(delta.attributes().into_iter().map(|(n, _)| n));
            let size = 40 + 64 + names.iter().map(|n| number(n)).sum::<usize>();
            requests[1] += 1;
            units[1] += wru(size);
        }
        let keyed = fold
            .sessions
            .iter()
            .map(|((b, set, shard), ids)| {
                (
                    format!("{b}/{}", set.sort_key(*shard)),
                    ids.iter()
                        .map(|i| i.as_str().to_owned())
                        .collect::<Vec<_>>(),
                )
            })
            .chain(fold.customers.iter().map(|((b, shard), ids)| {
                (
                    format!("{b}/customers#{shard:02}"),
                    ids.iter().map(|i| i.as_str().to_owned()).collect(),
                )
            }));
        for (key, ids) in keyed {
            let set = sets.entry(key).or_default();
            let mut grown: BTreeSet<String> = match &*set {
                ShardSetOf::Exact(have) => have.clone(),
                ShardSetOf::Sketch(_) => BTreeSet::new(),
            };
            let before = grown.len();
            grown.extend(ids);
            let size = match &*set {
                ShardSetOf::Sketch(_) => 256 + 40,
                ShardSetOf::Exact(_) if grown.len() > EXACT_LIMIT => {
                    *set = ShardSetOf::Sketch(crate::distinct::Registers::default());
                    256 + 40
                }
                ShardSetOf::Exact(_) => {
                    let size = 40 + grown.iter().map(|i| i.len() + 1).sum::<usize>();
                    *set = ShardSetOf::Exact(grown.clone());
                    if grown.len() == before {
                        continue; // nothing new: a warm instance skips it
                    }
                    size
                }
            };
            requests[2] += 1;
            units[2] += wru(size);
        }
    }
    let per_million = |x: usize| x as f64 * 1e6 / events.len() as f64;
    for (i, what) in ["claims", "counter items", "distinct sets"]
        .iter()
        .enumerate()
    {
        println!(
            "{what}: {:.0} requests, {:.0} WRU per million events",
            per_million(requests[i]),
            per_million(units[i])
        );
    }
    println!(
        "total: {:.0} requests, {:.0} WRU per million events ({} events, {} batches, {} sessions)",
        per_million(requests.iter().sum()),
        per_million(units.iter().sum()),
        events.len(),
        events.len().div_ceil(500),
        session
    );
}
