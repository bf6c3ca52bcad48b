//! Writing to a target against real Dovecot: MULTIAPPEND with LITERAL+ and, on a server
//! announcing neither, single APPENDs with synchronizing literals; APPENDUIDs; flags and
//! INTERNALDATE preserved; a message over the size limit refused on its own; finding an
//! appended message by Message-ID; deleting exactly the given UIDs; copying into another folder
//! with the copies' UIDs.

mod support;

use imap::{AppendItem, AppendOutcome, ImapError, UidSet};
use support::{USER, message, raw_flags, session, sha256, start};
use testbed::DovecotOptions;
use time::macros::datetime;

/// What a server looks like without MULTIAPPEND, LITERAL+, UIDPLUS, CONDSTORE.
const BARE: &str = "IMAP4rev1 SASL-IR";

fn items() -> Vec<AppendItem> {
    vec![
        AppendItem {
            body: message("one", Some("<one@example.com>"), "first"),
            flags: vec!["\\Seen".into(), "$Label1".into(), "\\Recent".into()],
            internaldate: datetime!(2021-03-04 05:06:07 +02:00),
        },
        AppendItem {
            body: message("two", Some("<two@example.com>"), "second"),
            flags: vec!["\\Flagged".into(), "\\Answered".into(), "NonJunk".into()],
            internaldate: datetime!(2019-12-31 23:59:59 -08:00),
        },
        AppendItem {
            body: message("three", None, "third"),
            flags: vec![],
            internaldate: datetime!(2024-02-29 12:00:00 UTC),
        },
    ]
}

fn sorted(mut flags: Vec<String>) -> Vec<String> {
    flags.sort();
    flags
}

async fn appends_preserve_flags_and_dates(options: DovecotOptions, expect_uids: bool) {
    // Arrange
    let dovecot = start(options.no_fsync());
    dovecot.create_mailbox(USER, "Archive").unwrap();
    let mut target = session(&dovecot).await;
    let items = items();

    // Act
    let outcomes = target.append("Archive", &items).await.unwrap();

    // Assert
    assert_eq!(outcomes.len(), 3);
    assert!(
        outcomes.iter().all(AppendOutcome::is_appended),
        "{outcomes:?}"
    );
    let uids: Vec<Option<u32>> = outcomes.iter().map(AppendOutcome::uid).collect();
    if expect_uids {
        assert_eq!(uids, [Some(1), Some(2), Some(3)]);
        let status = target.status("Archive").await.unwrap();
        assert_eq!(
            status.uidnext, 4,
            "the APPENDUIDs are the folder's newest UIDs"
        );
    } else {
        // Dovecot sends APPENDUID even when it does not announce UIDPLUS; what it sends is
        // used, one UID per single APPEND.
        assert!(
            uids == [None, None, None] || uids == [Some(1), Some(2), Some(3)],
            "{uids:?}"
        );
    }
    assert_eq!(dovecot.message_count(USER, "Archive").unwrap(), 3);
    target.examine("Archive").await.unwrap();
    let metas = target.fetch_meta(&UidSet::all()).await.unwrap();
    assert_eq!(metas.len(), 3);
    for (item, meta) in items.iter().zip(&metas) {
        let wanted: Vec<String> = item
            .flags
            .iter()
            .filter(|f| *f != "\\Recent")
            .cloned()
            .collect();
        assert_eq!(sorted(meta.flags.clone()), sorted(wanted));
        assert_eq!(meta.internaldate, item.internaldate, "same instant");
        assert_eq!(meta.size as usize, item.body.len());
    }
    let mut bodies = Vec::new();
    target
        .fetch_bodies(&UidSet::all(), |m| {
            bodies.push(sha256(&m.body));
            async { std::ops::ControlFlow::Continue(()) }
        })
        .await
        .unwrap();
    let wanted: Vec<[u8; 32]> = items.iter().map(|i| sha256(&i.body)).collect();
    assert_eq!(bodies, wanted);
    // A separate session agrees on the flags.
    let raw = raw_flags(&dovecot, "Archive");
    assert!(
        raw[0].1.contains("\\Seen") && raw[0].1.contains("$Label1"),
        "{raw:?}"
    );
}

#[tokio::test]
async fn multiappend_with_literal_plus_preserves_flags_and_dates_and_returns_uids() {
    appends_preserve_flags_and_dates(DovecotOptions::new(), true).await;
}

#[tokio::test]
async fn single_appends_with_synchronizing_literals_on_a_bare_server() {
    appends_preserve_flags_and_dates(DovecotOptions::new().capabilities(BARE), false).await;
}

async fn an_oversized_message_is_rejected_alone(options: DovecotOptions) {
    // Arrange
    let dovecot = start(options.max_mail_size(64 * 1024));
    let mut target = session(&dovecot).await;
    let mut items = items();
    items.insert(
        1,
        AppendItem {
            body: support::large_message("<big@example.com>", 200 * 1024),
            flags: vec!["\\Seen".into()],
            internaldate: datetime!(2020-01-01 00:00:00 UTC),
        },
    );

    // Act
    let outcomes = target.append("INBOX", &items).await.unwrap();

    // Assert
    assert_eq!(outcomes.len(), 4);
    match &outcomes[1] {
        AppendOutcome::Rejected { reason } => {
            assert!(reason.starts_with("[LIMIT]"), "{reason}");
            assert!(reason.contains("size"), "{reason}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    for i in [0, 2, 3] {
        assert!(outcomes[i].is_appended(), "{i}: {outcomes:?}");
    }
    assert_eq!(dovecot.message_count(USER, "INBOX").unwrap(), 3);
    // The session goes on.
    target.noop().await.unwrap();
    let again = target.append("INBOX", &items[..1]).await.unwrap();
    assert!(again[0].is_appended());
}

#[tokio::test]
async fn an_oversized_message_in_a_multiappend_is_rejected_and_the_others_stored() {
    an_oversized_message_is_rejected_alone(DovecotOptions::new()).await;
}

#[tokio::test]
async fn an_oversized_message_is_refused_before_its_synchronizing_literal_is_sent() {
    an_oversized_message_is_rejected_alone(DovecotOptions::new().capabilities(BARE)).await;
}

#[tokio::test]
async fn appending_to_a_missing_folder_is_an_error_for_the_whole_call() {
    // Arrange
    let dovecot = start(DovecotOptions::new());
    let mut target = session(&dovecot).await;

    // Act
    let result = target.append("Missing", &items()).await;

    // Assert
    match result {
        Err(ImapError::No { text, .. }) => assert!(text.contains("TRYCREATE"), "{text}"),
        other => panic!("expected TRYCREATE, got {other:?}"),
    }
    target.create_folder("Missing").await.unwrap();
    assert_eq!(target.append("Missing", &items()).await.unwrap().len(), 3);
}

#[tokio::test]
async fn an_appended_message_is_found_by_its_message_id() {
    // Arrange
    let dovecot = start(DovecotOptions::new());
    let mut target = session(&dovecot).await;
    target.create_folder("Copied").await.unwrap();
    let mut items = items();
    // A message whose Message-ID contains the other's as a substring must not match.
    items.push(AppendItem {
        body: message("four", Some("<xone@example.com>"), "x"),
        flags: vec![],
        internaldate: datetime!(2020-01-01 00:00:00 UTC),
    });
    let outcomes = target.append("Copied", &items).await.unwrap();

    // Act
    let candidates = target
        .search_message_id("Copied", "<one@example.com>")
        .await
        .unwrap();
    let found = target
        .find_by_message_id("Copied", "<one@example.com>")
        .await
        .unwrap();
    let none = target
        .find_by_message_id("Copied", "<never@example.com>")
        .await
        .unwrap();

    // Assert
    assert!(candidates.contains(&outcomes[0].uid().unwrap()));
    assert_eq!(found.len(), 1);
    assert_eq!(Some(found[0].uid), outcomes[0].uid());
    assert_eq!(found[0].size as usize, items[0].body.len());
    assert_eq!(found[0].internaldate, items[0].internaldate);
    assert!(none.is_empty());
}

#[tokio::test]
async fn a_message_without_message_id_is_found_by_size_and_date() {
    // Arrange: the third item has no Message-ID; a decoy has the same size, another date.
    let dovecot = start(DovecotOptions::new());
    let mut target = session(&dovecot).await;
    let items = items();
    let mut decoy = items[2].clone();
    decoy.internaldate = datetime!(2024-02-29 12:00:01 UTC);
    let outcomes = target.append("INBOX", &items).await.unwrap();
    target.append("INBOX", &[decoy]).await.unwrap();

    // Act
    let found = target
        .find_by_size_and_date("INBOX", items[2].body.len() as u32, items[2].internaldate)
        .await
        .unwrap();

    // Assert
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(Some(found[0].uid), outcomes[2].uid());
    assert_eq!(found[0].message_id, None);
}

#[tokio::test]
async fn set_flags_replaces_the_flags_of_exactly_those_messages() {
    // Arrange
    let dovecot = start(DovecotOptions::new());
    let mut target = session(&dovecot).await;
    target.append("INBOX", &items()).await.unwrap();
    target.select("INBOX").await.unwrap();

    // Act
    target
        .set_flags(
            &UidSet::from_uids([1, 3]),
            &["\\Answered", "$Forwarded", "\\Recent"],
        )
        .await
        .unwrap();

    // Assert
    let metas = target.fetch_meta(&UidSet::all()).await.unwrap();
    assert_eq!(sorted(metas[0].flags.clone()), ["$Forwarded", "\\Answered"]);
    assert_eq!(
        sorted(metas[1].flags.clone()),
        sorted(items()[1].flags.clone()),
        "untouched"
    );
    assert_eq!(sorted(metas[2].flags.clone()), ["$Forwarded", "\\Answered"]);
}

#[tokio::test]
async fn delete_uids_removes_exactly_those() {
    // Arrange
    let dovecot = start(DovecotOptions::new());
    let mut target = session(&dovecot).await;
    let mut batch = Vec::new();
    for i in 0..6 {
        batch.push(AppendItem {
            body: message(&format!("m{i}"), Some(&format!("<m{i}@x>")), "b"),
            flags: vec![],
            internaldate: datetime!(2020-01-01 00:00:00 UTC),
        });
    }
    target.append("INBOX", &batch).await.unwrap();

    // Act
    let removed = target
        .delete_uids("INBOX", &UidSet::from_uids([2, 4, 5]))
        .await
        .unwrap();

    // Assert
    assert_eq!(removed, 3);
    assert_eq!(target.uid_search_all().await.unwrap(), [1, 3, 6]);
    assert_eq!(dovecot.message_count(USER, "INBOX").unwrap(), 3);
    assert!(target.selected().is_some_and(|s| !s.read_only));
}

#[tokio::test]
async fn copy_uids_reports_each_copy_and_leaves_out_what_is_gone() {
    // Arrange
    let dovecot = start(DovecotOptions::new());
    let mut target = session(&dovecot).await;
    target.create_folder("Labelled").await.unwrap();
    target.append("INBOX", &items()).await.unwrap();
    target.select("INBOX").await.unwrap();

    // Act: 2 and 3 exist, 9 never did.
    let copies = target.copy_uids(&[3, 9, 2], "Labelled").await.unwrap();

    // Assert: in the order given, each with the UID COPYUID gave it (copied in UID order).
    assert_eq!(copies, [(3, Some(2)), (2, Some(1))]);
    let originals = target.fetch_meta(&UidSet::from_uids([2, 3])).await.unwrap();
    target.select("Labelled").await.unwrap();
    let copied = target.fetch_meta(&UidSet::all()).await.unwrap();
    assert_eq!(copied.len(), 2);
    for (copy, original) in [(2, 3), (1, 2)] {
        let copy = copied.iter().find(|m| m.uid == copy).unwrap();
        let original = originals.iter().find(|m| m.uid == original).unwrap();
        assert_eq!(
            (copy.size, copy.internaldate, &copy.message_id),
            (original.size, original.internaldate, &original.message_id)
        );
    }
    assert_eq!(dovecot.message_count(USER, "INBOX").unwrap(), 3);
}

#[tokio::test]
async fn without_uidplus_delete_refuses_to_expunge_other_deleted_messages() {
    // Arrange
    let dovecot = start(DovecotOptions::new().capabilities(BARE));
    for i in 0..3 {
        let bytes = message(&format!("m{i}"), None, "b");
        let flags: &[&str] = if i == 0 { &["\\Deleted"] } else { &[] };
        dovecot
            .append_raw(USER, "INBOX", &bytes, flags, None)
            .unwrap();
    }
    let mut target = session(&dovecot).await;

    // Act
    let refused = target.delete_uids("INBOX", &UidSet::from_uids([2])).await;
    let allowed = target
        .delete_uids("INBOX", &UidSet::from_uids([1, 2]))
        .await;

    // Assert
    assert!(
        matches!(refused, Err(ImapError::Unsupported(_))),
        "{refused:?}"
    );
    assert_eq!(allowed.unwrap(), 2);
    assert_eq!(target.uid_search_all().await.unwrap(), [3]);
}

#[tokio::test]
async fn a_large_message_goes_up_and_comes_back_over_tls() {
    // Arrange: implicit TLS, so literals go through rustls in both directions.
    let dovecot = start(DovecotOptions::new().tls(true).no_fsync());
    let tls = imap::TlsConfig::native_roots()
        .with_extra_ca_pem(dovecot.ca_pem().unwrap())
        .unwrap();
    let endpoint = domain::Endpoint {
        host: "127.0.0.1".into(),
        port: dovecot.tls_port().unwrap(),
        security: contract::Security::Tls,
    };
    let mut target = imap::Session::connect(&endpoint, &tls, support::TIMEOUT)
        .await
        .unwrap();
    target
        .login(USER, &domain::secret::Secret::new(support::PASSWORD))
        .await
        .unwrap();
    let (big, small, outcomes, hashes) = round_trip(&mut target, 6 * 1024 * 1024).await;

    // Assert
    assert!(target.is_tls());
    assert!(outcomes.iter().all(AppendOutcome::is_appended));
    assert_eq!(hashes, [sha256(&big), sha256(&small)]);
}

/// Appends a large message of `size` bytes and a small one, then fetches the folder back:
/// (large, small, the append outcomes, the SHA-256 of each fetched body in order).
async fn round_trip(
    target: &mut imap::Session,
    size: usize,
) -> (Vec<u8>, Vec<u8>, Vec<AppendOutcome>, Vec<[u8; 32]>) {
    let big = support::large_message("<large@example.com>", size);
    let batch = vec![
        AppendItem {
            body: big.clone(),
            flags: vec!["\\Seen".into()],
            internaldate: datetime!(2020-01-01 00:00:00 UTC),
        },
        items().remove(0),
    ];
    let outcomes = target.append("INBOX", &batch).await.unwrap();
    target.examine("INBOX").await.unwrap();
    let mut hashes = Vec::new();
    target
        .fetch_bodies(&UidSet::all(), |m| {
            hashes.push(sha256(&m.body));
            async { std::ops::ControlFlow::Continue(()) }
        })
        .await
        .unwrap();
    let small = batch.into_iter().nth(1).unwrap().body;
    (big, small, outcomes, hashes)
}

#[tokio::test]
async fn messages_go_up_and_come_back_through_compress_deflate() {
    // Arrange: a server with COMPRESS=DEFLATE (Dovecot's imap_zlib plugin) and one without.
    let dovecot = start(
        DovecotOptions::default()
            .user(USER, support::PASSWORD)
            .compress(true),
    );
    let (mut target, on) = session(&dovecot).await.compress().await.unwrap();

    // Act
    let (big, small, outcomes, hashes) = round_trip(&mut target, 3 * 1024 * 1024 + 17).await;
    let plain = start(DovecotOptions::default().user(USER, support::PASSWORD));
    let (plain_session, plain_on) = session(&plain).await.compress().await.unwrap();

    // Assert
    assert!(
        on && target.is_compressed(),
        "the server offered COMPRESS=DEFLATE"
    );
    assert!(outcomes.iter().all(AppendOutcome::is_appended));
    assert_eq!(hashes, [sha256(&big), sha256(&small)]);
    target
        .noop()
        .await
        .expect("the session goes on after a large fetch");
    assert!(
        !plain_on && !plain_session.is_compressed(),
        "nothing changes without it"
    );
}
