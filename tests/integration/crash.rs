//! Faults during a copy: the server process SIGKILLed at random points and restarted, the same
//! copy job handled twice at once, mail servers restarted mid-FETCH and mid-APPEND, and a
//! target that refuses one message. Every time the target must end equal to the source:
//! nothing missing, nothing duplicated.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::corpus::{Rng, SeedMessage, test_corpus};
use integration_tests::{ADMIN_PASSWORD, snapshot, spawn_app, spawn_app_with, wait_for_state};
use serde_json::{Value, json};
use testbed::{Dovecot, DovecotOptions};

use crate::copy::{
    MASTER_PW, SOURCE_PW, copy_started, expected_on_target, project_json, seed, source_server,
    target_server, target_snapshot,
};

/// A `mailferry serve` child process on a data folder.
struct ServerProcess {
    child: Child,
    base: String,
}

impl ServerProcess {
    fn start(data: &std::path::Path) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mailferry_under_test"))
            .arg("serve")
            .env("MAILFERRY_DATA_DIR", data)
            .env("MAILFERRY_LISTEN", "127.0.0.1:0")
            .env("MAILFERRY_FRONTEND_DIR", data.join("no-frontend"))
            .env("MAILFERRY_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("MAILFERRY_JOB_VISIBILITY_SECS", "2")
            .env("MAILFERRY_LEASE_SECS", "2")
            .env("MAILFERRY_CHUNK_MESSAGES", "1")
            .env("MAILFERRY_MAX_RECEIVES", "1000")
            .env("MAILFERRY_WORKERS", "3")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("the server printed its address")
                .expect("read");
            if let Some(rest) = line.strip_prefix("mailferry is listening on ") {
                break rest.split_whitespace().next().expect("url").to_owned();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        ServerProcess { child, base }
    }

    fn kill(mut self) {
        // SIGKILL: no shutdown code runs, exactly like a crashed host or an OOM kill.
        self.child.kill().expect("kill");
        self.child.wait().expect("reap");
    }
}

async fn admin(base: &str) -> reqwest::Client {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let r = http
        .post(format!("{base}/api/admin/login"))
        .json(&json!({"password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    http
}

async fn user_state(http: &reqwest::Client, base: &str, p: &str, u: &str) -> Value {
    http.get(format!("{base}/api/admin/projects/{p}/users/{u}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn big_corpus() -> Vec<SeedMessage> {
    let mut corpus = test_corpus(11, Some(2 * 1024 * 1024));
    corpus.extend(integration_tests::corpus::bulk_corpus(12, 3000));
    corpus
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_sigkills_at_random_points_lose_and_duplicate_nothing() {
    // Arrange
    let source = source_server();
    let target = target_server();
    seed(&source, "ann@old.example", &big_corpus());
    let (source_snap, _) = snapshot(source.port(), "ann@old.example", SOURCE_PW)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = ServerProcess::start(&data);
    let http = admin(&server.base).await;
    let r: Value = http
        .post(format!("{}/api/admin/projects", server.base))
        .json(&project_json(&source, &target))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let p = r["id"].as_str().unwrap().to_owned();
    let r: Value = http
        .post(format!("{}/api/admin/projects/{p}/users", server.base))
        .json(&json!({"source_email": "ann@old.example", "target_email": "ann@new.example", "source_password": SOURCE_PW}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let u = r["id"].as_str().unwrap().to_owned();
    http.post(format!(
        "{}/api/admin/projects/{p}/users/{u}/actions/start",
        server.base
    ))
    .send()
    .await
    .unwrap();

    // Act: kill at random moments while the copy runs, restart each time. Each round waits
    // until the restarted server has made progress (the job was redelivered and copying
    // resumed), then kills it after a random further delay, so every kill lands mid-copy.
    let mut rng = Rng::new(2026);
    let mut kills_while_copying = 0;
    let mut last_done = -1i64;
    for _ in 0..20 {
        let http = admin(&server.base).await;
        let waited = Instant::now();
        loop {
            let d = user_state(&http, &server.base, &p, &u).await;
            let done = d["user"]["progress"]["messages_done"].as_i64().unwrap_or(0);
            if d["user"]["state"] == "completed" || waited.elapsed() > Duration::from_secs(30) {
                break;
            }
            if done > last_done {
                last_done = done;
                kills_while_copying += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
        server.kill();
        server = ServerProcess::start(&data);
    }
    let http = admin(&server.base).await;
    let until = Instant::now() + Duration::from_secs(240);
    let detail = loop {
        let d = user_state(&http, &server.base, &p, &u).await;
        if d["user"]["state"] == "completed" {
            break d;
        }
        assert!(Instant::now() < until, "not completed: {d}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    server.kill();

    // Assert
    assert_eq!(
        kills_while_copying, 20,
        "only {kills_while_copying} kills hit a running copy; make the corpus larger"
    );
    let on_target = target_snapshot(&target).await;
    for (folder, items) in &expected_on_target(&source_snap) {
        let got = on_target.get(folder).cloned().unwrap_or_default();
        let missing = items.iter().filter(|i| !got.contains(i)).count();
        assert_eq!(
            got.len(),
            items.len(),
            "{folder}: {} on target, {} on source, {missing} missing",
            got.len(),
            items.len()
        );
        assert_eq!(&got, items, "{folder} differs");
    }
    for f in detail["folders"].as_array().unwrap() {
        assert_eq!(f["source_messages"], f["target_messages"], "{f}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_copy_job_handled_twice_at_once_duplicates_nothing() {
    let source = source_server();
    let target = target_server();
    seed(&source, "ann@old.example", &test_corpus(21, None));
    let (source_snap, _) = snapshot(source.port(), "ann@old.example", SOURCE_PW)
        .await
        .unwrap();
    let mut app = spawn_app(None).await.unwrap();
    let (p, u) = copy_started(&app, &source, &target).await;
    // Handle the INBOX copy job twice at once, next to the worker loop's own delivery of it.
    let domain_app = app.app().clone();
    let uid = domain::UserId(u.parse().unwrap());
    wait_for_state(&app, &p, &u, "working", Duration::from_secs(30))
        .await
        .ok();
    let job = contract::jobs::Job::Copy {
        user_id: uid.0,
        pass: 1,
        folder: "INBOX".into(),
        attempt: 0,
    };
    let (a, b) = tokio::join!(
        domain_app.handle_job(&job, Duration::from_secs(60)),
        domain_app.handle_job(&job, Duration::from_secs(60))
    );
    a.unwrap();
    b.unwrap();
    wait_for_state(&app, &p, &u, "completed", Duration::from_secs(120))
        .await
        .unwrap();
    let on_target = target_snapshot(&target).await;
    assert_eq!(
        on_target.get("INBOX"),
        source_snap.get("INBOX"),
        "INBOX differs"
    );
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_server_restarts_mid_copy_are_survived() {
    let source = source_server();
    let target = target_server();
    seed(
        &source,
        "ann@old.example",
        &test_corpus(31, Some(4 * 1024 * 1024)),
    );
    let (source_snap, _) = snapshot(source.port(), "ann@old.example", SOURCE_PW)
        .await
        .unwrap();
    let mut app = spawn_app(None).await.unwrap();
    let (p, u) = copy_started(&app, &source, &target).await;
    // Drop every connection while the copy runs: the target (mid-APPEND), then the source
    // (mid-FETCH).
    tokio::time::sleep(Duration::from_millis(150)).await;
    tokio::task::block_in_place(|| target.restart()).unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    tokio::task::block_in_place(|| source.restart()).unwrap();
    let detail = wait_for_state(&app, &p, &u, "completed", Duration::from_secs(180))
        .await
        .unwrap();
    let on_target = target_snapshot(&target).await;
    for (folder, items) in &expected_on_target(&source_snap) {
        assert_eq!(on_target.get(folder), Some(items), "{folder} differs");
    }
    assert!(detail["events"].as_array().is_some());
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_target_refuses_is_skipped_with_its_reason_and_the_rest_completes() {
    let source = source_server();
    let target = Dovecot::start(
        DovecotOptions::default()
            .user("ann@new.example", "unused")
            .master_user("admin", MASTER_PW)
            .max_mail_size(1024 * 1024),
    )
    .unwrap();
    let corpus = test_corpus(41, Some(3 * 1024 * 1024));
    seed(&source, "ann@old.example", &corpus);
    let (source_snap, _) = snapshot(source.port(), "ann@old.example", SOURCE_PW)
        .await
        .unwrap();
    let mut app = spawn_app(None).await.unwrap();
    let (p, u) = copy_started(&app, &source, &target).await;
    let detail = wait_for_state(&app, &p, &u, "completed", Duration::from_secs(120))
        .await
        .unwrap();
    let inbox = detail["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["source_name"] == "INBOX")
        .unwrap()
        .clone();
    let skipped = inbox["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{inbox}");
    assert!(skipped[0]["size"].as_u64().unwrap() > 3 * 1024 * 1024);
    assert!(
        skipped[0]["reason"].as_str().unwrap().contains("refused"),
        "{}",
        skipped[0]
    );
    assert_eq!(detail["user"]["progress"]["skipped"], 1);
    // Everything else arrived.
    let on_target = snapshot(target.port(), "ann@new.example*admin", MASTER_PW)
        .await
        .unwrap()
        .0;
    let expected = expected_on_target(&source_snap);
    assert_eq!(
        on_target.get("INBOX").map(Vec::len),
        expected.get("INBOX").map(|v| v.len() - 1)
    );
    for (folder, items) in expected
        .iter()
        .filter(|(f, _)| f.as_str() != "INBOX" && f.as_str() != "Sent Items")
    {
        assert_eq!(on_target.get(folder), Some(items), "{folder} differs");
    }

    // Retry skipped, through the API: the folder is compared with the target again and the
    // refused message tried again. The target still refuses it (its limit did not change):
    // it is listed once more, and nothing else arrives twice.
    let r = app
        .post(
            &format!("/api/admin/projects/{p}/users/{u}/actions/retry_skipped"),
            json!(null),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["pass"], 2, "{:?}", r.body);
    let detail = wait_for_state(&app, &p, &u, "completed", Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(detail["user"]["pass"], 2);
    let inbox = detail["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["source_name"] == "INBOX")
        .unwrap()
        .clone();
    assert_eq!(inbox["skipped"].as_array().unwrap().len(), 1, "{inbox}");
    assert_eq!(inbox["skipped_count"], 1, "{inbox}");
    let again = snapshot(target.port(), "ann@new.example*admin", MASTER_PW)
        .await
        .unwrap()
        .0;
    assert_eq!(again, on_target, "the retry copied nothing twice");
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_keeps_failing_marks_the_user_failed_instead_of_hanging() {
    // Arrange: a target that accepts the login test but is gone when the copy runs.
    let source = source_server();
    let target = target_server();
    seed(&source, "ann@old.example", &test_corpus(61, None));
    let mut app = spawn_app_with(None, |a| {
        a.max_receives = 2;
        a.job_visibility_secs = 2;
    })
    .await
    .unwrap();
    app.login().await.unwrap();
    let p = app
        .create_project(project_json(&source, &target))
        .await
        .unwrap();
    tokio::task::block_in_place(|| target.stop()).unwrap();
    let r = app
        .post(&format!("/api/admin/projects/{p}/users"), json!({"source_email": "ann@old.example", "target_email": "ann@new.example", "source_password": SOURCE_PW}))
        .await
        .unwrap();
    let u = r.body["id"].as_str().unwrap().to_owned();

    // Act
    app.post(
        &format!("/api/admin/projects/{p}/users/{u}/actions/start"),
        json!(null),
    )
    .await
    .unwrap();

    // Assert: failed, with the reason, not stuck in "scheduled" or "copying".
    let detail = wait_for_state(&app, &p, &u, "failed", Duration::from_secs(60))
        .await
        .unwrap();
    let error = detail["user"]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(error.contains("repeated failures"), "{error}");
    app.stop().await.unwrap();
}
