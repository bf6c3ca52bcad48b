//! Router tests with `oneshot`: the HTTP contract of the admin and self-service API on the
//! embedded adapters (SQLite in memory, outbox mail, key-file vault). Flows that need a mail
//! server are in the integration tests under tests/, against real Dovecot.

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use contract::*;
use serde_json::json;
use support::{TestApi, project_json};

const GOOD_CSV: &[u8] = b"source_email,target_email,display_name\nann@old.example,ann@new.example,Ann\nbob@old.example,bob@new.example,Bob\n";

// ---------- auth ----------

#[tokio::test]
async fn admin_routes_need_a_session() {
    // Arrange
    let api = TestApi::new().await;
    // Act
    let req = Request::builder()
        .uri("/api/admin/projects")
        .body(Body::empty())
        .unwrap();
    let r = api.raw(req).await;
    // Assert
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"], "unauthorized");
    let forged = Request::builder()
        .uri("/api/admin/projects")
        .header(
            header::COOKIE,
            "mf_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )
        .body(Body::empty())
        .unwrap();
    assert_eq!(api.raw(forged).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_wrong_admin_password_is_refused_and_logout_ends_the_session() {
    let api = TestApi::new().await;
    let r = api
        .call(
            "POST",
            "/api/admin/login",
            Some(json!({"password": "nope"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.headers.get(header::SET_COOKIE).is_none());
    assert_eq!(
        api.call("GET", "/api/admin/projects", None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        api.call("POST", "/api/admin/logout", None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.call("GET", "/api/admin/projects", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn sessions_expire() {
    let api = TestApi::new().await;
    api.clock.advance(Duration::from_secs(13 * 3600));
    assert_eq!(
        api.call("GET", "/api/admin/projects", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

// ---------- headers and limits ----------

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let api = TestApi::new().await;
    for uri in [
        "/api/health",
        "/api/admin/projects",
        "/migrate/abc",
        "/api/nope",
    ] {
        let r = api.call("GET", uri, None).await;
        let h = &r.headers;
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY", "{uri}");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer", "{uri}");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{uri}");
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
            "{uri}: {csp}"
        );
    }
    let r = api.call("GET", "/api/nope", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"], "not_found");
}

#[tokio::test]
async fn oversized_json_bodies_get_a_json_413() {
    let api = TestApi::new().await;
    let big = "x".repeat(limits::JSON_MAX_BYTES + 10);
    let r = api
        .call("POST", "/api/admin/login", Some(json!({"password": big})))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.body["error"], "payload_too_large");
}

// ---------- JSON bad input ----------

#[tokio::test]
async fn json_with_unknown_fields_or_wrong_types_is_a_clear_400_and_stores_nothing() {
    let api = TestApi::new().await;
    let mut unknown = project_json();
    unknown["colour"] = json!("red");
    let r = api.call("POST", "/api/admin/projects", Some(unknown)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["message"].as_str().unwrap().contains("colour"),
        "{:?}",
        r.body
    );

    let mut wrong_type = project_json();
    wrong_type["source"]["port"] = json!("nine-nine-three");
    let r = api
        .call("POST", "/api/admin/projects", Some(wrong_type))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["message"].as_str().unwrap().contains("port"),
        "{:?}",
        r.body
    );

    let r = api
        .send_bytes(
            "POST",
            "/api/admin/projects",
            "application/json",
            b"{not json".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = api
        .send_bytes("POST", "/api/admin/projects", "text/plain", b"{}".to_vec())
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let list = api.call("GET", "/api/admin/projects", None).await;
    assert_eq!(list.body.as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn invalid_project_settings_name_the_field() {
    let api = TestApi::new().await;
    let mut p = project_json();
    p["target"]["host"] = json!("bad host!");
    let r = api.call("POST", "/api/admin/projects", Some(p)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["details"]["field"], "target.host");
    let mut p = project_json();
    p["target"]["auth"] = json!({"mode": "admin", "login_pattern": "{email}*admin"});
    let r = api.call("POST", "/api/admin/projects", Some(p)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["details"]["field"], "target.auth.password");
    // Users who sign in do it on the invite page: a project that sends no invites cannot.
    let mut p = project_json();
    p["target"] = json!({"kind": "microsoft365", "host": "outlook.office365.com", "port": 993,
        "security": "tls", "auth": {"mode": "user_sign_in",
        "client_id": "3c9a1f0e-5d4b-4e7a-9b1c-2f6e8d0a7b31"}});
    p["invite_to"] = json!("none");
    let r = api
        .call("POST", "/api/admin/projects", Some(p.clone()))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.body["details"]["field"], "invite_to");
    p["invite_to"] = json!("source");
    let r = api.call("POST", "/api/admin/projects", Some(p)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["target"]["auth"]["mode"], "user_sign_in");
    assert_eq!(r.body["target"]["auth"]["has_secret"], false);
}

#[tokio::test]
async fn projects_never_show_passwords_and_keep_them_on_edit() {
    let api = TestApi::new().await;
    let id = api.project().await;
    let r = api
        .call("GET", &format!("/api/admin/projects/{id}"), None)
        .await;
    let text = r.body.to_string();
    assert!(!text.contains("s3cret-admin"), "{text}");
    assert_eq!(r.body["target"]["auth"]["has_password"], true);
    // Edit without the password keeps the stored one; a stale If-Match is a conflict.
    let mut edit = project_json();
    edit["name"] = json!("Acme move (renamed)");
    edit["target"]["auth"] = json!({"mode": "admin", "login_pattern": "{email}*admin"});
    let req = Request::builder()
        .method("PUT")
        .uri(format!("/api/admin/projects/{id}"))
        .header(header::COOKIE, &api.cookie)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::IF_MATCH, "\"1\"")
        .body(Body::from(edit.to_string()))
        .unwrap();
    let r = api.raw(req).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.body["target"]["auth"]["has_password"], true);
    let req = Request::builder()
        .method("PUT")
        .uri(format!("/api/admin/projects/{id}"))
        .header(header::COOKIE, &api.cookie)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::IF_MATCH, "\"1\"")
        .body(Body::from(project_json().to_string()))
        .unwrap();
    assert_eq!(api.raw(req).await.status, StatusCode::CONFLICT);
}

// ---------- CSV ----------

#[tokio::test]
async fn csv_import_creates_then_updates_without_duplicates_and_exports() {
    let api = TestApi::new().await;
    let p = api.project().await;
    let r = api.import(&p, GOOD_CSV).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["created"], 2);
    let again = b"source_email,target_email,display_name\nANN@old.example,ann.new@new.example,Ann N\nbob@old.example,bob@new.example,Bob\n";
    let r = api.import(&p, again).await;
    assert_eq!(
        (r.body["created"].as_u64(), r.body["updated"].as_u64()),
        (Some(0), Some(1))
    );
    let users = api.users(&p).await;
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["target_email"], "ann.new@new.example");
    let r = api
        .call(
            "GET",
            &format!("/api/admin/projects/{p}/users/export"),
            None,
        )
        .await;
    let csv = r.body.as_str().unwrap();
    assert!(csv.starts_with("source_email,target_email,display_name,state"));
    assert!(csv.contains("bob@old.example,bob@new.example,Bob,new"));
}

#[tokio::test]
async fn exports_never_hand_a_spreadsheet_a_formula() {
    let api = TestApi::new().await;
    let p = api.project().await;
    let csv = "source_email,target_email,display_name\nann@old.example,ann@new.example,\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"\n";
    assert_eq!(api.import(&p, csv.as_bytes()).await.status, StatusCode::OK);
    let r = api
        .call(
            "GET",
            &format!("/api/admin/projects/{p}/users/export"),
            None,
        )
        .await;
    let body = r.body.as_str().unwrap();
    assert!(body.contains("'=HYPERLINK"), "{body}");
    let r = api
        .call("GET", &format!("/api/admin/projects/{p}/report"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body
            .as_str()
            .unwrap()
            .starts_with("source_email,target_email,state,source_folder,target_folder")
    );
}

#[tokio::test]
async fn csv_dialects_are_accepted() {
    let api = TestApi::new().await;
    let p = api.project().await;
    let csv = "\u{feff}source_email;target_email;display_name\nann@old.example;ann@new.example;\"Doe; Ann, Jr\nline two\"\n";
    let r = api.import(&p, csv.as_bytes()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        api.users(&p).await[0]["display_name"],
        "Doe; Ann, Jr\nline two"
    );
}

#[tokio::test]
async fn bad_csv_files_are_refused_with_line_numbers_and_change_nothing() {
    // Arrange: a project with two users already imported.
    let api = TestApi::new().await;
    let p = api.project().await;
    assert_eq!(api.import(&p, GOOD_CSV).await.status, StatusCode::OK);
    let before = api.users(&p).await;
    let cases: Vec<(&str, Vec<u8>, StatusCode, Option<u64>)> = vec![
        ("duplicate rows", b"source_email,target_email\ncid@old.example,cid@new.example\ncid@old.example,cid@new.example\n".to_vec(), StatusCode::UNPROCESSABLE_ENTITY, Some(3)),
        ("invalid address", b"source_email,target_email\ncid@old.example,not an address\n".to_vec(), StatusCode::UNPROCESSABLE_ENTITY, Some(2)),
        ("missing column", b"source_email,display_name\ncid@old.example,Cid\n".to_vec(), StatusCode::UNPROCESSABLE_ENTITY, Some(1)),
        ("non-UTF-8", b"source_email,target_email,display_name\nann@old.example,ann@new.example,Ren\xe9\n".to_vec(), StatusCode::UNPROCESSABLE_ENTITY, Some(2)),
        ("good and bad rows", b"source_email,target_email\ncid@old.example,cid@new.example\ndan@,dan@new.example\n".to_vec(), StatusCode::UNPROCESSABLE_ENTITY, Some(3)),
        ("10 MB + 1 byte", {
            let mut v = b"source_email,target_email\n".to_vec();
            v.resize(limits::CSV_MAX_BYTES + 1, b'\n');
            v
        }, StatusCode::PAYLOAD_TOO_LARGE, None),
    ];
    for (name, body, status, line) in cases {
        // Act
        let r = api.import(&p, &body).await;
        // Assert
        assert_eq!(r.status, status, "{name}: {:?}", r.body);
        if let Some(line) = line {
            assert_eq!(
                r.body["details"]["errors"][0]["line"], line,
                "{name}: {:?}",
                r.body
            );
            assert!(
                r.body["message"]
                    .as_str()
                    .unwrap()
                    .contains("nothing was imported"),
                "{name}"
            );
        }
        assert_eq!(api.users(&p).await, before, "{name} changed stored users");
    }
}

#[tokio::test]
async fn a_dry_run_reports_without_writing() {
    let api = TestApi::new().await;
    let p = api.project().await;
    let r = api
        .send_bytes(
            "POST",
            &format!("/api/admin/projects/{p}/users/import?dry_run=true"),
            "text/csv",
            GOOD_CSV.to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["created"], 2);
    assert_eq!(r.body["dry_run"], true);
    assert!(api.users(&p).await.is_empty());
}

// ---------- users and actions ----------

#[tokio::test]
async fn starting_a_user_sends_an_invite_to_the_outbox() {
    let api = TestApi::new().await;
    let p = api.project().await;
    let r = api.call("POST", &format!("/api/admin/projects/{p}/users"), Some(json!({"source_email": "ann@old.example", "target_email": "ann@new.example", "display_name": "Ann"}))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let uid = r.body["id"].as_str().unwrap().to_owned();
    let dup = api
        .call(
            "POST",
            &format!("/api/admin/projects/{p}/users"),
            Some(json!({"source_email": "Ann@old.example", "target_email": "x@new.example"})),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);

    let r = api
        .call(
            "POST",
            &format!("/api/admin/projects/{p}/users/{uid}/actions/start"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "email_sent");
    let outbox = api.call("GET", "/api/admin/outbox", None).await;
    let mails = outbox.body.as_array().unwrap();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0]["to"], "ann@old.example");
    let text = mails[0]["text"].as_str().unwrap();
    let link = text
        .split_whitespace()
        .find(|w| w.starts_with("http://mailferry.test/migrate/"))
        .expect("invite link");
    let token = link.rsplit('/').next().unwrap();
    let r = api
        .call("GET", &format!("/api/migrate/{token}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["asks_source_password"], true);
    assert_eq!(r.body["asks_target_password"], false);
    assert_eq!(r.body["attempts_left"], 5);

    // Resending makes the old link stop working.
    let r = api
        .call(
            "POST",
            &format!("/api/admin/projects/{p}/users/actions/resend_invite"),
            Some(json!({"all": true})),
        )
        .await;
    assert_eq!(r.body["done"].as_array().unwrap().len(), 1, "{:?}", r.body);
    assert_eq!(
        api.call("GET", &format!("/api/migrate/{token}"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Deleting the user purges it.
    assert_eq!(
        api.call(
            "DELETE",
            &format!("/api/admin/projects/{p}/users/{uid}"),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert!(api.users(&p).await.is_empty());
}

#[tokio::test]
async fn listing_filters_searches_and_pages() {
    let api = TestApi::new().await;
    let p = api.project().await;
    let mut csv = String::from("source_email,target_email,display_name\n");
    for i in 0..30 {
        csv.push_str(&format!(
            "u{i:02}@old.example,u{i:02}@new.example,User {i}\n"
        ));
    }
    assert_eq!(api.import(&p, csv.as_bytes()).await.status, StatusCode::OK);
    let r = api
        .call(
            "GET",
            &format!("/api/admin/projects/{p}/users?offset=10&limit=10"),
            None,
        )
        .await;
    assert_eq!(r.body["total"], 30);
    assert_eq!(r.body["items"][0]["source_email"], "u10@old.example");
    let r = api
        .call(
            "GET",
            &format!("/api/admin/projects/{p}/users?q=USER%202"),
            None,
        )
        .await;
    assert_eq!(r.body["total"], 11); // User 2, User 20..29
    let r = api
        .call(
            "GET",
            &format!("/api/admin/projects/{p}/users?state=email_sent"),
            None,
        )
        .await;
    assert_eq!(r.body["total"], 0);
    let r = api
        .call(
            "GET",
            &format!("/api/admin/projects/{p}/users?state=bogus"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = api
        .call(
            "GET",
            &format!("/api/admin/projects/{p}/users?limit=abc"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

// ---------- self-service tokens ----------

async fn invited(api: &TestApi) -> String {
    let p = api.project().await;
    let r = api
        .call(
            "POST",
            &format!("/api/admin/projects/{p}/users"),
            Some(json!({"source_email": "ann@old.example", "target_email": "ann@new.example"})),
        )
        .await;
    let uid = r.body["id"].as_str().unwrap().to_owned();
    api.call(
        "POST",
        &format!("/api/admin/projects/{p}/users/{uid}/actions/start"),
        None,
    )
    .await;
    let mails = api.call("GET", "/api/admin/outbox", None).await.body;
    let text = mails[0]["text"].as_str().unwrap().to_owned();
    text.split_whitespace()
        .find(|w| w.contains("/migrate/"))
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn unknown_altered_and_expired_tokens_are_refused() {
    let api = TestApi::new().await;
    let token = invited(&api).await;
    let mut altered: Vec<char> = token.chars().collect();
    altered[5] = if altered[5] == 'A' { 'B' } else { 'A' };
    let altered: String = altered.into_iter().collect();
    for bad in [
        altered.as_str(),
        "unknown",
        "../../etc/passwd",
        &token[..40],
    ] {
        let r = api
            .call(
                "GET",
                &format!("/api/migrate/{}", bad.replace('/', "%2F")),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{bad}");
        let r = api
            .call(
                "POST",
                &format!("/api/migrate/{}/credentials", bad.replace('/', "%2F")),
                Some(json!({"source_password": "x"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{bad}");
    }
    api.clock.advance(Duration::from_secs(15 * 86_400));
    let r = api
        .call("GET", &format!("/api/migrate/{token}"), None)
        .await;
    assert_eq!(r.status, StatusCode::GONE);
    assert_eq!(r.body["error"], "invite_expired");
    let r = api
        .call(
            "POST",
            &format!("/api/migrate/{token}/credentials"),
            Some(json!({"source_password": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::GONE);
}

#[tokio::test]
async fn credential_input_is_validated_before_any_login_and_costs_no_attempt() {
    let api = TestApi::new().await;
    let token = invited(&api).await;
    let too_long = "p".repeat(limits::PASSWORD_MAX_BYTES + 1);
    for body in [
        json!({}),
        json!({"source_password": ""}),
        json!({"source_password": too_long}),
        json!({"source_password": 42}),
        json!({"source_password": "x", "extra": 1}),
    ] {
        let r = api
            .call(
                "POST",
                &format!("/api/migrate/{token}/credentials"),
                Some(body.clone()),
            )
            .await;
        assert!(
            r.status == StatusCode::UNPROCESSABLE_ENTITY || r.status == StatusCode::BAD_REQUEST,
            "{body}: {:?}",
            r.body
        );
        assert!(
            !r.body.to_string().contains(&"p".repeat(50)),
            "the password was echoed"
        );
    }
    let r = api
        .call("GET", &format!("/api/migrate/{token}"), None)
        .await;
    assert_eq!(r.body["attempts_left"], 5);
    // The source server (port 1 on loopback) cannot be reached: a 502 that costs no attempt.
    let r = api
        .call(
            "POST",
            &format!("/api/migrate/{token}/credentials"),
            Some(json!({"source_password": "whatever"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{:?}", r.body);
    assert_eq!(
        api.call("GET", &format!("/api/migrate/{token}"), None)
            .await
            .body["attempts_left"],
        5
    );
    let user = api.app.deps().store.list_projects().await.unwrap();
    assert_eq!(user.len(), 1);
}

// ---------- OpenAPI ----------

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let api = TestApi::new().await;
    let doc = api.call("GET", "/api/openapi.json", None).await.body;
    assert_eq!(doc["openapi"], "3.1.0");
    for op in web::openapi::OPERATIONS {
        let (method, path) = (op.method, op.path);
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from the document"
        );
        let uri = path
            .replace("{id}", "00000000-0000-0000-0000-000000000000")
            .replace("{uid}", "00000000-0000-0000-0000-000000000000")
            .replace("{side}", "source")
            .replace("{action}", "start")
            .replace("{token}", "unknown");
        let r = api.call(&method.to_uppercase(), &uri, None).await;
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert!(
            r.body
                .get("message")
                .is_none_or(|m| m != "no such API route"),
            "{method} {path} is not routed"
        );
    }
}

/// Found by schemathesis: deleting a user through its action answered 204, which the document
/// did not list. Every status an operation answers is one the document names.
#[tokio::test]
async fn a_user_deleted_by_its_action_answers_the_documented_204() {
    let api = TestApi::new().await;
    let p = api.project().await;
    api.import(&p, GOOD_CSV).await;
    let uid = api.users(&p).await[0]["id"].as_str().unwrap().to_owned();
    let r = api
        .call(
            "POST",
            &format!("/api/admin/projects/{p}/users/{uid}/actions/delete"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(api.users(&p).await.len(), 1);
    let doc = api.call("GET", "/api/openapi.json", None).await.body;
    let responses =
        &doc["paths"]["/api/admin/projects/{id}/users/{uid}/actions/{action}"]["post"]["responses"];
    assert!(responses["204"].is_object(), "{responses}");
    assert!(responses["200"].is_object(), "{responses}");
}

/// The project shows how many connections its capped servers have open now (over every
/// project using them), who waits for them (its own users by address), and the limits it was
/// given.
#[tokio::test]
async fn the_project_shows_its_servers_connections_in_use_and_its_limits() {
    let mut api = TestApi::new().await;
    api.sign_in().await;
    let mut body = project_json();
    body["copy"] = json!({"limits": {"target_server": 5}});
    let r = api.call("POST", "/api/admin/projects", Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    // Two jobs hold slots of the target server (key as the engine names it).
    let now = api.app.deps().clock.now();
    for holder in ["job-1", "job-2"] {
        let slot = api
            .app
            .deps()
            .limiter
            .acquire(
                "server:imap.new.example:993",
                5,
                holder,
                now + Duration::from_secs(60),
                now,
            )
            .await
            .unwrap();
        assert!(slot.is_some());
    }
    // A user of this project and one of another wait in the target server's line.
    let r = api
        .call(
            "POST",
            &format!("/api/admin/projects/{id}/users"),
            Some(json!({"source_email": "ann@old.example", "target_email": "ann@new.example"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let ann = r.body["id"].as_str().unwrap().to_owned();
    for who in [ann.as_str(), "00000000-0000-0000-0000-000000000009"] {
        let rank = domain::schedule::line_rank(0, now, who);
        api.app
            .deps()
            .limiter
            .join_line(
                "server:imap.new.example:993",
                &rank,
                now + Duration::from_secs(60),
            )
            .await
            .unwrap();
    }
    let r = api
        .call("GET", &format!("/api/admin/projects/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body["connections"],
        json!([
            {"what": "the source server 127.0.0.1:1", "in_use": 0, "cap": 16, "waiting": 0, "next": []},
            {"what": "the target server imap.new.example:993", "in_use": 2, "cap": 5,
             "waiting": 2, "next": ["ann@old.example"]},
        ])
    );
    assert_eq!(r.body["copy"]["limits"]["target_server"], 5);
    // Out of bounds: the field is named and nothing changes.
    let mut bad = project_json();
    bad["copy"] = json!({"limits": {"per_mailbox": 0}});
    let r = api.call("POST", "/api/admin/projects", Some(bad)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.body["details"]["field"], "copy.limits.per_mailbox");
}
