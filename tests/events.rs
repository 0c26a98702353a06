//! The event contracts (`api/events`) without a running stack: one schema per event type the
//! code knows and none other, every event the domain makes conforming to its schema (closed:
//! nothing emitted goes undocumented), the order in them the HTTP API's order, the events
//! older producers wrote read as the current ones — and, in `events/compatibility.rs`, no
//! breaking change since the released contract (`api/events/released/`). `docs/events.md`
//! explains the rules.

#[path = "events/compat.rs"]
mod compat;
#[path = "events/compatibility.rs"]
mod compatibility;

use orders_core::event::{EVENT_TYPES, current_version};
use orders_core::{Decoded, EventEnvelope, FailureReason, Order, OrderEvent, OrderStatus};
use orders_tests::event_contract::{EventSchemas, inline};
use orders_tests::event_samples::{RECORDED_V1_ORDER_PLACED, as_written_by_v1, every_event};
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
    let known: BTreeSet<&str> = EVENT_TYPES.iter().map(|(t, _)| *t).collect();
    assert_eq!(files, known, "api/events/*.schema.json vs EVENT_TYPES");
    for (event_type, schema) in &schemas.schemas {
        assert_eq!(schema["properties"]["eventType"]["const"], *event_type);
        assert_eq!(
            schemas.version(event_type),
            current_version(event_type).map(u64::from),
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
