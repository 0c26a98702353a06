//! Execution environments: the part of Lambda that queues invocations, starts processes on demand,
//! enforces timeouts and notices crashes.
//!
//! Why this exists: the emulator stores functions but cannot run them, and the function binaries
//! only know how to talk to a Lambda Runtime API. A [`Runtime`] owns one [`FunctionPool`] per
//! function. Each pool has a FIFO queue of invocations and up to `max_concurrency` instances
//! (child processes). Like Lambda, an instance is started when an invocation is queued and no
//! instance is idle or already starting for it; it is kept warm afterwards.
//!
//! Every instance gets its own Runtime API listener (see [`crate::runtime_api`]): the Runtime API
//! carries no instance identity, and we must know which process holds which invocation in order
//! to kill the right one on timeout and to fail the right invocation when a process dies. This
//! mirrors Lambda, where each sandbox has its own `AWS_LAMBDA_RUNTIME_API` endpoint.
//!
//! [`Runtime::invoke`] takes arbitrary event JSON so that other event sources (e.g. a future
//! Kinesis / DynamoDB Streams poller) can drive functions the same way the HTTP gateway does.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bytes::Bytes;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWriteExt as _, BufReader};
use tokio::process::Command;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::runtime_api;

/// What the runner needs to know to run one function (read from the emulator by discovery).
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    /// Function name, e.g. `orders-query`.
    pub name: String,
    /// Unqualified function ARN, passed to the runtime as the invoked function ARN.
    pub arn: String,
    /// The executable that implements the function (`<bin-dir>/<orders:binary tag>`).
    pub binary: PathBuf,
    /// `Environment.Variables` of the function.
    pub environment: BTreeMap<String, String>,
    /// The function's `Timeout`.
    pub timeout: Duration,
    /// The function's `MemorySize` in MB (informational; exported to the process).
    pub memory_mb: i32,
}

/// Settings shared by every function.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// Endpoint the functions should use for AWS calls (`AWS_ENDPOINT_URL`).
    pub endpoint_url: String,
    /// Region exported as `AWS_REGION` / `AWS_DEFAULT_REGION`.
    pub region: String,
    /// Maximum number of concurrent instances per function.
    pub max_concurrency: usize,
    /// Optional JSON-lines file that receives one `{"function","cold_init_ms"}` line per cold start
    /// and one `{"function","instance","peak_rss_kb"}` line per instance the runner stops.
    pub metrics_file: Option<PathBuf>,
    /// Working directory and `LAMBDA_TASK_ROOT` of the processes.
    pub task_root: PathBuf,
    /// Variables copied from the runner's own environment (credentials, `PATH`, `RUST_LOG`, ...).
    pub inherited_env: BTreeMap<String, String>,
}

impl RuntimeSettings {
    /// Builds settings, taking credentials, `PATH`, `RUST_LOG` and `RUST_BACKTRACE` from the
    /// runner's environment (credentials default to `test`/`test`, which the emulator accepts).
    pub fn from_process_env(
        endpoint_url: impl Into<String>,
        region: impl Into<String>,
        max_concurrency: usize,
        metrics_file: Option<PathBuf>,
        task_root: PathBuf,
    ) -> Self {
        let mut inherited_env = BTreeMap::new();
        for (key, default) in [
            ("AWS_ACCESS_KEY_ID", Some("test")),
            ("AWS_SECRET_ACCESS_KEY", Some("test")),
            ("AWS_SESSION_TOKEN", None),
            ("PATH", Some("/usr/local/bin:/usr/bin:/bin")),
            ("RUST_LOG", None),
            ("RUST_BACKTRACE", None),
        ] {
            match std::env::var(key) {
                Ok(value) => {
                    inherited_env.insert(key.to_owned(), value);
                }
                Err(_) => {
                    if let Some(default) = default {
                        inherited_env.insert(key.to_owned(), default.to_owned());
                    }
                }
            }
        }
        Self {
            endpoint_url: endpoint_url.into(),
            region: region.into(),
            max_concurrency: max_concurrency.max(1),
            metrics_file,
            task_root,
            inherited_env,
        }
    }
}

/// Why an invocation did not produce a response payload.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvokeError {
    #[error("function `{0}` is not runnable by this runner")]
    UnknownFunction(String),
    /// The function reported an error through `/runtime/invocation/{id}/error`.
    #[error("{error_type}: {error_message}")]
    Function {
        error_type: String,
        error_message: String,
        /// The error document as posted by the runtime.
        payload: Value,
    },
    /// The runtime reported `/runtime/init/error` while this invocation was waiting for it.
    #[error("init failed: {error_type}: {error_message}")]
    Init {
        error_type: String,
        error_message: String,
    },
    #[error("Task timed out after {:.2} seconds", .0.as_secs_f64())]
    Timeout(Duration),
    /// The process exited while holding (or starting up for) this invocation.
    #[error("Runtime exited: {0}")]
    Exit(String),
    #[error("could not start the function process: {0}")]
    Spawn(String),
    #[error("the function returned an invalid JSON payload: {0}")]
    InvalidResponse(String),
    #[error("response payload exceeds the 6 MB limit")]
    ResponseTooLarge,
    #[error("event payload could not be serialized: {0}")]
    InvalidPayload(String),
    #[error("the runner is shutting down")]
    Shutdown,
}

impl InvokeError {
    /// The `errorType` Lambda would report for this failure.
    pub fn error_type(&self) -> &str {
        match self {
            InvokeError::UnknownFunction(_) => "ResourceNotFoundException",
            InvokeError::Function { error_type, .. } => error_type,
            InvokeError::Init { .. } => "Runtime.InitError",
            InvokeError::Timeout(_) => "Sandbox.Timedout",
            InvokeError::Exit(_) => "Runtime.ExitError",
            InvokeError::Spawn(_) => "Runtime.InvalidEntrypoint",
            InvokeError::InvalidResponse(_) => "Runtime.InvalidResponse",
            InvokeError::ResponseTooLarge => "Function.ResponseSizeTooLarge",
            InvokeError::InvalidPayload(_) => "InvalidRequestContentException",
            InvokeError::Shutdown => "Runtime.Shutdown",
        }
    }
}

/// Counters for one function, mostly for tests and diagnostics.
#[derive(Debug, Clone, Default)]
pub struct PoolStats {
    /// Processes started so far.
    pub instances_started: u64,
    /// Processes currently alive (or starting).
    pub live_instances: usize,
    /// Highest number of simultaneously alive processes.
    pub peak_instances: usize,
    /// Cold init durations (spawn → first `next`), in start order.
    pub cold_inits: Vec<Duration>,
    pub timeouts: u64,
    /// Processes that exited while holding an invocation or before finishing init.
    pub crashes: u64,
    /// Highest peak resident set size (`VmHWM`) among the instances the runner stopped.
    pub peak_rss_kb: Option<u64>,
}

type Reply = oneshot::Sender<Result<Value, InvokeError>>;

struct Invocation {
    request_id: String,
    payload: Bytes,
    reply: Reply,
}

struct InFlight {
    instance_id: u64,
    reply: Reply,
    timer: JoinHandle<()>,
}

struct InstanceSlot {
    /// Set at the first `next` call.
    initialized: bool,
    /// Set when the runtime posted `/runtime/init/error` (its triggering invocation already failed).
    init_failed: bool,
    spawned_at: Instant,
    pid: Option<u32>,
    kill: Arc<Notify>,
}

#[derive(Default)]
struct PoolState {
    queue: VecDeque<Invocation>,
    instances: HashMap<u64, InstanceSlot>,
    in_flight: HashMap<String, InFlight>,
    next_instance_id: u64,
    shutting_down: bool,
    stats: PoolStats,
}

/// An invocation handed to an instance by `GET /runtime/invocation/next`.
pub(crate) struct Assigned {
    pub request_id: String,
    pub payload: Bytes,
    pub deadline_ms: u128,
    pub function_arn: String,
}

/// Why the Runtime API rejected a `response` / `error` post.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CompleteError {
    #[error("unknown or already completed request id `{0}`")]
    UnknownRequest(String),
    #[error("request id `{0}` belongs to another instance")]
    WrongInstance(String),
}

/// One function: its invocation queue and its instances.
pub struct FunctionPool {
    config: FunctionConfig,
    settings: Arc<RuntimeSettings>,
    state: Mutex<PoolState>,
    /// Woken (all waiters) whenever an invocation is queued.
    work_available: Notify,
    /// Woken whenever an instance goes away (used by shutdown).
    instance_gone: Notify,
}

impl FunctionPool {
    fn new(config: FunctionConfig, settings: Arc<RuntimeSettings>) -> Arc<Self> {
        Arc::new(Self {
            config,
            settings,
            state: Mutex::new(PoolState::default()),
            work_available: Notify::new(),
            instance_gone: Notify::new(),
        })
    }

    pub fn config(&self) -> &FunctionConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // A panic while holding the lock leaves plain bookkeeping behind; keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn stats(&self) -> PoolStats {
        let state = self.lock();
        let mut stats = state.stats.clone();
        stats.live_instances = state.instances.len();
        stats
    }

    async fn invoke(self: &Arc<Self>, payload: &Value) -> Result<Value, InvokeError> {
        let payload = serde_json::to_vec(payload)
            .map(Bytes::from)
            .map_err(|e| InvokeError::InvalidPayload(e.to_string()))?;
        let (reply, response) = oneshot::channel();
        let request_id = uuid::Uuid::new_v4().to_string();
        {
            let mut state = self.lock();
            if state.shutting_down {
                return Err(InvokeError::Shutdown);
            }
            state.queue.push_back(Invocation {
                request_id,
                payload,
                reply,
            });
        }
        self.work_available.notify_waiters();
        self.scale();
        response.await.unwrap_or(Err(InvokeError::Shutdown))
    }

    /// Starts instances while queued invocations outnumber the instances that are not busy
    /// (starting, idle in `next`, or about to call `next` after a response). Like Lambda, an
    /// invocation that finds no free environment gets a new one, up to the concurrency cap.
    fn scale(self: &Arc<Self>) {
        loop {
            let instance_id = {
                let mut state = self.lock();
                let busy = state.in_flight.len();
                let free = state.instances.len().saturating_sub(busy);
                if state.shutting_down
                    || state.queue.len() <= free
                    || state.instances.len() >= self.settings.max_concurrency
                {
                    return;
                }
                let id = state.next_instance_id;
                state.next_instance_id += 1;
                state.instances.insert(
                    id,
                    InstanceSlot {
                        initialized: false,
                        init_failed: false,
                        spawned_at: Instant::now(),
                        pid: None,
                        kill: Arc::new(Notify::new()),
                    },
                );
                state.stats.instances_started += 1;
                state.stats.peak_instances = state.stats.peak_instances.max(state.instances.len());
                id
            };
            if let Err(err) = self.spawn_instance(instance_id) {
                error!(function = %self.config.name, "could not start instance: {err:#}");
                let failed = {
                    let mut state = self.lock();
                    state.instances.remove(&instance_id);
                    state.queue.pop_front()
                };
                if let Some(invocation) = failed {
                    let _ = invocation
                        .reply
                        .send(Err(InvokeError::Spawn(format!("{err:#}"))));
                }
                self.instance_gone.notify_waiters();
                return;
            }
        }
    }

    fn spawn_instance(self: &Arc<Self>, instance_id: u64) -> anyhow::Result<()> {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").context("binding a Runtime API listener")?;
        listener
            .set_nonblocking(true)
            .context("configuring the Runtime API listener")?;
        let api_addr = listener
            .local_addr()
            .context("reading the Runtime API address")?;

        let mut command = Command::new(&self.config.binary);
        command
            .env_clear()
            .envs(self.child_env(&api_addr.to_string()))
            .current_dir(&self.settings.task_root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().with_context(|| {
            format!(
                "spawning {} for function {}",
                self.config.binary.display(),
                self.config.name
            )
        })?;
        let pid = child.id();
        let spawned_at = Instant::now();

        let listener =
            tokio::net::TcpListener::from_std(listener).context("registering the listener")?;
        let (dead_tx, dead_rx) = watch::channel(false);
        let router = runtime_api::router(Arc::clone(self), instance_id, dead_rx.clone());
        let mut server_dead = dead_rx;
        let name = self.config.name.clone();
        tokio::spawn(async move {
            let result = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = server_dead.wait_for(|dead| *dead).await;
                })
                .await;
            if let Err(err) = result {
                error!(function = %name, "Runtime API server failed: {err}");
            }
        });

        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(forward_lines(self.config.name.clone(), stdout));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(forward_lines(self.config.name.clone(), stderr));
        }

        let kill = {
            let mut state = self.lock();
            let slot = state
                .instances
                .get_mut(&instance_id)
                .context("instance slot vanished while starting")?;
            slot.pid = pid;
            slot.spawned_at = spawned_at;
            Arc::clone(&slot.kill)
        };
        info!(function = %self.config.name, instance = instance_id, pid, runtime_api = %api_addr, "started instance");

        let pool = Arc::clone(self);
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                () = kill.notified() => {
                    // The last moment /proc still describes the process.
                    if let Some(kb) = pid.and_then(peak_rss_kb) {
                        pool.record_peak_rss(instance_id, kb).await;
                    }
                    if let Err(err) = child.start_kill() {
                        warn!(function = %pool.config.name, instance = instance_id, "kill failed: {err}");
                    }
                    child.wait().await
                }
            };
            let _ = dead_tx.send(true);
            pool.on_instance_exit(instance_id, status);
        });
        Ok(())
    }

    fn child_env(&self, runtime_api: &str) -> BTreeMap<String, String> {
        let s = &self.settings;
        let c = &self.config;
        let mut env = c.environment.clone();
        let task_root = s.task_root.display().to_string();
        for (key, value) in [
            ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
            ("AWS_LAMBDA_FUNCTION_NAME", c.name.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", c.memory_mb.to_string()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", c.name),
            ),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "local-runner".to_owned()),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
            ("AWS_REGION", s.region.clone()),
            ("AWS_DEFAULT_REGION", s.region.clone()),
            ("AWS_ENDPOINT_URL", s.endpoint_url.clone()),
            ("_HANDLER", "bootstrap".to_owned()),
            ("LAMBDA_TASK_ROOT", task_root.clone()),
            ("LAMBDA_RUNTIME_DIR", task_root),
        ] {
            env.insert(key.to_owned(), value);
        }
        // Credentials, PATH, RUST_LOG, RUST_BACKTRACE: the runner's environment wins.
        env.extend(s.inherited_env.clone());
        env
    }

    /// `GET /runtime/invocation/next` for `instance_id`: waits for the next queued invocation.
    /// Returns `None` when the instance is gone (killed, exited, shutting down).
    pub(crate) async fn next_invocation(
        self: &Arc<Self>,
        instance_id: u64,
        mut dead: watch::Receiver<bool>,
    ) -> Option<Assigned> {
        let cold_init = {
            let mut state = self.lock();
            let slot = state.instances.get_mut(&instance_id)?;
            let cold = (!slot.initialized).then(|| slot.spawned_at.elapsed());
            slot.initialized = true;
            if let Some(cold) = cold {
                state.stats.cold_inits.push(cold);
            }
            cold
        };
        if let Some(cold) = cold_init {
            self.record_cold_init(instance_id, cold).await;
        }

        loop {
            let notified = self.work_available.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.lock();
                if *dead.borrow() || !state.instances.contains_key(&instance_id) {
                    return None;
                }
                if let Some(invocation) = state.queue.pop_front() {
                    let timeout = self.config.timeout;
                    let deadline = SystemTime::now() + timeout;
                    let deadline_ms = deadline
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_millis())
                        .unwrap_or_default();
                    let pool = Arc::downgrade(self);
                    let request_id = invocation.request_id.clone();
                    let timer = tokio::spawn(async move {
                        tokio::time::sleep(timeout).await;
                        if let Some(pool) = Weak::upgrade(&pool) {
                            pool.on_timeout(&request_id);
                        }
                    });
                    state.in_flight.insert(
                        invocation.request_id.clone(),
                        InFlight {
                            instance_id,
                            reply: invocation.reply,
                            timer,
                        },
                    );
                    return Some(Assigned {
                        request_id: invocation.request_id,
                        payload: invocation.payload,
                        deadline_ms,
                        function_arn: self.config.arn.clone(),
                    });
                }
            }
            tokio::select! {
                () = &mut notified => {}
                _ = dead.wait_for(|dead| *dead) => return None,
            }
        }
    }

    async fn record_cold_init(&self, instance_id: u64, cold: Duration) {
        let cold_init_ms = cold.as_secs_f64() * 1000.0;
        info!(function = %self.config.name, instance = instance_id, cold_init_ms = format!("{cold_init_ms:.1}"), "instance ready");
        self.append_metric(serde_json::json!({
            "function": self.config.name,
            "cold_init_ms": (cold_init_ms * 10.0).round() / 10.0,
        }))
        .await;
    }

    /// An instance the runner stops (shutdown, timeout, init error) reports the most memory
    /// it ever held: the closest local stand-in for Lambda's "Max Memory Used".
    async fn record_peak_rss(&self, instance_id: u64, kb: u64) {
        info!(function = %self.config.name, instance = instance_id, peak_rss_kb = kb, "instance peak memory");
        {
            let mut state = self.lock();
            state.stats.peak_rss_kb = state.stats.peak_rss_kb.max(Some(kb));
        }
        self.append_metric(serde_json::json!({
            "function": self.config.name,
            "instance": instance_id,
            "peak_rss_kb": kb,
        }))
        .await;
    }

    async fn append_metric(&self, line: Value) {
        let Some(path) = &self.settings.metrics_file else {
            return;
        };
        let result = async {
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .await?;
            file.write_all(format!("{line}\n").as_bytes()).await?;
            file.flush().await
        }
        .await;
        if let Err(err) = result {
            warn!(path = %path.display(), "could not append to the metrics file: {err}");
        }
    }

    /// `POST /runtime/invocation/{id}/response` or `/error`.
    pub(crate) fn complete(
        &self,
        instance_id: u64,
        request_id: &str,
        result: Result<Value, InvokeError>,
    ) -> Result<(), CompleteError> {
        let in_flight = {
            let mut state = self.lock();
            match state.in_flight.get(request_id) {
                None => return Err(CompleteError::UnknownRequest(request_id.to_owned())),
                Some(f) if f.instance_id != instance_id => {
                    return Err(CompleteError::WrongInstance(request_id.to_owned()));
                }
                Some(_) => state.in_flight.remove(request_id),
            }
        };
        if let Some(in_flight) = in_flight {
            in_flight.timer.abort();
            // The caller may have gone away (e.g. HTTP client disconnected); that's fine.
            let _ = in_flight.reply.send(result);
        }
        Ok(())
    }

    /// `POST /runtime/init/error`: fail the invocation that caused this cold start and stop
    /// the instance (it may not call `next` again).
    pub(crate) fn init_error(&self, instance_id: u64, error_type: String, error_message: String) {
        error!(function = %self.config.name, instance = instance_id, %error_type, %error_message, "init error");
        let (failed, kill) = {
            let mut state = self.lock();
            let kill = state.instances.get_mut(&instance_id).map(|slot| {
                slot.init_failed = true;
                Arc::clone(&slot.kill)
            });
            (state.queue.pop_front(), kill)
        };
        if let Some(invocation) = failed {
            let _ = invocation.reply.send(Err(InvokeError::Init {
                error_type,
                error_message,
            }));
        }
        if let Some(kill) = kill {
            kill.notify_one();
        }
    }

    fn on_timeout(&self, request_id: &str) {
        let (in_flight, kill) = {
            let mut state = self.lock();
            let Some(in_flight) = state.in_flight.remove(request_id) else {
                return;
            };
            state.stats.timeouts += 1;
            let kill = state
                .instances
                .get(&in_flight.instance_id)
                .map(|slot| Arc::clone(&slot.kill));
            (in_flight, kill)
        };
        warn!(
            function = %self.config.name,
            instance = in_flight.instance_id,
            request_id,
            "Task timed out after {:.2} seconds; killing the instance",
            self.config.timeout.as_secs_f64()
        );
        let _ = in_flight
            .reply
            .send(Err(InvokeError::Timeout(self.config.timeout)));
        if let Some(kill) = kill {
            kill.notify_one();
        }
    }

    fn on_instance_exit(self: &Arc<Self>, instance_id: u64, status: std::io::Result<ExitStatus>) {
        let status = match status {
            Ok(status) => status.to_string(),
            Err(err) => format!("wait failed: {err}"),
        };
        let (failed, shutting_down) = {
            let mut state = self.lock();
            let slot = state.instances.remove(&instance_id);
            let ids: Vec<String> = state
                .in_flight
                .iter()
                .filter(|(_, f)| f.instance_id == instance_id)
                .map(|(id, _)| id.clone())
                .collect();
            let mut failed: Vec<Reply> = ids
                .iter()
                .filter_map(|id| state.in_flight.remove(id))
                .map(|f| {
                    f.timer.abort();
                    f.reply
                })
                .collect();
            // Died before finishing init: the invocation that triggered it fails, as in Lambda
            // (this also stops a broken binary from being respawned forever).
            let died_in_init = slot
                .as_ref()
                .is_some_and(|slot| !slot.initialized && !slot.init_failed);
            if died_in_init && !state.shutting_down {
                if let Some(invocation) = state.queue.pop_front() {
                    failed.push(invocation.reply);
                }
            }
            if !failed.is_empty() {
                state.stats.crashes += 1;
            }
            (failed, state.shutting_down)
        };
        if failed.is_empty() || shutting_down {
            info!(function = %self.config.name, instance = instance_id, %status, "instance stopped");
        } else {
            error!(function = %self.config.name, instance = instance_id, %status, "instance exited during an invocation");
        }
        for reply in failed {
            let _ = reply.send(Err(if shutting_down {
                InvokeError::Shutdown
            } else {
                InvokeError::Exit(status.clone())
            }));
        }
        self.instance_gone.notify_waiters();
        // Queued invocations are still there; start replacements if needed.
        self.scale();
    }

    async fn shutdown(&self, grace: Duration) {
        let (queued, kills) = {
            let mut state = self.lock();
            state.shutting_down = true;
            let queued: Vec<Invocation> = state.queue.drain(..).collect();
            let kills: Vec<Arc<Notify>> = state
                .instances
                .values()
                .map(|slot| Arc::clone(&slot.kill))
                .collect();
            (queued, kills)
        };
        for invocation in queued {
            let _ = invocation.reply.send(Err(InvokeError::Shutdown));
        }
        for kill in kills {
            kill.notify_one();
        }
        let wait_all = async {
            loop {
                let gone = self.instance_gone.notified();
                tokio::pin!(gone);
                gone.as_mut().enable();
                if self.lock().instances.is_empty() {
                    return;
                }
                gone.await;
            }
        };
        if tokio::time::timeout(grace, wait_all).await.is_err() {
            warn!(function = %self.config.name, "instances did not stop within {grace:?}");
        }
    }
}

/// `VmHWM` of a live process: the peak resident set size, in kB (Linux only).
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

async fn forward_lines(function: String, stream: impl AsyncRead + Unpin) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                println!("[{function}] {}", text.trim_end_matches(['\r', '\n']));
            }
            Err(err) => {
                warn!(%function, "could not read the function's output: {err}");
                return;
            }
        }
    }
}

/// All runnable functions. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pools: Arc<BTreeMap<String, Arc<FunctionPool>>>,
}

impl Runtime {
    pub fn new(functions: Vec<FunctionConfig>, settings: RuntimeSettings) -> Self {
        let settings = Arc::new(settings);
        let pools = functions
            .into_iter()
            .map(|config| {
                (
                    config.name.clone(),
                    FunctionPool::new(config, Arc::clone(&settings)),
                )
            })
            .collect();
        Self {
            pools: Arc::new(pools),
        }
    }

    /// Invokes `function` (by name) synchronously with an arbitrary event, the way Lambda's
    /// `RequestResponse` invocation does: queue, start an instance if needed, wait for the result.
    pub async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, InvokeError> {
        let pool = self
            .pools
            .get(function)
            .ok_or_else(|| InvokeError::UnknownFunction(function.to_owned()))?;
        pool.invoke(payload).await
    }

    pub fn functions(&self) -> impl Iterator<Item = &FunctionConfig> {
        self.pools.values().map(|pool| pool.config())
    }

    /// Finds a function by name or (possibly qualified) ARN.
    pub fn resolve(&self, name_or_arn: &str) -> Option<&FunctionConfig> {
        self.functions()
            .find(|f| f.name == name_or_arn || f.arn == name_or_arn)
    }

    pub fn stats(&self, function: &str) -> Option<PoolStats> {
        self.pools.get(function).map(|pool| pool.stats())
    }

    /// Fails queued invocations, kills every instance and waits (up to `grace`) for them to exit.
    pub async fn shutdown(&self, grace: Duration) {
        for pool in self.pools.values() {
            pool.shutdown(grace).await;
        }
    }
}
