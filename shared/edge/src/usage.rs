//! Anonymous usage statistics: calls per route and per app (platform/version), and bookings and
//! placements per agency, per UTC day, counted as they happen. A counter holds a route key or an app label and a number, never a user id, an IP or
//! anything else that links back to a person; a report suppresses every bucket below
//! [`MIN_BUCKET_SIZE`] calls, so a rare route or app version cannot single anyone out.

use crate::auth::{Caller, Role};
use crate::error::ApiError;
use jiff::civil::Date;
use platform::AppState;
use platform::store::StoreError;
use serde::Serialize;
use std::collections::BTreeMap;

/// The smallest count a usage report shows (k-anonymity threshold).
pub const MIN_BUCKET_SIZE: u64 = 5;

/// The partition of `day`'s usage counters.
pub fn partition(day: Date) -> String {
    format!("METRIC#USAGE#{day}")
}

/// An app label from the `X-App-Version` header (`ios/3.2.1`): only `[A-Za-z0-9._/-]`, at most 40
/// characters; anything else counts as `unknown`, so a header cannot smuggle personal data in.
pub fn app_label(header: Option<&str>) -> String {
    match header.map(str::trim) {
        Some(value)
            if !value.is_empty()
                && value.len() <= 40
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-')) =>
        {
            value.to_owned()
        }
        _ => "unknown".to_owned(),
    }
}

/// Counts one call of `route` from `app` on the day of "now".
pub async fn count_call(state: &AppState, route: &str, app: &str) -> Result<(), StoreError> {
    let day = state
        .clock
        .now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date();
    let pk = partition(day);
    state
        .store
        .add_to_counter(&pk, &format!("route#{route}"), 1)
        .await?;
    state.store.add_to_counter(&pk, &format!("app#{app}"), 1).await?;
    Ok(())
}

/// Counts one piece of business activity (a booking, a placement) of agency `agency_id` on the day
/// of "now". Best effort: a lost count must not fail the activity.
pub async fn count_agency_activity(state: &AppState, agency_id: &str) {
    let day = state
        .clock
        .now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date();
    if let Err(error) = state
        .store
        .add_to_counter(&partition(day), &format!("agency#{agency_id}"), 1)
        .await
    {
        tracing::warn!(error = %error, "agency activity not counted");
    }
}

/// One day's usage as ops see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageReport {
    pub day: Date,
    /// Calls per route key, buckets under the threshold left out.
    pub routes: BTreeMap<String, u64>,
    /// Calls per app label, buckets under the threshold left out.
    pub apps: BTreeMap<String, u64>,
    /// Bookings and placements per agency, buckets under the threshold left out.
    pub agencies: BTreeMap<String, u64>,
    /// Buckets left out for being under [`MIN_BUCKET_SIZE`].
    pub suppressed_buckets: usize,
    pub min_bucket_size: u64,
}

/// `GET /v1/admin/usage?day=YYYY-MM-DD` (ops): the day's anonymous usage.
pub async fn report(state: &AppState, caller: &Caller, day: Date) -> Result<UsageReport, ApiError> {
    caller.require(Role::Ops)?;
    let mut report = UsageReport {
        day,
        routes: BTreeMap::new(),
        apps: BTreeMap::new(),
        agencies: BTreeMap::new(),
        suppressed_buckets: 0,
        min_bucket_size: MIN_BUCKET_SIZE,
    };
    for (bucket, count) in state.store.counters(&partition(day)).await? {
        if count < MIN_BUCKET_SIZE {
            report.suppressed_buckets += 1;
            continue;
        }
        if let Some(route) = bucket.strip_prefix("route#") {
            report.routes.insert(route.to_owned(), count);
        } else if let Some(app) = bucket.strip_prefix("app#") {
            report.apps.insert(app.to_owned(), count);
        } else if let Some(agency) = bucket.strip_prefix("agency#") {
            report.agencies.insert(agency.to_owned(), count);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_labels_cannot_carry_free_text() {
        assert_eq!(app_label(Some("ios/3.2.1")), "ios/3.2.1");
        assert_eq!(app_label(Some("ada@example.com")), "unknown");
        assert_eq!(app_label(Some("android 14 Ada's phone")), "unknown");
        assert_eq!(app_label(Some(&"x".repeat(41))), "unknown");
        assert_eq!(app_label(None), "unknown");
    }
}
