//! End-to-end tests against the local stack (emulator + local gateway). One test binary, one module
//! per area. Run them with `cargo xtask test`, which starts an emulator of their own.

mod accounts;
mod auth;
mod authorization;
mod campaigns;
mod contention;
mod cost;
mod encryption;
mod erasure;
mod fixtures;
mod fuzz_findings;
mod idempotency;
mod key_setup;
mod key_usage;
mod lifecycle;
mod limits;
mod load;
mod memberships;
mod paging;
mod payments;
mod personal_data_in_logs;
mod policies;
mod privacy;
mod requests;
mod resources;
mod retention;
mod scheduling;
mod storage;
mod support;
mod telemetry;
