//! The one privileged key step of a deployment. The branch keys every deployment needs (the system
//! key and the beacon key) are created here, by a CloudFormation custom resource (`SystemKeys` in
//! template.yaml) on stack creation and update, so that no request-serving function needs the right
//! to create branch keys, nor spends its cold start checking for them. Users' own keys are created
//! by registration; only the erasing functions delete keys.
//!
//! Deleting the resource deletes nothing: without these keys no system item could be read again.

use platform::Config;
use platform::crypto::{CryptoError, KeyClients, KeyManager};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use thiserror::Error;

/// The physical id CloudFormation keeps for the resource (there is one set of system keys).
pub const PHYSICAL_ID: &str = "system-branch-keys";

/// The fields of a CloudFormation custom-resource request this function reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomResourceEvent {
    /// `Create`, `Update` or `Delete`.
    pub request_type: String,
    /// The pre-signed URL the answer goes to.
    #[serde(rename = "ResponseURL")]
    pub response_url: String,
    /// Echoed back.
    pub stack_id: String,
    /// Echoed back.
    pub request_id: String,
    /// Echoed back.
    pub logical_resource_id: String,
}

/// The answer CloudFormation waits for.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct CustomResourceResponse<'a> {
    status: &'a str,
    reason: String,
    physical_resource_id: &'a str,
    stack_id: &'a str,
    request_id: &'a str,
    logical_resource_id: &'a str,
}

/// Why the set-up could not run or answer.
#[derive(Debug, Error)]
pub enum KeySetupError {
    #[error(transparent)]
    Config(#[from] platform::config::ConfigError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("the answer to CloudFormation could not be sent: {0}")]
    Answer(String),
}

/// The longest the key work may take: CloudFormation must get an answer before the function's
/// 60 s timeout ends the invocation silently (it would then wait for `ServiceTimeout`).
pub const WORK_LIMIT: Duration = Duration::from_secs(40);

/// The HTTP client that answers CloudFormation at the pre-signed URL.
#[derive(Clone)]
pub struct Answerer {
    http: reqwest::Client,
}

impl Answerer {
    /// A client with a 10 s limit per answer.
    pub fn new() -> Result<Self, KeySetupError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|error| KeySetupError::Answer(error.to_string()))?;
        Ok(Self { http })
    }

    /// PUTs `status` (`SUCCESS` or `FAILED`) with `reason` to the event's response URL.
    pub async fn answer(
        &self,
        event: &CustomResourceEvent,
        status: &str,
        reason: String,
    ) -> Result<(), KeySetupError> {
        let response = CustomResourceResponse {
            status,
            reason,
            physical_resource_id: PHYSICAL_ID,
            stack_id: &event.stack_id,
            request_id: &event.request_id,
            logical_resource_id: &event.logical_resource_id,
        };
        let body = serde_json::to_vec(&response).map_err(|error| KeySetupError::Answer(error.to_string()))?;
        // The pre-signed URL expects no content type (it is part of the signature).
        let answered = self
            .http
            .put(&event.response_url)
            .header("content-type", "")
            .body(body)
            .send()
            .await
            .map_err(|error| KeySetupError::Answer(error.without_url().to_string()))?;
        if answered.status().is_success() {
            Ok(())
        } else {
            Err(KeySetupError::Answer(format!("status {}", answered.status())))
        }
    }

    /// What a container whose start-up failed (no configuration, no key store client) still does:
    /// tells CloudFormation, so the deployment rolls back at once instead of waiting.
    pub async fn refuse(&self, event: &CustomResourceEvent) -> Result<(), KeySetupError> {
        self.answer(
            event,
            "FAILED",
            "the key set-up could not start; see the function's log".into(),
        )
        .await
    }
}

/// The key store, and the client that answers CloudFormation.
#[derive(Clone)]
pub struct KeySetup {
    keys: KeyManager,
    answerer: Answerer,
}

impl KeySetup {
    /// From the Lambda environment (the table and key names every function gets).
    pub async fn from_env() -> Result<Self, KeySetupError> {
        let config = Config::from_env()?;
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::new(&config, &sdk)
    }

    /// From explicit configuration (the local stack and tests).
    pub fn new(config: &Config, sdk: &aws_config::SdkConfig) -> Result<Self, KeySetupError> {
        let keys = KeyClients {
            kms: aws_sdk_kms::Client::new(sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
        };
        Ok(Self {
            keys: KeyManager::new(config, &keys)?,
            answerer: Answerer::new()?,
        })
    }

    /// Creates the system keys on `Create` and `Update` (idempotent, within [`WORK_LIMIT`]), does
    /// nothing on `Delete`, and answers CloudFormation either way: a failure is answered `FAILED`
    /// with its kind, so the deployment stops and rolls back instead of waiting. Once CloudFormation
    /// has its answer the invocation succeeds (a retry by Lambda would only answer again); it fails
    /// only when the answer could not be given.
    pub async fn handle(&self, event: CustomResourceEvent) -> Result<(), KeySetupError> {
        let outcome = match event.request_type.as_str() {
            "Create" | "Update" => tokio::time::timeout(WORK_LIMIT, self.keys.ensure_system_keys())
                .await
                .unwrap_or_else(|_| {
                    Err(CryptoError::KeyStore(
                        "the key store did not answer in time".into(),
                    ))
                }),
            _ => Ok(()),
        };
        let (status, reason) = match &outcome {
            Ok(()) => ("SUCCESS", format!("system keys ready ({})", event.request_type)),
            Err(error) => {
                tracing::error!(error = %error, "system keys could not be created");
                (
                    "FAILED",
                    "the system branch keys could not be created; see the function's log".to_owned(),
                )
            }
        };
        self.answerer.answer(&event, status, reason).await
    }
}
