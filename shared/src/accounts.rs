//! Customer and Security Provider accounts of a user.

use crate::keys::{sort_prefix, user_partition};
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};

/// What `GET /v1/me` lists for each account the caller holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSummary {
    /// `customer` or `provider`.
    pub role: String,
    /// Lifecycle: `active`, `restricted`, `deletion_pending`.
    pub status: String,
}

/// The accounts of `user_id` (at most one per role).
pub async fn accounts_of(store: &Store, user_id: &str) -> Result<Vec<AccountSummary>, StoreError> {
    store
        .query_prefix(&user_partition(user_id), sort_prefix::ACCOUNT, 10)
        .await
}
