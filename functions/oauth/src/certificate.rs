//! An app registration that proves itself with a certificate instead of a client secret
//! (Microsoft identity platform: certificate credentials, RFC 7523 client authentication).
//! The admin pastes the certificate and its private key as PEM where a secret would go; each
//! token request carries a short-lived assertion signed with the key, naming the certificate by
//! its thumbprints (`x5t`, `x5t#S256`).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use domain::oauth::TokenError;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The `client_assertion_type` of a JWT client assertion.
pub(crate) const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is good for.
const LIFETIME_SECS: i64 = 600;

/// A certificate and the key that signs with it.
pub(crate) struct AppCertificate {
    der: Vec<u8>,
    key: EncodingKey,
    algorithm: Algorithm,
}

/// The bytes of a PEM block (`label` as in `-----BEGIN CERTIFICATE-----`), whitespace ignored
/// (a PEM pasted into a one-line field loses its line breaks).
fn pem_block(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let body: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(body).ok()
}

/// The certificate in a pasted credential; `None` when it is a client secret. A certificate
/// without a usable private key is an error that names what is missing, never the key.
pub(crate) fn parse(credential: &str) -> Option<Result<AppCertificate, TokenError>> {
    let der = pem_block(credential, "CERTIFICATE")?;
    let refused = |what: &str| Some(Err(TokenError::Refused(what.to_owned())));
    let Some(key_der) = pem_block(credential, "PRIVATE KEY") else {
        return refused("the certificate came without its private key (PEM, BEGIN PRIVATE KEY)");
    };
    // PKCS#8 of either family: RSA signs RS256 (what Microsoft documents), P-256 ES256.
    // jsonwebtoken tells them apart by the key's algorithm identifier.
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(&key_der)
    );
    let (key, algorithm) = match EncodingKey::from_rsa_pem(pem.as_bytes()) {
        Ok(key) => (key, Algorithm::RS256),
        Err(_) => match EncodingKey::from_ec_pem(pem.as_bytes()) {
            Ok(key) => (key, Algorithm::ES256),
            Err(_) => {
                return refused("the private key is neither an RSA nor a P-256 key (PKCS#8)");
            }
        },
    };
    Some(Ok(AppCertificate {
        der,
        key,
        algorithm,
    }))
}

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    iat: i64,
    nbf: i64,
    exp: i64,
}

/// The signed assertion that authenticates `client_id` at `token_url`.
pub(crate) fn client_assertion(
    cert: &AppCertificate,
    client_id: &str,
    token_url: &str,
    now: OffsetDateTime,
) -> Result<String, TokenError> {
    let mut header = Header::new(cert.algorithm);
    header.typ = Some("JWT".into());
    header.x5t = Some(URL_SAFE_NO_PAD.encode(Sha1::digest(&cert.der)));
    header.x5t_s256 = Some(URL_SAFE_NO_PAD.encode(Sha256::digest(&cert.der)));
    let t = now.unix_timestamp();
    let claims = Claims {
        aud: token_url,
        iss: client_id,
        sub: client_id,
        jti: uuid::Uuid::new_v4().to_string(),
        iat: t,
        nbf: t,
        exp: t + LIFETIME_SECS,
    };
    jsonwebtoken::encode(&header, &claims, &cert.key)
        .map_err(|_| TokenError::Refused("the certificate's key could not sign".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_no_certificate_and_a_certificate_needs_its_key() {
        assert!(parse("s3cret~value").is_none());
        let cert_only = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        match parse(cert_only) {
            Some(Err(TokenError::Refused(m))) => assert!(m.contains("without its private key")),
            _ => panic!("a certificate alone is refused"),
        }
        let garbage =
            format!("{cert_only}\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----");
        match parse(&garbage) {
            Some(Err(TokenError::Refused(m))) => {
                assert!(m.contains("neither"));
                assert!(!m.contains("AAAA"), "the key is never shown");
            }
            _ => panic!("a broken key is refused"),
        }
    }

    #[test]
    fn pem_blocks_survive_a_one_line_paste() {
        let text = "-----BEGIN CERTIFICATE----- TWFp bA== -----END CERTIFICATE-----";
        assert_eq!(pem_block(text, "CERTIFICATE").unwrap(), b"Mail");
        assert!(pem_block(text, "PRIVATE KEY").is_none());
    }
}
