//! Service requests: what a customer books.

use crate::keys::{sort_prefix, user_partition};
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};

/// One line of a customer's request list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRequestSummary {
    pub id: String,
    pub status: String,
}

/// The newest `limit` service requests the customer `user_id` booked.
pub async fn requests_of(
    store: &Store,
    user_id: &str,
    limit: usize,
) -> Result<Vec<ServiceRequestSummary>, StoreError> {
    store
        .query_prefix(&user_partition(user_id), sort_prefix::SERVICE_REQUEST, limit)
        .await
}
