//! Retention: how long each kind of record is kept and why, and finding the work DynamoDB TTL cannot
//! do alone through the due-date index.
//!
//! Every item's `expires_at` (the TTL attribute) is computed here from its class and the moment its
//! period starts; nothing else writes it.

use crate::clock::Clock;
use crate::keys::due_day_partition;
use crate::store::{Store, StoreError};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, ToSpan};
use serde::Serialize;

/// A retention class: a period, the event it runs from, and its legal basis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionClass {
    /// Profiles, consents, locks: kept while the account exists; erased on deletion.
    Account,
    /// A service request: 3 years after it is completed (disputes, invoices).
    ServiceRequest,
    /// W-9 and other tax records: 7 years (IRS record-keeping for 1099 reporting).
    TaxRecord,
    /// Payment and transaction records: 7 years (tax and accounting law).
    PaymentRecord,
    /// Access-log entries (IP, time), kept to fight fraud: 90 days.
    AccessLog,
    /// Privacy-request records and their audit trail: 24 months (CCPA regulations §7101).
    PrivacyAudit,
    /// A registration that was never verified: 7 days.
    UnverifiedRegistration,
    /// What an `Idempotency-Key` produced: 24 hours, long enough for any client retry.
    Idempotency,
    /// Anonymous aggregates (counts per type and day, no ids): 2 years.
    Metrics,
    /// A data export (access, portability): 7 days to fetch it.
    Export,
}

impl RetentionClass {
    /// Every class, for documentation and tests.
    pub const ALL: [RetentionClass; 10] = [
        Self::Account,
        Self::ServiceRequest,
        Self::TaxRecord,
        Self::PaymentRecord,
        Self::AccessLog,
        Self::PrivacyAudit,
        Self::UnverifiedRegistration,
        Self::Idempotency,
        Self::Metrics,
        Self::Export,
    ];

    /// How long after its start an item of this class is kept; `None` while the account lives.
    pub fn period(self) -> Option<Span> {
        match self {
            Self::Account => None,
            Self::ServiceRequest => Some(3.years()),
            Self::TaxRecord | Self::PaymentRecord => Some(7.years()),
            Self::AccessLog => Some(90.days()),
            Self::PrivacyAudit => Some(24.months()),
            Self::UnverifiedRegistration => Some(7.days()),
            Self::Idempotency => Some(24.hours()),
            Self::Metrics => Some(2.years()),
            Self::Export => Some(7.days()),
        }
    }

    /// The event the period runs from.
    pub fn runs_from(self) -> &'static str {
        match self {
            Self::Account => "account deletion (erased then)",
            Self::ServiceRequest => "completion of the service",
            Self::TaxRecord => "certification of the form",
            Self::PaymentRecord => "the transaction",
            Self::AccessLog => "the request",
            Self::PrivacyAudit => "receipt of the request",
            Self::UnverifiedRegistration => "registration",
            Self::Idempotency => "the request",
            Self::Metrics => "the day counted",
            Self::Export => "generation of the export",
        }
    }

    /// Why we keep it that long.
    pub fn legal_basis(self) -> &'static str {
        match self {
            Self::Account => "contract: needed to provide the service the user signed up for",
            Self::ServiceRequest => "contract and legitimate interest: invoices, disputes, claims",
            Self::TaxRecord => "legal obligation: IRS record-keeping for information returns (1099)",
            Self::PaymentRecord => "legal obligation: tax and accounting record-keeping",
            Self::AccessLog => "legitimate interest: protecting users and the service from fraud",
            Self::PrivacyAudit => "legal obligation: CCPA regulations §7101 (records of requests)",
            Self::UnverifiedRegistration => "none beyond finishing the registration",
            Self::Idempotency => "contract: a retried booking must not book twice",
            Self::Metrics => "none needed: anonymous aggregates hold no personal data",
            Self::Export => "legal obligation: the right of access and portability (delivery to the subject)",
        }
    }

    /// `expires_at` (epoch seconds) of an item whose period started at `start`; `None` when the class
    /// has no fixed period or the period has not started yet.
    pub fn expires_at(self, start: Option<Timestamp>) -> Option<i64> {
        let period = self.period()?;
        let end = start?.to_zoned_datetime(TimeZone::UTC).checked_add(period).ok()?;
        Some(end.timestamp().as_second())
    }
}

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
    })
}

/// Deletes from the user pool the sign-ups never confirmed within the `unverified_registration`
/// period (they hold an e-mail and maybe a phone, and nothing else of ours: an account needs a
/// verified e-mail). At most `max` per run. Returns how many were deleted.
pub async fn close_unverified_registrations(
    state: &crate::AppState,
    max: usize,
) -> Result<usize, crate::erasure::ErasureError> {
    use crate::erasure::ErasureError;
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
            .identity
            .list_users()
            .user_pool_id(&state.config.user_pool_id)
            .filter("cognito:user_status = \"UNCONFIRMED\"")
            .set_pagination_token(token.take())
            .send()
            .await
            .map_err(|error| ErasureError::Identity(format!("ListUsers failed ({error})")))?;
        for user in page.users() {
            let unconfirmed = user.user_status()
                == Some(&aws_sdk_cognitoidentityprovider::types::UserStatusType::Unconfirmed);
            let created = user
                .user_create_date()
                .and_then(|d| Timestamp::from_second(d.secs()).ok());
            if !unconfirmed || created.is_none_or(|at| at > cutoff) {
                continue;
            }
            if closed == max {
                return Ok(closed);
            }
            // The list is a snapshot: confirm the user is still unconfirmed right before deleting.
            let Some(username) = user.username() else {
                continue;
            };
            let still_unconfirmed = state
                .identity
                .admin_get_user()
                .user_pool_id(&state.config.user_pool_id)
                .username(username)
                .send()
                .await
                .is_ok_and(|u| {
                    u.user_status()
                        == Some(&aws_sdk_cognitoidentityprovider::types::UserStatusType::Unconfirmed)
                });
            if still_unconfirmed {
                state
                    .identity
                    .admin_delete_user()
                    .user_pool_id(&state.config.user_pool_id)
                    .username(username)
                    .send()
                    .await
                    .map_err(|error| ErasureError::Identity(format!("AdminDeleteUser failed ({error})")))?;
                closed += 1;
            }
        }
        match page.pagination_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_owned()),
            _ => return Ok(closed),
        }
    }
}

/// Where the purge resumes: the first day of the first UTC month whose due work may not be finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PurgeCheckpoint {
    pub next_day: jiff::civil::Date,
    pub updated_at: Timestamp,
}

impl crate::store::Record for PurgeCheckpoint {
    const TYPE: &'static crate::schema::ItemType = &crate::schema::PURGE_CHECKPOINT;

    fn key(&self) -> crate::store::ItemKey {
        crate::store::ItemKey::new("PURGE".to_owned(), "CHECKPOINT".to_owned())
    }
}

/// Most month buckets one run examines (a run after a long pause catches up over several runs).
pub const MAX_BUCKETS_PER_RUN: usize = 240;

/// Everything the hourly schedule does: [`purge`], [`close_unverified_registrations`], and the alert
/// of privacy requests past their deadline.
pub async fn scheduled_run(
    state: &crate::AppState,
    max_items: usize,
) -> Result<PurgeReport, crate::erasure::ErasureError> {
    let mut report = purge(state, max_items).await?;
    report.unverified_registrations_closed = close_unverified_registrations(state, max_items).await?;
    report.policy_announcements_sent = crate::privacy::announce(state, max_items)
        .await
        .map_err(|error| crate::erasure::ErasureError::Alert(error.to_string()))?;
    report.overdue_privacy_requests = crate::privacy_requests::alert_overdue(state, max_items)
        .await
        .map_err(|error| crate::erasure::ErasureError::Alert(error.to_string()))?;
    Ok(report)
}

/// The scheduled purge: walks the due-date index from the checkpoint to now (a Query per month,
/// never a Scan) and does what TTL cannot for each due item, at most `max_items` of them per run.
/// Safe to run twice or to kill at any point: each piece of work is idempotent and the checkpoint only
/// moves past days whose work is done.
pub async fn purge(
    state: &crate::AppState,
    max_items: usize,
) -> Result<PurgeReport, crate::erasure::ErasureError> {
    let now = state.clock.now();
    let today = now.to_zoned_datetime(TimeZone::UTC).date();
    let checkpoint = state
        .store
        .get::<PurgeCheckpoint>(&crate::store::ItemKey::new(
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
            // Work of other kinds (none yet besides erasures) is counted in the report only.
            let Some(user_id) = key.pk.strip_prefix("ERASURE#") else {
                continue;
            };
            if budget == 0 {
                report.budget_spent = true;
                break;
            }
            budget -= 1;
            if crate::erasure::finish_retention(state, user_id, usize::MAX).await? {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    #[test]
    fn periods_follow_the_calendar() {
        // 7 years from a leap day ends on the last day of February.
        let end = RetentionClass::TaxRecord.expires_at(Some(at("2024-02-29T10:00:00Z")));
        assert_eq!(end, Some(at("2031-02-28T10:00:00Z").as_second()));
        // 24 months from a month end.
        let end = RetentionClass::PrivacyAudit.expires_at(Some(at("2026-01-31T00:00:00Z")));
        assert_eq!(end, Some(at("2028-01-31T00:00:00Z").as_second()));
        let end = RetentionClass::AccessLog.expires_at(Some(at("2026-11-29T00:00:00Z")));
        assert_eq!(end, Some(at("2027-02-27T00:00:00Z").as_second()));
    }

    #[test]
    fn accounts_and_unstarted_periods_do_not_expire() {
        assert_eq!(
            RetentionClass::Account.expires_at(Some(at("2026-01-01T00:00:00Z"))),
            None
        );
        assert_eq!(RetentionClass::ServiceRequest.expires_at(None), None);
    }

    #[test]
    fn every_class_explains_itself() {
        for class in RetentionClass::ALL {
            assert!(!class.legal_basis().is_empty() && !class.runs_from().is_empty());
            assert_eq!(class.period().is_none(), class == RetentionClass::Account);
        }
    }
}
