//! Payment records: what we keep of a payment taken through the processor. Card numbers never reach
//! us; the processor's token, brand and last four digits do, encrypted.

use crate::keys::user_partition;
use crate::schema::{self, ItemType};
use crate::store::{ItemKey, Record};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// One payment for a service request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    pub user_id: String,
    pub payment_id: String,
    pub request_id: String,
    /// The processor's token (`pm_…`, `tok_…`).
    pub processor_token: String,
    pub card_brand: String,
    pub card_last4: String,
    /// Integer cents: money is never a float.
    pub amount_cents: i64,
    /// ISO 4217.
    pub currency: String,
    pub created_at: Timestamp,
}

impl Record for PaymentRecord {
    const TYPE: &'static ItemType = &schema::PAYMENT_RECORD;

    fn key(&self) -> ItemKey {
        ItemKey::new(
            user_partition(&self.user_id),
            format!("PAYMENT#{}", self.payment_id),
        )
    }

    fn retention_start(&self) -> Option<Timestamp> {
        Some(self.created_at)
    }
}
