//! Mail to the support address. SES receives it, stores the raw message in S3 and invokes the
//! inbound-mail function (template.yaml: `SupportReceiptRule`), which parses it and calls
//! [`receive_mail`]. A message becomes an anonymous inquiry under its sender's address (the From
//! header is the sender's word: an answer goes to that address, never elsewhere). One that asks for
//! access, portability, correction, deletion or restriction also opens that privacy request for the
//! account holding the address, its legal clock running from the mail's receipt, waiting
//! `identity_unverified` until the account's holder confirms it signed in; a sender whose address no
//! account holds gets the same acknowledgement and nothing else. A report about a minor is flagged.

use super::*;
use crate::privacy::requests::{self, RequestType};

/// One received message, as the inbound-mail function read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMail {
    /// SES's message id (also the S3 object's name): receiving the same message twice is one inquiry.
    pub message_id: String,
    /// The From header's address.
    pub from_address: String,
    /// The From header's display name.
    pub from_name: Option<String>,
    pub subject: String,
    /// The plain-text body (or the text of the HTML body).
    pub text: String,
    /// When SES received it: a written request's deadline counts from here.
    pub received_at: Timestamp,
    /// SES's spam or virus scan failed it.
    pub failed_scan: bool,
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailOutcome {
    /// Not stored: the scan failed it, or it has no usable sender address.
    Dropped(&'static str),
    /// Received before (SES or Lambda delivered it again).
    Duplicate,
    /// Stored as an inquiry; with the id of the privacy request it opened, if any.
    Received {
        inquiry_id: String,
        written_request: Option<String>,
    },
}

/// What a message asks for, by its words: the inquiry's topic and the right it exercises, if any.
pub fn classify(subject: &str, text: &str) -> (Topic, Option<RequestType>) {
    let head: String = text.chars().take(4000).collect();
    let words: String = format!(" {subject} {head} ")
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    let words = words.split_whitespace().collect::<Vec<_>>().join(" ");
    let has = |phrases: &[&str]| {
        phrases
            .iter()
            .any(|p| format!(" {words} ").contains(&format!(" {p} ")))
    };
    let right = if has(&[
        "delete my",
        "delete all",
        "deletion",
        "erase",
        "erasure",
        "remove my data",
        "remove my account",
        "close my account",
        "forget me",
        "right to be forgotten",
    ]) {
        Some(RequestType::Deletion)
    } else if has(&["restrict", "restriction", "stop processing"]) {
        Some(RequestType::Restriction)
    } else if has(&["correct my", "correction", "rectify", "rectification"]) {
        Some(RequestType::Correction)
    } else if has(&["portability", "export my data", "machine readable"]) {
        Some(RequestType::Portability)
    } else if has(&[
        "copy of my data",
        "access to my data",
        "access request",
        "subject access",
        "data you hold",
    ]) {
        Some(RequestType::Access)
    } else {
        None
    };
    let minor = has(&[
        "minor",
        "minors",
        "under 18",
        "underage",
        "under age",
        "my son",
        "my daughter",
        "my child",
    ]);
    let topic = match (minor, right) {
        (true, _) => Topic::MinorData,
        (false, Some(_)) => Topic::Privacy,
        (false, None) => Topic::General,
    };
    (topic, right)
}

fn truncated(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Stores one received message as an inquiry, acknowledges it to its sender (at most
/// 5 acknowledgements a day per address, so a forged flood cannot turn us on a stranger's mailbox),
/// opens the written privacy request it asks for (for the account holding the address) and flags a
/// report about a minor.
pub async fn receive_mail(state: &AppState, mail: InboundMail) -> Result<MailOutcome, ApiError> {
    if mail.failed_scan {
        tracing::info!("support mail dropped: failed SES's spam or virus scan");
        return Ok(MailOutcome::Dropped("failed the spam or virus scan"));
    }
    let address = mail.from_address.trim();
    if !edge::validation::is_email(address) {
        tracing::info!("support mail dropped: no usable sender address");
        return Ok(MailOutcome::Dropped("no usable sender address"));
    }
    let hash = state.lookup.email_hash(address).await?;
    let digest = sha2::Sha256::digest(format!("inbound-mail:{}", mail.message_id).as_bytes());
    let local = hex::encode(&digest[..16]);
    let (topic, right) = classify(&mail.subject, &mail.text);
    let message = truncated(
        &format!("{}\n\n{}", mail.subject.trim(), mail.text.trim()),
        MESSAGE_MAX,
    );
    let mut inquiry = new_inquiry(
        format!("a.{hash}.{local}"),
        topic,
        &message,
        None,
        mail.received_at,
    );
    inquiry.channel = Channel::Email;
    inquiry.inquirer_hash = Some(hash.clone());
    inquiry.name = mail
        .from_name
        .as_deref()
        .map(|n| truncated(n.trim(), 200))
        .filter(|n| !n.is_empty());
    inquiry.email = Some(address.to_owned());
    match state.store.create(&inquiry).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed) => return Ok(MailOutcome::Duplicate),
        Err(error) => return Err(error.into()),
    }
    tracing::info!(topic = ?inquiry.topic, channel = "email", "support inquiry received");
    match edge::rate_limit::check(state, ANONYMOUS_PER_ADDRESS, None, Some(&hash)).await {
        Ok(()) => {
            let ack = crate::mail::inquiry_received(&inquiry.inquiry_id);
            if let Err(error) = state.mailer.send(address, &ack).await {
                tracing::warn!(error = %error, "inquiry acknowledgement not sent");
            }
        }
        Err(ApiError::TooManyRequests { .. }) => {
            tracing::info!("acknowledgement withheld: the address's daily limit is reached");
        }
        Err(error) => return Err(error),
    }
    let mut written_request = None;
    if let Some(kind) = right
        && let Some(user_id) = crate::accounts::owner_of_email(&state.store, &hash).await?
    {
        written_request =
            requests::receive_written(state, &user_id, kind, mail.received_at, &inquiry.inquiry_id)
                .await?
                .map(|view| view.id);
    }
    flag_minor_report(state, &inquiry).await;
    Ok(MailOutcome::Received {
        inquiry_id: inquiry.inquiry_id,
        written_request,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_words_of_a_message_name_its_right_and_flag_minors() {
        let cases = [
            (
                "Please delete my account",
                "",
                Topic::Privacy,
                Some(RequestType::Deletion),
            ),
            (
                "Request",
                "I want a copy of my data.",
                Topic::Privacy,
                Some(RequestType::Access),
            ),
            (
                "Wrong address",
                "Please correct my address",
                Topic::Privacy,
                Some(RequestType::Correction),
            ),
            (
                "Stop",
                "Restrict processing of my data",
                Topic::Privacy,
                Some(RequestType::Restriction),
            ),
            (
                "Export",
                "data portability please",
                Topic::Privacy,
                Some(RequestType::Portability),
            ),
            ("Question", "Do you staff regattas?", Topic::General, None),
            (
                "My son",
                "My son is 15 and has an account; erase it",
                Topic::MinorData,
                Some(RequestType::Deletion),
            ),
            ("Deletions?", "Undeletable? Deleting?", Topic::General, None),
        ];
        for (subject, text, topic, right) in cases {
            assert_eq!(classify(subject, text), (topic, right), "{subject} / {text}");
        }
    }
}
