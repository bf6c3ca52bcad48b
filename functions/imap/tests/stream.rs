//! A large message streamed from a source's FETCH into a target's APPEND against real Dovecot:
//! byte-identical with its flags and date, over plaintext (LITERAL+), synchronizing literals,
//! TLS and COMPRESS=DEFLATE; a source that fails half-way leaves nothing on the target; a
//! refused APPEND leaves the source readable; a message gone opens as nothing. Checks go
//! through a fresh session or doveadm, never only through the sessions under test.

mod support;

use async_trait::async_trait;
use domain::mailbox::{BodyStream, MailboxError};
use imap::{AppendItem, AppendOutcome, ImapError, Session, UidSet};
use support::{USER, large_message, raw_flags, session, sha256, start};
use testbed::{Dovecot, DovecotOptions};
use time::macros::datetime;

/// What a server looks like without MULTIAPPEND, LITERAL+, UIDPLUS, CONDSTORE.
const BARE: &str = "IMAP4rev1 SASL-IR";

/// Puts `body` into INBOX with `\Seen` and a fixed date; returns its UID.
async fn seed(dovecot: &Dovecot, body: &[u8]) -> u32 {
    let mut s = session(dovecot).await;
    let item = AppendItem {
        body: body.to_vec(),
        flags: vec!["\\Seen".into(), "$Label1".into()],
        internaldate: datetime!(2020-02-03 04:05:06 +01:00),
    };
    let outcome = s.append("INBOX", &[item]).await.unwrap();
    s.examine("INBOX").await.unwrap();
    let metas = s.fetch_meta(&UidSet::all()).await.unwrap();
    assert!(outcome[0].is_appended());
    metas.last().unwrap().uid
}

/// The bodies of `folder`, by a session of its own.
async fn bodies(dovecot: &Dovecot, folder: &str) -> Vec<Vec<u8>> {
    let mut s = session(dovecot).await;
    s.examine(folder).await.unwrap();
    let mut out = Vec::new();
    s.fetch_bodies(&UidSet::all(), |m| {
        out.push(m.body);
        async { std::ops::ControlFlow::Continue(()) }
    })
    .await
    .unwrap();
    out
}

async fn tls_session(dovecot: &Dovecot) -> Session {
    let tls = imap::TlsConfig::native_roots()
        .with_extra_ca_pem(dovecot.ca_pem().unwrap())
        .unwrap();
    let endpoint = domain::Endpoint {
        host: "127.0.0.1".into(),
        port: dovecot.tls_port().unwrap(),
        security: contract::Security::Tls,
    };
    let mut s = Session::connect(&endpoint, &tls, support::TIMEOUT)
        .await
        .unwrap();
    s.login(USER, &domain::secret::Secret::new(support::PASSWORD))
        .await
        .unwrap();
    s
}

/// A body passing through, with the largest piece it handed out.
struct Counting<'a, 'b> {
    inner: &'a mut (dyn BodyStream + 'b),
    largest: usize,
    pieces: usize,
}

#[async_trait]
impl BodyStream for Counting<'_, '_> {
    fn size(&self) -> u64 {
        self.inner.size()
    }

    async fn next_chunk(&mut self) -> Result<Option<&[u8]>, MailboxError> {
        let piece = self.inner.next_chunk().await?;
        if let Some(p) = piece {
            self.largest = self.largest.max(p.len());
            self.pieces += 1;
        }
        Ok(piece)
    }
}

#[derive(Clone, Copy, Debug)]
enum Wire {
    Plain,
    Tls,
    Deflate,
}

/// Streams a message of `size` bytes from INBOX into Archive on one Dovecot (two sessions).
async fn streams_byte_identical(options: DovecotOptions, wire: Wire, size: usize) {
    // Arrange
    let dovecot = start(options.no_fsync());
    dovecot.create_mailbox(USER, "Archive").unwrap();
    let original = large_message("<streamed@example.com>", size);
    let uid = seed(&dovecot, &original).await;
    let (mut source, mut target) = match wire {
        Wire::Plain => (session(&dovecot).await, session(&dovecot).await),
        Wire::Tls => (tls_session(&dovecot).await, tls_session(&dovecot).await),
        Wire::Deflate => {
            let (s, on) = session(&dovecot).await.compress().await.unwrap();
            let (t, _) = session(&dovecot).await.compress().await.unwrap();
            assert!(on, "the server offers COMPRESS=DEFLATE");
            (s, t)
        }
    };
    source.examine("INBOX").await.unwrap();

    // Act
    let mut body = source
        .open_body(uid)
        .await
        .unwrap()
        .expect("the message is there");
    let announced = body.size();
    let mut counting = Counting {
        inner: &mut body,
        largest: 0,
        pieces: 0,
    };
    let outcome = target
        .append_stream(
            "Archive",
            &["\\Seen".to_owned(), "$Label1".to_owned()],
            datetime!(2020-02-03 04:05:06 +01:00),
            &mut counting,
        )
        .await
        .unwrap();
    let (largest, pieces) = (counting.largest, counting.pieces);
    drop(body);

    // Assert
    assert!(outcome.is_appended(), "{wire:?}: {outcome:?}");
    assert_eq!(announced, original.len() as u64);
    // Read as it arrived, never whole: no piece is larger than the transport's read buffer.
    assert!(
        largest <= 256 * 1024,
        "{wire:?}: a piece of {largest} bytes"
    );
    assert!(
        pieces as u64 >= announced / (256 * 1024),
        "{wire:?}: {pieces} pieces"
    );
    let copies = bodies(&dovecot, "Archive").await;
    assert_eq!(copies.len(), 1, "{wire:?}: one copy");
    assert_eq!(
        sha256(&copies[0]),
        sha256(&original),
        "{wire:?}: byte-identical"
    );
    let flags = raw_flags(&dovecot, "Archive");
    assert!(
        flags[0].1.contains("\\Seen") && flags[0].1.contains("$Label1"),
        "{flags:?}"
    );
    // Both sessions go on: the source's FETCH and the target's APPEND have completed.
    source.noop().await.expect("the source session goes on");
    target.noop().await.expect("the target session goes on");
    let again = source.open_body(uid).await.unwrap().unwrap().size();
    assert_eq!(again, original.len() as u64);
}

#[tokio::test]
async fn a_25_mb_message_streams_from_fetch_into_append_with_literal_plus() {
    streams_byte_identical(DovecotOptions::new(), Wire::Plain, 25 * 1024 * 1024).await;
}

#[tokio::test]
async fn a_message_streams_into_a_synchronizing_literal_on_a_bare_server() {
    streams_byte_identical(
        DovecotOptions::new().capabilities(BARE),
        Wire::Plain,
        3 << 20,
    )
    .await;
}

#[tokio::test]
async fn a_message_streams_over_tls_both_ways() {
    streams_byte_identical(DovecotOptions::new().tls(true), Wire::Tls, 6 << 20).await;
}

#[tokio::test]
async fn a_message_streams_through_compress_deflate_both_ways() {
    streams_byte_identical(DovecotOptions::new().compress(true), Wire::Deflate, 5 << 20).await;
}

#[tokio::test]
async fn a_small_message_streams_too() {
    streams_byte_identical(DovecotOptions::new(), Wire::Plain, 300).await;
}

/// A source that announces `size` bytes, delivers `given` of them, then fails (or ends).
struct Failing {
    bytes: Vec<u8>,
    given: usize,
    sent: bool,
    fail: bool,
}

#[async_trait]
impl BodyStream for Failing {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    async fn next_chunk(&mut self) -> Result<Option<&[u8]>, MailboxError> {
        if !self.sent {
            self.sent = true;
            return Ok(Some(&self.bytes[..self.given]));
        }
        if self.fail {
            Err(MailboxError::Connection("the source went away".into()))
        } else {
            Ok(None)
        }
    }
}

async fn a_broken_source_stores_nothing(options: DovecotOptions, fail: bool) {
    // Arrange
    let dovecot = start(options.no_fsync());
    dovecot.create_mailbox(USER, "Archive").unwrap();
    let mut target = session(&dovecot).await;
    let mut body = Failing {
        bytes: large_message("<half@example.com>", 4 << 20),
        given: 1 << 20,
        sent: false,
        fail,
    };

    // Act
    let result = target
        .append_stream(
            "Archive",
            &[],
            datetime!(2020-01-01 00:00:00 UTC),
            &mut body,
        )
        .await;

    // Assert
    match result {
        Err(ImapError::Source(e)) => assert!(e.is_transient(), "{e}"),
        other => panic!("expected the source's failure, got {other:?}"),
    }
    assert!(target.is_broken(), "the connection was dropped mid-message");
    drop(target);
    // The server saw the connection end inside the literal: give it a moment, then look.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(dovecot.message_count(USER, "Archive").unwrap(), 0);
    let mut fresh = session(&dovecot).await;
    let stored = fresh
        .append(
            "Archive",
            &[AppendItem {
                body: support::message("after", Some("<after@example.com>"), "x"),
                flags: vec![],
                internaldate: datetime!(2020-01-01 00:00:00 UTC),
            }],
        )
        .await
        .unwrap();
    assert!(stored[0].is_appended());
    assert_eq!(dovecot.message_count(USER, "Archive").unwrap(), 1);
}

#[tokio::test]
async fn a_source_failing_half_way_leaves_nothing_on_the_target() {
    a_broken_source_stores_nothing(DovecotOptions::new(), true).await;
}

#[tokio::test]
async fn a_source_ending_short_leaves_nothing_on_a_bare_target() {
    a_broken_source_stores_nothing(DovecotOptions::new().capabilities(BARE), false).await;
}

async fn a_refusal_leaves_the_source_readable(options: DovecotOptions) {
    // Arrange: the target takes at most 64 KiB.
    let source_server = start(DovecotOptions::new().no_fsync());
    let target_server = start(options.max_mail_size(64 * 1024).no_fsync());
    let original = large_message("<toobig@example.com>", 2 << 20);
    let uid = seed(&source_server, &original).await;
    let mut source = session(&source_server).await;
    source.examine("INBOX").await.unwrap();
    let mut target = session(&target_server).await;

    // Act
    let mut body = source.open_body(uid).await.unwrap().unwrap();
    let outcome = target
        .append_stream("INBOX", &[], datetime!(2020-01-01 00:00:00 UTC), &mut body)
        .await
        .unwrap();
    drop(body);

    // Assert
    match outcome {
        AppendOutcome::Rejected { reason } => assert!(reason.contains("[LIMIT]"), "{reason}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(target_server.message_count(USER, "INBOX").unwrap(), 0);
    source
        .noop()
        .await
        .expect("the source's FETCH was read to its end");
    target.noop().await.expect("the target session goes on");
}

#[tokio::test]
async fn a_refused_literal_plus_append_leaves_the_source_readable() {
    a_refusal_leaves_the_source_readable(DovecotOptions::new()).await;
}

#[tokio::test]
async fn a_refused_synchronizing_append_leaves_the_source_readable() {
    a_refusal_leaves_the_source_readable(DovecotOptions::new().capabilities(BARE)).await;
}

#[tokio::test]
async fn a_message_gone_opens_as_nothing_and_a_body_dropped_half_way_breaks_the_session() {
    // Arrange
    let dovecot = start(DovecotOptions::new().no_fsync());
    let uid = seed(&dovecot, &large_message("<drop@example.com>", 3 << 20)).await;
    let mut source = session(&dovecot).await;
    source.examine("INBOX").await.unwrap();

    // Act
    let gone = source.open_body(uid + 10).await.unwrap().is_none();
    let after_gone = source.noop().await;
    let mut body = source.open_body(uid).await.unwrap().unwrap();
    let first = body.next_chunk().await.unwrap().map(<[u8]>::len);
    drop(body);
    let after_drop = source.noop().await;

    // Assert
    assert!(gone, "no message, no body");
    assert!(after_gone.is_ok(), "{after_gone:?}");
    assert!(first.is_some_and(|n| n > 0));
    assert!(
        matches!(after_drop, Err(ImapError::Broken)),
        "its response is still on the wire: {after_drop:?}"
    );
}
