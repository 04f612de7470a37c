//! The scheduling function: agency memberships, availability, open shifts, claims, assignments,
//! check-in/out and the agencies' do-not-hire lists. Routes are declared in template.yaml (`SchedulingFunction`) and in
//! `shared/edge/openapi.yaml`; each handler parses, calls one function of `domain::scheduling`, answers.

use domain::accounts::memberships::{self, DecisionInput, MembershipInput, MembershipStatus};
use domain::scheduling::assignments::AssignmentView;
use domain::scheduling::{self, Action, AutoAssignInput, DoNotHireInput};
use edge::ApiError;
use edge::auth::{Caller, Role};
use edge::error::FieldError;
use edge::http::{
    HandlerResult, Router, date_param, json, json_body, json_body_allowing_null, optional_json_body,
    path_param,
};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use platform::AppState;
use serde::Serialize;

/// `GET /v1/providers/me/earnings?from=…&to=…`: the caller's approved hours and earnings per week.
async fn my_earnings(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let (from, to) = (date_param(&request, "from")?, date_param(&request, "to")?);
    json(
        StatusCode::OK,
        &domain::billing::earnings(&state, &caller, from, to).await?,
    )
}

/// The route table of this function.
pub fn router() -> Router {
    Router::new()
        .route("GET /v1/providers/me/memberships", my_memberships)
        .route(
            "PUT /v1/providers/me/memberships/{agency_id}",
            apply_for_membership,
        )
        .route("DELETE /v1/providers/me/memberships/{agency_id}", leave_agency)
        .route("GET /v1/agencies/{id}/memberships", agency_memberships)
        .route(
            "POST /v1/agencies/{id}/memberships/{provider_id}/decision",
            decide_membership,
        )
        .route("GET /v1/providers/me/assignments", my_assignments)
        .route("GET /v1/providers/me/earnings", my_earnings)
        .route("GET /v1/providers/me/availability", get_availability)
        .route("PUT /v1/providers/me/availability", put_availability)
        .route("GET /v1/providers/me/open-shifts", open_shifts)
        .route("POST /v1/service-requests/{id}/claims", claim)
        .route("POST /v1/service-requests/{id}/assignments", assign)
        .route("GET /v1/service-requests/{id}/assignments", request_assignments)
        .route("POST /v1/service-requests/{id}/auto-assign", auto_assign)
        .route("POST /v1/assignments/{id}/accept", accept)
        .route("POST /v1/assignments/{id}/decline", decline)
        .route("POST /v1/assignments/{id}/release", release)
        .route("POST /v1/assignments/{id}/check-in", check_in)
        .route("POST /v1/assignments/{id}/check-out", check_out)
        .route("POST /v1/assignments/{id}/timesheet", submit_timesheet)
        .route("POST /v1/assignments/{id}/timesheet/approval", approve_timesheet)
        .route("PUT /v1/agencies/{id}/do-not-hire/{provider_id}", put_do_not_hire)
        .route(
            "DELETE /v1/agencies/{id}/do-not-hire/{provider_id}",
            delete_do_not_hire,
        )
}

#[derive(Serialize)]
struct Page<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

#[derive(Serialize)]
struct Items<T> {
    items: Vec<T>,
}

/// `GET /v1/providers/me/memberships`.
async fn my_memberships(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let items = memberships::my_memberships(&state, &caller).await?;
    json(StatusCode::OK, &Items { items })
}

/// `PUT /v1/providers/me/memberships/{agency_id}`.
async fn apply_for_membership(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let agency_id = path_param(&request, "agency_id")?;
    let input: MembershipInput = json_body(&request)?;
    json(
        StatusCode::OK,
        &memberships::apply(&state, &caller, &agency_id, input).await?,
    )
}

/// `DELETE /v1/providers/me/memberships/{agency_id}`.
async fn leave_agency(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let agency_id = path_param(&request, "agency_id")?;
    scheduling::leave_agency(&state, &caller, &agency_id).await?;
    no_content()
}

/// `GET /v1/agencies/{id}/memberships?status=pending|approved|rejected|revoked|lapsed`.
async fn agency_memberships(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let agency_id = path_param(&request, "id")?;
    let status = match request.query_string_parameters().first("status") {
        Some(text) => serde_json::from_value::<MembershipStatus>(serde_json::Value::String(text.to_owned()))
            .map_err(|_| {
                ApiError::Validation(vec![FieldError {
                    pointer: "?status".into(),
                    detail: "must be pending, approved, rejected, revoked or lapsed".into(),
                }])
            })?,
        None => MembershipStatus::Pending,
    };
    let items = memberships::applications(&state, &caller, &agency_id, status).await?;
    json(StatusCode::OK, &Items { items })
}

/// `POST /v1/agencies/{id}/memberships/{provider_id}/decision`.
async fn decide_membership(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let agency_id = path_param(&request, "id")?;
    let provider_id = path_param(&request, "provider_id")?;
    let input: DecisionInput = json_body(&request)?;
    json(
        StatusCode::OK,
        &scheduling::decide_membership(&state, &caller, &agency_id, &provider_id, input).await?,
    )
}

fn no_content() -> HandlerResult {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::Empty)
        .map_err(|error| ApiError::Internal(error.to_string()))
}

/// `GET /v1/providers/me/assignments?limit=&cursor=`: the calling Security Provider's assignments,
/// a page at a time (`limit` 1 to 100, default 50) with the signed cursor of the next page.
async fn my_assignments(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    caller.require(Role::Provider)?;
    let scope = format!("assignments:{}", caller.user_id);
    let page = edge::cursor::page_request(&state.lookup, &request, &scope, 50).await?;
    let (items, last): (Vec<AssignmentView>, _) = domain::scheduling::assignments::page_of(
        &state.store,
        &caller.user_id,
        page.after.as_deref(),
        page.limit,
    )
    .await?;
    let next_cursor = edge::cursor::next_cursor(&state.lookup, &scope, last.as_deref()).await?;
    json(StatusCode::OK, &Page { items, next_cursor })
}

/// `GET /v1/providers/me/availability`.
async fn get_availability(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    json(StatusCode::OK, &scheduling::availability(&state, &caller).await?)
}

/// `PUT /v1/providers/me/availability`.
async fn put_availability(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    // `time_zone: null` is how earlier answers said "the agency's zone"; a client may PUT them back.
    let input = json_body_allowing_null(&request, &["/time_zone"])?;
    json(
        StatusCode::OK,
        &scheduling::put_availability(&state, &caller, input).await?,
    )
}

/// `GET /v1/providers/me/open-shifts?days=N`.
async fn open_shifts(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let days = match request.query_string_parameters().first("days") {
        Some(text) => Some(text.parse::<u32>().map_err(|_| {
            ApiError::Validation(vec![FieldError {
                pointer: "?days".into(),
                detail: "must be a whole number of days".into(),
            }])
        })?),
        None => None,
    };
    let items = scheduling::open_shifts(&state, &caller, days).await?;
    json(StatusCode::OK, &Items { items })
}

/// `POST /v1/service-requests/{id}/claims`.
async fn claim(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let id = path_param(&request, "id")?;
    json(
        StatusCode::CREATED,
        &scheduling::claim(&state, &caller, &id).await?,
    )
}

/// `POST /v1/service-requests/{id}/assignments`.
async fn assign(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let id = path_param(&request, "id")?;
    let input = json_body(&request)?;
    json(
        StatusCode::CREATED,
        &scheduling::assign(&state, &caller, &id, input).await?,
    )
}

/// `GET /v1/service-requests/{id}/assignments`.
async fn request_assignments(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let id = path_param(&request, "id")?;
    json(
        StatusCode::OK,
        &scheduling::request_assignments(&state, &caller, &id).await?,
    )
}

/// `POST /v1/service-requests/{id}/auto-assign`.
async fn auto_assign(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let id = path_param(&request, "id")?;
    let input: AutoAssignInput = optional_json_body(&request)?;
    json(
        StatusCode::OK,
        &scheduling::auto_assign(&state, &caller, &id, input).await?,
    )
}

async fn act(state: AppState, request: Request, action: Action) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let id = path_param(&request, "id")?;
    let (view, replayed) = scheduling::act_or_replay(&state, &caller, &id, action).await?;
    edge::http::marked_replay(json(StatusCode::OK, &view)?, replayed)
}

/// `POST /v1/assignments/{id}/accept`.
async fn accept(state: AppState, request: Request) -> HandlerResult {
    act(state, request, Action::Accept).await
}

/// `POST /v1/assignments/{id}/decline`.
async fn decline(state: AppState, request: Request) -> HandlerResult {
    act(state, request, Action::Decline).await
}

/// `POST /v1/assignments/{id}/release`.
async fn release(state: AppState, request: Request) -> HandlerResult {
    act(state, request, Action::Release).await
}

/// `POST /v1/assignments/{id}/check-in`.
async fn check_in(state: AppState, request: Request) -> HandlerResult {
    act(state, request, Action::CheckIn).await
}

/// `POST /v1/assignments/{id}/check-out`.
async fn check_out(state: AppState, request: Request) -> HandlerResult {
    act(state, request, Action::CheckOut).await
}

/// `POST /v1/assignments/{id}/timesheet`.
async fn submit_timesheet(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let id = path_param(&request, "id")?;
    json(
        StatusCode::OK,
        &scheduling::submit_timesheet(&state, &caller, &id).await?,
    )
}

/// `POST /v1/assignments/{id}/timesheet/approval`.
async fn approve_timesheet(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let id = path_param(&request, "id")?;
    let input: scheduling::TimesheetApproval = optional_json_body(&request)?;
    let (view, replayed) = scheduling::approve_timesheet_or_replay(&state, &caller, &id, input).await?;
    edge::http::marked_replay(json(StatusCode::OK, &view)?, replayed)
}

/// `PUT /v1/agencies/{id}/do-not-hire/{provider_id}`.
async fn put_do_not_hire(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let agency_id = path_param(&request, "id")?;
    let provider_id = path_param(&request, "provider_id")?;
    let input: DoNotHireInput = optional_json_body(&request)?;
    json(
        StatusCode::OK,
        &scheduling::put_do_not_hire(&state, &caller, &agency_id, &provider_id, input).await?,
    )
}

/// `DELETE /v1/agencies/{id}/do-not-hire/{provider_id}`.
async fn delete_do_not_hire(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let agency_id = path_param(&request, "id")?;
    let provider_id = path_param(&request, "provider_id")?;
    scheduling::delete_do_not_hire(&state, &caller, &agency_id, &provider_id).await?;
    no_content()
}
