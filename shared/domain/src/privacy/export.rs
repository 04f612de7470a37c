//! The data export behind the rights of access and portability: every personal item of the user,
//! decrypted, as JSON Lines (`{"type": …, "data": {…}}` per line), with a manifest (items per type,
//! generated-at, SHA-256 of the whole document, number of parts).
//!
//! Built off the request path by the privacy worker ([`build_slice`], a few Query pages per
//! invocation) and by Query only, one page at a time: the document is cut into parts of about
//! [`PART_BYTES`] as it is written, so a user with 10,000 records never has more than a page and a
//! part in memory. Where it got to is an [`ExportJob`] record, so a crash or a spent slice resumes
//! from the last page read. Parts are stored encrypted under the user's own key in the user's partition
//! (`EXPORT#<request id>#<part>`), expire after 7 days (the `export` retention class) and are
//! served to the subject only (`GET /v1/privacy-requests/{id}/export?part=N`). Someone signed in who
//! never registered has no key (only registration and the key set-up create keys): their export,
//! which can only hold their privacy requests, is kept in their privacy partition, under the system
//! key like those requests ([`ExportHome`]).

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

/// Which partition holds an export's checkpoint and parts, so that a person's export is encrypted
/// under the key of what it holds without any function but registration creating keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportHome {
    /// The user's own partition, under their own key: shredded with it.
    #[default]
    User,
    /// The privacy partition, under the system key: for someone who never registered and so has
    /// no key; their export holds only their privacy requests, which live there already.
    Privacy,
}

impl ExportHome {
    /// Both homes, in the order a reader looks in them.
    pub const ALL: [Self; 2] = [Self::User, Self::Privacy];

    /// The partition of `user_id` this home is.
    pub fn partition(self, user_id: &str) -> String {
        match self {
            Self::User => user_partition(user_id),
            Self::Privacy => platform::keys::privacy_partition(user_id),
        }
    }
}

/// One stored part of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportPart {
    pub user_id: String,
    pub request_id: String,
    pub part: u32,
    /// JSON Lines.
    pub content: String,
    pub created_at: Timestamp,
    #[serde(default)]
    pub home: ExportHome,
}

impl ExportPart {
    /// The key of part `part` of `request_id`'s export, kept in `home`.
    pub fn key_of(home: ExportHome, user_id: &str, request_id: &str, part: u32) -> ItemKey {
        ItemKey::new(home.partition(user_id), format!("EXPORT#{request_id}#{part:05}"))
    }
}

impl Record for ExportPart {
    const TYPE: &'static ItemType = &schema::EXPORT_PART;

    fn key(&self) -> ItemKey {
        Self::key_of(self.home, &self.user_id, &self.request_id, self.part)
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
pub fn sources(user_id: &str) -> [String; 3] {
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
    if item_type == schema::EXPORT_PART.name || item_type == schema::EXPORT_JOB.name {
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

/// For an officer's pointer to an agency's do-not-hire entry about them, the entry itself (its note
/// is data about them, kept in the agency's partition): the agency, when, and the note; never who
/// at the agency added it.
async fn do_not_hire_line(state: &AppState, item: &Item) -> Result<Option<(String, String)>, StoreError> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let is_pointer = matches!(item.get(platform::store::ITEM_TYPE), Some(AttributeValue::S(t)) if t == schema::DO_NOT_HIRE_POINTER.name);
    let (Some(AttributeValue::S(agency_id)), Some(AttributeValue::S(provider_id))) =
        (item.get("agency_id"), item.get("provider_user_id"))
    else {
        return Ok(None);
    };
    if !is_pointer {
        return Ok(None);
    }
    let key = crate::scheduling::roster::DoNotHire::key_of(agency_id, provider_id);
    let Some(entry) = state
        .store
        .get::<crate::scheduling::roster::DoNotHire>(&key)
        .await?
    else {
        return Ok(None);
    };
    let data = serde_json::json!({
        "agency_id": entry.record.agency_id,
        "added_at": entry.record.added_at,
        "note": entry.record.note,
    });
    let line = serde_json::json!({"type": schema::DO_NOT_HIRE.name, "data": data}).to_string();
    Ok(Some((schema::DO_NOT_HIRE.name.to_owned(), line)))
}

/// The worker's checkpoint of one export: which source partition it reads, the last key it read
/// there, the parts written and the items counted so far; the manifest once it is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportJob {
    pub user_id: String,
    pub request_id: String,
    pub created_at: Timestamp,
    /// Index into [`sources`]; `sources().len()` once every partition was read.
    pub source: usize,
    /// The sort key of the last item read in the current source (`None`: from its start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_sk: Option<String>,
    pub parts: u32,
    #[serde(default)]
    pub items_by_type: BTreeMap<String, usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<ExportManifest>,
    #[serde(default)]
    pub slices: u32,
    /// Where this checkpoint and its parts are kept.
    #[serde(default)]
    pub home: ExportHome,
}

impl ExportJob {
    /// The key of the checkpoint of `request_id`'s export, kept in `home`.
    pub fn key_of(home: ExportHome, user_id: &str, request_id: &str) -> ItemKey {
        ItemKey::new(home.partition(user_id), format!("EXPORTJOB#{request_id}"))
    }

    /// Items written to parts so far.
    pub fn items(&self) -> usize {
        self.items_by_type.values().sum()
    }
}

impl Record for ExportJob {
    const TYPE: &'static ItemType = &schema::EXPORT_JOB;

    fn key(&self) -> ItemKey {
        Self::key_of(self.home, &self.user_id, &self.request_id)
    }

    fn retention_start(&self) -> Option<Timestamp> {
        Some(self.created_at)
    }
}

/// Where an export stands after a slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportProgress {
    /// More to read: queue the next slice.
    Building(ExportJob),
    /// Every part is written and checked: the manifest.
    Ready(ExportManifest),
}

/// Builds up to `max_pages` Query pages more of privacy request `request_id`'s export of
/// `user_id` (fewer once the slice has run `MAX_SLICE_TIME`), in parts of about `part_bytes`, and
/// checkpoints after each page. Re-running it after a
/// crash rewrites the same parts from the last checkpoint (idempotent); once done, it answers the
/// stored manifest.
pub async fn build_slice(
    state: &AppState,
    user_id: &str,
    request_id: &str,
    max_pages: usize,
    part_bytes: usize,
) -> Result<ExportProgress, StoreError> {
    let now = state.clock.now();
    let (mut job, mut version) = match checkpoint(state, user_id, request_id).await? {
        Some(current) => current,
        None => {
            // The parts are stored under the user's own key; someone who never registered has none,
            // and only registration creates one: their export is kept beside their requests.
            let has_key = state
                .keys
                .has_user_key(user_id)
                .await
                .map_err(|error| StoreError::Sdk(error.to_string()))?;
            let home = if has_key {
                ExportHome::User
            } else {
                ExportHome::Privacy
            };
            let job = ExportJob {
                user_id: user_id.to_owned(),
                request_id: request_id.to_owned(),
                created_at: now,
                source: 0,
                after_sk: None,
                parts: 0,
                items_by_type: BTreeMap::new(),
                manifest: None,
                slices: 0,
                home,
            };
            match state.store.create(&job).await {
                Ok(()) | Err(StoreError::ConditionFailed) => {}
                Err(error) => return Err(error),
            }
            checkpoint(state, user_id, request_id)
                .await?
                .ok_or_else(|| StoreError::Decode("the export checkpoint vanished".into()))?
        }
    };
    let home = job.home;
    if let Some(manifest) = job.manifest {
        return Ok(ExportProgress::Ready(manifest));
    }
    job.slices = job.slices.saturating_add(1);
    let sources = sources(user_id);
    let mut pages = 0;
    let until = std::time::Instant::now() + crate::privacy::erasure::MAX_SLICE_TIME;
    while job.source < sources.len() && pages < max_pages && std::time::Instant::now() < until {
        let pk = &sources[job.source];
        let start = job
            .after_sk
            .as_ref()
            .map(|sk| ItemKey::new(pk.clone(), sk.clone()).to_item());
        let (items, next) = state.store.partition_page(pk, start).await?;
        pages += 1;
        let mut buffer = String::new();
        let mut last_sk = None;
        for item in items {
            if let Some(aws_sdk_dynamodb::types::AttributeValue::S(sk)) = item.get("sk") {
                last_sk = Some(sk.clone());
            }
            let listed = do_not_hire_line(state, &item).await?;
            let Some((item_type, line)) = line_of(item) else {
                continue;
            };
            *job.items_by_type.entry(item_type).or_default() += 1;
            buffer.push_str(&line);
            buffer.push('\n');
            if let Some((item_type, line)) = listed {
                *job.items_by_type.entry(item_type).or_default() += 1;
                buffer.push_str(&line);
                buffer.push('\n');
            }
            if buffer.len() >= part_bytes {
                write_part(state, home, user_id, request_id, job.parts, &mut buffer, now).await?;
                job.parts += 1;
            }
        }
        if !buffer.is_empty() {
            write_part(state, home, user_id, request_id, job.parts, &mut buffer, now).await?;
            job.parts += 1;
        }
        match next {
            Some(_) => job.after_sk = last_sk.or(job.after_sk.take()),
            None => {
                job.source += 1;
                job.after_sk = None;
            }
        }
        version = state.store.replace(&job, version).await?;
    }
    if job.source < sources.len() {
        return Ok(ExportProgress::Building(job));
    }
    if job.parts == 0 {
        write_part(state, home, user_id, request_id, 0, &mut String::new(), now).await?;
        job.parts = 1;
    }
    // The digest is of the stored parts, read back one at a time (memory stays at one part).
    let mut hasher = Sha256::new();
    for part in 0..job.parts {
        let content = part_in(state, home, user_id, request_id, part)
            .await?
            .ok_or_else(|| StoreError::Decode(format!("export part {part} is missing")))?;
        hasher.update(content.as_bytes());
    }
    let expires = platform::retention::RetentionClass::Export
        .expires_at(Some(job.created_at))
        .and_then(|s| Timestamp::from_second(s).ok())
        .unwrap_or(now);
    let manifest = ExportManifest {
        generated_at: now,
        available_until: expires,
        parts: job.parts,
        sha256: hex::encode(hasher.finalize()),
        items_by_type: job.items_by_type.clone(),
        format: "application/x-ndjson; one {\"type\", \"data\"} object per line".into(),
    };
    job.manifest = Some(manifest.clone());
    state.store.replace(&job, version).await?;
    Ok(ExportProgress::Ready(manifest))
}

/// The checkpoint of `request_id`'s export, in whichever home it was started, with its version.
async fn checkpoint(
    state: &AppState,
    user_id: &str,
    request_id: &str,
) -> Result<Option<(ExportJob, u64)>, StoreError> {
    for home in ExportHome::ALL {
        if let Some(current) = state
            .store
            .get::<ExportJob>(&ExportJob::key_of(home, user_id, request_id))
            .await?
        {
            return Ok(Some((current.record, current.version)));
        }
    }
    Ok(None)
}

async fn write_part(
    state: &AppState,
    home: ExportHome,
    user_id: &str,
    request_id: &str,
    part: u32,
    buffer: &mut String,
    now: Timestamp,
) -> Result<(), StoreError> {
    let record = ExportPart {
        user_id: user_id.to_owned(),
        request_id: request_id.to_owned(),
        part,
        content: std::mem::take(buffer),
        created_at: now,
        home,
    };
    match state.store.get::<ExportPart>(&record.key()).await? {
        Some(existing) => state.store.replace(&record, existing.version).await.map(|_| ()),
        None => state.store.create(&record).await,
    }
}

/// Part `part` of the caller's export, while it is available, wherever it is kept.
pub async fn part_of(
    state: &AppState,
    user_id: &str,
    request_id: &str,
    part: u32,
) -> Result<Option<String>, StoreError> {
    for home in ExportHome::ALL {
        if let Some(content) = part_in(state, home, user_id, request_id, part).await? {
            return Ok(Some(content));
        }
    }
    Ok(None)
}

async fn part_in(
    state: &AppState,
    home: ExportHome,
    user_id: &str,
    request_id: &str,
    part: u32,
) -> Result<Option<String>, StoreError> {
    Ok(state
        .store
        .get::<ExportPart>(&ExportPart::key_of(home, user_id, request_id, part))
        .await?
        .map(|v| v.record.content))
}
