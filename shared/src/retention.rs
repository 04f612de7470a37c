//! Retention: finding work that DynamoDB TTL alone cannot do, through the due-date index.

use crate::clock::Clock;
use crate::keys::due_day_partition;
use crate::store::{Store, StoreError};
use jiff::tz::TimeZone;
use serde::Serialize;

/// What one purge run found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    /// The UTC day bucket that was examined.
    pub day: String,
    /// Items in that bucket due at or before now.
    pub due_items: usize,
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
    })
}
