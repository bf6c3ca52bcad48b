//! Support for mailferry's integration tests and benchmarks: [`spawn_app`] starts exactly what
//! `mailferry serve` starts (router, worker loop, SQLite, outbox mail) on port 0 with a
//! temporary data folder, and [`TestApp`] wraps an HTTP client with a cookie jar and helpers
//! for the admin and self-service API. Mail servers come from the `testbed` crate (real
//! Dovecot instances).

use std::path::PathBuf;

pub mod corpus;
pub mod cpu;
pub mod servers;

use anyhow::{Context, Result, bail};
use contract::{ApiErrorBody, OutboxMail};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub const ADMIN_PASSWORD: &str = "integration-admin-pw";

/// A running local server with its own data folder.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub data_dir: PathBuf,
    server: Option<mailferry::serve::Server>,
    _dir: tempfile::TempDir,
}

/// A reply: status and JSON (or text as a JSON string).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    pub fn error(&self) -> Option<ApiErrorBody> {
        serde_json::from_value(self.body.clone()).ok()
    }
}

/// Starts the server on 127.0.0.1:0 with a fresh data folder and the admin password
/// [`ADMIN_PASSWORD`]. `extra_ca` is a PEM the IMAP client trusts (a test server's CA).
pub async fn spawn_app(extra_ca: Option<&str>) -> Result<TestApp> {
    spawn_app_with(extra_ca, |_| {}).await
}

/// [`spawn_app`] with the server's arguments adjusted by `tune` (queue, lease and chunk
/// settings for fault tests).
pub async fn spawn_app_with(
    extra_ca: Option<&str>,
    tune: impl FnOnce(&mut mailferry::serve::ServeArgs),
) -> Result<TestApp> {
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().join("data");
    let extra_ca = match extra_ca {
        Some(pem) => {
            let p = dir.path().join("ca.pem");
            std::fs::write(&p, pem)?;
            Some(p)
        }
        None => None,
    };
    let mut args = mailferry::serve::ServeArgs::for_tests(data_dir.clone());
    args.frontend = std::env::var_os("MAILFERRY_FRONTEND_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.path().join("no-frontend"));
    args.workers = 2;
    args.extra_ca = extra_ca;
    tune(&mut args);
    let server = mailferry::serve::start(args, Some(domain::Secret::new(ADMIN_PASSWORD))).await?;
    let http = reqwest::Client::builder().cookie_store(true).build()?;
    Ok(TestApp {
        base: server.public_url.clone(),
        http,
        data_dir: server.data_dir.clone(),
        server: Some(server),
        _dir: dir,
    })
}

impl TestApp {
    /// The domain application inside the server, for tests that call a use case directly.
    pub fn app(&self) -> &domain::App {
        &self.server.as_ref().expect("the server is running").app
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn reply(resp: reqwest::Response) -> Result<Reply> {
        let status = resp.status();
        let text = resp.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Reply { status, body })
    }

    pub async fn get(&self, path: &str) -> Result<Reply> {
        Self::reply(self.http.get(self.url(path)).send().await?).await
    }

    /// A body that is not JSON (CSV, HTML, XML), as text.
    pub async fn get_text(&self, path: &str) -> Result<String> {
        Ok(self.http.get(self.url(path)).send().await?.text().await?)
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Reply> {
        Self::reply(self.http.post(self.url(path)).json(&body).send().await?).await
    }

    pub async fn post_bytes(&self, path: &str, content_type: &str, body: Vec<u8>) -> Result<Reply> {
        Self::reply(
            self.http
                .post(self.url(path))
                .header("content-type", content_type)
                .body(body)
                .send()
                .await?,
        )
        .await
    }

    pub async fn login(&self) -> Result<()> {
        let r = self
            .post("/api/admin/login", json!({ "password": ADMIN_PASSWORD }))
            .await?;
        if r.status != StatusCode::OK {
            bail!("admin login failed: {r:?}");
        }
        Ok(())
    }

    /// Creates a project and returns its id.
    pub async fn create_project(&self, project: Value) -> Result<String> {
        let r = self.post("/api/admin/projects", project).await?;
        if r.status != StatusCode::CREATED {
            bail!("project creation failed: {r:?}");
        }
        Ok(r.body["id"].as_str().context("project id")?.to_owned())
    }

    pub async fn outbox(&self) -> Result<Vec<OutboxMail>> {
        let r = self.get("/api/admin/outbox").await?;
        Ok(serde_json::from_value(r.body)?)
    }

    /// The invite token of the newest outbox mail to `to`.
    pub async fn invite_token_for(&self, to: &str) -> Result<String> {
        let mails = self.outbox().await?;
        let mail = mails
            .iter()
            .find(|m| m.to == to)
            .with_context(|| format!("no invite to {to} in the outbox"))?;
        let link = mail
            .text
            .split_whitespace()
            .find(|w| w.contains("/migrate/"))
            .context("no link in the invite")?;
        Ok(link.rsplit('/').next().context("token")?.to_owned())
    }

    /// Stops the server cleanly (what Ctrl-C does); the data folder stays until `self` drops.
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(s) = self.server.take() {
            s.stop().await?;
        }
        Ok(())
    }
}

/// All bytes of the files in the data folder, for "no plaintext secret on disk" checks.
pub fn data_files_contain(dir: &std::path::Path, needle: &[u8]) -> Result<Vec<PathBuf>> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path)?;
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    hits.push(path);
                }
            }
        }
    }
    Ok(hits)
}

/// What a mailbox holds, folder by folder, independent of UIDs: for each folder the sorted
/// list of (SHA-256 of the bytes, sorted flags, INTERNALDATE as a Unix time). Two mailboxes
/// with equal snapshots hold the same messages, duplicates included.
pub type Snapshot = std::collections::BTreeMap<String, Vec<(String, Vec<String>, i64)>>;

/// Reads every folder of a mailbox over IMAP (plaintext, loopback test servers).
pub async fn snapshot(port: u16, login: &str, password: &str) -> Result<(Snapshot, Vec<String>)> {
    use sha2::{Digest, Sha256};
    let endpoint = domain::Endpoint {
        host: "127.0.0.1".into(),
        port,
        security: contract::Security::Plaintext,
    };
    let mut session = imap::Session::connect(
        &endpoint,
        &imap::TlsConfig::no_roots(),
        std::time::Duration::from_secs(30),
    )
    .await?;
    session.login(login, &domain::Secret::new(password)).await?;
    let folders = session.list_folders().await?;
    let subscribed = folders
        .iter()
        .filter(|f| f.subscribed)
        .map(|f| f.name.clone())
        .collect();
    let mut snap = Snapshot::new();
    for f in folders.iter().filter(|f| f.selectable) {
        let status = session.examine(&f.name).await?;
        let mut items = Vec::new();
        if status.messages > 0 {
            session
                .fetch_bodies(&imap::UidSet::all(), |m| {
                    let mut flags = m.meta.flags.clone();
                    flags.sort();
                    items.push((
                        hex::encode(Sha256::digest(&m.body)),
                        flags,
                        m.meta.internaldate.unix_timestamp(),
                    ));
                    std::future::ready(std::ops::ControlFlow::Continue(()))
                })
                .await?;
        }
        items.sort();
        snap.insert(f.name.clone(), items);
    }
    session.logout().await?;
    Ok((snap, subscribed))
}

/// Polls the admin API until the user reaches `state` (or fails), up to `timeout`.
pub async fn wait_for_state(
    app: &TestApp,
    project: &str,
    user: &str,
    state: &str,
    timeout: std::time::Duration,
) -> Result<Value> {
    let until = std::time::Instant::now() + timeout;
    loop {
        let r = app
            .get(&format!("/api/admin/projects/{project}/users/{user}"))
            .await?;
        let now = r.body["user"]["state"].as_str().unwrap_or("").to_owned();
        if now == state {
            return Ok(r.body);
        }
        if std::time::Instant::now() > until {
            bail!(
                "user still '{now}' after {timeout:?}, wanted '{state}': {}",
                r.body
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
