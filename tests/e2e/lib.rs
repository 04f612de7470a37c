//! The harness of the end-to-end tests: one emulator (started by `cargo xtask test`, found through
//! `AWS_ENDPOINT_URL`), the template's resources created in it once, one local gateway serving the
//! functions on a free port, and the privacy worker taking jobs from its queue, shared by every test
//! of the run.

use aws_config::SdkConfig;
use infra::bootstrap::{LocalStack, bootstrap};
use infra::gateway::Gateway;
use infra::identity::{Tokens, sign_in};
use infra::{project_template, repo_root};
use platform::AppState;
use platform::Clock;
use std::net::SocketAddr;
use std::sync::OnceLock;

/// The shared stack of a test run.
pub struct TestStack {
    /// The resources in the emulator.
    pub stack: LocalStack,
    /// Base URL of the shared local gateway (system clock).
    pub api: String,
}

static STACK: OnceLock<TestStack> = OnceLock::new();

/// Every log line written during the run, in the production JSON format.
static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct LogSink;

impl std::io::Write for LogSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut logs) = LOGS.lock() {
            logs.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// All log lines captured so far (every test and the shared gateway write to the same sink).
pub fn captured_logs() -> String {
    LOGS.lock()
        .map(|logs| String::from_utf8_lossy(&logs).into_owned())
        .unwrap_or_default()
}

/// The contract log every gateway of the run writes (`cargo xtask test` sets
/// `OFFICERTRAK_CONTRACT_LOG` and fails on any response the OpenAPI document does not describe; run
/// without it, the check goes to `.local/contract.jsonl`).
fn contract_log() -> &'static infra::contract::ContractLog {
    static LOG: OnceLock<infra::contract::ContractLog> = OnceLock::new();
    LOG.get_or_init(|| {
        let path = std::env::var_os("OFFICERTRAK_CONTRACT_LOG")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(infra::contract::default_log_path);
        if let Some(folder) = path.parent() {
            let _ = std::fs::create_dir_all(folder);
        }
        let log = infra::contract::ContractLog::open(&path).expect("the contract log opens");
        match std::env::var_os("OFFICERTRAK_CONTRACT_EXAMPLES") {
            Some(examples) => log
                .capturing_examples(std::path::Path::new(&examples))
                .expect("the example capture opens"),
            None => log,
        }
    })
}

/// The shared stack, created on first use. The gateway runs on a thread of its own so that it outlives
/// each test's runtime.
pub fn stack() -> &'static TestStack {
    STACK.get_or_init(|| {
        platform::telemetry::init_with_writer(|| LogSink);
        let endpoint = std::env::var("AWS_ENDPOINT_URL")
            .expect("AWS_ENDPOINT_URL is not set: run the end-to-end tests through `cargo xtask test`");
        let (ready, started) = std::sync::mpsc::channel::<(LocalStack, SocketAddr)>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("a runtime for the shared gateway");
            runtime.block_on(async move {
                let stack = bootstrap(&endpoint, project_template().expect("template.yaml"))
                    .await
                    .expect("bootstrap of the local stack");
                let gateway = Gateway::new(&stack, Clock::System)
                    .await
                    .expect("the local gateway")
                    .trusting_forwarded_for()
                    .checking_contract(contract_log().clone());
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("a free port");
                let address = listener.local_addr().expect("the gateway's address");
                // The local worker receives as Lambda's event source would (Lambda's requests, not
                // the function's: only the handler runs with the function's credentials).
                let worker = infra::worker::LocalWorker::new(
                    stack
                        .function_state("PrivacyWorkerFunction", Clock::System)
                        .await
                        .expect("worker state"),
                    aws_sdk_sqs::Client::new(&stack.sdk_config().await),
                );
                tokio::spawn(worker.run(std::time::Duration::from_millis(200)));
                ready.send((stack, address)).expect("the harness is waiting");
                gateway
                    .serve(listener, std::future::pending())
                    .await
                    .expect("the gateway serves");
            });
        });
        let (mut stack, address) = started.recv().expect("the shared gateway started");
        // The links in our mail (a campaign's unsubscribe) point at this gateway.
        stack.set_api_endpoint(&format!("http://{address}"));
        TestStack {
            stack,
            api: format!("http://{address}"),
        }
    })
}

impl TestStack {
    /// A fresh SDK configuration for the emulator (one per test: a connection pool must not outlive
    /// the runtime of the test that opened it).
    pub async fn sdk(&self) -> SdkConfig {
        self.stack.sdk_config().await
    }

    /// Signs in a new local user with a unique e-mail and the given groups.
    pub async fn user(&self, name: &str, groups: &[&str]) -> Tokens {
        self.user_with_email(&unique_email(name), groups).await
    }

    /// Signs in a local user with this (verified) e-mail and the given groups.
    pub async fn user_with_email(&self, email: &str, groups: &[&str]) -> Tokens {
        let cognito = aws_sdk_cognitoidentityprovider::Client::new(&self.sdk().await);
        let pool = self.stack.physical_id("UserPool").expect("UserPool");
        let client = self.stack.physical_id("UserPoolClient").expect("UserPoolClient");
        // The retention purge may close a sign-up caught between sign-up and confirmation (tests run
        // it with clocks days ahead): signing in again starts over.
        let mut attempt = 0;
        loop {
            match sign_in(&cognito, &pool, &client, email, groups).await {
                Ok(tokens) => return tokens,
                Err(error) if attempt < 3 => {
                    attempt += 1;
                    eprintln!("sign-in retried: {error}");
                }
                Err(error) => panic!("a local user signs in: {error}"),
            }
        }
    }

    /// The configuration a function gets, with the given clock, for a test's own set-up and direct
    /// calls of domain code: its AWS requests are signed as the tests', not as the function's.
    pub async fn state(&self, function_logical_id: &str, clock: Clock) -> AppState {
        let config = self
            .stack
            .function_config(function_logical_id)
            .expect("function config");
        AppState::new(config, &self.sdk().await, clock)
            .await
            .expect("function state")
    }

    /// The state of function `function_logical_id` itself, for tests that run one of its entry
    /// points in-process (a handler with a fixture event, a scheduled run): its AWS requests are
    /// signed as the function's, so the least-privilege check counts them (infra::permissions).
    pub async fn function_state(&self, function_logical_id: &str, clock: Clock) -> AppState {
        self.stack
            .function_state(function_logical_id, clock)
            .await
            .expect("function state")
    }

    /// A URL of the shared gateway.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }
}

/// The date `years` from today (UTC, the real clock), for a document that must stay valid however
/// late the suite runs (a licence's expiry).
pub fn years_from_today(years: i16) -> String {
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date();
    today.saturating_add(jiff::Span::new().years(years)).to_string()
}

/// An e-mail no other test uses.
pub fn unique_email(name: &str) -> String {
    format!("{name}+{}@example.com", uuid::Uuid::new_v4().simple())
}

/// A sample event from `events/`, as text.
pub fn event(name: &str) -> String {
    let path = repo_root().join("events").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Starts an extra gateway on a free port in the current runtime (for tests that move its clock).
pub async fn extra_gateway(clock: Clock) -> String {
    let gateway = Gateway::new(&stack().stack, clock)
        .await
        .expect("a gateway")
        .trusting_forwarded_for()
        .checking_contract(contract_log().clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let address = listener.local_addr().expect("address");
    tokio::spawn(gateway.serve(listener, std::future::pending()));
    format!("http://{address}")
}

/// A new user id with its branch key created (what account registration does first).
pub async fn new_user(state: &AppState) -> String {
    let user_id = uuid::Uuid::new_v4().to_string();
    state
        .keys
        .create_user_key(&user_id)
        .await
        .expect("the user's branch key");
    user_id
}

/// Makes `officer_id` (who holds a provider account) an approved member of `agency_id` the way the
/// product does: the officer applies with `hire_date`, then `approver` (an admin of the agency, or
/// ops) approves.
pub async fn approved_member(
    state: &AppState,
    approver: &edge::auth::Caller,
    agency_id: &str,
    officer_id: &str,
    hire_date: &str,
) {
    use domain::accounts::memberships::{self, DecisionInput, MembershipDecision, MembershipInput};
    let officer = edge::auth::Caller::acting_for(officer_id, edge::auth::Role::Provider);
    let input = MembershipInput {
        badge_number: "B-1".into(),
        rank: None,
        hire_date: hire_date.parse().expect("hire date"),
    };
    memberships::apply(state, &officer, agency_id, input)
        .await
        .expect("the officer applies");
    let approve = DecisionInput {
        decision: MembershipDecision::Approve,
        reason: None,
    };
    domain::scheduling::decide_membership(state, approver, agency_id, officer_id, approve)
        .await
        .expect("the agency approves");
}

/// Calls the shared gateway: `token` as bearer, `body` as JSON, an optional `Idempotency-Key`.
/// Returns the status and the JSON body (`Null` when there is none).
/// Every page of the paged list at `path` read as `token` (following `next_cursor`), as one
/// `{"items": [...]}`; the first page's status when it is not 200.
pub async fn listed(path: &str, token: &str) -> (reqwest::StatusCode, serde_json::Value) {
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page_path = match &cursor {
            Some(cursor) => format!("{path}{separator}limit=100&cursor={cursor}"),
            None => format!("{path}{separator}limit=100"),
        };
        let (status, page) = call_api(reqwest::Method::GET, &page_path, Some(token), None, None).await;
        if status != reqwest::StatusCode::OK {
            assert!(items.is_empty(), "a later page of {path} failed: {status} {page}");
            return (status, page);
        }
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (status, serde_json::json!({ "items": items })),
        }
    }
}

pub async fn call_api(
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<&serde_json::Value>,
    idempotency_key: Option<&str>,
) -> (reqwest::StatusCode, serde_json::Value) {
    // Every call comes from a client address of its own (see `Gateway::trusting_forwarded_for`):
    // tests that count per-IP limits send their own `X-Forwarded-For`.
    let client = uuid::Uuid::new_v4().as_bytes()[..3].to_vec();
    let mut request = reqwest::Client::new().request(method, stack().url(path)).header(
        "x-forwarded-for",
        format!("10.{}.{}.{}", client[0], client[1], client[2]),
    );
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    if let Some(key) = idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status();
    (
        status,
        response
            .json::<serde_json::Value>()
            .await
            .unwrap_or(serde_json::Value::Null),
    )
}

/// Reads `GET /v1/privacy-requests/{id}` as `token` until the privacy worker has carried the request
/// out (its status is no longer `in_progress`), and returns it; fails after two minutes.
pub async fn await_request(token: &str, id: &str) -> serde_json::Value {
    let path = format!("/v1/privacy-requests/{id}");
    let started = std::time::Instant::now();
    loop {
        let (status, request) = call_api(reqwest::Method::GET, &path, Some(token), None, None).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{request}");
        if request["status"] != "in_progress" && request["status"] != "open" {
            return request;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the worker did not finish request {id}: {request}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
}

/// The `sub` of a token (read without verifying: the gateway verified it).
pub fn sub_of(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    serde_json::from_slice::<serde_json::Value>(&bytes).expect("json")["sub"]
        .as_str()
        .expect("sub")
        .to_owned()
}

/// The JSON pointers a problem's `errors` name.
pub fn pointers(problem: &serde_json::Value) -> std::collections::BTreeSet<String> {
    problem["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["pointer"].as_str().map(str::to_owned))
        .collect()
}

/// Every raw item (no decryption) in a user's partition.
pub async fn raw_partition(
    user_id: &str,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    raw_items_of(&platform::keys::user_partition(user_id)).await
}

/// Every raw item (no decryption, as a backup holds it) in partition `pk`.
pub async fn raw_items_of(
    pk: &str,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let state = stack().state("RegistrationFunction", Clock::System).await;
    state
        .store
        .raw()
        .query()
        .table_name(state.store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.to_owned()))
        .send()
        .await
        .expect("raw query")
        .items
        .unwrap_or_default()
}

/// Every mail the emulator's SES accepted for `address`, each as its JSON text.
pub async fn mails_to(address: &str) -> Vec<String> {
    let data: serde_json::Value = reqwest::get(format!("{}/moto-api/data.json", stack().stack.endpoint))
        .await
        .expect("moto")
        .json()
        .await
        .expect("json");
    // Campaign mail goes raw (its unsubscribe headers): moto keeps those apart.
    ["Message", "RawMessage"]
        .iter()
        .flat_map(|kind| data["ses"][kind].as_array().cloned().unwrap_or_default())
        .filter(|m| {
            // A simple message keeps its destination's lists; a raw one (a campaign's, with its
            // unsubscribe headers) the addresses of its To header.
            m["destinations"]["ToAddresses"]
                .as_array()
                .or_else(|| m["destinations"].as_array())
                .is_some_and(|to| to.iter().any(|a| a == address))
        })
        .map(|m| m.to_string())
        .collect()
}

/// Reads the local payment processor (localstripe, started by `cargo xtask test` and found through
/// `STRIPE_API_BASE`) as Stripe's dashboard would: status and JSON body of `GET <path>`.
pub async fn processor_get(path: &str) -> (reqwest::StatusCode, serde_json::Value) {
    let base = std::env::var("STRIPE_API_BASE")
        .expect("STRIPE_API_BASE is not set: run the end-to-end tests through `cargo xtask test`");
    let response = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(infra::bootstrap::LOCAL_STRIPE_SECRET_KEY)
        .send()
        .await
        .expect("localstripe answers");
    let status = response.status();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

/// Acts on the local payment processor directly, as Stripe itself would (an authorisation lapsing):
/// `POST <path>` with form `params`.
pub async fn processor_post(path: &str, params: &[(&str, &str)]) -> (reqwest::StatusCode, serde_json::Value) {
    let base = std::env::var("STRIPE_API_BASE").expect("STRIPE_API_BASE");
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish();
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(infra::bootstrap::LOCAL_STRIPE_SECRET_KEY)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("localstripe answers");
    let status = response.status();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

/// What a [`HookedHttpClient`] does around one AWS request: `before` runs (and is awaited) before
/// the request leaves, `after` once its answer came back. Each gets the request's operation, as
/// `x-amz-target` names it (`DynamoDB_20120810.TransactWriteItems`), or "" for a REST call.
pub trait SdkHook: Send + Sync + std::fmt::Debug + 'static {
    /// Runs before the request is sent; the request waits for it.
    fn before(&self, _operation: &str) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(async {})
    }
    /// Runs once the answer arrived, before the SDK sees it.
    fn after(&self, _operation: &str) {}
}

/// An HTTP client for the AWS SDK that runs an [`SdkHook`] around every request: how a test makes
/// something happen at an exact point between two AWS calls of the code under test (a change just
/// before a transaction commits, a process killed just after a write landed).
#[derive(Debug, Clone)]
pub struct HookedHttpClient {
    inner: aws_smithy_runtime_api::client::http::SharedHttpClient,
    hook: std::sync::Arc<dyn SdkHook>,
}

impl HookedHttpClient {
    /// `sdk` with every request going through `hook`.
    pub fn wrap(sdk: &SdkConfig, hook: impl SdkHook) -> SdkConfig {
        // The local stack's configuration leaves the client to the SDK's default, which it adds
        // only when a service client is built: the same default (plain HTTP is all the emulator
        // speaks) is made here to be wrapped.
        let inner = sdk
            .http_client()
            .unwrap_or_else(|| aws_smithy_http_client::Builder::new().build_http());
        let client = Self {
            inner,
            hook: std::sync::Arc::new(hook),
        };
        sdk.to_builder().http_client(client).build()
    }
}

#[derive(Debug)]
struct HookedConnector {
    inner: aws_smithy_runtime_api::client::http::SharedHttpConnector,
    hook: std::sync::Arc<dyn SdkHook>,
}

impl aws_smithy_runtime_api::client::http::HttpClient for HookedHttpClient {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        aws_smithy_runtime_api::client::http::SharedHttpConnector::new(HookedConnector {
            inner: self.inner.http_connector(settings, components),
            hook: self.hook.clone(),
        })
    }
}

impl aws_smithy_runtime_api::client::http::HttpConnector for HookedConnector {
    fn call(
        &self,
        request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        let operation = request
            .headers()
            .get("x-amz-target")
            .unwrap_or_default()
            .to_owned();
        let before = self.hook.before(&operation);
        let inner = self.inner.clone();
        let hook = self.hook.clone();
        aws_smithy_runtime_api::client::http::HttpConnectorFuture::new(async move {
            before.await;
            let response = inner.call(request).await?;
            hook.after(&operation);
            Ok(response)
        })
    }
}
