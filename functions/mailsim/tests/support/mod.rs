//! The harness the engine tests share: both sides on their own simulated server, the real
//! SQLite store in memory, a queue the test pops from itself (so a crash and a redelivery are
//! explicit), and multisets of what each server holds.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use contract::jobs::Job;
use contract::{
    AuthInput, BulkAction, ConnectorInput, CopyOptions, DeletedAtSource, InviteTo, ProjectInput,
    Security, UserInput,
};
use domain::app::{AppConfig, CopySettings, JobOutcome};
use domain::error::{LoginError, MailError, QueueError, VaultError};
use domain::mailbox::{MailServers, MailSession, MailboxError};
use domain::oauth::{
    AccessToken, AppGrant, AuthorizeRequest, CodeExchange, NoTokens, SignInTokens, TokenError,
    Tokens,
};
use domain::ports::{
    Delivery, LoginInfo, Mailer, ManualClock, OutgoingMail, Queue, SentMail, Store, SystemClock,
    Vault,
};
use domain::secret::Secret;
use domain::{App, Credential, Deps, Endpoint, MailUser, Project, Sealed};
use mailsim::{AppendRefusal, REWRITE_HEADER, Server};
use time::OffsetDateTime;

pub const SOURCE_HOST: &str = "source.test";
pub const USER: &str = "ann@example.org";
pub const PASSWORD: &str = "pw";

/// Sends each side's logins to its own simulated server.
pub struct Route {
    source: Server,
    target: Server,
}

#[async_trait]
impl MailServers for Route {
    async fn test_login(
        &self,
        endpoint: &Endpoint,
        login: &str,
        credential: &Credential,
        timeout: Duration,
    ) -> Result<LoginInfo, LoginError> {
        self.server(endpoint)
            .test_login(endpoint, login, credential, timeout)
            .await
    }

    async fn open(
        &self,
        endpoint: &Endpoint,
        login: &str,
        credential: &Credential,
        timeout: Duration,
    ) -> Result<Box<dyn MailSession>, MailboxError> {
        self.server(endpoint)
            .open(endpoint, login, credential, timeout)
            .await
    }
}

impl Route {
    fn server(&self, endpoint: &Endpoint) -> &Server {
        if endpoint.host == SOURCE_HOST {
            &self.source
        } else {
            &self.target
        }
    }
}

/// The queue as a list: the harness pops jobs itself, so a crash is "drop the future, put the
/// job back" and nothing depends on wall-clock visibility timeouts.
#[derive(Default)]
pub struct ListQueue(pub Mutex<VecDeque<Job>>);

impl ListQueue {
    pub fn pop(&self) -> Option<Job> {
        self.0.lock().unwrap().pop_front()
    }
    pub fn push(&self, job: Job) {
        self.0.lock().unwrap().push_back(job);
    }
}

#[async_trait]
impl Queue for ListQueue {
    async fn send(&self, job: &Job, _: Duration) -> Result<(), QueueError> {
        self.push(job.clone());
        Ok(())
    }
    async fn send_batch(&self, jobs: &[Job]) -> Result<(), QueueError> {
        jobs.iter().for_each(|j| self.push(j.clone()));
        Ok(())
    }
    async fn receive(&self, _: usize, _: Duration) -> Result<Vec<Delivery>, QueueError> {
        Ok(Vec::new())
    }
    async fn ack(&self, _: &str) -> Result<(), QueueError> {
        Ok(())
    }
    async fn retry_later(&self, _: &str, _: Duration) -> Result<(), QueueError> {
        Ok(())
    }
    async fn dead_letters(&self, _: usize) -> Result<Vec<Job>, QueueError> {
        Ok(Vec::new())
    }
    async fn has_jobs_for(&self, user: uuid::Uuid) -> Result<Option<bool>, QueueError> {
        Ok(Some(
            self.0.lock().unwrap().iter().any(|j| j.user_id() == user),
        ))
    }
}

/// Mail is not the subject here; passwords are sealed as they are (the vault is tested on its own).
pub struct Quiet;

#[async_trait]
impl Mailer for Quiet {
    async fn send(&self, _: &OutgoingMail) -> Result<(), MailError> {
        Ok(())
    }
    async fn outbox(&self, _: usize) -> Result<Option<Vec<SentMail>>, MailError> {
        Ok(None)
    }
}

#[async_trait]
impl Vault for Quiet {
    async fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, VaultError> {
        Ok(Sealed([aad, b"|", plaintext].concat()))
    }
    async fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, VaultError> {
        sealed
            .0
            .strip_prefix(aad)
            .and_then(|rest| rest.strip_prefix(b"|"))
            .map(<[u8]>::to_vec)
            .ok_or(VaultError::Decrypt)
    }
}

pub const FOLDERS: [&str; 3] = ["INBOX", "Archive", "Archive/2020"];
pub const FLAGS: [&str; 3] = ["\\Seen", "\\Flagged", "$Label1"];

pub fn flags_of(bits: u8) -> Vec<String> {
    FLAGS
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, f)| f.to_string())
        .collect()
}

pub fn body(index: usize, with_id: bool, len: usize) -> Vec<u8> {
    let id = if with_id {
        format!("Message-ID: <m{index}@gen.test>\r\n")
    } else {
        String::new()
    };
    let mut b = format!(
        "{id}Date: Mon, 1 Jan 2024 10:{:02}:00 +0000\r\nFrom: sender{index}@gen.test\r\nSubject: message {index}\r\n\r\n",
        index % 60
    )
    .into_bytes();
    b.extend(std::iter::repeat_n(b'a' + (index % 26) as u8, len));
    b.extend_from_slice(b"\r\n");
    b
}

pub struct World {
    pub app: App,
    pub source: Server,
    pub target: Server,
    pub queue: Arc<ListQueue>,
    /// The clock leases are measured by, when the test moves it by hand (crashes then expire
    /// leases at once); `None` on the wall clock.
    pub clock: Option<Arc<ManualClock>>,
    pub lease_ttl: Duration,
    pub project: Project,
    pub user: MailUser,
}

/// The embedded store, in memory.
/// The target of a world: its server, how the project reaches it, and the token port.
struct TheTarget {
    server: Server,
    connector: ConnectorInput,
    tokens: Arc<dyn Tokens>,
    /// How the project reaches the source (its server is the world's own).
    source: ConnectorInput,
}

impl TheTarget {
    /// Any IMAP server, signed in to with a password.
    fn imap(server: Server) -> TheTarget {
        TheTarget {
            server,
            connector: imap_side("target.test"),
            tokens: Arc::new(NoTokens),
            source: imap_side(SOURCE_HOST),
        }
    }
}

/// A service account's key file as Google gives it (the model tokens never read the key).
const MODEL_SERVICE_ACCOUNT_KEY: &str = r#"{"type":"service_account","client_email":"mover@example.iam.gserviceaccount.com","private_key_id":"k1","private_key":"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"}"#;

/// An IMAP server's side of the project, signed in to with the admin password.
fn imap_side(host: &str) -> ConnectorInput {
    ConnectorInput {
        kind: contract::ConnectorKind::Imap,
        host: host.into(),
        port: 993,
        security: Security::Tls,
        auth: AuthInput::Admin {
            login_pattern: "{email}".into(),
            password: Some(PASSWORD.into()),
        },
    }
}

fn gmail_side(host: &str) -> ConnectorInput {
    ConnectorInput {
        kind: contract::ConnectorKind::GoogleWorkspace,
        host: host.into(),
        port: 993,
        security: Security::Tls,
        auth: AuthInput::GoogleServiceAccount {
            key_json: Some(MODEL_SERVICE_ACCOUNT_KEY.into()),
        },
    }
}

/// The token port as an authority answers it, for the engine's decisions: tokens `t1`, `t2`, …,
/// the same one until it is forgotten, then the next. (The real adapter is tested against a
/// real authority in the integration tests.)
#[derive(Default)]
pub struct ModelTokens {
    /// Tokens forgotten so far: the current one is `t{forgotten + 1}`.
    forgotten: Mutex<u32>,
}

impl ModelTokens {
    pub fn forgotten(&self) -> u32 {
        *self.forgotten.lock().unwrap()
    }
}

#[async_trait]
impl Tokens for ModelTokens {
    async fn app_token(&self, _grant: &AppGrant) -> Result<AccessToken, TokenError> {
        let n = *self.forgotten.lock().unwrap() + 1;
        Ok(AccessToken {
            token: Secret::new(format!("t{n}")),
            expires_at: OffsetDateTime::now_utc() + Duration::from_secs(3600),
            refresh_token: None,
        })
    }

    async fn forget(&self, _grant: &AppGrant) {
        *self.forgotten.lock().unwrap() += 1;
    }

    /// No user sign-ins here: they are tested against a real authority.
    fn authorize_url(&self, request: &AuthorizeRequest) -> Result<String, TokenError> {
        NoTokens.authorize_url(request)
    }

    async fn exchange_code(&self, exchange: &CodeExchange) -> Result<SignInTokens, TokenError> {
        NoTokens.exchange_code(exchange).await
    }
}

pub fn sqlite() -> Arc<dyn Store> {
    Arc::new(embedded::SqliteStore::open_in_memory().expect("store"))
}

impl World {
    /// A world on a clock the harness moves past a dead worker's lease.
    pub async fn new(chunk_messages: usize, remove: bool) -> World {
        let copy = CopySettings {
            chunk_messages,
            // About half the messages of these worlds (up to 3,000 bytes) stream through one
            // at a time, the others are held and appended together: both paths meet every
            // fault.
            stream_from_bytes: 1_500,
            ..CopySettings::default()
        };
        let options = CopyOptions {
            deleted_at_source: if remove {
                DeletedAtSource::Remove
            } else {
                DeletedAtSource::Keep
            },
            ..CopyOptions::default()
        };
        World::with_options(copy, options).await
    }

    /// A world on a hand-moved clock with these engine settings and project copy options.
    pub async fn with_options(copy: CopySettings, options: CopyOptions) -> World {
        let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
        World::build(
            copy,
            options,
            Some(clock),
            sqlite(),
            TheTarget::imap(Server::new()),
        )
        .await
    }

    /// A world on a hand-moved clock whose target is this server (another delimiter, another
    /// namespace).
    pub async fn with_target(target: Server) -> World {
        World::on_manual_clock(TheTarget::imap(target)).await
    }

    /// A world on a hand-moved clock whose target is a Microsoft 365 tenant reached with an
    /// app registration's tokens, which `tokens` hands out.
    pub async fn with_app_target(target: Server, tokens: Arc<ModelTokens>) -> World {
        World::on_manual_clock(TheTarget {
            server: target,
            connector: ConnectorInput {
                kind: contract::ConnectorKind::Microsoft365,
                host: "outlook.test".into(),
                port: 993,
                security: Security::Tls,
                auth: AuthInput::MicrosoftApp {
                    tenant_id: "contoso.example".into(),
                    client_id: "6f1c1a43-0b8e-4a8e-9d43-3a1f8c7e2b10".into(),
                    client_secret: Some("app secret".into()),
                    login_pattern: "{email}".into(),
                },
            },
            tokens,
            source: imap_side(SOURCE_HOST),
        })
        .await
    }

    /// A world on a hand-moved clock whose source is Gmail (Google Workspace, read with a
    /// service account's tokens from `tokens`; the source server must take them).
    pub async fn with_gmail_source(tokens: Arc<ModelTokens>) -> World {
        World::on_manual_clock(TheTarget {
            server: Server::new(),
            connector: imap_side("target.test"),
            tokens,
            source: gmail_side(SOURCE_HOST),
        })
        .await
    }

    /// A world on a hand-moved clock whose target is Gmail (this server, written with a
    /// service account's tokens from `tokens`, which it must take), and whose source is Gmail
    /// too when `gmail_source` says so (the same tokens).
    pub async fn with_gmail_target(
        target: Server,
        tokens: Arc<ModelTokens>,
        gmail_source: bool,
    ) -> World {
        World::on_manual_clock(TheTarget {
            server: target,
            connector: gmail_side("gmail.test"),
            tokens,
            source: if gmail_source {
                gmail_side(SOURCE_HOST)
            } else {
                imap_side(SOURCE_HOST)
            },
        })
        .await
    }

    async fn on_manual_clock(target: TheTarget) -> World {
        let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
        let (copy, options) = (CopySettings::default(), CopyOptions::default());
        World::build(copy, options, Some(clock), sqlite(), target).await
    }

    /// A world on the wall clock whose state lives in `store`.
    pub async fn on_store(copy: CopySettings, store: Arc<dyn Store>) -> World {
        World::build(
            copy,
            CopyOptions::default(),
            None,
            store,
            TheTarget::imap(Server::new()),
        )
        .await
    }

    /// A world on the wall clock, with these engine settings.
    pub async fn on_wall_clock(copy: CopySettings) -> World {
        World::build(
            copy,
            CopyOptions::default(),
            None,
            sqlite(),
            TheTarget::imap(Server::new()),
        )
        .await
    }

    async fn build(
        copy: CopySettings,
        options: CopyOptions,
        clock: Option<Arc<ManualClock>>,
        store: Arc<dyn Store>,
        the_target: TheTarget,
    ) -> World {
        let TheTarget {
            server: target,
            connector: target_side,
            tokens,
            source: source_side,
        } = the_target;
        let source = Server::new();
        source.add_user(USER, PASSWORD);
        target.add_user(USER, PASSWORD);
        for f in &FOLDERS[1..] {
            source.create_folder(USER, f, None);
        }
        let route = Arc::new(Route {
            source: source.clone(),
            target: target.clone(),
        });
        let queue = Arc::new(ListQueue::default());
        let deps = Deps {
            limiter: store.clone(),
            store,
            queue: queue.clone(),
            mailer: Arc::new(Quiet),
            vault: Arc::new(Quiet),
            clock: match &clock {
                Some(manual) => manual.clone(),
                None => Arc::new(SystemClock),
            },
            mailboxes: route,
            tokens,
        };
        let lease_ttl = copy.lease_ttl;
        let app = App::new(
            deps,
            AppConfig {
                copy,
                ..AppConfig::default()
            },
        );
        let project = app
            .create_project(
                &ProjectInput {
                    name: "property".into(),
                    source: source_side,
                    target: target_side,
                    invite_to: InviteTo::None,
                    admin_email: None,
                    notify_user: false,
                    copy: options,
                    retention: Default::default(),
                    sync: Default::default(),
                },
                &admin(),
            )
            .await
            .expect("project");
        let user = app
            .add_user(
                project.id,
                &UserInput {
                    source_email: USER.into(),
                    target_email: USER.into(),
                    display_name: String::new(),
                    source_password: None,
                    target_password: None,
                    priority: 0,
                    cutover_at: None,
                },
                &admin(),
            )
            .await
            .expect("user");
        World {
            app,
            source,
            target,
            queue,
            clock,
            lease_ttl,
            project,
            user,
        }
    }

    pub async fn user(&self) -> MailUser {
        self.app
            .deps()
            .store
            .get_user(self.user.id)
            .await
            .unwrap()
            .unwrap()
    }

    pub async fn act(&self, action: BulkAction) {
        let user = self.user().await;
        self.app
            .user_action(&self.project, &user, action, &admin())
            .await
            .unwrap_or_else(|e| panic!("{action:?} on a {:?} user: {e}", user.state));
    }

    /// Runs queued jobs until none is left, crashing at the given points.
    pub async fn drain(&self, crashes: &mut VecDeque<u64>) {
        let mut tries: BTreeMap<String, u32> = BTreeMap::new();
        for step in 0..2_000 {
            if step == 100 {
                // A throttling server lets us through again after a while; a full one does
                // not until someone makes room.
                self.target.behaviour_mut(|b| {
                    if b.append_refusal != Some(AppendRefusal::OverQuota) {
                        b.append_refusal = None;
                    }
                });
            }
            let Some(job) = self.queue.pop() else { return };
            if let Some(after) = crashes.pop_front() {
                let server = if after % 2 == 0 {
                    &self.source
                } else {
                    &self.target
                };
                server.fail_after(after);
            }
            let outcome = tokio::select! {
                r = self.app.handle_job(&job, Duration::from_secs(3600)) => Some(r),
                () = self.source.wait_tripped() => None,
                () = self.target.wait_tripped() => None,
            };
            self.source.clear_trip();
            self.target.clear_trip();
            let key = format!("{job:?}");
            match outcome {
                Some(Ok(JobOutcome::Done)) => {}
                None | Some(Ok(JobOutcome::RetryLater { .. })) => {
                    // A crash (the worker vanished mid-operation) or a lease held by a dead
                    // worker: the message comes back once the lease has run out.
                    if let Some(clock) = &self.clock {
                        clock.advance(self.lease_ttl + Duration::from_secs(1));
                    }
                    self.queue.push(job);
                }
                Some(Err(e)) => {
                    let n = tries.entry(key).or_default();
                    *n += 1;
                    if *n >= 8 {
                        self.app.give_up_job(&job, &e.to_string()).await.unwrap();
                    } else {
                        self.queue.push(job);
                    }
                }
            }
        }
        panic!("the engine did not settle in 2,000 jobs");
    }
}

/// The bytes as the source had them (undoing the simulated Exchange rewrite).
pub fn original(bytes: &[u8]) -> Vec<u8> {
    let prefix = format!("{REWRITE_HEADER}\r\n");
    bytes
        .strip_prefix(prefix.as_bytes())
        .unwrap_or(bytes)
        .to_vec()
}

/// Multiset of (folder, bytes) → count.
pub type Bag = BTreeMap<(String, Vec<u8>), usize>;

pub fn bag(server: &Server) -> Bag {
    let mut out = Bag::new();
    for f in FOLDERS {
        if !server.folders(USER).iter().any(|x| x.name == f) {
            continue;
        }
        for m in server.messages(USER, f) {
            *out.entry((f.to_string(), original(&m.bytes))).or_default() += 1;
        }
    }
    out
}

pub fn flags_bag(server: &Server) -> BTreeMap<(String, Vec<u8>), Vec<Vec<String>>> {
    let mut out: BTreeMap<(String, Vec<u8>), Vec<Vec<String>>> = BTreeMap::new();
    for f in FOLDERS {
        for m in server.messages(USER, f) {
            let mut flags = m.flags.clone();
            flags.sort();
            out.entry((f.to_string(), original(&m.bytes)))
                .or_default()
                .push(flags);
        }
    }
    out.values_mut().for_each(|v| v.sort());
    out
}

/// Skipped items of one folder.
pub async fn skipped_items(w: &World, folder: &str) -> Vec<contract::SkippedItem> {
    let f = w
        .app
        .deps()
        .store
        .get_folder(w.user.id, folder)
        .await
        .unwrap()
        .expect("the folder's checkpoint");
    w.app.skipped_of(&f, usize::MAX).await.unwrap()
}

/// Skipped source messages as (folder, bytes) → count, and their reasons.
pub async fn skipped(w: &World) -> (Bag, Vec<String>) {
    let mut out = Bag::new();
    let mut reasons = Vec::new();
    let folders = w.app.deps().store.list_folders(w.user.id).await.unwrap();
    for f in folders {
        let by_uid: BTreeMap<u32, Vec<u8>> = w
            .source
            .messages(USER, &f.source_name)
            .into_iter()
            .map(|m| (m.uid, m.bytes))
            .collect();
        for item in &w.app.skipped_of(&f, usize::MAX).await.unwrap() {
            reasons.push(item.reason.clone());
            if let Some(bytes) = by_uid.get(&item.uid) {
                *out.entry((f.source_name.clone(), bytes.clone()))
                    .or_default() += 1;
            }
        }
    }
    (out, reasons)
}

/// The admin the tests act as (their actions land in the audit trail like a console's).
pub fn admin() -> domain::Actor {
    domain::Actor::admin("property test", None)
}
