//! A request's life over time against the emulator, the clock moved through `platform::Clock`: it
//! starts at the first check-in, officers not checked in become no-shows and their slot is refilled,
//! it completes at the last check-out or, by the scheduled run, at its end plus the grace period
//! (open shifts closed and flagged), and then its retention clock runs. A customer cannot cancel
//! once it started; the agency can. Each step is taken for this test's own records (the run at a
//! future clock would move other tests' records too); that the run finds them is shown on the
//! due-date index.

use crate::memberships::due_now;
use crate::scheduling::{World, book_at, next_tuesday_10, officer, rule_of, staffing, world};
use domain::scheduling::assignments::{Assignment, AssignmentStatus};
use domain::scheduling::{self, Action};
use domain::service_requests::{self, ServiceRequest, Status};
use e2e::{mails_to, raw_partition, stack};
use edge::auth::Caller;
use jiff::{SignedDuration, Timestamp};
use platform::AppState;
use platform::Clock;
use platform::store::Record;

async fn at(time: Timestamp) -> AppState {
    stack().state("SchedulingFunction", Clock::fixed(time)).await
}

async fn stored(w: &World, request_id: &str) -> ServiceRequest {
    service_requests::located(&w.state, request_id)
        .await
        .expect("read")
        .expect("the request")
        .1
        .record
}

async fn assignment(w: &World, officer: &Caller, request_id: &str) -> Assignment {
    w.state
        .store
        .get::<Assignment>(&Assignment::key_of(&officer.user_id, request_id))
        .await
        .expect("read")
        .expect("the assignment")
        .record
}

async fn act(state: &AppState, officer: &Caller, w: &World, request_id: &str, action: Action) {
    let id = assignment(w, officer, request_id).await.assignment_id;
    scheduling::act(state, officer, &id, action)
        .await
        .unwrap_or_else(|error| panic!("{action:?}: {error:?}"));
}

#[tokio::test]
async fn a_request_starts_loses_a_no_show_is_refilled_completes_and_its_retention_starts() {
    let w = world(|_| {}).await;
    let start = next_tuesday_10();
    let end = start + SignedDuration::from_hours(4);
    let (first, second, late) = (
        officer(&w, |_| {}).await,
        officer(&w, |_| {}).await,
        officer(&w, |_| {}).await,
    );
    let request_id = book_at(&w, start, 4, 2, false).await;
    scheduling::claim(&w.state, &first, &request_id)
        .await
        .expect("claim");
    scheduling::claim(&w.state, &second, &request_id)
        .await
        .expect("claim");
    let key = stored(&w, &request_id).await.key();
    // Booked more than 6 days ahead, the run first holds the saved card, 6 days before the start.
    if let Some(hold_at) = domain::payments::hold_due(start, Timestamp::now()) {
        let hold_time = at(hold_at + SignedDuration::from_mins(1)).await;
        assert!(due_now(&hold_time, &key).await, "due to hold the card");
        let review = scheduling::review_request(&hold_time, &key)
            .await
            .expect("review");
        assert!(review.held, "{review:?}");
    }
    assert!(!due_now(&at(start - SignedDuration::from_mins(1)).await, &key).await);
    assert!(
        due_now(&at(start).await, &key).await,
        "the run finds it at its start"
    );

    // The first check-in starts it; a customer may no longer cancel.
    act(
        &at(start - SignedDuration::from_mins(10)).await,
        &first,
        &w,
        &request_id,
        Action::CheckIn,
    )
    .await;
    let begun = stored(&w, &request_id).await;
    assert_eq!(begun.status, Status::InProgress);
    assert!(begun.started_at.is_some());
    let refused = scheduling::cancel_request(
        &at(start + SignedDuration::from_mins(5)).await,
        &w.customer,
        &request_id,
        "rain",
    )
    .await
    .expect_err("cancellation after the start");
    assert_eq!(rule_of(&refused), Some("cancel_before_start"), "{refused:?}");

    // 15 minutes after the start the second officer is a no-show; dispatch hears, the slot reopens.
    let no_show_time = at(start + SignedDuration::from_mins(16)).await;
    assert!(due_now(&no_show_time, &key).await);
    let review = scheduling::review_request(&no_show_time, &key)
        .await
        .expect("review");
    assert_eq!(review.no_shows, 1, "{review:?}");
    assert_eq!(
        assignment(&w, &second, &request_id).await.status,
        AssignmentStatus::NoShow
    );
    assert_eq!(staffing(&w, &request_id).await, (1, Status::InProgress));
    assert!(
        mails_to(&w.dispatcher_email)
            .await
            .iter()
            .any(|m| m.contains("No-show") && m.contains(&second.user_id)),
        "dispatch is told who did not come"
    );
    let replacement_time = at(start + SignedDuration::from_mins(25)).await;
    scheduling::claim(&replacement_time, &late, &request_id)
        .await
        .expect("a replacement takes the reopened slot while the shift runs");
    act(&replacement_time, &late, &w, &request_id, Action::CheckIn).await;

    // The first officer checks out; the replacement never does. The run completes the request after
    // the grace period and closes the open shift at the end, flagged.
    act(&at(end).await, &first, &w, &request_id, Action::CheckOut).await;
    assert_eq!(
        stored(&w, &request_id).await.status,
        Status::InProgress,
        "one officer is still on site"
    );
    let before_grace = at(end + SignedDuration::from_hours(3)).await;
    let early = scheduling::review_request(&before_grace, &key)
        .await
        .expect("review");
    assert!(!early.completed, "not before the grace period");
    let after_grace = at(end + SignedDuration::from_hours(4) + SignedDuration::from_mins(1)).await;
    assert!(due_now(&after_grace, &key).await);
    let review = scheduling::review_request(&after_grace, &key)
        .await
        .expect("review");
    assert!(review.completed, "{review:?}");
    let closed = assignment(&w, &late, &request_id).await;
    assert_eq!(
        (closed.status, closed.checked_out_at, closed.closed_by_run),
        (AssignmentStatus::Completed, Some(end), true)
    );
    let done = stored(&w, &request_id).await;
    assert_eq!(done.status, Status::Completed);
    assert!(!due_now(&after_grace, &key).await, "off the index once over");
    // Its 3-year retention now runs, from completion, in the stored item itself.
    let completed_at = done.completed_at.expect("completed_at");
    let raw = raw_partition(&w.customer.user_id).await;
    let item = raw
        .iter()
        .find(|i| i.get("sk").and_then(|v| v.as_s().ok()) == Some(&key.sk))
        .expect("the raw item");
    let expires_at: i64 = item
        .get("expires_at")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .expect("expires_at is set at completion");
    let days = (expires_at - completed_at.as_second()) / (24 * 3600);
    assert!(
        (1095..=1097).contains(&days),
        "3 years from completion, got {days} days"
    );
}

#[tokio::test]
async fn the_last_check_out_completes_a_request_and_the_agency_may_cancel_one_under_way() {
    let w = world(|_| {}).await;
    let start = next_tuesday_10() + SignedDuration::from_hours(24 * 7);
    let solo = officer(&w, |_| {}).await;
    let quick = book_at(&w, start, 2, 1, false).await;
    scheduling::claim(&w.state, &solo, &quick).await.expect("claim");
    act(&at(start).await, &solo, &w, &quick, Action::CheckIn).await;
    act(
        &at(start + SignedDuration::from_hours(2)).await,
        &solo,
        &w,
        &quick,
        Action::CheckOut,
    )
    .await;
    let done = stored(&w, &quick).await;
    assert_eq!(done.status, Status::Completed, "every officer checked out");
    assert!(done.completed_at.is_some());

    let later = start + SignedDuration::from_hours(24);
    let stopped = book_at(&w, later, 4, 1, false).await;
    scheduling::claim(&w.state, &solo, &stopped).await.expect("claim");
    act(&at(later).await, &solo, &w, &stopped, Action::CheckIn).await;
    let one_hour_in = at(later + SignedDuration::from_hours(1)).await;
    let view = scheduling::cancel_request(
        &one_hour_in,
        &w.dispatcher,
        &stopped,
        "Storm warning: site closed",
    )
    .await
    .expect("the agency cancels at any time");
    assert_eq!(view.status, Status::Cancelled);
    assert!(
        view.cancellation.as_ref().is_some_and(|c| c.fee.is_none()),
        "the agency's own cancellation bills nothing"
    );
    let on_site = assignment(&w, &solo, &stopped).await;
    assert_eq!(
        (on_site.status, on_site.checked_out_at),
        (
            AssignmentStatus::Completed,
            Some(later + SignedDuration::from_hours(1))
        ),
        "the officer on site is checked out, not cancelled: the hour worked counts"
    );
}

#[tokio::test]
async fn a_booking_nobody_approved_expires_at_its_start() {
    let w = world(|rules| rules.approve_requests = true).await;
    let start = next_tuesday_10();
    let request_id = book_at(&w, start, 4, 1, false).await;
    let key = stored(&w, &request_id).await.key();
    let review = scheduling::review_request(&at(start + SignedDuration::from_mins(1)).await, &key)
        .await
        .expect("review");
    assert!(review.expired, "{review:?}");
    let expired = stored(&w, &request_id).await;
    assert_eq!(expired.status, Status::Rejected);
    assert!(
        expired.cancellation.is_some(),
        "its retention runs from the expiry"
    );
    assert!(
        mails_to(&w.customer_email)
            .await
            .iter()
            .any(|m| m.contains("did not approve the booking before its start")),
        "the customer is told"
    );
    // Nothing is charged: the hold taken at booking is released at the processor.
    let charge = w
        .state
        .store
        .get::<domain::payments::Charge>(&domain::payments::Charge::key_of(
            &w.customer.user_id,
            &request_id,
        ))
        .await
        .expect("read")
        .expect("the booking's charge")
        .record;
    assert_eq!(charge.status, domain::payments::ChargeStatus::Released);
    // Held when it starts within 6 days (else only the card was saved): the hold is cancelled.
    if !charge.intent_id.is_empty() {
        let (_, intent) = e2e::processor_get(&format!("/v1/payment_intents/{}", charge.intent_id)).await;
        assert_eq!(intent["status"], "canceled", "{intent}");
    }
}

#[tokio::test]
async fn an_officer_submits_hours_and_the_agency_approves_them_changing_times_only_with_a_reason() {
    use domain::scheduling::assignments::TimesheetStatus;
    use domain::scheduling::roster::Roster;
    let w = world(|_| {}).await;
    let start = next_tuesday_10() + SignedDuration::from_hours(24 * 14);
    let worker = officer(&w, |_| {}).await;
    let worked = book_at(&w, start, 4, 1, false).await;
    let pending = book_at(&w, start + SignedDuration::from_hours(48), 4, 1, false).await;
    scheduling::claim(&w.state, &worker, &worked)
        .await
        .expect("claim");
    scheduling::claim(&w.state, &worker, &pending)
        .await
        .expect("claim");
    let not_yet = assignment(&w, &worker, &pending).await.assignment_id;
    let refused = scheduling::submit_timesheet(&w.state, &worker, &not_yet)
        .await
        .expect_err("nothing worked yet");
    assert_eq!(rule_of(&refused), Some("timesheet_after_check_out"));

    act(&at(start).await, &worker, &w, &worked, Action::CheckIn).await;
    act(
        &at(start + SignedDuration::from_hours(4)).await,
        &worker,
        &w,
        &worked,
        Action::CheckOut,
    )
    .await;
    let id = assignment(&w, &worker, &worked).await.assignment_id;
    let submitted = scheduling::submit_timesheet(&w.state, &worker, &id)
        .await
        .expect("submit");
    let sheet = submitted.timesheet.expect("a timesheet");
    assert_eq!(sheet.status, TimesheetStatus::Submitted);
    assert_eq!(
        (sheet.submitted_from, sheet.submitted_until),
        (start, start + SignedDuration::from_hours(4))
    );

    // Changing the times needs a reason (through the gateway: 422 naming the field).
    let three_hours = start + SignedDuration::from_hours(3);
    let path = format!("/v1/assignments/{id}/timesheet/approval");
    let (status, problem) = crate::scheduling::call(
        reqwest::Method::POST,
        &path,
        &w.dispatcher_token,
        Some(&serde_json::json!({"worked_until": three_hours.to_string()})),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(e2e::pointers(&problem).contains("/reason"), "{problem}");
    let (status, _) = crate::scheduling::call(reqwest::Method::POST, &path, &w.customer_token, None).await;
    assert_eq!(
        status,
        reqwest::StatusCode::FORBIDDEN,
        "the customer approves nothing"
    );

    // Approved times stay within the shift: not a day earlier.
    let elsewhere = scheduling::TimesheetApproval {
        worked_from: Some(start - SignedDuration::from_hours(24)),
        worked_until: None,
        reason: Some("typo".into()),
        confirm: false,
    };
    match scheduling::approve_timesheet(&w.state, &w.dispatcher, &id, elsewhere).await {
        Err(edge::ApiError::Validation(errors)) => {
            assert!(errors.iter().any(|e| e.pointer == "/worked_from"), "{errors:?}")
        }
        other => panic!("expected a 422, got {other:?}"),
    }
    let approval = scheduling::TimesheetApproval {
        worked_from: None,
        worked_until: Some(three_hours),
        reason: Some("Site manager released the officer at 13:00".into()),
        confirm: false,
    };
    let approved = scheduling::approve_timesheet(&w.state, &w.dispatcher, &id, approval)
        .await
        .expect("approve");
    let sheet = approved.timesheet.expect("a timesheet");
    assert_eq!(sheet.status, TimesheetStatus::Approved);
    assert_eq!(
        (sheet.approved_from, sheet.approved_until),
        (Some(start), Some(three_hours))
    );
    let trail = domain::audit::trail(&w.state.store, &worker.user_id)
        .await
        .expect("trail");
    assert!(
        trail
            .iter()
            .any(|a| a.action == "timesheet.adjusted_and_approved" && a.actor_user_id == w.dispatcher.user_id),
        "the adjustment is audited: {trail:?}"
    );
    // The approved three hours are what fairness and the weekly cap count, not the four checked.
    let roster = w
        .state
        .store
        .get::<Roster>(&Roster::key_of(&worker.user_id))
        .await
        .expect("read")
        .expect("roster")
        .record;
    assert_eq!(
        roster.minutes_worked_since(start + SignedDuration::from_hours(5), 28),
        180
    );
    // The same approver again (a lost answer): the approved timesheet, marked as a replay; anyone
    // else, or other times, a 409.
    let (again, replayed) =
        scheduling::approve_timesheet_or_replay(&w.state, &w.dispatcher, &id, Default::default())
            .await
            .expect("a replay");
    assert!(replayed);
    assert_eq!(
        again.timesheet.as_ref().and_then(|t| t.approved_until),
        Some(three_hours)
    );
    let other_times = scheduling::TimesheetApproval {
        worked_until: Some(start + SignedDuration::from_hours(2)),
        reason: Some("changed my mind".into()),
        ..Default::default()
    };
    let refused = scheduling::approve_timesheet(&w.state, &w.dispatcher, &id, other_times)
        .await
        .expect_err("approved once");
    assert!(matches!(refused, edge::ApiError::Conflict(_)), "{refused:?}");
    let refused = scheduling::approve_timesheet(&w.state, &w.admin, &id, Default::default())
        .await
        .expect_err("approved by another");
    assert!(matches!(refused, edge::ApiError::Conflict(_)), "{refused:?}");

    // The last approval of the completed request issued its invoice: 3 approved hours at the booked
    // $65.00/h, plus the 5 % admin fee, in cents, each line explained.
    let path = format!("/v1/service-requests/{worked}/invoice");
    let (status, invoice) =
        crate::scheduling::call(reqwest::Method::GET, &path, &w.customer_token, None).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{invoice}");
    assert_eq!(invoice["total_cents"], 19_500 + 975, "{invoice}");
    let codes: Vec<&str> = invoice["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .filter_map(|l| l["code"].as_str())
        .collect();
    assert_eq!(codes, ["labour", "admin_fee"], "{invoice}");
    assert!(invoice.get("gsi1pk").is_none(), "no index internals: {invoice}");
    let (status, _) = crate::scheduling::call(reqwest::Method::GET, &path, &w.dispatcher_token, None).await;
    assert_eq!(
        status,
        reqwest::StatusCode::OK,
        "the agency reads its own invoice"
    );
    assert!(
        mails_to(&w.customer_email)
            .await
            .iter()
            .any(|m| m.contains("$204.75")),
        "the customer is told the total"
    );
    // The invoice was issued moments ago: yesterday is in the range in case UTC midnight passed since.
    let today = Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    let yesterday = today.yesterday().expect("a day before today");
    let (status, statement) = crate::scheduling::call(
        reqwest::Method::GET,
        &format!("/v1/me/statement?from={yesterday}&to={today}"),
        &w.customer_token,
        None,
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{statement}");
    assert_eq!(statement["total_cents"], 20_475, "{statement}");
    assert_eq!(statement["invoices"][0]["request_id"], worked.as_str());
    let invoice_item = raw_partition(&w.customer.user_id)
        .await
        .into_iter()
        .find(|i| {
            i.get("sk")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|sk| sk.starts_with("INVOICE#"))
        })
        .expect("the stored invoice");
    assert!(
        !format!("{invoice_item:?}").contains("20475") && invoice_item.contains_key("expires_at"),
        "the amounts are encrypted and the 7-year retention runs"
    );
}

#[tokio::test]
async fn erasing_a_customer_cancels_their_coming_requests_and_frees_the_officers() {
    use domain::privacy::erasure::{self, ErasureReason};
    use domain::scheduling::roster::Roster;
    let w = world(|_| {}).await;
    let email = e2e::unique_email("freed");
    let freed =
        crate::scheduling::officer_with(&w, None, email.clone(), crate::scheduling::always(), |_| {}).await;
    let request_id = book_at(&w, next_tuesday_10(), 4, 1, false).await;
    scheduling::claim(&w.state, &freed, &request_id)
        .await
        .expect("claim");
    erasure::start(
        &w.state,
        &w.customer.user_id,
        erasure::ErasureOrder::without_request(ErasureReason::Request, &w.customer.user_id),
    )
    .await
    .expect("erasure started");
    erasure::run(&w.state, &w.customer.user_id, usize::MAX)
        .await
        .expect("erasure ran");
    assert_eq!(
        assignment(&w, &freed, &request_id).await.status,
        AssignmentStatus::Cancelled,
        "the officer no longer holds a shift of a request that is gone"
    );
    let roster = w
        .state
        .store
        .get::<Roster>(&Roster::key_of(&freed.user_id))
        .await
        .expect("read")
        .expect("roster")
        .record;
    assert!(
        roster.commitments.iter().all(|c| c.request_id != request_id),
        "the commitment no longer blocks overlapping shifts"
    );
    assert!(
        mails_to(&email).await.iter().any(|m| m.contains("was cancelled")),
        "the officer is told (the shift only)"
    );
}

#[tokio::test]
async fn a_shift_is_worked_between_its_start_and_its_booked_grace_and_odd_hours_need_a_look() {
    let w = world(|_| {}).await;
    let start = next_tuesday_10() + SignedDuration::from_hours(24 * 7 * 3);
    let end = start + SignedDuration::from_hours(2);
    let worker = officer(&w, |_| {}).await;
    let request_id = book_at(&w, start, 2, 1, false).await;
    scheduling::claim(&w.state, &worker, &request_id)
        .await
        .expect("claim");
    let id = assignment(&w, &worker, &request_id).await.assignment_id;
    let try_at = |time: Timestamp, action: Action| {
        let (worker, id) = (worker.clone(), id.clone());
        async move { scheduling::act(&at(time).await, &worker, &id, action).await }
    };
    // Half an hour early is too early (check-in opens 15 minutes before); ten minutes is fine.
    let refused = try_at(start - SignedDuration::from_mins(30), Action::CheckIn)
        .await
        .expect_err("too early");
    assert_eq!(refused.status(), reqwest::StatusCode::CONFLICT, "{refused:?}");
    try_at(start - SignedDuration::from_mins(10), Action::CheckIn)
        .await
        .expect("check in");
    // Checking out before the start would complete the request before it began: refused.
    let refused = try_at(start - SignedDuration::from_mins(5), Action::CheckOut)
        .await
        .expect_err("before the start");
    assert_eq!(refused.status(), reqwest::StatusCode::CONFLICT, "{refused:?}");
    assert_ne!(stored(&w, &request_id).await.status, Status::Completed);
    // Nor long after the booked grace (4 h): the run closes the shift at its end then.
    let refused = try_at(end + SignedDuration::from_hours(5), Action::CheckOut)
        .await
        .expect_err("after the grace");
    assert_eq!(refused.status(), reqwest::StatusCode::CONFLICT, "{refused:?}");
    // An hour over, within the grace: checked out; the timesheet shows what differs.
    try_at(end + SignedDuration::from_hours(1), Action::CheckOut)
        .await
        .expect("check out");
    let submitted = scheduling::submit_timesheet(&w.state, &worker, &id)
        .await
        .expect("submit");
    let differences = submitted.timesheet.expect("a timesheet").differences;
    assert_eq!(
        differences,
        vec![
            "started 10 min before the shift".to_owned(),
            "ended 60 min after the shift".to_owned()
        ]
    );
    // "As submitted" without a look is refused; confirmed, approved.
    match scheduling::approve_timesheet(&w.state, &w.dispatcher, &id, Default::default()).await {
        Err(edge::ApiError::Validation(errors)) => {
            assert!(errors.iter().any(|e| e.pointer == "/confirm"), "{errors:?}")
        }
        other => panic!("expected a 422, got {other:?}"),
    }
    let confirmed = scheduling::TimesheetApproval {
        confirm: true,
        ..Default::default()
    };
    scheduling::approve_timesheet(&w.state, &w.dispatcher, &id, confirmed)
        .await
        .expect("approved");
    // Billed: the 2 booked hours (no overrun was agreed), not the 2 h 10 min approved + 1 h.
    let invoice = domain::billing::issue_when_due(&w.state, &request_id)
        .await
        .expect("invoice")
        .expect("issued");
    let labour: i64 = invoice
        .lines
        .iter()
        .filter(|l| l.code == "labour")
        .map(|l| l.amount_cents)
        .sum();
    assert_eq!(
        labour,
        2 * 6_500,
        "2 h at $65.00, not the 3 h 10 min approved: {invoice:?}"
    );
}

#[tokio::test]
async fn an_officer_restricted_after_the_start_can_neither_accept_nor_check_in() {
    let w = world(|_| {}).await;
    let start = next_tuesday_10() + SignedDuration::from_hours(24 * 7 * 4);
    let (starter, claimer, named) = (
        officer(&w, |_| {}).await,
        officer(&w, |_| {}).await,
        officer(&w, |_| {}).await,
    );
    let request_id = book_at(&w, start, 4, 3, false).await;
    for who in [&starter, &claimer] {
        scheduling::claim(&w.state, who, &request_id)
            .await
            .expect("claim");
    }
    // Under way: the first check-in starts it; dispatch fills the third slot as a replacement.
    act(&at(start).await, &starter, &w, &request_id, Action::CheckIn).await;
    let placed = scheduling::assign(
        &at(start + SignedDuration::from_mins(2)).await,
        &w.dispatcher,
        &request_id,
        scheduling::AssignInput {
            officer_user_id: named.user_id.clone(),
        },
    )
    .await
    .expect("placed");
    // Both restrict processing five minutes in (nothing of theirs is a future shift any more).
    let five_in = start + SignedDuration::from_mins(5);
    for who in [&claimer, &named] {
        domain::privacy::requests::set_restricted(&at(five_in).await, &who.user_id, true)
            .await
            .expect("restricted");
    }
    let six_in = at(start + SignedDuration::from_mins(6)).await;
    let claimed = assignment(&w, &claimer, &request_id).await.assignment_id;
    for (who, id, action) in [
        (&claimer, &claimed, Action::CheckIn),
        (&named, &placed.assignment_id, Action::Accept),
    ] {
        let refused = scheduling::act(&six_in, who, id, action)
            .await
            .expect_err("restricted: no new processing");
        assert_eq!(
            rule_of(&refused),
            Some("account_not_active"),
            "{action:?}: {refused:?}"
        );
    }
    assert_eq!(
        assignment(&w, &claimer, &request_id).await.status,
        AssignmentStatus::Accepted,
        "nothing changed"
    );
}

#[tokio::test]
async fn a_customer_who_restricted_processing_books_nothing_and_their_requests_are_on_hold() {
    let w = world(|_| {}).await;
    let start = next_tuesday_10() + SignedDuration::from_hours(24 * 7 * 5);
    let (placed, later) = (officer(&w, |_| {}).await, officer(&w, |_| {}).await);
    let request_id = book_at(&w, start, 3, 2, false).await;
    scheduling::claim(&w.state, &placed, &request_id)
        .await
        .expect("claim");
    domain::privacy::requests::set_restricted(&w.state, &w.customer.user_id, true)
        .await
        .expect("restricted");

    // No new booking, no quote.
    let body = crate::scheduling::booking_body(&w, start + SignedDuration::from_hours(48), 3, 1, false);
    let refused = service_requests::book(&w.state, &w.customer, body.to_string().as_bytes(), None)
        .await
        .expect_err("restricted: no booking");
    assert_eq!(rule_of(&refused), Some("processing_restricted"), "{refused:?}");
    let input: service_requests::RequestInput = serde_json::from_value(body).expect("input");
    let refused = service_requests::quote(&w.state, &w.customer, input)
        .await
        .expect_err("restricted: no quote");
    assert_eq!(rule_of(&refused), Some("processing_restricted"), "{refused:?}");
    // Nobody new is placed on their request.
    let refused = scheduling::claim(&w.state, &later, &request_id)
        .await
        .expect_err("on hold");
    assert_eq!(rule_of(&refused), Some("customer_restricted"), "{refused:?}");
    // The officer already placed is not shown the site contact or the notes, even when the shift
    // is near.
    let near = at(start - SignedDuration::from_hours(1)).await;
    let service_requests::ReadView::Officer(seen) = service_requests::read(&near, &placed, &request_id)
        .await
        .expect("read")
    else {
        panic!("the officer's view");
    };
    assert!(seen.site.is_none() && seen.notes.is_none(), "{seen:?}");

    // Lifted: booking and placement go on, and the placed officer sees the site again.
    domain::privacy::requests::set_restricted(&w.state, &w.customer.user_id, false)
        .await
        .expect("lifted");
    scheduling::claim(&w.state, &later, &request_id)
        .await
        .expect("claim");
    let service_requests::ReadView::Officer(seen) = service_requests::read(&near, &placed, &request_id)
        .await
        .expect("read")
    else {
        panic!("the officer's view");
    };
    assert!(seen.site.is_some(), "{seen:?}");
}
