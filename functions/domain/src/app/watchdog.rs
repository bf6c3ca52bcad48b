//! The watchdog: a user in Scheduled or Working whose jobs are all gone (lost from the queue,
//! set aside, never sent because a worker died between two writes) would otherwise stay there
//! for ever. It is failed with the reason, so the admin sees it and Retry continues where the
//! checkpoints stopped; a user whose folders are all done but who missed the last step is
//! completed.

use std::time::Duration;

use contract::UserState;
use time::OffsetDateTime;

use crate::error::AppError;
use crate::model::{FolderState, MailUser, UserQuery};

use super::App;

/// How long a user may show no sign of life before the watchdog looks at it.
#[derive(Debug, Clone, Copy)]
pub struct Watch {
    /// When the queue says the user has no job left.
    pub without_jobs: Duration,
    /// When the queue cannot say (SQS): long enough for any delay or visibility timeout.
    pub unknown_jobs: Duration,
}

impl Default for Watch {
    fn default() -> Self {
        Watch {
            without_jobs: Duration::from_secs(5 * 60),
            unknown_jobs: Duration::from_secs(6 * 3600),
        }
    }
}

/// What the watchdog decides about one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Alive, or not quiet for long enough.
    Wait,
    /// Every folder of the pass is done: only the completion is missing.
    Complete,
    /// Nothing works on it any more.
    Stalled { quiet_minutes: u64 },
}

/// The decision from plain values: the user's last change, its folders' last lease renewals,
/// whether the queue holds a job of it, and the time.
pub(crate) fn verdict(
    user: &MailUser,
    folders: &[FolderState],
    lease_ttl: Duration,
    has_jobs: Option<bool>,
    watch: Watch,
    now: OffsetDateTime,
) -> Verdict {
    let of_pass: Vec<&FolderState> = folders.iter().filter(|f| f.pass == user.pass).collect();
    // A lease is renewed to "now + ttl": its last renewal was ttl before its end.
    let last_sign = of_pass
        .iter()
        .filter_map(|f| f.lease_until)
        .map(|until| until - lease_ttl)
        .fold(user.updated_at, OffsetDateTime::max);
    let quiet = (now - last_sign).unsigned_abs();
    let limit = match has_jobs {
        Some(true) => return Verdict::Wait,
        Some(false) => watch.without_jobs,
        None => watch.unknown_jobs,
    };
    if now <= last_sign || quiet < limit {
        return Verdict::Wait;
    }
    if user.state == UserState::Working && !of_pass.is_empty() && of_pass.iter().all(|f| f.done) {
        return Verdict::Complete;
    }
    Verdict::Stalled {
        quiet_minutes: quiet.as_secs() / 60,
    }
}

impl App {
    /// Looks at every scheduled or working user once; returns the users it failed.
    pub async fn watchdog(&self, watch: Watch) -> Result<Vec<crate::model::UserId>, AppError> {
        let mut failed = Vec::new();
        for project in self.deps.store.list_projects().await? {
            for state in [UserState::Scheduled, UserState::Working] {
                let query = UserQuery {
                    state: Some(state),
                    limit: UserQuery::MAX_LIMIT,
                    ..UserQuery::default()
                };
                let (users, _) = self.deps.store.list_users(project.id, &query).await?;
                for user in users {
                    if self.watch_user(&user, watch).await? {
                        failed.push(user.id);
                    }
                }
            }
        }
        Ok(failed)
    }

    async fn watch_user(&self, user: &MailUser, watch: Watch) -> Result<bool, AppError> {
        let folders = self.deps.store.list_folders(user.id).await?;
        let has_jobs = self.deps.queue.has_jobs_for(user.id.0).await?;
        let now = self.deps.clock.now();
        match verdict(
            user,
            &folders,
            self.config.copy.lease_ttl,
            has_jobs,
            watch,
            now,
        ) {
            Verdict::Wait => Ok(false),
            Verdict::Complete => {
                self.complete_if_done(user.id).await?;
                Ok(false)
            }
            Verdict::Stalled { quiet_minutes } => {
                tracing::warn!(user = %user.id, quiet_minutes, "no job works on this user any more");
                self.fail_user(
                    user.id,
                    format!(
                        "copying stopped: no job has worked on it for {quiet_minutes} minutes; Retry continues where it stopped"
                    ),
                )
                .await?;
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn at(minutes: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(minutes)
    }

    fn working(updated: i64) -> MailUser {
        let mut u = MailUser {
            id: UserId::new(),
            project_id: ProjectId::new(),
            source_email: EmailAddress::parse("ann@old.example").unwrap(),
            target_email: EmailAddress::parse("ann@new.example").unwrap(),
            display_name: String::new(),
            state: UserState::New,
            pass: 1,
            progress: Default::default(),
            last_error: None,
            priority: 0,
            waiting_since: None,
            sync: Default::default(),
            preflight: None,
            line: None,
            has_credentials: false,
            invite_sent_at: None,
            created_at: at(0),
            updated_at: at(0),
            version: 1,
        };
        u.state = UserState::Working;
        u.updated_at = at(updated);
        u
    }

    fn folder(user: &MailUser, done: bool, lease_until: Option<i64>) -> FolderState {
        FolderState {
            done,
            lease_until: lease_until.map(at),
            ..FolderState::new(user.id, "INBOX", "INBOX", user.pass)
        }
    }

    const TTL: Duration = Duration::from_secs(120);

    #[test]
    fn a_user_with_queued_jobs_or_recent_work_is_left_alone() {
        let w = Watch::default();
        let u = working(0);
        let f = [folder(&u, false, None)];
        assert_eq!(verdict(&u, &f, TTL, Some(true), w, at(600)), Verdict::Wait);
        assert_eq!(verdict(&u, &f, TTL, Some(false), w, at(4)), Verdict::Wait);
        // A lease renewed a minute ago is a sign of life, whatever the user's last change.
        let renewed = [folder(&u, false, Some(601))];
        assert_eq!(
            verdict(&u, &renewed, TTL, Some(false), w, at(600)),
            Verdict::Wait
        );
        // Without word from the queue (SQS), only hours of silence count.
        assert_eq!(verdict(&u, &f, TTL, None, w, at(300)), Verdict::Wait);
    }

    #[test]
    fn a_quiet_user_without_jobs_is_stalled_or_completed() {
        let w = Watch::default();
        let u = working(0);
        assert_eq!(
            verdict(
                &u,
                &[folder(&u, false, Some(2))],
                TTL,
                Some(false),
                w,
                at(10)
            ),
            Verdict::Stalled { quiet_minutes: 10 }
        );
        assert_eq!(
            verdict(&u, &[folder(&u, true, None)], TTL, Some(false), w, at(10)),
            Verdict::Complete
        );
        assert_eq!(
            verdict(&u, &[], TTL, None, w, at(7 * 60)),
            Verdict::Stalled { quiet_minutes: 420 }
        );
    }
}
