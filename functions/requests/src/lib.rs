//! The requests function: service requests customers book, with quotes and cancellation.
//! Routes are declared in template.yaml (`RequestsFunction`) and in `shared/openapi.yaml`.

use lambda_http::Request;
use lambda_http::http::StatusCode;
use serde::Serialize;
use shared::AppState;
use shared::auth::Caller;
use shared::http::{HandlerResult, Router, json};
use shared::service_requests::ServiceRequestSummary;

/// The route table of this function.
pub fn router() -> Router {
    Router::new().route("GET /v1/service-requests", list_mine)
}

/// A page of results. `next_cursor` is null on the last page.
#[derive(Serialize)]
struct Page<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

/// `GET /v1/service-requests`: the caller's own service requests.
async fn list_mine(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let items: Vec<ServiceRequestSummary> =
        shared::service_requests::requests_of(&state.store, &caller.user_id, 50).await?;
    json(
        StatusCode::OK,
        &Page {
            items,
            next_cursor: None,
        },
    )
}
