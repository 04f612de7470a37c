//! The two privacy policies, through the local gateway: the Security Provider privacy policy is
//! published and served apart from the Applications Privacy Policy, with its text in sections and the
//! California notice at its end; a person who is both customer and provider sees the acceptance of
//! each policy for that role.

use e2e::{call_api, stack, sub_of, unique_email};
use platform::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The version every test accepts, published (not significant: nobody is mailed) as the Security
/// Provider privacy policy with a text of its own.
fn provider_policy() -> Value {
    json!({
        "audience": "providers", "policy_version": "2026-11-01", "effective_date": "2026-11-01",
        "significant": false, "summary": "How we use the data of Security Providers.",
        "sections": [
            {"heading": "What we collect", "text": "Your licence, your W-9, your shifts and the hours you worked."},
            {"heading": "Who sees it", "text": "The agencies you apply to, and our processors."}
        ]
    })
}

#[tokio::test]
async fn the_provider_policy_is_served_apart_with_its_text_and_the_california_notice() {
    let stack = stack();
    let officer = stack.user("policyofficer", &["privacy_officer"]).await.id_token;
    let (status, published) = call_api(
        Method::POST,
        "/v1/admin/policy-versions",
        Some(&officer),
        Some(&provider_policy()),
        None,
    )
    .await;
    assert!(
        matches!(status, StatusCode::CREATED | StatusCode::OK),
        "{status}: {published}"
    );
    assert_eq!(published["audience"], "providers");

    let (status, served) = call_api(
        Method::GET,
        "/v1/privacy/policy?audience=providers",
        None,
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{served}");
    assert_eq!(served["audience"], "providers");
    let sections = served["sections"].as_array().cloned().unwrap_or_default();
    let headings: Vec<&str> = sections.iter().filter_map(|s| s["heading"].as_str()).collect();
    assert_eq!(
        headings,
        ["What we collect", "Who sees it", "California residents"],
        "{served}"
    );
    let notice = sections
        .last()
        .and_then(|s| s["text"].as_str())
        .unwrap_or_default();
    for part in [
        "Department of Consumer Affairs",
        "1625 North Market Blvd",
        "(800) 952-5210",
        &stack
            .stack
            .function_config("PrivacyFunction")
            .expect("config")
            .support_address,
    ] {
        assert!(notice.contains(part), "the notice names {part}: {notice}");
    }
    // The Users' policy is another document: whatever is in force there, it is not this one.
    let (status, users) = call_api(Method::GET, "/v1/privacy/policy", None, None, None).await;
    if status == StatusCode::OK {
        assert_ne!(users["audience"], "providers");
        assert!(users["summary"] != served["summary"], "{users}");
        let last = users["sections"]
            .as_array()
            .and_then(|s| s.last())
            .cloned()
            .unwrap_or_default();
        assert_eq!(last["heading"], "California residents", "{users}");
    } else {
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, _) = call_api(
        Method::GET,
        "/v1/privacy/policy?audience=officers",
        None,
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // A person who is both: the acceptance of each policy for its role, apart.
    let email = unique_email("bothpolicies");
    let token = stack
        .user_with_email(&email, &["customer", "provider"])
        .await
        .id_token;
    let user_id = sub_of(&token);
    let state = stack.state("RegistrationFunction", Clock::System).await;
    state.keys.create_user_key(&user_id).await.expect("key");
    let mut customer = domain::samples::customer(&user_id, &email);
    customer.policy_version = "2025-06-01".into();
    state.store.create(&customer).await.expect("customer account");
    let provider = domain::samples::provider(&user_id, &email);
    state.store.create(&provider).await.expect("provider account");
    let (status, me) = call_api(Method::GET, "/v1/me", Some(&token), None, None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["policies"]["users"]["accepted_version"], "2025-06-01", "{me}");
    assert_eq!(
        me["policies"]["providers"]["accepted_version"], "2026-11-01",
        "{me}"
    );
    assert_eq!(
        me["policies"]["providers"]["current_version"], "2026-11-01",
        "{me}"
    );
    assert_eq!(me["policies"]["providers"]["accepted_current"], true, "{me}");
    assert_eq!(me["policy"], me["policies"]["users"], "the first role's policy");
}
