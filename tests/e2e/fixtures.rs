//! The sample events in `events/` drive the functions in-process, exactly as Lambda would deliver
//! them (the same files work with `cargo lambda invoke --data-file`).

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use aws_sdk_dynamodb::types::AttributeValue;
use e2e::{event, stack};
use lambda_http::Body;
use platform::Clock;
use serde_json::Value;

async fn invoke(function_logical_id: &str, router: edge::http::Router, file: &str) -> (u16, Value) {
    let state = stack().function_state(function_logical_id, Clock::System).await;
    let request = lambda_http::request::from_str(&event(file)).expect("a payload-2.0 event");
    let response = router.handle(&state, request).await;
    let body = match response.body() {
        Body::Text(text) => serde_json::from_str(text).expect("json"),
        _ => Value::Null,
    };
    (response.status().as_u16(), body)
}

#[tokio::test]
async fn registration_get_me() {
    let (status, body) = invoke(
        "RegistrationFunction",
        registration::router(),
        "registration-get-me.json",
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["type"], "urn:officertrak:problem:not-found");
    assert_eq!(body["instance"], "urn:officertrak:request:fixture-v1-me");
}

#[tokio::test]
async fn requests_list_mine() {
    let (status, body) = invoke("RequestsFunction", requests::router(), "requests-list-mine.json").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"], Value::Array(Vec::new()));
    assert_eq!(body["next_cursor"], Value::Null);
}

/// A Stripe event as API Gateway delivers it, with a signature that is not ours (and long stale):
/// a 400 problem, and nothing about the intent is read or changed.
#[tokio::test]
async fn requests_stripe_webhook_with_a_forged_signature_is_a_400() {
    let (status, body) = invoke(
        "RequestsFunction",
        requests::router(),
        "requests-stripe-webhook-forged.json",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["type"], "urn:officertrak:problem:bad-request");
    assert_eq!(
        body["instance"],
        "urn:officertrak:request:fixture-v1-webhooks-stripe"
    );
}

#[tokio::test]
async fn scheduling_my_assignments() {
    let (status, body) = invoke(
        "SchedulingFunction",
        scheduling::router(),
        "scheduling-my-assignments.json",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"], Value::Array(Vec::new()));
}

/// A claim by a provider who has no provider account yet: a 404 problem, nothing written.
#[tokio::test]
async fn scheduling_claim_without_an_account_is_a_404_problem() {
    let (status, body) = invoke(
        "SchedulingFunction",
        scheduling::router(),
        "scheduling-claim.json",
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["type"], "urn:officertrak:problem:not-found");
}

#[tokio::test]
async fn privacy_list_mine() {
    let (status, body) = invoke("PrivacyFunction", privacy::router(), "privacy-list-mine.json").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"], Value::Array(Vec::new()));
}

#[tokio::test]
async fn future_clock_retention_hourly_purge_finds_due_work_through_the_index() {
    let stack = stack();
    // A month no other test writes to, so the count is exact.
    let now: jiff::Timestamp = "2031-05-17T12:00:00Z".parse().expect("time");
    let state = stack.function_state("RetentionFunction", Clock::fixed(now)).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&stack.sdk().await);
    for (sk, due_at) in [
        ("overdue", now.as_second() - 60),
        ("later-today", now.as_second() + 3_600),
    ] {
        dynamodb
            .put_item()
            .table_name(&state.config.table_name)
            .item("pk", AttributeValue::S("TEST#retention-fixture".into()))
            .item("sk", AttributeValue::S(sk.into()))
            .item("due_day", AttributeValue::S("DUE#2031-05".into()))
            .item("due_at", AttributeValue::N(due_at.to_string()))
            .send()
            .await
            .expect("seed a due item");
    }
    let scheduled: CloudWatchEvent =
        serde_json::from_str(&event("retention-hourly-purge.json")).expect("a scheduled event");
    let report = retention::handle_schedule(&state, scheduled)
        .await
        .expect("purge run");
    assert_eq!(report.day, "2031-05-17");
    assert_eq!(report.due_items, 1, "only the overdue item is due now");
}

/// TTL deletions from the table's stream (the emulator never expires items, so the fixture stands in
/// for the stream): counted per type and day, with no id kept; their id pointers are deleted with
/// them; a deletion by the application is not TTL's and is left alone.
#[tokio::test]
async fn retention_ttl_stream_counts_anonymously_and_cascades() {
    use platform::store::ItemKey;
    let stack = stack();
    let state = stack.function_state("RetentionFunction", Clock::System).await;
    let pointers = [
        ItemKey::new(
            "REQUEST#3f2a9e61-8c4d-4b7e-a1f5-0d9c2b7e6a14".into(),
            "REF".into(),
        ),
        ItemKey::new(
            "ASSIGNMENT#b7c1e5a2-4d93-4e0f-9a6b-1f8d3c2e7a50".into(),
            "REF".into(),
        ),
        ItemKey::new(
            "REQUEST#9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d".into(),
            "REF".into(),
        ),
    ];
    for key in &pointers {
        state
            .store
            .raw()
            .put_item()
            .table_name(state.store.table())
            .item("pk", AttributeValue::S(key.pk.clone()))
            .item("sk", AttributeValue::S(key.sk.clone()))
            .send()
            .await
            .expect("seed a pointer");
    }
    let batch: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_str(&event("retention-ttl-stream.json")).expect("a stream event");
    let report = retention::handle_stream(&state, batch).await.expect("audit");
    assert_eq!((report.counted, report.cascaded), (2, 2), "{report:?}");
    assert!(!state.store.exists(&pointers[0]).await.expect("read"));
    assert!(!state.store.exists(&pointers[1]).await.expect("read"));
    assert!(
        state.store.exists(&pointers[2]).await.expect("read"),
        "not a TTL deletion"
    );
    let day: jiff::civil::Date = "2031-08-07".parse().expect("day");
    let metrics = jobs::ttl_audit::metrics_of(&state, day).await.expect("metrics");
    for kind in ["service_request", "assignment"] {
        assert!(metrics.iter().any(|(t, n)| t == kind && *n >= 1), "{metrics:?}");
    }
    let raw = state
        .store
        .raw()
        .query()
        .table_name(state.store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(jobs::ttl_audit::metrics_partition(day)))
        .send()
        .await
        .expect("raw metrics");
    let dump = format!("{:?}", raw.items());
    for id in ["3f2a9e61", "b7c1e5a2", "7d1b3c55", "0c9e2d41"] {
        assert!(!dump.contains(id), "a retention metric names {id}: {dump}");
    }
}

/// A handler that panics (a bug) answers its own request with a logged 500 problem; the container
/// goes on serving: the next request is answered normally.
#[tokio::test]
async fn a_panicking_handler_costs_one_request_a_500_and_nothing_else() {
    async fn broken(_: platform::AppState, _: lambda_http::Request) -> edge::http::HandlerResult {
        let empty: Vec<u8> = Vec::new();
        let index = empty.len() + 3;
        // An out-of-bounds index: the kind of bug containment is for.
        Ok(lambda_http::Response::new(Body::from(format!(
            "{}",
            empty[index]
        ))))
    }
    let router = edge::http::Router::new().route("GET /v1/me", broken);
    let (status, body) = invoke("RegistrationFunction", router, "registration-get-me.json").await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["type"], "urn:officertrak:problem:internal");
    let (status, _) = invoke(
        "RegistrationFunction",
        registration::router(),
        "registration-get-me.json",
    )
    .await;
    assert_eq!(status, 404, "still serving");
}

/// A body above the cap is refused with 413 before any handler parses it.
#[tokio::test]
async fn a_body_above_64_kib_is_a_413_and_nothing_is_parsed() {
    let state = stack().state("RegistrationFunction", Clock::System).await;
    let mut event: Value = serde_json::from_str(&event("registration-get-me.json")).expect("json");
    event["routeKey"] = Value::String("POST /v1/customers".into());
    event["requestContext"]["routeKey"] = Value::String("POST /v1/customers".into());
    event["requestContext"]["http"]["method"] = Value::String("POST".into());
    event["rawPath"] = Value::String("/v1/customers".into());
    event["requestContext"]["http"]["path"] = Value::String("/v1/customers".into());
    event["body"] = Value::String(format!("{{\"name\": \"{}\"}}", "x".repeat(70 * 1024)));
    let request = lambda_http::request::from_str(&event.to_string()).expect("a payload-2.0 event");
    let response = registration::router().handle(&state, request).await;
    assert_eq!(response.status().as_u16(), 413);
    let body: Value = match response.body() {
        Body::Text(text) => serde_json::from_str(text).expect("json"),
        other => panic!("a problem body, got {other:?}"),
    };
    assert_eq!(body["type"], "urn:officertrak:problem:payload-too-large");
}

/// A long array within the body cap (here 7,000 skills, ~56 KB) is refused by its own cap with a
/// 422, never handed to the encryption layer (whose list handling recurses per element).
#[tokio::test]
async fn an_array_longer_than_its_cap_is_a_422() {
    let stack = stack();
    let email = e2e::unique_email("longarray");
    let token = stack.user_with_email(&email, &["provider"]).await.id_token;
    let (status, account) = e2e::call_api(
        reqwest::Method::POST,
        "/v1/providers",
        Some(&token),
        Some(&crate::accounts::provider_body(&email, None)),
        None,
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{account}");
    let skills: Vec<&str> = std::iter::repeat_n("armed", 7000).collect();
    let (status, problem) = e2e::call_api(
        reqwest::Method::PATCH,
        "/v1/me/provider",
        Some(&token),
        Some(&serde_json::json!({ "skills": skills })),
        None,
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(e2e::pointers(&problem).contains("/skills"), "{problem}");
}

/// An SQS batch as Lambda delivers it to the privacy worker: a message that is not a job is dropped
/// (retrying cannot help), and a job the worker cannot do (an erasure nobody started) is reported as
/// that message's failure alone, so the queue redelivers it and, after five, dead-letters it.
#[tokio::test]
async fn privacy_worker_drops_what_is_not_a_job_and_reports_a_failing_job_alone() {
    let state = stack()
        .function_state("PrivacyWorkerFunction", Clock::System)
        .await;
    let batch: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_str(&event("privacy-worker-jobs.json")).expect("an SQS event");
    let response = privacy_worker::handle(&state, batch).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["fixture-erasure-without-a-job"]);
}
