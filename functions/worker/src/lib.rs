//! mailferry's queue worker as a Lambda function on the SQS queue: the Lambda SQS adapter of
//! the one worker handler, `domain::App::handle_job`. For each record of a batch it parses the
//! [`Job`], runs the handler within the time left before the invocation's deadline (minus
//! [`SAFETY_MARGIN`]) and reports partial batch failures (`ReportBatchItemFailures`):
//!
//! - `JobOutcome::Done` (handled, or recognised as stale): success, so Lambda deletes the
//!   message;
//! - `JobOutcome::RetryLater { after }`: the message's visibility is set to `after` through the
//!   queue adapter (`ChangeMessageVisibility`), and it is reported as failed so Lambda leaves it
//!   in the queue to come back then;
//! - an error or an unreadable body: reported as failed; it comes back after the queue's
//!   visibility timeout, and the redrive policy sets it aside after `MAX_RECEIVES` receives.
//!   On that last receive the user is marked failed (`App::give_up_job`), so nobody waits on a
//!   copy that will not run.
//!
//! Records of a batch run concurrently: each has the whole remaining budget, and the copy
//! engine bounds the memory they use together.
//!
//! The same function is also invoked by a schedule (an EventBridge event, every 15 minutes):
//! it then runs the watchdog (`App::watchdog`), which fails the users no job works on any more.
//!
//! Only this crate and `api` import `lambda_*`; this crate must never import aws-sdk-*, axum
//! or SQLite directly (it reaches SQS through the domain's `Queue` port).

use std::time::{Duration, SystemTime};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use contract::jobs::Job;
use domain::App;
use domain::app::JobOutcome;

/// Kept back from the Lambda deadline: the handler's budget ends this much earlier, so the
/// batch response is sent before Lambda stops the invocation. The copy engine itself hands
/// over to a continuation `CopySettings::budget_reserve` before its budget ends.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(5);

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Handled: Lambda deletes the message.
    Done,
    /// Not handled yet; the message becomes visible again after `after`.
    RetryScheduled { after: Duration },
    /// Failed; the message comes back after the queue's visibility timeout.
    Failed { reason: String },
}

impl RecordOutcome {
    /// Whether the record is reported to Lambda as a batch item failure (kept in the queue).
    pub fn is_failure(&self) -> bool {
        !matches!(self, RecordOutcome::Done)
    }
}

/// The handler's budget for an invocation ending at `deadline`, seen at `now`.
pub fn budget(deadline: SystemTime, now: SystemTime) -> Duration {
    deadline
        .duration_since(now)
        .unwrap_or_default()
        .saturating_sub(SAFETY_MARGIN)
}

/// Handles one SQS record with `budget` to spend. `max_receives` is the queue's redrive
/// `maxReceiveCount`: a failure on that receive is the last one.
pub async fn handle_record(
    app: &App,
    record: &SqsMessage,
    budget: Duration,
    max_receives: u32,
) -> RecordOutcome {
    let message_id = record.message_id.as_deref().unwrap_or_default();
    let job: Job = match serde_json::from_str(record.body.as_deref().unwrap_or_default()) {
        Ok(job) => job,
        Err(e) => {
            tracing::error!(message = message_id, error = %e, "unreadable queue message");
            return RecordOutcome::Failed {
                reason: format!("the message is not a job: {e}"),
            };
        }
    };
    match app.handle_job(&job, budget).await {
        Ok(JobOutcome::Done) => RecordOutcome::Done,
        Ok(JobOutcome::RetryLater { after, reason }) => {
            tracing::info!(message = message_id, %reason, ?after, "job will be retried");
            let Some(receipt) = record.receipt_handle.as_deref() else {
                return RecordOutcome::Failed {
                    reason: "the record has no receipt handle".into(),
                };
            };
            match app.deps().queue.retry_later(receipt, after).await {
                Ok(()) => RecordOutcome::RetryScheduled { after },
                Err(e) => {
                    tracing::warn!(message = message_id, error = %e, "could not delay the retry");
                    RecordOutcome::Failed {
                        reason: e.to_string(),
                    }
                }
            }
        }
        Err(e) => {
            let reason = e.to_string();
            if receive_count(record) >= max_receives {
                if let Err(e2) = app.give_up_job(&job, &reason).await {
                    tracing::error!(message = message_id, error = %e2, "could not mark the user failed");
                }
            } else {
                tracing::warn!(message = message_id, error = %reason, "job failed; it will be retried");
            }
            RecordOutcome::Failed { reason }
        }
    }
}

/// How often this message was received, this time included (from `ApproximateReceiveCount`).
fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1)
}

/// Handles every record of `event` before `deadline` and lists the failed ones.
pub async fn handle_batch(
    app: &App,
    event: &SqsEvent,
    deadline: SystemTime,
    max_receives: u32,
) -> SqsBatchResponse {
    let budget = budget(deadline, SystemTime::now());
    let outcomes = futures::future::join_all(
        event
            .records
            .iter()
            .map(|record| handle_record(app, record, budget, max_receives)),
    )
    .await;
    let mut response = SqsBatchResponse::default();
    for (record, outcome) in event.records.iter().zip(outcomes) {
        if outcome.is_failure() {
            let mut failure = BatchItemFailure::default();
            // A failure without a message id makes Lambda retry the whole batch, which is the
            // safe side.
            failure.item_identifier = record.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_keeps_the_margin_and_never_underflows() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            budget(now + Duration::from_secs(900), now),
            Duration::from_secs(895)
        );
        assert_eq!(budget(now + Duration::from_secs(3), now), Duration::ZERO);
        assert_eq!(budget(now - Duration::from_secs(3), now), Duration::ZERO);
    }

    #[test]
    fn receive_count_reads_the_attribute() {
        let mut record = SqsMessage::default();
        assert_eq!(receive_count(&record), 1);
        record
            .attributes
            .insert("ApproximateReceiveCount".into(), "4".into());
        assert_eq!(receive_count(&record), 4);
    }
}

/// What one invocation carries: a batch of queue records, or the watchdog's schedule.
#[derive(Debug)]
pub enum Invocation {
    Jobs(SqsEvent),
    Watchdog,
}

impl Invocation {
    /// Tells the two apart: SQS sends `Records`, EventBridge a `source` of `aws.events`.
    pub fn parse(payload: serde_json::Value) -> Result<Invocation, String> {
        if payload.get("Records").is_some() {
            return serde_json::from_value(payload)
                .map(Invocation::Jobs)
                .map_err(|e| format!("an SQS event that does not parse: {e}"));
        }
        match payload.get("source").and_then(|s| s.as_str()) {
            Some("aws.events") => Ok(Invocation::Watchdog),
            _ => Err("neither an SQS batch nor the watchdog's schedule".into()),
        }
    }
}

/// Handles one invocation of either kind; the answer is the batch response, or what the
/// watchdog did.
pub async fn handle_invocation(
    app: &App,
    payload: serde_json::Value,
    deadline: SystemTime,
    max_receives: u32,
) -> Result<serde_json::Value, String> {
    match Invocation::parse(payload)? {
        Invocation::Jobs(event) => {
            let response = handle_batch(app, &event, deadline, max_receives).await;
            serde_json::to_value(response).map_err(|e| e.to_string())
        }
        Invocation::Watchdog => {
            let failed = app
                .watchdog(domain::app::Watch::default())
                .await
                .map_err(|e| e.to_string())?;
            if !failed.is_empty() {
                tracing::warn!(
                    users = failed.len(),
                    "the watchdog failed users no job works on"
                );
            }
            let tick = app
                .sync_due(app.deps().clock.now())
                .await
                .map_err(|e| e.to_string())?;
            app.refresh_preflight_totals()
                .await
                .map_err(|e| e.to_string())?;
            // The sweep runs at most hourly whatever the schedule of this invocation.
            let purged = app
                .retention_sweep_if_due()
                .await
                .map_err(|e| e.to_string())?;
            Ok(serde_json::json!({ "watchdog": {
                    "failed": failed.len(),
                    "passwords_purged": purged,
                    "syncs_started": tick.syncs,
                    "final_passes_started": tick.final_passes,
                    "cut_over": tick.cut_over,
                } }))
        }
    }
}
