//! Scheduling: officers offer availability, see the open shifts they may work and claim them;
//! dispatchers name an officer or let the agency's mode fill the slots; officers confirm, call off,
//! check in and out.
//!
//! **No double booking, by construction.** Every placement is one DynamoDB transaction that
//! (1) replaces the service request with `filled + 1` and its new staffing status, conditioned on the
//! version read; (2) replaces the officer's roster with the new shift, conditioned on its version;
//! (3) creates the assignment, conditioned on its key being free; (4) creates the id pointer. Two
//! placements that touch the same request or the same officer cannot both commit: the loser re-reads
//! and the rules (open slot, overlap, rest, weekly cap) are checked again on fresh data.

pub mod assignments;
pub mod availability;
pub mod eligibility;
pub mod roster;

use crate::accounts::{self, AccountStatus, CustomerAccount, ProviderAccount};
use crate::agencies::{self, Agency, AssignmentMode};
use crate::mail;
use crate::scheduling::assignments::{
    AssignedBy, Assignment, AssignmentPointer, AssignmentStatus, AssignmentView,
};
use crate::scheduling::availability::Availability;
use crate::scheduling::eligibility::{Candidate, Exclusion};
use crate::scheduling::roster::{Commitment, DO_NOT_HIRE_PREFIX, DoNotHire, PoolEntry, Roster, WorkedShift};
use crate::service_requests::{self, RequestPointer, ServiceRequest, Status, local};
use edge::auth::{Caller, Role};
use edge::error::ApiError;
use edge::validation::Validator;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use platform::AppState;
use platform::keys::{agency_partition, sortable_time};
use platform::mailer::Mail;
use platform::store::{StoreError, Versioned};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How often a placement re-reads and retries after losing a race before answering 409. Each lost
/// race means someone else's placement on the same request or officer committed, so a request with
/// `n` slots makes a claimant lose at most `n` times before it sees the request full.
const MAX_ATTEMPTS: usize = 120;
/// Check-in opens this long before the shift starts.
const CHECK_IN_OPENS_BEFORE: SignedDuration = SignedDuration::from_hours(1);
/// How far ahead `open-shifts` looks by default, and at most.
const OPEN_SHIFTS_DEFAULT_DAYS: u32 = 14;
const OPEN_SHIFTS_MAX_DAYS: u32 = 60;

fn ineligible(exclusion: Exclusion) -> ApiError {
    ApiError::Ineligible {
        rule: exclusion.rule(),
        detail: exclusion.explain().to_owned(),
    }
}

fn zone_of(agency: &Agency) -> TimeZone {
    TimeZone::get(&agency.settings.time_zone).unwrap_or(TimeZone::UTC)
}

/// Whether `caller` staffs `agency`: a dispatcher or admin listed on it.
fn is_staff(caller: &Caller, agency: &Agency) -> bool {
    (caller.has(Role::Dispatcher) && agency.settings.dispatcher_user_ids.contains(&caller.user_id))
        || (caller.has(Role::AgencyAdmin) && agency.settings.admin_user_ids.contains(&caller.user_id))
}

/// A request with its agency, as read for one attempt.
struct Shift {
    pointer: RequestPointer,
    request: Versioned<ServiceRequest>,
    agency: Agency,
}

async fn load_shift(state: &AppState, request_id: &str) -> Result<Shift, ApiError> {
    let (pointer, request) = service_requests::located(state, request_id)
        .await?
        .ok_or(ApiError::NotFound("service request"))?;
    let agency = agencies::find(state, &pointer.agency_id)
        .await?
        .ok_or(ApiError::NotFound("agency"))?;
    Ok(Shift {
        pointer,
        request,
        agency,
    })
}

/// The shift for an agency staff action: 403 without a staff role, 404 for staff of other agencies.
async fn load_shift_for_staff(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
) -> Result<Shift, ApiError> {
    if !caller.has(Role::Dispatcher) && !caller.has(Role::AgencyAdmin) {
        return Err(ApiError::Forbidden(
            "this action needs the dispatcher or agency_admin role".into(),
        ));
    }
    let shift = load_shift(state, request_id).await?;
    if !is_staff(caller, &shift.agency) {
        return Err(ApiError::NotFound("service request"));
    }
    Ok(shift)
}

async fn provider_account(state: &AppState, user_id: &str) -> Result<Option<ProviderAccount>, ApiError> {
    Ok(accounts::provider(&state.store, user_id).await?.map(|v| v.record))
}

// ------------------------------------------------------------------------------------ availability

/// `PUT /v1/providers/me/availability`: replaces the caller's availability and re-lists them in
/// their agency's pool under each weekday and date they are available. A restricted account keeps
/// its availability but is listed nowhere (its data is stored, not used).
pub async fn put_availability(
    state: &AppState,
    caller: &Caller,
    availability: Availability,
) -> Result<Availability, ApiError> {
    caller.require(Role::Provider)?;
    let account = provider_account(state, &caller.user_id)
        .await?
        .ok_or(ApiError::NotFound("provider account"))?;
    let membership = account
        .agency
        .clone()
        .ok_or_else(|| ApiError::Conflict("availability is kept per agency: join an agency first".into()))?;
    let agency = agencies::find(state, &membership.agency_id)
        .await?
        .ok_or(ApiError::NotFound("agency"))?;
    let zone = zone_of(&agency);
    let today = state.clock.now().to_zoned_datetime(zone).date();
    let mut availability = availability;
    // Exceptions whose day has passed are history, not an error: a client may PUT back what it read.
    // (A day before "today" also covers officers a time zone behind the agency.)
    let yesterday = today.yesterday().unwrap_or(today);
    availability.exceptions.retain(|e| e.date >= yesterday);
    availability.validate(yesterday)?;
    for _ in 0..MAX_ATTEMPTS {
        let now = state.clock.now();
        let current = state
            .store
            .get::<Roster>(&Roster::key_of(&caller.user_id))
            .await?;
        let mut roster = match &current {
            Some(v) => v.record.clone(),
            None => Roster::new(&caller.user_id, &membership.agency_id, now),
        };
        let old: BTreeSet<(String, String)> = roster
            .pool_keys
            .iter()
            .map(|k| (roster.agency_id.clone(), k.clone()))
            .collect();
        roster.agency_id = membership.agency_id.clone();
        roster.pool_keys = if account.status == crate::accounts::AccountStatus::Active {
            availability.pool_keys()
        } else {
            Vec::new()
        };
        roster.availability = Some(availability.clone());
        roster.updated_at = now;
        let new: BTreeSet<(String, String)> = roster
            .pool_keys
            .iter()
            .map(|k| (roster.agency_id.clone(), k.clone()))
            .collect();
        let mut writes = vec![match &current {
            Some(v) => state.store.write_replace(&roster, v.version)?,
            None => state.store.write_create(&roster)?,
        }];
        for (agency_id, key) in old.difference(&new) {
            writes.push(
                state
                    .store
                    .write_delete(&PoolEntry::key_of(agency_id, key, &roster.pool_token))?,
            );
        }
        for (agency_id, key) in new.difference(&old) {
            writes.push(state.store.write_create(&PoolEntry {
                agency_id: agency_id.clone(),
                pool_key: key.clone(),
                entry_token: roster.pool_token.clone(),
                officer_ref: caller.user_id.clone(),
            })?);
        }
        match state.store.transact(writes).await {
            Ok(()) => return Ok(availability),
            Err(StoreError::TransactionCancelled(_)) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::Conflict("your roster is busy: try again".into()))
}

/// Lists the officer in their agency's pool again, or unlists them, by their account's status (after
/// a restriction is set or lifted). Nothing to do for an officer without a roster.
pub async fn relist(state: &AppState, user_id: &str) -> Result<(), ApiError> {
    let roster = state.store.get::<Roster>(&Roster::key_of(user_id)).await?;
    match roster.and_then(|r| r.record.availability) {
        Some(availability) => {
            let officer = Caller {
                user_id: user_id.to_owned(),
                username: None,
                email: None,
                email_verified: false,
                roles: [Role::Provider].into_iter().collect(),
                auth_time: None,
            };
            match put_availability(state, &officer, availability).await {
                // No agency membership (any more): there is no pool to be listed in.
                Ok(_) | Err(ApiError::Conflict(_)) | Err(ApiError::NotFound(_)) => Ok(()),
                Err(error) => Err(error),
            }
        }
        None => Ok(()),
    }
}

/// `GET /v1/providers/me/availability`: what the caller offered (empty when nothing yet).
pub async fn availability(state: &AppState, caller: &Caller) -> Result<Availability, ApiError> {
    caller.require(Role::Provider)?;
    let roster = state
        .store
        .get::<Roster>(&Roster::key_of(&caller.user_id))
        .await?;
    Ok(roster
        .and_then(|r| r.record.availability)
        .unwrap_or(Availability {
            time_zone: None,
            weekly: Vec::new(),
            exceptions: Vec::new(),
        }))
}

// ------------------------------------------------------------------------------------- open shifts

/// An open slot as an officer who may take it sees it: what, where (city), when; not the customer,
/// the site contact or the price.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenShift {
    pub request_id: String,
    pub agency_id: String,
    pub event_kind: String,
    pub city: String,
    pub region: String,
    pub starts_at: String,
    pub ends_at: String,
    pub time_zone: String,
    pub open_slots: u32,
    pub requirements: crate::service_requests::Requirements,
}

/// `GET /v1/providers/me/open-shifts`: open slots of the caller's agency in the next `days` days that
/// every rule lets the caller work. One Query over the agency's requests by start time (the `gsi1`
/// index), plus the caller's own account, roster, do-not-hire entry and assignments.
pub async fn open_shifts(
    state: &AppState,
    caller: &Caller,
    days: Option<u32>,
) -> Result<Vec<OpenShift>, ApiError> {
    caller.require(Role::Provider)?;
    let days = days.unwrap_or(OPEN_SHIFTS_DEFAULT_DAYS);
    if !(1..=OPEN_SHIFTS_MAX_DAYS).contains(&days) {
        return Err(ApiError::Validation(vec![edge::error::FieldError {
            pointer: "?days".into(),
            detail: format!("must be 1 to {OPEN_SHIFTS_MAX_DAYS}"),
        }]));
    }
    let account = provider_account(state, &caller.user_id)
        .await?
        .ok_or(ApiError::NotFound("provider account"))?;
    let Some(membership) = account.agency.clone() else {
        return Ok(Vec::new());
    };
    let Some(agency) = agencies::find(state, &membership.agency_id).await? else {
        return Ok(Vec::new());
    };
    let zone = zone_of(&agency);
    let now = state.clock.now();
    let roster = state
        .store
        .get::<Roster>(&Roster::key_of(&caller.user_id))
        .await?;
    let on_list = state
        .store
        .get::<DoNotHire>(&DoNotHire::key_of(&agency.agency_id, &caller.user_id))
        .await?
        .is_some();
    let until = now + SignedDuration::from_hours(24 * i64::from(days));
    let requests: Vec<ServiceRequest> = state
        .store
        .query_gsi1_range::<ServiceRequest>(
            &format!("{}#REQUESTS", agency_partition(&agency.agency_id)),
            &sortable_time(now),
            &format!("{}~", sortable_time(until)),
        )
        .await?
        .into_iter()
        .map(|v| v.record)
        .filter(|r| r.is_open(now))
        .collect();
    let held: BTreeSet<String> = state
        .store
        .batch_get::<Assignment>(
            &requests
                .iter()
                .map(|r| Assignment::key_of(&caller.user_id, &r.request_id))
                .collect::<Vec<_>>(),
        )
        .await?
        .into_iter()
        .map(|a| a.record.request_id)
        .collect();
    let roster = roster.map(|r| r.record);
    Ok(requests
        .into_iter()
        .filter(|request| {
            let candidate = Candidate {
                account: &account,
                roster: roster.as_ref(),
                on_do_not_hire_list: on_list,
                already_on_request: held.contains(&request.request_id),
            };
            eligibility::check(candidate, request, &agency.settings.rules, &zone).is_ok()
        })
        .map(|request| OpenShift {
            open_slots: request.officers.saturating_sub(request.filled),
            starts_at: local(request.starts_at, &request.time_zone),
            ends_at: local(request.ends_at, &request.time_zone),
            request_id: request.request_id,
            agency_id: request.agency_id,
            event_kind: request.event.kind,
            city: request.site.address.city,
            region: request.site.address.region,
            time_zone: request.time_zone,
            requirements: request.requirements,
        })
        .collect())
}

// -------------------------------------------------------------------------------------- placement

/// The officer-side facts one placement attempt checks.
struct OfficerFacts {
    account: ProviderAccount,
    roster: Option<Versioned<Roster>>,
    on_do_not_hire_list: bool,
    existing: bool,
}

async fn officer_facts(
    state: &AppState,
    officer_id: &str,
    agency_id: &str,
    request_id: &str,
) -> Result<Option<OfficerFacts>, ApiError> {
    let Some(account) = provider_account(state, officer_id).await? else {
        return Ok(None);
    };
    let roster = state.store.get::<Roster>(&Roster::key_of(officer_id)).await?;
    let on_do_not_hire_list = state
        .store
        .get::<DoNotHire>(&DoNotHire::key_of(agency_id, officer_id))
        .await?
        .is_some();
    let existing = state
        .store
        .get::<Assignment>(&Assignment::key_of(officer_id, request_id))
        .await?
        .is_some();
    Ok(Some(OfficerFacts {
        account,
        roster,
        on_do_not_hire_list,
        existing,
    }))
}

/// Places `officer_id` on one slot of `request_id`, or says which rule or race stopped it.
async fn place(
    state: &AppState,
    request_id: &str,
    officer_id: &str,
    how: AssignedBy,
) -> Result<Assignment, ApiError> {
    for _ in 0..MAX_ATTEMPTS {
        let shift = load_shift(state, request_id).await?;
        let now = state.clock.now();
        let request = &shift.request.record;
        if !request.is_open(now) {
            return Err(ApiError::Conflict("the request has no open slot".into()));
        }
        let facts = officer_facts(state, officer_id, &request.agency_id, request_id)
            .await?
            .ok_or(ApiError::NotFound("provider"))?;
        let zone = zone_of(&shift.agency);
        let rules = &shift.agency.settings.rules;
        eligibility::check(
            Candidate {
                account: &facts.account,
                roster: facts.roster.as_ref().map(|r| &r.record),
                on_do_not_hire_list: facts.on_do_not_hire_list,
                already_on_request: facts.existing,
            },
            request,
            rules,
            &zone,
        )
        .map_err(ineligible)?;
        let Some(roster) = facts.roster else {
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
            let deadline = now.checked_add(window).unwrap_or(request.starts_at);
            assignment.respond_by = Some(deadline.min(request.starts_at));
        }
        let filled = request.filled + 1;
        let staffed = ServiceRequest {
            filled,
            status: ServiceRequest::staffing_status(filled, request.officers),
            updated_at: now,
            ..request.clone()
        };
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
                if let Err(error) = notify_placement(state, &staffed, &facts.account, &assignment).await {
                    // The placement committed: a failed notification must not turn it into an error.
                    tracing::warn!(error = %error, "placement notification incomplete");
                }
                return Ok(assignment);
            }
            Err(StoreError::TransactionCancelled(reasons)) => {
                if reasons.get(2).is_some_and(|r| r == "ConditionalCheckFailed") {
                    return Err(ineligible(Exclusion::AlreadyOnRequest));
                }
                // The request or the roster moved on: read again and re-check everything.
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
    let account = provider_account(state, &caller.user_id)
        .await?
        .ok_or(ApiError::NotFound("provider account"))?;
    let shift = load_shift(state, request_id).await?;
    if account
        .agency
        .as_ref()
        .is_none_or(|m| m.agency_id != shift.pointer.agency_id)
    {
        // Officers of other agencies may not learn the request exists.
        return Err(ApiError::NotFound("service request"));
    }
    let assignment = place(state, request_id, &caller.user_id, AssignedBy::Claim).await?;
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
    let assignment = place(state, request_id, &input.officer_user_id, AssignedBy::Dispatcher).await?;
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
        let candidate = Candidate {
            account,
            roster: rosters.get(officer),
            on_do_not_hire_list: do_not_hire.contains(officer),
            already_on_request: on_request.contains(officer),
        };
        match eligibility::check(candidate, request, rules, &zone) {
            Ok(()) => {
                if let Some(roster) = rosters.get(officer) {
                    eligible.push((account, roster));
                }
            }
            Err(exclusion) => skipped.push(Skip {
                officer_user_id: officer.clone(),
                rule: exclusion.rule(),
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
                rule,
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

/// `POST /v1/assignments/{id}/{accept|decline|release|check-in|check-out}` by the officer who holds it.
/// Decline and release free the slot in the same transaction that changes the assignment.
pub async fn act(
    state: &AppState,
    caller: &Caller,
    assignment_id: &str,
    action: Action,
) -> Result<AssignmentView, ApiError> {
    caller.require(Role::Provider)?;
    let pointer = state
        .store
        .get::<AssignmentPointer>(&AssignmentPointer::key_of(assignment_id))
        .await?
        .filter(|p| p.record.officer_user_id == caller.user_id)
        .ok_or(ApiError::NotFound("assignment"))?
        .record;
    for _ in 0..MAX_ATTEMPTS {
        let current = state
            .store
            .get::<Assignment>(&Assignment::key_of(&caller.user_id, &pointer.request_id))
            .await?
            .ok_or(ApiError::NotFound("assignment"))?;
        let now = state.clock.now();
        let before = current.record.status;
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
                        "check-in opens one hour before the shift and closes at its end".into(),
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
                next.status = AssignmentStatus::Completed;
                next.checked_out_at = Some(now);
                false
            }
        };
        let mut writes = vec![state.store.write_replace(&next, current.version)?];
        let mut freed_request = None;
        if frees_slot || action == Action::CheckOut {
            let roster = state
                .store
                .get::<Roster>(&Roster::key_of(&caller.user_id))
                .await?
                .ok_or(ApiError::NotFound("roster"))?;
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
            let shift = load_shift(state, &pointer.request_id).await?;
            let request = shift.request.record.clone();
            if request.status != Status::Cancelled {
                let filled = request.filled.saturating_sub(1);
                let freed = ServiceRequest {
                    filled,
                    status: ServiceRequest::staffing_status(filled, request.officers),
                    updated_at: now,
                    ..request
                };
                writes.push(state.store.write_replace(&freed, shift.request.version)?);
                freed_request = Some((freed, shift.agency));
            }
        }
        match state.store.transact(writes).await {
            Ok(()) => {
                tracing::info!(assignment_id = %next.assignment_id, action = ?action, "assignment updated");
                if let Err(error) = notify_response(state, &next, action, freed_request).await {
                    tracing::warn!(error = %error, "assignment notification incomplete");
                }
                return Ok(AssignmentView::from(&next));
            }
            Err(StoreError::TransactionCancelled(_)) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::Conflict("the assignment is busy: try again".into()))
}

/// Marks an assignment of a cancelled request `cancelled` and frees the officer's time, together.
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
        let cancelled = Assignment {
            status: AssignmentStatus::Cancelled,
            ..current.record.clone()
        };
        let mut writes = vec![state.store.write_replace(&cancelled, current.version)?];
        if let Some(roster) = state.store.get::<Roster>(&Roster::key_of(officer_id)).await? {
            let mut freed = roster.record.clone();
            freed
                .commitments
                .retain(|c| c.assignment_id != cancelled.assignment_id);
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

// -------------------------------------------------------------------------------------- do-not-hire

/// The body of `PUT /v1/agencies/{id}/do-not-hire/{provider_id}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoNotHireInput {
    #[serde(default)]
    pub note: Option<String>,
}

/// The agency's do-not-hire entry as its admins see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DoNotHireView {
    pub agency_id: String,
    pub provider_user_id: String,
    pub added_by: String,
    pub added_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `PUT /v1/agencies/{id}/do-not-hire/{provider_id}` (an admin of the agency, or ops): the officer is
/// never matched or placed by this agency again. Shifts already held are left to dispatch.
pub async fn put_do_not_hire(
    state: &AppState,
    caller: &Caller,
    agency_id: &str,
    provider_id: &str,
    input: DoNotHireInput,
) -> Result<DoNotHireView, ApiError> {
    agencies::read(state, caller, agency_id).await?;
    let mut v = Validator::new();
    v.text("?provider_id", provider_id, 64);
    if let Some(note) = &input.note {
        v.text("/note", note, 500);
    }
    v.finish()?;
    let entry = DoNotHire {
        agency_id: agency_id.to_owned(),
        provider_user_id: provider_id.to_owned(),
        added_by: caller.user_id.clone(),
        added_at: state.clock.now(),
        note: input.note.map(|n| n.trim().to_owned()),
    };
    match state.store.get::<DoNotHire>(&entry_key(&entry)).await? {
        Some(current) => state.store.replace(&entry, current.version).await.map(|_| ()),
        None => state.store.create(&entry).await,
    }
    .map_err(|error| match error {
        StoreError::ConditionFailed => ApiError::Conflict("the list changed meanwhile: try again".into()),
        other => other.into(),
    })?;
    tracing::info!(agency_id = %agency_id, provider_user_id = %provider_id, "do-not-hire entry set");
    Ok(DoNotHireView {
        agency_id: entry.agency_id,
        provider_user_id: entry.provider_user_id,
        added_by: entry.added_by,
        added_at: entry.added_at,
        note: entry.note,
    })
}

fn entry_key(entry: &DoNotHire) -> platform::store::ItemKey {
    DoNotHire::key_of(&entry.agency_id, &entry.provider_user_id)
}

/// `DELETE /v1/agencies/{id}/do-not-hire/{provider_id}`: takes the officer off the list (idempotent).
pub async fn delete_do_not_hire(
    state: &AppState,
    caller: &Caller,
    agency_id: &str,
    provider_id: &str,
) -> Result<(), ApiError> {
    agencies::read(state, caller, agency_id).await?;
    state
        .store
        .delete(&DoNotHire::key_of(agency_id, provider_id))
        .await?;
    tracing::info!(agency_id = %agency_id, provider_user_id = %provider_id, "do-not-hire entry removed");
    Ok(())
}

// ------------------------------------------------------------------------------------------- mail

async fn send_logged(state: &AppState, recipient: &str, message: &Mail, context: &str) {
    if let Err(error) = state.mailer.send(recipient, message).await {
        tracing::warn!(error = %error, context = %context, "scheduling mail not sent");
    }
}

async fn customer_of(
    state: &AppState,
    request: &ServiceRequest,
) -> Result<Option<CustomerAccount>, ApiError> {
    Ok(accounts::customer(&state.store, &request.customer_user_id)
        .await?
        .map(|v| v.record)
        .filter(|c| c.status == AccountStatus::Active))
}

/// The officer hears of the shift; the customer hears how staffing stands.
async fn notify_placement(
    state: &AppState,
    request: &ServiceRequest,
    officer: &ProviderAccount,
    assignment: &Assignment,
) -> Result<(), ApiError> {
    let start = local(request.starts_at, &request.time_zone);
    let officer_first = mail::first_name(&officer.legal_name);
    let respond_by = assignment.respond_by.map(|by| local(by, &request.time_zone));
    let message = mail::shift_assigned(
        officer_first,
        &request.event.kind,
        &request.site.address.city,
        &start,
        respond_by.as_deref(),
    );
    send_logged(state, &officer.email, &message, &assignment.assignment_id).await;
    if let Some(customer) = customer_of(state, request).await? {
        let message = mail::staffing_changed(
            mail::first_name(&customer.name),
            &request.event.name,
            &start,
            officer_first,
            true,
            request.filled,
            request.officers,
        );
        send_logged(state, &customer.email, &message, &assignment.assignment_id).await;
    }
    Ok(())
}

/// E-mail addresses of the agency's dispatchers (admins when it has none), from the user pool.
async fn dispatch_addresses(state: &AppState, agency: &Agency) -> Vec<String> {
    let staff = if agency.settings.dispatcher_user_ids.is_empty() {
        &agency.settings.admin_user_ids
    } else {
        &agency.settings.dispatcher_user_ids
    };
    let mut addresses = Vec::new();
    for user_id in staff {
        match state.directory.user(user_id).await {
            Ok(user) => addresses.extend(user.and_then(|u| u.email)),
            Err(error) => tracing::warn!(error = %error, "dispatcher address not found"),
        }
    }
    addresses
}

/// Dispatch hears of acceptances, declines and releases; the customer of a freed slot hears too.
async fn notify_response(
    state: &AppState,
    assignment: &Assignment,
    action: Action,
    freed: Option<(ServiceRequest, Agency)>,
) -> Result<(), ApiError> {
    let verb = match action {
        Action::Accept => "accepted",
        Action::Decline => "declined",
        Action::Release => "released",
        Action::CheckIn | Action::CheckOut => return Ok(()),
    };
    let Some(officer) = provider_account(state, &assignment.officer_user_id).await? else {
        return Ok(());
    };
    let officer_first = mail::first_name(&officer.legal_name).to_owned();
    let (request, agency) = match freed {
        Some(pair) => pair,
        None => {
            let shift = load_shift(state, &assignment.request_id).await?;
            (shift.request.record, shift.agency)
        }
    };
    let start = local(request.starts_at, &request.time_zone);
    let message = mail::assignment_response(&officer_first, verb, &request.request_id, &start);
    let mut recipients: BTreeMap<String, ()> = BTreeMap::new();
    for address in dispatch_addresses(state, &agency).await {
        recipients.insert(address, ());
    }
    for address in recipients.keys() {
        send_logged(state, address, &message, &assignment.assignment_id).await;
    }
    if action != Action::Accept
        && let Some(customer) = customer_of(state, &request).await?
    {
        let message = mail::staffing_changed(
            mail::first_name(&customer.name),
            &request.event.name,
            &start,
            &officer_first,
            false,
            request.filled,
            request.officers,
        );
        send_logged(state, &customer.email, &message, &assignment.assignment_id).await;
    }
    Ok(())
}
/// `POST /v1/service-requests/{id}/cancel`: the customer cancels the request (the agency's fee
/// schedule applies by the notice given), then every officer still assigned is released and told.
pub async fn cancel_request(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    reason: &str,
) -> Result<service_requests::RequestView, ApiError> {
    let (cancelled, view) = service_requests::mark_cancelled(state, caller, request_id, reason).await?;
    release_officers_of_cancelled(state, &cancelled).await?;
    Ok(view)
}

/// Tells every officer still assigned to a cancelled request, and releases them: the mail names the
/// shift (site, city, local start) and nothing about the customer.
async fn release_officers_of_cancelled(state: &AppState, request: &ServiceRequest) -> Result<(), ApiError> {
    for assignment in crate::scheduling::assignments::of_request(&state.store, &request.request_id).await? {
        if !assignment.record.status.is_active() {
            continue;
        }
        let officer = assignment.record.officer_user_id.clone();
        cancel_assignment(state, &officer, &request.request_id).await?;
        let account = accounts::provider(&state.store, &officer).await?;
        let Some(account) = account.filter(|a| a.record.status == AccountStatus::Active) else {
            continue;
        };
        let message = mail::shift_cancelled(
            mail::first_name(&account.record.legal_name),
            &request.site.name,
            &request.site.address.city,
            &local(request.starts_at, &request.time_zone),
        );
        if let Err(error) = state.mailer.send(&account.record.email, &message).await {
            tracing::warn!(error = %error, request_id = %request.request_id, "cancellation mail not sent");
        }
    }
    Ok(())
}
