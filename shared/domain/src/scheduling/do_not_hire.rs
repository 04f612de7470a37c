//! The agency's do-not-hire list: officers on it are excluded from its requests.

use super::*;

// -------------------------------------------------------------------------------------- do-not-hire

/// The body of `PUT /v1/agencies/{id}/do-not-hire/{provider_id}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoNotHireInput {
    #[serde(default)]
    pub note: Option<String>,
}

/// The agency's do-not-hire entry as its admins see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DoNotHireView {
    pub agency_id: String,
    pub provider_user_id: String,
    pub added_by: String,
    pub added_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `PUT /v1/agencies/{id}/do-not-hire/{provider_id}` (an admin of the agency, or ops), about an
/// officer who applied to the agency (404 otherwise): the officer is never matched or placed by this agency again, and their future shifts with it are released (a
/// placement racing the entry either committed before it and is released here, or fails).
pub async fn put_do_not_hire(
    state: &AppState,
    caller: &Caller,
    agency_id: &str,
    provider_id: &str,
    input: DoNotHireInput,
) -> Result<DoNotHireView, ApiError> {
    agencies::read(state, caller, agency_id).await?;
    let mut v = Validator::new();
    v.text("?provider_id", provider_id, 64);
    if let Some(note) = &input.note {
        v.text("/note", note, 500);
    }
    v.finish()?;
    // Only a real provider who applied to this agency (and so may have worked for it) can be
    // listed: the entry is data about them, which an agency they never dealt with has no business
    // keeping; and their erasure must find it. Anyone else: 404, nothing learned.
    let applied = state
        .store
        .get::<Membership>(&Membership::key_of(provider_id, agency_id))
        .await?
        .is_some();
    if !applied || accounts::provider(&state.store, provider_id).await?.is_none() {
        return Err(ApiError::NotFound("provider"));
    }
    let entry = DoNotHire {
        agency_id: agency_id.to_owned(),
        provider_user_id: provider_id.to_owned(),
        added_by: caller.user_id.clone(),
        added_at: state.clock.now(),
        note: input.note.map(|n| n.trim().to_owned()),
    };
    let pointer = DoNotHirePointer {
        agency_id: agency_id.to_owned(),
        provider_user_id: provider_id.to_owned(),
    };
    match state.store.get::<DoNotHire>(&entry_key(&entry)).await? {
        Some(current) => state.store.replace(&entry, current.version).await.map(|_| ()),
        // The entry and the officer's pointer to it, together.
        None => {
            let writes = vec![
                state.store.write_create(&entry)?,
                state.store.write_create(&pointer)?,
            ];
            state.store.transact(writes).await.map_err(|error| match error {
                StoreError::TransactionCancelled(_) => StoreError::ConditionFailed,
                other => other,
            })
        }
    }
    .map_err(|error| match error {
        StoreError::ConditionFailed => ApiError::Conflict("the list changed meanwhile: try again".into()),
        other => other.into(),
    })?;
    tracing::info!(agency_id = %agency_id, provider_user_id = %provider_id, "do-not-hire entry set");
    release_future_shifts(state, provider_id, Some(agency_id)).await?;
    Ok(DoNotHireView {
        agency_id: entry.agency_id,
        provider_user_id: entry.provider_user_id,
        added_by: entry.added_by,
        added_at: entry.added_at,
        note: entry.note,
    })
}

fn entry_key(entry: &DoNotHire) -> platform::store::ItemKey {
    DoNotHire::key_of(&entry.agency_id, &entry.provider_user_id)
}

/// `DELETE /v1/agencies/{id}/do-not-hire/{provider_id}`: takes the officer off the list (idempotent).
pub async fn delete_do_not_hire(
    state: &AppState,
    caller: &Caller,
    agency_id: &str,
    provider_id: &str,
) -> Result<(), ApiError> {
    agencies::read(state, caller, agency_id).await?;
    state
        .store
        .delete(&DoNotHire::key_of(agency_id, provider_id))
        .await?;
    state
        .store
        .delete(&DoNotHirePointer::key_of(provider_id, agency_id))
        .await?;
    tracing::info!(agency_id = %agency_id, provider_user_id = %provider_id, "do-not-hire entry removed");
    Ok(())
}
