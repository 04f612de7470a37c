//! A request's life over time. Something drives every state forward: the first check-in (or the
//! start time, by the scheduled run) makes a request `in_progress`; officers not checked in
//! `no_show_after_minutes` after the start become no-shows and their slots reopen; the last check-out
//! (or the end plus `completion_grace_hours`, by the scheduled run, which closes the shifts left
//! open) makes it `completed`, and its retention clock starts. A booking still awaiting approval at
//! its start expires as `rejected`. The run finds requests through the due-date index, each step is
//! a version-conditioned write, and a step that loses a race is simply taken again next run.

use super::*;
use crate::agencies::Rules;

/// The request as it starts at `at`: `in_progress`, due next for the no-show check.
pub(super) fn started(
    request: &ServiceRequest,
    rules: &Rules,
    at: Timestamp,
    now: Timestamp,
) -> ServiceRequest {
    let mut next = ServiceRequest {
        status: Status::InProgress,
        started_at: Some(at),
        updated_at: now,
        ..request.clone()
    };
    next.due(Some(no_show_due(request, rules)));
    next
}

fn no_show_due(request: &ServiceRequest, rules: &Rules) -> Timestamp {
    request.starts_at + SignedDuration::from_mins(i64::from(rules.no_show_after_minutes))
}

/// When the scheduled run completes a request: the end plus the grace its booking agreed.
fn completion_due(request: &ServiceRequest) -> Timestamp {
    request.grace_ends_at()
}

/// What the scheduled run did with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestReview {
    pub started: bool,
    pub no_shows: usize,
    pub completed: bool,
    /// A booking nobody approved before its start.
    pub expired: bool,
    /// The card saved at booking was held (or its decline recorded), 6 days before the start.
    pub held: bool,
}

/// Most steps one review takes on one request (start, no-shows, completion, plus a lost race).
const MAX_STEPS: usize = 4;

/// The scheduled run's work on the request at `key` (found on the due-date index): every step that
/// is due now, in order.
pub async fn review_request(
    state: &AppState,
    key: &platform::store::ItemKey,
) -> Result<RequestReview, ApiError> {
    let mut review = RequestReview::default();
    for _ in 0..MAX_STEPS {
        let Some(current) = state.store.get::<ServiceRequest>(key).await? else {
            break;
        };
        let Some(agency) = agencies::find(state, &current.record.agency_id).await? else {
            break;
        };
        if step(state, current, &agency, &mut review).await? == Step::Idle {
            break;
        }
    }
    Ok(review)
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// A step was taken, or lost a race: look at the request again.
    Again,
    /// Nothing is due now.
    Idle,
}

/// How long after completion (or a cancellation with a fee) the run checks again that the invoice
/// was issued, while timesheets are still awaited.
const INVOICE_CHECK_EVERY: SignedDuration = SignedDuration::from_hours(24);

/// Takes the one step due for the request now.
async fn step(
    state: &AppState,
    current: Versioned<ServiceRequest>,
    agency: &Agency,
    review: &mut RequestReview,
) -> Result<Step, ApiError> {
    let rules = &agency.settings.rules;
    let now = state.clock.now();
    let request = &current.record;
    let next = match request.status {
        Status::AwaitingApproval if now >= request.starts_at => {
            let mut expired = ServiceRequest {
                status: Status::Rejected,
                cancellation: Some(service_requests::Cancellation {
                    cancelled_at: now,
                    by_user_id: "system".into(),
                    reason: "the agency did not approve the booking before its start".into(),
                    fee: None,
                }),
                updated_at: now,
                ..request.clone()
            };
            expired.due(None);
            expired
        }
        // Six days before the start of a request booked further ahead: the saved card is held now.
        Status::AwaitingApproval | Status::Requested | Status::PartiallyStaffed | Status::FullyStaffed
            if now < request.starts_at
                && request
                    .due_at
                    .is_some_and(|due| due < request.starts_at.as_second() && now.as_second() >= due) =>
        {
            crate::payments::hold_saved(
                state,
                &request.customer_user_id,
                &request.request_id,
                request.price.total_cents,
            )
            .await?;
            review.held = true;
            let mut next = request.clone();
            next.due(Some(request.starts_at));
            commit(state, &next, current.version).await?;
            return Ok(Step::Idle);
        }
        Status::Requested | Status::PartiallyStaffed | Status::FullyStaffed if now >= request.starts_at => {
            started(request, rules, request.starts_at, now)
        }
        Status::InProgress if request.no_shows_checked_at.is_none() && now >= no_show_due(request, rules) => {
            review.no_shows +=
                mark_no_shows(state, request, agency, no_show_due(request, rules), now).await?;
            // The no-shows changed `filled`: mark the check done on the fresh record.
            let Some(fresh) = state.store.get::<ServiceRequest>(&request.key()).await? else {
                return Ok(Step::Idle);
            };
            let mut checked = ServiceRequest {
                no_shows_checked_at: Some(now),
                updated_at: now,
                ..fresh.record.clone()
            };
            checked.due(Some(completion_due(request)));
            commit(state, &checked, fresh.version).await?;
            return Ok(Step::Again);
        }
        Status::InProgress if now >= completion_due(request) => {
            close_open_shifts(state, request, now).await?;
            let Some(fresh) = state.store.get::<ServiceRequest>(&request.key()).await? else {
                return Ok(Step::Idle);
            };
            let done = completed(&fresh.record, now);
            if commit(state, &done, fresh.version).await? {
                review.completed = true;
            }
            return Ok(Step::Again);
        }
        // Completed or cancelled with a fee and still on the index: the invoice is awaited.
        Status::Completed | Status::Cancelled if request.due_at.is_some() => {
            let issued = crate::billing::issue_when_due(state, &request.request_id).await?;
            let awaited = match &issued {
                // Issued but not charged (the processor was unreachable): charged again next run.
                Some(invoice) => invoice.status == crate::billing::InvoiceStatus::Issued,
                None => {
                    request.status == Status::Completed
                        && assignments::of_request_fresh(&state.store, &request.request_id)
                            .await?
                            .iter()
                            .any(|a| a.record.status == AssignmentStatus::Completed)
                }
            };
            if issued.is_none() && !awaited {
                // Nothing to bill (nobody worked, or a cancellation without a fee): the hold goes.
                crate::scheduling::notices::release_payment(state, request).await;
            }
            let mut checked = request.clone();
            checked.due(awaited.then(|| now + INVOICE_CHECK_EVERY));
            commit(state, &checked, current.version).await?;
            return Ok(Step::Idle);
        }
        _ => return Ok(Step::Idle),
    };
    if commit(state, &next, current.version).await? {
        match next.status {
            Status::Rejected => {
                review.expired = true;
                crate::scheduling::notices::release_payment(state, &next).await;
                service_requests::tell_customer_rejected(state, &next, agency).await;
            }
            Status::InProgress => review.started = true,
            _ => {}
        }
    }
    Ok(Step::Again)
}

/// Replaces the request read at `version`; `false` when it changed meanwhile (look again).
async fn commit(state: &AppState, next: &ServiceRequest, version: u64) -> Result<bool, ApiError> {
    match state.store.replace(next, version).await {
        Ok(_) => {
            tracing::info!(request_id = %next.request_id, status = ?next.status, "request moved on");
            Ok(true)
        }
        Err(StoreError::ConditionFailed) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// The request completed at `now`: its retention starts; it stays on the due-date index until its
/// invoice is issued.
fn completed(request: &ServiceRequest, now: Timestamp) -> ServiceRequest {
    let mut done = ServiceRequest {
        status: Status::Completed,
        completed_at: Some(now),
        updated_at: now,
        ..request.clone()
    };
    done.due(Some(now));
    done
}

/// Officers assigned or accepted but not checked in become no-shows: each in one transaction with
/// the request's freed slot and their roster. Dispatch is mailed the list. Returns how many.
async fn mark_no_shows(
    state: &AppState,
    request: &ServiceRequest,
    agency: &Agency,
    due: Timestamp,
    now: Timestamp,
) -> Result<usize, ApiError> {
    let mut missing = Vec::new();
    for assignment in assignments::of_request_fresh(&state.store, &request.request_id).await? {
        let a = &assignment.record;
        // A replacement placed after the check came due has not missed anything yet.
        if !matches!(a.status, AssignmentStatus::Assigned | AssignmentStatus::Accepted) || a.created_at >= due
        {
            continue;
        }
        if end_assignment(state, a, AssignmentStatus::NoShow, None, now).await? {
            missing.push(a.officer_user_id.clone());
        }
    }
    if !missing.is_empty() {
        tracing::info!(request_id = %request.request_id, no_shows = missing.len(), "no-shows marked");
        let message = mail::no_shows(
            &request.request_id,
            &local(request.starts_at, &request.time_zone),
            &missing,
        );
        for address in notices::dispatch_addresses(state, agency).await {
            if let Err(error) = crate::mail::send_service(state, &address, &message).await {
                tracing::warn!(error = %error, "no-show mail not sent");
            }
        }
    }
    Ok(missing.len())
}

/// Shifts still checked in after the grace period are closed at the request's end (flagged);
/// anyone still assigned is a no-show.
async fn close_open_shifts(
    state: &AppState,
    request: &ServiceRequest,
    now: Timestamp,
) -> Result<(), ApiError> {
    for assignment in assignments::of_request(&state.store, &request.request_id).await? {
        let a = &assignment.record;
        match a.status {
            AssignmentStatus::CheckedIn => {
                end_assignment(state, a, AssignmentStatus::Completed, Some(request.ends_at), now).await?;
            }
            AssignmentStatus::Assigned | AssignmentStatus::Accepted => {
                end_assignment(state, a, AssignmentStatus::NoShow, None, now).await?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Ends one assignment as `to` (a no-show frees the slot; a closed shift records the hours until
/// `closed_at`), with the officer's roster and the request in one transaction. Whether it changed.
async fn end_assignment(
    state: &AppState,
    assignment: &Assignment,
    to: AssignmentStatus,
    closed_at: Option<Timestamp>,
    now: Timestamp,
) -> Result<bool, ApiError> {
    for _ in 0..MAX_ATTEMPTS {
        let Some(current) = state
            .store
            .get::<Assignment>(&Assignment::key_of(
                &assignment.officer_user_id,
                &assignment.request_id,
            ))
            .await?
        else {
            return Ok(false);
        };
        if current.record.status != assignment.status {
            return Ok(false);
        }
        let mut next = current.record.clone();
        next.status = to;
        let mut writes = Vec::new();
        let roster = state
            .store
            .get::<Roster>(&Roster::key_of(&assignment.officer_user_id))
            .await?;
        if let Some(roster) = roster {
            let mut freed = roster.record.clone();
            freed
                .commitments
                .retain(|c| c.assignment_id != next.assignment_id);
            if let (Some(end), Some(started_at)) = (closed_at, next.checked_in_at) {
                freed.worked_shifts.push(WorkedShift {
                    assignment_id: next.assignment_id.clone(),
                    started_at,
                    ended_at: end,
                });
                freed.last_detail_at = Some(end);
            }
            freed.updated_at = now;
            writes.push(state.store.write_replace(&freed, roster.version)?);
        }
        if let Some(end) = closed_at {
            next.checked_out_at = Some(end);
            next.closed_by_run = true;
        }
        if to == AssignmentStatus::NoShow {
            let shift = load_shift(state, &assignment.request_id).await?;
            let freed = shift
                .request
                .record
                .with_filled(shift.request.record.filled.saturating_sub(1), now);
            writes.push(state.store.write_replace(&freed, shift.request.version)?);
        }
        writes.insert(0, state.store.write_replace(&next, current.version)?);
        match state.store.transact(writes).await {
            Ok(()) => return Ok(true),
            Err(StoreError::TransactionCancelled(_)) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::Conflict(
        "the request is busy: the next run tries again".into(),
    ))
}

/// After a check-out: when no officer still holds the request open (assigned, accepted or checked
/// in), it is completed now. No invoice is due yet: the officer who just checked out has no
/// approved timesheet, so the last timesheet approval (or the hourly run) issues it.
pub(super) async fn complete_if_done(state: &AppState, pointer: &RequestPointer) -> Result<(), ApiError> {
    let request_id = &pointer.request_id;
    for _ in 0..MAX_ATTEMPTS {
        // The request alone: its agency has no say in whether it is done.
        let Some(request) = state.store.get::<ServiceRequest>(&pointer.request_key()).await? else {
            return Ok(());
        };
        if request.record.status != Status::InProgress {
            return Ok(());
        }
        let open = assignments::of_request_fresh(&state.store, request_id)
            .await?
            .iter()
            .any(|a| {
                matches!(
                    a.record.status,
                    AssignmentStatus::Assigned | AssignmentStatus::Accepted | AssignmentStatus::CheckedIn
                )
            });
        if open {
            return Ok(());
        }
        let done = completed(&request.record, state.clock.now());
        if commit(state, &done, request.version).await? {
            return Ok(());
        }
    }
    Ok(())
}
