//! The flags of copies an interrupted attempt left behind: at every crash point of a first
//! pass, each copy ends with the flags of its source message, as the copy map pairs them.

mod support;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use contract::{BulkAction, CopyOptions, UserState};
use domain::app::CopySettings;
use time::OffsetDateTime;

use support::*;

/// Copies a mailbox with a crash at the `n`-th operation of the first copy job (odd: the
/// target's, even: the source's), then checks that the target holds the source's messages
/// with their flags.
async fn crashed_copy(w: &World, n: u64) {
    // The plan runs through (its crash point is never reached); INBOX's job meets `n`.
    let mut crashes: VecDeque<u64> = [1_000_000, n].into_iter().collect();
    w.act(BulkAction::Start).await;
    w.drain(&mut crashes).await;
    let user = w.user().await;
    assert_eq!(
        user.state,
        UserState::Completed,
        "crash at {n}: {:?}",
        user.last_error
    );
    assert_eq!(bag(&w.source), bag(&w.target), "crash at {n}");
    assert_eq!(
        flags_by_subject(&w.source),
        flags_by_subject(&w.target),
        "crash at {n}"
    );
}

/// [`flags_bag`] with each message named by its folder and Subject, for a readable failure.
fn flags_by_subject(server: &mailsim::Server) -> BTreeMap<(String, String), Vec<Vec<String>>> {
    flags_bag(server)
        .into_iter()
        .map(|((folder, bytes), flags)| {
            let text = String::from_utf8_lossy(&bytes);
            let subject = text
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or_default()
                .to_owned();
            ((folder, subject), flags)
        })
        .collect()
}

/// Two identical messages that differ only in their flags, the first of which the source
/// fails to return once: its copy is appended after the second's. A target without UIDPLUS
/// names no copy, so after a crash recovery pairs the messages by what the target kept, and
/// may pair the first with the second's copy; both copies must still end with their own
/// message's flags, never both read.
#[tokio::test]
async fn identical_messages_keep_their_own_flags_whatever_the_crash_point() {
    let date = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    for n in 1..=40 {
        let w = World::with_options(
            CopySettings {
                chunk_messages: 5,
                ..CopySettings::default()
            },
            CopyOptions::default(),
        )
        .await;
        let twin = body(1, true, 300);
        w.source
            .deliver(USER, "INBOX", twin.clone(), &[] as &[&str], date);
        w.source.deliver(USER, "INBOX", twin, &["\\Seen"], date);
        for i in 2..6 {
            w.source.deliver(
                USER,
                "INBOX",
                body(i, i % 2 == 0, 200),
                &flags_of(i as u8),
                date,
            );
        }
        w.source.behaviour_mut(|b| {
            b.fetch_failures.insert("<m1@gen.test>".into(), 1);
        });
        w.target.behaviour_mut(|b| b.uidplus = false);
        crashed_copy(&w, n).await;
    }
}

/// A target that drops `\Flagged` on APPEND (Exchange Online) gets it by STORE after the
/// append; a crash between the two leaves a copy without it, which recovery sets again.
#[tokio::test]
async fn a_flag_the_target_dropped_is_set_again_after_a_crash() {
    let date = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    for n in 1..=40 {
        let target = mailsim::Server::new();
        target.behaviour_mut(|b| {
            b.app_tokens.insert("t1".into());
            b.drop_flags_on_append = vec!["\\Flagged".into()];
        });
        let w = World::with_app_target(target, Arc::new(ModelTokens::default())).await;
        for i in 0..6 {
            w.source.deliver(
                USER,
                FOLDERS[i % 2],
                body(i, true, 200),
                &flags_of(i as u8),
                date,
            );
        }
        crashed_copy(&w, n).await;
    }
}
