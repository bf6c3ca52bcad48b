//! Property tests of the copy engine (`domain::App::handle_job`) on the in-memory mail server:
//! random mailboxes (duplicates, messages without Message-ID), random server behaviours
//! (rewriting, no UIDPLUS, no CONDSTORE, a full or throttling target, refused messages, FETCH
//! failures, dropped connections) and crashes at any step (the job's future is dropped
//! mid-operation and its message redelivered after the lease expires).
//!
//! After the final pass of each case:
//! - every source message is on the target as often as on the source, or listed as skipped
//!   with a reason (and only messages the servers refused for good are listed);
//! - nothing is on the target that the source never had, and nothing twice;
//! - after a delta pass: new mail arrived, flags match, and removal (when asked for) never
//!   removed a message the source still has — also when the source renumbered a folder.
//!
//! The engine runs on the real SQLite store (in memory); the queue is a plain list the test
//! pops from, so a crash and a redelivery are explicit.

mod support;

use std::collections::VecDeque;
use std::time::Duration;

use contract::{BulkAction, UserState};
use mailsim::{AppendRefusal, Behaviour};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use time::OffsetDateTime;

use support::*;

/// One generated message.
#[derive(Debug, Clone)]
struct Msg {
    folder: usize,
    /// Index of an earlier message this one is an exact duplicate of.
    duplicate_of: Option<usize>,
    with_id: bool,
    body_len: usize,
    flags: u8,
}

#[derive(Debug, Clone)]
struct Faults {
    rewrite: bool,
    uidplus: bool,
    condstore: bool,
    /// Target quota as a share (per cent) of the mailbox's bytes; lifted before the retry.
    quota_percent: Option<u8>,
    /// A temporary APPEND refusal after this many accepted messages; the server heals later.
    throttle: Option<(u8, u32)>,
    /// Messages (by index) the target refuses for good.
    refused: Vec<usize>,
    /// Messages (by index) whose FETCH fails once, and one that always fails.
    fetch_once: Vec<usize>,
    fetch_always: Option<usize>,
    disconnect_after: Option<u32>,
    /// Crashes: after how many further server operations each one happens.
    crashes: Vec<u64>,
    chunk_messages: usize,
}

#[derive(Debug, Clone)]
struct Delta {
    remove: bool,
    renumber_inbox: bool,
    expunge: Vec<usize>,
    reflag: Vec<(usize, u8)>,
    new_messages: usize,
}

fn message_strategy() -> impl Strategy<Value = Msg> {
    (
        0..FOLDERS.len(),
        prop::option::weighted(0.15, 0usize..40),
        prop::bool::weighted(0.8),
        0usize..3000,
        0u8..8,
    )
        .prop_map(|(folder, duplicate_of, with_id, body_len, flags)| Msg {
            folder,
            duplicate_of,
            with_id,
            body_len,
            flags,
        })
}

fn faults_strategy() -> impl Strategy<Value = Faults> {
    (
        (
            any::<bool>(),
            prop::bool::weighted(0.8),
            prop::bool::weighted(0.8),
        ),
        prop::option::weighted(0.2, 10u8..90),
        prop::option::weighted(0.2, (0u8..3, 0u32..20)),
        prop::collection::vec(0usize..40, 0..2),
        prop::collection::vec(0usize..40, 0..3),
        prop::option::weighted(0.2, 0usize..40),
        prop::option::weighted(0.15, 5u32..60),
        prop::collection::vec(1u64..120, 0..4),
        1usize..8,
    )
        .prop_map(
            |(
                (rewrite, uidplus, condstore),
                quota_percent,
                throttle,
                refused,
                fetch_once,
                fetch_always,
                disconnect_after,
                crashes,
                chunk_messages,
            )| Faults {
                rewrite,
                uidplus,
                condstore,
                quota_percent,
                throttle,
                refused,
                fetch_once,
                fetch_always,
                disconnect_after,
                crashes,
                chunk_messages,
            },
        )
}

fn delta_strategy() -> impl Strategy<Value = Delta> {
    (
        any::<bool>(),
        prop::bool::weighted(0.3),
        prop::collection::vec(0usize..40, 0..6),
        prop::collection::vec((0usize..40, 0u8..8), 0..6),
        0usize..5,
    )
        .prop_map(
            |(remove, renumber_inbox, expunge, reflag, new_messages)| Delta {
                remove,
                renumber_inbox,
                expunge,
                reflag,
                new_messages,
            },
        )
}

async fn run_case(messages: Vec<Msg>, faults: Faults, delta: Delta) -> Result<(), TestCaseError> {
    let w = World::new(faults.chunk_messages, delta.remove).await;
    let date = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    // The source mailbox; message i keeps its bytes through duplicates.
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    let mut placed: Vec<(usize, u32)> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let (bytes, folder) = match m.duplicate_of.filter(|&d| d < i) {
            Some(d) => (bodies[d].clone(), messages[d].folder),
            None => (body(i, m.with_id, m.body_len), m.folder),
        };
        let uid = w.source.deliver(
            USER,
            FOLDERS[folder],
            bytes.clone(),
            &flags_of(m.flags),
            date,
        );
        bodies.push(bytes);
        placed.push((folder, uid));
    }
    let id_of = |i: usize| mailsim::message_id(&bodies[i]);
    let total_bytes: u64 = bodies.iter().map(|b| b.len() as u64).sum();
    w.target.behaviour_mut(|b: &mut Behaviour| {
        b.rewrite_on_append = faults.rewrite;
        b.uidplus = faults.uidplus;
        b.quota_bytes = faults
            .quota_percent
            .map(|p| total_bytes * u64::from(p) / 100);
        if let Some((kind, after)) = faults.throttle {
            b.append_refusal = Some(match kind {
                0 => AppendRefusal::Throttled,
                1 => AppendRefusal::ThrottledWithWait(Duration::from_millis(1500)),
                _ => AppendRefusal::OverQuota,
            });
            b.append_refusal_after = after;
        }
        b.refuse_message_ids = faults
            .refused
            .iter()
            .filter(|&&i| i < bodies.len())
            .filter_map(|&i| id_of(i))
            .collect();
        b.disconnect_after_commands = faults.disconnect_after;
    });
    w.source.behaviour_mut(|b: &mut Behaviour| {
        b.condstore = faults.condstore;
        for &i in faults.fetch_once.iter().filter(|&&i| i < bodies.len()) {
            if let Some(id) = id_of(i) {
                b.fetch_failures.insert(id, 1);
            }
        }
        if let Some(id) = faults
            .fetch_always
            .filter(|&i| i < bodies.len())
            .and_then(id_of)
        {
            b.fetch_failures.insert(id, u32::MAX);
        }
    });

    // First pass, with faults and crashes; a full target stops the user, the admin makes room
    // and retries; throttling servers heal.
    let mut crashes: VecDeque<u64> = faults.crashes.iter().copied().collect();
    w.act(BulkAction::Start).await;
    for round in 0..4 {
        w.drain(&mut crashes).await;
        w.target.reset_commands();
        let user = w.user().await;
        if user.state == UserState::Completed {
            break;
        }
        prop_assert_eq!(user.state, UserState::Failed, "round {}", round);
        let reason = user.last_error.clone().unwrap_or_default();
        w.target.behaviour_mut(|b| {
            b.quota_bytes = None;
            b.append_refusal = None;
            b.disconnect_after_commands = None;
        });
        prop_assert!(!reason.is_empty());
        w.act(BulkAction::Retry).await;
    }
    prop_assert_eq!(w.user().await.state, UserState::Completed);

    let (skips, reasons) = skipped(&w).await;
    prop_assert!(reasons.iter().all(|r| !r.is_empty()));
    let source = bag(&w.source);
    let target = bag(&w.target);
    check_copy(&source, &target, &skips)?;

    // Delta: the user goes on working at the source (the admin made room on the target).
    w.target.behaviour_mut(|b| {
        b.disconnect_after_commands = None;
        b.quota_bytes = None;
        b.append_refusal = None;
    });
    let before_delta_target = target;
    let mut gone = Bag::new();
    for &i in &delta.expunge {
        if let Some(&(folder, uid)) = placed.get(i)
            && w.source.expunge(USER, FOLDERS[folder], uid)
        {
            *gone
                .entry((FOLDERS[folder].to_string(), bodies[i].clone()))
                .or_default() += 1;
        }
    }
    for &(i, flags) in &delta.reflag {
        if let Some(&(folder, uid)) = placed.get(i) {
            w.source
                .set_flags(USER, FOLDERS[folder], uid, &flags_of(flags));
        }
    }
    for n in 0..delta.new_messages {
        let bytes = body(1000 + n, n % 2 == 0, 100);
        w.source
            .deliver(USER, FOLDERS[n % FOLDERS.len()], bytes, &["\\Seen"], date);
    }
    if delta.renumber_inbox {
        w.source.renumber(USER, "INBOX");
    }
    w.act(BulkAction::Delta).await;
    w.drain(&mut VecDeque::new()).await;
    let user = w.user().await;
    prop_assert_eq!(
        user.state,
        UserState::Completed,
        "after the delta: {:?}",
        user.last_error
    );
    let (skips, _) = skipped(&w).await;
    let source = bag(&w.source);
    let target = bag(&w.target);
    // Nothing the source still has was removed or lost; nothing came twice.
    for (key, &n) in &source {
        let have = target.get(key).copied().unwrap_or(0);
        let listed = skips.get(key).copied().unwrap_or(0);
        prop_assert!(
            have + listed >= n,
            "{} of {} copies of a message in {} are on the target after the delta ({} skipped)",
            have,
            n,
            key.0,
            listed
        );
    }
    for (key, &have) in &target {
        let most = source
            .get(key)
            .copied()
            .unwrap_or(0)
            .max(before_delta_target.get(key).copied().unwrap_or(0));
        prop_assert!(
            have <= most,
            "{} copies of a message in {} after the delta, at most {} expected",
            have,
            key.0,
            most
        );
    }
    // Flags follow the source when it can say what changed (CONDSTORE).
    if faults.condstore && skips.is_empty() && gone.is_empty() {
        let source_flags = flags_bag(&w.source);
        let target_flags = flags_bag(&w.target);
        for (key, flags) in &source_flags {
            // Without UIDPLUS the engine knows no target UIDs, and a message without
            // Message-ID has no identity cheap enough to look up for a flag change.
            if !faults.uidplus && mailsim::message_id(&key.1).is_none() {
                continue;
            }
            prop_assert_eq!(
                Some(flags),
                target_flags.get(key),
                "flags of a message in {}",
                &key.0
            );
        }
    }
    Ok(())
}

/// After the first pass: every source message is on the target exactly as often, or skipped.
fn check_copy(source: &Bag, target: &Bag, skips: &Bag) -> Result<(), TestCaseError> {
    for (key, &n) in source {
        let have = target.get(key).copied().unwrap_or(0);
        let listed = skips.get(key).copied().unwrap_or(0);
        prop_assert_eq!(
            have + listed,
            n,
            "a message of {} is {} times on the source, {} on the target, {} skipped",
            &key.0,
            n,
            have,
            listed
        );
    }
    for key in target.keys() {
        prop_assert!(
            source.contains_key(key),
            "the target has a message the source never had in {}",
            &key.0
        );
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("MAILFERRY_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

proptest! {
    // Failing inputs are kept beside this file and run first on every later run.
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/engine_properties.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn nothing_is_lost_duplicated_or_wrongly_removed(
        messages in prop::collection::vec(message_strategy(), 0..40),
        faults in faults_strategy(),
        delta in delta_strategy(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(run_case(messages, faults, delta))?;
    }
}
