//! Erasure of a user: the machinery behind a deletion request, the deletion of a minor's data and
//! the retention purge. It removes every item of the user (their partition, their access log, the
//! items elsewhere that point at them), the Cognito user, and finally their branch key
//! (crypto-shredding), except the records the law makes us keep (tax and payment records), which stay
//! encrypted until their retention ends; the job then waits on the due-date index to shred the key.
//!
//! It runs as a resumable job: its progress is a record (`ERASURE#<user id>`) checkpointed after
//! every step, and every step is idempotent, so running it again after a crash at any point finishes
//! the work and never corrupts. [`run`] takes an operation budget and stops when it is spent: a
//! bounded batch for scheduled runs, and a crash at any operation for the tests.

use crate::accounts::{self, AccountRole, AccountStatus, EmailLock, StatusChange};
use crate::scheduling::assignments::{Assignment, AssignmentPointer};
use crate::scheduling::roster::{PoolEntry, Roster};
use crate::service_requests::ServiceRequest;
use edge::access_log;
use edge::auth::{Caller, Role};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use platform::AppState;
use platform::keys::{due_day_partition, user_partition};
use platform::retention::RetentionClass;
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record, StoreError};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why the data is erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasureReason {
    /// The user asked (a deletion request).
    Request,
    /// The data was found to belong to someone under 18: nothing is kept.
    Minor,
}

/// Where an erasure job is. Steps run in this order; each is idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasureStep {
    /// Accounts marked `deletion_pending`: nothing matches, mails or exports them meanwhile.
    MarkPending,
    /// Future shifts released; e-mail locks, pool entries, pointers and the access log deleted.
    DeleteLinked,
    /// Every item of the user's partition deleted except retained records.
    DeletePartition,
    /// The user deleted from the user pool (it holds e-mail and phone).
    DeleteIdentity,
    /// The branch key destroyed, or, while retained records live, scheduled for when they expire.
    Shred,
    /// Nothing is left but the retained records (if any) and this job record.
    Done,
}

/// A category of records kept after erasure, with its legal basis and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetainedCategory {
    pub category: String,
    pub legal_basis: String,
    pub items: usize,
    /// The last day any of these records is kept.
    pub until: Option<jiff::civil::Date>,
}

/// The persistent state of one user's erasure (no personal data: ids, steps, categories, dates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureJob {
    pub user_id: String,
    pub reason: ErasureReason,
    pub step: ErasureStep,
    pub requested_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default)]
    pub retained: Vec<RetainedCategory>,
    /// When the branch key may be shredded (the last retained record's expiry); `None` once shredded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shred_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    /// The due-date index entry that brings the job back to shred the key (`DUE#<year-month>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_day: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<i64>,
}

impl ErasureJob {
    /// The key of `user_id`'s erasure job.
    pub fn key_of(user_id: &str) -> ItemKey {
        ItemKey::new(format!("ERASURE#{user_id}"), "JOB".to_owned())
    }
}

impl Record for ErasureJob {
    const TYPE: &'static ItemType = &schema::ERASURE_JOB;

    fn key(&self) -> ItemKey {
        Self::key_of(&self.user_id)
    }

    /// The record of an erasure is kept 24 months after the last thing it did: while shredding is
    /// still scheduled (retained records live), it does not expire at all.
    fn retention_start(&self) -> Option<Timestamp> {
        match (self.step, self.shred_at) {
            (ErasureStep::Done, None) => Some(self.updated_at),
            _ => None,
        }
    }
}

/// Erasure failures.
#[derive(Debug, Error)]
pub enum ErasureError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("key store: {0}")]
    Keys(#[from] platform::crypto::CryptoError),
    #[error("user pool: {0}")]
    Identity(String),
    #[error("lookup: {0}")]
    Lookup(#[from] platform::lookup::LookupError),
    /// The payment processor could not delete the customer (retried when the job resumes).
    #[error("payment processor: {0}")]
    Processor(String),
    #[error("revoking the sign-in: {0}")]
    Revocation(#[from] edge::revocation::RevocationError),
    /// The overdue-request alert of the scheduled run failed (see the log line before it).
    #[error("overdue alert: {0}")]
    Alert(String),
}

impl From<ErasureError> for edge::ApiError {
    fn from(error: ErasureError) -> Self {
        match error {
            ErasureError::Store(error) => Self::Store(error),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// The erasure job of `user_id`, if one was ever started (and its record is still kept).
pub async fn job_of(state: &AppState, user_id: &str) -> Result<Option<ErasureJob>, StoreError> {
    Ok(state
        .store
        .get::<ErasureJob>(&ErasureJob::key_of(user_id))
        .await?
        .map(|v| v.record))
}

/// Starts (or finds) the erasure job of `user_id`. Idempotent: a second request finds the first job.
/// First of all, the person's sign-in stops writing (`edge::revocation`).
pub async fn start(
    state: &AppState,
    user_id: &str,
    reason: ErasureReason,
) -> Result<ErasureJob, ErasureError> {
    edge::revocation::revoke(state, user_id).await?;
    if let Some(job) = state
        .store
        .get::<ErasureJob>(&ErasureJob::key_of(user_id))
        .await?
    {
        return Ok(job.record);
    }
    let now = state.clock.now();
    let job = ErasureJob {
        user_id: user_id.to_owned(),
        reason,
        step: ErasureStep::MarkPending,
        requested_at: now,
        updated_at: now,
        retained: Vec::new(),
        shred_at: None,
        completed_at: None,
        due_day: None,
        due_at: None,
    };
    match state.store.create(&job).await {
        Ok(()) => Ok(job),
        Err(StoreError::ConditionFailed) => Ok(state
            .store
            .get::<ErasureJob>(&ErasureJob::key_of(user_id))
            .await?
            .map(|v| v.record)
            .unwrap_or(job)),
        Err(error) => Err(error.into()),
    }
}

/// Counts operations against a budget; a spent budget stops the job where it is.
struct Budget(usize);

impl Budget {
    fn spend(&mut self) -> bool {
        if self.0 == 0 {
            return false;
        }
        self.0 -= 1;
        true
    }
}

/// What a run achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The budget ran out; run again to continue.
    Paused(ErasureStep),
    /// Erased (the key is shredded, or scheduled to be once the retained records expire).
    Done(ErasureJob),
}

/// Runs `user_id`'s erasure job for at most `max_operations` writes and deletes. Safe to call any
/// number of times, concurrently with nothing else on that user.
pub async fn run(state: &AppState, user_id: &str, max_operations: usize) -> Result<Progress, ErasureError> {
    let Some(current) = state
        .store
        .get::<ErasureJob>(&ErasureJob::key_of(user_id))
        .await?
    else {
        return Err(ErasureError::Store(StoreError::Decode(
            "no erasure job for this user".into(),
        )));
    };
    let mut version = current.version;
    let mut job = current.record;
    let mut budget = Budget(max_operations);
    while job.step != ErasureStep::Done {
        let finished = match job.step {
            ErasureStep::MarkPending => mark_pending(state, user_id, &mut budget).await?,
            ErasureStep::DeleteLinked => delete_linked(state, user_id, &mut budget).await?,
            ErasureStep::DeletePartition => delete_partition(state, &mut job, &mut budget).await?,
            ErasureStep::DeleteIdentity => delete_identity(state, user_id, &mut budget).await?,
            ErasureStep::Shred => shred(state, &mut job, &mut budget).await?,
            ErasureStep::Done => true,
        };
        if !finished {
            return Ok(Progress::Paused(job.step));
        }
        job.step = next(job.step);
        job.updated_at = state.clock.now();
        if job.step == ErasureStep::Done {
            job.completed_at = Some(job.updated_at);
        }
        version = state.store.replace(&job, version).await?;
        tracing::info!(step = ?job.step, "erasure step done");
    }
    Ok(Progress::Done(job))
}

fn next(step: ErasureStep) -> ErasureStep {
    match step {
        ErasureStep::MarkPending => ErasureStep::DeleteLinked,
        ErasureStep::DeleteLinked => ErasureStep::DeletePartition,
        ErasureStep::DeletePartition => ErasureStep::DeleteIdentity,
        ErasureStep::DeleteIdentity => ErasureStep::Shred,
        ErasureStep::Shred | ErasureStep::Done => ErasureStep::Done,
    }
}

async fn mark_pending(state: &AppState, user_id: &str, budget: &mut Budget) -> Result<bool, ErasureError> {
    for role in [AccountRole::Customer, AccountRole::Provider] {
        let change = accounts::set_status(
            &state.store,
            user_id,
            role,
            |s| s != AccountStatus::DeletionPending,
            AccountStatus::DeletionPending,
            || budget.spend(),
        )
        .await?;
        if change == StatusChange::NotPermitted {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Deletes the items at `keys` that still exist, one budget unit each. Keys are derived again on
/// every run (from items deleted only in a later step), so an absent item must cost nothing, or a
/// small budget would spend itself on the same absent item forever.
async fn delete_keys(
    state: &AppState,
    keys: Vec<ItemKey>,
    budget: &mut Budget,
) -> Result<bool, ErasureError> {
    for key in keys {
        if !state.store.exists(&key).await? {
            continue;
        }
        if !budget.spend() {
            return Ok(false);
        }
        state.store.delete(&key).await?;
    }
    Ok(true)
}

/// Items outside the user's partition that are about the user, found from the partition itself.
async fn delete_linked(state: &AppState, user_id: &str, budget: &mut Budget) -> Result<bool, ErasureError> {
    let now = state.clock.now();
    // Future shifts the officer holds are released first, so requests stay consistent (the slot
    // reopens) instead of counting an officer who no longer exists.
    let officer = Caller::acting_for(user_id, Role::Provider);
    let assignments = state
        .store
        .query::<Assignment>(&user_partition(user_id), "ASSIGNMENT#", usize::MAX)
        .await?;
    for assignment in &assignments {
        let a = &assignment.record;
        if a.status.is_active()
            && a.starts_at > now
            && a.status != crate::scheduling::assignments::AssignmentStatus::CheckedIn
        {
            if !budget.spend() {
                return Ok(false);
            }
            match crate::scheduling::act(
                state,
                &officer,
                &a.assignment_id,
                crate::scheduling::Action::Release,
            )
            .await
            {
                Ok(_) | Err(edge::ApiError::Conflict(_)) | Err(edge::ApiError::NotFound(_)) => {}
                Err(edge::ApiError::Store(error)) => return Err(error.into()),
                Err(other) => return Err(ErasureError::Identity(other.to_string())),
            }
        }
    }
    // The customer's requests still to come or under way are cancelled (no fee) and their officers
    // released and told (the shift only), before the pointers that lead to them go.
    for request in state
        .store
        .query::<ServiceRequest>(&user_partition(user_id), "REQUEST#", usize::MAX)
        .await?
    {
        let r = &request.record;
        if r.ends_at <= now || !r.status.can_become(crate::service_requests::Status::Cancelled) {
            continue;
        }
        if !budget.spend() {
            return Ok(false);
        }
        match crate::scheduling::cancel_for_erasure(state, &r.request_id).await {
            Ok(()) | Err(edge::ApiError::NotFound(_)) => {}
            // Busy: this step is not done; the job resumes here.
            Err(edge::ApiError::Conflict(_)) => return Ok(false),
            Err(edge::ApiError::Store(error)) => return Err(error.into()),
            Err(other) => return Err(ErasureError::Identity(other.to_string())),
        }
    }
    // The customer at the payment processor goes too, with the cards saved there; the charges and
    // invoices stay here, as payment records.
    if crate::payments::has_processor_customer(state, user_id).await? {
        if !budget.spend() {
            return Ok(false);
        }
        match crate::payments::forget_customer(state, user_id).await {
            Ok(()) => {}
            Err(edge::ApiError::Store(error)) => return Err(error.into()),
            Err(other) => return Err(ErasureError::Processor(other.to_string())),
        }
    }
    let mut keys: Vec<ItemKey> = assignments
        .iter()
        .map(|a| AssignmentPointer::key_of(&a.record.assignment_id))
        .collect();
    for request in state
        .store
        .query::<ServiceRequest>(&user_partition(user_id), "REQUEST#", usize::MAX)
        .await?
    {
        keys.push(ItemKey::new(
            format!("REQUEST#{}", request.record.request_id),
            "REF".to_owned(),
        ));
    }
    // Do-not-hire entries about the officer (their notes describe the person) go too.
    for pointer in state
        .store
        .query::<crate::scheduling::roster::DoNotHirePointer>(
            &user_partition(user_id),
            crate::scheduling::roster::DO_NOT_HIRE_PREFIX,
            usize::MAX,
        )
        .await?
    {
        keys.push(crate::scheduling::roster::DoNotHire::key_of(
            &pointer.record.agency_id,
            user_id,
        ));
    }
    if let Some(roster) = state.store.get::<Roster>(&Roster::key_of(user_id)).await? {
        for agency_id in &roster.record.agency_ids {
            for pool_key in &roster.record.pool_keys {
                keys.push(PoolEntry::key_of(agency_id, pool_key, &roster.record.pool_token));
            }
        }
    }
    for (role, email) in account_emails(state, user_id).await? {
        let hash = state.lookup.email_hash(&email).await?;
        let lock = EmailLock::key_for(role.name(), &hash);
        if state
            .store
            .get::<EmailLock>(&lock)
            .await?
            .is_some_and(|l| l.record.owner_user_id == user_id)
        {
            keys.push(lock);
        }
    }
    for entry in access_log::entries_of(&state.store, user_id, usize::MAX).await? {
        keys.push(entry.key());
    }
    delete_keys(state, keys, budget).await
}

async fn account_emails(state: &AppState, user_id: &str) -> Result<Vec<(AccountRole, String)>, ErasureError> {
    let mut emails = Vec::new();
    if let Some(a) = accounts::customer(&state.store, user_id).await? {
        emails.push((AccountRole::Customer, a.record.email));
    }
    if let Some(a) = accounts::provider(&state.store, user_id).await? {
        emails.push((AccountRole::Provider, a.record.email));
    }
    Ok(emails)
}

/// Whether items of `item_type` survive a deletion request (the law makes us keep them).
fn retained_by_law(item_type: &ItemType, reason: ErasureReason) -> bool {
    reason == ErasureReason::Request
        && matches!(
            item_type.retention,
            RetentionClass::TaxRecord | RetentionClass::PaymentRecord
        )
}

async fn delete_partition(
    state: &AppState,
    job: &mut ErasureJob,
    budget: &mut Budget,
) -> Result<bool, ErasureError> {
    let items = state
        .store
        .keys_in_partition(&user_partition(&job.user_id))
        .await?;
    let mut retained: Vec<RetainedCategory> = Vec::new();
    let mut doomed = Vec::new();
    for (key, item_type, expires_at) in items {
        match schema::item_type(&item_type) {
            Some(t) if retained_by_law(t, job.reason) => {
                let until = expires_at
                    .and_then(|s| Timestamp::from_second(s).ok())
                    .map(|at| at.to_zoned_datetime(TimeZone::UTC).date());
                match retained.iter_mut().find(|c| c.category == t.name) {
                    Some(category) => {
                        category.items += 1;
                        category.until = category.until.max(until);
                    }
                    None => retained.push(RetainedCategory {
                        category: t.name.to_owned(),
                        legal_basis: t.retention.legal_basis().to_owned(),
                        items: 1,
                        until,
                    }),
                }
            }
            _ => doomed.push(key),
        }
    }
    if !delete_keys(state, doomed, budget).await? {
        return Ok(false);
    }
    job.retained = retained;
    Ok(true)
}

async fn delete_identity(state: &AppState, user_id: &str, budget: &mut Budget) -> Result<bool, ErasureError> {
    if !budget.spend() {
        return Ok(false);
    }
    state
        .directory
        .delete_user(user_id)
        .await
        .map_err(|error| ErasureError::Identity(error.to_string()))?;
    // A token issued just before the deletion lives up to an hour more: the marker's clock starts now.
    edge::revocation::identity_deleted(state, user_id).await?;
    Ok(true)
}

/// Shreds the key when nothing retained is left; otherwise schedules the shredding on the due-date
/// index for the day the last retained record expires.
async fn shred(state: &AppState, job: &mut ErasureJob, budget: &mut Budget) -> Result<bool, ErasureError> {
    match shred_after(&job.retained, state.clock.now()) {
        Some(at) => {
            job.shred_at = Some(at);
            job.due_day = Some(due_day_partition(at.to_zoned_datetime(TimeZone::UTC).date()));
            job.due_at = Some(at.as_second());
            Ok(true)
        }
        None => {
            if !budget.spend() {
                return Ok(false);
            }
            state.keys.shred_user(&job.user_id).await?;
            job.shred_at = None;
            job.due_day = None;
            job.due_at = None;
            Ok(true)
        }
    }
}

/// When the key may be shredded: the start of the day after the last retained record's last day, if
/// that is still ahead of `now`; `None` when it may be shredded now (nothing retained, or all expired).
fn shred_after(retained: &[RetainedCategory], now: Timestamp) -> Option<Timestamp> {
    retained
        .iter()
        .filter_map(|c| c.until)
        .max()
        .and_then(|d| d.tomorrow().ok())
        .and_then(|d| d.to_zoned_datetime(TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .filter(|at| *at > now)
}

/// The retention end of an erased user: once the retained records' period is over (`shred_at`),
/// deletes what is left of the user's partition and destroys the branch key. Called by the retention
/// purge for jobs it finds on the due-date index; idempotent. Returns whether the key was shredded.
pub async fn finish_retention(
    state: &AppState,
    user_id: &str,
    max_operations: usize,
) -> Result<bool, ErasureError> {
    let Some(current) = state
        .store
        .get::<ErasureJob>(&ErasureJob::key_of(user_id))
        .await?
    else {
        return Ok(false);
    };
    let now = state.clock.now();
    let mut job = current.record;
    match job.shred_at {
        Some(at) if at <= now && job.step == ErasureStep::Done => {}
        _ => return Ok(false),
    }
    let mut budget = Budget(max_operations);
    let leftovers: Vec<ItemKey> = state
        .store
        .keys_in_partition(&user_partition(user_id))
        .await?
        .into_iter()
        .map(|(key, _, _)| key)
        .collect();
    if !delete_keys(state, leftovers, &mut budget).await? {
        return Ok(false);
    }
    if !budget.spend() {
        return Ok(false);
    }
    state.keys.shred_user(user_id).await?;
    job.shred_at = None;
    job.due_day = None;
    job.due_at = None;
    job.retained.clear();
    job.updated_at = now;
    state.store.replace(&job, current.version).await?;
    tracing::info!("retained records expired: erased user's key shredded");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn the_steps_run_in_order_and_the_key_goes_last() {
        let mut step = ErasureStep::MarkPending;
        let mut order = vec![step];
        while step != ErasureStep::Done {
            step = next(step);
            order.push(step);
        }
        assert_eq!(
            order,
            [
                ErasureStep::MarkPending,
                ErasureStep::DeleteLinked,
                ErasureStep::DeletePartition,
                ErasureStep::DeleteIdentity,
                ErasureStep::Shred,
                ErasureStep::Done
            ]
        );
    }

    #[test]
    fn the_law_keeps_tax_and_payment_records_of_a_request_and_nothing_of_a_minor() {
        for item_type in schema::ITEM_TYPES {
            let kept = matches!(
                item_type.retention,
                RetentionClass::TaxRecord | RetentionClass::PaymentRecord
            );
            assert_eq!(
                retained_by_law(item_type, ErasureReason::Request),
                kept,
                "{}",
                item_type.name
            );
            assert!(
                !retained_by_law(item_type, ErasureReason::Minor),
                "{}",
                item_type.name
            );
        }
    }

    #[test]
    fn the_key_is_shredded_the_day_after_the_last_retained_record_ends() {
        let now: Timestamp = "2026-12-01T12:00:00Z".parse().expect("time");
        let category = |until| RetainedCategory {
            category: "w9_record".into(),
            legal_basis: "legal obligation".into(),
            items: 1,
            until,
        };
        assert_eq!(shred_after(&[], now), None, "nothing retained: shred now");
        let later = [
            category(Some(date(2033, 11, 30))),
            category(Some(date(2031, 1, 1))),
        ];
        assert_eq!(
            shred_after(&later, now),
            Some("2033-12-01T00:00:00Z".parse().expect("time"))
        );
        let expired = [category(Some(date(2026, 11, 30)))];
        assert_eq!(shred_after(&expired, now), None, "already expired: shred now");
    }

    #[test]
    fn a_budget_allows_exactly_its_operations() {
        let mut budget = Budget(2);
        assert!(budget.spend() && budget.spend());
        assert!(!budget.spend());
    }
}
