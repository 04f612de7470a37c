//! Local users and their tokens: what `cargo xtask token` and the tests use to act as a user.
//!
//! Works against the emulator's user pool exactly as a client would against Cognito's: the user signs
//! up, is confirmed, has a verified e-mail (moto's sign-up does not verify it), joins groups and signs in.

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_cognitoidentityprovider::types::{AttributeType, AuthFlowType};
use thiserror::Error;

/// The password every local user gets. Local only: the emulator holds nothing real.
pub const LOCAL_PASSWORD: &str = "Local-Password-2026";

/// A failed step of making a local user.
#[derive(Debug, Error)]
#[error("{step}: {detail}")]
pub struct IdentityError {
    step: &'static str,
    detail: String,
}

fn failed<E: std::error::Error>(step: &'static str) -> impl FnOnce(E) -> IdentityError {
    move |error| IdentityError {
        step,
        detail: DisplayErrorContext(&error).to_string(),
    }
}

/// The tokens of a signed-in local user.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// ID token: carries `email` and `aud` (what the app sends as the bearer token).
    pub id_token: String,
    /// Access token: carries `client_id` instead of `aud`.
    pub access_token: String,
}

/// Signs `email` up in the pool (once), confirms and verifies it, adds it to `groups`, and signs in.
pub async fn sign_in(
    cognito: &Client,
    pool_id: &str,
    client_id: &str,
    email: &str,
    groups: &[&str],
) -> Result<Tokens, IdentityError> {
    let signed_up = cognito
        .sign_up()
        .client_id(client_id)
        .username(email)
        .password(LOCAL_PASSWORD)
        .user_attributes(
            AttributeType::builder()
                .name("email")
                .value(email)
                .build()
                .map_err(failed("sign-up"))?,
        )
        .send()
        .await;
    match signed_up {
        Ok(_) => {
            cognito
                .admin_confirm_sign_up()
                .user_pool_id(pool_id)
                .username(email)
                .send()
                .await
                .map_err(failed("confirm sign-up"))?;
            cognito
                .admin_update_user_attributes()
                .user_pool_id(pool_id)
                .username(email)
                .user_attributes(
                    AttributeType::builder()
                        .name("email_verified")
                        .value("true")
                        .build()
                        .map_err(failed("verify"))?,
                )
                .send()
                .await
                .map_err(failed("verify e-mail"))?;
        }
        Err(error) if error.code() == Some("UsernameExistsException") => {}
        Err(error) => return Err(failed("sign-up")(error)),
    }
    for group in groups {
        cognito
            .admin_add_user_to_group()
            .user_pool_id(pool_id)
            .username(email)
            .group_name(*group)
            .send()
            .await
            .map_err(failed("add to group"))?;
    }
    let result = cognito
        .admin_initiate_auth()
        .user_pool_id(pool_id)
        .client_id(client_id)
        .auth_flow(AuthFlowType::AdminUserPasswordAuth)
        .auth_parameters("USERNAME", email)
        .auth_parameters("PASSWORD", LOCAL_PASSWORD)
        .send()
        .await
        .map_err(failed("sign-in"))?
        .authentication_result
        .ok_or(IdentityError {
            step: "sign-in",
            detail: "no tokens returned".into(),
        })?;
    match (result.id_token, result.access_token) {
        (Some(id_token), Some(access_token)) => Ok(Tokens {
            id_token,
            access_token,
        }),
        _ => Err(IdentityError {
            step: "sign-in",
            detail: "a token is missing".into(),
        }),
    }
}
