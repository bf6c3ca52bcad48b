//! After the first pass, against real Dovecot servers: the project's "keep in sync every N
//! hours" carries new mail, a flag change, a move between folders (moved on the target, not
//! copied again) and a deletion (removal on) and nothing else; a
//! batch's cutover runs a final delta pass and mails each user exactly once, with their own
//! settings and a device set-up link whose page and profiles hold no password.

use std::time::Duration;

use integration_tests::corpus::{Rng, bulk_corpus, message, test_corpus};
use integration_tests::{TestApp, snapshot, spawn_app, wait_for_state};
use reqwest::StatusCode;
use serde_json::{Value, json};
use testbed::{Dovecot, DovecotOptions};
use time::OffsetDateTime;

use crate::copy::{
    MASTER_PW, SOURCE_PW, expected_on_target, project_json, seed, source_server, start_ann,
    target_server, target_snapshot,
};

/// Polls until the user is in `state` at pass `pass` (a finished user is in the same state
/// before and after a delta pass).
async fn wait_for_pass(app: &TestApp, p: &str, u: &str, state: &str, pass: u64) -> Value {
    let until = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let r = app
            .get(&format!("/api/admin/projects/{p}/users/{u}"))
            .await
            .unwrap();
        let user = &r.body["user"];
        if user["state"] == state && user["pass"] == pass {
            return r.body;
        }
        assert!(
            std::time::Instant::now() < until,
            "still {} at pass {}, wanted {state} at pass {pass}: {}",
            user["state"],
            user["pass"],
            r.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn hours(n: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::hours(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_syncs_carry_new_mail_a_flag_change_a_move_and_a_deletion_and_nothing_else() {
    // Arrange: a first pass done, with removal of deleted messages on and a sync every 6 hours.
    let source = source_server();
    let target = target_server();
    seed(&source, "ann@old.example", &test_corpus(31, None));
    // A message Ann will file into another folder between two syncs, and that folder.
    let mut raw = source.raw_session("ann@old.example").unwrap();
    assert!(raw.command("CREATE Filed").unwrap().is_ok());
    let mut rng = Rng::new(33);
    let filed = message(
        &mut rng,
        1,
        Some("<to-be-filed@old.example>"),
        "Filed later",
        4000,
        OffsetDateTime::now_utc(),
    );
    let filed_uid = raw.append("INBOX", &filed, &[], None).unwrap();
    raw.logout();
    let app = spawn_app(None).await.unwrap();
    let mut project = project_json(&source, &target);
    project["copy"] = json!({"deleted_at_source": "remove"});
    project["sync"] = json!({"every_hours": 6});
    let (p, u) = start_ann(&app, project, Some(SOURCE_PW)).await;
    wait_for_state(&app, &p, &u, "completed", Duration::from_secs(120))
        .await
        .unwrap();
    let tick = app.app().sync_due(hours(5)).await.unwrap();
    assert_eq!(tick.syncs, 0, "not due before six hours");

    // Changes at the source while Ann goes on working there.
    let new_mail = bulk_corpus(32, 3);
    seed(&source, "ann@old.example", &new_mail);
    let touched: std::collections::BTreeSet<String> = new_mail
        .iter()
        .map(|m| crate::copy::target_name(&m.folder))
        .chain(["INBOX".to_owned(), "Filed".to_owned()])
        .collect();
    let mut raw = source.raw_session("ann@old.example").unwrap();
    assert!(raw.command("SELECT INBOX").unwrap().is_ok());
    assert!(raw.command("UID STORE 1 +FLAGS ($Synced)").unwrap().is_ok());
    assert!(
        raw.command("UID STORE 2 +FLAGS (\\Deleted)")
            .unwrap()
            .is_ok()
    );
    assert!(raw.command("EXPUNGE").unwrap().is_ok());
    let r = raw.command(&format!("UID MOVE {filed_uid} Filed")).unwrap();
    assert!(r.is_ok(), "{r:?}");
    raw.logout();
    let (source_snap, _) = snapshot(source.port(), "ann@old.example", SOURCE_PW)
        .await
        .unwrap();
    let before = target_snapshot(&target).await;

    // Act: the tick six hours after the pass ended.
    let tick = app.app().sync_due(hours(7)).await.unwrap();
    assert_eq!(tick.syncs, 1);
    let detail = wait_for_pass(&app, &p, &u, "completed", 2).await;

    // Assert: the target equals the source again; the folders the changes did not touch are
    // as they were; the pass says what it changed.
    let on_target = target_snapshot(&target).await;
    for (folder, items) in &expected_on_target(&source_snap) {
        assert_eq!(on_target.get(folder), Some(items), "{folder} differs");
        if !touched.contains(folder) {
            assert_eq!(before.get(folder), Some(items), "{folder} was touched");
        }
    }
    let last = &detail["user"]["last_sync"];
    assert_eq!(last["reason"], "schedule", "{last}");
    assert_eq!(last["new_messages"], 3, "{last}");
    assert_eq!(last["flag_changes"], 1, "{last}");
    assert_eq!(last["removed"], 1, "{last}");
    assert_eq!(
        last["moved"], 1,
        "moved on the target, not copied again: {last}"
    );
    assert_eq!(on_target["Filed"].len(), 1);
    // A scheduled sync mails nobody.
    let ready = app.outbox().await.unwrap();
    assert_eq!(
        ready
            .iter()
            .filter(|m| m.subject.starts_with("Ready to verify"))
            .count(),
        1,
        "only the first pass is announced"
    );
    let tick = app.app().sync_due(hours(5)).await.unwrap();
    assert_eq!(tick.syncs, 0, "the next sync waits its six hours");
}

const BOB_PW: &str = "bob-source-pw";

/// Appends the messages (creating their folders) without `seed`'s subscriptions.
fn append_all(server: &Dovecot, user: &str, corpus: &[integration_tests::corpus::SeedMessage]) {
    let mut raw = server.raw_session(user).unwrap();
    for m in corpus {
        raw.append(&m.folder, &m.bytes, &m.flags, Some(m.internaldate))
            .unwrap();
    }
    raw.logout();
}

fn two_user_servers() -> (Dovecot, Dovecot) {
    let source = Dovecot::start(
        DovecotOptions::default()
            .user("ann@old.example", SOURCE_PW)
            .user("bob@old.example", BOB_PW)
            .separator('/'),
    )
    .expect("source dovecot");
    let target = Dovecot::start(
        DovecotOptions::default()
            .user("ann@new.example", "unused")
            .user("bob@new.example", "unused")
            .master_user("admin", MASTER_PW),
    )
    .expect("target dovecot");
    (source, target)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_cutover_runs_a_final_pass_and_mails_each_user_once_with_their_own_settings() {
    // Arrange: two users imported by CSV, Ann in a batch cut over an hour ago, Bob in a later
    // one; the new accounts send mail through smtp.new.example:465.
    let (source, target) = two_user_servers();
    append_all(&source, "ann@old.example", &bulk_corpus(41, 20));
    append_all(&source, "bob@old.example", &bulk_corpus(42, 20));
    let app = spawn_app(None).await.unwrap();
    app.login().await.unwrap();
    let mut project = project_json(&source, &target);
    project["sync"] = json!({"smtp_host": "smtp.new.example", "smtp_port": 465});
    let p = app.create_project(project).await.unwrap();
    let past = hours(-1)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let later = hours(24 * 30)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let csv = format!(
        "source_email,target_email,display_name,source_password,cutover_at\n\
         ann@old.example,ann@new.example,Ann,{SOURCE_PW},{past}\n\
         bob@old.example,bob@new.example,Bob,{BOB_PW},{later}\n"
    );
    let r = app
        .post_bytes(
            &format!("/api/admin/projects/{p}/users/import"),
            "text/csv",
            csv.into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(
            &format!("/api/admin/projects/{p}/users/actions/start"),
            json!({"all": true}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let users = app
        .get(&format!("/api/admin/projects/{p}/users"))
        .await
        .unwrap();
    let id_of = |email: &str| -> String {
        users.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["source_email"] == email)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (ann, bob) = (id_of("ann@old.example"), id_of("bob@old.example"));
    for u in [&ann, &bob] {
        wait_for_state(&app, &p, u, "completed", Duration::from_secs(120))
            .await
            .unwrap();
    }
    // Mail that reaches Ann's old mailbox after her first pass.
    append_all(&source, "ann@old.example", &bulk_corpus(43, 2));

    // Act: the tick.
    let tick = app.app().sync_due(OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(tick.final_passes, 1, "Ann's batch only: {tick:?}");
    let detail = wait_for_pass(&app, &p, &ann, "cut_over", 2).await;

    // Assert: the final pass carried the late mail; Ann is cut over and mailed once.
    let (ann_source, _) = snapshot(source.port(), "ann@old.example", SOURCE_PW)
        .await
        .unwrap();
    let (ann_target, _) = snapshot(target.port(), "ann@new.example*admin", MASTER_PW)
        .await
        .unwrap();
    assert_eq!(ann_target.get("INBOX"), ann_source.get("INBOX"));
    assert_eq!(detail["user"]["last_sync"]["reason"], "cutover");
    assert_eq!(detail["user"]["last_sync"]["new_messages"], 2);
    assert!(detail["user"]["cut_over_at"].is_string());
    let tick = app.app().sync_due(OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!((tick.final_passes, tick.cut_over), (0, 0), "nothing twice");
    let moved = moved_mails(&app).await;
    assert_eq!(moved.len(), 1, "{moved:?}");
    let mail = &moved[0];
    assert_eq!(
        mail.to, "ann@old.example",
        "the mailbox she reads until the switch"
    );
    for want in [
        "Incoming (IMAP): 127.0.0.1, port",
        "Outgoing (SMTP): smtp.new.example, port 465, SSL/TLS",
        "User name: ann@new.example",
    ] {
        assert!(mail.text.contains(want), "{want}: {}", mail.text);
    }
    assert!(!mail.text.contains(SOURCE_PW) && !mail.text.contains(MASTER_PW));

    // The set-up link: the page, the Apple profile (a property list with Ann's account and no
    // password), the Thunderbird file; the credential page does not take it.
    let link = mail
        .text
        .split_whitespace()
        .find(|w| w.contains("/setup/"))
        .unwrap();
    let path = &link[link.find("/setup/").unwrap()..];
    let http = reqwest::Client::new();
    let page = http.get(app.url(path)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("ann@new.example") && html.contains("smtp.new.example"));
    let profile = http
        .get(app.url(&format!("{path}/apple.mobileconfig")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        profile.headers()["content-type"],
        "application/x-apple-aspen-config"
    );
    let bytes = profile.bytes().await.unwrap();
    let plist = plist::Value::from_reader_xml(&bytes[..]).unwrap();
    let account = plist.as_dictionary().unwrap()["PayloadContent"]
        .as_array()
        .unwrap()[0]
        .as_dictionary()
        .unwrap()
        .clone();
    assert_eq!(account["EmailAddress"].as_string(), Some("ann@new.example"));
    assert_eq!(
        account["IncomingMailServerPortNumber"].as_unsigned_integer(),
        Some(u64::from(target.port()))
    );
    assert_eq!(
        account["OutgoingMailServerHostName"].as_string(),
        Some("smtp.new.example")
    );
    assert!(!account.contains_key("IncomingPassword") && !account.contains_key("OutgoingPassword"));
    let thunderbird = app
        .get_text(&format!("{path}/thunderbird.xml"))
        .await
        .unwrap();
    assert!(
        thunderbird.contains("<hostname>smtp.new.example</hostname>"),
        "{thunderbird}"
    );
    // The project's record: Ann's row has her cutover and final pass, Bob's none yet.
    let csv = app
        .get_text(&format!("/api/admin/projects/{p}/users/export"))
        .await
        .unwrap();
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let header = rows.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    for row in rows.records().map(Result::unwrap) {
        let ann_row = &row[0] == "ann@old.example";
        assert_eq!(!row[col("cut_over_at")].is_empty(), ann_row, "{csv}");
        assert_eq!(
            &row[col("state")],
            if ann_row { "cut_over" } else { "completed" }
        );
        if ann_row {
            assert_eq!(&row[col("last_sync_new_messages")], "2", "{csv}");
        }
    }
    let token = path.trim_start_matches("/setup/");
    let r = app.get(&format!("/api/migrate/{token}")).await.unwrap();
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "a set-up link opens no credential page"
    );

    // Bob's batch is weeks away: the admin cuts him over now; he gets his own mail, once.
    assert_eq!(
        app.get(&format!("/api/admin/projects/{p}/users/{bob}"))
            .await
            .unwrap()
            .body["user"]["state"],
        "completed"
    );
    let r = app
        .post(
            &format!("/api/admin/projects/{p}/users/{bob}/actions/cut_over"),
            json!(null),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    wait_for_pass(&app, &p, &bob, "cut_over", 2).await;
    let moved = moved_mails(&app).await;
    let to: Vec<&str> = moved.iter().map(|m| m.to.as_str()).collect();
    assert_eq!(to.len(), 2, "{to:?}");
    assert!(to.contains(&"bob@old.example"), "{to:?}");
    let bobs = moved.iter().find(|m| m.to == "bob@old.example").unwrap();
    assert!(bobs.text.contains("User name: bob@new.example") && !bobs.text.contains("ann@"));
}

async fn moved_mails(app: &TestApp) -> Vec<contract::OutboxMail> {
    app.outbox()
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.subject.starts_with("Your mailbox has moved"))
        .collect()
}
