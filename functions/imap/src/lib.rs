//! IMAP source and target behind the domain's mailbox ports: a reusable [`Session`] on
//! imap-next (connect with TLS, STARTTLS or explicit plaintext; login with AUTHENTICATE
//! PLAIN, LOGIN, XOAUTH2 or OAUTHBEARER; capabilities; any command through
//! [`Session::execute`]) and [`ImapMailboxes`], the adapter of
//! [`domain::mailbox::MailServers`]. TLS is rustls on the ring provider with the system's
//! roots plus configured CAs. Passwords and tokens never reach an error or a log line, and
//! imap-next's own wire tracing is switched off because it would show them.
//!
//! The mailbox operations of the copy engine are methods of [`Session`], one connection
//! each, in two groups:
//! - reading, for a source; none of them can change a mailbox (folders are opened with
//!   EXAMINE, bodies fetched with `BODY.PEEK`, nothing is stored): [`Session::list_folders`],
//!   [`Session::status`], [`Session::examine`], [`Session::fetch_meta`],
//!   [`Session::fetch_changed_since`], [`Session::fetch_bodies`] (pipelined, streamed to a
//!   callback one message at a time), [`Session::open_body`] (one large message read as it
//!   arrives, never whole in memory), [`Session::uid_search_all`],
//!   [`Session::search_message_id`], [`Session::find_by_message_id`],
//!   [`Session::find_by_size_and_date`], [`Session::enable_condstore`],
//!   [`Session::enable_qresync`];
//! - writing, for a target: [`Session::create_folder`] (with parents),
//!   [`Session::subscribe`], [`Session::append`] (MULTIAPPEND and LITERAL+ when offered, one
//!   result per message), [`Session::append_stream`] (one message written as a source's
//!   [`BodyReader`] delivers it), [`Session::select`], [`Session::set_flags`],
//!   [`Session::copy_uids`] (within the target: a Gmail label applied),
//!   [`Session::delete_uids`].
//!
//! The domain's source and target ports wrap a session and expose one group each, so a
//! source is never written to by construction. Folder names are UTF-8 everywhere
//! ([`mutf7`] converts); UIDs go in [`UidSet`]s. Commands imap-types cannot express (LIST
//! with RETURN options, MULTIAPPEND, literals sent from the caller's buffer) are written by
//! hand; every response is still parsed by imap-codec. A command abandoned half-way (its
//! future dropped) leaves the session broken rather than out of step with the server.
//!
//! This crate must never import axum, AWS or SQLite: it talks to mail servers and nothing
//! else.

mod append;
mod body;
mod capabilities;
mod command;
mod copy;
mod deflate;
mod error;
mod folders;
mod gmail;
mod literal;
mod mailboxes;
mod messages;
pub mod mutf7;
mod port;
mod raw;
pub mod sasl;
mod session;
mod tls;
mod transport;
mod uids;

pub use append::{AppendItem, AppendOutcome};
pub use body::BodyReader;
pub use capabilities::Capabilities;
pub use error::ImapError;
pub use folders::{FolderInfo, FolderStatus, Selected, SpecialUse};
pub use mailboxes::ImapMailboxes;
pub use messages::{Changes, FetchSummary, FetchedMessage, MessageMeta};
pub use port::{ImapMailSession, to_mailbox_error};
pub use session::{Completion, LoginMethod, Reach, Session};
pub use tls::TlsConfig;
pub use uids::UidSet;

/// Makes glibc give large freed buffers back to the system at once. Call it first thing in a
/// process that copies mail (the `mailferry` binary, the worker Lambda).
///
/// Messages pass through in buffers of up to a message's size (25 MB and more). glibc serves
/// such requests with mmap and unmaps them on free, but after the first such free it raises its
/// mmap threshold (up to 32 MiB) and serves later ones from per-thread heaps that keep the
/// freed memory: with four folders copying on four threads, the copy benchmark's peak RSS was
/// 81 MiB, and 54 MiB with the threshold fixed at 256 KiB, at the same speed. Elsewhere (musl,
/// other systems) this does nothing.
#[allow(unsafe_code)]
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before other threads start
    // allocating heavily and has no memory-safety preconditions.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// The IMAP types commands and responses are built from (imap-next's re-export).
pub use imap_next::imap_types;
