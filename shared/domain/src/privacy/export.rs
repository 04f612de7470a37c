//! The data export behind the rights of access and portability: every personal item of the user,
//! decrypted, as JSON Lines (`{"type": …, "data": {…}}` per line), with a manifest (items per type,
//! generated-at, SHA-256 of the whole document, number of parts).
//!
//! Built by Query only, one page at a time: the document is cut into parts of about
//! [`PART_BYTES`] as it is written, so a user with 10,000 records never has more than a page and a
//! part in memory. Parts are stored encrypted under the user's own key in the user's partition
//! (`EXPORT#<request id>#<part>`), expire after 7 days (the `export` retention class) and are
//! served to the subject only (`GET /v1/privacy-requests/{id}/export?part=N`).

use jiff::Timestamp;
use platform::AppState;
use platform::keys::user_partition;
use platform::schema::{self, ItemType};
use platform::store::{Item, ItemKey, Record, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// About how large one stored part of an export is (a DynamoDB item holds at most 400 KB, and an
/// API Gateway response 6 MB).
pub const PART_BYTES: usize = 256 * 1024;

/// Attributes that are storage mechanics, not the user's data.
const INTERNAL: &[&str] = &[
    "pk",
    "sk",
    "version",
    "gsi1pk",
    "gsi1sk",
    "due_day",
    "due_at",
    "expires_at",
    "pool_token",
];

/// Fields left out because they are credentials of a processor, not information about the user.
const WITHHELD: &[&str] = &["processor_token"];

/// One stored part of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportPart {
    pub user_id: String,
    pub request_id: String,
    pub part: u32,
    /// JSON Lines.
    pub content: String,
    pub created_at: Timestamp,
}

impl ExportPart {
    /// The key of part `part` of `request_id`'s export.
    pub fn key_of(user_id: &str, request_id: &str, part: u32) -> ItemKey {
        ItemKey::new(user_partition(user_id), format!("EXPORT#{request_id}#{part:05}"))
    }
}

impl Record for ExportPart {
    const TYPE: &'static ItemType = &schema::EXPORT_PART;

    fn key(&self) -> ItemKey {
        Self::key_of(&self.user_id, &self.request_id, self.part)
    }

    fn retention_start(&self) -> Option<Timestamp> {
        Some(self.created_at)
    }
}

/// What an export holds, and how to check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportManifest {
    pub generated_at: Timestamp,
    /// Until when the parts can be fetched.
    pub available_until: Timestamp,
    pub parts: u32,
    /// Lowercase hex SHA-256 of the parts concatenated in order.
    pub sha256: String,
    pub items_by_type: BTreeMap<String, usize>,
    pub format: String,
}

/// The partitions an export reads: the user's own, their access log, their privacy requests.
fn sources(user_id: &str) -> [String; 3] {
    [
        user_partition(user_id),
        platform::keys::access_log_partition(user_id),
        platform::keys::privacy_partition(user_id),
    ]
}

/// One line of the document for `item`, or `None` for items that are not the user's data (earlier
/// exports, uniqueness locks).
fn line_of(item: Item) -> Option<(String, String)> {
    let item_type = match item.get(platform::store::ITEM_TYPE) {
        Some(aws_sdk_dynamodb::types::AttributeValue::S(t)) => t.clone(),
        _ => return None,
    };
    if item_type == schema::EXPORT_PART.name {
        return None;
    }
    let data: Item = item
        .into_iter()
        .filter(|(name, _)| {
            !INTERNAL.contains(&name.as_str())
                && !WITHHELD.contains(&name.as_str())
                && !name.starts_with("aws_dbe_")
                && name != platform::store::ITEM_TYPE
        })
        .collect();
    let data: serde_json::Value = serde_dynamo::from_item(data).ok()?;
    let line = serde_json::json!({"type": item_type, "data": data}).to_string();
    Some((item_type, line))
}

/// Builds the export for privacy request `request_id` of `user_id`, in parts of about `part_bytes`.
/// Re-running it rewrites the same parts (idempotent).
pub async fn build(
    state: &AppState,
    user_id: &str,
    request_id: &str,
    part_bytes: usize,
) -> Result<ExportManifest, StoreError> {
    let now = state.clock.now();
    // The parts are stored under the user's own key; someone who never registered has none yet.
    state
        .keys
        .create_user_key(user_id)
        .await
        .map_err(|error| StoreError::Sdk(error.to_string()))?;
    let mut hasher = Sha256::new();
    let mut items_by_type: BTreeMap<String, usize> = BTreeMap::new();
    let mut buffer = String::new();
    let mut part = 0u32;
    for pk in sources(user_id) {
        let mut start = None;
        loop {
            let (items, next) = state.store.partition_page(&pk, start).await?;
            for item in items {
                let Some((item_type, line)) = line_of(item) else {
                    continue;
                };
                *items_by_type.entry(item_type).or_default() += 1;
                buffer.push_str(&line);
                buffer.push('\n');
                if buffer.len() >= part_bytes {
                    write_part(state, user_id, request_id, part, &mut buffer, &mut hasher, now).await?;
                    part += 1;
                }
            }
            match next {
                Some(key) => start = Some(key),
                None => break,
            }
        }
    }
    if !buffer.is_empty() || part == 0 {
        write_part(state, user_id, request_id, part, &mut buffer, &mut hasher, now).await?;
        part += 1;
    }
    let expires = platform::retention::RetentionClass::Export
        .expires_at(Some(now))
        .and_then(|s| Timestamp::from_second(s).ok())
        .unwrap_or(now);
    Ok(ExportManifest {
        generated_at: now,
        available_until: expires,
        parts: part,
        sha256: hex::encode(hasher.finalize()),
        items_by_type,
        format: "application/x-ndjson; one {\"type\", \"data\"} object per line".into(),
    })
}

async fn write_part(
    state: &AppState,
    user_id: &str,
    request_id: &str,
    part: u32,
    buffer: &mut String,
    hasher: &mut Sha256,
    now: Timestamp,
) -> Result<(), StoreError> {
    hasher.update(buffer.as_bytes());
    let record = ExportPart {
        user_id: user_id.to_owned(),
        request_id: request_id.to_owned(),
        part,
        content: std::mem::take(buffer),
        created_at: now,
    };
    match state.store.get::<ExportPart>(&record.key()).await? {
        Some(existing) => state.store.replace(&record, existing.version).await.map(|_| ()),
        None => state.store.create(&record).await,
    }
}

/// Part `part` of the caller's export, while it is available.
pub async fn part_of(
    state: &AppState,
    user_id: &str,
    request_id: &str,
    part: u32,
) -> Result<Option<String>, StoreError> {
    Ok(state
        .store
        .get::<ExportPart>(&ExportPart::key_of(user_id, request_id, part))
        .await?
        .map(|v| v.record.content))
}
