//! The requests function: service requests customers book, with quotes, the agency's approval,
//! cancellation, their invoices and statements, and the payment processor's webhook.
//! Routes are declared in template.yaml (`RequestsFunction`) and in `shared/edge/openapi.yaml`.

use domain::service_requests::{self, ListQuery, Status};
use edge::ApiError;
use edge::auth::Caller;
use edge::error::FieldError;
use edge::http::{
    HandlerResult, Router, body_bytes, date_param, idempotency_key, json, json_body, path_param,
};
use lambda_http::http::StatusCode;
use lambda_http::{Request, RequestExt};
use platform::AppState;
use serde::Deserialize;

/// The route table of this function.
pub fn router() -> Router {
    Router::new()
        .route("POST /v1/service-requests", book)
        .route("POST /v1/quotes", quote)
        .route("GET /v1/service-requests", list_mine)
        .route("GET /v1/service-requests/{id}", read)
        .route("POST /v1/service-requests/{id}/cancel", cancel)
        .route("POST /v1/service-requests/{id}/approval", decide)
        .route("GET /v1/service-requests/{id}/invoice", invoice)
        .route("GET /v1/me/statement", statement)
        .route("GET /v1/agencies/{id}/invoices", agency_invoices)
        .route("POST /v1/webhooks/stripe", stripe_webhook)
}

/// `POST /v1/webhooks/stripe`: a report from the payment processor (no JWT: its signature is the
/// proof of origin; a missing, forged or stale one is a 400 and changes nothing).
async fn stripe_webhook(state: AppState, request: Request) -> HandlerResult {
    let signature = request
        .headers()
        .get("stripe-signature")
        .and_then(|value| value.to_str().ok());
    json(
        StatusCode::OK,
        &domain::billing::processor_webhook(&state, body_bytes(&request), signature).await?,
    )
}

/// `GET /v1/service-requests/{id}/invoice`: the request's invoice (its customer, or the agency's staff).
async fn invoice(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let id = path_param(&request, "id")?;
    json(
        StatusCode::OK,
        &domain::billing::invoice_of(&state, &caller, &id).await?,
    )
}

/// `GET /v1/me/statement?from=YYYY-MM-DD&to=YYYY-MM-DD`: the caller's invoices of a period.
async fn statement(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let (from, to) = (date_param(&request, "from")?, date_param(&request, "to")?);
    json(
        StatusCode::OK,
        &domain::billing::statement(&state, &caller, from, to).await?,
    )
}

/// `GET /v1/agencies/{id}/invoices?from=…&to=…`: the agency's invoices (its admins and dispatchers).
async fn agency_invoices(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let id = path_param(&request, "id")?;
    let (from, to) = (date_param(&request, "from")?, date_param(&request, "to")?);
    json(
        StatusCode::OK,
        &domain::billing::agency_invoices(&state, &caller, &id, from, to).await?,
    )
}

/// `POST /v1/service-requests/{id}/approval`: the agency accepts or rejects a booking awaiting approval.
async fn decide(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let id = path_param(&request, "id")?;
    let input: service_requests::BookingDecisionInput = json_body(&request)?;
    json(
        StatusCode::OK,
        &service_requests::decide(&state, &caller, &id, input).await?,
    )
}

/// `POST /v1/service-requests`: book (honours `Idempotency-Key`).
async fn book(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let key = idempotency_key(&request)?;
    let (booking, _created) = service_requests::book(&state, &caller, body_bytes(&request), key).await?;
    json(StatusCode::CREATED, &booking)
}

/// `POST /v1/quotes`: the price of a request; nothing is stored.
async fn quote(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let input = service_requests::parse(body_bytes(&request))?;
    json(
        StatusCode::OK,
        &service_requests::quote(&state, &caller, input).await?,
    )
}

fn query_error(name: &str, detail: &str) -> ApiError {
    ApiError::Validation(vec![FieldError {
        pointer: format!("?{name}"),
        detail: detail.to_owned(),
    }])
}

/// `GET /v1/service-requests`: the caller's requests (`status`, `from`, `to`, `limit`, `cursor`).
async fn list_mine(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let params = request.query_string_parameters();
    let status = match params.first("status") {
        Some(text) => Some(
            Status::deserialize(serde_json::Value::String(text.to_owned())).map_err(|_| {
                query_error(
                    "status",
                    "must be a request status such as requested or cancelled",
                )
            })?,
        ),
        None => None,
    };
    let date = |name: &str| -> Result<Option<jiff::civil::Date>, ApiError> {
        params
            .first(name)
            .map(|d| {
                d.parse()
                    .map_err(|_| query_error(name, "must be a date (YYYY-MM-DD)"))
            })
            .transpose()
    };
    let limit = match params.first("limit") {
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| query_error("limit", "must be 1 to 100"))?,
        None => 20,
    };
    let query = ListQuery {
        status,
        from: date("from")?,
        to: date("to")?,
        limit,
        cursor: params.first("cursor").map(str::to_owned),
    };
    json(
        StatusCode::OK,
        &service_requests::list(&state, &caller, query).await?,
    )
}

/// `GET /v1/service-requests/{id}`: for the customer, and the agency's dispatchers and admins.
async fn read(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let id = path_param(&request, "id")?;
    json(
        StatusCode::OK,
        &service_requests::read(&state, &caller, &id).await?,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelInput {
    reason: String,
}

/// `POST /v1/service-requests/{id}/cancel`: the customer cancels; the agency's fee schedule applies.
async fn cancel(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let id = path_param(&request, "id")?;
    let input: CancelInput = json_body(&request)?;
    let (view, replayed) =
        domain::scheduling::cancel_request_or_replay(&state, &caller, &id, &input.reason).await?;
    edge::http::marked_replay(json(StatusCode::OK, &view)?, replayed)
}
