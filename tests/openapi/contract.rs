//! `api/openapi.json` as something tests can check values against: any schema in it, named by
//! its JSON pointer, compiled as JSON Schema 2020-12 with the document's `$ref`s resolved in
//! place. Shared by the static test (`tests/openapi.rs`) and the live one (`tests/e2e/openapi.rs`).

use jsonschema::{Draft, Registry, Validator};
use serde_json::Value;

/// The document, as the query function compiles it in.
pub const DOCUMENT: &str = include_str!("../../api/openapi.json");

/// The URI the document is registered under, so `#/components/...` refs resolve against it.
const BASE: &str = "urn:orders:openapi";

pub struct Contract {
    pub doc: Value,
    registry: Registry<'static>,
}

impl Contract {
    pub fn load() -> Self {
        let doc: Value = serde_json::from_str(DOCUMENT).expect("api/openapi.json is JSON");
        let registry = Registry::new()
            .draft(Draft::Draft202012)
            .add(BASE, doc.clone())
            .expect("a valid base URI")
            .prepare()
            .expect("the document indexes as a JSON Schema resource");
        Self { doc, registry }
    }

    /// The value at `pointer` (RFC 6901), following a `$ref` found there (several, if chained).
    pub fn at(&self, pointer: &str) -> &Value {
        let resolved = self.resolved_pointer(pointer);
        self.doc
            .pointer(&resolved)
            .unwrap_or_else(|| panic!("nothing at {resolved} in api/openapi.json"))
    }

    /// Where what is at `pointer` really is: the target of the `$ref` there, if any.
    pub fn resolved_pointer(&self, pointer: &str) -> String {
        let mut pointer = pointer.to_owned();
        while let Some(target) = self
            .doc
            .pointer(&pointer)
            .and_then(|v| v.get("$ref"))
            .and_then(Value::as_str)
        {
            pointer = target.trim_start_matches('#').to_owned();
        }
        pointer
    }

    /// A validator for the schema at `pointer`, with formats (`date-time`) asserted.
    pub fn validator(&self, pointer: &str) -> Validator {
        assert!(
            self.doc.pointer(pointer).is_some(),
            "no schema at {pointer} in api/openapi.json"
        );
        let wrapper = serde_json::json!({ "$ref": format!("{BASE}#{}", uri_fragment(pointer)) });
        jsonschema::options()
            .with_draft(Draft::Draft202012)
            .with_registry(&self.registry)
            .should_validate_formats(true)
            .build(&wrapper)
            .unwrap_or_else(|e| panic!("the schema at {pointer} does not compile: {e}"))
    }

    /// Every way `instance` breaks the schema at `pointer`; empty when it conforms.
    pub fn violations(&self, pointer: &str, instance: &Value) -> Vec<String> {
        self.validator(pointer)
            .iter_errors(instance)
            .map(|e| format!("at {:?}: {e}", e.instance_path().as_str()))
            .collect()
    }

    /// The pointer of the operation serving `method` (`GET`) on `path` (`/orders/{orderId}`).
    pub fn operation(&self, method: &str, path: &str) -> String {
        let pointer = format!("/paths/{}/{}", escape(path), method.to_ascii_lowercase());
        assert!(
            self.doc.pointer(&pointer).is_some(),
            "api/openapi.json does not document {method} {path}"
        );
        pointer
    }
}

/// One JSON Pointer token (RFC 6901 §3).
pub fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// A JSON Pointer as a URI fragment (RFC 6901 §6): characters a fragment may not hold,
/// such as the braces of `/orders/{orderId}`, percent-encoded.
fn uri_fragment(pointer: &str) -> String {
    let mut out = String::with_capacity(pointer.len());
    for byte in pointer.bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
