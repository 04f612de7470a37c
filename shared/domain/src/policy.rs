//! The privacy-policy versions users accept (privacy requests: [`crate::privacy::requests`]).
//! Publishing a significant version announces it to every active user by e-mail, a page of the user
//! pool at a time from the hourly run, resuming where the last run stopped.

use edge::auth::{Caller, Role};
use edge::error::ApiError;
use edge::validation::Validator;
use platform::AppState;
use platform::directory::{UserFilter, UserStatus};
use platform::keys::{POLICY_CURRENT, POLICY_PARTITION};
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record, Store, StoreError};
use serde::{Deserialize, Serialize};

/// A published version of the Applications Privacy Policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub policy_version: String,
    pub effective_date: String,
    pub significant: bool,
    pub summary: String,
}

impl Record for PolicyVersion {
    const TYPE: &'static ItemType = &schema::POLICY_VERSION;

    fn key(&self) -> ItemKey {
        ItemKey::new(POLICY_PARTITION.to_owned(), POLICY_CURRENT.to_owned())
    }
}

/// The policy version in force, if one has been published.
pub async fn current_policy(store: &Store) -> Result<Option<PolicyVersion>, StoreError> {
    let current = store.get::<PolicyVersion>(&current_key()).await?;
    Ok(current.map(|versioned| versioned.record))
}

/// The key of the version in force (read with other items by `GET /v1/me`).
pub fn current_key() -> ItemKey {
    ItemKey::new(POLICY_PARTITION.to_owned(), POLICY_CURRENT.to_owned())
}

/// The body of `POST /v1/admin/policy-versions`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    pub policy_version: String,
    pub effective_date: jiff::civil::Date,
    pub significant: bool,
    pub summary: String,
}

/// The announcement of a significant version: where in the user pool it has got to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyAnnouncement {
    pub policy_version: String,
    /// The user pool's pagination token of the next page; `None` before the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page: Option<String>,
    pub notified: u64,
    pub done: bool,
    pub started_at: jiff::Timestamp,
}

impl PolicyAnnouncement {
    fn key_of(version: &str) -> ItemKey {
        ItemKey::new(POLICY_PARTITION.to_owned(), format!("ANNOUNCE#{version}"))
    }
}

impl Record for PolicyAnnouncement {
    const TYPE: &'static ItemType = &schema::POLICY_ANNOUNCEMENT;

    fn key(&self) -> ItemKey {
        Self::key_of(&self.policy_version)
    }
}

/// `POST /v1/admin/policy-versions` (privacy officers): publishes a version as the one in force. The
/// same version with the same content again is answered as before (200); with other content, 409.
/// A significant version is announced to every active user (see [`announce`]). Returns the version
/// and whether it was published now.
pub async fn publish(
    state: &AppState,
    caller: &Caller,
    input: PolicyInput,
) -> Result<(PolicyVersion, bool), ApiError> {
    caller.require(Role::PrivacyOfficer)?;
    let mut v = Validator::new();
    v.text("/policy_version", &input.policy_version, 50);
    v.text("/summary", &input.summary, 2000);
    v.finish()?;
    let version = PolicyVersion {
        policy_version: input.policy_version.trim().to_owned(),
        effective_date: input.effective_date.to_string(),
        significant: input.significant,
        summary: input.summary.trim().to_owned(),
    };
    let current = state.store.get::<PolicyVersion>(&version.key()).await?;
    if let Some(current) = &current
        && current.record.policy_version == version.policy_version
    {
        return if current.record == version {
            Ok((version, false))
        } else {
            Err(ApiError::Conflict(
                "this version is published with other content: publish a new version".into(),
            ))
        };
    }
    let written = match &current {
        Some(current) => state.store.replace(&version, current.version).await.map(|_| ()),
        None => state.store.create(&version).await,
    };
    match written {
        Ok(()) => {}
        Err(StoreError::ConditionFailed) => {
            return Err(ApiError::Conflict(
                "another version was published meanwhile".into(),
            ));
        }
        Err(error) => return Err(error.into()),
    }
    if version.significant {
        let announcement = PolicyAnnouncement {
            policy_version: version.policy_version.clone(),
            next_page: None,
            notified: 0,
            done: false,
            started_at: state.clock.now(),
        };
        match state.store.create(&announcement).await {
            Ok(()) | Err(StoreError::ConditionFailed) => {}
            Err(error) => return Err(error.into()),
        }
    }
    tracing::info!(version = %version.policy_version, significant = version.significant, "policy version published");
    Ok((version, true))
}

/// Announces the current version, if significant and not yet announced to everyone: mails each
/// confirmed, enabled user of the pool, up to `max_users` this run, and records where it stopped.
/// Returns how many were mailed. A run that dies mid-page mails that page again next time (at least
/// once, never skipped).
pub async fn announce(state: &AppState, max_users: usize) -> Result<usize, ApiError> {
    let Some(policy) = current_policy(&state.store).await? else {
        return Ok(0);
    };
    let Some(mut job) = state
        .store
        .get::<PolicyAnnouncement>(&PolicyAnnouncement::key_of(&policy.policy_version))
        .await?
    else {
        return Ok(0);
    };
    let message =
        crate::mail::policy_changed(&policy.policy_version, &policy.effective_date, &policy.summary);
    let mut mailed = 0;
    while !job.record.done && mailed < max_users {
        let page = state
            .directory
            .list_users(UserFilter::All, job.record.next_page.clone())
            .await
            .map_err(|error| ApiError::Internal(error.to_string()))?;
        for user in &page.users {
            let active = user.enabled && user.status == UserStatus::Confirmed;
            if let (true, Some(address)) = (active, user.email.as_deref()) {
                if let Err(error) = state.mailer.send(address, &message).await {
                    tracing::warn!(error = %error, "policy announcement not sent");
                }
                mailed += 1;
            }
        }
        let mut next = job.record.clone();
        next.notified += mailed as u64;
        next.next_page = page.next;
        next.done = next.next_page.is_none();
        match state.store.replace(&next, job.version).await {
            Ok(version) => {
                job = platform::store::Versioned {
                    record: next,
                    version,
                };
            }
            // Another run advanced it: stop; the next run continues from there.
            Err(StoreError::ConditionFailed) => break,
            Err(error) => return Err(error.into()),
        }
    }
    Ok(mailed)
}
