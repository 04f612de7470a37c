//! Who may call the routes of memberships, booking approval, timesheets, invoices, statements, a
//! request and its assignments, an agency, and an officer's and the agency's actions on a worked
//! request (claim, accept, release, check-in, auto-assign, cancel): every cell of a routes × callers table
//! (19 × 11) is asserted through the local gateway with real tokens.
//! Another user's or another agency's object is always 404; a caller without the role is 403; with
//! the role and the right, the call reaches the record (200, or 409 for a state it cannot change).

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
async fn the_new_routes_answer_each_kind_of_caller_exactly() {
    let stack = stack();
    let a = world(|_| {}).await;
    let b = world(|_| {}).await;
    let officer_email = unique_email("matrixofficer");
    let officer_token = stack
        .user_with_email(&officer_email, &["provider"])
        .await
        .id_token;
    let officer = officer_with(&a, Some(sub_of(&officer_token)), officer_email, always(), |_| {}).await;
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
                conflict,
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
    ];
    let mut printed = vec![format!(
        "{:<36} {}",
        "route \\ caller",
        callers
            .iter()
            .map(|(name, _)| format!("{name:>17}"))
            .collect::<String>()
    )];
    let mut mismatches = Vec::new();
    for (label, method, path, body, expected) in &table {
        let mut row = format!("{label:<36} ");
        for ((who, token), want) in callers.iter().zip(expected) {
            let status = match token {
                Some(token) => call(method.clone(), path, token, body.as_ref()).await.0,
                None => {
                    e2e::call_api(method.clone(), path, None, body.as_ref(), None)
                        .await
                        .0
                }
            };
            row.push_str(&format!("{:>17}", status.as_u16()));
            if status != *want {
                mismatches.push(format!("{label} as {who}: {status}, expected {want}"));
            }
        }
        printed.push(row);
    }
    eprintln!("{}\n{} cells", printed.join("\n"), table.len() * callers.len());
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}
