//! The purposes personal data is used for, and which of them need the person's consent. The policy
//! names the original ones (scheduling the services asked for, assigning a provider, taking payment,
//! contacting the user about them, fighting fraud: no consent needed; marketing, by e-mail, post or
//! telephone: only with consent). Any purpose added later is added by a privacy officer, with a
//! description, and always needs the person's recorded consent first: [`permitted`] is the check
//! every use of personal data for such a purpose goes through (a campaign's sending, for one).
//! Owner of the added-purpose records.

use crate::consent;
use edge::auth::{Caller, Role};
use edge::error::ApiError;
use edge::validation::Validator;
use jiff::Timestamp;
use platform::AppState;
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record, Store, StoreError};
use serde::{Deserialize, Serialize};

pub use crate::consent::{MARKETING_CHANNELS, MARKETING_EMAIL, MARKETING_PHONE, MARKETING_POST};

/// A purpose as users and staff see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Purpose {
    /// Its stable name (`scheduling`, `marketing_email`, or one a privacy officer added).
    pub purpose: String,
    /// What the data is used for, in the words shown to the person.
    pub description: String,
    /// Whether the person's recorded consent is needed before any use for it.
    pub needs_consent: bool,
    /// Whether the policy named it from the start (else a privacy officer added it).
    pub original: bool,
}

/// The purposes the policy names: (name, description, needs consent).
const ORIGINAL: [(&str, &str, bool); 8] = [
    ("scheduling", "to schedule the services you request", false),
    (
        "assignment",
        "to assign a Security Provider to your request, and shifts to providers",
        false,
    ),
    (
        "payment",
        "to take payment through our designated processor",
        false,
    ),
    (
        "service_contact",
        "to contact you about your account, your requests and your shifts",
        false,
    ),
    (
        "fraud_prevention",
        "to protect users and the service from fraud",
        false,
    ),
    (MARKETING_EMAIL, "updates and promotions by e-mail", true),
    (MARKETING_POST, "updates and promotions by post", true),
    (
        MARKETING_PHONE,
        "updates and promotions by telephone or SMS",
        true,
    ),
];

/// Names no added purpose may take: `marketing` meant all channels at once before the channels were
/// purposes of their own, and a new purpose of that name would inherit decisions made about another.
const RESERVED: [&str; 1] = ["marketing"];

/// Whether `name` can be a purpose's name: 3 to 40 lower-case letters and underscores (it goes into
/// sort keys and unsubscribe tokens, so nothing else is allowed).
pub fn is_well_formed(name: &str) -> bool {
    (3..=40).contains(&name.len()) && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

/// Most purposes privacy officers may add (they are listed on every consent page).
pub const MAX_ADDED: usize = 50;

/// A purpose added by a privacy officer after the policy's original ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedPurpose {
    pub purpose: String,
    pub description: String,
    /// The privacy officer who added it.
    pub added_by: String,
    pub added_at: Timestamp,
}

impl AddedPurpose {
    fn key_of(purpose: &str) -> ItemKey {
        ItemKey::new(PARTITION.to_owned(), format!("{PREFIX}{purpose}"))
    }
}

const PARTITION: &str = "PURPOSES";
const PREFIX: &str = "PURPOSE#";

impl Record for AddedPurpose {
    const TYPE: &'static ItemType = &schema::ADDED_PURPOSE;

    fn key(&self) -> ItemKey {
        Self::key_of(&self.purpose)
    }
}

impl From<&AddedPurpose> for Purpose {
    fn from(added: &AddedPurpose) -> Self {
        Self {
            purpose: added.purpose.clone(),
            description: added.description.clone(),
            needs_consent: true,
            original: false,
        }
    }
}

/// Every purpose: the original ones, then those privacy officers added.
pub async fn all(store: &Store) -> Result<Vec<Purpose>, StoreError> {
    let mut purposes: Vec<Purpose> = ORIGINAL
        .iter()
        .map(|(purpose, description, needs_consent)| Purpose {
            purpose: (*purpose).to_owned(),
            description: (*description).to_owned(),
            needs_consent: *needs_consent,
            original: true,
        })
        .collect();
    let added = store.query::<AddedPurpose>(PARTITION, PREFIX, MAX_ADDED).await?;
    purposes.extend(added.iter().map(|found| Purpose::from(&found.record)));
    Ok(purposes)
}

/// One purpose by name, or `None` when there is no such purpose.
pub async fn find(store: &Store, name: &str) -> Result<Option<Purpose>, StoreError> {
    if let Some((purpose, description, needs_consent)) = ORIGINAL.iter().find(|(p, _, _)| *p == name) {
        return Ok(Some(Purpose {
            purpose: (*purpose).to_owned(),
            description: (*description).to_owned(),
            needs_consent: *needs_consent,
            original: true,
        }));
    }
    Ok(store
        .get::<AddedPurpose>(&AddedPurpose::key_of(name))
        .await?
        .map(|found| Purpose::from(&found.record)))
}

/// Why a use of someone's data for a purpose is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No such purpose: nothing may be done for it.
    #[error("no such purpose")]
    Unknown,
    /// The purpose needs consent and the person has not given it (or took it back).
    #[error("the person has not consented to this purpose")]
    NoConsent,
}

/// The policy's original purposes that need no consent. A processing path for one of them names
/// it, and gets its [`Permit`] without reading anything: the name is the point, so that no path
/// uses personal data without saying what for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Original {
    /// Scheduling the services a user asked for.
    Scheduling,
    /// Assigning a Security Provider to a request, and shifts to providers.
    Assignment,
    /// Taking payment through the designated processor.
    Payment,
    /// Contacting a person about their account, requests, shifts, privacy rights or the policy.
    ServiceContact,
    /// Protecting users and the service from fraud.
    FraudPrevention,
}

impl Original {
    /// Its stable name, as in [`all`].
    pub fn name(self) -> &'static str {
        match self {
            Self::Scheduling => "scheduling",
            Self::Assignment => "assignment",
            Self::Payment => "payment",
            Self::ServiceContact => "service_contact",
            Self::FraudPrevention => "fraud_prevention",
        }
    }

    /// The permit for a use for this purpose: always given, since the policy names it and asks no
    /// consent for it.
    pub fn permit(self) -> Permit {
        Permit {
            purpose: self.name().to_owned(),
        }
    }
}

/// Whether a use for the purpose `name` needs the person's consent: for every purpose but the
/// policy's original ones that need none (an unknown or added name always does).
pub fn needs_consent(name: &str) -> bool {
    !ORIGINAL
        .iter()
        .any(|(purpose, _, needs)| *purpose == name && !needs)
}

/// Proof that a use of someone's personal data was checked against its purpose. Only
/// [`Original::permit`], [`permitted`] and [`decide`] make one, and mail leaves only with one
/// (`crate::mail::send`, the one path to the mailer: clippy's `disallowed-methods` refuses any
/// other), so a purpose that needs consent reaches nobody who has not said yes to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permit {
    purpose: String,
}

impl Permit {
    /// The purpose the use was checked for (logged with each mail sent: a name, never a person).
    pub fn purpose(&self) -> &str {
        &self.purpose
    }

    /// Whether the purpose needed consent (then the person gave it): marketing mail must be sent
    /// under such a permit, and service mail under one that needed none.
    pub fn needed_consent(&self) -> bool {
        needs_consent(&self.purpose)
    }
}

/// Whether `user_id`'s personal data may be used for `purpose` now: yes for the policy's original
/// purposes that need no consent; for every other purpose, only with the person's current recorded
/// consent. The one check a processing path for a consent-based purpose asks; its answer is the
/// [`Permit`] the path needs to act.
pub async fn permitted(
    store: &Store,
    user_id: &str,
    purpose: &str,
) -> Result<Result<Permit, Refusal>, StoreError> {
    let Some(found) = find(store, purpose).await? else {
        return Ok(Err(Refusal::Unknown));
    };
    if !found.needs_consent {
        return Ok(Ok(Permit {
            purpose: found.purpose,
        }));
    }
    let decision = consent::current(store, user_id, purpose).await?;
    Ok(decide(&found, decision.as_ref()))
}

/// The rule behind [`permitted`], for a caller that read the person's decision itself (a campaign
/// reads a page of people's decisions in one request): no consent needed, or consent granted.
pub fn decide(purpose: &Purpose, decision: Option<&consent::ConsentState>) -> Result<Permit, Refusal> {
    // Whether consent is needed is the policy's, not the caller's: only an original purpose it names
    // as needing none goes without (a `Purpose` built with `needs_consent: false` permits nothing more).
    if !needs_consent(&purpose.purpose) || decision.is_some_and(|d| d.purpose == purpose.purpose && d.granted)
    {
        Ok(Permit {
            purpose: purpose.purpose.clone(),
        })
    } else {
        Err(Refusal::NoConsent)
    }
}

/// The body of `POST /v1/admin/purposes`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurposeInput {
    pub purpose: String,
    pub description: String,
}

/// `POST /v1/admin/purposes` (privacy officers): a new purpose, which needs each person's consent
/// before their data is used for it. 409 when the name is taken.
pub async fn add(state: &AppState, caller: &Caller, input: PurposeInput) -> Result<Purpose, ApiError> {
    caller.require(Role::PrivacyOfficer)?;
    let mut v = Validator::new();
    let name = input.purpose.as_str();
    if !is_well_formed(name) {
        v.reject("/purpose", "3 to 40 lower-case letters and underscores");
    }
    if RESERVED.contains(&name) {
        v.reject("/purpose", "this name is reserved");
    }
    v.text("/description", &input.description, 300);
    v.finish()?;
    if find(&state.store, name).await?.is_some() {
        return Err(ApiError::Conflict("a purpose of this name exists".into()));
    }
    if state
        .store
        .query::<AddedPurpose>(PARTITION, PREFIX, MAX_ADDED)
        .await?
        .len()
        >= MAX_ADDED
    {
        return Err(ApiError::Conflict(format!(
            "there are {MAX_ADDED} added purposes already"
        )));
    }
    let added = AddedPurpose {
        purpose: name.to_owned(),
        description: input.description.trim().to_owned(),
        added_by: caller.user_id.clone(),
        added_at: state.clock.now(),
    };
    match state.store.create(&added).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed) => {
            return Err(ApiError::Conflict("a purpose of this name exists".into()));
        }
        Err(error) => return Err(error.into()),
    }
    tracing::info!(purpose = %added.purpose, "purpose added");
    Ok(Purpose::from(&added))
}

/// A purpose with the person's decision about it, as `GET /v1/me/consents` and the data inventory
/// show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurposeConsent {
    #[serde(flatten)]
    pub purpose: Purpose,
    /// `not_needed` (an original purpose of the service), `granted`, `refused` or `not_asked`.
    pub consent: &'static str,
    /// When the person last decided, if they did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<Timestamp>,
}

/// The names of every purpose that needs consent (what a marketing opt-out withdraws).
pub async fn needing_consent(store: &Store) -> Result<Vec<String>, StoreError> {
    Ok(all(store)
        .await?
        .into_iter()
        .filter(|p| p.needs_consent)
        .map(|p| p.purpose)
        .collect())
}

/// Every purpose with `user_id`'s decision about it.
pub async fn with_consents(store: &Store, user_id: &str) -> Result<Vec<PurposeConsent>, StoreError> {
    let decisions = consent::all_current(store, user_id).await?;
    Ok(all(store)
        .await?
        .into_iter()
        .map(|purpose| {
            let decided = decisions.iter().find(|d| d.purpose == purpose.purpose);
            let consent = match (purpose.needs_consent, decided) {
                (false, _) => "not_needed",
                (true, Some(d)) if d.granted => "granted",
                (true, Some(_)) => "refused",
                (true, None) => "not_asked",
            };
            PurposeConsent {
                decided_at: decided.map(|d| d.recorded_at),
                purpose,
                consent,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_purpose_that_needs_consent_is_used_only_with_the_persons_current_yes() {
        let marketing = Purpose {
            purpose: MARKETING_EMAIL.into(),
            description: String::new(),
            needs_consent: true,
            original: true,
        };
        let decision = |purpose: &str, granted: bool| consent::ConsentState {
            user_id: "u".into(),
            purpose: purpose.into(),
            granted,
            policy_version: "v".into(),
            source: consent::ConsentSource::App,
            recorded_at: Timestamp::UNIX_EPOCH,
        };
        assert_eq!(decide(&marketing, None), Err(Refusal::NoConsent));
        assert_eq!(
            decide(&marketing, Some(&decision(MARKETING_EMAIL, false))),
            Err(Refusal::NoConsent)
        );
        assert_eq!(
            decide(&marketing, Some(&decision(MARKETING_POST, true))),
            Err(Refusal::NoConsent)
        );
        assert_eq!(
            decide(&marketing, Some(&decision(MARKETING_EMAIL, true))).map(|p| p.purpose().to_owned()),
            Ok(MARKETING_EMAIL.to_owned())
        );
        let service = Purpose {
            needs_consent: false,
            ..marketing
        };
        assert_eq!(
            decide(&service, None),
            Err(Refusal::NoConsent),
            "a marketing purpose dressed as needing no consent still needs it"
        );
        let scheduling = Purpose {
            purpose: "scheduling".into(),
            ..service
        };
        assert!(decide(&scheduling, None).is_ok());
        assert!(!decide(&scheduling, None).is_ok_and(|p| p.needed_consent()));
    }

    #[test]
    fn every_original_purpose_a_path_can_name_is_one_the_policy_lists_without_consent() {
        for original in [
            Original::Scheduling,
            Original::Assignment,
            Original::Payment,
            Original::ServiceContact,
            Original::FraudPrevention,
        ] {
            let listed = ORIGINAL.iter().find(|(p, _, _)| *p == original.name());
            assert_eq!(listed.map(|(_, _, needs)| *needs), Some(false), "{original:?}");
            assert_eq!(original.permit().purpose(), original.name());
        }
    }

    #[test]
    fn the_original_purposes_need_consent_exactly_for_marketing() {
        let needing: Vec<&str> = ORIGINAL
            .iter()
            .filter(|(_, _, n)| *n)
            .map(|(p, _, _)| *p)
            .collect();
        assert_eq!(needing, MARKETING_CHANNELS.to_vec());
    }
}
