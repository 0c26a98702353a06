//! The current contract against the released one, and the check itself: it refuses each
//! kind of breaking change (made to an in-memory copy of a schema) and lets compatible ones
//! through.

use crate::compat::{breaking_changes, breaking_changes_of_all};
use orders_core::event::{EVENT_TYPES, upcaster};
use orders_tests::event_contract::EventSchemas;
use orders_tests::repo_root;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The released snapshots, oldest first: `api/events/released/<version>/`.
fn snapshots() -> Vec<(u32, EventSchemas)> {
    let root = repo_root().join("api/events/released");
    let mut out: Vec<(u32, EventSchemas)> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let version = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{} is not named by a version", path.display()));
            (version, EventSchemas::load(&path))
        })
        .collect();
    out.sort_by_key(|(version, _)| *version);
    out
}

/// Each released type's newest released schema, resolved.
fn released() -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (_, snapshot) in snapshots() {
        for event_type in snapshot.schemas.keys() {
            out.insert(event_type.clone(), snapshot.resolved(event_type));
        }
    }
    out
}

fn current() -> BTreeMap<String, Value> {
    let schemas = EventSchemas::current();
    schemas
        .schemas
        .keys()
        .map(|t| (t.clone(), schemas.resolved(t)))
        .collect()
}

fn in_code(event_type: &str, from: u32) -> bool {
    upcaster(event_type, from).is_some()
}

#[test]
fn the_current_contract_is_compatible_with_the_released_one() {
    let breaking = breaking_changes_of_all(&released(), &current(), &in_code);
    assert!(
        breaking.is_empty(),
        "breaking changes since api/events/released (docs/events.md: bump schemaVersion and \
         add an upcaster, or make the change compatible):\n{}",
        breaking.join("\n")
    );
}

#[test]
fn each_snapshot_holds_its_version_of_the_types_it_names() {
    let snapshots = snapshots();
    assert_eq!(snapshots.first().map(|(v, _)| *v), Some(1));
    for (version, snapshot) in &snapshots {
        for event_type in snapshot.schemas.keys() {
            assert_eq!(
                snapshot.version(event_type),
                Some(u64::from(*version)),
                "released/{version}/{event_type}.schema.json"
            );
        }
    }
    // Version 1 released every type there was; a type added later is released with its first
    // version, and every type the code knows is released once its version is.
    let released = released();
    for (event_type, version) in EVENT_TYPES {
        let newest = released
            .get(event_type)
            .and_then(|s| s["properties"]["schemaVersion"]["const"].as_u64());
        assert!(
            newest.is_some_and(|v| v <= u64::from(version)),
            "{event_type}: released at {newest:?}, written at {version}"
        );
    }
}

#[test]
fn the_order_placed_v2_is_refused_without_its_upcaster_or_its_bump() {
    // The bump without the step from 1: the check names the missing step, and nothing else.
    let no_placed_step = |t: &str, from: u32| in_code(t, from) && (t, from) != ("OrderPlaced", 1);
    assert_eq!(
        breaking_changes_of_all(&released(), &current(), &no_placed_step),
        [
            "OrderPlaced: schemaVersion is 2 but no upcaster reads version 1 \
          (orders_core::event::UPCASTERS)"
        ]
    );
    // The new shape without the bump: `totals` newly required, whatever upcasters exist.
    let mut unbumped = current().remove("OrderPlaced").unwrap();
    at(&mut unbumped, "/properties/schemaVersion")["const"] = json!(1);
    let found = breaking_changes(
        "OrderPlaced",
        &released()["OrderPlaced"],
        &unbumped,
        &in_code,
    );
    assert!(
        found.iter().any(|b| b.contains("totals is newly required")),
        "{found:#?}"
    );
}

/// The newest released schema of `OrderPlaced`, resolved, changed by `edit`: the check's
/// cases below are edits of a released schema.
fn edited(edit: impl FnOnce(&mut Value)) -> Value {
    let mut schema = released().remove("OrderPlaced").unwrap();
    edit(&mut schema);
    schema
}

/// The schema version of the newest released `OrderPlaced`, plus `n`.
fn released_version_plus(n: u64) -> Value {
    json!(
        released()["OrderPlaced"]["properties"]["schemaVersion"]["const"]
            .as_u64()
            .unwrap()
            + n
    )
}

fn at<'a>(schema: &'a mut Value, pointer: &str) -> &'a mut Value {
    schema
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("nothing at {pointer}"))
}

const ORDER: &str = "/properties/payload/properties/order";

fn no_upcasters(_: &str, _: u32) -> bool {
    false
}

/// The check's verdict on `old` → `new`, with no upcasters.
fn verdict(old: &Value, new: &Value) -> Vec<String> {
    breaking_changes("OrderPlaced", old, new, &no_upcasters)
}

#[test]
fn the_check_refuses_each_kind_of_breaking_change() {
    let released = edited(|_| {});
    let remove = |pointer: &'static str, name: &'static str| {
        edited(move |s| {
            at(s, pointer).as_object_mut().unwrap().remove(name);
        })
    };
    let cases: Vec<(&str, Value, Value, &str)> = vec![
        (
            "a property removed",
            released.clone(),
            remove(
                "/properties/payload/properties/order/properties",
                "shippedAt",
            ),
            "shippedAt was removed",
        ),
        (
            "a property renamed",
            released.clone(),
            edited(|s| {
                let properties = at(s, &format!("{ORDER}/properties"));
                let total = properties.as_object_mut().unwrap().remove("total").unwrap();
                properties["totalAmount"] = total;
            }),
            "total was removed",
        ),
        (
            "a type narrowed: number to integer",
            edited(|s| at(s, &format!("{ORDER}/properties/total"))["type"] = json!("number")),
            released.clone(),
            "type number is no longer allowed",
        ),
        (
            "a type removed from a union",
            edited(|s| {
                at(s, &format!("{ORDER}/properties/customerId"))["type"] = json!(["string", "null"])
            }),
            released.clone(),
            "type null is no longer allowed",
        ),
        (
            "an enum value removed",
            released.clone(),
            edited(|s| {
                at(s, &format!("{ORDER}/properties/failureReason/enum"))
                    .as_array_mut()
                    .unwrap()
                    .retain(|v| v != "price_changed")
            }),
            "value \"price_changed\" was removed",
        ),
        (
            "a new constraint",
            released.clone(),
            edited(|s| at(s, &format!("{ORDER}/properties/currency"))["maxLength"] = json!(3)),
            "new constraint maxLength",
        ),
        (
            "a tighter constraint",
            released.clone(),
            edited(|s| {
                at(
                    s,
                    &format!("{ORDER}/properties/items/items/properties/quantity"),
                )["maximum"] = json!(100)
            }),
            "maximum narrowed from 10000 to 100",
        ),
        (
            "a changed pattern",
            released.clone(),
            edited(|s| at(s, &format!("{ORDER}/properties/currency"))["pattern"] = json!("^USD$")),
            "pattern changed",
        ),
        (
            "objects closed",
            released.clone(),
            edited(|s| at(s, ORDER)["additionalProperties"] = json!(false)),
            "new constraint additionalProperties",
        ),
        (
            "a property newly required",
            released.clone(),
            edited(|s| {
                at(s, &format!("{ORDER}/required"))
                    .as_array_mut()
                    .unwrap()
                    .push(json!("processedAt"))
            }),
            "processedAt is newly required",
        ),
        (
            "a new required property",
            released.clone(),
            edited(|s| {
                at(s, &format!("{ORDER}/properties"))["channel"] = json!({"type": "string"});
                at(s, &format!("{ORDER}/required"))
                    .as_array_mut()
                    .unwrap()
                    .push(json!("channel"))
            }),
            "channel is newly required",
        ),
        (
            "a property no longer required",
            released.clone(),
            edited(|s| {
                at(s, &format!("{ORDER}/required"))
                    .as_array_mut()
                    .unwrap()
                    .retain(|v| v != "updatedAt")
            }),
            "updatedAt is no longer required",
        ),
        (
            "an enum value added (old consumers cannot decode it)",
            released.clone(),
            edited(|s| {
                at(s, &format!("{ORDER}/properties/status/enum"))
                    .as_array_mut()
                    .unwrap()
                    .push(json!("REFUNDED"))
            }),
            "value \"REFUNDED\" was added",
        ),
        (
            "a type added",
            released.clone(),
            edited(|s| {
                at(s, &format!("{ORDER}/properties/total"))["type"] = json!(["integer", "string"])
            }),
            "type string was added",
        ),
        (
            "a version going down",
            edited(|s| at(s, "/properties/schemaVersion")["const"] = released_version_plus(1)),
            released.clone(),
            "schemaVersion went down",
        ),
    ];
    for (kind, old, new, expected) in cases {
        let found = verdict(&old, &new);
        assert!(
            found.iter().any(|b| b.contains(expected)),
            "{kind}: expected \"{expected}\" in {found:#?}"
        );
    }
}

#[test]
fn a_breaking_change_is_a_new_version_with_an_upcaster() {
    let released = edited(|_| {});
    let v2 = edited(|s| {
        at(s, "/properties/schemaVersion")["const"] = released_version_plus(1);
        at(s, &format!("{ORDER}/properties"))
            .as_object_mut()
            .unwrap()
            .remove("customerId");
    });
    let v3 = edited(|s| at(s, "/properties/schemaVersion")["const"] = released_version_plus(2));
    let n = released_version_plus(0).as_u64().unwrap() as u32;
    let found = verdict(&released, &v2);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].contains(&format!("no upcaster reads version {n}")),
        "{found:#?}"
    );
    let from_n = |t: &str, from: u32| t == "OrderPlaced" && from == n;
    assert!(breaking_changes("OrderPlaced", &released, &v2, &from_n).is_empty());
    // Every step is needed: n → n + 1 → n + 2.
    let found = breaking_changes("OrderPlaced", &released, &v3, &from_n);
    assert!(
        found.len() == 1 && found[0].contains(&format!("version {}", n + 1)),
        "{found:#?}"
    );
    let elsewhere = |t: &str, _: u32| t == "OrderShipped";
    assert_eq!(
        breaking_changes("OrderPlaced", &released, &v2, &elsewhere).len(),
        1
    );
}

#[test]
fn the_check_lets_compatible_changes_through() {
    let released = edited(|_| {});
    for (kind, new) in [
        ("unchanged", released.clone()),
        (
            "an optional property added",
            edited(|s| {
                at(s, &format!("{ORDER}/properties"))["channel"] =
                    json!({"type": "string", "enum": ["web", "app"]})
            }),
        ),
        (
            "an optional envelope property added",
            edited(|s| at(s, "/properties")["traceId"] = json!({"type": "string"})),
        ),
        (
            "a constraint loosened",
            edited(|s| {
                at(
                    s,
                    &format!("{ORDER}/properties/items/items/properties/quantity"),
                )["maximum"] = json!(100000)
            }),
        ),
        (
            "a constraint dropped",
            edited(|s| {
                at(s, &format!("{ORDER}/properties/currency"))
                    .as_object_mut()
                    .unwrap()
                    .remove("pattern");
            }),
        ),
        (
            "descriptions and examples changed",
            edited(|s| {
                at(s, ORDER)["description"] = json!("The order.");
                at(s, &format!("{ORDER}/properties/total"))["examples"] = json!([1]);
            }),
        ),
    ] {
        let found = verdict(&released, &new);
        assert!(found.is_empty(), "{kind}: {found:#?}");
    }
    // A type added is compatible (consumers skip types they do not know); removed, not.
    let mut more = current();
    more.insert("OrderGiftWrapped".into(), json!({}));
    let all = current();
    assert!(breaking_changes_of_all(&all, &more, &no_upcasters).is_empty());
    let found = breaking_changes_of_all(&more, &all, &no_upcasters);
    assert_eq!(found, ["OrderGiftWrapped: the event type was removed"]);
}
