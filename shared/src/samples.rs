//! Fully populated sample records, each with the personal values it contains: the schema test checks
//! that those values sit only in encrypted attributes, and the end-to-end tests search the raw table
//! for them. Compiled for tests and with the `samples` feature only.

use crate::accounts::{
    AccountStatus, Address, AgencyMembership, CustomerAccount, CustomerKind, Licence, ProviderAccount,
    ServiceArea, Skill,
};
use crate::payments::PaymentRecord;
use crate::schema::ItemType;
use crate::store::{Item, Record};
use crate::tax::{TinType, W9Record};
use jiff::Timestamp;
use jiff::civil::date;

/// A sample record serialised as the store writes it, with the personal values inside it.
pub struct Sample {
    pub item_type: &'static ItemType,
    pub item: Item,
    pub personal_values: Vec<String>,
}

fn sample<R: Record>(record: &R, personal_values: Vec<String>) -> Sample {
    let mut item: Item = serde_dynamo::to_item(record).unwrap_or_default();
    for (name, value) in [("pk", record.key().pk), ("sk", record.key().sk)] {
        item.insert(name.to_owned(), aws_sdk_dynamodb::types::AttributeValue::S(value));
    }
    Sample {
        item_type: R::TYPE,
        item,
        personal_values,
    }
}

fn address(tag: &str) -> Address {
    Address {
        line1: format!("{tag} 1600 Quillfeather Lane"),
        line2: Some(format!("{tag} Suite 31")),
        city: "Marbleton".into(),
        region: "WY".into(),
        postal_code: "83113".into(),
        country: "US".into(),
    }
}

fn now() -> Timestamp {
    Timestamp::from_second(1_795_910_400).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A business customer with every personal field filled.
pub fn customer(user_id: &str, email: &str) -> CustomerAccount {
    CustomerAccount {
        user_id: user_id.to_owned(),
        kind: CustomerKind::Business,
        status: AccountStatus::Active,
        name: "Philippa Quarrington".into(),
        phone: "+13075550142".into(),
        email: email.to_owned(),
        date_of_birth: date(1981, 7, 23),
        home_address: Some(address("Home")),
        business_address: Some(address("Business")),
        mailing_address: Some(address("Mailing")),
        business_name: Some("Quarrington Galas LLC".into()),
        tax_id: Some("912345678".into()),
        policy_version: "2026-11-01".into(),
        created_at: now(),
        updated_at: now(),
    }
}

/// The personal values inside [`customer`] (with `email`).
pub fn customer_personal_values(email: &str) -> Vec<String> {
    [
        "Philippa Quarrington",
        "+13075550142",
        email,
        "1981-07-23",
        "Home 1600 Quillfeather Lane",
        "Business Suite 31",
        "Mailing 1600 Quillfeather Lane",
        "Quarrington Galas",
        "912345678",
    ]
    .iter()
    .map(|v| (*v).to_owned())
    .collect()
}

/// A Security Provider with every personal field filled.
pub fn provider(user_id: &str, email: &str) -> ProviderAccount {
    ProviderAccount {
        user_id: user_id.to_owned(),
        status: AccountStatus::Active,
        legal_name: "Thaddeus Okonkwo-Lindqvist".into(),
        date_of_birth: date(1979, 3, 14),
        phone: "+13075550199".into(),
        email: email.to_owned(),
        home_address: address("Officer"),
        licence: Licence {
            number: "WYPSL-88231-K".into(),
            issuing_state: "WY".into(),
            kind: "armed".into(),
            expires_on: date(2028, 6, 30),
        },
        agency: Some(AgencyMembership {
            agency_id: "agency-marbleton-pd".into(),
            badge_number: "BADGE-4471".into(),
            hire_date: date(2011, 9, 1),
        }),
        skills: vec![Skill::Armed, Skill::Supervisor],
        service_area: ServiceArea {
            regions: vec!["WY-SUB".into()],
            center: Some((42.5637, -110.1121)),
            radius_km: Some(40.0),
        },
        policy_version: "2026-11-01".into(),
        created_at: now(),
        updated_at: now(),
    }
}

/// The personal values inside [`provider`] (with `email`).
pub fn provider_personal_values(email: &str) -> Vec<String> {
    [
        "Okonkwo-Lindqvist",
        "+13075550199",
        email,
        "1979-03-14",
        "Officer 1600 Quillfeather",
        "WYPSL-88231-K",
        "BADGE-4471",
        "42.5637",
    ]
    .iter()
    .map(|v| (*v).to_owned())
    .collect()
}

/// A W-9 with every personal field filled.
pub fn w9(user_id: &str, certified_at: Timestamp) -> W9Record {
    W9Record {
        user_id: user_id.to_owned(),
        legal_name: "Thaddeus Okonkwo-Lindqvist".into(),
        business_name: Some("Okonkwo Protective Services".into()),
        tax_classification: "individual_sole_proprietor".into(),
        address: address("Tax"),
        tin_type: TinType::Ssn,
        tax_id: "521436789".into(),
        certified_at,
    }
}

/// The personal values inside [`w9`].
pub fn w9_personal_values() -> Vec<String> {
    [
        "Okonkwo-Lindqvist",
        "Okonkwo Protective",
        "Tax 1600 Quillfeather",
        "521436789",
    ]
    .iter()
    .map(|v| (*v).to_owned())
    .collect()
}

/// A payment record with every personal field filled.
pub fn payment(user_id: &str, payment_id: &str) -> PaymentRecord {
    PaymentRecord {
        user_id: user_id.to_owned(),
        payment_id: payment_id.to_owned(),
        request_id: "request-1".into(),
        processor_token: "pm_1QxRtz8Kq2LmN0pVbYc7".into(),
        card_brand: "mastercard".into(),
        card_last4: "4417".into(),
        amount_cents: 48_000,
        currency: "USD".into(),
        created_at: now(),
    }
}

/// The personal values inside [`payment`].
pub fn payment_personal_values() -> Vec<String> {
    ["pm_1QxRtz8Kq2LmN0pVbYc7", "mastercard", "4417"]
        .iter()
        .map(|v| (*v).to_owned())
        .collect()
}

/// One sample of every record type that holds personal data.
pub fn all_records(user_id: &str) -> Vec<Sample> {
    let email = "philippa.q@example.com";
    let provider_email = "thaddeus.ol@example.com";
    vec![
        sample(&customer(user_id, email), customer_personal_values(email)),
        sample(
            &provider(user_id, provider_email),
            provider_personal_values(provider_email),
        ),
        sample(&w9(user_id, now()), w9_personal_values()),
        sample(&payment(user_id, "pay-1"), payment_personal_values()),
    ]
}
