//! The local stand-in for Lambda's SQS event source: polls the emulator's `PrivacyJobsQueue` and hands
//! each message to the privacy worker's handler ([`privacy_worker::handle`], the code the Lambda binary
//! runs), then deletes what the handler did not report as failed. A failed message is made visible
//! again after a second instead of the queue's visibility timeout (6 minutes), so a local retry does
//! not keep a developer or a test waiting; the receive count and the dead-letter queue after five
//! deliveries are the emulator's own, as in AWS.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use platform::AppState;
use std::collections::HashMap;
use thiserror::Error;

/// Polling the queue failed.
#[derive(Debug, Error)]
#[error("privacy jobs queue: {0}")]
pub struct WorkerError(String);

/// One worker bound to one queue.
#[derive(Clone)]
pub struct LocalWorker {
    state: AppState,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl LocalWorker {
    /// A worker with the privacy worker's state, taking from the queue its configuration names.
    pub fn new(state: AppState, sqs: aws_sdk_sqs::Client) -> Self {
        let queue_url = state.config.privacy_jobs_queue_url.clone();
        Self {
            state,
            sqs,
            queue_url,
        }
    }

    /// Receives one batch (short polling: the local emulator serves one request at a time, so a long
    /// poll would hold up every other call) and handles it; returns how many messages it received.
    pub async fn poll_once(&self) -> Result<usize, WorkerError> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(1)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|error| WorkerError(aws_sdk_sqs::error::DisplayErrorContext(error).to_string()))?;
        let messages = received.messages.unwrap_or_default();
        let count = messages.len();
        let mut handles = Vec::new();
        let records = messages
            .into_iter()
            .map(|message| {
                handles.push((
                    message.message_id.clone().unwrap_or_default(),
                    message.receipt_handle.clone().unwrap_or_default(),
                ));
                let attributes: HashMap<String, String> = message
                    .attributes
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(name, value)| (name.as_str().to_owned(), value))
                    .collect();
                let mut record = SqsMessage::default();
                record.message_id = message.message_id;
                record.receipt_handle = message.receipt_handle;
                record.body = message.body;
                record.attributes = attributes;
                record.event_source = Some("aws:sqs".into());
                record
            })
            .collect();
        let mut event = SqsEvent::default();
        event.records = records;
        let response = privacy_worker::handle(&self.state, event).await;
        let failed: Vec<String> = response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        let error = |e: String| WorkerError(e);
        for (id, handle) in handles {
            if failed.contains(&id) {
                self.sqs
                    .change_message_visibility()
                    .queue_url(&self.queue_url)
                    .receipt_handle(handle)
                    .visibility_timeout(1)
                    .send()
                    .await
                    .map_err(|e| error(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
            } else {
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(|e| error(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
            }
        }
        Ok(count)
    }

    /// Handles messages until the queue is empty, at most `max_messages`; returns how many it handled.
    pub async fn drain(&self, max_messages: usize) -> Result<usize, WorkerError> {
        let mut handled = 0;
        while handled < max_messages {
            match self.poll_once().await? {
                0 => break,
                n => handled += n,
            }
        }
        Ok(handled)
    }

    /// Polls forever, pausing `idle` whenever the queue is empty (the dev stack's and the tests'
    /// worker); errors are logged and polling goes on.
    pub async fn run(self, idle: std::time::Duration) {
        loop {
            match self.poll_once().await {
                Ok(0) => tokio::time::sleep(idle).await,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(error = %error, "privacy worker poll failed");
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
            }
        }
    }
}
