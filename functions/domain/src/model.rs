//! The entities mailferry stores. Adapters persist each entity as a JSON document plus the few
//! fields they index, so a new optional field never needs a schema migration.

use contract::{
    AuthView, ConnectorKind, ConnectorView, InviteTo, Progress, Retention, Security, SkippedItem,
    UserState,
};
use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::AppError;

macro_rules! id_type {
    ($name:ident) => {
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn new() -> Self {
                $name(Uuid::new_v4())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(ProjectId);
id_type!(UserId);

/// A syntactically valid email address, trimmed and lower-cased so that lookups by address
/// (CSV re-import, duplicate checks) do not depend on how someone typed it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("the address is empty".into());
        }
        if trimmed.len() > 254 {
            return Err("the address is longer than 254 characters".into());
        }
        // email_address implements RFC 5322 address syntax; we additionally insist on a dot-less
        // free domain check being left to the mail server, but reject display-name forms.
        let parsed = email_address::EmailAddress::parse_with_options(
            trimmed,
            email_address::Options::default().without_display_text(),
        )
        .map_err(|e| format!("'{trimmed}' is not a valid email address ({e})"))?;
        if !parsed.domain().contains('.') && parsed.domain() != "localhost" {
            return Err(format!("'{trimmed}' has no domain with a dot"));
        }
        Ok(EmailAddress(trimmed.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        EmailAddress::parse(&value)
    }
}

impl From<EmailAddress> for String {
    fn from(value: EmailAddress) -> Self {
        value.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Bytes sealed by the [`crate::ports::Vault`]: opaque to everything but the vault that made them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed(#[serde(with = "b64")] pub Vec<u8>);

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed({} bytes)", self.0.len())
    }
}

mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

/// Where one side's passwords come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ConnectorAuth {
    Admin {
        login_pattern: String,
        /// `None` once deleted (the project was closed): it must be entered again.
        password: Option<Sealed>,
    },
    PerUser,
    /// Microsoft 365: an app registration's client secret, for app tokens.
    MicrosoftApp {
        tenant_id: String,
        client_id: String,
        login_pattern: String,
        /// `None` once deleted (the project was closed).
        secret: Option<Sealed>,
    },
    /// Google Workspace: a service account's key file, for a token per mailbox.
    GoogleServiceAccount {
        client_email: String,
        /// `None` once deleted (the project was closed).
        key: Option<Sealed>,
    },
    /// Each user signs in with the provider on the invite page; the refresh tokens are the
    /// user's credentials. The client secret belongs to mailferry's app registration and
    /// opens no mailbox by itself; `None` for a public client.
    UserSignIn {
        client_id: String,
        tenant_id: Option<String>,
        secret: Option<Sealed>,
    },
}

impl ConnectorAuth {
    /// The sealed admin-level secret (password, client secret, key) of a mode that has one.
    pub fn admin_secret(&self) -> Option<&Option<Sealed>> {
        match self {
            ConnectorAuth::Admin { password, .. } => Some(password),
            ConnectorAuth::MicrosoftApp { secret, .. } => Some(secret),
            ConnectorAuth::GoogleServiceAccount { key, .. } => Some(key),
            ConnectorAuth::PerUser | ConnectorAuth::UserSignIn { .. } => None,
        }
    }

    /// Deletes the admin-level secret; whether there was one.
    pub fn forget_secret(&mut self) -> bool {
        let slot = match self {
            ConnectorAuth::Admin { password, .. } => password,
            ConnectorAuth::MicrosoftApp { secret, .. } => secret,
            ConnectorAuth::GoogleServiceAccount { key, .. } => key,
            ConnectorAuth::PerUser | ConnectorAuth::UserSignIn { .. } => return false,
        };
        slot.take().is_some()
    }
}

/// A validated mail server endpoint plus how to authenticate on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connector {
    /// Stored since provider profiles; older projects are IMAP.
    #[serde(default)]
    pub kind: ConnectorKind,
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub auth: ConnectorAuth,
}

impl Connector {
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            host: self.host.clone(),
            port: self.port,
            security: self.security,
        }
    }

    pub fn view(&self) -> ConnectorView {
        ConnectorView {
            kind: self.kind,
            host: self.host.clone(),
            port: self.port,
            security: self.security,
            auth: match &self.auth {
                ConnectorAuth::Admin {
                    login_pattern,
                    password,
                } => AuthView::Admin {
                    login_pattern: login_pattern.clone(),
                    has_password: password.is_some(),
                },
                ConnectorAuth::PerUser => AuthView::PerUser,
                ConnectorAuth::MicrosoftApp {
                    tenant_id,
                    client_id,
                    login_pattern,
                    secret,
                } => AuthView::MicrosoftApp {
                    tenant_id: tenant_id.clone(),
                    client_id: client_id.clone(),
                    login_pattern: login_pattern.clone(),
                    has_secret: secret.is_some(),
                },
                ConnectorAuth::GoogleServiceAccount { client_email, key } => {
                    AuthView::GoogleServiceAccount {
                        client_email: client_email.clone(),
                        has_key: key.is_some(),
                    }
                }
                ConnectorAuth::UserSignIn {
                    client_id,
                    tenant_id,
                    secret,
                } => AuthView::UserSignIn {
                    client_id: client_id.clone(),
                    tenant_id: tenant_id.clone(),
                    has_secret: secret.is_some(),
                },
            },
        }
    }

    /// Whether each user brings the credential of this side (a password, or a sign-in).
    pub fn is_per_user(&self) -> bool {
        matches!(
            self.auth,
            ConnectorAuth::PerUser | ConnectorAuth::UserSignIn { .. }
        )
    }

    /// Whether each user signs in with the provider on this side instead of a password.
    pub fn is_sign_in(&self) -> bool {
        matches!(self.auth, ConnectorAuth::UserSignIn { .. })
    }

    /// An admin-level mode whose secret was deleted (the project was closed).
    pub fn admin_secret_deleted(&self) -> bool {
        matches!(self.auth.admin_secret(), Some(None))
    }
}

/// Where and how to connect, without credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub security: Security,
}

/// Validate a host name or IP literal as typed in a connector form.
pub fn parse_host(raw: &str) -> Result<String, String> {
    let host = raw.trim();
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if host.len() > 253 {
        return Err("the host is longer than 253 characters".into());
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(host.to_owned());
    }
    let ok = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    if ok {
        Ok(host.to_ascii_lowercase())
    } else {
        Err(format!("'{host}' is not a valid host name"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub source: Connector,
    pub target: Connector,
    pub invite_to: InviteTo,
    pub admin_email: Option<EmailAddress>,
    pub notify_user: bool,
    #[serde(default)]
    pub copy: CopyOptions,
    #[serde(default)]
    pub retention: Retention,
    #[serde(default)]
    pub sync: contract::SyncPlan,
    /// Set when the admin closed the project: its passwords are deleted and nothing new
    /// starts until it is reopened.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub version: u64,
}

/// One mailbox to move: the unit every state transition and checkpoint belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailUser {
    pub id: UserId,
    pub project_id: ProjectId,
    pub source_email: EmailAddress,
    pub target_email: EmailAddress,
    pub display_name: String,
    pub state: UserState,
    /// 1 for the first full pass, then +1 for each delta pass.
    pub pass: u32,
    pub progress: Progress,
    pub last_error: Option<String>,
    /// 0 to `schedule::PRIORITY_MAX`: a user of higher priority goes first where users wait
    /// for a server's connections.
    #[serde(default)]
    pub priority: u8,
    /// Since when the user waits in line for a server's connections (`schedule`); `None`
    /// while its jobs get their slots.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub waiting_since: Option<OffsetDateTime>,
    /// The user's rank in the servers' lines for this pass (`schedule::line_rank`): fixed at
    /// its first asking for a connection, so users are served in the order they started (by
    /// priority first), and a user being served keeps its rank for its next folders.
    #[serde(default)]
    pub line: Option<LinePlace>,
    /// Delta passes after the first, and the cutover.
    #[serde(default)]
    pub sync: SyncState,
    /// What the last preflight found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preflight: Option<contract::PreflightSummary>,
    /// Per-user passwords are stored (sealed) for the sides that need them.
    pub has_credentials: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub invite_sent_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Optimistic-concurrency version: every write is conditional on it.
    pub version: u64,
}

impl MailUser {
    pub fn view(&self) -> contract::UserView {
        contract::UserView {
            id: self.id.0,
            project_id: self.project_id.0,
            source_email: self.source_email.to_string(),
            target_email: self.target_email.to_string(),
            display_name: self.display_name.clone(),
            state: self.state,
            pass: self.pass,
            progress: self.progress.clone(),
            last_error: self.last_error.clone(),
            priority: self.priority,
            waiting_since: self.waiting_since,
            cutover_at: self.sync.cutover_at,
            cut_over_at: self.sync.cut_over_at,
            last_sync: self.sync.last.clone(),
            preflight: self.preflight.clone(),
            has_credentials: self.has_credentials,
            credentials_until: None,
            invite_sent_at: self.invite_sent_at,
            updated_at: self.updated_at,
            version: self.version,
        }
    }
}

/// A user's passes after the first (`app::sync`): why the current one runs and what it
/// changed so far, when the last one ended, and the cutover.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncState {
    /// This user's own cutover time (a CSV batch's); `None` takes the project's.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub cutover_at: Option<OffsetDateTime>,
    /// When the user was cut over. A delta pass after it (mail that still reached the old
    /// server) ends in Cut over again, without a second cutover mail.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub cut_over_at: Option<OffsetDateTime>,
    /// When the user's last pass ended: a scheduled sync counts its hours from there.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub pass_ended_at: Option<OffsetDateTime>,
    /// The delta pass running now.
    #[serde(default)]
    pub pass: Option<PassInfo>,
    /// What the last delta pass changed.
    #[serde(default)]
    pub last: Option<contract::SyncSummary>,
}

/// Why a delta pass runs, and what it changed so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassInfo {
    pub pass: u32,
    pub reason: PassReason,
    /// The user's copied messages when the pass began: what it copies is the difference.
    pub messages_before: u64,
    pub flag_changes: u64,
    pub removed: u64,
    /// Messages moved between folders (on the target, not copied again).
    #[serde(default)]
    pub moved: u64,
}

/// Who started a delta pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassReason {
    /// The admin (Delta, Retry skipped).
    Admin,
    /// The project's "keep in sync every N hours".
    Schedule,
    /// The final pass at the cutover: the user is Cut over when it ends.
    Cutover,
}

impl PassReason {
    pub fn as_str(self) -> &'static str {
        match self {
            PassReason::Admin => "admin",
            PassReason::Schedule => "schedule",
            PassReason::Cutover => "cutover",
        }
    }
}

/// Since when a user asks for connections in one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinePlace {
    pub pass: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

/// The sealed per-user passwords, as the vault stores them.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct UserCredentials {
    pub source_password: Option<String>,
    pub target_password: Option<String>,
    /// Refresh tokens of sides where the user signed in with the provider, with the account
    /// that signed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sign_in: Option<SignedIn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_sign_in: Option<SignedIn>,
}

/// A user's sign-in with a provider: what renews the access tokens, and who signed in.
#[derive(Clone, Serialize, Deserialize)]
pub struct SignedIn {
    pub refresh_token: String,
    pub account: String,
}

impl fmt::Debug for UserCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserCredentials(***)")
    }
}

/// An invite link's server-side record. Only the SHA-256 of the token is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    pub token_hash: String,
    pub user_id: UserId,
    pub project_id: ProjectId,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Attempts spent, those being tested now included (an attempt is taken before the mail
    /// server is asked, and given back when the server could not be reached or said yes).
    pub failed_attempts: u32,
    /// While a password typed on this link is being tested: until when. Another submission
    /// meanwhile is told to wait, so parallel requests cannot test more passwords than the link
    /// has attempts.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub testing_until: Option<OffsetDateTime>,
    /// What the link opens: the credential page, or (after the cutover) the device set-up page.
    /// Each page refuses the other's links.
    #[serde(default)]
    pub purpose: LinkPurpose,
    pub version: u64,
}

/// What a link token opens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkPurpose {
    #[default]
    Credentials,
    DeviceSetup,
}

impl Invite {
    /// A new link for `user`, valid until `expires_at`: the token (it goes only into the
    /// mail) and the record that keeps its hash.
    pub fn issue(
        user: &MailUser,
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
        purpose: LinkPurpose,
    ) -> (String, Self) {
        let token = crate::token::generate();
        let invite = Invite {
            token_hash: crate::token::hash(&token),
            user_id: user.id,
            project_id: user.project_id,
            created_at,
            expires_at,
            failed_attempts: 0,
            testing_until: None,
            purpose,
            version: 1,
        };
        (token, invite)
    }

    pub fn attempts_left(&self) -> u32 {
        contract::limits::INVITE_MAX_FAILED_ATTEMPTS.saturating_sub(self.failed_attempts)
    }

    pub fn is_locked(&self) -> bool {
        self.attempts_left() == 0
    }
}

/// A logged-in admin's session; only the hash of the cookie value is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminSession {
    pub token_hash: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// A line in a user's event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserEvent {
    pub user_id: UserId,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub message: String,
}

/// Copy checkpoint and verification figures of one source folder of one user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FolderState {
    pub user_id: UserId,
    pub source_name: String,
    pub target_name: String,
    pub pass: u32,
    pub uidvalidity: Option<u32>,
    /// Highest source UID whose copy is known to be on the target.
    pub last_uid: u32,
    /// UIDs above `last_uid` up to and including this one may be on the target already: an
    /// append was started but not checkpointed. A resume checks the target before re-appending.
    pub in_flight: Option<InFlight>,
    pub highest_modseq: Option<u64>,
    pub source_messages: u64,
    pub source_bytes: u64,
    pub copied_messages: u64,
    pub copied_bytes: u64,
    pub target_messages: Option<u64>,
    pub target_bytes: Option<u64>,
    /// Skipped items of checkpoints written before they were kept apart
    /// ([`crate::ports::Store::put_skipped`]): read, moved out on the folder's next copy, never
    /// written again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedItem>,
    /// How many skipped items the store keeps apart for this folder.
    #[serde(default)]
    pub skipped_count: u64,
    pub done: bool,
    /// Which target UID each copied source UID got, for removing copies of messages deleted
    /// at the source. Older checkpoints have none.
    #[serde(default)]
    pub copies: CopyMap,
    /// The pass in which the copy map was rebuilt by identity (after the source renumbered
    /// the folder, or for a retry of skipped messages): that pass removes nothing.
    #[serde(default)]
    pub map_rebuilt_in_pass: Option<u32>,
    /// The pass whose first copy job examined this folder: created the target folder, counted
    /// what is to copy into the user's totals. A continuation of the same pass does not again.
    #[serde(default)]
    pub planned_in_pass: Option<u32>,
    /// `last_uid` when this pass planned the folder: the messages copied in earlier passes,
    /// whose flag changes a delta carries over. Those this pass copies already have the flags
    /// they had when fetched. Older checkpoints have none (then `last_uid` bounds them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copied_before_pass: Option<u32>,
    /// What the source said of the folder when the pass that finished it opened it (servers
    /// with CONDSTORE): a later pass that finds exactly this again skips the folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_mark: Option<SourceMark>,
    /// Whether the source subscribes to the folder (the target copy is subscribed too).
    #[serde(default)]
    pub subscribed: bool,
    /// Another source folder of this user copies into the same target folder: the two run one
    /// after the other (in source-name order), never at once.
    #[serde(default)]
    pub shares_target: bool,
    /// The source folder's role (RFC 6154), asked of the target when it creates the folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub special_use: Option<crate::mailbox::SpecialUse>,
    /// The name the plan chose first, when the target refused to create it and the folder went
    /// to `target_name` instead (the rule is `safe_folder_name` in `app/copy/plan.rs`); the report
    /// shows both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
    /// Copies read back from the target and compared with their source message.
    #[serde(default)]
    pub content_checked: u64,
    /// The first copies found altered (at most [`FolderState::ALTERED_KEPT`]), and how many in
    /// all: the checkpoint stays small whatever the target does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub altered: Vec<contract::AlteredItem>,
    #[serde(default)]
    pub altered_count: u64,
    /// Messages moved between folders at the source since the last pass, as the pass's plan
    /// found them (`app/copy/moves.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moves: Option<FolderMoves>,
    /// Who holds the folder, and until when; a worker only copies a folder it leased.
    pub lease_owner: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub lease_until: Option<OffsetDateTime>,
    pub version: u64,
}

/// A folder's share of the messages moved at the source between two passes: those that
/// arrived here from another folder (moved on the target instead of copied again), and those
/// that left (their copies here go with them, so removal leaves them to the move).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderMoves {
    pub pass: u32,
    pub incoming: Vec<MoveIn>,
    /// Source UIDs of this folder whose messages moved to another folder.
    pub outgoing: Vec<u32>,
}

/// A message that arrived in a folder at the source, and the copy of it the target already
/// holds in the folder it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveIn {
    /// Its UID in this (source) folder.
    pub source_uid: u32,
    /// The target folder holding its copy, the copy's UID there and that folder's UIDVALIDITY.
    pub from: String,
    pub target_uid: u32,
    pub target_uidvalidity: u32,
    /// The message's Message-ID, size and INTERNALDATE (Unix seconds) when the plan saw it: the
    /// chunk moves only if the UID still names that message (the source may renumber).
    #[serde(default)]
    pub message_id: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub internaldate: i64,
}

/// Source UID → target UID of the copies made in one folder, as runs where both go up by one
/// (a folder copied in order from a target with UIDPLUS is a handful of runs), valid for one
/// target UIDVALIDITY. The newest runs are here; older ones are sealed into numbered pages the
/// store keeps apart ([`crate::ports::Store::put_copy_page`]), so the checkpoint stays small
/// however scattered the UIDs are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyMap {
    /// The target folder's UIDVALIDITY the target UIDs belong to.
    pub target_uidvalidity: Option<u32>,
    /// `[first source UID, first target UID, count]`, by source UID.
    pub runs: Vec<[u32; 3]>,
    /// How many pages were sealed (pages `0..pages` are in the store).
    #[serde(default)]
    pub pages: u32,
}

impl CopyMap {
    /// Runs in the checkpoint before the oldest are sealed into a page: about 40 KB of JSON.
    pub const PAGE_RUNS: usize = 2000;

    /// When the open runs are more than a page, seals all but the newest run (which later
    /// copies may still extend) as the next page: its number and runs, for the store.
    pub fn seal(&mut self) -> Option<(u32, Vec<[u32; 3]>)> {
        if self.runs.len() <= Self::PAGE_RUNS {
            return None;
        }
        let newest = self.runs.pop()?;
        let page = std::mem::replace(&mut self.runs, vec![newest]);
        self.pages += 1;
        Some((self.pages - 1, page))
    }

    /// Records that source `source` was appended as target `target` under `uidvalidity`; a
    /// new UIDVALIDITY makes the earlier UIDs meaningless, so they are forgotten.
    pub fn record(&mut self, source: u32, target: u32, uidvalidity: u32) {
        if self.target_uidvalidity != Some(uidvalidity) {
            self.runs.clear();
            self.target_uidvalidity = Some(uidvalidity);
        }
        if let Some(last) = self.runs.last_mut()
            && last[0].checked_add(last[2]) == Some(source)
            && last[1].checked_add(last[2]) == Some(target)
        {
            last[2] += 1;
            return;
        }
        self.runs.push([source, target, 1]);
        if self.runs.len() > 1 && self.runs[self.runs.len() - 2][0] > source {
            self.runs.sort_unstable();
        }
    }

    /// Every (source UID, target UID) pair.
    pub fn pairs(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.runs
            .iter()
            .flat_map(|&[s, t, n]| (0..n).map(move |i| (s + i, t + i)))
    }

    /// Forgets these source UIDs (their copies were removed).
    pub fn forget(&mut self, sources: &std::collections::HashSet<u32>) {
        let Some(uidvalidity) = self.target_uidvalidity else {
            return;
        };
        let kept: Vec<(u32, u32)> = self.pairs().filter(|(s, _)| !sources.contains(s)).collect();
        self.runs.clear();
        for (s, t) in kept {
            self.record(s, t, uidvalidity);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty() && self.pages == 0
    }
}

impl FolderState {
    /// The checkpoint of a folder nothing was copied from yet.
    pub fn new(user_id: UserId, source_name: &str, target_name: &str, pass: u32) -> FolderState {
        FolderState {
            user_id,
            source_name: source_name.to_owned(),
            target_name: target_name.to_owned(),
            pass,
            uidvalidity: None,
            last_uid: 0,
            in_flight: None,
            highest_modseq: None,
            source_messages: 0,
            source_bytes: 0,
            copied_messages: 0,
            copied_bytes: 0,
            target_messages: None,
            target_bytes: None,
            skipped: Vec::new(),
            skipped_count: 0,
            done: false,
            copies: CopyMap::default(),
            map_rebuilt_in_pass: None,
            planned_in_pass: None,
            copied_before_pass: None,
            source_mark: None,
            subscribed: false,
            shares_target: false,
            special_use: None,
            renamed_from: None,
            content_checked: 0,
            altered: Vec::new(),
            altered_count: 0,
            moves: None,
            lease_owner: None,
            lease_until: None,
            version: 1,
        }
    }

    /// Altered copies listed by name in the checkpoint; the rest are only counted.
    pub const ALTERED_KEPT: usize = 100;

    /// Skipped items, those kept apart included.
    pub fn skipped_total(&self) -> u64 {
        self.skipped_count + self.skipped.len() as u64
    }

    /// The folder for the console, with `skipped` (some or all of its skipped items).
    pub fn view(&self, skipped: Vec<SkippedItem>) -> contract::FolderView {
        contract::FolderView {
            source_name: self.source_name.clone(),
            target_name: self.target_name.clone(),
            source_messages: self.source_messages,
            source_bytes: self.source_bytes,
            copied_messages: self.copied_messages,
            copied_bytes: self.copied_bytes,
            target_messages: self.target_messages,
            target_bytes: self.target_bytes,
            skipped_count: self.skipped_total(),
            skipped,
            renamed_from: self.renamed_from.clone(),
            content_checked: self.content_checked,
            altered: self.altered.clone(),
            altered_count: self.altered_count,
            done: self.done,
        }
    }
}

/// A source folder's UIDVALIDITY, UIDNEXT, message count and HIGHESTMODSEQ at one moment. No
/// message can arrive, leave or change flags without moving one of them (a new message takes
/// a UID, an expunge lowers the count, and CONDSTORE gives every change a higher mod-sequence),
/// so a folder that shows the same mark later holds what it held then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceMark {
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub messages: u32,
    pub highest_modseq: u64,
    /// The pass that took the mark also removed from the target the copies of messages
    /// deleted at the source (the project asked for it): a later pass with removal on has
    /// nothing left to remove in an unchanged folder.
    #[serde(default)]
    pub removal_settled: bool,
}

impl SourceMark {
    /// The mark of a folder status, taken by a pass that did (or did not) remove the copies of
    /// deleted messages; `None` without CONDSTORE (no mod-sequence to trust).
    pub fn taken(
        status: &crate::mailbox::FolderStatus,
        removal_settled: bool,
    ) -> Option<SourceMark> {
        Some(SourceMark {
            uidvalidity: status.uidvalidity,
            uidnext: status.uidnext,
            messages: status.messages,
            highest_modseq: status.highest_modseq?,
            removal_settled,
        })
    }

    /// Whether the source shows this folder as it was when the mark was taken.
    pub fn still(&self, status: &crate::mailbox::FolderStatus) -> bool {
        SourceMark::taken(status, self.removal_settled) == Some(*self)
    }
}

/// An append that was started but not checkpointed. Everything the crashed attempt may have
/// appended has a target UID at or above `target_uidnext` (the target folder's UIDNEXT read just
/// before appending), so a resume compares only that range with the source range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    /// Source UIDs above the folder's `last_uid` up to and including this one.
    pub to_uid: u32,
    pub target_uidvalidity: u32,
    pub target_uidnext: u32,
}

pub use contract::{CopyOptions, FolderMapping};

/// Filter and page for user listings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserQuery {
    pub state: Option<UserState>,
    /// Case-insensitive substring of source address, target address or display name.
    pub search: Option<String>,
    pub offset: u64,
    pub limit: u64,
}

impl UserQuery {
    pub const MAX_LIMIT: u64 = 500;

    pub fn matches(&self, u: &MailUser) -> bool {
        if let Some(st) = self.state
            && u.state != st
        {
            return false;
        }
        if let Some(q) = &self.search {
            let q = q.to_lowercase();
            return u.source_email.as_str().contains(&q)
                || u.target_email.as_str().contains(&q)
                || u.display_name.to_lowercase().contains(&q);
        }
        true
    }
}

/// Convenience for use cases that need a validation error from a field problem.
pub fn field_error(field: &str, message: impl Into<String>) -> AppError {
    AppError::validation_field(field, message)
}

#[cfg(test)]
mod tests {
    use super::CopyMap;

    #[test]
    fn a_source_mark_holds_while_no_figure_of_the_folder_moves() {
        use super::SourceMark;
        use crate::mailbox::FolderStatus;
        let status = FolderStatus {
            uidvalidity: 7,
            uidnext: 46,
            messages: 44,
            highest_modseq: Some(90),
        };
        let mark = SourceMark::taken(&status, true).unwrap();
        assert!(mark.still(&status));
        for moved in [
            FolderStatus {
                uidnext: 47,
                ..status
            },
            FolderStatus {
                messages: 43,
                ..status
            },
            FolderStatus {
                highest_modseq: Some(91),
                ..status
            },
            FolderStatus {
                uidvalidity: 8,
                ..status
            },
            FolderStatus {
                highest_modseq: None,
                ..status
            },
        ] {
            assert!(!mark.still(&moved), "{moved:?}");
        }
        assert_eq!(
            SourceMark::taken(
                &FolderStatus {
                    highest_modseq: None,
                    ..status
                },
                false
            ),
            None
        );
    }

    #[test]
    fn copy_map_keeps_runs_and_forgets_removed_sources() {
        let mut map = CopyMap::default();
        for (s, t) in [(1, 10), (2, 11), (3, 12), (7, 13), (8, 14)] {
            map.record(s, t, 5);
        }
        assert_eq!(map.runs, vec![[1, 10, 3], [7, 13, 2]]);
        // A resumed chunk may record a lower source UID after a higher one.
        map.record(5, 20, 5);
        assert_eq!(map.runs, vec![[1, 10, 3], [5, 20, 1], [7, 13, 2]]);
        map.forget(&[2, 7].into_iter().collect());
        let pairs: Vec<_> = map.pairs().collect();
        assert_eq!(pairs, vec![(1, 10), (3, 12), (5, 20), (8, 14)]);
        // A new target UIDVALIDITY voids the old target UIDs.
        map.record(9, 1, 6);
        assert_eq!(map.pairs().collect::<Vec<_>>(), vec![(9, 1)]);
        assert_eq!(map.target_uidvalidity, Some(6));
    }
}
