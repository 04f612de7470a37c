//! Least privilege, checked three ways for every function of template.yaml:
//!
//! - **declared**: `functions/<crate>/aws-permissions.txt` lists the AWS actions the function's code
//!   calls, each with the resource it calls it on (`dynamodb:Query DataTable/index/*`);
//! - **granted**: what the template gives the function's role, its inline policies and the KMS key
//!   policies that name it;
//! - **observed**: what the function's requests needed during the test run, written by the emulator
//!   (`infra/python/serial_moto.py`, `OFFICERTRAK_ACTIONS_LOG`): the local stack signs each function's
//!   requests with the function's logical id as access key.
//!
//! Granted must equal declared plus what Lambda itself needs for the function ([`runtime_needs`]: its
//! log group, tracing, event sources, failure destinations, and DynamoDB's own use of the table key);
//! observed must equal declared. Resources are compared as symbols: a logical id (`DataTable`), a
//! logical id with a path (`DataTable/index/*`, `SupportMailBucket/inbound/*`), or a parameter behind
//! an ARN (`identity/MailSender`, `secret:StripeSecretId-*`).

use crate::bootstrap::LocalStack;
use crate::template::{Template, TemplateError};
use serde::Deserialize;
use serde_norway::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use thiserror::Error;

/// One permission: an IAM action on a resource symbol.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    /// `dynamodb:Query`.
    pub action: String,
    /// `DataTable/index/*`, `*` where the action takes no resource.
    pub resource: String,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.action, self.resource)
    }
}

/// Why permissions could not be read.
#[derive(Debug, Error)]
pub enum PermissionsError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{0}")]
    Shape(String),
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
}

/// The actions that take no resource-level permission: the only ones a `*` resource is allowed for.
pub const ACTIONS_WITHOUT_RESOURCES: [&str; 3] = [
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "dynamodb:ListStreams",
];

/// What Lambda does for a function with its role, which the function's code never calls.
pub const LOG_ACTIONS: [&str; 2] = ["logs:CreateLogStream", "logs:PutLogEvents"];

/// The key actions DynamoDB takes for a caller of a table encrypted with a customer managed key.
pub const TABLE_KEY_ACTIONS: [&str; 5] = [
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey*",
    "kms:ReEncrypt*",
];

/// Whether a granted action (IAM allows a `*` wildcard in it) covers action `wanted`.
pub fn action_covers(granted: &str, wanted: &str) -> bool {
    match granted.split_once('*') {
        Some((prefix, _)) => wanted.starts_with(prefix),
        None => granted == wanted,
    }
}

fn permission(action: &str, resource: &str) -> Permission {
    Permission {
        action: action.to_owned(),
        resource: resource.to_owned(),
    }
}

fn strings(value: Option<&Value>) -> Vec<&Value> {
    match value {
        Some(Value::Sequence(items)) => items.iter().collect(),
        Some(other) => vec![other],
        None => Vec::new(),
    }
}

/// The symbol of a resource written in the template: `!GetAtt X.Arn` is `X`, `!GetAtt X.StreamArn`
/// is `X/stream`, `!Ref X` is `ref:X` (a name or URL, never an ARN, so it matches no declaration),
/// and in a `!Sub` every `${X.Arn}` and `${X}` becomes `X` and the
/// `arn:${AWS::Partition}:<service>:${AWS::Region}:${AWS::AccountId}:` prefix is dropped.
pub fn resource_symbol(value: &Value) -> Result<String, PermissionsError> {
    let shape = || PermissionsError::Shape(format!("unsupported resource {value:?}"));
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let argument = tagged.value.as_str().ok_or_else(shape)?;
            match tag.trim_start_matches('!') {
                "GetAtt" => match argument.split_once('.') {
                    Some((target, "Arn")) => Ok(target.to_owned()),
                    Some((target, "StreamArn")) => Ok(format!("{target}/stream")),
                    _ => Err(shape()),
                },
                "Ref" => Ok(format!("ref:{argument}")),
                "Sub" => Ok(sub_symbol(argument)),
                _ => Err(shape()),
            }
        }
        _ => Err(shape()),
    }
}

fn sub_symbol(text: &str) -> String {
    let mut text = text.to_owned();
    for pseudo in ["${AWS::Partition}", "${AWS::Region}", "${AWS::AccountId}"] {
        text = text.replace(pseudo, "");
    }
    // `arn:::secretsmanager:::secret:${StripeSecretId}-*` → `secret:${StripeSecretId}-*`
    if let Some(rest) = text.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        if let Some(last) = parts.get(4) {
            text = (*last).to_owned();
        }
    }
    text.replace(".Arn}", "}").replace("${", "").replace('}', "")
}

/// The logical id an intrinsic points at: `!Ref X`, `!GetAtt X.Arn` (or any attribute) are `X`.
fn target_of(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let argument = tagged.value.as_str()?;
            match tag.trim_start_matches('!') {
                "Ref" => Some(argument.to_owned()),
                "GetAtt" => argument.split_once('.').map(|(target, _)| target.to_owned()),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The role (logical id) behind a function's `Role: !GetAtt XRole.Arn`.
fn role_of(template: &Template, function: &str) -> Result<String, PermissionsError> {
    let properties = resource(template, function)?.get("Properties");
    let role = properties
        .and_then(|p| p.get("Role"))
        .ok_or_else(|| PermissionsError::Shape(format!("{function} has no explicit Role")))?;
    target_of(role)
        .ok_or_else(|| PermissionsError::Shape(format!("{function}: Role is not !GetAtt <Role>.Arn")))
}

fn resource<'a>(template: &'a Template, logical_id: &str) -> Result<&'a Value, PermissionsError> {
    template
        .resources()
        .find(|(id, _)| *id == logical_id)
        .map(|(_, r)| r)
        .ok_or_else(|| PermissionsError::Shape(format!("no resource {logical_id}")))
}

fn statements(document: Option<&Value>) -> Vec<&Value> {
    strings(document.and_then(|d| d.get("Statement")))
}

/// Whether `statement` allows; `NotAction`/`NotResource` (which grant everything but a list) are
/// refused, since no declaration could be compared with them.
fn allows(statement: &Value) -> Result<bool, PermissionsError> {
    if statement.get("NotAction").is_some() || statement.get("NotResource").is_some() {
        return Err(PermissionsError::Shape(
            "a statement with NotAction or NotResource cannot be checked".into(),
        ));
    }
    Ok(statement.get("Effect").and_then(Value::as_str) == Some("Allow"))
}

/// What the template grants the role of `function`: its inline policies, the `AWS::IAM::Policy`
/// resources attached to it, and every KMS key policy statement that names the role. A key statement conditioned on `kms:ViaService` (DynamoDB's own use
/// of the table key) is marked with the resource `<Key>@dynamodb`.
pub fn granted(template: &Template, function: &str) -> Result<BTreeSet<Permission>, PermissionsError> {
    let role = role_of(template, function)?;
    let role_resource = resource(template, &role)?;
    let properties = role_resource.get("Properties");
    if properties.and_then(|p| p.get("ManagedPolicyArns")).is_some() {
        return Err(PermissionsError::Shape(format!(
            "{role} attaches managed policies: their actions cannot be checked here"
        )));
    }
    let mut documents: Vec<&Value> = strings(properties.and_then(|p| p.get("Policies")))
        .into_iter()
        .filter_map(|policy| policy.get("PolicyDocument"))
        .collect();
    // Policies of their own (`AWS::IAM::Policy`) that attach to the role: how the template avoids a
    // dependency loop between the roles, the key policies naming them, and the tables the key encrypts.
    for kind in [
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::RolePolicy",
    ] {
        for (_, policy) in template.resources_of_type(kind) {
            let mut roles = strings(policy.get("Roles"));
            roles.extend(policy.get("RoleName"));
            let attached = roles
                .into_iter()
                .any(|r| target_of(r).is_some_and(|target| target == role));
            if attached {
                documents.extend(policy.get("PolicyDocument"));
            }
        }
    }
    let mut granted = BTreeSet::new();
    for document in documents {
        for statement in statements(Some(document)) {
            if !allows(statement)? {
                continue;
            }
            for resource in strings(statement.get("Resource")) {
                let symbol = resource_symbol(resource)?;
                for action in strings(statement.get("Action")) {
                    let action = action.as_str().ok_or_else(|| {
                        PermissionsError::Shape(format!("{role}: an action that is not a string"))
                    })?;
                    granted.insert(permission(action, &symbol));
                }
            }
        }
    }
    for (key, key_properties) in template.resources_of_type("AWS::KMS::Key") {
        for statement in statements(key_properties.get("KeyPolicy")) {
            if !allows(statement)? {
                continue;
            }
            let principals = strings(statement.get("Principal").and_then(|p| p.get("AWS")));
            let names_role = principals
                .into_iter()
                .any(|p| target_of(p).is_some_and(|target| target == role));
            if !names_role {
                continue;
            }
            // Only DynamoDB's own use counts as at-rest encryption; another service stays a grant.
            let via_service = statement
                .get("Condition")
                .and_then(|c| c.get("StringEquals"))
                .and_then(|c| c.get("kms:ViaService"))
                .map(|service| match service {
                    Value::Tagged(tagged) => tagged.value.as_str().unwrap_or_default().to_owned(),
                    other => other.as_str().unwrap_or_default().to_owned(),
                })
                .is_some_and(|service| service.starts_with("dynamodb."));
            let symbol = if via_service {
                format!("{key}@dynamodb")
            } else {
                key.to_owned()
            };
            for action in strings(statement.get("Action")) {
                let action = action.as_str().ok_or_else(|| {
                    PermissionsError::Shape(format!("{key}: an action that is not a string"))
                })?;
                granted.insert(permission(action, &symbol));
            }
        }
    }
    Ok(granted)
}

/// What Lambda needs the role of `function` to allow, beyond what its code calls: writing its log
/// group, sending traces, reading its event sources, sending to its failure destinations, and the
/// table key for DynamoDB (every table the role may use is encrypted with `DataKey`).
pub fn runtime_needs(
    template: &Template,
    function: &str,
    code: &BTreeSet<Permission>,
) -> Result<BTreeSet<Permission>, PermissionsError> {
    let mut needs = BTreeSet::new();
    let properties = resource(template, function)?.get("Properties");
    let log_group = properties
        .and_then(|p| p.get("LoggingConfig"))
        .and_then(|l| l.get("LogGroup"))
        .ok_or_else(|| PermissionsError::Shape(format!("{function} names no LoggingConfig.LogGroup")))?;
    let log_group = target_of(log_group)
        .ok_or_else(|| PermissionsError::Shape(format!("{function}: LoggingConfig.LogGroup is not !Ref")))?;
    for action in LOG_ACTIONS {
        needs.insert(permission(action, &log_group));
    }
    let tracing = properties
        .and_then(|p| p.get("Tracing"))
        .or_else(|| template.globals_function().and_then(|g| g.get("Tracing")))
        .and_then(Value::as_str);
    if tracing == Some("Active") {
        needs.insert(permission("xray:PutTraceSegments", "*"));
        needs.insert(permission("xray:PutTelemetryRecords", "*"));
    }
    let events = properties
        .and_then(|p| p.get("Events"))
        .and_then(Value::as_mapping);
    for (_, event) in events.into_iter().flat_map(serde_norway::Mapping::iter) {
        let event_properties = event.get("Properties");
        match event.get("Type").and_then(Value::as_str) {
            Some("SQS") => {
                let queue =
                    resource_symbol(event_properties.and_then(|p| p.get("Queue")).ok_or_else(|| {
                        PermissionsError::Shape(format!("{function}: SQS event without Queue"))
                    })?)?;
                for action in [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                ] {
                    needs.insert(permission(action, &queue));
                }
            }
            Some("DynamoDB") => {
                let stream =
                    resource_symbol(event_properties.and_then(|p| p.get("Stream")).ok_or_else(|| {
                        PermissionsError::Shape(format!("{function}: stream event without Stream"))
                    })?)?;
                for action in [
                    "dynamodb:DescribeStream",
                    "dynamodb:GetRecords",
                    "dynamodb:GetShardIterator",
                ] {
                    needs.insert(permission(action, &stream));
                }
                needs.insert(permission("dynamodb:ListStreams", "*"));
                let destination = event_properties
                    .and_then(|p| p.get("DestinationConfig"))
                    .and_then(|d| d.get("OnFailure"))
                    .and_then(|o| o.get("Destination"));
                if let Some(destination) = destination {
                    needs.insert(permission("sqs:SendMessage", &resource_symbol(destination)?));
                }
            }
            _ => {}
        }
    }
    let on_failure = properties
        .and_then(|p| p.get("EventInvokeConfig"))
        .and_then(|e| e.get("DestinationConfig"))
        .and_then(|d| d.get("OnFailure"))
        .and_then(|o| o.get("Destination"));
    let dead_letter = properties
        .and_then(|p| p.get("DeadLetterQueue"))
        .and_then(|d| d.get("TargetArn"));
    for destination in [on_failure, dead_letter].into_iter().flatten() {
        needs.insert(permission("sqs:SendMessage", &resource_symbol(destination)?));
    }
    let uses_tables = code.iter().any(|p| p.action.starts_with("dynamodb:"));
    if uses_tables {
        for action in TABLE_KEY_ACTIONS {
            needs.insert(permission(action, "DataKey@dynamodb"));
        }
    }
    Ok(needs)
}

/// The permissions `functions/<binary>/aws-permissions.txt` declares (`#` starts a comment).
pub fn declared(root: &Path, binary: &str) -> Result<BTreeSet<Permission>, PermissionsError> {
    let path = root.join("functions").join(binary).join("aws-permissions.txt");
    let text = std::fs::read_to_string(&path).map_err(|source| PermissionsError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut declared = BTreeSet::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let (action, resource) = line.split_once(' ').ok_or_else(|| {
            PermissionsError::Shape(format!(
                "{}: {line:?} is not `<action> <resource>`",
                path.display()
            ))
        })?;
        declared.insert(permission(action, resource.trim()));
    }
    Ok(declared)
}

/// One line of the emulator's actions log.
#[derive(Debug, Deserialize)]
struct ObservedLine {
    principal: String,
    action: String,
    resource: String,
}

/// The permissions each function's requests needed in a test run, by function logical id, with
/// physical names turned back into the template's symbols. Requests signed by anything but a
/// function of the template (the tests' own setup) are left out.
pub fn observed(
    log: &str,
    template: &Template,
    stack: &LocalStack,
) -> Result<BTreeMap<String, BTreeSet<Permission>>, PermissionsError> {
    let functions: BTreeSet<String> = template.functions()?.into_iter().map(|f| f.logical_id).collect();
    let symbols = stack.symbols();
    let mut observed: BTreeMap<String, BTreeSet<Permission>> = BTreeMap::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let line: ObservedLine = serde_json::from_str(line)
            .map_err(|error| PermissionsError::Shape(format!("actions log: {error}")))?;
        if !functions.contains(&line.principal) {
            continue;
        }
        let resource = observed_symbol(&line.action, &line.resource, &symbols);
        observed
            .entry(line.principal)
            .or_default()
            .insert(permission(&line.action, &resource));
    }
    Ok(observed)
}

/// A physical name from the log as a template symbol (unknown names stay as they are, and so fail
/// the comparison visibly).
fn observed_symbol(action: &str, physical: &str, symbols: &BTreeMap<String, String>) -> String {
    if action.starts_with("dynamodb:")
        && let Some((table, _index)) = physical.split_once("/index/")
    {
        let table = symbols.get(table).map_or(table, String::as_str);
        return format!("{table}/index/*");
    }
    if action.starts_with("s3:")
        && let Some((bucket, prefix)) = physical.split_once('/')
    {
        let bucket = symbols.get(bucket).map_or(bucket, String::as_str);
        return format!("{bucket}/{prefix}");
    }
    if action.starts_with("ses:") {
        if let Some(set) = physical.strip_prefix("configuration-set/") {
            return format!(
                "configuration-set/{}",
                symbols.get(set).map_or(set, String::as_str)
            );
        }
        return format!(
            "identity/{}",
            symbols.get(physical).map_or(physical, String::as_str)
        );
    }
    if action.starts_with("secretsmanager:") {
        return format!(
            "secret:{}-*",
            symbols.get(physical).map_or(physical, String::as_str)
        );
    }
    if let Some(symbol) = symbols.get(physical) {
        return symbol.clone();
    }
    // A test's copy of a table (`<table>-copy-<id>`, LocalStack::create_table_copy) is that table.
    if let Some((table, _)) = physical.split_once("-copy-")
        && let Some(symbol) = symbols.get(table)
    {
        return symbol.clone();
    }
    physical.to_owned()
}

/// A difference between two permission sets of one function.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Difference {
    /// In the first set only.
    pub extra: BTreeSet<Permission>,
    /// In the second set only.
    pub missing: BTreeSet<Permission>,
}

impl Difference {
    /// `first` compared with `second`.
    pub fn of(first: &BTreeSet<Permission>, second: &BTreeSet<Permission>) -> Self {
        Self {
            extra: first.difference(second).cloned().collect(),
            missing: second.difference(first).cloned().collect(),
        }
    }

    /// Nothing differs.
    pub fn is_empty(&self) -> bool {
        self.extra.is_empty() && self.missing.is_empty()
    }
}

/// Every function of the template whose role grants differ from what it declares plus what Lambda
/// needs: `(function, granted vs expected)`. Empty when the template is least privilege.
pub fn grant_drift(template: &Template, root: &Path) -> Result<Vec<(String, Difference)>, PermissionsError> {
    let mut drift = Vec::new();
    for function in template.functions()? {
        let code = declared(root, &function.binary)?;
        let mut expected = runtime_needs(template, &function.logical_id, &code)?;
        expected.extend(code);
        let difference = Difference::of(&granted(template, &function.logical_id)?, &expected);
        if !difference.is_empty() {
            drift.push((function.logical_id, difference));
        }
    }
    Ok(drift)
}

/// Every grant to a `*` resource that the service could narrow (any action but
/// [`ACTIONS_WITHOUT_RESOURCES`]), as `(function, permission)`.
pub fn wildcard_grants(template: &Template) -> Result<Vec<(String, Permission)>, PermissionsError> {
    let logical_ids: BTreeSet<&str> = template.resources().map(|(id, _)| id).collect();
    // A path under one of the template's own resources (`DataTable/index/*`,
    // `SupportMailBucket/inbound/*`) or a secret's version suffix is as narrow as the service allows.
    let narrowed = |resource: &str| {
        resource
            .split_once('/')
            .is_some_and(|(owner, _)| logical_ids.contains(owner))
            || (resource.starts_with("secret:") && resource.ends_with("-*") && resource.matches('*').count() == 1)
            // DynamoDB's own use of the table key: the documented action set, only through DynamoDB.
            || resource.ends_with("@dynamodb")
    };
    let mut found = Vec::new();
    for function in template.functions()? {
        for grant in granted(template, &function.logical_id)? {
            if (grant.action.contains('*') || grant.resource.contains('*'))
                && !narrowed(&grant.resource)
                && !ACTIONS_WITHOUT_RESOURCES.contains(&grant.action.as_str())
            {
                found.push((function.logical_id.clone(), grant));
            }
        }
    }
    Ok(found)
}

/// Every function whose observed calls differ from what it declares: `(function, observed vs
/// declared)`. The SQS event source's own receive and delete (the local worker stands in for
/// Lambda's) count as declared.
pub fn observed_drift(
    template: &Template,
    root: &Path,
    observed: &BTreeMap<String, BTreeSet<Permission>>,
) -> Result<Vec<(String, Difference)>, PermissionsError> {
    let mut drift = Vec::new();
    let empty = BTreeSet::new();
    for function in template.functions()? {
        let code = declared(root, &function.binary)?;
        let seen = observed.get(&function.logical_id).unwrap_or(&empty);
        let runtime = runtime_needs(template, &function.logical_id, &code)?;
        let mut difference = Difference::of(seen, &code);
        difference.extra.retain(|p| !runtime.contains(p));
        if !difference.is_empty() {
            drift.push((function.logical_id, difference));
        }
    }
    Ok(drift)
}

/// A printable report of drift, one function per paragraph.
pub fn report(drift: &[(String, Difference)], extra_label: &str, missing_label: &str) -> String {
    let mut out = String::new();
    for (function, difference) in drift {
        out.push_str(&format!("{function}:\n"));
        for p in &difference.extra {
            out.push_str(&format!("  {extra_label}: {p}\n"));
        }
        for p in &difference.missing {
            out.push_str(&format!("  {missing_label}: {p}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{project_template, repo_root};

    #[test]
    fn symbols_of_template_resources() {
        let doc: Value = serde_norway::from_str(
            "a: !GetAtt DataTable.Arn\nb: !Sub ${DataTable.Arn}/index/*\nc: !GetAtt DataTable.StreamArn\n\
             d: !Sub arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${StripeSecretId}-*\n\
             e: !Sub arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${MailSender}\nf: '*'\n",
        )
        .expect("yaml");
        let symbol = |k: &str| resource_symbol(doc.get(k).expect("key")).expect("symbol");
        assert_eq!(symbol("a"), "DataTable");
        assert_eq!(symbol("b"), "DataTable/index/*");
        assert_eq!(symbol("c"), "DataTable/stream");
        assert_eq!(symbol("d"), "secret:StripeSecretId-*");
        assert_eq!(symbol("e"), "identity/MailSender");
        assert_eq!(symbol("f"), "*");
    }

    /// Each role grants exactly what its function's code declares plus what Lambda needs for it.
    #[test]
    fn every_role_grants_what_its_function_declares_and_nothing_else() {
        let template = project_template().expect("template.yaml");
        let drift = grant_drift(&template, &repo_root()).expect("permissions");
        assert!(
            drift.is_empty(),
            "template.yaml vs functions/*/aws-permissions.txt:\n{}",
            report(&drift, "granted, not needed", "needed, not granted")
        );
    }

    #[test]
    fn no_role_grants_a_wildcard_resource_the_service_could_narrow() {
        let template = project_template().expect("template.yaml");
        let found = wildcard_grants(&template).expect("permissions");
        assert!(found.is_empty(), "{found:?}");
    }

    /// Deleting key-store items destroys a user's data for good (crypto-shredding): only the
    /// functions that erase may do it (an erasure job, the end of a retention period). Keys are
    /// created by registration (users) and the key set-up (the system keys) only: the privacy worker
    /// keeps the export of someone who never registered under the system key instead.
    #[test]
    fn only_the_erasing_functions_may_delete_branch_keys() {
        let template = project_template().expect("template.yaml");
        let mut shredders = BTreeSet::new();
        for function in template.functions().expect("functions") {
            let grants = granted(&template, &function.logical_id).expect("grants");
            let deletes = grants.iter().any(|g| {
                g.resource == "KeyStoreTable"
                    && [
                        "dynamodb:DeleteItem",
                        "dynamodb:BatchWriteItem",
                        "dynamodb:PartiQLDelete",
                    ]
                    .iter()
                    .any(|wanted| action_covers(&g.action, wanted))
            });
            if deletes {
                shredders.insert(function.logical_id);
            }
        }
        let expected: BTreeSet<String> = ["PrivacyWorkerFunction", "RetentionFunction"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(shredders, expected);
        let mut creators = BTreeSet::new();
        for function in template.functions().expect("functions") {
            let grants = granted(&template, &function.logical_id).expect("grants");
            let creates = grants.iter().any(|g| {
                (g.resource == "DataKey" && action_covers(&g.action, "kms:GenerateDataKeyWithoutPlaintext"))
                    || (g.resource == "KeyStoreTable" && action_covers(&g.action, "dynamodb:PutItem"))
            });
            if creates {
                creators.insert(function.logical_id);
            }
        }
        let expected: BTreeSet<String> = ["KeySetupFunction", "RegistrationFunction"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(creators, expected);
    }

    /// A queue's `!Ref` is its URL, which grants nothing: it must not pass for the queue's ARN, and a
    /// statement that grants "all but" cannot be compared at all.
    #[test]
    fn a_name_is_no_arn_and_not_action_is_refused() {
        let doc: Value = serde_norway::from_str("a: !Ref PrivacyJobsQueue\n").expect("yaml");
        assert_eq!(
            resource_symbol(doc.get("a").expect("a")).expect("symbol"),
            "ref:PrivacyJobsQueue"
        );
        let statement: Value =
            serde_norway::from_str("Effect: Allow\nNotAction: s3:*\nResource: '*'\n").expect("yaml");
        assert!(allows(&statement).is_err());
        assert!(action_covers("dynamodb:*", "dynamodb:DeleteItem"));
        assert!(action_covers(
            "kms:GenerateDataKey*",
            "kms:GenerateDataKeyWithoutPlaintext"
        ));
        assert!(!action_covers("dynamodb:GetItem", "dynamodb:DeleteItem"));
    }

    /// A grant the check cannot see would make the checks above meaningless.
    #[test]
    fn an_extra_grant_is_reported() {
        let template = project_template().expect("template.yaml");
        let text = std::fs::read_to_string(repo_root().join("template.yaml")).expect("template");
        let widened = text.replacen(
            "              - dynamodb:Query\n",
            "              - dynamodb:Query\n              - dynamodb:Scan\n",
            1,
        );
        assert_ne!(widened, text, "the template has a dynamodb:Query grant to widen");
        let widened = Template::parse(&widened).expect("widened template");
        let drift = grant_drift(&widened, &repo_root()).expect("permissions");
        assert!(
            drift
                .iter()
                .any(|(_, d)| d.extra.iter().any(|p| p.action == "dynamodb:Scan")),
            "{drift:?}"
        );
        assert!(
            grant_drift(&template, &repo_root())
                .expect("permissions")
                .is_empty()
        );
    }
}
