//! Registering as a customer or a Security Provider: the inputs, their checks, the locked write of
//! the account with its e-mail lock, the user-pool group and the welcome mail.

use super::*;
use platform::directory::UserDirectory;

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
    check_policy(
        state,
        &mut v,
        &input.policy_version,
        crate::policy::Audience::Users,
    )
    .await?;
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
        consent::record_writes(&state.store, &consent)?,
    )
    .await;
    settle(
        state.directory.as_ref(),
        caller,
        AccountRole::Customer,
        created,
        async || {
            welcome(
                state,
                &account.email,
                mail::first_name(&account.name),
                AccountRole::Customer,
            )
            .await;
            Ok(CustomerView::from(&account))
        },
        async || {
            let existing = stored_or_raced::<CustomerAccount>(state, &account.key()).await?;
            let same = CustomerAccount {
                created_at: existing.created_at,
                updated_at: existing.updated_at,
                status: existing.status,
                ..account.clone()
            };
            let consent_now = consent::marketing_consent(&state.store, &caller.user_id).await?;
            Ok((same == existing && consent_now == input.marketing_consent)
                .then(|| CustomerView::from(&existing)))
        },
    )
    .await
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
        skills: input.skills,
        service_area: input.service_area,
        policy_version: input.policy_version.clone(),
        created_at: now,
        updated_at: now,
    };
    check_provider_shape(&mut v, &account, today);
    if let Some(agency) = &input.agency {
        memberships::check_application(
            state,
            &mut v,
            "/agency",
            &agency.agency_id,
            &agency.facts(),
            today,
        )
        .await?;
    }
    let tin = check_w9(&mut v, &input.w9, now, signed_up_at(state, caller).await?);
    check_policy(
        state,
        &mut v,
        &input.policy_version,
        crate::policy::Audience::Providers,
    )
    .await?;
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
    let mut extra = vec![state.store.write_create(&w9)?];
    if let Some(agency) = &input.agency {
        extra.push(memberships::application_write(
            state,
            &caller.user_id,
            &agency.agency_id,
            &agency.facts(),
            now,
        )?);
    }
    let created = register(
        state,
        caller,
        AccountRole::Provider,
        &account,
        &account.email,
        extra,
    )
    .await;
    settle(
        state.directory.as_ref(),
        caller,
        AccountRole::Provider,
        created,
        async || {
            welcome(
                state,
                &account.email,
                mail::first_name(&account.legal_name),
                AccountRole::Provider,
            )
            .await;
            let memberships = memberships::memberships_of(&state.store, &caller.user_id).await?;
            Ok(provider_view(account.clone(), Some(&w9), &memberships))
        },
        async || {
            let existing = stored_or_raced::<ProviderAccount>(state, &account.key()).await?;
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
            let memberships = memberships::memberships_of(&state.store, &caller.user_id).await?;
            let same_agency = input
                .agency
                .as_ref()
                .is_none_or(|a| memberships.iter().any(|m| m.record.agency_id == a.agency_id));
            Ok((same == existing && same_w9 && same_agency)
                .then(|| provider_view(existing, newest_w9.as_ref(), &memberships)))
        },
    )
    .await
}

/// When the caller signed up (the user pool's creation date); no lower bound when the pool does not say.
async fn signed_up_at(state: &AppState, caller: &Caller) -> Result<Timestamp, ApiError> {
    let username = caller.username.as_deref().unwrap_or(&caller.user_id);
    let user = state
        .directory
        .user(username)
        .await
        .map_err(|error| ApiError::Internal(format!("reading the sign-up date: {error}")))?;
    Ok(user.and_then(|u| u.created_at).unwrap_or(Timestamp::MIN))
}

/// How a registration attempt ends, the same for both roles: created (welcome mail, `created`);
/// a retry with the same details (the group joined again, not created); other details, or an
/// e-mail another account holds (409). `existing` answers `None` when the stored account differs.
async fn settle<V>(
    directory: &dyn UserDirectory,
    caller: &Caller,
    role: AccountRole,
    written: Result<(), RegisterError>,
    on_created: impl AsyncFnOnce() -> Result<V, ApiError>,
    existing: impl AsyncFnOnce() -> Result<Option<V>, ApiError>,
) -> Result<Registered<V>, ApiError> {
    match written {
        Ok(()) => Ok(Registered {
            view: on_created().await?,
            created: true,
        }),
        Err(RegisterError::AccountExists) => match existing().await? {
            Some(view) => {
                join_group(directory, caller, role).await?;
                Ok(Registered { view, created: false })
            }
            None => Err(ApiError::Conflict(format!(
                "you are already registered as a {} with other details: correct them with PATCH /v1/me/{}",
                role.label(),
                role.name()
            ))),
        },
        Err(RegisterError::EmailTaken) => Err(ApiError::Conflict(format!(
            "this e-mail address is already registered for a {} account",
            role.label()
        ))),
        Err(RegisterError::Api(error)) => Err(error),
    }
}

/// The stored record at `key`; a 409 when it vanished between the failed create and this read (a
/// deletion raced the registration).
async fn stored_or_raced<R: Record>(state: &AppState, key: &ItemKey) -> Result<R, ApiError> {
    Ok(state
        .store
        .get::<R>(key)
        .await?
        .ok_or_else(|| ApiError::Conflict("registration raced with a deletion; try again".into()))?
        .record)
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
    // An erasure that started after this caller's token was checked must still win: the person's
    // revocation marker must be absent when the account and its lock are written, or neither is.
    writes.push(edge::revocation::condition_not_revoked(state, &caller.user_id).await?);
    let revocation_check = writes.len() - 1;
    match state.store.transact(writes).await {
        Ok(()) => {
            tracing::info!(user_id = %caller.user_id, role = role.name(), "account registered");
            join_group(state.directory.as_ref(), caller, role).await?;
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
        Err(StoreError::TransactionCancelled(reasons))
            if reasons
                .get(revocation_check)
                .is_some_and(|r| r == "ConditionalCheckFailed") =>
        {
            Err(RegisterError::Api(ApiError::Forbidden(
                "this sign-in belongs to an account that is being deleted or was deleted: it can no longer change anything"
                    .into(),
            )))
        }
        Err(error) => Err(error.into()),
    }
}

/// Puts the user in the Cognito group of `role`, so their next token carries it. Idempotent.
async fn join_group(
    directory: &dyn UserDirectory,
    caller: &Caller,
    role: AccountRole,
) -> Result<(), ApiError> {
    if caller.has(role.group()) {
        return Ok(());
    }
    directory
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
async fn welcome(state: &AppState, email: &str, first_name: &str, role: AccountRole) {
    let message = mail::welcome(first_name, role.label());
    if let Err(error) = crate::mail::send_service(state, email, &message).await {
        tracing::warn!(error = %error, role = role.name(), "welcome mail not sent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::directory::{DirectoryUser, MemoryDirectory, UserStatus};

    fn caller() -> Caller {
        Caller::acting_for("user-1", Role::Customer)
    }

    fn directory() -> MemoryDirectory {
        let directory = MemoryDirectory::default();
        directory.insert(
            DirectoryUser {
                username: "user-1".into(),
                user_id: Some("user-1".into()),
                email: Some("ada@example.com".into()),
                status: UserStatus::Confirmed,
                enabled: true,
                created_at: None,
            },
            &[],
        );
        directory
    }

    async fn outcome(
        directory: &MemoryDirectory,
        role: AccountRole,
        written: Result<(), RegisterError>,
        same: bool,
    ) -> Result<Registered<&'static str>, ApiError> {
        settle(
            directory,
            &caller(),
            role,
            written,
            async || Ok("new"),
            async || Ok(same.then_some("stored")),
        )
        .await
    }

    #[tokio::test]
    async fn a_new_account_is_created() {
        let directory = directory();
        let done = outcome(&directory, AccountRole::Customer, Ok(()), false)
            .await
            .expect("created");
        assert!(done.created);
        assert_eq!(done.view, "new");
    }

    #[tokio::test]
    async fn a_retry_with_the_same_details_joins_the_group_again_and_creates_nothing() {
        let directory = directory();
        let done = outcome(
            &directory,
            AccountRole::Provider,
            Err(RegisterError::AccountExists),
            true,
        )
        .await
        .expect("replayed");
        assert!(!done.created);
        assert_eq!(done.view, "stored");
        assert!(
            directory
                .groups_of("user-1")
                .contains(Role::Provider.group_name())
        );
    }

    #[tokio::test]
    async fn other_details_or_a_taken_address_are_conflicts_naming_the_role() {
        let directory = directory();
        let other = outcome(
            &directory,
            AccountRole::Provider,
            Err(RegisterError::AccountExists),
            false,
        )
        .await;
        match other {
            Err(ApiError::Conflict(detail)) => {
                assert!(detail.contains("Security Provider") && detail.contains("PATCH /v1/me/provider"))
            }
            _ => panic!("expected a conflict"),
        }
        let taken = outcome(
            &directory,
            AccountRole::Customer,
            Err(RegisterError::EmailTaken),
            true,
        )
        .await;
        match taken {
            Err(ApiError::Conflict(detail)) => assert!(detail.contains("customer account")),
            _ => panic!("expected a conflict"),
        }
        assert!(
            directory.groups_of("user-1").is_empty(),
            "no group joined on a conflict"
        );
    }
}
