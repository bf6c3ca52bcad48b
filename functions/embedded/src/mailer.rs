//! The local [`Mailer`]s: [`OutboxMailer`] writes every mail as an RFC 5322 `.eml` file into a
//! folder (demos, tests, air-gapped runs), [`SmtpMailer`] hands it to an SMTP relay.
//!
//! Both build the same message with lettre: `text/plain; charset=utf-8`, always
//! quoted-printable, so the outbox can read its own files back without a MIME library.

use async_trait::async_trait;
use domain::error::MailError;
use domain::ports::{Mailer, OutgoingMail, SentMail};
use domain::secret::Secret;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rand::RngCore;
use std::path::{Path, PathBuf};
use std::time::Duration;
use time::OffsetDateTime;

fn parse_from(from: &str) -> Result<Mailbox, MailError> {
    from.parse::<Mailbox>()
        .map_err(|e| MailError::Backend(format!("the sender address '{from}' is invalid: {e}")))
}

/// The one way mailferry turns an [`OutgoingMail`] into a message.
fn build_message(from: &Mailbox, mail: &OutgoingMail) -> Result<Message, MailError> {
    let address = mail.to.as_str().parse::<Address>().map_err(|e| {
        MailError::Refused(format!(
            "the recipient address '{}' is invalid: {e}",
            mail.to
        ))
    })?;
    // A display name may span lines (a quoted CSV field); a header may not: lettre cannot
    // write one and panics. Each run of control characters becomes one space.
    let name: String = mail
        .to_name
        .split(char::is_control)
        .filter(|part| !part.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let name = Some(name).filter(|n| !n.is_empty());
    let body = Body::new_with_encoding(mail.text.clone(), ContentTransferEncoding::QuotedPrintable)
        .map_err(|_| MailError::Backend("the mail text could not be encoded".into()))?;
    Message::builder()
        .from(from.clone())
        .to(Mailbox::new(name, address))
        .subject(mail.subject.clone())
        .message_id(None)
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(body),
        )
        .map_err(|e| MailError::Backend(format!("the mail could not be built: {e}")))
}

/// Writes mails as `.eml` files into a folder instead of sending them. File names sort by
/// time (`<unix nanos>-<random>.eml`), and each file appears atomically (written under a
/// hidden temporary name, then renamed), so a reader never sees half a mail.
#[derive(Debug, Clone)]
pub struct OutboxMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl OutboxMailer {
    /// Creates the folder if needed. `from` is an address, optionally with a name
    /// (`mailferry <noreply@example.com>`). Blocking I/O: call at startup.
    pub fn new(dir: impl Into<PathBuf>, from: &str) -> Result<Self, MailError> {
        let dir = dir.into();
        let from = parse_from(from)?;
        // The mails carry live invite links: only this user may read them.
        crate::private::create_dir(&dir).map_err(|e| {
            MailError::Backend(format!(
                "cannot create the outbox folder {}: {e}",
                dir.display()
            ))
        })?;
        Ok(OutboxMailer { dir, from })
    }

    /// The folder the `.eml` files go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let bytes = build_message(&self.from, mail)?.formatted();
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || write_eml(&dir, &bytes))
            .await
            .map_err(|e| MailError::Backend(format!("outbox task failed: {e}")))?
    }

    async fn outbox(&self, limit: usize) -> Result<Option<Vec<SentMail>>, MailError> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || read_outbox(&dir, limit))
            .await
            .map_err(|e| MailError::Backend(format!("outbox task failed: {e}")))?
            .map(Some)
    }
}

fn write_eml(dir: &Path, bytes: &[u8]) -> Result<(), MailError> {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos().max(0);
    let mut suffix = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut suffix);
    let name = format!("{nanos:020}-{}.eml", hex::encode(suffix));
    let tmp = dir.join(format!(".{name}.tmp"));
    let fail = |e: std::io::Error| {
        MailError::Backend(format!("cannot write to the outbox {}: {e}", dir.display()))
    };
    crate::private::write_file(&tmp, bytes).map_err(fail)?;
    std::fs::rename(&tmp, dir.join(&name)).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })
}

fn read_outbox(dir: &Path, limit: usize) -> Result<Vec<SentMail>, MailError> {
    let fail = |e: std::io::Error| {
        MailError::Backend(format!("cannot read the outbox {}: {e}", dir.display()))
    };
    let mut names: Vec<(i128, String)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(fail)? {
        let name = entry.map_err(fail)?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(nanos) = outbox_stamp(name) {
            names.push((nanos, name.to_owned()));
        }
    }
    // Newest first; the random suffix breaks ties deterministically.
    names.sort_unstable_by(|a, b| b.cmp(a));
    let mut out = Vec::with_capacity(limit.min(names.len()));
    for (nanos, name) in names.into_iter().take(limit) {
        let raw = match std::fs::read(dir.join(&name)) {
            Ok(raw) => raw,
            // Removed by someone between listing and reading: not an error of the outbox.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(fail(e)),
        };
        let parsed = eml::parse(&raw);
        out.push(SentMail {
            id: name.trim_end_matches(".eml").to_owned(),
            to: parsed.to,
            subject: parsed.subject,
            sent_at: OffsetDateTime::from_unix_timestamp_nanos(nanos)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            text: parsed.text,
        });
    }
    Ok(out)
}

/// The time stamp of an outbox file name `<20 digits>-<hex>.eml`; `None` for anything else
/// (temporary files, files someone dropped there).
fn outbox_stamp(name: &str) -> Option<i128> {
    let stem = name.strip_suffix(".eml")?;
    let (stamp, suffix) = stem.split_once('-')?;
    if stamp.len() != 20 || !stamp.bytes().all(|b| b.is_ascii_digit()) || suffix.is_empty() {
        return None;
    }
    if !suffix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    stamp.parse().ok()
}

/// How the connection to the SMTP relay is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// No encryption: only for a relay on loopback or a trusted network.
    Plaintext,
    /// A plain connection upgraded with STARTTLS; fails when the server does not offer it.
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

/// Login at the SMTP relay.
#[derive(Clone)]
pub struct SmtpCredentials {
    pub username: String,
    pub password: Secret,
}

impl std::fmt::Debug for SmtpCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpCredentials")
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

/// Where and how [`SmtpMailer`] delivers.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub credentials: Option<SmtpCredentials>,
    /// The sender, optionally with a name (`mailferry <noreply@example.com>`).
    pub from: String,
    /// Limit for each SMTP command.
    pub timeout: Duration,
    /// A root certificate (PEM) trusted in addition to the system's, for a relay with a
    /// private CA (and for tests with a self-signed certificate).
    pub extra_root_pem: Option<Vec<u8>>,
}

impl SmtpConfig {
    /// A configuration without login, a 30-second timeout and only the system's roots.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        security: SmtpSecurity,
        from: impl Into<String>,
    ) -> Self {
        SmtpConfig {
            host: host.into(),
            port,
            security,
            credentials: None,
            from: from.into(),
            timeout: Duration::from_secs(30),
            extra_root_pem: None,
        }
    }
}

/// Sends mail through an SMTP relay, one connection per mail (invites are few and far
/// between). Keeps no copy: [`Mailer::outbox`] returns `None`.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    relay: String,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("relay", &self.relay)
            .field("from", &self.from.email)
            .finish()
    }
}

impl SmtpMailer {
    pub fn new(config: &SmtpConfig) -> Result<Self, MailError> {
        let from = parse_from(&config.from)?;
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.as_str())
                .port(config.port)
                .timeout(Some(config.timeout));
        let tls = match config.security {
            SmtpSecurity::Plaintext => Tls::None,
            SmtpSecurity::StartTls => Tls::Required(tls_parameters(config)?),
            SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(config)?),
        };
        builder = builder.tls(tls);
        if let Some(c) = &config.credentials {
            builder = builder.credentials(Credentials::new(
                c.username.clone(),
                c.password.expose().to_owned(),
            ));
        }
        Ok(SmtpMailer {
            transport: builder.build(),
            from,
            relay: format!("{}:{} ({:?})", config.host, config.port, config.security),
        })
    }
}

fn tls_parameters(config: &SmtpConfig) -> Result<TlsParameters, MailError> {
    let mut builder = TlsParameters::builder(config.host.clone());
    if let Some(pem) = &config.extra_root_pem {
        let cert = Certificate::from_pem(pem).map_err(|e| {
            MailError::Backend(format!("the extra root certificate is invalid: {e}"))
        })?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build_rustls()
        .map_err(|e| MailError::Backend(format!("cannot set up TLS for SMTP: {e}")))
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let message = build_message(&self.from, mail)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            // A 5xx answer will not change on a retry: the relay refused this mail.
            Err(e) if e.is_permanent() => Err(MailError::Refused(e.to_string())),
            Err(e) => Err(MailError::Backend(format!(
                "SMTP relay {}: {e}",
                self.relay
            ))),
        }
    }

    async fn outbox(&self, _limit: usize) -> Result<Option<Vec<SentMail>>, MailError> {
        Ok(None)
    }
}

/// Just enough RFC 5322 / MIME reading for the mails [`build_message`] writes: unfolded
/// headers, RFC 2047 encoded words, quoted-printable or base64 bodies.
mod eml {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    pub(super) struct Parsed {
        pub to: String,
        pub subject: String,
        pub text: String,
    }

    pub(super) fn parse(raw: &[u8]) -> Parsed {
        let (head, body) = split_head(raw);
        // lettre ends a single-part message with a line break of its own after the encoded
        // body; it is not part of the text.
        let body = body.strip_suffix(b"\r\n").unwrap_or(body);
        let head = String::from_utf8_lossy(head);
        let headers = unfold(&head);
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        let encoding = get("Content-Transfer-Encoding").trim().to_ascii_lowercase();
        let body = match encoding.as_str() {
            "quoted-printable" => decode_qp(body),
            "base64" => {
                let compact: Vec<u8> = body
                    .iter()
                    .copied()
                    .filter(|b| !b.is_ascii_whitespace())
                    .collect();
                STANDARD.decode(compact).unwrap_or_else(|_| body.to_vec())
            }
            _ => body.to_vec(),
        };
        Parsed {
            to: address_of(&decode_words(get("To"))),
            subject: decode_words(get("Subject")),
            text: String::from_utf8_lossy(&body).replace("\r\n", "\n"),
        }
    }

    fn split_head(raw: &[u8]) -> (&[u8], &[u8]) {
        for (sep, len) in [(&b"\r\n\r\n"[..], 4), (&b"\n\n"[..], 2)] {
            if let Some(i) = raw.windows(len).position(|w| w == sep) {
                return (&raw[..i], &raw[i + len..]);
            }
        }
        (raw, &[])
    }

    /// Header lines with continuation lines joined (RFC 5322 §2.2.3).
    fn unfold(head: &str) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = out.last_mut() {
                    value.push_str(line);
                }
            } else if let Some((name, value)) = line.split_once(':') {
                out.push((name.trim().to_owned(), value.trim_start().to_owned()));
            }
        }
        out
    }

    /// The bare address of a `To` value: inside the last `<…>`, else the whole value.
    fn address_of(value: &str) -> String {
        match (value.rfind('<'), value.rfind('>')) {
            (Some(a), Some(b)) if a < b => value[a + 1..b].trim().to_owned(),
            _ => value.trim().to_owned(),
        }
    }

    /// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`). White space between
    /// two encoded words is dropped, as the RFC says. Bytes are joined before UTF-8 decoding,
    /// so a character split over two words survives.
    pub(super) fn decode_words(value: &str) -> String {
        let mut out: Vec<u8> = Vec::new();
        let mut rest = value;
        let mut after_word = false;
        while let Some((start, end, bytes)) = next_word(rest) {
            let between = &rest[..start];
            if !(after_word && between.trim().is_empty()) {
                out.extend_from_slice(between.as_bytes());
            }
            out.extend_from_slice(&bytes);
            after_word = true;
            rest = &rest[end..];
        }
        out.extend_from_slice(rest.as_bytes());
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The first well-formed encoded word in `s`: its start, end and decoded bytes.
    fn next_word(s: &str) -> Option<(usize, usize, Vec<u8>)> {
        let mut from = 0;
        while let Some(i) = s[from..].find("=?").map(|i| i + from) {
            if let Some((len, bytes)) = word_at(&s[i..]) {
                return Some((i, i + len, bytes));
            }
            from = i + 2;
        }
        None
    }

    fn word_at(s: &str) -> Option<(usize, Vec<u8>)> {
        let inner = s.strip_prefix("=?")?;
        let (_charset, rest) = inner.split_once('?')?;
        let (encoding, rest) = rest.split_once('?')?;
        let end = rest.find("?=")?;
        let text = &rest[..end];
        if text.contains(|c: char| c.is_whitespace()) {
            return None;
        }
        let bytes = match encoding {
            "B" | "b" => STANDARD.decode(text).ok()?,
            "Q" | "q" => decode_q(text.as_bytes()),
            _ => return None,
        };
        let len = s.len() - rest.len() + end + 2;
        Some((len, bytes))
    }

    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }

    /// RFC 2047 "Q": quoted-printable where `_` stands for a space.
    fn decode_q(text: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        let mut i = 0;
        while i < text.len() {
            match text[i] {
                b'_' => {
                    out.push(b' ');
                    i += 1;
                }
                b'=' => {
                    match (
                        text.get(i + 1).copied().and_then(hex),
                        text.get(i + 2).copied().and_then(hex),
                    ) {
                        (Some(h), Some(l)) => {
                            out.push(h << 4 | l);
                            i += 3;
                        }
                        _ => {
                            out.push(b'=');
                            i += 1;
                        }
                    }
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        out
    }

    /// Quoted-printable body (RFC 2045 §6.7): `=XX` bytes and `=` soft line breaks.
    pub(super) fn decode_qp(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len());
        let mut i = 0;
        while i < body.len() {
            if body[i] != b'=' {
                out.push(body[i]);
                i += 1;
                continue;
            }
            let rest = &body[i + 1..];
            if rest.starts_with(b"\r\n") {
                i += 3;
            } else if rest.starts_with(b"\n") {
                i += 2;
            } else if let (Some(h), Some(l)) = (
                rest.first().copied().and_then(hex),
                rest.get(1).copied().and_then(hex),
            ) {
                out.push(h << 4 | l);
                i += 3;
            } else {
                out.push(b'=');
                i += 1;
            }
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn decodes_encoded_words_and_joins_adjacent_ones() {
            assert_eq!(
                decode_words("=?utf-8?b?w6TDtg==?= =?utf-8?q?_und_=C3=BC?= plain"),
                "äö und ü plain"
            );
            assert_eq!(decode_words("no words =? here"), "no words =? here");
        }

        #[test]
        fn decodes_quoted_printable_soft_breaks_and_bytes() {
            assert_eq!(
                decode_qp(b"a=3Db=\r\nc =C3=A4\r\nd="),
                "a=bc \u{e4}\r\nd=".as_bytes()
            );
        }
    }
}
