//! One measured run of each program the copy benchmark compares: `mailferry copy` (the release
//! binary, as a child), Dovecot's `doveadm backup` over imapc (a child), and a raw pipelined FETCH
//! of the whole source with mailferry's IMAP client (in this process).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use imap_next::imap_types::command::CommandBody;
use imap_next::imap_types::fetch::{MessageDataItem, MessageDataItemName};
use imap_next::imap_types::response::Data;
use integration_tests::cpu;
use testbed::Dovecot;

pub const SOURCE_USER: &str = "bench@old.example";
pub const SOURCE_PW: &str = "bench-source-pw";
pub const TARGET_USER: &str = "bench@new.example";
pub const TARGET_PW: &str = "bench-target-pw";

/// What one run cost. CPU times are seconds; a server's CPU is its master and every worker
/// process (logins and TLS included).
#[derive(Debug, Default, Clone, Copy)]
pub struct Run {
    pub wall: f64,
    /// The copier (mailferry, doveadm, or this process for the raw FETCH).
    pub cpu: f64,
    pub rss_mib: f64,
    pub source_cpu: f64,
    /// The target Dovecot; zero for doveadm, which writes the mailbox itself.
    pub target_cpu: f64,
}

/// A side of the copy as the programs reach it.
pub struct Side<'a> {
    pub server: &'a Dovecot,
    pub tls: bool,
}

impl Side<'_> {
    fn port(&self) -> Result<u16> {
        if self.tls {
            self.server
                .tls_port()
                .context("a TLS side without a TLS port")
        } else {
            Ok(self.server.port())
        }
    }

    fn url(&self, login: &str) -> Result<String> {
        let scheme = if self.tls { "imaps" } else { "imap+plain" };
        Ok(format!(
            "{scheme}://{}@127.0.0.1:{}",
            login.replace('@', "%40"),
            self.port()?
        ))
    }

    fn cpu(&self) -> Duration {
        self.server.pid().map_or(Duration::ZERO, cpu::tree)
    }
}

/// Runs `work` and measures the servers' CPU around it. Dovecot's master reaps a finished
/// session's process a moment after the client logs out, so the second reading waits for that.
fn with_server_cpu<T>(
    source: &Side,
    target: Option<&Side>,
    work: impl FnOnce() -> Result<T>,
) -> Result<(T, f64, f64)> {
    let target_cpu = || target.map_or(Duration::ZERO, Side::cpu);
    let (s0, t0) = (source.cpu(), target_cpu());
    let value = work()?;
    std::thread::sleep(Duration::from_millis(200));
    let (s1, t1) = (source.cpu(), target_cpu());
    Ok((
        value,
        s1.saturating_sub(s0).as_secs_f64(),
        t1.saturating_sub(t0).as_secs_f64(),
    ))
}

/// Wall time, peak RSS and output of a child. Peak RSS is the kernel's high-water mark
/// (VmHWM), sampled while the child runs, so only the last value before exit matters.
fn run_child(mut cmd: Command) -> Result<(f64, f64, f64, std::process::Output)> {
    let cpu_before = cpu::reaped_children();
    let start = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    let pid = child.id();
    let drain = |s: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut s) = s {
                let _ = s.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.stdout.take().map(|s| Box::new(s) as _));
    let err = drain(child.stderr.take().map(|s| Box::new(s) as _));
    let mut peak_kb = 0u64;
    let status = loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            for line in status.lines() {
                if let Some(v) = line.strip_prefix("VmHWM:") {
                    let kb = v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
                    peak_kb = peak_kb.max(kb);
                }
            }
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu::reaped_children()
        .saturating_sub(cpu_before)
        .as_secs_f64();
    let output = std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    };
    Ok((wall, cpu, peak_kb as f64 / 1024.0, output))
}

/// `mailferry copy` from `source` to `target` with its state in `state`: the run and the
/// summary it printed (`ok` checked).
pub fn mailferry(
    bin: &Path,
    source: &Side,
    target: &Side,
    state: &Path,
    ca_file: &Path,
) -> Result<(Run, serde_json::Value)> {
    let mut cmd = Command::new(bin);
    cmd.arg("copy")
        .args(["--source", &source.url(SOURCE_USER)?])
        .args(["--target", &target.url(TARGET_USER)?])
        .arg("--state")
        .arg(state)
        .arg("--json")
        .arg("--extra-ca")
        .arg(ca_file)
        .arg("--parallel")
        .arg(std::env::var("BENCH_PARALLEL").unwrap_or_else(|_| "4".into()))
        .env("MAILFERRY_SOURCE_PASSWORD", SOURCE_PW)
        .env("MAILFERRY_TARGET_PASSWORD", TARGET_PW);
    let ((wall, cpu, rss_mib, out), source_cpu, target_cpu) =
        with_server_cpu(source, Some(target), || run_child(cmd))?;
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "mailferry copy printed no JSON: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if summary["ok"] != true {
        bail!("mailferry copy did not complete: {summary}");
    }
    let run = Run {
        wall,
        cpu,
        rss_mib,
        source_cpu,
        target_cpu,
    };
    Ok((run, summary))
}

/// `doveadm backup -R` pulling `source` over imapc into the mailbox of `target`'s configuration
/// (written directly by doveadm: the target server is not involved). Run again on the same
/// target it is doveadm's incremental backup.
pub fn doveadm(source: &Side, target: &Dovecot, ca_file: &Path) -> Result<Run> {
    let mut cmd = Command::new("doveadm");
    cmd.arg("-c").arg(target.config_path());
    let set = |cmd: &mut Command, setting: String| {
        cmd.arg("-o").arg(setting);
    };
    set(&mut cmd, "imapc_host=127.0.0.1".into());
    set(&mut cmd, format!("imapc_port={}", source.port()?));
    set(&mut cmd, format!("imapc_user={SOURCE_USER}"));
    set(&mut cmd, format!("imapc_password={SOURCE_PW}"));
    set(
        &mut cmd,
        "imapc_features=rfc822.size fetch-headers modseq".into(),
    );
    set(&mut cmd, "mail_prefetch_count=20".into());
    if source.tls {
        set(&mut cmd, "imapc_ssl=imaps".into());
        set(
            &mut cmd,
            format!("ssl_client_ca_file={}", ca_file.display()),
        );
    }
    cmd.args(["backup", "-R", "-u", TARGET_USER, "imapc:"]);
    let ((wall, cpu, rss_mib, out), source_cpu, _) =
        with_server_cpu(source, None, || run_child(cmd))?;
    if !out.status.success() {
        bail!(
            "doveadm backup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(Run {
        wall,
        cpu,
        rss_mib,
        source_cpu,
        target_cpu: 0.0,
    })
}

/// The floor: every folder of the source read once with one `UID FETCH 1:* (UID BODY.PEEK[])`
/// each, whole bodies (the cheapest way for the server to hand the mail out), nothing written
/// anywhere. Returns the run and the bytes read.
pub async fn raw_fetch(source: &Side<'_>, ca_pem: &str) -> Result<(Run, u64)> {
    let endpoint = domain::Endpoint {
        host: "127.0.0.1".into(),
        port: source.port()?,
        security: if source.tls {
            contract::Security::Tls
        } else {
            contract::Security::Plaintext
        },
    };
    let tls = imap::TlsConfig::no_roots().with_extra_ca_pem(ca_pem)?;
    let s0 = source.cpu();
    let own0 = cpu::own();
    let start = Instant::now();
    let mut session = imap::Session::connect(&endpoint, &tls, Duration::from_secs(60)).await?;
    session
        .login(SOURCE_USER, &domain::Secret::new(SOURCE_PW))
        .await?;
    let mut bytes = 0u64;
    for f in session.list_folders().await?.into_iter() {
        if !f.selectable {
            continue;
        }
        session.examine(&f.name).await?;
        let items = vec![
            MessageDataItemName::Uid,
            MessageDataItemName::BodyExt {
                section: None,
                partial: None,
                peek: true,
            },
        ];
        let fetch = CommandBody::fetch("1:*", items, true).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let done = session.execute(fetch).await?;
        for data in done.data {
            if let Data::Fetch { items, .. } = data {
                for item in items.into_inner() {
                    if let MessageDataItem::BodyExt { data, .. } = item {
                        bytes += data.into_option().map_or(0, |d| d.len() as u64);
                    }
                }
            }
        }
    }
    session.logout().await?;
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu::own().saturating_sub(own0).as_secs_f64();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let source_cpu = source.cpu().saturating_sub(s0).as_secs_f64();
    let run = Run {
        wall,
        cpu,
        rss_mib: 0.0,
        source_cpu,
        target_cpu: 0.0,
    };
    Ok((run, bytes))
}

/// A file holding every CA the copiers must trust (each test Dovecot has its own).
pub fn ca_file(dir: &Path, servers: &[&Dovecot]) -> Result<PathBuf> {
    let pem: String = servers.iter().filter_map(|s| s.ca_pem()).collect();
    let path = dir.join("cas.pem");
    std::fs::write(&path, pem)?;
    Ok(path)
}
