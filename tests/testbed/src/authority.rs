//! A local OAuth 2.0 authority: npm's `oidc-provider` (a certified OpenID Provider) under
//! Node, configured like the token endpoints of Microsoft 365 (client credentials for app
//! registrations) and Google (the RFC 7523 JWT-bearer grant of service accounts). Its access
//! tokens are RS256 JWTs that a Dovecot started with [`crate::DovecotOptions::oauth2_authority`]
//! validates locally with the authority's key. See `tests/testbed/oidc/authority.mjs`.
//!
//! The npm packages are installed by `cargo xtask test` into the tools cache; the folder is
//! named by `MAILFERRY_AUTHORITY_DIR`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

const SCRIPT: &str = include_str!("../oidc/authority.mjs");

/// What the authority knows.
#[derive(Debug, Clone)]
pub struct AuthorityOptions {
    access_token_ttl: Duration,
    apps: Vec<(String, String)>,
    certificate_apps: Vec<String>,
    service_accounts: Vec<String>,
    sign_in_clients: Vec<String>,
    rotate_refresh_tokens: bool,
}

impl Default for AuthorityOptions {
    fn default() -> Self {
        AuthorityOptions {
            access_token_ttl: Duration::from_secs(3600),
            apps: Vec::new(),
            certificate_apps: Vec::new(),
            service_accounts: Vec::new(),
            sign_in_clients: Vec::new(),
            rotate_refresh_tokens: false,
        }
    }
}

impl AuthorityOptions {
    pub fn new() -> Self {
        Self::default()
    }

    /// How long access tokens live (whole seconds).
    pub fn access_token_ttl(mut self, ttl: Duration) -> Self {
        self.access_token_ttl = ttl;
        self
    }

    /// An app registration that authenticates with a certificate (a signed client assertion);
    /// [`Authority::app_certificate`] gives its certificate and private key as PEM.
    pub fn app_with_certificate(mut self, client_id: impl Into<String>) -> Self {
        self.certificate_apps.push(client_id.into());
        self
    }

    /// A public client for users' sign-ins (authorization code with PKCE, refresh tokens),
    /// redirecting to `http://127.0.0.1:<any port>/api/sign-in/callback`.
    pub fn sign_in_client(mut self, client_id: impl Into<String>) -> Self {
        self.sign_in_clients.push(client_id.into());
        self
    }

    /// Refresh tokens rotated on every use, as Microsoft's identity platform does: each renewal
    /// answers with a new refresh token, and the used one is spent (oidc-provider revokes the
    /// whole sign-in when a spent one comes again).
    pub fn rotate_refresh_tokens(mut self) -> Self {
        self.rotate_refresh_tokens = true;
        self
    }

    /// An app registration: client credentials with `client_secret_post`.
    pub fn app(mut self, client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.apps.push((client_id.into(), secret.into()));
        self
    }

    /// A service account; its key file is made at start ([`Authority::service_account_key`]).
    pub fn service_account(mut self, client_email: impl Into<String>) -> Self {
        self.service_accounts.push(client_email.into());
        self
    }
}

/// A running authority; stopped when dropped.
#[derive(Debug)]
pub struct Authority {
    child: Child,
    dir: TempDir,
    issuer: String,
}

/// The folder with the authority's `node_modules`.
fn modules_dir() -> Result<PathBuf> {
    let dir = std::env::var_os("MAILFERRY_AUTHORITY_DIR").map(PathBuf::from).context(
        "MAILFERRY_AUTHORITY_DIR is not set: run the tests through `cargo xtask test`, which installs oidc-provider",
    )?;
    if !dir.join("node_modules/oidc-provider").is_dir() {
        bail!(
            "{} has no node_modules/oidc-provider: run `cargo xtask test` once",
            dir.display()
        );
    }
    Ok(dir)
}

/// The script, written next to the packages so that Node finds them (ES modules do not read
/// NODE_PATH); named by its content, so tests running at once share one file.
fn script_path(modules: &Path) -> Result<PathBuf> {
    let digest = SCRIPT.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let path = modules.join(format!("authority-{digest:016x}.mjs"));
    if !path.is_file() {
        let partial = modules.join(format!(
            "authority-{digest:016x}.{}.tmp",
            std::process::id()
        ));
        std::fs::write(&partial, SCRIPT)?;
        std::fs::rename(&partial, &path)?;
    }
    Ok(path)
}

impl Authority {
    pub fn start(options: AuthorityOptions) -> Result<Authority> {
        let modules = modules_dir()?;
        let script = script_path(&modules)?;
        let dir = tempfile::Builder::new()
            .prefix("mailferry-authority-")
            .tempdir()?;
        let key_dir = dir.path().join("keys");
        // Dovecot's auth process reads the key files.
        std::fs::create_dir_all(&key_dir)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let mut apps: Vec<serde_json::Value> = options
            .apps
            .iter()
            .map(|(id, secret)| serde_json::json!({"client_id": id, "client_secret": secret}))
            .collect();
        for id in &options.certificate_apps {
            let file = dir.path().join(format!("{id}.pem"));
            std::fs::write(&file, app_certificate_pem(id)?)?;
            apps.push(serde_json::json!({"client_id": id, "certificate_file": file}));
        }
        let config = serde_json::json!({
            "key_dir": key_dir,
            "access_token_ttl": options.access_token_ttl.as_secs().max(1),
            "apps": apps,
            "service_accounts": options.service_accounts.iter().map(|email| serde_json::json!({
                "client_id": email,
                "key_file": dir.path().join(format!("{email}.json")),
            })).collect::<Vec<_>>(),
            "sign_in_clients": options.sign_in_clients,
            "rotate_refresh_tokens": options.rotate_refresh_tokens,
        });
        let config_path = dir.path().join("config.json");
        std::fs::write(&config_path, config.to_string())?;
        let mut child = Command::new("node")
            .arg(&script)
            .arg(&config_path)
            .current_dir(&modules)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(
                dir.path().join("authority.log"),
            )?))
            .spawn()
            .context("starting node (is Node.js installed?)")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep reading: oidc-provider prints notices to stdout later, and Node dies of
            // EPIPE when nobody reads them.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let ready: serde_json::Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(_) => {
                let _ = child.kill();
                let log =
                    std::fs::read_to_string(dir.path().join("authority.log")).unwrap_or_default();
                bail!("the authority did not start: {log}");
            }
        };
        let issuer = ready["issuer"]
            .as_str()
            .context("no issuer in the authority's first line")?
            .to_owned();
        Ok(Authority { child, dir, issuer })
    }

    /// `http://127.0.0.1:PORT`: also the `iss` of its tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.issuer)
    }

    /// The authorization endpoint (a user's sign-in starts there).
    pub fn authorize_url(&self) -> String {
        format!("{}/auth", self.issuer)
    }

    /// Where the authority publishes the keys it signs ID tokens with (oidc-provider's JWKS).
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.issuer())
    }

    /// Where a test withdraws an account's sign-ins (POST, `?account=`): its grants and
    /// refresh tokens end, as when a user revokes the app's access.
    pub fn revoke_url(&self, account: &str) -> String {
        format!("{}/test/revoke?account={account}", self.issuer)
    }

    /// Where the public key of the token signatures is, laid out for Dovecot's local
    /// validation (`default/RS256/<kid>`).
    pub fn key_dir(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    /// The certificate and private key (PEM) of an app made with
    /// [`AuthorityOptions::app_with_certificate`], as an admin pastes them.
    pub fn app_certificate(&self, client_id: &str) -> Result<String> {
        std::fs::read_to_string(self.dir.path().join(format!("{client_id}.pem")))
            .with_context(|| format!("no certificate app {client_id}"))
    }

    /// The key file of a service account, as Google hands one out.
    pub fn service_account_key(&self, client_email: &str) -> Result<String> {
        std::fs::read_to_string(self.dir.path().join(format!("{client_email}.json")))
            .with_context(|| format!("no service account {client_email}"))
    }

    /// How many tokens the authority issued to a client so far (its `token_issued` lines).
    pub fn tokens_issued(&self, client_id: &str) -> usize {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["event"] == "token_issued" && v["client_id"] == client_id)
            .count()
    }

    /// How many times a client renewed an access token with a refresh token.
    pub fn refresh_grants(&self, client_id: &str) -> usize {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| {
                v["event"] == "token_issued"
                    && v["client_id"] == client_id
                    && v["grant_type"] == "refresh_token"
            })
            .count()
    }

    /// What the authority logged (Node's stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("authority.log")).unwrap_or_default()
    }
}

/// A self-signed certificate for an app and its P-256 key, PEM, one after the other.
fn app_certificate_pem(client_id: &str) -> Result<String> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("app {client_id}"));
    let cert = params.self_signed(&key)?;
    Ok(format!("{}{}", cert.pem(), key.serialize_pem()))
}

impl Drop for Authority {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
