//! The domain of mailferry: projects, connectors, migrating users and their state machine,
//! invite tokens, CSV import, admin sessions, and the use cases that tie them together
//! ([`App`]). Everything outside — storage, queue, mail delivery, encryption, mail servers,
//! time — is reached through the small port traits in [`ports`], so the same behaviour runs on
//! AWS (DynamoDB, SQS, SES, KMS) and in the embedded local mode (SQLite, SMTP/outbox, key file).
//!
//! This crate must never import axum, lambda, any aws-sdk crate or SQLite: it is where behaviour
//! lives, and it is tested with in-memory fakes of the ports only through the shared conformance
//! suites and the adapters' own tests.

pub mod admin_auth;
pub mod app;
pub mod audit;
pub mod csv_import;
pub mod error;
pub mod mailbox;
pub mod model;
pub mod oauth;
pub mod ports;
pub mod providers;
pub mod schedule;
pub mod secret;
pub mod state;
pub mod token;

pub use app::{App, AppConfig, Deps};
pub use audit::{Actor, AuditAction, AuditEntry};
pub use error::{AppError, StoreError};
pub use model::*;
pub use secret::{Credential, Secret};
