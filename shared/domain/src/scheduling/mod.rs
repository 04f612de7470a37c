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

mod actions;
mod do_not_hire;
mod lifecycle;
mod memberships;
mod notices;
mod offers;
mod placement;
mod timesheets;

pub use actions::{
    Action, CustomerAssignmentView, MAX_RELEASED_PER_CALL, RequestAssignments, act, act_or_replay,
    cancel_assignment, release_future_shifts, request_assignments,
};
pub use do_not_hire::{DoNotHireInput, DoNotHireView, delete_do_not_hire, put_do_not_hire};
pub use lifecycle::{RequestReview, review_request};
pub use memberships::{MembershipReview, decide_membership, leave_agency, review_membership};
pub use notices::{cancel_for_erasure, cancel_request, cancel_request_or_replay};
pub use offers::{OpenShift, availability, open_shifts, put_availability, relist};
pub use placement::{AssignInput, AutoAssignInput, AutoAssignReport, Pick, Skip, assign, auto_assign, claim};
pub use timesheets::{TimesheetApproval, approve_timesheet, approve_timesheet_or_replay, submit_timesheet};

// Helpers one part defines and another uses (the parts see this module's items through `super`).

use notices::{Told, notify_placement, notify_response};

use crate::accounts::memberships::Membership;
use crate::accounts::{self, AccountStatus, CustomerAccount, ProviderAccount};
use crate::agencies::{self, Agency, AssignmentMode};
use crate::mail;
use crate::scheduling::assignments::{
    AssignedBy, Assignment, AssignmentPointer, AssignmentStatus, AssignmentView,
};
use crate::scheduling::availability::Availability;
use crate::scheduling::eligibility::{Candidate, Exclusion};
use crate::scheduling::roster::{
    Commitment, DO_NOT_HIRE_PREFIX, DoNotHire, DoNotHirePointer, PoolEntry, Roster, WorkedShift,
};
use crate::service_requests::{self, RequestPointer, ServiceRequest, Status, local};
use edge::auth::{Caller, Role};
use edge::error::ApiError;
use edge::validation::Validator;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use platform::AppState;
use platform::keys::{agency_partition, sortable_time};
use platform::mailer::Mail;
use platform::store::{Record, StoreError, Versioned};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How often a placement re-reads and retries after losing a race before answering 409. Each lost
/// race means someone else's placement on the same request or officer committed, so a request with
/// `n` slots makes a claimant lose at most `n` times before it sees the request full.
const MAX_ATTEMPTS: usize = 120;
/// Check-in opens this long before the shift starts: time to reach the post, not an extra billed
/// hour (a timesheet that starts earlier than the shift is flagged for the approver).
const CHECK_IN_OPENS_BEFORE: SignedDuration = SignedDuration::from_mins(15);
/// How far ahead `open-shifts` looks by default, and at most.
const OPEN_SHIFTS_DEFAULT_DAYS: u32 = 14;
const OPEN_SHIFTS_MAX_DAYS: u32 = 60;

fn ineligible(exclusion: Exclusion) -> ApiError {
    ApiError::Ineligible {
        rule: exclusion.rule(),
        detail: exclusion.explain().to_owned(),
    }
}

/// The rule name the agency's staff see: that an officer restricted processing of their data or is
/// being deleted is theirs to know, so staff read `not_eligible` (the officer sees their own rule;
/// privacy officers see the request behind it).
fn rule_for_staff(rule: &'static str) -> &'static str {
    if rule == Exclusion::AccountNotActive.rule() {
        "not_eligible"
    } else {
        rule
    }
}

/// [`ineligible`] as the agency's staff see it (see [`rule_for_staff`]).
fn for_staff(error: ApiError) -> ApiError {
    match error {
        ApiError::Ineligible { rule, .. } if rule == Exclusion::AccountNotActive.rule() => {
            ApiError::Ineligible {
                rule: rule_for_staff(rule),
                detail: "the officer cannot be assigned at present".to_owned(),
            }
        }
        other => other,
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
