//! A postal address: one shape for customers, providers, sites and W-9 forms, checked one way.

use edge::validation::Validator;
use serde::{Deserialize, Serialize};

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

/// Address checks on the edge's [`Validator`]: the rules belong to the business (field lengths, ISO
/// country codes), the error collection to the edge.
pub trait AddressRules {
    /// A structured postal address, each problem reported at `pointer/<field>`.
    fn address(&mut self, pointer: &str, address: &Address);
}

impl AddressRules for Validator {
    fn address(&mut self, pointer: &str, address: &Address) {
        self.text(&format!("{pointer}/line1"), &address.line1, 200);
        if let Some(line2) = &address.line2 {
            self.check(
                line2.chars().count() <= 200,
                format!("{pointer}/line2"),
                "must be at most 200 characters",
            );
        }
        self.text(&format!("{pointer}/city"), &address.city, 100);
        self.text(&format!("{pointer}/region"), &address.region, 100);
        self.text(&format!("{pointer}/postal_code"), &address.postal_code, 20);
        self.check(
            address.country.len() == 2 && address.country.chars().all(|c| c.is_ascii_uppercase()),
            format!("{pointer}/country"),
            "must be an ISO 3166-1 alpha-2 code such as US",
        );
    }
}
