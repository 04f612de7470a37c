//! The message the privacy worker takes from its queue, and how a request queues it: below both the
//! requests that queue jobs and the worker's slices that carry them out (`crate::privacy::jobs`), so
//! neither imports the other. Messages carry ids only: the queue is outside the encrypted table.

use platform::AppState;
use serde::{Deserialize, Serialize};

/// A job of the privacy worker (ids only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case", deny_unknown_fields)]
pub enum PrivacyJob {
    /// Erase `user_id` (their erasure job says why, and which request it answers).
    Erasure { user_id: String },
    /// Build the export answering `request_id` of `user_id`.
    Export { user_id: String, request_id: String },
}

impl PrivacyJob {
    /// The message body.
    pub fn to_message(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a message body; `None` for anything that is not a job (logged and dropped by the worker).
    pub fn from_message(body: &str) -> Option<Self> {
        serde_json::from_str(body).ok()
    }

    /// The user the job is about.
    pub fn user_id(&self) -> &str {
        match self {
            Self::Erasure { user_id } | Self::Export { user_id, .. } => user_id,
        }
    }
}

/// Queues `job` for the worker.
pub async fn enqueue(state: &AppState, job: &PrivacyJob) -> Result<(), platform::queue::QueueError> {
    state.jobs.send(&job.to_message(), 0).await
}
