//! Counts every AWS request this process makes, by service and operation, with the DynamoDB items
//! each one read and wrote: an SDK interceptor on every client `AppState` builds. The cost benchmark
//! (`cargo xtask bench bench_cost_per_operation`) reads it around each operation; nothing else does.
//! It keeps counts only (operation names and numbers, never a key, a value or a table name), in one
//! map bounded by the number of operations the code calls, so it costs a few map updates per request.

use aws_sdk_dynamodb::operation::{
    batch_get_item::BatchGetItemOutput, batch_write_item::BatchWriteItemInput, delete_item::DeleteItemInput,
    get_item::GetItemOutput, put_item::PutItemInput, query::QueryOutput, scan::ScanOutput,
    transact_get_items::TransactGetItemsOutput, transact_write_items::TransactWriteItemsInput,
    update_item::UpdateItemInput,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// What one operation (`service:Operation`) cost since the last [`take`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OperationCount {
    /// HTTP requests sent (each retry is one more).
    pub requests: u64,
    /// DynamoDB items read: the items a Query or Scan examined, the items a Get or BatchGet found,
    /// and the condition checks of a transaction.
    pub items_read: u64,
    /// DynamoDB items written (put, updated or deleted), as the request asked.
    pub items_written: u64,
}

static COUNTS: Mutex<BTreeMap<String, OperationCount>> = Mutex::new(BTreeMap::new());

/// The counts since the last call, and a fresh start.
pub fn take() -> BTreeMap<String, OperationCount> {
    match COUNTS.lock() {
        Ok(mut counts) => std::mem::take(&mut *counts),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    }
}

fn add(label: Option<&'static str>, cfg: &ConfigBag, change: impl FnOnce(&mut OperationCount)) {
    let Some(metadata) = cfg.load::<Metadata>() else {
        return;
    };
    let name = match label {
        Some(label) => format!("{}:{} ({label})", metadata.service(), metadata.name()),
        None => format!("{}:{}", metadata.service(), metadata.name()),
    };
    let mut counts = match COUNTS.lock() {
        Ok(counts) => counts,
        Err(poisoned) => poisoned.into_inner(),
    };
    change(counts.entry(name).or_default());
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The items a write asked to change and the condition checks it holds, from its input (which is
/// gone by the time the call ends).
#[derive(Debug, Clone, Copy)]
struct AskedFor {
    written: usize,
    checked: usize,
}

impl Storable for AskedFor {
    type Storer = StoreReplace<Self>;
}

/// The interceptor. A labelled one counts its client's requests apart (the key store's and the
/// branch-key unwrapping, which the keyring's cache makes depend on what the container saw before).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestMeter {
    label: Option<&'static str>,
}

impl RequestMeter {
    /// Counts requests under their service and operation.
    pub const fn new() -> Self {
        Self { label: None }
    }

    /// Counts requests under their service and operation followed by `(label)`.
    pub const fn labelled(label: &'static str) -> Self {
        Self { label: Some(label) }
    }
}

impl Intercept for RequestMeter {
    fn name(&self) -> &'static str {
        "RequestMeter"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input();
        let (written, checked) = if let Some(batch) = input.downcast_ref::<TransactWriteItemsInput>() {
            let items = batch.transact_items();
            let checks = items.iter().filter(|i| i.condition_check().is_some()).count();
            (items.len() - checks, checks)
        } else if let Some(batch) = input.downcast_ref::<BatchWriteItemInput>() {
            let items = batch
                .request_items()
                .map(|tables| tables.values().map(Vec::len).sum())
                .unwrap_or(0);
            (items, 0)
        } else if input.downcast_ref::<PutItemInput>().is_some()
            || input.downcast_ref::<UpdateItemInput>().is_some()
            || input.downcast_ref::<DeleteItemInput>().is_some()
        {
            (1, 0)
        } else {
            (0, 0)
        };
        // The operation's name is not in the bag yet: the counts wait for the end of the call.
        if written > 0 || checked > 0 {
            cfg.interceptor_state().store_put(AskedFor { written, checked });
        }
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        add(self.label, cfg, |count| count.requests += 1);
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(asked) = cfg.load::<AskedFor>().copied() {
            add(self.label, cfg, |count| {
                count.items_written += to_u64(asked.written);
                count.items_read += to_u64(asked.checked);
            });
        }
        let Some(Ok(output)) = context.output_or_error() else {
            return Ok(());
        };
        let read = if let Some(query) = output.downcast_ref::<QueryOutput>() {
            usize::try_from(query.scanned_count()).unwrap_or(0)
        } else if let Some(scan) = output.downcast_ref::<ScanOutput>() {
            usize::try_from(scan.scanned_count()).unwrap_or(0)
        } else if let Some(get) = output.downcast_ref::<GetItemOutput>() {
            usize::from(get.item().is_some())
        } else if let Some(batch) = output.downcast_ref::<BatchGetItemOutput>() {
            batch
                .responses()
                .map(|tables| tables.values().map(Vec::len).sum())
                .unwrap_or(0)
        } else if let Some(batch) = output.downcast_ref::<TransactGetItemsOutput>() {
            batch.responses().len()
        } else {
            0
        };
        if read > 0 {
            add(self.label, cfg, |count| count.items_read += to_u64(read));
        }
        Ok(())
    }
}

/// The clients [`crate::AppState`] builds, each with the meter: one constructor per service, so no
/// client is built without it.
pub mod clients {
    use super::RequestMeter;
    use aws_config::SdkConfig;

    /// A plain DynamoDB client (key-only index queries, transactions, the key store).
    pub fn dynamodb(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(sdk)
                .interceptor(RequestMeter::new())
                .build(),
        )
    }

    /// The key store's DynamoDB client, counted as `(keys)`.
    pub fn key_store_dynamodb(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(sdk)
                .interceptor(RequestMeter::labelled("keys"))
                .build(),
        )
    }

    /// The KMS client that wraps and unwraps branch keys, counted as `(keys)`.
    pub fn key_kms(sdk: &SdkConfig) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::from_conf(
            aws_sdk_kms::config::Builder::from(sdk)
                .interceptor(RequestMeter::labelled("keys"))
                .build(),
        )
    }

    /// A KMS client.
    pub fn kms(sdk: &SdkConfig) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::from_conf(
            aws_sdk_kms::config::Builder::from(sdk)
                .interceptor(RequestMeter::new())
                .build(),
        )
    }

    /// An SES (v2) client.
    pub fn ses(sdk: &SdkConfig) -> aws_sdk_sesv2::Client {
        aws_sdk_sesv2::Client::from_conf(
            aws_sdk_sesv2::config::Builder::from(sdk)
                .interceptor(RequestMeter::new())
                .build(),
        )
    }

    /// A Cognito user-pool client.
    pub fn cognito(sdk: &SdkConfig) -> aws_sdk_cognitoidentityprovider::Client {
        aws_sdk_cognitoidentityprovider::Client::from_conf(
            aws_sdk_cognitoidentityprovider::config::Builder::from(sdk)
                .interceptor(RequestMeter::new())
                .build(),
        )
    }

    /// A Secrets Manager client.
    pub fn secrets(sdk: &SdkConfig) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::config::Builder::from(sdk)
                .interceptor(RequestMeter::new())
                .build(),
        )
    }

    /// An SQS client.
    pub fn sqs(sdk: &SdkConfig) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(sdk)
                .interceptor(RequestMeter::new())
                .build(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client whose endpoint refuses connections: every attempt is still a request sent, and the
    /// write's item is counted once however many attempts it took.
    #[tokio::test]
    async fn each_attempt_is_a_request_and_a_write_counts_its_item_once() {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
                aws_sdk_dynamodb::config::Credentials::new("a", "b", None, None, "test"),
            ))
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
            .build();
        let client = clients::key_store_dynamodb(&sdk);
        take();
        let result = client
            .put_item()
            .table_name("t")
            .item("pk", aws_sdk_dynamodb::types::AttributeValue::S("p".into()))
            .send()
            .await;
        assert!(result.is_err(), "nothing listens there");
        let counts = take();
        assert_eq!(
            counts.get("DynamoDB:PutItem (keys)"),
            Some(&OperationCount {
                requests: 2,
                items_read: 0,
                items_written: 1
            }),
            "{counts:?}"
        );
        assert!(take().is_empty(), "take starts afresh");
    }
}
