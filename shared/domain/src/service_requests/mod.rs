//! Service requests: what customers book, priced by the agency's rules and paid by a processor's
//! token. A request is owned by the customer who booked it (its personal fields are encrypted under
//! the customer's key); a pointer item finds it by id, and `gsi1` lists an agency's requests.

pub mod payments;
pub mod pricing;

mod operations;
mod rules;

pub use operations::{
    BookingDecision, BookingDecisionInput, ListQuery, Page, book, decide, list, located, of_agency_starting,
    quote, read,
};
pub(crate) use operations::{mark_cancelled, mark_cancelled_by_system, shown, tell_customer_rejected};
pub use rules::parse;

// Helpers one part defines and another uses (the parts see this module's items through `super`).
use rules::{check, price_of};

use crate::address::{Address, AddressRules};
use crate::agencies::{self, Agency};
use crate::scheduling::assignments::{Assignment, AssignmentStatus};
use crate::service_requests::payments::{PaymentRecord, find_card_number};
use crate::service_requests::pricing::{Price, PriceLine, PriceOverflow, Shift, sum_cents};
use edge::auth::{Caller, Role};
use edge::error::ApiError;
use edge::validation::{self, Validator};
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan, ZonedDateTime as Zoned};
use platform::AppState;
use platform::keys::{sortable_time, user_partition};
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record, StoreError, Versioned};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Most occurrences one recurring booking may expand into.
pub const MAX_OCCURRENCES: usize = 25;

// ------------------------------------------------------------------------------------------ input

/// The event being secured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub name: String,
    /// E.g. `concert`, `graduation`, `construction`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_attendance: Option<u32>,
    #[serde(default)]
    pub alcohol_served: bool,
}

/// The on-site point of contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub name: String,
    pub phone: String,
}

/// Where the service takes place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub name: String,
    pub address: Address,
    /// `[latitude, longitude]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<(f64, f64)>,
    pub contact: Contact,
}

/// What the officers must be or bring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirements {
    #[serde(default)]
    pub armed: bool,
    pub attire: Attire,
    #[serde(default)]
    pub vehicle: bool,
    #[serde(default)]
    pub supervisor: bool,
}

/// Uniformed or plain clothes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attire {
    Uniformed,
    PlainClothes,
}

/// How a booking repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    Daily,
    Weekly,
}

/// Repeat the booking `count` times, or until a date (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recurrence {
    pub frequency: Frequency,
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub until: Option<Date>,
}

/// How the customer pays: a payment processor's token, never a card number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentInput {
    /// A Stripe PaymentMethod id (`pm_…`).
    pub processor_token: String,
    pub card_brand: String,
    pub card_last4: String,
}

/// The body of `POST /v1/service-requests` and `POST /v1/quotes`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestInput {
    pub agency_id: String,
    pub event: Event,
    pub site: Site,
    /// Local start, in `time_zone`.
    pub starts_at: DateTime,
    /// Local end, in `time_zone`.
    pub ends_at: DateTime,
    /// IANA time zone of the site.
    pub time_zone: String,
    pub officers: u32,
    pub requirements: Requirements,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub recurrence: Option<Recurrence>,
    /// Required to book, not to quote.
    #[serde(default)]
    pub payment: Option<PaymentInput>,
    /// Minutes per officer the customer agrees a shift may run over and be billed (0 to
    /// [`MAX_OVERRUN_MINUTES`]; default 0: billed hours never exceed the booked ones).
    #[serde(default)]
    pub overrun_minutes: u32,
}

/// Most overrun a booking may allow: four hours per officer.
pub const MAX_OVERRUN_MINUTES: u32 = 240;

// ------------------------------------------------------------------------------------------ stored

/// Where a request is in its life. Transitions are checked by [`Status::can_become`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Booked with an agency that approves bookings first: no officer sees it yet.
    AwaitingApproval,
    /// The agency did not accept the booking (the customer was told why; nothing is charged).
    Rejected,
    Requested,
    PartiallyStaffed,
    FullyStaffed,
    InProgress,
    Completed,
    Cancelled,
}

impl Status {
    /// Whether a request in this status may move to `next`.
    pub fn can_become(self, next: Status) -> bool {
        use Status::*;
        matches!(
            (self, next),
            (AwaitingApproval, Requested | Rejected | Cancelled)
                | (Requested, PartiallyStaffed | FullyStaffed | InProgress | Cancelled)
                | (PartiallyStaffed, Requested | FullyStaffed | InProgress | Cancelled)
                | (
                    FullyStaffed,
                    Requested | PartiallyStaffed | InProgress | Cancelled
                )
                // Only the agency cancels a request under way (the customer's cancellation ends at the start).
                | (InProgress, Completed | Cancelled)
        )
    }
}

/// What a booking agreed besides its rates. An agency's later change of its settings reaches new
/// bookings only: the booked price is a contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookedTerms {
    /// The cancellation fee bands in force when it was booked.
    pub cancellation_fees: Vec<agencies::CancellationBand>,
    /// Hours after the end within which the shift can still be checked out, its hours approved, and
    /// after which the scheduled run completes it.
    pub completion_grace_hours: u32,
    /// Minutes per officer a shift may run over and still be billed (0 unless the booking allowed
    /// more): billed hours never exceed the booked hours plus this.
    #[serde(default)]
    pub overrun_minutes: u32,
}

impl BookedTerms {
    /// The terms of a booking made under `settings` allowing `overrun_minutes`.
    pub fn of(settings: &agencies::AgencySettings, overrun_minutes: u32) -> Self {
        Self {
            cancellation_fees: settings.cancellation_fees.clone(),
            completion_grace_hours: settings.rules.completion_grace_hours,
            overrun_minutes,
        }
    }
}

/// Who cancelled, when, why, and the fee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancellation {
    pub cancelled_at: Timestamp,
    pub by_user_id: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<PriceLine>,
}

/// A stored service request (one occurrence of a booking).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRequest {
    pub request_id: String,
    /// Shared by the occurrences of one booking.
    pub series_id: String,
    pub customer_user_id: String,
    pub agency_id: String,
    pub status: Status,
    pub event: Event,
    pub site: Site,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub time_zone: String,
    pub officers: u32,
    /// Officers holding a slot now; changes only together with the assignment that fills or frees it.
    #[serde(default)]
    pub filled: u32,
    pub requirements: Requirements,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub price: Price,
    pub payment_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<Cancellation>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    /// The agency's rates when it was booked: what its invoice is priced at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rates: Option<agencies::Rates>,
    /// The rest of what was agreed at booking (fee bands, grace, overrun): every later charge is
    /// computed from these, never from the agency's settings of the day. `None` on a request booked
    /// before terms were recorded: [`ServiceRequest::terms`] then gives the customer's safe reading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms: Option<BookedTerms>,
    /// When it became `in_progress`: the first check-in, or the start time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When the officers who had not checked in were marked no-shows (once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_shows_checked_at: Option<Timestamp>,
    /// `AGENCY#<agency_id>#REQUESTS`: dispatchers list an agency's requests by start.
    pub gsi1pk: String,
    pub gsi1sk: String,
    /// The due-date index entry that brings the request to the scheduled run at its next step
    /// (start, no-show check, completion); `None` once it is over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_day: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<i64>,
}

impl ServiceRequest {
    /// What the booking agreed: its recorded terms, or for a request booked before terms were
    /// recorded, the reading safest for its customer (no fee bands, the default grace, no overrun).
    pub fn terms(&self) -> BookedTerms {
        self.terms.clone().unwrap_or(BookedTerms {
            cancellation_fees: Vec::new(),
            completion_grace_hours: 4,
            overrun_minutes: 0,
        })
    }

    /// Most minutes one officer's shift is billed: the booked duration plus the agreed overrun.
    pub fn billable_minutes_cap(&self) -> i64 {
        self.ends_at.duration_since(self.starts_at).as_mins() + i64::from(self.terms().overrun_minutes)
    }

    /// The end of the window after the shift in which it may still be checked out or approved.
    pub fn grace_ends_at(&self) -> Timestamp {
        self.ends_at + SignedDuration::from_hours(i64::from(self.terms().completion_grace_hours))
    }

    /// The staffing status for `filled` of `officers` slots.
    pub fn staffing_status(filled: u32, officers: u32) -> Status {
        match filled {
            0 => Status::Requested,
            n if n >= officers => Status::FullyStaffed,
            _ => Status::PartiallyStaffed,
        }
    }

    /// Whether slots can still be filled: before the start while not full, or, once in progress, a
    /// slot a no-show left open until the end.
    pub fn is_open(&self, now: Timestamp) -> bool {
        let before_start =
            matches!(self.status, Status::Requested | Status::PartiallyStaffed) && self.starts_at > now;
        let refill = self.status == Status::InProgress && self.ends_at > now;
        (before_start || refill) && self.filled < self.officers
    }

    /// The request with `filled` slots held: the staffing status before the start, `in_progress`
    /// kept once started.
    pub fn with_filled(&self, filled: u32, now: Timestamp) -> ServiceRequest {
        ServiceRequest {
            filled,
            status: match self.status {
                Status::InProgress => Status::InProgress,
                _ => Self::staffing_status(filled, self.officers),
            },
            updated_at: now,
            ..self.clone()
        }
    }

    /// Puts the request on the due-date index at `at` (or takes it off with `None`).
    pub fn due(&mut self, at: Option<Timestamp>) {
        self.due_day = at
            .map(|t| platform::keys::due_day_partition(t.to_zoned_datetime(jiff::tz::TimeZone::UTC).date()));
        self.due_at = at.map(|t| t.as_second());
    }

    fn sort_key(starts_at: Timestamp, request_id: &str) -> String {
        format!("REQUEST#{}#{request_id}", sortable_time(starts_at))
    }
}

impl Record for ServiceRequest {
    const TYPE: &'static ItemType = &schema::SERVICE_REQUEST;

    fn key(&self) -> ItemKey {
        ItemKey::new(
            user_partition(&self.customer_user_id),
            Self::sort_key(self.starts_at, &self.request_id),
        )
    }

    /// The 3-year retention runs from completion, or from the cancellation or rejection.
    fn retention_start(&self) -> Option<Timestamp> {
        self.completed_at
            .or_else(|| self.cancellation.as_ref().map(|c| c.cancelled_at))
    }
}

/// Finds a request by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestPointer {
    pub request_id: String,
    pub owner_user_id: String,
    pub agency_id: String,
    pub request_sk: String,
}

impl RequestPointer {
    /// Where the pointer of `request_id` is: public so a caller reading it with other items it
    /// needs can fetch them in one `BatchGetItem`.
    pub fn key_of(request_id: &str) -> ItemKey {
        ItemKey::new(format!("REQUEST#{request_id}"), "REF".to_owned())
    }

    /// Where the request it points to is (in its customer's partition).
    pub fn request_key(&self) -> ItemKey {
        ItemKey::new(user_partition(&self.owner_user_id), self.request_sk.clone())
    }
}

impl Record for RequestPointer {
    const TYPE: &'static ItemType = &schema::REQUEST_POINTER;

    fn key(&self) -> ItemKey {
        Self::key_of(&self.request_id)
    }
}

/// What a creating POST with an `Idempotency-Key` produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub user_id: String,
    #[serde(skip)]
    pub key: String,
    pub body_sha256: String,
    pub request_ids: Vec<String>,
    pub recorded_at: Timestamp,
}

impl IdempotencyRecord {
    fn key_of(user_id: &str, key: &str) -> ItemKey {
        ItemKey::new(user_partition(user_id), format!("IDEMPOTENCY#{key}"))
    }
}

impl Record for IdempotencyRecord {
    const TYPE: &'static ItemType = &schema::IDEMPOTENCY_RECORD;

    fn key(&self) -> ItemKey {
        Self::key_of(&self.user_id, &self.key)
    }

    fn retention_start(&self) -> Option<Timestamp> {
        Some(self.recorded_at)
    }
}

// ------------------------------------------------------------------------------------------ views

/// A request as one reader may see it. The customer sees everything including the card brand and
/// last four digits; the agency's staff see the booking but no payment data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestView {
    pub request_id: String,
    pub series_id: String,
    pub agency_id: String,
    pub status: Status,
    pub event: Event,
    pub site: Site,
    pub starts_at: String,
    pub ends_at: String,
    pub time_zone: String,
    pub officers: u32,
    /// Slots filled now.
    pub filled: u32,
    pub requirements: Requirements,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub price: Price,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<Cancellation>,
    /// What was agreed at booking: the fee bands, grace and overrun later charges follow.
    pub terms: BookedTerms,
    pub created_at: Timestamp,
}

/// What an officer assigned to a request sees: where, when, what and whom to meet on site; never
/// the customer's own data, the price or the payment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OfficerView {
    pub request_id: String,
    pub agency_id: String,
    pub status: Status,
    pub event: Event,
    /// Where, always: the site's city and region.
    pub city: String,
    pub region: String,
    /// The site with its street address and on-site contact: only while the officer holds the slot,
    /// from `site_details_from` until check-out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<Site>,
    /// When the site details become visible (local time).
    pub site_details_from: String,
    pub starts_at: String,
    pub ends_at: String,
    pub time_zone: String,
    pub officers: u32,
    pub requirements: Requirements,
    /// The customer's notes for the officers: shown with the site details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// A request as its reader may see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ReadView {
    /// The customer, or the agency's staff.
    Booking(Box<RequestView>),
    /// An assigned officer.
    Officer(Box<OfficerView>),
}

/// What a customer sees of the payment method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentSummary {
    pub payment_id: String,
    pub card_brand: String,
    pub card_last4: String,
    pub amount_cents: i64,
}

pub(crate) fn local(at: Timestamp, time_zone: &str) -> String {
    TimeZone::get(time_zone)
        .map(|tz| at.to_zoned_datetime(tz).to_string())
        .unwrap_or_else(|_| at.to_string())
}

fn view(request: &ServiceRequest, payment: Option<PaymentSummary>) -> RequestView {
    RequestView {
        request_id: request.request_id.clone(),
        series_id: request.series_id.clone(),
        agency_id: request.agency_id.clone(),
        status: request.status,
        event: request.event.clone(),
        site: request.site.clone(),
        starts_at: local(request.starts_at, &request.time_zone),
        ends_at: local(request.ends_at, &request.time_zone),
        time_zone: request.time_zone.clone(),
        officers: request.officers,
        filled: request.filled,
        requirements: request.requirements,
        notes: request.notes.clone(),
        price: request.price.clone(),
        payment,
        cancellation: request.cancellation.clone(),
        terms: request.terms(),
        created_at: request.created_at,
    }
}

/// The answer to a booking: every occurrence, and the payment method on file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Booking {
    pub series_id: String,
    pub requests: Vec<RequestView>,
    pub total_cents: i64,
}

/// The answer to a quote: a price per occurrence and their total. Nothing is stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quote {
    pub occurrences: Vec<QuotedOccurrence>,
    pub total_cents: i64,
    pub currency: String,
    /// What booking now would agree to: the fee bands, grace and overrun later charges follow.
    pub terms: BookedTerms,
}

/// One priced occurrence of a quote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuotedOccurrence {
    pub starts_at: String,
    pub ends_at: String,
    pub price: Price,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_machine_allows_only_forward_moves_and_cancellation_before_the_start() {
        use Status::*;
        assert!(Requested.can_become(Cancelled));
        assert!(FullyStaffed.can_become(InProgress));
        assert!(InProgress.can_become(Completed));
        assert!(Requested.can_become(InProgress));
        assert!(!Completed.can_become(InProgress));
        assert!(!Completed.can_become(Cancelled));
        assert!(!Cancelled.can_become(Requested));
        assert!(!Requested.can_become(Completed));
        assert!(AwaitingApproval.can_become(Requested));
        assert!(AwaitingApproval.can_become(Rejected));
        assert!(!AwaitingApproval.can_become(FullyStaffed));
        assert!(!Rejected.can_become(Requested));
    }

    #[test]
    fn a_card_number_anywhere_is_refused_before_parsing() {
        let body = br#"{"agency_id": "a", "notes": "my card 4111-1111-1111-1111", "unknown": 1}"#;
        match parse(body) {
            Err(ApiError::Validation(errors)) => {
                assert_eq!(errors[0].pointer, "/notes");
                assert!(!errors[0].detail.contains("4111"));
            }
            other => panic!("expected a 422, got {other:?}"),
        }
    }
}
