//! The data platform: everything the OfficerTRAK functions need to keep data, and nothing about the
//! web or the business.
//!
//! [`schema`] declares every item type (attributes, protection, [`retention`] class); [`crypto`] turns
//! it into the DB-ESDK configuration; [`store`] is typed, encrypted access to the table; [`lookup`]
//! computes keyed hashes for uniqueness locks. [`directory`] (the user pool) and [`mailer`] (SES) are
//! ports with an AWS adapter and an in-memory one; [`processor`] is the payment processor's port
//! (Stripe); [`queue`] hands jobs to the privacy worker (SQS). [`AppState`] bundles what a function builds once per
//! container; [`meter`] counts the AWS requests its clients make. The layers above: `edge` (HTTP), `domain` (business rules), `jobs` (scheduled work).

pub mod clock;
pub mod config;
pub mod crypto;
pub mod directory;
pub mod keys;
pub mod lookup;
pub mod mailer;
pub mod meter;
pub mod processor;
pub mod queue;
pub mod retention;
pub mod schema;
pub mod state;
pub mod store;
pub mod telemetry;

pub use clock::Clock;
pub use config::Config;
pub use state::AppState;
