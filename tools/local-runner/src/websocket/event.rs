//! The Lambda proxy events of a WebSocket API: `CONNECT`, `MESSAGE`, `DISCONNECT`.
//!
//! Why: functions deserialize these with `aws_lambda_events`' `ApiGatewayWebsocketProxyRequest`
//! (or read the JSON directly), so they must have API Gateway's shape:
//! <https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-integration-requests.html>.
//! The events are built as that struct, then brought to what API Gateway sends: absent
//! instead of `null` fields, no empty maps, and single-valued `queryStringParameters` (the
//! crate serializes its `QueryMap` multi-valued). Kept free of I/O so it can be unit-tested.

use std::collections::HashMap;

use anyhow::Context as _;
use aws_lambda_events::apigw::{
    ApiGatewayWebsocketProxyRequest, ApiGatewayWebsocketProxyRequestContext,
};
use aws_lambda_events::query_map::QueryMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::routes::percent_decode;
use crate::websocket::api::{CONNECT_ROUTE, DISCONNECT_ROUTE};
use crate::websocket::connections::ConnectionInfo;

/// Facts of one invocation that are not the connection's.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    pub api_id: &'a str,
    /// `requestContext.requestId` (and `extendedRequestId`).
    pub request_id: &'a str,
    pub now: OffsetDateTime,
}

/// The `$connect` event, from the upgrade request's headers and query string.
pub fn connect_event(
    connection: &ConnectionInfo,
    headers: &HeaderMap,
    raw_query: Option<&str>,
    invocation: &Invocation<'_>,
) -> anyhow::Result<Value> {
    let mut all_headers = headers.clone();
    // What API Gateway adds in front of the integration.
    let port = connection
        .domain_name
        .rsplit_once(':')
        .map(|(_, port)| port.to_owned())
        .unwrap_or_else(|| "80".to_owned());
    for (name, value) in [
        ("x-forwarded-for", connection.source_ip.clone()),
        ("x-forwarded-port", port),
        ("x-forwarded-proto", "http".to_owned()),
        (
            "x-amzn-trace-id",
            format!(
                "Root=1-{:08x}-{}",
                invocation.now.unix_timestamp(),
                trace_suffix(invocation.request_id)
            ),
        ),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            all_headers
                .entry(HeaderName::from_static(name))
                .or_insert(value);
        }
    }
    // Payload 1.0 semantics: `headers` keeps the last value of a repeated header.
    let mut last_values = HeaderMap::new();
    for (name, value) in &all_headers {
        last_values.insert(name.clone(), value.clone());
    }

    let mut multi_query: HashMap<String, Vec<String>> = HashMap::new();
    for pair in raw_query.unwrap_or_default().split('&') {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        multi_query
            .entry(percent_decode(key, true))
            .or_default()
            .push(percent_decode(value, true));
    }
    let single_query: Map<String, Value> = multi_query
        .iter()
        .filter_map(|(key, values)| Some((key.clone(), Value::String(values.last()?.clone()))))
        .collect();

    let mut event = ApiGatewayWebsocketProxyRequest::default();
    event.headers = last_values;
    event.multi_value_headers = all_headers;
    event.multi_value_query_string_parameters = QueryMap::from(multi_query);
    event.request_context = context(connection, CONNECT_ROUTE, "CONNECT", invocation)?;
    finish(&event, Some(single_query))
}

/// A message event for `route_key`. Text goes in `body` as it is, anything that is not UTF-8
/// base64-encoded (`isBase64Encoded: true`).
pub fn message_event(
    connection: &ConnectionInfo,
    route_key: &str,
    message_id: &str,
    message: &[u8],
    invocation: &Invocation<'_>,
) -> anyhow::Result<Value> {
    let mut request_context = context(connection, route_key, "MESSAGE", invocation)?;
    request_context.message_id = Some(message_id.to_owned());
    let mut event = ApiGatewayWebsocketProxyRequest::default();
    (event.body, event.is_base64_encoded) = match std::str::from_utf8(message) {
        Ok(text) => (Some(text.to_owned()), false),
        Err(_) => (Some(BASE64.encode(message)), true),
    };
    event.request_context = request_context;
    finish(&event, None)
}

/// The `$disconnect` event: how the connection ended.
pub fn disconnect_event(
    connection: &ConnectionInfo,
    status_code: u16,
    reason: &str,
    invocation: &Invocation<'_>,
) -> anyhow::Result<Value> {
    let mut request_context = context(connection, DISCONNECT_ROUTE, "DISCONNECT", invocation)?;
    request_context.disconnect_status_code = Some(i64::from(status_code));
    request_context.disconnect_reason = Some(reason.to_owned());
    // The headers API Gateway sends with `$disconnect`.
    let mut headers = HeaderMap::new();
    if let Ok(host) = HeaderValue::from_str(&connection.domain_name) {
        headers.insert(http::header::HOST, host);
    }
    for name in ["x-api-key", "x-forwarded-for", "x-restapi"] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from_static(""));
    }
    let mut event = ApiGatewayWebsocketProxyRequest::default();
    event.headers = headers.clone();
    event.multi_value_headers = headers;
    event.request_context = request_context;
    finish(&event, None)
}

fn context(
    connection: &ConnectionInfo,
    route_key: &str,
    event_type: &str,
    invocation: &Invocation<'_>,
) -> anyhow::Result<ApiGatewayWebsocketProxyRequestContext> {
    let mut context = ApiGatewayWebsocketProxyRequestContext::default();
    context.route_key = Some(route_key.to_owned());
    context.event_type = Some(event_type.to_owned());
    context.extended_request_id = Some(invocation.request_id.to_owned());
    context.request_time = Some(
        invocation
            .now
            .format(format_description!(
                "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
            ))
            .context("formatting the request time")?,
    );
    context.message_direction = Some("IN".to_owned());
    context.stage = Some(connection.stage.clone());
    context.connected_at = epoch_ms(connection.connected_at)?;
    context.request_time_epoch = epoch_ms(invocation.now)?;
    context.identity.source_ip = Some(connection.source_ip.clone());
    context.identity.user_agent = connection.user_agent.clone();
    context.request_id = Some(invocation.request_id.to_owned());
    context.domain_name = Some(connection.domain_name.clone());
    context.connection_id = Some(connection.connection_id.clone());
    context.apiid = Some(invocation.api_id.to_owned());
    Ok(context)
}

fn epoch_ms(at: OffsetDateTime) -> anyhow::Result<i64> {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).context("time out of range")
}

/// 24 hex digits for the trace id, derived from the request id.
fn trace_suffix(request_id: &str) -> String {
    request_id
        .bytes()
        .cycle()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Serializes the event and drops what API Gateway does not send (see the module docs).
fn finish(
    event: &ApiGatewayWebsocketProxyRequest,
    query: Option<Map<String, Value>>,
) -> anyhow::Result<Value> {
    let mut value = serde_json::to_value(event).context("serializing the WebSocket event")?;
    let object = value
        .as_object_mut()
        .context("the WebSocket event is not an object")?;
    prune(object);
    match query.filter(|q| !q.is_empty()) {
        Some(query) => {
            object.insert("queryStringParameters".to_owned(), Value::Object(query));
        }
        None => {
            object.remove("queryStringParameters");
            object.remove("multiValueQueryStringParameters");
        }
    }
    if let Some(context) = object
        .get_mut("requestContext")
        .and_then(Value::as_object_mut)
    {
        prune(context);
        if let Some(identity) = context.get_mut("identity").and_then(Value::as_object_mut) {
            prune(identity);
        }
    }
    Ok(value)
}

/// Removes `null` fields and empty maps.
fn prune(object: &mut Map<String, Value>) {
    object.retain(|_, value| match value {
        Value::Null => false,
        Value::Object(map) => !map.is_empty(),
        _ => true,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection() -> ConnectionInfo {
        ConnectionInfo {
            connection_id: "L0SM9cOFvHcCIhw=".to_owned(),
            stage: "live".to_owned(),
            domain_name: "127.0.0.1:3003".to_owned(),
            source_ip: "127.0.0.1".to_owned(),
            user_agent: Some("test-client".to_owned()),
            connected_at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        }
    }

    fn invocation() -> Invocation<'static> {
        Invocation {
            api_id: "abc123",
            request_id: "WyHPAHbQBcwFWMw=",
            now: OffsetDateTime::from_unix_timestamp(1_700_000_001).unwrap(),
        }
    }

    /// What a function using `aws_lambda_events` would see.
    fn parse(event: &Value) -> ApiGatewayWebsocketProxyRequest {
        serde_json::from_value(event.clone()).unwrap_or_else(|e| panic!("{e}: {event}"))
    }

    #[test]
    fn connect_event_has_api_gateways_shape() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1:3003"));
        headers.append("x-multi", HeaderValue::from_static("one"));
        headers.append("x-multi", HeaderValue::from_static("two"));
        let event = connect_event(
            &connection(),
            &headers,
            Some("ticket=a%2Bb&tag=x&tag=y"),
            &invocation(),
        )
        .unwrap();

        let context = &event["requestContext"];
        assert_eq!(context["eventType"], "CONNECT");
        assert_eq!(context["routeKey"], "$connect");
        assert_eq!(context["messageDirection"], "IN");
        assert_eq!(context["stage"], "live");
        assert_eq!(context["connectionId"], "L0SM9cOFvHcCIhw=");
        assert_eq!(context["apiId"], "abc123");
        assert_eq!(context["domainName"], "127.0.0.1:3003");
        assert_eq!(context["requestId"], "WyHPAHbQBcwFWMw=");
        assert_eq!(context["extendedRequestId"], "WyHPAHbQBcwFWMw=");
        assert_eq!(context["connectedAt"], 1_700_000_000_000_i64);
        assert_eq!(context["requestTimeEpoch"], 1_700_000_001_000_i64);
        assert_eq!(context["requestTime"], "14/Nov/2023:22:13:21 +0000");
        assert_eq!(
            context["identity"],
            serde_json::json!({"sourceIp": "127.0.0.1", "userAgent": "test-client"})
        );
        assert!(context.get("messageId").is_none());
        assert!(context.get("accountId").is_none());
        assert_eq!(event["isBase64Encoded"], false);
        assert_eq!(event["headers"]["x-multi"], "two");
        assert_eq!(
            event["multiValueHeaders"]["x-multi"],
            serde_json::json!(["one", "two"])
        );
        assert_eq!(event["headers"]["x-forwarded-port"], "3003");
        assert_eq!(event["headers"]["x-forwarded-for"], "127.0.0.1");
        assert_eq!(event["queryStringParameters"]["ticket"], "a+b");
        assert_eq!(event["queryStringParameters"]["tag"], "y");
        assert_eq!(
            event["multiValueQueryStringParameters"]["tag"],
            serde_json::json!(["x", "y"])
        );
        for absent in [
            "body",
            "pathParameters",
            "stageVariables",
            "resource",
            "path",
        ] {
            assert!(event.get(absent).is_none(), "{absent}: {event}");
        }

        let parsed = parse(&event);
        assert_eq!(
            parsed.request_context.connection_id.as_deref(),
            Some("L0SM9cOFvHcCIhw=")
        );
        assert_eq!(parsed.query_string_parameters.first("ticket"), Some("a+b"));
        assert_eq!(
            parsed.multi_value_query_string_parameters.all("tag"),
            Some(vec!["x", "y"])
        );
    }

    #[test]
    fn connect_without_query_has_no_query_fields() {
        let event = connect_event(&connection(), &HeaderMap::new(), None, &invocation()).unwrap();
        assert!(event.get("queryStringParameters").is_none());
        assert!(event.get("multiValueQueryStringParameters").is_none());
        parse(&event);
    }

    #[test]
    fn message_event_carries_the_body_and_ids() {
        let event = message_event(
            &connection(),
            "subscribe",
            "fOCDzdZqIAMCLMQ=",
            br#"{"action":"subscribe"}"#,
            &invocation(),
        )
        .unwrap();
        assert_eq!(event["requestContext"]["eventType"], "MESSAGE");
        assert_eq!(event["requestContext"]["routeKey"], "subscribe");
        assert_eq!(event["requestContext"]["messageId"], "fOCDzdZqIAMCLMQ=");
        assert_eq!(event["body"], r#"{"action":"subscribe"}"#);
        assert_eq!(event["isBase64Encoded"], false);
        for absent in ["headers", "multiValueHeaders", "queryStringParameters"] {
            assert!(event.get(absent).is_none(), "{absent}: {event}");
        }
        assert_eq!(
            parse(&event).body.as_deref(),
            Some(r#"{"action":"subscribe"}"#)
        );

        let binary =
            message_event(&connection(), "$default", "m", &[0xff, 0x00], &invocation()).unwrap();
        assert_eq!(binary["body"], "/wA=");
        assert_eq!(binary["isBase64Encoded"], true);
    }

    #[test]
    fn disconnect_event_says_how_the_connection_ended() {
        let event = disconnect_event(&connection(), 1001, "Going away", &invocation()).unwrap();
        let context = &event["requestContext"];
        assert_eq!(context["eventType"], "DISCONNECT");
        assert_eq!(context["routeKey"], "$disconnect");
        assert_eq!(context["disconnectStatusCode"], 1001);
        assert_eq!(context["disconnectReason"], "Going away");
        assert_eq!(event["headers"]["host"], "127.0.0.1:3003");
        let parsed = parse(&event);
        assert_eq!(parsed.request_context.disconnect_status_code, Some(1001));
    }
}
