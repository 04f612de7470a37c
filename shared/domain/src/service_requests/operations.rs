//! Quoting, booking (idempotent), reading and listing service requests, and marking one cancelled.

use super::*;

// ------------------------------------------------------------------------------------------ operations

/// `POST /v1/quotes`: the price of a request, with every rule checked; nothing is stored.
pub async fn quote(state: &AppState, caller: &Caller, input: RequestInput) -> Result<Quote, ApiError> {
    caller.require(Role::Customer)?;
    if let Some(account) = crate::accounts::customer(&state.store, &caller.user_id).await? {
        refuse_unless_active(account.record.status)?;
    }
    let agency = agencies::find(state, &input.agency_id).await?;
    let (agency, occurrences) = check(state, &input, agency, false)?;
    let now = state.clock.now();
    let occurrences = occurrences
        .iter()
        .map(|o| {
            Ok(QuotedOccurrence {
                starts_at: o.starts.to_string(),
                ends_at: o.ends.to_string(),
                price: price_of(&agency, &input, o, now)?,
            })
        })
        .collect::<Result<Vec<_>, PriceOverflow>>()?;
    let total_cents = sum_cents(occurrences.iter().map(|o| o.price.total_cents))?;
    Ok(Quote {
        occurrences,
        total_cents,
        currency: "USD".into(),
        terms: BookedTerms::of(&agency.settings, input.overrun_minutes),
    })
}

/// A customer who restricted processing (or whose erasure runs) books and quotes nothing: a booking
/// is new processing of their data (the restriction allows storage and what the law requires).
pub(crate) fn refuse_unless_active(status: crate::accounts::AccountStatus) -> Result<(), ApiError> {
    if status == crate::accounts::AccountStatus::Active {
        return Ok(());
    }
    Err(ApiError::Refused {
        rule: "processing_restricted",
        detail: "you restricted the processing of your data: lift the restriction (a privacy request of type lift_restriction) to book".into(),
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
    let body_sha256 = hex::encode(Sha256::digest(body));
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
    // What booking reads, every key known from the caller and the body: one BatchGetItem.
    let account_key = crate::accounts::account_key(&caller.user_id, crate::accounts::AccountRole::Customer);
    let agency_key = Agency::key_of(&input.agency_id);
    let processor_key = crate::payments::ProcessorCustomer::key_of(&caller.user_id);
    let mut fetched = state
        .store
        .get_many(&[account_key.clone(), agency_key.clone(), processor_key.clone()])
        .await?;
    // The booking is stored under the customer's key, which only registration creates.
    let Some(account) = fetched.take::<crate::accounts::CustomerAccount>(&account_key)? else {
        return Err(ApiError::Conflict(
            "register as a customer (POST /v1/customers) before booking".into(),
        ));
    };
    refuse_unless_active(account.record.status)?;
    let agency = fetched.take::<Agency>(&agency_key)?.map(|v| v.record);
    let processor_customer = fetched
        .take::<crate::payments::ProcessorCustomer>(&processor_key)?
        .map(|v| v.record.customer_id);
    let (agency, occurrences) = check(state, &input, agency, true)?;
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
            // An agency that approves bookings first sees them before any officer does.
            status: if agency.settings.rules.approve_requests {
                Status::AwaitingApproval
            } else {
                Status::Requested
            },
            event: input.event.clone(),
            site: input.site.clone(),
            starts_at,
            ends_at: occurrence.ends.timestamp(),
            time_zone: input.time_zone.clone(),
            officers: input.officers,
            filled: 0,
            requirements: input.requirements,
            notes: input.notes.clone(),
            price: price_of(&agency, &input, occurrence, now)?,
            payment_id: payment_id.clone(),
            cancellation: None,
            created_at: now,
            updated_at: now,
            completed_at: None,
            rates: Some(agency.settings.rates.clone()),
            terms: Some(BookedTerms::of(&agency.settings, input.overrun_minutes)),
            started_at: None,
            no_shows_checked_at: None,
            gsi1pk: format!("AGENCY#{}#REQUESTS", agency.agency_id),
            gsi1sk: format!("{}#{request_id}", sortable_time(starts_at)),
            due_day: None,
            due_at: None,
        });
        // The scheduled run takes it from here: 6 days before its start to hold the card (when it is
        // too far ahead to hold now), then at its start (in progress, or expired unapproved).
        if let Some(request) = requests.last_mut() {
            request.due(Some(
                crate::payments::hold_due(starts_at, now).unwrap_or(starts_at),
            ));
        }
    }
    let total_cents = sum_cents(requests.iter().map(|r| r.price.total_cents))?;
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
    // Last in the transaction, so that its failed condition (a concurrent retry won) is recognised.
    let idempotency_write = match idempotency_key {
        Some(key) => Some(state.store.write_create(&IdempotencyRecord {
            user_id: caller.user_id.clone(),
            key: key.to_owned(),
            body_sha256: body_sha256.clone(),
            request_ids: requests.iter().map(|r| r.request_id.clone()).collect(),
            recorded_at: now,
        })?),
        None => None,
    };
    // Each occurrence starting soon is held on the card now (manual capture), a later one has the
    // card saved; each is charged when billed. A decline books nothing (402). Authorised last, so
    // that nothing but the transaction itself can fail after a hold was taken.
    let to_authorize: Vec<crate::payments::ToAuthorize> = requests
        .iter()
        .map(|r| crate::payments::ToAuthorize {
            request_id: &r.request_id,
            amount_cents: r.price.total_cents,
            starts_at: r.starts_at,
        })
        .collect();
    let charges = crate::payments::authorize(
        state,
        &caller.user_id,
        processor_customer,
        &series_id,
        &payment.processor_token,
        &to_authorize,
    )
    .await?;
    match crate::payments::writes_for(state, &charges) {
        Ok(charge_writes) => writes.extend(charge_writes),
        Err(error) => {
            crate::payments::release_unstored(state, &charges).await;
            return Err(error.into());
        }
    }
    writes.extend(idempotency_write);
    let committed = state.store.transact(writes).await;
    if committed.is_err() {
        // Nothing was booked: no hold may stay on the card.
        crate::payments::release_unstored(state, &charges).await;
    }
    match committed {
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
    let total_cents = sum_cents(requests.iter().map(|r| r.price.total_cents))?;
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

/// A request by id with its pointer (who owns it, which agency), for reads that authorise themselves.
pub async fn located(
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
    Ok(state
        .store
        .get::<ServiceRequest>(&pointer.record.request_key())
        .await?
        .map(|request| (pointer.record, request)))
}

async fn owned(state: &AppState, caller: &Caller, request_id: &str) -> Result<ServiceRequest, ApiError> {
    match located(state, request_id).await? {
        Some((pointer, request)) if pointer.owner_user_id == caller.user_id => Ok(request.record),
        _ => Err(ApiError::NotFound("service request")),
    }
}

/// The requests of an agency starting in `[from, until)`, by start (one range query on the agency's
/// request index): for the agency's own views, such as its invoices.
pub async fn of_agency_starting(
    state: &AppState,
    agency_id: &str,
    from: Timestamp,
    until: Timestamp,
) -> Result<Vec<ServiceRequest>, StoreError> {
    Ok(state
        .store
        .query_gsi1_range::<ServiceRequest>(
            &format!("AGENCY#{agency_id}#REQUESTS"),
            &sortable_time(from),
            &sortable_time(until),
        )
        .await?
        .into_iter()
        .map(|v| v.record)
        .filter(|r| r.agency_id == agency_id && r.starts_at >= from && r.starts_at < until)
        .collect())
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
        if let Some(assignment) = assignment.filter(|a| a.record.status.is_active()) {
            let hours_before = agencies::find(state, &request.agency_id)
                .await?
                .map_or(48, |a| a.settings.rules.site_details_hours_before);
            let details_from = request
                .starts_at
                .checked_sub(SignedDuration::from_hours(i64::from(hours_before)))
                .unwrap_or(request.starts_at);
            // Least data, least time: the street, the contact and the notes only while the slot is
            // held and the shift is near, never after check-out.
            let holding = matches!(
                assignment.record.status,
                AssignmentStatus::Assigned | AssignmentStatus::Accepted | AssignmentStatus::CheckedIn
            );
            // A customer who restricted processing: their contact and notes are not shown to
            // anyone new (stored, not used).
            let customer_active = crate::accounts::customer(&state.store, &request.customer_user_id)
                .await?
                .is_some_and(|c| c.record.status == crate::accounts::AccountStatus::Active);
            let details = holding && customer_active && state.clock.now() >= details_from;
            return Ok(ReadView::Officer(Box::new(OfficerView {
                request_id: request.request_id.clone(),
                agency_id: request.agency_id.clone(),
                status: request.status,
                event: request.event.clone(),
                city: request.site.address.city.clone(),
                region: request.site.address.region.clone(),
                site: details.then(|| request.site.clone()),
                site_details_from: local(details_from, &request.time_zone),
                starts_at: local(request.starts_at, &request.time_zone),
                ends_at: local(request.ends_at, &request.time_zone),
                time_zone: request.time_zone.clone(),
                officers: request.officers,
                requirements: request.requirements,
                notes: request.notes.clone().filter(|_| details),
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
    let mut v = Validator::new();
    for (pointer, date) in [("?from", query.from), ("?to", query.to)] {
        if let Some(date) = date {
            v.check(
                (2000..=2100).contains(&date.year()),
                pointer,
                "must be a date from the year 2000 to 2100",
            );
        }
    }
    if let (Some(from), Some(to)) = (query.from, query.to) {
        v.check(from <= to, "?to", "must not be before from");
    }
    v.finish()?;
    // The cursor is bound to the owner and the filters: reused with others it is a 400, never a
    // silently empty or shifted page.
    let scope = format!(
        "requests:{}:status={}:from={}:to={}",
        caller.user_id,
        query.status.map(|s| format!("{s:?}")).unwrap_or_default(),
        query.from.map(|d| d.to_string()).unwrap_or_default(),
        query.to.map(|d| d.to_string()).unwrap_or_default()
    );
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
                sortable_time(
                    day_start(d)
                        .checked_add(SignedDuration::from_hours(24))
                        .unwrap_or(Timestamp::MAX)
                )
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

/// What an agency's staff decide about a booking awaiting approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingDecision {
    /// Accepted: officers see it and may be placed.
    Approve,
    /// Not accepted: the customer is told why and nothing is charged.
    Reject,
}

/// The body of `POST /v1/service-requests/{id}/approval`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookingDecisionInput {
    pub decision: BookingDecision,
    /// Required to reject: told to the customer.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /v1/service-requests/{id}/approval`: an admin or dispatcher of the agency approves a booking
/// awaiting approval (officers see it from then on) or rejects it with a reason (the customer is
/// mailed; no fee). Other callers get 404, as for reading.
pub async fn decide(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    input: BookingDecisionInput,
) -> Result<RequestView, ApiError> {
    let mut v = Validator::new();
    if let Some(reason) = &input.reason {
        v.text("/reason", reason, 500);
    }
    v.check(
        input.decision == BookingDecision::Approve
            || input.reason.as_deref().is_some_and(|r| !r.trim().is_empty()),
        "/reason",
        "say why: the customer is told",
    );
    v.finish()?;
    if !caller.has(Role::Dispatcher) && !caller.has(Role::AgencyAdmin) {
        return Err(ApiError::Forbidden(
            "this action needs the dispatcher or agency_admin role".into(),
        ));
    }
    let Some((pointer, current)) = located(state, request_id).await? else {
        return Err(ApiError::NotFound("service request"));
    };
    let agency = agencies::find(state, &pointer.agency_id)
        .await?
        .ok_or(ApiError::NotFound("service request"))?;
    let staff = (caller.has(Role::Dispatcher)
        && agency.settings.dispatcher_user_ids.contains(&caller.user_id))
        || (caller.has(Role::AgencyAdmin) && agency.settings.admin_user_ids.contains(&caller.user_id));
    if !staff {
        return Err(ApiError::NotFound("service request"));
    }
    let request = current.record;
    if request.status != Status::AwaitingApproval {
        return Err(ApiError::Conflict(
            "only a booking awaiting approval can be approved or rejected".into(),
        ));
    }
    let now = state.clock.now();
    if now >= request.starts_at {
        return Err(ApiError::Refused {
            rule: "approve_before_start",
            detail: "the booking's start has passed: it expires unapproved".into(),
        });
    }
    let decided = match input.decision {
        BookingDecision::Approve => ServiceRequest {
            status: Status::Requested,
            updated_at: now,
            ..request
        },
        BookingDecision::Reject => ServiceRequest {
            status: Status::Rejected,
            due_day: None,
            due_at: None,
            cancellation: Some(Cancellation {
                cancelled_at: now,
                by_user_id: caller.user_id.clone(),
                reason: input.reason.as_deref().unwrap_or_default().trim().to_owned(),
                fee: None,
            }),
            updated_at: now,
            ..request
        },
    };
    match state.store.replace(&decided, current.version).await {
        Ok(_) => {}
        Err(StoreError::ConditionFailed) => {
            return Err(ApiError::Conflict(
                "the request changed meanwhile: read it again".into(),
            ));
        }
        Err(error) => return Err(error.into()),
    }
    tracing::info!(request_id = %decided.request_id, decision = ?input.decision, "booking decided");
    if input.decision == BookingDecision::Reject {
        if let Err(error) =
            crate::payments::release(state, &decided.customer_user_id, &decided.request_id).await
        {
            tracing::warn!(error = %error, request_id = %decided.request_id, "payment hold not released");
        }
        tell_customer_rejected(state, &decided, &agency).await;
    }
    Ok(view(&decided, None))
}

/// Mails the customer that the agency rejected their booking (a failed mail is logged only).
pub(crate) async fn tell_customer_rejected(
    state: &AppState,
    request: &ServiceRequest,
    agency: &agencies::Agency,
) {
    let Ok(Some(customer)) = crate::accounts::customer(&state.store, &request.customer_user_id).await else {
        return;
    };
    let reason = request
        .cancellation
        .as_ref()
        .map(|c| c.reason.clone())
        .unwrap_or_default();
    let message = crate::mail::booking_rejected(
        crate::mail::first_name(&customer.record.name),
        &agency.settings.agency_name,
        &local(request.starts_at, &request.time_zone),
        &reason,
    );
    if let Err(error) = crate::mail::send_service(state, &customer.record.email, &message).await {
        tracing::warn!(error = %error, "rejection mail not sent");
    }
}

/// The cancellation of the request itself, by its customer (up to the start; fee by the notice given)
/// or by the agency's staff (at any time before completion; no fee), with who, when and why;
/// [`crate::scheduling::cancel_request`] calls it and then releases the officers. Returns the
/// cancelled request, and whether it was cancelled before by the same caller (a retry after a lost
/// answer: the request as it is, nothing changed).
pub(crate) async fn mark_cancelled(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    reason: &str,
) -> Result<(ServiceRequest, bool), ApiError> {
    let mut v = Validator::new();
    v.text("/reason", reason, 500);
    v.finish()?;
    let Some((pointer, current)) = located(state, request_id).await? else {
        return Err(ApiError::NotFound("service request"));
    };
    let agency = agencies::find(state, &pointer.agency_id)
        .await?
        .ok_or(ApiError::NotFound("agency"))?;
    let by_customer = pointer.owner_user_id == caller.user_id;
    // A customer who also staffs the agency cancels their own booking as its customer.
    let staff = (caller.has(Role::Dispatcher)
        && agency.settings.dispatcher_user_ids.contains(&caller.user_id))
        || (caller.has(Role::AgencyAdmin) && agency.settings.admin_user_ids.contains(&caller.user_id));
    let by_agency = !by_customer && staff;
    if !by_customer && !by_agency {
        return Err(ApiError::NotFound("service request"));
    }
    let request = current.record;
    let cancelled_by_caller = request
        .cancellation
        .as_ref()
        .is_some_and(|c| c.by_user_id == caller.user_id);
    if request.status == Status::Cancelled && cancelled_by_caller {
        return Ok((request, true));
    }
    if !request.status.can_become(Status::Cancelled) {
        return Err(ApiError::Conflict(
            format!("a {:?} request cannot be cancelled", request.status).to_lowercase(),
        ));
    }
    let now = state.clock.now();
    if !by_agency && now >= request.starts_at {
        return Err(ApiError::Refused {
            rule: "cancel_before_start",
            detail: "a customer may cancel up to the start; once under way, ask the agency".into(),
        });
    }
    // The agency's own cancellation bills the customer nothing, nor does withdrawing a booking the
    // agency never accepted; otherwise the fee is priced at the rates booked.
    let fee = if by_agency || request.status == Status::AwaitingApproval {
        None
    } else {
        let notice_hours = request.starts_at.duration_since(now).as_secs_f64() / 3600.0;
        pricing::cancellation_fee(
            request.rates.as_ref().unwrap_or(&agency.settings.rates),
            &request.terms().cancellation_fees,
            notice_hours,
            i64::from(request.officers),
        )?
        .map(|fee| pricing::capped(fee, request.price.total_cents))
    };
    let mut cancelled = ServiceRequest {
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
    // A fee is invoiced at once; the due-date entry makes the hourly run check it was.
    let invoiced_at = cancelled
        .cancellation
        .as_ref()
        .and_then(|c| c.fee.as_ref())
        .map(|_| now);
    cancelled.due(invoiced_at);
    match state.store.replace(&cancelled, current.version).await {
        Ok(_) => {}
        Err(StoreError::ConditionFailed) => {
            return Err(ApiError::Conflict(
                "the request changed meanwhile: read it again".into(),
            ));
        }
        Err(error) => return Err(error.into()),
    }
    tracing::info!(request_id = %cancelled.request_id, by_agency, "service request cancelled");
    Ok((cancelled, false))
}

/// Cancels a request whose customer is being erased: no fee, by `system`, with `reason`. `None` when
/// it is over already (or gone). [`crate::scheduling::cancel_for_erasure`] then releases the officers.
pub(crate) async fn mark_cancelled_by_system(
    state: &AppState,
    request_id: &str,
    reason: &str,
) -> Result<Option<ServiceRequest>, ApiError> {
    for _ in 0..8 {
        let Some((_, current)) = located(state, request_id).await? else {
            return Ok(None);
        };
        if !current.record.status.can_become(Status::Cancelled) {
            return Ok(None);
        }
        let now = state.clock.now();
        let mut cancelled = ServiceRequest {
            status: Status::Cancelled,
            cancellation: Some(Cancellation {
                cancelled_at: now,
                by_user_id: "system".into(),
                reason: reason.to_owned(),
                fee: None,
            }),
            updated_at: now,
            ..current.record
        };
        cancelled.due(None);
        match state.store.replace(&cancelled, current.version).await {
            Ok(_) => return Ok(Some(cancelled)),
            Err(StoreError::ConditionFailed) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::Conflict(
        "the request is busy: the erasure tries again".into(),
    ))
}

/// The customer's view of `request` with its payment summary (after a change such as cancellation).
pub(crate) async fn shown(
    state: &AppState,
    caller: &Caller,
    request: &ServiceRequest,
) -> Result<RequestView, ApiError> {
    let summary = payment_summary(state, caller, &request.payment_id).await?;
    Ok(view(request, summary))
}
