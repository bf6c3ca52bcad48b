//! Shared helpers of the mailbox-operation tests: sessions on testbed Dovecot instances and
//! test messages. Checks go through testbed's own raw IMAP or doveadm, never only through
//! the client under test.

#![allow(dead_code)]

use std::time::Duration;

use contract::Security;
use domain::Endpoint;
use domain::secret::Secret;
use imap::{Session, TlsConfig};
use sha2::{Digest, Sha256};
use testbed::{Dovecot, DovecotOptions};

pub const TIMEOUT: Duration = Duration::from_secs(30);
pub const USER: &str = "alice@example.com";
pub const PASSWORD: &str = "secret";

pub fn start(options: DovecotOptions) -> Dovecot {
    Dovecot::start(options.user(USER, PASSWORD)).expect("dovecot starts")
}

pub async fn session(dovecot: &Dovecot) -> Session {
    let endpoint = Endpoint {
        host: dovecot.host().into(),
        port: dovecot.port(),
        security: Security::Plaintext,
    };
    let mut session = Session::connect(&endpoint, &TlsConfig::native_roots(), TIMEOUT)
        .await
        .expect("connects");
    session
        .login(USER, &Secret::new(PASSWORD))
        .await
        .expect("logs in");
    session
}

/// A small RFC 5322 message with CRLF line ends.
pub fn message(subject: &str, message_id: Option<&str>, body: &str) -> Vec<u8> {
    let mut out = String::new();
    out.push_str("From: Sender <sender@example.com>\r\n");
    out.push_str("To: Alice <alice@example.com>\r\n");
    out.push_str(&format!("Subject: {subject}\r\n"));
    out.push_str("Date: Fri, 05 Jan 2024 13:05:09 +0100\r\n");
    if let Some(id) = message_id {
        out.push_str(&format!("Message-ID: {id}\r\n"));
    }
    out.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
    out.push_str(body);
    out.push_str("\r\n");
    out.into_bytes()
}

/// A message of about `size` bytes: base64-looking lines of 76 characters.
pub fn large_message(message_id: &str, size: usize) -> Vec<u8> {
    let mut out = message("large", Some(message_id), "").to_vec();
    let mut n: u64 = 0x9e37_79b9_7f4a_7c15;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    while out.len() < size {
        for _ in 0..76 {
            n ^= n << 13;
            n ^= n >> 7;
            n ^= n << 17;
            out.push(ALPHABET[(n % 64) as usize]);
        }
        out.extend_from_slice(b"\r\n");
    }
    out
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The flags of every message in `folder` as Dovecot reports them to a separate raw session
/// (`UID -> "(\Seen ...)"`), read with EXAMINE so nothing changes.
pub fn raw_flags(dovecot: &Dovecot, folder: &str) -> Vec<(u32, String)> {
    let mut raw = dovecot.raw_session(USER).unwrap();
    let examine = raw
        .command(&format!(
            "EXAMINE {}",
            testbed::quote(&testbed::encode_mutf7(folder))
        ))
        .unwrap();
    assert!(examine.is_ok(), "{examine:?}");
    let fetch = raw.command("UID FETCH 1:* (UID FLAGS)").unwrap();
    raw.logout();
    fetch
        .lines()
        .iter()
        .filter_map(|line| {
            let uid = line
                .split("UID ")
                .nth(1)?
                .split([' ', ')'])
                .next()?
                .parse()
                .ok()?;
            let flags = line.split("FLAGS ").nth(1)?;
            let flags = &flags[..=flags.find(')')?];
            Some((uid, flags.to_owned()))
        })
        .collect()
}
