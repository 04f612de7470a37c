//! When a Security Provider is willing to work: a weekly pattern plus dated exceptions, read in the
//! officer's time zone (so 08:00–16:00 stays 08:00–16:00 local across daylight-saving changes).
//! Scheduling only offers or assigns a shift that the availability covers completely.

use edge::validation::Validator;
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// Most dated exceptions one officer may keep (older ones fall away as they pass).
pub const MAX_EXCEPTIONS: usize = 40;
/// Most windows per weekday or per exception.
pub const MAX_WINDOWS_PER_DAY: usize = 4;

/// A day of the week, as clients name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Day {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Day {
    /// The day `weekday` names.
    pub fn of(weekday: Weekday) -> Self {
        match weekday {
            Weekday::Monday => Self::Monday,
            Weekday::Tuesday => Self::Tuesday,
            Weekday::Wednesday => Self::Wednesday,
            Weekday::Thursday => Self::Thursday,
            Weekday::Friday => Self::Friday,
            Weekday::Saturday => Self::Saturday,
            Weekday::Sunday => Self::Sunday,
        }
    }

    /// Lower-case name, as used in index keys.
    pub fn name(self) -> &'static str {
        match self {
            Self::Monday => "monday",
            Self::Tuesday => "tuesday",
            Self::Wednesday => "wednesday",
            Self::Thursday => "thursday",
            Self::Friday => "friday",
            Self::Saturday => "saturday",
            Self::Sunday => "sunday",
        }
    }
}

/// A local time span within one day: `"08:00"` to `"16:30"`; `"24:00"` ends at midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    pub start: String,
    pub end: String,
}

/// Minutes since local midnight of `"HH:MM"` (`"24:00"` allowed), or `None`.
fn minutes_of(text: &str) -> Option<i64> {
    let (hours, minutes) = text.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let hours: i64 = hours.parse().ok()?;
    let minutes: i64 = minutes.parse().ok()?;
    let total = hours * 60 + minutes;
    (minutes < 60 && (0..=24 * 60).contains(&total)).then_some(total)
}

impl TimeWindow {
    fn bounds(&self) -> Option<(i64, i64)> {
        let start = minutes_of(&self.start)?;
        let end = minutes_of(&self.end)?;
        (start < end).then_some((start, end))
    }
}

/// Available on every `day` in `windows`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklyAvailability {
    pub day: Day,
    pub windows: Vec<TimeWindow>,
}

/// On `date`, `windows` replace the weekly pattern; no windows means not available that day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatedException {
    pub date: Date,
    #[serde(default)]
    pub windows: Vec<TimeWindow>,
}

/// The body of `PUT /v1/providers/me/availability`, and what `GET` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Availability {
    /// IANA zone the times are in; the agency's zone when omitted (and then left out of the answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    pub weekly: Vec<WeeklyAvailability>,
    #[serde(default)]
    pub exceptions: Vec<DatedException>,
}

impl Availability {
    /// 422 naming each exception, past ones included, whose windows break the rules: past ones are
    /// dropped before [`Availability::validate`], but a body that breaks the rules is refused whole.
    pub fn validate_exception_windows(&self) -> Result<(), edge::ApiError> {
        let mut v = Validator::new();
        for (index, exception) in self.exceptions.iter().enumerate() {
            check_windows(
                &mut v,
                &format!("/exceptions/{index}/windows"),
                &exception.windows,
            );
        }
        v.finish()
    }

    /// 422 with a pointer per broken rule.
    pub fn validate(&self, today: Date) -> Result<(), edge::ApiError> {
        let mut v = Validator::new();
        if self.weekly.len() > 7 || self.exceptions.len() > MAX_EXCEPTIONS {
            v.reject(
                "",
                format!("at most 7 weekdays and {MAX_EXCEPTIONS} dated exceptions"),
            );
            return v.finish();
        }
        if let Some(zone) = &self.time_zone {
            v.check(
                TimeZone::get(zone).is_ok(),
                "/time_zone",
                "must be an IANA time zone such as America/Denver",
            );
        }
        let mut days = Vec::new();
        for (index, day) in self.weekly.iter().enumerate() {
            v.check(
                !days.contains(&day.day),
                format!("/weekly/{index}/day"),
                "each day may appear once",
            );
            days.push(day.day);
            check_windows(&mut v, &format!("/weekly/{index}/windows"), &day.windows);
        }
        v.check(
            self.exceptions.len() <= MAX_EXCEPTIONS,
            "/exceptions",
            format!("at most {MAX_EXCEPTIONS} dated exceptions"),
        );
        let mut dates = Vec::new();
        for (index, exception) in self.exceptions.iter().enumerate() {
            v.check(
                !dates.contains(&exception.date),
                format!("/exceptions/{index}/date"),
                "each date may appear once",
            );
            v.check(
                exception.date >= today,
                format!("/exceptions/{index}/date"),
                "must not be in the past",
            );
            dates.push(exception.date);
            check_windows(
                &mut v,
                &format!("/exceptions/{index}/windows"),
                &exception.windows,
            );
        }
        v.finish()
    }

    /// The windows in force on local `date`: the exception for that date if any, else the weekly
    /// pattern of its weekday.
    fn windows_on(&self, date: Date) -> &[TimeWindow] {
        if let Some(exception) = self.exceptions.iter().find(|e| e.date == date) {
            return &exception.windows;
        }
        let day = Day::of(date.weekday());
        self.weekly
            .iter()
            .find(|w| w.day == day)
            .map_or(&[], |w| w.windows.as_slice())
    }

    /// Whether `[starts_at, ends_at)` lies entirely inside available time, read in `zone`.
    pub fn covers(&self, zone: &TimeZone, starts_at: Timestamp, ends_at: Timestamp) -> bool {
        let first = starts_at.to_zoned_datetime(zone.clone()).date();
        let last = ends_at.to_zoned_datetime(zone.clone()).date();
        let mut spans: Vec<(Timestamp, Timestamp)> = Vec::new();
        let mut date = first.yesterday().unwrap_or(first);
        while date <= last {
            for window in self.windows_on(date) {
                if let Some((start, end)) = window.bounds()
                    && let (Some(from), Some(to)) = (local(zone, date, start), local(zone, date, end))
                {
                    spans.push((from, to));
                }
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        spans.sort();
        let mut covered_until = starts_at;
        for (from, to) in spans {
            if from > covered_until {
                break;
            }
            if to > covered_until {
                covered_until = to;
            }
            if covered_until >= ends_at {
                return true;
            }
        }
        covered_until >= ends_at
    }

    /// The days and dates under which the pool index lists this officer: every weekday with a
    /// window, and every exception date with one.
    pub fn pool_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .weekly
            .iter()
            .filter(|w| !w.windows.is_empty())
            .map(|w| w.day.name().to_owned())
            .collect();
        keys.extend(
            self.exceptions
                .iter()
                .filter(|e| !e.windows.is_empty())
                .map(|e| e.date.to_string()),
        );
        keys
    }
}

/// The instant of `minutes` after local midnight of `date` in `zone` (DST-aware: a gap resolves
/// forward, a fold to the earlier instant).
fn local(zone: &TimeZone, date: Date, minutes: i64) -> Option<Timestamp> {
    let midnight = date.to_datetime(Time::midnight());
    let at = midnight.checked_add(SignedDuration::from_mins(minutes)).ok()?;
    zone.to_ambiguous_zoned_datetime(at)
        .compatible()
        .ok()
        .map(|z| z.timestamp())
}

fn check_windows(v: &mut Validator, pointer: &str, windows: &[TimeWindow]) {
    v.check(
        windows.len() <= MAX_WINDOWS_PER_DAY,
        pointer,
        format!("at most {MAX_WINDOWS_PER_DAY} windows per day"),
    );
    for (index, window) in windows.iter().enumerate() {
        v.check(
            window.bounds().is_some(),
            format!("{pointer}/{index}"),
            "start and end must be HH:MM (end up to 24:00) with start before end",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(start: &str, end: &str) -> TimeWindow {
        TimeWindow {
            start: start.into(),
            end: end.into(),
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    fn denver() -> TimeZone {
        TimeZone::get("America/Denver").expect("zone")
    }

    fn weekdays_8_to_20() -> Availability {
        Availability {
            time_zone: None,
            weekly: [Day::Monday, Day::Tuesday, Day::Saturday]
                .into_iter()
                .map(|day| WeeklyAvailability {
                    day,
                    windows: vec![window("08:00", "20:00")],
                })
                .collect(),
            exceptions: vec![DatedException {
                date: "2027-03-16".parse().expect("date"),
                windows: vec![],
            }],
        }
    }

    #[test]
    fn a_shift_inside_a_window_is_covered_and_one_crossing_its_edge_is_not() {
        let a = weekdays_8_to_20();
        // Monday 2027-03-15 in Denver (UTC-6 after the DST change on 14 March).
        assert!(a.covers(&denver(), at("2027-03-15T15:00:00Z"), at("2027-03-15T23:00:00Z")));
        assert!(!a.covers(&denver(), at("2027-03-15T13:00:00Z"), at("2027-03-15T16:00:00Z")));
        assert!(!a.covers(&denver(), at("2027-03-15T20:00:00Z"), at("2027-03-16T03:00:00Z")));
    }

    #[test]
    fn local_times_hold_across_the_daylight_saving_change() {
        let a = weekdays_8_to_20();
        // Saturday 13 March 2027 is still UTC-7: 08:00 local is 15:00Z.
        assert!(a.covers(&denver(), at("2027-03-13T15:00:00Z"), at("2027-03-14T03:00:00Z")));
        assert!(!a.covers(&denver(), at("2027-03-13T14:00:00Z"), at("2027-03-13T20:00:00Z")));
    }

    #[test]
    fn a_dated_exception_overrides_the_weekly_pattern() {
        let a = weekdays_8_to_20();
        // Tuesday 16 March is blocked by the exception.
        assert!(!a.covers(&denver(), at("2027-03-16T15:00:00Z"), at("2027-03-16T17:00:00Z")));
        // Tuesday 23 March follows the pattern again.
        assert!(a.covers(&denver(), at("2027-03-23T15:00:00Z"), at("2027-03-23T17:00:00Z")));
    }

    #[test]
    fn adjacent_windows_cover_a_shift_across_midnight() {
        let a = Availability {
            time_zone: None,
            weekly: vec![
                WeeklyAvailability {
                    day: Day::Friday,
                    windows: vec![window("18:00", "24:00")],
                },
                WeeklyAvailability {
                    day: Day::Saturday,
                    windows: vec![window("00:00", "04:00")],
                },
            ],
            exceptions: vec![],
        };
        // Friday 2027-01-08 22:00 to Saturday 03:00 Denver (UTC-7).
        assert!(a.covers(&denver(), at("2027-01-09T05:00:00Z"), at("2027-01-09T10:00:00Z")));
        assert!(!a.covers(&denver(), at("2027-01-09T05:00:00Z"), at("2027-01-09T12:00:00Z")));
    }

    #[test]
    fn malformed_windows_and_duplicate_days_are_refused_with_pointers() {
        let a = Availability {
            time_zone: Some("Mars/Olympus".into()),
            weekly: vec![
                WeeklyAvailability {
                    day: Day::Monday,
                    windows: vec![window("09:00", "08:00")],
                },
                WeeklyAvailability {
                    day: Day::Monday,
                    windows: vec![window("8:00", "25:00")],
                },
            ],
            exceptions: vec![],
        };
        let today: Date = "2027-01-01".parse().expect("date");
        match a.validate(today) {
            Err(edge::ApiError::Validation(errors)) => {
                let pointers: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
                assert_eq!(
                    pointers,
                    [
                        "/time_zone",
                        "/weekly/0/windows/0",
                        "/weekly/1/day",
                        "/weekly/1/windows/0"
                    ]
                );
            }
            other => panic!("expected 422, got {other:?}"),
        }
        assert!(weekdays_8_to_20().validate(today).is_ok());
    }
}
