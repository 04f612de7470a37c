//! Lambda entry point of the key set-up: CloudFormation custom-resource events, handled by the library.

use key_setup::{Answerer, CustomResourceEvent, KeySetup};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    platform::telemetry::init();
    match KeySetup::from_env().await {
        Ok(setup) => {
            lambda_runtime::run(service_fn(|event: LambdaEvent<CustomResourceEvent>| {
                let setup = setup.clone();
                async move {
                    setup
                        .handle(event.payload)
                        .await
                        .map_err(lambda_runtime::Error::from)
                }
            }))
            .await
        }
        // Without its configuration the set-up can still answer CloudFormation, which would
        // otherwise wait for the resource's ServiceTimeout.
        Err(error) => {
            tracing::error!(error = %error, "the key set-up could not start");
            let answerer = Answerer::new()?;
            lambda_runtime::run(service_fn(|event: LambdaEvent<CustomResourceEvent>| {
                let answerer = answerer.clone();
                async move {
                    answerer
                        .refuse(&event.payload)
                        .await
                        .map_err(lambda_runtime::Error::from)
                }
            }))
            .await
        }
    }
}
