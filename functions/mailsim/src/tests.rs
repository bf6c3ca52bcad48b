//! Each behaviour, and the port's semantics, exercised through the `MailServers` and
//! `MailSession` traits as the engine uses them.

use std::time::Duration;

use contract::Security;
use domain::Endpoint;
use domain::mailbox::{
    AppendItem, AppendOutcome, FetchedMessage, MailServers, MailSession, MailboxError,
};
use domain::secret::Credential;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::{AppendRefusal, FETCH_FAILURE_TEXT, NO_FLAGS, REWRITE_HEADER, Server};

const WHEN: OffsetDateTime = datetime!(2024-05-01 10:00:00 UTC);

fn msg(id: &str) -> Vec<u8> {
    format!(
        "Message-ID: <{id}@example.org>\r\nFrom: a@example.org\r\nSubject: {id}\r\n\
         Date: Wed, 1 May 2024 10:00:00 +0000\r\n\r\nbody of {id}\r\n"
    )
    .into_bytes()
}

fn mid(id: &str) -> String {
    format!("<{id}@example.org>")
}

fn item(id: &str) -> AppendItem {
    AppendItem {
        body: msg(id),
        flags: vec!["\\Seen".into()],
        internaldate: WHEN,
    }
}

fn server() -> Server {
    let server = Server::new();
    server.add_user("ann", "pw");
    server
}

async fn try_open(server: &Server, password: &str) -> Result<Box<dyn MailSession>, MailboxError> {
    let endpoint = Endpoint {
        host: "mailsim.invalid".into(),
        port: 143,
        security: Security::Plaintext,
    };
    server
        .open(
            &endpoint,
            "ann",
            &Credential::password(password),
            Duration::from_secs(5),
        )
        .await
}

async fn open(server: &Server) -> Box<dyn MailSession> {
    try_open(server, "pw").await.expect("login")
}

async fn bodies(
    s: &mut Box<dyn MailSession>,
    uids: &[u32],
) -> (Vec<FetchedMessage>, Option<String>) {
    let mut got = Vec::new();
    let report = s
        .fetch_bodies(uids, &mut |m| {
            got.push(m);
            Ok(())
        })
        .await
        .expect("fetch");
    (got, report.server_error)
}

/// Whether `fut` is still pending after a while: a tripped server never answers.
async fn hangs<F: std::future::Future>(fut: F) -> bool {
    tokio::time::timeout(Duration::from_millis(50), fut)
        .await
        .is_err()
}

#[tokio::test]
async fn the_port_behaves_like_the_imap_adapter() {
    let server = server();
    for id in ["a", "b", "c"] {
        server.deliver("ann", "INBOX", msg(id), &["\\Seen"], WHEN);
    }
    let mut s = open(&server).await;
    assert!(matches!(
        s.examine("Nope").await,
        Err(MailboxError::FolderNotFound(_))
    ));
    let status = s.examine("inbox").await.unwrap();
    assert_eq!((status.uidnext, status.messages), (4, 3));
    let metas = s.fetch_meta(2, 3).await.unwrap();
    assert_eq!(metas.iter().map(|m| m.uid).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(metas[0].message_id.as_deref(), Some(mid("b").as_str()));
    assert_eq!(metas[0].size, msg("b").len() as u64);
    assert!(s.fetch_meta(3, 2).await.unwrap().is_empty());
    let (got, error) = bodies(&mut s, &[3, 99, 1, 3]).await;
    assert_eq!(got.iter().map(|m| m.meta.uid).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(got[0].body, msg("a"));
    assert_eq!(error, None);
    let found = s.find_by_message_id(&mid("c")).await.unwrap();
    assert_eq!(found.iter().map(|m| m.uid).collect::<Vec<_>>(), [3]);
    // The source is only examined: writing there is refused, as by a real server.
    assert!(matches!(
        s.delete(&[1]).await,
        Err(MailboxError::Refused(_))
    ));

    s.create_folder("Archive/2024", None).await.unwrap();
    s.create_folder("Archive/2024", None).await.unwrap();
    s.subscribe("Archive/2024").await.unwrap();
    let names: Vec<String> = s
        .list_folders()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, ["INBOX", "Archive", "Archive/2024"]);
    let outcomes = s
        .append("Archive/2024", vec![item("x"), item("y")])
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [
            AppendOutcome::Appended { uid: Some(1) },
            AppendOutcome::Appended { uid: Some(2) }
        ]
    );
    assert!(matches!(
        s.append("Missing", vec![item("z")]).await,
        Err(MailboxError::FolderNotFound(_))
    ));

    let before = s
        .select("Archive/2024")
        .await
        .unwrap()
        .highest_modseq
        .unwrap();
    s.set_flags(2, &["\\Flagged".into()]).await.unwrap();
    let changed = s.fetch_changed_since(before).await.unwrap();
    assert_eq!(changed.iter().map(|m| m.uid).collect::<Vec<_>>(), [2]);
    assert_eq!(changed[0].flags, ["\\Flagged"]);
    assert_eq!(s.delete(&[1, 7]).await.unwrap(), 1);
    assert_eq!(s.all_uids().await.unwrap(), [2]);
    s.logout().await;
}

#[tokio::test]
async fn a_wrong_password_is_an_auth_error() {
    let server = server();
    assert!(matches!(
        try_open(&server, "nope").await,
        Err(MailboxError::Auth(_))
    ));
}

#[tokio::test]
async fn exchange_rewriting_changes_size_but_keeps_message_id_and_date() {
    let server = server();
    server.behaviour_mut(|b| b.rewrite_on_append = true);
    let mut s = open(&server).await;
    s.append("INBOX", vec![item("a")]).await.unwrap();
    s.examine("INBOX").await.unwrap();
    let meta = &s.fetch_meta(1, 1).await.unwrap()[0];
    assert_eq!(
        meta.size,
        (msg("a").len() + REWRITE_HEADER.len() + 2) as u64
    );
    assert_eq!(meta.message_id.as_deref(), Some(mid("a").as_str()));
    assert_eq!(meta.internaldate, WHEN);
    let stored = &server.messages("ann", "INBOX")[0];
    assert!(stored.bytes.ends_with(&msg("a")));
}

#[tokio::test]
async fn gmail_drops_a_duplicate_message_id_but_answers_ok() {
    let server = server();
    server.behaviour_mut(|b| b.drop_duplicate_message_ids = true);
    let mut s = open(&server).await;
    let outcomes = s.append("INBOX", vec![item("a"), item("a")]).await.unwrap();
    assert_eq!(
        outcomes,
        [
            AppendOutcome::Appended { uid: Some(1) },
            AppendOutcome::Appended { uid: Some(1) }
        ]
    );
    assert_eq!(server.messages("ann", "INBOX").len(), 1);
}

#[tokio::test]
async fn without_uidplus_or_condstore_the_server_reports_less() {
    let server = server();
    server.behaviour_mut(|b| {
        b.uidplus = false;
        b.condstore = false;
    });
    let mut s = open(&server).await;
    let outcomes = s.append("INBOX", vec![item("a")]).await.unwrap();
    assert_eq!(outcomes, [AppendOutcome::Appended { uid: None }]);
    assert_eq!(s.select("INBOX").await.unwrap().highest_modseq, None);
    assert_eq!(s.fetch_meta(1, 1).await.unwrap()[0].modseq, None);
    assert!(matches!(
        s.fetch_changed_since(1).await,
        Err(MailboxError::Refused(_))
    ));
}

#[tokio::test]
async fn a_quota_fills_the_target_until_it_is_raised() {
    let server = server();
    let one = msg("a").len() as u64;
    server.behaviour_mut(|b| b.quota_bytes = Some(one + 10));
    let mut s = open(&server).await;
    let outcomes = s.append("INBOX", vec![item("a"), item("b")]).await.unwrap();
    assert_eq!(outcomes[0], AppendOutcome::Appended { uid: Some(1) });
    assert!(matches!(outcomes[1], AppendOutcome::TargetFull { .. }));
    assert_eq!(server.stored_bytes("ann"), one);
    server.behaviour_mut(|b| b.quota_bytes = Some(10 * one));
    let outcomes = s.append("INBOX", vec![item("b")]).await.unwrap();
    assert_eq!(outcomes, [AppendOutcome::Appended { uid: Some(2) }]);
}

#[tokio::test]
async fn refusals_start_after_the_configured_count_and_classify_like_imap() {
    let server = server();
    server.behaviour_mut(|b| {
        b.append_refusal = Some(AppendRefusal::ThrottledWithWait(Duration::from_millis(
            1500,
        )));
        b.append_refusal_after = 1;
    });
    let mut s = open(&server).await;
    let outcomes = s.append("INBOX", vec![item("a"), item("b")]).await.unwrap();
    assert_eq!(outcomes[0], AppendOutcome::Appended { uid: Some(1) });
    assert_eq!(
        outcomes[1],
        AppendOutcome::Deferred {
            reason: "Request is throttled. Suggested Backoff Time: 1500 milliseconds".into(),
            retry_after: Some(Duration::from_millis(1500)),
        }
    );
    server.behaviour_mut(|b| b.append_refusal = Some(AppendRefusal::OverQuota));
    let outcomes = s.append("INBOX", vec![item("c")]).await.unwrap();
    assert!(matches!(outcomes[0], AppendOutcome::TargetFull { .. }));
    server.behaviour_mut(|b| b.append_refusal = None);
    assert_eq!(
        s.append("INBOX", vec![item("c")]).await.unwrap(),
        [AppendOutcome::Appended { uid: Some(2) }]
    );
}

#[tokio::test]
async fn a_message_the_target_refuses_is_rejected_for_good() {
    let server = server();
    server.behaviour_mut(|b| {
        b.refuse_message_ids.insert(mid("bad"));
    });
    let mut s = open(&server).await;
    let outcomes = s
        .append("INBOX", vec![item("bad"), item("ok")])
        .await
        .unwrap();
    assert!(
        matches!(&outcomes[0], AppendOutcome::Rejected { reason } if reason.contains("malformed"))
    );
    assert_eq!(outcomes[1], AppendOutcome::Appended { uid: Some(1) });
}

#[tokio::test]
async fn a_fetch_failure_leaves_the_message_out_until_it_stops_failing() {
    let server = server();
    for id in ["a", "b", "c"] {
        server.deliver("ann", "INBOX", msg(id), NO_FLAGS, WHEN);
    }
    server.behaviour_mut(|b| {
        b.fetch_failures.insert(mid("b"), 2);
    });
    let mut s = open(&server).await;
    s.examine("INBOX").await.unwrap();
    for _ in 0..2 {
        let (got, error) = bodies(&mut s, &[1, 2, 3]).await;
        assert_eq!(got.iter().map(|m| m.meta.uid).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(error.as_deref(), Some(FETCH_FAILURE_TEXT));
    }
    let (got, error) = bodies(&mut s, &[1, 2, 3]).await;
    assert_eq!(got.len(), 3);
    assert_eq!(error, None);
}

#[tokio::test]
async fn renumbering_changes_uidvalidity_and_restarts_uids() {
    let server = server();
    for id in ["a", "b", "c"] {
        server.deliver("ann", "INBOX", msg(id), NO_FLAGS, WHEN);
    }
    server.expunge("ann", "INBOX", 1);
    let mut s = open(&server).await;
    let before = s.examine("INBOX").await.unwrap();
    let new = server.renumber("ann", "INBOX");
    let after = s.examine("INBOX").await.unwrap();
    assert_ne!(before.uidvalidity, after.uidvalidity);
    assert_eq!((after.uidvalidity, after.uidnext), (new, 3));
    let metas = s.fetch_meta(1, u32::MAX).await.unwrap();
    let ids: Vec<_> = metas
        .iter()
        .map(|m| (m.uid, m.message_id.clone().unwrap()))
        .collect();
    assert_eq!(ids, [(1, mid("b")), (2, mid("c"))]);
}

#[tokio::test]
async fn the_connection_limit_counts_sessions_until_logout_or_drop() {
    let server = server();
    server.behaviour_mut(|b| b.max_connections = Some(2));
    let first = open(&server).await;
    let second = open(&server).await;
    match try_open(&server, "pw").await {
        Err(MailboxError::Throttled {
            message,
            retry_after: None,
        }) => {
            assert!(message.starts_with("[LIMIT]"));
        }
        other => panic!("expected the connection limit, got {:?}", other.map(|_| ())),
    }
    first.logout().await;
    let third = open(&server).await;
    // An engine that crashes drops its sessions without a logout.
    drop(second);
    drop(third);
    assert_eq!(server.open_sessions("ann"), 0);
}

#[tokio::test]
async fn a_disconnect_resets_open_sessions_and_new_ones_work() {
    let server = server();
    server.behaviour_mut(|b| b.disconnect_after_commands = Some(2));
    let mut old = open(&server).await;
    old.examine("INBOX").await.unwrap();
    old.all_uids().await.unwrap();
    let reset = MailboxError::Connection("connection reset".into());
    assert_eq!(old.all_uids().await, Err(reset.clone()));
    assert_eq!(old.examine("INBOX").await.map(drop), Err(reset));
    let mut new = open(&server).await;
    new.examine("INBOX").await.unwrap();
    server.reset_commands();
    new.all_uids().await.unwrap();
    new.all_uids().await.unwrap();
}

#[tokio::test]
async fn a_fail_point_mid_append_stores_only_the_items_before_it() {
    let server = server();
    let mut s = open(&server).await;
    // The APPEND call is one operation and each item one more: the fourth from now is the
    // third item.
    server.fail_after(4);
    let engine = s.append("INBOX", vec![item("a"), item("b"), item("c"), item("d")]);
    tokio::select! {
        _ = engine => panic!("a crashed call must not complete"),
        () = server.wait_tripped() => {}
    }
    assert!(server.tripped());
    let stored: Vec<_> = server
        .messages("ann", "INBOX")
        .iter()
        .map(|m| m.message_id().unwrap())
        .collect();
    assert_eq!(stored, [mid("a"), mid("b")]);
    // Until the trip is cleared every call hangs, new sessions included.
    assert!(hangs(s.all_uids()).await);
    assert!(hangs(try_open(&server, "pw")).await);
    server.clear_trip();
    let mut s = open(&server).await;
    s.examine("INBOX").await.unwrap();
    assert_eq!(s.all_uids().await.unwrap(), [1, 2]);
}

#[tokio::test]
async fn a_fail_point_mid_fetch_hands_over_only_the_messages_before_it() {
    let server = server();
    for id in ["a", "b", "c"] {
        server.deliver("ann", "INBOX", msg(id), NO_FLAGS, WHEN);
    }
    let mut s = open(&server).await;
    s.examine("INBOX").await.unwrap();
    // The FETCH call, message 1, then message 2 trips.
    server.fail_after(3);
    let mut got = Vec::new();
    {
        let mut sink = |m: FetchedMessage| {
            got.push(m.meta.uid);
            Ok(())
        };
        let engine = s.fetch_bodies(&[1, 2, 3], &mut sink);
        tokio::select! {
            _ = engine => panic!("a crashed call must not complete"),
            () = server.wait_tripped() => {}
        }
    }
    assert_eq!(got, [1]);
}

#[tokio::test]
async fn wait_tripped_wakes_a_waiter_registered_before_the_trip() {
    let server = server();
    let waiter = tokio::spawn({
        let server = server.clone();
        async move { server.wait_tripped().await }
    });
    tokio::task::yield_now().await;
    server.fail_after(1);
    let engine = tokio::spawn({
        let server = server.clone();
        async move { open(&server).await.logout().await }
    });
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("woken")
        .unwrap();
    engine.abort();
}
