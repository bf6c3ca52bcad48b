//! The copy benchmark: a corpus of about 5,000 messages / 930 MB in 19 folders (mostly 2–50 KB,
//! 150 of 1–10 MB, a few of 25 MB) on a local Dovecot source, copied by `mailferry copy` (the
//! release build of the real program, as a child process) and, in the same rounds, by Dovecot's
//! own `doveadm backup` over imapc, with a raw pipelined FETCH of the whole source as the floor.
//!
//! Each configuration (plaintext or TLS on both sides; a target without fsync or with
//! Dovecot's default fsync) runs `BENCH_ROUNDS` rounds (default 5). A round: the raw FETCH, then
//! mailferry's and doveadm's full passes into fresh targets (their order alternating from round
//! to round), their no-op deltas, 100 new messages at the source, their +100 deltas, and the 100
//! removed again. Each run's wall time, the copier's CPU and peak RSS, and the CPU the source and
//! target Dovecot spent (master and worker processes, from /proc) are kept; the table gives the
//! median and range, and each ratio is taken within its round. Everything goes to
//! `target/bench/copy.json`, so a regression shows as a ratio.
//!
//! `BENCH_SCALE` (default 1.0) scales the corpus, `BENCH_ROUNDS` the rounds, `BENCH_CONFIGS`
//! picks configurations (comma-separated, from `plain-nofsync,plain-fsync,tls-nofsync,tls-fsync`).
//! Run with `cargo xtask bench copy`, which builds the release binaries first.

mod report;
mod runs;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use integration_tests::corpus::{Rng, SeedMessage, message};
use serde_json::json;
use testbed::{Dovecot, DovecotOptions};

use report::Round;
use runs::{SOURCE_PW, SOURCE_USER, Side, TARGET_PW, TARGET_USER};

const CONFIGS: &[&str] = &["plain-nofsync", "plain-fsync", "tls-nofsync", "tls-fsync"];

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

/// 100 new messages of 2–50 KB for INBOX.
fn hundred_new(round: usize) -> Vec<SeedMessage> {
    let mut rng = Rng::new(77 + round as u64);
    let base = time::OffsetDateTime::now_utc();
    (0..100)
        .map(|i| {
            let size = 2_000 + rng.below(48_000) as usize;
            let id = format!("<delta{round}-{i}@old.example>");
            SeedMessage {
                folder: "INBOX".into(),
                bytes: message(&mut rng, 900_000 + i, Some(&id), "delta", size, base),
                flags: vec![],
                internaldate: base,
            }
        })
        .collect()
}

/// INBOX's UIDNEXT at the source: the UIDs the next messages get.
fn uidnext(server: &Dovecot) -> Result<u32> {
    let mut raw = server.raw_session(SOURCE_USER)?;
    let status = raw.command("STATUS INBOX (UIDNEXT)")?;
    raw.logout();
    let line = status
        .untagged
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .find(|l| l.contains("UIDNEXT"))
        .context("no STATUS answer")?;
    let after = line.split("UIDNEXT").nth(1).context("UIDNEXT")?;
    let digits: String = after
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Ok(digits.parse()?)
}

/// Removes INBOX's messages from UID `from` on (what [`hundred_new`] added), so every round
/// starts from the same mailbox.
fn remove_from(server: &Dovecot, from: u32) -> Result<()> {
    let mut raw = server.raw_session(SOURCE_USER)?;
    raw.command("SELECT INBOX")?;
    raw.command(&format!("UID STORE {from}:* +FLAGS.SILENT (\\Deleted)"))?;
    let expunged = raw.command(&format!("UID EXPUNGE {from}:*"))?;
    raw.logout();
    if expunged.status != "OK" {
        bail!("UID EXPUNGE failed: {}", expunged.text);
    }
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

fn target_server(fsync: bool, tls: bool) -> Result<Dovecot> {
    let mut opts = DovecotOptions::default()
        .separator('/')
        .tls(tls)
        .user(TARGET_USER, TARGET_PW);
    if !fsync {
        opts = opts.no_fsync();
    }
    Dovecot::start(opts)
}

/// One round of one configuration (see the crate's documentation).
async fn round(
    bin: &Path,
    source: &Dovecot,
    config: &str,
    index: usize,
    expected: u64,
) -> Result<Round> {
    let tls = config.starts_with("tls");
    let fsync = config.ends_with("-fsync");
    let dir = tempfile::tempdir()?;
    let target = target_server(fsync, tls)?;
    let reference = target_server(fsync, tls)?;
    let ca_file = runs::ca_file(dir.path(), &[source, &target])?;
    let ca_pem = std::fs::read_to_string(&ca_file)?;
    let src = Side {
        server: source,
        tls,
    };
    let dst = Side {
        server: &target,
        tls,
    };
    let state = dir.path().join("bench.state");
    let mut r = Round::default();

    (r.fetch, _) = runs::raw_fetch(&src, &ca_pem).await?;
    let mailferry_first = index.is_multiple_of(2);
    let mailferry = |r: &mut Round| -> Result<u64> {
        let (run, summary) = runs::mailferry(bin, &src, &dst, &state, &ca_file)?;
        r.bytes = summary["bytes_copied"].as_u64().unwrap_or(0);
        r.mailferry = run;
        Ok(summary["messages_copied"].as_u64().unwrap_or(0))
    };
    let copied = if mailferry_first {
        let copied = mailferry(&mut r)?;
        r.doveadm = runs::doveadm(&src, &reference, &ca_file)?;
        copied
    } else {
        r.doveadm = runs::doveadm(&src, &reference, &ca_file)?;
        mailferry(&mut r)?
    };
    if copied != expected {
        bail!("the full pass copied {copied} messages, the source holds {expected}");
    }
    let status = reference.doveadm(&[
        "mailbox",
        "status",
        "-u",
        TARGET_USER,
        "-t",
        "messages",
        "*",
    ])?;
    let doveadm_copied: u64 = status
        .trim()
        .trim_start_matches("messages=")
        .parse()
        .with_context(|| format!("doveadm mailbox status said {status:?}"))?;
    if doveadm_copied != expected {
        bail!("doveadm backup copied {doveadm_copied} messages, the source holds {expected}");
    }

    // Deltas: nothing changed, then 100 new messages.
    (r.mailferry_noop, _) = runs::mailferry(bin, &src, &dst, &state, &ca_file)?;
    r.doveadm_noop = runs::doveadm(&src, &reference, &ca_file)?;
    let from = uidnext(source)?;
    seed(source, &hundred_new(index))?;
    let (delta, summary) = runs::mailferry(bin, &src, &dst, &state, &ca_file)?;
    r.mailferry_delta = delta;
    r.doveadm_delta = runs::doveadm(&src, &reference, &ca_file)?;
    remove_from(source, from)?;
    let new = summary["messages_copied"].as_u64().unwrap_or(0);
    if new != 100 {
        bail!("the +100 delta copied {new} messages");
    }
    println!(
        "{config} round {}: full {:.2} s (doveadm {:.2} s), CPU {:.2} s (doveadm {:.2} s), source CPU {:.2} s (doveadm {:.2} s, raw FETCH {:.2} s), RSS {:.0} MiB",
        index + 1,
        r.mailferry.wall,
        r.doveadm.wall,
        r.mailferry.cpu,
        r.doveadm.cpu,
        r.mailferry.source_cpu,
        r.doveadm.source_cpu,
        r.fetch.source_cpu,
        r.mailferry.rss_mib
    );
    Ok(r)
}

/// What TLS costs each copier: the median TLS figure over the plaintext one, same fsync.
fn tls_cost(by_config: &[(String, Vec<Round>)]) -> serde_json::Value {
    let median = |config: &str, f: fn(&Round) -> f64| {
        by_config
            .iter()
            .find(|(c, _)| c == config)
            .map(|(_, rounds)| report::spread(&rounds.iter().map(f).collect::<Vec<_>>()).median)
    };
    let mut out = serde_json::Map::new();
    for fsync in ["nofsync", "fsync"] {
        let (plain, tls) = (format!("plain-{fsync}"), format!("tls-{fsync}"));
        let cost = |f: fn(&Round) -> f64| match (median(&tls, f), median(&plain, f)) {
            (Some(t), Some(p)) if p > 0.0 => Some(t / p),
            _ => None,
        };
        let figures = json!({
            "mailferry_wall": cost(|r| r.mailferry.wall),
            "mailferry_cpu": cost(|r| r.mailferry.cpu),
            "mailferry_source_cpu": cost(|r| r.mailferry.source_cpu),
            "doveadm_wall": cost(|r| r.doveadm.wall),
            "doveadm_cpu": cost(|r| r.doveadm.cpu),
            "doveadm_source_cpu": cost(|r| r.doveadm.source_cpu),
        });
        if figures
            .as_object()
            .is_some_and(|o| o.values().any(|v| !v.is_null()))
        {
            println!("TLS over plaintext ({fsync}): {figures}");
            out.insert(fsync.to_owned(), figures);
        }
    }
    serde_json::Value::Object(out)
}

#[tokio::main]
async fn main() -> Result<()> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let scale: f64 = env("BENCH_SCALE")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let rounds: usize = env("BENCH_ROUNDS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let configs: Vec<String> = match env("BENCH_CONFIGS") {
        Some(list) => list.split(',').map(|c| c.trim().to_owned()).collect(),
        None => CONFIGS.iter().map(|c| (*c).to_owned()).collect(),
    };
    if let Some(bad) = configs.iter().find(|c| !CONFIGS.contains(&c.as_str())) {
        bail!("unknown configuration {bad}; known: {}", CONFIGS.join(","));
    }
    let bin = sibling_binary("mailferry_under_test")?;
    let source = Dovecot::start(
        DovecotOptions::default()
            .no_fsync()
            .separator('/')
            .tls(true)
            .user(SOURCE_USER, SOURCE_PW),
    )?;
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

    let mut by_config = Vec::new();
    for config in &configs {
        let mut done = Vec::new();
        for i in 0..rounds {
            done.push(round(&bin, &source, config, i, messages.len() as u64).await?);
        }
        by_config.push((config.clone(), done));
    }
    let figures: Vec<_> = by_config
        .iter()
        .map(|(c, rounds)| report::configuration(c, rounds))
        .collect();
    let report = json!({
        "benchmark": "copy",
        "scale": scale,
        "messages": messages.len(),
        "bytes": total_bytes,
        "rounds": rounds,
        "parallel": env("BENCH_PARALLEL").unwrap_or_else(|| "4".into()),
        "configurations": figures,
        "tls_over_plaintext": tls_cost(&by_config),
        "targets": report::TARGETS.iter().map(|(k, v, what)| json!({"figure": k, "at_most": v, "what": what})).collect::<Vec<_>>(),
    });
    let out = env("BENCH_OUT").unwrap_or_else(|| "target/bench/copy.json".into());
    if let Some(d) = Path::new(&out).parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    println!("written to {out}");
    Ok(())
}
