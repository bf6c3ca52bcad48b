//! The copy engine with Gmail's labels on either side (mailsim's `gmail_labels`: one message
//! in every label with one X-GM-MSGID, All Mail showing all, COPY applying a label): from
//! Gmail each message arrives once per label and is told apart by its X-GM-MSGID; to Gmail a
//! message already in the account gets the folder's label instead of a second upload.

mod support;

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use contract::{BulkAction, UserState};
use domain::mailbox::SpecialUse;
use time::OffsetDateTime;

use support::*;

const ALL_MAIL: &str = "[Gmail]/All Mail";

fn date() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
}

/// Subjects of a folder's messages, sorted: which messages it shows.
fn subjects(server: &mailsim::Server, folder: &str) -> Vec<String> {
    let mut all: Vec<String> = server
        .messages(USER, folder)
        .iter()
        .map(|m| {
            let text = String::from_utf8_lossy(&m.bytes);
            let subject = text.lines().find(|l| l.starts_with("Subject: ")).unwrap();
            subject["Subject: ".len()..].to_owned()
        })
        .collect();
    all.sort();
    all
}

fn named(indexes: &[usize]) -> Vec<String> {
    let mut all: Vec<String> = indexes.iter().map(|i| format!("message {i}")).collect();
    all.sort();
    all
}

/// With X-GM-EXT-1 a Gmail message is known by its X-GM-MSGID: a labelled message without a
/// Message-ID arrives once, in its label (matching by header had to keep it in All Mail too),
/// and a second message with the very same bytes and date that is only archived arrives as
/// well (Message-ID, size and date would have taken it for the labelled one).
#[tokio::test]
async fn from_gmail_each_message_arrives_once_per_label_known_by_its_gmail_id() {
    let w = World::with_gmail_source(Arc::new(ModelTokens::default())).await;
    w.source.behaviour_mut(|b| {
        b.app_tokens.insert("t1".into());
        b.gmail_labels = true;
    });
    w.source
        .create_folder(USER, ALL_MAIL, Some(SpecialUse::All));
    w.source
        .create_folder(USER, "[Gmail]/Starred", Some(SpecialUse::Flagged));
    let deliver = |labels: &[&str], index: usize, with_id: bool, flags: &[&str]| {
        w.source
            .deliver_labelled(USER, labels, body(index, with_id, 400), flags, date());
    };
    for i in 0..4 {
        deliver(&["INBOX"], i, true, &["\\Seen"]);
    }
    deliver(&["Archive"], 4, true, &["\\Seen"]);
    deliver(&["INBOX", "Archive"], 5, true, &[]);
    deliver(
        &["INBOX", "[Gmail]/Starred"],
        10,
        true,
        &["\\Seen", "\\Flagged"],
    );
    deliver(&["INBOX"], 20, false, &["\\Seen"]);
    for i in 6..9 {
        deliver(&[ALL_MAIL], i, true, &["\\Seen"]);
    }
    // Another message with message 0's bytes and date, archived.
    deliver(&[ALL_MAIL], 0, true, &["\\Seen"]);
    assert_eq!(w.source.messages(USER, ALL_MAIL).len(), 12);

    w.act(BulkAction::Start).await;
    w.drain(&mut VecDeque::new()).await;

    assert_eq!(w.user().await.state, UserState::Completed);
    assert_eq!(
        subjects(&w.target, "INBOX"),
        named(&[0, 1, 2, 3, 5, 10, 20])
    );
    assert_eq!(subjects(&w.target, "Archive"), named(&[4, 5]));
    let states = w.app.deps().store.list_folders(w.user.id).await.unwrap();
    assert!(states.iter().all(|f| f.source_name != "[Gmail]/Starred"));
    let all_mail = states.iter().find(|f| f.source_name == ALL_MAIL).unwrap();
    assert_eq!(
        subjects(&w.target, &all_mail.target_name),
        named(&[0, 6, 7, 8]),
        "archived mail, the second message 0 included"
    );
    assert_eq!(all_mail.source_messages, 4);
    assert!(all_mail.skipped.is_empty());
}

/// A Gmail target (labels on, All Mail) fed by an IMAP source.
async fn gmail_target_world() -> World {
    let target = mailsim::Server::new();
    target.behaviour_mut(|b| {
        b.app_tokens.insert("t1".into());
        b.gmail_labels = true;
    });
    let w = World::with_gmail_target(target, Arc::new(ModelTokens::default()), false).await;
    w.target
        .create_folder(USER, ALL_MAIL, Some(SpecialUse::All));
    w
}

/// A Gmail target with All Mail, and a source keeping messages 0 and 1 (and one without a
/// Message-ID) in both INBOX and Archive.
async fn to_gmail_world() -> World {
    let w = gmail_target_world().await;
    for i in 0..6 {
        deliver(&w, "INBOX", i, true);
    }
    for i in [0, 1, 6] {
        deliver(&w, "Archive", i, true);
    }
    deliver(&w, "INBOX", 20, false);
    deliver(&w, "Archive", 20, false);
    w
}

fn deliver(w: &World, folder: &str, index: usize, with_id: bool) {
    w.source
        .deliver(USER, folder, body(index, with_id, 400), &["\\Seen"], date());
}

/// What the Gmail target holds after the first pass, however it got there.
fn assert_labelled_once(w: &World) {
    assert_eq!(subjects(&w.target, "INBOX"), named(&[0, 1, 2, 3, 4, 5, 20]));
    assert_eq!(subjects(&w.target, "Archive"), named(&[0, 1, 6, 20]));
    assert_eq!(
        subjects(&w.target, ALL_MAIL),
        named(&[0, 1, 2, 3, 4, 5, 6, 20, 20]),
        "one message per Message-ID; the one without is there twice"
    );
}

/// To Gmail: a message the source keeps in two folders is uploaded once and labelled twice,
/// first pass and delta alike; a message without a Message-ID, which cannot be found for
/// sure, is uploaded for each folder (a copy too many rather than one too few).
#[tokio::test]
async fn to_gmail_a_message_in_two_folders_is_uploaded_once_and_labelled_twice() {
    let w = to_gmail_world().await;
    w.act(BulkAction::Start).await;
    w.drain(&mut VecDeque::new()).await;

    assert_eq!(w.user().await.state, UserState::Completed);
    assert_labelled_once(&w);
    let size = |i: usize, with_id: bool| body(i, with_id, 400).len() as u64;
    let once: u64 = (0..7).map(|i| size(i, true)).sum();
    assert_eq!(w.target.uploaded_bytes(), once + 2 * size(20, false));
    // One message in both labels: the same X-GM-MSGID.
    let ids = |folder: &str| -> BTreeSet<u64> {
        w.target
            .messages(USER, folder)
            .iter()
            .filter(|m| m.message_id().is_some())
            .filter_map(|m| m.gmail_id)
            .collect()
    };
    assert_eq!(ids("Archive").intersection(&ids("INBOX")).count(), 2);

    // A delta: a message filed into Archive that INBOX brought before is labelled, not sent.
    let before = w.target.uploaded_bytes();
    deliver(&w, "Archive", 3, true);
    w.act(BulkAction::Delta).await;
    w.drain(&mut VecDeque::new()).await;
    assert_eq!(w.user().await.state, UserState::Completed);
    assert_eq!(subjects(&w.target, "Archive"), named(&[0, 1, 3, 6, 20]));
    assert_eq!(w.target.uploaded_bytes(), before);
    assert_eq!(w.target.messages(USER, ALL_MAIL).len(), 9);
}

/// A worker that dies anywhere on the Gmail side (before a COPY, after it and before the
/// checkpoint, mid-upload) leaves nothing twice and nothing missing: the next attempt finds
/// the labels and uploads already made like any copy of the chunk.
#[tokio::test]
async fn to_gmail_a_crash_at_any_step_loses_and_duplicates_nothing() {
    for crash_at in (1..80).step_by(2) {
        let w = to_gmail_world().await;
        w.act(BulkAction::Start).await;
        w.drain(&mut VecDeque::from([crash_at, crash_at])).await;
        assert_eq!(
            w.user().await.state,
            UserState::Completed,
            "crash at {crash_at}"
        );
        assert_labelled_once(&w);
    }
}

/// On Gmail, Trash and Spam exclude every other label: a COPY into Trash would take the
/// message out of INBOX. A message the source keeps in INBOX and in Trash is therefore
/// uploaded into Trash, never labelled there, and stays in INBOX.
#[tokio::test]
async fn to_gmail_trash_gets_an_upload_never_a_label() {
    let w = gmail_target_world().await;
    w.target
        .create_folder(USER, "[Gmail]/Trash", Some(SpecialUse::Trash));
    w.source
        .create_folder(USER, "Trash", Some(SpecialUse::Trash));
    for i in 0..3 {
        deliver(&w, "INBOX", i, true);
    }
    deliver(&w, "Trash", 1, true);

    w.act(BulkAction::Start).await;
    w.drain(&mut VecDeque::new()).await;

    assert_eq!(w.user().await.state, UserState::Completed);
    assert_eq!(subjects(&w.target, "INBOX"), named(&[0, 1, 2]));
    assert_eq!(subjects(&w.target, "[Gmail]/Trash"), named(&[1]));
    let size = body(1, true, 400).len() as u64;
    assert_eq!(
        w.target.uploaded_bytes(),
        4 * size,
        "the Trash copy was uploaded, not labelled"
    );
}
