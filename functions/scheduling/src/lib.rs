//! The scheduling function: availability, claims, assignments, check-in/out.
//! Routes are declared in template.yaml (`SchedulingFunction`) and in `shared/openapi.yaml`.

use lambda_http::Request;
use lambda_http::http::StatusCode;
use serde::Serialize;
use shared::AppState;
use shared::assignments::AssignmentView;
use shared::auth::{Caller, Role};
use shared::http::{HandlerResult, Router, json};

/// The route table of this function.
pub fn router() -> Router {
    Router::new().route("GET /v1/providers/me/assignments", my_assignments)
}

#[derive(Serialize)]
struct Page<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

/// `GET /v1/providers/me/assignments`: the calling Security Provider's assignments.
async fn my_assignments(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    caller.require(Role::Provider)?;
    let items: Vec<AssignmentView> =
        shared::assignments::assignments_of(&state.store, &caller.user_id, 50).await?;
    json(
        StatusCode::OK,
        &Page {
            items,
            next_cursor: None,
        },
    )
}
