//! Who may work a shift, and in which order the agency's mode ranks them. Pure rules over data the
//! caller has read, so every exclusion and every ranking is explainable and unit-tested.

use crate::accounts::memberships::{Membership, MembershipStatus};
use crate::accounts::{AccountStatus, ProviderAccount, ServiceArea, Skill};
use crate::agencies::{AssignmentMode, Rules};
use crate::scheduling::roster::Roster;
use crate::service_requests::{ServiceRequest, Site};
use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde::Serialize;
use std::cmp::Ordering;

/// The rule that keeps an officer off a shift. Its name is stable: clients and reports show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// Not a member of the request's agency.
    NotInAgency,
    /// Applied to the agency, but not approved by it (pending, rejected or revoked).
    MembershipNotApproved,
    /// Approved once, but the agency's re-verification period ran out.
    MembershipLapsed,
    /// Restricted (privacy request) or being deleted: never matched.
    AccountNotActive,
    /// The licence expires before the shift ends.
    LicenceExpired,
    /// On the agency's do-not-hire list.
    DoNotHire,
    /// Lacks a skill the request requires.
    MissingSkill,
    /// The site is outside the officer's service area.
    OutsideServiceArea,
    /// The officer's availability does not cover the shift.
    NotAvailable,
    /// The officer holds an overlapping shift.
    Overlap,
    /// Too little rest between this and another shift.
    RestRule,
    /// The shift would take the officer over the agency's weekly hour cap.
    WeeklyHourCap,
    /// The officer is, or was, on this request already.
    AlreadyOnRequest,
}

impl Exclusion {
    /// The stable rule name.
    pub fn rule(self) -> &'static str {
        match self {
            Self::NotInAgency => "not_in_agency",
            Self::MembershipNotApproved => "membership_not_approved",
            Self::MembershipLapsed => "membership_lapsed",
            Self::AccountNotActive => "account_not_active",
            Self::LicenceExpired => "licence_expired",
            Self::DoNotHire => "do_not_hire",
            Self::MissingSkill => "missing_skill",
            Self::OutsideServiceArea => "outside_service_area",
            Self::NotAvailable => "not_available",
            Self::Overlap => "overlap",
            Self::RestRule => "rest_rule",
            Self::WeeklyHourCap => "weekly_hour_cap",
            Self::AlreadyOnRequest => "already_on_request",
        }
    }

    /// A sentence for the problem body, naming no personal value.
    pub fn explain(self) -> &'static str {
        match self {
            Self::NotInAgency => "the officer is not a member of the request's agency",
            Self::MembershipNotApproved => "the agency has not approved the officer's membership",
            Self::MembershipLapsed => {
                "the agency's approval of the officer lapsed: it must verify them again"
            }
            Self::AccountNotActive => "the officer's account is restricted or being deleted",
            Self::LicenceExpired => "the officer's licence is not valid on the shift date",
            Self::DoNotHire => "the officer is on the agency's do-not-hire list",
            Self::MissingSkill => "the officer lacks a skill the request requires",
            Self::OutsideServiceArea => "the site is outside the officer's service area",
            Self::NotAvailable => "the officer's availability does not cover the shift",
            Self::Overlap => "the officer holds an overlapping shift",
            Self::RestRule => "the officer would not get the agency's minimum rest between shifts",
            Self::WeeklyHourCap => "the shift would exceed the agency's weekly hour cap",
            Self::AlreadyOnRequest => "the officer is or was already on this request",
        }
    }
}

/// What is known about one officer when matching them to a shift.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub account: &'a ProviderAccount,
    /// The officer's membership of the request's agency, if any.
    pub membership: Option<&'a Membership>,
    pub roster: Option<&'a Roster>,
    pub on_do_not_hire_list: bool,
    /// Whether an assignment of this officer to the request exists (in any status).
    pub already_on_request: bool,
}

/// Checks every rule, in a fixed order, and names the first one the officer breaks at `now`.
pub fn check(
    candidate: Candidate<'_>,
    request: &ServiceRequest,
    rules: &Rules,
    agency_zone: &TimeZone,
    now: Timestamp,
) -> Result<(), Exclusion> {
    let account = candidate.account;
    membership_rule(candidate.membership, &request.agency_id, now)?;
    if account.status != AccountStatus::Active {
        return Err(Exclusion::AccountNotActive);
    }
    let shift_end_day = request.ends_at.to_zoned_datetime(agency_zone.clone()).date();
    if account.licence.expires_on < shift_end_day {
        return Err(Exclusion::LicenceExpired);
    }
    if candidate.on_do_not_hire_list {
        return Err(Exclusion::DoNotHire);
    }
    if candidate.already_on_request {
        return Err(Exclusion::AlreadyOnRequest);
    }
    if !has_skills(&account.skills, request) {
        return Err(Exclusion::MissingSkill);
    }
    if !serves(&account.service_area, &request.site) {
        return Err(Exclusion::OutsideServiceArea);
    }
    let Some(roster) = candidate.roster else {
        return Err(Exclusion::NotAvailable);
    };
    let covered = roster.availability.as_ref().is_some_and(|a| {
        let zone = a
            .time_zone
            .as_deref()
            .and_then(|z| TimeZone::get(z).ok())
            .unwrap_or_else(|| agency_zone.clone());
        a.covers(&zone, request.starts_at, request.ends_at)
    });
    if !covered {
        return Err(Exclusion::NotAvailable);
    }
    fits_schedule(
        roster,
        &request.request_id,
        request.starts_at,
        request.ends_at,
        rules,
        agency_zone,
    )
}

/// The membership rules alone: a member of `agency_id`, approved by it, and not lapsed at `now`.
pub fn membership_rule(
    membership: Option<&Membership>,
    agency_id: &str,
    now: Timestamp,
) -> Result<(), Exclusion> {
    let Some(membership) = membership.filter(|m| m.agency_id == agency_id) else {
        return Err(Exclusion::NotInAgency);
    };
    if membership.has_lapsed(now) {
        return Err(Exclusion::MembershipLapsed);
    }
    if membership.status != MembershipStatus::Approved {
        return Err(Exclusion::MembershipNotApproved);
    }
    Ok(())
}

fn has_skills(skills: &[Skill], request: &ServiceRequest) -> bool {
    let needs = request.requirements;
    (!needs.armed || skills.contains(&Skill::Armed)) && (!needs.vehicle || skills.contains(&Skill::Vehicle))
}

/// Whether `area` includes `site`: by distance when both have coordinates, else by region code
/// (`WY` or a sub-area such as `WY-SUB` matches a site in `WY`). No area set means anywhere.
pub fn serves(area: &ServiceArea, site: &Site) -> bool {
    if let (Some(center), Some(radius), Some(location)) = (area.center, area.radius_km, site.location) {
        return distance_km(center, location) <= radius;
    }
    if area.regions.is_empty() {
        return true;
    }
    let state = site.address.region.to_uppercase();
    area.regions.iter().any(|code| {
        let code = code.to_uppercase();
        code == state || code.split('-').next() == Some(state.as_str())
    })
}

/// Great-circle distance between two `[latitude, longitude]` points.
fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h =
        ((lat2 - lat1) / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

/// Overlap, minimum rest and the weekly hour cap against every shift the officer holds or worked
/// (except `request_id` itself).
pub fn fits_schedule(
    roster: &Roster,
    request_id: &str,
    starts_at: Timestamp,
    ends_at: Timestamp,
    rules: &Rules,
    agency_zone: &TimeZone,
) -> Result<(), Exclusion> {
    let rest = SignedDuration::from_hours(i64::from(rules.min_rest_hours));
    let others: Vec<(Timestamp, Timestamp)> = roster
        .commitments
        .iter()
        .filter(|c| c.request_id != request_id)
        .map(|c| (c.starts_at, c.ends_at))
        .chain(roster.worked_shifts.iter().map(|w| (w.started_at, w.ended_at)))
        .collect();
    for &(start, end) in &others {
        if start < ends_at && starts_at < end {
            return Err(Exclusion::Overlap);
        }
    }
    for &(start, end) in &others {
        let gap = if end <= starts_at {
            starts_at.duration_since(end)
        } else {
            start.duration_since(ends_at)
        };
        if gap < rest {
            return Err(Exclusion::RestRule);
        }
    }
    let cap = i64::from(rules.weekly_hour_cap) * 60;
    let mut week = week_start(starts_at, agency_zone);
    while let Some((from, to)) = week {
        if from >= ends_at {
            break;
        }
        let minutes = |s: Timestamp, e: Timestamp| -> i64 {
            let s = s.max(from);
            let e = e.min(to);
            if e > s { e.duration_since(s).as_mins() } else { 0 }
        };
        let held: i64 = others.iter().map(|&(s, e)| minutes(s, e)).sum();
        if held + minutes(starts_at, ends_at) > cap {
            return Err(Exclusion::WeeklyHourCap);
        }
        week = week_start(to, agency_zone);
    }
    Ok(())
}

/// The local week (Monday 00:00 to the next Monday 00:00 in `zone`) that contains `at`.
fn week_start(at: Timestamp, zone: &TimeZone) -> Option<(Timestamp, Timestamp)> {
    let local = at.to_zoned_datetime(zone.clone());
    let back = i64::from(local.weekday().to_monday_zero_offset());
    let monday = local.date().checked_sub(back.days()).ok()?;
    let start = monday
        .to_datetime(Time::midnight())
        .to_zoned_datetime(zone.clone())
        .ok()?;
    let end = start.checked_add(1.week()).ok()?;
    debug_assert_eq!(start.weekday(), Weekday::Monday);
    Some((start.timestamp(), end.timestamp()))
}

/// An eligible officer's place in the agency's order, with the key that decided it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranking {
    pub officer_user_id: String,
    /// The mode that ranked them.
    pub mode: AssignmentMode,
    /// The ranking key in words, e.g. "12.5 hours worked in the last 28 days".
    pub why: String,
    #[serde(skip)]
    key: RankKey,
}

#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum RankKey {
    Time(Option<Timestamp>),
    Minutes(i64),
    Date(jiff::civil::Date),
}

/// An officer every rule admits to a shift, with what the ranking modes look at.
#[derive(Debug, Clone, Copy)]
pub struct Eligible<'a> {
    pub account: &'a ProviderAccount,
    pub roster: &'a Roster,
    /// The hire date the agency verified (seniority).
    pub hire_date: jiff::civil::Date,
}

/// Ranks eligible officers by `mode` (ties by user id, so the order is stable and reproducible).
pub fn rank(mode: AssignmentMode, rules: &Rules, now: Timestamp, eligible: &[Eligible<'_>]) -> Vec<Ranking> {
    let window = i64::from(rules.fairness_window_days);
    let mut ranked: Vec<Ranking> = eligible
        .iter()
        .map(
            |&Eligible {
                 account,
                 roster,
                 hire_date,
             }| {
                let (key, why) = match mode {
                    AssignmentMode::FirstCome => (
                        RankKey::Time(Some(roster.joined_at)),
                        format!(
                            "offered availability on {}",
                            roster.joined_at.strftime("%Y-%m-%d")
                        ),
                    ),
                    AssignmentMode::FewestHours => {
                        let minutes = roster.minutes_worked_since(now, window);
                        (
                            RankKey::Minutes(minutes),
                            format!(
                                "{:.1} hours worked in the last {window} days",
                                minutes as f64 / 60.0
                            ),
                        )
                    }
                    AssignmentMode::Seniority => (RankKey::Date(hire_date), format!("hired on {hire_date}")),
                    AssignmentMode::Rotation => (
                        RankKey::Time(roster.last_detail_at),
                        match roster.last_detail_at {
                            Some(at) => format!("last detail ended {}", at.strftime("%Y-%m-%d %H:%M UTC")),
                            None => "no detail worked yet".to_owned(),
                        },
                    ),
                };
                Ranking {
                    officer_user_id: account.user_id.clone(),
                    mode,
                    why,
                    key,
                }
            },
        )
        .collect();
    ranked.sort_by(|a, b| {
        a.key
            .partial_cmp(&b.key)
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.officer_user_id.cmp(&b.officer_user_id))
    });
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduling::roster::{Commitment, WorkedShift};

    fn at(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    fn rules() -> Rules {
        crate::samples::agency_rules()
    }

    fn roster_with(commitments: &[(&str, &str)]) -> Roster {
        let mut roster = Roster::new("officer", at("2027-01-01T00:00:00Z"));
        roster.commitments = commitments
            .iter()
            .enumerate()
            .map(|(i, (s, e))| Commitment {
                assignment_id: format!("a{i}"),
                request_id: format!("r{i}"),
                starts_at: at(s),
                ends_at: at(e),
            })
            .collect();
        roster
    }

    fn utc() -> TimeZone {
        TimeZone::UTC
    }

    #[test]
    fn overlapping_shifts_are_refused_and_back_to_back_ones_need_the_rest_period() {
        let mut rules = rules();
        rules.min_rest_hours = 8;
        let roster = roster_with(&[("2027-01-05T08:00:00Z", "2027-01-05T16:00:00Z")]);
        let check = |s, e| fits_schedule(&roster, "new", at(s), at(e), &rules, &utc());
        assert_eq!(
            check("2027-01-05T15:00:00Z", "2027-01-05T20:00:00Z"),
            Err(Exclusion::Overlap)
        );
        assert_eq!(
            check("2027-01-05T20:00:00Z", "2027-01-05T23:00:00Z"),
            Err(Exclusion::RestRule)
        );
        assert_eq!(
            check("2027-01-05T01:00:00Z", "2027-01-05T03:00:00Z"),
            Err(Exclusion::RestRule)
        );
        assert_eq!(check("2027-01-06T00:00:00Z", "2027-01-06T04:00:00Z"), Ok(()));
        rules.min_rest_hours = 0;
        let check = |s, e| fits_schedule(&roster, "new", at(s), at(e), &rules, &utc());
        assert_eq!(check("2027-01-05T16:00:00Z", "2027-01-05T20:00:00Z"), Ok(()));
    }

    #[test]
    fn the_weekly_cap_counts_held_and_worked_hours_in_the_local_week() {
        let mut rules = rules();
        rules.weekly_hour_cap = 20;
        rules.min_rest_hours = 0;
        // Monday 4 January 2027 starts the week; 16 h held, 2 h worked.
        let mut roster = roster_with(&[
            ("2027-01-04T00:00:00Z", "2027-01-04T08:00:00Z"),
            ("2027-01-05T00:00:00Z", "2027-01-05T08:00:00Z"),
        ]);
        roster.worked_shifts.push(WorkedShift {
            assignment_id: "w".into(),
            started_at: at("2027-01-06T00:00:00Z"),
            ended_at: at("2027-01-06T02:00:00Z"),
        });
        let check = |s, e| fits_schedule(&roster, "new", at(s), at(e), &rules, &utc());
        assert_eq!(check("2027-01-07T00:00:00Z", "2027-01-07T02:00:00Z"), Ok(()));
        assert_eq!(
            check("2027-01-07T00:00:00Z", "2027-01-07T03:00:00Z"),
            Err(Exclusion::WeeklyHourCap)
        );
        // The next week starts empty again.
        assert_eq!(check("2027-01-11T00:00:00Z", "2027-01-11T10:00:00Z"), Ok(()));
        // A shift across the week boundary counts in each week only its own part.
        assert_eq!(check("2027-01-10T22:00:00Z", "2027-01-11T04:00:00Z"), Ok(()));
    }

    #[test]
    fn fewest_hours_ranks_the_least_worked_first_and_explains_it() {
        let now = at("2027-02-01T00:00:00Z");
        let account = crate::samples::provider("a", "a@example.com");
        let mut other = crate::samples::provider("b", "b@example.com");
        other.user_id = "b".into();
        let mut busy = Roster::new("a", now);
        busy.worked_shifts.push(WorkedShift {
            assignment_id: "w".into(),
            started_at: at("2027-01-20T00:00:00Z"),
            ended_at: at("2027-01-20T10:30:00Z"),
        });
        let idle = Roster::new("b", now);
        let hire_date = "2015-04-01".parse().expect("date");
        let both = [
            Eligible {
                account: &account,
                roster: &busy,
                hire_date,
            },
            Eligible {
                account: &other,
                roster: &idle,
                hire_date,
            },
        ];
        let ranked = rank(AssignmentMode::FewestHours, &rules(), now, &both);
        assert_eq!(ranked[0].officer_user_id, "b");
        assert_eq!(ranked[1].why, "10.5 hours worked in the last 28 days");
        let rotation = rank(AssignmentMode::Rotation, &rules(), now, &both);
        assert_eq!(rotation[0].why, "no detail worked yet");
    }

    #[test]
    fn only_an_approved_unlapsed_membership_of_the_requests_agency_admits() {
        let now = at("2027-02-01T00:00:00Z");
        let mut m = crate::samples::membership("a");
        m.valid_until = Some(at("2027-03-01T00:00:00Z"));
        let agency = m.agency_id.clone();
        assert_eq!(membership_rule(Some(&m), &agency, now), Ok(()));
        assert_eq!(membership_rule(None, &agency, now), Err(Exclusion::NotInAgency));
        assert_eq!(
            membership_rule(Some(&m), "other-agency", now),
            Err(Exclusion::NotInAgency)
        );
        assert_eq!(
            membership_rule(Some(&m), &agency, at("2027-03-01T00:00:00Z")),
            Err(Exclusion::MembershipLapsed)
        );
        for status in [
            MembershipStatus::Pending,
            MembershipStatus::Rejected,
            MembershipStatus::Revoked,
        ] {
            m.status = status;
            assert_eq!(
                membership_rule(Some(&m), &agency, now),
                Err(Exclusion::MembershipNotApproved)
            );
        }
        m.status = MembershipStatus::Lapsed;
        assert_eq!(
            membership_rule(Some(&m), &agency, now),
            Err(Exclusion::MembershipLapsed)
        );
    }

    #[test]
    fn service_area_matches_by_distance_or_region() {
        let mut site = crate::samples::site();
        let mut area = ServiceArea {
            regions: vec!["WY-SUB".into()],
            center: None,
            radius_km: None,
        };
        assert!(serves(&area, &site));
        site.address.region = "CO".into();
        assert!(!serves(&area, &site));
        area.center = Some((42.86, -106.31));
        area.radius_km = Some(50.0);
        site.location = Some((42.85, -106.30));
        assert!(serves(&area, &site));
        site.location = Some((39.74, -104.99));
        assert!(!serves(&area, &site));
    }
}
