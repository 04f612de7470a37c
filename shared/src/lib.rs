//! Everything the OfficerTRAK functions share.
//!
//! A handler in `functions/<area>` parses the request, asks [`auth::Caller`] who is calling, calls one
//! function here and maps the result. Storage lives in [`store`], errors in [`error`], the route table
//! mechanics in [`http`]. Nothing in this crate knows whether it runs on Lambda or in the local gateway.

pub mod access_log;
pub mod accounts;
pub mod agencies;
pub mod assignments;
pub mod audit;
pub mod auth;
pub mod availability;
pub mod clock;
pub mod config;
pub mod consent;
pub mod crypto;
pub mod cursor;
pub mod disclosures;
pub mod eligibility;
pub mod erasure;
pub mod error;
pub mod export;
pub mod http;
pub mod inventory;
pub mod keys;
pub mod lookup;
pub mod mail;
pub mod payments;
pub mod pricing;
pub mod privacy;
pub mod privacy_requests;
pub mod rate_limit;
pub mod retention;
pub mod roster;
#[cfg(any(test, feature = "samples"))]
pub mod samples;
pub mod scheduling;
pub mod schema;
pub mod service_requests;
pub mod state;
pub mod store;
pub mod tax;
pub mod telemetry;
pub mod ttl_audit;
pub mod usage;
pub mod validation;

pub use clock::Clock;
pub use config::Config;
pub use error::ApiError;
pub use state::AppState;

/// The OpenAPI 3.1 document that describes every route; the local gateway serves it at `/openapi.json`
/// and a test keeps it equal to the routes in template.yaml and in the functions' routers.
pub const OPENAPI_YAML: &str = include_str!("../openapi.yaml");
