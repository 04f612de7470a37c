//! Privacy requests: each right the policy grants becomes a tracked request with a legal deadline and
//! an audit trail of every transition (who, when, what; never personal values), kept 24 months.
//!
//! Requests live outside the user's partition (`PRIVACY#<user id>`, system key), because they must
//! outlive an erasure: the record of a deletion is kept after the data is gone. Operators find open
//! ones through `gsi1` (`PRIVACY_REQUESTS#OPEN`, by due date).
//!
//! Processed at once: `marketing_opt_out`, `restriction`, `lift_restriction`, `deletion` (through
//! [`crate::privacy::erasure`]), `access` and `portability` (through [`crate::privacy::export`]). `correction` is tracked
//! with its deadline for the privacy officers; the self-service correction flow is not built yet
//! (the profile endpoints correct data directly).

use crate::accounts::{self, AccountRole, AccountStatus, StatusChange};
use crate::privacy::erasure::{self, ErasureReason, Progress, RetainedCategory};
use edge::auth::{Caller, Role};
use edge::error::ApiError;
use edge::validation::Validator;
use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use platform::AppState;
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How recent a sign-in must be for requests that disclose or destroy data.
pub const RECENT_AUTH: SignedDuration = SignedDuration::from_mins(15);

/// What the user asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestType {
    Access,
    Portability,
    Correction,
    Deletion,
    Restriction,
    LiftRestriction,
    MarketingOptOut,
}

impl RequestType {
    /// Whether the request discloses or destroys data, and so needs a recent sign-in.
    pub fn needs_recent_sign_in(self) -> bool {
        matches!(
            self,
            Self::Access | Self::Portability | Self::Deletion | Self::Correction
        )
    }
}

/// The law the deadline follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Jurisdiction {
    Gdpr,
    Ccpa,
    Other,
}

/// The internal lifecycle (every move is audited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    Received,
    Verified,
    InProcessing,
    Completed,
    Denied,
    Cancelled,
}

impl Lifecycle {
    fn is_open(self) -> bool {
        matches!(self, Self::Received | Self::Verified | Self::InProcessing)
    }

    /// The status the user sees.
    pub fn user_facing(self) -> &'static str {
        match self {
            Self::Received | Self::Verified => "open",
            Self::InProcessing => "in_progress",
            Self::Completed => "fulfilled",
            Self::Denied => "denied",
            Self::Cancelled => "expired",
        }
    }
}

/// `n` business days (Monday to Friday, UTC) after `from`.
pub fn add_business_days(from: Timestamp, n: u32) -> Timestamp {
    let mut at = from.to_zoned_datetime(TimeZone::UTC);
    let mut left = n;
    while left > 0 {
        at = at.checked_add(1.day()).unwrap_or(at);
        if !matches!(at.weekday(), Weekday::Saturday | Weekday::Sunday) {
            left -= 1;
        }
    }
    at.timestamp()
}

fn add_span(from: Timestamp, span: jiff::Span) -> Timestamp {
    from.to_zoned_datetime(TimeZone::UTC)
        .checked_add(span)
        .map(|z| z.timestamp())
        .unwrap_or(from)
}

/// The legal deadline of a request received at `received`: GDPR one month (the same day of the next
/// month, or its last day), CCPA 45 days, a marketing opt-out 15 business days, otherwise 30 days.
pub fn deadline(jurisdiction: Jurisdiction, kind: RequestType, received: Timestamp) -> Timestamp {
    if kind == RequestType::MarketingOptOut {
        return add_business_days(received, 15);
    }
    match jurisdiction {
        Jurisdiction::Gdpr => add_span(received, 1.month()),
        Jurisdiction::Ccpa => add_span(received, 45.days()),
        Jurisdiction::Other => add_span(received, 30.days()),
    }
}

/// The deadline after the one extension the law allows: GDPR two more months, CCPA 45 more days.
pub fn extended_deadline(jurisdiction: Jurisdiction, due: Timestamp) -> Timestamp {
    match jurisdiction {
        Jurisdiction::Gdpr => add_span(due, 2.months()),
        Jurisdiction::Ccpa | Jurisdiction::Other => add_span(due, 45.days()),
    }
}

/// CCPA: receipt must be confirmed within 10 business days.
pub fn receipt_deadline(jurisdiction: Jurisdiction, received: Timestamp) -> Option<Timestamp> {
    (jurisdiction == Jurisdiction::Ccpa).then(|| add_business_days(received, 10))
}

/// What a finished request produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestResult {
    pub summary: String,
    /// For a deletion: what the law makes us keep, why and until when.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retained: Vec<RetainedCategory>,
    /// For access and portability: the export's manifest (`GET …/{id}/export?part=N` for the parts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<crate::privacy::export::ExportManifest>,
}

/// A stored privacy request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivacyRequest {
    pub request_id: String,
    pub user_id: String,
    pub kind: RequestType,
    pub jurisdiction: Jurisdiction,
    pub status: Lifecycle,
    pub received_at: Timestamp,
    /// The legal deadline (`due_at` is taken: it is the due-date index's sort key).
    pub deadline_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_due_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<RequestResult>,
    /// When the privacy officers were told it is overdue (once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdue_alerted_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    /// `PRIVACY_REQUESTS#OPEN` or `PRIVACY_REQUESTS#CLOSED`.
    pub gsi1pk: String,
    /// Due date (epoch ms, fixed width) and id: operators see the most urgent first.
    pub gsi1sk: String,
}

impl PrivacyRequest {
    /// The key of `user_id`'s request `request_id`.
    pub fn key_of(user_id: &str, request_id: &str) -> ItemKey {
        ItemKey::new(
            platform::keys::privacy_partition(user_id),
            format!("REQUEST#{request_id}"),
        )
    }

    fn index(&mut self) {
        let due = self.extended_until.unwrap_or(self.deadline_at);
        self.gsi1pk = format!(
            "PRIVACY_REQUESTS#{}",
            if self.status.is_open() { "OPEN" } else { "CLOSED" }
        );
        self.gsi1sk = format!("{}#{}", platform::keys::sortable_time(due), self.request_id);
    }
}

impl Record for PrivacyRequest {
    const TYPE: &'static ItemType = &schema::PRIVACY_REQUEST;

    fn key(&self) -> ItemKey {
        Self::key_of(&self.user_id, &self.request_id)
    }

    fn retention_start(&self) -> Option<Timestamp> {
        Some(self.received_at)
    }
}

/// One move of a request (or an operator action on a user's data), for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivacyAuditEntry {
    pub user_id: String,
    pub subject_id: String,
    pub action: String,
    pub actor_user_id: String,
    pub recorded_at: Timestamp,
    #[serde(skip)]
    pub entry_id: String,
}

impl Record for PrivacyAuditEntry {
    const TYPE: &'static ItemType = &schema::PRIVACY_AUDIT_ENTRY;

    fn key(&self) -> ItemKey {
        ItemKey::new(
            platform::keys::privacy_partition(&self.user_id),
            format!(
                "AUDIT#{}#{}",
                platform::keys::sortable_time(self.recorded_at),
                self.entry_id
            ),
        )
    }

    fn retention_start(&self) -> Option<Timestamp> {
        Some(self.recorded_at)
    }
}

/// A privacy request as the subject sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestView {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: RequestType,
    pub jurisdiction: Jurisdiction,
    pub status: &'static str,
    pub received_at: Timestamp,
    pub due_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_until: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<RequestResult>,
}

impl From<&PrivacyRequest> for RequestView {
    fn from(r: &PrivacyRequest) -> Self {
        Self {
            id: r.request_id.clone(),
            kind: r.kind,
            jurisdiction: r.jurisdiction,
            status: r.status.user_facing(),
            received_at: r.received_at,
            due_at: r.deadline_at,
            extended_until: r.extended_until,
            extension_reason: r.extension_reason.clone(),
            result: r.result.clone(),
        }
    }
}

/// The body of `POST /v1/privacy-requests`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestInput {
    #[serde(rename = "type")]
    pub kind: RequestType,
    #[serde(default)]
    pub jurisdiction: Option<Jurisdiction>,
    /// For a correction: the customer account's fields to correct (as `PATCH /v1/me/customer`).
    #[serde(default)]
    pub customer: Option<crate::accounts::CustomerCorrection>,
    /// For a correction: the provider account's fields to correct (as `PATCH /v1/me/provider`).
    #[serde(default)]
    pub provider: Option<crate::accounts::ProviderCorrection>,
}

async fn audit(
    state: &AppState,
    user_id: &str,
    subject_id: &str,
    action: &str,
    actor: &str,
) -> Result<(), StoreError> {
    state
        .store
        .create(&PrivacyAuditEntry {
            user_id: user_id.to_owned(),
            subject_id: subject_id.to_owned(),
            action: action.to_owned(),
            actor_user_id: actor.to_owned(),
            recorded_at: state.clock.now(),
            entry_id: uuid::Uuid::new_v4().simple().to_string(),
        })
        .await
}

/// Moves `request` to `to`, audited; returns the new version.
async fn transition(
    state: &AppState,
    request: &mut PrivacyRequest,
    version: u64,
    to: Lifecycle,
    actor: &str,
) -> Result<u64, ApiError> {
    let from = request.status;
    request.status = to;
    request.updated_at = state.clock.now();
    request.index();
    let mut expected = version;
    let version = loop {
        match state.store.replace(&*request, expected).await {
            Ok(version) => break version,
            Err(StoreError::ConditionFailed) => {
                // Someone else wrote the request meanwhile (the hourly overdue alert, an operator's
                // extension). If it is still where this transition starts, keep their fields and
                // move it; if it moved on, the caller must look again.
                let current = state
                    .store
                    .get::<PrivacyRequest>(&request.key())
                    .await?
                    .filter(|c| c.record.status == from)
                    .ok_or_else(|| {
                        ApiError::Conflict("the request changed meanwhile: read it again".into())
                    })?;
                request.overdue_alerted_at = current.record.overdue_alerted_at;
                request.extended_until = current.record.extended_until;
                request.extension_reason = current.record.extension_reason.clone();
                request.index();
                expected = current.version;
            }
            Err(error) => return Err(error.into()),
        }
    };
    let action = format!(
        "{}->{}",
        serde_json::to_value(from)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        serde_json::to_value(to)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    );
    audit(state, &request.user_id, &request.request_id, &action, actor).await?;
    Ok(version)
}

fn request_id_for(user_id: &str, key: Option<&str>) -> Result<String, ApiError> {
    match key {
        None => Ok(uuid::Uuid::new_v4().to_string()),
        Some(key) if key.is_empty() || key.len() > 200 || !key.chars().all(|c| c.is_ascii_graphic()) => Err(
            ApiError::BadRequest("Idempotency-Key must be 1 to 200 visible ASCII characters".into()),
        ),
        Some(key) => {
            let digest = Sha256::digest(format!("privacy-request:{user_id}:{key}").as_bytes());
            Ok(digest.iter().take(16).map(|b| format!("{b:02x}")).collect())
        }
    }
}

/// `POST /v1/privacy-requests`: records the request (with `Idempotency-Key`, a retry returns the
/// first), verifies it (a recent sign-in for requests that disclose or destroy data) and processes
/// what can be processed at once. Returns the request and whether it was created now.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    mut input: RequestInput,
    idempotency_key: Option<&str>,
) -> Result<(RequestView, bool), ApiError> {
    let now = state.clock.now();
    if input.kind.needs_recent_sign_in()
        && caller
            .auth_time
            .is_none_or(|at| now.duration_since(at) > RECENT_AUTH)
    {
        return Err(ApiError::ReauthenticationRequired(
            "this request needs a sign-in within the last 15 minutes: sign in again and retry".into(),
        ));
    }
    let request_id = request_id_for(&caller.user_id, idempotency_key)?;
    if let Some(existing) = state
        .store
        .get::<PrivacyRequest>(&PrivacyRequest::key_of(&caller.user_id, &request_id))
        .await?
    {
        if existing.record.kind != input.kind {
            return Err(ApiError::Validation(vec![edge::error::FieldError {
                pointer: "/type".into(),
                detail: "this Idempotency-Key was used for a request of another type".into(),
            }]));
        }
        return Ok((RequestView::from(&existing.record), false));
    }
    // A correction is applied first, with the same validation as the profile endpoints (a 422 records
    // nothing). Its verification is the recent sign-in, not the field being corrected.
    let corrected = if input.kind == RequestType::Correction {
        correct(state, caller, input.customer.take(), input.provider.take()).await?
    } else {
        if input.customer.is_some() || input.provider.is_some() {
            return Err(ApiError::Validation(vec![edge::error::FieldError {
                pointer: "/type".into(),
                detail: "only a correction names fields to change".into(),
            }]));
        }
        None
    };
    let jurisdiction = input.jurisdiction.unwrap_or(Jurisdiction::Other);
    let mut request = PrivacyRequest {
        request_id,
        user_id: caller.user_id.clone(),
        kind: input.kind,
        jurisdiction,
        status: Lifecycle::Received,
        received_at: now,
        deadline_at: deadline(jurisdiction, input.kind, now),
        receipt_due_at: receipt_deadline(jurisdiction, now),
        extended_until: None,
        extension_reason: None,
        result: None,
        overdue_alerted_at: None,
        updated_at: now,
        gsi1pk: String::new(),
        gsi1sk: String::new(),
    };
    request.index();
    // The id → owner pointer first: privacy officers act on a request by id alone.
    match state
        .store
        .create(&RequestPointer {
            request_id: request.request_id.clone(),
            user_id: caller.user_id.clone(),
            received_at: now,
        })
        .await
    {
        Ok(()) | Err(StoreError::ConditionFailed) => {}
        Err(error) => return Err(error.into()),
    }
    match state.store.create(&request).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed) => {
            // A concurrent retry with the same key won: answer with its request.
            let existing = state
                .store
                .get::<PrivacyRequest>(&request.key())
                .await?
                .ok_or(ApiError::Conflict("the request is being created: retry".into()))?;
            return Ok((RequestView::from(&existing.record), false));
        }
        Err(error) => return Err(error.into()),
    }
    audit(
        state,
        &caller.user_id,
        &request.request_id,
        "received",
        &caller.user_id,
    )
    .await?;
    tracing::info!(request_id = %request.request_id, kind = ?request.kind, "privacy request received");
    // Receipt is confirmed at once (the CCPA asks for it within 10 business days), before anything is
    // done: a deletion removes the address from the user pool.
    let kind = serde_json::to_value(request.kind)
        .ok()
        .and_then(|v| v.as_str().map(|k| k.replace('_', " ")))
        .unwrap_or_default();
    notify_requester(
        state,
        &caller.user_id,
        "We received your privacy request",
        &format!(
            "We received your {kind} request {} on {}. We will answer by {} at the latest; you can follow it in the app.",
            request.request_id,
            request.received_at.strftime("%Y-%m-%d"),
            request.deadline_at.strftime("%Y-%m-%d"),
        ),
    )
    .await;
    // The caller is authenticated by the user pool (and recently, where that matters): verified.
    let mut version = transition(state, &mut request, 1, Lifecycle::Verified, &caller.user_id).await?;
    let outcome = match request.kind {
        RequestType::MarketingOptOut => Some(opt_out(state, caller).await?),
        RequestType::Restriction => Some(set_restricted(state, &caller.user_id, true).await?),
        RequestType::LiftRestriction => Some(set_restricted(state, &caller.user_id, false).await?),
        RequestType::Deletion => {
            version = transition(
                state,
                &mut request,
                version,
                Lifecycle::InProcessing,
                &caller.user_id,
            )
            .await?;
            Some(delete(state, &caller.user_id, ErasureReason::Request).await?)
        }
        RequestType::Access | RequestType::Portability => {
            version = transition(
                state,
                &mut request,
                version,
                Lifecycle::InProcessing,
                &caller.user_id,
            )
            .await?;
            let manifest = crate::privacy::export::build(
                state,
                &caller.user_id,
                &request.request_id,
                crate::privacy::export::PART_BYTES,
            )
            .await?;
            Some(RequestResult {
                summary: format!(
                    "your data export is ready: {} part(s), available until {}",
                    manifest.parts,
                    manifest.available_until.strftime("%Y-%m-%d %H:%M UTC")
                ),
                retained: Vec::new(),
                export: Some(manifest),
            })
        }
        RequestType::Correction => corrected,
    };
    if let Some(result) = outcome {
        request.result = Some(result);
        transition(
            state,
            &mut request,
            version,
            Lifecycle::Completed,
            &caller.user_id,
        )
        .await?;
    }
    Ok((RequestView::from(&request), true))
}

/// Places the field pointers of a validation error under `prefix` (the correction's place in the
/// request body).
fn under(prefix: &str, error: ApiError) -> ApiError {
    match error {
        ApiError::Validation(errors) => ApiError::Validation(
            errors
                .into_iter()
                .map(|e| edge::error::FieldError {
                    pointer: format!("{prefix}{}", e.pointer),
                    detail: e.detail,
                })
                .collect(),
        ),
        other => other,
    }
}

/// The fields a correction sets (`customer.name`, …): names only, for the result and the audit.
fn named_fields<T: Serialize>(account: &str, correction: &T) -> Vec<String> {
    serde_json::to_value(correction)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .into_iter()
        .flatten()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, _)| format!("{account}.{k}"))
        .collect()
}

/// Applies a correction; `None` when it named no field (then privacy officers handle it, e.g. data
/// the profile endpoints cannot change).
async fn correct(
    state: &AppState,
    caller: &Caller,
    customer: Option<crate::accounts::CustomerCorrection>,
    provider: Option<crate::accounts::ProviderCorrection>,
) -> Result<Option<RequestResult>, ApiError> {
    let mut fields = Vec::new();
    if let Some(correction) = customer {
        fields.extend(named_fields("customer", &correction));
        crate::accounts::correct_customer(state, caller, correction)
            .await
            .map_err(|error| under("/customer", error))?;
    }
    if let Some(correction) = provider {
        fields.extend(named_fields("provider", &correction));
        crate::accounts::correct_provider(state, caller, correction)
            .await
            .map_err(|error| under("/provider", error))?;
    }
    if fields.is_empty() {
        return Ok(None);
    }
    Ok(Some(RequestResult {
        summary: format!("corrected: {}", fields.join(", ")),
        retained: Vec::new(),
        export: None,
    }))
}

async fn opt_out(state: &AppState, caller: &Caller) -> Result<RequestResult, ApiError> {
    let policy_version = match crate::accounts::me(state, caller).await {
        Ok(me) => me.policy.accepted_version,
        Err(ApiError::NotFound(_)) => "unknown".to_owned(),
        Err(error) => return Err(error),
    };
    // The record is the user's data, under the user's key; someone who never registered has none yet.
    state.keys.create_user_key(&caller.user_id).await?;
    let record = crate::consent::ConsentRecord::marketing(
        &caller.user_id,
        false,
        &policy_version,
        crate::consent::ConsentSource::PrivacyRequest,
        state.clock.now(),
    );
    state.store.create(&record).await?;
    Ok(RequestResult {
        summary: "marketing consent withdrawn; no marketing mail is sent from now on".into(),
        retained: Vec::new(),
        export: None,
    })
}

/// Restricts (or lifts the restriction on) processing of a user's data: the accounts' status, and
/// the officer's listing in the agency's pool (a restricted officer is matched nowhere).
pub async fn set_restricted(
    state: &AppState,
    user_id: &str,
    restricted: bool,
) -> Result<RequestResult, ApiError> {
    let (from, to) = if restricted {
        (AccountStatus::Active, AccountStatus::Restricted)
    } else {
        (AccountStatus::Restricted, AccountStatus::Active)
    };
    for role in [AccountRole::Customer, AccountRole::Provider] {
        match accounts::set_status(&state.store, user_id, role, |s| s == from, to, || true).await {
            Ok(StatusChange::Changed) if role == AccountRole::Provider => {
                crate::scheduling::relist(state, user_id).await?;
            }
            Ok(_) => {}
            Err(StoreError::ConditionFailed) => {
                return Err(ApiError::Conflict("the account changed meanwhile: retry".into()));
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(RequestResult {
        summary: if restricted {
            "processing restricted: your data is stored but not used for matching, assignments or marketing"
                .into()
        } else {
            "restriction lifted".into()
        },
        retained: Vec::new(),
        export: None,
    })
}

async fn delete(state: &AppState, user_id: &str, reason: ErasureReason) -> Result<RequestResult, ApiError> {
    erasure::start(state, user_id, reason).await?;
    match erasure::run(state, user_id, usize::MAX).await? {
        Progress::Done(job) => Ok(RequestResult {
            summary: if job.retained.is_empty() {
                "all your data was deleted".into()
            } else {
                "your data was deleted except the records the law makes us keep, listed here; they stay encrypted and are deleted when their period ends".into()
            },
            retained: job.retained,
            export: None,
        }),
        Progress::Paused(step) => Err(ApiError::Internal(format!("erasure paused at {step:?}"))),
    }
}

/// `GET /v1/privacy-requests`: the caller's requests, newest first.
pub async fn list_mine(state: &AppState, caller: &Caller) -> Result<Vec<RequestView>, ApiError> {
    let mut requests: Vec<PrivacyRequest> = state
        .store
        .query::<PrivacyRequest>(
            &platform::keys::privacy_partition(&caller.user_id),
            "REQUEST#",
            500,
        )
        .await?
        .into_iter()
        .map(|v| v.record)
        .collect();
    requests.sort_by_key(|r| std::cmp::Reverse(r.received_at));
    Ok(requests.iter().map(RequestView::from).collect())
}

/// `GET /v1/privacy-requests/{id}`: one of the caller's requests (anyone else: 404).
pub async fn read_mine(state: &AppState, caller: &Caller, request_id: &str) -> Result<RequestView, ApiError> {
    state
        .store
        .get::<PrivacyRequest>(&PrivacyRequest::key_of(&caller.user_id, request_id))
        .await?
        .map(|v| RequestView::from(&v.record))
        .ok_or(ApiError::NotFound("privacy request"))
}

/// `GET /v1/privacy-requests/{id}/export[?part=N]`: the manifest, or part `N` (JSON Lines), of the
/// caller's own export while it is available; 404 for anyone else, other request types, or expired.
pub async fn export_of(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    part: Option<u32>,
) -> Result<ExportAnswer, ApiError> {
    let request = state
        .store
        .get::<PrivacyRequest>(&PrivacyRequest::key_of(&caller.user_id, request_id))
        .await?
        .ok_or(ApiError::NotFound("privacy request"))?
        .record;
    let manifest = request
        .result
        .and_then(|r| r.export)
        .filter(|m| m.available_until > state.clock.now())
        .ok_or(ApiError::NotFound("export (none, or no longer available)"))?;
    match part {
        None => Ok(ExportAnswer::Manifest(manifest)),
        Some(n) if n < manifest.parts => {
            crate::privacy::export::part_of(state, &caller.user_id, request_id, n)
                .await?
                .map(ExportAnswer::Part)
                .ok_or(ApiError::NotFound("export part"))
        }
        Some(_) => Err(ApiError::NotFound("export part")),
    }
}

/// What `GET …/export` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportAnswer {
    Manifest(crate::privacy::export::ExportManifest),
    /// JSON Lines.
    Part(String),
}

/// An open request as a privacy officer sees it: status and dates, never the user's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperatorView {
    pub id: String,
    pub user_id: String,
    #[serde(rename = "type")]
    pub kind: RequestType,
    pub status: Lifecycle,
    pub due_at: Timestamp,
    pub overdue: bool,
}

/// `GET /v1/admin/privacy-requests?overdue=true` (privacy officers): open requests, most urgent first.
pub async fn list_open(
    state: &AppState,
    caller: &Caller,
    only_overdue: bool,
) -> Result<Vec<OperatorView>, ApiError> {
    list_by_status(
        state,
        caller,
        if only_overdue {
            StatusFilter::Overdue
        } else {
            StatusFilter::Open
        },
    )
    .await
}

/// Which requests a privacy officer lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Received, verified or in processing.
    Open,
    /// Open and past the (extended) deadline.
    Overdue,
    /// Completed, denied or cancelled (kept 24 months).
    Closed,
}

/// `GET /v1/admin/privacy-requests?status=open|overdue|closed` (privacy officers), by due date.
pub async fn list_by_status(
    state: &AppState,
    caller: &Caller,
    filter: StatusFilter,
) -> Result<Vec<OperatorView>, ApiError> {
    caller.require(Role::PrivacyOfficer)?;
    let now = state.clock.now();
    let partition = if filter == StatusFilter::Closed {
        "PRIVACY_REQUESTS#CLOSED"
    } else {
        "PRIVACY_REQUESTS#OPEN"
    };
    let only_overdue = filter == StatusFilter::Overdue;
    Ok(state
        .store
        .query_gsi1::<PrivacyRequest>(partition)
        .await?
        .into_iter()
        .map(|v| v.record)
        .map(|r| {
            let due = r.extended_until.unwrap_or(r.deadline_at);
            OperatorView {
                id: r.request_id,
                user_id: r.user_id,
                kind: r.kind,
                status: r.status,
                due_at: due,
                overdue: due < now,
            }
        })
        .filter(|v| !only_overdue || (v.overdue && v.status.is_open()))
        .collect())
}

/// Open requests past their (extended) deadline that no alert was sent for yet: marks each as alerted
/// and mails the privacy officers one summary (ids and due dates, never user data). At most `max`
/// per run; idempotent (an alerted request is not alerted again). Returns how many were alerted.
pub async fn alert_overdue(state: &AppState, max: usize) -> Result<usize, ApiError> {
    let now = state.clock.now();
    let mut alerted = Vec::new();
    for current in state
        .store
        .query_gsi1::<PrivacyRequest>("PRIVACY_REQUESTS#OPEN")
        .await?
    {
        if alerted.len() == max {
            break;
        }
        let due = current
            .record
            .extended_until
            .unwrap_or(current.record.deadline_at);
        if due >= now || current.record.overdue_alerted_at.is_some() {
            continue;
        }
        let mut marked = current.record.clone();
        marked.overdue_alerted_at = Some(now);
        match state.store.replace(&marked, current.version).await {
            Ok(_) => {}
            // Changed meanwhile (fulfilled, extended, or alerted by another run): look again next run.
            Err(StoreError::ConditionFailed) => continue,
            Err(error) => return Err(error.into()),
        }
        audit(
            state,
            &marked.user_id,
            &marked.request_id,
            "overdue_alert_sent",
            "system",
        )
        .await?;
        alerted.push(marked);
    }
    if alerted.is_empty() {
        return Ok(0);
    }
    let lines: Vec<String> = alerted
        .iter()
        .map(|r| {
            let due = r.extended_until.unwrap_or(r.deadline_at);
            format!(
                "request {} ({:?}) was due {}",
                r.request_id,
                r.kind,
                due.strftime("%Y-%m-%d %H:%M UTC")
            )
        })
        .collect();
    let message = crate::mail::overdue_privacy_requests(&lines);
    for address in privacy_officer_addresses(state).await {
        if let Err(error) = state.mailer.send(&address, &message).await {
            tracing::warn!(error = %error, "overdue alert not sent");
        }
    }
    tracing::info!(
        overdue = alerted.len(),
        "privacy officers alerted of overdue requests"
    );
    Ok(alerted.len())
}

/// The e-mail addresses of the `privacy_officer` group, from the user pool.
async fn privacy_officer_addresses(state: &AppState) -> Vec<String> {
    let mut addresses = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = match state
            .directory
            .list_group(Role::PrivacyOfficer.group_name(), token.take())
            .await
        {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(error = %error, "privacy officers not listed");
                return addresses;
            }
        };
        addresses.extend(page.users.into_iter().filter_map(|user| user.email));
        match page.next {
            Some(next) => token = Some(next),
            None => return addresses,
        }
    }
}

/// Finds a request's owner by request id (for privacy officers, who act by id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestPointer {
    pub request_id: String,
    pub user_id: String,
    pub received_at: Timestamp,
}

impl Record for RequestPointer {
    const TYPE: &'static ItemType = &schema::PRIVACY_REQUEST_POINTER;

    fn key(&self) -> ItemKey {
        ItemKey::new(format!("PRIVACY_REQUEST#{}", self.request_id), "REF".to_owned())
    }

    fn retention_start(&self) -> Option<Timestamp> {
        Some(self.received_at)
    }
}

/// What a privacy officer does with an open request.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case", deny_unknown_fields)]
pub enum Decision {
    /// Fulfilled (e.g. a correction made, or data provided outside the app).
    Fulfil { summary: String },
    /// Refused: the basis in law, told to the requester with their right to complain.
    Deny { basis: String },
    /// The one extension the law allows, with the reason, told to the requester.
    Extend { reason: String },
}

/// `POST /v1/admin/privacy-requests/{id}/decision` (privacy officers): fulfil, deny or extend an open
/// request; each is audited, and a denial or extension is mailed to the requester.
pub async fn decide(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    decision: Decision,
) -> Result<OperatorView, ApiError> {
    caller.require(Role::PrivacyOfficer)?;
    let mut v = Validator::new();
    match &decision {
        Decision::Fulfil { summary } => v.text("/summary", summary, 1000),
        Decision::Deny { basis } => v.text("/basis", basis, 1000),
        Decision::Extend { reason } => v.text("/reason", reason, 1000),
    }
    v.finish()?;
    let pointer = state
        .store
        .get::<RequestPointer>(&ItemKey::new(
            format!("PRIVACY_REQUEST#{request_id}"),
            "REF".to_owned(),
        ))
        .await?
        .ok_or(ApiError::NotFound("privacy request"))?
        .record;
    let current = state
        .store
        .get::<PrivacyRequest>(&PrivacyRequest::key_of(&pointer.user_id, request_id))
        .await?
        .ok_or(ApiError::NotFound("privacy request"))?;
    let mut request = current.record;
    if !request.status.is_open() {
        return Err(ApiError::Conflict("the request is closed already".into()));
    }
    let notice = match decision {
        Decision::Fulfil { summary } => {
            request.result = Some(RequestResult {
                summary: summary.trim().to_owned(),
                retained: Vec::new(),
                export: None,
            });
            transition(
                state,
                &mut request,
                current.version,
                Lifecycle::Completed,
                &caller.user_id,
            )
            .await?;
            None
        }
        Decision::Deny { basis } => {
            let summary = format!(
                "Your request was denied. Basis: {}. You may complain to a data-protection supervisory authority \
                 (GDPR) or to the California Attorney General (CCPA), and reply to this message to ask us to reconsider.",
                basis.trim()
            );
            request.result = Some(RequestResult {
                summary: summary.clone(),
                retained: Vec::new(),
                export: None,
            });
            transition(
                state,
                &mut request,
                current.version,
                Lifecycle::Denied,
                &caller.user_id,
            )
            .await?;
            Some(("Your privacy request was denied".to_owned(), summary))
        }
        Decision::Extend { reason } => {
            if request.extended_until.is_some() {
                return Err(ApiError::Conflict(
                    "the deadline was extended once already".into(),
                ));
            }
            let until = extended_deadline(request.jurisdiction, request.deadline_at);
            request.extended_until = Some(until);
            request.extension_reason = Some(reason.trim().to_owned());
            request.updated_at = state.clock.now();
            request.index();
            match state.store.replace(&request, current.version).await {
                Ok(_) => {}
                Err(StoreError::ConditionFailed) => {
                    return Err(ApiError::Conflict(
                        "the request changed meanwhile: read it again".into(),
                    ));
                }
                Err(error) => return Err(error.into()),
            }
            audit(
                state,
                &request.user_id,
                &request.request_id,
                "extended",
                &caller.user_id,
            )
            .await?;
            Some((
                "We need more time for your privacy request".to_owned(),
                format!(
                    "We will answer your request by {}. Reason: {}",
                    until.strftime("%Y-%m-%d"),
                    reason.trim()
                ),
            ))
        }
    };
    if let Some((subject, text)) = notice {
        notify_requester(state, &request.user_id, &subject, &text).await;
    }
    let due = request.extended_until.unwrap_or(request.deadline_at);
    Ok(OperatorView {
        id: request.request_id,
        user_id: request.user_id,
        kind: request.kind,
        status: request.status,
        due_at: due,
        overdue: due < state.clock.now(),
    })
}

/// Mails the requester (address from the user pool); a failure is logged, never the address.
async fn notify_requester(state: &AppState, user_id: &str, subject: &str, text: &str) {
    let address = match state.directory.user(user_id).await {
        Ok(user) => user.and_then(|u| u.email),
        Err(_) => None,
    };
    let Some(address) = address else {
        tracing::warn!("requester has no address in the user pool: notice not mailed");
        return;
    };
    let message = crate::mail::privacy_notice(subject, text);
    if let Err(error) = state.mailer.send(&address, &message).await {
        tracing::warn!(error = %error, "privacy notice not sent");
    }
}

/// What `POST /v1/admin/minors/{user_id}` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MinorDeletion {
    pub user_id: String,
    pub deleted_at: Timestamp,
    pub result: RequestResult,
}

/// `POST /v1/admin/minors/{user_id}` (privacy officers): data found to belong to someone under 18 is
/// deleted at once, nothing kept, audited.
pub async fn delete_minor(
    state: &AppState,
    caller: &Caller,
    user_id: &str,
) -> Result<MinorDeletion, ApiError> {
    caller.require(Role::PrivacyOfficer)?;
    audit(
        state,
        user_id,
        user_id,
        "minor_data_deletion_started",
        &caller.user_id,
    )
    .await?;
    let result = delete(state, user_id, ErasureReason::Minor).await?;
    audit(state, user_id, user_id, "minor_data_deleted", &caller.user_id).await?;
    tracing::info!("minor's data deleted");
    Ok(MinorDeletion {
        user_id: user_id.to_owned(),
        deleted_at: state.clock.now(),
        result,
    })
}

/// The audit trail of `user_id`'s privacy requests (oldest first).
pub async fn audit_trail(state: &AppState, user_id: &str) -> Result<Vec<PrivacyAuditEntry>, StoreError> {
    Ok(state
        .store
        .query::<PrivacyAuditEntry>(&platform::keys::privacy_partition(user_id), "AUDIT#", usize::MAX)
        .await?
        .into_iter()
        .map(|v| v.record)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    #[test]
    fn gdpr_gives_one_calendar_month_clamped_at_month_end() {
        let due = deadline(
            Jurisdiction::Gdpr,
            RequestType::Access,
            at("2027-01-31T10:00:00Z"),
        );
        assert_eq!(due, at("2027-02-28T10:00:00Z"));
        let due = deadline(
            Jurisdiction::Gdpr,
            RequestType::Access,
            at("2028-01-31T10:00:00Z"),
        );
        assert_eq!(due, at("2028-02-29T10:00:00Z"), "leap year");
        assert_eq!(
            extended_deadline(Jurisdiction::Gdpr, at("2027-02-28T10:00:00Z")),
            at("2027-04-28T10:00:00Z")
        );
    }

    #[test]
    fn ccpa_gives_45_days_plus_45_and_confirms_receipt_within_10_business_days() {
        let received = at("2027-12-20T09:00:00Z");
        assert_eq!(
            deadline(Jurisdiction::Ccpa, RequestType::Deletion, received),
            at("2028-02-03T09:00:00Z")
        );
        assert_eq!(
            extended_deadline(Jurisdiction::Ccpa, at("2028-02-03T09:00:00Z")),
            at("2028-03-19T09:00:00Z")
        );
        // Monday 20 December + 10 business days = Monday 3 January.
        assert_eq!(
            receipt_deadline(Jurisdiction::Ccpa, received),
            Some(at("2028-01-03T09:00:00Z"))
        );
        assert_eq!(receipt_deadline(Jurisdiction::Gdpr, received), None);
    }

    #[test]
    fn an_opt_out_has_15_business_days_over_weekends() {
        // Friday 29 January 2027 + 15 business days = Friday 19 February.
        let received = at("2027-01-29T16:00:00Z");
        assert_eq!(
            deadline(Jurisdiction::Ccpa, RequestType::MarketingOptOut, received),
            at("2027-02-19T16:00:00Z")
        );
    }

    #[test]
    fn user_facing_statuses() {
        assert_eq!(Lifecycle::Verified.user_facing(), "open");
        assert_eq!(Lifecycle::InProcessing.user_facing(), "in_progress");
        assert_eq!(Lifecycle::Completed.user_facing(), "fulfilled");
    }
}
