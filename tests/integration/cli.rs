//! `mailferry copy` from the command line against real Dovecot servers: a full copy, a rerun
//! that is a delta, passwords only from the environment, the summary and the exit code.

use std::process::Command;

use integration_tests::corpus::test_corpus;
use integration_tests::snapshot;
use testbed::{Dovecot, DovecotOptions};

use crate::copy::{
    MASTER_PW, SOURCE_PW, expected_on_target, seed, source_server, target_server, target_snapshot,
};

fn run_copy(
    source: &Dovecot,
    target: &Dovecot,
    state: &std::path::Path,
    extra: &[&str],
) -> (i32, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_mailferry_under_test"))
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
        .args(extra)
        .env("MAILFERRY_SOURCE_PASSWORD", SOURCE_PW)
        .env("MAILFERRY_TARGET_PASSWORD", MASTER_PW)
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
    let (source_snap, _) = snapshot(source.port(), "ann@old.example", SOURCE_PW)
        .await
        .unwrap();
    let on_target = target_snapshot(&target).await;
    for (folder, items) in &expected_on_target(&source_snap) {
        assert_eq!(on_target.get(folder), Some(items), "{folder} differs");
    }
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
    let (code, summary) = tokio::task::block_in_place(|| {
        run_copy(
            &source,
            &target,
            &dir.path().join("s"),
            &["--max-size", "200000", "--exclude", "Archive*"],
        )
    });
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
