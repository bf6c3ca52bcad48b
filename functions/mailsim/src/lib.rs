//! mailsim: an in-memory mail server implementing the domain's mailbox port
//! (`domain::mailbox::{MailServers, MailSession}`), with switchable behaviours that real
//! servers show: Exchange Online rewriting what it stores, Gmail dropping duplicate
//! Message-IDs, no UIDPLUS or CONDSTORE, FETCH failures, throttling and quota refusals of
//! APPEND, messages refused for good, connection limits, dropped connections, and a fail point
//! that freezes the server mid-operation so a harness can kill the engine there.
//!
//! It is a test double of a real server, used only by property tests of the copy engine; no
//! production code depends on it. It mirrors the semantics of the IMAP adapter
//! (`functions/imap/src/port.rs`), so what the engine gets right against mailsim it gets right
//! against the contract a real server offers; refusals go through the same
//! `AppendOutcome::from_refusal` classification as IMAP's.
//!
//! Layout: `server` (the handle tests hold: direct helpers, behaviours, crash injection, the
//! connector), `session` (the port), `state` (the data behind the lock), `behaviour` (the
//! switches), `message_id` (header parsing).

mod behaviour;
mod message_id;
mod server;
mod session;
mod state;

pub use behaviour::{AppendRefusal, Behaviour, REWRITE_HEADER, rewrite_like_exchange};
pub use message_id::message_id;
pub use server::{NO_FLAGS, Server, StoredFolder, StoredMessage};
pub use session::{FETCH_FAILURE_TEXT, SimSession};

#[cfg(test)]
mod tests;
