//! Filling slots: the one placement transaction behind claims, dispatcher assignments and
//! auto-assign, and the ranking that auto-assign explains.

use super::*;

// -------------------------------------------------------------------------------------- placement

/// The officer-side facts one placement attempt checks. The account and the membership are read
/// with their versions: the placement commits only if neither changed since (and no do-not-hire
/// entry appeared), so a restriction, an erasure, a revocation or a do-not-hire entry that commits
/// between the read and the write makes the placement fail and be judged again.
struct OfficerFacts {
    account: Versioned<ProviderAccount>,
    /// Whether the request's customer is active (not restricted, not being erased): a placement is
    /// new processing of their booking.
    customer_active: bool,
    membership: Option<Versioned<Membership>>,
    roster: Option<Versioned<Roster>>,
    on_do_not_hire_list: bool,
    existing: bool,
}

async fn officer_facts(
    state: &AppState,
    officer_id: &str,
    request: &ServiceRequest,
) -> Result<Option<OfficerFacts>, ApiError> {
    let (agency_id, request_id) = (request.agency_id.as_str(), request.request_id.as_str());
    // Every key is known: one BatchGetItem (consistent) instead of six reads.
    let customer_key = accounts::account_key(&request.customer_user_id, accounts::AccountRole::Customer);
    let account_key = accounts::account_key(officer_id, accounts::AccountRole::Provider);
    let membership_key = Membership::key_of(officer_id, agency_id);
    let roster_key = Roster::key_of(officer_id);
    let do_not_hire_key = DoNotHire::key_of(agency_id, officer_id);
    let assignment_key = Assignment::key_of(officer_id, request_id);
    let mut fetched = state
        .store
        .get_many(&[
            account_key.clone(),
            membership_key.clone(),
            roster_key.clone(),
            do_not_hire_key.clone(),
            assignment_key.clone(),
            customer_key.clone(),
        ])
        .await?;
    let Some(account) = fetched.take::<ProviderAccount>(&account_key)? else {
        return Ok(None);
    };
    Ok(Some(OfficerFacts {
        account,
        customer_active: fetched
            .take::<CustomerAccount>(&customer_key)?
            .is_some_and(|c| c.record.status == AccountStatus::Active),
        membership: fetched.take::<Membership>(&membership_key)?,
        roster: fetched.take::<Roster>(&roster_key)?,
        on_do_not_hire_list: fetched.take::<DoNotHire>(&do_not_hire_key)?.is_some(),
        existing: fetched.take::<Assignment>(&assignment_key)?.is_some(),
    }))
}

/// Places `officer_id` on one slot of `request_id`, or says which rule or race stopped it. A shift
/// the caller has just read serves the first attempt (the transaction is conditioned on its
/// version, so a stale one only costs a retry, which reads afresh).
async fn place(
    state: &AppState,
    request_id: &str,
    officer_id: &str,
    how: AssignedBy,
    mut just_read: Option<Shift>,
) -> Result<Assignment, ApiError> {
    for _ in 0..MAX_ATTEMPTS {
        let shift = match just_read.take() {
            Some(shift) => shift,
            None => load_shift(state, request_id).await?,
        };
        let now = state.clock.now();
        let request = &shift.request.record;
        if !request.is_open(now) {
            return Err(ApiError::Conflict("the request has no open slot".into()));
        }
        let facts = officer_facts(state, officer_id, request)
            .await?
            .ok_or(ApiError::NotFound("provider"))?;
        if !facts.customer_active {
            return Err(ApiError::Refused {
                rule: "customer_restricted",
                detail: "the request is on hold: its customer restricted the processing of their data".into(),
            });
        }
        let zone = zone_of(&shift.agency);
        let rules = &shift.agency.settings.rules;
        eligibility::check(
            Candidate {
                account: &facts.account.record,
                membership: facts.membership.as_ref().map(|m| &m.record),
                roster: facts.roster.as_ref().map(|r| &r.record),
                on_do_not_hire_list: facts.on_do_not_hire_list,
                already_on_request: facts.existing,
            },
            request,
            rules,
            &zone,
            now,
        )
        .map_err(ineligible)?;
        let (Some(roster), Some(membership)) = (facts.roster, facts.membership) else {
            return Err(ineligible(Exclusion::NotAvailable));
        };
        let mut assignment = Assignment::new(
            request_id,
            officer_id,
            &request.agency_id,
            request.starts_at,
            request.ends_at,
            now,
        );
        assignment.assigned_by = how;
        if how == AssignedBy::Claim {
            // Claiming is the officer's own confirmation.
            assignment.status = AssignmentStatus::Accepted;
            assignment.responded_at = Some(now);
        } else {
            let window = SignedDuration::from_hours(i64::from(rules.confirmation_window_hours));
            // Before the start, confirm by the start; a replacement once under way, by the end.
            let cutoff = if request.status == Status::InProgress {
                request.ends_at
            } else {
                request.starts_at
            };
            let deadline = now.checked_add(window).unwrap_or(cutoff);
            assignment.respond_by = Some(deadline.min(cutoff));
        }
        let staffed = request.with_filled(request.filled + 1, now);
        let mut new_roster = roster.record.clone();
        new_roster.forget_stale_commitments(now);
        new_roster.forget_old_shifts(now);
        new_roster.commitments.push(Commitment {
            assignment_id: assignment.assignment_id.clone(),
            request_id: request_id.to_owned(),
            starts_at: request.starts_at,
            ends_at: request.ends_at,
        });
        new_roster.updated_at = now;
        let writes = vec![
            state.store.write_replace(&staffed, shift.request.version)?,
            state.store.write_replace(&new_roster, roster.version)?,
            state.store.write_create(&assignment)?,
            state.store.write_create(&AssignmentPointer::of(&assignment))?,
            // The facts the rules relied on, re-checked as the placement commits.
            state
                .store
                .write_unchanged(&facts.account.record.key(), facts.account.version)?,
            state
                .store
                .write_unchanged(&membership.record.key(), membership.version)?,
            state
                .store
                .write_absent(&DoNotHire::key_of(&request.agency_id, officer_id))?,
        ];
        match state.store.transact(writes).await {
            Ok(()) => {
                tracing::info!(
                    request_id = %request_id,
                    assignment_id = %assignment.assignment_id,
                    assigned_by = ?how,
                    "officer placed"
                );
                edge::usage::count_agency_activity(state, &staffed.agency_id).await;
                if let Err(error) =
                    notify_placement(state, &staffed, &facts.account.record, &assignment).await
                {
                    // The placement committed: a failed notification must not turn it into an error.
                    tracing::warn!(error = %error, "placement notification incomplete");
                }
                return Ok(assignment);
            }
            Err(StoreError::TransactionCancelled(reasons)) => {
                if reasons.get(2).is_some_and(|r| r == "ConditionalCheckFailed") {
                    return Err(ineligible(Exclusion::AlreadyOnRequest));
                }
                // The request, the roster, the account, the membership or the do-not-hire list moved
                // on: read again and re-check everything.
                let failed = |i: usize| reasons.get(i).is_some_and(|r| r == "ConditionalCheckFailed");
                if failed(4) || failed(5) || failed(6) {
                    tracing::info!(
                        request_id = %request_id,
                        account_changed = failed(4),
                        membership_changed = failed(5),
                        do_not_hire_added = failed(6),
                        "placement refused at commit: a fact it relied on changed"
                    );
                }
                continue;
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::Conflict("the request is very busy: try again".into()))
}

/// `POST /v1/service-requests/{id}/claims`: the caller takes one open slot, first come first served.
pub async fn claim(state: &AppState, caller: &Caller, request_id: &str) -> Result<AssignmentView, ApiError> {
    caller.require(Role::Provider)?;
    provider_account(state, &caller.user_id)
        .await?
        .ok_or(ApiError::NotFound("provider account"))?;
    let shift = load_shift(state, request_id).await?;
    let membership =
        accounts::memberships::membership(&state.store, &caller.user_id, &shift.pointer.agency_id).await?;
    if membership.is_none() || shift.request.record.status == Status::AwaitingApproval {
        // Officers of other agencies may not learn the request exists, nor anyone of a booking the
        // agency has not accepted yet.
        return Err(ApiError::NotFound("service request"));
    }
    let assignment = place(state, request_id, &caller.user_id, AssignedBy::Claim, Some(shift)).await?;
    Ok(AssignmentView::from(&assignment))
}

/// The body of `POST /v1/service-requests/{id}/assignments`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignInput {
    pub officer_user_id: String,
}

/// `POST /v1/service-requests/{id}/assignments`: a dispatcher of the agency places a named officer;
/// every rule applies, and a refusal names the rule.
pub async fn assign(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    input: AssignInput,
) -> Result<AssignmentView, ApiError> {
    let mut v = Validator::new();
    v.text("/officer_user_id", &input.officer_user_id, 64);
    v.finish()?;
    load_shift_for_staff(state, caller, request_id).await?;
    let assignment = place(
        state,
        request_id,
        &input.officer_user_id,
        AssignedBy::Dispatcher,
        None,
    )
    .await
    .map_err(for_staff)?;
    Ok(AssignmentView::from(&assignment))
}

/// The body of `POST /v1/service-requests/{id}/auto-assign` (the agency's default mode when empty).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoAssignInput {
    #[serde(default)]
    pub mode: Option<AssignmentMode>,
}

/// One officer auto-assign placed, and why they ranked where they did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pick {
    pub officer_user_id: String,
    pub assignment_id: String,
    /// 1-based place in the agency's order among the eligible officers.
    pub rank: usize,
    pub why: String,
}

/// One officer auto-assign passed over, and the rule that excluded them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skip {
    pub officer_user_id: String,
    pub rule: &'static str,
}

/// What auto-assign did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AutoAssignReport {
    pub request_id: String,
    pub mode: AssignmentMode,
    pub picked: Vec<Pick>,
    pub skipped: Vec<Skip>,
    /// Eligible officers ranked below the last pick, not needed.
    pub not_needed: usize,
    pub open_slots: u32,
}

/// The pool keys (weekday names and dates) under which officers who could work `request` are listed:
/// the local days the shift starts and ends on, and their neighbours.
fn pool_keys_for(request: &ServiceRequest, zone: &TimeZone) -> BTreeSet<String> {
    // Officers list themselves under days of their own time zone, which may differ from the
    // agency's by up to a day either way: ask the neighbouring days too (eligibility decides).
    let mut keys = BTreeSet::new();
    for at in [request.starts_at, request.ends_at - SignedDuration::from_mins(1)] {
        let date = at.to_zoned_datetime(zone.clone()).date();
        for day in [date.yesterday().ok(), Some(date), date.tomorrow().ok()]
            .into_iter()
            .flatten()
        {
            keys.insert(
                crate::scheduling::availability::Day::of(day.weekday())
                    .name()
                    .to_owned(),
            );
            keys.insert(day.to_string());
        }
    }
    keys
}

/// `POST /v1/service-requests/{id}/auto-assign`: fills the open slots by the agency's mode. Candidates
/// come from the agency's pool index for the shift's days (a Query per day, never a Scan), so the
/// items read grow with the officers available then, not with the agency or the table.
pub async fn auto_assign(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    input: AutoAssignInput,
) -> Result<AutoAssignReport, ApiError> {
    let shift = load_shift_for_staff(state, caller, request_id).await?;
    let agency = &shift.agency;
    let request = &shift.request.record;
    let mode = input
        .mode
        .unwrap_or(agency.settings.rules.default_assignment_mode);
    let now = state.clock.now();
    if !request.is_open(now) {
        return Err(ApiError::Conflict("the request has no open slot".into()));
    }
    let zone = zone_of(agency);
    let mut officers = BTreeSet::new();
    for key in pool_keys_for(request, &zone) {
        for entry in state
            .store
            .query::<PoolEntry>(&PoolEntry::partition(&agency.agency_id, &key), "", usize::MAX)
            .await?
        {
            officers.insert(entry.record.officer_ref);
        }
    }
    let officers: Vec<String> = officers.into_iter().collect();
    let keys =
        |f: &dyn Fn(&str) -> platform::store::ItemKey| officers.iter().map(|o| f(o)).collect::<Vec<_>>();
    let accounts: HashMap<String, ProviderAccount> = accounts::providers(&state.store, &officers)
        .await?
        .into_iter()
        .map(|account| (account.user_id.clone(), account))
        .collect();
    let rosters: HashMap<String, Roster> = state
        .store
        .batch_get::<Roster>(&keys(&Roster::key_of))
        .await?
        .into_iter()
        .map(|v| (v.record.user_id.clone(), v.record))
        .collect();
    let on_request: BTreeSet<String> = state
        .store
        .batch_get::<Assignment>(&keys(&|o| Assignment::key_of(o, request_id)))
        .await?
        .into_iter()
        .map(|v| v.record.officer_user_id)
        .collect();
    let memberships: HashMap<String, Membership> =
        accounts::memberships::memberships_in(&state.store, &agency.agency_id, &officers)
            .await?
            .into_iter()
            .map(|m| (m.user_id.clone(), m))
            .collect();
    let do_not_hire: BTreeSet<String> = state
        .store
        .query::<DoNotHire>(
            &agency_partition(&agency.agency_id),
            DO_NOT_HIRE_PREFIX,
            usize::MAX,
        )
        .await?
        .into_iter()
        .map(|v| v.record.provider_user_id)
        .collect();
    let rules = &agency.settings.rules;
    let mut skipped = Vec::new();
    let mut eligible = Vec::new();
    for officer in &officers {
        let Some(account) = accounts.get(officer) else {
            continue;
        };
        let membership = memberships.get(officer);
        let candidate = Candidate {
            account,
            membership,
            roster: rosters.get(officer),
            on_do_not_hire_list: do_not_hire.contains(officer),
            already_on_request: on_request.contains(officer),
        };
        match eligibility::check(candidate, request, rules, &zone, now) {
            Ok(()) => {
                if let (Some(roster), Some(membership)) = (rosters.get(officer), membership) {
                    eligible.push(eligibility::Eligible {
                        account,
                        roster,
                        hire_date: membership.hire_date,
                    });
                }
            }
            Err(exclusion) => skipped.push(Skip {
                officer_user_id: officer.clone(),
                rule: rule_for_staff(exclusion.rule()),
            }),
        }
    }
    let ranked = eligibility::rank(mode, rules, now, &eligible);
    let mut picked = Vec::new();
    let mut open_slots = request.officers.saturating_sub(request.filled);
    let mut considered = 0;
    for (index, ranking) in ranked.iter().enumerate() {
        if open_slots == 0 {
            break;
        }
        considered = index + 1;
        match place(
            state,
            request_id,
            &ranking.officer_user_id,
            AssignedBy::AutoAssign,
            None,
        )
        .await
        {
            Ok(assignment) => {
                open_slots -= 1;
                picked.push(Pick {
                    officer_user_id: ranking.officer_user_id.clone(),
                    assignment_id: assignment.assignment_id,
                    rank: index + 1,
                    why: ranking.why.clone(),
                });
            }
            Err(ApiError::Ineligible { rule, .. }) => skipped.push(Skip {
                officer_user_id: ranking.officer_user_id.clone(),
                rule: rule_for_staff(rule),
            }),
            Err(ApiError::Conflict(_)) => {
                open_slots = 0;
            }
            Err(error) => {
                // Picks already made are committed: report them rather than lose them.
                tracing::warn!(error = %error, "auto-assign stopped early");
                break;
            }
        }
    }
    let open_slots = match load_shift(state, request_id).await {
        Ok(fresh) => fresh
            .request
            .record
            .officers
            .saturating_sub(fresh.request.record.filled),
        Err(_) => open_slots,
    };
    Ok(AutoAssignReport {
        request_id: request_id.to_owned(),
        mode,
        picked,
        skipped,
        not_needed: ranked.len() - considered,
        open_slots,
    })
}
