//! Tax records the law makes us keep (W-9 for 1099 reporting): they survive account deletion,
//! encrypted, until their retention period ends.

use crate::address::Address;
use jiff::Timestamp;
use platform::keys::user_partition;
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record};
use serde::{Deserialize, Serialize};

/// Which kind of taxpayer identification number a W-9 carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TinType {
    Ssn,
    Ein,
}

/// A W-9 as certified by a Security Provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct W9Record {
    pub user_id: String,
    pub legal_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_name: Option<String>,
    /// Federal tax classification (individual/sole proprietor, C corporation, LLC, …).
    pub tax_classification: String,
    pub address: Address,
    pub tin_type: TinType,
    /// SSN or EIN, digits only.
    pub tax_id: String,
    pub certified_at: Timestamp,
}

impl Record for W9Record {
    const TYPE: &'static ItemType = &schema::W9_RECORD;

    fn key(&self) -> ItemKey {
        ItemKey::new(
            user_partition(&self.user_id),
            format!("TAX#W9#{}", self.certified_at.as_second()),
        )
    }

    fn retention_start(&self) -> Option<Timestamp> {
        Some(self.certified_at)
    }
}
