//! The mailer port: how the domain sends a message, without knowing it is SES.
//!
//! [`SesMailer`] is the adapter the functions use (SES v2, from the deployment's verified sender);
//! [`MemoryMailer`] keeps what was sent in memory, for fast unit tests of the rules that decide who is
//! mailed what. Errors carry a service code only: a provider's message can name the recipient.

use async_trait::async_trait;
use aws_sdk_sesv2::error::ProvideErrorMetadata;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message, RawMessage};
use std::sync::Mutex;
use thiserror::Error;

/// A rendered message: subject, plain text and HTML (mail clients pick a body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The one-click unsubscribe URL of a marketing mail (RFC 8058): sent as its `List-Unsubscribe`
    /// and `List-Unsubscribe-Post` headers, so the reader's mail client offers the button itself.
    pub list_unsubscribe: Option<String>,
}

/// Sending failed. Carries the provider's error code only, because this error is logged.
#[derive(Debug, Error)]
#[error("mail not sent (error code {0})")]
pub struct MailError(pub String);

/// Sends mail from the deployment's sender address.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends `mail` to `recipient`.
    async fn send(&self, recipient: &str, mail: &Mail) -> Result<(), MailError>;
    /// Sends `mail` from the support address: support's answers to the people who wrote to it.
    async fn send_from_support(&self, recipient: &str, mail: &Mail) -> Result<(), MailError>;
}

/// The SES v2 adapter.
pub struct SesMailer {
    client: aws_sdk_sesv2::Client,
    sender: String,
    support_address: String,
    configuration_set: String,
}

impl SesMailer {
    /// An adapter sending from `sender` (support's answers from `support_address`), both of which
    /// SES must have verified, through `configuration_set`; replies to any of our mails go to the
    /// support address.
    pub fn new(
        client: aws_sdk_sesv2::Client,
        sender: String,
        support_address: String,
        configuration_set: String,
    ) -> Self {
        Self {
            client,
            sender,
            support_address,
            configuration_set,
        }
    }
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, recipient: &str, mail: &Mail) -> Result<(), MailError> {
        self.send_as(&self.sender, recipient, mail).await
    }

    async fn send_from_support(&self, recipient: &str, mail: &Mail) -> Result<(), MailError> {
        self.send_as(&self.support_address, recipient, mail).await
    }
}

#[allow(clippy::disallowed_methods)] // The adapter itself: domain::mail::send is its one caller.
impl SesMailer {
    async fn send_as(&self, from: &str, recipient: &str, mail: &Mail) -> Result<(), MailError> {
        if let Some(url) = &mail.list_unsubscribe {
            return self.send_raw(from, recipient, mail, url).await;
        }
        let content = |data: &str| {
            Content::builder()
                .data(data)
                .charset("UTF-8")
                .build()
                .map_err(|e| MailError(e.to_string()))
        };
        self.client
            .send_email()
            .from_email_address(from)
            .configuration_set_name(&self.configuration_set)
            .reply_to_addresses(&self.support_address)
            .destination(Destination::builder().to_addresses(recipient).build())
            .content(
                EmailContent::builder()
                    .simple(
                        Message::builder()
                            .subject(content(&mail.subject)?)
                            .body(
                                Body::builder()
                                    .text(content(&mail.text)?)
                                    .html(content(&mail.html)?)
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .map_err(|error| MailError(error.code().unwrap_or("unknown").to_owned()))?;
        Ok(())
    }
}

#[allow(clippy::disallowed_methods)] // The adapter itself: domain::mail::send is its one caller.
impl SesMailer {
    /// A mail with its unsubscribe headers, built here (lettre) and sent raw: SES v2's simple form
    /// takes custom headers, but the local emulator drops them, and the test must see what is sent.
    async fn send_raw(&self, from: &str, recipient: &str, mail: &Mail, url: &str) -> Result<(), MailError> {
        let message = with_unsubscribe_headers(from, &self.support_address, recipient, mail, url)?;
        self.client
            .send_email()
            .from_email_address(from)
            .configuration_set_name(&self.configuration_set)
            .content(
                EmailContent::builder()
                    .raw(
                        RawMessage::builder()
                            .data(Blob::new(message))
                            .build()
                            .map_err(|e| MailError(e.to_string()))?,
                    )
                    .build(),
            )
            .send()
            .await
            .map_err(|error| MailError(error.code().unwrap_or("unknown").to_owned()))?;
        Ok(())
    }
}

/// The whole MIME message of `mail` with its one-click unsubscribe headers (RFC 8058: the URL in
/// `List-Unsubscribe`, and `List-Unsubscribe-Post: List-Unsubscribe=One-Click`).
fn with_unsubscribe_headers(
    from: &str,
    reply_to: &str,
    recipient: &str,
    mail: &Mail,
    url: &str,
) -> Result<Vec<u8>, MailError> {
    use lettre::message::header::{HeaderName, HeaderValue};
    use lettre::message::{Mailbox, Message as MimeMessage, MultiPart};
    let invalid = || MailError("InvalidParameterValue".to_owned());
    let mailbox = |address: &str| address.parse::<Mailbox>().map_err(|_| invalid());
    let message = MimeMessage::builder()
        .from(mailbox(from)?)
        .reply_to(mailbox(reply_to)?)
        .to(mailbox(recipient)?)
        .subject(mail.subject.clone())
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe"),
            format!("<{url}>"),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
            "List-Unsubscribe=One-Click".to_owned(),
        ))
        .multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            mail.html.clone(),
        ))
        .map_err(|_| invalid())?;
    Ok(message.formatted())
}

/// One message the in-memory mailer accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMail {
    pub recipient: String,
    pub mail: Mail,
    /// Sent from the support address rather than the no-reply sender.
    pub from_support: bool,
}

/// The in-memory adapter: records every message; refuses recipients listed in `failing`.
#[derive(Debug, Default)]
pub struct MemoryMailer {
    sent: Mutex<Vec<SentMail>>,
    failing: Mutex<Vec<String>>,
}

impl MemoryMailer {
    /// What was sent so far, oldest first.
    pub fn sent(&self) -> Vec<SentMail> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Makes every later send to `recipient` fail, as a bouncing address would.
    pub fn fail_for(&self, recipient: &str) {
        if let Ok(mut failing) = self.failing.lock() {
            failing.push(recipient.to_owned());
        }
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, recipient: &str, mail: &Mail) -> Result<(), MailError> {
        self.record(recipient, mail, false)
    }

    async fn send_from_support(&self, recipient: &str, mail: &Mail) -> Result<(), MailError> {
        self.record(recipient, mail, true)
    }
}

impl MemoryMailer {
    fn record(&self, recipient: &str, mail: &Mail, from_support: bool) -> Result<(), MailError> {
        let refused = self
            .failing
            .lock()
            .map(|f| f.iter().any(|r| r == recipient))
            .unwrap_or(false);
        if refused {
            return Err(MailError("MessageRejected".to_owned()));
        }
        let mut sent = self.sent.lock().map_err(|_| MailError("poisoned".to_owned()))?;
        sent.push(SentMail {
            recipient: recipient.to_owned(),
            mail: mail.clone(),
            from_support,
        });
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // The adapter's own test: no purpose is involved.
mod tests {
    use super::*;

    fn mail() -> Mail {
        Mail {
            subject: "s".into(),
            text: "t".into(),
            html: "<p>t</p>".into(),
            list_unsubscribe: None,
        }
    }

    #[test]
    fn a_mail_with_an_unsubscribe_link_carries_the_one_click_headers() {
        let url = format!(
            "https://api.example.com/v1/unsubscribe/one-click?token=2cca3a2c-0081-44a7-8644-32e561e6fd8a.marketing_email.1796464800.{}",
            "ab".repeat(32)
        );
        let mail = Mail {
            text: format!("Hello,\n\nTo stop these mails: {url}\n"),
            ..mail()
        };
        let raw = with_unsubscribe_headers(
            "no-reply@example.com",
            "support@example.com",
            "ada@example.com",
            &mail,
            &url,
        )
        .expect("a message");
        let raw = String::from_utf8(raw).expect("ASCII");
        let unfolded = raw.replace("\r\n ", " ").replace("\r\n\t", " ");
        assert!(
            unfolded.contains(&format!("List-Unsubscribe: <{url}>\r\n")),
            "{raw}"
        );
        assert!(
            unfolded.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"),
            "{raw}"
        );
        assert!(unfolded.contains("Reply-To: support@example.com"), "{raw}");
        assert!(
            with_unsubscribe_headers(
                "no-reply@example.com",
                "support@example.com",
                "not an address",
                &mail,
                &url
            )
            .is_err()
        );
    }

    #[tokio::test]
    async fn memory_mailer_records_and_refuses() {
        let mailer = MemoryMailer::default();
        mailer.fail_for("bounce@example.com");
        assert!(mailer.send("a@example.com", &mail()).await.is_ok());
        assert!(mailer.send("bounce@example.com", &mail()).await.is_err());
        let sent = mailer.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].recipient, "a@example.com");
    }
}
