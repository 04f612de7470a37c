//! The privacy function: the rights the Applications Privacy Policy grants, and its versions.
//! Routes are declared in template.yaml (`PrivacyFunction`) and in `shared/openapi.yaml`.

use lambda_http::Request;
use lambda_http::http::StatusCode;
use serde::Serialize;
use shared::auth::Caller;
use shared::http::{HandlerResult, Router, json};
use shared::privacy::PrivacyRequestSummary;
use shared::{ApiError, AppState};

/// The route table of this function.
pub fn router() -> Router {
    Router::new()
        .route("GET /v1/privacy-requests", list_mine)
        .route("GET /v1/privacy/policy", current_policy)
        .route("GET /v1/admin/usage", usage)
}

/// `GET /v1/admin/usage?day=YYYY-MM-DD` (ops): anonymous usage of a UTC day (today by default).
async fn usage(state: AppState, request: Request) -> HandlerResult {
    use lambda_http::RequestExt;
    let caller = Caller::from_request(&request)?;
    let day = match request.query_string_parameters().first("day") {
        Some(text) => text.parse().map_err(|_| {
            ApiError::Validation(vec![shared::error::FieldError {
                pointer: "?day".into(),
                detail: "must be a date (YYYY-MM-DD)".into(),
            }])
        })?,
        None => state
            .clock
            .now()
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .date(),
    };
    json(
        StatusCode::OK,
        &shared::usage::report(&state, &caller, day).await?,
    )
}

#[derive(Serialize)]
struct Page<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

/// `GET /v1/privacy-requests`: the caller's own privacy requests.
async fn list_mine(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let items: Vec<PrivacyRequestSummary> =
        shared::privacy::requests_of(&state.store, &caller.user_id, 50).await?;
    json(
        StatusCode::OK,
        &Page {
            items,
            next_cursor: None,
        },
    )
}

/// `GET /v1/privacy/policy` (public): the policy version in force.
async fn current_policy(state: AppState, _request: Request) -> HandlerResult {
    match shared::privacy::current_policy(&state.store).await? {
        Some(policy) => json(StatusCode::OK, &policy),
        None => Err(ApiError::NotFound("published policy version")),
    }
}
