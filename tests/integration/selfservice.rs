//! The self-service flow end to end: admin signs in, creates a project, imports a CSV (first
//! with bad rows, then fixed), starts users, the invite lands in the outbox, the user submits a
//! wrong and then the right password, and the user is scheduled. Passwords are checked against
//! real Dovecot servers.

use integration_tests::{TestApp, data_files_contain, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};
use testbed::{Dovecot, DovecotOptions};

const MASTER_PW: &str = "target-master-pw";

struct Servers {
    source: Dovecot,
    target: Dovecot,
}

fn servers() -> Servers {
    let source = Dovecot::start(
        DovecotOptions::default()
            .user("ann@old.example", "ann-source-pw")
            .user("bob@old.example", "bob-source-pw"),
    )
    .expect("source dovecot");
    let target = Dovecot::start(
        DovecotOptions::default()
            .user("ann@new.example", "unused-ann")
            .user("bob@new.example", "unused-bob")
            .master_user("admin", MASTER_PW),
    )
    .expect("target dovecot");
    Servers { source, target }
}

fn project(s: &Servers) -> Value {
    json!({
        "name": "Acme to NewCo",
        "source": {"host": "127.0.0.1", "port": s.source.port(), "security": "plaintext", "auth": {"mode": "per_user"}},
        "target": {"host": "127.0.0.1", "port": s.target.port(), "security": "plaintext",
                   "auth": {"mode": "admin", "login_pattern": "{email}*admin", "password": MASTER_PW}},
        "invite_to": "source"
    })
}

async fn user_state(app: &TestApp, project: &str, email: &str) -> String {
    let r = app
        .get(&format!("/api/admin/projects/{project}/users?q={email}"))
        .await
        .unwrap();
    r.body["items"][0]["state"]
        .as_str()
        .unwrap_or("missing")
        .to_owned()
}

#[tokio::test]
async fn an_invited_user_enters_a_wrong_then_the_right_password_and_is_scheduled() {
    // Arrange
    let s = servers();
    let mut app = spawn_app(None).await.unwrap();
    let anonymous = app.get("/api/admin/projects").await.unwrap();
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    app.login().await.unwrap();
    let p = app.create_project(project(&s)).await.unwrap();

    // The stored target connector works (master user), tested through the API.
    let r = app
        .post(
            &format!("/api/admin/projects/{p}/test/target"),
            json!({"email": "ann@new.example"}),
        )
        .await
        .unwrap();
    assert_eq!(r.body["ok"], true, "{:?}", r.body);

    // A CSV with good and bad rows: refused with line numbers, nothing stored.
    let bad = "source_email,target_email,display_name\nann@old.example,ann@new.example,Ann\nbob@old,bob@new.example,Bob\n";
    let r = app
        .post_bytes(
            &format!("/api/admin/projects/{p}/users/import"),
            "text/csv",
            bad.into(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["details"]["errors"][0]["line"], 3);
    assert_eq!(
        app.get(&format!("/api/admin/projects/{p}/users"))
            .await
            .unwrap()
            .body["total"],
        0
    );
    let good = "source_email,target_email,display_name\nann@old.example,ann@new.example,Ann\nbob@old.example,bob@new.example,Bob\n";
    let r = app
        .post_bytes(
            &format!("/api/admin/projects/{p}/users/import"),
            "text/csv",
            good.into(),
        )
        .await
        .unwrap();
    assert_eq!(r.body["created"], 2, "{:?}", r.body);

    // Act: start everyone; invites go to the source addresses.
    let r = app
        .post(
            &format!("/api/admin/projects/{p}/users/actions/start"),
            json!({"all": true}),
        )
        .await
        .unwrap();
    assert_eq!(r.body["done"].as_array().unwrap().len(), 2, "{:?}", r.body);
    assert_eq!(user_state(&app, &p, "ann@old.example").await, "email_sent");
    let token = app.invite_token_for("ann@old.example").await.unwrap();
    let page = app.get(&format!("/api/migrate/{token}")).await.unwrap();
    assert_eq!(page.body["source_email"], "ann@old.example");
    assert_eq!(page.body["target_email"], "ann@new.example");
    assert_eq!(page.body["asks_source_password"], true);
    assert_eq!(page.body["asks_target_password"], false);

    let wrong = app
        .post(
            &format!("/api/migrate/{token}/credentials"),
            json!({"source_password": "not-it"}),
        )
        .await
        .unwrap();
    assert_eq!(
        wrong.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        wrong.body
    );
    assert_eq!(wrong.body["error"], "credentials_rejected");
    assert_eq!(wrong.body["details"]["attempts_left"], 4);
    assert_eq!(user_state(&app, &p, "ann@old.example").await, "email_sent");

    let right = app
        .post(
            &format!("/api/migrate/{token}/credentials"),
            json!({"source_password": "ann-source-pw"}),
        )
        .await
        .unwrap();

    // Assert
    assert_eq!(right.status, StatusCode::OK, "{:?}", right.body);
    assert_eq!(right.body["state"], "scheduled");
    let status = app
        .get(&format!("/api/migrate/{token}/status"))
        .await
        .unwrap();
    // The worker may have taken the plan job already: queued or copying, never back.
    let queued_or_copying = |s: &str| matches!(s, "scheduled" | "working");
    assert!(
        queued_or_copying(status.body["state"].as_str().unwrap_or_default()),
        "{:?}",
        status.body
    );
    let ann = user_state(&app, &p, "ann@old.example").await;
    assert!(queued_or_copying(&ann), "{ann}");
    assert_eq!(user_state(&app, &p, "bob@old.example").await, "email_sent");
    let again = app
        .post(
            &format!("/api/migrate/{token}/credentials"),
            json!({"source_password": "ann-source-pw"}),
        )
        .await
        .unwrap();
    assert_eq!(again.status, StatusCode::CONFLICT);

    // No password is stored in plaintext anywhere in the data folder, and the invite token is
    // only in the outbox mail that carries the link (the database keeps its hash).
    let data = app.data_dir.clone();
    app.stop().await.unwrap();
    for secret in [
        "ann-source-pw",
        MASTER_PW,
        integration_tests::ADMIN_PASSWORD,
    ] {
        let hits = data_files_contain(&data, secret.as_bytes()).unwrap();
        assert!(hits.is_empty(), "'{secret}' found in {hits:?}");
    }
    let hits = data_files_contain(&data, token.as_bytes()).unwrap();
    assert!(
        hits.iter().all(|p| p.starts_with(data.join("outbox"))),
        "the token is stored outside the outbox: {hits:?}"
    );
    assert!(!hits.is_empty(), "the outbox should hold the invite");
}

#[tokio::test]
async fn passwords_with_quotes_backslashes_and_non_ascii_work() {
    let s = servers();
    let tricky = "pä\"ss\\wörd ✓ 'x'";
    s.source.add_user("cid@old.example", tricky).unwrap();
    let app = spawn_app(None).await.unwrap();
    app.login().await.unwrap();
    let p = app.create_project(project(&s)).await.unwrap();
    let r = app
        .post(
            &format!("/api/admin/projects/{p}/users"),
            json!({"source_email": "cid@old.example", "target_email": "ann@new.example"}),
        )
        .await
        .unwrap();
    let uid = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/admin/projects/{p}/users/{uid}/actions/start"),
            json!(null),
        )
        .await
        .unwrap();
    assert_eq!(r.body["state"], "email_sent", "{:?}", r.body);
    let token = app.invite_token_for("cid@old.example").await.unwrap();
    let r = app
        .post(
            &format!("/api/migrate/{token}/credentials"),
            json!({"source_password": tricky}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "scheduled");
}

#[tokio::test]
async fn the_sixth_failed_attempt_finds_the_link_locked() {
    let s = servers();
    let app = spawn_app(None).await.unwrap();
    app.login().await.unwrap();
    let p = app.create_project(project(&s)).await.unwrap();
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
    for left in (0..5).rev() {
        let r = app
            .post(
                &format!("/api/migrate/{token}/credentials"),
                json!({"source_password": format!("wrong-{left}")}),
            )
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
        assert_eq!(r.body["details"]["attempts_left"], left);
    }
    // Even the right password no longer works through this link.
    let r = app
        .post(
            &format!("/api/migrate/{token}/credentials"),
            json!({"source_password": "bob-source-pw"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::LOCKED, "{:?}", r.body);
    assert_eq!(r.body["error"], "invite_locked");
    assert_eq!(
        app.get(&format!("/api/migrate/{token}"))
            .await
            .unwrap()
            .status,
        StatusCode::LOCKED
    );
    assert_eq!(user_state(&app, &p, "bob@old.example").await, "email_sent");
    // The admin can send a new link, which works.
    app.post(
        &format!("/api/admin/projects/{p}/users/{uid}/actions/resend_invite"),
        json!(null),
    )
    .await
    .unwrap();
    let fresh = app.invite_token_for("bob@old.example").await.unwrap();
    assert_ne!(fresh, token);
    let r = app
        .post(
            &format!("/api/migrate/{fresh}/credentials"),
            json!({"source_password": "bob-source-pw"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}
