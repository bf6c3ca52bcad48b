//! [`SqsQueue`]: the [`Queue`] port on an SQS standard queue whose redrive policy moves a
//! message to a dead-letter queue after `maxReceiveCount` receives.
//!
//! SQS counts delays and visibility timeouts in whole seconds: sub-second durations are rounded
//! up, never down (the conformance suite relies on "never before"), and capped at SQS's limits
//! (15 minutes for a send delay, 12 hours for a visibility timeout). Bodies are the JSON of
//! [`Job`]. A body this build cannot decode is not delivered: it stays invisible for the
//! visibility timeout and, after `maxReceiveCount` receives, lands in the dead-letter queue for a
//! person to look at.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use contract::jobs::Job;
use domain::error::QueueError;
use domain::ports::{Delivery, Queue};

/// SQS's longest send delay.
const MAX_DELAY_SECS: u64 = 900;
/// SQS's longest visibility timeout.
const MAX_VISIBILITY_SECS: u64 = 43_200;
/// SQS's most messages per receive and per batch send.
const SQS_BATCH: usize = 10;

/// The [`Queue`] on SQS. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
    dead_letter_url: Option<String>,
}

impl SqsQueue {
    pub(crate) fn new(
        client: Client,
        queue_url: impl Into<String>,
        dead_letter_url: Option<String>,
    ) -> Self {
        SqsQueue {
            client,
            queue_url: queue_url.into(),
            dead_letter_url,
        }
    }

    /// The queue's URL.
    pub fn url(&self) -> &str {
        &self.queue_url
    }

    /// The dead-letter queue's URL, when known.
    pub fn dead_letter_url(&self) -> Option<&str> {
        self.dead_letter_url.as_deref()
    }

    /// Creates the queue `name` and its dead-letter queue `name-dlq`, with a redrive policy that
    /// moves a message there after `max_receives` receives, and returns this adapter on them.
    /// For tests and local runs; a deployment's queues come from the template.
    pub async fn create(
        aws: &crate::Aws,
        name: &str,
        max_receives: u32,
    ) -> Result<SqsQueue, QueueError> {
        let client = Client::new(&aws.config);
        let dlq_url = client
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .send()
            .await
            .map_err(backend)?
            .queue_url
            .ok_or_else(|| QueueError::Backend("CreateQueue returned no URL".into()))?;
        let dlq_arn = client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(backend)?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .ok_or_else(|| QueueError::Backend("the dead-letter queue has no ARN".into()))?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": max_receives.to_string(),
        });
        let url = client
            .create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .map_err(backend)?
            .queue_url
            .ok_or_else(|| QueueError::Backend("CreateQueue returned no URL".into()))?;
        Ok(SqsQueue::new(client, url, Some(dlq_url)))
    }

    async fn send_ten(&self, jobs: &[Job]) -> Result<(), QueueError> {
        let mut entries = jobs
            .iter()
            .enumerate()
            .map(|(i, job)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body(job)?)
                    .build()
                    .map_err(backend)
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Entries that failed on SQS's side (not because of their content) are sent again.
        for attempt in 1..=4u32 {
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries.clone()))
                .send()
                .await
                .map_err(backend)?;
            if out.failed.is_empty() {
                return Ok(());
            }
            if let Some(f) = out.failed.iter().find(|f| f.sender_fault) {
                return Err(QueueError::Backend(format!(
                    "SQS refused a message of the batch: {} {}",
                    f.code,
                    f.message.as_deref().unwrap_or("")
                )));
            }
            let retry: HashSet<&str> = out.failed.iter().map(|f| f.id.as_str()).collect();
            entries.retain(|e| retry.contains(e.id()));
            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
        }
        Err(QueueError::Backend(format!(
            "SQS did not accept {} message(s) of a batch",
            entries.len()
        )))
    }
}

/// Whole seconds, rounded up, at most `max`.
fn whole_seconds_up(d: Duration, max: u64) -> i32 {
    let secs = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
    i32::try_from(secs.min(max)).unwrap_or(i32::MAX)
}

fn body(job: &Job) -> Result<String, QueueError> {
    serde_json::to_string(job).map_err(|e| QueueError::Backend(format!("cannot encode a job: {e}")))
}

fn backend(e: impl std::error::Error + 'static) -> QueueError {
    QueueError::Backend(format!("sqs: {}", DisplayErrorContext(&e)))
}

/// Whether the error says the receipt handle is no longer good: the message was deleted, its
/// visibility ran out, or it was received again. Harmless for `ack` and `retry_later`.
fn is_stale_receipt<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    match e.code() {
        Some(code) => {
            code.contains("ReceiptHandleIsInvalid")
                || code.contains("MessageNotInflight")
                || (code.contains("InvalidParameterValue")
                    && e.message()
                        .is_some_and(|m| m.to_ascii_lowercase().contains("receipt")))
        }
        None => false,
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, job: &Job, delay: Duration) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body(job)?)
            .delay_seconds(whole_seconds_up(delay, MAX_DELAY_SECS))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn send_batch(&self, jobs: &[Job]) -> Result<(), QueueError> {
        for ten in jobs.chunks(SQS_BATCH) {
            self.send_ten(ten).await?;
        }
        Ok(())
    }

    /// Does not wait for messages (short polling): SQS may return fewer than are visible.
    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Delivery>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(i32::try_from(max.min(SQS_BATCH)).unwrap_or(1))
            .visibility_timeout(whole_seconds_up(visibility, MAX_VISIBILITY_SECS))
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(backend)?;
        let mut deliveries = Vec::new();
        for m in out.messages.unwrap_or_default() {
            let (Some(message_id), Some(receipt)) =
                (m.message_id.clone(), m.receipt_handle.clone())
            else {
                continue;
            };
            let job = match serde_json::from_str::<Job>(m.body().unwrap_or_default()) {
                Ok(job) => job,
                Err(e) => {
                    // Left for the redrive policy to set aside after its last receive.
                    tracing::warn!(message_id = %message_id, error = %e, "undecodable queue message skipped");
                    continue;
                }
            };
            let receive_count = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            deliveries.push(Delivery {
                message_id,
                receipt,
                job,
                receive_count,
            });
        }
        Ok(deliveries)
    }

    /// A receipt whose message is gone (or was received again) is not an error.
    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        match self
            .client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_stale_receipt(&e) => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }

    /// ChangeMessageVisibility from now; a stale receipt is not an error.
    async fn retry_later(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        match self
            .client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(whole_seconds_up(delay, MAX_VISIBILITY_SECS))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_stale_receipt(&e) => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }

    /// Reads up to `max` messages of the dead-letter queue without removing them or hiding
    /// them from the next reader (visibility 0). SQS has no "peek": each read samples the
    /// queue, so this reads until it stops finding new messages.
    async fn dead_letters(&self, max: usize) -> Result<Vec<Job>, QueueError> {
        let Some(dlq) = &self.dead_letter_url else {
            return Ok(Vec::new());
        };
        let mut seen = HashSet::new();
        let mut jobs = Vec::new();
        let rounds = max.div_ceil(SQS_BATCH) + 2;
        for _ in 0..rounds {
            if jobs.len() >= max {
                break;
            }
            let out = self
                .client
                .receive_message()
                .queue_url(dlq)
                .max_number_of_messages(i32::try_from(SQS_BATCH).unwrap_or(10))
                .visibility_timeout(0)
                .wait_time_seconds(0)
                .send()
                .await
                .map_err(backend)?;
            let mut new = 0;
            for m in out.messages.unwrap_or_default() {
                let Some(id) = m.message_id.clone() else {
                    continue;
                };
                if !seen.insert(id.clone()) {
                    continue;
                }
                new += 1;
                match serde_json::from_str::<Job>(m.body().unwrap_or_default()) {
                    Ok(job) if jobs.len() < max => jobs.push(job),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(message_id = %id, error = %e, "undecodable dead letter skipped")
                    }
                }
            }
            if new == 0 {
                break;
            }
        }
        Ok(jobs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_up_to_whole_seconds_within_limits() {
        assert_eq!(whole_seconds_up(Duration::ZERO, 900), 0);
        assert_eq!(whole_seconds_up(Duration::from_millis(1), 900), 1);
        assert_eq!(whole_seconds_up(Duration::from_millis(300), 900), 1);
        assert_eq!(whole_seconds_up(Duration::from_secs(1), 900), 1);
        assert_eq!(whole_seconds_up(Duration::from_millis(1001), 900), 2);
        assert_eq!(whole_seconds_up(Duration::from_secs(3600), 900), 900);
        assert_eq!(whole_seconds_up(Duration::MAX, 43_200), 43_200);
    }
}
