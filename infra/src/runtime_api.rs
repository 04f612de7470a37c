//! A local stand-in for the Lambda Runtime API, so that a function's release binary runs here as it
//! runs in Lambda (a process that initialises, then asks the API for one event at a time and posts
//! each answer back), and can be measured from outside: time from process start to the first
//! `next` (init) and to the first answer (cold start), each invocation's time, and the process's
//! peak resident memory (what Lambda reports as `Max Memory Used`).
//!
//! Only what the runtime client (`lambda_runtime`) calls is served:
//! `GET /2018-06-01/runtime/invocation/next`, `POST …/invocation/{id}/response`,
//! `POST …/invocation/{id}/error` and `POST …/init/error`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::collections::{BTreeMap, HashMap};
use std::path::Path as FsPath;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

/// Running a function under the local Runtime API failed.
#[derive(Debug, Error)]
pub enum RuntimeError {
    #[error("starting the function: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("the function reported an init error: {0}")]
    Init(String),
    #[error("the function answered with an error: {body}")]
    Invocation { body: String },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the function's process is gone")]
    Gone,
}

/// What one invocation took and answered.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The function's answer, as JSON.
    pub response: serde_json::Value,
    /// From the event's hand-over (`next` answered) to the answer posted.
    pub duration: Duration,
    /// CPU time the process spent meanwhile (user and system; Linux only, else zero): the part of
    /// `duration` that stretches when Lambda gives less than a whole vCPU.
    pub cpu: Duration,
}

type Answer = Result<Bytes, String>;

struct Pending {
    event: Bytes,
    answer: oneshot::Sender<Answer>,
}

#[derive(Default)]
struct Shared {
    /// Answers awaited, by request id, with when the event was handed over.
    awaiting: HashMap<String, (Instant, oneshot::Sender<Answer>)>,
    /// When the process first asked for an event (its init was over).
    first_poll: Option<Instant>,
    init_error: Option<String>,
}

#[derive(Clone)]
struct Api {
    events: Arc<tokio::sync::Mutex<mpsc::Receiver<Pending>>>,
    shared: Arc<Mutex<Shared>>,
    function_arn: String,
    next_id: Arc<std::sync::atomic::AtomicU64>,
}

/// One function's process under a Runtime API of its own (one invocation at a time, as Lambda
/// gives a container).
pub struct FunctionProcess {
    child: Child,
    binary: std::path::PathBuf,
    started: Instant,
    events: mpsc::Sender<Pending>,
    shared: Arc<Mutex<Shared>>,
    server: tokio::task::JoinHandle<()>,
}

impl FunctionProcess {
    /// Starts `binary` with `environment` plus the variables Lambda sets (`AWS_LAMBDA_RUNTIME_API`
    /// pointing at a Runtime API of its own, the function's name, memory, log group), pinned to
    /// one CPU when `taskset` is there (Lambda below 1,769 MB gives less than one vCPU). Its output
    /// goes to `log` (the function's logs, for when something fails).
    pub async fn start(
        binary: &FsPath,
        name: &str,
        memory_mb: u32,
        environment: &BTreeMap<String, String>,
        log: &FsPath,
    ) -> Result<Self, RuntimeError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (events, receiver) = mpsc::channel(1);
        let shared = Arc::new(Mutex::new(Shared::default()));
        let api = Api {
            events: Arc::new(tokio::sync::Mutex::new(receiver)),
            shared: Arc::clone(&shared),
            function_arn: format!("arn:aws:lambda:us-east-1:000000000000:function:{name}"),
            next_id: Arc::default(),
        };
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api);
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::warn!(%error, "local runtime API stopped");
            }
        });
        let output = std::fs::File::create(log)?;
        let mut command = if which("taskset") {
            let mut command = Command::new("taskset");
            command.args(["-c", "0"]).arg(binary);
            command
        } else {
            Command::new(binary)
        };
        command
            .env_clear()
            .envs(environment)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string())
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .kill_on_drop(true);
        let started = Instant::now();
        let child = command.spawn()?;
        Ok(Self {
            child,
            binary: binary.to_owned(),
            started,
            events,
            shared,
            server,
        })
    }

    /// Hands `event` to the function and waits up to `timeout` for its answer.
    pub async fn invoke(
        &mut self,
        event: &serde_json::Value,
        timeout: Duration,
    ) -> Result<Invocation, RuntimeError> {
        let (answer, answered) = oneshot::channel();
        let pending = Pending {
            event: Bytes::from(event.to_string()),
            answer,
        };
        let cpu_before = self.cpu_time();
        self.events.send(pending).await.map_err(|_| RuntimeError::Gone)?;
        let handed_over = Instant::now();
        let outcome = tokio::select! {
            answer = answered => Some(answer),
            _ = tokio::time::sleep(timeout) => return Err(RuntimeError::Timeout(timeout)),
            _ = self.child.wait() => None,
        };
        let duration = handed_over.elapsed();
        let cpu = self.cpu_time().saturating_sub(cpu_before);
        match outcome {
            Some(Ok(Ok(bytes))) => Ok(Invocation {
                response: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
                duration,
                cpu,
            }),
            Some(Ok(Err(body))) => Err(RuntimeError::Invocation { body }),
            Some(Err(_)) => Err(RuntimeError::Gone),
            None => Err(self.init_failure().unwrap_or(RuntimeError::Gone)),
        }
    }

    /// From process start to its first request for an event: the init phase (runtime, SDK
    /// clients, configuration). `None` until it asked.
    pub fn init_time(&self) -> Option<Duration> {
        self.lock()
            .first_poll
            .map(|first| first.duration_since(self.started))
    }

    /// The binary it runs.
    pub fn binary(&self) -> &FsPath {
        &self.binary
    }

    /// When the process was started, to measure a first answer from.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The process's peak resident set so far, in KiB (Linux `VmHWM`); `None` elsewhere.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        // `taskset` execs the function in place: the child's pid is the function's.
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
    }

    /// CPU time (user + system) the process has used so far; zero where `/proc` is not there.
    pub fn cpu_time(&self) -> Duration {
        let Some(pid) = self.child.id() else {
            return Duration::ZERO;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return Duration::ZERO;
        };
        // Fields after the command name (which is in parentheses and may hold spaces): state is
        // field 3, utime and stime fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux).
        let Some((_, after_name)) = stat.rsplit_once(')') else {
            return Duration::ZERO;
        };
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
            .sum();
        Duration::from_millis(ticks * 10)
    }

    /// Stops the process and its Runtime API.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        self.server.abort();
    }

    fn init_failure(&self) -> Option<RuntimeError> {
        self.lock().init_error.clone().map(RuntimeError::Init)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn next(State(api): State<Api>) -> Response {
    {
        let mut shared = lock(&api.shared);
        shared.first_poll.get_or_insert_with(Instant::now);
    }
    let Some(pending) = api.events.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let number = api.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let id = format!("local-{number:06}");
    lock(&api.shared)
        .awaiting
        .insert(id.clone(), (Instant::now(), pending.answer));
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        + 900_000;
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    put("lambda-runtime-aws-request-id", id);
    put("lambda-runtime-deadline-ms", deadline.to_string());
    put("lambda-runtime-invoked-function-arn", api.function_arn.clone());
    put(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000;Sampled=0".into(),
    );
    put("content-type", "application/json".into());
    (StatusCode::OK, headers, pending.event).into_response()
}

async fn response(State(api): State<Api>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    answer(&api, &id, Ok(body))
}

async fn error(State(api): State<Api>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    answer(&api, &id, Err(String::from_utf8_lossy(&body).into_owned()))
}

fn answer(api: &Api, id: &str, answer: Answer) -> StatusCode {
    match lock(&api.shared).awaiting.remove(id) {
        Some((_, sender)) => {
            let _ = sender.send(answer);
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn init_error(State(api): State<Api>, body: Bytes) -> StatusCode {
    lock(&api.shared).init_error = Some(String::from_utf8_lossy(&body).into_owned());
    StatusCode::ACCEPTED
}
