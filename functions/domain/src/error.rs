//! Errors of the ports and of the use cases. Messages are for people and carry no secrets;
//! the web layer maps each [`AppError`] variant to one HTTP status.

use serde_json::json;

/// What a [`crate::ports::Store`] adapter can report.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost: the item changed since it was read.
    #[error("the record was changed by someone else")]
    Conflict,
    /// An insert found the key (or a unique attribute) taken.
    #[error("the record already exists")]
    AlreadyExists,
    /// The backend failed; the text is for logs only.
    #[error("storage failed: {0}")]
    Backend(String),
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue failed: {0}")]
    Backend(String),
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The provider refused the mail (for SES: an unverified sender in the sandbox).
    #[error("mail was refused: {0}")]
    Refused(String),
    #[error("mail delivery failed: {0}")]
    Backend(String),
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("the vault could not decrypt the data (wrong key or altered data)")]
    Decrypt,
    #[error("vault failed: {0}")]
    Backend(String),
}

/// Why a mail server login did not work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// The server said no to these credentials.
    #[error("the server rejected the login: {0}")]
    Rejected(String),
    /// The server could not be reached or spoke no IMAP.
    #[error("the server could not be reached: {0}")]
    Unreachable(String),
    /// The TLS handshake failed (certificate, protocol).
    #[error("a secure connection could not be set up: {0}")]
    Tls(String),
    #[error("the server did not answer in time")]
    Timeout,
}

/// Error of a use case. The web layer turns each variant into a status and a JSON body.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{message}")]
    Validation {
        message: String,
        details: serde_json::Value,
    },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("sign in first")]
    Unauthorized,
    #[error("this link has expired; ask your administrator for a new one")]
    InviteExpired,
    #[error(
        "this link is locked after too many failed attempts; ask your administrator for a new one"
    )]
    InviteLocked,
    /// Too many requests at once (a password of this link is being tested, or sign-in
    /// attempts came too fast): try again after `retry_after`.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after: std::time::Duration,
    },
    /// The mail server rejected the password the user typed.
    #[error("{message}")]
    CredentialsRejected { message: String, attempts_left: u32 },
    /// A mail server could not be reached (not the user's fault, no attempt counted).
    #[error("{0}")]
    Upstream(String),
    /// A mail server refused the stored credentials during a copy: retrying cannot help until
    /// someone fixes them.
    #[error("the login was rejected: {0}")]
    LoginRejected(String),
    /// A side's sign-in with its provider is revoked or ended: the user must sign in again.
    #[error("{message}")]
    SignInNeeded { side: &'static str, message: String },
    /// A mail server asked us to slow down, with how long to wait when it said.
    #[error("{message}")]
    Throttled {
        message: String,
        retry_after: Option<std::time::Duration>,
    },
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    pub fn validation(message: impl Into<String>) -> Self {
        AppError::Validation {
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }

    pub fn validation_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        AppError::Validation {
            details: json!({ "field": field, "message": message.clone() }),
            message: format!("{field}: {message}"),
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => {
                AppError::Conflict("the record was changed meanwhile; reload and try again".into())
            }
            StoreError::AlreadyExists => AppError::Conflict("the record already exists".into()),
            StoreError::Backend(m) => AppError::Internal(m),
        }
    }
}

impl From<QueueError> for AppError {
    fn from(e: QueueError) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl From<VaultError> for AppError {
    fn from(e: VaultError) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl From<MailError> for AppError {
    fn from(e: MailError) -> Self {
        match e {
            MailError::Refused(m) => {
                AppError::Upstream(format!("the invite email was refused: {m}"))
            }
            MailError::Backend(m) => {
                AppError::Upstream(format!("the invite email could not be sent: {m}"))
            }
        }
    }
}
