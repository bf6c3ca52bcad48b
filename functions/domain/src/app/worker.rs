//! The one worker handler. The local queue loop (`mailferry serve`) and the Lambda SQS adapter
//! (`worker`) both call [`App::handle_job`] for each received message, so at-least-once
//! delivery, stale messages and deadlines are handled in one place.

use std::time::Duration;

use contract::UserState;
use contract::jobs::Job;

use crate::error::AppError;
use crate::model::UserId;

use super::App;

/// What the queue adapter should do with the message after the handler ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Handled (or recognised as stale): delete the message.
    Done,
    /// Not handled yet: make it visible again after the delay (backoff, throttling).
    RetryLater { after: Duration, reason: String },
}

impl App {
    /// Handles one queue message within `budget` (the time left before the caller must stop,
    /// e.g. the Lambda deadline). Messages for deleted users, other passes or users no longer
    /// scheduled or working are dropped: a redelivery never moves a user backwards.
    pub async fn handle_job(&self, job: &Job, budget: Duration) -> Result<JobOutcome, AppError> {
        let user_id = UserId(job.user_id());
        let Some(user) = self.deps.store.get_user(user_id).await? else {
            tracing::info!(user = %user_id, "dropping a job for a deleted user");
            return Ok(JobOutcome::Done);
        };
        let pass = match job {
            Job::Plan { pass, .. } | Job::Copy { pass, .. } => *pass,
            // A preflight belongs to no pass and runs in any state: it copies nothing.
            Job::Preflight { attempt, .. } => return self.run_preflight_job(&user, *attempt).await,
        };
        if pass != user.pass || !matches!(user.state, UserState::Scheduled | UserState::Working) {
            tracing::info!(user = %user.id, job_pass = pass, user_pass = user.pass, state = ?user.state, "dropping a stale job");
            return Ok(JobOutcome::Done);
        }
        self.run_copy_job(&user, job, budget).await
    }

    /// Called by a queue adapter when a job failed on its last allowed delivery (it goes to
    /// the dead-letter queue next): the user is marked failed with the reason, so nobody waits
    /// on a copy that will not run. The admin's Retry starts the pass again.
    pub async fn give_up_job(&self, job: &Job, reason: &str) -> Result<(), AppError> {
        let user_id = UserId(job.user_id());
        tracing::error!(user = %user_id, %reason, "a job failed too often and was set aside");
        if let Job::Preflight { .. } = job {
            // A preflight moves nobody: its failure is its finding.
            if let Some(user) = self.deps.store.get_user(user_id).await? {
                let why = format!("the preflight failed repeatedly: {reason}");
                self.keep_preflight_failure(&user, why).await;
            }
            return Ok(());
        }
        self.fail_user(
            user_id,
            format!("copying stopped after repeated failures: {reason}"),
        )
        .await
    }
}
