//! Running child processes and printing short progress lines.

use anyhow::{Context, Result, bail};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One progress line, always prefixed so it stands out between cargo's and trunk's output.
pub fn step(msg: impl std::fmt::Display) {
    eprintln!("xtask: {msg}");
}

pub fn warn(msg: impl std::fmt::Display) {
    eprintln!("xtask: warning: {msg}");
}

/// Runs a command with inherited stdio and fails with the command line when it exits non-zero.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = describe(cmd);
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Runs a command and returns whether it exited zero; only a failure to start it is an error.
pub fn run_ok(cmd: &mut Command) -> Result<bool> {
    let shown = describe(cmd);
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{shown}`"))?;
    Ok(status.success())
}

/// Runs a command quietly and returns its trimmed stdout, or `None` if it cannot start or fails.
/// Used for version probes, where "not there" and "broken" both mean "install it".
pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `program --version` (or another probe argument), quietly.
pub fn version_of(program: impl AsRef<OsStr>, arg: &str) -> Option<String> {
    output(Command::new(program).arg(arg))
}

/// The first executable called `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `PATH` with `dirs` in front, for children that must find our pinned tools first.
pub fn path_with(dirs: &[PathBuf]) -> Result<std::ffi::OsString> {
    let current = std::env::var_os("PATH").unwrap_or_default();
    let all = dirs.iter().cloned().chain(std::env::split_paths(&current));
    std::env::join_paths(all).context("a tool directory contains ':'")
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Measures a closure, for the "done in …" lines and the test summary.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

/// Each timed step of this run, in the order they ended: `(thread, step, duration)`.
static STEP_TIMES: Mutex<Vec<(&'static str, &'static str, Duration)>> = Mutex::new(Vec::new());

/// Runs one named step of the setup and keeps its duration for [`print_step_times`]. `lane`
/// says which of the setup's parallel lanes ran it (their times overlap).
pub fn timed_step<T>(lane: &'static str, name: &'static str, f: impl FnOnce() -> T) -> T {
    let (value, took) = timed(f);
    if let Ok(mut times) = STEP_TIMES.lock() {
        times.push((lane, name, took));
    }
    value
}

/// Prints every step timed so far, one line each, grouped by lane.
pub fn print_step_times() {
    let Ok(times) = STEP_TIMES.lock() else { return };
    let mut lanes: Vec<&str> = times.iter().map(|(lane, _, _)| *lane).collect();
    lanes.sort_unstable();
    lanes.dedup();
    for lane in lanes {
        let steps: Vec<_> = times.iter().filter(|(l, _, _)| *l == lane).collect();
        let total: Duration = steps.iter().map(|(_, _, d)| *d).sum();
        step(format!("setup lane {lane}: {} in all", fmt_duration(total)));
        for (_, name, took) in steps {
            step(format!("  {:<32} {:>8}", name, fmt_duration(*took)));
        }
    }
}

pub fn fmt_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(fmt_duration(Duration::from_millis(2500)), "2.5s");
        assert_eq!(fmt_duration(Duration::from_secs(372)), "6m12s");
    }

    #[test]
    fn path_with_puts_new_dirs_first() {
        let p = path_with(&[PathBuf::from("/opt/tool/bin")]).unwrap();
        assert!(p.to_string_lossy().starts_with("/opt/tool/bin"));
    }
}
