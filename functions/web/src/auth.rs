//! Admin authentication. Local mode: one admin password, a session cookie (HttpOnly,
//! SameSite=Strict, Secure behind https). AWS mode: API Gateway's JWT authorizer has verified
//! the Cognito token before the request reaches the function; the router then only checks that
//! the gateway passed a bearer token along (defence in depth against a misconfigured route).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use contract::{HostedSignIn, LoginInput, SessionView};
use domain::Secret;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;

pub const SESSION_COOKIE: &str = "mf_session";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAuth {
    /// Password login with a session cookie (the local binary).
    LocalSession,
    /// An API gateway authorizer verified a JWT before the request arrived (AWS); the console
    /// gets its token from the identity provider described by `sign_in`.
    GatewayJwt { sign_in: HostedSignIn },
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

async fn is_admin(state: &AppState, headers: &HeaderMap) -> ApiResult<bool> {
    match state.auth {
        AdminAuth::LocalSession => match cookie_value(headers, SESSION_COOKIE) {
            Some(c) => Ok(state.app.admin_session_valid(&c).await?),
            None => Ok(false),
        },
        AdminAuth::GatewayJwt { .. } => Ok(headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Bearer ") && v.len() > 20)),
    }
}

pub async fn require_admin(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    match is_admin(&state, request.headers()).await {
        Ok(true) => next.run(request).await,
        Ok(false) => ApiError::unauthorized().into_response(),
        Err(e) => e.into_response(),
    }
}

fn session_cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{SESSION_COOKIE}={value}; Path=/api; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The caller's address as a front end in front of the router saw it (the Lambda function puts
/// API Gateway's source IP here); wins over the socket's peer address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub std::net::IpAddr);

/// The address of the client: what a front end passed as [`ClientIp`], else the socket's peer
/// when the server was started with connection info (the local server); `None` otherwise.
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let passed = parts.extensions.get::<ClientIp>().map(|c| c.0);
        let peer = || {
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip())
        };
        Ok(ClientAddr(passed.or_else(peer)))
    }
}

/// Who is calling an admin route, for the audit trail: `admin` with the local password, the
/// identity provider's user behind the gateway (read from the token the gateway verified),
/// and the client's address.
pub struct AdminActor(pub domain::Actor);

impl axum::extract::FromRequestParts<Arc<AppState>> for AdminActor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let ClientAddr(client) = ClientAddr::from_request_parts(parts, state).await?;
        let who = match state.auth {
            AdminAuth::LocalSession => "admin".to_owned(),
            AdminAuth::GatewayJwt { .. } => {
                jwt_identity(&parts.headers).unwrap_or_else(|| "admin (no identity)".into())
            }
        };
        Ok(AdminActor(domain::Actor::admin(who, client)))
    }
}

/// The user named by the bearer token's claims. The gateway verified the token before the
/// request arrived; this only reads who it names.
fn jwt_identity(headers: &HeaderMap) -> Option<String> {
    use base64::Engine;
    let token = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    let payload = token.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&json).ok()?;
    ["email", "cognito:username", "username", "sub"]
        .iter()
        .find_map(|k| claims.get(*k)?.as_str().map(str::to_owned))
}

pub async fn login(
    State(state): State<Arc<AppState>>,
    ClientAddr(client): ClientAddr,
    ApiJson(input): ApiJson<LoginInput>,
) -> ApiResult<Response> {
    if state.auth != AdminAuth::LocalSession {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "sign in through the identity provider",
        ));
    }
    if input.password.len() > contract::limits::PASSWORD_MAX_BYTES {
        return Err(ApiError::from(domain::AppError::validation_field(
            "password", "too long",
        )));
    }
    let cookie = state
        .app
        .admin_login(&Secret::new(input.password), client)
        .await?;
    let max_age = state.app.config().session_ttl.as_secs() as i64;
    let mut response = axum::Json(SessionView {
        authenticated: true,
        mode: "local".into(),
        sign_in: None,
    })
    .into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&state, &cookie, max_age));
    Ok(response)
}

pub async fn logout(
    State(state): State<Arc<AppState>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(c) = cookie_value(&headers, SESSION_COOKIE) {
        state.app.admin_logout(&c, client).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&state, "", 0));
    Ok(response)
}

pub async fn session(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<SessionView>> {
    let (mode, sign_in) = match &state.auth {
        AdminAuth::LocalSession => ("local", None),
        AdminAuth::GatewayJwt { sign_in } => ("cognito", Some(sign_in.clone())),
    };
    Ok(axum::Json(SessionView {
        authenticated: is_admin(&state, &headers).await?,
        mode: mode.into(),
        sign_in,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_user_of_a_gateway_token() {
        use base64::Engine;
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"sub":"1234","cognito:username":"ops-alice"}"#);
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer eyJhbGciOiJSUzI1NiJ9.{claims}.sig")).unwrap(),
        );
        assert_eq!(jwt_identity(&h).as_deref(), Some("ops-alice"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer nonsense"),
        );
        assert_eq!(jwt_identity(&h), None);
    }

    #[test]
    fn finds_the_session_cookie_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; mf_session=abc; b=2"),
        );
        assert_eq!(cookie_value(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie_value(&h, "c"), None);
    }
}
