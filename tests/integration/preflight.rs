//! The preflight against real Dovecot servers: a target with a storage quota smaller than the
//! mailbox and a largest message size; the report finds every folder and message, the
//! messages over the limit, the quota that will not hold the copy, and the capabilities —
//! and the target is left exactly as it was.

use integration_tests::corpus::test_corpus;
use integration_tests::{TestApp, snapshot, spawn_app};
use reqwest::StatusCode;
use serde_json::json;
use testbed::{Dovecot, DovecotOptions, SpecialFolder};

use crate::copy::{MASTER_PW, SOURCE_PW, project_json, seed, source_server};

/// Messages over this many bytes do not fit the target.
const LARGEST: u64 = 200_000;
/// The target's storage quota: less than the mailbox.
const QUOTA: u64 = 1_000_000;

fn small_target() -> Dovecot {
    Dovecot::start(
        DovecotOptions::default()
            .user("ann@new.example", "unused")
            .master_user("admin", MASTER_PW)
            .special_folders(vec![SpecialFolder {
                name: "Sent Items".into(),
                special_use: "\\Sent".into(),
                auto_create: true,
            }])
            .storage_quota(QUOTA)
            .max_mail_size(LARGEST)
            // Dovecot refuses larger messages but does not announce it; a server that does
            // says APPENDLIMIT (RFC 7889). `+` adds to Dovecot's own list.
            .capabilities(format!("+APPENDLIMIT={LARGEST}")),
    )
    .expect("target dovecot")
}

/// Signs in, creates the project and adds Ann with her source password (not started);
/// returns the project and user ids.
async fn ann_added(app: &TestApp, source: &Dovecot, target: &Dovecot) -> (String, String) {
    app.login().await.unwrap();
    let p = app
        .create_project(project_json(source, target))
        .await
        .unwrap();
    let r = app
        .post(
            &format!("/api/admin/projects/{p}/users"),
            json!({"source_email": "ann@old.example", "target_email": "ann@new.example",
                   "source_password": SOURCE_PW}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    (p, r.body["id"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preflight_finds_what_will_not_fit_and_copies_nothing() {
    let source = source_server();
    let target = small_target();
    // The corpus (about 90 messages, 1 MB) and one message over the target's largest.
    let corpus = test_corpus(7, Some(300_000));
    seed(&source, "ann@old.example", &corpus);
    let over: u64 = corpus
        .iter()
        .filter(|m| m.bytes.len() as u64 > LARGEST)
        .count() as u64;
    let total: u64 = corpus.iter().map(|m| m.bytes.len() as u64).sum();
    let (on_target_before, _) = snapshot(target.port(), "ann@new.example*admin", MASTER_PW)
        .await
        .unwrap();

    let app = spawn_app(None).await.unwrap();
    let (p, u) = ann_added(&app, &source, &target).await;

    let r = app
        .post(
            &format!("/api/admin/projects/{p}/users/{u}/preflight"),
            json!(null),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let report = &r.body;
    println!("{}", serde_json::to_string_pretty(report).unwrap());

    assert_eq!(report["messages"], corpus.len() as u64);
    assert_eq!(report["bytes"], total, "the sizes the source reports");
    let folders: std::collections::BTreeSet<&str> =
        corpus.iter().map(|m| m.folder.as_str()).collect();
    let reported: Vec<&str> = report["folders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["messages"].as_u64() > Some(0))
        .map(|f| f["source"].as_str().unwrap())
        .collect();
    assert_eq!(reported.len(), folders.len(), "{reported:?}");
    let sent = report["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["source"] == "Sent")
        .unwrap();
    assert_eq!(
        sent["target"], "Sent Items",
        "mapped by role as the copy maps it"
    );
    assert!(report["largest_message_bytes"].as_u64().unwrap() > LARGEST);
    // Dovecot reports the quota in KiB: 1,000,000 bytes is 977 KiB.
    assert_eq!(report["target_quota"]["limit_bytes"], 977 * 1024);
    assert_eq!(report["fits_quota"], false);
    let problems = report["problems"].to_string();
    assert!(
        problems.contains(
            "the target is over quota by 0.1 MB: 1.1 MB would arrive, 1.0 MB of 1.0 MB are free"
        ),
        "{problems}"
    );
    let target_caps = report["target_capabilities"].to_string();
    assert!(
        target_caps.contains("QUOTA") && target_caps.contains("UIDPLUS"),
        "{target_caps}"
    );
    assert!(
        report["source_capabilities"]
            .to_string()
            .contains("CONDSTORE")
    );
    assert_eq!(
        report["target_max_message_bytes"], LARGEST,
        "its APPENDLIMIT"
    );
    assert_eq!(report["oversize_messages"], over);
    assert_eq!(over, 1, "the corpus's one big message");
    assert!(
        problems
            .contains("1 message is larger than the target takes (0.2 MB); it would be skipped"),
        "{problems}"
    );
    assert!(
        target_caps.contains(&format!("APPENDLIMIT={LARGEST}")),
        "{target_caps}"
    );
    assert_eq!(report["rate_measured"], false, "nothing was copied yet");
    assert!(report["estimate_seconds"].as_u64().is_some());

    // Nothing was created or copied, and the user did not move.
    let (on_target_after, _) = snapshot(target.port(), "ann@new.example*admin", MASTER_PW)
        .await
        .unwrap();
    assert_eq!(on_target_after, on_target_before);
    let detail = app
        .get(&format!("/api/admin/projects/{p}/users/{u}"))
        .await
        .unwrap();
    assert_eq!(detail.body["user"]["state"], "new");
    // The audit trail says who used the stored password, and for what.
    let audit = app
        .get(&format!("/api/admin/projects/{p}/audit"))
        .await
        .unwrap();
    assert!(
        audit
            .body
            .to_string()
            .contains("a preflight signed in with the stored source password"),
        "{}",
        audit.body
    );
}

/// `mailferry copy --preflight` against the same servers: the report as JSON, exit code 1
/// because something would not fit, and still nothing on the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_command_preflights_and_exits_1_when_something_would_not_fit() {
    let source = source_server();
    let target = small_target();
    seed(&source, "ann@old.example", &test_corpus(8, Some(300_000)));
    let (before, _) = snapshot(target.port(), "ann@new.example*admin", MASTER_PW)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("ann.state");

    let (code, report) = tokio::task::block_in_place(|| {
        crate::cli::run_copy(&source, &target, &state, &["--preflight"])
    });

    assert_eq!(code, 1, "{report}");
    assert_eq!(report["oversize_messages"], 1);
    assert_eq!(report["fits_quota"], false);
    let (after, _) = snapshot(target.port(), "ann@new.example*admin", MASTER_PW)
        .await
        .unwrap();
    assert_eq!(after, before, "a preflight copies nothing");
}

/// The bulk action: the preflight runs as a queue job, its findings land on the user, and the
/// project sums them in words and as CSV; the user does not move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_preflight_runs_in_the_background_and_the_project_sums_it() {
    let source = source_server();
    let target = small_target();
    seed(&source, "ann@old.example", &test_corpus(9, Some(300_000)));
    let app = spawn_app(None).await.unwrap();
    let (p, u) = ann_added(&app, &source, &target).await;
    let totals = app
        .get(&format!("/api/admin/projects/{p}/preflight"))
        .await
        .unwrap();
    assert_eq!(totals.body["text"], "1 user not checked yet");

    let r = app
        .post(
            &format!("/api/admin/projects/{p}/users/actions/preflight"),
            json!({"all": true}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let user = loop {
        let d = app
            .get(&format!("/api/admin/projects/{p}/users/{u}"))
            .await
            .unwrap();
        if d.body["user"]["preflight"].is_object() {
            break d.body["user"].clone();
        }
        assert!(
            std::time::Instant::now() < until,
            "no preflight result: {}",
            d.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let found = &user["preflight"];
    assert_eq!(found["oversize_messages"], 1, "{found}");
    assert_eq!(found["fits_quota"], false, "{found}");
    assert!(found["error"].is_null(), "{found}");
    assert_eq!(user["state"], "new", "a preflight moves nobody");

    // The watchdog's tick sums the project again; the project view shows the words.
    assert_eq!(app.app().refresh_preflight_totals().await.unwrap(), 1);
    assert_eq!(
        app.app().refresh_preflight_totals().await.unwrap(),
        0,
        "once"
    );
    let view = app.get(&format!("/api/admin/projects/{p}")).await.unwrap();
    assert_eq!(
        view.body["preflight"],
        "0 users ready, 1 over quota, 1 oversize message (in 1 user)"
    );
    let totals = app
        .get(&format!("/api/admin/projects/{p}/preflight"))
        .await
        .unwrap();
    assert_eq!(totals.body["checked"], 1);
    assert_eq!(totals.body["over_quota"], 1);
    assert_eq!(
        totals.body["text"],
        "0 users ready, 1 over quota, 1 oversize message (in 1 user)"
    );
    let csv = app
        .get_text(&format!("/api/admin/projects/{p}/preflight/export"))
        .await
        .unwrap();
    let row = csv.lines().nth(1).unwrap();
    assert!(
        row.starts_with("ann@old.example,ann@new.example,") && row.contains(",false,"),
        "{csv}"
    );
}
