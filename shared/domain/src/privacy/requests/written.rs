//! Requests that arrive in writing: the policy tells people to send deletion requests "in writing to
//! support@officertrak.com". A mail's sender address is the sender's word, so a written request is
//! recorded (its legal clock running from the mail's receipt) for the account that holds that address,
//! and waits `identity_unverified`: nothing is done and nothing disclosed until the account's holder
//! signs in and confirms it (`POST /v1/privacy-requests/{id}/confirmation`, a recent sign-in for what
//! discloses or destroys data). The confirmation mail goes to the account's address in the user pool,
//! never to a reply-to a sender chose. Unconfirmed, it lapses after [`CONFIRM_WITHIN_DAYS`].

use super::*;
use platform::store::Versioned;

/// Days a written request waits for its subject's confirmation before the hourly run lets it lapse.
pub const CONFIRM_WITHIN_DAYS: i64 = 14;

/// The audit actor of what the support mailbox received.
const MAILBOX_ACTOR: &str = "support-mailbox";

/// Records a request of `kind` that arrived in writing at `received_at` (inquiry `inquiry_id`) for
/// `user_id`, the account that holds the sender's address, and mails that account how to confirm it.
/// Idempotent per inquiry (a deletion is one per user, whatever its channel). Returns the request, or
/// `None` when the account is being erased already.
pub async fn receive_written(
    state: &AppState,
    subject: &WrittenSubject,
    kind: RequestType,
    received_at: Timestamp,
    inquiry_id: &str,
) -> Result<Option<RequestView>, ApiError> {
    let subject_id = subject.subject_id();
    let user_id = subject_id.as_str();
    if matches!(subject, WrittenSubject::Account(_)) && edge::revocation::is_revoked(state, user_id).await? {
        return Ok(None);
    }
    let request_id = if kind == RequestType::Deletion && matches!(subject, WrittenSubject::Account(_)) {
        deletion_request_id(user_id)
    } else {
        let digest = Sha256::digest(format!("written-request:{user_id}:{inquiry_id}").as_bytes());
        hex::encode(&digest[..16])
    };
    // The same mail delivered again is the same request; a closed deletion from another mail (a
    // denied or lapsed one) never blocks a new one: it is replaced at the version read.
    let mut closed_version = None;
    if let Some(existing) = state
        .store
        .get::<PrivacyRequest>(&PrivacyRequest::key_of(user_id, &request_id))
        .await?
    {
        let redelivered = existing.record.written_inquiry_id.as_deref() == Some(inquiry_id);
        if redelivered || !existing.record.status.closed_undone() {
            return Ok(Some(RequestView::from(&existing.record)));
        }
        super::processing::archive_closed(state, &existing.record).await?;
        closed_version = Some(existing.version);
    }
    // The account holder's address decides the clock, counted from the mail's receipt.
    let jurisdiction = match subject {
        WrittenSubject::Account(user_id) => super::subject_jurisdiction(state, user_id)
            .await?
            .unwrap_or(Jurisdiction::Other),
        WrittenSubject::Address(_) => Jurisdiction::Other,
    };
    let mut request = PrivacyRequest {
        request_id,
        user_id: user_id.to_owned(),
        kind,
        jurisdiction,
        status: Lifecycle::Received,
        received_at,
        deadline_at: deadline(jurisdiction, kind, received_at),
        receipt_due_at: receipt_deadline(jurisdiction, received_at),
        extended_until: None,
        extension_reason: None,
        result: None,
        overdue_alerted_at: None,
        progress: None,
        stuck: None,
        written_inquiry_id: Some(inquiry_id.to_owned()),
        updated_at: state.clock.now(),
        gsi1pk: String::new(),
        gsi1sk: String::new(),
    };
    request.index();
    match state
        .store
        .create(&RequestPointer {
            request_id: request.request_id.clone(),
            user_id: user_id.to_owned(),
            received_at,
        })
        .await
    {
        Ok(()) | Err(StoreError::ConditionFailed) => {}
        Err(error) => return Err(error.into()),
    }
    let written = match closed_version {
        None => state.store.create(&request).await,
        Some(version) => state.store.replace(&request, version).await.map(|_| ()),
    };
    match written {
        Ok(()) => {}
        Err(StoreError::ConditionFailed) => {
            let existing = state
                .store
                .get::<PrivacyRequest>(&request.key())
                .await?
                .ok_or(ApiError::Conflict("the request is being recorded: retry".into()))?;
            return Ok(Some(RequestView::from(&existing.record)));
        }
        Err(error) => return Err(error.into()),
    }
    audit(
        state,
        user_id,
        &request.request_id,
        "received_in_writing",
        MAILBOX_ACTOR,
    )
    .await?;
    tracing::info!(request_id = %request.request_id, kind = ?kind, "written privacy request received");
    if matches!(subject, WrittenSubject::Address(_)) {
        // No account, no user-pool address: the caller mails the signed confirmation link.
        return Ok(Some(RequestView::from(&request)));
    }
    let kind_name = serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(|k| k.replace('_', " ")))
        .unwrap_or_default();
    notify_requester(
        state,
        user_id,
        "Confirm the privacy request we received by mail",
        &format!(
            "We received a {kind_name} request for your account in writing on {} (request {}). We act on it only once you confirm it: sign in to the app and confirm it there (POST /v1/privacy-requests/{}/confirmation) by {}. If you did not send it, do nothing: it lapses then and nothing is done. We answer by {} at the latest.",
            received_at.strftime("%Y-%m-%d"),
            request.request_id,
            request.request_id,
            confirm_by(received_at).strftime("%Y-%m-%d"),
            request.deadline_at.strftime("%Y-%m-%d"),
        ),
    )
    .await;
    Ok(Some(RequestView::from(&request)))
}

/// Whose data a written request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WrittenSubject {
    /// The account (user id) that holds the sender's address.
    Account(String),
    /// No account holds the address: its keyed hash, under which the sender's own inquiries are kept.
    /// The request is tracked under `address-<hash>`; the sender proves control of the address with
    /// a signed link mailed to it (see `support::confirm_address_request`).
    Address(String),
}

/// Prefix of the subject id of a request about an address no account holds.
pub const ADDRESS_SUBJECT_PREFIX: &str = "address-";

impl WrittenSubject {
    /// The id the request is tracked under (`PRIVACY#<id>`).
    pub fn subject_id(&self) -> String {
        match self {
            Self::Account(user_id) => user_id.clone(),
            Self::Address(hash) => format!("{ADDRESS_SUBJECT_PREFIX}{hash}"),
        }
    }
}

/// The last moment a written request received at `received_at` can be confirmed.
pub fn confirm_by(received_at: Timestamp) -> Timestamp {
    received_at + SignedDuration::from_hours(24 * CONFIRM_WITHIN_DAYS)
}

/// `POST /v1/privacy-requests/{id}/confirmation`: the subject, signed in, confirms a written request;
/// it is then verified and carried out like one made in the app (202 for the worker's kinds). 404 for
/// anyone else's request, 409 when it is not waiting for confirmation.
pub async fn confirm_written(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
) -> Result<RequestView, ApiError> {
    let current = state
        .store
        .get::<PrivacyRequest>(&PrivacyRequest::key_of(&caller.user_id, request_id))
        .await?
        .ok_or(ApiError::NotFound("privacy request"))?;
    if !current.record.awaits_confirmation() {
        return Err(ApiError::Conflict(
            "this request is not waiting for a confirmation".into(),
        ));
    }
    let now = state.clock.now();
    if now > confirm_by(current.record.received_at) {
        return Err(ApiError::Conflict(
            "this request was not confirmed in time and has lapsed".into(),
        ));
    }
    if current.record.kind.needs_recent_sign_in() {
        require_recent_sign_in(caller, now)?;
    }
    let mut request = current.record;
    audit(
        state,
        &caller.user_id,
        &request.request_id,
        "confirmed_by_subject",
        &caller.user_id,
    )
    .await?;
    // A written correction names no field: the privacy officers handle it once it is verified.
    carry_out(state, caller, &mut request, current.version, None).await?;
    Ok(RequestView::from(&request))
}

/// The hourly run: lets written requests that waited longer than [`CONFIRM_WITHIN_DAYS`] lapse
/// (nothing was done; audited), at most `max`, among `open` ([`super::open_requests`]). Returns how
/// many lapsed.
pub async fn lapse_unconfirmed(
    state: &AppState,
    open: &[Versioned<PrivacyRequest>],
    max: usize,
) -> Result<usize, ApiError> {
    let now = state.clock.now();
    let mut lapsed = 0;
    for current in open {
        if lapsed == max {
            break;
        }
        if !current.record.awaits_confirmation() || confirm_by(current.record.received_at) >= now {
            continue;
        }
        let mut request = current.record.clone();
        request.result = Some(RequestResult {
            summary: format!(
                "not confirmed from the account within {CONFIRM_WITHIN_DAYS} days: nothing was done"
            ),
            retained: Vec::new(),
            export: None,
            erasure: None,
        });
        match transition(
            state,
            &mut request,
            current.version,
            Lifecycle::Cancelled,
            "system",
        )
        .await
        {
            Ok(_) => lapsed += 1,
            // Confirmed meanwhile: the subject won.
            Err(ApiError::Conflict(_)) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(lapsed)
}

/// A written request about an address no account holds, waiting for the address holder's
/// confirmation: the address's keyed hash, the request's type and when it can be confirmed until.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRequest {
    pub request_id: String,
    pub address_hash: String,
    pub kind: RequestType,
    pub confirm_by: Timestamp,
}

async fn address_request_record(
    state: &AppState,
    request_id: &str,
) -> Result<Versioned<PrivacyRequest>, ApiError> {
    let pointer = state
        .store
        .get::<RequestPointer>(&RequestPointer::key_of(request_id))
        .await?
        .ok_or(ApiError::NotFound("privacy request"))?
        .record;
    if !pointer.user_id.starts_with(ADDRESS_SUBJECT_PREFIX) {
        return Err(ApiError::NotFound("privacy request"));
    }
    state
        .store
        .get::<PrivacyRequest>(&PrivacyRequest::key_of(&pointer.user_id, request_id))
        .await?
        .ok_or(ApiError::NotFound("privacy request"))
}

/// The written request `request_id` about an address no account holds, if it still waits for its
/// confirmation (404 when there is no such request, 409 when it does not wait).
pub async fn address_request(state: &AppState, request_id: &str) -> Result<AddressRequest, ApiError> {
    let current = address_request_record(state, request_id).await?.record;
    if !current.awaits_confirmation() || state.clock.now() > confirm_by(current.received_at) {
        return Err(ApiError::Conflict(
            "this request is not waiting for a confirmation".into(),
        ));
    }
    Ok(AddressRequest {
        address_hash: current
            .user_id
            .strip_prefix(ADDRESS_SUBJECT_PREFIX)
            .unwrap_or_default()
            .to_owned(),
        request_id: current.request_id,
        kind: current.kind,
        confirm_by: confirm_by(current.received_at),
    })
}

/// The address holder proved control of the address: the request is verified (audited) and, with
/// `outcome`, fulfilled; without it, left verified for the privacy officers.
pub async fn finish_address_request(
    state: &AppState,
    request_id: &str,
    outcome: Option<RequestResult>,
) -> Result<RequestView, ApiError> {
    const ACTOR: &str = "address-holder";
    let current = address_request_record(state, request_id).await?;
    if !current.record.awaits_confirmation() {
        return Err(ApiError::Conflict(
            "this request is not waiting for a confirmation".into(),
        ));
    }
    let mut request = current.record;
    let subject = request.user_id.clone();
    audit(state, &subject, request_id, "confirmed_by_address_holder", ACTOR).await?;
    let version = transition(state, &mut request, current.version, Lifecycle::Verified, ACTOR).await?;
    if let Some(result) = outcome {
        request.result = Some(result);
        transition(state, &mut request, version, Lifecycle::Completed, ACTOR).await?;
    }
    Ok(RequestView::from(&request))
}
