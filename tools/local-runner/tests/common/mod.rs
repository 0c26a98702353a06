//! Helpers shared by the emulator-backed integration tests.
#![allow(dead_code)]

use std::path::Path;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const ROLE_NAME: &str = "local-runner-event-sources-test";

pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".to_owned())
}

pub async fn sdk() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_lambda::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await
}

fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The emulator's Lambda insists on an existing IAM role; the crate has no IAM client, so create
/// it with a plain query-protocol request (the emulator does not check signatures).
pub async fn ensure_role() -> String {
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let body = format!(
        "Action=CreateRole&Version=2010-05-08&RoleName={ROLE_NAME}&AssumeRolePolicyDocument={}",
        form_encode(policy)
    );
    let endpoint = endpoint();
    let host = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = tokio::net::TcpStream::connect(&host)
        .await
        .unwrap_or_else(|e| panic!("emulator at {host} not reachable: {e}"));
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("CreateRole: {e}"));
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply).await;
    assert!(
        reply.starts_with("HTTP/1.1 200") || reply.contains("EntityAlreadyExists"),
        "CreateRole failed: {reply}"
    );
    format!("arn:aws:iam::123456789012:role/{ROLE_NAME}")
}

/// The smallest valid zip archive (an empty one).
pub fn empty_zip() -> Vec<u8> {
    let mut zip = b"PK\x05\x06".to_vec();
    zip.extend([0u8; 18]);
    zip
}

pub fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}
