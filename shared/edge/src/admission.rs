//! What the router checks and counts for every call before its handler: that the caller's sign-in
//! is not revoked ([`crate::revocation`]), the call against its route's rate limits
//! ([`crate::rate_limit`], refused past them), and the call in the day's anonymous usage counts
//! ([`crate::usage`]).
//!
//! Production is concurrent, so none of this is a transaction: DynamoDB cancels a transaction
//! touching an item another one holds, and a counter that many callers share (a route's usage, an
//! address behind a NAT) would make callers cancel each other. The revocation check is a consistent
//! read (reads never conflict), each counter a single `UpdateItem` (concurrent ones are applied in
//! turn), and the usage count is sent beside the checks, never failing the call. A revoked caller's
//! account counter is not touched: nothing new is filed under them.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::rate_limit;
use platform::AppState;

/// How a call was let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    /// The caller's sign-in is revoked (their erasure started): the router refuses writes and files
    /// nothing under them.
    pub revoked: bool,
}

/// Checks and counts one call of `route_key` (see the module documentation). A call past a limit is
/// a 429 (and still counted in the usage).
pub async fn admit(
    state: &AppState,
    route_key: &str,
    app: &str,
    caller: Option<&Caller>,
    source_ip: Option<&str>,
) -> Result<Admitted, ApiError> {
    let usage = async {
        if !route_key.is_empty() {
            crate::usage::count_call(state, route_key, app).await;
        }
    };
    let checks = async {
        let revoked = match caller {
            Some(caller) => crate::revocation::is_revoked(state, &caller.user_id).await?,
            None => false,
        };
        if let Some(limits) = rate_limit::limits_for(route_key) {
            let account = caller.filter(|_| !revoked).map(|c| c.user_id.as_str());
            rate_limit::check(state, limits, source_ip, account).await?;
        }
        Ok(Admitted { revoked })
    };
    let ((), admitted) = futures::join!(usage, checks);
    admitted
}
