//! The support function: inquiries from anyone (signed in or not) and support staff's answers.
//! Routes are declared in template.yaml (`SupportFunction`) and in `shared/edge/openapi.yaml`; the
//! rules are in `domain::support`.

use domain::support::{self, QueueFilter};
use edge::ApiError;
use edge::auth::Caller;
use edge::http::{HandlerResult, Router, json, json_body, path_param};
use lambda_http::http::StatusCode;
use lambda_http::{Request, RequestExt};
use platform::AppState;
use serde::Serialize;

/// The route table of this function.
pub fn router() -> Router {
    Router::new()
        .route("POST /v1/support/inquiries", send_anonymous)
        .route("POST /v1/me/support/inquiries", send_signed_in)
        .route("GET /v1/me/support/inquiries", list_mine)
        .route("GET /v1/support/inquiries", list_queue)
        .route("GET /v1/support/inquiries/{id}", read)
        .route("POST /v1/support/inquiries/{id}/answers", answer)
        .route("POST /v1/support/inquiries/{id}/close", close)
        .route("POST /v1/support/confirmations", confirm)
}

#[derive(Serialize)]
struct Page<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

/// `POST /v1/support/inquiries` (no token needed, none read): an anonymous inquiry; 201.
async fn send_anonymous(state: AppState, request: Request) -> HandlerResult {
    let input = json_body(&request)?;
    json(
        StatusCode::CREATED,
        &support::create_anonymous(&state, input).await?,
    )
}

/// `POST /v1/me/support/inquiries`: the caller's inquiry, answered at their verified address; 201.
async fn send_signed_in(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let input = json_body(&request)?;
    json(
        StatusCode::CREATED,
        &support::create_signed_in(&state, &caller, input).await?,
    )
}

/// `GET /v1/me/support/inquiries`: the caller's own inquiries and their answers.
async fn list_mine(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let items = support::list_mine(&state, &caller).await?;
    json(
        StatusCode::OK,
        &Page {
            items,
            next_cursor: None,
        },
    )
}

/// `GET /v1/support/inquiries?status=open|answered` (support; privacy officers see reports about
/// minors).
async fn list_queue(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let filter = match request.query_string_parameters().first("status") {
        None | Some("open") => QueueFilter::Open,
        Some("answered") => QueueFilter::Answered,
        Some(_) => {
            return Err(ApiError::Validation(vec![edge::error::FieldError {
                pointer: "?status".into(),
                detail: "must be open or answered (a closed inquiry is read by its id)".into(),
            }]));
        }
    };
    let scope = format!("support-queue:{}:{}", caller.user_id, filter.name());
    let page = edge::cursor::page_request(&state.lookup, &request, &scope, 50).await?;
    let (items, last) =
        support::list_queue(&state, &caller, filter, page.after.as_deref(), page.limit).await?;
    let next_cursor = edge::cursor::next_cursor(&state.lookup, &scope, last.as_deref()).await?;
    json(StatusCode::OK, &Page { items, next_cursor })
}

/// `GET /v1/support/inquiries/{id}`.
async fn read(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let id = path_param(&request, "id")?;
    json(StatusCode::OK, &support::read(&state, &caller, &id).await?)
}

/// `POST /v1/support/inquiries/{id}/answers` (support): mails the answer.
async fn answer(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let id = path_param(&request, "id")?;
    let input = json_body(&request)?;
    json(
        StatusCode::OK,
        &support::answer(&state, &caller, &id, input).await?,
    )
}

/// `POST /v1/support/inquiries/{id}/close` (support): its retention period starts.
async fn close(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let id = path_param(&request, "id")?;
    json(StatusCode::OK, &support::close(&state, &caller, &id).await?)
}

/// `POST /v1/support/confirmations` (no token needed, none read: the mailed signature is the proof):
/// confirms a written privacy request about an address no account holds.
async fn confirm(state: AppState, request: Request) -> HandlerResult {
    let input = json_body(&request)?;
    json(
        StatusCode::OK,
        &support::confirm_address_request(&state, input).await?,
    )
}
