//! Assignments: a Security Provider placed on a shift of a service request.

use crate::keys::{sort_prefix, user_partition};
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};

/// One line of a provider's assignment list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentSummary {
    pub id: String,
    pub request_id: String,
    pub status: String,
}

/// Up to `limit` assignments of the provider `user_id`.
pub async fn assignments_of(
    store: &Store,
    user_id: &str,
    limit: usize,
) -> Result<Vec<AssignmentSummary>, StoreError> {
    store
        .query_prefix(&user_partition(user_id), sort_prefix::ASSIGNMENT, limit)
        .await
}
