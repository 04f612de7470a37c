//! Payments through the local Stripe (localstripe, started by `cargo xtask test`), the clock moved
//! through `platform::Clock` where the request's life needs it: a booking is held on the card (through
//! the agency's approval, a placement, a check-in, a no-show, a check-out and the timesheet's approval), billing captures the invoice total once (the rest released, any difference charged
//! off-session), cancellation fees are captured per notice band, a declined card books nothing, a
//! lapsed hold ends in a failed invoice and a mail, and the webhook is accepted only when signed.
//! Every money movement is checked in localstripe's own records, not only in ours.

use crate::scheduling::{World, local, officer, world};
use domain::agencies::{self, CancellationBand};
use domain::billing::Invoice;
use domain::payments::{Charge, ChargeStatus};
use domain::scheduling::{self, Action};
use e2e::{call_api, mails_to, processor_get, processor_post, raw_partition, stack};
use edge::auth::Caller;
use jiff::{SignedDuration, Timestamp};
use platform::Clock;
use platform::store::Record;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn body(w: &World, start: Timestamp, hours: i64, token: &str) -> Value {
    body_for(w, start, hours, 1, token)
}

fn body_for(w: &World, start: Timestamp, hours: i64, officers: u32, token: &str) -> Value {
    json!({
        "agency_id": w.agency_id,
        "event": {"name": "Big Piney Chuckwagon Races", "kind": "rodeo", "alcohol_served": false},
        "site": {"name": "Big Piney Arena", "address": {"line1": "2 Arena Way", "city": "Big Piney",
                 "region": "WY", "postal_code": "83113", "country": "US"},
                 "contact": {"name": "Evangeline Mortlake", "phone": "+13075550188"}},
        "starts_at": local(start),
        "ends_at": local(start + SignedDuration::from_hours(hours)),
        "time_zone": "America/Denver",
        "officers": officers,
        "requirements": {"armed": false, "attire": "uniformed", "vehicle": false, "supervisor": false},
        "payment": {"processor_token": token, "card_brand": "visa", "card_last4": "0341"}
    })
}

/// Books one officer through the gateway with the working test card; returns the request id.
async fn book(w: &World, start: Timestamp, hours: i64) -> String {
    book_for(w, start, hours, 1).await
}

/// Books `officers` through the gateway with the working test card; returns the request id.
async fn book_for(w: &World, start: Timestamp, hours: i64, officers: u32) -> String {
    let (status, booking) = call_api(
        Method::POST,
        "/v1/service-requests",
        Some(&w.customer_token),
        Some(&body_for(w, start, hours, officers, "pm_card_visa")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{booking}");
    booking["requests"][0]["request_id"]
        .as_str()
        .expect("id")
        .to_owned()
}

async fn charge(w: &World, request_id: &str) -> Charge {
    w.state
        .store
        .get::<Charge>(&Charge::key_of(&w.customer.user_id, request_id))
        .await
        .expect("read")
        .expect("the booking's charge")
        .record
}

async fn invoice(w: &World, request_id: &str) -> Option<Invoice> {
    w.state
        .store
        .get::<Invoice>(&Invoice::key_of(&w.customer.user_id, request_id))
        .await
        .expect("read")
        .map(|v| v.record)
}

/// The intent as localstripe has it, with its charge expanded.
async fn intent(intent_id: &str) -> Value {
    let (status, intent) = processor_get(&format!("/v1/payment_intents/{intent_id}")).await;
    assert_eq!(status, StatusCode::OK, "{intent}");
    intent
}

/// A start `days` ahead, on the hour: within [`domain::payments::HOLD_WITHIN_DAYS`] the booking is
/// held on the card, beyond it the card is only saved.
fn days_ahead(days: i64) -> Timestamp {
    let hour = Timestamp::now().as_second() / 3600 + 24 * days;
    Timestamp::from_second(hour * 3600).expect("a time")
}

/// The state of the scheduling function with its clock at `time`.
async fn at(time: Timestamp) -> platform::AppState {
    stack().state("SchedulingFunction", Clock::fixed(time)).await
}

/// The officer works the request from `start` for `hours` and the dispatcher approves those hours,
/// which completes the request and issues (and bills) its invoice.
async fn work(w: &World, officer: &Caller, request_id: &str, start: Timestamp, hours: i64) {
    let id = claim_and_check_in(w, officer, request_id, start).await;
    check_out_and_approve(w, officer, &id, start, hours).await;
}

/// The officer claims a slot and checks in at `start`; returns the assignment id.
async fn claim_and_check_in(w: &World, officer: &Caller, request_id: &str, start: Timestamp) -> String {
    scheduling::claim(&w.state, officer, request_id)
        .await
        .expect("claim");
    let id = w
        .state
        .store
        .get::<domain::scheduling::assignments::Assignment>(
            &domain::scheduling::assignments::Assignment::key_of(&officer.user_id, request_id),
        )
        .await
        .expect("read")
        .expect("assignment")
        .record
        .assignment_id;
    scheduling::act(&at(start).await, officer, &id, Action::CheckIn)
        .await
        .expect("check in");
    id
}

/// The officer checks out `hours` after `start`, submits, and the dispatcher approves.
async fn check_out_and_approve(w: &World, officer: &Caller, id: &str, start: Timestamp, hours: i64) {
    let until = start + SignedDuration::from_hours(hours);
    scheduling::act(&at(until).await, officer, id, Action::CheckOut)
        .await
        .expect("check out");
    scheduling::submit_timesheet(&w.state, officer, id)
        .await
        .expect("submit");
    let reason = Some("hours as worked".to_owned());
    scheduling::approve_timesheet(
        &w.state,
        &w.dispatcher,
        id,
        scheduling::TimesheetApproval {
            worked_from: Some(start),
            worked_until: Some(until),
            reason,
            confirm: true,
        },
    )
    .await
    .expect("approve");
}

/// Posts a webhook to the gateway, signed with `secret` at `timestamp` (or unsigned).
async fn webhook(payload: &Value, signature: Option<String>) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .post(stack().url("/v1/webhooks/stripe"))
        .header("content-type", "application/json")
        .body(payload.to_string());
    if let Some(signature) = signature {
        request = request.header("stripe-signature", signature);
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn event(kind: &str, intent_id: &str) -> Value {
    json!({
        "id": format!("evt_{}", uuid::Uuid::new_v4().simple()),
        "object": "event",
        "type": kind,
        "data": {"object": {"id": intent_id, "object": "payment_intent"}}
    })
}

fn signed(payload: &Value, at: Timestamp) -> String {
    platform::processor::sign(
        infra::bootstrap::LOCAL_STRIPE_WEBHOOK_SECRET,
        payload.to_string().as_bytes(),
        at.as_second(),
    )
}

#[tokio::test]
async fn a_booking_is_held_on_the_card_and_billing_captures_the_invoice_total_exactly_once() {
    // An agency that approves bookings first: the hold is taken at booking, before its decision.
    let w = world(|rules| rules.approve_requests = true).await;
    let start = days_ahead(3);
    let worker = officer(&w, |_| {}).await;
    let absent = officer(&w, |_| {}).await;
    // Booked for 2 officers × 4 h at $65.00 + 5 %: $546.00 held, nothing taken.
    let request_id = book_for(&w, start, 4, 2).await;
    let rejected = book(&w, start + SignedDuration::from_hours(48), 4).await;
    let decide = |id: String, decision: Value| {
        let token = w.dispatcher_token.clone();
        async move {
            let path = format!("/v1/service-requests/{id}/approval");
            call_api(Method::POST, &path, Some(&token), Some(&decision), None).await
        }
    };
    let (status, decided) = decide(request_id.clone(), json!({"decision": "approve"})).await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    let (status, decided) = decide(
        rejected.clone(),
        json!({"decision": "reject", "reason": "no officers that weekend"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    // The rejected booking's hold is released at once.
    let released = charge(&w, &rejected).await;
    assert_eq!(released.status, ChargeStatus::Released);
    assert_eq!(intent(&released.intent_id).await["status"], "canceled");
    let held = charge(&w, &request_id).await;
    assert_eq!(
        (held.status, held.authorized_cents),
        (ChargeStatus::Authorized, 54_600)
    );
    let at_processor = intent(&held.intent_id).await;
    assert_eq!(at_processor["status"], "requires_capture", "{at_processor}");
    assert_eq!(at_processor["amount"], 54_600);
    assert_eq!(at_processor["capture_method"], "manual");
    assert_eq!(at_processor["metadata"]["request_id"], request_id.as_str());
    let customer_at_processor = at_processor["customer"].as_str().expect("a customer").to_owned();
    let (_, customer) = processor_get(&format!("/v1/customers/{customer_at_processor}")).await;
    assert!(
        customer["email"].is_null() && customer["name"].is_null(),
        "the processor gets no name or e-mail: {customer}"
    );

    // One officer checks in; the other does not show (the scheduled run marks them 15 minutes after
    // the start and tells dispatch); the one who came works 3 h: the invoice is $204.75, captured,
    // and the rest of the hold is released.
    scheduling::claim(&w.state, &absent, &request_id)
        .await
        .expect("claim");
    let worked = claim_and_check_in(&w, &worker, &request_id, start).await;
    let (_, located) = domain::service_requests::located(&w.state, &request_id)
        .await
        .expect("read")
        .expect("the request");
    let review = scheduling::review_request(
        &at(start + SignedDuration::from_mins(16)).await,
        &located.record.key(),
    )
    .await
    .expect("review");
    assert_eq!(review.no_shows, 1, "{review:?}");
    check_out_and_approve(&w, &worker, &worked, start, 3).await;
    let billed = invoice(&w, &request_id).await.expect("the invoice");
    assert_eq!(billed.total_cents, 20_475);
    assert_eq!(billed.status, domain::billing::InvoiceStatus::Paid);
    assert_eq!(billed.paid_cents, Some(20_475));
    let captured = intent(&held.intent_id).await;
    assert_eq!(captured["status"], "succeeded", "{captured}");
    let processor_charge = &captured["latest_charge"];
    assert_eq!(processor_charge["captured"], true, "{captured}");
    assert_eq!(processor_charge["amount_refunded"], 54_600 - 20_475, "{captured}");
    let refunds = |c: &Value| c["refunds"]["data"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(refunds(processor_charge), 1, "one release of the rest");

    // The officer reads their week: 3 approved hours at $65.00, no admin fee (that is the agency's).
    let day = start.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    let (from, to) = (day.yesterday().expect("day"), day.tomorrow().expect("day"));
    let earned = domain::billing::earnings(&w.state, &worker, from, to)
        .await
        .expect("earnings");
    assert_eq!(
        (earned.approved_minutes, earned.earnings_cents),
        (180, 19_500),
        "{earned:?}"
    );
    assert_eq!(earned.weeks.len(), 1);
    assert_eq!(earned.weeks[0].week_of.weekday(), jiff::civil::Weekday::Monday);
    assert_eq!(earned.weeks[0].shifts[0].request_id, request_id);
    // The agency reads its invoices of the period (the rejected booking has none); the customer may not.
    let path = format!(
        "/v1/agencies/{}/invoices?from={from}&to={}",
        w.agency_id,
        day.tomorrow()
            .expect("day")
            .tomorrow()
            .expect("day")
            .tomorrow()
            .expect("day")
    );
    let (status, listed) = call_api(Method::GET, &path, Some(&w.dispatcher_token), None, None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["invoices"].as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed["invoices"][0]["request_id"], request_id.as_str());
    assert_eq!(
        (listed["total_cents"].clone(), listed["paid_cents"].clone()),
        (json!(20_475), json!(20_475))
    );
    let (status, _) = call_api(Method::GET, &path, Some(&w.customer_token), None, None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a customer reads no agency's invoices"
    );

    // A retried billing (a Lambda retry, the hourly run) changes nothing, here or at the processor.
    let again = domain::billing::issue_when_due(&w.state, &request_id)
        .await
        .expect("again")
        .expect("the invoice");
    assert_eq!(again, billed);
    assert_eq!(charge(&w, &request_id).await.captured_cents, 20_475);
    let after = intent(&held.intent_id).await;
    assert_eq!(
        refunds(&after["latest_charge"]),
        1,
        "no second capture or release"
    );
    assert_eq!(after["latest_charge"]["amount_refunded"], 54_600 - 20_475);

    // The processor's report of the capture, signed: accepted, and it changes nothing (we know).
    let succeeded = event("payment_intent.succeeded", &held.intent_id);
    let (status, receipt) = webhook(&succeeded, Some(signed(&succeeded, Timestamp::now()))).await;
    assert_eq!(
        (status, receipt["changed"].clone()),
        (StatusCode::OK, json!(false)),
        "{receipt}"
    );
    let (status, receipt) = webhook(&succeeded, Some(signed(&succeeded, Timestamp::now()))).await;
    assert_eq!(
        (status, receipt["changed"].clone()),
        (StatusCode::OK, json!(false)),
        "replayed"
    );

    // Forged, unsigned or stale reports are 400s and change nothing.
    let lapsed = event("payment_intent.canceled", &held.intent_id);
    let forged = platform::processor::sign(
        "whsec_not_ours",
        lapsed.to_string().as_bytes(),
        Timestamp::now().as_second(),
    );
    for (case, signature) in [
        ("unsigned", None),
        ("forged", Some(forged)),
        (
            "stale",
            Some(signed(&lapsed, Timestamp::now() - SignedDuration::from_mins(6))),
        ),
        ("garbage", Some("t=abc,v1=zz".to_owned())),
    ] {
        let (status, problem) = webhook(&lapsed, signature).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{case}: {problem}");
        assert_eq!(problem["type"], "urn:officertrak:problem:bad-request", "{case}");
    }
    assert_eq!(invoice(&w, &request_id).await.expect("invoice"), billed);
    assert_eq!(charge(&w, &request_id).await.status, ChargeStatus::Captured);
}

#[tokio::test]
async fn an_invoice_above_the_hold_captures_the_hold_and_charges_the_difference_off_session() {
    let w = world(|_| {}).await;
    let start = days_ahead(4);
    let worker = officer(&w, |_| {}).await;
    // Booked for 2 h ($136.50 held), allowing an hour's overrun; the officer stayed 3 h ($204.75).
    let mut with_overrun = body(&w, start, 2, "pm_card_visa");
    with_overrun["overrun_minutes"] = json!(60);
    let (status, booking) = call_api(
        Method::POST,
        "/v1/service-requests",
        Some(&w.customer_token),
        Some(&with_overrun),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{booking}");
    assert_eq!(
        booking["requests"][0]["terms"]["overrun_minutes"], 60,
        "{booking}"
    );
    let request_id = booking["requests"][0]["request_id"]
        .as_str()
        .expect("id")
        .to_owned();
    work(&w, &worker, &request_id, start, 3).await;
    let billed = invoice(&w, &request_id).await.expect("the invoice");
    assert_eq!(billed.total_cents, 20_475);
    assert_eq!(billed.status, domain::billing::InvoiceStatus::Paid, "{billed:?}");
    let paid = charge(&w, &request_id).await;
    assert_eq!((paid.captured_cents, paid.extra_cents), (13_650, 6_825));
    let hold = intent(&paid.intent_id).await;
    assert_eq!(
        hold["latest_charge"]["amount_refunded"], 0,
        "the whole hold was taken"
    );
    let extra = intent(paid.extra_intent_id.as_deref().expect("the difference")).await;
    assert_eq!(extra["status"], "succeeded", "{extra}");
    assert_eq!(extra["amount"], 6_825);
    assert_eq!(extra["customer"], hold["customer"]);
    assert_ne!(extra["capture_method"], "manual", "charged at once");
}

#[tokio::test]
async fn a_declined_card_books_nothing_and_a_decline_at_billing_is_a_failed_invoice() {
    let w = world(|_| {}).await;
    let start = days_ahead(2);
    // Held at booking: accepted when saved, declined when charged; declined when saved; unknown to
    // the processor.
    for (card, status, kind) in [
        (
            "pm_card_chargeCustomerFail",
            StatusCode::PAYMENT_REQUIRED,
            "urn:officertrak:problem:payment-declined",
        ),
        (
            "pm_card_visa_chargeDeclined",
            StatusCode::PAYMENT_REQUIRED,
            "urn:officertrak:problem:payment-declined",
        ),
        (
            "pm_NoSuchMethod1234",
            StatusCode::UNPROCESSABLE_ENTITY,
            "urn:officertrak:problem:validation",
        ),
    ] {
        let (got, problem) = call_api(
            Method::POST,
            "/v1/service-requests",
            Some(&w.customer_token),
            Some(&body(&w, start, 4, card)),
            None,
        )
        .await;
        assert_eq!(got, status, "{card}: {problem}");
        assert_eq!(problem["type"], kind, "{card}");
    }
    let stored = raw_partition(&w.customer.user_id).await;
    let types: Vec<&str> = stored
        .iter()
        .filter_map(|i| i.get("item_type").and_then(|v| v.as_s().ok()).map(String::as_str))
        .collect();
    for kept in ["service_request", "payment_record", "payment_charge"] {
        assert!(
            !types.contains(&kept),
            "a declined booking stored a {kept}: {types:?}"
        );
    }

    // Booked three weeks ahead, the same card is only saved (nothing can be held that long); it is
    // declined when the worked hours are billed: the invoice says so and the customer is told once.
    let later = days_ahead(21);
    let (status, booking) = call_api(
        Method::POST,
        "/v1/service-requests",
        Some(&w.customer_token),
        Some(&body(&w, later, 4, "pm_card_chargeCustomerFail")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{booking}");
    let request_id = booking["requests"][0]["request_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let saved = charge(&w, &request_id).await;
    assert_eq!(
        (saved.status, saved.intent_id.as_str()),
        (ChargeStatus::Saved, "")
    );
    let worker = officer(&w, |_| {}).await;
    work(&w, &worker, &request_id, later, 4).await;
    let failed = invoice(&w, &request_id).await.expect("the invoice");
    assert_eq!(
        failed.status,
        domain::billing::InvoiceStatus::PaymentFailed,
        "{failed:?}"
    );
    assert_eq!(failed.payment_failure.as_deref(), Some("card_declined"));
    assert_eq!(failed.paid_cents, Some(0));
    let path = format!("/v1/service-requests/{request_id}/invoice");
    let (status, view) = call_api(Method::GET, &path, Some(&w.customer_token), None, None).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["status"], "payment_failed", "{view}");
    // The agency sees the amount and the status, never the card's outcome code.
    let day = later.in_tz("UTC").expect("tz").date();
    let listing = format!("/v1/agencies/{}/invoices?from={day}&to={day}", w.agency_id);
    let (status, listed) = call_api(Method::GET, &listing, Some(&w.dispatcher_token), None, None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let seen = listed["invoices"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["request_id"] == request_id.as_str())
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(seen["status"], "payment_failed", "{listed}");
    assert!(seen.get("payment_failure").is_none(), "{seen}");
    assert!(!listed.to_string().contains("card_declined"), "{listed}");
    let (status, staff_view) = call_api(Method::GET, &path, Some(&w.dispatcher_token), None, None).await;
    assert_eq!(status, StatusCode::OK, "{staff_view}");
    assert_eq!(staff_view["status"], "payment_failed");
    assert!(staff_view.get("payment_failure").is_none(), "{staff_view}");
    // The customer, whose card it is, is told why.
    assert_eq!(view["payment_failure"], "card_declined", "{view}");
    // Billed again (the hourly run, a retry): still failed, no second mail.
    domain::billing::issue_when_due(&w.state, &request_id)
        .await
        .expect("again");
    let told = mails_to(&w.customer_email)
        .await
        .iter()
        .filter(|m| m.contains("did not go through"))
        .count();
    assert_eq!(told, 1, "the customer is told once");
}

/// The agency's fee schedule: under 24 h before the start, 3 h per officer; under 72 h, 2 h.
async fn with_fees(w: &World) {
    let mut settings = agencies::find(&w.state, &w.agency_id)
        .await
        .expect("read")
        .expect("agency")
        .settings;
    settings.cancellation_fees = vec![
        CancellationBand {
            within_hours: 24,
            billed_hours_per_officer: 3,
        },
        CancellationBand {
            within_hours: 72,
            billed_hours_per_officer: 2,
        },
    ];
    agencies::update(&w.state, &w.admin, &w.agency_id, settings)
        .await
        .expect("fees set");
}

async fn cancel(w: &World, request_id: &str) -> Value {
    let (status, cancelled) = call_api(
        Method::POST,
        &format!("/v1/service-requests/{request_id}/cancel"),
        Some(&w.customer_token),
        Some(&json!({"reason": "the races were called off"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    cancelled
}

#[tokio::test]
async fn cancellation_fees_are_captured_at_each_notice_band_and_the_rest_released() {
    // Bookable up to 2 h ahead, so that a booking can be cancelled inside the 24 h band.
    let w = world(|rules| rules.lead_time_hours = 2).await;
    with_fees(&w).await;
    let now = Timestamp::now();
    let late = book(&w, now + SignedDuration::from_hours(30), 4).await;
    let short = book(&w, now + SignedDuration::from_hours(12), 4).await;
    let early = book(&w, now + SignedDuration::from_hours(24 * 10), 4).await;
    let mut fees = Vec::new();
    for request_id in [&short, &late] {
        cancel(&w, request_id).await;
        let fee = invoice(&w, request_id).await.expect("a fee invoice");
        assert_eq!(fee.status, domain::billing::InvoiceStatus::Paid, "{fee:?}");
        let held = charge(&w, request_id).await;
        assert_eq!(held.captured_cents, fee.total_cents);
        let at_processor = intent(&held.intent_id).await;
        assert_eq!(at_processor["status"], "succeeded");
        assert_eq!(
            at_processor["latest_charge"]["amount_refunded"],
            held.authorized_cents - fee.total_cents,
            "the fee is captured, the rest released: {at_processor}"
        );
        fees.push(fee.total_cents);
    }
    assert!(
        fees[0] > fees[1] && fees[1] > 0,
        "3 h billed under 24 h, 2 h under 72 h: {fees:?}"
    );
    // 2 h at $65.00 (a cancellation fee carries no admin fee).
    assert_eq!(fees[1], 13_000);
    // Ten days ahead: nothing was held (the card was saved), no fee, no invoice, nothing charged.
    cancel(&w, &early).await;
    assert!(invoice(&w, &early).await.is_none());
    let released = charge(&w, &early).await;
    assert_eq!(
        (released.status, released.intent_id.as_str()),
        (ChargeStatus::Released, "")
    );
}

#[tokio::test]
async fn a_hold_the_processor_let_lapse_is_replaced_by_an_off_session_charge_of_the_fee() {
    let w = world(|_| {}).await;
    with_fees(&w).await;
    let request_id = book(&w, Timestamp::now() + SignedDuration::from_hours(40), 4).await;
    let held = charge(&w, &request_id).await;
    assert_eq!(held.status, ChargeStatus::Authorized);
    // Stripe cancels a hold left uncaptured for 7 days; here localstripe is told to, as Stripe would.
    let (status, lapsed) =
        processor_post(&format!("/v1/payment_intents/{}/cancel", held.intent_id), &[]).await;
    assert_eq!(status, StatusCode::OK, "{lapsed}");
    let report = event("payment_intent.canceled", &held.intent_id);
    let (status, receipt) = webhook(&report, Some(signed(&report, Timestamp::now()))).await;
    assert_eq!(
        (status, receipt["changed"].clone()),
        (StatusCode::OK, json!(true)),
        "{receipt}"
    );
    let (status, receipt) = webhook(&report, Some(signed(&report, Timestamp::now()))).await;
    assert_eq!(
        (status, receipt["changed"].clone()),
        (StatusCode::OK, json!(false)),
        "a replay"
    );
    let recorded = charge(&w, &request_id).await;
    assert_eq!(recorded.status, ChargeStatus::Saved, "the card stays saved");

    // The customer cancels inside the 72 h band: the fee is charged off-session on the saved card.
    cancel(&w, &request_id).await;
    let paid = invoice(&w, &request_id).await.expect("the fee invoice");
    assert_eq!(paid.status, domain::billing::InvoiceStatus::Paid, "{paid:?}");
    assert_eq!(paid.paid_cents, Some(13_000));
    let billed = charge(&w, &request_id).await;
    assert_eq!((billed.captured_cents, billed.extra_cents), (0, 13_000));
    let fee = intent(billed.extra_intent_id.as_deref().expect("an off-session charge")).await;
    assert_eq!(
        (fee["status"].clone(), fee["amount"].clone()),
        (json!("succeeded"), json!(13_000))
    );
    // The lapsed hold itself was never captured.
    assert_eq!(intent(&held.intent_id).await["status"], "canceled");
}

#[tokio::test]
async fn a_request_booked_weeks_ahead_is_held_by_the_scheduled_run_six_days_before_its_start() {
    let w = world(|_| {}).await;
    let start = days_ahead(20);
    let request_id = book(&w, start, 4).await;
    let saved = charge(&w, &request_id).await;
    assert_eq!(
        (saved.status, saved.intent_id.as_str()),
        (ChargeStatus::Saved, "")
    );
    let (_, located) = domain::service_requests::located(&w.state, &request_id)
        .await
        .expect("read")
        .expect("the request");
    let key = located.record.key();
    let hold_at = domain::payments::hold_due(start, Timestamp::now()).expect("a hold step");
    assert_eq!(
        hold_at,
        start - SignedDuration::from_hours(24 * domain::payments::HOLD_WITHIN_DAYS)
    );
    // A day early, nothing happens; at the hold time, the saved card is held for the price.
    let early = scheduling::review_request(&at(hold_at - SignedDuration::from_hours(24)).await, &key)
        .await
        .expect("review");
    assert!(!early.held, "{early:?}");
    let review = scheduling::review_request(&at(hold_at + SignedDuration::from_mins(5)).await, &key)
        .await
        .expect("review");
    assert!(review.held, "{review:?}");
    let held = charge(&w, &request_id).await;
    assert_eq!(
        (held.status, held.authorized_cents),
        (ChargeStatus::Authorized, 27_300)
    );
    let at_processor = intent(&held.intent_id).await;
    assert_eq!(
        (at_processor["status"].clone(), at_processor["amount"].clone()),
        (json!("requires_capture"), json!(27_300))
    );
    // Running again holds nothing more.
    let again = scheduling::review_request(&at(hold_at + SignedDuration::from_mins(10)).await, &key)
        .await
        .expect("review");
    assert!(!again.held, "{again:?}");
    assert_eq!(charge(&w, &request_id).await.intent_id, held.intent_id);
}

#[tokio::test]
async fn hours_beyond_the_booking_are_not_billed_unless_the_booking_allowed_them() {
    // Booked for 2 h with no overrun allowed (the default); the officer stayed 3 h, and the agency
    // approved 3 h: the customer is billed the 2 h booked, within the hold, nothing off-session.
    let w = world(|_| {}).await;
    let start = days_ahead(4);
    let worker = officer(&w, |_| {}).await;
    let request_id = book(&w, start, 2).await;
    work(&w, &worker, &request_id, start, 3).await;
    let billed = invoice(&w, &request_id).await.expect("the invoice");
    assert_eq!(billed.total_cents, 13_650, "{billed:?}");
    let paid = charge(&w, &request_id).await;
    assert_eq!((paid.captured_cents, paid.extra_cents), (13_650, 0));
    assert!(paid.extra_intent_id.is_none(), "nothing charged off-session");
    // Asking for more overrun than a booking may allow is refused, naming the field.
    let mut greedy = body(&w, days_ahead(9), 2, "pm_card_visa");
    greedy["overrun_minutes"] = json!(24 * 60);
    let (status, problem) = call_api(
        Method::POST,
        "/v1/quotes",
        Some(&w.customer_token),
        Some(&greedy),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(e2e::pointers(&problem).contains("/overrun_minutes"), "{problem}");
}

#[tokio::test]
async fn a_fee_band_set_after_booking_charges_nothing_and_no_fee_exceeds_the_price() {
    // Bookable up to 2 h ahead, so that a booking can be cancelled a few hours before its start.
    let w = world(|rules| rules.lead_time_hours = 2).await;
    let now = Timestamp::now();
    // Booked with no fee bands at all.
    let unbanded = book(&w, now + SignedDuration::from_hours(12), 3).await;
    let (_, seen) = call_api(
        Method::GET,
        &format!("/v1/service-requests/{unbanded}"),
        Some(&w.customer_token),
        None,
        None,
    )
    .await;
    assert_eq!(seen["terms"]["cancellation_fees"], json!([]), "{seen}");
    // The admin then sets a 24 h band billing 24 h per officer: new bookings only.
    let mut settings = agencies::find(&w.state, &w.agency_id)
        .await
        .expect("read")
        .expect("agency")
        .settings;
    settings.cancellation_fees = vec![CancellationBand {
        within_hours: 24,
        billed_hours_per_officer: 24,
    }];
    agencies::update(&w.state, &w.admin, &w.agency_id, settings.clone())
        .await
        .expect("fees set");
    let cancelled = cancel(&w, &unbanded).await;
    assert!(cancelled["cancellation"]["fee"].is_null(), "{cancelled}");
    assert!(invoice(&w, &unbanded).await.is_none(), "no fee, no invoice");
    let released = charge(&w, &unbanded).await;
    assert_eq!(released.captured_cents + released.extra_cents, 0, "{released:?}");

    // Booked under that band: the fee is capped at what the booking would have cost.
    let banded = book(&w, now + SignedDuration::from_hours(12), 3).await;
    let (_, booked) = call_api(
        Method::GET,
        &format!("/v1/service-requests/{banded}"),
        Some(&w.customer_token),
        None,
        None,
    )
    .await;
    let price = booked["price"]["total_cents"].as_i64().expect("price");
    cancel(&w, &banded).await;
    let fee = invoice(&w, &banded).await.expect("a fee invoice");
    assert_eq!(fee.total_cents, price, "24 h × $65.00 capped at the booked price");
    let held = charge(&w, &banded).await;
    assert_eq!((held.captured_cents, held.extra_cents), (price, 0));

    // A band reaching back further than a week is refused.
    settings.cancellation_fees = vec![CancellationBand {
        within_hours: 24 * 30,
        billed_hours_per_officer: 4,
    }];
    match agencies::update(&w.state, &w.admin, &w.agency_id, settings).await {
        Err(edge::ApiError::Validation(errors)) => assert!(
            errors
                .iter()
                .any(|e| e.pointer == "/cancellation_fees/0/within_hours"),
            "{errors:?}"
        ),
        other => panic!("expected a 422, got {other:?}"),
    }
}
