//! Whether an event type's schema may replace its released version without breaking a
//! consumer: one written against the released contract must read every new event, and the
//! new code must read every event already on the stream or in a dead-letter queue.
//!
//! Compatible: an optional property added, a constraint loosened (a higher maximum, a pattern
//! dropped), an annotation changed. Breaking: a property removed or renamed, a property newly
//! required or no longer required, a type narrowed (one removed from a union, `number` → `integer`), a new
//! constraint or a tighter one, an enum value removed — and also an enum value or a type
//! added, because consumers decode into closed types (`OrderStatus`, `FailureReason`, `u64`):
//! to them an unknown value is a malformed event, a dead letter. A change the check cannot
//! prove compatible (`oneOf` edited, say) is breaking too.
//!
//! A breaking change is allowed only as a new version: the schema's `schemaVersion` const
//! bumped, with an upcaster in `orders_core::event::UPCASTERS` for every step from the
//! released version, so consumers read old events as new. The new version's structure is
//! then the upcaster's business, not this check's.

use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Keywords that change no instance's validity.
const ANNOTATIONS: [&str; 10] = [
    "$schema",
    "$id",
    "$comment",
    "title",
    "description",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// Lower bounds: tighter when higher.
const LOWER: [&str; 5] = [
    "minimum",
    "exclusiveMinimum",
    "minLength",
    "minItems",
    "minProperties",
];

/// Upper bounds: tighter when lower.
const UPPER: [&str; 5] = [
    "maximum",
    "exclusiveMaximum",
    "maxLength",
    "maxItems",
    "maxProperties",
];

/// Every reason `new` may not replace `old` (both an event type's schema with their `$ref`s
/// inlined, see `EventSchemas::resolved`); empty when it may. `has_upcaster(type, from)`:
/// whether the code reads `from` as `from + 1`.
pub fn breaking_changes(
    event_type: &str,
    old: &Value,
    new: &Value,
    has_upcaster: &dyn Fn(&str, u32) -> bool,
) -> Vec<String> {
    let version = |schema: &Value| {
        schema["properties"]["schemaVersion"]["const"]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
    };
    let (Some(released), Some(current)) = (version(old), version(new)) else {
        return vec![format!(
            "{event_type}: schemaVersion is not a const integer"
        )];
    };
    if current < released {
        return vec![format!(
            "{event_type}: schemaVersion went down from {released} to {current}"
        )];
    }
    if current > released {
        return (released..current)
            .filter(|from| !has_upcaster(event_type, *from))
            .map(|from| {
                format!(
                    "{event_type}: schemaVersion is {current} but no upcaster reads version {from} \
                     (orders_core::event::UPCASTERS)"
                )
            })
            .collect();
    }
    let mut out = Vec::new();
    compare(event_type, old, new, &mut out);
    out
}

/// [`breaking_changes`] for every released type; a type added since is compatible (consumers
/// skip types they do not know), a type removed is not.
pub fn breaking_changes_of_all(
    released: &BTreeMap<String, Value>,
    current: &BTreeMap<String, Value>,
    has_upcaster: &dyn Fn(&str, u32) -> bool,
) -> Vec<String> {
    released
        .iter()
        .flat_map(|(event_type, old)| match current.get(event_type) {
            Some(new) => breaking_changes(event_type, old, new, has_upcaster),
            None => vec![format!("{event_type}: the event type was removed")],
        })
        .collect()
}

fn compare(at: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else {
        if old != new {
            out.push(format!("{at}: the schema changed from {old} to {new}"));
        }
        return;
    };
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut breaking = |what: String| out.push(format!("{at}: {what}"));
    for key in keys {
        let (was, is) = (old.get(key), new.get(key));
        if was == is || ANNOTATIONS.contains(&key.as_str()) {
            continue;
        }
        match key.as_str() {
            "type" | "enum" | "const" => {} // compared together, below
            "properties" => {}              // below, with `required`
            "required" => {
                let (before, after) = (names(was), names(is));
                for name in after.difference(&before) {
                    breaking(format!("{name} is newly required"));
                }
                for name in before.difference(&after) {
                    breaking(format!(
                        "{name} is no longer required: consumers that read it break"
                    ));
                }
            }
            "items" | "additionalProperties" if was.is_some_and(Value::is_object) => match is {
                Some(is) if is.is_object() => {}
                Some(Value::Bool(true)) | None => {}
                Some(is) => breaking(format!("{key} became {is}")),
            },
            k if LOWER.contains(&k) => {
                match (was.and_then(Value::as_f64), is.and_then(Value::as_f64)) {
                    (_, None) => {}
                    (None, Some(is)) => breaking(format!("new constraint {k}: {is}")),
                    (Some(was), Some(is)) if is > was => {
                        breaking(format!("{k} narrowed from {was} to {is}"))
                    }
                    _ => {}
                }
            }
            k if UPPER.contains(&k) => {
                match (was.and_then(Value::as_f64), is.and_then(Value::as_f64)) {
                    (_, None) => {}
                    (None, Some(is)) => breaking(format!("new constraint {k}: {is}")),
                    (Some(was), Some(is)) if is < was => {
                        breaking(format!("{k} narrowed from {was} to {is}"))
                    }
                    _ => {}
                }
            }
            // Dropping these loosens; adding or changing one narrows what is valid, as far
            // as this check can tell.
            "pattern"
            | "format"
            | "multipleOf"
            | "uniqueItems"
            | "additionalProperties"
            | "items" => match is {
                None | Some(Value::Bool(true)) => {}
                Some(Value::Bool(false)) if key == "uniqueItems" => {}
                Some(is) => breaking(match was {
                    None => format!("new constraint {key}: {is}"),
                    Some(was) => format!("{key} changed from {was} to {is}"),
                }),
            },
            other => breaking(format!(
                "{other} changed from {} to {}: cannot tell whether that is compatible",
                show(was),
                show(is)
            )),
        }
    }
    compare_values(at, old, new, out);
    let (before, after) = (object(old.get("properties")), object(new.get("properties")));
    for (name, was) in &before {
        match after.get(name) {
            Some(is) => compare(&format!("{at}.{name}"), was, is, out),
            None => out.push(format!("{at}: property {name} was removed (or renamed)")),
        }
    }
    for key in ["items", "additionalProperties"] {
        if let (Some(was), Some(is)) = (old.get(key), new.get(key))
            && was.is_object()
            && is.is_object()
        {
            compare(&format!("{at}.{key}"), was, is, out);
        }
    }
}

/// The values a schema allows by `type`, `enum` and `const`: each removed narrows (new code
/// no longer reads old events), each added widens (old consumers cannot decode it).
fn compare_values(
    at: &str,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    out: &mut Vec<String>,
) {
    match (types(old), types(new)) {
        (Some(was), Some(is)) => {
            for t in was.iter().filter(|t| !accepts(&is, t)) {
                out.push(format!("{at}: type {t} is no longer allowed (narrowed)"));
            }
            for t in is.iter().filter(|t| !accepts(&was, t)) {
                out.push(format!(
                    "{at}: type {t} was added: consumers decode into closed types"
                ));
            }
        }
        (None, Some(is)) => out.push(format!("{at}: new constraint type: {is:?}")),
        (Some(was), None) => out.push(format!(
            "{at}: any type is allowed where only {was:?} was: consumers decode into closed types"
        )),
        (None, None) => {}
    }
    match (values(old), values(new)) {
        (Some(was), Some(is)) => {
            for v in was.iter().filter(|v| !is.contains(v)) {
                out.push(format!("{at}: value {v} was removed"));
            }
            for v in is.iter().filter(|v| !was.contains(v)) {
                out.push(format!(
                    "{at}: value {v} was added: consumers decode into closed types"
                ));
            }
        }
        (None, Some(is)) => out.push(format!("{at}: new constraint: only {is:?} allowed")),
        (Some(was), None) => out.push(format!(
            "{at}: any value is allowed where only {was:?} were: consumers decode into closed types"
        )),
        (None, None) => {}
    }
}

/// Whether a schema of `types` accepts every value of type `t`: an integer is a number too.
fn accepts(types: &BTreeSet<String>, t: &str) -> bool {
    types.contains(t) || (t == "integer" && types.contains("number"))
}

fn types(schema: &Map<String, Value>) -> Option<BTreeSet<String>> {
    match schema.get("type")? {
        Value::String(t) => Some(BTreeSet::from([t.clone()])),
        Value::Array(ts) => Some(
            ts.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect(),
        ),
        _ => None,
    }
}

/// The values `enum` or `const` allow (both: those in both).
fn values(schema: &Map<String, Value>) -> Option<Vec<Value>> {
    let listed = schema.get("enum").and_then(Value::as_array).cloned();
    match (listed, schema.get("const")) {
        (None, None) => None,
        (Some(listed), None) => Some(listed),
        (None, Some(only)) => Some(vec![only.clone()]),
        (Some(listed), Some(only)) => Some(listed.into_iter().filter(|v| v == only).collect()),
    }
}

fn names(list: Option<&Value>) -> BTreeSet<String> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn object(value: Option<&Value>) -> Map<String, Value> {
    value
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn show(value: Option<&Value>) -> String {
    value.map_or_else(|| "nothing".to_owned(), Value::to_string)
}
