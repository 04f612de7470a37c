//! Revoked sign-ins: once a person's erasure starts, their tokens (valid up to an hour after the user
//! pool forgets them) must not write anything again.
//!
//! Erasure calls [`revoke`] when it starts and [`identity_deleted`] when it deletes the user-pool
//! user; the router asks [`is_revoked`] before every authenticated call, refuses writes with a 403 and
//! files nothing under the person. The marker is keyed by a keyed hash of the subject (KMS HMAC,
//! `platform::lookup`), holds no personal data, lives while the erasure runs and expires with the
//! `revocation` retention class after the user-pool user is gone.

use jiff::Timestamp;
use platform::AppState;
use platform::lookup::LookupError;
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record, StoreError};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The stored marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedSubject {
    pub subject_hash: String,
    pub revoked_at: Timestamp,
    /// When the user-pool user was deleted: the retention runs from then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_deleted_at: Option<Timestamp>,
}

impl Record for RevokedSubject {
    const TYPE: &'static ItemType = &schema::REVOKED_SUBJECT;

    fn key(&self) -> ItemKey {
        key_of(&self.subject_hash)
    }

    fn retention_start(&self) -> Option<Timestamp> {
        self.identity_deleted_at
    }
}

fn key_of(subject_hash: &str) -> ItemKey {
    ItemKey::new(format!("REVOKED#{subject_hash}"), "SUBJECT".to_owned())
}

/// A response extension: the call revoked its own caller (a deletion request), so the router files
/// its access-log line as anonymous.
#[derive(Debug, Clone, Copy)]
pub struct SubjectRevoked;

/// Revoking or checking failed.
#[derive(Debug, Error)]
pub enum RevocationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lookup(#[from] LookupError),
}

impl From<RevocationError> for crate::ApiError {
    fn from(error: RevocationError) -> Self {
        match error {
            RevocationError::Store(error) => error.into(),
            RevocationError::Lookup(error) => error.into(),
        }
    }
}

async fn subject_hash(state: &AppState, user_id: &str) -> Result<String, LookupError> {
    state.lookup.digest("revoked-subject", user_id.as_bytes()).await
}

/// Records that `user_id`'s sign-in may no longer write. Idempotent: an existing marker is kept.
pub async fn revoke(state: &AppState, user_id: &str) -> Result<(), RevocationError> {
    let marker = RevokedSubject {
        subject_hash: subject_hash(state, user_id).await?,
        revoked_at: state.clock.now(),
        identity_deleted_at: None,
    };
    match state.store.create(&marker).await {
        Ok(()) | Err(StoreError::ConditionFailed) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Starts the marker's retention: the user-pool user is gone, so its last tokens expire within the
/// hour. Idempotent (a later call moves the start to its own time).
pub async fn identity_deleted(state: &AppState, user_id: &str) -> Result<(), RevocationError> {
    let now = state.clock.now();
    let hash = subject_hash(state, user_id).await?;
    let current = state.store.get::<RevokedSubject>(&key_of(&hash)).await?;
    let marker = RevokedSubject {
        subject_hash: hash,
        revoked_at: current.as_ref().map_or(now, |c| c.record.revoked_at),
        identity_deleted_at: Some(now),
    };
    let written = match current {
        Some(current) => state.store.replace(&marker, current.version).await.map(|_| ()),
        None => state.store.create(&marker).await,
    };
    match written {
        // A concurrent run wrote it first: as good.
        Ok(()) | Err(StoreError::ConditionFailed) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// A transaction condition that `user_id`'s sign-in is not revoked: registration writes the account
/// and its e-mail lock only if no erasure started meanwhile, so a lock can never outlive an erasure.
pub async fn condition_not_revoked(
    state: &AppState,
    user_id: &str,
) -> Result<platform::store::Write, RevocationError> {
    let key = key_of(&subject_hash(state, user_id).await?);
    Ok(state.store.write_absent(&key)?)
}

/// The key of `user_id`'s marker, for a check made with other work in one request (the router's
/// admission, [`crate::admission`]).
pub async fn marker_key(state: &AppState, user_id: &str) -> Result<ItemKey, RevocationError> {
    Ok(key_of(&subject_hash(state, user_id).await?))
}

/// Whether `user_id`'s sign-in is revoked (an erasure runs, or ended less than the marker's
/// retention ago).
pub async fn is_revoked(state: &AppState, user_id: &str) -> Result<bool, RevocationError> {
    let key = key_of(&subject_hash(state, user_id).await?);
    Ok(state.store.get::<RevokedSubject>(&key).await?.is_some())
}
