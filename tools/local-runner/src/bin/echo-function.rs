//! Test fixture (not deployed): a Lambda function that implements the Runtime API client by hand
//! with std networking and serde_json, so the runner's tests exercise the real HTTP contract with
//! a real child process and without the emulator.
//!
//! Behaviour, chosen by the event:
//! - `{"action":"sleep","ms":N}`: sleep N ms, then echo;
//! - `{"action":"exit"}`: exit(3) mid-invocation;
//! - `{"action":"error"}`: post an invocation error (`EchoError`);
//! - an API Gateway 2.0 event (`"version":"2.0"`): `/crash`, `/slow`, `/fail` behave like
//!   exit / sleep (60 s) / error; otherwise reply with a proxy response
//!   (`/plain` → JSON without statusCode, `/binary` → base64 body, else 201 + the event);
//! - a Kinesis event (`Records[].eventSource == "aws:kinesis"`): appends one JSON line
//!   `{"function","seqs","data","event"}` to `ECHO_INVOCATIONS_FILE` (if set), then looks at each
//!   record's decoded data: `poison` → invocation error (every time); `fail-once` → reported in
//!   `batchItemFailures` the first time this process sees that sequence number; `bad-id-once` →
//!   an empty `itemIdentifier` the first time. Replies `{"batchItemFailures":[...]}`;
//! - a DynamoDB Streams event (`eventSource == "aws:dynamodb"`): the same, with `seqs` from
//!   `dynamodb.SequenceNumber` and `data` = `"<eventName> <data>"` where `<data>` is the string
//!   attribute `data` of the new image (old image for `REMOVE`);
//! - an API Gateway WebSocket event (`requestContext.eventType`): appends one JSON line
//!   `{"function","eventType","routeKey","connectionId","event"}` to `ECHO_INVOCATIONS_FILE`
//!   (if set); `CONNECT` answers `{"statusCode": 403}` when the query has `deny=1` and fails
//!   (invocation error) with `fail=1`, else 200; a `MESSAGE` answers 200 with the body
//!   `{"routeKey","connectionId","body"}`, or fails when its body is `fail`;
//! - anything else: echo `{"event","requestId","functionArn","deadlineMs","traceId","pid","env"}`.
//!
//! Env: `ECHO_INIT_ERROR=1` posts `/runtime/init/error` and exits; `ECHO_INIT_EXIT=1` exits
//! before polling; `ECHO_INIT_SLEEP_MS` delays init.

use std::collections::HashSet;
use std::error::Error;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn request(api: &str, method: &str, path: &str, body: &[u8]) -> Result<HttpResponse> {
    let mut stream = TcpStream::connect(api)?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("malformed HTTP response")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("malformed status line")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok());
    if let Some(length) = length {
        body.truncate(length);
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn main() -> Result<()> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API")?;
    if let Ok(ms) = std::env::var("ECHO_INIT_SLEEP_MS") {
        std::thread::sleep(Duration::from_millis(ms.parse()?));
    }
    if std::env::var_os("ECHO_INIT_EXIT").is_some() {
        eprintln!("echo-function: exiting during init");
        std::process::exit(2);
    }
    if std::env::var_os("ECHO_INIT_ERROR").is_some() {
        let error = json!({"errorType": "EchoInitError", "errorMessage": "init failed on purpose"});
        request(
            &api,
            "POST",
            "/2018-06-01/runtime/init/error",
            error.to_string().as_bytes(),
        )?;
        std::process::exit(1);
    }
    println!("echo-function ready (pid {})", std::process::id());
    let mut seen: HashSet<String> = HashSet::new();

    loop {
        let next = request(&api, "GET", "/2018-06-01/runtime/invocation/next", b"")?;
        if next.status != 200 {
            return Err(format!("next returned {}", next.status).into());
        }
        let request_id = next
            .header("lambda-runtime-aws-request-id")
            .ok_or("no request id")?
            .to_owned();
        let event: Value = serde_json::from_slice(&next.body)?;

        let is_http = event.get("version").and_then(Value::as_str) == Some("2.0");
        let action = match event.get("rawPath").and_then(Value::as_str) {
            Some("/crash") if is_http => Some("exit"),
            Some("/slow") if is_http => Some("sleep"),
            Some("/fail") if is_http => Some("error"),
            _ => event.get("action").and_then(Value::as_str),
        };
        let result = match action {
            _ if is_stream_event(&event) => stream_batch(&event, &mut seen),
            _ if is_websocket_event(&event) => websocket_reply(&event),
            Some("exit") => {
                eprintln!("echo-function: exiting mid-invocation");
                std::process::exit(3);
            }
            Some("error") => {
                Err(json!({"errorType": "EchoError", "errorMessage": "asked to fail"}))
            }
            Some("sleep") => {
                let ms = event.get("ms").and_then(Value::as_u64).unwrap_or(60_000);
                std::thread::sleep(Duration::from_millis(ms));
                Ok(echo(&event, &request_id, &next))
            }
            _ if is_http => Ok(proxy_response(&event)),
            _ => Ok(echo(&event, &request_id, &next)),
        };
        let (path, body) = match result {
            Ok(body) => (
                format!("/2018-06-01/runtime/invocation/{request_id}/response"),
                body,
            ),
            Err(body) => (
                format!("/2018-06-01/runtime/invocation/{request_id}/error"),
                body,
            ),
        };
        let posted = request(&api, "POST", &path, body.to_string().as_bytes())?;
        if posted.status != 202 {
            eprintln!("echo-function: runtime API answered {}", posted.status);
        }
    }
}

fn is_stream_event(event: &Value) -> bool {
    matches!(
        event["Records"]
            .as_array()
            .and_then(|records| records.first())
            .and_then(|record| record["eventSource"].as_str()),
        Some("aws:kinesis" | "aws:dynamodb")
    )
}

/// Kinesis / DynamoDB Streams batch handler driven by markers in the records' data (see the
/// module docs).
fn stream_batch(event: &Value, seen: &mut HashSet<String>) -> std::result::Result<Value, Value> {
    let records = event["Records"].as_array().cloned().unwrap_or_default();
    let mut seqs = Vec::new();
    let mut data = Vec::new();
    for record in &records {
        if record["eventSource"] == "aws:dynamodb" {
            let change = &record["dynamodb"];
            seqs.push(
                change["SequenceNumber"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
            let image = if change["NewImage"].is_object() {
                &change["NewImage"]
            } else {
                &change["OldImage"]
            };
            data.push(format!(
                "{} {}",
                record["eventName"].as_str().unwrap_or_default(),
                image["data"]["S"].as_str().unwrap_or_default()
            ));
            continue;
        }
        let seq = record["kinesis"]["sequenceNumber"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(record["kinesis"]["data"].as_str().unwrap_or_default())
            .unwrap_or_default();
        seqs.push(seq);
        data.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    if let Ok(path) = std::env::var("ECHO_INVOCATIONS_FILE") {
        let line = json!({
            "function": std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default(),
            "seqs": seqs,
            "data": data,
            "event": event,
        });
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(format!("{line}\n").as_bytes()));
        if let Err(err) = written {
            eprintln!("echo-function: cannot append to {path}: {err}");
        }
    }
    if data.iter().any(|d| d.contains("poison")) {
        return Err(json!({"errorType": "PoisonRecord", "errorMessage": "poison record in batch"}));
    }
    let mut failures = Vec::new();
    for (seq, data) in seqs.iter().zip(&data) {
        let first_time = !seen.contains(seq);
        if data.contains("fail-once") && first_time {
            seen.insert(seq.clone());
            failures.push(json!({"itemIdentifier": seq}));
        } else if data.contains("bad-id-once") && first_time {
            seen.insert(seq.clone());
            failures.push(json!({"itemIdentifier": ""}));
        }
    }
    Ok(json!({"batchItemFailures": failures}))
}

fn is_websocket_event(event: &Value) -> bool {
    event["requestContext"]["eventType"].is_string() && event.get("version").is_none()
}

/// The WebSocket route handler (see the module docs).
fn websocket_reply(event: &Value) -> std::result::Result<Value, Value> {
    let context = &event["requestContext"];
    if let Ok(path) = std::env::var("ECHO_INVOCATIONS_FILE") {
        let line = json!({
            "function": std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default(),
            "eventType": context["eventType"],
            "routeKey": context["routeKey"],
            "connectionId": context["connectionId"],
            "event": event,
        });
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(format!("{line}\n").as_bytes()));
        if let Err(err) = written {
            eprintln!("echo-function: cannot append to {path}: {err}");
        }
    }
    let query = &event["queryStringParameters"];
    match context["eventType"].as_str() {
        Some("CONNECT") if query["fail"] == "1" => {
            Err(json!({"errorType": "EchoError", "errorMessage": "asked to fail"}))
        }
        Some("CONNECT") if query["deny"] == "1" => Ok(json!({"statusCode": 403})),
        Some("MESSAGE") if event["body"] == "fail" => {
            Err(json!({"errorType": "EchoError", "errorMessage": "asked to fail"}))
        }
        Some("MESSAGE") => Ok(json!({
            "statusCode": 200,
            "body": json!({
                "routeKey": context["routeKey"],
                "connectionId": context["connectionId"],
                "body": event["body"],
            })
            .to_string(),
        })),
        _ => Ok(json!({"statusCode": 200})),
    }
}

fn echo(event: &Value, request_id: &str, next: &HttpResponse) -> Value {
    let env: serde_json::Map<String, Value> = std::env::vars()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    json!({
        "event": event,
        "requestId": request_id,
        "functionArn": next.header("lambda-runtime-invoked-function-arn"),
        "deadlineMs": next.header("lambda-runtime-deadline-ms"),
        "traceId": next.header("lambda-runtime-trace-id"),
        "pid": std::process::id(),
        "env": env,
    })
}

fn proxy_response(event: &Value) -> Value {
    match event.get("rawPath").and_then(Value::as_str) {
        Some("/plain") => json!({"hello": "world"}),
        // base64 of [0, 1, 2, 255]
        Some("/binary") => json!({"statusCode": 200, "isBase64Encoded": true, "body": "AAEC/w==",
                                  "headers": {"content-type": "application/octet-stream"}}),
        _ => json!({
            "statusCode": 201,
            "headers": {"content-type": "application/json", "x-echo": "yes"},
            "cookies": ["session=abc; Path=/", "theme=dark"],
            "body": event.to_string(),
        }),
    }
}
