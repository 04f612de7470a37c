//! Lambda entry point of the privacy worker: SQS batches of privacy jobs, handled by the library.

// The release build (`cargo lambda build --release`) computes the layout of the whole job future
// nested in `main`'s and overflows rustc's default query depth of 128; the handler's future is
// also boxed below, so that `main` holds a pointer to it instead of its layout.
#![recursion_limit = "256"]

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use platform::AppState;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    platform::telemetry::init();
    let state = AppState::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let state = state.clone();
        async move {
            let batch = Box::pin(privacy_worker::handle(&state, event.payload));
            Ok::<_, lambda_runtime::Error>(batch.await)
        }
    }))
    .await
}
