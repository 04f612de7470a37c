//! The field rules of accounts, one place for registration and corrections alike: a person's
//! name, phone, date of birth (18 or older) and addresses, the customer and provider shapes, the EIN,
//! the W-9 and the policy version accepted.

use super::*;

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
    audience: crate::policy::Audience,
) -> Result<(), ApiError> {
    v.text("/policy_version", accepted, 50);
    if let Some(current) = crate::policy::current_policy_of(&state.store, audience).await?
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

pub(super) fn check_provider_shape(v: &mut Validator, account: &ProviderAccount, today: Date) {
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
}

/// A W-9's certification starts its 7-year retention, so its date is bounded on both sides: not in
/// the future, and not before `signed_up` (the person's sign-up), with 5 minutes of clock skew.
pub(super) fn check_w9(
    v: &mut Validator,
    w9: &W9Input,
    now: Timestamp,
    signed_up: Timestamp,
) -> Option<String> {
    v.text("/w9/legal_name", &w9.legal_name, 200);
    if let Some(name) = &w9.business_name {
        v.text("/w9/business_name", name, 200);
    }
    v.address("/w9/address", &w9.address);
    let skew = jiff::SignedDuration::from_mins(5);
    v.check(
        w9.certified_at <= now + skew,
        "/w9/certified_at",
        "must not be in the future",
    );
    v.check(
        w9.certified_at >= signed_up.checked_sub(skew).unwrap_or(Timestamp::MIN),
        "/w9/certified_at",
        "must not be before you signed up",
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
