//! `mailferry`, the local all-in-one binary. `mailferry serve` runs the same HTTP router as the
//! Lambda `api` function and the same worker handler as the Lambda `worker` function, on the
//! embedded adapters: SQLite for state, a durable SQLite queue, a key-file vault, and mail over
//! SMTP or into an outbox folder. It is the default for a first run, demos, small migrations and
//! every test. It must never import lambda or AWS crates.

use mailferry::serve;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "mailferry",
    version,
    about = "Move mailboxes from one mail system to another"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the web console, the API and the copy workers in one process.
    Serve(serve::ServeArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MAILFERRY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve::run(args).await,
    }
}
