//! Support and information requests: the policy collects personal data when a person "contact[s]
//! customer support, or request[s] more information", and answers by e-mail. This module owns the
//! support inquiry record from its arrival to its deletion.
//!
//! - **Where it lives.** A signed-in user's inquiry sits in their own partition (`USER#<id>`), under
//!   their key: it is part of their export and inventory and is erased with them. An anonymous one sits
//!   under a keyed hash of the sender's e-mail (`INQUIRER#<hmac>`), so a privacy request made later by
//!   the holder of that address finds it ([`adopt_anonymous`] moves it into their partition first).
//! - **Who may see it.** The `support` group lists, reads, answers and closes; the privacy officers see
//!   the reports about a minor's data, and are mailed when one arrives. An anonymous sender's name and
//!   address are their word only: the staff view says so, and an answer goes only to that address.
//! - **Its clock.** Closing starts its retention (2 years); the hourly run closes an inquiry nobody
//!   touched for [`AUTO_CLOSE_UNANSWERED_DAYS`] (open) or [`AUTO_CLOSE_ANSWERED_DAYS`] (answered).
//! - **Mail.** Mail to the support address arrives through `mailbox` ([`receive_mail`]): an
//!   inquiry, and the written privacy request it asks for.
//! - **Abuse.** The anonymous route is rate-limited per IP by the router and per address here; the
//!   acknowledgement mailed to the given address never repeats the message, so the form cannot carry
//!   someone else's words to a stranger.

use edge::auth::{Caller, Role};
use edge::error::ApiError;
use edge::rate_limit::{Limit, RouteLimits};
use edge::validation::Validator;
use jiff::{SignedDuration, Timestamp};
use platform::AppState;
use platform::keys::{due_day_partition, sortable_time, user_partition};
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record, StoreError, Versioned};
use serde::{Deserialize, Serialize};
use sha2::Digest;

mod mailbox;
pub use mailbox::{
    AddressConfirmation, InboundMail, MailOutcome, classify, confirm_address_request, receive_mail,
};

/// Sort-key prefix of an inquiry, in either partition.
pub const INQUIRY_PREFIX: &str = "INQUIRY#";
/// Partition prefix of an anonymous sender's inquiries (a keyed hash of their e-mail follows).
pub const ANONYMOUS_PARTITION_PREFIX: &str = "INQUIRER#";
/// An open inquiry nobody answered is closed by the hourly run after this many days.
pub const AUTO_CLOSE_UNANSWERED_DAYS: i64 = 90;
/// An answered inquiry with no further activity is closed by the hourly run after this many days.
pub const AUTO_CLOSE_ANSWERED_DAYS: i64 = 30;
/// Who closed an inquiry the hourly run closed.
pub const RUN_ACTOR: &str = "support-run";
/// How many inquiries one address may send anonymously per day.
const ANONYMOUS_PER_ADDRESS: RouteLimits = RouteLimits {
    group: "support-address",
    per_ip: Limit {
        max: 0,
        window_seconds: 86_400,
    },
    per_account: Limit {
        max: 5,
        window_seconds: 86_400,
    },
};
/// How many messages one address may send a day in mail that SES's checks prove came from it (DKIM or
/// SPF): counted apart from the form and from unproven mail, so forged mail in someone's name cannot
/// use up their day and have their real request dropped.
const PROVEN_MAIL_PER_ADDRESS: RouteLimits = RouteLimits {
    group: "support-address-proven-mail",
    per_ip: Limit {
        max: 0,
        window_seconds: 86_400,
    },
    per_account: Limit {
        max: 5,
        window_seconds: 86_400,
    },
};
const MESSAGE_MAX: usize = 5000;

/// What an inquiry is about; `minor_data` reports a minor's data (the policy asks for such reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    General,
    /// A request for more information about the service.
    Information,
    Booking,
    Billing,
    Account,
    Privacy,
    /// A report that we hold data about someone under 18: flagged for the privacy officers.
    MinorData,
}

/// Where an inquiry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InquiryStatus {
    /// Waiting for support.
    Open,
    /// Support answered; closed by staff, or by the hourly run after a quiet month.
    Answered,
    /// Done; its retention period runs from here.
    Closed,
}

impl InquiryStatus {
    fn name(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Answered => "ANSWERED",
            Self::Closed => "CLOSED",
        }
    }
}

/// How an inquiry reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Through the API (the apps' contact form).
    #[default]
    Api,
    /// By mail to the support address.
    Email,
}

/// One answer from support, as mailed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub answered_by: String,
    pub answered_at: Timestamp,
    pub message: String,
    /// Whether the mail went out (an address can bounce; the answer is kept either way).
    pub mailed: bool,
}

/// A support inquiry (the record this module owns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inquiry {
    /// `u.<user id>.<uuid>` or `a.<address hash>.<uuid>`: the id says where the record is.
    pub inquiry_id: String,
    /// The signed-in sender; `None` for an anonymous one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The anonymous sender's address, as a keyed hash (the partition key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inquirer_hash: Option<String>,
    /// The anonymous sender's name (their word); a signed-in user's comes from their account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The anonymous sender's address; a signed-in user is answered at their verified address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    pub topic: Topic,
    pub message: String,
    pub minor_report: bool,
    #[serde(default)]
    pub channel: Channel,
    pub status: InquiryStatus,
    #[serde(default)]
    pub answers: Vec<Answer>,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<String>,
    /// `SUPPORT#OPEN` or `SUPPORT#ANSWERED`: support's queue (closed inquiries leave it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi1sk: Option<String>,
    /// The due-date index entry that brings a quiet inquiry back to the hourly run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_day: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<i64>,
}

/// Where an inquiry id says its record is.
enum Location {
    User(String),
    Anonymous(String),
}

fn parse_id(inquiry_id: &str) -> Option<(Location, &str)> {
    let (scope, rest) = inquiry_id.split_once('.')?;
    let (owner, local) = rest.rsplit_once('.')?;
    let well_formed = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !well_formed(owner) || !well_formed(local) {
        return None;
    }
    match scope {
        "u" => Some((Location::User(owner.to_owned()), local)),
        "a" => Some((Location::Anonymous(owner.to_owned()), local)),
        _ => None,
    }
}

fn key_of_id(inquiry_id: &str) -> Option<ItemKey> {
    let (location, local) = parse_id(inquiry_id)?;
    let pk = match location {
        Location::User(user_id) => user_partition(&user_id),
        Location::Anonymous(hash) => format!("{ANONYMOUS_PARTITION_PREFIX}{hash}"),
    };
    Some(ItemKey::new(pk, format!("{INQUIRY_PREFIX}{local}")))
}

impl Inquiry {
    /// Sets the queue and due-date index attributes from the status and dates.
    fn index(&mut self) {
        let last_activity = self
            .answers
            .last()
            .map_or(self.created_at, |answer| answer.answered_at);
        let due = match self.status {
            InquiryStatus::Open => {
                Some(last_activity + SignedDuration::from_hours(24 * AUTO_CLOSE_UNANSWERED_DAYS))
            }
            InquiryStatus::Answered => {
                Some(last_activity + SignedDuration::from_hours(24 * AUTO_CLOSE_ANSWERED_DAYS))
            }
            InquiryStatus::Closed => None,
        };
        let queued = self.status != InquiryStatus::Closed;
        self.gsi1pk = queued.then(|| format!("SUPPORT#{}", self.status.name()));
        self.gsi1sk = queued.then(|| format!("{}#{}", sortable_time(self.created_at), self.inquiry_id));
        self.due_day = due.map(|at| due_day_partition(at.to_zoned_datetime(jiff::tz::TimeZone::UTC).date()));
        self.due_at = due.map(|at| at.as_second());
    }
}

impl Record for Inquiry {
    const TYPE: &'static ItemType = &schema::SUPPORT_INQUIRY;

    fn key(&self) -> ItemKey {
        key_of_id(&self.inquiry_id).unwrap_or_else(|| ItemKey::new(String::new(), String::new()))
    }

    fn retention_start(&self) -> Option<Timestamp> {
        self.closed_at
    }
}

/// The body of the anonymous `POST /v1/support/inquiries`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnonymousInquiryInput {
    pub name: String,
    pub email: String,
    #[serde(default)]
    pub phone: Option<String>,
    pub topic: Topic,
    pub message: String,
}

/// The body of `POST /v1/me/support/inquiries`: no name or address, those are the account's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedInInquiryInput {
    #[serde(default)]
    pub phone: Option<String>,
    pub topic: Topic,
    pub message: String,
}

/// What the sender learns: the reference and that the answer comes by mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    pub inquiry_id: String,
    pub status: InquiryStatus,
    pub created_at: Timestamp,
    pub answered_by: &'static str,
}

/// An inquiry as support staff and its signed-in sender see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InquiryView {
    pub inquiry_id: String,
    /// `account` (a signed-in user: verified) or `unverified` (an anonymous sender's own word).
    pub sender: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    pub topic: Topic,
    pub message: String,
    pub minor_report: bool,
    pub channel: Channel,
    pub status: InquiryStatus,
    pub answers: Vec<Answer>,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Timestamp>,
    /// When the record will be deleted (closed inquiries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_until: Option<Timestamp>,
}

impl From<Inquiry> for InquiryView {
    fn from(inquiry: Inquiry) -> Self {
        let kept_until = <Inquiry as Record>::TYPE
            .retention
            .expires_at(inquiry.closed_at)
            .and_then(|second| Timestamp::from_second(second).ok());
        Self {
            // A signed-in sender stores no name or address; one that does (an anonymous inquiry,
            // even once joined to an account) carries only the sender's word.
            sender: if inquiry.user_id.is_some() && inquiry.email.is_none() {
                "account"
            } else {
                "unverified"
            },
            inquiry_id: inquiry.inquiry_id,
            user_id: inquiry.user_id,
            name: inquiry.name,
            email: inquiry.email,
            phone: inquiry.phone,
            topic: inquiry.topic,
            message: inquiry.message,
            minor_report: inquiry.minor_report,
            channel: inquiry.channel,
            status: inquiry.status,
            answers: inquiry.answers,
            created_at: inquiry.created_at,
            closed_at: inquiry.closed_at,
            kept_until,
        }
    }
}

fn validate_message(v: &mut Validator, message: &str, phone: Option<&str>) {
    v.text("/message", message, MESSAGE_MAX);
    if let Some(phone) = phone {
        v.phone("/phone", phone);
    }
}

fn new_inquiry(
    inquiry_id: String,
    topic: Topic,
    message: &str,
    phone: Option<String>,
    now: Timestamp,
) -> Inquiry {
    let mut inquiry = Inquiry {
        inquiry_id,
        user_id: None,
        inquirer_hash: None,
        name: None,
        email: None,
        phone: phone.map(|p| p.trim().to_owned()),
        topic,
        message: message.trim().to_owned(),
        minor_report: topic == Topic::MinorData,
        channel: Channel::Api,
        status: InquiryStatus::Open,
        answers: Vec::new(),
        created_at: now,
        closed_at: None,
        closed_by: None,
        gsi1pk: None,
        gsi1sk: None,
        due_day: None,
        due_at: None,
    };
    inquiry.index();
    inquiry
}

fn receipt(inquiry: &Inquiry) -> Receipt {
    Receipt {
        inquiry_id: inquiry.inquiry_id.clone(),
        status: inquiry.status,
        created_at: inquiry.created_at,
        answered_by: "e-mail",
    }
}

/// `POST /v1/support/inquiries` (no sign-in): stores the inquiry under the sender's address hash,
/// acknowledges it to that address, and flags a report about a minor to the privacy officers.
pub async fn create_anonymous(state: &AppState, input: AnonymousInquiryInput) -> Result<Receipt, ApiError> {
    let mut v = Validator::new();
    v.text("/name", &input.name, 200);
    v.email("/email", &input.email);
    validate_message(&mut v, &input.message, input.phone.as_deref());
    v.finish()?;
    let hash = state.lookup.email_hash(&input.email).await?;
    edge::rate_limit::check(state, ANONYMOUS_PER_ADDRESS, None, Some(&hash)).await?;
    let now = state.clock.now();
    let id = format!("a.{hash}.{}", uuid::Uuid::new_v4());
    let mut inquiry = new_inquiry(id, input.topic, &input.message, input.phone, now);
    inquiry.inquirer_hash = Some(hash);
    inquiry.name = Some(input.name.trim().to_owned());
    inquiry.email = Some(input.email.trim().to_owned());
    state.store.create(&inquiry).await?;
    tracing::info!(topic = ?inquiry.topic, signed_in = false, "support inquiry received");
    acknowledge(state, input.email.trim(), &inquiry.inquiry_id).await;
    flag_minor_report(state, &inquiry).await;
    Ok(receipt(&inquiry))
}

/// `POST /v1/me/support/inquiries`: stores the inquiry in the caller's partition; the answer goes to
/// the account's verified address.
pub async fn create_signed_in(
    state: &AppState,
    caller: &Caller,
    input: SignedInInquiryInput,
) -> Result<Receipt, ApiError> {
    let mut v = Validator::new();
    validate_message(&mut v, &input.message, input.phone.as_deref());
    v.finish()?;
    let now = state.clock.now();
    let id = format!("u.{}.{}", caller.user_id, uuid::Uuid::new_v4());
    if parse_id(&id).is_none() {
        return Err(ApiError::Forbidden("this sign-in has no usable subject".into()));
    }
    let mut inquiry = new_inquiry(id, input.topic, &input.message, input.phone, now);
    inquiry.user_id = Some(caller.user_id.clone());
    // Only registration makes a user's key: a user who signed in but never registered (or was
    // erased) has no account to keep the inquiry under, and may write anonymously instead.
    state.store.create(&inquiry).await.map_err(|error| match error {
        StoreError::KeyDestroyed => ApiError::NotFound("account"),
        other => other.into(),
    })?;
    tracing::info!(topic = ?inquiry.topic, signed_in = true, "support inquiry received");
    flag_minor_report(state, &inquiry).await;
    Ok(receipt(&inquiry))
}

/// `GET /v1/me/support/inquiries`: the caller's own inquiries with support's answers, newest first.
pub async fn list_mine(state: &AppState, caller: &Caller) -> Result<Vec<InquiryView>, ApiError> {
    let mut items: Vec<Inquiry> = state
        .store
        .query::<Inquiry>(&user_partition(&caller.user_id), INQUIRY_PREFIX, 500)
        .await?
        .into_iter()
        .map(|v| v.record)
        .collect();
    items.sort_by_key(|i| std::cmp::Reverse(i.created_at));
    Ok(items.into_iter().map(InquiryView::from).collect())
}

/// Support's queue, for `GET /v1/support/inquiries?status=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueFilter {
    Open,
    Answered,
}

impl QueueFilter {
    /// The name in `?status=` (and in the cursor's scope).
    pub fn name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Answered => "answered",
        }
    }
}

/// `GET /v1/support/inquiries` (support: every queued inquiry; privacy officers: the reports about
/// minors), oldest first: one page of at most `limit` read after the sort key `after`, with the sort
/// key to continue after when more may follow. The queue grows with what anonymous senders send, so
/// it is never read whole. (A privacy officer's page holds the reports among those read: it may be
/// shorter than `limit`, even empty, with more to follow.)
pub async fn list_queue(
    state: &AppState,
    caller: &Caller,
    filter: QueueFilter,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<InquiryView>, Option<String>), ApiError> {
    let minors_only = staff_scope(caller)?;
    let status = match filter {
        QueueFilter::Open => InquiryStatus::Open,
        QueueFilter::Answered => InquiryStatus::Answered,
    };
    let (page, last) = state
        .store
        .query_gsi1_after::<Inquiry>(&format!("SUPPORT#{}", status.name()), after, limit)
        .await?;
    let items = page
        .into_iter()
        .map(|v| v.record)
        .filter(|i| !minors_only || i.minor_report)
        .map(InquiryView::from)
        .collect();
    Ok((items, last))
}

/// Whether the caller is staff here, and if they see reports about minors only (privacy officers).
fn staff_scope(caller: &Caller) -> Result<bool, ApiError> {
    if caller.has(Role::Support) {
        Ok(false)
    } else if caller.has(Role::PrivacyOfficer) {
        Ok(true)
    } else {
        Err(ApiError::Forbidden(
            "only support staff (and privacy officers, for reports about minors) see inquiries".into(),
        ))
    }
}

async fn load(state: &AppState, inquiry_id: &str) -> Result<Versioned<Inquiry>, ApiError> {
    let key = key_of_id(inquiry_id).ok_or(ApiError::NotFound("support inquiry"))?;
    state
        .store
        .get::<Inquiry>(&key)
        .await?
        .filter(|v| v.record.inquiry_id == inquiry_id)
        .ok_or(ApiError::NotFound("support inquiry"))
}

/// The report about a minor's data that `inquiry_id` names, when support received one (what a
/// minor's deletion must answer); `None` for an id that names nothing, or another inquiry.
pub async fn minor_report_case(
    state: &AppState,
    inquiry_id: &str,
) -> Result<Option<crate::privacy::requests::MinorReportCase>, ApiError> {
    let Some(key) = key_of_id(inquiry_id) else {
        return Ok(None);
    };
    let found = state
        .store
        .get::<Inquiry>(&key)
        .await?
        .is_some_and(|v| v.record.inquiry_id == inquiry_id && v.record.minor_report);
    Ok(found.then(|| crate::privacy::requests::MinorReportCase::confirmed(inquiry_id)))
}

/// `GET /v1/support/inquiries/{id}` (support; privacy officers for reports about minors).
pub async fn read(state: &AppState, caller: &Caller, inquiry_id: &str) -> Result<InquiryView, ApiError> {
    let minors_only = staff_scope(caller)?;
    let inquiry = load(state, inquiry_id).await?.record;
    if minors_only && !inquiry.minor_report {
        return Err(ApiError::NotFound("support inquiry"));
    }
    Ok(inquiry.into())
}

/// The body of `POST /v1/support/inquiries/{id}/answers`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerInput {
    pub message: String,
}

/// `POST /v1/support/inquiries/{id}/answers` (support): mails the answer (replies come back to the
/// support address) and keeps it with the inquiry.
pub async fn answer(
    state: &AppState,
    caller: &Caller,
    inquiry_id: &str,
    input: AnswerInput,
) -> Result<InquiryView, ApiError> {
    caller.require(Role::Support)?;
    let mut v = Validator::new();
    v.text("/message", &input.message, MESSAGE_MAX);
    v.finish()?;
    let current = load(state, inquiry_id).await?;
    if current.record.status == InquiryStatus::Closed {
        return Err(ApiError::Conflict("the inquiry is closed".into()));
    }
    let address = match (&current.record.email, &current.record.user_id) {
        (Some(email), _) => Some(email.clone()),
        (None, Some(user_id)) => state
            .directory
            .user(user_id)
            .await
            .ok()
            .flatten()
            .and_then(|user| user.email),
        (None, None) => None,
    };
    // The answer is recorded first, at the version read: of two agents answering at once, one
    // answer is recorded and one mail sent; the other agent gets a 409 and reads the inquiry again.
    let mut next = current.record;
    next.answers.push(Answer {
        answered_by: caller.user_id.clone(),
        answered_at: state.clock.now(),
        message: input.message.trim().to_owned(),
        mailed: false,
    });
    next.status = InquiryStatus::Answered;
    next.index();
    let version = match state.store.replace(&next, current.version).await {
        Ok(version) => version,
        Err(StoreError::ConditionFailed) => {
            return Err(ApiError::Conflict(
                "another answer or change was recorded meanwhile: read the inquiry again".into(),
            ));
        }
        Err(error) => return Err(error.into()),
    };
    let mail = crate::mail::inquiry_answered(inquiry_id, input.message.trim());
    let mailed = match &address {
        Some(address) => match crate::mail::send_service_from_support(state, address, &mail).await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(error = %error, "support answer not mailed");
                false
            }
        },
        None => {
            tracing::warn!("the inquirer has no address: support answer kept, not mailed");
            false
        }
    };
    if mailed {
        if let Some(answer) = next.answers.last_mut() {
            answer.mailed = true;
        }
        // Best effort: a change in between keeps the answer, marked not mailed.
        if let Err(error) = state.store.replace(&next, version).await {
            tracing::warn!(error = %error, "support answer mailed, not marked so");
        }
    }
    Ok(next.into())
}

/// `POST /v1/support/inquiries/{id}/close` (support): closes it; its retention period starts.
pub async fn close(state: &AppState, caller: &Caller, inquiry_id: &str) -> Result<InquiryView, ApiError> {
    caller.require(Role::Support)?;
    let current = load(state, inquiry_id).await?;
    if current.record.status == InquiryStatus::Closed {
        return Err(ApiError::Conflict("the inquiry is already closed".into()));
    }
    let closed = closed(current.record, &caller.user_id, state.clock.now());
    match state.store.replace(&closed, current.version).await {
        Ok(_) => Ok(closed.into()),
        Err(StoreError::ConditionFailed) => Err(ApiError::Conflict(
            "the inquiry changed meanwhile: read it again".into(),
        )),
        Err(error) => Err(error.into()),
    }
}

fn closed(mut inquiry: Inquiry, by: &str, now: Timestamp) -> Inquiry {
    inquiry.status = InquiryStatus::Closed;
    inquiry.closed_at = Some(now);
    inquiry.closed_by = Some(by.to_owned());
    inquiry.index();
    inquiry
}

/// The hourly run's step for one inquiry in the due-date index: closes it when it has been quiet
/// long enough (a version-conditioned write, so a staff action in between wins). Returns whether it
/// closed it.
pub async fn close_if_quiet(state: &AppState, key: &ItemKey) -> Result<bool, ApiError> {
    let Some(current) = state.store.get::<Inquiry>(key).await? else {
        return Ok(false);
    };
    let now = state.clock.now();
    let due = current.record.due_at.is_some_and(|due| due <= now.as_second());
    if current.record.status == InquiryStatus::Closed || !due {
        return Ok(false);
    }
    let closed = closed(current.record, RUN_ACTOR, now);
    match state.store.replace(&closed, current.version).await {
        Ok(_) => Ok(true),
        Err(StoreError::ConditionFailed) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// Moves up to `max` inquiries sent anonymously from the account's verified address into the user's
/// partition (under their key), so that their access export shows them and their erasure deletes
/// them. The privacy worker calls it before an export or an erasure; returns how many it moved and
/// whether more wait. The address is the one the user's account locked at registration, never a
/// client's word.
pub async fn adopt_anonymous(state: &AppState, user_id: &str, max: usize) -> Result<(usize, bool), ApiError> {
    let address = match state.directory.user(user_id).await {
        Ok(user) => user.and_then(|u| u.email),
        Err(_) => return Err(ApiError::Internal("the user pool did not answer".into())),
    };
    let Some(address) = address else {
        return Ok((0, false));
    };
    let hash = state.lookup.email_hash(&address).await?;
    // The user pool's current address is not proof enough (a user can change it): the address must be
    // the one registration locked for this user after the user pool verified it.
    if crate::accounts::owner_of_email(&state.store, &hash)
        .await?
        .as_deref()
        != Some(user_id)
    {
        return Ok((0, false));
    }
    let pk = format!("{ANONYMOUS_PARTITION_PREFIX}{hash}");
    let found = state.store.query::<Inquiry>(&pk, INQUIRY_PREFIX, max + 1).await?;
    let more = found.len() > max;
    let mut moved = 0;
    for anonymous in found.into_iter().take(max) {
        let old_key = anonymous.record.key();
        let local = old_key
            .sk
            .strip_prefix(INQUIRY_PREFIX)
            .unwrap_or_default()
            .to_owned();
        let mut adopted = anonymous.record;
        adopted.inquiry_id = format!("u.{user_id}.{local}");
        adopted.user_id = Some(user_id.to_owned());
        adopted.inquirer_hash = None;
        adopted.index();
        let writes = vec![
            state.store.write_create(&adopted)?,
            state.store.write_delete(&old_key)?,
        ];
        match state.store.transact(writes).await {
            Ok(()) => moved += 1,
            // Moved already by an earlier, interrupted slice.
            Err(StoreError::ConditionFailed) => state.store.delete(&old_key).await?,
            Err(error) => return Err(error.into()),
        }
    }
    if moved > 0 {
        tracing::info!(moved, "anonymous inquiries joined to the account");
    }
    Ok((moved, more))
}

/// Acknowledges an inquiry to the address it came from: its reference, never its words. A failure is
/// logged (never the address) and costs nothing else.
async fn acknowledge(state: &AppState, address: &str, inquiry_id: &str) {
    let mail = crate::mail::inquiry_received(inquiry_id);
    if let Err(error) = crate::mail::send_service(state, address, &mail).await {
        tracing::warn!(error = %error, "inquiry acknowledgement not sent");
    }
}

/// Mails the privacy officers that a report about a minor's data arrived (its id only).
async fn flag_minor_report(state: &AppState, inquiry: &Inquiry) {
    if !inquiry.minor_report {
        return;
    }
    let mail = crate::mail::minor_report_received(&inquiry.inquiry_id);
    let group = Role::PrivacyOfficer.group_name();
    for address in platform::directory::group_addresses(state.directory.as_ref(), group).await {
        if let Err(error) = crate::mail::send_service(state, &address, &mail).await {
            tracing::warn!(error = %error, "minor report alert not sent");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_names_its_partition_and_nothing_else() {
        let key = key_of_id("u.0b1c-22.7f3e-11").expect("a user's inquiry");
        assert_eq!(key.pk, "USER#0b1c-22");
        assert_eq!(key.sk, "INQUIRY#7f3e-11");
        let key = key_of_id("a.ab12.7f3e").expect("an anonymous inquiry");
        assert_eq!(key.pk, "INQUIRER#ab12");
        for forged in [
            "x.a.b",
            "u..b",
            "u.a.",
            "u.a#b.c",
            "u.USER#a.c",
            "a.b",
            "",
            "u.a/b.c",
        ] {
            assert!(key_of_id(forged).is_none(), "{forged} is refused");
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    #[test]
    fn a_quiet_inquiry_falls_due_and_a_closed_one_leaves_the_queue() {
        let mut inquiry = new_inquiry(
            "u.a.b".into(),
            Topic::MinorData,
            " hello ",
            None,
            at("2026-12-01T00:00:00Z"),
        );
        assert!(inquiry.minor_report);
        assert_eq!(inquiry.message, "hello");
        assert_eq!(inquiry.gsi1pk.as_deref(), Some("SUPPORT#OPEN"));
        assert_eq!(inquiry.due_at, Some(at("2027-03-01T00:00:00Z").as_second()));
        inquiry.answers.push(Answer {
            answered_by: "s".into(),
            answered_at: at("2026-12-10T00:00:00Z"),
            message: "m".into(),
            mailed: true,
        });
        inquiry.status = InquiryStatus::Answered;
        inquiry.index();
        assert_eq!(inquiry.due_at, Some(at("2027-01-09T00:00:00Z").as_second()));
        assert_eq!(inquiry.due_day.as_deref(), Some("DUE#2027-01"));
        let done = closed(inquiry, "s", at("2026-12-11T00:00:00Z"));
        assert_eq!((done.gsi1pk.as_deref(), done.due_at), (None, None));
        assert_eq!(done.retention_start(), Some(at("2026-12-11T00:00:00Z")));
    }
}
