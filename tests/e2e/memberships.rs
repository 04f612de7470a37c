//! Trust boundaries of scheduling against the emulator: an officer belongs to an agency only when its
//! admins approve the membership (through the gateway: application, rejection, re-application,
//! approval, re-verification after an edit), an approval lapses after the agency's period (the
//! hourly review), bookings may need the agency's approval first, and every fact a placement relies
//! on is re-checked as it commits (four races, with the invariant asserted after each).

use crate::scheduling::{
    World, always, book_at, call, next_tuesday_10, officer, officer_with, rule_of, staffing, world,
};
use domain::accounts::memberships::{self, MembershipStatus};
use domain::scheduling::{self, DoNotHireInput};
use domain::service_requests::Status;
use e2e::{mails_to, stack, sub_of, unique_email};
use edge::ApiError;
use edge::auth::Caller;
use jiff::{SignedDuration, Timestamp};
use platform::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn membership_of(w: &World, officer_id: &str) -> memberships::Membership {
    memberships::membership(&w.state.store, officer_id, &w.agency_id)
        .await
        .expect("read")
        .expect("a membership")
        .record
}

/// Whether `key` is on the due-date index, due by `state`'s clock (what the hourly run queries).
pub(crate) async fn due_now(state: &platform::AppState, key: &platform::store::ItemKey) -> bool {
    let now = state.clock.now();
    for back in 0..jobs::purge::REVIEW_MONTHS {
        let month = now
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .date()
            .first_of_month()
            .checked_sub(jiff::Span::new().months(back))
            .expect("month");
        let keys = state
            .store
            .due_keys(&platform::keys::due_day_partition(month), now.as_second())
            .await
            .expect("due keys");
        if keys.contains(key) {
            return true;
        }
    }
    false
}

fn decision(decision: &str, reason: Option<&str>) -> Value {
    match reason {
        Some(reason) => json!({"decision": decision, "reason": reason}),
        None => json!({"decision": decision}),
    }
}

#[tokio::test]
async fn an_agency_named_by_an_officer_is_an_application_until_its_admin_approves_it() {
    let w = world(|_| {}).await;
    let stack = stack();
    let email = unique_email("applicant");
    let token = stack.user_with_email(&email, &["provider"]).await.id_token;
    let officer_id = sub_of(&token);
    let (status, account) = call(
        Method::POST,
        "/v1/providers",
        &token,
        Some(&crate::accounts::provider_body(&email, Some(&w.agency_id))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    assert_eq!(account["memberships"][0]["status"], "pending", "{account}");
    let (status, _) = call(
        Method::PUT,
        "/v1/providers/me/availability",
        &token,
        Some(&serde_json::to_value(always()).expect("json")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "availability is kept while pending");
    let tuesday = next_tuesday_10();
    let request_id = book_at(&w, tuesday, 4, 2, false).await;

    // Pending: no open shifts, no claim, no assignment, no request to read, not in the pool.
    let (_, shifts) = call(Method::GET, "/v1/providers/me/open-shifts", &token, None).await;
    assert_eq!(shifts["items"], json!([]), "{shifts}");
    let claims = format!("/v1/service-requests/{request_id}/claims");
    let (status, problem) = call(Method::POST, &claims, &token, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["rule"], "membership_not_approved", "{problem}");
    let assignments = format!("/v1/service-requests/{request_id}/assignments");
    let (status, problem) = call(
        Method::POST,
        &assignments,
        &w.dispatcher_token,
        Some(&json!({"officer_user_id": officer_id})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["rule"], "membership_not_approved", "{problem}");
    let (status, report) = call(
        Method::POST,
        &format!("/v1/service-requests/{request_id}/auto-assign"),
        &w.dispatcher_token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report["picked"],
        json!([]),
        "an applicant is in no pool: {report}"
    );
    let (status, _) = call(
        Method::GET,
        &format!("/v1/service-requests/{request_id}"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The admins see what they must verify; a dispatcher may not decide memberships.
    let list = format!("/v1/agencies/{}/memberships", w.agency_id);
    let (status, _) = call(Method::GET, &list, &w.dispatcher_token, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, pending) = call(Method::GET, &list, &w.admin_token, None).await;
    assert_eq!(status, StatusCode::OK, "{pending}");
    let application = pending["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|a| a["provider_user_id"] == officer_id.as_str())
        .cloned()
        .expect("the application is listed");
    assert_eq!(application["badge_number"], "B-2231");
    assert_eq!(application["hire_date"], "2015-04-01");
    assert_eq!(application["licence"]["number"], "WY-SEC-55012");
    assert_eq!(application["skills"], json!(["armed", "vehicle"]));

    // Rejection needs a reason, which the officer is told.
    let decide = format!("/v1/agencies/{}/memberships/{officer_id}/decision", w.agency_id);
    let (status, problem) = call(
        Method::POST,
        &decide,
        &w.admin_token,
        Some(&decision("reject", None)),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(e2e::pointers(&problem).contains("/reason"), "{problem}");
    let reason = "Badge B-2231 is not on our duty roster";
    let (status, rejected) = call(
        Method::POST,
        &decide,
        &w.admin_token,
        Some(&decision("reject", Some(reason))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rejected}");
    assert_eq!(rejected["status"], "rejected");
    assert!(
        mails_to(&email)
            .await
            .iter()
            .any(|m| m.contains("not on our duty roster")),
        "the officer is told why"
    );
    let (status, _) = call(
        Method::POST,
        &decide,
        &w.admin_token,
        Some(&decision("revoke", Some("x"))),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "only an approval can be revoked");

    // The officer applies again; the admin approves.
    let mine = format!("/v1/providers/me/memberships/{}", w.agency_id);
    let facts = json!({"badge_number": "B-2231", "rank": "Deputy", "hire_date": "2015-04-01"});
    let (status, again) = call(Method::PUT, &mine, &token, Some(&facts)).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["status"], "pending");
    let (status, approved) = call(
        Method::POST,
        &decide,
        &w.admin_token,
        Some(&decision("approve", None)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["status"], "approved");
    let until: Timestamp = approved["valid_until"]
        .as_str()
        .expect("until")
        .parse()
        .expect("time");
    let days = until.duration_since(Timestamp::now()).as_hours() / 24;
    assert!(
        (360..=367).contains(&days),
        "12 months by default, got {days} days"
    );
    assert!(mails_to(&email).await.iter().any(|m| m.contains("approved")));
    let trail = domain::audit::trail(&w.state.store, &officer_id)
        .await
        .expect("trail");
    let by_admin: Vec<&str> = trail
        .iter()
        .filter(|a| a.actor_user_id == w.admin.user_id)
        .map(|a| a.action.as_str())
        .collect();
    assert!(
        by_admin.contains(&"membership.rejected") && by_admin.contains(&"membership.approved"),
        "who decided what is audited: {by_admin:?}"
    );

    // Approved: listed (availability given while pending now counts), sees and claims the shift.
    let (_, shifts) = call(Method::GET, "/v1/providers/me/open-shifts", &token, None).await;
    assert_eq!(shifts["items"][0]["request_id"], request_id.as_str(), "{shifts}");
    let (status, claimed) = call(Method::POST, &claims, &token, None).await;
    assert_eq!(status, StatusCode::CREATED, "{claimed}");

    // A field the agency did not verify changes nothing; the badge sends it back to pending.
    let (status, _) = call(
        Method::PATCH,
        "/v1/me/provider",
        &token,
        Some(&json!({"phone": "+13075550188"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        membership_of(&w, &officer_id).await.status,
        MembershipStatus::Approved
    );
    let new_badge = json!({"badge_number": "B-9940", "rank": "Deputy", "hire_date": "2015-04-01"});
    let (status, edited) = call(Method::PUT, &mine, &token, Some(&new_badge)).await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["status"], "pending");
    let second = book_at(&w, tuesday + SignedDuration::from_hours(48), 4, 1, false).await;
    let (_, shifts) = call(Method::GET, "/v1/providers/me/open-shifts", &token, None).await;
    assert_eq!(shifts["items"], json!([]), "pending again: {shifts}");
    let (status, problem) = call(
        Method::POST,
        &format!("/v1/service-requests/{second}/claims"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["rule"], "membership_not_approved");

    // Re-approved; then a change of skills (verified by every agency) sends it back too.
    let (status, _) = call(
        Method::POST,
        &decide,
        &w.admin_token,
        Some(&decision("approve", None)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        Method::PATCH,
        "/v1/me/provider",
        &token,
        Some(&json!({"skills": ["armed", "vehicle", "supervisor"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, listed) = call(Method::GET, "/v1/providers/me/memberships", &token, None).await;
    assert_eq!(listed["items"][0]["status"], "pending", "{listed}");
    assert_eq!(listed["items"][0]["badge_number"], "B-9940");
}

#[tokio::test]
async fn an_approval_lapses_after_the_agencys_period_with_notice_and_a_revocation_releases_shifts() {
    let w = world(|rules| rules.reverification_months = 3).await;
    let member = officer(&w, |_| {}).await;
    let far = book_at(
        &w,
        Timestamp::now() + SignedDuration::from_hours(24 * 100),
        4,
        1,
        false,
    )
    .await;
    scheduling::claim(&w.state, &member, &far).await.expect("claim");
    let approved = membership_of(&w, &member.user_id).await;
    let until = approved.valid_until.expect("an approval has an end");
    let admin_email = w
        .state
        .directory
        .user(&w.admin.user_id)
        .await
        .expect("directory")
        .and_then(|u| u.email)
        .expect("the admin's address");
    let notices_before = mails_to(&admin_email).await.len();

    // 29 days before: the admins are told, once.
    let notice_day = stack()
        .function_state(
            "RetentionFunction",
            Clock::fixed(until - SignedDuration::from_hours(24 * 29)),
        )
        .await;
    // The hourly run finds it on the due-date index (a read: the run itself, at a future clock,
    // would move other tests' records too, so the step is taken for this membership only).
    let key = memberships::Membership::key_of(&member.user_id, &w.agency_id);
    assert!(
        due_now(&notice_day, &key).await,
        "on the due-date index 29 days ahead"
    );
    let early = stack()
        .function_state(
            "RetentionFunction",
            Clock::fixed(until - SignedDuration::from_hours(24 * 31)),
        )
        .await;
    assert!(!due_now(&early, &key).await, "not due 31 days ahead");
    for _ in 0..2 {
        scheduling::review_membership(&notice_day, &key)
            .await
            .expect("review");
    }
    let told = membership_of(&w, &member.user_id).await;
    assert!(told.lapse_notice_sent_at.is_some());
    assert!(
        told.is_current(Timestamp::now()),
        "still approved after the notice"
    );
    let notices: Vec<String> = mails_to(&admin_email).await;
    assert_eq!(notices.len(), notices_before + 1, "one notice, not one per run");
    assert!(notices.last().is_some_and(|m| m.contains(&member.user_id)));

    // After the period: lapsed, the future shift released, the officer told.
    let lapse_day = stack()
        .function_state(
            "RetentionFunction",
            Clock::fixed(until + SignedDuration::from_hours(1)),
        )
        .await;
    assert!(due_now(&lapse_day, &key).await, "due again at the lapse");
    scheduling::review_membership(&lapse_day, &key)
        .await
        .expect("review");
    assert_eq!(
        membership_of(&w, &member.user_id).await.status,
        MembershipStatus::Lapsed
    );
    assert_eq!(
        staffing(&w, &far).await,
        (0, Status::Requested),
        "the slot reopened"
    );
    let error = scheduling::assign(
        &w.state,
        &w.dispatcher,
        &far,
        scheduling::AssignInput {
            officer_user_id: member.user_id.clone(),
        },
    )
    .await
    .expect_err("a lapsed member");
    assert_eq!(rule_of(&error), Some("membership_lapsed"));

    // Re-verified, placed again; then revoked: the shift goes back to dispatch.
    let approve = memberships::DecisionInput {
        decision: memberships::MembershipDecision::Approve,
        reason: None,
    };
    scheduling::decide_membership(&w.state, &w.admin, &w.agency_id, &member.user_id, approve)
        .await
        .expect("re-approved");
    scheduling::claim(&w.state, &member, &far)
        .await
        .expect_err("released once: already on the request");
    let other = book_at(
        &w,
        Timestamp::now() + SignedDuration::from_hours(24 * 20),
        4,
        1,
        false,
    )
    .await;
    scheduling::claim(&w.state, &member, &other).await.expect("claim");
    let revoke = memberships::DecisionInput {
        decision: memberships::MembershipDecision::Revoke,
        reason: Some("Left the department".into()),
    };
    scheduling::decide_membership(&w.state, &w.admin, &w.agency_id, &member.user_id, revoke)
        .await
        .expect("revoked");
    assert_eq!(staffing(&w, &other).await, (0, Status::Requested));
    // Revoking again changes nothing (and would finish a clean-up a failure interrupted); the
    // revocation stays on record: leaving cannot erase it.
    let again = memberships::DecisionInput {
        decision: memberships::MembershipDecision::Revoke,
        reason: Some("Left the department".into()),
    };
    let repeated = scheduling::decide_membership(&w.state, &w.admin, &w.agency_id, &member.user_id, again)
        .await
        .expect("a repeated revocation is no error");
    assert_eq!(repeated.status, MembershipStatus::Revoked);
    let kept = scheduling::leave_agency(&w.state, &member, &w.agency_id)
        .await
        .expect_err("the revocation stays on record");
    assert!(matches!(kept, ApiError::Conflict(_)), "{kept:?}");

    // An admin who is also an officer of the agency cannot approve themselves.
    let mut settings = domain::agencies::read(&w.state, &w.admin, &w.agency_id)
        .await
        .expect("agency")
        .settings;
    settings.admin_user_ids.push(member.user_id.clone());
    domain::agencies::update(&w.state, &w.admin, &w.agency_id, settings)
        .await
        .expect("member made an admin");
    let as_admin = Caller {
        roles: [edge::auth::Role::Provider, edge::auth::Role::AgencyAdmin]
            .into_iter()
            .collect(),
        ..member.clone()
    };
    let mine = memberships::MembershipInput {
        badge_number: "B-1".into(),
        rank: None,
        hire_date: "2015-04-01".parse().expect("date"),
    };
    memberships::apply(&w.state, &as_admin, &w.agency_id, mine)
        .await
        .expect("applies again");
    let self_approval = memberships::DecisionInput {
        decision: memberships::MembershipDecision::Approve,
        reason: None,
    };
    let refused =
        scheduling::decide_membership(&w.state, &as_admin, &w.agency_id, &member.user_id, self_approval)
            .await
            .expect_err("no self-approval");
    assert!(matches!(refused, ApiError::Forbidden(_)), "{refused:?}");
}

#[tokio::test]
async fn an_agency_that_approves_bookings_first_keeps_them_from_officers_until_it_does() {
    let w = world(|rules| rules.approve_requests = true).await;
    let member = officer(&w, |_| {}).await;
    let first = book_at(&w, next_tuesday_10(), 4, 1, false).await;
    assert_eq!(staffing(&w, &first).await, (0, Status::AwaitingApproval));
    assert!(
        scheduling::open_shifts(&w.state, &member, None)
            .await
            .expect("open shifts")
            .is_empty()
    );
    let hidden = scheduling::claim(&w.state, &member, &first)
        .await
        .expect_err("hidden");
    assert!(matches!(hidden, ApiError::NotFound(_)), "{hidden:?}");
    let path = format!("/v1/service-requests/{first}/approval");
    let (status, _) = call(
        Method::POST,
        &path,
        &w.customer_token,
        Some(&decision("approve", None)),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the customer cannot approve their own booking"
    );
    let (status, approved) = call(
        Method::POST,
        &path,
        &w.dispatcher_token,
        Some(&decision("approve", None)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["status"], "requested");
    let shifts = scheduling::open_shifts(&w.state, &member, None)
        .await
        .expect("open shifts");
    assert_eq!(shifts.len(), 1);
    let (status, _) = call(
        Method::POST,
        &path,
        &w.dispatcher_token,
        Some(&decision("approve", None)),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "decided once");

    let second = book_at(
        &w,
        next_tuesday_10() + SignedDuration::from_hours(48),
        4,
        1,
        false,
    )
    .await;
    let path = format!("/v1/service-requests/{second}/approval");
    let (status, problem) = call(
        Method::POST,
        &path,
        &w.admin_token,
        Some(&decision("reject", None)),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (status, rejected) = call(
        Method::POST,
        &path,
        &w.admin_token,
        Some(&decision(
            "reject",
            Some("No officers free at the fairgrounds that week"),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rejected}");
    assert_eq!(rejected["status"], "rejected");
    assert!(
        rejected.get("cancellation").is_some_and(|c| c["fee"].is_null()),
        "{rejected}"
    );
    assert!(
        mails_to(&w.customer_email)
            .await
            .iter()
            .any(|m| m.contains("No officers free at the fairgrounds")),
        "the customer is told why"
    );
    let gone = scheduling::claim(&w.state, &member, &second)
        .await
        .expect_err("rejected");
    assert!(matches!(gone, ApiError::Conflict(_)), "{gone:?}");

    // Leaving the last agency unlists the officer from its pool; the availability stays theirs.
    scheduling::leave_agency(&w.state, &member, &w.agency_id)
        .await
        .expect("left");
    let roster = w
        .state
        .store
        .get::<domain::scheduling::roster::Roster>(&domain::scheduling::roster::Roster::key_of(
            &member.user_id,
        ))
        .await
        .expect("read")
        .expect("roster")
        .record;
    assert!(
        roster.agency_ids.is_empty() && roster.pool_keys.is_empty(),
        "{roster:?}"
    );
    assert!(roster.availability.is_some());
}

/// A change that excludes the officer, raced against their claim.
#[derive(Debug, Clone, Copy)]
enum Change {
    Restriction,
    DoNotHire,
    Revocation,
    Erasure,
}

async fn apply(w: &World, change: Change, officer: &Caller) {
    match change {
        Change::Restriction => {
            domain::privacy::requests::set_restricted(&w.state, &officer.user_id, true)
                .await
                .expect("restricted");
        }
        Change::DoNotHire => {
            scheduling::put_do_not_hire(
                &w.state,
                &w.admin,
                &w.agency_id,
                &officer.user_id,
                DoNotHireInput { note: None },
            )
            .await
            .expect("do-not-hire");
        }
        Change::Revocation => {
            let revoke = memberships::DecisionInput {
                decision: memberships::MembershipDecision::Revoke,
                reason: Some("Suspended pending review".into()),
            };
            scheduling::decide_membership(&w.state, &w.admin, &w.agency_id, &officer.user_id, revoke)
                .await
                .expect("revoked");
        }
        Change::Erasure => {
            use domain::privacy::erasure::{self, ErasureReason};
            erasure::start(
                &w.state,
                &officer.user_id,
                erasure::ErasureOrder::without_request(ErasureReason::Request, &officer.user_id),
            )
            .await
            .expect("erasure started");
            erasure::run(&w.state, &officer.user_id, usize::MAX)
                .await
                .expect("erasure ran");
        }
    }
}

#[tokio::test]
async fn a_placement_racing_a_restriction_a_do_not_hire_a_revocation_or_an_erasure_never_survives_it() {
    let w = world(|_| {}).await;
    let tuesday = next_tuesday_10();
    let mut round = 0;
    let mut outcomes = Vec::new();
    for change in [
        Change::Restriction,
        Change::DoNotHire,
        Change::Revocation,
        Change::Erasure,
    ] {
        // The claim takes a few reads before its transaction: starting the change a little later
        // lands it before, inside, or after that window.
        for (claim_after_ms, change_after_ms) in [(0u64, 0u64), (0, 25), (0, 60), (0, 120), (0, 250), (80, 0)]
        {
            round += 1;
            // A real user of the pool: the erasure deletes it.
            let email = unique_email("racer");
            let token = stack().user_with_email(&email, &["provider"]).await.id_token;
            let racer = officer_with(&w, Some(sub_of(&token)), email, always(), |_| {}).await;
            let start = tuesday + SignedDuration::from_hours(24 * 7 * round);
            let request_id = book_at(&w, start, 4, 1, false).await;
            let claim = async {
                tokio::time::sleep(std::time::Duration::from_millis(claim_after_ms)).await;
                scheduling::claim(&w.state, &racer, &request_id).await
            };
            let change_later = async {
                tokio::time::sleep(std::time::Duration::from_millis(change_after_ms)).await;
                apply(&w, change, &racer).await;
            };
            let (claimed, ()) = tokio::join!(claim, change_later);
            // Whatever the order, the final state holds: the officer holds no slot of the request,
            // and the request counts exactly the slots held.
            let held = domain::scheduling::assignments::assignments_of(&w.state.store, &racer.user_id, 50)
                .await
                .unwrap_or_default()
                .into_iter()
                .filter(|a| a.request_id == request_id && a.status.is_active())
                .count();
            let (filled, status) = staffing(&w, &request_id).await;
            assert_eq!(
                (held, filled, status),
                (0, 0, Status::Requested),
                "{change:?} (claim +{claim_after_ms} ms, change +{change_after_ms} ms): claim answered {claimed:?}"
            );
            let refused_at_commit = e2e::captured_logs()
                .lines()
                .any(|l| l.contains(&request_id) && l.contains("placement refused at commit"));
            outcomes.push(format!(
                "{change:?}/{claim_after_ms}/{change_after_ms}: {}",
                match (&claimed, refused_at_commit) {
                    (Ok(_), _) => "claim committed first, then released",
                    (Err(_), true) => "claim refused at commit",
                    (Err(_), false) => "claim refused on reading",
                }
            ));
        }
    }
    eprintln!("races: {outcomes:#?}");
}

/// Holds the first transaction a client sends until the test has made its change, so the change
/// lands exactly between the claim's reads and its commit.
#[derive(Debug)]
struct HoldFirstCommit {
    reached: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    go: std::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
}

impl e2e::SdkHook for HoldFirstCommit {
    fn before(&self, operation: &str) -> futures::future::BoxFuture<'static, ()> {
        if operation.ends_with(".TransactWriteItems") {
            let reached = self.reached.lock().ok().and_then(|mut r| r.take());
            if let Some(reached) = reached {
                let go = self.go.lock().ok().and_then(|mut g| g.take());
                let _ = reached.send(());
                return Box::pin(async move {
                    if let Some(go) = go {
                        let _ = go.await;
                    }
                });
            }
        }
        Box::pin(async {})
    }
}

#[tokio::test]
async fn a_do_not_hire_filed_between_a_claims_checks_and_its_commit_is_caught_by_the_commit() {
    let w = world(|_| {}).await;
    let email = unique_email("latecomer");
    let racer = officer_with(&w, None, email, always(), |_| {}).await;
    let start = next_tuesday_10() + SignedDuration::from_hours(24 * 7 * 30);
    let request_id = book_at(&w, start, 4, 1, false).await;
    let (reached_tx, reached_rx) = tokio::sync::oneshot::channel();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel();
    let hook = HoldFirstCommit {
        reached: std::sync::Mutex::new(Some(reached_tx)),
        go: std::sync::Mutex::new(Some(go_rx)),
    };
    let held = e2e::HookedHttpClient::wrap(&stack().sdk().await, hook);
    let claiming = platform::AppState::new((*w.state.config).clone(), &held, Clock::System)
        .await
        .expect("state");
    // Only the claim's clients hold the hook now: if the claim ends without a transaction, the
    // signal's sender goes with them and the wait below fails instead of hanging.
    drop(held);
    let claim = {
        let (racer, request_id) = (racer.clone(), request_id.clone());
        tokio::spawn(async move { scheduling::claim(&claiming, &racer, &request_id).await })
    };
    // The claim has read and checked everything, and is about to commit: the agency files the
    // officer on its do-not-hire list now.
    tokio::time::timeout(std::time::Duration::from_secs(120), reached_rx)
        .await
        .expect("the claim reached its commit in time")
        .expect("the claim reached its commit");
    apply(&w, Change::DoNotHire, &racer).await;
    let _ = go_tx.send(());
    let claimed = claim.await.expect("the claim task ran");

    assert!(claimed.is_err(), "the claim is refused: {claimed:?}");
    let logs = e2e::captured_logs();
    assert!(
        logs.lines().any(|l| l.contains(&request_id)
            && l.contains("placement refused at commit")
            && l.contains("\"do_not_hire_added\":true")),
        "the commit's own re-check refused it, not a read"
    );
    let (filled, status) = staffing(&w, &request_id).await;
    assert_eq!((filled, status), (0, Status::Requested), "nothing was placed");
}

#[tokio::test]
async fn an_officer_of_two_agencies_works_for_both_and_losing_one_keeps_the_other() {
    let first = world(|_| {}).await;
    let second = world(|_| {}).await;
    let member = officer(&first, |_| {}).await;
    let facts = memberships::MembershipInput {
        badge_number: "K9-22".into(),
        rank: Some("Deputy".into()),
        hire_date: "2019-06-01".parse().expect("date"),
    };
    memberships::apply(&second.state, &member, &second.agency_id, facts)
        .await
        .expect("applies to the second agency");
    let approve = memberships::DecisionInput {
        decision: memberships::MembershipDecision::Approve,
        reason: None,
    };
    scheduling::decide_membership(
        &second.state,
        &second.admin,
        &second.agency_id,
        &member.user_id,
        approve,
    )
    .await
    .expect("the second agency approves");
    let tuesday = next_tuesday_10();
    let here = book_at(&first, tuesday, 4, 1, false).await;
    let there = book_at(&second, tuesday + SignedDuration::from_hours(24), 4, 1, false).await;
    let shifts: Vec<String> = scheduling::open_shifts(&first.state, &member, None)
        .await
        .expect("open shifts")
        .into_iter()
        .map(|s| s.request_id)
        .collect();
    assert!(shifts.contains(&here) && shifts.contains(&there), "{shifts:?}");
    scheduling::claim(&first.state, &member, &here)
        .await
        .expect("claim here");
    scheduling::claim(&first.state, &member, &there)
        .await
        .expect("claim there");
    let revoke = memberships::DecisionInput {
        decision: memberships::MembershipDecision::Revoke,
        reason: Some("Transferred".into()),
    };
    scheduling::decide_membership(
        &second.state,
        &second.admin,
        &second.agency_id,
        &member.user_id,
        revoke,
    )
    .await
    .expect("revoked by the second");
    assert_eq!(
        staffing(&second, &there).await,
        (0, Status::Requested),
        "released there"
    );
    assert_eq!(staffing(&first, &here).await.0, 1, "kept here");
    let roster = first
        .state
        .store
        .get::<domain::scheduling::roster::Roster>(&domain::scheduling::roster::Roster::key_of(
            &member.user_id,
        ))
        .await
        .expect("read")
        .expect("roster")
        .record;
    assert_eq!(
        roster.agency_ids,
        vec![first.agency_id.clone()],
        "listed only where still a member"
    );
    // The second agency's admin cannot decide for the first.
    let other = memberships::DecisionInput {
        decision: memberships::MembershipDecision::Revoke,
        reason: Some("x".into()),
    };
    let refused = scheduling::decide_membership(
        &first.state,
        &second.admin,
        &first.agency_id,
        &member.user_id,
        other,
    )
    .await
    .expect_err("another agency's admin");
    assert!(matches!(refused, ApiError::NotFound(_)), "{refused:?}");
}

#[tokio::test]
async fn an_erased_officers_do_not_hire_entries_go_with_them() {
    use domain::privacy::erasure::{self, ErasureReason};
    use domain::scheduling::roster::DoNotHire;
    let w = world(|_| {}).await;
    let listed = officer(&w, |_| {}).await;
    scheduling::put_do_not_hire(
        &w.state,
        &w.admin,
        &w.agency_id,
        &listed.user_id,
        DoNotHireInput {
            note: Some("Complaint from the Pinedale fairgrounds manager".into()),
        },
    )
    .await
    .expect("listed");
    let nobody = scheduling::put_do_not_hire(
        &w.state,
        &w.admin,
        &w.agency_id,
        "no-such-provider",
        DoNotHireInput { note: None },
    )
    .await
    .expect_err("only a real provider can be listed");
    assert!(matches!(nobody, ApiError::NotFound(_)), "{nobody:?}");
    erasure::start(
        &w.state,
        &listed.user_id,
        erasure::ErasureOrder::without_request(ErasureReason::Request, &listed.user_id),
    )
    .await
    .expect("erasure started");
    erasure::run(&w.state, &listed.user_id, usize::MAX)
        .await
        .expect("erasure ran");
    let entry = w
        .state
        .store
        .get::<DoNotHire>(&DoNotHire::key_of(&w.agency_id, &listed.user_id))
        .await
        .expect("read");
    assert!(
        entry.is_none(),
        "the entry and its note about the person are gone"
    );
}
