//! The whole API under a Saturday's load, against an emulator that contends as DynamoDB does: many
//! virtual users at once (locust, `infra/python/load/locustfile.py`): customers quoting, booking and
//! reading; officers listing open shifts, claiming the same shifts, checking in and out; dispatchers
//! auto-assigning; staff reading queues; anonymous telemetry and policy reads; a few privacy
//! requests. Afterwards: per route calls, 2xx/4xx/5xx and latency percentiles, the conflicts and
//! throttles the emulator answered, and the invariants that must hold whatever the interleaving.
//!
//! `load_a_short_saturday…` is the CI form (`cargo xtask test` runs it alone, after the other
//! tests); `cargo xtask load` runs `load_saturday` (200 users, 5 minutes by default).

use crate::scheduling::{World, always, book_at, booking_body, next_tuesday_10, officer_with, world};
use e2e::{call_api, stack, sub_of, unique_email};
use futures::future::join_all;
use jiff::{SignedDuration, Timestamp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Officers of the agency (each signs in), customers besides the world's, requests open to claim.
const OFFICERS: usize = 24;
const CUSTOMERS: usize = 8;
const OPEN_REQUESTS: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn load_a_short_saturday_has_no_5xx_and_breaks_no_invariant() {
    saturday(
        shape("OFFICERTRAK_LOAD_USERS", 50),
        shape("OFFICERTRAK_LOAD_SECONDS", 60),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "load test: cargo xtask load (200 users for 5 minutes by default)"]
async fn load_saturday() {
    saturday(
        shape("OFFICERTRAK_LOAD_USERS", 200),
        shape("OFFICERTRAK_LOAD_SECONDS", 300),
    )
    .await;
}

fn shape(variable: &str, default: u32) -> u32 {
    std::env::var(variable)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The people and requests of one run, written for locust to read.
struct Fixture {
    world: World,
    officers: Vec<(String, String)>,
    customers: Vec<(String, String)>,
    requests: Vec<String>,
}

async fn customer(w: &World) -> (String, String) {
    let email = unique_email("loadcustomer");
    let tokens = stack().user_with_email(&email, &["customer"]).await;
    let id = sub_of(&tokens.id_token);
    w.state.keys.create_user_key(&id).await.expect("key");
    w.state
        .store
        .create(&domain::samples::customer(&id, &email))
        .await
        .expect("customer account");
    (id, tokens.id_token)
}

async fn signed_in_officer(w: &World) -> (String, String) {
    let email = unique_email("loadofficer");
    let tokens = stack().user_with_email(&email, &["provider"]).await;
    let id = sub_of(&tokens.id_token);
    officer_with(w, Some(id.clone()), email, always(), |_| {}).await;
    (id, tokens.id_token)
}

async fn set_up() -> Fixture {
    let world = world(|_| {}).await;
    let mut officers = Vec::new();
    for _ in 0..OFFICERS / 4 {
        officers.extend(join_all((0..4).map(|_| signed_in_officer(&world))).await);
    }
    let customers = join_all((0..CUSTOMERS).map(|_| customer(&world))).await;
    // Open shifts weeks ahead (the hourly job of other tests never reaches them), in pairs that
    // overlap: an officer who claims both must be refused the second.
    let first = next_tuesday_10() + SignedDuration::from_hours(24 * 7 * 30);
    let mut requests = Vec::new();
    for n in 0..OPEN_REQUESTS {
        let start = first + SignedDuration::from_hours(24 * (n / 2) as i64);
        requests.push(book_at(&world, start, 4, 2 + (n % 2) as u32, false).await);
    }
    Fixture {
        world,
        officers,
        customers,
        requests,
    }
}

/// What locust reports per route (`infra/python/load/locustfile.py` writes it).
#[derive(Debug, serde::Deserialize)]
struct RouteFigures {
    calls: u64,
    #[serde(rename = "2xx")]
    ok: u64,
    #[serde(rename = "4xx")]
    refused: u64,
    #[serde(rename = "5xx")]
    failed: u64,
    other: u64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
}

#[derive(Debug, serde::Deserialize)]
struct Report {
    routes: BTreeMap<String, RouteFigures>,
    /// Every booking answered 201: (customer index, request id).
    bookings: Vec<(usize, String)>,
    /// Every booking answered with nothing (a timeout) or a 5xx: (customer index, Idempotency-Key).
    unanswered_bookings: Vec<(usize, String)>,
    /// Every 5xx: route, status and the problem's type, to find its logs.
    failures: Vec<Value>,
}

async fn saturday(users: u32, seconds: u32) {
    let fixture = set_up().await;
    let w = &fixture.world;
    // Bookings made under load: weeks after the open shifts, one officer for three hours.
    let booking = booking_body(
        w,
        next_tuesday_10() + SignedDuration::from_hours(24 * 7 * 40),
        3,
        1,
        false,
    );
    let mut quote = booking.clone();
    quote.as_object_mut().expect("object").remove("payment");
    let ops = stack().user("loadops", &["ops"]).await.id_token;
    let privacy_officer = stack().user("loadprivacy", &["privacy_officer"]).await.id_token;
    let support = stack().user("loadsupport", &["support"]).await.id_token;
    // Anonymous apps read the policy in force: on an emulator of its own, it must be published.
    if call_api(Method::GET, "/v1/privacy/policy", None, None, None)
        .await
        .0
        == StatusCode::NOT_FOUND
    {
        let version = json!({
            "policy_version": "2026-11-01", "effective_date": "2026-11-01", "significant": false,
            "summary": "Scheduling data and officer rosters are described."
        });
        let (status, answer) = call_api(
            Method::POST,
            "/v1/admin/policy-versions",
            Some(&privacy_officer),
            Some(&version),
            None,
        )
        .await;
        assert!(status.is_success(), "{status}: {answer}");
    }
    let run = std::env::temp_dir().join(format!("officertrak-load-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&run).expect("a folder for the run");
    let fixture_file = run.join("fixture.json");
    let report_file = run.join("report.json");
    let fixture_json = json!({
        "agency_id": w.agency_id,
        "dispatcher": w.dispatcher_token,
        "admin": w.admin_token,
        "ops": ops,
        "privacy_officer": privacy_officer,
        "support": support,
        "officers": fixture.officers.iter().map(|(id, token)| json!({"id": id, "token": token})).collect::<Vec<_>>(),
        "customers": fixture.customers.iter().map(|(id, token)| json!({"id": id, "token": token})).collect::<Vec<_>>(),
        "requests": fixture.requests,
        "quote": quote,
        "booking": &booking,
    });
    std::fs::write(&fixture_file, fixture_json.to_string()).expect("fixture");
    let contention_before = contention().await;

    let locust = infra::emulator::load_venv_bin("locust");
    let started = std::time::Instant::now();
    let status = tokio::process::Command::new(&locust)
        .args(["-f"])
        .arg(infra::repo_root().join("infra/python/load/locustfile.py"))
        .args(["--headless", "--only-summary", "--loglevel", "WARNING"])
        .args(["--users", &users.to_string()])
        .args(["--spawn-rate", &(users / 10).max(1).to_string()])
        .args(["--run-time", &format!("{seconds}s"), "--stop-timeout", "30"])
        .args(["--host", &stack().url("")])
        .env("OFFICERTRAK_LOAD_FIXTURE", &fixture_file)
        .env("OFFICERTRAK_LOAD_REPORT", &report_file)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .status()
        .await
        .unwrap_or_else(|error| panic!("{} (cargo xtask installs it): {error}", locust.display()));
    let elapsed = started.elapsed();
    assert!(
        status.success() || status.code() == Some(1),
        "locust failed: {status}"
    );
    let report: Report =
        serde_json::from_str(&std::fs::read_to_string(&report_file).expect("locust wrote its report"))
            .expect("the report's shape");
    let contention_after = contention().await;

    print_figures(
        users,
        seconds,
        elapsed,
        &report,
        &contention_before,
        &contention_after,
    );
    let broken = invariants(&fixture, &report, &booking).await;
    println!("\ninvariants checked after the load: {} broken", broken.len());
    for line in &broken {
        println!("  BROKEN: {line}");
    }
    let calls: u64 = report.routes.values().map(|r| r.calls).sum();
    let failed: u64 = report.routes.values().map(|r| r.failed + r.other).sum();
    assert!(
        calls > u64::from(users),
        "the load made too few calls to mean anything: {calls}"
    );
    assert!(
        report.routes.values().any(|r| r.ok > 0) && !report.bookings.is_empty(),
        "nothing succeeded: {:?}",
        report.routes
    );
    assert_eq!(failed, 0, "5xx (or no answer) under load: {:#?}", report.failures);
    assert!(broken.is_empty(), "invariants broken under load: {broken:#?}");
}

/// The emulator's counts of what it refused for contention so far.
async fn contention() -> Value {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("cargo xtask sets AWS_ENDPOINT_URL");
    reqwest::get(format!("{endpoint}/_officertrak/contention"))
        .await
        .expect("the emulator answers")
        .json()
        .await
        .expect("JSON")
}

fn print_figures(
    users: u32,
    seconds: u32,
    elapsed: Duration,
    report: &Report,
    before: &Value,
    after: &Value,
) {
    let delta = |name: &str| {
        after[name]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(before[name].as_u64().unwrap_or(0))
    };
    println!(
        "\nload: {users} users for {seconds} s (locust ran {:.0} s); the emulator holds a transaction's items {} ms and takes {} write units a second per partition",
        elapsed.as_secs_f64(),
        after["settings"]["transaction_ms"],
        after["settings"]["partition_write_units"]
    );
    println!(
        "contention met (answered by the emulator, retried by the store): of {} transactions, {} cancelled for a conflict; {} single writes refused for a conflict; {} throttled",
        delta("transactions"),
        delta("transaction_conflicts"),
        delta("write_conflicts"),
        delta("throttled")
    );
    println!("\n| route | calls | 2xx | 4xx | 5xx | p50 ms | p95 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (route, r) in &report.routes {
        println!(
            "| {route} | {} | {} | {} | {} | {:.0} | {:.0} | {:.0} |",
            r.calls,
            r.ok,
            r.refused,
            r.failed + r.other,
            r.p50_ms,
            r.p95_ms,
            r.p99_ms
        );
    }
    let total: u64 = report.routes.values().map(|r| r.calls).sum();
    println!(
        "| all | {total} | {} | {} | {} | | | |",
        report.routes.values().map(|r| r.ok).sum::<u64>(),
        report.routes.values().map(|r| r.refused).sum::<u64>(),
        report.routes.values().map(|r| r.failed + r.other).sum::<u64>()
    );
}

/// Reads every page of `path` (the API's signed cursor) as `token`.
async fn all_pages(path: &str, token: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page_path = match &cursor {
            Some(cursor) => format!("{path}?cursor={cursor}"),
            None => path.to_owned(),
        };
        let (status, page) = call_api(Method::GET, &page_path, Some(token), None, None).await;
        assert_eq!(status, StatusCode::OK, "{page_path}: {page}");
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
}

/// What must hold after the load, whatever the interleaving; one line per broken rule.
async fn invariants(fixture: &Fixture, report: &Report, booking: &Value) -> Vec<String> {
    let w = &fixture.world;
    let mut broken = Vec::new();
    // No slot filled twice: a request has at most as many live assignments as officers asked for,
    // and an officer at most one on it.
    for request_id in &fixture.requests {
        let path = format!("/v1/service-requests/{request_id}/assignments");
        let (status, answer) = call_api(Method::GET, &path, Some(&w.dispatcher_token), None, None).await;
        if status != StatusCode::OK {
            broken.push(format!("{path} answered {status}"));
            continue;
        }
        let (_, request) = call_api(
            Method::GET,
            &format!("/v1/service-requests/{request_id}"),
            Some(&w.customer_token),
            None,
            None,
        )
        .await;
        let wanted = request["officers"].as_u64().unwrap_or(0);
        let live: Vec<&Value> = answer["items"]
            .as_array()
            .map(|items| items.iter().filter(|a| is_live(a)).collect())
            .unwrap_or_default();
        let officers: BTreeSet<&str> = live
            .iter()
            .filter_map(|a| a["officer_user_id"].as_str())
            .collect();
        if live.len() as u64 > wanted || officers.len() < live.len() {
            broken.push(format!(
                "request {request_id}: {} live assignments for {wanted} officers ({} distinct)",
                live.len(),
                officers.len()
            ));
        }
        if request["filled"].as_u64() != Some(live.len() as u64) {
            broken.push(format!(
                "request {request_id}: filled {} but {} live assignments",
                request["filled"],
                live.len()
            ));
        }
    }
    // No officer in two overlapping shifts.
    for (officer_id, token) in &fixture.officers {
        let mine = all_pages("/v1/providers/me/assignments", token).await;
        let mut shifts: Vec<(Timestamp, Timestamp)> = mine
            .iter()
            .filter(|a| is_live(a))
            .filter_map(|a| {
                Some((
                    a["starts_at"].as_str()?.parse().ok()?,
                    a["ends_at"].as_str()?.parse().ok()?,
                ))
            })
            .collect();
        shifts.sort();
        for pair in shifts.windows(2) {
            if pair[1].0 < pair[0].1 {
                broken.push(format!("officer {officer_id} holds overlapping shifts {pair:?}"));
            }
        }
    }
    // Every booking answered 201 is readable by its customer, with the card's hold recorded; and
    // a customer's list holds exactly the bookings answered 201 (a failed booking left nothing).
    let mut booked: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for (customer, request_id) in &report.bookings {
        booked.entry(*customer).or_default().insert(request_id.clone());
    }
    // A booking whose answer was lost is asked again with its Idempotency-Key, as the app would:
    // the answer now says whether it exists (its 201 again) or not (a new one is made: booked).
    for (customer, key) in &report.unanswered_bookings {
        let token = &fixture.customers[*customer].1;
        let (status, answer) = call_api(
            Method::POST,
            "/v1/service-requests",
            Some(token),
            Some(booking),
            Some(key),
        )
        .await;
        match answer["requests"][0]["request_id"].as_str() {
            Some(request_id) if status == StatusCode::CREATED => {
                booked.entry(*customer).or_default().insert(request_id.to_owned());
            }
            _ => broken.push(format!("a lost booking asked again answered {status}: {answer}")),
        }
    }
    for (index, (customer_id, token)) in fixture.customers.iter().enumerate() {
        let wanted: BTreeSet<String> = booked.get(&index).cloned().unwrap_or_default();
        for request_id in &wanted {
            let (status, request) = call_api(
                Method::GET,
                &format!("/v1/service-requests/{request_id}"),
                Some(token),
                None,
                None,
            )
            .await;
            let held = request["payment"]["amount_cents"].as_i64().unwrap_or(0) > 0;
            if status != StatusCode::OK || !held {
                broken.push(format!(
                    "booking {request_id} answered 201 but reads {status}: {request}"
                ));
            }
        }
        let listed: BTreeSet<String> = all_pages("/v1/service-requests", token)
            .await
            .iter()
            .filter_map(|r| r["request_id"].as_str().map(str::to_owned))
            .collect();
        if listed != wanted {
            broken.push(format!(
                "customer {customer_id}: {} requests listed, {} bookings answered 201",
                listed.len(),
                wanted.len()
            ));
        }
    }
    broken
}

/// An assignment that holds its slot (as `AssignmentStatus::is_active` says).
fn is_live(assignment: &Value) -> bool {
    matches!(
        assignment["status"].as_str(),
        Some("assigned" | "accepted" | "checked_in" | "completed")
    )
}
