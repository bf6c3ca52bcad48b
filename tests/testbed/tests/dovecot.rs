//! The testbed against the real Dovecot binary: instances are independent, users log in over
//! raw sockets, TLS works with the generated CA, seeded mail is where it should be.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use testbed::{Dovecot, DovecotOptions, RawImap, quote};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as AsyncBufReader};

/// Sends a command over a fresh plain connection and returns the tagged response line.
fn raw_login(port: u16, user: &str, password: &str) -> String {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut greeting = String::new();
    reader.read_line(&mut greeting).unwrap();
    assert!(greeting.starts_with("* OK"), "{greeting}");
    let mut writer = stream;
    writer
        .write_all(format!("a LOGIN {} {}\r\n", quote(user), quote(password)).as_bytes())
        .unwrap();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.starts_with("a ") {
            return line;
        }
    }
}

#[test]
fn two_instances_run_at_once_on_different_ports() {
    // Arrange
    let a = Dovecot::start(DovecotOptions::new().user("alice@example.com", "secret-a")).unwrap();
    let b = Dovecot::start(DovecotOptions::new().user("bob@example.com", "secret-b")).unwrap();

    // Act
    let login_a = raw_login(a.port(), "alice@example.com", "secret-a");
    let login_b = raw_login(b.port(), "bob@example.com", "secret-b");
    let alice_on_b = raw_login(b.port(), "alice@example.com", "secret-a");

    // Assert
    assert_ne!(a.port(), b.port());
    assert_ne!(a.dir(), b.dir());
    assert!(login_a.starts_with("a OK"), "{login_a}");
    assert!(login_b.starts_with("a OK"), "{login_b}");
    assert!(
        alice_on_b.starts_with("a NO"),
        "users must not leak between instances: {alice_on_b}"
    );
}

#[test]
fn wrong_password_gets_no_and_users_can_be_added_later() {
    // Arrange
    let dovecot = Dovecot::start(DovecotOptions::new().user("carol@example.com", "right")).unwrap();

    // Act
    let wrong = raw_login(dovecot.port(), "carol@example.com", "wrong");
    dovecot.add_user("dave@example.com", "added-later").unwrap();
    let later = raw_login(dovecot.port(), "dave@example.com", "added-later");
    dovecot.add_user("carol@example.com", "changed").unwrap();
    let changed = raw_login(dovecot.port(), "carol@example.com", "changed");

    // Assert
    assert!(wrong.starts_with("a NO"), "{wrong}");
    assert!(later.starts_with("a OK"), "{later}");
    assert!(changed.starts_with("a OK"), "{changed}");
}

#[test]
fn odd_passwords_survive_the_passwd_file() {
    // Arrange
    let password = "pä\"ss\\word ✓";
    let dovecot = Dovecot::start(DovecotOptions::new().user("erin@example.com", password)).unwrap();

    // Act
    let mut imap = RawImap::connect(dovecot.port()).unwrap();
    let result = imap.login("erin@example.com", password);

    // Assert
    result.unwrap();
}

#[test]
fn seeded_mail_keeps_flags_and_date_and_survives_a_restart() {
    // Arrange
    let dovecot = Dovecot::start(
        DovecotOptions::new()
            .user("frank@example.com", "pw")
            .no_fsync()
            .separator('/'),
    )
    .unwrap();
    let date = time::macros::datetime!(2021-03-04 05:06:07 +02:00);
    let message =
        b"From: a@example.com\r\nSubject: hi\r\nMessage-ID: <1@example.com>\r\n\r\nbody\r\n";

    // Act
    let uid = dovecot
        .append_raw(
            "frank@example.com",
            "Archive/2021",
            message,
            &["\\Seen", "$Label1"],
            Some(date),
        )
        .unwrap();
    dovecot.save("frank@example.com", "INBOX", message).unwrap();
    dovecot
        .create_mailbox("frank@example.com", "Entwürfe")
        .unwrap();
    dovecot.restart().unwrap();
    let mut imap = dovecot.raw_session("frank@example.com").unwrap();
    imap.command("SELECT \"Archive/2021\"").unwrap();
    let fetched = imap
        .command("UID FETCH 1:* (FLAGS INTERNALDATE BODY.PEEK[])")
        .unwrap();

    // Assert
    assert_eq!(uid, 1);
    assert!(fetched.is_ok(), "{fetched:?}");
    let line = fetched.lines().concat();
    assert!(
        line.contains("$Label1") && line.contains("\\Seen"),
        "{line}"
    );
    // Maildir keeps INTERNALDATE as a file mtime: the instant survives, the offset does not.
    let at = line.find("INTERNALDATE \"").unwrap() + "INTERNALDATE ".len();
    assert_eq!(
        testbed::parse_internaldate(&line[at..at + 28]).unwrap(),
        date,
        "{line}"
    );
    assert!(line.contains("Subject: hi"), "{line}");
    assert_eq!(
        dovecot.message_count("frank@example.com", "INBOX").unwrap(),
        1
    );
    assert_eq!(
        dovecot
            .message_count("frank@example.com", "Archive/2021")
            .unwrap(),
        1
    );
    let folders = dovecot.mailboxes("frank@example.com").unwrap();
    assert!(folders.iter().any(|f| f == "Entwürfe"), "{folders:?}");
}

#[test]
fn master_user_opens_another_users_mailbox() {
    // Arrange
    let dovecot = Dovecot::start(
        DovecotOptions::new()
            .user("gina@example.com", "gina-pw")
            .master_user("admin", "master-pw"),
    )
    .unwrap();
    let login = dovecot.master_login("gina@example.com").unwrap();

    // Act
    let ok = raw_login(dovecot.port(), &login, "master-pw");
    let wrong = raw_login(dovecot.port(), &login, "gina-pw");
    let nobody = raw_login(dovecot.port(), "nobody@example.com*admin", "master-pw");

    // Assert
    assert_eq!(login, "gina@example.com*admin");
    assert!(ok.starts_with("a OK"), "{ok}");
    assert!(wrong.starts_with("a NO"), "{wrong}");
    assert!(
        nobody.starts_with("a NO"),
        "a master login must not invent users: {nobody}"
    );
}

/// Processes titled by this instance's Dovecot (`dovecot-NAME/imap`, ...).
fn processes_of(instance: &str) -> Vec<String> {
    let prefix = format!("dovecot-{instance}/");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|cmdline| cmdline.starts_with(prefix.as_bytes()))
        .map(|cmdline| String::from_utf8_lossy(&cmdline).into_owned())
        .collect()
}

#[test]
fn drop_stops_the_server_and_its_sessions() {
    // Arrange: a client is connected and has a mailbox open when the instance goes away.
    let dovecot = Dovecot::start(DovecotOptions::new().user("lou@example.com", "pw")).unwrap();
    let dir = dovecot.dir().to_path_buf();
    let instance = dovecot.instance_name().to_owned();
    let mut client = dovecot.raw_session("lou@example.com").unwrap();
    client.command("SELECT INBOX").unwrap();
    assert!(!processes_of(&instance).is_empty());

    // Act
    drop(dovecot);

    // Assert
    assert!(!dir.exists(), "{} was not removed", dir.display());
    assert!(
        client.command("NOOP").is_err(),
        "the session outlived the server"
    );
    assert_eq!(processes_of(&instance), Vec::<String>::new());
}

#[test]
fn stop_then_restart_serves_again() {
    // Arrange
    let dovecot = Dovecot::start(DovecotOptions::new().user("hank@example.com", "pw")).unwrap();

    let mut before = dovecot.raw_session("hank@example.com").unwrap();

    // Act
    dovecot.stop().unwrap();
    let stopped = !dovecot.is_running();
    let old_session = before.command("NOOP");
    dovecot.restart().unwrap();

    // Assert
    assert!(stopped);
    assert!(
        old_session.is_err(),
        "a session survived the stop: {old_session:?}"
    );
    assert!(dovecot.is_running());
    assert!(raw_login(dovecot.port(), "hank@example.com", "pw").starts_with("a OK"));
}

#[test]
fn compress_and_listed_capabilities_are_offered() {
    // Arrange
    let dovecot = Dovecot::start(
        DovecotOptions::new()
            .user("ivy@example.com", "pw")
            .compress(true),
    )
    .unwrap();

    // Act
    let mut imap = dovecot.raw_session("ivy@example.com").unwrap();
    let caps = imap.command("CAPABILITY").unwrap().lines().concat();

    // Assert
    for cap in [
        "COMPRESS=DEFLATE",
        "UIDPLUS",
        "LITERAL+",
        "MULTIAPPEND",
        "CONDSTORE",
        "SPECIAL-USE",
    ] {
        assert!(caps.contains(cap), "{cap} missing in {caps}");
    }
}

#[test]
fn announced_capabilities_and_a_size_limit_can_be_set() {
    // Arrange
    let dovecot = Dovecot::start(
        DovecotOptions::new()
            .user("kim@example.com", "pw")
            .capabilities("IMAP4rev1 SASL-IR")
            .max_mail_size(1000),
    )
    .unwrap();
    let mut imap = dovecot.raw_session("kim@example.com").unwrap();

    // Act
    let caps = imap.command("CAPABILITY").unwrap().lines().concat();
    let small = imap.append("INBOX", b"Subject: s\r\n\r\nsmall\r\n", &[], None);
    let large = imap.append("INBOX", &vec![b'x'; 2000], &[], None);

    // Assert
    assert!(
        caps.contains("IMAP4rev1") && !caps.contains("MULTIAPPEND"),
        "{caps}"
    );
    small.unwrap();
    let refused = large.unwrap_err().to_string();
    assert!(refused.contains("[LIMIT]"), "{refused}");
    assert_eq!(
        dovecot.message_count("kim@example.com", "INBOX").unwrap(),
        1
    );
}

fn tls_connector(ca_pem: &str) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn tls_instance_serves_imaps_and_starttls_with_the_generated_ca() {
    // Arrange
    let dovecot = Dovecot::start(
        DovecotOptions::new()
            .tls(true)
            .user("judy@example.com", "pw"),
    )
    .unwrap();
    let connector = tls_connector(dovecot.ca_pem().unwrap());
    let server_name = ServerName::try_from("localhost").unwrap();

    // Act: implicit TLS.
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", dovecot.tls_port().unwrap()))
        .await
        .unwrap();
    let tls = connector.connect(server_name.clone(), tcp).await.unwrap();
    let mut tls = AsyncBufReader::new(tls);
    let mut greeting = String::new();
    tls.read_line(&mut greeting).await.unwrap();
    tls.get_mut()
        .write_all(b"a LOGIN \"judy@example.com\" \"pw\"\r\n")
        .await
        .unwrap();
    let mut tagged = String::new();
    while !tagged.starts_with("a ") {
        tagged.clear();
        tls.read_line(&mut tagged).await.unwrap();
    }

    // Act: STARTTLS on the plain port.
    let plain_greeting = {
        let mut raw = RawImap::connect(dovecot.port()).unwrap();
        let starttls = raw.command("STARTTLS").unwrap();
        assert!(starttls.is_ok(), "{starttls:?}");
        raw.greeting.clone()
    };

    // Assert
    assert!(greeting.starts_with("* OK"), "{greeting}");
    assert!(tagged.starts_with("a OK"), "{tagged}");
    assert!(plain_greeting.contains("STARTTLS"), "{plain_greeting}");
    assert_ne!(dovecot.tls_port(), Some(dovecot.port()));
}

#[tokio::test]
async fn tls_is_refused_without_the_generated_ca() {
    // Arrange: trust some other CA only.
    let dovecot = Dovecot::start(DovecotOptions::new().tls(true)).unwrap();
    let other = Dovecot::start(DovecotOptions::new().tls(true)).unwrap();
    let connector = tls_connector(other.ca_pem().unwrap());

    // Act
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", dovecot.tls_port().unwrap()))
        .await
        .unwrap();
    let result = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await;

    // Assert
    assert!(result.is_err());
}

#[test]
fn oauth2_tokens_are_checked_by_the_introspection_stub() {
    // Arrange
    use base64::Engine as _;
    let dovecot = Dovecot::start(
        DovecotOptions::new()
            .oauth2(true)
            .user("kim@example.com", "pw"),
    )
    .unwrap();
    dovecot
        .add_oauth2_token("kim@example.com", "token-123")
        .unwrap();
    let xoauth2 = |user: &str, token: &str| {
        base64::engine::general_purpose::STANDARD
            .encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"))
    };

    // Act
    let mut good = RawImap::connect(dovecot.port()).unwrap();
    let accepted = good
        .command(&format!(
            "AUTHENTICATE XOAUTH2 {}",
            xoauth2("kim@example.com", "token-123")
        ))
        .unwrap();
    let mut bad = RawImap::connect(dovecot.port()).unwrap();
    bad.write_raw(
        format!(
            "x1 AUTHENTICATE XOAUTH2 {}\r\n",
            xoauth2("kim@example.com", "forged")
        )
        .as_bytes(),
    )
    .unwrap();
    // A failed XOAUTH2 gets a challenge with the error first; the client answers with an empty line.
    bad.write_raw(b"\r\n").unwrap();
    let refused = bad.command("NOOP").unwrap();

    // Assert
    assert!(accepted.is_ok(), "{accepted:?}");
    assert!(refused.is_ok(), "{refused:?}");
    assert!(
        refused.lines().iter().any(|l| l.starts_with("x1 NO")),
        "{refused:?}"
    );
}
