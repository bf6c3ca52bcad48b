//! Connection caps against real Dovecot servers that refuse more than two connections per user
//! and address (`mail_max_userip_connections = 2`): several users with several folders each,
//! copied by eight workers of the local server at once, complete with no login refused, and the
//! servers' own logs show at most the project's caps in use at any moment.

use std::collections::BTreeMap;
use std::time::Duration;

use integration_tests::corpus::{bulk_corpus, test_corpus};
use integration_tests::{snapshot, spawn_app_with, wait_for_state};
use reqwest::StatusCode;
use serde_json::json;
use testbed::{Dovecot, DovecotOptions, SpecialFolder};

use crate::copy::{MASTER_PW, expected_on_target, seed};

const USERS: [&str; 4] = ["ann", "bob", "cy", "dee"];
const PW: &str = "source-pw";
/// The project's caps: two per mailbox (what the servers take) and three on the source server.
const PER_MAILBOX: usize = 2;
const SOURCE_SERVER: usize = 3;

/// The most sessions the server's log shows open at once: over all users, and per user.
/// Dovecot logs each login (`imap-login: Info: Login: user=<…>`) and each end
/// (`imap(<user>)<pid><session>: Info: Disconnected: Logged out …`) in the order they happen.
fn peak_sessions(log: &str) -> (usize, BTreeMap<String, usize>) {
    let mut open: BTreeMap<String, usize> = BTreeMap::new();
    let mut peak: BTreeMap<String, usize> = BTreeMap::new();
    let (mut total, mut peak_total) = (0usize, 0usize);
    for line in log.lines() {
        if let Some(rest) = line.split("imap-login: Info: Login: user=<").nth(1) {
            let user = rest.split('>').next().unwrap_or_default().to_owned();
            let n = open.entry(user.clone()).or_default();
            *n += 1;
            let n = *n;
            let p = peak.entry(user).or_default();
            *p = (*p).max(n);
            total += 1;
            peak_total = peak_total.max(total);
        } else if let Some(rest) = line.split(" imap(").nth(1)
            && (line.contains("Disconnected") || line.contains("Logged out"))
        {
            let user = rest.split(')').next().unwrap_or_default().to_owned();
            if let Some(n) = open.get_mut(&user).filter(|n| **n > 0) {
                *n -= 1;
                total = total.saturating_sub(1);
            }
        }
    }
    (peak_total, peak)
}

/// A server like the copy tests' source (`/` separator, Sent) or target (`.`, Sent Items,
/// the admin master user), taking two connections per user and address.
fn capped_server(domain: &str, target: bool) -> Dovecot {
    let mut options = DovecotOptions::default().max_userip_connections(PER_MAILBOX as u32);
    for user in USERS {
        options = options.user(format!("{user}@{domain}"), PW);
    }
    let sent = if target { "Sent Items" } else { "Sent" };
    options = options.special_folders(vec![SpecialFolder {
        name: sent.into(),
        special_use: "\\Sent".into(),
        auto_create: true,
    }]);
    options = if target {
        options.master_user("admin", MASTER_PW)
    } else {
        options.separator('/')
    };
    Dovecot::start(options).expect("dovecot")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_users_and_folders_stay_within_the_servers_connection_caps() {
    let source = capped_server("old.example", false);
    let target = capped_server("new.example", true);
    for (i, user) in USERS.iter().enumerate() {
        let mut corpus = test_corpus(40 + i as u64, None);
        corpus.extend(bulk_corpus(50 + i as u64, 600));
        seed(&source, &format!("{user}@old.example"), &corpus);
    }
    // More workers than any cap: without the limiter they would open eight sessions at once.
    let app = spawn_app_with(None, |args| args.workers = 8).await.unwrap();
    app.login().await.unwrap();
    let p = app
        .create_project(json!({
            "name": "Capped servers",
            "source": {"host": "127.0.0.1", "port": source.port(), "security": "plaintext", "auth": {"mode": "per_user"}},
            "target": {"host": "127.0.0.1", "port": target.port(), "security": "plaintext",
                       "auth": {"mode": "admin", "login_pattern": "{email}*admin", "password": MASTER_PW}},
            "invite_to": "none",
            "copy": {"limits": {"per_mailbox": PER_MAILBOX, "source_server": SOURCE_SERVER}}
        }))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for user in USERS {
        let r = app
            .post(
                &format!("/api/admin/projects/{p}/users"),
                json!({"source_email": format!("{user}@old.example"),
                       "target_email": format!("{user}@new.example"),
                       "source_password": PW}),
            )
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    for u in &ids {
        let r = app
            .post(
                &format!("/api/admin/projects/{p}/users/{u}/actions/start"),
                json!(null),
            )
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    for u in &ids {
        let done = wait_for_state(&app, &p, u, "completed", Duration::from_secs(240))
            .await
            .unwrap();
        assert_eq!(
            done["user"]["last_error"],
            serde_json::Value::Null,
            "{done}"
        );
    }
    for user in USERS {
        let (on_source, _) = snapshot(source.port(), &format!("{user}@old.example"), PW)
            .await
            .unwrap();
        let login = format!("{user}@new.example*admin");
        let (on_target, _) = snapshot(target.port(), &login, MASTER_PW).await.unwrap();
        for (folder, items) in &expected_on_target(&on_source) {
            assert_eq!(
                on_target.get(folder),
                Some(items),
                "{user}: {folder} differs"
            );
        }
    }

    for (side, server, server_cap) in [
        ("source", &source, Some(SOURCE_SERVER)),
        ("target", &target, None),
    ] {
        let log = std::fs::read_to_string(server.log_path()).unwrap_or_default();
        assert!(
            !log.contains("Maximum number of connections"),
            "the {side} refused a login for too many connections"
        );
        let (total, per_user) = peak_sessions(&log);
        println!("{side}: at most {total} sessions at once; per user {per_user:?}");
        assert!(
            per_user.len() >= USERS.len(),
            "every user logged in: {per_user:?}"
        );
        for (user, peak) in &per_user {
            assert!(
                *peak <= PER_MAILBOX,
                "{side} {user}: {peak} sessions at once"
            );
        }
        if let Some(cap) = server_cap {
            assert!(total <= cap, "{side}: {total} sessions at once, cap {cap}");
        }
    }
}
