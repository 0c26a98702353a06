//! Cross-checks between the code and the Terraform that deploys it, without AWS: every
//! function is deployed, reads only environment variables Terraform sets, serves exactly the
//! routes the API declares, finds the table keys, indexes and TTL attributes it uses, and gets
//! exactly the IAM permissions its SDK calls need — no fewer (it would fail at run time on AWS,
//! where the emulator enforces nothing) and no more.
//!
//! # Layout
//! - [`terraform`]: the module's locals and resources, parsed with `hcl-rs`, and a small
//!   evaluator for what the checks read (environment, policies, mappings).
//! - [`code`]: the adapters' SDK calls and each function's configuration, adapters, calls and
//!   routes, read with `syn`.
//! - this file: the model both are turned into — per function, the set of (IAM action,
//!   resource) pairs — and the permissions Lambda itself needs, which no code shows.
//!
//! The checks themselves are the tests in `tests/cross_check.rs`.

pub mod code;
pub mod terraform;

use anyhow::{Context as _, Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use terraform::{Each, Module, Value, resource_ref};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/infra sits two levels below the repository root")
        .to_path_buf()
}

/// One permission: an IAM action on a resource, the resource named as Terraform names it
/// (`aws_dynamodb_table.orders`, `aws_dynamodb_table.orders/index/byCustomer`,
/// `aws_apigatewayv2_api.live/live/POST/@connections/*`, `local.kms_key_arn`, `*`).
///
/// A table's indexes are compared one by one: `<table>/index/*` stands for every index the
/// table declares (what IAM matches it against), so a policy may name the indexes or use
/// the wildcard, and either way grants no index the code does not query.
pub type Permission = (String, String);

/// An event source mapping kind: (mapping resource, its consumers, what Lambda reads the
/// source with, the account-level listing action).
type MappedSource = (
    &'static str,
    BTreeMap<String, String>,
    &'static [&'static str],
    &'static str,
);

/// Environment variables Lambda sets itself (a function may read them; Terraform cannot set
/// them).
pub const LAMBDA_RESERVED_ENV: &[&str] = &[
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "_X_AMZN_TRACE_ID",
];

/// Environment variables Terraform sets for the runtime rather than for `Config::from_env`:
/// `RUST_LOG` is read by `lambda_runtime::tracing::init_default_subscriber`.
pub const RUNTIME_ENV: &[&str] = &["RUST_LOG"];

/// Everything both sides are read from.
pub struct Deployment {
    pub module: Module,
    pub adapters: code::Adapters,
    pub functions: BTreeMap<String, code::Function>,
}

impl Deployment {
    pub fn load() -> Result<Self> {
        let root = repo_root();
        Self::load_with(Module::load(&root.join("infra/modules/orders"))?)
    }

    /// The workspace's code against `module` (the real one, or an edited copy in tests).
    pub fn load_with(module: Module) -> Result<Self> {
        let root = repo_root();
        let adapters = code::Adapters::load(&root.join("crates/orders-aws/src"))?;
        let mut functions = BTreeMap::new();
        for entry in std::fs::read_dir(root.join("functions"))? {
            let dir = entry?.path();
            if dir.join("src/main.rs").is_file() {
                let f =
                    code::Function::load(&dir, &adapters, &root.join("crates/orders-core/src"))?;
                functions.insert(f.name.clone(), f);
            }
        }
        Ok(Self {
            module,
            adapters,
            functions,
        })
    }

    /// `local.functions`: binary → its settings.
    pub fn deployed(&self) -> Result<BTreeMap<String, Value>> {
        Ok(self
            .module
            .local("functions")?
            .as_map()
            .context("local.functions is not an object")?
            .clone())
    }

    /// The environment Terraform gives `function`: variable → value (as text).
    pub fn environment(&self, function: &str) -> Result<BTreeMap<String, String>> {
        let deployed = self.deployed()?;
        let settings = deployed
            .get(function)
            .with_context(|| format!("{function} is not in local.functions"))?;
        let env = settings
            .as_map()
            .and_then(|s| s.get("environment"))
            .and_then(Value::as_map)
            .with_context(|| {
                format!("local.functions[{function:?}].environment is not an object")
            })?;
        Ok(env
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect())
    }

    /// `local.stream_consumers`: binary → key of its dead-letter queue.
    pub fn stream_consumers(&self) -> Result<BTreeMap<String, String>> {
        self.consumers("stream_consumers")
    }

    /// Consumers of the orders table's change stream: binary => its DLQ key.
    pub fn change_consumers(&self) -> Result<BTreeMap<String, String>> {
        self.consumers("change_consumers")
    }

    fn consumers(&self, local: &str) -> Result<BTreeMap<String, String>> {
        Ok(self
            .module
            .local(local)?
            .as_map()
            .with_context(|| format!("local.{local} is not an object"))?
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect())
    }

    /// The Terraform resource each adapter field of `function` is bound to, through
    /// `from_sdk(&config.<field>)` → `Config` → environment variable → Terraform value.
    /// An endpoint URL (`https://${aws_apigatewayv2_api.live.api_endpoint}/live`) names its
    /// API and what follows the host: `aws_apigatewayv2_api.live/live`.
    pub fn resources_of(
        &self,
        function: &code::Function,
        instance: &code::Instance,
    ) -> Result<BTreeMap<String, String>> {
        let env = self.environment(&function.name)?;
        let mut resources = BTreeMap::new();
        for (field, config_field) in &instance.bindings {
            let var = function.config.get(config_field).with_context(|| {
                format!(
                    "{}: config.{config_field} (for {}.{field}) is not read from the environment",
                    function.name, instance.adapter
                )
            })?;
            let value = env.get(var).with_context(|| {
                format!(
                    "{}: {var} (for {}.{field}) is not set by Terraform",
                    function.name, instance.adapter
                )
            })?;
            let resource = resource_ref(value.split_once("://").map_or(value.as_str(), |(_, r)| r));
            if !resource.starts_with("aws_") {
                bail!(
                    "{}: {var} = {value} names no Terraform resource",
                    function.name
                );
            }
            resources.insert(field.clone(), resource);
        }
        Ok(resources)
    }

    /// What `function`'s code calls on AWS, as permissions; KMS permissions its calls imply on
    /// encrypted resources included.
    pub fn code_permissions(&self, function: &code::Function) -> Result<BTreeSet<Permission>> {
        let mut permissions = BTreeSet::new();
        for instance in &function.instances {
            let adapter = &self.adapters.adapters[&instance.adapter];
            let resources = self.resources_of(function, instance)?;
            let resource_fields: BTreeSet<String> = resources.keys().cloned().collect();
            for (role, method) in &function.calls {
                if *role != instance.role || !adapter.methods.contains_key(method) {
                    continue;
                }
                for field_op in self.adapters.ops(adapter, method, &resource_fields)? {
                    let resource = resources.get(&field_op.field).with_context(|| {
                        format!(
                            "{}: {}.{method} calls {} on self.{}, which is not built from the configuration",
                            function.name, instance.adapter, field_op.op.action, field_op.field
                        )
                    })?;
                    let op = &field_op.op;
                    let targets = if op.on_index {
                        let indexes = self.adapters.indexes(adapter, op);
                        if indexes.is_empty() {
                            vec![format!("{resource}/index/*")]
                        } else {
                            indexes
                                .iter()
                                .map(|i| format!("{resource}/index/{i}"))
                                .collect()
                        }
                    } else if let Some(method) = &op.connection_method {
                        // The management API of one stage: `<api>/<stage>/<METHOD>/@connections/<id>`.
                        let Some(("aws_apigatewayv2_api", stage)) = resource
                            .split_once('/')
                            .map(|(api, stage)| (api.split('.').next().unwrap_or(api), stage))
                        else {
                            bail!(
                                "{}: {}.{method} calls {} through {resource}, which is not a stage of an API Gateway API",
                                function.name,
                                instance.adapter,
                                op.action
                            );
                        };
                        if stage.is_empty() || stage.contains('/') {
                            bail!("{}: {resource} names no single stage", function.name);
                        }
                        vec![format!("{resource}/{method}/@connections/*")]
                    } else {
                        vec![resource.clone()]
                    };
                    for target in targets {
                        permissions.extend(self.per_index((op.action.clone(), target))?);
                    }
                    permissions.extend(self.implied_by_encryption(&op.action, resource)?);
                }
            }
        }
        Ok(permissions)
    }

    /// `<table>/index/*` as every index the table declares (see [`Permission`]); any other
    /// permission as it is.
    fn per_index(&self, (action, resource): Permission) -> Result<Vec<Permission>> {
        let Some(table) = resource.strip_suffix("/index/*") else {
            return Ok(vec![(action, resource)]);
        };
        let indexes = self.table_indexes(table)?;
        if indexes.is_empty() {
            return Ok(vec![(action, resource)]);
        }
        Ok(indexes
            .into_iter()
            .map(|i| (action.clone(), format!("{table}/index/{i}")))
            .collect())
    }

    /// The global secondary indexes `table` (`aws_dynamodb_table.<name>`) declares.
    pub fn table_indexes(&self, table: &str) -> Result<Vec<String>> {
        let Some(name) = table.strip_prefix("aws_dynamodb_table.") else {
            return Ok(Vec::new());
        };
        let body = self.module.resource("aws_dynamodb_table", name)?;
        let none = Each::default();
        Ok(terraform::blocks(body, "global_secondary_index")
            .filter_map(|i| self.module.attr(&i.body, "name", &none))
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect())
    }

    /// KMS permissions a call needs on a resource encrypted with a customer managed key:
    /// DynamoDB unwraps the table key with the caller's kms:Decrypt, a Kinesis producer needs
    /// kms:GenerateDataKey and an SQS producer both.
    fn implied_by_encryption(&self, action: &str, resource: &str) -> Result<Vec<Permission>> {
        let Some(key) = self.encryption_key(resource)? else {
            return Ok(Vec::new());
        };
        let actions: &[&str] = match action {
            "dynamodb:DescribeTable" => &[],
            a if a.starts_with("dynamodb:") => &["kms:Decrypt"],
            "kinesis:PutRecord" | "kinesis:PutRecords" => &["kms:GenerateDataKey"],
            "sqs:SendMessage" => &["kms:GenerateDataKey", "kms:Decrypt"],
            _ => &[],
        };
        Ok(actions
            .iter()
            .map(|a| ((*a).to_owned(), key.clone()))
            .collect())
    }

    /// The customer managed key a resource is encrypted with, if any.
    pub fn encryption_key(&self, resource: &str) -> Result<Option<String>> {
        let address = resource.split(['[', '/']).next().unwrap_or(resource);
        let Some((ty, name)) = address.split_once('.') else {
            return Ok(None);
        };
        let body = self.module.resource(ty, name)?;
        let none = Each::default();
        let key = match ty {
            "aws_dynamodb_table" => terraform::blocks(body, "server_side_encryption")
                .next()
                .and_then(|b| self.module.attr(&b.body, "kms_key_arn", &none)),
            "aws_kinesis_stream" => self.module.attr(body, "kms_key_id", &none),
            "aws_sqs_queue" => self.module.attr(body, "kms_master_key_id", &none),
            _ => None,
        };
        // AWS managed keys (alias/aws/…) need no permission of the caller.
        Ok(key
            .and_then(|k| k.as_str().map(str::to_owned))
            .filter(|k| !k.starts_with("alias/aws/")))
    }

    /// What Lambda itself does with `function`'s role, which no code of ours shows:
    /// - writes its logs to the function's log group, and traces to X-Ray when tracing is on
    ///   (X-Ray actions take no resource but `*`);
    /// - for a stream consumer, the event source mapping reads the stream (DescribeStream,
    ///   DescribeStreamSummary, GetShardIterator, GetRecords, ListShards; ListStreams is
    ///   account-level, so `*`), decrypts its records (kms:Decrypt on the stream's key) and
    ///   sends on-failure records to the mapping's destination queue;
    /// - for a consumer of the orders table's change stream, the same with the DynamoDB
    ///   Streams actions (the stream is encrypted with the table's key).
    pub fn platform_permissions(&self, function: &str) -> Result<BTreeSet<Permission>> {
        let mut permissions: BTreeSet<Permission> = BTreeSet::new();
        let log_group = format!("aws_cloudwatch_log_group.fn[{function:?}]:*");
        for action in ["logs:CreateLogStream", "logs:PutLogEvents"] {
            permissions.insert((action.to_owned(), log_group.clone()));
        }
        for action in ["xray:PutTelemetryRecords", "xray:PutTraceSegments"] {
            permissions.insert((action.to_owned(), "*".to_owned()));
        }
        let sources: [MappedSource; 2] = [
            (
                "stream",
                self.stream_consumers()?,
                &[
                    "kinesis:DescribeStream",
                    "kinesis:DescribeStreamSummary",
                    "kinesis:GetRecords",
                    "kinesis:GetShardIterator",
                    "kinesis:ListShards",
                ],
                "kinesis:ListStreams",
            ),
            (
                "changes",
                self.change_consumers()?,
                &[
                    "dynamodb:DescribeStream",
                    "dynamodb:GetRecords",
                    "dynamodb:GetShardIterator",
                ],
                "dynamodb:ListStreams",
            ),
        ];
        for (resource, consumers, reads, list) in sources {
            let Some(dlq) = consumers.get(function) else {
                continue;
            };
            let mapping = self
                .module
                .resource("aws_lambda_event_source_mapping", resource)?;
            let each = Each {
                key: Some(function.to_owned()),
                value: Some(Value::Str(dlq.clone())),
            };
            let stream = self
                .module
                .attr(mapping, "event_source_arn", &each)
                .and_then(|v| v.as_str().map(resource_ref))
                .with_context(|| format!("mapping {resource} has no event_source_arn"))?;
            for action in reads {
                permissions.insert(((*action).to_owned(), stream.clone()));
            }
            permissions.insert((list.to_owned(), "*".to_owned()));
            if let Some(key) = self.encryption_key(&stream)? {
                permissions.insert(("kms:Decrypt".to_owned(), key));
            }
            let destination = terraform::blocks(mapping, "destination_config")
                .flat_map(|d| terraform::blocks(&d.body, "on_failure"))
                .find_map(|f| self.module.attr(&f.body, "destination_arn", &each))
                .and_then(|v| v.as_str().map(resource_ref))
                .with_context(|| format!("mapping {resource} has no on-failure destination"))?;
            permissions.insert(("sqs:SendMessage".to_owned(), destination.clone()));
            permissions.extend(self.implied_by_encryption("sqs:SendMessage", &destination)?);
        }
        Ok(permissions)
    }

    /// Every (action, resource) the policy of `function`'s role allows.
    pub fn policy_permissions(&self, function: &str) -> Result<BTreeSet<Permission>> {
        let policy = self.module.resource("aws_iam_role_policy", "fn")?;
        let document = self
            .module
            .attr(policy, "policy", &Each::key(function))
            .context("aws_iam_role_policy.fn has no policy")?;
        let statements = document
            .as_map()
            .and_then(|d| d.get("Statement"))
            .and_then(Value::as_list)
            .context("the policy has no Statement list")?;
        let mut permissions = BTreeSet::new();
        for statement in statements {
            let s = statement.as_map().context("a statement is not an object")?;
            if s.get("Effect").and_then(Value::as_str) != Some("Allow") {
                bail!("{function}: only Allow statements are expected, found {s:?}");
            }
            if s.contains_key("NotAction")
                || s.contains_key("NotResource")
                || s.contains_key("Condition")
            {
                bail!(
                    "{function}: NotAction, NotResource and Condition are not checked; found {s:?}"
                );
            }
            let actions = s.get("Action").map(Value::strings).unwrap_or_default();
            let resources = s.get("Resource").map(Value::strings).unwrap_or_default();
            if actions.is_empty() || resources.is_empty() {
                bail!("{function}: a statement without Action or Resource: {s:?}");
            }
            for action in &actions {
                for resource in &resources {
                    permissions.extend(self.per_index((action.clone(), resource_ref(resource)))?);
                }
            }
        }
        Ok(permissions)
    }

    /// Permissions the policy lacks and permissions it grants beyond code and platform.
    pub fn policy_diff(&self, function: &str) -> Result<PolicyDiff> {
        let code = self
            .functions
            .get(function)
            .with_context(|| format!("no function {function} in the workspace"))?;
        let needed = self.code_permissions(code)?;
        let platform = self.platform_permissions(function)?;
        let granted = self.policy_permissions(function)?;
        Ok(PolicyDiff {
            missing: needed.difference(&granted).cloned().collect(),
            // X-Ray only when tracing is on, so the platform set is what *may* be granted.
            missing_platform: platform
                .iter()
                .filter(|(a, _)| !a.starts_with("xray:"))
                .filter(|p| !granted.contains(*p))
                .cloned()
                .collect(),
            extra: granted
                .iter()
                .filter(|p| !needed.contains(*p) && !platform.contains(*p))
                .cloned()
                .collect(),
        })
    }
}

#[derive(Debug, Default, PartialEq)]
pub struct PolicyDiff {
    /// The code calls these, the policy does not allow them.
    pub missing: Vec<Permission>,
    /// Lambda needs these (logs, event source mapping), the policy does not allow them.
    pub missing_platform: Vec<Permission>,
    /// Allowed without anything calling them.
    pub extra: Vec<Permission>,
}

impl PolicyDiff {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.missing_platform.is_empty() && self.extra.is_empty()
    }
}
