//! What our mail says, and the one way it is sent: [`send`] and [`send_from_support`] take the
//! [`Permit`] of the purpose the mail serves (`platform::mailer` is the SES adapter underneath;
//! clippy's `disallowed-methods` keeps every other caller off it). Every message carries only what
//! its recipient needs: service mail names the recipient by first name at most; marketing goes only
//! to active accounts that consented.

use crate::purposes::{Original, Permit};
use platform::AppState;
use platform::mailer::{Mail, MailError};

/// Sends `message` to `recipient` for the purpose `permit` was given for: no mail without a checked
/// purpose. Logs the purpose's name (never the recipient) so the mail sent per purpose is countable.
pub async fn send(
    state: &AppState,
    permit: &Permit,
    recipient: &str,
    message: &Mail,
) -> Result<(), MailError> {
    fits(permit, message)?;
    #[allow(clippy::disallowed_methods)] // The one caller of the mailer: the permit is checked here.
    let sent = state.mailer.send(recipient, message).await;
    tracing::info!(purpose = permit.purpose(), sent = sent.is_ok(), "mail");
    sent
}

/// [`send`] for service mail (the account, requests, shifts, privacy rights, the policy): under the
/// policy's original purpose `service_contact`, which needs no consent.
pub async fn send_service(state: &AppState, recipient: &str, message: &Mail) -> Result<(), MailError> {
    send(state, &Original::ServiceContact.permit(), recipient, message).await
}

/// [`send_from_support`] for service mail: support's answers and confirmations.
pub async fn send_service_from_support(
    state: &AppState,
    recipient: &str,
    message: &Mail,
) -> Result<(), MailError> {
    send_from_support(state, &Original::ServiceContact.permit(), recipient, message).await
}

/// Refuses a mail sent under the wrong kind of permit: a mail with an unsubscribe link (marketing)
/// only under a purpose the person consented to, and every mail under such a purpose with its link,
/// so a service permit cannot carry a promotion and a promotion cannot go without its way out.
fn fits(permit: &Permit, message: &Mail) -> Result<(), MailError> {
    if permit.needed_consent() == message.list_unsubscribe.is_some() {
        Ok(())
    } else {
        tracing::error!(
            purpose = permit.purpose(),
            "mail refused: its permit does not fit it"
        );
        Err(MailError("PermitMismatch".to_owned()))
    }
}

/// [`send`], from the support address: support's answers to the people who wrote to it.
pub async fn send_from_support(
    state: &AppState,
    permit: &Permit,
    recipient: &str,
    message: &Mail,
) -> Result<(), MailError> {
    fits(permit, message)?;
    #[allow(clippy::disallowed_methods)] // The one caller of the mailer: the permit is checked here.
    let sent = state.mailer.send_from_support(recipient, message).await;
    tracing::info!(
        purpose = permit.purpose(),
        sent = sent.is_ok(),
        "mail from support"
    );
    sent
}

/// The first word of a name: the only personal detail a welcome mail carries.
pub fn first_name(full_name: &str) -> &str {
    full_name.split_whitespace().next().unwrap_or("there")
}

/// Text made safe to place in HTML (our mail, and the unsubscribe page).
pub fn escape_html(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            other => other.to_string(),
        })
        .collect()
}

/// The welcome mail after registration as `role_label` ("customer", "Security Provider").
pub fn welcome(first_name: &str, role_label: &str) -> Mail {
    let subject = "Welcome to OfficerTRAK".to_owned();
    let text = format!(
        "Hello {first_name},\n\nyour OfficerTRAK {role_label} account is ready.\n\
         You can see and correct what we hold about you in the app, and ask us to delete it at any time.\n\n\
         The OfficerTRAK team\n"
    );
    let html = format!(
        "<!doctype html><html><body><p>Hello {},</p><p>your OfficerTRAK {} account is ready.</p>\
         <p>You can see and correct what we hold about you in the app, and ask us to delete it at any time.</p>\
         <p>The OfficerTRAK team</p></body></html>",
        escape_html(first_name),
        escape_html(role_label)
    );
    Mail {
        subject,
        text,
        html,
        list_unsubscribe: None,
    }
}

/// Tells an officer that a shift they were assigned to was cancelled: which shift, nothing more.
pub fn shift_cancelled(first_name: &str, site_name: &str, city: &str, local_start: &str) -> Mail {
    let subject = "A shift you were assigned to was cancelled".to_owned();
    let text = format!(
        "Hello {first_name},\n\nthe shift at {site_name}, {city}, starting {local_start}, was cancelled.\n         You are released from it; nothing else is needed from you.\n\nThe OfficerTRAK team\n"
    );
    let html = format!(
        "<!doctype html><html><body><p>Hello {},</p><p>the shift at {}, {}, starting {}, was cancelled.</p>\
         <p>You are released from it; nothing else is needed from you.</p><p>The OfficerTRAK team</p></body></html>",
        escape_html(first_name),
        escape_html(site_name),
        escape_html(city),
        escape_html(local_start)
    );
    Mail {
        subject,
        text,
        html,
        list_unsubscribe: None,
    }
}

/// A plain service message: greeting, paragraphs, signature; the HTML is escaped.
fn service_message(subject: String, greeting: &str, paragraphs: &[String]) -> Mail {
    let mut text = format!("Hello {greeting},\n\n");
    let mut html = format!(
        "<!doctype html><html><body><p>Hello {},</p>",
        escape_html(greeting)
    );
    for paragraph in paragraphs {
        text.push_str(paragraph);
        text.push_str("\n\n");
        html.push_str(&format!("<p>{}</p>", escape_html(paragraph)));
    }
    text.push_str("The OfficerTRAK team\n");
    html.push_str("<p>The OfficerTRAK team</p></body></html>");
    Mail {
        subject,
        text,
        html,
        list_unsubscribe: None,
    }
}

/// Tells an officer they hold a new shift: what, where (city), when, and the confirmation deadline.
/// The customer and the on-site contact are not named: the officer sees them in the app once they hold
/// the slot.
/// `respond_by` is `None` when the officer claimed the shift (claiming is confirming).
pub fn shift_assigned(
    first_name: &str,
    event_kind: &str,
    city: &str,
    local_start: &str,
    respond_by: Option<&str>,
) -> Mail {
    let next = match respond_by {
        Some(by) => format!("Please accept or decline it in the app before {by}."),
        None => {
            "You claimed it, so it is confirmed. If you cannot make it, release it in the app.".to_owned()
        }
    };
    service_message(
        "You have a new shift".to_owned(),
        first_name,
        &[
            format!("you were placed on a {event_kind} shift in {city}, starting {local_start}."),
            next,
        ],
    )
}

/// Tells the customer how staffing of their request stands: officer first names and counts only.
pub fn staffing_changed(
    first_name: &str,
    event_name: &str,
    local_start: &str,
    officer_first_name: &str,
    joined: bool,
    filled: u32,
    officers: u32,
) -> Mail {
    let change = if joined {
        format!("Officer {officer_first_name} was assigned to {event_name} on {local_start}.")
    } else {
        format!(
            "Officer {officer_first_name} is no longer assigned to {event_name} on {local_start}; we are finding a replacement."
        )
    };
    service_message(
        format!("Staffing of {event_name}: {filled} of {officers} officers"),
        first_name,
        &[
            change,
            format!("{filled} of {officers} officers are now assigned."),
        ],
    )
}

/// Tells an agency's dispatchers what an officer did with an assignment (`accepted`, `declined`,
/// `released`): officer first name, request id and shift start, nothing about the customer.
pub fn assignment_response(
    officer_first_name: &str,
    action: &str,
    request_id: &str,
    local_start: &str,
) -> Mail {
    let reopened = if action == "accepted" {
        String::new()
    } else {
        " The slot is open again.".to_owned()
    };
    service_message(
        format!("Officer {officer_first_name} {action} a shift"),
        "dispatch",
        &[format!(
            "Officer {officer_first_name} {action} the shift of request {request_id} starting {local_start}.{reopened}"
        )],
    )
}

/// Tells the privacy officers which requests are past their legal deadline: ids, types and due
/// dates, nothing about the people.
pub fn overdue_privacy_requests(lines: &[String]) -> Mail {
    let mut paragraphs = vec![format!(
        "{} privacy request(s) passed their legal deadline without being fulfilled:",
        lines.len()
    )];
    paragraphs.extend(lines.iter().cloned());
    paragraphs
        .push("Fulfil, deny with reasons, or extend them (with notice to the requester) now.".to_owned());
    service_message("Overdue privacy requests".to_owned(), "privacy team", &paragraphs)
}

/// Tells the privacy officers a privacy job keeps failing (ids and error kinds only).
pub fn stuck_privacy_jobs(lines: &[String]) -> Mail {
    let mut paragraphs = vec!["The privacy worker keeps failing a job; its request waits:".to_owned()];
    paragraphs.extend(lines.iter().cloned());
    paragraphs.push(
        "Ops: see the worker's log for the error kind, fix the cause, then redrive the dead-letter queue."
            .to_owned(),
    );
    service_message("A privacy job is stuck".to_owned(), "privacy team", &paragraphs)
}

/// Tells the subject their export is ready, with the way to fetch it (never the data itself).
pub fn export_ready(request_id: &str, parts: u32, available_until: &str) -> (String, String) {
    (
        "Your data export is ready".to_owned(),
        format!(
            "The export for your request {request_id} is ready: {parts} part(s), available until {available_until}. Sign in to the app to download it (GET /v1/privacy-requests/{request_id}/export)."
        ),
    )
}

/// A marketing campaign's mail: its text, then how to stop them: `unsubscribe_url` (the one-click
/// link, its token signed: no sign-in needed) in the text, as a link in the HTML, and as the mail's
/// `List-Unsubscribe` header, so the reader's mail client offers the button too. Sent only to those
/// who consented.
pub fn campaign(first_name: &str, subject: &str, body: &str, unsubscribe_url: &str) -> Mail {
    let stop = "You get this because you said yes to these mails. To stop them at once (no sign-in needed):";
    let mut mail = service_message(
        subject.to_owned(),
        first_name,
        &[
            body.to_owned(),
            format!("{stop} {unsubscribe_url}\nYou can change every choice in the app."),
        ],
    );
    let link = format!(
        "<p><a href=\"{}\">Unsubscribe from these mails</a></p></body></html>",
        escape_html(unsubscribe_url)
    );
    mail.html = mail.html.replacen("</body></html>", &link, 1);
    mail.list_unsubscribe = Some(unsubscribe_url.to_owned());
    mail
}

/// Announces a significant change of the privacy policy.
pub fn policy_changed(version: &str, effective_date: &str, summary: &str) -> Mail {
    service_message(
        "Our privacy policy is changing".to_owned(),
        "there",
        &[
            format!(
                "the OfficerTRAK Applications Privacy Policy changes significantly with version {version}, in force from {effective_date}."
            ),
            format!("What changes: {summary}"),
            "You can see which version you accepted in the app, and accept the new one there.".to_owned(),
        ],
    )
}

/// A notice about the requester's own privacy request (denial with its basis, or an extension).
pub fn privacy_notice(subject: &str, text: &str) -> Mail {
    service_message(subject.to_owned(), "there", &[text.to_owned()])
}

/// Tells an officer what an agency decided about their membership: approved (with the date the
/// approval lapses), rejected or revoked (with the agency's reason), or lapsed.
pub fn membership_decided(first_name: &str, agency_name: &str, outcome: &str, detail: &str) -> Mail {
    service_message(
        format!("Your membership of {agency_name}: {outcome}"),
        first_name,
        &[
            format!("{agency_name} has {outcome} your membership."),
            detail.to_owned(),
            "You can see your memberships in the app at any time.".to_owned(),
        ],
    )
}

/// Tells an agency's admins which memberships lapse soon unless they re-verify them: user ids and
/// dates only, the admins read the rest in the app.
pub fn memberships_lapsing(agency_name: &str, lines: &[String]) -> Mail {
    let mut paragraphs = vec![format!(
        "These approvals of {agency_name} lapse soon unless you verify the officers again:"
    )];
    paragraphs.extend(lines.iter().cloned());
    service_message(
        format!("{agency_name}: memberships to re-verify"),
        "there",
        &paragraphs,
    )
}

/// Tells a customer the agency did not accept their booking, why, and that nothing is charged.
pub fn booking_rejected(first_name: &str, agency_name: &str, local_start: &str, reason: &str) -> Mail {
    service_message(
        "Your booking was not accepted".to_owned(),
        first_name,
        &[
            format!("{agency_name} did not accept your booking starting {local_start}."),
            format!("Their reason: {reason}"),
            "Nothing is charged for it.".to_owned(),
        ],
    )
}

/// Tells an agency's dispatchers which officers did not check in to a shift that started: the slots
/// are open again for a replacement. Officer user ids and the request id only.
pub fn no_shows(request_id: &str, local_start: &str, officer_ids: &[String]) -> Mail {
    let mut paragraphs = vec![format!(
        "These officers had not checked in to request {request_id} (start {local_start}); their slots are open again:"
    )];
    paragraphs.extend(officer_ids.iter().map(|id| format!("officer {id}")));
    service_message(
        format!("No-show on request {request_id}"),
        "dispatch",
        &paragraphs,
    )
}

/// Tells a customer an invoice was issued: which event and the total; the lines are in the app.
pub fn invoice_issued(first_name: &str, event_name: &str, total_cents: i64) -> Mail {
    service_message(
        format!("Your invoice for {event_name}"),
        first_name,
        &[
            format!(
                "The invoice for {event_name} is ready: ${}.{:02} in all.",
                total_cents / 100,
                total_cents % 100
            ),
            "Each line, officer by officer, is in the app.".to_owned(),
        ],
    )
}

/// The charge of an invoice failed: what is still owed and what to do. The processor's decline code
/// is shown as the processor named it (no card detail is ever in it).
pub fn payment_failed(first_name: &str, event_name: &str, owed_cents: i64, code: &str) -> Mail {
    service_message(
        format!("Your payment for {event_name} did not go through"),
        first_name,
        &[
            format!(
                "We could not charge ${}.{:02} for {event_name} (the processor said: {code}).",
                owed_cents / 100,
                owed_cents % 100
            ),
            "Nothing else was charged. Please contact the agency to settle the invoice.".to_owned(),
        ],
    )
}

/// Acknowledges a support inquiry to the address it gave. It never repeats the message, so the form
/// cannot carry someone else's words to a stranger's mailbox.
pub fn inquiry_received(inquiry_id: &str) -> Mail {
    service_message(
        "We received your message".to_owned(),
        "there",
        &[
            format!("we received your message to OfficerTRAK support (reference {inquiry_id})."),
            "We answer by e-mail to this address. If you did not write to us, you can ignore this mail."
                .to_owned(),
        ],
    )
}

/// Support's answer to an inquiry (the recipient wrote it; replying reaches the support address).
pub fn inquiry_answered(inquiry_id: &str, answer: &str) -> Mail {
    service_message(
        format!("Re: your message to OfficerTRAK support ({inquiry_id})"),
        "there",
        &[
            answer.to_owned(),
            "Reply to this mail to write to us again.".to_owned(),
        ],
    )
}

/// Tells the privacy officers a report about a minor's data arrived (its reference only).
pub fn minor_report_received(inquiry_id: &str) -> Mail {
    service_message(
        "A report about a minor's data".to_owned(),
        "privacy team",
        &[
            format!("A support inquiry reports that we may hold data about someone under 18: {inquiry_id}."),
            "Read it (GET /v1/support/inquiries/{id}); to delete the minor's data, use POST /v1/admin/minors/{user_id} with the inquiry as case_reference.".to_owned(),
        ],
    )
}

/// The signed, expiring confirmation of a written request about an address no account holds.
pub fn address_request_link(
    request_id: &str,
    kind: &str,
    expires: i64,
    signature: &str,
    until: &str,
) -> Mail {
    service_message(
        "Confirm the privacy request we received by mail".to_owned(),
        "there",
        &[
            format!(
                "we received a {kind} request by mail about the messages sent to us from this address (request {request_id})."
            ),
            format!(
                "We act on it only once you confirm it, by {until}: POST /v1/support/confirmations with {{\"request_id\": \"{request_id}\", \"expires\": {expires}, \"signature\": \"{signature}\"}}."
            ),
            "If you did not send it, ignore this mail: nothing will be done.".to_owned(),
        ],
    )
}

/// What we hold from an address no account holds, mailed to it once its holder confirmed an access
/// or portability request: their own messages and our answers, as JSON.
pub fn address_export(request_id: &str, count: usize, json: &str) -> Mail {
    service_message(
        "The messages you sent us".to_owned(),
        "there",
        &[
            format!(
                "as you asked (request {request_id}), here are the {count} message(s) sent to us from this address and our answers. We hold nothing else about this address."
            ),
            json.to_owned(),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welcome_names_the_first_name_only_and_escapes_it() {
        let mail = welcome(first_name("Philippa <b>Quarrington</b>"), "customer");
        assert!(mail.text.contains("Hello Philippa,"));
        assert!(!mail.text.contains("Quarrington") && !mail.html.contains("Quarrington"));
        let mail = welcome("<script>", "customer");
        assert!(mail.html.contains("&lt;script&gt;") && !mail.html.contains("<script>"));
    }

    #[test]
    fn a_promotion_goes_only_under_a_consented_purpose_and_service_mail_only_under_a_service_one() {
        use crate::consent::{ConsentSource, ConsentState};
        use crate::purposes::{self, MARKETING_EMAIL, Original, Purpose};
        let promotion = campaign(
            "Ada",
            "Spring",
            "Book early.",
            "https://api.example/v1/unsubscribe/one-click?token=t",
        );
        let service = welcome("Ada", "customer");
        let marketing = Purpose {
            purpose: MARKETING_EMAIL.into(),
            description: String::new(),
            needs_consent: true,
            original: true,
        };
        let yes = ConsentState {
            user_id: "u".into(),
            purpose: MARKETING_EMAIL.into(),
            granted: true,
            policy_version: "v".into(),
            source: ConsentSource::App,
            recorded_at: jiff::Timestamp::UNIX_EPOCH,
        };
        let consented = purposes::decide(&marketing, Some(&yes)).expect("a yes permits");
        let contact = Original::ServiceContact.permit();
        assert!(fits(&consented, &promotion).is_ok());
        assert!(fits(&contact, &service).is_ok());
        assert!(
            fits(&contact, &promotion).is_err(),
            "a service permit carries no promotion"
        );
        assert!(
            fits(&consented, &service).is_err(),
            "a marketing mail needs its unsubscribe link"
        );
    }
}
