//! Runtime API + instance management against a real child process (`echo-function`), without
//! the emulator.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use local_runner::{FunctionConfig, InvokeError, Runtime, RuntimeSettings};
use serde_json::{Value, json};

const FUNCTION: &str = "echo";
const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:echo";

fn temp_file(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("local-runner-{tag}-{}.jsonl", uuid::Uuid::new_v4()))
}

fn runtime_with(
    timeout: Duration,
    max_concurrency: usize,
    env: &[(&str, &str)],
    metrics_file: Option<PathBuf>,
) -> Runtime {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_echo-function"));
    let mut environment: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    environment.insert("ECHO_CUSTOM".to_owned(), "from-function-config".to_owned());
    // Reserved variables set by the function config are overridden by the runner.
    environment.insert("AWS_REGION".to_owned(), "eu-west-9".to_owned());
    let config = FunctionConfig {
        name: FUNCTION.to_owned(),
        arn: ARN.to_owned(),
        binary: binary.clone(),
        environment,
        timeout,
        memory_mb: 256,
    };
    let task_root = binary
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let settings = RuntimeSettings::from_process_env(
        "http://127.0.0.1:4566",
        "us-east-1",
        max_concurrency,
        metrics_file,
        task_root,
    );
    Runtime::new(vec![config], settings)
}

fn runtime(max_concurrency: usize) -> Runtime {
    runtime_with(Duration::from_secs(1), max_concurrency, &[], None)
}

async fn echo(runtime: &Runtime, marker: u64) -> Value {
    let response = runtime
        .invoke(FUNCTION, &json!({"action": "echo", "marker": marker}))
        .await
        .unwrap_or_else(|e| panic!("echo invocation failed: {e}"));
    assert_eq!(response["event"]["marker"], marker, "{response}");
    response
}

fn pid(response: &Value) -> u64 {
    response["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("no pid in {response}"))
}

#[tokio::test]
async fn invocation_round_trips_with_lambda_headers_env_and_cold_init_metric() {
    let metrics = temp_file("metrics");
    let runtime = runtime_with(Duration::from_secs(2), 2, &[], Some(metrics.clone()));
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();

    let first = echo(&runtime, 1).await;
    assert_eq!(first["functionArn"], ARN);
    let request_id = first["requestId"].as_str().unwrap_or_default();
    assert_eq!(request_id.len(), 36, "request id should be a uuid: {first}");
    let deadline: u128 = first["deadlineMs"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("bad deadline in {first}"));
    assert!(
        deadline >= before + 1900 && deadline <= before + 10_000,
        "deadline {deadline} should be ~2 s after {before}"
    );
    assert!(
        first["traceId"]
            .as_str()
            .is_some_and(|t| t.starts_with("Root=1-"))
    );

    let env = &first["env"];
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], FUNCTION);
    assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
    assert_eq!(env["AWS_REGION"], "us-east-1");
    assert_eq!(env["AWS_DEFAULT_REGION"], "us-east-1");
    assert_eq!(env["AWS_ENDPOINT_URL"], "http://127.0.0.1:4566");
    assert_eq!(env["_HANDLER"], "bootstrap");
    assert_eq!(env["ECHO_CUSTOM"], "from-function-config");
    assert!(env["AWS_ACCESS_KEY_ID"].is_string());
    assert!(env["LAMBDA_TASK_ROOT"].is_string());
    assert!(
        env["AWS_LAMBDA_RUNTIME_API"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:"))
    );
    // Clean environment: nothing leaks from the runner besides the documented variables.
    assert!(env.get("HOME").is_none(), "HOME leaked: {env}");
    assert!(env.get("CARGO_MANIFEST_DIR").is_none());

    // Warm: the same process serves the next invocation, no new cold start.
    let second = echo(&runtime, 2).await;
    assert_eq!(pid(&first), pid(&second));
    let stats = runtime
        .stats(FUNCTION)
        .unwrap_or_else(|| panic!("no stats"));
    assert_eq!(stats.instances_started, 1);
    assert_eq!(stats.cold_inits.len(), 1);

    let lines = std::fs::read_to_string(&metrics).unwrap_or_else(|e| panic!("metrics: {e}"));
    let records: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(records.len(), 1, "{lines}");
    assert_eq!(records[0]["function"], FUNCTION);
    assert!(
        records[0]["cold_init_ms"]
            .as_f64()
            .is_some_and(|ms| ms >= 0.0)
    );

    runtime.shutdown(Duration::from_secs(2)).await;
    let _ = std::fs::remove_file(metrics);
}

#[tokio::test]
async fn concurrent_invocations_scale_out_up_to_the_cap() {
    let runtime = runtime(3);
    let mut tasks = Vec::new();
    for marker in 0..7u64 {
        let runtime = runtime.clone();
        tasks.push(tokio::spawn(async move {
            runtime
                .invoke(
                    FUNCTION,
                    &json!({"action": "sleep", "ms": 300, "marker": marker}),
                )
                .await
        }));
    }
    let mut pids = HashSet::new();
    for task in tasks {
        let response = task
            .await
            .unwrap_or_else(|e| panic!("task: {e}"))
            .unwrap_or_else(|e| panic!("invoke: {e}"));
        pids.insert(pid(&response));
    }
    let stats = runtime
        .stats(FUNCTION)
        .unwrap_or_else(|| panic!("no stats"));
    assert_eq!(
        pids.len(),
        3,
        "expected exactly the cap of 3 instances: {pids:?}"
    );
    assert_eq!(stats.peak_instances, 3);
    assert_eq!(stats.instances_started, 3);
    assert_eq!(stats.cold_inits.len(), 3);

    runtime.shutdown(Duration::from_secs(2)).await;
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} survived shutdown"
        );
    }
    assert_eq!(
        runtime.invoke(FUNCTION, &json!({})).await,
        Err(InvokeError::Shutdown)
    );
}

#[tokio::test]
async fn timeout_kills_the_instance_and_a_new_one_serves_the_next_invocation() {
    let runtime = runtime(2);
    let warm = echo(&runtime, 1).await;

    let started = Instant::now();
    let result = runtime
        .invoke(FUNCTION, &json!({"action": "sleep", "ms": 10_000}))
        .await;
    let elapsed = started.elapsed();
    assert_eq!(result, Err(InvokeError::Timeout(Duration::from_secs(1))));
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
        "timed out after {elapsed:?}"
    );

    let next = echo(&runtime, 2).await;
    assert_ne!(
        pid(&warm),
        pid(&next),
        "the timed-out instance must be replaced"
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{}", pid(&warm))).exists(),
        "timed-out process still running"
    );
    let stats = runtime
        .stats(FUNCTION)
        .unwrap_or_else(|| panic!("no stats"));
    assert_eq!(stats.timeouts, 1);
    assert_eq!(stats.instances_started, 2);
    assert_eq!(stats.live_instances, 1);
    runtime.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn crash_fails_the_invocation_without_losing_the_queue() {
    // One instance only: the echo is queued behind the crashing invocation.
    let runtime = runtime(1);
    let crash = {
        let runtime = runtime.clone();
        tokio::spawn(async move { runtime.invoke(FUNCTION, &json!({"action": "exit"})).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let queued = echo(&runtime, 7).await;
    let crashed = crash.await.unwrap_or_else(|e| panic!("task: {e}"));
    match crashed {
        Err(ref err @ InvokeError::Exit(ref status)) => {
            assert_eq!(err.error_type(), "Runtime.ExitError");
            assert!(status.contains('3'), "exit status: {status}");
        }
        other => panic!("expected Runtime.ExitError, got {other:?}"),
    }
    let again = echo(&runtime, 8).await;
    assert_eq!(pid(&queued), pid(&again));
    let stats = runtime
        .stats(FUNCTION)
        .unwrap_or_else(|| panic!("no stats"));
    assert_eq!(stats.instances_started, 2);
    assert_eq!(stats.crashes, 1);
    runtime.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn function_errors_are_reported_and_keep_the_instance() {
    let runtime = runtime(1);
    let before = echo(&runtime, 1).await;
    let result = runtime.invoke(FUNCTION, &json!({"action": "error"})).await;
    match result {
        Err(InvokeError::Function {
            error_type,
            error_message,
            ..
        }) => {
            assert_eq!(error_type, "EchoError");
            assert_eq!(error_message, "asked to fail");
        }
        other => panic!("expected a function error, got {other:?}"),
    }
    let after = echo(&runtime, 2).await;
    assert_eq!(pid(&before), pid(&after));
    assert_eq!(
        runtime.invoke("nope", &json!({})).await,
        Err(InvokeError::UnknownFunction("nope".to_owned()))
    );
    runtime.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn init_failures_fail_the_triggering_invocation_instead_of_looping() {
    let runtime = runtime_with(Duration::from_secs(1), 2, &[("ECHO_INIT_ERROR", "1")], None);
    for _ in 0..2 {
        match runtime.invoke(FUNCTION, &json!({})).await {
            Err(InvokeError::Init { error_type, .. }) => assert_eq!(error_type, "EchoInitError"),
            other => panic!("expected an init error, got {other:?}"),
        }
    }
    runtime.shutdown(Duration::from_secs(2)).await;

    let runtime = runtime_with(Duration::from_secs(1), 2, &[("ECHO_INIT_EXIT", "1")], None);
    let started = Instant::now();
    let result = runtime.invoke(FUNCTION, &json!({})).await;
    assert!(matches!(result, Err(InvokeError::Exit(_))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let stats = runtime
        .stats(FUNCTION)
        .unwrap_or_else(|| panic!("no stats"));
    assert_eq!(
        stats.instances_started, 1,
        "a broken binary must not respawn in a loop"
    );
    runtime.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn missing_binary_fails_the_invocation_clearly() {
    let config = FunctionConfig {
        name: FUNCTION.to_owned(),
        arn: ARN.to_owned(),
        binary: PathBuf::from("/nonexistent/bootstrap"),
        environment: BTreeMap::new(),
        timeout: Duration::from_secs(1),
        memory_mb: 128,
    };
    let settings = RuntimeSettings::from_process_env(
        "http://127.0.0.1:4566",
        "us-east-1",
        1,
        None,
        std::env::temp_dir(),
    );
    let runtime = Runtime::new(vec![config], settings);
    let result = runtime.invoke(FUNCTION, &json!({})).await;
    match result {
        Err(InvokeError::Spawn(message)) => assert!(message.contains("/nonexistent/bootstrap")),
        other => panic!("expected a spawn error, got {other:?}"),
    }
}

#[tokio::test]
async fn stopped_instances_report_their_peak_memory() {
    let metrics = temp_file("rss");
    let runtime = runtime_with(Duration::from_secs(2), 2, &[], Some(metrics.clone()));
    echo(&runtime, 1).await;
    runtime.shutdown(Duration::from_secs(2)).await;

    let lines = std::fs::read_to_string(&metrics).unwrap_or_else(|e| panic!("metrics: {e}"));
    let peaks: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .filter(|r| r.get("peak_rss_kb").is_some())
        .collect();
    assert_eq!(peaks.len(), 1, "{lines}");
    assert_eq!(peaks[0]["function"], FUNCTION);
    let kb = peaks[0]["peak_rss_kb"].as_u64().unwrap_or_default();
    // A process holds at least its own pages; a tiny std binary stays well under 100 MB.
    assert!(kb > 100 && kb < 100_000, "{kb} kB");
    let stats = runtime
        .stats(FUNCTION)
        .unwrap_or_else(|| panic!("no stats"));
    assert_eq!(stats.peak_rss_kb, Some(kb));
    let _ = std::fs::remove_file(metrics);
}
