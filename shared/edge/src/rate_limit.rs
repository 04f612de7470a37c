//! Fraud and abuse protection by IP and by account: fixed-window rate limits on registration, the
//! calls that follow a sign-in, and the privacy endpoints. Each window is an atomic counter item
//! (`RATE#…`, one `UpdateItem ADD` conditioned on the limit, outside any transaction,
//! [`crate::admission`]) that expires with its window, so limits hold across every Lambda container
//! without a read-then-write race. The IP and the user id are counted under keyed hashes
//! (`LookupKey::digest`: HMAC under a key derived once per container from the KMS key), never in
//! plaintext, and without a KMS call per request.

use crate::error::ApiError;
use platform::AppState;
use platform::store::CounterIncrement;

/// At most `max` calls per `window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u64,
    pub window_seconds: i64,
}

/// The limits of one group of routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteLimits {
    /// Names the group in counter keys.
    pub group: &'static str,
    pub per_ip: Limit,
    pub per_account: Limit,
}

const REGISTRATION: RouteLimits = RouteLimits {
    group: "registration",
    per_ip: Limit {
        max: 20,
        window_seconds: 3600,
    },
    per_account: Limit {
        max: 10,
        window_seconds: 3600,
    },
};

const AFTER_SIGN_IN: RouteLimits = RouteLimits {
    group: "me",
    per_ip: Limit {
        max: 600,
        window_seconds: 3600,
    },
    per_account: Limit {
        max: 300,
        window_seconds: 3600,
    },
};

const PRIVACY: RouteLimits = RouteLimits {
    group: "privacy",
    per_ip: Limit {
        max: 120,
        window_seconds: 600,
    },
    per_account: Limit {
        max: 30,
        window_seconds: 600,
    },
};

const SUPPORT: RouteLimits = RouteLimits {
    group: "support",
    per_ip: Limit {
        max: 30,
        window_seconds: 3600,
    },
    per_account: Limit {
        max: 20,
        window_seconds: 3600,
    },
};

/// The limits that apply to `route_key`, if any.
pub fn limits_for(route_key: &str) -> Option<RouteLimits> {
    let (method, path) = route_key.split_once(' ')?;
    match (method, path) {
        ("POST", "/v1/customers" | "/v1/providers") => Some(REGISTRATION),
        ("GET", "/v1/me") => Some(AFTER_SIGN_IN),
        ("POST", "/v1/support/inquiries" | "/v1/me/support/inquiries" | "/v1/support/confirmations") => {
            Some(SUPPORT)
        }
        (_, path)
            if path.starts_with("/v1/privacy-requests") || path.starts_with("/v1/me/data-inventory") =>
        {
            Some(PRIVACY)
        }
        _ => None,
    }
}

/// One counter of a call under a limit: which scope it counts, and when its window ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitCounter {
    pub increment: CounterIncrement,
    pub window_end: i64,
}

/// The counters this call adds to under the route's limits: per keyed hash of the address and of
/// the account, each in its fixed window, refused at the limit ([`CounterIncrement::below`]).
/// Neither the address nor the user id is kept in a counter's key.
pub async fn counters(
    state: &AppState,
    limits: RouteLimits,
    source_ip: Option<&str>,
    user_id: Option<&str>,
) -> Result<Vec<LimitCounter>, ApiError> {
    let ip_key = match source_ip {
        Some(ip) => Some(state.lookup.digest("rate-limit-ip", ip.as_bytes()).await?),
        None => None,
    };
    let account_key = match user_id {
        Some(id) => Some(state.lookup.digest("rate-limit-account", id.as_bytes()).await?),
        None => None,
    };
    let now = state.clock.epoch_seconds();
    let mut counters = Vec::new();
    for (scope, subject, limit) in [
        ("ip", ip_key, limits.per_ip),
        ("account", account_key, limits.per_account),
    ] {
        let Some(subject) = subject else { continue };
        let window_start = now - now.rem_euclid(limit.window_seconds);
        let window_end = window_start + limit.window_seconds;
        counters.push(LimitCounter {
            increment: CounterIncrement {
                pk: format!("RATE#{}#{scope}#{subject}", limits.group),
                sk: window_start.to_string(),
                expires_at: window_end,
                below: Some(limit.max),
            },
            window_end,
        });
    }
    Ok(counters)
}

/// Counts a call against `limits`, each counter (account, then address) one conditional
/// `UpdateItem` outside any transaction, so callers sharing an address queue at its counter instead
/// of cancelling each other; 429 at the first counter at its limit. The account is counted first
/// and the address only if the account passed: a caller past their own limit cannot use up the
/// budget of everyone behind the same address. Used by the router for every limited route
/// ([`crate::admission`]) and by domain rules (mail to the support address, per sender).
pub async fn check(
    state: &AppState,
    limits: RouteLimits,
    source_ip: Option<&str>,
    user_id: Option<&str>,
) -> Result<(), ApiError> {
    let mut counters = counters(state, limits, source_ip, user_id).await?;
    counters.reverse();
    for counter in &counters {
        if !state.store.count_unless_at_limit(&counter.increment).await? {
            return Err(refused(state, limits.group, counter.window_end));
        }
    }
    Ok(())
}

/// The 429 for a call refused by the counter whose window ends at `window_end`.
pub fn refused(state: &AppState, group: &str, window_end: i64) -> ApiError {
    tracing::info!(group, "rate limit exceeded");
    ApiError::TooManyRequests {
        retry_after_seconds: u64::try_from(window_end - state.clock.epoch_seconds())
            .unwrap_or(1)
            .max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_me_and_privacy_routes_are_limited_others_not() {
        assert_eq!(limits_for("POST /v1/customers"), Some(REGISTRATION));
        assert_eq!(limits_for("POST /v1/providers"), Some(REGISTRATION));
        assert_eq!(limits_for("GET /v1/me"), Some(AFTER_SIGN_IN));
        assert_eq!(limits_for("POST /v1/privacy-requests"), Some(PRIVACY));
        assert_eq!(limits_for("GET /v1/privacy-requests/{id}"), Some(PRIVACY));
        assert_eq!(limits_for("GET /v1/service-requests"), None);
        assert_eq!(limits_for("garbage"), None);
    }
}
