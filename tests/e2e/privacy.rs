//! Privacy requests against the emulator: deadlines by jurisdiction, idempotent creation, recent
//! sign-in for requests that disclose or destroy data, opt-out, restriction (matching stops) and its
//! lifting, deletion keeping only what the law requires, the audit trail, who may read what, and a
//! minor's data deleted by a privacy officer.

use domain::privacy::requests::{self, Jurisdiction, RequestInput, RequestType};
use e2e::{approved_member, call_api, pointers, raw_partition, stack, sub_of, unique_email};
use edge::ApiError;
use edge::auth::{Caller, Role};
use jiff::{SignedDuration, Timestamp};
use platform::AppState;
use platform::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn caller(user_id: &str, roles: &[Role], auth_time: Option<Timestamp>) -> Caller {
    Caller {
        user_id: user_id.to_owned(),
        username: None,
        email: None,
        email_verified: true,
        roles: roles.iter().copied().collect(),
        auth_time,
    }
}

async fn post(token: &str, body: Value, key: Option<&str>) -> (StatusCode, Value) {
    call_api(
        Method::POST,
        "/v1/privacy-requests",
        Some(token),
        Some(&body),
        key,
    )
    .await
}

/// A customer who is also an officer of an agency, available all week, with a W-9 on file.
async fn subject(state: &AppState) -> (String, String, String, String) {
    let stack = stack();
    let email = unique_email("subject");
    let token = stack
        .user_with_email(&email, &["customer", "provider"])
        .await
        .id_token;
    let user_id = sub_of(&token);
    state.keys.create_user_key(&user_id).await.expect("key");
    // The subject gets mail in Ireland: their requests follow the GDPR's clock.
    let mut customer = domain::samples::customer(&user_id, &email);
    customer.mailing_address = Some(domain::address::Address {
        line1: "4 Merrion Square".into(),
        line2: None,
        city: "Dublin".into(),
        region: "D".into(),
        postal_code: "D02 XY45".into(),
        country: "IE".into(),
    });
    state.store.create(&customer).await.expect("customer");
    let ops = caller(&uuid::Uuid::new_v4().to_string(), &[Role::Ops], None);
    let settings: domain::agencies::AgencySettings = serde_json::from_value(json!({
        "agency_name": "Sublette County Sheriff", "time_zone": "America/Denver",
        "admin_user_ids": ["someone"],
        "rates": {"hourly_rate_cents": 6500, "minimum_hours": 2, "holiday_multiplier_percent": 150,
                  "short_notice_multiplier_percent": 125, "short_notice_hours": 24, "vehicle_charge_cents": 0,
                  "admin_fee_percent": 5},
        "rules": serde_json::to_value(domain::samples::agency_rules()).expect("rules")
    }))
    .expect("settings");
    let agency = domain::agencies::create(state, &ops, settings)
        .await
        .expect("agency");
    let provider = domain::samples::provider(&user_id, &email);
    state.store.create(&provider).await.expect("provider");
    approved_member(state, &ops, &agency.agency_id, &user_id, "2016-05-01").await;
    state
        .store
        .create(&domain::samples::w9(&user_id, Timestamp::now()))
        .await
        .expect("w9");
    let weekly: Vec<Value> = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
    .iter()
    .map(|d| json!({"day": d, "windows": [{"start": "00:00", "end": "24:00"}]}))
    .collect();
    let availability: domain::scheduling::availability::Availability =
        serde_json::from_value(json!({ "weekly": weekly })).expect("availability");
    domain::scheduling::put_availability(state, &caller(&user_id, &[Role::Provider], None), availability)
        .await
        .expect("availability");
    (user_id, token, agency.agency_id, email)
}

async fn pool_entries(state: &AppState, agency_id: &str) -> i32 {
    state
        .store
        .raw()
        .query()
        .table_name(state.store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(domain::scheduling::roster::PoolEntry::partition(
                agency_id, "monday",
            )),
        )
        .send()
        .await
        .expect("pool")
        .count()
}

#[tokio::test]
async fn rights_are_tracked_with_deadlines_and_processed_and_only_the_subject_reads_them() {
    let stack = stack();
    let state = stack.state("PrivacyFunction", Clock::System).await;
    let (user_id, token, agency_id, email) = subject(&state).await;

    // Be informed: what we hold (names, not values), why, for how long; the accepted policy.
    let (status, inventory) = call_api(Method::GET, "/v1/me/data-inventory", Some(&token), None, None).await;
    assert_eq!(status, StatusCode::OK, "{inventory}");
    assert_eq!(inventory["policy_version_accepted"], "2026-11-01");
    let category = |name: &str| {
        inventory["categories"]
            .as_array()
            .expect("categories")
            .iter()
            .find(|c| c["category"] == name)
            .cloned()
            .expect(name)
    };
    let customer = category("customer_account");
    assert_eq!(customer["records_held"], 1);
    assert!(
        customer["encrypted_fields"]
            .as_array()
            .expect("fields")
            .contains(&json!("email"))
    );
    let w9 = category("w9_record");
    assert_eq!(
        (w9["retention"]["kept_for"].clone(), w9["records_held"].clone()),
        (json!("7 years"), json!(1))
    );
    assert!(
        w9["retention"]["legal_basis"]
            .as_str()
            .unwrap_or("")
            .contains("IRS")
    );
    assert!(
        !inventory.to_string().contains("Quarrington"),
        "names of fields, never values"
    );

    // Opt-out: done at once, deadline 15 business days, the mailer's consent is off.
    let (status, opt_out) = post(
        &token,
        json!({"type": "marketing_opt_out", "jurisdiction": "ccpa"}),
        None,
    )
    .await;
    assert_eq!(
        (status, opt_out["status"].clone()),
        (StatusCode::CREATED, json!("fulfilled")),
        "{opt_out}"
    );
    assert!(
        !domain::consent::marketing_consent(&state.store, &user_id)
            .await
            .expect("consent")
    );

    // Restriction: stored, not used — the officer leaves the pool and cannot be placed.
    assert_eq!(pool_entries(&state, &agency_id).await, 1);
    let (status, restricted) = post(&token, json!({"type": "restriction"}), None).await;
    assert_eq!(
        (status, restricted["status"].clone()),
        (StatusCode::CREATED, json!("fulfilled")),
        "{restricted}"
    );
    assert_eq!(
        pool_entries(&state, &agency_id).await,
        0,
        "no longer listed for matching"
    );
    let (_, me) = call_api(Method::GET, "/v1/me", Some(&token), None, None).await;
    assert_eq!(me["customer"]["status"], "restricted", "{me}");
    // Restricted: no disclosure but under legal demand; every disclosure is logged.
    let dpo = stack.user("dpo-log", &["privacy_officer"]).await.id_token;
    let disclosure = |category: &str, recipient: &str, reference: Option<&str>, data: &[&str]| {
        let mut body = json!({
            "subject_user_id": user_id, "recipient_category": category, "recipient": recipient,
            "legal_basis": "contract: payment processing", "data_categories": data,
            "disclosed_at": "2026-11-20T10:00:00Z"
        });
        if let Some(reference) = reference {
            body["reference"] = json!(reference);
        }
        body
    };
    let log = |body: Value| {
        let dpo = dpo.clone();
        async move {
            call_api(
                Method::POST,
                "/v1/admin/disclosures",
                Some(&dpo),
                Some(&body),
                None,
            )
            .await
        }
    };
    assert_eq!(
        log(disclosure("processor", "Stripe, Inc.", None, &["payment_record"]))
            .await
            .0,
        StatusCode::CONFLICT,
        "a restricted user's data goes to no processor"
    );
    let (status, legal) = log(disclosure(
        "legal_demand",
        "Sublette County District Court",
        Some("SUBPOENA-2026-4471"),
        &["access_log_entry"],
    ))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{legal}");
    let (status, problem) = log(disclosure("legal_demand", "Sheriff", None, &["access_log_entry"])).await;
    assert_eq!(
        (status, e2e::pointers(&problem).contains("/reference")),
        (StatusCode::UNPROCESSABLE_ENTITY, true)
    );
    let (status, problem) = log(disclosure("affiliate", "Acme Security", None, &["nonsense"])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let pointers = e2e::pointers(&problem);
    assert!(
        pointers.contains("/recipient") && pointers.contains("/data_categories/0"),
        "{problem}"
    );
    assert_eq!(
        call_api(
            Method::POST,
            "/v1/admin/disclosures",
            Some(&token),
            Some(&disclosure(
                "processor",
                "Stripe, Inc.",
                None,
                &["payment_record"]
            )),
            None
        )
        .await
        .0,
        StatusCode::FORBIDDEN,
        "only privacy officers log disclosures"
    );
    let (status, lifted) = post(&token, json!({"type": "lift_restriction"}), None).await;
    assert_eq!(status, StatusCode::CREATED, "{lifted}");
    assert_eq!(pool_entries(&state, &agency_id).await, 1, "listed again");
    let (status, _) = log(disclosure(
        "affiliate",
        domain::privacy::disclosures::AFFILIATE,
        None,
        &["customer_account"],
    ))
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "allowed again once the restriction is lifted"
    );

    // Access: the export is built at once; only the subject fetches it, and it checks out.
    let (status, queued) = post(&token, json!({"type": "access", "jurisdiction": "gdpr"}), None).await;
    assert_eq!(
        (status, queued["status"].clone()),
        (StatusCode::ACCEPTED, json!("in_progress")),
        "the export is built off the request path: {queued}"
    );
    let access = e2e::await_request(&token, queued["id"].as_str().expect("id")).await;
    assert_eq!(access["status"], "fulfilled", "{access}");
    let export_path = format!(
        "/v1/privacy-requests/{}/export",
        access["id"].as_str().expect("id")
    );
    let (status, manifest) = call_api(Method::GET, &export_path, Some(&token), None, None).await;
    assert_eq!(status, StatusCode::OK, "{manifest}");
    assert_eq!(manifest, access["result"]["export"]);
    for kind in [
        "customer_account",
        "provider_account",
        "w9_record",
        "roster",
        "consent_record",
        "access_log_entry",
        "privacy_request",
        "disclosure",
    ] {
        assert!(
            manifest["items_by_type"][kind].as_u64().unwrap_or(0) >= 1,
            "{kind} missing: {manifest}"
        );
    }
    let mut document = String::new();
    for part in 0..manifest["parts"].as_u64().expect("parts") {
        let response = reqwest::Client::new()
            .get(stack.url(&format!("{export_path}?part={part}")))
            .bearer_auth(&token)
            .send()
            .await
            .expect("part");
        assert_eq!(response.status(), StatusCode::OK);
        document.push_str(&response.text().await.expect("text"));
    }
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(document.as_bytes()));
    assert_eq!(
        manifest["sha256"],
        digest.as_str(),
        "the manifest's hash matches the parts"
    );
    assert!(
        document.contains("Philippa Quarrington"),
        "decrypted personal data is in the export"
    );
    assert!(
        document.contains("SUBPOENA-2026-4471"),
        "the disclosure log is in the export"
    );
    for line in document.lines() {
        let record: Value = serde_json::from_str(line).expect("each line is JSON");
        assert!(record["type"].is_string() && record["data"].is_object(), "{line}");
    }
    let nosy = stack.user("exportnosy", &["customer"]).await.id_token;
    assert_eq!(
        call_api(Method::GET, &export_path, Some(&nosy), None, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // Correction: tracked for the privacy officers with the GDPR deadline; Idempotency-Key retries.
    let key = format!("correction-{}", uuid::Uuid::new_v4());
    let (status, tracked) = post(
        &token,
        json!({"type": "correction", "jurisdiction": "gdpr"}),
        Some(&key),
    )
    .await;
    assert_eq!(
        (status, tracked["status"].clone()),
        (StatusCode::CREATED, json!("open")),
        "{tracked}"
    );
    let received: Timestamp = tracked["received_at"]
        .as_str()
        .expect("received")
        .parse()
        .expect("ts");
    let due: Timestamp = tracked["due_at"].as_str().expect("due").parse().expect("ts");
    assert_eq!(
        due,
        requests::deadline(Jurisdiction::Gdpr, RequestType::Correction, received)
    );
    let (status, again) = post(
        &token,
        json!({"type": "correction", "jurisdiction": "gdpr"}),
        Some(&key),
    )
    .await;
    assert_eq!(
        (status, again["id"].clone()),
        (StatusCode::OK, tracked["id"].clone())
    );
    let (status, _) = post(&token, json!({"type": "deletion"}), Some(&key)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "one key, one request");
    let (status, _) = post(&token, json!({"type": "erase_everything"}), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // A correction naming fields is applied at once, validated as the profile endpoints are.
    let (status, problem) = post(
        &token,
        json!({"type": "correction", "customer": {"phone": "not a phone"}}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(e2e::pointers(&problem).contains("/customer/phone"), "{problem}");
    assert!(
        !problem.to_string().contains("not a phone"),
        "the value is not echoed"
    );
    let (status, corrected) = post(
        &token,
        json!({"type": "correction", "customer": {"name": "Philippa Q. Marsh"}}),
        None,
    )
    .await;
    assert_eq!(
        (status, corrected["status"].clone()),
        (StatusCode::CREATED, json!("fulfilled")),
        "{corrected}"
    );
    assert_eq!(corrected["result"]["summary"], "corrected: customer.name");
    let (_, me) = call_api(Method::GET, "/v1/me", Some(&token), None, None).await;
    assert_eq!(me["customer"]["name"], "Philippa Q. Marsh");
    let (status, _) = post(
        &token,
        json!({"type": "restriction", "customer": {"name": "X"}}),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "only a correction names fields"
    );

    // A stale sign-in may not delete or export.
    let stale = caller(
        &user_id,
        &[Role::Customer],
        Some(Timestamp::now() - SignedDuration::from_mins(20)),
    );
    let refused = requests::create(
        &state,
        &stale,
        RequestInput {
            kind: RequestType::Deletion,
            jurisdiction: None,
            customer: None,
            provider: None,
        },
        None,
    )
    .await
    .expect_err("re-authentication needed");
    assert!(
        matches!(refused, ApiError::ReauthenticationRequired(_)),
        "{refused:?}"
    );

    // Only the subject reads a request; privacy officers see open ones, without data.
    let path = format!("/v1/privacy-requests/{}", tracked["id"].as_str().expect("id"));
    assert_eq!(
        call_api(Method::GET, &path, Some(&token), None, None).await.0,
        StatusCode::OK
    );
    let other = stack
        .user("nosy", &["customer", "privacy_officer"])
        .await
        .id_token;
    assert_eq!(
        call_api(Method::GET, &path, Some(&other), None, None).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, open) = e2e::listed("/v1/admin/privacy-requests", &other).await;
    assert_eq!(status, StatusCode::OK, "{open}");
    assert!(
        open["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|r| r["id"] == tracked["id"])
    );
    assert_eq!(
        call_api(
            Method::GET,
            "/v1/admin/privacy-requests",
            Some(&token),
            None,
            None
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );

    // A privacy officer extends the correction once (the requester is told why), then denies it.
    let decision = format!(
        "/v1/privacy-requests/{}/decision",
        tracked["id"].as_str().expect("id")
    )
    .replace("/v1/", "/v1/admin/");
    let decide = |body: Value, who: String| {
        let decision = decision.clone();
        async move { call_api(Method::POST, &decision, Some(&who), Some(&body), None).await }
    };
    assert_eq!(
        decide(
            json!({"decision": "extend", "reason": "records held by the agency"}),
            token.clone()
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let (status, extended) = decide(
        json!({"decision": "extend", "reason": "records held by the agency"}),
        dpo.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{extended}");
    let extended_due: Timestamp = extended["due_at"].as_str().expect("due").parse().expect("ts");
    assert_eq!(extended_due, requests::extended_deadline(Jurisdiction::Gdpr, due));
    let (status, _) = decide(json!({"decision": "extend", "reason": "again"}), dpo.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "one extension only");
    let (status, denied) = decide(
        json!({"decision": "deny", "basis": "the data is accurate (Art. 16 GDPR)"}),
        dpo.clone(),
    )
    .await;
    assert_eq!(
        (status, denied["status"].clone()),
        (StatusCode::OK, json!("denied")),
        "{denied}"
    );
    let (_, seen) = call_api(Method::GET, &path, Some(&token), None, None).await;
    assert_eq!(seen["status"], "denied");
    assert!(
        seen["result"]["summary"]
            .as_str()
            .unwrap_or("")
            .contains("complain"),
        "{seen}"
    );
    assert_eq!(seen["extension_reason"], "records held by the agency");
    let (status, _) = decide(json!({"decision": "fulfil", "summary": "done"}), dpo.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "a closed request stays closed");
    let (status, closed) = e2e::listed("/v1/admin/privacy-requests?status=closed", &dpo).await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert!(
        closed["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|r| r["id"] == tracked["id"] && r["status"] == "denied")
    );
    let (status, _) = call_api(
        Method::GET,
        "/v1/admin/privacy-requests?status=lost",
        Some(&dpo),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let mail = e2e::mails_to(&email).await;
    assert!(
        mail.iter()
            .any(|m| m.contains("We received your marketing opt out request")),
        "receipt is confirmed: {mail:?}"
    );
    assert!(
        mail.iter().any(|m| m.contains("records held by the agency")),
        "the extension notice: {mail:?}"
    );
    assert!(
        mail.iter()
            .any(|m| m.contains("Art. 16 GDPR") && m.contains("complain")),
        "the denial notice: {mail:?}"
    );

    // Deletion: everything but the W-9 goes; the result says what is kept, why, until when.
    let (status, queued) = post(&token, json!({"type": "deletion", "jurisdiction": "gdpr"}), None).await;
    assert_eq!(
        (status, queued["status"].clone()),
        (StatusCode::ACCEPTED, json!("in_progress")),
        "{queued}"
    );
    assert!(
        queued["will_keep"]
            .as_array()
            .is_some_and(|kept| kept.iter().any(|k| k["category"] == "w9_record"
                && k["kept_for"].as_str().unwrap_or("").starts_with("7 years"))),
        "the answer says what the law keeps, why and how long: {queued}"
    );
    let deletion = e2e::await_request(&token, queued["id"].as_str().expect("id")).await;
    assert_eq!(deletion["status"], "fulfilled", "{deletion}");
    let report = &deletion["result"]["erasure"];
    let w9 = report["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["item_type"] == "w9_record"))
        .expect("the report counts the W-9");
    assert_eq!(
        (w9["found"].as_u64(), w9["kept"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
    assert!(report["identity_deleted_at"].is_string(), "{report}");
    assert!(
        report["key_shred_scheduled_at"].is_string(),
        "kept records: the key waits: {report}"
    );
    let retained = &deletion["result"]["retained"][0];
    assert_eq!(retained["category"], "w9_record");
    assert!(retained["legal_basis"].as_str().unwrap_or("").contains("IRS"));
    let types: Vec<String> = raw_partition(&user_id)
        .await
        .iter()
        .filter_map(|i| match i.get("item_type") {
            Some(aws_sdk_dynamodb::types::AttributeValue::S(t)) => Some(t.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(types, ["w9_record"]);
    assert_eq!(pool_entries(&state, &agency_id).await, 0);

    // The requests and their audit trail outlive the deletion.
    let (status, mine) = call_api(Method::GET, "/v1/privacy-requests", Some(&token), None, None).await;
    assert_eq!(
        (status, mine["items"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(7)),
        "{mine}"
    );
    let trail = requests::audit_trail(&state, &user_id).await.expect("trail");
    let actions: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
    for expected in [
        "received",
        "received->verified",
        "verified->completed",
        "verified->in_processing",
        "in_processing->completed",
    ] {
        assert!(actions.contains(&expected), "{expected} missing from {actions:?}");
    }
    // The officer's decisions are theirs.
    let officer_id = sub_of(&dpo);
    assert!(
        trail
            .iter()
            .any(|e| e.action == "extended" && e.actor_user_id == officer_id)
    );
    assert!(
        trail
            .iter()
            .any(|e| e.action == "verified->denied" && e.actor_user_id == officer_id)
    );
    // What the worker carried out (the export, the deletion) it completed, audited as its own.
    assert_eq!(
        trail
            .iter()
            .filter(|e| e.action == "in_processing->completed")
            .map(|e| e.actor_user_id.as_str())
            .collect::<Vec<_>>(),
        ["privacy-worker", "privacy-worker"],
        "{trail:?}"
    );
    // Every move the subject caused is theirs (the hourly overdue alert, run by other tests with
    // clocks months ahead, may add its own "system" entries).
    assert!(
        trail
            .iter()
            .filter(|e| {
                ![
                    "overdue_alert_sent",
                    "extended",
                    "verified->denied",
                    "in_processing->completed",
                ]
                .contains(&e.action.as_str())
            })
            .all(|e| e.actor_user_id == user_id),
        "{trail:?}"
    );
}

/// A minor's data is deleted on a report support received, by two privacy officers (one proposes,
/// another approves), never a staff account, and what the law keeps (payment and tax records) is kept.
#[tokio::test]
async fn a_minors_data_is_deleted_on_a_report_by_two_privacy_officers_keeping_what_the_law_keeps() {
    let stack = stack();
    let state = stack.state("PrivacyFunction", Clock::System).await;
    let (user_id, token, _, _) = subject(&state).await;
    let (status, report) = call_api(
        Method::POST,
        "/v1/support/inquiries",
        None,
        Some(
            &json!({"name": "Ottilie Reporter", "email": unique_email("reporter"), "topic": "minor_data",
                     "message": "The Quarrington account is my 16-year-old's."}),
        ),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{report}");
    let report_id = report["inquiry_id"].as_str().expect("id").to_owned();
    let path = format!("/v1/admin/minors/{user_id}");
    let case = json!({"case_reference": report_id});
    assert_eq!(
        call_api(Method::POST, &path, Some(&token), Some(&case), None)
            .await
            .0,
        StatusCode::FORBIDDEN,
        "only privacy officers"
    );
    let first = stack.user("dpo", &["privacy_officer"]).await.id_token;
    let second = stack.user("dpo-second", &["privacy_officer"]).await.id_token;
    // A case that is no report about a minor opens nothing.
    let (status, problem) = call_api(
        Method::POST,
        &path,
        Some(&first),
        Some(&json!({"case_reference": "INQ-2026-0042"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    // A staff account is never deleted as a minor's.
    let (status, problem) = call_api(
        Method::POST,
        &format!("/v1/admin/minors/{}", sub_of(&second)),
        Some(&first),
        Some(&case),
        None,
    )
    .await;
    assert_eq!(
        (status, problem["rule"].clone()),
        (StatusCode::CONFLICT, json!("staff_account")),
        "{problem}"
    );
    // Proposed: nothing is deleted yet.
    let before = raw_partition(&user_id).await.len();
    let (status, proposed) = call_api(Method::POST, &path, Some(&first), Some(&case), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{proposed}");
    assert_eq!(proposed["status"], "awaiting_approval", "{proposed}");
    assert!(proposed.get("request_id").is_none(), "{proposed}");
    assert_eq!(
        raw_partition(&user_id).await.len(),
        before,
        "nothing deleted on one word"
    );
    // The proposer cannot approve; a second privacy officer does.
    let approval = format!("{path}/approval");
    let (status, _) = call_api(Method::POST, &approval, Some(&first), None, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "four eyes");
    let (status, queued) = call_api(Method::POST, &approval, Some(&second), None, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    assert_eq!(queued["case_reference"], report_id.as_str());
    let done = e2e::await_request(&token, queued["request_id"].as_str().expect("request id")).await;
    assert_eq!(done["status"], "fulfilled", "{done}");
    // The W-9 (a tax record) is kept by law; everything else went.
    let kept: Vec<String> = done["result"]["erasure"]["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["kept"].as_u64().unwrap_or(0) > 0)
        .filter_map(|i| i["item_type"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(kept, vec!["w9_record".to_owned()], "{done}");
    let (status, again) = call_api(Method::POST, &approval, Some(&second), None, None).await;
    assert_eq!(
        (status, again["request_id"].clone()),
        (StatusCode::ACCEPTED, queued["request_id"].clone()),
        "a repeat finds the one deletion"
    );
    let left: Vec<String> = e2e::raw_items_of(&platform::keys::user_partition(&user_id))
        .await
        .iter()
        .filter_map(|item| item.get("item_type").and_then(|t| t.as_s().ok()).cloned())
        .collect();
    assert!(left.iter().all(|t| t == "w9_record"), "{left:?}");
    let trail = requests::audit_trail(&state, &user_id).await.expect("trail");
    for (action, officer) in [
        ("minor_data_deletion_proposed", &first),
        ("minor_data_deletion_started", &second),
    ] {
        assert!(
            trail.iter().any(|e| e.action == action
                && e.actor_user_id == sub_of(officer)
                && e.subject_id == format!("case:{report_id}")),
            "{action}: {trail:?}"
        );
    }
}

/// Deleting a minor's data is bounded: a case reference, a recent sign-in, and a user id that names a
/// real user (never `anonymous`, another partition or a made-up id). Each refusal deletes nothing.
#[tokio::test]
async fn a_minors_deletion_needs_a_case_a_recent_sign_in_and_a_real_user() {
    let stack = stack();
    let state = stack.state("PrivacyFunction", Clock::System).await;
    let (user_id, _, _, _) = subject(&state).await;
    let officer = stack.user("dpo-bounds", &["privacy_officer"]).await.id_token;
    let case = json!({"case_reference": "INQ-2026-0043"});
    let path = format!("/v1/admin/minors/{user_id}");
    let before = raw_partition(&user_id).await.len();
    assert!(before > 0);

    let (status, problem) = call_api(Method::POST, &path, Some(&officer), Some(&json!({})), None).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no case reference: {problem}"
    );
    let bad = json!({"case_reference": "see my notes <b>"});
    let (status, problem) = call_api(Method::POST, &path, Some(&officer), Some(&bad), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(pointers(&problem), BTreeSet::from(["/case_reference".to_owned()]));
    for stranger in [
        "anonymous",
        "AGENCY%23agency-1",
        &uuid::Uuid::new_v4().to_string(),
    ] {
        let (status, problem) = call_api(
            Method::POST,
            &format!("/v1/admin/minors/{stranger}"),
            Some(&officer),
            Some(&case),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{stranger}: {problem}");
    }
    // A privacy officer whose sign-in is older than 15 minutes signs in again first.
    let stale = caller(
        &sub_of(&officer),
        &[Role::PrivacyOfficer],
        Some(Timestamp::now() - SignedDuration::from_mins(20)),
    );
    let input = requests::MinorDeletionInput {
        case_reference: "INQ-2026-0043".into(),
    };
    assert!(matches!(
        requests::delete_minor(&state, &stale, &user_id, input, None).await,
        Err(ApiError::ReauthenticationRequired(_))
    ));
    assert_eq!(raw_partition(&user_id).await.len(), before, "nothing was deleted");
}

#[tokio::test]
async fn future_clock_the_purge_alerts_privacy_officers_once_when_a_request_is_overdue() {
    let stack = stack();
    let officer_email = unique_email("dpo-alerts");
    stack.user_with_email(&officer_email, &["privacy_officer"]).await;
    let state = stack.state("PrivacyFunction", Clock::System).await;
    let user_id = e2e::new_user(&state).await;
    let me = caller(&user_id, &[Role::Customer], Some(Timestamp::now()));
    let (request, _) = requests::create(
        &state,
        &me,
        RequestInput {
            kind: RequestType::Correction,
            jurisdiction: Some(Jurisdiction::Ccpa),
            customer: None,
            provider: None,
        },
        None,
    )
    .await
    .expect("request");
    let late = stack
        .function_state(
            "RetentionFunction",
            Clock::fixed(request.due_at + SignedDuration::from_hours(1)),
        )
        .await;
    for _ in 0..2 {
        jobs::purge::scheduled_run(&late, 1000)
            .await
            .expect("scheduled run");
    }
    let stored = state
        .store
        .get::<requests::PrivacyRequest>(&requests::PrivacyRequest::key_of(&user_id, &request.id))
        .await
        .expect("read")
        .expect("request");
    assert!(stored.record.overdue_alerted_at.is_some());
    let data: Value = reqwest::get(format!("{}/moto-api/data.json", stack.stack.endpoint))
        .await
        .expect("moto")
        .json()
        .await
        .expect("json");
    let alerts: Vec<String> = data["ses"]["Message"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| {
            m["destinations"]["ToAddresses"]
                .as_array()
                .is_some_and(|to| to.iter().any(|a| a == officer_email.as_str()))
        })
        .map(Value::to_string)
        .filter(|m| m.contains(&request.id))
        .collect();
    assert_eq!(
        alerts.len(),
        1,
        "one alert per overdue request, however often the purge runs"
    );
    assert!(
        !alerts[0].contains(&user_id),
        "the alert names the request, not the person"
    );
}

/// An export built one Query page per slice (as if the worker's budget ran out after every page),
/// with parts of 600 bytes, resumes from its checkpoint each time and ends with a manifest whose hash
/// and counts are those of the parts; a slice run again after the end changes nothing.
#[tokio::test]
async fn a_large_export_is_written_in_parts_whose_hash_the_manifest_gives() {
    use domain::privacy::export::{ExportProgress, build_slice};
    let stack = stack();
    let state = stack.state("PrivacyWorkerFunction", Clock::System).await;
    let (user_id, _, _, _) = subject(&state).await;
    let mut slices = 0;
    let manifest = loop {
        slices += 1;
        assert!(slices < 50, "the export makes progress");
        match build_slice(&state, &user_id, "parts-test", 1, 600)
            .await
            .expect("slice")
        {
            ExportProgress::Building(job) => assert!(job.source <= 3),
            ExportProgress::Ready(manifest) => break manifest,
        }
    };
    assert!(slices >= 3, "one slice per source partition at least: {slices}");
    assert!(manifest.parts >= 3, "{manifest:?}");
    match build_slice(&state, &user_id, "parts-test", 1, 600)
        .await
        .expect("again")
    {
        ExportProgress::Ready(again) => {
            assert_eq!(again, manifest, "a finished export is answered, not rebuilt")
        }
        other => panic!("{other:?}"),
    }
    let mut document = String::new();
    for part in 0..manifest.parts {
        document.push_str(
            &domain::privacy::export::part_of(&state, &user_id, "parts-test", part)
                .await
                .expect("read")
                .expect("part"),
        );
    }
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(document.as_bytes()));
    assert_eq!(manifest.sha256, digest);
    let counted: usize = manifest.items_by_type.values().sum();
    assert_eq!(document.lines().count(), counted);
    // The stored parts are encrypted: the raw table shows none of the exported values.
    assert!(!format!("{:?}", raw_partition(&user_id).await).contains("Quarrington"));
    // After its 7 days the export is gone from every read (DynamoDB TTL then deletes it).
    let later = stack
        .state(
            "PrivacyFunction",
            Clock::fixed(manifest.available_until + SignedDuration::from_secs(1)),
        )
        .await;
    assert!(
        domain::privacy::export::part_of(&later, &user_id, "parts-test", 0)
            .await
            .expect("read")
            .is_none()
    );
}

#[tokio::test]
async fn a_significant_policy_version_is_announced_and_me_shows_who_accepted_it() {
    let stack = stack();
    let state = stack.state("PrivacyFunction", Clock::System).await;
    let email = unique_email("oldpolicy");
    let token = stack.user_with_email(&email, &["customer"]).await.id_token;
    let user_id = sub_of(&token);
    state.keys.create_user_key(&user_id).await.expect("key");
    let mut account = domain::samples::customer(&user_id, &email);
    account.policy_version = "2025-06-01".into();
    state.store.create(&account).await.expect("account");

    // The version every other test accepts, published as significant.
    let version = json!({
        "policy_version": "2026-11-01", "effective_date": "2026-11-01", "significant": true,
        "summary": "Scheduling data and officer rosters are now described; deletion keeps tax records until their period ends."
    });
    let officer = stack.user("dpo-policy", &["privacy_officer"]).await.id_token;
    let publish = |body: Value, who: String| async move {
        call_api(
            Method::POST,
            "/v1/admin/policy-versions",
            Some(&who),
            Some(&body),
            None,
        )
        .await
    };
    assert_eq!(
        publish(version.clone(), token.clone()).await.0,
        StatusCode::FORBIDDEN
    );
    let (first, published) = publish(version.clone(), officer.clone()).await;
    assert!(
        matches!(first, StatusCode::CREATED | StatusCode::OK),
        "{first}: {published}"
    );
    let (status, _) = publish(version.clone(), officer.clone()).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "publishing the same again changes nothing"
    );
    let mut changed = version.clone();
    changed["summary"] = json!("something else");
    assert_eq!(publish(changed, officer.clone()).await.0, StatusCode::CONFLICT);
    let (status, current) = call_api(Method::GET, "/v1/privacy/policy", None, None, None).await;
    assert_eq!(
        (status, current["policy_version"].clone()),
        (StatusCode::OK, json!("2026-11-01"))
    );

    let (_, me) = call_api(Method::GET, "/v1/me", Some(&token), None, None).await;
    assert_eq!(me["policy"]["accepted_version"], "2025-06-01", "{me}");
    assert_eq!(me["policy"]["current_version"], "2026-11-01");
    assert_eq!(me["policy"]["accepted_current"], false);

    domain::policy::announce(&state, 100_000).await.expect("announce");
    if first != StatusCode::CREATED {
        // Published by an earlier run against this emulator: that announcement is over, and this
        // user signed up after it. (`cargo xtask test` always starts from a fresh emulator.)
        return;
    }
    let mail = e2e::mails_to(&email).await;
    assert!(
        mail.iter()
            .any(|m| m.contains("privacy policy is changing")
                && m.contains("Scheduling data and officer rosters")),
        "{mail:?}"
    );
}

/// Someone signed in who never registered still exercises their rights: nothing fails for want of an
/// account, and no branch key is made for them off registration's path (their export, which holds
/// only their privacy requests, is kept under the system key beside those requests).
#[tokio::test]
async fn a_user_without_an_account_can_opt_out_and_get_an_export() {
    let token = stack().user("noaccount", &["customer"]).await.id_token;
    let user_id = sub_of(&token);
    let (status, opt_out) = post(&token, json!({"type": "marketing_opt_out"}), None).await;
    assert_eq!(
        (status, opt_out["status"].clone()),
        (StatusCode::CREATED, json!("fulfilled")),
        "{opt_out}"
    );
    let (status, queued) = post(&token, json!({"type": "access"}), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let access = e2e::await_request(&token, queued["id"].as_str().expect("id")).await;
    assert_eq!(access["status"], "fulfilled", "{access}");
    assert!(
        access["result"]["export"]["items_by_type"]["privacy_request"]
            .as_u64()
            .unwrap_or(0)
            >= 1
    );
    let part = format!(
        "/v1/privacy-requests/{}/export?part=0",
        access["id"].as_str().expect("id")
    );
    let (status, _) = call_api(Method::GET, &part, Some(&token), None, None).await;
    assert_eq!(status, StatusCode::OK, "the subject downloads it");
    let state = stack().state("PrivacyFunction", Clock::System).await;
    assert!(
        !state.keys.has_user_key(&user_id).await.expect("key store"),
        "no key was created for someone who never registered"
    );
    let kept: Vec<String> = e2e::raw_items_of(&platform::keys::privacy_partition(&user_id))
        .await
        .iter()
        .filter_map(|item| item.get("sk").and_then(|sk| sk.as_s().ok()).cloned())
        .filter(|sk| sk.starts_with("EXPORT"))
        .collect();
    assert!(
        kept.iter().any(|sk| sk.starts_with("EXPORT#")) && kept.iter().any(|sk| sk.starts_with("EXPORTJOB#")),
        "the export is kept beside the requests: {kept:?}"
    );
    let (status, _) = post(&token, json!({"type": "restriction"}), None).await;
    assert_eq!(status, StatusCode::CREATED);
}

/// An export the worker builds over several slices shows, between them, that it is in progress and
/// how far it got (items read and slices spent, growing), then the manifest; the progress is gone
/// once it is fulfilled. The queue is an in-memory one here, so that this test drives the slices
/// itself (with a budget of one page each) instead of the harness's worker.
#[tokio::test]
async fn an_export_shows_its_progress_slice_by_slice_then_its_manifest() {
    use domain::privacy::jobs::{self, JobOutcome, PrivacyJob};
    let mut state = stack().state("PrivacyFunction", Clock::System).await;
    let queue = std::sync::Arc::new(platform::queue::MemoryQueue::default());
    state.jobs = queue.clone();
    let user_id = e2e::new_user(&state).await;
    state
        .store
        .create(&domain::samples::customer(&user_id, &unique_email("progress")))
        .await
        .expect("account");
    let entries = 450;
    for n in 0..entries {
        let entry = edge::access_log::AccessLogEntry {
            log_owner: user_id.clone(),
            request_id: format!("progress-{n:04}"),
            route: "GET /v1/me".into(),
            status_code: 200,
            accessed_at: Timestamp::now(),
            source_ip: Some(format!("10.2.{}.{}", n / 250, n % 250)),
        };
        state.store.create(&entry).await.expect("entry");
    }
    let subject = caller(&user_id, &[Role::Customer], Some(Timestamp::now()));
    let input = RequestInput {
        kind: RequestType::Access,
        jurisdiction: Some(Jurisdiction::Gdpr),
        customer: None,
        provider: None,
    };
    let (view, created) = requests::create(&state, &subject, input, None)
        .await
        .expect("request");
    assert!(created);
    assert_eq!(view.status, "in_progress");
    assert_eq!(queue.sent().len(), 1, "the job is queued, not run in the call");
    let job = PrivacyJob::Export {
        user_id: user_id.clone(),
        request_id: view.id.clone(),
    };
    let mut seen = Vec::new();
    loop {
        match jobs::work(&state, &job, 1).await.expect("a slice") {
            JobOutcome::Continue => {
                let now = requests::read_mine(&state, &subject, &view.id)
                    .await
                    .expect("read");
                assert_eq!(now.status, "in_progress");
                let progress = now.progress.expect("the request shows its progress");
                assert_eq!(progress.stage, "export: reading");
                seen.push((progress.slices, progress.items));
            }
            JobOutcome::Finished => break,
        }
        assert!(seen.len() < 100, "the export finishes");
    }
    println!("progress seen between slices (slices, items): {seen:?}");
    assert!(seen.len() >= 2, "several slices: {seen:?}");
    assert!(
        seen.windows(2).all(|w| w[1].0 > w[0].0 && w[1].1 >= w[0].1) && seen[seen.len() - 1].1 > seen[0].1,
        "slices and items grow: {seen:?}"
    );
    let done = requests::read_mine(&state, &subject, &view.id)
        .await
        .expect("read");
    assert_eq!(done.status, "fulfilled");
    assert!(done.progress.is_none(), "no progress once fulfilled");
    let manifest = done.result.and_then(|r| r.export).expect("the manifest");
    assert_eq!(manifest.items_by_type.get("access_log_entry"), Some(&entries));
}

#[tokio::test]
async fn nothing_is_mailed_to_a_changed_address_until_it_is_verified() {
    use aws_sdk_cognitoidentityprovider::types::AttributeType;
    let stack = stack();
    let email = e2e::unique_email("changer");
    let token = stack.user_with_email(&email, &["customer"]).await.id_token;
    let body = crate::accounts::customer_body(&email, "Ottoline Fairweather-Quist");
    let (status, account) = call_api(Method::POST, "/v1/customers", Some(&token), Some(&body), None).await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    // The address is changed in the user pool and not verified yet (a typo, or someone else's).
    let new_address = e2e::unique_email("changed");
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&stack.sdk().await);
    let pool = stack.stack.physical_id("UserPool").expect("UserPool");
    let user_id = sub_of(&token);
    let set = |verified: &'static str| {
        let (cognito, pool, username, new_address) = (
            cognito.clone(),
            pool.clone(),
            user_id.clone(),
            new_address.clone(),
        );
        async move {
            let attribute = |name: &str, value: &str| {
                AttributeType::builder()
                    .name(name)
                    .value(value)
                    .build()
                    .expect("attribute")
            };
            let mut update = cognito
                .admin_update_user_attributes()
                .user_pool_id(&pool)
                .username(&username);
            if verified == "false" {
                update = update.user_attributes(attribute("email", &new_address));
            }
            update
                .user_attributes(attribute("email_verified", verified))
                .send()
                .await
                .expect("attributes updated");
        }
    };
    set("false").await;
    let opt_out = json!({"type": "marketing_opt_out"});
    let (status, first) = call_api(
        Method::POST,
        "/v1/privacy-requests",
        Some(&token),
        Some(&opt_out),
        None,
    )
    .await;
    assert!(status.is_success(), "{first}");
    assert!(
        e2e::mails_to(&new_address).await.is_empty(),
        "nothing goes to an unverified address"
    );
    // Verified: the next receipt goes there.
    set("true").await;
    let (status, second) = call_api(
        Method::POST,
        "/v1/privacy-requests",
        Some(&token),
        Some(&opt_out),
        None,
    )
    .await;
    assert!(status.is_success(), "{second}");
    let mails = e2e::mails_to(&new_address).await;
    assert!(
        mails
            .iter()
            .any(|m| m.contains("We received your privacy request")),
        "{mails:?}"
    );
}

/// A privacy officer's view of request `id` (open or closed).
async fn officer_view(dpo: &str, id: &str) -> Value {
    for status in ["open", "closed"] {
        let (_, page) = e2e::listed(&format!("/v1/admin/privacy-requests?status={status}"), dpo).await;
        if let Some(found) = page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["id"] == id)
        {
            return found.clone();
        }
    }
    panic!("request {id} is in no list");
}

#[tokio::test]
async fn where_the_subject_lives_decides_the_legal_clock_not_what_they_claim() {
    let stack = stack();
    let dpo = stack.user("dpo-clocks", &["privacy_officer"]).await.id_token;
    // A Wyoming customer claiming the GDPR: our 30 days.
    let email = unique_email("wyoming");
    let token = stack.user_with_email(&email, &["customer"]).await.id_token;
    let body = crate::accounts::customer_body(&email, "Augustin Pellerin-Wade");
    let (status, _) = call_api(Method::POST, "/v1/customers", Some(&token), Some(&body), None).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, claimed) = post(
        &token,
        json!({"type": "restriction", "jurisdiction": "gdpr"}),
        None,
    )
    .await;
    assert!(status.is_success(), "{claimed}");
    assert_eq!(claimed["jurisdiction"], "other", "{claimed}");
    let received: Timestamp = claimed["received_at"]
        .as_str()
        .expect("received")
        .parse()
        .expect("ts");
    let due: Timestamp = claimed["due_at"].as_str().expect("due").parse().expect("ts");
    assert_eq!(due.duration_since(received).as_hours(), 30 * 24);

    // A Californian claiming nothing in particular: the CCPA's 45 days from receipt, receipt
    // confirmed within 10 business days, and the privacy officers see the clock and its basis.
    let email = unique_email("california");
    let token = stack.user_with_email(&email, &["customer"]).await.id_token;
    let mut body = crate::accounts::customer_body(&email, "Marisol Etxeberria-Lund");
    let san_francisco = json!({"line1": "500 Howard St", "city": "San Francisco", "region": "CA", "postal_code": "94105", "country": "US"});
    body["home_address"] = san_francisco.clone();
    body["mailing_address"] = san_francisco;
    let (status, account) = call_api(Method::POST, "/v1/customers", Some(&token), Some(&body), None).await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    let (status, request) = post(
        &token,
        json!({"type": "restriction", "jurisdiction": "other"}),
        None,
    )
    .await;
    assert!(status.is_success(), "{request}");
    assert_eq!(request["jurisdiction"], "ccpa", "{request}");
    let received: Timestamp = request["received_at"]
        .as_str()
        .expect("received")
        .parse()
        .expect("ts");
    let due: Timestamp = request["due_at"].as_str().expect("due").parse().expect("ts");
    assert_eq!(due.duration_since(received).as_hours(), 45 * 24);
    let seen = officer_view(&dpo, request["id"].as_str().expect("id")).await;
    assert_eq!(seen["jurisdiction"], "ccpa", "{seen}");
    assert!(
        seen["clock"]
            .as_str()
            .unwrap_or_default()
            .contains("45 days from receipt"),
        "{seen}"
    );
    let receipt_due: Timestamp = seen["receipt_due_at"]
        .as_str()
        .expect("receipt due")
        .parse()
        .expect("ts");
    assert_eq!(receipt_due, requests::add_business_days(received, 10));
}
