//! Service requests: what customers book, priced by the agency's rules and paid by a processor's
//! token. A request is owned by the customer who booked it (its personal fields are encrypted under
//! the customer's key); a pointer item finds it by id, and `gsi1` lists an agency's requests.

pub mod payments;
pub mod pricing;

use crate::address::{Address, AddressRules};
use crate::agencies::{self, Agency};
use crate::scheduling::assignments::Assignment;
use crate::service_requests::payments::{PaymentRecord, find_card_number};
use crate::service_requests::pricing::{Price, PriceLine, Shift};
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
    /// `pm_…`, `tok_…`, `card_…` or `src_…`.
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
}

// ------------------------------------------------------------------------------------------ stored

/// Where a request is in its life. Transitions are checked by [`Status::can_become`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
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
            (Requested, PartiallyStaffed | FullyStaffed | Cancelled)
                | (PartiallyStaffed, Requested | FullyStaffed | Cancelled)
                | (
                    FullyStaffed,
                    Requested | PartiallyStaffed | InProgress | Cancelled
                )
                | (InProgress, Completed)
        )
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
    /// `AGENCY#<agency_id>#REQUESTS`: dispatchers list an agency's requests by start.
    pub gsi1pk: String,
    pub gsi1sk: String,
}

impl ServiceRequest {
    /// The staffing status for `filled` of `officers` slots.
    pub fn staffing_status(filled: u32, officers: u32) -> Status {
        match filled {
            0 => Status::Requested,
            n if n >= officers => Status::FullyStaffed,
            _ => Status::PartiallyStaffed,
        }
    }

    /// Whether slots can still be filled: not started, not cancelled, not full.
    pub fn is_open(&self, now: Timestamp) -> bool {
        matches!(self.status, Status::Requested | Status::PartiallyStaffed)
            && self.filled < self.officers
            && self.starts_at > now
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

    fn retention_start(&self) -> Option<Timestamp> {
        self.completed_at
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
    fn key_of(request_id: &str) -> ItemKey {
        ItemKey::new(format!("REQUEST#{request_id}"), "REF".to_owned())
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
    pub site: Site,
    pub starts_at: String,
    pub ends_at: String,
    pub time_zone: String,
    pub officers: u32,
    pub requirements: Requirements,
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
}

/// One priced occurrence of a quote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuotedOccurrence {
    pub starts_at: String,
    pub ends_at: String,
    pub price: Price,
}

// ------------------------------------------------------------------------------------------ rules

/// One occurrence, in the site's time zone.
struct Occurrence {
    starts: Zoned,
    ends: Zoned,
}

/// Refuses a body with anything that looks like a card number, then parses it.
pub fn parse(bytes: &[u8]) -> Result<RequestInput, ApiError> {
    let raw: serde_json::Value = validation::parse_body(bytes)?;
    if let Some(pointer) = find_card_number(&raw) {
        return Err(ApiError::Validation(vec![edge::error::FieldError {
            pointer,
            detail:
                "looks like a card number: card numbers are never accepted, send a payment processor's token"
                    .into(),
        }]));
    }
    validation::parse_body(bytes)
}

fn check_text(v: &mut Validator, pointer: &str, text: &Option<String>, max: usize) {
    if let Some(text) = text {
        v.check(
            text.chars().count() <= max,
            pointer,
            format!("must be at most {max} characters"),
        );
    }
}

/// Applies every rule (the agency's among them) and expands the recurrence. The agency and the
/// occurrences come back when the request is acceptable.
async fn check(
    state: &AppState,
    input: &RequestInput,
    needs_payment: bool,
) -> Result<(Agency, Vec<Occurrence>), ApiError> {
    let now = state.clock.now();
    let mut v = Validator::new();
    let agency = agencies::find(state, &input.agency_id).await?;
    v.check(agency.is_some(), "/agency_id", "no such agency");
    v.text("/event/name", &input.event.name, 200);
    v.text("/event/kind", &input.event.kind, 50);
    check_text(&mut v, "/event/description", &input.event.description, 2000);
    check_text(&mut v, "/notes", &input.notes, 2000);
    v.text("/site/name", &input.site.name, 200);
    v.address("/site/address", &input.site.address);
    if let Some((lat, lon)) = input.site.location {
        v.check(
            (-90.0..=90.0).contains(&lat),
            "/site/location/0",
            "latitude must be between -90 and 90",
        );
        v.check(
            (-180.0..=180.0).contains(&lon),
            "/site/location/1",
            "longitude must be between -180 and 180",
        );
    }
    v.text("/site/contact/name", &input.site.contact.name, 200);
    v.phone("/site/contact/phone", &input.site.contact.phone);
    v.check(
        (1..=100).contains(&input.officers),
        "/officers",
        "must be between 1 and 100",
    );
    match (&input.payment, needs_payment) {
        (Some(payment), _) => {
            let token_ok = ["pm_", "tok_", "card_", "src_"]
                .iter()
                .any(|p| payment.processor_token.starts_with(p))
                && payment.processor_token.len() >= 8
                && payment.processor_token.len() <= 255
                && payment
                    .processor_token
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            v.check(
                token_ok,
                "/payment/processor_token",
                "must be a payment processor's token (pm_…, tok_…)",
            );
            v.check(
                [
                    "visa",
                    "mastercard",
                    "amex",
                    "discover",
                    "diners",
                    "jcb",
                    "unionpay",
                ]
                .contains(&payment.card_brand.as_str()),
                "/payment/card_brand",
                "must be one of visa, mastercard, amex, discover, diners, jcb, unionpay",
            );
            v.check(
                payment.card_last4.len() == 4 && payment.card_last4.chars().all(|c| c.is_ascii_digit()),
                "/payment/card_last4",
                "must be the last four digits",
            );
        }
        (None, true) => v.reject("/payment", "is required to book"),
        (None, false) => {}
    }
    let time_zone = TimeZone::get(&input.time_zone);
    v.check(
        time_zone.is_ok(),
        "/time_zone",
        "must be an IANA time zone such as America/Denver",
    );
    let (Ok(time_zone), Some(agency)) = (time_zone, agency) else {
        v.finish()?;
        return Err(ApiError::BadRequest(
            "unreachable: invalid time zone or agency".into(),
        ));
    };
    let starts = input.starts_at.to_zoned_datetime(time_zone.clone());
    let ends = input.ends_at.to_zoned_datetime(time_zone.clone());
    let (Ok(starts), Ok(ends)) = (starts, ends) else {
        v.reject("/starts_at", "is not a time that exists in this time zone");
        v.finish()?;
        return Err(ApiError::BadRequest("unreachable: nonexistent local time".into()));
    };
    let rules = &agency.settings.rules;
    let length = ends.timestamp().duration_since(starts.timestamp());
    if length <= SignedDuration::ZERO {
        v.reject("/ends_at", "must be after starts_at");
    } else {
        let minutes = length.as_mins();
        v.check(
            minutes >= i64::from(rules.min_duration_hours) * 60,
            "/ends_at",
            format!(
                "agency rule min_duration_hours: a request lasts at least {} h",
                rules.min_duration_hours
            ),
        );
        v.check(
            minutes <= i64::from(rules.max_duration_hours) * 60,
            "/ends_at",
            format!(
                "agency rule max_duration_hours: a request lasts at most {} h",
                rules.max_duration_hours
            ),
        );
    }
    let ahead = starts.timestamp().duration_since(now);
    if ahead <= SignedDuration::ZERO {
        v.reject("/starts_at", "must be in the future");
    } else {
        v.check(
            ahead >= SignedDuration::from_hours(i64::from(rules.lead_time_hours)),
            "/starts_at",
            format!(
                "agency rule lead_time_hours: book at least {} h ahead",
                rules.lead_time_hours
            ),
        );
    }
    if input.officers >= rules.supervisor_required_at {
        v.check(
            input.requirements.supervisor,
            "/requirements/supervisor",
            format!(
                "agency rule supervisor_required_at: {} or more officers need a supervisor",
                rules.supervisor_required_at
            ),
        );
    }
    if input.event.alcohol_served {
        v.check(
            input.officers >= rules.alcohol_minimum_officers,
            "/officers",
            format!(
                "agency rule alcohol_minimum_officers: alcohol needs at least {} officers",
                rules.alcohol_minimum_officers
            ),
        );
    }
    let occurrences = expand(&mut v, starts, ends, input.recurrence);
    v.finish()?;
    Ok((agency, occurrences))
}

fn expand(v: &mut Validator, starts: Zoned, ends: Zoned, recurrence: Option<Recurrence>) -> Vec<Occurrence> {
    let Some(recurrence) = recurrence else {
        return vec![Occurrence { starts, ends }];
    };
    let step = match recurrence.frequency {
        Frequency::Daily => 1.day(),
        Frequency::Weekly => 1.week(),
    };
    let limit = match (recurrence.count, recurrence.until) {
        (Some(count), None) if (1..=MAX_OCCURRENCES as u32).contains(&count) => count as usize,
        (None, Some(until)) if until >= starts.date() => MAX_OCCURRENCES + 1,
        _ => {
            v.reject(
                "/recurrence",
                format!("give either a count of 1 to {MAX_OCCURRENCES} or an until date after the start"),
            );
            return Vec::new();
        }
    };
    let mut occurrences = Vec::new();
    for index in 0..limit {
        let offset = step * i64::try_from(index).unwrap_or(0);
        let (Ok(s), Ok(e)) = (starts.checked_add(offset), ends.checked_add(offset)) else {
            break;
        };
        if recurrence.until.is_some_and(|until| s.date() > until) {
            break;
        }
        occurrences.push(Occurrence { starts: s, ends: e });
    }
    if occurrences.len() > MAX_OCCURRENCES {
        v.reject(
            "/recurrence/until",
            format!("a booking repeats at most {MAX_OCCURRENCES} times"),
        );
    }
    occurrences
}

fn price_of(agency: &Agency, input: &RequestInput, occurrence: &Occurrence, now: Timestamp) -> Price {
    let rates = &agency.settings.rates;
    let ahead = occurrence.starts.timestamp().duration_since(now);
    pricing::price(
        rates,
        Shift {
            minutes: occurrence
                .ends
                .timestamp()
                .duration_since(occurrence.starts.timestamp())
                .as_mins(),
            officers: i64::from(input.officers),
            vehicle: input.requirements.vehicle,
            holiday: agency.settings.holidays.contains(&occurrence.starts.date()),
            short_notice: ahead < SignedDuration::from_hours(i64::from(rates.short_notice_hours)),
        },
    )
}

// ------------------------------------------------------------------------------------------ operations

/// `POST /v1/quotes`: the price of a request, with every rule checked; nothing is stored.
pub async fn quote(state: &AppState, caller: &Caller, input: RequestInput) -> Result<Quote, ApiError> {
    caller.require(Role::Customer)?;
    let (agency, occurrences) = check(state, &input, false).await?;
    let now = state.clock.now();
    let occurrences: Vec<QuotedOccurrence> = occurrences
        .iter()
        .map(|o| QuotedOccurrence {
            starts_at: o.starts.to_string(),
            ends_at: o.ends.to_string(),
            price: price_of(&agency, &input, o, now),
        })
        .collect();
    let total_cents = occurrences.iter().map(|o| o.price.total_cents).sum();
    Ok(Quote {
        occurrences,
        total_cents,
        currency: "USD".into(),
    })
}

/// `POST /v1/service-requests`: books a request (one per occurrence), with its payment record.
/// With an `Idempotency-Key`, a retry of the same body returns the first booking and books nothing;
/// the same key with another body is refused.
pub async fn book(
    state: &AppState,
    caller: &Caller,
    body: &[u8],
    idempotency_key: Option<&str>,
) -> Result<(Booking, bool), ApiError> {
    caller.require(Role::Customer)?;
    let input = parse(body)?;
    let body_sha256: String = Sha256::digest(body)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    if let Some(key) = idempotency_key {
        if key.is_empty() || key.len() > 200 || !key.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ApiError::BadRequest(
                "Idempotency-Key must be 1 to 200 visible ASCII characters".into(),
            ));
        }
        if let Some(previous) = replay(state, caller, key, &body_sha256).await? {
            return Ok((previous, false));
        }
    }
    let (agency, occurrences) = check(state, &input, true).await?;
    let payment_input = input
        .payment
        .clone()
        .ok_or_else(|| ApiError::BadRequest("payment is required".into()))?;
    let now = state.clock.now();
    let series_id = uuid::Uuid::new_v4().to_string();
    let payment_id = uuid::Uuid::new_v4().to_string();
    let mut requests = Vec::new();
    for occurrence in &occurrences {
        let request_id = uuid::Uuid::new_v4().to_string();
        let starts_at = occurrence.starts.timestamp();
        requests.push(ServiceRequest {
            request_id: request_id.clone(),
            series_id: series_id.clone(),
            customer_user_id: caller.user_id.clone(),
            agency_id: agency.agency_id.clone(),
            status: Status::Requested,
            event: input.event.clone(),
            site: input.site.clone(),
            starts_at,
            ends_at: occurrence.ends.timestamp(),
            time_zone: input.time_zone.clone(),
            officers: input.officers,
            filled: 0,
            requirements: input.requirements,
            notes: input.notes.clone(),
            price: price_of(&agency, &input, occurrence, now),
            payment_id: payment_id.clone(),
            cancellation: None,
            created_at: now,
            updated_at: now,
            completed_at: None,
            gsi1pk: format!("AGENCY#{}#REQUESTS", agency.agency_id),
            gsi1sk: format!("{}#{request_id}", sortable_time(starts_at)),
        });
    }
    let total_cents: i64 = requests.iter().map(|r| r.price.total_cents).sum();
    let payment = PaymentRecord {
        user_id: caller.user_id.clone(),
        payment_id: payment_id.clone(),
        request_id: series_id.clone(),
        processor_token: payment_input.processor_token,
        card_brand: payment_input.card_brand,
        card_last4: payment_input.card_last4,
        amount_cents: total_cents,
        currency: "USD".into(),
        created_at: now,
    };
    state.keys.create_user_key(&caller.user_id).await?;
    let mut writes = Vec::new();
    for request in &requests {
        writes.push(state.store.write_create(request)?);
        writes.push(state.store.write_create(&RequestPointer {
            request_id: request.request_id.clone(),
            owner_user_id: caller.user_id.clone(),
            agency_id: request.agency_id.clone(),
            request_sk: request.key().sk,
        })?);
    }
    writes.push(state.store.write_create(&payment)?);
    if let Some(key) = idempotency_key {
        writes.push(state.store.write_create(&IdempotencyRecord {
            user_id: caller.user_id.clone(),
            key: key.to_owned(),
            body_sha256: body_sha256.clone(),
            request_ids: requests.iter().map(|r| r.request_id.clone()).collect(),
            recorded_at: now,
        })?);
    }
    match state.store.transact(writes).await {
        Ok(()) => {}
        // A concurrent retry with the same key won: answer what it booked.
        Err(StoreError::TransactionCancelled(reasons))
            if idempotency_key.is_some() && reasons.last().is_some_and(|r| r == "ConditionalCheckFailed") =>
        {
            let key = idempotency_key.unwrap_or_default();
            return match replay(state, caller, key, &body_sha256).await? {
                Some(previous) => Ok((previous, false)),
                None => Err(ApiError::Conflict(
                    "a booking with this Idempotency-Key is in progress".into(),
                )),
            };
        }
        Err(error) => return Err(error.into()),
    }
    tracing::info!(series_id = %series_id, occurrences = requests.len(), "service request booked");
    edge::usage::count_agency_activity(state, &agency.agency_id).await;
    let summary = PaymentSummary {
        payment_id,
        card_brand: payment.card_brand,
        card_last4: payment.card_last4,
        amount_cents: total_cents,
    };
    Ok((
        Booking {
            series_id,
            requests: requests.iter().map(|r| view(r, Some(summary.clone()))).collect(),
            total_cents,
        },
        true,
    ))
}

/// The booking an earlier request with this key made, if any; 422 if the key came with another body.
async fn replay(
    state: &AppState,
    caller: &Caller,
    key: &str,
    body_sha256: &str,
) -> Result<Option<Booking>, ApiError> {
    let Some(record) = state
        .store
        .get::<IdempotencyRecord>(&IdempotencyRecord::key_of(&caller.user_id, key))
        .await?
    else {
        return Ok(None);
    };
    if record.record.body_sha256 != body_sha256 {
        return Err(ApiError::Validation(vec![edge::error::FieldError {
            pointer: "/".into(),
            detail: "this Idempotency-Key was used with a different body".into(),
        }]));
    }
    let mut requests = Vec::new();
    for request_id in &record.record.request_ids {
        requests.push(owned(state, caller, request_id).await?);
    }
    let series_id = requests.first().map(|r| r.series_id.clone()).unwrap_or_default();
    let total_cents = requests.iter().map(|r| r.price.total_cents).sum();
    let summary = match requests.first() {
        Some(first) => payment_summary(state, caller, &first.payment_id).await?,
        None => None,
    };
    Ok(Some(Booking {
        series_id,
        requests: requests.iter().map(|r| view(r, summary.clone())).collect(),
        total_cents,
    }))
}

async fn payment_summary(
    state: &AppState,
    caller: &Caller,
    payment_id: &str,
) -> Result<Option<PaymentSummary>, ApiError> {
    let key = ItemKey::new(user_partition(&caller.user_id), format!("PAYMENT#{payment_id}"));
    Ok(state
        .store
        .get::<PaymentRecord>(&key)
        .await?
        .map(|p| PaymentSummary {
            payment_id: p.record.payment_id,
            card_brand: p.record.card_brand,
            card_last4: p.record.card_last4,
            amount_cents: p.record.amount_cents,
        }))
}

pub(crate) async fn located(
    state: &AppState,
    request_id: &str,
) -> Result<Option<(RequestPointer, Versioned<ServiceRequest>)>, ApiError> {
    let Some(pointer) = state
        .store
        .get::<RequestPointer>(&RequestPointer::key_of(request_id))
        .await?
    else {
        return Ok(None);
    };
    let key = ItemKey::new(
        user_partition(&pointer.record.owner_user_id),
        pointer.record.request_sk.clone(),
    );
    Ok(state
        .store
        .get::<ServiceRequest>(&key)
        .await?
        .map(|request| (pointer.record, request)))
}

async fn owned(state: &AppState, caller: &Caller, request_id: &str) -> Result<ServiceRequest, ApiError> {
    match located(state, request_id).await? {
        Some((pointer, request)) if pointer.owner_user_id == caller.user_id => Ok(request.record),
        _ => Err(ApiError::NotFound("service request")),
    }
}

/// `GET /v1/service-requests/{id}`: the customer who booked it sees all of it; the agency's
/// dispatchers and admins see it without payment data; officers assigned to it see the site, the
/// on-site contact and the shift; anyone else gets 404.
pub async fn read(state: &AppState, caller: &Caller, request_id: &str) -> Result<ReadView, ApiError> {
    let Some((pointer, request)) = located(state, request_id).await? else {
        return Err(ApiError::NotFound("service request"));
    };
    let request = request.record;
    if pointer.owner_user_id == caller.user_id {
        let summary = payment_summary(state, caller, &request.payment_id).await?;
        return Ok(ReadView::Booking(Box::new(view(&request, summary))));
    }
    if caller.has(Role::Dispatcher) || caller.has(Role::AgencyAdmin) {
        let agency = agencies::find(state, &pointer.agency_id).await?;
        let staff = agency.is_some_and(|a| {
            (caller.has(Role::Dispatcher) && a.settings.dispatcher_user_ids.contains(&caller.user_id))
                || (caller.has(Role::AgencyAdmin) && a.settings.admin_user_ids.contains(&caller.user_id))
        });
        if staff {
            return Ok(ReadView::Booking(Box::new(view(&request, None))));
        }
    }
    if caller.has(Role::Provider) {
        let assignment = state
            .store
            .get::<Assignment>(&Assignment::key_of(&caller.user_id, request_id))
            .await?;
        if assignment.is_some_and(|a| a.record.status.is_active()) {
            return Ok(ReadView::Officer(Box::new(OfficerView {
                request_id: request.request_id.clone(),
                agency_id: request.agency_id.clone(),
                status: request.status,
                event: request.event.clone(),
                site: request.site.clone(),
                starts_at: local(request.starts_at, &request.time_zone),
                ends_at: local(request.ends_at, &request.time_zone),
                time_zone: request.time_zone.clone(),
                officers: request.officers,
                requirements: request.requirements,
                notes: request.notes.clone(),
            })));
        }
    }
    Err(ApiError::NotFound("service request"))
}

/// Filters and position of `GET /v1/service-requests`.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub status: Option<Status>,
    /// First day (UTC) of starts to include.
    pub from: Option<Date>,
    /// Last day (UTC) of starts to include.
    pub to: Option<Date>,
    pub limit: usize,
    pub cursor: Option<String>,
}

/// One page of the caller's requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    pub items: Vec<RequestView>,
    pub next_cursor: Option<String>,
}

/// `GET /v1/service-requests`: the caller's requests by start time, filtered, a page at a time.
pub async fn list(state: &AppState, caller: &Caller, query: ListQuery) -> Result<Page, ApiError> {
    let scope = format!("requests:{}", caller.user_id);
    let after = match &query.cursor {
        Some(cursor) => Some(edge::cursor::decode(&state.lookup, &scope, cursor).await?),
        None => None,
    };
    let day_start = |date: Date| {
        date.to_zoned_datetime(TimeZone::UTC)
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::UNIX_EPOCH)
    };
    let from = query.from.map_or_else(
        || "REQUEST#".to_owned(),
        |d| format!("REQUEST#{}", sortable_time(day_start(d))),
    );
    let to = query.to.map_or_else(
        || "REQUEST#~".to_owned(),
        |d| {
            format!(
                "REQUEST#{}",
                sortable_time(day_start(d) + SignedDuration::from_hours(24))
            )
        },
    );
    let status = query.status;
    let (requests, last) = state
        .store
        .query_range::<ServiceRequest>(
            &user_partition(&caller.user_id),
            &from,
            &to,
            after.as_deref(),
            query.limit,
            |r| status.is_none_or(|s| r.status == s),
        )
        .await?;
    let next_cursor = match last {
        Some(sk) => Some(edge::cursor::encode(&state.lookup, &scope, &sk).await?),
        None => None,
    };
    Ok(Page {
        items: requests.iter().map(|r| view(&r.record, None)).collect(),
        next_cursor,
    })
}

/// The customer's cancellation of the request itself (fee by the notice given; who, when and why);
/// [`crate::scheduling::cancel_request`] calls it and then releases the officers.
pub(crate) async fn mark_cancelled(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    reason: &str,
) -> Result<(ServiceRequest, RequestView), ApiError> {
    let mut v = Validator::new();
    v.text("/reason", reason, 500);
    v.finish()?;
    let Some((pointer, current)) = located(state, request_id).await? else {
        return Err(ApiError::NotFound("service request"));
    };
    if pointer.owner_user_id != caller.user_id {
        return Err(ApiError::NotFound("service request"));
    }
    let request = current.record;
    if !request.status.can_become(Status::Cancelled) {
        return Err(ApiError::Conflict(
            format!("a {:?} request cannot be cancelled", request.status).to_lowercase(),
        ));
    }
    let now = state.clock.now();
    let agency = agencies::find(state, &request.agency_id)
        .await?
        .ok_or(ApiError::NotFound("agency"))?;
    let notice_hours = request.starts_at.duration_since(now).as_secs_f64() / 3600.0;
    let fee = pricing::cancellation_fee(
        &agency.settings.rates,
        &agency.settings.cancellation_fees,
        notice_hours,
        i64::from(request.officers),
    );
    let cancelled = ServiceRequest {
        status: Status::Cancelled,
        cancellation: Some(Cancellation {
            cancelled_at: now,
            by_user_id: caller.user_id.clone(),
            reason: reason.trim().to_owned(),
            fee,
        }),
        updated_at: now,
        ..request
    };
    match state.store.replace(&cancelled, current.version).await {
        Ok(_) => {}
        Err(StoreError::ConditionFailed) => {
            return Err(ApiError::Conflict(
                "the request changed meanwhile: read it again".into(),
            ));
        }
        Err(error) => return Err(error.into()),
    }
    tracing::info!(request_id = %cancelled.request_id, "service request cancelled");
    let summary = payment_summary(state, caller, &cancelled.payment_id).await?;
    let shown = view(&cancelled, summary);
    Ok((cancelled, shown))
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
        assert!(!InProgress.can_become(Cancelled));
        assert!(!Completed.can_become(Cancelled));
        assert!(!Cancelled.can_become(Requested));
        assert!(!Requested.can_become(Completed));
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
