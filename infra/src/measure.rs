//! Each deployed function's release binary, run as Lambda runs it (a process under the Lambda
//! Runtime API, [`crate::runtime_api`], pinned to one CPU) against the local stack, with a
//! representative load: time from process start to its first answer (cold start), time per
//! invocation, and peak resident memory. `cargo xtask bench` prints the table; the template's
//! `MemorySize` and `Timeout` are chosen from it (README, "Deploying").
//!
//! The loads: an API function answers one route 20 times warm after its cold call (registration:
//! registering a customer, then `GET /v1/me`); inbound mail takes in 10 messages; the retention run
//! makes 3 hourly runs; the privacy worker builds the export of a customer with 10,000 access-log
//! entries slice by slice, as the queue hands them over (the heaviest work any function does); the
//! key set-up answers one stack creation.

use crate::bootstrap::{BootstrapError, LocalStack, s3_client};
use crate::identity::{IdentityError, sign_in};
use crate::runtime_api::{FunctionProcess, RuntimeError};
use aws_sdk_sqs::Client as SqsClient;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// Access-log entries of the customer whose export the privacy worker builds.
pub const EXPORT_ENTRIES: usize = 10_000;

/// Warm invocations per API function (the privacy routes allow 30 per account in 10 minutes).
const WARM_CALLS: usize = 20;

/// Measuring failed.
#[derive(Debug, Error)]
pub enum MeasureError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Stack(#[from] BootstrapError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("{0}")]
    Setup(String),
    #[error("{function}: {detail}")]
    Unexpected { function: String, detail: String },
}

/// One invocation's time: wall clock, and the CPU the process spent in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timing {
    pub wall: Duration,
    pub cpu: Duration,
}

impl Timing {
    /// The time at the CPU share Lambda gives at `memory_mb` (a full vCPU at 1,769 MB, in
    /// proportion below): the CPU part stretches, the waiting on AWS does not.
    pub fn at_lambda_share(&self, memory_mb: u64) -> Duration {
        let share = (memory_mb as f64 / 1_769.0).min(1.0);
        self.wall.saturating_sub(self.cpu) + self.cpu.min(self.wall).div_f64(share)
    }
}

impl From<&crate::runtime_api::Invocation> for Timing {
    fn from(invocation: &crate::runtime_api::Invocation) -> Self {
        Self {
            wall: invocation.duration,
            cpu: invocation.cpu,
        }
    }
}

/// What one function measured.
#[derive(Debug, Clone)]
pub struct FunctionFigures {
    pub logical_id: String,
    /// The binary that ran.
    pub binary: PathBuf,
    /// The template's `MemorySize` and `Timeout` for it.
    pub memory_mb: u64,
    pub timeout_s: u64,
    /// What it was made to do.
    pub load: String,
    /// Process start to its first request for an event.
    pub init: Duration,
    /// Process start to its first answer.
    pub cold_start: Duration,
    /// The first invocation.
    pub first: Timing,
    /// The invocations after the first.
    pub warm: Vec<Timing>,
    pub peak_rss_kib: u64,
}

impl FunctionFigures {
    /// The median warm invocation (zero when there was none).
    pub fn warm_median(&self) -> Timing {
        Timing {
            wall: percentile(self.warm.iter().map(|t| t.wall), 50),
            cpu: percentile(self.warm.iter().map(|t| t.cpu), 50),
        }
    }

    /// The 99th-percentile warm invocation (wall clock).
    pub fn warm_p99(&self) -> Duration {
        percentile(self.warm.iter().map(|t| t.wall), 99)
    }

    /// The invocation that takes longest at Lambda's CPU share, the first included.
    pub fn longest(&self) -> Timing {
        self.warm
            .iter()
            .copied()
            .chain([self.first])
            .max_by_key(|t| t.at_lambda_share(self.memory_mb))
            .unwrap_or(self.first)
    }
}

/// The nearest-rank `p`th percentile of `values` (zero when there are none): the benches' p50 and p99.
pub fn percentile(values: impl Iterator<Item = Duration>, p: usize) -> Duration {
    let mut sorted: Vec<Duration> = values.collect();
    sorted.sort();
    match sorted.len() {
        0 => Duration::ZERO,
        // Nearest rank: the smallest value with at least p % of the values at or below it.
        n => sorted[(n * p).div_ceil(100).clamp(1, n) - 1],
    }
}

/// The table `cargo xtask bench` prints.
pub fn table(figures: &[FunctionFigures]) -> String {
    let mut out = String::from(
        "| function | memory / timeout | load | init | cold start (first answer) | warm median (CPU) | warm p99 | longest (CPU) | longest at Lambda's CPU share | peak RSS |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for f in figures {
        let median = f.warm_median();
        let longest = f.longest();
        out.push_str(&format!(
            "| {} | {} MB / {} s | {} | {:.0} ms | {:.0} ms | {:.1} ms ({:.0} ms) | {:.1} ms | {:.2} s ({:.2} s) | {:.2} s | {:.1} MB |\n",
            f.logical_id,
            f.memory_mb,
            f.timeout_s,
            f.load,
            ms(f.init),
            ms(f.cold_start),
            ms(median.wall),
            ms(median.cpu),
            ms(f.warm_p99()),
            longest.wall.as_secs_f64(),
            longest.cpu.as_secs_f64(),
            longest.at_lambda_share(f.memory_mb).as_secs_f64(),
            f.peak_rss_kib as f64 / 1024.0,
        ));
    }
    out
}

/// Where the README keeps the latest figures: between these two lines, replaced by each run.
pub const README_START: &str = "<!-- cargo xtask bench functions: start -->";
/// See [`README_START`].
pub const README_END: &str = "<!-- cargo xtask bench functions: end -->";

/// `readme` with the text between [`README_START`] and [`README_END`] replaced by `figures` under a
/// line saying when and how they were measured; `None` when the markers are missing.
pub fn readme_with(readme: &str, figures: &str, date: &str) -> Option<String> {
    replace_section(
        readme,
        "functions",
        &format!(
            "Measured {date} with `cargo xtask bench functions` (release builds for this machine's \
             architecture under the local Lambda Runtime API, one CPU).\n\n{}",
            figures.trim_end()
        ),
    )
}

/// `readme` with the text between `<!-- cargo xtask bench {section}: start -->` and its `end`
/// marker replaced by `body`: each bench owns one section, rewritten on each run. `None` when the
/// markers are missing.
pub fn replace_section(readme: &str, section: &str, body: &str) -> Option<String> {
    let start_marker = format!("<!-- cargo xtask bench {section}: start -->");
    let end_marker = format!("<!-- cargo xtask bench {section}: end -->");
    let start = readme.find(&start_marker)? + start_marker.len();
    let end = start + readme[start..].find(&end_marker)?;
    Some(format!(
        "{}\n\n{}\n{}",
        &readme[..start],
        body.trim_end(),
        &readme[end..]
    ))
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

/// A signed-in customer who registered through the registration binary.
struct Customer {
    sub: String,
    email: String,
}

/// Runs every deployed function's binary from `release_dir` against `stack` and returns its
/// figures; each function's output goes to `log_dir/<crate>.log`.
pub async fn measure_functions(
    stack: &LocalStack,
    release_dir: &Path,
    log_dir: &Path,
) -> Result<Vec<FunctionFigures>, MeasureError> {
    std::fs::create_dir_all(log_dir)
        .map_err(|e| MeasureError::Setup(format!("{}: {e}", log_dir.display())))?;
    let sdk = stack.sdk_config().await;
    let sqs = SqsClient::new(&sdk);
    // The privacy functions queue to a queue of the bench's own, which it hands to the worker as
    // Lambda's event source would (the local stack's queue has a local worker of its own).
    let queue = sqs
        .create_queue()
        .queue_name(format!("bench-privacy-jobs-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .map_err(|e| MeasureError::Setup(format!("bench queue: {e}")))?
        .queue_url
        .unwrap_or_default();
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    let pool = stack.physical_id("UserPool").unwrap_or_default();
    let client = stack.physical_id("UserPoolClient").unwrap_or_default();
    let email = format!("bench+{}@example.com", uuid::Uuid::new_v4().simple());
    let tokens = sign_in(&cognito, &pool, &client, &email, &["customer"]).await?;
    let customer = Customer {
        sub: sub_of(&tokens.id_token).ok_or_else(|| MeasureError::Setup("no sub in the token".into()))?,
        email,
    };
    let runner = Runner {
        stack,
        release_dir: release_dir.to_owned(),
        log_dir: log_dir.to_owned(),
        queue: queue.clone(),
    };
    let mut figures = Vec::new();

    // Registration: the customer registers (cold), then reads their account.
    let register = api_event(
        "POST",
        "/v1/customers",
        Some(customer_body(&customer.email)),
        Some(&customer),
        0,
    );
    let me = |n| api_event("GET", "/v1/me", None, Some(&customer), n);
    figures.push(
        runner
            .api(
                "RegistrationFunction",
                "register a customer, then GET /v1/me",
                register,
                me,
                201,
            )
            .await?,
    );
    let list = |n| api_event("GET", "/v1/service-requests", None, Some(&customer), n);
    figures.push(
        runner
            .api("RequestsFunction", "GET /v1/service-requests", list(0), list, 200)
            .await?,
    );
    // A provider without an account yet: the fixture's caller (the route is the providers').
    let scheduling = fixture("scheduling-my-assignments.json")?;
    let assignments = |n: usize| {
        let mut event = scheduling.clone();
        event["requestContext"]["requestId"] = json!(format!("bench-{}", uuid::Uuid::new_v4().simple()));
        event["requestContext"]["http"]["sourceIp"] = json!(format!("198.51.100.{}", n % 250 + 1));
        event
    };
    figures.push(
        runner
            .api(
                "SchedulingFunction",
                "GET /v1/providers/me/assignments",
                assignments(0),
                assignments,
                200,
            )
            .await?,
    );
    let inventory = |n| api_event("GET", "/v1/me/data-inventory", None, Some(&customer), n);
    figures.push(
        runner
            .api(
                "PrivacyFunction",
                "GET /v1/me/data-inventory",
                inventory(0),
                inventory,
                200,
            )
            .await?,
    );
    let inquiries = |n| api_event("GET", "/v1/me/support/inquiries", None, Some(&customer), n);
    figures.push(
        runner
            .api(
                "SupportFunction",
                "GET /v1/me/support/inquiries",
                inquiries(0),
                inquiries,
                200,
            )
            .await?,
    );
    figures.push(runner.inbound_mail().await?);
    figures.push(runner.retention().await?);
    figures.push(runner.privacy_worker(&customer, &sqs).await?);
    figures.push(runner.key_setup().await?);
    Ok(figures)
}

/// The baselines beside them, built the same way: a hello-world `lambda_http` function, and one
/// that makes the single GetItem a minimal read needs with the SDK, without and with its connection
/// opened during init. Each answers a cold call, then [`WARM_CALLS`].
pub async fn measure_baselines(
    stack: &LocalStack,
    release_dir: &Path,
    log_dir: &Path,
) -> Result<Vec<FunctionFigures>, MeasureError> {
    std::fs::create_dir_all(log_dir)
        .map_err(|e| MeasureError::Setup(format!("{}: {e}", log_dir.display())))?;
    let table = stack.physical_id("DataTable").unwrap_or_default();
    let mut figures = Vec::new();
    for (name, binary, warm_connections) in [
        ("hello-world", "hello-world", false),
        ("get-item", "get-item", false),
        ("get-item, connection warmed at init", "get-item", true),
    ] {
        let mut environment = BTreeMap::from([
            ("AWS_ENDPOINT_URL".to_owned(), stack.endpoint.clone()),
            ("AWS_REGION".to_owned(), crate::bootstrap::REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID".to_owned(), "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), "testing".to_owned()),
            ("TABLE_NAME".to_owned(), table.clone()),
        ]);
        if warm_connections {
            environment.insert("WARM_CONNECTIONS".into(), "1".into());
        }
        let path = release_dir.join(binary);
        let log = log_dir.join(format!("{binary}.log"));
        let mut process = FunctionProcess::start(&path, binary, 256, &environment, &log).await?;
        let event = |n| api_event("GET", "/", None, None, n);
        let first = process.invoke(&event(0), ANSWER_WITHIN).await?;
        let cold_start = process.started().elapsed();
        expect_status(name, &first.response, 200)?;
        let mut warm = Vec::new();
        for n in 1..=WARM_CALLS {
            warm.push(Timing::from(&process.invoke(&event(n), ANSWER_WITHIN).await?));
        }
        figures.push(FunctionFigures {
            logical_id: name.to_owned(),
            binary: path.clone(),
            memory_mb: 256,
            timeout_s: 15,
            load: "GET, cold then 20 warm".into(),
            init: process.init_time().unwrap_or_default(),
            cold_start,
            first: Timing::from(&first),
            warm,
            peak_rss_kib: process.peak_rss_kib().unwrap_or(0),
        });
        process.stop().await;
    }
    Ok(figures)
}

struct Runner<'a> {
    stack: &'a LocalStack,
    release_dir: PathBuf,
    log_dir: PathBuf,
    queue: String,
}

/// How long the bench waits for one answer (longer than any function's timeout).
const ANSWER_WITHIN: Duration = Duration::from_secs(600);

impl Runner<'_> {
    async fn start(&self, logical_id: &str) -> Result<(FunctionProcess, u64, u64), MeasureError> {
        let template = &self.stack.template;
        let binary = template
            .functions()
            .map_err(|e| MeasureError::Setup(e.to_string()))?
            .into_iter()
            .find(|f| f.logical_id == logical_id)
            .map(|f| f.binary)
            .ok_or_else(|| MeasureError::Setup(format!("no function {logical_id}")))?;
        let memory = template.function_number(logical_id, "MemorySize").unwrap_or(128);
        let timeout = template.function_number(logical_id, "Timeout").unwrap_or(3);
        let mut environment = template
            .function_environment(logical_id, self.stack)
            .map_err(|e| MeasureError::Setup(e.to_string()))?;
        environment.insert("PRIVACY_JOBS_QUEUE_URL".into(), self.queue.clone());
        environment.insert("AWS_ENDPOINT_URL".into(), self.stack.endpoint.clone());
        environment.insert("AWS_REGION".into(), crate::bootstrap::REGION.into());
        environment.insert("AWS_ACCESS_KEY_ID".into(), logical_id.into());
        environment.insert("AWS_SECRET_ACCESS_KEY".into(), "testing".into());
        environment.insert("RUST_LOG".into(), "warn".into());
        let path = self.release_dir.join(&binary);
        if !path.is_file() {
            return Err(MeasureError::Setup(format!(
                "{} is not built (cargo build --release -p {binary})",
                path.display()
            )));
        }
        let process = FunctionProcess::start(
            &path,
            logical_id,
            memory as u32,
            &environment,
            &self.log_dir.join(format!("{binary}.log")),
        )
        .await?;
        Ok((process, memory, timeout))
    }

    /// An API function: `first` cold, then [`WARM_CALLS`] of `warm(n)`, each answered `status`.
    async fn api(
        &self,
        logical_id: &str,
        load: &str,
        first: Value,
        warm: impl Fn(usize) -> Value,
        first_status: u64,
    ) -> Result<FunctionFigures, MeasureError> {
        let (mut process, memory_mb, timeout_s) = self.start(logical_id).await?;
        let cold = process.invoke(&first, ANSWER_WITHIN).await?;
        let cold_start = process.started().elapsed();
        expect_status(logical_id, &cold.response, first_status)?;
        let mut timings = Vec::new();
        for n in 1..=WARM_CALLS {
            let answer = process.invoke(&warm(n), ANSWER_WITHIN).await?;
            expect_status(logical_id, &answer.response, 200)?;
            timings.push(Timing::from(&answer));
        }
        Ok(self
            .figures(
                logical_id,
                load,
                process,
                memory_mb,
                timeout_s,
                cold_start,
                Timing::from(&cold),
                timings,
            )
            .await)
    }

    #[allow(clippy::too_many_arguments)]
    async fn figures(
        &self,
        logical_id: &str,
        load: &str,
        process: FunctionProcess,
        memory_mb: u64,
        timeout_s: u64,
        cold_start: Duration,
        first: Timing,
        warm: Vec<Timing>,
    ) -> FunctionFigures {
        let figures = FunctionFigures {
            logical_id: logical_id.to_owned(),
            binary: process.binary().to_owned(),
            memory_mb,
            timeout_s,
            load: load.to_owned(),
            init: process.init_time().unwrap_or_default(),
            cold_start,
            first,
            warm,
            peak_rss_kib: process.peak_rss_kib().unwrap_or(0),
        };
        process.stop().await;
        figures
    }

    /// Inbound mail: 10 messages from an address no account holds, stored as SES stores them.
    async fn inbound_mail(&self) -> Result<FunctionFigures, MeasureError> {
        let logical_id = "InboundMailFunction";
        let s3 = s3_client(&self.stack.sdk_config().await);
        let bucket = self.stack.physical_id("SupportMailBucket").unwrap_or_default();
        let fixture = fixture("inbound-mail-receipt.json")?;
        let (mut process, memory_mb, timeout_s) = self.start(logical_id).await?;
        let mut timings = Vec::new();
        let mut cold = None;
        for n in 0..10 {
            let message_id = uuid::Uuid::new_v4().simple().to_string();
            let raw = format!(
                "From: sender{n}@mail.example.com\r\nTo: support@officertrak.com\r\nSubject: Question {n}\r\nMessage-ID: <{message_id}@mail.example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nWhen do you open on Sundays?\r\n"
            );
            s3.put_object()
                .bucket(&bucket)
                .key(format!("{}{message_id}", inbound_mail::OBJECT_PREFIX))
                .body(raw.into_bytes().into())
                .send()
                .await
                .map_err(|e| MeasureError::Setup(format!("storing a message: {e}")))?;
            let mut event = fixture.clone();
            let now = jiff::Timestamp::now().to_string();
            event["Records"][0]["ses"]["mail"]["messageId"] = json!(message_id);
            event["Records"][0]["ses"]["mail"]["timestamp"] = json!(now);
            event["Records"][0]["ses"]["receipt"]["timestamp"] = json!(now);
            let answer = process.invoke(&event, ANSWER_WITHIN).await?;
            match cold {
                None => cold = Some((process.started().elapsed(), Timing::from(&answer))),
                Some(_) => timings.push(Timing::from(&answer)),
            }
        }
        let (cold_start, first) = cold.unwrap_or_default();
        Ok(self
            .figures(
                logical_id,
                "10 messages taken in",
                process,
                memory_mb,
                timeout_s,
                cold_start,
                first,
                timings,
            )
            .await)
    }

    /// The retention run: 3 hourly runs.
    async fn retention(&self) -> Result<FunctionFigures, MeasureError> {
        let logical_id = "RetentionFunction";
        let event = fixture("retention-hourly-purge.json")?;
        let (mut process, memory_mb, timeout_s) = self.start(logical_id).await?;
        let first = process.invoke(&event, ANSWER_WITHIN).await?;
        let cold_start = process.started().elapsed();
        let mut timings = Vec::new();
        for _ in 0..2 {
            timings.push(Timing::from(&process.invoke(&event, ANSWER_WITHIN).await?));
        }
        Ok(self
            .figures(
                logical_id,
                "3 hourly runs",
                process,
                memory_mb,
                timeout_s,
                cold_start,
                Timing::from(&first),
                timings,
            )
            .await)
    }

    /// The privacy worker: the customer's export, with [`EXPORT_ENTRIES`] access-log entries,
    /// requested through the privacy binary, then built slice by slice from the bench queue.
    async fn privacy_worker(
        &self,
        customer: &Customer,
        sqs: &SqsClient,
    ) -> Result<FunctionFigures, MeasureError> {
        let logical_id = "PrivacyWorkerFunction";
        self.seed_access_log(&customer.sub).await?;
        let (mut privacy, _, _) = self.start("PrivacyFunction").await?;
        let request = api_event(
            "POST",
            "/v1/privacy-requests",
            Some(json!({"type": "access"})),
            Some(customer),
            0,
        );
        let asked = privacy.invoke(&request, ANSWER_WITHIN).await?;
        privacy.stop().await;
        expect_status("PrivacyFunction", &asked.response, 202)?;
        let (mut process, memory_mb, timeout_s) = self.start(logical_id).await?;
        let mut cold = None;
        let mut timings = Vec::new();
        let mut slices = 0;
        loop {
            let received = sqs
                .receive_message()
                .queue_url(&self.queue)
                .max_number_of_messages(1)
                .wait_time_seconds(1)
                .send()
                .await
                .map_err(|e| MeasureError::Setup(format!("bench queue: {e}")))?;
            let Some(message) = received.messages.unwrap_or_default().into_iter().next() else {
                break;
            };
            slices += 1;
            let event = json!({"Records": [{
                "messageId": message.message_id.clone().unwrap_or_default(),
                "receiptHandle": message.receipt_handle.clone().unwrap_or_default(),
                "body": message.body.clone().unwrap_or_default(),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0",
                    "SenderId": "bench", "ApproximateFirstReceiveTimestamp": "0"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:bench",
                "awsRegion": "us-east-1"
            }]});
            let answer = process.invoke(&event, ANSWER_WITHIN).await?;
            if answer.response["batchItemFailures"]
                .as_array()
                .is_some_and(|f| !f.is_empty())
            {
                return Err(MeasureError::Unexpected {
                    function: logical_id.into(),
                    detail: format!("a slice failed: {}", answer.response),
                });
            }
            if let Some(handle) = message.receipt_handle {
                let _ = sqs
                    .delete_message()
                    .queue_url(&self.queue)
                    .receipt_handle(handle)
                    .send()
                    .await;
            }
            match cold {
                None => cold = Some((process.started().elapsed(), Timing::from(&answer))),
                Some(_) => timings.push(Timing::from(&answer)),
            }
            if slices > 2_000 {
                return Err(MeasureError::Unexpected {
                    function: logical_id.into(),
                    detail: "the export does not finish".into(),
                });
            }
        }
        let (cold_start, first) = cold.ok_or_else(|| MeasureError::Unexpected {
            function: logical_id.into(),
            detail: "no job was queued".into(),
        })?;
        let load = format!("export of {EXPORT_ENTRIES} access-log entries, {slices} slices");
        Ok(self
            .figures(
                logical_id, &load, process, memory_mb, timeout_s, cold_start, first, timings,
            )
            .await)
    }

    async fn seed_access_log(&self, user_id: &str) -> Result<(), MeasureError> {
        use futures::StreamExt;
        let state = platform::AppState::new(
            self.stack.function_config("PrivacyWorkerFunction")?,
            &self.stack.sdk_config().await,
            platform::Clock::System,
        )
        .await
        .map_err(|e| MeasureError::Setup(e.to_string()))?;
        let results: Vec<Result<(), platform::store::StoreError>> = futures::stream::iter(0..EXPORT_ENTRIES)
            .map(|n| {
                let state = &state;
                async move {
                    let entry = edge::access_log::AccessLogEntry {
                        log_owner: user_id.to_owned(),
                        request_id: format!("bench-{n:06}"),
                        route: "GET /v1/me".into(),
                        status_code: 200,
                        accessed_at: jiff::Timestamp::now(),
                        source_ip: Some(format!("10.1.{}.{}", n / 250, n % 250)),
                    };
                    state.store.create(&entry).await
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        results
            .into_iter()
            .collect::<Result<Vec<()>, _>>()
            .map_err(|e| MeasureError::Setup(format!("seeding the access log: {e}")))?;
        Ok(())
    }

    /// The key set-up: one stack creation, answered to a local stand-in for CloudFormation's URL.
    async fn key_setup(&self) -> Result<FunctionFigures, MeasureError> {
        let logical_id = "KeySetupFunction";
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| MeasureError::Setup(e.to_string()))?;
        let address = listener
            .local_addr()
            .map_err(|e| MeasureError::Setup(e.to_string()))?;
        let answers = axum::Router::new().fallback(|| async { axum::http::StatusCode::OK });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, answers).await;
        });
        let mut event = fixture("key-setup-create.json")?;
        event["ResponseURL"] = json!(format!("http://{address}/cloudformation-answer"));
        let (mut process, memory_mb, timeout_s) = self.start(logical_id).await?;
        let first = process.invoke(&event, ANSWER_WITHIN).await?;
        let cold_start = process.started().elapsed();
        server.abort();
        Ok(self
            .figures(
                logical_id,
                "one stack creation",
                process,
                memory_mb,
                timeout_s,
                cold_start,
                Timing::from(&first),
                Vec::new(),
            )
            .await)
    }
}

fn fixture(name: &str) -> Result<Value, MeasureError> {
    let path = crate::repo_root().join("events").join(name);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| MeasureError::Setup(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| MeasureError::Setup(format!("{name}: {e}")))
}

fn expect_status(function: &str, response: &Value, status: u64) -> Result<(), MeasureError> {
    match response["statusCode"].as_u64() {
        Some(got) if got == status => Ok(()),
        _ => Err(MeasureError::Unexpected {
            function: function.to_owned(),
            detail: format!("expected {status}, answered {response}"),
        }),
    }
}

/// An API Gateway HTTP API (payload 2.0) event as its JWT authorizer hands it on, from the
/// registration fixture: `method path`, an optional JSON body, the caller's claims, and a source
/// address per call `n` (rate limits are per address).
fn api_event(method: &str, path: &str, body: Option<Value>, caller: Option<&Customer>, n: usize) -> Value {
    let mut event: Value =
        serde_json::from_str(include_str!("../../events/registration-get-me.json")).unwrap_or_default();
    let route = format!("{method} {path}");
    event["routeKey"] = json!(route);
    event["rawPath"] = json!(path);
    event["requestContext"]["routeKey"] = json!(route);
    event["requestContext"]["http"]["method"] = json!(method);
    event["requestContext"]["http"]["path"] = json!(path);
    event["requestContext"]["http"]["sourceIp"] = json!(format!("198.51.100.{}", n % 250 + 1));
    event["requestContext"]["requestId"] = json!(format!("bench-{}", uuid::Uuid::new_v4().simple()));
    let now = jiff::Timestamp::now().as_second();
    match caller {
        Some(customer) => {
            let claims = &mut event["requestContext"]["authorizer"]["jwt"]["claims"];
            claims["sub"] = json!(customer.sub);
            claims["email"] = json!(customer.email);
            claims["auth_time"] = json!(now.to_string());
            claims["iat"] = json!(now.to_string());
            claims["exp"] = json!((now + 3_600).to_string());
        }
        None => {
            if let Some(context) = event["requestContext"].as_object_mut() {
                context.remove("authorizer");
            }
        }
    }
    if let Some(body) = body {
        event["body"] = json!(body.to_string());
        event["headers"]["content-type"] = json!("application/json");
    }
    event
}

fn customer_body(email: &str) -> Value {
    let address = json!({"line1": "12 Larkspur Row", "city": "Pinedale", "region": "WY",
        "postal_code": "82941", "country": "US"});
    json!({
        "kind": "business",
        "name": "Bench Customer",
        "phone": "+13075550177",
        "email": email,
        "date_of_birth": "1984-05-06",
        "home_address": address,
        "mailing_address": address,
        "business_name": "Bench Events LLC",
        "ein": "91-7654321",
        "policy_version": "2026-11-01",
        "marketing_consent": false
    })
}

fn sub_of(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: BTreeMap<String, Value> = serde_json::from_slice(&bytes).ok()?;
    claims.get("sub")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_from_the_sorted_values() {
        let values = (1..=100).rev().map(Duration::from_millis);
        assert_eq!(percentile(values.clone(), 50), Duration::from_millis(50));
        assert_eq!(percentile(values, 99), Duration::from_millis(99));
        assert_eq!(percentile(std::iter::empty(), 99), Duration::ZERO);
    }

    #[test]
    fn only_the_cpu_part_stretches_and_only_below_a_full_vcpu() {
        let timing = Timing {
            wall: Duration::from_millis(1_256),
            cpu: Duration::from_millis(256),
        };
        assert_eq!(timing.at_lambda_share(256).as_millis(), 1_000 + 1_769);
        assert_eq!(timing.at_lambda_share(3_538).as_millis(), 1_256);
    }

    #[test]
    fn the_readme_figures_are_replaced_between_the_markers_only() {
        let readme = format!("# T\n\n{README_START}\nold\n{README_END}\n\nafter\n");
        let new = readme_with(&readme, "| a |\n", "2026-12-03").expect("markers");
        assert!(
            new.contains("| a |") && !new.contains("old") && new.ends_with("after\n"),
            "{new}"
        );
        assert!(new.contains("Measured 2026-12-03"));
        assert_eq!(
            readme_with(&new, "| b |", "2026-12-04")
                .expect("again")
                .matches(README_START)
                .count(),
            1
        );
        assert_eq!(readme_with("no markers", "| a |", "d"), None);
    }

    #[test]
    fn an_api_event_carries_the_callers_claims_and_the_route() {
        let customer = Customer {
            sub: "s-1".into(),
            email: "a@example.com".into(),
        };
        let event = api_event("POST", "/v1/customers", Some(json!({"a": 1})), Some(&customer), 3);
        assert_eq!(event["routeKey"], "POST /v1/customers");
        assert_eq!(
            event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"],
            "s-1"
        );
        assert_eq!(event["body"], "{\"a\":1}");
        let anonymous = api_event("GET", "/v1/x", None, None, 0);
        assert!(anonymous["requestContext"].get("authorizer").is_none());
    }
}
