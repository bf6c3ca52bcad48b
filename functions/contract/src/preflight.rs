//! What a preflight found (`POST /api/admin/projects/{id}/users/{uid}/preflight`,
//! `mailferry copy --preflight`): both sides logged in to, nothing copied.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// A user's preflight: what a copy would move, and what would not fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PreflightReport {
    pub user_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "schema", schemars(with = "String", extend("format" = "date-time")))]
    pub checked_at: OffsetDateTime,
    /// The folders a pass would copy, under the names they would get on the target.
    pub folders: Vec<PreflightFolder>,
    pub messages: u64,
    pub bytes: u64,
    /// Messages larger than the target takes (they would be skipped and reported).
    pub oversize_messages: u64,
    pub largest_message_bytes: u64,
    /// The largest message the target takes: its APPENDLIMIT, else its service's limit.
    pub target_max_message_bytes: Option<u64>,
    /// The target account's storage quota, when its server reports one.
    pub target_quota: Option<QuotaView>,
    /// Whether what would arrive fits the target's free quota; absent without a quota.
    pub fits_quota: Option<bool>,
    /// The capabilities that matter to a copy, as each server announced them.
    pub source_capabilities: Vec<String>,
    pub target_capabilities: Vec<String>,
    /// The copy's duration at `rate_bytes_per_second`.
    pub estimate_seconds: u64,
    pub rate_bytes_per_second: u64,
    /// Whether the rate was measured by this user's copies so far (else it is assumed).
    pub rate_measured: bool,
    /// What would not go as planned, in plain words; empty when the user is ready.
    pub problems: Vec<String>,
}

/// One folder a pass would copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PreflightFolder {
    pub source: String,
    pub target: String,
    pub messages: u64,
    pub bytes: u64,
    /// Messages in it larger than the target takes.
    pub oversize_messages: u64,
    /// Why it gets another name on the target (a name the target keeps for itself, or one
    /// another folder took), when it does.
    pub renamed: Option<String>,
}

/// A storage quota in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct QuotaView {
    pub used_bytes: u64,
    pub limit_bytes: u64,
}

/// What a user's last preflight found, kept on the user: a bulk preflight runs in the
/// background, one queue job per user, and the console shows and sums these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PreflightSummary {
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "schema", schemars(with = "String", extend("format" = "date-time")))]
    pub checked_at: OffsetDateTime,
    pub messages: u64,
    pub bytes: u64,
    pub oversize_messages: u64,
    /// Absent when the target reports no quota.
    pub fits_quota: Option<bool>,
    pub estimate_seconds: u64,
    /// What would not go as planned; empty when the user is ready.
    pub problems: Vec<String>,
    /// Why the preflight could not run (a refused login, an unreachable server).
    #[serde(default)]
    pub error: Option<String>,
}

impl PreflightSummary {
    pub fn ready(&self) -> bool {
        self.error.is_none() && self.problems.is_empty()
    }
}

/// A project's preflights summed (`GET /api/admin/projects/{id}/preflight`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PreflightTotals {
    pub users: u64,
    /// Users with a preflight result (ready or not, or failed to run).
    pub checked: u64,
    pub ready: u64,
    pub over_quota: u64,
    /// Users with messages larger than the target takes, and how many messages in all.
    pub with_oversize: u64,
    pub oversize_messages: u64,
    /// Preflights that could not run (login refused, server unreachable).
    pub failed: u64,
    pub messages: u64,
    pub bytes: u64,
    /// The checked users' estimates added up (one after the other; users copy in parallel).
    pub estimate_seconds: u64,
    /// The sums in words: "312 users ready, 4 over quota, 27 oversize messages (in 9 users)".
    pub text: String,
}
