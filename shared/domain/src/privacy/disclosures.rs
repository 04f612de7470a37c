//! The disclosure log: the policy lets personal data go only to processors, the named affiliate
//! (Off Duty Services, Inc.), a successor, or under legal demand, and each disclosure is logged here
//! by a privacy officer. Entries sit with the subject's privacy records (`PRIVACY#<user id>`), so the
//! subject's access export includes them, and they are kept 24 months.
//!
//! While a user's processing is restricted, only disclosures under legal demand are accepted.

use crate::accounts::{self, AccountStatus};
use edge::auth::{Caller, Role};
use edge::error::ApiError;
use edge::validation::Validator;
use jiff::Timestamp;
use platform::AppState;
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record};
use serde::{Deserialize, Serialize};

/// The affiliate the policy names.
pub const AFFILIATE: &str = "Off Duty Services, Inc.";

/// Who received the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientCategory {
    /// A processor acting for us (hosting, mail, payments).
    Processor,
    /// The named affiliate.
    Affiliate,
    /// Law enforcement or a court, under legal demand.
    LegalDemand,
    /// A successor in a merger or sale.
    Successor,
}

/// The body of `POST /v1/admin/disclosures`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisclosureInput {
    pub subject_user_id: String,
    pub recipient_category: RecipientCategory,
    pub recipient: String,
    pub legal_basis: String,
    /// Item categories of the data inventory (`customer_account`, `access_log_entry`, …).
    pub data_categories: Vec<String>,
    /// E.g. a subpoena or court order number.
    #[serde(default)]
    pub reference: Option<String>,
    pub disclosed_at: Timestamp,
}

/// One logged disclosure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disclosure {
    pub disclosure_id: String,
    pub subject_user_id: String,
    pub recipient_category: RecipientCategory,
    pub recipient: String,
    pub legal_basis: String,
    pub data_categories: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub disclosed_at: Timestamp,
    pub recorded_by: String,
    pub recorded_at: Timestamp,
}

impl Record for Disclosure {
    const TYPE: &'static ItemType = &schema::DISCLOSURE;

    fn key(&self) -> ItemKey {
        ItemKey::new(
            platform::keys::privacy_partition(&self.subject_user_id),
            format!(
                "DISCLOSURE#{}#{}",
                platform::keys::sortable_time(self.disclosed_at),
                self.disclosure_id
            ),
        )
    }

    fn retention_start(&self) -> Option<Timestamp> {
        Some(self.recorded_at)
    }
}

async fn is_restricted(state: &AppState, user_id: &str) -> Result<bool, ApiError> {
    Ok(accounts::statuses(&state.store, user_id)
        .await?
        .iter()
        .any(|(_, status)| *status == AccountStatus::Restricted))
}

/// `POST /v1/admin/disclosures` (privacy officers): logs one disclosure.
pub async fn record(
    state: &AppState,
    caller: &Caller,
    input: DisclosureInput,
) -> Result<Disclosure, ApiError> {
    caller.require(Role::PrivacyOfficer)?;
    let mut v = Validator::new();
    v.text("/subject_user_id", &input.subject_user_id, 64);
    v.text("/recipient", &input.recipient, 200);
    v.text("/legal_basis", &input.legal_basis, 500);
    if let Some(reference) = &input.reference {
        v.text("/reference", reference, 200);
    }
    v.check(
        input.recipient_category != RecipientCategory::Affiliate || input.recipient == AFFILIATE,
        "/recipient",
        format!("the only affiliate the policy names is {AFFILIATE}"),
    );
    v.check(
        input.recipient_category != RecipientCategory::LegalDemand || input.reference.is_some(),
        "/reference",
        "a disclosure under legal demand names the order or subpoena",
    );
    v.check(
        !input.data_categories.is_empty(),
        "/data_categories",
        "name at least one category",
    );
    for (index, category) in input.data_categories.iter().enumerate() {
        v.check(
            schema::item_type(category).is_some(),
            format!("/data_categories/{index}"),
            "must be a category of the data inventory, such as customer_account",
        );
    }
    v.finish()?;
    if input.recipient_category != RecipientCategory::LegalDemand
        && is_restricted(state, &input.subject_user_id).await?
    {
        return Err(ApiError::Conflict(
            "the subject restricted processing: only disclosures under legal demand may be made".into(),
        ));
    }
    let now = state.clock.now();
    let disclosure = Disclosure {
        disclosure_id: uuid::Uuid::new_v4().to_string(),
        subject_user_id: input.subject_user_id,
        recipient_category: input.recipient_category,
        recipient: input.recipient.trim().to_owned(),
        legal_basis: input.legal_basis.trim().to_owned(),
        data_categories: input.data_categories,
        reference: input.reference.map(|r| r.trim().to_owned()),
        disclosed_at: input.disclosed_at,
        recorded_by: caller.user_id.clone(),
        recorded_at: now,
    };
    state.store.create(&disclosure).await?;
    tracing::info!(disclosure_id = %disclosure.disclosure_id, category = ?disclosure.recipient_category, "disclosure logged");
    Ok(disclosure)
}

/// Logs that `subjects`' data (of `data_categories`) went to `recipient`, a processor acting for
/// us, on `legal_basis`, handed over by `caller` now with `reference` (e.g. a campaign's list given
/// to its mail house). One entry per subject, in their privacy records; a few written at a time.
/// The caller hands nothing over unless every entry was written.
pub async fn log_handover(
    state: &AppState,
    caller: &Caller,
    subjects: &[String],
    recipient: &str,
    legal_basis: &str,
    data_categories: &[&str],
    reference: &str,
) -> Result<(), ApiError> {
    use futures::StreamExt;
    let now = state.clock.now();
    let mut entries = Vec::with_capacity(subjects.len());
    for subject in subjects {
        entries.push(Disclosure {
            disclosure_id: uuid::Uuid::new_v4().to_string(),
            subject_user_id: subject.clone(),
            recipient_category: RecipientCategory::Processor,
            recipient: recipient.to_owned(),
            legal_basis: legal_basis.to_owned(),
            data_categories: data_categories.iter().map(|c| (*c).to_owned()).collect(),
            reference: Some(reference.to_owned()),
            disclosed_at: now,
            recorded_by: caller.user_id.clone(),
            recorded_at: now,
        });
    }
    let mut writes = futures::stream::iter(entries)
        .map(|entry| async move { state.store.create(&entry).await })
        .buffer_unordered(8);
    while let Some(written) = writes.next().await {
        written?;
    }
    tracing::info!(subjects = subjects.len(), "handover logged as disclosures");
    Ok(())
}
