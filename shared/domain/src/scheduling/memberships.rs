//! What a membership decision does to scheduling: an approval lists the officer in the agency's pool;
//! a rejection, revocation, lapse or withdrawal unlists them and releases their future shifts there.
//! The record itself belongs to `accounts::memberships`.

use super::*;
use crate::accounts::memberships::{DecisionInput, LapseStep, MembershipStatus, MembershipView};

/// `POST /v1/agencies/{id}/memberships/{provider_id}/decision`: an admin of the agency (or ops)
/// approves, rejects or revokes the officer's membership; audited, the officer mailed.
pub async fn decide_membership(
    state: &AppState,
    caller: &Caller,
    agency_id: &str,
    provider_id: &str,
    input: DecisionInput,
) -> Result<MembershipView, ApiError> {
    let agency = agencies::read(state, caller, agency_id).await?;
    let decided = accounts::memberships::decide(state, caller, &agency, provider_id, &input).await?;
    relist(state, provider_id).await?;
    if decided.status != MembershipStatus::Approved {
        release_future_shifts(state, provider_id, Some(agency_id)).await?;
    }
    Ok(MembershipView::from(&decided))
}

/// `DELETE /v1/providers/me/memberships/{agency_id}`: the officer leaves the agency (or withdraws the
/// application); unlisted from its pool, their future shifts there released. Idempotent.
pub async fn leave_agency(state: &AppState, caller: &Caller, agency_id: &str) -> Result<(), ApiError> {
    if accounts::memberships::withdraw(state, caller, agency_id).await? {
        relist(state, &caller.user_id).await?;
        release_future_shifts(state, &caller.user_id, Some(agency_id)).await?;
    }
    Ok(())
}

/// What the hourly run did with one due membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipReview {
    Nothing,
    /// The agency's admins were told it lapses in 30 days.
    NoticeSent,
    /// It lapsed: unlisted, future shifts released, the officer mailed.
    Lapsed,
}

/// The hourly run's work for the membership at `key` (from the due-date index).
pub async fn review_membership(
    state: &AppState,
    key: &platform::store::ItemKey,
) -> Result<MembershipReview, ApiError> {
    match accounts::memberships::lapse_step(state, key).await? {
        LapseStep::Nothing => Ok(MembershipReview::Nothing),
        LapseStep::NoticeDue(membership) => {
            if let Some(agency) = agencies::find(state, &membership.agency_id).await? {
                let line = format!(
                    "officer {} (badge on file) lapses on {}",
                    membership.user_id,
                    membership
                        .valid_until
                        .map(|t| t.strftime("%Y-%m-%d").to_string())
                        .unwrap_or_default()
                );
                let message = mail::memberships_lapsing(&agency.settings.agency_name, &[line]);
                for address in admin_addresses(state, &agency).await {
                    if let Err(error) = crate::mail::send_service(state, &address, &message).await {
                        tracing::warn!(error = %error, "lapse notice not sent");
                    }
                }
            }
            Ok(MembershipReview::NoticeSent)
        }
        LapseStep::Lapsed(membership) => {
            relist(state, &membership.user_id).await?;
            release_future_shifts(state, &membership.user_id, Some(&membership.agency_id)).await?;
            Ok(MembershipReview::Lapsed)
        }
    }
}

/// The e-mail addresses of the agency's admins, from the user pool.
async fn admin_addresses(state: &AppState, agency: &Agency) -> Vec<String> {
    let mut addresses = Vec::new();
    for user_id in &agency.settings.admin_user_ids {
        match state.directory.user(user_id).await {
            Ok(user) => addresses.extend(user.and_then(|u| u.email)),
            Err(error) => tracing::warn!(error = %error, "admin address not found"),
        }
    }
    addresses
}
