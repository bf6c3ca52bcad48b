//! Scenarios of the copy engine on the in-memory mail server that the issues name: a full
//! target, and a chunk slower than its lease.

mod support;

use std::collections::VecDeque;
use std::time::Duration;

use contract::jobs::Job;
use contract::{BulkAction, CopyOptions, FolderMapping, UserState};
use domain::app::{CopySettings, JobOutcome};
use time::OffsetDateTime;

use support::*;

/// The quota case: a full target stops the user saying how much is left, and the
/// admin's Retry after raising the quota completes the copy with nothing lost or doubled.
#[tokio::test]
async fn a_full_target_stops_the_user_and_a_retry_after_making_room_completes() {
    let w = World::new(5, false).await;
    let date = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    for i in 0..40 {
        w.source
            .deliver(USER, FOLDERS[i % 2], body(i, true, 1000), &["\\Seen"], date);
    }
    // Room for about a quarter of the mailbox.
    w.target
        .behaviour_mut(|b| b.quota_bytes = Some(40 * 1100 / 4));
    w.act(BulkAction::Start).await;
    w.drain(&mut VecDeque::new()).await;
    let user = w.user().await;
    assert_eq!(user.state, UserState::Failed);
    let copied: usize = bag(&w.target).values().sum();
    let left = 40 - copied;
    let error = user.last_error.unwrap_or_default();
    assert!(
        error.starts_with(&format!("target mailbox full — {left} messages left")),
        "{error}"
    );
    assert!(error.contains("[OVERQUOTA]"), "{error}");
    assert!(
        w.app
            .deps()
            .store
            .list_folders(w.user.id)
            .await
            .unwrap()
            .iter()
            .all(|f| f.skipped_total() == 0)
    );

    w.target.behaviour_mut(|b| b.quota_bytes = None);
    w.act(BulkAction::Retry).await;
    w.drain(&mut VecDeque::new()).await;
    let user = w.user().await;
    assert_eq!(user.state, UserState::Completed, "{:?}", user.last_error);
    assert_eq!(bag(&w.source), bag(&w.target));
    assert_eq!(user.progress.messages_done, 40);
}

/// Ten messages in INBOX, each appended 100 ms after the last, so one chunk of ten takes a
/// second: longer than the lease below and than a short job budget.
async fn slow_target_world(lease_ttl: Duration) -> (World, Job) {
    let w = World::on_wall_clock(CopySettings {
        lease_ttl,
        chunk_messages: 10,
        ..CopySettings::default()
    })
    .await;
    let date = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    for i in 0..10 {
        w.source
            .deliver(USER, "INBOX", body(i, i % 2 == 0, 200), &["\\Seen"], date);
    }
    w.target
        .behaviour_mut(|b| b.append_delay = Some(Duration::from_millis(100)));
    w.act(BulkAction::Start).await;
    let plan = w.queue.pop().expect("a plan job");
    w.app
        .handle_job(&plan, Duration::from_secs(60))
        .await
        .unwrap();
    let mut inbox = None;
    while let Some(job) = w.queue.pop() {
        match &job {
            Job::Copy { folder, .. } if folder == "INBOX" => inbox = Some(job),
            _ => w
                .app
                .handle_job(&job, Duration::from_secs(60))
                .await
                .map(drop)
                .unwrap(),
        }
    }
    (w, inbox.expect("a copy job for INBOX"))
}

/// A chunk slower than its folder's lease: the worker renews the lease while it appends, so a
/// second delivery of the same job (its queue visibility ran out) waits instead of appending
/// the chunk again.
#[tokio::test]
async fn a_chunk_slower_than_its_lease_is_never_appended_twice() {
    let (w, inbox) = slow_target_world(Duration::from_millis(300)).await;
    let first = w.app.handle_job(&inbox, Duration::from_secs(60));
    let second = async {
        tokio::time::sleep(Duration::from_millis(450)).await;
        w.app.handle_job(&inbox, Duration::from_secs(60)).await
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.unwrap(), JobOutcome::Done);
    assert!(
        matches!(second.unwrap(), JobOutcome::RetryLater { .. }),
        "the second delivery must find the folder leased"
    );
    w.drain(&mut VecDeque::new()).await;
    assert_eq!(w.user().await.state, UserState::Completed);
    assert_eq!(bag(&w.source), bag(&w.target));
}

/// A chunk that would run past the job's deadline stops where it is; the continuation finds
/// what was stored and appends the rest, once.
#[tokio::test]
async fn a_chunk_stops_at_the_deadline_and_the_continuation_completes_it_once() {
    let (w, inbox) = slow_target_world(Duration::from_secs(120)).await;
    // A 400 ms budget leaves a 300 ms deadline: about three of the ten messages get stored.
    let outcome = w
        .app
        .handle_job(&inbox, Duration::from_millis(400))
        .await
        .unwrap();
    assert_eq!(outcome, JobOutcome::Done);
    let stored = w.target.messages(USER, "INBOX").len();
    assert!(
        (1..10).contains(&stored),
        "{stored} stored before the deadline"
    );
    assert!(
        w.queue.0.lock().unwrap().len() == 1,
        "a continuation was queued"
    );
    w.target.behaviour_mut(|b| b.append_delay = None);
    w.drain(&mut VecDeque::new()).await;
    assert_eq!(w.user().await.state, UserState::Completed);
    assert_eq!(bag(&w.source), bag(&w.target));
}

/// A target that refuses to create one folder fails that folder only: its messages are listed
/// as skipped with the server's words naming the folder, the others are copied, and the user
/// completes (instead of retrying the whole plan until it gives up, copying nothing).
#[tokio::test]
async fn a_refused_create_skips_that_folder_only_and_names_it() {
    let w = World::new(5, false).await;
    let date = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    for i in 0..9 {
        w.source
            .deliver(USER, FOLDERS[i % 3], body(i, true, 100), &["\\Seen"], date);
    }
    w.target
        .behaviour_mut(|b| b.refuse_create.insert("Archive/2020".into()));
    w.act(BulkAction::Start).await;
    w.drain(&mut VecDeque::new()).await;

    let user = w.user().await;
    assert_eq!(user.state, UserState::Completed, "{:?}", user.last_error);
    let refused = skipped_items(&w, "Archive/2020").await;
    assert_eq!(refused.len(), 3);
    assert!(
        refused[0]
            .reason
            .contains("refused to create the folder Archive/2020"),
        "{}",
        refused[0].reason
    );
    assert_eq!(w.target.messages(USER, "INBOX").len(), 3);
    assert_eq!(w.target.messages(USER, "Archive").len(), 3);

    // The admin fixes the target and retries the skipped messages: the folder is copied.
    w.target.behaviour_mut(|b| b.refuse_create.clear());
    w.act(BulkAction::RetrySkipped).await;
    w.drain(&mut VecDeque::new()).await;
    assert_eq!(w.user().await.state, UserState::Completed);
    assert_eq!(bag(&w.source), bag(&w.target));
}

/// A target like Cyrus with its default namespace (every folder under `INBOX.`, `.` between
/// levels, CREATE refused elsewhere, CREATE-SPECIAL-USE): each folder lands under the prefix with
/// its role, and a name the target refuses is copied under a safe name that the checkpoint
/// (and so the report) and the user's events show. Folders whose names would meet there are
/// kept apart: `Tax` and `INBOX/Tax`, and a folder already named like another's safe name.
#[tokio::test]
async fn a_target_with_an_inbox_namespace_gets_every_folder_under_it_with_its_role() {
    let target = mailsim::Server::with_delimiter('.');
    target.behaviour_mut(|b| {
        b.namespace_prefix = "INBOX.".into();
        b.create_special_use = true;
        b.refuse_create.insert("INBOX.Q1: plan*".into());
    });
    let w = World::with_target(target).await;
    w.source
        .create_folder(USER, "Sent", Some(domain::mailbox::SpecialUse::Sent));
    w.source.create_folder(USER, "INBOX/Tax", None);
    w.source.create_folder(USER, "Tax", None);
    w.source.create_folder(USER, "Q1: plan*", None);
    w.source.create_folder(USER, "Q1_ plan_", None);
    let date = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let folders = [
        "INBOX",
        "Archive",
        "Archive/2020",
        "Sent",
        "INBOX/Tax",
        "Tax",
        "Q1: plan*",
        "Q1_ plan_",
    ];
    for (i, folder) in folders.iter().enumerate() {
        w.source
            .deliver(USER, folder, body(i, true, 100), &["\\Seen"], date);
    }
    w.act(BulkAction::Start).await;
    w.drain(&mut VecDeque::new()).await;

    let user = w.user().await;
    assert_eq!(user.state, UserState::Completed, "{:?}", user.last_error);
    let expected = [
        ("INBOX", "INBOX"),
        ("Archive", "INBOX.Archive"),
        ("Archive/2020", "INBOX.Archive.2020"),
        ("Sent", "INBOX.Sent"),
        ("Tax", "INBOX.Tax"),
        ("INBOX/Tax", "INBOX.Tax_2"),
        ("Q1_ plan_", "INBOX.Q1_ plan_"),
        ("Q1: plan*", "INBOX.Q1_ plan__2"),
    ];
    for (source, target) in expected {
        assert_eq!(
            w.target.messages(USER, target).len(),
            1,
            "{source} → {target}: {:?}",
            w.target.folders(USER)
        );
    }
    let sent = w
        .target
        .folders(USER)
        .into_iter()
        .find(|f| f.name == "INBOX.Sent");
    assert_eq!(
        sent.and_then(|f| f.special_use),
        Some(domain::mailbox::SpecialUse::Sent)
    );
    let states = w.app.deps().store.list_folders(w.user.id).await.unwrap();
    let renamed = states
        .iter()
        .find(|f| f.source_name == "Q1: plan*")
        .unwrap();
    assert_eq!(renamed.target_name, "INBOX.Q1_ plan__2");
    assert_eq!(renamed.renamed_from.as_deref(), Some("INBOX.Q1: plan*"));
    assert_eq!(renamed.skipped_total(), 0);
    let apart = states
        .iter()
        .find(|f| f.source_name == "INBOX/Tax")
        .unwrap();
    assert_eq!(apart.target_name, "INBOX.Tax_2");
    assert_eq!(apart.renamed_from.as_deref(), Some("INBOX.Tax"));
}

/// A target that stores 8-bit header bytes as `X` (Cyrus's munge8bit) keeps counts and sizes
/// equal; the read-back finds every such copy and says what changed, and the identical ones
/// are counted as checked.
#[tokio::test]
async fn copies_a_target_alters_are_found_by_reading_them_back() {
    let target = mailsim::Server::new();
    target.behaviour_mut(|b| b.munge_8bit_headers = true);
    let w = World::with_target(target).await;
    let date = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    for i in 0..30 {
        let mut bytes = body(i, true, 100);
        if i % 10 == 0 {
            bytes.splice(0..0, b"Subject: caf\xe9\r\n".iter().copied());
        }
        w.source.deliver(USER, "INBOX", bytes, &["\\Seen"], date);
    }
    w.act(BulkAction::Start).await;
    w.drain(&mut VecDeque::new()).await;

    assert_eq!(w.user().await.state, UserState::Completed);
    let states = w.app.deps().store.list_folders(w.user.id).await.unwrap();
    let inbox = states.iter().find(|f| f.source_name == "INBOX").unwrap();
    // The first 20 of the folder and every 8-bit one after them: 20 + 1.
    assert_eq!(inbox.content_checked, 21);
    assert_eq!(inbox.altered_count, 3);
    let uids: Vec<u32> = inbox.altered.iter().map(|a| a.uid).collect();
    assert_eq!(uids, [1, 11, 21]);
    assert!(
        inbox
            .altered
            .iter()
            .all(|a| a.change == "8-bit header bytes replaced (1 byte)"),
        "{:?}",
        inbox.altered
    );
}

/// Two source folders mapped to one target folder copy one after the other, and a crash in
/// either resumes without taking the other's messages for its own copies.
#[tokio::test]
async fn folders_sharing_a_target_folder_copy_one_after_the_other() {
    let options = CopyOptions {
        folder_map: vec![
            FolderMapping {
                from: "Archive".into(),
                to: "INBOX".into(),
            },
            FolderMapping {
                from: "Archive/2020".into(),
                to: "INBOX".into(),
            },
        ],
        ..CopyOptions::default()
    };
    let copy = CopySettings {
        chunk_messages: 2,
        ..CopySettings::default()
    };
    let w = World::with_options(copy, options).await;
    let date = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    // The same message in all three folders: each copy must arrive once per source folder.
    let same = body(7, true, 300);
    for folder in FOLDERS {
        for i in 0..4 {
            w.source.deliver(
                USER,
                folder,
                body(100 + i, i % 2 == 0, 100),
                &["\\Seen"],
                date,
            );
        }
        w.source
            .deliver(USER, folder, same.clone(), &["\\Seen"], date);
    }
    w.act(BulkAction::Start).await;
    // Crash a few times, at points inside the folders' appends.
    w.drain(&mut VecDeque::from([7, 15, 9])).await;

    assert_eq!(w.user().await.state, UserState::Completed);
    let inbox = w.target.messages(USER, "INBOX");
    assert_eq!(inbox.len(), 15);
    assert_eq!(inbox.iter().filter(|m| m.bytes == same).count(), 3);
}

/// A user whose jobs are lost (a queue message gone, a worker that died between two writes)
/// is failed by the watchdog with the reason, and Retry continues where it stopped.
#[tokio::test]
async fn the_watchdog_fails_a_user_whose_jobs_are_gone_and_retry_completes_it() {
    let w = World::new(3, false).await;
    let date = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    for i in 0..9 {
        w.source
            .deliver(USER, FOLDERS[i % 3], body(i, true, 100), &["\\Seen"], date);
    }
    w.act(BulkAction::Start).await;
    let plan = w.queue.pop().unwrap();
    w.app
        .handle_job(&plan, Duration::from_secs(60))
        .await
        .unwrap();
    // One folder's job is lost; the others run.
    let lost = w.queue.pop().unwrap();
    w.drain(&mut VecDeque::new()).await;
    assert_eq!(w.user().await.state, UserState::Working);
    let watch = domain::app::Watch::default();
    assert!(
        w.app.watchdog(watch).await.unwrap().is_empty(),
        "not quiet for long enough yet"
    );

    w.clock
        .as_ref()
        .unwrap()
        .advance(watch.without_jobs + Duration::from_secs(60));
    assert_eq!(w.app.watchdog(watch).await.unwrap(), vec![w.user.id]);
    let user = w.user().await;
    assert_eq!(user.state, UserState::Failed);
    assert!(
        user.last_error
            .unwrap_or_default()
            .starts_with("copying stopped: no job has worked on it for"),
    );

    drop(lost);
    w.act(BulkAction::Retry).await;
    w.drain(&mut VecDeque::new()).await;
    assert_eq!(w.user().await.state, UserState::Completed);
    assert_eq!(bag(&w.source), bag(&w.target));
}

/// A server that drips outside any chunk (here: the metadata FETCH of the folder's first look)
/// cannot hold a job past its budget: the job hands over to a continuation, which completes.
#[tokio::test]
async fn a_dripping_server_cannot_hold_a_job_past_its_budget() {
    let (w, inbox) = slow_target_world(Duration::from_secs(120)).await;
    w.target.behaviour_mut(|b| b.append_delay = None);
    w.source
        .behaviour_mut(|b| b.meta_delay = Some(Duration::from_secs(30)));
    let started = std::time::Instant::now();
    let outcome = w
        .app
        .handle_job(&inbox, Duration::from_millis(400))
        .await
        .unwrap();
    assert_eq!(outcome, JobOutcome::Done);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the job ran {:?}",
        started.elapsed()
    );
    assert_eq!(
        w.queue.0.lock().unwrap().len(),
        1,
        "a continuation was queued"
    );
    w.source.behaviour_mut(|b| b.meta_delay = None);
    w.drain(&mut VecDeque::new()).await;
    assert_eq!(w.user().await.state, UserState::Completed);
    assert_eq!(bag(&w.source), bag(&w.target));
}

/// Identical messages without a Message-ID, copied to a target without UIDPLUS (so the copy
/// map has no entry for them): a flag changed at the source on one of them reaches one of their
/// copies in the delta, and the others keep theirs (the proptest's shrunk case).
#[tokio::test]
async fn a_flag_change_on_one_of_identical_messages_without_message_id_reaches_a_copy() {
    let w = World::new(1, false).await;
    w.target.behaviour_mut(|b| b.uidplus = false);
    let date = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let uids: Vec<u32> = (0..4)
        .map(|_| {
            w.source
                .deliver(USER, "INBOX", body(0, false, 0), &["$Old"], date)
        })
        .collect();
    w.source
        .deliver(USER, "INBOX", body(1, false, 0), mailsim::NO_FLAGS, date);
    w.act(BulkAction::Start).await;
    w.drain(&mut VecDeque::new()).await;
    assert_eq!(w.user().await.state, UserState::Completed);
    assert_eq!(flags_bag(&w.source), flags_bag(&w.target));

    w.source.set_flags(USER, "INBOX", uids[2], &["\\Seen"]);
    w.act(BulkAction::Delta).await;
    w.drain(&mut VecDeque::new()).await;
    assert_eq!(w.user().await.state, UserState::Completed);
    assert_eq!(flags_bag(&w.source), flags_bag(&w.target));
}
