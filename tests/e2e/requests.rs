//! Service requests through the local gateway: booking priced by the agency's rules, every rule's
//! 422, the card-number refusal, idempotent retries, quotes, cancellation fees, pagination, and who
//! may read what.

use aws_sdk_dynamodb::types::AttributeValue;
use domain::service_requests;
use e2e::{captured_logs, new_user, pointers, stack, sub_of};
use edge::ApiError;
use edge::auth::{Caller, Role};
use jiff::{SignedDuration, Timestamp, ToSpan};
use platform::Clock;
use platform::store::Record;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

async fn call(
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
    key: Option<&str>,
) -> (StatusCode, Value) {
    e2e::call_api(method, path, Some(token), body, key).await
}

/// A signed-in customer who registered (only registration creates the key a booking is stored under).
async fn registered_customer(name: &str) -> infra::identity::Tokens {
    let email = e2e::unique_email(name);
    let tokens = stack().user_with_email(&email, &["customer"]).await;
    let body = crate::accounts::customer_body(&email, "Temperance Aldous-Okafor");
    let (status, account) = call(Method::POST, "/v1/customers", &tokens.id_token, Some(&body), None).await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    tokens
}

/// A new user with a customer account, stored directly (for tests that call the domain in-process).
async fn customer_account(state: &platform::AppState) -> String {
    let user_id = new_user(state).await;
    state
        .store
        .create(&domain::samples::customer(&user_id, &e2e::unique_email("direct")))
        .await
        .expect("the customer account");
    user_id
}

/// A local start `hours` from `now` in Denver, on the hour, and its end `length_minutes` later.
fn window(now: Timestamp, hours: i64, length_minutes: i64) -> (String, String) {
    let start = (now + SignedDuration::from_hours(hours))
        .in_tz("America/Denver")
        .expect("tz");
    let start = start.datetime().round(jiff::Unit::Hour).expect("round");
    let end = start.checked_add(length_minutes.minutes()).expect("end");
    (start.to_string(), end.to_string())
}

/// The Sunday a week before the next start of US daylight saving time (the second Sunday of March)
/// that is far enough from `now` to book (the agency's 48 h lead time, with a day to spare).
fn first_sunday_before_dst(now: Timestamp) -> jiff::civil::Date {
    let today = now.in_tz("America/Denver").expect("tz").date();
    (today.year()..=today.year() + 1)
        .filter_map(|year| {
            let dst_start = jiff::civil::date(year, 3, 1)
                .nth_weekday_of_month(2, jiff::civil::Weekday::Sunday)
                .ok()?;
            let first = dst_start - 7.days();
            (first > today + 3.days()).then_some(first)
        })
        .next()
        .expect("a March within two years")
}

struct Agency {
    id: String,
    dispatcher: String,
    admin: String,
}

async fn agency(holidays: &[String]) -> Agency {
    let stack = stack();
    let ops = stack.user("ops", &["ops"]).await;
    let dispatcher = stack.user("dispatch", &["dispatcher"]).await;
    let admin = stack.user("agadmin", &["agency_admin"]).await;
    let body = json!({
        "agency_name": "Teton County Sheriff",
        "time_zone": "America/Denver",
        "admin_user_ids": [sub_of(&admin.id_token)],
        "dispatcher_user_ids": [sub_of(&dispatcher.id_token)],
        "rates": {"hourly_rate_cents": 6500, "minimum_hours": 3, "holiday_multiplier_percent": 150,
                  "short_notice_multiplier_percent": 125, "short_notice_hours": 72, "vehicle_charge_cents": 2500,
                  "admin_fee_percent": 5},
        "rules": {"lead_time_hours": 48, "min_duration_hours": 2, "max_duration_hours": 12, "supervisor_required_at": 5,
                  "alcohol_minimum_officers": 2, "weekly_hour_cap": 70, "min_rest_hours": 8,
                  "default_assignment_mode": "first_come", "confirmation_window_hours": 24},
        "cancellation_fees": [{"within_hours": 24, "billed_hours_per_officer": 3}, {"within_hours": 2, "billed_hours_per_officer": 4}],
        "holidays": holidays
    });
    let (status, created) = call(Method::POST, "/v1/agencies", &ops.id_token, Some(&body), None).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    Agency {
        id: created["agency_id"].as_str().expect("id").to_owned(),
        dispatcher: dispatcher.id_token,
        admin: admin.id_token,
    }
}

fn request_body(agency_id: &str, starts_at: &str, ends_at: &str, officers: u32) -> Value {
    json!({
        "agency_id": agency_id,
        "event": {"name": "Jackson Hole Summer Gala", "kind": "gala", "expected_attendance": 400, "alcohol_served": false},
        "site": {"name": "Snow King Pavilion", "address": {"line1": "400 E Snow King Ave", "city": "Jackson", "region": "WY",
                 "postal_code": "83001", "country": "US"},
                 "contact": {"name": "Marisol Featherstonehaugh", "phone": "+13075550161"}},
        "starts_at": starts_at,
        "ends_at": ends_at,
        "time_zone": "America/Denver",
        "officers": officers,
        "requirements": {"armed": true, "attire": "uniformed", "vehicle": false, "supervisor": false},
        "notes": "Gate code is with the contact",
        "payment": {"processor_token": "pm_card_visa", "card_brand": "visa", "card_last4": "4242"}
    })
}

async fn raw_items(user_id: &str) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    e2e::raw_partition(user_id).await
}

fn count_of(items: &[std::collections::HashMap<String, AttributeValue>], item_type: &str) -> usize {
    items
        .iter()
        .filter(|i| matches!(i.get("item_type"), Some(AttributeValue::S(t)) if t == item_type))
        .count()
}

#[tokio::test]
async fn a_customer_books_and_only_the_right_people_read_it() {
    let stack = stack();
    let agency = agency(&[]).await;
    let customer = registered_customer("booker").await;
    let (starts, ends) = window(Timestamp::now(), 24 * 10, 300);
    let (status, booking) = call(
        Method::POST,
        "/v1/service-requests",
        &customer.id_token,
        Some(&request_body(&agency.id, &starts, &ends, 3)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{booking}");
    let request = &booking["requests"][0];
    assert_eq!(request["status"], "requested");
    // 3 officers × 5 h × $65 = $975.00; 5% admin fee = $48.75.
    assert_eq!(request["price"]["total_cents"], 102_375, "{}", request["price"]);
    assert_eq!(request["payment"]["card_last4"], "4242");
    assert!(
        !booking.to_string().contains("pm_card_visa"),
        "the processor token is never returned"
    );
    let path = format!(
        "/v1/service-requests/{}",
        request["request_id"].as_str().expect("id")
    );

    let (status, own) = call(Method::GET, &path, &customer.id_token, None, None).await;
    assert_eq!(
        (status, own["payment"]["card_brand"].clone()),
        (StatusCode::OK, json!("visa"))
    );
    let (status, staff) = call(Method::GET, &path, &agency.dispatcher, None, None).await;
    assert_eq!(status, StatusCode::OK, "{staff}");
    assert!(staff.get("payment").is_none(), "dispatchers see no payment data");
    assert_eq!(staff["site"]["contact"]["name"], "Marisol Featherstonehaugh");
    assert_eq!(
        call(Method::GET, &path, &agency.admin, None, None).await.0,
        StatusCode::OK
    );
    let other_customer = stack.user("nosy", &["customer"]).await;
    let other_dispatcher = stack.user("otherdispatch", &["dispatcher"]).await;
    let provider = stack.user("officer", &["provider"]).await;
    for (who, token) in [
        ("another customer", &other_customer),
        ("another agency's dispatcher", &other_dispatcher),
        ("a provider", &provider),
    ] {
        assert_eq!(
            call(Method::GET, &path, &token.id_token, None, None).await.0,
            StatusCode::NOT_FOUND,
            "{who}"
        );
    }
    // Only customers book.
    let (status, _) = call(
        Method::POST,
        "/v1/service-requests",
        &provider.id_token,
        Some(&request_body(&agency.id, &starts, &ends, 3)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The raw table holds neither the site contact nor the payment token in plaintext.
    let dump = format!("{:?}", raw_items(&sub_of(&customer.id_token)).await);
    for value in [
        "Featherstonehaugh",
        "+13075550161",
        "pm_card_visa",
        "Snow King",
        "Gate code",
    ] {
        assert!(!dump.contains(value), "{value} stored in plaintext");
    }
}

#[tokio::test]
async fn each_agency_rule_has_its_own_422() {
    let agency = agency(&[]).await;
    let customer = registered_customer("rules").await;
    let now = Timestamp::now();
    let ok = window(now, 24 * 10, 240);
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "lead time",
            {
                let (s, e) = window(now, 24, 240);
                request_body(&agency.id, &s, &e, 2)
            },
            "/starts_at",
            "lead_time_hours",
        ),
        (
            "too short",
            {
                let (s, e) = window(now, 240, 60);
                request_body(&agency.id, &s, &e, 2)
            },
            "/ends_at",
            "min_duration_hours",
        ),
        (
            "too long",
            {
                let (s, e) = window(now, 240, 13 * 60);
                request_body(&agency.id, &s, &e, 2)
            },
            "/ends_at",
            "max_duration_hours",
        ),
        (
            "supervisor",
            request_body(&agency.id, &ok.0, &ok.1, 5),
            "/requirements/supervisor",
            "supervisor_required_at",
        ),
        (
            "alcohol",
            {
                let mut b = request_body(&agency.id, &ok.0, &ok.1, 1);
                b["event"]["alcohol_served"] = json!(true);
                b
            },
            "/officers",
            "alcohol_minimum_officers",
        ),
        (
            "end before start",
            request_body(&agency.id, &ok.1, &ok.0, 2),
            "/ends_at",
            "after starts_at",
        ),
        (
            "in the past",
            {
                let (s, e) = window(now, -48, 240);
                request_body(&agency.id, &s, &e, 2)
            },
            "/starts_at",
            "future",
        ),
        (
            "no payment",
            {
                let mut b = request_body(&agency.id, &ok.0, &ok.1, 2);
                b.as_object_mut().expect("o").remove("payment");
                b
            },
            "/payment",
            "required",
        ),
        (
            "bad token",
            {
                let mut b = request_body(&agency.id, &ok.0, &ok.1, 2);
                b["payment"]["processor_token"] = json!("hello");
                b
            },
            "/payment/processor_token",
            "PaymentMethod",
        ),
    ];
    for (case, body, pointer, rule) in cases {
        let (status, problem) = call(
            Method::POST,
            "/v1/service-requests",
            &customer.id_token,
            Some(&body),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{case}: {problem}");
        let error = problem["errors"]
            .as_array()
            .and_then(|e| e.iter().find(|e| e["pointer"] == pointer))
            .unwrap_or_else(|| panic!("{case}: {problem}"));
        assert!(
            error["detail"].as_str().unwrap_or_default().contains(rule),
            "{case}: {error}"
        );
    }
    assert_eq!(
        count_of(&raw_items(&sub_of(&customer.id_token)).await, "service_request"),
        0,
        "nothing booked"
    );
}

#[tokio::test]
async fn card_numbers_are_refused_and_leave_no_trace() {
    let agency = agency(&[]).await;
    let customer = stack().user("pan", &["customer"]).await;
    let (s, e) = window(Timestamp::now(), 240, 240);
    let mut with_number = request_body(&agency.id, &s, &e, 2);
    with_number["payment"] =
        json!({"card_number": "4000 0566 5566 5556", "card_brand": "visa", "card_last4": "5556"});
    let mut in_notes = request_body(&agency.id, &s, &e, 2);
    in_notes["notes"] = json!("charge 5105-1051-0510-5100 please");
    for (body, pointer) in [(with_number, "/payment/card_number"), (in_notes, "/notes")] {
        for path in ["/v1/service-requests", "/v1/quotes"] {
            let (status, problem) = call(Method::POST, path, &customer.id_token, Some(&body), None).await;
            assert_eq!(
                (status, pointers(&problem)),
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    BTreeSet::from([pointer.to_owned()])
                ),
                "{path}"
            );
            assert!(problem.to_string().contains("processor"), "{problem}");
        }
    }
    assert!(
        raw_items(&sub_of(&customer.id_token)).await.is_empty(),
        "nothing of the requests is stored"
    );
    let logs = captured_logs();
    for digits in [
        "4000 0566 5566 5556",
        "4000056655665556",
        "5105-1051-0510-5100",
        "5105105105105100",
    ] {
        assert!(!logs.contains(digits), "{digits} reached the logs");
    }
}

#[tokio::test]
async fn a_retried_booking_with_the_same_key_books_once() {
    let agency = agency(&[]).await;
    let customer = registered_customer("retry").await;
    let (s, e) = window(Timestamp::now(), 240, 240);
    let body = request_body(&agency.id, &s, &e, 2);
    let key = uuid::Uuid::new_v4().to_string();
    let (first_status, first) = call(
        Method::POST,
        "/v1/service-requests",
        &customer.id_token,
        Some(&body),
        Some(&key),
    )
    .await;
    assert_eq!(first_status, StatusCode::CREATED, "{first}");
    let mut retries = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (token, body, key) = (customer.id_token.clone(), body.clone(), key.clone());
        retries.spawn(async move {
            call(
                Method::POST,
                "/v1/service-requests",
                &token,
                Some(&body),
                Some(&key),
            )
            .await
        });
    }
    while let Some(retry) = retries.join_next().await {
        let (status, again) = retry.expect("task");
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(
            again["series_id"], first["series_id"],
            "the first booking is returned"
        );
        assert_eq!(
            again["requests"][0]["request_id"],
            first["requests"][0]["request_id"]
        );
    }
    let items = raw_items(&sub_of(&customer.id_token)).await;
    assert_eq!(
        (
            count_of(&items, "service_request"),
            count_of(&items, "payment_record")
        ),
        (1, 1),
        "booked once"
    );
    let mut changed = body.clone();
    changed["officers"] = json!(3);
    let (status, problem) = call(
        Method::POST,
        "/v1/service-requests",
        &customer.id_token,
        Some(&changed),
        Some(&key),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(problem.to_string().contains("Idempotency-Key"));
    // Concurrent first attempts with one key also book once.
    let key = uuid::Uuid::new_v4().to_string();
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let (token, body, key) = (customer.id_token.clone(), body.clone(), key.clone());
        racers.spawn(async move {
            call(
                Method::POST,
                "/v1/service-requests",
                &token,
                Some(&body),
                Some(&key),
            )
            .await
        });
    }
    let mut series = BTreeSet::new();
    while let Some(racer) = racers.join_next().await {
        let (status, booking) = racer.expect("task");
        if status == StatusCode::CREATED {
            series.insert(booking["series_id"].as_str().unwrap_or_default().to_owned());
        } else {
            assert_eq!(status, StatusCode::CONFLICT, "{booking}");
        }
    }
    assert_eq!(series.len(), 1, "one booking for one key");
    assert_eq!(
        count_of(&raw_items(&sub_of(&customer.id_token)).await, "service_request"),
        2
    );
}

#[tokio::test]
async fn a_quote_explains_every_line_and_stores_nothing() {
    let now = Timestamp::now();
    // 50 h ahead: past the 48 h lead time, inside the 72 h short-notice window, on a holiday.
    let (starts, ends) = window(now, 50, 150);
    let holiday = starts[..10].to_owned();
    let agency = agency(std::slice::from_ref(&holiday)).await;
    let customer = stack().user("quote", &["customer"]).await;
    let mut body = request_body(&agency.id, &starts, &ends, 2);
    body["requirements"]["vehicle"] = json!(true);
    body.as_object_mut().expect("o").remove("payment");
    let (status, quote) = call(Method::POST, "/v1/quotes", &customer.id_token, Some(&body), None).await;
    assert_eq!(status, StatusCode::OK, "{quote}");
    let price = &quote["occurrences"][0]["price"];
    let lines: Vec<(String, i64)> = price["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            (
                l["code"].as_str().unwrap_or_default().to_owned(),
                l["amount_cents"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    // 2 officers, 2 h 30 min billed as the 3 h minimum: $390; holiday +$195; short notice +$146.25;
    // vehicle 2 × $25; admin 5% of $781.25 = $39.06.
    assert_eq!(
        lines,
        vec![
            ("labour".to_owned(), 39_000),
            ("holiday".to_owned(), 19_500),
            ("short_notice".to_owned(), 14_625),
            ("vehicle".to_owned(), 5_000),
            ("admin_fee".to_owned(), 3_906)
        ]
    );
    assert_eq!(
        (price["total_cents"].clone(), quote["total_cents"].clone()),
        (json!(82_031), json!(82_031))
    );
    assert!(
        price["lines"][0]["description"]
            .as_str()
            .unwrap_or_default()
            .contains("minimum 3 h")
    );
    assert!(
        raw_items(&sub_of(&customer.id_token)).await.is_empty(),
        "a quote stores nothing"
    );
}

#[tokio::test]
async fn cancellation_fees_follow_the_notice_bands() {
    let stack = stack();
    let agency = agency(&[]).await;
    let start: Timestamp = "2031-03-10T18:00:00Z".parse().expect("time");
    let booked_at = start - SignedDuration::from_hours(96);
    let state = stack.state("RequestsFunction", Clock::fixed(booked_at)).await;
    let caller = Caller {
        user_id: customer_account(&state).await,
        username: None,
        email: None,
        email_verified: false,
        roles: BTreeSet::from([Role::Customer]),
        auth_time: None,
    };
    let local = start.in_tz("America/Denver").expect("tz").datetime();
    let body = request_body(
        &agency.id,
        &local.to_string(),
        &local.checked_add(4.hours()).expect("end").to_string(),
        2,
    );
    let mut fees = Vec::new();
    for notice_hours in [30, 23, 1] {
        let bytes = serde_json::to_vec(&body).expect("json");
        let (booking, _) = service_requests::book(&state, &caller, &bytes, None)
            .await
            .expect("booked");
        let id = booking.requests[0].request_id.clone();
        let cancel_clock = Clock::fixed(start - SignedDuration::from_hours(notice_hours));
        let cancel_state = stack.state("RequestsFunction", cancel_clock).await;
        let cancelled =
            domain::scheduling::cancel_request(&cancel_state, &caller, &id, "the event was called off")
                .await
                .expect("cancelled");
        assert_eq!(cancelled.status, service_requests::Status::Cancelled);
        let cancellation = cancelled.cancellation.expect("recorded");
        assert_eq!(
            (cancellation.by_user_id.as_str(), cancellation.reason.as_str()),
            (caller.user_id.as_str(), "the event was called off")
        );
        fees.push(cancellation.fee.map(|line| line.amount_cents));
        // Cancelling again (a lost answer) answers the cancellation as it is, marked as a replay:
        // the first reason and fee stand.
        let (again, replayed) =
            domain::scheduling::cancel_request_or_replay(&cancel_state, &caller, &id, "again")
                .await
                .expect("a replay");
        assert!(replayed);
        assert_eq!(
            again.cancellation.as_ref().map(|c| c.reason.as_str()),
            Some("the event was called off")
        );
    }
    // 30 h notice: free; 23 h: 3 h × 2 officers × $65; 1 h: 4 h × 2 × $65.
    assert_eq!(fees, vec![None, Some(39_000), Some(52_000)]);
}

#[tokio::test]
async fn the_list_pages_with_tamper_proof_cursors_and_filters() {
    let stack = stack();
    let agency = agency(&[]).await;
    let customer = registered_customer("pages").await;
    // Weekly across the next start of daylight saving time: the local start stays 18:00. The dates
    // come from the real clock (the gateway's), so the test means the same in any year.
    let first = first_sunday_before_dst(Timestamp::now());
    let dst = first + 7.days();
    let mut body = request_body(
        &agency.id,
        &format!("{first}T18:00:00"),
        &format!("{first}T22:00:00"),
        2,
    );
    body["recurrence"] = json!({"frequency": "weekly", "count": 5});
    let (status, booking) = call(
        Method::POST,
        "/v1/service-requests",
        &customer.id_token,
        Some(&body),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{booking}");
    let starts: Vec<&str> = booking["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .map(|r| r["starts_at"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(starts.len(), 5);
    assert!(
        starts[0].starts_with(&format!("{first}T18:00:00-07:00")),
        "{starts:?}"
    );
    assert!(
        starts[1].starts_with(&format!("{dst}T18:00:00-06:00")),
        "DST: {starts:?}"
    );

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..4 {
        let path = match &cursor {
            Some(c) => format!("/v1/service-requests?limit=2&cursor={c}"),
            None => "/v1/service-requests?limit=2".to_owned(),
        };
        let (status, page) = call(Method::GET, &path, &customer.id_token, None, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|i| i["request_id"].as_str().unwrap_or_default().to_owned()),
        );
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 5, "every request once: {seen:?}");
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 5);

    let (_, first_page) = call(
        Method::GET,
        "/v1/service-requests?limit=2",
        &customer.id_token,
        None,
        None,
    )
    .await;
    let cursor = first_page["next_cursor"].as_str().expect("cursor").to_owned();
    let mut forged = cursor.clone();
    forged.replace_range(0..1, if cursor.starts_with('A') { "B" } else { "A" });
    let (status, _) = call(
        Method::GET,
        &format!("/v1/service-requests?cursor={forged}"),
        &customer.id_token,
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an edited cursor");
    let other = stack.user("otherpages", &["customer"]).await;
    let (status, _) = call(
        Method::GET,
        &format!("/v1/service-requests?cursor={cursor}"),
        &other.id_token,
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "another user's cursor");
    let (status, _) = call(
        Method::GET,
        &format!("/v1/service-requests?status=requested&cursor={cursor}"),
        &customer.id_token,
        None,
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a cursor reused with other filters"
    );

    let (_, march) = call(
        Method::GET,
        &format!(
            "/v1/service-requests?from={}&to={}",
            first + 3.days(),
            first + 18.days()
        ),
        &customer.id_token,
        None,
        None,
    )
    .await;
    assert_eq!(
        march["items"].as_array().map(Vec::len),
        Some(2),
        "the second and third weeks"
    );
    let (_, cancelled) = call(
        Method::GET,
        "/v1/service-requests?status=cancelled",
        &customer.id_token,
        None,
        None,
    )
    .await;
    assert_eq!(cancelled["items"], json!([]));
    let (status, problem) = call(
        Method::GET,
        "/v1/service-requests?status=lost",
        &customer.id_token,
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, pointers(&problem)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            BTreeSet::from(["?status".to_owned()])
        )
    );
}

#[tokio::test]
async fn an_assigned_officer_sees_the_site_only_and_is_told_of_a_cancellation() {
    let stack = stack();
    let agency = agency(&[]).await;
    let customer = registered_customer("withofficer").await;
    let officer_email = e2e::unique_email("officer");
    let officer = stack.user_with_email(&officer_email, &["provider"]).await;
    let bystander = stack.user("bystander", &["provider"]).await;
    let (s, e) = window(Timestamp::now(), 240, 240);
    let (status, booking) = call(
        Method::POST,
        "/v1/service-requests",
        &customer.id_token,
        Some(&request_body(&agency.id, &s, &e, 2)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{booking}");
    let request_id = booking["requests"][0]["request_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/v1/service-requests/{request_id}");

    // Place the officer on the request as the scheduler does: a provider account and an assignment.
    let state = stack.state("SchedulingFunction", Clock::System).await;
    let officer_id = sub_of(&officer.id_token);
    state.keys.create_user_key(&officer_id).await.expect("key");
    state
        .store
        .create(&domain::samples::provider(&officer_id, &officer_email))
        .await
        .expect("provider account");
    let starts = booking["requests"][0]["starts_at"].as_str().expect("start");
    let starts: Timestamp = starts.parse::<jiff::ZonedDateTime>().expect("zoned").timestamp();
    let assignment = domain::scheduling::assignments::Assignment::new(
        &request_id,
        &officer_id,
        &agency.id,
        starts,
        starts + SignedDuration::from_hours(4),
        Timestamp::now(),
    );
    state.store.create(&assignment).await.expect("assignment");

    let (status, seen) = call(Method::GET, &path, &officer.id_token, None, None).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    // Ten days ahead: where (city, region), not the street, the contact or the notes.
    assert_eq!(
        (seen["city"].clone(), seen["region"].clone()),
        (json!("Jackson"), json!("WY"))
    );
    assert!(
        seen.get("site").is_none() && seen.get("notes").is_none(),
        "too early for the site details: {seen}"
    );
    assert!(!seen.to_string().contains("Snow King Ave") && !seen.to_string().contains("+13075550161"));
    // From the agency's rule (48 h by default) before the start, while the slot is held: all of it.
    let near = stack
        .state(
            "RequestsFunction",
            Clock::fixed(starts - SignedDuration::from_hours(47)),
        )
        .await;
    let as_officer = Caller::acting_for(&officer_id, Role::Provider);
    let view = |read: Result<service_requests::ReadView, ApiError>| {
        serde_json::to_value(read.expect("the officer reads the request")).expect("json")
    };
    let close = view(service_requests::read(&near, &as_officer, &request_id).await);
    assert_eq!(close["site"]["contact"]["phone"], "+13075550161", "{close}");
    assert_eq!(close["notes"], "Gate code is with the contact");
    // After check-out the details are gone from the officer's view.
    let mut done = state
        .store
        .get::<domain::scheduling::assignments::Assignment>(&assignment.key())
        .await
        .expect("read")
        .expect("assignment");
    done.record.status = domain::scheduling::assignments::AssignmentStatus::Completed;
    let checked_out = state
        .store
        .replace(&done.record, done.version)
        .await
        .expect("check out");
    let after = view(service_requests::read(&near, &as_officer, &request_id).await);
    assert!(
        after.get("site").is_none() && after.get("notes").is_none(),
        "{after}"
    );
    state
        .store
        .replace(&assignment, checked_out)
        .await
        .expect("back to assigned for the cancellation below");
    for hidden in [
        "price",
        "payment",
        "series_id",
        "customer_user_id",
        "cancellation",
    ] {
        assert!(
            seen.get(hidden).is_none(),
            "an officer must not see {hidden}: {seen}"
        );
    }
    assert_eq!(
        call(Method::GET, &path, &bystander.id_token, None, None).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, mine) = call(
        Method::GET,
        "/v1/providers/me/assignments",
        &officer.id_token,
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, mine["items"][0]["request_id"].clone()),
        (StatusCode::OK, json!(request_id))
    );

    let (status, cancelled) = call(
        Method::POST,
        &format!("{path}/cancel"),
        &customer.id_token,
        Some(&json!({"reason": "storm warning"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let data: Value = reqwest::get(format!("{}/moto-api/data.json", stack.stack.endpoint))
        .await
        .expect("moto")
        .json()
        .await
        .expect("json");
    let mails: Vec<&Value> = data["ses"]["Message"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| {
            m["destinations"]["ToAddresses"]
                .as_array()
                .is_some_and(|to| to.iter().any(|a| a == officer_email.as_str()))
        })
        .collect();
    assert_eq!(mails.len(), 1, "the assigned officer is told");
    let mail = mails[0].to_string();
    assert!(
        mail.contains("Snow King Pavilion") && mail.contains("cancelled"),
        "{mail}"
    );
    for private in ["Featherstonehaugh", "storm warning", "4242", "$"] {
        assert!(!mail.contains(private), "the officer's mail carries {private}");
    }
    let after = state
        .store
        .get::<domain::scheduling::assignments::Assignment>(&assignment.key())
        .await
        .expect("get")
        .expect("kept");
    assert_eq!(
        after.record.status,
        domain::scheduling::assignments::AssignmentStatus::Cancelled
    );
    assert_eq!(
        call(Method::GET, &path, &officer.id_token, None, None).await.0,
        StatusCode::NOT_FOUND,
        "released officers lose access"
    );
}

/// Dates a client controls stay inside a sane window: a far-future or reversed list filter and a
/// booking years ahead are 422s naming the field, never a panic or an empty 200.
#[tokio::test]
async fn far_future_and_reversed_dates_are_422s_not_panics() {
    let agency = agency(&[]).await;
    let customer = stack().user("datecustomer", &["customer"]).await.id_token;
    for query in [
        "?from=9999-12-31",
        "?to=9999-12-31",
        "?from=2027-02-01&to=2027-01-01",
    ] {
        let (status, problem) = call(
            Method::GET,
            &format!("/v1/service-requests{query}"),
            &customer,
            None,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {problem}");
    }
    let (start, end) = window(Timestamp::now(), 24 * 365 * 3, 240);
    let (status, problem) = call(
        Method::POST,
        "/v1/quotes",
        &customer,
        Some(&request_body(&agency.id, &start, &end, 1)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(pointers(&problem).contains("/starts_at"), "{problem}");
}

#[tokio::test]
async fn a_booking_is_traced_with_its_dynamodb_and_processor_calls() {
    let agency = agency(&[]).await;
    let customer = registered_customer("traced").await;
    let (starts, ends) = window(Timestamp::now(), 24 * 12, 240);
    let (status, booking) = call(
        Method::POST,
        "/v1/service-requests",
        &customer.id_token,
        Some(&request_body(&agency.id, &starts, &ends, 1)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{booking}");
    let request_id = booking["requests"][0]["request_id"]
        .as_str()
        .expect("id")
        .to_owned();
    // The gateway logged the request with its id; its spans went to the trace file as the X-Ray
    // segment documents production sends the daemon (OFFICERTRAK_TRACE_FILE, set by cargo xtask).
    let path = std::env::var("OFFICERTRAK_TRACE_FILE").expect("cargo xtask test sets OFFICERTRAK_TRACE_FILE");
    let documents: Vec<Value> = std::fs::read_to_string(&path)
        .expect("the trace file")
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    // The booking's own trace: the one whose request segment is this route's and which holds the
    // processor call that authorised this booking's card (the only trace with both, in this test).
    let traces: BTreeSet<&str> = documents
        .iter()
        .filter(|d| d["annotations"]["route"] == "POST /v1/service-requests")
        .filter_map(|d| d["trace_id"].as_str())
        .collect();
    let names_in = |trace: &str| -> Vec<String> {
        documents
            .iter()
            .filter(|d| d["trace_id"].as_str() == Some(trace))
            .map(|d| d["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let booked = traces
        .iter()
        .map(|trace| names_in(trace))
        .find(|names| names.iter().any(|n| n.contains("Stripe")))
        .unwrap_or_else(|| {
            panic!(
                "no traced booking with a processor call; {} documents",
                documents.len()
            )
        });
    // (KMS shows only when a branch key is not cached yet: this customer's was, at registration.)
    for service in ["DynamoDB", "Stripe"] {
        assert!(
            booked.iter().any(|name| name.contains(service)),
            "the booking's trace has a {service} span: {booked:?}"
        );
    }
    // Spans name operations, never data: neither the booking's id nor a personal value shows.
    assert!(!documents.iter().any(|d| d.to_string().contains(&request_id)));
    assert!(!documents.iter().any(|d| d.to_string().contains("Temperance")));
}
