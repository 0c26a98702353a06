//! The code and `infra/modules/orders` agree: functions, environment, routes, tables, IAM and
//! event source mappings. Static: no emulator, no AWS.

use infra_check::terraform::{Each, Module, Value, blocks, resource_ref};
use infra_check::{Deployment, LAMBDA_RESERVED_ENV, RUNTIME_ENV, repo_root};
use std::collections::{BTreeMap, BTreeSet};

fn deployment() -> Deployment {
    Deployment::load().expect("reading the code and the Terraform")
}

#[test]
fn every_function_in_the_workspace_is_deployed_and_nothing_else() {
    let d = deployment();
    let code: BTreeSet<&String> = d.functions.keys().collect();
    let deployed = d.deployed().unwrap();
    let terraform: BTreeSet<&String> = deployed.keys().collect();
    assert!(!code.is_empty(), "no functions found under functions/");
    assert_eq!(
        code, terraform,
        "functions/* (left) and local.functions (right) differ"
    );
}

#[test]
fn terraform_sets_every_variable_the_configuration_reads_and_no_other() {
    let d = deployment();
    for (name, function) in &d.functions {
        let env = d.environment(name).unwrap();
        let set: BTreeSet<&str> = env.keys().map(String::as_str).collect();
        let read: BTreeSet<&str> = function
            .env_vars
            .iter()
            .map(String::as_str)
            .filter(|v| !LAMBDA_RESERVED_ENV.contains(v))
            .collect();
        assert!(
            !read.is_empty(),
            "{name}: no environment variables found in src/config.rs"
        );
        let missing: Vec<_> = read.difference(&set).collect();
        assert!(
            missing.is_empty(),
            "{name}: Config::from_env reads {missing:?}, which Terraform does not set"
        );
        let unread: Vec<_> = set
            .difference(&read)
            .filter(|v| !RUNTIME_ENV.contains(v))
            .collect();
        assert!(
            unread.is_empty(),
            "{name}: Terraform sets {unread:?}, which nothing reads"
        );
        let reserved: Vec<_> = set
            .iter()
            .filter(|v| LAMBDA_RESERVED_ENV.contains(v))
            .collect();
        assert!(
            reserved.is_empty(),
            "{name}: Lambda reserves {reserved:?}; Terraform cannot set them"
        );
    }
}

#[test]
fn the_api_declares_exactly_the_routes_the_handlers_serve() {
    let d = deployment();
    let declared: BTreeMap<String, String> = d
        .module
        .local("routes")
        .unwrap()
        .as_map()
        .expect("local.routes is an object")
        .iter()
        .map(|(route, bin)| (route.clone(), bin.as_str().unwrap_or_default().to_owned()))
        .collect();
    let served: BTreeMap<String, String> = d
        .functions
        .values()
        .flat_map(|f| f.routes.iter().map(|r| (r.clone(), f.name.clone())))
        .collect();
    assert!(
        !served.is_empty(),
        "no `Some(\"METHOD /path\")` route matches found in functions/*/src"
    );
    for (route, function) in &served {
        assert_eq!(
            declared.get(route),
            Some(function),
            "{function} serves {route}; local.routes must send it there"
        );
    }
    for (route, function) in &declared {
        assert_eq!(
            served.get(route),
            Some(function),
            "local.routes sends {route} to {function}, whose handler does not match it"
        );
    }
}

/// A table's key schema and indexes as Terraform declares them.
struct Table {
    hash: String,
    range: Option<String>,
    indexes: BTreeMap<String, (String, Option<String>)>,
    ttl: Option<String>,
}

fn table(module: &Module, address: &str) -> Table {
    let name = address
        .strip_prefix("aws_dynamodb_table.")
        .unwrap_or_else(|| panic!("{address} is not a DynamoDB table"));
    let body = module.resource("aws_dynamodb_table", name).unwrap();
    let none = Each::default();
    let text = |b: &hcl::Body, a: &str| {
        module
            .attr(b, a, &none)
            .and_then(|v| v.as_str().map(str::to_owned))
    };
    Table {
        hash: text(body, "hash_key").unwrap_or_else(|| panic!("{address} has no hash_key")),
        range: text(body, "range_key"),
        indexes: blocks(body, "global_secondary_index")
            .map(|i| {
                (
                    text(&i.body, "name").unwrap_or_default(),
                    (
                        text(&i.body, "hash_key").unwrap_or_default(),
                        text(&i.body, "range_key"),
                    ),
                )
            })
            .collect(),
        ttl: blocks(body, "ttl")
            .filter(|t| module.attr(&t.body, "enabled", &none) == Some(Value::Bool(true)))
            .find_map(|t| text(&t.body, "attribute_name")),
    }
}

/// `orderId BETWEEN :lo AND :hi`, `#pk = :pk`, `orderId < :before` → (attribute, operator).
fn key_conditions(text: &str) -> Vec<(String, String)> {
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .windows(3)
        .filter(|w| ["=", "<", "<=", ">", ">=", "BETWEEN"].contains(&w[1]) && w[2].starts_with(':'))
        .map(|w| (w[0].to_owned(), w[1].to_owned()))
        .collect()
}

/// The attribute the code stores DynamoDB TTL expiry times in (epoch seconds).
const TTL_ATTRIBUTE: &str = "expiresAt";

#[test]
fn tables_have_the_keys_indexes_and_ttl_the_adapters_use() {
    let d = deployment();
    let mut checked = 0;
    for function in d.functions.values() {
        for instance in &function.instances {
            let adapter = &d.adapters.adapters[&instance.adapter];
            let resources = d.resources_of(function, instance).unwrap();
            let fields: BTreeSet<String> = resources.keys().cloned().collect();
            // Every method of the adapter, used by this function or not: the tables are shared.
            for method in adapter.methods.keys() {
                let literals = d.adapters.literals(adapter, method);
                for field_op in d.adapters.ops(adapter, method, &fields).unwrap() {
                    let address = &resources[&field_op.field];
                    if !address.starts_with("aws_dynamodb_table.") {
                        continue;
                    }
                    let t = table(&d.module, address);
                    let op = &field_op.op;
                    let keys = d.adapters.key_attributes(adapter, op);
                    if !keys.is_empty() {
                        let schema: Vec<String> = std::iter::once(t.hash.clone())
                            .chain(t.range.clone())
                            .collect();
                        assert_eq!(
                            keys, schema,
                            "{}.{method}: {} with key {keys:?} on {address}, whose key schema is {schema:?}",
                            adapter.name, op.action
                        );
                        checked += 1;
                    }
                    if op.on_index {
                        // A literal index, or the partitions chosen at run time from struct literals.
                        let pairs: Vec<(String, Option<String>)> = match &op.index {
                            Some(index) => vec![(index.clone(), None)],
                            None => adapter_index_keys(&d, adapter)
                                .into_iter()
                                .map(|(i, k)| (i, Some(k)))
                                .collect(),
                        };
                        assert!(
                            !pairs.is_empty(),
                            "{}.{method} queries an index the check cannot name",
                            adapter.name
                        );
                        let conditions: Vec<(String, String)> = op
                            .key_condition
                            .iter()
                            .chain(literals.iter())
                            .flat_map(|c| key_conditions(c))
                            .collect();
                        for (index, hash_from_struct) in pairs {
                            let (hash, range) = t.indexes.get(&index).unwrap_or_else(|| {
                                panic!("{}.{method} queries index {index}, which {address} does not have", adapter.name)
                            });
                            let hash_used = hash_from_struct.or_else(|| {
                                conditions
                                    .iter()
                                    .find(|(a, o)| o == "=" && !a.starts_with('#'))
                                    .map(|(a, _)| a.clone())
                            });
                            assert_eq!(
                                hash_used.as_ref(),
                                Some(hash),
                                "{}.{method}: index {index} of {address} is keyed by {hash}",
                                adapter.name
                            );
                            for (attribute, _) in conditions
                                .iter()
                                .filter(|(a, o)| o != "=" && !a.starts_with('#'))
                            {
                                assert_eq!(
                                    Some(attribute),
                                    range.as_ref(),
                                    "{}.{method}: a range condition on {attribute}, but index {index} of {address} sorts by {range:?}",
                                    adapter.name
                                );
                            }
                            checked += 1;
                        }
                    }
                    // The code writes TTL expiry times: the table must expire items by them.
                    if literals.contains(TTL_ATTRIBUTE)
                        && op.action != "dynamodb:DescribeTable"
                        && !op.on_index
                    {
                        let writes = ["dynamodb:PutItem", "dynamodb:UpdateItem"]
                            .contains(&op.action.as_str());
                        if writes {
                            assert_eq!(
                                t.ttl.as_deref(),
                                Some(TTL_ATTRIBUTE),
                                "{}.{method} writes {TTL_ATTRIBUTE} to {address}, which has no TTL on it",
                                adapter.name
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(
        checked > 0,
        "no table key, index or TTL use was found in the adapters"
    );
}

/// `index: "…", key_attribute: "…"` pairs anywhere in the adapter's file.
fn adapter_index_keys(
    d: &Deployment,
    adapter: &infra_check::code::Adapter,
) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = adapter
        .methods
        .values()
        .flat_map(|b| b.index_keys.clone())
        .collect();
    pairs.extend(
        d.adapters
            .functions
            .iter()
            .filter(|(file, _, _)| *file == adapter.file)
            .flat_map(|(_, _, b)| b.index_keys.clone()),
    );
    pairs.sort();
    pairs.dedup();
    pairs
}

#[test]
fn every_ttl_the_tables_declare_is_written_by_the_code() {
    let d = deployment();
    for (name, _) in d.module.resources_of("aws_dynamodb_table") {
        let address = format!("aws_dynamodb_table.{name}");
        let Some(ttl) = table(&d.module, &address).ttl else {
            continue;
        };
        let written = d.functions.values().any(|f| {
            f.instances.iter().any(|i| {
                let adapter = &d.adapters.adapters[&i.adapter];
                let resources = d.resources_of(f, i).unwrap();
                let fields: BTreeSet<String> = resources.keys().cloned().collect();
                adapter.methods.keys().any(|m| {
                    d.adapters.literals(adapter, m).contains(&ttl)
                        && d.adapters
                            .ops(adapter, m, &fields)
                            .unwrap()
                            .iter()
                            .any(|o| resources[&o.field] == address)
                })
            })
        });
        assert!(
            written,
            "{address} expires items by {ttl}, which no adapter writes to it"
        );
    }
}

#[test]
fn each_role_allows_exactly_what_its_code_and_lambda_need() {
    let d = deployment();
    let mut report = String::new();
    for name in d.functions.keys() {
        let diff = d.policy_diff(name).unwrap();
        if !diff.is_empty() {
            report.push_str(&format!(
                "\n{name}:\n  missing (called by the code): {:?}\n  missing (needed by Lambda): {:?}\n  extra (nothing calls them): {:?}",
                diff.missing, diff.missing_platform, diff.extra
            ));
        }
        let code = d.code_permissions(&d.functions[name]).unwrap();
        assert!(
            !code.is_empty(),
            "{name}: no SDK calls found in the code it uses"
        );
    }
    assert!(
        report.is_empty(),
        "IAM policies (infra/modules/orders/iam.tf) and code disagree:{report}"
    );
}

#[test]
fn the_check_catches_a_missing_and_an_extra_permission() {
    let dir = repo_root().join("infra/modules/orders");
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "tf") {
            let mut text = std::fs::read_to_string(&path).unwrap();
            if path.ends_with("iam.tf") {
                // query may no longer Scan the catalog, but may now delete orders.
                let scan =
                    r#"Action   = ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Scan"]"#;
                assert!(
                    text.contains(scan),
                    "iam.tf changed: update this test's edit"
                );
                text = text.replace(
                    scan,
                    r#"Action   = ["dynamodb:BatchGetItem", "dynamodb:GetItem"]"#,
                );
                let orders = r#"Action   = ["dynamodb:DescribeTable", "dynamodb:GetItem"]"#;
                assert!(
                    text.contains(orders),
                    "iam.tf changed: update this test's edit"
                );
                text = text.replace(orders, r#"Action   = ["dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:GetItem"]"#);
            }
            sources.push((path.display().to_string(), text));
        }
    }
    let d = Deployment::load_with(Module::from_sources(&sources).unwrap()).unwrap();
    let diff = d.policy_diff("query").unwrap();
    assert_eq!(
        diff.missing,
        [(
            "dynamodb:Scan".to_owned(),
            "aws_dynamodb_table.products".to_owned()
        )]
    );
    assert_eq!(
        diff.extra,
        [(
            "dynamodb:DeleteItem".to_owned(),
            "aws_dynamodb_table.orders".to_owned()
        )]
    );
}

#[test]
fn stream_consumers_are_mapped_with_the_settings_their_code_relies_on() {
    let d = deployment();
    let consumers = d.stream_consumers().unwrap();
    let in_code: BTreeSet<&String> = d
        .functions
        .values()
        .filter(|f| f.type_names.contains("KinesisEvent"))
        .map(|f| &f.name)
        .collect();
    assert_eq!(
        in_code,
        consumers.keys().collect::<BTreeSet<_>>(),
        "functions handling KinesisEvent (left) and local.stream_consumers (right) differ"
    );
    let mapping = d
        .module
        .resource("aws_lambda_event_source_mapping", "stream")
        .unwrap();
    for (name, dlq) in &consumers {
        let function = &d.functions[name];
        let each = Each {
            key: Some(name.clone()),
            value: Some(Value::Str(dlq.clone())),
        };
        let attr = |a: &str| d.module.attr(mapping, a, &each);
        if function.type_names.contains("KinesisEventResponse") {
            assert_eq!(
                attr("function_response_types").map(|v| v.strings()),
                Some(vec!["ReportBatchItemFailures".to_owned()]),
                "{name} answers with batchItemFailures: its mapping must report them"
            );
        }
        // Per-shard order (process-order) and per-shard watermarks (aggregate) need one
        // concurrent batch per shard.
        assert_eq!(
            attr("parallelization_factor"),
            Some(Value::Str("1".into())),
            "{name}"
        );
        // The function's own dead letters and the mapping's on-failure records share a queue.
        let env = d.environment(name).unwrap();
        let destination = blocks(mapping, "destination_config")
            .flat_map(|b| blocks(&b.body, "on_failure"))
            .find_map(|b| d.module.attr(&b.body, "destination_arn", &each))
            .and_then(|v| v.as_str().map(resource_ref));
        assert_eq!(
            destination,
            env.get("DLQ_URL").map(|u| resource_ref(u)),
            "{name}: on-failure destination and DLQ_URL name different queues"
        );
    }
}

#[test]
fn change_consumers_are_mapped_to_the_orders_table_stream_in_order_and_without_skipping() {
    let d = deployment();
    let consumers = d.change_consumers().unwrap();
    let in_code: BTreeSet<&String> = d
        .functions
        .values()
        .filter(|f| f.type_names.contains("DynamoDbEventResponse"))
        .map(|f| &f.name)
        .collect();
    assert_eq!(
        in_code,
        consumers.keys().collect::<BTreeSet<_>>(),
        "functions answering DynamoDbEventResponse (left) and local.change_consumers (right) differ"
    );
    let mapping = d
        .module
        .resource("aws_lambda_event_source_mapping", "changes")
        .unwrap();
    let orders = d.module.resource("aws_dynamodb_table", "orders").unwrap();
    let none = Each::default();
    assert_eq!(
        d.module.attr(orders, "stream_view_type", &none),
        Some(Value::Str("NEW_AND_OLD_IMAGES".into())),
        "the relay tells a new version from a rewrite by the old image"
    );
    for (name, dlq) in &consumers {
        let each = Each {
            key: Some(name.clone()),
            value: Some(Value::Str(dlq.clone())),
        };
        let attr = |a: &str| d.module.attr(mapping, a, &each);
        assert_eq!(
            attr("event_source_arn").and_then(|v| v.as_str().map(resource_ref)),
            Some("aws_dynamodb_table.orders".to_owned())
        );
        assert_eq!(
            attr("function_response_types").map(|v| v.strings()),
            Some(vec!["ReportBatchItemFailures".to_owned()])
        );
        // Versions of one order in order; none ever skipped.
        assert_eq!(attr("parallelization_factor"), Some(Value::Str("1".into())));
        assert_eq!(
            attr("maximum_retry_attempts"),
            Some(Value::Str("-1".into()))
        );
        let env = d.environment(name).unwrap();
        let destination = blocks(mapping, "destination_config")
            .flat_map(|b| blocks(&b.body, "on_failure"))
            .find_map(|b| d.module.attr(&b.body, "destination_arn", &each))
            .and_then(|v| v.as_str().map(resource_ref));
        assert_eq!(destination, env.get("DLQ_URL").map(|u| resource_ref(u)));
    }
}

/// The scopes each route's JWT authorizer demands (`local.route_scopes`; absent: public) are
/// the `security` the OpenAPI document declares for the operation — the role × route matrix
/// the e2e tests run (tests/e2e/openapi.rs `role_matrix`) is generated from the document, so
/// this ties it to what is deployed.
#[test]
fn the_documents_security_is_what_the_authorizer_demands() {
    let d = deployment();
    let module_scopes = d.module.local("route_scopes").unwrap();
    let deployed: BTreeMap<String, BTreeSet<String>> = module_scopes
        .as_map()
        .expect("local.route_scopes is an object")
        .iter()
        .map(|(route, scopes)| {
            let scopes = scopes
                .as_list()
                .unwrap_or_else(|| panic!("{route}: scopes are a list, not {scopes:?}"))
                .iter()
                .map(|s| s.as_str().unwrap_or_default().to_owned())
                .collect();
            (route.clone(), scopes)
        })
        .collect();
    let routes = d.module.local("routes").unwrap();
    let document: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("api/openapi.json")).unwrap(),
    )
    .unwrap();
    for route in routes.as_map().expect("local.routes").keys() {
        let (method, path) = route.split_once(' ').unwrap();
        let operation = &document["paths"][path][method.to_ascii_lowercase()];
        assert!(operation.is_object(), "{route} is not documented");
        let documented: BTreeSet<String> = operation["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{route} declares no security"))
            .iter()
            .flat_map(|r| r["signIn"].as_array().cloned().unwrap_or_default())
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect();
        let want = deployed.get(route).cloned().unwrap_or_default();
        assert_eq!(
            documented, want,
            "{route}: the document's scopes vs the authorizer's"
        );
    }
}
