//! Money through the payment processor (Stripe, behind `platform::processor`): the customer's record
//! there, the card saved at booking and the hold (authorisation) of each service request, its capture
//! when the request is billed, its release or refund when it is not, and reconciling what the
//! processor reports.
//!
//! Stripe lets an uncaptured hold lapse after 7 days, so a request is held at booking only when it
//! starts within [`HOLD_WITHIN_DAYS`]; a later one has its card saved (attached, checked by the
//! issuer) and the scheduled run holds it [`HOLD_WITHIN_DAYS`] before the start ([`hold_saved`]). A
//! request billed without a hold (the run was late, the hold was declined or lapsed) is charged
//! off-session. A decline at booking books
//! nothing; a decline at billing is the invoice's `payment_failed`.
//!
//! The policy lets payment data go to the designated processor "for purposes of processing and
//! completing a requested transaction payment", so the processor gets our pseudonymous user id and
//! the amounts, never a name, an address or an e-mail. Its customer and intent ids are personal data
//! here (encrypted). Every call that moves money carries an idempotency key derived from our record
//! (`authorize-<request>`, `capture-<request>`, …), and every step first asks the processor where the
//! intent stands, so a retried call never charges twice even against a processor that ignores the
//! keys (localstripe does).
//!
//! This module owns `processor_customer` and `payment_charge`; invoices (and their payment state) are
//! `billing`'s, which calls [`capture`] and records the [`Settlement`].

// The payment purpose's module (`purposes::Original::Payment`): the one place the processor,
// which receives personal data, is called from (clippy.toml refuses every other caller).
#![allow(clippy::disallowed_methods)]

use edge::error::ApiError;
use jiff::Timestamp;
use platform::AppState;
use platform::keys::user_partition;
use platform::processor::{IntentRequest, IntentStatus, ProcessorError};
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record, StoreError, Versioned};
use serde::{Deserialize, Serialize};

/// The customer's id at the processor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessorCustomer {
    pub user_id: String,
    /// `cus_…`.
    pub customer_id: String,
    pub created_at: Timestamp,
}

impl Record for ProcessorCustomer {
    const TYPE: &'static ItemType = &schema::PROCESSOR_CUSTOMER;

    fn key(&self) -> ItemKey {
        ProcessorCustomer::key_of(&self.user_id)
    }
}

impl ProcessorCustomer {
    /// Where the processor customer of `user_id` is kept.
    pub fn key_of(user_id: &str) -> ItemKey {
        ItemKey::new(user_partition(user_id), "PROCESSOR#CUSTOMER".into())
    }
}

/// Where a request's payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeStatus {
    /// The card is saved for this request; nothing is held (it starts more than
    /// [`HOLD_WITHIN_DAYS`] ahead, or its hold lapsed): it is charged off-session when billed.
    Saved,
    /// Authorised at booking (manual capture): held on the card, not taken.
    Authorized,
    /// Billed: the invoice total (or the cancellation fee) was taken; any rest released.
    Captured,
    /// Not billed: the hold was released (cancelled without fee, rejected, expired), or the processor
    /// let it lapse (`failure_code` says so).
    Released,
    /// Taken and then given back (an agency's cancellation after a capture).
    Refunded,
    /// Billing failed: the hold had lapsed, or the charge of a difference was declined.
    Failed,
}

/// The payment of one service request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    pub customer_user_id: String,
    pub request_id: String,
    pub status: ChargeStatus,
    /// The hold's payment intent (`pi_…`); empty while nothing was held.
    #[serde(default)]
    pub intent_id: String,
    /// The saved payment method (`pm_…`, attached to the customer): what billing charges off-session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
    pub authorized_cents: i64,
    #[serde(default)]
    pub captured_cents: i64,
    #[serde(default)]
    pub refunded_cents: i64,
    /// The off-session charge of what the invoice exceeded the authorisation by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_intent_id: Option<String>,
    #[serde(default)]
    pub extra_cents: i64,
    /// The processor's code when billing failed or a hold lapsed (`card_declined`, `authorization_expired`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_code: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Record for Charge {
    const TYPE: &'static ItemType = &schema::PAYMENT_CHARGE;

    fn key(&self) -> ItemKey {
        Charge::key_of(&self.customer_user_id, &self.request_id)
    }

    fn retention_start(&self) -> Option<Timestamp> {
        Some(self.created_at)
    }
}

impl Charge {
    /// The charge of a request just booked: `hold` (intent id, cents) when it was authorised, else the
    /// card is only saved.
    fn booked(
        customer_user_id: &str,
        request_id: &str,
        payment_method: &str,
        hold: Option<(String, i64)>,
        now: Timestamp,
    ) -> Self {
        let (status, intent_id, authorized_cents) = match hold {
            Some((intent_id, cents)) => (ChargeStatus::Authorized, intent_id, cents),
            None => (ChargeStatus::Saved, String::new(), 0),
        };
        Charge {
            customer_user_id: customer_user_id.to_owned(),
            request_id: request_id.to_owned(),
            status,
            intent_id,
            payment_method: Some(payment_method.to_owned()),
            authorized_cents,
            captured_cents: 0,
            refunded_cents: 0,
            extra_intent_id: None,
            extra_cents: 0,
            failure_code: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Where the charge of `request_id`, booked by `customer_user_id`, is kept.
    pub fn key_of(customer_user_id: &str, request_id: &str) -> ItemKey {
        ItemKey::new(user_partition(customer_user_id), format!("CHARGE#{request_id}"))
    }

    /// What billing this charge came to, for its invoice.
    pub fn settlement(&self) -> Settlement {
        let paid_cents = self.captured_cents + self.extra_cents;
        match (self.status, &self.failure_code) {
            (ChargeStatus::Captured, _) => Settlement::Paid { paid_cents },
            (ChargeStatus::Failed | ChargeStatus::Released, Some(code)) => Settlement::Failed {
                paid_cents,
                code: code.clone(),
            },
            (ChargeStatus::Authorized | ChargeStatus::Saved, _) => Settlement::Pending,
            (ChargeStatus::Failed | ChargeStatus::Released, None) => Settlement::Failed {
                paid_cents,
                code: "authorization_released".into(),
            },
            (ChargeStatus::Refunded, _) => Settlement::Refunded {
                refunded_cents: self.refunded_cents,
            },
        }
    }
}

/// What billing a request came to at the processor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Not billed yet (authorised only).
    Pending,
    /// The invoice total was taken.
    Paid { paid_cents: i64 },
    /// Billing failed: `paid_cents` were taken, the rest is still owed.
    Failed { paid_cents: i64, code: String },
    /// Taken and given back.
    Refunded { refunded_cents: i64 },
}

/// How close to its start a request is held on the card at booking: Stripe lets a hold lapse after
/// 7 days, so one a day shorter.
pub const HOLD_WITHIN_DAYS: i64 = 6;

/// One request of a booking to authorise.
#[derive(Debug, Clone)]
pub struct ToAuthorize<'a> {
    pub request_id: &'a str,
    pub amount_cents: i64,
    pub starts_at: Timestamp,
}

/// When the scheduled run must hold the card for a request starting at `starts_at`, booked at `now`:
/// [`HOLD_WITHIN_DAYS`] before the start, or `None` when the booking holds it at once.
pub fn hold_due(starts_at: Timestamp, now: Timestamp) -> Option<Timestamp> {
    let due = starts_at - jiff::SignedDuration::from_hours(24 * HOLD_WITHIN_DAYS);
    (due > now).then_some(due)
}

/// The scheduled run, [`HOLD_WITHIN_DAYS`] before the start: holds `amount_cents` on the card saved
/// at booking, so a decline shows before the event rather than at billing. A decline keeps the card
/// saved with the code (billing tries again and the invoice says what happened); any other processor
/// error is returned, and the run tries again next hour. Idempotent.
pub async fn hold_saved(
    state: &AppState,
    customer_user_id: &str,
    request_id: &str,
    amount_cents: i64,
) -> Result<ChargeStatus, ApiError> {
    let key = Charge::key_of(customer_user_id, request_id);
    let Some(Versioned {
        record: mut charge,
        version,
    }) = state.store.get::<Charge>(&key).await?
    else {
        return Ok(ChargeStatus::Released);
    };
    if charge.status != ChargeStatus::Saved || charge.failure_code.is_some() {
        return Ok(charge.status);
    }
    let (Some(method), Some(customer)) = (
        charge.payment_method.clone(),
        state
            .store
            .get::<ProcessorCustomer>(&ProcessorCustomer::key_of(customer_user_id))
            .await?
            .map(|v| v.record.customer_id),
    ) else {
        return Ok(charge.status);
    };
    match hold(
        state,
        customer_user_id,
        request_id,
        &customer,
        &method,
        amount_cents,
    )
    .await
    {
        Ok(intent_id) => {
            charge.status = ChargeStatus::Authorized;
            charge.intent_id = intent_id;
            charge.authorized_cents = amount_cents;
        }
        Err(ProcessorError::Declined { code }) => {
            tracing::info!(request_id = %request_id, "the saved card was declined for the hold");
            charge.failure_code = Some(code);
        }
        Err(error) => return Err(error.into()),
    }
    charge.updated_at = state.clock.now();
    match state.store.replace(&charge, version).await {
        Ok(_) => Ok(charge.status),
        Err(StoreError::ConditionFailed) => Ok(charge.status),
        Err(error) => Err(error.into()),
    }
}

/// Holds `amount_cents` on `method` for one request (manual capture, key `authorize-<request>`);
/// returns the intent id. An intent that needs a step from the customer (3-D Secure) is no hold: it
/// is cancelled and reported as a decline.
async fn hold(
    state: &AppState,
    customer_user_id: &str,
    request_id: &str,
    customer: &str,
    method: &str,
    amount_cents: i64,
) -> Result<String, ProcessorError> {
    let metadata = [("user_id", customer_user_id), ("request_id", request_id)];
    let intent = state
        .processor
        .create_intent(&IntentRequest {
            customer,
            payment_method: method,
            amount_cents,
            currency: CURRENCY,
            manual_capture: true,
            metadata: &metadata,
            idempotency_key: &format!("authorize-{request_id}"),
        })
        .await?;
    if intent.status == IntentStatus::RequiresCapture {
        return Ok(intent.id);
    }
    let _ = state
        .processor
        .cancel(&intent.id, &format!("release-{request_id}"))
        .await;
    Err(ProcessorError::Declined {
        code: "authentication_required".into(),
    })
}

/// The transaction writes that store a booking's charges (with the booking, all or nothing).
pub fn writes_for(state: &AppState, charges: &[Charge]) -> Result<Vec<platform::store::Write>, StoreError> {
    charges.iter().map(|c| state.store.write_create(c)).collect()
}

/// Creates the processor customer of `user_id`, who has none stored yet (a concurrent first booking
/// may store one first: that one stands).
async fn create_customer(state: &AppState, user_id: &str) -> Result<String, ApiError> {
    let key = ProcessorCustomer::key_of(user_id);
    let customer_id = state
        .processor
        .create_customer(user_id, &format!("customer-{user_id}"))
        .await?;
    let record = ProcessorCustomer {
        user_id: user_id.to_owned(),
        customer_id,
        created_at: state.clock.now(),
    };
    match state.store.create(&record).await {
        Ok(()) => Ok(record.customer_id),
        // A concurrent first booking stored one: that one stands. With the same idempotency key the
        // processor gave both the same customer; only a different one is ours to delete.
        Err(StoreError::ConditionFailed) => {
            let stored = state
                .store
                .get::<ProcessorCustomer>(&key)
                .await?
                .map(|v| v.record.customer_id)
                .ok_or_else(|| {
                    ApiError::Conflict("the payment profile is being created; try again".into())
                })?;
            if stored != record.customer_id
                && let Err(error) = state.processor.delete_customer(&record.customer_id).await
            {
                tracing::warn!(error = %error, "a duplicate processor customer was not deleted");
            }
            Ok(stored)
        }
        Err(error) => Err(error.into()),
    }
}

/// Authorises every request of a booking on the customer's payment method (manual capture: held,
/// not taken) and returns the charges for the booking's transaction to store. If any is declined,
/// the holds already taken are released and the decline is returned (402: nothing is booked).
/// `known_customer` is the processor customer id the caller read with its other items (`None`: the
/// customer has none yet, and one is created).
pub async fn authorize(
    state: &AppState,
    customer_user_id: &str,
    known_customer: Option<String>,
    series_id: &str,
    payment_method: &str,
    requests: &[ToAuthorize<'_>],
) -> Result<Vec<Charge>, ApiError> {
    let customer = match known_customer {
        Some(customer) => customer,
        None => create_customer(state, customer_user_id).await?,
    };
    let method = state
        .processor
        .attach_payment_method(payment_method, &customer, &format!("attach-{series_id}"))
        .await
        .map_err(|error| match error {
            // An unknown or foreign payment method is the client's error, not ours.
            ProcessorError::Refused { status: 404, .. } | ProcessorError::Refused { status: 400, .. } => {
                ApiError::Validation(vec![edge::error::FieldError {
                    pointer: "/payment/processor_token".into(),
                    detail: "the payment processor does not know this payment method".into(),
                }])
            }
            other => other.into(),
        })?;
    let now = state.clock.now();
    let hold_until = now + jiff::SignedDuration::from_hours(24 * HOLD_WITHIN_DAYS);
    let mut charges: Vec<Charge> = Vec::new();
    for request in requests {
        if request.starts_at > hold_until {
            charges.push(Charge::booked(
                customer_user_id,
                request.request_id,
                &method,
                None,
                now,
            ));
            continue;
        }
        let failure = match hold(
            state,
            customer_user_id,
            request.request_id,
            &customer,
            &method,
            request.amount_cents,
        )
        .await
        {
            Ok(intent_id) => {
                let held = Some((intent_id, request.amount_cents));
                charges.push(Charge::booked(
                    customer_user_id,
                    request.request_id,
                    &method,
                    held,
                    now,
                ));
                continue;
            }
            Err(error) => ApiError::from(error),
        };
        release_unstored(state, &charges).await;
        return Err(failure);
    }
    Ok(charges)
}

/// Releases holds that were taken but never stored (the booking failed after authorising): best
/// effort, logged, because the booking's own error is what the caller must see.
pub async fn release_unstored(state: &AppState, charges: &[Charge]) {
    for charge in charges.iter().filter(|c| c.status == ChargeStatus::Authorized) {
        if let Err(error) = state
            .processor
            .cancel(&charge.intent_id, &format!("release-{}", charge.request_id))
            .await
        {
            tracing::warn!(error = %error, request_id = %charge.request_id, "an unstored authorisation was not released");
        }
    }
}

/// Bills `total_cents` for a request: captures up to the held amount (the processor releases the rest
/// of the hold) and charges what the hold does not cover off-session on the saved card; with no hold
/// (a request booked far ahead, or a hold that lapsed) the whole total is charged off-session.
/// Idempotent: a charge already billed returns its settlement, and an intent the processor already
/// captured is recorded, not captured again. Only a decline is a final failure; any other processor
/// error leaves the charge as it was, to be billed again.
pub async fn capture(
    state: &AppState,
    customer_user_id: &str,
    request_id: &str,
    total_cents: i64,
) -> Result<Settlement, ApiError> {
    let key = Charge::key_of(customer_user_id, request_id);
    let Some(Versioned {
        record: mut charge,
        version,
    }) = state.store.get::<Charge>(&key).await?
    else {
        // Booked before payments were taken (or never authorised): owed, not charged.
        return Ok(Settlement::Failed {
            paid_cents: 0,
            code: "no_authorization".into(),
        });
    };
    if !matches!(charge.status, ChargeStatus::Authorized | ChargeStatus::Saved) {
        return Ok(charge.settlement());
    }
    let total_cents = total_cents.max(0);
    let mut payment_method = charge.payment_method.clone();
    if charge.status == ChargeStatus::Authorized {
        let take = total_cents.min(charge.authorized_cents);
        let intent = state.processor.intent(&charge.intent_id).await?;
        payment_method = payment_method.or(intent.payment_method.clone());
        charge.captured_cents = match intent.status {
            IntentStatus::RequiresCapture if take == 0 => {
                state
                    .processor
                    .cancel(&charge.intent_id, &format!("release-{request_id}"))
                    .await?;
                0
            }
            IntentStatus::RequiresCapture => {
                state
                    .processor
                    .capture(&charge.intent_id, take, &format!("capture-{request_id}"))
                    .await?;
                take
            }
            // Captured by an earlier try of this very step, whose record was lost.
            IntentStatus::Succeeded => take,
            // The hold lapsed: the whole total is charged off-session below.
            _ => 0,
        };
    }
    let rest = total_cents - charge.captured_cents;
    if rest > 0 {
        // `charge-…` when nothing was held, `extra-…` for what a hold did not cover.
        let purpose = if charge.captured_cents == 0 {
            "charge"
        } else {
            "extra"
        };
        match charge_off_session(state, &charge, payment_method.as_deref(), rest, purpose).await {
            Ok(intent_id) => {
                charge.extra_intent_id = Some(intent_id);
                charge.extra_cents = rest;
                charge.status = ChargeStatus::Captured;
            }
            Err(ProcessorError::Declined { code }) => {
                charge.status = ChargeStatus::Failed;
                charge.failure_code = Some(code);
            }
            Err(error) => {
                if charge.captured_cents > 0 {
                    // The capture stands and is recorded; the rest is tried again (same key).
                    charge.updated_at = state.clock.now();
                    let _ = state.store.replace(&charge, version).await;
                }
                return Err(error.into());
            }
        }
    } else {
        charge.status = ChargeStatus::Captured;
    }
    charge.updated_at = state.clock.now();
    match state.store.replace(&charge, version).await {
        Ok(_) => Ok(charge.settlement()),
        // Written meanwhile (a concurrent billing, a webhook): what is stored now stands.
        Err(StoreError::ConditionFailed) => Ok(state
            .store
            .get::<Charge>(&key)
            .await?
            .map(|v| v.record.settlement())
            .unwrap_or(charge.settlement())),
        Err(error) => Err(error.into()),
    }
}

/// Charges `cents` off-session on the saved payment method; returns the intent id.
async fn charge_off_session(
    state: &AppState,
    charge: &Charge,
    payment_method: Option<&str>,
    cents: i64,
    purpose: &str,
) -> Result<String, ProcessorError> {
    let method = payment_method.ok_or(ProcessorError::Declined {
        code: "no_payment_method".into(),
    })?;
    let customer = state
        .store
        .get::<ProcessorCustomer>(&ProcessorCustomer::key_of(&charge.customer_user_id))
        .await
        .map_err(|e| ProcessorError::Unavailable(e.to_string()))?
        .map(|v| v.record.customer_id)
        .ok_or(ProcessorError::Declined {
            code: "no_customer".into(),
        })?;
    let metadata = [
        ("user_id", charge.customer_user_id.as_str()),
        ("request_id", charge.request_id.as_str()),
    ];
    let intent = state
        .processor
        .create_intent(&IntentRequest {
            customer: &customer,
            payment_method: method,
            amount_cents: cents,
            currency: CURRENCY,
            manual_capture: false,
            metadata: &metadata,
            idempotency_key: &format!("{purpose}-{}", charge.request_id),
        })
        .await?;
    match intent.status {
        IntentStatus::Succeeded | IntentStatus::Processing => Ok(intent.id),
        _ => Err(ProcessorError::Declined {
            code: "authentication_required".into(),
        }),
    }
}

/// The currency every price is in.
pub const CURRENCY: &str = "usd";

/// Releases the hold of a request that will not be billed (cancelled without a fee, rejected,
/// expired unapproved, completed with nobody worked), or refunds what was taken (an agency's
/// cancellation after a capture). Idempotent; a request without a charge is no error. A record
/// changed meanwhile (a webhook) is read again and released from where it stands.
pub async fn release(state: &AppState, customer_user_id: &str, request_id: &str) -> Result<(), ApiError> {
    let key = Charge::key_of(customer_user_id, request_id);
    for _ in 0..3 {
        let Some(Versioned {
            record: mut charge,
            version,
        }) = state.store.get::<Charge>(&key).await?
        else {
            return Ok(());
        };
        match charge.status {
            ChargeStatus::Saved => charge.status = ChargeStatus::Released,
            ChargeStatus::Authorized => {
                let intent = state.processor.intent(&charge.intent_id).await?;
                match intent.status {
                    IntentStatus::RequiresCapture
                    | IntentStatus::RequiresPaymentMethod
                    | IntentStatus::RequiresConfirmation
                    | IntentStatus::RequiresAction => {
                        state
                            .processor
                            .cancel(&charge.intent_id, &format!("release-{request_id}"))
                            .await?;
                        charge.status = ChargeStatus::Released;
                    }
                    // Captured by a billing whose record was lost: given back.
                    IntentStatus::Succeeded => {
                        state
                            .processor
                            .refund(
                                &charge.intent_id,
                                intent.amount_cents,
                                &format!("refund-{request_id}"),
                            )
                            .await?;
                        charge.captured_cents = intent.amount_cents;
                        charge.refunded_cents = intent.amount_cents;
                        charge.status = ChargeStatus::Refunded;
                    }
                    _ => charge.status = ChargeStatus::Released,
                }
            }
            ChargeStatus::Captured | ChargeStatus::Failed
                if charge.captured_cents + charge.extra_cents > charge.refunded_cents =>
            {
                if charge.captured_cents > 0 {
                    state
                        .processor
                        .refund(
                            &charge.intent_id,
                            charge.captured_cents,
                            &format!("refund-{request_id}"),
                        )
                        .await?;
                }
                if let Some(extra) = charge.extra_intent_id.clone().filter(|_| charge.extra_cents > 0) {
                    state
                        .processor
                        .refund(&extra, charge.extra_cents, &format!("refund-extra-{request_id}"))
                        .await?;
                }
                charge.refunded_cents = charge.captured_cents + charge.extra_cents;
                charge.status = ChargeStatus::Refunded;
            }
            _ => return Ok(()),
        }
        charge.updated_at = state.clock.now();
        match state.store.replace(&charge, version).await {
            Ok(_) => return Ok(()),
            Err(StoreError::ConditionFailed) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::Conflict("the payment kept changing; try again".into()))
}

/// What the processor reported about one of our intents, once checked against the processor itself:
/// the request it pays for and its charge's settlement, if the report changed the charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    pub customer_user_id: String,
    pub request_id: String,
    pub settlement: Settlement,
}

/// Brings our charge in line with the processor's view of `intent_id` (a webhook named it). The
/// webhook's body is only a hint: the intent is read from the processor, and it must be the one our
/// charge holds. Returns `None` when nothing changed (a replayed or irrelevant report).
pub async fn reconcile(state: &AppState, intent_id: &str) -> Result<Option<Reconciled>, ApiError> {
    let intent = match state.processor.intent(intent_id).await {
        Ok(intent) => intent,
        // Not an intent of ours (or not one the processor knows): nothing to do.
        Err(ProcessorError::Refused { status: 404, .. }) => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let (Some(user_id), Some(request_id)) =
        (intent.metadata.get("user_id"), intent.metadata.get("request_id"))
    else {
        return Ok(None);
    };
    let key = Charge::key_of(user_id, request_id);
    let Some(Versioned {
        record: mut charge,
        version,
    }) = state.store.get::<Charge>(&key).await?
    else {
        return Ok(None);
    };
    let is_hold = charge.intent_id == intent.id;
    let is_extra = charge.extra_intent_id.as_deref() == Some(intent.id.as_str());
    let changed = match (charge.status, intent.status) {
        // The processor let an uncaptured hold lapse (Stripe does after 7 days): the card stays
        // saved, and billing charges it off-session.
        (ChargeStatus::Authorized, IntentStatus::Canceled) if is_hold => {
            charge.status = ChargeStatus::Saved;
            charge.payment_method = charge.payment_method.clone().or(intent.payment_method.clone());
            true
        }
        // The off-session charge of a difference failed after it was accepted.
        (ChargeStatus::Captured, IntentStatus::RequiresPaymentMethod | IntentStatus::Canceled)
            if is_extra =>
        {
            charge.status = ChargeStatus::Failed;
            charge.failure_code = Some("card_declined".into());
            charge.extra_cents = 0;
            true
        }
        _ => false,
    };
    if !changed {
        return Ok(None);
    }
    charge.updated_at = state.clock.now();
    match state.store.replace(&charge, version).await {
        Ok(_) => Ok(Some(Reconciled {
            customer_user_id: charge.customer_user_id.clone(),
            request_id: charge.request_id.clone(),
            settlement: charge.settlement(),
        })),
        // Changed meanwhile by billing itself: its record stands.
        Err(StoreError::ConditionFailed) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Whether `user_id` has a customer at the processor (erasure spends its budget only on real work).
pub async fn has_processor_customer(state: &AppState, user_id: &str) -> Result<bool, StoreError> {
    state.store.exists(&ProcessorCustomer::key_of(user_id)).await
}

/// Erasure: deletes the customer at the processor (its saved cards go with it) and our record of
/// it. The charges stay: they are payment records the law keeps. Idempotent.
pub async fn forget_customer(state: &AppState, user_id: &str) -> Result<(), ApiError> {
    let key = ProcessorCustomer::key_of(user_id);
    let Some(customer) = state.store.get::<ProcessorCustomer>(&key).await? else {
        return Ok(());
    };
    state
        .processor
        .delete_customer(&customer.record.customer_id)
        .await?;
    state.store.delete(&key).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charge(status: ChargeStatus) -> Charge {
        Charge {
            customer_user_id: "u".into(),
            request_id: "r".into(),
            status,
            intent_id: "pi_1".into(),
            payment_method: Some("pm_1".into()),
            authorized_cents: 10_000,
            captured_cents: 9_000,
            refunded_cents: 0,
            extra_intent_id: None,
            extra_cents: 0,
            failure_code: None,
            created_at: Timestamp::UNIX_EPOCH,
            updated_at: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn each_charge_state_settles_its_invoice_as_the_customer_would_expect() {
        assert_eq!(
            charge(ChargeStatus::Captured).settlement(),
            Settlement::Paid { paid_cents: 9_000 }
        );
        assert_eq!(charge(ChargeStatus::Authorized).settlement(), Settlement::Pending);
        let mut failed = charge(ChargeStatus::Failed);
        failed.failure_code = Some("card_declined".into());
        assert_eq!(
            failed.settlement(),
            Settlement::Failed {
                paid_cents: 9_000,
                code: "card_declined".into()
            }
        );
        assert_eq!(charge(ChargeStatus::Saved).settlement(), Settlement::Pending);
    }
}
