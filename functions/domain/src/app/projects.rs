//! Project and connector use cases.

use std::collections::BTreeMap;

use contract::limits::PASSWORD_MAX_BYTES;
use contract::{ConnectorInput, InviteTo, ProjectInput, ProjectView};

use crate::audit::{Actor, AuditAction};
use crate::error::AppError;
use crate::model::*;

use super::App;
pub(crate) use super::auth_input::CheckedAuth;
use super::auth_input::check_auth;
use super::retention::check_retention;

/// Which connector of a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Source,
    Target,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target => "target",
        }
    }

    pub fn parse(s: &str) -> Option<Side> {
        match s {
            "source" => Some(Side::Source),
            "target" => Some(Side::Target),
            _ => None,
        }
    }

    /// This side's connector of a project.
    pub fn of(self, project: &Project) -> &Connector {
        match self {
            Side::Source => &project.source,
            Side::Target => &project.target,
        }
    }

    /// The user's address on this side.
    pub fn email(self, user: &MailUser) -> &EmailAddress {
        match self {
            Side::Source => &user.source_email,
            Side::Target => &user.target_email,
        }
    }

    /// This side's sign-in among a user's credentials.
    pub fn sign_in_of(self, creds: &mut UserCredentials) -> &mut Option<SignedIn> {
        match self {
            Side::Source => &mut creds.source_sign_in,
            Side::Target => &mut creds.target_sign_in,
        }
    }
}

/// The largest daily budget a project can set, in MB (10 TB).
const DAILY_MB_MAX: u64 = 10_000_000;

pub(crate) fn check_password(field: &str, pw: &str) -> Result<(), AppError> {
    if pw.is_empty() {
        return Err(AppError::validation_field(field, "the password is empty"));
    }
    if pw.len() > PASSWORD_MAX_BYTES {
        return Err(AppError::validation_field(
            field,
            format!("longer than {PASSWORD_MAX_BYTES} bytes"),
        ));
    }
    Ok(())
}

pub(crate) fn check_login_pattern(field: &str, pattern: &str) -> Result<String, AppError> {
    let p = pattern.trim();
    if p.is_empty() || p.len() > 320 {
        return Err(AppError::validation_field(
            field,
            "the login must be 1 to 320 characters",
        ));
    }
    if p.chars().any(|c| c.is_control()) {
        return Err(AppError::validation_field(
            field,
            "the login contains control characters",
        ));
    }
    Ok(p.to_owned())
}

/// Login name for a user on a connector: the admin pattern with `{email}` replaced, or the
/// address itself for per-user passwords.
/// Refuses a text with control characters (NUL, escape sequences, …) other than those in
/// `allowed`: they end up in logs, CSV files and mails.
pub(crate) fn refuse_control_characters(
    field: &str,
    value: &str,
    allowed: &[char],
) -> Result<(), AppError> {
    match value
        .chars()
        .find(|c| c.is_control() && !allowed.contains(c))
    {
        Some(c) => Err(AppError::validation_field(
            field,
            format!(
                "control characters are not allowed (found U+{:04X})",
                c as u32
            ),
        )),
        None => Ok(()),
    }
}

pub fn login_for(connector: &Connector, email: &EmailAddress) -> String {
    match &connector.auth {
        ConnectorAuth::Admin { login_pattern, .. }
        | ConnectorAuth::MicrosoftApp { login_pattern, .. } => {
            login_pattern.replace("{email}", email.as_str())
        }
        ConnectorAuth::PerUser
        | ConnectorAuth::GoogleServiceAccount { .. }
        | ConnectorAuth::UserSignIn { .. } => email.as_str().to_owned(),
    }
}

/// A connector validated from the form, before its admin-level secret is sealed.
pub(crate) struct CheckedConnector {
    pub(crate) kind: contract::ConnectorKind,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) security: contract::Security,
    pub(crate) auth: CheckedAuth,
}

pub(crate) fn check_connector(
    side: &str,
    input: &ConnectorInput,
) -> Result<CheckedConnector, AppError> {
    let host = parse_host(&input.host)
        .map_err(|m| AppError::validation_field(&format!("{side}.host"), m))?;
    if input.port == 0 {
        return Err(AppError::validation_field(
            &format!("{side}.port"),
            "the port must be 1 to 65535",
        ));
    }
    Ok(CheckedConnector {
        kind: input.kind,
        host,
        port: input.port,
        security: input.security,
        auth: check_auth(side, input.kind, &input.auth)?,
    })
}

fn check_copy_options(input: &CopyOptions) -> Result<CopyOptions, AppError> {
    let check_name = |field: &str, s: &str| -> Result<String, AppError> {
        let t = s.trim();
        if t.is_empty() || t.chars().count() > 500 || t.chars().any(char::is_control) {
            return Err(AppError::validation_field(
                field,
                format!("'{t}' must be 1 to 500 characters without control characters"),
            ));
        }
        Ok(t.to_owned())
    };
    let mut out = input.clone();
    out.include = input
        .include
        .iter()
        .map(|p| check_name("copy.include", p))
        .collect::<Result<_, _>>()?;
    out.exclude = input
        .exclude
        .iter()
        .map(|p| check_name("copy.exclude", p))
        .collect::<Result<_, _>>()?;
    out.folder_map = input
        .folder_map
        .iter()
        .map(|m| {
            Ok(FolderMapping {
                from: check_name("copy.folder_map.from", &m.from)?,
                to: check_name("copy.folder_map.to", &m.to)?,
            })
        })
        .collect::<Result<_, AppError>>()?;
    if input.max_message_bytes == Some(0) {
        return Err(AppError::validation_field(
            "copy.max_message_bytes",
            "must be more than 0",
        ));
    }
    if let (Some(since), Some(before)) = (input.since, input.before)
        && since >= before
    {
        return Err(AppError::validation_field(
            "copy.before",
            "must be later than copy.since",
        ));
    }
    let limits = &input.limits;
    for (field, value, max) in [
        ("source_server", limits.source_server, 1000),
        ("target_server", limits.target_server, 1000),
        ("per_mailbox", limits.per_mailbox, 100),
    ] {
        if value.is_some_and(|v| v == 0 || v > max) {
            return Err(AppError::validation_field(
                &format!("copy.limits.{field}"),
                format!("must be from 1 to {max} connections"),
            ));
        }
    }
    for (field, value) in [
        ("daily_download_mb", limits.daily_download_mb),
        ("daily_upload_mb", limits.daily_upload_mb),
    ] {
        if value.is_some_and(|v| v == 0 || v > DAILY_MB_MAX) {
            return Err(AppError::validation_field(
                &format!("copy.limits.{field}"),
                "must be from 1 to 10,000,000 MB a day",
            ));
        }
    }
    Ok(out)
}

/// The sync schedule and cutover as the admin typed them, checked.
fn check_sync_plan(input: &contract::SyncPlan) -> Result<contract::SyncPlan, AppError> {
    if input.every_hours.is_some_and(|h| h == 0 || h > 168) {
        return Err(AppError::validation_field(
            "sync.every_hours",
            "must be from 1 to 168 hours (a week)",
        ));
    }
    let smtp_host = match input.smtp_host.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(h) => {
            Some(parse_host(h).map_err(|m| AppError::validation_field("sync.smtp_host", m))?)
        }
    };
    if input.smtp_port == Some(0) {
        return Err(AppError::validation_field(
            "sync.smtp_port",
            "must be from 1 to 65535",
        ));
    }
    Ok(contract::SyncPlan {
        every_hours: input.every_hours,
        cutover_at: input.cutover_at,
        smtp_host,
        smtp_port: input.smtp_port,
    })
}

impl App {
    async fn build_project(
        &self,
        id: ProjectId,
        input: &ProjectInput,
        existing: Option<&Project>,
    ) -> Result<Project, AppError> {
        let name = input.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(AppError::validation_field(
                "name",
                "the name must be 1 to 200 characters",
            ));
        }
        refuse_control_characters("name", name, &[])?;
        let admin_email = match input.admin_email.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(e) => Some(
                EmailAddress::parse(e).map_err(|m| AppError::validation_field("admin_email", m))?,
            ),
        };
        // Validate both sides before sealing anything, so a bad target does not cost a KMS call.
        let source = check_connector("source", &input.source)?;
        let target = check_connector("target", &input.target)?;
        let signs_in = [&input.source, &input.target]
            .iter()
            .any(|c| matches!(c.auth, contract::AuthInput::UserSignIn { .. }));
        if signs_in && input.invite_to == InviteTo::None {
            return Err(AppError::validation_field(
                "invite_to",
                "users sign in with their account on the invite page: choose where the invite goes",
            ));
        }
        let source = self
            .seal_connector(id, Side::Source, source, existing.map(|p| &p.source))
            .await?;
        let target = self
            .seal_connector(id, Side::Target, target, existing.map(|p| &p.target))
            .await?;
        let now = self.deps.clock.now();
        Ok(Project {
            id,
            name: name.to_owned(),
            source,
            target,
            invite_to: input.invite_to,
            admin_email,
            notify_user: input.notify_user,
            copy: check_copy_options(&input.copy)?,
            retention: check_retention(&input.retention)?,
            sync: check_sync_plan(&input.sync)?,
            closed_at: existing.and_then(|p| p.closed_at),
            created_at: existing.map_or(now, |p| p.created_at),
            version: existing.map_or(1, |p| p.version + 1),
        })
    }

    pub async fn create_project(
        &self,
        input: &ProjectInput,
        actor: &Actor,
    ) -> Result<Project, AppError> {
        let project = self.build_project(ProjectId::new(), input, None).await?;
        self.deps.store.insert_project(&project).await?;
        tracing::info!(project = %project.id, name = %project.name, "project created");
        let detail = format!(
            "'{}': source {}:{}, target {}:{}",
            project.name,
            project.source.host,
            project.source.port,
            project.target.host,
            project.target.port
        );
        self.audit(
            Some(project.id),
            actor,
            AuditAction::ProjectCreated,
            None,
            &detail,
        )
        .await;
        Ok(project)
    }

    /// Replaces a project's settings. With `expected_version`, fails when the project changed
    /// since the admin loaded it.
    pub async fn update_project(
        &self,
        id: ProjectId,
        input: &ProjectInput,
        expected_version: Option<u64>,
        actor: &Actor,
    ) -> Result<Project, AppError> {
        let current = self.project(id).await?;
        if expected_version.is_some_and(|v| v != current.version) {
            return Err(AppError::Conflict(
                "the project was changed meanwhile; reload and try again".into(),
            ));
        }
        let project = self.build_project(id, input, Some(&current)).await?;
        self.deps
            .store
            .update_project(&project, current.version)
            .await?;
        let changes = super::audit_log::project_changes(&current, &project);
        self.audit(Some(id), actor, AuditAction::ProjectUpdated, None, &changes)
            .await;
        Ok(project)
    }

    pub async fn project(&self, id: ProjectId) -> Result<Project, AppError> {
        self.deps
            .store
            .get_project(id)
            .await?
            .ok_or(AppError::NotFound("project"))
    }

    pub async fn project_view(&self, project: &Project) -> Result<ProjectView, AppError> {
        let counts = self.deps.store.count_users_by_state(project.id).await?;
        Ok(ProjectView {
            id: project.id.0,
            name: project.name.clone(),
            source: project.source.view(),
            target: project.target.view(),
            invite_to: project.invite_to,
            admin_email: project.admin_email.as_ref().map(|e| e.to_string()),
            notify_user: project.notify_user,
            copy: project.copy.clone(),
            retention: project.retention,
            sync: project.sync.clone(),
            closed_at: project.closed_at,
            created_at: project.created_at,
            version: project.version,
            users_by_state: counts
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .collect::<BTreeMap<_, _>>(),
            connections: self.server_connections(project).await,
            preflight: self.stored_preflight_text(project.id).await,
        })
    }

    pub async fn list_project_views(&self) -> Result<Vec<ProjectView>, AppError> {
        let mut projects = self.deps.store.list_projects().await?;
        projects.sort_by_key(|p| std::cmp::Reverse(p.created_at));
        let mut views = Vec::with_capacity(projects.len());
        for p in &projects {
            views.push(self.project_view(p).await?);
        }
        Ok(views)
    }
}
