//! Invoices: one per service request, from the hours the agency approved and the rates the request
//! was booked at (minimum hours, holiday and short-notice multipliers, vehicle charge, admin fee), or
//! from the cancellation fee. Integer cents, every line explained, one invoice for all the officers
//! of a request. An invoice is a payment record: kept 7 years from its issue, encrypted, and kept
//! through erasure. Issued by itself: when the last timesheet of a completed request is approved,
//! or when a request is cancelled with a fee.
//!
//! Issuing an invoice bills it at once through `payments::capture` (the hold taken at booking is
//! captured, any difference charged off-session) and records the outcome here: `paid`, or
//! `payment_failed` with the processor's code and a mail to the customer. The processor's webhook
//! ([`processor_webhook`]) brings later news (a lapsed hold, a failed charge) onto the invoice.

use crate::agencies;
use crate::payments::{self, Settlement};
use crate::scheduling::assignments::{self, AssignmentStatus, TimesheetStatus};
use crate::service_requests::pricing::{self, PriceLine, PriceOverflow, Shift};
use crate::service_requests::{self, RequestPointer, ServiceRequest, Status};
use edge::auth::{Caller, Role};
use edge::error::ApiError;
use jiff::Timestamp;
use jiff::civil::Date;
use platform::AppState;
use platform::keys::{sortable_time, user_partition};
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record, StoreError, Versioned};
use serde::{Deserialize, Serialize};

/// Where an invoice stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Issued: what is owed, not yet charged (or the processor was unreachable; retried hourly).
    Issued,
    /// The total was charged.
    Paid,
    /// Charging failed (declined, or the hold lapsed): `paid_cents` were taken, the rest is owed.
    PaymentFailed,
    /// Charged and then refunded.
    Refunded,
}

/// An invoice as stored (the customer's partition, under the customer's key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub customer_user_id: String,
    pub request_id: String,
    pub agency_id: String,
    pub status: InvoiceStatus,
    pub issued_at: Timestamp,
    /// Each line explained: per officer, their approved hours priced at the booked rates.
    pub lines: Vec<PriceLine>,
    pub total_cents: i64,
    pub currency: String,
    /// What the processor took for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_cents: Option<i64>,
    /// The processor's code when charging failed (`card_declined`, `authorization_expired`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_failure: Option<String>,
    /// When it was paid, or charging failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_at: Option<Timestamp>,
    /// `CUSTOMER#<id>#INVOICES`: the customer's statement by period.
    pub gsi1pk: String,
    /// Issue time and request: statements in order.
    pub gsi1sk: String,
}

impl Invoice {
    /// The key of the invoice of `request_id` booked by `customer_user_id`.
    pub fn key_of(customer_user_id: &str, request_id: &str) -> ItemKey {
        ItemKey::new(user_partition(customer_user_id), format!("INVOICE#{request_id}"))
    }
}

/// An invoice as its readers see it (without the index attributes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvoiceView {
    pub customer_user_id: String,
    pub request_id: String,
    pub agency_id: String,
    pub status: InvoiceStatus,
    pub issued_at: Timestamp,
    pub lines: Vec<PriceLine>,
    pub total_cents: i64,
    pub currency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_cents: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_failure: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settled_at: Option<Timestamp>,
}

impl From<Invoice> for InvoiceView {
    fn from(i: Invoice) -> Self {
        Self {
            customer_user_id: i.customer_user_id,
            request_id: i.request_id,
            agency_id: i.agency_id,
            status: i.status,
            issued_at: i.issued_at,
            lines: i.lines,
            total_cents: i.total_cents,
            currency: i.currency,
            paid_cents: i.paid_cents,
            payment_failure: i.payment_failure,
            settled_at: i.settled_at,
        }
    }
}

fn statement_index(customer_user_id: &str) -> String {
    format!("CUSTOMER#{customer_user_id}#INVOICES")
}

impl Record for Invoice {
    const TYPE: &'static ItemType = &schema::INVOICE;

    fn key(&self) -> ItemKey {
        Self::key_of(&self.customer_user_id, &self.request_id)
    }

    /// Kept 7 years from its issue (a payment record the law makes us keep).
    fn retention_start(&self) -> Option<Timestamp> {
        Some(self.issued_at)
    }
}

/// The lines of a request's invoice: for each officer who worked, their approved minutes priced at
/// `rates` with the request's surcharges as booked; the total.
pub fn invoice_lines(
    rates: &agencies::Rates,
    request: &ServiceRequest,
    approved_minutes: &[i64],
) -> Result<(Vec<PriceLine>, i64), PriceOverflow> {
    let booked = |code: &str| request.price.lines.iter().any(|l| l.code == code);
    let mut lines = Vec::new();
    for (index, minutes) in approved_minutes.iter().enumerate() {
        let priced = pricing::price(
            rates,
            Shift {
                minutes: *minutes,
                officers: 1,
                vehicle: request.requirements.vehicle,
                holiday: booked("holiday"),
                short_notice: booked("short_notice"),
            },
        )?;
        lines.extend(priced.lines.into_iter().map(|line| PriceLine {
            description: format!("officer {}: {}", index + 1, line.description),
            ..line
        }));
    }
    let total = pricing::sum_cents(lines.iter().map(|l| l.amount_cents))?;
    Ok((lines, total))
}

/// Issues the invoice of `request_id` when it is due: a completed request whose officers' timesheets
/// are all approved, or a request cancelled with a fee. Idempotent (one invoice per request); does
/// nothing while not due. The customer is mailed the total.
pub async fn issue_when_due(state: &AppState, request_id: &str) -> Result<Option<Invoice>, ApiError> {
    let Some((_, current)) = service_requests::located(state, request_id).await? else {
        return Ok(None);
    };
    let request = current.record;
    let existing = state
        .store
        .get::<Invoice>(&Invoice::key_of(&request.customer_user_id, request_id))
        .await?;
    if let Some(existing) = existing {
        // Issued before; charge it if an earlier try could not (the processor was unreachable).
        return settle(state, existing).await.map(Some);
    }
    let Some(agency) = agencies::find(state, &request.agency_id).await? else {
        return Ok(None);
    };
    let rates = request.rates.clone().unwrap_or(agency.settings.rates.clone());
    let (lines, total) = match request.status {
        Status::Completed => {
            let mut minutes = Vec::new();
            for a in assignments::of_request_fresh(&state.store, request_id).await? {
                let a = a.record;
                if a.status != AssignmentStatus::Completed {
                    continue;
                }
                let Some(sheet) = a.timesheet.filter(|t| t.status == TimesheetStatus::Approved) else {
                    // Not every timesheet is approved yet: the last approval issues it.
                    return Ok(None);
                };
                let (Some(from), Some(until)) = (sheet.approved_from, sheet.approved_until) else {
                    return Ok(None);
                };
                // Never more than booked plus the overrun the booking allowed.
                minutes.push(
                    until
                        .duration_since(from)
                        .as_mins()
                        .clamp(0, request.billable_minutes_cap()),
                );
            }
            if minutes.is_empty() {
                return Ok(None);
            }
            invoice_lines(&rates, &request, &minutes)?
        }
        Status::Cancelled => match request.cancellation.as_ref().and_then(|c| c.fee.clone()) {
            Some(fee) => {
                let total = fee.amount_cents;
                (vec![fee], total)
            }
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    let now = state.clock.now();
    let invoice = Invoice {
        customer_user_id: request.customer_user_id.clone(),
        request_id: request_id.to_owned(),
        agency_id: request.agency_id.clone(),
        status: InvoiceStatus::Issued,
        issued_at: now,
        lines,
        total_cents: total,
        currency: "USD".into(),
        paid_cents: None,
        payment_failure: None,
        settled_at: None,
        gsi1pk: statement_index(&request.customer_user_id),
        gsi1sk: format!("{}#{request_id}", sortable_time(now)),
    };
    match state.store.create(&invoice).await {
        Ok(()) => {}
        // Issued meanwhile by another trigger: that one stands.
        Err(StoreError::ConditionFailed) => {
            return Ok(state
                .store
                .get::<Invoice>(&invoice.key())
                .await?
                .map(|v| v.record));
        }
        Err(error) => return Err(error.into()),
    }
    tracing::info!(request_id = %request_id, "invoice issued");
    if let Ok(Some(customer)) = crate::accounts::customer(&state.store, &request.customer_user_id).await {
        let message = crate::mail::invoice_issued(
            crate::mail::first_name(&customer.record.name),
            &request.event.name,
            invoice.total_cents,
        );
        if let Err(error) = crate::mail::send_service(state, &customer.record.email, &message).await {
            tracing::warn!(error = %error, "invoice mail not sent");
        }
    }
    let version = match state.store.get::<Invoice>(&invoice.key()).await? {
        Some(stored) => stored,
        None => return Ok(Some(invoice)),
    };
    settle(state, version).await.map(Some)
}

/// Charges an issued invoice through the processor and records the outcome on it. Idempotent: an
/// invoice already settled is returned as it is; a settlement the processor already made is recorded,
/// not made again.
async fn settle(state: &AppState, stored: Versioned<Invoice>) -> Result<Invoice, ApiError> {
    if stored.record.status != InvoiceStatus::Issued {
        return Ok(stored.record);
    }
    let invoice = &stored.record;
    let settlement = match payments::capture(
        state,
        &invoice.customer_user_id,
        &invoice.request_id,
        invoice.total_cents,
    )
    .await
    {
        Ok(settlement) => settlement,
        // The invoice stands, unpaid; the hourly run charges it again (the request stays due).
        Err(error) => {
            tracing::warn!(error = %error, request_id = %invoice.request_id, "invoice not charged yet");
            return Ok(stored.record);
        }
    };
    record_settlement(state, stored, settlement).await
}

/// Writes a settlement onto the invoice (version-conditioned) and mails the customer when charging
/// failed: once, on the change, so a replayed report mails nobody.
async fn record_settlement(
    state: &AppState,
    stored: Versioned<Invoice>,
    settlement: Settlement,
) -> Result<Invoice, ApiError> {
    let key = stored.record.key();
    let mut current = stored;
    // A concurrent writer (billing and a webhook at once) makes the write fail: read the invoice
    // again and apply the settlement to it, so no news is lost.
    for _ in 0..3 {
        match apply_settlement(state, current.clone(), &settlement).await? {
            Some(invoice) => return Ok(invoice),
            None => match state.store.get::<Invoice>(&key).await? {
                Some(fresh) => current = fresh,
                None => return Err(ApiError::NotFound("invoice")),
            },
        }
    }
    Err(ApiError::Conflict("the invoice kept changing; try again".into()))
}

/// Writes `settlement` onto the invoice read at its version; `None` when it changed meanwhile.
async fn apply_settlement(
    state: &AppState,
    stored: Versioned<Invoice>,
    settlement: &Settlement,
) -> Result<Option<Invoice>, ApiError> {
    let mut invoice = stored.record;
    let before = invoice.status;
    match settlement {
        Settlement::Pending => return Ok(Some(invoice)),
        Settlement::Paid { paid_cents } => {
            invoice.status = InvoiceStatus::Paid;
            invoice.paid_cents = Some(*paid_cents);
            invoice.payment_failure = None;
        }
        Settlement::Failed { paid_cents, code } => {
            invoice.status = InvoiceStatus::PaymentFailed;
            invoice.paid_cents = Some(*paid_cents);
            invoice.payment_failure = Some(code.clone());
        }
        Settlement::Refunded { .. } => invoice.status = InvoiceStatus::Refunded,
    }
    if invoice.status == before && before != InvoiceStatus::Issued {
        return Ok(Some(invoice));
    }
    invoice.settled_at = Some(state.clock.now());
    match state.store.replace(&invoice, stored.version).await {
        Ok(_) => {}
        Err(StoreError::ConditionFailed) => return Ok(None),
        Err(error) => return Err(error.into()),
    }
    tracing::info!(request_id = %invoice.request_id, status = ?invoice.status, "invoice settled");
    if invoice.status == InvoiceStatus::PaymentFailed {
        mail_payment_failed(state, &invoice).await;
    }
    Ok(Some(invoice))
}

async fn mail_payment_failed(state: &AppState, invoice: &Invoice) {
    let Ok(Some(customer)) = crate::accounts::customer(&state.store, &invoice.customer_user_id).await else {
        return;
    };
    let event = match service_requests::located(state, &invoice.request_id).await {
        Ok(Some((_, request))) => request.record.event.name,
        _ => "your booking".to_owned(),
    };
    let owed = invoice.total_cents - invoice.paid_cents.unwrap_or(0);
    let message = crate::mail::payment_failed(
        crate::mail::first_name(&customer.record.name),
        &event,
        owed,
        invoice.payment_failure.as_deref().unwrap_or("declined"),
    );
    if let Err(error) = crate::mail::send_service(state, &customer.record.email, &message).await {
        tracing::warn!(error = %error, "payment-failed mail not sent");
    }
}

/// What `POST /v1/webhooks/stripe` answers once a report is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookReceipt {
    pub received: bool,
    /// Whether the report changed a payment (a replay changes nothing).
    pub changed: bool,
}

/// The part of a processor event we read: its type and the id of the object it is about.
#[derive(Debug, Deserialize)]
struct ProcessorEvent {
    #[serde(rename = "type")]
    kind: String,
    data: ProcessorEventData,
}

#[derive(Debug, Deserialize)]
struct ProcessorEventData {
    object: ProcessorEventObject,
}

#[derive(Debug, Deserialize)]
struct ProcessorEventObject {
    id: String,
    #[serde(default)]
    object: String,
}

/// `POST /v1/webhooks/stripe`: a report from the processor. Accepted only with a valid
/// `Stripe-Signature` (within the tolerance, compared in constant time); anything else is a 400 and
/// changes nothing. An accepted report about a payment intent makes us read the intent from the
/// processor and reconcile our charge with it, then the invoice; the report's own body is trusted
/// for nothing but the intent's id.
pub async fn processor_webhook(
    state: &AppState,
    payload: &[u8],
    signature: Option<&str>,
) -> Result<WebhookReceipt, ApiError> {
    let signature =
        signature.ok_or_else(|| ApiError::BadRequest("the Stripe-Signature header is required".into()))?;
    state
        .processor
        .verify_webhook(payload, signature, state.clock.now())
        .await
        .map_err(|refused| match refused {
            platform::processor::WebhookRefused::NoSecret => ApiError::Internal(refused.to_string()),
            other => ApiError::BadRequest(other.to_string()),
        })?;
    let event: ProcessorEvent = serde_json::from_slice(payload)
        .map_err(|_| ApiError::BadRequest("the event is not a Stripe event".into()))?;
    let about_intent =
        event.data.object.object == "payment_intent" || event.kind.starts_with("payment_intent.");
    if !about_intent || !event.data.object.id.starts_with("pi_") {
        return Ok(WebhookReceipt {
            received: true,
            changed: false,
        });
    }
    let Some(reconciled) = payments::reconcile(state, &event.data.object.id).await? else {
        return Ok(WebhookReceipt {
            received: true,
            changed: false,
        });
    };
    if let Some(stored) = state
        .store
        .get::<Invoice>(&Invoice::key_of(
            &reconciled.customer_user_id,
            &reconciled.request_id,
        ))
        .await?
    {
        record_settlement(state, stored, reconciled.settlement).await?;
    }
    Ok(WebhookReceipt {
        received: true,
        changed: true,
    })
}

/// `GET /v1/service-requests/{id}/invoice`: the customer who booked it, or the agency's staff.
/// A customer's invoice is in their own partition, so reading it by their own key is the ownership
/// check (one `GetItem`); staff, or a miss, read the request's pointer, the agency (are they its
/// staff?), and only then the invoice.
pub async fn invoice_of(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
) -> Result<InvoiceView, ApiError> {
    if caller.has(Role::Customer)
        && let Some(own) = state
            .store
            .get::<Invoice>(&Invoice::key_of(&caller.user_id, request_id))
            .await?
    {
        return Ok(InvoiceView::from(own.record));
    }
    let pointer = state
        .store
        .get::<RequestPointer>(&RequestPointer::key_of(request_id))
        .await?
        .ok_or(ApiError::NotFound("service request"))?
        .record;
    let invoice_key = Invoice::key_of(&pointer.owner_user_id, request_id);
    if pointer.owner_user_id == caller.user_id {
        // Theirs, and the read above found no invoice.
        return Err(ApiError::NotFound("invoice"));
    }
    if !caller.has(Role::Dispatcher) && !caller.has(Role::AgencyAdmin) {
        return Err(ApiError::NotFound("service request"));
    }
    let staff = agencies::find(state, &pointer.agency_id).await?.is_some_and(|a| {
        (caller.has(Role::Dispatcher) && a.settings.dispatcher_user_ids.contains(&caller.user_id))
            || (caller.has(Role::AgencyAdmin) && a.settings.admin_user_ids.contains(&caller.user_id))
    });
    if !staff {
        return Err(ApiError::NotFound("service request"));
    }
    // The agency's staff see amount and status; the card's outcome code stays between the
    // customer and the processor.
    state
        .store
        .get::<Invoice>(&invoice_key)
        .await?
        .map(|v| InvoiceView {
            payment_failure: None,
            ..InvoiceView::from(v.record)
        })
        .ok_or(ApiError::NotFound("invoice"))
}

/// A customer's statement: the invoices issued in a period and what they add up to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    pub from: Date,
    pub to: Date,
    pub invoices: Vec<InvoiceView>,
    pub total_cents: i64,
    pub currency: String,
}

/// Longest period one statement covers.
pub const MAX_STATEMENT_DAYS: i64 = 366;

/// `GET /v1/me/statement?from=…&to=…`: the caller's invoices issued from `from` to `to` (UTC days,
/// inclusive), one range query on the statement index.
pub async fn statement(
    state: &AppState,
    caller: &Caller,
    from: Date,
    to: Date,
) -> Result<Statement, ApiError> {
    caller.require(Role::Customer)?;
    let (from_at, until) = period(from, to)?;
    let invoices: Vec<Invoice> = state
        .store
        .query_gsi1_range::<Invoice>(
            &statement_index(&caller.user_id),
            &sortable_time(from_at),
            &sortable_time(until),
        )
        .await?
        .into_iter()
        .map(|v| v.record)
        .filter(|i| i.customer_user_id == caller.user_id)
        .collect();
    let total_cents = pricing::sum_cents(invoices.iter().map(|i| i.total_cents))?;
    Ok(Statement {
        from,
        to,
        invoices: invoices.into_iter().map(InvoiceView::from).collect(),
        total_cents,
        currency: "USD".into(),
    })
}

/// The UTC instants that bound the days `from` to `to` (inclusive), checked: `from <= to`, at most
/// [`MAX_STATEMENT_DAYS`].
fn period(from: Date, to: Date) -> Result<(Timestamp, Timestamp), ApiError> {
    let start = |date: Date| {
        date.to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .map_err(|_| ApiError::BadRequest("dates out of range".into()))
    };
    let from_at = start(from)?;
    let until = start(
        to.tomorrow()
            .map_err(|_| ApiError::BadRequest("dates out of range".into()))?,
    )?;
    let mut v = edge::validation::Validator::new();
    v.check(from <= to, "?to", "must not be before from");
    v.check(
        until.duration_since(from_at) <= jiff::SignedDuration::from_hours(24 * MAX_STATEMENT_DAYS),
        "?to",
        "a period covers at most a year",
    );
    v.finish()?;
    Ok((from_at, until))
}

/// An agency's invoices for the requests that started in a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgencyInvoices {
    pub agency_id: String,
    pub from: Date,
    pub to: Date,
    pub invoices: Vec<InvoiceView>,
    pub total_cents: i64,
    pub paid_cents: i64,
    pub currency: String,
}

/// `GET /v1/agencies/{id}/invoices?from=…&to=…`: the invoices of the agency's requests that started
/// from `from` to `to` (UTC days), for its admins and dispatchers only (404 to anyone else). One range
/// query on the agency's requests, one batch read of their invoices.
pub async fn agency_invoices(
    state: &AppState,
    caller: &Caller,
    agency_id: &str,
    from: Date,
    to: Date,
) -> Result<AgencyInvoices, ApiError> {
    let agency = agencies::find(state, agency_id)
        .await?
        .ok_or(ApiError::NotFound("agency"))?;
    let staff = (caller.has(Role::Dispatcher)
        && agency.settings.dispatcher_user_ids.contains(&caller.user_id))
        || (caller.has(Role::AgencyAdmin) && agency.settings.admin_user_ids.contains(&caller.user_id));
    if !staff {
        return Err(ApiError::NotFound("agency"));
    }
    let (from_at, until) = period(from, to)?;
    let requests = service_requests::of_agency_starting(state, agency_id, from_at, until).await?;
    let keys: Vec<ItemKey> = requests
        .iter()
        .map(|r| Invoice::key_of(&r.customer_user_id, &r.request_id))
        .collect();
    let mut invoices: Vec<Invoice> = state
        .store
        .batch_get::<Invoice>(&keys)
        .await?
        .into_iter()
        .map(|v| v.record)
        .filter(|i| i.agency_id == agency_id)
        .collect();
    invoices.sort_by(|a, b| (a.issued_at, &a.request_id).cmp(&(b.issued_at, &b.request_id)));
    let total_cents = pricing::sum_cents(invoices.iter().map(|i| i.total_cents))?;
    let paid_cents = pricing::sum_cents(invoices.iter().map(|i| i.paid_cents.unwrap_or(0)))?;
    Ok(AgencyInvoices {
        agency_id: agency_id.to_owned(),
        from,
        to,
        // The agency sees amount and status; the card's outcome code is between the customer and
        // the processor (transaction details the agency does not need to be paid).
        invoices: invoices
            .into_iter()
            .map(|invoice| InvoiceView {
                payment_failure: None,
                ..InvoiceView::from(invoice)
            })
            .collect(),
        total_cents,
        paid_cents,
        currency: "USD".into(),
    })
}

/// One approved shift and what it earned the officer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShiftEarnings {
    pub request_id: String,
    pub agency_id: String,
    pub worked_from: Timestamp,
    pub worked_until: Timestamp,
    pub approved_minutes: i64,
    pub earnings_cents: i64,
}

/// One week (Monday to Sunday, in the site's time zone) of an officer's approved hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeekEarnings {
    /// The Monday.
    pub week_of: Date,
    pub approved_minutes: i64,
    pub earnings_cents: i64,
    pub shifts: Vec<ShiftEarnings>,
}

/// An officer's approved hours and earnings per week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Earnings {
    pub from: Date,
    pub to: Date,
    pub weeks: Vec<WeekEarnings>,
    pub approved_minutes: i64,
    pub earnings_cents: i64,
    pub currency: String,
    /// Timesheets worked in the period and not approved yet: not counted until they are.
    pub awaiting_approval: u32,
}

/// What an officer earns for `minutes` approved on `request`: the labour at the booked rates with its
/// minimum hours and the holiday and short-notice multipliers as booked. The admin fee and the
/// vehicle charge are the agency's, not the officer's.
pub fn officer_earnings(
    rates: &agencies::Rates,
    request: &ServiceRequest,
    minutes: i64,
) -> Result<i64, PriceOverflow> {
    let booked = |code: &str| request.price.lines.iter().any(|l| l.code == code);
    let priced = pricing::price(
        rates,
        Shift {
            minutes,
            officers: 1,
            vehicle: false,
            holiday: booked("holiday"),
            short_notice: booked("short_notice"),
        },
    )?;
    pricing::sum_cents(
        priced
            .lines
            .iter()
            .filter(|l| l.code != "admin_fee" && l.code != "vehicle")
            .map(|l| l.amount_cents),
    )
}

/// `GET /v1/providers/me/earnings?from=…&to=…`: the caller's approved hours and earnings per week,
/// for shifts whose approved start lies in the period (UTC days). Only approved timesheets count.
pub async fn earnings(state: &AppState, caller: &Caller, from: Date, to: Date) -> Result<Earnings, ApiError> {
    caller.require(Role::Provider)?;
    let (from_at, until) = period(from, to)?;
    let mut awaiting_approval = 0;
    let mut shifts: Vec<(Date, ShiftEarnings)> = Vec::new();
    for assignment in assignments::worked_by(&state.store, &caller.user_id).await? {
        if assignment.starts_at >= until || assignment.ends_at < from_at {
            continue;
        }
        let Some(sheet) = assignment.timesheet.as_ref() else {
            continue;
        };
        let (Some(worked_from), Some(worked_until)) = (sheet.approved_from, sheet.approved_until) else {
            awaiting_approval += 1;
            continue;
        };
        if sheet.status != TimesheetStatus::Approved || worked_from < from_at || worked_from >= until {
            continue;
        }
        let Some((_, request)) = service_requests::located(state, &assignment.request_id).await? else {
            continue;
        };
        let request = request.record;
        let Some(rates) = request.rates.clone() else {
            continue;
        };
        let minutes = worked_until.duration_since(worked_from).as_mins().max(0);
        let zone = jiff::tz::TimeZone::get(&request.time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
        let day = worked_from.to_zoned_datetime(zone).date();
        let monday = day
            .checked_sub(jiff::Span::new().days(i64::from(day.weekday().to_monday_zero_offset())))
            .unwrap_or(day);
        shifts.push((
            monday,
            ShiftEarnings {
                request_id: assignment.request_id.clone(),
                agency_id: assignment.agency_id.clone(),
                worked_from,
                worked_until,
                approved_minutes: minutes,
                earnings_cents: officer_earnings(&rates, &request, minutes)?,
            },
        ));
    }
    shifts.sort_by_key(|(monday, shift)| (*monday, shift.worked_from));
    let mut weeks: Vec<WeekEarnings> = Vec::new();
    for (monday, shift) in shifts {
        if weeks.last().is_none_or(|w| w.week_of != monday) {
            weeks.push(WeekEarnings {
                week_of: monday,
                approved_minutes: 0,
                earnings_cents: 0,
                shifts: Vec::new(),
            });
        }
        if let Some(week) = weeks.last_mut() {
            week.approved_minutes += shift.approved_minutes;
            week.earnings_cents = pricing::sum_cents([week.earnings_cents, shift.earnings_cents])?;
            week.shifts.push(shift);
        }
    }
    Ok(Earnings {
        from,
        to,
        approved_minutes: weeks.iter().map(|w| w.approved_minutes).sum(),
        earnings_cents: pricing::sum_cents(weeks.iter().map(|w| w.earnings_cents))?,
        weeks,
        currency: "USD".into(),
        awaiting_approval,
    })
}
