//! The outbox and SMTP mailers. SMTP is exercised against a small SMTP server in this file
//! (plain, STARTTLS and implicit TLS with a self-signed certificate the test trusts).

use base64::Engine;
use domain::error::MailError;
use domain::model::EmailAddress;
use domain::ports::{Mailer, OutgoingMail};
use domain::secret::Secret;
use embedded::{OutboxMailer, SmtpConfig, SmtpCredentials, SmtpMailer, SmtpSecurity};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

fn mail(to: &str, subject: &str, text: &str) -> OutgoingMail {
    OutgoingMail {
        to: EmailAddress::parse(to).unwrap(),
        to_name: "Jürgen Müller".into(),
        subject: subject.into(),
        text: text.into(),
    }
}

/// Long lines, `=` signs, non-ASCII, blank lines and a leading dot: everything an encoder must
/// get right.
const TRICKY_TEXT: &str = "Hallo Jürgen,\n\nbitte öffnen Sie diesen Link, um Ihr Postfach umzuziehen: \
https://mailferry.example/migrate/abcdef0123456789abcdef0123456789abcdef0123456789?x=1&y=2\n\
.a line starting with a dot\n=3D is not an escape here; 100% ✓\n\nGrüße\n";

#[tokio::test]
async fn outbox_writes_eml_files_and_reads_them_back() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let mailer = OutboxMailer::new(
        dir.path().join("outbox"),
        "mailferry <noreply@mailferry.example>",
    )
    .unwrap();
    let subject = "Ihr Postfach zieht um – bitte bestätigen ✓ (a subject long enough to need folding in the header)";

    // Act
    mailer
        .send(&mail("juergen@example.com", subject, TRICKY_TEXT))
        .await
        .unwrap();
    let sent = mailer
        .outbox(10)
        .await
        .unwrap()
        .expect("the outbox keeps mails");

    // Assert
    assert_eq!(sent.len(), 1);
    let m = &sent[0];
    assert_eq!(m.to, "juergen@example.com");
    assert_eq!(m.subject, subject);
    assert_eq!(m.text, TRICKY_TEXT);
    let age = time::OffsetDateTime::now_utc() - m.sent_at;
    assert!(
        age >= time::Duration::ZERO && age < time::Duration::seconds(60),
        "sent_at is now: {}",
        m.sent_at
    );

    let files: Vec<_> = std::fs::read_dir(mailer.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        files.len(),
        1,
        "one file, no temporary leftovers: {files:?}"
    );
    let name = files[0].to_str().unwrap();
    assert_eq!(name, format!("{}.eml", m.id));
    let raw = std::fs::read_to_string(mailer.dir().join(name)).unwrap();
    let (head, _) = raw
        .split_once("\r\n\r\n")
        .expect("headers end with an empty line");
    for header in [
        "From: ",
        "To: ",
        "Subject: ",
        "Date: ",
        "Message-ID: ",
        "MIME-Version: 1.0",
    ] {
        assert!(
            head.contains(header),
            "header {header:?} missing in:\n{head}"
        );
    }
    assert!(
        head.contains("Content-Transfer-Encoding: quoted-printable"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase().contains("charset=utf-8"),
        "{head}"
    );
    assert!(raw.is_ascii(), "the file is 7-bit clean");
    assert!(
        raw.split("\r\n").all(|l| l.len() <= 998),
        "no line over the RFC 5322 limit"
    );
}

#[tokio::test]
async fn outbox_lists_newest_first_with_a_limit_and_ignores_foreign_files() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let mailer = OutboxMailer::new(dir.path(), "noreply@mailferry.example").unwrap();
    for i in 1..=3 {
        mailer
            .send(&mail(
                &format!("user{i}@example.com"),
                &format!("mail {i}"),
                "text",
            ))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    std::fs::write(dir.path().join("README.txt"), "not a mail").unwrap();
    std::fs::write(
        dir.path().join(".00000000000000000001-ab.eml.tmp"),
        "half a mail",
    )
    .unwrap();

    // Act
    let two = mailer.outbox(2).await.unwrap().unwrap();
    let all = mailer.outbox(100).await.unwrap().unwrap();

    // Assert
    let subjects: Vec<&str> = all.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(subjects, ["mail 3", "mail 2", "mail 1"]);
    assert_eq!(two, all[..2].to_vec());
    assert!(
        all.windows(2).all(|w| w[0].sent_at >= w[1].sent_at),
        "sent_at descending"
    );
    assert!(mailer.outbox(0).await.unwrap().unwrap().is_empty());
}

#[tokio::test]
async fn outbox_refuses_an_invalid_sender() {
    let dir = tempfile::tempdir().unwrap();
    let err = OutboxMailer::new(dir.path(), "not an address").unwrap_err();
    assert!(
        matches!(err, MailError::Backend(ref m) if m.contains("sender")),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// A minimal SMTP server

#[derive(Debug, Default, Clone)]
struct Received {
    ehlo: String,
    /// Decoded `AUTH PLAIN` response: authzid, authcid, password.
    auth: Option<(String, String, String)>,
    mail_from: String,
    rcpt_to: Vec<String>,
    data: String,
    tls: bool,
}

#[derive(Clone)]
enum Mode {
    Plain,
    StartTls(tokio_rustls::TlsAcceptor),
    ImplicitTls(tokio_rustls::TlsAcceptor),
}

#[derive(Clone)]
struct ServerOpts {
    mode: Mode,
    reject_rcpt: bool,
}

enum Outcome<S> {
    Done(Received),
    StartTls(S),
}

/// Accepts one connection, speaks SMTP until QUIT or close, and returns what it received.
async fn spawn_smtp(opts: ServerOpts) -> (u16, JoinHandle<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        match &opts.mode {
            Mode::Plain => done(session(tcp, &opts, false, true, Received::default()).await),
            Mode::ImplicitTls(acceptor) => match acceptor.accept(tcp).await {
                Ok(tls) => done(
                    session(
                        tls,
                        &opts,
                        false,
                        true,
                        Received {
                            tls: true,
                            ..Received::default()
                        },
                    )
                    .await,
                ),
                // The client refused the certificate: nothing was received.
                Err(_) => Received::default(),
            },
            Mode::StartTls(acceptor) => {
                match session(tcp, &opts, true, true, Received::default()).await {
                    Outcome::StartTls(tcp) => {
                        let tls = acceptor.accept(tcp).await.unwrap();
                        done(
                            session(
                                tls,
                                &opts,
                                false,
                                false,
                                Received {
                                    tls: true,
                                    ..Received::default()
                                },
                            )
                            .await,
                        )
                    }
                    Outcome::Done(_) => panic!("the client did not use STARTTLS"),
                }
            }
        }
    });
    (port, handle)
}

fn done<S>(o: Outcome<S>) -> Received {
    match o {
        Outcome::Done(r) => r,
        Outcome::StartTls(_) => unreachable!("STARTTLS is only offered once"),
    }
}

async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    opts: &ServerOpts,
    offer_starttls: bool,
    greet: bool,
    mut rec: Received,
) -> Outcome<S> {
    let mut s = BufReader::new(stream);
    async fn reply<S: AsyncWrite + Unpin>(s: &mut S, text: &str) {
        s.write_all(text.as_bytes()).await.unwrap();
        s.flush().await.unwrap();
    }
    if greet {
        reply(&mut s, "220 smtp.test ESMTP ready\r\n").await;
    }
    loop {
        let mut line = String::new();
        if s.read_line(&mut line).await.unwrap() == 0 {
            return Outcome::Done(rec);
        }
        let cmd = line.trim_end();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            rec.ehlo = cmd[4..].trim().to_owned();
            let starttls = if offer_starttls {
                "250-STARTTLS\r\n"
            } else {
                ""
            };
            reply(
                &mut s,
                &format!("250-smtp.test\r\n{starttls}250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"),
            )
            .await;
        } else if upper == "STARTTLS" {
            reply(&mut s, "220 2.0.0 go ahead\r\n").await;
            return Outcome::StartTls(s.into_inner());
        } else if upper.starts_with("AUTH PLAIN ") {
            let b64 = cmd["AUTH PLAIN ".len()..].trim();
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            let parts: Vec<String> = raw
                .split(|b| *b == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            assert_eq!(parts.len(), 3, "AUTH PLAIN has three parts");
            rec.auth = Some((parts[0].clone(), parts[1].clone(), parts[2].clone()));
            reply(&mut s, "235 2.7.0 authenticated\r\n").await;
        } else if upper.starts_with("MAIL FROM:") {
            rec.mail_from = cmd["MAIL FROM:".len()..].trim().to_owned();
            reply(&mut s, "250 2.1.0 ok\r\n").await;
        } else if upper.starts_with("RCPT TO:") {
            if opts.reject_rcpt {
                reply(&mut s, "550 5.1.1 mailbox unavailable\r\n").await;
            } else {
                rec.rcpt_to.push(cmd["RCPT TO:".len()..].trim().to_owned());
                reply(&mut s, "250 2.1.5 ok\r\n").await;
            }
        } else if upper == "DATA" {
            reply(&mut s, "354 end with <CRLF>.<CRLF>\r\n").await;
            loop {
                let mut l = String::new();
                assert!(
                    s.read_line(&mut l).await.unwrap() > 0,
                    "connection closed inside DATA"
                );
                if l == ".\r\n" {
                    break;
                }
                rec.data.push_str(&l);
            }
            reply(&mut s, "250 2.0.0 queued\r\n").await;
        } else if upper == "QUIT" {
            reply(&mut s, "221 2.0.0 bye\r\n").await;
            return Outcome::Done(rec);
        } else if upper == "RSET" || upper == "NOOP" {
            reply(&mut s, "250 2.0.0 ok\r\n").await;
        } else {
            reply(&mut s, "502 5.5.2 not implemented\r\n").await;
        }
    }
}

/// A TLS acceptor with a fresh self-signed certificate for `localhost`, and that
/// certificate's PEM for the client to trust.
fn tls_acceptor() -> (tokio_rustls::TlsAcceptor, Vec<u8>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![ck.cert.der().clone()], key)
    .unwrap();
    (
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        ck.cert.pem().into_bytes(),
    )
}

fn config(port: u16, security: SmtpSecurity) -> SmtpConfig {
    let mut c = SmtpConfig::new(
        "localhost",
        port,
        security,
        "mailferry <noreply@mailferry.example>",
    );
    c.timeout = Duration::from_secs(10);
    c
}

#[tokio::test]
async fn smtp_delivers_with_auth_over_a_plain_connection() {
    // Arrange
    let (port, server) = spawn_smtp(ServerOpts {
        mode: Mode::Plain,
        reject_rcpt: false,
    })
    .await;
    let mut cfg = config(port, SmtpSecurity::Plaintext);
    cfg.credentials = Some(SmtpCredentials {
        username: "relay-user".into(),
        password: Secret::new("relay-p4ss"),
    });
    let mailer = SmtpMailer::new(&cfg).unwrap();

    // Act
    mailer
        .send(&mail(
            "juergen@example.com",
            "Ihr Postfach zieht um ✓",
            TRICKY_TEXT,
        ))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();

    // Assert
    assert_eq!(
        got.auth,
        Some((String::new(), "relay-user".into(), "relay-p4ss".into()))
    );
    assert_eq!(got.mail_from, "<noreply@mailferry.example>");
    assert_eq!(got.rcpt_to, ["<juergen@example.com>"]);
    assert!(got.data.contains("Subject: "), "{}", got.data);
    assert!(
        got.data
            .contains("Content-Transfer-Encoding: quoted-printable"),
        "{}",
        got.data
    );
    assert!(!got.tls);
    assert!(
        mailer.outbox(10).await.unwrap().is_none(),
        "SMTP keeps no outbox"
    );
    assert!(
        !format!("{mailer:?}").contains("relay-p4ss"),
        "Debug shows no password"
    );
    assert!(
        !format!("{cfg:?}").contains("relay-p4ss"),
        "Debug of the config shows no password"
    );
}

#[tokio::test]
async fn smtp_reports_a_refused_recipient_as_refused() {
    let (port, server) = spawn_smtp(ServerOpts {
        mode: Mode::Plain,
        reject_rcpt: true,
    })
    .await;
    let mailer = SmtpMailer::new(&config(port, SmtpSecurity::Plaintext)).unwrap();

    let err = mailer
        .send(&mail("nobody@example.com", "hi", "text"))
        .await
        .unwrap_err();

    assert!(matches!(err, MailError::Refused(_)), "{err:?}");
    let got = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    assert!(got.data.is_empty(), "no data after a refused recipient");
}

#[tokio::test]
async fn smtp_reports_an_unreachable_relay_as_a_backend_error() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cfg = config(port, SmtpSecurity::Plaintext);
    cfg.host = "127.0.0.1".into();
    let mailer = SmtpMailer::new(&cfg).unwrap();

    let err = mailer
        .send(&mail("a@example.com", "hi", "text"))
        .await
        .unwrap_err();

    assert!(matches!(err, MailError::Backend(_)), "{err:?}");
}

#[tokio::test]
async fn smtp_upgrades_with_starttls() {
    let (acceptor, pem) = tls_acceptor();
    let (port, server) = spawn_smtp(ServerOpts {
        mode: Mode::StartTls(acceptor),
        reject_rcpt: false,
    })
    .await;
    let mut cfg = config(port, SmtpSecurity::StartTls);
    cfg.extra_root_pem = Some(pem);
    let mailer = SmtpMailer::new(&cfg).unwrap();

    mailer
        .send(&mail("juergen@example.com", "over STARTTLS", "secret link"))
        .await
        .unwrap();

    let got = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    assert!(got.tls, "the message went over TLS");
    assert_eq!(got.rcpt_to, ["<juergen@example.com>"]);
    assert!(got.data.contains("secret link"));
}

#[tokio::test]
async fn smtp_speaks_implicit_tls() {
    let (acceptor, pem) = tls_acceptor();
    let (port, server) = spawn_smtp(ServerOpts {
        mode: Mode::ImplicitTls(acceptor),
        reject_rcpt: false,
    })
    .await;
    let mut cfg = config(port, SmtpSecurity::Tls);
    cfg.extra_root_pem = Some(pem);
    let mailer = SmtpMailer::new(&cfg).unwrap();

    mailer
        .send(&mail("juergen@example.com", "over TLS", "secret link"))
        .await
        .unwrap();

    let got = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    assert!(got.tls);
    assert!(got.data.contains("secret link"));
}

#[tokio::test]
async fn smtp_refuses_an_untrusted_certificate() {
    let (acceptor, _pem) = tls_acceptor();
    let (port, _server) = spawn_smtp(ServerOpts {
        mode: Mode::ImplicitTls(acceptor),
        reject_rcpt: false,
    })
    .await;
    let mailer = SmtpMailer::new(&config(port, SmtpSecurity::Tls)).unwrap();

    let err = mailer
        .send(&mail("juergen@example.com", "over TLS", "text"))
        .await
        .unwrap_err();

    assert!(matches!(err, MailError::Backend(_)), "{err:?}");
}
