//! The retention function: scheduled jobs that do what DynamoDB TTL cannot, and the audit of what TTL
//! deleted (the table's stream). Not an HTTP function; its triggers are declared in template.yaml
//! (`RetentionFunction`).

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use aws_lambda_events::event::dynamodb;
use domain::privacy::erasure::ErasureError;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use jobs::purge::PurgeReport;
use jobs::ttl_audit::{TTL_PRINCIPAL, TtlAuditReport, TtlRemoval};
use platform::AppState;
use platform::store::StoreError;
use serde::Deserialize;

/// Due items one scheduled run handles at most; the next run continues from the checkpoint.
pub const ITEMS_PER_RUN: usize = 200;

/// Handles one scheduled purge event: finds due work through the due-date index and does it.
pub async fn handle_schedule(state: &AppState, _event: CloudWatchEvent) -> Result<PurgeReport, ErasureError> {
    let report = jobs::purge::scheduled_run(state, ITEMS_PER_RUN).await?;
    tracing::info!(
        day = %report.day,
        due_items = report.due_items,
        buckets_examined = report.buckets_examined,
        keys_shredded = report.keys_shredded,
        budget_spent = report.budget_spent,
        "purge run finished"
    );
    Ok(report)
}

/// What an operator's reconciliation of a restored key store did.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ReshredReport {
    /// Key versions destroyed again.
    pub keys_deleted: usize,
}

/// `{"reshred_since": "<RFC 3339>"}`, invoked by an operator after restoring the key-store table
/// to that moment: every key shredded since is destroyed again (README, "Crypto-shredding").
pub async fn handle_reshred(state: &AppState, restored_to: Timestamp) -> Result<ReshredReport, ErasureError> {
    let keys_deleted = domain::privacy::erasure::reshred_after_restore(state, restored_to).await?;
    Ok(ReshredReport { keys_deleted })
}

/// The plaintext attributes of a removed item the audit uses.
#[derive(Deserialize)]
struct RemovedItem {
    #[serde(default)]
    item_type: Option<String>,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    assignment_id: Option<String>,
}

/// The removals in a stream batch that DynamoDB's TTL made (the event source filter already keeps
/// only those; deletions by the application are skipped here too, in case the filter changes).
pub fn ttl_removals(event: dynamodb::Event) -> Vec<TtlRemoval> {
    event
        .records
        .into_iter()
        .filter(|record| record.event_name == "REMOVE")
        .filter(|record| {
            record
                .user_identity
                .as_ref()
                .is_some_and(|who| who.type_ == "Service" && who.principal_id == TTL_PRINCIPAL)
        })
        .map(|record| {
            let removed: Option<RemovedItem> = serde_dynamo::from_item(record.change.old_image).ok();
            let at = Timestamp::from_second(record.change.approximate_creation_date_time.timestamp())
                .unwrap_or(Timestamp::UNIX_EPOCH);
            TtlRemoval {
                item_type: removed.as_ref().and_then(|r| r.item_type.clone()),
                request_id: removed.as_ref().and_then(|r| r.request_id.clone()),
                assignment_id: removed.as_ref().and_then(|r| r.assignment_id.clone()),
                day: at.to_zoned_datetime(TimeZone::UTC).date(),
            }
        })
        .collect()
}

/// Handles one batch of the table's stream: audits and cascades TTL deletions.
pub async fn handle_stream(state: &AppState, event: dynamodb::Event) -> Result<TtlAuditReport, StoreError> {
    let removals = ttl_removals(event);
    let report = jobs::ttl_audit::audit(state, &removals).await?;
    tracing::info!(
        counted = report.counted,
        cascaded = report.cascaded,
        "ttl audit finished"
    );
    Ok(report)
}
