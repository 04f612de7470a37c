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
            "a body above 64 KiB",
            json!({"notes": "n".repeat(70 * 1024)}),
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
