//! The web edge: what every HTTP route shares, below the business rules.
//!
//! [`http`] is the route table mechanics (routing; [`admission`]: revocation, rate limits and usage
//! counters before every call, in one request; the access log after it); [`auth::Caller`] is who is calling, read from the authorizer's claims only; [`error`]
//! is the one mapping from failures to RFC 9457 problems; [`validation`] and [`cursor`] check what
//! clients send. It depends on `platform` only; `domain` builds on it.

pub mod access_log;
pub mod admission;
pub mod auth;
pub mod cursor;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod rate_limit;
pub mod revocation;
pub mod usage;
pub mod validation;

pub use error::ApiError;

/// The OpenAPI 3.1 document that describes every route; the local gateway serves it at `/openapi.json`
/// and a test keeps it equal to the routes in template.yaml and in the functions' routers.
pub const OPENAPI_YAML: &str = include_str!("../openapi.yaml");
