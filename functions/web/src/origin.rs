//! Requests that change something must come from the console itself. A browser names the page
//! that sent a request in `Origin`; a form or script on another site (even a sibling subdomain,
//! which a SameSite cookie does not stop) is refused before any handler runs. Requests without
//! `Origin` (curl, scripts, server to server) carry no ambient browser credentials of a victim
//! and pass.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;

/// `scheme://host[:port]` of a URL, lower-cased, without the scheme's default port or a
/// trailing dot on the host (as browsers write `Origin`).
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => "",
    };
    let authority = authority
        .strip_suffix(default_port)
        .filter(|_| !default_port.is_empty())
        .unwrap_or(&authority);
    let authority = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            format!("{}:{port}", host.trim_end_matches('.'))
        }
        _ => authority.trim_end_matches('.').to_owned(),
    };
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}"))
}

/// Whether a request with this `Origin` may change state: same origin as the configured public
/// URL, or as the host the request was sent to.
pub fn allowed(origin: &str, public_url: &str, host: Option<&str>) -> bool {
    let Some(origin) = origin_of(origin) else {
        return false;
    };
    if origin_of(public_url).is_some_and(|o| o == origin) {
        return true;
    }
    host.is_some_and(|host| {
        ["http", "https"]
            .iter()
            .filter_map(|scheme| origin_of(&format!("{scheme}://{host}")))
            .any(|own| own == origin)
    })
}

pub async fn same_origin(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    if let (false, Some(origin)) = (safe, origin) {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok());
        if !allowed(origin, &state.app.config().public_url, host) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "cross_origin",
                "requests that change something must come from the mailferry console",
            )
            .into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_consoles_own_origin_may_change_state() {
        let public = "https://migrate.example.com/";
        assert!(allowed("https://migrate.example.com", public, None));
        assert!(allowed(
            "http://127.0.0.1:8080",
            public,
            Some("127.0.0.1:8080")
        ));
        assert!(!allowed(
            "https://evil.example.com",
            public,
            Some("migrate.example.com")
        ));
        assert!(!allowed("https://sub.migrate.example.com", public, None));
        assert!(!allowed("null", public, Some("migrate.example.com")));
        assert!(!allowed(
            "http://127.0.0.1:9999",
            public,
            Some("127.0.0.1:8080")
        ));
    }
}
