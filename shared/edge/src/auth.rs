//! Who is calling: the one place that reads the JWT authorizer's claims from the request context.
//!
//! API Gateway (and the local gateway, which imitates it) has already verified the token; handlers trust
//! only what is here, never an id from the body or the path.

use crate::error::ApiError;
use jiff::Timestamp;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

/// The Cognito groups the product knows. A user may hold several (customer and provider, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Customer,
    Provider,
    AgencyAdmin,
    Dispatcher,
    PrivacyOfficer,
    Ops,
    /// Staff who answer support inquiries.
    Support,
}

impl Role {
    /// Every role, in the order template.yaml declares the groups.
    pub const ALL: [Role; 7] = [
        Self::Customer,
        Self::Provider,
        Self::AgencyAdmin,
        Self::Dispatcher,
        Self::PrivacyOfficer,
        Self::Ops,
        Self::Support,
    ];

    /// The Cognito group name of this role.
    pub fn group_name(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Provider => "provider",
            Self::AgencyAdmin => "agency_admin",
            Self::Dispatcher => "dispatcher",
            Self::PrivacyOfficer => "privacy_officer",
            Self::Ops => "ops",
            Self::Support => "support",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.group_name())
    }
}

impl FromStr for Role {
    type Err = ();

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|role| role.group_name() == name)
            .ok_or(())
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The Cognito `sub`: the user id every item of this user is keyed by.
    pub user_id: String,
    /// The Cognito username (`cognito:username` or `username`), for admin calls on the user.
    pub username: Option<String>,
    /// The token's e-mail, when it is an ID token.
    pub email: Option<String>,
    /// Whether Cognito marks that e-mail verified.
    pub email_verified: bool,
    /// The caller's Cognito groups that the product knows.
    pub roles: BTreeSet<Role>,
    /// When the user last signed in with a password (recent-authentication checks).
    pub auth_time: Option<Timestamp>,
}

impl Caller {
    /// A caller that a job builds to act for `user_id` in `role` after an authorised decision (a
    /// restriction lifted, an erasure): never built from anything a client sends. It has no
    /// username, e-mail or sign-in time, so nothing that needs a fresh sign-in accepts it.
    pub fn acting_for(user_id: &str, role: Role) -> Self {
        Self {
            user_id: user_id.to_owned(),
            username: None,
            email: None,
            email_verified: false,
            roles: [role].into_iter().collect(),
            auth_time: None,
        }
    }

    /// The caller of `request`, or 401 when the request carries no verified claims.
    pub fn from_request(request: &Request) -> Result<Self, ApiError> {
        let claims = match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(context)) => context
                .authorizer
                .as_ref()
                .and_then(|authorizer| authorizer.jwt.as_ref())
                .map(|jwt| &jwt.claims),
            _ => None,
        };
        claims.and_then(Self::from_claims).ok_or(ApiError::Unauthorized)
    }

    /// Builds a caller from authorizer claims (every value a string, as API Gateway delivers them).
    pub fn from_claims(claims: &HashMap<String, String>) -> Option<Self> {
        let user_id = claims.get("sub").filter(|sub| !sub.is_empty())?.clone();
        Some(Self {
            user_id,
            username: claims
                .get("cognito:username")
                .or_else(|| claims.get("username"))
                .cloned(),
            email: claims.get("email").cloned(),
            email_verified: claims.get("email_verified").is_some_and(|value| value == "true"),
            roles: claims
                .get("cognito:groups")
                .map(|groups| parse_groups(groups))
                .unwrap_or_default(),
            auth_time: claims
                .get("auth_time")
                .and_then(|seconds| seconds.parse::<i64>().ok())
                .and_then(|seconds| Timestamp::from_second(seconds).ok()),
        })
    }

    /// Whether the caller holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// 403 unless the caller holds `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.has(role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!("this action needs the {role} role")))
        }
    }
}

/// Parses the `cognito:groups` claim as the HTTP API JWT authorizer flattens it: a JSON array becomes a
/// bracketed, space-separated string (`"[customer provider]"`). A JSON-style list is accepted too.
/// Unknown groups are ignored: they grant nothing.
pub fn parse_groups(value: &str) -> BTreeSet<Role> {
    value
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(|name| name.trim_matches('"'))
        .filter_map(|name| name.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_as_api_gateway_flattens_them() {
        assert_eq!(
            parse_groups("[customer provider]"),
            BTreeSet::from([Role::Customer, Role::Provider])
        );
        assert_eq!(
            parse_groups("[privacy_officer]"),
            BTreeSet::from([Role::PrivacyOfficer])
        );
        assert_eq!(
            parse_groups(r#"["ops","dispatcher"]"#),
            BTreeSet::from([Role::Ops, Role::Dispatcher])
        );
        assert!(parse_groups("[]").is_empty());
        assert!(
            parse_groups("[admins root]").is_empty(),
            "unknown groups grant nothing"
        );
    }

    #[test]
    fn caller_from_string_claims() {
        let claims: HashMap<String, String> = [
            ("sub", "5f0c"),
            ("email", "a@example.com"),
            ("email_verified", "true"),
            ("cognito:groups", "[customer]"),
            ("auth_time", "1700000000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let caller = Caller::from_claims(&claims).expect("caller");
        assert_eq!(caller.user_id, "5f0c");
        assert!(caller.email_verified);
        assert!(caller.has(Role::Customer) && !caller.has(Role::Ops));
        assert_eq!(caller.auth_time.map(|t| t.as_second()), Some(1_700_000_000));
        assert!(caller.require(Role::Ops).is_err());
    }

    #[test]
    fn no_sub_no_caller() {
        assert!(Caller::from_claims(&HashMap::new()).is_none());
        let empty_sub = HashMap::from([("sub".to_string(), String::new())]);
        assert!(Caller::from_claims(&empty_sub).is_none());
    }

    #[test]
    fn request_without_authorizer_is_unauthorized() {
        let request = Request::default();
        assert!(matches!(
            Caller::from_request(&request),
            Err(ApiError::Unauthorized)
        ));
    }
}
