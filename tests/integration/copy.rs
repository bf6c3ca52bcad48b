//! The copy engine end to end on the local server: real Dovecot source and target, a corpus
//! with every awkward case, a full pass, the verification report, a delta pass.

use std::time::Duration;

use integration_tests::corpus::{SeedMessage, test_corpus};
use integration_tests::{Snapshot, snapshot, spawn_app, wait_for_state};
use reqwest::StatusCode;
use serde_json::json;
use testbed::{Dovecot, DovecotOptions, SpecialFolder};

pub const SOURCE_PW: &str = "ann-source-pw";
pub const MASTER_PW: &str = "target-master-pw";

pub fn source_server() -> Dovecot {
    Dovecot::start(
        DovecotOptions::default()
            .user("ann@old.example", SOURCE_PW)
            .separator('/')
            .special_folders(vec![SpecialFolder {
                name: "Sent".into(),
                special_use: "\\Sent".into(),
                auto_create: true,
            }]),
    )
    .expect("source dovecot")
}

pub fn target_server() -> Dovecot {
    Dovecot::start(
        DovecotOptions::default()
            .user("ann@new.example", "unused")
            .master_user("admin", MASTER_PW)
            .special_folders(vec![SpecialFolder {
                name: "Sent Items".into(),
                special_use: "\\Sent".into(),
                auto_create: true,
            }]),
    )
    .expect("target dovecot")
}

pub fn seed(server: &Dovecot, user: &str, corpus: &[SeedMessage]) {
    let mut raw = server.raw_session(user).expect("raw session");
    let mut created = std::collections::BTreeSet::new();
    for m in corpus {
        if m.folder != "INBOX" && created.insert(m.folder.clone()) {
            // CREATE fails harmlessly when the folder exists already.
            let _ = raw.command(&format!(
                "CREATE {}",
                testbed::quote(&testbed::encode_mutf7(&m.folder))
            ));
        }
        raw.append(&m.folder, &m.bytes, &m.flags, Some(m.internaldate))
            .expect("seed");
    }
    for folder in ["Projects/2024/Ärger", "Folder with spaces", "Archive/Old"] {
        let r = raw
            .command(&format!(
                "SUBSCRIBE {}",
                testbed::quote(&testbed::encode_mutf7(folder))
            ))
            .expect("subscribe");
        assert!(r.is_ok(), "{folder}");
    }
    raw.logout();
}

pub fn project_json(source: &Dovecot, target: &Dovecot) -> serde_json::Value {
    json!({
        "name": "Copy test",
        "source": {"host": "127.0.0.1", "port": source.port(), "security": "plaintext", "auth": {"mode": "per_user"}},
        "target": {"host": "127.0.0.1", "port": target.port(), "security": "plaintext",
                   "auth": {"mode": "admin", "login_pattern": "{email}*admin", "password": MASTER_PW}},
        "invite_to": "none",
        "admin_email": "admin@new.example"
    })
}

/// A source folder's name on the target: the special-use Sent folder maps by role, the rest
/// by path, from the source's `/` to the target's `.` delimiter.
pub fn target_name(source: &str) -> String {
    if source == "Sent" {
        "Sent Items".to_owned()
    } else {
        source.replace('/', ".")
    }
}

/// The source snapshot with folder names as the target should have them.
pub fn expected_on_target(source: &Snapshot) -> Snapshot {
    source
        .iter()
        .map(|(name, items)| (target_name(name), items.clone()))
        .collect()
}

/// Signs in, creates the project for this server pair, adds Ann with her source password and
/// starts her copy; returns the project and user ids.
pub async fn copy_started(
    app: &integration_tests::TestApp,
    source: &Dovecot,
    target: &Dovecot,
) -> (String, String) {
    start_ann(app, project_json(source, target), Some(SOURCE_PW)).await
}

/// Signs in, creates the project, adds Ann (with her source password when the source takes
/// one) and starts her copy; returns the project and user ids.
pub async fn start_ann(
    app: &integration_tests::TestApp,
    project: serde_json::Value,
    source_password: Option<&str>,
) -> (String, String) {
    start_ann_into(app, project, source_password, "scheduled").await
}

/// [`start_ann`], checking that Start moved Ann to `state` (`email_sent` when she still has
/// to give her credentials on the invite page).
pub async fn start_ann_into(
    app: &integration_tests::TestApp,
    project: serde_json::Value,
    source_password: Option<&str>,
    state: &str,
) -> (String, String) {
    app.login().await.unwrap();
    let p = app.create_project(project).await.unwrap();
    let mut user = json!({"source_email": "ann@old.example", "target_email": "ann@new.example"});
    if let Some(pw) = source_password {
        user["source_password"] = json!(pw);
    }
    let r = app
        .post(&format!("/api/admin/projects/{p}/users"), user)
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let u = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/admin/projects/{p}/users/{u}/actions/start"),
            json!(null),
        )
        .await
        .unwrap();
    assert_eq!(r.body["state"], state, "{:?}", r.body);
    (p, u)
}

/// Starts a delta pass, checks it is pass number `pass`, and waits until it completes; returns
/// the user detail.
pub async fn delta_pass(
    app: &integration_tests::TestApp,
    p: &str,
    uid: &str,
    pass: u64,
) -> serde_json::Value {
    let r = app
        .post(
            &format!("/api/admin/projects/{p}/users/{uid}/actions/delta"),
            json!(null),
        )
        .await
        .unwrap();
    assert_eq!(r.body["pass"], pass, "{:?}", r.body);
    wait_for_state(app, p, uid, "completed", Duration::from_secs(120))
        .await
        .unwrap()
}

/// Asserts that every folder of ann's source mailbox arrived on the target exactly: the same
/// messages, as often, with the same flags.
pub async fn assert_arrived(source: &Dovecot, target: &Dovecot) {
    assert_arrived_as(source, target, "ann@new.example*admin", MASTER_PW).await;
}

/// [`assert_arrived`], reading the target with the given login.
pub async fn assert_arrived_as(source: &Dovecot, target: &Dovecot, login: &str, password: &str) {
    let (source_snap, _) = snapshot(source.port(), "ann@old.example", SOURCE_PW)
        .await
        .unwrap();
    let (on_target, _) = snapshot(target.port(), login, password).await.unwrap();
    for (folder, items) in &expected_on_target(&source_snap) {
        assert_eq!(on_target.get(folder), Some(items), "{folder} differs");
    }
}

pub async fn target_snapshot(target: &Dovecot) -> Snapshot {
    snapshot(target.port(), "ann@new.example*admin", MASTER_PW)
        .await
        .unwrap()
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_is_copied_exactly_then_a_delta_pass_brings_only_the_changes() {
    // Arrange
    let source = source_server();
    let target = target_server();
    let corpus = test_corpus(7, Some(3 * 1024 * 1024));
    seed(&source, "ann@old.example", &corpus);
    let (source_snap, source_subscribed) = snapshot(source.port(), "ann@old.example", SOURCE_PW)
        .await
        .unwrap();
    let mut app = spawn_app(None).await.unwrap();
    app.login().await.unwrap();
    let p = app
        .create_project(project_json(&source, &target))
        .await
        .unwrap();
    let r = app
        .post(&format!("/api/admin/projects/{p}/users"), json!({"source_email": "ann@old.example", "target_email": "ann@new.example", "source_password": SOURCE_PW}))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let uid = r.body["id"].as_str().unwrap().to_owned();

    // Act: start; with the password known the user goes straight to the queue.
    let r = app
        .post(
            &format!("/api/admin/projects/{p}/users/{uid}/actions/start"),
            json!(null),
        )
        .await
        .unwrap();
    assert_eq!(r.body["state"], "scheduled", "{:?}", r.body);
    let detail = wait_for_state(&app, &p, &uid, "completed", Duration::from_secs(120))
        .await
        .unwrap();

    // Assert: byte-identical messages, flags and dates, duplicates included, per folder.
    let on_target = target_snapshot(&target).await;
    let expected = expected_on_target(&source_snap);
    for (folder, items) in &expected {
        assert_eq!(
            on_target.get(folder),
            Some(items),
            "folder {folder} differs"
        );
    }
    let (_, target_subscribed) = snapshot(target.port(), "ann@new.example*admin", MASTER_PW)
        .await
        .unwrap();
    for folder in source_subscribed {
        let mapped = target_name(&folder);
        assert!(
            target_subscribed.contains(&mapped),
            "{mapped} not subscribed on the target"
        );
    }
    // The verification report: per folder, source and target agree.
    let folders = detail["folders"].as_array().unwrap();
    assert_eq!(folders.len(), expected.len());
    for f in folders {
        assert_eq!(f["done"], true);
        assert_eq!(f["source_messages"], f["target_messages"], "{f}");
        assert_eq!(f["source_bytes"], f["target_bytes"], "{f}");
        assert_eq!(f["skipped"].as_array().unwrap().len(), 0, "{f}");
    }
    let total: usize = source_snap.values().map(Vec::len).sum();
    assert_eq!(detail["user"]["progress"]["messages_done"], total as u64);
    let mails = app.outbox().await.unwrap();
    assert!(
        mails
            .iter()
            .any(|m| m.to == "admin@new.example" && m.subject.contains("Ready to verify")),
        "{mails:?}"
    );
    // The verification report as CSV: a row per folder, the figures of both sides agreeing, the
    // copies read back and found identical (Dovecot keeps bytes).
    let r = app
        .get(&format!("/api/admin/projects/{p}/report"))
        .await
        .unwrap();
    let csv = r.body.as_str().unwrap_or_default().to_owned();
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let header = rows.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), expected.len(), "{csv}");
    for row in &rows {
        assert_eq!(
            row[col("source_messages")],
            row[col("target_messages")],
            "{csv}"
        );
        assert_eq!(row[col("altered")], *"0", "{csv}");
    }
    let checked: u64 = rows
        .iter()
        .map(|r| r[col("content_checked")].parse::<u64>().unwrap())
        .sum();
    assert!(checked > 0, "{csv}");

    // Arrange a delta: 100 new messages and flag changes at the source.
    let extra = integration_tests::corpus::bulk_corpus(99, 100);
    seed(&source, "ann@old.example", &extra);
    let mut raw = source.raw_session("ann@old.example").unwrap();
    assert!(raw.command("SELECT INBOX").unwrap().is_ok());
    assert!(
        raw.command("UID STORE 1:3 +FLAGS (\\Flagged $Delta)")
            .unwrap()
            .is_ok()
    );
    assert!(raw.command("UID STORE 4 -FLAGS (\\Seen)").unwrap().is_ok());
    raw.logout();
    let (source_snap, _) = snapshot(source.port(), "ann@old.example", SOURCE_PW)
        .await
        .unwrap();

    // Act
    let detail = delta_pass(&app, &p, &uid, 2).await;

    // Assert: exactly the changes arrived: the folders are equal again, nothing duplicated.
    let on_target = target_snapshot(&target).await;
    for (folder, items) in &expected_on_target(&source_snap) {
        assert_eq!(
            on_target.get(folder),
            Some(items),
            "folder {folder} differs after the delta"
        );
    }
    assert_eq!(detail["user"]["pass"], 2);

    // Arrange a UIDVALIDITY change: the folder is deleted and recreated at the source with the
    // same messages plus one new one (what a server migration or a rebuilt index does).
    let folder = "Folder with spaces";
    let mut again: Vec<SeedMessage> = corpus
        .iter()
        .filter(|m| m.folder == folder)
        .cloned()
        .collect();
    let mut newer = test_corpus(123, None)
        .into_iter()
        .find(|m| m.folder == folder)
        .unwrap();
    newer.bytes.extend_from_slice(b"one more line\r\n");
    again.push(newer);
    let mut raw = source.raw_session("ann@old.example").unwrap();
    assert!(
        raw.command(&format!("DELETE {}", testbed::quote(folder)))
            .unwrap()
            .is_ok()
    );
    raw.logout();
    seed(&source, "ann@old.example", &again);
    let (source_snap, _) = snapshot(source.port(), "ann@old.example", SOURCE_PW)
        .await
        .unwrap();

    // Act
    let _ = delta_pass(&app, &p, &uid, 3).await;

    // Assert: rescanned with the duplicate check: one new message, nothing twice.
    let on_target = target_snapshot(&target).await;
    assert_eq!(
        on_target.get(folder),
        source_snap.get(folder),
        "{folder} differs after the UIDVALIDITY change"
    );

    // The admin marks the move verified: the user's passwords are deleted (delta passes until
    // then had them; a later one asks for them again).
    let r = app
        .post(
            &format!("/api/admin/projects/{p}/users/{uid}/actions/mark_verified"),
            json!(null),
        )
        .await
        .unwrap();
    assert_eq!(r.body["state"], "verified");
    assert_eq!(r.body["has_credentials"], false);
    app.stop().await.unwrap();
}
