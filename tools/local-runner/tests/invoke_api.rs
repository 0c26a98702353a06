//! Lambda's Invoke API served by the runner, driven with the real AWS SDK client (what
//! `orders-admin dlq replay` uses): a function invoked by name or ARN answers with its
//! result, a failed invocation says so the way Lambda does, an unknown function is a 404.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_lambda::primitives::Blob;
use local_runner::invoke_api;
use local_runner::{FunctionConfig, Runtime, RuntimeSettings};
use serde_json::{Value, json};

async fn start() -> (aws_sdk_lambda::Client, Runtime) {
    let config = FunctionConfig {
        name: "echo".to_owned(),
        arn: "arn:aws:lambda:us-east-1:123456789012:function:echo".to_owned(),
        binary: PathBuf::from(env!("CARGO_BIN_EXE_echo-function")),
        environment: BTreeMap::new(),
        timeout: Duration::from_secs(5),
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(invoke_api::serve(
        listener,
        runtime.clone(),
        std::future::pending(),
    ));
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_lambda::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await;
    (aws_sdk_lambda::Client::new(&sdk), runtime)
}

fn payload(output: &aws_sdk_lambda::operation::invoke::InvokeOutput) -> Value {
    let bytes = output
        .payload
        .as_ref()
        .map(|b| b.as_ref())
        .unwrap_or(b"null");
    serde_json::from_slice(bytes).unwrap()
}

#[tokio::test]
async fn a_function_is_invoked_by_name_or_arn_and_answers_like_lambda() {
    let (lambda, runtime) = start().await;

    let output = lambda
        .invoke()
        .function_name("echo")
        .payload(Blob::new(json!({"hello": 1}).to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(output.status_code, 200);
    assert_eq!(output.function_error, None);
    assert_eq!(payload(&output)["event"], json!({"hello": 1}));

    let output = lambda
        .invoke()
        .function_name("arn:aws:lambda:us-east-1:123456789012:function:echo")
        .payload(Blob::new(json!({"action": "error"}).to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(output.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(payload(&output)["errorType"], "EchoError");

    let err = lambda
        .invoke()
        .function_name("nope")
        .send()
        .await
        .expect_err("an unknown function");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{err:?}"
    );
    runtime.shutdown(Duration::from_secs(2)).await;
}
