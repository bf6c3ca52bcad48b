//! The IMAP client against real Dovecot instances (from `testbed`) and against small fake
//! servers for the failures Dovecot cannot be made to produce: connect, TLS, STARTTLS, login
//! methods, odd passwords, master users, OAuth tokens, and how each failure is classified.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use contract::Security;
use domain::Endpoint;
use domain::error::LoginError;
use domain::mailbox::MailServers;
use domain::secret::{Credential, Secret};
use imap::imap_types::command::CommandBody;
use imap::{ImapError, ImapMailboxes, LoginMethod, Session, TlsConfig};
use testbed::{Dovecot, DovecotOptions};
use tokio::io::AsyncWriteExt;

const TIMEOUT: Duration = Duration::from_secs(10);
const ODD_PASSWORD: &str = "pä\"ss\\word ✓";

fn endpoint(port: u16, security: Security) -> Endpoint {
    Endpoint {
        host: "127.0.0.1".into(),
        port,
        security,
    }
}

fn trusting(dovecot: &Dovecot) -> TlsConfig {
    TlsConfig::native_roots()
        .with_extra_ca_pem(dovecot.ca_pem().expect("a TLS instance"))
        .unwrap()
}

fn plain_tls() -> TlsConfig {
    TlsConfig::native_roots()
}

fn start(options: DovecotOptions) -> Dovecot {
    Dovecot::start(options).expect("dovecot starts")
}

#[tokio::test]
async fn plaintext_login_reports_the_capabilities_after_login() {
    // Arrange
    let dovecot = start(DovecotOptions::new().user("alice@example.com", "secret"));
    let mailboxes = ImapMailboxes::new(plain_tls());

    // Act
    let info = mailboxes
        .test_login(
            &endpoint(dovecot.port(), Security::Plaintext),
            "alice@example.com",
            &Credential::password("secret"),
            TIMEOUT,
        )
        .await
        .unwrap();

    // Assert: UIDPLUS and MOVE are only announced once logged in.
    for cap in ["IMAP4REV1", "UIDPLUS", "MOVE", "LITERAL+", "CONDSTORE"] {
        assert!(
            info.capabilities.iter().any(|c| c == cap),
            "{cap} missing: {:?}",
            info.capabilities
        );
    }
}

#[tokio::test]
async fn wrong_password_is_rejected_and_never_echoed() {
    // Arrange
    let dovecot = start(DovecotOptions::new().user("bob@example.com", "right"));
    let mailboxes = ImapMailboxes::new(plain_tls());

    // Act
    let result = mailboxes
        .test_login(
            &endpoint(dovecot.port(), Security::Plaintext),
            "bob@example.com",
            &Credential::password("wrong-password-123"),
            TIMEOUT,
        )
        .await;

    // Assert
    match result {
        Err(LoginError::Rejected(text)) => {
            assert!(text.contains("AUTHENTICATIONFAILED"), "{text}");
            assert!(!text.contains("wrong-password-123"));
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn odd_passwords_work_with_authenticate_plain_and_with_login() {
    // Arrange
    let dovecot = start(DovecotOptions::new().user("carol@example.com", ODD_PASSWORD));
    let tls = plain_tls();
    let password = Secret::new(ODD_PASSWORD);

    for method in [
        LoginMethod::Auto,
        LoginMethod::AuthenticatePlain,
        LoginMethod::Login,
    ] {
        // Act
        let mut session = Session::connect(
            &endpoint(dovecot.port(), Security::Plaintext),
            &tls,
            TIMEOUT,
        )
        .await
        .unwrap();
        let result = session
            .login_with("carol@example.com", &password, method)
            .await;

        // Assert
        result.unwrap_or_else(|e| panic!("{method:?}: {e}"));
        assert!(session.is_authenticated());
        assert!(
            session.capabilities().has("UIDPLUS"),
            "{method:?}: {:?}",
            session.capabilities()
        );
        session.logout().await.unwrap();
    }
}

#[tokio::test]
async fn a_rejected_login_leaves_the_session_usable_for_another_try() {
    // Arrange
    let dovecot = start(DovecotOptions::new().user("dan@example.com", "pw"));
    let mut session = Session::connect(
        &endpoint(dovecot.port(), Security::Plaintext),
        &plain_tls(),
        TIMEOUT,
    )
    .await
    .unwrap();

    // Act
    let first = session
        .login_with("dan@example.com", &Secret::new("nope"), LoginMethod::Login)
        .await;
    let second = session.login("dan@example.com", &Secret::new("pw")).await;

    // Assert
    assert!(
        matches!(first, Err(ImapError::LoginRejected { .. })),
        "{first:?}"
    );
    second.unwrap();
}

#[tokio::test]
async fn implicit_tls_works_with_the_test_ca_trusted() {
    // Arrange
    let dovecot = start(
        DovecotOptions::new()
            .tls(true)
            .user("erin@example.com", "pw"),
    );
    let tls = trusting(&dovecot);

    // Act
    let mut session = Session::connect(
        &endpoint(dovecot.tls_port().unwrap(), Security::Tls),
        &tls,
        TIMEOUT,
    )
    .await
    .unwrap();
    session
        .login("erin@example.com", &Secret::new("pw"))
        .await
        .unwrap();

    // Assert
    assert!(session.is_tls());
    assert!(session.capabilities().has("IMAP4REV1"));
    session.logout().await.unwrap();
}

#[tokio::test]
async fn starttls_upgrades_before_login_and_refreshes_capabilities() {
    // Arrange
    let dovecot = start(
        DovecotOptions::new()
            .tls(true)
            .user("fay@example.com", "pw"),
    );
    let tls = trusting(&dovecot);

    // Act
    let mut session =
        Session::connect(&endpoint(dovecot.port(), Security::Starttls), &tls, TIMEOUT)
            .await
            .unwrap();
    let before_login = session.capabilities().clone();
    session
        .login("fay@example.com", &Secret::new("pw"))
        .await
        .unwrap();

    // Assert: over TLS the server no longer offers STARTTLS, so the list was asked again.
    assert!(session.is_tls());
    assert!(!before_login.has("STARTTLS"), "{before_login:?}");
    assert!(before_login.has_auth("PLAIN"), "{before_login:?}");
    session.logout().await.unwrap();
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_error_for_imaps_and_starttls() {
    // Arrange: the system roots do not know the test CA.
    let dovecot = start(
        DovecotOptions::new()
            .tls(true)
            .user("gus@example.com", "pw"),
    );
    let mailboxes = ImapMailboxes::new(plain_tls());
    let password = Credential::password("pw");

    // Act
    let imaps = mailboxes
        .test_login(
            &endpoint(dovecot.tls_port().unwrap(), Security::Tls),
            "gus@example.com",
            &password,
            TIMEOUT,
        )
        .await;
    let starttls = mailboxes
        .test_login(
            &endpoint(dovecot.port(), Security::Starttls),
            "gus@example.com",
            &password,
            TIMEOUT,
        )
        .await;

    // Assert
    assert!(
        matches!(&imaps, Err(LoginError::Tls(text)) if text.contains("certificate")),
        "{imaps:?}"
    );
    assert!(matches!(&starttls, Err(LoginError::Tls(_))), "{starttls:?}");
}

#[tokio::test]
async fn a_host_name_is_resolved_and_checked_against_the_certificate() {
    // Arrange: the certificate names localhost; "localhost" may resolve to ::1 first, where
    // nothing listens, so this also covers trying the next address.
    let dovecot = start(
        DovecotOptions::new()
            .tls(true)
            .user("hal@example.com", "pw"),
    );
    let tls = trusting(&dovecot);
    let mut by_name = endpoint(dovecot.tls_port().unwrap(), Security::Tls);
    by_name.host = "localhost".into();

    // Act
    let mut session = Session::connect(&by_name, &tls, TIMEOUT).await.unwrap();
    let result = session.login("hal@example.com", &Secret::new("pw")).await;

    // Assert
    result.unwrap();
    assert!(session.is_tls());
}

#[tokio::test]
async fn starttls_demanded_from_a_server_without_it_fails_instead_of_falling_back() {
    // Arrange: ssl = no, so Dovecot offers no STARTTLS.
    let dovecot = start(DovecotOptions::new().user("ida@example.com", "pw"));
    let mailboxes = ImapMailboxes::new(plain_tls());

    // Act
    let direct = Session::connect(
        &endpoint(dovecot.port(), Security::Starttls),
        &plain_tls(),
        TIMEOUT,
    )
    .await;
    let via_port = mailboxes
        .test_login(
            &endpoint(dovecot.port(), Security::Starttls),
            "ida@example.com",
            &Credential::password("pw"),
            TIMEOUT,
        )
        .await;

    // Assert
    assert!(
        matches!(direct, Err(ImapError::StartTlsUnavailable)),
        "{direct:?}"
    );
    assert!(matches!(via_port, Err(LoginError::Tls(_))), "{via_port:?}");
    let log = std::fs::read_to_string(dovecot.log_path()).unwrap_or_default();
    assert!(
        !log.contains("ida@example.com"),
        "no login may have been attempted:\n{log}"
    );
}

#[tokio::test]
async fn tls_spoken_to_a_plaintext_port_is_a_tls_error() {
    // Arrange
    let dovecot = start(DovecotOptions::new().user("jan@example.com", "pw"));
    let mailboxes = ImapMailboxes::new(plain_tls());

    // Act
    let result = mailboxes
        .test_login(
            &endpoint(dovecot.port(), Security::Tls),
            "jan@example.com",
            &Credential::password("pw"),
            TIMEOUT,
        )
        .await;

    // Assert
    assert!(matches!(result, Err(LoginError::Tls(_))), "{result:?}");
}

#[tokio::test]
async fn master_user_opens_a_users_mailbox() {
    // Arrange
    let dovecot = start(
        DovecotOptions::new()
            .user("kay@example.com", "kay-pw")
            .master_user("admin", "master \"pw\" ✓"),
    );
    let login = dovecot.master_login("kay@example.com").unwrap();
    let mailboxes = ImapMailboxes::new(plain_tls());
    let at = endpoint(dovecot.port(), Security::Plaintext);

    // Act
    let ok = mailboxes
        .test_login(
            &at,
            &login,
            &Credential::password("master \"pw\" ✓"),
            TIMEOUT,
        )
        .await;
    let user_pw = mailboxes
        .test_login(&at, &login, &Credential::password("kay-pw"), TIMEOUT)
        .await;
    let mut session = mailboxes
        .open(
            &at,
            &login,
            &Credential::password("master \"pw\" ✓"),
            TIMEOUT,
        )
        .await
        .unwrap();
    let select = session.execute(CommandBody::select("INBOX").unwrap()).await;

    // Assert
    assert_eq!(login, "kay@example.com*admin");
    assert!(ok.is_ok(), "{ok:?}");
    assert!(
        matches!(user_pw, Err(LoginError::Rejected(_))),
        "{user_pw:?}"
    );
    select.unwrap();
    session.logout().await.unwrap();
}

#[tokio::test]
async fn xoauth2_and_oauthbearer_tokens_log_in() {
    // Arrange
    let dovecot = start(
        DovecotOptions::new()
            .oauth2(true)
            .user("lee@example.com", "pw"),
    );
    dovecot
        .add_oauth2_token("lee@example.com", "ya29.good-token")
        .unwrap();
    let tls = plain_tls();
    let at = endpoint(dovecot.port(), Security::Plaintext);

    // Act
    let mut xoauth2 = Session::connect(&at, &tls, TIMEOUT).await.unwrap();
    let xoauth2_ok = xoauth2
        .authenticate_xoauth2("lee@example.com", &Secret::new("ya29.good-token"))
        .await;
    let mut bearer = Session::connect(&at, &tls, TIMEOUT).await.unwrap();
    let bearer_ok = bearer
        .authenticate_oauthbearer("lee@example.com", &Secret::new("ya29.good-token"))
        .await;
    let mut forged = Session::connect(&at, &tls, TIMEOUT).await.unwrap();
    let forged_result = forged
        .authenticate_xoauth2("lee@example.com", &Secret::new("forged"))
        .await;
    let mut forged_bearer = Session::connect(&at, &tls, TIMEOUT).await.unwrap();
    let forged_bearer_result = forged_bearer
        .authenticate_oauthbearer("lee@example.com", &Secret::new("forged"))
        .await;

    // Assert
    xoauth2_ok.unwrap();
    assert!(xoauth2.capabilities().has("UIDPLUS"));
    bearer_ok.unwrap();
    assert!(
        matches!(forged_result, Err(ImapError::LoginRejected { .. })),
        "{forged_result:?}"
    );
    assert!(
        matches!(forged_bearer_result, Err(ImapError::LoginRejected { .. })),
        "{forged_bearer_result:?}"
    );
    // The failed exchanges ended cleanly: the sessions still answer.
    forged.noop().await.unwrap();
    forged_bearer.noop().await.unwrap();
}

#[tokio::test]
async fn oauth_without_server_support_is_no_login_method() {
    // Arrange
    let dovecot = start(DovecotOptions::new().user("max@example.com", "pw"));
    let mut session = Session::connect(
        &endpoint(dovecot.port(), Security::Plaintext),
        &plain_tls(),
        TIMEOUT,
    )
    .await
    .unwrap();

    // Act
    let result = session
        .authenticate_xoauth2("max@example.com", &Secret::new("token"))
        .await;

    // Assert
    assert!(
        matches!(result, Err(ImapError::NoLoginMethod(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn commands_run_after_login_and_a_no_keeps_the_session() {
    // Arrange
    let dovecot = start(DovecotOptions::new().user("ned@example.com", "pw"));
    dovecot
        .append_raw(
            "ned@example.com",
            "INBOX",
            b"Subject: x\r\n\r\nbody\r\n",
            &["\\Seen"],
            None,
        )
        .unwrap();
    let mut session = Session::connect(
        &endpoint(dovecot.port(), Security::Plaintext),
        &plain_tls(),
        TIMEOUT,
    )
    .await
    .unwrap();
    session
        .login("ned@example.com", &Secret::new("pw"))
        .await
        .unwrap();

    // Act
    let missing = session
        .execute(CommandBody::select("Does-Not-Exist").unwrap())
        .await;
    let inbox = session
        .execute(CommandBody::select("INBOX").unwrap())
        .await
        .unwrap();

    // Assert
    assert!(
        matches!(
            &missing,
            Err(ImapError::No {
                command: "SELECT",
                ..
            })
        ),
        "{missing:?}"
    );
    assert!(!session.is_broken());
    let exists = inbox
        .data
        .iter()
        .any(|d| matches!(d, imap::imap_types::response::Data::Exists(1)));
    assert!(exists, "{:?}", inbox.data);
    session.logout().await.unwrap();
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    // Arrange: a port that was free a moment ago.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mailboxes = ImapMailboxes::new(plain_tls());

    // Act
    let result = mailboxes
        .test_login(
            &endpoint(port, Security::Plaintext),
            "x@example.com",
            &Credential::password("pw"),
            TIMEOUT,
        )
        .await;

    // Assert
    assert!(
        matches!(result, Err(LoginError::Unreachable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_unknown_host_is_unreachable() {
    // Arrange
    let mailboxes = ImapMailboxes::new(plain_tls());
    let at = Endpoint {
        host: "no-such-host.invalid".into(),
        port: 993,
        security: Security::Tls,
    };

    // Act
    let result = mailboxes
        .test_login(&at, "x@example.com", &Credential::password("pw"), TIMEOUT)
        .await;

    // Assert
    assert!(
        matches!(result, Err(LoginError::Unreachable(_))),
        "{result:?}"
    );
}

/// A server that accepts connections and runs `serve` on each.
async fn fake_server<F, Fut>(serve: F) -> u16
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    });
    port
}

#[tokio::test]
async fn a_silent_server_times_out_within_the_given_timeout() {
    // Arrange: accepts, never speaks.
    let port = fake_server(|stream| async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(stream);
    })
    .await;
    let mailboxes = ImapMailboxes::new(plain_tls());
    let started = Instant::now();

    // Act
    let plain = mailboxes
        .test_login(
            &endpoint(port, Security::Plaintext),
            "x@example.com",
            &Credential::password("pw"),
            Duration::from_millis(300),
        )
        .await;
    let tls = mailboxes
        .test_login(
            &endpoint(port, Security::Tls),
            "x@example.com",
            &Credential::password("pw"),
            Duration::from_millis(300),
        )
        .await;

    // Assert
    assert!(matches!(plain, Err(LoginError::Timeout)), "{plain:?}");
    assert!(matches!(tls, Err(LoginError::Timeout)), "{tls:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_server_that_stalls_after_the_greeting_times_out_too() {
    // Arrange: greets, then ignores the login.
    let port = fake_server(|mut stream| async move {
        let _ = stream
            .write_all(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n")
            .await;
        tokio::time::sleep(Duration::from_secs(60)).await;
    })
    .await;
    let mailboxes = ImapMailboxes::new(plain_tls());
    let started = Instant::now();

    // Act
    let result = mailboxes
        .test_login(
            &endpoint(port, Security::Plaintext),
            "x@example.com",
            &Credential::password("pw"),
            Duration::from_millis(400),
        )
        .await;

    // Assert
    assert!(matches!(result, Err(LoginError::Timeout)), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_server_that_is_not_imap_is_unreachable() {
    // Arrange
    let port = fake_server(|mut stream| async move {
        let _ = stream
            .write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
            .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let mailboxes = ImapMailboxes::new(plain_tls());

    // Act
    let result = mailboxes
        .test_login(
            &endpoint(port, Security::Plaintext),
            "x@example.com",
            &Credential::password("pw"),
            TIMEOUT,
        )
        .await;

    // Assert
    assert!(
        matches!(&result, Err(LoginError::Unreachable(text))
            if text.contains("does not answer like an IMAP server") && !text.contains("SSH")),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_bye_greeting_or_a_hang_up_is_unreachable() {
    // Arrange
    let bye = fake_server(|mut stream| async move {
        let _ = stream.write_all(b"* BYE Too many connections\r\n").await;
    })
    .await;
    let hang_up = fake_server(|stream| async move { drop(stream) }).await;
    let mailboxes = ImapMailboxes::new(plain_tls());

    // Act
    let refused = mailboxes
        .test_login(
            &endpoint(bye, Security::Plaintext),
            "x@example.com",
            &Credential::password("pw"),
            TIMEOUT,
        )
        .await;
    let closed = mailboxes
        .test_login(
            &endpoint(hang_up, Security::Plaintext),
            "x@example.com",
            &Credential::password("pw"),
            TIMEOUT,
        )
        .await;

    // Assert
    assert!(
        matches!(&refused, Err(LoginError::Unreachable(text)) if text.contains("Too many connections")),
        "{refused:?}"
    );
    assert!(
        matches!(closed, Err(LoginError::Unreachable(_))),
        "{closed:?}"
    );
}

#[tokio::test]
async fn logindisabled_without_auth_plain_refuses_to_send_the_password() {
    // Arrange: a server that forbids LOGIN and offers no mechanism we know.
    let received = Arc::new(Mutex::new(Vec::<u8>::new()));
    let seen = received.clone();
    let port = fake_server(move |mut stream| {
        let seen = seen.clone();
        async move {
            use tokio::io::AsyncReadExt;
            let _ = stream
                .write_all(b"* OK [CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=GSSAPI] hi\r\n")
                .await;
            // Record whatever the client sends first, then hang up.
            let mut buf = [0u8; 1024];
            if let Ok(n) = stream.read(&mut buf).await {
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        }
    })
    .await;
    let mailboxes = ImapMailboxes::new(plain_tls());

    // Act
    let result = mailboxes
        .test_login(
            &endpoint(port, Security::Plaintext),
            "x@example.com",
            &Credential::password("pw-never-sent"),
            TIMEOUT,
        )
        .await;

    // Assert
    assert!(matches!(result, Err(LoginError::Rejected(_))), "{result:?}");
    let received = String::from_utf8_lossy(&received.lock().unwrap()).into_owned();
    assert!(!received.contains("pw-never-sent"), "{received}");
}

/// Collects everything a `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn passwords_stay_out_of_the_logs_even_at_trace_level() {
    // Arrange: a subscriber that records everything, on this (the runtime's only) thread.
    use base64::Engine as _;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let password = "Sup3rSecretPassw0rd";
    let dovecot = start(DovecotOptions::new().user("ola@example.com", password));
    let at = endpoint(dovecot.port(), Security::Plaintext);

    // Act: both methods, a good and a bad login, and a test login through the port.
    for method in [LoginMethod::Login, LoginMethod::AuthenticatePlain] {
        let mut session = Session::connect(&at, &plain_tls(), TIMEOUT).await.unwrap();
        let _ = session
            .login_with(
                "ola@example.com",
                &Secret::new("Wr0ngSecretPassw0rd"),
                method,
            )
            .await;
        session
            .login_with("ola@example.com", &Secret::new(password), method)
            .await
            .unwrap();
        session.logout().await.unwrap();
    }
    let _ = ImapMailboxes::new(plain_tls())
        .test_login(
            &at,
            "ola@example.com",
            &Credential::password(password),
            TIMEOUT,
        )
        .await;

    // Assert
    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(
        logs.contains("logging in"),
        "the subscriber saw nothing:\n{logs}"
    );
    let plain_blob =
        base64::engine::general_purpose::STANDARD.encode(format!("\0ola@example.com\0{password}"));
    for secret in [password, "Wr0ngSecretPassw0rd", plain_blob.as_str()] {
        assert!(
            !logs.contains(secret),
            "{secret} leaked into the logs:\n{logs}"
        );
    }
}

#[tokio::test]
async fn the_timeout_is_for_silence_not_for_a_slow_but_steady_response() {
    // Arrange: the second CAPABILITY answer trickles in over ~1 s, a piece every 100 ms.
    let port = fake_server(|stream| async move {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let _ = write.write_all(b"* OK ready\r\n").await;
        let mut answered = 0;
        while let Ok(Some(line)) = lines.next_line().await {
            let tag = line.split(' ').next().unwrap_or("*").to_owned();
            let _ = write.write_all(b"* CAPABILITY IMAP4rev1").await;
            if answered > 0 {
                for i in 0..10 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let _ = write.write_all(format!(" X-SLOW{i}").as_bytes()).await;
                }
            }
            let _ = write
                .write_all(format!("\r\n{tag} OK done\r\n").as_bytes())
                .await;
            answered += 1;
        }
    })
    .await;
    let mut session = Session::connect(&endpoint(port, Security::Plaintext), &plain_tls(), TIMEOUT)
        .await
        .unwrap();
    session.set_timeout(Duration::from_millis(400));

    // Act
    let started = Instant::now();
    let result = session.refresh_capabilities().await.cloned();

    // Assert
    let capabilities = result.unwrap();
    assert!(capabilities.has("X-SLOW9"), "{capabilities:?}");
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn a_refused_starttls_is_a_tls_error_and_nothing_else_is_sent() {
    // Arrange: offers STARTTLS, then refuses it.
    let received = Arc::new(Mutex::new(String::new()));
    let seen = received.clone();
    let port = fake_server(move |stream| {
        let seen = seen.clone();
        async move {
            use tokio::io::{AsyncBufReadExt, BufReader};
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            let _ = write
                .write_all(b"* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] ready\r\n")
                .await;
            while let Ok(Some(line)) = lines.next_line().await {
                seen.lock().unwrap().push_str(&line);
                let tag = line.split(' ').next().unwrap_or("*").to_owned();
                let _ = write
                    .write_all(format!("{tag} NO TLS is broken today\r\n").as_bytes())
                    .await;
            }
        }
    })
    .await;
    let mailboxes = ImapMailboxes::new(plain_tls());

    // Act
    let result = mailboxes
        .test_login(
            &endpoint(port, Security::Starttls),
            "x@example.com",
            &Credential::password("pw"),
            TIMEOUT,
        )
        .await;

    // Assert
    assert!(
        matches!(&result, Err(LoginError::Tls(text)) if text.contains("TLS is broken today")),
        "{result:?}"
    );
    let received = received.lock().unwrap().clone();
    assert!(
        received.contains("STARTTLS")
            && !received.contains("LOGIN")
            && !received.contains("AUTHENTICATE"),
        "{received}"
    );
}
