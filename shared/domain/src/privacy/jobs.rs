//! The privacy worker's jobs: the work that grows with a user's data (an erasure, an export), taken
//! off the request path. A request queues a [`PrivacyJob`] ([`enqueue`]); the worker function runs
//! one budgeted slice of it per invocation ([`work`]) and queues it again until it is done; the last
//! slice completes the privacy request with its result. Every slice resumes from a stored checkpoint
//! (the erasure job, the export job), so a crash, a timeout or a redelivered message only repeats
//! idempotent work.
//!
//! A job that fails is redelivered by the queue; after [`STUCK_AFTER`] failed deliveries its request
//! is marked stuck for the privacy officers, and after five it waits in the dead-letter queue. The
//! hourly run queues again any job whose request stopped moving ([`requeue_stalled`]), so a lost
//! message never strands a request.
//!
//! Messages carry ids only: the queue is outside the encrypted table.

use crate::privacy::erasure::{self, ErasureError, Progress};
use crate::privacy::export::{self, ExportProgress};
use crate::privacy::requests::{self, JobProgress, Lifecycle, PrivacyRequest, RequestResult, RequestType};
use edge::ApiError;
use jiff::SignedDuration;
use platform::AppState;
use platform::store::{StoreError, Versioned};
use thiserror::Error;

pub use crate::privacy::job_queue::{PrivacyJob, enqueue};

/// Deliveries that fail before the request is shown to privacy officers as stuck.
pub const STUCK_AFTER: u32 = 3;

/// Writes and deletes one erasure slice may make (an export slice reads a fiftieth of this in Query
/// pages of up to 1 MB: 8). The worker's timeout in template.yaml is 60 s; the note of issue 16 and
/// README give the measured time of a slice.
pub const WORK_PER_INVOCATION: usize = 400;

/// What a slice achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// More to do: queue the job again.
    Continue,
    /// Done, and the request completed.
    Finished,
}

/// A slice failed (the queue redelivers the message).
#[derive(Debug, Error)]
pub enum JobError {
    #[error(transparent)]
    Erasure(#[from] ErasureError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("queue: {0}")]
    Queue(#[from] platform::queue::QueueError),
    #[error("the job names no erasure or request: {0}")]
    Missing(&'static str),
}

impl JobError {
    /// The error's kind, safe to store and show (never a value).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Erasure(ErasureError::Store(_)) | Self::Store(_) => "store",
            Self::Erasure(ErasureError::Keys(_)) => "key_store",
            Self::Erasure(ErasureError::Identity(_)) => "user_pool",
            Self::Erasure(ErasureError::Lookup(_)) => "lookup",
            Self::Erasure(ErasureError::Processor(_)) => "payment_processor",
            Self::Erasure(ErasureError::Revocation(_)) => "revocation",
            Self::Erasure(ErasureError::Alert(_)) => "alert",
            Self::Api(_) => "domain",
            Self::Queue(_) => "queue",
            Self::Missing(_) => "missing",
        }
    }
}

impl From<JobError> for ApiError {
    fn from(error: JobError) -> Self {
        match error {
            JobError::Api(error) => error,
            JobError::Store(error) | JobError::Erasure(ErasureError::Store(error)) => Self::Store(error),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// Runs one slice of `job` with a budget of `budget` writes (an export reads `budget / 50` pages,
/// at least one). Returns whether to queue it again.
pub async fn work(state: &AppState, job: &PrivacyJob, budget: usize) -> Result<JobOutcome, JobError> {
    // Inquiries the person sent without signing in, from their verified address, join their data
    // first: the export shows them and the erasure deletes them.
    let (_, more) = crate::support::adopt_anonymous(state, job.user_id(), (budget / 4).max(1)).await?;
    if more {
        return Ok(JobOutcome::Continue);
    }
    match job {
        PrivacyJob::Erasure { user_id } => erase(state, user_id, budget).await,
        PrivacyJob::Export { user_id, request_id } => {
            build_export(state, user_id, request_id, (budget / 50).max(1)).await
        }
    }
}

async fn erase(state: &AppState, user_id: &str, budget: usize) -> Result<JobOutcome, JobError> {
    let job = erasure::job_of(state, user_id)
        .await?
        .ok_or(JobError::Missing("erasure job"))?;
    let request_id = job.request_id.clone();
    match erasure::run(state, user_id, budget).await? {
        Progress::Paused(step) => {
            if let Some(request_id) = &request_id {
                let slices = erasure::job_of(state, user_id).await?.map_or(0, |j| j.slices);
                let progress = JobProgress {
                    stage: format!("erasure: {}", step_name(step)),
                    items: 0,
                    parts: 0,
                    slices,
                    updated_at: state.clock.now(),
                };
                requests::note_progress(state, user_id, request_id, progress).await?;
            }
            Ok(JobOutcome::Continue)
        }
        Progress::Done(done) => {
            if let Some(request_id) = &request_id {
                let summary = if done.retained.is_empty() {
                    "all your data was deleted".to_owned()
                } else {
                    "your data was deleted except the records the law makes us keep, listed here; they stay encrypted and are deleted when their period ends".to_owned()
                };
                let result = RequestResult {
                    summary,
                    retained: done.retained.clone(),
                    export: None,
                    erasure: Some(done.report()),
                };
                // The person is gone from the user pool: the receipt mail was the last one.
                requests::complete_by_worker(state, user_id, request_id, result, None).await?;
            }
            if let (Some(case), Some(by)) = (&done.case_reference, &done.requested_by) {
                requests::record_minor_deleted(state, user_id, case, by).await?;
            }
            Ok(JobOutcome::Finished)
        }
    }
}

fn step_name(step: erasure::ErasureStep) -> String {
    serde_json::to_value(step)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

async fn build_export(
    state: &AppState,
    user_id: &str,
    request_id: &str,
    pages: usize,
) -> Result<JobOutcome, JobError> {
    match export::build_slice(state, user_id, request_id, pages, export::PART_BYTES).await? {
        ExportProgress::Building(job) => {
            let progress = JobProgress {
                stage: "export: reading".into(),
                items: job.items(),
                parts: job.parts,
                slices: job.slices,
                updated_at: state.clock.now(),
            };
            requests::note_progress(state, user_id, request_id, progress).await?;
            Ok(JobOutcome::Continue)
        }
        ExportProgress::Ready(manifest) => {
            let until = manifest
                .available_until
                .strftime("%Y-%m-%d %H:%M UTC")
                .to_string();
            let result = RequestResult {
                summary: format!(
                    "your data export is ready: {} part(s), available until {until}",
                    manifest.parts
                ),
                retained: Vec::new(),
                export: Some(manifest.clone()),
                erasure: None,
            };
            let (subject, text) = crate::mail::export_ready(request_id, manifest.parts, &until);
            requests::complete_by_worker(state, user_id, request_id, result, Some((&subject, text))).await?;
            Ok(JobOutcome::Finished)
        }
    }
}

/// Records a failed delivery of `job` (the `attempts`-th): from [`STUCK_AFTER`] on, its request is
/// marked stuck for the privacy officers.
pub async fn note_failure(
    state: &AppState,
    job: &PrivacyJob,
    attempts: u32,
    error: &JobError,
) -> Result<(), StoreError> {
    if attempts < STUCK_AFTER {
        return Ok(());
    }
    let request_id = match job {
        PrivacyJob::Export { request_id, .. } => Some(request_id.clone()),
        PrivacyJob::Erasure { user_id } => erasure::job_of(state, user_id).await?.and_then(|j| j.request_id),
    };
    match request_id {
        Some(request_id) => {
            requests::note_stuck(state, job.user_id(), &request_id, attempts, error.kind()).await
        }
        None => Ok(()),
    }
}

/// How long a request the worker carries out may go without progress before the hourly run queues
/// its job again (a lost or dead-lettered message).
pub const STALLED_AFTER: SignedDuration = SignedDuration::from_mins(60);

/// Queues again the job of every open request the worker carries out that has not moved for
/// [`STALLED_AFTER`], at most `max`, among `open` ([`requests::open_requests`]). Returns how many
/// were queued. Called by the hourly run.
pub async fn requeue_stalled(
    state: &AppState,
    open: &[Versioned<PrivacyRequest>],
    max: usize,
) -> Result<usize, JobError> {
    let now = state.clock.now();
    let mut queued = 0;
    for current in open {
        if queued == max {
            break;
        }
        let r = &current.record;
        let moved_at = r
            .progress
            .as_ref()
            .map_or(r.updated_at, |p| p.updated_at.max(r.updated_at));
        if r.status != Lifecycle::InProcessing
            || !r.kind.runs_in_background()
            || now.duration_since(moved_at) < STALLED_AFTER
        {
            continue;
        }
        let job = if r.kind == RequestType::Deletion {
            PrivacyJob::Erasure {
                user_id: r.user_id.clone(),
            }
        } else {
            PrivacyJob::Export {
                user_id: r.user_id.clone(),
                request_id: r.request_id.clone(),
            }
        };
        enqueue(state, &job).await?;
        queued += 1;
    }
    if queued > 0 {
        tracing::info!(queued, "stalled privacy jobs queued again");
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_ids_only_and_reads_back() {
        let job = PrivacyJob::Export {
            user_id: "u-1".into(),
            request_id: "r-1".into(),
        };
        let body = job.to_message();
        assert_eq!(body, r#"{"job":"export","user_id":"u-1","request_id":"r-1"}"#);
        assert_eq!(PrivacyJob::from_message(&body), Some(job));
        let erase = PrivacyJob::Erasure {
            user_id: "u-2".into(),
        };
        assert_eq!(PrivacyJob::from_message(&erase.to_message()), Some(erase));
    }

    #[test]
    fn anything_else_is_not_a_job() {
        for body in [
            "",
            "{}",
            r#"{"job":"drop_table"}"#,
            r#"{"job":"erasure","user_id":"u","x":1}"#,
        ] {
            assert_eq!(PrivacyJob::from_message(body), None, "{body}");
        }
    }
}
