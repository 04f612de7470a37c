//! The user-directory port: the user pool that holds every person's sign-in (e-mail, phone, groups).
//!
//! [`CognitoDirectory`] is the adapter the functions use; [`MemoryDirectory`] holds users in memory for
//! fast unit tests. The domain asks for what it needs (a user's address and status, group members, a
//! page of users, deletion) and never sees a Cognito type. Errors carry a service code only: the
//! directory's messages can name the user.

use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata;
use aws_sdk_cognitoidentityprovider::types::{AttributeType, UserStatusType, UserType};
use jiff::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use thiserror::Error;

/// Where a user's sign-up stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    /// Signed up and confirmed.
    Confirmed,
    /// Signed up, never confirmed.
    Unconfirmed,
    /// Anything else (reset required, external provider, …).
    Other,
}

/// A user as the directory knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub username: String,
    /// The `sub`: the user id every item of the user is keyed by (a page of users is a page of ids).
    pub user_id: Option<String>,
    /// The verified e-mail, where mail to the user goes; `None` while unverified (see `email_of`).
    pub email: Option<String>,
    pub status: UserStatus,
    pub enabled: bool,
    pub created_at: Option<Timestamp>,
}

/// One page of users and the token of the next (none at the end).
#[derive(Debug, Clone, Default)]
pub struct UserPage {
    pub users: Vec<DirectoryUser>,
    pub next: Option<String>,
}

/// Which users a listing returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserFilter {
    All,
    Unconfirmed,
}

/// A directory call failed; `0` is the service's error code (never a message).
#[derive(Debug, Error)]
#[error("user directory call failed ({0})")]
pub struct DirectoryError(pub String);

/// The user pool, as the domain uses it.
#[async_trait]
pub trait UserDirectory: Send + Sync {
    /// Puts the user in `group`, so their next token carries it. Idempotent.
    async fn add_to_group(&self, username: &str, group: &str) -> Result<(), DirectoryError>;
    /// The user, or `None` when the directory does not know them.
    async fn user(&self, username: &str) -> Result<Option<DirectoryUser>, DirectoryError>;
    /// Deletes the user; a user already gone is success.
    async fn delete_user(&self, username: &str) -> Result<(), DirectoryError>;
    /// One page of users (at most 60) matching `filter`, from `page` (none: the first).
    async fn list_users(&self, filter: UserFilter, page: Option<String>) -> Result<UserPage, DirectoryError>;
    /// One page of the members of `group`.
    async fn list_group(&self, group: &str, page: Option<String>) -> Result<UserPage, DirectoryError>;
    /// The groups `username` is in (empty for an unknown user).
    async fn groups(&self, username: &str) -> Result<Vec<String>, DirectoryError>;
}

/// The e-mail addresses of every member of `group` (staff alerts: privacy officers, support). A
/// directory failure ends the list early and is logged: an alert must never fail the work it reports.
pub async fn group_addresses(directory: &dyn UserDirectory, group: &str) -> Vec<String> {
    let mut addresses = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = match directory.list_group(group, token.take()).await {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(error = %error, group, "group members not listed");
                return addresses;
            }
        };
        addresses.extend(page.users.into_iter().filter_map(|user| user.email));
        match page.next {
            Some(next) => token = Some(next),
            None => return addresses,
        }
    }
}

/// The Cognito user pool adapter.
pub struct CognitoDirectory {
    client: aws_sdk_cognitoidentityprovider::Client,
    pool_id: String,
}

impl CognitoDirectory {
    /// An adapter for the pool `pool_id`.
    pub fn new(client: aws_sdk_cognitoidentityprovider::Client, pool_id: String) -> Self {
        Self { client, pool_id }
    }
}

fn code<E: ProvideErrorMetadata>(error: &E) -> String {
    error.code().unwrap_or("unknown").to_owned()
}

fn attribute_of(attributes: &[AttributeType], name: &str) -> Option<String> {
    attributes
        .iter()
        .find(|a| a.name() == name)
        .and_then(|a| a.value().map(str::to_owned))
}

/// The user's e-mail while it is verified: after a change, nothing goes to the new address until
/// its holder proved it (Cognito keeps the old one meanwhile where the pool requires verification
/// before an update; `email_verified` false means no address at all).
fn email_of(attributes: &[AttributeType]) -> Option<String> {
    attribute_of(attributes, "email")
        .filter(|_| attribute_of(attributes, "email_verified").as_deref() == Some("true"))
}

fn status_of(status: Option<&UserStatusType>) -> UserStatus {
    match status {
        Some(UserStatusType::Confirmed) => UserStatus::Confirmed,
        Some(UserStatusType::Unconfirmed) => UserStatus::Unconfirmed,
        _ => UserStatus::Other,
    }
}

fn listed(user: &UserType) -> Option<DirectoryUser> {
    Some(DirectoryUser {
        username: user.username()?.to_owned(),
        user_id: attribute_of(user.attributes(), "sub"),
        email: email_of(user.attributes()),
        status: status_of(user.user_status()),
        enabled: user.enabled(),
        created_at: user
            .user_create_date()
            .and_then(|d| Timestamp::from_second(d.secs()).ok()),
    })
}

#[async_trait]
impl UserDirectory for CognitoDirectory {
    async fn groups(&self, username: &str) -> Result<Vec<String>, DirectoryError> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = match self
                .client
                .admin_list_groups_for_user()
                .user_pool_id(&self.pool_id)
                .username(username)
                .set_next_token(token.take())
                .send()
                .await
            {
                Ok(page) => page,
                Err(error) if code(&error) == "UserNotFoundException" => return Ok(Vec::new()),
                Err(error) => {
                    return Err(DirectoryError(format!(
                        "AdminListGroupsForUser: {}",
                        code(&error)
                    )));
                }
            };
            names.extend(
                page.groups()
                    .iter()
                    .filter_map(|g| g.group_name().map(str::to_owned)),
            );
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => return Ok(names),
            }
        }
    }

    async fn add_to_group(&self, username: &str, group: &str) -> Result<(), DirectoryError> {
        self.client
            .admin_add_user_to_group()
            .user_pool_id(&self.pool_id)
            .username(username)
            .group_name(group)
            .send()
            .await
            .map_err(|e| DirectoryError(format!("AdminAddUserToGroup: {}", code(&e))))?;
        Ok(())
    }

    async fn user(&self, username: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        match self
            .client
            .admin_get_user()
            .user_pool_id(&self.pool_id)
            .username(username)
            .send()
            .await
        {
            Ok(user) => Ok(Some(DirectoryUser {
                username: user.username().to_owned(),
                user_id: attribute_of(user.user_attributes(), "sub"),
                email: email_of(user.user_attributes()),
                status: status_of(user.user_status()),
                enabled: user.enabled(),
                created_at: user
                    .user_create_date()
                    .and_then(|d| Timestamp::from_second(d.secs()).ok()),
            })),
            Err(error) if code(&error) == "UserNotFoundException" => Ok(None),
            Err(error) => Err(DirectoryError(format!("AdminGetUser: {}", code(&error)))),
        }
    }

    async fn delete_user(&self, username: &str) -> Result<(), DirectoryError> {
        match self
            .client
            .admin_delete_user()
            .user_pool_id(&self.pool_id)
            .username(username)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if code(&error) == "UserNotFoundException" => Ok(()),
            Err(error) => Err(DirectoryError(format!("AdminDeleteUser: {}", code(&error)))),
        }
    }

    async fn list_users(&self, filter: UserFilter, page: Option<String>) -> Result<UserPage, DirectoryError> {
        let mut call = self
            .client
            .list_users()
            .user_pool_id(&self.pool_id)
            .limit(60)
            .set_pagination_token(page);
        if filter == UserFilter::Unconfirmed {
            call = call.filter("cognito:user_status = \"UNCONFIRMED\"");
        }
        let page = call
            .send()
            .await
            .map_err(|e| DirectoryError(format!("ListUsers: {}", code(&e))))?;
        Ok(UserPage {
            users: page.users().iter().filter_map(listed).collect(),
            next: page
                .pagination_token()
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        })
    }

    async fn list_group(&self, group: &str, page: Option<String>) -> Result<UserPage, DirectoryError> {
        let page = self
            .client
            .list_users_in_group()
            .user_pool_id(&self.pool_id)
            .group_name(group)
            .set_next_token(page)
            .send()
            .await
            .map_err(|e| DirectoryError(format!("ListUsersInGroup: {}", code(&e))))?;
        Ok(UserPage {
            users: page.users().iter().filter_map(listed).collect(),
            next: page.next_token().filter(|t| !t.is_empty()).map(str::to_owned),
        })
    }
}

/// The in-memory adapter: users with their groups, paged two at a time so that paging loops are
/// exercised.
#[derive(Debug, Default)]
pub struct MemoryDirectory {
    users: Mutex<BTreeMap<String, (DirectoryUser, BTreeSet<String>)>>,
}

/// Users per page of the in-memory directory.
const MEMORY_PAGE: usize = 2;

impl MemoryDirectory {
    /// Adds (or replaces) a user in `groups`.
    pub fn insert(&self, user: DirectoryUser, groups: &[&str]) {
        if let Ok(mut users) = self.users.lock() {
            let groups = groups.iter().map(|g| (*g).to_owned()).collect();
            users.insert(user.username.clone(), (user, groups));
        }
    }

    /// The groups of `username` (empty when unknown).
    pub fn groups_of(&self, username: &str) -> BTreeSet<String> {
        self.users
            .lock()
            .ok()
            .and_then(|u| u.get(username).map(|(_, g)| g.clone()))
            .unwrap_or_default()
    }

    fn page(
        &self,
        keep: impl Fn(&DirectoryUser, &BTreeSet<String>) -> bool,
        page: Option<String>,
    ) -> UserPage {
        let Ok(users) = self.users.lock() else {
            return UserPage::default();
        };
        let matching: Vec<&DirectoryUser> = users
            .values()
            .filter(|(u, g)| keep(u, g))
            .map(|(u, _)| u)
            .filter(|u| page.as_deref().is_none_or(|after| u.username.as_str() > after))
            .collect();
        let users: Vec<DirectoryUser> = matching.iter().take(MEMORY_PAGE).map(|u| (*u).clone()).collect();
        let next = (matching.len() > MEMORY_PAGE)
            .then(|| users.last().map(|u| u.username.clone()))
            .flatten();
        UserPage { users, next }
    }
}

#[async_trait]
impl UserDirectory for MemoryDirectory {
    async fn groups(&self, username: &str) -> Result<Vec<String>, DirectoryError> {
        Ok(self.groups_of(username).into_iter().collect())
    }

    async fn add_to_group(&self, username: &str, group: &str) -> Result<(), DirectoryError> {
        let mut users = self.users.lock().map_err(|_| DirectoryError("poisoned".into()))?;
        let (_, groups) = users
            .get_mut(username)
            .ok_or_else(|| DirectoryError("UserNotFoundException".into()))?;
        groups.insert(group.to_owned());
        Ok(())
    }

    async fn user(&self, username: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        let users = self.users.lock().map_err(|_| DirectoryError("poisoned".into()))?;
        Ok(users.get(username).map(|(u, _)| u.clone()))
    }

    async fn delete_user(&self, username: &str) -> Result<(), DirectoryError> {
        let mut users = self.users.lock().map_err(|_| DirectoryError("poisoned".into()))?;
        users.remove(username);
        Ok(())
    }

    async fn list_users(&self, filter: UserFilter, page: Option<String>) -> Result<UserPage, DirectoryError> {
        Ok(self.page(
            |u, _| filter == UserFilter::All || u.status == UserStatus::Unconfirmed,
            page,
        ))
    }

    async fn list_group(&self, group: &str, page: Option<String>) -> Result<UserPage, DirectoryError> {
        Ok(self.page(|_, g| g.contains(group), page))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, status: UserStatus) -> DirectoryUser {
        DirectoryUser {
            username: name.into(),
            user_id: Some(name.into()),
            email: Some(format!("{name}@example.com")),
            status,
            enabled: true,
            created_at: None,
        }
    }

    #[tokio::test]
    async fn memory_directory_pages_filters_and_deletes() {
        let directory = MemoryDirectory::default();
        for name in ["a", "b", "c"] {
            directory.insert(user(name, UserStatus::Confirmed), &["customer"]);
        }
        directory.insert(user("d", UserStatus::Unconfirmed), &[]);
        let first = directory.list_users(UserFilter::All, None).await.expect("page");
        assert_eq!(first.users.len(), 2);
        let second = directory
            .list_users(UserFilter::All, first.next)
            .await
            .expect("page");
        assert_eq!(second.users.len(), 2);
        assert!(second.next.is_none());
        let unconfirmed = directory
            .list_users(UserFilter::Unconfirmed, None)
            .await
            .expect("page");
        assert_eq!(unconfirmed.users.len(), 1);
        directory.add_to_group("d", "provider").await.expect("known user");
        assert!(directory.groups_of("d").contains("provider"));
        directory.delete_user("d").await.expect("delete");
        directory.delete_user("d").await.expect("deleting twice is fine");
        assert_eq!(directory.user("d").await.expect("read"), None);
        assert!(directory.add_to_group("d", "provider").await.is_err());
    }
}
