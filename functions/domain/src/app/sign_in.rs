//! A user's sign-in with Microsoft or Google on the invite page, for a side whose users sign
//! in instead of typing a password: authorization code with PKCE. The `state` that travels
//! through the provider is sealed by the vault and names the invite link, the side, the PKCE
//! verifier, a nonce and when it ends, so nothing is stored until the provider sends the user
//! back, and a state cannot be forged or moved to another link. The account that signed in must
//! be the invited address; only then is the refresh token sealed with the user's credentials.
//! Consent denied, a code used twice, a wrong account or an expired state each send the
//! browser back to the credential page saying what happened, and none of them costs the
//! link an attempt.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use contract::{ConnectorKind, InviteTo, SignInOffer, SignInRedirect, UserState};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::audit::{Actor, AuditAction};
use crate::error::AppError;
use crate::model::*;
use crate::oauth::{AppGrant, AuthorizeRequest, CodeExchange, SignInClient, TokenError};
use crate::providers;
use crate::secret::{Credential, Secret};

use super::App;
use super::projects::Side;

/// How long a user has on the provider's pages before the sign-in must start again.
const STATE_TTL: Duration = Duration::from_secs(15 * 60);
/// What a sealed state is bound to: it opens as nothing else.
const STATE_AAD: &[u8] = b"mailferry sign-in state v1";
/// Where the provider sends the browser back, under the public URL.
pub const CALLBACK_PATH: &str = "/api/sign-in/callback";

/// What travels, sealed, as the OAuth `state`.
#[derive(Serialize, Deserialize)]
struct SignInState {
    invite: String,
    side: Side,
    verifier: String,
    nonce: String,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

/// How a sign-in ended, as the credential page is told (`?sign_in=…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInOutcome {
    SignedIn,
    /// Another account signed in than the link is for: nothing was stored.
    WrongAccount {
        signed_in_as: String,
    },
    /// The user did not allow access on the provider's page.
    Denied,
    /// The code was used already (a reload, the back button, a replay).
    AlreadyUsed,
    /// The user took longer than the state lives.
    Expired,
    /// Anything else, in words the user may see.
    Failed(String),
}

impl SignInOutcome {
    fn code(&self) -> &'static str {
        match self {
            SignInOutcome::SignedIn => "ok",
            SignInOutcome::WrongAccount { .. } => "wrong_account",
            SignInOutcome::Denied => "denied",
            SignInOutcome::AlreadyUsed => "used",
            SignInOutcome::Expired => "expired",
            SignInOutcome::Failed(_) => "failed",
        }
    }
}

/// The credential page's address after a sign-in, saying how it ended.
fn page_after(invite: &str, side: Side, outcome: &SignInOutcome) -> String {
    let mut url = format!(
        "/migrate/{invite}?sign_in={}&side={}",
        outcome.code(),
        side.as_str()
    );
    let extra = match outcome {
        SignInOutcome::WrongAccount { signed_in_as } => Some(("as", signed_in_as.as_str())),
        SignInOutcome::Failed(why) => Some(("why", why.as_str())),
        _ => None,
    };
    if let Some((key, value)) = extra {
        url.push_str(&format!("&{key}={}", percent_encode(value)));
    }
    url
}

/// Query-string encoding of a value (RFC 3986 unreserved characters kept).
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Text from the provider, cut to one short line of visible characters.
fn short(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(100).collect()
}

fn random_text(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// "Sign in with Microsoft" / "Sign in with Google".
fn label(kind: ConnectorKind) -> String {
    match kind {
        ConnectorKind::GoogleWorkspace => "Sign in with Google".into(),
        _ => "Sign in with Microsoft".into(),
    }
}

fn provider_name(kind: ConnectorKind) -> &'static str {
    match kind {
        ConnectorKind::GoogleWorkspace => "Google",
        _ => "Microsoft",
    }
}

impl App {
    /// What the credential page offers for a side whose users sign in.
    pub(crate) fn sign_in_offer(
        connector: &Connector,
        signed_in: Option<&SignedIn>,
    ) -> Option<SignInOffer> {
        connector.is_sign_in().then(|| SignInOffer {
            kind: connector.kind,
            label: label(connector.kind),
            signed_in_as: signed_in.map(|s| s.account.clone()),
        })
    }

    /// The OAuth client of a side's user sign-in, its token endpoint and authorization page.
    async fn sign_in_client(
        &self,
        project: &Project,
        side: Side,
    ) -> Result<(SignInClient, crate::app::AuthorityUrls), AppError> {
        let connector = side.of(project);
        let ConnectorAuth::UserSignIn {
            client_id,
            tenant_id,
            ..
        } = &connector.auth
        else {
            return Err(AppError::validation_field(
                "side",
                format!("the {} side takes a password, not a sign-in", side.as_str()),
            ));
        };
        let tenant = tenant_id.as_deref().unwrap_or("organizations");
        let urls = self
            .config
            .authorities
            .of(connector.kind, tenant)
            .ok_or_else(|| AppError::internal("an IMAP side has no authority"))?;
        let client = SignInClient {
            client_id: client_id.clone(),
            client_secret: self.open_client_secret(project.id, side, connector).await?,
            redirect_uri: format!("{}{CALLBACK_PATH}", self.config.public_url),
        };
        Ok((client, urls))
    }

    /// Starts a sign-in for one side of an invite: the provider's page to send the browser to.
    pub async fn start_sign_in(&self, token: &str, side: &str) -> Result<SignInRedirect, AppError> {
        let (invite, user, project) = self.invite_for(token).await?;
        Self::require_open(&project)?;
        self.check_link_usable(&invite, &user)?;
        let side = Side::parse(side).ok_or(AppError::NotFound("side"))?;
        let (client, urls) = self.sign_in_client(&project, side).await?;
        let connector = side.of(&project);
        let state = SignInState {
            invite: token.to_owned(),
            side,
            verifier: random_text(32),
            nonce: random_text(16),
            expires_at: self.deps.clock.now() + STATE_TTL,
        };
        let json = serde_json::to_vec(&state).map_err(AppError::internal)?;
        let sealed = self.deps.vault.seal(&json, STATE_AAD).await?;
        let profile = providers::profile(connector.kind);
        let scope = profile
            .authority
            .map(|a| a.value.user_scope.to_owned())
            .unwrap_or_default();
        // Google hands out a refresh token only for offline access.
        let extra = match connector.kind {
            ConnectorKind::GoogleWorkspace => vec![("access_type".into(), "offline".into())],
            _ => vec![],
        };
        let request = AuthorizeRequest {
            authorize_url: urls.authorize,
            client,
            scope,
            state: URL_SAFE_NO_PAD.encode(&sealed.0),
            verifier: Secret::new(state.verifier),
            nonce: state.nonce,
            login_hint: side.email(&user).to_string(),
            extra,
        };
        let authorize_url = self
            .deps
            .tokens
            .authorize_url(&request)
            .map_err(|e| AppError::Upstream(e.to_string()))?;
        Ok(SignInRedirect { authorize_url })
    }

    /// Ends a sign-in where the provider sent the browser back: checks the state, exchanges the
    /// code, checks the account and stores its refresh token. Returns the credential page's
    /// address saying how it ended; an error only when the state cannot be read at all.
    pub async fn finish_sign_in(
        &self,
        state: &str,
        code: Option<&str>,
        error: Option<&str>,
        client: Option<std::net::IpAddr>,
    ) -> Result<String, AppError> {
        let unreadable = || {
            AppError::validation(
                "this sign-in could not be checked; start it again from the link in your email",
            )
        };
        let sealed = URL_SAFE_NO_PAD
            .decode(state.trim())
            .map_err(|_| unreadable())?;
        let plain = self
            .deps
            .vault
            .open(&Sealed(sealed), STATE_AAD)
            .await
            .map_err(|_| unreadable())?;
        let state: SignInState = serde_json::from_slice(&plain).map_err(|_| unreadable())?;
        let outcome = self.sign_in_outcome(&state, code, error, client).await?;
        Ok(page_after(&state.invite, state.side, &outcome))
    }

    async fn sign_in_outcome(
        &self,
        state: &SignInState,
        code: Option<&str>,
        error: Option<&str>,
        client: Option<std::net::IpAddr>,
    ) -> Result<SignInOutcome, AppError> {
        let (invite, user, project) = self.invite_for(&state.invite).await?;
        if state.expires_at <= self.deps.clock.now() {
            return Ok(SignInOutcome::Expired);
        }
        if let Err(e) = Self::require_open(&project).and(self.check_link_usable(&invite, &user)) {
            return Ok(SignInOutcome::Failed(e.to_string()));
        }
        match (error, code) {
            (Some("access_denied"), _) => return Ok(SignInOutcome::Denied),
            (Some(other), _) => {
                return Ok(SignInOutcome::Failed(format!(
                    "the provider said: {}",
                    short(other)
                )));
            }
            (None, None) => return Ok(SignInOutcome::Failed("the provider sent no code".into())),
            (None, Some(_)) => {}
        }
        let side = state.side;
        let (sign_in_client, urls) = self.sign_in_client(&project, side).await?;
        let exchange = CodeExchange {
            token_url: urls.token,
            jwks_url: urls.jwks,
            client: sign_in_client,
            code: Secret::new(code.unwrap_or_default()),
            verifier: Secret::new(state.verifier.clone()),
        };
        let tokens = match self.deps.tokens.exchange_code(&exchange).await {
            Ok(t) => t,
            Err(TokenError::Refused(m)) if m.starts_with("invalid_grant") => {
                // A provider revokes what a code gave when the code comes again (RFC 6749
                // section 4.1.2): the stored sign-in may be gone with it.
                self.sign_in_still_works(&project, &user, side).await?;
                return Ok(SignInOutcome::AlreadyUsed);
            }
            Err(e) => return Ok(SignInOutcome::Failed(e.to_string())),
        };
        let actor = Actor::user(user.source_email.as_str(), client);
        self.accept_sign_in(&project, &user, side, &state.nonce, tokens, &actor)
            .await
    }

    /// Checks what the provider said against the request and the invite, and stores the
    /// sign-in only when it is the invited account's.
    async fn accept_sign_in(
        &self,
        project: &Project,
        user: &MailUser,
        side: Side,
        nonce: &str,
        tokens: crate::oauth::SignInTokens,
        actor: &Actor,
    ) -> Result<SignInOutcome, AppError> {
        if tokens.identity.nonce.as_deref() != Some(nonce) {
            return Ok(SignInOutcome::Failed(
                "the provider's answer does not belong to this sign-in".into(),
            ));
        }
        let expected = side.email(user);
        let subject = user.source_email.to_string();
        let provider = provider_name(side.of(project).kind);
        let Some(address) = tokens.identity.address().map(str::to_owned) else {
            return Ok(SignInOutcome::Failed(format!(
                "{provider} did not say which account signed in"
            )));
        };
        if !address.eq_ignore_ascii_case(expected.as_str()) {
            let detail = format!(
                "a {provider} sign-in as {address} was refused for {expected}: nothing stored"
            );
            self.audit(
                Some(project.id),
                actor,
                AuditAction::CredentialsTested,
                Some(&subject),
                &detail,
            )
            .await;
            return Ok(SignInOutcome::WrongAccount {
                signed_in_as: address,
            });
        }
        let Some(refresh_token) = tokens.refresh_token else {
            return Ok(SignInOutcome::Failed(format!(
                "{provider} gave no lasting access (no refresh token): sign in again and allow offline access"
            )));
        };
        let mut creds = self
            .credentials(project, user.id)
            .await?
            .unwrap_or_default();
        *side.sign_in_of(&mut creds) = Some(SignedIn {
            refresh_token: refresh_token.expose().to_owned(),
            account: address.clone(),
        });
        self.store_credentials(project, user, &creds).await?;
        self.log_event(
            user,
            format!(
                "signed in with {provider} as {address} for the {} side",
                side.as_str()
            ),
        )
        .await;
        self.audit(
            Some(project.id),
            actor,
            AuditAction::CredentialsSubmitted,
            Some(&subject),
            &format!(
                "{} sign-in with {provider} as {address} stored from the invite page",
                side.as_str()
            ),
        )
        .await;
        Ok(SignInOutcome::SignedIn)
    }

    /// Whether a side's stored sign-in still renews its tokens (asked afresh, not from the
    /// kept token); one the provider refuses is deleted, so the page asks for a new sign-in.
    pub(crate) async fn sign_in_still_works(
        &self,
        project: &Project,
        user: &MailUser,
        side: Side,
    ) -> Result<bool, AppError> {
        let mut creds = self
            .credentials(project, user.id)
            .await?
            .unwrap_or_default();
        let Some(signed_in) = side.sign_in_of(&mut creds).clone() else {
            return Ok(false);
        };
        let grant = self.refresh_grant(project, side, &signed_in).await?;
        self.deps.tokens.forget(&grant).await;
        match self.deps.tokens.app_token(&grant).await {
            Ok(token) => {
                if let Some(rotated) = token.refresh_token {
                    self.keep_rotated_refresh_token(project, user, side, rotated)
                        .await?;
                }
                Ok(true)
            }
            Err(TokenError::Refused(m)) => {
                tracing::info!(user = %user.id, side = side.as_str(), reason = %m, "a stored sign-in was refused: deleted");
                *side.sign_in_of(&mut creds) = None;
                self.store_credentials(project, user, &creds).await?;
                Ok(false)
            }
            Err(TokenError::Unavailable(m)) => Err(AppError::Upstream(format!(
                "the sign-in could not be checked just now ({m}); please try again in a few minutes"
            ))),
        }
    }

    /// The grant that renews a signed-in side's access tokens.
    pub(crate) async fn refresh_grant(
        &self,
        project: &Project,
        side: Side,
        signed_in: &SignedIn,
    ) -> Result<AppGrant, AppError> {
        let (client, urls) = self.sign_in_client(project, side).await?;
        let scope = providers::profile(side.of(project).kind)
            .authority
            .map(|a| a.value.user_scope.to_owned())
            .unwrap_or_default();
        Ok(AppGrant::Refresh {
            token_url: urls.token,
            client,
            refresh_token: Secret::new(signed_in.refresh_token.clone()),
            scope,
        })
    }

    /// What signs in to a signed-in side's mailbox: the user's address and an access token
    /// renewed with their refresh token. A refusal by the authority (revoked, expired, consent
    /// withdrawn) means the user must sign in again.
    pub(crate) async fn signed_in_credential(
        &self,
        project: &Project,
        user: &MailUser,
        side: Side,
        signed_in: Option<&SignedIn>,
    ) -> Result<(String, Credential), AppError> {
        let email = side.email(user);
        let provider = provider_name(side.of(project).kind);
        let needed = |why: String| AppError::SignInNeeded {
            side: side.as_str(),
            message: format!(
                "sign-in needed again: the {} side's sign-in with {provider} {why}",
                side.as_str()
            ),
        };
        let Some(signed_in) = signed_in else {
            return Err(needed("is not stored".into()));
        };
        let grant = self.refresh_grant(project, side, signed_in).await?;
        match self.deps.tokens.app_token(&grant).await {
            Ok(token) => {
                if let Some(rotated) = token.refresh_token {
                    self.keep_rotated_refresh_token(project, user, side, rotated)
                        .await?;
                }
                Ok((email.to_string(), Credential::Bearer(token.token)))
            }
            Err(TokenError::Refused(m)) => Err(needed(format!("no longer works ({m})"))),
            Err(TokenError::Unavailable(m)) => Err(AppError::Upstream(format!(
                "{} server: the authority could not be reached: {m}",
                side.as_str()
            ))),
        }
    }

    /// Keeps the refresh token an authority rotated to in place of the one it spent (sealed
    /// with the user's other credentials). A sign-in deleted meanwhile (purged, or found
    /// revoked) stays deleted.
    async fn keep_rotated_refresh_token(
        &self,
        project: &Project,
        user: &MailUser,
        side: Side,
        rotated: Secret,
    ) -> Result<(), AppError> {
        let Some(mut creds) = self.credentials(project, user.id).await? else {
            return Ok(());
        };
        let Some(signed_in) = side.sign_in_of(&mut creds).as_mut() else {
            return Ok(());
        };
        signed_in.refresh_token = rotated.expose().to_owned();
        self.store_credentials(project, user, &creds).await?;
        tracing::info!(user = %user.id, side = side.as_str(), "a rotated refresh token was kept");
        Ok(())
    }

    /// A copy found a side's sign-in revoked or expired: the refresh token is deleted, the user
    /// fails saying a sign-in is needed again, and gets a new link when the project sends them.
    /// Signing in again and pressing Start resumes the copy where it stopped.
    pub(crate) async fn sign_in_needed_again(
        &self,
        user: &MailUser,
        side: Side,
        reason: String,
    ) -> Result<(), AppError> {
        let Some(project) = self.deps.store.get_project(user.project_id).await? else {
            return Ok(());
        };
        if let Some(mut creds) = self.credentials(&project, user.id).await? {
            *side.sign_in_of(&mut creds) = None;
            self.store_credentials(&project, user, &creds).await?;
        }
        self.fail_user(user.id, reason).await?;
        let Some(failed) = self.deps.store.get_user(user.id).await? else {
            return Ok(());
        };
        if failed.state == UserState::Failed && project.invite_to != InviteTo::None {
            self.send_invite(&project, &failed).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_after_a_sign_in_says_how_it_ended_in_its_query() {
        assert_eq!(
            page_after("tok", Side::Target, &SignInOutcome::SignedIn),
            "/migrate/tok?sign_in=ok&side=target"
        );
        assert_eq!(
            page_after(
                "tok",
                Side::Source,
                &SignInOutcome::WrongAccount {
                    signed_in_as: "eve+x@new.example".into()
                }
            ),
            "/migrate/tok?sign_in=wrong_account&side=source&as=eve%2Bx%40new.example"
        );
        assert_eq!(
            page_after("t", Side::Target, &SignInOutcome::Failed("a b&c".into())),
            "/migrate/t?sign_in=failed&side=target&why=a%20b%26c"
        );
    }

    #[test]
    fn states_and_verifiers_are_long_random_and_url_safe() {
        let (a, b) = (random_text(32), random_text(32));
        assert_ne!(a, b);
        // RFC 7636: a verifier has 43 to 128 characters of the unreserved set.
        assert_eq!(a.len(), 43);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}
