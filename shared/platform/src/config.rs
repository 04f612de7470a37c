//! Configuration read from the environment that template.yaml (or the local stack) gives every function.

use thiserror::Error;

/// What a function needs to know about the resources it uses. Built once per container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The single application table (`DataTable` in template.yaml).
    pub table_name: String,
    /// The encryption key store table of the hierarchical keyring (`KeyStoreTable`).
    pub key_store_table_name: String,
    /// ARN of the KMS key that protects branch keys (`DataKey`).
    pub data_key_arn: String,
    /// ARN of the KMS HMAC key behind uniqueness locks (`LookupKey`).
    pub lookup_key_arn: String,
    /// Verified SES sender address for every mail we send.
    pub mail_sender: String,
    /// The Cognito user pool whose tokens the API accepts (erasure deletes users from it).
    pub user_pool_id: String,
    /// Base URL of the payment processor's API (`https://api.stripe.com`; locally, localstripe).
    pub stripe_api_base: String,
    /// Name or ARN of the Secrets Manager secret holding the processor's secret key and webhook
    /// secret (read once per container, on first use).
    pub stripe_secret_id: String,
    /// URL of the queue of privacy jobs (erasures, exports) the privacy worker takes
    /// (`PrivacyJobsQueue`).
    pub privacy_jobs_queue_url: String,
    /// The support address (the policy's support@officertrak.com): every mail we send names it as
    /// Reply-To, so a person's answer reaches support, never the no-reply sender.
    pub support_address: String,
    /// The SES configuration set every mail is sent through (`MailConfigurationSet`): SES suppresses
    /// addresses that bounced or complained, and publishes the reputation metrics ops alarm on.
    pub mail_configuration_set: String,
    /// The API's public base URL (`PUBLIC_API_URL`, the API's own endpoint): where the links in our
    /// mail point (a campaign's one-click unsubscribe). Only the function that sends campaigns has
    /// it: a function behind the API cannot name the API in its own environment (a cycle).
    pub public_api_url: Option<String>,
}

/// A required environment variable is missing or empty; the message names it.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {0} is not set (template.yaml sets it for every function)")]
    Missing(&'static str),
}

impl Config {
    /// Names of the environment variables, in one place so that tests and the local stack agree.
    pub const VARIABLES: [&'static str; 11] = [
        "TABLE_NAME",
        "KEY_STORE_TABLE_NAME",
        "DATA_KEY_ARN",
        "LOOKUP_KEY_ARN",
        "MAIL_SENDER",
        "USER_POOL_ID",
        "STRIPE_API_BASE",
        "STRIPE_SECRET_ID",
        "PRIVACY_JOBS_QUEUE_URL",
        "SUPPORT_ADDRESS",
        "MAIL_CONFIGURATION_SET",
    ];

    /// Reads the configuration from the process environment (the Lambda case).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, so the local stack can feed values resolved from
    /// template.yaml without touching the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| {
            lookup(name)
                .filter(|value| !value.trim().is_empty())
                .ok_or(ConfigError::Missing(name))
        };
        Ok(Self {
            table_name: get("TABLE_NAME")?,
            key_store_table_name: get("KEY_STORE_TABLE_NAME")?,
            data_key_arn: get("DATA_KEY_ARN")?,
            lookup_key_arn: get("LOOKUP_KEY_ARN")?,
            mail_sender: get("MAIL_SENDER")?,
            user_pool_id: get("USER_POOL_ID")?,
            stripe_api_base: get("STRIPE_API_BASE")?,
            stripe_secret_id: get("STRIPE_SECRET_ID")?,
            privacy_jobs_queue_url: get("PRIVACY_JOBS_QUEUE_URL")?,
            support_address: get("SUPPORT_ADDRESS")?,
            mail_configuration_set: get("MAIL_CONFIGURATION_SET")?,
            public_api_url: lookup("PUBLIC_API_URL")
                .map(|url| url.trim().trim_end_matches('/').to_owned())
                .filter(|url| !url.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn full() -> HashMap<&'static str, String> {
        Config::VARIABLES
            .iter()
            .map(|name| (*name, format!("value-of-{name}")))
            .collect()
    }

    #[test]
    fn reads_every_variable() {
        let vars = full();
        let config = Config::from_lookup(|name| vars.get(name).cloned()).expect("complete config");
        assert_eq!(config.table_name, "value-of-TABLE_NAME");
        assert_eq!(config.user_pool_id, "value-of-USER_POOL_ID");
        assert_eq!(config.public_api_url, None);
        let mut vars = vars;
        vars.insert("PUBLIC_API_URL", "https://api.example.com/".into());
        let config = Config::from_lookup(|name| vars.get(name).cloned()).expect("complete config");
        assert_eq!(config.public_api_url.as_deref(), Some("https://api.example.com"));
    }

    #[test]
    fn names_the_missing_variable() {
        for missing in Config::VARIABLES {
            let mut vars = full();
            vars.remove(missing);
            let err = Config::from_lookup(|name| vars.get(name).cloned()).expect_err("incomplete config");
            assert_eq!(err, ConfigError::Missing(missing));
            assert!(err.to_string().contains(missing));
        }
    }

    #[test]
    fn blank_counts_as_missing() {
        let mut vars = full();
        vars.insert("MAIL_SENDER", "  ".into());
        let err = Config::from_lookup(|name| vars.get(name).cloned()).expect_err("blank sender");
        assert_eq!(err, ConfigError::Missing("MAIL_SENDER"));
    }
}
