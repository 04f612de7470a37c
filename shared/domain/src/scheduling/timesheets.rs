//! Timesheets: after check-out the officer submits the hours checked in and out; an admin or
//! dispatcher of the agency approves them, changing the times only with a reason (audited). The
//! approved hours replace the worked shift on the officer's roster, so the `fewest_hours` ranking and
//! the weekly cap count what the agency approved.

use super::*;
use crate::audit::AuditRecord;
use crate::scheduling::assignments::{Timesheet, TimesheetStatus};

/// `POST /v1/assignments/{id}/timesheet`: the officer submits the hours of a completed assignment
/// (its check-in and check-out). Submitting again before approval answers the same timesheet.
pub async fn submit_timesheet(
    state: &AppState,
    caller: &Caller,
    assignment_id: &str,
) -> Result<AssignmentView, ApiError> {
    caller.require(Role::Provider)?;
    let pointer = state
        .store
        .get::<AssignmentPointer>(&AssignmentPointer::key_of(assignment_id))
        .await?
        .filter(|p| p.record.officer_user_id == caller.user_id)
        .ok_or(ApiError::NotFound("assignment"))?
        .record;
    let current = state
        .store
        .get::<Assignment>(&Assignment::key_of(&caller.user_id, &pointer.request_id))
        .await?
        .ok_or(ApiError::NotFound("assignment"))?;
    let a = &current.record;
    if let Some(existing) = &a.timesheet {
        return match existing.status {
            TimesheetStatus::Submitted => Ok(AssignmentView::from(a)),
            TimesheetStatus::Approved => Err(ApiError::Conflict("the timesheet is approved already".into())),
        };
    }
    let (Some(from), Some(until), AssignmentStatus::Completed) =
        (a.checked_in_at, a.checked_out_at, a.status)
    else {
        return Err(ApiError::Refused {
            rule: "timesheet_after_check_out",
            detail: "a timesheet is submitted after checking in and out".into(),
        });
    };
    let now = state.clock.now();
    let submitted = Assignment {
        timesheet: Some(Timesheet {
            status: TimesheetStatus::Submitted,
            submitted_at: now,
            submitted_from: from,
            submitted_until: until,
            approved_from: None,
            approved_until: None,
            approved_by: None,
            approved_at: None,
            adjustment_reason: None,
            differences: Timesheet::differences_of(from, until, a.starts_at, a.ends_at, a.closed_by_run),
        }),
        ..a.clone()
    };
    match state.store.replace(&submitted, current.version).await {
        Ok(_) => {}
        Err(StoreError::ConditionFailed) => {
            return Err(ApiError::Conflict(
                "the assignment changed meanwhile: try again".into(),
            ));
        }
        Err(error) => return Err(error.into()),
    }
    tracing::info!(assignment_id = %assignment_id, "timesheet submitted");
    Ok(AssignmentView::from(&submitted))
}

/// The body of `POST /v1/assignments/{id}/timesheet/approval`: the times to approve when they differ
/// from those submitted, and why.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimesheetApproval {
    #[serde(default)]
    pub worked_from: Option<Timestamp>,
    #[serde(default)]
    pub worked_until: Option<Timestamp>,
    #[serde(default)]
    pub reason: Option<String>,
    /// The approver looked at the timesheet's `differences` and approves the hours anyway.
    #[serde(default)]
    pub confirm: bool,
}

/// `POST /v1/assignments/{id}/timesheet/approval`: an admin or dispatcher of the request's agency
/// approves a submitted timesheet, as submitted or adjusted (a reason is then required). Audited on
/// the officer's record; the roster's worked shift takes the approved times in the same transaction.
pub async fn approve_timesheet(
    state: &AppState,
    caller: &Caller,
    assignment_id: &str,
    input: TimesheetApproval,
) -> Result<AssignmentView, ApiError> {
    Ok(approve_timesheet_or_replay(state, caller, assignment_id, input)
        .await?
        .0)
}

/// [`approve_timesheet`], and whether the answer is a replay: the same approver sending the same
/// approval again (a lost answer) gets the approved timesheet back, marked as a replay, not a 409;
/// another approver, or other times, still get the 409.
pub async fn approve_timesheet_or_replay(
    state: &AppState,
    caller: &Caller,
    assignment_id: &str,
    input: TimesheetApproval,
) -> Result<(AssignmentView, bool), ApiError> {
    let pointer = state
        .store
        .get::<AssignmentPointer>(&AssignmentPointer::key_of(assignment_id))
        .await?
        .ok_or(ApiError::NotFound("assignment"))?
        .record;
    let shift = load_shift_for_staff(state, caller, &pointer.request_id).await?;
    if caller.user_id == pointer.officer_user_id {
        return Err(ApiError::Forbidden(
            "nobody approves their own hours: another dispatcher or admin must".into(),
        ));
    }
    // Approved hours stay within the shift as booked: from check-in's opening to the end plus the
    // agency's grace period (what the customer is billed for cannot drift to another day).
    let request = &shift.request.record;
    let earliest = request.starts_at - CHECK_IN_OPENS_BEFORE;
    // The grace the booking agreed, not the agency's of the day.
    let latest = request.grace_ends_at();
    for _ in 0..MAX_ATTEMPTS {
        let current = state
            .store
            .get::<Assignment>(&Assignment::key_of(&pointer.officer_user_id, &pointer.request_id))
            .await?
            .ok_or(ApiError::NotFound("assignment"))?;
        let a = &current.record;
        let same_approval_again = a.timesheet.as_ref().is_some_and(|t| {
            t.status == TimesheetStatus::Approved
                && t.approved_by.as_deref() == Some(caller.user_id.as_str())
                && input.worked_from.is_none_or(|from| Some(from) == t.approved_from)
                && input
                    .worked_until
                    .is_none_or(|until| Some(until) == t.approved_until)
        });
        if same_approval_again {
            return Ok((AssignmentView::from(a), true));
        }
        let Some(sheet) = a
            .timesheet
            .clone()
            .filter(|t| t.status == TimesheetStatus::Submitted)
        else {
            return Err(ApiError::Conflict(
                "only a submitted timesheet can be approved".into(),
            ));
        };
        let from = input.worked_from.unwrap_or(sheet.submitted_from);
        let until = input.worked_until.unwrap_or(sheet.submitted_until);
        let adjusted = from != sheet.submitted_from || until != sheet.submitted_until;
        let mut v = Validator::new();
        v.check(from < until, "/worked_until", "must be after worked_from");
        v.check(
            from >= earliest,
            "/worked_from",
            "must not be before check-in opens for the shift",
        );
        v.check(
            until <= latest,
            "/worked_until",
            "must not be after the shift's end plus the grace its booking agreed",
        );
        if let Some(reason) = &input.reason {
            v.text("/reason", reason, 500);
        }
        v.check(
            !adjusted || input.reason.as_deref().is_some_and(|r| !r.trim().is_empty()),
            "/reason",
            "say why the times change: the officer and the audit trail see it",
        );
        v.check(
            adjusted || sheet.differences.is_empty() || input.confirm,
            "/confirm",
            "the hours differ from the shift (see the timesheet's differences): confirm them, or adjust them with a reason",
        );
        v.finish()?;
        let now = state.clock.now();
        let approved = Assignment {
            timesheet: Some(Timesheet {
                status: TimesheetStatus::Approved,
                approved_from: Some(from),
                approved_until: Some(until),
                approved_by: Some(caller.user_id.clone()),
                approved_at: Some(now),
                adjustment_reason: input
                    .reason
                    .as_ref()
                    .filter(|_| adjusted)
                    .map(|r| r.trim().to_owned()),
                ..sheet
            }),
            ..a.clone()
        };
        let mut writes = vec![state.store.write_replace(&approved, current.version)?];
        if let Some(roster) = state
            .store
            .get::<Roster>(&Roster::key_of(&pointer.officer_user_id))
            .await?
        {
            let mut counted = roster.record.clone();
            let mut found = false;
            for shift in counted
                .worked_shifts
                .iter_mut()
                .filter(|w| w.assignment_id == a.assignment_id)
            {
                shift.started_at = from;
                shift.ended_at = until;
                found = true;
            }
            if found {
                counted.updated_at = now;
                writes.push(state.store.write_replace(&counted, roster.version)?);
            }
        }
        let action = if adjusted {
            "timesheet.adjusted_and_approved"
        } else {
            "timesheet.approved"
        };
        let fields = if adjusted {
            vec!["worked_from".to_owned(), "worked_until".to_owned()]
        } else {
            Vec::new()
        };
        writes.push(state.store.write_create(&AuditRecord::new(
            &pointer.officer_user_id,
            &caller.user_id,
            action,
            fields,
            now,
        ))?);
        match state.store.transact(writes).await {
            Ok(()) => {
                tracing::info!(assignment_id = %assignment_id, adjusted, "timesheet approved");
                // The last approval of a completed request issues its invoice.
                crate::billing::issue_when_due(state, &pointer.request_id).await?;
                return Ok((AssignmentView::from(&approved), false));
            }
            Err(StoreError::TransactionCancelled(_)) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::Conflict("the assignment is busy: try again".into()))
}
