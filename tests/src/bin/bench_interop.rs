//! The interop matrix: the benchmark mailbox (about 5,000 messages / 900 MB in 19 folders at
//! `BENCH_SCALE` 1.0) plus every awkward case of the test corpus (8-bit headers, duplicates, no
//! Message-ID), copied by `mailferry copy` (the release build, as a child process, no `--map`)
//! between real servers: Dovecot→Cyrus with Debian's and upstream's namespace, Cyrus→Dovecot,
//! Courier→Cyrus, Dovecot→Courier. For each pair: messages copied, refused, altered (read back
//! and found different), whether the Sent role was kept, and the time. Prints a table and writes
//! `target/bench/interop.json`. Run with `cargo xtask bench interop`. Not part of the tests (the
//! same pairs with a crash each are `tests/integration/interop.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use integration_tests::corpus::{bench_corpus, test_corpus};
use integration_tests::servers::Side;
use serde_json::{Value, json};
use testbed::{CyrusNamespace, Kind};

const SOURCE_PW: &str = "bench-source-pw";
const TARGET_PW: &str = "bench-target-pw";

fn mailferry() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe
        .parent()
        .context("binary folder")?
        .join("mailferry_under_test");
    if !path.is_file() {
        bail!(
            "{} is missing: cargo xtask bench interop builds it",
            path.display()
        );
    }
    Ok(path)
}

/// One pair, copied once; its row of the matrix.
async fn pair(bin: &Path, source: Side, target: Side, scale: f64) -> Result<Value> {
    let mut corpus = test_corpus(81, None);
    corpus.extend(bench_corpus(scale));
    let seeding = Instant::now();
    source.seed(&corpus);
    let seeded = seeding.elapsed().as_secs_f64();
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let out = Command::new(bin)
        .arg("copy")
        .args(["--source", &source.url(), "--target", &target.url()])
        .arg("--state")
        .arg(dir.path().join("bench.state"))
        .arg("--json")
        .env("MAILFERRY_SOURCE_PASSWORD", source.password())
        .env("MAILFERRY_TARGET_PASSWORD", target.password())
        .output()?;
    let seconds = started.elapsed().as_secs_f64();
    let summary: Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "mailferry copy printed no summary: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let folders = summary["folders"].as_array().cloned().unwrap_or_default();
    let sum = |key: &str| -> u64 { folders.iter().filter_map(|f| f[key].as_u64()).sum() };
    let refused: u64 = folders
        .iter()
        .map(|f| f["skipped"].as_array().map_or(0, |s| s.len() as u64))
        .sum();
    let sent = target.folder("Sent");
    let roles = target.roles().await;
    Ok(json!({
        "source": source.describe(),
        "target": target.describe(),
        "exit_code": out.status.code(),
        "messages": corpus.len(),
        "copied": summary["messages_copied"],
        "refused": refused,
        "content_checked": sum("content_checked"),
        "altered": sum("altered_count"),
        "folders": folders.len(),
        "sent_role_kept": roles.contains_key(&sent),
        "copy_seconds": seconds,
        "seed_seconds": seeded,
        "target_names": folders.iter().map(|f| f["target"].clone()).collect::<Vec<_>>(),
    }))
}

#[tokio::main]
async fn main() -> Result<()> {
    let scale: f64 = std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let bin = mailferry()?;
    let cyrus = Kind::Cyrus(CyrusNamespace::Debian);
    let upstream = Kind::Cyrus(CyrusNamespace::Upstream);
    let dovecot = |login, pw| Side::dovecot(login, pw);
    let pairs: Vec<(Side, Side)> = vec![
        (
            dovecot("ann@old.example", SOURCE_PW),
            Side::other(cyrus, TARGET_PW),
        ),
        (
            dovecot("ann@old.example", SOURCE_PW),
            Side::other(upstream, TARGET_PW),
        ),
        (
            Side::other(cyrus, SOURCE_PW),
            dovecot("ann@new.example", TARGET_PW),
        ),
        (
            Side::other(Kind::Courier, SOURCE_PW),
            Side::other(cyrus, TARGET_PW),
        ),
        (
            dovecot("ann@old.example", SOURCE_PW),
            Side::other(Kind::Courier, TARGET_PW),
        ),
    ];
    let mut rows = Vec::new();
    println!(
        "{:<32} {:<32} {:>6} {:>7} {:>7} {:>7} {:>5} {:>8}",
        "source", "target", "msgs", "copied", "refused", "altered", "sent", "seconds"
    );
    for (source, target) in pairs {
        let row = pair(&bin, source, target, scale).await?;
        println!(
            "{:<32} {:<32} {:>6} {:>7} {:>7} {:>7} {:>5} {:>8.1}",
            row["source"].as_str().unwrap_or(""),
            row["target"].as_str().unwrap_or(""),
            row["messages"],
            row["copied"],
            row["refused"],
            row["altered"],
            if row["sent_role_kept"] == true {
                "kept"
            } else {
                "-"
            },
            row["copy_seconds"].as_f64().unwrap_or(0.0),
        );
        rows.push(row);
    }
    let report = json!({ "scale": scale, "pairs": rows });
    let out = std::env::var("BENCH_OUT").unwrap_or_else(|_| "target/bench/interop.json".into());
    if let Some(d) = Path::new(&out).parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    println!("written to {out}");
    Ok(())
}
