//! Agencies: the tenants. Each has its own rates and rules, which quoting, booking and scheduling
//! read. Only ops create agencies; an agency's admins read and change its settings.

use edge::auth::{Caller, Role};
use edge::error::ApiError;
use edge::validation::Validator;
use jiff::Timestamp;
use jiff::civil::Date;
use platform::AppState;
use platform::keys::agency_partition;
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record, StoreError};
use serde::{Deserialize, Serialize};

/// How long worked shifts are remembered on a roster, and so the longest fairness window an agency
/// may choose (days).
pub const WORKED_MEMORY_DAYS: i64 = 90;

/// The largest hourly rate or vehicle charge an agency may set, in cents ($10,000.00): far above any
/// real rate sheet, and low enough that no bounded booking overflows the price arithmetic.
pub const MAX_RATE_CENTS: i64 = 1_000_000;

/// How an agency fills open slots by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentMode {
    /// First officer to claim gets the slot.
    FirstCome,
    /// Fewest hours worked recently first (fairness).
    FewestHours,
    /// Earliest hire date first.
    Seniority,
    /// Longest since last detail first.
    Rotation,
}

/// Prices, in integer cents and whole percent: money is never a float.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    /// Per officer-hour.
    pub hourly_rate_cents: i64,
    /// Hours billed at least per officer and shift.
    pub minimum_hours: u32,
    /// Applied on the agency's holidays, e.g. 150.
    pub holiday_multiplier_percent: u32,
    /// Applied when booked less than `short_notice_hours` ahead, e.g. 125.
    pub short_notice_multiplier_percent: u32,
    pub short_notice_hours: u32,
    /// Per officer and shift when a vehicle is required.
    pub vehicle_charge_cents: i64,
    /// On the subtotal, e.g. 5.
    pub admin_fee_percent: u32,
}

/// Booking and staffing rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// How far ahead a request must be made.
    pub lead_time_hours: u32,
    pub min_duration_hours: u32,
    pub max_duration_hours: u32,
    /// A supervisor is required when this many officers or more are requested.
    pub supervisor_required_at: u32,
    /// Officers required at least when alcohol is served.
    pub alcohol_minimum_officers: u32,
    /// Cap on an officer's hours per week with this agency.
    pub weekly_hour_cap: u32,
    /// Rest required between two shifts of an officer.
    pub min_rest_hours: u32,
    pub default_assignment_mode: AssignmentMode,
    /// How long an officer has to confirm an assignment.
    pub confirmation_window_hours: u32,
    /// The look-back of the `fewest_hours` ranking, in days.
    #[serde(default = "default_fairness_window_days")]
    pub fairness_window_days: u32,
    /// How long before the start an assigned officer sees the street address, the on-site contact
    /// and the notes (least data, least time); until then, only the city and region.
    #[serde(default = "default_site_details_hours_before")]
    pub site_details_hours_before: u32,
    /// How long an approved membership lasts before the agency must verify the officer again.
    #[serde(default = "default_reverification_months")]
    pub reverification_months: u32,
    /// Whether an admin or dispatcher approves each booking before officers see it.
    #[serde(default)]
    pub approve_requests: bool,
    /// Minutes after the start an officer who has not checked in is a no-show (the slot reopens).
    #[serde(default = "default_no_show_after_minutes")]
    pub no_show_after_minutes: u32,
    /// Hours after the end the scheduled run completes a request whose officers did not all check out.
    #[serde(default = "default_completion_grace_hours")]
    pub completion_grace_hours: u32,
}

fn default_no_show_after_minutes() -> u32 {
    15
}

fn default_completion_grace_hours() -> u32 {
    4
}

fn default_reverification_months() -> u32 {
    12
}

fn default_fairness_window_days() -> u32 {
    28
}

fn default_site_details_hours_before() -> u32 {
    48
}

/// Most bands a fee schedule has.
pub const MAX_CANCELLATION_BANDS: usize = 8;

/// The longest notice a fee band reaches back: a week before the start.
pub const MAX_CANCELLATION_NOTICE_HOURS: u32 = 168;

/// One band of the cancellation fee schedule: cancelling less than `within_hours` before the start
/// bills `billed_hours_per_officer` hours per officer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancellationBand {
    pub within_hours: u32,
    pub billed_hours_per_officer: u32,
}

/// An agency's settings, as created by ops and changed by its admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgencySettings {
    pub agency_name: String,
    /// IANA time zone of the agency's area, e.g. `America/Denver`.
    pub time_zone: String,
    pub admin_user_ids: Vec<String>,
    #[serde(default)]
    pub dispatcher_user_ids: Vec<String>,
    pub rates: Rates,
    pub rules: Rules,
    #[serde(default)]
    pub cancellation_fees: Vec<CancellationBand>,
    #[serde(default)]
    pub holidays: Vec<Date>,
}

/// A stored agency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agency {
    pub agency_id: String,
    #[serde(flatten)]
    pub settings: AgencySettings,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Agency {
    /// The key of agency `agency_id`.
    pub fn key_of(agency_id: &str) -> ItemKey {
        ItemKey::new(agency_partition(agency_id), "PROFILE".to_owned())
    }
}

impl Record for Agency {
    const TYPE: &'static ItemType = &schema::AGENCY;

    fn key(&self) -> ItemKey {
        Self::key_of(&self.agency_id)
    }
}

fn validate(settings: &AgencySettings) -> Result<(), ApiError> {
    let mut v = Validator::new();
    v.text("/agency_name", &settings.agency_name, 200);
    v.check(
        jiff::tz::TimeZone::get(&settings.time_zone).is_ok(),
        "/time_zone",
        "must be an IANA time zone such as America/Denver",
    );
    v.check(
        !settings.admin_user_ids.is_empty(),
        "/admin_user_ids",
        "needs at least one admin",
    );
    let rates = &settings.rates;
    v.check(
        (1..=MAX_RATE_CENTS).contains(&rates.hourly_rate_cents),
        "/rates/hourly_rate_cents",
        "must be positive and at most 1000000 ($10,000.00)",
    );
    v.check(
        (0..=MAX_RATE_CENTS).contains(&rates.vehicle_charge_cents),
        "/rates/vehicle_charge_cents",
        "must be between 0 and 1000000 ($10,000.00)",
    );
    v.check(
        rates.minimum_hours <= 24,
        "/rates/minimum_hours",
        "must be at most 24",
    );
    for (field, value) in [
        ("holiday_multiplier_percent", rates.holiday_multiplier_percent),
        (
            "short_notice_multiplier_percent",
            rates.short_notice_multiplier_percent,
        ),
    ] {
        v.check(
            (100..=500).contains(&value),
            format!("/rates/{field}"),
            "must be between 100 and 500",
        );
    }
    v.check(
        rates.admin_fee_percent <= 50,
        "/rates/admin_fee_percent",
        "must be at most 50",
    );
    let rules = &settings.rules;
    v.check(
        rules.min_duration_hours >= 1,
        "/rules/min_duration_hours",
        "must be at least 1",
    );
    v.check(
        rules.max_duration_hours >= rules.min_duration_hours && rules.max_duration_hours <= 24,
        "/rules/max_duration_hours",
        "must be between min_duration_hours and 24",
    );
    v.check(
        rules.supervisor_required_at >= 1,
        "/rules/supervisor_required_at",
        "must be at least 1",
    );
    v.check(
        rules.weekly_hour_cap >= 1 && rules.weekly_hour_cap <= 168,
        "/rules/weekly_hour_cap",
        "must be between 1 and 168",
    );
    v.check(
        (1..=336).contains(&rules.site_details_hours_before),
        "/rules/site_details_hours_before",
        "must be between 1 and 336 (two weeks)",
    );
    v.check(
        (1..=240).contains(&rules.no_show_after_minutes),
        "/rules/no_show_after_minutes",
        "must be between 1 and 240",
    );
    v.check(
        (1..=72).contains(&rules.completion_grace_hours),
        "/rules/completion_grace_hours",
        "must be between 1 and 72",
    );
    v.check(
        (1..=36).contains(&rules.reverification_months),
        "/rules/reverification_months",
        "must be between 1 and 36",
    );
    v.check(
        (1..=WORKED_MEMORY_DAYS as u32).contains(&rules.fairness_window_days),
        "/rules/fairness_window_days",
        "must be between 1 and 90",
    );
    v.check(
        (1..=720).contains(&rules.confirmation_window_hours),
        "/rules/confirmation_window_hours",
        "must be between 1 and 720",
    );
    v.check(
        rules.min_rest_hours <= 24,
        "/rules/min_rest_hours",
        "must be at most 24",
    );
    // Bounded, so that a fee stays a fee for short notice (a booking's own bands are fixed when it
    // is booked, and its fee never exceeds its price either way).
    v.check(
        settings.cancellation_fees.len() <= MAX_CANCELLATION_BANDS,
        "/cancellation_fees",
        "at most 8 bands",
    );
    for (index, band) in settings.cancellation_fees.iter().enumerate() {
        v.check(
            (1..=MAX_CANCELLATION_NOTICE_HOURS).contains(&band.within_hours),
            format!("/cancellation_fees/{index}/within_hours"),
            "must be between 1 and 168 (a week)",
        );
        v.check(
            band.billed_hours_per_officer <= 24,
            format!("/cancellation_fees/{index}/billed_hours_per_officer"),
            "must be at most 24",
        );
    }
    v.finish()
}

/// Creates an agency (ops only).
pub async fn create(state: &AppState, caller: &Caller, settings: AgencySettings) -> Result<Agency, ApiError> {
    caller.require(Role::Ops)?;
    validate(&settings)?;
    let now = state.clock.now();
    let agency = Agency {
        agency_id: uuid::Uuid::new_v4().to_string(),
        settings,
        created_at: now,
        updated_at: now,
    };
    state.store.create(&agency).await?;
    tracing::info!(agency_id = %agency.agency_id, "agency created");
    Ok(agency)
}

/// Reads an agency: ops, or an agency admin of that agency. Others get 404 (they may not learn
/// which agencies exist), callers without either role 403.
pub async fn read(state: &AppState, caller: &Caller, agency_id: &str) -> Result<Agency, ApiError> {
    Ok(readable(state, caller, agency_id).await?.record)
}

async fn readable(
    state: &AppState,
    caller: &Caller,
    agency_id: &str,
) -> Result<platform::store::Versioned<Agency>, ApiError> {
    if !caller.has(Role::Ops) {
        caller.require(Role::AgencyAdmin)?;
    }
    let agency = state
        .store
        .get::<Agency>(&Agency::key_of(agency_id))
        .await?
        .ok_or(ApiError::NotFound("agency"))?;
    if caller.has(Role::Ops) || agency.record.settings.admin_user_ids.contains(&caller.user_id) {
        Ok(agency)
    } else {
        Err(ApiError::NotFound("agency"))
    }
}

/// Replaces an agency's settings (ops, or an admin of that agency).
pub async fn update(
    state: &AppState,
    caller: &Caller,
    agency_id: &str,
    settings: AgencySettings,
) -> Result<Agency, ApiError> {
    let current = readable(state, caller, agency_id).await?;
    validate(&settings)?;
    let agency = Agency {
        settings,
        updated_at: state.clock.now(),
        ..current.record
    };
    match state.store.replace(&agency, current.version).await {
        Ok(_) => Ok(agency),
        Err(StoreError::ConditionFailed) => Err(ApiError::Conflict(
            "the agency changed meanwhile: read it again".into(),
        )),
        Err(error) => Err(error.into()),
    }
}

/// The agency `agency_id`, for other domains (booking, scheduling) that apply its rules.
pub async fn find(state: &AppState, agency_id: &str) -> Result<Option<Agency>, StoreError> {
    Ok(state
        .store
        .get::<Agency>(&Agency::key_of(agency_id))
        .await?
        .map(|v| v.record))
}
