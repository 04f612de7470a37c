//! Mail to the support address. SES receives it, stores the raw message in S3 and invokes the
//! inbound-mail function (template.yaml: `SupportReceiptRule`), which parses it and calls
//! [`receive_mail`]. A message becomes an anonymous inquiry under its sender's address (the From
//! header is the sender's word: an answer goes to that address, never elsewhere). One that asks for
//! access, portability, correction, deletion or restriction also opens that privacy request for the
//! account holding the address, its legal clock running from the mail's receipt, waiting
//! `identity_unverified` until the account's holder confirms it signed in; a sender whose address no
//! account holds gets the same acknowledgement and nothing else. A report about a minor is flagged.

use super::*;
use crate::privacy::requests::{self, RequestType, RequestView, WrittenSubject};
use subtle::ConstantTimeEq;

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
    /// SES's sender checks do not prove it (DMARC failed, or neither SPF nor DKIM passed): the From
    /// header may be forged.
    pub failed_authentication: bool,
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

/// Stores one received message as an inquiry and acknowledges it to its sender (at most 5 messages
/// a day per address are taken in, checked before anything is stored, so a forged flood neither
/// fills the queue nor turns us on a stranger's mailbox),
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
    // The same message delivered again (SES, or Lambda's retry after a failure below) finishes what
    // the first delivery left undone: opening the written request is idempotent; no mail is repeated.
    // A new message counts against its address's daily limit before anything is stored: past it, a
    // flood (forged or not) stores nothing, mails nobody and opens nothing.
    let duplicate = state.store.exists(&inquiry.key()).await?;
    if !duplicate {
        // Proven mail has its own count: forged mail in the address's name cannot use it up.
        let limits = if mail.failed_authentication {
            ANONYMOUS_PER_ADDRESS
        } else {
            PROVEN_MAIL_PER_ADDRESS
        };
        match edge::rate_limit::check(state, limits, None, Some(&hash)).await {
            Ok(()) => {}
            Err(ApiError::TooManyRequests { .. }) => {
                tracing::info!("support mail dropped: the address's daily limit is reached");
                return Ok(MailOutcome::Dropped("the sender's daily limit is reached"));
            }
            Err(error) => return Err(error),
        }
        match state.store.create(&inquiry).await {
            Ok(()) => {}
            // Stored meanwhile by a concurrent delivery of the same message: that one acknowledges.
            Err(StoreError::ConditionFailed) => return Ok(MailOutcome::Duplicate),
            Err(error) => return Err(error.into()),
        }
        tracing::info!(topic = ?inquiry.topic, channel = "email", "support inquiry received");
        acknowledge(state, address, &inquiry.inquiry_id).await;
    }
    // Failing the sender checks (DMARC, or neither SPF nor DKIM passing), a message stays an inquiry
    // for support: forged mail cannot open requests.
    let mut written_request = None;
    if let Some(kind) = right
        && !mail.failed_authentication
    {
        let subject = match crate::accounts::owner_of_email(&state.store, &hash).await? {
            Some(user_id) => WrittenSubject::Account(user_id),
            None => WrittenSubject::Address(hash.clone()),
        };
        let view =
            requests::receive_written(state, &subject, kind, mail.received_at, &inquiry.inquiry_id).await?;
        if let (Some(view), WrittenSubject::Address(_)) = (&view, &subject)
            && !duplicate
        {
            mail_confirmation_link(state, address, view).await?;
        }
        written_request = view.map(|view| view.id);
    }
    if duplicate {
        return Ok(MailOutcome::Duplicate);
    }
    flag_minor_report(state, &inquiry).await;
    Ok(MailOutcome::Received {
        inquiry_id: inquiry.inquiry_id,
        written_request,
    })
}

/// Purpose label of the confirmation link's signature (a keyed digest, see `platform::lookup`).
const LINK_PURPOSE: &str = "written-request-link";

async fn link_signature(state: &AppState, request_id: &str, expires: i64) -> Result<String, ApiError> {
    Ok(state
        .lookup
        .digest(LINK_PURPOSE, format!("{request_id}:{expires}").as_bytes())
        .await?)
}

/// Mails the sender of a written request about an address no account holds the signed, expiring
/// confirmation: only someone who reads that mailbox can confirm it.
async fn mail_confirmation_link(state: &AppState, address: &str, view: &RequestView) -> Result<(), ApiError> {
    let expires = requests::confirm_by(view.received_at);
    let signature = link_signature(state, &view.id, expires.as_second()).await?;
    let mail = crate::mail::address_request_link(
        &view.id,
        &serde_json::to_value(view.kind)
            .ok()
            .and_then(|v| v.as_str().map(|k| k.replace('_', " ")))
            .unwrap_or_default(),
        expires.as_second(),
        &signature,
        &expires.strftime("%Y-%m-%d").to_string(),
    );
    if let Err(error) = crate::mail::send_service_from_support(state, address, &mail).await {
        tracing::warn!(error = %error, "confirmation link not sent");
    }
    Ok(())
}

/// The body of `POST /v1/support/confirmations`: what the mailed link carries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressConfirmation {
    pub request_id: String,
    pub expires: i64,
    pub signature: String,
}

/// Most inquiries one confirmation acts on; beyond, the privacy officers finish the request.
const CONFIRMATION_MAX_INQUIRIES: usize = 500;

/// `POST /v1/support/confirmations` (no sign-in: the signature is the proof): the holder of an
/// address no account holds confirms the written request they made about the messages sent from it.
/// A deletion deletes those inquiries; access and portability mail them to the address (from
/// support); a correction or restriction is verified for the privacy officers. 403 for a wrong or
/// expired signature, checked before anything is read (a forged link learns nothing, not even
/// whether the request exists); 404 for a signed request that is gone; 409 for one not waiting.
pub async fn confirm_address_request(
    state: &AppState,
    input: AddressConfirmation,
) -> Result<RequestView, ApiError> {
    let not_valid = || ApiError::Forbidden("this confirmation link is not valid".into());
    let expected = link_signature(state, &input.request_id, input.expires).await?;
    if !bool::from(expected.as_bytes().ct_eq(input.signature.as_bytes())) {
        return Err(not_valid());
    }
    let request = requests::address_request(state, &input.request_id).await?;
    if input.expires != request.confirm_by.as_second() {
        return Err(not_valid());
    }
    let pk = format!("{ANONYMOUS_PARTITION_PREFIX}{}", request.address_hash);
    let found = state
        .store
        .query::<Inquiry>(&pk, INQUIRY_PREFIX, CONFIRMATION_MAX_INQUIRIES + 1)
        .await?;
    let complete = found.len() <= CONFIRMATION_MAX_INQUIRIES;
    let inquiries: Vec<Inquiry> = found
        .into_iter()
        .take(CONFIRMATION_MAX_INQUIRIES)
        .map(|v| v.record)
        .collect();
    let outcome = match request.kind {
        RequestType::Deletion => {
            for inquiry in &inquiries {
                state.store.delete(&inquiry.key()).await?;
            }
            complete.then(|| {
                summary(format!(
                    "the {} message(s) sent to us from this address were deleted",
                    inquiries.len()
                ))
            })
        }
        RequestType::Access | RequestType::Portability => {
            let address = inquiries.iter().find_map(|i| i.email.clone());
            let views: Vec<InquiryView> = inquiries.into_iter().map(InquiryView::from).collect();
            let text = serde_json::to_string_pretty(&views).unwrap_or_default();
            if let Some(address) = address {
                let mail = crate::mail::address_export(&request.request_id, views.len(), &text);
                crate::mail::send_service_from_support(state, &address, &mail)
                    .await
                    .map_err(|error| ApiError::Internal(error.to_string()))?;
            }
            complete.then(|| {
                summary(format!(
                    "the {} message(s) sent to us from this address were mailed to it",
                    views.len()
                ))
            })
        }
        _ => None,
    };
    requests::finish_address_request(state, &request.request_id, outcome).await
}

fn summary(text: String) -> requests::RequestResult {
    requests::RequestResult {
        summary: text,
        retained: Vec::new(),
        export: None,
        erasure: None,
    }
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
