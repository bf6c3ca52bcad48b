//! The wire contract of mailferry: every request and response body of the HTTP API and every
//! queue message, as plain serde types. The server (`web`, `domain`) and the Yew frontend both
//! use these types, so there is exactly one definition of each DTO. This crate must build for
//! `wasm32-unknown-unknown`: it never imports tokio, axum, AWS, SQLite or anything with I/O.
//!
//! Request types reject unknown fields, so a typo in a client is a clear 400 instead of a
//! silently ignored setting. Passwords only ever travel *into* the server: no response type
//! has a field that could carry one back.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;

pub mod cutover;
pub mod jobs;
pub mod preflight;
pub mod providers;

pub use cutover::{DeviceSetup, SyncPlan, SyncSummary};
pub use preflight::{
    PreflightFolder, PreflightReport, PreflightSummary, PreflightTotals, QuotaView,
};
pub use providers::{ConnectorKind, ProviderView, RuleView};

/// Error body of every non-2xx response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ApiErrorBody {
    /// Stable machine-readable code, e.g. `validation`, `not_found`, `conflict`, `unauthorized`.
    pub error: String,
    /// A sentence a person can read.
    pub message: String,
    /// Optional structured details (CSV line errors, attempts left, field names).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

/// How the connection to a mail server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// TLS from the first byte (IMAPS, usually port 993).
    Tls,
    /// Plain connection upgraded with STARTTLS before login (usually port 143).
    Starttls,
    /// No encryption at all. Only for test servers and trusted networks; must be chosen explicitly.
    Plaintext,
}

/// Who supplies the mailbox passwords for one side of a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthInput {
    /// One admin (master) account opens every user's mailbox. The password is stored encrypted.
    /// `login_pattern` builds the login name; `{email}` is replaced by the user's address on that
    /// side (Dovecot master users: `{email}*admin`). Leaving `password` out on an edit keeps the
    /// stored one.
    Admin {
        login_pattern: String,
        #[serde(default)]
        password: Option<String>,
    },
    /// Each user's own password, entered by the user on the invite page or by the admin.
    PerUser,
    /// Microsoft 365 admin access: an app registration of the tenant with the
    /// `IMAP.AccessAsApp` permission and access to the mailboxes. mailferry asks the tenant for
    /// an app token (client credentials) and signs in to each mailbox with XOAUTH2.
    /// `client_secret` is the app's client secret, or its certificate and the certificate's
    /// private key as PEM (RSA or P-256, PKCS#8), pasted together. Leaving it out on an edit
    /// keeps the stored one.
    MicrosoftApp {
        tenant_id: String,
        client_id: String,
        #[serde(default)]
        client_secret: Option<String>,
        /// The name XOAUTH2 signs in as; `{email}` (the default) is the user's address.
        #[serde(default = "email_pattern")]
        login_pattern: String,
    },
    /// Google Workspace admin access: a service account with domain-wide delegation for the
    /// scope `https://mail.google.com/`. `key_json` is the key file Google gives (JSON with
    /// `client_email` and `private_key`); leaving it out on an edit keeps the stored one.
    GoogleServiceAccount {
        #[serde(default)]
        key_json: Option<String>,
    },
    /// Each user signs in with Microsoft or Google on the invite page (authorization code with
    /// PKCE); mailferry keeps the refresh token, sealed, and signs in to the mailbox with
    /// XOAUTH2. `client_id` is mailferry's app registration (OAuth client) at the provider;
    /// `client_secret` is needed for a confidential client (leaving it out on an edit keeps the
    /// stored one); `tenant_id` names the Microsoft tenant (`organizations` for any).
    UserSignIn {
        client_id: String,
        #[serde(default)]
        client_secret: Option<String>,
        #[serde(default)]
        tenant_id: Option<String>,
    },
}

fn email_pattern() -> String {
    "{email}".to_owned()
}

/// One side (source or target) of a project, as the admin submits it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ConnectorInput {
    /// Which kind of service: any IMAP server, Microsoft 365 or Google Workspace.
    #[serde(default)]
    pub kind: ConnectorKind,
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub auth: AuthInput,
}

/// A connector as the API shows it: never with a password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ConnectorView {
    pub kind: ConnectorKind,
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub auth: AuthView,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum AuthView {
    Admin {
        login_pattern: String,
        has_password: bool,
    },
    PerUser,
    MicrosoftApp {
        tenant_id: String,
        client_id: String,
        login_pattern: String,
        has_secret: bool,
    },
    GoogleServiceAccount {
        /// The service account (from its key file).
        client_email: String,
        has_key: bool,
    },
    UserSignIn {
        client_id: String,
        tenant_id: Option<String>,
        has_secret: bool,
    },
}

/// Where the invite email with the credential link goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum InviteTo {
    /// The user's current (source) address: the usual choice before cutover.
    Source,
    /// The user's new (target) address.
    Target,
    /// No email: the admin enters the passwords (or uses admin accounts).
    None,
}

/// One explicit folder name mapping: full source name (source delimiter) to full target name
/// (target delimiter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct FolderMapping {
    pub from: String,
    pub to: String,
}

/// What a delta pass does with messages deleted at the source since they were copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeletedAtSource {
    /// Leave the copies on the target (nothing there is ever removed).
    #[default]
    Keep,
    /// Remove the copies mailferry made (known by the UIDs the target reported when they were
    /// appended); mail that reached the target any other way is never touched.
    Remove,
}

/// Which copies are compared byte for byte with their source message after the APPEND (the
/// copy is read back from the target by the UID it got). Counts and sizes cannot see a server
/// that alters what it stores without changing its size (Cyrus replacing 8-bit header bytes
/// with `X`); this can, where the target keeps messages as they are given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ContentCheck {
    /// No read-back (a target known to rewrite every message, such as Exchange Online).
    Off,
    /// The first messages of each folder, and every message a server is likely to alter
    /// (8-bit or NUL bytes in the header, bare line feeds).
    #[default]
    Sample,
    /// Every copy: the target is read once more in full.
    All,
}

/// Which folders and messages a project copies, how folder names map, and what delta passes do
/// with messages deleted at the source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct CopyOptions {
    /// Folder name patterns (`*` matches any run of characters) to copy; empty means all.
    pub include: Vec<String>,
    /// Folder name patterns to leave out (applied after `include`).
    pub exclude: Vec<String>,
    /// Explicit folder names; win over the special-use mapping (source \Sent → target \Sent).
    pub folder_map: Vec<FolderMapping>,
    /// Messages larger than this are skipped with a reason.
    pub max_message_bytes: Option<u64>,
    /// Only messages received at or after this instant.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>", extend("format" = "date-time")))]
    pub since: Option<OffsetDateTime>,
    /// Only messages received before this instant.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>", extend("format" = "date-time")))]
    pub before: Option<OffsetDateTime>,
    /// Messages deleted at the source: kept on the target (default) or removed there.
    pub deleted_at_source: DeletedAtSource,
    /// Which copies are read back and compared with their source message.
    pub verify_content: ContentCheck,
    /// How many connections the copy may hold at once; unset takes the provider profile's.
    pub limits: ConnectionLimits,
}

/// Connections the copy may hold at once to each mail server (over all users of every project
/// copying from or to it) and to each mailbox. Unset: the provider profile's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionLimits {
    /// To the source server (1 to 1000).
    pub source_server: Option<u32>,
    /// To the target server (1 to 1000).
    pub target_server: Option<u32>,
    /// To one mailbox, on either side (1 to 100).
    pub per_mailbox: Option<u32>,
    /// Megabytes one source mailbox may download per rolling day (1 to 10,000,000); none
    /// takes the source provider's budget (Google Workspace: 2,500), if it has one.
    pub daily_download_mb: Option<u64>,
    /// Megabytes one target mailbox may upload per rolling day (1 to 10,000,000); none takes
    /// the target provider's budget (Google Workspace: 500), if it has one.
    pub daily_upload_mb: Option<u64>,
}

/// How long stored passwords are kept (they are always deleted when a user is marked verified
/// and when the project is closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// A user's stored passwords are deleted after this many days without copying or
    /// signing in (1 to 365).
    pub idle_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { idle_days: 30 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ProjectInput {
    pub name: String,
    pub source: ConnectorInput,
    pub target: ConnectorInput,
    pub invite_to: InviteTo,
    /// Address told when a first pass is ready to verify; empty means no email.
    #[serde(default)]
    pub admin_email: Option<String>,
    /// Also tell the user when their first pass is ready to verify.
    #[serde(default)]
    pub notify_user: bool,
    /// Folder filters, name mapping, size and date limits.
    #[serde(default)]
    pub copy: CopyOptions,
    /// How long stored passwords are kept.
    #[serde(default)]
    pub retention: Retention,
    /// Delta passes every few hours until the cutover, and the cutover.
    #[serde(default)]
    pub sync: SyncPlan,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ProjectView {
    pub id: Uuid,
    pub name: String,
    pub source: ConnectorView,
    pub target: ConnectorView,
    pub invite_to: InviteTo,
    pub admin_email: Option<String>,
    pub notify_user: bool,
    pub copy: CopyOptions,
    pub retention: Retention,
    #[serde(default)]
    pub sync: SyncPlan,
    /// When the project was closed (its passwords deleted, its links stopped); absent while
    /// it is open.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>", extend("format" = "date-time")))]
    pub closed_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "schema", schemars(with = "String", extend("format" = "date-time")))]
    pub created_at: OffsetDateTime,
    pub version: u64,
    /// Number of users in each state (absent states are zero).
    pub users_by_state: BTreeMap<UserState, u64>,
    /// Connections open now to the project's servers that have a cap (over every project
    /// using the server).
    #[serde(default)]
    pub connections: Vec<ConnectionUse>,
    /// The users' preflights summed in words ("312 users ready, 4 over quota, …"), as last
    /// summed (within a minute or so of the last preflight); absent before any preflight.
    #[serde(default)]
    pub preflight: Option<String>,
}

/// How many connections to one server are open now, of how many allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ConnectionUse {
    /// "the source server imap.example.org:993"
    pub what: String,
    pub in_use: u32,
    pub cap: u32,
    /// Users (of every project using the server) waiting in line for its connections.
    #[serde(default)]
    pub waiting: u32,
    /// This project's first users in that line, in the order they will be served (source
    /// addresses; at most 5).
    #[serde(default)]
    pub next: Vec<String>,
}

/// Which side to test with `POST /api/admin/projects/{id}/test` or the connector test endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ConnectionTestInput {
    pub connector: ConnectorInput,
    /// Mailbox to log in as; required when the connector uses per-user passwords or an admin
    /// login pattern with `{email}`.
    #[serde(default)]
    pub email: Option<String>,
    /// Password for a per-user test; never stored.
    #[serde(default)]
    pub password: Option<String>,
}

/// A test of a project's stored connector (`POST /api/admin/projects/{id}/test/{side}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SavedConnectorTestInput {
    /// Mailbox to log in as, when the connector needs one.
    #[serde(default)]
    pub email: Option<String>,
    /// Password for a per-user test; never stored.
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ConnectionTestResult {
    pub ok: bool,
    pub message: String,
    /// Capabilities the server announced after login, when the login worked.
    #[serde(default)]
    pub capabilities: Vec<String>,
}

/// State of one migrating user; see DESIGN.md for the transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum UserState {
    New,
    EmailSent,
    Scheduled,
    Working,
    Completed,
    Verified,
    Failed,
    Paused,
    /// The user switched to the new account: the final delta pass ran and the user was mailed
    /// the new account's settings and a device set-up link.
    CutOver,
}

impl UserState {
    pub const ALL: [UserState; 9] = [
        UserState::New,
        UserState::EmailSent,
        UserState::Scheduled,
        UserState::Working,
        UserState::Completed,
        UserState::Verified,
        UserState::Failed,
        UserState::Paused,
        UserState::CutOver,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UserState::New => "new",
            UserState::EmailSent => "email_sent",
            UserState::Scheduled => "scheduled",
            UserState::Working => "working",
            UserState::Completed => "completed",
            UserState::Verified => "verified",
            UserState::Failed => "failed",
            UserState::Paused => "paused",
            UserState::CutOver => "cut_over",
        }
    }

    pub fn parse(s: &str) -> Option<UserState> {
        UserState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// A person-readable label for chips and status pages.
    pub fn label(self) -> &'static str {
        match self {
            UserState::New => "New",
            UserState::EmailSent => "Invite sent",
            UserState::Scheduled => "Scheduled",
            UserState::Working => "Copying",
            UserState::Completed => "Ready to verify",
            UserState::Verified => "Verified",
            UserState::Failed => "Failed",
            UserState::Paused => "Paused",
            UserState::CutOver => "Cut over",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    pub source_email: String,
    pub target_email: String,
    #[serde(default)]
    pub display_name: String,
    /// Admin-entered passwords (when the project sends no invites). Stored encrypted, never shown.
    #[serde(default)]
    pub source_password: Option<String>,
    #[serde(default)]
    pub target_password: Option<String>,
    /// 0 (the default) to 9: where users wait for a server's connections, higher priority
    /// goes first.
    #[serde(default)]
    pub priority: u8,
    /// This user's own cutover time (for example a batch's); unset takes the project's.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>", extend("format" = "date-time")))]
    pub cutover_at: Option<OffsetDateTime>,
}

/// Copy progress of a user, summed over folders.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Progress {
    pub messages_total: u64,
    pub messages_done: u64,
    pub bytes_total: u64,
    pub bytes_done: u64,
    pub skipped: u64,
    /// Bytes per second over the recent copy window, when copying.
    #[serde(default)]
    pub throughput_bps: Option<f64>,
    /// Seconds left at the current throughput, when it can be estimated.
    #[serde(default)]
    pub eta_seconds: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UserView {
    pub id: Uuid,
    pub project_id: Uuid,
    pub source_email: String,
    pub target_email: String,
    pub display_name: String,
    pub state: UserState,
    pub pass: u32,
    pub progress: Progress,
    pub last_error: Option<String>,
    /// 0 to 9: where users wait for a server's connections, higher priority goes first.
    #[serde(default)]
    pub priority: u8,
    /// Since when the user waits in line for a server's connections.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>", extend("format" = "date-time")))]
    pub waiting_since: Option<OffsetDateTime>,
    // The console shows the four fields below from the user's events (each delta pass and the
    // cutover are logged there) and the preflight from its report, so its build skips them:
    // parsing them would only grow the download.
    /// This user's own cutover time; absent: the project's.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>", extend("format" = "date-time")))]
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub cutover_at: Option<OffsetDateTime>,
    /// When the user was cut over.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>", extend("format" = "date-time")))]
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub cut_over_at: Option<OffsetDateTime>,
    /// What the last delta pass changed.
    #[serde(default)]
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub last_sync: Option<SyncSummary>,
    /// What the last preflight found.
    #[serde(default)]
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub preflight: Option<PreflightSummary>,
    /// Whether passwords (or an admin account) are available for both sides.
    pub has_credentials: bool,
    /// Until when the user's own stored passwords are kept if nothing happens (they also go
    /// when the user is marked verified); absent when none are stored.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>", extend("format" = "date-time")))]
    pub credentials_until: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>", extend("format" = "date-time")))]
    pub invite_sent_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "schema", schemars(with = "String", extend("format" = "date-time")))]
    pub updated_at: OffsetDateTime,
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UserPage {
    pub items: Vec<UserView>,
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
}

/// Per-folder progress and verification figures of one user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FolderView {
    pub source_name: String,
    pub target_name: String,
    pub source_messages: u64,
    pub source_bytes: u64,
    pub copied_messages: u64,
    pub copied_bytes: u64,
    /// Messages found on the target at the last verification, when verified.
    #[serde(default)]
    pub target_messages: Option<u64>,
    #[serde(default)]
    pub target_bytes: Option<u64>,
    /// Skipped messages (the first ones when there are many: `skipped_count` says how many).
    pub skipped: Vec<SkippedItem>,
    #[serde(default)]
    pub skipped_count: u64,
    /// The name first planned on the target, when the target refused it and the folder was
    /// copied to `target_name` instead.
    #[serde(default)]
    pub renamed_from: Option<String>,
    /// Copies read back and compared with their source message.
    #[serde(default)]
    pub content_checked: u64,
    /// Copies the target stored differently from the source (the first ones when there are
    /// many: `altered_count` says how many).
    #[serde(default)]
    pub altered: Vec<AlteredItem>,
    #[serde(default)]
    pub altered_count: u64,
    pub done: bool,
}

/// A copy the target stored with other bytes than the source message's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AlteredItem {
    /// The source message's UID.
    pub uid: u32,
    /// The copy's UID on the target.
    pub target_uid: u32,
    /// What changed, in words ("8-bit header bytes replaced (3 bytes)", "headers rewritten").
    pub change: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SkippedItem {
    pub uid: u32,
    pub size: u64,
    pub reason: String,
    /// Why it was left out, so "retry skipped" knows what a retry can change.
    #[serde(default)]
    pub cause: SkipCause,
}

/// Why a message was not copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum SkipCause {
    /// The project's own rules leave it out (size limit, date range); a retry skips it again.
    Policy,
    /// The target refused this one message (too large for it, malformed).
    #[default]
    TargetRefused,
    /// The source server could not return it (a FETCH that failed for this message).
    SourceUnreadable,
}

impl SkipCause {
    /// Whether retrying can change the outcome without the admin changing the project.
    pub fn is_retryable(self) -> bool {
        !matches!(self, SkipCause::Policy)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EventView {
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "schema", schemars(with = "String", extend("format" = "date-time")))]
    pub at: OffsetDateTime,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UserDetail {
    pub user: UserView,
    pub folders: Vec<FolderView>,
    pub events: Vec<EventView>,
}

/// One line of a project's audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditView {
    /// Sortable id; pass the last one as `before` to read older entries.
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "schema", schemars(with = "String", extend("format" = "date-time")))]
    pub at: OffsetDateTime,
    /// `admin`, the identity provider's user, `user <address>` or `mailferry`.
    pub who: String,
    /// The client's address, when known.
    pub from: Option<String>,
    /// e.g. `project.updated`, `credentials.purged`.
    pub action: String,
    /// The mailbox it concerns, when one.
    pub subject: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditPage {
    /// Newest first.
    pub items: Vec<AuditView>,
    /// The `before` of the next (older) page; absent on the last page.
    pub next: Option<String>,
}

/// One CSV line that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LineError {
    /// 1-based line number in the uploaded file (the header is line 1).
    pub line: u64,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ImportReport {
    /// Rows parsed without error.
    pub valid_rows: u64,
    pub created: u64,
    pub updated: u64,
    /// True when nothing was written (a dry run, or errors were found).
    pub dry_run: bool,
}

/// Which users a bulk action applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Selection {
    #[serde(default)]
    pub user_ids: Vec<Uuid>,
    /// Apply to every user of the project (ignores `user_ids`).
    #[serde(default)]
    pub all: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    Start,
    ResendInvite,
    Pause,
    Retry,
    Delta,
    /// Copy again the messages a pass skipped because a server refused or failed them.
    RetrySkipped,
    MarkVerified,
    /// Log in to both sides and report what would not fit, copying nothing (in the background:
    /// each user's result lands on the user, the project's sums at `/preflight`).
    Preflight,
    /// Cut the user over now: a final delta pass, then the mail with the new account's
    /// settings (sets the user's cutover time to now).
    CutOver,
    /// Delete the user's stored passwords now (a user who is copying must be paused first);
    /// the copy needs them entered again to go on.
    PurgeCredentials,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BulkFailure {
    pub user_id: Uuid,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BulkResult {
    pub done: Vec<Uuid>,
    pub failed: Vec<BulkFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SessionView {
    pub authenticated: bool,
    /// `local` (password + cookie) or `cognito` (JWT from the API gateway).
    pub mode: String,
    /// In `cognito` mode: where the console signs the admin in (OAuth 2.0 authorization code
    /// with PKCE against the user pool's hosted UI). Public values, no secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in: Option<HostedSignIn>,
}

/// The identity provider's public endpoints and the console's app client id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HostedSignIn {
    /// The OAuth 2.0 authorization endpoint (`…/oauth2/authorize`).
    pub authorize_url: String,
    /// The token endpoint (`…/oauth2/token`).
    pub token_url: String,
    /// The hosted sign-out endpoint (`…/logout`).
    pub logout_url: String,
    /// The public app client (no client secret).
    pub client_id: String,
}

/// A mail the local outbox holds (local mode only), so an admin can copy invite links.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OutboxMail {
    pub id: String,
    pub to: String,
    pub subject: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "schema", schemars(with = "String", extend("format" = "date-time")))]
    pub sent_at: OffsetDateTime,
    pub text: String,
}

/// What the credential page needs to show for an invite token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct InviteView {
    pub project_name: String,
    pub display_name: String,
    pub source_email: String,
    pub target_email: String,
    pub asks_source_password: bool,
    pub asks_target_password: bool,
    /// The source side signs in with its provider instead of a password.
    #[serde(default)]
    pub source_sign_in: Option<SignInOffer>,
    /// The target side signs in with its provider instead of a password.
    #[serde(default)]
    pub target_sign_in: Option<SignInOffer>,
    pub state: UserState,
    pub attempts_left: u32,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "schema", schemars(with = "String", extend("format" = "date-time")))]
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CredentialsInput {
    #[serde(default)]
    pub source_password: Option<String>,
    #[serde(default)]
    pub target_password: Option<String>,
}

/// A side of the credential page that signs in with its provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SignInOffer {
    pub kind: ConnectorKind,
    /// "Sign in with Microsoft", "Sign in with Google".
    pub label: String,
    /// The account signed in with, once the user did.
    pub signed_in_as: Option<String>,
}

/// Where the browser goes to sign in: the provider's authorization page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SignInRedirect {
    pub authorize_url: String,
}

/// What the credential page polls after Start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MigrationStatus {
    pub state: UserState,
    pub pass: u32,
    pub progress: Progress,
    pub source_email: String,
    pub target_email: String,
    /// Settings of the new account, shown once the migration is complete.
    #[serde(default)]
    pub new_account: Option<AccountSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AccountSettings {
    pub email: String,
    pub imap_host: String,
    pub imap_port: u16,
    pub security: Security,
    /// Where the new mailbox opens in a browser when its service has one (Microsoft 365,
    /// Gmail): its users sign in there, and their mail apps sign in with the account, not with
    /// server settings.
    #[serde(default)]
    pub web_sign_in: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Health {
    pub status: String,
    pub version: String,
}

/// Limits the API enforces; published so the frontend can check before sending.
pub mod limits {
    /// Largest accepted CSV upload in bytes (10 MB).
    pub const CSV_MAX_BYTES: usize = 10 * 1024 * 1024;
    /// Largest number of data rows in one CSV upload.
    pub const CSV_MAX_ROWS: usize = 50_000;
    /// Largest accepted password, in bytes.
    pub const PASSWORD_MAX_BYTES: usize = 1024;
    /// Largest JSON body of any other request.
    pub const JSON_MAX_BYTES: usize = 64 * 1024;
    /// Failed credential attempts before an invite link locks.
    pub const INVITE_MAX_FAILED_ATTEMPTS: u32 = 5;
    /// Days an invite link stays valid.
    pub const INVITE_TTL_DAYS: i64 = 14;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_state_round_trips_through_its_string_form() {
        for st in UserState::ALL {
            assert_eq!(UserState::parse(st.as_str()), Some(st));
            let json = serde_json::to_string(&st).unwrap();
            assert_eq!(json, format!("\"{}\"", st.as_str()));
        }
        assert_eq!(UserState::parse("nope"), None);
    }

    #[test]
    fn requests_reject_unknown_fields() {
        let err = serde_json::from_str::<LoginInput>(r#"{"password":"x","admin":true}"#);
        assert!(err.is_err());
        let err = serde_json::from_str::<UserInput>(
            r#"{"source_email":"a@b.c","target_email":"a@d.e","colour":"red"}"#,
        );
        assert!(err.is_err());
    }
}
