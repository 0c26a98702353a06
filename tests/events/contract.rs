//! The event contracts of `api/events` as something tests can hold events to: one JSON Schema
//! 2020-12 per event type (`<eventType>.schema.json`), all sharing `common.schema.json`,
//! compiled with their relative `$ref`s resolved. A released snapshot
//! (`api/events/released/<version>/`) loads the same way. Shared by the contract tests
//! (`tests/events.rs`) and the end-to-end tests that read events off the stream.

use jsonschema::{Draft, Registry, Validator};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file every event schema refers to.
pub const COMMON: &str = "common.schema.json";

/// The schemas of one directory, by event type.
pub struct EventSchemas {
    pub dir: PathBuf,
    pub common: Value,
    pub schemas: BTreeMap<String, Value>,
    validators: BTreeMap<String, Validator>,
}

impl EventSchemas {
    /// The current contract, `api/events`.
    pub fn current() -> Self {
        Self::load(&crate::repo_root().join("api/events"))
    }

    /// Every `*.schema.json` of `dir` but the common one, compiled as published.
    pub fn load(dir: &Path) -> Self {
        Self::compile(dir, |_| {})
    }

    /// The same schemas with every object closed (`additionalProperties: false` wherever
    /// properties are listed): the published ones are open, since consumers ignore what they
    /// do not know, but what the code emits must be documented in full.
    pub fn closed(dir: &Path) -> Self {
        Self::compile(dir, close)
    }

    fn compile(dir: &Path, edit: fn(&mut Value)) -> Self {
        let read = |name: &str| -> Value {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        let mut common = read(COMMON);
        edit(&mut common);
        let mut schemas = BTreeMap::new();
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let name = entry.expect("a directory entry").file_name();
            let name = name.to_string_lossy();
            if let Some(event_type) = name.strip_suffix(".schema.json")
                && name != COMMON
            {
                let mut schema = read(&name);
                edit(&mut schema);
                schemas.insert(event_type.to_owned(), schema);
            }
        }
        let mut registry = Registry::new()
            .draft(Draft::Draft202012)
            .add(id(&common), common.clone())
            .expect("common.schema.json has a valid $id");
        for schema in schemas.values() {
            registry = registry
                .add(id(schema), schema.clone())
                .expect("a valid $id");
        }
        let registry = registry.prepare().expect("the schemas index");
        let validators = schemas
            .iter()
            .map(|(event_type, schema)| {
                let validator = jsonschema::options()
                    .with_draft(Draft::Draft202012)
                    .with_registry(&registry)
                    .should_validate_formats(true)
                    .build(schema)
                    .unwrap_or_else(|e| panic!("{event_type}.schema.json does not compile: {e}"));
                (event_type.clone(), validator)
            })
            .collect();
        Self {
            dir: dir.to_owned(),
            common,
            schemas,
            validators,
        }
    }

    /// Every way `event` breaks the schema its `eventType` names; empty when it conforms.
    pub fn violations(&self, event: &Value) -> Vec<String> {
        match event["eventType"].as_str() {
            Some(event_type) => self.violations_as(event_type, event),
            None => vec!["eventType is not a string".into()],
        }
    }

    /// Every way `event` breaks the schema of `event_type`.
    pub fn violations_as(&self, event_type: &str, event: &Value) -> Vec<String> {
        let Some(validator) = self.validators.get(event_type) else {
            return vec![format!(
                "{event_type} has no schema in {}",
                self.dir.display()
            )];
        };
        validator
            .iter_errors(event)
            .map(|e| format!("{event_type} at {:?}: {e}", e.instance_path().as_str()))
            .collect()
    }

    /// The schema of `event_type` with every `$ref` replaced by what it names: one tree to
    /// compare with another version's.
    pub fn resolved(&self, event_type: &str) -> Value {
        let schema = &self.schemas[event_type];
        inline(schema, &|reference| {
            let (_, fragment) = reference.split_once('#')?;
            self.common.pointer(fragment).cloned()
        })
    }

    /// The schema version `event_type`'s schema fixes (`schemaVersion`'s `const`).
    pub fn version(&self, event_type: &str) -> Option<u64> {
        schema_version(&self.schemas[event_type])
    }
}

/// The `schemaVersion` const of an event schema.
pub fn schema_version(schema: &Value) -> Option<u64> {
    schema["properties"]["schemaVersion"]["const"].as_u64()
}

fn id(schema: &Value) -> String {
    schema["$id"]
        .as_str()
        .expect("every event schema has an $id")
        .to_owned()
}

/// `schema` with each `$ref` replaced by `lookup(reference)`, recursively; keywords next to
/// a `$ref` (a description) are kept over the target's.
pub fn inline(schema: &Value, lookup: &dyn Fn(&str) -> Option<Value>) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out = match map.get("$ref").and_then(Value::as_str) {
                Some(reference) => {
                    let target =
                        lookup(reference).unwrap_or_else(|| panic!("{reference} does not resolve"));
                    match inline(&target, lookup) {
                        Value::Object(target) => target,
                        other => panic!("{reference} names {other}, not a schema"),
                    }
                }
                None => serde_json::Map::new(),
            };
            for (key, value) in map {
                if key != "$ref" {
                    out.insert(key.clone(), inline(value, lookup));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| inline(v, lookup)).collect()),
        other => other.clone(),
    }
}

/// Adds `additionalProperties: false` to every schema in `schema` that lists properties and
/// says nothing about others.
pub fn close(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    if map.get("properties").is_some_and(Value::is_object) {
        map.entry("additionalProperties")
            .or_insert(Value::Bool(false));
    }
    for (key, child) in map.iter_mut() {
        match key.as_str() {
            "properties" | "$defs" => child
                .as_object_mut()
                .into_iter()
                .flat_map(|m| m.values_mut())
                .for_each(close),
            "items" | "additionalProperties" => close(child),
            "allOf" | "anyOf" | "oneOf" => {
                child.as_array_mut().into_iter().flatten().for_each(close)
            }
            _ => {}
        }
    }
}
