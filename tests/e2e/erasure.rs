//! Erasure against the emulator: a job stopped after every few operations (a crash) and run again
//! finishes; afterwards the raw table holds nothing of the user but the records the law keeps, the
//! user pool no longer knows them, and a minor's data is erased entirely, key included.

use aws_sdk_dynamodb::types::AttributeValue;
use domain::accounts::EmailLock;
use domain::privacy::erasure::{self, ErasureReason, ErasureStep, Progress};
use e2e::{call_api, processor_get, raw_partition, stack, sub_of, unique_email};
use edge::auth::{Caller, Role};
use jiff::Timestamp;
use platform::AppState;
use platform::Clock;
use reqwest::Method;

fn caller(user_id: &str, roles: &[Role]) -> Caller {
    Caller {
        user_id: user_id.to_owned(),
        username: None,
        email: None,
        email_verified: false,
        roles: roles.iter().copied().collect(),
        auth_time: None,
    }
}

/// A customer with an account, its e-mail lock, a W-9, a booking (request, pointer, payment,
/// idempotency record) and an access-log entry. Returns the user id, the booked request's id and the
/// e-mail.
async fn busy_user(state: &AppState) -> (String, String, String) {
    let stack = stack();
    let email = unique_email("erased");
    let tokens = stack.user_with_email(&email, &["customer"]).await;
    let user_id = sub_of(&tokens.id_token);
    state.keys.create_user_key(&user_id).await.expect("key");
    state
        .store
        .create(&domain::samples::customer(&user_id, &email))
        .await
        .expect("account");
    state
        .store
        .create(&EmailLock {
            role: "customer".into(),
            email_hash: state.lookup.email_hash(&email).await.expect("hash"),
            owner_user_id: user_id.clone(),
            created_at: Timestamp::now(),
        })
        .await
        .expect("lock");
    state
        .store
        .create(&domain::samples::w9(&user_id, Timestamp::now()))
        .await
        .expect("w9");
    let ops = caller(&uuid::Uuid::new_v4().to_string(), &[Role::Ops]);
    let mut settings: domain::agencies::AgencySettings = serde_json::from_value(serde_json::json!({
        "agency_name": "Sublette County Sheriff", "time_zone": "America/Denver",
        "admin_user_ids": ["someone"],
        "rates": {"hourly_rate_cents": 6500, "minimum_hours": 2, "holiday_multiplier_percent": 150,
                  "short_notice_multiplier_percent": 125, "short_notice_hours": 24, "vehicle_charge_cents": 0,
                  "admin_fee_percent": 5},
        "rules": serde_json::to_value(domain::samples::agency_rules()).expect("rules")
    }))
    .expect("settings");
    settings.holidays.clear();
    let agency = domain::agencies::create(state, &ops, settings)
        .await
        .expect("agency");
    let start = (Timestamp::now() + jiff::SignedDuration::from_hours(24 * 9))
        .in_tz("America/Denver")
        .expect("tz")
        .datetime()
        .round(jiff::Unit::Hour)
        .expect("round");
    let body = serde_json::json!({
        "agency_id": agency.agency_id,
        "event": {"name": "Boulder Lake Regatta", "kind": "regatta"},
        "site": {"name": "Boulder Lake Landing", "address": {"line1": "1 Lake Rd", "city": "Boulder",
                 "region": "WY", "postal_code": "82923", "country": "US"},
                 "contact": {"name": "Evangeline Thistlewood", "phone": "+13075550188"}},
        "starts_at": start.to_string(),
        "ends_at": (start + jiff::SignedDuration::from_hours(3)).to_string(),
        "time_zone": "America/Denver",
        "officers": 1,
        "requirements": {"armed": false, "attire": "uniformed"},
        "payment": {"processor_token": "pm_card_visa", "card_brand": "visa", "card_last4": "4242"}
    });
    let customer = caller(&user_id, &[Role::Customer]);
    let (booking, _) =
        domain::service_requests::book(state, &customer, body.to_string().as_bytes(), Some("erase-me"))
            .await
            .expect("booking");
    let (status, _) = call_api(Method::GET, "/v1/me", Some(&tokens.id_token), None, None).await;
    assert!(status.is_success(), "the access log gets an entry");
    (user_id, booking.requests[0].request_id.clone(), email)
}

async fn raw_count(state: &AppState, pk: &str) -> i32 {
    state
        .store
        .raw()
        .query()
        .table_name(state.store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
        .send()
        .await
        .expect("raw query")
        .count()
}

/// Runs the job one operation at a time, as if it crashed after every single write, until done.
async fn run_with_crashes(state: &AppState, user_id: &str) -> (erasure::ErasureJob, usize) {
    let mut crashes = 0;
    loop {
        match erasure::run(state, user_id, 1).await.expect("erasure run") {
            Progress::Paused(_) => crashes += 1,
            Progress::Done(job) => return (job, crashes),
        }
        assert!(crashes < 200, "the job makes progress");
    }
}

fn item_types(items: &[std::collections::HashMap<String, AttributeValue>]) -> Vec<String> {
    let mut types: Vec<String> = items
        .iter()
        .filter_map(|i| match i.get("item_type") {
            Some(AttributeValue::S(t)) => Some(t.clone()),
            _ => None,
        })
        .collect();
    types.sort();
    types
}

#[tokio::test]
async fn an_erasure_interrupted_again_and_again_finishes_and_keeps_only_what_the_law_requires() {
    let stack = stack();
    let state = stack.state("PrivacyFunction", Clock::System).await;
    let (user_id, request_id, email) = busy_user(&state).await;
    let lock = EmailLock::key_for("customer", &state.lookup.email_hash(&email).await.expect("hash"));
    assert!(
        state.store.exists(&lock).await.expect("read"),
        "the lock exists before"
    );
    assert!(raw_partition(&user_id).await.len() >= 5);

    let processor_customer = state
        .store
        .get::<domain::payments::ProcessorCustomer>(&domain::payments::ProcessorCustomer::key_of(&user_id))
        .await
        .expect("read")
        .expect("the booking made a customer at the processor")
        .record
        .customer_id;
    assert_eq!(
        processor_get(&format!("/v1/customers/{processor_customer}"))
            .await
            .0,
        200
    );

    erasure::start(&state, &user_id, ErasureReason::Request)
        .await
        .expect("start");
    let (job, crashes) = run_with_crashes(&state, &user_id).await;
    assert!(
        crashes >= 3,
        "the job was interrupted between and inside steps ({crashes} times)"
    );
    assert_eq!(job.step, ErasureStep::Done);

    let left = raw_partition(&user_id).await;
    assert_eq!(
        item_types(&left),
        ["payment_charge", "payment_record", "w9_record"],
        "only tax and payment records stay"
    );
    assert_eq!(
        processor_get(&format!("/v1/customers/{processor_customer}"))
            .await
            .0,
        404,
        "the customer is deleted at the processor too"
    );
    let categories: Vec<(&str, bool)> = job
        .retained
        .iter()
        .map(|c| (c.category.as_str(), c.legal_basis.starts_with("legal obligation")))
        .collect();
    assert!(categories.contains(&("w9_record", true)) && categories.contains(&("payment_record", true)));
    let until = job.retained.iter().filter_map(|c| c.until).max().expect("until");
    assert!(until.year() >= Timestamp::now().in_tz("UTC").expect("utc").year() + 6);
    assert!(
        job.shred_at.is_some(),
        "the key is shredded when the retained records expire"
    );
    // The retained records are still readable (the key lives until then), still encrypted.
    let w9 = state
        .store
        .query::<domain::tax::W9Record>(&platform::keys::user_partition(&user_id), "TAX#", 10)
        .await
        .expect("retained W-9 reads");
    assert_eq!(w9.len(), 1);
    assert!(!format!("{left:?}").contains("521436789"));

    // Nothing about the user elsewhere: access log, request pointer, e-mail lock, user pool.
    assert_eq!(
        raw_count(&state, &platform::keys::access_log_partition(&user_id)).await,
        0
    );
    assert_eq!(raw_count(&state, &format!("REQUEST#{request_id}")).await, 0);
    assert!(
        !state.store.exists(&lock).await.expect("read"),
        "the e-mail is free again"
    );
    let gone = aws_sdk_cognitoidentityprovider::Client::new(&stack.sdk().await)
        .admin_get_user()
        .user_pool_id(&state.config.user_pool_id)
        .username(&user_id)
        .send()
        .await;
    assert!(gone.is_err(), "the user pool no longer knows the user");

    // Running it again changes nothing.
    match erasure::run(&state, &user_id, 100).await.expect("again") {
        Progress::Done(again) => assert_eq!(again.completed_at, job.completed_at),
        other => panic!("expected done, got {other:?}"),
    }
    assert_eq!(
        raw_partition(&user_id).await.len(),
        3,
        "payment charge, payment record, W-9"
    );
}

#[tokio::test]
async fn a_minors_data_is_erased_entirely_and_the_key_is_shredded() {
    let stack = stack();
    let state = stack.state("PrivacyFunction", Clock::System).await;
    let (user_id, _, _) = busy_user(&state).await;
    erasure::start(&state, &user_id, ErasureReason::Minor)
        .await
        .expect("start");
    let (job, _) = run_with_crashes(&state, &user_id).await;
    assert!(
        job.retained.is_empty(),
        "nothing is retained for a minor: {:?}",
        job.retained
    );
    assert!(raw_partition(&user_id).await.is_empty());
    assert_eq!(
        state.keys.shred_user(&user_id).await.expect("shred again"),
        0,
        "the branch key is already gone"
    );
}

/// An ID token stays valid for up to an hour after erasure deletes the user-pool user. With it, every
/// write route in template.yaml answers 403 and stores nothing: not a registration (or its e-mail
/// lock), not a booking, availability, consent, privacy request or claim, not even an access-log line
/// under the person.
#[tokio::test]
async fn a_deleted_users_still_valid_token_writes_nothing_on_any_route() {
    let stack = stack();
    let state = stack.state("PrivacyFunction", Clock::System).await;
    let email = unique_email("revoked");
    let token = stack
        .user_with_email(&email, &["customer", "provider"])
        .await
        .id_token;
    let user_id = sub_of(&token);
    state.keys.create_user_key(&user_id).await.expect("key");
    state
        .store
        .create(&domain::samples::customer(&user_id, &email))
        .await
        .expect("account");
    let deletion = serde_json::json!({"type": "deletion", "jurisdiction": "ccpa"});
    let (status, answer) = call_api(
        Method::POST,
        "/v1/privacy-requests",
        Some(&token),
        Some(&deletion),
        None,
    )
    .await;
    assert!(status.is_success(), "{status} {answer}");
    let user_items = raw_partition(&user_id).await.len();
    let access_log = platform::keys::access_log_partition(&user_id);
    assert_eq!(
        raw_count(&state, &access_log).await,
        0,
        "erasure deleted the access log, and the deletion call itself is not logged under the person"
    );
    let email_hash = state.lookup.email_hash(&email).await.expect("hash");

    let template = infra::project_template().expect("template.yaml");
    let mut refused = 0;
    for function in template.functions().expect("functions") {
        for route in function.routes.iter().filter(|r| r.authenticated) {
            // The privacy-request route lets a deletion be retried; it is tried below.
            if !matches!(route.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
                || route.route_key() == "POST /v1/privacy-requests"
            {
                continue;
            }
            let path: String = route
                .path
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        "0f0e0d0c-0000-4000-8000-000000000001"
                    } else {
                        segment
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let body = match route.path.as_str() {
                "/v1/customers" => serde_json::json!({
                    "kind": "individual", "name": "Revoked Person", "phone": "+13075550177", "email": email,
                    "date_of_birth": "1984-05-06",
                    "home_address": {"line1": "12 Larkspur Row", "city": "Pinedale", "region": "WY",
                                     "postal_code": "82941", "country": "US"},
                    "policy_version": "2026-11-01", "marketing_consent": true
                }),
                _ => serde_json::json!({}),
            };
            let method = Method::from_bytes(route.method.as_bytes()).expect("method");
            let (status, problem) = call_api(method, &path, Some(&token), Some(&body), None).await;
            assert_eq!(
                status,
                reqwest::StatusCode::FORBIDDEN,
                "{} {path}: {problem}",
                route.method
            );
            assert_eq!(
                problem["type"], "urn:officertrak:problem:forbidden",
                "{}",
                route.method
            );
            refused += 1;
        }
    }
    assert!(refused >= 20, "only {refused} write routes were tried");
    // Any other privacy request is refused; the deletion itself may be retried (and finds it done).
    let access = serde_json::json!({"type": "access", "jurisdiction": "ccpa"});
    let (status, problem) = call_api(
        Method::POST,
        "/v1/privacy-requests",
        Some(&token),
        Some(&access),
        None,
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "{problem}");
    let (status, answer) = call_api(
        Method::POST,
        "/v1/privacy-requests",
        Some(&token),
        Some(&deletion),
        None,
    )
    .await;
    assert!(
        status.is_success(),
        "a deletion can be retried: {status} {answer}"
    );
    // Reads are served (there is nothing left to read) and not logged under the person either.
    let (status, _) = call_api(Method::GET, "/v1/me", Some(&token), None, None).await;
    assert!(status.is_client_error() || status.is_success(), "{status}");
    assert_eq!(
        raw_partition(&user_id).await.len(),
        user_items,
        "nothing new in the user's partition"
    );
    assert_eq!(
        raw_count(&state, &access_log).await,
        0,
        "nothing logged under the person"
    );
    for role in ["customer", "provider"] {
        let lock = EmailLock::key_for(role, &email_hash);
        assert!(
            !state.store.exists(&lock).await.expect("read"),
            "no {role} e-mail lock"
        );
    }
}
