//! Where things are: the repository, the per-user cache, the cargo target directory.

use anyhow::{Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct Ctx {
    /// The repository root (the workspace's `Cargo.toml` lives here).
    pub root: PathBuf,
    /// `~/.cache/mailferry`: tools, venv and the shared cargo target directory.
    pub cache: PathBuf,
    /// `CARGO_TARGET_DIR` if set, else `~/.cache/mailferry/target`, so a fresh clone on this machine
    /// reuses the build cache instead of compiling the world again.
    pub target_dir: PathBuf,
    /// The cargo that started us (`$CARGO`), so nested builds use the same toolchain.
    pub cargo: OsString,
    /// Running under CI (`CI` set to anything but `false`/`0`): cargo gets `--locked`.
    pub ci: bool,
}

impl Ctx {
    pub fn new() -> Result<Ctx> {
        // `cargo run` sets CARGO_MANIFEST_DIR for the process it starts; the compile-time value is
        // the fallback when the binary is started directly.
        let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        let root = manifest_dir
            .parent()
            .context("xtask's manifest directory has no parent")?
            .to_path_buf();
        let home = std::env::var_os("HOME").context("HOME is not set")?;
        let cache = Path::new(&home).join(".cache").join("mailferry");
        let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) if !dir.is_empty() => std::path::absolute(&dir)
                .with_context(|| format!("CARGO_TARGET_DIR={}", Path::new(&dir).display()))?,
            _ => cache.join("target"),
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        Ok(Ctx {
            root,
            cache,
            target_dir,
            cargo,
            ci,
        })
    }

    pub fn tools(&self) -> PathBuf {
        self.cache.join("tools")
    }

    /// `MAILFERRY_VENV` if set (the tests read the same variable), else `~/.cache/mailferry/venv`.
    /// The venv of the SAM CLI, apart from the test venv (their pins conflict).
    pub fn sam_venv(&self) -> PathBuf {
        match std::env::var_os("MAILFERRY_SAM_VENV") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => self.cache.join("sam-venv"),
        }
    }

    pub fn venv(&self) -> PathBuf {
        match std::env::var_os("MAILFERRY_VENV") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => self.cache.join("venv"),
        }
    }

    pub fn frontend(&self) -> PathBuf {
        self.root.join("frontend")
    }

    /// A `cargo` command run from the repository root with the shared target directory.
    pub fn cargo(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.cargo);
        cmd.current_dir(&self.root)
            .env("CARGO_TARGET_DIR", &self.target_dir);
        cmd
    }

    /// `--locked` under CI: a fresh clone must build with exactly the committed Cargo.lock.
    pub fn locked_flag(&self) -> Option<&'static str> {
        self.ci.then_some("--locked")
    }
}
