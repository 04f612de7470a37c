//! Lambda entry point of the scheduled retention job.

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use shared::AppState;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let state = AppState::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<CloudWatchEvent>| {
        let state = state.clone();
        async move {
            retention::handle_schedule(&state, event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
