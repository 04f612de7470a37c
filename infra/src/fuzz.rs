//! Fuzzing the contract: schemathesis (PyPI, pinned in `infra/python/fuzz-requirements.txt`)
//! against a local gateway, once per role, as `cargo xtask test` runs it after the end-to-end tests.
//!
//! Schemathesis generates requests from the OpenAPI document (its examples, the boundaries of each
//! schema, random data) and checks every answer: no 5xx, a declared status, the declared content
//! type, a body that matches the declared schema, and no schema-invalid request accepted. A fixed
//! seed and a bounded number of examples keep a run repeatable and a few minutes long.
//!
//! Random tokens reach nothing but the authorizer, so [`prepare`] makes one real user per role (a
//! registered customer, an approved provider of an agency, that agency's admin and dispatcher, a
//! privacy officer, ops, support) and [`config_toml`] hands schemathesis the ids they can see, so
//! that generated requests reach the domain code and not only its 404s.

use crate::bootstrap::LocalStack;
use crate::contract::Contract;
use serde_json::{Value, json};
use thiserror::Error;

/// Something that kept the fuzzing from starting (the run's own findings are schemathesis' output).
#[derive(Debug, Error)]
pub enum FuzzError {
    /// A local user could not be made or signed in.
    #[error("signing in the {role}: {detail}")]
    Identity { role: &'static str, detail: String },
    /// A set-up call to the local API did not answer as it does in the end-to-end tests; `problem`
    /// is the answer's problem type and detail only (a success body may hold personal data).
    #[error("setting up the fuzzing: {call} answered {status}: {problem}")]
    Setup {
        call: String,
        status: u16,
        problem: String,
    },
    /// The OpenAPI document did not load.
    #[error("the OpenAPI document: {0}")]
    Document(String),
    /// The local API did not answer at all.
    #[error("the local API: {0}")]
    Http(#[from] reqwest::Error),
    /// The document lacks an example the set-up takes its bodies from.
    #[error("the OpenAPI document has no request example for {0}")]
    NoExample(String),
    /// The template lacks a resource the set-up needs.
    #[error("template.yaml has no {0}")]
    Template(&'static str),
}

/// One caller schemathesis acts as, and how much of the document it tries.
#[derive(Debug, Clone, Copy)]
pub struct Role {
    /// The name in the run's output and the user's e-mail.
    pub name: &'static str,
    /// Its Cognito groups (none: anonymous, no token at all).
    pub groups: &'static [&'static str],
    /// The schemathesis phases it runs.
    pub phases: &'static str,
    /// Only the operations whose path matches (a regex); `None`: all 64.
    pub paths: Option<&'static str>,
}

/// The roles, each with the operations it may call. The customer and anonymous try everything with
/// every phase: the coverage phase's boundary and malformed bodies meet the same parsing whoever
/// sends them (a body is checked before the caller's role). Each other role tries its own routes
/// with examples and random valid and invalid data, where its rights differ from a customer's.
/// The roles that create something the document links onward (a privacy request, an agency, an
/// inquiry: its `links`) also run the stateful phase, create → read → act on what they made.
pub const ROLES: &[Role] = &[
    Role {
        name: "anonymous",
        groups: &[],
        phases: "examples,coverage,fuzzing",
        paths: None,
    },
    Role {
        name: "customer",
        groups: &["customer"],
        phases: "examples,coverage,fuzzing,stateful",
        paths: None,
    },
    Role {
        name: "provider",
        groups: &["provider"],
        phases: "examples,fuzzing",
        paths: Some("^/v1/(providers|assignments|me)"),
    },
    Role {
        name: "agency_admin",
        groups: &["agency_admin"],
        phases: "examples,fuzzing",
        paths: Some("^/v1/(agencies|service-requests|assignments)"),
    },
    Role {
        name: "dispatcher",
        groups: &["dispatcher"],
        phases: "examples,fuzzing",
        paths: Some("^/v1/(agencies|service-requests|assignments)"),
    },
    Role {
        name: "privacy_officer",
        groups: &["privacy_officer"],
        phases: "examples,fuzzing,stateful",
        paths: Some("^/v1/(admin|privacy-requests)"),
    },
    Role {
        name: "ops",
        groups: &["ops"],
        phases: "examples,fuzzing,stateful",
        paths: Some("^/v1/(admin|agencies)"),
    },
    Role {
        name: "support",
        groups: &["support"],
        phases: "examples,fuzzing,stateful",
        paths: Some("^/v1/support"),
    },
];

/// The users [`prepare`] made and the ids they can see.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// Each role's bearer token (`None` for anonymous).
    pub tokens: Vec<(Role, Option<String>)>,
    /// The agency the admin, dispatcher and provider belong to.
    pub agency_id: String,
    /// The provider's user id (its membership of the agency is approved).
    pub provider_id: String,
    /// The customer's user id.
    pub customer_id: String,
    /// The personal values the set-up registered (names, phones, e-mails, dates of birth, street
    /// lines, EIN, TIN, licence number): none may appear in a log line, a header or an error body.
    pub personal_values: Vec<String>,
}

/// The personal fields of the registration bodies, by JSON pointer.
const PERSONAL_FIELDS: &[&str] = &[
    "/name",
    "/business_name",
    "/legal_name",
    "/phone",
    "/email",
    "/date_of_birth",
    "/ein",
    "/home_address/line1",
    "/mailing_address/line1",
    "/licence/number",
    "/w9/tin",
    "/w9/address/line1",
];

/// The values at [`PERSONAL_FIELDS`], and the digits alone of the EIN and TIN (the form the code
/// keeps them in).
fn personal_values_of(body: &Value) -> Vec<String> {
    let mut values: Vec<String> = PERSONAL_FIELDS
        .iter()
        .filter_map(|pointer| body.pointer(pointer).and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    for pointer in ["/ein", "/w9/tin"] {
        if let Some(id) = body.pointer(pointer).and_then(Value::as_str) {
            values.push(id.chars().filter(char::is_ascii_digit).collect());
        }
    }
    values
}

/// Where a personal value of `values` shows in `har` (schemathesis' HAR report): in a response
/// header, or in the body of an error (status 400 and up; a 200 of `GET /v1/me` rightly carries
/// the caller's own data); and every response that sets a cookie (the policy says the applications
/// use none). Names the request and the place, never the value.
pub fn har_leaks(har: &Value, values: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in har["log"]["entries"].as_array().into_iter().flatten() {
        let request = format!(
            "{} {}",
            entry["request"]["method"].as_str().unwrap_or_default(),
            entry["request"]["url"].as_str().unwrap_or_default()
        );
        let response = &entry["response"];
        for header in response["headers"].as_array().into_iter().flatten() {
            let name = header["name"].as_str().unwrap_or_default();
            if name.eq_ignore_ascii_case("set-cookie") {
                found.push(format!("{request}: sets a cookie"));
            }
            let text = header["value"].as_str().unwrap_or_default();
            if values.iter().any(|value| text.contains(value.as_str())) {
                found.push(format!(
                    "{request}: header {}",
                    header["name"].as_str().unwrap_or_default()
                ));
            }
        }
        let body = response["content"]["text"].as_str().unwrap_or_default();
        if response["status"].as_u64().unwrap_or(0) >= 400
            && values.iter().any(|value| body.contains(value.as_str()))
        {
            found.push(format!("{request}: error body ({})", response["status"]));
        }
    }
    found
}

/// How many success answers in `har` carry a personal value of `values` (the caller's own data, as
/// `GET /v1/me` returns it): the control that shows the values were looked for where they can be.
pub fn har_success_mentions(har: &Value, values: &[String]) -> usize {
    har["log"]["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["response"]["status"].as_u64().is_some_and(|s| s < 300))
        .filter(|entry| {
            let body = entry["response"]["content"]["text"].as_str().unwrap_or_default();
            values.iter().any(|value| body.contains(value.as_str()))
        })
        .count()
}

/// The log lines (by number) that hold a personal value of `values`; never the value itself.
pub fn log_leaks(log: &str, values: &[String]) -> Vec<usize> {
    log.lines()
        .enumerate()
        .filter(|(_, line)| values.iter().any(|value| line.contains(value.as_str())))
        .map(|(number, _)| number + 1)
        .collect()
}

/// Makes the users of [`ROLES`] through the local API at `url` as a client would: each signs in;
/// the customer registers; ops creates an agency run by the admin and dispatcher; the provider
/// registers, applying to it, and the admin approves. Bodies are the document's own examples.
pub async fn prepare(stack: &LocalStack, url: &str) -> Result<Fixture, FuzzError> {
    let pool = stack
        .physical_id("UserPool")
        .ok_or(FuzzError::Template("UserPool"))?;
    let client = stack
        .physical_id("UserPoolClient")
        .ok_or(FuzzError::Template("UserPoolClient"))?;
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&stack.sdk_config().await);
    let contract = Contract::load().map_err(|error| FuzzError::Document(error.to_string()))?;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut tokens = Vec::new();
    for role in ROLES {
        if role.groups.is_empty() {
            tokens.push((*role, None));
            continue;
        }
        let email = format!("fuzz-{}-{}@example.com", role.name.replace('_', "-"), &run[..8]);
        let signed_in = crate::identity::sign_in(&cognito, &pool, &client, &email, role.groups)
            .await
            .map_err(|error| FuzzError::Identity {
                role: role.name,
                detail: error.to_string(),
            })?;
        tokens.push((*role, Some(signed_in.id_token)));
    }
    let token = |name: &str| {
        tokens
            .iter()
            .find(|(role, _)| role.name == name)
            .and_then(|(_, token)| token.clone())
            .unwrap_or_default()
    };
    let api = Api {
        http: reqwest::Client::new(),
        url: url.to_owned(),
    };
    let customer = token("customer");
    let mut body = example(&contract, "/v1/customers")?;
    body["email"] = json!(email_of(&customer));
    api.call("POST", "/v1/customers", &customer, &body, 201).await?;
    let mut personal_values = personal_values_of(&body);

    let mut settings = example(&contract, "/v1/agencies")?;
    settings["admin_user_ids"] = json!([sub_of(&token("agency_admin"))]);
    settings["dispatcher_user_ids"] = json!([sub_of(&token("dispatcher"))]);
    let agency = api
        .call("POST", "/v1/agencies", &token("ops"), &settings, 201)
        .await?;
    let agency_id = agency["agency_id"].as_str().unwrap_or_default().to_owned();

    let provider = token("provider");
    let mut body = example(&contract, "/v1/providers")?;
    body["email"] = json!(email_of(&provider));
    body["agency"]["agency_id"] = json!(agency_id);
    body["w9"]["certified_at"] = json!(jiff::Timestamp::now().to_string());
    // The document's example licence expires on a fixed date: a real one is valid for years ahead.
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date();
    body["licence"]["expires_on"] = json!(today.saturating_add(jiff::Span::new().years(5)).to_string());
    api.call("POST", "/v1/providers", &provider, &body, 201).await?;
    personal_values.extend(personal_values_of(&body));
    let provider_id = sub_of(&provider);
    api.call(
        "POST",
        &format!("/v1/agencies/{agency_id}/memberships/{provider_id}/decision"),
        &token("agency_admin"),
        &json!({"decision": "approve"}),
        200,
    )
    .await?;
    Ok(Fixture {
        customer_id: sub_of(&customer),
        tokens,
        agency_id,
        provider_id,
        personal_values,
    })
}

/// The schemathesis configuration for one role: the fixture's ids as path parameters, so that
/// `/v1/agencies/{id}` is the role's agency rather than a random string that is always 404.
pub fn config_toml(fixture: &Fixture) -> String {
    format!(
        "# Written by `cargo xtask test` for one run (see infra/src/fuzz.rs).\n\
         [[operations]]\n\
         include-path-regex = '^/v1/agencies/\\{{id\\}}'\n\
         parameters = {{ id = \"{agency}\", provider_id = \"{provider}\" }}\n\
         \n\
         [[operations]]\n\
         include-path-regex = '^/v1/providers/me/memberships/'\n\
         parameters = {{ agency_id = \"{agency}\" }}\n\
         \n\
         [[operations]]\n\
         include-path-regex = '^/v1/admin/minors/'\n\
         parameters = {{ user_id = \"{customer}\" }}\n",
        agency = fixture.agency_id,
        provider = fixture.provider_id,
        customer = fixture.customer_id,
    )
}

/// What one schemathesis run printed last: its summary line (cases, failures, time).
pub fn summary_line(output: &str) -> Option<String> {
    output
        .lines()
        .rev()
        .find(|line| line.contains(" in ") && line.trim_start().starts_with('='))
        .map(|line| {
            line.trim_matches(|c: char| c == '=' || c.is_whitespace())
                .to_owned()
        })
}

/// The number of generated test cases a run reports (`Test cases: N generated, …`).
pub fn cases_generated(output: &str) -> u64 {
    output
        .lines()
        .skip_while(|line| !line.starts_with("Test cases:"))
        .nth(1)
        .and_then(|line| line.split_whitespace().next())
        .and_then(|count| count.parse().ok())
        .unwrap_or(0)
}

/// The local API, for the set-up calls.
struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    /// Sends `body` as `token`; anything but `expected` stops the set-up with the answer.
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: &Value,
        expected: u16,
    ) -> Result<Value, FuzzError> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::POST);
        let response = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        if status != expected {
            let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            return Err(FuzzError::Setup {
                call: format!("{method} {path}"),
                status,
                problem: format!(
                    "{} {}",
                    answer["type"].as_str().unwrap_or("(no problem type)"),
                    answer["detail"].as_str().unwrap_or_default()
                ),
            });
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// The request example of `POST path` in the document.
fn example(contract: &Contract, path: &str) -> Result<Value, FuzzError> {
    contract
        .document()
        .pointer(&format!(
            "/paths/{}/post/requestBody/content/application~1json/example",
            path.replace('~', "~0").replace('/', "~1")
        ))
        .cloned()
        .ok_or_else(|| FuzzError::NoExample(format!("POST {path}")))
}

/// A claim of an ID token's payload (the set-up reads its own tokens; nothing is verified here).
fn claim(token: &str, name: &str) -> String {
    use base64::Engine;
    token
        .split('.')
        .nth(1)
        .and_then(|payload| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|claims| claims[name].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn sub_of(token: &str) -> String {
    claim(token, "sub")
}

fn email_of(token: &str) -> String {
    claim(token, "email")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_and_the_case_count_are_read_from_schemathesis_output() {
        let output = "Test cases:\n  4334 generated, 1 found 1 unique failure\n\nSeed: 1\n\n\
                      ======================= 1 failure, 5 warnings in 179.62s =======================\n";
        assert_eq!(cases_generated(output), 4334);
        assert_eq!(
            summary_line(output).as_deref(),
            Some("1 failure, 5 warnings in 179.62s")
        );
        assert_eq!(cases_generated("no summary"), 0);
    }

    #[test]
    fn every_path_parameter_of_the_document_that_names_a_fixture_is_given_one() {
        let fixture = Fixture {
            tokens: Vec::new(),
            agency_id: "agency-1".into(),
            provider_id: "provider-1".into(),
            customer_id: "customer-1".into(),
            personal_values: Vec::new(),
        };
        let config = config_toml(&fixture);
        let parsed: toml::Value = toml::from_str(&config).expect("valid TOML");
        let operations = parsed["operations"].as_array().expect("operations");
        assert_eq!(operations.len(), 3);
        assert_eq!(operations[0]["parameters"]["id"].as_str(), Some("agency-1"));
        assert_eq!(
            operations[0]["include-path-regex"].as_str(),
            Some("^/v1/agencies/\\{id\\}")
        );
    }

    #[test]
    fn a_personal_value_is_found_in_headers_error_bodies_and_log_lines_and_never_repeated() {
        let body = json!({"name": "Rosalind Ashdown-Meyer", "phone": "+13075550177", "kind": "business"});
        let values = personal_values_of(&body);
        assert_eq!(values, vec!["Rosalind Ashdown-Meyer", "+13075550177"]);
        let tax = personal_values_of(&json!({"ein": "91-7654321"}));
        assert_eq!(tax, vec!["91-7654321", "917654321"]);
        let entry = |status: u16, header: &str, text: &str| {
            json!({"request": {"method": "GET", "url": "http://x/v1/me"},
                   "response": {"status": status, "headers": [{"name": "x-echo", "value": header}],
                                "content": {"text": text}}})
        };
        let har = json!({"log": {"entries": [
            entry(200, "-", "Rosalind Ashdown-Meyer"),
            entry(422, "-", "{\"detail\": \"+13075550177 is taken\"}"),
            entry(200, "Rosalind Ashdown-Meyer", "{}"),
            json!({"request": {"method": "GET", "url": "http://x/docs"},
                   "response": {"status": 200, "headers": [{"name": "Set-Cookie", "value": "s=1"}],
                                "content": {"text": ""}}}),
        ]}});
        let found = har_leaks(&har, &values);
        assert_eq!(
            found,
            vec![
                "GET http://x/v1/me: error body (422)",
                "GET http://x/v1/me: header x-echo",
                "GET http://x/docs: sets a cookie"
            ]
        );
        assert!(found.iter().all(|place| !place.contains("Rosalind")));
        assert_eq!(log_leaks("ok\ncalled +13075550177\nok", &values), vec![2]);
    }
}
