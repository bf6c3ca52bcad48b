//! `cargo xtask fuzz [TARGET…] [--secs N] [--seed S]`: bounded fuzzing, outside the test
//! command. Two parts, figures of both in `target/fuzz/`:
//! - the proptest-driven targets of `tests/fuzz` (`imap`, `csv`, `tokens`), N seconds each
//!   (default 60), in the debug profile so arithmetic overflow panics and counts;
//! - `api`: schemathesis (PyPI, its own venv) against a local `mailferry serve` with an admin
//!   session and seeded data, checking for server errors and answers outside the OpenAPI
//!   document (`tests/fuzz/api_fuzz.py`).
//!
//! A failure ends the command with a non-zero status after every part ran.

use anyhow::{Context, Result, bail};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ctx::Ctx;
use crate::proc::{self, step};

/// schemathesis, pinned; its own venv, apart from the test venv's pins.
const ST_PINS: &[(&str, &str, &str)] = &[("schemathesis", "schemathesis", "4.32.5")];
const PROPTEST_TARGETS: &[&str] = &["imap", "csv", "tokens"];

struct Options {
    targets: Vec<String>,
    secs: u64,
    seed: Option<u64>,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        targets: Vec::new(),
        secs: 60,
        seed: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--secs" => o.secs = it.next().and_then(|v| v.parse().ok()).context("--secs N")?,
            "--seed" => o.seed = Some(it.next().and_then(|v| v.parse().ok()).context("--seed S")?),
            t if PROPTEST_TARGETS.contains(&t) || t == "api" => o.targets.push(t.to_owned()),
            other => bail!("unknown fuzz argument `{other}` (targets: imap, csv, tokens, api)"),
        }
    }
    if o.targets.is_empty() {
        o.targets = ["imap", "csv", "tokens", "api"].map(str::to_owned).to_vec();
    }
    Ok(o)
}

pub fn fuzz(ctx: &Ctx, args: &[String]) -> Result<()> {
    let o = parse(args)?;
    let out_dir = ctx.root.join("target").join("fuzz");
    std::fs::create_dir_all(&out_dir)?;
    let mut failed = Vec::new();
    let proptest: Vec<&String> = o.targets.iter().filter(|t| *t != "api").collect();
    if !proptest.is_empty() {
        proc::run(ctx.cargo().args(["build", "-p", "fuzz", "--bin", "fuzz"]))?;
        let mut cmd = Command::new(ctx.target_dir.join("debug").join("fuzz"));
        cmd.current_dir(&ctx.root)
            .args(proptest)
            .args(["--secs", &o.secs.to_string()])
            .env("FUZZ_OUT", out_dir.join("proptest.json"));
        if let Some(seed) = o.seed {
            cmd.args(["--seed", &seed.to_string()]);
        }
        if !proc::run_ok(&mut cmd)? {
            failed.push("proptest targets");
        }
    }
    if o.targets.iter().any(|t| t == "api") && !api(ctx, &out_dir, o.seed.unwrap_or(1))? {
        failed.push("api (schemathesis)");
    }
    if !failed.is_empty() {
        bail!("fuzzing found failures in: {}", failed.join(", "));
    }
    step(format!(
        "fuzz: no failures; figures in {}",
        out_dir.display()
    ));
    Ok(())
}

/// Kills the server when the run ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn api(ctx: &Ctx, out_dir: &std::path::Path, seed: u64) -> Result<bool> {
    let venv = ctx.cache.join("fuzz-venv");
    crate::test::ensure_venv(&venv, ST_PINS, "st")?;
    proc::run(
        ctx.cargo()
            .args(["build", "-p", "mailferry", "--bin", "mailferry"]),
    )?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let data = tempfile_dir()?;
    let password = format!("fuzz-{}", std::process::id());
    let child = Command::new(ctx.target_dir.join("debug").join("mailferry"))
        .current_dir(&ctx.root)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(&data)
        .args(["--frontend", "/nonexistent"])
        .env("MAILFERRY_ADMIN_PASSWORD", &password)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting mailferry serve")?;
    let _server = Server(child);
    wait_for_port(port, Duration::from_secs(30))?;
    step(format!("fuzz api: schemathesis against 127.0.0.1:{port}"));
    let ok = proc::run_ok(
        Command::new(venv.join("bin").join("python"))
            .arg(ctx.root.join("tests").join("fuzz").join("api_fuzz.py"))
            .env("BASE_URL", format!("http://127.0.0.1:{port}"))
            .env("ADMIN_PASSWORD", &password)
            .env("ST", venv.join("bin").join("st"))
            .env("FUZZ_API_OUT", out_dir.join("api.json"))
            .env("SEED", seed.to_string()),
    )?;
    let _ = std::fs::remove_dir_all(&data);
    Ok(ok)
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("mailferry-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn wait_for_port(port: u16, within: Duration) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < within {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("mailferry serve did not listen on port {port} within {within:?}")
}
