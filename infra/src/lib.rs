//! The local stack: everything that lets a developer run and test the product without AWS.
//!
//! - [`emulator`]: installs and runs moto (DynamoDB, KMS, SES, Cognito on one port).
//! - [`template`]: reads template.yaml, the single source of truth for resources and routes.
//! - [`bootstrap`]: creates the template's resources in the emulator.
//! - [`gateway`]: API Gateway HTTP API in front of the functions, with the JWT authorizer.
//! - [`contract`]: responses and examples checked against the OpenAPI document.
//! - [`docs`]: the `/docs` reference page (Swagger UI from npm) and its check in headless Chromium.
//! - [`identity`]: local users and tokens.
//! - [`fuzz`]: schemathesis against the local API, one real user per role.
//! - [`layers`]: the layering rule of `shared/`, checked (crate order, no import loop).
//! - [`permissions`]: least privilege, template vs each function's declared and observed AWS calls.
//! - [`worker`]: Lambda's SQS event source for the privacy worker, locally.
//! - [`runtime_api`]: the Lambda Runtime API, locally, to run and measure the release binaries.
//! - [`measure`]: each function's cold start, time per invocation and peak memory under it.
//!
//! The `xtask` binary (`cargo xtask dev|test|token|lint`) ties them together.

pub mod bootstrap;
pub mod contract;
pub mod docs;
pub mod emulator;
pub mod fuzz;
pub mod gateway;
pub mod identity;
pub mod layers;
pub mod measure;
pub mod permissions;
pub mod runtime_api;
pub mod template;
pub mod worker;

use std::path::PathBuf;

/// The repository root (the workspace this crate lives in).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The template at the repository root, parsed.
pub fn project_template() -> Result<template::Template, template::TemplateError> {
    template::Template::load(&repo_root().join("template.yaml"))
}

#[cfg(test)]
mod documentation {
    /// The README's retention table names every class the code knows.
    #[test]
    fn readme_lists_every_retention_class() {
        let readme = std::fs::read_to_string(crate::repo_root().join("README.md")).expect("README.md");
        for class in platform::retention::RetentionClass::ALL {
            let name = serde_json::to_value(class).expect("class name");
            let name = name.as_str().expect("string");
            assert!(
                readme.contains(&format!("| `{name}` |")),
                "README.md's retention table lacks {name}"
            );
        }
    }
}

#[cfg(test)]
mod deployment {
    //! What ops rely on in template.yaml and samconfig.toml, beyond what cfn-lint and checkov check.

    use serde_norway::Value;

    fn template() -> Value {
        let text = std::fs::read_to_string(crate::repo_root().join("template.yaml")).expect("template.yaml");
        serde_norway::from_str(&text).expect("yaml")
    }

    fn resources_of<'a>(template: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
        template["Resources"]
            .as_mapping()
            .expect("resources")
            .iter()
            .filter(|(_, r)| r["Type"].as_str() == Some(kind))
            .filter_map(|(id, r)| Some((id.as_str()?, r)))
            .collect()
    }

    /// Tells `!Ref X` (or `!GetAtt X.Arn`) apart from anything else, by its target.
    fn target(value: &Value) -> Option<String> {
        match value {
            Value::Tagged(tagged) => tagged
                .value
                .as_str()
                .map(|t| t.split('.').next().unwrap_or(t).to_owned()),
            _ => None,
        }
    }

    #[test]
    fn staging_and_production_are_separate_stacks_with_known_parameters() {
        let text =
            std::fs::read_to_string(crate::repo_root().join("samconfig.toml")).expect("samconfig.toml");
        let config: toml::Table = text.parse().expect("toml");
        let template = template();
        let parameters = template["Parameters"].as_mapping().expect("parameters");
        let mut stacks = Vec::new();
        for environment in ["staging", "production"] {
            let stack = config[environment]["global"]["parameters"]["stack_name"]
                .as_str()
                .expect("stack name")
                .to_owned();
            stacks.push(stack);
            let overrides = config[environment]["deploy"]["parameters"]["parameter_overrides"]
                .as_array()
                .expect("parameter overrides");
            for entry in overrides {
                let (name, value) = entry
                    .as_str()
                    .and_then(|e| e.split_once('='))
                    .expect("Name=value");
                assert!(
                    parameters.contains_key(name),
                    "{environment}: {name} is no template parameter"
                );
                if name == "AllowAdminPasswordAuth" {
                    assert_eq!(value, "false", "{environment} allows admin password sign-in");
                }
            }
        }
        assert_ne!(stacks[0], stacks[1]);
    }

    /// The API's own domain, when ops set one, is served over TLS 1.2 or newer only, and is mapped to
    /// the API's stage.
    #[test]
    fn the_api_domain_allows_tls_1_2_or_newer_only() {
        let template = template();
        let domains = resources_of(&template, "AWS::ApiGatewayV2::DomainName");
        assert_eq!(domains.len(), 1, "one API domain");
        for (_, domain) in &domains {
            assert_eq!(domain["Condition"].as_str(), Some("HasApiDomain"));
            for configuration in domain["Properties"]["DomainNameConfigurations"]
                .as_sequence()
                .expect("configurations")
            {
                assert_eq!(configuration["SecurityPolicy"].as_str(), Some("TLS_1_2"));
            }
        }
        let mappings = resources_of(&template, "AWS::ApiGatewayV2::ApiMapping");
        assert!(
            mappings
                .iter()
                .any(|(_, m)| target(&m["Properties"]["ApiId"]).as_deref() == Some("Api")),
            "the domain serves the API"
        );
    }

    /// Each function logs to its own group with a retention, runs with its own role, and has an
    /// errors and a throttles alarm.
    #[test]
    fn every_function_has_a_log_group_a_role_and_alarms() {
        let template = template();
        let alarms = resources_of(&template, "AWS::CloudWatch::Alarm");
        let groups = resources_of(&template, "AWS::Logs::LogGroup");
        for (function, resource) in resources_of(&template, "AWS::Serverless::Function") {
            let properties = &resource["Properties"];
            let group = target(&properties["LoggingConfig"]["LogGroup"]).expect("a log group");
            let (_, group) = groups
                .iter()
                .find(|(id, _)| *id == group)
                .expect("the group exists");
            assert!(
                target(&group["Properties"]["RetentionInDays"]).is_some(),
                "{function}"
            );
            assert!(
                target(&properties["Role"]).is_some_and(|r| r.ends_with("Role")),
                "{function}"
            );
            for metric in ["Errors", "Throttles"] {
                let watched = alarms.iter().any(|(_, alarm)| {
                    let p = &alarm["Properties"];
                    p["MetricName"].as_str() == Some(metric)
                        && target(&p["Dimensions"][0]["Value"]).as_deref() == Some(function)
                });
                assert!(watched, "{function} has no {metric} alarm");
            }
            // Lambda's JSON log format and level: ops set the level per stack (`LogLevel`).
            let logging = &properties["LoggingConfig"];
            assert_eq!(logging["LogFormat"].as_str(), Some("JSON"), "{function}");
            assert_eq!(
                target(&logging["ApplicationLogLevel"]).as_deref(),
                Some("LogLevel"),
                "{function}"
            );
        }
    }

    /// What ops watch in production: the API's p99 latency, DynamoDB's throttles and transaction
    /// conflicts on the data table, each alarmed, and one dashboard per stack that shows them.
    #[test]
    fn latency_throttles_and_conflicts_are_alarmed_and_on_a_dashboard() {
        let template = template();
        let alarms = resources_of(&template, "AWS::CloudWatch::Alarm");
        let alarm_on = |namespace: &str, metric: &str| {
            alarms.iter().find(|(_, alarm)| {
                let p = &alarm["Properties"];
                p["Namespace"].as_str() == Some(namespace) && p["MetricName"].as_str() == Some(metric)
            })
        };
        let (_, latency) = alarm_on("AWS/ApiGateway", "Latency").expect("an API latency alarm");
        assert_eq!(latency["Properties"]["ExtendedStatistic"].as_str(), Some("p99"));
        for metric in ["WriteThrottleEvents", "ReadThrottleEvents", "TransactionConflict"] {
            let (_, alarm) = alarm_on("AWS/DynamoDB", metric).unwrap_or_else(|| panic!("no {metric} alarm"));
            assert_eq!(
                target(&alarm["Properties"]["Dimensions"][0]["Value"]).as_deref(),
                Some("DataTable"),
                "{metric}"
            );
        }
        let dashboards = resources_of(&template, "AWS::CloudWatch::Dashboard");
        assert_eq!(dashboards.len(), 1, "one dashboard per stack");
        let body = format!("{:?}", dashboards[0].1["Properties"]["DashboardBody"]);
        for shown in [
            "Latency",
            "WriteThrottleEvents",
            "TransactionConflict",
            "5xx",
            "Duration",
        ] {
            assert!(body.contains(shown), "the dashboard shows {shown}");
        }
    }

    #[test]
    fn the_access_log_keeps_no_path_query_address_or_token() {
        let template = template();
        let (_, api) = resources_of(&template, "AWS::Serverless::HttpApi")[0];
        let format = api["Properties"]["AccessLogSettings"]["Format"]
            .as_str()
            .expect("a format");
        for forbidden in [
            "sourceIp",
            "$context.path",
            "querystring",
            "authorizer",
            "userAgent",
            "identity",
        ] {
            assert!(
                !format.contains(forbidden),
                "the access log format has {forbidden}"
            );
        }
        assert!(format.contains("$context.routeKey") && format.contains("$context.requestId"));
    }

    #[test]
    fn kms_aliases_are_named_after_the_stack() {
        let template = template();
        for (id, alias) in resources_of(&template, "AWS::KMS::Alias") {
            let name = match &alias["Properties"]["AliasName"] {
                Value::Tagged(tagged) => tagged.value.as_str().unwrap_or_default().to_owned(),
                other => other.as_str().unwrap_or_default().to_owned(),
            };
            assert!(name.starts_with("alias/${AWS::StackName}-"), "{id}: {name}");
        }
    }
}
