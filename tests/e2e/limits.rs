//! Oversize input on every route that takes a body, as an attacker would send it: a body above
//! 64 KiB is a 413, a string above 5,000 characters or an array above 100 items a 422 naming the
//! field, through the local gateway, and none of it writes anything (the router refuses before any
//! handler runs).

use crate::scheduling::world;
use e2e::{call_api, raw_items_of, raw_partition, sub_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The sort keys of a partition's items: what was written there.
fn sort_keys(
    items: &[std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>],
) -> BTreeSet<String> {
    items
        .iter()
        .filter_map(|item| item.get("sk").and_then(|sk| sk.as_s().ok()).cloned())
        .collect()
}

#[tokio::test]
async fn every_route_with_a_body_refuses_an_oversize_body_string_or_array_and_writes_nothing() {
    let w = world(|_| {}).await;
    let customer = sub_of(&w.customer_token);
    let admin = sub_of(&w.admin_token);
    let agency_partition = platform::keys::agency_partition(&w.agency_id);
    let written = || async {
        (
            sort_keys(&raw_partition(&customer).await),
            sort_keys(&raw_partition(&admin).await),
            sort_keys(&raw_items_of(&agency_partition).await),
        )
    };
    let before = written().await;
    let contract = infra::contract::Contract::load().expect("openapi.yaml");
    let document = contract.document().clone();
    let inputs: [(&str, Value, StatusCode, Option<&str>); 3] = [
        (
            "a body above the route's cap (64 KiB; 1 MiB for a policy's text)",
            json!({"notes": "n".repeat(edge::http::MAX_LARGE_BODY_BYTES + 1024)}),
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
        ),
        (
            "a string above 5,000 characters",
            json!({"notes": "n".repeat(5_001)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("/notes"),
        ),
        (
            "an array above 100 items",
            json!({"skills": vec!["armed"; 101]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("/skills"),
        ),
    ];
    let mut routes = 0;
    for route_key in contract.route_keys() {
        let Some((method, path)) = route_key.split_once(' ') else {
            continue;
        };
        let Ok(method) = method.parse::<Method>() else {
            continue;
        };
        if ![Method::POST, Method::PUT, Method::PATCH].contains(&method) {
            continue;
        }
        let operation = &document["paths"][path][method.as_str().to_lowercase()];
        let anonymous = operation["security"] == json!([]);
        // Real ids where the caller owns them, so that a handler that did run would find its record.
        let path = path
            .replace(
                "{id}",
                if path.starts_with("/v1/agencies/") {
                    &w.agency_id
                } else {
                    &customer
                },
            )
            .replace("{agency_id}", &w.agency_id)
            .replace("{provider_id}", &customer)
            .replace("{user_id}", &customer);
        let tokens: Vec<Option<&str>> = if anonymous {
            vec![None]
        } else {
            vec![Some(w.customer_token.as_str()), Some(w.admin_token.as_str())]
        };
        routes += 1;
        for (label, body, status, pointer) in &inputs {
            for token in &tokens {
                let (got, problem) = call_api(method.clone(), &path, *token, Some(body), None).await;
                assert_eq!(got, *status, "{route_key} with {label}: {problem}");
                let expected_type = if *status == StatusCode::PAYLOAD_TOO_LARGE {
                    "urn:officertrak:problem:payload-too-large"
                } else {
                    "urn:officertrak:problem:validation"
                };
                assert_eq!(problem["type"], expected_type, "{route_key} with {label}");
                if let Some(pointer) = pointer {
                    assert!(
                        e2e::pointers(&problem).contains(*pointer),
                        "{route_key} with {label}: {problem}"
                    );
                }
            }
        }
    }
    assert!(routes >= 30, "only {routes} routes take a body");
    assert_eq!(written().await, before, "an oversize request wrote something");
    println!("{routes} routes with a body x 3 oversize inputs: each refused, nothing written");
}

/// Ids longer than any id can be, where a client puts them: in a path (404: it names nothing), in a
/// body (422 naming the field: as a key it would pass DynamoDB's key size and fail as a 500), and a
/// cursor of that size (400). Nothing of it is a 5xx.
#[tokio::test]
async fn overlong_ids_in_paths_bodies_and_cursors_are_refused_with_the_right_4xx() {
    let w = world(|_| {}).await;
    let stack = e2e::stack();
    let privacy_officer = stack.user("longidprivacy", &["privacy_officer"]).await.id_token;
    let provider = stack.user("longidprovider", &["provider"]).await.id_token;
    let long = "a".repeat(edge::http::MAX_PATH_PARAM_LEN + 1);
    let request_id = crate::scheduling::book_at(
        &w,
        crate::scheduling::next_tuesday_10() + jiff::SignedDuration::from_hours(24 * 7 * 23),
        2,
        1,
        false,
    )
    .await;
    let mut failures = Vec::new();
    let mut expect = |what: &str, expected: StatusCode, (status, body): (StatusCode, Value)| {
        if status != expected {
            failures.push(format!("{what}: {status} (expected {expected}): {body}"));
        }
    };
    for (path, token) in [
        (format!("/v1/service-requests/{long}"), &w.customer_token),
        (format!("/v1/agencies/{long}"), &w.admin_token),
        (
            format!("/v1/agencies/{}/memberships/{long}/decision", w.agency_id),
            &w.admin_token,
        ),
        (format!("/v1/privacy-requests/{long}"), &w.customer_token),
        (format!("/v1/assignments/{long}/accept"), &provider),
    ] {
        let method = if path.ends_with("/decision") || path.ends_with("/accept") {
            Method::POST
        } else {
            Method::GET
        };
        let body = path
            .ends_with("/decision")
            .then(|| json!({"decision": "approve"}));
        expect(
            &path[..40.min(path.len())],
            StatusCode::NOT_FOUND,
            call_api(method, &path, Some(token), body.as_ref(), None).await,
        );
    }
    let long_body = "b".repeat(4_000);
    expect(
        "assignment officer_user_id",
        StatusCode::UNPROCESSABLE_ENTITY,
        call_api(
            Method::POST,
            &format!("/v1/service-requests/{request_id}/assignments"),
            Some(&w.dispatcher_token),
            Some(&json!({"officer_user_id": long_body})),
            None,
        )
        .await,
    );
    let mut booking = crate::scheduling::booking_body(
        &w,
        crate::scheduling::next_tuesday_10() + jiff::SignedDuration::from_hours(24 * 7 * 23),
        2,
        1,
        false,
    );
    booking["agency_id"] = json!(long_body);
    expect(
        "booking agency_id",
        StatusCode::UNPROCESSABLE_ENTITY,
        call_api(
            Method::POST,
            "/v1/service-requests",
            Some(&w.customer_token),
            Some(&booking),
            None,
        )
        .await,
    );
    let disclosure = json!({"data_categories": ["customer_account"], "disclosed_at": "2026-11-20T10:00:00Z",
        "legal_basis": "court order", "recipient": "Sublette County Court", "recipient_category": "legal_demand",
        "reference": "CV-2026-118", "subject_user_id": long_body});
    expect(
        "disclosure subject_user_id",
        StatusCode::UNPROCESSABLE_ENTITY,
        call_api(
            Method::POST,
            "/v1/admin/disclosures",
            Some(&privacy_officer),
            Some(&disclosure),
            None,
        )
        .await,
    );
    expect(
        "cursor",
        StatusCode::BAD_REQUEST,
        call_api(
            Method::GET,
            &format!("/v1/service-requests?cursor={long_body}"),
            Some(&w.customer_token),
            None,
            None,
        )
        .await,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
