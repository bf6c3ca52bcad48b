//! mailferry's OAuth 2.0 client: the adapter of the domain's token port
//! ([`domain::oauth::Tokens`]). App tokens come from Microsoft's and Google's authorities, or
//! from whichever authority the operator configured (a local one in the tests):
//!
//! - client credentials (Microsoft 365 app registrations) through the `oauth2` crate;
//! - Google's service-account grant (RFC 7523 JWT bearer): an RS256 assertion signed with
//!   `jsonwebtoken` naming the mailbox as `sub`, posted as a form;
//! - a user's sign-in (authorization code with PKCE) and the renewal of their access tokens
//!   with the refresh token, through the `oauth2` crate (`sign_in.rs`); the sign-in's ID token
//!   is believed only once its signature checks out with the authority's published keys
//!   (`id_token.rs`).
//!
//! Tokens are kept in memory and renewed before they end (five minutes before, or at half
//! their life when they live shorter), so a copy never starts a command with a token about to
//! run out. One grant is renewed by one call at a time: the others wait for its token. That
//! matters where refresh tokens rotate (Microsoft): each renewal spends the refresh token it
//! used and answers with a new one, which the caller keeps (and which is kept here too, so a
//! job that already read the new one finds the same access token), and an authority that
//! checks for reuse revokes the whole sign-in when a spent one comes again. No token, secret
//! or assertion is ever logged or put into an error: what an error carries is the authority's
//! error code and its description, cut short.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use domain::Secret;
use domain::oauth::{
    AccessToken, AppGrant, AuthorizeRequest, CodeExchange, SignInTokens, TokenError, Tokens,
};
use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

mod certificate;
mod id_token;
mod service_account;
mod sign_in;

/// How long before its end a kept token is renewed, at most.
const RENEW_BEFORE: Duration = Duration::from_secs(300);
/// How long a token lives when the authority does not say.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// How long one request to an authority may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A kept token and when to ask for a new one.
#[derive(Clone)]
struct Kept {
    token: AccessToken,
    renew_at: OffsetDateTime,
}

/// The OAuth client. Cheap to share; one per process.
pub struct OAuthClient {
    http: reqwest::Client,
    kept: Mutex<HashMap<[u8; 32], Kept>>,
    /// One lock per grant, held while its token is renewed.
    renewing: Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
    /// The authorities' signing keys, for users' ID tokens.
    keys: id_token::KeySets,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OAuthClient")
    }
}

impl OAuthClient {
    pub fn new() -> Result<Self, String> {
        let http = reqwest::Client::builder()
            // A token endpoint that redirects is not followed: the secret would go along.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("mailferry/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("the HTTPS client cannot start: {e}"))?;
        Ok(OAuthClient {
            http,
            kept: Mutex::new(HashMap::new()),
            renewing: Mutex::new(HashMap::new()),
            keys: id_token::KeySets::default(),
        })
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Kept>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The kept token of a grant while it is not due for renewal.
    fn kept_token(&self, key: &[u8; 32], now: OffsetDateTime) -> Option<AccessToken> {
        self.kept()
            .get(key)
            .filter(|kept| kept.renew_at > now)
            .map(|kept| kept.token.clone())
    }

    /// The lock that lets one call at a time renew the grant under `key`.
    fn renewal_lock(&self, key: [u8; 32]) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.renewing.lock().unwrap_or_else(|p| p.into_inner());
        // Locks nobody holds or waits for go, so the map stays as small as the work in hand.
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        locks.entry(key).or_default().clone()
    }

    async fn client_credentials(
        &self,
        token_url: &str,
        client_id: &str,
        client_secret: &Secret,
        scope: &str,
    ) -> Result<(Secret, Option<Duration>), TokenError> {
        let url = TokenUrl::new(token_url.to_owned())
            .map_err(|_| TokenError::Refused(format!("'{token_url}' is not a token URL")))?;
        let client = BasicClient::new(ClientId::new(client_id.to_owned()))
            // Microsoft documents the client's credentials in the request body.
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(url);
        let response = match certificate::parse(client_secret.expose()) {
            // A certificate: a signed assertion instead of a secret.
            Some(cert) => {
                let assertion = certificate::client_assertion(
                    &cert?,
                    client_id,
                    token_url,
                    OffsetDateTime::now_utc(),
                )?;
                client
                    .exchange_client_credentials()
                    .add_scope(Scope::new(scope.to_owned()))
                    .add_extra_param("client_assertion_type", certificate::ASSERTION_TYPE)
                    .add_extra_param("client_assertion", assertion)
                    .request_async(&self.http)
                    .await
            }
            None => {
                client
                    .set_client_secret(ClientSecret::new(client_secret.expose().to_owned()))
                    .exchange_client_credentials()
                    .add_scope(Scope::new(scope.to_owned()))
                    .request_async(&self.http)
                    .await
            }
        };
        match response {
            Ok(r) => Ok((
                Secret::new(r.access_token().secret().clone()),
                r.expires_in(),
            )),
            Err(e) => Err(sign_in::token_error(token_url, e)),
        }
    }
}

/// An authority's error code and description as a [`TokenError`]: codes that say the grant
/// itself is wrong are refusals the admin must fix; anything else may pass.
pub(crate) fn classify(code: &str, description: Option<&str>) -> TokenError {
    let text = match description {
        Some(d) => format!("{code}: {}", short(d)),
        None => code.to_owned(),
    };
    match code {
        "temporarily_unavailable" | "server_error" | "slow_down" => TokenError::Unavailable(text),
        _ => TokenError::Refused(text),
    }
}

/// Text from the other side, cut to one line of at most 200 characters.
pub(crate) fn short(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    line.trim().to_owned()
}

pub(crate) fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "the authority".into())
}

/// The key a grant's token is kept under: a hash, so the map holds no secret in clear.
fn cache_key(grant: &AppGrant) -> [u8; 32] {
    let mut h = Sha256::new();
    let parts: Vec<&str> = match grant {
        AppGrant::ClientCredentials {
            token_url,
            client_id,
            client_secret,
            scope,
        } => vec!["cc", token_url, client_id, client_secret.expose(), scope],
        AppGrant::ServiceAccount {
            token_url,
            key_json,
            subject,
            scope,
        } => vec!["sa", token_url, key_json.expose(), subject, scope],
        AppGrant::Refresh {
            token_url,
            client,
            refresh_token,
            scope,
        } => vec![
            "rt",
            token_url,
            &client.client_id,
            refresh_token.expose(),
            scope,
        ],
    };
    for part in parts {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

/// The same grant with another refresh token (a rotated one).
fn with_refresh_token(grant: &AppGrant, refresh_token: &Secret) -> AppGrant {
    match grant {
        AppGrant::Refresh {
            token_url,
            client,
            scope,
            ..
        } => AppGrant::Refresh {
            token_url: token_url.clone(),
            client: client.clone(),
            refresh_token: refresh_token.clone(),
            scope: scope.clone(),
        },
        other => other.clone(),
    }
}

/// When a token issued `now` for `lifetime` is renewed.
fn renew_at(now: OffsetDateTime, lifetime: Duration) -> OffsetDateTime {
    let early = RENEW_BEFORE.min(lifetime / 2);
    now + (lifetime - early)
}

/// A token endpoint's answer to a form-posted grant (RFC 6749 section 5).
#[derive(Deserialize)]
pub(crate) struct TokenAnswer {
    pub access_token: Option<String>,
    pub expires_in: Option<u64>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

#[async_trait]
impl Tokens for OAuthClient {
    async fn app_token(&self, grant: &AppGrant) -> Result<AccessToken, TokenError> {
        let key = cache_key(grant);
        if let Some(token) = self.kept_token(&key, OffsetDateTime::now_utc()) {
            return Ok(token);
        }
        let lock = self.renewal_lock(key);
        let _renewing = lock.lock().await;
        // Another call may have renewed it while this one waited.
        let now = OffsetDateTime::now_utc();
        if let Some(token) = self.kept_token(&key, now) {
            return Ok(token);
        }
        let mut rotated = None;
        let (token, lifetime) = match grant {
            AppGrant::ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope,
            } => {
                self.client_credentials(token_url, client_id, client_secret, scope)
                    .await?
            }
            AppGrant::ServiceAccount {
                token_url,
                key_json,
                subject,
                scope,
            } => {
                service_account::token(&self.http, token_url, key_json, subject, scope, now).await?
            }
            AppGrant::Refresh {
                token_url,
                client,
                refresh_token,
                scope,
            } => {
                let (token, lifetime, new_refresh) =
                    sign_in::refresh(&self.http, token_url, client, refresh_token, scope).await?;
                rotated = new_refresh;
                (token, lifetime)
            }
        };
        let lifetime = lifetime.unwrap_or(DEFAULT_LIFETIME);
        let token = AccessToken {
            token,
            expires_at: now + lifetime,
            refresh_token: None,
        };
        tracing::info!(
            grant = %grant.describe(),
            lifetime_s = lifetime.as_secs(),
            rotated = rotated.is_some(),
            "access token issued"
        );
        let kept = Kept {
            token: token.clone(),
            renew_at: renew_at(now, lifetime),
        };
        // Kept under the rotated refresh token too: a job that already read it finds this one.
        let rotated_key = match (&rotated, grant) {
            (Some(new_refresh), AppGrant::Refresh { .. }) => {
                Some(cache_key(&with_refresh_token(grant, new_refresh)))
            }
            _ => None,
        };
        let mut all = self.kept();
        if let Some(rotated_key) = rotated_key {
            all.insert(rotated_key, kept.clone());
        }
        all.insert(key, kept);
        drop(all);
        Ok(AccessToken {
            refresh_token: rotated,
            ..token
        })
    }

    async fn forget(&self, grant: &AppGrant) {
        self.kept().remove(&cache_key(grant));
    }

    fn authorize_url(&self, request: &AuthorizeRequest) -> Result<String, TokenError> {
        sign_in::authorize_url(request)
    }

    async fn exchange_code(&self, exchange: &CodeExchange) -> Result<SignInTokens, TokenError> {
        let now = OffsetDateTime::now_utc();
        let (answer, lifetime) = sign_in::exchange_code(&self.http, exchange).await?;
        let (refresh_token, id_token) = sign_in::parts(&answer);
        // No ID token: nobody is known to have signed in, which the use case refuses.
        let identity = match id_token {
            Some(jwt) => {
                self.keys
                    .verify(
                        &self.http,
                        &exchange.jwks_url,
                        &jwt,
                        &exchange.client.client_id,
                    )
                    .await?
            }
            None => domain::oauth::SignedInIdentity::default(),
        };
        tracing::info!(
            client_id = %exchange.client.client_id,
            refresh = refresh_token.is_some(),
            "sign-in code exchanged"
        );
        Ok(SignInTokens {
            access: AccessToken {
                token: Secret::new(answer.access_token().secret().clone()),
                expires_at: now + lifetime.unwrap_or(DEFAULT_LIFETIME),
                refresh_token: None,
            },
            refresh_token,
            identity,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_before_they_end() {
        let now = OffsetDateTime::UNIX_EPOCH;
        // An hour-long token: five minutes before its end.
        assert_eq!(
            renew_at(now, Duration::from_secs(3600)),
            now + Duration::from_secs(3300)
        );
        // A short one: at half its life.
        assert_eq!(
            renew_at(now, Duration::from_secs(60)),
            now + Duration::from_secs(30)
        );
    }

    #[test]
    fn refusals_and_outages_are_told_apart() {
        assert!(matches!(
            classify("invalid_client", Some("AADSTS7000215: Invalid client secret provided.")),
            TokenError::Refused(m) if m.starts_with("invalid_client: AADSTS7000215")
        ));
        assert!(matches!(
            classify("temporarily_unavailable", None),
            TokenError::Unavailable(_)
        ));
        assert_eq!(short("a\r\nb"), "a  b");
        assert_eq!(short(&"x".repeat(500)).len(), 200);
    }

    #[test]
    fn grants_are_kept_apart_by_everything_they_name() {
        let grant = |subject: &str, secret: &str| AppGrant::ServiceAccount {
            token_url: "https://oauth2.googleapis.com/token".into(),
            key_json: Secret::new(secret),
            subject: subject.into(),
            scope: "https://mail.google.com/".into(),
        };
        assert_eq!(cache_key(&grant("a@x", "k")), cache_key(&grant("a@x", "k")));
        assert_ne!(cache_key(&grant("a@x", "k")), cache_key(&grant("b@x", "k")));
        assert_ne!(
            cache_key(&grant("a@x", "k")),
            cache_key(&grant("a@x", "k2"))
        );
        // Length-prefixed parts: moving a character between two parts changes the key.
        assert_ne!(cache_key(&grant("a@xk", "")), cache_key(&grant("a@x", "k")));
    }
}
