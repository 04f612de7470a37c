//! The business: the rules of the OfficerTRAK Applications, one module per concern, each the only
//! owner of its record types.
//!
//! A handler in `functions/<area>` parses the request, asks `edge::auth::Caller` who is calling, calls
//! one function here and maps the result. Storage is `platform::store`; errors are `edge::ApiError`.
//! Nothing here knows whether it runs on Lambda or in the local gateway.

pub mod accounts;
pub mod address;
pub mod agencies;
pub mod audit;
pub mod billing;
pub mod campaigns;
pub mod consent;
pub mod mail;
pub mod payments;
pub mod policy;
pub mod privacy;
pub mod purposes;
#[cfg(any(test, feature = "samples"))]
pub mod samples;
pub mod scheduling;
pub mod service_requests;
pub mod support;
pub mod tax;
