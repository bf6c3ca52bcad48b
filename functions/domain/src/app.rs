//! The use cases, as methods of [`App`], split by audience: `projects` and `users` for the admin
//! console, `selfservice` for the end-user credential page, and `admin_auth` for signing in.

use std::sync::Arc;
use std::time::Duration;

use contract::UserState;
use contract::jobs::Job;

use crate::error::{AppError, StoreError};
use crate::mailbox::MailServers;
use crate::model::{MailUser, UserEvent};
use crate::oauth::Tokens;
use crate::ports::{Clock, Limiter, Mailer, Queue, Store, Vault};
use crate::state::Transition;

mod app_access;
mod audit_log;
mod auth_input;
mod connection_test;
mod copy;
mod cutover;
mod preflights;
mod projects;
mod report;
mod retention;
mod selfservice;
mod sign_in;
mod sync;
mod users;
mod watchdog;
mod worker;

pub use cutover::SETUP_LINK_DAYS;
pub use sync::{SyncTick, cutover_time, date_time};
pub use watchdog::Watch;
pub use worker::JobOutcome;

pub use audit_log::{AUDIT_CSV_MAX, AUDIT_PAGE_MAX};
pub use copy::{is_connection_limit, refusal_delay, throttle_delay};
pub use projects::Side;
pub use retention::SWEEP_EVERY;

/// The adapters the use cases run on.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    pub mailer: Arc<dyn Mailer>,
    pub vault: Arc<dyn Vault>,
    pub clock: Arc<dyn Clock>,
    /// The mail servers: login checks, and sessions for the copy engine.
    pub mailboxes: Arc<dyn MailServers>,
    /// OAuth access tokens for Microsoft 365 and Google Workspace.
    pub tokens: Arc<dyn Tokens>,
    /// Connection slots per mail server and mailbox, shared by every worker.
    pub limiter: Arc<dyn Limiter>,
}

/// Settings of the use cases.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Base URL users reach the web app at, without a trailing slash; invite links start with it.
    pub public_url: String,
    /// How long a credential test login may take before the user is told the server is slow.
    pub login_timeout: Duration,
    pub invite_ttl: Duration,
    pub session_ttl: Duration,
    pub copy: CopySettings,
    pub authorities: Authorities,
}

/// Where the OAuth authorities' endpoints are: the provider profiles' (Microsoft's, Google's)
/// unless the operator names others (a national cloud, or a local authority in tests).
/// `{tenant}` is replaced by the project's tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorities {
    pub microsoft_token_url: String,
    pub microsoft_authorize_url: String,
    pub microsoft_jwks_url: String,
    pub google_token_url: String,
    pub google_authorize_url: String,
    pub google_jwks_url: String,
}

/// One authority's endpoints for a project's tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorityUrls {
    pub token: String,
    pub authorize: String,
    /// The keys its ID tokens are signed with.
    pub jwks: String,
}

impl Authorities {
    /// The endpoints of a kind's authority, with the tenant filled in.
    pub fn of(&self, kind: contract::ConnectorKind, tenant: &str) -> Option<AuthorityUrls> {
        let (token, authorize, jwks) = match kind {
            contract::ConnectorKind::Microsoft365 => (
                &self.microsoft_token_url,
                &self.microsoft_authorize_url,
                &self.microsoft_jwks_url,
            ),
            contract::ConnectorKind::GoogleWorkspace => (
                &self.google_token_url,
                &self.google_authorize_url,
                &self.google_jwks_url,
            ),
            contract::ConnectorKind::Imap => return None,
        };
        Some(AuthorityUrls {
            token: token.replace("{tenant}", tenant),
            authorize: authorize.replace("{tenant}", tenant),
            jwks: jwks.replace("{tenant}", tenant),
        })
    }
}

impl Default for Authorities {
    fn default() -> Self {
        let urls = |p: &crate::providers::Profile| {
            p.authority.map_or_else(Default::default, |a| {
                (
                    a.value.token_url.to_owned(),
                    a.value.authorize_url.to_owned(),
                    a.value.jwks_url.to_owned(),
                )
            })
        };
        let (microsoft_token_url, microsoft_authorize_url, microsoft_jwks_url) =
            urls(&crate::providers::MICROSOFT_365);
        let (google_token_url, google_authorize_url, google_jwks_url) =
            urls(&crate::providers::GOOGLE_WORKSPACE);
        Authorities {
            microsoft_token_url,
            microsoft_authorize_url,
            microsoft_jwks_url,
            google_token_url,
            google_authorize_url,
            google_jwks_url,
        }
    }
}

/// Tuning of the copy engine.
#[derive(Debug, Clone)]
pub struct CopySettings {
    /// How long a folder lease lasts without renewal; every checkpoint renews it. A crashed
    /// worker's folder is taken over after this.
    pub lease_ttl: Duration,
    /// Most messages appended in one chunk (one MULTIAPPEND, one checkpoint).
    pub chunk_messages: usize,
    /// Most bytes in one chunk; a single larger message forms a chunk of its own.
    pub chunk_bytes: u64,
    /// Stop and hand over to a continuation when less than this is left of the job's budget.
    pub budget_reserve: Duration,
    /// Timeout of each mail server command.
    pub command_timeout: Duration,
    /// Message bytes held in memory at once by all copy jobs of this process together; a
    /// message larger than this is copied alone. Bounds the worker's memory however many
    /// folders copy in parallel.
    pub memory_budget_bytes: u64,
    /// Messages larger than this are streamed from source to target as they arrive, one at a
    /// time, rather than held in memory and appended with others.
    pub stream_from_bytes: u64,
    /// How long a finished job's logged-in sessions wait, holding their connection slots,
    /// for the next job of the same user in this process; zero logs out at once. Each login
    /// costs the server a process start (and with TLS a handshake), which a pass of many
    /// folders otherwise pays twice per folder. Zero where the process is frozen between
    /// jobs (Lambda), so a kept session never meets a connection the server closed.
    pub keep_sessions_for: Duration,
}

impl Default for CopySettings {
    fn default() -> Self {
        CopySettings {
            lease_ttl: Duration::from_secs(120),
            chunk_messages: 200,
            chunk_bytes: 4 * 1024 * 1024,
            budget_reserve: Duration::from_secs(30),
            command_timeout: Duration::from_secs(120),
            memory_budget_bytes: 16 * 1024 * 1024,
            // The IMAP source's part size: anything larger would come in several partial
            // FETCHes, each of which has the server find its place in the message again.
            stream_from_bytes: 1024 * 1024,
            keep_sessions_for: Duration::from_secs(2),
        }
    }
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            public_url: "http://localhost:8080".into(),
            login_timeout: Duration::from_secs(20),
            invite_ttl: Duration::from_secs(contract::limits::INVITE_TTL_DAYS as u64 * 86_400),
            session_ttl: Duration::from_secs(12 * 3600),
            copy: CopySettings::default(),
            authorities: Authorities::default(),
        }
    }
}

/// The application: every use case is a method. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub(crate) deps: Deps,
    pub(crate) config: Arc<AppConfig>,
    /// Permits in KiB of message bytes in memory (see `CopySettings::memory_budget_bytes`).
    pub(crate) copy_memory: Arc<tokio::sync::Semaphore>,
    /// Failed admin sign-ins by client and for the account, for the slowdown.
    pub(crate) sign_ins: Arc<crate::admin_auth::SignInThrottle>,
    /// Logged-in sessions finished jobs left for the next job of the same user
    /// (`CopySettings::keep_sessions_for`).
    pub(crate) parked: Arc<copy::ParkedSessions>,
}

impl App {
    pub fn new(deps: Deps, mut config: AppConfig) -> Self {
        while config.public_url.ends_with('/') {
            config.public_url.pop();
        }
        let kib = (config.copy.memory_budget_bytes / 1024).clamp(1, u32::MAX as u64) as usize;
        App {
            deps,
            config: Arc::new(config),
            copy_memory: Arc::new(tokio::sync::Semaphore::new(kib)),
            sign_ins: Arc::default(),
            parked: Arc::default(),
        }
    }

    pub fn deps(&self) -> &Deps {
        &self.deps
    }

    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    /// Moves `user` through `transition`, applying `change` to the new record, with a write
    /// conditional on the version read. Fails with a conflict when the transition is not allowed
    /// from the user's state or someone else wrote first.
    pub(crate) async fn transition(
        &self,
        user: &MailUser,
        transition: Transition,
        change: impl FnOnce(&mut MailUser),
    ) -> Result<MailUser, AppError> {
        let Some(to) = transition.apply(user.state) else {
            return Err(AppError::Conflict(format!(
                "cannot {} {}: the user is {}",
                transition.name(),
                user.source_email,
                user.state.label().to_lowercase()
            )));
        };
        let next = self
            .update_user_record(user, |next| {
                next.state = to;
                // A user that moves on waits for nothing: a "waiting: …" of its last job and
                // the start of that wait end with the state it was in.
                next.waiting_since = None;
                if next
                    .last_error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("waiting: "))
                {
                    next.last_error = None;
                }
                change(next);
            })
            .await?;
        self.log_event(&next, format!("{} → {}", user.state.label(), to.label()))
            .await;
        Ok(next)
    }

    /// Writes `change` over the user with a version-checked write; someone else's write
    /// meanwhile is a conflict the admin resolves by reloading.
    pub(crate) async fn update_user_record(
        &self,
        user: &MailUser,
        change: impl FnOnce(&mut MailUser),
    ) -> Result<MailUser, AppError> {
        let mut next = user.clone();
        change(&mut next);
        next.version = user.version + 1;
        next.updated_at = self.deps.clock.now();
        self.deps
            .store
            .update_user(&next, user.version)
            .await
            .map_err(|e| match e {
                StoreError::Conflict => AppError::Conflict(format!(
                    "{} was changed meanwhile; reload and try again",
                    user.source_email
                )),
                other => other.into(),
            })?;
        Ok(next)
    }

    /// Appends to the user's event log; a failure here is logged, never fatal.
    pub(crate) async fn log_event(&self, user: &MailUser, message: String) {
        let event = UserEvent {
            user_id: user.id,
            at: self.deps.clock.now(),
            message,
        };
        if let Err(e) = self.deps.store.append_event(&event).await {
            tracing::warn!(user = %user.id, error = %e, "could not append to the event log");
        }
    }

    /// Schedules the user for a copy pass: state `Scheduled`, then a `Plan` job. When the job
    /// cannot be queued the user is marked failed, so nobody waits on a job that does not exist.
    pub(crate) async fn schedule(
        &self,
        user: &MailUser,
        transition: Transition,
        change: impl FnOnce(&mut MailUser),
    ) -> Result<MailUser, AppError> {
        let scheduled = self
            .transition(user, transition, |u| {
                u.last_error = None;
                change(u)
            })
            .await?;
        debug_assert_eq!(scheduled.state, UserState::Scheduled);
        let job = Job::Plan {
            user_id: scheduled.id.0,
            pass: scheduled.pass,
        };
        if let Err(e) = self.deps.queue.send(&job, Duration::ZERO).await {
            tracing::error!(user = %scheduled.id, error = %e, "could not queue the plan job");
            let _ = self
                .transition(&scheduled, Transition::Fail, |u| {
                    u.last_error = Some("the copy could not be queued; retry".into())
                })
                .await;
            return Err(e.into());
        }
        Ok(scheduled)
    }
}
