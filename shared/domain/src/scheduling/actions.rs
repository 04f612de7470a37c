//! What happens to an assignment after it is placed: accept, decline, release, check-in and
//! check-out, cancellation, and who may read a request's assignments.

use super::*;

// ------------------------------------------------------------------------------ officer's actions

/// What an officer does with an assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Accept,
    Decline,
    Release,
    CheckIn,
    CheckOut,
}

impl Action {
    /// The status the action leads to: an assignment already there was changed by this action
    /// before (a retry whose first answer was lost), see [`act_or_replay`].
    pub fn reached(self) -> AssignmentStatus {
        match self {
            Self::Accept => AssignmentStatus::Accepted,
            Self::Decline => AssignmentStatus::Declined,
            Self::Release => AssignmentStatus::Released,
            Self::CheckIn => AssignmentStatus::CheckedIn,
            Self::CheckOut => AssignmentStatus::Completed,
        }
    }
}

/// `POST /v1/assignments/{id}/{accept|decline|release|check-in|check-out}` by the officer who holds it.
/// Decline and release free the slot in the same transaction that changes the assignment.
pub async fn act(
    state: &AppState,
    caller: &Caller,
    assignment_id: &str,
    action: Action,
) -> Result<AssignmentView, ApiError> {
    Ok(act_or_replay(state, caller, assignment_id, action).await?.0)
}

/// [`act`], and whether the answer is a replay: mobile networks drop answers, so an action retried
/// on an assignment that is already where the action leads answers with the assignment as it is
/// (`true`), nothing changed and nobody told twice, where a 409 would leave the app unable to tell
/// "done" from "refused". Any other state is judged as before.
pub async fn act_or_replay(
    state: &AppState,
    caller: &Caller,
    assignment_id: &str,
    action: Action,
) -> Result<(AssignmentView, bool), ApiError> {
    caller.require(Role::Provider)?;
    let pointer = state
        .store
        .get::<AssignmentPointer>(&AssignmentPointer::key_of(assignment_id))
        .await?
        .filter(|p| p.record.officer_user_id == caller.user_id)
        .ok_or(ApiError::NotFound("assignment"))?
        .record;
    for _ in 0..MAX_ATTEMPTS {
        let mut facts = action_facts(state, &caller.user_id, &pointer.request_id, action).await?;
        let current = facts.assignment;
        let now = state.clock.now();
        let before = current.record.status;
        if before == action.reached() {
            return Ok((AssignmentView::from(&current.record), true));
        }
        let mut next = current.record.clone();
        let illegal = || {
            ApiError::Conflict(format!(
                "a {} assignment cannot be {}",
                serde_json::to_value(before)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                match action {
                    Action::Accept => "accepted",
                    Action::Decline => "declined",
                    Action::Release => "released",
                    Action::CheckIn => "checked in",
                    Action::CheckOut => "checked out",
                }
            ))
        };
        let frees_slot = match action {
            Action::Accept => {
                if before != AssignmentStatus::Assigned {
                    return Err(illegal());
                }
                if next.respond_by.is_some_and(|by| now > by) {
                    return Err(ApiError::Conflict("the confirmation window has closed".into()));
                }
                next.status = AssignmentStatus::Accepted;
                next.responded_at = Some(now);
                false
            }
            Action::Decline => {
                if before != AssignmentStatus::Assigned {
                    return Err(illegal());
                }
                next.status = AssignmentStatus::Declined;
                next.responded_at = Some(now);
                true
            }
            Action::Release => {
                if !matches!(before, AssignmentStatus::Assigned | AssignmentStatus::Accepted) {
                    return Err(illegal());
                }
                if now >= next.starts_at {
                    return Err(ApiError::Conflict(
                        "the shift has started: ask dispatch to release you".into(),
                    ));
                }
                next.status = AssignmentStatus::Released;
                true
            }
            Action::CheckIn => {
                if before != AssignmentStatus::Accepted {
                    return Err(illegal());
                }
                if now < next.starts_at - CHECK_IN_OPENS_BEFORE || now >= next.ends_at {
                    return Err(ApiError::Conflict(
                        "check-in opens 15 minutes before the shift and closes at its end".into(),
                    ));
                }
                next.status = AssignmentStatus::CheckedIn;
                next.checked_in_at = Some(now);
                false
            }
            Action::CheckOut => {
                if before != AssignmentStatus::CheckedIn {
                    return Err(illegal());
                }
                // A shift cannot end before it began (that would complete the request before its
                // start: no no-show, no replacement, no cancellation), nor after the grace its
                // booking agreed (the scheduled run closes it at its end then, flagged).
                if now < next.starts_at {
                    return Err(ApiError::Conflict(
                        "the shift has not started: check out once it has".into(),
                    ));
                }
                let grace_ends = facts
                    .shift
                    .as_ref()
                    .map_or(next.ends_at, |shift| shift.request.record.grace_ends_at());
                if now > grace_ends {
                    return Err(ApiError::Conflict(
                        "the shift ended longer ago than its grace: it is closed at its end; submit the timesheet".into(),
                    ));
                }
                next.status = AssignmentStatus::Completed;
                next.checked_out_at = Some(now);
                false
            }
        };
        if matches!(action, Action::Accept | Action::CheckIn) {
            // Confirming or starting a shift relies on the same facts as being placed on it: an
            // officer restricted or being erased is no longer processed, started shift or not.
            if facts
                .officer
                .as_ref()
                .is_none_or(|officer| officer.status != AccountStatus::Active)
            {
                return Err(ineligible(Exclusion::AccountNotActive));
            }
            eligibility::membership_rule(facts.membership.as_ref().map(|m| &m.record), &next.agency_id, now)
                .map_err(ineligible)?;
            if facts.on_do_not_hire_list {
                return Err(ineligible(Exclusion::DoNotHire));
            }
        }
        let mut writes = vec![state.store.write_replace(&next, current.version)?];
        if action == Action::CheckIn {
            // The first check-in starts the request (if the scheduled run has not yet).
            let shift = facts
                .shift
                .as_ref()
                .ok_or(ApiError::NotFound("service request"))?;
            let request = &shift.request.record;
            if matches!(
                request.status,
                Status::Requested | Status::PartiallyStaffed | Status::FullyStaffed
            ) {
                let started = lifecycle::started(request, &shift.agency.settings.rules, now, now);
                writes.push(state.store.write_replace(&started, shift.request.version)?);
            }
        }
        let mut freed_request = None;
        if frees_slot || action == Action::CheckOut {
            let roster = facts.roster.take().ok_or(ApiError::NotFound("roster"))?;
            let mut new_roster = roster.record.clone();
            new_roster
                .commitments
                .retain(|c| c.assignment_id != next.assignment_id);
            if action == Action::CheckOut
                && let Some(started_at) = next.checked_in_at
            {
                new_roster.worked_shifts.push(WorkedShift {
                    assignment_id: next.assignment_id.clone(),
                    started_at,
                    ended_at: now,
                });
                new_roster.last_detail_at = Some(now);
                new_roster.forget_old_shifts(now);
            }
            new_roster.updated_at = now;
            writes.push(state.store.write_replace(&new_roster, roster.version)?);
        }
        if frees_slot {
            let shift = facts
                .shift
                .as_ref()
                .ok_or(ApiError::NotFound("service request"))?;
            let request = &shift.request.record;
            if request.status != Status::Cancelled {
                let freed = request.with_filled(request.filled.saturating_sub(1), now);
                writes.push(state.store.write_replace(&freed, shift.request.version)?);
                freed_request = Some(freed);
            }
        }
        match state.store.transact(writes).await {
            Ok(()) => {
                tracing::info!(assignment_id = %next.assignment_id, action = ?action, "assignment updated");
                if action == Action::CheckOut
                    && let Some(request_pointer) = &facts.request_pointer
                {
                    lifecycle::complete_if_done(state, request_pointer).await?;
                }
                if let Some(shift) = &facts.shift {
                    let request = freed_request.as_ref().unwrap_or(&shift.request.record);
                    let told = Told {
                        officer: facts.officer.as_ref(),
                        request,
                        agency: &shift.agency,
                        customer: facts.customer.as_ref(),
                    };
                    notify_response(state, &next, action, told).await;
                }
                return Ok((AssignmentView::from(&next), false));
            }
            Err(StoreError::TransactionCancelled(_)) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::Conflict("the assignment is busy: try again".into()))
}

/// What one attempt of an officer's action reads: the assignment and, by action, what the action
/// relies on and what its mail needs. Every key is known once the assignment's request pointer is
/// read, so two `BatchGetItem`s (consistent) do the work of up to eight `GetItem`s.
struct ActionFacts {
    assignment: Versioned<Assignment>,
    /// The pointer of the assignment's request (where the request is).
    request_pointer: Option<RequestPointer>,
    /// The officer's roster: read when the action frees a slot or ends a shift.
    roster: Option<Versioned<Roster>>,
    /// The officer's account (the mail's name): read when dispatch is told.
    officer: Option<ProviderAccount>,
    /// The request and its agency: read for every action but check-out (`None` when either is gone).
    shift: Option<Shift>,
    /// Read for accept and check-in, which rely on the membership and the do-not-hire list.
    membership: Option<Versioned<Membership>>,
    on_do_not_hire_list: bool,
    /// The request's customer, active: told when a slot is freed.
    customer: Option<CustomerAccount>,
}

async fn action_facts(
    state: &AppState,
    officer_id: &str,
    request_id: &str,
    action: Action,
) -> Result<ActionFacts, ApiError> {
    let tells_dispatch = matches!(action, Action::Accept | Action::Decline | Action::Release);
    // Accept and check-in rely on the officer's account being active.
    let reads_account = tells_dispatch || action == Action::CheckIn;
    let frees_slot = matches!(action, Action::Decline | Action::Release);
    let assignment_key = Assignment::key_of(officer_id, request_id);
    let pointer_key = RequestPointer::key_of(request_id);
    let roster_key = Roster::key_of(officer_id);
    let account_key = accounts::account_key(officer_id, accounts::AccountRole::Provider);
    let mut keys = vec![assignment_key.clone(), pointer_key.clone()];
    if frees_slot || action == Action::CheckOut {
        keys.push(roster_key.clone());
    }
    if reads_account {
        keys.push(account_key.clone());
    }
    let mut first = state.store.get_many(&keys).await?;
    let mut facts = ActionFacts {
        assignment: first
            .take::<Assignment>(&assignment_key)?
            .ok_or(ApiError::NotFound("assignment"))?,
        request_pointer: first.take::<RequestPointer>(&pointer_key)?.map(|v| v.record),
        roster: first.take::<Roster>(&roster_key)?,
        officer: first.take::<ProviderAccount>(&account_key)?.map(|v| v.record),
        shift: None,
        membership: None,
        on_do_not_hire_list: false,
        customer: None,
    };
    // Without its request (which no live assignment lacks) there is nothing to free or start, and
    // nobody to tell: the action says so where it needs it.
    let pointer = facts.request_pointer.clone();
    let agency_id = facts.assignment.record.agency_id.clone();
    let membership_key = Membership::key_of(officer_id, &agency_id);
    let do_not_hire_key = DoNotHire::key_of(&agency_id, officer_id);
    let mut keys = Vec::new();
    if matches!(action, Action::Accept | Action::CheckIn) {
        keys.extend([membership_key.clone(), do_not_hire_key.clone()]);
    }
    let shift_keys = pointer.as_ref().map(|p| {
        (
            p.request_key(),
            Agency::key_of(&p.agency_id),
            accounts::account_key(&p.owner_user_id, accounts::AccountRole::Customer),
        )
    });
    if let Some((request_key, agency_key, customer_key)) = &shift_keys {
        keys.extend([request_key.clone(), agency_key.clone()]);
        if frees_slot {
            keys.push(customer_key.clone());
        }
    }
    if keys.is_empty() {
        return Ok(facts);
    }
    let mut second = state.store.get_many(&keys).await?;
    facts.membership = second.take::<Membership>(&membership_key)?;
    facts.on_do_not_hire_list = second.take::<DoNotHire>(&do_not_hire_key)?.is_some();
    if let (Some(pointer), Some((request_key, agency_key, customer_key))) = (pointer, shift_keys) {
        facts.customer = second
            .take::<CustomerAccount>(&customer_key)?
            .map(|v| v.record)
            .filter(|c| c.status == AccountStatus::Active);
        let request = second.take::<ServiceRequest>(&request_key)?;
        let agency = second.take::<Agency>(&agency_key)?;
        if let (Some(request), Some(agency)) = (request, agency) {
            facts.shift = Some(Shift {
                pointer,
                request,
                agency: agency.record,
            });
        }
    }
    Ok(facts)
}

/// Most future shifts one call releases: an officer holds a few at a time (the weekly cap and the rest
/// rule see to it); the rest wait for the next trigger rather than stretch a request.
pub const MAX_RELEASED_PER_CALL: usize = 100;

/// Releases the officer's shifts that have not started (assigned or accepted), at `agency_id` or at
/// every agency: the slot reopens and dispatch is told, as if the officer released it. Called when the
/// facts a placement relied on stop holding (a restriction, a do-not-hire entry, a membership
/// rejected, revoked, lapsed or left), after that change committed: a placement that committed
/// before it is found here, one after it failed its transaction's conditions.
pub async fn release_future_shifts(
    state: &AppState,
    officer_id: &str,
    agency_id: Option<&str>,
) -> Result<usize, ApiError> {
    let now = state.clock.now();
    let officer = Caller::acting_for(officer_id, Role::Provider);
    let held = state
        .store
        .query::<Assignment>(
            &platform::keys::user_partition(officer_id),
            "ASSIGNMENT#",
            usize::MAX,
        )
        .await?;
    let mut released = 0;
    for assignment in held.iter().map(|a| &a.record) {
        let due = matches!(
            assignment.status,
            AssignmentStatus::Assigned | AssignmentStatus::Accepted
        ) && assignment.starts_at > now
            && agency_id.is_none_or(|id| id == assignment.agency_id);
        if !due || released == MAX_RELEASED_PER_CALL {
            continue;
        }
        match act(state, &officer, &assignment.assignment_id, Action::Release).await {
            Ok(_) => released += 1,
            // Released, declined or started meanwhile: nothing left to release.
            Err(ApiError::Conflict(_)) | Err(ApiError::NotFound(_)) => {}
            Err(error) => return Err(error),
        }
    }
    if released > 0 {
        tracing::info!(released, "future shifts released");
    }
    Ok(released)
}

/// Marks an assignment of a cancelled request `cancelled` (or, for an officer checked in, completed
/// now) and frees the officer's time, together.
/// Called by request cancellation for every active assignment.
pub async fn cancel_assignment(
    state: &AppState,
    officer_id: &str,
    request_id: &str,
) -> Result<(), StoreError> {
    for _ in 0..MAX_ATTEMPTS {
        let Some(current) = state
            .store
            .get::<Assignment>(&Assignment::key_of(officer_id, request_id))
            .await?
        else {
            return Ok(());
        };
        if !current.record.status.is_active() || current.record.status == AssignmentStatus::Completed {
            return Ok(());
        }
        let now = state.clock.now();
        // An officer already on site (the agency cancelled a request under way) is checked out now:
        // the hours worked count. Anyone else is simply cancelled.
        let on_site = current.record.status == AssignmentStatus::CheckedIn;
        let cancelled = Assignment {
            status: if on_site {
                AssignmentStatus::Completed
            } else {
                AssignmentStatus::Cancelled
            },
            checked_out_at: if on_site { Some(now) } else { None },
            ..current.record.clone()
        };
        let mut writes = vec![state.store.write_replace(&cancelled, current.version)?];
        if let Some(roster) = state.store.get::<Roster>(&Roster::key_of(officer_id)).await? {
            let mut freed = roster.record.clone();
            freed
                .commitments
                .retain(|c| c.assignment_id != cancelled.assignment_id);
            if let (true, Some(started_at)) = (on_site, cancelled.checked_in_at) {
                freed.worked_shifts.push(WorkedShift {
                    assignment_id: cancelled.assignment_id.clone(),
                    started_at,
                    ended_at: now,
                });
                freed.last_detail_at = Some(now);
            }
            writes.push(state.store.write_replace(&freed, roster.version)?);
        }
        match state.store.transact(writes).await {
            Ok(()) => return Ok(()),
            Err(StoreError::TransactionCancelled(_)) => continue,
            Err(error) => return Err(error),
        }
    }
    Err(StoreError::ConditionFailed)
}

// ----------------------------------------------------------------------------- request's assignments

/// One assignment as the customer sees it: the officer's first name and the status, nothing else.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomerAssignmentView {
    pub officer_first_name: String,
    pub status: AssignmentStatus,
}

/// `GET /v1/service-requests/{id}/assignments` as its reader may see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RequestAssignments {
    /// The customer: active assignments, first name and status.
    Customer { items: Vec<CustomerAssignmentView> },
    /// The agency's staff: every assignment in full.
    Staff { items: Vec<AssignmentView> },
}

/// `GET /v1/service-requests/{id}/assignments`: the customer who booked it, or the agency's staff.
pub async fn request_assignments(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
) -> Result<RequestAssignments, ApiError> {
    let shift = load_shift(state, request_id).await?;
    let assignments = crate::scheduling::assignments::of_request(&state.store, request_id).await?;
    if shift.pointer.owner_user_id == caller.user_id {
        let active: Vec<&Assignment> = assignments
            .iter()
            .map(|a| &a.record)
            .filter(|a| a.status.is_active())
            .collect();
        let officer_ids: Vec<String> = active.iter().map(|a| a.officer_user_id.clone()).collect();
        let names: HashMap<String, String> = accounts::providers(&state.store, &officer_ids)
            .await?
            .into_iter()
            .map(|v| (v.user_id.clone(), mail::first_name(&v.legal_name).to_owned()))
            .collect();
        return Ok(RequestAssignments::Customer {
            items: active
                .iter()
                .map(|a| CustomerAssignmentView {
                    officer_first_name: names
                        .get(&a.officer_user_id)
                        .cloned()
                        .unwrap_or_else(|| "Officer".to_owned()),
                    status: a.status,
                })
                .collect(),
        });
    }
    if is_staff(caller, &shift.agency) {
        return Ok(RequestAssignments::Staff {
            items: assignments
                .iter()
                .map(|a| AssignmentView::from(&a.record))
                .collect(),
        });
    }
    Err(ApiError::NotFound("service request"))
}
