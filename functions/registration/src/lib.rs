//! The registration function: accounts of customers, Security Providers and agencies, their
//! correction, and consent (to marketing, per channel, and to any purpose added later).
//! Routes are declared in template.yaml (`RegistrationFunction`) and in `shared/edge/openapi.yaml`.

use domain::accounts;
use domain::agencies;
use edge::auth::Caller;
use edge::http::{HandlerResult, Router, json, json_body, path_param};
use lambda_http::Request;
use lambda_http::http::StatusCode;
use platform::AppState;

/// The route table of this function.
pub fn router() -> Router {
    Router::new()
        .route("POST /v1/customers", register_customer)
        .route("POST /v1/providers", register_provider)
        .route("GET /v1/me", get_me)
        .route("PATCH /v1/me/customer", correct_customer)
        .route("PATCH /v1/me/provider", correct_provider)
        .route("POST /v1/me/consents", set_consent)
        .route("GET /v1/me/consents", list_consents)
        .route("PUT /v1/me/consents/{purpose}", set_purpose_consent)
        .route("POST /v1/agencies", create_agency)
        .route("GET /v1/agencies/{id}", get_agency)
        .route("PUT /v1/agencies/{id}", update_agency)
}

/// `POST /v1/customers`: register the caller as a customer (repeating it with the same data returns
/// the same account).
async fn register_customer(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let input = json_body(&request)?;
    let registered = accounts::register_customer(&state, &caller, input).await?;
    json(StatusCode::CREATED, &registered.view)
}

/// `POST /v1/providers`: register the caller as a Security Provider, with their W-9.
async fn register_provider(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let input = json_body(&request)?;
    let registered = accounts::register_provider(&state, &caller, input).await?;
    json(StatusCode::CREATED, &registered.view)
}

/// `GET /v1/me`: the caller's accounts, consent and policy acceptance; 404 before registration.
async fn get_me(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    json(StatusCode::OK, &accounts::me(&state, &caller).await?)
}

/// `PATCH /v1/me/customer`: correct the caller's customer account.
async fn correct_customer(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let correction = json_body(&request)?;
    json(
        StatusCode::OK,
        &accounts::correct_customer(&state, &caller, correction).await?,
    )
}

/// `PATCH /v1/me/provider`: correct the caller's Security Provider account.
async fn correct_provider(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let correction = json_body(&request)?;
    json(
        StatusCode::OK,
        &accounts::correct_provider(&state, &caller, correction).await?,
    )
}

/// `POST /v1/me/consents`: record a marketing-consent decision.
async fn set_consent(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let change = json_body(&request)?;
    json(
        StatusCode::CREATED,
        &accounts::set_consent(&state, &caller, change).await?,
    )
}

/// Every purpose with the caller's decision, as `GET` and `PUT /v1/me/consents…` answer.
#[derive(serde::Serialize)]
struct Consents {
    purposes: Vec<domain::purposes::PurposeConsent>,
}

/// `GET /v1/me/consents`: every purpose the data may be used for, and the caller's decision on each
/// one that needs consent.
async fn list_consents(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let purposes = accounts::consents(&state, &caller).await?;
    json(StatusCode::OK, &Consents { purposes })
}

/// `PUT /v1/me/consents/{purpose}`: the caller's yes or no to one purpose that needs consent.
async fn set_purpose_consent(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let purpose = path_param(&request, "purpose")?;
    let change = json_body(&request)?;
    let purposes = accounts::set_purpose_consent(&state, &caller, &purpose, change).await?;
    json(StatusCode::OK, &Consents { purposes })
}

/// `POST /v1/agencies` (ops): create an agency with its rates and rules.
async fn create_agency(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let settings = json_body(&request)?;
    json(
        StatusCode::CREATED,
        &agencies::create(&state, &caller, settings).await?,
    )
}

/// `GET /v1/agencies/{id}` (ops or the agency's admins).
async fn get_agency(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let id = path_param(&request, "id")?;
    json(StatusCode::OK, &agencies::read(&state, &caller, &id).await?)
}

/// `PUT /v1/agencies/{id}` (ops or the agency's admins): replace its settings.
async fn update_agency(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let id = path_param(&request, "id")?;
    let settings = json_body(&request)?;
    json(
        StatusCode::OK,
        &agencies::update(&state, &caller, &id, settings).await?,
    )
}
