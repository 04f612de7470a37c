//! What each API operation costs in AWS requests, against the minimum it needs: a benchmark
//! (`cargo xtask bench bench_cost`), not a test, because the figures are what it is for. Every
//! request of every client the functions build is counted by `platform::meter` (an SDK interceptor),
//! by service and operation, with the DynamoDB items read and written; each operation runs
//! `COST_RUNS` times (default 20) through the in-process local gateway (or, for scheduled and queued
//! work, through the function's own entry point), and the time is the call's, p50 and p99. Then
//! auto-assign and open shifts run in agencies of 100 and 1,000 officers (`COST_OFFICERS`), and the
//! table is filled with unrelated items (`COST_TABLE_SIZES`, 1,000 and 100,000) and the read rows
//! run again. The tables are printed and written into the README between the `bench cost` markers.

use crate::accounts::{customer_body, provider_body};
use crate::scheduling::{World, always, booking_body, next_tuesday_10, officer_with, world};
use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use domain::scheduling::{self, Action};
use e2e::{call_api, event, stack, sub_of, unique_email};
use edge::auth::{Caller, Role};
use jiff::{SignedDuration, Timestamp};
use platform::Clock;
use platform::meter::OperationCount;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Requests the local stand-in for Lambda's SQS event source makes (Lambda's, not the function's).
const EVENT_SOURCE: [&str; 3] = ["ReceiveMessage", "DeleteMessage", "DeleteMessageBatch"];

/// One measured run: the requests by operation, and the time.
struct Sample {
    counts: BTreeMap<String, OperationCount>,
    took: Duration,
}

impl Sample {
    fn requests(&self) -> u64 {
        self.counts.values().map(|c| c.requests).sum()
    }
    fn read(&self) -> u64 {
        self.counts.values().map(|c| c.items_read).sum()
    }
    /// The branch-key fetches (the key store and KMS unwrapping): paid once per user per container
    /// every 5 minutes (the keyring's cache), so a minimum leaves them out.
    fn key_fetches(&self) -> u64 {
        self.counts
            .iter()
            .filter(|(op, _)| op.ends_with("(keys)"))
            .map(|(_, c)| c.requests)
            .sum()
    }
    fn written(&self) -> u64 {
        self.counts.values().map(|c| c.items_written).sum()
    }
}

/// Runs `work` with the meter cleared, and returns what it cost.
async fn metered<T>(work: impl std::future::Future<Output = T>) -> (T, Sample) {
    platform::meter::take();
    let started = Instant::now();
    let out = work.await;
    let took = started.elapsed();
    let counts = platform::meter::take()
        .into_iter()
        .filter(|(op, _)| !EVENT_SOURCE.iter().any(|e| op.ends_with(&format!(":{e}"))))
        .collect();
    (out, Sample { counts, took })
}

/// One row of the table: an operation, its samples, and the minimum it needs.
struct Row {
    label: String,
    samples: Vec<Sample>,
    /// The fewest requests the operation needs with its keys cached; 0 when it grows with data.
    minimum: u64,
    why: &'static str,
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

fn range(values: &[u64]) -> String {
    let (lo, hi) = (
        values.iter().min().copied().unwrap_or(0),
        values.iter().max().copied().unwrap_or(0),
    );
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}–{hi}")
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1_000.0)
}

impl Row {
    fn requests(&self) -> Vec<u64> {
        self.samples.iter().map(Sample::requests).collect()
    }

    /// The breakdown of the sample with the median request count.
    fn detail(&self) -> String {
        let typical = median(self.requests());
        let Some(sample) = self.samples.iter().find(|s| s.requests() == typical) else {
            return String::new();
        };
        sample
            .counts
            .iter()
            .filter(|(_, c)| c.requests > 0)
            .map(|(op, c)| format!("{op} ×{}", c.requests))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn markdown(&self) -> String {
        let requests = self.requests();
        let keys: Vec<u64> = self.samples.iter().map(Sample::key_fetches).collect();
        let without_keys = median(
            self.samples
                .iter()
                .map(|s| s.requests() - s.key_fetches())
                .collect(),
        );
        let gap = without_keys.saturating_sub(self.minimum);
        let read = range(&self.samples.iter().map(Sample::read).collect::<Vec<_>>());
        let written = range(&self.samples.iter().map(Sample::written).collect::<Vec<_>>());
        let times = self.samples.iter().map(|s| s.took);
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            self.label,
            self.samples.len(),
            range(&requests),
            range(&keys),
            self.detail(),
            read,
            written,
            ms(infra::measure::percentile(times.clone(), 50)),
            ms(infra::measure::percentile(times, 99)),
            self.minimum,
            if gap == 0 {
                "0".to_owned()
            } else {
                format!("**{gap}**")
            },
            self.why,
        )
    }
}

const HEADER: &str = "| operation | runs | AWS requests | of which branch-key fetches | by service and operation (median run) | items read | items written | p50 ms | p99 ms | minimum, keys cached | gap | why that minimum |\n|---|---|---|---|---|---|---|---|---|---|---|---|";

fn runs() -> usize {
    std::env::var("COST_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(20)
}

/// Calls the shared gateway, metered; the status must be a success.
async fn api(method: Method, path: &str, token: &str, body: Option<&Value>) -> (Value, Sample) {
    let ((status, answer), sample) = metered(call_api(method, path, Some(token), body, None)).await;
    assert!(status.is_success(), "{path}: {status} {answer}");
    (answer, sample)
}

/// An officer of `w`'s agency who can sign in: (user id, token).
async fn signed_in_officer(w: &World) -> (String, String) {
    let email = unique_email("costofficer");
    let token = stack().user_with_email(&email, &["provider"]).await.id_token;
    let id = sub_of(&token);
    officer_with(w, Some(id.clone()), email, always(), |_| {}).await;
    (id, token)
}

/// Waits, without a metered request, until the privacy worker has closed request `id` of `user_id`.
async fn privacy_request_closed(raw: &aws_sdk_dynamodb::Client, table: &str, user_id: &str, id: &str) {
    let started = Instant::now();
    loop {
        let item = raw
            .get_item()
            .table_name(table)
            .key(
                "pk",
                AttributeValue::S(platform::keys::privacy_partition(user_id)),
            )
            .key("sk", AttributeValue::S(format!("REQUEST#{id}")))
            .send()
            .await
            .expect("raw read")
            .item
            .unwrap_or_default();
        let status = item.get("status").and_then(|v| v.as_s().ok()).cloned();
        let lifecycle: Option<domain::privacy::requests::Lifecycle> =
            status.and_then(|s| serde_json::from_value(Value::String(s)).ok());
        if lifecycle.is_some_and(|l| !l.is_open()) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the worker did not finish {id}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes plain unrelated items (other partitions) until the table holds `target` of them.
async fn fill(raw: &aws_sdk_dynamodb::Client, table: &str, from: usize, target: usize) {
    let mut next = from;
    while next < target {
        let end = (next + 25).min(target);
        let writes = (next..end)
            .map(|i| {
                let put = PutRequest::builder()
                    .item("pk", AttributeValue::S(format!("BENCHFILL#{i}")))
                    .item("sk", AttributeValue::S("ITEM".into()))
                    .item("payload", AttributeValue::S("x".repeat(200)))
                    .build()
                    .expect("put");
                WriteRequest::builder().put_request(put).build()
            })
            .collect::<Vec<_>>();
        let mut pending = Some(std::collections::HashMap::from([(table.to_owned(), writes)]));
        while let Some(items) = pending.take().filter(|m| !m.is_empty()) {
            let out = raw
                .batch_write_item()
                .set_request_items(Some(items))
                .send()
                .await
                .expect("fill");
            pending = out.unprocessed_items;
        }
        next = end;
    }
}

#[tokio::test]
#[ignore = "benchmark: prints figures, run with cargo xtask bench bench_cost"]
async fn bench_cost_per_operation() {
    let n = runs();
    let stack = stack();
    let w = world(|_| {}).await;
    let raw = aws_sdk_dynamodb::Client::new(&stack.sdk().await);
    let table = w.state.store.table().to_owned();
    let mut rows: Vec<Row> = Vec::new();
    let mut row = |label: &str, samples: Vec<Sample>, minimum: u64, why: &'static str| {
        rows.push(Row {
            label: label.to_owned(),
            samples,
            minimum,
            why,
        });
    };

    // Registration: a customer, a provider applying to the agency, the agency approving.
    let mut samples = Vec::new();
    let mut customers = Vec::new();
    // The first reads and books below; ten more are the privacy rows' subjects.
    for _ in 0..n.max(11) {
        let email = unique_email("costcustomer");
        let token = stack.user_with_email(&email, &["customer"]).await.id_token;
        let (_, sample) = api(
            Method::POST,
            "/v1/customers",
            &token,
            Some(&customer_body(&email, "Ada Lovelace-Byron")),
        )
        .await;
        samples.push(sample);
        customers.push((email, token));
    }
    row(
        "register customer (`POST /v1/customers`)",
        samples,
        6,
        "admission; the policy in force; the address lock's keyed hash (KMS GenerateMac: only the key's holder can compute it); account, address lock, consent and acceptance in one transaction; the welcome mail; the access log. Creating the new user's branch key (2 GenerateDataKeyWithoutPlaintext, 1 ReEncrypt, 1 key-store transaction) and first using it are the branch-key column",
    );
    let mut samples = Vec::new();
    let mut approvals = Vec::new();
    for _ in 0..n {
        let email = unique_email("costprovider");
        let token = stack.user_with_email(&email, &["provider"]).await.id_token;
        let (_, sample) = api(
            Method::POST,
            "/v1/providers",
            &token,
            Some(&provider_body(&email, Some(&w.agency_id))),
        )
        .await;
        samples.push(sample);
        approvals.push(sub_of(&token));
    }
    row(
        "register provider, applying to an agency (`POST /v1/providers`)",
        samples,
        6,
        "as a customer, with the agency applied to read in one BatchGetItem with the policy and the membership in the account's transaction. Today also: the agency by its own GetItem, a memberships Query to build the answer (it could be built from what was written) and a user-pool AdminGetUser",
    );
    let mut samples = Vec::new();
    for provider in &approvals {
        let path = format!("/v1/agencies/{}/memberships/{provider}/decision", w.agency_id);
        let (_, sample) = api(
            Method::POST,
            &path,
            &w.admin_token,
            Some(&json!({"decision": "approve"})),
        )
        .await;
        samples.push(sample);
    }
    row(
        "approve membership (`POST …/memberships/{id}/decision`)",
        samples,
        5,
        "admission; agency (who may decide), membership, roster and the officer's account (the mail's address) in one BatchGetItem; the decision and its audit entry in one transaction; the officer's mail; the access log. Today the agency (read first, to check the caller is its admin) and the roster (read by the re-listing, in scheduling, after the decision) are GetItems of their own",
    );

    // Reads of one's own data.
    let me = customers[0].1.clone();
    let read_rows: [(&str, &str, u64, &'static str); 3] = [
        (
            "get me (`GET /v1/me`)",
            "/v1/me",
            3,
            "admission (a consistent GetItem of the revocation marker, the account and address rate counters, two sharded usage counters: none in a transaction); accounts, current consent and policy in one BatchGetItem; the access log",
        ),
        (
            "data inventory (`GET /v1/me/data-inventory`)",
            "/v1/me/data-inventory",
            7,
            "admission; key-only Queries of the user's, the access log's and the privacy partition; the purposes in force and the user's current decisions (a Query each: the consent per purpose); the access log. Today the account view is also read by a BatchGetItem, though the first Query could give it",
        ),
        (
            "list requests (`GET /v1/service-requests`)",
            "/v1/service-requests",
            3,
            "admission; one Query of the caller's requests; the access log",
        ),
    ];
    api(Method::GET, "/v1/me", &me, None).await;
    for (label, path, minimum, why) in read_rows {
        let samples = read_samples(n, path, &me).await;
        row(label, samples, minimum, why);
    }
    // The meter sees what the emulator sees: the same call, counted by both.
    assert_eq!(
        recorded(|| async {
            api(Method::GET, "/v1/me", &me, None).await;
        })
        .await,
        api(Method::GET, "/v1/me", &me, None).await.1.requests(),
        "the interceptor counts every request the emulator receives"
    );

    // Quote and book: two requests per run at the same start, each for one officer for two hours.
    let start = next_tuesday_10();
    let mut quote = booking_body(&w, start, 2, 1, false);
    quote.as_object_mut().expect("object").remove("payment");
    let mut samples = Vec::new();
    for _ in 0..n {
        samples.push(api(Method::POST, "/v1/quotes", &me, Some(&quote)).await.1);
    }
    row(
        "quote (`POST /v1/quotes`)",
        samples,
        3,
        "admission; the agency with its rates; the access log",
    );
    let booking = booking_body(&w, start, 2, 1, false);
    let mut samples = Vec::new();
    let mut requests = Vec::new();
    for _ in 0..2 * n {
        let (answer, sample) = api(Method::POST, "/v1/service-requests", &me, Some(&booking)).await;
        samples.push(sample);
        requests.push(
            answer["requests"][0]["request_id"]
                .as_str()
                .expect("request id")
                .to_owned(),
        );
    }
    row(
        "book (`POST /v1/service-requests`)",
        samples,
        5,
        "admission; customer account, agency and the processor's customer in one BatchGetItem; requests, pointers, payment and charges in one transaction; the agency's activity counter (plain client, apart from the encrypted transaction); the access log. The card authorisation is Stripe's",
    );
    let (claimed, offered) = requests.split_at(n);

    // Officers: one per request, so no rule (rest, weekly hours) refuses a run.
    let mut officers = Vec::new();
    for _ in 0..2 * n {
        officers.push(signed_in_officer(&w).await);
    }
    let tokens: BTreeMap<String, String> = officers.iter().cloned().collect();
    let first_officer = officers[0].1.clone();
    let samples = read_samples(n, "/v1/providers/me/open-shifts", &first_officer).await;
    row(
        "open shifts (`GET /v1/providers/me/open-shifts`)",
        samples,
        5,
        "admission; the caller's memberships (Query); the agency's open requests by start time (1 Query per agency); account, roster, agency, do-not-hire entry and the caller's assignments in one BatchGetItem; the access log",
    );
    let mut samples = Vec::new();
    let mut placed = Vec::new();
    for (request_id, (officer_id, token)) in claimed.iter().zip(&officers) {
        let path = format!("/v1/service-requests/{request_id}/claims");
        let (answer, sample) = api(Method::POST, &path, token, None).await;
        samples.push(sample);
        placed.push((
            officer_id.clone(),
            token.clone(),
            answer["assignment_id"].as_str().expect("assignment").to_owned(),
        ));
    }
    row(
        "claim (`POST /v1/service-requests/{id}/claims`)",
        samples,
        8,
        "admission; the request's pointer; request, agency, account, membership, roster, do-not-hire entry, assignment and customer in one BatchGetItem; the placement transaction; the agency's activity counter; the officer's and the customer's mail; the access log. Today the pre-check and the placement read the same 5 items twice, and each is a GetItem",
    );
    let mut samples = Vec::new();
    let mut assigned = Vec::new();
    for request_id in offered {
        let path = format!("/v1/service-requests/{request_id}/auto-assign");
        let (answer, sample) = api(Method::POST, &path, &w.dispatcher_token, None).await;
        samples.push(sample);
        let pick = &answer["picked"][0];
        let (Some(officer), Some(assignment)) =
            (pick["officer_user_id"].as_str(), pick["assignment_id"].as_str())
        else {
            panic!("auto-assign placed nobody: {answer}");
        };
        assigned.push((officer.to_owned(), assignment.to_owned()));
    }
    row(
        &format!(
            "auto-assign, {} officers in the pool (`POST …/auto-assign`)",
            2 * n
        ),
        samples,
        15,
        "admission; the pointer; request and agency in one BatchGetItem; the pool for the shift's days (6 day keys, one Query each: inherent); the pool's accounts, rosters, assignments, memberships and do-not-hire entries in one BatchGetItem per 100 keys; the placement transaction; the counter; 2 mails; the access log. Today the placement re-reads the shift and the officer (8 GetItems) and the report reads the shift a third time",
    );
    let mut samples = Vec::new();
    for (officer, assignment) in &assigned {
        let token = tokens.get(officer).expect("a known officer");
        let path = format!("/v1/assignments/{assignment}/accept");
        samples.push(api(Method::POST, &path, token, None).await.1);
    }
    row(
        "accept (`POST /v1/assignments/{id}/accept`)",
        samples,
        8,
        "admission; the pointer; assignment, request pointer and account in one BatchGetItem, then membership, do-not-hire entry, request and agency in a second; the change; the dispatcher's address from the user pool (dispatchers hold no account); the mail; the access log",
    );

    // The shift: check in at its start and out two hours later. A gateway whose clock is days ahead
    // finds every token expired, so these two run the handler's domain call as the scheduling
    // function at that time: the API call adds admission and the access log (2 requests).
    for (at, action, label, minimum, why) in [
        (
            start,
            Action::CheckIn,
            "check in (domain call at the start; + 2 through the API)",
            4u64,
            "the pointer; assignment, request pointer and account (active?) in one BatchGetItem, then request, agency, membership and do-not-hire entry in a second; assignment and request (started) in one transaction",
        ),
        (
            start + SignedDuration::from_hours(2),
            Action::CheckOut,
            "check out (domain call at the end; + 2 through the API)",
            8,
            "the pointer; assignment, roster and request pointer in one BatchGetItem; request and agency in a second (a check-out falls between the start and the end plus the booked grace); the transaction; the request (by the key its pointer names); a Query of its assignments and their fresh reads (the index lags); the request completed. Before this change it also read the agency and called the invoicing, which cannot be due at a check-out (6 requests)",
        ),
    ] {
        let state = stack.function_state("SchedulingFunction", Clock::fixed(at)).await;
        let mut samples = Vec::new();
        for (officer, _, assignment) in &placed {
            let caller = Caller::acting_for(officer, Role::Provider);
            let (done, sample) = metered(scheduling::act(&state, &caller, assignment, action)).await;
            done.unwrap_or_else(|error| panic!("{action:?}: {error:?}"));
            samples.push(sample);
        }
        row(label, samples, minimum, why);
    }
    let mut samples = Vec::new();
    for (_, token, assignment) in &placed {
        let path = format!("/v1/assignments/{assignment}/timesheet");
        samples.push(api(Method::POST, &path, token, None).await.1);
    }
    row(
        "submit timesheet (`POST /v1/assignments/{id}/timesheet`)",
        samples,
        5,
        "admission; the assignment's pointer, then the assignment (the pointer names its partition); the timesheet written; the access log",
    );
    let mut samples = Vec::new();
    for (_, _, assignment) in &placed {
        let path = format!("/v1/assignments/{assignment}/timesheet/approval");
        samples.push(api(Method::POST, &path, &w.dispatcher_token, None).await.1);
    }
    row(
        "approve timesheet, the last: invoice and capture (`POST …/timesheet/approval`)",
        samples,
        12,
        "admission; the pointer; request pointer, assignment and roster in one BatchGetItem, then request and agency; the approval transaction; a Query of the request's assignments and their fresh reads (is it the last?); the invoice created before the capture (idempotence); customer and charge in one BatchGetItem; the mail; charge and invoice settled in one transaction; the access log. Today the shift is read twice and the invoice re-read after writing it",
    );
    let mut samples = Vec::new();
    for request_id in claimed {
        let path = format!("/v1/service-requests/{request_id}/invoice");
        samples.push(api(Method::GET, &path, &me, None).await.1);
    }
    row(
        "invoice (`GET /v1/service-requests/{id}/invoice`)",
        samples,
        3,
        "admission; the invoice by the customer's own key; the access log (staff: the request's pointer, the agency, then the invoice: 5)",
    );

    // Privacy rights, off the request path: the request, then the worker's job.
    let privacy_runs = n.min(5);
    for (kind, label, job_label, minimum, why, job_minimum, job_why) in [
        (
            "access",
            "export: the request (`POST /v1/privacy-requests` access)",
            "export: the worker's job",
            5u64,
            "admission; pointer, request (at in_processing directly) and audit entries in one transaction; the receipt mail; the job's SendMessage; the access log. Today a revocation GetItem (admission checked it), the request read twice (once since this change), 7 PutItems through a state that lasts an instant, and an AdminGetUser for the address the token carries",
            0u64,
            "grows with the subject's data: a Query page per partition, the export written in budgeted slices, the manifest, the mail (bench_a_large_user: 10,000 entries)",
        ),
        (
            "deletion",
            "delete: the request (`POST /v1/privacy-requests` deletion)",
            "delete: the worker's job",
            5,
            "as for access",
            0,
            "grows with the subject's data: each item deleted or kept for the law, the user-pool entry, the processor's customer, the branch key",
        ),
    ] {
        let mut requests = Vec::new();
        let mut jobs = Vec::new();
        let subjects = match kind {
            "access" => &customers[1..=privacy_runs],
            _ => &customers[privacy_runs + 1..=2 * privacy_runs],
        };
        for (email, _) in subjects {
            // A fresh sign-in: access and deletion need one within 15 minutes.
            let token = stack.user_with_email(email, &["customer"]).await.id_token;
            let user_id = sub_of(&token);
            let body = json!({"type": kind});
            let (answer, sample) = api(Method::POST, "/v1/privacy-requests", &token, Some(&body)).await;
            let id = answer["id"].as_str().expect("request id");
            let ((), job) = metered(privacy_request_closed(&raw, &table, &user_id, id)).await;
            requests.push(sample);
            jobs.push(job);
        }
        row(label, requests, minimum, why);
        row(job_label, jobs, job_minimum, job_why);
    }

    // The hourly run, at the system clock.
    let scheduled: CloudWatchEvent =
        serde_json::from_str(&event("retention-hourly-purge.json")).expect("a scheduled event");
    let retention = stack.function_state("RetentionFunction", Clock::System).await;
    let mut samples = Vec::new();
    for _ in 0..n.min(5) {
        let (report, sample) = metered(retention::handle_schedule(&retention, scheduled.clone())).await;
        report.expect("the purge run");
        samples.push(sample);
    }
    row(
        "purge run (the hourly schedule)",
        samples,
        5,
        "the checkpoint and both policies in force in one BatchGetItem; this month's due bucket (one Query, shared by the purge and the review); the open privacy requests (one Query, shared by the lapse, the overdue alert and the requeue); the campaigns due (Query); the unconfirmed sign-ups (ListUsers); writes only for due work. Today the review of due work also Queries the 12 months before (what a stalled review left: 12 of the gap), and the checkpoint and the policies are 3 GetItems",
    );

    let mut out = format!(
        "Measured {} with `cargo xtask bench bench_cost` ({n} runs per row; warm, in-process through the local gateway against moto; requests counted by `platform::meter`).\n\n{HEADER}\n",
        Timestamp::now().strftime("%Y-%m-%d")
    );
    for r in &rows {
        out.push_str(&r.markdown());
        out.push('\n');
    }

    // Officers first: an index's Query in the emulator looks at every item, so filling the table
    // first would only slow the set-up.
    out.push_str(&officer_scaling().await);

    // Table size: the read rows again with unrelated items in the table.
    out.push_str("\n**With unrelated items in the table** (a warm call: items read, requests in brackets):\n\n| operation | as above | 1,000 items | 100,000 items |\n|---|---|---|---|\n");
    let sizes: Vec<usize> = std::env::var("COST_TABLE_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 100_000]);
    let scaled: [(&str, &str, &str); 4] = [
        ("get me", "/v1/me", &me),
        ("data inventory", "/v1/me/data-inventory", &me),
        ("list requests", "/v1/service-requests", &me),
        ("open shifts", "/v1/providers/me/open-shifts", &first_officer),
    ];
    let mut cells: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (label, path, token) in scaled {
        let s = warm(path, token).await;
        cells
            .entry(label)
            .or_default()
            .push(format!("{} ({})", s.read(), s.requests()));
    }
    let mut filled = 0;
    for size in &sizes {
        let started = Instant::now();
        fill(&raw, &table, filled, *size).await;
        println!(
            "filled to {size} unrelated items in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        filled = *size;
        for (label, path, token) in scaled {
            let s = warm(path, token).await;
            cells
                .entry(label)
                .or_default()
                .push(format!("{} ({})", s.read(), s.requests()));
        }
    }
    for (label, _, _) in scaled {
        out.push_str(&format!("| {label} | {} |\n", cells[label].join(" | ")));
    }

    println!("\n{out}");
    let path = infra::repo_root().join("README.md");
    let readme = std::fs::read_to_string(&path).expect("README");
    match infra::measure::replace_section(&readme, "cost", &out) {
        Some(updated) => std::fs::write(&path, updated).expect("README written"),
        None => println!("(the README has no `cargo xtask bench cost` markers: not written)"),
    }
}

/// The second of two calls of `GET path` as `token`: the first warms the keyring's cache.
async fn warm(path: &str, token: &str) -> Sample {
    api(Method::GET, path, token, None).await;
    api(Method::GET, path, token, None).await.1
}

/// `n` warm calls of `GET path` as `token`.
async fn read_samples(n: usize, path: &str, token: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for _ in 0..n {
        samples.push(api(Method::GET, path, token, None).await.1);
    }
    samples
}

/// Only the agency-size table (`cargo xtask bench bench_officers`, sizes from `COST_OFFICERS`):
/// printed, not written to the README.
#[tokio::test]
#[ignore = "benchmark: prints figures, run with cargo xtask bench bench_officers"]
async fn bench_officers() {
    println!("{}", officer_scaling().await);
}

/// Open shifts and auto-assign in agencies of `COST_OFFICERS` officers (default 100 and 5,000, as
/// the issue asks; each officer takes the local stack about a quarter of a second to set up, so
/// 5,000 take about 20 minutes), each available all week: what grows with the pool, and what does not.
async fn officer_scaling() -> String {
    let sizes: Vec<usize> = std::env::var("COST_OFFICERS")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 5_000]);
    let mut out = String::from(
        "\n**With more officers in the agency** (one open request, each operation called once):\n\n| officers | open shifts | auto-assign |\n|---|---|---|\n",
    );
    for size in sizes {
        let w = world(|_| {}).await;
        let started = Instant::now();
        let (_, token) = signed_in_officer(&w).await;
        for chunk in (1..size).collect::<Vec<_>>().chunks(16) {
            futures::future::join_all(
                chunk
                    .iter()
                    .map(|_| officer_with(&w, None, unique_email("pool"), always(), |_| {})),
            )
            .await;
            if chunk.iter().any(|n| n % 500 == 0) {
                println!(
                    "  {} officers after {:.0} s",
                    chunk[chunk.len() - 1] + 1,
                    started.elapsed().as_secs_f64()
                );
            }
        }
        println!(
            "{size} officers set up in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let start = next_tuesday_10() + SignedDuration::from_hours(24);
        let body = booking_body(&w, start, 2, 1, false);
        let (answer, _) = api(
            Method::POST,
            "/v1/service-requests",
            &w.customer_token,
            Some(&body),
        )
        .await;
        let request_id = answer["requests"][0]["request_id"]
            .as_str()
            .expect("id")
            .to_owned();
        api(Method::GET, "/v1/providers/me/open-shifts", &token, None).await;
        let (_, shifts) = api(Method::GET, "/v1/providers/me/open-shifts", &token, None).await;
        let path = format!("/v1/service-requests/{request_id}/auto-assign");
        let (report, assign) = api(Method::POST, &path, &w.dispatcher_token, None).await;
        assert_eq!(report["picked"].as_array().map(Vec::len), Some(1), "{report}");
        let cell = |s: &Sample| {
            format!(
                "{} requests ({} branch-key fetches), {} items read, {} ms",
                s.requests(),
                s.key_fetches(),
                s.read(),
                ms(s.took)
            )
        };
        out.push_str(&format!("| {size} | {} | {} |\n", cell(&shifts), cell(&assign)));
    }
    out
}

/// The moto recorder's count of the AWS requests `call` made (a cross-check of the meter).
async fn recorded<F, Fut>(call: F) -> u64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    recorder("stop-recording").await;
    recorder("reset-recording").await;
    recorder("start-recording").await;
    call().await;
    recorder("stop-recording").await;
    let recording = recorder("download-recording").await;
    let count = recording
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|entry| {
            let target = entry["headers"]["X-Amz-Target"].as_str().unwrap_or("");
            !EVENT_SOURCE.iter().any(|e| target.ends_with(e))
        })
        .count();
    u64::try_from(count).unwrap_or(u64::MAX)
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
