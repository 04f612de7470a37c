//! What the router checks and counts for every call before its handler, in one request: that the
//! caller's sign-in is not revoked ([`crate::revocation`]), the call against its route's rate
//! limits ([`crate::rate_limit`], refused past them), and the call in the day's anonymous usage
//! counts ([`crate::usage`]). One `TransactWriteItems` of the plain client holds them all (none is
//! personal: keyed hashes, route keys, numbers), so a call pays one request for this however much it
//! checks; a cancelled transaction says which condition failed, and only a revoked caller (rare) or
//! a refused call (rarer) pays a second.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::rate_limit::{self, CONDITION_FAILED};
use platform::AppState;
use platform::store::{CounterIncrement, ItemKey, StoreError};

/// How a call was let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    /// The caller's sign-in is revoked (their erasure started): the router refuses writes and files
    /// nothing under them.
    pub revoked: bool,
}

/// Checks and counts one call of `route_key` (see the module documentation). A revoked caller is
/// counted by address only; a call past a limit is a 429 (and still counted in the usage).
pub async fn admit(
    state: &AppState,
    route_key: &str,
    app: &str,
    caller: Option<&Caller>,
    source_ip: Option<&str>,
) -> Result<Admitted, ApiError> {
    let marker = match caller {
        Some(caller) => Some(crate::revocation::marker_key(state, &caller.user_id).await?),
        None => None,
    };
    let usage = if route_key.is_empty() {
        Vec::new()
    } else {
        crate::usage::call_counters(state, route_key, app)
    };
    let first = attempt(
        state,
        route_key,
        marker.as_ref(),
        caller.map(|c| c.user_id.as_str()),
        source_ip,
        &usage,
    )
    .await?;
    match first {
        Outcome::Admitted => Ok(Admitted { revoked: false }),
        Outcome::Refused(error) => Err(error),
        // Nothing was counted: again, as a call filed under nobody.
        Outcome::Revoked => match attempt(state, route_key, None, None, source_ip, &usage).await? {
            Outcome::Refused(error) => Err(error),
            Outcome::Admitted | Outcome::Revoked => Ok(Admitted { revoked: true }),
        },
    }
}

enum Outcome {
    Admitted,
    Revoked,
    Refused(ApiError),
}

async fn attempt(
    state: &AppState,
    route_key: &str,
    marker: Option<&ItemKey>,
    account: Option<&str>,
    source_ip: Option<&str>,
    usage: &[CounterIncrement],
) -> Result<Outcome, ApiError> {
    let limits = rate_limit::limits_for(route_key);
    let counters = match limits {
        Some(limits) => rate_limit::counters(state, limits, source_ip, account).await?,
        None => Vec::new(),
    };
    let absent: Vec<ItemKey> = marker.into_iter().cloned().collect();
    let increments: Vec<CounterIncrement> = counters
        .iter()
        .map(|c| c.increment.clone())
        .chain(usage.iter().cloned())
        .collect();
    match state.store.count_and_check(&absent, &increments).await {
        Ok(()) => Ok(Outcome::Admitted),
        Err(StoreError::TransactionCancelled(reasons)) => {
            let failed = |index: usize| reasons.get(index).is_some_and(|r| r == CONDITION_FAILED);
            if !absent.is_empty() && failed(0) {
                return Ok(Outcome::Revoked);
            }
            let refused = (0..counters.len()).find(|&i| failed(absent.len() + i));
            match (refused, limits) {
                (Some(index), Some(limits)) => {
                    // The refused call is still a call of the route in the usage counts.
                    if let Err(error) = state.store.count_and_check(&[], usage).await {
                        tracing::warn!(error = %error, "usage not counted");
                    }
                    Ok(Outcome::Refused(rate_limit::refused(
                        state,
                        limits.group,
                        counters[index].window_end,
                    )))
                }
                _ => Err(StoreError::TransactionCancelled(reasons).into()),
            }
        }
        Err(error) => Err(error.into()),
    }
}
