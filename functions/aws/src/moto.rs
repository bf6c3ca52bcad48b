//! A `moto_server` process for tests: started on a free loopback port from the Python venv
//! (`$MAILFERRY_VENV`, default `~/.cache/mailferry/venv`, where `cargo xtask test` installs
//! `moto[server]`), waited for until it answers HTTP, and killed when dropped. Each test makes
//! its own uniquely named table, queues and key, so tests can share one server or run their
//! own.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a fresh moto_server may take to answer (about a second on an idle machine).
const START_PATIENCE: Duration = Duration::from_secs(60);

/// A running moto_server; killed on drop.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    addr: SocketAddr,
}

/// Why moto could not be started.
#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error(
        "moto_server not found at {0} (install it with `cargo xtask test`, or set MAILFERRY_VENV to a venv with moto[server])"
    )]
    NotInstalled(PathBuf),
    #[error("moto_server could not be started: {0}")]
    Spawn(std::io::Error),
    #[error("moto_server did not answer on {addr} within {secs} s")]
    NoAnswer { addr: SocketAddr, secs: u64 },
    #[error("moto_server exited at start with {0}")]
    Exited(std::process::ExitStatus),
}

/// The venv holding moto: `$MAILFERRY_VENV`, else `~/.cache/mailferry/venv`.
pub fn venv() -> PathBuf {
    match std::env::var_os("MAILFERRY_VENV").filter(|v| !v.is_empty()) {
        Some(v) => PathBuf::from(v),
        None => {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            PathBuf::from(home).join(".cache/mailferry/venv")
        }
    }
}

impl MotoServer {
    /// Starts moto_server on a free loopback port and waits until it answers.
    pub fn start() -> Result<Self, MotoError> {
        let exe = venv().join("bin/moto_server");
        if !exe.is_file() {
            return Err(MotoError::NotInstalled(exe));
        }
        // Another process may take the port between this probe and moto's bind; moto then
        // exits at once and the start is retried on a new port.
        let mut last = None;
        for _ in 0..3 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|l| l.local_addr())
                .map_err(MotoError::Spawn)?
                .port();
            let child = Command::new(&exe)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(MotoError::Spawn)?;
            let mut server = MotoServer {
                child,
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            };
            match server.wait_until_answering() {
                Ok(()) => return Ok(server),
                Err(e @ MotoError::Exited(_)) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(MotoError::NoAnswer {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            secs: 0,
        }))
    }

    fn wait_until_answering(&mut self) -> Result<(), MotoError> {
        let deadline = Instant::now() + START_PATIENCE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(MotoError::Exited(status));
            }
            if self.get("/moto-api/data.json").is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(MotoError::NoAnswer {
                    addr: self.addr,
                    secs: START_PATIENCE.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The SDK configuration for this server.
    pub async fn aws(&self) -> crate::Aws {
        crate::Aws::local(&self.endpoint()).await
    }

    /// A blocking HTTP/1.0 GET of `path` on the server, returning the body of a 200 answer.
    /// Enough for moto's own API (`/moto-api/data.json`) without an HTTP client dependency.
    pub fn get(&self, path: &str) -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let raw = String::from_utf8_lossy(&raw);
        let (head, body) = raw
            .split_once("\r\n\r\n")
            .ok_or_else(|| std::io::Error::other("no HTTP header"))?;
        let status = head.split_whitespace().nth(1);
        if !head.starts_with("HTTP/1.") || status != Some("200") {
            return Err(std::io::Error::other(format!(
                "unexpected answer: {}",
                head.lines().next().unwrap_or_default()
            )));
        }
        Ok(body.to_owned())
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One deployment's resources in a moto server: a fresh table, a queue with its dead-letter
/// queue, a KMS key and a verified sender, with the adapters on them and the environment a
/// mailferry Lambda function would get.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub aws: crate::Aws,
    pub store: crate::DynamoStore,
    pub queue: crate::SqsQueue,
    pub vault: crate::KmsVault,
    pub mailer: crate::SesMailer,
    /// `TABLE_NAME`, `QUEUE_URL`, … plus `AWS_ENDPOINT_URL`, region and test credentials.
    pub env: Vec<(String, String)>,
}

/// The sender [`MotoServer::deployment`] verifies.
pub const MAIL_FROM: &str = "noreply@mailferry.example";

impl MotoServer {
    /// Creates a [`Deployment`] whose queue dead-letters after `max_receives` receives.
    pub async fn deployment(&self, max_receives: u32) -> Deployment {
        let aws = self.aws().await;
        let store = aws.dynamo_store(unique_name("mailferry"));
        store.create_table().await.expect("create the table");
        let queue = crate::SqsQueue::create(&aws, &unique_name("jobs"), max_receives)
            .await
            .expect("create the queues");
        let vault = crate::KmsVault::create(&aws, "mailferry test")
            .await
            .expect("create a KMS key");
        let mailer = aws.ses_mailer(MAIL_FROM, None);
        mailer
            .create_email_identity(MAIL_FROM)
            .await
            .expect("verify the sender");
        let env = [
            ("TABLE_NAME", store.table().to_owned()),
            ("QUEUE_URL", queue.url().to_owned()),
            (
                "DEAD_LETTER_QUEUE_URL",
                queue.dead_letter_url().unwrap_or_default().to_owned(),
            ),
            ("KMS_KEY_ID", vault.key_id().to_owned()),
            ("MAIL_FROM", MAIL_FROM.to_owned()),
            ("PUBLIC_URL", "https://mailferry.example".to_owned()),
            ("MAX_RECEIVES", max_receives.to_string()),
            // Read by the api function only (the worker ignores them).
            (
                "COGNITO_DOMAIN",
                "https://mailferry-test.auth.us-east-1.amazoncognito.com".to_owned(),
            ),
            ("COGNITO_CLIENT_ID", "1example23456789abcdefghij".to_owned()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", crate::LOCAL_REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Deployment {
            aws,
            store,
            queue,
            vault,
            mailer,
            env,
        }
    }
}

/// A name no other test uses: `prefix-` and a random suffix (valid for tables, queues, keys).
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}
