//! The payment-processor port: how the domain authorises, captures, releases and refunds a payment
//! without knowing it is Stripe, and how it checks that a webhook really came from the processor.
//!
//! [`StripeProcessor`] is the adapter the functions use: Stripe's REST API over HTTPS, at a base URL
//! from configuration (`https://api.stripe.com`, or the local `localstripe`). Its secret key and
//! webhook secret are read from AWS Secrets Manager once per container, on first use, and never logged
//! or printed (`Debug` is redacted). Every call that moves money carries an `Idempotency-Key` derived
//! from our own record, so a retried Lambda never charges twice. Errors carry the processor's error
//! code only: its messages may repeat what the customer typed.
//!
//! A hand-written client rather than `async-stripe`: see README.md ("Payments") for why.

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use serde::Deserialize;
use sha2::Sha256;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::OnceCell;

/// A processor call failed. Carries codes, never the processor's messages.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProcessorError {
    /// The card was declined (Stripe's `card_error`): a state for the customer, not a fault.
    #[error("the payment was declined ({code})")]
    Declined { code: String },
    /// The processor refused the call as made (4xx other than a decline): the code says why.
    #[error("the processor refused the call (HTTP {status}, code {code})")]
    Refused { status: u16, code: String },
    /// The processor could not be reached or failed (network, timeout, 5xx, unreadable answer).
    #[error("the processor is unavailable: {0}")]
    Unavailable(String),
    /// The keys could not be read from Secrets Manager.
    #[error("the processor's keys could not be read: {0}")]
    Secret(String),
}

/// Where a payment intent stands at the processor (Stripe's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    RequiresPaymentMethod,
    RequiresConfirmation,
    RequiresAction,
    Processing,
    /// Authorised, waiting for our capture.
    RequiresCapture,
    Succeeded,
    Canceled,
    /// A status this client does not know (the processor added one): treated as not payable.
    #[serde(other)]
    Other,
}

/// A payment intent as the processor reports it: the facts we act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub id: String,
    pub status: IntentStatus,
    /// Cents authorised or charged.
    pub amount_cents: i64,
    /// The payment method it charges (reused for an off-session charge of a difference).
    pub payment_method: Option<String>,
    /// Our metadata on it: which customer and request it pays for.
    pub metadata: std::collections::BTreeMap<String, String>,
}

/// An authorisation (manual capture) of `amount_cents` on `payment_method` for `customer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentRequest<'a> {
    pub customer: &'a str,
    pub payment_method: &'a str,
    pub amount_cents: i64,
    pub currency: &'a str,
    /// `true`: authorise now, capture later. `false`: an off-session charge, captured at once.
    pub manual_capture: bool,
    /// Which customer and request this pays for; the webhook finds our record through it.
    pub metadata: &'a [(&'a str, &'a str)],
    pub idempotency_key: &'a str,
}

/// The processor: customers, payment intents, refunds, and the webhook's signature.
#[async_trait]
pub trait PaymentProcessor: Send + Sync {
    /// Creates a customer holding no personal data but our pseudonymous id; returns its id.
    async fn create_customer(&self, user_id: &str, idempotency_key: &str) -> Result<String, ProcessorError>;
    /// Attaches the client's payment method to the customer (checked by the card's issuer); returns
    /// the id of the attached method.
    async fn attach_payment_method(
        &self,
        payment_method: &str,
        customer: &str,
        idempotency_key: &str,
    ) -> Result<String, ProcessorError>;
    /// Creates and confirms a payment intent.
    async fn create_intent(&self, request: &IntentRequest<'_>) -> Result<Intent, ProcessorError>;
    /// The intent as the processor has it now.
    async fn intent(&self, intent_id: &str) -> Result<Intent, ProcessorError>;
    /// Captures `amount_cents` (at most the authorised amount; the rest is released).
    async fn capture(
        &self,
        intent_id: &str,
        amount_cents: i64,
        idempotency_key: &str,
    ) -> Result<Intent, ProcessorError>;
    /// Releases an authorisation.
    async fn cancel(&self, intent_id: &str, idempotency_key: &str) -> Result<Intent, ProcessorError>;
    /// Refunds `amount_cents` of a captured intent.
    async fn refund(
        &self,
        intent_id: &str,
        amount_cents: i64,
        idempotency_key: &str,
    ) -> Result<(), ProcessorError>;
    /// Deletes a customer (erasure). A customer already gone is no error.
    async fn delete_customer(&self, customer: &str) -> Result<(), ProcessorError>;
    /// Checks a webhook's `Stripe-Signature` against the webhook secret, at `now`.
    async fn verify_webhook(
        &self,
        payload: &[u8],
        signature: &str,
        now: Timestamp,
    ) -> Result<(), WebhookRefused>;
}

// ------------------------------------------------------------------------------------------ webhook

/// How old a signed webhook may be: Stripe's own libraries' default. Older is a replay.
pub const WEBHOOK_TOLERANCE_SECONDS: i64 = 300;

/// Why a webhook was not accepted. None of these changes anything.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WebhookRefused {
    #[error("the Stripe-Signature header is missing or malformed")]
    Malformed,
    #[error("the webhook is older than {WEBHOOK_TOLERANCE_SECONDS} seconds (or from the future)")]
    Stale,
    #[error("no signature of the webhook matches")]
    BadSignature,
    #[error("the webhook secret could not be read")]
    NoSecret,
}

/// Checks a `Stripe-Signature` header (`t=<unix>,v1=<hex>,…`): one `v1` must be the HMAC-SHA256 of
/// `<t>.<payload>` under `secret`, compared in constant time, and `t` within the tolerance of `now`.
pub fn verify_signature(
    secret: &str,
    payload: &[u8],
    header: &str,
    now: Timestamp,
) -> Result<(), WebhookRefused> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => {
                signatures.push(hex::decode(value).map_err(|_| WebhookRefused::Malformed)?)
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(WebhookRefused::Malformed)?;
    if signatures.is_empty() {
        return Err(WebhookRefused::Malformed);
    }
    if now.as_second().abs_diff(timestamp) > WEBHOOK_TOLERANCE_SECONDS.unsigned_abs() {
        return Err(WebhookRefused::Stale);
    }
    let mac = |signature: &[u8]| {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| WebhookRefused::NoSecret)?;
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        // `verify_slice` compares in constant time.
        Ok::<bool, WebhookRefused>(mac.verify_slice(signature).is_ok())
    };
    for signature in &signatures {
        if mac(signature)? {
            return Ok(());
        }
    }
    Err(WebhookRefused::BadSignature)
}

/// The `Stripe-Signature` header Stripe would send for `payload` at `timestamp`: what the local stack
/// and the tests use to play the processor's side.
pub fn sign(secret: &str, payload: &[u8], timestamp: i64) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return format!("t={timestamp}"),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

// ------------------------------------------------------------------------------------------ Stripe

/// The keys in the Secrets Manager secret (a JSON object).
#[derive(Clone, Deserialize)]
pub struct StripeKeys {
    pub secret_key: String,
    pub webhook_secret: String,
}

impl std::fmt::Debug for StripeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StripeKeys(redacted)")
    }
}

/// The Stripe adapter.
pub struct StripeProcessor {
    http: reqwest::Client,
    api_base: String,
    secrets: aws_sdk_secretsmanager::Client,
    secret_id: String,
    keys: OnceCell<StripeKeys>,
}

impl std::fmt::Debug for StripeProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeProcessor")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

/// Stripe's error body: `{"error": {"type": …, "code": …}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    decline_code: Option<String>,
}

/// The fields of an intent we read; everything else is ignored (lenient on purpose).
#[derive(Deserialize)]
struct IntentBody {
    id: String,
    status: IntentStatus,
    amount: i64,
    #[serde(default)]
    payment_method: Option<serde_json::Value>,
    #[serde(default)]
    metadata: std::collections::BTreeMap<String, String>,
}

impl From<IntentBody> for Intent {
    fn from(body: IntentBody) -> Self {
        // Stripe sends the method's id; expanded, it is an object with an `id`.
        let payment_method = match body.payment_method {
            Some(serde_json::Value::String(id)) => Some(id),
            Some(serde_json::Value::Object(object)) => {
                object.get("id").and_then(|v| v.as_str()).map(str::to_owned)
            }
            _ => None,
        };
        Intent {
            id: body.id,
            status: body.status,
            amount_cents: body.amount,
            payment_method,
            metadata: body.metadata,
        }
    }
}

#[derive(Deserialize)]
struct IdBody {
    id: String,
}

impl StripeProcessor {
    /// An adapter calling `api_base`, with the keys in the secret `secret_id`. Fails when no HTTPS
    /// client can be built (no TLS roots): a function must not start without its timeout.
    pub fn new(
        api_base: String,
        secrets: aws_sdk_secretsmanager::Client,
        secret_id: String,
    ) -> Result<Self, ProcessorError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(8))
            .build()
            .map_err(|_| ProcessorError::Unavailable("no HTTPS client could be built".into()))?;
        Ok(Self {
            http,
            api_base: api_base.trim_end_matches('/').to_owned(),
            secrets,
            secret_id,
            keys: OnceCell::new(),
        })
    }

    /// The keys, read from Secrets Manager on first use and kept for the container's life.
    async fn keys(&self) -> Result<&StripeKeys, ProcessorError> {
        self.keys
            .get_or_try_init(|| async {
                let secret = self
                    .secrets
                    .get_secret_value()
                    .secret_id(&self.secret_id)
                    .send()
                    .await
                    .map_err(|error| {
                        use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
                        ProcessorError::Secret(error.code().unwrap_or("unreachable").to_owned())
                    })?;
                let text = secret
                    .secret_string()
                    .ok_or_else(|| ProcessorError::Secret("the secret holds no string".into()))?;
                serde_json::from_str::<StripeKeys>(text).map_err(|_| {
                    ProcessorError::Secret("the secret is not {secret_key, webhook_secret}".into())
                })
            })
            .await
    }

    /// One call: form-encoded `params`, the idempotency key on writes, errors turned into codes;
    /// traced as a client span named by the method and the kind of object (`Stripe POST
    /// payment_intents`), never by an id or a parameter.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        params: &[(&str, String)],
        idempotency_key: Option<&str>,
    ) -> Result<T, ProcessorError> {
        use tracing::Instrument;
        let object = path
            .trim_start_matches("/v1/")
            .split('/')
            .next()
            .unwrap_or_default();
        let span = tracing::debug_span!(
            "processor",
            "otel.name" = %format!("Stripe {method} {object}"),
            "otel.kind" = "client",
            "rpc.system" = "stripe",
            "peer.service" = "Stripe",
        );
        self.send(method, path, params, idempotency_key)
            .instrument(span)
            .await
    }

    /// [`StripeProcessor::call`] without its span.
    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        params: &[(&str, String)],
        idempotency_key: Option<&str>,
    ) -> Result<T, ProcessorError> {
        let keys = self.keys().await?;
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.api_base))
            .bearer_auth(&keys.secret_key);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        if !params.is_empty() {
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
                .finish();
            request = request
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body);
        }
        let response = request.send().await.map_err(|error| {
            ProcessorError::Unavailable(if error.is_timeout() { "timeout" } else { "network" }.into())
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|_| ProcessorError::Unavailable("the answer was cut off".into()))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|_| ProcessorError::Unavailable("an answer this client cannot read".into()));
        }
        // 409 (the same idempotency key in flight) and 429 (rate limited) pass: try again later.
        if status.is_server_error() || status.as_u16() == 409 || status.as_u16() == 429 {
            return Err(ProcessorError::Unavailable(format!("HTTP {}", status.as_u16())));
        }
        let detail = serde_json::from_slice::<ErrorBody>(&bytes).ok().map(|b| b.error);
        // A code is a short machine word; anything else is not passed on (it could echo input).
        let code = detail
            .as_ref()
            .and_then(|d| d.decline_code.clone().or_else(|| d.code.clone()))
            .filter(|c| c.len() <= 64 && c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'))
            .unwrap_or_else(|| "unknown".into());
        let declined =
            status.as_u16() == 402 || detail.as_ref().and_then(|d| d.kind.as_deref()) == Some("card_error");
        Err(if declined {
            ProcessorError::Declined { code }
        } else {
            ProcessorError::Refused {
                status: status.as_u16(),
                code,
            }
        })
    }
}

#[async_trait]
impl PaymentProcessor for StripeProcessor {
    async fn create_customer(&self, user_id: &str, idempotency_key: &str) -> Result<String, ProcessorError> {
        let params = [("metadata[user_id]", user_id.to_owned())];
        let body: IdBody = self
            .call(
                reqwest::Method::POST,
                "/v1/customers",
                &params,
                Some(idempotency_key),
            )
            .await?;
        Ok(body.id)
    }

    async fn attach_payment_method(
        &self,
        payment_method: &str,
        customer: &str,
        idempotency_key: &str,
    ) -> Result<String, ProcessorError> {
        let path = format!("/v1/payment_methods/{}/attach", urlencode(payment_method));
        let params = [("customer", customer.to_owned())];
        let body: IdBody = self
            .call(reqwest::Method::POST, &path, &params, Some(idempotency_key))
            .await?;
        Ok(body.id)
    }

    async fn create_intent(&self, request: &IntentRequest<'_>) -> Result<Intent, ProcessorError> {
        let mut params = vec![
            ("amount", request.amount_cents.to_string()),
            ("currency", request.currency.to_lowercase()),
            ("customer", request.customer.to_owned()),
            ("payment_method", request.payment_method.to_owned()),
            ("confirm", "true".to_owned()),
        ];
        if request.manual_capture {
            params.push(("capture_method", "manual".to_owned()));
        } else {
            params.push(("off_session", "true".to_owned()));
        }
        let metadata: Vec<(String, String)> = request
            .metadata
            .iter()
            .map(|(k, v)| (format!("metadata[{k}]"), (*v).to_owned()))
            .collect();
        let mut all: Vec<(&str, String)> = params;
        all.extend(metadata.iter().map(|(k, v)| (k.as_str(), v.clone())));
        let body: IntentBody = self
            .call(
                reqwest::Method::POST,
                "/v1/payment_intents",
                &all,
                Some(request.idempotency_key),
            )
            .await?;
        Ok(body.into())
    }

    async fn intent(&self, intent_id: &str) -> Result<Intent, ProcessorError> {
        let path = format!("/v1/payment_intents/{}", urlencode(intent_id));
        let body: IntentBody = self.call(reqwest::Method::GET, &path, &[], None).await?;
        Ok(body.into())
    }

    async fn capture(
        &self,
        intent_id: &str,
        amount_cents: i64,
        idempotency_key: &str,
    ) -> Result<Intent, ProcessorError> {
        let path = format!("/v1/payment_intents/{}/capture", urlencode(intent_id));
        let params = [("amount_to_capture", amount_cents.to_string())];
        let body: IntentBody = self
            .call(reqwest::Method::POST, &path, &params, Some(idempotency_key))
            .await?;
        Ok(body.into())
    }

    async fn cancel(&self, intent_id: &str, idempotency_key: &str) -> Result<Intent, ProcessorError> {
        let path = format!("/v1/payment_intents/{}/cancel", urlencode(intent_id));
        let body: IntentBody = self
            .call(reqwest::Method::POST, &path, &[], Some(idempotency_key))
            .await?;
        Ok(body.into())
    }

    async fn refund(
        &self,
        intent_id: &str,
        amount_cents: i64,
        idempotency_key: &str,
    ) -> Result<(), ProcessorError> {
        let params = [
            ("payment_intent", intent_id.to_owned()),
            ("amount", amount_cents.to_string()),
        ];
        let _: IdBody = self
            .call(
                reqwest::Method::POST,
                "/v1/refunds",
                &params,
                Some(idempotency_key),
            )
            .await?;
        Ok(())
    }

    async fn delete_customer(&self, customer: &str) -> Result<(), ProcessorError> {
        let path = format!("/v1/customers/{}", urlencode(customer));
        match self
            .call::<serde_json::Value>(reqwest::Method::DELETE, &path, &[], None)
            .await
        {
            Ok(_) => Ok(()),
            Err(ProcessorError::Refused { status: 404, .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    async fn verify_webhook(
        &self,
        payload: &[u8],
        signature: &str,
        now: Timestamp,
    ) -> Result<(), WebhookRefused> {
        let keys = self.keys().await.map_err(|_| WebhookRefused::NoSecret)?;
        verify_signature(&keys.webhook_secret, payload, signature, now)
    }
}

/// A path segment, percent-encoded (ids come from our records, but a path is never built raw).
fn urlencode(segment: &str) -> String {
    form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn a_signature_made_with_the_secret_within_the_tolerance_is_accepted() {
        let payload = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;
        let header = sign(SECRET, payload, 1_800_000_000);
        assert_eq!(
            verify_signature(SECRET, payload, &header, at(1_800_000_000 + 299)),
            Ok(())
        );
        // Stripe sends several v1 signatures while a secret is rolled: any one may match.
        let rolled = format!(
            "t=1800000000,v1={},{}",
            "00".repeat(32),
            header.split_once(',').map(|(_, v)| v).unwrap_or("")
        );
        assert_eq!(
            verify_signature(SECRET, payload, &rolled, at(1_800_000_000)),
            Ok(())
        );
    }

    #[test]
    fn a_changed_payload_another_secret_a_stale_time_or_a_bad_header_is_refused() {
        let payload = br#"{"id":"evt_1"}"#;
        let header = sign(SECRET, payload, 1_800_000_000);
        let now = at(1_800_000_010);
        assert_eq!(
            verify_signature(SECRET, br#"{"id":"evt_2"}"#, &header, now),
            Err(WebhookRefused::BadSignature)
        );
        assert_eq!(
            verify_signature("whsec_other", payload, &header, now),
            Err(WebhookRefused::BadSignature)
        );
        assert_eq!(
            verify_signature(SECRET, payload, &header, at(1_800_000_000 + 301)),
            Err(WebhookRefused::Stale)
        );
        assert_eq!(
            verify_signature(SECRET, payload, &header, at(1_800_000_000 - 301)),
            Err(WebhookRefused::Stale)
        );
        assert_eq!(
            verify_signature(SECRET, payload, &format!("t={},v1=00", i64::MIN), now),
            Err(WebhookRefused::Stale),
            "the most negative time neither overflows nor passes"
        );
        for bad in ["", "t=1800000000", "v1=00", "t=x,v1=00", "t=1800000000,v1=zz"] {
            assert_eq!(
                verify_signature(SECRET, payload, bad, now),
                Err(WebhookRefused::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn keys_never_show_in_debug_output() {
        let keys = StripeKeys {
            secret_key: "sk_live_very_secret".into(),
            webhook_secret: "whsec_very_secret".into(),
        };
        assert!(!format!("{keys:?}").contains("secret_"));
    }

    #[test]
    fn an_intent_is_read_leniently() {
        let body: IntentBody = serde_json::from_str(
            r#"{"id":"pi_1","object":"payment_intent","status":"requires_capture","amount":1200,
                "payment_method":{"id":"pm_9","card":{}},"metadata":{"request_id":"r1"},"unknown":{"a":1}}"#,
        )
        .expect("lenient");
        let intent = Intent::from(body);
        assert_eq!(intent.status, IntentStatus::RequiresCapture);
        assert_eq!(intent.payment_method.as_deref(), Some("pm_9"));
        let future: IntentBody = serde_json::from_str(r#"{"id":"pi_2","status":"something_new","amount":1}"#)
            .expect("unknown status");
        assert_eq!(future.status, IntentStatus::Other);
    }
}
