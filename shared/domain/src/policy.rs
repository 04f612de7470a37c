//! The privacy policies users accept (privacy requests: [`crate::privacy::requests`]). There are two:
//! the Applications Privacy Policy governs Users (customers), the Security Provider privacy policy
//! governs providers, and a person who is both is under each for that role; each has its own versions,
//! acceptance and announcements. A version carries its text, in sections, so that clients render it
//! instead of hard-coding it; the California notice (the Department of Consumer Affairs' complaint
//! unit and our support address) is always part of it. Publishing a significant version announces it
//! to every active member of its audience by e-mail, a page of the user pool at a time from the hourly
//! run, resuming where the last run stopped.

use edge::auth::{Caller, Role};
use edge::error::ApiError;
use edge::validation::Validator;
use platform::AppState;
use platform::directory::UserStatus;
use platform::keys::{POLICY_CURRENT, POLICY_PARTITION};
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record, Store, StoreError};
use serde::{Deserialize, Serialize};

/// Whom a policy governs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// The Applications Privacy Policy: customers (Users).
    #[default]
    Users,
    /// The Security Provider privacy policy: officers, guards and their agencies.
    Providers,
}

impl Audience {
    /// Both policies.
    pub const ALL: [Audience; 2] = [Audience::Users, Audience::Providers];

    /// The Cognito group its announcements go to.
    fn group(self) -> &'static str {
        match self {
            Audience::Users => "customer",
            Audience::Providers => "provider",
        }
    }
}

/// One section of a policy's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub heading: String,
    pub text: String,
}

/// A published version of one of the two privacy policies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    #[serde(default)]
    pub audience: Audience,
    pub policy_version: String,
    pub effective_date: String,
    pub significant: bool,
    pub summary: String,
    /// The text as published (the California notice is added when it is served).
    #[serde(default)]
    pub sections: Vec<Section>,
}

impl Record for PolicyVersion {
    const TYPE: &'static ItemType = &schema::POLICY_VERSION;

    fn key(&self) -> ItemKey {
        current_key_of(self.audience)
    }
}

/// The Applications Privacy Policy's version in force (Users), if one has been published.
pub async fn current_policy(store: &Store) -> Result<Option<PolicyVersion>, StoreError> {
    current_policy_of(store, Audience::Users).await
}

/// The version in force of `audience`'s policy, if one has been published.
pub async fn current_policy_of(
    store: &Store,
    audience: Audience,
) -> Result<Option<PolicyVersion>, StoreError> {
    let current = store.get::<PolicyVersion>(&current_key_of(audience)).await?;
    Ok(current.map(|versioned| versioned.record))
}

/// The key of the Users' version in force (read with other items by `GET /v1/me`).
pub fn current_key() -> ItemKey {
    current_key_of(Audience::Users)
}

/// The key of `audience`'s version in force.
pub fn current_key_of(audience: Audience) -> ItemKey {
    match audience {
        Audience::Users => ItemKey::new(POLICY_PARTITION.to_owned(), POLICY_CURRENT.to_owned()),
        Audience::Providers => {
            ItemKey::new(POLICY_PARTITION.to_owned(), format!("{POLICY_CURRENT}#PROVIDERS"))
        }
    }
}

/// The heading of the California notice every served policy ends with.
pub const CALIFORNIA_HEADING: &str = "California residents";

/// The California notice (Cal. Civ. Code §1789.3): where to complain, and our support address.
pub fn california_notice(support_address: &str) -> Section {
    Section {
        heading: CALIFORNIA_HEADING.to_owned(),
        text: format!(
            "Under California Civil Code Section 1789.3, California residents are entitled to the following \
             consumer rights notice: you may contact the Complaint Assistance Unit of the Division of Consumer \
             Services of the California Department of Consumer Affairs in writing at 1625 North Market Blvd., \
             Suite N 112, Sacramento, CA 95834, or by telephone at (916) 445-1254 or (800) 952-5210. You may \
             contact us about this policy or your data at {support_address}."
        ),
    }
}

/// A policy version as clients render it: as published, with the California notice last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServedPolicy {
    #[serde(flatten)]
    pub version: PolicyVersion,
}

/// `GET /v1/privacy/policy?audience=`: the version in force of that policy, its text ending with the
/// California notice (our support address in it); `None` before one is published.
pub async fn served(state: &AppState, audience: Audience) -> Result<Option<ServedPolicy>, ApiError> {
    let Some(mut version) = current_policy_of(&state.store, audience).await? else {
        return Ok(None);
    };
    version
        .sections
        .retain(|section| section.heading != CALIFORNIA_HEADING);
    version
        .sections
        .push(california_notice(&state.config.support_address));
    Ok(Some(ServedPolicy { version }))
}

/// Most sections a version's text may have (with [`MAX_SECTION_TEXT`], the text fits the route's
/// 1 MiB body cap even written entirely as JSON escapes).
pub const MAX_SECTIONS: usize = 20;

/// Most characters of one section's text.
pub const MAX_SECTION_TEXT: usize = 3_000;

/// The body of `POST /v1/admin/policy-versions`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    /// Which policy (the Users' when left out).
    #[serde(default)]
    pub audience: Audience,
    pub policy_version: String,
    pub effective_date: jiff::civil::Date,
    pub significant: bool,
    pub summary: String,
    #[serde(default)]
    pub sections: Vec<Section>,
}

/// The announcement of a significant version: where in the user pool it has got to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyAnnouncement {
    #[serde(default)]
    pub audience: Audience,
    pub policy_version: String,
    /// The user pool's pagination token of the next page; `None` before the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page: Option<String>,
    pub notified: u64,
    pub done: bool,
    pub started_at: jiff::Timestamp,
}

impl PolicyAnnouncement {
    fn key_of(audience: Audience, version: &str) -> ItemKey {
        match audience {
            Audience::Users => ItemKey::new(POLICY_PARTITION.to_owned(), format!("ANNOUNCE#{version}")),
            Audience::Providers => ItemKey::new(
                POLICY_PARTITION.to_owned(),
                format!("ANNOUNCE#PROVIDERS#{version}"),
            ),
        }
    }
}

impl Record for PolicyAnnouncement {
    const TYPE: &'static ItemType = &schema::POLICY_ANNOUNCEMENT;

    fn key(&self) -> ItemKey {
        Self::key_of(self.audience, &self.policy_version)
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
    if input.policy_version.contains('#') {
        v.reject("/policy_version", "must not contain #");
    }
    v.text("/summary", &input.summary, 2000);
    if input.sections.len() > MAX_SECTIONS {
        v.reject("/sections", format!("at most {MAX_SECTIONS} sections"));
    }
    for (index, section) in input.sections.iter().enumerate() {
        v.text(&format!("/sections/{index}/heading"), &section.heading, 200);
        v.text(
            &format!("/sections/{index}/text"),
            &section.text,
            MAX_SECTION_TEXT,
        );
    }
    v.finish()?;
    let version = PolicyVersion {
        audience: input.audience,
        policy_version: input.policy_version.trim().to_owned(),
        effective_date: input.effective_date.to_string(),
        significant: input.significant,
        summary: input.summary.trim().to_owned(),
        sections: input.sections,
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
            audience: version.audience,
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
    tracing::info!(version = %version.policy_version, audience = ?version.audience, significant = version.significant, "policy version published");
    Ok((version, true))
}

/// Announces the current version of each policy, if significant and not yet announced to all its
/// audience: mails each confirmed, enabled member of the audience's group, up to `max_users` this run
/// in all, and records where it stopped. Returns how many were mailed. A run that dies mid-page mails
/// that page again next time (at least once, never skipped).
pub async fn announce(state: &AppState, max_users: usize) -> Result<usize, ApiError> {
    let mut mailed = 0;
    for audience in Audience::ALL {
        mailed += announce_one(state, audience, max_users.saturating_sub(mailed)).await?;
    }
    Ok(mailed)
}

async fn announce_one(state: &AppState, audience: Audience, max_users: usize) -> Result<usize, ApiError> {
    let Some(policy) = current_policy_of(&state.store, audience).await? else {
        return Ok(0);
    };
    let Some(mut job) = state
        .store
        .get::<PolicyAnnouncement>(&PolicyAnnouncement::key_of(audience, &policy.policy_version))
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
            .list_group(audience.group(), job.record.next_page.clone())
            .await
            .map_err(|error| ApiError::Internal(error.to_string()))?;
        for user in &page.users {
            let active = user.enabled && user.status == UserStatus::Confirmed;
            if let (true, Some(address)) = (active, user.email.as_deref()) {
                if let Err(error) = crate::mail::send_service(state, address, &message).await {
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
