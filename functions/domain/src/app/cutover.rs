//! The cutover mail and the device set-up link: what a user who switched to the new account
//! is told, and what the set-up page (`web::device_setup`) shows for the link. Nothing here
//! holds a password: the new account's user has one, or signs in with the service.

use contract::{DeviceSetup, Security};
use time::OffsetDateTime;

use crate::error::AppError;
use crate::model::*;
use crate::ports::OutgoingMail;

use super::App;
use super::sync::date_time;

/// How long a device set-up link works.
pub const SETUP_LINK_DAYS: i64 = 30;

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

impl App {
    /// Mails the user the new account's settings and a device set-up link. A failure to send is
    /// logged and left in the user's events for the admin; the user stays Cut over.
    pub(super) async fn send_cutover_mail(&self, project: &Project, user: &MailUser) {
        let now = self.deps.clock.now();
        let (secret, invite) = Invite::issue(
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
        // To the mailbox the user reads until the new one is set up (the invites' address, or
        // the old one): the new account may not be on any device yet.
        let to = match project.invite_to {
            contract::InviteTo::Target => user.target_email.clone(),
            contract::InviteTo::Source | contract::InviteTo::None => user.source_email.clone(),
        };
        let mail = OutgoingMail {
            to: to.clone(),
            to_name: user.display_name.clone(),
            subject: format!("Your mailbox has moved to {}", user.target_email),
            text: cutover_mail_text(&setup, &name, &link, ""),
        };
        match self.deps.mailer.send(&mail).await {
            Ok(()) => {
                self.log_event(
                    user,
                    format!("cut over; the new account's settings were mailed to {to}"),
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
