//! Router tests of the credential lifecycle and the audit trail: who did what is recorded and
//! can be read and exported but never changed; passwords go when the project's retention says,
//! when the project is closed, and the console says until when they are held.

mod support;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use support::TestApi;

/// A project whose source takes each user's own password and whose target has an admin
/// account, keeping passwords `idle_days` without activity.
fn per_user_project(idle_days: u32) -> Value {
    json!({
        "name": "Retention",
        "source": {"host": "imap.old.example", "port": 993, "security": "tls", "auth": {"mode": "per_user"}},
        "target": {"host": "imap.new.example", "port": 993, "security": "tls",
                   "auth": {"mode": "admin", "login_pattern": "{email}*admin", "password": "s3cret-admin"}},
        "invite_to": "source",
        "retention": {"idle_days": idle_days}
    })
}

async fn create(api: &TestApi, body: Value) -> String {
    let r = api.call("POST", "/api/admin/projects", Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn add_user(api: &TestApi, project: &str, local: &str, password: Option<&str>) -> Value {
    let r = api
        .call(
            "POST",
            &format!("/api/admin/projects/{project}/users"),
            Some(json!({
                "source_email": format!("{local}@old.example"),
                "target_email": format!("{local}@new.example"),
                "source_password": password,
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body
}

async fn trail(api: &TestApi, project: &str) -> Vec<Value> {
    let r = api
        .call(
            "GET",
            &format!("/api/admin/projects/{project}/audit?limit=500"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

async fn user(api: &TestApi, project: &str, id: &str) -> Value {
    let r = api
        .call(
            "GET",
            &format!("/api/admin/projects/{project}/users/{id}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["user"].clone()
}

#[tokio::test]
async fn admin_actions_and_credential_events_are_recorded_with_who_and_from_where() {
    let api = TestApi::new().await;
    let project = create(&api, per_user_project(30)).await;
    let ann = add_user(&api, &project, "ann", Some("ann-pw")).await;
    let export = api
        .call(
            "GET",
            &format!("/api/admin/projects/{project}/users/export"),
            None,
        )
        .await;
    assert_eq!(export.status, StatusCode::OK);
    // A purge sent from a known address: the entry says where it came from.
    let mut req = Request::builder()
        .method("POST")
        .uri(format!(
            "/api/admin/projects/{project}/users/{}/actions/purge_credentials",
            ann["id"].as_str().unwrap()
        ))
        .header(header::COOKIE, &api.cookie)
        .body(Body::empty())
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([198, 51, 100, 23], 50_123))));
    let purged = api.raw(req).await;
    assert_eq!(purged.status, StatusCode::OK, "{:?}", purged.body);

    let entries = trail(&api, &project).await;
    assert_eq!(
        actions(&entries),
        [
            "user.action",
            "credentials.purged",
            "users.exported",
            "credentials.submitted",
            "user.added",
            "project.created"
        ],
        "newest first: {entries:#?}"
    );
    assert!(entries.iter().all(|e| e["who"] == "admin"));
    assert_eq!(entries[1]["from"], "198.51.100.23");
    assert_eq!(entries[1]["subject"], "ann@old.example");
    assert_eq!(entries[1]["detail"], "the admin purged them");
    assert_eq!(entries[0]["detail"], "purge_credentials");
    assert_eq!(entries[3]["detail"], "source password entered by the admin");
    let text = serde_json::to_string(&entries).unwrap();
    assert!(
        !text.contains("ann-pw") && !text.contains("s3cret-admin"),
        "no password in the trail: {text}"
    );
}

#[tokio::test]
async fn sign_ins_are_recorded_console_wide_and_project_edits_name_what_changed() {
    let api = TestApi::new().await;
    let wrong = api
        .call(
            "POST",
            "/api/admin/login",
            Some(json!({"password": "nope"})),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    let console = api.call("GET", "/api/admin/audit", None).await;
    assert_eq!(console.status, StatusCode::OK);
    let wide = console.body["items"].as_array().unwrap();
    assert_eq!(
        actions(wide),
        ["admin.sign_in_refused", "admin.signed_in"],
        "{wide:#?}"
    );

    let project = create(&api, per_user_project(30)).await;
    let mut edited = per_user_project(14);
    edited["name"] = json!("Retention, renamed");
    edited["target"]["auth"]["password"] = Value::Null;
    let r = api
        .call(
            "PUT",
            &format!("/api/admin/projects/{project}"),
            Some(edited),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let entries = trail(&api, &project).await;
    assert_eq!(entries[0]["action"], "project.updated");
    assert_eq!(
        entries[0]["detail"],
        "name 'Retention' → 'Retention, renamed'; credentials kept 30 → 14 idle days"
    );
}

#[tokio::test]
async fn the_trail_cannot_be_changed_through_the_api() {
    let api = TestApi::new().await;
    let project = create(&api, per_user_project(30)).await;
    let before = trail(&api, &project).await;
    let id = before[0]["id"].as_str().unwrap().to_owned();
    for (method, uri) in [
        ("PUT", format!("/api/admin/projects/{project}/audit")),
        ("DELETE", format!("/api/admin/projects/{project}/audit")),
        ("POST", format!("/api/admin/projects/{project}/audit")),
        ("PUT", format!("/api/admin/projects/{project}/audit/{id}")),
        (
            "DELETE",
            format!("/api/admin/projects/{project}/audit/{id}"),
        ),
        ("DELETE", "/api/admin/audit".to_owned()),
    ] {
        let r = api
            .call(method, &uri, Some(json!({"detail": "nothing happened"})))
            .await;
        assert!(
            matches!(
                r.status,
                StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_FOUND
            ),
            "{method} {uri}: {}",
            r.status
        );
    }
    assert_eq!(
        trail(&api, &project).await,
        before,
        "the trail is as it was"
    );
}

#[tokio::test]
async fn the_trail_exports_as_csv_and_pages_with_a_cursor() {
    let api = TestApi::new().await;
    let project = create(&api, per_user_project(30)).await;
    for n in 0..3 {
        add_user(&api, &project, &format!("u{n}"), None).await;
    }
    let first = api
        .call(
            "GET",
            &format!("/api/admin/projects/{project}/audit?limit=2"),
            None,
        )
        .await;
    let next = first.body["next"].as_str().unwrap().to_owned();
    let rest = api
        .call(
            "GET",
            &format!("/api/admin/projects/{project}/audit?limit=2&before={next}"),
            None,
        )
        .await;
    let all = trail(&api, &project).await;
    let mut paged = first.body["items"].as_array().unwrap().clone();
    paged.extend(rest.body["items"].as_array().unwrap().iter().cloned());
    assert_eq!(paged, all, "two pages of two are the four entries");
    let after = rest.body["next"].as_str().unwrap();
    let end = api
        .call(
            "GET",
            &format!("/api/admin/projects/{project}/audit?limit=2&before={after}"),
            None,
        )
        .await;
    assert_eq!(end.body["items"], json!([]));
    assert!(end.body["next"].is_null(), "the end says so");
    let bad = api
        .call(
            "GET",
            &format!("/api/admin/projects/{project}/audit?before=x%27%20OR%201%3D1"),
            None,
        )
        .await;
    assert_eq!(
        bad.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        bad.body
    );

    let csv = api
        .call(
            "GET",
            &format!("/api/admin/projects/{project}/audit/export"),
            None,
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        csv.headers.get("x-next-before").is_none(),
        "one file holds it all"
    );
    let text = csv.body.as_str().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "at,who,from,action,mailbox,detail,id");
    assert_eq!(lines.len(), 1 + all.len());
    assert!(lines[1].contains(",user.added,u2@old.example,"), "{text}");
    // The export itself is recorded.
    assert_eq!(trail(&api, &project).await[0]["action"], "audit.exported");
}

#[tokio::test]
async fn idle_passwords_are_deleted_after_the_retention_and_the_console_says_until_when() {
    let api = TestApi::new().await;
    let project = create(&api, per_user_project(7)).await;
    let ann = add_user(&api, &project, "ann", Some("ann-pw")).await;
    let id = ann["id"].as_str().unwrap();
    let held = user(&api, &project, id).await;
    assert_eq!(held["has_credentials"], true);
    let until = time::OffsetDateTime::parse(
        held["credentials_until"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let updated = time::OffsetDateTime::parse(
        held["updated_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(until - updated, time::Duration::days(7));

    // Days pass (the admin signs in again each time).
    let mut api = api;
    api.clock
        .advance(std::time::Duration::from_secs(6 * 86_400));
    assert_eq!(
        api.app.retention_sweep_if_due().await.unwrap(),
        0,
        "not idle long enough"
    );
    api.sign_in().await;
    assert_eq!(user(&api, &project, id).await["has_credentials"], true);

    api.clock
        .advance(std::time::Duration::from_secs(2 * 86_400));
    assert_eq!(api.app.retention_sweep_if_due().await.unwrap(), 1);
    assert_eq!(
        api.app.retention_sweep_if_due().await.unwrap(),
        0,
        "the sweep runs at most hourly"
    );
    api.sign_in().await;
    let gone = user(&api, &project, id).await;
    assert_eq!(gone["has_credentials"], false);
    assert!(gone["credentials_until"].is_null());
    let entries = trail(&api, &project).await;
    assert_eq!(entries[0]["action"], "credentials.purged");
    assert_eq!(entries[0]["who"], "mailferry");
    assert_eq!(entries[0]["detail"], "7 days without activity");

    // Started again without passwords: the user is invited to enter them.
    let start = api
        .call(
            "POST",
            &format!("/api/admin/projects/{project}/users/{id}/actions/start"),
            None,
        )
        .await;
    assert_eq!(start.status, StatusCode::OK, "{:?}", start.body);
    assert_eq!(start.body["state"], "email_sent");
}

#[tokio::test]
async fn a_retention_outside_one_to_365_days_is_refused() {
    let api = TestApi::new().await;
    for days in [0, 366] {
        let r = api
            .call("POST", "/api/admin/projects", Some(per_user_project(days)))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{days}");
        assert_eq!(r.body["details"]["field"], "retention.idle_days");
    }
    let projects = api.call("GET", "/api/admin/projects", None).await;
    assert_eq!(projects.body.as_array().unwrap().len(), 0, "nothing stored");
}

#[tokio::test]
async fn closing_a_project_deletes_every_password_and_stops_its_links() {
    let api = TestApi::new().await;
    let project = create(&api, per_user_project(30)).await;
    let ann = add_user(&api, &project, "ann", Some("ann-pw")).await;
    let bob = add_user(&api, &project, "bob", None).await;
    let bob_id = bob["id"].as_str().unwrap();
    let started = api
        .call(
            "POST",
            &format!("/api/admin/projects/{project}/users/{bob_id}/actions/start"),
            None,
        )
        .await;
    assert_eq!(started.body["state"], "email_sent", "{:?}", started.body);
    let outbox = api.call("GET", "/api/admin/outbox", None).await;
    let mail = outbox.body[0]["text"].as_str().unwrap();
    let token = mail
        .split("/migrate/")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let link = format!("/api/migrate/{token}");
    assert_eq!(api.call("GET", &link, None).await.status, StatusCode::OK);

    let closed = api
        .call(
            "POST",
            &format!("/api/admin/projects/{project}/close"),
            None,
        )
        .await;
    assert_eq!(closed.status, StatusCode::OK, "{:?}", closed.body);
    assert!(closed.body["closed_at"].is_string());
    assert_eq!(closed.body["target"]["auth"]["has_password"], false);
    let ann_now = user(&api, &project, ann["id"].as_str().unwrap()).await;
    assert_eq!(ann_now["has_credentials"], false);
    assert_eq!(
        api.call("GET", &link, None).await.status,
        StatusCode::NOT_FOUND,
        "the invite link stopped"
    );
    let entries = trail(&api, &project).await;
    assert_eq!(entries[0]["action"], "project.closed");
    assert_eq!(
        entries[0]["detail"],
        "passwords of 1 user and 1 admin password deleted; invite links stopped"
    );

    // Nothing starts in a closed project; after reopening, the admin password is asked for.
    let start = format!("/api/admin/projects/{project}/users/{bob_id}/actions/start");
    let refused = api.call("POST", &start, None).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body["message"].as_str().unwrap().contains("closed"));
    let reopened = api
        .call(
            "POST",
            &format!("/api/admin/projects/{project}/reopen"),
            None,
        )
        .await;
    assert_eq!(reopened.status, StatusCode::OK);
    assert!(reopened.body["closed_at"].is_null());
    let still = api.call("POST", &start, None).await;
    assert_eq!(still.status, StatusCode::CONFLICT);
    assert!(
        still.body["message"]
            .as_str()
            .unwrap()
            .contains("of the target server was deleted when the project was closed"),
        "{:?}",
        still.body
    );
    let resealed = api
        .call(
            "PUT",
            &format!("/api/admin/projects/{project}"),
            Some(per_user_project(30)),
        )
        .await;
    assert_eq!(resealed.status, StatusCode::OK, "{:?}", resealed.body);
    assert_eq!(resealed.body["target"]["auth"]["has_password"], true);
    let again = api.call("POST", &start, None).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
}

#[tokio::test]
async fn a_project_with_users_copying_is_not_closed() {
    let api = TestApi::new().await;
    let project = create(&api, per_user_project(30)).await;
    let ann = add_user(&api, &project, "ann", Some("ann-pw")).await;
    let started = api
        .call(
            "POST",
            &format!(
                "/api/admin/projects/{project}/users/{}/actions/start",
                ann["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(started.body["state"], "scheduled", "{:?}", started.body);
    let r = api
        .call(
            "POST",
            &format!("/api/admin/projects/{project}/close"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("1 user is still copying")
    );
    let p = api
        .call("GET", &format!("/api/admin/projects/{project}"), None)
        .await;
    assert!(p.body["closed_at"].is_null(), "still open");
    assert_eq!(
        user(&api, &project, ann["id"].as_str().unwrap()).await["has_credentials"],
        true
    );
}
