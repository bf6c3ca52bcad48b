//! Daily budgets (`schedule::daily_budgets`): a job spends the bytes it moves from its
//! mailboxes' budgets after each chunk and, before the next, stops when one is spent; the
//! folder then waits for it to renew, saying until when (a look every 15 minutes at most:
//! one login, no transfer).

use contract::jobs::Job;
use time::OffsetDateTime;

use crate::error::AppError;
use crate::model::MailUser;
use crate::schedule::{self, DailyBudget};

use super::{App, JobOutcome};

impl App {
    /// Whether one of `budgets` is spent now.
    pub(super) async fn budget_spent(&self, budgets: &[DailyBudget]) -> Result<bool, AppError> {
        if budgets.is_empty() {
            return Ok(false);
        }
        let now = self.deps.clock.now();
        Ok(schedule::spent_budget(&*self.deps.limiter, budgets, now)
            .await?
            .is_some())
    }

    /// Counts `bytes` moved against every budget of the job.
    pub(super) async fn spend_budgets(
        &self,
        budgets: &[DailyBudget],
        bytes: u64,
    ) -> Result<(), AppError> {
        if bytes == 0 {
            return Ok(());
        }
        let hour = schedule::hour_of(self.deps.clock.now());
        for b in budgets {
            self.deps.limiter.add_usage(&b.key, hour, bytes).await?;
        }
        Ok(())
    }

    /// Puts the job back until the budget renews, saying so on the user; `None` when no budget
    /// of the user is spent.
    pub(super) async fn pause_for_budget(
        &self,
        user: &MailUser,
        job: &Job,
        budgets: &[DailyBudget],
        now: OffsetDateTime,
    ) -> Result<Option<JobOutcome>, AppError> {
        let Some((budget, resumes_at)) =
            schedule::spent_budget(&*self.deps.limiter, budgets, now).await?
        else {
            return Ok(None);
        };
        let text = schedule::budget_text(budget, resumes_at);
        if user.last_error.as_deref() != Some(text.as_str()) {
            self.set_last_error(user.id, text).await?;
        }
        self.deps
            .queue
            .send(job, schedule::pause_length(now, resumes_at))
            .await?;
        Ok(Some(JobOutcome::Done))
    }
}
