//! `api/openapi.json` without a running stack: a well-formed OpenAPI 3.1 document whose
//! schemas are JSON Schema 2020-12, whose routes are exactly those Terraform deploys and the
//! handlers serve, whose examples conform to their schemas, and whose limits and shapes are
//! the domain code's. `tests/e2e/openapi.rs` checks it against the live API.

#[path = "openapi/contract.rs"]
mod contract;

use contract::{Contract, escape};
use orders_core::activity::parse::{
    MAX_AGE_SECONDS, MAX_BATCH_EVENTS, MAX_CART_PRODUCTS, MAX_FUTURE_SECONDS,
};
use orders_core::activity::{
    ACTIVITY_EVENT_TYPES, ActivityReport, ActivitySeries, ActivityView, Counts, FunnelReport,
    parse_activity_batch,
};
use orders_core::analytics::{Granularity, ProductTotals, Totals};
use orders_core::listing::{DEFAULT_LIMIT, ListOrders, ListProducts, MAX_LIMIT};
use orders_core::money::{MAX_QUANTITY, MAX_UNIT_PRICE, MIN_QUANTITY};
use orders_core::product::{MAX_NAME_LEN, MAX_STOCK};
use orders_core::report::{
    ActiveCustomers, DEFAULT_TOP_PRODUCTS, MAX_SALES_BUCKETS, MAX_TOP_PRODUCTS, MAX_WINDOW_DAYS,
    RankBy, SalesReport, Summary, TopProduct, TopProducts, Window,
};
use orders_core::validation::{MAX_ITEMS, parse_place_order};
use orders_core::{
    Caller, Currency, FailureReason, Money, Order, OrderId, OrderStatus, Product, ProductId,
    PutProduct, RetryOrder, Timestamp,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Every keyword of the JSON Schema 2020-12 vocabularies. Anything else in a schema is a
/// typo or an OpenAPI 3.0 habit (`nullable`, `example`) that 2020-12 silently ignores.
const KEYWORDS: [&str; 57] = [
    "$schema",
    "$id",
    "$ref",
    "$anchor",
    "$dynamicRef",
    "$dynamicAnchor",
    "$defs",
    "$comment",
    "$vocabulary",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "dependentSchemas",
    "prefixItems",
    "items",
    "contains",
    "properties",
    "patternProperties",
    "additionalProperties",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "type",
    "enum",
    "const",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxContains",
    "minContains",
    "maxProperties",
    "minProperties",
    "required",
    "dependentRequired",
    "title",
    "description",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
    "examples",
    "format",
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
];

fn read(path: &str) -> String {
    let full = orders_tests::repo_root().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {}: {e}", full.display()))
}

/// Every (pointer, value) in the document, depth first, without examples: they are data
/// and may hold anything, keys such as `$ref` or `schema` included (the tests below read
/// them from their owners).
fn walk<'a>(pointer: String, value: &'a Value, out: &mut Vec<(String, &'a Value)>) {
    out.push((pointer.clone(), value));
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key != "examples" && key != "example" {
                    walk(format!("{pointer}/{}", escape(key)), child, out);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(format!("{pointer}/{i}"), child, out);
            }
        }
        _ => {}
    }
}

/// The pointers of every schema the document holds: components and the `schema` of each
/// parameter, header and media type, then every subschema of those.
fn schema_pointers(c: &Contract) -> Vec<String> {
    let mut all = Vec::new();
    walk(String::new(), &c.doc, &mut all);
    let mut roots: Vec<String> = all
        .iter()
        .filter(|(p, _)| p.ends_with("/schema") && !p.starts_with("/components/schemas/"))
        .map(|(p, _)| p.clone())
        .collect();
    roots.extend(
        c.doc["components"]["schemas"]
            .as_object()
            .expect("components.schemas")
            .keys()
            .map(|name| format!("/components/schemas/{}", escape(name))),
    );
    let mut out = Vec::new();
    for root in roots {
        subschemas(root.clone(), node(&c.doc, &root), &mut out);
    }
    out
}

/// `root` and the schemas nested in it, by the 2020-12 applicator keywords.
fn subschemas(pointer: String, schema: &Value, out: &mut Vec<String>) {
    out.push(pointer.clone());
    let Some(map) = schema.as_object() else {
        return;
    };
    for (key, child) in map {
        let at = format!("{pointer}/{}", escape(key));
        match key.as_str() {
            "properties" | "patternProperties" | "$defs" | "dependentSchemas" => {
                for (name, sub) in child.as_object().into_iter().flatten() {
                    subschemas(format!("{at}/{}", escape(name)), sub, out);
                }
            }
            "allOf" | "anyOf" | "oneOf" | "prefixItems" => {
                for (i, sub) in child.as_array().into_iter().flatten().enumerate() {
                    subschemas(format!("{at}/{i}"), sub, out);
                }
            }
            "items"
            | "additionalProperties"
            | "not"
            | "if"
            | "then"
            | "else"
            | "contains"
            | "propertyNames"
            | "unevaluatedItems"
            | "unevaluatedProperties"
            | "contentSchema" => {
                subschemas(at, child, out);
            }
            _ => {}
        }
    }
}

/// The value at `pointer`, which the walk above found.
fn node<'a>(doc: &'a Value, pointer: &str) -> &'a Value {
    doc.pointer(pointer)
        .unwrap_or_else(|| panic!("nothing at {pointer}"))
}

/// `value`, or what its `$ref` names.
fn resolve<'a>(c: &'a Contract, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => c.at(reference.strip_prefix('#').expect("a local reference")),
        None => value,
    }
}

/// Every documented route key: `GET /orders/{orderId}`.
fn documented_routes(c: &Contract) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (path, item) in c.doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                out.insert(format!("{} {path}", method.to_ascii_uppercase()));
            }
        }
    }
    out
}

#[test]
fn document_is_structurally_openapi_3_1() {
    let c = Contract::load();
    let doc = &c.doc;
    let version = doc["openapi"].as_str().expect("openapi is a string");
    assert!(
        version.starts_with("3.1.") && version[4..].parse::<u32>().is_ok(),
        "openapi is {version}, not 3.1.x"
    );
    assert_eq!(
        doc["jsonSchemaDialect"], "https://json-schema.org/draft/2020-12/schema",
        "schemas are plain JSON Schema 2020-12"
    );
    for field in ["title", "version"] {
        assert!(
            doc["info"][field].as_str().is_some_and(|s| !s.is_empty()),
            "info.{field} is required"
        );
    }
    for server in doc["servers"].as_array().expect("servers") {
        let url = server["url"].as_str().expect("server url");
        for (name, variable) in server["variables"].as_object().into_iter().flatten() {
            assert!(
                url.contains(&format!("{{{name}}}")),
                "{url} has no {{{name}}}"
            );
            assert!(
                variable["default"].is_string(),
                "server variable {name} needs a default"
            );
        }
    }
    let tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t["name"].as_str().expect("tag name"))
        .collect();

    let mut operation_ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        assert!(path.starts_with('/'), "path {path} must start with /");
        let template: BTreeSet<String> = path
            .split('{')
            .skip(1)
            .map(|rest| rest.split('}').next().unwrap_or_default().to_owned())
            .collect();
        for key in item.as_object().expect("path item").keys() {
            assert!(
                METHODS.contains(&key.as_str())
                    || ["parameters", "summary", "description", "servers"].contains(&key.as_str()),
                "{path}: {key} is not a path item field"
            );
        }
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let at = format!("{} {path}", method.to_ascii_uppercase());
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{at}: operationId"));
            assert!(
                operation_ids.insert(id.to_owned()),
                "{at}: operationId {id} is not unique"
            );
            assert!(operation["summary"].is_string(), "{at}: summary");
            for tag in operation["tags"]
                .as_array()
                .unwrap_or_else(|| panic!("{at}: tags"))
            {
                assert!(
                    tags.contains(tag.as_str().unwrap_or_default()),
                    "{at}: tag {tag} is not declared"
                );
            }

            // Path-level parameters apply unless the operation overrides them (same name and in).
            let mut parameters: BTreeMap<(String, String), &Value> = BTreeMap::new();
            for list in [&item["parameters"], &operation["parameters"]] {
                for parameter in list.as_array().into_iter().flatten() {
                    let parameter = resolve(&c, parameter);
                    let name = parameter["name"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{at}: parameter name"));
                    let location = parameter["in"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{at}: {name}.in"));
                    assert!(
                        ["query", "header", "path", "cookie"].contains(&location),
                        "{at}: {name} is in {location}"
                    );
                    assert!(
                        parameter.get("schema").is_some() != parameter.get("content").is_some(),
                        "{at}: {name} needs exactly one of schema and content"
                    );
                    if location == "path" {
                        assert_eq!(
                            parameter["required"], true,
                            "{at}: path parameter {name} must be required"
                        );
                    }
                    if location == "header" {
                        assert!(
                            !["accept", "content-type", "authorization"]
                                .contains(&name.to_ascii_lowercase().as_str()),
                            "{at}: OpenAPI ignores a header parameter named {name}"
                        );
                    }
                    parameters.insert((name.to_owned(), location.to_owned()), parameter);
                }
            }
            let path_parameters: BTreeSet<String> = parameters
                .keys()
                .filter(|(_, location)| location == "path")
                .map(|(name, _)| name.clone())
                .collect();
            assert_eq!(
                path_parameters, template,
                "{at}: path parameters vs the template"
            );

            if let Some(body) = operation.get("requestBody") {
                assert!(
                    body["content"].as_object().is_some_and(|m| !m.is_empty()),
                    "{at}: requestBody.content"
                );
                assert!(
                    !["get", "delete", "head"].contains(&method),
                    "{at}: a request body on {method} has no defined meaning"
                );
            }
            let responses = operation["responses"]
                .as_object()
                .unwrap_or_else(|| panic!("{at}: responses"));
            assert!(
                responses
                    .keys()
                    .any(|k| k.starts_with('2') || k.starts_with('3')),
                "{at}: no success response"
            );
            for (status, response) in responses {
                assert!(
                    status == "default"
                        || (status.len() == 3
                            && (b'1'..=b'5').contains(&status.as_bytes()[0])
                            && (status[1..].bytes().all(|b| b.is_ascii_digit())
                                || &status[1..] == "XX")),
                    "{at}: {status} is not a status code"
                );
                let response = resolve(&c, response);
                assert!(
                    response["description"].is_string(),
                    "{at} {status}: description"
                );
                if status == "304" || status == "204" {
                    assert!(
                        response.get("content").is_none(),
                        "{at} {status} has no body"
                    );
                }
            }
        }
    }
}

#[test]
fn every_ref_resolves_within_the_document() {
    let c = Contract::load();
    let mut all = Vec::new();
    walk(String::new(), &c.doc, &mut all);
    let refs: Vec<(&String, &str)> = all
        .iter()
        .filter_map(|(p, v)| v.get("$ref").and_then(Value::as_str).map(|r| (p, r)))
        .collect();
    assert!(refs.len() > 50, "the document reuses its components");
    for (at, reference) in refs {
        assert!(
            reference.starts_with("#/"),
            "{at}: {reference} is not a local reference"
        );
        assert!(
            c.doc.pointer(&reference[1..]).is_some(),
            "{at}: {reference} does not resolve"
        );
    }
    // And nothing declared is left unused.
    let used: BTreeSet<&str> = all
        .iter()
        .filter_map(|(_, v)| v.get("$ref").and_then(Value::as_str))
        .collect();
    // Security schemes are used by name, in `security` requirements.
    let required: BTreeSet<String> = all
        .iter()
        .filter_map(|(_, v)| v.get("security").and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|r| {
            r.keys()
                .map(|k| format!("#/components/securitySchemes/{k}"))
        })
        .collect();
    for (kind, entries) in c.doc["components"].as_object().expect("components") {
        for name in entries.as_object().expect("a component map").keys() {
            let reference = format!("#/components/{kind}/{}", escape(name));
            if kind == "securitySchemes" {
                assert!(required.contains(&reference), "{reference} is never used");
                continue;
            }
            assert!(
                used.contains(reference.as_str()),
                "{reference} is never used"
            );
        }
    }
}

#[test]
fn every_schema_is_json_schema_2020_12() {
    let c = Contract::load();
    let pointers = schema_pointers(&c);
    assert!(
        pointers.len() > 100,
        "found only {} schemas",
        pointers.len()
    );
    let meta = jsonschema::draft202012::meta::validator();
    for pointer in &pointers {
        let schema = node(&c.doc, pointer);
        if let Err(e) = meta.validate(schema) {
            panic!("{pointer} is not a 2020-12 schema: {e}");
        }
        for key in schema.as_object().into_iter().flatten().map(|(k, _)| k) {
            assert!(
                KEYWORDS.contains(&key.as_str()),
                "{pointer}: {key} is not a JSON Schema 2020-12 keyword"
            );
        }
        c.validator(pointer);
    }
}

#[test]
fn documented_routes_are_the_deployed_and_handled_routes() {
    let c = Contract::load();
    let documented = documented_routes(&c);

    let terraform = terraform_routes(&read("infra/modules/orders/main.tf"));
    let deployed: BTreeSet<String> = terraform.keys().cloned().collect();
    assert_eq!(
        documented, deployed,
        "api/openapi.json vs local.routes in infra/modules/orders/main.tf"
    );

    let mut handled = BTreeMap::new();
    for function in ["place-order", "query", "live"] {
        for route in handled_routes(&read(&format!("functions/{function}/src/handler.rs"))) {
            assert!(
                handled.insert(route.clone(), function.to_owned()).is_none(),
                "{route} is matched by more than one handler"
            );
        }
    }
    assert_eq!(
        handled, terraform,
        "the routes each handler matches vs the function Terraform sends them to"
    );
}

/// `"POST /orders" = "place-order"` lines of the `routes = { … }` block.
fn terraform_routes(main_tf: &str) -> BTreeMap<String, String> {
    let start = main_tf
        .find("routes = {")
        .expect("a routes = { … } block in main.tf");
    let block = &main_tf[start..];
    let block = &block[..block.find("\n  }").expect("the end of the routes block")];
    block
        .lines()
        .skip(1)
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or_default().trim();
            let (key, value) = line.split_once('=')?;
            Some((
                key.trim().trim_matches('"').to_owned(),
                value.trim().trim_matches('"').to_owned(),
            ))
        })
        .collect()
}

/// The route keys a handler dispatches on: `Some("GET /orders/{orderId}")`.
fn handled_routes(source: &str) -> Vec<String> {
    source
        .split("Some(\"")
        .skip(1)
        .filter_map(|rest| rest.split_once("\")").map(|(literal, _)| literal))
        .filter(|literal| {
            literal
                .split_once(" /")
                .is_some_and(|(method, _)| METHODS.contains(&method.to_ascii_lowercase().as_str()))
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_example_conforms_to_its_schema() {
    let c = Contract::load();
    let mut all = Vec::new();
    walk(String::new(), &c.doc, &mut all);
    let mut checked = 0;
    // Parameters, headers and media types: each has a schema and named examples.
    for (pointer, _) in &all {
        if !pointer.ends_with("/schema") || pointer.starts_with("/components/schemas/") {
            continue;
        }
        let owner = &pointer[..pointer.len() - "/schema".len()];
        let holder = node(&c.doc, owner);
        let examples = holder["examples"]
            .as_object()
            .unwrap_or_else(|| panic!("{owner} has no examples"));
        assert!(!examples.is_empty(), "{owner} has no examples");
        assert!(
            holder.get("example").is_none(),
            "{owner}: use examples, not example"
        );
        for (name, example) in examples {
            let example = resolve(&c, example);
            let value = example
                .get("value")
                .unwrap_or_else(|| panic!("{owner}/examples/{name} has no value"));
            let violations = c.violations(pointer, value);
            assert!(
                violations.is_empty(),
                "{owner}/examples/{name}: {violations:#?}"
            );
            checked += 1;
        }
    }
    // Schemas' own `examples` arrays.
    for pointer in schema_pointers(&c) {
        for (i, value) in node(&c.doc, &pointer)["examples"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let violations = c.violations(&pointer, value);
            assert!(
                violations.is_empty(),
                "{pointer}/examples/{i}: {violations:#?}"
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} examples checked");
}

/// The examples of every media type whose schema is `#/components/schemas/{name}`, each
/// with where it is.
fn examples_of(c: &Contract, name: &str) -> Vec<(String, Value)> {
    let target = format!("#/components/schemas/{name}");
    let mut all = Vec::new();
    walk(String::new(), &c.doc, &mut all);
    let mut out = Vec::new();
    for (pointer, value) in all {
        if pointer.contains("/content/")
            && value.get("$ref").and_then(Value::as_str) == Some(&target)
            && pointer.ends_with("/schema")
        {
            let owner = &pointer[..pointer.len() - "/schema".len()];
            for (example, e) in c.at(owner)["examples"].as_object().into_iter().flatten() {
                out.push((format!("{owner}/examples/{example}"), e["value"].clone()));
            }
        }
    }
    assert!(!out.is_empty(), "no media type examples of {name}");
    out
}

#[test]
fn response_examples_are_exactly_what_the_domain_types_serialise() {
    let c = Contract::load();
    let mut orders = examples_of(&c, "Order");
    for (at, list) in examples_of(&c, "OrderList") {
        for (i, order) in list["orders"]
            .as_array()
            .expect("orders")
            .iter()
            .enumerate()
        {
            orders.push((format!("{at}/orders/{i}"), order.clone()));
        }
    }
    for (at, example) in orders {
        let order: Order =
            serde_json::from_value(example.clone()).unwrap_or_else(|e| panic!("{at}: {e}"));
        assert_eq!(serde_json::to_value(&order).unwrap(), example, "{at}");
        let computed: i64 = order.items.iter().map(|i| i.line_total.minor()).sum();
        assert_eq!(order.total.minor(), computed, "{at}: total");
        assert_eq!(
            order.order_id.timestamp_ms() as i64,
            order.created_at.unix_millis(),
            "{at}: an order id carries its creation time"
        );
        for item in &order.items {
            assert_eq!(
                item.line_total.minor(),
                item.unit_price.minor() * i64::from(item.quantity.get()),
                "{at}: lineTotal"
            );
        }
    }
    let mut products = examples_of(&c, "Product");
    for (at, list) in examples_of(&c, "ProductList") {
        for (i, product) in list["products"]
            .as_array()
            .expect("products")
            .iter()
            .enumerate()
        {
            products.push((format!("{at}/products/{i}"), product.clone()));
        }
    }
    for (at, example) in products {
        let product: Product =
            serde_json::from_value(example.clone()).unwrap_or_else(|e| panic!("{at}: {e}"));
        assert_eq!(serde_json::to_value(&product).unwrap(), example, "{at}");
    }
}

#[test]
fn request_examples_are_accepted_by_the_validation_code() {
    let c = Contract::load();
    let usd = Currency::parse("USD").unwrap();
    for (at, body) in examples_of(&c, "PlaceOrderRequest") {
        parse_place_order(&body, &usd).unwrap_or_else(|e| panic!("{at}: {e:?}"));
    }
    for (at, body) in examples_of(&c, "PutProductRequest") {
        PutProduct::parse(&body).unwrap_or_else(|e| panic!("{at}: {e:?}"));
    }
    for (at, body) in examples_of(&c, "RetryOrderRequest") {
        RetryOrder::parse(Some(&body)).unwrap_or_else(|e| panic!("{at}: {e:?}"));
    }
    for (at, body) in examples_of(&c, "ChangeStatusRequest") {
        let status = body["status"].as_str().unwrap_or_default();
        assert!(status.parse::<OrderStatus>().is_ok(), "{at}");
    }
    let query_examples = |op: &str, parameter: &str| -> Vec<String> {
        let op = c.operation("GET", op);
        let mut out = Vec::new();
        for p in c.at(&op)["parameters"].as_array().expect("parameters") {
            let p = resolve(&c, p);
            if p["name"] == parameter {
                for e in p["examples"].as_object().expect("examples").values() {
                    out.push(match &e["value"] {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    });
                }
            }
        }
        out
    };
    for name in ["status", "customerId", "from", "to", "limit", "cursor"] {
        for value in query_examples("/orders", name) {
            ListOrders::parse([(name, value.as_str())])
                .unwrap_or_else(|e| panic!("GET /orders?{name}={value}: {e:?}"));
        }
    }
    for name in ["limit", "cursor"] {
        for value in query_examples("/products", name) {
            ListProducts::parse([(name, value.as_str())])
                .unwrap_or_else(|e| panic!("GET /products?{name}={value}: {e:?}"));
        }
    }
}

/// Bodies the schema and the validation code must agree on, both ways.
#[test]
fn place_order_schema_accepts_what_the_code_accepts() {
    let c = Contract::load();
    let usd = Currency::parse("USD").unwrap();
    let schema = "/components/schemas/PlaceOrderRequest";
    let line = |p: &str, q: Value, price: Value| json!({"productId": p, "quantity": q, "unitPrice": price});
    let accepted = [
        json!({"customerId": "c-1", "items": [line("sku-1", json!(1), json!(0))]}),
        json!({"customerId": "c.1:x_Y-9", "currency": null, "items": [line("p", json!(MAX_QUANTITY), json!(MAX_UNIT_PRICE))]}),
        json!({"customerId": "c", "currency": "USD", "items": (0..MAX_ITEMS).map(|i| line(&format!("p{i}"), json!(MIN_QUANTITY), json!(1))).collect::<Vec<_>>()}),
        json!({"customerId": "a".repeat(64), "items": [line(&"b".repeat(64), json!(3), json!(1999))]}),
        // Lines are priced from the catalog: a quoted price is optional.
        json!({"customerId": "c", "items": [{"productId": "p", "quantity": 1}]}),
    ];
    for body in &accepted {
        assert!(parse_place_order(body, &usd).is_ok(), "code rejects {body}");
        let violations = c.violations(schema, body);
        assert!(
            violations.is_empty(),
            "schema rejects {body}: {violations:#?}"
        );
    }
    let rejected = [
        json!([]),
        json!({"items": [line("p", json!(1), json!(1))]}),
        json!({"customerId": "c", "items": []}),
        json!({"customerId": "c", "items": (0..=MAX_ITEMS).map(|i| line(&format!("p{i}"), json!(1), json!(1))).collect::<Vec<_>>()}),
        json!({"customerId": "a b", "items": [line("p", json!(1), json!(1))]}),
        json!({"customerId": "a".repeat(65), "items": [line("p", json!(1), json!(1))]}),
        json!({"customerId": "c", "currency": "usd", "items": [line("p", json!(1), json!(1))]}),
        json!({"customerId": "c", "currency": 840, "items": [line("p", json!(1), json!(1))]}),
        json!({"customerId": "c", "colour": "red", "items": [line("p", json!(1), json!(1))]}),
        json!({"customerId": "c", "items": [line("p", json!(0), json!(1))]}),
        json!({"customerId": "c", "items": [line("p", json!(MAX_QUANTITY + 1), json!(1))]}),
        json!({"customerId": "c", "items": [line("p", json!(1), json!(-1))]}),
        json!({"customerId": "c", "items": [line("p", json!(1), json!(MAX_UNIT_PRICE + 1))]}),
        json!({"customerId": "c", "items": [line("p", json!(1), json!(19.99))]}),
        json!({"customerId": "c", "items": [line("p", json!("2"), json!(1))]}),
        json!({"customerId": "c", "items": [line("a/b", json!(1), json!(1))]}),
        json!({"customerId": "c", "items": [{"productId": "p", "quantity": 1, "unitPrice": 1, "note": "x"}]}),
    ];
    for body in &rejected {
        assert!(
            parse_place_order(body, &usd).is_err(),
            "code accepts {body}"
        );
        assert!(
            !c.violations(schema, body).is_empty(),
            "schema accepts {body}"
        );
    }
}

#[test]
fn put_product_schema_accepts_what_the_code_accepts() {
    let c = Contract::load();
    let schema = "/components/schemas/PutProductRequest";
    let accepted = [
        json!({"name": "Mug", "price": 0, "stock": 0}),
        json!({"name": " Blue mug ", "price": MAX_UNIT_PRICE, "stock": MAX_STOCK}),
        json!({"name": "é".repeat(MAX_NAME_LEN), "price": 1, "stock": 1}),
    ];
    for body in &accepted {
        assert!(PutProduct::parse(body).is_ok(), "code rejects {body}");
        let violations = c.violations(schema, body);
        assert!(
            violations.is_empty(),
            "schema rejects {body}: {violations:#?}"
        );
    }
    let rejected = [
        json!("mug"),
        json!({}),
        json!({"name": "", "price": 1, "stock": 1}),
        json!({"name": "   ", "price": 1, "stock": 1}),
        json!({"name": "x".repeat(MAX_NAME_LEN + 1), "price": 1, "stock": 1}),
        json!({"name": "Mug", "price": -1, "stock": 1}),
        json!({"name": "Mug", "price": MAX_UNIT_PRICE + 1, "stock": 1}),
        json!({"name": "Mug", "price": 12.5, "stock": 1}),
        json!({"name": "Mug", "price": 1, "stock": -1}),
        json!({"name": "Mug", "price": 1, "stock": MAX_STOCK + 1}),
        json!({"name": "Mug", "price": 1, "stock": 1, "colour": "red"}),
        json!({"name": 5, "price": 1, "stock": 1}),
    ];
    for body in &rejected {
        assert!(PutProduct::parse(body).is_err(), "code accepts {body}");
        assert!(
            !c.violations(schema, body).is_empty(),
            "schema accepts {body}"
        );
    }
}

#[test]
fn retry_order_schema_accepts_what_the_code_accepts() {
    let c = Contract::load();
    let schema = "/components/schemas/RetryOrderRequest";
    for body in [
        json!({}),
        json!({"expectedTotal": 0}),
        json!({"expectedTotal": 3648}),
    ] {
        assert!(
            RetryOrder::parse(Some(&body)).is_ok(),
            "code rejects {body}"
        );
        let violations = c.violations(schema, &body);
        assert!(
            violations.is_empty(),
            "schema rejects {body}: {violations:#?}"
        );
    }
    for body in [
        json!([]),
        json!("3648"),
        json!({"expectedTotal": -1}),
        json!({"expectedTotal": null}),
        json!({"expectedTotal": 36.48}),
        json!({"expectedTotal": "3648"}),
        json!({"expectedTotal": 3648, "total": 3648}),
    ] {
        assert!(
            RetryOrder::parse(Some(&body)).is_err(),
            "code accepts {body}"
        );
        assert!(
            !c.violations(schema, &body).is_empty(),
            "schema accepts {body}"
        );
    }
    let body = c.at(&format!(
        "{}/requestBody",
        c.operation("POST", "/orders/{orderId}/retry")
    ));
    assert_eq!(body["required"], false, "no body is a retry at any price");
}

#[test]
fn enums_and_limits_are_the_domain_constants() {
    let c = Contract::load();
    let schema = |name: &str| c.at(&format!("/components/schemas/{name}")).clone();
    let statuses: Vec<&str> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(schema("OrderStatus")["enum"], json!(statuses));
    let reasons = FailureReason::ALL.map(|r| r.as_str());
    assert_eq!(schema("FailureReason")["enum"], json!(reasons));
    assert_eq!(
        schema("ChangeStatusRequest")["properties"]["status"]["enum"],
        json!(["SHIPPED", "DELIVERED", "CANCELLED"])
    );
    assert_eq!(schema("Quantity")["minimum"], MIN_QUANTITY);
    assert_eq!(schema("Quantity")["maximum"], MAX_QUANTITY);
    assert_eq!(schema("UnitPrice")["maximum"], MAX_UNIT_PRICE);
    assert_eq!(
        schema("PlaceOrderRequest")["properties"]["items"]["maxItems"],
        MAX_ITEMS
    );
    assert_eq!(
        schema("Order")["properties"]["items"]["maxItems"],
        MAX_ITEMS
    );
    assert_eq!(schema("SafeId")["maxLength"], orders_core::ids::MAX_ID_LEN);
    assert_eq!(
        schema("PutProductRequest")["properties"]["name"]["maxLength"],
        MAX_NAME_LEN
    );
    assert_eq!(
        schema("PutProductRequest")["properties"]["stock"]["maximum"],
        MAX_STOCK
    );
    assert_eq!(
        schema("Product")["properties"]["stock"]["maximum"],
        MAX_STOCK
    );
    let limit = c.at("/components/parameters/ListLimit");
    assert_eq!(limit["schema"]["maximum"], MAX_LIMIT);
    assert_eq!(limit["schema"]["default"], DEFAULT_LIMIT);
    let key = c.at(&format!("{}/parameters/0", c.operation("POST", "/orders")));
    assert_eq!(key["name"], "Idempotency-Key");
    assert_eq!(
        key["schema"]["maxLength"],
        orders_core::ids::MAX_IDEMPOTENCY_KEY_LEN
    );
}

/// Asserts `value` conforms to `#/components/schemas/{name}` and has every property the
/// schema documents: the domain type neither adds nor lacks a field.
fn assert_documents_exactly(c: &Contract, name: &str, value: &Value) {
    let pointer = format!("/components/schemas/{name}");
    let violations = c.violations(&pointer, value);
    assert!(violations.is_empty(), "{name}: {violations:#?}\n{value}");
    let documented: BTreeSet<&String> = c.at(&pointer)["properties"]
        .as_object()
        .expect("an object schema")
        .keys()
        .collect();
    let produced: BTreeSet<&String> = value.as_object().expect("an object").keys().collect();
    assert_eq!(
        documented, produced,
        "{name}: documented vs serialised fields"
    );
}

#[test]
fn domain_values_serialise_exactly_as_documented() {
    let c = Contract::load();
    let at = |s: &str| Timestamp::parse(s).unwrap();
    let usd = Currency::parse("USD").unwrap();
    let command = parse_place_order(
        &json!({"customerId": "c-1", "items": [{"productId": "sku-1", "quantity": 2, "unitPrice": 1299}]}),
        &usd,
    )
    .unwrap()
    .price(&[])
    .unwrap();
    let placed = Order::place(
        OrderId::parse("01M81C1XJBQQJM2S6R76FQCZ25").unwrap(),
        &command,
        at("2026-11-22T10:15:30.123Z"),
    );
    // Every optional field set at once, which no real order has: the schema must still
    // name each of them.
    let mut order = placed
        .transition(OrderStatus::Processed, at("2026-11-22T10:15:31Z"))
        .and_then(|o| o.transition(OrderStatus::Shipped, at("2026-11-22T11:00:00Z")))
        .and_then(|o| o.transition(OrderStatus::Delivered, at("2026-11-23T09:00:00Z")))
        .unwrap();
    order.failed_at = Some(at("2026-11-22T10:15:31Z"));
    order.failure_reason = Some(FailureReason::OutOfStock);
    order.cancelled_at = Some(at("2026-11-22T10:15:32Z"));
    order.retries = 1;
    order.retried_at = Some(at("2026-11-22T10:15:31.500Z"));
    let order = serde_json::to_value(&order).unwrap();
    assert_documents_exactly(&c, "Order", &order);
    assert_documents_exactly(&c, "LineItem", &order["items"][0]);
    assert!(
        c.violations(
            "/components/schemas/Order",
            &serde_json::to_value(&placed).unwrap()
        )
        .is_empty()
    );
    let product = Product {
        product_id: ProductId::parse("sku-1").unwrap(),
        name: "Blue mug".into(),
        price: Money::from_minor(1299).unwrap(),
        stock: 40,
        version: 1,
        updated_at: at("2026-11-22T09:00:00Z"),
    };
    assert_documents_exactly(&c, "Product", &serde_json::to_value(&product).unwrap());

    let window = Window::parse(
        Some("2026-11-22T10:00:00Z"),
        Some("2026-11-22T12:00:00Z"),
        at("2026-11-22T12:00:00Z"),
    )
    .unwrap();
    let totals = Totals {
        orders: 10,
        processed: 7,
        failed: 2,
        cancelled: 1,
        revenue: 12345,
        units: 20,
        by_status: [1, 4, 2, 1, 1, 1],
    };
    let buckets = window.buckets(Granularity::Hour).unwrap();
    let sales = serde_json::to_value(SalesReport::new(
        Granularity::Hour,
        &buckets,
        &vec![totals; buckets.len()],
    ))
    .unwrap();
    assert_documents_exactly(&c, "SalesReport", &sales);
    assert_documents_exactly(&c, "SalesBucket", &sales["buckets"][0]);
    let summary = serde_json::to_value(Summary::new(&window, &totals)).unwrap();
    assert_documents_exactly(&c, "SummaryReport", &summary);
    assert_documents_exactly(&c, "StatusCounts", &summary["byStatus"]);
    let top = serde_json::to_value(TopProducts {
        from: window.from_time(),
        to: window.to_time(),
        by: RankBy::Units,
        products: ["sku-1", "sku-retired"]
            .iter()
            .map(|id| TopProduct {
                product_id: ProductId::parse(id).unwrap(),
                name: (*id == "sku-1").then(|| "Blue mug".to_owned()),
                units: 4,
                revenue: 5196,
                orders: 2,
            })
            .collect(),
    })
    .unwrap();
    assert_documents_exactly(&c, "TopProductsReport", &top);
    assert_documents_exactly(&c, "TopProduct", &top["products"][1]);
    let customers = serde_json::to_value(ActiveCustomers {
        from: window.from_time(),
        to: window.to_time(),
        active_customers: 17,
        approximate: false,
    })
    .unwrap();
    assert_documents_exactly(&c, "CustomersReport", &customers);
}

#[test]
fn analytics_parameters_are_the_report_constants() {
    let c = Contract::load();
    let parameter = |route: &str, name: &str| -> &Value {
        c.at(&c.operation("GET", route))["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .map(|p| resolve(&c, p))
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("GET {route} documents no {name}"))
    };
    let limit = parameter("/analytics/top-products", "limit");
    assert_eq!(limit["schema"]["maximum"], MAX_TOP_PRODUCTS);
    assert_eq!(limit["schema"]["default"], DEFAULT_TOP_PRODUCTS);
    let by = parameter("/analytics/top-products", "by");
    assert_eq!(
        by["schema"]["enum"],
        json!([RankBy::Revenue, RankBy::Units])
    );
    let granularities: Vec<&str> = Granularity::ALL.iter().map(|g| g.as_str()).collect();
    assert_eq!(
        c.at("/components/schemas/Granularity")["enum"],
        json!(granularities)
    );
    assert_eq!(
        c.at("/components/schemas/SalesReport")["properties"]["buckets"]["maxItems"],
        MAX_SALES_BUCKETS
    );
    assert_eq!(
        c.at("/components/schemas/TopProductsReport")["properties"]["products"]["maxItems"],
        MAX_TOP_PRODUCTS
    );
    assert!(
        c.at(&format!(
            "{}/description",
            c.operation("GET", "/analytics/sales")
        ))
        .as_str()
        .is_some_and(|d| d.contains("1,500")),
        "the sales description states the bucket limit"
    );
    assert!(
        c.at("/components/parameters/To/description")
            .as_str()
            .is_some_and(|d| d.contains(&format!("{MAX_WINDOW_DAYS} days"))),
        "the to parameter states the longest window"
    );
}

/// The storefront activity batch (`POST /events`) as place-order validates it at `now`,
/// received from staff (who may name any customer).
fn activity_batch_is_valid(body: &Value, now: Timestamp) -> bool {
    parse_activity_batch(body, &Caller::Staff, now).is_ok()
}

/// Bodies the schema and `parse_activity_batch` must agree on, both ways; and the rules the
/// schema cannot hold (the server's clock, one id for two different events), which the
/// code alone enforces and the document states in words.
#[test]
fn activity_batch_schema_accepts_what_the_code_accepts() {
    let c = Contract::load();
    let schema = "/components/schemas/ActivityBatchRequest";
    let now = Timestamp::parse("2026-11-22T12:00:00Z").unwrap();
    let at = "2026-11-22T11:59:00.000Z";
    let viewed = |id: &str| json!({"eventId": id, "eventType": "ProductViewed", "sessionId": "s-1", "occurredAt": at, "productId": "sku-1"});
    let added = json!({"eventId": "e-2", "eventType": "AddedToCart", "sessionId": "s-1", "occurredAt": at, "productId": "sku-1", "quantity": 2});
    let removed = json!({"eventId": "e-3", "eventType": "RemovedFromCart", "sessionId": "s-1", "occurredAt": at, "productId": "sku-1", "quantity": 1});
    let checkout = json!({"eventId": "e-4", "eventType": "CheckoutStarted", "sessionId": "s-1", "occurredAt": at, "cart": ["sku-1", "sku-2"]});
    let batch = |events: Vec<Value>| json!({ "events": events });
    let with = |event: &Value, key: &str, value: Value| {
        let mut e = event.clone();
        e[key] = value;
        e
    };
    let without = |event: &Value, key: &str| {
        let mut e = event.clone();
        e.as_object_mut().unwrap().remove(key);
        e
    };
    let safe = "A-z_0.9:".repeat(8);
    let cart = |n: usize| json!((0..n).map(|i| format!("sku-{i}")).collect::<Vec<_>>());
    let accepted = [
        batch(vec![
            viewed("e-1"),
            added.clone(),
            removed.clone(),
            checkout.clone(),
        ]),
        batch(vec![with(&viewed("e-1"), "customerId", json!("c-1"))]),
        // Null is the same as absent wherever a field is optional or not the type's.
        batch(vec![with(&viewed("e-1"), "customerId", json!(null))]),
        batch(vec![with(
            &with(&viewed("e-1"), "quantity", json!(null)),
            "cart",
            json!(null),
        )]),
        batch(vec![with(&added, "cart", json!(null))]),
        batch(vec![with(
            &with(&checkout, "productId", json!(null)),
            "quantity",
            json!(null),
        )]),
        batch(vec![with(&checkout, "cart", json!(null))]),
        batch(vec![without(&checkout, "cart")]),
        batch(vec![with(&checkout, "cart", json!([]))]),
        batch(vec![with(&checkout, "cart", cart(MAX_CART_PRODUCTS))]),
        batch(vec![with(&added, "quantity", json!(MAX_QUANTITY))]),
        batch(vec![with(&removed, "quantity", json!(MIN_QUANTITY))]),
        batch(vec![with(
            &with(
                &with(&viewed(&safe), "sessionId", json!(safe)),
                "customerId",
                json!(safe),
            ),
            "productId",
            json!(safe),
        )]),
        batch(vec![with(
            &viewed("e-1"),
            "occurredAt",
            json!("2026-11-22T12:04:00+00:00"),
        )]),
        batch(vec![with(
            &viewed("e-1"),
            "occurredAt",
            json!("2026-11-22T06:30:00-05:00"),
        )]),
        batch(
            (0..MAX_BATCH_EVENTS)
                .map(|i| viewed(&format!("e-{i}")))
                .collect(),
        ),
        // An identical copy is one event.
        batch(vec![viewed("e-1"), viewed("e-1")]),
    ];
    for body in &accepted {
        assert!(activity_batch_is_valid(body, now), "code rejects {body}");
        let violations = c.violations(schema, body);
        assert!(
            violations.is_empty(),
            "schema rejects {body}: {violations:#?}"
        );
    }
    let rejected = [
        json!([]),
        json!({}),
        json!({"events": null}),
        json!({"events": {}}),
        batch(vec![]),
        batch(
            (0..=MAX_BATCH_EVENTS)
                .map(|i| viewed(&format!("e-{i}")))
                .collect(),
        ),
        json!({"events": [viewed("e-1")], "sentAt": at}),
        batch(vec![json!("e-1")]),
        batch(vec![with(&viewed("e-1"), "note", json!("x"))]),
        batch(vec![with(
            &viewed("e-1"),
            "payload",
            json!({"productId": "sku-1"}),
        )]),
        batch(vec![without(&viewed("e-1"), "eventId")]),
        batch(vec![without(&viewed("e-1"), "sessionId")]),
        batch(vec![without(&viewed("e-1"), "eventType")]),
        batch(vec![without(&viewed("e-1"), "occurredAt")]),
        batch(vec![with(&viewed("e-1"), "eventType", json!("Purchased"))]),
        batch(vec![with(&viewed("e-1"), "eventType", json!(null))]),
        batch(vec![with(&viewed("e-1"), "eventId", json!(null))]),
        batch(vec![with(&viewed("e-1"), "eventId", json!(""))]),
        batch(vec![with(&viewed("e-1"), "eventId", json!("e".repeat(65)))]),
        batch(vec![with(&viewed("e-1"), "eventId", json!(7))]),
        batch(vec![with(&viewed("e-1"), "sessionId", json!("s 1"))]),
        batch(vec![with(&viewed("e-1"), "sessionId", json!("s/1"))]),
        batch(vec![with(&viewed("e-1"), "customerId", json!("c#1"))]),
        batch(vec![with(&viewed("e-1"), "customerId", json!(7))]),
        batch(vec![with(&viewed("e-1"), "occurredAt", json!("yesterday"))]),
        batch(vec![with(
            &viewed("e-1"),
            "occurredAt",
            json!("2026-11-22"),
        )]),
        batch(vec![with(&viewed("e-1"), "occurredAt", json!(1795305316))]),
        // productId: required where the type takes it, refused where it does not.
        batch(vec![without(&viewed("e-1"), "productId")]),
        batch(vec![with(&viewed("e-1"), "productId", json!(null))]),
        batch(vec![without(&added, "productId")]),
        batch(vec![without(&removed, "productId")]),
        batch(vec![with(&viewed("e-1"), "productId", json!("sku/1"))]),
        batch(vec![with(&checkout, "productId", json!("sku-1"))]),
        // quantity: the same.
        batch(vec![without(&added, "quantity")]),
        batch(vec![with(&removed, "quantity", json!(null))]),
        batch(vec![with(&viewed("e-1"), "quantity", json!(1))]),
        batch(vec![with(&checkout, "quantity", json!(1))]),
        batch(vec![with(&added, "quantity", json!(0))]),
        batch(vec![with(&added, "quantity", json!(-1))]),
        batch(vec![with(&added, "quantity", json!(MAX_QUANTITY + 1))]),
        batch(vec![with(&added, "quantity", json!(1.5))]),
        batch(vec![with(&added, "quantity", json!("2"))]),
        // cart: checkouts only, each product once, at most 99.
        batch(vec![with(&viewed("e-1"), "cart", json!([]))]),
        batch(vec![with(&added, "cart", json!(["sku-1"]))]),
        batch(vec![with(&checkout, "cart", json!(["sku-1", "sku-1"]))]),
        batch(vec![with(&checkout, "cart", cart(MAX_CART_PRODUCTS + 1))]),
        batch(vec![with(&checkout, "cart", json!(["sku 1"]))]),
        batch(vec![with(&checkout, "cart", json!([3]))]),
        batch(vec![with(&checkout, "cart", json!("sku-1"))]),
    ];
    for body in &rejected {
        assert!(!activity_batch_is_valid(body, now), "code accepts {body}");
        assert!(
            !c.violations(schema, body).is_empty(),
            "schema accepts {body}"
        );
    }
    // What only the code can tell: the schema accepts these, the descriptions state them.
    let ahead = now.plus_seconds(MAX_FUTURE_SECONDS + 1).to_string();
    let behind = now.plus_seconds(-MAX_AGE_SECONDS - 1).to_string();
    let code_only = [
        batch(vec![with(&viewed("e-1"), "occurredAt", json!(ahead))]),
        batch(vec![with(&viewed("e-1"), "occurredAt", json!(behind))]),
        batch(vec![
            viewed("e-1"),
            with(&viewed("e-1"), "productId", json!("sku-2")),
        ]),
        // A whole number written as a float: JSON Schema's integer, not the code's.
        batch(vec![with(&added, "quantity", json!(2.0))]),
    ];
    for body in &code_only {
        assert!(!activity_batch_is_valid(body, now), "code accepts {body}");
        assert!(c.violations(schema, body).is_empty(), "{body}");
    }
    let described = |pointer: &str, words: &[&str]| {
        let text = c.at(pointer).as_str().unwrap_or_default().to_owned();
        for word in words {
            assert!(text.contains(word), "{pointer} does not say {word:?}");
        }
    };
    let event = "/components/schemas/NewActivityEvent/properties";
    described(
        &format!("{event}/occurredAt/description"),
        &[
            &format!("{} minutes after", MAX_FUTURE_SECONDS / 60),
            &format!("{} hours before", MAX_AGE_SECONDS / 3600),
        ],
    );
    described(
        "/components/schemas/ActivityBatchRequest/properties/events/description",
        &["same sessionId and eventId", "other contents is refused"],
    );
    described(&format!("{event}/quantity/description"), &["2, not 2.0"]);
}

#[test]
fn activity_request_examples_are_accepted_by_the_validation_code() {
    let c = Contract::load();
    // The examples' events happened between 10:30 and 10:34 that day.
    let now = Timestamp::parse("2026-11-22T10:35:00Z").unwrap();
    for (at, body) in examples_of(&c, "ActivityBatchRequest") {
        parse_activity_batch(&body, &Caller::Staff, now).unwrap_or_else(|e| panic!("{at}: {e:?}"));
    }
}

#[test]
fn activity_enums_and_limits_are_the_domain_constants() {
    let c = Contract::load();
    let schema = |name: &str| c.at(&format!("/components/schemas/{name}")).clone();
    assert_eq!(
        schema("ActivityEventType")["enum"],
        json!(ACTIVITY_EVENT_TYPES)
    );
    assert_eq!(
        schema("ActivityBatchRequest")["properties"]["events"]["maxItems"],
        MAX_BATCH_EVENTS
    );
    assert_eq!(
        schema("ActivityBatchAccepted")["properties"]["accepted"]["maximum"],
        MAX_BATCH_EVENTS
    );
    assert_eq!(
        schema("NewActivityEvent")["properties"]["cart"]["maxItems"],
        MAX_CART_PRODUCTS
    );
    assert_eq!(
        schema("ActivitySeries")["properties"]["buckets"]["maxItems"],
        MAX_SALES_BUCKETS
    );
    // The if/then branches name every type, once.
    let branches: Vec<Value> = schema("NewActivityEvent")["allOf"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| {
            let t = &b["if"]["properties"]["eventType"];
            match t.get("const") {
                Some(one) => vec![one.clone()],
                None => t["enum"].as_array().unwrap().clone(),
            }
        })
        .collect();
    assert_eq!(
        branches,
        json!(ACTIVITY_EVENT_TYPES).as_array().unwrap().clone()
    );
    let funnel = c.at(&c.operation("GET", "/analytics/funnel"))["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| resolve(&c, p))
        .find(|p| p["name"] == "productId")
        .expect("GET /analytics/funnel documents productId")
        .clone();
    assert_eq!(
        (funnel["in"].as_str(), &funnel["required"]),
        (Some("query"), &json!(true))
    );
    let granularity = c.at(&c.operation("GET", "/analytics/activity"))["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| resolve(&c, p))
        .find(|p| p["name"] == "granularity")
        .expect("GET /analytics/activity documents granularity")
        .clone();
    assert!(
        granularity["schema"].get("default").is_none(),
        "without granularity the report is of the whole window, not of hours"
    );
}

#[test]
fn activity_reports_serialise_exactly_as_documented() {
    let c = Contract::load();
    let at = |s: &str| Timestamp::parse(s).unwrap();
    let window = Window::parse(
        Some("2026-11-22T10:00:00Z"),
        Some("2026-11-22T12:00:00Z"),
        at("2026-11-22T12:00:00Z"),
    )
    .unwrap();
    let report = serde_json::to_value(ActivityReport::for_window(
        &window,
        &ActivityView::default(),
    ))
    .unwrap();
    assert_documents_exactly(&c, "ActivityReport", &report);
    let buckets = window.buckets(Granularity::Hour).unwrap();
    let series = serde_json::to_value(ActivitySeries::new(
        Granularity::Hour,
        &buckets,
        &vec![ActivityView::default(); buckets.len()],
    ))
    .unwrap();
    assert_documents_exactly(&c, "ActivitySeries", &series);
    assert_documents_exactly(&c, "ActivityReport", &series["buckets"][1]);
    // Either shape is a 200 of GET /analytics/activity, and only one of them.
    let ok = format!(
        "{}/responses/200/content/application~1json/schema",
        c.operation("GET", "/analytics/activity")
    );
    assert!(c.violations(&ok, &report).is_empty());
    assert!(c.violations(&ok, &series).is_empty());
    let funnel = |views, cart_adds, orders| {
        serde_json::to_value(FunnelReport::new(
            &window,
            ProductId::parse("sku-1").unwrap(),
            &Counts {
                views,
                cart_adds,
                cart_removes: 1,
                checkouts: 2,
            },
            &ProductTotals {
                units: 9,
                revenue: 900,
                orders,
            },
        ))
        .unwrap()
    };
    assert_documents_exactly(&c, "FunnelReport", &funnel(200, 30, 9));
    // Orders without storefront events: rates above 1 are documented, not capped.
    let above = funnel(4, 2, 9);
    assert!(above["cartToOrderRate"].as_f64().unwrap() > 1.0, "{above}");
    assert_documents_exactly(&c, "FunnelReport", &above);
    assert_documents_exactly(&c, "FunnelReport", &funnel(0, 0, 0));
}
