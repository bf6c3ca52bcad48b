//! `mailferry copy` from the command line against real Dovecot servers: a full copy, a rerun
//! that is a delta, passwords only from the environment, the summary and the exit code.

use std::process::Command;

use integration_tests::corpus::test_corpus;
use integration_tests::snapshot;
use testbed::{Dovecot, DovecotOptions};

use crate::copy::{
    MASTER_PW, SOURCE_PW, assert_arrived, expected_on_target, seed, source_server, target_server,
    target_snapshot,
};

/// `mailferry copy --json` of ann's mailbox from `source` to `target` (through the master
/// user) with `state`.
fn copy_command(source: &Dovecot, target: &Dovecot, state: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailferry_under_test"));
    command
        .arg("copy")
        .arg("--source")
        .arg(format!(
            "imap+plain://ann%40old.example@127.0.0.1:{}",
            source.port()
        ))
        .arg("--target")
        .arg(format!(
            "imap+plain://ann%40new.example*admin@127.0.0.1:{}",
            target.port()
        ))
        .arg("--state")
        .arg(state)
        .arg("--json")
        .env("MAILFERRY_SOURCE_PASSWORD", SOURCE_PW)
        .env("MAILFERRY_TARGET_PASSWORD", MASTER_PW);
    command
}

pub(crate) fn run_copy(
    source: &Dovecot,
    target: &Dovecot,
    state: &std::path::Path,
    extra: &[&str],
) -> (i32, serde_json::Value) {
    let out = copy_command(source, target, state)
        .args(extra)
        .output()
        .expect("run mailferry copy");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains(SOURCE_PW) && !stderr.contains(SOURCE_PW),
        "the password was printed"
    );
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"));
    (out.status.code().unwrap_or(-1), json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_command_copies_then_a_rerun_brings_only_new_mail() {
    // Arrange
    let source = source_server();
    let target = target_server();
    seed(&source, "ann@old.example", &test_corpus(51, None));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("ann.state");

    // Act
    let (code, summary) = tokio::task::block_in_place(|| run_copy(&source, &target, &state, &[]));

    // Assert
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["pass"], 1);
    // The work figures the cost model is built on: at least a checkpoint per folder and a job
    // sent, received and acknowledged per folder.
    let folders = summary["folders"].as_array().unwrap().len() as u64;
    let work = &summary["work"];
    assert!(
        work["state_rows_written"].as_u64().unwrap() >= folders,
        "{work}"
    );
    assert!(
        work["queue_operations"].as_u64().unwrap() >= 3 * folders,
        "{work}"
    );
    assert!(work["cpu_seconds"].as_f64().is_some(), "{work}");
    // Dovecot keeps messages as given: the copies read back are the same bytes.
    assert!(
        summary["content_checked"].as_u64().unwrap() > 0,
        "{summary}"
    );
    assert_eq!(summary["altered"], 0, "{summary}");
    let copied_first = summary["messages_copied"].as_u64().unwrap();
    assert_eq!(
        summary["messages_copied_total"].as_u64(),
        Some(copied_first)
    );
    assert_arrived(&source, &target).await;
    let state_bytes = std::fs::read(&state).unwrap();
    assert!(
        !state_bytes
            .windows(SOURCE_PW.len())
            .any(|w| w == SOURCE_PW.as_bytes()),
        "password in the state file"
    );

    // A rerun copies only what is new.
    let extra: Vec<_> = test_corpus(52, None)
        .into_iter()
        .filter(|m| m.folder == "INBOX")
        .take(5)
        .collect();
    seed(&source, "ann@old.example", &extra);
    let (code, summary) = tokio::task::block_in_place(|| run_copy(&source, &target, &state, &[]));
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["pass"], 2);
    // The counters say what this pass did, beside the running total.
    assert_eq!(summary["messages_copied"], 5, "{summary}");
    assert_eq!(
        summary["messages_copied_total"].as_u64(),
        Some(copied_first + 5)
    );
    let (source_snap, _) = snapshot(source.port(), "ann@old.example", SOURCE_PW)
        .await
        .unwrap();
    let on_target = target_snapshot(&target).await;
    assert_eq!(on_target.get("INBOX"), source_snap.get("INBOX"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skipped_message_makes_the_exit_code_non_zero() {
    let source = source_server();
    let target = Dovecot::start(
        DovecotOptions::default()
            .user("ann@new.example", "unused")
            .master_user("admin", MASTER_PW),
    )
    .unwrap();
    seed(&source, "ann@old.example", &test_corpus(53, Some(300_000)));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s");
    let run = || {
        let args = ["--max-size", "200000", "--exclude", "Archive*"];
        tokio::task::block_in_place(|| run_copy(&source, &target, &state, &args))
    };
    let (code, summary) = run();
    assert_eq!(code, 2, "{summary}");
    assert_eq!(summary["ok"], false);
    let folders = summary["folders"].as_array().unwrap();
    assert!(
        folders
            .iter()
            .all(|f| !f["source"].as_str().unwrap().starts_with("Archive")),
        "{summary}"
    );
    let skipped: Vec<_> = folders
        .iter()
        .flat_map(|f| f["skipped"].as_array().unwrap().clone())
        .collect();
    assert_eq!(skipped.len(), 1, "{summary}");
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("maximum message size")
    );
    assert_eq!(summary["skipped_new"], 1, "{summary}");

    // A rerun with nothing new to do succeeds: the old, reported skip is counted, not failed on.
    let (code, summary) = run();
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["skipped_new"], 0, "{summary}");
    assert_eq!(summary["skipped_earlier"], 1, "{summary}");
    assert_eq!(summary["messages_copied"], 0, "{summary}");
}

/// The folders a run held when it was killed, read from its state file.
pub(crate) async fn held_folders(state: &std::path::Path) -> usize {
    use domain::ports::Store;
    let Ok(store) = embedded::SqliteStore::open(state) else {
        return 0;
    };
    let mut held = 0;
    for p in store.list_projects().await.unwrap_or_default() {
        let (users, _) = store
            .list_users(
                p.id,
                &domain::UserQuery {
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        for u in users {
            let folders = store.list_folders(u.id).await.unwrap();
            held += folders
                .iter()
                .filter(|f| f.lease_owner.is_some() && f.copied_messages > 0)
                .count();
        }
    }
    held
}

/// A rerun after `kill -9` takes the dead run's folders at once (it holds the state file's lock,
/// so no one else is alive), instead of waiting out their two-minute leases; and a second run on
/// a state file in use is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_after_a_kill_resumes_at_once_and_two_runs_never_share_a_state_file() {
    let source = source_server();
    let target = target_server();
    let mut corpus = test_corpus(61, None);
    corpus.extend(integration_tests::corpus::bulk_corpus(62, 3000));
    seed(&source, "ann@old.example", &corpus);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("ann.state");
    // A run while another holds the state file's lock is refused, and changes nothing.
    let mut lock_name = state.as_os_str().to_owned();
    lock_name.push(".lock");
    let holder = std::fs::File::create(std::path::PathBuf::from(lock_name)).unwrap();
    holder.try_lock().unwrap();
    let (code, summary) = tokio::task::block_in_place(|| {
        let out = copy_command(&source, &target, &state).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    });
    assert_ne!(code, Some(0));
    assert!(
        summary.contains("another mailferry copy is running"),
        "{summary}"
    );
    assert!(!state.exists(), "the refused run created the state file");
    drop(holder);

    let mut child = copy_command(&source, &target, &state)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill the run as soon as it holds a folder it has begun to copy.
    let begun = std::time::Instant::now();
    while held_folders(&state).await == 0 {
        assert!(begun.elapsed().as_secs() < 60, "the copy never started");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // Act: the rerun.
    let (code, summary) = tokio::task::block_in_place(|| run_copy(&source, &target, &state, &[]));

    // Assert: done well within a lease term, nothing lost or doubled.
    assert_eq!(code, 0, "{summary}");
    let seconds = summary["elapsed_seconds"].as_f64().unwrap();
    assert!(
        seconds < 60.0,
        "the rerun waited for the dead run's leases: {seconds} s"
    );
    assert_arrived(&source, &target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_deleted_at_the_source_are_kept_unless_removal_is_asked_for() {
    // Arrange: a first pass, then three INBOX messages deleted at the source and one message
    // delivered straight to the target (new mail after the MX switch).
    let source = source_server();
    let target = target_server();
    seed(&source, "ann@old.example", &test_corpus(54, None));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("ann.state");
    let (code, summary) = tokio::task::block_in_place(|| run_copy(&source, &target, &state, &[]));
    assert_eq!(code, 0, "{summary}");
    let mut imap = source.raw_session("ann@old.example").unwrap();
    for command in [
        "SELECT INBOX",
        "STORE 1:3 +FLAGS.SILENT (\\Deleted)",
        "EXPUNGE",
    ] {
        let r = imap.command(command).unwrap();
        assert!(r.is_ok(), "{command}: {} {}", r.status, r.text);
    }
    target
        .append_raw(
            "ann@new.example",
            "INBOX",
            b"From: bob@example.org\r\nSubject: straight to the target\r\n\
              Message-ID: <direct@new.example>\r\n\r\nhello\r\n",
            &[],
            None,
        )
        .unwrap();
    let inbox = |snap: &integration_tests::Snapshot| snap.get("INBOX").cloned().unwrap_or_default();
    let (source_snap, _) = snapshot(source.port(), "ann@old.example", SOURCE_PW)
        .await
        .unwrap();
    let source_inbox = inbox(&source_snap);

    // Act 1: a delta pass with the default policy keeps the copies.
    let (code, summary) = tokio::task::block_in_place(|| run_copy(&source, &target, &state, &[]));
    assert_eq!(code, 0, "{summary}");
    assert_eq!(
        inbox(&target_snapshot(&target).await).len(),
        source_inbox.len() + 3 + 1,
        "kept: the source's messages, the 3 deleted ones and the direct one"
    );

    // Act 2: a delta pass asked to remove them.
    let (code, summary) =
        tokio::task::block_in_place(|| run_copy(&source, &target, &state, &["--remove-deleted"]));
    assert_eq!(code, 0, "{summary}");

    // Assert: the target's INBOX is the source's plus the direct message, nothing else.
    let mut left = inbox(&target_snapshot(&target).await);
    for item in &source_inbox {
        let i = left
            .iter()
            .position(|t| t == item)
            .unwrap_or_else(|| panic!("a source message is gone from the target: {item:?}"));
        left.remove(i);
    }
    assert_eq!(
        left.len(),
        1,
        "only the direct message is left over: {left:?}"
    );
    // Every other folder is untouched.
    let on_target = target_snapshot(&target).await;
    for (folder, items) in &expected_on_target(&source_snap) {
        if folder != "INBOX" {
            assert_eq!(on_target.get(folder), Some(items), "{folder} differs");
        }
    }
}
