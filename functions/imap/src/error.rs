//! The one error type of this crate and its mapping onto the domain's [`LoginError`].

use std::time::Duration;

use domain::error::LoginError;
use imap_next::imap_types::response::Code;

/// Everything that can go wrong talking IMAP. Messages never contain a password or token:
/// the only texts carried are host names, the server's own status texts and I/O errors.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("could not resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },

    /// The name resolves only to addresses the operator does not let mailferry reach.
    #[error(
        "{host} resolves to {address}, a loopback, link-local or cloud metadata address; mailferry does not connect there unless the operator allows private targets"
    )]
    ForbiddenAddress { host: String, address: String },

    #[error("could not connect to {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },

    #[error("the TLS handshake with {host} failed: {source}")]
    TlsHandshake {
        host: String,
        source: std::io::Error,
    },

    #[error("{host} is not a valid name for TLS")]
    ServerName { host: String },

    #[error("the server does not offer STARTTLS; refusing to continue without encryption")]
    StartTlsUnavailable,

    #[error("the server refused STARTTLS: {0}")]
    StartTlsRefused(String),

    #[error("invalid TLS configuration: {0}")]
    TlsConfig(String),

    /// The greeting was BYE (the server does not want this connection).
    #[error("the server refused the connection: {0}")]
    Refused(String),

    /// The peer does not speak IMAP (or sent something this client cannot parse).
    #[error("the server sent something that is not IMAP: {0}")]
    Protocol(String),

    #[error("the server closed the connection{}", .bye.as_deref().map(|b| format!(" ({b})")).unwrap_or_default())]
    Closed { bye: Option<String> },

    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),

    #[error("timed out after {after:?} while {during}")]
    Timeout {
        after: Duration,
        during: &'static str,
    },

    /// LOGIN or AUTHENTICATE answered NO or BAD: wrong credentials, or the account may not
    /// log in.
    #[error("the server rejected the login: {text}")]
    LoginRejected {
        text: String,
        code: Option<Code<'static>>,
    },

    /// No login method both sides support (e.g. LOGINDISABLED without AUTH=PLAIN).
    #[error("no usable login method: {0}")]
    NoLoginMethod(String),

    /// A command other than a login answered NO.
    #[error("{command} failed: {text}")]
    No {
        command: &'static str,
        text: String,
        code: Option<Code<'static>>,
    },

    /// A command other than a login answered BAD.
    #[error("{command} was refused as invalid: {text}")]
    Bad {
        command: &'static str,
        text: String,
        code: Option<Code<'static>>,
    },

    /// An argument cannot be expressed in IMAP (e.g. a NUL byte in a user name).
    #[error("invalid {0}")]
    InvalidInput(&'static str),

    /// A message operation was called with no folder selected (call `examine` or `select`
    /// first).
    #[error("{0} needs a selected folder")]
    NotSelected(&'static str),

    /// The server lacks an extension the operation needs, or the operation would have
    /// effects beyond what was asked (e.g. EXPUNGE without UIDPLUS removing other messages).
    #[error("not possible on this server: {0}")]
    Unsupported(String),

    /// An earlier I/O error or timeout left the session in an unknown state.
    #[error("the session is no longer usable after an earlier error")]
    Broken,

    /// The source of a message being appended as it arrived failed half-way; the APPEND was
    /// abandoned (the connection closed mid-message, so nothing was stored).
    #[error("reading the message from the source failed: {0}")]
    Source(domain::mailbox::MailboxError),
}

impl ImapError {
    /// The response code of a NO/BAD or refused login, upper-cased (`UNAVAILABLE`, `LIMIT`),
    /// for matching.
    pub(crate) fn code_name(&self) -> Option<String> {
        self.code().map(|c| format!("{c:?}").to_ascii_uppercase())
    }

    /// A refused login that says nothing about the credentials: the server is busy or the
    /// account has too many connections open (a temporary code, or the words servers use for
    /// it). Retrying later helps; it is not a wrong password.
    pub fn is_temporary_login_refusal(&self) -> bool {
        let ImapError::LoginRejected { text, .. } = self else {
            return false;
        };
        let text = text.to_ascii_lowercase();
        is_temporary_code(&self.code_name().unwrap_or_default())
            || [
                "simultaneous connections",
                "too many connections",
                "connection limit",
            ]
            .iter()
            .any(|w| text.contains(w))
    }

    /// The domain's view of a failed login test.
    pub fn into_login_error(self) -> LoginError {
        match self {
            // Busy is not wrong: it costs the user no attempt.
            e @ ImapError::LoginRejected { .. } if e.is_temporary_login_refusal() => {
                LoginError::Unreachable(e.to_string())
            }
            ImapError::LoginRejected { text, .. } => LoginError::Rejected(text),
            ImapError::NoLoginMethod(text) => LoginError::Rejected(text),
            ImapError::TlsHandshake { .. }
            | ImapError::ServerName { .. }
            | ImapError::StartTlsUnavailable
            | ImapError::StartTlsRefused(_)
            | ImapError::TlsConfig(_) => LoginError::Tls(self.to_string()),
            ImapError::Timeout { .. } => LoginError::Timeout,
            // What a non-IMAP service sent (a banner, a page) is not repeated to whoever asked
            // for the test: a connection test must not become a way to read internal services.
            ImapError::Protocol(_) => {
                LoginError::Unreachable("it does not answer like an IMAP server".into())
            }
            ImapError::Resolve { .. }
            | ImapError::ForbiddenAddress { .. }
            | ImapError::Connect { .. }
            | ImapError::Refused(_)
            | ImapError::Closed { .. }
            | ImapError::Io(_)
            | ImapError::No { .. }
            | ImapError::Bad { .. }
            | ImapError::InvalidInput(_)
            | ImapError::Unsupported(_)
            | ImapError::NotSelected(_)
            | ImapError::Source(_)
            | ImapError::Broken => LoginError::Unreachable(self.to_string()),
        }
    }

    /// Whether the connection is gone or in an unknown state (retry on a new session), as
    /// opposed to a server's answer to one command.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            ImapError::Resolve { .. }
                | ImapError::Connect { .. }
                | ImapError::TlsHandshake { .. }
                | ImapError::Refused(_)
                | ImapError::Protocol(_)
                | ImapError::Closed { .. }
                | ImapError::Io(_)
                | ImapError::Timeout { .. }
                | ImapError::Broken
        )
    }

    /// The server's response code, when the error is a NO/BAD answer that carried one.
    pub fn code(&self) -> Option<&Code<'static>> {
        match self {
            ImapError::LoginRejected { code, .. }
            | ImapError::No { code, .. }
            | ImapError::Bad { code, .. } => code.as_ref(),
            _ => None,
        }
    }
}

impl From<ImapError> for LoginError {
    fn from(error: ImapError) -> Self {
        error.into_login_error()
    }
}

/// RFC 5530 codes of temporary conditions, a server asking us to come back later (`LIMIT`, but
/// not `APPENDLIMIT`, which is about one message), plus the `THROTTLED` some servers send.
pub(crate) fn is_temporary_code(code: &str) -> bool {
    code.contains("UNAVAILABLE")
        || code.contains("INUSE")
        || code.contains("THROTTLED")
        || (code.contains("LIMIT") && !code.contains("APPEND"))
}
