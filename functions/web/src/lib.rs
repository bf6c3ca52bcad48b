//! The HTTP API of mailferry as one axum [`Router`], built by [`router`]. The Lambda `api`
//! binary, the local `mailferry serve` binary and the tests all serve this same router, so the
//! API behaves identically everywhere.
//!
//! The router holds no behaviour of its own: handlers turn requests into domain calls
//! ([`domain::App`]) and domain errors into [`error::ApiError`] JSON bodies. It also sets the
//! security headers (CSP, frame deny, no-referrer, nosniff), enforces body size limits, checks
//! the admin session, and serves the built frontend with a single-page-app fallback.
//!
//! This crate is the only one that imports axum. It must never import lambda, AWS or SQLite.

pub mod admin;
pub mod auth;
pub mod device_setup;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod origin;
pub mod security;
pub mod selfservice;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::ApiError;

pub use auth::{AdminAuth, ClientIp};

/// Everything the handlers need.
#[derive(Clone)]
pub struct AppState {
    pub app: domain::App,
    pub auth: AdminAuth,
    /// Whether cookies get the `Secure` attribute (the public URL is https).
    pub secure_cookies: bool,
}

/// Options of the router beyond the app state.
#[derive(Debug, Clone, Default)]
pub struct RouterOptions {
    /// Folder with the built frontend (trunk's dist). `None` serves the API only.
    pub frontend_dir: Option<PathBuf>,
}

/// The one router.
pub fn router(state: AppState, options: RouterOptions) -> Router {
    let shared = Arc::new(state);
    let admin = admin::routes().route_layer(middleware::from_fn_with_state(
        shared.clone(),
        auth::require_admin,
    ));
    let api = Router::new()
        .route("/health", get(health))
        .route("/openapi.json", get(openapi::document))
        .route("/admin/login", post(auth::login))
        .route("/admin/logout", post(auth::logout))
        .route("/admin/session", get(auth::session))
        .nest("/admin", admin)
        .merge(selfservice::routes())
        .fallback(api_not_found)
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            origin::same_origin,
        ))
        .layer(DefaultBodyLimit::max(contract::limits::JSON_MAX_BYTES))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .with_state(shared.clone());

    let index_html = options
        .frontend_dir
        .as_ref()
        .and_then(|d| std::fs::read_to_string(d.join("index.html")).ok());
    let csp = security::content_security_policy(index_html.as_deref());

    // The device set-up page is plain HTML rendered here (no wasm: it opens on any phone).
    let mut router = Router::new()
        .nest("/api", api)
        .merge(device_setup::routes().with_state(shared));
    router = match &options.frontend_dir {
        Some(dir) => router
            .fallback_service(ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html")))),
        None => router.fallback(frontend_missing),
    };
    let mut router = router.layer(SetResponseHeaderLayer::overriding(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&csp)
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'")),
    ));
    for (name, value) in security::static_headers() {
        router = router.layer(SetResponseHeaderLayer::overriding(name, value));
    }
    router
}

async fn health(State(_): State<Arc<AppState>>) -> axum::Json<contract::Health> {
    axum::Json(contract::Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

async fn api_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API route")
}

async fn frontend_missing() -> Response {
    (
        StatusCode::NOT_FOUND,
        "The web console is not built. Run `cargo xtask run`, which builds it, or use the API under /api.",
    )
        .into_response()
}
