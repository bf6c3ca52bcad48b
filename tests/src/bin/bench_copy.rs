//! The copy benchmark: a corpus of about 5,000 messages / 900 MB in 19 folders (mostly 2–50 KB,
//! 150 of 1–10 MB, a few of 25 MB) on a local Dovecot source, copied to a fresh Dovecot target
//! by `mailferry copy` (the release build of the real program, as a child process). Prints and
//! writes to `target/bench/copy.json`:
//!
//! - full pass: wall time, messages/s, MB/s, peak RSS of the copying process;
//! - a no-op delta (nothing changed) and a delta after adding 100 messages;
//! - two references from the same run: a raw pipelined FETCH of the whole source with
//!   mailferry's IMAP client (the floor: reading is the least any copy must do), and Dovecot's own
//!   `doveadm backup` pulling the source over imapc into another fresh target, with ratios.
//!
//! `BENCH_SCALE` (default 1.0) scales the corpus, e.g. 0.1 for a quick look. Run with
//! `cargo xtask bench copy`, which builds the release binaries first. Not part of the tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use integration_tests::corpus::{Rng, SeedMessage, message};
use serde_json::json;
use testbed::{Dovecot, DovecotOptions};

const SOURCE_USER: &str = "bench@old.example";
const SOURCE_PW: &str = "bench-source-pw";
const TARGET_USER: &str = "bench@new.example";
const TARGET_PW: &str = "bench-target-pw";

fn seed(server: &Dovecot, messages: &[SeedMessage]) -> Result<()> {
    let mut raw = server.raw_session(SOURCE_USER)?;
    let mut created = std::collections::BTreeSet::new();
    for m in messages {
        if m.folder != "INBOX" && created.insert(m.folder.clone()) {
            let _ = raw.command(&format!("CREATE {}", testbed::quote(&m.folder)));
        }
        raw.append(&m.folder, &m.bytes, &m.flags, Some(m.internaldate))?;
    }
    raw.logout();
    Ok(())
}

fn sibling_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.parent().context("binary folder")?.join(name);
    if !path.is_file() {
        bail!(
            "{} is missing: build it with `cargo build --release -p integration-tests --bins` (cargo xtask bench copy does)",
            path.display()
        );
    }
    Ok(path)
}

/// Peak resident memory of a child, sampled from /proc while it runs (VmHWM is the kernel's own
/// high-water mark, so sampling only has to catch the last value before exit).
fn run_measured(mut cmd: Command) -> Result<(Duration, u64, std::process::Output)> {
    let start = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let mut peak_kb = 0u64;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut s) = stdout {
            let _ = std::io::Read::read_to_end(&mut s, &mut buf);
        }
        buf
    });
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut s) = stderr {
            let _ = std::io::Read::read_to_end(&mut s, &mut buf);
        }
        buf
    });
    let status = loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            for line in status.lines() {
                if let Some(v) = line.strip_prefix("VmHWM:") {
                    peak_kb =
                        peak_kb.max(v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0));
                }
            }
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = start.elapsed();
    let output = std::process::Output {
        status,
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
    };
    Ok((elapsed, peak_kb * 1024, output))
}

fn copy_command(bin: &Path, source: &Dovecot, target: &Dovecot, state: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("copy")
        .arg("--source")
        .arg(format!(
            "imap+plain://bench%40old.example@127.0.0.1:{}",
            source.port()
        ))
        .arg("--target")
        .arg(format!(
            "imap+plain://bench%40new.example@127.0.0.1:{}",
            target.port()
        ))
        .arg("--state")
        .arg(state)
        .arg("--json")
        .arg("--parallel")
        .arg(std::env::var("BENCH_PARALLEL").unwrap_or_else(|_| "4".into()))
        .env("MAILFERRY_SOURCE_PASSWORD", SOURCE_PW)
        .env("MAILFERRY_TARGET_PASSWORD", TARGET_PW);
    cmd
}

async fn raw_fetch_all(source: &Dovecot) -> Result<(Duration, u64, u64)> {
    let endpoint = domain::Endpoint {
        host: "127.0.0.1".into(),
        port: source.port(),
        security: contract::Security::Plaintext,
    };
    let start = Instant::now();
    let mut s = imap::Session::connect(
        &endpoint,
        &imap::TlsConfig::no_roots(),
        Duration::from_secs(60),
    )
    .await?;
    s.login(SOURCE_USER, &domain::Secret::new(SOURCE_PW))
        .await?;
    let (mut n, mut bytes) = (0u64, 0u64);
    for f in s.list_folders().await?.into_iter().filter(|f| f.selectable) {
        s.examine(&f.name).await?;
        let summary = s
            .fetch_bodies(&imap::UidSet::all(), |_| {
                std::future::ready(std::ops::ControlFlow::Continue(()))
            })
            .await?;
        n += summary.delivered as u64;
        bytes += summary.bytes;
    }
    s.logout().await?;
    Ok((start.elapsed(), n, bytes))
}

fn doveadm_backup(source: &Dovecot, target: &Dovecot) -> Result<Duration> {
    let start = Instant::now();
    let out = Command::new("doveadm")
        .arg("-c")
        .arg(target.config_path())
        .args([
            "-o",
            "imapc_host=127.0.0.1",
            "-o",
            &format!("imapc_port={}", source.port()),
        ])
        .args([
            "-o",
            &format!("imapc_user={SOURCE_USER}"),
            "-o",
            &format!("imapc_password={SOURCE_PW}"),
        ])
        .args([
            "-o",
            "imapc_features=rfc822.size fetch-headers modseq",
            "-o",
            "mail_prefetch_count=20",
        ])
        .args(["backup", "-R", "-u", TARGET_USER, "imapc:"])
        .output()?;
    if !out.status.success() {
        bail!(
            "doveadm backup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(start.elapsed())
}

#[tokio::main]
async fn main() -> Result<()> {
    let scale: f64 = std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let bin = sibling_binary("mailferry_under_test")?;
    let opts = || DovecotOptions::default().no_fsync().separator('/');
    let source = Dovecot::start(opts().user(SOURCE_USER, SOURCE_PW))?;
    let target = Dovecot::start(opts().user(TARGET_USER, TARGET_PW))?;
    let reference = Dovecot::start(opts().user(TARGET_USER, TARGET_PW))?;

    let messages = integration_tests::corpus::bench_corpus(scale);
    let total_bytes: u64 = messages.iter().map(|m| m.bytes.len() as u64).sum();
    println!(
        "seeding {} messages, {:.0} MB ...",
        messages.len(),
        total_bytes as f64 / 1e6
    );
    let t = Instant::now();
    seed(&source, &messages)?;
    println!("seeded in {:.1} s", t.elapsed().as_secs_f64());

    // The floor: read everything once.
    let (fetch_time, fetched, fetched_bytes) = raw_fetch_all(&source).await?;
    println!(
        "raw pipelined FETCH: {fetched} messages, {:.0} MB in {:.2} s",
        fetched_bytes as f64 / 1e6,
        fetch_time.as_secs_f64()
    );

    // Dovecot's own copy over IMAP.
    let doveadm_time = doveadm_backup(&source, &reference)?;
    println!(
        "doveadm backup (imapc): {:.2} s",
        doveadm_time.as_secs_f64()
    );

    // mailferry copy: full pass.
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("bench.state");
    let (full_time, peak_rss, out) = run_measured(copy_command(&bin, &source, &target, &state))?;
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "mailferry copy printed no JSON: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if summary["ok"] != true {
        bail!("the full pass did not complete: {summary}");
    }
    let copied = summary["messages_copied"].as_u64().unwrap_or(0);
    let copied_bytes = summary["bytes_copied"].as_u64().unwrap_or(0);
    println!(
        "mailferry full pass: {copied} messages, {:.0} MB in {:.2} s = {:.0} msg/s, {:.1} MB/s, peak RSS {:.1} MiB",
        copied_bytes as f64 / 1e6,
        full_time.as_secs_f64(),
        copied as f64 / full_time.as_secs_f64(),
        copied_bytes as f64 / 1e6 / full_time.as_secs_f64(),
        peak_rss as f64 / 1048576.0
    );

    // What a pass costs per GB in the units AWS bills (infra/COSTS.md is built on these).
    let gb = copied_bytes as f64 / 1e9;
    let work = &summary["work"];
    let per_gb = |key: &str| work[key].as_f64().map(|v| v / gb.max(1e-9));
    println!(
        "work per GB copied: {:.0} state writes, {:.0} queue operations, {:.2} CPU seconds",
        per_gb("state_rows_written").unwrap_or(f64::NAN),
        per_gb("queue_operations").unwrap_or(f64::NAN),
        per_gb("cpu_seconds").unwrap_or(f64::NAN),
    );

    // Delta passes.
    let (noop_time, _, out) = run_measured(copy_command(&bin, &source, &target, &state))?;
    let noop: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    println!(
        "no-op delta: {:.3} s ({} new)",
        noop_time.as_secs_f64(),
        noop["messages_copied"]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(copied)
    );
    let mut rng = Rng::new(77);
    let base = time::OffsetDateTime::now_utc();
    let extra: Vec<SeedMessage> = (0..100)
        .map(|i| {
            let size = 2_000 + rng.below(48_000) as usize;
            SeedMessage {
                folder: "INBOX".into(),
                bytes: message(
                    &mut rng,
                    900_000 + i,
                    Some(&format!("<delta{i}@old.example>")),
                    "delta",
                    size,
                    base,
                ),
                flags: vec![],
                internaldate: base,
            }
        })
        .collect();
    seed(&source, &extra)?;
    let (delta_time, _, out) = run_measured(copy_command(&bin, &source, &target, &state))?;
    let delta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let delta_new = delta["messages_copied"]
        .as_u64()
        .unwrap_or(0)
        .saturating_sub(noop["messages_copied"].as_u64().unwrap_or(0));
    println!(
        "+100 delta: {:.3} s ({delta_new} new)",
        delta_time.as_secs_f64()
    );

    let ratio_doveadm = full_time.as_secs_f64() / doveadm_time.as_secs_f64();
    let ratio_fetch = full_time.as_secs_f64() / fetch_time.as_secs_f64();
    println!(
        "ratios: mailferry/doveadm {ratio_doveadm:.2} (target ≤ 1.5), mailferry/raw FETCH {ratio_fetch:.2}"
    );
    let report = json!({
        "benchmark": "copy",
        "scale": scale,
        "messages": messages.len(),
        "bytes": total_bytes,
        "full_pass_seconds": full_time.as_secs_f64(),
        "messages_per_second": copied as f64 / full_time.as_secs_f64(),
        "mb_per_second": copied_bytes as f64 / 1e6 / full_time.as_secs_f64(),
        "peak_rss_bytes": peak_rss,
        "work": work,
        "per_gb": {
            "state_writes": per_gb("state_rows_written"),
            "queue_operations": per_gb("queue_operations"),
            "cpu_seconds": per_gb("cpu_seconds"),
            "wall_seconds": full_time.as_secs_f64() / gb.max(1e-9),
        },
        "noop_delta_seconds": noop_time.as_secs_f64(),
        "delta_100_seconds": delta_time.as_secs_f64(),
        "delta_100_new_messages": delta_new,
        "raw_fetch_seconds": fetch_time.as_secs_f64(),
        "doveadm_backup_seconds": doveadm_time.as_secs_f64(),
        "ratio_to_doveadm": ratio_doveadm,
        "ratio_to_raw_fetch": ratio_fetch,
        "targets": {"ratio_to_doveadm": 1.5, "noop_delta_seconds": 0.5, "delta_100_seconds": 1.0, "peak_rss_mib": 64},
    });
    let out = std::env::var("BENCH_OUT").unwrap_or_else(|_| "target/bench/copy.json".into());
    if let Some(d) = Path::new(&out).parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    println!("written to {out}");
    Ok(())
}
