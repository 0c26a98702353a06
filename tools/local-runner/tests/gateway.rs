//! The HTTP front door end to end: HTTP request → route → 2.0 event → real child process →
//! proxy response translation. No emulator needed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use local_runner::gateway::{self, Gateway, RouteTarget};
use local_runner::routes::RouteTable;
use local_runner::{FunctionConfig, Runtime, RuntimeSettings};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

async fn send(addr: SocketAddr, head: &str, body: &[u8]) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let request = format!(
        "{head}\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    // The server may answer (e.g. 413) before reading the whole body; ignore write errors.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("bad response: {}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

async fn start(routes: &[(&str, Option<&str>)]) -> (SocketAddr, Runtime) {
    let targets: Vec<(&str, RouteTarget)> = routes
        .iter()
        .map(|(key, function)| {
            let target = RouteTarget {
                function: function.map(str::to_owned),
                integration: "test".to_owned(),
                auth: None,
            };
            (*key, target)
        })
        .collect();
    start_targets(targets).await
}

async fn start_targets(routes: Vec<(&str, RouteTarget)>) -> (SocketAddr, Runtime) {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_echo-function"));
    let config = FunctionConfig {
        name: "echo".to_owned(),
        arn: "arn:aws:lambda:us-east-1:123456789012:function:echo".to_owned(),
        binary,
        environment: BTreeMap::new(),
        timeout: Duration::from_secs(1),
        memory_mb: 128,
    };
    let settings = RuntimeSettings::from_process_env(
        "http://127.0.0.1:4566",
        "us-east-1",
        2,
        None,
        std::env::temp_dir(),
    );
    let runtime = Runtime::new(vec![config], settings);
    let mut table = RouteTable::new();
    for (key, target) in routes {
        table
            .insert(key, target)
            .unwrap_or_else(|e| panic!("{e:#}"));
    }
    let gateway = Arc::new(Gateway {
        api_id: "testapi".to_owned(),
        account_id: "123456789012".to_owned(),
        routes: table,
        runtime: runtime.clone(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"));
    tokio::spawn(gateway::serve(listener, gateway, std::future::pending()));
    (addr, runtime)
}

#[tokio::test]
async fn http_request_reaches_the_function_and_the_proxy_response_is_translated() {
    let (addr, runtime) = start(&[
        ("GET /orders/{id}", Some("echo")),
        ("ANY /{proxy+}", Some("echo")),
        ("POST /broken", None),
    ])
    .await;

    let reply = send(
        addr,
        "GET /orders/42?status=open&status=paid HTTP/1.1\r\nCookie: a=1; b=2\r\nX-Multi: one\r\nX-Multi: two",
        b"",
    )
    .await;
    assert_eq!(
        reply.status,
        201,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("x-echo"), ["yes"]);
    assert_eq!(
        reply.header("set-cookie"),
        ["session=abc; Path=/", "theme=dark"]
    );
    let request_id = reply.header("apigw-requestid");
    assert_eq!(request_id.len(), 1);

    let event = reply.json();
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["routeKey"], "GET /orders/{id}");
    assert_eq!(event["rawPath"], "/orders/42");
    assert_eq!(event["rawQueryString"], "status=open&status=paid");
    assert_eq!(event["queryStringParameters"]["status"], "open,paid");
    assert_eq!(event["pathParameters"]["id"], "42");
    assert_eq!(event["cookies"], serde_json::json!(["a=1", "b=2"]));
    assert_eq!(event["headers"]["x-multi"], "one,two");
    assert_eq!(event["requestContext"]["requestId"], request_id[0]);
    assert_eq!(event["requestContext"]["apiId"], "testapi");
    assert_eq!(event["requestContext"]["domainName"], addr.to_string());
    assert_eq!(event["requestContext"]["http"]["sourceIp"], "127.0.0.1");
    assert!(event.get("body").is_none());

    // Greedy route, binary request body, base64 response body.
    let reply = send(addr, "PUT /binary HTTP/1.1", &[0xff, 0xfe, 0x00]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, [0u8, 1, 2, 255]);
    assert_eq!(reply.header("content-type"), ["application/octet-stream"]);

    // JSON without statusCode → 200 application/json.
    let reply = send(addr, "GET /plain HTTP/1.1", b"").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), ["application/json"]);
    assert_eq!(reply.json(), serde_json::json!({"hello": "world"}));

    // A request body is passed as text.
    let reply = send(addr, "POST /orders HTTP/1.1", br#"{"qty":2}"#).await;
    assert_eq!(reply.status, 201);
    let event = reply.json();
    assert_eq!(event["routeKey"], "ANY /{proxy+}");
    assert_eq!(event["body"], r#"{"qty":2}"#);
    assert_eq!(event["isBase64Encoded"], false);

    // Function timeout / crash / error, and a route without a runnable function → 500.
    for path in ["/slow", "/crash", "/fail", "/broken"] {
        let reply = send(addr, &format!("POST {path} HTTP/1.1"), b"").await;
        assert_eq!(reply.status, 500, "{path}");
        assert_eq!(
            reply.json(),
            serde_json::json!({"message": "Internal Server Error"}),
            "{path}"
        );
        assert_eq!(reply.header("apigw-requestid").len(), 1);
    }
    // ... and the function still serves requests afterwards.
    let reply = send(addr, "GET /plain HTTP/1.1", b"").await;
    assert_eq!(reply.status, 200);

    runtime.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn unmatched_routes_get_404_and_oversized_bodies_413() {
    let (addr, runtime) = start(&[("GET /orders", Some("echo"))]).await;

    let reply = send(addr, "GET /customers HTTP/1.1", b"").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json(), serde_json::json!({"message": "Not Found"}));
    assert_eq!(reply.header("apigw-requestid").len(), 1);

    let reply = send(addr, "POST /orders HTTP/1.1", b"").await;
    assert_eq!(reply.status, 404);

    let big = vec![b'a'; gateway::MAX_REQUEST_BYTES + 1];
    let reply = send(addr, "GET /orders HTTP/1.1", &big).await;
    assert_eq!(reply.status, 413);
    assert_eq!(
        reply.json(),
        serde_json::json!({"message": "Request Entity Too Large"})
    );
    // Nothing was invoked.
    assert_eq!(runtime.stats("echo").map(|s| s.instances_started), Some(0));
    runtime.shutdown(Duration::from_secs(2)).await;
}

/// The development issuer on a free port, with a key of its own.
async fn issuer() -> (String, dev_auth::SigningKey) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("gateway-issuer");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let served = dev_auth::SigningKey::load_or_create(&dir).unwrap();
    tokio::spawn(local_runner::issuer::serve(
        listener,
        url.clone(),
        served,
        "orders-local".to_owned(),
        std::future::pending(),
    ));
    (url, dev_auth::SigningKey::load_or_create(&dir).unwrap())
}

#[tokio::test]
async fn a_jwt_route_admits_only_valid_tokens_with_a_scope_and_passes_the_claims_on() {
    use dev_auth::token::Subject;
    use local_runner::authorizer::JwtAuthorizer;
    use local_runner::gateway::RouteAuth;

    let (issuer, key) = issuer().await;
    let authorizer = Arc::new(JwtAuthorizer::new(
        "jwt".into(),
        issuer.clone(),
        vec!["orders-local".into()],
    ));
    let guarded = |scopes: &[&str]| RouteTarget {
        function: Some("echo".to_owned()),
        integration: "test".to_owned(),
        auth: Some(RouteAuth {
            authorizer: Arc::clone(&authorizer),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }),
    };
    let (addr, runtime) = start_targets(vec![
        (
            "GET /orders/{id}",
            guarded(&["orders/customer", "orders/admin"]),
        ),
        ("GET /admin/{id}", guarded(&["orders/admin"])),
    ])
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let token = |scopes: &[&str], lifetime: i64| {
        let subject = Subject { id: "c-1", scopes };
        key.mint(&issuer, "orders-local", &subject, now - 5, lifetime)
            .unwrap()
    };
    let customer = token(&["openid", "orders/customer"], 600);

    // No token, a malformed one, an expired one: 401, and the function never runs.
    for header in [
        String::new(),
        "\r\nAuthorization: Bearer not-a-jwt".to_owned(),
        format!(
            "\r\nAuthorization: Bearer {}",
            token(&["orders/customer"], -1)
        ),
    ] {
        let reply = send(addr, &format!("GET /orders/1 HTTP/1.1{header}"), b"").await;
        assert_eq!(reply.status, 401, "{header}");
        assert_eq!(reply.json(), serde_json::json!({"message": "Unauthorized"}));
    }
    // A valid token without the route's scope: 403.
    let reply = send(
        addr,
        &format!("GET /admin/1 HTTP/1.1\r\nAuthorization: Bearer {customer}"),
        b"",
    )
    .await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.json(), serde_json::json!({"message": "Forbidden"}));

    // A valid one: the function sees its claims.
    let reply = send(
        addr,
        &format!("GET /orders/1 HTTP/1.1\r\nAuthorization: Bearer {customer}"),
        b"",
    )
    .await;
    assert_eq!(
        reply.status,
        201,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let jwt = &reply.json()["requestContext"]["authorizer"]["jwt"];
    assert_eq!(jwt["claims"]["sub"], "c-1");
    assert_eq!(jwt["claims"]["iss"], issuer.as_str());
    assert_eq!(
        jwt["scopes"],
        serde_json::json!(["openid", "orders/customer"])
    );

    runtime.shutdown(Duration::from_secs(2)).await;
}
