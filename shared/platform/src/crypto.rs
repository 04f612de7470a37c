//! Attribute encryption with the AWS Database Encryption SDK: the one place that configures it.
//!
//! - Every item is signed, and its personal attributes encrypted, under the branch key of its owner
//!   (hierarchical keyring): a user's items under `user-<user id>`, everything else under `system`.
//!   The owner is read from the partition key, which is all the branch-key-id supplier sees.
//! - Deleting a user's branch key from the key store (`shred_user`) makes every copy of that user's
//!   items unreadable: in the table, in backups, anywhere. Running containers keep the key in their
//!   keyring cache for up to [`KEY_CACHE_TTL_SECONDS`]; point-in-time recovery of the key-store table
//!   keeps it for up to 35 days. Erasure deletes the items first and shreds last, because one
//!   unreadable item fails a whole Query through the interceptor.
//! - Standard beacons (`schema::BEACONS`) are computed under one global beacon key (`beacons`),
//!   which is never shredded.

use crate::config::Config;
use crate::schema::{self, Protection};
use aws_db_esdk::dynamodb::operation::get_branch_key_id_from_ddb_key::{
    GetBranchKeyIdFromDdbKeyInput, GetBranchKeyIdFromDdbKeyOutput,
};
use aws_db_esdk::dynamodb::types::error::Error as SupplierError;
use aws_db_esdk::dynamodb::types::{
    BeaconKeySource, BeaconVersion, DynamoDbKeyBranchKeyIdSupplier, DynamoDbTableEncryptionConfig,
    SearchConfig, SingleKeyStore, StandardBeacon,
};
use aws_db_esdk::intercept::DbEsdkInterceptor;
use aws_db_esdk::key_store::client as key_store_client;
use aws_db_esdk::key_store::types::KmsConfiguration;
use aws_db_esdk::key_store::types::key_store_config::KeyStoreConfig;
use aws_db_esdk::material_providers::client as mpl_client;
use aws_db_esdk::material_providers::types::material_providers_config::MaterialProvidersConfig;
use aws_db_esdk::material_providers::types::{CacheType, MultiThreadedCache};
use aws_db_esdk::{CryptoAction, DynamoDbTablesEncryptionConfig};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use thiserror::Error;

/// How long a container keeps a branch key in memory: bounds both KMS traffic and how long a shredded
/// key can still be used by a container that cached it.
pub const KEY_CACHE_TTL_SECONDS: i64 = 300;

/// How many branch keys a container keeps in memory: the keys of the people whose data it read in the
/// last [`KEY_CACHE_TTL_SECONDS`], the system key, the beacon key. Auto-assign reads a whole agency's
/// pool (each officer's account, roster and membership under the officer's key): with 1,000 entries
/// an agency of 5,000 officers fetched each key three times (30,013 fetches in one call, measured by
/// `cargo xtask bench bench_officers`); 10,000 entries (a few hundred bytes each) hold it.
pub const KEY_CACHE_ENTRIES: i32 = 10_000;

/// Branch key of items that belong to no user (locks, policy versions, agency data).
pub const SYSTEM_KEY_ID: &str = "system";

/// Branch key whose beacon key computes every beacon. Never shredded: lookups need it.
pub const BEACON_KEY_ID: &str = "beacons";

/// The key-store table's partition key: the branch key id (fixed by the key store's layout).
const KEY_STORE_PARTITION: &str = "branch-key-id";
/// The key-store table's sort key: `branch:ACTIVE`, `beacon:ACTIVE`, `branch:version:<uuid>`.
const KEY_STORE_SORT: &str = "type";

/// Setting up encryption or managing keys failed.
#[derive(Debug, Error)]
pub enum CryptoError {
    #[error("encryption setup: {0}")]
    Setup(String),
    #[error("key store: {0}")]
    KeyStore(String),
    #[error("the schema registry is inconsistent: {0}")]
    Schema(#[from] schema::SchemaError),
}

fn key_store_error<E: std::error::Error + 'static, R: std::fmt::Debug>(
    error: aws_sdk_dynamodb::error::SdkError<E, R>,
) -> CryptoError {
    CryptoError::KeyStore(aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string())
}

fn setup<E: std::fmt::Debug>(error: E) -> CryptoError {
    CryptoError::Setup(format!("{error:?}"))
}

/// The branch key id that protects the item at (`pk`, `sk`): the owner's key for everything about one
/// person, so that shredding it makes every copy unreadable, backups included. That is the person's
/// partition (`USER#<id>`), their access log (`ACCESS#<id>`; the anonymous log is the system's), and
/// an agency's do-not-hire entry about them (`AGENCY#…` / `DNH#<id>`, whose note describes them).
/// Everything else is the system's.
pub fn branch_key_for(pk: &str, sk: &str) -> String {
    let person = pk
        .strip_prefix(crate::keys::USER_PARTITION_PREFIX)
        .or_else(|| {
            pk.strip_prefix(crate::keys::ACCESS_LOG_PARTITION_PREFIX)
                .filter(|owner| *owner != crate::keys::ANONYMOUS_CALLER)
        })
        .or_else(|| {
            pk.starts_with(crate::keys::AGENCY_PARTITION_PREFIX)
                .then(|| sk.strip_prefix(crate::keys::DO_NOT_HIRE_SORT_PREFIX))
                .flatten()
        });
    match person {
        Some(user_id) if !user_id.is_empty() => user_branch_key(user_id),
        _ => SYSTEM_KEY_ID.to_owned(),
    }
}

/// The branch key id of a user.
pub fn user_branch_key(user_id: &str) -> String {
    format!("user-{user_id}")
}

/// Maps an item's primary key to its owner's branch key.
struct OwnerKeySupplier;

impl DynamoDbKeyBranchKeyIdSupplier for OwnerKeySupplier {
    fn get_branch_key_id_from_ddb_key(
        &self,
        input: GetBranchKeyIdFromDdbKeyInput,
    ) -> Result<GetBranchKeyIdFromDdbKeyOutput, SupplierError> {
        let key = |name: &str| {
            input
                .ddb_key
                .as_ref()
                .and_then(|key| key.get(name))
                .and_then(|value| value.as_s().ok())
        };
        let Some(partition) = key("pk") else {
            return Err(SupplierError::DynamoDbEncryptionException {
                message: "item has no string partition key `pk`".into(),
            });
        };
        GetBranchKeyIdFromDdbKeyOutput::builder()
            .branch_key_id(branch_key_for(partition, key("sk").map_or("", |sk| sk.as_str())))
            .build()
            .map_err(|error| SupplierError::DynamoDbEncryptionException {
                message: format!("{error:?}"),
            })
    }
}

/// The clients encryption talks to. Separate from the data client so tests can count their calls.
pub struct KeyClients {
    /// Wraps and unwraps branch keys.
    pub kms: aws_sdk_kms::Client,
    /// Reads and writes the key-store table (plain client: key-store items are not ours to encrypt).
    pub dynamodb: aws_sdk_dynamodb::Client,
}

/// Builds the interceptor-equipped DynamoDB client that encrypts and signs on write and verifies and
/// decrypts on read, configured from the schema registry.
pub async fn encrypted_client(
    sdk: &aws_config::SdkConfig,
    config: &Config,
    keys: &KeyClients,
) -> Result<aws_sdk_dynamodb::Client, CryptoError> {
    let key_store = key_store(config, keys)?;
    let dbesdk = aws_db_esdk::dynamodb::client::Client::from_conf(
        aws_db_esdk::dynamodb::types::dynamo_db_encryption_config::DynamoDbEncryptionConfig::builder()
            .build()
            .map_err(setup)?,
    )
    .map_err(setup)?;
    let supplier = dbesdk
        .create_dynamo_db_encryption_branch_key_id_supplier()
        .ddb_key_branch_key_id_supplier(OwnerKeySupplier)
        .send()
        .await
        .map_err(setup)?
        .branch_key_id_supplier
        .ok_or_else(|| CryptoError::Setup("no branch key id supplier".into()))?;
    let mpl = mpl_client::Client::from_conf(MaterialProvidersConfig::builder().build().map_err(setup)?)
        .map_err(setup)?;
    let keyring = mpl
        .create_aws_kms_hierarchical_keyring()
        .branch_key_id_supplier(supplier)
        .key_store(key_store.clone())
        .ttl_seconds(KEY_CACHE_TTL_SECONDS)
        // Not the default storm-tracking cache: after a failed fetch (a caller who has no key yet,
        // whose access-log line then goes to the anonymous log) it makes the next lookup of that
        // key sleep its thread for up to a second. A Lambda container serves one request at a
        // time, so there is no storm to track.
        .cache(CacheType::MultiThreaded(
            MultiThreadedCache::builder()
                .entry_capacity(KEY_CACHE_ENTRIES)
                .build()
                .map_err(setup)?,
        ))
        .send()
        .await
        .map_err(setup)?;

    let mut actions = HashMap::new();
    let mut unsigned = Vec::new();
    for (name, protection) in schema::attribute_actions()? {
        let action = match protection {
            Protection::Personal => CryptoAction::EncryptAndSign,
            Protection::Signed => CryptoAction::SignOnly,
            Protection::Unsigned => {
                unsigned.push(name.to_owned());
                CryptoAction::DoNothing
            }
        };
        actions.insert(name.to_owned(), action);
    }
    let beacons = schema::BEACONS
        .iter()
        .map(|beacon| {
            StandardBeacon::builder()
                .name(beacon.attribute)
                .length(i32::from(beacon.length))
                .build()
                .map_err(setup)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let search = SearchConfig::builder()
        .write_version(1)
        .versions(vec![
            BeaconVersion::builder()
                .version(1)
                .standard_beacons(beacons)
                .key_store(key_store)
                .key_source(BeaconKeySource::Single(
                    SingleKeyStore::builder()
                        .key_id(BEACON_KEY_ID)
                        .cache_ttl(i32::try_from(KEY_CACHE_TTL_SECONDS).unwrap_or(300))
                        .build()
                        .map_err(setup)?,
                ))
                .build()
                .map_err(setup)?,
        ])
        .build()
        .map_err(setup)?;
    let table = DynamoDbTableEncryptionConfig::builder()
        .logical_table_name(&config.table_name)
        .partition_key_name("pk")
        .sort_key_name("sk")
        .attribute_actions_on_encrypt(actions)
        .allowed_unsigned_attributes(unsigned)
        .keyring(keyring)
        .search(search)
        .build()
        .map_err(setup)?;
    let tables = DynamoDbTablesEncryptionConfig::builder()
        .table_encryption_configs(HashMap::from([(config.table_name.clone(), table)]))
        .build()
        .map_err(setup)?;
    let dynamo_config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .interceptor(DbEsdkInterceptor::new(tables).map_err(setup)?)
        .interceptor(crate::meter::RequestMeter::new())
        .build();
    Ok(aws_sdk_dynamodb::Client::from_conf(dynamo_config))
}

fn key_store(config: &Config, keys: &KeyClients) -> Result<key_store_client::Client, CryptoError> {
    let key_store_config = KeyStoreConfig::builder()
        .kms_client(keys.kms.clone())
        .ddb_client(keys.dynamodb.clone())
        .ddb_table_name(&config.key_store_table_name)
        .logical_key_store_name(&config.key_store_table_name)
        .kms_configuration(KmsConfiguration::KmsKeyArn(config.data_key_arn.clone()))
        .build()
        .map_err(setup)?;
    key_store_client::Client::from_conf(key_store_config).map_err(setup)
}

/// Creating and destroying branch keys.
#[derive(Clone)]
pub struct KeyManager {
    key_store: key_store_client::Client,
    /// Plain client on the key-store table (existence checks, shredding).
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
}

impl KeyManager {
    /// A manager over the key store of `config`.
    pub fn new(config: &Config, keys: &KeyClients) -> Result<Self, CryptoError> {
        Ok(Self {
            key_store: key_store(config, keys)?,
            dynamodb: keys.dynamodb.clone(),
            table: config.key_store_table_name.clone(),
        })
    }

    /// Creates branch key `id` (with its beacon key) unless it exists. Idempotent, safe to race.
    pub async fn ensure_key(&self, id: &str) -> Result<(), CryptoError> {
        if self.exists(id).await? {
            return Ok(());
        }
        let created = self
            .key_store
            .create_key()
            .branch_key_identifier(id)
            .encryption_context(HashMap::from([("owner".to_owned(), id.to_owned())]))
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            // Lost a race with another creator: fine if the key now exists.
            Err(error) if self.exists(id).await? => {
                tracing::debug!(error = ?error, "branch key created concurrently");
                Ok(())
            }
            Err(error) => Err(CryptoError::KeyStore(format!("{error:?}"))),
        }
    }

    /// Creates the keys every deployment needs: the system key and the beacon key.
    pub async fn ensure_system_keys(&self) -> Result<(), CryptoError> {
        self.ensure_key(SYSTEM_KEY_ID).await?;
        self.ensure_key(BEACON_KEY_ID).await
    }

    /// Whether `user_id` has a branch key: registration made one. Lets the worker keep data of someone
    /// who never registered under the system key instead of creating a key off the privileged path.
    pub async fn has_user_key(&self, user_id: &str) -> Result<bool, CryptoError> {
        self.exists(&user_branch_key(user_id)).await
    }

    /// Creates the branch key of a new user.
    pub async fn create_user_key(&self, user_id: &str) -> Result<(), CryptoError> {
        self.ensure_key(&user_branch_key(user_id)).await
    }

    /// Crypto-shredding: deletes every version of the user's branch key from the key store, so that
    /// no copy of the user's items can be decrypted again. Returns the number of key items deleted.
    /// Idempotent. Delete the user's items first (see the module documentation).
    pub async fn shred_user(&self, user_id: &str) -> Result<usize, CryptoError> {
        let id = user_branch_key(user_id);
        let mut deleted = 0;
        loop {
            let page = self
                .dynamodb
                .query()
                .table_name(&self.table)
                .key_condition_expression("#id = :id")
                .expression_attribute_names("#id", KEY_STORE_PARTITION)
                .expression_attribute_values(":id", AttributeValue::S(id.clone()))
                .consistent_read(true)
                .send()
                .await
                .map_err(key_store_error)?;
            let items = page.items.unwrap_or_default();
            if items.is_empty() {
                return Ok(deleted);
            }
            for item in items {
                let key: HashMap<String, AttributeValue> = item
                    .into_iter()
                    .filter(|(name, _)| name == KEY_STORE_PARTITION || name == KEY_STORE_SORT)
                    .collect();
                self.dynamodb
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .send()
                    .await
                    .map_err(key_store_error)?;
                deleted += 1;
            }
        }
    }

    async fn exists(&self, id: &str) -> Result<bool, CryptoError> {
        let item = self
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key(KEY_STORE_PARTITION, AttributeValue::S(id.to_owned()))
            .key(KEY_STORE_SORT, AttributeValue::S("branch:ACTIVE".into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(key_store_error)?;
        Ok(item.item.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_keys_come_from_the_key() {
        assert_eq!(branch_key_for("USER#abc", "ACCOUNT#CUSTOMER"), "user-abc");
        assert_eq!(branch_key_for("ACCESS#abc", "req-1"), "user-abc");
        assert_eq!(branch_key_for("ACCESS#anonymous", "req-1"), SYSTEM_KEY_ID);
        assert_eq!(branch_key_for("AGENCY#a-1", "DNH#abc"), "user-abc");
        assert_eq!(branch_key_for("AGENCY#a-1", "SETTINGS"), SYSTEM_KEY_ID);
        assert_eq!(branch_key_for("PRIVACY#abc", "REQUEST#r"), SYSTEM_KEY_ID);
        assert_eq!(branch_key_for("LOCK#EMAIL#customer#00ff", "LOCK"), SYSTEM_KEY_ID);
        assert_eq!(branch_key_for("USER#", "X"), SYSTEM_KEY_ID);
        assert_eq!(branch_key_for("ACCESS#", "X"), SYSTEM_KEY_ID);
        assert_eq!(branch_key_for("POLICY", "CURRENT"), SYSTEM_KEY_ID);
    }
}
