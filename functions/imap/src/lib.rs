//! IMAP source and target behind the domain's mailbox ports: a reusable [`Session`] on
//! imap-next (connect with TLS, STARTTLS or explicit plaintext; login with AUTHENTICATE
//! PLAIN, LOGIN, XOAUTH2 or OAUTHBEARER; capabilities; any command through
//! [`Session::execute`]) and [`ImapMailboxes`], the adapter of
//! [`domain::ports::MailboxAccess`]. TLS is rustls on the ring provider with the system's
//! roots plus configured CAs. Passwords and tokens never reach an error or a log line, and
//! imap-next's own wire tracing is switched off because it would show them.
//!
//! This crate must never import axum, AWS or SQLite: it talks to mail servers and nothing
//! else.

mod capabilities;
mod error;
mod mailboxes;
pub mod sasl;
mod session;
mod tls;
mod transport;

pub use capabilities::Capabilities;
pub use error::ImapError;
pub use mailboxes::ImapMailboxes;
pub use session::{Completion, LoginMethod, Session};
pub use tls::TlsConfig;

/// The IMAP types commands and responses are built from (imap-next's re-export).
pub use imap_next::imap_types;
