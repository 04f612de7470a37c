//! An officer's roster: availability, the shifts they hold and the shifts they worked. It is the one
//! item every placement of that officer replaces (version-conditioned, in the same transaction as
//! the assignment), so two placements of one officer can never both commit: the loser re-reads the
//! roster, sees the new shift, and the overlap, rest and weekly-cap rules are checked again.
//!
//! The agency's pool index lists officers by the weekdays and dates they are available, so finding
//! candidates for a shift is a Query over that day's entries, never a Scan of the agency.

use crate::scheduling::availability::Availability;
use jiff::{SignedDuration, Timestamp};
use platform::keys::{agency_partition, user_partition};
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record};
use serde::{Deserialize, Serialize};

/// How long worked shifts are remembered on the roster (the longest fairness window).
pub use crate::agencies::WORKED_MEMORY_DAYS;

/// A shift the officer holds (assigned or accepted, not yet worked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commitment {
    pub assignment_id: String,
    pub request_id: String,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
}

/// A shift the officer worked: from check-in to check-out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkedShift {
    pub assignment_id: String,
    pub started_at: Timestamp,
    pub ended_at: Timestamp,
}

impl WorkedShift {
    /// Minutes worked.
    pub fn minutes(&self) -> i64 {
        self.ended_at.duration_since(self.started_at).as_mins().max(0)
    }
}

/// One officer's roster, across every agency they work for (so no two agencies can double-book them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    pub user_id: String,
    /// The agencies whose pools list the officer now: those whose membership is approved and current.
    #[serde(default)]
    pub agency_ids: Vec<String>,
    /// Random, per officer: the sort key of their pool entries, which must not reveal who they are.
    pub pool_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<Availability>,
    /// Pool keys (weekday names, dates) the officer is listed under now, in each of `agency_ids`.
    #[serde(default)]
    pub pool_keys: Vec<String>,
    #[serde(default)]
    pub commitments: Vec<Commitment>,
    #[serde(default)]
    pub worked_shifts: Vec<WorkedShift>,
    /// End of the last shift worked: the rotation ranking key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_detail_at: Option<Timestamp>,
    /// When the officer first offered availability: the first-come ranking key.
    pub joined_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Roster {
    /// A new, empty roster of `user_id`, listed in no pool yet.
    pub fn new(user_id: &str, now: Timestamp) -> Self {
        Self {
            user_id: user_id.to_owned(),
            agency_ids: Vec::new(),
            pool_token: uuid::Uuid::new_v4().simple().to_string(),
            availability: None,
            pool_keys: Vec::new(),
            commitments: Vec::new(),
            worked_shifts: Vec::new(),
            last_detail_at: None,
            joined_at: now,
            updated_at: now,
        }
    }

    /// The key of `user_id`'s roster.
    pub fn key_of(user_id: &str) -> ItemKey {
        ItemKey::new(user_partition(user_id), "ROSTER".to_owned())
    }

    /// Minutes worked that ended within `days` before `now`.
    pub fn minutes_worked_since(&self, now: Timestamp, days: i64) -> i64 {
        let since = now - SignedDuration::from_hours(24 * days);
        self.worked_shifts
            .iter()
            .filter(|w| w.ended_at > since)
            .map(WorkedShift::minutes)
            .sum()
    }

    /// Forgets commitments that ended more than a week ago: a shift never checked out (a no-show)
    /// must not block the officer or grow the roster forever.
    pub fn forget_stale_commitments(&mut self, now: Timestamp) {
        let horizon = now - SignedDuration::from_hours(24 * 8);
        self.commitments.retain(|c| c.ends_at > horizon);
    }

    /// Forgets worked shifts older than [`WORKED_MEMORY_DAYS`] (data minimisation).
    pub fn forget_old_shifts(&mut self, now: Timestamp) {
        let horizon = now - SignedDuration::from_hours(24 * WORKED_MEMORY_DAYS);
        self.worked_shifts.retain(|w| w.ended_at > horizon);
    }
}

impl Record for Roster {
    const TYPE: &'static ItemType = &schema::ROSTER;

    fn key(&self) -> ItemKey {
        Self::key_of(&self.user_id)
    }
}

/// An entry of an agency's pool index: "someone is available on this weekday/date". The officer it
/// points to is encrypted (under the system key), the sort key is the officer's random pool token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolEntry {
    pub agency_id: String,
    /// A weekday name (`monday`) or a date (`2027-03-16`).
    pub pool_key: String,
    /// The officer's pool token (the roster keeps it encrypted; here it is the sort key).
    pub entry_token: String,
    pub officer_ref: String,
}

impl PoolEntry {
    /// The partition of `agency_id`'s pool for `pool_key`.
    pub fn partition(agency_id: &str, pool_key: &str) -> String {
        format!("{}#POOL#{pool_key}", agency_partition(agency_id))
    }

    /// The key of one entry.
    pub fn key_of(agency_id: &str, pool_key: &str, pool_token: &str) -> ItemKey {
        ItemKey::new(Self::partition(agency_id, pool_key), pool_token.to_owned())
    }
}

impl Record for PoolEntry {
    const TYPE: &'static ItemType = &schema::POOL_ENTRY;

    fn key(&self) -> ItemKey {
        Self::key_of(&self.agency_id, &self.pool_key, &self.entry_token)
    }
}

/// An officer the agency will not place again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoNotHire {
    pub agency_id: String,
    pub provider_user_id: String,
    pub added_by: String,
    pub added_at: Timestamp,
    /// Why, for the agency's own records (may describe the person: encrypted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Points from the officer to an agency's do-not-hire entry about them (no note, no reason), so the
/// officer's erasure finds every such entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoNotHirePointer {
    pub agency_id: String,
    pub provider_user_id: String,
}

impl DoNotHirePointer {
    /// The pointer of `agency_id`'s entry about `provider_user_id`.
    pub fn key_of(provider_user_id: &str, agency_id: &str) -> ItemKey {
        ItemKey::new(
            user_partition(provider_user_id),
            format!("{DO_NOT_HIRE_PREFIX}{agency_id}"),
        )
    }
}

impl Record for DoNotHirePointer {
    const TYPE: &'static ItemType = &schema::DO_NOT_HIRE_POINTER;

    fn key(&self) -> ItemKey {
        Self::key_of(&self.provider_user_id, &self.agency_id)
    }
}

/// Sort-key prefix of an agency's do-not-hire entries.
pub const DO_NOT_HIRE_PREFIX: &str = platform::keys::DO_NOT_HIRE_SORT_PREFIX;

impl DoNotHire {
    /// The key of `provider_user_id` on `agency_id`'s list.
    pub fn key_of(agency_id: &str, provider_user_id: &str) -> ItemKey {
        ItemKey::new(
            agency_partition(agency_id),
            format!("{DO_NOT_HIRE_PREFIX}{provider_user_id}"),
        )
    }
}

impl Record for DoNotHire {
    const TYPE: &'static ItemType = &schema::DO_NOT_HIRE;

    fn key(&self) -> ItemKey {
        Self::key_of(&self.agency_id, &self.provider_user_id)
    }
}
