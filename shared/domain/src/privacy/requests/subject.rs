//! What the subject reads: their own requests and the export that answers access and portability.

use super::*;

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
    /// The law whose clock the request follows (from where the subject lives).
    pub jurisdiction: Jurisdiction,
    /// That clock and its basis in law, in words.
    pub clock: &'static str,
    pub received_at: Timestamp,
    pub due_at: Timestamp,
    /// When receipt must be confirmed (CCPA: 10 business days).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt_due_at: Option<Timestamp>,
    pub overdue: bool,
    /// Set while the worker's job for it keeps failing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stuck: Option<StuckJob>,
}

impl OperatorView {
    /// `request` as a privacy officer sees it at `now`.
    pub fn of(request: PrivacyRequest, now: Timestamp) -> Self {
        let due = request.extended_until.unwrap_or(request.deadline_at);
        Self {
            id: request.request_id,
            user_id: request.user_id,
            kind: request.kind,
            status: request.status,
            jurisdiction: request.jurisdiction,
            clock: clock_basis(request.jurisdiction, request.kind),
            received_at: request.received_at,
            due_at: due,
            receipt_due_at: request.receipt_due_at,
            overdue: due < now,
            stuck: request.stuck,
        }
    }
}
