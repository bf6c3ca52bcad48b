//! Reading messages from a source against real Dovecot: metadata (flags and keywords,
//! INTERNALDATE with its offset, sizes, Message-ID), changes since a MODSEQ, bodies that are
//! byte-identical (8-bit headers, 25 MB) and that leave `\Seen` alone.

mod support;

use std::ops::ControlFlow;
use std::time::Duration;

use imap::{ImapError, UidSet};
use support::{USER, large_message, message, raw_flags, session, sha256, start};
use testbed::DovecotOptions;
use time::macros::datetime;

#[tokio::test]
async fn fetch_meta_reports_flags_keywords_dates_sizes_and_message_ids() {
    // Arrange
    let dovecot = start(DovecotOptions::new());
    let with_id = message("one", Some("<one@example.com>"), "first");
    let without_id = message("two", None, "second");
    let date = datetime!(2023-06-15 08:30:00 +05:30);
    let uid1 = dovecot
        .append_raw(
            USER,
            "INBOX",
            &with_id,
            &["\\Seen", "\\Flagged", "$Label1", "NonJunk"],
            Some(date),
        )
        .unwrap();
    let uid2 = dovecot
        .append_raw(USER, "INBOX", &without_id, &["\\Answered"], None)
        .unwrap();
    let mut session = session(&dovecot).await;
    session.examine("INBOX").await.unwrap();

    // Act
    let metas = session.fetch_meta(&UidSet::all()).await.unwrap();
    let only_second = session.fetch_meta(&UidSet::from_uid(uid2)).await.unwrap();
    let beyond = session
        .fetch_meta(&UidSet::from_uid(uid2 + 1))
        .await
        .unwrap();

    // Assert
    assert_eq!(metas.len(), 2);
    let (first, second) = (&metas[0], &metas[1]);
    assert_eq!(first.uid, uid1);
    assert_eq!(first.size as usize, with_id.len());
    let mut flags = first.flags.clone();
    flags.sort();
    assert_eq!(flags, ["$Label1", "NonJunk", "\\Flagged", "\\Seen"]);
    assert_eq!(first.message_id.as_deref(), Some("<one@example.com>"));
    assert_eq!(first.internaldate, date, "the same instant");
    assert!(first.modseq.is_some());

    // The offset is kept exactly as the server wrote it (Dovecot answers in its own zone).
    let mut raw = dovecot.raw_session(USER).unwrap();
    raw.command("EXAMINE INBOX").unwrap();
    let fetched = raw
        .command(&format!("UID FETCH {uid1} INTERNALDATE"))
        .unwrap();
    let text = fetched.lines().join("\n");
    let written = text.split("INTERNALDATE ").nth(1).unwrap();
    let written = testbed::parse_internaldate(&written[..written.rfind('"').unwrap() + 1]).unwrap();
    assert_eq!(first.internaldate.offset(), written.offset());
    assert_eq!(first.internaldate, written);

    assert_eq!(second.uid, uid2);
    assert_eq!(second.message_id, None);
    assert_eq!(second.flags, ["\\Answered"]);
    assert!(
        !second.flags.iter().any(|f| f == "\\Recent"),
        "\\Recent is never reported"
    );
    assert_eq!(only_second.len(), 1);
    assert_eq!(only_second[0].uid, uid2);
    assert!(
        beyond.is_empty(),
        "n:* above the highest UID is empty, not the last message"
    );
}

#[tokio::test]
async fn fetch_meta_needs_a_selected_folder() {
    let dovecot = start(DovecotOptions::new());
    let mut session = session(&dovecot).await;
    let result = session.fetch_meta(&UidSet::all()).await;
    assert!(
        matches!(result, Err(ImapError::NotSelected("fetch_meta"))),
        "{result:?}"
    );
}

#[tokio::test]
async fn fetch_bodies_are_byte_identical_and_leave_seen_alone() {
    // Arrange: an 8-bit header (raw UTF-8 and Latin-1), an ordinary message and 25 MB.
    let dovecot = start(DovecotOptions::new().no_fsync());
    let mut eight_bit = b"From: =?utf-8?q?J=C3=B6rg?= <j@example.com>\r\nSubject: Gr\xc3\xbc\xc3\x9fe aus K\xf6ln\r\nMessage-ID: <8bit@example.com>\r\n\r\nK\xf6rper \xe2\x9c\x93\r\n".to_vec();
    eight_bit.extend_from_slice(b"trailing line without CRLF at the end");
    let plain = message("plain", Some("<plain@example.com>"), "hello");
    let large = large_message("<large@example.com>", 25 * 1024 * 1024);
    let mut expected = Vec::new();
    for bytes in [&eight_bit, &plain, &large] {
        let uid = dovecot
            .append_raw(USER, "INBOX", bytes, &["$Keep"], None)
            .unwrap();
        expected.push((uid, sha256(bytes), bytes.len()));
    }
    let before = raw_flags(&dovecot, "INBOX");
    let mut session = session(&dovecot).await;
    session.examine("INBOX").await.unwrap();

    // Act
    let mut got = Vec::new();
    let summary = session
        .fetch_bodies(&UidSet::from_uids(expected.iter().map(|e| e.0)), |m| {
            got.push((m.meta.uid, sha256(&m.body), m.body.len(), m.meta.clone()));
            async { ControlFlow::Continue(()) }
        })
        .await
        .unwrap();

    // Assert
    assert_eq!(summary.delivered, 3);
    assert!(summary.missing.is_empty() && !summary.stopped && summary.server_error.is_none());
    assert_eq!(
        summary.bytes,
        expected.iter().map(|e| e.2 as u64).sum::<u64>()
    );
    for ((uid, hash, len), (got_uid, got_hash, got_len, meta)) in expected.iter().zip(&got) {
        assert_eq!(uid, got_uid);
        assert_eq!(len, got_len);
        assert!(hash == got_hash, "bytes of UID {uid} differ");
        assert_eq!(meta.size as usize, *len);
        assert_eq!(meta.flags, ["$Keep"]);
    }
    assert_eq!(got[0].3.message_id.as_deref(), Some("<8bit@example.com>"));
    assert_eq!(got[2].3.message_id.as_deref(), Some("<large@example.com>"));
    // Nothing on the source changed: no \Seen, as a separate session sees it.
    let after = raw_flags(&dovecot, "INBOX");
    assert_eq!(before, after);
    assert!(
        after.iter().all(|(_, flags)| !flags.contains("\\Seen")),
        "{after:?}"
    );
}

#[tokio::test]
async fn fetch_bodies_reports_missing_uids_and_can_be_stopped() {
    // Arrange
    let dovecot = start(DovecotOptions::new());
    let mut uids = Vec::new();
    for i in 0..5 {
        let bytes = message(&format!("m{i}"), Some(&format!("<m{i}@x>")), "body");
        uids.push(
            dovecot
                .append_raw(USER, "INBOX", &bytes, &[], None)
                .unwrap(),
        );
    }
    let mut session = session(&dovecot).await;
    session.select("INBOX").await.unwrap();
    session
        .delete_uids("INBOX", &UidSet::from_uids([uids[1]]))
        .await
        .unwrap();

    // Act: UID 1 was expunged, UID 99 never existed; stop after the second message.
    let mut wanted = uids.clone();
    wanted.push(99);
    let complete = session
        .fetch_bodies(&UidSet::from_uids(wanted.iter().copied()), |_| async {
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
    let mut seen = 0;
    let stopped = session
        .fetch_bodies(&UidSet::from_uids(uids.iter().copied()), |_| {
            seen += 1;
            let flow = if seen == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            };
            async move { flow }
        })
        .await
        .unwrap();

    // Assert
    assert_eq!(complete.delivered, 4);
    assert_eq!(complete.missing, [uids[1], 99]);
    assert_eq!(stopped.delivered, 2);
    assert!(stopped.stopped);
    assert_eq!(
        stopped.missing,
        [uids[1]],
        "what was dropped after stopping is not missing"
    );
    // The session is still in step with the server.
    assert_eq!(session.uid_search_all().await.unwrap().len(), 4);
}

#[tokio::test]
async fn fetch_bodies_feeds_a_channel_while_the_next_messages_download() {
    // Arrange
    let dovecot = start(DovecotOptions::new());
    for i in 0..20 {
        let bytes = message(
            &format!("m{i}"),
            Some(&format!("<m{i}@x>")),
            &"y".repeat(5000),
        );
        dovecot
            .append_raw(USER, "INBOX", &bytes, &[], None)
            .unwrap();
    }
    let mut session = session(&dovecot).await;
    session.examine("INBOX").await.unwrap();
    // A channel of one: the FETCH waits whenever the consumer is behind.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<imap::FetchedMessage>(1);
    let consumer = tokio::spawn(async move {
        let mut uids = Vec::new();
        while let Some(message) = rx.recv().await {
            tokio::time::sleep(Duration::from_millis(5)).await;
            uids.push(message.meta.uid);
        }
        uids
    });

    // Act
    let summary = session
        .fetch_bodies(&UidSet::all(), |message| {
            let tx = tx.clone();
            async move {
                match tx.send(message).await {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(_) => ControlFlow::Break(()),
                }
            }
        })
        .await
        .unwrap();
    drop(tx);

    // Assert
    assert_eq!(summary.delivered, 20);
    assert_eq!(consumer.await.unwrap(), (1..=20).collect::<Vec<u32>>());
}

#[tokio::test]
async fn changes_since_a_modseq_include_new_and_reflagged_messages_and_vanished_uids() {
    // Arrange
    let dovecot = start(DovecotOptions::new());
    for i in 0..4 {
        let bytes = message(&format!("m{i}"), Some(&format!("<m{i}@x>")), "b");
        dovecot
            .append_raw(USER, "INBOX", &bytes, &[], None)
            .unwrap();
    }
    let mut source = session(&dovecot).await;
    assert!(source.enable_qresync().await.unwrap());
    let before = source.examine("INBOX").await.unwrap();
    let modseq = before.highest_modseq.unwrap();
    // Another client flags UID 2, deletes UID 3 and a new message arrives.
    let mut other = support::session(&dovecot).await;
    other.select("INBOX").await.unwrap();
    other
        .execute(
            imap::imap_types::command::CommandBody::store(
                "2",
                imap::imap_types::flag::StoreType::Add,
                imap::imap_types::flag::StoreResponse::Silent,
                vec![imap::imap_types::flag::Flag::Flagged],
                true,
            )
            .unwrap(),
        )
        .await
        .unwrap();
    other
        .delete_uids("INBOX", &UidSet::from_uids([3]))
        .await
        .unwrap();
    dovecot
        .append_raw(
            USER,
            "INBOX",
            &message("new", Some("<new@x>"), "b"),
            &[],
            None,
        )
        .unwrap();

    // Act
    let changes = source.fetch_changed_since(modseq).await.unwrap();

    // Assert
    let changed: Vec<u32> = changes.changed.iter().map(|m| m.uid).collect();
    assert_eq!(changed, [2, 5]);
    assert_eq!(changes.changed[0].flags, ["\\Flagged"]);
    assert_eq!(changes.changed[1].message_id.as_deref(), Some("<new@x>"));
    assert!(changes.changed.iter().all(|m| m.modseq.unwrap() > modseq));
    assert_eq!(changes.vanished, Some(UidSet::from_uids([3])));
}

#[tokio::test]
async fn a_cancelled_fetch_leaves_a_session_that_refuses_further_commands() {
    // Arrange
    let dovecot = start(DovecotOptions::new());
    let large = large_message("<big@x>", 8 * 1024 * 1024);
    dovecot
        .append_raw(USER, "INBOX", &large, &[], None)
        .unwrap();
    let mut session = session(&dovecot).await;
    session.examine("INBOX").await.unwrap();

    // Act: the caller gives up half-way (its callback never returns, so the timeout fires
    // while the command is running, deterministically); the response is still on the wire.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(300),
        session.fetch_bodies(&UidSet::all(), |_| {
            std::future::pending::<ControlFlow<()>>()
        }),
    )
    .await;
    let next = session.noop().await;

    // Assert
    assert!(
        cancelled.is_err(),
        "the fetch cannot finish while its callback never returns"
    );
    assert!(matches!(next, Err(ImapError::Broken)), "{next:?}");
    assert!(session.is_broken());
}

#[tokio::test]
async fn folder_bytes_adds_up_the_sizes_of_the_selected_folder() {
    // Arrange
    let dovecot = start(DovecotOptions::new());
    let bodies = [
        message("one", Some("<one@example.com>"), "first"),
        message("two", None, &"x".repeat(70_000)),
    ];
    for body in &bodies {
        dovecot.append_raw(USER, "INBOX", body, &[], None).unwrap();
    }
    dovecot.create_mailbox(USER, "Empty").unwrap();
    let mut session = session(&dovecot).await;

    // Act
    session.examine("INBOX").await.unwrap();
    let inbox = session.folder_bytes().await.unwrap();
    session.examine("Empty").await.unwrap();
    let empty = session.folder_bytes().await.unwrap();

    // Assert
    assert_eq!(inbox, bodies.iter().map(|b| b.len() as u64).sum::<u64>());
    assert_eq!(empty, 0);
}
