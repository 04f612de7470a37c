//! The retention purge: finds the work DynamoDB TTL cannot do alone through the due-date index
//! (cascades, branch-key shredding, unconfirmed sign-ups, overdue alerts) and does it, resumably.
//!
//! How long each record is kept is decided by its class (`platform::retention`); this job only acts
//! on what is due.

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use platform::clock::Clock;
use platform::directory::{UserFilter, UserStatus};
use platform::keys::due_day_partition;
use platform::retention::RetentionClass;
use platform::store::{Store, StoreError};
use serde::Serialize;

/// What one purge run found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    /// The UTC day of "now".
    pub day: String,
    /// Items in this month's bucket due at or before now.
    pub due_items: usize,
    /// Month buckets of the due-date index queried this run (from the checkpoint to now).
    pub buckets_examined: usize,
    /// Erased users whose retained records expired and whose key was shredded this run.
    pub keys_shredded: usize,
    /// Whether the run stopped on its operation budget (the next run continues).
    pub budget_spent: bool,
    /// Sign-ups never confirmed within the unverified-registration period, deleted from the pool.
    pub unverified_registrations_closed: usize,
    /// Privacy requests found past their deadline this run (the privacy officers were mailed).
    pub overdue_privacy_requests: usize,
    /// Users mailed this run about a significant policy change.
    pub policy_announcements_sent: usize,
    /// Agency memberships whose admins were told this run that the approval lapses in 30 days.
    pub membership_lapse_notices: usize,
    /// Agency memberships that lapsed this run (unlisted, future shifts released, officer mailed).
    pub memberships_lapsed: usize,
}

/// Counts the work due today (UTC) up to now, by Query on the due-date index.
pub async fn due_work(store: &Store, clock: &Clock) -> Result<PurgeReport, StoreError> {
    let now = clock.now();
    let day = now.to_zoned_datetime(TimeZone::UTC).date();
    let partition = due_day_partition(day);
    let due_items = store.count_due(&partition, now.as_second()).await?;
    Ok(PurgeReport {
        day: day.to_string(),
        due_items,
        buckets_examined: 1,
        keys_shredded: 0,
        budget_spent: false,
        unverified_registrations_closed: 0,
        overdue_privacy_requests: 0,
        policy_announcements_sent: 0,
        membership_lapse_notices: 0,
        memberships_lapsed: 0,
    })
}

/// Deletes from the user pool the sign-ups never confirmed within the `unverified_registration`
/// period (they hold an e-mail and maybe a phone, and nothing else of ours: an account needs a
/// verified e-mail). At most `max` per run. Returns how many were deleted.
pub async fn close_unverified_registrations(
    state: &platform::AppState,
    max: usize,
) -> Result<usize, domain::privacy::erasure::ErasureError> {
    use domain::privacy::erasure::ErasureError;
    let Some(period) = RetentionClass::UnverifiedRegistration.period() else {
        return Ok(0);
    };
    let now = state.clock.now();
    let cutoff = now
        .to_zoned_datetime(TimeZone::UTC)
        .checked_sub(period)
        .map(|z| z.timestamp())
        .unwrap_or(now);
    let mut closed = 0;
    let mut token: Option<String> = None;
    loop {
        let page = state
            .directory
            .list_users(UserFilter::Unconfirmed, token.take())
            .await
            .map_err(|error| ErasureError::Identity(error.to_string()))?;
        for user in &page.users {
            let unconfirmed = user.status == UserStatus::Unconfirmed;
            if !unconfirmed || user.created_at.is_none_or(|at| at > cutoff) {
                continue;
            }
            if closed == max {
                return Ok(closed);
            }
            // The list is a snapshot: confirm the user is still unconfirmed right before deleting.
            let still_unconfirmed = state
                .directory
                .user(&user.username)
                .await
                .is_ok_and(|u| u.is_some_and(|u| u.status == UserStatus::Unconfirmed));
            if still_unconfirmed {
                state
                    .directory
                    .delete_user(&user.username)
                    .await
                    .map_err(|error| ErasureError::Identity(error.to_string()))?;
                closed += 1;
            }
        }
        match page.next {
            Some(next) => token = Some(next),
            None => return Ok(closed),
        }
    }
}

/// Where the purge resumes: the first day of the first UTC month whose due work may not be finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PurgeCheckpoint {
    pub next_day: jiff::civil::Date,
    pub updated_at: Timestamp,
}

impl platform::store::Record for PurgeCheckpoint {
    const TYPE: &'static platform::schema::ItemType = &platform::schema::PURGE_CHECKPOINT;

    fn key(&self) -> platform::store::ItemKey {
        platform::store::ItemKey::new("PURGE".to_owned(), "CHECKPOINT".to_owned())
    }
}

/// Most month buckets one run examines (a run after a long pause catches up over several runs).
pub const MAX_BUCKETS_PER_RUN: usize = 240;

/// Everything the hourly schedule does: [`purge`], [`close_unverified_registrations`], policy
/// announcements, [`review_memberships`], and the alert of privacy requests past their deadline.
pub async fn scheduled_run(
    state: &platform::AppState,
    max_items: usize,
) -> Result<PurgeReport, domain::privacy::erasure::ErasureError> {
    let mut report = purge(state, max_items).await?;
    report.unverified_registrations_closed = close_unverified_registrations(state, max_items).await?;
    report.policy_announcements_sent = domain::policy::announce(state, max_items)
        .await
        .map_err(|error| domain::privacy::erasure::ErasureError::Alert(error.to_string()))?;
    let (notices, lapsed) = review_memberships(state, max_items).await?;
    report.membership_lapse_notices = notices;
    report.memberships_lapsed = lapsed;
    report.overdue_privacy_requests = domain::privacy::requests::alert_overdue(state, max_items)
        .await
        .map_err(|error| domain::privacy::erasure::ErasureError::Alert(error.to_string()))?;
    Ok(report)
}

/// How many months back the membership review looks on the due-date index: an approval moves to a
/// later month as soon as its notice is sent, so only a review stalled for longer than this would
/// leave one behind.
pub const MEMBERSHIP_REVIEW_MONTHS: i32 = 13;

/// The hourly review of agency memberships on the due-date index: the admins are mailed 30 days
/// before an approval lapses, and a lapsed member is unlisted, their future shifts with the agency
/// released and they are mailed. At most `max` memberships a run; each step is idempotent (the
/// membership's own state says what is done). Returns (notices sent, memberships lapsed).
pub async fn review_memberships(
    state: &platform::AppState,
    max: usize,
) -> Result<(usize, usize), domain::privacy::erasure::ErasureError> {
    use domain::scheduling::MembershipReview;
    let now = state.clock.now();
    let this_month = now.to_zoned_datetime(TimeZone::UTC).date().first_of_month();
    let (mut notices, mut lapsed, mut reviewed) = (0, 0, 0);
    for back in (0..MEMBERSHIP_REVIEW_MONTHS).rev() {
        let Ok(month) = this_month.checked_sub(i64::from(back).months()) else {
            continue;
        };
        let due = state
            .store
            .due_keys(&due_day_partition(month), now.as_second())
            .await?;
        let memberships = due.iter().filter(|key| {
            key.sk
                .starts_with(domain::accounts::memberships::MEMBERSHIP_PREFIX)
        });
        for key in memberships {
            if reviewed == max {
                return Ok((notices, lapsed));
            }
            reviewed += 1;
            match domain::scheduling::review_membership(state, key)
                .await
                .map_err(|error| domain::privacy::erasure::ErasureError::Alert(error.to_string()))?
            {
                MembershipReview::NoticeSent => notices += 1,
                MembershipReview::Lapsed => lapsed += 1,
                MembershipReview::Nothing => {}
            }
        }
    }
    Ok((notices, lapsed))
}

/// The scheduled purge: walks the due-date index from the checkpoint to now (a Query per month,
/// never a Scan) and does what TTL cannot for each due item, at most `max_items` of them per run.
/// Safe to run twice or to kill at any point: each piece of work is idempotent and the checkpoint only
/// moves past days whose work is done.
pub async fn purge(
    state: &platform::AppState,
    max_items: usize,
) -> Result<PurgeReport, domain::privacy::erasure::ErasureError> {
    let now = state.clock.now();
    let today = now.to_zoned_datetime(TimeZone::UTC).date();
    let checkpoint = state
        .store
        .get::<PurgeCheckpoint>(&platform::store::ItemKey::new(
            "PURGE".to_owned(),
            "CHECKPOINT".to_owned(),
        ))
        .await?;
    let mut day = checkpoint
        .as_ref()
        .map_or(today, |c| c.record.next_day)
        .min(today);
    let mut first_unfinished = None;
    let mut report = due_work(&state.store, &state.clock).await?;
    report.buckets_examined = 0;
    let mut budget = max_items;
    day = day.first_of_month();
    let this_month = today.first_of_month();
    while report.buckets_examined < MAX_BUCKETS_PER_RUN {
        report.buckets_examined += 1;
        let due = state
            .store
            .due_keys(&due_day_partition(day), now.as_second())
            .await?;
        for key in &due {
            // Other kinds of due work are counted only: memberships are reviewed by
            // [`review_memberships`], the rest by their own jobs.
            let Some(user_id) = key.pk.strip_prefix("ERASURE#") else {
                continue;
            };
            if budget == 0 {
                report.budget_spent = true;
                break;
            }
            budget -= 1;
            if domain::privacy::erasure::finish_retention(state, user_id, usize::MAX).await? {
                report.keys_shredded += 1;
            }
        }
        // This month can still receive work due later; a month left by the budget is not done.
        if (report.budget_spent || day == this_month) && first_unfinished.is_none() {
            first_unfinished = Some(day);
        }
        if report.budget_spent || day >= this_month {
            break;
        }
        match day.checked_add(1.month()) {
            Ok(next) => day = next,
            Err(_) => break,
        }
    }
    let next_day = first_unfinished.unwrap_or(day);
    let moved = checkpoint.as_ref().is_none_or(|c| c.record.next_day != next_day);
    if moved {
        let record = PurgeCheckpoint {
            next_day,
            updated_at: now,
        };
        let written = match &checkpoint {
            Some(current) => state.store.replace(&record, current.version).await.map(|_| ()),
            None => state.store.create(&record).await,
        };
        match written {
            // Another run moved it: the next run starts from there; nothing is lost.
            Ok(()) | Err(StoreError::ConditionFailed) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(report)
}
