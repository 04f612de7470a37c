//! The API reference page the local gateway serves at `/docs`: Swagger UI over `/openapi.json`.
//!
//! Swagger UI comes from the npm registry (`swagger-ui-dist`, pinned in `infra/docs/package.json`
//! and its lock file), installed by [`ensure_installed`] with `npm ci`, and served from this
//! machine: the page's Content-Security-Policy lets the browser load nothing from anywhere else.
//! [`check_in_chromium`] loads the page in headless Chromium, as `cargo xtask test` does, and
//! reports which of the document's operations it lists.

use crate::repo_root;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why the page could not be installed or checked.
#[derive(Debug, Error)]
pub enum DocsError {
    /// `npm ci` (or reading its files) failed.
    #[error("installing the docs page ({step}): {detail}")]
    Install { step: &'static str, detail: String },
    /// Chromium is missing or did not render the page.
    #[error("headless Chromium: {0}")]
    Browser(String),
}

/// What the browser may load on `/docs`: this origin only (Swagger UI sets inline styles, and its
/// icons are data: URIs).
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";

/// Where Debian's Chromium is (the package `chromium`).
const CHROMIUM: &str = "/usr/bin/chromium";

/// The folder of the page (`infra/docs`), with its `node_modules` once installed.
pub fn docs_dir() -> PathBuf {
    repo_root().join("infra/docs")
}

/// Runs `npm ci` in `infra/docs` unless exactly this lock file is installed already (a marker in
/// `node_modules` records it). Install scripts are not run: Swagger UI's only dependency is an
/// analytics package whose install script would call out.
pub async fn ensure_installed() -> Result<(), DocsError> {
    let dir = docs_dir();
    let lock =
        std::fs::read_to_string(dir.join("package-lock.json")).map_err(|error| DocsError::Install {
            step: "reading infra/docs/package-lock.json",
            detail: error.to_string(),
        })?;
    let marker = dir.join("node_modules/.officertrak-lock");
    if std::fs::read_to_string(&marker).is_ok_and(|installed| installed == lock) {
        return Ok(());
    }
    eprintln!("installing the /docs page (Swagger UI, npm ci; one time, seconds)…");
    let output = tokio::process::Command::new("npm")
        .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .env("SCARF_ANALYTICS", "false")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|error| DocsError::Install {
            step: "starting npm (Node.js and npm must be installed)",
            detail: error.to_string(),
        })?;
    if !output.status.success() {
        return Err(DocsError::Install {
            step: "npm ci",
            detail: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    std::fs::write(&marker, lock).map_err(|error| DocsError::Install {
        step: "writing the install marker",
        detail: error.to_string(),
    })
}

/// Makes sure Debian's Chromium is installed (the package `chromium`, which the page check drives
/// headless), installing it with apt-get when it is missing: a fresh machine has none.
pub async fn ensure_browser() -> Result<(), DocsError> {
    if Path::new(CHROMIUM).exists() {
        return Ok(());
    }
    eprintln!("installing Chromium for the /docs page check (apt-get; one time, about a minute)…");
    let output = tokio::process::Command::new("sh")
        .args([
            "-c",
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
             apt-get install -y -qq --no-install-recommends chromium",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|error| DocsError::Browser(error.to_string()))?;
    if !output.status.success() || !Path::new(CHROMIUM).exists() {
        return Err(DocsError::Browser(format!(
            "apt-get install chromium failed (it needs root): {}",
            String::from_utf8_lossy(&output.stderr)
                .chars()
                .take(2000)
                .collect::<String>()
        )));
    }
    Ok(())
}

/// The file behind a `/docs` path, with its media type: the page, its start script, and Swagger
/// UI's script and style sheet. `None` for any other path (the gateway answers 404).
pub fn file_for(path: &str) -> Option<(PathBuf, &'static str)> {
    let dir = docs_dir();
    let swagger = dir.join("node_modules/swagger-ui-dist");
    match path {
        "/docs" | "/docs/" => Some((dir.join("index.html"), "text/html; charset=utf-8")),
        "/docs/docs.js" => Some((dir.join("docs.js"), "text/javascript; charset=utf-8")),
        "/docs/swagger-ui-bundle.js" => Some((
            swagger.join("swagger-ui-bundle.js"),
            "text/javascript; charset=utf-8",
        )),
        "/docs/swagger-ui.css" => Some((swagger.join("swagger-ui.css"), "text/css; charset=utf-8")),
        _ => None,
    }
}

/// The element id Swagger UI gives each operation it lists (`operations-<tag>-<operationId>`),
/// for every operation of `document`: what a rendered page must contain.
pub fn expected_operation_ids(document: &Value) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    if let Some(paths) = document["paths"].as_object() {
        for item in paths.values() {
            for method in ["get", "put", "post", "delete", "patch"] {
                let operation = &item[method];
                let Some(operation_id) = operation["operationId"].as_str() else {
                    continue;
                };
                let tag = operation["tags"][0].as_str().unwrap_or("default");
                ids.insert(format!("operations-{tag}-{operation_id}"));
            }
        }
    }
    ids
}

/// What the check found: the operations the page lists, those it misses, and the screenshot.
#[derive(Debug)]
pub struct PageCheck {
    /// Operations of the document listed on the rendered page.
    pub listed: usize,
    /// Operations of the document the page does not list (their element ids).
    pub missing: Vec<String>,
    /// A screenshot of the top of the page.
    pub screenshot: PathBuf,
}

/// Loads `url` (the gateway's `/docs`) in headless Chromium, lets its scripts run, and compares the
/// rendered page with `document`; also takes a screenshot into `out`.
pub async fn check_in_chromium(url: &str, document: &Value, out: &Path) -> Result<PageCheck, DocsError> {
    if !Path::new(CHROMIUM).exists() {
        return Err(DocsError::Browser(format!(
            "{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)"
        )));
    }
    let profile = out.join("chromium-profile");
    let _ = std::fs::remove_dir_all(&profile);
    let screenshot = out.join("docs.png");
    let dom = chromium(&profile, &["--dump-dom", url]).await?;
    chromium(
        &profile,
        &[
            &format!("--screenshot={}", screenshot.display()),
            "--window-size=1280,1600",
            url,
        ],
    )
    .await?;
    let expected = expected_operation_ids(document);
    let missing: Vec<String> = expected
        .iter()
        .filter(|id| !dom.contains(&format!("id=\"{id}\"")))
        .cloned()
        .collect();
    Ok(PageCheck {
        listed: expected.len() - missing.len(),
        missing,
        screenshot,
    })
}

/// One headless Chromium run with the flags this machine needs (no sandbox as root, no background
/// networking, whose connections a closed network refuses), scripts given 20 s of virtual time.
async fn chromium(profile: &Path, args: &[&str]) -> Result<String, DocsError> {
    let output = tokio::process::Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--virtual-time-budget=20000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|error| DocsError::Browser(error.to_string()))?;
    if !output.status.success() {
        return Err(DocsError::Browser(
            String::from_utf8_lossy(&output.stderr)
                .chars()
                .take(2000)
                .collect(),
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_operation_is_expected_under_its_first_tag_and_only_docs_files_are_served() {
        let document = serde_json::json!({"paths": {
            "/v1/me": {"get": {"operationId": "getMe", "tags": ["accounts", "privacy"]}},
            "/v1/x": {"post": {"operationId": "makeX"}, "parameters": []}
        }});
        let ids: Vec<String> = expected_operation_ids(&document).into_iter().collect();
        assert_eq!(ids, vec!["operations-accounts-getMe", "operations-default-makeX"]);
        assert!(file_for("/docs").is_some());
        assert!(file_for("/docs/../Cargo.toml").is_none());
        assert!(file_for("/docs/node_modules/swagger-ui-dist/package.json").is_none());
    }

    #[test]
    fn the_page_loads_only_files_the_gateway_serves() {
        let page = std::fs::read_to_string(docs_dir().join("index.html")).expect("index.html");
        for source in page
            .split(['"', '\''])
            .filter(|part| part.starts_with('/') || part.contains("://"))
        {
            assert!(
                file_for(source).is_some(),
                "{source} is not served by the gateway"
            );
        }
    }
}
