//! A user's own view of their accounts (`GET /v1/me`), corrections of their fields and their
//! consents.

use super::*;

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
    /// The agencies the officer belongs or applied to, and where each stands.
    pub memberships: Vec<memberships::MembershipView>,
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
    /// The acceptance of the policy of the caller's first role: the Users' policy for a customer,
    /// else the Security Provider policy (see `policies` for both).
    pub policy: PolicyAcceptance,
    /// Each policy the caller is under, one per role they hold: a person who is both customer and
    /// provider is under each for that role.
    pub policies: Policies,
}

/// The acceptance of each of the two privacy policies the caller is under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policies {
    /// The Applications Privacy Policy (as a customer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<PolicyAcceptance>,
    /// The Security Provider privacy policy (as a provider).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub providers: Option<PolicyAcceptance>,
}

impl PolicyAcceptance {
    fn of(accepted_version: String, current_version: Option<String>) -> Self {
        Self {
            accepted_current: current_version
                .as_ref()
                .is_none_or(|current| *current == accepted_version),
            accepted_version,
            current_version,
        }
    }
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

pub(super) async fn newest_w9(state: &AppState, user_id: &str) -> Result<Option<W9Record>, StoreError> {
    Ok(state
        .store
        .latest::<W9Record>(&user_partition(user_id), "TAX#W9#")
        .await?
        .map(|v| v.record))
}

pub(super) fn provider_view(
    account: ProviderAccount,
    w9: Option<&W9Record>,
    memberships: &[Versioned<memberships::Membership>],
) -> ProviderView {
    ProviderView {
        account,
        tin_type: w9.map(|w| w.tin_type),
        tax_id_last4: w9.map(|w| last4(&w.tax_id)),
        memberships: memberships
            .iter()
            .map(|m| memberships::MembershipView::from(&m.record))
            .collect(),
    }
}

/// `GET /v1/me`: 404 until the caller holds an account. The accounts, the current consent and the
/// policy in force are read in one request (a provider's W-9 and memberships add two Queries).
pub async fn me(state: &AppState, caller: &Caller) -> Result<Me, ApiError> {
    let customer_key = account_key(&caller.user_id, AccountRole::Customer);
    let provider_key = account_key(&caller.user_id, AccountRole::Provider);
    let consent_key = consent::ConsentState::key_of(&caller.user_id, consent::MARKETING);
    let policy_key = crate::policy::current_key_of(crate::policy::Audience::Users);
    let provider_policy_key = crate::policy::current_key_of(crate::policy::Audience::Providers);
    let mut fetched = state
        .store
        .get_many(&[
            customer_key.clone(),
            provider_key.clone(),
            consent_key.clone(),
            policy_key.clone(),
            provider_policy_key.clone(),
        ])
        .await?;
    let customer = fetched.take::<CustomerAccount>(&customer_key)?;
    let provider = fetched.take::<ProviderAccount>(&provider_key)?;
    if customer.is_none() && provider.is_none() {
        return Err(ApiError::NotFound("account"));
    }
    let (w9, memberships) = if provider.is_some() {
        (
            newest_w9(state, &caller.user_id).await?,
            memberships::memberships_of(&state.store, &caller.user_id).await?,
        )
    } else {
        (None, Vec::new())
    };
    let current_of = |fetched: &mut platform::store::Fetched, key: &ItemKey| {
        fetched
            .take::<crate::policy::PolicyVersion>(key)
            .map(|found| found.map(|p| p.record.policy_version))
    };
    let users_current = current_of(&mut fetched, &policy_key)?;
    let providers_current = current_of(&mut fetched, &provider_policy_key)?;
    let policies = Policies {
        users: customer
            .as_ref()
            .map(|c| PolicyAcceptance::of(c.record.policy_version.clone(), users_current)),
        providers: provider
            .as_ref()
            .map(|p| PolicyAcceptance::of(p.record.policy_version.clone(), providers_current)),
    };
    let marketing_consent = match fetched.take::<consent::ConsentState>(&consent_key)? {
        Some(current) => current.record.granted,
        // Decisions recorded before the state item existed.
        None => consent::newest_in_history(&state.store, &caller.user_id).await?,
    };
    Ok(Me {
        user_id: caller.user_id.clone(),
        customer: customer.map(|c| CustomerView::from(&c.record)),
        provider: provider.map(|p| provider_view(p.record, w9.as_ref(), &memberships)),
        marketing_consent,
        policy: policies
            .users
            .clone()
            .or_else(|| policies.providers.clone())
            .ok_or(ApiError::NotFound("account"))?,
        policies,
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
    check_provider_shape(&mut v, &after, validation::today(now));
    v.finish()?;
    let w9 = newest_w9(state, &caller.user_id).await?;
    let fields = changed_fields(&before, &after);
    if fields.is_empty() {
        let memberships = memberships::memberships_of(&state.store, &caller.user_id).await?;
        return Ok(provider_view(before, w9.as_ref(), &memberships));
    }
    let verified_changed = after.skills != before.skills || after.licence != before.licence;
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
    if verified_changed {
        // Every agency verified the skills and the licence: each verifies them again.
        memberships::unverify_all(state, &caller.user_id, now).await?;
    }
    let memberships = memberships::memberships_of(&state.store, &caller.user_id).await?;
    Ok(provider_view(after, w9.as_ref(), &memberships))
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
    refuse_link_source(change.source)?;
    let me = me(state, caller).await?;
    let now = state.clock.now();
    let records = ConsentRecord::marketing(
        &caller.user_id,
        change.marketing,
        &me.policy.accepted_version,
        change.source,
        now,
    );
    consent::record(&state.store, &records).await?;
    tracing::info!(granted = change.marketing, "marketing consent recorded");
    Ok(ConsentState {
        marketing: change.marketing,
        policy_version: me.policy.accepted_version,
        recorded_at: now,
    })
}

/// The body of `PUT /v1/me/consents/{purpose}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurposeConsentChange {
    /// Yes or no to the use of the caller's data for the purpose.
    pub granted: bool,
    /// Where the user decided.
    pub source: ConsentSource,
}

/// `PUT /v1/me/consents/{purpose}`: the caller's decision about one purpose that needs consent
/// (a marketing channel, or a purpose a privacy officer added); from now on the senders obey it.
/// 404 for no such purpose, 422 for one that needs no consent (the service itself).
pub async fn set_purpose_consent(
    state: &AppState,
    caller: &Caller,
    purpose: &str,
    change: PurposeConsentChange,
) -> Result<Vec<crate::purposes::PurposeConsent>, ApiError> {
    let me = me(state, caller).await?;
    let found = crate::purposes::find(&state.store, purpose)
        .await?
        .ok_or(ApiError::NotFound("purpose"))?;
    if !found.needs_consent {
        return Err(ApiError::Validation(vec![edge::error::FieldError {
            pointer: "?purpose".into(),
            detail: "this purpose is the service itself and needs no consent".into(),
        }]));
    }
    refuse_link_source(change.source)?;
    let record = ConsentRecord::new(
        &caller.user_id,
        &found.purpose,
        change.granted,
        &me.policy.accepted_version,
        change.source,
        state.clock.now(),
    );
    consent::record(&state.store, std::slice::from_ref(&record)).await?;
    tracing::info!(purpose = %found.purpose, granted = change.granted, "consent recorded");
    Ok(crate::purposes::with_consents(&state.store, &caller.user_id).await?)
}

/// Only the mailed unsubscribe link records a decision as coming from it.
fn refuse_link_source(source: ConsentSource) -> Result<(), ApiError> {
    if source == ConsentSource::Unsubscribe {
        return Err(ApiError::Validation(vec![edge::error::FieldError {
            pointer: "/source".into(),
            detail: "must be app, web, registration or privacy_request".into(),
        }]));
    }
    Ok(())
}

/// `GET /v1/me/consents`: every purpose, whether it needs consent, and the caller's decision.
pub async fn consents(
    state: &AppState,
    caller: &Caller,
) -> Result<Vec<crate::purposes::PurposeConsent>, ApiError> {
    me(state, caller).await?;
    Ok(crate::purposes::with_consents(&state.store, &caller.user_id).await?)
}
