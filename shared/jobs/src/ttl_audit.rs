//! What DynamoDB's TTL deleted: each deletion becomes an anonymous retention metric (item type,
//! count, UTC day: no key, no id) and, where other items depended on the deleted one, a cascade (a
//! service request's or an assignment's id pointer would otherwise be kept forever).
//!
//! Fed by the table's stream (template.yaml, `RetentionFunction`, filtered to deletions by the
//! service principal `dynamodb.amazonaws.com`); the emulator does not expire items, so the tests use
//! stream-record events from `events/`.

use domain::scheduling::assignments::AssignmentPointer;
use jiff::civil::Date;
use platform::AppState;
use platform::store::{ItemKey, StoreError};
use serde::Serialize;

/// The service principal DynamoDB uses for TTL deletions in stream records.
pub const TTL_PRINCIPAL: &str = "dynamodb.amazonaws.com";

/// One item TTL removed, as the stream describes it (plaintext attributes only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TtlRemoval {
    pub item_type: Option<String>,
    pub request_id: Option<String>,
    pub assignment_id: Option<String>,
    pub day: Date,
}

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TtlAuditReport {
    /// TTL deletions counted.
    pub counted: usize,
    /// Dependent items deleted with them.
    pub cascaded: usize,
}

/// The partition of the retention metrics of `day`.
pub fn metrics_partition(day: Date) -> String {
    format!("METRIC#TTL#{day}")
}

/// Counts each removal under its day and type, and deletes the items that depended on it.
/// Idempotent for the cascade; a redelivered batch counts twice (metrics, not records).
pub async fn audit(state: &AppState, removals: &[TtlRemoval]) -> Result<TtlAuditReport, StoreError> {
    let mut report = TtlAuditReport::default();
    for removal in removals {
        let item_type = removal.item_type.as_deref().unwrap_or("unknown");
        state
            .store
            .add_to_counter(&metrics_partition(removal.day), item_type, 1)
            .await?;
        report.counted += 1;
        let dependent = match (item_type, &removal.request_id, &removal.assignment_id) {
            ("service_request", Some(request_id), _) => {
                Some(ItemKey::new(format!("REQUEST#{request_id}"), "REF".to_owned()))
            }
            ("assignment", _, Some(assignment_id)) => Some(AssignmentPointer::key_of(assignment_id)),
            _ => None,
        };
        if let Some(key) = dependent
            && state.store.exists(&key).await?
        {
            state.store.delete(&key).await?;
            report.cascaded += 1;
        }
    }
    Ok(report)
}

/// The TTL deletions counted for `day`, by item type.
pub async fn metrics_of(state: &AppState, day: Date) -> Result<Vec<(String, u64)>, StoreError> {
    state.store.counters(&metrics_partition(day)).await
}
