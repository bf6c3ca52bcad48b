//! The local all-in-one mailferry server as a library, so the integration tests start exactly
//! what `mailferry serve` starts. See `main.rs` for the binary.

pub mod cli;
pub mod copy_cmd;
mod copy_report;
mod preflight_report;
pub mod serve;
