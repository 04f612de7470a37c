//! Customer and Security Provider accounts of a user, and the e-mail uniqueness lock.

use crate::keys::{sort_prefix, user_partition};
use crate::schema::{self, ItemType};
use crate::store::{ItemKey, Record, Store, StoreError};
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
    pub policy_version: String,
    pub marketing_consent: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Record for CustomerAccount {
    const TYPE: &'static ItemType = &schema::CUSTOMER_ACCOUNT;

    fn key(&self) -> ItemKey {
        ItemKey::new(
            user_partition(&self.user_id),
            format!("{}CUSTOMER", sort_prefix::ACCOUNT),
        )
    }
}

/// A Security Provider's licence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Licence {
    pub number: String,
    pub issuing_state: String,
    pub kind: String,
    pub expires_on: Date,
}

/// Membership of an agency (tenant), with what seniority ranking needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
        ItemKey::new(
            user_partition(&self.user_id),
            format!("{}PROVIDER", sort_prefix::ACCOUNT),
        )
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

/// What `GET /v1/me` lists for each account the caller holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSummary {
    /// `customer` or `provider`.
    pub role: String,
    /// Lifecycle: `active`, `restricted`, `deletion_pending`.
    pub status: AccountStatus,
}

/// The accounts of `user_id` (at most one per role).
pub async fn accounts_of(store: &Store, user_id: &str) -> Result<Vec<AccountSummary>, StoreError> {
    let partition = user_partition(user_id);
    let mut accounts = Vec::new();
    if let Some(customer) = store
        .get::<CustomerAccount>(&ItemKey::new(partition.clone(), "ACCOUNT#CUSTOMER".into()))
        .await?
    {
        accounts.push(AccountSummary {
            role: "customer".into(),
            status: customer.record.status,
        });
    }
    if let Some(provider) = store
        .get::<ProviderAccount>(&ItemKey::new(partition, "ACCOUNT#PROVIDER".into()))
        .await?
    {
        accounts.push(AccountSummary {
            role: "provider".into(),
            status: provider.record.status,
        });
    }
    Ok(accounts)
}
