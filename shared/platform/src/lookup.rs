//! Keyed hashes for exact, collision-free lookups without plaintext (uniqueness locks).
//!
//! Beacons are short on purpose (false positives hide who is who), so they cannot tell two e-mails
//! apart for certain. A lock item keyed by the full HMAC-SHA-256 of the normalised value, computed by
//! KMS under a key that never leaves it, can.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::MacAlgorithmSpec;
use thiserror::Error;

/// Computing a keyed hash failed.
#[derive(Debug, Error)]
#[error("keyed hash: {0}")]
pub struct LookupError(String);

/// The e-mail as compared everywhere: trimmed and lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The KMS HMAC key behind uniqueness locks.
#[derive(Debug, Clone)]
pub struct LookupKey {
    kms: aws_sdk_kms::Client,
    key_arn: String,
}

impl LookupKey {
    /// The HMAC key `key_arn` (KeySpec HMAC_256) through `kms`.
    pub fn new(kms: aws_sdk_kms::Client, key_arn: String) -> Self {
        Self { kms, key_arn }
    }

    /// Hex HMAC-SHA-256 of the normalised e-mail (domain-separated from other lookups).
    pub async fn email_hash(&self, email: &str) -> Result<String, LookupError> {
        self.hash("email", &normalize_email(email)).await
    }

    /// Hex HMAC-SHA-256 of arbitrary bytes for `purpose` (cursors, request fingerprints).
    pub async fn digest(&self, purpose: &str, bytes: &[u8]) -> Result<String, LookupError> {
        let mut message = format!("officertrak:{purpose}:").into_bytes();
        message.extend_from_slice(bytes);
        self.mac(message).await
    }

    async fn hash(&self, purpose: &str, value: &str) -> Result<String, LookupError> {
        self.mac(format!("officertrak:{purpose}:{value}").into_bytes())
            .await
    }

    async fn mac(&self, message: Vec<u8>) -> Result<String, LookupError> {
        let output = self
            .kms
            .generate_mac()
            .key_id(&self.key_arn)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(Blob::new(message))
            .send()
            .await
            .map_err(|error| LookupError(aws_sdk_kms::error::DisplayErrorContext(error).to_string()))?;
        let mac = output
            .mac
            .ok_or_else(|| LookupError("KMS returned no MAC".into()))?;
        Ok(hex::encode(mac.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e_mails_compare_trimmed_and_lower_cased() {
        assert_eq!(
            normalize_email("  Ada.Lovelace@Example.COM "),
            "ada.lovelace@example.com"
        );
    }
}
