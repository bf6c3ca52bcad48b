//! The api binary run the way Lambda runs it: a fresh process with only Lambda's and the
//! template's environment, API Gateway (HTTP API, payload 2.0) events from a Lambda Runtime
//! API emulator, and the AWS services in moto. It checks the wiring in `main` (settings, SDK
//! clients, the router behind `lambda_http`, gateway JWT auth) and prints the cold start:
//! process start to the first request for an event (init), and to the first response. Set
//! `MAILFERRY_API_BOOTSTRAP` to time a release build (`cargo lambda build --release`) instead
//! of the test build.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws::moto::MotoServer;
use aws::runtime_api::{Posted, RuntimeApi};
use contract::{InviteTo, Security};
use domain::model::{Connector, ConnectorAuth, Project, ProjectId};
use domain::ports::Store;
use serde_json::{Value, json};
use tokio::process::Command;

fn bootstrap() -> PathBuf {
    std::env::var_os("MAILFERRY_API_BOOTSTRAP")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_api")))
}

/// An API Gateway HTTP API (payload format 2.0) request, as the JWT authorizer passes it on.
fn request(method: &str, path: &str, bearer: Option<&str>) -> String {
    let mut headers = json!({
        "host": "abc123.execute-api.us-east-1.amazonaws.com",
        "accept": "application/json",
    });
    if let Some(token) = bearer {
        headers["authorization"] = json!(format!("Bearer {token}"));
    }
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.10",
                "userAgent": "test"
            },
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "21/Nov/2026:03:00:00 +0000",
            "timeEpoch": 1_795_000_000_000_u64
        },
        "isBase64Encoded": false
    })
    .to_string()
}

fn project() -> Project {
    let connector = Connector {
        kind: contract::ConnectorKind::Imap,
        host: "imap.example.com".into(),
        port: 993,
        security: Security::Tls,
        auth: ConnectorAuth::PerUser,
    };
    Project {
        id: ProjectId::new(),
        name: "Lambda project".into(),
        source: connector.clone(),
        target: connector,
        invite_to: InviteTo::Source,
        admin_email: None,
        notify_user: false,
        copy: Default::default(),
        retention: Default::default(),
        sync: Default::default(),
        closed_at: None,
        created_at: time::OffsetDateTime::now_utc(),
        version: 1,
    }
}

/// The status and JSON body of a posted API Gateway response.
fn answer(posted: Option<Posted>) -> (u64, Value, Instant) {
    let Some(Posted::Response { body, at, .. }) = posted else {
        panic!("expected a response, got {posted:?}");
    };
    let response: Value = serde_json::from_str(&body).expect("JSON response");
    let status = response["statusCode"].as_u64().expect("a status code");
    let inner: Value =
        serde_json::from_str(response["body"].as_str().unwrap_or("null")).expect("a JSON body");
    (status, inner, at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_router_behind_api_gateway() {
    // Arrange: one project in the table; three requests.
    let moto = MotoServer::start().expect("moto_server starts");
    let deployment = moto.deployment(3).await;
    let p = project();
    deployment.store.insert_project(&p).await.expect("insert");
    // Claims {"sub":"1","email":"ops@example.com"}; the gateway checked the signature.
    let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIiwiZW1haWwiOiJvcHNAZXhhbXBsZS5jb20ifQ.signature-checked-by-the-gateway";
    let export = format!("/api/admin/projects/{}/users/export", p.id);
    let events = vec![
        request("GET", "/api/health", None),
        request("GET", "/api/admin/projects", None),
        request("GET", "/api/admin/projects", Some(token)),
        request("GET", "/api/admin/session", None),
        request("GET", &export, Some(token)),
    ];
    let api = RuntimeApi::start(events, Duration::from_secs(30))
        .await
        .expect("runtime API emulator");

    // Act
    let started = Instant::now();
    let mut child = Command::new(bootstrap())
        .env_clear()
        .envs(api.lambda_env("mailferry-api"))
        .envs(deployment.env.iter().cloned())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the api");
    let patience = Duration::from_secs(60);
    let health = answer(api.posted(patience).await);
    let anonymous = answer(api.posted(patience).await);
    let admin = answer(api.posted(patience).await);
    let session = answer(api.posted(patience).await);
    let exported = api.posted(patience).await;
    let _ = child.kill().await;

    // Assert
    assert_eq!(health.0, 200, "health: {:?}", health.1);
    assert_eq!(health.1["status"], "ok");
    assert_eq!(
        anonymous.0, 401,
        "an admin route without a bearer token is refused even behind the gateway: {:?}",
        anonymous.1
    );
    assert_eq!(admin.0, 200, "admin list: {:?}", admin.1);
    let names: Vec<&str> = admin
        .1
        .as_array()
        .expect("a list of projects")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(names, ["Lambda project"], "the project from DynamoDB");
    assert_eq!(session.0, 200, "session: {:?}", session.1);
    assert_eq!(session.1["mode"], "cognito");
    assert_eq!(session.1["authenticated"], false);
    assert_eq!(
        session.1["sign_in"]["authorize_url"],
        "https://mailferry-test.auth.us-east-1.amazoncognito.com/oauth2/authorize",
        "the console learns where to sign in from COGNITO_DOMAIN"
    );
    assert_eq!(
        session.1["sign_in"]["client_id"],
        "1example23456789abcdefghij"
    );

    assert!(
        matches!(&exported, Some(Posted::Response { body, .. }) if body.contains("\"statusCode\":200")),
        "export: {exported:?}"
    );
    // The export is in the audit trail with who the gateway's token names and the address API
    // Gateway saw.
    let trail = deployment
        .store
        .list_audit(Some(p.id), None, 10)
        .await
        .expect("list_audit");
    let entry = trail
        .iter()
        .find(|e| e.action == domain::AuditAction::UsersExported)
        .unwrap_or_else(|| panic!("no export in {trail:?}"));
    assert_eq!(entry.actor.who, "ops@example.com");
    assert_eq!(entry.actor.from.as_deref(), Some("192.0.2.10"));

    let init = api.first_next_at().expect("asked for an event") - started;
    eprintln!(
        "api cold start ({}): init {} ms, first response {} ms",
        bootstrap().display(),
        init.as_millis(),
        (health.2 - started).as_millis()
    );
}

#[tokio::test]
async fn stops_at_start_naming_a_missing_variable() {
    // Arrange: everything but KMS_KEY_ID.
    let moto = MotoServer::start().expect("moto_server starts");
    let deployment = moto.deployment(3).await;

    // Act
    let run = aws::runtime_api::start_without(
        &bootstrap(),
        "mailferry-api",
        &deployment.env,
        "KMS_KEY_ID",
    )
    .await
    .expect("run the api");

    // Assert
    assert!(!run.success, "a failed start is an error exit");
    assert!(
        run.output.contains("KMS_KEY_ID"),
        "the output names the variable: {}",
        run.output
    );
    assert!(!run.asked_for_event, "never asked for an event");
}
