//! Reads a WebSocket API from the emulator: route selection, stages, routes, integrations.
//!
//! Why: like the HTTP API (see [`crate::discovery`]), the emulator is the single source of
//! truth for what Terraform deployed; routes lead to functions through the same integration
//! resolution.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use aws_config::SdkConfig;
use aws_sdk_apigatewayv2::types::ProtocolType;
use tracing::warn;

use crate::discovery::{read_integrations, read_routes, resolve_integration};
use crate::instances::FunctionConfig;
use crate::websocket::api::{WsApi, WsRoute};
use crate::websocket::route_selection::RouteSelectionExpression;

/// API Gateway's default when an API has no route selection expression.
const DEFAULT_ROUTE_SELECTION: &str = "$request.body.action";

/// Reads WebSocket API `api_id` and maps each route to a function from `functions`.
pub async fn discover_ws_api(
    sdk: &SdkConfig,
    api_id: &str,
    functions: &[FunctionConfig],
) -> anyhow::Result<WsApi> {
    let client = aws_sdk_apigatewayv2::Client::new(sdk);
    let api = client
        .get_api()
        .api_id(api_id)
        .send()
        .await
        .with_context(|| format!("GetApi {api_id} (does the WebSocket API exist?)"))?;
    if api.protocol_type() != Some(&ProtocolType::Websocket) {
        bail!(
            "API {api_id} is not a WebSocket API (protocol {:?}); pass it as --api-id instead",
            api.protocol_type()
        );
    }
    let expression = api
        .route_selection_expression()
        .filter(|e| !e.is_empty())
        .unwrap_or(DEFAULT_ROUTE_SELECTION);
    let route_selection = RouteSelectionExpression::parse(expression);
    if !route_selection.is_supported() {
        warn!(
            api_id,
            expression,
            "only `$request.body.<path>` route selection is emulated; every message goes to $default"
        );
    }

    let mut stages = Vec::new();
    let mut next_token = None;
    loop {
        let page = client
            .get_stages()
            .api_id(api_id)
            .set_next_token(next_token.take())
            .send()
            .await
            .with_context(|| format!("GetStages for API {api_id}"))?;
        stages.extend(
            page.items()
                .iter()
                .filter_map(|s| s.stage_name())
                .map(str::to_owned),
        );
        match page.next_token() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
            _ => break,
        }
    }
    if stages.is_empty() {
        warn!(
            api_id,
            "the WebSocket API has no stage; no client can connect"
        );
    }

    let integrations = read_integrations(&client, api_id).await?;
    let mut routes = BTreeMap::new();
    for route in read_routes(&client, api_id).await? {
        let Some(route_key) = route.route_key() else {
            continue;
        };
        let resolved = resolve_integration(route.target(), &integrations, functions);
        if resolved.function.is_none() {
            warn!(route = route_key, integration = %resolved.integration, "WebSocket route does not lead to a runnable function");
        }
        routes.insert(
            route_key.to_owned(),
            WsRoute {
                function: resolved.function,
                integration: resolved.integration,
                route_response_selection_expression: route
                    .route_response_selection_expression()
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned),
            },
        );
    }
    if routes.is_empty() {
        warn!(api_id, "the WebSocket API has no routes");
    }
    Ok(WsApi {
        api_id: api_id.to_owned(),
        stages,
        route_selection,
        routes,
    })
}
