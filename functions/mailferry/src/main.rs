//! `mailferry`, the local all-in-one binary. `mailferry serve` runs the same HTTP router as the
//! Lambda `api` function and the same worker handler as the Lambda `worker` function, on the
//! embedded adapters: SQLite for state, a durable SQLite queue, a key-file vault, and mail over
//! SMTP or into an outbox folder. `mailferry copy` copies one mailbox from the command line on
//! the same engine. It must never import lambda or AWS crates.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let code = mailferry::cli::main().await?;
    std::process::exit(code);
}
