//! No personal data in logs, errors or headers, over one whole life through the local gateway: a
//! customer and a provider register, the provider is approved by the agency and offers availability,
//! the customer books, the agency approves, a dispatcher places the provider, who checks in and out;
//! both correct their data, the customer exports it and is deleted. Along the way some calls are
//! wrong on purpose, with personal values in the bad field. Every log line of the run (the gateway's,
//! the functions' and the privacy worker's, captured in the production JSON format), every response
//! header and every error body is then searched for each personal value used.

use crate::accounts::customer_body;
use crate::scheduling::{next_tuesday_10, world};
use e2e::{captured_logs, stack, sub_of, unique_email};
use jiff::SignedDuration;
use platform::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// What the scenario saw: every response header (name: value) and every error body.
#[derive(Default)]
struct Seen {
    headers: Vec<String>,
    error_bodies: Vec<String>,
    calls: usize,
}

impl Seen {
    /// One call to the gateway at `base`; records its headers, and its body when it is an error.
    async fn call(
        &mut self,
        base: &str,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = reqwest::Client::new().request(method, format!("{base}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("the gateway answers");
        let status = response.status();
        for (name, value) in response.headers() {
            self.headers
                .push(format!("{name}: {}", String::from_utf8_lossy(value.as_bytes())));
        }
        let text = response.text().await.expect("a body");
        if !status.is_success() {
            self.error_bodies.push(text.clone());
        }
        self.calls += 1;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// `POST /v1/assignments/{id}/{action}` by `officer` as API Gateway delivers it at `at` (the
/// sample event `events/scheduling-claim.json`, re-addressed), handled by the scheduling function's
/// router on a clock at `at`; returns the status and the body as text.
async fn act_at(
    at: jiff::Timestamp,
    officer: &str,
    email: &str,
    assignment_id: &str,
    action: &str,
) -> (u16, String) {
    let mut event: Value = serde_json::from_str(&e2e::event("scheduling-claim.json")).expect("json");
    let route = format!("POST /v1/assignments/{{id}}/{action}");
    let path = format!("/v1/assignments/{assignment_id}/{action}");
    event["routeKey"] = json!(route);
    event["rawPath"] = json!(path);
    event["pathParameters"] = json!({"id": assignment_id});
    let context = &mut event["requestContext"];
    context["routeKey"] = json!(route);
    context["http"]["path"] = json!(path);
    context["requestId"] = json!(format!("pii-scenario-{action}"));
    let claims = &mut context["authorizer"]["jwt"]["claims"];
    claims["sub"] = json!(officer);
    claims["email"] = json!(email);
    claims["auth_time"] = json!(at.as_second().to_string());
    claims["iat"] = json!(at.as_second().to_string());
    claims["exp"] = json!((at.as_second() + 3600).to_string());
    let request = lambda_http::request::from_str(&event.to_string()).expect("a payload-2.0 event");
    let state = stack()
        .function_state("SchedulingFunction", Clock::fixed(at))
        .await;
    let response = scheduling::router().handle(&state, request).await;
    let body = match response.body() {
        lambda_http::Body::Text(text) => text.clone(),
        _ => String::new(),
    };
    (response.status().as_u16(), body)
}

fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

#[tokio::test]
async fn a_whole_scenario_leaves_no_personal_value_in_any_log_line_header_or_error_body() {
    let stack = stack();
    let api = stack.api.clone();
    let w = world(|rules| rules.approve_requests = true).await;
    let mut seen = Seen::default();
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let number = |prefix: &str, width: usize| {
        let n = u64::from_str_radix(tag, 16).unwrap_or(0);
        format!("{prefix}{:0width$}", n % 10u64.pow(width as u32))
    };

    // The customer registers (a refused attempt first: under 18, with every value in the body).
    let customer_email = unique_email("piicustomer");
    let customer = stack
        .user_with_email(&customer_email, &["customer"])
        .await
        .id_token;
    let customer_name = format!("Quillon Marchetti-Vance {tag}");
    let customer_phone = number("+1307559", 4);
    let customer_ein = format!("93-{}", number("", 7));
    let mut registration = customer_body(&customer_email, &customer_name);
    registration["phone"] = json!(customer_phone);
    registration["ein"] = json!(customer_ein);
    registration["business_name"] = json!(format!("Zephyrine Hollow Events {tag}"));
    registration["home_address"]["line1"] = json!(format!("77 Zephyrine Hollow Rd {tag}"));
    registration["mailing_address"]["line1"] = json!(format!("PO Box {tag} Quillfeather"));
    let mut minor = registration.clone();
    let seventeen = edge::validation::today(jiff::Timestamp::now())
        .checked_sub(jiff::ToSpan::years(17))
        .expect("a date");
    minor["date_of_birth"] = json!(seventeen.to_string());
    let (status, problem) = seen
        .call(&api, Method::POST, "/v1/customers", Some(&customer), Some(&minor))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let mut bad_phone = registration.clone();
    bad_phone["phone"] = json!(format!("{customer_name} call me"));
    let (status, problem) = seen
        .call(
            &api,
            Method::POST,
            "/v1/customers",
            Some(&customer),
            Some(&bad_phone),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (status, account) = seen
        .call(
            &api,
            Method::POST,
            "/v1/customers",
            Some(&customer),
            Some(&registration),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{account}");

    // The provider registers with the agency, which approves them; they offer every hour.
    let provider_email = unique_email("piiprovider");
    let provider = stack
        .user_with_email(&provider_email, &["provider"])
        .await
        .id_token;
    let provider_name = format!("Ysolde Brannigan-Okafor {tag}");
    let provider_phone = number("+1307558", 4);
    let tin = format!("5{}-{}-{}", &number("", 2), &number("", 2), &number("", 4));
    let licence = format!("WY-SEC-{tag}");
    let badge = format!("B-{tag}");
    let mut application = crate::accounts::provider_body(&provider_email, Some(&w.agency_id));
    application["legal_name"] = json!(provider_name);
    application["phone"] = json!(provider_phone);
    application["home_address"]["line1"] = json!(format!("3 Brannigan Spur {tag}"));
    application["licence"]["number"] = json!(licence);
    application["agency"]["badge_number"] = json!(badge);
    application["w9"]["legal_name"] = json!(provider_name);
    application["w9"]["tin"] = json!(tin);
    application["w9"]["address"]["line1"] = json!(format!("9 Okafor Tax Ln {tag}"));
    let (status, account) = seen
        .call(
            &api,
            Method::POST,
            "/v1/providers",
            Some(&provider),
            Some(&application),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    let provider_id = sub_of(&provider);
    let (status, decided) = seen
        .call(
            &api,
            Method::POST,
            &format!("/v1/agencies/{}/memberships/{provider_id}/decision", w.agency_id),
            Some(&w.admin_token),
            Some(&json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    let every_hour: Vec<Value> = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
    .iter()
    .map(|day| json!({"day": day, "windows": [{"start": "00:00", "end": "24:00"}]}))
    .collect();
    let (status, offered) = seen
        .call(
            &api,
            Method::PUT,
            "/v1/providers/me/availability",
            Some(&provider),
            Some(&json!({"weekly": every_hour, "exceptions": []})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{offered}");

    // The customer books (far ahead, so no other test's scheduled run touches it); the agency
    // approves; the dispatcher places the provider.
    let start = next_tuesday_10() + SignedDuration::from_hours(24 * 7 * 24);
    let contact_name = format!("Araminta Quiller {tag}");
    let contact_phone = number("+1307557", 4);
    let notes = format!("Gate code {tag}, ask for Araminta Quiller");
    let booking = json!({
        "agency_id": w.agency_id,
        "event": {"name": "Pinedale Rodeo Night", "kind": "rodeo", "alcohol_served": false},
        "site": {"name": "Sublette County Fairgrounds", "address": {"line1": format!("1 Quiller Arena Way {tag}"), "city": "Pinedale",
                 "region": "WY", "postal_code": "82941", "country": "US"},
                 "contact": {"name": contact_name, "phone": contact_phone}},
        "starts_at": crate::scheduling::local(start),
        "ends_at": crate::scheduling::local(start + SignedDuration::from_hours(2)),
        "time_zone": "America/Denver",
        "officers": 1,
        "notes": notes,
        "requirements": {"armed": false, "attire": "uniformed", "vehicle": false, "supervisor": false},
        "payment": {"processor_token": "pm_card_visa", "card_brand": "visa", "card_last4": "4242"}
    });
    let mut card_number = booking.clone();
    card_number["payment"]["processor_token"] = json!("4242424242424242");
    let (status, problem) = seen
        .call(
            &api,
            Method::POST,
            "/v1/service-requests",
            Some(&customer),
            Some(&card_number),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a card number is refused: {problem}"
    );
    let (status, booked) = seen
        .call(
            &api,
            Method::POST,
            "/v1/service-requests",
            Some(&customer),
            Some(&booking),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    let request_id = booked["requests"][0]["request_id"]
        .as_str()
        .expect("request id")
        .to_owned();
    let (status, approved) = seen
        .call(
            &api,
            Method::POST,
            &format!("/v1/service-requests/{request_id}/approval"),
            Some(&w.admin_token),
            Some(&json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    let (status, placed) = seen
        .call(
            &api,
            Method::POST,
            &format!("/v1/service-requests/{request_id}/assignments"),
            Some(&w.dispatcher_token),
            Some(&json!({"officer_user_id": provider_id})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    let assignment_id = placed["assignment_id"]
        .as_str()
        .expect("assignment id")
        .to_owned();
    if placed["status"] != "accepted" {
        let (status, accepted) = seen
            .call(
                &api,
                Method::POST,
                &format!("/v1/assignments/{assignment_id}/accept"),
                Some(&provider),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{accepted}");
    }

    // The shift: checked in at its start and out at its end. API Gateway would refuse today's
    // token then, so the scheduling function's router gets the event API Gateway would deliver at
    // that time, with the function's state on a clock that is there (it logs as in production).
    for (at, action) in [
        (start, "check-in"),
        (start + SignedDuration::from_hours(2), "check-out"),
    ] {
        let (status, worked) = act_at(at, &provider_id, &provider_email, &assignment_id, action).await;
        assert_eq!(status, 200, "{action}: {worked}");
        if status >= 400 {
            seen.error_bodies.push(worked);
        }
    }

    // Both correct their data (one bad correction each, with a personal value in the bad field).
    let new_phone = number("+1307556", 4);
    let (status, problem) = seen
        .call(
            &api,
            Method::PATCH,
            "/v1/me/customer",
            Some(&customer),
            Some(&json!({"name": format!("{customer_name} {}", "x".repeat(300))})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (status, corrected) = seen
        .call(
            &api,
            Method::PATCH,
            "/v1/me/customer",
            Some(&customer),
            Some(&json!({"phone": new_phone})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{corrected}");
    let (status, problem) = seen
        .call(
            &api,
            Method::PATCH,
            "/v1/me/provider",
            Some(&provider),
            Some(&json!({"phone": format!("{provider_name}!")})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (status, corrected) = seen
        .call(
            &api,
            Method::PATCH,
            "/v1/me/provider",
            Some(&provider),
            Some(&json!({"phone": number("+1307554", 4)})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{corrected}");

    // The customer exports their data (built by the privacy worker), then is deleted (the worker
    // again, through the processor and the key store).
    let (status, queued) = seen
        .call(
            &api,
            Method::POST,
            "/v1/privacy-requests",
            Some(&customer),
            Some(&json!({"type": "access", "jurisdiction": "ccpa"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let access = e2e::await_request(&customer, queued["id"].as_str().expect("id")).await;
    assert_eq!(access["status"], "fulfilled", "{access}");
    let (status, manifest) = seen
        .call(
            &api,
            Method::GET,
            &format!(
                "/v1/privacy-requests/{}/export",
                access["id"].as_str().expect("id")
            ),
            Some(&customer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{manifest}");
    let (status, queued) = seen
        .call(
            &api,
            Method::POST,
            "/v1/privacy-requests",
            Some(&customer),
            Some(&json!({"type": "deletion", "jurisdiction": "ccpa"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let deletion = e2e::await_request(&customer, queued["id"].as_str().expect("id")).await;
    assert_eq!(deletion["status"], "fulfilled", "{deletion}");
    // An erased person's token reads nothing of them.
    let (status, _) = seen
        .call(&api, Method::GET, "/v1/me", Some(&customer), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The logs saw the scenario (so they are being captured), but none of its values.
    let logs = captured_logs();
    for route in [
        "POST /v1/customers",
        "POST /v1/providers",
        "POST /v1/service-requests/{id}/assignments",
        "POST /v1/assignments/{id}/check-out",
        "POST /v1/privacy-requests",
    ] {
        assert!(
            logs.contains(route),
            "the logs hold a line for {route}: they are captured"
        );
    }
    let mut values = vec![
        customer_email.clone(),
        customer_name.clone(),
        customer_phone.clone(),
        new_phone.clone(),
        customer_ein.clone(),
        digits(&customer_ein),
        format!("Zephyrine Hollow Events {tag}"),
        format!("77 Zephyrine Hollow Rd {tag}"),
        format!("PO Box {tag} Quillfeather"),
        "1984-05-06".to_owned(),
        provider_email.clone(),
        provider_name.clone(),
        provider_phone.clone(),
        tin.clone(),
        digits(&tin),
        licence.clone(),
        badge.clone(),
        format!("3 Brannigan Spur {tag}"),
        format!("9 Okafor Tax Ln {tag}"),
        contact_name.clone(),
        contact_phone.clone(),
        notes.clone(),
        format!("1 Quiller Arena Way {tag}"),
    ];
    // The parts of a name, too: a log line that quotes half of it has leaked it.
    values.extend(["Marchetti-Vance", "Brannigan-Okafor", "Quillfeather", "Araminta"].map(str::to_owned));
    let mut leaks = Vec::new();
    for value in &values {
        for (place, texts) in [
            ("a log line", vec![logs.clone()]),
            ("a response header", seen.headers.clone()),
            ("an error body", seen.error_bodies.clone()),
        ] {
            if let Some(text) = texts.iter().find(|text| text.contains(value.as_str())) {
                let at = text.find(value.as_str()).unwrap_or(0);
                let from = at.saturating_sub(80);
                leaks.push(format!(
                    "{value} in {place}: …{}…",
                    text.get(from..at).unwrap_or("")
                ));
            }
        }
    }
    assert!(leaks.is_empty(), "personal values leaked:\n{}", leaks.join("\n"));
    assert!(
        seen.error_bodies.len() >= 5,
        "the refused calls were seen: {:?}",
        seen.error_bodies
    );
    println!(
        "{} calls, {} headers, {} error bodies and {} log lines searched for {} personal values: none found",
        seen.calls,
        seen.headers.len(),
        seen.error_bodies.len(),
        logs.lines().count(),
        values.len()
    );
}
