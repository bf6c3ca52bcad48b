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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// The one request function: same-origin `fetch` (the session cookie goes along), JSON in and out.
#[cfg(target_arch = "wasm32")]
pub async fn request<B, R>(method: Method, path: &str, body: Option<&B>) -> Result<R, ApiError>
where
    B: serde::Serialize + ?Sized,
    R: DeserializeOwned,
{
    use gloo_net::http::Request;

    let builder = match method {
        Method::Get => Request::get(path),
        Method::Post => Request::post(path),
    }
    .header("Accept", "application/json");
    let response = match body {
        Some(body) => {
            builder
                .json(body)
                .map_err(|e| ApiError::Network(e.to_string()))?
                .send()
                .await
        }
        None => builder.send().await,
    }
    .map_err(|e| ApiError::Network(e.to_string()))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| ApiError::Network(e.to_string()))?;
    decode(status, &text)
}

/// The endpoints the pages use, so every path is written once.
#[cfg(target_arch = "wasm32")]
pub mod endpoints {
    use super::{ApiError, Method, path_segment, request};
    use contract::{CredentialsInput, InviteView, LoginInput, MigrationStatus, ProjectView};

    pub async fn login(input: &LoginInput) -> Result<(), ApiError> {
        // The answer's body (a session view, or nothing) is not needed: the cookie is what counts.
        request::<_, serde::de::IgnoredAny>(Method::Post, "/api/admin/login", Some(input))
            .await
            .map(|_| ())
    }

    pub async fn projects() -> Result<Vec<ProjectView>, ApiError> {
        request::<(), _>(Method::Get, "/api/admin/projects", None).await
    }

    pub async fn invite(token: &str) -> Result<InviteView, ApiError> {
        let path = format!("/api/migrate/{}", path_segment(token));
        request::<(), _>(Method::Get, &path, None).await
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
        request::<(), _>(Method::Get, &path, None).await
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
