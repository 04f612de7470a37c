//! Marketing campaigns, sent only with consent. Ops create a campaign (subject, body, channel,
//! audience); the hourly run sends it a page of the user pool at a time, resuming where the last run
//! stopped, to each active account that consents to the campaign's purpose at that moment (restricted
//! and deleting accounts never). E-mail goes through SES with a one-click unsubscribe link in every
//! mail (in its text and as its `List-Unsubscribe` header, RFC 8058) whose signed token turns the
//! consent off at once, no sign-in needed; post and telephone/SMS produce the list the mail
//! house or SMS provider gets, consented entries only. Each person keeps a record that the campaign
//! went to them (never its content), erased with them. Owner of the campaign and delivery records.

use crate::accounts::{self, AccountRole, AccountStatus};
use crate::consent::{self, ConsentRecord, ConsentSource};
use crate::purposes::{self, Purpose};
use edge::auth::{Caller, Role};
use edge::error::ApiError;
use edge::validation::Validator;
use jiff::Timestamp;
use platform::AppState;
use platform::keys::user_partition;
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record, StoreError};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// How a campaign reaches people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Post,
    Phone,
}

impl Channel {
    /// The marketing purpose of this channel, which a campaign needs consent to by default.
    pub fn marketing_purpose(self) -> &'static str {
        match self {
            Channel::Email => purposes::MARKETING_EMAIL,
            Channel::Post => purposes::MARKETING_POST,
            Channel::Phone => purposes::MARKETING_PHONE,
        }
    }
}

/// Who a campaign is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    Customers,
    Providers,
}

impl Audience {
    fn group(self) -> &'static str {
        match self {
            Audience::Customers => "customer",
            Audience::Providers => "provider",
        }
    }

    fn role(self) -> AccountRole {
        match self {
            Audience::Customers => AccountRole::Customer,
            Audience::Providers => AccountRole::Provider,
        }
    }
}

/// A campaign and how far its sending has got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    pub campaign_id: String,
    pub subject: String,
    pub body: String,
    pub channel: Channel,
    pub audience: Audience,
    /// The consent it needs from each recipient (the channel's marketing purpose, or a purpose a
    /// privacy officer added).
    pub purpose: String,
    pub created_by: String,
    pub created_at: Timestamp,
    /// The user pool's token of the next page; `None` before the first page and at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page: Option<String>,
    /// People it went to.
    pub sent: u64,
    /// People passed over: no consent, restricted, being deleted, or no account of the audience's kind.
    pub skipped: u64,
    /// When the last page was done; `None` while it is being sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
}

const PARTITION: &str = "CAMPAIGNS";

impl Campaign {
    fn key_of(campaign_id: &str) -> ItemKey {
        ItemKey::new(PARTITION.to_owned(), format!("CAMPAIGN#{campaign_id}"))
    }
}

impl Record for Campaign {
    const TYPE: &'static ItemType = &schema::CAMPAIGN;

    fn key(&self) -> ItemKey {
        Self::key_of(&self.campaign_id)
    }

    fn retention_start(&self) -> Option<Timestamp> {
        Some(self.created_at)
    }
}

/// The marker of a campaign still being sent: the hourly run finds its work by these (a Query of
/// the few in flight, never of every campaign ever made).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignInFlight {
    pub campaign_id: String,
    pub created_at: Timestamp,
}

const IN_FLIGHT_PREFIX: &str = "SENDING#";

impl Record for CampaignInFlight {
    const TYPE: &'static ItemType = &schema::CAMPAIGN_IN_FLIGHT;

    fn key(&self) -> ItemKey {
        ItemKey::new(
            PARTITION.to_owned(),
            format!("{IN_FLIGHT_PREFIX}{}", self.campaign_id),
        )
    }

    fn retention_start(&self) -> Option<Timestamp> {
        Some(self.created_at)
    }
}

/// That a campaign went to a person (never its content): in their partition, so it is in their
/// export and inventory and is erased with them; indexed by campaign for the post and phone lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignDelivery {
    pub user_id: String,
    pub campaign_id: String,
    pub channel: Channel,
    pub purpose: String,
    pub sent_at: Timestamp,
    /// `CAMPAIGN#<id>`: the campaign's recipients.
    pub gsi1pk: String,
    /// The recipient's id: the list in a stable order.
    pub gsi1sk: String,
}

impl CampaignDelivery {
    fn key_of(user_id: &str, campaign_id: &str) -> ItemKey {
        ItemKey::new(user_partition(user_id), format!("CAMPAIGN#{campaign_id}"))
    }
}

impl Record for CampaignDelivery {
    const TYPE: &'static ItemType = &schema::CAMPAIGN_DELIVERY;

    fn key(&self) -> ItemKey {
        Self::key_of(&self.user_id, &self.campaign_id)
    }
}

/// The body of `POST /v1/admin/campaigns`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignInput {
    pub subject: String,
    pub body: String,
    pub channel: Channel,
    pub audience: Audience,
    /// The purpose recipients must consent to; the channel's marketing purpose when left out.
    #[serde(default)]
    pub purpose: Option<String>,
}

/// A campaign as ops see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignView {
    pub campaign_id: String,
    pub subject: String,
    pub channel: Channel,
    pub audience: Audience,
    pub purpose: String,
    pub created_at: Timestamp,
    /// `sending` or `sent`.
    pub status: &'static str,
    pub sent: u64,
    pub skipped: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
}

impl From<&Campaign> for CampaignView {
    fn from(c: &Campaign) -> Self {
        Self {
            campaign_id: c.campaign_id.clone(),
            subject: c.subject.clone(),
            channel: c.channel,
            audience: c.audience,
            purpose: c.purpose.clone(),
            created_at: c.created_at,
            status: if c.finished_at.is_some() {
                "sent"
            } else {
                "sending"
            },
            sent: c.sent,
            skipped: c.skipped,
            finished_at: c.finished_at,
        }
    }
}

/// `POST /v1/admin/campaigns` (ops): a campaign, sent by the hourly run from now on. Its purpose
/// must be one that needs consent: marketing is never the service itself.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    input: CampaignInput,
) -> Result<CampaignView, ApiError> {
    caller.require(Role::Ops)?;
    let mut v = Validator::new();
    v.text("/subject", &input.subject, 150);
    v.text("/body", &input.body, 4_000);
    v.finish()?;
    let purpose_name = input
        .purpose
        .clone()
        .unwrap_or_else(|| input.channel.marketing_purpose().to_owned());
    let found = if purposes::is_well_formed(&purpose_name) {
        purposes::find(&state.store, &purpose_name).await?
    } else {
        None
    };
    // Another channel's marketing purpose would send e-mail on a yes to letters (and its unsubscribe
    // link would withdraw that yes instead).
    let other_channel = purposes::MARKETING_CHANNELS
        .iter()
        .any(|p| *p == purpose_name && *p != input.channel.marketing_purpose());
    if other_channel {
        return Err(ApiError::Validation(vec![edge::error::FieldError {
            pointer: "/purpose".into(),
            detail: "is another channel's marketing purpose: leave it out for this channel's".into(),
        }]));
    }
    let purpose: Purpose = found.filter(|p| p.needs_consent).ok_or_else(|| {
        ApiError::Validation(vec![edge::error::FieldError {
            pointer: "/purpose".into(),
            detail: "must be a purpose that needs consent (GET /v1/privacy/purposes)".into(),
        }])
    })?;
    let now = state.clock.now();
    let campaign = Campaign {
        campaign_id: uuid::Uuid::new_v4().to_string(),
        subject: input.subject.trim().to_owned(),
        body: input.body.trim().to_owned(),
        channel: input.channel,
        audience: input.audience,
        purpose: purpose.purpose,
        created_by: caller.user_id.clone(),
        created_at: now,
        next_page: None,
        sent: 0,
        skipped: 0,
        finished_at: None,
    };
    let in_flight = CampaignInFlight {
        campaign_id: campaign.campaign_id.clone(),
        created_at: now,
    };
    state
        .store
        .transact(vec![
            state.store.write_create(&campaign)?,
            state.store.write_create(&in_flight)?,
        ])
        .await?;
    tracing::info!(campaign_id = %campaign.campaign_id, "campaign created");
    Ok(CampaignView::from(&campaign))
}

/// `GET /v1/admin/campaigns/{id}` (ops): where its sending stands.
pub async fn read(state: &AppState, caller: &Caller, campaign_id: &str) -> Result<CampaignView, ApiError> {
    caller.require(Role::Ops)?;
    let found = state
        .store
        .get::<Campaign>(&Campaign::key_of(campaign_id))
        .await?
        .ok_or(ApiError::NotFound("campaign"))?;
    Ok(CampaignView::from(&found.record))
}

/// One entry of a post or telephone campaign's list for the mail house or SMS provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recipient {
    pub name: String,
    /// For post: the mailing address (else the home address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<crate::address::Address>,
    /// For telephone/SMS: the number (E.164).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// Most recipients one page of the list holds.
pub const RECIPIENTS_PAGE: usize = 100;

/// `GET /v1/admin/campaigns/{id}/recipients` (ops): a page of a post or telephone campaign's list,
/// the people it went to with only what the channel needs, read from their accounts now and checked
/// again (a person erased, restricted or no longer consenting since is not on it). 409 for an e-mail
/// campaign, which SES delivered itself. Returns the entries and the recipient to continue after.
pub async fn recipients(
    state: &AppState,
    caller: &Caller,
    campaign_id: &str,
    after: Option<&str>,
) -> Result<(Vec<Recipient>, Option<String>), ApiError> {
    let campaign = read(state, caller, campaign_id).await?;
    if campaign.channel == Channel::Email {
        return Err(ApiError::Conflict(
            "an e-mail campaign has no list: the mail went through our sender".into(),
        ));
    }
    let (deliveries, next) = state
        .store
        .query_gsi1_after::<CampaignDelivery>(&format!("CAMPAIGN#{campaign_id}"), after, RECIPIENTS_PAGE)
        .await?;
    let ids: Vec<String> = deliveries.into_iter().map(|d| d.record.user_id).collect();
    let stored = state
        .store
        .get::<Campaign>(&Campaign::key_of(campaign_id))
        .await?
        .ok_or(ApiError::NotFound("campaign"))?;
    // Checked again now: whoever was restricted, began deleting or withdrew consent since the
    // campaign went out is not handed to the mail house.
    let permitted = allowed(state, &stored.record, &ids).await?;
    // Handing the list over is a disclosure to a processor: logged per person before it leaves.
    let subjects: Vec<String> = permitted.iter().map(|(c, _)| c.user_id.clone()).collect();
    let (house, categories): (&str, &[&str]) = match campaign.channel {
        Channel::Post => ("the mail house sending the campaign", &["name", "postal_address"]),
        _ => ("the call centre making the campaign", &["name", "phone"]),
    };
    let account = match stored.record.audience {
        Audience::Customers => schema::CUSTOMER_ACCOUNT.name,
        Audience::Providers => schema::PROVIDER_ACCOUNT.name,
    };
    crate::privacy::disclosures::log_handover(
        state,
        caller,
        &subjects,
        house,
        &format!(
            "consent to {} ({})",
            stored.record.purpose,
            categories.join(" and ")
        ),
        &[account],
        &format!("campaign {campaign_id}"),
    )
    .await?;
    let list = permitted
        .into_iter()
        // The list is the use: it is handed over for the campaign's purpose, checked per person.
        .map(|(contact, _permit)| Recipient {
            name: contact.name,
            address: (campaign.channel == Channel::Post)
                .then_some(contact.postal_address)
                .flatten(),
            phone: (campaign.channel == Channel::Phone).then_some(contact.phone),
        })
        .collect();
    Ok((list, next))
}

/// What one hourly sending run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SendReport {
    pub sent: usize,
    pub skipped: usize,
    pub campaigns_finished: usize,
}

/// Most campaigns in flight one run looks at.
const MAX_IN_FLIGHT: usize = 20;

/// The hourly run: sends the campaigns in flight, a page of the audience's group at a time, to at
/// most about `max_people` people this run (a page is finished once begun), and records where each
/// stopped. A run that dies mid-page sends that page again next time, and each person's delivery
/// record (written before their mail) keeps them from getting it twice.
pub async fn send_due(state: &AppState, max_people: usize) -> Result<SendReport, ApiError> {
    let mut report = SendReport::default();
    let in_flight = state
        .store
        .query::<CampaignInFlight>(PARTITION, IN_FLIGHT_PREFIX, MAX_IN_FLIGHT)
        .await?;
    for marker in in_flight {
        let Some(mut campaign) = state
            .store
            .get::<Campaign>(&Campaign::key_of(&marker.record.campaign_id))
            .await?
        else {
            state.store.delete(&marker.record.key()).await?;
            continue;
        };
        if campaign.record.channel == Channel::Email && state.config.public_api_url.is_none() {
            // Misconfigured: no e-mail leaves without its unsubscribe link; the others go on.
            tracing::error!(
                campaign_id = %campaign.record.campaign_id,
                "PUBLIC_API_URL is not set: e-mail campaign held"
            );
            continue;
        }
        while campaign.record.finished_at.is_none() && report.sent + report.skipped < max_people {
            let page = state
                .directory
                .list_group(
                    campaign.record.audience.group(),
                    campaign.record.next_page.clone(),
                )
                .await
                .map_err(|error| ApiError::Internal(error.to_string()))?;
            let ids: Vec<String> = page
                .users
                .iter()
                .filter(|u| u.enabled && u.status == platform::directory::UserStatus::Confirmed)
                .filter_map(|u| u.user_id.clone())
                .collect();
            let (sent, skipped) = send_page(state, &campaign.record, &ids).await?;
            report.sent += sent;
            report.skipped += skipped;
            let mut next = campaign.record.clone();
            next.sent += sent as u64;
            next.skipped += skipped as u64;
            next.next_page = page.next;
            if next.next_page.is_none() {
                next.finished_at = Some(state.clock.now());
            }
            match state.store.replace(&next, campaign.version).await {
                Ok(version) => {
                    campaign = platform::store::Versioned {
                        record: next,
                        version,
                    };
                }
                // Another run advanced it: that run goes on from there.
                Err(StoreError::ConditionFailed) => break,
                Err(error) => return Err(error.into()),
            }
        }
        if campaign.record.finished_at.is_some() {
            state.store.delete(&marker.record.key()).await?;
            report.campaigns_finished += 1;
            tracing::info!(campaign_id = %campaign.record.campaign_id, sent = campaign.record.sent, "campaign sent");
        }
    }
    Ok(report)
}

/// Sends `campaign` to the people `user_ids` whose account and consent allow it now; returns how
/// many it went to and how many were passed over. The delivery record is written before the mail:
/// at most once (a mail SES refused is logged, counted as sent, and not tried again).
async fn send_page(
    state: &AppState,
    campaign: &Campaign,
    user_ids: &[String],
) -> Result<(usize, usize), ApiError> {
    // Checked before anyone is recorded as sent: a mail without its unsubscribe link never leaves.
    let api = match (&state.config.public_api_url, campaign.channel) {
        (Some(api), _) => api.as_str(),
        (None, Channel::Email) => {
            return Err(ApiError::Internal(
                "PUBLIC_API_URL is not set: e-mail campaigns need it for their unsubscribe link".into(),
            ));
        }
        (None, _) => "",
    };
    let contacts = allowed(state, campaign, user_ids).await?;
    let mut sent = 0;
    for (contact, permit) in &contacts {
        let delivery = CampaignDelivery {
            user_id: contact.user_id.clone(),
            campaign_id: campaign.campaign_id.clone(),
            channel: campaign.channel,
            purpose: campaign.purpose.clone(),
            sent_at: state.clock.now(),
            gsi1pk: format!("CAMPAIGN#{}", campaign.campaign_id),
            gsi1sk: contact.user_id.clone(),
        };
        match state.store.create(&delivery).await {
            Ok(()) => {}
            // Sent by a run that died before recording its progress; or erased meanwhile.
            Err(StoreError::ConditionFailed | StoreError::KeyDestroyed) => continue,
            Err(error) => return Err(error.into()),
        }
        if campaign.channel == Channel::Email {
            let token =
                unsubscribe_token(state, &contact.user_id, &campaign.purpose, state.clock.now()).await?;
            let mail = crate::mail::campaign(
                crate::mail::first_name(&contact.name),
                &campaign.subject,
                &campaign.body,
                &format!("{api}{ONE_CLICK_PATH}?token={token}"),
            );
            if let Err(error) = crate::mail::send(state, permit, &contact.email, &mail).await {
                tracing::warn!(error = %error, "campaign mail not sent");
            }
        }
        sent += 1;
    }
    Ok((sent, user_ids.len() - sent))
}

/// The purposes a campaign needs each recipient's consent to: its channel's marketing purpose, and
/// the purpose it names when that is another (a survey by e-mail still goes only to those who accept
/// e-mail from us beyond the service).
async fn needed_purposes(state: &AppState, campaign: &Campaign) -> Result<Option<Vec<Purpose>>, ApiError> {
    let mut names = vec![campaign.channel.marketing_purpose().to_owned()];
    if campaign.purpose != names[0] {
        names.push(campaign.purpose.clone());
    }
    let mut needed = Vec::new();
    for name in names {
        match purposes::find(&state.store, &name).await? {
            Some(purpose) => needed.push(purpose),
            // A purpose that is gone permits nothing.
            None => return Ok(None),
        }
    }
    Ok(Some(needed))
}

/// The contacts among `user_ids` the campaign may reach now: an active account of its audience,
/// and a current yes to each purpose it needs. Each comes with the permit for the campaign's own
/// purpose, which the mail needs to leave (`crate::mail::send`).
async fn allowed(
    state: &AppState,
    campaign: &Campaign,
    user_ids: &[String],
) -> Result<Vec<(accounts::Contact, purposes::Permit)>, ApiError> {
    let Some(needed) = needed_purposes(state, campaign).await? else {
        return Ok(Vec::new());
    };
    let mut contacts = accounts::contacts(&state.store, user_ids, campaign.audience.role()).await?;
    contacts.retain(|c| c.status == AccountStatus::Active);
    let mut permitted: Vec<(accounts::Contact, Option<purposes::Permit>)> =
        contacts.into_iter().map(|c| (c, None)).collect();
    for purpose in &needed {
        let ids: Vec<String> = permitted.iter().map(|(c, _)| c.user_id.clone()).collect();
        let decisions = consent::current_many(&state.store, &ids, &purpose.purpose).await?;
        permitted = permitted
            .into_iter()
            .filter_map(|(c, permit)| {
                let decision = decisions.iter().find(|d| d.user_id == c.user_id);
                let granted = purposes::decide(purpose, decision).ok()?;
                // The campaign's own purpose is the last one needed: its permit is kept.
                Some((
                    c,
                    (purpose.purpose == campaign.purpose)
                        .then_some(granted)
                        .or(permit),
                ))
            })
            .collect();
    }
    Ok(permitted
        .into_iter()
        .filter_map(|(c, permit)| Some((c, permit?)))
        .collect())
}

/// Purpose label of the unsubscribe token's signature (a keyed digest, see `platform::lookup`).
const UNSUBSCRIBE_PURPOSE: &str = "unsubscribe-link";

/// The path of the one-click unsubscribe link (RFC 8058) every campaign mail carries, with its
/// token in the query: `GET` shows a page with the button, `POST` (what mail clients send) acts.
pub const ONE_CLICK_PATH: &str = "/v1/unsubscribe/one-click";

/// How long an unsubscribe token works: longer than anyone keeps a promotional mail unread.
const UNSUBSCRIBE_VALID_DAYS: i64 = 365;

async fn unsubscribe_signature(
    state: &AppState,
    user_id: &str,
    purpose: &str,
    expires: i64,
) -> Result<String, ApiError> {
    Ok(state
        .lookup
        .digest(
            UNSUBSCRIBE_PURPOSE,
            format!("{user_id}:{purpose}:{expires}").as_bytes(),
        )
        .await?)
}

/// The token of a mail's unsubscribe link: who, which purpose, until when, signed (no sign-in needed,
/// and nobody can make one for someone else).
pub async fn unsubscribe_token(
    state: &AppState,
    user_id: &str,
    purpose: &str,
    now: Timestamp,
) -> Result<String, ApiError> {
    let expires = now.as_second() + UNSUBSCRIBE_VALID_DAYS * 86_400;
    let signature = unsubscribe_signature(state, user_id, purpose, expires).await?;
    Ok(format!("{user_id}.{purpose}.{expires}.{signature}"))
}

/// The person and purpose a token names, once its signature and date are checked (403 otherwise,
/// before anything is read).
async fn verified(state: &AppState, token: &str) -> Result<(String, String), ApiError> {
    let not_valid = || ApiError::Forbidden("this unsubscribe link is not valid".into());
    let mut parts = token.splitn(4, '.');
    let (Some(user_id), Some(purpose), Some(expires), Some(signature)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(not_valid());
    };
    let expires: i64 = expires.parse().map_err(|_| not_valid())?;
    let expected = unsubscribe_signature(state, user_id, purpose, expires).await?;
    if !bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
        return Err(not_valid());
    }
    if state.clock.now().as_second() > expires {
        return Err(ApiError::Forbidden(
            "this unsubscribe link has expired: change your choices in the app".into(),
        ));
    }
    Ok((user_id.to_owned(), purpose.to_owned()))
}

/// `GET /v1/unsubscribe/one-click?token=` (the link a reader clicks): checks the token and names the
/// purpose it would stop, changing nothing, so that a mail scanner following links unsubscribes no
/// one; the page it serves asks for the click that POSTs.
pub async fn unsubscribe_page(state: &AppState, token: &str) -> Result<Purpose, ApiError> {
    let (_, purpose) = verified(state, token).await?;
    purposes::find(&state.store, &purpose)
        .await?
        .ok_or_else(|| ApiError::Forbidden("this unsubscribe link is not valid".into()))
}

/// The body of `POST /v1/unsubscribe`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unsubscribe {
    pub token: String,
}

/// What an unsubscribe did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unsubscribed {
    pub purpose: String,
    pub granted: bool,
}

/// `POST /v1/unsubscribe` (no sign-in: the signed token is the proof): sets the consent the mail was
/// sent under off at once; the next campaign skips the person. 403 for a forged or expired token
/// (checked before anything is read); a person erased since has nothing left to unsubscribe.
pub async fn unsubscribe(state: &AppState, input: Unsubscribe) -> Result<Unsubscribed, ApiError> {
    let (user_id, purpose) = verified(state, &input.token).await?;
    let (user_id, purpose) = (user_id.as_str(), purpose.as_str());
    let answer = Unsubscribed {
        purpose: purpose.to_owned(),
        granted: false,
    };
    let version = match accounts::accepted_policy_version(&state.store, user_id).await? {
        Some(version) => version,
        // No account any more: nothing is held, nothing will be sent.
        None => return Ok(answer),
    };
    let record = ConsentRecord::new(
        user_id,
        purpose,
        false,
        &version,
        ConsentSource::Unsubscribe,
        state.clock.now(),
    );
    match consent::record(&state.store, std::slice::from_ref(&record)).await {
        Ok(()) | Err(StoreError::KeyDestroyed) => {}
        Err(error) => return Err(error.into()),
    }
    tracing::info!(purpose = %purpose, "unsubscribed");
    Ok(answer)
}

/// The campaigns that went to `user_id` (their export and inventory).
pub async fn delivered_to(state: &AppState, user_id: &str) -> Result<Vec<CampaignDelivery>, StoreError> {
    Ok(state
        .store
        .query::<CampaignDelivery>(&user_partition(user_id), "CAMPAIGN#", 10_000)
        .await?
        .into_iter()
        .map(|found| found.record)
        .collect())
}
