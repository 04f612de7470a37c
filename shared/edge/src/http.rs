//! Routing by API Gateway route key, and the small helpers every handler uses.
//!
//! API Gateway (payload 2.0) tells the function which route matched (`requestContext.routeKey`, e.g.
//! `GET /v1/agencies/{id}`), so a function's router is a table from route key to handler. The same
//! table is what the route-consistency test compares with template.yaml and the OpenAPI document.

use crate::error::ApiError;
use futures::FutureExt;
use http::{HeaderValue, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use platform::state::AppState;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// What a handler returns.
pub type HandlerResult = Result<Response<Body>, ApiError>;

/// A boxed handler future (handlers are async functions of state and request).
pub type HandlerFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send>>;

/// Anything that can serve a route: in practice `async fn(AppState, Request) -> HandlerResult`.
pub trait Handler: Send + Sync {
    /// Serves one request.
    fn call(&self, state: AppState, request: Request) -> HandlerFuture;
}

impl<F, Fut> Handler for F
where
    F: Fn(AppState, Request) -> Fut + Send + Sync,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    fn call(&self, state: AppState, request: Request) -> HandlerFuture {
        Box::pin(self(state, request))
    }
}

/// The largest body a route accepts: every body we take is a few kilobytes of JSON, and parsing
/// (or storing) more only serves an attacker. One route takes more: [`LARGE_BODY_ROUTES`].
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The largest body of a route in [`LARGE_BODY_ROUTES`]: a policy's full text (its sections' caps
/// in the OpenAPI document fit in it even written as JSON escapes).
pub const MAX_LARGE_BODY_BYTES: usize = 1024 * 1024;

/// The routes whose bodies may be up to [`MAX_LARGE_BODY_BYTES`]: publishing a policy version
/// carries the policy's text.
pub const LARGE_BODY_ROUTES: &[&str] = &["POST /v1/admin/policy-versions"];

/// The body cap of `route_key`.
pub fn body_cap(route_key: &str) -> usize {
    if LARGE_BODY_ROUTES.contains(&route_key) {
        MAX_LARGE_BODY_BYTES
    } else {
        MAX_BODY_BYTES
    }
}

/// The body's length in bytes.
fn body_len(body: &Body) -> usize {
    match body {
        Body::Empty => 0,
        Body::Text(text) => text.len(),
        Body::Binary(bytes) => bytes.len(),
        _ => 0,
    }
}

/// Why a body is refused before any handler runs, on every route alike: above the route's
/// [`body_cap`] (413), or JSON holding an array or a string above the caps of [`crate::validation::check_sizes`]
/// (422 naming the field). A body that is not JSON is left to the handler (400 where it takes
/// JSON). So no route can read, write or send anything for an oversize body.
fn body_refusal(route_key: &str, body: &Body) -> Option<ApiError> {
    let limit = body_cap(route_key);
    if body_len(body) > limit {
        return Some(ApiError::PayloadTooLarge { limit });
    }
    let bytes: &[u8] = match body {
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => return None,
    };
    let value = serde_json::from_slice::<serde_json::Value>(bytes).ok()?;
    crate::validation::check_sizes(&value).err()
}

/// A function's route table: route key → handler.
#[derive(Default)]
pub struct Router {
    routes: BTreeMap<&'static str, Box<dyn Handler>>,
}

impl Router {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route. The key is API Gateway's route key: `METHOD /path/{param}`.
    ///
    /// # Panics
    /// When the key is registered twice: a programming error caught by every test that builds the router.
    pub fn route(mut self, route_key: &'static str, handler: impl Handler + 'static) -> Self {
        let previous = self.routes.insert(route_key, Box::new(handler));
        assert!(previous.is_none(), "route {route_key} registered twice");
        self
    }

    /// The route keys this router answers, sorted.
    pub fn route_keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.routes.keys().copied()
    }

    /// Serves one request: dispatches on the route key, turns errors into problem+json, and logs one
    /// line per request (route, status, duration, request id; never a body or a claim value).
    pub async fn handle(&self, state: &AppState, request: Request) -> Response<Body> {
        let (route_key, request_id, source_ip) = match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(context)) => (
                context.route_key.clone().unwrap_or_default(),
                context.request_id.clone(),
                context.http.source_ip.clone(),
            ),
            _ => (String::new(), None, None),
        };
        // An unlinked route is served as if nobody called: no caller, no IP, no access-log line.
        let unlinked = UNLINKED_ROUTES.contains(&route_key.as_str());
        let source_ip = source_ip.filter(|_| !unlinked);
        let caller = crate::auth::Caller::from_request(&request)
            .ok()
            .filter(|_| !unlinked);
        let app = crate::usage::app_label(
            request
                .headers()
                .get("x-app-version")
                .and_then(|value| value.to_str().ok()),
        );
        let span = tracing::info_span!(
            "request",
            request_id = request_id.as_deref().unwrap_or("-"),
            route = %route_key,
            "otel.name" = %route_key,
            "otel.kind" = platform::telemetry::request_span_kind(),
        );
        // Traced under the invocation's X-Ray trace, with every AWS and processor call inside it.
        platform::telemetry::continue_lambda_trace(&span);
        let started = Instant::now();
        async {
            // Before the handler: an erased person's token outlives the user-pool user by up to an
            // hour, so the revocation is checked before the rate limits, beside the usage count
            // (nothing, not a rate counter, not a log line, is filed under a revoked subject).
            let admitted =
                crate::admission::admit(state, &route_key, &app, caller.as_ref(), source_ip.as_deref()).await;
            let revoked_caller = matches!(admitted, Ok(crate::admission::Admitted { revoked: true }));
            let limited = admitted.map(|_| ());
            let refused = revoked_caller
                && is_write(&route_key)
                && !REVOKED_MAY_CALL.contains(&route_key.as_str());
            let result = match (limited, refused, self.routes.get(route_key.as_str())) {
                (Err(error), _, _) => Err(error),
                (Ok(()), true, _) => Err(ApiError::Forbidden(
                    "this sign-in belongs to an account that is being deleted or was deleted: it can no longer change anything"
                        .into(),
                )),
                (Ok(()), false, Some(handler)) => match body_refusal(&route_key, request.body()) {
                    Some(error) => Err(error),
                    None => match crate::idempotency::begin(state, &route_key, caller.as_ref(), &request, body_bytes(&request)).await {
                        Err(error) => Err(error),
                        Ok(crate::idempotency::Begun::Replay(response)) => Ok(response),
                        Ok(crate::idempotency::Begun::Run(ticket)) => {
                            // A panic in a handler is a bug, but it must cost one request a 500, never
                            // the connection or the container's other requests.
                            let result = match std::panic::AssertUnwindSafe(handler.call(state.clone(), request))
                                .catch_unwind()
                                .await
                            {
                                Ok(result) => result,
                                Err(_) => {
                                    tracing::error!("handler panicked");
                                    Err(ApiError::Internal("the handler panicked".into()))
                                }
                            };
                            if let Some(ticket) = ticket {
                                ticket.finish(state, &result).await;
                            }
                            result
                        }
                    },
                },
                (Ok(()), false, None) => Err(ApiError::RouteNotFound(route_key.clone())),
            };
            let response = match result {
                Ok(response) => response,
                Err(error) => {
                    if error.status().is_server_error() {
                        tracing::error!(error = ?error, "request failed");
                    }
                    error.into_response(request_id.as_deref())
                }
            };
            tracing::info!(
                status = response.status().as_u16(),
                duration_ms = started.elapsed().as_millis() as u64,
                "request finished"
            );
            // Nothing new is filed under a revoked subject, nor under one this call revoked.
            let log_as = match &caller {
                Some(caller)
                    if !revoked_caller
                        && response
                            .extensions()
                            .get::<crate::revocation::SubjectRevoked>()
                            .is_none() =>
                {
                    caller.user_id.clone()
                }
                _ => crate::access_log::ANONYMOUS.to_owned(),
            };
            let entry = crate::access_log::AccessLogEntry {
                log_owner: log_as,
                request_id: request_id
                    .clone()
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                route: route_key.clone(),
                status_code: response.status().as_u16(),
                accessed_at: state.clock.now(),
                source_ip,
            };
            if unlinked {
                // Nothing about this call is kept but the route's daily count.
            } else if let Err(error) = crate::access_log::record(&state.store, &entry).await {
                // The call itself succeeded or failed on its own terms; a lost log line must not
                // change its answer.
                tracing::warn!(error = %error, "access log entry not written");
            }
            response
        }
        .instrument(span)
        .await
    }
}

/// Routes whose calls must not be linkable to anyone (the client's own usage telemetry): the router
/// reads no caller, keeps no IP and writes no access-log line for them.
pub const UNLINKED_ROUTES: &[&str] = &["POST /v1/telemetry"];

/// The write routes a revoked subject may still call: a deletion must be retryable until it is done
/// (the domain refuses every other privacy-request type to a revoked subject).
const REVOKED_MAY_CALL: &[&str] = &["POST /v1/privacy-requests"];

/// Whether the route key (`METHOD /path`) names a write: every such route is refused to a revoked
/// subject.
fn is_write(route_key: &str) -> bool {
    matches!(
        route_key.split_whitespace().next(),
        Some("POST" | "PUT" | "PATCH" | "DELETE")
    )
}

/// Runs `router` as a Lambda function: telemetry, state from the environment, then the event loop.
/// Every function's `main` is this one call.
pub async fn serve_lambda(router: Router) -> Result<(), lambda_http::Error> {
    platform::telemetry::init();
    let state = AppState::from_env().await?;
    let router = Arc::new(router);
    lambda_http::run(lambda_http::service_fn(move |request: Request| {
        let state = state.clone();
        let router = Arc::clone(&router);
        async move { Ok::<_, std::convert::Infallible>(router.handle(&state, request).await) }
    }))
    .await
}

/// A JSON response with `status`.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> HandlerResult {
    let body = serde_json::to_string(value)
        .map_err(|error| ApiError::BadRequest(format!("response could not be encoded: {error}")))?;
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// `response`, marked as a replay when `replayed` (header `idempotent-replayed: true`, as the
/// creating routes' `Idempotency-Key` replays are): a state change retried after a lost answer
/// answers "done before", which an app tells from "refused".
pub fn marked_replay(mut response: Response<Body>, replayed: bool) -> HandlerResult {
    if replayed {
        response.headers_mut().insert(
            crate::idempotency::REPLAYED_HEADER,
            HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

/// An HTML page (the one-click unsubscribe link a reader opens in a browser): it may load nothing and
/// post only back to us, is never cached (its URL carries a token) and sends no referrer onward.
pub fn html(status: StatusCode, page: String) -> HandlerResult {
    let mut response = Response::new(Body::Text(page));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; form-action 'self'; frame-ancestors 'none'"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    Ok(response)
}

/// Whether the caller asked for a page rather than JSON (a browser's form post: its `Accept` names
/// `text/html`).
pub fn wants_html(request: &Request) -> bool {
    request
        .headers()
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// The request body parsed as JSON of type `T`: 400 when it is not JSON, 422 with the field's
/// pointer when it is JSON of the wrong shape ([`crate::validation::parse_body`]).
pub fn json_body<T: DeserializeOwned>(request: &Request) -> Result<T, ApiError> {
    crate::validation::parse_body(body_bytes(request))
}

/// Like [`json_body`], for a body whose document lets the fields at `nullable` be `null`.
pub fn json_body_allowing_null<T: DeserializeOwned>(
    request: &Request,
    nullable: &[&str],
) -> Result<T, ApiError> {
    crate::validation::parse_body_allowing_null(body_bytes(request), nullable)
}

/// The raw body (empty when there is none), for handlers that parse in the domain.
pub fn body_bytes(request: &Request) -> &[u8] {
    match request.body() {
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => b"",
    }
}

/// A body that may be empty or blank (then `T::default()`), else JSON of shape `T`.
pub fn optional_json_body<T: DeserializeOwned + Default>(request: &Request) -> Result<T, ApiError> {
    let blank = match request.body() {
        Body::Text(text) => text.trim().is_empty(),
        Body::Binary(bytes) => bytes.iter().all(u8::is_ascii_whitespace),
        _ => true,
    };
    if blank {
        Ok(T::default())
    } else {
        json_body(request)
    }
}

/// The `Idempotency-Key` header of a creating POST, checked once for every keyed route (the router's
/// and the domain's): 1 to [`crate::idempotency::MAX_KEY_LEN`] visible ASCII characters, else 400,
/// before anything is read or written.
pub fn idempotency_key(request: &Request) -> Result<Option<&str>, ApiError> {
    crate::idempotency::key_of(request)
}

/// Longest path parameter any id can be: longer ones name nothing (and would exceed DynamoDB's key
/// size, a 500), so they are a 404 here.
pub const MAX_PATH_PARAM_LEN: usize = 128;

/// A path parameter by name; 404 when it is missing (the route did not match as declared) or too
/// long to name anything.
pub fn path_param(request: &Request, name: &'static str) -> Result<String, ApiError> {
    request
        .path_parameters_ref()
        .and_then(|params| params.first(name))
        .filter(|value| !value.is_empty() && value.len() <= MAX_PATH_PARAM_LEN)
        .map(str::to_owned)
        .ok_or(ApiError::NotFound(name))
}

/// A required date query parameter (`?from=2027-01-31`): a 422 naming it when missing or malformed.
pub fn date_param(request: &Request, name: &str) -> Result<jiff::civil::Date, ApiError> {
    let invalid = |detail: &str| {
        ApiError::Validation(vec![crate::error::FieldError {
            pointer: format!("?{name}"),
            detail: detail.to_owned(),
        }])
    };
    request
        .query_string_parameters_ref()
        .and_then(|params| params.first(name))
        .ok_or_else(|| invalid("required: a date such as 2027-01-31"))?
        .parse()
        .map_err(|_| invalid("must be a date such as 2027-01-31"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "registered twice")]
    fn duplicate_route_is_refused() {
        async fn nothing(_: AppState, _: Request) -> HandlerResult {
            Err(ApiError::NotFound("thing"))
        }
        let _ = Router::new()
            .route("GET /v1/x", nothing)
            .route("GET /v1/x", nothing);
    }

    #[test]
    fn malformed_body_is_400_without_the_value() {
        let request = Request::new(Body::Text("{\"secret-value\": ".into()));
        let err = json_body::<serde_json::Value>(&request).expect_err("malformed");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert!(!err.to_string().contains("secret-value"));
    }
}
