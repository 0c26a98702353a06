//! The event contracts (`api/events`) without a running stack: one schema per event type the
//! code knows and none other, every event the domain makes conforming to its schema (closed:
//! nothing emitted goes undocumented), the order in them the HTTP API's order, the events
//! older producers wrote read as the current ones — and, in `events/compatibility.rs`, no
//! breaking change since the released contract (`api/events/released/`). `docs/events.md`
//! explains the rules. The storefront activity events of the `activity` stream
//! (`orders_core::activity`, `docs/activity.md`) are held to their schemas the same way.

#[path = "events/compat.rs"]
mod compat;
#[path = "events/compatibility.rs"]
mod compatibility;

use orders_core::activity::{ACTIVITY_EVENT_TYPES, ACTIVITY_SCHEMA_VERSION, ActivityEnvelope};
use orders_core::event::{EVENT_TYPES, current_version};
use orders_core::{Decoded, EventEnvelope, FailureReason, Order, OrderEvent, OrderStatus};
use orders_tests::event_contract::{EventSchemas, inline};
use orders_tests::event_samples::{
    RECORDED_V1_ORDER_PLACED, as_written_by_v1, every_activity_event, every_event,
};
use orders_tests::repo_root;
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn events_dir() -> std::path::PathBuf {
    repo_root().join("api/events")
}

#[test]
fn there_is_a_schema_for_each_event_type_the_code_knows_and_no_other() {
    let schemas = EventSchemas::current();
    let files: BTreeSet<&str> = schemas.schemas.keys().map(String::as_str).collect();
    let known: BTreeSet<&str> = EVENT_TYPES
        .iter()
        .map(|(t, _)| *t)
        .chain(ACTIVITY_EVENT_TYPES)
        .collect();
    assert_eq!(
        files, known,
        "api/events/*.schema.json vs EVENT_TYPES and ACTIVITY_EVENT_TYPES"
    );
    for (event_type, schema) in &schemas.schemas {
        assert_eq!(schema["properties"]["eventType"]["const"], *event_type);
        let written = match current_version(event_type) {
            Some(version) => version,
            None => ACTIVITY_SCHEMA_VERSION,
        };
        assert_eq!(
            schemas.version(event_type),
            Some(u64::from(written)),
            "{event_type}: the schema's schemaVersion vs the version the code writes"
        );
        assert!(
            schema["$id"]
                .as_str()
                .is_some_and(|id| id.ends_with(&format!("/{event_type}.schema.json"))),
            "{event_type}: $id names its file"
        );
    }
}

#[test]
fn every_schema_is_json_schema_2020_12() {
    let meta = jsonschema::draft202012::meta::validator();
    let mut dirs = vec![events_dir()];
    for entry in std::fs::read_dir(events_dir().join("released")).unwrap() {
        dirs.push(entry.unwrap().path());
    }
    for dir in dirs {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let schema: Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                assert_eq!(
                    schema["$schema"],
                    "https://json-schema.org/draft/2020-12/schema",
                    "{}",
                    path.display()
                );
                if let Err(e) = meta.validate(&schema) {
                    panic!("{} is not a 2020-12 schema: {e}", path.display());
                }
            }
        }
    }
}

/// The fields a sample has at `pointer` (an object), and whether each is there.
fn presence(events: &[Value], pointer: &str, field: &str) -> (bool, bool) {
    let has: Vec<bool> = events
        .iter()
        .filter_map(|e| e.pointer(pointer))
        .map(|o| o.get(field).is_some())
        .collect();
    (has.contains(&true), has.contains(&false))
}

#[test]
fn every_event_the_domain_makes_conforms_to_its_schema() {
    let schemas = EventSchemas::closed(&events_dir());
    let events: Vec<Value> = every_event()
        .iter()
        .map(|e| serde_json::from_slice(&e.to_json()).unwrap())
        .collect();
    for event in &events {
        let violations = schemas.violations(event);
        assert!(violations.is_empty(), "{violations:#?}\n{event}");
    }

    // The samples cover what the schemas must describe.
    let seen = |pointer: &str| -> BTreeSet<String> {
        events
            .iter()
            .filter_map(|e| e.pointer(pointer).and_then(Value::as_str))
            .map(str::to_owned)
            .collect()
    };
    let all = |names: Vec<&str>| names.into_iter().map(str::to_owned).collect();
    assert_eq!(
        seen("/eventType"),
        all(EVENT_TYPES.iter().map(|(t, _)| *t).collect())
    );
    assert_eq!(
        seen("/payload/order/status"),
        all(OrderStatus::ALL.iter().map(|s| s.as_str()).collect())
    );
    let reasons = all(FailureReason::ALL.iter().map(|r| r.as_str()).collect());
    assert_eq!(seen("/payload/reason"), reasons);
    assert_eq!(seen("/payload/order/failureReason"), reasons);
    assert_eq!(
        seen("/payload/previousStatus"),
        all(vec!["PENDING", "PROCESSED"])
    );
    let order = &schemas.common["$defs"]["Order"];
    let required = order["required"].as_array().unwrap();
    for field in order["properties"].as_object().unwrap().keys() {
        let (present, absent) = presence(&events, "/payload/order", field);
        assert!(present, "no sample order has {field}");
        assert_eq!(
            absent,
            !required.contains(&json!(field)),
            "{field}: optional exactly when the schema says so"
        );
    }
    assert!(
        events
            .iter()
            .any(|e| e["payload"]["order"]["items"].as_array().unwrap().len() > 1)
    );
}

#[test]
fn the_schemas_refuse_what_the_code_never_emits() {
    let open = EventSchemas::current();
    let closed = EventSchemas::closed(&events_dir());
    let sample = every_event()
        .into_iter()
        .find(|e| e.event.event_type() == "OrderFailed")
        .unwrap();
    let event: Value = serde_json::from_slice(&sample.to_json()).unwrap();
    assert!(open.violations(&event).is_empty());
    let broken = |edit: &dyn Fn(&mut Value)| {
        let mut e = event.clone();
        edit(&mut e);
        e
    };
    for (what, bad) in [
        (
            "no order",
            broken(&|e| e["payload"] = json!({"reason": "out_of_stock"})),
        ),
        (
            "no reason",
            broken(&|e| e["payload"] = json!({"order": e["payload"]["order"].clone()})),
        ),
        (
            "another version",
            broken(&|e| e["schemaVersion"] = json!(2)),
        ),
        (
            "another type's name",
            broken(&|e| e["eventType"] = json!("OrderShipped")),
        ),
        (
            "a status not in the flow",
            broken(&|e| e["payload"]["order"]["status"] = json!("LOST")),
        ),
        (
            "an unknown reason",
            broken(&|e| e["payload"]["reason"] = json!("gone")),
        ),
        (
            "money as a float",
            broken(&|e| e["payload"]["order"]["total"] = json!(39.98)),
        ),
        (
            "a time without milliseconds",
            broken(&|e| e["occurredAt"] = json!("2026-11-22T10:15:30Z")),
        ),
        (
            "a random event id",
            broken(&|e| e["eventId"] = json!(uuid::Uuid::new_v4().to_string())),
        ),
        (
            "no lines",
            broken(&|e| e["payload"]["order"]["items"] = json!([])),
        ),
    ] {
        assert!(
            !open.violations_as("OrderFailed", &bad).is_empty(),
            "{what} passes"
        );
    }
    // OrderPlaced's totals, required since version 2.
    let placed = every_event()
        .into_iter()
        .find(|e| e.event.event_type() == "OrderPlaced")
        .unwrap();
    let placed: Value = serde_json::from_slice(&placed.to_json()).unwrap();
    assert!(open.violations(&placed).is_empty());
    for (what, edit) in [
        ("no totals", json!(null)),
        ("no units", json!({"lines": 1})),
        ("no lines", json!({"units": 2})),
        ("zero units", json!({"units": 0, "lines": 1})),
        ("units as a float", json!({"units": 2.5, "lines": 1})),
        (
            "more lines than an order has",
            json!({"units": 100, "lines": 100}),
        ),
    ] {
        let mut bad = placed.clone();
        match edit {
            Value::Null => {
                bad["payload"].as_object_mut().unwrap().remove("totals");
            }
            totals => bad["payload"]["totals"] = totals,
        }
        assert!(
            !open.violations(&bad).is_empty(),
            "OrderPlaced: {what} passes"
        );
    }
    // Unknown properties: allowed by the published schemas (consumers ignore them), refused
    // by the closed ones the code is held to.
    for extra in [
        broken(&|e| e["traceId"] = json!("t-1")),
        broken(&|e| e["payload"]["order"]["giftNote"] = json!("for you")),
        broken(&|e| e["payload"]["order"]["items"][0]["sku"] = json!("x")),
    ] {
        assert!(open.violations(&extra).is_empty(), "{extra}");
        assert!(!closed.violations(&extra).is_empty(), "{extra}");
    }
}

/// `schema` without annotations, and open: what two copies of one shape must share.
fn shape(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, v)| {
                    let annotation = ["description", "examples", "title"].contains(&k.as_str());
                    let closed = *k == "additionalProperties" && **v == Value::Bool(false);
                    !annotation && !closed
                })
                .map(|(k, v)| (k.clone(), shape(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        other => other.clone(),
    }
}

#[test]
fn the_order_in_the_events_is_the_order_of_the_http_api() {
    let openapi: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("api/openapi.json")).unwrap(),
    )
    .unwrap();
    let from_openapi = |reference: &str| openapi.pointer(&reference[1..]).cloned();
    let schemas = EventSchemas::current();
    let from_common = |reference: &str| {
        let (_, fragment) = reference.split_once('#')?;
        schemas.common.pointer(fragment).cloned()
    };
    for name in ["Order", "LineItem", "OrderStatus", "FailureReason"] {
        let http = inline(&openapi["components"]["schemas"][name], &from_openapi);
        let events = inline(&schemas.common["$defs"][name], &from_common);
        assert_eq!(
            shape(&events),
            shape(&http),
            "{name}: api/events/common.schema.json vs components/schemas/{name} of api/openapi.json"
        );
    }
}

#[test]
fn the_ids_in_the_activity_events_are_those_of_the_http_api() {
    let openapi: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("api/openapi.json")).unwrap(),
    )
    .unwrap();
    let from_openapi = |reference: &str| openapi.pointer(&reference[1..]).cloned();
    let schemas = EventSchemas::current();
    let from_common = |reference: &str| {
        let (_, fragment) = reference.split_once('#')?;
        schemas.common.pointer(fragment).cloned()
    };
    for name in [
        "SessionId",
        "ActivityEventId",
        "CustomerId",
        "ProductId",
        "Quantity",
    ] {
        let http = inline(&openapi["components"]["schemas"][name], &from_openapi);
        let events = inline(&schemas.common["$defs"][name], &from_common);
        assert_eq!(
            shape(&events),
            shape(&http),
            "{name}: api/events/common.schema.json vs components/schemas/{name} of api/openapi.json"
        );
    }
}

/// Every activity envelope place-order makes conforms to the closed schema of its type, and
/// reads back (`ActivityEnvelope::decode`) as the event written.
#[test]
fn every_activity_event_the_domain_makes_conforms_to_its_schema() {
    let schemas = EventSchemas::closed(&events_dir());
    let envelopes = every_activity_event();
    let events: Vec<Value> = envelopes
        .iter()
        .map(|e| serde_json::from_slice(&e.to_json()).unwrap())
        .collect();
    for (envelope, event) in envelopes.iter().zip(&events) {
        let violations = schemas.violations(event);
        assert!(violations.is_empty(), "{violations:#?}\n{event}");
        assert_eq!(
            ActivityEnvelope::decode(&envelope.to_json()),
            Ok(Some(envelope.clone())),
            "{event}"
        );
    }
    let types: BTreeSet<&str> = events
        .iter()
        .filter_map(|e| e["eventType"].as_str())
        .collect();
    assert_eq!(types, ACTIVITY_EVENT_TYPES.into_iter().collect());
    // Optional exactly where the schema says so: customerId, in every type.
    for event_type in ACTIVITY_EVENT_TYPES {
        let schema = &schemas.schemas[event_type];
        let of_type: Vec<Value> = events
            .iter()
            .filter(|e| e["eventType"] == event_type)
            .cloned()
            .collect();
        for (pointer, object) in [
            ("", &schema["properties"]),
            ("/payload", &schema["properties"]["payload"]["properties"]),
        ] {
            let required = if pointer.is_empty() {
                &schema["required"]
            } else {
                &schema["properties"]["payload"]["required"]
            };
            for field in object.as_object().unwrap().keys() {
                let (present, absent) = presence(&of_type, pointer, field);
                assert!(present, "{event_type}: no sample has {pointer}/{field}");
                assert_eq!(
                    absent,
                    !required.as_array().unwrap().contains(&json!(field)),
                    "{event_type}: {pointer}/{field} optional exactly when the schema says so"
                );
            }
        }
    }
    assert!(
        events
            .iter()
            .any(|e| e["payload"]["cart"].as_array().is_some_and(Vec::is_empty)),
        "a checkout without a cart"
    );
    assert!(
        events.iter().any(|e| e["payload"]["cart"]
            .as_array()
            .is_some_and(|c| c.len() == orders_core::activity::parse::MAX_CART_PRODUCTS)),
        "a checkout with a full cart"
    );
}

#[test]
fn the_activity_schemas_refuse_what_the_code_never_emits() {
    let open = EventSchemas::current();
    let closed = EventSchemas::closed(&events_dir());
    let sample = |event_type: &str| -> Value {
        let envelope = every_activity_event()
            .into_iter()
            .find(|e| e.event.kind.event_type() == event_type)
            .unwrap();
        serde_json::from_slice(&envelope.to_json()).unwrap()
    };
    let added = sample("AddedToCart");
    let checkout = sample("CheckoutStarted");
    assert!(open.violations(&added).is_empty());
    let broken = |event: &Value, edit: &dyn Fn(&mut Value)| {
        let mut e = event.clone();
        edit(&mut e);
        e
    };
    for (what, bad) in [
        (
            "another version",
            broken(&added, &|e| e["schemaVersion"] = json!(2)),
        ),
        (
            "no receivedAt",
            broken(&added, &|e| {
                e.as_object_mut().unwrap().remove("receivedAt");
            }),
        ),
        (
            "no session",
            broken(&added, &|e| {
                e.as_object_mut().unwrap().remove("sessionId");
            }),
        ),
        (
            "a null customer",
            broken(&added, &|e| e["customerId"] = json!(null)),
        ),
        (
            "an id with a slash",
            broken(&added, &|e| e["sessionId"] = json!("s/1")),
        ),
        (
            "an id too long",
            broken(&added, &|e| e["eventId"] = json!("e".repeat(65))),
        ),
        (
            "a time without milliseconds",
            broken(&added, &|e| e["occurredAt"] = json!("2026-11-22T10:30:00Z")),
        ),
        (
            "a time with an offset",
            broken(&added, &|e| {
                e["occurredAt"] = json!("2026-11-22T11:30:00.000+01:00")
            }),
        ),
        (
            "no quantity",
            broken(&added, &|e| {
                e["payload"].as_object_mut().unwrap().remove("quantity");
            }),
        ),
        (
            "zero units",
            broken(&added, &|e| e["payload"]["quantity"] = json!(0)),
        ),
        (
            "too many units",
            broken(&added, &|e| e["payload"]["quantity"] = json!(10_001)),
        ),
        (
            "units as a float",
            broken(&added, &|e| e["payload"]["quantity"] = json!(1.5)),
        ),
        (
            "no product",
            broken(&added, &|e| {
                e["payload"].as_object_mut().unwrap().remove("productId");
            }),
        ),
        (
            "another type's name",
            broken(&added, &|e| e["eventType"] = json!("RemovedFromCart")),
        ),
    ] {
        assert!(
            !open.violations_as("AddedToCart", &bad).is_empty(),
            "AddedToCart: {what} passes"
        );
    }
    for (what, bad) in [
        (
            "no cart",
            broken(&checkout, &|e| {
                e["payload"].as_object_mut().unwrap().remove("cart");
            }),
        ),
        (
            "a null cart",
            broken(&checkout, &|e| e["payload"]["cart"] = json!(null)),
        ),
        (
            "a product twice",
            broken(&checkout, &|e| {
                e["payload"]["cart"] = json!(["sku-1", "sku-1"])
            }),
        ),
        (
            "more products than an order has lines",
            broken(&checkout, &|e| {
                e["payload"]["cart"] =
                    json!((0..100).map(|i| format!("sku-{i}")).collect::<Vec<_>>())
            }),
        ),
    ] {
        assert!(
            !open.violations_as("CheckoutStarted", &bad).is_empty(),
            "CheckoutStarted: {what} passes"
        );
    }
    // Unknown properties: allowed by the published schemas (consumers ignore them), refused
    // by the closed ones the code is held to.
    for extra in [
        broken(&added, &|e| e["traceId"] = json!("t-1")),
        broken(&added, &|e| e["payload"]["cart"] = json!([])),
        broken(&checkout, &|e| e["payload"]["productId"] = json!("sku-1")),
    ] {
        assert!(open.violations(&extra).is_empty(), "{extra}");
        assert!(!closed.violations(&extra).is_empty(), "{extra}");
    }
}

/// `api/asyncapi.json` carries the activity events on their own channel, each message's
/// payload its schema file, sent by place-order and received by aggregate-activity.
#[test]
fn the_activity_channel_carries_every_activity_event_type_with_its_schema() {
    let asyncapi: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("api/asyncapi.json")).unwrap(),
    )
    .unwrap();
    let channel = &asyncapi["channels"]["activity"];
    let types: BTreeSet<&str> = channel["messages"]
        .as_object()
        .expect("channels.activity.messages")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(types, ACTIVITY_EVENT_TYPES.into_iter().collect());
    let listed: BTreeSet<String> = ACTIVITY_EVENT_TYPES
        .iter()
        .map(|t| format!("#/channels/activity/messages/{t}"))
        .collect();
    for (operation, action) in [("publishActivity", "send"), ("consumeActivity", "receive")] {
        let operation = &asyncapi["operations"][operation];
        assert_eq!(operation["action"], action);
        assert_eq!(operation["channel"]["$ref"], "#/channels/activity");
        let messages: BTreeSet<String> = operation["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["$ref"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(messages, listed);
    }
    for event_type in ACTIVITY_EVENT_TYPES {
        assert_eq!(
            channel["messages"][event_type]["$ref"],
            format!("#/components/messages/{event_type}")
        );
        assert_eq!(
            asyncapi["components"]["messages"][event_type]["payload"]["$ref"],
            format!("events/{event_type}.schema.json")
        );
        assert!(
            asyncapi["channels"]["orderEvents"]["messages"]
                .get(event_type)
                .is_none(),
            "{event_type} is not an order event"
        );
    }
}

/// The released contract of version 1, closed like the current one in the conformance test.
fn released_v1() -> EventSchemas {
    EventSchemas::closed(&events_dir().join("released/1"))
}

#[test]
fn the_recorded_v1_events_are_what_the_released_contract_describes_and_what_v1_wrote() {
    let (v1, current) = (released_v1(), EventSchemas::current());
    for (name, recorded) in RECORDED_V1_ORDER_PLACED {
        let event: Value = serde_json::from_str(recorded).unwrap();
        let violations = v1.violations(&event);
        assert!(violations.is_empty(), "{name}: {violations:#?}");
        assert!(
            !current.violations(&event).is_empty(),
            "{name}: a version-1 event is not a current one"
        );
        // `as_written_by_v1` writes what the version-1 relay wrote, byte for byte, for the
        // same stored order version.
        let order: Order = serde_json::from_value(event["payload"]["order"].clone()).unwrap();
        let now = EventEnvelope::new(OrderEvent::for_current_state(&order));
        assert_eq!(
            String::from_utf8(as_written_by_v1(&now)).unwrap(),
            recorded,
            "{name}"
        );
    }
}

/// Every sample as a version-1 producer wrote it conforms to the released contract and
/// decodes to the event this build writes for the same change: consumers read both alike.
#[test]
fn every_event_as_the_v1_producer_wrote_it_reads_as_the_current_event() {
    let v1 = released_v1();
    let mut placed = 0;
    for event in every_event() {
        let written = as_written_by_v1(&event);
        let json: Value = serde_json::from_slice(&written).unwrap();
        let violations = v1.violations(&json);
        assert!(violations.is_empty(), "{violations:#?}\n{json}");
        assert_eq!(
            EventEnvelope::decode(&written),
            Ok(Decoded::Event(Box::new(event.clone()))),
            "{json}"
        );
        placed += usize::from(json["schemaVersion"] == 1 && json["eventType"] == "OrderPlaced");
    }
    assert!(placed > 0, "the samples hold OrderPlaced events");
}
