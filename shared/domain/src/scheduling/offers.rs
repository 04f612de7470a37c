//! What officers offer and see: their weekly availability (which lists them in the agency's pool)
//! and the open shifts they may claim.

use super::*;

// ------------------------------------------------------------------------------------ availability

/// `PUT /v1/providers/me/availability`: replaces the caller's availability and re-lists them in the
/// pool of every agency whose membership is approved and current, under each weekday and date they
/// are available. Pending, rejected, revoked and lapsed memberships list nowhere; nor does a
/// restricted account, which keeps its availability (its data is stored, not used).
pub async fn put_availability(
    state: &AppState,
    caller: &Caller,
    availability: Availability,
) -> Result<Availability, ApiError> {
    caller.require(Role::Provider)?;
    let account = provider_account(state, &caller.user_id)
        .await?
        .ok_or(ApiError::NotFound("provider account"))?;
    let memberships = accounts::memberships::memberships_of(&state.store, &caller.user_id).await?;
    let has_roster = state
        .store
        .get::<Roster>(&Roster::key_of(&caller.user_id))
        .await?
        .is_some();
    if memberships.is_empty() && !has_roster {
        return Err(ApiError::Conflict(
            "availability is kept for agencies: apply to an agency first".into(),
        ));
    }
    // (An officer who left their last agency keeps their availability, listed nowhere.)
    let zone = match memberships.first() {
        Some(first) => agencies::find(state, &first.record.agency_id)
            .await?
            .map_or(TimeZone::UTC, |agency| zone_of(&agency)),
        None => TimeZone::UTC,
    };
    let today = state.clock.now().to_zoned_datetime(zone).date();
    let mut availability = availability;
    // Exceptions whose day has passed are history, not an error: a client may PUT back what it read.
    // (A day before "today" also covers officers a time zone behind the agency.)
    let yesterday = today.yesterday().unwrap_or(today);
    // Every exception's windows are checked, past ones' too, before the past ones are dropped.
    availability.validate_exception_windows()?;
    availability.exceptions.retain(|e| e.date >= yesterday);
    availability.validate(yesterday)?;
    for _ in 0..MAX_ATTEMPTS {
        let now = state.clock.now();
        let listed_in: Vec<String> = if account.status == AccountStatus::Active {
            memberships
                .iter()
                .filter(|m| m.record.is_current(now))
                .map(|m| m.record.agency_id.clone())
                .collect()
        } else {
            Vec::new()
        };
        let current = state
            .store
            .get::<Roster>(&Roster::key_of(&caller.user_id))
            .await?;
        let mut roster = match &current {
            Some(v) => v.record.clone(),
            None => Roster::new(&caller.user_id, now),
        };
        let old = listings(&roster);
        roster.pool_keys = if listed_in.is_empty() {
            Vec::new()
        } else {
            availability.pool_keys()
        };
        roster.agency_ids = listed_in;
        roster.availability = Some(availability.clone());
        roster.updated_at = now;
        let new = listings(&roster);
        let mut writes = vec![match &current {
            Some(v) => state.store.write_replace(&roster, v.version)?,
            None => state.store.write_create(&roster)?,
        }];
        let entry = |agency_id: &str, key: &str| PoolEntry {
            agency_id: agency_id.to_owned(),
            pool_key: key.to_owned(),
            entry_token: roster.pool_token.clone(),
            officer_ref: caller.user_id.clone(),
        };
        let removed: Vec<&(String, String)> = old.difference(&new).collect();
        let added: Vec<&(String, String)> = new.difference(&old).collect();
        // One transaction holds at most 100 writes; the pool is a derived index, so what does not
        // fit is written right after, each write idempotent.
        let overflow = removed.len() + added.len() > MAX_POOL_WRITES_IN_TRANSACTION;
        if !overflow {
            for (agency_id, key) in &removed {
                writes.push(state.store.write_delete(&PoolEntry::key_of(
                    agency_id,
                    key,
                    &roster.pool_token,
                ))?);
            }
            for (agency_id, key) in &added {
                writes.push(state.store.write_create(&entry(agency_id, key))?);
            }
        }
        match state.store.transact(writes).await {
            Ok(()) => {}
            Err(StoreError::TransactionCancelled(_)) => continue,
            Err(error) => return Err(error.into()),
        }
        if overflow {
            for (agency_id, key) in &removed {
                state
                    .store
                    .delete(&PoolEntry::key_of(agency_id, key, &roster.pool_token))
                    .await?;
            }
            for (agency_id, key) in &new {
                match state.store.create(&entry(agency_id, key)).await {
                    Ok(()) | Err(StoreError::ConditionFailed) => {}
                    Err(error) => return Err(error.into()),
                }
            }
        }
        return Ok(availability);
    }
    Err(ApiError::Conflict("your roster is busy: try again".into()))
}

/// Pool writes that go in the roster's own transaction (DynamoDB allows 100 writes in one).
const MAX_POOL_WRITES_IN_TRANSACTION: usize = 99;

/// Every (agency, pool key) entry the roster is listed under.
fn listings(roster: &Roster) -> BTreeSet<(String, String)> {
    roster
        .agency_ids
        .iter()
        .flat_map(|agency| {
            roster
                .pool_keys
                .iter()
                .map(move |key| (agency.clone(), key.clone()))
        })
        .collect()
}

/// Lists the officer in their agencies' pools again, or unlists them, by their account's status and
/// memberships (after a restriction, a membership decision or a lapse). Nothing to do for an officer
/// without a roster.
pub async fn relist(state: &AppState, user_id: &str) -> Result<(), ApiError> {
    let roster = state.store.get::<Roster>(&Roster::key_of(user_id)).await?;
    match roster.and_then(|r| r.record.availability) {
        Some(availability) => {
            let officer = Caller::acting_for(user_id, Role::Provider);
            match put_availability(state, &officer, availability).await {
                // No agency membership (any more): there is no pool to be listed in.
                Ok(_) | Err(ApiError::Conflict(_)) | Err(ApiError::NotFound(_)) => Ok(()),
                Err(error) => Err(error),
            }
        }
        None => Ok(()),
    }
}

/// `GET /v1/providers/me/availability`: what the caller offered (empty when nothing yet).
pub async fn availability(state: &AppState, caller: &Caller) -> Result<Availability, ApiError> {
    caller.require(Role::Provider)?;
    let roster = state
        .store
        .get::<Roster>(&Roster::key_of(&caller.user_id))
        .await?;
    Ok(roster
        .and_then(|r| r.record.availability)
        .unwrap_or(Availability {
            time_zone: None,
            weekly: Vec::new(),
            exceptions: Vec::new(),
        }))
}

// ------------------------------------------------------------------------------------- open shifts

/// An open slot as an officer who may take it sees it: what, where (city), when; not the customer,
/// the site contact or the price.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenShift {
    pub request_id: String,
    pub agency_id: String,
    pub event_kind: String,
    pub city: String,
    pub region: String,
    pub starts_at: String,
    pub ends_at: String,
    pub time_zone: String,
    pub open_slots: u32,
    pub requirements: crate::service_requests::Requirements,
}

/// `GET /v1/providers/me/open-shifts`: open slots in the next `days` days, of every agency whose
/// membership is approved and current, that every rule lets the caller work. Per agency, one Query
/// over its requests by start time (the `gsi1` index); then the caller's account and roster, each
/// agency, the caller's do-not-hire entries and assignments in one `BatchGetItem`.
pub async fn open_shifts(
    state: &AppState,
    caller: &Caller,
    days: Option<u32>,
) -> Result<Vec<OpenShift>, ApiError> {
    caller.require(Role::Provider)?;
    let days = days.unwrap_or(OPEN_SHIFTS_DEFAULT_DAYS);
    if !(1..=OPEN_SHIFTS_MAX_DAYS).contains(&days) {
        return Err(ApiError::Validation(vec![edge::error::FieldError {
            pointer: "?days".into(),
            detail: format!("must be 1 to {OPEN_SHIFTS_MAX_DAYS}"),
        }]));
    }
    let now = state.clock.now();
    let until = now + SignedDuration::from_hours(24 * i64::from(days));
    let memberships: Vec<Membership> = accounts::memberships::memberships_of(&state.store, &caller.user_id)
        .await?
        .into_iter()
        .map(|m| m.record)
        .filter(|m| m.is_current(now))
        .collect();
    // One Query per agency (its open requests by start), then everything else the rules look at,
    // whose keys are now all known, in one BatchGetItem (per 100 keys).
    let mut open_requests = Vec::with_capacity(memberships.len());
    for membership in &memberships {
        open_requests.push(agency_open_requests(state, &membership.agency_id, until, now).await?);
    }
    let account_key = accounts::account_key(&caller.user_id, accounts::AccountRole::Provider);
    let roster_key = Roster::key_of(&caller.user_id);
    let mut keys = vec![account_key.clone(), roster_key.clone()];
    for (membership, requests) in memberships.iter().zip(&open_requests) {
        keys.push(Agency::key_of(&membership.agency_id));
        keys.push(DoNotHire::key_of(&membership.agency_id, &caller.user_id));
        keys.extend(
            requests
                .iter()
                .map(|r| Assignment::key_of(&caller.user_id, &r.request_id)),
        );
    }
    let mut fetched = state.store.get_many(&keys).await?;
    let account = fetched
        .take::<ProviderAccount>(&account_key)?
        .ok_or(ApiError::NotFound("provider account"))?
        .record;
    let roster = fetched.take::<Roster>(&roster_key)?.map(|r| r.record);
    let mut shifts = Vec::new();
    for (membership, requests) in memberships.iter().zip(open_requests) {
        let Some(agency) = fetched.take::<Agency>(&Agency::key_of(&membership.agency_id))? else {
            continue;
        };
        let on_list = fetched
            .take::<DoNotHire>(&DoNotHire::key_of(&membership.agency_id, &caller.user_id))?
            .is_some();
        let mut held = BTreeSet::new();
        for request in &requests {
            let key = Assignment::key_of(&caller.user_id, &request.request_id);
            if fetched.take::<Assignment>(&key)?.is_some() {
                held.insert(request.request_id.clone());
            }
        }
        let facts = OfficerAtAgency {
            account: &account,
            membership,
            roster: roster.as_ref(),
            agency: &agency.record,
            on_list,
            held: &held,
        };
        shifts.extend(agency_open_shifts(&facts, requests, now));
    }
    // Soonest first across agencies (by instant: the local times may be in different zones).
    shifts.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.request_id.cmp(&b.1.request_id)));
    Ok(shifts.into_iter().map(|(_, shift)| shift).collect())
}

/// The open requests of `agency_id` starting before `until` (one Query of its request index).
async fn agency_open_requests(
    state: &AppState,
    agency_id: &str,
    until: Timestamp,
    now: Timestamp,
) -> Result<Vec<ServiceRequest>, ApiError> {
    Ok(state
        .store
        .query_gsi1_range::<ServiceRequest>(
            &format!("{}#REQUESTS", agency_partition(agency_id)),
            // Requests under way (started at most a day ago) may have a slot to refill.
            &sortable_time(now - SignedDuration::from_hours(24)),
            &format!("{}~", sortable_time(until)),
        )
        .await?
        .into_iter()
        .map(|v| v.record)
        .filter(|r| r.is_open(now))
        .collect())
}

/// What the rules look at for one officer at one agency, as [`open_shifts`] read it.
struct OfficerAtAgency<'a> {
    account: &'a ProviderAccount,
    membership: &'a Membership,
    roster: Option<&'a Roster>,
    agency: &'a Agency,
    on_list: bool,
    /// The requests the officer already holds a place on.
    held: &'a BTreeSet<String>,
}

/// One agency's part of [`open_shifts`], with each shift's start instant.
fn agency_open_shifts(
    facts: &OfficerAtAgency<'_>,
    requests: Vec<ServiceRequest>,
    now: Timestamp,
) -> Vec<(Timestamp, OpenShift)> {
    let agency = facts.agency;
    let zone = zone_of(agency);
    requests
        .into_iter()
        .filter(|request| {
            let candidate = Candidate {
                account: facts.account,
                membership: Some(facts.membership),
                roster: facts.roster,
                on_do_not_hire_list: facts.on_list,
                already_on_request: facts.held.contains(&request.request_id),
            };
            eligibility::check(candidate, request, &agency.settings.rules, &zone, now).is_ok()
        })
        .map(|request| {
            let starts = request.starts_at;
            (
                starts,
                OpenShift {
                    open_slots: request.officers.saturating_sub(request.filled),
                    starts_at: local(request.starts_at, &request.time_zone),
                    ends_at: local(request.ends_at, &request.time_zone),
                    request_id: request.request_id,
                    agency_id: request.agency_id,
                    event_kind: request.event.kind,
                    city: request.site.address.city,
                    region: request.site.address.region,
                    time_zone: request.time_zone,
                    requirements: request.requirements,
                },
            )
        })
        .collect()
}
