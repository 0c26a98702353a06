//! API Gateway HTTP API payload format 2.0: request → event, function result → HTTP response.
//!
//! Why: the functions use `lambda_http`, which only understands the event shape API Gateway
//! produces, and callers expect API Gateway's translation of the result (statusCode / headers /
//! cookies / base64, or "any JSON without statusCode is a 200 application/json body").
//! Reference: <https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html>.
//! Kept free of I/O so it can be unit-tested.

use std::collections::HashMap;

use anyhow::{Context as _, bail};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpRequestContext};
use aws_lambda_events::query_map::QueryMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Uri};
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::routes::percent_decode;

/// Per-request facts that do not come from the HTTP request itself.
#[derive(Debug, Clone)]
pub struct EventContext {
    pub account_id: String,
    pub api_id: String,
    /// `Host` as the client used it (e.g. `127.0.0.1:3000`).
    pub domain_name: String,
    pub source_ip: String,
    pub request_id: String,
    pub now: OffsetDateTime,
}

/// The request as received, after the body has been read.
#[derive(Debug, Clone)]
pub struct IncomingRequest {
    pub method: Method,
    pub uri: Uri,
    pub version: http::Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Fields of `ApiGatewayV2httpRequest` that exist only for custom authorizer v1 payloads and are
/// absent from real 2.0 events; removed after serialization.
const NON_V2_FIELDS: [&str; 6] = [
    "type",
    "methodArn",
    "httpMethod",
    "identitySource",
    "authorizationToken",
    "resource",
];

/// Builds the payload format 2.0 event for a request matched to `route_key`.
pub fn build_event(
    request: &IncomingRequest,
    route_key: &str,
    path_parameters: HashMap<String, String>,
    ctx: &EventContext,
) -> anyhow::Result<Value> {
    let raw_path = request.uri.path().to_owned();
    let raw_query = request.uri.query().unwrap_or_default().to_owned();

    // Cookies move from the `cookie` header(s) to `cookies`.
    let cookies: Vec<String> = request
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();

    // Header names are already lowercase in `http`; repeated headers are comma-joined.
    let mut headers = HeaderMap::new();
    for name in request.headers.keys() {
        if name == http::header::COOKIE {
            continue;
        }
        let joined = request
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(",");
        let value = HeaderValue::from_str(&joined)
            .with_context(|| format!("header {name} is not representable"))?;
        headers.insert(name.clone(), value);
    }
    let user_agent = headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    // What API Gateway adds in front of the integration.
    let trace_hex: String = ctx
        .request_id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(24)
        .collect();
    for (name, value) in [
        ("x-forwarded-for", ctx.source_ip.clone()),
        ("x-forwarded-proto", "http".to_owned()),
        (
            "x-forwarded-port",
            ctx.domain_name
                .rsplit_once(':')
                .map(|(_, port)| port.to_owned())
                .unwrap_or_else(|| "80".to_owned()),
        ),
        (
            "x-amzn-trace-id",
            format!("Root=1-{:08x}-{trace_hex}", ctx.now.unix_timestamp()),
        ),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers
                .entry(HeaderName::from_static(name))
                .or_insert(value);
        }
    }

    let mut query: HashMap<String, Vec<String>> = HashMap::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        query
            .entry(percent_decode(key, true))
            .or_default()
            .push(percent_decode(value, true));
    }

    let (body, is_base64_encoded) = if request.body.is_empty() {
        (None, false)
    } else {
        match std::str::from_utf8(&request.body) {
            Ok(text) => (Some(text.to_owned()), false),
            Err(_) => (Some(BASE64.encode(&request.body)), true),
        }
    };

    let domain_prefix = ctx
        .domain_name
        .split(':')
        .next()
        .and_then(|host| host.split('.').next())
        .unwrap_or_default()
        .to_owned();
    let time = ctx
        .now
        .format(format_description!(
            "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
        ))
        .context("formatting the request time")?;

    let mut http_ctx =
        aws_lambda_events::apigw::ApiGatewayV2httpRequestContextHttpDescription::default();
    http_ctx.method = request.method.clone();
    http_ctx.path = Some(raw_path.clone());
    http_ctx.protocol = Some(format!("{:?}", request.version));
    http_ctx.source_ip = Some(ctx.source_ip.clone());
    http_ctx.user_agent = Some(user_agent);

    let mut request_context = ApiGatewayV2httpRequestContext::default();
    request_context.route_key = Some(route_key.to_owned());
    request_context.account_id = Some(ctx.account_id.clone());
    request_context.stage = Some("$default".to_owned());
    request_context.request_id = Some(ctx.request_id.clone());
    request_context.apiid = Some(ctx.api_id.clone());
    request_context.domain_name = Some(ctx.domain_name.clone());
    request_context.domain_prefix = Some(domain_prefix);
    request_context.time = Some(time);
    request_context.time_epoch = i64::try_from(ctx.now.unix_timestamp_nanos() / 1_000_000)
        .context("request time out of range")?;
    request_context.http = http_ctx;

    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".to_owned());
    event.route_key = Some(route_key.to_owned());
    event.raw_path = Some(raw_path);
    event.raw_query_string = Some(raw_query);
    event.cookies = (!cookies.is_empty()).then_some(cookies);
    event.headers = headers;
    event.query_string_parameters = QueryMap::from(query);
    event.path_parameters = path_parameters;
    event.request_context = request_context;
    event.body = body;
    event.is_base64_encoded = is_base64_encoded;

    let mut value = serde_json::to_value(&event).context("serializing the 2.0 event")?;
    if let Some(object) = value.as_object_mut() {
        for field in NON_V2_FIELDS {
            object.remove(field);
        }
        // API Gateway omits stageVariables when the stage has none.
        if object
            .get("stageVariables")
            .and_then(Value::as_object)
            .is_some_and(|m| m.is_empty())
        {
            object.remove("stageVariables");
        }
    }
    Ok(value)
}

/// Translates a function result into the HTTP response API Gateway would send.
pub fn translate_response(result: &Value) -> anyhow::Result<Response<Bytes>> {
    let Some(object) = result.as_object().filter(|o| o.contains_key("statusCode")) else {
        // Valid JSON without statusCode: 200, application/json, the JSON itself as the body.
        let body = serde_json::to_vec(result).context("re-serializing the function result")?;
        return Response::builder()
            .status(StatusCode::OK)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Bytes::from(body))
            .context("building the response");
    };

    let status = match &object["statusCode"] {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .and_then(|code| u16::try_from(code).ok())
    .and_then(|code| StatusCode::from_u16(code).ok())
    .with_context(|| format!("invalid statusCode {}", object["statusCode"]))?;

    let mut response = Response::builder().status(status);
    if let Some(headers) = object.get("headers").and_then(Value::as_object) {
        for (name, value) in headers {
            let value = match value {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            let name = HeaderName::from_bytes(name.as_bytes())
                .with_context(|| format!("invalid response header name {name:?}"))?;
            let value = HeaderValue::from_str(&value)
                .with_context(|| format!("invalid value for response header {name}"))?;
            response = response.header(name, value);
        }
    }
    if let Some(cookies) = object.get("cookies").and_then(Value::as_array) {
        for cookie in cookies.iter().filter_map(Value::as_str) {
            let value = HeaderValue::from_str(cookie).context("invalid cookie")?;
            response = response.header(http::header::SET_COOKIE, value);
        }
    }
    let is_base64 = object
        .get("isBase64Encoded")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let body = match object.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(text)) if is_base64 => Bytes::from(
            BASE64
                .decode(text.trim())
                .context("body is not valid base64 although isBase64Encoded is true")?,
        ),
        Some(Value::String(text)) => Bytes::from(text.clone()),
        Some(other) if is_base64 => bail!("isBase64Encoded body must be a string, got {other}"),
        Some(other) => Bytes::from(other.to_string()),
    };
    response.body(body).context("building the response")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> EventContext {
        EventContext {
            account_id: "123456789012".to_owned(),
            api_id: "api123".to_owned(),
            domain_name: "127.0.0.1:3000".to_owned(),
            source_ip: "127.0.0.1".to_owned(),
            request_id: "3f6a2b1e-8c2d-4f1a-9b7e-1a2b3c4d5e6f".to_owned(),
            now: OffsetDateTime::from_unix_timestamp(1_584_039_838)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        }
    }

    fn request(
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> IncomingRequest {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap_or(HeaderName::from_static("x")),
                HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("")),
            );
        }
        IncomingRequest {
            method,
            uri: uri.parse().unwrap_or_default(),
            version: http::Version::HTTP_11,
            headers: map,
            body: Bytes::copy_from_slice(body),
        }
    }

    #[test]
    fn event_matches_the_documented_2_0_shape() {
        let req = request(
            Method::POST,
            "/orders/42?x=1&x=2&name=a%20b&flag",
            &[
                ("User-Agent", "curl/8"),
                ("Accept", "text/plain"),
                ("Accept", "application/json"),
                ("Cookie", "a=1; b=2"),
                ("Content-Type", "application/json"),
            ],
            br#"{"qty":1}"#,
        );
        let params = HashMap::from([("id".to_owned(), "42".to_owned())]);
        let event = build_event(&req, "POST /orders/{id}", params, &ctx())
            .unwrap_or_else(|e| panic!("{e:#}"));

        assert_eq!(event["version"], "2.0");
        assert_eq!(event["routeKey"], "POST /orders/{id}");
        assert_eq!(event["rawPath"], "/orders/42");
        assert_eq!(event["rawQueryString"], "x=1&x=2&name=a%20b&flag");
        assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
        assert_eq!(event["headers"]["accept"], "text/plain,application/json");
        assert_eq!(event["headers"]["user-agent"], "curl/8");
        assert_eq!(event["headers"]["x-forwarded-for"], "127.0.0.1");
        assert!(event["headers"].get("cookie").is_none());
        assert!(event["headers"].get("Accept").is_none());
        assert_eq!(event["queryStringParameters"]["x"], "1,2");
        assert_eq!(event["queryStringParameters"]["name"], "a b");
        assert_eq!(event["queryStringParameters"]["flag"], "");
        assert_eq!(event["pathParameters"], json!({"id": "42"}));
        assert_eq!(event["body"], r#"{"qty":1}"#);
        assert_eq!(event["isBase64Encoded"], false);

        let rc = &event["requestContext"];
        assert_eq!(rc["accountId"], "123456789012");
        assert_eq!(rc["apiId"], "api123");
        assert_eq!(rc["domainName"], "127.0.0.1:3000");
        assert_eq!(rc["domainPrefix"], "127");
        assert_eq!(rc["requestId"], ctx().request_id);
        assert_eq!(rc["routeKey"], "POST /orders/{id}");
        assert_eq!(rc["stage"], "$default");
        assert_eq!(rc["time"], "12/Mar/2020:19:03:58 +0000");
        assert_eq!(rc["timeEpoch"], 1_584_039_838_000_i64);
        assert_eq!(rc["http"]["method"], "POST");
        assert_eq!(rc["http"]["path"], "/orders/42");
        assert_eq!(rc["http"]["protocol"], "HTTP/1.1");
        assert_eq!(rc["http"]["sourceIp"], "127.0.0.1");
        assert_eq!(rc["http"]["userAgent"], "curl/8");

        for field in NON_V2_FIELDS.iter().chain(&["stageVariables"]) {
            assert!(event.get(*field).is_none(), "unexpected field {field}");
        }
        // What lambda_http will parse it as.
        let parsed: ApiGatewayV2httpRequest =
            serde_json::from_value(event).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.request_context.http.method, Method::POST);
    }

    #[test]
    fn binary_body_is_base64_and_empty_body_is_absent() {
        let req = request(Method::PUT, "/blob", &[], &[0, 159, 146, 150]);
        let event = build_event(&req, "$default", HashMap::new(), &ctx())
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["body"], BASE64.encode([0u8, 159, 146, 150]));
        assert_eq!(event["rawQueryString"], "");
        assert!(event.get("queryStringParameters").is_none());
        assert!(event.get("pathParameters").is_none());
        assert!(event.get("cookies").is_none());

        let req = request(Method::GET, "/", &[], b"");
        let event = build_event(&req, "$default", HashMap::new(), &ctx())
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(event.get("body").is_none());
        assert_eq!(event["isBase64Encoded"], false);
    }

    #[test]
    fn response_with_status_code_headers_and_cookies() {
        let response = translate_response(&json!({
            "statusCode": 201,
            "headers": {"content-type": "application/json", "x-count": 3},
            "cookies": ["a=1; Path=/", "b=2"],
            "body": "{\"ok\":true}",
            "isBase64Encoded": false
        }))
        .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["x-count"], "3");
        let cookies: Vec<_> = response.headers().get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1; Path=/", "b=2"]);
        assert_eq!(response.body().as_ref(), br#"{"ok":true}"#);
    }

    #[test]
    fn response_base64_body_is_decoded() {
        let response = translate_response(&json!({
            "statusCode": 200,
            "body": BASE64.encode([0u8, 1, 2, 255]),
            "isBase64Encoded": true
        }))
        .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(response.body().as_ref(), &[0u8, 1, 2, 255]);

        let bad = translate_response(&json!({
            "statusCode": 200, "body": "%%%", "isBase64Encoded": true
        }));
        assert!(bad.is_err());
    }

    #[test]
    fn json_without_status_code_is_a_200_json_body() {
        for result in [
            json!({"orders": [1, 2]}),
            json!([1, 2]),
            json!("hi"),
            json!(null),
        ] {
            let response = translate_response(&result).unwrap_or_else(|e| panic!("{e:#}"));
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()["content-type"], "application/json");
            let body: Value =
                serde_json::from_slice(response.body()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(body, result);
        }
    }

    #[test]
    fn empty_body_and_invalid_status() {
        let response =
            translate_response(&json!({"statusCode": "204"})).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert!(response.body().is_empty());
        assert!(translate_response(&json!({"statusCode": 99_999})).is_err());
        assert!(translate_response(&json!({"statusCode": "abc"})).is_err());
    }
}
