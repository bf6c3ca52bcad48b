//! The embedded (local) adapters of the domain's ports, used by the all-in-one `mailferry`
//! binary, by demos and by every test that does not target AWS: [`SqliteStore`] (the
//! [`domain::ports::Store`] on an SQLite file), [`SqliteQueue`] (a durable at-least-once
//! [`domain::ports::Queue`] with SQS-like visibility timeouts and dead letters), [`OutboxMailer`]
//! and [`SmtpMailer`] ([`domain::ports::Mailer`]), and [`KeyFileVault`] (the
//! [`domain::ports::Vault`] with AES-256-GCM under a local key file); the store is also the
//! [`domain::ports::Limiter`] (connection slots in the same file). They pass the same
//! conformance suites (crate `conformance`) as the AWS adapters, so behaviour never depends on
//! where mailferry runs.
//!
//! This crate is the only one that imports SQLite. It must never import an AWS SDK, lambda or
//! axum: it adapts ports, it serves nothing and holds no behaviour of its own.

mod limiter;
mod mailer;
pub mod private;
mod queue;
mod sqlite;
mod store;
mod vault;

pub use mailer::{OutboxMailer, SmtpConfig, SmtpCredentials, SmtpMailer, SmtpSecurity};
pub use queue::SqliteQueue;
pub use store::SqliteStore;
pub use vault::KeyFileVault;
