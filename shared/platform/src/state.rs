//! What a function builds once per container and hands to every request: config, clients, clock.

use crate::clock::Clock;
use crate::config::{Config, ConfigError};
use crate::crypto::{CryptoError, KeyClients, KeyManager, encrypted_client};
use crate::directory::{CognitoDirectory, UserDirectory};
use crate::lookup::LookupKey;
use crate::mailer::{Mailer, SesMailer};
use crate::meter::clients;
use crate::processor::{PaymentProcessor, StripeProcessor};
use crate::queue::{JobQueue, SqsQueue};
use crate::store::Store;
use aws_config::SdkConfig;
use std::sync::Arc;
use thiserror::Error;

/// A function could not start.
#[derive(Debug, Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Processor(#[from] crate::processor::ProcessorError),
}

/// Per-container state. Cheap to clone (clients are reference-counted).
#[derive(Clone)]
pub struct AppState {
    /// Resource names and ids.
    pub config: Arc<Config>,
    /// Typed, encrypted access to the application table.
    pub store: Store,
    /// Creating and shredding the per-user branch keys.
    pub keys: KeyManager,
    /// Keyed hashes for uniqueness locks.
    pub lookup: LookupKey,
    /// Mail, from the deployment's sender (SES v2 in the functions).
    pub mailer: Arc<dyn Mailer>,
    /// The user pool: addresses, group membership; erasure deletes users from it.
    pub directory: Arc<dyn UserDirectory>,
    /// The payment processor (Stripe): authorisations, captures, refunds, webhook signatures.
    pub processor: Arc<dyn PaymentProcessor>,
    /// The privacy worker's queue: erasures and exports run there, off the request path.
    pub jobs: Arc<dyn JobQueue>,
    /// Key management service.
    pub kms: aws_sdk_kms::Client,
    /// The one source of "now".
    pub clock: Clock,
}

impl AppState {
    /// Builds state from explicit configuration; the local stack and tests use this directly.
    pub async fn new(config: Config, sdk: &SdkConfig, clock: Clock) -> Result<Self, StartupError> {
        let keys = KeyClients {
            kms: clients::key_kms(sdk),
            dynamodb: clients::key_store_dynamodb(sdk),
        };
        Self::with_key_clients(config, sdk, clock, keys).await
    }

    /// Like [`AppState::new`], with the clients the encryption layer uses for KMS and the key store
    /// given explicitly (tests wrap them to count calls).
    pub async fn with_key_clients(
        config: Config,
        sdk: &SdkConfig,
        clock: Clock,
        keys: KeyClients,
    ) -> Result<Self, StartupError> {
        let encrypted = encrypted_client(sdk, &config, &keys).await?;
        let plain = clients::dynamodb(sdk);
        let kms = clients::kms(sdk);
        Ok(Self {
            store: Store::new(encrypted, plain, config.table_name.clone(), clock.clone()),
            keys: KeyManager::new(&config, &keys)?,
            lookup: LookupKey::new(kms.clone(), config.lookup_key_arn.clone()),
            mailer: Arc::new(SesMailer::new(
                clients::ses(sdk),
                config.mail_sender.clone(),
                config.support_address.clone(),
                config.mail_configuration_set.clone(),
            )),
            directory: Arc::new(CognitoDirectory::new(
                clients::cognito(sdk),
                config.user_pool_id.clone(),
            )),
            processor: Arc::new(StripeProcessor::new(
                config.stripe_api_base.clone(),
                clients::secrets(sdk),
                config.stripe_secret_id.clone(),
            )?),
            jobs: Arc::new(SqsQueue::new(
                clients::sqs(sdk),
                config.privacy_jobs_queue_url.clone(),
            )),
            kms,
            config: Arc::new(config),
            clock,
        })
    }

    /// Builds state from the Lambda environment: configuration variables plus the SDK's own
    /// (region, credentials, and `AWS_ENDPOINT_URL` when one is set). Makes no AWS request: the
    /// system and beacon branch keys were created at deployment by the key set-up
    /// (`functions/key-setup`), the only function allowed to create them.
    pub async fn from_env() -> Result<Self, StartupError> {
        let config = Config::from_env()?;
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::new(config, &sdk, Clock::System).await
    }
}
