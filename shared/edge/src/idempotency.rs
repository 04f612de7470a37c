//! `Idempotency-Key` on the creating POSTs, in one place: a client that lost the answer to a create
//! (a dropped connection, a timeout) sends the same request again with the same key and gets the
//! first answer back, and nothing is created twice. The same key with another body is a 422; a
//! retry while the first attempt still runs is a 409.
//!
//! The router calls [`begin`] before the handler and [`Ticket::finish`] after it, for the routes in
//! [`KEYED_ROUTES`]. A key is scoped to its caller and to the method and path it was sent to. The
//! first attempt writes an in-progress marker under `IDEMPOTENCY#<caller>` (an anonymous sender's
//! caller is the keyed digest of the address their body names; a conditional create,
//! so two concurrent attempts cannot both run; the system's key, because the caller may have none
//! yet: staff, a first registration). A success (2xx) keeps its answer for a day: in the caller's own
//! partition, under their own key, when they have one (so that shredding it reaches every copy,
//! backups included), else in the marker; the marker then says it answered. Anything else removes
//! the marker, so a corrected retry may use the key again (a 5xx too: a handler that fails after
//! creating something is a bug of that handler, not a reason to refuse every retry for a day).
//! A marker left by an attempt that died (the function's timeout ended it) is taken over once it is
//! older than [`STALE_AFTER_SECONDS`]. The body's hash is encrypted: a short body (a consent
//! decision) could be recovered from a plain one.
//!
//! Booking and privacy requests keep their own, stronger rule in the domain (the key is written in
//! the same transaction as the booking; a user has one deletion request), listed in
//! [`DOMAIN_KEYED_ROUTES`].

use crate::ApiError;
use crate::auth::Caller;
use crate::error::FieldError;
use jiff::Timestamp;
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use platform::AppState;
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The creating POSTs whose idempotency the router provides.
pub const KEYED_ROUTES: &[&str] = &[
    "POST /v1/customers",
    "POST /v1/providers",
    "POST /v1/me/consents",
    "POST /v1/agencies",
    "POST /v1/service-requests/{id}/claims",
    "POST /v1/service-requests/{id}/assignments",
    "POST /v1/admin/policy-versions",
    "POST /v1/admin/disclosures",
    "POST /v1/support/inquiries",
    "POST /v1/me/support/inquiries",
    "POST /v1/admin/purposes",
    "POST /v1/admin/campaigns",
];

/// The creating POSTs whose domain honours the key itself (see the module header).
pub const DOMAIN_KEYED_ROUTES: &[&str] = &["POST /v1/service-requests", "POST /v1/privacy-requests"];

/// Longest key accepted (Stripe's limit is 255; 200 keeps the sort key well within DynamoDB's).
pub const MAX_KEY_LEN: usize = 200;

/// After this long an in-progress marker belongs to an attempt that died: the API's functions time
/// out after 15 s.
pub const STALE_AFTER_SECONDS: i64 = 60;

/// Response header set on a replayed answer.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// Whether the first attempt is still running or has answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerState {
    /// The handler runs (or died running: see [`STALE_AFTER_SECONDS`]).
    InProgress,
    /// The handler succeeded; its answer is kept for retries.
    Answered,
}

/// A keyed request's marker (under `IDEMPOTENCY#<owner>`), or the copy of its answer kept in the
/// owner's own partition (`USER#<owner>`, sort key `IDEMPOTENT#<scope>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotentAnswer {
    /// The caller's user id, or `anonymous-<digest of the sender's address>`.
    pub owner: String,
    /// The hash of method and path, and the key: what the key is scoped to.
    #[serde(skip)]
    pub scope: String,
    /// Whether this is the copy in the owner's partition (else the marker).
    #[serde(default)]
    pub in_own_partition: bool,
    /// SHA-256 of the body, to tell a retry from another request with the same key. Encrypted (as
    /// `body_digest`: the booking's own record keeps a plain `body_sha256`, and one attribute name has
    /// one protection in the table).
    #[serde(rename = "body_digest")]
    pub body_sha256: String,
    /// Running or answered.
    pub state: AnswerState,
    /// When the first attempt began: the retention clock, and how a dead attempt is recognised.
    pub started_at: Timestamp,
    /// The answer's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// The answer's content type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The answer's body: in the copy, or in the marker of a caller without a key of their own;
    /// `None` in a marker whose answer is in the owner's partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
}

impl IdempotentAnswer {
    /// The copy of this marker's answer in the owner's own partition.
    fn own_copy_key(&self) -> ItemKey {
        ItemKey::new(
            platform::keys::user_partition(&self.owner),
            format!("IDEMPOTENT#{}", self.scope),
        )
    }
}

impl Record for IdempotentAnswer {
    const TYPE: &'static ItemType = &schema::IDEMPOTENT_ANSWER;

    fn key(&self) -> ItemKey {
        if self.in_own_partition {
            self.own_copy_key()
        } else {
            ItemKey::new(
                platform::keys::idempotency_partition(&self.owner),
                self.scope.clone(),
            )
        }
    }

    fn retention_start(&self) -> Option<Timestamp> {
        Some(self.started_at)
    }
}

/// What the router does with a request after [`begin`].
#[derive(Debug)]
pub enum Begun {
    /// Run the handler; with a ticket, report its result to [`Ticket::finish`].
    Run(Option<Ticket>),
    /// Answer this instead: the first attempt's answer.
    Replay(Response<Body>),
}

/// The claim of one keyed attempt on its key.
#[derive(Debug)]
pub struct Ticket {
    marker: IdempotentAnswer,
    version: u64,
}

/// The `Idempotency-Key` header of a request, checked once for every keyed route (the router's
/// and the domain's): 1 to [`MAX_KEY_LEN`] visible ASCII characters, else 400.
pub fn key_of(request: &Request) -> Result<Option<&str>, ApiError> {
    let Some(value) = request.headers().get("idempotency-key") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .filter(|key| {
            !key.is_empty() && key.len() <= MAX_KEY_LEN && key.chars().all(|c| c.is_ascii_graphic())
        })
        .map(Some)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
            ))
        })
}

/// Checks the key of a request to a keyed route and claims it: a replay when the key already
/// answered this body, 422 when it answered another body, 409 while another attempt runs, 400 for a
/// key that is not 1 to [`MAX_KEY_LEN`] visible ASCII characters. `body` is the request's body as
/// sent (the same bytes must come again for a replay).
pub async fn begin(
    state: &AppState,
    route_key: &str,
    caller: Option<&Caller>,
    request: &Request,
    body: &[u8],
) -> Result<Begun, ApiError> {
    if !KEYED_ROUTES.contains(&route_key) {
        return Ok(Begun::Run(None));
    }
    let Some(key) = key_of(request)? else {
        return Ok(Begun::Run(None));
    };
    let owner = match caller {
        Some(caller) => caller.user_id.clone(),
        None => match anonymous_owner(state, body).await? {
            Some(owner) => owner,
            // No sender named: the handler refuses the body; nothing to keep.
            None => return Ok(Begun::Run(None)),
        },
    };
    let target = format!("{} {}", request.method(), request.uri().path());
    let marker = IdempotentAnswer {
        owner,
        scope: format!("{}#{key}", hex::encode(Sha256::digest(target.as_bytes()))),
        in_own_partition: false,
        body_sha256: hex::encode(Sha256::digest(body)),
        state: AnswerState::InProgress,
        started_at: state.clock.now(),
        status_code: None,
        content_type: None,
        answer: None,
    };
    // Twice at most: a create that lost to a concurrent attempt reads what that attempt wrote.
    for _ in 0..2 {
        match state.store.get::<IdempotentAnswer>(&marker.key()).await? {
            None => match state.store.create_unless_live(&marker).await {
                Ok(()) => {
                    return Ok(Begun::Run(Some(Ticket { marker, version: 1 })));
                }
                Err(StoreError::ConditionFailed) => continue,
                Err(error) => return Err(error.into()),
            },
            Some(found) => {
                if found.record.body_sha256 != marker.body_sha256 {
                    return Err(ApiError::Validation(vec![FieldError {
                        pointer: "/".into(),
                        detail: "this Idempotency-Key was used with a different body".into(),
                    }]));
                }
                match found.record.state {
                    AnswerState::Answered => {
                        return replay(state, &marker, found.record).await.map(Begun::Replay);
                    }
                    AnswerState::InProgress
                        if marker.started_at.as_second() - found.record.started_at.as_second()
                            < STALE_AFTER_SECONDS =>
                    {
                        return Err(ApiError::Conflict(
                            "a request with this Idempotency-Key is still in progress: retry in a few seconds"
                                .into(),
                        ));
                    }
                    AnswerState::InProgress => match state.store.replace(&marker, found.version).await {
                        Ok(version) => return Ok(Begun::Run(Some(Ticket { marker, version }))),
                        Err(StoreError::ConditionFailed) => continue,
                        Err(error) => return Err(error.into()),
                    },
                }
            }
        }
    }
    Err(ApiError::Conflict(
        "a request with this Idempotency-Key is still in progress: retry in a few seconds".into(),
    ))
}

impl Ticket {
    /// Keeps a success's answer for retries, or frees the key after anything else. A failure to
    /// write is logged and changes nothing in the answer: the call itself succeeded or failed.
    pub async fn finish(self, state: &AppState, result: &Result<Response<Body>, ApiError>) {
        let answered = match result {
            Ok(response) if response.status().is_success() => Some(IdempotentAnswer {
                state: AnswerState::Answered,
                status_code: Some(response.status().as_u16()),
                content_type: response
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned),
                answer: Some(match response.body() {
                    Body::Text(text) => text.clone(),
                    Body::Binary(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                    _ => String::new(),
                }),
                ..self.marker.clone()
            }),
            _ => None,
        };
        let Some(answered) = answered else {
            if let Err(error) = state.store.delete(&self.marker.key()).await {
                tracing::warn!(error = %error, "idempotency marker not removed");
            }
            return;
        };
        // The answer goes under the owner's own key when they have one (a registration has just
        // made it); a caller without one (staff, anonymous) keeps it in the marker.
        let marker = if is_anonymous(&answered.owner) {
            answered
        } else {
            let copy = IdempotentAnswer {
                in_own_partition: true,
                ..answered.clone()
            };
            match state.store.create_unless_live(&copy).await {
                Ok(()) => IdempotentAnswer {
                    answer: None,
                    ..answered
                },
                Err(StoreError::KeyDestroyed) => answered,
                Err(error) => {
                    tracing::warn!(error = %error, "idempotent answer not kept");
                    answered
                }
            }
        };
        // A lost write would let a retry run the handler again: it is tried three times.
        for attempt in 0..3u64 {
            match state.store.replace(&marker, self.version).await {
                Ok(_) => return,
                Err(StoreError::ConditionFailed) => {
                    tracing::warn!("idempotency marker taken over meanwhile");
                    return;
                }
                Err(error) => {
                    tracing::warn!(error = %error, attempt, "idempotency marker not updated");
                    tokio::time::sleep(std::time::Duration::from_millis(50 * (attempt + 1))).await;
                }
            }
        }
    }
}

/// The owner of an anonymous sender's key: the keyed digest of the address the body names
/// (`anonymous-<digest>`), so that one sender's key never answers, or blocks, another's request and
/// anonymous keys do not all share one partition. `None` when the body names no address.
async fn anonymous_owner(state: &AppState, body: &[u8]) -> Result<Option<String>, ApiError> {
    let Some(email) = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|body| {
            body.get("email")
                .and_then(|e| e.as_str())
                .map(platform::lookup::normalize_email)
        })
        .filter(|email| !email.is_empty())
    else {
        return Ok(None);
    };
    let digest = state
        .lookup
        .digest("idempotency-sender", email.as_bytes())
        .await?;
    Ok(Some(format!("{}-{digest}", crate::access_log::ANONYMOUS)))
}

/// Whether `owner` is an anonymous sender (who has no key of their own to keep an answer under).
fn is_anonymous(owner: &str) -> bool {
    owner == crate::access_log::ANONYMOUS || owner.starts_with(&format!("{}-", crate::access_log::ANONYMOUS))
}

/// The first attempt's answer, from the `found` marker or the owner's own partition (its key comes
/// from `asked`, the marker of this attempt: a stored record does not carry its scope).
async fn replay(
    state: &AppState,
    asked: &IdempotentAnswer,
    found: IdempotentAnswer,
) -> Result<Response<Body>, ApiError> {
    if found.answer.is_some() {
        return Ok(replayed(&found));
    }
    match state.store.get::<IdempotentAnswer>(&asked.own_copy_key()).await? {
        Some(copy) => Ok(replayed(&copy.record)),
        // Erased with its owner meanwhile: there is nothing to answer with.
        None => Err(ApiError::Conflict(
            "the answer to this Idempotency-Key is no longer available: use a new key".into(),
        )),
    }
}

/// The stored answer as a response, marked as a replay.
fn replayed(answer: &IdempotentAnswer) -> Response<Body> {
    let body = answer.answer.clone().unwrap_or_default();
    let mut response = Response::new(if body.is_empty() {
        Body::Empty
    } else {
        Body::Text(body)
    });
    *response.status_mut() = answer
        .status_code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::OK);
    if let Some(value) = answer
        .content_type
        .as_deref()
        .and_then(|value| HeaderValue::from_str(value).ok())
    {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}
