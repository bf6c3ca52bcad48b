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
    /// A user's refresh token (RFC 6749 section 6), from their sign-in on the invite page.
    /// One token per user and side.
    Refresh {
        token_url: String,
        client: SignInClient,
        refresh_token: Secret,
        scope: String,
    },
}

/// mailferry's OAuth client at a provider for user sign-ins (an app registration, a Google
/// OAuth client): a public client without a secret, or a confidential one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInClient {
    pub client_id: String,
    pub client_secret: Option<Secret>,
    /// Where the provider sends the browser back with the code.
    pub redirect_uri: String,
}

/// The authorization request of a user's sign-in (authorization code with PKCE, RFC 7636).
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub authorize_url: String,
    pub client: SignInClient,
    pub scope: String,
    /// Opaque to the provider; comes back with the code.
    pub state: String,
    /// The PKCE code verifier; the request carries its S256 challenge.
    pub verifier: Secret,
    /// Comes back in the ID token, tying it to this request.
    pub nonce: String,
    /// The account the sign-in is for (pre-filled on the provider's page).
    pub login_hint: String,
    /// Parameters a provider needs besides the standard ones (Google's `access_type=offline`).
    pub extra: Vec<(String, String)>,
}

/// The code the provider sent back, to exchange at its token endpoint.
#[derive(Debug, Clone)]
pub struct CodeExchange {
    pub token_url: String,
    /// The authority's signing keys (JWKS): the ID token's signature is checked with them.
    pub jwks_url: String,
    pub client: SignInClient,
    pub code: Secret,
    pub verifier: Secret,
}

/// What a sign-in gives: the tokens and who signed in (the ID token's claims).
#[derive(Debug, Clone)]
pub struct SignInTokens {
    pub access: AccessToken,
    pub refresh_token: Option<Secret>,
    pub identity: SignedInIdentity,
}

/// The ID token's claims mailferry checks, from a token whose signature the adapter checked
/// with the authority's published keys, whose audience is mailferry's client and which has not
/// ended (OpenID Connect Core 3.1.3.7).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignedInIdentity {
    pub email: Option<String>,
    pub preferred_username: Option<String>,
    pub nonce: Option<String>,
    pub audience: Vec<String>,
}

impl SignedInIdentity {
    /// The address the account signed in with: `email`, else `preferred_username` (Microsoft
    /// puts the UPN there).
    pub fn address(&self) -> Option<&str> {
        self.email
            .as_deref()
            .or(self.preferred_username.as_deref())
            .filter(|a| a.contains('@'))
    }
}

impl AppGrant {
    /// What the token is for, for messages and logs (never a secret).
    pub fn describe(&self) -> String {
        match self {
            AppGrant::ClientCredentials { client_id, .. } => format!("app {client_id}"),
            AppGrant::ServiceAccount { subject, .. } => {
                format!("the service account for {subject}")
            }
            AppGrant::Refresh { client, .. } => {
                format!("a user's sign-in with app {}", client.client_id)
            }
        }
    }
}

/// An access token and when it ends.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: Secret,
    pub expires_at: OffsetDateTime,
    /// A new refresh token the authority answered a renewal with (it rotates them, as
    /// Microsoft's does): the one used may stop working, so the caller keeps this one in its
    /// place. Only the call that renewed gets it; a kept token carries none.
    pub refresh_token: Option<Secret>,
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

    /// The provider's authorization page for a user's sign-in.
    fn authorize_url(&self, request: &AuthorizeRequest) -> Result<String, TokenError>;

    /// Exchanges a sign-in's code for tokens (the access token is kept for the refresh token).
    async fn exchange_code(&self, exchange: &CodeExchange) -> Result<SignInTokens, TokenError>;
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

    fn authorize_url(&self, _request: &AuthorizeRequest) -> Result<String, TokenError> {
        Err(TokenError::Refused(
            "no OAuth client is configured in this deployment".into(),
        ))
    }

    async fn exchange_code(&self, _exchange: &CodeExchange) -> Result<SignInTokens, TokenError> {
        Err(TokenError::Refused(
            "no OAuth client is configured in this deployment".into(),
        ))
    }
}
