//! Lambda entry point of the retention function: the hourly schedule, the table's stream, and an
//! operator's reconciliation of a restored key store.

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use aws_lambda_events::event::dynamodb;
use lambda_runtime::{LambdaEvent, service_fn};
use platform::AppState;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    platform::telemetry::init();
    let state = AppState::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let state = state.clone();
        async move {
            // Stream batches carry `Records`; an operator's reconciliation after a restore of the
            // key store carries `reshred_since`; scheduled events neither.
            if let Some(since) = event.payload.get("reshred_since") {
                let since: jiff::Timestamp = serde_json::from_value(since.clone())?;
                let report = retention::handle_reshred(&state, since).await?;
                Ok::<_, lambda_runtime::Error>(serde_json::to_value(report)?)
            } else if event.payload.get("Records").is_some() {
                let batch: dynamodb::Event = serde_json::from_value(event.payload)?;
                let report = retention::handle_stream(&state, batch).await?;
                Ok(serde_json::to_value(report)?)
            } else {
                let scheduled: CloudWatchEvent = serde_json::from_value(event.payload)?;
                let report = retention::handle_schedule(&state, scheduled).await?;
                Ok(serde_json::to_value(report)?)
            }
        }
    }))
    .await
}
