//! `mailferry serve`: wires the embedded adapters, serves the router, runs the worker loop,
//! and shuts both down cleanly on Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use domain::ports::{Queue, SystemClock};
use domain::{App, AppConfig, Deps, Secret};
use embedded::{
    KeyFileVault, OutboxMailer, SmtpConfig, SmtpCredentials, SmtpMailer, SmtpSecurity, SqliteQueue,
    SqliteStore,
};
use tokio::sync::watch;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Folder for the database, queue, vault key and outbox.
    #[arg(long, env = "MAILFERRY_DATA_DIR", default_value = "mailferry-data")]
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "MAILFERRY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The built web console (trunk's dist folder).
    #[arg(long, env = "MAILFERRY_FRONTEND_DIR", default_value = "frontend/dist")]
    pub frontend: PathBuf,
    /// URL users reach this server at; invite links start with it. Default: http://LISTEN.
    #[arg(long, env = "MAILFERRY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// SMTP relay for invites as smtp://host:port (plain), smtp+starttls://host:port or
    /// smtps://host:port; user and password from MAILFERRY_SMTP_USER / MAILFERRY_SMTP_PASSWORD.
    /// Without it, mail is written to DATA_DIR/outbox and shown in the console.
    #[arg(long, env = "MAILFERRY_SMTP_URL")]
    pub smtp_url: Option<String>,
    /// Sender address of invites and notifications.
    #[arg(
        long,
        env = "MAILFERRY_MAIL_FROM",
        default_value = "mailferry@localhost"
    )]
    pub mail_from: String,
    /// Copy jobs handled at once by this process.
    #[arg(long, env = "MAILFERRY_WORKERS", default_value_t = 4)]
    pub workers: usize,
    /// Extra CA certificates (PEM) to trust for IMAP servers, e.g. a test server's own CA.
    #[arg(long, env = "MAILFERRY_EXTRA_CA")]
    pub extra_ca: Option<PathBuf>,
    /// Seconds a received job stays invisible before it is redelivered (after a crash).
    #[arg(long, env = "MAILFERRY_JOB_VISIBILITY_SECS", default_value_t = 900)]
    pub job_visibility_secs: u64,
    /// Seconds a folder lease lasts without a checkpoint (a crashed worker's folder is taken
    /// over after this).
    #[arg(long, env = "MAILFERRY_LEASE_SECS", default_value_t = 120)]
    pub lease_secs: u64,
    /// Receives of one job before it is moved to the dead-letter state.
    #[arg(long, env = "MAILFERRY_MAX_RECEIVES", default_value_t = 10)]
    pub max_receives: u32,
    /// Most messages per append chunk (one checkpoint per chunk).
    #[arg(long, env = "MAILFERRY_CHUNK_MESSAGES", default_value_t = 200)]
    pub chunk_messages: usize,
    /// Token endpoint for Microsoft 365 app tokens (`{tenant}` is the project's tenant).
    /// Default: Microsoft's (login.microsoftonline.com).
    #[arg(long, env = "MAILFERRY_MICROSOFT_TOKEN_URL")]
    pub microsoft_token_url: Option<String>,
    /// Token endpoint for Google service-account tokens. Default: Google's.
    #[arg(long, env = "MAILFERRY_GOOGLE_TOKEN_URL")]
    pub google_token_url: Option<String>,
    /// Authorization endpoint of users' Microsoft sign-ins (`{tenant}` as above). Default:
    /// Microsoft's.
    #[arg(long, env = "MAILFERRY_MICROSOFT_AUTHORIZE_URL")]
    pub microsoft_authorize_url: Option<String>,
    /// Authorization endpoint of users' Google sign-ins. Default: Google's.
    #[arg(long, env = "MAILFERRY_GOOGLE_AUTHORIZE_URL")]
    pub google_authorize_url: Option<String>,
    /// The keys Microsoft signs users' ID tokens with (JWKS; `{tenant}` as above). Default:
    /// Microsoft's.
    #[arg(long, env = "MAILFERRY_MICROSOFT_JWKS_URL")]
    pub microsoft_jwks_url: Option<String>,
    /// The keys Google signs users' ID tokens with (JWKS). Default: Google's.
    #[arg(long, env = "MAILFERRY_GOOGLE_JWKS_URL")]
    pub google_jwks_url: Option<String>,
}

impl ServeArgs {
    /// The defaults of `mailferry serve` for a data folder, listening on a free loopback port.
    pub fn for_tests(data_dir: PathBuf) -> Self {
        ServeArgs {
            data_dir,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            frontend: PathBuf::from("frontend/dist"),
            public_url: None,
            smtp_url: None,
            mail_from: "mailferry@localhost".into(),
            workers: 4,
            extra_ca: None,
            job_visibility_secs: 900,
            lease_secs: 120,
            max_receives: 10,
            chunk_messages: 200,
            microsoft_token_url: None,
            google_token_url: None,
            microsoft_authorize_url: None,
            google_authorize_url: None,
            microsoft_jwks_url: None,
            google_jwks_url: None,
        }
    }
}

fn smtp_config(url: &str, from: &str) -> anyhow::Result<SmtpConfig> {
    let (scheme, rest) = url
        .split_once("://")
        .context("MAILFERRY_SMTP_URL must look like smtp://host:port")?;
    let security = match scheme {
        "smtp" => SmtpSecurity::Plaintext,
        "smtp+starttls" => SmtpSecurity::StartTls,
        "smtps" => SmtpSecurity::Tls,
        other => {
            bail!("MAILFERRY_SMTP_URL: unknown scheme '{other}' (use smtp, smtp+starttls or smtps)")
        }
    };
    let (host, port) = rest
        .trim_end_matches('/')
        .rsplit_once(':')
        .context("MAILFERRY_SMTP_URL needs a port")?;
    let port: u16 = port
        .parse()
        .context("MAILFERRY_SMTP_URL: the port is not a number")?;
    let mut config = SmtpConfig::new(host, port, security, from);
    if let Ok(user) = std::env::var("MAILFERRY_SMTP_USER") {
        let password = std::env::var("MAILFERRY_SMTP_PASSWORD")
            .context("MAILFERRY_SMTP_USER is set but MAILFERRY_SMTP_PASSWORD is not")?;
        config.credentials = Some(SmtpCredentials {
            username: user,
            password: Secret::new(password),
        });
    }
    Ok(config)
}

/// A server started by [`start`]: its address and the handle to stop it.
pub struct Server {
    pub addr: SocketAddr,
    pub public_url: String,
    pub data_dir: PathBuf,
    /// Set when this start generated the admin password (first start without
    /// MAILFERRY_ADMIN_PASSWORD); the caller shows it once.
    pub generated_admin_password: Option<Secret>,
    pub app: App,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// Held while the server runs: one server per data folder.
    _data_lock: std::fs::File,
}

impl Server {
    /// Stops accepting requests, lets the worker finish its jobs, and waits for both.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.task.await?
    }

    /// Waits until the server stops (after a signal handled by [`run`], or [`Server::stop`]).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await?
    }
}

/// Opens the data folder, wires the adapters and starts the HTTP server and the worker loop.
pub async fn start(args: ServeArgs, admin_password: Option<Secret>) -> anyhow::Result<Server> {
    // 0700: the folder holds sealed credentials, token hashes and the outbox's invite links.
    embedded::private::create_dir(&args.data_dir)
        .with_context(|| format!("cannot create the data folder {}", args.data_dir.display()))?;
    let data = args.data_dir.canonicalize()?;

    let store =
        Arc::new(SqliteStore::open(data.join("mailferry.db")).context("opening the database")?);
    // One server per data folder: it is the only receiver of the local queue, so on start it
    // takes back at once the jobs a dead predecessor held, instead of leaving those users in
    // Copying until the visibility timeout (15 minutes) runs out.
    let lock = std::fs::File::create(data.join("serve.lock")).context("creating serve.lock")?;
    if lock.try_lock().is_err() {
        anyhow::bail!(
            "another mailferry serve is using the data folder {}",
            data.display()
        );
    }
    let queue = Arc::new(
        SqliteQueue::open(data.join("queue.db"), args.max_receives.max(1))
            .context("opening the queue")?,
    );
    let freed = store
        .release_all_slots()
        .await
        .context("freeing the connection slots")?;
    if freed > 0 {
        tracing::info!(
            slots = freed,
            "freed the connection slots the previous run held"
        );
    }
    let taken_back = queue.release_held().await.context("reading the queue")?;
    if taken_back > 0 {
        tracing::info!(
            jobs = taken_back,
            "took back the jobs the previous run held when it stopped"
        );
    }
    let vault = Arc::new(
        KeyFileVault::open_or_create(data.join("vault.key")).context("opening the vault key")?,
    );
    let mailer: Arc<dyn domain::ports::Mailer> = match &args.smtp_url {
        Some(url) => Arc::new(
            SmtpMailer::new(&smtp_config(url, &args.mail_from)?).context("setting up SMTP")?,
        ),
        None => Arc::new(
            OutboxMailer::new(data.join("outbox"), &args.mail_from)
                .context("opening the outbox")?,
        ),
    };
    let mut tls = imap::TlsConfig::native_roots();
    if let Some(ca) = &args.extra_ca {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        tls = tls
            .with_extra_ca_pem(&pem)
            .context("MAILFERRY_EXTRA_CA is not a PEM certificate")?;
    }
    let mailboxes = Arc::new(imap::ImapMailboxes::new(tls));

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));

    let deps = Deps {
        limiter: store.clone(),
        store,
        queue: queue.clone(),
        mailer,
        vault,
        clock: Arc::new(SystemClock),
        mailboxes,
        tokens: Arc::new(oauth::OAuthClient::new().map_err(anyhow::Error::msg)?),
    };
    let mut config = AppConfig {
        public_url: public_url.clone(),
        ..AppConfig::default()
    };
    let a = &mut config.authorities;
    for (arg, setting) in [
        (&args.microsoft_token_url, &mut a.microsoft_token_url),
        (&args.google_token_url, &mut a.google_token_url),
        (
            &args.microsoft_authorize_url,
            &mut a.microsoft_authorize_url,
        ),
        (&args.google_authorize_url, &mut a.google_authorize_url),
        (&args.microsoft_jwks_url, &mut a.microsoft_jwks_url),
        (&args.google_jwks_url, &mut a.google_jwks_url),
    ] {
        if let Some(url) = arg {
            *setting = url.clone();
        }
    }
    config.copy.lease_ttl = Duration::from_secs(args.lease_secs.max(1));
    config.copy.chunk_messages = args.chunk_messages.max(1);
    let app = App::new(deps, config);
    let generated_admin_password = app.ensure_admin_password(admin_password).await?;

    let frontend_dir = args
        .frontend
        .join("index.html")
        .is_file()
        .then(|| args.frontend.clone());
    if frontend_dir.is_none() {
        tracing::warn!(dir = %args.frontend.display(), "no built web console found; serving the API only (cargo xtask run builds it)");
    }
    let state = web::AppState {
        app: app.clone(),
        auth: web::AdminAuth::LocalSession,
        secure_cookies: public_url.starts_with("https://"),
    };
    let router = web::router(state, web::RouterOptions { frontend_dir });

    let (stop_tx, stop_rx) = watch::channel(false);
    let visibility = Duration::from_secs(args.job_visibility_secs.max(1));
    // A job must hand over before its message becomes visible again.
    let budget = JOB_BUDGET.min(visibility - visibility / 5);
    let worker = tokio::spawn(worker_loop(
        app.clone(),
        queue,
        args.workers.max(1),
        visibility,
        budget,
        args.max_receives.max(1),
        stop_rx.clone(),
    ));
    let watchdog = tokio::spawn(watchdog_loop(app.clone(), stop_rx.clone()));
    let mut server_stop = stop_rx;
    let task = tokio::spawn(async move {
        // With each connection's address: the admin sign-in slows down per client.
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, service)
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|s| *s).await;
            })
            .await?;
        // The worker finishes the jobs it holds (they checkpoint as they go); whatever it did
        // not ack is redelivered after the visibility timeout on the next start.
        watchdog.abort();
        match tokio::time::timeout(Duration::from_secs(30), worker).await {
            Ok(_) => tracing::info!("worker stopped"),
            Err(_) => tracing::warn!(
                "worker did not stop within 30 s; unfinished jobs will be redelivered"
            ),
        }
        Ok(())
    });
    Ok(Server {
        addr,
        public_url,
        data_dir: data,
        generated_admin_password,
        app,
        stop: stop_tx,
        task,
        _data_lock: lock,
    })
}

/// `mailferry serve`: start, print where to go, run until Ctrl-C or SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let configured = std::env::var("MAILFERRY_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
        .map(Secret::new);
    let server = start(args, configured).await?;
    if let Some(generated) = &server.generated_admin_password {
        // Printed once, on the first start, to the terminal only (never to the log).
        println!(
            "\n  First start: the admin password is  {}\n  (set MAILFERRY_ADMIN_PASSWORD to choose your own)\n",
            generated.expose()
        );
    }
    println!(
        "mailferry is listening on {}  (data in {})",
        server.public_url,
        server.data_dir.display()
    );
    let stop = server.stop.clone();
    let signal = tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
    });
    let result = server.wait().await;
    signal.abort();
    result?;
    println!("mailferry stopped cleanly");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// The time budget given to one job, like a Lambda deadline.
const JOB_BUDGET: Duration = Duration::from_secs(10 * 60);

/// Once a minute, fails the users no job works on any more (see `domain::Watch`), so nobody
/// stays in Copying for ever, and starts the delta passes and cutovers that are due; once an hour, deletes the passwords of idle users (see the
/// project's retention).
async fn watchdog_loop(app: App, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = stop.changed() => return,
        }
        match app.watchdog(domain::app::Watch::default()).await {
            Ok(failed) if !failed.is_empty() => {
                tracing::warn!(
                    users = failed.len(),
                    "the watchdog failed users no job works on"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "the watchdog could not look at the users"),
        }
        match app.sync_due(app.deps().clock.now()).await {
            Ok(t) if t != domain::app::SyncTick::default() => tracing::info!(
                syncs = t.syncs,
                final_passes = t.final_passes,
                cut_over = t.cut_over,
                "started the delta passes and cutovers that were due"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "could not start the syncs and cutovers due"),
        }
        if let Err(e) = app.refresh_preflight_totals().await {
            tracing::error!(error = %e, "could not sum the projects' preflights");
        }
        if let Err(e) = app.retention_sweep_if_due().await {
            tracing::error!(error = %e, "the retention sweep could not delete idle passwords");
        }
    }
}

/// The local counterpart of the Lambda SQS trigger: receive, call the one handler, ack or
/// schedule a retry.
/// `visibility` is how long a received job stays invisible to other receivers; a job
/// checkpoints and hands over to a continuation well before its budget ends.
async fn worker_loop(
    app: App,
    queue: Arc<SqliteQueue>,
    workers: usize,
    visibility: Duration,
    budget: Duration,
    max_receives: u32,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(workers));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        let free = slots.available_permits();
        let deliveries = if free == 0 {
            Vec::new()
        } else {
            match queue.receive(free, visibility).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "queue receive failed");
                    Vec::new()
                }
            }
        };
        if deliveries.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = stop.changed() => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
            continue;
        }
        for delivery in deliveries {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let app = app.clone();
            let queue = queue.clone();
            tasks.spawn(async move {
                let _permit = permit;
                handle_delivery(&app, queue.as_ref(), delivery, budget, max_receives).await;
            });
        }
    }
    while tasks.join_next().await.is_some() {}
}

pub async fn handle_delivery(
    app: &App,
    queue: &dyn Queue,
    delivery: domain::ports::Delivery,
    budget: Duration,
    max_receives: u32,
) {
    let outcome = app.handle_job(&delivery.job, budget).await;
    let last_try = delivery.receive_count >= max_receives;
    let result = match outcome {
        Ok(domain::app::JobOutcome::Done) => queue.ack(&delivery.receipt).await,
        Ok(domain::app::JobOutcome::RetryLater { after, reason }) => {
            tracing::info!(message = %delivery.message_id, %reason, "job will be retried");
            queue.retry_later(&delivery.receipt, after).await
        }
        Err(e) if last_try => {
            if let Err(e2) = app.give_up_job(&delivery.job, &e.to_string()).await {
                tracing::error!(message = %delivery.message_id, error = %e2, "could not mark the user failed");
            }
            queue.retry_later(&delivery.receipt, Duration::ZERO).await
        }
        Err(e) => {
            let backoff = Duration::from_secs(2u64.saturating_pow(delivery.receive_count.min(8)));
            tracing::warn!(message = %delivery.message_id, error = %e, ?backoff, "job failed; retrying after backoff");
            queue.retry_later(&delivery.receipt, backoff).await
        }
    };
    if let Err(e) = result {
        tracing::error!(message = %delivery.message_id, error = %e, "could not settle the queue message");
    }
}
