//! The privacy worker: takes the privacy jobs (`PrivacyJobsQueue` in template.yaml) and runs one
//! budgeted slice of each ([`domain::privacy::jobs::work`]), queueing the job again until it is done.
//! A slice that fails is reported as a batch-item failure, so the queue redelivers that message
//! alone; after five failed deliveries it goes to the dead-letter queue (an alarm), and from the third
//! its request is listed as stuck for the privacy officers.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use domain::privacy::jobs::{self, JobOutcome, PrivacyJob, WORK_PER_INVOCATION};
use platform::AppState;

/// Handles one SQS batch (template.yaml sets the batch size to 1; any size works).
pub async fn handle(state: &AppState, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let attempts: u32 = message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|count| count.parse().ok())
            .unwrap_or(1);
        let Some(job) = message.body.as_deref().and_then(PrivacyJob::from_message) else {
            // Not a job of ours: retrying cannot help, and the body is not logged (it is not ours to read).
            tracing::error!(message_id = %id, "privacy worker dropped a message that is not a job");
            continue;
        };
        if !run_one(state, &job, attempts).await {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failures.push(failure);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

/// Runs one slice of `job`; whether it succeeded (a job queued again counts as a success).
async fn run_one(state: &AppState, job: &PrivacyJob, attempts: u32) -> bool {
    let kind = match job {
        PrivacyJob::Erasure { .. } => "erasure",
        PrivacyJob::Export { .. } => "export",
    };
    match jobs::work(state, job, WORK_PER_INVOCATION).await {
        Ok(JobOutcome::Finished) => {
            tracing::info!(job = kind, "privacy job finished");
            true
        }
        Ok(JobOutcome::Continue) => match jobs::enqueue(state, job).await {
            Ok(()) => true,
            Err(error) => {
                // Redelivery of this message does the next slice instead.
                tracing::warn!(job = kind, error = %error, "next slice not queued");
                false
            }
        },
        Err(error) => {
            tracing::error!(
                job = kind,
                attempts,
                error_kind = error.kind(),
                "privacy job slice failed"
            );
            if let Err(store) = jobs::note_failure(state, job, attempts, &error).await {
                tracing::warn!(error = %store, "stuck mark not written");
            }
            false
        }
    }
}
