//! Regression tests for what schemathesis found (the "fuzzing the contract" step of `cargo xtask
//! test`, see README.md): each test is the smallest request that once answered 5xx or broke the
//! document, and the answer it gets now.

use crate::scheduling::{always, call, officer_with, world};
use e2e::{call_api, pointers, stack, sub_of, unique_email};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Found with a customer token whose user never registered: the inquiry was to be sealed with the
/// user's own key, which only registration creates, and the missing key surfaced as a 500.
#[tokio::test]
async fn a_signed_in_user_without_an_account_gets_404_for_an_inquiry_and_nothing_is_kept() {
    let token = stack().user("never-registered", &["customer"]).await.id_token;
    let inquiry = json!({"topic": "billing", "message": "Ask about the regatta bill"});
    let (status, problem) = call_api(
        Method::POST,
        "/v1/me/support/inquiries",
        Some(&token),
        Some(&inquiry),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    assert_eq!(problem["type"], "urn:officertrak:problem:not-found");
    assert_eq!(problem["detail"], "account not found");
    // What the answer advises works: the same person writes anonymously, giving an address.
    let anonymous = json!({
        "topic": "account", "message": "I cannot register",
        "email": "never-registered@example.com", "name": "Ada Quill"
    });
    let (status, receipt) = call_api(
        Method::POST,
        "/v1/support/inquiries",
        None,
        Some(&anonymous),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{receipt}");
}

/// Found anonymously: serde reads a struct from a JSON array, so `[null, null]` was a 204.
#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_422() {
    for body in [json!([null, null]), json!(["client", "event"]), json!(7)] {
        let (status, problem) = call_api(Method::POST, "/v1/telemetry", None, Some(&body), None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {problem}");
        assert!(pointers(&problem).contains(""), "{problem}");
    }
}

/// Found as a customer, a provider and ops: an optional field sent as `null` was taken as left out
/// (a deletion request with `"provider": null` started an erasure), though the document allows no
/// null there. Now every such body is a 422 naming the field, and nothing is started.
#[tokio::test]
async fn a_null_field_is_422_naming_it_and_starts_nothing() {
    let stack = stack();
    let email = unique_email("nullfield");
    let token = stack.user_with_email(&email, &["customer"]).await.id_token;
    let account = crate::accounts::customer_body(&email, "Perpetua Null-Oyelaran");
    let (status, body) = call_api(Method::POST, "/v1/customers", Some(&token), Some(&account), None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let request = json!({"type": "deletion", "jurisdiction": "ccpa", "customer": {}, "provider": null});
    let (status, problem) = call_api(
        Method::POST,
        "/v1/privacy-requests",
        Some(&token),
        Some(&request),
        Some(&uuid::Uuid::new_v4().to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(pointers(&problem).contains("/provider"), "{problem}");
    let (status, mine) = call_api(Method::GET, "/v1/privacy-requests", Some(&token), None, None).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine["items"], json!([]), "no erasure was started: {mine}");
    let (status, me) = call_api(Method::GET, "/v1/me", Some(&token), None, None).await;
    assert_eq!(status, StatusCode::OK, "the account is still there: {me}");
}

/// Found as a provider: an exception on a past date was dropped before it was checked, so five
/// windows (the cap is four) on it were a 200. Every exception's shape is checked first now.
#[tokio::test]
async fn availability_checks_every_exception_before_dropping_past_ones() {
    let w = world(|_| {}).await;
    let email = unique_email("pastexception");
    let token = stack().user_with_email(&email, &["provider"]).await.id_token;
    officer_with(&w, Some(sub_of(&token)), email, always(), |_| {}).await;
    let window = json!({"start": "00:00", "end": "00:30"});
    let body = json!({
        "weekly": [{"day": "monday", "windows": [{"start": "08:00", "end": "20:00"}]}],
        "exceptions": [{"date": "2000-01-01", "windows": [window, window, window, window, window]}]
    });
    let (status, problem) = call(Method::PUT, "/v1/providers/me/availability", &token, Some(&body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(pointers(&problem).contains("/exceptions/0/windows"), "{problem}");
    // A past exception with a sound shape is still history, not an error: a client may PUT back
    // what it read.
    let body = json!({
        "weekly": [{"day": "monday", "windows": [{"start": "08:00", "end": "20:00"}]}],
        "exceptions": [{"date": "2000-01-01", "windows": []}]
    });
    let (status, kept) = call(Method::PUT, "/v1/providers/me/availability", &token, Some(&body)).await;
    assert_eq!(status, StatusCode::OK, "{kept}");
    assert_eq!(kept["exceptions"], json!([]));
    assert!(
        kept.get("time_zone").is_none(),
        "an omitted zone is left out, not null: {kept}"
    );
    // The one null the document allows: earlier answers said "the agency's zone" so.
    let mut read_back = kept.clone();
    read_back["time_zone"] = Value::Null;
    let (status, again) = call(
        Method::PUT,
        "/v1/providers/me/availability",
        &token,
        Some(&read_back),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{again}");
}

/// Found by the coverage phase: the booking and privacy-request routes honour `Idempotency-Key` in
/// the domain, which checked the key only on the paths that used it; a second deletion request with a
/// key outside the document's pattern (a space in it) answered 200. Every keyed route now checks the
/// key in one place first: 400, and nothing is created.
#[tokio::test]
async fn a_malformed_idempotency_key_is_a_400_on_every_keyed_route_before_anything_is_done() {
    let token = stack().user("badkey", &["customer"]).await.id_token;
    let user_id = sub_of(&token);
    let held = || async {
        e2e::raw_partition(&user_id).await.len()
            + e2e::raw_items_of(&platform::keys::privacy_partition(&user_id))
                .await
                .len()
    };
    let before = held().await;
    for key in ["two words", "tab\tkey", ""] {
        for (path, body) in [
            (
                "/v1/privacy-requests",
                json!({"type": "deletion", "jurisdiction": "ccpa"}),
            ),
            ("/v1/privacy-requests", json!({"type": "marketing_opt_out"})),
            ("/v1/service-requests", json!({})),
            ("/v1/me/consents", json!({"marketing": true, "source": "app"})),
        ] {
            let response = reqwest::Client::new()
                .post(stack().url(path))
                .bearer_auth(&token)
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .expect("the gateway answers");
            let status = response.status();
            let problem: Value = response.json().await.unwrap_or(Value::Null);
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} with {key:?}: {problem}");
            assert_eq!(
                problem["type"], "urn:officertrak:problem:bad-request",
                "{problem}"
            );
        }
    }
    assert_eq!(held().await, before, "nothing was created");
}
