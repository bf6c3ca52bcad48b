//! Keeping finished mailboxes in sync until the cutover, the cutover itself, and the device
//! set-up page a cut-over user reaches from their cutover mail.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Security;

/// A project's plan after the first pass: delta passes every few hours for every finished
/// user, then the day everyone switches to the new accounts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct SyncPlan {
    /// Run a delta pass for every finished user this many hours after their last pass ended
    /// (1 to 168), until their cutover; unset: delta passes only when the admin asks.
    pub every_hours: Option<u32>,
    /// When users switch to the new accounts (a user's own cutover time wins): each finished
    /// user gets a final delta pass, then is Cut over and mailed their new account's settings.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>", extend("format" = "date-time")))]
    pub cutover_at: Option<OffsetDateTime>,
    /// The new account's outgoing mail server, for the cutover mail and the device set-up
    /// page of an IMAP target; unset: the target's IMAP host.
    pub smtp_host: Option<String>,
    /// Its port (default 587, with STARTTLS; 465 means TLS from the start).
    pub smtp_port: Option<u16>,
}

/// What the last delta pass of a finished user changed on the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SyncSummary {
    pub pass: u32,
    /// Who started it: "admin", "schedule" (keep in sync every N hours) or "cutover".
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "schema", schemars(with = "String", extend("format" = "date-time")))]
    pub ended_at: OffsetDateTime,
    /// Messages new at the source since the pass before, copied.
    pub new_messages: u64,
    /// Target messages whose flags were set to match a change at the source.
    pub flag_changes: u64,
    /// Copies removed because their source message was deleted (when the project asks).
    pub removed: u64,
    /// Messages moved to another folder at the source, moved on the target (not copied again).
    #[serde(default)]
    pub moved: u64,
}

/// How a mail app reaches the new account: what the device set-up page, its profiles and the
/// cutover mail say. Never holds a password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeviceSetup {
    /// The new address, which is also the login name.
    pub email: String,
    pub display_name: String,
    /// Incoming mail (IMAP).
    pub imap_host: String,
    pub imap_port: u16,
    pub imap_security: Security,
    /// Outgoing mail (SMTP submission); `smtp_security` is `Tls` for port 465, else `Starttls`.
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_security: Security,
    /// Where the account opens in a browser when its service has one (Microsoft 365, Gmail):
    /// its users add the account by signing in, not with server settings.
    pub web_sign_in: Option<String>,
    /// The service's name when it is one ("Microsoft 365", "Google Workspace").
    pub service: Option<String>,
    /// Until when the set-up link works.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "schema", schemars(with = "String", extend("format" = "date-time")))]
    pub link_expires_at: OffsetDateTime,
}
