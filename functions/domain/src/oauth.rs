//! The token port: OAuth 2.0 access tokens for services that take no passwords (Microsoft 365,
//! Google Workspace). The use cases say which grant; the adapter (`oauth` crate) talks to the
//! authority, keeps tokens until shortly before they end and never logs one.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::secret::Secret;

/// How an app (admin-level) token is obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppGrant {
    /// Client credentials (RFC 6749 section 4.4): Microsoft's app registrations. One token
    /// opens every mailbox the app was given.
    ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: Secret,
        scope: String,
    },
    /// A service account's signed assertion (RFC 7523 JWT bearer) naming the mailbox as
    /// `sub`: Google's domain-wide delegation. One token per mailbox.
    ServiceAccount {
        token_url: String,
        /// The key file as Google gives it (`client_email`, `private_key`, `private_key_id`).
        key_json: Secret,
        subject: String,
        scope: String,
    },
}

impl AppGrant {
    /// What the token is for, for messages and logs (never a secret).
    pub fn describe(&self) -> String {
        match self {
            AppGrant::ClientCredentials { client_id, .. } => format!("app {client_id}"),
            AppGrant::ServiceAccount { subject, .. } => {
                format!("the service account for {subject}")
            }
        }
    }
}

/// An access token and when it ends.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: Secret,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The authority refused the grant (wrong secret, no consent, unknown client or user):
    /// the admin has to fix something; trying again changes nothing.
    #[error("the authority refused: {0}")]
    Refused(String),
    /// The authority could not be reached or failed: worth another try later.
    #[error("the authority could not be reached: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Tokens: Send + Sync + 'static {
    /// An access token for the grant: a kept one while it has minutes left, else a new one.
    async fn app_token(&self, grant: &AppGrant) -> Result<AccessToken, TokenError>;

    /// Forgets a kept token the mail server refused (revoked early, or its clock differs):
    /// the next call asks the authority again.
    async fn forget(&self, grant: &AppGrant);
}

/// Tokens for a deployment with no OAuth provider configured (IMAP only): every grant is
/// refused with a clear reason.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoTokens;

#[async_trait]
impl Tokens for NoTokens {
    async fn app_token(&self, grant: &AppGrant) -> Result<AccessToken, TokenError> {
        Err(TokenError::Refused(format!(
            "no OAuth client is configured in this deployment for {}",
            grant.describe()
        )))
    }

    async fn forget(&self, _grant: &AppGrant) {}
}
