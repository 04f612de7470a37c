//! The item schema registry: for every item type of the table, its key shape, how each attribute is
//! protected, its retention class and the indexes that find it.
//!
//! The encryption configuration is generated from this registry ([`attribute_actions`]), so an
//! attribute cannot be written unless it is declared here: the encryption SDK rejects undeclared
//! attributes. Personal data is `Personal` (encrypted and signed); keys and values that must be
//! trusted are `Signed` (plaintext, signed); fields that change in place (status, expiry, GSI keys of
//! moving work) are `Unsigned`.

use crate::retention::RetentionClass;
use std::collections::BTreeMap;
use thiserror::Error;

/// How one attribute is protected at rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// Personal data: encrypted under the owner's key and signed (`ENCRYPT_AND_SIGN`).
    Personal,
    /// Plaintext but covered by the item signature (`SIGN_ONLY`): keys, ids, versions, timestamps.
    Signed,
    /// Plaintext and not signed (`DO_NOTHING`): may change without re-signing the item.
    Unsigned,
}

/// One declared attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute {
    pub name: &'static str,
    pub protection: Protection,
}

pub(super) const fn personal(name: &'static str) -> Attribute {
    Attribute {
        name,
        protection: Protection::Personal,
    }
}
pub(super) const fn signed(name: &'static str) -> Attribute {
    Attribute {
        name,
        protection: Protection::Signed,
    }
}
pub(super) const fn unsigned(name: &'static str) -> Attribute {
    Attribute {
        name,
        protection: Protection::Unsigned,
    }
}

/// One type of item in the table.
#[derive(Debug, PartialEq, Eq)]
pub struct ItemType {
    /// The `item_type` attribute's value.
    pub name: &'static str,
    /// Key shape, for readers: `pk` / `sk` patterns.
    pub key: &'static str,
    /// Attributes beyond [`COMMON`].
    pub attributes: &'static [Attribute],
    /// How long items of this type are kept.
    pub retention: RetentionClass,
    /// Indexes that find items of this type (beyond the table's own key).
    pub indexes: &'static [&'static str],
}

/// The TTL attribute of every item that has a retention period.
pub const EXPIRES_AT: &str = "expires_at";

/// Attributes every item has (the store writes them).
pub const COMMON: &[Attribute] = &[
    signed("pk"),
    signed("sk"),
    signed("item_type"),
    signed("version"),
    unsigned(EXPIRES_AT),
    unsigned("gsi1pk"),
    unsigned("gsi1sk"),
    unsigned("due_day"),
    unsigned("due_at"),
];

mod items;

// The registry itself: one constant per item type, and the list of them all.
pub use items::*;

/// A searchable-encryption beacon: a truncated keyed hash of an attribute, indexed by a GSI on
/// `aws_dbe_b_<attribute>`, so lookups need no plaintext. Truncation means false positives by design:
/// callers confirm each hit after decrypting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beacon {
    /// The (personal) attribute it is computed from.
    pub attribute: &'static str,
    /// Bits kept of the hash: 16 bits leave ~1 false positive per 65,536 items with that attribute.
    pub length: u16,
    /// The GSI whose hash key is the beacon.
    pub index: &'static str,
}

impl Beacon {
    /// The attribute the encryption SDK writes the beacon to.
    pub fn stored_attribute(&self) -> String {
        format!("aws_dbe_b_{}", self.attribute)
    }
}

/// Lookup by e-mail (normalised: trimmed, lower-cased).
pub const EMAIL_BEACON: Beacon = Beacon {
    attribute: "email",
    length: 16,
    index: "email-beacon",
};
/// Lookup by tax id (SSN or EIN, digits only).
pub const TAX_ID_BEACON: Beacon = Beacon {
    attribute: "tax_id",
    length: 16,
    index: "tax-id-beacon",
};
/// Every beacon.
pub const BEACONS: &[Beacon] = &[EMAIL_BEACON, TAX_ID_BEACON];

/// The registry contradicts itself.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SchemaError {
    #[error("attribute {0} is declared with two different protections")]
    Conflict(&'static str),
}

/// Every attribute of the table with its protection: the union over item types. An attribute name
/// means one thing table-wide, because the encryption SDK configures actions per table.
pub fn attribute_actions() -> Result<BTreeMap<&'static str, Protection>, SchemaError> {
    let mut actions = BTreeMap::new();
    for attribute in COMMON
        .iter()
        .chain(ITEM_TYPES.iter().flat_map(|t| t.attributes.iter()))
    {
        if let Some(previous) = actions.insert(attribute.name, attribute.protection)
            && previous != attribute.protection
        {
            return Err(SchemaError::Conflict(attribute.name));
        }
    }
    Ok(actions)
}

/// The item type named `name`.
pub fn item_type(name: &str) -> Option<&'static ItemType> {
    ITEM_TYPES.iter().copied().find(|t| t.name == name)
}

impl ItemType {
    /// The protection of `attribute` on this item type (common attributes included).
    pub fn protection(&self, attribute: &str) -> Option<Protection> {
        COMMON
            .iter()
            .chain(self.attributes)
            .find(|a| a.name == attribute)
            .map(|a| a.protection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_protection_per_attribute_name() {
        assert!(attribute_actions().is_ok());
    }

    #[test]
    fn beacons_are_computed_from_personal_attributes_only() {
        let actions = attribute_actions().expect("consistent");
        for beacon in BEACONS {
            assert_eq!(
                actions.get(beacon.attribute),
                Some(&Protection::Personal),
                "{}",
                beacon.attribute
            );
        }
    }

    #[test]
    fn item_type_names_are_unique() {
        for (index, item) in ITEM_TYPES.iter().enumerate() {
            assert!(
                ITEM_TYPES[index + 1..]
                    .iter()
                    .all(|other| other.name != item.name),
                "{}",
                item.name
            );
        }
    }
}
