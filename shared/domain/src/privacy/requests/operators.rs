//! The privacy officers' side: lists by status, overdue alerts, decisions (fulfil, deny, extend),
//! minors' data, and the audit trail.

use super::*;
use platform::store::Versioned;

/// Which requests a privacy officer lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Received, verified or in processing.
    Open,
    /// Open and past the (extended) deadline.
    Overdue,
    /// Completed, denied or cancelled (kept 24 months).
    Closed,
    /// Open, and the worker's job for it failed again and again (retried by the queue, then in its
    /// dead-letter queue): what ops must fix.
    Stuck,
}

impl StatusFilter {
    /// The name in `?status=` (and in the cursor's scope).
    pub fn name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Overdue => "overdue",
            Self::Closed => "closed",
            Self::Stuck => "stuck",
        }
    }
}

/// `GET /v1/admin/privacy-requests?status=open|overdue|closed|stuck` (privacy officers), by due date,
/// one page of at most `limit` read after the due-date sort key `after`; with the sort key to continue
/// after when more may follow. (Overdue and stuck are the open ones that are so: a page may hold fewer.)
pub async fn list_by_status(
    state: &AppState,
    caller: &Caller,
    filter: StatusFilter,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<OperatorView>, Option<String>), ApiError> {
    caller.require(Role::PrivacyOfficer)?;
    let now = state.clock.now();
    let partition = if filter == StatusFilter::Closed {
        CLOSED_INDEX
    } else {
        OPEN_INDEX
    };
    let (page, last) = state
        .store
        .query_gsi1_after::<PrivacyRequest>(partition, after, limit)
        .await?;
    let items = page
        .into_iter()
        .map(|v| OperatorView::of(v.record, now))
        .filter(|v| filter != StatusFilter::Overdue || (v.overdue && v.status.is_open()))
        .filter(|v| filter != StatusFilter::Stuck || v.stuck.is_some())
        .collect();
    Ok((items, last))
}

/// The index partition of open requests, by due date.
const OPEN_INDEX: &str = "PRIVACY_REQUESTS#OPEN";
/// The index partition of closed requests (kept 24 months), by due date.
const CLOSED_INDEX: &str = "PRIVACY_REQUESTS#CLOSED";

/// Where the hourly review of open requests continues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ReviewCheckpoint {
    review: String,
    /// The due-date sort key the last slice ended at (`None`: start from the beginning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
    updated_at: Timestamp,
}

impl Record for ReviewCheckpoint {
    const TYPE: &'static ItemType = &schema::REVIEW_CHECKPOINT;

    fn key(&self) -> ItemKey {
        ItemKey::new("CHECKPOINT".to_owned(), self.review.clone())
    }
}

/// The open requests the hourly run reviews (overdue alerts, unconfirmed written requests, stalled
/// jobs), in a bounded batch of at most `max`: the most urgent half by due date (the overdue come
/// first), and the next slice of the rest from where the last run stopped (a checkpoint that wraps
/// around at the end), so every open request is looked at within a few runs however many there are.
pub async fn open_requests(
    state: &AppState,
    max: usize,
) -> Result<Vec<Versioned<PrivacyRequest>>, StoreError> {
    let half = (max / 2).max(1);
    let (mut batch, _) = state
        .store
        .query_gsi1_after::<PrivacyRequest>(OPEN_INDEX, None, half)
        .await?;
    let key = ItemKey::new("CHECKPOINT".to_owned(), "privacy-requests".to_owned());
    let checkpoint = state.store.get::<ReviewCheckpoint>(&key).await?;
    let after = checkpoint.as_ref().and_then(|c| c.record.after.clone());
    let (slice, last) = state
        .store
        .query_gsi1_after::<PrivacyRequest>(OPEN_INDEX, after.as_deref(), half)
        .await?;
    for request in slice {
        if !batch
            .iter()
            .any(|r| r.record.request_id == request.record.request_id)
        {
            batch.push(request);
        }
    }
    let next = ReviewCheckpoint {
        review: "privacy-requests".to_owned(),
        after: last,
        updated_at: state.clock.now(),
    };
    let written = match &checkpoint {
        Some(current) => state.store.replace(&next, current.version).await.map(|_| ()),
        None => state.store.create(&next).await,
    };
    match written {
        // Another run moved it meanwhile: the next run continues from there.
        Ok(()) | Err(StoreError::ConditionFailed) => {}
        Err(error) => return Err(error),
    }
    Ok(batch)
}

/// Open requests past their (extended) deadline that no alert was sent for yet: marks each as alerted
/// and mails the privacy officers one summary (ids and due dates, never user data). At most `max`
/// per run; idempotent (an alerted request is not alerted again). `open` is [`open_requests`], read
/// once by the hourly run. Returns how many were alerted.
pub async fn alert_overdue(
    state: &AppState,
    open: &[Versioned<PrivacyRequest>],
    max: usize,
) -> Result<usize, ApiError> {
    let now = state.clock.now();
    let mut alerted = Vec::new();
    for current in open {
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
        if let Err(error) = crate::mail::send_service(state, &address, &message).await {
            tracing::warn!(error = %error, "overdue alert not sent");
        }
    }
    tracing::info!(
        overdue = alerted.len(),
        "privacy officers alerted of overdue requests"
    );
    Ok(alerted.len())
}

/// Tells the privacy officers that the worker keeps failing a request's job (ids and the error kind,
/// never user data). A failed mail is logged: the request is listed as stuck anyway.
pub(super) async fn alert_stuck(state: &AppState, request_id: &str, attempts: u32, error_kind: &str) {
    let lines = [format!(
        "request {request_id}: its job failed {attempts} times ({error_kind}); it is listed with ?status=stuck and waits in the dead-letter queue after 5"
    )];
    let message = crate::mail::stuck_privacy_jobs(&lines);
    for address in privacy_officer_addresses(state).await {
        if let Err(error) = crate::mail::send_service(state, &address, &message).await {
            tracing::warn!(error = %error, "stuck-job alert not sent");
        }
    }
}

/// The e-mail addresses of the `privacy_officer` group, from the user pool.
async fn privacy_officer_addresses(state: &AppState) -> Vec<String> {
    platform::directory::group_addresses(state.directory.as_ref(), Role::PrivacyOfficer.group_name()).await
}

/// Finds a request's owner by request id (for privacy officers, who act by id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestPointer {
    pub request_id: String,
    pub user_id: String,
    pub received_at: Timestamp,
}

impl RequestPointer {
    /// The pointer of request `request_id`.
    pub fn key_of(request_id: &str) -> ItemKey {
        ItemKey::new(format!("PRIVACY_REQUEST#{request_id}"), "REF".to_owned())
    }
}

impl Record for RequestPointer {
    const TYPE: &'static ItemType = &schema::PRIVACY_REQUEST_POINTER;

    fn key(&self) -> ItemKey {
        Self::key_of(&self.request_id)
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
        .get::<RequestPointer>(&RequestPointer::key_of(request_id))
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
    if let Decision::Fulfil { .. } = decision {
        fulfillable(&request)?;
    }
    let notice = match decision {
        Decision::Fulfil { summary } => {
            request.result = Some(RequestResult {
                summary: summary.trim().to_owned(),
                retained: Vec::new(),
                export: None,
                erasure: None,
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
                erasure: None,
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
    Ok(OperatorView::of(request, state.clock.now()))
}

/// Whether a privacy officer may mark `request` fulfilled: never while the subject's identity is
/// unverified (a written request nobody confirmed may be forged), and never a deletion, which only
/// the erasure completes (a "fulfilled" deletion that deleted nothing would be a false answer).
fn fulfillable(request: &PrivacyRequest) -> Result<(), ApiError> {
    if request.status == Lifecycle::Received {
        return Err(ApiError::Conflict(
            "the subject's identity is not verified yet: the request can be denied or extended, not fulfilled".into(),
        ));
    }
    if request.kind == RequestType::Deletion {
        return Err(ApiError::Conflict(
            "a deletion is fulfilled by its erasure only".into(),
        ));
    }
    Ok(())
}

/// Mails the requester (address from the user pool); a failure is logged, never the address.
pub(super) async fn notify_requester(state: &AppState, user_id: &str, subject: &str, text: &str) {
    let address = match state.directory.user(user_id).await {
        Ok(user) => user.and_then(|u| u.email),
        Err(_) => None,
    };
    let Some(address) = address else {
        tracing::warn!("requester has no address in the user pool: notice not mailed");
        return;
    };
    let message = crate::mail::privacy_notice(subject, text);
    if let Err(error) = crate::mail::send_service(state, &address, &message).await {
        tracing::warn!(error = %error, "privacy notice not sent");
    }
}

/// Where a minor's deletion stands: proposed by one privacy officer, or approved by a second and
/// under way (the subject's deletion request, which the worker carries out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MinorDeletion {
    pub user_id: String,
    /// The report about a minor the deletion answers (a support inquiry's id).
    pub case_reference: String,
    pub proposed_by: String,
    pub proposed_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// `awaiting_approval`, then the deletion request's status.
    pub status: &'static str,
    /// The subject's deletion request, once approved (`GET /v1/admin/privacy-requests` lists it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// What a privacy officer sends to propose deleting a minor's data: the report it answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinorDeletionInput {
    pub case_reference: String,
}

/// A support inquiry confirmed to be a report about a minor's data: what a minor's deletion must
/// answer. Only `support`, which owns inquiries, makes one ([`crate::support::minor_report_case`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinorReportCase {
    inquiry_id: String,
}

impl MinorReportCase {
    /// The report `inquiry_id`, which the caller read and found flagged as about a minor.
    pub(crate) fn confirmed(inquiry_id: &str) -> Self {
        Self {
            inquiry_id: inquiry_id.to_owned(),
        }
    }
}

/// Longest case reference: an id, not a note.
const MAX_CASE_REFERENCE: usize = 160;

/// A proposal to delete a minor's data, waiting for a second privacy officer (four eyes before a
/// destruction nobody can undo). Kept with the subject's privacy records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinorDeletionProposal {
    pub user_id: String,
    pub case_reference: String,
    pub proposed_by: String,
    pub proposed_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<Timestamp>,
}

impl MinorDeletionProposal {
    fn key_of(user_id: &str) -> ItemKey {
        ItemKey::new(
            platform::keys::privacy_partition(user_id),
            "MINOR_DELETION".to_owned(),
        )
    }

    fn view(&self, status: &'static str, request_id: Option<String>) -> MinorDeletion {
        MinorDeletion {
            user_id: self.user_id.clone(),
            case_reference: self.case_reference.clone(),
            proposed_by: self.proposed_by.clone(),
            proposed_at: self.proposed_at,
            approved_by: self.approved_by.clone(),
            status,
            request_id,
        }
    }
}

impl Record for MinorDeletionProposal {
    const TYPE: &'static ItemType = &schema::MINOR_DELETION_PROPOSAL;

    fn key(&self) -> ItemKey {
        Self::key_of(&self.user_id)
    }

    fn retention_start(&self) -> Option<Timestamp> {
        Some(self.proposed_at)
    }
}

/// `POST /v1/admin/minors/{user_id}` (privacy officers): proposes deleting data found to belong to
/// someone under 18. Destroying data needs a recent sign-in; `user_id` must name a real user (never
/// `anonymous`, another partition or a made-up id: 404) who holds no staff role (409 `staff_account`:
/// staff are adults the company employs, and a staff account is never erased this way); the case must
/// be a report about a minor's data that support received (`report`, a support inquiry flagged
/// `minor_report`, found by [`crate::support::minor_report_case`]; else 422). Nothing is deleted until a second privacy officer approves
/// ([`approve_minor_deletion`]); proposing again answers the same proposal.
pub async fn delete_minor(
    state: &AppState,
    caller: &Caller,
    user_id: &str,
    input: MinorDeletionInput,
    report: Option<MinorReportCase>,
) -> Result<MinorDeletion, ApiError> {
    caller.require(Role::PrivacyOfficer)?;
    require_recent_sign_in(caller, state.clock.now())?;
    let reference = input.case_reference.trim();
    let mut v = Validator::new();
    v.check(
        (1..=MAX_CASE_REFERENCE).contains(&reference.len())
            && reference
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/')),
        "/case_reference",
        "must be the id of the report about a minor (a support inquiry id)",
    );
    v.finish()?;
    if !is_known_user(state, user_id).await? {
        return Err(ApiError::NotFound("user"));
    }
    refuse_staff(state, user_id).await?;
    if report.is_none_or(|report| report.inquiry_id != reference) {
        return Err(ApiError::Validation(vec![edge::error::FieldError {
            pointer: "/case_reference".into(),
            detail: "must be the id of a report about a minor's data that support received (an inquiry flagged minor_report)".into(),
        }]));
    }
    let key = MinorDeletionProposal::key_of(user_id);
    if let Some(existing) = state.store.get::<MinorDeletionProposal>(&key).await? {
        return Ok(status_of(&existing.record));
    }
    let proposal = MinorDeletionProposal {
        user_id: user_id.to_owned(),
        case_reference: reference.to_owned(),
        proposed_by: caller.user_id.clone(),
        proposed_at: state.clock.now(),
        approved_by: None,
        approved_at: None,
    };
    match state.store.create(&proposal).await {
        Ok(()) => {}
        // Proposed meanwhile by another officer: that proposal stands.
        Err(StoreError::ConditionFailed) => {
            let existing = state
                .store
                .get::<MinorDeletionProposal>(&key)
                .await?
                .ok_or(ApiError::Conflict("the proposal is being recorded: retry".into()))?;
            return Ok(status_of(&existing.record));
        }
        Err(error) => return Err(error.into()),
    }
    audit(
        state,
        user_id,
        &format!("case:{reference}"),
        "minor_data_deletion_proposed",
        &caller.user_id,
    )
    .await?;
    tracing::info!("minor's data deletion proposed: awaiting a second privacy officer");
    Ok(status_of(&proposal))
}

fn status_of(proposal: &MinorDeletionProposal) -> MinorDeletion {
    match &proposal.approved_by {
        None => proposal.view("awaiting_approval", None),
        Some(_) => proposal.view(
            Lifecycle::InProcessing.user_facing(),
            Some(deletion_request_id(&proposal.user_id)),
        ),
    }
}

/// Refuses a staff account (any staff group in the user pool): 409 `staff_account`.
async fn refuse_staff(state: &AppState, user_id: &str) -> Result<(), ApiError> {
    let groups = state
        .directory
        .groups(user_id)
        .await
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    let staff = [
        Role::AgencyAdmin,
        Role::Dispatcher,
        Role::PrivacyOfficer,
        Role::Ops,
        Role::Support,
    ];
    if staff
        .iter()
        .any(|role| groups.iter().any(|g| g == role.group_name()))
    {
        return Err(ApiError::Refused {
            rule: "staff_account",
            detail: "a staff account is not deleted as a minor's: staff leave through ops".into(),
        });
    }
    Ok(())
}

/// `POST /v1/admin/minors/{user_id}/approval` (a second privacy officer, signed in recently): the
/// proposal is approved and the deletion runs: the subject's one deletion request is opened (or
/// found) and the worker erases them, keeping only what the law keeps, audited with the case. The
/// officer who proposed it cannot approve it (403); nothing proposed: 404.
pub async fn approve_minor_deletion(
    state: &AppState,
    caller: &Caller,
    user_id: &str,
) -> Result<MinorDeletion, ApiError> {
    caller.require(Role::PrivacyOfficer)?;
    require_recent_sign_in(caller, state.clock.now())?;
    let key = MinorDeletionProposal::key_of(user_id);
    let current = state
        .store
        .get::<MinorDeletionProposal>(&key)
        .await?
        .ok_or(ApiError::NotFound("minor deletion proposal"))?;
    let mut proposal = current.record;
    if proposal.proposed_by == caller.user_id {
        return Err(ApiError::Forbidden(
            "a second privacy officer approves: not the one who proposed it".into(),
        ));
    }
    let now = state.clock.now();
    if proposal.approved_by.is_none() {
        refuse_staff(state, user_id).await?;
        proposal.approved_by = Some(caller.user_id.clone());
        proposal.approved_at = Some(now);
        match state.store.replace(&proposal, current.version).await {
            Ok(_) => {}
            Err(StoreError::ConditionFailed) => {
                return Err(ApiError::Conflict(
                    "the proposal changed meanwhile: read it again".into(),
                ));
            }
            Err(error) => return Err(error.into()),
        }
        audit(
            state,
            user_id,
            &format!("case:{}", proposal.case_reference),
            "minor_data_deletion_started",
            &caller.user_id,
        )
        .await?;
    }
    let request_id = deletion_request_id(user_id);
    let mut request = PrivacyRequest {
        request_id: request_id.clone(),
        user_id: user_id.to_owned(),
        kind: RequestType::Deletion,
        jurisdiction: Jurisdiction::Other,
        status: Lifecycle::InProcessing,
        received_at: now,
        deadline_at: deadline(Jurisdiction::Other, RequestType::Deletion, now),
        receipt_due_at: None,
        extended_until: None,
        extension_reason: None,
        result: None,
        overdue_alerted_at: None,
        progress: None,
        stuck: None,
        written_inquiry_id: None,
        updated_at: now,
        gsi1pk: String::new(),
        gsi1sk: String::new(),
    };
    request.index();
    match state
        .store
        .create(&RequestPointer {
            request_id: request_id.clone(),
            user_id: user_id.to_owned(),
            received_at: now,
        })
        .await
    {
        Ok(()) | Err(StoreError::ConditionFailed) => {}
        Err(error) => return Err(error.into()),
    }
    match state.store.create(&request).await {
        Ok(()) => audit(state, user_id, &request_id, "received", &caller.user_id).await?,
        Err(StoreError::ConditionFailed) => {
            // The subject asked first (or the approval is repeated): an open deletion request goes
            // on; one closed undone (denied, lapsed) is kept under its own id and replaced, so the
            // erasure always has an open request to report to.
            let existing =
                state
                    .store
                    .get::<PrivacyRequest>(&request.key())
                    .await?
                    .ok_or(ApiError::Conflict(
                        "the deletion request is being recorded: retry".into(),
                    ))?;
            if existing.record.status.closed_undone() {
                super::processing::archive_closed(state, &existing.record).await?;
                match state.store.replace(&request, existing.version).await {
                    Ok(_) => audit(state, user_id, &request_id, "received", &caller.user_id).await?,
                    Err(StoreError::ConditionFailed) => {
                        return Err(ApiError::Conflict(
                            "the deletion request changed meanwhile: approve again".into(),
                        ));
                    }
                    Err(error) => return Err(error.into()),
                }
            }
        }
        Err(error) => return Err(error.into()),
    }
    let order = erasure::ErasureOrder {
        reason: ErasureReason::Minor,
        request_id: Some(request_id.clone()),
        requested_by: proposal.proposed_by.clone(),
        case_reference: Some(proposal.case_reference.clone()),
    };
    erasure::start(state, user_id, order).await?;
    let job = crate::privacy::job_queue::PrivacyJob::Erasure {
        user_id: user_id.to_owned(),
    };
    if let Err(error) = crate::privacy::job_queue::enqueue(state, &job).await {
        tracing::warn!(error = %error, "minor's erasure not queued: the hourly run will queue it");
    }
    tracing::info!("minor's data deletion approved and queued");
    Ok(status_of(&proposal))
}

/// Audits that a minor's data is deleted (the worker finished the erasure `officer` ordered for
/// `case`). Idempotent enough: a redelivered last slice may add a second identical entry.
pub async fn record_minor_deleted(
    state: &AppState,
    user_id: &str,
    case: &str,
    officer: &str,
) -> Result<(), StoreError> {
    audit(
        state,
        user_id,
        &format!("case:{case}"),
        "minor_data_deleted",
        officer,
    )
    .await?;
    tracing::info!("minor's data deleted");
    Ok(())
}

/// Whether `user_id` is a user-pool id (a UUID in its canonical form) that the user pool, an account
/// of ours, or an unfinished erasure knows (so a deletion interrupted half-way can be finished).
async fn is_known_user(state: &AppState, user_id: &str) -> Result<bool, ApiError> {
    let canonical = uuid::Uuid::parse_str(user_id).is_ok_and(|id| id.hyphenated().to_string() == user_id);
    if !canonical {
        return Ok(false);
    }
    if erasure::job_of(state, user_id).await?.is_some() {
        return Ok(true);
    }
    let in_pool = state
        .directory
        .user(user_id)
        .await
        .map_err(|error| ApiError::Internal(error.to_string()))?
        .is_some();
    Ok(in_pool || !accounts::statuses(&state.store, user_id).await?.is_empty())
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
