//! Assignments: a Security Provider placed on a service request. The item lives in the officer's
//! partition (it is about the officer); `gsi1` lists a request's assignments.

use jiff::Timestamp;
use platform::keys::user_partition;
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record, Store, StoreError};
use serde::{Deserialize, Serialize};

/// Where an assignment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentStatus {
    /// Placed, waiting for the officer to confirm.
    Assigned,
    Accepted,
    Declined,
    /// Called off by the officer.
    Released,
    CheckedIn,
    Completed,
    /// The request was cancelled.
    Cancelled,
    /// Not checked in within the agency's `no_show_after_minutes` of the start: the slot reopened.
    NoShow,
}

impl AssignmentStatus {
    /// Whether the officer still holds the slot (and may see the request).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Self::Assigned | Self::Accepted | Self::CheckedIn | Self::Completed
        )
    }
}

/// Where a timesheet stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimesheetStatus {
    /// The officer submitted the hours checked in and out.
    Submitted,
    /// An admin or dispatcher of the agency approved them (perhaps adjusted, with a reason).
    Approved,
}

/// The hours an officer worked on one assignment, as submitted and as approved. What the agency
/// bills and pays, and what the fairness ranking and the weekly cap count once approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timesheet {
    pub status: TimesheetStatus,
    pub submitted_at: Timestamp,
    /// The check-in and check-out the officer submitted.
    pub submitted_from: Timestamp,
    pub submitted_until: Timestamp,
    /// The hours approved (the submitted ones unless adjusted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_from: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<Timestamp>,
    /// Why the approver changed the times (required when they did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjustment_reason: Option<String>,
    /// How the submitted hours differ from the shift as booked (started early or late, ended early
    /// or late, closed by the scheduled run): an approver must confirm such hours, never pass them
    /// "as submitted" unseen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<String>,
}

/// How far the submitted hours may stray from the shift as booked before the approver must look.
pub const TIMESHEET_TOLERANCE: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

impl Timesheet {
    /// What an approver must look at in hours `from`..`until` submitted for a shift booked for
    /// `starts_at`..`ends_at` (`closed_by_run`: the officer never checked out).
    pub fn differences_of(
        from: Timestamp,
        until: Timestamp,
        starts_at: Timestamp,
        ends_at: Timestamp,
        closed_by_run: bool,
    ) -> Vec<String> {
        let mut found = Vec::new();
        let minutes = |d: jiff::SignedDuration| d.as_mins().abs();
        if from < starts_at - TIMESHEET_TOLERANCE {
            found.push(format!(
                "started {} min before the shift",
                minutes(starts_at.duration_since(from))
            ));
        }
        if from > starts_at + TIMESHEET_TOLERANCE {
            found.push(format!(
                "started {} min after the shift",
                minutes(from.duration_since(starts_at))
            ));
        }
        if until < ends_at - TIMESHEET_TOLERANCE {
            found.push(format!(
                "ended {} min before the shift",
                minutes(ends_at.duration_since(until))
            ));
        }
        if until > ends_at + TIMESHEET_TOLERANCE {
            found.push(format!(
                "ended {} min after the shift",
                minutes(until.duration_since(ends_at))
            ));
        }
        if closed_by_run {
            found.push("never checked out: closed by the scheduled run".to_owned());
        }
        found
    }
}

/// How an officer came to hold a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignedBy {
    /// The officer claimed an open slot.
    Claim,
    /// A dispatcher named the officer.
    Dispatcher,
    /// Auto-assign picked the officer by the agency's mode.
    AutoAssign,
}

impl AssignedBy {
    fn legacy() -> Self {
        Self::Dispatcher
    }
}

/// An officer's assignment to a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub assignment_id: String,
    pub request_id: String,
    pub officer_user_id: String,
    pub agency_id: String,
    pub status: AssignmentStatus,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub created_at: Timestamp,
    /// How the officer got the slot.
    #[serde(default = "AssignedBy::legacy")]
    pub assigned_by: AssignedBy,
    /// The officer must accept or decline before this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub respond_by: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responded_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_in_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_out_at: Option<Timestamp>,
    /// The officer never checked out: the scheduled run closed the shift at its end (flagged for
    /// the agency to confirm the hours).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closed_by_run: bool,
    /// The hours worked, once the officer submitted them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timesheet: Option<Timesheet>,
    /// `REQUEST#<request_id>#ASSIGNMENTS`.
    pub gsi1pk: String,
    /// The officer's user id.
    pub gsi1sk: String,
}

impl Assignment {
    /// A new assignment of `officer_user_id` to a request, in status `assigned`.
    pub fn new(
        request_id: &str,
        officer_user_id: &str,
        agency_id: &str,
        starts_at: Timestamp,
        ends_at: Timestamp,
        now: Timestamp,
    ) -> Self {
        Self {
            assignment_id: uuid::Uuid::new_v4().to_string(),
            request_id: request_id.to_owned(),
            officer_user_id: officer_user_id.to_owned(),
            agency_id: agency_id.to_owned(),
            status: AssignmentStatus::Assigned,
            starts_at,
            ends_at,
            created_at: now,
            assigned_by: AssignedBy::Dispatcher,
            respond_by: None,
            responded_at: None,
            checked_in_at: None,
            checked_out_at: None,
            closed_by_run: false,
            timesheet: None,
            gsi1pk: request_index(request_id),
            gsi1sk: officer_user_id.to_owned(),
        }
    }

    /// The key of `officer_user_id`'s assignment to `request_id`.
    pub fn key_of(officer_user_id: &str, request_id: &str) -> ItemKey {
        ItemKey::new(
            user_partition(officer_user_id),
            format!("ASSIGNMENT#{request_id}"),
        )
    }
}

/// The `gsi1` partition listing a request's assignments.
pub fn request_index(request_id: &str) -> String {
    format!("REQUEST#{request_id}#ASSIGNMENTS")
}

impl Record for Assignment {
    const TYPE: &'static ItemType = &schema::ASSIGNMENT;

    fn key(&self) -> ItemKey {
        Self::key_of(&self.officer_user_id, &self.request_id)
    }

    fn retention_start(&self) -> Option<Timestamp> {
        Some(self.ends_at)
    }
}

/// Finds an assignment by its id: `/v1/assignments/{id}/…` routes carry only the id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentPointer {
    pub assignment_id: String,
    pub officer_user_id: String,
    pub request_id: String,
    pub ends_at: Timestamp,
}

impl AssignmentPointer {
    /// The key of the pointer of `assignment_id`.
    pub fn key_of(assignment_id: &str) -> ItemKey {
        ItemKey::new(format!("ASSIGNMENT#{assignment_id}"), "REF".to_owned())
    }

    /// The pointer of `assignment`.
    pub fn of(assignment: &Assignment) -> Self {
        Self {
            assignment_id: assignment.assignment_id.clone(),
            officer_user_id: assignment.officer_user_id.clone(),
            request_id: assignment.request_id.clone(),
            ends_at: assignment.ends_at,
        }
    }
}

impl Record for AssignmentPointer {
    const TYPE: &'static ItemType = &schema::ASSIGNMENT_POINTER;

    fn key(&self) -> ItemKey {
        Self::key_of(&self.assignment_id)
    }

    fn retention_start(&self) -> Option<Timestamp> {
        Some(self.ends_at)
    }
}

/// An assignment as its officer (or the agency's staff) sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssignmentView {
    pub assignment_id: String,
    pub request_id: String,
    pub officer_user_id: String,
    pub agency_id: String,
    pub status: AssignmentStatus,
    pub assigned_by: AssignedBy,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub respond_by: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked_in_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked_out_at: Option<Timestamp>,
    /// The scheduled run closed the shift at its end because the officer never checked out.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub closed_by_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timesheet: Option<Timesheet>,
}

impl From<&Assignment> for AssignmentView {
    fn from(a: &Assignment) -> Self {
        Self {
            assignment_id: a.assignment_id.clone(),
            request_id: a.request_id.clone(),
            officer_user_id: a.officer_user_id.clone(),
            agency_id: a.agency_id.clone(),
            status: a.status,
            assigned_by: a.assigned_by,
            starts_at: a.starts_at,
            ends_at: a.ends_at,
            respond_by: a.respond_by,
            checked_in_at: a.checked_in_at,
            checked_out_at: a.checked_out_at,
            closed_by_run: a.closed_by_run,
            timesheet: a.timesheet.clone(),
        }
    }
}

/// Up to `limit` assignments of the provider `user_id`.
pub async fn assignments_of(
    store: &Store,
    user_id: &str,
    limit: usize,
) -> Result<Vec<AssignmentView>, StoreError> {
    Ok(store
        .query::<Assignment>(&user_partition(user_id), "ASSIGNMENT#", limit)
        .await?
        .iter()
        .map(|v| AssignmentView::from(&v.record))
        .collect())
}

/// One page of the provider `user_id`'s assignments, in the stable order of their keys, after the
/// sort key `after` (from the start when `None`); with the sort key to continue after when more may
/// follow. An officer with years of shifts pages through all of them.
pub async fn page_of(
    store: &Store,
    user_id: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<AssignmentView>, Option<String>), StoreError> {
    let (assignments, last) = store
        .query_range::<Assignment>(
            &user_partition(user_id),
            "ASSIGNMENT#",
            "ASSIGNMENT#~",
            after,
            limit,
            |_| true,
        )
        .await?;
    Ok((
        assignments
            .iter()
            .map(|v| AssignmentView::from(&v.record))
            .collect(),
        last,
    ))
}

/// Most shifts of one officer an on-request read goes through (years of weekly off-duty work).
pub const MAX_WORKED_READ: usize = 2_000;

/// The officer's assignments that were worked (completed), newest data first as stored; at most
/// [`MAX_WORKED_READ`] assignments are read.
pub async fn worked_by(store: &Store, user_id: &str) -> Result<Vec<Assignment>, StoreError> {
    Ok(store
        .query::<Assignment>(&user_partition(user_id), "ASSIGNMENT#", MAX_WORKED_READ)
        .await?
        .into_iter()
        .map(|v| v.record)
        .filter(|a| a.status == AssignmentStatus::Completed)
        .collect())
}

/// Every assignment of a request, each read again by key (consistent): the index says which exist,
/// but may lag a status change that just committed.
pub async fn of_request_fresh(
    store: &Store,
    request_id: &str,
) -> Result<Vec<platform::store::Versioned<Assignment>>, StoreError> {
    let keys: Vec<ItemKey> = of_request(store, request_id)
        .await?
        .iter()
        .map(|a| a.record.key())
        .collect();
    store.batch_get::<Assignment>(&keys).await
}

/// Every assignment of a request (through `gsi1`).
pub async fn of_request(
    store: &Store,
    request_id: &str,
) -> Result<Vec<platform::store::Versioned<Assignment>>, StoreError> {
    store.query_gsi1::<Assignment>(&request_index(request_id)).await
}
