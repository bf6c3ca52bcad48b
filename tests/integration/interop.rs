//! The copy between real servers that name, mark and store folders differently: Dovecot (no
//! prefix, `/`), Cyrus with Debian's namespace (`INBOX.`, `.`, CREATE refused elsewhere,
//! 8-bit header bytes turned into `X`) and with upstream's, and Courier (`INBOX.`, `.`, no
//! LITERAL+, no SPECIAL-USE). For each pair, with `mailferry copy`: the first run is killed
//! while it copies and the rerun finishes at once; every folder lands under the target's
//! namespace; the source's roles are kept where the target can mark folders; every message
//! arrives once, and each copy the target stored differently is listed as altered (and only
//! those); a delta run copies exactly what is new.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::corpus::{SeedMessage, bulk_corpus, test_corpus};
use integration_tests::servers::Side;
use serde_json::Value;
use testbed::{CyrusNamespace, Kind};

use crate::cli::held_folders;
use crate::copy::SOURCE_PW;

const TARGET_PW: &str = "ann-target-pw";

fn copy_command(source: &Side, target: &Side, state: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailferry_under_test"));
    command
        .arg("copy")
        .args(["--source", &source.url(), "--target", &target.url()])
        .arg("--state")
        .arg(state)
        .arg("--json")
        .env("MAILFERRY_SOURCE_PASSWORD", source.password())
        .env("MAILFERRY_TARGET_PASSWORD", target.password());
    command
}

fn run_copy(source: &Side, target: &Side, state: &std::path::Path) -> (i32, Value) {
    let out = copy_command(source, target, state)
        .output()
        .expect("run mailferry copy");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

/// The corpus: every awkward case of the test corpus (8-bit headers, duplicates, no
/// Message-ID, a role), a 3 MiB message (streamed from the source's FETCH into the target's
/// APPEND) and enough plain mail that a kill lands mid-copy.
fn corpus() -> Vec<SeedMessage> {
    let mut corpus = test_corpus(71, Some(3 * 1024 * 1024));
    corpus.extend(bulk_corpus(72, 600));
    corpus
}

/// Checks the target against the source folder by folder through the run's report: names under
/// the target's namespace, the same number of messages, every copy identical but those the
/// report lists as altered (flags and dates kept). Returns how many copies were altered.
async fn assert_arrived(source: &Side, target: &Side, paths: &[String], summary: &Value) -> u64 {
    let source_snap = source.snapshot().await;
    let target_snap = target.snapshot().await;
    let folders = summary["folders"].as_array().expect("folders");
    let mut altered_total = 0;
    for path in paths {
        let source_name = source.folder(path);
        let report = folders
            .iter()
            .find(|f| f["source"] == source_name.as_str())
            .unwrap_or_else(|| panic!("{source_name} is not in the report: {summary}"));
        let target_name = report["target"].as_str().unwrap();
        assert_eq!(target_name, target.folder(path), "{source_name}");
        let wanted = source_snap.get(&source_name).cloned().unwrap_or_default();
        let mut got = target_snap.get(target_name).cloned().unwrap_or_default();
        assert_eq!(
            got.len(),
            wanted.len(),
            "{source_name} → {target_name}: count"
        );
        let mut differ = 0;
        for item in &wanted {
            match got.iter().position(|g| g == item) {
                Some(i) => {
                    got.remove(i);
                }
                None => differ += 1,
            }
        }
        let altered = report["altered_count"].as_u64().unwrap();
        assert_eq!(
            differ, altered,
            "{source_name}: copies that differ vs. copies reported altered: {report}"
        );
        altered_total += altered;
    }
    altered_total
}

async fn interop(source: Side, target: Side) {
    let corpus = corpus();
    source.seed(&corpus);
    let mut paths: Vec<String> = corpus.iter().map(|m| m.folder.clone()).collect();
    paths.sort();
    paths.dedup();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("ann.state");

    // A first run, killed once it holds a folder it has begun to copy.
    let mut child = copy_command(&source, &target, &state)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let begun = Instant::now();
    while held_folders(&state).await == 0 {
        assert!(
            begun.elapsed() < Duration::from_secs(60),
            "the copy never started"
        );
        if child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // The rerun finishes the pass at once.
    let (code, summary) = tokio::task::block_in_place(|| run_copy(&source, &target, &state));
    assert_eq!(code, 0, "{summary}");
    assert!(
        summary["elapsed_seconds"].as_f64().unwrap() < 60.0,
        "{summary}"
    );
    let altered = assert_arrived(&source, &target, &paths, &summary).await;
    // Cyrus (Debian's default munge8bit) stores 8-bit header bytes as `X`; the others keep them.
    let munges = matches!(&target, Side::Other(o) if matches!(o.kind(), Kind::Cyrus(_)));
    assert_eq!(altered > 0, munges, "altered copies: {altered}");
    let source_roles = !matches!(&source, Side::Other(o) if o.kind() == Kind::Courier);
    if source_roles && target.marks_roles() {
        let roles = target.roles().await;
        assert_eq!(
            roles.get(&target.folder("Sent")),
            Some(&domain::mailbox::SpecialUse::Sent),
            "{roles:?}"
        );
    }

    // A delta run copies the new mail and nothing else.
    let new: Vec<SeedMessage> = bulk_corpus(73, 5)
        .into_iter()
        .map(|m| SeedMessage {
            folder: "INBOX".into(),
            ..m
        })
        .collect();
    source.seed(&new);
    let (code, summary) = tokio::task::block_in_place(|| run_copy(&source, &target, &state));
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["messages_copied"], 5, "{summary}");
    assert_arrived(&source, &target, &paths, &summary).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dovecot_to_cyrus_with_debians_namespace() {
    let target = Side::other(Kind::Cyrus(CyrusNamespace::Debian), TARGET_PW);
    interop(Side::dovecot("ann@old.example", SOURCE_PW), target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dovecot_to_cyrus_with_upstreams_namespace() {
    let target = Side::other(Kind::Cyrus(CyrusNamespace::Upstream), TARGET_PW);
    interop(Side::dovecot("ann@old.example", SOURCE_PW), target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cyrus_to_dovecot() {
    let source = Side::other(Kind::Cyrus(CyrusNamespace::Debian), SOURCE_PW);
    interop(source, Side::dovecot("ann@new.example", TARGET_PW)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn courier_to_cyrus() {
    let source = Side::other(Kind::Courier, SOURCE_PW);
    let target = Side::other(Kind::Cyrus(CyrusNamespace::Debian), TARGET_PW);
    interop(source, target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dovecot_to_courier() {
    let target = Side::other(Kind::Courier, TARGET_PW);
    interop(Side::dovecot("ann@old.example", SOURCE_PW), target).await;
}
