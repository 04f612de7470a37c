//! The local AWS emulator (moto server): installing it into the project's virtualenv and running it.
//!
//! moto serves DynamoDB, KMS, SES, Cognito and Secrets Manager on one port; the SDK reaches it through
//! the endpoint URL. Beside it runs localstripe, the stand-in for the payment processor.
//! Its state lives in memory: it is gone when the process stops.

use crate::repo_root;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use thiserror::Error;
use tokio::process::{Child, Command};

/// What can go wrong installing or starting the emulator.
#[derive(Debug, Error)]
pub enum EmulatorError {
    #[error("{what} failed: {detail}")]
    Install { what: String, detail: String },
    #[error("cannot start moto: {0}")]
    Spawn(std::io::Error),
    #[error("the local emulator did not answer on {0} in time (is the port in use by something else?)")]
    NotReady(String),
    #[error("no free local port: {0}")]
    Port(std::io::Error),
}

/// The project-local virtualenv (`.venv`, git-ignored).
pub fn venv_dir() -> PathBuf {
    repo_root().join(".venv")
}

/// A program installed in the virtualenv (`moto_server`, `cfn-lint`, `sam`).
pub fn venv_bin(name: &str) -> PathBuf {
    venv_dir().join("bin").join(name)
}

/// Makes sure the virtualenv holds exactly the tools locked in `infra/python/requirements.lock`
/// (pins and hashes of `requirements.txt` and everything they pull in); installs them when missing or
/// when the lock changed. A second call is instant.
pub async fn ensure_tools() -> Result<(), EmulatorError> {
    install_requirements(
        &venv_dir(),
        "requirements.lock",
        "moto_server",
        "the local AWS emulator, localstripe and the linters into .venv (one time, a few minutes)",
    )
    .await
}

/// Installs `infra/python/<requirements>` into the virtualenv `venv` (created when missing) unless
/// exactly those pins are installed already (a marker file records them) and `probe` is there.
async fn install_requirements(
    venv: &Path,
    requirements: &str,
    probe: &str,
    what: &str,
) -> Result<(), EmulatorError> {
    let requirements_path = repo_root().join("infra/python").join(requirements);
    let pins = std::fs::read_to_string(&requirements_path).map_err(|error| EmulatorError::Install {
        what: format!("reading {}", requirements_path.display()),
        detail: error.to_string(),
    })?;
    let marker = venv.join(".officertrak-requirements");
    let bin = |name: &str| venv.join("bin").join(name);
    if std::fs::read_to_string(&marker).is_ok_and(|installed| installed == pins) && bin(probe).exists() {
        return Ok(());
    }
    eprintln!("installing {what}…");
    if !bin("python").exists() {
        run(
            "python3",
            &["-m", "venv", &venv.to_string_lossy()],
            &format!("creating {}", venv.display()),
        )
        .await?;
    }
    // Every package, direct or pulled in, comes from the lock with its hashes: pip refuses anything
    // else (a changed file on the registry, an unpinned dependency). pip itself is the venv's own.
    let pip = bin("pip");
    run(
        &pip.to_string_lossy(),
        &[
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--require-hashes",
            "--no-deps",
            "-r",
            &requirements_path.to_string_lossy(),
        ],
        &format!("pip install --require-hashes -r infra/python/{requirements}"),
    )
    .await?;
    std::fs::write(&marker, pins).map_err(|error| EmulatorError::Install {
        what: "writing the marker".into(),
        detail: error.to_string(),
    })
}

async fn run(program: &str, args: &[&str], what: &str) -> Result<(), EmulatorError> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|error| EmulatorError::Install {
            what: what.into(),
            detail: error.to_string(),
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(EmulatorError::Install {
            what: what.into(),
            detail: tail(&String::from_utf8_lossy(&output.stderr), 2000),
        })
    }
}

/// The last `max` characters of `text` (pip's errors are at the end).
fn tail(text: &str, max: usize) -> String {
    let skip = text.chars().count().saturating_sub(max);
    text.chars().skip(skip).collect()
}

/// A running moto server. Dropping it stops the process (if this handle started it).
pub struct Emulator {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    child: Option<Child>,
}

impl Emulator {
    /// Starts moto on `port`, or reuses a moto that already answers there (then it is left running
    /// when this handle is dropped). Waits until it answers.
    pub async fn start(port: u16, log_file: Option<&Path>) -> Result<Self, EmulatorError> {
        Self::start_logging_actions(port, log_file, None).await
    }

    /// Like [`Emulator::start`]; with `actions_log`, a new emulator also writes there each distinct
    /// IAM action a caller needed (see `infra/python/serial_moto.py` and [`crate::permissions`]).
    pub async fn start_logging_actions(
        port: u16,
        log_file: Option<&Path>,
        actions_log: Option<&Path>,
    ) -> Result<Self, EmulatorError> {
        let endpoint = format!("http://127.0.0.1:{port}");
        if answers(&endpoint).await {
            return Ok(Self {
                endpoint,
                child: None,
            });
        }
        // moto through infra/python/serial_moto.py: one request at a time (see that file for why).
        let port = port.to_string();
        let env: Vec<(&str, &Path)> = actions_log
            .map(|path| ("OFFICERTRAK_ACTIONS_LOG", path))
            .into_iter()
            .collect();
        let child = spawn_python(
            "serial_moto.py",
            &["-H", "127.0.0.1", "-p", &port],
            log_file,
            &env,
        )?;
        let emulator = Self {
            endpoint,
            child: Some(child),
        };
        wait_until(&emulator.endpoint, 600, |url| async move { answers(&url).await }).await?;
        Ok(emulator)
    }

    /// Starts moto on a free port (tests: never collides with a running dev stack).
    pub async fn start_on_free_port(log_file: Option<&Path>) -> Result<Self, EmulatorError> {
        let port = free_port().map_err(EmulatorError::Port)?;
        Self::start(port, log_file).await
    }

    /// Stops the process this handle started and waits for it to exit.
    pub async fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

/// A running localstripe (the local Stripe). Dropping it stops the process.
pub struct LocalStripe {
    /// `http://127.0.0.1:<port>`: the functions' `STRIPE_API_BASE`.
    pub url: String,
    child: Option<Child>,
}

impl LocalStripe {
    /// Starts localstripe on `port` (through infra/python/local_stripe.py: state in memory only), or
    /// reuses one that already answers there. Waits until it answers.
    pub async fn start(port: u16, log_file: Option<&Path>) -> Result<Self, EmulatorError> {
        let url = format!("http://127.0.0.1:{port}");
        if stripe_answers(&url).await {
            return Ok(Self { url, child: None });
        }
        let port = port.to_string();
        let child = spawn_python("local_stripe.py", &["--port", &port], log_file, &[])?;
        let stripe = Self {
            url,
            child: Some(child),
        };
        wait_until(&stripe.url, 300, |url| async move { stripe_answers(&url).await }).await?;
        Ok(stripe)
    }

    /// Starts localstripe on a free port.
    pub async fn start_on_free_port(log_file: Option<&Path>) -> Result<Self, EmulatorError> {
        let port = free_port().map_err(EmulatorError::Port)?;
        Self::start(port, log_file).await
    }

    /// Stops the process this handle started.
    pub async fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

/// Whether a localstripe answers at `url` (an authenticated list of customers).
pub async fn stripe_answers(url: &str) -> bool {
    reqwest::Client::new()
        .get(format!("{url}/v1/customers"))
        .bearer_auth(crate::bootstrap::LOCAL_STRIPE_SECRET_KEY)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
}

/// Starts `infra/python/<script>` with the virtualenv's Python, its output to `log_file` (or
/// nowhere); the process ends when its handle is dropped.
fn spawn_python(
    script: &str,
    args: &[&str],
    log_file: Option<&Path>,
    env: &[(&str, &Path)],
) -> Result<Child, EmulatorError> {
    let (stdout, stderr) = match log_file {
        Some(path) => {
            let file = std::fs::File::create(path).map_err(EmulatorError::Spawn)?;
            let copy = file.try_clone().map_err(EmulatorError::Spawn)?;
            (Stdio::from(file), Stdio::from(copy))
        }
        None => (Stdio::null(), Stdio::null()),
    };
    // moto's request recorder (the cost benchmark) writes `moto_recording` into its working
    // directory: that is `.local/`, never the repository's top level.
    let local = repo_root().join(".local");
    std::fs::create_dir_all(&local).map_err(EmulatorError::Spawn)?;
    Command::new(venv_bin("python"))
        .arg(repo_root().join("infra/python").join(script))
        .args(args)
        .current_dir(&local)
        .env("MOTO_RECORDER_FILEPATH", local.join("moto_recording"))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .map_err(EmulatorError::Spawn)
}

/// Waits until `ready(url)` holds, checking every 100 ms, at most `tries` times.
async fn wait_until<F, Fut>(url: &str, tries: u32, ready: F) -> Result<(), EmulatorError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..tries {
        if ready(url.to_owned()).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(EmulatorError::NotReady(url.to_owned()))
}

/// A port that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether a moto server answers at `endpoint`.
pub async fn answers(endpoint: &str) -> bool {
    let client = reqwest::Client::new();
    client
        .get(format!("{endpoint}/moto-api/"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
}

/// The deployment tools' own virtualenv (`.venv/deploy`): checkov pins a boto3 that the SAM CLI in
/// `.venv` does not accept, so the two cannot share one.
pub fn deploy_venv_dir() -> PathBuf {
    venv_dir().join("deploy")
}

/// A program of the deployment tools (`checkov`, `cargo-lambda`, `python-zig`).
pub fn deploy_venv_bin(name: &str) -> PathBuf {
    deploy_venv_dir().join("bin").join(name)
}

/// Schemathesis' own virtualenv (`.venv/fuzz`): its pins (jsonschema, hypothesis) are its own
/// business and must not move the emulator's.
pub fn fuzz_venv_dir() -> PathBuf {
    venv_dir().join("fuzz")
}

/// A program of the fuzzing tools (`st`, schemathesis' command).
pub fn fuzz_venv_bin(name: &str) -> PathBuf {
    fuzz_venv_dir().join("bin").join(name)
}

/// Makes sure `.venv/fuzz` holds the schemathesis locked in `infra/python/fuzz-requirements.lock`.
/// A second call is instant.
pub async fn ensure_fuzz_tools() -> Result<(), EmulatorError> {
    install_requirements(
        &fuzz_venv_dir(),
        "fuzz-requirements.lock",
        "st",
        "schemathesis into .venv/fuzz (one time, under a minute)",
    )
    .await
}

/// The virtualenv of the load generator (locust), `.venv/load`.
pub fn load_venv_dir() -> PathBuf {
    repo_root().join(".venv/load")
}

/// A program of the load generator's virtualenv.
pub fn load_venv_bin(name: &str) -> PathBuf {
    load_venv_dir().join("bin").join(name)
}

/// Makes sure `.venv/load` holds locust as `infra/python/load-requirements.lock` pins it.
pub async fn ensure_load_tools() -> Result<(), EmulatorError> {
    install_requirements(
        &load_venv_dir(),
        "load-requirements.lock",
        "locust",
        "locust into .venv/load (one time, under a minute)",
    )
    .await
}

/// Makes sure `.venv` (the linters, the SAM CLI) and `.venv/deploy` (checkov, cargo-lambda, zig, the
/// versions locked in `infra/python/deploy-requirements.lock`) are installed, and that rustup has
/// the `aarch64-unknown-linux-gnu` target the functions are built for. A second call is instant.
pub async fn ensure_deploy_tools() -> Result<(), EmulatorError> {
    ensure_tools().await?;
    ensure_build_tools().await
}

/// Only what the arm64 build needs (`.venv/deploy`: cargo-lambda and zig; the Rust target), not the
/// emulator's `.venv`: `cargo xtask build` may then run beside `cargo xtask test`, which installs
/// that one, without two pip runs writing one virtualenv.
pub async fn ensure_build_tools() -> Result<(), EmulatorError> {
    install_requirements(
        &deploy_venv_dir(),
        "deploy-requirements.lock",
        "checkov",
        "checkov, cargo-lambda and zig into .venv/deploy (one time, about a minute)",
    )
    .await?;
    run(
        "rustup",
        &["target", "add", "aarch64-unknown-linux-gnu"],
        "rustup target add aarch64-unknown-linux-gnu",
    )
    .await
}
