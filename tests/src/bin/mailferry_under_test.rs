//! The `mailferry` program, built inside the test package so integration tests can start it as
//! a child process (`CARGO_BIN_EXE_mailferry_under_test`), SIGKILL it, and run `mailferry copy`
//! with real arguments. It is the very same `mailferry::cli::main` the real binary runs.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let code = mailferry::cli::main().await?;
    std::process::exit(code);
}
