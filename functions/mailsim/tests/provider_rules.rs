//! The copy engine against a target that is a provider with rules of its own (the profile's
//! data, `domain::providers`) and that takes app tokens instead of passwords: Exchange
//! Online's `\Flagged` dropped on APPEND, its own folders a mail folder cannot be called, and
//! a kept token the server no longer accepts.

mod support;

use std::collections::VecDeque;
use std::sync::Arc;

use contract::{BulkAction, UserState};
use domain::mailbox::SpecialUse;
use time::OffsetDateTime;

use support::*;

/// Exchange Online stores `\Flagged` only by STORE: a Microsoft 365 target gets every flag of
/// the source back on each copy, and the messages without it stay as they were.
#[tokio::test]
async fn a_flag_microsoft_365_drops_on_append_is_set_again_on_each_copy() {
    let target = mailsim::Server::new();
    target.behaviour_mut(|b| {
        b.drop_flags_on_append = vec!["\\Flagged".into()];
        b.app_tokens.insert("t1".into());
    });
    let tokens = Arc::new(ModelTokens::default());
    let w = World::with_app_target(target, tokens.clone()).await;
    let date = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    for i in 0..12 {
        let flags: &[&str] = match i % 3 {
            0 => &["\\Seen", "\\Flagged"],
            1 => &["\\Flagged", "$Work"],
            _ => &["\\Seen"],
        };
        w.source
            .deliver(USER, FOLDERS[i % 2], body(i, true, 500), flags, date);
    }
    w.act(BulkAction::Start).await;
    w.drain(&mut VecDeque::new()).await;

    assert_eq!(w.user().await.state, UserState::Completed);
    for folder in &FOLDERS[..2] {
        let flags_of = |server: &mailsim::Server, name: &str| {
            let mut all: Vec<(Option<String>, Vec<String>)> = server
                .messages(USER, name)
                .into_iter()
                .map(|m| {
                    let mut flags = m.flags.clone();
                    flags.sort();
                    (m.message_id(), flags)
                })
                .collect();
            all.sort();
            all
        };
        let on_target = flags_of(&w.target, folder);
        assert_eq!(on_target.len(), 6, "{folder}");
        assert_eq!(flags_of(&w.source, folder), on_target, "{folder}");
    }
    assert_eq!(tokens.forgotten(), 0, "the token was good all along");
}

/// A kept token the server refuses (revoked, or ended early) is forgotten and the job signs
/// in with a new one: the copy completes without failing the user, and a token the authority
/// would hand out again is not asked for in a loop.
#[tokio::test]
async fn a_refused_token_is_replaced_and_the_copy_goes_on() {
    let target = mailsim::Server::new();
    // The server already takes only the authority's next token.
    target.behaviour_mut(|b| {
        b.app_tokens.insert("t2".into());
    });
    let tokens = Arc::new(ModelTokens::default());
    let w = World::with_app_target(target, tokens.clone()).await;
    let date = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    for i in 0..10 {
        w.source
            .deliver(USER, FOLDERS[i % 2], body(i, true, 500), &["\\Seen"], date);
    }
    w.act(BulkAction::Start).await;
    w.drain(&mut VecDeque::new()).await;

    assert_eq!(w.user().await.state, UserState::Completed);
    assert_eq!(tokens.forgotten(), 1, "one refusal, one new token");
    let copied: usize = FOLDERS[..2]
        .iter()
        .map(|f| w.target.messages(USER, f).len())
        .sum();
    assert_eq!(copied, 10);

    // A token the server never takes fails the user with the server's words after one new
    // try per job, not in a loop. (Later: the first pass's sessions, kept a moment for the
    // next job, have logged out.)
    w.app.close_parked_sessions().await;
    w.target.behaviour_mut(|b| b.app_tokens.clear());
    w.source
        .deliver(USER, FOLDERS[0], body(99, true, 500), &["\\Seen"], date);
    w.act(BulkAction::Delta).await;
    w.drain(&mut VecDeque::new()).await;
    let user = w.user().await;
    assert_eq!(user.state, UserState::Failed, "{:?}", user.last_error);
    assert!(
        user.last_error
            .as_deref()
            .is_some_and(|e| e.contains("target server") && e.contains("Authentication failed")),
        "{:?}",
        user.last_error
    );
    assert!(
        tokens.forgotten() <= 4,
        "{} tokens forgotten",
        tokens.forgotten()
    );
}

/// A source folder called like one of Exchange's own (Notes, Calendar) would be refused or
/// land among notes: on a Microsoft 365 target it and its children get `Notes_2`, with every
/// message, and the report says what it was called.
#[tokio::test]
async fn a_folder_named_like_one_of_exchanges_own_arrives_under_another_name() {
    let target = mailsim::Server::new();
    target.behaviour_mut(|b| {
        b.app_tokens.insert("t1".into());
        // As Exchange: no mail folder of that name.
        b.refuse_create.insert("Notes".into());
        b.refuse_create.insert("Notes/2020".into());
    });
    let tokens = Arc::new(ModelTokens::default());
    let w = World::with_app_target(target, tokens).await;
    w.source.create_folder(USER, "Notes", None);
    w.source.create_folder(USER, "Notes/2020", None);
    let date = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    for i in 0..6 {
        let folder = if i % 2 == 0 { "Notes" } else { "Notes/2020" };
        w.source
            .deliver(USER, folder, body(i, true, 300), &["\\Seen"], date);
    }
    w.act(BulkAction::Start).await;
    w.drain(&mut VecDeque::new()).await;

    assert_eq!(w.user().await.state, UserState::Completed);
    assert_eq!(w.target.messages(USER, "Notes_2").len(), 3);
    assert_eq!(w.target.messages(USER, "Notes_2/2020").len(), 3);
    let states = w.app.deps().store.list_folders(w.user.id).await.unwrap();
    let notes = states.iter().find(|f| f.source_name == "Notes").unwrap();
    assert_eq!(notes.target_name, "Notes_2");
    assert!(notes.skipped.is_empty(), "{:?}", notes.skipped);
}

/// Gmail shows one message in every label it has, and All Mail shows every message: from a
/// Gmail source a labelled message arrives once, in its label's folder; All Mail brings only
/// the archived mail without another label (and a message without a Message-ID, which cannot
/// be told apart for sure, in both); Starred is not copied again.
#[tokio::test]
async fn from_gmail_a_labelled_message_arrives_once_and_all_mail_brings_the_rest() {
    let tokens = Arc::new(ModelTokens::default());
    let w = World::with_gmail_source(tokens).await;
    w.source.behaviour_mut(|b| {
        b.app_tokens.insert("t1".into());
    });
    w.source
        .create_folder(USER, "[Gmail]/All Mail", Some(SpecialUse::All));
    w.source
        .create_folder(USER, "[Gmail]/Starred", Some(SpecialUse::Flagged));
    let date = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let deliver = |folder: &str, bytes: Vec<u8>| {
        w.source.deliver(USER, folder, bytes, &["\\Seen"], date);
    };
    // Labelled: INBOX and Archive, each message also in All Mail; one also starred.
    for i in 0..6 {
        let label = if i < 4 { "INBOX" } else { "Archive" };
        deliver(label, body(i, true, 400));
        deliver("[Gmail]/All Mail", body(i, true, 400));
    }
    deliver("[Gmail]/Starred", body(0, true, 400));
    // Archived: in All Mail only.
    for i in 6..9 {
        deliver("[Gmail]/All Mail", body(i, true, 400));
    }
    // Without a Message-ID: cannot be matched for sure, so it stays in both.
    deliver("INBOX", body(20, false, 400));
    deliver("[Gmail]/All Mail", body(20, false, 400));

    w.act(BulkAction::Start).await;
    w.drain(&mut VecDeque::new()).await;

    assert_eq!(w.user().await.state, UserState::Completed);
    let states = w.app.deps().store.list_folders(w.user.id).await.unwrap();
    assert!(
        states.iter().all(|f| f.source_name != "[Gmail]/Starred"),
        "Starred is a view"
    );
    let all_mail = states
        .iter()
        .find(|f| f.source_name == "[Gmail]/All Mail")
        .unwrap();
    assert_eq!(
        all_mail.source_messages, 4,
        "3 archived + 1 without Message-ID"
    );
    let count = |name: &str| w.target.messages(USER, name).len();
    assert_eq!(count("INBOX"), 5);
    assert_eq!(count("Archive"), 2);
    assert_eq!(count(&all_mail.target_name), 4);
    assert!(all_mail.skipped.is_empty());

    // A delta: a new labelled message and a new archived one, each arriving once.
    deliver("Archive", body(30, true, 400));
    deliver("[Gmail]/All Mail", body(30, true, 400));
    deliver("[Gmail]/All Mail", body(31, true, 400));
    w.act(BulkAction::Delta).await;
    w.drain(&mut VecDeque::new()).await;
    assert_eq!(w.user().await.state, UserState::Completed);
    assert_eq!(count("Archive"), 3);
    assert_eq!(count(&all_mail.target_name), 5);
    assert_eq!(count("INBOX"), 5);
}
