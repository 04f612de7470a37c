//! The retention function: scheduled jobs that do what DynamoDB TTL cannot (not an HTTP function).
//! Its triggers are declared in template.yaml (`RetentionFunction`).

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use shared::AppState;
use shared::retention::PurgeReport;
use shared::store::StoreError;

/// Handles one scheduled purge event: finds due work through the due-date index.
pub async fn handle_schedule(state: &AppState, _event: CloudWatchEvent) -> Result<PurgeReport, StoreError> {
    let report = shared::retention::due_work(&state.store, &state.clock).await?;
    tracing::info!(day = %report.day, due_items = report.due_items, "purge run finished");
    Ok(report)
}
