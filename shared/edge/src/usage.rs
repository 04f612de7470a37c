//! Anonymous usage statistics: calls per route and per app (platform/version), and bookings and
//! placements per agency, per UTC day, counted as they happen. A counter holds a route key or an app label and a number, never a user id, an IP or
//! anything else that links back to a person; a report suppresses every bucket below
//! [`MIN_BUCKET_SIZE`] calls, so a rare route or app version cannot single anyone out.

use crate::auth::{Caller, Role};
use crate::error::ApiError;
use jiff::civil::Date;
use platform::AppState;
use platform::store::CounterIncrement;
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

/// The counters one call of `route` from `app` adds to on the day of "now" (the router counts them
/// in its admission request, [`crate::admission`]).
pub fn call_counters(state: &AppState, route: &str, app: &str) -> Vec<CounterIncrement> {
    let now = state.clock.now();
    let day = now.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    let pk = partition(day);
    let expires_at = platform::retention::RetentionClass::Metrics
        .expires_at(Some(now))
        .unwrap_or(i64::MAX);
    [format!("route#{route}"), format!("app#{app}")]
        .into_iter()
        .map(|sk| CounterIncrement {
            pk: pk.clone(),
            sk,
            expires_at,
            below: None,
        })
        .collect()
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
    let day = state
        .clock
        .now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date();
    let pk = partition(day);
    for (dimension, value) in telemetry.buckets() {
        state
            .store
            .add_to_counter(&pk, &format!("telemetry#{dimension}#{value}"), 1)
            .await?;
    }
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
    fn app_labels_cannot_carry_free_text() {
        assert_eq!(app_label(Some("ios/3.2.1")), "ios/3.2.1");
        assert_eq!(app_label(Some("ada@example.com")), "unknown");
        assert_eq!(app_label(Some("android 14 Ada's phone")), "unknown");
        assert_eq!(app_label(Some(&"x".repeat(41))), "unknown");
        assert_eq!(app_label(None), "unknown");
    }
}
