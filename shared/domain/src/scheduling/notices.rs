//! Mail about placements and responses, and the customer's cancellation of a request (which
//! releases and tells every officer still assigned).

use super::*;

// ------------------------------------------------------------------------------------------- mail

async fn send_logged(state: &AppState, recipient: &str, message: &Mail, context: &str) {
    if let Err(error) = crate::mail::send_service(state, recipient, message).await {
        tracing::warn!(error = %error, context = %context, "scheduling mail not sent");
    }
}

async fn customer_of(
    state: &AppState,
    request: &ServiceRequest,
) -> Result<Option<CustomerAccount>, ApiError> {
    Ok(accounts::customer(&state.store, &request.customer_user_id)
        .await?
        .map(|v| v.record)
        .filter(|c| c.status == AccountStatus::Active))
}

/// The officer hears of the shift; the customer hears how staffing stands.
pub(super) async fn notify_placement(
    state: &AppState,
    request: &ServiceRequest,
    officer: &ProviderAccount,
    assignment: &Assignment,
) -> Result<(), ApiError> {
    let start = local(request.starts_at, &request.time_zone);
    let officer_first = mail::first_name(&officer.legal_name);
    let respond_by = assignment.respond_by.map(|by| local(by, &request.time_zone));
    let message = mail::shift_assigned(
        officer_first,
        &request.event.kind,
        &request.site.address.city,
        &start,
        respond_by.as_deref(),
    );
    send_logged(state, &officer.email, &message, &assignment.assignment_id).await;
    if let Some(customer) = customer_of(state, request).await? {
        let message = mail::staffing_changed(
            mail::first_name(&customer.name),
            &request.event.name,
            &start,
            officer_first,
            true,
            request.filled,
            request.officers,
        );
        send_logged(state, &customer.email, &message, &assignment.assignment_id).await;
    }
    Ok(())
}

/// E-mail addresses of the agency's dispatchers (admins when it has none), from the user pool.
pub(super) async fn dispatch_addresses(state: &AppState, agency: &Agency) -> Vec<String> {
    let staff = if agency.settings.dispatcher_user_ids.is_empty() {
        &agency.settings.admin_user_ids
    } else {
        &agency.settings.dispatcher_user_ids
    };
    let mut addresses = Vec::new();
    for user_id in staff {
        match state.directory.user(user_id).await {
            Ok(user) => addresses.extend(user.and_then(|u| u.email)),
            Err(error) => tracing::warn!(error = %error, "dispatcher address not found"),
        }
    }
    addresses
}

/// Who a response is told to and what about, as the action read them (nothing is read again).
pub(super) struct Told<'a> {
    /// The officer's account, for the name; without it nobody is told.
    pub officer: Option<&'a ProviderAccount>,
    /// The request as it stands after the action (a freed slot counted).
    pub request: &'a ServiceRequest,
    pub agency: &'a Agency,
    /// The request's active customer, told when a slot is freed.
    pub customer: Option<&'a CustomerAccount>,
}

/// Dispatch hears of acceptances, declines and releases; the customer of a freed slot hears too.
/// A mail that cannot be sent is logged: the action has committed.
pub(super) async fn notify_response(
    state: &AppState,
    assignment: &Assignment,
    action: Action,
    told: Told<'_>,
) {
    let verb = match action {
        Action::Accept => "accepted",
        Action::Decline => "declined",
        Action::Release => "released",
        Action::CheckIn | Action::CheckOut => return,
    };
    let Some(officer) = told.officer else {
        return;
    };
    let request = told.request;
    let officer_first = mail::first_name(&officer.legal_name).to_owned();
    let start = local(request.starts_at, &request.time_zone);
    let message = mail::assignment_response(&officer_first, verb, &request.request_id, &start);
    let mut recipients: BTreeMap<String, ()> = BTreeMap::new();
    for address in dispatch_addresses(state, told.agency).await {
        recipients.insert(address, ());
    }
    for address in recipients.keys() {
        send_logged(state, address, &message, &assignment.assignment_id).await;
    }
    if action != Action::Accept
        && let Some(customer) = told.customer
    {
        let message = mail::staffing_changed(
            mail::first_name(&customer.name),
            &request.event.name,
            &start,
            &officer_first,
            false,
            request.filled,
            request.officers,
        );
        send_logged(state, &customer.email, &message, &assignment.assignment_id).await;
    }
}

/// `POST /v1/service-requests/{id}/cancel`: the customer cancels the request (the agency's fee
/// schedule applies by the notice given), then every officer still assigned is released and told.
pub async fn cancel_request(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    reason: &str,
) -> Result<service_requests::RequestView, ApiError> {
    Ok(cancel_request_or_replay(state, caller, request_id, reason)
        .await?
        .0)
}

/// [`cancel_request`], and whether the answer is a replay: a cancellation retried by the caller who
/// made it answers with the request as it is (marked as a replay), not a 409; its follow-up (officers
/// released, fee invoiced, hold released) runs again, each step idempotent, so a first attempt that
/// died half-way is finished by its retry.
pub async fn cancel_request_or_replay(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    reason: &str,
) -> Result<(service_requests::RequestView, bool), ApiError> {
    let (cancelled, replayed) = service_requests::mark_cancelled(state, caller, request_id, reason).await?;
    release_officers_of_cancelled(state, &cancelled).await?;
    // A cancellation fee is invoiced and captured at once (the rest of the hold is released);
    // without a fee the whole hold is released, or what was taken refunded.
    if crate::billing::issue_when_due(state, request_id).await?.is_none() {
        release_payment(state, &cancelled).await;
    }
    Ok((
        service_requests::shown(state, caller, &cancelled).await?,
        replayed,
    ))
}

/// Cancels a request of a customer who is being erased (no fee) and releases and tells its officers,
/// so no officer keeps a commitment to a request that will no longer exist. Idempotent.
pub async fn cancel_for_erasure(state: &AppState, request_id: &str) -> Result<(), ApiError> {
    if let Some(cancelled) =
        service_requests::mark_cancelled_by_system(state, request_id, "the customer's account was deleted")
            .await?
    {
        release_officers_of_cancelled(state, &cancelled).await?;
        release_payment(state, &cancelled).await;
    }
    Ok(())
}

/// Releases the payment hold of a request that ends unbilled. A processor that cannot be reached
/// must not undo the cancellation: it is logged, and the processor lets an uncaptured hold lapse by
/// itself within 7 days.
pub(crate) async fn release_payment(state: &AppState, request: &ServiceRequest) {
    if let Err(error) = crate::payments::release(state, &request.customer_user_id, &request.request_id).await
    {
        tracing::warn!(error = %error, request_id = %request.request_id, "payment hold not released");
    }
}

/// Tells every officer still assigned to a cancelled request, and releases them: the mail names the
/// shift (site, city, local start) and nothing about the customer.
async fn release_officers_of_cancelled(state: &AppState, request: &ServiceRequest) -> Result<(), ApiError> {
    for assignment in crate::scheduling::assignments::of_request(&state.store, &request.request_id).await? {
        if !assignment.record.status.is_active() {
            continue;
        }
        let officer = assignment.record.officer_user_id.clone();
        cancel_assignment(state, &officer, &request.request_id).await?;
        let account = accounts::provider(&state.store, &officer).await?;
        let Some(account) = account.filter(|a| a.record.status == AccountStatus::Active) else {
            continue;
        };
        let message = mail::shift_cancelled(
            mail::first_name(&account.record.legal_name),
            &request.site.name,
            &request.site.address.city,
            &local(request.starts_at, &request.time_zone),
        );
        if let Err(error) = crate::mail::send_service(state, &account.record.email, &message).await {
            tracing::warn!(error = %error, request_id = %request.request_id, "cancellation mail not sent");
        }
    }
    Ok(())
}
