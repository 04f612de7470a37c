//! The audit trail of changes to a user's data: who, when, what kind of change and which fields —
//! never the values. Kept 24 months (retention class `privacy_audit`).

use jiff::Timestamp;
use platform::keys::{sortable_time, user_partition};
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record, Store, StoreError};
use serde::{Deserialize, Serialize};

/// One audited change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Whose data changed.
    pub user_id: String,
    /// Who changed it (the user, a privacy officer, a job).
    pub actor_user_id: String,
    /// What happened, e.g. `customer.corrected`.
    pub action: String,
    /// Names of the fields involved.
    pub fields: Vec<String>,
    pub recorded_at: Timestamp,
    #[serde(skip)]
    pub id: String,
}

impl AuditRecord {
    /// A new audit entry.
    pub fn new(user_id: &str, actor_user_id: &str, action: &str, fields: Vec<String>, at: Timestamp) -> Self {
        Self {
            user_id: user_id.to_owned(),
            actor_user_id: actor_user_id.to_owned(),
            action: action.to_owned(),
            fields,
            recorded_at: at,
            id: uuid::Uuid::new_v4().simple().to_string(),
        }
    }
}

impl Record for AuditRecord {
    const TYPE: &'static ItemType = &schema::AUDIT_RECORD;

    fn key(&self) -> ItemKey {
        ItemKey::new(
            user_partition(&self.user_id),
            format!("AUDIT#{}#{}", sortable_time(self.recorded_at), self.id),
        )
    }

    fn retention_start(&self) -> Option<Timestamp> {
        Some(self.recorded_at)
    }
}

/// The audit trail of a user, oldest first.
pub async fn trail(store: &Store, user_id: &str) -> Result<Vec<AuditRecord>, StoreError> {
    Ok(store
        .query::<AuditRecord>(&user_partition(user_id), "AUDIT#", 10_000)
        .await?
        .into_iter()
        .map(|v| v.record)
        .collect())
}
