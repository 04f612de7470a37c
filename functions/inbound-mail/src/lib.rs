//! The inbound-mail function: mail to the support address. SES's receipt rule (`SupportReceiptRule`
//! in template.yaml) stores each message in the `SupportMailBucket` under `inbound/<message id>`, then
//! invokes this function with the receipt event. The function reads the stored message, parses it
//! (`mail-parser`) and hands it to [`domain::support::receive_mail`]. The raw message expires from the
//! bucket by its lifecycle rule; what is kept is the encrypted inquiry.

use aws_lambda_events::event::ses::{SimpleEmailEvent, SimpleEmailRecord};
use domain::support::{InboundMail, MailOutcome};
use platform::AppState;
use thiserror::Error;

/// The prefix SES's S3 action writes under (template.yaml: `ObjectKeyPrefix`).
pub const OBJECT_PREFIX: &str = "inbound/";

/// Where SES stored the messages.
#[derive(Clone)]
pub struct Mailbox {
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
}

/// A message could not be taken in; the Lambda service retries the event (twice, for SES's
/// asynchronous invocation). Carries codes and kinds only: never an address or a subject.
#[derive(Debug, Error)]
pub enum InboundError {
    #[error("environment variable INBOUND_MAIL_BUCKET is not set (template.yaml sets it)")]
    NoBucket,
    #[error("the receipt event names no message id")]
    NoMessageId,
    #[error("the stored message could not be read (S3 {0})")]
    Storage(String),
    #[error("the message was not stored: {0}")]
    Domain(String),
}

impl Mailbox {
    /// The bucket from `INBOUND_MAIL_BUCKET`, with an S3 client from the environment.
    pub async fn from_env() -> Result<Self, InboundError> {
        let bucket = std::env::var("INBOUND_MAIL_BUCKET")
            .ok()
            .filter(|b| !b.trim().is_empty())
            .ok_or(InboundError::NoBucket)?;
        let sdk = aws_config::load_from_env().await;
        Ok(Self {
            s3: aws_sdk_s3::Client::new(&sdk),
            bucket,
        })
    }

    /// The first [`MAX_READ_BYTES`] of stored message `message_id` (all of a smaller one).
    pub async fn raw_message(&self, message_id: &str) -> Result<Vec<u8>, InboundError> {
        use aws_sdk_s3::error::ProvideErrorMetadata;
        let object = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(format!("{OBJECT_PREFIX}{message_id}"))
            .range(format!("bytes=0-{}", MAX_READ_BYTES - 1))
            .send()
            .await
            .map_err(|e| InboundError::Storage(e.code().unwrap_or("unknown").to_owned()))?;
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|_| InboundError::Storage("body".to_owned()))?;
        Ok(bytes.into_bytes().to_vec())
    }
}

/// How much of a message is read: its headers and its text come first, and an inquiry keeps a few
/// thousand characters of it; the rest (attachments, up to SES's 40 MB) is never read, so the
/// function's memory does not grow with the message (128 MB holds this twice over).
pub const MAX_READ_BYTES: usize = 1024 * 1024;

/// Handles one receipt event (SES sends one record per message).
pub async fn handle(
    state: &AppState,
    mailbox: &Mailbox,
    event: SimpleEmailEvent,
) -> Result<(), InboundError> {
    for record in event.records {
        let outcome = take_in(state, mailbox, &record).await?;
        match outcome {
            MailOutcome::Dropped(why) => tracing::info!(why, "support mail dropped"),
            MailOutcome::Duplicate => tracing::info!("support mail received before"),
            MailOutcome::Received { written_request, .. } => tracing::info!(
                written_request = written_request.is_some(),
                "support mail received"
            ),
        }
    }
    Ok(())
}

fn failed(verdict: &aws_lambda_events::event::ses::SimpleEmailVerdict) -> bool {
    verdict.status.as_deref() == Some("FAIL")
}

fn passed(verdict: &aws_lambda_events::event::ses::SimpleEmailVerdict) -> bool {
    verdict.status.as_deref() == Some("PASS")
}

/// Whether the From header cannot be trusted: DMARC failed, or neither SPF nor DKIM passed (a domain
/// without DMARC, `GRAY`, proves its mail by one of them or not at all).
fn unauthenticated(receipt: &aws_lambda_events::event::ses::SimpleEmailReceipt) -> bool {
    failed(&receipt.dmarc_verdict) || !(passed(&receipt.spf_verdict) || passed(&receipt.dkim_verdict))
}

/// Reads, parses and hands one message to the domain.
pub async fn take_in(
    state: &AppState,
    mailbox: &Mailbox,
    record: &SimpleEmailRecord,
) -> Result<MailOutcome, InboundError> {
    let message_id = record
        .ses
        .mail
        .message_id
        .clone()
        .filter(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .ok_or(InboundError::NoMessageId)?;
    let receipt = &record.ses.receipt;
    let received_at =
        jiff::Timestamp::from_second(receipt.timestamp.timestamp()).unwrap_or_else(|_| state.clock.now());
    let failed_scan = failed(&receipt.spam_verdict) || failed(&receipt.virus_verdict);
    let failed_authentication = unauthenticated(receipt);
    let raw = mailbox.raw_message(&message_id).await?;
    let mail = match mail_parser::MessageParser::default().parse(&raw) {
        Some(message) => {
            let from = message.from().and_then(|address| address.first());
            InboundMail {
                message_id,
                from_address: from
                    .and_then(|a| a.address.as_deref())
                    .unwrap_or_default()
                    .to_owned(),
                from_name: from.and_then(|a| a.name.as_deref()).map(str::to_owned),
                subject: message.subject().unwrap_or_default().to_owned(),
                text: message.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
                received_at,
                failed_scan,
                failed_authentication,
            }
        }
        // Not a message at all: nothing to answer, nobody to answer.
        None => return Ok(MailOutcome::Dropped("not a parseable message")),
    };
    domain::support::receive_mail(state, mail)
        .await
        .map_err(|error| InboundError::Domain(error.to_string()))
}
