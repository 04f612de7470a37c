//! The right to be informed: `GET /v1/me/data-inventory` tells a user, per category of data, what we
//! hold about them (field names, never values), why (the policy's purposes), where it came from, who
//! it may be shared with, how long it is kept, and how many such records we hold, plus the policy
//! version they accepted. Generated from the schema registry and the retention classes, so it cannot
//! drift from what the code stores.

use edge::auth::Caller;
use edge::error::ApiError;
use platform::AppState;
use platform::retention::RetentionClass;
use platform::schema::{self, COMMON, ItemType, Protection};
use serde::Serialize;
use std::collections::BTreeMap;

/// Why, from where, and to whom, for one item type that holds data about a user.
struct Description {
    item_type: &'static ItemType,
    what: &'static str,
    purpose: &'static str,
    source: &'static str,
    shared_with: &'static [&'static str],
}

const PROCESSORS: &str = "processors acting for us (hosting, e-mail delivery, payment processing)";
const AFFILIATE: &str = "our affiliate Off Duty Services, Inc.";
const LEGAL: &str = "law enforcement or courts, when the law requires it";
const AGENCY: &str = "the agency that staffs your request or employs you";

const DESCRIPTIONS: &[Description] = &[
    Description {
        item_type: &schema::CUSTOMER_ACCOUNT,
        what: "your customer account",
        purpose: "to schedule the security services you request and to contact you",
        source: "you, at registration and when you correct it",
        shared_with: &[PROCESSORS, AFFILIATE, LEGAL],
    },
    Description {
        item_type: &schema::PROVIDER_ACCOUNT,
        what: "your Security Provider account",
        purpose: "to assign you as a Security Provider to requested services and to contact you",
        source: "you, at registration and when you correct it",
        shared_with: &[AGENCY, PROCESSORS, AFFILIATE, LEGAL],
    },
    Description {
        item_type: &schema::W9_RECORD,
        what: "your W-9 tax certification",
        purpose: "to pay you and to file the tax information returns the law requires",
        source: "you, at registration",
        shared_with: &[PROCESSORS, LEGAL],
    },
    Description {
        item_type: &schema::PAYMENT_RECORD,
        what: "payments you made (the payment processor's token, card brand, last four digits)",
        purpose: "to take payment for the services you booked",
        source: "you and our payment processor",
        shared_with: &[PROCESSORS, LEGAL],
    },
    Description {
        item_type: &schema::INVOICE,
        what: "the invoices for the services you booked, line by line",
        purpose: "to take payment for the services you booked and keep the records the law requires",
        source: "our billing, from the hours the agency approved",
        shared_with: &[AGENCY, PROCESSORS, LEGAL],
    },
    Description {
        item_type: &schema::PROCESSOR_CUSTOMER,
        what: "your customer id at our payment processor (Stripe), which keeps the card you pay with",
        purpose: "to take payment for the services you booked",
        source: "our payment processor, at your first booking",
        shared_with: &[PROCESSORS],
    },
    Description {
        item_type: &schema::PAYMENT_CHARGE,
        what: "each booking's payment: the amount held on your card, captured, released or refunded",
        purpose: "to take payment for the services you booked and keep the records the law requires",
        source: "our payment processor",
        shared_with: &[PROCESSORS, LEGAL],
    },
    Description {
        item_type: &schema::SERVICE_REQUEST,
        what: "the security services you booked, with the site and its contact",
        purpose: "to schedule the requested service and assign Security Providers",
        source: "you, when booking",
        shared_with: &[AGENCY, PROCESSORS],
    },
    Description {
        item_type: &schema::ASSIGNMENT,
        what: "the shifts you were assigned to, and when you checked in and out",
        purpose: "to assign you to requested services and to pay you for the hours worked",
        source: "you, your agency's dispatchers, and our scheduling",
        shared_with: &[AGENCY],
    },
    Description {
        item_type: &schema::ROSTER,
        what: "your availability and the shifts you hold and worked",
        purpose: "to offer you shifts fairly and keep to the agency's hour and rest rules",
        source: "you, and our scheduling",
        shared_with: &[AGENCY],
    },
    Description {
        item_type: &schema::AGENCY_MEMBERSHIP,
        what: "your memberships of agencies: badge or employee number, rank, hire date, and each agency's decision",
        purpose: "to let the agencies you work for verify you before you are assigned, and rank by seniority",
        source: "you, when applying, and the agency's admins, when deciding",
        shared_with: &[AGENCY],
    },
    Description {
        item_type: &schema::CONSENT_RECORD,
        what: "your decisions about each purpose that needs your consent (marketing by e-mail, post or telephone; any purpose added later)",
        purpose: "to use your data for those purposes only with your consent, and to prove it",
        source: "you",
        shared_with: &[],
    },
    Description {
        item_type: &schema::CONSENT_STATE,
        what: "your current decision about each such purpose (a copy of the newest one)",
        purpose: "to use your data for those purposes only with your consent",
        source: "you",
        shared_with: &[],
    },
    Description {
        item_type: &schema::CAMPAIGN_DELIVERY,
        what: "the marketing campaigns we sent you: which, when, by which channel, under which consent (never their text)",
        purpose: "to show that marketing went only where you consented to it",
        source: "the service, when it sent you a campaign",
        shared_with: &[PROCESSORS],
    },
    Description {
        item_type: &schema::AUDIT_RECORD,
        what: "which fields of your account were changed, by whom and when",
        purpose: "to keep your data accurate and show who changed it",
        source: "our systems",
        shared_with: &[LEGAL],
    },
    Description {
        item_type: &schema::ACCESS_LOG_ENTRY,
        what: "each call you made to the service: route, result, time and IP address",
        purpose: "to protect you and the service from fraud",
        source: "your device, when you use the apps",
        shared_with: &[LEGAL],
    },
    Description {
        item_type: &schema::IDEMPOTENT_ANSWER,
        what: "the answer to a call your app may repeat (a registration, an inquiry), so that a retry creates nothing twice",
        purpose: "to provide the service you asked for, once",
        source: "the service, from your call",
        shared_with: &[],
    },
    Description {
        item_type: &schema::PRIVACY_REQUEST,
        what: "the privacy requests you made and what became of them",
        purpose: "to honour your rights and keep the records the law asks for",
        source: "you",
        shared_with: &[LEGAL],
    },
    Description {
        item_type: &schema::DISCLOSURE,
        what: "each time your data was disclosed: to whom, on what legal basis, which categories",
        purpose: "to account for every disclosure, as the policy promises",
        source: "our privacy officers",
        shared_with: &[],
    },
    Description {
        item_type: &schema::SUPPORT_INQUIRY,
        what: "the messages you sent our support and their answers",
        purpose: "to answer you",
        source: "you, when you write to support (signed in, or from your account's address)",
        shared_with: &[PROCESSORS, LEGAL],
    },
    Description {
        item_type: &schema::EXPORT_PART,
        what: "data exports you asked for",
        purpose: "to give you your data",
        source: "our systems, from the data above",
        shared_with: &[],
    },
];

/// How long one category is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetentionView {
    pub class: RetentionClass,
    pub kept_for: String,
    pub counted_from: &'static str,
    pub legal_basis: &'static str,
}

/// One category of data about the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Category {
    pub category: &'static str,
    pub what: &'static str,
    /// The fields we store, by name (the encrypted ones are the personal data).
    pub fields: Vec<&'static str>,
    pub encrypted_fields: Vec<&'static str>,
    pub purpose: &'static str,
    pub source: &'static str,
    pub shared_with: &'static [&'static str],
    pub retention: RetentionView,
    /// How many such records we hold about the caller now.
    pub records_held: usize,
}

/// The caller's data inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inventory {
    pub user_id: String,
    pub policy_version_accepted: Option<String>,
    pub policy_version_current: Option<String>,
    pub categories: Vec<Category>,
    /// Every purpose your data is used for, whether it needs your consent, and your decision.
    pub purposes: Vec<crate::purposes::PurposeConsent>,
}

fn kept_for(class: RetentionClass) -> String {
    match class.period() {
        None => "while your account exists".to_owned(),
        Some(span) => jiff::fmt::friendly::SpanPrinter::new()
            .designator(jiff::fmt::friendly::Designator::Verbose)
            .spacing(jiff::fmt::friendly::Spacing::BetweenUnitsAndDesignators)
            .span_to_string(&span),
    }
}

/// `GET /v1/me/data-inventory`.
pub async fn of(state: &AppState, caller: &Caller) -> Result<Inventory, ApiError> {
    let mut held: BTreeMap<String, usize> = BTreeMap::new();
    for pk in [
        platform::keys::user_partition(&caller.user_id),
        platform::keys::access_log_partition(&caller.user_id),
        platform::keys::privacy_partition(&caller.user_id),
    ] {
        for (_, item_type, _) in state.store.keys_in_partition(&pk).await? {
            *held.entry(item_type).or_default() += 1;
        }
    }
    let policy = match crate::accounts::me(state, caller).await {
        Ok(me) => (Some(me.policy.accepted_version), me.policy.current_version),
        Err(ApiError::NotFound(_)) => (
            None,
            crate::policy::current_policy(&state.store)
                .await?
                .map(|p| p.policy_version),
        ),
        Err(error) => return Err(error),
    };
    let categories = DESCRIPTIONS
        .iter()
        .map(|d| {
            let item_type = d.item_type;
            let declared = || {
                item_type
                    .attributes
                    .iter()
                    .filter(|a| !COMMON.iter().any(|c| c.name == a.name))
            };
            Category {
                category: item_type.name,
                what: d.what,
                fields: declared().map(|a| a.name).collect(),
                encrypted_fields: declared()
                    .filter(|a| a.protection == Protection::Personal)
                    .map(|a| a.name)
                    .collect(),
                purpose: d.purpose,
                source: d.source,
                shared_with: d.shared_with,
                retention: RetentionView {
                    class: item_type.retention,
                    kept_for: kept_for(item_type.retention),
                    counted_from: item_type.retention.runs_from(),
                    legal_basis: item_type.retention.legal_basis(),
                },
                records_held: held.get(item_type.name).copied().unwrap_or(0),
            }
        })
        .collect();
    Ok(Inventory {
        user_id: caller.user_id.clone(),
        policy_version_accepted: policy.0,
        policy_version_current: policy.1,
        categories,
        purposes: crate::purposes::with_consents(&state.store, &caller.user_id).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every item type that holds personal data is explained to its owner (or deliberately is not
    /// about a user: agency pools, do-not-hire entries, locks, exports' index).
    #[test]
    fn every_personal_item_type_about_a_user_is_described() {
        let not_about_the_caller = ["pool_entry", "do_not_hire"];
        for item_type in schema::ITEM_TYPES {
            let personal = item_type
                .attributes
                .iter()
                .any(|a| a.protection == Protection::Personal);
            if personal && !not_about_the_caller.contains(&item_type.name) {
                assert!(
                    DESCRIPTIONS.iter().any(|d| d.item_type.name == item_type.name),
                    "{} holds personal data but the inventory does not describe it",
                    item_type.name
                );
            }
        }
    }

    #[test]
    fn retention_reads_as_a_period() {
        assert_eq!(kept_for(RetentionClass::TaxRecord), "7 years");
        assert_eq!(kept_for(RetentionClass::AccessLog), "90 days");
        assert_eq!(kept_for(RetentionClass::Account), "while your account exists");
    }
}
