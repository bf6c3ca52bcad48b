//! `mailferry serve`, built inside the test package so the crash tests can start it as a child
//! process (`CARGO_BIN_EXE_serve_under_test`) and SIGKILL it. It runs the very same
//! `mailferry::serve::run` the real binary runs, with the same flags and environment variables.

use clap::Parser;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    serve: mailferry::serve::ServeArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("MAILFERRY_LOG").unwrap_or_else(|_| "warn".into()),
        ))
        .init();
    mailferry::serve::run(Cli::parse().serve).await
}
