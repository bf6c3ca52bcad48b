//! The one error type of the HTTP layer: every failure becomes a status and a JSON body
//! `{error, message, details}`. Internal causes are logged here and never sent to the client.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contract::ApiErrorBody;
use domain::AppError;
use serde_json::{Value, json};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Value::Null,
        }
    }

    pub fn unauthorized() -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "sign in first")
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn too_large(limit: usize) -> Self {
        ApiError {
            details: json!({ "limit_bytes": limit }),
            ..ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the request body is larger than {limit} bytes"),
            )
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        use StatusCode as S;
        match e {
            AppError::Validation { message, details } => ApiError {
                status: S::UNPROCESSABLE_ENTITY,
                code: "validation",
                message,
                details,
            },
            AppError::NotFound(what) => ApiError::not_found(what),
            AppError::Conflict(m) => ApiError::new(S::CONFLICT, "conflict", m),
            AppError::Unauthorized => ApiError::unauthorized(),
            e @ AppError::InviteExpired => ApiError::new(S::GONE, "invite_expired", e.to_string()),
            e @ AppError::InviteLocked => ApiError::new(S::LOCKED, "invite_locked", e.to_string()),
            AppError::CredentialsRejected {
                message,
                attempts_left,
            } => ApiError {
                status: S::UNPROCESSABLE_ENTITY,
                code: "credentials_rejected",
                message,
                details: json!({ "attempts_left": attempts_left }),
            },
            AppError::TooManyRequests {
                message,
                retry_after,
            } => ApiError {
                status: S::TOO_MANY_REQUESTS,
                code: "too_many_requests",
                message,
                details: json!({ "retry_after_seconds": retry_after.as_secs().max(1) }),
            },
            AppError::Upstream(m) => ApiError::new(S::BAD_GATEWAY, "upstream", m),
            e @ (AppError::LoginRejected(_) | AppError::SignInNeeded { .. }) => {
                ApiError::new(S::BAD_GATEWAY, "upstream", e.to_string())
            }
            AppError::Throttled { message, .. } => {
                ApiError::new(S::SERVICE_UNAVAILABLE, "throttled", message)
            }
            AppError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                ApiError::new(
                    S::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; the cause was logged",
                )
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ),
            JsonRejection::BytesRejection(b) => b.into(),
            // serde's message names the field and the expected type, never the value.
            other => {
                ApiError::bad_request(format!("the JSON body is not valid: {}", other.body_text()))
            }
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is too large",
            )
        } else {
            ApiError::bad_request(format!(
                "the request body could not be read: {}",
                r.body_text()
            ))
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_request(format!("the query string is not valid: {}", r.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such resource: {}", r.body_text()),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // A 429 says when to come back in the standard header too.
        let retry_after = self
            .details
            .get("retry_after_seconds")
            .and_then(Value::as_u64)
            .filter(|_| self.status == StatusCode::TOO_MANY_REQUESTS);
        let body = ApiErrorBody {
            error: self.code.to_owned(),
            message: self.message,
            details: self.details,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
