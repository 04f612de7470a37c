//! The access log: one entry per API call (request id, route, status, time, IP), kept 90 days to
//! fight fraud, as the policy says. The time and the IP are personal data and stored encrypted.
//!
//! Entries live in their own partition per caller (`ACCESS#<user id>`, or `ACCESS#anonymous` for
//! calls without a token), so the log of a user is found by Query from their id (export, erasure)
//! and never mixes with the account's own items. A user's entries are encrypted under the user's own
//! key (`platform::crypto::branch_key_for`), so shredding it makes backups of their log unreadable.

use jiff::Timestamp;
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record, Store, StoreError};
use serde::{Deserialize, Serialize};

/// Who a call without a verified token is logged under.
pub const ANONYMOUS: &str = platform::keys::ANONYMOUS_CALLER;

/// One API call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessLogEntry {
    /// The caller's user id, or [`ANONYMOUS`].
    pub log_owner: String,
    pub request_id: String,
    /// The route key (`GET /v1/me`), never the raw path (it can carry ids of other people).
    pub route: String,
    pub status_code: u16,
    pub accessed_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
}

impl Record for AccessLogEntry {
    const TYPE: &'static ItemType = &schema::ACCESS_LOG_ENTRY;

    fn key(&self) -> ItemKey {
        // The sort key is the request id, not the time: the time is personal data and stays encrypted
        // (only the TTL attribute, which retention needs in plaintext, says when the entry expires).
        ItemKey::new(
            platform::keys::access_log_partition(&self.log_owner),
            self.request_id.clone(),
        )
    }

    fn retention_start(&self) -> Option<Timestamp> {
        Some(self.accessed_at)
    }
}

/// Writes one entry. A user's entry is encrypted under their own key; a caller who has none yet (signed
/// in, never registered) is logged as anonymous instead, so the entry is kept either way.
pub async fn record(store: &Store, entry: &AccessLogEntry) -> Result<(), StoreError> {
    match store.create(entry).await {
        Err(StoreError::ConditionFailed) => Err(StoreError::ConditionFailed),
        Err(_) if entry.log_owner != ANONYMOUS => {
            let anonymous = AccessLogEntry {
                log_owner: ANONYMOUS.to_owned(),
                ..entry.clone()
            };
            store.create(&anonymous).await
        }
        other => other,
    }
}

/// Up to `limit` live entries of `owner`, oldest first (entries past their 90 days are not returned).
pub async fn entries_of(store: &Store, owner: &str, limit: usize) -> Result<Vec<AccessLogEntry>, StoreError> {
    let mut entries: Vec<AccessLogEntry> = store
        .query::<AccessLogEntry>(&platform::keys::access_log_partition(owner), "", limit)
        .await?
        .into_iter()
        .map(|v| v.record)
        .collect();
    entries.sort_by_key(|e| e.accessed_at);
    Ok(entries)
}
