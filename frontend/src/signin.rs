//! Signing admins in through the identity provider (AWS mode): OAuth 2.0 authorization code
//! with PKCE (RFC 7636) against the Cognito user pool's hosted UI, as a public client (no client
//! secret exists in the browser). The server tells where to sign in (`SessionView::sign_in`);
//! the console sends the access token as `Authorization: Bearer` and API Gateway's JWT
//! authorizer checks it before the request reaches the function.
//!
//! The tokens live in `sessionStorage`: one tab, gone when the tab closes, never in a cookie the
//! browser would send on its own. An access token that ended is renewed with the refresh token. The page's Content-Security-Policy allows no inline script, so
//! injected markup cannot read it.
//!
//! The URL building, the PKCE challenge and the token answer are plain Rust, tested on the host;
//! only the `browser` part touches storage, `crypto.getRandomValues` and `fetch`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use contract::HostedSignIn;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::api::query_value;

/// The scopes the console asks for: who signed in, nothing else.
pub const SCOPES: &str = "openid email profile";

/// The S256 code challenge of a verifier (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A verifier or `state` value from 32 random bytes: 43 URL-safe characters (RFC 7636 §4.1).
pub fn random_value(bytes: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Where the browser goes to sign in.
pub fn authorize_url(
    sign_in: &HostedSignIn,
    redirect_uri: &str,
    state: &str,
    challenge: &str,
) -> String {
    format!(
        "{}?response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&code_challenge={}&code_challenge_method=S256",
        sign_in.authorize_url,
        query_value(&sign_in.client_id),
        query_value(redirect_uri),
        query_value(SCOPES),
        query_value(state),
        query_value(challenge),
    )
}

/// The form body that trades the returned code for tokens.
pub fn token_request_body(
    sign_in: &HostedSignIn,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> String {
    format!(
        "grant_type=authorization_code&client_id={}&code={}&redirect_uri={}&code_verifier={}",
        query_value(&sign_in.client_id),
        query_value(code),
        query_value(redirect_uri),
        query_value(verifier),
    )
}

/// The form body that trades the refresh token for a new access token when the old one ends,
/// so an admin signs in once per refresh-token lifetime (12 hours in the template), not hourly.
pub fn refresh_request_body(sign_in: &HostedSignIn, refresh_token: &str) -> String {
    format!(
        "grant_type=refresh_token&client_id={}&refresh_token={}",
        query_value(&sign_in.client_id),
        query_value(refresh_token),
    )
}

/// Where the browser goes to end the identity provider's session too.
pub fn logout_url(sign_in: &HostedSignIn, logout_uri: &str) -> String {
    format!(
        "{}?client_id={}&logout_uri={}",
        sign_in.logout_url,
        query_value(&sign_in.client_id),
        query_value(logout_uri)
    )
}

/// What the identity provider put in the query string of the redirect back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callback {
    /// Not a sign-in redirect.
    None,
    /// A code and the `state` it must match.
    Code { code: String, state: String },
    /// The provider refused (`error`, `error_description`).
    Error(String),
}

/// Reads `?code=…&state=…` or `?error=…` from a location's search string.
pub fn parse_callback(search: &str) -> Callback {
    let mut code = None;
    let mut state = None;
    let mut error = None;
    let mut description = None;
    for pair in search.trim_start_matches('?').split('&') {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        let value = percent_decode(value);
        match key {
            "code" => code = Some(value),
            "state" => state = Some(value),
            "error" => error = Some(value),
            "error_description" => description = Some(value),
            _ => {}
        }
    }
    match (error, code, state) {
        (Some(error), _, _) => Callback::Error(description.unwrap_or(error)),
        (None, Some(code), Some(state)) if !code.is_empty() => Callback::Code { code, state },
        _ => Callback::None,
    }
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The token endpoint's answer (the fields the console uses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    /// Seconds the access token is valid.
    pub expires_in: u64,
    /// Sent with the first tokens, not when refreshing.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// Reads the token endpoint's answer; an error answer (`{"error": "invalid_grant"}`) gives its
/// code as the message.
pub fn parse_tokens(status: u16, text: &str) -> Result<Tokens, String> {
    if (200..300).contains(&status) {
        return serde_json::from_str::<Tokens>(text)
            .map_err(|_| "the identity provider's answer has no access token".to_owned());
    }
    #[derive(Deserialize)]
    struct ErrorAnswer {
        error: String,
    }
    Err(match serde_json::from_str::<ErrorAnswer>(text) {
        Ok(e) => format!("the identity provider refused the sign-in ({})", e.error),
        Err(_) => format!("the identity provider answered with HTTP status {status}"),
    })
}

/// The browser side: storage, randomness, redirects and the token request.
#[cfg(target_arch = "wasm32")]
pub mod browser {
    use super::*;

    const TOKEN: &str = "mf_access_token";
    const EXPIRES: &str = "mf_access_token_expires";
    const VERIFIER: &str = "mf_pkce_verifier";
    const STATE: &str = "mf_pkce_state";
    const SIGN_IN: &str = "mf_sign_in";
    const REFRESH: &str = "mf_refresh_token";

    fn storage() -> Option<web_sys::Storage> {
        web_sys::window()?.session_storage().ok()?
    }

    fn get(key: &str) -> Option<String> {
        storage()?.get_item(key).ok()?
    }

    fn set(key: &str, value: &str) {
        if let Some(s) = storage() {
            let _ = s.set_item(key, value);
        }
    }

    fn remove(key: &str) {
        if let Some(s) = storage() {
            let _ = s.remove_item(key);
        }
    }

    fn now_secs() -> u64 {
        (js_sys::Date::now() / 1000.0) as u64
    }

    /// Where the provider sends the browser back: the console's sign-in page.
    pub fn redirect_uri() -> String {
        let origin = web_sys::window()
            .and_then(|w| w.location().origin().ok())
            .unwrap_or_default();
        format!("{origin}/")
    }

    fn random() -> Option<String> {
        let mut bytes = [0u8; 32];
        web_sys::window()?
            .crypto()
            .ok()?
            .get_random_values_with_u8_array(&mut bytes)
            .ok()?;
        Some(random_value(&bytes))
    }

    /// The access token to send, while it is valid (with a minute to spare).
    fn valid_token() -> Option<String> {
        let expires: u64 = get(EXPIRES)?.parse().ok()?;
        if now_secs() + 60 >= expires {
            remove(TOKEN);
            return None;
        }
        get(TOKEN)
    }

    /// The access token to send: the stored one while valid, else a fresh one from the refresh
    /// token (when the admin signed in through the identity provider in this tab).
    pub async fn bearer() -> Option<String> {
        if let Some(token) = valid_token() {
            return Some(token);
        }
        let refresh = get(REFRESH)?;
        let sign_in = serde_json::from_str::<HostedSignIn>(&get(SIGN_IN)?).ok()?;
        match post_token(&sign_in, refresh_request_body(&sign_in, &refresh)).await {
            Ok(tokens) => {
                keep(&tokens);
                Some(tokens.access_token)
            }
            Err(_) => {
                // Revoked or expired: the next page sends the admin to sign in again.
                remove(REFRESH);
                None
            }
        }
    }

    fn keep(tokens: &Tokens) {
        set(TOKEN, &tokens.access_token);
        set(EXPIRES, &(now_secs() + tokens.expires_in).to_string());
        if let Some(refresh) = &tokens.refresh_token {
            set(REFRESH, refresh);
        }
    }

    async fn post_token(sign_in: &HostedSignIn, body: String) -> Result<Tokens, String> {
        let response = gloo_net::http::Request::post(&sign_in.token_url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .map_err(|e| e.to_string())?
            .send()
            .await
            .map_err(|_| "Could not reach the identity provider. Try again".to_owned())?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        parse_tokens(status, &text)
    }

    /// Goes to the hosted sign-in page.
    pub fn begin(sign_in: &HostedSignIn) -> Result<(), String> {
        let (verifier, state) = random()
            .zip(random())
            .ok_or("this browser offers no secure random numbers")?;
        set(VERIFIER, &verifier);
        set(STATE, &state);
        if let Ok(json) = serde_json::to_string(sign_in) {
            set(SIGN_IN, &json);
        }
        let url = authorize_url(sign_in, &redirect_uri(), &state, &pkce_challenge(&verifier));
        web_sys::window()
            .ok_or("no window")?
            .location()
            .assign(&url)
            .map_err(|_| "could not open the sign-in page".to_owned())
    }

    /// On the redirect back: checks `state`, trades the code for tokens and keeps the access
    /// token. `Ok(false)` when this page load is not a sign-in redirect.
    pub async fn complete(sign_in: &HostedSignIn) -> Result<bool, String> {
        let window = web_sys::window().ok_or("no window")?;
        let search = window.location().search().unwrap_or_default();
        let callback = parse_callback(&search);
        if callback != Callback::None {
            // The code is single-use: take it out of the address bar and history.
            if let Ok(history) = window.history() {
                let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some("/"));
            }
        }
        let (code, state) = match callback {
            Callback::None => return Ok(false),
            Callback::Error(message) => return Err(format!("Sign-in failed: {message}")),
            Callback::Code { code, state } => (code, state),
        };
        let expected = get(STATE);
        let verifier = get(VERIFIER);
        remove(STATE);
        remove(VERIFIER);
        let (Some(expected), Some(verifier)) = (expected, verifier) else {
            return Err("Sign-in was started in another tab or has expired. Sign in again".into());
        };
        if expected != state {
            return Err("Sign-in answer does not belong to this sign-in. Sign in again".into());
        }
        let body = token_request_body(sign_in, &code, &redirect_uri(), &verifier);
        let tokens = post_token(sign_in, body).await?;
        keep(&tokens);
        Ok(true)
    }

    /// Forgets the token and, when the provider is known, ends its session too.
    pub fn sign_out() {
        remove(TOKEN);
        remove(EXPIRES);
        remove(REFRESH);
        let sign_in = get(SIGN_IN).and_then(|j| serde_json::from_str::<HostedSignIn>(&j).ok());
        if let (Some(sign_in), Some(window)) = (sign_in, web_sys::window()) {
            let _ = window
                .location()
                .assign(&logout_url(&sign_in, &redirect_uri()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign_in() -> HostedSignIn {
        HostedSignIn {
            authorize_url: "https://mf.auth.eu-west-1.amazoncognito.com/oauth2/authorize".into(),
            token_url: "https://mf.auth.eu-west-1.amazoncognito.com/oauth2/token".into(),
            logout_url: "https://mf.auth.eu-west-1.amazoncognito.com/logout".into(),
            client_id: "4k2n1o0abc".into(),
        }
    }

    #[test]
    fn challenge_matches_rfc_7636_appendix_b() {
        let octets = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212,
            37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        let verifier = random_value(&octets);
        assert_eq!(verifier, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            pkce_challenge(&verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn authorize_url_carries_client_redirect_state_and_challenge_encoded() {
        let url = authorize_url(&sign_in(), "https://migrate.example.com/", "st+ate", "chal");
        assert_eq!(
            url,
            "https://mf.auth.eu-west-1.amazoncognito.com/oauth2/authorize?response_type=code\
             &client_id=4k2n1o0abc&redirect_uri=https%3A%2F%2Fmigrate.example.com%2F\
             &scope=openid%20email%20profile&state=st%2Bate&code_challenge=chal\
             &code_challenge_method=S256"
        );
    }

    #[test]
    fn token_request_sends_the_verifier_not_a_secret() {
        let body = token_request_body(&sign_in(), "c0de", "https://m.example/", "v3r");
        assert_eq!(
            body,
            "grant_type=authorization_code&client_id=4k2n1o0abc&code=c0de\
             &redirect_uri=https%3A%2F%2Fm.example%2F&code_verifier=v3r"
        );
        assert!(!body.contains("secret"));
        assert_eq!(
            refresh_request_body(&sign_in(), "r+t/="),
            "grant_type=refresh_token&client_id=4k2n1o0abc&refresh_token=r%2Bt%2F%3D"
        );
        assert_eq!(
            logout_url(&sign_in(), "https://m.example/"),
            "https://mf.auth.eu-west-1.amazoncognito.com/logout?client_id=4k2n1o0abc\
             &logout_uri=https%3A%2F%2Fm.example%2F"
        );
    }

    #[test]
    fn reads_the_redirect_back() {
        assert_eq!(parse_callback(""), Callback::None);
        assert_eq!(parse_callback("?tab=users"), Callback::None);
        assert_eq!(
            parse_callback("?code=ab%2Dcd&state=x%2By"),
            Callback::Code {
                code: "ab-cd".into(),
                state: "x+y".into()
            }
        );
        assert_eq!(
            parse_callback("?error=access_denied&error_description=User+is+disabled"),
            Callback::Error("User is disabled".into())
        );
        // A code without its state is not accepted as a sign-in.
        assert_eq!(parse_callback("?code=abc"), Callback::None);
        // A stray percent sign does not panic.
        assert_eq!(
            parse_callback("?code=a%&state=%zz"),
            Callback::Code {
                code: "a%".into(),
                state: "%zz".into()
            }
        );
    }

    #[test]
    fn token_answers_and_refusals() {
        let ok = parse_tokens(
            200,
            r#"{"access_token":"eyJ.a.b","id_token":"eyJ.c.d","expires_in":3600,"token_type":"Bearer"}"#,
        )
        .unwrap();
        assert_eq!(ok.access_token, "eyJ.a.b");
        assert_eq!(ok.expires_in, 3600);
        assert_eq!(ok.refresh_token, None, "a refresh answer carries none");
        let first = parse_tokens(
            200,
            r#"{"access_token":"a","refresh_token":"r","expires_in":3600}"#,
        )
        .unwrap();
        assert_eq!(first.refresh_token.as_deref(), Some("r"));
        assert_eq!(
            parse_tokens(400, r#"{"error":"invalid_grant"}"#).unwrap_err(),
            "the identity provider refused the sign-in (invalid_grant)"
        );
        assert!(parse_tokens(502, "<html>").unwrap_err().contains("502"));
        assert!(parse_tokens(200, "{}").is_err());
    }
}
