//! Fully populated sample records, each with the personal values it contains: the schema test checks
//! that those values sit only in encrypted attributes, and the end-to-end tests search the raw table
//! for them. Compiled for tests and with the `samples` feature only.

use crate::accounts::{
    AccountStatus, CustomerAccount, CustomerKind, Licence, ProviderAccount, ServiceArea, Skill,
};
use crate::address::Address;
use crate::service_requests::payments::PaymentRecord;
use crate::tax::{TinType, W9Record};
use jiff::Timestamp;
use jiff::civil::date;
use platform::schema::ItemType;
use platform::store::{Item, Record};

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

/// Five years from today on the real clock: a sample licence stays valid for any shift a test books,
/// whatever year the suite runs in.
fn licence_expiry() -> jiff::civil::Date {
    let today = Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    today.saturating_add(jiff::Span::new().years(5))
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
            expires_on: licence_expiry(),
        },
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

/// An assignment that was confirmed and worked.
pub fn worked_assignment(user_id: &str) -> crate::scheduling::assignments::Assignment {
    let start = now();
    let mut a = crate::scheduling::assignments::Assignment::new(
        "request-1",
        user_id,
        "agency-marbleton-pd",
        start,
        start + jiff::SignedDuration::from_hours(4),
        start,
    );
    let at = |text: &str| text.parse::<Timestamp>().unwrap_or(Timestamp::UNIX_EPOCH);
    a.responded_at = Some(at("2026-11-29T14:07:11Z"));
    a.checked_in_at = Some(at("2026-11-29T14:07:41Z"));
    a.checked_out_at = Some(at("2026-11-29T14:07:59Z"));
    a.timesheet = Some(crate::scheduling::assignments::Timesheet {
        differences: Vec::new(),
        status: crate::scheduling::assignments::TimesheetStatus::Approved,
        submitted_at: at("2026-11-29T18:11:00Z"),
        submitted_from: at("2026-11-29T14:07:41Z"),
        submitted_until: at("2026-11-29T14:07:59Z"),
        approved_from: Some(at("2026-11-29T14:05:00Z")),
        approved_until: Some(at("2026-11-29T14:09:00Z")),
        approved_by: Some("dispatcher-1".into()),
        approved_at: Some(at("2026-11-30T09:00:00Z")),
        adjustment_reason: Some("Radio log shows Okonkwo on site at 14:05".into()),
    });
    a
}

/// Agency rules as the tests use them.
pub fn agency_rules() -> crate::agencies::Rules {
    crate::agencies::Rules {
        lead_time_hours: 24,
        min_duration_hours: 1,
        max_duration_hours: 12,
        supervisor_required_at: 5,
        alcohol_minimum_officers: 2,
        weekly_hour_cap: 60,
        min_rest_hours: 8,
        default_assignment_mode: crate::agencies::AssignmentMode::FirstCome,
        confirmation_window_hours: 24,
        fairness_window_days: 28,
        site_details_hours_before: 48,
        reverification_months: 12,
        approve_requests: false,
        no_show_after_minutes: 15,
        completion_grace_hours: 4,
    }
}

/// A site with its on-site contact.
pub fn site() -> crate::service_requests::Site {
    crate::service_requests::Site {
        name: "Quillfeather Pavilion".into(),
        address: address("Site"),
        location: Some((42.5701, -110.1002)),
        contact: crate::service_requests::Contact {
            name: "Philippa Quarrington".into(),
            phone: "+13075550142".into(),
        },
    }
}

/// A booked four-hour request for one officer, starting an hour from [`now`].
pub fn service_request(customer_user_id: &str, agency_id: &str) -> crate::service_requests::ServiceRequest {
    use crate::service_requests::{Attire, Event, Requirements, ServiceRequest, Status};
    let start = now() + jiff::SignedDuration::from_hours(1);
    ServiceRequest {
        request_id: "request-1".into(),
        series_id: "series-1".into(),
        customer_user_id: customer_user_id.to_owned(),
        agency_id: agency_id.to_owned(),
        status: Status::Requested,
        event: Event {
            name: "Quillfeather Pavilion Gala".into(),
            kind: "gala".into(),
            description: None,
            expected_attendance: Some(300),
            alcohol_served: false,
        },
        site: site(),
        starts_at: start,
        ends_at: start + jiff::SignedDuration::from_hours(4),
        time_zone: "America/Denver".into(),
        officers: 1,
        filled: 0,
        requirements: Requirements {
            armed: false,
            attire: Attire::Uniformed,
            vehicle: false,
            supervisor: false,
        },
        notes: None,
        price: crate::service_requests::pricing::Price {
            lines: Vec::new(),
            total_cents: 0,
            currency: "USD".into(),
        },
        payment_id: "pay-1".into(),
        cancellation: None,
        created_at: now(),
        updated_at: now(),
        completed_at: None,
        rates: None,
        terms: None,
        started_at: None,
        no_shows_checked_at: None,
        gsi1pk: format!("AGENCY#{agency_id}#REQUESTS"),
        gsi1sk: "000#request-1".into(),
        due_day: None,
        due_at: None,
    }
}

/// A roster with availability, a held shift and a worked shift.
pub fn roster(user_id: &str) -> crate::scheduling::roster::Roster {
    use crate::scheduling::availability::{
        Availability, DatedException, Day, TimeWindow, WeeklyAvailability,
    };
    let mut roster = crate::scheduling::roster::Roster::new(user_id, now());
    roster.agency_ids = vec!["agency-marbleton-pd".into()];
    roster.availability = Some(Availability {
        time_zone: Some("America/Denver".into()),
        weekly: vec![WeeklyAvailability {
            day: Day::Thursday,
            windows: vec![TimeWindow {
                start: "07:15".into(),
                end: "19:45".into(),
            }],
        }],
        exceptions: vec![DatedException {
            date: date(2027, 2, 18),
            windows: vec![],
        }],
    });
    roster.pool_keys = vec!["thursday".into()];
    let start = now() + jiff::SignedDuration::from_hours(1);
    roster.commitments.push(crate::scheduling::roster::Commitment {
        assignment_id: "assignment-1".into(),
        request_id: "request-1".into(),
        starts_at: start,
        ends_at: start + jiff::SignedDuration::from_hours(4),
    });
    roster.worked_shifts.push(crate::scheduling::roster::WorkedShift {
        assignment_id: "assignment-0".into(),
        started_at: Timestamp::from_second(1_795_000_007).unwrap_or(Timestamp::UNIX_EPOCH),
        ended_at: Timestamp::from_second(1_795_014_407).unwrap_or(Timestamp::UNIX_EPOCH),
    });
    roster.last_detail_at = Timestamp::from_second(1_795_014_407).ok();
    roster
}

/// The personal values inside [`roster`]: its availability times and worked-shift times.
pub fn roster_personal_values() -> Vec<String> {
    ["07:15", "19:45", "2027-02-18", "thursday", "2026-11-29T01:00"]
        .iter()
        .map(|v| (*v).to_owned())
        .collect()
}

/// An approved membership with every field filled (badge, rank, hire date, a revocation reason).
pub fn membership(user_id: &str) -> crate::accounts::memberships::Membership {
    use crate::accounts::memberships::{Membership, MembershipStatus};
    Membership {
        user_id: user_id.to_owned(),
        agency_id: "agency-marbleton-pd".into(),
        status: MembershipStatus::Approved,
        badge_number: "BADGE-4471".into(),
        rank: Some("Sergeant First".into()),
        hire_date: date(2011, 9, 1),
        applied_at: now(),
        decided_at: Some(now()),
        decided_by: Some("admin-1".into()),
        reason: Some("Badge checked with Sgt. Halvorsen".into()),
        valid_until: Some(now() + jiff::SignedDuration::from_hours(24 * 365)),
        lapse_notice_sent_at: None,
        gsi1pk: "AGENCY#agency-marbleton-pd#MEMBERS#approved".into(),
        gsi1sk: format!("000#{user_id}"),
        due_day: Some("DUE#2027-10".into()),
        due_at: Some(1_800_000_000),
    }
}

/// An issued invoice with one officer's lines.
pub fn invoice(user_id: &str) -> crate::billing::Invoice {
    crate::billing::Invoice {
        customer_user_id: user_id.to_owned(),
        request_id: "request-1".into(),
        agency_id: "agency-marbleton-pd".into(),
        status: crate::billing::InvoiceStatus::Issued,
        issued_at: now(),
        lines: vec![crate::service_requests::pricing::PriceLine {
            code: "labour".into(),
            description: "officer 1: 1 officer(s) × 3 h 00 min × $65.00/h".into(),
            amount_cents: 19_537,
        }],
        total_cents: 19_537,
        currency: "USD".into(),
        paid_cents: Some(19_000),
        payment_failure: Some("insufficient_funds".into()),
        settled_at: Some(now()),
        gsi1pk: format!("CUSTOMER#{user_id}#INVOICES"),
        gsi1sk: "000#request-1".into(),
    }
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
        sample(
            &invoice(user_id),
            vec![
                "19537".into(),
                "3 h 00 min".into(),
                "19000".into(),
                "insufficient_funds".into(),
            ],
        ),
        sample(
            &crate::payments::ProcessorCustomer {
                user_id: user_id.to_owned(),
                customer_id: "cus_QuillfeatherQ1".into(),
                created_at: now(),
            },
            vec!["cus_quillfeatherq1".into()],
        ),
        sample(
            &crate::payments::Charge {
                customer_user_id: user_id.to_owned(),
                request_id: "request-1".into(),
                status: crate::payments::ChargeStatus::Failed,
                intent_id: "pi_Quillfeather7".into(),
                payment_method: Some("pm_Quillmethod9".into()),
                authorized_cents: 18_765,
                captured_cents: 17_654,
                refunded_cents: 16_543,
                extra_intent_id: Some("pi_Quillextra8".into()),
                extra_cents: 15_432,
                failure_code: Some("card_velocity_exceeded".into()),
                created_at: now(),
                updated_at: now(),
            },
            vec![
                "pi_quillfeather7".into(),
                "pm_quillmethod9".into(),
                "18765".into(),
                "17654".into(),
                "16543".into(),
                "pi_quillextra8".into(),
                "15432".into(),
                "card_velocity_exceeded".into(),
            ],
        ),
        sample(&roster(user_id), roster_personal_values()),
        sample(
            &membership(user_id),
            vec![
                "BADGE-4471".into(),
                "Sergeant First".into(),
                "2011-09-01".into(),
                "Halvorsen".into(),
            ],
        ),
        sample(
            &crate::scheduling::roster::PoolEntry {
                agency_id: "agency-marbleton-pd".into(),
                pool_key: "thursday".into(),
                entry_token: "0a1b2c3d".into(),
                officer_ref: user_id.to_owned(),
            },
            vec![user_id.to_owned()],
        ),
        sample(
            &crate::scheduling::roster::DoNotHire {
                agency_id: "agency-marbleton-pd".into(),
                provider_user_id: "provider-9".into(),
                added_by: "admin-1".into(),
                added_at: now(),
                note: Some("Complaint from Quillfeather Pavilion".into()),
            },
            vec!["Complaint from Quillfeather".into()],
        ),
        sample(
            &worked_assignment(user_id),
            vec!["2026-11-29T14:07".into(), "Okonkwo".into()],
        ),
        sample(
            &edge::access_log::AccessLogEntry {
                log_owner: user_id.to_owned(),
                request_id: "req-1".into(),
                route: "GET /v1/me".into(),
                status_code: 200,
                accessed_at: "2026-11-29T17:41:09.512Z"
                    .parse()
                    .unwrap_or(Timestamp::UNIX_EPOCH),
                source_ip: Some("198.51.100.23".into()),
            },
            vec!["198.51.100.23".into(), "2026-11-29T17:41".into()],
        ),
    ]
}

/// The registry's promise, checked against real records: it lives here because only the domain knows
/// what a fully populated record of each type holds.
#[cfg(test)]
mod registry_tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;
    use platform::schema::Protection;

    fn strings(value: &AttributeValue, out: &mut Vec<String>) {
        match value {
            AttributeValue::S(s) | AttributeValue::N(s) => out.push(s.to_lowercase()),
            AttributeValue::Ss(list) | AttributeValue::Ns(list) => {
                out.extend(list.iter().map(|s| s.to_lowercase()))
            }
            AttributeValue::L(list) => list.iter().for_each(|v| strings(v, out)),
            AttributeValue::M(map) => map.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }

    /// Every field of every stored domain type is declared, and every personal value of a fully
    /// populated sample sits in an attribute declared `Personal`. Adding a personal field to a domain
    /// type without declaring it `Personal` fails here.
    #[test]
    fn personal_values_only_in_personal_attributes() {
        for sample in all_records("0f0e0d0c-0000-4000-8000-000000000001") {
            let item_type = sample.item_type;
            for (name, value) in &sample.item {
                let protection = item_type.protection(name).unwrap_or_else(|| {
                    panic!("{}.{name} is not declared in the schema registry", item_type.name)
                });
                if protection == Protection::Personal {
                    continue;
                }
                let mut found = Vec::new();
                strings(value, &mut found);
                for personal in &sample.personal_values {
                    let personal = personal.to_lowercase();
                    assert!(
                        !found.iter().any(|text| text.contains(&personal)),
                        "{}.{name} is {protection:?} but holds the personal value {personal:?}",
                        item_type.name
                    );
                }
            }
            for declared in item_type.attributes {
                if declared.protection == Protection::Personal {
                    assert!(
                        sample.item.contains_key(declared.name),
                        "the sample of {} leaves {} empty: fill it so this test covers it",
                        item_type.name,
                        declared.name
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod billing_tests {
    //! Invoice pricing, here because it needs a sample request (and the samples need the invoice).
    use crate::agencies;
    use crate::billing::invoice_lines;
    use crate::service_requests::pricing::PriceLine;

    #[test]
    fn each_officer_is_billed_their_approved_hours_with_the_minimum_and_the_booked_surcharges() {
        let rates = agencies::Rates {
            hourly_rate_cents: 6500,
            minimum_hours: 2,
            holiday_multiplier_percent: 150,
            short_notice_multiplier_percent: 125,
            short_notice_hours: 24,
            vehicle_charge_cents: 2500,
            admin_fee_percent: 0,
        };
        let mut request = crate::samples::service_request("customer", "agency");
        request.requirements.vehicle = true;
        request.price.lines = vec![PriceLine {
            code: "holiday".into(),
            description: String::new(),
            amount_cents: 0,
        }];
        // 1 h worked is billed at the 2 h minimum; 3 h as worked; both at the holiday rate.
        let (lines, total) = invoice_lines(&rates, &request, &[60, 180]).expect("priced");
        let first = 2 * 6500 + 6500 + 2500; // labour, holiday surcharge (50 %), vehicle
        let second = 3 * 6500 + 9750 + 2500;
        assert_eq!(total, first + second);
        assert!(lines.iter().all(|l| l.description.starts_with("officer ")));
        assert!(lines[0].description.contains("minimum 2 h"));
    }
}
