//! Creating, in the emulator, every resource template.yaml declares that the functions use: tables
//! (keys, indexes, TTL, backups, encryption), the KMS key and its alias, the SES sender identity, the
//! Cognito user pool, app client and groups, and the system and beacon branch keys in the key store.
//! Idempotent: a second run finds and reuses what exists,
//! and refuses a table whose shape no longer matches the template.

use crate::template::{Resolve, Template, TemplateError, resolve};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types as ddb;
use platform::Config;
use platform::crypto::{KeyClients, KeyManager};
use serde::Deserialize;
use serde_norway::Value;
use std::collections::{BTreeMap, HashMap};
use thiserror::Error;

/// The region the local stack pretends to be in.
pub const REGION: &str = "us-east-1";
/// The account id moto uses.
pub const ACCOUNT_ID: &str = "123456789012";
/// Prefix of locally created table names.
pub const STACK_NAME: &str = "officertrak-local";

/// Why the local resources could not be created.
#[derive(Debug, Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Crypto(#[from] platform::crypto::CryptoError),
    #[error("{resource}: {detail}")]
    Aws { resource: String, detail: String },
    #[error(
        "table {table} in the emulator differs from template.yaml:\n  emulator: {actual:?}\n  template: {expected:?}\n\
         restart the emulator (stop `cargo xtask dev`) to recreate it"
    )]
    Drift {
        table: String,
        actual: Box<TableShape>,
        expected: Box<TableShape>,
    },
}

fn aws_error<E: std::error::Error>(resource: &str) -> impl FnOnce(E) -> BootstrapError + '_ {
    move |error| BootstrapError::Aws {
        resource: resource.to_owned(),
        detail: DisplayErrorContext(&error).to_string(),
    }
}

/// The resources of one local stack, as the emulator knows them.
#[derive(Debug, Clone)]
pub struct LocalStack {
    /// The emulator's URL.
    pub endpoint: String,
    /// The parsed template the stack was built from.
    pub template: Template,
    refs: HashMap<String, String>,
    attributes: HashMap<(String, String), String>,
}

impl Resolve for LocalStack {
    fn reference(&self, name: &str) -> Option<String> {
        match name {
            "AWS::Region" => Some(REGION.into()),
            "AWS::AccountId" => Some(ACCOUNT_ID.into()),
            "AWS::Partition" => Some("aws".into()),
            "AWS::StackName" => Some(STACK_NAME.into()),
            "AWS::URLSuffix" => Some("amazonaws.com".into()),
            _ => self.refs.get(name).cloned(),
        }
    }

    fn attribute(&self, name: &str, attribute: &str) -> Option<String> {
        self.attributes
            .get(&(name.to_owned(), attribute.to_owned()))
            .cloned()
    }

    fn condition(&self, name: &str) -> Option<serde_norway::Value> {
        self.template.condition(name)
    }
}

impl LocalStack {
    /// The physical id of a resource (`!Ref` value): table name, key id, pool id, client id.
    pub fn physical_id(&self, logical_id: &str) -> Option<String> {
        self.reference(logical_id)
    }

    /// Every physical name and ARN of the stack, with the logical id (or parameter) it belongs to:
    /// how [`crate::permissions`] reads the emulator's log of what each function called. A parameter
    /// wins over a resource with the same value (an SES identity is granted by its address).
    pub fn symbols(&self) -> BTreeMap<String, String> {
        let parameters = self.template.parameter_defaults();
        let mut symbols = BTreeMap::new();
        for ((logical_id, _), value) in &self.attributes {
            symbols.insert(value.clone(), logical_id.clone());
        }
        for (name, value) in &self.refs {
            if !parameters.contains_key(name) {
                symbols.insert(value.clone(), name.clone());
            }
        }
        for (name, value) in &self.refs {
            if parameters.contains_key(name) {
                symbols.insert(value.clone(), name.clone());
            }
        }
        symbols
    }

    /// SDK configuration for the emulator as function `logical_id`: its requests are signed with the
    /// function's logical id as access key, so the emulator's actions log says who called what.
    pub async fn function_sdk_config(&self, logical_id: &str) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new(
                logical_id,
                "testing",
                None,
                None,
                "local-function",
            ))
            .load()
            .await
    }

    /// The state function `logical_id` gets in the local stack: its configuration, its own
    /// credentials (see [`LocalStack::function_sdk_config`]) and `clock`.
    pub async fn function_state(
        &self,
        logical_id: &str,
        clock: platform::Clock,
    ) -> Result<platform::AppState, BootstrapError> {
        let sdk = self.function_sdk_config(logical_id).await;
        platform::AppState::new(self.function_config(logical_id)?, &sdk, clock)
            .await
            .map_err(|error| BootstrapError::Aws {
                resource: logical_id.to_owned(),
                detail: error.to_string(),
            })
    }

    /// Creates table `name` with the shape template.yaml declares for table `logical_id`: tests that
    /// need an empty copy of a shared table (a fresh key store) use it.
    pub async fn create_table_copy(&self, logical_id: &str, name: &str) -> Result<(), BootstrapError> {
        let (_, raw) = self
            .template
            .resources_of_type("AWS::DynamoDB::Table")
            .find(|(id, _)| *id == logical_id)
            .ok_or_else(|| TemplateError::Shape(format!("no table {logical_id}")))?;
        let properties: TableProperties = serde_norway::from_value(raw.clone())
            .map_err(|error| TemplateError::Shape(format!("{logical_id}: {error}")))?;
        let dynamodb = aws_sdk_dynamodb::Client::new(&self.sdk_config().await);
        create_table(&dynamodb, name, &properties, self).await
    }

    /// The configuration a function gets, from its resolved template environment.
    pub fn function_config(&self, logical_id: &str) -> Result<Config, BootstrapError> {
        let environment = self.template.function_environment(logical_id, self)?;
        Config::from_lookup(|name| environment.get(name).cloned()).map_err(|error| BootstrapError::Aws {
            resource: logical_id.to_owned(),
            detail: error.to_string(),
        })
    }

    /// Sets a template parameter after bootstrap (the local processor's URL, known once it started):
    /// function configurations resolved afterwards see the new value.
    pub fn set_parameter(&mut self, name: &str, value: &str) {
        self.refs.insert(name.to_owned(), value.to_owned());
    }

    /// Sets where the local API answers (`!GetAtt Api.ApiEndpoint`: the links our mail carries) once a
    /// gateway listens on a port of its own; [`LOCAL_API_ENDPOINT`] until then.
    pub fn set_api_endpoint(&mut self, url: &str) {
        self.attributes
            .insert(("Api".to_owned(), "ApiEndpoint".to_owned()), url.to_owned());
    }

    /// SDK configuration that talks to this stack's emulator.
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config(&self.endpoint).await
    }
}

/// Where `cargo xtask dev` serves the API by default: the local `!GetAtt Api.ApiEndpoint`.
pub const LOCAL_API_ENDPOINT: &str = "http://127.0.0.1:3000";

/// SDK configuration for the emulator at `endpoint` (dummy credentials, fixed region).
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "local-stack"))
        .load()
        .await
}

/// Creates (or finds) every resource of `template` in the emulator at `endpoint`.
pub async fn bootstrap(endpoint: &str, template: Template) -> Result<LocalStack, BootstrapError> {
    let sdk = sdk_config(endpoint).await;
    let mut stack = LocalStack {
        endpoint: endpoint.to_owned(),
        refs: template.parameter_defaults(),
        attributes: HashMap::from([(
            ("Api".to_owned(), "ApiEndpoint".to_owned()),
            LOCAL_API_ENDPOINT.to_owned(),
        )]),
        template: template.clone(),
    };
    ensure_keys(&aws_sdk_kms::Client::new(&sdk), &template, &mut stack).await?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    for (logical_id, properties) in template.resources_of_type("AWS::DynamoDB::Table") {
        ensure_table(&dynamodb, logical_id, properties, &mut stack).await?;
    }
    ensure_queues(&aws_sdk_sqs::Client::new(&sdk), &template, &mut stack).await?;
    ensure_buckets(&s3_client(&sdk), &template, &mut stack).await?;
    ensure_identity(
        &aws_sdk_cognitoidentityprovider::Client::new(&sdk),
        &template,
        &mut stack,
    )
    .await?;
    let mail = aws_sdk_sesv2::Client::new(&sdk);
    for (logical_id, properties) in template.resources_of_type("AWS::SES::EmailIdentity") {
        let address = resolve(properties.get("EmailIdentity").unwrap_or(&Value::Null), &stack)?;
        let created = mail.create_email_identity().email_identity(&address).send().await;
        if let Err(error) = created
            && error.code() != Some("AlreadyExistsException")
        {
            return Err(aws_error(logical_id)(error));
        }
        stack.refs.insert(logical_id.to_owned(), address);
    }
    for (logical_id, properties) in template.resources_of_type("AWS::SES::ConfigurationSet") {
        let name = resolve(properties.get("Name").unwrap_or(&Value::Null), &stack)?;
        let created = mail
            .create_configuration_set()
            .configuration_set_name(&name)
            .send()
            .await;
        // SES v2 names the error AlreadyExistsException; moto, ConfigurationSetAlreadyExistsException.
        if let Err(error) = created
            && !error
                .code()
                .is_some_and(|code| code.ends_with("AlreadyExistsException"))
        {
            return Err(aws_error(logical_id)(error));
        }
        stack.refs.insert(logical_id.to_owned(), name);
    }
    stack.refs.insert("Api".into(), "local".into());
    ensure_processor(&aws_sdk_secretsmanager::Client::new(&sdk), &mut stack).await?;
    // The branch keys every deployment needs: system data and beacons (per-user keys come with users).
    // Deployed, the key set-up creates them (SystemKeys in template.yaml, functions/key-setup).
    if let Some(function) = template.functions()?.first() {
        let config = stack.function_config(&function.logical_id)?;
        let keys = KeyClients {
            kms: aws_sdk_kms::Client::new(&sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
        };
        KeyManager::new(&config, &keys)?.ensure_system_keys().await?;
    }
    Ok(stack)
}

/// The secret key localstripe accepts (any `sk_…` will do; this one says where it belongs).
pub const LOCAL_STRIPE_SECRET_KEY: &str = "sk_test_officertrak_local";

/// The webhook secret of the local stack: tests sign webhooks with it, as Stripe would.
pub const LOCAL_STRIPE_WEBHOOK_SECRET: &str = "whsec_officertrak_local";

/// The payment processor of the local stack: the Secrets Manager secret the template names (created
/// with the local keys when missing), and the processor's URL from `STRIPE_API_BASE` when set (the
/// localstripe that `cargo xtask test` started; `cargo xtask dev` sets it with
/// [`LocalStack::set_parameter`]).
async fn ensure_processor(
    secrets: &aws_sdk_secretsmanager::Client,
    stack: &mut LocalStack,
) -> Result<(), BootstrapError> {
    if let Ok(url) = std::env::var("STRIPE_API_BASE")
        && !url.trim().is_empty()
    {
        stack.refs.insert("StripeApiBase".into(), url);
    }
    let Some(secret_id) = stack.refs.get("StripeSecretId").cloned() else {
        return Ok(());
    };
    let value = serde_json::json!({
        "secret_key": LOCAL_STRIPE_SECRET_KEY,
        "webhook_secret": LOCAL_STRIPE_WEBHOOK_SECRET,
    })
    .to_string();
    let created = secrets
        .create_secret()
        .name(&secret_id)
        .secret_string(value)
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(error) if error.code() == Some("ResourceExistsException") => Ok(()),
        Err(error) => Err(aws_error("StripeSecretId")(error)),
    }
}

/// The template's SQS queues, named after their logical ids: dead-letter queues first, then the queues
/// that redrive to them (`RedrivePolicy`, resolved), with their visibility timeout and retention.
/// `!Ref` gives the queue URL, `!GetAtt` its `Arn`, `QueueName` and `QueueUrl`, as in CloudFormation.
async fn ensure_queues(
    sqs: &aws_sdk_sqs::Client,
    template: &Template,
    stack: &mut LocalStack,
) -> Result<(), BootstrapError> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let mut queues: Vec<(&str, &Value)> = template.resources_of_type("AWS::SQS::Queue").collect();
    queues.sort_by_key(|(_, properties)| properties.get("RedrivePolicy").is_some());
    for (logical_id, properties) in queues {
        let mut request = sqs.create_queue().queue_name(logical_id);
        for (field, attribute) in [
            ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
            (
                "MessageRetentionPeriod",
                QueueAttributeName::MessageRetentionPeriod,
            ),
        ] {
            if let Some(value) = properties.get(field) {
                request = request.attributes(attribute, resolve(value, stack)?);
            }
        }
        if let Some(redrive) = properties.get("RedrivePolicy") {
            let target = redrive.get("deadLetterTargetArn").unwrap_or(&Value::Null);
            let count = redrive.get("maxReceiveCount").unwrap_or(&Value::Null);
            let policy = serde_json::json!({
                "deadLetterTargetArn": resolve(target, stack)?,
                "maxReceiveCount": resolve(count, stack)?,
            });
            request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        let url = request
            .send()
            .await
            .map_err(aws_error(logical_id))?
            .queue_url
            .unwrap_or_default();
        let arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{logical_id}");
        stack.refs.insert(logical_id.to_owned(), url.clone());
        for (attribute, value) in [
            ("Arn", arn),
            ("QueueName", logical_id.to_owned()),
            ("QueueUrl", url),
        ] {
            stack
                .attributes
                .insert((logical_id.to_owned(), attribute.to_owned()), value);
        }
    }
    Ok(())
}

/// An S3 client for the emulator: moto serves buckets by path (`<endpoint>/<bucket>/<key>`), not as
/// subdomains of 127.0.0.1.
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

/// The template's S3 buckets, named after their logical ids in lower case (bucket names allow no
/// capitals). `!Ref` gives the name, `!GetAtt` its `Arn`, as in CloudFormation.
async fn ensure_buckets(
    s3: &aws_sdk_s3::Client,
    template: &Template,
    stack: &mut LocalStack,
) -> Result<(), BootstrapError> {
    for (logical_id, _) in template.resources_of_type("AWS::S3::Bucket") {
        let name = logical_id.to_lowercase();
        let created = s3.create_bucket().bucket(&name).send().await;
        if let Err(error) = created
            && !matches!(
                error.code(),
                Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
            )
        {
            return Err(aws_error(logical_id)(error));
        }
        stack.refs.insert(logical_id.to_owned(), name.clone());
        stack.attributes.insert(
            (logical_id.to_owned(), "Arn".to_owned()),
            format!("arn:aws:s3:::{name}"),
        );
    }
    Ok(())
}

/// KMS keys are found again by their alias, so every key in the template needs one.
async fn ensure_keys(
    kms: &aws_sdk_kms::Client,
    template: &Template,
    stack: &mut LocalStack,
) -> Result<(), BootstrapError> {
    let existing: HashMap<String, String> = kms
        .list_aliases()
        .send()
        .await
        .map_err(aws_error("KMS aliases"))?
        .aliases
        .unwrap_or_default()
        .into_iter()
        .filter_map(|alias| Some((alias.alias_name?, alias.target_key_id?)))
        .collect();
    let aliases: Vec<(String, String, String)> = template
        .resources_of_type("AWS::KMS::Alias")
        .map(|(alias_id, properties)| {
            let name = resolve(properties.get("AliasName").unwrap_or(&Value::Null), &*stack)?;
            let target = ref_target(properties.get("TargetKeyId")).unwrap_or_default();
            Ok((alias_id.to_owned(), name, target))
        })
        .collect::<Result<_, BootstrapError>>()?;
    for (key_id, properties) in template.resources_of_type("AWS::KMS::Key") {
        let Some((alias_id, alias_name, _)) = aliases.iter().find(|(_, _, target)| target == key_id) else {
            return Err(BootstrapError::Aws {
                resource: key_id.into(),
                detail: "the local stack finds keys by alias: give this key an AWS::KMS::Alias".into(),
            });
        };
        let physical = match existing.get(alias_name) {
            Some(id) => id.clone(),
            None => {
                let created = kms
                    .create_key()
                    .description(
                        properties
                            .get("Description")
                            .and_then(Value::as_str)
                            .unwrap_or(key_id),
                    )
                    .key_spec(
                        properties
                            .get("KeySpec")
                            .and_then(Value::as_str)
                            .unwrap_or("SYMMETRIC_DEFAULT")
                            .into(),
                    )
                    .key_usage(
                        properties
                            .get("KeyUsage")
                            .and_then(Value::as_str)
                            .unwrap_or("ENCRYPT_DECRYPT")
                            .into(),
                    )
                    .send()
                    .await
                    .map_err(aws_error(key_id))?;
                let id = created.key_metadata.map(|m| m.key_id).unwrap_or_default();
                kms.create_alias()
                    .alias_name(alias_name)
                    .target_key_id(&id)
                    .send()
                    .await
                    .map_err(aws_error(alias_id))?;
                id
            }
        };
        let arn = kms
            .describe_key()
            .key_id(&physical)
            .send()
            .await
            .map_err(aws_error(key_id))?
            .key_metadata
            .and_then(|m| m.arn)
            .unwrap_or_default();
        stack.refs.insert(key_id.to_owned(), physical);
        stack.attributes.insert((key_id.to_owned(), "Arn".into()), arn);
        stack.refs.insert(alias_id.clone(), alias_name.clone());
    }
    Ok(())
}

/// The app client's auth flows. The template chooses them with `!If [AdminPasswordAuth, with, without]`:
/// the local stack takes the first list, since its token tool (`cargo xtask token`) signs users in
/// with ADMIN_USER_PASSWORD_AUTH; a deployed stack has it only when its parameter says so.
fn auth_flows(properties: &Value) -> Vec<String> {
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    match properties.get("ExplicitAuthFlows") {
        Some(Value::Tagged(tagged)) if tagged.tag == "If" => tagged
            .value
            .as_sequence()
            .and_then(|branches| branches.get(1))
            .map(strings)
            .unwrap_or_default(),
        Some(list) => strings(list),
        None => Vec::new(),
    }
}

/// A property that is a list of strings (missing → empty).
fn string_list(properties: &Value, field: &str) -> Vec<String> {
    properties
        .get(field)
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

fn ref_target(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Tagged(tagged) if tagged.tag == "Ref" => tagged.value.as_str().map(str::to_owned),
        Value::Mapping(mapping) => mapping.get("Ref").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// The shape of a table that matters to the code: keys, attribute types, indexes, TTL attribute.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableShape {
    /// `(attribute, HASH|RANGE)` in order.
    pub key_schema: Vec<(String, String)>,
    /// Attribute name → `S`, `N` or `B`.
    pub attribute_types: BTreeMap<String, String>,
    /// Index name → (key schema, projection type).
    pub indexes: BTreeMap<String, (Vec<(String, String)>, String)>,
    /// The TTL attribute, when TTL is enabled.
    pub ttl_attribute: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TableProperties {
    attribute_definitions: Vec<AttributeDefinition>,
    key_schema: Vec<KeyElement>,
    #[serde(default)]
    global_secondary_indexes: Vec<IndexDefinition>,
    time_to_live_specification: Option<TtlSpecification>,
    point_in_time_recovery_specification: Option<PitrSpecification>,
    #[serde(rename = "SSESpecification")]
    sse_specification: Option<SseSpecification>,
    stream_specification: Option<StreamSpecification>,
    deletion_protection_enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttributeDefinition {
    attribute_name: String,
    attribute_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyElement {
    attribute_name: String,
    key_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IndexDefinition {
    index_name: String,
    key_schema: Vec<KeyElement>,
    projection: ProjectionDefinition,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProjectionDefinition {
    projection_type: String,
    #[serde(default)]
    non_key_attributes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TtlSpecification {
    attribute_name: String,
    enabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PitrSpecification {
    point_in_time_recovery_enabled: bool,
}

#[derive(Debug, Deserialize)]
struct SseSpecification {
    #[serde(rename = "SSEEnabled")]
    enabled: bool,
    #[serde(rename = "KMSMasterKeyId")]
    kms_master_key_id: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StreamSpecification {
    stream_view_type: String,
}

impl TableProperties {
    fn shape(&self) -> TableShape {
        let keys = |schema: &[KeyElement]| {
            schema
                .iter()
                .map(|k| (k.attribute_name.clone(), k.key_type.clone()))
                .collect::<Vec<_>>()
        };
        TableShape {
            key_schema: keys(&self.key_schema),
            attribute_types: self
                .attribute_definitions
                .iter()
                .map(|a| (a.attribute_name.clone(), a.attribute_type.clone()))
                .collect(),
            indexes: self
                .global_secondary_indexes
                .iter()
                .map(|i| {
                    (
                        i.index_name.clone(),
                        (keys(&i.key_schema), i.projection.projection_type.clone()),
                    )
                })
                .collect(),
            ttl_attribute: self
                .time_to_live_specification
                .as_ref()
                .filter(|ttl| ttl.enabled)
                .map(|ttl| ttl.attribute_name.clone()),
        }
    }
}

/// The table shape template.yaml declares for `logical_id`.
pub fn declared_table_shape(template: &Template, logical_id: &str) -> Result<TableShape, BootstrapError> {
    let (_, properties) = template
        .resources_of_type("AWS::DynamoDB::Table")
        .find(|(id, _)| *id == logical_id)
        .ok_or_else(|| TemplateError::Shape(format!("no table {logical_id}")))?;
    let properties: TableProperties = serde_norway::from_value(properties.clone())
        .map_err(|error| TemplateError::Shape(format!("{logical_id}: {error}")))?;
    Ok(properties.shape())
}

/// The shape of table `name` as the emulator (or DynamoDB) describes it.
pub async fn live_table_shape(
    dynamodb: &aws_sdk_dynamodb::Client,
    name: &str,
) -> Result<TableShape, BootstrapError> {
    let table = dynamodb
        .describe_table()
        .table_name(name)
        .send()
        .await
        .map_err(aws_error(name))?
        .table;
    let table = table.ok_or_else(|| BootstrapError::Aws {
        resource: name.into(),
        detail: "no description".into(),
    })?;
    let keys = |schema: &[ddb::KeySchemaElement]| {
        schema
            .iter()
            .map(|k| (k.attribute_name.clone(), k.key_type.as_str().to_owned()))
            .collect::<Vec<_>>()
    };
    let ttl = dynamodb
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .map_err(aws_error(name))?
        .time_to_live_description
        .filter(|ttl| ttl.time_to_live_status == Some(ddb::TimeToLiveStatus::Enabled))
        .and_then(|ttl| ttl.attribute_name);
    Ok(TableShape {
        key_schema: keys(table.key_schema()),
        attribute_types: table
            .attribute_definitions()
            .iter()
            .map(|a| (a.attribute_name.clone(), a.attribute_type.as_str().to_owned()))
            .collect(),
        indexes: table
            .global_secondary_indexes()
            .iter()
            .map(|index| {
                let projection = index
                    .projection
                    .as_ref()
                    .and_then(|p| p.projection_type.as_ref())
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default();
                (
                    index.index_name.clone().unwrap_or_default(),
                    (keys(index.key_schema()), projection),
                )
            })
            .collect(),
        ttl_attribute: ttl,
    })
}

async fn ensure_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    logical_id: &str,
    raw: &Value,
    stack: &mut LocalStack,
) -> Result<(), BootstrapError> {
    let properties: TableProperties = serde_norway::from_value(raw.clone())
        .map_err(|error| TemplateError::Shape(format!("{logical_id}: {error}")))?;
    let name = format!("{STACK_NAME}-{logical_id}");
    let exists = match dynamodb.describe_table().table_name(&name).send().await {
        Ok(_) => true,
        Err(error) if error.code() == Some("ResourceNotFoundException") => false,
        Err(error) => return Err(aws_error(logical_id)(error)),
    };
    if !exists {
        create_table(dynamodb, &name, &properties, stack).await?;
    }
    let expected = properties.shape();
    let actual = live_table_shape(dynamodb, &name).await?;
    if actual != expected {
        return Err(BootstrapError::Drift {
            table: name,
            actual: Box::new(actual),
            expected: Box::new(expected),
        });
    }
    let arn = format!("arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}");
    stack.refs.insert(logical_id.to_owned(), name);
    stack
        .attributes
        .insert((logical_id.to_owned(), "Arn".into()), arn);
    Ok(())
}

async fn create_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    name: &str,
    properties: &TableProperties,
    stack: &LocalStack,
) -> Result<(), BootstrapError> {
    let invalid = |error: aws_sdk_dynamodb::error::BuildError| BootstrapError::Aws {
        resource: name.to_owned(),
        detail: error.to_string(),
    };
    let key = |k: &KeyElement| {
        ddb::KeySchemaElement::builder()
            .attribute_name(&k.attribute_name)
            .key_type(k.key_type.as_str().into())
            .build()
            .map_err(invalid)
    };
    let mut request = dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(ddb::BillingMode::PayPerRequest);
    for attribute in &properties.attribute_definitions {
        request = request.attribute_definitions(
            ddb::AttributeDefinition::builder()
                .attribute_name(&attribute.attribute_name)
                .attribute_type(attribute.attribute_type.as_str().into())
                .build()
                .map_err(invalid)?,
        );
    }
    for element in &properties.key_schema {
        request = request.key_schema(key(element)?);
    }
    for index in &properties.global_secondary_indexes {
        let mut builder = ddb::GlobalSecondaryIndex::builder()
            .index_name(&index.index_name)
            .projection(
                ddb::Projection::builder()
                    .projection_type(index.projection.projection_type.as_str().into())
                    .set_non_key_attributes(
                        (!index.projection.non_key_attributes.is_empty())
                            .then(|| index.projection.non_key_attributes.clone()),
                    )
                    .build(),
            );
        for element in &index.key_schema {
            builder = builder.key_schema(key(element)?);
        }
        request = request.global_secondary_indexes(builder.build().map_err(invalid)?);
    }
    if let Some(sse) = &properties.sse_specification {
        let key_id = sse
            .kms_master_key_id
            .as_ref()
            .map(|value| resolve(value, stack))
            .transpose()?;
        request = request.sse_specification(
            ddb::SseSpecification::builder()
                .enabled(sse.enabled)
                .sse_type(ddb::SseType::Kms)
                .set_kms_master_key_id(key_id)
                .build(),
        );
    }
    if let Some(stream) = &properties.stream_specification {
        request = request.stream_specification(
            ddb::StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(stream.stream_view_type.as_str().into())
                .build()
                .map_err(invalid)?,
        );
    }
    if let Some(protected) = properties.deletion_protection_enabled {
        request = request.deletion_protection_enabled(protected);
    }
    request.send().await.map_err(aws_error(name))?;
    if let Some(ttl) = properties
        .time_to_live_specification
        .as_ref()
        .filter(|ttl| ttl.enabled)
    {
        dynamodb
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                ddb::TimeToLiveSpecification::builder()
                    .attribute_name(&ttl.attribute_name)
                    .enabled(true)
                    .build()
                    .map_err(invalid)?,
            )
            .send()
            .await
            .map_err(aws_error(name))?;
    }
    if properties
        .point_in_time_recovery_specification
        .as_ref()
        .is_some_and(|p| p.point_in_time_recovery_enabled)
    {
        dynamodb
            .update_continuous_backups()
            .table_name(name)
            .point_in_time_recovery_specification(
                ddb::PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(true)
                    .build()
                    .map_err(invalid)?,
            )
            .send()
            .await
            .map_err(aws_error(name))?;
    }
    Ok(())
}

/// The user pool, its app client and groups, found by name or created.
async fn ensure_identity(
    cognito: &aws_sdk_cognitoidentityprovider::Client,
    template: &Template,
    stack: &mut LocalStack,
) -> Result<(), BootstrapError> {
    use aws_sdk_cognitoidentityprovider::types as idp;
    for (pool_id, properties) in template.resources_of_type("AWS::Cognito::UserPool") {
        let name = match properties.get("UserPoolName") {
            Some(value) => resolve(value, &*stack)?,
            None => pool_id.to_owned(),
        };
        let pools = cognito
            .list_user_pools()
            .max_results(60)
            .send()
            .await
            .map_err(aws_error(pool_id))?;
        let found = pools
            .user_pools()
            .iter()
            .find(|p| p.name() == Some(&name))
            .and_then(|p| p.id.clone());
        let physical = match found {
            Some(id) => id,
            None => {
                let password = properties.get("Policies").and_then(|p| p.get("PasswordPolicy"));
                let flag = |field: &str| {
                    password
                        .and_then(|p| p.get(field))
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                };
                let policy = idp::PasswordPolicyType::builder()
                    .minimum_length(
                        password
                            .and_then(|p| p.get("MinimumLength"))
                            .and_then(Value::as_i64)
                            .unwrap_or(8) as i32,
                    )
                    .require_lowercase(flag("RequireLowercase"))
                    .require_uppercase(flag("RequireUppercase"))
                    .require_numbers(flag("RequireNumbers"))
                    .require_symbols(flag("RequireSymbols"))
                    .build();
                cognito
                    .create_user_pool()
                    .pool_name(&name)
                    .set_username_attributes(Some(
                        string_list(properties, "UsernameAttributes")
                            .iter()
                            .map(|a| a.as_str().into())
                            .collect(),
                    ))
                    .set_auto_verified_attributes(Some(
                        string_list(properties, "AutoVerifiedAttributes")
                            .iter()
                            .map(|a| a.as_str().into())
                            .collect(),
                    ))
                    .policies(idp::UserPoolPolicyType::builder().password_policy(policy).build())
                    .send()
                    .await
                    .map_err(aws_error(pool_id))?
                    .user_pool
                    .and_then(|p| p.id)
                    .unwrap_or_default()
            }
        };
        let arn = cognito
            .describe_user_pool()
            .user_pool_id(&physical)
            .send()
            .await
            .map_err(aws_error(pool_id))?
            .user_pool
            .and_then(|p| p.arn)
            .unwrap_or_default();
        stack.refs.insert(pool_id.to_owned(), physical);
        stack.attributes.insert((pool_id.to_owned(), "Arn".into()), arn);
    }
    for (client_id, properties) in template.resources_of_type("AWS::Cognito::UserPoolClient") {
        let pool = resolve(properties.get("UserPoolId").unwrap_or(&Value::Null), stack)?;
        let name = properties
            .get("ClientName")
            .and_then(Value::as_str)
            .unwrap_or(client_id)
            .to_owned();
        let clients = cognito
            .list_user_pool_clients()
            .user_pool_id(&pool)
            .max_results(60)
            .send()
            .await
            .map_err(aws_error(client_id))?;
        let found = clients
            .user_pool_clients()
            .iter()
            .find(|c| c.client_name() == Some(&name))
            .and_then(|c| c.client_id.clone());
        let physical = match found {
            Some(id) => id,
            None => {
                let flows = auth_flows(properties)
                    .iter()
                    .map(|f| idp::ExplicitAuthFlowsType::from(f.as_str()))
                    .collect();
                cognito
                    .create_user_pool_client()
                    .user_pool_id(&pool)
                    .client_name(&name)
                    .generate_secret(
                        properties
                            .get("GenerateSecret")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                    )
                    .set_explicit_auth_flows(Some(flows))
                    .set_read_attributes(Some(string_list(properties, "ReadAttributes")))
                    .send()
                    .await
                    .map_err(aws_error(client_id))?
                    .user_pool_client
                    .and_then(|c| c.client_id)
                    .unwrap_or_default()
            }
        };
        stack.refs.insert(client_id.to_owned(), physical);
    }
    for (group_id, properties) in template.resources_of_type("AWS::Cognito::UserPoolGroup") {
        let pool = resolve(properties.get("UserPoolId").unwrap_or(&Value::Null), stack)?;
        let name = properties
            .get("GroupName")
            .and_then(Value::as_str)
            .unwrap_or(group_id)
            .to_owned();
        let created = cognito
            .create_group()
            .user_pool_id(&pool)
            .group_name(&name)
            .set_description(
                properties
                    .get("Description")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            )
            .send()
            .await;
        if let Err(error) = created
            && error.code() != Some("GroupExistsException")
        {
            return Err(aws_error(group_id)(error));
        }
        stack.refs.insert(group_id.to_owned(), name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_beacon_has_its_index_in_the_template() {
        let template = crate::project_template().expect("template.yaml");
        let shape = declared_table_shape(&template, "DataTable").expect("DataTable");
        for beacon in platform::schema::BEACONS {
            let (keys, projection) = shape
                .indexes
                .get(beacon.index)
                .unwrap_or_else(|| panic!("index {}", beacon.index));
            assert_eq!(
                keys,
                &vec![(beacon.stored_attribute(), "HASH".to_owned())],
                "{}",
                beacon.index
            );
            assert_eq!(
                shape
                    .attribute_types
                    .get(&beacon.stored_attribute())
                    .map(String::as_str),
                Some("S")
            );
            assert_eq!(
                projection, "ALL",
                "reads through the encryption interceptor need whole items"
            );
        }
    }

    #[test]
    fn the_key_store_table_has_the_layout_the_encryption_sdk_writes() {
        let template = crate::project_template().expect("template.yaml");
        let shape = declared_table_shape(&template, "KeyStoreTable").expect("KeyStoreTable");
        assert_eq!(
            shape.key_schema,
            vec![
                ("branch-key-id".to_owned(), "HASH".to_owned()),
                ("type".to_owned(), "RANGE".to_owned())
            ]
        );
    }
}
