//! `GET /asyncapi.json`: the AsyncAPI 3.0 document of the live socket and the event streams,
//! as one self-contained file. `api/asyncapi.json` refers to the event contracts in
//! `api/events/` by relative `$ref`s (one source for each schema); here those schemas are
//! inlined under `components.schemas` and every `$ref` made local, once per cold start.

use serde_json::{Map, Value};
use std::sync::LazyLock;

const DOCUMENT: &str = include_str!("../../../api/asyncapi.json");

/// Every file of `api/events/` (a test keeps the list complete): `(file name, contents)`.
const EVENT_SCHEMAS: [(&str, &str); 12] = [
    (
        "common.schema.json",
        include_str!("../../../api/events/common.schema.json"),
    ),
    (
        "OrderPlaced.schema.json",
        include_str!("../../../api/events/OrderPlaced.schema.json"),
    ),
    (
        "OrderProcessed.schema.json",
        include_str!("../../../api/events/OrderProcessed.schema.json"),
    ),
    (
        "OrderFailed.schema.json",
        include_str!("../../../api/events/OrderFailed.schema.json"),
    ),
    (
        "OrderRetried.schema.json",
        include_str!("../../../api/events/OrderRetried.schema.json"),
    ),
    (
        "OrderCancelled.schema.json",
        include_str!("../../../api/events/OrderCancelled.schema.json"),
    ),
    (
        "OrderShipped.schema.json",
        include_str!("../../../api/events/OrderShipped.schema.json"),
    ),
    (
        "OrderDelivered.schema.json",
        include_str!("../../../api/events/OrderDelivered.schema.json"),
    ),
    (
        "ProductViewed.schema.json",
        include_str!("../../../api/events/ProductViewed.schema.json"),
    ),
    (
        "AddedToCart.schema.json",
        include_str!("../../../api/events/AddedToCart.schema.json"),
    ),
    (
        "RemovedFromCart.schema.json",
        include_str!("../../../api/events/RemovedFromCart.schema.json"),
    ),
    (
        "CheckoutStarted.schema.json",
        include_str!("../../../api/events/CheckoutStarted.schema.json"),
    ),
];

/// The served document.
pub fn document() -> &'static str {
    static BUNDLED: LazyLock<String> = LazyLock::new(|| {
        let files = EVENT_SCHEMAS.map(|(name, text)| {
            let schema = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("api/events/{name} is not JSON: {e}"));
            (name, schema)
        });
        let document = serde_json::from_str(DOCUMENT).expect("api/asyncapi.json is JSON");
        serde_json::to_string(&bundle(document, &files)).expect("JSON serialises")
    });
    &BUNDLED
}

/// The name a schema file's schema takes in `components.schemas`: `OrderPlaced`.
fn component(file: &str) -> &str {
    file.rsplit('/')
        .next()
        .unwrap_or(file)
        .trim_end_matches(".schema.json")
}

/// `document` with `files`' schemas under `components.schemas` — each event schema by its
/// type, each definition of a file's `$defs` by its name — and every `$ref` to them local.
pub fn bundle(mut document: Value, files: &[(&str, Value)]) -> Value {
    let mut schemas = Map::new();
    for (name, schema) in files {
        let mut schema = schema.clone();
        let map = schema.as_object_mut().expect("a schema is an object");
        map.remove("$schema");
        map.remove("$id");
        if let Some(Value::Object(defs)) = map.remove("$defs") {
            schemas.extend(defs);
        }
        // A file of definitions only (common.schema.json) adds no schema of its own.
        if map
            .keys()
            .any(|k| !["title", "description"].contains(&k.as_str()))
        {
            schemas.insert(component(name).to_owned(), schema);
        }
    }
    let components = document["components"]
        .as_object_mut()
        .expect("components is an object");
    let target = components
        .entry("schemas")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .expect("components.schemas is an object");
    for (name, schema) in schemas {
        assert!(
            target.insert(name.clone(), schema).is_none(),
            "components.schemas.{name} is defined twice"
        );
    }
    localise(&mut document);
    document
}

/// Every `$ref` to a file (`events/OrderPlaced.schema.json`, `common.schema.json#/$defs/Order`)
/// or to a `$defs` entry, pointed at its place in `components.schemas`.
fn localise(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match (key.as_str(), child) {
                    ("$ref", Value::String(reference)) => {
                        let (file, fragment) = reference
                            .split_once('#')
                            .unwrap_or((reference.as_str(), ""));
                        let name = match fragment.strip_prefix("/$defs/") {
                            Some(definition) => definition,
                            None if file.is_empty() => continue,
                            None => component(file),
                        };
                        *reference = format!("#/components/schemas/{name}");
                    }
                    (_, child) => localise(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(localise),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn served() -> Value {
        serde_json::from_str(document()).unwrap()
    }

    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_file_of_api_events_is_bundled() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../api/events");
        let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".schema.json"))
            .collect();
        let bundled: BTreeSet<String> =
            EVENT_SCHEMAS.iter().map(|(n, _)| (*n).to_owned()).collect();
        assert_eq!(bundled, on_disk, "EVENT_SCHEMAS vs api/events");
        for (name, text) in EVENT_SCHEMAS {
            let on_disk = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
            assert_eq!(text, on_disk, "{name}");
        }
    }

    #[test]
    fn the_served_document_is_self_contained() {
        let doc = served();
        assert_eq!(doc["asyncapi"], "3.0.0");
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(all.len() > 40);
        for reference in all {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{reference} is not local"));
            assert!(
                doc.pointer(pointer).is_some(),
                "{reference} does not resolve"
            );
        }
        let file: Value = serde_json::from_str(DOCUMENT).unwrap();
        for part in ["info", "servers", "operations"] {
            assert_eq!(doc[part], file[part], "{part} is served as written");
        }
        assert_eq!(doc["channels"]["live"], file["channels"]["live"]);
    }

    #[test]
    fn the_event_stream_carries_every_event_type_with_its_schema() {
        let doc = served();
        let messages = doc["channels"]["orderEvents"]["messages"]
            .as_object()
            .unwrap();
        let types: BTreeSet<&str> = messages.keys().map(String::as_str).collect();
        let known: BTreeSet<&str> = orders_core::event::EVENT_TYPES
            .iter()
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(types, known);
        let operation: BTreeSet<String> = doc["operations"]["consumeOrderEvents"]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["$ref"].as_str().unwrap().to_owned())
            .collect();
        for event_type in known {
            assert!(operation.contains(&format!("#/channels/orderEvents/messages/{event_type}")));
            let message = &doc["components"]["messages"][event_type];
            assert_eq!(
                message["payload"]["$ref"],
                format!("#/components/schemas/{event_type}")
            );
        }
    }

    #[test]
    fn the_activity_stream_carries_every_activity_event_type_with_its_schema() {
        let doc = served();
        let known: BTreeSet<&str> = orders_core::activity::ACTIVITY_EVENT_TYPES
            .into_iter()
            .collect();
        let types: BTreeSet<&str> = doc["channels"]["activity"]["messages"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(types, known);
        for operation in ["publishActivity", "consumeActivity"] {
            let listed: BTreeSet<&str> = doc["operations"][operation]["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["$ref"].as_str().unwrap())
                .collect();
            let expected: BTreeSet<String> = known
                .iter()
                .map(|t| format!("#/channels/activity/messages/{t}"))
                .collect();
            assert_eq!(
                listed,
                expected.iter().map(String::as_str).collect(),
                "{operation}"
            );
        }
        let base = "urn:orders:asyncapi";
        let registry = jsonschema::Registry::new()
            .draft(jsonschema::Draft::Draft202012)
            .add(base, doc.clone())
            .unwrap()
            .prepare()
            .unwrap();
        for envelope in orders_tests::event_samples::every_activity_event() {
            let event_type = envelope.event.kind.event_type();
            let message = &doc["components"]["messages"][event_type];
            assert_eq!(
                message["payload"]["$ref"],
                format!("#/components/schemas/{event_type}")
            );
            let v = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .with_registry(&registry)
                .should_validate_formats(true)
                .build(&serde_json::json!({"$ref": format!("{base}#/components/schemas/{event_type}")}))
                .unwrap();
            let json: Value = serde_json::from_slice(&envelope.to_json()).unwrap();
            assert!(v.is_valid(&json), "{json}");
            let mut broken = json.clone();
            broken["schemaVersion"] = 2.into();
            assert!(!v.is_valid(&broken), "{broken}");
        }
    }

    /// The bundled payload schemas accept what the domain emits and refuse what it does not,
    /// as the files do.
    #[test]
    fn the_bundled_schemas_validate_events_as_the_files_do() {
        let doc = served();
        let base = "urn:orders:asyncapi";
        let registry = jsonschema::Registry::new()
            .draft(jsonschema::Draft::Draft202012)
            .add(base, doc.clone())
            .unwrap()
            .prepare()
            .unwrap();
        let validator = |event_type: &str| {
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .with_registry(&registry)
                .should_validate_formats(true)
                .build(&serde_json::json!({"$ref": format!("{base}#/components/schemas/{event_type}")}))
                .unwrap()
        };
        for event in orders_tests::event_samples::every_event() {
            let json: Value = serde_json::from_slice(&event.to_json()).unwrap();
            let v = validator(event.event.event_type());
            assert!(v.is_valid(&json), "{json}");
            let mut broken = json.clone();
            broken["payload"]["order"]["status"] = "LOST".into();
            assert!(!v.is_valid(&broken));
            // OrderPlaced version 2: its totals are required, and version 1 is not it.
            if let Some(payload) = json["payload"].as_object()
                && payload.contains_key("totals")
            {
                let mut v1 = json.clone();
                v1["payload"].as_object_mut().unwrap().remove("totals");
                assert!(!v.is_valid(&v1), "without totals");
                v1["schemaVersion"] = 1.into();
                assert!(!v.is_valid(&v1), "version 1");
            }
        }
    }
}
