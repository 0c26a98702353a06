//! The WebSocket API end to end: upgrade → `$connect` → route selection → real child process
//! → route response, the `@connections` API through the AWS SDK the functions use, limits,
//! and `$disconnect`. No emulator needed: the API is built by hand, as `tests/gateway.rs`
//! builds its routes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_apigatewaymanagement::primitives::Blob;
use local_runner::websocket::route_selection::RouteSelectionExpression;
use local_runner::websocket::{self, WsApi, WsGateway, WsLimits, WsRoute};
use local_runner::{FunctionConfig, Runtime, RuntimeSettings};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(15);

struct Stack {
    addr: SocketAddr,
    runtime: Runtime,
    invocations: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Stack {
    /// Stops the server (connections close, `$disconnect`s run) and then the functions.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .unwrap_or_else(|e| panic!("server task: {e}"))
                .unwrap_or_else(|e| panic!("server: {e:#}"));
        }
        self.runtime.shutdown(Duration::from_secs(2)).await;
    }

    /// The `@connections` client, configured as a function's would be (signed requests).
    async fn management(&self) -> aws_sdk_apigatewaymanagement::Client {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(format!("http://{}/live", self.addr))
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_apigatewaymanagement::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .load()
            .await;
        aws_sdk_apigatewaymanagement::Client::new(&sdk)
    }

    /// Opens `ws://…/live?{query}`; `Err` carries a refused upgrade's HTTP answer.
    async fn connect(&self, query: &str) -> Result<Socket, tungstenite::Error> {
        let mut request = format!("ws://{}/live?{query}", self.addr)
            .into_client_request()
            .unwrap_or_else(|e| panic!("request: {e}"));
        request.headers_mut().insert(
            "user-agent",
            http::HeaderValue::from_static("websocket-test"),
        );
        tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .unwrap_or_else(|_| panic!("connect timed out"))
            .map(|(socket, _)| socket)
    }

    /// Connects with `?n={tag}` and returns the socket and its connection id (read from the
    /// `$connect` event the function saw).
    async fn connect_tagged(&self, tag: &str) -> (Socket, String) {
        let socket = self
            .connect(&format!("n={tag}"))
            .await
            .unwrap_or_else(|e| panic!("connect {tag}: {e}"));
        let line = wait_for_line(&self.invocations, |l| {
            l["eventType"] == "CONNECT" && l["event"]["queryStringParameters"]["n"] == tag
        })
        .await;
        let id = line["connectionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no connection id: {line}"))
            .to_owned();
        (socket, id)
    }
}

fn route(two_way: bool) -> WsRoute {
    WsRoute {
        function: Some("echo".to_owned()),
        integration: "test".to_owned(),
        route_response_selection_expression: two_way.then(|| "$default".to_owned()),
    }
}

/// Serves a WebSocket API (stage `live`, `$request.body.action`) with `routes` (key, two-way),
/// all backed by the echo fixture.
async fn start(name: &str, routes: &[(&str, bool)], limits: WsLimits) -> Stack {
    let invocations = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("websocket-{name}-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&invocations);
    let config = FunctionConfig {
        name: "echo".to_owned(),
        arn: "arn:aws:lambda:us-east-1:123456789012:function:echo".to_owned(),
        binary: PathBuf::from(env!("CARGO_BIN_EXE_echo-function")),
        environment: BTreeMap::from([(
            "ECHO_INVOCATIONS_FILE".to_owned(),
            invocations.display().to_string(),
        )]),
        timeout: Duration::from_secs(5),
        memory_mb: 128,
    };
    let settings = RuntimeSettings::from_process_env(
        "http://127.0.0.1:4566",
        "us-east-1",
        4,
        None,
        std::env::temp_dir(),
    );
    let runtime = Runtime::new(vec![config], settings);
    let api = WsApi {
        api_id: "wsapi".to_owned(),
        stages: vec!["live".to_owned()],
        route_selection: RouteSelectionExpression::parse("$request.body.action"),
        routes: routes
            .iter()
            .map(|(key, two_way)| ((*key).to_owned(), route(*two_way)))
            .collect(),
    };
    let gateway = Arc::new(WsGateway::new(api, runtime.clone(), limits));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"));
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(websocket::serve(listener, gateway, async move {
        let _ = stopped.await;
    }));
    Stack {
        addr,
        runtime,
        invocations,
        stop: Some(stop),
        server: Some(server),
    }
}

const LIFECYCLE: [(&str, bool); 4] = [
    ("$connect", false),
    ("$disconnect", false),
    ("$default", false),
    ("subscribe", true),
];

fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits for the fixture to record an invocation matching `wanted`.
async fn wait_for_line(path: &Path, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(line) = read_lines(path).into_iter().find(|l| wanted(l)) {
            return line;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no matching invocation in {}: {:?}",
            path.display(),
            read_lines(path)
                .iter()
                .map(|l| format!("{} {}", l["eventType"], l["routeKey"]))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next data or close frame from the server.
async fn next_frame(socket: &mut Socket) -> Message {
    use futures::StreamExt as _;
    loop {
        let frame = tokio::time::timeout(WAIT, socket.next())
            .await
            .unwrap_or_else(|_| panic!("no frame within {WAIT:?}"))
            .unwrap_or_else(|| panic!("the connection ended"))
            .unwrap_or_else(|e| panic!("read: {e}"));
        match frame {
            Message::Ping(_) | Message::Pong(_) => continue,
            other => return other,
        }
    }
}

async fn next_json(socket: &mut Socket) -> Value {
    match next_frame(socket).await {
        Message::Text(text) => {
            serde_json::from_str(text.as_str()).unwrap_or_else(|e| panic!("{e}: {}", text.as_str()))
        }
        other => panic!("expected a text frame, got {other:?}"),
    }
}

async fn send(socket: &mut Socket, message: Message) {
    use futures::SinkExt as _;
    socket
        .send(message)
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
}

fn close_code(frame: Message) -> u16 {
    match frame {
        Message::Close(Some(frame)) => frame.code.into(),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn connect_refusals_answer_with_the_status_and_no_socket() {
    let stack = start("refusals", &LIFECYCLE, WsLimits::default()).await;

    // The function says 403: the upgrade is refused with 403.
    match stack.connect("deny=1").await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    // The function fails: 500, API Gateway's message.
    match stack.connect("fail=1").await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 500);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or(b""))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                body,
                serde_json::json!({"message": "Internal server error"})
            );
        }
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    // A stage the API does not have: 403 before any function runs.
    let request = format!("ws://{}/other", stack.addr);
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }

    let lines = read_lines(&stack.invocations);
    let connects: Vec<&Value> = lines
        .iter()
        .filter(|l| l["eventType"] == "CONNECT")
        .collect();
    assert_eq!(connects.len(), 2, "{lines:?}");
    let event = &connects[0]["event"];
    assert_eq!(event["queryStringParameters"]["deny"], "1");
    assert_eq!(event["requestContext"]["routeKey"], "$connect");
    assert_eq!(event["requestContext"]["stage"], "live");
    assert_eq!(event["requestContext"]["apiId"], "wsapi");
    assert_eq!(
        event["requestContext"]["identity"]["userAgent"],
        "websocket-test"
    );
    // A refused connection never existed: no $disconnect.
    assert!(
        !lines.iter().any(|l| l["eventType"] == "DISCONNECT"),
        "{lines:?}"
    );
    stack.stop().await;
}

#[tokio::test]
async fn messages_route_to_functions_and_the_connections_api_reaches_the_client() {
    let stack = start("messages", &LIFECYCLE, WsLimits::default()).await;
    let (mut socket, id) = stack.connect_tagged("m1").await;
    assert_eq!(id.len(), 16, "{id}");
    assert!(id.ends_with('='), "{id}");
    let connect = wait_for_line(&stack.invocations, |l| l["connectionId"] == id.as_str()).await;
    assert_eq!(connect["event"]["requestContext"]["eventType"], "CONNECT");

    // Not JSON → $default, which has no route response: nothing comes back. The next
    // frame is the two-way route's reply.
    send(&mut socket, Message::text("not json")).await;
    let subscribe = r#"{"action":"subscribe","topics":["orders"]}"#;
    send(&mut socket, Message::text(subscribe)).await;
    let reply = next_json(&mut socket).await;
    assert_eq!(reply["routeKey"], "subscribe");
    assert_eq!(reply["connectionId"], id.as_str());
    assert_eq!(reply["body"], subscribe);
    let default = wait_for_line(&stack.invocations, |l| {
        l["eventType"] == "MESSAGE" && l["routeKey"] == "$default"
    })
    .await;
    assert_eq!(default["event"]["body"], "not json");
    assert!(default["event"]["requestContext"]["messageId"].is_string());

    // A failing function: API Gateway's error frame.
    send(&mut socket, Message::text("fail")).await;
    let error = next_json(&mut socket).await;
    assert_eq!(error["message"], "Internal server error");
    assert_eq!(error["connectionId"], id.as_str());
    assert!(error["requestId"].is_string());

    // @connections, through the SDK the functions use.
    let management = stack.management().await;
    management
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new(r#"{"type":"order","id":"o-1"}"#))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PostToConnection: {e:?}"));
    assert_eq!(
        next_frame(&mut socket).await,
        Message::text(r#"{"type":"order","id":"o-1"}"#)
    );
    management
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new(vec![0xff, 0x00]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PostToConnection: {e:?}"));
    assert_eq!(
        next_frame(&mut socket).await,
        Message::binary(vec![0xff, 0x00])
    );
    let too_large = management
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new(vec![b'a'; 128 * 1024 + 1]))
        .send()
        .await
        .expect_err("over 128 KB");
    assert!(
        too_large
            .as_service_error()
            .is_some_and(|e| e.is_payload_too_large_exception()),
        "{too_large:?}"
    );
    let info = management
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetConnection: {e:?}"));
    let identity = info.identity().unwrap_or_else(|| panic!("no identity"));
    assert_eq!(identity.source_ip(), Some("127.0.0.1"));
    assert_eq!(identity.user_agent(), Some("websocket-test"));
    let connected_at = info
        .connected_at()
        .unwrap_or_else(|| panic!("no connectedAt"));
    let last_active_at = info
        .last_active_at()
        .unwrap_or_else(|| panic!("no lastActiveAt"));
    assert!(
        last_active_at > connected_at,
        "{connected_at} {last_active_at}"
    );

    // The client closes: $disconnect is told how, once, and the connection is gone.
    send(
        &mut socket,
        Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        })),
    )
    .await;
    assert_eq!(close_code(next_frame(&mut socket).await), 1000);
    let disconnect = wait_for_line(&stack.invocations, |l| {
        l["eventType"] == "DISCONNECT" && l["connectionId"] == id.as_str()
    })
    .await;
    let context = &disconnect["event"]["requestContext"];
    assert_eq!(context["disconnectStatusCode"], 1000);
    assert_eq!(context["disconnectReason"], "bye");
    assert_eq!(context["routeKey"], "$disconnect");
    let gone = management
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new("late"))
        .send()
        .await
        .expect_err("the connection is closed");
    assert!(
        gone.as_service_error()
            .is_some_and(|e| e.is_gone_exception()),
        "{gone:?}"
    );
    let gone = management
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .expect_err("the connection is closed");
    assert!(
        gone.as_service_error()
            .is_some_and(|e| e.is_gone_exception()),
        "{gone:?}"
    );

    let invocations = stack.invocations.clone();
    stack.stop().await;
    let disconnects = read_lines(&invocations)
        .into_iter()
        .filter(|l| l["eventType"] == "DISCONNECT")
        .count();
    assert_eq!(disconnects, 1);
}

#[tokio::test]
async fn delete_closes_the_connection_and_disconnect_follows() {
    let stack = start("delete", &LIFECYCLE, WsLimits::default()).await;
    let (mut socket, id) = stack.connect_tagged("d1").await;
    let management = stack.management().await;
    management
        .delete_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteConnection: {e:?}"));
    assert_eq!(close_code(next_frame(&mut socket).await), 1000);
    let disconnect = wait_for_line(&stack.invocations, |l| {
        l["eventType"] == "DISCONNECT" && l["connectionId"] == id.as_str()
    })
    .await;
    assert_eq!(
        disconnect["event"]["requestContext"]["disconnectStatusCode"],
        1000
    );
    let again = management
        .delete_connection()
        .connection_id(&id)
        .send()
        .await
        .expect_err("already deleted");
    assert!(
        again
            .as_service_error()
            .is_some_and(|e| e.is_gone_exception()),
        "{again:?}"
    );
    stack.stop().await;
}

#[tokio::test]
async fn without_default_an_unmatched_message_is_forbidden() {
    let stack = start(
        "forbidden",
        &[("$connect", false), ("subscribe", true)],
        WsLimits::default(),
    )
    .await;
    let (mut socket, id) = stack.connect_tagged("f1").await;
    send(&mut socket, Message::text(r#"{"action":"unknown"}"#)).await;
    let frame = next_json(&mut socket).await;
    assert_eq!(frame["message"], "Forbidden");
    assert_eq!(frame["connectionId"], id.as_str());
    assert!(frame["requestId"].is_string());
    send(&mut socket, Message::text(r#"{"action":"subscribe"}"#)).await;
    assert_eq!(next_json(&mut socket).await["routeKey"], "subscribe");
    stack.stop().await;
}

#[tokio::test]
async fn limits_close_connections_with_api_gateways_codes() {
    let limits = WsLimits {
        idle_timeout: Duration::from_millis(500),
        ..WsLimits::default()
    };
    let stack = start("limits", &LIFECYCLE, limits).await;

    // A frame over 32 KB: 1009.
    let (mut big, big_id) = stack.connect_tagged("big").await;
    send(&mut big, Message::text("a".repeat(40 * 1024))).await;
    assert_eq!(close_code(next_frame(&mut big).await), 1009);
    let disconnect = wait_for_line(&stack.invocations, |l| {
        l["eventType"] == "DISCONNECT" && l["connectionId"] == big_id.as_str()
    })
    .await;
    assert_eq!(
        disconnect["event"]["requestContext"]["disconnectStatusCode"],
        1009
    );
    // The oversized message never reached a function.
    assert!(
        !read_lines(&stack.invocations)
            .iter()
            .any(|l| l["eventType"] == "MESSAGE")
    );

    // Idle: 1001 Going away.
    let (mut idle, idle_id) = stack.connect_tagged("idle").await;
    assert_eq!(close_code(next_frame(&mut idle).await), 1001);
    let disconnect = wait_for_line(&stack.invocations, |l| {
        l["eventType"] == "DISCONNECT" && l["connectionId"] == idle_id.as_str()
    })
    .await;
    assert_eq!(
        disconnect["event"]["requestContext"]["disconnectStatusCode"],
        1001
    );
    stack.stop().await;
}

#[tokio::test]
async fn shutdown_closes_every_connection_and_waits_for_disconnect() {
    let stack = start("shutdown", &LIFECYCLE, WsLimits::default()).await;
    let invocations = stack.invocations.clone();
    let (mut socket, id) = stack.connect_tagged("s1").await;
    // Stop returns only after the server has closed the socket and `$disconnect` ran.
    stack.stop().await;
    let line = read_lines(&invocations)
        .into_iter()
        .find(|l| l["eventType"] == "DISCONNECT" && l["connectionId"] == id.as_str())
        .unwrap_or_else(|| panic!("no $disconnect before the server stopped"));
    assert_eq!(
        line["event"]["requestContext"]["disconnectStatusCode"],
        1001
    );
    assert_eq!(close_code(next_frame(&mut socket).await), 1001);
}
