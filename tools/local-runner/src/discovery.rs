//! Reads what Terraform deployed to the emulator: functions and the HTTP API's routes.
//!
//! Why: the emulator is the single source of truth for configuration (environment variables,
//! timeouts, memory, routes). Reading it instead of duplicating Terraform's values means the
//! local stack runs with exactly what was deployed. Functions declare the binary that implements
//! them with the `orders:binary` tag (set in `infra/modules/orders/lambda.tf`). The WebSocket
//! API is read by [`crate::websocket::discovery`], with the integration resolution shared here.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use aws_config::SdkConfig;
use tracing::{debug, info, warn};

use crate::authorizer::JwtAuthorizer;
use crate::gateway::{RouteAuth, RouteTarget};
use crate::instances::FunctionConfig;
use crate::routes::RouteTable;
use aws_sdk_apigatewayv2::types::AuthorizationType;
use std::sync::Arc;

/// Tag naming the binary (in `--bin-dir`) that implements a function.
pub const BINARY_TAG: &str = "orders:binary";

/// Lambda's default timeout when the emulator does not report one.
const DEFAULT_TIMEOUT_SECS: i32 = 3;
const DEFAULT_MEMORY_MB: i32 = 128;

/// Reads every function tagged with [`BINARY_TAG`] and checks its binary exists in `bin_dir`.
pub async fn discover_functions(
    sdk: &SdkConfig,
    bin_dir: &Path,
) -> anyhow::Result<Vec<FunctionConfig>> {
    let client = aws_sdk_lambda::Client::new(sdk);
    let mut names = Vec::new();
    let mut pages = client.list_functions().into_paginator().items().send();
    while let Some(item) = pages.next().await {
        let function = item.context("ListFunctions failed (is the emulator running?)")?;
        if let Some(name) = function.function_name() {
            names.push(name.to_owned());
        }
    }

    let mut functions = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        let output = client
            .get_function()
            .function_name(&name)
            .send()
            .await
            .with_context(|| format!("GetFunction {name}"))?;
        let config = output
            .configuration()
            .with_context(|| format!("GetFunction {name} returned no configuration"))?;
        let arn = config
            .function_arn()
            .with_context(|| format!("function {name} has no ARN"))?
            .to_owned();

        let mut tags: HashMap<String, String> = output.tags().cloned().unwrap_or_default();
        if tags.is_empty() {
            // Some emulators only return tags through ListTags.
            match client.list_tags().resource(&arn).send().await {
                Ok(listed) => tags = listed.tags().cloned().unwrap_or_default(),
                Err(err) => debug!(function = %name, "ListTags failed: {err}"),
            }
        }
        let Some(binary_name) = tags.get(BINARY_TAG) else {
            info!(function = %name, "skipping: no `{BINARY_TAG}` tag");
            continue;
        };
        let binary = bin_dir.join(binary_name);
        if !binary.is_file() {
            missing.push(format!("{name} → {}", binary.display()));
            continue;
        }

        let mut environment: BTreeMap<String, String> = config
            .environment()
            .and_then(|env| env.variables())
            .map(|vars| vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        if let Some(logging) = config.logging_config() {
            if let Some(format) = logging.log_format() {
                environment
                    .entry("AWS_LAMBDA_LOG_FORMAT".to_owned())
                    .or_insert_with(|| format.as_str().to_owned());
            }
            if let Some(level) = logging.application_log_level() {
                environment
                    .entry("AWS_LAMBDA_LOG_LEVEL".to_owned())
                    .or_insert_with(|| level.as_str().to_owned());
            }
        }
        let timeout_secs = config
            .timeout()
            .filter(|t| *t > 0)
            .unwrap_or(DEFAULT_TIMEOUT_SECS);
        functions.push(FunctionConfig {
            name,
            arn,
            binary,
            environment,
            timeout: Duration::from_secs(u64::from(timeout_secs.unsigned_abs())),
            memory_mb: config
                .memory_size()
                .filter(|m| *m > 0)
                .unwrap_or(DEFAULT_MEMORY_MB),
        });
    }
    if !missing.is_empty() {
        bail!(
            "function binaries not found (run `cargo build` first, or pass --bin-dir):\n  {}",
            missing.join("\n  ")
        );
    }
    Ok(functions)
}

/// Reads the routes and integrations of HTTP API `api_id` and maps each route to a function
/// from `functions` (by ARN or name).
pub async fn discover_routes(
    sdk: &SdkConfig,
    api_id: &str,
    functions: &[FunctionConfig],
) -> anyhow::Result<RouteTable<RouteTarget>> {
    let client = aws_sdk_apigatewayv2::Client::new(sdk);
    let integrations = read_integrations(&client, api_id).await?;

    let mut authorizers: HashMap<String, Arc<JwtAuthorizer>> = HashMap::new();
    let mut table = RouteTable::new();
    for route in read_routes(&client, api_id).await? {
        let Some(route_key) = route.route_key() else {
            continue;
        };
        let mut target = resolve_target(route.target(), &integrations, functions);
        if route.authorization_type() == Some(&AuthorizationType::Jwt) {
            let id = route.authorizer_id().unwrap_or_default();
            let authorizer = match authorizers.get(id) {
                Some(known) => Arc::clone(known),
                None => {
                    let found = discover_authorizer(&client, api_id, id)
                        .await
                        .with_context(|| format!("the authorizer of route `{route_key}`"))?;
                    authorizers.insert(id.to_owned(), Arc::clone(&found));
                    found
                }
            };
            target.auth = Some(RouteAuth {
                authorizer,
                scopes: route.authorization_scopes().to_vec(),
            });
        }
        if target.function.is_none() {
            warn!(route = route_key, integration = %target.integration, "route does not lead to a runnable function");
        }
        table
            .insert(route_key, target)
            .with_context(|| format!("route `{route_key}` of API {api_id}"))?;
    }
    if table.is_empty() {
        warn!(api_id, "the API has no routes; every request will get 404");
    }
    Ok(table)
}

/// An integration's URI and payload format version, by integration id.
/// Every route of API `api_id` (GetRoutes, all pages: the SDK has no paginator for it).
pub(crate) async fn read_routes(
    client: &aws_sdk_apigatewayv2::Client,
    api_id: &str,
) -> anyhow::Result<Vec<aws_sdk_apigatewayv2::types::Route>> {
    let mut routes = Vec::new();
    let mut next_token = None;
    loop {
        let page = client
            .get_routes()
            .api_id(api_id)
            .set_next_token(next_token.take())
            .send()
            .await
            .with_context(|| format!("GetRoutes for API {api_id}"))?;
        routes.extend(page.items().iter().cloned());
        match page.next_token() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
            _ => break,
        }
    }
    Ok(routes)
}

pub(crate) type Integrations = HashMap<String, (String, Option<String>)>;

/// Reads every integration of API `api_id` (HTTP or WebSocket).
pub(crate) async fn read_integrations(
    client: &aws_sdk_apigatewayv2::Client,
    api_id: &str,
) -> anyhow::Result<Integrations> {
    let mut integrations = Integrations::new();
    let mut next_token = None;
    loop {
        let page = client
            .get_integrations()
            .api_id(api_id)
            .set_next_token(next_token.take())
            .send()
            .await
            .with_context(|| format!("GetIntegrations for API {api_id} (does the API exist?)"))?;
        for integration in page.items() {
            let Some(id) = integration.integration_id() else {
                continue;
            };
            integrations.insert(
                id.to_owned(),
                (
                    integration.integration_uri().unwrap_or_default().to_owned(),
                    integration.payload_format_version().map(str::to_owned),
                ),
            );
        }
        match page.next_token() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
            _ => break,
        }
    }
    Ok(integrations)
}

/// The JWT authorizer `id` of API `api_id` (GetAuthorizer: the emulator has no list call).
async fn discover_authorizer(
    client: &aws_sdk_apigatewayv2::Client,
    api_id: &str,
    id: &str,
) -> anyhow::Result<Arc<JwtAuthorizer>> {
    let authorizer = client
        .get_authorizer()
        .api_id(api_id)
        .authorizer_id(id)
        .send()
        .await
        .with_context(|| format!("GetAuthorizer {id} of API {api_id}"))?;
    let jwt = authorizer
        .jwt_configuration()
        .with_context(|| format!("authorizer {id} of API {api_id} is not a JWT authorizer"))?;
    Ok(Arc::new(JwtAuthorizer::new(
        authorizer.name().unwrap_or(id).to_owned(),
        jwt.issuer().unwrap_or_default().to_owned(),
        jwt.audience().to_vec(),
    )))
}

fn resolve_target(
    target: Option<&str>,
    integrations: &Integrations,
    functions: &[FunctionConfig],
) -> RouteTarget {
    let resolved = resolve_integration(target, integrations, functions);
    if let Some(version) = resolved.payload_version.as_deref().filter(|v| *v != "2.0") {
        warn!(
            integration = %resolved.integration,
            version, "only payload format 2.0 is emulated; sending 2.0 events"
        );
    }
    RouteTarget {
        function: resolved.function,
        integration: resolved.integration,
        auth: None,
    }
}

/// What a route's `target` (`integrations/<id>`) leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvedIntegration {
    /// The runnable function, if the integration points at one of `functions`.
    pub function: Option<String>,
    /// Human-readable description for logs and the startup tables.
    pub integration: String,
    pub payload_version: Option<String>,
}

/// Follows a route's target to its integration and the integration's URI to a runnable
/// function (by ARN or name). Shared by the HTTP and the WebSocket API.
pub(crate) fn resolve_integration(
    target: Option<&str>,
    integrations: &Integrations,
    functions: &[FunctionConfig],
) -> ResolvedIntegration {
    let Some(integration_id) = target.and_then(|t| t.strip_prefix("integrations/")) else {
        return ResolvedIntegration {
            function: None,
            integration: format!("unsupported target {target:?}"),
            payload_version: None,
        };
    };
    let Some((uri, payload_version)) = integrations.get(integration_id) else {
        return ResolvedIntegration {
            function: None,
            integration: format!("missing integration {integration_id}"),
            payload_version: None,
        };
    };
    let function = function_from_integration_uri(uri).and_then(|wanted| {
        functions
            .iter()
            .find(|f| f.arn == wanted.arn || Some(f.name.as_str()) == wanted.name.as_deref())
            .map(|f| f.name.clone())
    });
    ResolvedIntegration {
        function,
        integration: format!("{integration_id} ({uri})"),
        payload_version: payload_version.clone(),
    }
}

/// The function an integration URI points at.
#[derive(Debug, PartialEq, Eq)]
pub struct FunctionRef {
    /// Unqualified function ARN (or the URI itself if it is not an ARN).
    pub arn: String,
    pub name: Option<String>,
}

/// Extracts the function from either a function ARN
/// (`arn:aws:lambda:us-east-1:123456789012:function:orders-query[:alias]`) or an API Gateway
/// invoke ARN (`arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/<function
/// ARN>/invocations`).
pub fn function_from_integration_uri(uri: &str) -> Option<FunctionRef> {
    let uri = uri.trim();
    if uri.is_empty() {
        return None;
    }
    let function_arn = match uri.split_once("/functions/") {
        Some((prefix, rest)) if prefix.starts_with("arn:") => {
            rest.strip_suffix("/invocations").unwrap_or(rest)
        }
        _ => uri,
    };
    let parts: Vec<&str> = function_arn.split(':').collect();
    if parts.len() >= 7 && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "function" {
        return Some(FunctionRef {
            arn: parts[..7].join(":"),
            name: Some(parts[6].to_owned()),
        });
    }
    if function_arn.starts_with("arn:") {
        return None;
    }
    // A bare function name.
    Some(FunctionRef {
        arn: function_arn.to_owned(),
        name: Some(function_arn.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoke_arn_and_function_arn_resolve_to_the_function() {
        let expected = Some(FunctionRef {
            arn: "arn:aws:lambda:us-east-1:123456789012:function:orders-query".to_owned(),
            name: Some("orders-query".to_owned()),
        });
        assert_eq!(
            function_from_integration_uri(
                "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:orders-query/invocations"
            ),
            expected
        );
        assert_eq!(
            function_from_integration_uri(
                "arn:aws:lambda:us-east-1:123456789012:function:orders-query"
            ),
            expected
        );
        assert_eq!(
            function_from_integration_uri(
                "arn:aws:lambda:us-east-1:123456789012:function:orders-query:live"
            ),
            expected
        );
        assert_eq!(
            function_from_integration_uri("orders-query").and_then(|f| f.name),
            Some("orders-query".to_owned())
        );
        assert_eq!(
            function_from_integration_uri("arn:aws:sqs:us-east-1:123456789012:queue"),
            None
        );
        assert_eq!(function_from_integration_uri(""), None);
    }

    #[test]
    fn routes_map_to_runnable_functions_only() {
        let functions = vec![FunctionConfig {
            name: "orders-query".to_owned(),
            arn: "arn:aws:lambda:us-east-1:123456789012:function:orders-query".to_owned(),
            binary: "query".into(),
            environment: BTreeMap::new(),
            timeout: Duration::from_secs(3),
            memory_mb: 128,
        }];
        let integrations = HashMap::from([
            (
                "abc".to_owned(),
                (
                    "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:orders-query/invocations".to_owned(),
                    Some("2.0".to_owned()),
                ),
            ),
            (
                "def".to_owned(),
                (
                    "arn:aws:lambda:us-east-1:123456789012:function:other".to_owned(),
                    None,
                ),
            ),
        ]);
        let target = resolve_target(Some("integrations/abc"), &integrations, &functions);
        assert_eq!(target.function.as_deref(), Some("orders-query"));
        assert!(
            resolve_target(Some("integrations/def"), &integrations, &functions)
                .function
                .is_none()
        );
        assert!(
            resolve_target(Some("integrations/zzz"), &integrations, &functions)
                .function
                .is_none()
        );
        assert!(
            resolve_target(None, &integrations, &functions)
                .function
                .is_none()
        );
    }
}
