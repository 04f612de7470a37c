//! The privacy-policy versions users accept (privacy requests: [`crate::privacy_requests`]).

use crate::keys::{POLICY_CURRENT, POLICY_PARTITION};
use crate::schema::{self, ItemType};
use crate::store::{ItemKey, Record, Store, StoreError};
use serde::{Deserialize, Serialize};

/// A published version of the Applications Privacy Policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub policy_version: String,
    pub effective_date: String,
    pub significant: bool,
    pub summary: String,
}

impl Record for PolicyVersion {
    const TYPE: &'static ItemType = &schema::POLICY_VERSION;

    fn key(&self) -> ItemKey {
        ItemKey::new(POLICY_PARTITION.to_owned(), POLICY_CURRENT.to_owned())
    }
}

/// The policy version in force, if one has been published.
pub async fn current_policy(store: &Store) -> Result<Option<PolicyVersion>, StoreError> {
    let current = store
        .get::<PolicyVersion>(&ItemKey::new(
            POLICY_PARTITION.to_owned(),
            POLICY_CURRENT.to_owned(),
        ))
        .await?;
    Ok(current.map(|versioned| versioned.record))
}
