//! `fuzz [TARGET...] [--secs N] [--seed S]`: bounded fuzzing on stable Rust. Each target runs
//! for N seconds (default 60) of generated cases (see `runner`); the figures are printed and
//! written as JSON to `$FUZZ_OUT` (default `target/fuzz/fuzz.json`). A failure is shrunk to a
//! minimal input, printed, and makes the exit status 1 — keep it as a regression test where
//! the fixed code lives. Targets: `imap` (responses as a byte stream), `csv` (the users
//! import), `tokens` (invite links and bearer tokens); none given means all three.

mod csv;
mod imap_wire;
mod runner;
mod tokens;

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

const TARGETS: &[&str] = &["imap", "csv", "tokens"];

struct Args {
    targets: Vec<String>,
    budget: Duration,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut targets = Vec::new();
    let mut secs = 60u64;
    let mut seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(1);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secs" => {
                secs = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--secs needs a whole number of seconds")?
            }
            "--seed" => {
                seed = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--seed needs a number")?
            }
            t if TARGETS.contains(&t) => targets.push(t.to_owned()),
            other => {
                return Err(format!(
                    "unknown argument `{other}`; targets: {}",
                    TARGETS.join(", ")
                ));
            }
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    }
    Ok(Args {
        targets,
        budget: Duration::from_secs(secs),
        seed,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fuzz: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "fuzz: seed {} ({} s per target)",
        args.seed,
        args.budget.as_secs()
    );
    let mut outcomes = Vec::new();
    for target in &args.targets {
        let outcome = match target.as_str() {
            "imap" => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                runner::run(
                    "imap",
                    args.budget,
                    args.seed,
                    imap_wire::strategy(),
                    |case| imap_wire::property(&rt, case),
                )
            }
            "csv" => runner::run(
                "csv",
                args.budget,
                args.seed,
                csv::strategy(),
                csv::property,
            ),
            _ => {
                let routers = tokens::Routers::new();
                runner::run(
                    "tokens",
                    args.budget,
                    args.seed,
                    tokens::strategy(),
                    |input| tokens::property(&routers, input),
                )
            }
        };
        println!(
            "fuzz {}: {} executions in {:.1} s ({:.0}/s), {}",
            outcome.target,
            outcome.executions,
            outcome.seconds,
            outcome.per_second,
            if outcome.failure.is_some() {
                "FAILED"
            } else {
                "no failure"
            }
        );
        if let Some(f) = &outcome.failure {
            println!("{f}");
        }
        outcomes.push(outcome);
    }
    let out = std::env::var("FUZZ_OUT").unwrap_or_else(|_| "target/fuzz/fuzz.json".into());
    let report = serde_json::json!({ "seed": args.seed, "targets": outcomes });
    if let Some(dir) = std::path::Path::new(&out).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::write(
        &out,
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    ) {
        eprintln!("fuzz: cannot write {out}: {e}");
    } else {
        println!("fuzz: wrote {out}");
    }
    if outcomes.iter().any(|o| o.failure.is_some()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
