//! Typed access to the application table: the only module that talks to DynamoDB.
//!
//! Rules every read here obeys: items whose `expires_at` (the TTL attribute, epoch seconds) has passed
//! are invisible, because DynamoDB deletes them only "typically within two days" and the local emulator
//! never does; and nothing ever Scans.

use crate::clock::Clock;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use thiserror::Error;

/// The TTL attribute of every item that has a retention period.
pub const EXPIRES_AT: &str = "expires_at";

/// A raw DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// Storage failures, mapped from the SDK in one place ([`StoreError::from_sdk`]).
#[derive(Debug, Error)]
pub enum StoreError {
    /// A conditional write found the item in another state (exists already, version moved on).
    #[error("condition failed")]
    ConditionFailed,
    /// The stored item does not have the shape of the type it was read as.
    #[error("stored item does not decode: {0}")]
    Decode(String),
    /// Any other SDK or service failure (throttling, missing table, network).
    #[error("dynamodb: {0}")]
    Sdk(String),
}

impl StoreError {
    /// Maps an SDK error: conditional-check failures become [`StoreError::ConditionFailed`].
    pub fn from_sdk<E, R>(error: aws_sdk_dynamodb::error::SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        if error.code() == Some("ConditionalCheckFailedException") {
            Self::ConditionFailed
        } else {
            Self::Sdk(DisplayErrorContext(&error).to_string())
        }
    }
}

/// The application table.
#[derive(Debug, Clone)]
pub struct Store {
    client: aws_sdk_dynamodb::Client,
    table: String,
    clock: Clock,
}

impl Store {
    /// A store over `table`, reading "now" from `clock` to hide expired items.
    pub fn new(client: aws_sdk_dynamodb::Client, table: String, clock: Clock) -> Self {
        Self { client, table, clock }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Reads one item by key; `None` when absent or expired.
    pub async fn get<T: DeserializeOwned>(&self, pk: &str, sk: &str) -> Result<Option<T>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .key("sk", AttributeValue::S(sk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        match output.item {
            Some(item) if self.is_live(&item) => decode(item).map(Some),
            _ => Ok(None),
        }
    }

    /// Writes a new item; [`StoreError::ConditionFailed`] when one with the same key exists.
    pub async fn put_new<T: Serialize>(&self, value: &T) -> Result<(), StoreError> {
        let item: Item =
            serde_dynamo::to_item(value).map_err(|error| StoreError::Decode(error.to_string()))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Up to `limit` live items of partition `pk` whose sort key starts with `sk_prefix`, in sort order.
    pub async fn query_prefix<T: DeserializeOwned>(
        &self,
        pk: &str,
        sk_prefix: &str,
        limit: usize,
    ) -> Result<Vec<T>, StoreError> {
        let mut found = Vec::new();
        let mut start_key: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .filter_expression("attribute_not_exists(#expires) OR #expires > :now")
                .expression_attribute_names("#expires", EXPIRES_AT)
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
                .expression_attribute_values(":prefix", AttributeValue::S(sk_prefix.to_owned()))
                .expression_attribute_values(
                    ":now",
                    AttributeValue::N(self.clock.epoch_seconds().to_string()),
                )
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(StoreError::from_sdk)?;
            for item in output.items.unwrap_or_default() {
                if found.len() == limit {
                    return Ok(found);
                }
                found.push(decode(item)?);
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() && found.len() < limit => start_key = Some(key),
                _ => return Ok(found),
            }
        }
    }

    /// Number of live items in the due-work index (`by-due-date`) under `due_day` that fall due at or
    /// before `until` (epoch seconds). The retention job's way to find work without a Scan.
    pub async fn count_due(&self, due_day: &str, until: i64) -> Result<usize, StoreError> {
        let mut count = 0;
        let mut start_key: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("by-due-date")
                .key_condition_expression("due_day = :day AND due_at <= :until")
                .expression_attribute_values(":day", AttributeValue::S(due_day.to_owned()))
                .expression_attribute_values(":until", AttributeValue::N(until.to_string()))
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(StoreError::from_sdk)?;
            count += output.items.unwrap_or_default().len();
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => return Ok(count),
            }
        }
    }

    fn is_live(&self, item: &Item) -> bool {
        match item.get(EXPIRES_AT) {
            Some(AttributeValue::N(seconds)) => seconds
                .parse::<i64>()
                .map_or(true, |at| at > self.clock.epoch_seconds()),
            _ => true,
        }
    }
}

fn decode<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|error| StoreError::Decode(error.to_string()))
}
