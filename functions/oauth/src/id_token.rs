//! Checking a sign-in's ID token before mailferry believes who signed in (OpenID Connect Core
//! 3.1.3.7): its signature with the authority's published keys (JWKS), its audience
//! (mailferry's client) and its end. `jsonwebtoken` does the cryptography; the keys are
//! fetched from the profile's (or the operator's) JWKS URL, kept an hour, and fetched again
//! when a token names a key the kept set lacks (the authority rolled its keys).
//!
//! Only asymmetric algorithms are accepted: a token claiming HS256 could be "signed" with the
//! public key itself.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use domain::oauth::{SignedInIdentity, TokenError};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use time::OffsetDateTime;

use crate::host_of;

/// How long a fetched key set is used before it is fetched again.
const KEYS_KEPT_FOR: Duration = Duration::from_secs(3600);
/// Clock difference tolerated between the authority and this machine.
const LEEWAY_SECONDS: u64 = 60;

/// Key sets by JWKS URL, with when each was fetched.
#[derive(Default)]
pub(crate) struct KeySets(Mutex<HashMap<String, (JwkSet, OffsetDateTime)>>);

/// Why a token was not accepted against one key set.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// The token names a key the set does not hold: fetch the set again, once.
    UnknownKey,
    /// Anything else: the token is not believed.
    Invalid(String),
}

impl KeySets {
    /// The claims of `jwt` once its signature, audience and end check out.
    pub(crate) async fn verify(
        &self,
        http: &reqwest::Client,
        jwks_url: &str,
        jwt: &str,
        client_id: &str,
    ) -> Result<SignedInIdentity, TokenError> {
        let now = OffsetDateTime::now_utc();
        let kept = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(jwks_url)
            .filter(|(_, fetched)| now - *fetched < KEYS_KEPT_FOR)
            .map(|(set, _)| set.clone());
        if let Some(set) = &kept {
            match verify_with(jwt, set, client_id) {
                Err(Rejection::UnknownKey) => {}
                other => return other.map_err(refused),
            }
        }
        let set = fetch(http, jwks_url).await?;
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(jwks_url.to_owned(), (set.clone(), now));
        verify_with(jwt, &set, client_id).map_err(refused)
    }
}

fn refused(rejection: Rejection) -> TokenError {
    TokenError::Refused(match rejection {
        Rejection::UnknownKey => {
            "the ID token was signed with a key the authority does not publish".into()
        }
        Rejection::Invalid(why) => format!("the ID token was not accepted: {why}"),
    })
}

async fn fetch(http: &reqwest::Client, url: &str) -> Result<JwkSet, TokenError> {
    let unavailable =
        |why: String| TokenError::Unavailable(format!("{}: its signing keys: {why}", host_of(url)));
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| unavailable(e.without_url().to_string()))?;
    if !response.status().is_success() {
        return Err(unavailable(format!("HTTP {}", response.status())));
    }
    response
        .json::<JwkSet>()
        .await
        .map_err(|_| unavailable("not a key set (JWKS)".into()))
}

/// Checks `jwt` against one key set: its header's key (by `kid`, or the set's only key), an
/// asymmetric algorithm, the signature, `aud` naming `client_id`, and `exp` (with leeway).
pub(crate) fn verify_with(
    jwt: &str,
    set: &JwkSet,
    client_id: &str,
) -> Result<SignedInIdentity, Rejection> {
    let invalid = |why: &str| Rejection::Invalid(why.to_owned());
    let header = jsonwebtoken::decode_header(jwt).map_err(|_| invalid("not a signed JWT"))?;
    if matches!(
        header.alg,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    ) {
        return Err(invalid(
            "it is signed with a shared secret, not the authority's key",
        ));
    }
    let jwk = match header.kid.as_deref() {
        Some(kid) => set.find(kid),
        None if set.keys.len() == 1 => set.keys.first(),
        None => None,
    }
    .ok_or(Rejection::UnknownKey)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| invalid("the authority's key is unusable"))?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[client_id]);
    validation.leeway = LEEWAY_SECONDS;
    validation.set_required_spec_claims(&["exp", "aud"]);
    let data = jsonwebtoken::decode::<serde_json::Value>(jwt, &key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        invalid(match e.kind() {
            ErrorKind::InvalidSignature => "its signature does not match the authority's key",
            ErrorKind::ExpiredSignature => "it has expired",
            ErrorKind::InvalidAudience => "it was issued to another application",
            ErrorKind::InvalidAlgorithm => "its algorithm does not fit the authority's key",
            ErrorKind::MissingRequiredClaim(_) => "it lacks its audience or end",
            _ => "it could not be read",
        })
    })?;
    crate::sign_in::identity_of(&data.claims).ok_or_else(|| invalid("its claims could not be read"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    /// Two P-256 keys made for these tests; the set publishes the first as `k1`.
    const KEY_1: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgFPl4oSHJTAtPHxXx
389FjmYR1bjiaKwl3RkL+grb7l2hRANCAARynNNvSXsrODmqnhPMKKwFYyrnOb/x
ooNMd/Sq+dXnlSWtLKqnbU2A8YCpXxLY96sS+qGCtWMFlkVd5FzOvS73
-----END PRIVATE KEY-----
";
    const KEY_2: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgYjFHiGyFLLvU/eCv
yBbel1qxmJZZJ5I5c3Ozo7xmQEWhRANCAATQSY9LMVJ9jOEUPrZvf99Ydzn3hZJJ
N8MdC5ZhwwfXVuIbWaGCTuQ42CZXjJiD+0LS2+370Zxf/pUFV8YRHw5f
-----END PRIVATE KEY-----
";

    fn set() -> JwkSet {
        serde_json::from_value(json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
            "x": "cpzTb0l7Kzg5qp4TzCisBWMq5zm_8aKDTHf0qvnV55U",
            "y": "Ja0sqqdtTYDxgKlfEtj3qxL6oYK1YwWWRV3kXM69Lvc",
        }]}))
        .unwrap()
    }

    fn token(key: &str, kid: Option<&str>, claims: serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = kid.map(str::to_owned);
        let key = EncodingKey::from_ec_pem(key.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }

    fn claims(aud: &str, exp_from_now: i64) -> serde_json::Value {
        let exp = OffsetDateTime::now_utc().unix_timestamp() + exp_from_now;
        json!({"email": "ann@new.example", "nonce": "n1", "aud": aud, "exp": exp})
    }

    #[test]
    fn a_token_signed_with_the_published_key_for_this_client_is_believed() {
        let identity =
            verify_with(&token(KEY_1, Some("k1"), claims("app", 600)), &set(), "app").unwrap();
        assert_eq!(identity.address(), Some("ann@new.example"));
        assert_eq!(identity.nonce.as_deref(), Some("n1"));
        // Without a kid, the set's only key.
        assert!(verify_with(&token(KEY_1, None, claims("app", 600)), &set(), "app").is_ok());
    }

    #[test]
    fn forged_foreign_expired_and_unknown_key_tokens_are_not() {
        let rejected = |jwt: String| verify_with(&jwt, &set(), "app").unwrap_err();
        assert_eq!(
            rejected(token(KEY_2, Some("k1"), claims("app", 600))),
            Rejection::Invalid("its signature does not match the authority's key".into())
        );
        assert_eq!(
            rejected(token(KEY_1, Some("k1"), claims("another app", 600))),
            Rejection::Invalid("it was issued to another application".into())
        );
        assert_eq!(
            rejected(token(KEY_1, Some("k1"), claims("app", -3600))),
            Rejection::Invalid("it has expired".into())
        );
        assert_eq!(
            rejected(token(KEY_1, Some("k2"), claims("app", 600))),
            Rejection::UnknownKey
        );
        let no_aud = json!({"email": "a@b.example", "exp": OffsetDateTime::now_utc().unix_timestamp() + 600});
        assert_eq!(
            rejected(token(KEY_1, Some("k1"), no_aud)),
            Rejection::Invalid("it lacks its audience or end".into())
        );
        // A token "signed" with a shared secret is never checked against the public key.
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims("app", 600),
            &EncodingKey::from_secret(b"cpzTb0l7Kzg5qp4TzCisBWMq5zm_8aKDTHf0qvnV55U"),
        )
        .unwrap();
        assert!(matches!(rejected(hs), Rejection::Invalid(_)));
        assert_eq!(
            rejected("not.a.jwt".into()),
            Rejection::Invalid("not a signed JWT".into())
        );
    }
}
