//! `cargo xtask bench scale`: runs the 100,000-mailbox scenario, prints its table and writes
//! its figures as JSON to `BENCH_OUT` (default `target/bench/scale.json`). Exits 1 when a
//! connection cap was exceeded or a mailbox never finished.
//!
//! Options, for the sensitivity runs of `infra/COSTS.md` (run the binary directly):
//! `--small` (the tests' scenario), `--tenant-mbps N` (Exchange Online's budget),
//! `--source-cap N` (the projects' `source_server` limit), `--no-google`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let started = std::time::Instant::now();
    let scenario = match scenario(std::env::args().skip(1).collect()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "{e}\nusage: bench_scale [--small] [--tenant-mbps N] [--source-cap N] [--no-google]"
            );
            return ExitCode::from(2);
        }
    };
    let report = scale_sim::simulate(&scenario);
    report.print();
    let out = std::env::var_os("BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/bench/scale.json"));
    let written = out
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            let json = serde_json::to_string_pretty(&report).map_err(std::io::Error::other)?;
            std::fs::write(&out, json + "\n")
        });
    if let Err(e) = written {
        eprintln!("could not write {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    println!(
        "  wrote {}; wall time {:.1} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    if report.cap_held && report.all_done {
        ExitCode::SUCCESS
    } else {
        eprintln!("a connection cap was exceeded or a mailbox never finished");
        ExitCode::FAILURE
    }
}

/// The scenario the arguments ask for.
fn scenario(args: Vec<String>) -> Result<scale_sim::Scenario, String> {
    let mut s = scale_sim::Scenario::full();
    let mut args = args.into_iter();
    let number = |flag: &str, v: Option<String>| -> Result<f64, String> {
        v.as_deref()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| *v > 0.0)
            .ok_or_else(|| format!("{flag} needs a positive number"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--small" => s = scale_sim::Scenario::small(),
            "--tenant-mbps" => s.tenant_budget_mbps = number(&arg, args.next())?,
            "--source-cap" => s.source_server_cap = Some(number(&arg, args.next())? as u32),
            "--no-google" => s.google_hosts = 0,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(s)
}
