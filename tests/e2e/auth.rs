//! The local gateway authorises as the HTTP API's JWT authorizer would, and hands the function the
//! claims the way API Gateway does.

use e2e::{extra_gateway, stack};
use jiff::SignedDuration;
use platform::Clock;
use reqwest::StatusCode;
use serde_json::Value;

async fn get(url: &str, token: Option<&str>) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, headers, body)
}

/// The `WWW-Authenticate` challenge, where the authorizer says why (the body only says
/// "Unauthorized").
fn challenge(headers: &reqwest::header::HeaderMap) -> &str {
    headers
        .get("www-authenticate")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

fn assert_unauthorized(status: StatusCode, headers: &reqwest::header::HeaderMap, body: &Value, reason: &str) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reason}: {body}");
    // API Gateway's JWT authorizer answers itself, before any function runs, with its own body.
    assert_eq!(headers["content-type"], "application/json", "{reason}");
    assert!(challenge(headers).starts_with("Bearer"), "{reason}: {headers:?}");
    assert_eq!(*body, serde_json::json!({"message": "Unauthorized"}), "{reason}");
}

#[tokio::test]
async fn a_valid_token_reaches_the_handler() {
    let stack = stack();
    let tokens = stack.user("ada", &["customer"]).await;
    let (status, headers, body) = get(&stack.url("/v1/me"), Some(&tokens.id_token)).await;
    // The handler ran and looked the caller up in the table: a fresh user has no account yet.
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(body["type"], "urn:officertrak:problem:not-found");
    let request_id = headers["apigw-requestid"].to_str().expect("request id");
    assert_eq!(body["instance"], format!("urn:officertrak:request:{request_id}"));
}

#[tokio::test]
async fn an_access_token_is_accepted_through_its_client_id() {
    let stack = stack();
    let tokens = stack.user("acc", &["customer"]).await;
    let (status, _, body) = get(&stack.url("/v1/service-requests"), Some(&tokens.access_token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"], Value::Array(Vec::new()));
}

#[tokio::test]
async fn no_token_or_garbage_is_401() {
    let stack = stack();
    let (status, headers, body) = get(&stack.url("/v1/me"), None).await;
    assert_unauthorized(status, &headers, &body, "no token");
    assert_eq!(challenge(&headers), "Bearer", "no token: a bare challenge");
    let (status, headers, body) = get(&stack.url("/v1/me"), Some("not-a-jwt")).await;
    assert_unauthorized(status, &headers, &body, "garbage");
}

#[tokio::test]
async fn a_token_with_a_changed_payload_is_401() {
    let stack = stack();
    let tokens = stack.user("mallory", &["customer"]).await;
    let other = stack.user("victim", &["customer"]).await;
    // Keep mallory's header and signature, put the victim's claims in the middle.
    let parts: Vec<&str> = tokens.id_token.split('.').collect();
    let victim_payload = other.id_token.split('.').nth(1).expect("payload");
    let forged = format!("{}.{}.{}", parts[0], victim_payload, parts[2]);
    let (status, headers, body) = get(&stack.url("/v1/me"), Some(&forged)).await;
    assert_unauthorized(status, &headers, &body, "forged signature");
    assert!(
        challenge(&headers).contains("invalid_token") && challenge(&headers).contains("signature"),
        "{headers:?}"
    );
}

#[tokio::test]
async fn an_unsigned_token_is_401() {
    let stack = stack();
    let tokens = stack.user("nosig", &["customer"]).await;
    let payload = tokens.id_token.split('.').nth(1).expect("payload");
    // {"alg":"none","typ":"JWT"}
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    let (status, headers, body) = get(&stack.url("/v1/me"), Some(&unsigned)).await;
    assert_unauthorized(status, &headers, &body, "alg none");
}

#[tokio::test]
async fn a_token_for_another_app_client_is_401() {
    let stack = stack();
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&stack.sdk().await);
    let pool = stack.stack.physical_id("UserPool").expect("pool");
    let other_client = cognito
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name(format!("someone-else-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .expect("second app client")
        .user_pool_client
        .and_then(|c| c.client_id)
        .expect("client id");
    let email = e2e::unique_email("aud");
    let tokens = infra::identity::sign_in(&cognito, &pool, &other_client, &email, &["customer"])
        .await
        .expect("tokens");
    let (status, headers, body) = get(&stack.url("/v1/me"), Some(&tokens.id_token)).await;
    assert_unauthorized(status, &headers, &body, "wrong audience");
    assert!(
        challenge(&headers).contains("invalid_token") && challenge(&headers).contains("audience"),
        "{headers:?}"
    );
}

#[tokio::test]
async fn a_token_from_another_user_pool_is_401() {
    let stack = stack();
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&stack.sdk().await);
    let pool = cognito
        .create_user_pool()
        .pool_name(format!("elsewhere-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .expect("another pool")
        .user_pool
        .and_then(|p| p.id)
        .expect("pool id");
    let client = cognito
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name("elsewhere")
        .send()
        .await
        .expect("client")
        .user_pool_client
        .and_then(|c| c.client_id)
        .expect("client id");
    let tokens = infra::identity::sign_in(&cognito, &pool, &client, &e2e::unique_email("iss"), &[])
        .await
        .expect("tokens");
    let (status, headers, body) = get(&stack.url("/v1/me"), Some(&tokens.id_token)).await;
    assert_unauthorized(status, &headers, &body, "wrong issuer");
    assert!(
        challenge(&headers).contains("invalid_token") && challenge(&headers).contains("issuer"),
        "{headers:?}"
    );
}

#[tokio::test]
async fn an_expired_token_is_401() {
    let stack = stack();
    let tokens = stack.user("late", &["customer"]).await;
    // A gateway whose clock is two hours ahead sees the one-hour token as expired…
    let later = Clock::fixed(
        jiff::Timestamp::now()
            .saturating_add(SignedDuration::from_hours(2))
            .expect("time"),
    );
    let api = extra_gateway(later).await;
    let (status, headers, body) = get(&format!("{api}/v1/me"), Some(&tokens.id_token)).await;
    assert_unauthorized(status, &headers, &body, "expired");
    assert!(
        challenge(&headers).contains("invalid_token") && challenge(&headers).contains("expired"),
        "{headers:?}"
    );
    // …while one on the real clock accepts the same token.
    let api = extra_gateway(Clock::System).await;
    let (status, _, body) = get(&format!("{api}/v1/me"), Some(&tokens.id_token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn a_public_route_needs_no_token() {
    let stack = stack();
    let (status, _, body) = get(&stack.url("/v1/privacy/policy"), None).await;
    // Reached the handler: the published policy, or (before the privacy tests publish one) a
    // not-found problem from the handler rather than the gateway's 401.
    match status {
        StatusCode::OK => assert!(body["policy_version"].is_string(), "{body}"),
        StatusCode::NOT_FOUND => assert_eq!(body["type"], "urn:officertrak:problem:not-found"),
        other => panic!("{other}: {body}"),
    }
}

#[tokio::test]
async fn groups_reach_the_function_as_api_gateway_flattens_them() {
    let stack = stack();
    let customer = stack.user("cust", &["customer"]).await;
    let (status, _, body) = get(
        &stack.url("/v1/providers/me/assignments"),
        Some(&customer.id_token),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["type"], "urn:officertrak:problem:forbidden");
    let both = stack.user("both", &["customer", "provider"]).await;
    let (status, _, body) = get(&stack.url("/v1/providers/me/assignments"), Some(&both.id_token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn unknown_routes_are_api_gateways_404_and_the_openapi_document_is_served() {
    let stack = stack();
    // No route matches, so no function runs: API Gateway's own answer.
    let (status, headers, body) = get(&stack.url("/v1/nothing-here"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(body, serde_json::json!({"message": "Not Found"}));
    let (status, _, body) = get(&stack.url("/openapi.json"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["openapi"], "3.1.0");
    assert!(body["paths"]["/v1/me"]["get"].is_object());
}
