//! Retention against the emulator: the access log of every call, kept encrypted for 90 days.

use e2e::{call_api, stack, sub_of};
use edge::access_log::{self, ANONYMOUS};
use jiff::{SignedDuration, Timestamp};
use platform::Clock;
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn every_call_is_logged_with_its_ip_encrypted_and_forgotten_after_90_days() {
    let stack = stack();
    let user = stack.user("logged", &["customer"]).await;
    let user_id = sub_of(&user.id_token);
    // A user's log is encrypted under their own key, which registration creates (before it, calls
    // are in the anonymous log).
    let state = stack.state("RegistrationFunction", Clock::System).await;
    state.keys.create_user_key(&user_id).await.expect("key");
    let before = Timestamp::now();
    let (status, _) = call_api(Method::GET, "/v1/me", Some(&user.id_token), None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no account yet");
    let (status, _) = call_api(Method::GET, "/v1/privacy/policy", None, None, None).await;
    assert!(status.is_success() || status == StatusCode::NOT_FOUND);

    let entries = access_log::entries_of(&state.store, &user_id, 10)
        .await
        .expect("entries");
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert_eq!((entry.route.as_str(), entry.status_code), ("GET /v1/me", 404));
    let ip = entry.source_ip.clone().expect("the client address is logged");
    assert!(ip.starts_with("10."), "the harness's client address: {ip}");
    assert!(entry.accessed_at >= before - SignedDuration::from_secs(1));
    assert!(!entry.request_id.is_empty());
    let anonymous = access_log::entries_of(&state.store, ANONYMOUS, usize::MAX)
        .await
        .expect("anonymous entries");
    assert!(
        anonymous.iter().any(|e| e.route == "GET /v1/privacy/policy"),
        "calls without a token are logged too"
    );

    // Stored: neither the IP nor the time in plaintext.
    let raw = state
        .store
        .raw()
        .query()
        .table_name(state.store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(platform::keys::access_log_partition(&user_id)),
        )
        .send()
        .await
        .expect("raw query");
    let dump = format!("{:?}", raw.items());
    assert!(raw.count() == 1 && !dump.contains(&ip), "{dump}");
    let stamp = entry.accessed_at.to_string();
    assert!(
        !dump.contains(&stamp[..16]),
        "the access time is stored encrypted"
    );

    // 89 days on the entry is still read; after 90 days it is gone from every read.
    let at = |days: i64| entry.accessed_at + SignedDuration::from_hours(24 * days);
    let later = stack.state("RegistrationFunction", Clock::fixed(at(89))).await;
    assert_eq!(
        access_log::entries_of(&later.store, &user_id, 10)
            .await
            .expect("read")
            .len(),
        1
    );
    let expired = stack.state("RegistrationFunction", Clock::fixed(at(91))).await;
    assert!(
        access_log::entries_of(&expired.store, &user_id, 10)
            .await
            .expect("read")
            .is_empty()
    );
}

#[tokio::test]
async fn future_clock_when_retained_records_expire_one_purge_run_leaves_nothing_even_after_a_crash() {
    use domain::privacy::erasure::{self, ErasureReason, Progress};
    let stack = stack();
    let state = stack.state("PrivacyFunction", Clock::System).await;
    let user_id = e2e::new_user(&state).await;
    let email = e2e::unique_email("expiring");
    state
        .store
        .create(&domain::samples::customer(&user_id, &email))
        .await
        .expect("account");
    state
        .store
        .create(&domain::samples::w9(&user_id, Timestamp::now()))
        .await
        .expect("w9");
    state
        .store
        .create(&domain::samples::payment(&user_id, "pay-expiring"))
        .await
        .expect("payment");
    erasure::start(
        &state,
        &user_id,
        erasure::ErasureOrder::without_request(ErasureReason::Request, &user_id),
    )
    .await
    .expect("start");
    let Progress::Done(job) = erasure::run(&state, &user_id, usize::MAX).await.expect("erase") else {
        panic!("an unbounded run finishes");
    };
    assert_eq!(
        e2e::raw_partition(&user_id).await.len(),
        2,
        "tax and payment records kept"
    );
    let shred_at = job.shred_at.expect("shredding is scheduled");

    // Before the day nothing happens; after it, one run (even after a crash) removes everything.
    let early = stack
        .function_state(
            "RetentionFunction",
            Clock::fixed(shred_at - SignedDuration::from_hours(48)),
        )
        .await;
    jobs::purge::purge(&early, 200).await.expect("early purge");
    assert_eq!(
        e2e::raw_partition(&user_id).await.len(),
        2,
        "kept until their period ends"
    );
    let later = stack
        .function_state(
            "RetentionFunction",
            Clock::fixed(shred_at + SignedDuration::from_hours(1)),
        )
        .await;
    assert!(
        !erasure::finish_retention(&later, &user_id, 1)
            .await
            .expect("interrupted"),
        "a run stopped after one delete"
    );
    assert_eq!(e2e::raw_partition(&user_id).await.len(), 1, "half done");
    let report = jobs::purge::purge(&later, 200).await.expect("purge");
    assert!(report.keys_shredded >= 1, "{report:?}");
    assert!(
        e2e::raw_partition(&user_id).await.is_empty(),
        "nothing of the user is left"
    );
    assert_eq!(
        later.keys.shred_user(&user_id).await.expect("shred"),
        0,
        "the key is gone"
    );
    let again = jobs::purge::purge(&later, 200).await.expect("second purge");
    assert!(e2e::raw_partition(&user_id).await.is_empty());
    let job = later
        .store
        .get::<erasure::ErasureJob>(&erasure::ErasureJob::key_of(&user_id))
        .await
        .expect("read")
        .expect("the record of the erasure stays");
    assert!(
        job.record.shred_at.is_none() && job.record.key_shredded_at.is_some(),
        "{again:?}"
    );
    assert_eq!(
        job.record.report().key_shredded_at,
        job.record.key_shredded_at,
        "the report says when the key went"
    );
}

/// Items read by one purge run with one erased user due, beside 1,000 and 50,000 unrelated items.
/// Run: `cargo xtask bench bench_purge` (prints the figures).
#[tokio::test]
#[ignore = "benchmark: prints figures, run with cargo xtask bench"]
async fn bench_purge_items_read_grow_with_due_work_not_table_size() {
    use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
    use domain::privacy::erasure::{self, ErasureReason, Progress};
    let stack = stack();
    let state = stack.state("PrivacyFunction", Clock::System).await;
    let mut written = 0usize;
    for unrelated in [1_000usize, 50_000] {
        let filler = uuid::Uuid::new_v4().simple().to_string();
        let started = std::time::Instant::now();
        while written < unrelated {
            let batch: Vec<WriteRequest> = (0..25)
                .map(|i| {
                    let item = [
                        (
                            "pk",
                            AttributeValue::S(format!("BENCH#{filler}#{}", (written + i) % 500)),
                        ),
                        ("sk", AttributeValue::S(format!("{}", written + i))),
                        ("payload", AttributeValue::S("x".repeat(200))),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect();
                    WriteRequest::builder()
                        .put_request(PutRequest::builder().set_item(Some(item)).build().expect("put"))
                        .build()
                })
                .collect();
            state
                .store
                .raw()
                .batch_write_item()
                .request_items(state.store.table(), batch)
                .send()
                .await
                .expect("filler");
            written += 25;
        }
        let user_id = e2e::new_user(&state).await;
        state
            .store
            .create(&domain::samples::w9(&user_id, Timestamp::now()))
            .await
            .expect("w9");
        erasure::start(
            &state,
            &user_id,
            erasure::ErasureOrder::without_request(ErasureReason::Request, &user_id),
        )
        .await
        .expect("start");
        let Progress::Done(job) = erasure::run(&state, &user_id, usize::MAX).await.expect("erase") else {
            panic!("done");
        };
        let later = stack
            .function_state(
                "RetentionFunction",
                Clock::fixed(job.shred_at.expect("scheduled") + SignedDuration::from_hours(1)),
            )
            .await;
        let before = later.store.items_read();
        let report = jobs::purge::purge(&later, 200).await.expect("purge");
        let read = later.store.items_read() - before;
        println!(
            "unrelated items in the table: {unrelated} (filled in {:.0} s) | purge: {} month buckets, {} keys shredded, {read} items read",
            started.elapsed().as_secs_f64(),
            report.buckets_examined,
            report.keys_shredded
        );
        assert!(e2e::raw_partition(&user_id).await.is_empty());
    }
}

#[tokio::test]
async fn usage_is_counted_per_route_and_app_without_people_and_small_buckets_are_hidden() {
    let stack = stack();
    let ops = stack.user("usageops", &["ops"]).await;
    let client = reqwest::Client::new();
    let utc_today = || {
        jiff::Timestamp::now()
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .date()
    };
    let report_of = |day: jiff::civil::Date| {
        let token = ops.id_token.clone();
        async move {
            let (status, report) = call_api(
                Method::GET,
                &format!("/v1/admin/usage?day={day}"),
                Some(&token),
                None,
                None,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{report}");
            report
        }
    };
    // An allow-listed release no other test sends, and a label that is not a release.
    let (busy_app, unknown_app) = ("android/4.0.0", format!("e2e/{}", uuid::Uuid::new_v4().simple()));
    // Counters are per UTC day: calls that straddle midnight split their count, so such a round is
    // done again, and the report asked for the day the calls were made.
    let (before, report) = loop {
        let day = utc_today();
        let before = report_of(day).await["apps"][busy_app].as_u64().unwrap_or(0);
        for (app, calls) in [(busy_app, 6), (unknown_app.as_str(), 2)] {
            for _ in 0..calls {
                let response = client
                    .get(stack.url("/v1/privacy/policy"))
                    .header("x-app-version", app)
                    .send()
                    .await
                    .expect("call");
                assert!(response.status().as_u16() < 500);
            }
        }
        if utc_today() == day {
            break (before, report_of(day).await);
        }
    };
    let counted = report["apps"][busy_app].as_u64().unwrap_or(0);
    assert!(counted >= before + 6, "6 calls of {busy_app} counted: {report}");
    assert!(
        report["apps"]
            .as_object()
            .is_some_and(|apps| apps.keys().all(|label| !label.starts_with("e2e/"))),
        "a label outside the allow-list is never a bucket of its own: {report}"
    );
    assert!(report["suppressed_buckets"].as_u64().unwrap_or(0) >= 1);
    assert!(report["routes"]["GET /v1/privacy/policy"].as_u64().unwrap_or(0) >= 6);
    let customer = stack.user("usagenosy", &["customer"]).await;
    let (status, _) = call_api(
        Method::GET,
        "/v1/admin/usage",
        Some(&customer.id_token),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call_api(
        Method::GET,
        "/v1/admin/usage?day=yesterday",
        Some(&ops.id_token),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // The stored aggregates name no person: no user id, no IP.
    let state = stack.state("PrivacyFunction", Clock::System).await;
    let day = Timestamp::now().in_tz("UTC").expect("utc").date();
    let mut dump = String::new();
    for partition in edge::usage::partitions(day) {
        let raw = state
            .store
            .raw()
            .query()
            .table_name(state.store.table())
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S(partition))
            .send()
            .await
            .expect("raw usage");
        dump.push_str(&format!("{:?}", raw.items()));
    }
    assert!(dump.contains("android/4.0.0"), "the shards hold the counters");
    for private in [
        sub_of(&ops.id_token),
        sub_of(&customer.id_token),
        "127.0.0.1".to_owned(),
    ] {
        assert!(!dump.contains(&private), "a usage aggregate holds {private}");
    }
}

/// POSTs `{}` to `path` as `token` from client address `ip`: the status and any `Retry-After`.
async fn post_from(ip: &str, token: &str, path: &str) -> (StatusCode, Option<u64>) {
    let response = reqwest::Client::new()
        .post(stack().url(path))
        .bearer_auth(token)
        .header("x-forwarded-for", ip)
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("the gateway answers");
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (response.status(), retry_after)
}

#[tokio::test]
async fn registration_is_rate_limited_per_account_and_per_ip_and_429_says_when_to_retry() {
    let stack = stack();
    let tag = uuid::Uuid::new_v4().as_bytes()[..4].to_vec();
    // Per account: ten attempts an hour, from anywhere.
    let user = stack.user("limited", &["customer"]).await;
    for attempt in 0..10u8 {
        let ip = format!("172.16.{}.{attempt}", tag[0]);
        let (status, _) = post_from(&ip, &user.id_token, "/v1/customers").await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "attempt {attempt} is judged on its body"
        );
    }
    let (status, retry_after) = post_from("172.16.250.250", &user.id_token, "/v1/customers").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after = retry_after.expect("a 429 carries Retry-After");
    assert!((1..=3600).contains(&retry_after), "{retry_after}");

    // Per IP: twenty an hour from one address, whoever signs in.
    let ip = format!("198.18.{}.{}", tag[1], tag[2]);
    let mut statuses = Vec::new();
    for n in 0..21 {
        let someone = stack.user(&format!("crowd{n}"), &["provider"]).await;
        statuses.push(post_from(&ip, &someone.id_token, "/v1/providers").await);
    }
    assert!(
        statuses[..20]
            .iter()
            .all(|(s, _)| *s != StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert_eq!(statuses[20].0, StatusCode::TOO_MANY_REQUESTS);
    assert!(statuses[20].1.is_some(), "Retry-After");
    // Another address is not affected.
    let fresh = stack.user("elsewhere", &["provider"]).await;
    let (status, _) = post_from(
        &format!("198.18.{}.{}", tag[3], tag[1]),
        &fresh.id_token,
        "/v1/providers",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn future_clock_sign_ups_never_confirmed_are_closed_after_seven_days_and_confirmed_users_stay() {
    use aws_sdk_cognitoidentityprovider::types::AttributeType;
    let stack = stack();
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&stack.sdk().await);
    // The stack's own pool, and the run signed as the retention function: the deletion is one of
    // the function's real requests, so the least-privilege check sees it on every run. Other
    // tests' sign-ups caught unconfirmed may be closed too; their sign-in starts over.
    let pool = stack.stack.physical_id("UserPool").expect("UserPool");
    let client = stack.stack.physical_id("UserPoolClient").expect("UserPoolClient");
    let sign_up = |email: String| {
        let cognito = cognito.clone();
        let client = client.clone();
        async move {
            cognito
                .sign_up()
                .client_id(client)
                .username(&email)
                .password(infra::identity::LOCAL_PASSWORD)
                .user_attributes(
                    AttributeType::builder()
                        .name("email")
                        .value(&email)
                        .build()
                        .expect("attr"),
                )
                .send()
                .await
                .expect("sign-up");
            email
        }
    };
    let unconfirmed = sign_up(e2e::unique_email("neverconfirmed")).await;
    let confirmed = sign_up(e2e::unique_email("confirmed")).await;
    cognito
        .admin_confirm_sign_up()
        .user_pool_id(&pool)
        .username(&confirmed)
        .send()
        .await
        .expect("confirm");
    let exists = |username: String| {
        let cognito = cognito.clone();
        let pool = pool.clone();
        async move {
            cognito
                .admin_get_user()
                .user_pool_id(pool)
                .username(username)
                .send()
                .await
                .is_ok()
        }
    };
    let today = stack.function_state("RetentionFunction", Clock::System).await;
    jobs::purge::close_unverified_registrations(&today, 100)
        .await
        .expect("close");
    assert!(
        exists(unconfirmed.clone()).await,
        "a day-old sign-up is left alone"
    );
    let later = stack
        .function_state(
            "RetentionFunction",
            Clock::fixed(Timestamp::now() + SignedDuration::from_hours(24 * 8)),
        )
        .await;
    let closed = jobs::purge::close_unverified_registrations(&later, 100)
        .await
        .expect("close");
    assert!(closed >= 1, "at least this test's sign-up is closed");
    assert!(!exists(unconfirmed).await, "the unconfirmed sign-up is gone");
    assert!(exists(confirmed).await, "confirmed users are not touched");
}
