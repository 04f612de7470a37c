//! The API contract, checked: a response the local gateway gives is compared with what the OpenAPI
//! document (`shared/edge/openapi.yaml`) says that route answers (the status is declared, the content
//! type is the declared one, the body validates against the declared schema), and every example in
//! the document validates against the schema it illustrates.
//!
//! The end-to-end tests run with the check on (`Gateway::checking_contract`): each response is one
//! line in `.local/contract.jsonl`, and `cargo xtask test` fails when any line records a violation,
//! the way it compares observed AWS calls with the declared permissions. Mobile and web clients are
//! generated from the document, so a response it does not describe is a client bug waiting.

use jsonschema::Validator;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Why the document could not be loaded or a schema of it compiled.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// openapi.yaml is not YAML.
    #[error("the OpenAPI document is not valid YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
    /// A schema in the document is not a valid JSON Schema.
    #[error("the schema at {pointer} does not compile: {reason}")]
    Schema {
        /// Where the schema is, as a JSON pointer into the document.
        pointer: String,
        /// What the compiler said.
        reason: String,
    },
}

/// The OpenAPI document with its schemas compiled on first use.
pub struct Contract {
    document: Value,
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

/// One response as the gateway gave it, for the check.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// API Gateway's route key, e.g. `GET /v1/me`.
    pub route_key: &'a str,
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    /// The body's bytes.
    pub body: &'a [u8],
}

/// Escapes one JSON-pointer segment (RFC 6901).
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

impl Contract {
    /// The project's document (`edge::OPENAPI_YAML`).
    pub fn load() -> Result<Self, ContractError> {
        Self::from_yaml(edge::OPENAPI_YAML)
    }

    /// A document from its YAML text.
    pub fn from_yaml(yaml: &str) -> Result<Self, ContractError> {
        Ok(Self {
            document: serde_norway::from_str(yaml)?,
            validators: Mutex::new(HashMap::new()),
        })
    }

    /// The document as JSON.
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// Follows a `$ref` inside the document (`#/components/...`), once; other values are themselves.
    fn resolve<'a>(&'a self, value: &'a Value) -> (&'a Value, Option<String>) {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => match reference.strip_prefix('#') {
                Some(pointer) => (
                    self.document.pointer(pointer).unwrap_or(&Value::Null),
                    Some(pointer.to_owned()),
                ),
                None => (&Value::Null, None),
            },
            None => (value, None),
        }
    }

    /// The validator for the schema at `pointer`, compiled with the document's components beside it
    /// so that its `#/components/...` references resolve.
    fn validator(&self, pointer: &str) -> Result<Arc<Validator>, ContractError> {
        if let Ok(cache) = self.validators.lock()
            && let Some(validator) = cache.get(pointer)
        {
            return Ok(Arc::clone(validator));
        }
        let schema = self.document.pointer(pointer).cloned().unwrap_or(Value::Null);
        let root = match schema {
            Value::Object(mut fields) => {
                fields.insert(
                    "components".to_owned(),
                    self.document.get("components").cloned().unwrap_or(json!({})),
                );
                Value::Object(fields)
            }
            other => other,
        };
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&root)
            .map(Arc::new)
            .map_err(|error| ContractError::Schema {
                pointer: pointer.to_owned(),
                reason: error.to_string(),
            })?;
        if let Ok(mut cache) = self.validators.lock() {
            cache.insert(pointer.to_owned(), Arc::clone(&validator));
        }
        Ok(validator)
    }

    /// The errors of `instance` against the schema at `pointer` (empty when it validates).
    fn errors_against(&self, pointer: &str, instance: &Value) -> Vec<String> {
        match self.validator(pointer) {
            Ok(validator) => validator
                .iter_errors(instance)
                .take(5)
                .map(|error| format!("{}: {}", error.instance_path(), what_failed(&error)))
                .collect(),
            Err(error) => vec![error.to_string()],
        }
    }

    /// The route keys the document describes (`METHOD /path`), sorted.
    pub fn route_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        if let Some(paths) = self.document.get("paths").and_then(Value::as_object) {
            for (path, item) in paths {
                for method in ["get", "put", "post", "delete", "patch"] {
                    if item.get(method).is_some() {
                        keys.push(format!("{} {path}", method.to_uppercase()));
                    }
                }
            }
        }
        keys.sort();
        keys
    }

    /// The JSON pointer of a route's operation.
    fn operation_pointer(route_key: &str) -> Option<String> {
        let (method, path) = route_key.split_once(' ')?;
        Some(format!("/paths/{}/{}", escape(path), method.to_lowercase()))
    }

    /// Checks one response against the document; `Err` says what differs.
    pub fn check(&self, answer: &Answer<'_>) -> Result<(), String> {
        let operation_pointer = Self::operation_pointer(answer.route_key)
            .ok_or_else(|| format!("{} is not a route key", answer.route_key))?;
        let Some(operation) = self.document.pointer(&operation_pointer) else {
            return Err(format!("the document has no operation {}", answer.route_key));
        };
        let status = answer.status.to_string();
        let range = format!("{}XX", answer.status / 100);
        let responses = operation.get("responses").and_then(Value::as_object);
        let Some((declared_as, response)) = [status.as_str(), range.as_str(), "default"]
            .iter()
            .find_map(|key| responses.and_then(|r| r.get(*key)).map(|r| (*key, r)))
        else {
            return Err(format!("status {status} is not declared"));
        };
        let (response, referenced) = self.resolve(response);
        let response_pointer =
            referenced.unwrap_or_else(|| format!("{operation_pointer}/responses/{}", escape(declared_as)));
        let content = response.get("content").and_then(Value::as_object);
        let media_type = answer.content_type.map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
        match (content, media_type) {
            (None, _) if answer.body.is_empty() => Ok(()),
            (None, _) => Err(format!(
                "status {status} declares no body, the response has {} bytes",
                answer.body.len()
            )),
            (Some(_), None) if answer.body.is_empty() => {
                Err(format!("status {status} declares a body, the response has none"))
            }
            (Some(_), None) => Err("the response has a body but no Content-Type".to_owned()),
            (Some(content), Some(media_type)) => {
                let Some(declared) = content.get(&media_type) else {
                    let declared: Vec<&String> = content.keys().collect();
                    return Err(format!(
                        "status {status} is {media_type}; the document declares {declared:?}"
                    ));
                };
                let json_lines = media_type.ends_with("ndjson");
                let json = media_type == "application/json" || media_type.ends_with("+json");
                if declared.get("schema").is_none() || !(json || json_lines) {
                    return Ok(());
                }
                let schema_pointer = format!("{response_pointer}/content/{}/schema", escape(&media_type));
                // Newline-delimited JSON: the schema describes each line.
                let documents: Vec<&[u8]> = if json_lines {
                    answer
                        .body
                        .split(|byte| *byte == b'\n')
                        .filter(|line| !line.is_empty())
                        .collect()
                } else {
                    vec![answer.body]
                };
                let mut errors = Vec::new();
                for (line, document) in documents.iter().enumerate() {
                    let body: Value = serde_json::from_slice(document).map_err(|error| {
                        format!("the {media_type} body (line {}) is not JSON: {error}", line + 1)
                    })?;
                    errors.extend(self.errors_against(&schema_pointer, &body));
                    if !errors.is_empty() {
                        break;
                    }
                }
                if errors.is_empty() {
                    Ok(())
                } else {
                    Err(format!("status {status} body: {}", errors.join("; ")))
                }
            }
        }
    }

    /// Every example in the document with the pointer of the schema it illustrates: media-type
    /// `example` and `examples.*.value`, and parameter examples. A schema's own `examples` are
    /// checked by [`Contract::check_examples`] too.
    fn examples(&self) -> Vec<(String, String, Value)> {
        let mut found = Vec::new();
        fn walk(value: &Value, pointer: &str, found: &mut Vec<(String, String, Value)>) {
            let Value::Object(fields) = value else {
                if let Value::Array(items) = value {
                    for (index, item) in items.iter().enumerate() {
                        walk(item, &format!("{pointer}/{index}"), found);
                    }
                }
                return;
            };
            if fields.contains_key("schema") {
                let schema = format!("{pointer}/schema");
                if let Some(example) = fields.get("example") {
                    found.push((format!("{pointer}/example"), schema.clone(), example.clone()));
                }
                if let Some(Value::Object(examples)) = fields.get("examples") {
                    for (name, example) in examples {
                        if let Some(value) = example.get("value") {
                            found.push((
                                format!("{pointer}/examples/{}/value", escape(name)),
                                schema.clone(),
                                value.clone(),
                            ));
                        }
                    }
                }
            }
            for (key, child) in fields {
                if key == "example" || key == "examples" {
                    continue;
                }
                walk(child, &format!("{pointer}/{}", escape(key)), found);
            }
        }
        walk(&self.document, "", &mut found);
        found
    }

    /// Checks every example against its schema; each `Err` line names the example and what fails.
    pub fn check_examples(&self) -> (usize, Vec<String>) {
        let examples = self.examples();
        let mut failures = Vec::new();
        for (at, schema, example) in &examples {
            let errors = self.errors_against(schema, example);
            if !errors.is_empty() {
                failures.push(format!("{at}: {}", errors.join("; ")));
            }
        }
        (examples.len(), failures)
    }

    /// The operations (route keys) and statuses that have no example, in the form
    /// `GET /v1/me 200 (success)`: request bodies, success and error responses.
    pub fn missing_examples(&self) -> Vec<String> {
        let mut missing = Vec::new();
        let has_example = |media: &Map<String, Value>| {
            media.values().any(|content| {
                content.get("example").is_some()
                    || content
                        .get("examples")
                        .and_then(Value::as_object)
                        .is_some_and(|examples| !examples.is_empty())
            })
        };
        for route_key in self.route_keys() {
            let Some(pointer) = Self::operation_pointer(&route_key) else {
                continue;
            };
            let Some(operation) = self.document.pointer(&pointer) else {
                continue;
            };
            if let Some(body) = operation.get("requestBody") {
                let (body, _) = self.resolve(body);
                if let Some(content) = body.get("content").and_then(Value::as_object)
                    && !has_example(content)
                {
                    missing.push(format!("{route_key} request body"));
                }
            }
            for (status, response) in operation
                .get("responses")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let (response, _) = self.resolve(response);
                if let Some(content) = response.get("content").and_then(Value::as_object)
                    && !has_example(content)
                {
                    missing.push(format!("{route_key} {status}"));
                }
            }
        }
        missing
    }
}

/// Where the gateway writes what it checked: one JSON line per response, `{"route", "status", "ok",
/// "violation"}` (never a body: bodies hold the tests' personal values).
#[derive(Clone)]
pub struct ContractLog {
    contract: Arc<Contract>,
    file: Arc<Mutex<std::fs::File>>,
    examples: Option<Arc<Mutex<ExampleCapture>>>,
}

/// The first request and response bodies seen per (route, status), for writing the document's
/// examples from real answers (`OFFICERTRAK_CONTRACT_EXAMPLES`; a developer's tool, never on in CI:
/// the file holds the tests' made-up personal values).
struct ExampleCapture {
    file: std::fs::File,
    seen: std::collections::HashSet<(String, u16)>,
}

impl ContractLog {
    /// Appends to `path` (created if missing).
    pub fn open(path: &Path) -> Result<Self, std::io::Error> {
        let contract = Contract::load().map_err(std::io::Error::other)?;
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            contract: Arc::new(contract),
            file: Arc::new(Mutex::new(file)),
            examples: None,
        })
    }

    /// Also writes the first request and response bodies of each (route, status) that matched the
    /// document to `path`, one JSON line each.
    pub fn capturing_examples(mut self, path: &Path) -> Result<Self, std::io::Error> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        self.examples = Some(Arc::new(Mutex::new(ExampleCapture {
            file,
            seen: std::collections::HashSet::new(),
        })));
        Ok(self)
    }

    /// Records one exchange for the example capture, if it is on and this (route, status) is new.
    pub fn capture(&self, answer: &Answer<'_>, request_body: &[u8]) {
        let Some(examples) = &self.examples else { return };
        if self.contract.check(answer).is_err() {
            return;
        }
        let Ok(mut capture) = examples.lock() else { return };
        if !capture.seen.insert((answer.route_key.to_owned(), answer.status)) {
            return;
        }
        let parse = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).unwrap_or(Value::Null);
        let line = json!({
            "route": answer.route_key,
            "status": answer.status,
            "content_type": answer.content_type,
            "request": parse(request_body),
            "response": parse(answer.body),
        });
        let _ = writeln!(capture.file, "{line}");
    }

    /// Checks one response and writes its line.
    pub fn record(&self, answer: &Answer<'_>) {
        let result = self.contract.check(answer);
        if let Err(violation) = &result {
            tracing::error!(route = answer.route_key, status = answer.status, %violation, "response differs from the OpenAPI document");
        }
        let line = json!({
            "route": answer.route_key,
            "status": answer.status,
            "ok": result.is_ok(),
            "violation": result.err(),
        });
        if let Ok(mut file) = self.file.lock() {
            let _ = writeln!(file, "{line}");
        }
    }
}

/// What a run's contract log says: responses checked, operations and (route, status) pairs seen,
/// and each distinct violation with how often it happened.
#[derive(Debug, Default)]
pub struct ContractSummary {
    /// Responses checked.
    pub responses: usize,
    /// Distinct route keys answered.
    pub operations: usize,
    /// Distinct (route, status) pairs answered.
    pub statuses: usize,
    /// `route status: violation` → count.
    pub violations: std::collections::BTreeMap<String, usize>,
}

/// Reads a contract log (see [`ContractLog`]).
pub fn summarize(log: &str) -> ContractSummary {
    let mut summary = ContractSummary::default();
    let mut routes = std::collections::BTreeSet::new();
    let mut pairs = std::collections::BTreeSet::new();
    for line in log.lines() {
        let Ok(entry) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let route = entry["route"].as_str().unwrap_or_default().to_owned();
        let status = entry["status"].as_u64().unwrap_or_default();
        summary.responses += 1;
        routes.insert(route.clone());
        pairs.insert((route.clone(), status));
        if let Some(violation) = entry["violation"].as_str() {
            *summary
                .violations
                .entry(format!("{route} {status}: {violation}"))
                .or_default() += 1;
        }
    }
    summary.operations = routes.len();
    summary.statuses = pairs.len();
    summary
}

/// The contract log of a test run, under the repository's `.local/`.
pub fn default_log_path() -> PathBuf {
    crate::repo_root().join(".local/contract.jsonl")
}

/// What a schema error says, without the value that broke it: the keyword, the schema location, and
/// for unknown or missing properties their names. The contract log must never carry a response's
/// content, which may be personal data.
fn what_failed(error: &jsonschema::ValidationError<'_>) -> String {
    use jsonschema::error::ValidationErrorKind;
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            format!("unexpected properties {}", unexpected.join(", "))
        }
        ValidationErrorKind::Required { property } => {
            format!("missing property {}", property.as_str().unwrap_or_default())
        }
        other => format!("fails {} at {}", other.keyword(), error.schema_path()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCUMENT: &str = r##"
openapi: 3.1.0
paths:
  /v1/things/{id}:
    get:
      responses:
        "200":
          description: A thing.
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Thing"}
              example: {name: "a thing", size: 3}
        "404": {$ref: "#/components/responses/NotFound"}
components:
  schemas:
    Thing:
      type: object
      required: [name]
      additionalProperties: false
      properties:
        name: {type: string}
        size: {type: integer, minimum: 0}
    Problem:
      type: object
      required: [type]
      properties:
        type: {type: string}
  responses:
    NotFound:
      description: None.
      content:
        application/problem+json:
          schema: {$ref: "#/components/schemas/Problem"}
          examples:
            missing: {value: {title: "no type"}}
"##;

    fn answer<'a>(status: u16, content_type: &'a str, body: &'a str) -> Answer<'a> {
        Answer {
            route_key: "GET /v1/things/{id}",
            status,
            content_type: Some(content_type),
            body: body.as_bytes(),
        }
    }

    #[test]
    fn a_response_is_checked_for_status_content_type_and_schema() {
        let contract = Contract::from_yaml(DOCUMENT).expect("the document");
        assert_eq!(
            contract.check(&answer(200, "application/json", r#"{"name":"x"}"#)),
            Ok(())
        );
        let wrong_field = contract.check(&answer(200, "application/json", r#"{"name":"x","colour":1}"#));
        assert!(wrong_field.is_err_and(|v| v.contains("colour")));
        let negative = contract.check(&answer(200, "application/json", r#"{"name":"x","size":-1}"#));
        assert!(negative.is_err_and(|v| v.contains("/size")));
        let undeclared = contract.check(&answer(500, "application/problem+json", r#"{"type":"x"}"#));
        assert!(undeclared.is_err_and(|v| v.contains("500 is not declared")));
        let media = contract.check(&answer(404, "application/json", r#"{"type":"x"}"#));
        assert!(media.is_err_and(|v| v.contains("application/problem+json")));
        assert_eq!(
            contract.check(&answer(
                404,
                "application/problem+json; charset=utf-8",
                r#"{"type":"x"}"#
            )),
            Ok(())
        );
        let unknown = contract.check(&Answer {
            route_key: "GET /v1/other",
            ..answer(200, "application/json", "{}")
        });
        assert!(unknown.is_err());
    }

    #[test]
    fn examples_are_checked_against_their_schemas_and_missing_ones_listed() {
        let contract = Contract::from_yaml(DOCUMENT).expect("the document");
        let (count, failures) = contract.check_examples();
        assert_eq!(count, 2);
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].contains("NotFound"), "{failures:?}");
        assert!(
            contract.missing_examples().is_empty(),
            "{:?}",
            contract.missing_examples()
        );
    }

    /// The policy says the applications use no cookies: the document declares none (no cookie
    /// parameter, no cookie security scheme, no `Set-Cookie` response header) and says so.
    #[test]
    fn the_project_document_declares_no_cookie_anywhere() {
        let document: serde_json::Value =
            serde_norway::from_str(edge::OPENAPI_YAML).expect("the document parses");
        let mut found = Vec::new();
        let mut stack = vec![("".to_owned(), &document)];
        while let Some((at, value)) = stack.pop() {
            match value {
                serde_json::Value::Object(map) => {
                    if map.get("in").and_then(|v| v.as_str()) == Some("cookie") {
                        found.push(at.clone());
                    }
                    for (key, child) in map {
                        if key.eq_ignore_ascii_case("set-cookie") {
                            found.push(format!("{at}/{key}"));
                        }
                        stack.push((format!("{at}/{key}"), child));
                    }
                }
                serde_json::Value::Array(items) => {
                    for (index, child) in items.iter().enumerate() {
                        stack.push((format!("{at}/{index}"), child));
                    }
                }
                _ => {}
            }
        }
        assert!(found.is_empty(), "cookies declared at {found:?}");
        let description = document["info"]["description"].as_str().unwrap_or_default();
        assert!(
            description.contains("no cookies"),
            "the document says it: {description}"
        );
    }

    #[test]
    fn the_project_document_has_an_example_everywhere_and_each_matches_its_schema() {
        let contract = Contract::load().expect("openapi.yaml");
        let (count, failures) = contract.check_examples();
        assert!(
            failures.is_empty(),
            "{count} examples, failing:\n{}",
            failures.join("\n")
        );
        // A client developer needs an example of every request body and every response.
        let missing = contract.missing_examples();
        assert!(
            missing.is_empty(),
            "{} places without an example:\n{}",
            missing.len(),
            missing.join("\n")
        );
        println!("{count} examples, each valid against its schema");
    }

    #[test]
    fn every_creating_post_honours_an_idempotency_key_and_documents_it() {
        let contract = Contract::load().expect("openapi.yaml");
        let keyed: std::collections::BTreeSet<&str> = edge::idempotency::KEYED_ROUTES
            .iter()
            .chain(edge::idempotency::DOMAIN_KEYED_ROUTES)
            .copied()
            .collect();
        let mut creating = std::collections::BTreeSet::new();
        for route_key in contract.route_keys() {
            let pointer = Contract::operation_pointer(&route_key).expect("route key");
            let operation = contract.document().pointer(&pointer).expect("operation");
            let responses = operation["responses"].as_object().expect("responses");
            if !route_key.starts_with("POST ") || !responses.contains_key("201") {
                continue;
            }
            creating.insert(route_key.clone());
            let declares_key = operation["parameters"]
                .as_array()
                .is_some_and(|params| params.iter().any(|p| p["name"] == "Idempotency-Key"));
            assert!(
                declares_key,
                "{route_key} creates but does not declare Idempotency-Key"
            );
            // The router answers 409 while a first attempt runs; the domain-keyed routes answer
            // a concurrent retry with the first request instead.
            let statuses: &[&str] = if edge::idempotency::KEYED_ROUTES.contains(&route_key.as_str()) {
                &["400", "409"]
            } else {
                &["400"]
            };
            for status in statuses {
                assert!(
                    responses.contains_key(*status),
                    "{route_key} honours Idempotency-Key but does not declare {status}"
                );
            }
        }
        let creating: std::collections::BTreeSet<&str> = creating.iter().map(String::as_str).collect();
        assert_eq!(
            keyed, creating,
            "the routes that honour Idempotency-Key vs the POSTs the document says create (201)"
        );
    }

    #[test]
    fn a_schema_error_names_the_place_and_the_rule_never_the_value() {
        let schema = serde_json::json!({
            "type": "object", "additionalProperties": false, "required": ["name"],
            "properties": {"email": {"type": "string", "maxLength": 5}, "name": {"type": "string"}}
        });
        let validator = jsonschema::validator_for(&schema).expect("schema");
        let instance = serde_json::json!({"email": "ada.secret@example.com", "phone": "+15551234567"});
        let said: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| what_failed(&e))
            .collect();
        assert_eq!(said.len(), 3, "{said:?}");
        for text in &said {
            assert!(!text.contains("secret") && !text.contains("555"), "{text}");
        }
        assert!(
            said.iter().any(|t| t == "unexpected properties phone"),
            "{said:?}"
        );
        assert!(said.iter().any(|t| t.starts_with("fails maxLength")), "{said:?}");
    }
}
