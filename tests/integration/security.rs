//! Attacks on other people's passwords, each as a test that failed on the code before the fix
//! (issue 14): what an attacker holding a forwarded link, or sitting next to the console, could
//! do.

use integration_tests::spawn_app;
use reqwest::StatusCode;
use serde_json::json;
use testbed::{Dovecot, DovecotOptions};

/// A project whose source asks each user for a password, with Bob invited; returns the app,
/// the Dovecot servers (kept alive) and Bob's link token.
async fn invited_bob() -> (integration_tests::TestApp, Dovecot, Dovecot, String) {
    let source = Dovecot::start(DovecotOptions::default().user("bob@old.example", "bob-source-pw"))
        .expect("source dovecot");
    let target = Dovecot::start(
        DovecotOptions::default()
            .user("bob@new.example", "unused")
            .master_user("admin", "master-pw"),
    )
    .expect("target dovecot");
    let app = spawn_app(None).await.unwrap();
    app.login().await.unwrap();
    let p = app
        .create_project(json!({
            "name": "Attacked",
            "source": {"host": "127.0.0.1", "port": source.port(), "security": "plaintext", "auth": {"mode": "per_user"}},
            "target": {"host": "127.0.0.1", "port": target.port(), "security": "plaintext",
                       "auth": {"mode": "admin", "login_pattern": "{email}*admin", "password": "master-pw"}},
            "invite_to": "source"
        }))
        .await
        .unwrap();
    let r = app
        .post(
            &format!("/api/admin/projects/{p}/users"),
            json!({"source_email": "bob@old.example", "target_email": "bob@new.example"}),
        )
        .await
        .unwrap();
    let uid = r.body["id"].as_str().unwrap().to_owned();
    app.post(
        &format!("/api/admin/projects/{p}/users/{uid}/actions/start"),
        json!(null),
    )
    .await
    .unwrap();
    let token = app.invite_token_for("bob@old.example").await.unwrap();
    (app, source, target, token)
}

/// 20 wrong passwords sent at once through one link: before, 18 were tried against the mail
/// server before the link locked. Now an attempt is taken before the server is asked and only
/// one password of a link is tested at a time; the others are told to come back (429 with
/// Retry-After), and the attempts spent match the passwords tested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_through_one_link_cannot_exceed_its_attempts() {
    let (app, _source, _target, token) = invited_bob().await;
    let url = app.url(&format!("/api/migrate/{token}/credentials"));
    let guesses = (0..20).map(|i| {
        let http = app.http.clone();
        let url = url.clone();
        async move {
            let r = http
                .post(url)
                .json(&json!({"source_password": format!("guess-{i}")}))
                .send()
                .await
                .unwrap();
            let retry_after = r.headers().get("retry-after").cloned();
            (r.status(), retry_after)
        }
    });
    let answers = futures_join_all(guesses).await;

    let tested = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::UNPROCESSABLE_ENTITY)
        .count();
    let waits: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!((1..=5).contains(&tested), "{answers:?}");
    assert_eq!(tested + waits.len(), 20, "{answers:?}");
    assert!(
        waits.iter().all(|(_, h)| h.is_some()),
        "429 without Retry-After"
    );
    let view = app.get(&format!("/api/migrate/{token}")).await.unwrap();
    assert_eq!(
        view.body["attempts_left"],
        5 - tested as u64,
        "{:?}",
        view.body
    );
}

/// Runs the futures at once on the test's runtime.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// Wrong admin passwords: before, 30 were answered in 1.2 s with no slowing down. Now a client
/// waits after its third failure (429 with Retry-After), doubling with each further one, and the
/// right password works once the wait is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_admin_passwords_slow_the_client_down() {
    let app = spawn_app(None).await.unwrap();
    let url = app.url("/api/admin/login");
    let try_password = |password: &'static str| {
        let http = app.http.clone();
        let url = url.clone();
        async move {
            let r = http
                .post(url)
                .json(&json!({"password": password}))
                .send()
                .await
                .unwrap();
            let wait = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            (r.status(), wait)
        }
    };
    for _ in 0..3 {
        let (status, _) = try_password("wrong").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let (status, wait) = try_password("wrong").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let wait = wait.expect("Retry-After");
    assert!((1..=2).contains(&wait), "{wait}");
    // Even the right password waits its turn.
    let (status, _) = try_password(integration_tests::ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    tokio::time::sleep(std::time::Duration::from_millis(wait * 1000 + 100)).await;
    let (status, _) = try_password(integration_tests::ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
}

/// Outbox mails hold live invite links: before, they were written 0644 in a 0755 folder. Now
/// only the server's user can read the data folder, the outbox and each mail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_and_the_data_folder_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let (app, _source, _target, _token) = invited_bob().await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&app.data_dir), 0o700);
    let outbox = std::fs::read_dir(&app.data_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir() && p.file_name().is_some_and(|n| n == "outbox"))
        .expect("an outbox folder");
    assert_eq!(mode(&outbox), 0o700);
    let mails: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!mails.is_empty());
    for mail in mails {
        assert_eq!(mode(&mail), 0o600, "{}", mail.display());
    }
}

/// A NUL byte or an escape sequence in a name: before, accepted and stored. Now refused with
/// the field named, and nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_names_are_refused() {
    let (app, _source, _target, _token) = invited_bob().await;
    let r = app
        .post(
            "/api/admin/projects",
            json!({
                "name": "Evil\u{0}project",
                "source": {"host": "127.0.0.1", "port": 1, "security": "plaintext", "auth": {"mode": "per_user"}},
                "target": {"host": "127.0.0.1", "port": 2, "security": "plaintext", "auth": {"mode": "per_user"}},
                "invite_to": "source"
            }),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.body["details"]["field"], "name");
    let projects = app.get("/api/admin/projects").await.unwrap();
    assert_eq!(projects.body.as_array().unwrap().len(), 1, "nothing stored");
    let p = projects.body[0]["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/admin/projects/{p}/users"),
            json!({"source_email": "eve@old.example", "target_email": "eve@new.example",
                   "display_name": "Eve\u{1b}[31m"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let csv =
        "source_email,target_email,display_name\neve@old.example,eve@new.example,\"Eve\u{0}\"\n";
    let r = app
        .post_bytes(
            &format!("/api/admin/projects/{p}/users/import"),
            "text/csv",
            csv.as_bytes().to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
}

/// A display name over two lines (a quoted CSV field may hold one): before, sending the invite
/// panicked in the mail library, the request got no answer and the invite row was left behind.
/// Now the name goes into the header on one line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_display_name_over_two_lines_still_gets_its_invite() {
    let (app, _source, _target, _token) = invited_bob().await;
    let projects = app.get("/api/admin/projects").await.unwrap();
    let p = projects.body[0]["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/admin/projects/{p}/users"),
            json!({"source_email": "carl@old.example", "target_email": "carl@new.example",
                   "display_name": "Carl\nSmith"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let uid = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/admin/projects/{p}/users/{uid}/actions/start"),
            json!(null),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let mails = app.outbox().await.unwrap();
    assert!(
        mails
            .iter()
            .any(|m| m.to == "carl@new.example" || m.to == "carl@old.example"),
        "{mails:?}"
    );
}

/// A page on another site posting to the API with the admin's cookie: before, the CSV import
/// took `text/plain` (a cross-site form sends it without asking) and every route took a foreign
/// `Origin`. Now both are refused and nothing changes; the console's own origin still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_requests_cannot_change_anything() {
    let (app, _source, _target, _token) = invited_bob().await;
    let projects = app.get("/api/admin/projects").await.unwrap();
    let p = projects.body[0]["id"].as_str().unwrap().to_owned();
    let users_before = app
        .get(&format!("/api/admin/projects/{p}/users"))
        .await
        .unwrap()
        .body["total"]
        .clone();
    let csv = "source_email,target_email\neve@old.example,eve@new.example\n";
    let import = app.url(&format!("/api/admin/projects/{p}/users/import"));
    let r = app
        .http
        .post(&import)
        .header("content-type", "text/plain")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = app
        .http
        .post(&import)
        .header("content-type", "text/csv")
        .header("origin", "https://evil.example")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let after = app
        .get(&format!("/api/admin/projects/{p}/users"))
        .await
        .unwrap()
        .body["total"]
        .clone();
    assert_eq!(after, users_before, "nothing imported");
    // The console itself (same origin as the server) goes through.
    let own = app.base.trim_end_matches('/').to_owned();
    let r = app
        .http
        .post(&import)
        .header("content-type", "text/csv")
        .header("origin", own)
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// "Test connection" pointed at something that is not a mail server: before, the error repeated
/// what the other side sent (an internal service's banner). Now it says only that the server
/// does not answer like an IMAP server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_test_does_not_repeat_what_the_other_side_sent() {
    let app = spawn_app(None).await.unwrap();
    app.login().await.unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::Write;
        for stream in listener.incoming().take(1) {
            let mut stream = stream.unwrap();
            let _ = stream
                .write_all(b"HTTP/1.1 400 Bad Request\r\nServer: internal-secret-banner\r\n\r\n");
        }
    });
    let r = app
        .post(
            "/api/admin/connectors/test",
            json!({"connector": {"host": "127.0.0.1", "port": port, "security": "plaintext",
                                 "auth": {"mode": "per_user"}},
                   "email": "ann@old.example", "password": "pw"}),
        )
        .await
        .unwrap();
    let text = r.body.to_string();
    assert_eq!(r.body["ok"], false, "{text}");
    assert!(!text.contains("internal-secret-banner"), "{text}");
    assert!(!text.contains("HTTP/1.1"), "{text}");
}

/// A hosted deployment must not be a probe of its own machine: before, a connection test dialled
/// any address (in Lambda, the runtime API on 127.0.0.1:9001 and the metadata service). With
/// the reach a hosted deployment uses, loopback and link-local addresses are refused before
/// anything is sent; the local server, whose mail servers often run beside it, reaches them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosted_deployment_reaches_no_loopback_or_metadata_address() {
    use domain::mailbox::MailServers;
    let dovecot =
        Dovecot::start(DovecotOptions::default().user("ann@old.example", "pw")).expect("dovecot");
    let hosted = imap::ImapMailboxes::new(imap::TlsConfig::no_roots())
        .reaching(imap::Reach::PublicAndPrivateNetworks);
    let local = imap::ImapMailboxes::new(imap::TlsConfig::no_roots());
    let timeout = std::time::Duration::from_secs(10);
    for host in ["127.0.0.1", "localhost", "169.254.169.254"] {
        let endpoint = domain::Endpoint {
            host: host.into(),
            port: dovecot.port(),
            security: contract::Security::Plaintext,
        };
        let refused = hosted
            .test_login(
                &endpoint,
                "ann@old.example",
                &domain::Credential::password("pw"),
                timeout,
            )
            .await
            .unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("loopback, link-local or cloud metadata"),
            "{host}: {refused}"
        );
    }
    let endpoint = domain::Endpoint {
        host: "127.0.0.1".into(),
        port: dovecot.port(),
        security: contract::Security::Plaintext,
    };
    local
        .test_login(
            &endpoint,
            "ann@old.example",
            &domain::Credential::password("pw"),
            timeout,
        )
        .await
        .expect("the local server reaches loopback");
}

/// Pointing a project at another server keeps no password: before, an edit of the host (or of
/// the security, down to plaintext) kept the sealed admin password, and the next connection
/// test sent it to the new host. Now such an edit needs the password again, and the sealed
/// password only opens for the server it was entered for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_password_never_follows_an_edit_to_another_server() {
    let (app, _source, target, _token) = invited_bob().await;
    let projects = app.get("/api/admin/projects").await.unwrap();
    let project = projects.body[0].clone();
    let p = project["id"].as_str().unwrap().to_owned();
    let edit = |host: &str, port: u16, security: &str, password: Option<&str>| {
        let mut auth = json!({"mode": "admin", "login_pattern": "{email}*admin"});
        if let Some(pw) = password {
            auth["password"] = json!(pw);
        }
        json!({
            "name": "Attacked",
            "source": {"host": "127.0.0.1", "port": project["source"]["port"], "security": "plaintext", "auth": {"mode": "per_user"}},
            "target": {"host": host, "port": port, "security": security, "auth": auth},
            "invite_to": "source"
        })
    };
    let put = |body: serde_json::Value| {
        let http = app.http.clone();
        let url = app.url(&format!("/api/admin/projects/{p}"));
        async move {
            let r = http.put(url).json(&body).send().await.unwrap();
            let status = r.status();
            (
                status,
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    for (host, port, security) in [
        ("attacker.example", target.port(), "plaintext"),
        ("127.0.0.1", target.port() + 1, "plaintext"),
        ("127.0.0.1", target.port(), "starttls"),
    ] {
        let (status, body) = put(edit(host, port, security, None)).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{host}:{port} {security}: {body}"
        );
        assert_eq!(body["details"]["field"], "target.auth.password", "{body}");
    }
    // The same server keeps its password without retyping it, and the test still logs in.
    let (status, body) = put(edit("127.0.0.1", target.port(), "plaintext", None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r = app
        .post(
            &format!("/api/admin/projects/{p}/test/target"),
            json!({"email": "bob@new.example"}),
        )
        .await
        .unwrap();
    assert_eq!(r.body["ok"], true, "{:?}", r.body);
}

/// The credential page promises that a password is deleted when the move is finished: before,
/// passwords stayed sealed until the user was deleted. Now marking a user verified deletes them
/// (the user's events say so), "Purge passwords" deletes them at once (refused while the user
/// copies: the domain's `user_action`), and a later delta asks for them again instead of failing
/// mid-copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_are_deleted_when_the_move_is_verified_or_on_demand() {
    let (app, _source, _target, token) = invited_bob().await;
    let (p, uid) = bob_copied(&app, &token).await;
    let action = |name: &str| {
        let path = format!("/api/admin/projects/{p}/users/{uid}/actions/{name}");
        let app = &app;
        async move { app.post(&path, json!(null)).await.unwrap() }
    };
    // While the user copies, a purge is refused.
    let r = action("purge_credentials").await;
    if r.status == StatusCode::CONFLICT {
        assert!(
            r.body["message"]
                .as_str()
                .unwrap()
                .contains("pause the user first")
        );
    }
    let r = action("mark_verified").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "verified");
    assert_eq!(r.body["has_credentials"], false, "{:?}", r.body);
    let detail = app
        .get(&format!("/api/admin/projects/{p}/users/{uid}"))
        .await
        .unwrap();
    let events = detail.body["events"].to_string();
    assert!(events.contains("stored passwords deleted"), "{events}");
    let r = action("delta").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("resend the invite")
    );
}

/// A user's own password follows no edit either: entered for one source server, it is not used
/// once the project points at another; the next pass asks for it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_password_is_not_used_for_a_server_it_was_not_entered_for() {
    let (app, source, target, token) = invited_bob().await;
    let (p, uid) = bob_copied(&app, &token).await;
    // Another source server, reached by a name instead of the address.
    let edit = json!({
        "name": "Attacked",
        "source": {"host": "localhost", "port": source.port(), "security": "plaintext", "auth": {"mode": "per_user"}},
        "target": {"host": "127.0.0.1", "port": target.port(), "security": "plaintext",
                   "auth": {"mode": "admin", "login_pattern": "{email}*admin"}},
        "invite_to": "source"
    });
    let r = app
        .http
        .put(app.url(&format!("/api/admin/projects/{p}")))
        .json(&edit)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .post(
            &format!("/api/admin/projects/{p}/users/{uid}/actions/delta"),
            json!(null),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("no passwords stored for these servers")
    );
}

/// Before, nothing recorded which admin did what, and a finished project kept every password.
/// Now the real flow — Bob's password entered on his link, tested against Dovecot, used by the
/// copy jobs — is in the project's audit trail with who and from where, and closing the project
/// deletes his password and the admin password and records that too. The trail never holds a
/// password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_credential_event_is_audited_and_closing_the_project_deletes_the_passwords() {
    let (app, _source, _target, token) = invited_bob().await;
    let (p, uid) = bob_copied(&app, &token).await;
    let closed = app
        .post(&format!("/api/admin/projects/{p}/close"), json!(null))
        .await
        .unwrap();
    assert_eq!(closed.status, StatusCode::OK, "{:?}", closed.body);
    assert_eq!(closed.body["target"]["auth"]["has_password"], false);
    let bob = app
        .get(&format!("/api/admin/projects/{p}/users/{uid}"))
        .await
        .unwrap();
    assert_eq!(bob.body["user"]["has_credentials"], false);

    let trail = app
        .get(&format!("/api/admin/projects/{p}/audit?limit=500"))
        .await
        .unwrap();
    let entries = trail.body["items"].as_array().unwrap();
    let find = |action: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {entries:#?}"))
    };
    let submitted = find("credentials.submitted");
    assert_eq!(submitted["who"], "user bob@old.example");
    assert_eq!(submitted["from"], "127.0.0.1");
    assert_eq!(
        find("credentials.tested")["detail"],
        "accepted by 127.0.0.1"
    );
    assert_eq!(find("credentials.used")["who"], "mailferry");
    let purged = find("credentials.purged");
    assert_eq!(purged["detail"], "the project was closed");
    assert_eq!(purged["who"], "admin");
    assert_eq!(entries[0]["action"], "project.closed");
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "user.action" && e["detail"] == "start")
    );
    let text = trail.body.to_string();
    for secret in ["bob-source-pw", "master-pw", &token] {
        assert!(!text.contains(secret), "the trail holds a secret");
    }
    let csv = app
        .http
        .get(app.url(&format!("/api/admin/projects/{p}/audit/export")))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    let csv = csv.text().await.unwrap();
    assert!(
        csv.starts_with("at,who,from,action,mailbox,detail,id\n"),
        "{csv}"
    );
    assert!(csv.contains("credentials.purged"), "{csv}");
}

/// Bob enters his password on his link and his (empty) mailbox is copied; returns the project
/// and user ids.
async fn bob_copied(app: &integration_tests::TestApp, token: &str) -> (String, String) {
    let r = app
        .post(
            &format!("/api/migrate/{token}/credentials"),
            json!({"source_password": "bob-source-pw"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let projects = app.get("/api/admin/projects").await.unwrap();
    let p = projects.body[0]["id"].as_str().unwrap().to_owned();
    let users = app
        .get(&format!("/api/admin/projects/{p}/users"))
        .await
        .unwrap();
    let uid = users.body["items"][0]["id"].as_str().unwrap().to_owned();
    let done = integration_tests::wait_for_state(
        app,
        &p,
        &uid,
        "completed",
        std::time::Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!(done["user"]["has_credentials"], true);
    (p, uid)
}
