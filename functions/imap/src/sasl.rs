//! SASL initial responses (raw bytes; imap-codec adds the base64 on the wire).

/// PLAIN (RFC 4616): `authzid NUL authcid NUL password`, with an empty authorization
/// identity so the server derives it from the login (Dovecot master logins like
/// `user*admin` work unchanged).
pub fn plain(login: &str, password: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(login.len() + password.len() + 2);
    out.push(0);
    out.extend_from_slice(login.as_bytes());
    out.push(0);
    out.extend_from_slice(password.as_bytes());
    out
}

/// XOAUTH2 (Google / Microsoft): `user=USER ^A auth=Bearer TOKEN ^A ^A`.
pub fn xoauth2(user: &str, token: &str) -> Vec<u8> {
    format!("user={user}\x01auth=Bearer {token}\x01\x01").into_bytes()
}

/// OAUTHBEARER (RFC 7628): a GS2 header naming the user, then host, port and the bearer
/// token as `^A`-separated key-value pairs.
pub fn oauthbearer(user: &str, token: &str, host: &str, port: u16) -> Vec<u8> {
    format!(
        "n,a={},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01",
        saslname(user)
    )
    .into_bytes()
}

/// The answer to an XOAUTH2 error challenge: an empty response, after which the server
/// sends the tagged NO.
pub(crate) const XOAUTH2_ERROR_ACK: &[u8] = b"";

/// The answer to an OAUTHBEARER error challenge (RFC 7628 section 3.2.3): a single `^A`.
pub(crate) const OAUTHBEARER_ERROR_ACK: &[u8] = b"\x01";

/// RFC 5801 saslname: `,` and `=` are escaped as `=2C` and `=3D`.
fn saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// Whether a value can go into a SASL message without changing its structure.
pub(crate) fn valid_field(value: &str) -> bool {
    !value.contains(['\0', '\x01', '\r', '\n'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_has_an_empty_authzid() {
        assert_eq!(
            plain("user@example.com", "pä\"ss"),
            b"\0user@example.com\0p\xc3\xa4\"ss".to_vec()
        );
    }

    #[test]
    fn xoauth2_matches_googles_documented_example() {
        // https://developers.google.com/gmail/imap/xoauth2-protocol, before base64.
        let raw = xoauth2(
            "someuser@example.com",
            "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
        );
        assert_eq!(
            raw,
            b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01".to_vec()
        );
        use base64::Engine as _;
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(&raw),
            "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
        );
    }

    #[test]
    fn oauthbearer_matches_rfc_7628_and_escapes_the_user() {
        // RFC 7628 section 4.1 (with the authzid the example leaves out).
        assert_eq!(
            oauthbearer("user@example.com", "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==", "server.example.com", 143),
            b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01".to_vec()
        );
        assert!(oauthbearer("a,b=c", "t", "h", 1).starts_with(b"n,a=a=2Cb=3Dc,"));
    }

    #[test]
    fn control_characters_are_not_valid_fields() {
        assert!(valid_field("pä\"ss\\word ✓"));
        assert!(!valid_field("a\x01b"));
        assert!(!valid_field("a\0b"));
    }
}
