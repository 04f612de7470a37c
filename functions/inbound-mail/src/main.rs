//! Lambda entry point of the inbound-mail function: SES receipt events, handled by the library.

use aws_lambda_events::event::ses::SimpleEmailEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use platform::AppState;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    platform::telemetry::init();
    let state = AppState::from_env().await?;
    let mailbox = inbound_mail::Mailbox::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SimpleEmailEvent>| {
        let (state, mailbox) = (state.clone(), mailbox.clone());
        async move {
            inbound_mail::handle(&state, &mailbox, event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
