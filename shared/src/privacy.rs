//! Privacy requests (the rights the policy grants) and the privacy-policy versions users accept.

use crate::keys::{POLICY_CURRENT, POLICY_PARTITION, sort_prefix, user_partition};
use crate::schema::{self, ItemType};
use crate::store::{ItemKey, Record, Store, StoreError};
use serde::{Deserialize, Serialize};

/// One line of a user's privacy-request list, in user-facing terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivacyRequestSummary {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub due_at: String,
}

/// A published version of the Applications Privacy Policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub policy_version: String,
    pub effective_date: String,
    pub significant: bool,
    pub summary: String,
}

impl Record for PolicyVersion {
    const TYPE: &'static ItemType = &schema::POLICY_VERSION;

    fn key(&self) -> ItemKey {
        ItemKey::new(POLICY_PARTITION.to_owned(), POLICY_CURRENT.to_owned())
    }
}

/// Up to `limit` privacy requests made by `user_id`.
pub async fn requests_of(
    store: &Store,
    user_id: &str,
    limit: usize,
) -> Result<Vec<PrivacyRequestSummary>, StoreError> {
    store
        .query_prefix(&user_partition(user_id), sort_prefix::PRIVACY_REQUEST, limit)
        .await
}

/// The policy version in force, if one has been published.
pub async fn current_policy(store: &Store) -> Result<Option<PolicyVersion>, StoreError> {
    let current = store
        .get::<PolicyVersion>(&ItemKey::new(
            POLICY_PARTITION.to_owned(),
            POLICY_CURRENT.to_owned(),
        ))
        .await?;
    Ok(current.map(|versioned| versioned.record))
}
