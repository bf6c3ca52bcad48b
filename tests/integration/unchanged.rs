//! Delta passes skip the folders the source shows unchanged (the same UIDVALIDITY, UIDNEXT,
//! message count and HIGHESTMODSEQ as when the last pass finished them), and still carry every
//! change of the others: real Dovecot on both sides.

use std::time::Duration;

use integration_tests::corpus::test_corpus;
use integration_tests::spawn_app;

use crate::copy::{assert_arrived, copy_started, delta_pass, seed, source_server, target_server};

/// The event that starts with `pass N:` (the plan's: one per pass).
fn plan_event(detail: &serde_json::Value, pass: u64) -> String {
    let prefix = format!("pass {pass}:");
    detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["message"].as_str())
        .find(|m| m.starts_with(&prefix))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_pass_skips_unchanged_folders_and_copies_the_changes_of_the_others() {
    // Arrange: a full pass of several folders.
    let source = source_server();
    let target = target_server();
    seed(&source, "ann@old.example", &test_corpus(11, None));
    let app = spawn_app(None).await.unwrap();
    let (p, u) = copy_started(&app, &source, &target).await;
    let first =
        integration_tests::wait_for_state(&app, &p, &u, "completed", Duration::from_secs(120))
            .await
            .unwrap();
    let folders = first["folders"].as_array().unwrap().len();
    assert!(folders >= 4, "{first}");

    // Act: a pass with nothing changed, then one after a flag change in Sent and a new
    // message in INBOX.
    let noop = delta_pass(&app, &p, &u, 2).await;
    let mut raw = source.raw_session("ann@old.example").unwrap();
    assert!(raw.command("SELECT Sent").unwrap().is_ok());
    assert!(
        raw.command("UID STORE 1 +FLAGS (\\Flagged)")
            .unwrap()
            .is_ok()
    );
    raw.logout();
    let mut new = test_corpus(12, None);
    new.retain(|m| m.folder == "INBOX");
    new.truncate(1);
    seed(&source, "ann@old.example", &new);
    let changed = delta_pass(&app, &p, &u, 3).await;

    // Assert: the first delta skipped every folder, the second all but the two that changed,
    // and the target holds exactly the source's messages and flags.
    assert_eq!(
        plan_event(&noop, 2),
        format!("pass 2: 0 folders to copy, {folders} unchanged since the last pass")
    );
    assert_eq!(
        plan_event(&changed, 3),
        format!(
            "pass 3: 2 folders to copy, {} unchanged since the last pass",
            folders - 2
        )
    );
    assert_arrived(&source, &target).await;
    for f in changed["folders"].as_array().unwrap() {
        assert_eq!(f["done"], true, "{f}");
        assert_eq!(f["source_messages"], f["target_messages"], "{f}");
    }
}
