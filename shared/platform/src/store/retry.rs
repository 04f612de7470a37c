//! DynamoDB's "not now" answers, tried again here and nowhere else.
//!
//! Production is concurrent: DynamoDB cancels a transaction that touches an item another transaction
//! holds (reason `TransactionConflict`), refuses a single-item write to such an item
//! (`TransactionConflictException`), and throttles a partition past its rate
//! (`ProvisionedThroughputExceededException`, or `ThrottlingError` in a cancelled transaction).
//! None of these says the request was wrong, and nothing of it was applied. The SDK already retries
//! a throttled single request (its standard retry classifies `ProvisionedThroughputExceededException`
//! as throttling, with its own backoff); what it does not retry is a conflict or a transaction
//! cancelled for one: those are tried again here, up to [`BUSY_ATTEMPTS`] times, after a pause drawn
//! at random up to a bound that doubles each time ("full jitter", so callers that collided do not
//! collide again in step). Whatever is still busy after that is [`StoreError::Busy`], which an API
//! answers with 503 and `Retry-After`. A failed condition is an answer, never retried here: the domain
//! decides what it means.

use super::{Store, StoreError, cancelled};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How many times a conflicting write is tried before it is reported [`StoreError::Busy`]. With the
/// pauses below, the worst case waits about 0.6 s in all: well inside an API call's budget.
pub const BUSY_ATTEMPTS: u32 = 7;
/// The bound of the first pause; each later bound doubles, up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(8);
const LONGEST_PAUSE: Duration = Duration::from_millis(200);

static BUSY_RETRIES: AtomicU64 = AtomicU64::new(0);

/// Writes tried again in this process so far because DynamoDB was busy: what a test or a benchmark
/// reads to show that contention happened and was absorbed.
pub fn busy_retries() -> u64 {
    BUSY_RETRIES.load(Ordering::Relaxed)
}

/// The error codes that mean "busy, try again": a conflict with a running transaction, or throttling
/// (which reaches the store only once the SDK's own retries are spent).
pub(super) fn is_busy_code(code: &str) -> bool {
    matches!(
        code,
        "TransactionConflictException"
            | "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
    )
}

/// The cancellation reasons that mean "busy".
const BUSY_REASONS: &[&str] = &[
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
];

/// A transaction cancelled only because it was busy (some reason busy, every other `None`) is
/// [`StoreError::Busy`]; `None` otherwise (a failed condition is an answer; a validation error or
/// an item collection past its size must be seen as what it is, not retried).
pub(super) fn busy_cancellation(reasons: &[String]) -> Option<StoreError> {
    let busy = reasons.iter().find(|r| BUSY_REASONS.contains(&r.as_str()))?;
    let only_busy = reasons
        .iter()
        .all(|r| r == "None" || BUSY_REASONS.contains(&r.as_str()));
    only_busy.then(|| StoreError::Busy(busy.clone()))
}

/// Whether the store itself tries `error` again: a conflict, or a transaction cancelled as busy. A
/// throttled single request was retried by the SDK already, with its own longer pauses.
fn retried_here(error: &StoreError) -> bool {
    matches!(error, StoreError::Busy(code) if code != "ProvisionedThroughputExceededException"
        && code != "ThrottlingException" && code != "RequestLimitExceeded")
}

/// The pauses of one write's tries.
struct Backoff {
    attempt: u32,
    bound: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self {
            attempt: 1,
            bound: FIRST_PAUSE,
        }
    }

    /// After a failed try: `true` (having paused) when `error` is worth another try.
    async fn pause_before_retry(&mut self, error: &StoreError) -> bool {
        if !retried_here(error) || self.attempt >= BUSY_ATTEMPTS {
            return false;
        }
        BUSY_RETRIES.fetch_add(1, Ordering::Relaxed);
        let bound_ms = u64::try_from(self.bound.as_millis()).unwrap_or(u64::MAX);
        tokio::time::sleep(Duration::from_millis(fastrand::u64(1..=bound_ms.max(1)))).await;
        self.bound = (self.bound * 2).min(LONGEST_PAUSE);
        self.attempt += 1;
        true
    }
}

impl Store {
    /// Sends a single-item request built by `send` until it is not busy (see the module docs).
    pub(super) async fn retrying<T, E, R, F, Fut>(&self, mut send: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let mut backoff = Backoff::new();
        loop {
            let error = match send().await {
                Ok(output) => return Ok(output),
                Err(error) => StoreError::from_sdk(error),
            };
            if !backoff.pause_before_retry(&error).await {
                return Err(error);
            }
        }
    }

    /// Sends a `TransactWriteItems` built by `send` until it is not busy; a transaction cancelled
    /// for any other reason reports its reasons ([`StoreError::TransactionCancelled`]).
    pub(super) async fn retrying_transaction<T, R, F, Fut>(&self, mut send: F) -> Result<(), StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<TransactWriteItemsError, R>>>,
        R: std::fmt::Debug,
    {
        let mut backoff = Backoff::new();
        loop {
            let error = match send().await {
                Ok(_) => return Ok(()),
                Err(error) => cancelled(error),
            };
            if !backoff.pause_before_retry(&error).await {
                return Err(error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(codes: &[&str]) -> Vec<String> {
        codes.iter().map(|c| (*c).to_owned()).collect()
    }

    #[test]
    fn a_transaction_cancelled_for_a_conflict_or_throttling_is_busy() {
        assert!(matches!(
            busy_cancellation(&reasons(&["None", "TransactionConflict"])),
            Some(StoreError::Busy(code)) if code == "TransactionConflict"
        ));
        assert!(matches!(
            busy_cancellation(&reasons(&["ThrottlingError", "None"])),
            Some(StoreError::Busy(_))
        ));
    }

    #[test]
    fn a_failed_condition_or_another_error_is_an_answer_not_busy() {
        assert!(busy_cancellation(&reasons(&["ConditionalCheckFailed", "TransactionConflict"])).is_none());
        assert!(busy_cancellation(&reasons(&["None", "ConditionalCheckFailed"])).is_none());
        assert!(busy_cancellation(&reasons(&["TransactionConflict", "ValidationError"])).is_none());
        assert!(busy_cancellation(&reasons(&["None", "None"])).is_none());
    }

    #[test]
    fn only_the_documented_busy_codes_are_retried() {
        for code in [
            "TransactionConflictException",
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
        ] {
            assert!(is_busy_code(code), "{code}");
        }
        for code in [
            "ConditionalCheckFailedException",
            "ValidationException",
            "ResourceNotFoundException",
        ] {
            assert!(!is_busy_code(code), "{code}");
        }
    }

    #[tokio::test]
    async fn busy_is_tried_again_a_bounded_number_of_times_then_reported() {
        let before = busy_retries();
        let mut backoff = Backoff::new();
        let busy = StoreError::Busy("TransactionConflict".into());
        let mut retries = 0;
        while backoff.pause_before_retry(&busy).await {
            retries += 1;
        }
        assert_eq!(retries, BUSY_ATTEMPTS - 1);
        assert!(busy_retries() >= before + u64::from(BUSY_ATTEMPTS - 1));
        let mut backoff = Backoff::new();
        assert!(!backoff.pause_before_retry(&StoreError::ConditionFailed).await);
        let throttled = StoreError::Busy("ProvisionedThroughputExceededException".into());
        assert!(
            !backoff.pause_before_retry(&throttled).await,
            "the SDK retried throttling already"
        );
    }
}
