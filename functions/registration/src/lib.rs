//! The registration function: accounts of customers, Security Providers and agencies.
//! Routes are declared in template.yaml (`RegistrationFunction`) and in `shared/openapi.yaml`.

use lambda_http::Request;
use lambda_http::http::StatusCode;
use serde::Serialize;
use shared::auth::Caller;
use shared::http::{HandlerResult, Router, json};
use shared::{ApiError, AppState};

/// The route table of this function.
pub fn router() -> Router {
    Router::new().route("GET /v1/me", get_me)
}

#[derive(Serialize)]
struct MeResponse {
    user_id: String,
    accounts: Vec<shared::accounts::AccountSummary>,
}

/// `GET /v1/me`: the caller's accounts; 404 until the caller has registered for a role.
async fn get_me(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let accounts = shared::accounts::accounts_of(&state.store, &caller.user_id).await?;
    if accounts.is_empty() {
        return Err(ApiError::NotFound("account"));
    }
    json(
        StatusCode::OK,
        &MeResponse {
            user_id: caller.user_id,
            accounts,
        },
    )
}
