//! Connector kinds and the provider profiles the console reads to fill a connector form and to
//! show what each provider allows.

use serde::{Deserialize, Serialize};

use crate::Security;

/// The kind of mail service one side of a project is: any IMAP server, or a provider whose
/// rules mailferry knows (host, limits, how it signs in, its folders and quirks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConnectorKind {
    /// Any IMAP server (Dovecot, Cyrus, Courier, Exchange on-premises with IMAP, …).
    #[default]
    Imap,
    /// Exchange Online: OAuth only (an app registration for admin access).
    Microsoft365,
    /// Gmail of a Google Workspace domain: OAuth only (a service account for admin access).
    GoogleWorkspace,
}

impl ConnectorKind {
    pub const ALL: [ConnectorKind; 3] = [
        ConnectorKind::Imap,
        ConnectorKind::Microsoft365,
        ConnectorKind::GoogleWorkspace,
    ];

    /// The wire name (`imap`, `microsoft365`, `google_workspace`).
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::Imap => "imap",
            ConnectorKind::Microsoft365 => "microsoft365",
            ConnectorKind::GoogleWorkspace => "google_workspace",
        }
    }
}

/// One rule of a provider profile, with where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RuleView {
    /// What the rule is about, e.g. `largest message`.
    pub rule: String,
    /// Its value as a person reads it, e.g. `35 MB`.
    pub value: String,
    /// Where the value comes from: the provider's documentation, or why mailferry chose it.
    pub source: String,
}

/// A provider profile as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ProviderView {
    pub kind: ConnectorKind,
    /// The provider's name, e.g. `Microsoft 365`.
    pub name: String,
    /// The IMAP host the form starts with (`None`: the admin names the server).
    pub host: Option<String>,
    pub port: u16,
    pub security: Security,
    /// The admin-access modes this kind accepts (`admin`, `per_user`, `microsoft_app`,
    /// `google_service_account`).
    pub auth_modes: Vec<String>,
    /// What the admin sets up on the provider's side for admin access, step by step.
    pub setup_steps: Vec<String>,
    pub rules: Vec<RuleView>,
}
