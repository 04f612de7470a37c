//! The job-queue port: how a request hands work that grows with a user's data (an erasure, an
//! export) to the privacy worker, without knowing it is SQS.
//!
//! [`SqsQueue`] is the adapter the functions use (the `PrivacyJobsQueue` of template.yaml, with its
//! dead-letter queue); [`MemoryQueue`] keeps the messages in memory for fast unit tests. A message is
//! a small JSON document of ids only: the queue is outside the encrypted table, so nothing personal
//! may travel through it. Errors carry a service code only.

use async_trait::async_trait;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use std::sync::Mutex;
use thiserror::Error;

/// Sending failed; carries the service's error code only (this error is logged).
#[derive(Debug, Error)]
#[error("job not queued (error code {0})")]
pub struct QueueError(pub String);

/// Hands a job to the worker.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Queues `body` (JSON of ids only), delivered after `delay_seconds` (0 to 900).
    async fn send(&self, body: &str, delay_seconds: u32) -> Result<(), QueueError>;
}

/// The SQS adapter.
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsQueue {
    /// An adapter sending to `queue_url`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String) -> Self {
        Self { client, queue_url }
    }
}

#[async_trait]
impl JobQueue for SqsQueue {
    async fn send(&self, body: &str, delay_seconds: u32) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(delay_seconds.min(900) as i32)
            .send()
            .await
            .map_err(|error| QueueError(error.code().unwrap_or("unknown").to_owned()))?;
        Ok(())
    }
}

/// Keeps queued jobs in memory (unit tests of the code that queues them).
#[derive(Default)]
pub struct MemoryQueue {
    sent: Mutex<Vec<String>>,
}

impl MemoryQueue {
    /// Every body queued so far, oldest first.
    pub fn sent(&self) -> Vec<String> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    async fn send(&self, body: &str, _delay_seconds: u32) -> Result<(), QueueError> {
        self.sent
            .lock()
            .map_err(|_| QueueError("poisoned".into()))?
            .push(body.to_owned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_queue_keeps_what_was_sent_in_order() {
        let queue = MemoryQueue::default();
        queue.send("{\"a\":1}", 0).await.expect("sent");
        queue.send("{\"b\":2}", 30).await.expect("sent");
        assert_eq!(queue.sent(), ["{\"a\":1}", "{\"b\":2}"]);
    }
}
