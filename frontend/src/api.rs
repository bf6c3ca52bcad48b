//! Talking to the mailferry API: one typed request function, with every non-2xx answer mapped to
//! [`ApiError`]. Bodies are the `contract` crate's DTOs; nothing here redefines one.
//!
//! The mapping ([`decode`]) is plain Rust so it is unit-tested on the host; only [`request`] and the
//! endpoint helpers touch the browser's `fetch`.

use contract::ApiErrorBody;
use serde::de::DeserializeOwned;

/// Why a request did not produce the expected body.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// No HTTP answer at all: the server is down, the network is gone or the request was blocked.
    Network(String),
    /// 401: not signed in, or the session ended.
    Unauthorized(ApiErrorBody),
    /// 404: no such thing (for an invite link: unknown, expired or replaced).
    NotFound(ApiErrorBody),
    /// Any other 4xx: the server understood the request and refused it, saying why.
    Rejected { status: u16, body: ApiErrorBody },
    /// 5xx: a fault on the server's side.
    Server { status: u16, body: ApiErrorBody },
    /// A 2xx answer whose body does not match the contract (client and server out of step).
    Decode(String),
}

impl ApiError {
    /// The error of a non-2xx answer. A body that is not an [`ApiErrorBody`] (a proxy's HTML page,
    /// say) still gives a readable message.
    pub fn from_response(status: u16, text: &str) -> ApiError {
        let body = serde_json::from_str::<ApiErrorBody>(text).unwrap_or_else(|_| ApiErrorBody {
            error: format!("http_{status}"),
            message: format!("The server answered with HTTP status {status}"),
            details: serde_json::Value::Null,
        });
        match status {
            401 => ApiError::Unauthorized(body),
            404 => ApiError::NotFound(body),
            400..=499 => ApiError::Rejected { status, body },
            _ => ApiError::Server { status, body },
        }
    }

    pub fn body(&self) -> Option<&ApiErrorBody> {
        match self {
            ApiError::Unauthorized(body)
            | ApiError::NotFound(body)
            | ApiError::Rejected { body, .. }
            | ApiError::Server { body, .. } => Some(body),
            ApiError::Network(_) | ApiError::Decode(_) => None,
        }
    }

    /// A sentence to show a person.
    pub fn message(&self) -> String {
        match self {
            ApiError::Network(_) => {
                "Could not reach the server. Check your connection and try again".to_owned()
            }
            ApiError::Decode(_) => {
                "The server sent an answer this page does not understand. Reload the page"
                    .to_owned()
            }
            ApiError::Server { body, .. } if body.message.is_empty() => {
                "The server had a problem. Try again in a moment".to_owned()
            }
            other => other.body().map(|b| b.message.clone()).unwrap_or_default(),
        }
    }

    /// `details.attempts_left` of a refused credential submission, when the server sent it.
    pub fn attempts_left(&self) -> Option<u32> {
        self.body()?
            .details
            .get("attempts_left")?
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
    }
}

/// Turns a status and body text into the typed result. An empty 2xx body reads as JSON `null`, so
/// endpoints answering 204 can be requested as `()`.
pub fn decode<R: DeserializeOwned>(status: u16, text: &str) -> Result<R, ApiError> {
    if !(200..300).contains(&status) {
        return Err(ApiError::from_response(status, text));
    }
    let text = if text.trim().is_empty() { "null" } else { text };
    serde_json::from_str(text).map_err(|e| ApiError::Decode(e.to_string()))
}

/// Percent-encodes one path segment (an invite token), keeping RFC 3986's unreserved characters.
pub fn path_segment(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Percent-encodes a query-string value the same way.
pub fn query_value(raw: &str) -> String {
    path_segment(raw)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
}

/// A request body.
#[cfg(target_arch = "wasm32")]
pub enum Payload {
    Json(String),
    /// Raw bytes with their content type (a CSV upload).
    Bytes(&'static str, Vec<u8>),
}

/// Sends one same-origin request (the session cookie goes along) and returns the status and body
/// text. Only "no answer at all" is an error here.
#[cfg(target_arch = "wasm32")]
async fn send(
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    payload: Option<Payload>,
) -> Result<(u16, String), ApiError> {
    use gloo_net::http::Request;

    let mut builder = match method {
        Method::Get => Request::get(path),
        Method::Post => Request::post(path),
        Method::Put => Request::put(path),
    }
    .header("Accept", "application/json");
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    // AWS mode: the identity provider's access token, checked by the API gateway.
    if let Some(token) = crate::signin::browser::bearer().await {
        builder = builder.header("Authorization", &format!("Bearer {token}"));
    }
    let network = |e: gloo_net::Error| ApiError::Network(e.to_string());
    let request = match payload {
        None => builder.build().map_err(network)?,
        Some(Payload::Json(text)) => builder
            .header("Content-Type", "application/json")
            .body(text)
            .map_err(network)?,
        Some(Payload::Bytes(content_type, bytes)) => builder
            .header("Content-Type", content_type)
            .body(js_sys::Uint8Array::from(bytes.as_slice()))
            .map_err(network)?,
    };
    let response = request.send().await.map_err(network)?;
    let status = response.status();
    let text = response.text().await.map_err(network)?;
    Ok((status, text))
}

/// The one typed request function: JSON in (when there is a body) and JSON out.
#[cfg(target_arch = "wasm32")]
pub async fn request<B, R>(method: Method, path: &str, body: Option<&B>) -> Result<R, ApiError>
where
    B: serde::Serialize + ?Sized,
    R: DeserializeOwned,
{
    request_with(method, path, &[], body).await
}

/// [`request`] with extra headers (`If-Match`).
#[cfg(target_arch = "wasm32")]
pub async fn request_with<B, R>(
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&B>,
) -> Result<R, ApiError>
where
    B: serde::Serialize + ?Sized,
    R: DeserializeOwned,
{
    let payload = body
        .map(|b| serde_json::to_string(b).map(Payload::Json))
        .transpose()
        .map_err(|e| ApiError::Decode(e.to_string()))?;
    let (status, text) = send(method, path, headers, payload).await?;
    decode(status, &text)
}

/// The endpoints the pages use, so every path is written once.
#[cfg(target_arch = "wasm32")]
pub mod endpoints {
    use super::{
        ApiError, Method, Payload, decode, path_segment, query_value, request, request_with, send,
    };
    use contract::{
        AuditPage, BulkAction, BulkResult, ConnectionTestInput, ConnectionTestResult,
        CredentialsInput, ImportReport, InviteView, LoginInput, MigrationStatus, OutboxMail,
        ProjectInput, ProjectView, ProviderView, Selection, SessionView, UserDetail, UserInput,
        UserPage, UserView,
    };
    use serde::de::IgnoredAny;
    use uuid::Uuid;

    use crate::state::project::action_path;

    const NO_BODY: Option<&()> = None;

    pub async fn login(input: &LoginInput) -> Result<(), ApiError> {
        // The answer's body is not needed: the cookie is what counts.
        request::<_, IgnoredAny>(Method::Post, "/api/admin/login", Some(input))
            .await
            .map(|_| ())
    }

    pub async fn logout() -> Result<(), ApiError> {
        request::<_, IgnoredAny>(Method::Post, "/api/admin/logout", NO_BODY)
            .await
            .map(|_| ())
    }

    pub async fn session() -> Result<SessionView, ApiError> {
        request(Method::Get, "/api/admin/session", NO_BODY).await
    }

    pub async fn projects() -> Result<Vec<ProjectView>, ApiError> {
        request(Method::Get, "/api/admin/projects", NO_BODY).await
    }

    /// The provider profiles: kinds of service, their servers, ways of signing in and rules.
    pub async fn providers() -> Result<Vec<ProviderView>, ApiError> {
        request(Method::Get, "/api/admin/providers", NO_BODY).await
    }

    pub async fn project(id: Uuid) -> Result<ProjectView, ApiError> {
        request(Method::Get, &format!("/api/admin/projects/{id}"), NO_BODY).await
    }

    pub async fn create_project(input: &ProjectInput) -> Result<ProjectView, ApiError> {
        request(Method::Post, "/api/admin/projects", Some(input)).await
    }

    /// Replaces the project's settings if it is still at `version` (409 otherwise).
    pub async fn update_project(
        id: Uuid,
        version: u64,
        input: &ProjectInput,
    ) -> Result<ProjectView, ApiError> {
        let if_match = format!("\"{version}\"");
        request_with(
            Method::Put,
            &format!("/api/admin/projects/{id}"),
            &[("If-Match", &if_match)],
            Some(input),
        )
        .await
    }

    pub async fn test_connector(
        input: &ConnectionTestInput,
    ) -> Result<ConnectionTestResult, ApiError> {
        request(Method::Post, "/api/admin/connectors/test", Some(input)).await
    }

    /// Tests a saved connector. The body type is private to the server (`{email?, password?}`),
    /// so it is written here as JSON rather than as a second copy of a DTO.
    pub async fn test_saved_connector(
        id: Uuid,
        side: &str,
        email: Option<&str>,
        password: Option<&str>,
    ) -> Result<ConnectionTestResult, ApiError> {
        let body = serde_json::json!({ "email": email, "password": password });
        request(
            Method::Post,
            &format!("/api/admin/projects/{id}/test/{}", path_segment(side)),
            Some(&body),
        )
        .await
    }

    pub async fn users(id: Uuid, query: &str) -> Result<UserPage, ApiError> {
        request(
            Method::Get,
            &format!("/api/admin/projects/{id}/users?{query}"),
            NO_BODY,
        )
        .await
    }

    pub async fn add_user(id: Uuid, input: &UserInput) -> Result<UserView, ApiError> {
        request(
            Method::Post,
            &format!("/api/admin/projects/{id}/users"),
            Some(input),
        )
        .await
    }

    pub async fn import_users(
        id: Uuid,
        csv: Vec<u8>,
        dry_run: bool,
    ) -> Result<ImportReport, ApiError> {
        let path = format!("/api/admin/projects/{id}/users/import?dry_run={dry_run}");
        let (status, text) = send(
            Method::Post,
            &path,
            &[],
            Some(Payload::Bytes("text/csv", csv)),
        )
        .await?;
        decode(status, &text)
    }

    /// Where the browser downloads the users as CSV.
    pub fn export_url(id: Uuid) -> String {
        format!("/api/admin/projects/{id}/users/export")
    }

    pub fn report_url(id: Uuid) -> String {
        format!("/api/admin/projects/{id}/report")
    }

    pub fn preflight_export_url(id: Uuid) -> String {
        format!("/api/admin/projects/{id}/preflight/export")
    }

    /// A page of the project's audit trail, newest first; `before` is the last id seen.
    pub async fn audit(id: Uuid, before: Option<&str>) -> Result<AuditPage, ApiError> {
        let path = match before {
            Some(b) => format!(
                "/api/admin/projects/{id}/audit?limit=50&before={}",
                query_value(b)
            ),
            None => format!("/api/admin/projects/{id}/audit?limit=50"),
        };
        request(Method::Get, &path, NO_BODY).await
    }

    /// Where the browser downloads the audit trail as CSV.
    pub fn audit_export_url(id: Uuid) -> String {
        format!("/api/admin/projects/{id}/audit/export")
    }

    /// Closes (`close`) or reopens (`reopen`) the project.
    pub async fn set_closed(id: Uuid, close: bool) -> Result<ProjectView, ApiError> {
        let verb = if close { "close" } else { "reopen" };
        request(
            Method::Post,
            &format!("/api/admin/projects/{id}/{verb}"),
            NO_BODY,
        )
        .await
    }

    pub async fn bulk(
        id: Uuid,
        action: BulkAction,
        selection: &Selection,
    ) -> Result<BulkResult, ApiError> {
        request(
            Method::Post,
            &format!(
                "/api/admin/projects/{id}/users/actions/{}",
                action_path(action)
            ),
            Some(selection),
        )
        .await
    }

    pub async fn user_detail(id: Uuid, user: Uuid) -> Result<UserDetail, ApiError> {
        request(
            Method::Get,
            &format!("/api/admin/projects/{id}/users/{user}"),
            NO_BODY,
        )
        .await
    }

    pub async fn user_action(
        id: Uuid,
        user: Uuid,
        action: BulkAction,
    ) -> Result<UserView, ApiError> {
        request(
            Method::Post,
            &format!(
                "/api/admin/projects/{id}/users/{user}/actions/{}",
                action_path(action)
            ),
            NO_BODY,
        )
        .await
    }

    /// Logs in to both sides of the user and reports what a pass would copy; copies nothing.
    /// Read as JSON, not as `contract::PreflightReport`: this rarely used page is not worth
    /// the 5 KB its typed decoding adds to the download (`state::user_detail::Preflight`).
    pub async fn preflight(id: Uuid, user: Uuid) -> Result<serde_json::Value, ApiError> {
        request(
            Method::Post,
            &format!("/api/admin/projects/{id}/users/{user}/preflight"),
            NO_BODY,
        )
        .await
    }

    pub async fn outbox() -> Result<Vec<OutboxMail>, ApiError> {
        request(Method::Get, "/api/admin/outbox?limit=200", NO_BODY).await
    }

    pub async fn invite(token: &str) -> Result<InviteView, ApiError> {
        let path = format!("/api/migrate/{}", path_segment(token));
        request(Method::Get, &path, NO_BODY).await
    }

    pub async fn submit_credentials(
        token: &str,
        input: &CredentialsInput,
    ) -> Result<MigrationStatus, ApiError> {
        let path = format!("/api/migrate/{}/credentials", path_segment(token));
        request(Method::Post, &path, Some(input)).await
    }

    pub async fn status(token: &str) -> Result<MigrationStatus, ApiError> {
        let path = format!("/api/migrate/{}/status", path_segment(token));
        request(Method::Get, &path, NO_BODY).await
    }

    /// Where to send the browser to sign in for one side (`source`, `target`).
    pub async fn start_sign_in(
        token: &str,
        side: &str,
    ) -> Result<contract::SignInRedirect, ApiError> {
        let path = format!(
            "/api/migrate/{}/sign-in/{}",
            path_segment(token),
            path_segment(side)
        );
        request(Method::Post, &path, NO_BODY).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::{LoginInput, UserState};

    #[test]
    fn a_422_with_attempts_left_is_a_rejection_with_its_details() {
        // Arrange
        let text = r#"{"error":"validation","message":"The source server did not accept the password","details":{"attempts_left":3}}"#;
        // Act
        let err = decode::<UserState>(422, text).unwrap_err();
        // Assert
        assert!(matches!(err, ApiError::Rejected { status: 422, .. }));
        assert_eq!(
            err.message(),
            "The source server did not accept the password"
        );
        assert_eq!(err.attempts_left(), Some(3));
    }

    #[test]
    fn statuses_map_to_their_variants_even_without_a_json_body() {
        assert!(matches!(
            decode::<()>(401, "{}"),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(matches!(
            decode::<()>(404, "<html>"),
            Err(ApiError::NotFound(_))
        ));
        let err = decode::<()>(502, "<html>bad gateway</html>").unwrap_err();
        assert!(matches!(err, ApiError::Server { status: 502, .. }));
        assert_eq!(err.message(), "The server answered with HTTP status 502");
        assert_eq!(err.attempts_left(), None);
    }

    #[test]
    fn success_bodies_decode_and_empty_ones_read_as_null() {
        assert_eq!(
            decode::<UserState>(200, r#""working""#),
            Ok(UserState::Working)
        );
        assert_eq!(decode::<()>(204, ""), Ok(()));
        assert!(matches!(
            decode::<LoginInput>(200, "[]"),
            Err(ApiError::Decode(_))
        ));
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(path_segment("abc-DEF_123.~"), "abc-DEF_123.~");
        assert_eq!(path_segment("a/b?c d"), "a%2Fb%3Fc%20d");
    }
}
