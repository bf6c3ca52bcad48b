//! The router under test, on the embedded adapters with a manual clock, signed in as the admin;
//! shared by the router test files.
#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use domain::ports::ManualClock;
use domain::{App, AppConfig, Deps};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

pub const ADMIN_PW: &str = "router-test-admin";

pub struct TestApi {
    pub router: Router,
    pub app: App,
    pub clock: Arc<ManualClock>,
    pub cookie: String,
    _dir: tempfile::TempDir,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl TestApi {
    pub async fn new() -> TestApi {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
        let store = Arc::new(embedded::SqliteStore::open_in_memory().unwrap());
        let deps = Deps {
            limiter: store.clone(),
            store,
            queue: Arc::new(embedded::SqliteQueue::open_in_memory(5).unwrap()),
            mailer: Arc::new(
                embedded::OutboxMailer::new(dir.path().join("outbox"), "mailferry@localhost")
                    .unwrap(),
            ),
            vault: Arc::new(
                embedded::KeyFileVault::open_or_create(dir.path().join("vault.key")).unwrap(),
            ),
            clock: clock.clone(),
            mailboxes: Arc::new(imap::ImapMailboxes::new(imap::TlsConfig::native_roots())),
            tokens: Arc::new(oauth::OAuthClient::new().unwrap()),
        };
        let app = App::new(
            deps,
            AppConfig {
                public_url: "http://mailferry.test".into(),
                ..AppConfig::default()
            },
        );
        app.ensure_admin_password(Some(domain::Secret::new(ADMIN_PW)))
            .await
            .unwrap();
        let state = web::AppState {
            app: app.clone(),
            auth: web::AdminAuth::LocalSession,
            secure_cookies: false,
        };
        let router = web::router(state, web::RouterOptions::default());
        let mut api = TestApi {
            router,
            app,
            clock,
            cookie: String::new(),
            _dir: dir,
        };
        api.sign_in().await;
        api
    }

    /// Signs in with the admin password and keeps the session cookie.
    pub async fn sign_in(&mut self) {
        let api = self;
        let r = api
            .call(
                "POST",
                "/api/admin/login",
                Some(json!({"password": ADMIN_PW})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let set_cookie = r
            .headers
            .get(header::SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
            "{set_cookie}"
        );
        api.cookie = set_cookie.split(';').next().unwrap().to_owned();
    }

    pub async fn raw(&self, req: Request<Body>) -> Reply {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::COOKIE, &self.cookie);
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(&v).unwrap())
            }
            None => Body::empty(),
        };
        self.raw(req.body(body).unwrap()).await
    }

    pub async fn send_bytes(
        &self,
        method: &str,
        uri: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Reply {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::COOKIE, &self.cookie)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap();
        self.raw(req).await
    }

    pub async fn project(&self) -> String {
        let r = self
            .call("POST", "/api/admin/projects", Some(project_json()))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    pub async fn users(&self, project: &str) -> Vec<Value> {
        let r = self
            .call(
                "GET",
                &format!("/api/admin/projects/{project}/users?limit=500"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        r.body["items"].as_array().unwrap().clone()
    }

    pub async fn import(&self, project: &str, csv: &[u8]) -> Reply {
        self.send_bytes(
            "POST",
            &format!("/api/admin/projects/{project}/users/import"),
            "text/csv",
            csv.to_vec(),
        )
        .await
    }
}

pub fn project_json() -> Value {
    json!({
        "name": "Acme move",
        "source": {"host": "127.0.0.1", "port": 1, "security": "plaintext", "auth": {"mode": "per_user"}},
        "target": {"host": "imap.new.example", "port": 993, "security": "tls",
                   "auth": {"mode": "admin", "login_pattern": "{email}*admin", "password": "s3cret-admin"}},
        "invite_to": "source"
    })
}
