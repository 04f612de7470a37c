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
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};

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
            Progress::Done(job) => return (*job, crashes),
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

    erasure::start(
        &state,
        &user_id,
        erasure::ErasureOrder::without_request(ErasureReason::Request, &user_id),
    )
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

/// A minor's erasure deletes everything but what the law keeps (payments and the W-9, as for anyone):
/// the key is shredded the day after the last of those ends.
#[tokio::test]
async fn a_minors_data_is_erased_but_what_the_law_keeps_and_the_key_shred_is_scheduled() {
    let stack = stack();
    let state = stack.state("PrivacyFunction", Clock::System).await;
    let (user_id, _, _) = busy_user(&state).await;
    erasure::start(
        &state,
        &user_id,
        erasure::ErasureOrder::without_request(ErasureReason::Minor, &user_id),
    )
    .await
    .expect("start");
    let (job, _) = run_with_crashes(&state, &user_id).await;
    let mut kept: Vec<&str> = job.retained.iter().map(|c| c.category.as_str()).collect();
    kept.sort_unstable();
    assert_eq!(
        kept,
        vec!["payment_charge", "payment_record", "w9_record"],
        "{:?}",
        job.retained
    );
    let left: Vec<String> = e2e::raw_items_of(&platform::keys::user_partition(&user_id))
        .await
        .iter()
        .filter_map(|item| item.get("item_type").and_then(|t| t.as_s().ok()).cloned())
        .collect();
    assert!(
        left.iter().all(|t| kept.contains(&t.as_str())),
        "only what the law keeps: {left:?}"
    );
    assert!(job.shred_at.is_some(), "the key's end is scheduled");
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
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{answer}");
    let done = e2e::await_request(&token, answer["id"].as_str().expect("id")).await;
    assert_eq!(done["status"], "fulfilled", "{done}");
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
    assert_eq!(
        (status, answer["id"].clone(), answer["status"].clone()),
        (reqwest::StatusCode::OK, done["id"].clone(), json!("fulfilled")),
        "a deletion can be retried, and finds the one deletion done: {answer}"
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

/// Every raw item of the whole table (plain client, no decryption): what a backup holds.
async fn raw_table(state: &AppState) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = state
            .store
            .raw()
            .scan()
            .table_name(state.store.table())
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("raw scan");
        items.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key.filter(|k| !k.is_empty()) {
            Some(key) => start = Some(key),
            None => return items,
        }
    }
}

/// Whether any attribute of `item` holds one of `needles` in plaintext (keys and signed fields are
/// plaintext; encrypted fields are ciphertext).
fn names_any(item: &std::collections::HashMap<String, AttributeValue>, needles: &[String]) -> bool {
    let text = format!("{item:?}");
    needles.iter().any(|n| text.contains(n.as_str()))
}

fn type_of(item: &std::collections::HashMap<String, AttributeValue>) -> String {
    match item.get("item_type") {
        Some(AttributeValue::S(t)) => t.clone(),
        _ => "?".into(),
    }
}

fn expiry_of(item: &std::collections::HashMap<String, AttributeValue>) -> Option<i64> {
    match item.get("expires_at") {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

/// The proof of issue 16: a person who used every feature (customer and officer: bookings, an
/// assignment worked with its timesheet, another to come, a paid invoice, consents, privacy requests
/// with an export, a disclosure, a do-not-hire entry, an access log, support inquiries signed in and
/// anonymous from their address) asks for deletion through the
/// gateway. The worker erases them; then a plain read of the whole table (what a backup holds) finds
/// their id only on the kept categories and none of their personal values anywhere; the report
/// counts what was found, deleted and kept. After the kept records' period and the purge, nothing of
/// theirs is live, the key is gone, and what the emulator still stores has expired (DynamoDB's TTL
/// deletes it; moto never does).
#[tokio::test]
async fn a_person_who_used_every_feature_is_erased_down_to_what_the_law_keeps() {
    use crate::scheduling::{always, book_at, next_tuesday_10, officer_with, world};
    use domain::scheduling::{self, Action};
    let stack = stack();
    let w = world(|_| {}).await;
    let email = unique_email("everything");
    let tokens = stack.user_with_email(&email, &["customer", "provider"]).await;
    let token = tokens.id_token.clone();
    let user_id = sub_of(&token);
    let person = officer_with(&w, Some(user_id.clone()), email.clone(), always(), |_| {}).await;
    w.state
        .store
        .create(&domain::samples::customer(&user_id, &email))
        .await
        .expect("customer account");
    w.state
        .store
        .create(&domain::samples::w9(&user_id, Timestamp::now()))
        .await
        .expect("w9");
    for role in ["customer", "provider"] {
        w.state
            .store
            .create(&EmailLock {
                role: role.into(),
                email_hash: w.state.lookup.email_hash(&email).await.expect("hash"),
                owner_user_id: user_id.clone(),
                created_at: Timestamp::now(),
            })
            .await
            .expect("lock");
    }
    let as_customer = caller(&user_id, &[Role::Customer]);
    let at = |time: Timestamp| async move { stack.state("SchedulingFunction", Clock::fixed(time)).await };

    // As a customer: a booking worked by another officer, completed, its timesheet approved, invoiced
    // and paid; and a booking to come.
    let start = next_tuesday_10() + jiff::SignedDuration::from_hours(24 * 7);
    let book = |start: Timestamp, customer: Caller| {
        let w = &w;
        async move {
            let body = serde_json::json!({
                "agency_id": w.agency_id,
                "event": {"name": "Everything Gala", "kind": "gala"},
                "site": {"name": "Marbleton Hall", "address": {"line1": "5 Hall St", "city": "Marbleton",
                         "region": "WY", "postal_code": "83113", "country": "US"},
                         "contact": {"name": "Ottoline Fairweather-Quince", "phone": "+13075550166"}},
                "starts_at": crate::scheduling::local(start),
                "ends_at": crate::scheduling::local(start + jiff::SignedDuration::from_hours(4)),
                "time_zone": "America/Denver",
                "officers": 1,
                "requirements": {"armed": false, "attire": "uniformed"},
                "payment": {"processor_token": "pm_card_visa", "card_brand": "visa", "card_last4": "4242"}
            });
            domain::service_requests::book(&w.state, &customer, body.to_string().as_bytes(), None)
                .await
                .expect("booking")
                .0
                .requests[0]
                .request_id
                .clone()
        }
    };
    let worked_for_them = book(start, as_customer.clone()).await;
    let _coming = book(
        start + jiff::SignedDuration::from_hours(24 * 20),
        as_customer.clone(),
    )
    .await;
    let other = officer_with(&w, None, unique_email("colleague"), always(), |_| {}).await;
    let work = |officer: Caller, request_id: String| {
        let w = &w;
        async move {
            scheduling::claim(&w.state, &officer, &request_id)
                .await
                .expect("claim");
            let id = w
                .state
                .store
                .get::<domain::scheduling::assignments::Assignment>(
                    &domain::scheduling::assignments::Assignment::key_of(&officer.user_id, &request_id),
                )
                .await
                .expect("read")
                .expect("assignment")
                .record
                .assignment_id;
            scheduling::act(&at(start).await, &officer, &id, Action::CheckIn)
                .await
                .expect("check in");
            let end = start + jiff::SignedDuration::from_hours(4);
            scheduling::act(&at(end).await, &officer, &id, Action::CheckOut)
                .await
                .expect("check out");
            scheduling::submit_timesheet(&at(end).await, &officer, &id)
                .await
                .expect("timesheet");
            let approval = scheduling::TimesheetApproval {
                worked_from: None,
                worked_until: None,
                reason: None,
                confirm: false,
            };
            scheduling::approve_timesheet(&at(end).await, &w.dispatcher, &id, approval)
                .await
                .expect("approved");
        }
    };
    work(other.clone(), worked_for_them.clone()).await;
    // As an officer: a shift worked for someone else (timesheet approved), one to come.
    let worked_by_them = book_at(&w, start, 4, 1, false).await;
    work(person.clone(), worked_by_them).await;
    let coming_shift = book_at(&w, start + jiff::SignedDuration::from_hours(24 * 21), 3, 1, false).await;
    scheduling::claim(&w.state, &person, &coming_shift)
        .await
        .expect("a shift to come");
    let (_, invoice) = call_api(
        Method::GET,
        &format!("/v1/service-requests/{worked_for_them}/invoice"),
        Some(&token),
        None,
        None,
    )
    .await;
    assert!(invoice["total_cents"].as_i64().unwrap_or(0) > 0, "{invoice}");

    // Support: one inquiry signed in, one sent earlier without signing in from the same address.
    let inquiry =
        serde_json::json!({"topic": "billing", "message": "Ask Fenwick-Achterberg about the regatta bill"});
    let (status, answer) = call_api(
        Method::POST,
        "/v1/me/support/inquiries",
        Some(&token),
        Some(&inquiry),
        None,
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{answer}");
    let anonymous = serde_json::json!({"name": "Persephone Fenwick-Achterberg", "email": email,
        "topic": "information", "message": "Do you staff regattas?"});
    let (status, answer) = call_api(
        Method::POST,
        "/v1/support/inquiries",
        None,
        Some(&anonymous),
        None,
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{answer}");

    // Consents, an export, a correction, a disclosure, a do-not-hire entry.
    let consent = serde_json::json!({"marketing": false, "source": "app"});
    let (status, answer) = call_api(
        Method::POST,
        "/v1/me/consents",
        Some(&token),
        Some(&consent),
        None,
    )
    .await;
    assert!(status.is_success(), "{status} {answer}");
    let access = serde_json::json!({"type": "access"});
    let (status, queued) = call_api(
        Method::POST,
        "/v1/privacy-requests",
        Some(&token),
        Some(&access),
        None,
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{queued}");
    let export = e2e::await_request(&token, queued["id"].as_str().expect("id")).await;
    assert_eq!(export["status"], "fulfilled", "{export}");
    let ready: Vec<String> = e2e::mails_to(&email)
        .await
        .into_iter()
        .filter(|m| m.contains("Your data export is ready"))
        .collect();
    assert_eq!(ready.len(), 1, "the subject is told once");
    assert!(
        ready[0].contains("/export") && !ready[0].contains("Quarrington") && !ready[0].contains("Okonkwo"),
        "a link to the API, never the data: {}",
        ready[0]
    );
    let correction = serde_json::json!({"type": "correction"});
    let (status, _) = call_api(
        Method::POST,
        "/v1/privacy-requests",
        Some(&token),
        Some(&correction),
        None,
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::CREATED);
    let dpo = stack.user("dpo-everything", &["privacy_officer"]).await.id_token;
    let disclosure = serde_json::json!({
        "subject_user_id": user_id, "recipient_category": "legal_demand", "recipient": "Sublette County Court",
        "legal_basis": "court order", "data_categories": ["customer_account"], "reference": "CV-2026-118",
        "disclosed_at": "2026-11-20T10:00:00Z"
    });
    let (status, answer) = call_api(
        Method::POST,
        "/v1/admin/disclosures",
        Some(&dpo),
        Some(&disclosure),
        None,
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{answer}");
    let path = format!("/v1/agencies/{}/do-not-hire/{user_id}", w.agency_id);
    let note = serde_json::json!({"note": "argued with Ottoline at the gate"});
    let (status, answer) = call_api(Method::PUT, &path, Some(&w.admin_token), Some(&note), None).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{answer}");

    // Deletion, through the gateway and the worker.
    let deletion = serde_json::json!({"type": "deletion", "jurisdiction": "ccpa"});
    let (status, queued) = call_api(
        Method::POST,
        "/v1/privacy-requests",
        Some(&token),
        Some(&deletion),
        None,
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{queued}");
    let done = e2e::await_request(&token, queued["id"].as_str().expect("id")).await;
    assert_eq!(done["status"], "fulfilled", "{done}");
    let report = done["result"]["erasure"].clone();
    println!("erasure report: {report:#}");
    let items = report["items"].as_array().expect("items").clone();
    let count = |kind: &str, field: &str| {
        items
            .iter()
            .find(|i| i["item_type"] == kind)
            .and_then(|i| i[field].as_u64())
            .unwrap_or(0)
    };
    for kind in [
        "customer_account",
        "provider_account",
        "service_request",
        "assignment",
        "assignment_pointer",
        "request_pointer",
        "roster",
        "agency_membership",
        "do_not_hire",
        "consent_record",
        "access_log_entry",
        "export_part",
        "email_lock",
    ] {
        assert!(count(kind, "found") >= 1, "{kind} was counted: {report:#}");
    }
    assert_eq!(
        (
            count("support_inquiry", "found"),
            count("support_inquiry", "deleted")
        ),
        (2, 2),
        "both inquiries, the anonymous one included: {report:#}"
    );
    for item in &items {
        let (found, deleted, kept) = (
            item["found"].as_u64(),
            item["deleted"].as_u64(),
            item["kept"].as_u64(),
        );
        assert_eq!(found, Some(deleted.unwrap_or(0) + kept.unwrap_or(0)), "{item}");
        if kept.unwrap_or(0) > 0 {
            assert!(
                item["legal_basis"].is_string() && item["kept_until"].is_string(),
                "{item}"
            );
        }
    }
    for kind in ["w9_record", "invoice", "payment_charge"] {
        assert!(count(kind, "kept") >= 1, "the law keeps {kind}: {report:#}");
    }
    assert_eq!(report["processor_customer"], "deleted", "{report:#}");
    assert!(report["identity_deleted_at"].is_string());
    assert!(report["key_shred_scheduled_at"].is_string());

    // The raw table, as a backup holds it.
    let state = stack.state("PrivacyFunction", Clock::System).await;
    let mut personal = domain::samples::customer_personal_values(&email);
    personal.extend(domain::samples::provider_personal_values(&email));
    personal.extend(domain::samples::w9_personal_values());
    personal.extend([
        "Ottoline".to_owned(),
        "argued with".to_owned(),
        "Fenwick-Achterberg".to_owned(),
        "staff regattas".to_owned(),
        "CV-2026-118".to_owned(),
    ]);
    let kept_types = [
        "w9_record",
        "payment_record",
        "invoice",
        "payment_charge",
        "privacy_request",
        "privacy_audit_entry",
        "privacy_request_pointer",
        "disclosure",
        "erasure_job",
    ];
    let table = raw_table(&state).await;
    let mut naming: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for item in &table {
        assert!(
            !names_any(item, &personal),
            "a personal value in plaintext in a {} item",
            type_of(item)
        );
        if names_any(item, std::slice::from_ref(&user_id)) {
            *naming.entry(type_of(item)).or_default() += 1;
        }
    }
    println!(
        "items still naming the person after erasure: {naming:?} (of {} in the table)",
        table.len()
    );
    for kind in naming.keys() {
        assert!(
            kept_types.contains(&kind.as_str()),
            "{kind} still names the person: {naming:?}"
        );
    }
    assert!(
        naming.contains_key("invoice") && naming.contains_key("w9_record"),
        "{naming:?}"
    );

    // After the kept records' period: the purge's step deletes them and destroys the key.
    let shred_at: Timestamp = report["key_shred_scheduled_at"]
        .as_str()
        .expect("date")
        .parse()
        .expect("timestamp");
    let later = stack
        .function_state("RetentionFunction", Clock::fixed(shred_at))
        .await;
    assert!(
        erasure::finish_retention(&later, &user_id, usize::MAX)
            .await
            .expect("finish")
    );
    assert!(
        raw_partition(&user_id).await.is_empty(),
        "nothing left in the partition"
    );
    assert_eq!(
        state.keys.shred_user(&user_id).await.expect("shred"),
        0,
        "the key is gone"
    );
    let job = erasure::job_of(&state, &user_id)
        .await
        .expect("read")
        .expect("job");
    let job_expiry = platform::retention::RetentionClass::PrivacyAudit
        .expires_at(job.key_shredded_at)
        .expect("the job's own record expires");
    for item in raw_table(&state).await {
        if names_any(&item, std::slice::from_ref(&user_id)) {
            let expires = expiry_of(&item).unwrap_or(i64::MAX);
            assert!(
                expires <= shred_at.as_second()
                    || (matches!(type_of(&item).as_str(), "erasure_job" | "shred_ledger_entry")
                        && expires <= job_expiry),
                "a {} item outlives the retention: expires {expires}",
                type_of(&item)
            );
        }
    }
}

/// Two deletion requests sent at once (other keys, or none) are one request and one job: both
/// answers name the same request, neither is a 500, and the worker erases once.
#[tokio::test]
async fn concurrent_deletion_requests_are_one_request_and_one_job() {
    let stack = stack();
    let state = stack.state("PrivacyFunction", Clock::System).await;
    let email = unique_email("twice");
    let token = stack.user_with_email(&email, &["customer"]).await.id_token;
    let user_id = sub_of(&token);
    state.keys.create_user_key(&user_id).await.expect("key");
    state
        .store
        .create(&domain::samples::customer(&user_id, &email))
        .await
        .expect("account");
    let deletion = json!({"type": "deletion"});
    let send = |key: Option<&'static str>| {
        let (token, deletion) = (token.clone(), deletion.clone());
        async move {
            call_api(
                Method::POST,
                "/v1/privacy-requests",
                Some(&token),
                Some(&deletion),
                key,
            )
            .await
        }
    };
    let answers = futures::future::join_all([send(Some("first")), send(Some("second")), send(None)]).await;
    for (status, answer) in &answers {
        assert!(
            [reqwest::StatusCode::ACCEPTED, reqwest::StatusCode::OK].contains(status),
            "{status} {answer}"
        );
        assert_eq!(answer["id"], answers[0].1["id"], "one request: {answers:?}");
    }
    assert_eq!(
        answers
            .iter()
            .filter(|(status, _)| *status == reqwest::StatusCode::ACCEPTED)
            .count(),
        1,
        "created once: {answers:?}"
    );
    let done = e2e::await_request(&token, answers[0].1["id"].as_str().expect("id")).await;
    assert_eq!(done["status"], "fulfilled", "{done}");
    let (_, mine) = call_api(Method::GET, "/v1/privacy-requests", Some(&token), None, None).await;
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(1), "{mine}");
}

/// Registration racing an erasure: a registration whose token was checked before the erasure began
/// still commits nothing once the person is revoked (the account, its e-mail lock and the revocation
/// marker's absence are one transaction), so no lock outlives the erasure.
#[tokio::test]
async fn a_registration_racing_an_erasure_leaves_no_email_lock_behind() {
    let stack = stack();
    let state = stack.state("RegistrationFunction", Clock::System).await;
    let email = unique_email("racer");
    let user_id = uuid::Uuid::new_v4().to_string();
    let mut racer = caller(&user_id, &[Role::Customer]);
    racer.email = Some(email.clone());
    racer.email_verified = true;
    edge::revocation::revoke(&state, &user_id).await.expect("revoked");
    let input: domain::accounts::CustomerRegistration = serde_json::from_value(json!({
        "kind": "individual", "name": "Rhiannon Racer", "phone": "+13075550123", "email": email,
        "date_of_birth": "1984-05-06",
        "home_address": {"line1": "1 Race St", "city": "Pinedale", "region": "WY", "postal_code": "82941", "country": "US"},
        "policy_version": "2026-11-01", "marketing_consent": false
    }))
    .expect("registration");
    let refused = domain::accounts::register_customer(&state, &racer, input)
        .await
        .expect_err("revoked before the commit");
    assert_eq!(refused.status(), reqwest::StatusCode::FORBIDDEN, "{refused:?}");
    let lock = EmailLock::key_for("customer", &state.lookup.email_hash(&email).await.expect("hash"));
    assert!(!state.store.exists(&lock).await.expect("read"), "no e-mail lock");
    assert!(raw_partition(&user_id).await.is_empty(), "no account");
}

/// A job the worker cannot finish (here: an export of a partition with a tampered item, which the
/// encryption layer refuses to read) is retried by the queue; from the third failed delivery its
/// request is listed as stuck for the privacy officers (who are mailed), after the fifth the message
/// waits in the dead-letter queue; once the cause is gone, the hourly run queues the job again and
/// it finishes.
#[tokio::test]
async fn future_clock_a_job_that_keeps_failing_is_retried_then_shown_stuck_then_dead_lettered_then_recovered()
{
    let stack = stack();
    let state = stack.state("PrivacyFunction", Clock::System).await;
    let email = unique_email("stuck");
    let token = stack.user_with_email(&email, &["customer"]).await.id_token;
    let user_id = sub_of(&token);
    state.keys.create_user_key(&user_id).await.expect("key");
    state
        .store
        .create(&domain::samples::customer(&user_id, &email))
        .await
        .expect("account");
    let key = aws_sdk_dynamodb::types::AttributeValue::S(platform::keys::user_partition(&user_id));
    let original = raw_partition(&user_id).await.remove(0);
    let mut tampered = original.clone();
    let (name, value) = tampered
        .iter()
        .find_map(|(name, value)| match value {
            AttributeValue::B(bytes) if !name.starts_with("aws_dbe") => Some((name.clone(), bytes.clone())),
            _ => None,
        })
        .expect("an encrypted attribute");
    let mut bytes = value.into_inner();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    tampered.insert(name, AttributeValue::B(aws_smithy_types::Blob::new(bytes)));
    let put = |item| {
        let state = &state;
        async move {
            state
                .store
                .raw()
                .put_item()
                .table_name(state.store.table())
                .set_item(Some(item))
                .send()
                .await
                .expect("raw put");
        }
    };
    put(tampered).await;
    assert_eq!(original.get("pk"), Some(&key));

    let officer = stack.user("dpo-stuck", &["privacy_officer"]).await.id_token;
    let (status, queued) = call_api(
        Method::POST,
        "/v1/privacy-requests",
        Some(&token),
        Some(&json!({"type": "access"})),
        None,
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{queued}");
    let id = queued["id"].as_str().expect("id").to_owned();
    let started = std::time::Instant::now();
    let stuck = loop {
        let (_, listed) = e2e::listed("/v1/admin/privacy-requests?status=stuck", &officer).await;
        if let Some(item) = listed["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["id"] == id.as_str()).cloned())
        {
            break item;
        }
        assert!(
            started.elapsed().as_secs() < 60,
            "never listed as stuck: {listed}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    assert!(stuck["stuck"]["attempts"].as_u64().unwrap_or(0) >= 3, "{stuck}");
    assert_eq!(stuck["stuck"]["error_kind"], "store", "{stuck}");
    let (_, mine) = call_api(
        Method::GET,
        &format!("/v1/privacy-requests/{id}"),
        Some(&token),
        None,
        None,
    )
    .await;
    assert_eq!(mine["status"], "in_progress", "{mine}");

    // After five deliveries the message is in the dead-letter queue.
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk().await);
    let dead_letters = stack
        .stack
        .physical_id("PrivacyJobsDeadLetterQueue")
        .expect("the dead-letter queue");
    let mut dead = Vec::new();
    while dead.is_empty() {
        assert!(started.elapsed().as_secs() < 90, "never dead-lettered");
        let received = sqs
            .receive_message()
            .queue_url(&dead_letters)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        dead.extend(
            received
                .messages
                .unwrap_or_default()
                .into_iter()
                .filter(|m| m.body().unwrap_or("").contains(&id)),
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    assert!(
        !dead[0].body().unwrap_or("").contains(&email),
        "ids only in the queue"
    );

    // The cause removed, the hourly run queues the stalled job again and the worker finishes it.
    put(original).await;
    let later = stack
        .function_state(
            "RetentionFunction",
            Clock::fixed(Timestamp::now() + jiff::SignedDuration::from_mins(61)),
        )
        .await;
    let open = domain::privacy::requests::open_requests(&later, 10_000)
        .await
        .expect("open requests");
    assert!(
        domain::privacy::jobs::requeue_stalled(&later, &open, 10_000)
            .await
            .expect("requeue")
            >= 1
    );
    let done = e2e::await_request(&token, &id).await;
    assert_eq!(done["status"], "fulfilled", "{done}");
    assert!(done.get("stuck").is_none(), "{done}");
}

/// Resident memory of this process (`VmRSS`, kB).
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// Runs `job` slice by slice as the worker does (budget [`WORK_PER_INVOCATION`]) until it finishes;
/// returns the slices, the longest slice and the highest resident memory seen after a slice.
async fn run_like_the_worker(
    state: &AppState,
    job: &domain::privacy::jobs::PrivacyJob,
) -> (u32, std::time::Duration, u64) {
    use domain::privacy::jobs::{JobOutcome, WORK_PER_INVOCATION, work};
    let (mut slices, mut longest, mut peak) = (0, std::time::Duration::ZERO, rss_kb());
    loop {
        let started = std::time::Instant::now();
        let outcome = work(state, job, WORK_PER_INVOCATION).await.expect("slice");
        slices += 1;
        longest = longest.max(started.elapsed());
        peak = peak.max(rss_kb());
        if outcome == JobOutcome::Finished {
            return (slices, longest, peak);
        }
        assert!(slices < 2_000, "the job makes progress");
    }
}

/// Issue 16's figures: a user with 1,000 and with 10,000 access-log entries (an active officer's 90
/// days) is exported, then erased, slice by slice as the worker runs them. Prints, per size: slices,
/// the longest slice (the worker's timeout is 60 s), and how far resident memory rose above its level
/// before the export (flat: it does not grow with the user's data).
#[tokio::test]
#[ignore = "benchmark: prints figures, run with cargo xtask bench"]
async fn bench_a_large_user_is_exported_and_erased_in_budgeted_slices() {
    use futures::StreamExt;
    let stack = stack();
    let state = stack.state("PrivacyWorkerFunction", Clock::System).await;
    println!(
        "| items | export slices | longest export slice | RSS rise (export) | erasure slices | longest erasure slice | left after |"
    );
    println!("|---|---|---|---|---|---|---|");
    for items in [1_000usize, 10_000] {
        let user_id = e2e::new_user(&state).await;
        let email = unique_email("large");
        state
            .store
            .create(&domain::samples::customer(&user_id, &email))
            .await
            .expect("account");
        futures::stream::iter(0..items)
            .map(|n| {
                let state = &state;
                let user_id = &user_id;
                async move {
                    let entry = edge::access_log::AccessLogEntry {
                        log_owner: user_id.clone(),
                        request_id: format!("bench-{n:06}"),
                        route: "GET /v1/me".into(),
                        status_code: 200,
                        accessed_at: Timestamp::now(),
                        source_ip: Some(format!("10.1.{}.{}", n / 250, n % 250)),
                    };
                    state.store.create(&entry).await.expect("entry");
                }
            })
            .buffer_unordered(8)
            .collect::<Vec<()>>()
            .await;
        let before = rss_kb();
        let export = domain::privacy::jobs::PrivacyJob::Export {
            user_id: user_id.clone(),
            request_id: format!("bench-export-{items}"),
        };
        let (export_slices, export_longest, export_peak) = run_like_the_worker(&state, &export).await;
        let job = domain::privacy::export::ExportJob::key_of(
            domain::privacy::export::ExportHome::User,
            &user_id,
            &format!("bench-export-{items}"),
        );
        let manifest = state
            .store
            .get::<domain::privacy::export::ExportJob>(&job)
            .await
            .expect("read")
            .expect("job")
            .record
            .manifest
            .expect("manifest");
        assert_eq!(manifest.items_by_type.get("access_log_entry"), Some(&items));
        erasure::start(
            &state,
            &user_id,
            erasure::ErasureOrder::without_request(ErasureReason::Request, &user_id),
        )
        .await
        .expect("start");
        let erase = domain::privacy::jobs::PrivacyJob::Erasure {
            user_id: user_id.clone(),
        };
        let (erase_slices, erase_longest, _) = run_like_the_worker(&state, &erase).await;
        let left = raw_count(&state, &platform::keys::access_log_partition(&user_id)).await
            + raw_partition(&user_id).await.len() as i32;
        assert_eq!(left, 0, "nothing left");
        println!(
            "| {items} | {export_slices} | {:.2} s | {:.1} MB | {erase_slices} | {:.2} s | {left} |",
            export_longest.as_secs_f64(),
            export_peak.saturating_sub(before) as f64 / 1024.0,
            erase_longest.as_secs_f64(),
        );
    }
}

/// Aborts the process right after the `n`-th DynamoDB write came back (the write landed, nothing
/// after it did): a real crash between two writes, wherever the job happens to be.
#[derive(Debug)]
struct CrashAfterWrites(AtomicUsize);

impl e2e::SdkHook for CrashAfterWrites {
    fn after(&self, operation: &str) {
        const WRITES: [&str; 5] = [
            ".PutItem",
            ".UpdateItem",
            ".DeleteItem",
            ".TransactWriteItems",
            ".BatchWriteItem",
        ];
        let is_write = operation.starts_with("DynamoDB_") && WRITES.iter().any(|w| operation.ends_with(w));
        if is_write && self.0.fetch_sub(1, Ordering::SeqCst) == 1 {
            std::process::abort();
        }
    }
}

/// Where the crashing child takes its orders from (set only by the test below).
const CRASH_USER: &str = "OFFICERTRAK_CRASH_USER";
const CRASH_AFTER_WRITES: &str = "OFFICERTRAK_CRASH_AFTER_WRITES";

/// Not a test of its own: the child process of the test below. It runs the user's erasure with
/// every AWS call going through [`CrashAfterWrites`], and the process dies mid-job.
#[tokio::test]
#[ignore = "the child process of an_erasure_whose_process_is_killed_between_two_writes_resumes_and_finishes"]
async fn crash_child_runs_an_erasure_until_its_process_dies() {
    let (Ok(user_id), Ok(after)) = (std::env::var(CRASH_USER), std::env::var(CRASH_AFTER_WRITES)) else {
        return;
    };
    let after: usize = after.parse().expect("a number of writes");
    // The stack's resources only: no gateway and no privacy worker in this process, which would
    // take other tests' jobs from the shared queue and die holding them.
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let local = infra::bootstrap::bootstrap(&endpoint, infra::project_template().expect("template.yaml"))
        .await
        .expect("the local stack's resources");
    let sdk = local.sdk_config().await;
    let crashing = e2e::HookedHttpClient::wrap(&sdk, CrashAfterWrites(AtomicUsize::new(after)));
    let config = local.function_config("PrivacyFunction").expect("config");
    let state = AppState::new(config, &crashing, Clock::System)
        .await
        .expect("state");
    let progress = erasure::run(&state, &user_id, 10_000).await;
    panic!("the process was to die after {after} writes, but the job ended: {progress:?}");
}

#[tokio::test]
async fn an_erasure_whose_process_is_killed_between_two_writes_resumes_and_finishes() {
    let stack = stack();
    let state = stack.state("PrivacyFunction", Clock::System).await;
    // Three users, each job killed after a different number of writes: early, mid-way, late.
    for after_writes in [1, 4, 9] {
        let (user_id, request_id, email) = busy_user(&state).await;
        erasure::start(
            &state,
            &user_id,
            erasure::ErasureOrder::without_request(ErasureReason::Request, &user_id),
        )
        .await
        .expect("start");
        let child = tokio::process::Command::new(std::env::current_exe().expect("the test binary"))
            .args([
                "erasure::crash_child_runs_an_erasure_until_its_process_dies",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_USER, &user_id)
            .env(CRASH_AFTER_WRITES, after_writes.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await
            .expect("the child process ran");
        assert_eq!(
            child.code(),
            None,
            "the child was killed by its abort after {after_writes} writes: {child:?}"
        );
        let stored = state
            .store
            .get::<erasure::ErasureJob>(&erasure::ErasureJob::key_of(&user_id))
            .await
            .expect("read")
            .expect("the job is still on record");
        assert_ne!(
            stored.record.step,
            ErasureStep::Done,
            "it died before the end ({after_writes} writes)"
        );

        // A new process (this one) picks the job up from what was stored and finishes it.
        let job = match erasure::run(&state, &user_id, 10_000).await.expect("resumed") {
            Progress::Done(job) => *job,
            other => panic!("one resumed run finishes: {other:?}"),
        };
        assert_eq!(job.step, ErasureStep::Done);
        assert_eq!(
            item_types(&raw_partition(&user_id).await),
            ["payment_charge", "payment_record", "w9_record"],
            "only tax and payment records stay (killed after {after_writes} writes)"
        );
        assert_eq!(raw_count(&state, &format!("REQUEST#{request_id}")).await, 0);
        let lock = EmailLock::key_for("customer", &state.lookup.email_hash(&email).await.expect("hash"));
        assert!(
            !state.store.exists(&lock).await.expect("read"),
            "the e-mail is free again"
        );
    }
}

/// Point-in-time recovery of the key-store table keeps a destroyed key restorable for 35 days. The
/// decision (README, "Crypto-shredding"): recovery stays on (losing the key store loses everyone's
/// data), every shredding is noted in the shred ledger, the erasure report says until when the key
/// is restorable, and a restore is reconciled against the ledger before it is used: here a restore
/// that brought an erased person's key back is undone.
#[tokio::test]
async fn a_restored_key_store_is_reconciled_and_no_shredded_key_comes_back() {
    let stack = stack();
    let email = unique_email("restored");
    let token = stack.user_with_email(&email, &["customer"]).await.id_token;
    let user_id = sub_of(&token);
    let body = crate::accounts::customer_body(&email, "Leontine Barrowcliffe");
    let (status, account) = call_api(Method::POST, "/v1/customers", Some(&token), Some(&body), None).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{account}");
    let state = stack.state("RetentionFunction", Clock::System).await;
    assert!(state.keys.has_user_key(&user_id).await.expect("key store"));
    // What a backup of the key store holds of this person's key.
    let dynamodb = aws_sdk_dynamodb::Client::new(&stack.sdk().await);
    let key_table = stack.stack.physical_id("KeyStoreTable").expect("key store");
    let backup = dynamodb
        .query()
        .table_name(&key_table)
        .key_condition_expression("#id = :id")
        .expression_attribute_names("#id", "branch-key-id")
        .expression_attribute_values(
            ":id",
            AttributeValue::S(platform::crypto::user_branch_key(&user_id)),
        )
        .send()
        .await
        .expect("backup")
        .items
        .unwrap_or_default();
    assert!(!backup.is_empty());
    let before_deletion = Timestamp::now();

    // Deleted: nothing is kept by law for this customer, so the key is destroyed at once, and the
    // report says until when a restore of the key store could bring it back.
    let (status, queued) = call_api(
        Method::POST,
        "/v1/privacy-requests",
        Some(&token),
        Some(&json!({"type": "deletion"})),
        None,
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{queued}");
    let done = e2e::await_request(&token, queued["id"].as_str().expect("id")).await;
    assert_eq!(done["status"], "fulfilled", "{done}");
    let report = &done["result"]["erasure"];
    let shredded: Timestamp = report["key_shredded_at"]
        .as_str()
        .expect("shredded")
        .parse()
        .expect("ts");
    let restorable: Timestamp = report["key_restorable_until"]
        .as_str()
        .expect("restorable until")
        .parse()
        .expect("ts");
    assert_eq!(
        restorable.duration_since(shredded).as_hours(),
        35 * 24,
        "{report}"
    );
    assert!(!state.keys.has_user_key(&user_id).await.expect("key store"));

    // The key store is restored to a moment before the deletion: the key is back.
    for item in backup {
        dynamodb
            .put_item()
            .table_name(&key_table)
            .set_item(Some(item))
            .send()
            .await
            .expect("restored");
    }
    assert!(state.keys.has_user_key(&user_id).await.expect("key store"));
    // Reconciled as the runbook says, before the restored table is used: destroyed again.
    let reconciled = retention::handle_reshred(&state, before_deletion)
        .await
        .expect("reconciled");
    assert!(reconciled.keys_deleted >= 1, "{reconciled:?}");
    assert!(!state.keys.has_user_key(&user_id).await.expect("key store"));
}
