//! The end user's side: what the credential page shows, submitting passwords, and the status
//! read after Start. The token in the link is the only authentication, so every path checks it
//! the same way, and a wrong password costs an attempt but never the link itself.

use contract::{AccountSettings, CredentialsInput, InviteView, MigrationStatus, UserState};

use crate::audit::{Actor, AuditAction};
use crate::error::{AppError, LoginError, StoreError};
use crate::model::*;
use crate::secret::{Credential, Secret};
use crate::state::Transition;
use crate::token;

use super::App;
use super::connection_test::describe_login_error;
use super::projects::{Side, check_password, login_for};

impl App {
    /// The stored record of a link token made for `purpose`; malformed tokens, unknown ones
    /// and those made for the other page are all `None`, alike from outside.
    pub(super) async fn link(
        &self,
        token: &str,
        purpose: LinkPurpose,
    ) -> Result<Option<Invite>, AppError> {
        if !token::looks_valid(token) {
            return Ok(None);
        }
        Ok(self
            .deps
            .store
            .get_invite(&token::hash(token))
            .await?
            .filter(|i| i.purpose == purpose))
    }

    /// Resolves a link token; unknown and malformed tokens look the same from outside.
    pub(super) async fn invite_for(
        &self,
        token: &str,
    ) -> Result<(Invite, MailUser, Project), AppError> {
        let invite = self
            .link(token, LinkPurpose::Credentials)
            .await?
            .ok_or(AppError::NotFound("invite link"))?;
        let user = self
            .deps
            .store
            .get_user(invite.user_id)
            .await?
            .ok_or(AppError::NotFound("invite link"))?;
        let project = self
            .deps
            .store
            .get_project(invite.project_id)
            .await?
            .ok_or(AppError::NotFound("invite link"))?;
        Ok((invite, user, project))
    }

    /// Whether the user still has to submit credentials through this link.
    pub(super) fn awaiting_credentials(user: &MailUser) -> bool {
        matches!(user.state, UserState::New | UserState::EmailSent)
    }

    /// Refuses a link whose user started already, or that expired or locked: what the page
    /// sends (credentials, a sign-in) would change nothing.
    pub(super) fn check_link_usable(
        &self,
        invite: &Invite,
        user: &MailUser,
    ) -> Result<(), AppError> {
        if !Self::awaiting_credentials(user) {
            return Err(AppError::Conflict(
                "this migration has already started; you can close this page".into(),
            ));
        }
        if invite.expires_at <= self.deps.clock.now() {
            return Err(AppError::InviteExpired);
        }
        if invite.is_locked() {
            return Err(AppError::InviteLocked);
        }
        Ok(())
    }

    pub async fn invite_view(&self, token: &str) -> Result<InviteView, AppError> {
        let (invite, user, project) = self.invite_for(token).await?;
        if Self::awaiting_credentials(&user) {
            if invite.expires_at <= self.deps.clock.now() {
                return Err(AppError::InviteExpired);
            }
            if invite.is_locked() {
                return Err(AppError::InviteLocked);
            }
        }
        let creds = if project.source.is_sign_in() || project.target.is_sign_in() {
            self.credentials(&project, user.id)
                .await?
                .unwrap_or_default()
        } else {
            UserCredentials::default()
        };
        let asks_password = |c: &Connector| c.is_per_user() && !c.is_sign_in();
        Ok(InviteView {
            project_name: project.name.clone(),
            display_name: user.display_name.clone(),
            source_email: user.source_email.to_string(),
            target_email: user.target_email.to_string(),
            asks_source_password: asks_password(&project.source),
            asks_target_password: asks_password(&project.target),
            source_sign_in: Self::sign_in_offer(&project.source, creds.source_sign_in.as_ref()),
            target_sign_in: Self::sign_in_offer(&project.target, creds.target_sign_in.as_ref()),
            state: user.state,
            attempts_left: invite.attempts_left(),
            expires_at: invite.expires_at,
        })
    }

    /// Tests the typed passwords against the real servers; on success stores them sealed,
    /// schedules the copy and returns the status.
    pub async fn submit_credentials(
        &self,
        token: &str,
        input: &CredentialsInput,
        client: Option<std::net::IpAddr>,
    ) -> Result<MigrationStatus, AppError> {
        let (invite, user, project) = self.invite_for(token).await?;
        Self::require_open(&project)?;
        let actor = Actor::user(user.source_email.as_str(), client);
        let subject = user.source_email.to_string();
        self.check_link_usable(&invite, &user)?;
        let pick = |needed: bool,
                    field: &str,
                    value: &Option<String>|
         -> Result<Option<Secret>, AppError> {
            match (needed, value) {
                (false, _) => Ok(None),
                (true, None) => Err(AppError::validation_field(field, "enter your password")),
                (true, Some(p)) => {
                    check_password(field, p)?;
                    Ok(Some(Secret::new(p.as_str())))
                }
            }
        };
        let asks_password = |c: &Connector| c.is_per_user() && !c.is_sign_in();
        let src_pw = pick(
            asks_password(&project.source),
            "source_password",
            &input.source_password,
        )?;
        let tgt_pw = pick(
            asks_password(&project.target),
            "target_password",
            &input.target_password,
        )?;
        // Sides where the user signs in: the sign-in must have happened, and still work.
        let mut creds = self.signed_in_credentials(&project, &user).await?;
        if src_pw.is_none() && tgt_pw.is_none() {
            // Nothing to test: every side the user brings is signed in.
            return self
                .schedule_from_link(&project, &user, &actor, "signed-in")
                .await;
        }

        // The attempt is taken before any server is asked: requests sent at once cannot test
        // more passwords than the link allows.
        let invite = self.reserve_attempt(&invite).await?;
        for (connector, email, pw) in [
            (&project.source, &user.source_email, &src_pw),
            (&project.target, &user.target_email, &tgt_pw),
        ] {
            let Some(pw) = pw else { continue };
            let pw = &Credential::Password(pw.clone());
            let endpoint = connector.endpoint();
            let login = login_for(connector, email);
            match self
                .deps
                .mailboxes
                .test_login(&endpoint, &login, pw, self.config.login_timeout)
                .await
            {
                Ok(_) => {
                    let detail = format!("accepted by {}", endpoint.host);
                    self.audit(
                        Some(project.id),
                        &actor,
                        AuditAction::CredentialsTested,
                        Some(&subject),
                        &detail,
                    )
                    .await;
                }
                Err(LoginError::Rejected(_)) => {
                    let left = self.settle_attempt(&invite, true).await?;
                    let detail = format!(
                        "the password for {email} was rejected by {}; {left} attempts left",
                        endpoint.host
                    );
                    self.audit(
                        Some(project.id),
                        &actor,
                        AuditAction::CredentialsTested,
                        Some(&subject),
                        &detail,
                    )
                    .await;
                    let message = if left == 0 {
                        format!(
                            "The password for {email} was not accepted. The link is now locked; ask your administrator for a new one."
                        )
                    } else {
                        format!(
                            "The password for {email} was not accepted by {}. {left} attempt{} left.",
                            endpoint.host,
                            if left == 1 { "" } else { "s" }
                        )
                    };
                    self.log_event(
                        &user,
                        format!("a password for {email} was rejected ({left} attempts left)"),
                    )
                    .await;
                    return Err(AppError::CredentialsRejected {
                        message,
                        attempts_left: left,
                    });
                }
                Err(other) => {
                    // Not the user's fault: the attempt is given back. The page is open to
                    // whoever holds the link: it names the server, not its port or the
                    // system's error, which go to the log and the audit trail.
                    self.settle_attempt(&invite, false).await?;
                    let detail = describe_login_error(&endpoint, &other);
                    tracing::warn!(user = %user.id, error = %detail, "a credential test could not reach the server");
                    self.audit(
                        Some(project.id),
                        &actor,
                        AuditAction::CredentialsTested,
                        Some(&subject),
                        &format!("not tested: {detail}"),
                    )
                    .await;
                    return Err(AppError::Upstream(format!(
                        "The mail server {} could not be reached just now. Your password was not checked; please try again in a few minutes.",
                        endpoint.host
                    )));
                }
            }
        }
        self.settle_attempt(&invite, false).await?;

        creds.source_password = src_pw.as_ref().map(|s| s.expose().to_owned());
        creds.target_password = tgt_pw.as_ref().map(|s| s.expose().to_owned());
        self.store_credentials(&project, &user, &creds).await?;
        let sides = super::users::sides_named(src_pw.is_some(), tgt_pw.is_some());
        self.schedule_from_link(&project, &user, &actor, &format!("{sides} password"))
            .await
    }

    /// The user's stored credentials, once every side where the user signs in has a sign-in
    /// that still renews (one revoked since, or by a replayed code, is found now, not
    /// mid-copy).
    async fn signed_in_credentials(
        &self,
        project: &Project,
        user: &MailUser,
    ) -> Result<UserCredentials, AppError> {
        let mut creds = self
            .credentials(project, user.id)
            .await?
            .unwrap_or_default();
        for side in [Side::Source, Side::Target] {
            if !side.of(project).is_sign_in() {
                continue;
            }
            let field = format!("{}_sign_in", side.as_str());
            if side.sign_in_of(&mut creds).is_none() {
                return Err(AppError::validation_field(
                    &field,
                    format!("sign in for {} first", side.email(user)),
                ));
            }
            if !self.sign_in_still_works(project, user, side).await? {
                return Err(AppError::validation_field(
                    &field,
                    format!(
                        "the sign-in for {} no longer works: sign in again",
                        side.email(user)
                    ),
                ));
            }
        }
        // Read again: a check that renewed may have kept a rotated refresh token, which the
        // credentials stored after this must carry.
        Ok(self
            .credentials(project, user.id)
            .await?
            .unwrap_or_default())
    }

    /// Queues the user's copy once the link brought every credential; `what` names them for
    /// the audit trail.
    async fn schedule_from_link(
        &self,
        project: &Project,
        user: &MailUser,
        actor: &Actor,
        what: &str,
    ) -> Result<MigrationStatus, AppError> {
        let subject = user.source_email.to_string();
        let scheduled = self
            .schedule(user, Transition::Schedule, |u| u.has_credentials = true)
            .await
            .map_err(|e| match e {
                AppError::Conflict(_) => AppError::Conflict(
                    "this migration has already started; you can close this page".into(),
                ),
                other => other,
            })?;
        self.log_event(&scheduled, "credentials entered on the invite page".into())
            .await;
        self.audit(
            Some(project.id),
            actor,
            AuditAction::CredentialsSubmitted,
            Some(&subject),
            &format!("{what} credentials stored from the invite page; copy scheduled"),
        )
        .await;
        Ok(self.status_of(&scheduled, project))
    }

    /// Seals and stores a user's credentials (passwords and sign-ins), bound to the project's
    /// servers.
    pub(crate) async fn store_credentials(
        &self,
        project: &Project,
        user: &MailUser,
        creds: &UserCredentials,
    ) -> Result<(), AppError> {
        let json = serde_json::to_vec(creds).map_err(AppError::internal)?;
        let sealed = self
            .deps
            .vault
            .seal(&json, &super::users::credentials_aad(user.id, project))
            .await?;
        self.deps.store.put_credentials(user.id, &sealed).await?;
        Ok(())
    }

    /// Takes one attempt of the link for a password test, with a version-checked write: refused
    /// with a wait while another test of this link runs, and when none is left.
    async fn reserve_attempt(&self, invite: &Invite) -> Result<Invite, AppError> {
        let now = self.deps.clock.now();
        // Both servers may be tried, each within the login timeout.
        let testing_until = now + self.config.login_timeout * 2;
        self.update_invite_with(invite, |current| {
            if let Some(until) = current.testing_until.filter(|u| *u > now) {
                return Err(AppError::TooManyRequests {
                    message: "a password for this link is being checked; try again in a moment"
                        .into(),
                    retry_after: (until - now).unsigned_abs(),
                });
            }
            if current.is_locked() {
                return Err(AppError::InviteLocked);
            }
            current.failed_attempts += 1;
            current.testing_until = Some(testing_until);
            Ok(())
        })
        .await
    }

    /// Ends a password test: a rejected password keeps its attempt spent, anything else gives
    /// it back. Returns the attempts left.
    async fn settle_attempt(&self, invite: &Invite, spent: bool) -> Result<u32, AppError> {
        let settled = self
            .update_invite_with(invite, |current| {
                if !spent {
                    current.failed_attempts = current.failed_attempts.saturating_sub(1);
                }
                current.testing_until = None;
                Ok(())
            })
            .await?;
        Ok(settled.attempts_left())
    }

    /// Applies `change` to the stored invite with a version-checked write, reading it again
    /// when someone wrote meanwhile.
    async fn update_invite_with(
        &self,
        invite: &Invite,
        change: impl Fn(&mut Invite) -> Result<(), AppError>,
    ) -> Result<Invite, AppError> {
        let mut current = invite.clone();
        for _ in 0..8 {
            let mut next = current.clone();
            change(&mut next)?;
            next.version = current.version + 1;
            match self.deps.store.update_invite(&next, current.version).await {
                Ok(()) => return Ok(next),
                Err(StoreError::Conflict) => {
                    current = self
                        .deps
                        .store
                        .get_invite(&invite.token_hash)
                        .await?
                        .ok_or(AppError::NotFound("invite link"))?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::TooManyRequests {
            message: "too many attempts at once; try again in a moment".into(),
            retry_after: std::time::Duration::from_secs(2),
        })
    }

    /// The status the credential page polls after Start.
    pub async fn migration_status(&self, token: &str) -> Result<MigrationStatus, AppError> {
        let (invite, user, project) = self.invite_for(token).await?;
        if Self::awaiting_credentials(&user) && invite.expires_at <= self.deps.clock.now() {
            return Err(AppError::InviteExpired);
        }
        Ok(self.status_of(&user, &project))
    }

    fn status_of(&self, user: &MailUser, project: &Project) -> MigrationStatus {
        let done = matches!(user.state, UserState::Completed | UserState::Verified);
        MigrationStatus {
            state: user.state,
            pass: user.pass,
            progress: user.progress.clone(),
            source_email: user.source_email.to_string(),
            target_email: user.target_email.to_string(),
            new_account: done.then(|| AccountSettings {
                email: user.target_email.to_string(),
                imap_host: project.target.host.clone(),
                imap_port: project.target.port,
                security: project.target.security,
                web_sign_in: crate::providers::profile(project.target.kind)
                    .webmail
                    .map(|w| w.value.to_owned()),
            }),
        }
    }
}
