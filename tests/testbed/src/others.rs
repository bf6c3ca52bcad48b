//! Cyrus IMAP and Courier IMAP as throw-away test servers beside Dovecot.
//!
//! Debian's three IMAP servers conflict (`Conflicts: imap-server`), so Cyrus and Courier run from
//! their extracted packages (`cargo xtask test` downloads and unpacks them into the tools cache and
//! names the folders in `MAILFERRY_CYRUS_ROOT` / `MAILFERRY_COURIER_ROOT`). Each instance lives in a
//! temp folder, in a private mount and pid namespace (`scripts/start-*.sh`; how and why in
//! `SERVERS.md`), on a free loopback port; dropping it SIGKILLs the namespace.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::{RawImap, free_ports};

/// How Cyrus names folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CyrusNamespace {
    /// Debian's default: every folder under `INBOX.`, `.` between levels; elsewhere CREATE
    /// says "Permission denied".
    Debian,
    /// Upstream's (`altnamespace`, `unixhierarchysep`): folders beside INBOX, `/` between levels.
    Upstream,
}

/// Which extracted server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cyrus(CyrusNamespace),
    Courier,
}

impl Kind {
    /// The personal namespace's prefix and delimiter.
    pub fn namespace(self) -> (&'static str, char) {
        match self {
            Kind::Cyrus(CyrusNamespace::Debian) | Kind::Courier => ("INBOX.", '.'),
            Kind::Cyrus(CyrusNamespace::Upstream) => ("", '/'),
        }
    }

    /// A folder path written with `/` (`Archive/Old`) as this server names it.
    pub fn folder(self, path: &str) -> String {
        if path.eq_ignore_ascii_case("INBOX") {
            return "INBOX".into();
        }
        let (prefix, delimiter) = self.namespace();
        format!("{prefix}{}", path.replace('/', &delimiter.to_string()))
    }

    /// Whether the server stores messages byte for byte as given (bare line feeds aside).
    pub fn keeps_8bit_headers(self) -> bool {
        matches!(self, Kind::Courier)
    }
}

/// One running Cyrus or Courier instance.
pub struct OtherServer {
    kind: Kind,
    port: u16,
    users: Vec<(String, String)>,
    child: Child,
    // Removed after the instance is killed (Drop order: fields after `drop`).
    dir: TempDir,
}

/// The folder an extracted package was unpacked into.
fn root(var: &str, name: &str) -> Result<PathBuf> {
    let path = match std::env::var_os(var) {
        Some(p) => PathBuf::from(p),
        None => dirs_home()?.join(".cache/mailferry/tools").join(name),
    };
    if !path.is_dir() {
        bail!(
            "{} is missing: run `cargo xtask test` once (it unpacks the {name} package), or set {var}",
            path.display()
        );
    }
    Ok(path)
}

fn dirs_home() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .context("HOME is not set")
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

impl OtherServer {
    /// Starts a fresh instance with these users (login, password; neither with spaces, which
    /// the scripts split on) and waits until the first user can log in (which proves the port
    /// is this instance's).
    pub fn start(kind: Kind, users: &[(&str, &str)]) -> Result<OtherServer> {
        let dir = tempfile::Builder::new()
            .prefix("mailferry-imap-")
            .tempdir()
            .context("creating the instance directory")?;
        let port = free_ports(1)?[0];
        let state = dir.path().join("state");
        let list: Vec<String> = users.iter().map(|(u, p)| format!("{u}:{p}")).collect();
        let mut command = Command::new("bash");
        match kind {
            Kind::Cyrus(namespace) => {
                command
                    .arg(script("start-cyrus.sh"))
                    .arg(&state)
                    .arg(port.to_string())
                    .env("CYRUS_ROOT", root("MAILFERRY_CYRUS_ROOT", "cyrus")?)
                    .env("CYRUS_USERS", list.join(" "));
                if namespace == CyrusNamespace::Upstream {
                    command.args(["altnamespace: yes", "unixhierarchysep: yes"]);
                }
            }
            Kind::Courier => {
                command
                    .arg(script("start-courier.sh"))
                    .arg(&state)
                    .arg(port.to_string())
                    .env("COURIER_ROOT", root("MAILFERRY_COURIER_ROOT", "courier")?)
                    .env("COURIER_USERS", list.join(" "));
            }
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting the server script")?;
        let mut server = OtherServer {
            kind,
            port,
            users: users
                .iter()
                .map(|(u, p)| ((*u).to_owned(), (*p).to_owned()))
                .collect(),
            child,
            dir,
        };
        server.wait_ready(Duration::from_secs(30))?;
        Ok(server)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let (user, password) = self.users.first().cloned().context("no user")?;
        loop {
            if let Some(status) = self.child.try_wait()? {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                bail!(
                    "the {:?} instance ended ({status}) before it was ready: {err}",
                    self.kind
                );
            }
            let last = match RawImap::connect(self.port) {
                Ok(mut imap) => match imap.login_command(&user, &password) {
                    Ok(()) => {
                        imap.logout();
                        return Ok(());
                    }
                    Err(e) => e,
                },
                Err(e) => e,
            };
            if Instant::now() > deadline {
                bail!(
                    "the {:?} instance on port {} was not ready after {timeout:?}: {last:#} (logs in {})",
                    self.kind,
                    self.port,
                    self.dir.path().display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn password(&self, user: &str) -> Option<String> {
        self.users
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, p)| p.clone())
    }

    /// A logged-in raw IMAP session of `user`.
    pub fn raw_session(&self, user: &str) -> Result<RawImap> {
        let password = self
            .password(user)
            .with_context(|| format!("no user {user} on this instance"))?;
        let mut imap = RawImap::connect(self.port)?;
        imap.login_command(user, &password)?;
        Ok(imap)
    }
}

impl Drop for OtherServer {
    fn drop(&mut self) {
        // SIGKILL on unshare kills pid 1 of the namespace, and with it every process there.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
