//! Typed access to the application table: the only module that talks to DynamoDB.
//!
//! Writes and reads go through the encrypting client ([`crate::crypto`]): personal attributes are
//! encrypted, every item is signed under its owner's key, and a tampered item or a destroyed key fails
//! the read. Rules every operation here obeys:
//! - items whose `expires_at` (TTL attribute, epoch seconds) has passed are invisible, because DynamoDB
//!   deletes them only "typically within two days" and the local emulator never does;
//! - `expires_at` is computed from the item type's retention class, never passed in;
//! - changing an item replaces it whole, conditioned on its `version` (signed attributes cannot be
//!   updated in place);
//! - nothing ever Scans.

use crate::clock::Clock;
use crate::schema::{Beacon, ItemType};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, TransactWriteItem,
};
use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use thiserror::Error;

mod reads;
mod retry;

pub use retry::{BUSY_ATTEMPTS, busy_retries};

pub use crate::schema::EXPIRES_AT;
/// The optimistic-lock attribute of every item.
pub const VERSION: &str = "version";
/// The attribute of counter items ([`Store::add_to_counter`]).
pub const COUNT: &str = "count";
/// The attribute naming an item's type in the schema registry.
pub const ITEM_TYPE: &str = "item_type";

/// A raw DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// The primary key of an item.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemKey {
    pub pk: String,
    pub sk: String,
}

impl ItemKey {
    /// A key from its two parts.
    pub fn new(pk: String, sk: String) -> Self {
        Self { pk, sk }
    }

    pub fn to_item(&self) -> Item {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(self.pk.clone())),
            ("sk".to_owned(), AttributeValue::S(self.sk.clone())),
        ])
    }
}

/// A domain type stored as one item of a registered [`ItemType`].
pub trait Record: Serialize + DeserializeOwned + Send + Sync {
    /// Its entry in the schema registry (attributes, protection, retention).
    const TYPE: &'static ItemType;
    /// Where it is stored.
    fn key(&self) -> ItemKey;
    /// When its retention period starts; `None` until it does (or if it has none).
    fn retention_start(&self) -> Option<Timestamp> {
        None
    }
}

/// A record with the version it was read at (pass it back to [`Store::replace`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<R> {
    pub record: R,
    pub version: u64,
}

/// Storage failures, mapped from the SDK and the encryption SDK in one place.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A conditional write found the item in another state (exists already, version moved on).
    #[error("condition failed")]
    ConditionFailed,
    /// A transaction was cancelled; one reason per write, in order (`None` for writes that were fine).
    #[error("transaction cancelled: {0:?}")]
    TransactionCancelled(Vec<String>),
    /// The item's signature does not verify: it was changed, moved or forged outside this code.
    #[error("stored item failed its integrity check")]
    Tampered,
    /// The owner's key has been destroyed (crypto-shredding): the data can never be read again.
    #[error("the data was destroyed with its owner's key")]
    KeyDestroyed,
    /// The stored item does not have the shape of the type it was read as.
    #[error("stored item does not decode: {0}")]
    Decode(String),
    /// DynamoDB refused the work for now and stayed so through [`BUSY_ATTEMPTS`] tries: another
    /// transaction held one of its items (`TransactionConflict`), or its partition was throttled.
    /// Nothing of that attempt was applied; the caller may try again shortly (an API answers 503).
    #[error("dynamodb is busy: {0}")]
    Busy(String),
    /// Any other SDK or service failure (missing table, network, encryption setup).
    #[error("dynamodb: {0}")]
    Sdk(String),
}

impl StoreError {
    /// Maps an SDK error. The encryption SDK reports through the interceptor as text, which is
    /// classified here and nowhere else.
    pub fn from_sdk<E, R>(error: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        match error.code() {
            Some("ConditionalCheckFailedException") => return Self::ConditionFailed,
            Some(code) if retry::is_busy_code(code) => return Self::Busy(code.to_owned()),
            _ => {}
        }
        Self::classify(DisplayErrorContext(&error).to_string())
    }

    fn classify(text: String) -> Self {
        let lower = text.to_lowercase();
        if lower.contains("branch key")
            && (lower.contains("no item") || lower.contains("not found") || lower.contains("does not exist"))
        {
            Self::KeyDestroyed
        } else if lower.contains("signature")
            || lower.contains("structuredencryption")
            || lower.contains("tamper")
        {
            Self::Tampered
        } else {
            // The SDK's text can embed a whole raw response; keep the part that explains the failure.
            Self::Sdk(text.chars().take(600).collect())
        }
    }
}

/// One write of a transaction, prepared by [`Store`].
#[derive(Debug, Clone)]
pub struct Write(TransactWriteItem);

/// The application table.
#[derive(Debug, Clone)]
pub struct Store {
    encrypted: aws_sdk_dynamodb::Client,
    plain: aws_sdk_dynamodb::Client,
    table: String,
    clock: Clock,
    items_read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Store {
    /// A store over `table`: `encrypted` carries the encryption interceptor, `plain` does not (it
    /// serves key-only index queries, which the interceptor cannot decrypt).
    pub fn new(
        encrypted: aws_sdk_dynamodb::Client,
        plain: aws_sdk_dynamodb::Client,
        table: String,
        clock: Clock,
    ) -> Self {
        Self {
            encrypted,
            plain,
            table,
            clock,
            items_read: Default::default(),
        }
    }

    /// Items DynamoDB returned to this store (and its clones) so far: how benchmarks show that an
    /// operation's reads grow with its own work, not with the table.
    pub fn items_read(&self) -> u64 {
        self.items_read.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(super) fn count_read(&self, items: usize) {
        self.items_read
            .fetch_add(items as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The client without encryption: for key-only lookups and for tests that inspect what is stored.
    pub fn raw(&self) -> &aws_sdk_dynamodb::Client {
        &self.plain
    }

    fn item_of<R: Record>(&self, record: &R, version: u64) -> Result<Item, StoreError> {
        let mut item: Item =
            serde_dynamo::to_item(record).map_err(|error| StoreError::Decode(error.to_string()))?;
        item.extend(record.key().to_item());
        item.insert(ITEM_TYPE.to_owned(), AttributeValue::S(R::TYPE.name.to_owned()));
        item.insert(VERSION.to_owned(), AttributeValue::N(version.to_string()));
        if let Some(expires_at) = R::TYPE.retention.expires_at(record.retention_start()) {
            item.insert(EXPIRES_AT.to_owned(), AttributeValue::N(expires_at.to_string()));
        }
        Ok(item)
    }

    /// Writes a new record (version 1); [`StoreError::ConditionFailed`] when its key is taken.
    pub async fn create<R: Record>(&self, record: &R) -> Result<(), StoreError> {
        let item = self.item_of(record, 1)?;
        self.retrying(|| {
            self.encrypted
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression("attribute_not_exists(pk)")
                .send()
        })
        .await?;
        Ok(())
    }

    /// Like [`Store::create`], but an expired item at the key (invisible to reads, not yet deleted by
    /// DynamoDB's TTL, which may take days) is overwritten instead of blocking the key.
    pub async fn create_unless_live<R: Record>(&self, record: &R) -> Result<(), StoreError> {
        let item = self.item_of(record, 1)?;
        self.retrying(|| {
            self.encrypted
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression("attribute_not_exists(pk) OR #expires <= :now")
                .expression_attribute_names("#expires", EXPIRES_AT)
                .expression_attribute_values(
                    ":now",
                    AttributeValue::N(self.clock.epoch_seconds().to_string()),
                )
                .send()
        })
        .await?;
        Ok(())
    }

    /// Replaces a record read at `expected_version`; returns the new version.
    /// [`StoreError::ConditionFailed`] when someone changed it in between.
    pub async fn replace<R: Record>(&self, record: &R, expected_version: u64) -> Result<u64, StoreError> {
        let version = expected_version + 1;
        let item = self.item_of(record, version)?;
        self.retrying(|| {
            self.encrypted
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", VERSION)
                .expression_attribute_values(":expected", AttributeValue::N(expected_version.to_string()))
                .send()
        })
        .await?;
        Ok(version)
    }

    /// Deletes an item (no error when it is absent).
    pub async fn delete(&self, key: &ItemKey) -> Result<(), StoreError> {
        self.retrying(|| {
            self.encrypted
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key.to_item()))
                .send()
        })
        .await?;
        Ok(())
    }

    /// Reads one record; `None` when absent, expired, or of another type.
    pub async fn get<R: Record>(&self, key: &ItemKey) -> Result<Option<Versioned<R>>, StoreError> {
        let output = self
            .encrypted
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.to_item()))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        self.count_read(usize::from(output.item.is_some()));
        match output.item {
            Some(item) if self.is_live(&item) && is_type::<R>(&item) => decode_versioned(item).map(Some),
            _ => Ok(None),
        }
    }

    /// Reads several records by key (BatchGetItem), in the order of `keys`; absent ones, expired ones
    /// and ones of another type are skipped.
    pub async fn batch_get<R: Record>(&self, keys: &[ItemKey]) -> Result<Vec<Versioned<R>>, StoreError> {
        let mut fetched = self.get_many(keys).await?;
        let mut found = Vec::new();
        for key in keys {
            if let Some(record) = fetched.take::<R>(key)? {
                found.push(record);
            }
        }
        Ok(found)
    }

    /// Reads the items at `keys`, whatever their types, in one BatchGetItem (consistent): a call
    /// that needs a few fixed items (an account, a current-state item, a policy) pays one request.
    pub async fn get_many(&self, keys: &[ItemKey]) -> Result<Fetched, StoreError> {
        let mut found = HashMap::new();
        for chunk in keys.chunks(100) {
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.iter().map(ItemKey::to_item).collect()))
                    .consistent_read(true)
                    .build()
                    .map_err(|error| StoreError::Sdk(error.to_string()))?,
            );
            while let Some(keys_and_attributes) = request.take() {
                let output = self
                    .encrypted
                    .batch_get_item()
                    .request_items(&self.table, keys_and_attributes)
                    .send()
                    .await
                    .map_err(StoreError::from_sdk)?;
                let items = output
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default();
                self.count_read(items.len());
                for item in items.into_iter().filter(|item| self.is_live(item)) {
                    if let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) =
                        (item.get("pk"), item.get("sk"))
                    {
                        found.insert(ItemKey::new(pk.clone(), sk.clone()), item);
                    }
                }
                request = output.unprocessed_keys.and_then(|mut u| u.remove(&self.table));
            }
        }
        Ok(Fetched(found))
    }

    /// A transaction write that puts `record` whatever is at its key (last writer wins): for an
    /// item that only mirrors a truth kept elsewhere, written in the same transaction as that truth.
    pub fn write_put<R: Record>(&self, record: &R) -> Result<Write, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.item_of(record, 1)?))
            .build()
            .map_err(|error| StoreError::Sdk(error.to_string()))?;
        Ok(Write(TransactWriteItem::builder().put(put).build()))
    }

    /// A transaction write that creates `record` (fails the transaction if its key is taken).
    pub fn write_create<R: Record>(&self, record: &R) -> Result<Write, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.item_of(record, 1)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|error| StoreError::Sdk(error.to_string()))?;
        Ok(Write(TransactWriteItem::builder().put(put).build()))
    }

    /// A transaction write that replaces `record` read at `expected_version`.
    pub fn write_replace<R: Record>(&self, record: &R, expected_version: u64) -> Result<Write, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.item_of(record, expected_version + 1)?))
            .condition_expression("#version = :expected")
            .expression_attribute_names("#version", VERSION)
            .expression_attribute_values(":expected", AttributeValue::N(expected_version.to_string()))
            .build()
            .map_err(|error| StoreError::Sdk(error.to_string()))?;
        Ok(Write(TransactWriteItem::builder().put(put).build()))
    }

    /// A transaction write that deletes `key`.
    pub fn write_delete(&self, key: &ItemKey) -> Result<Write, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key.to_item()))
            .build()
            .map_err(|error| StoreError::Sdk(error.to_string()))?;
        Ok(Write(TransactWriteItem::builder().delete(delete).build()))
    }

    /// A transaction condition that the item at `key` is still at `version` (unchanged since it was
    /// read): a placement that relied on an account or a membership fails if either changed.
    pub fn write_unchanged(&self, key: &ItemKey, version: u64) -> Result<Write, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key.to_item()))
            .condition_expression("#version = :expected")
            .expression_attribute_names("#version", VERSION)
            .expression_attribute_values(":expected", AttributeValue::N(version.to_string()))
            .build()
            .map_err(|error| StoreError::Sdk(error.to_string()))?;
        Ok(Write(TransactWriteItem::builder().condition_check(check).build()))
    }

    /// A transaction condition that no item exists at `key` (e.g. no do-not-hire entry).
    pub fn write_absent(&self, key: &ItemKey) -> Result<Write, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key.to_item()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|error| StoreError::Sdk(error.to_string()))?;
        Ok(Write(TransactWriteItem::builder().condition_check(check).build()))
    }

    /// Applies all writes or none (TransactWriteItems). A cancelled transaction reports one reason per
    /// write.
    pub async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let items: Vec<TransactWriteItem> = writes.into_iter().map(|w| w.0).collect();
        self.retrying_transaction(|| {
            self.encrypted
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
        })
        .await
    }

    /// Adds `by` to the counter `sk` in partition `pk` and returns the new value: an atomic
    /// `UpdateItem ADD` with the plain client. Counter items hold no personal data and are never read
    /// through the encrypting client (they carry no signature).
    /// The counter expires by the `metrics` retention class, counted from its first increment.
    pub async fn add_to_counter(&self, pk: &str, sk: &str, by: u64) -> Result<u64, StoreError> {
        let expires_at = crate::retention::RetentionClass::Metrics
            .expires_at(Some(self.clock.now()))
            .unwrap_or(i64::MAX);
        self.add_to_counter_until(pk, sk, by, expires_at).await
    }

    /// [`Store::add_to_counter`] for a counter that expires at `expires_at` (epoch seconds), such
    /// as a rate-limit window. An expired counter starts again from zero.
    pub async fn add_to_counter_until(
        &self,
        pk: &str,
        sk: &str,
        by: u64,
        expires_at: i64,
    ) -> Result<u64, StoreError> {
        let output = self
            .retrying(|| {
                self.plain
                    .update_item()
                    .table_name(&self.table)
                    .key("pk", AttributeValue::S(pk.to_owned()))
                    .key("sk", AttributeValue::S(sk.to_owned()))
                    .update_expression("ADD #count :by SET #expires = if_not_exists(#expires, :expires)")
                    .expression_attribute_names("#count", COUNT)
                    .expression_attribute_names("#expires", EXPIRES_AT)
                    .expression_attribute_values(":by", AttributeValue::N(by.to_string()))
                    .expression_attribute_values(":expires", AttributeValue::N(expires_at.to_string()))
                    .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
                    .send()
            })
            .await?;
        Ok(output
            .attributes
            .and_then(|a| match a.get(COUNT) {
                Some(AttributeValue::N(n)) => n.parse().ok(),
                _ => None,
            })
            .unwrap_or(by))
    }

    /// Adds 1 to the counter of `increment` unless it has reached `increment.below` (a rate limit):
    /// one conditional `UpdateItem` of the plain client, outside any transaction, so callers that
    /// share the counter (one address behind a NAT) queue at the item instead of cancelling each
    /// other. `false` when the limit refused the call (nothing was added).
    pub async fn count_unless_at_limit(&self, increment: &CounterIncrement) -> Result<bool, StoreError> {
        let result = self
            .retrying(|| {
                let mut update = self
                    .plain
                    .update_item()
                    .table_name(&self.table)
                    .key("pk", AttributeValue::S(increment.pk.clone()))
                    .key("sk", AttributeValue::S(increment.sk.clone()))
                    .update_expression("ADD #count :one SET #expires = if_not_exists(#expires, :expires)")
                    .expression_attribute_names("#count", COUNT)
                    .expression_attribute_names("#expires", EXPIRES_AT)
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .expression_attribute_values(
                        ":expires",
                        AttributeValue::N(increment.expires_at.to_string()),
                    );
                if let Some(max) = increment.below {
                    update = update
                        .condition_expression("attribute_not_exists(#count) OR #count < :max")
                        .expression_attribute_values(":max", AttributeValue::N(max.to_string()));
                }
                update.send()
            })
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(error) => Err(error),
        }
    }

    pub(super) fn is_live(&self, item: &Item) -> bool {
        match item.get(EXPIRES_AT) {
            Some(AttributeValue::N(seconds)) => seconds
                .parse::<i64>()
                .map_or(true, |at| at > self.clock.epoch_seconds()),
            _ => true,
        }
    }
}

/// A cancelled transaction's reasons, one per write ([`StoreError::Busy`] when it was cancelled
/// only for a conflict or throttling); any other failure as it is.
fn cancelled<R: std::fmt::Debug>(error: SdkError<TransactWriteItemsError, R>) -> StoreError {
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            let reasons: Vec<String> = cancelled
                .cancellation_reasons()
                .iter()
                .map(|reason| reason.code().unwrap_or("None").to_owned())
                .collect();
            retry::busy_cancellation(&reasons).unwrap_or(StoreError::TransactionCancelled(reasons))
        }
        _ => StoreError::from_sdk(error),
    }
}

/// One atomic increment of a counter, refused at a limit ([`Store::count_unless_at_limit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterIncrement {
    pub pk: String,
    pub sk: String,
    /// When the counter item expires (epoch seconds; set by its first increment).
    pub expires_at: i64,
    /// Refuses the increment (and so the whole transaction) unless the counter is below this: a
    /// rate limit.
    pub below: Option<u64>,
}

/// Items read by [`Store::get_many`], taken out by key and type.
#[derive(Debug, Default)]
pub struct Fetched(HashMap<ItemKey, Item>);

impl Fetched {
    /// The record of type `R` at `key`; `None` when absent, expired or of another type.
    pub fn take<R: Record>(&mut self, key: &ItemKey) -> Result<Option<Versioned<R>>, StoreError> {
        match self.0.remove(key) {
            Some(item) if is_type::<R>(&item) => decode_versioned(item).map(Some),
            _ => Ok(None),
        }
    }
}

pub(super) fn is_type<R: Record>(item: &Item) -> bool {
    matches!(item.get(ITEM_TYPE), Some(AttributeValue::S(name)) if name == R::TYPE.name)
}

pub(super) fn decode<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|error| StoreError::Decode(error.to_string()))
}

pub(super) fn decode_versioned<R: Record>(item: Item) -> Result<Versioned<R>, StoreError> {
    let version = match item.get(VERSION) {
        Some(AttributeValue::N(number)) => {
            number.parse().map_err(|_| StoreError::Decode("version".into()))?
        }
        _ => return Err(StoreError::Decode("item has no version".into())),
    };
    Ok(Versioned {
        record: decode(item)?,
        version,
    })
}
