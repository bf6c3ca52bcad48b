//! Response headers every page and API answer carries, and the Content-Security-Policy that
//! allows exactly the frontend's own scripts.
//!
//! trunk writes a small inline `<script type="module">` into index.html to start the wasm app.
//! Instead of allowing every inline script, the server hashes the inline scripts of the
//! index.html it serves and lists those hashes in `script-src`.

use axum::http::{HeaderName, HeaderValue, header};
use base64::Engine;
use sha2::{Digest, Sha256};

/// The CSP for an index.html with these inline scripts.
pub fn content_security_policy(index_html: Option<&str>) -> String {
    let hashes: Vec<String> = index_html
        .map(inline_scripts)
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s.as_bytes()))
            )
        })
        .collect();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{}{}; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        if hashes.is_empty() { "" } else { " " },
        hashes.join(" ")
    )
}

/// The bodies of `<script>` elements without a `src` attribute.
fn inline_scripts(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let after = &rest[start..];
        let Some(tag_end) = after.find('>') else {
            break;
        };
        let tag = &after[..tag_end];
        let body_start = tag_end + 1;
        let Some(close) = after[body_start..].find("</script>") else {
            break;
        };
        if !tag.contains(" src=") {
            out.push(&after[body_start..body_start + close]);
        }
        rest = &after[body_start + close + "</script>".len()..];
    }
    out
}

/// Headers set on every response (the CSP is added separately because it depends on the
/// frontend build).
pub fn static_headers() -> Vec<(HeaderName, HeaderValue)> {
    vec![
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        // Invite links carry their token in the path: never leak it in a Referer header.
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
        (
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_only_inline_scripts() {
        let html = r#"<html><head><script src="/app.js"></script><script type="module">import init from '/a.js';init();</script></head></html>"#;
        assert_eq!(
            inline_scripts(html),
            vec!["import init from '/a.js';init();"]
        );
        let csp = content_security_policy(Some(html));
        assert!(csp.contains("'sha256-"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"));
    }
}
