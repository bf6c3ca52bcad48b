//! The command line of the `mailferry` binary, in the library so the integration tests run
//! exactly the same program as a child process.

use clap::{Parser, Subcommand};

use crate::{copy_cmd, serve};

#[derive(Debug, Parser)]
#[command(
    name = "mailferry",
    version,
    about = "Move mailboxes from one mail system to another"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web console, the API and the copy workers in one process.
    Serve(serve::ServeArgs),
    /// Copy one mailbox from the command line (resumable with --state; a rerun is a delta).
    Copy(copy_cmd::CopyArgs),
}

/// Parses the arguments, sets up logging and runs the command; returns the exit code.
pub async fn main() -> anyhow::Result<i32> {
    // Before any message buffer exists (see `imap::tune_allocator`).
    imap::tune_allocator();
    let cli = Cli::parse();
    // The server logs what it does; the copy command shows a progress bar and a summary, so
    // only warnings reach its terminal.
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        Command::Copy(_) => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MAILFERRY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    match cli.command {
        Command::Serve(args) => serve::run(args).await.map(|()| 0),
        Command::Copy(args) => copy_cmd::run(args).await,
    }
}
