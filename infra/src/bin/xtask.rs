//! `cargo xtask …`: the developer commands (see README.md).
//!
//! - `dev`: installs what is missing, starts the emulator and localstripe, creates the resources, serves the API on
//!   http://127.0.0.1:3000 until Ctrl-C.
//! - `test`: every check CI runs (fmt, clippy, template lint, unit and end-to-end tests, responses
//!   and permissions against the document and the template, schemathesis, the `/docs` page in
//!   headless Chromium) against an emulator of its own on a free port.
//! - `bench`: the benchmarks (ignored tests named `bench_…`) against an emulator of their own; they
//!   print their figures.
//! - `purge`: one run of the retention purge against the running dev stack (which also runs it hourly).
//! - `token`: signs a local user in and prints an ID token.
//! - `docs`: the `/docs` page in headless Chromium (also a step of `test`).
//! - `fuzz`: schemathesis against the local API, one user per role (also a step of `test`).
//! - `lint`: cfn-lint and `sam validate --lint` on template.yaml.
//! - `build`: every deployed function in one `cargo lambda build --release --arm64`, into
//!   `target/arm64/lambda/<crate>/` where template.yaml's `CodeUri`s point; prints each one's size.
//! - `deploy-check`: lint, checkov, the least-privilege tests and `build`.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use infra::bootstrap::{REGION, bootstrap, sdk_config};
use infra::emulator::{
    Emulator, LocalStripe, deploy_venv_bin, deploy_venv_dir, ensure_deploy_tools, ensure_tools, venv_bin,
    venv_dir,
};
use infra::gateway::Gateway;
use infra::{project_template, repo_root};
use platform::Clock;
use std::process::{ExitStatus, Stdio};
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Default port of the emulator in the dev stack (tests pick a free one).
const DEV_EMULATOR_PORT: u16 = 5050;

/// Default port of localstripe in the dev stack (tests pick a free one).
const DEV_STRIPE_PORT: u16 = 8420;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "OfficerTRAK developer commands")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Start the whole API locally (emulator + resources + gateway) until Ctrl-C.
    Dev {
        /// Port of the local API.
        #[arg(long, default_value_t = 3000)]
        port: u16,
        /// Port of the emulator.
        #[arg(long, default_value_t = DEV_EMULATOR_PORT)]
        emulator_port: u16,
        /// Port of localstripe (the local payment processor).
        #[arg(long, default_value_t = DEV_STRIPE_PORT)]
        stripe_port: u16,
    },
    /// Run every check: fmt, clippy, template lint, unit and end-to-end tests; with a filter, only the
    /// tests whose path contains it (e.g. `requests::` for one file of end-to-end tests), against an
    /// emulator and localstripe of their own.
    Test {
        /// Only the tests whose name contains this (libtest's filter); no other check runs.
        filter: Option<String>,
    },
    /// Run the benchmarks (end-to-end tests named `bench_…`, skipped by `test`) and print their figures.
    Bench {
        /// Only benchmarks whose name contains this; `functions`: only the functions' binaries under
        /// the local Lambda Runtime API.
        #[arg(default_value = "bench_")]
        filter: String,
        /// Measure debug builds of the functions (quicker to build; the figures are not the ones to
        /// size Lambda by).
        #[arg(long)]
        debug: bool,
    },
    /// Load the whole API with a Saturday's mix of callers (locust, `tests/e2e/load.rs`) against an
    /// emulator that contends as DynamoDB does; prints per route calls, 2xx/4xx/5xx and latency
    /// percentiles, the conflicts and throttles met, and the invariants checked after it.
    Load {
        /// Concurrent virtual users.
        #[arg(long, default_value_t = 200)]
        users: u32,
        /// How long the load lasts.
        #[arg(long, default_value_t = 300)]
        seconds: u32,
    },
    /// Run the retention purge once against the running dev stack and print what it did.
    Purge {
        /// Port of the running dev stack's emulator.
        #[arg(long, default_value_t = DEV_EMULATOR_PORT)]
        emulator_port: u16,
        /// Port of the running dev stack's localstripe.
        #[arg(long, default_value_t = DEV_STRIPE_PORT)]
        stripe_port: u16,
    },
    /// Sign a local user in (creating it on first use) and print its ID token.
    Token {
        /// The user's e-mail (it is also the username).
        #[arg(long)]
        email: String,
        /// A group to join: customer, provider, agency_admin, dispatcher, privacy_officer, ops.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Print the access token instead of the ID token.
        #[arg(long)]
        access: bool,
        /// Port of the running dev stack's emulator.
        #[arg(long, default_value_t = DEV_EMULATOR_PORT)]
        emulator_port: u16,
    },
    /// Fuzz the API from its OpenAPI document (schemathesis, one user per role) against an emulator
    /// of its own; `test` runs the same after the end-to-end tests.
    Fuzz,
    /// Load the `/docs` page in headless Chromium and check it lists every operation (a step of
    /// `test`), against an emulator of its own; leaves a screenshot in `.local/docs.png`.
    Docs,
    /// Lint template.yaml with cfn-lint and `sam validate --lint`.
    Lint,
    /// Build every deployed function once (cargo lambda, release, arm64) into `target/arm64/lambda/<crate>/`,
    /// the folders template.yaml's `CodeUri`s name; prints each function's size and zipped size.
    Build,
    /// What ops run before `sam deploy` (CI too): lint, checkov, the least-privilege tests, and
    /// `build`.
    DeployCheck,
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Task::Dev {
            port,
            emulator_port,
            stripe_port,
        } => dev(port, emulator_port, stripe_port).await,
        Task::Test { filter: None } => test().await,
        Task::Test { filter: Some(filter) } => test_only(&filter).await,
        Task::Bench { filter, debug } => bench(&filter, debug).await,
        Task::Load { users, seconds } => load(users, seconds).await,
        Task::Purge {
            emulator_port,
            stripe_port,
        } => purge_once(emulator_port, stripe_port).await,
        Task::Token {
            email,
            groups,
            access,
            emulator_port,
        } => token(&email, &groups, access, emulator_port).await,
        Task::Fuzz => fuzz().await,
        Task::Docs => docs().await,
        Task::Lint => {
            ensure_tools().await?;
            lint().await
        }
        Task::Build => {
            infra::emulator::ensure_build_tools().await?;
            build_functions().await
        }
        Task::DeployCheck => deploy_check().await,
    }
}

async fn dev(port: u16, emulator_port: u16, stripe_port: u16) -> Result<()> {
    let started = Instant::now();
    let local_dir = repo_root().join(".local");
    std::fs::create_dir_all(&local_dir).context("creating .local/")?;
    // Every call's spans (the request, each AWS and processor call inside it) as the X-Ray segment
    // documents production sends the daemon, one a line.
    let traces = local_dir.join("traces.jsonl");
    platform::telemetry::init_with(
        std::io::stdout,
        platform::telemetry::TraceSink::File(traces.clone()),
    );
    platform::telemetry::hide_panic_messages();
    ensure_tools().await?;
    // The API does not need its reference page: without npm, /docs answers 503 and says why.
    if let Err(error) = infra::docs::ensure_installed().await {
        eprintln!("warning: {error}");
    }
    let emulator = Emulator::start(emulator_port, Some(&local_dir.join("moto.log"))).await?;
    let stripe = LocalStripe::start(stripe_port, Some(&local_dir.join("localstripe.log"))).await?;
    let mut stack = bootstrap(&emulator.endpoint, project_template()?).await?;
    stack.set_parameter("StripeApiBase", &stripe.url);
    stack.set_api_endpoint(&format!("http://127.0.0.1:{port}"));
    let gateway = Gateway::new(&stack, Clock::System).await?;
    let routes = gateway.route_keys();
    // The schedule template.yaml gives the retention function, on a local timer.
    let retention = stack.function_state("RetentionFunction", Clock::System).await?;
    tokio::spawn(async move {
        let mut hourly = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            hourly.tick().await;
            match jobs::purge::scheduled_run(&retention, retention::ITEMS_PER_RUN).await {
                Ok(report) => tracing::info!(?report, "hourly retention purge"),
                Err(error) => tracing::warn!(error = %error, "hourly retention purge failed"),
            }
        }
    });
    // The privacy worker, fed from its queue as Lambda's SQS event source would.
    let worker = infra::worker::LocalWorker::new(
        stack
            .function_state("PrivacyWorkerFunction", Clock::System)
            .await?,
        aws_sdk_sqs::Client::new(&stack.sdk_config().await),
    );
    tokio::spawn(worker.run(std::time::Duration::from_secs(1)));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("port {port} is taken: stop what uses it or pass --port"))?;
    let url = format!("http://127.0.0.1:{port}");
    println!(
        "\nOfficerTRAK local stack is up ({:.1} s).\n\
         \n  API       {url}   (OpenAPI: {url}/openapi.json; {} routes)\
         \n  Docs      {url}/docs   (the API reference, Swagger UI)\
         \n  Emulator  {}   (moto; data lives in memory until you stop)\
         \n  Payments  {}   (localstripe; cards pm_card_visa, pm_card_chargeCustomerFail)\
         \n  Traces    {}   (X-Ray segment documents of every call, one a line)\
         \n\nAct as a user (in another terminal):\
         \n  TOKEN=$(cargo xtask token --email ada@example.com --group customer)\
         \n  curl -H \"Authorization: Bearer $TOKEN\" {url}/v1/me\
         \n\nThe retention purge runs hourly; `cargo xtask purge` runs it now. The privacy worker takes\
         \nerasures and exports from its queue as they come. Ctrl-C stops everything.\n",
        started.elapsed().as_secs_f64(),
        routes.len(),
        emulator.endpoint,
        stripe.url,
        traces.display(),
    );
    gateway
        .serve(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    println!("stopping…");
    stripe.stop().await;
    emulator.stop().await;
    Ok(())
}

async fn purge_once(emulator_port: u16, stripe_port: u16) -> Result<()> {
    let endpoint = format!("http://127.0.0.1:{emulator_port}");
    if !infra::emulator::answers(&endpoint).await {
        bail!("no emulator answers on {endpoint}: start the stack with `cargo xtask dev` first");
    }
    let mut stack = bootstrap(&endpoint, project_template()?).await?;
    stack.set_parameter("StripeApiBase", &format!("http://127.0.0.1:{stripe_port}"));
    let state = stack.function_state("RetentionFunction", Clock::System).await?;
    let report = jobs::purge::scheduled_run(&state, retention::ITEMS_PER_RUN).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

async fn token(email: &str, groups: &[String], access: bool, emulator_port: u16) -> Result<()> {
    let endpoint = format!("http://127.0.0.1:{emulator_port}");
    if !infra::emulator::answers(&endpoint).await {
        bail!("no emulator answers on {endpoint}: start the stack with `cargo xtask dev` first");
    }
    // The stack exists already: bootstrap only looks the pool and client up again.
    let stack = bootstrap(&endpoint, project_template()?).await?;
    let pool = stack
        .physical_id("UserPool")
        .context("template.yaml has no UserPool")?;
    let client = stack
        .physical_id("UserPoolClient")
        .context("template.yaml has no UserPoolClient")?;
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&sdk_config(&endpoint).await);
    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    let tokens = infra::identity::sign_in(&cognito, &pool, &client, email, &groups).await?;
    println!(
        "{}",
        if access {
            tokens.access_token
        } else {
            tokens.id_token
        }
    );
    Ok(())
}

async fn test() -> Result<()> {
    let started = Instant::now();
    ensure_tools().await?;
    infra::emulator::ensure_load_tools().await?;
    infra::docs::ensure_installed().await?;
    infra::docs::ensure_browser().await?;
    step("cargo fmt --check", cargo(&["fmt", "--all", "--check"])).await?;
    step("template lint", lint()).await?;
    step(
        "cargo clippy",
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
    )
    .await?;
    step("supply chain (cargo deny: licences, bans, sources)", cargo_deny()).await?;
    let actions_log = repo_root().join(".local/aws-actions.jsonl");
    std::fs::create_dir_all(repo_root().join(".local")).context("creating .local/")?;
    // A fresh log: what this run's functions called, and nothing from an earlier run.
    if actions_log.exists() {
        std::fs::remove_file(&actions_log).context("removing the previous actions log")?;
    }
    let contract_log = infra::contract::default_log_path();
    if contract_log.exists() {
        std::fs::remove_file(&contract_log).context("removing the previous contract log")?;
    }
    let trace_file = repo_root().join(".local/traces.jsonl");
    if trace_file.exists() {
        std::fs::remove_file(&trace_file).context("removing the previous traces")?;
    }
    let port = infra::emulator::free_port().context("a free port for the emulator")?;
    let emulator = Emulator::start_logging_actions(port, None, Some(&actions_log)).await?;
    let stripe = LocalStripe::start_on_free_port(None).await?;
    let run_tests = |args: Vec<&'static str>| {
        let (emulator, stripe, contract_log, trace_file) =
            (&emulator.endpoint, &stripe.url, &contract_log, &trace_file);
        async move {
            let mut child = with_stack(&mut cargo_command(), emulator, stripe)
                .args(["test", "--workspace", "--locked"])
                .args(args)
                .current_dir(repo_root())
                .env("OFFICERTRAK_CONTRACT_LOG", contract_log)
                .env("OFFICERTRAK_TRACE_FILE", trace_file)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()?;
            let mut totals = TestTotals::default();
            if let Some(stdout) = child.stdout.take() {
                let mut lines = BufReader::new(stdout).lines();
                while let Some(line) = lines.next_line().await? {
                    println!("{line}");
                    totals.add(&line);
                }
            }
            let status = child.wait().await?;
            check(status, "cargo test")?;
            anyhow::Ok(totals)
        }
    };
    // Tests that run the hourly job with the clock moved ahead (`future_clock_…`) act on every
    // item that is due by then, other tests' too: they run after all the others, one at a time, so
    // nothing they move or purge is under a test still running. The short load test (`load_…`)
    // runs there too: what it measures must be the stack under its own load alone.
    let tests = step("cargo test (unit + end-to-end)", async {
        let mut totals = run_tests(vec!["--", "--skip", FUTURE_CLOCK, "--skip", LOAD]).await?;
        let later = step(
            "cargo test (future_clock_ and load_ tests, alone)",
            run_tests(vec![
                "--test",
                "e2e",
                "--",
                FUTURE_CLOCK,
                LOAD,
                "--test-threads=1",
            ]),
        )
        .await?;
        totals.passed += later.passed;
        totals.failed += later.failed;
        totals.ignored += later.ignored;
        // One closing line over every test binary of the run.
        println!(
            "tests: {} passed, {} failed, {} skipped",
            totals.passed, totals.failed, totals.ignored
        );
        if totals.passed == 0 || later.passed == 0 {
            bail!("cargo test ran no test");
        }
        Ok(())
    })
    .await;
    let calls = match tests {
        Ok(()) => {
            step(
                "AWS calls vs declared permissions",
                observed_permissions(&emulator.endpoint, &actions_log),
            )
            .await
        }
        Err(error) => Err(error),
    };
    let calls = match calls {
        Ok(()) => {
            step(
                "responses vs the OpenAPI document",
                responses_match_the_document(&contract_log),
            )
            .await
        }
        Err(error) => Err(error),
    };
    let calls = match calls {
        Ok(()) => {
            step(
                "fuzzing the contract (schemathesis, one user per role)",
                fuzz_the_contract(&emulator.endpoint, &stripe.url),
            )
            .await
        }
        Err(error) => Err(error),
    };
    let calls = match calls {
        Ok(()) => {
            step(
                "the /docs page in headless Chromium",
                docs_page_lists_every_operation(&emulator.endpoint, &stripe.url),
            )
            .await
        }
        Err(error) => Err(error),
    };
    stripe.stop().await;
    emulator.stop().await;
    calls?;
    eprintln!("all checks passed in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// `cargo xtask test <filter>`: the unit and end-to-end tests whose name contains `filter`, with the
/// stack they need (an emulator and localstripe on free ports), and nothing else.
async fn test_only(filter: &str) -> Result<()> {
    ensure_tools().await?;
    if filter.contains("load") {
        infra::emulator::ensure_load_tools().await?;
    }
    std::fs::create_dir_all(repo_root().join(".local")).context("creating .local/")?;
    let traces = repo_root().join(".local/traces.jsonl");
    if traces.exists() {
        std::fs::remove_file(&traces).context("removing the previous traces")?;
    }
    let port = infra::emulator::free_port().context("a free port for the emulator")?;
    let emulator = Emulator::start(port, None).await?;
    let stripe = LocalStripe::start_on_free_port(None).await?;
    let status = with_stack(&mut cargo_command(), &emulator.endpoint, &stripe.url)
        .args(["test", "--workspace", "--locked", "--", filter])
        .current_dir(repo_root())
        .env("OFFICERTRAK_TRACE_FILE", repo_root().join(".local/traces.jsonl"))
        .stdin(Stdio::null())
        .status()
        .await;
    stripe.stop().await;
    emulator.stop().await;
    check(status?, "cargo test")
}

/// Compares what each function called during the tests (the emulator's actions log) with its
/// `aws-permissions.txt`, which a unit test keeps equal to the template's grants; prints the table.
async fn observed_permissions(endpoint: &str, actions_log: &std::path::Path) -> Result<()> {
    use infra::permissions::{observed, observed_drift, report};
    let template = project_template()?;
    // The tests' resources still exist: a bootstrap finds them again and gives their names.
    let stack = bootstrap(endpoint, template.clone()).await?;
    let log = std::fs::read_to_string(actions_log).context("reading the emulator's actions log")?;
    let seen = observed(&log, &template, &stack)?;
    for (function, permissions) in &seen {
        println!("{function}: {} actions", permissions.len());
        for permission in permissions {
            println!("  {permission}");
        }
    }
    let drift = observed_drift(&template, &repo_root(), &seen)?;
    if !drift.is_empty() {
        bail!(
            "the functions' AWS calls differ from functions/*/aws-permissions.txt:\n{}",
            report(&drift, "called, not declared", "declared, never called")
        );
    }
    Ok(())
}

/// Reads what the gateways checked during the tests (see `infra::contract`) and fails on any
/// response the OpenAPI document does not describe; prints how much of the document was exercised.
async fn responses_match_the_document(log: &std::path::Path) -> Result<()> {
    let text = std::fs::read_to_string(log).context("reading the contract log")?;
    let summary = infra::contract::summarize(&text);
    let documented = infra::contract::Contract::load()?.route_keys().len();
    println!(
        "{} responses checked: {} of {documented} operations, {} (operation, status) pairs, {} violations",
        summary.responses,
        summary.operations,
        summary.statuses,
        summary.violations.values().sum::<usize>()
    );
    if summary.responses == 0 {
        bail!("no response was checked against the document");
    }
    if !summary.violations.is_empty() {
        let lines: Vec<String> = summary
            .violations
            .iter()
            .map(|(violation, count)| format!("  {count}x {violation}"))
            .collect();
        bail!(
            "responses the OpenAPI document does not describe:\n{}",
            lines.join("\n")
        );
    }
    Ok(())
}

/// The fixed seed of every schemathesis run: the same cases each time, so a failure reproduces.
const FUZZ_SEED: &str = "20261203";

/// Test cases per operation and phase (schemathesis' `--max-examples`): a few minutes in all.
const FUZZ_EXAMPLES: &str = "10";

/// What schemathesis checks on every answer; `positive_data_acceptance` is left out because the
/// API rightly refuses schema-valid bodies that break a domain rule (an e-mail that is not the
/// token's, a date in the past).
const FUZZ_CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                           response_schema_conformance,negative_data_rejection";

/// `cargo xtask fuzz`: the fuzzing step of `test` alone, against a fresh emulator and localstripe.
async fn fuzz() -> Result<()> {
    ensure_tools().await?;
    let port = infra::emulator::free_port().context("a free port for the emulator")?;
    let emulator = Emulator::start(port, None).await?;
    let stripe = LocalStripe::start_on_free_port(None).await?;
    let result = step(
        "fuzzing the contract (schemathesis, one user per role)",
        fuzz_the_contract(&emulator.endpoint, &stripe.url),
    )
    .await;
    stripe.stop().await;
    emulator.stop().await;
    result
}

/// `cargo xtask docs`: the `/docs` step of `test` alone, against a fresh emulator and localstripe.
async fn docs() -> Result<()> {
    ensure_tools().await?;
    infra::docs::ensure_installed().await?;
    infra::docs::ensure_browser().await?;
    let port = infra::emulator::free_port().context("a free port for the emulator")?;
    let emulator = Emulator::start(port, None).await?;
    let stripe = LocalStripe::start_on_free_port(None).await?;
    let result = step(
        "the /docs page in headless Chromium",
        docs_page_lists_every_operation(&emulator.endpoint, &stripe.url),
    )
    .await;
    stripe.stop().await;
    emulator.stop().await;
    result
}

/// Serves the API on a free port against the tests' emulator (with the contract checked, as in the
/// tests), makes one user per role and runs schemathesis as each; fails on any finding.
async fn fuzz_the_contract(endpoint: &str, stripe_url: &str) -> Result<()> {
    infra::emulator::ensure_fuzz_tools().await?;
    // From here on this process logs as the functions do in production, into a file that
    // `no_personal_value_leaked` reads.
    std::fs::create_dir_all(repo_root().join(".local")).context("creating .local/")?;
    let log = std::fs::File::create(fuzz_log_path()).context("creating the fuzzing run's log")?;
    platform::telemetry::init_with_writer(std::sync::Mutex::new(log));
    let mut stack = bootstrap(endpoint, project_template()?).await?;
    stack.set_parameter("StripeApiBase", stripe_url);
    let contract_log = repo_root().join(".local/fuzz-contract.jsonl");
    if contract_log.exists() {
        std::fs::remove_file(&contract_log).context("removing the previous fuzzing contract log")?;
    }
    let gateway = Gateway::new(&stack, Clock::System)
        .await?
        .checking_contract(infra::contract::ContractLog::open(&contract_log)?);
    let served = ServedGateway::start(gateway).await?;
    let result = run_schemathesis(&stack, &served.url).await;
    served.stop().await;
    result?;
    responses_match_the_document(&contract_log).await
}

/// Serves `/docs` on a free port, loads it in headless Chromium and fails unless every operation of
/// the document is listed; the screenshot is left in `.local/docs.png`.
async fn docs_page_lists_every_operation(endpoint: &str, stripe_url: &str) -> Result<()> {
    let mut stack = bootstrap(endpoint, project_template()?).await?;
    stack.set_parameter("StripeApiBase", stripe_url);
    let served = ServedGateway::start(Gateway::new(&stack, Clock::System).await?).await?;
    let document = infra::contract::Contract::load()?.document().clone();
    let check = infra::docs::check_in_chromium(
        &format!("{}/docs", served.url),
        &document,
        &repo_root().join(".local"),
    )
    .await;
    served.stop().await;
    let check = check?;
    println!(
        "/docs lists {} of {} operations; screenshot: {}",
        check.listed,
        check.listed + check.missing.len(),
        check.screenshot.display()
    );
    if !check.missing.is_empty() {
        bail!("the /docs page does not list: {}", check.missing.join(", "));
    }
    Ok(())
}

/// A local gateway served on a free port until [`ServedGateway::stop`].
struct ServedGateway {
    url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl ServedGateway {
    async fn start(gateway: Gateway) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(gateway.serve(listener, async {
            let _ = stopped.await;
        }));
        Ok(Self { url, stop, server })
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}

/// One schemathesis run per role of `infra::fuzz::ROLES`; prints each run's summary and, on
/// failure, its findings (the whole output is in `.local/schemathesis-<role>.log`).
async fn run_schemathesis(stack: &infra::bootstrap::LocalStack, url: &str) -> Result<()> {
    let fixture = infra::fuzz::prepare(stack, url).await?;
    let local = repo_root().join(".local");
    let config = local.join("schemathesis.toml");
    std::fs::write(&config, infra::fuzz::config_toml(&fixture)).context("writing schemathesis.toml")?;
    let mut failed = Vec::new();
    let mut cases = 0;
    let mut hars = Vec::new();
    for (role, token) in &fixture.tokens {
        let started = Instant::now();
        let mut command = Command::new(infra::emulator::fuzz_venv_bin("st"));
        command
            .arg("--config-file")
            .arg(&config)
            .arg("--no-color")
            .args(["run", &format!("{url}/openapi.json"), "--url", url])
            .args(["--checks", &FUZZ_CHECKS.replace(' ', "")])
            .args(["--phases", role.phases])
            .args(["--max-examples", FUZZ_EXAMPLES, "--seed", FUZZ_SEED])
            .args(["--workers", "1", "--request-timeout", "10"])
            .args(["--generation-database", "none"])
            .args(["--generation-with-security-parameters", "false"])
            .args(["--suppress-health-check", "all", "--warnings", "off"])
            .current_dir(&local)
            .stdin(Stdio::null());
        if let Some(token) = token {
            command.args(["--header", &format!("Authorization: Bearer {token}")]);
        }
        if let Some(paths) = role.paths {
            command.args(["--include-path-regex", paths]);
        }
        let har = local.join(format!("schemathesis-{}.har", role.name));
        command.args(["--report", "har", "--report-har-path"]).arg(&har);
        hars.push(har);
        let output = command.output().await.context("running schemathesis")?;
        let text =
            String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
        std::fs::write(local.join(format!("schemathesis-{}.log", role.name)), &text)
            .context("writing the schemathesis log")?;
        let generated = infra::fuzz::cases_generated(&text);
        cases += generated;
        println!(
            "{:<16} {:>6} cases  {}  ({:.0} s)",
            role.name,
            generated,
            infra::fuzz::summary_line(&text).unwrap_or_else(|| "no summary".into()),
            started.elapsed().as_secs_f64()
        );
        if !output.status.success() {
            let findings = text
                .split("=== FAILURES ===")
                .nth(1)
                .and_then(|rest| rest.split("=== SUMMARY ===").next())
                .unwrap_or(&text);
            println!("{findings}");
            failed.push(role.name);
        }
    }
    println!(
        "schemathesis: {cases} cases over {} roles, seed {FUZZ_SEED}",
        fixture.tokens.len()
    );
    if !failed.is_empty() {
        bail!("schemathesis found failures as: {}", failed.join(", "));
    }
    no_personal_value_leaked(&fixture, &hars)
}

/// Promise 1 over the whole fuzzing run: none of the personal values the set-up registered shows in
/// a line the functions and the gateway logged, a response header or an error body.
fn no_personal_value_leaked(fixture: &infra::fuzz::Fixture, hars: &[std::path::PathBuf]) -> Result<()> {
    let values = &fixture.personal_values;
    let log = std::fs::read_to_string(fuzz_log_path()).context("reading the fuzzing run's log")?;
    // The control for the log: the functions did log the run (RUST_LOG could have silenced them).
    if !log.lines().any(|line| line.contains("\"request finished\"")) {
        bail!("the fuzzing run's log has no request in it: the search would prove nothing");
    }
    let mut leaks: Vec<String> = infra::fuzz::log_leaks(&log, values)
        .into_iter()
        .map(|line| format!("log line {line} of {}", fuzz_log_path().display()))
        .collect();
    let mut responses = 0;
    let mut own_data = 0;
    for har in hars {
        let text = std::fs::read_to_string(har).with_context(|| format!("reading {}", har.display()))?;
        let har: serde_json::Value = serde_json::from_str(&text).context("a HAR report")?;
        responses += har["log"]["entries"].as_array().map_or(0, Vec::len);
        own_data += infra::fuzz::har_success_mentions(&har, values);
        leaks.extend(infra::fuzz::har_leaks(&har, values));
    }
    if own_data == 0 {
        bail!("no answer carried the registered values, not even GET /v1/me: the search proves nothing");
    }
    println!(
        "personal data: {} values looked for in {} log lines, {responses} responses' headers and error bodies: {} found \
         (and in {own_data} answers of the callers' own data, where they belong)",
        values.len(),
        log.lines().count(),
        leaks.len()
    );
    if !leaks.is_empty() {
        bail!("personal data where it must not be:\n  {}", leaks.join("\n  "));
    }
    Ok(())
}

/// Where the functions and the gateway log during the fuzzing (the lines production writes).
fn fuzz_log_path() -> std::path::PathBuf {
    repo_root().join(".local/fuzz-functions.log")
}

/// `cargo xtask bench [filter]`: the benchmark tests whose name contains `filter`, then (unless the
/// filter names one test) each function's release binary under the local Lambda Runtime API; with
/// `functions` as the filter, only that.
async fn bench(filter: &str, debug: bool) -> Result<()> {
    ensure_tools().await?;
    let emulator = Emulator::start_on_free_port(None).await?;
    let stripe = LocalStripe::start_on_free_port(None).await?;
    let result = async {
        if filter != "functions" {
            let status = with_stack(&mut cargo_command(), &emulator.endpoint, &stripe.url)
                .args(["test", "--locked", "-p", "e2e", "--test", "e2e", filter, "--"])
                .args(["--ignored", "--nocapture", "--test-threads=1"])
                .current_dir(repo_root())
                .stdin(Stdio::null())
                .status()
                .await;
            check(status?, "cargo test (benchmarks)")?;
        }
        if filter == "bench_" || filter == "functions" {
            step(
                "functions under the local Lambda Runtime API",
                measure_functions(&emulator.endpoint, &stripe.url, debug),
            )
            .await?;
        }
        Ok(())
    }
    .await;
    stripe.stop().await;
    emulator.stop().await;
    result
}

/// Builds the deployed functions in release (the host's architecture: the arm64 build ops deploy
/// cannot run here) and measures each under the local Runtime API ([`infra::measure`]).
async fn measure_functions(endpoint: &str, stripe_url: &str, debug: bool) -> Result<()> {
    let functions = deployed_functions()?;
    let mut args = vec!["build", "--locked"];
    if !debug {
        args.push("--release");
    }
    for (_, name) in &functions {
        args.extend(["-p", name.as_str()]);
    }
    args.extend(["-p", "hello-world", "-p", "get-item"]);
    cargo(&args).await?;
    let mut stack = bootstrap(endpoint, project_template()?).await?;
    stack.set_parameter("StripeApiBase", stripe_url);
    let release = repo_root().join(if debug { "target/debug" } else { "target/release" });
    let logs = repo_root().join(".local/bench-logs");
    let mut figures = infra::measure::measure_functions(&stack, &release, &logs)
        .await
        .with_context(|| format!("the functions' logs are in {}", logs.display()))?;
    figures.extend(
        infra::measure::measure_baselines(&stack, &release, &logs)
            .await
            .with_context(|| format!("the baselines' logs are in {}", logs.display()))?,
    );
    let mut report = infra::measure::table(&figures);
    let hello = figures
        .iter()
        .find(|f| f.logical_id == "hello-world")
        .map(|f| (f.init, f.cold_start));
    report.push_str(
        "\n| binary | size | zipped | init vs hello-world | first answer vs hello-world |\n|---|---|---|---|---|\n",
    );
    let mut seen = std::collections::BTreeSet::new();
    for f in &figures {
        if !seen.insert(f.binary.clone()) {
            continue;
        }
        let size = std::fs::metadata(&f.binary)?.len();
        let ratio = |ours: std::time::Duration, theirs: std::time::Duration| {
            format!("{:.1}x", ours.as_secs_f64() / theirs.as_secs_f64().max(1e-9))
        };
        let (init, first) = hello.map_or((String::from("-"), String::from("-")), |(init, first)| {
            (ratio(f.init, init), ratio(f.cold_start, first))
        });
        report.push_str(&format!(
            "| {} | {:.1} MB | {:.1} MB | {init} | {first} |\n",
            f.logical_id,
            size as f64 / 1e6,
            zipped_size(&f.binary).await? as f64 / 1e6,
        ));
    }
    println!("{report}");
    if !debug {
        // The README shows the latest release figures, replaced on each run.
        let path = repo_root().join("README.md");
        let readme = std::fs::read_to_string(&path)?;
        let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
        match infra::measure::readme_with(&readme, &report, &today) {
            Some(updated) => std::fs::write(&path, updated)?,
            None => eprintln!("README.md has no bench markers: figures not written there"),
        }
    }
    Ok(())
}

/// Where the arm64 release build lives (`target/arm64/lambda/<crate>/bootstrap`, the `CodeUri`s).
const ARM64_TARGET_DIR: &str = "target/arm64";

/// The name prefix of the tests that move the clock of the hourly job ahead (run alone, last).
const FUTURE_CLOCK: &str = "future_clock_";
/// The name prefix of the load tests: they measure the stack, so nothing else runs beside them.
const LOAD: &str = "load_";

/// `cargo xtask load`: the ignored load test `load_saturday` with `users` for `seconds`, against an
/// emulator and localstripe of its own.
async fn load(users: u32, seconds: u32) -> Result<()> {
    ensure_tools().await?;
    infra::emulator::ensure_load_tools().await?;
    let emulator = Emulator::start_on_free_port(None).await?;
    let stripe = LocalStripe::start_on_free_port(None).await?;
    let status = with_stack(&mut cargo_command(), &emulator.endpoint, &stripe.url)
        .args([
            "test",
            "--workspace",
            "--locked",
            "--test",
            "e2e",
            "load_saturday",
            "--",
        ])
        .args(["--ignored", "--nocapture", "--test-threads=1"])
        .current_dir(repo_root())
        .env("OFFICERTRAK_LOAD_USERS", users.to_string())
        .env("OFFICERTRAK_LOAD_SECONDS", seconds.to_string())
        .stdin(Stdio::null())
        .status()
        .await;
    stripe.stop().await;
    emulator.stop().await;
    check(status?, "cargo test load_saturday")
}

/// Sums libtest's `test result: ok. N passed; N failed; N ignored; …` lines.
#[derive(Default)]
struct TestTotals {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl TestTotals {
    fn add(&mut self, line: &str) {
        let Some(counts) = line.strip_prefix("test result: ") else {
            return;
        };
        for part in counts.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(label), Some(number)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(number) = number.parse::<u64>() else {
                continue;
            };
            match label {
                "passed" => self.passed += number,
                "failed" => self.failed += number,
                "ignored" => self.ignored += number,
                _ => {}
            }
        }
    }
}

async fn lint() -> Result<()> {
    let template = repo_root().join("template.yaml");
    let status = Command::new(venv_bin("cfn-lint"))
        .arg(&template)
        .stdin(Stdio::null())
        .status()
        .await?;
    check(status, "cfn-lint template.yaml")?;
    let status = Command::new(venv_bin("sam"))
        .args(["validate", "--lint", "--region", REGION, "--template-file"])
        .arg(&template)
        .env("SAM_CLI_TELEMETRY", "0")
        .stdin(Stdio::null())
        .status()
        .await?;
    check(status, "sam validate --lint")
}

/// The function crates ops deploy, as template.yaml names them: `(logical id, crate)`.
fn deployed_functions() -> Result<Vec<(String, String)>> {
    Ok(project_template()?
        .functions()?
        .into_iter()
        .map(|f| (f.logical_id, f.binary))
        .collect())
}

/// `cargo xtask deploy-check`: what ops run before `sam deploy`, and CI runs on every change.
async fn deploy_check() -> Result<()> {
    let started = Instant::now();
    ensure_deploy_tools().await?;
    step("template lint", lint()).await?;
    step("checkov", checkov()).await?;
    step(
        "least privilege (infra::permissions)",
        // The workspace's own feature set: after `cargo xtask test` nothing is rebuilt.
        cargo(&["test", "--workspace", "--locked", "--lib", "permissions"]),
    )
    .await?;
    step("build (cargo lambda, release, arm64)", build_functions()).await?;
    eprintln!("deploy check passed in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Builds every function template.yaml deploys in ONE `cargo lambda build --release --arm64`: the
/// dependencies compile once and the functions' final crates and links run side by side, where SAM's
/// build method ran one cargo per function, one after the other. Each `bootstrap` lands in
/// `target/arm64/lambda/<crate>/`, the function's `CodeUri`, so `sam deploy` only zips it.
async fn build_functions() -> Result<()> {
    let functions = deployed_functions()?;
    // cargo-lambda's own release overrides (one codegen unit, thin LTO, panic=abort) are off: the
    // release profile in Cargo.toml says what the functions are built with, and why.
    // `--timings` leaves target/arm64/cargo-timings/cargo-timing.html: what each crate cost.
    let mut args = vec![
        "lambda",
        "build",
        "--release",
        "--arm64",
        "--locked",
        "--disable-optimizations",
        "--timings",
    ];
    for (_, name) in &functions {
        args.extend(["-p", name.as_str()]);
    }
    let status = cargo_command()
        .args(&args)
        .current_dir(repo_root())
        // A target directory of its own: this build may run beside a test run without waiting for
        // its lock, and neither invalidates the other's artifacts. (cargo-lambda
        // passes `--target-dir` on to `cargo metadata`, which refuses it: the variable works.)
        .env("CARGO_TARGET_DIR", repo_root().join(ARM64_TARGET_DIR))
        .env("PATH", tool_path())
        .stdin(Stdio::null())
        .status()
        .await?;
    check(status, &format!("cargo {}", args.join(" ")))?;
    println!("{:<24} {:>14} {:>14}", "function (arm64)", "bootstrap", "zipped");
    for (logical_id, name) in &functions {
        let bootstrap = repo_root()
            .join(infra::template::LAMBDA_BUILD_DIR)
            .join(name)
            .join("bootstrap");
        let size = std::fs::metadata(&bootstrap)
            .with_context(|| format!("{} was not built", bootstrap.display()))?
            .len();
        println!(
            "{logical_id:<24} {:>11.1} MB {:>11.1} MB",
            size as f64 / 1e6,
            zipped_size(&bootstrap).await? as f64 / 1e6
        );
    }
    Ok(())
}

/// `cargo deny check licenses bans sources` (deny.toml): no crate under a licence outside the
/// allow-list, none from another registry or git. Offline in the sense that matters here: the
/// advisory database is not fetched (README.md says how ops check advisories).
async fn cargo_deny() -> Result<()> {
    let status = Command::new(venv_bin("cargo-deny"))
        .args(["--log-level", "warn", "check", "licenses", "bans", "sources"])
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .status()
        .await?;
    check(status, "cargo deny check licenses bans sources")
}

/// `checkov -f template.yaml`: no failed check (deliberate skips are justified in the template).
async fn checkov() -> Result<()> {
    let status = Command::new(deploy_venv_bin("checkov"))
        .args([
            "--quiet",
            "--compact",
            "--skip-download",
            "--framework",
            "cloudformation",
            "-f",
        ])
        .arg(repo_root().join("template.yaml"))
        .stdin(Stdio::null())
        .status()
        .await?;
    check(status, "checkov -f template.yaml")
}

/// PATH with the deployment tools first (cargo-lambda finds zig there; SAM finds cargo-lambda).
fn tool_path() -> String {
    let inherited = std::env::var("PATH").unwrap_or_default();
    format!(
        "{}:{}:{inherited}",
        deploy_venv_dir().join("bin").display(),
        venv_dir().join("bin").display()
    )
}

/// The size of `file` zipped as Lambda receives it (deflate, the way `sam deploy` packages it).
async fn zipped_size(file: &std::path::Path) -> Result<u64> {
    let output = Command::new("python3")
        .args([
            "-c",
            "import io, sys, zipfile\n\
             buffer = io.BytesIO()\n\
             with zipfile.ZipFile(buffer, 'w', zipfile.ZIP_DEFLATED) as archive:\n    archive.write(sys.argv[1], 'bootstrap')\n\
             print(len(buffer.getvalue()))",
        ])
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .await?;
    check(output.status, "zipping a bootstrap")?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().parse()?)
}

/// Cargo as this xtask's children should see it: without the variables `cargo run` set for the
/// xtask binary itself (`CARGO_PKG_NAME`, `CARGO_MANIFEST_DIR`, ...). Build scripts such as ring's
/// ask to rerun when those change, so a cargo started from here and one started from a shell would
/// each rebuild ring and every crate above it, the whole AWS SDK: measured at about 400 s of every
/// CI run (the tests' compile, the xtask's second build, the least-privilege test).
fn cargo_command() -> Command {
    let mut command = Command::new(env!("CARGO"));
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let set_by_cargo_run = name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || matches!(
                name,
                "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE" | "CARGO_RUSTC_CURRENT_DIR"
            );
        if set_by_cargo_run {
            command.env_remove(name);
        }
    }
    command
}

/// Points a command at the local stack: the emulator and localstripe this run started.
fn with_stack<'a>(command: &'a mut Command, emulator: &str, stripe: &str) -> &'a mut Command {
    command
        .env("AWS_ENDPOINT_URL", emulator)
        .env("STRIPE_API_BASE", stripe)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
}

async fn cargo(args: &[&str]) -> Result<()> {
    let status = cargo_command()
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .status()
        .await?;
    check(status, &format!("cargo {}", args.join(" ")))
}

fn check(status: ExitStatus, what: &str) -> Result<()> {
    if status.success() {
        Ok(())
    } else {
        bail!("{what} failed ({status})")
    }
}

async fn step<T>(name: &str, work: impl Future<Output = Result<T>>) -> Result<T> {
    eprintln!("==> {name}");
    let started = Instant::now();
    let result = work.await;
    let verdict = if result.is_ok() { "ok" } else { "FAILED" };
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("==> {name}: {verdict} in {seconds:.1} s");
    record_step(name, seconds, verdict);
    result
}

/// Appends a finished step to the file `OFFICERTRAK_STEP_LOG` names (tab-separated: step, seconds,
/// verdict), so `.ci/run` can print one table of every step's time at the end of a run.
fn record_step(name: &str, seconds: f64, verdict: &str) {
    let Some(path) = std::env::var_os("OFFICERTRAK_STEP_LOG") else {
        return;
    };
    use std::io::Write;
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| writeln!(file, "{name}\t{seconds:.0}\t{verdict}"));
    if let Err(error) = written {
        eprintln!("warning: the step log could not be written: {error}");
    }
}
