//! CLI entry point: parse arguments, discover, serve until Ctrl-C / SIGTERM, stop the instances.
//! All behaviour lives in the library modules.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use aws_config::{BehaviorVersion, Region};
use clap::Parser;
use local_runner::event_sources::{self, EventSourceOptions, EventSources};
use local_runner::gateway::{self, Gateway};
use local_runner::websocket::{self, WsApi, WsGateway, WsLimits};
use local_runner::{FunctionConfig, Runtime, RuntimeSettings, discovery, invoke_api};
use tracing::info;

/// Runs the deployed Lambda functions locally behind an API Gateway HTTP API front door.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Emulator endpoint (also given to the functions as AWS_ENDPOINT_URL).
    #[arg(
        long,
        env = "AWS_ENDPOINT_URL",
        default_value = "http://127.0.0.1:4566"
    )]
    endpoint: String,
    /// The endpoint the functions get as AWS_ENDPOINT_URL instead, e.g. a fault-injecting
    /// proxy in front of the emulator (the runner itself keeps talking to `--endpoint`, as
    /// Lambda's pollers are not behind the functions' network path).
    #[arg(long, env = "ORDERS_FUNCTIONS_ENDPOINT")]
    functions_endpoint: Option<String>,
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
    /// Id of the API Gateway v2 HTTP API to serve.
    #[arg(long)]
    api_id: String,
    /// Address of the HTTP front door.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Id of an API Gateway v2 WebSocket API to serve as well, on `--ws-listen`.
    #[arg(long)]
    ws_api_id: Option<String>,
    /// Address of the WebSocket API: clients on `ws://<address>/{stage}`, the `@connections`
    /// API on `http://<address>/{stage}/@connections/{id}`. Loopback only (the management
    /// API is unauthenticated); port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:3003")]
    ws_listen: SocketAddr,
    /// Also serve Lambda's Invoke API for the functions here (for tools that invoke a
    /// function directly; point them at it with `AWS_ENDPOINT_URL_LAMBDA`).
    #[arg(long)]
    lambda_listen: Option<SocketAddr>,
    /// Also serve the development OIDC issuer here (discovery and JWKS, issuer URL
    /// `http://<address>`), signing with the key in `--issuer-dir` (created at first start).
    #[arg(long)]
    issuer_listen: Option<SocketAddr>,
    #[arg(long, default_value = ".local/dev-oidc")]
    issuer_dir: PathBuf,
    /// The issuer's one client (the dashboard), also its tokens' audience.
    #[arg(long, default_value = dev_auth::LOCAL_AUDIENCE)]
    issuer_client_id: String,
    /// Directory holding the function binaries named by the `orders:binary` tags.
    #[arg(long, default_value = "target/debug")]
    bin_dir: PathBuf,
    /// Maximum concurrent instances per function.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    max_concurrency: u16,
    /// Append one JSON line per cold start (`{"function","cold_init_ms"}`) and per instance
    /// stopped (`{"function","instance","peak_rss_kb"}`) to this file.
    #[arg(long)]
    metrics_file: Option<PathBuf>,
    /// Account id reported in `requestContext.accountId`.
    #[arg(long, default_value = "123456789012")]
    account_id: String,
    /// Don't poll the streams of the deployed event source mappings (Kinesis, DynamoDB Streams).
    #[arg(long)]
    no_event_sources: bool,
    /// Where stream checkpoints (last handled sequence number per mapping UUID and shard) are
    /// kept across restarts.
    #[arg(long, default_value = ".local/checkpoints.json")]
    checkpoint_file: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOCAL_RUNNER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();

    let bin_dir = std::path::absolute(&cli.bin_dir)
        .with_context(|| format!("resolving --bin-dir {}", cli.bin_dir.display()))?;
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&cli.endpoint)
        .region(Region::new(cli.region.clone()))
        .credentials_provider(aws_sdk_lambda::config::Credentials::new(
            std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "test".into()),
            std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "test".into()),
            std::env::var("AWS_SESSION_TOKEN").ok(),
            None,
            "local-runner",
        ))
        .load()
        .await;

    let mut functions = discovery::discover_functions(&sdk, &bin_dir).await?;
    let routes = discovery::discover_routes(&sdk, &cli.api_id, &functions).await?;
    // Before the runtime takes the functions: their environment may name the API's URLs.
    let ws = match &cli.ws_api_id {
        Some(api_id) => Some(prepare_websocket(&sdk, api_id, cli.ws_listen, &mut functions).await?),
        None => None,
    };
    let settings = RuntimeSettings::from_process_env(
        cli.functions_endpoint
            .clone()
            .unwrap_or_else(|| cli.endpoint.clone()),
        cli.region.clone(),
        usize::from(cli.max_concurrency),
        cli.metrics_file.clone(),
        bin_dir,
    );
    let runtime = Runtime::new(functions, settings);

    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("binding {}", cli.listen))?;
    let local = listener
        .local_addr()
        .context("reading the listen address")?;

    println!("API {} on http://{local}", cli.api_id);
    let width = routes.iter().map(|(key, _)| key.len()).max().unwrap_or(0);
    for (key, target) in routes.iter() {
        let function = target.function.as_deref().unwrap_or("(not runnable)");
        let auth = match &target.auth {
            Some(auth) => format!(
                "  [JWT {}: {}]",
                auth.authorizer.issuer,
                auth.scopes.join(" ")
            ),
            None => String::new(),
        };
        println!("  {key:<width$}  →  {function}{auth}");
    }
    for function in runtime.functions() {
        println!(
            "  function {} = {} (timeout {}s, {} MB)",
            function.name,
            function.binary.display(),
            function.timeout.as_secs(),
            function.memory_mb
        );
    }

    if let Some((api, _, local)) = &ws {
        print_websocket_routes(api, *local);
    }

    let gateway = Arc::new(Gateway {
        api_id: cli.api_id.clone(),
        account_id: cli.account_id.clone(),
        routes,
        runtime: runtime.clone(),
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gateway::serve(listener, gateway, async move {
        let _ = stop_rx.await;
    }));
    let (ws_stop_tx, ws_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let ws_server = ws.map(|(api, listener, _)| {
        let gateway = Arc::new(WsGateway::new(api, runtime.clone(), WsLimits::default()));
        tokio::spawn(websocket::serve(listener, gateway, async move {
            let _ = ws_stop_rx.await;
        }))
    });
    let (invoke_stop_tx, invoke_stop_rx) = tokio::sync::oneshot::channel::<()>();
    if let Some(address) = cli.lambda_listen {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("binding {address}"))?;
        println!("Lambda Invoke API on http://{address}");
        tokio::spawn(invoke_api::serve(listener, runtime.clone(), async move {
            let _ = invoke_stop_rx.await;
        }));
    }

    let (issuer_stop_tx, issuer_stop_rx) = tokio::sync::oneshot::channel::<()>();
    if let Some(address) = cli.issuer_listen {
        let key = dev_auth::SigningKey::load_or_create(&cli.issuer_dir)?;
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("binding {address}"))?;
        let url = format!("http://{address}");
        println!("OIDC issuer {url} (key {})", key.kid);
        tokio::spawn(local_runner::issuer::serve(
            listener,
            url,
            key,
            cli.issuer_client_id.clone(),
            async move {
                let _ = issuer_stop_rx.await;
            },
        ));
    }

    let event_sources = if cli.no_event_sources {
        info!("event source mappings disabled (--no-event-sources)");
        None
    } else {
        start_event_sources(&sdk, &runtime, cli.checkpoint_file.clone()).await
    };
    info!(listen = %local, "ready");

    shutdown_signal().await?;
    info!("shutting down");
    if let Some(event_sources) = event_sources {
        event_sources.stop().await;
    }
    // WebSocket connections close first: their `$disconnect` needs the functions.
    let _ = ws_stop_tx.send(());
    if let Some(ws_server) = ws_server {
        match tokio::time::timeout(Duration::from_secs(5), ws_server).await {
            Ok(Ok(Err(err))) => tracing::warn!("WebSocket server error: {err:#}"),
            Ok(Err(err)) => tracing::warn!("WebSocket server task failed: {err}"),
            _ => {}
        }
    }
    let _ = stop_tx.send(());
    let _ = invoke_stop_tx.send(());
    let _ = issuer_stop_tx.send(());
    runtime.shutdown(Duration::from_secs(5)).await;
    // In-flight HTTP requests have been failed by the shutdown; don't wait long for them.
    match tokio::time::timeout(Duration::from_secs(2), server).await {
        Ok(Ok(Err(err))) => tracing::warn!("HTTP server error: {err:#}"),
        Ok(Err(err)) => tracing::warn!("HTTP server task failed: {err}"),
        _ => {}
    }
    Ok(())
}

/// Reads the WebSocket API, binds its listener and points the functions' URLs of the API at
/// it (the bound address, so `--ws-listen 127.0.0.1:0` works).
async fn prepare_websocket(
    sdk: &aws_config::SdkConfig,
    api_id: &str,
    listen: SocketAddr,
    functions: &mut [FunctionConfig],
) -> anyhow::Result<(WsApi, tokio::net::TcpListener, SocketAddr)> {
    if !listen.ip().is_loopback() {
        anyhow::bail!(
            "--ws-listen {listen}: only loopback addresses (the @connections API has no authentication)"
        );
    }
    let api = websocket::discovery::discover_ws_api(sdk, api_id, functions).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen} (--ws-listen)"))?;
    let local = listener
        .local_addr()
        .context("reading the WebSocket listen address")?;
    for rewrite in websocket::env_rewrite::rewrite_functions(functions, api_id, local) {
        info!(
            function = %rewrite.function,
            variable = %rewrite.variable,
            from = %rewrite.from,
            to = %rewrite.to,
            "pointed the function at the local WebSocket API"
        );
    }
    Ok((api, listener, local))
}

fn print_websocket_routes(api: &WsApi, local: SocketAddr) {
    for stage in &api.stages {
        println!(
            "WebSocket API {} on ws://{local}/{stage} (@connections: http://{local}/{stage}/@connections/{{id}})",
            api.api_id
        );
    }
    println!("  route selection {}", api.route_selection.as_str());
    let width = api.routes.keys().map(String::len).max().unwrap_or(0);
    for (key, route) in &api.routes {
        let function = route.function.as_deref().unwrap_or("(not runnable)");
        let response = if route.is_two_way() {
            "  [route response]"
        } else {
            ""
        };
        println!("  {key:<width$}  →  {function}{response}");
    }
}

/// Starts the stream pollers; a failure here leaves the HTTP front door running.
async fn start_event_sources(
    sdk: &aws_config::SdkConfig,
    runtime: &Runtime,
    checkpoint_file: PathBuf,
) -> Option<EventSources> {
    let mappings = match event_sources::discover_mappings(sdk, runtime).await {
        Ok(mappings) => mappings,
        Err(err) => {
            tracing::warn!("event source mappings not started: {err:#}");
            return None;
        }
    };
    for mapping in &mappings {
        println!(
            "  event source {} → {} (mapping {})",
            mapping.source_arn, mapping.function, mapping.uuid
        );
    }
    let options = EventSourceOptions {
        checkpoint_file,
        ..EventSourceOptions::default()
    };
    match EventSources::start(sdk, runtime, mappings, options) {
        Ok(sources) => Some(sources),
        Err(err) => {
            tracing::error!("event source mappings not started: {err:#}");
            None
        }
    }
}

async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("waiting for Ctrl-C"),
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")
    }
}
