//! Who may call each route: every operation of the OpenAPI document (a test fails on one without a
//! row) is called through the local gateway with real tokens as 11 kinds of caller (anonymous, the
//! owner, another customer, an officer of the agency and one of another, the agency's dispatcher and
//! admin, another agency's, a privacy officer, ops) and each cell's status is asserted.
//! Another user's or another agency's object is always 404; a caller without the role is 403; with
//! the role and the right, the call reaches the record (2xx, or 409 for a state it cannot change);
//! nobody registers as someone else by naming their e-mail (422).

use crate::scheduling::{always, book_at, call, next_tuesday_10, officer_with, world};
use domain::scheduling::{self, Action};
use e2e::{stack, sub_of, unique_email};
use jiff::SignedDuration;
use platform::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// One route of the table: label, method, path, body, and the status each caller must get.
type Row = (&'static str, Method, String, Option<Value>, [StatusCode; 11]);

#[tokio::test]
async fn every_route_answers_each_kind_of_caller_exactly() {
    let stack = stack();
    let a = world(|_| {}).await;
    let b = world(|_| {}).await;
    let officer_email = unique_email("matrixofficer");
    let officer_token = stack
        .user_with_email(&officer_email, &["provider"])
        .await
        .id_token;
    let officer = officer_with(
        &a,
        Some(sub_of(&officer_token)),
        officer_email.clone(),
        always(),
        |_| {},
    )
    .await;
    let other_email = unique_email("matrixother");
    let other_officer_token = stack.user_with_email(&other_email, &["provider"]).await.id_token;
    officer_with(
        &b,
        Some(sub_of(&other_officer_token)),
        other_email,
        always(),
        |_| {},
    )
    .await;
    let other_customer = stack.user("matrixcustomer", &["customer"]).await.id_token;
    let privacy_officer = stack.user("matrixprivacy", &["privacy_officer"]).await.id_token;
    let ops = stack.user("matrixops", &["ops"]).await.id_token;

    // A worked, approved and invoiced request of agency A.
    let start = next_tuesday_10() + SignedDuration::from_hours(24 * 21);
    let request_id = book_at(&a, start, 2, 1, false).await;
    let placed = scheduling::claim(&a.state, &officer, &request_id)
        .await
        .expect("claim");
    for (at, action) in [
        (start, Action::CheckIn),
        (start + SignedDuration::from_hours(2), Action::CheckOut),
    ] {
        let state = stack.state("SchedulingFunction", Clock::fixed(at)).await;
        scheduling::act(&state, &officer, &placed.assignment_id, action)
            .await
            .expect("worked");
    }
    scheduling::submit_timesheet(&a.state, &officer, &placed.assignment_id)
        .await
        .expect("submitted");
    scheduling::approve_timesheet(&a.state, &a.dispatcher, &placed.assignment_id, Default::default())
        .await
        .expect("approved");

    // The customer's fulfilled access request (its export) and support inquiry; the policy in
    // force and agency A's settings, sent back unchanged; a registered customer for the minor's
    // erasure (the one destructive call of the table, on a person nobody else uses).
    let (status, queued) = call(
        Method::POST,
        "/v1/privacy-requests",
        &a.customer_token,
        Some(&json!({"type": "access", "jurisdiction": "ccpa"})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let access_id = queued["id"].as_str().expect("id").to_owned();
    let access = e2e::await_request(&a.customer_token, &access_id).await;
    assert_eq!(access["status"], "fulfilled", "{access}");
    let (status, inquiry) = call(
        Method::POST,
        "/v1/me/support/inquiries",
        &a.customer_token,
        Some(&json!({"topic": "billing", "message": "Who may read this?"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{inquiry}");
    let inquiry_id = inquiry["inquiry_id"].as_str().expect("id").to_owned();
    // Publishing is the privacy officers' alone; this version's summary is too long, so even theirs
    // publishes nothing (the version other tests publish and announce stays theirs to publish).
    let unpublishable = json!({"policy_version": "matrix", "effective_date": "2026-11-01",
        "significant": false, "summary": "x".repeat(2_500)});
    let (status, mut settings) = call(
        Method::GET,
        &format!("/v1/agencies/{}", a.agency_id),
        &a.admin_token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    for generated in ["agency_id", "created_at", "updated_at"] {
        settings.as_object_mut().expect("an object").remove(generated);
    }
    let mut new_agency = settings.clone();
    new_agency["agency_name"] = json!(format!("Matrix Agency {}", uuid::Uuid::new_v4().simple()));
    let minor_email = unique_email("matrixminor");
    let minor_token = stack.user_with_email(&minor_email, &["customer"]).await.id_token;
    let (status, registered) = call(
        Method::POST,
        "/v1/customers",
        &minor_token,
        Some(&crate::accounts::customer_body(
            &minor_email,
            "Tamsin Matrix-Ledger",
        )),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let minor_id = sub_of(&minor_token);
    // The report about the minor that the erasure answers.
    let (status, report) = e2e::call_api(
        Method::POST,
        "/v1/support/inquiries",
        None,
        Some(&json!({"name": "Cressida Matrix", "email": unique_email("matrixparent"), "topic": "minor_data", "message": "My daughter (14) has an account."})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{report}");
    let report_id = report["inquiry_id"].as_str().expect("id").to_owned();
    let officer_id = officer.user_id.clone();
    // An officer of agency A who holds no shift: the subject of the do-not-hire rows (A may keep a
    // note only about an officer who applied to it).
    let listed_officer_id = officer_with(&a, None, unique_email("matrixlisted"), always(), |_| {})
        .await
        .user_id;
    let every_hour: Vec<Value> = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
    .map(|day| json!({"day": day, "windows": [{"start": "00:00", "end": "24:00"}]}))
    .into();
    let booking =
        crate::scheduling::booking_body(&a, start + SignedDuration::from_hours(24 * 7), 2, 1, false);

    let callers: Vec<(&str, Option<&str>)> = vec![
        ("anonymous", None),
        ("customer", Some(&a.customer_token)),
        ("other customer", Some(&other_customer)),
        ("officer", Some(&officer_token)),
        ("other officer", Some(&other_officer_token)),
        ("dispatcher", Some(&a.dispatcher_token)),
        ("admin", Some(&a.admin_token)),
        ("other dispatcher", Some(&b.dispatcher_token)),
        ("other admin", Some(&b.admin_token)),
        ("privacy officer", Some(&privacy_officer)),
        ("ops", Some(&ops)),
    ];
    use StatusCode as S;
    let (ok, no_content, forbidden, missing, conflict, unauthorized) = (
        S::OK,
        S::NO_CONTENT,
        S::FORBIDDEN,
        S::NOT_FOUND,
        S::CONFLICT,
        S::UNAUTHORIZED,
    );
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date();
    let approve = json!({"decision": "approve"});
    // (label, method, path, body, expected status per caller, in the order of `callers`)
    let table: Vec<Row> = vec![
        (
            "GET invoice",
            Method::GET,
            format!("/v1/service-requests/{request_id}/invoice"),
            None,
            [
                unauthorized,
                ok,
                missing,
                missing,
                missing,
                ok,
                ok,
                missing,
                missing,
                missing,
                missing,
            ],
        ),
        (
            "GET statement",
            Method::GET,
            format!("/v1/me/statement?from={today}&to={today}"),
            None,
            [
                unauthorized,
                ok,
                ok,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
            ],
        ),
        (
            "GET agency memberships",
            Method::GET,
            format!("/v1/agencies/{}/memberships", a.agency_id),
            None,
            [
                unauthorized,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                ok,
                forbidden,
                missing,
                forbidden,
                ok,
            ],
        ),
        (
            "POST membership decision",
            Method::POST,
            format!(
                "/v1/agencies/{}/memberships/{}/decision",
                a.agency_id, officer.user_id
            ),
            Some(approve.clone()),
            [
                unauthorized,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                ok,
                forbidden,
                missing,
                forbidden,
                ok,
            ],
        ),
        (
            "POST booking approval",
            Method::POST,
            format!("/v1/service-requests/{request_id}/approval"),
            Some(approve.clone()),
            [
                unauthorized,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                conflict,
                conflict,
                missing,
                missing,
                forbidden,
                forbidden,
            ],
        ),
        (
            "POST timesheet",
            Method::POST,
            format!("/v1/assignments/{}/timesheet", placed.assignment_id),
            None,
            [
                unauthorized,
                forbidden,
                forbidden,
                conflict,
                missing,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
            ],
        ),
        // The dispatcher who approved it gets the approval again (a replay); the admin, who did
        // not, a 409.
        (
            "POST timesheet approval",
            Method::POST,
            format!("/v1/assignments/{}/timesheet/approval", placed.assignment_id),
            None,
            [
                unauthorized,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                ok,
                conflict,
                missing,
                missing,
                forbidden,
                forbidden,
            ],
        ),
        (
            "GET my memberships",
            Method::GET,
            "/v1/providers/me/memberships".to_owned(),
            None,
            [
                unauthorized,
                forbidden,
                forbidden,
                ok,
                ok,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
            ],
        ),
        (
            "DELETE membership of another agency",
            Method::DELETE,
            format!("/v1/providers/me/memberships/{}", uuid::Uuid::new_v4()),
            None,
            [
                unauthorized,
                forbidden,
                forbidden,
                no_content,
                no_content,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
            ],
        ),
        (
            "GET service request",
            Method::GET,
            format!("/v1/service-requests/{request_id}"),
            None,
            [
                unauthorized,
                ok,
                missing,
                ok,
                missing,
                ok,
                ok,
                missing,
                missing,
                missing,
                missing,
            ],
        ),
        (
            "GET request's assignments",
            Method::GET,
            format!("/v1/service-requests/{request_id}/assignments"),
            None,
            [
                unauthorized,
                ok,
                missing,
                missing,
                missing,
                ok,
                ok,
                missing,
                missing,
                missing,
                missing,
            ],
        ),
        (
            "GET agency",
            Method::GET,
            format!("/v1/agencies/{}", a.agency_id),
            None,
            [
                unauthorized,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                ok,
                forbidden,
                missing,
                forbidden,
                ok,
            ],
        ),
        (
            "GET agency invoices",
            Method::GET,
            format!("/v1/agencies/{}/invoices?from={today}&to={today}", a.agency_id),
            None,
            // Billing is the agency staff's, like each invoice: anyone else (ops too) finds nothing.
            [
                unauthorized,
                missing,
                missing,
                missing,
                missing,
                ok,
                ok,
                missing,
                missing,
                missing,
                missing,
            ],
        ),
        (
            "POST check-in of a worked shift",
            Method::POST,
            format!("/v1/assignments/{}/check-in", placed.assignment_id),
            None,
            [
                unauthorized,
                forbidden,
                forbidden,
                conflict,
                missing,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
            ],
        ),
        (
            "POST claim of a worked request",
            Method::POST,
            format!("/v1/service-requests/{request_id}/claims"),
            None,
            [
                unauthorized,
                forbidden,
                forbidden,
                conflict,
                missing,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
            ],
        ),
        (
            "POST accept of a worked shift",
            Method::POST,
            format!("/v1/assignments/{}/accept", placed.assignment_id),
            None,
            [
                unauthorized,
                forbidden,
                forbidden,
                conflict,
                missing,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
            ],
        ),
        (
            "POST release of a worked shift",
            Method::POST,
            format!("/v1/assignments/{}/release", placed.assignment_id),
            None,
            [
                unauthorized,
                forbidden,
                forbidden,
                conflict,
                missing,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
            ],
        ),
        (
            "POST auto-assign of a worked request",
            Method::POST,
            format!("/v1/service-requests/{request_id}/auto-assign"),
            Some(json!({})),
            [
                unauthorized,
                forbidden,
                forbidden,
                forbidden,
                forbidden,
                conflict,
                conflict,
                missing,
                missing,
                forbidden,
                forbidden,
            ],
        ),
        (
            // Only its customer and its agency's staff may cancel, and not once worked (409);
            // to anyone else the request does not exist.
            "POST cancel of a worked request",
            Method::POST,
            format!("/v1/service-requests/{request_id}/cancel"),
            Some(json!({"reason": "called off"})),
            [
                unauthorized,
                conflict,
                missing,
                missing,
                missing,
                conflict,
                conflict,
                missing,
                missing,
                missing,
                missing,
            ],
        ),
        // The routes below: one line of expected statuses each, in the order of `callers`.
        row(
            "GET me",
            Method::GET,
            "/v1/me".into(),
            None,
            "401 200 404 200 200 404 404 404 404 404 404",
        ),
        row(
            "GET my data inventory",
            Method::GET,
            "/v1/me/data-inventory".into(),
            None,
            "401 200 200 200 200 200 200 200 200 200 200",
        ),
        row(
            "GET my privacy requests",
            Method::GET,
            "/v1/privacy-requests".into(),
            None,
            "401 200 200 200 200 200 200 200 200 200 200",
        ),
        row(
            "GET my service requests",
            Method::GET,
            "/v1/service-requests".into(),
            None,
            "401 200 200 200 200 200 200 200 200 200 200",
        ),
        row(
            "GET my assignments",
            Method::GET,
            "/v1/providers/me/assignments".into(),
            None,
            "401 403 403 200 200 403 403 403 403 403 403",
        ),
        row(
            "GET my availability",
            Method::GET,
            "/v1/providers/me/availability".into(),
            None,
            "401 403 403 200 200 403 403 403 403 403 403",
        ),
        row(
            "GET my open shifts",
            Method::GET,
            "/v1/providers/me/open-shifts".into(),
            None,
            "401 403 403 200 200 403 403 403 403 403 403",
        ),
        row(
            "GET my earnings",
            Method::GET,
            format!("/v1/providers/me/earnings?from={today}&to={today}"),
            None,
            "401 403 403 200 200 403 403 403 403 403 403",
        ),
        row(
            "GET my support inquiries",
            Method::GET,
            "/v1/me/support/inquiries".into(),
            None,
            "401 200 200 200 200 200 200 200 200 200 200",
        ),
        row(
            "GET all privacy requests",
            Method::GET,
            "/v1/admin/privacy-requests".into(),
            None,
            "401 403 403 403 403 403 403 403 403 200 403",
        ),
        row(
            "GET usage counts",
            Method::GET,
            "/v1/admin/usage".into(),
            None,
            "401 403 403 403 403 403 403 403 403 403 200",
        ),
        row(
            "GET support inquiries (staff)",
            Method::GET,
            "/v1/support/inquiries".into(),
            None,
            "401 403 403 403 403 403 403 403 403 200 403",
        ),
        // The privacy officers see the reports about minors among the inquiries, not this one.
        row(
            "GET a support inquiry (staff)",
            Method::GET,
            format!("/v1/support/inquiries/{inquiry_id}"),
            None,
            "401 403 403 403 403 403 403 403 403 404 403",
        ),
        row(
            "POST a support answer (staff)",
            Method::POST,
            format!("/v1/support/inquiries/{inquiry_id}/answers"),
            Some(json!({"message": "Nobody but support."})),
            "401 403 403 403 403 403 403 403 403 403 403",
        ),
        row(
            "POST close an inquiry (staff)",
            Method::POST,
            format!("/v1/support/inquiries/{inquiry_id}/close"),
            None,
            "401 403 403 403 403 403 403 403 403 403 403",
        ),
        // Public: the same answer to everyone (an audience that is neither policy's, so that the
        // answer does not depend on whether another test has published one yet).
        row(
            "GET the policy in force",
            Method::GET,
            "/v1/privacy/policy?audience=nobody".into(),
            None,
            "422 422 422 422 422 422 422 422 422 422 422",
        ),
        row(
            "POST telemetry",
            Method::POST,
            "/v1/telemetry".into(),
            Some(json!({"os": "ios"})),
            "204 204 204 204 204 204 204 204 204 204 204",
        ),
        row(
            "POST an unsigned Stripe webhook",
            Method::POST,
            "/v1/webhooks/stripe".into(),
            Some(
                json!({"id": "evt_matrix", "object": "event", "type": "payment_intent.succeeded",
                        "data": {"object": {"id": "pi_matrix", "object": "payment_intent"}}}),
            ),
            "400 400 400 400 400 400 400 400 400 400 400",
        ),
        row(
            "POST a forged written-request confirmation",
            Method::POST,
            "/v1/support/confirmations".into(),
            Some(
                json!({"request_id": "0801eaf7a02ec6f0d208fcae213837d2", "expires": 4_102_444_800_i64,
                        "signature": "63eb0adea741893ac940f1650f7bbda5efb5d02d3d307cdd0208c1d7fe2a8273"}),
            ),
            "403 403 403 403 403 403 403 403 403 403 403",
        ),
        // {caller} becomes each caller's number: the per-address limit is not what this row tests.
        row(
            "POST an inquiry (anyone)",
            Method::POST,
            "/v1/support/inquiries".into(),
            Some(
                json!({"name": "Matrix Caller", "email": "matrix-{caller}@example.com", "topic": "information",
                        "message": "Do you staff regattas?"}),
            ),
            "201 201 201 201 201 201 201 201 201 201 201",
        ),
        row(
            "POST an inquiry (signed in)",
            Method::POST,
            "/v1/me/support/inquiries".into(),
            Some(json!({"topic": "information", "message": "Do you staff regattas?"})),
            "401 201 404 201 201 404 404 404 404 404 404",
        ),
        row(
            "PATCH my customer account",
            Method::PATCH,
            "/v1/me/customer".into(),
            Some(json!({"phone": "+13075550123"})),
            "401 200 404 404 404 404 404 404 404 404 404",
        ),
        row(
            "PATCH my provider account",
            Method::PATCH,
            "/v1/me/provider".into(),
            Some(json!({"phone": "+13075550188"})),
            "401 404 404 200 200 404 404 404 404 404 404",
        ),
        row(
            "POST my consent",
            Method::POST,
            "/v1/me/consents".into(),
            Some(json!({"marketing": false, "source": "app"})),
            "401 201 404 201 201 404 404 404 404 404 404",
        ),
        // Nobody registers as someone else: the body names the customer's or the officer's e-mail.
        row(
            "POST a customer account as the customer",
            Method::POST,
            "/v1/customers".into(),
            Some(crate::accounts::customer_body(
                &a.customer_email,
                "Matrix Customer",
            )),
            "401 409 422 422 422 422 422 422 422 422 422",
        ),
        row(
            "POST a provider account as the officer",
            Method::POST,
            "/v1/providers".into(),
            Some(crate::accounts::provider_body(&officer_email, None)),
            "401 422 422 409 422 422 422 422 422 422 422",
        ),
        row(
            "POST an agency",
            Method::POST,
            "/v1/agencies".into(),
            Some(new_agency.clone()),
            "401 403 403 403 403 403 403 403 403 403 201",
        ),
        row(
            "PUT agency settings",
            Method::PUT,
            format!("/v1/agencies/{}", a.agency_id),
            Some(settings.clone()),
            "401 403 403 403 403 403 200 403 404 403 200",
        ),
        row(
            "POST a quote",
            Method::POST,
            "/v1/quotes".into(),
            Some(booking.clone()),
            "401 200 200 403 403 403 403 403 403 403 403",
        ),
        row(
            "POST a booking",
            Method::POST,
            "/v1/service-requests".into(),
            Some(booking.clone()),
            "401 201 409 403 403 403 403 403 403 403 403",
        ),
        row(
            "POST a placement on a worked request",
            Method::POST,
            format!("/v1/service-requests/{request_id}/assignments"),
            Some(json!({"officer_user_id": officer_id})),
            "401 403 403 403 403 409 409 404 404 403 403",
        ),
        row(
            "POST decline of a worked shift",
            Method::POST,
            format!("/v1/assignments/{}/decline", placed.assignment_id),
            None,
            "401 403 403 409 404 403 403 403 403 403 403",
        ),
        // The shift's own officer checking out again (an answer lost on the way): the shift as it
        // is, marked as a replay; nobody else learns anything.
        row(
            "POST check-out of a worked shift",
            Method::POST,
            format!("/v1/assignments/{}/check-out", placed.assignment_id),
            None,
            "401 403 403 200 404 403 403 403 403 403 403",
        ),
        row(
            "PUT do-not-hire",
            Method::PUT,
            format!("/v1/agencies/{}/do-not-hire/{listed_officer_id}", a.agency_id),
            Some(json!({"note": "matrix"})),
            "401 403 403 403 403 403 200 403 404 403 200",
        ),
        row(
            "DELETE do-not-hire",
            Method::DELETE,
            format!("/v1/agencies/{}/do-not-hire/{listed_officer_id}", a.agency_id),
            None,
            "401 403 403 403 403 403 204 403 404 403 204",
        ),
        row(
            "POST a marketing opt-out",
            Method::POST,
            "/v1/privacy-requests".into(),
            Some(json!({"type": "marketing_opt_out", "jurisdiction": "ccpa"})),
            "401 201 201 201 201 201 201 201 201 201 201",
        ),
        row(
            "GET the customer's privacy request",
            Method::GET,
            format!("/v1/privacy-requests/{access_id}"),
            None,
            "401 200 404 404 404 404 404 404 404 404 404",
        ),
        row(
            "GET the customer's export",
            Method::GET,
            format!("/v1/privacy-requests/{access_id}/export"),
            None,
            "401 200 404 404 404 404 404 404 404 404 404",
        ),
        row(
            "POST confirm the customer's request",
            Method::POST,
            format!("/v1/privacy-requests/{access_id}/confirmation"),
            None,
            "401 409 404 404 404 404 404 404 404 404 404",
        ),
        row(
            "POST a decision on the customer's request",
            Method::POST,
            format!("/v1/admin/privacy-requests/{access_id}/decision"),
            Some(json!({"decision": "extend", "reason": "records held by the agency"})),
            "401 403 403 403 403 403 403 403 403 409 403",
        ),
        row(
            "POST a policy version",
            Method::POST,
            "/v1/admin/policy-versions".into(),
            Some(unpublishable),
            "401 403 403 403 403 403 403 403 403 422 403",
        ),
        row(
            "POST a disclosure",
            Method::POST,
            "/v1/admin/disclosures".into(),
            Some(
                json!({"data_categories": ["customer_account"], "disclosed_at": "2026-11-20T10:00:00Z",
                        "legal_basis": "court order", "recipient": "Sublette County Court",
                        "recipient_category": "legal_demand", "reference": "CV-2026-118",
                        "subject_user_id": a.customer.user_id}),
            ),
            "401 403 403 403 403 403 403 403 403 201 403",
        ),
        row(
            "POST a minor's erasure (the proposal)",
            Method::POST,
            format!("/v1/admin/minors/{minor_id}"),
            Some(json!({"case_reference": report_id})),
            "401 403 403 403 403 403 403 403 403 202 403",
        ),
        // Four eyes: the officer who proposed it cannot approve it.
        row(
            "POST approval of a minor's erasure",
            Method::POST,
            format!("/v1/admin/minors/{minor_id}/approval"),
            None,
            "401 403 403 403 403 403 403 403 403 403 403",
        ),
        // Every hour of the week, as the officers already offer.
        row(
            "PUT my availability",
            Method::PUT,
            "/v1/providers/me/availability".into(),
            Some(json!({"exceptions": [], "weekly": every_hour})),
            "401 403 403 200 200 403 403 403 403 403 403",
        ),
        row(
            "GET my consents",
            Method::GET,
            "/v1/me/consents".into(),
            None,
            "401 200 404 200 200 404 404 404 404 404 404",
        ),
        row(
            "PUT my consent to post",
            Method::PUT,
            "/v1/me/consents/marketing_post".into(),
            Some(json!({"granted": false, "source": "app"})),
            "401 200 404 200 200 404 404 404 404 404 404",
        ),
        row(
            "GET the purposes",
            Method::GET,
            "/v1/privacy/purposes".into(),
            None,
            "200 200 200 200 200 200 200 200 200 200 200",
        ),
        // Adding purposes is the privacy officers' alone (this name is malformed: nothing is added).
        row(
            "POST a purpose",
            Method::POST,
            "/v1/admin/purposes".into(),
            Some(json!({"purpose": "Not A Name", "description": "matrix"})),
            "401 403 403 403 403 403 403 403 403 422 403",
        ),
        // Campaigns are ops' alone (this one names a purpose that needs no consent: nothing is made).
        row(
            "POST a campaign",
            Method::POST,
            "/v1/admin/campaigns".into(),
            Some(
                json!({"subject": "matrix", "body": "matrix", "channel": "email", "audience": "customers",
                        "purpose": "scheduling"}),
            ),
            "401 403 403 403 403 403 403 403 403 403 422",
        ),
        row(
            "GET a campaign",
            Method::GET,
            format!("/v1/admin/campaigns/{}", uuid::Uuid::new_v4()),
            None,
            "401 403 403 403 403 403 403 403 403 403 404",
        ),
        row(
            "GET a campaign's recipients",
            Method::GET,
            format!("/v1/admin/campaigns/{}/recipients", uuid::Uuid::new_v4()),
            None,
            "401 403 403 403 403 403 403 403 403 403 404",
        ),
        row(
            "POST a forged unsubscribe token",
            Method::POST,
            "/v1/unsubscribe".into(),
            Some(
                json!({"token": format!("{}.marketing_email.4102444800.{}", a.customer.user_id, "0".repeat(64))}),
            ),
            "403 403 403 403 403 403 403 403 403 403 403",
        ),
        row(
            "GET the page of a forged unsubscribe link",
            Method::GET,
            format!(
                "/v1/unsubscribe/one-click?token={}.marketing_email.4102444800.{}",
                a.customer.user_id,
                "0".repeat(64)
            ),
            None,
            "403 403 403 403 403 403 403 403 403 403 403",
        ),
        row(
            "POST a forged one-click unsubscribe",
            Method::POST,
            format!(
                "/v1/unsubscribe/one-click?token={}.marketing_email.4102444800.{}",
                a.customer.user_id,
                "0".repeat(64)
            ),
            None,
            "403 403 403 403 403 403 403 403 403 403 403",
        ),
        // Last: it may send the officer's membership back for review.
        row(
            "PUT my membership of agency A",
            Method::PUT,
            format!("/v1/providers/me/memberships/{}", a.agency_id),
            Some(json!({"badge_number": "B-7781", "hire_date": "2015-04-01"})),
            "401 403 403 200 200 403 403 403 403 403 403",
        ),
    ];
    let mut printed = vec![format!(
        "{:<44} {}",
        "route \\ caller",
        callers
            .iter()
            .map(|(name, _)| format!("{name:>17}"))
            .collect::<String>()
    )];
    let mut mismatches = Vec::new();
    for (label, method, path, body, expected) in &table {
        let mut row = format!("{label:<44} ");
        for (index, ((who, token), want)) in callers.iter().zip(expected).enumerate() {
            let body = body.as_ref().map(|body| {
                serde_json::from_str::<Value>(&body.to_string().replace("{caller}", &index.to_string()))
                    .expect("json")
            });
            let (status, answer) = e2e::call_api(method.clone(), path, *token, body.as_ref(), None).await;
            row.push_str(&format!("{:>17}", status.as_u16()));
            if status != *want {
                mismatches.push(format!(
                    "{label} as {who}: {status}, expected {want} ({})",
                    answer
                ));
            }
        }
        printed.push(row);
    }
    eprintln!("{}\n{} cells", printed.join("\n"), table.len() * callers.len());
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    // Every operation of the document has its row: a new route fails here until it has one.
    let contract = infra::contract::Contract::load().expect("the OpenAPI document");
    let missing_rows: Vec<String> = contract
        .route_keys()
        .into_iter()
        .filter(|route| {
            !table
                .iter()
                .any(|(_, method, path, _, _)| matches_route(route, method, path))
        })
        .collect();
    assert!(missing_rows.is_empty(), "routes without a row: {missing_rows:#?}");
}

/// A row of the table from its expected statuses written as one line (`"401 200 404 …"`).
fn row(label: &'static str, method: Method, path: String, body: Option<Value>, expected: &str) -> Row {
    let codes: Vec<StatusCode> = expected
        .split_whitespace()
        .map(|code| StatusCode::from_u16(code.parse().expect("a number")).expect("a status"))
        .collect();
    (
        label,
        method,
        path,
        body,
        codes.try_into().expect("one status per caller"),
    )
}

/// Whether a route key of the document (`GET /v1/agencies/{id}`) names this call.
fn matches_route(route: &str, method: &Method, path: &str) -> bool {
    let Some((route_method, template)) = route.split_once(' ') else {
        return false;
    };
    let path = path.split('?').next().unwrap_or(path);
    let (template, path): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    route_method == method.as_str()
        && template.len() == path.len()
        && template
            .iter()
            .zip(&path)
            .all(|(want, got)| want.starts_with('{') || want == got)
}
