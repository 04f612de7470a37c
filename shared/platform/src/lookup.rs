//! Keyed hashes for exact, collision-free lookups without plaintext (uniqueness locks).
//!
//! Beacons are short on purpose (false positives hide who is who), so they cannot tell two e-mails
//! apart for certain. A lock item keyed by the full HMAC-SHA-256 of the normalised value, computed by
//! KMS under a key that never leaves it, can.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::MacAlgorithmSpec;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::sync::Arc;
use thiserror::Error;
use tokio::sync::OnceCell;

/// Computing a keyed hash failed.
#[derive(Debug, Error)]
#[error("keyed hash: {0}")]
pub struct LookupError(String);

/// The e-mail as compared everywhere: trimmed and lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The KMS HMAC key behind uniqueness locks, and the per-container digest key derived from it.
#[derive(Clone)]
pub struct LookupKey {
    kms: aws_sdk_kms::Client,
    key_arn: String,
    /// HMAC of a fixed label under the KMS key: the same in every container (so every function's
    /// digests agree), never stored, fetched once per container. It keys [`LookupKey::digest`], which
    /// runs on every request (rate limits, revocation, cursors) and so must not cost a KMS call each.
    digest_key: Arc<OnceCell<Vec<u8>>>,
}

impl std::fmt::Debug for LookupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LookupKey")
            .field("key_arn", &self.key_arn)
            .finish_non_exhaustive()
    }
}

/// The label the digest key is derived from; a new version derives a new key (and new digests).
const DIGEST_KEY_LABEL: &str = "officertrak:derive:digest-key:v1";

impl LookupKey {
    /// The HMAC key `key_arn` (KeySpec HMAC_256) through `kms`.
    pub fn new(kms: aws_sdk_kms::Client, key_arn: String) -> Self {
        Self {
            kms,
            key_arn,
            digest_key: Arc::new(OnceCell::new()),
        }
    }

    /// Hex HMAC-SHA-256 of the normalised e-mail (domain-separated from other lookups).
    pub async fn email_hash(&self, email: &str) -> Result<String, LookupError> {
        self.hash("email", &normalize_email(email)).await
    }

    /// Hex HMAC-SHA-256 of arbitrary bytes for `purpose` (rate-limit subjects, revocation markers,
    /// cursors), computed here under the derived digest key: one KMS call per container, none per
    /// request. Uniqueness locks keep [`LookupKey::email_hash`], computed by KMS itself.
    pub async fn digest(&self, purpose: &str, bytes: &[u8]) -> Result<String, LookupError> {
        let key = self
            .digest_key
            .get_or_try_init(|| async {
                let hex_key = self.mac(DIGEST_KEY_LABEL.as_bytes().to_vec()).await?;
                hex::decode(hex_key).map_err(|_| LookupError("KMS returned a malformed MAC".into()))
            })
            .await?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| LookupError("digest key".into()))?;
        mac.update(format!("officertrak:{purpose}:").as_bytes());
        mac.update(bytes);
        Ok(hex::encode(mac.finalize().into_bytes()))
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
