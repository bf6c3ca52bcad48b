//! A user's sign-in (authorization code with PKCE, RFC 7636) and the renewal of their access
//! tokens with the refresh token (RFC 6749 section 6), both through the `oauth2` crate. The ID
//! token's claims are read from the token endpoint's answer over TLS, which OpenID Connect
//! Core 3.1.3.7 accepts in place of checking its signature; the domain checks its nonce and the
//! account.

use std::time::Duration;

use domain::Secret;
use domain::oauth::{AuthorizeRequest, CodeExchange, SignInClient, SignedInIdentity, TokenError};
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    ExtraTokenFields, HttpClientError, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RefreshToken, RequestTokenError, Scope, StandardRevocableToken, StandardTokenResponse,
    TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};

use crate::{classify, host_of, short};

/// The ID token a sign-in's token answer carries besides the access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

type Answer = StandardTokenResponse<IdTokenField, BasicTokenType>;

type Client<HasAuthUrl, HasTokenUrl> = oauth2::Client<
    BasicErrorResponse,
    Answer,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    HasAuthUrl,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    HasTokenUrl,
>;

fn client_of(c: &SignInClient) -> Client<EndpointNotSet, EndpointNotSet> {
    let client = oauth2::Client::new(ClientId::new(c.client_id.clone()))
        // Microsoft and Google both take the client's credentials in the form.
        .set_auth_type(AuthType::RequestBody);
    match &c.client_secret {
        Some(secret) => client.set_client_secret(ClientSecret::new(secret.expose().to_owned())),
        None => client,
    }
}

fn redirect_of(c: &SignInClient) -> Result<RedirectUrl, TokenError> {
    RedirectUrl::new(c.redirect_uri.clone())
        .map_err(|_| TokenError::Refused(format!("'{}' is not a redirect URL", c.redirect_uri)))
}

fn token_url(url: &str) -> Result<TokenUrl, TokenError> {
    TokenUrl::new(url.to_owned())
        .map_err(|_| TokenError::Refused(format!("'{url}' is not a token URL")))
}

/// The provider's authorization page with the PKCE challenge of the request's verifier.
pub(crate) fn authorize_url(r: &AuthorizeRequest) -> Result<String, TokenError> {
    let auth_url = AuthUrl::new(r.authorize_url.clone()).map_err(|_| {
        TokenError::Refused(format!("'{}' is not an authorization URL", r.authorize_url))
    })?;
    let client = client_of(&r.client)
        .set_auth_uri(auth_url)
        .set_redirect_uri(redirect_of(&r.client)?);
    let verifier = PkceCodeVerifier::new(r.verifier.expose().to_owned());
    let state = r.state.clone();
    let mut request = client
        .authorize_url(move || CsrfToken::new(state))
        .add_scopes(r.scope.split_whitespace().map(|s| Scope::new(s.to_owned())))
        .set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(&verifier))
        .add_extra_param("nonce", r.nonce.clone())
        .add_extra_param("login_hint", r.login_hint.clone())
        // A refresh token needs consent to offline access (Google, oidc-provider).
        .add_extra_param("prompt", "consent");
    for (name, value) in &r.extra {
        request = request.add_extra_param(name.clone(), value.clone());
    }
    Ok(request.url().0.to_string())
}

/// Exchanges a sign-in's code for its tokens.
pub(crate) async fn exchange_code(
    http: &reqwest::Client,
    e: &CodeExchange,
) -> Result<(Answer, Option<Duration>), TokenError> {
    let client = client_of(&e.client)
        .set_token_uri(token_url(&e.token_url)?)
        .set_redirect_uri(redirect_of(&e.client)?);
    let answer = client
        .exchange_code(AuthorizationCode::new(e.code.expose().to_owned()))
        .set_pkce_verifier(PkceCodeVerifier::new(e.verifier.expose().to_owned()))
        .request_async(http)
        .await
        .map_err(|err| token_error(&e.token_url, err))?;
    let lifetime = answer.expires_in();
    Ok((answer, lifetime))
}

/// A new access token from a refresh token, and the new refresh token when the authority
/// rotated it.
pub(crate) async fn refresh(
    http: &reqwest::Client,
    url: &str,
    client: &SignInClient,
    refresh_token: &Secret,
    scope: &str,
) -> Result<(Secret, Option<Duration>, Option<Secret>), TokenError> {
    let oauth = client_of(client).set_token_uri(token_url(url)?);
    let token = RefreshToken::new(refresh_token.expose().to_owned());
    let answer = oauth
        .exchange_refresh_token(&token)
        .add_scopes(scope.split_whitespace().map(|s| Scope::new(s.to_owned())))
        .request_async(http)
        .await
        .map_err(|err| token_error(url, err))?;
    let rotated = answer
        .refresh_token()
        .map(|t| t.secret())
        .filter(|t| t.as_str() != refresh_token.expose())
        .map(|t| Secret::new(t.clone()));
    Ok((
        Secret::new(answer.access_token().secret().clone()),
        answer.expires_in(),
        rotated,
    ))
}

/// What a sign-in's answer gives besides the access token: the refresh token and the ID
/// token, still to be checked (`id_token.rs`).
pub(crate) fn parts(answer: &Answer) -> (Option<Secret>, Option<String>) {
    let refresh = answer
        .refresh_token()
        .map(|t| Secret::new(t.secret().clone()));
    (refresh, answer.extra_fields().id_token.clone())
}

/// What mailferry reads of a checked ID token's claims; `None` when they are not an object
/// of the expected shape.
pub(crate) fn identity_of(claims: &serde_json::Value) -> Option<SignedInIdentity> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Audience {
        One(String),
        Many(Vec<String>),
    }
    #[derive(Deserialize)]
    struct Claims {
        email: Option<String>,
        preferred_username: Option<String>,
        nonce: Option<String>,
        aud: Option<Audience>,
    }
    let claims = Claims::deserialize(claims).ok()?;
    Some(SignedInIdentity {
        email: claims.email,
        preferred_username: claims.preferred_username,
        nonce: claims.nonce,
        audience: match claims.aud {
            Some(Audience::One(a)) => vec![a],
            Some(Audience::Many(a)) => a,
            None => vec![],
        },
    })
}

/// A failed token request as a [`TokenError`], with the authority's code and words only.
pub(crate) fn token_error(
    url: &str,
    err: RequestTokenError<HttpClientError<reqwest::Error>, BasicErrorResponse>,
) -> TokenError {
    match err {
        RequestTokenError::ServerResponse(e) => {
            let code = match e.error() {
                BasicErrorResponseType::Extension(other) => other.clone(),
                known => known.to_string(),
            };
            classify(&code, e.error_description().map(String::as_str))
        }
        RequestTokenError::Request(e) => {
            TokenError::Unavailable(format!("{} ({})", host_of(url), short(&e.to_string())))
        }
        RequestTokenError::Parse(..) | RequestTokenError::Other(_) => {
            TokenError::Unavailable(format!(
                "{} answered with something that is not a token",
                host_of(url)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> AuthorizeRequest {
        AuthorizeRequest {
            authorize_url: "https://login.example/authorize".into(),
            client: SignInClient {
                client_id: "app-1".into(),
                client_secret: Some(Secret::new("never in a URL")),
                redirect_uri: "https://mailferry.example/api/sign-in/callback".into(),
            },
            scope: "openid email offline_access".into(),
            state: "sealed-state".into(),
            verifier: Secret::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            nonce: "n-0S6".into(),
            login_hint: "ann@new.example".into(),
            extra: vec![("access_type".into(), "offline".into())],
        }
    }

    #[test]
    fn the_authorization_url_carries_the_s256_challenge_and_never_the_verifier_or_secret() {
        let url = reqwest::Url::parse(&authorize_url(&request()).unwrap()).unwrap();
        let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
        // RFC 7636 appendix B: this verifier's challenge.
        assert_eq!(
            q["code_challenge"],
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["state"], "sealed-state");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["scope"], "openid email offline_access");
        assert_eq!(q["login_hint"], "ann@new.example");
        assert_eq!(q["nonce"], "n-0S6");
        assert_eq!(q["access_type"], "offline");
        assert_eq!(
            q["redirect_uri"],
            "https://mailferry.example/api/sign-in/callback"
        );
        let text = url.to_string();
        assert!(!text.contains("dBjftJeZ4CVP"));
        assert!(!text.contains("never"));
    }

    #[test]
    fn id_token_claims_are_read_with_one_or_many_audiences() {
        let one = identity_of(&serde_json::json!(
            {"email":"Ann@new.example","nonce":"n","aud":"app-1"}
        ))
        .unwrap();
        assert_eq!(one.address(), Some("Ann@new.example"));
        assert_eq!(one.audience, ["app-1"]);
        let many = identity_of(&serde_json::json!(
            {"preferred_username":"ann@x.example","aud":["a","b"]}
        ))
        .unwrap();
        assert_eq!(many.address(), Some("ann@x.example"));
        assert_eq!(many.audience.len(), 2);
        assert!(identity_of(&serde_json::json!("not claims")).is_none());
    }
}
