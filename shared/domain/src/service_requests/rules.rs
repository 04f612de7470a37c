//! The booking rules: parsing, field checks, the agency's constraints, recurrence expansion and the
//! price of each occurrence.

use super::*;

// ------------------------------------------------------------------------------------------ rules

/// How far ahead a request may start: two years.
pub const MAX_DAYS_AHEAD: i64 = 730;
/// One occurrence, in the site's time zone.
pub(super) struct Occurrence {
    pub(super) starts: Zoned,
    pub(super) ends: Zoned,
}

/// Refuses a body with anything that looks like a card number, then parses it.
pub fn parse(bytes: &[u8]) -> Result<RequestInput, ApiError> {
    let raw: serde_json::Value = validation::parse_body(bytes)?;
    if let Some(pointer) = find_card_number(&raw) {
        return Err(ApiError::Validation(vec![edge::error::FieldError {
            pointer,
            detail:
                "looks like a card number: card numbers are never accepted, send a payment processor's token"
                    .into(),
        }]));
    }
    validation::parse_body(bytes)
}

fn check_text(v: &mut Validator, pointer: &str, text: &Option<String>, max: usize) {
    if let Some(text) = text {
        v.check(
            text.chars().count() <= max,
            pointer,
            format!("must be at most {max} characters"),
        );
    }
}

/// Applies every rule (the agency's among them) and expands the recurrence. `agency` is the one the
/// input names, as the caller read it (`None`: there is none). The agency and the occurrences come
/// back when the request is acceptable.
pub(super) fn check(
    state: &AppState,
    input: &RequestInput,
    agency: Option<Agency>,
    needs_payment: bool,
) -> Result<(Agency, Vec<Occurrence>), ApiError> {
    let now = state.clock.now();
    let mut v = Validator::new();
    v.check(agency.is_some(), "/agency_id", "no such agency");
    v.text("/event/name", &input.event.name, 200);
    v.text("/event/kind", &input.event.kind, 50);
    check_text(&mut v, "/event/description", &input.event.description, 2000);
    check_text(&mut v, "/notes", &input.notes, 2000);
    v.check(
        input.overrun_minutes <= MAX_OVERRUN_MINUTES,
        "/overrun_minutes",
        format!("must be between 0 and {MAX_OVERRUN_MINUTES}"),
    );
    v.text("/site/name", &input.site.name, 200);
    v.address("/site/address", &input.site.address);
    if let Some((lat, lon)) = input.site.location {
        v.check(
            (-90.0..=90.0).contains(&lat),
            "/site/location/0",
            "latitude must be between -90 and 90",
        );
        v.check(
            (-180.0..=180.0).contains(&lon),
            "/site/location/1",
            "longitude must be between -180 and 180",
        );
    }
    v.text("/site/contact/name", &input.site.contact.name, 200);
    v.phone("/site/contact/phone", &input.site.contact.phone);
    v.check(
        (1..=100).contains(&input.officers),
        "/officers",
        "must be between 1 and 100",
    );
    match (&input.payment, needs_payment) {
        (Some(payment), _) => {
            // A Stripe PaymentMethod id, made by the client with Stripe's own SDK.
            let token_ok = payment.processor_token.starts_with("pm_")
                && payment.processor_token.len() >= 8
                && payment.processor_token.len() <= 255
                && payment
                    .processor_token
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            v.check(
                token_ok,
                "/payment/processor_token",
                "must be a Stripe PaymentMethod id (pm_…), made with Stripe's SDK",
            );
            v.check(
                [
                    "visa",
                    "mastercard",
                    "amex",
                    "discover",
                    "diners",
                    "jcb",
                    "unionpay",
                ]
                .contains(&payment.card_brand.as_str()),
                "/payment/card_brand",
                "must be one of visa, mastercard, amex, discover, diners, jcb, unionpay",
            );
            v.check(
                payment.card_last4.len() == 4 && payment.card_last4.chars().all(|c| c.is_ascii_digit()),
                "/payment/card_last4",
                "must be the last four digits",
            );
        }
        (None, true) => v.reject("/payment", "is required to book"),
        (None, false) => {}
    }
    let time_zone = TimeZone::get(&input.time_zone);
    v.check(
        time_zone.is_ok(),
        "/time_zone",
        "must be an IANA time zone such as America/Denver",
    );
    let (Ok(time_zone), Some(agency)) = (time_zone, agency) else {
        v.finish()?;
        return Err(ApiError::BadRequest(
            "unreachable: invalid time zone or agency".into(),
        ));
    };
    let starts = input.starts_at.to_zoned_datetime(time_zone.clone());
    let ends = input.ends_at.to_zoned_datetime(time_zone.clone());
    let (Ok(starts), Ok(ends)) = (starts, ends) else {
        v.reject("/starts_at", "is not a time that exists in this time zone");
        v.finish()?;
        return Err(ApiError::BadRequest("unreachable: nonexistent local time".into()));
    };
    let rules = &agency.settings.rules;
    let length = ends.timestamp().duration_since(starts.timestamp());
    if length <= SignedDuration::ZERO {
        v.reject("/ends_at", "must be after starts_at");
    } else {
        let minutes = length.as_mins();
        v.check(
            minutes >= i64::from(rules.min_duration_hours) * 60,
            "/ends_at",
            format!(
                "agency rule min_duration_hours: a request lasts at least {} h",
                rules.min_duration_hours
            ),
        );
        v.check(
            minutes <= i64::from(rules.max_duration_hours) * 60,
            "/ends_at",
            format!(
                "agency rule max_duration_hours: a request lasts at most {} h",
                rules.max_duration_hours
            ),
        );
    }
    let ahead = starts.timestamp().duration_since(now);
    if ahead <= SignedDuration::ZERO {
        v.reject("/starts_at", "must be in the future");
    } else if ahead > SignedDuration::from_hours(24 * MAX_DAYS_AHEAD) {
        // Beyond this nobody can staff it, and every date computed from it stays far from the
        // calendar's end.
        v.reject("/starts_at", format!("book at most {MAX_DAYS_AHEAD} days ahead"));
    } else {
        v.check(
            ahead >= SignedDuration::from_hours(i64::from(rules.lead_time_hours)),
            "/starts_at",
            format!(
                "agency rule lead_time_hours: book at least {} h ahead",
                rules.lead_time_hours
            ),
        );
    }
    if input.officers >= rules.supervisor_required_at {
        v.check(
            input.requirements.supervisor,
            "/requirements/supervisor",
            format!(
                "agency rule supervisor_required_at: {} or more officers need a supervisor",
                rules.supervisor_required_at
            ),
        );
    }
    if input.event.alcohol_served {
        v.check(
            input.officers >= rules.alcohol_minimum_officers,
            "/officers",
            format!(
                "agency rule alcohol_minimum_officers: alcohol needs at least {} officers",
                rules.alcohol_minimum_officers
            ),
        );
    }
    let occurrences = expand(&mut v, starts, ends, input.recurrence);
    v.finish()?;
    Ok((agency, occurrences))
}

fn expand(v: &mut Validator, starts: Zoned, ends: Zoned, recurrence: Option<Recurrence>) -> Vec<Occurrence> {
    let Some(recurrence) = recurrence else {
        return vec![Occurrence { starts, ends }];
    };
    let step = match recurrence.frequency {
        Frequency::Daily => 1.day(),
        Frequency::Weekly => 1.week(),
    };
    let limit = match (recurrence.count, recurrence.until) {
        (Some(count), None) if (1..=MAX_OCCURRENCES as u32).contains(&count) => count as usize,
        (None, Some(until)) if until >= starts.date() => MAX_OCCURRENCES + 1,
        _ => {
            v.reject(
                "/recurrence",
                format!("give either a count of 1 to {MAX_OCCURRENCES} or an until date after the start"),
            );
            return Vec::new();
        }
    };
    let mut occurrences = Vec::new();
    for index in 0..limit {
        let offset = step * i64::try_from(index).unwrap_or(0);
        let (Ok(s), Ok(e)) = (starts.checked_add(offset), ends.checked_add(offset)) else {
            break;
        };
        if recurrence.until.is_some_and(|until| s.date() > until) {
            break;
        }
        occurrences.push(Occurrence { starts: s, ends: e });
    }
    if occurrences.len() > MAX_OCCURRENCES {
        v.reject(
            "/recurrence/until",
            format!("a booking repeats at most {MAX_OCCURRENCES} times"),
        );
    }
    occurrences
}

pub(super) fn price_of(
    agency: &Agency,
    input: &RequestInput,
    occurrence: &Occurrence,
    now: Timestamp,
) -> Result<Price, PriceOverflow> {
    let rates = &agency.settings.rates;
    let ahead = occurrence.starts.timestamp().duration_since(now);
    pricing::price(
        rates,
        Shift {
            minutes: occurrence
                .ends
                .timestamp()
                .duration_since(occurrence.starts.timestamp())
                .as_mins(),
            officers: i64::from(input.officers),
            vehicle: input.requirements.vehicle,
            holiday: agency.settings.holidays.contains(&occurrence.starts.date()),
            short_notice: ahead < SignedDuration::from_hours(i64::from(rates.short_notice_hours)),
        },
    )
}
