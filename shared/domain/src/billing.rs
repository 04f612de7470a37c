//! Invoices: one per service request, from the hours the agency approved and the rates the request
//! was booked at (minimum hours, holiday and short-notice multipliers, vehicle charge, admin fee), or
//! from the cancellation fee. Integer cents, every line explained, one invoice for all the officers
//! of a request. An invoice is a payment record: kept 7 years from its issue, encrypted, and kept
//! through erasure. Issued by itself: when the last timesheet of a completed request is approved,
//! or when a request is cancelled with a fee.
//!
//! Payment itself (authorising at booking, capturing the invoice total through the payment processor)
//! is not built yet: an invoice is `issued` and says what is owed.

use crate::agencies;
use crate::scheduling::assignments::{self, AssignmentStatus, TimesheetStatus};
use crate::service_requests::pricing::{self, PriceLine, PriceOverflow, Shift};
use crate::service_requests::{self, ServiceRequest, Status};
use edge::auth::{Caller, Role};
use edge::error::ApiError;
use jiff::Timestamp;
use jiff::civil::Date;
use platform::AppState;
use platform::keys::{sortable_time, user_partition};
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record, StoreError};
use serde::{Deserialize, Serialize};

/// Where an invoice stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Issued: what is owed.
    Issued,
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
        return Ok(Some(existing.record));
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
                minutes.push(until.duration_since(from).as_mins().max(0));
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
        if let Err(error) = state.mailer.send(&customer.record.email, &message).await {
            tracing::warn!(error = %error, "invoice mail not sent");
        }
    }
    Ok(Some(invoice))
}

/// `GET /v1/service-requests/{id}/invoice`: the customer who booked it, or the agency's staff.
pub async fn invoice_of(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
) -> Result<InvoiceView, ApiError> {
    let Some((pointer, _)) = service_requests::located(state, request_id).await? else {
        return Err(ApiError::NotFound("service request"));
    };
    let staff = if caller.has(Role::Dispatcher) || caller.has(Role::AgencyAdmin) {
        agencies::find(state, &pointer.agency_id).await?.is_some_and(|a| {
            (caller.has(Role::Dispatcher) && a.settings.dispatcher_user_ids.contains(&caller.user_id))
                || (caller.has(Role::AgencyAdmin) && a.settings.admin_user_ids.contains(&caller.user_id))
        })
    } else {
        false
    };
    if pointer.owner_user_id != caller.user_id && !staff {
        return Err(ApiError::NotFound("service request"));
    }
    state
        .store
        .get::<Invoice>(&Invoice::key_of(&pointer.owner_user_id, request_id))
        .await?
        .map(|v| InvoiceView::from(v.record))
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
        "a statement covers at most a year",
    );
    v.finish()?;
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
