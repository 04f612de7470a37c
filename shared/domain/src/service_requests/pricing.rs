//! Prices of service requests from an agency's rates: integer cents, never floats, every line
//! explained. Used by quotes and stored with every request. The arithmetic is checked: a price that
//! does not fit is refused ([`PriceOverflow`], a 422), never wrapped.

use crate::agencies::Rates;
use edge::ApiError;
use edge::error::FieldError;
use serde::{Deserialize, Serialize};

/// A price too large to bill in integer cents. The agency's rates are bounded, so only extreme rates,
/// many officers and many occurrences together reach it; it is refused, never wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the price exceeds what can be billed")]
pub struct PriceOverflow;

impl From<PriceOverflow> for ApiError {
    fn from(_: PriceOverflow) -> Self {
        ApiError::Validation(vec![FieldError {
            pointer: String::new(),
            detail:
                "the price of this request is larger than can be billed: book fewer officers or occurrences"
                    .into(),
        }])
    }
}

/// The sum of `amounts`, or [`PriceOverflow`].
pub fn sum_cents(amounts: impl IntoIterator<Item = i64>) -> Result<i64, PriceOverflow> {
    amounts
        .into_iter()
        .try_fold(0i64, |total, amount| total.checked_add(amount))
        .ok_or(PriceOverflow)
}

fn mul(a: i64, b: i64) -> Result<i64, PriceOverflow> {
    a.checked_mul(b).ok_or(PriceOverflow)
}

fn add(a: i64, b: i64) -> Result<i64, PriceOverflow> {
    a.checked_add(b).ok_or(PriceOverflow)
}

/// One line of a price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceLine {
    /// Stable code: `labour`, `holiday`, `short_notice`, `vehicle`, `admin_fee`, `cancellation`.
    pub code: String,
    /// How the amount was computed, in words.
    pub description: String,
    pub amount_cents: i64,
}

/// A price: its lines and their total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    pub lines: Vec<PriceLine>,
    pub total_cents: i64,
    pub currency: String,
}

/// What a price depends on besides the rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shift {
    /// Length of the shift in minutes.
    pub minutes: i64,
    pub officers: i64,
    pub vehicle: bool,
    /// The shift starts on one of the agency's holidays.
    pub holiday: bool,
    /// Booked less than the agency's short-notice hours ahead.
    pub short_notice: bool,
}

/// `value × numerator / denominator`, rounded half up (amounts are never negative here).
fn scale(value: i64, numerator: i64, denominator: i64) -> Result<i64, PriceOverflow> {
    Ok(add(mul(value, numerator)?, denominator / 2)? / denominator)
}

fn dollars(cents: i64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

fn duration(minutes: i64) -> String {
    format!("{} h {:02} min", minutes / 60, minutes % 60)
}

/// The price of one shift.
pub fn price(rates: &Rates, shift: Shift) -> Result<Price, PriceOverflow> {
    let minimum = mul(i64::from(rates.minimum_hours), 60)?;
    let billed = shift.minutes.max(minimum);
    let labour = scale(mul(billed, shift.officers)?, rates.hourly_rate_cents, 60)?;
    let mut lines = vec![PriceLine {
        code: "labour".into(),
        description: format!(
            "{} officer(s) × {}{} × {}/h",
            shift.officers,
            duration(billed),
            if billed > shift.minutes {
                format!(" (minimum {} h)", rates.minimum_hours)
            } else {
                String::new()
            },
            dollars(rates.hourly_rate_cents)
        ),
        amount_cents: labour,
    }];
    let mut running = labour;
    if shift.holiday {
        let surcharge = scale(running, i64::from(rates.holiday_multiplier_percent) - 100, 100)?;
        lines.push(PriceLine {
            code: "holiday".into(),
            description: format!(
                "holiday rate: {}% of {}",
                rates.holiday_multiplier_percent,
                dollars(running)
            ),
            amount_cents: surcharge,
        });
        running = add(running, surcharge)?;
    }
    if shift.short_notice {
        let surcharge = scale(
            running,
            i64::from(rates.short_notice_multiplier_percent) - 100,
            100,
        )?;
        lines.push(PriceLine {
            code: "short_notice".into(),
            description: format!(
                "booked less than {} h ahead: {}% of {}",
                rates.short_notice_hours,
                rates.short_notice_multiplier_percent,
                dollars(running)
            ),
            amount_cents: surcharge,
        });
        running = add(running, surcharge)?;
    }
    if shift.vehicle {
        let vehicle = mul(rates.vehicle_charge_cents, shift.officers)?;
        lines.push(PriceLine {
            code: "vehicle".into(),
            description: format!(
                "vehicle: {} officer(s) × {}",
                shift.officers,
                dollars(rates.vehicle_charge_cents)
            ),
            amount_cents: vehicle,
        });
        running = add(running, vehicle)?;
    }
    if rates.admin_fee_percent > 0 {
        let fee = scale(running, i64::from(rates.admin_fee_percent), 100)?;
        lines.push(PriceLine {
            code: "admin_fee".into(),
            description: format!(
                "administration fee: {}% of {}",
                rates.admin_fee_percent,
                dollars(running)
            ),
            amount_cents: fee,
        });
        running = add(running, fee)?;
    }
    Ok(Price {
        lines,
        total_cents: running,
        currency: "USD".into(),
    })
}

/// The fee for cancelling `hours_notice` hours before the start: the band with the shortest window
/// that the notice falls inside bills its hours per officer at the base rate; no band, no fee.
pub fn cancellation_fee(
    rates: &Rates,
    bands: &[crate::agencies::CancellationBand],
    hours_notice: f64,
    officers: i64,
) -> Result<Option<PriceLine>, PriceOverflow> {
    let band = bands
        .iter()
        .filter(|band| hours_notice < f64::from(band.within_hours))
        .min_by_key(|band| band.within_hours);
    let Some(band) = band else {
        return Ok(None);
    };
    let amount = mul(
        mul(i64::from(band.billed_hours_per_officer), officers)?,
        rates.hourly_rate_cents,
    )?;
    Ok(Some(PriceLine {
        code: "cancellation".into(),
        description: format!(
            "cancelled less than {} h before the start: {} h × {} officer(s) × {}/h",
            band.within_hours,
            band.billed_hours_per_officer,
            officers,
            dollars(rates.hourly_rate_cents)
        ),
        amount_cents: amount,
    }))
}

/// `fee` capped at `booked_cents`: a cancellation never costs more than the booking would have.
pub fn capped(fee: PriceLine, booked_cents: i64) -> PriceLine {
    if fee.amount_cents <= booked_cents {
        return fee;
    }
    PriceLine {
        description: format!("{} (capped at the booked price)", fee.description),
        amount_cents: booked_cents,
        ..fee
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agencies::CancellationBand;

    fn rates() -> Rates {
        Rates {
            hourly_rate_cents: 6500,
            minimum_hours: 3,
            holiday_multiplier_percent: 150,
            short_notice_multiplier_percent: 125,
            short_notice_hours: 72,
            vehicle_charge_cents: 2500,
            admin_fee_percent: 5,
        }
    }

    fn total(shift: Shift) -> (Vec<(String, i64)>, i64) {
        let price = price(&rates(), shift).expect("fits");
        assert_eq!(
            price.lines.iter().map(|l| l.amount_cents).sum::<i64>(),
            price.total_cents,
            "lines add up"
        );
        (
            price
                .lines
                .into_iter()
                .map(|l| (l.code, l.amount_cents))
                .collect(),
            price.total_cents,
        )
    }

    #[test]
    fn worked_example_plain_shift() {
        // 3 officers × 5 h × $65 = $975; admin 5% = $48.75.
        let shift = Shift {
            minutes: 300,
            officers: 3,
            vehicle: false,
            holiday: false,
            short_notice: false,
        };
        assert_eq!(
            total(shift),
            (
                vec![("labour".into(), 97_500), ("admin_fee".into(), 4_875)],
                102_375
            )
        );
    }

    #[test]
    fn worked_example_minimum_hours_vehicle_holiday_short_notice() {
        // 2 officers × 2 h 30 min, minimum 3 h: 2 × 3 h × $65 = $390.
        // Holiday 150%: +$195 → $585. Short notice 125%: +$146.25 → $731.25.
        // Vehicle 2 × $25 = $50 → $781.25. Admin 5% = $39.0625 → $39.06 → $820.31.
        let shift = Shift {
            minutes: 150,
            officers: 2,
            vehicle: true,
            holiday: true,
            short_notice: true,
        };
        assert_eq!(
            total(shift),
            (
                vec![
                    ("labour".into(), 39_000),
                    ("holiday".into(), 19_500),
                    ("short_notice".into(), 14_625),
                    ("vehicle".into(), 5_000),
                    ("admin_fee".into(), 3_906),
                ],
                82_031
            )
        );
    }

    #[test]
    fn odd_minutes_round_half_up_to_the_cent() {
        // 1 officer × 3 h 07 min × $65 = $202.5833… → $202.58; admin 5% = $10.129 → $10.13.
        let shift = Shift {
            minutes: 187,
            officers: 1,
            vehicle: false,
            holiday: false,
            short_notice: false,
        };
        assert_eq!(total(shift).1, 20_258 + 1_013);
    }

    #[test]
    fn cancellation_fee_by_notice_band() {
        let bands = [
            CancellationBand {
                within_hours: 24,
                billed_hours_per_officer: 3,
            },
            CancellationBand {
                within_hours: 2,
                billed_hours_per_officer: 4,
            },
        ];
        let fee = |hours: f64| {
            cancellation_fee(&rates(), &bands, hours, 2)
                .expect("fits")
                .map(|line| line.amount_cents)
        };
        assert_eq!(fee(48.0), None, "more than 24 h notice: free");
        assert_eq!(fee(24.0), None, "exactly 24 h is not less than 24 h");
        assert_eq!(fee(23.9), Some(3 * 2 * 6500));
        assert_eq!(fee(1.5), Some(4 * 2 * 6500), "the shortest band that applies");
        assert_eq!(fee(0.0), Some(4 * 2 * 6500));
    }

    #[test]
    fn a_price_too_large_to_bill_is_refused_not_wrapped() {
        let extreme = Rates {
            hourly_rate_cents: i64::MAX / 1000,
            ..rates()
        };
        let shift = Shift {
            minutes: 24 * 60,
            officers: 100,
            vehicle: true,
            holiday: true,
            short_notice: true,
        };
        assert_eq!(price(&extreme, shift), Err(PriceOverflow));
        let bands = [CancellationBand {
            within_hours: 24,
            billed_hours_per_officer: 24,
        }];
        assert_eq!(cancellation_fee(&extreme, &bands, 1.0, 100), Err(PriceOverflow));
    }

    #[test]
    fn a_fee_is_capped_at_the_booked_price() {
        let bands = [CancellationBand {
            within_hours: 24,
            billed_hours_per_officer: 24,
        }];
        let fee = cancellation_fee(&rates(), &bands, 2.0, 1)
            .expect("priced")
            .expect("a fee");
        assert_eq!(fee.amount_cents, 24 * 6500);
        let booked = 3 * 6500;
        let capped = capped(fee.clone(), booked);
        assert_eq!(capped.amount_cents, booked);
        assert!(capped.description.contains("capped"), "{}", capped.description);
        assert_eq!(super::capped(fee.clone(), fee.amount_cents + 1), fee);
        assert_eq!(sum_cents([i64::MAX, 1]), Err(PriceOverflow));
        assert_eq!(sum_cents([2, 3]), Ok(5));
        assert!(matches!(ApiError::from(PriceOverflow), ApiError::Validation(_)));
    }
}
