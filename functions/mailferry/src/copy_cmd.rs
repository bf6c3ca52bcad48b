//! `mailferry copy`: one mailbox, source to target, from the command line, on the same engine
//! the server runs (plan, leased chunked copy, checkpoints), without the web server. Like
//! imapsync for sysadmins, but resumable: `--state FILE` keeps the checkpoints, so a rerun after
//! a crash or Ctrl-C continues where it stopped, and a rerun after success is a delta pass.
//!
//! Passwords come from environment variables or files, never from the command line (argv is
//! visible to every user of the machine). They are sealed with a key that exists only for the
//! run (in a private temporary folder), so the state file never holds a usable secret.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use contract::jobs::Job;
use contract::{
    AuthInput, ConnectorInput, ContentCheck, CopyOptions, FolderMapping, InviteTo, ProjectInput,
    Security, UserState,
};
use domain::ports::{Queue, SystemClock};
use domain::{App, AppConfig, Deps, UserQuery};
use embedded::{KeyFileVault, OutboxMailer, SqliteQueue, SqliteStore};

/// Tries of one job before the copy gives up on it (with backoff: about 4 minutes in all).
const MAX_RECEIVES: u32 = 8;

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Source mailbox: imaps://USER@HOST[:993] (TLS), imap://USER@HOST[:143] (STARTTLS), or
    /// imap+plain://USER@HOST[:143] (no encryption; only for trusted networks).
    #[arg(long)]
    pub source: String,
    /// Target mailbox, same forms as --source.
    #[arg(long)]
    pub target: String,
    /// File with the source password (first line). Default: $MAILFERRY_SOURCE_PASSWORD.
    #[arg(long)]
    pub source_password_file: Option<PathBuf>,
    /// File with the target password (first line). Default: $MAILFERRY_TARGET_PASSWORD.
    #[arg(long)]
    pub target_password_file: Option<PathBuf>,
    /// Checkpoint file; a rerun with the same file resumes, or copies only what changed.
    #[arg(long, default_value = "mailferry-copy.state")]
    pub state: PathBuf,
    /// Copy only folders matching this pattern (`*` wildcard); repeatable.
    #[arg(long)]
    pub include: Vec<String>,
    /// Leave out folders matching this pattern; repeatable.
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Map a source folder to a target folder: --map 'Old/Stuff=Archive.Stuff'; repeatable.
    #[arg(long = "map")]
    pub folder_map: Vec<String>,
    /// Skip messages larger than this many bytes.
    #[arg(long)]
    pub max_size: Option<u64>,
    /// Connections to each mailbox at once (default: 4, the generic IMAP server's; Dovecot
    /// takes 10 per user and address unless told otherwise).
    #[arg(long)]
    pub connections_per_mailbox: Option<u32>,
    /// Only messages received on or after this date (YYYY-MM-DD, UTC).
    #[arg(long)]
    pub since: Option<String>,
    /// Only messages received before this date (YYYY-MM-DD, UTC).
    #[arg(long)]
    pub before: Option<String>,
    /// On a rerun, remove from the target the copies of messages deleted at the source since
    /// (only copies this command made; other mail on the target is never touched).
    #[arg(long)]
    pub remove_deleted: bool,
    /// On a rerun, try again the messages an earlier run skipped because a server refused or
    /// could not return them (the folders holding them are compared with the target again,
    /// so nothing is copied twice).
    #[arg(long)]
    pub retry_skipped: bool,
    /// Ask the servers for COMPRESS=DEFLATE when they offer it (pays on slow links; on a fast
    /// network compressing costs more than it saves).
    #[arg(long)]
    pub compress: bool,
    /// Folders copied at once.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Messages larger than this many bytes stream from source to target as they arrive, one
    /// at a time; smaller ones are held and appended together (default: 1 MiB).
    #[arg(long, env = "MAILFERRY_STREAM_FROM")]
    pub stream_from: Option<u64>,
    /// A PEM file of extra CA certificates to trust (servers with a private CA).
    #[arg(long)]
    pub extra_ca: Option<PathBuf>,
    /// Which copies are read back from the target and compared with the source byte for
    /// byte: `off`, `sample` (the first 20 of each folder and every message with 8-bit or NUL
    /// header bytes or bare line feeds) or `all`.
    #[arg(long, default_value = "sample", value_parser = ["off", "sample", "all"])]
    pub verify_content: String,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Log in to both sides and report folders, sizes, messages over the target's limit, the
    /// target's quota and the capabilities that matter, copying nothing. Exits 1 when
    /// something would not fit.
    #[arg(long)]
    pub preflight: bool,
}

/// A parsed mailbox URL.
#[derive(Debug, PartialEq, Eq)]
struct MailboxUrl {
    security: Security,
    user: String,
    host: String,
    port: u16,
}

fn parse_url(flag: &str, url: &str) -> anyhow::Result<MailboxUrl> {
    let (scheme, rest) = url
        .split_once("://")
        .with_context(|| format!("{flag}: expected imaps://USER@HOST[:PORT]"))?;
    let (security, default_port) = match scheme {
        "imaps" => (Security::Tls, 993),
        "imap" => (Security::Starttls, 143),
        "imap+plain" => (Security::Plaintext, 143),
        other => bail!("{flag}: unknown scheme '{other}' (use imaps, imap or imap+plain)"),
    };
    let rest = rest.trim_end_matches('/');
    let (user, hostport) = rest
        .rsplit_once('@')
        .with_context(|| format!("{flag}: the user is missing (imaps://USER@HOST)"))?;
    if user.contains(':') {
        bail!("{flag}: do not put the password in the URL; use an environment variable or a file");
    }
    let user = percent_decode(user);
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => (
            h.to_owned(),
            p.parse()
                .with_context(|| format!("{flag}: '{p}' is not a port"))?,
        ),
        _ => (hostport.to_owned(), default_port),
    };
    if user.is_empty() || host.is_empty() {
        bail!("{flag}: expected imaps://USER@HOST[:PORT]");
    }
    Ok(MailboxUrl {
        security,
        user,
        host,
        port,
    })
}

/// `%40` → `@` and friends, so a login with an `@` can be written in the URL.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(
                std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                16,
            )
        {
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn password(file: &Option<PathBuf>, var: &str, flag: &str) -> anyhow::Result<String> {
    let pw = match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("{flag}: cannot read {}", path.display()))?
            .lines()
            .next()
            .unwrap_or("")
            .to_owned(),
        None => std::env::var(var).with_context(|| format!("set {var} or pass {flag}"))?,
    };
    if pw.is_empty() {
        bail!(
            "the password from {} is empty",
            file.as_ref()
                .map_or(var.to_owned(), |p| p.display().to_string())
        );
    }
    Ok(pw)
}

fn date(flag: &str, s: &Option<String>) -> anyhow::Result<Option<time::OffsetDateTime>> {
    let Some(s) = s else { return Ok(None) };
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s, format)
        .with_context(|| format!("{flag}: '{s}' is not a date like 2024-01-31"))?;
    Ok(Some(d.midnight().assume_utc()))
}

fn connector(url: &MailboxUrl, password: String) -> ConnectorInput {
    ConnectorInput {
        kind: contract::ConnectorKind::Imap,
        host: url.host.clone(),
        port: url.port,
        security: url.security,
        // The login is used as given; `{email}` is not in it, so the pattern is the login.
        auth: AuthInput::Admin {
            login_pattern: url.user.clone(),
            password: Some(password),
        },
    }
}

/// An address for the state file's user record: the login when it is an address, else
/// login@host.
fn identity(url: &MailboxUrl) -> String {
    if url.user.contains('@') {
        url.user.clone()
    } else {
        format!("{}@{}", url.user, url.host)
    }
}

pub async fn run(args: CopyArgs) -> anyhow::Result<i32> {
    let source = parse_url("--source", &args.source)?;
    let target = parse_url("--target", &args.target)?;
    let source_pw = password(
        &args.source_password_file,
        "MAILFERRY_SOURCE_PASSWORD",
        "--source-password-file",
    )?;
    let target_pw = password(
        &args.target_password_file,
        "MAILFERRY_TARGET_PASSWORD",
        "--target-password-file",
    )?;
    let folder_map = args
        .folder_map
        .iter()
        .map(|m| {
            m.split_once('=')
                .map(|(from, to)| FolderMapping {
                    from: from.to_owned(),
                    to: to.to_owned(),
                })
                .with_context(|| format!("--map '{m}': expected SOURCE=TARGET"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let copy = CopyOptions {
        include: args.include.clone(),
        exclude: args.exclude.clone(),
        folder_map,
        max_message_bytes: args.max_size,
        since: date("--since", &args.since)?,
        before: date("--before", &args.before)?,
        deleted_at_source: if args.remove_deleted {
            contract::DeletedAtSource::Remove
        } else {
            contract::DeletedAtSource::Keep
        },
        verify_content: match args.verify_content.as_str() {
            "off" => ContentCheck::Off,
            "all" => ContentCheck::All,
            _ => ContentCheck::Sample,
        },
        limits: contract::ConnectionLimits {
            per_mailbox: args.connections_per_mailbox,
            ..Default::default()
        },
    };

    // Adapters: the checkpoint file, an in-memory queue (every run plans again from the
    // checkpoints), a vault key that lives only as long as this run.
    let scratch = tempfile::tempdir().context("creating a private temporary folder")?;
    let _lock = lock_state(&args.state)?;
    let store = Arc::new(
        SqliteStore::open(&args.state)
            .with_context(|| format!("opening the state file {}", args.state.display()))?,
    );
    // A job that keeps failing (a server that stays down) gives up after 8 tries with backoff.
    let queue = Arc::new(SqliteQueue::open_in_memory(MAX_RECEIVES)?);
    let vault = Arc::new(KeyFileVault::open_or_create(
        scratch.path().join("run.key"),
    )?);
    let mut tls = imap::TlsConfig::native_roots();
    if let Some(ca) = &args.extra_ca {
        tls = tls.with_extra_ca_pem(
            std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?,
        )?;
    }
    let mailboxes = Arc::new(imap::ImapMailboxes::new(tls).with_compression(args.compress));
    let deps = Deps {
        limiter: store.clone(),
        store: store.clone(),
        queue: queue.clone(),
        mailer: Arc::new(OutboxMailer::new(
            scratch.path().join("outbox"),
            "mailferry@localhost",
        )?),
        vault,
        clock: Arc::new(SystemClock),
        mailboxes,
        tokens: Arc::new(oauth::OAuthClient::new().map_err(anyhow::Error::msg)?),
    };
    let mut config = AppConfig::default();
    if let Some(bytes) = args.stream_from {
        config.copy.stream_from_bytes = bytes;
    }
    let app = App::new(deps, config);

    let input = ProjectInput {
        name: format!("{} → {}", identity(&source), identity(&target)),
        source: connector(&source, source_pw),
        target: connector(&target, target_pw),
        invite_to: InviteTo::None,
        admin_email: None,
        notify_user: false,
        copy,
        retention: Default::default(),
        sync: Default::default(),
    };
    // What this run does is recorded in the state file's audit trail like a console's action.
    let actor = domain::Actor::admin("mailferry copy (command line)", None);
    let project = match store_first_project(&app).await? {
        Some(id) => app
            .update_project(id, &input, None, &actor)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        None => app
            .create_project(&input, &actor)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let (users, _) = app
        .deps()
        .store
        .list_users(
            project.id,
            &UserQuery {
                limit: 1,
                ..Default::default()
            },
        )
        .await?;
    let user = match users.into_iter().next() {
        Some(u) => u,
        None => app
            .add_user(
                project.id,
                &contract::UserInput {
                    source_email: identity(&source),
                    target_email: identity(&target),
                    display_name: String::new(),
                    source_password: None,
                    target_password: None,
                    priority: 0,
                    cutover_at: None,
                },
                &actor,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    if user.source_email.as_str() != identity(&source).to_lowercase()
        || user.target_email.as_str() != identity(&target).to_lowercase()
    {
        bail!(
            "the state file {} belongs to {} → {}; use another --state file for this pair",
            args.state.display(),
            user.source_email,
            user.target_email
        );
    }
    // This run holds the state file's lock, so no other run is alive: leases of folders and
    // connection slots are what a killed run left, and are taken at once rather than when they
    // expire.
    release_leases(app.deps().store.as_ref(), user.id).await?;
    app.free_connection_slots(&user).await?;
    if args.preflight {
        let report = app
            .preflight(&project, &user)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", crate::preflight_report::text(&report));
        }
        return Ok(i32::from(crate::preflight_report::blocks(&report)));
    }
    let mut retry_skipped = false;
    if args.retry_skipped
        && matches!(
            user.state,
            UserState::Completed | UserState::Verified | UserState::Failed | UserState::Paused
        )
    {
        for f in app.deps().store.list_folders(user.id).await? {
            retry_skipped |= app
                .has_retryable_skips(&f)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    let action = match user.state {
        _ if retry_skipped => Some(contract::BulkAction::RetrySkipped),
        UserState::Completed | UserState::Verified | UserState::CutOver => {
            Some(contract::BulkAction::Delta)
        }
        UserState::New | UserState::EmailSent | UserState::Failed | UserState::Paused => {
            Some(contract::BulkAction::Start)
        }
        UserState::Scheduled | UserState::Working => None,
    };
    let user = match action {
        Some(a) => app
            .user_action(&project, &user, a, &actor)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .context("user vanished")?,
        None => {
            // An interrupted run: plan again; the checkpoints say what is already there.
            queue
                .send(
                    &Job::Plan {
                        user_id: user.id.0,
                        pass: user.pass,
                    },
                    Duration::ZERO,
                )
                .await?;
            user
        }
    };

    let before = crate::copy_report::baseline(&app, user.id, retry_skipped).await?;
    let started = Instant::now();
    let progress = progress_bar(args.json);
    let workers = args.parallel.max(1);
    // A pool, not batches: a worker that finishes takes the next job at once instead of
    // waiting for the slowest job of its batch (folders differ in size by orders of magnitude).
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        if tasks.len() < workers {
            let deliveries = queue
                .receive(workers - tasks.len(), Duration::from_secs(3600))
                .await?;
            for d in deliveries {
                let app = app.clone();
                let queue = queue.clone();
                tasks.spawn(async move {
                    crate::serve::handle_delivery(
                        &app,
                        queue.as_ref(),
                        d,
                        Duration::from_secs(24 * 3600),
                        MAX_RECEIVES,
                    )
                    .await
                });
            }
        }
        if tasks.is_empty() {
            // Jobs waiting for a retry after a transient error become visible later.
            if queue.pending_count().await? == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        // Wait for a job to end; with a worker free, look at the queue again soon, as running
        // jobs queue new ones (the plan queues the folders' copies).
        let free = tasks.len() < workers;
        tokio::select! {
            _ = tasks.join_next() => {
                if let Some(u) = app.deps().store.get_user(user.id).await? {
                    update_bar(&progress, &u.progress);
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(50)), if free => {}
        }
    }
    progress.finish_and_clear();
    // The last jobs' sessions wait for a next job that will not come: log them out now.
    app.close_parked_sessions().await;
    let work = crate::copy_report::Work {
        state_rows_written: store.rows_written(),
        queue_operations: queue.operations(),
        cpu_seconds: cpu_seconds(),
    };
    let code =
        crate::copy_report::report(&app, user.id, &before, started.elapsed(), work, args.json)
            .await?;
    drop(scratch);
    Ok(code)
}

/// Takes `<state>.lock` for the run, so two runs never share a state file, and a run that finds
/// it free knows that whoever held it before is gone.
fn lock_state(state: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let mut name = state.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    let lock = std::fs::File::create(&path)
        .with_context(|| format!("creating the lock file {}", path.display()))?;
    if lock.try_lock().is_err() {
        bail!(
            "another mailferry copy is running with the state file {}; wait for it to end or use another --state",
            state.display()
        );
    }
    Ok(lock)
}

/// How long a folder whose APPEND was cut short by a kill waits before it is compared with the
/// target: the server may still be storing what the dead run sent in full (Cyrus commits a
/// MULTIAPPEND of 200 messages a few hundred milliseconds after the client is gone; compared
/// before that, the copies look missing and are appended twice).
const SETTLE_AFTER_KILL: Duration = Duration::from_secs(15);

/// Frees the folders a killed run still held, instead of waiting for their two-minute leases
/// to expire: at once when the dead run was between chunks, after [`SETTLE_AFTER_KILL`] when
/// it was appending (its in-flight mark is set).
async fn release_leases(
    store: &dyn domain::ports::Store,
    user: domain::UserId,
) -> anyhow::Result<()> {
    let settled = time::OffsetDateTime::now_utc() + SETTLE_AFTER_KILL;
    for f in store.list_folders(user).await? {
        if f.lease_owner.is_none() || f.lease_until.is_some_and(|until| until <= settled) {
            continue;
        }
        let appending = f.in_flight.is_some();
        let freed = domain::FolderState {
            moves: None,
            lease_owner: appending.then(|| "a killed run's last append".to_owned()),
            lease_until: appending.then_some(settled),
            version: f.version + 1,
            ..f.clone()
        };
        match store.put_folder(&freed, Some(f.version)).await {
            Ok(()) | Err(domain::StoreError::Conflict) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

async fn store_first_project(app: &App) -> anyhow::Result<Option<domain::ProjectId>> {
    Ok(app
        .deps()
        .store
        .list_projects()
        .await?
        .first()
        .map(|p| p.id))
}

fn progress_bar(json: bool) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if json || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {msg} {binary_bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn update_bar(bar: &indicatif::ProgressBar, p: &contract::Progress) {
    bar.set_length(p.bytes_total);
    bar.set_position(p.bytes_done);
    bar.set_message(format!("{}/{} messages", p.messages_done, p.messages_total));
}

/// User plus system CPU time of this process so far (Linux `/proc/self/stat`, in clock ticks of
/// 1/100 s); `None` elsewhere.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_defaults_and_refuse_passwords() {
        let u = parse_url("--source", "imaps://ann%40old.example@mail.old.example").unwrap();
        assert_eq!(
            u,
            MailboxUrl {
                security: Security::Tls,
                user: "ann@old.example".into(),
                host: "mail.old.example".into(),
                port: 993
            }
        );
        let u = parse_url("--source", "imap+plain://ann@127.0.0.1:1143").unwrap();
        assert_eq!(
            (u.security, u.port, u.user.as_str()),
            (Security::Plaintext, 1143, "ann")
        );
        assert_eq!(
            parse_url("--t", "imap://bob@host").unwrap().security,
            Security::Starttls
        );
        assert!(
            parse_url("--t", "imap://bob:secret@host")
                .unwrap_err()
                .to_string()
                .contains("password")
        );
        assert!(parse_url("--t", "pop3://bob@host").is_err());
        assert!(parse_url("--t", "imaps://host").is_err());
    }
}
