//! Tokens wherever they arrive from outside: the invite token in `/api/migrate/{token}` (its
//! shape check and the lookup behind it) and the bearer token an API gateway passes to admin
//! routes (read for the audit trail's "who"). Whatever the bytes, the answer is a clear 4xx
//! (or the admin route's own answer), never a server error; a token that looks valid is exactly
//! 43 URL-safe characters.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::ports::SystemClock;
use domain::{App, AppConfig, Deps, token};
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tower::ServiceExt;

#[derive(Debug, Clone)]
pub enum Input {
    /// A path segment after `/api/migrate/`, percent-encoded as a browser would.
    Link(String),
    /// What follows `Authorization: Bearer ` on an admin route behind the gateway.
    Bearer(String),
}

/// The two routers under test (local mode for links, gateway mode for bearer tokens) on the
/// embedded adapters in memory, and the runtime that drives them.
pub struct Routers {
    pub local: Router,
    pub gateway: Router,
    pub runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Routers {
    pub fn new() -> Routers {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let dir = tempfile::tempdir().expect("a temporary folder");
        let app = runtime.block_on(async {
            let store = Arc::new(embedded::SqliteStore::open_in_memory().expect("store"));
            let deps = Deps {
                limiter: store.clone(),
                store,
                queue: Arc::new(embedded::SqliteQueue::open_in_memory(5).expect("queue")),
                mailer: Arc::new(
                    embedded::OutboxMailer::new(dir.path().join("outbox"), "fuzz@localhost")
                        .expect("outbox"),
                ),
                vault: Arc::new(
                    embedded::KeyFileVault::open_or_create(dir.path().join("vault.key"))
                        .expect("vault"),
                ),
                clock: Arc::new(SystemClock),
                mailboxes: Arc::new(imap::ImapMailboxes::new(imap::TlsConfig::native_roots())),
                tokens: Arc::new(domain::oauth::NoTokens),
            };
            App::new(deps, AppConfig::default())
        });
        let router = |auth| {
            web::router(
                web::AppState {
                    app: app.clone(),
                    auth,
                    secure_cookies: false,
                },
                web::RouterOptions::default(),
            )
        };
        let sign_in = contract::HostedSignIn {
            authorize_url: "https://auth.example/oauth2/authorize".into(),
            token_url: "https://auth.example/oauth2/token".into(),
            client_id: "fuzz".into(),
            logout_url: "https://auth.example/logout".into(),
        };
        Routers {
            local: router(web::AdminAuth::LocalSession),
            gateway: router(web::AdminAuth::GatewayJwt { sign_in }),
            runtime,
            _dir: dir,
        }
    }
}

fn near_token() -> impl Strategy<Value = String> {
    let real = Just(()).prop_map(|_| token::generate());
    prop_oneof![
        "[A-Za-z0-9_-]{43}",
        "[A-Za-z0-9_-]{42,44}",
        "[A-Za-z0-9_=+/.-]{43}",
        (real, any::<usize>(), any::<char>()).prop_map(|(t, at, c)| {
            let mut chars: Vec<char> = t.chars().collect();
            let i = at % chars.len();
            chars[i] = c;
            chars.into_iter().collect()
        }),
        any::<String>(),
        Just("../../etc/passwd".to_owned()),
        Just("%00".to_owned()),
    ]
}

fn jwt_like() -> impl Strategy<Value = String> {
    let claims = prop_oneof![
        Just(r#"{"sub":"a","email":"ops@example.com"}"#.to_owned()),
        Just(r#"{"cognito:username":null}"#.to_owned()),
        Just(r#"{"email":["a"],"sub":{}}"#.to_owned()),
        Just("[]".to_owned()),
        any::<String>(),
    ];
    prop_oneof![
        claims.prop_map(|c| format!("eyJhbGciOiJub25lIn0.{}.sig", URL_SAFE_NO_PAD.encode(c))),
        "[ -~]{0,80}",
        "[A-Za-z0-9_.-]{0,200}",
    ]
}

pub fn strategy() -> impl Strategy<Value = Input> {
    prop_oneof![
        near_token().prop_map(Input::Link),
        jwt_like().prop_map(Input::Bearer),
    ]
}

/// A path segment as a browser percent-encodes it.
fn encode_segment(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn property(routers: &Routers, input: Input) -> Result<(), TestCaseError> {
    let (router, request) = match &input {
        Input::Link(raw) => {
            if token::looks_valid(raw) {
                prop_assert_eq!(raw.len(), 43);
                prop_assert!(
                    raw.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                );
            }
            let request = Request::get(format!("/api/migrate/{}", encode_segment(raw)))
                .body(Body::empty())
                .map_err(|e| TestCaseError::reject(e.to_string()))?;
            (&routers.local, request)
        }
        Input::Bearer(raw) => {
            let Ok(request) =
                Request::get(format!("/api/admin/projects/{}/audit/export", uuid_like()))
                    .header(header::AUTHORIZATION, format!("Bearer {raw}"))
                    .body(Body::empty())
            else {
                // Not a header value any client could send.
                return Ok(());
            };
            (&routers.gateway, request)
        }
    };
    let (status, body) = routers.runtime.block_on(async {
        let response = router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        (status, bytes)
    });
    prop_assert!(!status.is_server_error(), "{status} for {input:?}");
    prop_assert!(
        matches!(
            status,
            StatusCode::BAD_REQUEST
                | StatusCode::UNAUTHORIZED
                | StatusCode::NOT_FOUND
                | StatusCode::GONE
                | StatusCode::LOCKED
        ),
        "unexpected {status} for {input:?}"
    );
    let json: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {body:?}")))?;
    prop_assert!(
        json["error"].is_string() && json["message"].is_string(),
        "{json}"
    );
    Ok(())
}

/// Some project id (none exists: the route answers 404 after reading who called).
fn uuid_like() -> &'static str {
    "0b7c6c1e-2f4e-4a55-9e1e-6f7a1c2d3e4f"
}
