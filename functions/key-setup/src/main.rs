//! Lambda entry point of the key set-up: CloudFormation custom-resource events, handled by the library.

use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    platform::telemetry::init();
    let setup = key_setup::KeySetup::from_env().await?;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<key_setup::CustomResourceEvent>| {
            let setup = setup.clone();
            async move {
                setup
                    .handle(event.payload)
                    .await
                    .map_err(lambda_runtime::Error::from)
            }
        },
    ))
    .await
}
