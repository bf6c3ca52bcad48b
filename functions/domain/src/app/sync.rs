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

use contract::{DeviceSetup, Security, SyncSummary, UserState};
use time::OffsetDateTime;

use crate::error::AppError;
use crate::model::*;
use crate::ports::OutgoingMail;
use crate::state::Transition;
use crate::token;

use super::App;

/// How long a device set-up link works.
pub const SETUP_LINK_DAYS: i64 = 30;

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

/// How a mail app reaches the user's new account. No password: the user has one (or signs
/// in with the service); nothing here could open the mailbox.
pub(crate) fn device_setup_for(
    project: &Project,
    user: &MailUser,
    link_expires_at: OffsetDateTime,
) -> DeviceSetup {
    let profile = crate::providers::profile(project.target.kind);
    let signs_in = profile.webmail.is_some();
    let smtp_port = project.sync.smtp_port.unwrap_or(587);
    DeviceSetup {
        email: user.target_email.to_string(),
        display_name: user.display_name.clone(),
        imap_host: project.target.host.clone(),
        imap_port: project.target.port,
        imap_security: project.target.security,
        smtp_host: project
            .sync
            .smtp_host
            .clone()
            .unwrap_or_else(|| project.target.host.clone()),
        smtp_port,
        smtp_security: if smtp_port == 465 {
            Security::Tls
        } else {
            Security::Starttls
        },
        web_sign_in: profile.webmail.map(|w| w.value.to_owned()),
        service: signs_in.then(|| profile.name.to_owned()),
        link_expires_at,
    }
}

fn security_name(s: Security) -> &'static str {
    match s {
        Security::Tls => "SSL/TLS",
        Security::Starttls => "STARTTLS",
        Security::Plaintext => "none",
    }
}

/// The cutover mail: the new address, how to reach it, and the set-up link. Never a password.
pub(crate) fn cutover_mail_text(s: &DeviceSetup, name: &str, link: &str, note: &str) -> String {
    let how = match (&s.web_sign_in, &s.service) {
        (Some(url), Some(service)) => format!(
            "Your new mailbox is on {service}. Sign in at {url} with {email}; in a mail app, add the \
             account by signing in with {email} (no server settings are needed).\n",
            email = s.email
        ),
        _ => format!(
            "Settings for a mail app:\n\
             \x20 Incoming (IMAP): {ih}, port {ip}, {is}\n\
             \x20 Outgoing (SMTP): {sh}, port {sp}, {ss}\n\
             \x20 User name: {email}\n\
             \x20 Password: your new mailbox's password\n",
            ih = s.imap_host,
            ip = s.imap_port,
            is = security_name(s.imap_security),
            sh = s.smtp_host,
            sp = s.smtp_port,
            ss = security_name(s.smtp_security),
            email = s.email
        ),
    };
    format!(
        "Hello {name},\n\n\
         your mailbox has moved. From now on your mail is at {email}.{note}\n\n\
         {how}\n\
         Set up your phone, tablet or computer with this page (one-tap profiles for iPhone, iPad and \
         Mac, and steps for Outlook, Android and Thunderbird):\n\n{link}\n\n\
         The link is personal and works until {expires}.\n",
        email = s.email,
        expires = date_time(s.link_expires_at),
    )
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
                    for user in users {
                        self.start_what_is_due(&project, &user, now, &mut tick)
                            .await;
                    }
                    // A started user leaves this state, so the next page starts fewer places on.
                    if n < UserQuery::MAX_LIMIT {
                        break;
                    }
                    offset += n;
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
            });
        })
        .await
    }

    /// Counts what a delta pass changed on the target (flags set, copies removed).
    pub(super) async fn count_delta_changes(
        &self,
        user: UserId,
        pass: u32,
        flag_changes: u64,
        removed: u64,
    ) {
        if flag_changes == 0 && removed == 0 {
            return;
        }
        let counted = self
            .update_user_with(user, |u| {
                if let Some(info) = u.sync.pass.as_mut().filter(|i| i.pass == pass) {
                    info.flag_changes += flag_changes;
                    info.removed += removed;
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

    /// Mails the user the new account's settings and a device set-up link. A failure to send is
    /// logged and left in the user's events for the admin; the user stays Cut over.
    pub(super) async fn send_cutover_mail(&self, project: &Project, user: &MailUser) {
        let secret = token::generate();
        let now = self.deps.clock.now();
        let invite = Invite::new(
            &secret,
            user,
            now,
            now + time::Duration::days(SETUP_LINK_DAYS),
            LinkPurpose::DeviceSetup,
        );
        if let Err(e) = self.deps.store.insert_invite(&invite).await {
            tracing::warn!(user = %user.id, error = %e, "could not store the device set-up link");
            self.log_event(
                user,
                "the cutover mail was not sent: the set-up link could not be stored".into(),
            )
            .await;
            return;
        }
        let setup = device_setup_for(project, user, invite.expires_at);
        let link = format!("{}/setup/{}", self.config.public_url, secret);
        let name = if user.display_name.is_empty() {
            user.target_email.to_string()
        } else {
            user.display_name.clone()
        };
        let mail = OutgoingMail {
            to: user.target_email.clone(),
            to_name: user.display_name.clone(),
            subject: format!("Your mailbox has moved to {}", user.target_email),
            text: cutover_mail_text(&setup, &name, &link, ""),
        };
        match self.deps.mailer.send(&mail).await {
            Ok(()) => {
                self.log_event(
                    user,
                    format!(
                        "cut over; the new account's settings were mailed to {}",
                        user.target_email
                    ),
                )
                .await
            }
            Err(e) => {
                tracing::warn!(user = %user.id, error = %e, "could not send the cutover mail");
                self.log_event(
                    user,
                    format!("cut over; the cutover mail could not be sent: {e}"),
                )
                .await;
            }
        }
    }

    /// What the device set-up page shows for a set-up link.
    pub async fn device_setup(&self, token: &str) -> Result<DeviceSetup, AppError> {
        let invite = self
            .link(token, LinkPurpose::DeviceSetup)
            .await?
            .ok_or(AppError::NotFound("set-up link"))?;
        if invite.expires_at <= self.deps.clock.now() {
            return Err(AppError::InviteExpired);
        }
        let user = self
            .deps
            .store
            .get_user(invite.user_id)
            .await?
            .ok_or(AppError::NotFound("set-up link"))?;
        let project = self.project(invite.project_id).await?;
        Ok(device_setup_for(&project, &user, invite.expires_at))
    }
}

/// What a finished delta pass changed, from what it recorded at its start.
pub(crate) fn summary_of(user: &MailUser, ended_at: OffsetDateTime) -> Option<SyncSummary> {
    let info = user.sync.pass.as_ref().filter(|i| i.pass == user.pass)?;
    Some(SyncSummary {
        pass: info.pass,
        reason: info.reason.as_str().to_owned(),
        ended_at,
        new_messages: user
            .progress
            .messages_done
            .saturating_sub(info.messages_before),
        flag_changes: info.flag_changes,
        removed: info.removed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::{ConnectorKind, InviteTo};
    use time::macros::datetime;

    fn project(kind: ConnectorKind, plan: contract::SyncPlan) -> Project {
        let connector = |host: &str| Connector {
            kind,
            host: host.into(),
            port: 993,
            security: Security::Tls,
            auth: ConnectorAuth::PerUser,
        };
        Project {
            id: ProjectId::new(),
            name: "p".into(),
            source: connector("imap.old.example"),
            target: connector("imap.new.example"),
            invite_to: InviteTo::Source,
            admin_email: None,
            notify_user: false,
            copy: Default::default(),
            retention: Default::default(),
            sync: plan,
            closed_at: None,
            created_at: datetime!(2026-01-01 0:00 UTC),
            version: 1,
        }
    }

    fn user(state: UserState, ended: OffsetDateTime) -> MailUser {
        MailUser {
            id: UserId::new(),
            project_id: ProjectId::new(),
            source_email: EmailAddress::parse("ann@old.example").unwrap(),
            target_email: EmailAddress::parse("ann@new.example").unwrap(),
            display_name: "Ann <Admin> & Co".into(),
            state,
            pass: 2,
            progress: Default::default(),
            last_error: None,
            priority: 0,
            waiting_since: None,
            sync: SyncState {
                pass_ended_at: Some(ended),
                ..SyncState::default()
            },
            line: None,
            has_credentials: true,
            invite_sent_at: None,
            created_at: ended,
            updated_at: ended,
            version: 1,
        }
    }

    const ENDED: OffsetDateTime = datetime!(2027-01-10 12:00 UTC);

    #[test]
    fn a_finished_user_is_synced_every_n_hours_from_its_last_pass() {
        let p = project(
            ConnectorKind::Imap,
            contract::SyncPlan {
                every_hours: Some(6),
                ..Default::default()
            },
        );
        for state in [UserState::Completed, UserState::Verified] {
            let u = user(state, ENDED);
            assert_eq!(due(&p, &u, datetime!(2027-01-10 17:59 UTC)), Due::Nothing);
            assert_eq!(due(&p, &u, datetime!(2027-01-10 18:00 UTC)), Due::Sync);
        }
        for state in [
            UserState::New,
            UserState::Scheduled,
            UserState::Working,
            UserState::Failed,
            UserState::Paused,
            UserState::CutOver,
        ] {
            let u = user(state, ENDED);
            assert_eq!(
                due(&p, &u, datetime!(2027-02-01 0:00 UTC)),
                Due::Nothing,
                "{state:?}"
            );
        }
        let off = project(ConnectorKind::Imap, Default::default());
        let u = user(UserState::Completed, ENDED);
        assert_eq!(due(&off, &u, datetime!(2027-02-01 0:00 UTC)), Due::Nothing);
        let mut closed = p.clone();
        closed.closed_at = Some(ENDED);
        assert_eq!(
            due(&closed, &u, datetime!(2027-02-01 0:00 UTC)),
            Due::Nothing
        );
    }

    #[test]
    fn the_cutover_comes_before_a_sync_and_a_users_own_time_wins() {
        let p = project(
            ConnectorKind::Imap,
            contract::SyncPlan {
                every_hours: Some(1),
                cutover_at: Some(datetime!(2027-01-15 18:00 UTC)),
                ..Default::default()
            },
        );
        let mut u = user(UserState::Verified, ENDED);
        assert_eq!(due(&p, &u, datetime!(2027-01-15 17:59 UTC)), Due::Sync);
        assert_eq!(due(&p, &u, datetime!(2027-01-15 18:00 UTC)), Due::Cutover);
        // A batch cut over a day later keeps syncing until its own time.
        u.sync.cutover_at = Some(datetime!(2027-01-16 18:00 UTC));
        assert_eq!(due(&p, &u, datetime!(2027-01-16 0:00 UTC)), Due::Sync);
        assert_eq!(due(&p, &u, datetime!(2027-01-16 18:00 UTC)), Due::Cutover);
        // ... and an earlier batch goes first.
        u.sync.cutover_at = Some(datetime!(2027-01-12 8:00 UTC));
        assert_eq!(due(&p, &u, datetime!(2027-01-12 8:00 UTC)), Due::Cutover);
    }

    #[test]
    fn a_delta_pass_says_what_it_changed() {
        let mut u = user(UserState::Working, ENDED);
        u.progress.messages_done = 130;
        assert_eq!(summary_of(&u, ENDED), None, "no delta pass recorded");
        u.sync.pass = Some(PassInfo {
            pass: 2,
            reason: PassReason::Schedule,
            messages_before: 100,
            flag_changes: 4,
            removed: 1,
        });
        let s = summary_of(&u, ENDED).unwrap();
        assert_eq!(
            (
                s.pass,
                s.reason.as_str(),
                s.new_messages,
                s.flag_changes,
                s.removed
            ),
            (2, "schedule", 30, 4, 1)
        );
        u.pass = 3;
        assert_eq!(summary_of(&u, ENDED), None, "an older pass's record");
    }

    #[test]
    fn the_cutover_mail_gives_the_settings_and_never_a_password() {
        let mut p = project(ConnectorKind::Imap, Default::default());
        let u = user(UserState::Completed, ENDED);
        let s = device_setup_for(&p, &u, datetime!(2027-02-09 12:00 UTC));
        assert_eq!(
            (s.smtp_host.as_str(), s.smtp_port, s.smtp_security),
            ("imap.new.example", 587, Security::Starttls)
        );
        let text = cutover_mail_text(&s, "Ann", "https://m.example/setup/TOKEN", "");
        for want in [
            "ann@new.example",
            "Incoming (IMAP): imap.new.example, port 993, SSL/TLS",
            "Outgoing (SMTP): imap.new.example, port 587, STARTTLS",
            "https://m.example/setup/TOKEN",
            "2027-02-09 12:00 UTC",
        ] {
            assert!(text.contains(want), "{want} missing from:\n{text}");
        }
        p.sync.smtp_host = Some("smtp.new.example".into());
        p.sync.smtp_port = Some(465);
        let s = device_setup_for(&p, &u, ENDED);
        assert_eq!(
            (s.smtp_host.as_str(), s.smtp_port, s.smtp_security),
            ("smtp.new.example", 465, Security::Tls)
        );

        let m365 = project(ConnectorKind::Microsoft365, Default::default());
        let s = device_setup_for(&m365, &u, ENDED);
        assert!(s.web_sign_in.is_some() && s.service.is_some());
        let text = cutover_mail_text(&s, "Ann", "https://m.example/setup/T", "");
        assert!(text.contains("Sign in at"), "{text}");
        assert!(!text.contains("IMAP"), "{text}");
    }
}
