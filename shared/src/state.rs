//! What a function builds once per container and hands to every request: config, clients, clock.

use crate::clock::Clock;
use crate::config::{Config, ConfigError};
use crate::store::Store;
use aws_config::SdkConfig;
use std::sync::Arc;

/// Per-container state. Cheap to clone (clients are reference-counted).
#[derive(Clone)]
pub struct AppState {
    /// Resource names and ids.
    pub config: Arc<Config>,
    /// Typed access to the application table.
    pub store: Store,
    /// Mail (SES v2).
    pub mail: aws_sdk_sesv2::Client,
    /// Key management (branch keys of the hierarchical keyring).
    pub kms: aws_sdk_kms::Client,
    /// The one source of "now".
    pub clock: Clock,
}

impl AppState {
    /// Builds state from explicit configuration; the local stack and tests use this directly.
    pub fn new(config: Config, sdk: &SdkConfig, clock: Clock) -> Self {
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        Self {
            store: Store::new(dynamodb, config.table_name.clone(), clock.clone()),
            mail: aws_sdk_sesv2::Client::new(sdk),
            kms: aws_sdk_kms::Client::new(sdk),
            config: Arc::new(config),
            clock,
        }
    }

    /// Builds state from the Lambda environment: configuration variables plus the SDK's own
    /// (region, credentials, and `AWS_ENDPOINT_URL` when one is set).
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Ok(Self::new(config, &sdk, Clock::System))
    }
}
