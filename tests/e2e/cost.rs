//! The AWS requests one API call costs, counted from the emulator's own request recorder on a warm
//! stack: a benchmark (`cargo xtask bench bench_aws_requests`), not a test, because the figures are
//! what it is for. It prints one row per call: the requests by service and operation.

use e2e::{call_api, stack, sub_of};
use reqwest::Method;
use std::collections::BTreeMap;

/// The moto recorder's view of one request: which service and operation it was.
fn operation(entry: &serde_json::Value) -> String {
    let headers = &entry["headers"];
    let target = headers["X-Amz-Target"].as_str().unwrap_or("");
    let service = headers["Authorization"]
        .as_str()
        .and_then(|auth| auth.split('/').nth(3))
        .unwrap_or("?");
    match target.rsplit_once('.') {
        Some((_, op)) => format!("{service}:{op}"),
        None if target.is_empty() => {
            // Query and REST protocols (SES v2, Cognito admin calls) name the operation in the path.
            let path = entry["url"]
                .as_str()
                .unwrap_or("")
                .split('/')
                .skip(3)
                .collect::<Vec<_>>()
                .join("/");
            format!("{service}:{} /{path}", entry["method"].as_str().unwrap_or(""))
        }
        None => format!("{service}:{target}"),
    }
}

async fn recorder(action: &str) -> String {
    let url = format!("{}/moto-api/recorder/{action}", stack().stack.endpoint);
    let client = reqwest::Client::new();
    let response = if action == "download-recording" {
        client.get(url).send().await
    } else {
        client.post(url).send().await
    };
    response.expect("moto recorder").text().await.unwrap_or_default()
}

/// Runs `call` once warm (after one untimed call) with the recorder on; returns the requests by
/// operation.
async fn count<F, Fut>(call: F) -> BTreeMap<String, usize>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    call().await;
    recorder("stop-recording").await;
    recorder("reset-recording").await;
    recorder("start-recording").await;
    call().await;
    recorder("stop-recording").await;
    let recording = recorder("download-recording").await;
    let mut counts = BTreeMap::new();
    for line in recording.lines().filter(|l| !l.trim().is_empty()) {
        if let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) {
            *counts.entry(operation(&entry)).or_insert(0) += 1;
        }
    }
    counts
}

#[tokio::test]
#[ignore = "benchmark: prints figures, run with cargo xtask bench"]
async fn bench_aws_requests_per_call() {
    let stack = stack();
    let state = stack.state("RegistrationFunction", platform::Clock::System).await;
    let customer = stack.user("costcustomer", &["customer"]).await;
    let user_id = sub_of(&customer.id_token);
    state.keys.create_user_key(&user_id).await.expect("key");
    state
        .store
        .create(&domain::samples::customer(&user_id, "cost@example.com"))
        .await
        .expect("account");
    // As registration records it: the decision and its current state.
    let consent = domain::consent::ConsentRecord::marketing(
        &user_id,
        false,
        "2026-11-01",
        domain::consent::ConsentSource::Registration,
        jiff::Timestamp::now(),
    );
    domain::consent::record(&state.store, &consent)
        .await
        .expect("consent");
    let token = customer.id_token.clone();
    let mut rows = Vec::new();
    for (label, method, path) in [
        ("GET /v1/me", Method::GET, "/v1/me"),
        ("GET /v1/service-requests", Method::GET, "/v1/service-requests"),
        ("GET /v1/me/data-inventory", Method::GET, "/v1/me/data-inventory"),
    ] {
        let counts = count(|| {
            let (method, token) = (method.clone(), token.clone());
            async move {
                let (status, body) = call_api(method, path, Some(&token), None, None).await;
                assert!(status.is_success(), "{path}: {status} {body}");
            }
        })
        .await;
        rows.push((label, counts));
    }
    println!("\nAWS requests per warm call (moto recorder):");
    for (label, counts) in rows {
        let total: usize = counts.values().sum();
        let detail: Vec<String> = counts.iter().map(|(op, n)| format!("{op} ×{n}")).collect();
        println!("  {label:<28} {total:>3}   {}", detail.join(", "));
    }
}
