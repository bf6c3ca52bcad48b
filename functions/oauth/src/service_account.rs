//! Google's service-account grant (RFC 7523 section 2.1, as Google's "OAuth 2.0 for server to
//! server applications" uses it): an assertion signed with the service account's key, naming
//! the mailbox to act for as `sub` (domain-wide delegation), exchanged for an access token.

use std::time::Duration;

use domain::Secret;
use domain::oauth::TokenError;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{TokenAnswer, classify, host_of, short};

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google accepts assertions that live at most an hour.
const ASSERTION_LIFETIME: i64 = 3600;

/// The fields of the key file the grant needs.
#[derive(Deserialize)]
struct KeyFile {
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

/// The signed assertion for `subject`.
pub(crate) fn assertion(
    key_json: &Secret,
    token_url: &str,
    subject: &str,
    scope: &str,
    now: OffsetDateTime,
) -> Result<String, TokenError> {
    let key: KeyFile = serde_json::from_str(key_json.expose())
        .map_err(|_| TokenError::Refused("the service account's key file cannot be read".into()))?;
    let signing = EncodingKey::from_rsa_pem(key.private_key.as_bytes()).map_err(|_| {
        TokenError::Refused("the service account's private key is not an RSA key in PEM".into())
    })?;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = key.private_key_id;
    let iat = now.unix_timestamp();
    let claims = Claims {
        iss: &key.client_email,
        sub: subject,
        scope,
        aud: token_url,
        iat,
        exp: iat + ASSERTION_LIFETIME,
    };
    jsonwebtoken::encode(&header, &claims, &signing)
        .map_err(|_| TokenError::Refused("the service account's key cannot sign".into()))
}

/// Exchanges a fresh assertion for an access token.
pub(crate) async fn token(
    http: &reqwest::Client,
    token_url: &str,
    key_json: &Secret,
    subject: &str,
    scope: &str,
    now: OffsetDateTime,
) -> Result<(Secret, Option<Duration>), TokenError> {
    let signed = assertion(key_json, token_url, subject, scope, now)?;
    let response = http
        .post(token_url)
        .form(&[("grant_type", GRANT_TYPE), ("assertion", signed.as_str())])
        .send()
        .await
        .map_err(|e| {
            TokenError::Unavailable(format!(
                "{} ({})",
                host_of(token_url),
                short(&e.to_string())
            ))
        })?;
    let status = response.status();
    let answer: TokenAnswer = response.json().await.map_err(|_| {
        TokenError::Unavailable(format!(
            "{} answered {status} with something that is not a token",
            host_of(token_url)
        ))
    })?;
    match (answer.access_token, answer.error) {
        (Some(token), None) if status.is_success() => Ok((
            Secret::new(token),
            answer.expires_in.map(Duration::from_secs),
        )),
        (_, Some(code)) => Err(classify(&code, answer.error_description.as_deref())),
        _ if status.is_server_error() => Err(TokenError::Unavailable(format!(
            "{} answered {status}",
            host_of(token_url)
        ))),
        _ => Err(TokenError::Refused(format!(
            "{} answered {status} without a token",
            host_of(token_url)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_that_is_not_a_key_is_refused_without_showing_it() {
        let bad = Secret::new(
            r#"{"client_email":"a@b.example","private_key":"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"}"#,
        );
        let e = assertion(
            &bad,
            "https://t.example/token",
            "u@x.example",
            "s",
            OffsetDateTime::UNIX_EPOCH,
        )
        .err()
        .unwrap();
        assert!(
            matches!(&e, TokenError::Refused(m) if !m.contains("nope")),
            "{e}"
        );
        let e = assertion(
            &Secret::new("{"),
            "https://t.example/token",
            "u",
            "s",
            OffsetDateTime::UNIX_EPOCH,
        )
        .err()
        .unwrap();
        assert!(matches!(e, TokenError::Refused(_)));
    }
}
