//! What APPEND puts on the wire, against a scripted server: one MULTIAPPEND with
//! non-synchronizing literals when the server offers MULTIAPPEND and LITERAL+, single
//! APPENDs after a refused MULTIAPPEND, synchronizing literals that wait for `+` otherwise,
//! and a refusal instead of `+` that ends the command without sending the literal.
//! (Dovecot runs the same paths in `append.rs`; here the exact bytes are checked.)

use std::time::Duration;

use contract::Security;
use domain::Endpoint;
use imap::{AppendItem, AppendOutcome, Session, TlsConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Greets with PREAUTH and `capabilities`, then for each step reads exactly the expected
/// bytes (failing on any difference) and writes the reply. Await the handle at the end of
/// a test: it fails when the client sent something else or more.
async fn scripted(
    capabilities: &str,
    steps: Vec<(&'static str, &'static str)>,
) -> (Session, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let greeting = format!("* PREAUTH [CAPABILITY IMAP4rev1 {capabilities}] ready\r\n");
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        stream.write_all(greeting.as_bytes()).await.unwrap();
        for (expected, reply) in steps {
            let mut got = vec![0u8; expected.len()];
            let read =
                tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut got)).await;
            assert!(
                read.is_ok_and(|r| r.is_ok()),
                "the client did not send {expected:?}"
            );
            assert_eq!(String::from_utf8_lossy(&got), expected);
            stream.write_all(reply.as_bytes()).await.unwrap();
        }
        // Nothing more may arrive.
        let mut rest = [0u8; 64];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(200), stream.read(&mut rest)).await
        {
            assert_eq!(
                n,
                0,
                "unexpected bytes {:?}",
                String::from_utf8_lossy(&rest[..n])
            );
        }
    });
    let endpoint = Endpoint {
        host: "127.0.0.1".into(),
        port,
        security: Security::Plaintext,
    };
    let session = Session::connect(
        &endpoint,
        &TlsConfig::native_roots(),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    (session, server)
}

fn two() -> Vec<AppendItem> {
    vec![
        AppendItem {
            body: b"A".to_vec(),
            flags: vec!["\\Seen".into(), "\\Recent".into()],
            internaldate: time::macros::datetime!(2023-06-30 23:00:00 UTC),
        },
        AppendItem {
            body: b"BB".to_vec(),
            flags: vec![],
            internaldate: time::macros::datetime!(2024-01-05 13:05:09 +01:00),
        },
    ]
}

#[tokio::test]
async fn multiappend_sends_every_message_in_one_command_with_literal_plus() {
    // Arrange
    let (mut session, server) = scripted(
        "MULTIAPPEND LITERAL+ UIDPLUS",
        vec![(
            "M1 APPEND \"Sent Items\" (\\Seen) \"30-Jun-2023 23:00:00 +0000\" {1+}\r\nA () \"05-Jan-2024 13:05:09 +0100\" {2+}\r\nBB\r\n",
            "M1 OK [APPENDUID 9 5:6] Append completed\r\n",
        )],
    )
    .await;

    // Act
    let outcomes = session.append("Sent Items", &two()).await.unwrap();

    // Assert
    assert_eq!(
        outcomes,
        [
            AppendOutcome::Appended { uid: Some(5) },
            AppendOutcome::Appended { uid: Some(6) },
        ]
    );
    server.await.unwrap();
}

#[tokio::test]
async fn a_refused_multiappend_is_retried_one_message_at_a_time() {
    // Arrange
    let (mut session, server) = scripted(
        "MULTIAPPEND LITERAL+",
        vec![
            (
                "M1 APPEND \"INBOX\" (\\Seen) \"30-Jun-2023 23:00:00 +0000\" {1+}\r\nA () \"05-Jan-2024 13:05:09 +0100\" {2+}\r\nBB\r\n",
                "M1 NO [LIMIT] Mail size is larger than allowed\r\n",
            ),
            (
                "M2 APPEND \"INBOX\" (\\Seen) \"30-Jun-2023 23:00:00 +0000\" {1+}\r\nA\r\n",
                "M2 OK [APPENDUID 9 5] Append completed\r\n",
            ),
            (
                "M3 APPEND \"INBOX\" () \"05-Jan-2024 13:05:09 +0100\" {2+}\r\nBB\r\n",
                "M3 NO [LIMIT] Mail size is larger than allowed\r\n",
            ),
        ],
    )
    .await;

    // Act
    let outcomes = session.append("INBOX", &two()).await.unwrap();

    // Assert
    assert_eq!(outcomes[0], AppendOutcome::Appended { uid: Some(5) });
    assert_eq!(
        outcomes[1],
        AppendOutcome::Rejected {
            reason: "[LIMIT] Mail size is larger than allowed".into(),
        }
    );
    server.await.unwrap();
}

#[tokio::test]
async fn without_literal_plus_each_literal_waits_for_the_go_ahead_and_a_refusal_ends_it() {
    // Arrange
    let (mut session, server) = scripted(
        "",
        vec![
            (
                "M1 APPEND \"INBOX\" (\\Seen) \"30-Jun-2023 23:00:00 +0000\" {1}\r\n",
                "+ OK\r\n",
            ),
            ("A\r\n", "* 1 EXISTS\r\nM1 OK Append completed\r\n"),
            (
                "M2 APPEND \"INBOX\" () \"05-Jan-2024 13:05:09 +0100\" {2}\r\n",
                "M2 NO [TOOBIG] Too large\r\n",
            ),
            ("M3 NOOP\r\n", "M3 OK NOOP completed\r\n"),
        ],
    )
    .await;

    // Act
    let outcomes = session.append("INBOX", &two()).await.unwrap();
    session.noop().await.unwrap();

    // Assert: the refused literal was never sent, and the session is in step.
    assert_eq!(
        outcomes,
        [
            AppendOutcome::Appended { uid: None },
            AppendOutcome::Rejected {
                reason: "[TOOBIG] Too large".into(),
            },
        ]
    );
    server.await.unwrap();
}

#[tokio::test]
async fn literal_minus_sends_small_literals_without_waiting() {
    // Arrange: LITERAL- allows non-synchronizing literals up to 4096 bytes.
    let (mut session, server) = scripted(
        "LITERAL-",
        vec![(
            "M1 APPEND \"INBOX\" (\\Seen) \"30-Jun-2023 23:00:00 +0000\" {1+}\r\nA\r\n",
            "M1 OK Append completed\r\n",
        )],
    )
    .await;

    // Act
    let outcomes = session.append("INBOX", &two()[..1]).await.unwrap();

    // Assert
    assert!(outcomes[0].is_appended());
    server.await.unwrap();
}

#[tokio::test]
async fn a_message_over_appendlimit_is_refused_without_being_sent() {
    // Arrange: a one-byte limit; only "A" fits.
    let (mut session, server) = scripted(
        "MULTIAPPEND LITERAL+ APPENDLIMIT=1",
        vec![(
            "M1 APPEND \"INBOX\" (\\Seen) \"30-Jun-2023 23:00:00 +0000\" {1+}\r\nA\r\n",
            "M1 OK [APPENDUID 9 5] Append completed\r\n",
        )],
    )
    .await;

    // Act
    let outcomes = session.append("INBOX", &two()).await.unwrap();

    // Assert
    assert_eq!(session.append_limit(), Some(1));
    assert_eq!(outcomes[0].uid(), Some(5));
    assert!(
        matches!(&outcomes[1], AppendOutcome::Rejected { reason }
            if reason.starts_with("[TOOBIG]") && reason.contains("APPENDLIMIT")),
        "{outcomes:?}"
    );
    server.await.unwrap();
}
