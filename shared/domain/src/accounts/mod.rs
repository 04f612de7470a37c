//! Customer and Security Provider accounts of a user, and the e-mail uniqueness lock.
//!
//! This module is the only owner of account records: other domains read them and change their
//! status through the functions below. Registration and the profile (views, corrections, consent)
//! live in the submodules.

mod checks;
pub mod memberships;
mod profile;
mod registration;

use checks::{check_customer_shape, check_person, check_policy, check_provider_shape, check_w9, ein_digits};
pub use profile::{
    ConsentChange, ConsentState, CustomerCorrection, CustomerView, Me, PolicyAcceptance, ProviderCorrection,
    ProviderView, PurposeConsentChange, Registered, consents, correct_customer, correct_provider, me,
    set_consent, set_purpose_consent,
};
use profile::{newest_w9, provider_view};
pub use registration::{
    CustomerRegistration, ProviderRegistration, TaxClassification, W9Input, register_customer,
    register_provider,
};

use crate::address::{Address, AddressRules};
use crate::agencies;
use crate::audit::AuditRecord;
use crate::consent::{self, ConsentRecord, ConsentSource};
use crate::mail;
use crate::tax::{TinType, W9Record};
use edge::auth::{Caller, Role};
use edge::error::ApiError;
use edge::validation::{self, Validator};
use jiff::Timestamp;
use jiff::civil::Date;
use platform::AppState;
use platform::keys::{sort_prefix, user_partition};
use platform::lookup::normalize_email;
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record, Store, StoreError, Versioned, Write};
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

/// Whether a customer books as a person or for a business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerKind {
    Individual,
    Business,
}

/// Whether marketing mail may go to an account: active (not restricted, not being deleted) and with
/// marketing consent. Service mail (welcome, assignments) needs no consent.
pub fn may_send_marketing(status: AccountStatus, consented: bool) -> bool {
    status == AccountStatus::Active && consented
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

/// An application to an agency made at registration: the agency, and the facts it verifies before
/// the officer is its member (see [`memberships`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgencyMembership {
    pub agency_id: String,
    pub badge_number: String,
    #[serde(default)]
    pub rank: Option<String>,
    pub hire_date: Date,
}

impl AgencyMembership {
    /// The facts of the application, without the agency.
    pub fn facts(&self) -> memberships::MembershipInput {
        memberships::MembershipInput {
            badge_number: self.badge_number.clone(),
            rank: self.rank.clone(),
            hire_date: self.hire_date,
        }
    }
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
    /// What the officer can do; agencies verify it (a change sends memberships back to pending).
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
/// ([`platform::lookup::LookupKey`]), never the e-mail itself.
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

// ------------------------------------------------------------------------------ reading and status

/// A user's customer account, for the other domains (only this module reads account records).
pub async fn customer(
    store: &Store,
    user_id: &str,
) -> Result<Option<Versioned<CustomerAccount>>, StoreError> {
    store
        .get::<CustomerAccount>(&account_key(user_id, AccountRole::Customer))
        .await
}

/// A user's provider account, for the other domains.
pub async fn provider(
    store: &Store,
    user_id: &str,
) -> Result<Option<Versioned<ProviderAccount>>, StoreError> {
    store
        .get::<ProviderAccount>(&account_key(user_id, AccountRole::Provider))
        .await
}

/// What a campaign needs of a person: whether they may be contacted at all, and how to reach them
/// by each channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub user_id: String,
    pub status: AccountStatus,
    /// The full name (a customer's name, a provider's legal name).
    pub name: String,
    pub email: String,
    /// E.164.
    pub phone: String,
    /// Where post goes: a customer's mailing address (else home), a provider's home address.
    pub postal_address: Option<Address>,
}

/// The contacts of the accounts of `role` that `user_ids` hold, in the order of `user_ids` (those
/// without such an account are left out), in batched reads.
pub async fn contacts(
    store: &Store,
    user_ids: &[String],
    role: AccountRole,
) -> Result<Vec<Contact>, StoreError> {
    let keys: Vec<ItemKey> = user_ids.iter().map(|id| account_key(id, role)).collect();
    let mut fetched = store.get_many(&keys).await?;
    let mut found = Vec::with_capacity(keys.len());
    for key in &keys {
        let contact = match role {
            AccountRole::Customer => fetched.take::<CustomerAccount>(key)?.map(|a| Contact {
                user_id: a.record.user_id,
                status: a.record.status,
                name: a.record.name,
                email: a.record.email,
                phone: a.record.phone,
                postal_address: a.record.mailing_address.or(a.record.home_address),
            }),
            AccountRole::Provider => fetched.take::<ProviderAccount>(key)?.map(|a| Contact {
                user_id: a.record.user_id,
                status: a.record.status,
                name: a.record.legal_name,
                email: a.record.email,
                phone: a.record.phone,
                postal_address: Some(a.record.home_address),
            }),
        };
        found.extend(contact);
    }
    Ok(found)
}

/// The newest policy version `user_id` accepted with either account, or `None` without an account
/// (what a consent decision made outside the app, such as an unsubscribe, is recorded under).
pub async fn accepted_policy_version(store: &Store, user_id: &str) -> Result<Option<String>, StoreError> {
    let customer_key = account_key(user_id, AccountRole::Customer);
    let provider_key = account_key(user_id, AccountRole::Provider);
    let mut fetched = store
        .get_many(&[customer_key.clone(), provider_key.clone()])
        .await?;
    let customer = fetched
        .take::<CustomerAccount>(&customer_key)?
        .map(|a| a.record.policy_version);
    let provider = fetched
        .take::<ProviderAccount>(&provider_key)?
        .map(|a| a.record.policy_version);
    Ok(customer.into_iter().chain(provider).max())
}

/// The provider accounts of `user_ids` that exist, in one batched read.
pub async fn providers(store: &Store, user_ids: &[String]) -> Result<Vec<ProviderAccount>, StoreError> {
    let keys: Vec<ItemKey> = user_ids
        .iter()
        .map(|id| account_key(id, AccountRole::Provider))
        .collect();
    Ok(store
        .batch_get::<ProviderAccount>(&keys)
        .await?
        .into_iter()
        .map(|a| a.record)
        .collect())
}

/// The status of each account the user holds (customer first), for rules that look at any role.
pub async fn statuses(store: &Store, user_id: &str) -> Result<Vec<(AccountRole, AccountStatus)>, StoreError> {
    let mut found = Vec::new();
    if let Some(account) = customer(store, user_id).await? {
        found.push((AccountRole::Customer, account.record.status));
    }
    if let Some(account) = provider(store, user_id).await? {
        found.push((AccountRole::Provider, account.record.status));
    }
    Ok(found)
}

/// The user whose account (customer, else provider) holds the e-mail whose keyed hash is
/// `email_hash`: registration locked it with the address the user pool had verified. How a mail to
/// the support address is matched to an account; `None` when no account holds it.
pub async fn owner_of_email(store: &Store, email_hash: &str) -> Result<Option<String>, StoreError> {
    for role in [AccountRole::Customer, AccountRole::Provider] {
        if let Some(lock) = store
            .get::<EmailLock>(&EmailLock::key_for(role.name(), email_hash))
            .await?
        {
            return Ok(Some(lock.record.owner_user_id));
        }
    }
    Ok(None)
}

/// What [`set_status`] did to one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    /// The account was moved to the new status.
    Changed,
    /// No such account, or its status did not call for the change.
    NotNeeded,
    /// A change was due but `permit` refused it (a job's budget ran out): call again later.
    NotPermitted,
}

/// Moves the user's `role` account to `to` when `applies` holds for its current status. `permit` is
/// asked only when a write is due (erasure spends one budget unit per write). The write is
/// conditioned on the version read, so a concurrent change fails with `ConditionFailed`.
pub async fn set_status(
    store: &Store,
    user_id: &str,
    role: AccountRole,
    applies: impl Fn(AccountStatus) -> bool,
    to: AccountStatus,
    permit: impl FnOnce() -> bool,
) -> Result<StatusChange, StoreError> {
    async fn change<R: Record + Clone>(
        store: &Store,
        current: Option<Versioned<R>>,
        status: impl Fn(&mut R) -> &mut AccountStatus,
        applies: impl Fn(AccountStatus) -> bool,
        to: AccountStatus,
        permit: impl FnOnce() -> bool,
    ) -> Result<StatusChange, StoreError> {
        let Some(current) = current else {
            return Ok(StatusChange::NotNeeded);
        };
        let mut changed = current.record.clone();
        if !applies(*status(&mut changed)) {
            return Ok(StatusChange::NotNeeded);
        }
        if !permit() {
            return Ok(StatusChange::NotPermitted);
        }
        *status(&mut changed) = to;
        store.replace(&changed, current.version).await?;
        Ok(StatusChange::Changed)
    }
    match role {
        AccountRole::Customer => {
            let current = customer(store, user_id).await?;
            change(store, current, |a| &mut a.status, applies, to, permit).await
        }
        AccountRole::Provider => {
            let current = provider(store, user_id).await?;
            change(store, current, |a| &mut a.status, applies, to, permit).await
        }
    }
}

#[cfg(test)]
mod marketing_tests {
    use super::*;

    #[test]
    fn marketing_needs_an_active_account_and_consent() {
        assert!(may_send_marketing(AccountStatus::Active, true));
        assert!(!may_send_marketing(AccountStatus::Active, false));
        assert!(!may_send_marketing(AccountStatus::Restricted, true));
        assert!(!may_send_marketing(AccountStatus::DeletionPending, true));
    }
}
