//! The API's errors and their one mapping to RFC 9457 `application/problem+json`.
//!
//! Every handler returns `Result<_, ApiError>`; the router turns the error into a response here and
//! nowhere else. A problem's `type` is stable (clients branch on it); `detail` never carries a personal
//! value, because problem bodies can end up in client logs.

use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use platform::store::StoreError;
use serde::Serialize;
use thiserror::Error;

/// One invalid field of a request body, by JSON pointer (`/site/address/postal_code`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON pointer to the offending field.
    pub pointer: String,
    /// What is wrong, without echoing the value.
    pub detail: String,
}

/// Everything a request can fail with. Each variant has exactly one status and problem type.
#[derive(Debug, Error)]
pub enum ApiError {
    /// No valid bearer token (the gateway's JWT authorizer normally answers this first).
    #[error("authentication required")]
    Unauthorized,
    /// Authenticated, but too long ago for this request: sign in again (the detail says why).
    #[error("{0}")]
    ReauthenticationRequired(String),
    /// Authenticated, but this caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The route key is not one this function serves.
    #[error("no route for {0}")]
    RouteNotFound(String),
    /// The named thing does not exist (or the caller may not know it exists).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state (duplicate, illegal transition, lost race).
    #[error("{0}")]
    Conflict(String),
    /// A scheduling rule keeps this officer off this shift; `rule` names it (stable, machine-readable).
    #[error("{detail}")]
    Ineligible { rule: &'static str, detail: String },
    /// A rule of the record's life refuses the action now (e.g. a customer cancelling after the
    /// start); `rule` names it.
    #[error("{detail}")]
    Refused { rule: &'static str, detail: String },
    /// The body is larger than its route accepts ([`crate::http::body_cap`]).
    #[error("the body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body is not JSON of the expected shape.
    #[error("{0}")]
    BadRequest(String),
    /// The body is well-formed but breaks a rule; one entry per field.
    #[error("the request breaks {} rule(s)", .0.len())]
    Validation(Vec<FieldError>),
    /// Too many requests; the client may retry after this many seconds.
    #[error("too many requests")]
    TooManyRequests { retry_after_seconds: u64 },
    /// The payment processor declined the card (`code` is the processor's decline code, e.g.
    /// `card_declined`): nothing was booked; the customer may try another card.
    #[error("the card was declined ({code}); nothing was booked or charged")]
    PaymentDeclined { code: String },
    /// The payment processor could not be reached: nothing was changed; the client may retry.
    #[error("the payment processor is unavailable; nothing was changed, try again shortly")]
    ProcessorUnavailable,
    /// Storage failed in a way the caller cannot fix. Logged with its cause; the body says nothing more.
    #[error("storage failure")]
    Store(#[from] StoreError),
    /// A dependency (KMS, Cognito, the key store) failed. Logged with its cause; never personal data.
    #[error("internal failure")]
    Internal(String),
}

impl From<platform::crypto::CryptoError> for ApiError {
    fn from(error: platform::crypto::CryptoError) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<platform::processor::ProcessorError> for ApiError {
    fn from(error: platform::processor::ProcessorError) -> Self {
        use platform::processor::ProcessorError;
        match error {
            ProcessorError::Declined { code } => Self::PaymentDeclined { code },
            ProcessorError::Unavailable(detail) => {
                tracing::warn!(detail = %detail, "payment processor unavailable");
                Self::ProcessorUnavailable
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<platform::lookup::LookupError> for ApiError {
    fn from(error: platform::lookup::LookupError) -> Self {
        Self::Internal(error.to_string())
    }
}

/// The RFC 9457 body.
#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The scheduling rule that refused an officer (`ineligible` problems only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'static str>,
}

/// What a 503 for busy storage says: many callers wanted the same data at once and the retries
/// inside the call did not get through ([`platform::store::StoreError::Busy`]).
const BUSY_DETAIL: &str = "the data this call needs is busy with other calls; try again shortly";

/// The detail of a conditional write that lost to another call's write (a handler that did not say
/// more): the caller read what someone else changed meanwhile. A lost race is a conflict, never a 500.
const CHANGED_DETAIL: &str =
    "what this call read changed meanwhile (another call wrote it first): read it again and retry";

/// Whether `error` is a conditional write that lost to another call (a failed condition, or a
/// transaction cancelled by one), as opposed to a fault.
fn lost_race(error: &StoreError) -> bool {
    match error {
        StoreError::ConditionFailed => true,
        // Cancelled for failed conditions only: a transaction that was invalid (too large, one item
        // twice) is a fault, and stays a 500.
        StoreError::TransactionCancelled(reasons) => reasons
            .iter()
            .all(|reason| matches!(reason.as_str(), "ConditionalCheckFailed" | "None")),
        _ => false,
    }
}
/// The `Retry-After` of that 503: the contention it reports lasts milliseconds.
const BUSY_RETRY_AFTER_SECONDS: u64 = 1;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized | Self::ReauthenticationRequired(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::RouteNotFound(_) | Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) | Self::Ineligible { .. } | Self::Refused { .. } => StatusCode::CONFLICT,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::PaymentDeclined { .. } => StatusCode::PAYMENT_REQUIRED,
            Self::ProcessorUnavailable | Self::Store(StoreError::Busy(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(error) if lost_race(error) => StatusCode::CONFLICT,
            Self::Store(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable problem `type` URI and its title.
    pub fn kind(&self) -> (&'static str, &'static str) {
        match self {
            Self::Unauthorized => ("urn:officertrak:problem:unauthorized", "Authentication required"),
            Self::ReauthenticationRequired(_) => (
                "urn:officertrak:problem:reauthentication-required",
                "Recent sign-in required",
            ),
            Self::Forbidden(_) => ("urn:officertrak:problem:forbidden", "Not allowed"),
            Self::RouteNotFound(_) => ("urn:officertrak:problem:route-not-found", "No such route"),
            Self::NotFound(_) => ("urn:officertrak:problem:not-found", "Not found"),
            Self::Conflict(_) => ("urn:officertrak:problem:conflict", "Conflict"),
            Self::Ineligible { .. } => ("urn:officertrak:problem:ineligible", "Officer not eligible"),
            Self::Refused { .. } => ("urn:officertrak:problem:refused", "Not allowed now"),
            Self::BadRequest(_) => ("urn:officertrak:problem:bad-request", "Malformed request"),
            Self::PayloadTooLarge { .. } => ("urn:officertrak:problem:payload-too-large", "Body too large"),
            Self::Validation(_) => ("urn:officertrak:problem:validation", "Invalid request"),
            Self::TooManyRequests { .. } => ("urn:officertrak:problem:rate-limited", "Too many requests"),
            Self::PaymentDeclined { .. } => ("urn:officertrak:problem:payment-declined", "Payment declined"),
            Self::ProcessorUnavailable => (
                "urn:officertrak:problem:processor-unavailable",
                "Payment processor unavailable",
            ),
            Self::Store(StoreError::Busy(_)) => ("urn:officertrak:problem:busy", "Temporarily busy"),
            Self::Store(error) if lost_race(error) => ("urn:officertrak:problem:conflict", "Conflict"),
            Self::Store(_) | Self::Internal(_) => ("urn:officertrak:problem:internal", "Internal error"),
        }
    }

    /// The problem body for this error. `instance` is the request id, so support can find the logs.
    pub fn problem(&self, request_id: Option<&str>) -> Problem {
        let (kind, title) = self.kind();
        let errors = match self {
            Self::Validation(errors) => errors.clone(),
            _ => Vec::new(),
        };
        Problem {
            kind,
            title,
            status: self.status().as_u16(),
            detail: match self {
                Self::Store(StoreError::Busy(_)) => BUSY_DETAIL.to_owned(),
                Self::Store(error) if lost_race(error) => CHANGED_DETAIL.to_owned(),
                _ => self.to_string(),
            },
            instance: request_id.map(|id| format!("urn:officertrak:request:{id}")),
            errors,
            rule: match self {
                Self::Ineligible { rule, .. } | Self::Refused { rule, .. } => Some(rule),
                _ => None,
            },
        }
    }

    /// The full HTTP response for this error.
    pub fn into_response(self, request_id: Option<&str>) -> Response<Body> {
        let retry_after = match &self {
            Self::TooManyRequests { retry_after_seconds } => Some(*retry_after_seconds),
            Self::Store(StoreError::Busy(_)) => Some(BUSY_RETRY_AFTER_SECONDS),
            _ => None,
        };
        problem_response(&self.problem(request_id), retry_after)
    }
}

/// Serialises a problem into a response; shared with the local gateway's own 401/404 answers.
pub fn problem_response(problem: &Problem, retry_after_seconds: Option<u64>) -> Response<Body> {
    let body = serde_json::to_string(problem).unwrap_or_else(|_| String::from("{}"));
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() =
        StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if let Some(seconds) = retry_after_seconds {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_json(response: &Response<Body>) -> serde_json::Value {
        match response.body() {
            Body::Text(text) => serde_json::from_str(text).expect("json body"),
            other => panic!("unexpected body {other:?}"),
        }
    }

    #[test]
    fn validation_lists_each_field_with_422() {
        let err = ApiError::Validation(vec![FieldError {
            pointer: "/phone".into(),
            detail: "must be E.164".into(),
        }]);
        let response = err.into_response(Some("req-1"));
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let body = body_json(&response);
        assert_eq!(body["type"], "urn:officertrak:problem:validation");
        assert_eq!(body["status"], 422);
        assert_eq!(body["errors"][0]["pointer"], "/phone");
        assert_eq!(body["instance"], "urn:officertrak:request:req-1");
    }

    #[test]
    fn rate_limit_carries_retry_after() {
        let response = ApiError::TooManyRequests {
            retry_after_seconds: 17,
        }
        .into_response(None);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "17");
    }

    #[test]
    fn busy_storage_is_a_503_with_retry_after_never_a_500() {
        let response = ApiError::from(StoreError::Busy("TransactionConflict".into())).into_response(None);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let body = body_json(&response);
        assert_eq!(body["type"], "urn:officertrak:problem:busy");
        assert!(
            !body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("Transaction")
        );
    }

    #[test]
    fn a_lost_race_is_a_409_never_a_500() {
        for lost in [
            StoreError::ConditionFailed,
            StoreError::TransactionCancelled(vec!["ConditionalCheckFailed".into()]),
        ] {
            let body = body_json(&ApiError::from(lost).into_response(None));
            assert_eq!(body["status"], 409);
            assert_eq!(body["type"], "urn:officertrak:problem:conflict");
            assert!(
                !body["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("Conditional")
            );
        }
        let invalid = ApiError::from(StoreError::TransactionCancelled(vec![
            "None".into(),
            "ValidationError".into(),
        ]));
        assert_eq!(
            invalid.status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "a fault stays a 500"
        );
    }

    #[test]
    fn storage_failure_hides_its_cause() {
        let err = ApiError::from(StoreError::Sdk("ResourceNotFoundException: table x".into()));
        let body = body_json(&err.into_response(None));
        assert_eq!(body["status"], 500);
        assert!(!body["detail"].as_str().unwrap_or_default().contains("table"));
    }
}
