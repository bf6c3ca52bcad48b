//! Creating and editing a project: the name, both connectors, who gets the invites, and the copy
//! options. Every field is checked as it is typed (`crate::validate`); the server's verdict on a
//! field (`details.field` of a 422) is shown next to that field until it is edited again.

use contract::{
    ConnectionLimits, ConnectionTestInput, ConnectionTestResult, ContentCheck, CopyOptions,
    DeletedAtSource, FolderMapping, InviteTo, ProjectInput, ProjectView, ProviderView, Retention,
};
use uuid::Uuid;

use crate::api::ApiError;
use crate::validate;

pub use super::connector_form::{
    AuthMode, ConnectorField, ConnectorForm, TestState, default_port, parse_kind, parse_security,
};
use super::fields::{ServerErrors, error_of, touch};

/// Which connector of a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Source,
    Target,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::Source, Side::Target];

    /// The name the API uses (`/test/source`, `source.host`).
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target => "target",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Side::Source => "Source (old mail system)",
            Side::Target => "Target (new mail system)",
        }
    }
}

/// Every input of the form. The key of each (`Field::key`) is the name the server uses in
/// `details.field` of a validation error, so its verdict lands next to the right input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    Name,
    AdminEmail,
    InviteTo,
    NotifyUser,
    RemoveDeleted,
    VerifyContent,
    Kind(Side),
    Host(Side),
    Port(Side),
    Security(Side),
    Auth(Side),
    LoginPattern(Side),
    TenantId(Side),
    ClientId(Side),
    AdminPassword(Side),
    TestEmail(Side),
    TestPassword(Side),
    Include,
    Exclude,
    FolderMap,
    MaxSize,
    SourceServerLimit,
    TargetServerLimit,
    MailboxLimit,
    DailyDownload,
    DailyUpload,
    IdleDays,
    SyncHours,
    CutoverAt,
    SmtpHost,
    SmtpPort,
}

/// The whole-number fields that may stay empty, and their largest values (the server's bounds).
const LIMITS: [(Field, u32); 7] = [
    (Field::SyncHours, 168),
    (Field::SmtpPort, 65535),
    (Field::SourceServerLimit, 1000),
    (Field::TargetServerLimit, 1000),
    (Field::MailboxLimit, 100),
    (Field::DailyDownload, 10_000_000),
    (Field::DailyUpload, 10_000_000),
];

impl Field {
    pub fn key(self) -> String {
        match self {
            Field::Name => "name".into(),
            Field::AdminEmail => "admin_email".into(),
            Field::InviteTo => "invite_to".into(),
            Field::NotifyUser => "notify_user".into(),
            Field::RemoveDeleted => "copy.deleted_at_source".into(),
            Field::VerifyContent => "copy.verify_content".into(),
            Field::Kind(s) => format!("{}.kind", s.as_str()),
            Field::Host(s) => format!("{}.host", s.as_str()),
            Field::Port(s) => format!("{}.port", s.as_str()),
            Field::Security(s) => format!("{}.security", s.as_str()),
            Field::Auth(s) => format!("{}.auth", s.as_str()),
            Field::LoginPattern(s) => format!("{}.auth.login_pattern", s.as_str()),
            Field::TenantId(s) => format!("{}.auth.tenant_id", s.as_str()),
            Field::ClientId(s) => format!("{}.auth.client_id", s.as_str()),
            Field::AdminPassword(s) => format!("{}.auth.password", s.as_str()),
            Field::TestEmail(s) => format!("{}.test_email", s.as_str()),
            Field::TestPassword(s) => format!("{}.test_password", s.as_str()),
            Field::Include => "copy.include".into(),
            Field::Exclude => "copy.exclude".into(),
            Field::FolderMap => "copy.folder_map".into(),
            Field::MaxSize => "copy.max_message_bytes".into(),
            Field::SourceServerLimit => "copy.limits.source_server".into(),
            Field::TargetServerLimit => "copy.limits.target_server".into(),
            Field::MailboxLimit => "copy.limits.per_mailbox".into(),
            Field::DailyDownload => "copy.limits.daily_download_mb".into(),
            Field::DailyUpload => "copy.limits.daily_upload_mb".into(),
            Field::IdleDays => "retention.idle_days".into(),
            Field::SyncHours => "sync.every_hours".into(),
            Field::CutoverAt => "sync.cutover_at".into(),
            Field::SmtpHost => "sync.smtp_host".into(),
            Field::SmtpPort => "sync.smtp_port".into(),
        }
    }

    /// The HTML id of the input: the key with dots made safe.
    pub fn id(self) -> String {
        format!("pf-{}", self.key().replace('.', "-"))
    }

    /// Server field names can be more precise than the inputs (`copy.folder_map.from`).
    fn from_server_key(key: &str) -> Option<Field> {
        let all = [
            Field::Name,
            Field::AdminEmail,
            Field::Include,
            Field::Exclude,
            Field::FolderMap,
            Field::MaxSize,
            Field::SourceServerLimit,
            Field::TargetServerLimit,
            Field::MailboxLimit,
            Field::DailyDownload,
            Field::DailyUpload,
            Field::IdleDays,
            Field::SyncHours,
            Field::CutoverAt,
            Field::SmtpHost,
            Field::SmtpPort,
        ];
        let per_side = |s| {
            [
                Field::Kind(s),
                Field::Host(s),
                Field::Port(s),
                Field::LoginPattern(s),
                Field::TenantId(s),
                Field::ClientId(s),
                Field::AdminPassword(s),
            ]
        };
        // The secret has another name in each mode; anything else about the mode is the mode.
        for side in Side::BOTH {
            for name in ["client_secret", "key_json"] {
                if key == format!("{}.auth.{name}", side.as_str()) {
                    return Some(Field::AdminPassword(side));
                }
            }
        }
        let exact = all
            .into_iter()
            .chain(per_side(Side::Source))
            .chain(per_side(Side::Target))
            .find(|f| key == f.key() || key.starts_with(&format!("{}.", f.key())));
        exact.or_else(|| {
            Side::BOTH
                .into_iter()
                .map(Field::Auth)
                .find(|f| key.starts_with(&format!("{}.", f.key())))
        })
    }
}

pub fn invite_value(i: InviteTo) -> &'static str {
    match i {
        InviteTo::Source => "source",
        InviteTo::Target => "target",
        InviteTo::None => "none",
    }
}

fn parse_invite(s: &str) -> Option<InviteTo> {
    match s {
        "source" => Some(InviteTo::Source),
        "target" => Some(InviteTo::Target),
        "none" => Some(InviteTo::None),
        _ => None,
    }
}

/// What a "Test connection" button sends.
#[derive(Debug, Clone, PartialEq)]
pub enum TestRequest {
    /// `POST /api/admin/connectors/test` with the settings as typed.
    Typed(ConnectionTestInput),
    /// `POST /api/admin/projects/{id}/test/{side}`: the saved settings, with the stored password.
    Saved {
        project: Uuid,
        side: Side,
        email: Option<String>,
        password: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProjectFormState {
    /// The project being edited (id and the version it was loaded at); `None` for a new one.
    pub editing: Option<(Uuid, u64)>,
    pub loading: bool,
    pub load_error: Option<String>,
    pub signed_out: bool,
    pub name: String,
    pub admin_email: String,
    pub invite_to: InviteTo,
    pub notify_user: bool,
    /// Delta passes remove the copies of messages deleted at the source.
    pub remove_deleted: bool,
    /// Which copies are read back and compared with the source.
    pub verify_content: ContentCheck,
    pub source: ConnectorForm,
    pub target: ConnectorForm,
    pub include: String,
    pub exclude: String,
    pub folder_map: String,
    pub max_size_mb: String,
    /// Connection limits as typed; empty takes the provider's default.
    pub source_server_limit: String,
    pub target_server_limit: String,
    pub mailbox_limit: String,
    /// Daily budgets in MB as typed; empty takes the provider's.
    pub daily_download_mb: String,
    pub daily_upload_mb: String,
    /// Days a user's stored passwords are kept without activity.
    pub idle_days: String,
    /// The sync schedule and cutover as typed (hours, `YYYY-MM-DDTHH:MM` UTC, host, port).
    pub sync_hours: String,
    pub cutover_at: String,
    pub smtp_host: String,
    pub smtp_port: String,
    /// Copy options the form does not show (date limits), kept as loaded.
    pub kept_copy: CopyOptions,
    pub original: Option<ProjectView>,
    pub touched: Vec<Field>,
    pub submitted: bool,
    pub saving: bool,
    pub error: Option<String>,
    pub server_errors: ServerErrors,
    /// Set once the server stored the project; the page then moves on.
    pub saved: Option<Uuid>,
    /// The provider profiles (`GET /api/admin/providers`): kinds, their servers and rules.
    pub providers: Vec<ProviderView>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProjectFormAction {
    ProvidersLoaded(Vec<ProviderView>),
    Loaded(ProjectView),
    LoadFailed(ApiError),
    Edit(Field, String),
    Blur(Field),
    /// Save pressed: shows every error; starts saving when there is none.
    Submit,
    Saved(ProjectView),
    SaveFailed(ApiError),
    TestStarted(Side),
    TestDone(Side, ConnectionTestResult, bool),
    TestFailed(Side, ApiError),
    /// The test cannot be sent as the form stands; says why.
    TestInvalid(Side, String),
}

impl Default for ProjectFormState {
    fn default() -> Self {
        ProjectFormState {
            editing: None,
            loading: false,
            load_error: None,
            signed_out: false,
            name: String::new(),
            admin_email: String::new(),
            invite_to: InviteTo::Source,
            notify_user: false,
            remove_deleted: false,
            verify_content: ContentCheck::Sample,
            source: ConnectorForm::default(),
            target: ConnectorForm::default(),
            include: String::new(),
            exclude: String::new(),
            folder_map: String::new(),
            max_size_mb: String::new(),
            source_server_limit: String::new(),
            target_server_limit: String::new(),
            mailbox_limit: String::new(),
            daily_download_mb: String::new(),
            daily_upload_mb: String::new(),
            idle_days: Retention::default().idle_days.to_string(),
            sync_hours: String::new(),
            cutover_at: String::new(),
            smtp_host: String::new(),
            smtp_port: String::new(),
            kept_copy: CopyOptions::default(),
            original: None,
            touched: Vec::new(),
            submitted: false,
            saving: false,
            error: None,
            server_errors: ServerErrors::default(),
            saved: None,
            providers: Vec::new(),
        }
    }
}

impl ProjectFormState {
    /// The form for editing project `id`, waiting for it to load.
    pub fn editing(id: Uuid) -> Self {
        ProjectFormState {
            editing: Some((id, 0)),
            loading: true,
            ..ProjectFormState::default()
        }
    }

    pub fn connector(&self, side: Side) -> &ConnectorForm {
        match side {
            Side::Source => &self.source,
            Side::Target => &self.target,
        }
    }

    fn connector_mut(&mut self, side: Side) -> &mut ConnectorForm {
        match side {
            Side::Source => &mut self.source,
            Side::Target => &mut self.target,
        }
    }

    fn connector_errors(&self, side: Side, out: &mut Vec<(Field, String)>) {
        for (field, e) in self.connector(side).errors() {
            let field = match field {
                ConnectorField::Host => Field::Host(side),
                ConnectorField::Port => Field::Port(side),
                ConnectorField::LoginPattern => Field::LoginPattern(side),
                ConnectorField::TenantId => Field::TenantId(side),
                ConnectorField::ClientId => Field::ClientId(side),
                ConnectorField::Secret => Field::AdminPassword(side),
            };
            out.push((field, e));
        }
    }

    /// Every problem of the form as typed, by field.
    pub fn errors(&self) -> Vec<(Field, String)> {
        let mut out = Vec::new();
        if let Err(e) = validate::project_name(&self.name) {
            out.push((Field::Name, e));
        }
        if let Err(e) = validate::optional_email(&self.admin_email) {
            out.push((Field::AdminEmail, e));
        }
        for side in Side::BOTH {
            self.connector_errors(side, &mut out);
        }
        if let Err(e) = validate::folder_patterns(&self.include) {
            out.push((Field::Include, e));
        }
        if let Err(e) = validate::folder_patterns(&self.exclude) {
            out.push((Field::Exclude, e));
        }
        if let Err(e) = validate::folder_map(&self.folder_map) {
            out.push((Field::FolderMap, e));
        }
        if let Err(e) = validate::size_limit_mb(&self.max_size_mb) {
            out.push((Field::MaxSize, e));
        }
        for (field, max) in LIMITS {
            if let Err(e) = validate::connection_limit(self.text(field).unwrap_or_default(), max) {
                out.push((field, e));
            }
        }
        if let Err(e) = validate::idle_days(&self.idle_days) {
            out.push((Field::IdleDays, e));
        }
        if let Err(e) = validate::utc_time(&self.cutover_at) {
            out.push((Field::CutoverAt, e));
        }
        out
    }

    /// A whole-number field of [`LIMITS`] as typed, when valid (see [`Self::errors`]).
    fn limit(&self, field: Field) -> Option<u32> {
        let &(_, max) = LIMITS.iter().find(|(f, _)| *f == field)?;
        validate::connection_limit(self.text(field).unwrap_or_default(), max)
            .ok()
            .flatten()
    }

    /// The connection limits as typed (valid ones; see [`Self::errors`]).
    fn limits(&self) -> ConnectionLimits {
        let value = |field: Field| self.limit(field);
        ConnectionLimits {
            source_server: value(Field::SourceServerLimit),
            target_server: value(Field::TargetServerLimit),
            per_mailbox: value(Field::MailboxLimit),
            daily_download_mb: value(Field::DailyDownload).map(u64::from),
            daily_upload_mb: value(Field::DailyUpload).map(u64::from),
        }
    }

    /// The message to show under a field: its own check once it was touched (or Save was
    /// pressed), else what the server said about it.
    pub fn field_error(&self, field: Field) -> Option<String> {
        // An emptied field is not nagged about while typing; Save shows what is missing.
        let emptied = !self.submitted && self.text(field).is_some_and(|v| v.trim().is_empty());
        if emptied {
            return self.server_errors.get(&field.key());
        }
        if (self.touched.contains(&field) || self.submitted)
            && let Some(e) = error_of(&self.errors(), field)
        {
            return Some(e);
        }
        self.server_errors.get(&field.key())
    }

    /// The text of a text input.
    pub fn text(&self, field: Field) -> Option<&str> {
        Some(match field {
            Field::Name => &self.name,
            Field::AdminEmail => &self.admin_email,
            Field::Host(s) => &self.connector(s).host,
            Field::Port(s) => &self.connector(s).port,
            Field::LoginPattern(s) => &self.connector(s).login_pattern,
            Field::TenantId(s) => &self.connector(s).tenant_id,
            Field::ClientId(s) => &self.connector(s).client_id,
            Field::AdminPassword(s) => &self.connector(s).admin_password,
            Field::TestEmail(s) => &self.connector(s).test_email,
            Field::TestPassword(s) => &self.connector(s).test_password,
            Field::Include => &self.include,
            Field::Exclude => &self.exclude,
            Field::FolderMap => &self.folder_map,
            Field::MaxSize => &self.max_size_mb,
            Field::SourceServerLimit => &self.source_server_limit,
            Field::TargetServerLimit => &self.target_server_limit,
            Field::MailboxLimit => &self.mailbox_limit,
            Field::DailyDownload => &self.daily_download_mb,
            Field::DailyUpload => &self.daily_upload_mb,
            Field::IdleDays => &self.idle_days,
            Field::SyncHours => &self.sync_hours,
            Field::CutoverAt => &self.cutover_at,
            Field::SmtpHost => &self.smtp_host,
            Field::SmtpPort => &self.smtp_port,
            Field::InviteTo
            | Field::NotifyUser
            | Field::RemoveDeleted
            | Field::VerifyContent
            | Field::Kind(_)
            | Field::Security(_)
            | Field::Auth(_) => {
                return None;
            }
        })
    }

    /// The request body, when every field is valid.
    pub fn to_input(&self) -> Option<ProjectInput> {
        if !self.errors().is_empty() {
            return None;
        }
        let folder_map = validate::folder_map(&self.folder_map)
            .ok()?
            .into_iter()
            .map(|(from, to)| FolderMapping { from, to })
            .collect();
        Some(ProjectInput {
            name: self.name.trim().to_owned(),
            source: self.source.to_input()?,
            target: self.target.to_input()?,
            invite_to: self.invite_to,
            admin_email: Some(self.admin_email.trim().to_owned()).filter(|e| !e.is_empty()),
            notify_user: self.notify_user,
            copy: CopyOptions {
                include: validate::folder_patterns(&self.include).ok()?,
                exclude: validate::folder_patterns(&self.exclude).ok()?,
                folder_map,
                max_message_bytes: validate::size_limit_mb(&self.max_size_mb).ok()?,
                deleted_at_source: if self.remove_deleted {
                    DeletedAtSource::Remove
                } else {
                    DeletedAtSource::Keep
                },
                verify_content: self.verify_content,
                limits: self.limits(),
                ..self.kept_copy.clone()
            },
            retention: Retention {
                idle_days: validate::idle_days(&self.idle_days).ok()?,
            },
            sync: contract::SyncPlan {
                every_hours: self.limit(Field::SyncHours),
                cutover_at: validate::utc_time(&self.cutover_at).ok()?,
                smtp_host: Some(self.smtp_host.trim().to_owned()).filter(|h| !h.is_empty()),
                smtp_port: self.limit(Field::SmtpPort).map(|p| p as u16),
            },
        })
    }

    /// What the side's "Test connection" would send, or why it cannot yet.
    pub fn test_request(&self, side: Side) -> Result<TestRequest, String> {
        let c = self.connector(side);
        let mut errors = Vec::new();
        self.connector_errors(side, &mut errors);
        let email = c.test_email.trim();
        if c.needs_test_email() || !email.is_empty() {
            validate::email(email).map_err(|e| format!("Test mailbox: {e}"))?;
        }
        if c.auth == AuthMode::PerUser && c.test_password.is_empty() {
            return Err("Enter the test mailbox's password".into());
        }
        let email = (!email.is_empty()).then(|| email.to_owned());
        let password = (c.auth == AuthMode::PerUser).then(|| c.test_password.clone());
        let use_saved = c.auth.has_secret() && c.admin_password.is_empty() && c.has_stored_password;
        if use_saved && let Some((project, _)) = self.editing {
            if let Some(original) = &self.original {
                let saved = match side {
                    Side::Source => &original.source,
                    Side::Target => &original.target,
                };
                if c.differs_from(saved) {
                    return Err(
                        "The settings changed: type the secret again to test them, or save first"
                            .into(),
                    );
                }
            }
            // The stored password may have been kept; the rest must still be valid.
            errors.retain(|(f, _)| *f != Field::AdminPassword(side));
            if let Some((_, e)) = errors.into_iter().next() {
                return Err(e);
            }
            return Ok(TestRequest::Saved {
                project,
                side,
                email,
                password: None,
            });
        }
        if let Some((_, e)) = errors.into_iter().next() {
            return Err(e);
        }
        let connector = c.to_input().ok_or("Check the connection settings")?;
        Ok(TestRequest::Typed(ConnectionTestInput {
            connector,
            email,
            password,
        }))
    }

    fn fill_from(&mut self, p: &ProjectView) {
        self.editing = Some((p.id, p.version));
        self.name = p.name.clone();
        self.admin_email = p.admin_email.clone().unwrap_or_default();
        self.invite_to = p.invite_to;
        self.notify_user = p.notify_user;
        self.remove_deleted = p.copy.deleted_at_source == DeletedAtSource::Remove;
        self.verify_content = p.copy.verify_content;
        self.source = ConnectorForm::from_view(&p.source);
        self.target = ConnectorForm::from_view(&p.target);
        self.include = p.copy.include.join("\n");
        self.exclude = p.copy.exclude.join("\n");
        self.folder_map = p
            .copy
            .folder_map
            .iter()
            .map(|m| format!("{} => {}", m.from, m.to))
            .collect::<Vec<_>>()
            .join("\n");
        self.max_size_mb = p
            .copy
            .max_message_bytes
            .map(|b| b.div_ceil(1_000_000).to_string())
            .unwrap_or_default();
        let text = |v: Option<u32>| v.map(|n| n.to_string()).unwrap_or_default();
        self.source_server_limit = text(p.copy.limits.source_server);
        self.target_server_limit = text(p.copy.limits.target_server);
        self.mailbox_limit = text(p.copy.limits.per_mailbox);
        let mb = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
        self.daily_download_mb = mb(p.copy.limits.daily_download_mb);
        self.daily_upload_mb = mb(p.copy.limits.daily_upload_mb);
        self.idle_days = p.retention.idle_days.to_string();
        self.kept_copy = p.copy.clone();
        self.sync_hours = text(p.sync.every_hours);
        // The date-and-time input's form: RFC 3339 cut after the minutes, in UTC.
        self.cutover_at = p
            .sync
            .cutover_at
            .and_then(|t| {
                t.to_offset(time::UtcOffset::UTC)
                    .format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .map(|t| t.chars().take(16).collect())
            .unwrap_or_default();
        self.smtp_host = p.sync.smtp_host.clone().unwrap_or_default();
        self.smtp_port = p.sync.smtp_port.map(|n| n.to_string()).unwrap_or_default();
        self.original = Some(p.clone());
    }

    fn edit(&mut self, field: Field, value: String) {
        touch(&mut self.touched, field);
        self.server_errors.remove(&field.key());
        let side_of = |f: Field| match f {
            Field::Kind(s)
            | Field::TenantId(s)
            | Field::ClientId(s)
            | Field::Host(s)
            | Field::Port(s)
            | Field::Security(s)
            | Field::Auth(s)
            | Field::LoginPattern(s)
            | Field::AdminPassword(s)
            | Field::TestEmail(s)
            | Field::TestPassword(s) => Some(s),
            _ => None,
        };
        if let Some(side) = side_of(field) {
            // A result no longer says anything about settings that changed since.
            self.connector_mut(side).test = TestState::Idle;
        }
        match field {
            Field::Name => self.name = value,
            Field::AdminEmail => self.admin_email = value,
            Field::InviteTo => {
                if let Some(i) = parse_invite(&value) {
                    self.invite_to = i;
                }
            }
            Field::NotifyUser => self.notify_user = value == "true",
            Field::RemoveDeleted => self.remove_deleted = value == "true",
            Field::VerifyContent => {
                self.verify_content = match value.as_str() {
                    "off" => ContentCheck::Off,
                    "all" => ContentCheck::All,
                    _ => ContentCheck::Sample,
                }
            }
            Field::Host(s) => self.connector_mut(s).host = value,
            Field::Port(s) => self.connector_mut(s).port = value,
            Field::Security(s) => {
                if let Some(security) = parse_security(&value) {
                    let c = self.connector_mut(s);
                    // Follow the usual port unless the admin typed another one.
                    if validate::port(&c.port).ok() == Some(default_port(c.security)) {
                        c.port = default_port(security).to_string();
                    }
                    c.security = security;
                }
            }
            Field::Kind(s) => {
                if let Some(kind) = parse_kind(&value) {
                    let providers = self.providers.clone();
                    self.connector_mut(s).set_kind(kind, &providers);
                }
            }
            Field::Auth(s) => {
                if let Some(mode) = AuthMode::parse(&value) {
                    self.connector_mut(s).auth = mode;
                }
            }
            Field::TenantId(s) => self.connector_mut(s).tenant_id = value,
            Field::ClientId(s) => self.connector_mut(s).client_id = value,
            Field::LoginPattern(s) => self.connector_mut(s).login_pattern = value,
            Field::AdminPassword(s) => self.connector_mut(s).admin_password = value,
            Field::TestEmail(s) => self.connector_mut(s).test_email = value,
            Field::TestPassword(s) => self.connector_mut(s).test_password = value,
            Field::Include => self.include = value,
            Field::Exclude => self.exclude = value,
            Field::FolderMap => self.folder_map = value,
            Field::MaxSize => self.max_size_mb = value,
            Field::SourceServerLimit => self.source_server_limit = value,
            Field::TargetServerLimit => self.target_server_limit = value,
            Field::MailboxLimit => self.mailbox_limit = value,
            Field::DailyDownload => self.daily_download_mb = value,
            Field::DailyUpload => self.daily_upload_mb = value,
            Field::IdleDays => self.idle_days = value,
            Field::SyncHours => self.sync_hours = value,
            Field::CutoverAt => self.cutover_at = value,
            Field::SmtpHost => self.smtp_host = value,
            Field::SmtpPort => self.smtp_port = value,
        }
    }

    pub fn apply(mut self, action: ProjectFormAction) -> Self {
        match action {
            ProjectFormAction::ProvidersLoaded(providers) => self.providers = providers,
            ProjectFormAction::Loaded(p) => {
                self.loading = false;
                self.load_error = None;
                self.fill_from(&p);
            }
            ProjectFormAction::LoadFailed(err) => {
                self.loading = false;
                match err {
                    ApiError::Unauthorized(_) => self.signed_out = true,
                    other => self.load_error = Some(other.message()),
                }
            }
            ProjectFormAction::Edit(field, value) => self.edit(field, value),
            ProjectFormAction::Blur(field) => {
                touch(&mut self.touched, field);
            }
            ProjectFormAction::Submit => {
                self.submitted = true;
                if !self.saving && self.to_input().is_some() {
                    self.saving = true;
                    self.error = None;
                } else if !self.saving {
                    self.error = Some("Some fields need attention: see the messages below".into());
                }
            }
            ProjectFormAction::Saved(p) => {
                self.saving = false;
                self.error = None;
                // Passwords typed here are on the server now; the page forgets them.
                for side in Side::BOTH {
                    self.connector_mut(side).admin_password.clear();
                }
                self.saved = Some(p.id);
                self.fill_from(&p);
            }
            ProjectFormAction::SaveFailed(err) => {
                self.saving = false;
                if matches!(err, ApiError::Unauthorized(_)) {
                    self.signed_out = true;
                }
                if let Some(body) = err.body()
                    && let Some(key) = body.details.get("field").and_then(|f| f.as_str())
                {
                    let message = body
                        .details
                        .get("message")
                        .and_then(|m| m.as_str())
                        .map(capitalise)
                        .unwrap_or_else(|| body.message.clone());
                    let key = Field::from_server_key(key).map_or(key.to_owned(), Field::key);
                    self.server_errors.set(key, message);
                }
                self.error = Some(err.message());
            }
            ProjectFormAction::TestStarted(side) => {
                self.connector_mut(side).test = TestState::Running;
            }
            ProjectFormAction::TestDone(side, result, saved_settings) => {
                let c = self.connector_mut(side);
                if c.test == TestState::Running {
                    c.test = TestState::Done {
                        result,
                        saved_settings,
                    };
                }
            }
            ProjectFormAction::TestInvalid(side, message) => {
                self.connector_mut(side).test = TestState::Failed(message);
            }
            ProjectFormAction::TestFailed(side, err) => {
                let c = self.connector_mut(side);
                if c.test == TestState::Running {
                    c.test = TestState::Failed(err.message());
                }
            }
        }
        self
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

super::reducible!(ProjectFormState, ProjectFormAction);

#[cfg(test)]
mod tests {
    use super::*;
    use contract::ApiErrorBody;
    use contract::{AuthInput, AuthView, ConnectorView, Security};
    use time::OffsetDateTime;

    fn typed(fields: &[(Field, &str)]) -> ProjectFormState {
        fields
            .iter()
            .fold(ProjectFormState::default(), |s, (f, v)| {
                s.apply(ProjectFormAction::Edit(*f, (*v).to_owned()))
            })
    }

    fn valid() -> ProjectFormState {
        typed(&[
            (Field::Name, "Acme to NewCo"),
            (Field::Host(Side::Source), "imap.old.example"),
            (Field::Host(Side::Target), "imap.new.example"),
            (Field::Auth(Side::Target), "admin"),
            (Field::AdminPassword(Side::Target), "master-pw"),
        ])
    }

    fn view() -> ProjectView {
        ProjectView {
            id: Uuid::from_u128(7),
            name: "Acme".into(),
            source: ConnectorView {
                kind: contract::ConnectorKind::Imap,
                host: "imap.old.example".into(),
                port: 993,
                security: Security::Tls,
                auth: AuthView::PerUser,
            },
            target: ConnectorView {
                kind: contract::ConnectorKind::Imap,
                host: "imap.new.example".into(),
                port: 143,
                security: Security::Starttls,
                auth: AuthView::Admin {
                    login_pattern: "{email}*admin".into(),
                    has_password: true,
                },
            },
            invite_to: InviteTo::Source,
            admin_email: None,
            notify_user: true,
            copy: CopyOptions {
                exclude: vec!["Junk*".into()],
                max_message_bytes: Some(25_000_000),
                ..CopyOptions::default()
            },
            retention: Default::default(),
            sync: Default::default(),
            closed_at: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            version: 4,
            users_by_state: Default::default(),
            connections: vec![],
            preflight: None,
        }
    }

    #[test]
    fn errors_show_only_for_touched_fields_until_save_is_pressed() {
        // Arrange
        let state = typed(&[(Field::Host(Side::Source), "bad host")]);
        // Assert: the typed field complains, the untouched name does not (yet).
        assert!(state.field_error(Field::Host(Side::Source)).is_some());
        assert_eq!(state.field_error(Field::Name), None);
        // A field typed into and emptied again waits for Save before saying it is needed.
        let state = state
            .apply(ProjectFormAction::Edit(Field::Name, "A".into()))
            .apply(ProjectFormAction::Edit(Field::Name, String::new()));
        assert_eq!(state.field_error(Field::Name), None);
        // Act
        let state = state.apply(ProjectFormAction::Submit);
        // Assert
        assert!(!state.saving, "an invalid form is not sent");
        assert!(state.field_error(Field::Name).is_some());
        assert!(state.error.is_some());
    }

    #[test]
    fn a_valid_form_builds_the_request_body() {
        let state = valid().apply(ProjectFormAction::Edit(
            Field::Exclude,
            "Junk*\n\nTrash".into(),
        ));
        let input = state.to_input().expect("valid");
        assert_eq!(input.name, "Acme to NewCo");
        assert_eq!(input.source.auth, AuthInput::PerUser);
        assert_eq!(input.source.port, 993);
        assert_eq!(
            input.target.auth,
            AuthInput::Admin {
                login_pattern: "{email}*admin".into(),
                password: Some("master-pw".into())
            }
        );
        assert_eq!(input.copy.exclude, vec!["Junk*", "Trash"]);
        assert_eq!(input.admin_email, None);
        let saving = state.apply(ProjectFormAction::Submit);
        assert!(saving.saving);
        assert_eq!(saving.error, None);
    }

    #[test]
    fn connection_limits_are_optional_whole_numbers_within_the_servers_bounds() {
        let state = valid();
        assert_eq!(
            state.to_input().expect("valid").copy.limits,
            ConnectionLimits::default(),
            "empty: the provider's defaults"
        );
        let state = state
            .apply(ProjectFormAction::Edit(
                Field::SourceServerLimit,
                "12".into(),
            ))
            .apply(ProjectFormAction::Edit(Field::MailboxLimit, " 2 ".into()));
        let limits = state.to_input().expect("valid").copy.limits;
        assert_eq!(limits.source_server, Some(12));
        assert_eq!(limits.target_server, None);
        assert_eq!(limits.per_mailbox, Some(2));
        for bad in ["0", "101", "two", "-1"] {
            let wrong = state
                .clone()
                .apply(ProjectFormAction::Edit(Field::MailboxLimit, bad.into()));
            assert!(wrong.field_error(Field::MailboxLimit).is_some(), "{bad}");
            assert!(wrong.to_input().is_none(), "{bad}");
        }
        assert_eq!(
            Field::from_server_key("copy.limits.per_mailbox"),
            Some(Field::MailboxLimit)
        );
        // A loaded project shows its limits.
        let mut loaded_view = view();
        loaded_view.copy.limits.target_server = Some(5);
        let loaded = ProjectFormState::default().apply(ProjectFormAction::Loaded(loaded_view));
        assert_eq!(loaded.target_server_limit, "5");
        assert_eq!(loaded.mailbox_limit, "");
    }

    #[test]
    fn changing_security_follows_the_usual_port_unless_one_was_typed() {
        let s = typed(&[(Field::Security(Side::Source), "starttls")]);
        assert_eq!(s.source.port, "143");
        let s = typed(&[
            (Field::Port(Side::Source), "10993"),
            (Field::Security(Side::Source), "plaintext"),
        ]);
        assert_eq!(s.source.port, "10993");
    }

    #[test]
    fn editing_keeps_the_stored_admin_password_when_left_empty() {
        // Arrange
        let state =
            ProjectFormState::editing(Uuid::from_u128(7)).apply(ProjectFormAction::Loaded(view()));
        // Assert
        assert!(!state.loading);
        assert_eq!(state.target.port, "143");
        assert_eq!(state.exclude, "Junk*");
        assert_eq!(state.max_size_mb, "25");
        let input = state
            .to_input()
            .expect("valid without retyping the password");
        assert_eq!(
            input.target.auth,
            AuthInput::Admin {
                login_pattern: "{email}*admin".into(),
                password: None
            }
        );
        assert_eq!(input.copy.max_message_bytes, Some(25_000_000));
        assert!(input.notify_user);
        assert_eq!(input.copy.deleted_at_source, DeletedAtSource::Keep);
        assert_eq!(input.copy.verify_content, ContentCheck::Sample);
        let all = state
            .clone()
            .apply(ProjectFormAction::Edit(Field::VerifyContent, "all".into()));
        assert_eq!(
            all.to_input().unwrap().copy.verify_content,
            ContentCheck::All
        );
        let removing = state.apply(ProjectFormAction::Edit(Field::RemoveDeleted, "true".into()));
        assert_eq!(
            removing.to_input().unwrap().copy.deleted_at_source,
            DeletedAtSource::Remove
        );
    }

    #[test]
    fn the_server_verdict_on_a_field_shows_there_until_it_is_edited() {
        // Arrange
        let body = ApiErrorBody {
            error: "validation".into(),
            message: "source.host: 'x' is not a valid host name".into(),
            details: serde_json::json!({"field": "source.host", "message": "'x' is not a valid host name"}),
        };
        let state = valid()
            .apply(ProjectFormAction::Submit)
            .apply(ProjectFormAction::SaveFailed(ApiError::Rejected {
                status: 422,
                body,
            }));
        // Assert
        assert!(!state.saving);
        assert_eq!(
            state.field_error(Field::Host(Side::Source)).as_deref(),
            Some("'x' is not a valid host name")
        );
        // Act
        let state = state.apply(ProjectFormAction::Edit(
            Field::Host(Side::Source),
            "imap.other.example".into(),
        ));
        // Assert
        assert_eq!(state.field_error(Field::Host(Side::Source)), None);
    }

    #[test]
    fn nested_server_field_names_map_to_the_input() {
        assert_eq!(
            Field::from_server_key("copy.folder_map.from"),
            Some(Field::FolderMap)
        );
        assert_eq!(
            Field::from_server_key("target.auth.password"),
            Some(Field::AdminPassword(Side::Target))
        );
        assert_eq!(Field::from_server_key("nope"), None);
    }

    #[test]
    fn a_connection_test_needs_a_mailbox_and_uses_the_saved_password_when_none_is_typed() {
        // A per-user side needs an address and a password to try.
        let state = valid();
        assert!(state.test_request(Side::Source).is_err());
        let state = state
            .apply(ProjectFormAction::Edit(
                Field::TestEmail(Side::Source),
                "ann@old.example".into(),
            ))
            .apply(ProjectFormAction::Edit(
                Field::TestPassword(Side::Source),
                "pw".into(),
            ));
        match state.test_request(Side::Source).unwrap() {
            TestRequest::Typed(input) => {
                assert_eq!(input.email.as_deref(), Some("ann@old.example"));
                assert_eq!(input.password.as_deref(), Some("pw"));
            }
            other => panic!("{other:?}"),
        }
        // Editing: an admin side with a stored password tests the saved settings...
        let editing = ProjectFormState::editing(Uuid::from_u128(7))
            .apply(ProjectFormAction::Loaded(view()))
            .apply(ProjectFormAction::Edit(
                Field::TestEmail(Side::Target),
                "ann@new.example".into(),
            ));
        assert!(matches!(
            editing.test_request(Side::Target),
            Ok(TestRequest::Saved {
                side: Side::Target,
                password: None,
                ..
            })
        ));
        // ...but not once they changed without the password typed again.
        let changed = editing.apply(ProjectFormAction::Edit(
            Field::Host(Side::Target),
            "imap2.new.example".into(),
        ));
        assert!(changed.test_request(Side::Target).is_err());
    }

    #[test]
    fn a_test_result_is_dropped_when_the_settings_change_meanwhile() {
        let result = ConnectionTestResult {
            ok: true,
            message: "Logged in".into(),
            capabilities: vec![],
        };
        let running = valid().apply(ProjectFormAction::TestStarted(Side::Target));
        assert_eq!(running.target.test, TestState::Running);
        let done = running.clone().apply(ProjectFormAction::TestDone(
            Side::Target,
            result.clone(),
            false,
        ));
        assert!(matches!(done.target.test, TestState::Done { .. }));
        let edited = running
            .apply(ProjectFormAction::Edit(
                Field::Port(Side::Target),
                "143".into(),
            ))
            .apply(ProjectFormAction::TestDone(Side::Target, result, false));
        assert_eq!(edited.target.test, TestState::Idle);
    }

    #[test]
    fn saving_forgets_typed_admin_passwords() {
        let state = valid()
            .apply(ProjectFormAction::Submit)
            .apply(ProjectFormAction::Saved(view()));
        assert_eq!(state.saved, Some(Uuid::from_u128(7)));
        assert!(state.target.admin_password.is_empty());
        assert!(!state.saving);
    }
}
