//! Accounts through the local gateway with real tokens: registration of customers and Security
//! Providers, the minor refusal, uniqueness, idempotency, correction with audit, consent, agencies
//! and who may touch what.

use aws_sdk_dynamodb::types::AttributeValue;
use domain::accounts::{self, CustomerRegistration};
use e2e::{captured_logs, pointers, raw_partition, stack, sub_of, unique_email};
use edge::ApiError;
use edge::auth::Caller;
use platform::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

async fn call(method: Method, path: &str, token: Option<&str>, body: Option<&Value>) -> (StatusCode, Value) {
    e2e::call_api(method, path, token, body, None).await
}

fn address(tag: &str) -> Value {
    json!({"line1": format!("{tag} 12 Larkspur Row"), "city": "Pinedale", "region": "WY", "postal_code": "82941", "country": "US"})
}

pub(crate) fn customer_body(email: &str, name: &str) -> Value {
    json!({
        "kind": "business",
        "name": name,
        "phone": "+13075550177",
        "email": email,
        "date_of_birth": "1984-05-06",
        "home_address": address("Home"),
        "mailing_address": address("Mailing"),
        "business_name": "Larkspur Events LLC",
        "ein": "91-7654321",
        "policy_version": "2026-11-01",
        "marketing_consent": false
    })
}

pub(crate) fn provider_body(email: &str, agency_id: Option<&str>) -> Value {
    let mut body = json!({
        "legal_name": "Ingrid Vasquez-Holm",
        "date_of_birth": "1988-09-12",
        "phone": "+13075550133",
        "email": email,
        "home_address": address("Officer"),
        "licence": {"number": "WY-SEC-55012", "issuing_state": "WY", "kind": "armed", "expires_on": e2e::years_from_today(5)},
        "skills": ["armed", "vehicle"],
        "service_area": {"regions": ["WY-SUB"]},
        "w9": {
            "legal_name": "Ingrid Vasquez-Holm",
            "tax_classification": "individual_sole_proprietor",
            "address": address("Tax"),
            "tin_type": "ssn",
            "tin": "524-71-9034",
            "certified_at": jiff::Timestamp::now().to_string()
        },
        "policy_version": "2026-11-01"
    });
    if let Some(agency_id) = agency_id {
        body["agency"] = json!({"agency_id": agency_id, "badge_number": "B-2231", "hire_date": "2015-04-01"});
    }
    body
}

pub(crate) fn agency_body(admins: &[&str]) -> Value {
    json!({
        "agency_name": "Sublette County Sheriff",
        "time_zone": "America/Denver",
        "admin_user_ids": admins,
        "rates": {"hourly_rate_cents": 6500, "minimum_hours": 3, "holiday_multiplier_percent": 150,
                  "short_notice_multiplier_percent": 125, "short_notice_hours": 72, "vehicle_charge_cents": 2500,
                  "admin_fee_percent": 5},
        "rules": {"lead_time_hours": 48, "min_duration_hours": 2, "max_duration_hours": 12, "supervisor_required_at": 5,
                  "alcohol_minimum_officers": 2, "weekly_hour_cap": 70, "min_rest_hours": 8,
                  "default_assignment_mode": "fewest_hours", "confirmation_window_hours": 24},
        "cancellation_fees": [{"within_hours": 24, "billed_hours_per_officer": 3}],
        "holidays": ["2026-12-25"]
    })
}

async fn sent_mail_to(address: &str) -> Vec<Value> {
    let data: Value = reqwest::get(format!("{}/moto-api/data.json", stack().stack.endpoint))
        .await
        .expect("moto api")
        .json()
        .await
        .expect("json");
    data["ses"]["Message"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| {
            m["destinations"]["ToAddresses"]
                .as_array()
                .is_some_and(|to| to.iter().any(|a| a == address))
        })
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_customer_registers_reads_itself_and_is_welcomed_by_first_name() {
    let stack = stack();
    let email = unique_email("larkspur");
    let tokens = stack.user_with_email(&email, &[]).await;
    let body = customer_body(&email, "Rosalind Ashdown-Meyer");
    let (status, account) = call(Method::POST, "/v1/customers", Some(&tokens.id_token), Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    assert_eq!(account["tax_id_last4"], "4321");
    assert!(
        account.get("ein").is_none() && account.get("tax_id").is_none(),
        "no full tax id: {account}"
    );
    assert_eq!(account["status"], "active");

    let (status, me) = call(Method::GET, "/v1/me", Some(&tokens.id_token), None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["customer"]["name"], "Rosalind Ashdown-Meyer");
    assert_eq!(me["customer"]["tax_id_last4"], "4321");
    assert_eq!(me["marketing_consent"], false);
    assert_eq!(me["policy"]["accepted_version"], "2026-11-01");
    assert!(
        !me.to_string().contains("917654321"),
        "the EIN never leaves in full"
    );

    // Registration put the user in the customer group.
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&stack.sdk().await);
    let groups = cognito
        .admin_list_groups_for_user()
        .user_pool_id(stack.stack.physical_id("UserPool").expect("pool"))
        .username(sub_of(&tokens.id_token))
        .send()
        .await
        .expect("groups");
    assert!(groups.groups().iter().any(|g| g.group_name() == Some("customer")));

    // The welcome mail names the first name and nothing else personal.
    let mails = sent_mail_to(&email).await;
    assert_eq!(mails.len(), 1, "one welcome mail");
    let text = mails[0].to_string();
    assert!(text.contains("Rosalind"), "{text}");
    for personal in ["Ashdown", "+13075550177", "1984-05-06", "Larkspur Row", "4321"] {
        assert!(!text.contains(personal), "welcome mail carries {personal}");
    }
}

#[tokio::test]
async fn registering_twice_is_idempotent_for_the_same_data_and_409_otherwise() {
    let stack = stack();
    let email = unique_email("twice");
    let tokens = stack.user_with_email(&email, &[]).await;
    let body = customer_body(&email, "Tobias Wren");
    let (first_status, first) =
        call(Method::POST, "/v1/customers", Some(&tokens.id_token), Some(&body)).await;
    let (second_status, second) =
        call(Method::POST, "/v1/customers", Some(&tokens.id_token), Some(&body)).await;
    assert_eq!(
        (first_status, second_status),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    assert_eq!(first, second, "same response");
    let mut other = body.clone();
    other["phone"] = json!("+13075550999");
    let (status, problem) = call(
        Method::POST,
        "/v1/customers",
        Some(&tokens.id_token),
        Some(&other),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["type"], "urn:officertrak:problem:conflict");
}

#[tokio::test]
async fn every_invalid_field_is_named_in_one_422() {
    let stack = stack();
    let email = unique_email("invalid");
    let tokens = stack.user_with_email(&email, &[]).await;
    let mut body = customer_body("someone.else@example.com", "X");
    body["phone"] = json!("307-555-0177");
    body["mailing_address"]["country"] = json!("USA");
    body["ein"] = json!("07-1234567");
    body["policy_version"] = json!("");
    let (status, problem) = call(Method::POST, "/v1/customers", Some(&tokens.id_token), Some(&body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["type"], "urn:officertrak:problem:validation");
    let expected: BTreeSet<String> = [
        "/phone",
        "/email",
        "/mailing_address/country",
        "/ein",
        "/policy_version",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(pointers(&problem), expected, "{problem}");
    assert!(
        !problem.to_string().contains("307-555-0177"),
        "problems never echo values"
    );

    // Shape errors are 422 with the field's pointer too; broken JSON is 400.
    let mut missing = customer_body(&email, "Y");
    missing.as_object_mut().expect("object").remove("name");
    let (status, problem) = call(
        Method::POST,
        "/v1/customers",
        Some(&tokens.id_token),
        Some(&missing),
    )
    .await;
    assert_eq!(
        (status, pointers(&problem)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            BTreeSet::from(["/name".to_owned()])
        )
    );
    let mut unknown = customer_body(&email, "Y");
    unknown["card_number"] = json!("4111 1111 1111 1111");
    let (status, problem) = call(
        Method::POST,
        "/v1/customers",
        Some(&tokens.id_token),
        Some(&unknown),
    )
    .await;
    assert_eq!(
        (status, pointers(&problem)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            BTreeSet::from(["/card_number".to_owned()])
        )
    );
    let mut business_without_ein = customer_body(&email, "Y");
    business_without_ein
        .as_object_mut()
        .expect("object")
        .remove("ein");
    business_without_ein
        .as_object_mut()
        .expect("object")
        .remove("home_address");
    business_without_ein
        .as_object_mut()
        .expect("object")
        .remove("mailing_address");
    let (status, problem) = call(
        Method::POST,
        "/v1/customers",
        Some(&tokens.id_token),
        Some(&business_without_ein),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        pointers(&problem),
        BTreeSet::from(["/ein".to_owned(), "/mailing_address".to_owned()])
    );
    let response = reqwest::Client::new()
        .post(stack.url("/v1/customers"))
        .bearer_auth(&tokens.id_token)
        .header("content-type", "application/json")
        .body("{\"kind\": ")
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // Nothing was stored by any of these.
    assert!(raw_partition(&sub_of(&tokens.id_token)).await.is_empty());
}

#[tokio::test]
async fn a_minor_is_refused_and_nothing_of_the_request_is_stored_or_logged() {
    let stack = stack();
    let email = unique_email("minor");
    let tokens = stack.user_with_email(&email, &[]).await;
    let today = edge::validation::today(jiff::Timestamp::now());
    let birth = today
        .checked_sub(jiff::ToSpan::years(17))
        .expect("date")
        .to_string();
    let mut body = customer_body(&email, "Juniper Kestrel-Abernathy");
    body["date_of_birth"] = json!(birth);
    body["phone"] = json!("+13075550188");
    let (status, problem) = call(Method::POST, "/v1/customers", Some(&tokens.id_token), Some(&body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(pointers(&problem), BTreeSet::from(["/date_of_birth".to_owned()]));
    assert!(problem.to_string().contains("18"), "{problem}");
    assert!(!problem.to_string().contains(&birth));

    // The table holds nothing of the user, not even the e-mail lock.
    let user = sub_of(&tokens.id_token);
    assert!(raw_partition(&user).await.is_empty());
    let state = stack.state("RegistrationFunction", Clock::System).await;
    let hash = state.lookup.email_hash(&email).await.expect("hash");
    let lock = state
        .store
        .get::<domain::accounts::EmailLock>(&domain::accounts::EmailLock::key_for("customer", &hash))
        .await;
    assert!(matches!(lock, Ok(None)), "{lock:?}");
    // The logs saw the request (so they are being captured) but none of its values.
    let logs = captured_logs();
    assert!(
        logs.contains("POST /v1/customers") && logs.contains("\"status\":422"),
        "logs are captured"
    );
    for value in [
        birth.as_str(),
        "Juniper",
        "Kestrel",
        "+13075550188",
        email.as_str(),
        "Larkspur Row",
    ] {
        assert!(!logs.contains(value), "{value} reached the logs");
    }
    // And no welcome mail went out.
    assert!(sent_mail_to(&email).await.is_empty());
}

#[tokio::test]
async fn concurrent_registrations_with_one_email_let_exactly_one_win() {
    let stack = stack();
    let state = stack.state("RegistrationFunction", Clock::System).await;
    let email = unique_email("race");
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let state = state.clone();
        let email = email.clone();
        attempts.spawn(async move {
            // Eight different users claim to hold the same verified address (only possible if the
            // user pool let it happen): the lock must still let one account have it.
            let caller = Caller {
                user_id: uuid::Uuid::new_v4().to_string(),
                username: None,
                email: Some(email.clone()),
                email_verified: true,
                roles: BTreeSet::from([edge::auth::Role::Customer]),
                auth_time: None,
            };
            let input: CustomerRegistration =
                serde_json::from_value(customer_body(&email, "Race Runner")).expect("input");
            accounts::register_customer(&state, &caller, input).await
        });
    }
    let mut won = 0;
    let mut conflicts = 0;
    while let Some(result) = attempts.join_next().await {
        match result.expect("task") {
            Ok(registered) => {
                assert!(registered.created);
                won += 1;
            }
            Err(ApiError::Conflict(message)) => {
                assert!(message.contains("e-mail"), "{message}");
                conflicts += 1;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((won, conflicts), (1, 7));
}

#[tokio::test]
async fn a_registered_account_is_not_stored_in_plaintext() {
    let stack = stack();
    let email = unique_email("rawcheck");
    let tokens = stack.user_with_email(&email, &[]).await;
    let body = customer_body(&email, "Cordelia Pemberton-Vance");
    let (status, _) = call(Method::POST, "/v1/customers", Some(&tokens.id_token), Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED);
    let items = raw_partition(&sub_of(&tokens.id_token)).await;
    assert!(!items.is_empty());
    let dump = format!("{items:?}").to_lowercase();
    for value in [
        "cordelia",
        "pemberton",
        "+13075550177",
        &email.to_lowercase(),
        "1984-05-06",
        "larkspur row",
        "917654321",
        "larkspur events",
    ] {
        assert!(!dump.contains(value), "{value} is stored in plaintext");
    }
}

#[tokio::test]
async fn a_provider_registers_with_licence_agency_and_w9() {
    let stack = stack();
    let ops = stack.user("ops", &["ops"]).await;
    let (status, agency) = call(
        Method::POST,
        "/v1/agencies",
        Some(&ops.id_token),
        Some(&agency_body(&["admin-1"])),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{agency}");
    let agency_id = agency["agency_id"].as_str().expect("id").to_owned();

    let email = unique_email("ingrid");
    let tokens = stack.user_with_email(&email, &[]).await;
    let (status, account) = call(
        Method::POST,
        "/v1/providers",
        Some(&tokens.id_token),
        Some(&provider_body(&email, Some(&agency_id))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    assert_eq!(account["tax_id_last4"], "9034");
    assert_eq!(account["tin_type"], "ssn");
    // Naming an agency is an application, not a membership: it starts pending.
    assert_eq!(
        account["memberships"][0]["agency_id"],
        agency_id.as_str(),
        "{account}"
    );
    assert_eq!(account["memberships"][0]["status"], "pending");
    assert!(!account.to_string().contains("524719034") && !account.to_string().contains("524-71"));
    let (status, me) = call(Method::GET, "/v1/me", Some(&tokens.id_token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["provider"]["licence"]["number"], "WY-SEC-55012");
    assert!(me.get("customer").is_none());
    let items = raw_partition(&sub_of(&tokens.id_token)).await;
    let dump = format!("{items:?}");
    for value in ["524719034", "Vasquez", "WY-SEC-55012", "B-2231"] {
        assert!(!dump.contains(value), "{value} is stored in plaintext");
    }
    assert!(
        items
            .iter()
            .any(|i| matches!(i.get("item_type"), Some(AttributeValue::S(t)) if t == "w9_record"))
    );
}

#[tokio::test]
async fn a_provider_with_an_expired_licence_a_bad_tin_or_an_unknown_agency_is_refused() {
    let stack = stack();
    let email = unique_email("expired");
    let tokens = stack.user_with_email(&email, &[]).await;
    let mut body = provider_body(&email, Some("no-such-agency"));
    body["licence"]["expires_on"] = json!("2020-01-31");
    body["w9"]["tin"] = json!("666-12-3456");
    let (status, problem) = call(Method::POST, "/v1/providers", Some(&tokens.id_token), Some(&body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        pointers(&problem),
        ["/licence/expires_on", "/w9/tin", "/agency/agency_id"]
            .into_iter()
            .map(str::to_owned)
            .collect::<BTreeSet<_>>()
    );
    assert!(raw_partition(&sub_of(&tokens.id_token)).await.is_empty());
}

#[tokio::test]
async fn corrections_are_applied_and_audited_by_field_name_only() {
    let stack = stack();
    let email = unique_email("correct");
    let tokens = stack.user_with_email(&email, &[]).await;
    let (status, _) = call(
        Method::POST,
        "/v1/customers",
        Some(&tokens.id_token),
        Some(&customer_body(&email, "Nadia Brook")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let patch = json!({"phone": "+13075550123", "name": "Nadia Brook"});
    let (status, account) = call(
        Method::PATCH,
        "/v1/me/customer",
        Some(&tokens.id_token),
        Some(&patch),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{account}");
    assert_eq!(account["phone"], "+13075550123");

    let user = sub_of(&tokens.id_token);
    let state = stack.state("RegistrationFunction", Clock::System).await;
    let trail = domain::audit::trail(&state.store, &user).await.expect("audit");
    assert_eq!(trail.len(), 1);
    assert_eq!(
        (trail[0].action.as_str(), trail[0].fields.clone()),
        ("customer.corrected", vec!["phone".to_owned()])
    );
    assert_eq!(trail[0].actor_user_id, user);
    let dump = format!("{:?}", raw_partition(&user).await);
    assert!(
        !dump.contains("+13075550123") && !dump.contains("13075550177"),
        "no value in the audit or anywhere"
    );

    // A new e-mail must be verified first (it must be the sign-in address).
    let (status, problem) = call(
        Method::PATCH,
        "/v1/me/customer",
        Some(&tokens.id_token),
        Some(&json!({"email": "new.address@example.com"})),
    )
    .await;
    assert_eq!(
        (status, pointers(&problem)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            BTreeSet::from(["/email".to_owned()])
        )
    );
    // A correction that would make the user a minor is refused like a registration.
    let (status, problem) = call(
        Method::PATCH,
        "/v1/me/customer",
        Some(&tokens.id_token),
        Some(&json!({"date_of_birth": "2015-01-01"})),
    )
    .await;
    assert_eq!(
        (status, pointers(&problem)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            BTreeSet::from(["/date_of_birth".to_owned()])
        )
    );
    // Without a customer account there is nothing to correct.
    let stranger = stack.user("stranger", &[]).await;
    let (status, _) = call(
        Method::PATCH,
        "/v1/me/customer",
        Some(&stranger.id_token),
        Some(&patch),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn consent_changes_are_kept_and_the_newest_is_in_force() {
    let stack = stack();
    let email = unique_email("consent");
    let tokens = stack.user_with_email(&email, &[]).await;
    let (status, _) = call(
        Method::POST,
        "/v1/customers",
        Some(&tokens.id_token),
        Some(&customer_body(&email, "Odile Marsh")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, consent) = call(
        Method::POST,
        "/v1/me/consents",
        Some(&tokens.id_token),
        Some(&json!({"marketing": true, "source": "app"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{consent}");
    assert_eq!(
        (consent["marketing"].clone(), consent["policy_version"].clone()),
        (json!(true), json!("2026-11-01"))
    );
    let (_, me) = call(Method::GET, "/v1/me", Some(&tokens.id_token), None).await;
    assert_eq!(me["marketing_consent"], true);
    let (status, _) = call(
        Method::POST,
        "/v1/me/consents",
        Some(&tokens.id_token),
        Some(&json!({"marketing": false, "source": "web"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, me) = call(Method::GET, "/v1/me", Some(&tokens.id_token), None).await;
    assert_eq!(me["marketing_consent"], false);
    let state = stack.state("RegistrationFunction", Clock::System).await;
    let history = domain::consent::history(&state.store, &sub_of(&tokens.id_token))
        .await
        .expect("history");
    let decisions: Vec<(bool, domain::consent::ConsentSource)> =
        history.iter().map(|c| (c.granted, c.source)).collect();
    use domain::consent::ConsentSource::*;
    assert_eq!(decisions, vec![(false, Registration), (true, App), (false, Web)]);
}

#[tokio::test]
async fn only_ops_create_agencies_and_only_their_admins_read_or_change_them() {
    let stack = stack();
    let ops = stack.user("ops", &["ops"]).await;
    let admin = stack.user("admin", &["agency_admin"]).await;
    let other_admin = stack.user("other-admin", &["agency_admin"]).await;
    let provider = stack.user("prov", &["provider"]).await;
    let customer = stack.user("cust", &["customer"]).await;
    let admin_id = sub_of(&admin.id_token);

    for (who, token) in [
        ("provider", &provider),
        ("customer", &customer),
        ("admin", &admin),
    ] {
        let (status, _) = call(
            Method::POST,
            "/v1/agencies",
            Some(&token.id_token),
            Some(&agency_body(&[&admin_id])),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who} creating an agency");
    }
    let (status, agency) = call(
        Method::POST,
        "/v1/agencies",
        Some(&ops.id_token),
        Some(&agency_body(&[&admin_id])),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{agency}");
    let path = format!("/v1/agencies/{}", agency["agency_id"].as_str().expect("id"));

    let (status, read) = call(Method::GET, &path, Some(&admin.id_token), None).await;
    assert_eq!(
        (status, read["rates"]["hourly_rate_cents"].clone()),
        (StatusCode::OK, json!(6500))
    );
    assert_eq!(
        call(Method::GET, &path, Some(&provider.id_token), None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(Method::GET, &path, Some(&customer.id_token), None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(Method::GET, &path, Some(&other_admin.id_token), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    let mut changed = agency_body(&[&admin_id]);
    changed["rates"]["hourly_rate_cents"] = json!(7200);
    let (status, updated) = call(Method::PUT, &path, Some(&admin.id_token), Some(&changed)).await;
    assert_eq!(
        (status, updated["rates"]["hourly_rate_cents"].clone()),
        (StatusCode::OK, json!(7200))
    );
    assert_eq!(
        call(Method::PUT, &path, Some(&other_admin.id_token), Some(&changed))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(Method::PUT, &path, Some(&provider.id_token), Some(&changed))
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    let mut invalid = agency_body(&[]);
    invalid["rates"]["holiday_multiplier_percent"] = json!(20);
    invalid["time_zone"] = json!("Mars/Olympus");
    let (status, problem) = call(Method::POST, "/v1/agencies", Some(&ops.id_token), Some(&invalid)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        pointers(&problem),
        [
            "/admin_user_ids",
            "/rates/holiday_multiplier_percent",
            "/time_zone"
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<BTreeSet<_>>()
    );
    let mut float_money = agency_body(&[&admin_id]);
    float_money["rates"]["hourly_rate_cents"] = json!(65.5);
    let (status, problem) = call(
        Method::POST,
        "/v1/agencies",
        Some(&ops.id_token),
        Some(&float_money),
    )
    .await;
    assert_eq!(
        (status, pointers(&problem)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            BTreeSet::from(["/rates/hourly_rate_cents".to_owned()])
        )
    );
}

#[tokio::test]
async fn nobody_reads_another_users_account() {
    let stack = stack();
    let email = unique_email("owner");
    let owner = stack.user_with_email(&email, &[]).await;
    let (status, _) = call(
        Method::POST,
        "/v1/customers",
        Some(&owner.id_token),
        Some(&customer_body(&email, "Priya Lindqvist")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let other = stack.user("other", &["customer"]).await;
    let (status, body) = call(Method::GET, "/v1/me", Some(&other.id_token), None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another user sees only their own (absent) account: {body}"
    );
    assert!(!body.to_string().contains("Priya"));
    // A body cannot name whose account to change: unknown fields are refused.
    let (status, problem) = call(
        Method::PATCH,
        "/v1/me/customer",
        Some(&other.id_token),
        Some(&json!({"user_id": sub_of(&owner.id_token), "phone": "+13075550100"})),
    )
    .await;
    assert_eq!(
        (status, pointers(&problem)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            BTreeSet::from(["/user_id".to_owned()])
        )
    );
    let (_, me) = call(Method::GET, "/v1/me", Some(&owner.id_token), None).await;
    assert_eq!(me["customer"]["phone"], "+13075550177");
}

/// A W-9's date starts its 7-year retention: one dated before the person signed up (which would end
/// the retention early) or in the future is refused, and nothing is stored.
#[tokio::test]
async fn a_w9_certified_before_sign_up_or_in_the_future_is_refused() {
    let stack = stack();
    let future = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(48)).to_string();
    for (label, certified_at) in [
        ("w9-past", "2019-06-01T10:00:00Z".to_owned()),
        ("w9-future", future),
    ] {
        let email = unique_email(label);
        let tokens = stack.user_with_email(&email, &[]).await;
        let mut body = provider_body(&email, None);
        body["w9"]["certified_at"] = json!(certified_at);
        let (status, problem) =
            call(Method::POST, "/v1/providers", Some(&tokens.id_token), Some(&body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{label}: {problem}");
        assert_eq!(
            pointers(&problem),
            BTreeSet::from(["/w9/certified_at".to_owned()]),
            "{label}"
        );
        assert!(
            raw_partition(&sub_of(&tokens.id_token)).await.is_empty(),
            "{label}"
        );
    }
}

/// Agency rates have upper bounds ($10,000.00 an hour or per vehicle, multipliers at most 500 %), so
/// no bounded booking can overflow the price arithmetic; the bounds themselves are accepted.
#[tokio::test]
async fn agency_rates_are_bounded() {
    let stack = stack();
    let ops = stack.user("ops-rates", &["ops"]).await;
    let mut body = agency_body(&["admin-1"]);
    body["rates"]["hourly_rate_cents"] = json!(1_000_001);
    body["rates"]["vehicle_charge_cents"] = json!(1_000_001);
    body["rates"]["holiday_multiplier_percent"] = json!(501);
    let (status, problem) = call(Method::POST, "/v1/agencies", Some(&ops.id_token), Some(&body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        pointers(&problem),
        [
            "/rates/hourly_rate_cents",
            "/rates/vehicle_charge_cents",
            "/rates/holiday_multiplier_percent"
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<BTreeSet<_>>()
    );
    body["rates"]["hourly_rate_cents"] = json!(1_000_000);
    body["rates"]["vehicle_charge_cents"] = json!(1_000_000);
    body["rates"]["holiday_multiplier_percent"] = json!(500);
    let (status, agency) = call(Method::POST, "/v1/agencies", Some(&ops.id_token), Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{agency}");
}
