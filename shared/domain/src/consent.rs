//! Consent records: every change of a user's consent to a purpose is kept (what, when, policy
//! version, source); the newest record is the current state, and the only thing the senders ask. A
//! copy of it ([`ConsentState`], written in the same transaction) is read by key, so that `GET /v1/me`
//! reads it with the accounts in one request. Which purposes exist, and which need consent, is
//! `crate::purposes`.

use jiff::Timestamp;
use platform::keys::{sortable_time, user_partition};
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record, Store, StoreError, Write};
use serde::{Deserialize, Serialize};

/// Marketing by e-mail.
pub const MARKETING_EMAIL: &str = "marketing_email";
/// Marketing by post.
pub const MARKETING_POST: &str = "marketing_post";
/// Marketing by telephone or SMS.
pub const MARKETING_PHONE: &str = "marketing_phone";
/// The marketing channels the policy names ("via mail, e-mail, or telephone"), each a purpose of
/// its own so that a person can say yes to one and no to another.
pub const MARKETING_CHANNELS: [&str; 3] = [MARKETING_EMAIL, MARKETING_POST, MARKETING_PHONE];

/// The purpose `GET /v1/me` reports as `marketing_consent` (e-mail), and the one whose decisions
/// [`history`] lists. The policy's other uses of personal data (scheduling, assignment, payment,
/// service mail, fraud protection) need no consent: see `crate::purposes`.
pub const MARKETING: &str = MARKETING_EMAIL;

/// Where a consent decision was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentSource {
    Registration,
    App,
    Web,
    PrivacyRequest,
    /// The unsubscribe link of a marketing mail.
    Unsubscribe,
}

/// One consent decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    pub user_id: String,
    pub purpose: String,
    pub granted: bool,
    pub policy_version: String,
    pub source: ConsentSource,
    pub recorded_at: Timestamp,
    /// Makes two decisions in the same millisecond distinct.
    #[serde(skip)]
    pub id: String,
}

impl ConsentRecord {
    /// A new decision about `purpose`.
    pub fn new(
        user_id: &str,
        purpose: &str,
        granted: bool,
        policy_version: &str,
        source: ConsentSource,
        at: Timestamp,
    ) -> Self {
        Self {
            user_id: user_id.to_owned(),
            purpose: purpose.to_owned(),
            granted,
            policy_version: policy_version.to_owned(),
            source,
            recorded_at: at,
            id: uuid::Uuid::new_v4().simple().to_string(),
        }
    }

    /// One marketing decision for every channel (e-mail, post, telephone/SMS): what the single
    /// `marketing` yes or no of a registration, `POST /v1/me/consents` or an opt-out means.
    pub fn marketing(
        user_id: &str,
        granted: bool,
        policy_version: &str,
        source: ConsentSource,
        at: Timestamp,
    ) -> Vec<Self> {
        MARKETING_CHANNELS
            .iter()
            .map(|purpose| Self::new(user_id, purpose, granted, policy_version, source, at))
            .collect()
    }

    fn prefix(purpose: &str) -> String {
        format!("CONSENT#{purpose}#")
    }
}

impl Record for ConsentRecord {
    const TYPE: &'static ItemType = &schema::CONSENT_RECORD;

    fn key(&self) -> ItemKey {
        ItemKey::new(
            user_partition(&self.user_id),
            format!(
                "{}{}#{}",
                Self::prefix(&self.purpose),
                sortable_time(self.recorded_at),
                self.id
            ),
        )
    }
}

/// The user's current decision about one purpose: the newest [`ConsentRecord`], copied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentState {
    pub user_id: String,
    pub purpose: String,
    pub granted: bool,
    pub policy_version: String,
    pub source: ConsentSource,
    pub recorded_at: Timestamp,
}

impl ConsentState {
    /// The key of `user_id`'s current decision about `purpose`.
    pub fn key_of(user_id: &str, purpose: &str) -> ItemKey {
        ItemKey::new(user_partition(user_id), format!("CONSENTNOW#{purpose}"))
    }
}

impl From<&ConsentRecord> for ConsentState {
    fn from(record: &ConsentRecord) -> Self {
        Self {
            user_id: record.user_id.clone(),
            purpose: record.purpose.clone(),
            granted: record.granted,
            policy_version: record.policy_version.clone(),
            source: record.source,
            recorded_at: record.recorded_at,
        }
    }
}

impl Record for ConsentState {
    const TYPE: &'static ItemType = &schema::CONSENT_STATE;

    fn key(&self) -> ItemKey {
        Self::key_of(&self.user_id, &self.purpose)
    }
}

/// The writes that record `records`: each decision in the history, and as the current state.
pub fn record_writes(store: &Store, records: &[ConsentRecord]) -> Result<Vec<Write>, StoreError> {
    let mut writes = Vec::with_capacity(records.len() * 2);
    for record in records {
        writes.push(store.write_create(record)?);
        writes.push(store.write_put(&ConsentState::from(record))?);
    }
    Ok(writes)
}

/// Records `records`, history and current state together, all or nothing.
pub async fn record(store: &Store, records: &[ConsentRecord]) -> Result<(), StoreError> {
    store.transact(record_writes(store, records)?).await
}

/// The user's current decision about `purpose`: granted or not, or `None` when never asked.
pub async fn current(
    store: &Store,
    user_id: &str,
    purpose: &str,
) -> Result<Option<ConsentState>, StoreError> {
    Ok(store
        .get::<ConsentState>(&ConsentState::key_of(user_id, purpose))
        .await?
        .map(|found| found.record))
}

/// The current decisions about `purpose` of those of `user_ids` who made one, in batched reads.
pub async fn current_many(
    store: &Store,
    user_ids: &[String],
    purpose: &str,
) -> Result<Vec<ConsentState>, StoreError> {
    let keys: Vec<ItemKey> = user_ids
        .iter()
        .map(|id| ConsentState::key_of(id, purpose))
        .collect();
    let mut fetched = store.get_many(&keys).await?;
    let mut found = Vec::new();
    for key in &keys {
        found.extend(fetched.take::<ConsentState>(key)?.map(|v| v.record));
    }
    Ok(found)
}

/// Every current decision of the user, one per purpose they were asked about.
pub async fn all_current(store: &Store, user_id: &str) -> Result<Vec<ConsentState>, StoreError> {
    let found = store
        .query::<ConsentState>(&user_partition(user_id), "CONSENTNOW#", 1_000)
        .await?;
    Ok(found.into_iter().map(|v| v.record).collect())
}

/// The user's current marketing consent: the newest decision, or "no" when there is none.
pub async fn marketing_consent(store: &Store, user_id: &str) -> Result<bool, StoreError> {
    if let Some(state) = store
        .get::<ConsentState>(&ConsentState::key_of(user_id, MARKETING))
        .await?
    {
        return Ok(state.record.granted);
    }
    newest_in_history(store, user_id).await
}

/// The newest marketing decision in the history ("no" when there is none).
pub async fn newest_in_history(store: &Store, user_id: &str) -> Result<bool, StoreError> {
    let newest = store
        .latest::<ConsentRecord>(&user_partition(user_id), &ConsentRecord::prefix(MARKETING))
        .await?;
    Ok(newest.is_some_and(|record| record.record.granted))
}

/// Every marketing decision of the user, oldest first.
pub async fn history(store: &Store, user_id: &str) -> Result<Vec<ConsentRecord>, StoreError> {
    let records = store
        .query::<ConsentRecord>(&user_partition(user_id), &ConsentRecord::prefix(MARKETING), 1_000)
        .await?;
    Ok(records.into_iter().map(|v| v.record).collect())
}
