//! How long passwords are kept. A user's stored passwords are deleted when the user is marked
//! verified (see `users.rs`), after the project's idle days without copying or signing in
//! (the sweep below), and when the admin closes the project — which also deletes the project's
//! admin passwords and stops its invite links. Whatever was deleted is asked for again: the
//! copy goes on from its checkpoints once a user re-enters a password or the admin re-enters
//! an admin password.

use std::time::Duration;

use contract::{Retention, UserState};
use time::OffsetDateTime;

use crate::audit::{Actor, AuditAction};
use crate::error::{AppError, StoreError};
use crate::model::{MailUser, Project, ProjectId};

use super::App;

/// The sweep runs at most this often, whatever calls it (the watchdog runs every few minutes).
pub const SWEEP_EVERY: Duration = Duration::from_secs(3600);
const SWEPT_AT_KEY: &str = "retention_swept_at";

pub(crate) fn check_retention(input: &Retention) -> Result<Retention, AppError> {
    if !(1..=365).contains(&input.idle_days) {
        return Err(AppError::validation_field(
            "retention.idle_days",
            "keep passwords 1 to 365 days without activity",
        ));
    }
    Ok(*input)
}

/// Whether the project keeps passwords of its users (a side signs in per user).
fn keeps_user_passwords(project: &Project) -> bool {
    project.source.is_per_user() || project.target.is_per_user()
}

/// Until when the user's own stored passwords are kept if nothing happens; `None` when the
/// user has none that the sweep would delete.
pub(crate) fn credentials_until(project: &Project, user: &MailUser) -> Option<OffsetDateTime> {
    (keeps_user_passwords(project) && user.has_credentials && user.state != UserState::Verified)
        .then(|| user.updated_at + time::Duration::days(i64::from(project.retention.idle_days)))
}

/// Whether the sweep deletes this user's passwords now: idle longer than the project allows,
/// and not in the middle of a copy (a copy is activity; its jobs need the passwords).
pub(crate) fn idle_too_long(project: &Project, user: &MailUser, now: OffsetDateTime) -> bool {
    keeps_user_passwords(project)
        && !matches!(user.state, UserState::Scheduled | UserState::Working)
        && now - user.updated_at > time::Duration::days(i64::from(project.retention.idle_days))
}

impl App {
    /// Refuses what would start anything in a closed project.
    pub(crate) fn require_open(project: &Project) -> Result<(), AppError> {
        match project.closed_at {
            None => Ok(()),
            Some(_) => Err(AppError::Conflict(
                "the project is closed: reopen it first".into(),
            )),
        }
    }

    /// Closes the project: nothing new starts, every stored password of its users and its
    /// admin passwords are deleted, and its invite links stop working. Refused while users
    /// are copying (their jobs need the passwords): pause them or let them finish first.
    pub async fn close_project(&self, id: ProjectId, actor: &Actor) -> Result<Project, AppError> {
        let project = self.project(id).await?;
        if project.closed_at.is_some() {
            return Err(AppError::Conflict("the project is already closed".into()));
        }
        let users = self.all_users(id).await?;
        let copying = users
            .iter()
            .filter(|u| matches!(u.state, UserState::Scheduled | UserState::Working))
            .count();
        if copying > 0 {
            return Err(AppError::Conflict(format!(
                "{copying} user{} still copying: pause them or let them finish, then close the project",
                if copying == 1 { " is" } else { "s are" }
            )));
        }
        // Closed first, so nothing starts while the passwords go.
        let mut closed = project.clone();
        closed.closed_at = Some(self.deps.clock.now());
        closed.version = project.version + 1;
        for side in [&mut closed.source, &mut closed.target] {
            side.auth.forget_secret();
        }
        self.write_project(&closed, project.version).await?;
        let mut purged = 0;
        for user in &users {
            self.deps.store.delete_invites_of_user(user.id).await?;
            if self
                .purge_credentials(&closed, user, "the project was closed", actor)
                .await?
                .1
            {
                purged += 1;
            }
        }
        let admin = [&project.source, &project.target]
            .iter()
            .filter(|c| c.auth.admin_secret().is_some())
            .count();
        self.audit(
            Some(id),
            actor,
            AuditAction::ProjectClosed,
            None,
            &format!(
                "passwords of {purged} user{} and {admin} admin password{} deleted; invite links stopped",
                if purged == 1 { "" } else { "s" },
                if admin == 1 { "" } else { "s" }
            ),
        )
        .await;
        Ok(closed)
    }

    /// Opens a closed project again. Deleted passwords stay deleted: admin passwords are
    /// entered again in the settings, users' through a new invite.
    pub async fn reopen_project(&self, id: ProjectId, actor: &Actor) -> Result<Project, AppError> {
        let project = self.project(id).await?;
        if project.closed_at.is_none() {
            return Err(AppError::Conflict("the project is open".into()));
        }
        let mut open = project.clone();
        open.closed_at = None;
        open.version = project.version + 1;
        self.write_project(&open, project.version).await?;
        self.audit(Some(id), actor, AuditAction::ProjectReopened, None, "")
            .await;
        Ok(open)
    }

    /// Stores the project if it is still at `expected_version`.
    async fn write_project(
        &self,
        project: &Project,
        expected_version: u64,
    ) -> Result<(), AppError> {
        self.deps
            .store
            .update_project(project, expected_version)
            .await
            .map_err(|e| match e {
                StoreError::Conflict => AppError::Conflict(
                    "the project was changed meanwhile; reload and try again".into(),
                ),
                other => other.into(),
            })
    }

    /// Deletes the passwords of users idle longer than their project's retention, when the
    /// last sweep is [`SWEEP_EVERY`] old; returns how many users' passwords it deleted.
    pub async fn retention_sweep_if_due(&self) -> Result<u64, AppError> {
        let now = self.deps.clock.now();
        let last = self
            .deps
            .store
            .get_setting(SWEPT_AT_KEY)
            .await?
            .and_then(|s| s.parse::<i64>().ok())
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
        if last.is_some_and(|t| now - t < SWEEP_EVERY && t <= now) {
            return Ok(0);
        }
        self.deps
            .store
            .put_setting(SWEPT_AT_KEY, &now.unix_timestamp().to_string())
            .await?;
        self.retention_sweep().await
    }

    /// Deletes the passwords of every user idle longer than the project's retention.
    pub async fn retention_sweep(&self) -> Result<u64, AppError> {
        let now = self.deps.clock.now();
        let mut purged = 0;
        for project in self.deps.store.list_projects().await? {
            if !keeps_user_passwords(&project) {
                continue;
            }
            let why = format!("{} days without activity", project.retention.idle_days);
            for user in self.all_users(project.id).await? {
                if !idle_too_long(&project, &user, now) {
                    continue;
                }
                let (_, deleted) = self
                    .purge_credentials(&project, &user, &why, &Actor::system())
                    .await?;
                purged += u64::from(deleted);
            }
        }
        if purged > 0 {
            tracing::info!(users = purged, "stored passwords of idle users deleted");
        }
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use contract::{InviteTo, Security};
    use time::macros::datetime;

    fn connector(auth: ConnectorAuth) -> Connector {
        Connector {
            kind: contract::ConnectorKind::Imap,
            host: "imap.example.com".into(),
            port: 993,
            security: Security::Tls,
            auth,
        }
    }

    fn project(source: ConnectorAuth, idle_days: u32) -> Project {
        Project {
            id: ProjectId::new(),
            name: "p".into(),
            source: connector(source),
            target: connector(ConnectorAuth::Admin {
                login_pattern: "admin".into(),
                password: Some(Sealed(vec![1])),
            }),
            invite_to: InviteTo::Source,
            admin_email: None,
            notify_user: false,
            copy: Default::default(),
            retention: Retention { idle_days },
            sync: Default::default(),
            closed_at: None,
            created_at: datetime!(2026-01-01 0:00 UTC),
            version: 1,
        }
    }

    fn user(state: UserState, has_credentials: bool, updated_at: OffsetDateTime) -> MailUser {
        MailUser {
            id: UserId::new(),
            project_id: ProjectId::new(),
            source_email: EmailAddress::parse("a@example.com").unwrap(),
            target_email: EmailAddress::parse("a@example.org").unwrap(),
            display_name: String::new(),
            state,
            pass: 1,
            progress: Default::default(),
            last_error: None,
            priority: 0,
            waiting_since: None,
            sync: Default::default(),
            preflight: None,
            line: None,
            has_credentials,
            invite_sent_at: None,
            created_at: updated_at,
            updated_at,
            version: 1,
        }
    }

    #[test]
    fn idle_users_lose_their_passwords_but_copying_ones_keep_them() {
        let p = project(ConnectorAuth::PerUser, 30);
        let then = datetime!(2026-11-01 12:00 UTC);
        let day31 = then + time::Duration::days(31);
        let day29 = then + time::Duration::days(29);
        for state in [
            UserState::Completed,
            UserState::Failed,
            UserState::Paused,
            UserState::EmailSent,
        ] {
            assert!(
                idle_too_long(&p, &user(state, true, then), day31),
                "{state:?}"
            );
            assert!(
                !idle_too_long(&p, &user(state, true, then), day29),
                "{state:?}"
            );
        }
        for state in [UserState::Scheduled, UserState::Working] {
            assert!(
                !idle_too_long(&p, &user(state, true, then), day31),
                "{state:?}"
            );
        }
    }

    #[test]
    fn admin_accounts_on_both_sides_keep_no_user_passwords() {
        let p = project(
            ConnectorAuth::Admin {
                login_pattern: "a".into(),
                password: Some(Sealed(vec![2])),
            },
            1,
        );
        let u = user(UserState::Completed, true, datetime!(2026-01-01 0:00 UTC));
        assert!(!idle_too_long(&p, &u, datetime!(2026-12-01 0:00 UTC)));
        assert_eq!(credentials_until(&p, &u), None);
    }

    #[test]
    fn the_console_shows_until_when_passwords_are_kept() {
        let p = project(ConnectorAuth::PerUser, 7);
        let at = datetime!(2026-12-01 8:00 UTC);
        assert_eq!(
            credentials_until(&p, &user(UserState::Completed, true, at)),
            Some(datetime!(2026-12-08 8:00 UTC))
        );
        assert_eq!(
            credentials_until(&p, &user(UserState::Completed, false, at)),
            None
        );
        assert_eq!(
            credentials_until(&p, &user(UserState::Verified, true, at)),
            None
        );
    }

    #[test]
    fn retention_is_one_to_365_days() {
        assert!(check_retention(&Retention { idle_days: 0 }).is_err());
        assert!(check_retention(&Retention { idle_days: 366 }).is_err());
        assert_eq!(
            check_retention(&Retention { idle_days: 365 })
                .unwrap()
                .idle_days,
            365
        );
    }
}
