//! Receiving a request and carrying it out: the audit trail and transitions, `POST
//! /v1/privacy-requests`, what each type does at once (opt-out, restriction, correction), and how a
//! request the privacy worker carries out (deletion, access, portability) is queued, shows its
//! progress, and is completed.

use super::*;

pub(super) async fn audit(
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
pub(super) async fn transition(
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
                if request.progress.is_none() {
                    request.progress = current.record.progress.clone();
                }
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

/// The one deletion request a user can have: its id follows from the user id, so concurrent or
/// repeated deletion requests (with any `Idempotency-Key`, or none) are the same request and one job.
pub fn deletion_request_id(user_id: &str) -> String {
    let digest = Sha256::digest(format!("deletion-request:{user_id}").as_bytes());
    hex::encode(&digest[..16])
}

fn request_id_for(user_id: &str, key: Option<&str>) -> Result<String, ApiError> {
    match key {
        None => Ok(uuid::Uuid::new_v4().to_string()),
        Some(key) if key.is_empty() || key.len() > 200 || !key.chars().all(|c| c.is_ascii_graphic()) => Err(
            ApiError::BadRequest("Idempotency-Key must be 1 to 200 visible ASCII characters".into()),
        ),
        Some(key) => {
            let digest = Sha256::digest(format!("privacy-request:{user_id}:{key}").as_bytes());
            Ok(hex::encode(&digest[..16]))
        }
    }
}

/// `POST /v1/privacy-requests`: records the request (with `Idempotency-Key`, a retry returns the
/// first; a deletion is one per user), verifies it (a recent sign-in for requests that disclose or
/// destroy data), processes what can be processed at once and queues the rest for the privacy worker.
/// Returns the request and whether it was created now.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    mut input: RequestInput,
    idempotency_key: Option<&str>,
) -> Result<(RequestView, bool), ApiError> {
    let now = state.clock.now();
    if input.kind.needs_recent_sign_in() {
        require_recent_sign_in(caller, now)?;
    }
    // A revoked subject (an erasure under way) may only retry the deletion.
    if input.kind != RequestType::Deletion && edge::revocation::is_revoked(state, &caller.user_id).await? {
        return Err(ApiError::Forbidden(
            "this account is being deleted: only the deletion request itself can be retried".into(),
        ));
    }
    let keyed_id = request_id_for(&caller.user_id, idempotency_key)?;
    let request_id = if input.kind == RequestType::Deletion {
        deletion_request_id(&caller.user_id)
    } else {
        keyed_id.clone()
    };
    // The version of a closed deletion that a new one replaces.
    let mut lapsed_version = None;
    // One read when the two ids are the same (every type but deletion).
    let ids = if keyed_id == request_id {
        vec![&request_id]
    } else {
        vec![&keyed_id, &request_id]
    };
    for id in ids {
        if let Some(existing) = state
            .store
            .get::<PrivacyRequest>(&PrivacyRequest::key_of(&caller.user_id, id))
            .await?
        {
            if existing.record.kind != input.kind {
                return Err(ApiError::Validation(vec![edge::error::FieldError {
                    pointer: "/type".into(),
                    detail: "this Idempotency-Key was used for a request of another type".into(),
                }]));
            }
            // The subject asks in the app for what they (or someone) asked in writing: signing in to
            // ask is the confirmation.
            if existing.record.awaits_confirmation() {
                let view = confirm_written(state, caller, &existing.record.request_id).await?;
                return Ok((view, true));
            }
            // A deletion closed undone (a written one that lapsed, perhaps forged, or one a privacy
            // officer denied) never blocks a new one: asking again replaces it, at the version read
            // (its moves stay in the audit trail under the same id). A fulfilled one is the answer.
            if existing.record.kind == RequestType::Deletion && existing.record.status.closed_undone() {
                archive_closed(state, &existing.record).await?;
                lapsed_version = Some(existing.version);
                continue;
            }
            return Ok((RequestView::from(&existing.record), false));
        }
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
    // Where the subject lives decides the clock; what they claim counts only when no account of
    // theirs holds an address (someone who never registered).
    let jurisdiction = super::subject_jurisdiction(state, &caller.user_id)
        .await?
        .or(input.jurisdiction)
        .unwrap_or(Jurisdiction::Other);
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
        progress: None,
        stuck: None,
        written_inquiry_id: None,
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
    let written = match lapsed_version {
        None => state.store.create(&request).await.map(|()| 1),
        Some(version) => state.store.replace(&request, version).await,
    };
    let version = match written {
        Ok(version) => version,
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
    };
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
    carry_out(state, caller, &mut request, version, corrected).await?;
    Ok((RequestView::from(&request), true))
}

/// Keeps a deletion closed undone (denied, lapsed) under an id of its own before a new deletion takes
/// the user's one deletion id: the denial, its basis and its dates stay in the subject's history and
/// the privacy officers' closed list. Idempotent (the copy's id is fixed by the closed request).
pub(super) async fn archive_closed(state: &AppState, closed: &PrivacyRequest) -> Result<(), ApiError> {
    let mut copy = closed.clone();
    copy.request_id = format!("{}-{}", closed.request_id, closed.received_at.as_second());
    copy.index();
    let pointer = RequestPointer {
        request_id: copy.request_id.clone(),
        user_id: copy.user_id.clone(),
        received_at: copy.received_at,
    };
    for written in [
        state.store.create(&pointer).await,
        state.store.create(&copy).await,
    ] {
        match written {
            Ok(()) | Err(StoreError::ConditionFailed) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// Verifies `request` (at `version`, received and not yet verified) as made by `caller`, then does
/// what its type does at once, or queues it for the privacy worker. `corrected` is what a correction
/// already changed. Shared by requests made in the app and written ones the subject confirmed.
pub(super) async fn carry_out(
    state: &AppState,
    caller: &Caller,
    request: &mut PrivacyRequest,
    version: u64,
    corrected: Option<RequestResult>,
) -> Result<(), ApiError> {
    let version = transition(state, request, version, Lifecycle::Verified, &caller.user_id).await?;
    let outcome = match request.kind {
        RequestType::MarketingOptOut => Some(opt_out(state, caller).await?),
        RequestType::Restriction => Some(set_restricted(state, &caller.user_id, true).await?),
        RequestType::LiftRestriction => Some(set_restricted(state, &caller.user_id, false).await?),
        RequestType::Deletion | RequestType::Access | RequestType::Portability => {
            transition(state, request, version, Lifecycle::InProcessing, &caller.user_id).await?;
            let job = if request.kind == RequestType::Deletion {
                let order = erasure::ErasureOrder {
                    reason: ErasureReason::Request,
                    request_id: Some(request.request_id.clone()),
                    requested_by: caller.user_id.clone(),
                    case_reference: None,
                };
                erasure::start(state, &caller.user_id, order).await?;
                crate::privacy::job_queue::PrivacyJob::Erasure {
                    user_id: caller.user_id.clone(),
                }
            } else {
                crate::privacy::job_queue::PrivacyJob::Export {
                    user_id: caller.user_id.clone(),
                    request_id: request.request_id.clone(),
                }
            };
            // A lost message is not a lost request: the hourly run queues a job that stopped moving.
            if let Err(error) = crate::privacy::job_queue::enqueue(state, &job).await {
                tracing::warn!(error = %error, "privacy job not queued: the hourly run will queue it");
            }
            None
        }
        RequestType::Correction => corrected,
    };
    if let Some(result) = outcome {
        request.result = Some(result);
        transition(state, request, version, Lifecycle::Completed, &caller.user_id).await?;
    }
    Ok(())
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
        erasure: None,
    }))
}

async fn opt_out(state: &AppState, caller: &Caller) -> Result<RequestResult, ApiError> {
    let policy_version = match crate::accounts::me(state, caller).await {
        Ok(me) => me.policy.accepted_version,
        // Someone who never registered receives no marketing and has no key to store a record
        // under (only registration creates users' keys); registering later asks them again.
        Err(ApiError::NotFound(_)) => {
            return Ok(RequestResult {
                summary: "no account: no marketing consent is held and no marketing mail is sent".into(),
                retained: Vec::new(),
                export: None,
                erasure: None,
            });
        }
        Err(error) => return Err(error),
    };
    // Every purpose that needs consent: the marketing channels, and any purpose added later.
    let now = state.clock.now();
    let records: Vec<crate::consent::ConsentRecord> = crate::purposes::needing_consent(&state.store)
        .await?
        .iter()
        .map(|purpose| {
            crate::consent::ConsentRecord::new(
                &caller.user_id,
                purpose,
                false,
                &policy_version,
                crate::consent::ConsentSource::PrivacyRequest,
                now,
            )
        })
        .collect();
    crate::consent::record(&state.store, &records).await?;
    Ok(RequestResult {
        summary: "consent withdrawn for marketing (every channel) and every other purpose that needs it; no marketing mail is sent from now on".into(),
        retained: Vec::new(),
        export: None,
        erasure: None,
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
                if restricted {
                    // Stored, not used: the officer's future shifts go back to dispatch.
                    crate::scheduling::release_future_shifts(state, user_id, None).await?;
                }
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
        erasure: None,
    })
}

/// Records how far the worker got with `request_id` (shown to the subject while it runs), and clears
/// a stuck mark once the job moves again. A request that moved on meanwhile is left alone.
pub async fn note_progress(
    state: &AppState,
    user_id: &str,
    request_id: &str,
    progress: JobProgress,
) -> Result<(), StoreError> {
    let Some(current) = state
        .store
        .get::<PrivacyRequest>(&PrivacyRequest::key_of(user_id, request_id))
        .await?
    else {
        return Ok(());
    };
    if current.record.status != Lifecycle::InProcessing {
        return Ok(());
    }
    let mut request = current.record;
    request.progress = Some(progress);
    request.stuck = None;
    match state.store.replace(&request, current.version).await {
        // Someone else wrote it meanwhile; the next slice reports again.
        Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
        Err(error) => Err(error),
    }
}

/// Marks `request_id` as stuck after the worker failed its job `attempts` times (privacy officers
/// list it with `?status=stuck`); the first time, mails them. Idempotent per attempt count.
pub async fn note_stuck(
    state: &AppState,
    user_id: &str,
    request_id: &str,
    attempts: u32,
    error_kind: &str,
) -> Result<(), StoreError> {
    let Some(current) = state
        .store
        .get::<PrivacyRequest>(&PrivacyRequest::key_of(user_id, request_id))
        .await?
    else {
        return Ok(());
    };
    if !current.record.status.is_open() {
        return Ok(());
    }
    let mut request = current.record;
    let first = request.stuck.is_none();
    request.stuck = Some(StuckJob {
        attempts,
        error_kind: error_kind.to_owned(),
        since: request
            .stuck
            .as_ref()
            .map_or(state.clock.now(), |stuck| stuck.since),
    });
    match state.store.replace(&request, current.version).await {
        Ok(_) => {}
        Err(StoreError::ConditionFailed) => return Ok(()),
        Err(error) => return Err(error),
    }
    if first {
        audit(state, user_id, request_id, "job_stuck", "privacy-worker").await?;
        super::operators::alert_stuck(state, request_id, attempts, error_kind).await;
    }
    Ok(())
}

/// Completes a request the worker carried out with `result` (audited as the worker's), and mails the
/// subject when `mail` is given (an export: a link to the API, never the data). Idempotent: a request
/// already closed is left as it is.
pub async fn complete_by_worker(
    state: &AppState,
    user_id: &str,
    request_id: &str,
    result: RequestResult,
    mail: Option<(&str, String)>,
) -> Result<(), ApiError> {
    let Some(current) = state
        .store
        .get::<PrivacyRequest>(&PrivacyRequest::key_of(user_id, request_id))
        .await?
    else {
        return Ok(());
    };
    if !current.record.status.is_open() {
        return Ok(());
    }
    let mut request = current.record;
    request.result = Some(result);
    request.stuck = None;
    if let Some(progress) = request.progress.as_mut() {
        progress.stage = "done".into();
        progress.updated_at = state.clock.now();
    }
    transition(
        state,
        &mut request,
        current.version,
        Lifecycle::Completed,
        "privacy-worker",
    )
    .await?;
    if let Some((subject, text)) = mail {
        notify_requester(state, user_id, subject, &text).await;
    }
    Ok(())
}
