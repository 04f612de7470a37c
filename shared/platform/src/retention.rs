//! Retention classes: how long each kind of record is kept, from which event, and why.
//!
//! Every item's `expires_at` (the TTL attribute) is computed from its class and the moment its period
//! starts ([`RetentionClass::expires_at`]); nothing else writes it. The schema registry names each item
//! type's class; the purge job (`jobs::purge`) does what TTL cannot.

use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, ToSpan};
use serde::Serialize;

/// A retention class: a period, the event it runs from, and its legal basis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionClass {
    /// Profiles, consents, locks: kept while the account exists; erased on deletion.
    Account,
    /// A service request: 3 years after it is completed (disputes, invoices).
    ServiceRequest,
    /// W-9 and other tax records: 7 years (IRS record-keeping for 1099 reporting).
    TaxRecord,
    /// Payment and transaction records: 7 years (tax and accounting law).
    PaymentRecord,
    /// Access-log entries (IP, time), kept to fight fraud: 90 days.
    AccessLog,
    /// Privacy-request records and their audit trail: 24 months (CCPA regulations §7101).
    PrivacyAudit,
    /// A registration that was never verified: 7 days.
    UnverifiedRegistration,
    /// What an `Idempotency-Key` produced: 24 hours, long enough for any client retry.
    Idempotency,
    /// Anonymous aggregates (counts per type and day, no ids): 2 years.
    Metrics,
    /// A data export (access, portability): 7 days to fetch it.
    Export,
    /// That an erased person's sign-in may no longer write (a keyed hash, no personal data): kept
    /// while the erasure runs, then the longest token lifetime (1 h, Cognito's default, which
    /// template.yaml keeps) plus an hour after the user-pool user is deleted.
    Revocation,
    /// A support inquiry and its answers: 2 years after it is closed (a complaint about how it was
    /// handled, a question that comes back).
    SupportInquiry,
}

impl RetentionClass {
    /// Every class, for documentation and tests.
    pub const ALL: [RetentionClass; 12] = [
        Self::Account,
        Self::ServiceRequest,
        Self::TaxRecord,
        Self::PaymentRecord,
        Self::AccessLog,
        Self::PrivacyAudit,
        Self::UnverifiedRegistration,
        Self::Idempotency,
        Self::Metrics,
        Self::Export,
        Self::Revocation,
        Self::SupportInquiry,
    ];

    /// How long after its start an item of this class is kept; `None` while the account lives.
    pub fn period(self) -> Option<Span> {
        match self {
            Self::Account => None,
            Self::ServiceRequest => Some(3.years()),
            Self::TaxRecord | Self::PaymentRecord => Some(7.years()),
            Self::AccessLog => Some(90.days()),
            Self::PrivacyAudit => Some(24.months()),
            Self::UnverifiedRegistration => Some(7.days()),
            Self::Idempotency => Some(24.hours()),
            Self::Metrics => Some(2.years()),
            Self::Export => Some(7.days()),
            Self::Revocation => Some(2.hours()),
            Self::SupportInquiry => Some(2.years()),
        }
    }

    /// The event the period runs from.
    pub fn runs_from(self) -> &'static str {
        match self {
            Self::Account => "account deletion (erased then)",
            Self::ServiceRequest => "completion of the service",
            Self::TaxRecord => "certification of the form",
            Self::PaymentRecord => "the transaction",
            Self::AccessLog => "the request",
            Self::PrivacyAudit => "receipt of the request",
            Self::UnverifiedRegistration => "registration",
            Self::Idempotency => "the request",
            Self::Metrics => "the day counted",
            Self::Export => "generation of the export",
            Self::Revocation => "the deletion of the user-pool user (kept while the erasure runs)",
            Self::SupportInquiry => "the closing of the inquiry",
        }
    }

    /// Why we keep it that long.
    pub fn legal_basis(self) -> &'static str {
        match self {
            Self::Account => "contract: needed to provide the service the user signed up for",
            Self::ServiceRequest => "contract and legitimate interest: invoices, disputes, claims",
            Self::TaxRecord => "legal obligation: IRS record-keeping for information returns (1099)",
            Self::PaymentRecord => "legal obligation: tax and accounting record-keeping",
            Self::AccessLog => "legitimate interest: protecting users and the service from fraud",
            Self::PrivacyAudit => "legal obligation: CCPA regulations §7101 (records of requests)",
            Self::UnverifiedRegistration => "none beyond finishing the registration",
            Self::Idempotency => {
                "contract: a retried creating call (a booking, a registration) must not create twice"
            }
            Self::Metrics => "none needed: anonymous aggregates hold no personal data",
            Self::Export => "legal obligation: the right of access and portability (delivery to the subject)",
            Self::Revocation => {
                "legal obligation: an erased person's still-valid token must not write new data"
            }
            Self::SupportInquiry => {
                "legitimate interest: answering the person, and follow-ups or complaints about the answer"
            }
        }
    }

    /// `expires_at` (epoch seconds) of an item whose period started at `start`; `None` when the class
    /// has no fixed period or the period has not started yet.
    pub fn expires_at(self, start: Option<Timestamp>) -> Option<i64> {
        let period = self.period()?;
        let end = start?.to_zoned_datetime(TimeZone::UTC).checked_add(period).ok()?;
        Some(end.timestamp().as_second())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    #[test]
    fn periods_follow_the_calendar() {
        // 7 years from a leap day ends on the last day of February.
        let end = RetentionClass::TaxRecord.expires_at(Some(at("2024-02-29T10:00:00Z")));
        assert_eq!(end, Some(at("2031-02-28T10:00:00Z").as_second()));
        // 24 months from a month end.
        let end = RetentionClass::PrivacyAudit.expires_at(Some(at("2026-01-31T00:00:00Z")));
        assert_eq!(end, Some(at("2028-01-31T00:00:00Z").as_second()));
        let end = RetentionClass::AccessLog.expires_at(Some(at("2026-11-29T00:00:00Z")));
        assert_eq!(end, Some(at("2027-02-27T00:00:00Z").as_second()));
    }

    #[test]
    fn accounts_and_unstarted_periods_do_not_expire() {
        assert_eq!(
            RetentionClass::Account.expires_at(Some(at("2026-01-01T00:00:00Z"))),
            None
        );
        assert_eq!(RetentionClass::ServiceRequest.expires_at(None), None);
    }

    #[test]
    fn every_class_explains_itself() {
        for class in RetentionClass::ALL {
            assert!(!class.legal_basis().is_empty() && !class.runs_from().is_empty());
            assert_eq!(class.period().is_none(), class == RetentionClass::Account);
        }
    }
}
