//! The copy job of one folder: take the folder (unless it is done, or waits for a folder
//! copying into the same target folder), lease it, copy, and end the job the way the copy
//! ended — done, continued, throttled, stopped by a full target, or retried after an error.

use std::time::{Duration, Instant};

use contract::jobs::Job;

use crate::error::AppError;
use crate::model::*;

use super::{App, JobOutcome, Sessions, Stop};

impl App {
    pub(super) async fn copy_folder(
        &self,
        project: &Project,
        user: &MailUser,
        source_name: &str,
        attempt: u32,
        (deadline, hard_stop): (Instant, Instant),
        sessions: &mut Option<Sessions>,
    ) -> Result<JobOutcome, AppError> {
        let mut folder = match self.take_folder(user, source_name).await? {
            Ok(folder) => folder,
            Err(outcome) => return Ok(outcome),
        };
        let mut s = match self.sessions_for(sessions, project, user).await {
            Ok(s) => s,
            Err(e) => return self.end_job(user, &mut folder, attempt, Err(e)).await,
        };
        // Every command of the attempt ends by `hard_stop`, however slowly a server drips: what
        // was stored is found again through the checkpoint and its in-flight mark.
        let copy = self.copy_with(project, user, &mut folder, &mut s, deadline);
        let mut result = match tokio::time::timeout_at(hard_stop.into(), copy).await {
            Ok(result) => result,
            Err(_) => Ok(Err(Stop::OutOfTime)),
        };
        if let Ok(Err(Stop::TargetFull(_, ref mut left))) = result {
            // Counted while the source session is open: the stored count becomes what is left.
            *left = self.messages_left(&mut s, user, &folder, *left).await?;
        }
        // Sessions that finished the folder are in a known state: the next job may use them.
        if matches!(result, Ok(Ok(()))) {
            *sessions = Some(s);
        } else {
            s.close().await;
        }
        self.end_job(user, &mut folder, attempt, result).await
    }

    /// The folder's checkpoint, leased to this job; or what to do with the job instead (the
    /// folder is done, waits for another one, or is held by another worker).
    async fn take_folder(
        &self,
        user: &MailUser,
        source_name: &str,
    ) -> Result<Result<FolderState, JobOutcome>, AppError> {
        let Some(folder) = self.deps.store.get_folder(user.id, source_name).await? else {
            tracing::warn!(user = %user.id, folder = source_name, "copy job for a folder that was never planned");
            return Ok(Err(JobOutcome::Done));
        };
        if folder.done && folder.pass == user.pass {
            return Ok(Err(JobOutcome::Done));
        }
        if folder.shares_target
            && let Some(before) = self.sharing_folder(user, &folder, true).await?
        {
            // It queues this folder's job when it is done.
            tracing::info!(user = %user.id, folder = source_name, waits_for = %before, "waits for a folder copying into the same target folder");
            return Ok(Err(JobOutcome::Done));
        }
        let owner = crate::token::generate();
        let Some(mut folder) = self.lease(&folder, &owner).await? else {
            let wait = folder
                .lease_until
                .map(|u| (u - self.deps.clock.now()).unsigned_abs())
                .unwrap_or(Duration::from_secs(5));
            return Ok(Err(JobOutcome::RetryLater {
                after: wait.max(Duration::from_secs(1)),
                reason: "another worker holds this folder".into(),
            }));
        };
        if !folder.skipped.is_empty() {
            // A checkpoint from before skipped items were kept apart: move them out.
            let inline = folder.skipped.clone();
            self.keep_skipped(&folder, &inline).await?;
            if self
                .checkpoint(&mut folder, |f| {
                    f.skipped_count += inline.len() as u64;
                    f.skipped.clear();
                })
                .await?
                .is_err()
            {
                return Ok(Err(JobOutcome::Done));
            }
        }
        Ok(Ok(folder))
    }

    /// Ends the job the way the copy ended: the next folder sharing the target and maybe the
    /// user's completion, a continuation, a wait for a throttling server, a user stopped by a
    /// full target, or an error for the queue to retry. The lease is given up in every case
    /// but a lost one.
    async fn end_job(
        &self,
        user: &MailUser,
        folder: &mut FolderState,
        attempt: u32,
        result: Result<Result<(), Stop>, AppError>,
    ) -> Result<JobOutcome, AppError> {
        let source_name = folder.source_name.clone();
        let source_name = source_name.as_str();
        match result {
            Ok(Ok(())) => {
                if folder.shares_target
                    && let Some(next) = self.sharing_folder(user, folder, false).await?
                {
                    let job = Job::Copy {
                        user_id: user.id.0,
                        pass: user.pass,
                        folder: next,
                        attempt: 0,
                    };
                    self.deps.queue.send(&job, Duration::ZERO).await?;
                }
                self.complete_if_done(user.id).await?;
                Ok(JobOutcome::Done)
            }
            Ok(Err(Stop::LeaseLost)) => Ok(JobOutcome::Done),
            Ok(Err(Stop::TargetFull(reason, left))) => {
                // Nothing more fits: stop the user in a state the admin can act on. The chunk's
                // in-flight mark stays, so the admin's Retry resumes exactly here.
                self.release_lease(folder).await;
                self.stop_for_full_target(user, &reason, left).await?;
                Ok(JobOutcome::Done)
            }
            Ok(Err(Stop::BudgetSpent)) => {
                self.release_lease(folder).await;
                let next = continuation(user, source_name, attempt);
                let project = self.project(user.project_id).await?;
                let budgets = crate::schedule::daily_budgets(&project, user);
                let now = self.deps.clock.now();
                match self.pause_for_budget(user, &next, &budgets, now).await? {
                    Some(outcome) => Ok(outcome),
                    // Renewed meanwhile: go on at once.
                    None => {
                        self.deps.queue.send(&next, Duration::ZERO).await?;
                        Ok(JobOutcome::Done)
                    }
                }
            }
            Ok(Err(Stop::OutOfTime)) => {
                self.release_lease(folder).await;
                let next = continuation(user, source_name, attempt);
                self.deps.queue.send(&next, Duration::ZERO).await?;
                Ok(JobOutcome::Done)
            }
            Err(AppError::Throttled {
                message,
                retry_after,
            }) => {
                self.release_lease(folder).await;
                self.continue_after_throttling(user, source_name, attempt, &message, retry_after)
                    .await
            }
            Err(e) => {
                self.release_lease(folder).await;
                if let AppError::Upstream(m) = &e {
                    let _ = self
                        .set_last_error(user.id, format!("{source_name}: {m} (retrying)"))
                        .await;
                }
                Err(e)
            }
        }
    }
    /// The nearest source folder of this pass, not done yet, that copies into the same target
    /// folder, before (`earlier`) or after this one in source-name order. Two folders never
    /// append into one target folder at once: each would take the other's appends for its own
    /// copies when it resumes.
    async fn sharing_folder(
        &self,
        user: &MailUser,
        folder: &FolderState,
        earlier: bool,
    ) -> Result<Option<String>, AppError> {
        let sharing = self
            .deps
            .store
            .list_folders(user.id)
            .await?
            .into_iter()
            .filter(|f| f.target_name == folder.target_name && f.pass == user.pass && !f.done)
            .map(|f| f.source_name)
            .filter(|name| {
                if earlier {
                    *name < folder.source_name
                } else {
                    *name > folder.source_name
                }
            });
        Ok(if earlier {
            sharing.max()
        } else {
            sharing.min()
        })
    }
}

/// The job that goes on with a folder after `attempt`.
fn continuation(user: &MailUser, source_name: &str, attempt: u32) -> Job {
    Job::Copy {
        user_id: user.id.0,
        pass: user.pass,
        folder: source_name.to_owned(),
        attempt: attempt + 1,
    }
}
