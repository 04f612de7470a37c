//! The privacy function: the rights the Applications Privacy Policy grants, and its versions.
//! Routes are declared in template.yaml (`PrivacyFunction`) and in `shared/edge/openapi.yaml`.

use domain::privacy::requests::{self, RequestView};
use edge::ApiError;
use edge::auth::Caller;
use edge::http::{HandlerResult, Router, idempotency_key, json, json_body, path_param};
use lambda_http::http::StatusCode;
use lambda_http::{Request, RequestExt};
use platform::AppState;
use serde::Serialize;

/// The route table of this function.
pub fn router() -> Router {
    Router::new()
        .route("GET /v1/privacy-requests", list_mine)
        .route("POST /v1/privacy-requests", create)
        .route("GET /v1/privacy-requests/{id}", read_mine)
        .route("POST /v1/privacy-requests/{id}/confirmation", confirm_written)
        .route("GET /v1/privacy-requests/{id}/export", export)
        .route("GET /v1/me/data-inventory", data_inventory)
        .route("POST /v1/admin/disclosures", record_disclosure)
        .route("POST /v1/admin/policy-versions", publish_policy)
        .route("POST /v1/admin/privacy-requests/{id}/decision", decide)
        .route("GET /v1/admin/privacy-requests", list_open)
        .route("POST /v1/admin/minors/{user_id}", delete_minor)
        .route("POST /v1/admin/minors/{user_id}/approval", approve_minor_deletion)
        .route("GET /v1/privacy/policy", current_policy)
        .route("GET /v1/admin/usage", usage)
        .route("POST /v1/telemetry", telemetry)
        .route("GET /v1/privacy/purposes", list_purposes)
        .route("POST /v1/admin/purposes", add_purpose)
        .route("POST /v1/admin/campaigns", create_campaign)
        .route("GET /v1/admin/campaigns/{id}", read_campaign)
        .route("GET /v1/admin/campaigns/{id}/recipients", campaign_recipients)
        .route("POST /v1/unsubscribe", unsubscribe)
        .route("GET /v1/unsubscribe/one-click", unsubscribe_page)
        .route("POST /v1/unsubscribe/one-click", unsubscribe_one_click)
}

/// The purposes, as `GET /v1/privacy/purposes` lists them.
#[derive(Serialize)]
struct Purposes {
    purposes: Vec<domain::purposes::Purpose>,
}

/// `GET /v1/privacy/purposes` (public): what personal data is used for, and which uses need consent.
async fn list_purposes(state: AppState, _request: Request) -> HandlerResult {
    let purposes = domain::purposes::all(&state.store).await?;
    json(StatusCode::OK, &Purposes { purposes })
}

/// `POST /v1/admin/purposes` (privacy officers): a new purpose, used only with each person's consent.
async fn add_purpose(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let input = json_body(&request)?;
    json(
        StatusCode::CREATED,
        &domain::purposes::add(&state, &caller, input).await?,
    )
}

/// `POST /v1/admin/campaigns` (ops): a marketing campaign, sent by the hourly run with consent only.
async fn create_campaign(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let input = json_body(&request)?;
    json(
        StatusCode::CREATED,
        &domain::campaigns::create(&state, &caller, input).await?,
    )
}

/// `GET /v1/admin/campaigns/{id}` (ops): how far a campaign's sending has got.
async fn read_campaign(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let id = path_param(&request, "id")?;
    json(
        StatusCode::OK,
        &domain::campaigns::read(&state, &caller, &id).await?,
    )
}

/// `GET /v1/admin/campaigns/{id}/recipients?after=` (ops): a page of a post or telephone campaign's
/// list for the mail house or SMS provider.
async fn campaign_recipients(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let id = path_param(&request, "id")?;
    let after = request
        .query_string_parameters_ref()
        .and_then(|params| params.first("after"))
        .map(str::to_owned);
    if after
        .as_ref()
        .is_some_and(|a| a.is_empty() || a.len() > edge::http::MAX_PATH_PARAM_LEN)
    {
        return Err(ApiError::Validation(vec![edge::error::FieldError {
            pointer: "?after".into(),
            detail: "must be a recipient id from the previous page".into(),
        }]));
    }
    let (items, next) = domain::campaigns::recipients(&state, &caller, &id, after.as_deref()).await?;
    json(
        StatusCode::OK,
        &Page {
            items,
            next_cursor: next,
        },
    )
}

/// `POST /v1/unsubscribe` (no token needed, none read: the mailed token is the proof).
async fn unsubscribe(state: AppState, request: Request) -> HandlerResult {
    let input = json_body(&request)?;
    json(
        StatusCode::OK,
        &domain::campaigns::unsubscribe(&state, input).await?,
    )
}

/// The `token` query parameter of the one-click unsubscribe link (422 when missing or overlong: a
/// real token is about 160 characters).
fn one_click_token(request: &Request) -> Result<String, ApiError> {
    request
        .query_string_parameters_ref()
        .and_then(|params| params.first("token"))
        .filter(|token| !token.is_empty() && token.chars().count() <= 400)
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::Validation(vec![edge::error::FieldError {
                pointer: "?token".into(),
                detail: "must be the token of the mail's unsubscribe link".into(),
            }])
        })
}

/// `GET /v1/unsubscribe/one-click?token=` (no sign-in): the page a campaign mail's link opens. It
/// changes nothing (mail scanners follow links); its button posts the one-click request.
async fn unsubscribe_page(state: AppState, request: Request) -> HandlerResult {
    let token = one_click_token(&request)?;
    let purpose = domain::campaigns::unsubscribe_page(&state, &token).await?;
    let escape = domain::mail::escape_html;
    edge::http::html(
        StatusCode::OK,
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>Unsubscribe</title></head><body>\
             <h1>Stop these mails</h1><p>You get them because you said yes to: {}.</p>\
             <form method=\"post\" action=\"one-click?token={}\">\
             <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
             <button type=\"submit\">Unsubscribe</button></form>\
             <p>You can change every choice in the OfficerTRAK app.</p></body></html>",
            escape(&purpose.description),
            escape(&token),
        ),
    )
}

/// `POST /v1/unsubscribe/one-click?token=` (no sign-in): the one-click unsubscribe of RFC 8058,
/// which mail clients send for the mail's `List-Unsubscribe` header (body
/// `List-Unsubscribe=One-Click`, nothing else read), and the page's button. A browser gets a page.
async fn unsubscribe_one_click(state: AppState, request: Request) -> HandlerResult {
    let token = one_click_token(&request)?;
    let done = domain::campaigns::unsubscribe(&state, domain::campaigns::Unsubscribe { token }).await?;
    if edge::http::wants_html(&request) {
        edge::http::html(
            StatusCode::OK,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>Unsubscribed</title></head><body>\
             <h1>Unsubscribed</h1><p>You will get no more of these mails.</p></body></html>"
                .to_owned(),
        )
    } else {
        json(StatusCode::OK, &done)
    }
}

/// `POST /v1/telemetry` (no token needed, none read): counts the client's coarse usage data.
async fn telemetry(state: AppState, request: Request) -> HandlerResult {
    let input: edge::usage::Telemetry = edge::http::json_body(&request)?;
    edge::usage::record_telemetry(&state, &input).await?;
    lambda_http::Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(lambda_http::Body::Empty)
        .map_err(|error| ApiError::Internal(error.to_string()))
}

/// `GET /v1/admin/usage?day=YYYY-MM-DD` (ops): anonymous usage of a UTC day (today by default).
async fn usage(state: AppState, request: Request) -> HandlerResult {
    use lambda_http::RequestExt;
    let caller = Caller::from_request(&request)?;
    let day = match request.query_string_parameters().first("day") {
        Some(text) => text.parse().map_err(|_| {
            ApiError::Validation(vec![edge::error::FieldError {
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
    json(StatusCode::OK, &edge::usage::report(&state, &caller, day).await?)
}

#[derive(Serialize)]
struct Page<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

/// `GET /v1/privacy-requests`: the caller's own privacy requests, newest first.
async fn list_mine(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let items: Vec<RequestView> = requests::list_mine(&state, &caller).await?;
    json(
        StatusCode::OK,
        &Page {
            items,
            next_cursor: None,
        },
    )
}

/// `POST /v1/privacy-requests` (honours `Idempotency-Key`): 201 when done at once, 202 when queued
/// for the privacy worker (deletion, access, portability), 200 for a retry.
async fn create(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let key = idempotency_key(&request)?;
    let input: requests::RequestInput = json_body(&request)?;
    let deletion = input.kind == requests::RequestType::Deletion;
    let queued = input.kind.runs_in_background();
    let (view, created) = requests::create(&state, &caller, input, key).await?;
    let mut response = json(
        match (created, queued) {
            (true, true) => StatusCode::ACCEPTED,
            (true, false) => StatusCode::CREATED,
            (false, _) => StatusCode::OK,
        },
        &view,
    )?;
    if deletion {
        // The caller's own erasure started: the router files this call's log line as anonymous.
        response.extensions_mut().insert(edge::revocation::SubjectRevoked);
    }
    Ok(response)
}

/// `GET /v1/privacy-requests/{id}`: one of the caller's own requests.
async fn read_mine(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let id = path_param(&request, "id")?;
    json(StatusCode::OK, &requests::read_mine(&state, &caller, &id).await?)
}

/// `POST /v1/privacy-requests/{id}/confirmation`: the subject confirms a request that arrived in
/// writing; 202 when the privacy worker carries it out, 200 otherwise.
async fn confirm_written(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let id = path_param(&request, "id")?;
    let view = requests::confirm_written(&state, &caller, &id).await?;
    let queued = view.kind.runs_in_background();
    let deletion = view.kind == requests::RequestType::Deletion;
    let mut response = json(
        if queued {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        },
        &view,
    )?;
    if deletion {
        // The caller's own erasure started: the router files this call's log line as anonymous.
        response.extensions_mut().insert(edge::revocation::SubjectRevoked);
    }
    Ok(response)
}

/// `POST /v1/admin/privacy-requests/{id}/decision` (privacy officers): fulfil, deny or extend.
async fn decide(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let id = path_param(&request, "id")?;
    let decision = json_body(&request)?;
    json(
        StatusCode::OK,
        &requests::decide(&state, &caller, &id, decision).await?,
    )
}

/// `POST /v1/admin/policy-versions` (privacy officers): 201 when published now, 200 for a repeat.
async fn publish_policy(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let input = json_body(&request)?;
    let (version, published) = domain::policy::publish(&state, &caller, input).await?;
    json(
        if published {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        &version,
    )
}

/// `POST /v1/admin/disclosures` (privacy officers): logs a disclosure.
async fn record_disclosure(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let input = json_body(&request)?;
    json(
        StatusCode::CREATED,
        &domain::privacy::disclosures::record(&state, &caller, input).await?,
    )
}

/// `GET /v1/me/data-inventory`: what we hold about the caller, why, from where, for whom, how long.
async fn data_inventory(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    json(
        StatusCode::OK,
        &domain::privacy::inventory::of(&state, &caller).await?,
    )
}

/// `GET /v1/privacy-requests/{id}/export[?part=N]`: the manifest, or one part as JSON Lines.
async fn export(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let id = path_param(&request, "id")?;
    let part = match request.query_string_parameters().first("part") {
        Some(text) => Some(text.parse::<u32>().map_err(|_| {
            ApiError::Validation(vec![edge::error::FieldError {
                pointer: "?part".into(),
                detail: "must be a part number (0, 1, …)".into(),
            }])
        })?),
        None => None,
    };
    match requests::export_of(&state, &caller, &id, part).await? {
        requests::ExportAnswer::Manifest(manifest) => json(StatusCode::OK, &manifest),
        requests::ExportAnswer::Part(lines) => lambda_http::Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/x-ndjson")
            .header("cache-control", "no-store")
            .body(lambda_http::Body::Text(lines))
            .map_err(|error| ApiError::Internal(error.to_string())),
    }
}

/// `GET /v1/admin/privacy-requests?status=open|overdue|closed` (privacy officers).
async fn list_open(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let filter = match request.query_string_parameters().first("status") {
        None | Some("open") => requests::StatusFilter::Open,
        Some("overdue") => requests::StatusFilter::Overdue,
        Some("closed") => requests::StatusFilter::Closed,
        Some("stuck") => requests::StatusFilter::Stuck,
        Some(_) => {
            return Err(ApiError::Validation(vec![edge::error::FieldError {
                pointer: "?status".into(),
                detail: "must be open, overdue, closed or stuck".into(),
            }]));
        }
    };
    let scope = format!("privacy-requests:{}:{}", caller.user_id, filter.name());
    let page = edge::cursor::page_request(&state.lookup, &request, &scope, 50).await?;
    let (items, last) =
        requests::list_by_status(&state, &caller, filter, page.after.as_deref(), page.limit).await?;
    let next_cursor = edge::cursor::next_cursor(&state.lookup, &scope, last.as_deref()).await?;
    json(StatusCode::OK, &Page { items, next_cursor })
}

/// `POST /v1/admin/minors/{user_id}/approval` (a second privacy officer): 202, the privacy worker
/// erases.
async fn approve_minor_deletion(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let user_id = path_param(&request, "user_id")?;
    json(
        StatusCode::ACCEPTED,
        &requests::approve_minor_deletion(&state, &caller, &user_id).await?,
    )
}

/// `POST /v1/admin/minors/{user_id}` (privacy officers; body `{"case_reference": …}`): 202, the
/// proposal waits for a second privacy officer.
async fn delete_minor(state: AppState, request: Request) -> HandlerResult {
    let caller = Caller::from_request(&request)?;
    let user_id = path_param(&request, "user_id")?;
    let input: requests::MinorDeletionInput = json_body(&request)?;
    // Support owns inquiries: it confirms the case is a report about a minor.
    let report = domain::support::minor_report_case(&state, input.case_reference.trim()).await?;
    json(
        StatusCode::ACCEPTED,
        &requests::delete_minor(&state, &caller, &user_id, input, report).await?,
    )
}

/// `GET /v1/privacy/policy?audience=users|providers` (public): the version in force of that policy,
/// with its text; the Users' policy when no audience is named.
async fn current_policy(state: AppState, request: Request) -> HandlerResult {
    use domain::policy::Audience;
    let audience = match request
        .query_string_parameters_ref()
        .and_then(|params| params.first("audience"))
    {
        None | Some("users") => Audience::Users,
        Some("providers") => Audience::Providers,
        Some(_) => {
            return Err(ApiError::Validation(vec![edge::error::FieldError {
                pointer: "?audience".into(),
                detail: "must be users or providers".into(),
            }]));
        }
    };
    match domain::policy::served(&state, audience).await? {
        Some(policy) => json(StatusCode::OK, &policy),
        None => Err(ApiError::NotFound("published policy version")),
    }
}
