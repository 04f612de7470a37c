//! The local stack: everything that lets a developer run and test the product without AWS.
//!
//! - [`emulator`]: installs and runs moto (DynamoDB, KMS, SES, Cognito on one port).
//! - [`template`]: reads template.yaml, the single source of truth for resources and routes.
//! - [`bootstrap`]: creates the template's resources in the emulator.
//! - [`gateway`]: API Gateway HTTP API in front of the functions, with the JWT authorizer.
//! - [`identity`]: local users and tokens.
//! - [`layers`]: the layering rule of `shared/`, checked (crate order, no import loop).
//! - [`worker`]: Lambda's SQS event source for the privacy worker, locally.
//!
//! The `xtask` binary (`cargo xtask dev|test|token|lint`) ties them together.

pub mod bootstrap;
pub mod emulator;
pub mod gateway;
pub mod identity;
pub mod layers;
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
