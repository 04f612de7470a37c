//! Consent records: every change of a user's marketing consent is kept (what, when, policy version,
//! source); the newest record is the current state, and the only thing the mailer asks. A copy of
//! it ([`ConsentState`], written in the same transaction) is read by key, so that `GET /v1/me` reads
//! it with the accounts in one request.

use jiff::Timestamp;
use platform::keys::{sortable_time, user_partition};
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record, Store, StoreError, Write};
use serde::{Deserialize, Serialize};

/// The purpose a consent is about. Only marketing needs consent; the other uses of personal data
/// in the policy (scheduling, assignment, payment, service mail, fraud protection) do not.
pub const MARKETING: &str = "marketing";

/// Where a consent decision was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentSource {
    Registration,
    App,
    Web,
    PrivacyRequest,
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
    /// A new marketing decision.
    pub fn marketing(
        user_id: &str,
        granted: bool,
        policy_version: &str,
        source: ConsentSource,
        at: Timestamp,
    ) -> Self {
        Self {
            user_id: user_id.to_owned(),
            purpose: MARKETING.to_owned(),
            granted,
            policy_version: policy_version.to_owned(),
            source,
            recorded_at: at,
            id: uuid::Uuid::new_v4().simple().to_string(),
        }
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

/// The writes that record `record`: the decision in the history, and as the current state.
pub fn record_writes(store: &Store, record: &ConsentRecord) -> Result<Vec<Write>, StoreError> {
    Ok(vec![
        store.write_create(record)?,
        store.write_put(&ConsentState::from(record))?,
    ])
}

/// Records `record`, history and current state together.
pub async fn record(store: &Store, record: &ConsentRecord) -> Result<(), StoreError> {
    store.transact(record_writes(store, record)?).await
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
