//! Agency memberships of Security Providers. An officer *applies* to an agency (at registration or
//! later) with what the agency must verify: badge or employee number, rank, hire date, and, from the
//! account, skills and licence. The membership is `pending` until an admin of that agency approves
//! it; only approved, unlapsed members are matched. A change of a verified fact sends it back to
//! `pending`; an approval lapses after the agency's re-verification period.
//!
//! This module owns the membership record (the officer's partition, encrypted under their key).
//! Scheduling decides what a decision does to pools and shifts (`scheduling::memberships`).

use super::*;
use jiff::SignedDuration;
use platform::keys::{due_day_partition, sortable_time};
use platform::store::Write;

/// Most agencies one officer may belong to (or apply to) at once: keeps the officer's reads bounded.
pub const MAX_MEMBERSHIPS: usize = 10;
/// How long before an approval lapses the agency's admins are told to re-verify.
pub const LAPSE_NOTICE_DAYS: i64 = 30;

/// Where a membership stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MembershipStatus {
    /// Applied, or a verified fact changed: waiting for the agency.
    Pending,
    /// Verified by an admin of the agency, until `valid_until`.
    Approved,
    /// Refused by the agency, with a reason.
    Rejected,
    /// Withdrawn by the agency after approval, with a reason.
    Revoked,
    /// The approval reached the end of the re-verification period.
    Lapsed,
}

impl MembershipStatus {
    /// The stable name (the index and the API use it).
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Revoked => "revoked",
            Self::Lapsed => "lapsed",
        }
    }
}

/// One officer's membership of one agency, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub user_id: String,
    pub agency_id: String,
    pub status: MembershipStatus,
    pub badge_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<String>,
    /// Orders `seniority`: only an approved (verified) hire date ranks anyone.
    pub hire_date: Date,
    pub applied_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// Why it was rejected or revoked (the agency's words, told to the officer).
    #[serde(default, rename = "decision_reason", skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When an approval lapses unless re-verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lapse_notice_sent_at: Option<Timestamp>,
    /// `AGENCY#<id>#MEMBERS#<status>`: the agency's admins list by status.
    pub gsi1pk: String,
    /// Applied time and officer: oldest applications first.
    pub gsi1sk: String,
    /// The due-date index entry that brings an approval back to the hourly run (notice, lapse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_day: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<i64>,
}

/// Sort-key prefix of an officer's memberships.
pub const MEMBERSHIP_PREFIX: &str = "MEMBERSHIP#";

impl Membership {
    /// The key of `user_id`'s membership of `agency_id`.
    pub fn key_of(user_id: &str, agency_id: &str) -> ItemKey {
        ItemKey::new(user_partition(user_id), format!("{MEMBERSHIP_PREFIX}{agency_id}"))
    }

    /// Whether it lets the officer work for the agency at `now`: approved and not lapsed.
    pub fn is_current(&self, now: Timestamp) -> bool {
        self.status == MembershipStatus::Approved && self.valid_until.is_some_and(|until| until > now)
    }

    /// Whether the approval has run out (status still `approved`, the hourly run not there yet).
    pub fn has_lapsed(&self, now: Timestamp) -> bool {
        self.status == MembershipStatus::Lapsed
            || (self.status == MembershipStatus::Approved
                && self.valid_until.is_none_or(|until| until <= now))
    }

    /// Sets the index attributes from the status and dates: the admins' list, and the next date the
    /// hourly run must look at it (the lapse notice, then the lapse itself).
    fn index(&mut self) {
        self.gsi1pk = index_partition(&self.agency_id, self.status);
        self.gsi1sk = format!("{}#{}", sortable_time(self.applied_at), self.user_id);
        let next = match (self.status, self.valid_until) {
            (MembershipStatus::Approved, Some(until)) => Some(match self.lapse_notice_sent_at {
                Some(_) => until,
                None => until - SignedDuration::from_hours(24 * LAPSE_NOTICE_DAYS),
            }),
            _ => None,
        };
        self.due_day = next.map(|at| due_day_partition(at.to_zoned_datetime(jiff::tz::TimeZone::UTC).date()));
        self.due_at = next.map(|at| at.as_second());
    }
}

impl Record for Membership {
    const TYPE: &'static ItemType = &schema::AGENCY_MEMBERSHIP;

    fn key(&self) -> ItemKey {
        Self::key_of(&self.user_id, &self.agency_id)
    }
}

fn index_partition(agency_id: &str, status: MembershipStatus) -> String {
    format!("AGENCY#{agency_id}#MEMBERS#{}", status.name())
}

/// What an officer tells an agency when applying: the facts the agency verifies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipInput {
    pub badge_number: String,
    #[serde(default)]
    pub rank: Option<String>,
    pub hire_date: Date,
}

/// A membership as the officer and the agency's admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MembershipView {
    pub agency_id: String,
    pub status: MembershipStatus,
    pub badge_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank: Option<String>,
    pub hire_date: Date,
    pub applied_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Timestamp>,
}

impl From<&Membership> for MembershipView {
    fn from(m: &Membership) -> Self {
        Self {
            agency_id: m.agency_id.clone(),
            status: m.status,
            badge_number: m.badge_number.clone(),
            rank: m.rank.clone(),
            hire_date: m.hire_date,
            applied_at: m.applied_at,
            decided_at: m.decided_at,
            reason: m.reason.clone(),
            valid_until: m.valid_until,
        }
    }
}

// ------------------------------------------------------------------------------------------ reading

/// `user_id`'s membership of `agency_id`, for scheduling.
pub async fn membership(
    store: &Store,
    user_id: &str,
    agency_id: &str,
) -> Result<Option<Versioned<Membership>>, StoreError> {
    store
        .get::<Membership>(&Membership::key_of(user_id, agency_id))
        .await
}

/// Every membership of `user_id` (at most [`MAX_MEMBERSHIPS`]).
pub async fn memberships_of(store: &Store, user_id: &str) -> Result<Vec<Versioned<Membership>>, StoreError> {
    store
        .query::<Membership>(&user_partition(user_id), MEMBERSHIP_PREFIX, MAX_MEMBERSHIPS)
        .await
}

/// The memberships of several officers of one agency, in one batched read.
pub async fn memberships_in(
    store: &Store,
    agency_id: &str,
    user_ids: &[String],
) -> Result<Vec<Membership>, StoreError> {
    let keys: Vec<ItemKey> = user_ids
        .iter()
        .map(|id| Membership::key_of(id, agency_id))
        .collect();
    Ok(store
        .batch_get::<Membership>(&keys)
        .await?
        .into_iter()
        .map(|v| v.record)
        .collect())
}

/// `GET /v1/providers/me/memberships`: the caller's memberships.
pub async fn my_memberships(state: &AppState, caller: &Caller) -> Result<Vec<MembershipView>, ApiError> {
    caller.require(Role::Provider)?;
    Ok(memberships_of(&state.store, &caller.user_id)
        .await?
        .iter()
        .map(|m| MembershipView::from(&m.record))
        .collect())
}

// ------------------------------------------------------------------------------------------ applying

fn check_input(v: &mut Validator, pointer: &str, input: &MembershipInput, today: Date) {
    v.text(&format!("{pointer}/badge_number"), &input.badge_number, 50);
    if let Some(rank) = &input.rank {
        v.text(&format!("{pointer}/rank"), rank, 50);
    }
    v.check(
        input.hire_date <= today,
        format!("{pointer}/hire_date"),
        "must not be in the future",
    );
    v.check(
        input.hire_date.year() >= 1900,
        format!("{pointer}/hire_date"),
        "must be a real hire date",
    );
}

/// A new pending membership of `user_id` at `agency_id`.
fn pending(user_id: &str, agency_id: &str, input: &MembershipInput, now: Timestamp) -> Membership {
    let mut membership = Membership {
        user_id: user_id.to_owned(),
        agency_id: agency_id.to_owned(),
        status: MembershipStatus::Pending,
        badge_number: input.badge_number.trim().to_owned(),
        rank: input.rank.as_ref().map(|r| r.trim().to_owned()),
        hire_date: input.hire_date,
        applied_at: now,
        decided_at: None,
        decided_by: None,
        reason: None,
        valid_until: None,
        lapse_notice_sent_at: None,
        gsi1pk: String::new(),
        gsi1sk: String::new(),
        due_day: None,
        due_at: None,
    };
    membership.index();
    membership
}

/// Registration's application, written in the registration's transaction (validated by the caller).
pub(super) fn application_write(
    state: &AppState,
    user_id: &str,
    agency_id: &str,
    input: &MembershipInput,
    now: Timestamp,
) -> Result<Write, StoreError> {
    state.store.write_create(&pending(user_id, agency_id, input, now))
}

/// Registration's and the membership endpoint's checks of an application.
pub(super) async fn check_application(
    state: &AppState,
    v: &mut Validator,
    pointer: &str,
    agency_id: &str,
    input: &MembershipInput,
    today: Date,
) -> Result<(), ApiError> {
    check_input(v, pointer, input, today);
    v.text(&format!("{pointer}/agency_id"), agency_id, 64);
    if !agency_id.is_empty() && agency_id.len() <= 64 && agencies::find(state, agency_id).await?.is_none() {
        v.reject(format!("{pointer}/agency_id"), "no such agency");
    }
    Ok(())
}

/// `PUT /v1/providers/me/memberships/{agency_id}`: applies to the agency, or changes the facts of an
/// application or membership. A change of badge, rank or hire date sends it back to `pending` (the
/// agency verifies again); the same facts again change nothing.
pub async fn apply(
    state: &AppState,
    caller: &Caller,
    agency_id: &str,
    input: MembershipInput,
) -> Result<MembershipView, ApiError> {
    caller.require(Role::Provider)?;
    let now = state.clock.now();
    let mut v = Validator::new();
    check_application(state, &mut v, "", agency_id, &input, validation::today(now)).await?;
    v.finish()?;
    provider(&state.store, &caller.user_id)
        .await?
        .ok_or(ApiError::NotFound("provider account"))?;
    let current = membership(&state.store, &caller.user_id, agency_id).await?;
    let fresh = pending(&caller.user_id, agency_id, &input, now);
    let written = match &current {
        Some(existing) => {
            let m = &existing.record;
            let same_facts = m.badge_number == fresh.badge_number
                && m.rank == fresh.rank
                && m.hire_date == fresh.hire_date;
            if same_facts && m.status != MembershipStatus::Rejected && m.status != MembershipStatus::Revoked {
                return Ok(MembershipView::from(m));
            }
            state.store.replace(&fresh, existing.version).await.map(|_| ())
        }
        None => {
            if memberships_of(&state.store, &caller.user_id).await?.len() >= MAX_MEMBERSHIPS {
                return Err(ApiError::Conflict(format!(
                    "an officer may belong to at most {MAX_MEMBERSHIPS} agencies"
                )));
            }
            state.store.create(&fresh).await
        }
    };
    written.map_err(|error| match error {
        StoreError::ConditionFailed => {
            ApiError::Conflict("the membership changed meanwhile: try again".into())
        }
        other => other.into(),
    })?;
    audit_membership(
        state,
        &caller.user_id,
        &caller.user_id,
        "membership.applied",
        agency_id,
        now,
    )
    .await?;
    tracing::info!(agency_id = %agency_id, "membership applied for");
    Ok(MembershipView::from(&fresh))
}

/// Withdraws the caller's application to or membership of `agency_id` (audited). Whether there was
/// one; scheduling then unlists the officer and releases their shifts there.
pub async fn withdraw(state: &AppState, caller: &Caller, agency_id: &str) -> Result<bool, ApiError> {
    caller.require(Role::Provider)?;
    let key = Membership::key_of(&caller.user_id, agency_id);
    let Some(current) = state.store.get::<Membership>(&key).await? else {
        return Ok(false);
    };
    if matches!(
        current.record.status,
        MembershipStatus::Rejected | MembershipStatus::Revoked
    ) {
        // The agency's decision stays on record; applying again (PUT) shows it the new facts.
        return Err(ApiError::Conflict(format!(
            "a {} membership stays on record: apply again to change it",
            current.record.status.name()
        )));
    }
    state.store.delete(&key).await?;
    let now = state.clock.now();
    audit_membership(
        state,
        &caller.user_id,
        &caller.user_id,
        "membership.withdrawn",
        agency_id,
        now,
    )
    .await?;
    Ok(true)
}

/// Sends every approved or lapsed membership of `user_id` back to `pending`: the officer changed a
/// fact each agency verified (skills, licence). Called by the provider correction.
pub(super) async fn unverify_all(state: &AppState, user_id: &str, now: Timestamp) -> Result<(), ApiError> {
    for current in memberships_of(&state.store, user_id).await? {
        let m = &current.record;
        if !matches!(m.status, MembershipStatus::Approved | MembershipStatus::Lapsed) {
            continue;
        }
        let mut again = m.clone();
        again.status = MembershipStatus::Pending;
        again.valid_until = None;
        again.lapse_notice_sent_at = None;
        again.applied_at = now;
        again.index();
        match state.store.replace(&again, current.version).await {
            // A decision landed meanwhile: the officer's change still stands; they may apply again.
            Ok(_) | Err(StoreError::ConditionFailed) => {}
            Err(error) => return Err(error.into()),
        }
        audit_membership(
            state,
            user_id,
            user_id,
            "membership.reverification_needed",
            &m.agency_id,
            now,
        )
        .await?;
    }
    Ok(())
}

async fn audit_membership(
    state: &AppState,
    user_id: &str,
    actor: &str,
    action: &str,
    agency_id: &str,
    now: Timestamp,
) -> Result<(), ApiError> {
    let audit = AuditRecord::new(user_id, actor, action, vec![format!("agency:{agency_id}")], now);
    state.store.create(&audit).await?;
    Ok(())
}

// ------------------------------------------------------------------------------------ the agency's side

/// One application or membership as the agency's admins see it: what they must verify.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApplicationView {
    pub provider_user_id: String,
    pub legal_name: String,
    #[serde(flatten)]
    pub membership: MembershipView,
    pub skills: Vec<Skill>,
    pub licence: Licence,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
}

/// Most applications one listing returns (oldest first).
pub const APPLICATIONS_PAGE: usize = 200;

/// `GET /v1/agencies/{id}/memberships?status=…`: the agency's memberships in one status (default
/// `pending`), oldest first, with the officer's facts to verify. Admins of the agency, or ops.
pub async fn applications(
    state: &AppState,
    caller: &Caller,
    agency_id: &str,
    status: MembershipStatus,
) -> Result<Vec<ApplicationView>, ApiError> {
    agencies::read(state, caller, agency_id).await?;
    let found = state
        .store
        .query_gsi1::<Membership>(&index_partition(agency_id, status))
        .await?;
    let found: Vec<Membership> = found
        .into_iter()
        .map(|v| v.record)
        .filter(|m| m.status == status && m.agency_id == agency_id)
        .take(APPLICATIONS_PAGE)
        .collect();
    let ids: Vec<String> = found.iter().map(|m| m.user_id.clone()).collect();
    let accounts: std::collections::HashMap<String, ProviderAccount> = providers(&state.store, &ids)
        .await?
        .into_iter()
        .map(|a| (a.user_id.clone(), a))
        .collect();
    Ok(found
        .iter()
        .filter_map(|m| {
            let account = accounts.get(&m.user_id)?;
            Some(ApplicationView {
                provider_user_id: m.user_id.clone(),
                legal_name: account.legal_name.clone(),
                membership: MembershipView::from(m),
                skills: account.skills.clone(),
                licence: account.licence.clone(),
                decided_by: m.decided_by.clone(),
            })
        })
        .collect())
}

/// What an admin decides about a membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MembershipDecision {
    /// Verified: the officer may work for the agency until the re-verification date.
    Approve,
    /// Not verified (from `pending`).
    Reject,
    /// Withdrawn after approval.
    Revoke,
}

/// The body of `POST /v1/agencies/{id}/memberships/{provider_id}/decision`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    pub decision: MembershipDecision,
    /// Required to reject or revoke: told to the officer.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Records an admin's decision on `provider_id`'s membership of `agency` (audited, the officer
/// mailed) and returns the stored membership. Scheduling calls it and then fixes pools and shifts.
pub async fn decide(
    state: &AppState,
    caller: &Caller,
    agency: &agencies::Agency,
    provider_id: &str,
    input: &DecisionInput,
) -> Result<Membership, ApiError> {
    if caller.user_id == provider_id {
        // Verification is someone else's word about you, never your own.
        return Err(ApiError::Forbidden(
            "nobody decides their own membership: another admin of the agency must".into(),
        ));
    }
    let mut v = Validator::new();
    if let Some(reason) = &input.reason {
        v.text("/reason", reason, 500);
    }
    v.check(
        input.decision == MembershipDecision::Approve
            || input.reason.as_deref().is_some_and(|r| !r.trim().is_empty()),
        "/reason",
        "say why: the officer is told",
    );
    v.finish()?;
    // The membership and the officer's account (the mail's name and address) in one BatchGetItem.
    let membership_key = Membership::key_of(provider_id, &agency.agency_id);
    let account_key = account_key(provider_id, AccountRole::Provider);
    let mut fetched = state
        .store
        .get_many(&[membership_key.clone(), account_key.clone()])
        .await?;
    let current = fetched
        .take::<Membership>(&membership_key)?
        .ok_or(ApiError::NotFound("membership"))?;
    // Only the mail needs it: an account that cannot be read holds up no decision.
    let officer = fetched
        .take::<ProviderAccount>(&account_key)
        .ok()
        .flatten()
        .map(|v| v.record);
    let now = state.clock.now();
    let before = current.record.status;
    // The same refusal twice changes nothing (scheduling then repeats its clean-up, so a retry after
    // a failure finishes it).
    let repeated = matches!(
        (input.decision, before),
        (MembershipDecision::Reject, MembershipStatus::Rejected)
            | (MembershipDecision::Revoke, MembershipStatus::Revoked)
    );
    if repeated {
        return Ok(current.record);
    }
    let allowed = match input.decision {
        // Approving an approved membership is an early re-verification: its period starts again.
        MembershipDecision::Approve => matches!(
            before,
            MembershipStatus::Pending | MembershipStatus::Lapsed | MembershipStatus::Approved
        ),
        MembershipDecision::Reject => before == MembershipStatus::Pending,
        MembershipDecision::Revoke => matches!(before, MembershipStatus::Approved | MembershipStatus::Lapsed),
    };
    if !allowed {
        return Err(ApiError::Conflict(format!(
            "a {} membership cannot be {}",
            before.name(),
            match input.decision {
                MembershipDecision::Approve => "approved",
                MembershipDecision::Reject => "rejected",
                MembershipDecision::Revoke => "revoked",
            }
        )));
    }
    let mut decided = current.record.clone();
    decided.decided_at = Some(now);
    decided.decided_by = Some(caller.user_id.clone());
    decided.lapse_notice_sent_at = None;
    match input.decision {
        MembershipDecision::Approve => {
            decided.status = MembershipStatus::Approved;
            decided.reason = None;
            let months = i64::from(agency.settings.rules.reverification_months);
            decided.valid_until = now
                .to_zoned_datetime(jiff::tz::TimeZone::UTC)
                .checked_add(jiff::Span::new().months(months))
                .ok()
                .map(|z| z.timestamp());
        }
        MembershipDecision::Reject | MembershipDecision::Revoke => {
            decided.status = if input.decision == MembershipDecision::Reject {
                MembershipStatus::Rejected
            } else {
                MembershipStatus::Revoked
            };
            decided.reason = input.reason.as_ref().map(|r| r.trim().to_owned());
            decided.valid_until = None;
        }
    }
    decided.index();
    // The decision and its audit entry, all or nothing.
    let action = format!("membership.{}", decided.status.name());
    let audit = AuditRecord::new(
        provider_id,
        &caller.user_id,
        &action,
        vec![format!("agency:{}", agency.agency_id)],
        now,
    );
    let writes = vec![
        state.store.write_replace(&decided, current.version)?,
        state.store.write_create(&audit)?,
    ];
    state.store.transact(writes).await.map_err(|error| match error {
        // The membership's version condition (first in the transaction) failed.
        StoreError::TransactionCancelled(reasons)
            if reasons.first().is_some_and(|r| r == "ConditionalCheckFailed") =>
        {
            ApiError::Conflict("the membership changed meanwhile: read it again".into())
        }
        other => other.into(),
    })?;
    tracing::info!(agency_id = %agency.agency_id, provider_user_id = %provider_id, status = decided.status.name(), "membership decided");
    if let Some(officer) = &officer {
        tell_officer(state, officer, &decided, &agency.settings.agency_name).await;
    }
    Ok(decided)
}

/// Mails the officer the state of their membership (a failed mail is logged, never an error: the
/// decision stands and the officer sees it in the app).
async fn tell_officer(
    state: &AppState,
    account: &ProviderAccount,
    membership: &Membership,
    agency_name: &str,
) {
    let (outcome, detail) = match membership.status {
        MembershipStatus::Approved => (
            "approved",
            format!(
                "You can now see and take its shifts. The agency verifies you again by {}.",
                membership
                    .valid_until
                    .map(|t| t.strftime("%Y-%m-%d").to_string())
                    .unwrap_or_default()
            ),
        ),
        MembershipStatus::Rejected => (
            "rejected",
            format!("Their reason: {}", membership.reason.as_deref().unwrap_or("")),
        ),
        MembershipStatus::Revoked => (
            "revoked",
            format!(
                "Their reason: {} Your future shifts with them were released.",
                membership.reason.as_deref().unwrap_or("")
            ),
        ),
        MembershipStatus::Lapsed => (
            "let lapse",
            "The agency did not verify you again in time; ask them to. Your future shifts with them were released."
                .to_owned(),
        ),
        MembershipStatus::Pending => return,
    };
    let message = mail::membership_decided(
        mail::first_name(&account.legal_name),
        agency_name,
        outcome,
        &detail,
    );
    if let Err(error) = crate::mail::send_service(state, &account.email, &message).await {
        tracing::warn!(error = %error, "membership mail not sent");
    }
}

/// What the hourly run did with one due membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LapseStep {
    /// Not due (changed meanwhile, or not approved any more).
    Nothing,
    /// The agency's admins must be told it lapses at `valid_until` (marked as told).
    NoticeDue(Membership),
    /// It lapsed now (stored as `lapsed`, the officer mailed).
    Lapsed(Membership),
}

/// The hourly run's step for the membership at `key` (found on the due-date index): mark the lapse
/// notice sent when its day has come, or mark the approval lapsed when it ran out.
pub async fn lapse_step(state: &AppState, key: &ItemKey) -> Result<LapseStep, ApiError> {
    let Some(current) = state.store.get::<Membership>(key).await? else {
        return Ok(LapseStep::Nothing);
    };
    let now = state.clock.now();
    let m = &current.record;
    let Some(until) = m.valid_until.filter(|_| m.status == MembershipStatus::Approved) else {
        return Ok(LapseStep::Nothing);
    };
    let mut next = m.clone();
    let step = if until <= now {
        next.status = MembershipStatus::Lapsed;
        next.decided_at = Some(now);
        next.decided_by = Some("system".into());
        next.index();
        LapseStep::Lapsed(next.clone())
    } else if m.lapse_notice_sent_at.is_none()
        && until - SignedDuration::from_hours(24 * LAPSE_NOTICE_DAYS) <= now
    {
        next.lapse_notice_sent_at = Some(now);
        next.index();
        LapseStep::NoticeDue(next.clone())
    } else {
        return Ok(LapseStep::Nothing);
    };
    match state.store.replace(&next, current.version).await {
        Ok(_) => {}
        // Decided meanwhile (re-approved, revoked): the next run looks again.
        Err(StoreError::ConditionFailed) => return Ok(LapseStep::Nothing),
        Err(error) => return Err(error.into()),
    }
    if let LapseStep::Lapsed(lapsed) = &step {
        audit_membership(
            state,
            &lapsed.user_id,
            "system",
            "membership.lapsed",
            &lapsed.agency_id,
            now,
        )
        .await?;
        if let Some(agency) = agencies::find(state, &lapsed.agency_id).await?
            && let Ok(Some(officer)) = provider(&state.store, &lapsed.user_id).await
        {
            tell_officer(state, &officer.record, lapsed, &agency.settings.agency_name).await;
        }
    }
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approved(until: &str) -> Membership {
        let input = MembershipInput {
            badge_number: "B-1".into(),
            rank: None,
            hire_date: "2015-04-01".parse().expect("date"),
        };
        let mut m = pending(
            "officer",
            "agency",
            &input,
            "2026-01-01T00:00:00Z".parse().expect("time"),
        );
        m.status = MembershipStatus::Approved;
        m.valid_until = Some(until.parse().expect("time"));
        m.index();
        m
    }

    #[test]
    fn an_approval_is_current_until_it_lapses_and_comes_due_thirty_days_ahead_then_at_the_lapse() {
        let m = approved("2027-01-31T00:00:00Z");
        assert!(m.is_current("2027-01-30T23:59:59Z".parse().expect("time")));
        assert!(!m.is_current("2027-01-31T00:00:00Z".parse().expect("time")));
        assert!(m.has_lapsed("2027-01-31T00:00:00Z".parse().expect("time")));
        let notice: Timestamp = "2027-01-01T00:00:00Z".parse().expect("time");
        assert_eq!(m.due_at, Some(notice.as_second()));
        assert_eq!(m.due_day.as_deref(), Some("DUE#2027-01"));
        let mut told = m.clone();
        told.lapse_notice_sent_at = Some(notice);
        told.index();
        assert_eq!(
            told.due_at,
            Some(m.valid_until.map(|t| t.as_second()).unwrap_or_default())
        );
        assert_eq!(told.gsi1pk, "AGENCY#agency#MEMBERS#approved");
    }

    #[test]
    fn pending_rejected_and_revoked_memberships_are_not_current_and_not_due() {
        for status in [
            MembershipStatus::Pending,
            MembershipStatus::Rejected,
            MembershipStatus::Revoked,
        ] {
            let mut m = approved("2030-01-01T00:00:00Z");
            m.status = status;
            m.index();
            assert!(!m.is_current("2027-01-01T00:00:00Z".parse().expect("time")));
            assert_eq!(m.due_at, None);
            assert_eq!(m.gsi1pk, format!("AGENCY#agency#MEMBERS#{}", status.name()));
        }
    }
}
