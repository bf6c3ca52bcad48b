//! After the first pass: keeping finished mailboxes in sync until the cutover, and the cutover
//! itself. A migration is a project with a date: users go on working in the old mailbox while
//! the project's delta passes ("keep in sync every N hours") carry new mail, flag changes and
//! (when the project asks) deletions; at the cutover time (the project's, or a user's or CSV
//! batch's own) each finished user gets a final delta pass, is Cut over when it ends, and is
//! mailed the new account's settings with a link to a device set-up page.
//!
//! The decisions are plain functions of the project, the user and the time ([`due`]);
//! [`App::sync_due`] applies them and runs with the watchdog (each minute locally, on the
//! worker's schedule on AWS). Every start is a version-checked transition, so two ticks at
//! once start one pass, and a user is Cut over (and mailed) by exactly one of them.

use contract::{SyncSummary, UserState};
use time::OffsetDateTime;

use crate::error::AppError;
use crate::model::*;
use crate::state::Transition;

use super::App;

/// What is due for one user at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    Nothing,
    /// The project's "keep in sync every N hours" asks for a delta pass.
    Sync,
    /// The user's cutover time came: a final delta pass, then Cut over.
    Cutover,
}

/// When the user switches: its own time (a CSV batch's) wins over the project's.
pub fn cutover_time(project: &Project, user: &MailUser) -> Option<OffsetDateTime> {
    user.sync.cutover_at.or(project.sync.cutover_at)
}

/// What is due for `user` at `now`. Only finished users (Completed, Verified) are looked at: a
/// user still copying gets its final pass once it finishes, one not started yet is behind and
/// stays so until the admin acts, and a Cut over user is done.
pub(crate) fn due(project: &Project, user: &MailUser, now: OffsetDateTime) -> Due {
    if project.closed_at.is_some()
        || !matches!(user.state, UserState::Completed | UserState::Verified)
    {
        return Due::Nothing;
    }
    if cutover_time(project, user).is_some_and(|at| at <= now) {
        return Due::Cutover;
    }
    let Some(hours) = project.sync.every_hours else {
        return Due::Nothing;
    };
    let last = user.sync.pass_ended_at.unwrap_or(user.updated_at);
    if last + time::Duration::hours(hours.into()) <= now {
        Due::Sync
    } else {
        Due::Nothing
    }
}

/// "2027-01-15 18:00 UTC".
pub fn date_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// What a part of a delta pass changed on the target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DeltaChanges {
    pub flags: u64,
    pub removed: u64,
    pub moved: u64,
}

/// How many passes the tick started and users it cut over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncTick {
    pub syncs: u32,
    pub final_passes: u32,
    pub cut_over: u32,
}

impl App {
    /// Starts what the projects' sync schedules and cutover times ask for at `now` (the
    /// clock's time in production; tests pass a later one rather than wait hours).
    pub async fn sync_due(&self, now: OffsetDateTime) -> Result<SyncTick, AppError> {
        let mut tick = SyncTick::default();
        for project in self.deps.store.list_projects().await? {
            if project.closed_at.is_some() || !self.has_finished_users(&project).await? {
                continue;
            }
            for state in [UserState::Completed, UserState::Verified] {
                let mut offset = 0;
                loop {
                    let query = UserQuery {
                        state: Some(state),
                        offset,
                        limit: UserQuery::MAX_LIMIT,
                        ..UserQuery::default()
                    };
                    let (users, _) = self.deps.store.list_users(project.id, &query).await?;
                    let n = users.len() as u64;
                    let before = tick;
                    for user in users {
                        self.start_what_is_due(&project, &user, now, &mut tick)
                            .await;
                    }
                    if n < UserQuery::MAX_LIMIT {
                        break;
                    }
                    // A started user leaves this state: the next page starts that many places
                    // earlier.
                    let started = (tick.syncs + tick.final_passes + tick.cut_over)
                        - (before.syncs + before.final_passes + before.cut_over);
                    offset += n - u64::from(started);
                }
            }
        }
        Ok(tick)
    }

    /// Whether the project has users a sync or cutover could be due for (a user's own
    /// cutover time is on its record, so only finished users are read).
    async fn has_finished_users(&self, project: &Project) -> Result<bool, AppError> {
        let counts = self.deps.store.count_users_by_state(project.id).await?;
        Ok(counts
            .iter()
            .any(|(s, n)| *n > 0 && matches!(s, UserState::Completed | UserState::Verified)))
    }

    async fn start_what_is_due(
        &self,
        project: &Project,
        user: &MailUser,
        now: OffsetDateTime,
        tick: &mut SyncTick,
    ) {
        let due = due(project, user, now);
        if due == Due::Nothing {
            return;
        }
        let can_copy = self.require_passwords(project, user).await.is_ok();
        let result = match (due, can_copy) {
            (Due::Sync, true) => self
                .start_delta(user, PassReason::Schedule)
                .await
                .map(|_| tick.syncs += 1),
            // Nothing to sync with: the schedule waits for passwords (or the cutover).
            (Due::Sync, false) => Ok(()),
            (Due::Cutover, true) => self
                .start_delta(user, PassReason::Cutover)
                .await
                .map(|_| tick.final_passes += 1),
            (Due::Cutover, false) => self
                .cut_over_without_pass(project, user)
                .await
                .map(|_| tick.cut_over += 1),
            (Due::Nothing, _) => Ok(()),
        };
        match result {
            Ok(()) | Err(AppError::Conflict(_)) => {}
            Err(e) => {
                tracing::warn!(user = %user.id, error = %e, "could not start the sync or cutover")
            }
        }
    }

    /// The admin's "cut over now": the user's cutover time becomes now; a finished user gets
    /// its final pass at once (or is Cut over as it is, without passwords), a user still
    /// copying gets it when the pass ends.
    pub(crate) async fn cut_over_now(
        &self,
        project: &Project,
        user: &MailUser,
    ) -> Result<MailUser, AppError> {
        let now = self.deps.clock.now();
        match user.state {
            UserState::Completed
            | UserState::Verified
            | UserState::Scheduled
            | UserState::Working => {}
            // A final pass that cannot succeed (the passwords are gone, the old account is
            // closed): cut over as it is; the events say what was not copied.
            UserState::Failed
                if user
                    .sync
                    .pass
                    .as_ref()
                    .is_some_and(|p| p.reason == PassReason::Cutover) =>
            {
                self.cut_over_without_pass(project, user).await?;
                return self.user(user.id).await;
            }
            UserState::CutOver => {
                return Err(AppError::Conflict(format!(
                    "{} is cut over already",
                    user.source_email
                )));
            }
            _ => {
                return Err(AppError::Conflict(format!(
                    "{} is {}: a user is cut over after its first pass is complete",
                    user.source_email,
                    user.state.label().to_lowercase()
                )));
            }
        }
        self.update_user_with(user.id, |u| u.sync.cutover_at = Some(now))
            .await?;
        let user = self.user(user.id).await?;
        match due(project, &user, now) {
            Due::Cutover if self.require_passwords(project, &user).await.is_ok() => {
                self.start_delta(&user, PassReason::Cutover).await
            }
            Due::Cutover => {
                self.cut_over_without_pass(project, &user).await?;
                self.user(user.id).await
            }
            _ => Ok(user),
        }
    }

    /// Starts a delta pass and records why, so its end knows what to do and can say what it
    /// changed.
    pub(crate) async fn start_delta(
        &self,
        user: &MailUser,
        reason: PassReason,
    ) -> Result<MailUser, AppError> {
        self.schedule(user, Transition::Delta, |u| {
            u.pass += 1;
            u.sync.pass = Some(PassInfo {
                pass: u.pass,
                reason,
                messages_before: u.progress.messages_done,
                flag_changes: 0,
                removed: 0,
                moved: 0,
            });
        })
        .await
    }

    /// Counts what a delta pass changed on the target (flags set, copies removed, moved).
    pub(super) async fn count_delta_changes(&self, user: UserId, pass: u32, changes: DeltaChanges) {
        if changes == DeltaChanges::default() {
            return;
        }
        let counted = self
            .update_user_with(user, |u| {
                if let Some(info) = u.sync.pass.as_mut().filter(|i| i.pass == pass) {
                    info.flag_changes += changes.flags;
                    info.removed += changes.removed;
                    info.moved += changes.moved;
                }
            })
            .await;
        if let Err(e) = counted {
            tracing::warn!(user = %user, error = %e, "could not count the delta pass's changes");
        }
    }

    /// A user whose cutover came but whose passwords are gone (deleted when it was verified):
    /// no final pass can run, so it is Cut over as it is, and the admin and user are told that
    /// mail that reached the old mailbox since its last pass was not copied.
    async fn cut_over_without_pass(
        &self,
        project: &Project,
        user: &MailUser,
    ) -> Result<(), AppError> {
        let now = self.deps.clock.now();
        let cut = self
            .transition(user, Transition::CutOver, |u| {
                u.sync.cut_over_at = Some(now)
            })
            .await?;
        let since = user
            .sync
            .pass_ended_at
            .map_or_else(|| "the last pass".to_owned(), date_time);
        self.log_event(
            &cut,
            format!(
                "cut over without a final delta pass: no passwords are stored any more (deleted when the user was verified); mail that reached the old mailbox after {since} was not copied"
            ),
        )
        .await;
        self.send_cutover_mail(project, &cut).await;
        Ok(())
    }
}

/// What a finished delta pass changed, from what it recorded at its start.
pub(crate) fn summary_of(user: &MailUser, ended_at: OffsetDateTime) -> Option<SyncSummary> {
    let info = user.sync.pass.as_ref().filter(|i| i.pass == user.pass)?;
    Some(SyncSummary {
        pass: info.pass,
        reason: info.reason.as_str().to_owned(),
        ended_at,
        // A moved message is counted as copied into its new folder; it is not new mail.
        new_messages: user
            .progress
            .messages_done
            .saturating_sub(info.messages_before)
            .saturating_sub(info.moved),
        flag_changes: info.flag_changes,
        removed: info.removed,
        moved: info.moved,
    })
}

#[cfg(test)]
mod tests;
