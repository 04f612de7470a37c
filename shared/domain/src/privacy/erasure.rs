//! Erasure of a user: the machinery behind a deletion request, the deletion of a minor's data and
//! the retention purge. It removes every item of the user (their partition, their access log, the
//! items elsewhere that point at them), the Cognito user, and finally their branch key
//! (crypto-shredding), except the records the law makes us keep (tax and payment records), which stay
//! encrypted until their retention ends; the job then waits on the due-date index to shred the key.
//!
//! It runs as a resumable job, off the request path (the privacy worker, `crate::privacy::jobs`): its
//! progress is a record (`ERASURE#<user id>`) checkpointed after every step and whenever a budget
//! runs out, and every step is idempotent, so running it again after a crash at any point finishes
//! the work and never corrupts. [`run`] takes an operation budget and stops when it is spent: one
//! worker invocation's slice, and a crash at any operation for the tests.
//!
//! The proof is measured, not bookkept: the first step counts every item about the person (their
//! partition by type, their access log, the items elsewhere that point at them), and the finished
//! job's [`ErasureReport`] sets those counts against what is left (the kept records, with their legal
//! basis and last day) and says what happened to the user-pool user, the processor's customer and the
//! key.

use crate::accounts::{self, AccountRole, AccountStatus, EmailLock, StatusChange};
use crate::scheduling::assignments::{Assignment, AssignmentPointer};
use crate::scheduling::roster::{PoolEntry, Roster};
use crate::service_requests::ServiceRequest;
use edge::auth::{Caller, Role};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use platform::AppState;
use platform::keys::{due_day_partition, user_partition};
use platform::retention::RetentionClass;
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;

/// Why the data is erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasureReason {
    /// The user asked (a deletion request).
    Request,
    /// The data was found to belong to someone under 18 (a reported case, two privacy officers):
    /// everything goes but what the law keeps.
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

/// One item type in an erasure report: how many there were, how many went, how many the law keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemTypeCount {
    pub item_type: String,
    pub found: usize,
    pub deleted: usize,
    pub kept: usize,
    /// Why the kept ones are kept (only when some are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_basis: Option<String>,
    /// The last day any kept one is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_until: Option<jiff::civil::Date>,
}

/// What became of the person's customer record at the payment processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessorCustomerFate {
    /// They never paid through us: there was none.
    NoneExisted,
    /// Deleted at the processor (with the cards saved there).
    Deleted,
}

/// The proof a finished erasure carries (ids, counts and dates only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureReport {
    /// Per item type, sorted by name.
    pub items: Vec<ItemTypeCount>,
    /// When the user-pool user (e-mail, phone, password) was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_deleted_at: Option<Timestamp>,
    pub processor_customer: ProcessorCustomerFate,
    /// When the person's key was destroyed (every copy of what it protected, backups included, is
    /// unreadable from then on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_shredded_at: Option<Timestamp>,
    /// While kept records live: when the key will be destroyed (the day after the last one ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_shred_scheduled_at: Option<Timestamp>,
    /// Until when the key-store table's point-in-time recovery still holds a copy of the destroyed
    /// key (35 days): a restore within it is reconciled against the shred ledger, which destroys
    /// the key again before the restored table is used (see the README, "Crypto-shredding").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_restorable_until: Option<Timestamp>,
}

/// The persistent state of one user's erasure (no personal data: ids, steps, categories, dates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureJob {
    pub user_id: String,
    pub reason: ErasureReason,
    pub step: ErasureStep,
    pub requested_at: Timestamp,
    pub updated_at: Timestamp,
    /// The privacy request this job carries out (its result gets the report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Who asked: the subject, or the privacy officer deleting a minor's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// For a minor's deletion: the case it answers (an inquiry id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_reference: Option<String>,
    #[serde(default)]
    pub retained: Vec<RetainedCategory>,
    /// Items about the person per item type, counted before anything was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found: Option<BTreeMap<String, usize>>,
    /// Items still found outside the kept records when the job checked at the end (0 unless
    /// something wrote about the person meanwhile; then the next run deletes them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leftovers: Option<BTreeMap<String, usize>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_deleted_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processor_customer: Option<ProcessorCustomerFate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_shredded_at: Option<Timestamp>,
    /// Worker slices spent so far.
    #[serde(default)]
    pub slices: u32,
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

    /// The proof of what the job did, from its counts (complete once the step is `Done`).
    pub fn report(&self) -> ErasureReport {
        let found = self.found.clone().unwrap_or_default();
        let leftovers = self.leftovers.clone().unwrap_or_default();
        let mut names: Vec<&String> = found.keys().chain(leftovers.keys()).collect();
        names.extend(self.retained.iter().map(|c| &c.category));
        names.sort();
        names.dedup();
        let items = names
            .into_iter()
            .map(|name| {
                let kept_category = self.retained.iter().find(|c| &c.category == name);
                let kept = kept_category.map_or(0, |c| c.items) + leftovers.get(name).copied().unwrap_or(0);
                let found = found.get(name).copied().unwrap_or(0).max(kept);
                ItemTypeCount {
                    item_type: name.clone(),
                    found,
                    deleted: found - kept,
                    kept,
                    legal_basis: kept_category.map(|c| c.legal_basis.clone()),
                    kept_until: kept_category.and_then(|c| c.until),
                }
            })
            .collect();
        ErasureReport {
            items,
            identity_deleted_at: self.identity_deleted_at,
            processor_customer: self
                .processor_customer
                .unwrap_or(ProcessorCustomerFate::NoneExisted),
            key_shredded_at: self.key_shredded_at,
            key_restorable_until: self.key_shredded_at.map(|at| at + KEY_STORE_RECOVERY_WINDOW),
            key_shred_scheduled_at: self.shred_at,
        }
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

/// Who asked for an erasure, and why: what [`start`] records on the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureOrder {
    pub reason: ErasureReason,
    /// The privacy request the job carries out.
    pub request_id: Option<String>,
    /// The subject, or the privacy officer.
    pub requested_by: String,
    /// A minor's deletion: the case it answers.
    pub case_reference: Option<String>,
}

impl ErasureOrder {
    /// An erasure no privacy request tracks (the retention purge's and the tests' own), asked by
    /// `requested_by`.
    pub fn without_request(reason: ErasureReason, requested_by: &str) -> Self {
        Self {
            reason,
            request_id: None,
            requested_by: requested_by.to_owned(),
            case_reference: None,
        }
    }
}

/// Starts (or finds) the erasure job of `user_id`. Idempotent: a second request finds the first job
/// (a minor's deletion that finds a subject's own deletion not yet past its partition step makes it
/// keep nothing). First of all, the person's sign-in stops writing (`edge::revocation`).
pub async fn start(state: &AppState, user_id: &str, order: ErasureOrder) -> Result<ErasureJob, ErasureError> {
    edge::revocation::revoke(state, user_id).await?;
    if let Some(existing) = state
        .store
        .get::<ErasureJob>(&ErasureJob::key_of(user_id))
        .await?
    {
        let mut job = existing.record;
        if order.reason == ErasureReason::Minor
            && job.reason == ErasureReason::Request
            && job.step <= ErasureStep::DeletePartition
        {
            job.reason = ErasureReason::Minor;
            job.case_reference = order.case_reference;
            job.updated_at = state.clock.now();
            state.store.replace(&job, existing.version).await?;
        }
        return Ok(job);
    }
    let now = state.clock.now();
    let job = ErasureJob {
        user_id: user_id.to_owned(),
        reason: order.reason,
        step: ErasureStep::MarkPending,
        requested_at: now,
        updated_at: now,
        request_id: order.request_id,
        requested_by: Some(order.requested_by),
        case_reference: order.case_reference,
        retained: Vec::new(),
        found: None,
        leftovers: None,
        identity_deleted_at: None,
        processor_customer: None,
        key_shredded_at: None,
        slices: 0,
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

/// The longest a run (one worker slice) goes on before it checkpoints and pauses, whatever is left
/// of its operation budget: well inside the worker's 60 s timeout, measured against the slowest store
/// here (the local emulator with a debug build; see `bench_a_large_user…`).
pub const MAX_SLICE_TIME: std::time::Duration = std::time::Duration::from_secs(15);

/// Counts operations against a budget and the slice's time; either spent stops the job where it is.
struct Budget {
    left: usize,
    until: std::time::Instant,
}

impl Budget {
    fn new(operations: usize) -> Self {
        Self {
            left: operations,
            until: std::time::Instant::now() + MAX_SLICE_TIME,
        }
    }

    fn spend(&mut self) -> bool {
        if self.left == 0 || std::time::Instant::now() >= self.until {
            return false;
        }
        self.left -= 1;
        true
    }
}

/// What a run achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The budget ran out; run again to continue.
    Paused(ErasureStep),
    /// Erased (the key is shredded, or scheduled to be once the retained records expire).
    Done(Box<ErasureJob>),
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
    let mut budget = Budget::new(max_operations);
    job.slices = job.slices.saturating_add(1);
    while job.step != ErasureStep::Done {
        let finished = match job.step {
            ErasureStep::MarkPending => mark_pending(state, &mut job, &mut budget).await?,
            ErasureStep::DeleteLinked => delete_linked(state, &mut job, &mut budget).await?,
            ErasureStep::DeletePartition => delete_partition(state, &mut job, &mut budget).await?,
            ErasureStep::DeleteIdentity => delete_identity(state, &mut job, &mut budget).await?,
            ErasureStep::Shred => shred(state, &mut job, &mut budget).await?,
            ErasureStep::Done => true,
        };
        if !finished {
            // The slice count (and any fact a step learnt) survives the pause.
            job.updated_at = state.clock.now();
            state.store.replace(&job, version).await?;
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
    Ok(Progress::Done(Box::new(job)))
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

async fn mark_pending(
    state: &AppState,
    job: &mut ErasureJob,
    budget: &mut Budget,
) -> Result<bool, ErasureError> {
    let user_id = job.user_id.clone();
    let user_id = user_id.as_str();
    if job.found.is_none() {
        job.found = Some(survey(state, user_id).await?);
    }
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

/// Every item about the person, per item type, before anything is deleted: their partition and their
/// access log (keys only, by Query), and the items elsewhere that point at them.
async fn survey(state: &AppState, user_id: &str) -> Result<BTreeMap<String, usize>, ErasureError> {
    let mut found: BTreeMap<String, usize> = BTreeMap::new();
    for pk in [
        user_partition(user_id),
        platform::keys::access_log_partition(user_id),
        platform::keys::idempotency_partition(user_id),
    ] {
        for (_, item_type, _) in state.store.keys_in_partition(&pk).await? {
            *found.entry(item_type).or_default() += 1;
        }
    }
    for (key, item_type) in linked_keys(state, user_id).await? {
        if state.store.exists(&key).await? {
            *found.entry(item_type.to_owned()).or_default() += 1;
        }
    }
    Ok(found)
}

/// The items outside the person's partition and access log that are about them, found from the
/// partition itself (never a Scan): the id pointers of their requests and assignments, the agencies'
/// do-not-hire entries about them, their listing in agency pools, and their e-mail locks.
async fn linked_keys(state: &AppState, user_id: &str) -> Result<Vec<(ItemKey, &'static str)>, ErasureError> {
    let mut keys = Vec::new();
    let partition = user_partition(user_id);
    for assignment in state
        .store
        .query::<Assignment>(&partition, "ASSIGNMENT#", usize::MAX)
        .await?
    {
        keys.push((
            AssignmentPointer::key_of(&assignment.record.assignment_id),
            schema::ASSIGNMENT_POINTER.name,
        ));
    }
    for request in state
        .store
        .query::<ServiceRequest>(&partition, "REQUEST#", usize::MAX)
        .await?
    {
        keys.push((
            ItemKey::new(format!("REQUEST#{}", request.record.request_id), "REF".to_owned()),
            schema::REQUEST_POINTER.name,
        ));
    }
    for (key, item_type, _) in state.store.keys_in_partition(&partition).await? {
        if item_type == schema::DO_NOT_HIRE_POINTER.name
            && let Some(agency_id) = key.sk.strip_prefix(crate::scheduling::roster::DO_NOT_HIRE_PREFIX)
        {
            keys.push((
                crate::scheduling::roster::DoNotHire::key_of(agency_id, user_id),
                schema::DO_NOT_HIRE.name,
            ));
        }
    }
    if let Some(roster) = state.store.get::<Roster>(&Roster::key_of(user_id)).await? {
        for agency_id in &roster.record.agency_ids {
            for pool_key in &roster.record.pool_keys {
                keys.push((
                    PoolEntry::key_of(agency_id, pool_key, &roster.record.pool_token),
                    schema::POOL_ENTRY.name,
                ));
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
            keys.push((lock, schema::EMAIL_LOCK.name));
        }
    }
    Ok(keys)
}

/// Items outside the user's partition that are about the user: their future shifts released, their
/// coming requests cancelled (officers told), the processor's customer deleted, then the linked items
/// and the access log deleted.
async fn delete_linked(
    state: &AppState,
    job: &mut ErasureJob,
    budget: &mut Budget,
) -> Result<bool, ErasureError> {
    let user_id = job.user_id.clone();
    let user_id = user_id.as_str();
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
            Ok(()) => job.processor_customer = Some(ProcessorCustomerFate::Deleted),
            Err(edge::ApiError::Store(error)) => return Err(error.into()),
            Err(other) => return Err(ErasureError::Processor(other.to_string())),
        }
    }
    let mut keys: Vec<ItemKey> = linked_keys(state, user_id)
        .await?
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    keys.extend(access_log_keys(state, user_id).await?);
    keys.extend(idempotent_answer_keys(state, user_id).await?);
    delete_keys(state, keys, budget).await
}

/// The keys of the person's access log (plain Query of keys: thousands of entries are never decrypted
/// only to be deleted).
async fn access_log_keys(state: &AppState, user_id: &str) -> Result<Vec<ItemKey>, ErasureError> {
    Ok(state
        .store
        .keys_in_partition(&platform::keys::access_log_partition(user_id))
        .await?
        .into_iter()
        .map(|(key, _, _)| key)
        .collect())
}

/// The keys of the answers the person's keyed creating POSTs gave (kept a day under the system's key,
/// since a caller may have no key of their own yet, so shredding does not reach them: they are deleted).
async fn idempotent_answer_keys(state: &AppState, user_id: &str) -> Result<Vec<ItemKey>, ErasureError> {
    Ok(state
        .store
        .keys_in_partition(&platform::keys::idempotency_partition(user_id))
        .await?
        .into_iter()
        .map(|(key, _, _)| key)
        .collect())
}

/// What is left about the person outside the kept records, per item type: nothing, unless something
/// wrote about them while the job ran (then it is deleted by the next run of the step that owns it).
async fn leftovers(state: &AppState, job: &ErasureJob) -> Result<BTreeMap<String, usize>, ErasureError> {
    let mut left: BTreeMap<String, usize> = BTreeMap::new();
    for (_, item_type, _) in state
        .store
        .keys_in_partition(&user_partition(&job.user_id))
        .await?
    {
        if !job.retained.iter().any(|c| c.category == item_type) {
            *left.entry(item_type).or_default() += 1;
        }
    }
    for (key, item_type) in linked_keys(state, &job.user_id).await? {
        if state.store.exists(&key).await? {
            *left.entry(item_type.to_owned()).or_default() += 1;
        }
    }
    let log = access_log_keys(state, &job.user_id).await?.len();
    if log > 0 {
        left.insert(schema::ACCESS_LOG_ENTRY.name.to_owned(), log);
    }
    let answers = idempotent_answer_keys(state, &job.user_id).await?.len();
    if answers > 0 {
        left.insert(schema::IDEMPOTENT_ANSWER.name.to_owned(), answers);
    }
    Ok(left)
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

/// A category the law keeps through a deletion, as a deletion request announces it before the
/// worker has counted anything (the finished request gives the counts and dates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptByLaw {
    pub category: String,
    pub legal_basis: String,
    /// `7 years from the transaction`.
    pub kept_for: String,
}

/// What an erasure for `reason` keeps, if the person has such records: every item type the law
/// makes us keep, from the schema registry.
pub fn kept_by_law(reason: ErasureReason) -> Vec<KeptByLaw> {
    schema::ITEM_TYPES
        .iter()
        .filter(|t| retained_by_law(t, reason))
        .map(|t| KeptByLaw {
            category: t.name.to_owned(),
            legal_basis: t.retention.legal_basis().to_owned(),
            kept_for: match t.retention.period() {
                Some(span) => format!("{} from {}", describe(span), t.retention.runs_from()),
                None => t.retention.runs_from().to_owned(),
            },
        })
        .collect()
}

fn describe(span: jiff::Span) -> String {
    match (span.get_years(), span.get_months(), span.get_days()) {
        (y, 0, 0) if y > 0 => format!("{y} years"),
        (0, m, 0) if m > 0 => format!("{m} months"),
        (0, 0, d) => format!("{d} days"),
        _ => format!("{span:#}"),
    }
}

/// Whether items of `item_type` survive an erasure (the law makes us keep them, a minor's payment
/// and tax records included: age changes nothing of the bookkeeping duty).
fn retained_by_law(item_type: &ItemType, reason: ErasureReason) -> bool {
    matches!(reason, ErasureReason::Request | ErasureReason::Minor)
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

async fn delete_identity(
    state: &AppState,
    job: &mut ErasureJob,
    budget: &mut Budget,
) -> Result<bool, ErasureError> {
    if !budget.spend() {
        return Ok(false);
    }
    state
        .directory
        .delete_user(&job.user_id)
        .await
        .map_err(|error| ErasureError::Identity(error.to_string()))?;
    // A token issued just before the deletion lives up to an hour more: the marker's clock starts now.
    edge::revocation::identity_deleted(state, &job.user_id).await?;
    job.identity_deleted_at = Some(state.clock.now());
    Ok(true)
}

/// Shreds the key when nothing retained is left; otherwise schedules the shredding on the due-date
/// index for the day the last retained record expires.
async fn shred(state: &AppState, job: &mut ErasureJob, budget: &mut Budget) -> Result<bool, ErasureError> {
    // The check the report rests on: read again what is left, before the key goes.
    let left = leftovers(state, job).await?;
    if !left.is_empty() {
        // Something wrote about the person while the job ran: the steps that own it run again.
        tracing::warn!(
            types = left.len(),
            "erasure found items written meanwhile: running again"
        );
        job.step = ErasureStep::DeleteLinked;
        return Ok(false);
    }
    job.leftovers = Some(left);
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
            shred_and_record(state, &job.user_id).await?;
            job.key_shredded_at = Some(state.clock.now());
            job.shred_at = None;
            job.due_day = None;
            job.due_at = None;
            Ok(true)
        }
    }
}

/// How long the key-store table's point-in-time recovery reaches back (template.yaml: enabled on
/// `KeyStoreTable`; AWS keeps 35 days): until this long after a shredding, a restore could bring the
/// key back, which [`reshred_after_restore`] undoes.
pub const KEY_STORE_RECOVERY_WINDOW: SignedDuration = SignedDuration::from_hours(24 * 35);

/// One day's shredded keys: the reconciliation list for restores of the key store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShredLedgerEntry {
    pub user_id: String,
    pub shredded_at: Timestamp,
}

impl ShredLedgerEntry {
    fn partition(day: jiff::civil::Date) -> String {
        format!("SHREDDED#{day}")
    }
}

impl Record for ShredLedgerEntry {
    const TYPE: &'static ItemType = &schema::SHRED_LEDGER_ENTRY;

    fn key(&self) -> ItemKey {
        ItemKey::new(
            Self::partition(self.shredded_at.to_zoned_datetime(TimeZone::UTC).date()),
            self.user_id.clone(),
        )
    }

    fn retention_start(&self) -> Option<Timestamp> {
        Some(self.shredded_at)
    }
}

/// Destroys `user_id`'s branch key and notes the day in the shred ledger (first: a crash between the
/// two leaves an entry whose re-shredding is harmless, never a shredded key nobody would re-shred).
async fn shred_and_record(state: &AppState, user_id: &str) -> Result<(), ErasureError> {
    let entry = ShredLedgerEntry {
        user_id: user_id.to_owned(),
        shredded_at: state.clock.now(),
    };
    match state.store.create(&entry).await {
        Ok(()) | Err(StoreError::ConditionFailed) => {}
        Err(error) => return Err(error.into()),
    }
    state.keys.shred_user(user_id).await?;
    Ok(())
}

/// After the key-store table was restored to `restored_to` (its point-in-time recovery), destroys
/// again every branch key the ledger lists as shredded since: a restore never brings back an erased
/// person's key. Reads one ledger partition per day from `restored_to` to now (at most the 35-day
/// window and a day); idempotent. Returns how many key versions it deleted. Ops run it through the
/// retention function (`{"reshred_since": "<RFC 3339>"}`) before the restored table takes traffic.
pub async fn reshred_after_restore(state: &AppState, restored_to: Timestamp) -> Result<usize, ErasureError> {
    let now = state.clock.now();
    let mut day = restored_to.to_zoned_datetime(TimeZone::UTC).date();
    let today = now.to_zoned_datetime(TimeZone::UTC).date();
    let mut deleted = 0;
    while day <= today {
        let entries = state
            .store
            .query::<ShredLedgerEntry>(&ShredLedgerEntry::partition(day), "", usize::MAX)
            .await?;
        // Every entry from the restore's day on, whatever its time: an entry is written before its
        // shredding, and a retry keeps the first entry's time (destroying twice is harmless).
        for entry in entries.into_iter().map(|v| v.record) {
            deleted += state.keys.shred_user(&entry.user_id).await?;
        }
        day = match day.tomorrow() {
            Ok(next) => next,
            Err(_) => break,
        };
    }
    tracing::info!(deleted, "key store reconciled with the shred ledger");
    Ok(deleted)
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
    let mut budget = Budget::new(max_operations);
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
    shred_and_record(state, user_id).await?;
    job.key_shredded_at = Some(now);
    job.shred_at = None;
    job.due_day = None;
    job.due_at = None;
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
            assert_eq!(
                retained_by_law(item_type, ErasureReason::Minor),
                kept,
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
        let mut budget = Budget::new(2);
        assert!(budget.spend() && budget.spend());
        assert!(!budget.spend());
        let mut late = Budget::new(5);
        late.until = std::time::Instant::now();
        assert!(!late.spend(), "a slice past its time stops");
    }
}
