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

/// `aws_lambda_function.fn["live"].invoke_arn` → `live`.
fn function_of(reference: &str) -> Option<String> {
    resource_ref(reference)
        .strip_prefix("aws_lambda_function.fn[\"")?
        .strip_suffix("\"]")
        .map(str::to_owned)
}

/// Every instance of a resource: `each` for each `for_each` entry (a set's items are their
/// own keys), or one instance without `each`.
fn instances(d: &Deployment, address: &str, body: &hcl::Body) -> Vec<Each> {
    match d.module.attr(body, "for_each", &Each::default()) {
        None => vec![Each::default()],
        Some(Value::List(items)) => items
            .iter()
            .map(|k| Each {
                key: k.as_str().map(str::to_owned),
                value: Some(k.clone()),
            })
            .collect(),
        Some(Value::Map(m)) => m
            .iter()
            .map(|(k, v)| Each {
                key: Some(k.clone()),
                value: Some(v.clone()),
            })
            .collect(),
        Some(other) => panic!("{address}: for_each {other:?} is not readable"),
    }
}

/// The WebSocket APIs' routes (`$connect`, `subscribe`, …, aws_apigatewayv2_route with the
/// API's id) go to the function whose handler matches them, and API Gateway may invoke it.
#[test]
fn the_websocket_apis_route_exactly_what_the_handlers_match() {
    let d = deployment();
    let none = Each::default();
    let socket_apis: BTreeSet<String> = d
        .module
        .resources_of("aws_apigatewayv2_api")
        .filter(|(_, b)| {
            d.module.attr(b, "protocol_type", &none) == Some(Value::Str("WEBSOCKET".into()))
        })
        .map(|(name, _)| format!("aws_apigatewayv2_api.{name}"))
        .collect();
    // (API, route key) → function.
    let mut declared: BTreeMap<(String, String), String> = BTreeMap::new();
    for (name, body) in d.module.resources_of("aws_apigatewayv2_route") {
        let address = format!("aws_apigatewayv2_route.{name}");
        let Some(api) = d
            .module
            .attr(body, "api_id", &none)
            .and_then(|v| v.as_str().map(resource_ref))
            .filter(|api| socket_apis.contains(api))
        else {
            continue;
        };
        for each in instances(&d, &address, body) {
            let text = |b: &hcl::Body, a: &str, each: &Each| {
                d.module
                    .attr(b, a, each)
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_else(|| panic!("{address}: no {a}"))
            };
            let key = text(body, "route_key", &each);
            let target = text(body, "target", &each);
            let integration = resource_ref(
                target
                    .strip_prefix("integrations/")
                    .unwrap_or_else(|| panic!("{address}: target {target} is no integration")),
            );
            // aws_apigatewayv2_integration.<name>, or .<name>["<key>"] of a for_each.
            let (integration_name, integration_each) = match integration
                .strip_prefix("aws_apigatewayv2_integration.")
                .and_then(|n| n.split_once("[\""))
            {
                Some((n, k)) => (n.to_owned(), Each::key(k.trim_end_matches("\"]"))),
                None => (
                    integration
                        .strip_prefix("aws_apigatewayv2_integration.")
                        .unwrap_or_else(|| panic!("{address}: {integration} is no integration"))
                        .to_owned(),
                    Each::default(),
                ),
            };
            let integration_body = d
                .module
                .resource("aws_apigatewayv2_integration", &integration_name)
                .unwrap();
            let uri = text(integration_body, "integration_uri", &integration_each);
            let function = function_of(&uri)
                .unwrap_or_else(|| panic!("{integration} invokes {uri}, not a function of ours"));
            let previous = declared.insert((api.clone(), key.clone()), function);
            assert!(previous.is_none(), "{api} declares {key} twice");
        }
    }
    let mut served: BTreeMap<String, String> = BTreeMap::new();
    for f in d.functions.values() {
        for route in &f.socket_routes {
            let previous = served.insert(route.clone(), f.name.clone());
            assert!(
                previous.is_none(),
                "{route} is matched by {} and {}",
                f.name,
                previous.unwrap_or_default()
            );
        }
    }
    assert!(
        !served.is_empty(),
        "no WebSocket route key matches (`match …route_key… {{ Some(\"$connect\") … }}`) found in functions/*/src"
    );
    let by_key: BTreeMap<&String, &String> =
        declared.iter().map(|((_, key), f)| (key, f)).collect();
    assert_eq!(
        by_key.len(),
        declared.len(),
        "two WebSocket APIs declare the same route keys: the check cannot tell them apart"
    );
    for (route, function) in &served {
        assert_eq!(
            by_key.get(route).copied(),
            Some(function),
            "{function} matches the WebSocket route {route}; it must be routed there"
        );
    }
    for (route, function) in &by_key {
        assert_eq!(
            served.get(*route),
            Some(*function),
            "the WebSocket API routes {route} to {function}, whose handler does not match it"
        );
    }
    // API Gateway may invoke each function a WebSocket API routes to.
    for ((api, _), function) in &declared {
        let allowed = d
            .module
            .resources_of("aws_lambda_permission")
            .any(|(_, p)| {
                let attr = |a: &str| {
                    d.module
                        .attr(p, a, &none)
                        .and_then(|v| v.as_str().map(resource_ref))
                };
                attr("function_name") == Some(format!("aws_lambda_function.fn[{function:?}]"))
                    && attr("principal").as_deref() == Some("apigateway.amazonaws.com")
                    && attr("source_arn").is_some_and(|s| s.starts_with(&format!("{api}/")))
            });
        assert!(
            allowed,
            "no aws_lambda_permission lets {api} invoke {function}"
        );
    }
}

/// A URL in a function's environment built from an API's endpoint
/// (`https://${…api_endpoint}/<stage>`) names a stage of that API that is deployed; sockets
/// (`wss://`) are opened on WebSocket APIs, and a management client (an adapter's endpoint,
/// see `code::Adapter::endpoints`) talks `https://`.
#[test]
fn endpoint_urls_in_the_environment_name_deployed_stages() {
    let d = deployment();
    let none = Each::default();
    let mut checked = 0;
    for function in d.functions.values() {
        let env = d.environment(&function.name).unwrap();
        // The variables management clients are built for.
        let endpoint_vars: BTreeSet<&String> = function
            .instances
            .iter()
            .filter(|i| !d.adapters.adapters[&i.adapter].endpoints.is_empty())
            .filter_map(|i| i.bindings.get(infra_check::code::CLIENT_FIELD))
            .filter_map(|config_field| function.config.get(config_field))
            .collect();
        for (var, value) in &env {
            let Some((scheme, rest)) = value.split_once("://") else {
                continue;
            };
            let reference = resource_ref(rest);
            let Some((api, stage)) = reference.split_once('/') else {
                continue;
            };
            let Some(api_name) = api.strip_prefix("aws_apigatewayv2_api.") else {
                continue;
            };
            let protocol = d
                .module
                .attr(
                    d.module.resource("aws_apigatewayv2_api", api_name).unwrap(),
                    "protocol_type",
                    &none,
                )
                .and_then(|v| v.as_str().map(str::to_owned));
            let deployed = d
                .module
                .resources_of("aws_apigatewayv2_stage")
                .any(|(_, s)| {
                    d.module
                        .attr(s, "api_id", &none)
                        .and_then(|v| v.as_str().map(resource_ref))
                        .as_deref()
                        == Some(api)
                        && d.module.attr(s, "name", &none) == Some(Value::Str(stage.to_owned()))
                });
            assert!(
                deployed,
                "{}: {var} = {value}: {api} has no stage {stage}",
                function.name
            );
            if scheme == "wss" {
                assert_eq!(
                    protocol.as_deref(),
                    Some("WEBSOCKET"),
                    "{}: {var} opens sockets on {api}",
                    function.name
                );
            }
            if endpoint_vars.contains(var) {
                assert_eq!(
                    scheme, "https",
                    "{}: {var} is a management endpoint",
                    function.name
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "no API endpoint URL found in any environment");
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
                            None => d
                                .adapters
                                .index_keys(adapter)
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

/// The workspace's code against the module with `edits` (text → replacement) made to iam.tf.
fn with_iam_edits(edits: &[(&str, &str)]) -> Deployment {
    let dir = repo_root().join("infra/modules/orders");
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "tf") {
            let mut text = std::fs::read_to_string(&path).unwrap();
            if path.ends_with("iam.tf") {
                for (from, to) in edits {
                    assert!(
                        text.contains(from),
                        "iam.tf changed: update this test's edit of {from}"
                    );
                    text = text.replace(from, to);
                }
            }
            sources.push((path.display().to_string(), text));
        }
    }
    Deployment::load_with(Module::from_sources(&sources).unwrap()).unwrap()
}

fn permission(action: &str, resource: &str) -> (String, String) {
    (action.to_owned(), resource.to_owned())
}

#[test]
fn the_check_catches_a_missing_and_an_extra_permission() {
    // query may no longer Scan the catalog, but may now delete orders.
    let d = with_iam_edits(&[
        (
            r#"Action   = ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Scan"]"#,
            r#"Action   = ["dynamodb:BatchGetItem", "dynamodb:GetItem"]"#,
        ),
        (
            r#"Action   = ["dynamodb:DescribeTable", "dynamodb:GetItem"]"#,
            r#"Action   = ["dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:GetItem"]"#,
        ),
    ]);
    let diff = d.policy_diff("query").unwrap();
    assert_eq!(
        diff.missing,
        [permission("dynamodb:Scan", "aws_dynamodb_table.products")]
    );
    assert_eq!(
        diff.extra,
        [permission(
            "dynamodb:DeleteItem",
            "aws_dynamodb_table.orders"
        )]
    );
}

/// notify's pushes are checked on the stage's `@connections`, its Query per index.
#[test]
fn the_check_catches_pushes_and_queries_allowed_on_the_wrong_resource() {
    let connections =
        r#""${aws_apigatewayv2_api.live.execution_arn}/${local.live_stage}/POST/@connections/*""#;
    let by_audience = r#""${aws_dynamodb_table.connections.arn}/index/byAudience""#;

    // Any route of any stage instead of the live stage's sockets.
    let d = with_iam_edits(&[(
        connections,
        r#""${aws_apigatewayv2_api.live.execution_arn}/*""#,
    )]);
    let diff = d.policy_diff("notify").unwrap();
    assert_eq!(
        diff.missing,
        [permission(
            "execute-api:ManageConnections",
            "aws_apigatewayv2_api.live/live/POST/@connections/*"
        )]
    );
    assert_eq!(
        diff.extra,
        [permission(
            "execute-api:ManageConnections",
            "aws_apigatewayv2_api.live/*"
        )]
    );

    // The table instead of its index.
    let d = with_iam_edits(&[(by_audience, r#"aws_dynamodb_table.connections.arn"#)]);
    let diff = d.policy_diff("notify").unwrap();
    assert_eq!(
        diff.missing,
        [permission(
            "dynamodb:Query",
            "aws_dynamodb_table.connections/index/byAudience"
        )]
    );
    assert_eq!(
        diff.extra,
        [permission(
            "dynamodb:Query",
            "aws_dynamodb_table.connections"
        )]
    );

    // `/index/*` is every index the table declares: here byAudience alone, so it is the same.
    let d = with_iam_edits(&[(
        by_audience,
        r#""${aws_dynamodb_table.connections.arn}/index/*""#,
    )]);
    assert_eq!(d.policy_diff("notify").unwrap(), Default::default());
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
        // Per-shard order (process-order, and notify: an order's changes reach a socket in the
        // order they happened) and per-shard watermarks (aggregate) need one concurrent batch
        // per shard.
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

/// What a Kinesis consumer's code relies on when a record keeps failing.
#[derive(Debug)]
enum OnFailure {
    /// Retry until it succeeds: skipping a record would make the results wrong for good.
    NeverSkip,
    /// Give the record up to the DLQ after bounded retries, so that it does not hold up the
    /// records behind it; it can be replayed from there.
    GiveUp,
    /// Give it up soon, and push without waiting for a batch to fill: late is worthless.
    Fresh,
}

/// Each stream consumer, what it relies on and why. A new consumer must be added here.
const ON_FAILURE: &[(&str, OnFailure)] = &[
    // Per-shard watermarks make every retry exact, and a skipped batch would leave its events
    // out of the totals forever.
    ("aggregate", OnFailure::NeverSkip),
    // The same watermarks and the same reason, over storefront activity.
    ("aggregate-activity", OnFailure::NeverSkip),
    // A poison record must not block the orders behind it; orders-admin replays dead letters.
    ("process-order", OnFailure::GiveUp),
    // A push is a notice, not the record: orders and analytics stay in their tables, which
    // clients read again (crates/orders-core/src/live.rs), so a given-up record costs a
    // moment of freshness, never data; a push minutes late is only noise.
    ("notify", OnFailure::Fresh),
];

#[test]
fn stream_mappings_retry_as_each_consumer_needs() {
    let d = deployment();
    let consumers = d.stream_consumers().unwrap();
    let deployed: BTreeSet<&str> = consumers.keys().map(String::as_str).collect();
    let described: BTreeSet<&str> = ON_FAILURE.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        deployed, described,
        "local.stream_consumers (left) and ON_FAILURE (right) differ"
    );
    let mapping = d
        .module
        .resource("aws_lambda_event_source_mapping", "stream")
        .unwrap();
    for (name, dlq) in &consumers {
        let (_, needs) = ON_FAILURE
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name}: say in ON_FAILURE what its code relies on"));
        let each = Each {
            key: Some(name.clone()),
            value: Some(Value::Str(dlq.clone())),
        };
        let number = |a: &str| -> i64 {
            d.module
                .attr(mapping, a, &each)
                .and_then(|v| v.as_str().and_then(|s| s.parse().ok()))
                .unwrap_or_else(|| panic!("{name}: {a} is not a number"))
        };
        let retries = number("maximum_retry_attempts");
        let age = number("maximum_record_age_in_seconds");
        let window = number("maximum_batching_window_in_seconds");
        match needs {
            OnFailure::NeverSkip => assert_eq!(
                (retries, age),
                (-1, -1),
                "{name} must never skip a record: unbounded retries and record age"
            ),
            OnFailure::GiveUp => assert!(
                retries >= 0,
                "{name} gives a failing record up to its DLQ: retries must be bounded, not {retries}"
            ),
            OnFailure::Fresh => {
                assert!(
                    retries >= 0 && age > 0,
                    "{name} gives stale records up: retries ({retries}) and record age ({age}) must be bounded"
                );
                assert_eq!(window, 0, "{name} pushes at once: no batching window");
            }
        }
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
