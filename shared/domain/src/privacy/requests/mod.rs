//! Privacy requests: each right the policy grants becomes a tracked request with a legal deadline and
//! an audit trail of every transition (who, when, what; never personal values), kept 24 months.
//!
//! Requests live outside the user's partition (`PRIVACY#<user id>`, system key), because they must
//! outlive an erasure: the record of a deletion is kept after the data is gone. Operators find open
//! ones through `gsi1` (`PRIVACY_REQUESTS#OPEN`, by due date).
//!
//! Processed at once: `marketing_opt_out`, `restriction`, `lift_restriction`, and a `correction` that
//! names fields. Processed off the request path, by the privacy worker ([`crate::privacy::jobs`]),
//! because their work grows with the user's data: `deletion` (through [`crate::privacy::erasure`];
//! one per user, whatever the key) and `access` and `portability` (through
//! [`crate::privacy::export`]). These answer 202 with the request `in_progress`; the request shows
//! the worker's progress, then its result. A correction naming no field is tracked with its deadline
//! for the privacy officers. A request that arrives in writing (mail to the support address, see
//! `written`) waits `identity_unverified` until its subject confirms it signed in; unconfirmed, it
//! lapses after [`CONFIRM_WITHIN_DAYS`] days.

mod operators;
mod processing;
mod subject;
mod written;

pub use operators::{
    Decision, MinorDeletion, MinorDeletionInput, MinorDeletionProposal, MinorReportCase, RequestPointer,
    StatusFilter, alert_overdue, approve_minor_deletion, audit_trail, decide, delete_minor, list_by_status,
    open_requests, record_minor_deleted,
};
pub use processing::{
    complete_by_worker, create, deletion_request_id, note_progress, note_stuck, set_restricted,
};
pub use subject::{ExportAnswer, OperatorView, export_of, list_mine, read_mine};
pub use written::{
    ADDRESS_SUBJECT_PREFIX, AddressRequest, CONFIRM_WITHIN_DAYS, WrittenSubject, address_request, confirm_by,
    confirm_written, finish_address_request, lapse_unconfirmed, receive_written,
};

// Helpers one part defines and another uses (the parts see this module's items through `super`).
use processing::{audit, carry_out, transition};

use operators::notify_requester;

use crate::accounts::{self, AccountRole, AccountStatus, StatusChange};
use crate::privacy::erasure::{self, ErasureReason, RetainedCategory};
use edge::auth::{Caller, Role};
use edge::error::ApiError;
use edge::validation::Validator;
use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use platform::AppState;
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How recent a sign-in must be for requests that disclose or destroy data.
pub const RECENT_AUTH: SignedDuration = SignedDuration::from_mins(15);

/// 401 `reauthentication-required` unless the caller signed in with a password within
/// [`RECENT_AUTH`]: what disclosing or destroying data needs, for subjects and privacy officers alike.
pub fn require_recent_sign_in(caller: &Caller, now: Timestamp) -> Result<(), ApiError> {
    if caller
        .auth_time
        .is_none_or(|at| now.duration_since(at) > RECENT_AUTH)
    {
        return Err(ApiError::ReauthenticationRequired(
            "this request needs a sign-in within the last 15 minutes: sign in again and retry".into(),
        ));
    }
    Ok(())
}

/// What the user asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestType {
    Access,
    Portability,
    Correction,
    Deletion,
    Restriction,
    LiftRestriction,
    MarketingOptOut,
}

impl RequestType {
    /// Whether the privacy worker carries the request out (its work grows with the user's data).
    pub fn runs_in_background(self) -> bool {
        matches!(self, Self::Access | Self::Portability | Self::Deletion)
    }

    /// Whether the request discloses or destroys data, and so needs a recent sign-in.
    pub fn needs_recent_sign_in(self) -> bool {
        matches!(
            self,
            Self::Access | Self::Portability | Self::Deletion | Self::Correction
        )
    }
}

/// The law the deadline follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Jurisdiction {
    Gdpr,
    Ccpa,
    Other,
}

/// The internal lifecycle (every move is audited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    Received,
    Verified,
    InProcessing,
    Completed,
    Denied,
    Cancelled,
}

impl Lifecycle {
    pub fn is_open(self) -> bool {
        matches!(self, Self::Received | Self::Verified | Self::InProcessing)
    }

    /// Closed without being carried out (denied, or lapsed unconfirmed): a new request of the same
    /// kind may take its place.
    pub fn closed_undone(self) -> bool {
        matches!(self, Self::Denied | Self::Cancelled)
    }

    /// The status the user sees.
    pub fn user_facing(self) -> &'static str {
        match self {
            Self::Received | Self::Verified => "open",
            Self::InProcessing => "in_progress",
            Self::Completed => "fulfilled",
            Self::Denied => "denied",
            Self::Cancelled => "expired",
        }
    }
}

/// The EEA (the EU's 27, Iceland, Liechtenstein, Norway) and the United Kingdom (UK GDPR): ISO
/// 3166-1 alpha-2 codes of the countries whose residents' requests follow the GDPR's clock.
const GDPR_COUNTRIES: &[&str] = &[
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT",
    "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO", "GB",
];

/// The law whose clock applies to a subject living at `address`: the GDPR in the EEA and the UK,
/// the CCPA in California, else ours.
pub fn jurisdiction_of(address: &crate::address::Address) -> Jurisdiction {
    let country = address.country.trim().to_ascii_uppercase();
    if GDPR_COUNTRIES.contains(&country.as_str()) {
        Jurisdiction::Gdpr
    } else if country == "US"
        && ["CA", "California"]
            .iter()
            .any(|name| address.region.trim().eq_ignore_ascii_case(name))
    {
        Jurisdiction::Ccpa
    } else {
        Jurisdiction::Other
    }
}

/// The law whose clock `user_id`'s requests follow, from the addresses their accounts hold (a
/// customer's mailing address, else home; a provider's home): the GDPR where any is in the EEA or the
/// UK, else the CCPA where any is in California, else ours. `None` when no account holds an address:
/// only then does the requester's own word decide.
pub async fn subject_jurisdiction(state: &AppState, user_id: &str) -> Result<Option<Jurisdiction>, ApiError> {
    let customer_key = accounts::account_key(user_id, AccountRole::Customer);
    let provider_key = accounts::account_key(user_id, AccountRole::Provider);
    let read = async {
        let mut fetched = state
            .store
            .get_many(&[customer_key.clone(), provider_key.clone()])
            .await?;
        let customer = fetched.take::<accounts::CustomerAccount>(&customer_key)?;
        let provider = fetched.take::<accounts::ProviderAccount>(&provider_key)?;
        Ok::<_, StoreError>((customer, provider))
    };
    let (customer, provider) = match read.await {
        Ok(accounts) => accounts,
        Err(StoreError::Busy(reason)) => return Err(StoreError::Busy(reason).into()),
        // A right is exercised even when the account cannot be read (a damaged item may be what the
        // subject asks about): their word, else our clock, decides then.
        Err(error) => {
            tracing::warn!(error = %error, "accounts unreadable: the requester's word decides the clock");
            return Ok(None);
        }
    };
    let mut found = Vec::new();
    if let Some(customer) = customer {
        let customer = customer.record;
        found.extend(
            customer
                .mailing_address
                .or(customer.home_address)
                .as_ref()
                .map(jurisdiction_of),
        );
    }
    if let Some(provider) = provider {
        found.push(jurisdiction_of(&provider.record.home_address));
    }
    Ok([Jurisdiction::Gdpr, Jurisdiction::Ccpa, Jurisdiction::Other]
        .into_iter()
        .find(|law| found.contains(law)))
}

/// The clock a request of `kind` under `jurisdiction` follows, and its basis, in words (privacy
/// officers see it beside the deadline).
pub fn clock_basis(jurisdiction: Jurisdiction, kind: RequestType) -> &'static str {
    match (kind, jurisdiction) {
        (RequestType::MarketingOptOut, _) => {
            "opt-out of marketing: acted on at once, answered within 15 business days of receipt"
        }
        (_, Jurisdiction::Gdpr) => {
            "GDPR Art. 12(3): one month from receipt, extendable once by two months with reasons told to the subject"
        }
        (_, Jurisdiction::Ccpa) => {
            "CCPA (Cal. Civ. Code 1798.130, 11 CCR 7021): 45 days from receipt, not paused while identity is verified, extendable once by 45 days; receipt confirmed within 10 business days"
        }
        (_, Jurisdiction::Other) => {
            "our policy: 30 days from receipt, extendable once by 45 days with reasons told to the subject"
        }
    }
}

/// `n` business days (Monday to Friday, UTC) after `from`.
pub fn add_business_days(from: Timestamp, n: u32) -> Timestamp {
    let mut at = from.to_zoned_datetime(TimeZone::UTC);
    let mut left = n;
    while left > 0 {
        at = at.checked_add(1.day()).unwrap_or(at);
        if !matches!(at.weekday(), Weekday::Saturday | Weekday::Sunday) {
            left -= 1;
        }
    }
    at.timestamp()
}

fn add_span(from: Timestamp, span: jiff::Span) -> Timestamp {
    from.to_zoned_datetime(TimeZone::UTC)
        .checked_add(span)
        .map(|z| z.timestamp())
        .unwrap_or(from)
}

/// The legal deadline of a request received at `received`: GDPR one month (the same day of the next
/// month, or its last day), CCPA 45 days, a marketing opt-out 15 business days, otherwise 30 days.
pub fn deadline(jurisdiction: Jurisdiction, kind: RequestType, received: Timestamp) -> Timestamp {
    if kind == RequestType::MarketingOptOut {
        return add_business_days(received, 15);
    }
    match jurisdiction {
        Jurisdiction::Gdpr => add_span(received, 1.month()),
        Jurisdiction::Ccpa => add_span(received, 45.days()),
        Jurisdiction::Other => add_span(received, 30.days()),
    }
}

/// The deadline after the one extension the law allows: GDPR two more months, CCPA 45 more days.
pub fn extended_deadline(jurisdiction: Jurisdiction, due: Timestamp) -> Timestamp {
    match jurisdiction {
        Jurisdiction::Gdpr => add_span(due, 2.months()),
        Jurisdiction::Ccpa | Jurisdiction::Other => add_span(due, 45.days()),
    }
}

/// CCPA: receipt must be confirmed within 10 business days.
pub fn receipt_deadline(jurisdiction: Jurisdiction, received: Timestamp) -> Option<Timestamp> {
    (jurisdiction == Jurisdiction::Ccpa).then(|| add_business_days(received, 10))
}

/// What a finished request produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestResult {
    pub summary: String,
    /// For a deletion: what the law makes us keep, why and until when.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retained: Vec<RetainedCategory>,
    /// For access and portability: the export's manifest (`GET …/{id}/export?part=N` for the parts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<crate::privacy::export::ExportManifest>,
    /// For a deletion: the proof of what was deleted and kept, per item type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erasure: Option<crate::privacy::erasure::ErasureReport>,
}

/// How far the privacy worker got with a request it carries out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobProgress {
    /// `erasure: <step>` or `export: reading` (what the worker does next).
    pub stage: String,
    /// Export: items written so far.
    #[serde(default)]
    pub items: usize,
    /// Export: parts written so far.
    #[serde(default)]
    pub parts: u32,
    /// Worker invocations spent so far.
    pub slices: u32,
    pub updated_at: Timestamp,
}

/// The worker failed the request's job again and again: privacy officers see it as stuck.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StuckJob {
    /// Deliveries that failed so far (the queue sends it to its dead-letter queue after 5).
    pub attempts: u32,
    /// The kind of error (never a value): what ops look for in the worker's log.
    pub error_kind: String,
    pub since: Timestamp,
}

/// A stored privacy request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivacyRequest {
    pub request_id: String,
    pub user_id: String,
    pub kind: RequestType,
    pub jurisdiction: Jurisdiction,
    pub status: Lifecycle,
    pub received_at: Timestamp,
    /// The legal deadline (`due_at` is taken: it is the due-date index's sort key).
    pub deadline_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_due_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<RequestResult>,
    /// When the privacy officers were told it is overdue (once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdue_alerted_at: Option<Timestamp>,
    /// The worker's progress (deletion, access, portability).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<JobProgress>,
    /// Set while the worker's job for this request keeps failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stuck: Option<StuckJob>,
    /// Set when the request arrived in writing (mail to the support address): the inquiry it came
    /// in. It waits `identity_unverified` until the subject confirms it signed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_inquiry_id: Option<String>,
    pub updated_at: Timestamp,
    /// `PRIVACY_REQUESTS#OPEN` or `PRIVACY_REQUESTS#CLOSED`.
    pub gsi1pk: String,
    /// Due date (epoch ms, fixed width) and id: operators see the most urgent first.
    pub gsi1sk: String,
}

impl PrivacyRequest {
    /// The key of `user_id`'s request `request_id`.
    pub fn key_of(user_id: &str, request_id: &str) -> ItemKey {
        ItemKey::new(
            platform::keys::privacy_partition(user_id),
            format!("REQUEST#{request_id}"),
        )
    }

    /// Whether it arrived in writing and its subject has not confirmed it yet.
    pub fn awaits_confirmation(&self) -> bool {
        self.written_inquiry_id.is_some() && self.status == Lifecycle::Received
    }

    fn index(&mut self) {
        let due = self.extended_until.unwrap_or(self.deadline_at);
        self.gsi1pk = format!(
            "PRIVACY_REQUESTS#{}",
            if self.status.is_open() { "OPEN" } else { "CLOSED" }
        );
        self.gsi1sk = format!("{}#{}", platform::keys::sortable_time(due), self.request_id);
    }
}

impl Record for PrivacyRequest {
    const TYPE: &'static ItemType = &schema::PRIVACY_REQUEST;

    fn key(&self) -> ItemKey {
        Self::key_of(&self.user_id, &self.request_id)
    }

    fn retention_start(&self) -> Option<Timestamp> {
        Some(self.received_at)
    }
}

/// One move of a request (or an operator action on a user's data), for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivacyAuditEntry {
    pub user_id: String,
    pub subject_id: String,
    pub action: String,
    pub actor_user_id: String,
    pub recorded_at: Timestamp,
    #[serde(skip)]
    pub entry_id: String,
}

impl Record for PrivacyAuditEntry {
    const TYPE: &'static ItemType = &schema::PRIVACY_AUDIT_ENTRY;

    fn key(&self) -> ItemKey {
        ItemKey::new(
            platform::keys::privacy_partition(&self.user_id),
            format!(
                "AUDIT#{}#{}",
                platform::keys::sortable_time(self.recorded_at),
                self.entry_id
            ),
        )
    }

    fn retention_start(&self) -> Option<Timestamp> {
        Some(self.recorded_at)
    }
}

/// A privacy request as the subject sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestView {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: RequestType,
    pub jurisdiction: Jurisdiction,
    pub status: &'static str,
    pub received_at: Timestamp,
    pub due_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_until: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<RequestResult>,
    /// While the worker carries it out: how far it got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<JobProgress>,
    /// A deletion: what the law makes us keep, why and for how long (the result gives the dates).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub will_keep: Vec<crate::privacy::erasure::KeptByLaw>,
}

impl From<&PrivacyRequest> for RequestView {
    fn from(r: &PrivacyRequest) -> Self {
        Self {
            progress: r.progress.clone().filter(|_| r.status.is_open()),
            will_keep: if r.kind == RequestType::Deletion && r.status.is_open() {
                crate::privacy::erasure::kept_by_law(ErasureReason::Request)
            } else {
                Vec::new()
            },
            id: r.request_id.clone(),
            kind: r.kind,
            jurisdiction: r.jurisdiction,
            status: if r.awaits_confirmation() {
                "identity_unverified"
            } else {
                r.status.user_facing()
            },
            received_at: r.received_at,
            due_at: r.deadline_at,
            extended_until: r.extended_until,
            extension_reason: r.extension_reason.clone(),
            result: r.result.clone(),
        }
    }
}

/// The body of `POST /v1/privacy-requests`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestInput {
    #[serde(rename = "type")]
    pub kind: RequestType,
    /// Where the requester says they live: a claim, used only when no account of theirs holds an
    /// address (the address decides otherwise, see [`subject_jurisdiction`]).
    #[serde(default)]
    pub jurisdiction: Option<Jurisdiction>,
    /// For a correction: the customer account's fields to correct (as `PATCH /v1/me/customer`).
    #[serde(default)]
    pub customer: Option<crate::accounts::CustomerCorrection>,
    /// For a correction: the provider account's fields to correct (as `PATCH /v1/me/provider`).
    #[serde(default)]
    pub provider: Option<crate::accounts::ProviderCorrection>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_the_subject_lives_decides_the_clock() {
        let at = |country: &str, region: &str| crate::address::Address {
            line1: "1 Main St".into(),
            line2: None,
            city: "Town".into(),
            region: region.into(),
            postal_code: "00000".into(),
            country: country.into(),
        };
        assert_eq!(jurisdiction_of(&at("US", "CA")), Jurisdiction::Ccpa);
        assert_eq!(jurisdiction_of(&at("us", "ca")), Jurisdiction::Ccpa);
        assert_eq!(jurisdiction_of(&at("US", "California")), Jurisdiction::Ccpa);
        assert_eq!(jurisdiction_of(&at("US", "WY")), Jurisdiction::Other);
        assert_eq!(jurisdiction_of(&at("IE", "D")), Jurisdiction::Gdpr);
        assert_eq!(jurisdiction_of(&at("GB", "LND")), Jurisdiction::Gdpr);
        assert_eq!(
            jurisdiction_of(&at("CA", "ON")),
            Jurisdiction::Other,
            "Canada is not California"
        );
        assert!(clock_basis(Jurisdiction::Ccpa, RequestType::Access).contains("not paused"));
    }

    fn at(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    #[test]
    fn gdpr_gives_one_calendar_month_clamped_at_month_end() {
        let due = deadline(
            Jurisdiction::Gdpr,
            RequestType::Access,
            at("2027-01-31T10:00:00Z"),
        );
        assert_eq!(due, at("2027-02-28T10:00:00Z"));
        let due = deadline(
            Jurisdiction::Gdpr,
            RequestType::Access,
            at("2028-01-31T10:00:00Z"),
        );
        assert_eq!(due, at("2028-02-29T10:00:00Z"), "leap year");
        assert_eq!(
            extended_deadline(Jurisdiction::Gdpr, at("2027-02-28T10:00:00Z")),
            at("2027-04-28T10:00:00Z")
        );
    }

    #[test]
    fn ccpa_gives_45_days_plus_45_and_confirms_receipt_within_10_business_days() {
        let received = at("2027-12-20T09:00:00Z");
        assert_eq!(
            deadline(Jurisdiction::Ccpa, RequestType::Deletion, received),
            at("2028-02-03T09:00:00Z")
        );
        assert_eq!(
            extended_deadline(Jurisdiction::Ccpa, at("2028-02-03T09:00:00Z")),
            at("2028-03-19T09:00:00Z")
        );
        // Monday 20 December + 10 business days = Monday 3 January.
        assert_eq!(
            receipt_deadline(Jurisdiction::Ccpa, received),
            Some(at("2028-01-03T09:00:00Z"))
        );
        assert_eq!(receipt_deadline(Jurisdiction::Gdpr, received), None);
    }

    #[test]
    fn an_opt_out_has_15_business_days_over_weekends() {
        // Friday 29 January 2027 + 15 business days = Friday 19 February.
        let received = at("2027-01-29T16:00:00Z");
        assert_eq!(
            deadline(Jurisdiction::Ccpa, RequestType::MarketingOptOut, received),
            at("2027-02-19T16:00:00Z")
        );
    }

    #[test]
    fn user_facing_statuses() {
        assert_eq!(Lifecycle::Verified.user_facing(), "open");
        assert_eq!(Lifecycle::InProcessing.user_facing(), "in_progress");
        assert_eq!(Lifecycle::Completed.user_facing(), "fulfilled");
    }
}
