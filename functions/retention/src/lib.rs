//! The retention function: scheduled jobs that do what DynamoDB TTL cannot (not an HTTP function).
//! Its triggers are declared in template.yaml (`RetentionFunction`).

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use shared::AppState;
use shared::erasure::ErasureError;
use shared::retention::PurgeReport;

/// Due items one scheduled run handles at most; the next run continues from the checkpoint.
pub const ITEMS_PER_RUN: usize = 200;

/// Handles one scheduled purge event: finds due work through the due-date index and does it.
pub async fn handle_schedule(state: &AppState, _event: CloudWatchEvent) -> Result<PurgeReport, ErasureError> {
    let report = shared::retention::purge(state, ITEMS_PER_RUN).await?;
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
