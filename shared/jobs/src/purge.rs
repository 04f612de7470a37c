//! The retention purge: finds the work DynamoDB TTL cannot do alone through the due-date index
//! (cascades, branch-key shredding, unconfirmed sign-ups, overdue alerts) and does it, resumably.
//!
//! How long each record is kept is decided by its class (`platform::retention`); this job only acts
//! on what is due.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use platform::directory::{UserFilter, UserStatus};
use platform::keys::due_day_partition;
use platform::retention::RetentionClass;
use platform::store::{ItemKey, Store, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;

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
    /// Privacy jobs (erasures, exports) whose request stopped moving, queued again this run.
    pub privacy_jobs_requeued: usize,
    /// Written privacy requests their subject did not confirm in time, lapsed this run.
    pub written_requests_lapsed: usize,
    /// Users mailed this run about a significant policy change.
    pub policy_announcements_sent: usize,
    /// People a marketing campaign went to this run (each with their consent at that moment).
    pub campaign_recipients: usize,
    /// What the review of memberships and requests due by time did this run.
    pub due_work: DueReview,
}

/// The keys due by `until` in each month bucket of the due-date index, each bucket listed at most once
/// per run: the purge and the review of due work walk the same buckets. Only the months the review
/// looks at are kept (a purge catching up over years lists many more, once each).
#[derive(Debug)]
pub struct DueListing {
    until: i64,
    /// The first month the review of due work looks at ([`REVIEW_MONTHS`] back).
    keep_from: Date,
    months: BTreeMap<Date, Vec<ItemKey>>,
}

impl DueListing {
    /// An empty listing of what is due at or before `now`.
    pub fn due_by(now: Timestamp) -> Self {
        let this_month = now.to_zoned_datetime(TimeZone::UTC).date().first_of_month();
        Self {
            until: now.as_second(),
            keep_from: this_month
                .checked_sub(i64::from(REVIEW_MONTHS - 1).months())
                .unwrap_or(this_month),
            months: BTreeMap::new(),
        }
    }

    /// The keys due in the bucket of `month` (one Query the first time it is asked for).
    pub async fn keys(&mut self, store: &Store, month: Date) -> Result<Vec<ItemKey>, StoreError> {
        let month = month.first_of_month();
        if let Some(keys) = self.months.get(&month) {
            return Ok(keys.clone());
        }
        let keys = store.due_keys(&due_day_partition(month), self.until).await?;
        if month >= self.keep_from {
            self.months.insert(month, keys.clone());
        }
        Ok(keys)
    }
}

/// A report with nothing done yet, for the UTC day of `now`.
fn empty_report(now: Timestamp) -> PurgeReport {
    PurgeReport {
        day: now.to_zoned_datetime(TimeZone::UTC).date().to_string(),
        due_items: 0,
        buckets_examined: 0,
        keys_shredded: 0,
        budget_spent: false,
        unverified_registrations_closed: 0,
        overdue_privacy_requests: 0,
        privacy_jobs_requeued: 0,
        written_requests_lapsed: 0,
        policy_announcements_sent: 0,
        campaign_recipients: 0,
        due_work: DueReview::default(),
    }
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
/// announcements, marketing campaigns (with consent only), the lapse of written privacy requests
/// nobody confirmed, the alert of privacy requests past their deadline, queueing again the privacy
/// jobs that stopped moving, and last [`review_due`].
pub async fn scheduled_run(
    state: &platform::AppState,
    max_items: usize,
) -> Result<PurgeReport, domain::privacy::erasure::ErasureError> {
    let mut listing = DueListing::due_by(state.clock.now());
    let mut report = purge_listed(state, max_items, &mut listing).await?;
    report.unverified_registrations_closed = close_unverified_registrations(state, max_items).await?;
    report.policy_announcements_sent = domain::policy::announce(state, max_items)
        .await
        .map_err(|error| domain::privacy::erasure::ErasureError::Alert(error.to_string()))?;
    // A failing campaign (the user pool unreachable, say) is logged and tried again next hour; it
    // never holds up the privacy work below.
    report.campaign_recipients = match domain::campaigns::send_due(state, max_items).await {
        Ok(sent) => sent.sent,
        Err(error) => {
            tracing::warn!(error = %error, "campaigns not sent this run");
            0
        }
    };
    // The open privacy requests, read once for the three reviews. Unconfirmed written requests lapse
    // first, so a lapsed one is not then alerted as overdue (its version moved: the alert skips it).
    let alert =
        |error: &dyn std::fmt::Display| domain::privacy::erasure::ErasureError::Alert(error.to_string());
    let open = domain::privacy::requests::open_requests(state, max_items)
        .await
        .map_err(|e| alert(&e))?;
    // Each runs whatever the one before it met: a failing lapse never holds up the alerts.
    let lapsed = domain::privacy::requests::lapse_unconfirmed(state, &open, max_items).await;
    let alerted = domain::privacy::requests::alert_overdue(state, &open, max_items).await;
    // A privacy job whose message was lost or dead-lettered is queued again: a request never strands.
    let requeued = domain::privacy::jobs::requeue_stalled(state, &open, max_items).await;
    report.written_requests_lapsed = lapsed.map_err(|e| alert(&e))?;
    report.overdue_privacy_requests = alerted.map_err(|e| alert(&e))?;
    report.privacy_jobs_requeued = requeued.map_err(|e| alert(&e))?;
    // Last, so a stuck item there never holds up the work above.
    report.due_work = review_listed(state, max_items, &mut listing).await?;
    Ok(report)
}

/// How many months back the review of due work looks on the due-date index: a membership or a
/// request moves to its next date as soon as a step is done, so only a review stalled for longer
/// than this would leave one behind.
pub const REVIEW_MONTHS: i32 = 13;

/// What one review of due work did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct DueReview {
    /// Agency memberships whose admins were told the approval lapses in 30 days.
    pub membership_lapse_notices: usize,
    /// Agency memberships that lapsed (unlisted, future shifts released, officer mailed).
    pub memberships_lapsed: usize,
    /// Requests that reached their start and became `in_progress`.
    pub requests_started: usize,
    /// Officers marked no-show (slots reopened, dispatch mailed).
    pub no_shows: usize,
    /// Requests completed by the run (end plus grace passed; open shifts closed and flagged).
    pub requests_completed: usize,
    /// Bookings nobody approved before their start, expired as rejected.
    pub unapproved_expired: usize,
    /// Support inquiries closed after a quiet period (their retention period starts).
    pub inquiries_closed: usize,
    /// Items whose step failed this run (logged; the next run tries again).
    pub failed: usize,
}

/// The hourly review of the due-date index for what time alone moves forward: agency memberships
/// (the admins are mailed 30 days before an approval lapses, then a lapsed member is unlisted and
/// their future shifts released) and service requests (start, no-shows, completion). At most `max`
/// items a run; each step is a conditional write, so runs may overlap or be killed at any point.
pub async fn review_due(
    state: &platform::AppState,
    max: usize,
) -> Result<DueReview, domain::privacy::erasure::ErasureError> {
    review_listed(state, max, &mut DueListing::due_by(state.clock.now())).await
}

/// [`review_due`] over the buckets of `listing` (those the purge already listed are not Queried again).
async fn review_listed(
    state: &platform::AppState,
    max: usize,
    listing: &mut DueListing,
) -> Result<DueReview, domain::privacy::erasure::ErasureError> {
    use domain::scheduling::MembershipReview;
    let now = state.clock.now();
    let this_month = now.to_zoned_datetime(TimeZone::UTC).date().first_of_month();
    let mut review = DueReview::default();
    let mut reviewed = 0;
    for back in (0..REVIEW_MONTHS).rev() {
        let Ok(month) = this_month.checked_sub(i64::from(back).months()) else {
            continue;
        };
        let due = listing.keys(&state.store, month).await?;
        for key in &due {
            let membership = key
                .sk
                .starts_with(domain::accounts::memberships::MEMBERSHIP_PREFIX);
            let request = key.pk.starts_with("USER#") && key.sk.starts_with("REQUEST#");
            let inquiry = key.sk.starts_with(domain::support::INQUIRY_PREFIX);
            if !membership && !request && !inquiry {
                continue;
            }
            if reviewed == max {
                return Ok(review);
            }
            reviewed += 1;
            // One item that fails is logged and left for the next run; the others go on.
            if inquiry {
                match domain::support::close_if_quiet(state, key).await {
                    Ok(closed) => review.inquiries_closed += usize::from(closed),
                    Err(error) => {
                        review.failed += 1;
                        tracing::warn!(error = %error, "inquiry review failed");
                    }
                }
            } else if membership {
                match domain::scheduling::review_membership(state, key).await {
                    Ok(MembershipReview::NoticeSent) => review.membership_lapse_notices += 1,
                    Ok(MembershipReview::Lapsed) => review.memberships_lapsed += 1,
                    Ok(MembershipReview::Nothing) => {}
                    Err(error) => {
                        review.failed += 1;
                        tracing::warn!(error = %error, "membership review failed");
                    }
                }
            } else {
                match domain::scheduling::review_request(state, key).await {
                    Ok(done) => {
                        review.requests_started += usize::from(done.started);
                        review.no_shows += done.no_shows;
                        review.requests_completed += usize::from(done.completed);
                        review.unapproved_expired += usize::from(done.expired);
                    }
                    Err(error) => {
                        review.failed += 1;
                        tracing::warn!(error = %error, "request review failed");
                    }
                }
            }
        }
    }
    Ok(review)
}

/// The scheduled purge: walks the due-date index from the checkpoint to now (a Query per month,
/// never a Scan) and does what TTL cannot for each due item, at most `max_items` of them per run.
/// Safe to run twice or to kill at any point: each piece of work is idempotent and the checkpoint only
/// moves past days whose work is done.
pub async fn purge(
    state: &platform::AppState,
    max_items: usize,
) -> Result<PurgeReport, domain::privacy::erasure::ErasureError> {
    purge_listed(state, max_items, &mut DueListing::due_by(state.clock.now())).await
}

/// [`purge`] over the buckets of `listing`, which the review of due work then reuses.
async fn purge_listed(
    state: &platform::AppState,
    max_items: usize,
    listing: &mut DueListing,
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
    let mut report = empty_report(now);
    let mut budget = max_items;
    day = day.first_of_month();
    let this_month = today.first_of_month();
    while report.buckets_examined < MAX_BUCKETS_PER_RUN {
        report.buckets_examined += 1;
        let due = listing.keys(&state.store, day).await?;
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
    // The work due this month up to now (listed above, unless the run stopped before this month).
    report.due_items = listing.keys(&state.store, this_month).await?.len();
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
