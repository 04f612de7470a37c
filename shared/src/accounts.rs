//! Customer and Security Provider accounts of a user, and the e-mail uniqueness lock.

use crate::agencies;
use crate::audit::AuditRecord;
use crate::auth::{Caller, Role};
use crate::consent::{self, ConsentRecord, ConsentSource};
use crate::error::ApiError;
use crate::keys::{sort_prefix, user_partition};
use crate::lookup::normalize_email;
use crate::schema::{self, ItemType};
use crate::store::{ItemKey, Record, Store, StoreError, Versioned, Write};
use crate::tax::{TinType, W9Record};
use crate::validation::{self, Validator};
use crate::{AppState, mail};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// Lifecycle of an account. Only `active` accounts are matched or mailed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Active,
    /// Processing restricted by a privacy request: stored, not used.
    Restricted,
    /// An erasure is under way.
    DeletionPending,
}

/// A postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub city: String,
    pub region: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

/// Whether a customer books as a person or for a business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerKind {
    Individual,
    Business,
}

/// A customer's account as stored (personal fields encrypted by the data layer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerAccount {
    pub user_id: String,
    pub kind: CustomerKind,
    pub status: AccountStatus,
    pub name: String,
    /// E.164.
    pub phone: String,
    /// Normalised (trimmed, lower-cased).
    pub email: String,
    pub date_of_birth: Date,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailing_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_name: Option<String>,
    /// EIN of a business, digits only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_id: Option<String>,
    /// The privacy-policy version the customer accepted.
    pub policy_version: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Record for CustomerAccount {
    const TYPE: &'static ItemType = &schema::CUSTOMER_ACCOUNT;

    fn key(&self) -> ItemKey {
        account_key(&self.user_id, AccountRole::Customer)
    }
}

/// A Security Provider's licence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Licence {
    pub number: String,
    pub issuing_state: String,
    pub kind: String,
    pub expires_on: Date,
}

/// Membership of an agency (tenant), with what seniority ranking needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgencyMembership {
    pub agency_id: String,
    pub badge_number: String,
    pub hire_date: Date,
}

/// What a Security Provider is qualified for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Skill {
    Armed,
    Unarmed,
    Supervisor,
    Vehicle,
}

/// Where a Security Provider works: region codes, or a point and radius.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceArea {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub center: Option<(f64, f64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius_km: Option<f64>,
}

/// A Security Provider's account as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderAccount {
    pub user_id: String,
    pub status: AccountStatus,
    pub legal_name: String,
    pub date_of_birth: Date,
    pub phone: String,
    pub email: String,
    pub home_address: Address,
    pub licence: Licence,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency: Option<AgencyMembership>,
    pub skills: Vec<Skill>,
    pub service_area: ServiceArea,
    pub policy_version: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Record for ProviderAccount {
    const TYPE: &'static ItemType = &schema::PROVIDER_ACCOUNT;

    fn key(&self) -> ItemKey {
        account_key(&self.user_id, AccountRole::Provider)
    }
}

/// Reserves an e-mail for one account of a role. Its key holds a keyed hash of the e-mail
/// ([`crate::lookup::LookupKey`]), never the e-mail itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailLock {
    /// `customer` or `provider`.
    pub role: String,
    /// The hex keyed hash of the normalised e-mail.
    pub email_hash: String,
    pub owner_user_id: String,
    pub created_at: Timestamp,
}

impl EmailLock {
    /// The lock's key for a role and e-mail hash.
    pub fn key_for(role: &str, email_hash: &str) -> ItemKey {
        ItemKey::new(format!("LOCK#EMAIL#{role}#{email_hash}"), "LOCK".to_owned())
    }
}

impl Record for EmailLock {
    const TYPE: &'static ItemType = &schema::EMAIL_LOCK;

    fn key(&self) -> ItemKey {
        Self::key_for(&self.role, &self.email_hash)
    }
}

/// The role an account is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountRole {
    Customer,
    Provider,
}

impl AccountRole {
    /// The lock and Cognito group name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Provider => "provider",
        }
    }

    fn group(self) -> Role {
        match self {
            Self::Customer => Role::Customer,
            Self::Provider => Role::Provider,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Provider => "Security Provider",
        }
    }
}

/// The key of a user's account of `role`.
pub fn account_key(user_id: &str, role: AccountRole) -> ItemKey {
    let suffix = match role {
        AccountRole::Customer => "CUSTOMER",
        AccountRole::Provider => "PROVIDER",
    };
    ItemKey::new(
        user_partition(user_id),
        format!("{}{suffix}", sort_prefix::ACCOUNT),
    )
}

// ------------------------------------------------------------------------------------------ input

/// What `POST /v1/customers` accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerRegistration {
    pub kind: CustomerKind,
    pub name: String,
    pub phone: String,
    pub email: String,
    pub date_of_birth: Date,
    #[serde(default)]
    pub home_address: Option<Address>,
    #[serde(default)]
    pub business_address: Option<Address>,
    #[serde(default)]
    pub mailing_address: Option<Address>,
    #[serde(default)]
    pub business_name: Option<String>,
    /// A business's EIN, with or without the dash.
    #[serde(default)]
    pub ein: Option<String>,
    /// The privacy-policy version the customer accepts.
    pub policy_version: String,
    /// Explicit yes or no to marketing mail; no when absent.
    #[serde(default)]
    pub marketing_consent: bool,
}

/// The W-9 part of a provider registration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct W9Input {
    pub legal_name: String,
    #[serde(default)]
    pub business_name: Option<String>,
    pub tax_classification: TaxClassification,
    pub address: Address,
    pub tin_type: TinType,
    pub tin: String,
    pub certified_at: Timestamp,
}

/// Federal tax classification on a W-9 (line 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaxClassification {
    IndividualSoleProprietor,
    CCorporation,
    SCorporation,
    Partnership,
    TrustEstate,
    LlcC,
    LlcS,
    LlcP,
    Other,
}

impl TaxClassification {
    fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// What `POST /v1/providers` accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderRegistration {
    pub legal_name: String,
    pub date_of_birth: Date,
    pub phone: String,
    pub email: String,
    pub home_address: Address,
    pub licence: Licence,
    #[serde(default)]
    pub agency: Option<AgencyMembership>,
    pub skills: Vec<Skill>,
    pub service_area: ServiceArea,
    pub w9: W9Input,
    pub policy_version: String,
}

/// What `PATCH /v1/me/customer` accepts: the fields to correct.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerCorrection {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub date_of_birth: Option<Date>,
    pub home_address: Option<Address>,
    pub business_address: Option<Address>,
    pub mailing_address: Option<Address>,
    pub business_name: Option<String>,
    pub ein: Option<String>,
}

/// What `PATCH /v1/me/provider` accepts: the fields to correct.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderCorrection {
    pub legal_name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub date_of_birth: Option<Date>,
    pub home_address: Option<Address>,
    pub licence: Option<Licence>,
    pub agency: Option<AgencyMembership>,
    pub skills: Option<Vec<Skill>>,
    pub service_area: Option<ServiceArea>,
}

// ------------------------------------------------------------------------------------------ views

/// A customer account as its owner sees it: tax id masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerView {
    pub user_id: String,
    pub kind: CustomerKind,
    pub status: AccountStatus,
    pub name: String,
    pub phone: String,
    pub email: String,
    pub date_of_birth: Date,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home_address: Option<Address>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_address: Option<Address>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mailing_address: Option<Address>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_name: Option<String>,
    /// Last four digits of the EIN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax_id_last4: Option<String>,
    pub policy_version: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<&CustomerAccount> for CustomerView {
    fn from(account: &CustomerAccount) -> Self {
        Self {
            user_id: account.user_id.clone(),
            kind: account.kind,
            status: account.status,
            name: account.name.clone(),
            phone: account.phone.clone(),
            email: account.email.clone(),
            date_of_birth: account.date_of_birth,
            home_address: account.home_address.clone(),
            business_address: account.business_address.clone(),
            mailing_address: account.mailing_address.clone(),
            business_name: account.business_name.clone(),
            tax_id_last4: account.tax_id.as_deref().map(last4),
            policy_version: account.policy_version.clone(),
            created_at: account.created_at,
            updated_at: account.updated_at,
        }
    }
}

fn last4(digits: &str) -> String {
    digits
        .chars()
        .skip(digits.chars().count().saturating_sub(4))
        .collect()
}

/// A Security Provider account as its owner sees it: TIN masked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderView {
    #[serde(flatten)]
    pub account: ProviderAccount,
    /// From the newest W-9: the kind of TIN and its last four digits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tin_type: Option<TinType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax_id_last4: Option<String>,
}

/// `GET /v1/me`: the caller's accounts, current consent and policy acceptance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Me {
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<CustomerView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderView>,
    pub marketing_consent: bool,
    pub policy: PolicyAcceptance,
}

/// Which privacy-policy version the user accepted, and whether it is the one in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyAcceptance {
    pub accepted_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<String>,
    pub accepted_current: bool,
}

/// The outcome of a registration: the account, and whether this call created it (a repeated
/// identical registration returns the same account without creating anything).
#[derive(Debug, Clone)]
pub struct Registered<V> {
    pub view: V,
    pub created: bool,
}

// ------------------------------------------------------------------------------------------ rules

/// The checks every person's record passes: name, phone, e-mail (the caller's verified sign-in
/// address), date of birth (an adult's).
#[allow(clippy::too_many_arguments)]
fn check_person(
    v: &mut Validator,
    caller: &Caller,
    today: Date,
    name_pointer: &str,
    name: &str,
    phone: &str,
    email: &str,
    date_of_birth: Date,
) {
    v.text(name_pointer, name, 200);
    v.phone("/phone", phone);
    v.email("/email", email);
    let verified = caller.email_verified
        && caller
            .email
            .as_deref()
            .is_some_and(|token_email| normalize_email(token_email) == normalize_email(email));
    if v.is_clean() || validation::is_email(email) {
        v.check(
            verified,
            "/email",
            "must be the verified e-mail address you signed in with",
        );
    }
    if !validation::plausible_birth_date(date_of_birth, today) {
        v.reject("/date_of_birth", "must be a real date of birth");
    } else if !validation::is_adult(date_of_birth, today) {
        v.reject(
            "/date_of_birth",
            "OfficerTRAK accounts are only for people aged 18 or over",
        );
    }
}

/// The policy version a registration accepts must be the one in force (when one is published).
async fn check_policy(state: &AppState, v: &mut Validator, accepted: &str) -> Result<(), ApiError> {
    v.text("/policy_version", accepted, 50);
    if let Some(current) = crate::privacy::current_policy(&state.store).await?
        && current.policy_version != accepted
    {
        v.reject(
            "/policy_version",
            format!("accept the policy version in force, {}", current.policy_version),
        );
    }
    Ok(())
}

/// Address and business rules of a customer account. `ein_given`: an EIN was sent (even one that did
/// not parse, whose error is already recorded).
fn check_customer_shape(v: &mut Validator, account: &CustomerAccount, ein_given: bool) {
    for (pointer, address) in [
        ("/home_address", &account.home_address),
        ("/business_address", &account.business_address),
        ("/mailing_address", &account.mailing_address),
    ] {
        if let Some(address) = address {
            v.address(pointer, address);
        }
    }
    v.check(
        account.home_address.is_some() || account.mailing_address.is_some(),
        "/mailing_address",
        "a mailing or a home address is required",
    );
    match account.kind {
        CustomerKind::Business => {
            match &account.business_name {
                Some(name) => v.text("/business_name", name, 200),
                None => v.reject("/business_name", "is required for a business"),
            }
            match &account.tax_id {
                Some(ein) => v.check(
                    validation::is_valid_ein(ein),
                    "/ein",
                    "must be a valid EIN (NN-NNNNNNN)",
                ),
                None if !ein_given => v.reject("/ein", "is required for a business"),
                None => {}
            }
        }
        CustomerKind::Individual => {
            v.check(
                account.tax_id.is_none() && !ein_given,
                "/ein",
                "only business customers give an EIN",
            );
        }
    }
}

fn ein_digits(v: &mut Validator, ein: Option<&str>) -> Option<String> {
    let ein = ein?;
    let digits = validation::tax_id_digits(ein);
    if digits.is_none() {
        v.reject("/ein", "must be nine digits (NN-NNNNNNN)");
    }
    digits
}

async fn check_provider_shape(
    state: &AppState,
    v: &mut Validator,
    account: &ProviderAccount,
    today: Date,
) -> Result<(), ApiError> {
    v.address("/home_address", &account.home_address);
    let licence = &account.licence;
    v.text("/licence/number", &licence.number, 50);
    v.check(
        licence.issuing_state.len() == 2 && licence.issuing_state.chars().all(|c| c.is_ascii_uppercase()),
        "/licence/issuing_state",
        "must be a two-letter state code such as WY",
    );
    v.text("/licence/kind", &licence.kind, 50);
    v.check(
        licence.expires_on >= today,
        "/licence/expires_on",
        "the licence has expired",
    );
    if let Some(agency) = &account.agency {
        v.text("/agency/badge_number", &agency.badge_number, 50);
        v.check(
            agency.hire_date <= today,
            "/agency/hire_date",
            "must not be in the future",
        );
        if agencies::find(state, &agency.agency_id).await?.is_none() {
            v.reject("/agency/agency_id", "no such agency");
        }
    }
    v.check(!account.skills.is_empty(), "/skills", "name at least one skill");
    let area = &account.service_area;
    match (area.center, area.radius_km) {
        (Some((lat, lon)), Some(radius)) => {
            v.check(
                (-90.0..=90.0).contains(&lat),
                "/service_area/center/0",
                "latitude must be between -90 and 90",
            );
            v.check(
                (-180.0..=180.0).contains(&lon),
                "/service_area/center/1",
                "longitude must be between -180 and 180",
            );
            v.check(
                radius > 0.0 && radius <= 500.0,
                "/service_area/radius_km",
                "must be between 0 and 500 km",
            );
        }
        (None, None) => v.check(
            !area.regions.is_empty(),
            "/service_area",
            "give region codes or a center and radius",
        ),
        _ => v.reject("/service_area", "a center needs a radius and a radius a center"),
    }
    Ok(())
}

fn check_w9(v: &mut Validator, w9: &W9Input, now: Timestamp) -> Option<String> {
    v.text("/w9/legal_name", &w9.legal_name, 200);
    if let Some(name) = &w9.business_name {
        v.text("/w9/business_name", name, 200);
    }
    v.address("/w9/address", &w9.address);
    v.check(
        w9.certified_at <= now + jiff::SignedDuration::from_mins(5),
        "/w9/certified_at",
        "must not be in the future",
    );
    let digits = validation::tax_id_digits(&w9.tin);
    let valid = digits.as_deref().is_some_and(|d| match w9.tin_type {
        TinType::Ssn => validation::is_valid_ssn(d),
        TinType::Ein => validation::is_valid_ein(d),
    });
    v.check(
        valid,
        "/w9/tin",
        match w9.tin_type {
            TinType::Ssn => "must be a valid SSN (NNN-NN-NNNN)",
            TinType::Ein => "must be a valid EIN (NN-NNNNNNN)",
        },
    );
    digits.filter(|_| valid)
}

// ------------------------------------------------------------------------------------------ operations

/// Registers the caller as a customer. Nothing is stored (or logged) unless every rule passes; an
/// under-18 date of birth is refused like any other invalid field.
pub async fn register_customer(
    state: &AppState,
    caller: &Caller,
    input: CustomerRegistration,
) -> Result<Registered<CustomerView>, ApiError> {
    let now = state.clock.now();
    let today = validation::today(now);
    let mut v = Validator::new();
    check_person(
        &mut v,
        caller,
        today,
        "/name",
        &input.name,
        &input.phone,
        &input.email,
        input.date_of_birth,
    );
    let tax_id = ein_digits(&mut v, input.ein.as_deref());
    let account = CustomerAccount {
        user_id: caller.user_id.clone(),
        kind: input.kind,
        status: AccountStatus::Active,
        name: input.name.trim().to_owned(),
        phone: input.phone.clone(),
        email: normalize_email(&input.email),
        date_of_birth: input.date_of_birth,
        home_address: input.home_address,
        business_address: input.business_address,
        mailing_address: input.mailing_address,
        business_name: input.business_name.map(|n| n.trim().to_owned()),
        tax_id,
        policy_version: input.policy_version.clone(),
        created_at: now,
        updated_at: now,
    };
    check_customer_shape(&mut v, &account, input.ein.is_some());
    check_policy(state, &mut v, &input.policy_version).await?;
    v.finish()?;

    let consent = ConsentRecord::marketing(
        &caller.user_id,
        input.marketing_consent,
        &account.policy_version,
        ConsentSource::Registration,
        now,
    );
    let created = register(
        state,
        caller,
        AccountRole::Customer,
        &account,
        &account.email,
        vec![state.store.write_create(&consent)?],
    )
    .await;
    match created {
        Ok(()) => {
            welcome(
                state,
                &account.email,
                mail::first_name(&account.name),
                AccountRole::Customer,
            )
            .await;
            Ok(Registered {
                view: CustomerView::from(&account),
                created: true,
            })
        }
        Err(RegisterError::AccountExists) => {
            let existing = state
                .store
                .get::<CustomerAccount>(&account.key())
                .await?
                .ok_or_else(|| ApiError::Conflict("registration raced with a deletion; try again".into()))?
                .record;
            let same = CustomerAccount {
                created_at: existing.created_at,
                updated_at: existing.updated_at,
                status: existing.status,
                ..account.clone()
            };
            let consent_now = consent::marketing_consent(&state.store, &caller.user_id).await?;
            if same == existing && consent_now == input.marketing_consent {
                join_group(state, caller, AccountRole::Customer).await?;
                Ok(Registered {
                    view: CustomerView::from(&existing),
                    created: false,
                })
            } else {
                Err(ApiError::Conflict("you are already registered as a customer with other details: correct them with PATCH /v1/me/customer".into()))
            }
        }
        Err(RegisterError::EmailTaken) => Err(ApiError::Conflict(
            "this e-mail address is already registered for a customer account".into(),
        )),
        Err(RegisterError::Api(error)) => Err(error),
    }
}

/// Registers the caller as a Security Provider, with the W-9 they certify.
pub async fn register_provider(
    state: &AppState,
    caller: &Caller,
    input: ProviderRegistration,
) -> Result<Registered<ProviderView>, ApiError> {
    let now = state.clock.now();
    let today = validation::today(now);
    let mut v = Validator::new();
    check_person(
        &mut v,
        caller,
        today,
        "/legal_name",
        &input.legal_name,
        &input.phone,
        &input.email,
        input.date_of_birth,
    );
    let account = ProviderAccount {
        user_id: caller.user_id.clone(),
        status: AccountStatus::Active,
        legal_name: input.legal_name.trim().to_owned(),
        date_of_birth: input.date_of_birth,
        phone: input.phone.clone(),
        email: normalize_email(&input.email),
        home_address: input.home_address,
        licence: input.licence,
        agency: input.agency,
        skills: input.skills,
        service_area: input.service_area,
        policy_version: input.policy_version.clone(),
        created_at: now,
        updated_at: now,
    };
    check_provider_shape(state, &mut v, &account, today).await?;
    let tin = check_w9(&mut v, &input.w9, now);
    check_policy(state, &mut v, &input.policy_version).await?;
    v.finish()?;
    let tin = tin.ok_or_else(|| ApiError::BadRequest("the TIN did not validate".into()))?;
    let w9 = W9Record {
        user_id: caller.user_id.clone(),
        legal_name: input.w9.legal_name.trim().to_owned(),
        business_name: input.w9.business_name,
        tax_classification: input.w9.tax_classification.as_str(),
        address: input.w9.address,
        tin_type: input.w9.tin_type,
        tax_id: tin,
        certified_at: input.w9.certified_at,
    };
    let created = register(
        state,
        caller,
        AccountRole::Provider,
        &account,
        &account.email,
        vec![state.store.write_create(&w9)?],
    )
    .await;
    match created {
        Ok(()) => {
            welcome(
                state,
                &account.email,
                mail::first_name(&account.legal_name),
                AccountRole::Provider,
            )
            .await;
            Ok(Registered {
                view: provider_view(account, Some(&w9)),
                created: true,
            })
        }
        Err(RegisterError::AccountExists) => {
            let existing = state
                .store
                .get::<ProviderAccount>(&account.key())
                .await?
                .ok_or_else(|| ApiError::Conflict("registration raced with a deletion; try again".into()))?
                .record;
            let same = ProviderAccount {
                created_at: existing.created_at,
                updated_at: existing.updated_at,
                status: existing.status,
                ..account.clone()
            };
            let newest_w9 = newest_w9(state, &caller.user_id).await?;
            let same_w9 = newest_w9.as_ref().is_some_and(|stored| {
                W9Record {
                    certified_at: stored.certified_at,
                    ..w9.clone()
                } == *stored
            });
            if same == existing && same_w9 {
                join_group(state, caller, AccountRole::Provider).await?;
                Ok(Registered {
                    view: provider_view(existing, newest_w9.as_ref()),
                    created: false,
                })
            } else {
                Err(ApiError::Conflict("you are already registered as a Security Provider with other details: correct them with PATCH /v1/me/provider".into()))
            }
        }
        Err(RegisterError::EmailTaken) => Err(ApiError::Conflict(
            "this e-mail address is already registered for a Security Provider account".into(),
        )),
        Err(RegisterError::Api(error)) => Err(error),
    }
}

enum RegisterError {
    AccountExists,
    EmailTaken,
    Api(ApiError),
}

impl<E: Into<ApiError>> From<E> for RegisterError {
    fn from(error: E) -> Self {
        Self::Api(error.into())
    }
}

/// The shared part of registering: the user's key, then account + e-mail lock + `extra` in one
/// transaction, then the Cognito group.
async fn register<R: Record>(
    state: &AppState,
    caller: &Caller,
    role: AccountRole,
    account: &R,
    email: &str,
    extra: Vec<Write>,
) -> Result<(), RegisterError> {
    state.keys.create_user_key(&caller.user_id).await?;
    let lock = EmailLock {
        role: role.name().to_owned(),
        email_hash: state.lookup.email_hash(email).await?,
        owner_user_id: caller.user_id.clone(),
        created_at: state.clock.now(),
    };
    let mut writes = vec![
        state.store.write_create(account)?,
        state.store.write_create(&lock)?,
    ];
    writes.extend(extra);
    match state.store.transact(writes).await {
        Ok(()) => {
            tracing::info!(user_id = %caller.user_id, role = role.name(), "account registered");
            join_group(state, caller, role).await?;
            Ok(())
        }
        Err(StoreError::TransactionCancelled(reasons))
            if reasons.first().is_some_and(|r| r == "ConditionalCheckFailed") =>
        {
            Err(RegisterError::AccountExists)
        }
        Err(StoreError::TransactionCancelled(reasons))
            if reasons.get(1).is_some_and(|r| r == "ConditionalCheckFailed") =>
        {
            Err(RegisterError::EmailTaken)
        }
        Err(error) => Err(error.into()),
    }
}

/// Puts the user in the Cognito group of `role`, so their next token carries it. Idempotent.
async fn join_group(state: &AppState, caller: &Caller, role: AccountRole) -> Result<(), ApiError> {
    if caller.has(role.group()) {
        return Ok(());
    }
    state
        .identity
        .admin_add_user_to_group()
        .user_pool_id(&state.config.user_pool_id)
        .username(caller.username.as_deref().unwrap_or(&caller.user_id))
        .group_name(role.group().group_name())
        .send()
        .await
        .map_err(|error| {
            ApiError::Internal(format!(
                "adding the user to a group: {}",
                aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(error)
            ))
        })?;
    Ok(())
}

/// The welcome mail; a failure to send is logged (without the address) and does not fail the
/// registration.
async fn welcome(state: &AppState, email: &str, first_name: &str, role: AccountRole) {
    let message = mail::welcome(first_name, role.label());
    if let Err(error) = mail::send(&state.mail, &state.config.mail_sender, email, &message).await {
        tracing::warn!(error = %error, role = role.name(), "welcome mail not sent");
    }
}

async fn newest_w9(state: &AppState, user_id: &str) -> Result<Option<W9Record>, StoreError> {
    Ok(state
        .store
        .latest::<W9Record>(&user_partition(user_id), "TAX#W9#")
        .await?
        .map(|v| v.record))
}

fn provider_view(account: ProviderAccount, w9: Option<&W9Record>) -> ProviderView {
    ProviderView {
        account,
        tin_type: w9.map(|w| w.tin_type),
        tax_id_last4: w9.map(|w| last4(&w.tax_id)),
    }
}

/// `GET /v1/me`: 404 until the caller holds an account.
pub async fn me(state: &AppState, caller: &Caller) -> Result<Me, ApiError> {
    let customer = state
        .store
        .get::<CustomerAccount>(&account_key(&caller.user_id, AccountRole::Customer))
        .await?;
    let provider = state
        .store
        .get::<ProviderAccount>(&account_key(&caller.user_id, AccountRole::Provider))
        .await?;
    if customer.is_none() && provider.is_none() {
        return Err(ApiError::NotFound("account"));
    }
    let w9 = if provider.is_some() {
        newest_w9(state, &caller.user_id).await?
    } else {
        None
    };
    let accepted_version = customer
        .as_ref()
        .map(|c| c.record.policy_version.clone())
        .into_iter()
        .chain(provider.as_ref().map(|p| p.record.policy_version.clone()))
        .max()
        .unwrap_or_default();
    let current_version = crate::privacy::current_policy(&state.store)
        .await?
        .map(|p| p.policy_version);
    Ok(Me {
        user_id: caller.user_id.clone(),
        customer: customer.map(|c| CustomerView::from(&c.record)),
        provider: provider.map(|p| provider_view(p.record, w9.as_ref())),
        marketing_consent: consent::marketing_consent(&state.store, &caller.user_id).await?,
        policy: PolicyAcceptance {
            accepted_current: current_version
                .as_ref()
                .is_none_or(|current| *current == accepted_version),
            accepted_version,
            current_version,
        },
    })
}

/// The names of the fields that differ between two versions of a record (for the audit trail:
/// names only). `updated_at` is not a correction.
fn changed_fields<T: Serialize>(before: &T, after: &T) -> Vec<String> {
    let (Ok(serde_json::Value::Object(before)), Ok(serde_json::Value::Object(after))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return Vec::new();
    };
    let mut names: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|name| name.as_str() != "updated_at" && before.get(*name) != after.get(*name))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

/// `PATCH /v1/me/customer`: corrects fields of the caller's customer account. Audited (field names
/// only). A new e-mail must be the caller's verified sign-in address; its lock moves with it.
pub async fn correct_customer(
    state: &AppState,
    caller: &Caller,
    correction: CustomerCorrection,
) -> Result<CustomerView, ApiError> {
    let current = state
        .store
        .get::<CustomerAccount>(&account_key(&caller.user_id, AccountRole::Customer))
        .await?
        .ok_or(ApiError::NotFound("customer account"))?;
    let before = current.record.clone();
    let now = state.clock.now();
    let mut v = Validator::new();
    let tax_id = ein_digits(&mut v, correction.ein.as_deref());
    let after = CustomerAccount {
        name: correction
            .name
            .map(|n| n.trim().to_owned())
            .unwrap_or(before.name.clone()),
        phone: correction.phone.unwrap_or(before.phone.clone()),
        email: correction
            .email
            .as_deref()
            .map(normalize_email)
            .unwrap_or(before.email.clone()),
        date_of_birth: correction.date_of_birth.unwrap_or(before.date_of_birth),
        home_address: correction.home_address.or(before.home_address.clone()),
        business_address: correction.business_address.or(before.business_address.clone()),
        mailing_address: correction.mailing_address.or(before.mailing_address.clone()),
        business_name: correction
            .business_name
            .map(|n| n.trim().to_owned())
            .or(before.business_name.clone()),
        tax_id: tax_id.or(before.tax_id.clone()),
        updated_at: now,
        ..before.clone()
    };
    let email_changed = after.email != before.email;
    check_correction_person(
        &mut v,
        caller,
        validation::today(now),
        "/name",
        &after.name,
        &after.phone,
        &after.email,
        after.date_of_birth,
        email_changed,
    );
    check_customer_shape(&mut v, &after, false);
    v.finish()?;
    let fields = changed_fields(&before, &after);
    if fields.is_empty() {
        return Ok(CustomerView::from(&before));
    }
    apply_correction(
        state,
        caller,
        AccountRole::Customer,
        &after,
        current.version,
        &before.email,
        &after.email,
        fields,
        "customer.corrected",
    )
    .await?;
    Ok(CustomerView::from(&after))
}

/// `PATCH /v1/me/provider`: corrects fields of the caller's provider account (audited).
pub async fn correct_provider(
    state: &AppState,
    caller: &Caller,
    correction: ProviderCorrection,
) -> Result<ProviderView, ApiError> {
    let current = state
        .store
        .get::<ProviderAccount>(&account_key(&caller.user_id, AccountRole::Provider))
        .await?
        .ok_or(ApiError::NotFound("provider account"))?;
    let before = current.record.clone();
    let now = state.clock.now();
    let after = ProviderAccount {
        legal_name: correction
            .legal_name
            .map(|n| n.trim().to_owned())
            .unwrap_or(before.legal_name.clone()),
        phone: correction.phone.unwrap_or(before.phone.clone()),
        email: correction
            .email
            .as_deref()
            .map(normalize_email)
            .unwrap_or(before.email.clone()),
        date_of_birth: correction.date_of_birth.unwrap_or(before.date_of_birth),
        home_address: correction.home_address.unwrap_or(before.home_address.clone()),
        licence: correction.licence.unwrap_or(before.licence.clone()),
        agency: correction.agency.or(before.agency.clone()),
        skills: correction.skills.unwrap_or(before.skills.clone()),
        service_area: correction.service_area.unwrap_or(before.service_area.clone()),
        updated_at: now,
        ..before.clone()
    };
    let mut v = Validator::new();
    let email_changed = after.email != before.email;
    check_correction_person(
        &mut v,
        caller,
        validation::today(now),
        "/legal_name",
        &after.legal_name,
        &after.phone,
        &after.email,
        after.date_of_birth,
        email_changed,
    );
    check_provider_shape(state, &mut v, &after, validation::today(now)).await?;
    v.finish()?;
    let w9 = newest_w9(state, &caller.user_id).await?;
    let fields = changed_fields(&before, &after);
    if fields.is_empty() {
        return Ok(provider_view(before, w9.as_ref()));
    }
    apply_correction(
        state,
        caller,
        AccountRole::Provider,
        &after,
        current.version,
        &before.email,
        &after.email,
        fields,
        "provider.corrected",
    )
    .await?;
    Ok(provider_view(after, w9.as_ref()))
}

/// Like [`check_person`], but the e-mail must be the verified sign-in address only when it changes.
#[allow(clippy::too_many_arguments)]
fn check_correction_person(
    v: &mut Validator,
    caller: &Caller,
    today: Date,
    name_pointer: &str,
    name: &str,
    phone: &str,
    email: &str,
    date_of_birth: Date,
    email_changed: bool,
) {
    let mut inner = Validator::new();
    check_person(
        &mut inner,
        caller,
        today,
        name_pointer,
        name,
        phone,
        email,
        date_of_birth,
    );
    if let Err(ApiError::Validation(errors)) = inner.finish() {
        for error in errors {
            let about_verification =
                error.pointer == "/email" && error.detail.starts_with("must be the verified");
            if !about_verification || email_changed {
                let detail = if about_verification {
                    "verify the new address with your sign-in first (it must be your verified sign-in e-mail)"
                        .to_owned()
                } else {
                    error.detail
                };
                v.reject(error.pointer, detail);
            }
        }
    }
}

/// Replaces the account (optimistic lock), moves the e-mail lock when the address changed, and
/// writes the audit record, all in one transaction.
#[allow(clippy::too_many_arguments)]
async fn apply_correction<R: Record>(
    state: &AppState,
    caller: &Caller,
    role: AccountRole,
    after: &R,
    version: u64,
    old_email: &str,
    new_email: &str,
    fields: Vec<String>,
    action: &str,
) -> Result<(), ApiError> {
    let now = state.clock.now();
    let audit = AuditRecord::new(&caller.user_id, &caller.user_id, action, fields, now);
    let mut writes = vec![
        state.store.write_replace(after, version)?,
        state.store.write_create(&audit)?,
    ];
    if old_email != new_email {
        let old_hash = state.lookup.email_hash(old_email).await?;
        let new_hash = state.lookup.email_hash(new_email).await?;
        let lock = EmailLock {
            role: role.name().to_owned(),
            email_hash: new_hash,
            owner_user_id: caller.user_id.clone(),
            created_at: now,
        };
        writes.push(
            state
                .store
                .write_delete(&EmailLock::key_for(role.name(), &old_hash))?,
        );
        writes.push(state.store.write_create(&lock)?);
    }
    match state.store.transact(writes).await {
        Ok(()) => {
            tracing::info!(user_id = %caller.user_id, action, "account corrected");
            Ok(())
        }
        Err(StoreError::TransactionCancelled(reasons))
            if reasons.first().is_some_and(|r| r == "ConditionalCheckFailed") =>
        {
            Err(ApiError::Conflict(
                "the account changed meanwhile: read it again and retry".into(),
            ))
        }
        Err(StoreError::TransactionCancelled(reasons))
            if reasons.get(3).is_some_and(|r| r == "ConditionalCheckFailed") =>
        {
            Err(ApiError::Conflict(format!(
                "this e-mail address is already registered for a {} account",
                role.name()
            )))
        }
        Err(error) => Err(error.into()),
    }
}

/// What `POST /v1/me/consents` accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentChange {
    /// Yes or no to marketing mail.
    pub marketing: bool,
    /// Where the user decided.
    pub source: ConsentSource,
}

/// The answer to a consent change.
#[derive(Debug, Clone, Serialize)]
pub struct ConsentState {
    pub marketing: bool,
    pub policy_version: String,
    pub recorded_at: Timestamp,
}

/// Records a marketing-consent decision; from now on it is what the mailer obeys.
pub async fn set_consent(
    state: &AppState,
    caller: &Caller,
    change: ConsentChange,
) -> Result<ConsentState, ApiError> {
    let me = me(state, caller).await?;
    let record = ConsentRecord::marketing(
        &caller.user_id,
        change.marketing,
        &me.policy.accepted_version,
        change.source,
        state.clock.now(),
    );
    state.store.create(&record).await?;
    tracing::info!(user_id = %caller.user_id, granted = change.marketing, "marketing consent recorded");
    Ok(ConsentState {
        marketing: record.granted,
        policy_version: record.policy_version,
        recorded_at: record.recorded_at,
    })
}

/// Reads accounts for other domains.
pub async fn customer(
    store: &Store,
    user_id: &str,
) -> Result<Option<Versioned<CustomerAccount>>, StoreError> {
    store
        .get::<CustomerAccount>(&account_key(user_id, AccountRole::Customer))
        .await
}
