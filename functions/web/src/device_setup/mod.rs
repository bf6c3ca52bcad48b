//! The device set-up page a user reaches from their cutover mail (`/setup/{token}`), with an
//! Apple configuration profile and a Thunderbird autoconfig file for IMAP accounts.
//!
//! The page is plain server-rendered HTML without JavaScript, so it works in any phone's
//! browser, including the in-app browsers of mail apps, and fits the strict CSP (its styles
//! come from `/setup.css`). Nothing here ever holds a password: the profile names the account
//! and the servers, and the device asks for the password while installing it, so a leaked link
//! or a forwarded file opens nothing. The profile's UUIDs and identifiers are derived from the
//! address, so installing it again replaces the profile instead of adding a second account.
//! Microsoft 365 and Google accounts take no passwords in mail apps at all: for them the page
//! explains how to add the account by signing in, and the two files answer 404.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use contract::DeviceSetup;
use domain::AppError;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::ApiPath;

mod files;
mod page;
#[cfg(test)]
mod tests;

use files::file_stem;
pub use files::{mobileconfig, thunderbird_autoconfig};
use page::service_name;
pub use page::{error_page, page};

const HTML: &str = "text/html; charset=utf-8";

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/setup.css", get(stylesheet))
        .route("/setup/{token}", get(setup_page))
        .route("/setup/{token}/apple.mobileconfig", get(apple_profile))
        .route("/setup/{token}/thunderbird.xml", get(thunderbird_file))
}

async fn setup_page(State(st): State<Arc<AppState>>, ApiPath(token): ApiPath<String>) -> Response {
    match st.app.device_setup(&token).await {
        Ok(s) => personal(StatusCode::OK, HTML, page(&s, &token)),
        Err(e) => failure(e),
    }
}

async fn apple_profile(
    State(st): State<Arc<AppState>>,
    ApiPath(token): ApiPath<String>,
) -> Response {
    settings_file(st.app.device_setup(&token).await, |s| {
        let name = format!("{}-mail.mobileconfig", file_stem(&s.email));
        download(mobileconfig(s), "application/x-apple-aspen-config", &name)
    })
}

async fn thunderbird_file(
    State(st): State<Arc<AppState>>,
    ApiPath(token): ApiPath<String>,
) -> Response {
    settings_file(st.app.device_setup(&token).await, |s| {
        let xml = thunderbird_autoconfig(s);
        download(xml, "application/xml; charset=utf-8", "config-v1.1.xml")
    })
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        page::CSS,
    )
        .into_response()
}

/// The files exist for IMAP accounts only: a sign-in service takes no server settings.
fn settings_file(
    found: Result<DeviceSetup, AppError>,
    make: impl FnOnce(&DeviceSetup) -> Response,
) -> Response {
    match found {
        Ok(s) if s.web_sign_in.is_some() => {
            let message = format!(
                "Your new mailbox is on {}: mail apps add it when you sign in with {}, so there \
                 is no profile or settings file to install. The set-up page has the steps.",
                service_name(&s),
                s.email
            );
            let body = error_page("No settings file for this account", &message);
            personal(StatusCode::NOT_FOUND, HTML, body)
        }
        Ok(s) => make(&s),
        Err(e) => failure(e),
    }
}

/// A response about one person's account: no cache may keep it.
fn personal(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let body: Body = body.into();
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn download(body: impl Into<Body>, content_type: &'static str, filename: &str) -> Response {
    let mut response = personal(StatusCode::OK, content_type, body);
    // Callers pass names made of [A-Za-z0-9._-] only, so this is always a valid header value.
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// The two failures a person meets get a page they can read; the rest answer like the API.
fn failure(e: AppError) -> Response {
    let (status, title, message) = match e {
        AppError::NotFound(_) => (
            StatusCode::NOT_FOUND,
            "This set-up link is not valid",
            "Check that you opened the whole link from your email. If it still does not work, \
             ask your administrator for a new one.",
        ),
        AppError::InviteExpired => (
            StatusCode::GONE,
            "This set-up link has expired",
            "Ask your administrator for a new one. Your mailbox itself is not affected.",
        ),
        other => {
            let mut response = ApiError::from(other).into_response();
            let no_store = HeaderValue::from_static("no-store");
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, no_store);
            return response;
        }
    };
    personal(status, HTML, error_page(title, message))
}
