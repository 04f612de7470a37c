//! The jobs: work no request waits for, run on a schedule or from the table's stream.
//!
//! [`purge`] is the hourly retention run; [`ttl_audit`] counts and cascades TTL deletions. They call
//! the domain's functions; nothing below them calls up here.

pub mod purge;
pub mod ttl_audit;
