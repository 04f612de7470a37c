//! Registering as a customer or a Security Provider: the inputs, their checks, the locked write of
//! the account with its e-mail lock, the user-pool group and the welcome mail.

use super::*;

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

/// The checks every person's record passes: name, phone, e-mail (the caller's verified sign-in
/// address), date of birth (an adult's).
#[allow(clippy::too_many_arguments)]
pub(super) fn check_person(
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
pub(super) async fn check_policy(
    state: &AppState,
    v: &mut Validator,
    accepted: &str,
) -> Result<(), ApiError> {
    v.text("/policy_version", accepted, 50);
    if let Some(current) = crate::policy::current_policy(&state.store).await?
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
pub(super) fn check_customer_shape(v: &mut Validator, account: &CustomerAccount, ein_given: bool) {
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

pub(super) fn ein_digits(v: &mut Validator, ein: Option<&str>) -> Option<String> {
    let ein = ein?;
    let digits = validation::tax_id_digits(ein);
    if digits.is_none() {
        v.reject("/ein", "must be nine digits (NN-NNNNNNN)");
    }
    digits
}

pub(super) async fn check_provider_shape(
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

pub(super) fn check_w9(v: &mut Validator, w9: &W9Input, now: Timestamp) -> Option<String> {
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

pub(super) enum RegisterError {
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
pub(super) async fn register<R: Record>(
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
pub(super) async fn join_group(state: &AppState, caller: &Caller, role: AccountRole) -> Result<(), ApiError> {
    if caller.has(role.group()) {
        return Ok(());
    }
    state
        .directory
        .add_to_group(
            caller.username.as_deref().unwrap_or(&caller.user_id),
            role.group().group_name(),
        )
        .await
        .map_err(|error| ApiError::Internal(format!("adding the user to a group: {error}")))?;
    Ok(())
}

/// The welcome mail; a failure to send is logged (without the address) and does not fail the
/// registration.
pub(super) async fn welcome(state: &AppState, email: &str, first_name: &str, role: AccountRole) {
    let message = mail::welcome(first_name, role.label());
    if let Err(error) = state.mailer.send(email, &message).await {
        tracing::warn!(error = %error, role = role.name(), "welcome mail not sent");
    }
}
