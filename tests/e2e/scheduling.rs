//! Scheduling against the emulator: no double booking under concurrent claims, every eligibility
//! rule, auto-assign with its reasons, the officer's accept/decline/release/check-in/check-out, the
//! mails each step sends, and what each party may read.

use domain::accounts::{AccountStatus, ProviderAccount, Skill};
use domain::agencies::{self, AgencySettings, AssignmentMode, Rates, Rules};
use domain::scheduling::assignments::AssignmentStatus;
use domain::scheduling::availability::{Availability, DatedException, Day, TimeWindow, WeeklyAvailability};
use domain::scheduling::roster::{Roster, WorkedShift};
use domain::scheduling::{self, Action, AutoAssignInput, DoNotHireInput};
use domain::service_requests::{self, Status};
use e2e::{approved_member, new_user, stack, sub_of, unique_email};
use edge::ApiError;
use edge::auth::{Caller, Role};
use futures::future::join_all;
use jiff::civil::{Date, Weekday};
use jiff::{SignedDuration, Timestamp};
use platform::AppState;
use platform::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const ZONE: &str = "America/Denver";

pub(crate) fn caller(user_id: &str, roles: &[Role]) -> Caller {
    Caller {
        user_id: user_id.to_owned(),
        username: None,
        email: None,
        email_verified: false,
        roles: roles.iter().copied().collect(),
        auth_time: None,
    }
}

/// An agency with an admin, a dispatcher and a customer, all real users of the local pool.
pub(crate) struct World {
    pub(crate) state: AppState,
    pub(crate) agency_id: String,
    pub(crate) admin: Caller,
    pub(crate) admin_token: String,
    pub(crate) dispatcher: Caller,
    pub(crate) dispatcher_email: String,
    pub(crate) dispatcher_token: String,
    pub(crate) customer: Caller,
    pub(crate) customer_email: String,
    pub(crate) customer_token: String,
}

pub(crate) async fn world(tweak: impl FnOnce(&mut Rules)) -> World {
    let stack = stack();
    let state = stack.state("SchedulingFunction", Clock::System).await;
    let admin = stack.user("schedadmin", &["agency_admin"]).await;
    let dispatcher_email = unique_email("dispatch");
    let dispatcher = stack.user_with_email(&dispatcher_email, &["dispatcher"]).await;
    let customer_email = unique_email("schedcustomer");
    let customer = stack.user_with_email(&customer_email, &["customer"]).await;
    let mut rules = domain::samples::agency_rules();
    tweak(&mut rules);
    let settings = AgencySettings {
        agency_name: "Sublette County Sheriff".into(),
        time_zone: ZONE.into(),
        admin_user_ids: vec![sub_of(&admin.id_token)],
        dispatcher_user_ids: vec![sub_of(&dispatcher.id_token)],
        rates: Rates {
            hourly_rate_cents: 6500,
            minimum_hours: 2,
            holiday_multiplier_percent: 150,
            short_notice_multiplier_percent: 125,
            short_notice_hours: 24,
            vehicle_charge_cents: 0,
            admin_fee_percent: 5,
        },
        rules,
        cancellation_fees: vec![],
        holidays: vec![],
    };
    let ops = caller(&uuid::Uuid::new_v4().to_string(), &[Role::Ops]);
    let agency = agencies::create(&state, &ops, settings).await.expect("agency");
    let customer_id = sub_of(&customer.id_token);
    state.keys.create_user_key(&customer_id).await.expect("key");
    state
        .store
        .create(&domain::samples::customer(&customer_id, &customer_email))
        .await
        .expect("customer account");
    World {
        agency_id: agency.agency_id,
        admin: caller(&sub_of(&admin.id_token), &[Role::AgencyAdmin]),
        admin_token: admin.id_token,
        dispatcher: caller(&sub_of(&dispatcher.id_token), &[Role::Dispatcher]),
        dispatcher_email,
        dispatcher_token: dispatcher.id_token,
        customer: caller(&customer_id, &[Role::Customer]),
        customer_email,
        customer_token: customer.id_token,
        state,
    }
}

pub(crate) fn always() -> Availability {
    Availability {
        time_zone: None,
        weekly: [
            Day::Monday,
            Day::Tuesday,
            Day::Wednesday,
            Day::Thursday,
            Day::Friday,
            Day::Saturday,
            Day::Sunday,
        ]
        .into_iter()
        .map(|day| WeeklyAvailability {
            day,
            windows: vec![TimeWindow {
                start: "00:00".into(),
                end: "24:00".into(),
            }],
        })
        .collect(),
        exceptions: vec![],
    }
}

/// An officer of the world's agency (account stored as registration stores it) who offered
/// `availability`. `user_id` is given for officers who also sign in.
pub(crate) async fn officer_with(
    w: &World,
    user_id: Option<String>,
    email: String,
    availability: Availability,
    tweak: impl FnOnce(&mut ProviderAccount),
) -> Caller {
    let user_id = match user_id {
        Some(id) => {
            w.state.keys.create_user_key(&id).await.expect("key");
            id
        }
        None => new_user(&w.state).await,
    };
    officer_hired(w, user_id, email, availability, "2015-04-01", tweak).await
}

/// [`officer_with`] hired on `hire_date` (what seniority ranks).
pub(crate) async fn officer_hired(
    w: &World,
    user_id: String,
    email: String,
    availability: Availability,
    hire_date: &str,
    tweak: impl FnOnce(&mut ProviderAccount),
) -> Caller {
    let mut account = domain::samples::provider(&user_id, &email);
    account.service_area.center = None;
    account.service_area.radius_km = None;
    account.service_area.regions = vec!["WY".into()];
    tweak(&mut account);
    w.state.store.create(&account).await.expect("provider account");
    approved_member(&w.state, &w.admin, &w.agency_id, &user_id, hire_date).await;
    let me = caller(&user_id, &[Role::Provider]);
    scheduling::put_availability(&w.state, &me, availability)
        .await
        .expect("availability");
    me
}

pub(crate) async fn officer(w: &World, tweak: impl FnOnce(&mut ProviderAccount)) -> Caller {
    officer_with(w, None, unique_email("officer"), always(), tweak).await
}

/// A local date-time string in Denver.
pub(crate) fn local(at: Timestamp) -> String {
    at.in_tz(ZONE).expect("tz").datetime().to_string()
}

/// The booking body [`book_at`] sends: a rodeo night at the fairgrounds, paid by a processor's token.
pub(crate) fn booking_body(w: &World, start: Timestamp, hours: i64, officers: u32, armed: bool) -> Value {
    json!({
        "agency_id": w.agency_id,
        "event": {"name": "Pinedale Rodeo Night", "kind": "rodeo", "alcohol_served": false},
        "site": {"name": "Sublette County Fairgrounds", "address": {"line1": "10 Fairgrounds Rd", "city": "Pinedale",
                 "region": "WY", "postal_code": "82941", "country": "US"},
                 "contact": {"name": "Cordelia Wintersmith", "phone": "+13075550177"}},
        "starts_at": local(start),
        "ends_at": local(start + SignedDuration::from_hours(hours)),
        "time_zone": ZONE,
        "officers": officers,
        "requirements": {"armed": armed, "attire": "uniformed", "vehicle": false, "supervisor": false},
        "payment": {"processor_token": "pm_card_visa", "card_brand": "visa", "card_last4": "4242"}
    })
}

/// Books a request of `officers` officers from `start` for `hours` hours; returns its id.
pub(crate) async fn book_at(w: &World, start: Timestamp, hours: i64, officers: u32, armed: bool) -> String {
    let body = booking_body(w, start, hours, officers, armed);
    let (booking, _) = service_requests::book(&w.state, &w.customer, body.to_string().as_bytes(), None)
        .await
        .expect("booking");
    booking.requests[0].request_id.clone()
}

/// The start of the first Tuesday at least four days ahead, 10:00 Denver: a day whose week also
/// holds the Wednesday after it.
pub(crate) fn next_tuesday_10() -> Timestamp {
    let mut day: Date = (Timestamp::now() + SignedDuration::from_hours(96))
        .in_tz(ZONE)
        .expect("tz")
        .date();
    while day.weekday() != Weekday::Tuesday {
        day = day.tomorrow().expect("date");
    }
    day.at(10, 0, 0, 0).in_tz(ZONE).expect("tz").timestamp()
}

/// The request's staffing as its customer reads it: (filled, status).
pub(crate) async fn staffing(w: &World, request_id: &str) -> (u32, Status) {
    match service_requests::read(&w.state, &w.customer, request_id).await {
        Ok(service_requests::ReadView::Booking(view)) => (view.filled, view.status),
        other => panic!("expected the customer's view, got {other:?}"),
    }
}

pub(crate) fn rule_of(error: &ApiError) -> Option<&'static str> {
    match error {
        ApiError::Ineligible { rule, .. } | ApiError::Refused { rule, .. } => Some(rule),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_officers_claim_three_slots_and_exactly_three_win() {
    let w = world(|_| {}).await;
    // Twenty weeks ahead: other tests run the whole scheduled run with clocks up to 91 days ahead
    // (privacy deadlines, support retention), which would start, complete or expire a request due
    // sooner while the hundred officers are still being set up (seen: every claim "no open slot").
    let start = next_tuesday_10() + SignedDuration::from_hours(24 * 7 * 20);
    let booked_on = Timestamp::now().in_tz("UTC").expect("utc").date();
    let request_id = book_at(&w, start, 4, 3, false).await;
    let officers: Vec<Caller> = join_all((0..100).map(|_| officer(&w, |_| {}))).await;
    let claims = officers.iter().map(|o| {
        let state = w.state.clone();
        let o = o.clone();
        let request_id = request_id.clone();
        tokio::spawn(async move { scheduling::claim(&state, &o, &request_id).await })
    });
    let results: Vec<_> = join_all(claims)
        .await
        .into_iter()
        .map(|joined| joined.expect("the claim task ran"))
        .collect();
    let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let refusals: std::collections::BTreeSet<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|error| format!("{error:?}"))
        .collect();
    assert_eq!(
        won.len(),
        3,
        "exactly as many winners as slots; the others got {refusals:?}"
    );
    for lost in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(lost.status(), StatusCode::CONFLICT, "{lost:?}");
    }
    assert_eq!(staffing(&w, &request_id).await, (3, Status::FullyStaffed));
    let active = domain::scheduling::assignments::of_request(&w.state.store, &request_id)
        .await
        .expect("assignments")
        .into_iter()
        .filter(|a| a.record.status.is_active())
        .count();
    assert_eq!(active, 3, "the table holds exactly three assignments");
    // Usage statistics count the agency's activity (one booking, three placements), anonymously.
    // Counted per UTC day: the booking and the placements may fall either side of midnight.
    let today = Timestamp::now().in_tz("UTC").expect("utc").date();
    let agency_bucket = format!("agency#{}", w.agency_id);
    let mut counted = 0;
    for day in BTreeSet::from([booked_on, today]) {
        let counters = edge::usage::counters(&w.state, day)
            .await
            .expect("usage counters");
        counted += counters.get(&agency_bucket).copied().unwrap_or(0);
    }
    assert_eq!(counted, 4, "one booking and three placements");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_officer_claiming_twenty_overlapping_shifts_gets_one() {
    let w = world(|_| {}).await;
    let start = next_tuesday_10();
    let mut requests = Vec::new();
    for minutes in 0..20 {
        requests.push(book_at(&w, start + SignedDuration::from_mins(minutes * 10), 4, 2, false).await);
    }
    let me = officer(&w, |_| {}).await;
    let claims = requests.iter().map(|request_id| {
        let state = w.state.clone();
        let me = me.clone();
        let request_id = request_id.clone();
        tokio::spawn(async move { scheduling::claim(&state, &me, &request_id).await })
    });
    let results: Vec<_> = join_all(claims)
        .await
        .into_iter()
        .map(|joined| joined.expect("the claim task ran"))
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    for lost in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(rule_of(lost), Some("overlap"), "{lost:?}");
    }
    let roster = w
        .state
        .store
        .get::<Roster>(&Roster::key_of(&me.user_id))
        .await
        .expect("read")
        .expect("roster");
    assert_eq!(roster.record.commitments.len(), 1, "one shift held");
}

#[tokio::test]
async fn every_rule_excludes_and_auto_assign_explains_its_picks() {
    let w = world(|rules| {
        rules.weekly_hour_cap = 6;
        rules.min_rest_hours = 8;
    })
    .await;
    let tuesday = next_tuesday_10();
    let tuesday_date = tuesday.in_tz(ZONE).expect("tz").date();
    let senior = officer_hired(
        &w,
        new_user(&w.state).await,
        unique_email("senior"),
        always(),
        "2005-02-01",
        |_| {},
    )
    .await;
    let junior = officer_hired(
        &w,
        new_user(&w.state).await,
        unique_email("junior"),
        always(),
        "2020-02-01",
        |_| {},
    )
    .await;
    let expired = officer(&w, |a| {
        a.licence.expires_on = tuesday_date.yesterday().expect("date")
    })
    .await;
    // Restricted after offering availability (a privacy request): still listed, never matched.
    let restricted = officer(&w, |_| {}).await;
    let key = domain::accounts::account_key(&restricted.user_id, domain::accounts::AccountRole::Provider);
    let account = w
        .state
        .store
        .get::<ProviderAccount>(&key)
        .await
        .expect("read")
        .expect("account");
    let mut now_restricted = account.record.clone();
    now_restricted.status = AccountStatus::Restricted;
    w.state
        .store
        .replace(&now_restricted, account.version)
        .await
        .expect("restricted");
    let unarmed = officer(&w, |a| a.skills = vec![Skill::Unarmed]).await;
    let banned = officer(&w, |_| {}).await;
    let elsewhere = officer(&w, |a| a.service_area.regions = vec!["MT".into()]).await;
    let mut busy_that_day = always();
    busy_that_day.exceptions.push(DatedException {
        date: tuesday_date,
        windows: vec![],
    });
    let away = officer_with(&w, None, unique_email("away"), busy_that_day, |_| {}).await;
    scheduling::put_do_not_hire(
        &w.state,
        &w.admin,
        &w.agency_id,
        &banned.user_id,
        DoNotHireInput {
            note: Some("no-show twice".into()),
        },
    )
    .await
    .expect("do-not-hire");

    let first = book_at(&w, tuesday, 4, 2, true).await;
    let report = scheduling::auto_assign(
        &w.state,
        &w.dispatcher,
        &first,
        AutoAssignInput {
            mode: Some(AssignmentMode::Seniority),
        },
    )
    .await
    .expect("auto-assign");
    let picked: Vec<_> = report.picked.iter().map(|p| p.officer_user_id.as_str()).collect();
    assert_eq!(
        picked,
        [senior.user_id.as_str(), junior.user_id.as_str()],
        "{report:?}"
    );
    assert_eq!(report.picked[0].why, "hired on 2005-02-01");
    assert_eq!((report.picked[0].rank, report.picked[1].rank), (1, 2));
    let skipped: BTreeSet<(String, &str)> = report
        .skipped
        .iter()
        .map(|s| (s.officer_user_id.clone(), s.rule))
        .collect();
    for (who, rule) in [
        (&expired, "licence_expired"),
        // Staff are not told that an officer restricted processing or is being deleted.
        (&restricted, "not_eligible"),
        (&unarmed, "missing_skill"),
        (&banned, "do_not_hire"),
        (&elsewhere, "outside_service_area"),
        (&away, "not_available"),
    ] {
        assert!(
            skipped.contains(&(who.user_id.clone(), rule)),
            "{rule}: {report:?}"
        );
    }
    assert_eq!(report.open_slots, 0);

    // The same officers against the rest of the week: overlap, rest, weekly cap, each named.
    for (offset_hours, length, rule) in [(2, 4, "overlap"), (8, 2, "rest_rule"), (24, 3, "weekly_hour_cap")] {
        let other = book_at(
            &w,
            tuesday + SignedDuration::from_hours(offset_hours),
            length,
            1,
            false,
        )
        .await;
        let refused = scheduling::assign(
            &w.state,
            &w.dispatcher,
            &other,
            scheduling::AssignInput {
                officer_user_id: senior.user_id.clone(),
            },
        )
        .await
        .expect_err("refused");
        assert_eq!(rule_of(&refused), Some(rule), "{refused:?}");
    }
    // A dispatcher naming an excluded officer gets the rule, too.
    let named = book_at(&w, tuesday + SignedDuration::from_hours(24 * 3), 3, 1, false).await;
    for (who, rule) in [(&restricted, "not_eligible"), (&expired, "licence_expired")] {
        let refused = scheduling::assign(
            &w.state,
            &w.dispatcher,
            &named,
            scheduling::AssignInput {
                officer_user_id: who.user_id.clone(),
            },
        )
        .await
        .expect_err("refused");
        assert_eq!(rule_of(&refused), Some(rule));
        let said = format!("{refused}");
        assert!(
            !said.contains("restricted") && !said.contains("deleted"),
            "{said}"
        );
    }
    // Taking the officer off the list makes them placeable again.
    scheduling::delete_do_not_hire(&w.state, &w.admin, &w.agency_id, &banned.user_id)
        .await
        .expect("delete");
    let later = book_at(&w, tuesday + SignedDuration::from_hours(24 * 2), 3, 1, false).await;
    scheduling::assign(
        &w.state,
        &w.dispatcher,
        &later,
        scheduling::AssignInput {
            officer_user_id: banned.user_id.clone(),
        },
    )
    .await
    .expect("placeable once off the list");
}

#[tokio::test]
async fn fewest_hours_ranks_by_checked_out_time_and_rotation_by_last_detail() {
    let w = world(|rules| rules.min_rest_hours = 0).await;
    let tuesday = next_tuesday_10();
    let worked = officer(&w, |_| {}).await;
    let fresh = officer(&w, |_| {}).await;
    // `worked` works a shift: claim, check in at the start, check out four hours later.
    let shift = book_at(&w, tuesday, 4, 1, false).await;
    let assignment = scheduling::claim(&w.state, &worked, &shift).await.expect("claim");
    let at_start = stack()
        .state(
            "SchedulingFunction",
            Clock::fixed(tuesday - SignedDuration::from_mins(10)),
        )
        .await;
    let too_early = stack()
        .state(
            "SchedulingFunction",
            Clock::fixed(tuesday - SignedDuration::from_hours(3)),
        )
        .await;
    assert_eq!(
        scheduling::act(&too_early, &worked, &assignment.assignment_id, Action::CheckIn)
            .await
            .expect_err("too early")
            .status(),
        StatusCode::CONFLICT
    );
    scheduling::act(&at_start, &worked, &assignment.assignment_id, Action::CheckIn)
        .await
        .expect("check in");
    at_start.clock.advance(SignedDuration::from_mins(250));
    let done = scheduling::act(&at_start, &worked, &assignment.assignment_id, Action::CheckOut)
        .await
        .expect("check out");
    assert_eq!(done.status, AssignmentStatus::Completed);
    let roster = w
        .state
        .store
        .get::<Roster>(&Roster::key_of(&worked.user_id))
        .await
        .expect("read")
        .expect("roster");
    assert!(roster.record.commitments.is_empty());
    assert_eq!(
        roster
            .record
            .worked_shifts
            .iter()
            .map(WorkedShift::minutes)
            .sum::<i64>(),
        250
    );

    let next = book_at(&w, tuesday + SignedDuration::from_hours(30), 2, 1, false).await;
    let fewest = scheduling::auto_assign(
        &w.state,
        &w.dispatcher,
        &next,
        AutoAssignInput {
            mode: Some(AssignmentMode::FewestHours),
        },
    )
    .await
    .expect("auto-assign");
    assert_eq!(fewest.picked[0].officer_user_id, fresh.user_id, "{fewest:?}");
    assert_eq!(fewest.picked[0].why, "0.0 hours worked in the last 28 days");
    assert_eq!(fewest.not_needed, 1, "the officer who worked ranks second");
    let third = book_at(&w, tuesday + SignedDuration::from_hours(40), 2, 1, false).await;
    let rotation = scheduling::auto_assign(
        &w.state,
        &w.dispatcher,
        &third,
        AutoAssignInput {
            mode: Some(AssignmentMode::Rotation),
        },
    )
    .await
    .expect("auto-assign");
    // `fresh` has never worked a detail, so rotation picks them first too.
    assert_eq!(rotation.picked[0].why, "no detail worked yet");
}

pub(crate) async fn call(
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    e2e::call_api(method, path, Some(token), body, None).await
}

#[tokio::test]
async fn officers_claim_accept_and_release_through_the_gateway_and_everyone_is_told() {
    let stack = stack();
    let w = world(|_| {}).await;
    let a_email = unique_email("claimer");
    let a_token = stack.user_with_email(&a_email, &["provider"]).await.id_token;
    let a = officer_with(&w, Some(sub_of(&a_token)), a_email.clone(), always(), |_| {}).await;
    let b_email = unique_email("named");
    let b_token = stack.user_with_email(&b_email, &["provider"]).await.id_token;
    let b = officer_with(&w, Some(sub_of(&b_token)), b_email.clone(), always(), |a| {
        a.legal_name = "Bartholomew Quince".into();
    })
    .await;
    // An officer of another agency, with an account: requests of this agency do not exist for them.
    let outsider = stack.user("outsider", &["provider"]).await.id_token;
    let outsider_id = sub_of(&outsider);
    w.state.keys.create_user_key(&outsider_id).await.expect("key");
    // No membership of this agency at all.
    let outsider_account = domain::samples::provider(&outsider_id, &unique_email("outsider"));
    w.state
        .store
        .create(&outsider_account)
        .await
        .expect("outsider account");

    // Availability round-trips; a malformed window is a 422 naming it.
    let weekly = json!({"weekly": [{"day": "monday", "windows": [{"start": "06:00", "end": "24:00"}]}]});
    let (status, _) = call(
        Method::PUT,
        "/v1/providers/me/availability",
        &a_token,
        Some(&weekly),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, back) = call(Method::GET, "/v1/providers/me/availability", &a_token, None).await;
    assert_eq!(
        (status, back["weekly"][0]["windows"][0]["start"].clone()),
        (StatusCode::OK, json!("06:00"))
    );
    let bad = json!({"weekly": [{"day": "monday", "windows": [{"start": "18:00", "end": "06:00"}]}]});
    let (status, problem) = call(Method::PUT, "/v1/providers/me/availability", &a_token, Some(&bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        e2e::pointers(&problem).contains("/weekly/0/windows/0"),
        "{problem}"
    );
    let everything = serde_json::to_value(always()).expect("json");
    assert_eq!(
        call(
            Method::PUT,
            "/v1/providers/me/availability",
            &a_token,
            Some(&everything)
        )
        .await
        .0,
        StatusCode::OK
    );

    let start = next_tuesday_10();
    let request_id = book_at(&w, start, 4, 2, false).await;
    let (status, open) = call(Method::GET, "/v1/providers/me/open-shifts", &a_token, None).await;
    assert_eq!(status, StatusCode::OK, "{open}");
    let listed = open["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|s| s["request_id"] == request_id.as_str())
        .expect("the open shift is offered")
        .clone();
    assert_eq!(
        (listed["open_slots"].clone(), listed["city"].clone()),
        (json!(2), json!("Pinedale"))
    );
    assert!(
        !open.to_string().contains("Wintersmith"),
        "no site contact before a slot is held"
    );

    let claims = format!("/v1/service-requests/{request_id}/claims");
    let (status, claimed) = call(Method::POST, &claims, &a_token, None).await;
    assert_eq!(status, StatusCode::CREATED, "{claimed}");
    assert_eq!(
        (claimed["status"].clone(), claimed["assigned_by"].clone()),
        (json!("accepted"), json!("claim"))
    );
    let (status, again) = call(Method::POST, &claims, &a_token, None).await;
    assert_eq!(
        (status, again["rule"].clone()),
        (StatusCode::CONFLICT, json!("already_on_request")),
        "{again}"
    );
    assert_eq!(again["type"], "urn:officertrak:problem:ineligible");
    assert_eq!(
        call(Method::POST, &claims, &outsider, None).await.0,
        StatusCode::NOT_FOUND
    );

    let assignments = format!("/v1/service-requests/{request_id}/assignments");
    let body = json!({"officer_user_id": b.user_id});
    assert_eq!(
        call(Method::POST, &assignments, &a_token, Some(&body)).await.0,
        StatusCode::FORBIDDEN,
        "officers do not dispatch"
    );
    let (status, placed) = call(Method::POST, &assignments, &w.dispatcher_token, Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    assert_eq!(placed["status"], "assigned");
    assert!(placed["respond_by"].is_string());
    let b_assignment = placed["assignment_id"].as_str().expect("id").to_owned();

    let (status, seen) = call(Method::GET, &assignments, &w.customer_token, None).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    let names: BTreeSet<String> = seen["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            let keys: BTreeSet<&str> = item
                .as_object()
                .expect("object")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(keys, BTreeSet::from(["officer_first_name", "status"]), "{item}");
            item["officer_first_name"].as_str().expect("name").to_owned()
        })
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["Thaddeus".to_owned(), "Bartholomew".to_owned()])
    );
    let (status, staff) = call(Method::GET, &assignments, &w.dispatcher_token, None).await;
    assert_eq!(
        (status, staff["items"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(2))
    );
    assert_eq!(
        call(Method::GET, &assignments, &outsider, None).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, full) = call(
        Method::GET,
        &format!("/v1/service-requests/{request_id}"),
        &w.customer_token,
        None,
    )
    .await;
    assert_eq!(
        (full["status"].clone(), full["filled"].clone()),
        (json!("fully_staffed"), json!(2))
    );

    // B accepts, then calls off: the slot reopens and staffing follows.
    assert_eq!(
        call(
            Method::POST,
            &format!("/v1/assignments/{b_assignment}/accept"),
            &a_token,
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND,
        "only the holder acts on an assignment"
    );
    let (status, accepted) = call(
        Method::POST,
        &format!("/v1/assignments/{b_assignment}/accept"),
        &b_token,
        None,
    )
    .await;
    assert_eq!(
        (status, accepted["status"].clone()),
        (StatusCode::OK, json!("accepted")),
        "{accepted}"
    );
    let (status, released) = call(
        Method::POST,
        &format!("/v1/assignments/{b_assignment}/release"),
        &b_token,
        None,
    )
    .await;
    assert_eq!(
        (status, released["status"].clone()),
        (StatusCode::OK, json!("released")),
        "{released}"
    );
    // The release retried (its answer lost on the way): the assignment as it is, marked as a
    // replay, and the slot is not freed twice (the request below still counts one filled).
    let (status, twice) = call(
        Method::POST,
        &format!("/v1/assignments/{b_assignment}/release"),
        &b_token,
        None,
    )
    .await;
    assert_eq!(
        (status, twice["status"].clone()),
        (StatusCode::OK, json!("released")),
        "{twice}"
    );
    // Another action on it is still judged: a released assignment cannot be accepted.
    let (status, refused) = call(
        Method::POST,
        &format!("/v1/assignments/{b_assignment}/accept"),
        &b_token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    let (_, partial) = call(
        Method::GET,
        &format!("/v1/service-requests/{request_id}"),
        &w.customer_token,
        None,
    )
    .await;
    assert_eq!(
        (partial["status"].clone(), partial["filled"].clone()),
        (json!("partially_staffed"), json!(1))
    );
    let (status, early) = call(
        Method::POST,
        &format!(
            "/v1/assignments/{}/check-in",
            claimed["assignment_id"].as_str().expect("id")
        ),
        &a_token,
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "check-in opens 15 minutes before: {early}"
    );

    // Mail: each officer of their shift, the customer of staffing, dispatch of B's answers.
    let a_mail = e2e::mails_to(&a_email).await;
    assert!(
        a_mail
            .iter()
            .any(|m| m.contains("new shift") && m.contains("Pinedale")),
        "{a_mail:?}"
    );
    let b_mail = e2e::mails_to(&b_email).await;
    assert!(
        b_mail.iter().any(|m| m.contains("accept or decline")),
        "{b_mail:?}"
    );
    let customer_mail = e2e::mails_to(&w.customer_email).await;
    assert!(
        customer_mail
            .iter()
            .any(|m| m.contains("Officer Bartholomew was assigned")),
        "{customer_mail:?}"
    );
    assert!(
        customer_mail
            .iter()
            .any(|m| m.contains("Officer Bartholomew is no longer assigned")),
        "{customer_mail:?}"
    );
    let dispatch_mail = e2e::mails_to(&w.dispatcher_email).await;
    assert!(
        dispatch_mail.iter().any(|m| m.contains("accepted")),
        "{dispatch_mail:?}"
    );
    assert!(
        dispatch_mail
            .iter()
            .any(|m| m.contains("released") && m.contains("open again")),
        "{dispatch_mail:?}"
    );
    for mail in a_mail.iter().chain(&b_mail).chain(&dispatch_mail) {
        for private in ["Wintersmith", "+13075550177", "4242", "Quarrington"] {
            assert!(
                !mail.contains(private),
                "a scheduling mail carries {private}: {mail}"
            );
        }
    }
    for mail in &customer_mail {
        assert!(
            !mail.contains("Quince") && !mail.contains("Okonkwo"),
            "only first names: {mail}"
        );
    }

    // Cancelling the request frees the officer's time.
    let (status, _) = call(
        Method::POST,
        &format!("/v1/service-requests/{request_id}/cancel"),
        &w.customer_token,
        Some(&json!({"reason": "weather"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let roster = w
        .state
        .store
        .get::<Roster>(&Roster::key_of(&a.user_id))
        .await
        .expect("read")
        .expect("roster");
    assert!(
        roster.record.commitments.is_empty(),
        "the cancelled shift no longer blocks the officer"
    );
}

#[tokio::test]
async fn do_not_hire_is_for_the_agency_admin_and_the_roster_is_stored_encrypted() {
    let stack = stack();
    let w = world(|_| {}).await;
    let mut distinctive = always();
    for day in &mut distinctive.weekly {
        day.windows = vec![TimeWindow {
            start: "06:15".into(),
            end: "23:45".into(),
        }];
    }
    let email = unique_email("dnh");
    let officer_token = stack.user_with_email(&email, &["provider"]).await.id_token;
    let officer = officer_with(&w, Some(sub_of(&officer_token)), email, distinctive, |_| {}).await;
    let path = format!("/v1/agencies/{}/do-not-hire/{}", w.agency_id, officer.user_id);
    let body = json!({"note": "left a post unattended"});
    // An officer who never applied to the agency is none of its business: 404, nothing filed.
    let elsewhere = world(|_| {}).await;
    let stranger = self::officer(&elsewhere, |_| {}).await;
    let (status, _) = call(
        Method::PUT,
        &format!("/v1/agencies/{}/do-not-hire/{}", w.agency_id, stranger.user_id),
        &w.admin_token,
        Some(&body),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        call(Method::PUT, &path, &w.dispatcher_token, Some(&body)).await.0,
        StatusCode::FORBIDDEN
    );
    let other_admin = stack.user("otheradmin", &["agency_admin"]).await.id_token;
    assert_eq!(
        call(Method::PUT, &path, &other_admin, Some(&body)).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, entry) = call(Method::PUT, &path, &w.admin_token, Some(&body)).await;
    assert_eq!(
        (status, entry["note"].clone()),
        (StatusCode::OK, json!("left a post unattended"))
    );
    // The note is data about the officer: their export holds it (not who at the agency wrote it).
    let (status, queued) = call(
        Method::POST,
        "/v1/privacy-requests",
        &officer_token,
        Some(&json!({"type": "access"})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let id = queued["id"].as_str().expect("id").to_owned();
    assert_eq!(
        e2e::await_request(&officer_token, &id).await["status"],
        "fulfilled"
    );
    let (_, manifest) = call(
        Method::GET,
        &format!("/v1/privacy-requests/{id}/export"),
        &officer_token,
        None,
    )
    .await;
    let mut exported = String::new();
    for part in 0..manifest["parts"].as_u64().expect("parts") {
        let response = reqwest::Client::new()
            .get(stack.url(&format!("/v1/privacy-requests/{id}/export?part={part}")))
            .bearer_auth(&officer_token)
            .send()
            .await
            .expect("part");
        exported.push_str(&response.text().await.expect("text"));
    }
    let listed = exported
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["type"] == "do_not_hire")
        .unwrap_or(Value::Null);
    assert_eq!(
        (
            listed["data"]["note"].clone(),
            listed["data"]["agency_id"].clone()
        ),
        (json!("left a post unattended"), json!(w.agency_id)),
        "{exported}"
    );
    assert!(listed["data"].get("added_by").is_none(), "{listed}");
    let request_id = book_at(&w, next_tuesday_10() + SignedDuration::from_hours(1), 3, 1, false).await;
    let refused = scheduling::claim(&w.state, &officer, &request_id)
        .await
        .expect_err("banned");
    assert_eq!(rule_of(&refused), Some("do_not_hire"));
    assert_eq!(
        e2e::call_api(Method::DELETE, &path, Some(&w.admin_token), None, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    scheduling::claim(&w.state, &officer, &request_id)
        .await
        .expect("allowed again");

    // The roster and the pool index hold no readable availability, note or officer id.
    let raw = format!("{:?}", e2e::raw_partition(&officer.user_id).await);
    for value in ["06:15", "23:45", "monday"] {
        assert!(!raw.contains(value), "{value} in plaintext in the roster");
    }
    let pool = w
        .state
        .store
        .raw()
        .query()
        .table_name(w.state.store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(domain::scheduling::roster::PoolEntry::partition(
                &w.agency_id,
                "monday",
            )),
        )
        .send()
        .await
        .expect("raw pool query");
    assert!(pool.count() >= 1);
    let pool = format!("{:?}", pool.items());
    assert!(
        !pool.contains(&officer.user_id),
        "the pool index names no officer in plaintext"
    );
    // Nor can the roster be matched to the pool entries: its copy of the token is encrypted.
    let token = w
        .state
        .store
        .get::<Roster>(&Roster::key_of(&officer.user_id))
        .await
        .expect("read")
        .expect("roster")
        .record
        .pool_token;
    assert!(pool.contains(&token), "the pool entry is keyed by the token");
    assert!(!raw.contains(&token), "the roster's token is stored encrypted");
}

/// Items read by open-shifts and auto-assign with `officers` officers in the agency, of whom 20 are
/// available on the shift's weekday. Run: `cargo xtask bench` (prints the figures).
#[tokio::test]
#[ignore = "benchmark: prints figures, run with cargo xtask bench"]
async fn bench_items_read_by_open_shifts_and_auto_assign() {
    for officers in [100usize, 5000] {
        let w = world(|_| {}).await;
        let tuesday = next_tuesday_10();
        let mut only_wednesday = always();
        only_wednesday.weekly.retain(|d| d.day == Day::Wednesday);
        let started = std::time::Instant::now();
        let mut made = Vec::new();
        for chunk in (0..officers).collect::<Vec<_>>().chunks(50) {
            made.extend(
                join_all(chunk.iter().map(|i| {
                    let availability = if *i < 20 { always() } else { only_wednesday.clone() };
                    officer_with(&w, None, unique_email("bench"), availability, |_| {})
                }))
                .await,
            );
        }
        let available = &made[..20];
        let setup = started.elapsed();
        let requests: Vec<String> =
            join_all((0..5).map(|i| book_at(&w, tuesday + SignedDuration::from_hours(i * 5), 4, 3, false)))
                .await;
        let before = w.state.store.items_read();
        let open = scheduling::open_shifts(&w.state, &available[0], None)
            .await
            .expect("open shifts");
        let open_read = w.state.store.items_read() - before;
        let before = w.state.store.items_read();
        let report =
            scheduling::auto_assign(&w.state, &w.dispatcher, &requests[0], AutoAssignInput::default())
                .await
                .expect("auto-assign");
        let auto_read = w.state.store.items_read() - before;
        println!(
            "officers in agency: {officers} (20 available on the shift's day; setup {:.0} s) | open-shifts: {} shifts listed, {open_read} items read | auto-assign: {} picked, {} skipped, {auto_read} items read",
            setup.as_secs_f64(),
            open.len(),
            report.picked.len(),
            report.skipped.len()
        );
        assert_eq!(report.picked.len(), 3);
    }
}
