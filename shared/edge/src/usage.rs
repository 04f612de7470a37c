//! Anonymous usage statistics: calls per route and per app (platform/version), and bookings and
//! placements per agency, per UTC day, counted as they happen. A counter holds a route key or an app label and a number, never a user id, an IP or
//! anything else that links back to a person; a report suppresses every bucket below
//! [`MIN_BUCKET_SIZE`] calls, so a rare route or app version cannot single anyone out.
//!
//! Statistics are not a fact any call depends on, so they never sit where callers contend: each
//! count is one `UpdateItem ADD` outside any transaction (DynamoDB applies concurrent ones to an item
//! in turn; only a transaction holding the item would conflict, and none ever does), on one of
//! [`SHARDS`] partitions per day chosen at random, so the platform's traffic is not capped at what
//! one partition takes. A report sums the shards. The app labels are an allow-list
//! ([`APP_RELEASES`]): no sender can grow the report by inventing versions.

use crate::auth::{Caller, Role};
use crate::error::ApiError;
use jiff::civil::Date;
use platform::AppState;
use platform::store::StoreError;
use serde::Serialize;
use std::collections::BTreeMap;

/// The smallest count a usage report shows (k-anonymity threshold).
pub const MIN_BUCKET_SIZE: u64 = 5;

/// How many partitions hold one day's counters (see the module documentation): at DynamoDB's
/// 1,000 writes a second per partition, room for several thousand counted calls a second.
pub const SHARDS: u32 = 8;

/// Shard `shard` of `day`'s usage counters.
pub fn partition(day: Date, shard: u32) -> String {
    format!("METRIC#USAGE#{day}#{shard}")
}

/// Every partition of `day`'s usage counters.
pub fn partitions(day: Date) -> impl Iterator<Item = String> {
    (0..SHARDS).map(move |shard| partition(day, shard))
}

/// The app releases counted under their own label (`X-App-Version: <platform>/<version>`); any other
/// value counts as `other`, a missing one as `unknown`. A release is added here when it ships.
pub const APP_RELEASES: &[&str] = &[
    "ios/4.0.0",
    "ios/4.1.0",
    "android/4.0.0",
    "android/4.1.0",
    "web/2026.11",
    "web/2026.12",
];

/// The app label of an `X-App-Version` header: an allow-listed release, `other`, or `unknown`.
pub fn app_label(header: Option<&str>) -> String {
    match header.map(str::trim) {
        None | Some("") => "unknown".to_owned(),
        Some(value) => APP_RELEASES
            .iter()
            .find(|release| release.eq_ignore_ascii_case(value))
            .map_or_else(|| "other".to_owned(), |release| (*release).to_owned()),
    }
}

/// Adds 1 to `bucket` on the day of "now", on a shard chosen at random. Best effort: a lost count
/// must not fail the call or the activity it counts.
async fn count(state: &AppState, bucket: String) {
    let day = state
        .clock
        .now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date();
    let shard = partition(day, fastrand::u32(0..SHARDS));
    if let Err(error) = state.store.add_to_counter(&shard, &bucket, 1).await {
        tracing::warn!(error = %error, "usage not counted");
    }
}

/// Counts one call of `route` from `app` (the router does, beside its admission checks,
/// [`crate::admission`]).
pub async fn count_call(state: &AppState, route: &str, app: &str) {
    futures::join!(
        count(state, format!("route#{route}")),
        count(state, format!("app#{app}"))
    );
}

/// Counts one piece of business activity (a booking, a placement) of agency `agency_id` on the day
/// of "now".
pub async fn count_agency_activity(state: &AppState, agency_id: &str) {
    count(state, format!("agency#{agency_id}")).await;
}

/// Every counter of `day`, summed over its shards, by bucket (`route#…`, `app#…`, `agency#…`,
/// `telemetry#…`).
pub async fn counters(state: &AppState, day: Date) -> Result<BTreeMap<String, u64>, StoreError> {
    let shards = futures::future::try_join_all(partitions(day).map(|pk| {
        let store = &state.store;
        async move { store.counters(&pk).await }
    }))
    .await?;
    let mut summed = BTreeMap::new();
    for (bucket, count) in shards.into_iter().flatten() {
        *summed.entry(bucket).or_insert(0) += count;
    }
    Ok(summed)
}

/// What a client may report about itself (`POST /v1/telemetry`): a fixed set of coarse fields, each
/// reduced to an allow-listed value or `other` before it is counted. Nothing of it is kept per
/// request: no user, no IP, no token, no time finer than the day.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    /// Browser family, e.g. `firefox`.
    #[serde(default)]
    pub browser: Option<String>,
    #[serde(default)]
    pub browser_major: Option<u32>,
    /// Operating system family, e.g. `android`.
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub javascript: Option<bool>,
    #[serde(default)]
    pub screen_width: Option<u32>,
    #[serde(default)]
    pub colour_depth: Option<u32>,
    /// The referring page (only its host is looked at, and only a known one is counted).
    #[serde(default)]
    pub referrer: Option<String>,
    /// Search keywords a referrer carried (only words of our own trade are counted).
    #[serde(default)]
    pub search_keywords: Option<String>,
    #[serde(default)]
    pub app_version: Option<String>,
}

const BROWSERS: &[&str] = &["chrome", "firefox", "safari", "edge", "opera", "samsung"];
const SYSTEMS: &[&str] = &["windows", "macos", "ios", "android", "linux", "chromeos"];
const COLOUR_DEPTHS: &[u32] = &[8, 16, 24, 30, 32, 48];
const REFERRER_HOSTS: &[&str] = &[
    "google.com",
    "bing.com",
    "duckduckgo.com",
    "yahoo.com",
    "facebook.com",
    "linkedin.com",
    "officertrak.com",
    "offdutymanagement.com",
];
/// Words of the trade: a search keyword is counted only if it is one of these (anything a person
/// could type about themselves counts as `other`).
const KEYWORDS: &[&str] = &[
    "security",
    "guard",
    "guards",
    "officer",
    "officers",
    "police",
    "off-duty",
    "event",
    "events",
    "concert",
    "school",
    "construction",
    "traffic",
    "patrol",
    "armed",
    "unarmed",
    "hire",
    "booking",
];

fn allowed(value: Option<&str>, list: &[&str]) -> String {
    value
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| list.contains(&v.as_str()))
        .unwrap_or_else(|| "other".to_owned())
}

/// The host of a URL, without a `www.` prefix, if it is a known referrer.
fn referrer_host(referrer: Option<&str>) -> String {
    let host = referrer
        .and_then(|r| r.split("://").nth(1))
        .and_then(|rest| rest.split(['/', '?', '#', ':']).next())
        .map(|h| h.trim_start_matches("www.").to_ascii_lowercase());
    allowed(host.as_deref(), REFERRER_HOSTS)
}

impl Telemetry {
    /// The (dimension, value) buckets this report counts in: every field reduced to an allow-listed
    /// value, a coarse bucket, or `other`.
    pub fn buckets(&self) -> Vec<(&'static str, String)> {
        let browser = allowed(self.browser.as_deref(), BROWSERS);
        let browser = match self.browser_major.filter(|m| (1..=300).contains(m)) {
            Some(major) if browser != "other" => format!("{browser}/{major}"),
            _ => browser,
        };
        let screen = match self.screen_width {
            Some(w) if w < 600 => "small",
            Some(w) if w < 1024 => "medium",
            Some(w) if w < 1440 => "large",
            Some(w) if w <= 10_000 => "xlarge",
            _ => "other",
        };
        let keywords: Vec<String> = self
            .search_keywords
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .take(5)
            .map(|word| allowed(Some(word), KEYWORDS))
            .collect();
        let mut buckets = vec![
            ("browser", browser),
            ("os", allowed(self.os.as_deref(), SYSTEMS)),
            (
                "javascript",
                self.javascript
                    .map_or("other".to_owned(), |on| if on { "on" } else { "off" }.to_owned()),
            ),
            ("screen", screen.to_owned()),
            (
                "colour_depth",
                self.colour_depth
                    .filter(|d| COLOUR_DEPTHS.contains(d))
                    .map_or("other".to_owned(), |d| d.to_string()),
            ),
            ("referrer", referrer_host(self.referrer.as_deref())),
            ("app", app_label(self.app_version.as_deref())),
        ];
        buckets.extend(keywords.into_iter().map(|k| ("keyword", k)));
        buckets
    }
}

/// `POST /v1/telemetry`: counts the report in the day's aggregate counters, nothing else. The router
/// reads no caller and writes no access-log line for this route, so nothing links it to anyone.
pub async fn record_telemetry(state: &AppState, telemetry: &Telemetry) -> Result<(), ApiError> {
    futures::future::join_all(
        telemetry
            .buckets()
            .into_iter()
            .map(|(dimension, value)| count(state, format!("telemetry#{dimension}#{value}"))),
    )
    .await;
    Ok(())
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
    /// Client telemetry per dimension (`browser`, `os`, `screen`, …) and value, buckets under the
    /// threshold left out.
    pub telemetry: BTreeMap<String, BTreeMap<String, u64>>,
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
        telemetry: BTreeMap::new(),
        suppressed_buckets: 0,
        min_bucket_size: MIN_BUCKET_SIZE,
    };
    for (bucket, count) in counters(state, day).await? {
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
        } else if let Some((dimension, value)) = bucket
            .strip_prefix("telemetry#")
            .and_then(|rest| rest.split_once('#'))
        {
            report
                .telemetry
                .entry(dimension.to_owned())
                .or_default()
                .insert(value.to_owned(), count);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telemetry_keeps_only_allow_listed_coarse_values() {
        let report = Telemetry {
            browser: Some("Firefox".into()),
            browser_major: Some(128),
            os: Some("Plan9-of-Ada".into()),
            javascript: Some(true),
            screen_width: Some(1280),
            colour_depth: Some(31),
            referrer: Some("https://www.google.com/search?q=ada+lovelace+home+address".into()),
            search_keywords: Some("security ada lovelace".into()),
            app_version: Some("ada@example.com".into()),
        };
        let buckets = report.buckets();
        let text = format!("{buckets:?}");
        assert!(!text.contains("ada") && !text.contains("plan9"), "{text}");
        assert!(buckets.contains(&("browser", "firefox/128".to_owned())));
        assert!(buckets.contains(&("referrer", "google.com".to_owned())));
        assert!(buckets.contains(&("screen", "large".to_owned())));
        assert!(buckets.contains(&("colour_depth", "other".to_owned())));
        assert!(buckets.contains(&("keyword", "security".to_owned())));
        assert_eq!(buckets.iter().filter(|b| b.0 == "keyword").count(), 3);
    }

    #[test]
    fn app_labels_are_an_allow_list() {
        assert_eq!(app_label(Some("ios/4.1.0")), "ios/4.1.0");
        assert_eq!(app_label(Some(" IOS/4.1.0 ")), "ios/4.1.0");
        assert_eq!(app_label(Some("ios/4.1.1")), "other", "an unreleased version");
        assert_eq!(app_label(Some("ada@example.com")), "other");
        assert_eq!(app_label(Some(&"x".repeat(41))), "other");
        assert_eq!(app_label(None), "unknown");
        assert_eq!(app_label(Some("  ")), "unknown");
    }
}
