//! The copy engine: `Plan` lists and maps a user's folders and fans out one `Copy` job per
//! folder (`plan.rs`); `Copy` streams one folder from source to target in chunks,
//! checkpointing after each (`folder.rs`); delta passes carry flag changes and removals
//! (`delta.rs`). The decisions — chunks, the project's rules, what a server's answer means,
//! which target message is the copy of which source message — are plain functions
//! (`decide.rs`, `identity.rs`) tested with plain values.
//!
//! Exactly once on the target, with at-least-once queues and crashes:
//! - a worker copies a folder only while it holds the folder's lease (a version-checked write,
//!   renewed at every checkpoint), so two deliveries of one job never append at the same time;
//! - before appending a chunk it records the chunk's source UID range and the target folder's
//!   UIDNEXT (`InFlight`); after the append it records the new `last_uid` and clears the mark;
//! - a resume that finds the mark compares the source messages of that range with the target
//!   messages at or above the recorded UIDNEXT as multisets, by an identity that survives
//!   servers which rewrite messages (`identity.rs`), and appends only what is missing, so exact
//!   duplicates on the source stay duplicates on the target, once.
//!
//! Nothing passes silently: a message the target refuses, or the source cannot return, is
//! listed with the server's words (and can be retried); a target that throttles is waited for;
//! a full target stops the user with the number of messages left, resumable by Retry.
//!
//! The source is only ever EXAMINEd and read with BODY.PEEK: it is never modified.

mod budgets;
mod chunk;
mod content;
mod decide;
mod delta;
mod details;
mod folder;
pub(crate) mod identity;
mod job;
mod labels;
mod lease;
mod moves;
mod naming;
mod parked;
mod plan;
mod preflight;
mod readback;
mod recovery;
mod slots;
mod stream;

use std::time::{Duration, Instant};

use contract::UserState;
use contract::jobs::Job;

use crate::audit::{Actor, AuditAction};
use crate::error::AppError;
use crate::mailbox::{MailSession, MailboxError, Source, Target};
use crate::model::*;
use crate::ports::OutgoingMail;
use crate::secret::{Credential, Secret};
use crate::state::Transition;

use super::projects::{Side, login_for};
use super::{App, JobOutcome};

pub(crate) use folder::begin_rescan;
pub(crate) use parked::ParkedSessions;

/// Why a copy job stopped early.
enum Stop {
    /// Another worker holds the folder or took it over: leave it to them.
    LeaseLost,
    /// The budget is nearly spent: a continuation was queued.
    OutOfTime,
    /// A daily transfer budget of the user's mailboxes is spent: the folder pauses until it
    /// renews.
    BudgetSpent,
    /// The target mailbox is full (the server's words, and how many messages the unfinished
    /// chunk stored before it filled up, then how many are left): the user stops until the
    /// admin retries.
    TargetFull(String, u64),
}

fn mailbox_err(e: MailboxError) -> AppError {
    match e {
        MailboxError::Throttled {
            message,
            retry_after,
        } => AppError::Throttled {
            message: format!("the server is throttling: {message}"),
            retry_after,
        },
        other => AppError::Upstream(other.to_string()),
    }
}

/// Whether a refusal says the account has too many connections open (Dovecot's "Maximum
/// number of connections from user+IP exceeded", Gmail's "Too many simultaneous
/// connections"): one closes as soon as another job ends, so waiting a minute is too long.
pub fn is_connection_limit(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("maximum number of connections")
        || lower.contains("too many simultaneous connections")
        || lower.contains("too many connections")
}

/// How long a folder waits after the server refused or throttled it: a few seconds when it
/// has too many connections open ([`is_connection_limit`]; the caps of the project or the
/// provider profile are then above the server's, which the admin is told), otherwise
/// [`throttle_delay`].
pub fn refusal_delay(message: &str, hint: Option<Duration>) -> Duration {
    if is_connection_limit(message) && hint.is_none() {
        Duration::from_secs(5)
    } else {
        throttle_delay(hint)
    }
}

/// How long a folder waits after the server throttled it: the server's hint when it gave one,
/// a minute otherwise, at least 5 s and at most 15 minutes (the longest SQS delivery delay).
pub fn throttle_delay(hint: Option<Duration>) -> Duration {
    hint.unwrap_or(Duration::from_secs(60))
        .clamp(Duration::from_secs(5), Duration::from_secs(900))
}

/// Both sessions of a copy job: the source can only be read.
struct Sessions {
    source: Source,
    target: Target,
    /// Flags the target's service drops on APPEND, set again with STORE (its profile's
    /// `flags_after_append`).
    target_drops: &'static [&'static str],
    /// The largest message the target's service takes (its profile's `max_message_bytes`).
    target_limit: Option<decide::ServiceLimit>,
    /// The source's folders are labels (Gmail): one message shows in every label it has, and
    /// All Mail shows all.
    source_labels: bool,
    /// The target's folders are labels (Gmail): a message it holds already gets a folder's
    /// label instead of a second upload.
    target_labels: bool,
    /// The target's label folders, once looked up (`labels.rs`).
    target_all_mail: Option<labels::LabelFolders>,
}

impl Sessions {
    async fn close(self) {
        self.source.logout().await;
        self.target.logout().await;
    }
}

impl App {
    /// Runs a plan or copy job for a user that is scheduled or working on this pass.
    pub(crate) async fn run_copy_job(
        &self,
        user: &MailUser,
        job: &Job,
        budget: Duration,
    ) -> Result<JobOutcome, AppError> {
        // Keep a reserve for the last checkpoint and the continuation: a quarter of the budget,
        // at most the configured reserve.
        let reserve = self.config.copy.budget_reserve.min(budget / 4);
        let deadline = Instant::now() + budget - reserve;
        // The connections this job opens count against the servers' and mailboxes' caps.
        let project = self.project(user.project_id).await?;
        let holder = crate::token::generate();
        let now = self.deps.clock.now();
        let needs = crate::schedule::needs(&project, user);
        let user = &self.ranked(user, &needs, now).await?;
        // The sessions an earlier job of this user left, with their slots; or new slots, the
        // sessions then opened by the work when it needs them.
        let (slots, mut sessions) = match self.take_parked(user.id).await {
            Some((sessions, slots)) => (slots, Some(sessions)),
            None => match self.take_slots(&needs, &holder, user, job, now).await? {
                Ok(slots) => (slots, None),
                Err(full) => return self.wait_for(user, job, &full, now).await,
            },
        };
        let cleared;
        let user = if user.waiting_since.is_some()
            || user
                .last_error
                .as_deref()
                .is_some_and(|e| e.starts_with("waiting: "))
        {
            cleared = self
                .clear_waiting(user.id)
                .await
                .unwrap_or_else(|| user.clone());
            &cleared
        } else {
            user
        };
        let work = async {
            let sessions = &mut sessions;
            match job {
                Job::Plan { .. } => self.plan(&project, user, sessions).await,
                Job::Copy {
                    folder, attempt, ..
                } => {
                    // Chunks stop at the deadline; any other command still running half a
                    // reserve later is cut off, leaving the rest of the reserve to hand over.
                    let hard_stop = deadline + reserve / 2;
                    let until = (deadline, hard_stop);
                    self.copy_folder(&project, user, folder, *attempt, until, sessions)
                        .await
                }
                // Handled before any slot is taken (`handle_job`); never reaches here.
                Job::Preflight { .. } => Ok(JobOutcome::Done),
            }
        };
        let result = self.holding(&slots, work).await;
        // The work hands its sessions back only when it ended cleanly.
        self.park_or_close(user.id, sessions, slots).await;
        match result {
            Err(e @ AppError::LoginRejected(_)) => {
                // Retrying cannot help until someone fixes the password: fail the user visibly.
                self.fail_user(user.id, e.to_string()).await?;
                Ok(JobOutcome::Done)
            }
            Err(AppError::SignInNeeded { side, message }) => {
                let side = Side::parse(side).ok_or_else(|| AppError::internal("no such side"))?;
                self.sign_in_needed_again(user, side, message).await?;
                Ok(JobOutcome::Done)
            }
            other => other,
        }
    }

    pub(crate) async fn fail_user(&self, id: UserId, reason: String) -> Result<(), AppError> {
        for _ in 0..5 {
            let Some(current) = self.deps.store.get_user(id).await? else {
                return Ok(());
            };
            if Transition::Fail.apply(current.state).is_none() {
                return Ok(());
            }
            match self
                .transition(&current, Transition::Fail, |u| {
                    u.last_error = Some(reason.clone())
                })
                .await
            {
                Ok(_) => return Ok(()),
                Err(AppError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Opens one side's session for a user. A bearer token the server refuses (revoked, or
    /// ended before the time it was given for) is forgotten and the login tried once more with
    /// a new one, so a job never fails on a kept token the authority would replace.
    async fn open_side(
        &self,
        project: &Project,
        user: &MailUser,
        side: Side,
        creds: &UserCredentials,
    ) -> Result<Box<dyn MailSession>, AppError> {
        let timeout = self.config.copy.command_timeout;
        let (connector, email) = (side.of(project), side.email(user));
        let password = match side {
            Side::Source => &creds.source_password,
            Side::Target => &creds.target_password,
        };
        let signed_in = match side {
            Side::Source => creds.source_sign_in.clone(),
            Side::Target => creds.target_sign_in.clone(),
        };
        let credential_for = async |signed_in: Option<&SignedIn>| match &connector.auth {
            ConnectorAuth::PerUser => Ok((
                login_for(connector, email),
                Credential::Password(Secret::new(password.clone().ok_or_else(|| {
                    AppError::LoginRejected(format!("no {} password is stored", side.as_str()))
                })?)),
            )),
            ConnectorAuth::UserSignIn { .. } => {
                self.signed_in_credential(project, user, side, signed_in)
                    .await
            }
            _ => {
                self.admin_credential(project.id, side, connector, email.as_str())
                    .await
            }
        };
        let (login, credential) = credential_for(signed_in.as_ref()).await?;
        let endpoint = connector.endpoint();
        let mut opened = self
            .deps
            .mailboxes
            .open(&endpoint, &login, &credential, timeout)
            .await;
        if matches!(opened, Err(MailboxError::Auth(_)))
            && matches!(credential, Credential::Bearer(_))
        {
            tracing::info!(
                side = side.as_str(),
                "the server refused a kept token: asking for a new one"
            );
            let mut signed_in = signed_in;
            if matches!(connector.auth, ConnectorAuth::UserSignIn { .. }) {
                // Read again: another job may have renewed meanwhile, and an authority that
                // rotates refresh tokens has then spent the one this job started with.
                let mut fresh = self
                    .credentials(project, user.id)
                    .await?
                    .unwrap_or_default();
                signed_in = side.sign_in_of(&mut fresh).take();
                if let Some(signed_in) = &signed_in {
                    let grant = self.refresh_grant(project, side, signed_in).await?;
                    self.deps.tokens.forget(&grant).await;
                }
            } else {
                self.forget_app_token(project.id, side, connector, email.as_str())
                    .await?;
            }
            let (login, credential) = credential_for(signed_in.as_ref()).await?;
            opened = self
                .deps
                .mailboxes
                .open(&endpoint, &login, &credential, timeout)
                .await;
        }
        opened.map_err(|e| match e {
            MailboxError::Auth(m) => {
                AppError::LoginRejected(format!("{} server: {m}", side.as_str()))
            }
            other => mailbox_err(other),
        })
    }

    /// The sessions a job works with: the ones it was handed (parked by an earlier job of
    /// the user), or new ones.
    async fn sessions_for(
        &self,
        handed: &mut Option<Sessions>,
        project: &Project,
        user: &MailUser,
    ) -> Result<Sessions, AppError> {
        match handed.take() {
            Some(sessions) => Ok(sessions),
            None => {
                self.open_sessions(project, user, &format!("a copy job of pass {}", user.pass))
                    .await
            }
        }
    }

    /// Opens logged-in sessions on both sides with the project's credentials for this user.
    /// Both sessions of a job, audited as `purpose` ("a copy job of pass 2", "a preflight")
    /// signing in.
    async fn open_sessions(
        &self,
        project: &Project,
        user: &MailUser,
        purpose: &str,
    ) -> Result<Sessions, AppError> {
        let creds = self
            .credentials(project, user.id)
            .await?
            .unwrap_or_default();
        let mut sessions = Vec::with_capacity(2);
        for side in [Side::Source, Side::Target] {
            let session = self.open_side(project, user, side, &creds).await?;
            sessions.push(session);
        }
        let used =
            super::users::sides_named(project.source.is_per_user(), project.target.is_per_user());
        let detail = if project.source.is_per_user() || project.target.is_per_user() {
            format!("{purpose} signed in with the stored {used} password")
        } else {
            format!("{purpose} signed in with the admin accounts")
        };
        let subject = user.source_email.to_string();
        self.audit(
            Some(project.id),
            &Actor::system(),
            AuditAction::CredentialsUsed,
            Some(&subject),
            &detail,
        )
        .await;
        let target = sessions
            .pop()
            .ok_or_else(|| AppError::internal("no target session"))?;
        let source = sessions
            .pop()
            .ok_or_else(|| AppError::internal("no source session"))?;
        let target_profile = crate::providers::profile(project.target.kind);
        let source_profile = crate::providers::profile(project.source.kind);
        Ok(Sessions {
            source_labels: source_profile.labels.value,
            target_labels: target_profile.labels.value,
            target_all_mail: None,
            source: Source::new(source),
            target: Target::new(target),
            target_drops: target_profile.flags_after_append.value,
            target_limit: target_profile
                .max_message_bytes
                .map(|r| decide::ServiceLimit {
                    max_bytes: r.value,
                    service: target_profile.name,
                }),
        })
    }

    /// Lists and maps the folders, creates them on the target, records a checkpoint per folder
    /// conflicts (several folders of one user report at once).
    pub(super) async fn update_progress(
        &self,
        id: UserId,
        change: impl Fn(&mut contract::Progress),
    ) -> Result<(), AppError> {
        self.update_user_with(id, |u| change(&mut u.progress)).await
    }

    /// Changes fields of the user that no state transition owns (progress, counters), read
    /// anew and written version-checked until no other writer comes between.
    pub(crate) async fn update_user_with(
        &self,
        id: UserId,
        change: impl Fn(&mut MailUser),
    ) -> Result<(), AppError> {
        for _ in 0..20 {
            let Some(current) = self.deps.store.get_user(id).await? else {
                return Ok(());
            };
            let mut next = current.clone();
            change(&mut next);
            if next == current {
                return Ok(());
            }
            next.version = current.version + 1;
            next.updated_at = self.deps.clock.now();
            match self.deps.store.update_user(&next, current.version).await {
                Ok(()) => return Ok(()),
                Err(crate::error::StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Conflict(
            "the user record is too busy; retrying".into(),
        ))
    }

    /// as a new delivery, so throttling never counts toward the dead-letter limit.
    pub(super) async fn continue_after_throttling(
        &self,
        user: &MailUser,
        source_name: &str,
        attempt: u32,
        message: &str,
        retry_after: Option<Duration>,
    ) -> Result<JobOutcome, AppError> {
        let delay = refusal_delay(message, retry_after);
        let _ = self
            .set_last_error(
                user.id,
                format!(
                    "{source_name}: {message}; retrying at {} ({} s){}",
                    crate::schedule::clock_time(self.deps.clock.now() + delay),
                    delay.as_secs(),
                    if is_connection_limit(message) {
                        " (the server takes fewer connections per mailbox than the project's limit: lower it in the project's connection limits)"
                    } else {
                        ""
                    }
                ),
            )
            .await;
        let next = Job::Copy {
            user_id: user.id.0,
            pass: user.pass,
            folder: source_name.to_owned(),
            attempt: attempt + 1,
        };
        self.deps.queue.send(&next, delay).await?;
        Ok(JobOutcome::Done)
    }

    pub(super) async fn set_last_error(&self, id: UserId, message: String) -> Result<(), AppError> {
        if let Some(current) = self.deps.store.get_user(id).await? {
            self.put_last_error(&current, Some(message)).await;
        }
        Ok(())
    }

    /// Clears a "waiting: …" the user shows (and nothing else: another job's error stays) and
    /// its start of waiting, best effort; the user as stored then, for the job's next writes.
    async fn clear_waiting(&self, id: UserId) -> Option<MailUser> {
        let Ok(Some(current)) = self.deps.store.get_user(id).await else {
            return None;
        };
        let waiting_text = current
            .last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("waiting: "));
        if waiting_text || current.waiting_since.is_some() {
            let mut next = current.clone();
            if waiting_text {
                next.last_error = None;
            }
            next.waiting_since = None;
            next.version = current.version + 1;
            next.updated_at = self.deps.clock.now();
            if self
                .deps
                .store
                .update_user(&next, current.version)
                .await
                .is_ok()
            {
                return Some(next);
            }
            return self.deps.store.get_user(id).await.ok().flatten();
        }
        Some(current)
    }

    /// Writes what the user shows as its last error over `current` (best effort: a write that
    /// came first wins).
    async fn put_last_error(&self, current: &MailUser, message: Option<String>) {
        let mut next = current.clone();
        next.last_error = message;
        next.version = current.version + 1;
        next.updated_at = self.deps.clock.now();
        let _ = self.deps.store.update_user(&next, current.version).await;
    }
}

impl App {
    /// Stops a user whose target mailbox is full, saying how many messages are left: the
    /// folders keep their checkpoints, so the admin's Retry (after making room) resumes.
    pub(super) async fn stop_for_full_target(
        &self,
        user: &MailUser,
        reason: &str,
        left: u64,
    ) -> Result<(), AppError> {
        self.log_event(
            user,
            format!("stopped: the target mailbox is full ({reason})"),
        )
        .await;
        self.fail_user(
            user.id,
            format!(
                "target mailbox full — {} messages left; make room or raise the quota, then retry (the server said: {reason})",
                decide::thousands(left)
            ),
        )
        .await
    }

    /// The admin's "retry skipped": every folder that skipped messages for a reason a retry
    /// can change is rescanned (compared with the target by identity, the missing appended),
    /// in a new pass for a finished user or the same pass for a failed or paused one.
    pub(crate) async fn retry_skipped(&self, user: &MailUser) -> Result<MailUser, AppError> {
        let transition = match user.state {
            UserState::Completed | UserState::Verified | UserState::CutOver => Transition::Delta,
            UserState::Failed | UserState::Paused => Transition::Retry,
            _ => {
                return Err(AppError::Conflict(format!(
                    "{} is {}; retry skipped messages when the pass has ended",
                    user.source_email,
                    user.state.label().to_lowercase()
                )));
            }
        };
        let mut retryable: Vec<FolderState> = Vec::new();
        for folder in self.deps.store.list_folders(user.id).await? {
            if self.has_retryable_skips(&folder).await? {
                retryable.push(folder);
            }
        }
        if retryable.is_empty() {
            return Err(AppError::Conflict(format!(
                "{} has no skipped message a retry could copy",
                user.source_email
            )));
        }
        let pass = match transition {
            Transition::Delta => user.pass + 1,
            _ => user.pass,
        };
        let count: u64 = retryable.iter().map(FolderState::skipped_total).sum();
        for folder in &retryable {
            let mut next = folder.clone();
            let target_uidvalidity = folder.copies.target_uidvalidity.unwrap_or(0);
            begin_rescan(&mut next, pass, target_uidvalidity);
            next.version = folder.version + 1;
            self.deps
                .store
                .put_folder(&next, Some(folder.version))
                .await?;
        }
        self.log_event(
            user,
            format!(
                "retrying the skipped messages of {} folder(s) ({count} skipped)",
                retryable.len()
            ),
        )
        .await;
        match transition {
            Transition::Delta => self.start_delta(user, PassReason::Admin).await,
            _ => self.schedule(user, transition, |_| {}).await,
        }
    }

    /// How many source messages of the pass are not on the target yet: each unfinished
    /// folder's current size (folders not examined yet included) less what was copied or
    /// skipped; `stored` more were stored by the chunk that found the target full.
    async fn messages_left(
        &self,
        s: &mut Sessions,
        user: &MailUser,
        current: &FolderState,
        stored: u64,
    ) -> Result<u64, AppError> {
        let mut left = 0u64;
        for f in self.deps.store.list_folders(user.id).await? {
            if f.pass != user.pass || f.done {
                continue;
            }
            let (copied, skipped) = if f.source_name == current.source_name {
                (current.copied_messages + stored, current.skipped_total())
            } else {
                (f.copied_messages, f.skipped_total())
            };
            // Gmail's All Mail counts what it adds (its planned figure), not what it shows.
            let all_mail =
                s.source_labels && f.special_use == Some(crate::mailbox::SpecialUse::All);
            let messages = if all_mail {
                f.source_messages
            } else {
                match s.source.examine(&f.source_name).await {
                    Ok(status) => u64::from(status.messages),
                    Err(_) => f.source_messages,
                }
            };
            left += messages.saturating_sub(copied + skipped);
        }
        Ok(left)
    }

    /// Moves the user to Completed when every folder of the pass is done, and tells the admin
    /// (and the user, when the project asks for it) that the data is ready to verify.
    pub(super) async fn complete_if_done(&self, id: UserId) -> Result<(), AppError> {
        let Some(user) = self.deps.store.get_user(id).await? else {
            return Ok(());
        };
        if user.state != UserState::Working {
            return Ok(());
        }
        let folders = self.deps.store.list_folders(id).await?;
        if folders.iter().any(|f| f.pass == user.pass && !f.done) {
            return Ok(());
        }
        let reason = user
            .sync
            .pass
            .as_ref()
            .filter(|i| i.pass == user.pass)
            .map(|i| i.reason);
        // The final pass cuts the user over; a pass after the cutover (mail that still reached
        // the old server) ends Cut over again, without a second mail.
        let first_cutover = reason == Some(PassReason::Cutover) && user.sync.cut_over_at.is_none();
        let cuts_over = first_cutover || user.sync.cut_over_at.is_some();
        let transition = if cuts_over {
            Transition::CutOver
        } else {
            Transition::Complete
        };
        let now = self.deps.clock.now();
        let completed = match self
            .transition(&user, transition, |u| {
                u.progress.throughput_bps = None;
                u.progress.eta_seconds = Some(0);
                u.sync.last = super::sync::summary_of(u, now).or(u.sync.last.take());
                u.sync.pass = None;
                u.sync.pass_ended_at = Some(now);
                if first_cutover {
                    u.sync.cut_over_at = Some(now);
                }
            })
            .await
        {
            Ok(u) => u,
            // Another worker finished the last folder at the same moment and completed the user.
            Err(AppError::Conflict(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let project = self.project(completed.project_id).await?;
        if first_cutover {
            self.send_cutover_mail(&project, &completed).await;
        }
        // Every delta pass says what it changed in the user's events (the console shows them);
        // only a pass someone asked for is announced by mail.
        if let Some(last) = completed
            .sync
            .last
            .as_ref()
            .filter(|l| l.pass == completed.pass)
        {
            self.log_event(
                &completed,
                format!(
                    "delta pass {} ({}) ended: {} new message(s), {} moved between folders, {} flag change(s), {} removed",
                    last.pass,
                    last.reason,
                    last.new_messages,
                    last.moved,
                    last.flag_changes,
                    last.removed
                ),
            )
            .await;
        }
        if !matches!(reason, None | Some(PassReason::Admin)) || cuts_over {
            return Ok(());
        }
        let skipped: u64 = folders.iter().map(FolderState::skipped_total).sum();
        let text = format!(
            "Pass {pass} of the mailbox move {src} → {tgt} is complete: {n} messages ({b} bytes) copied, {skipped} skipped.\n\n\
             Please check the new mailbox and the per-folder report, then mark it verified in the console.\n",
            pass = completed.pass,
            src = completed.source_email,
            tgt = completed.target_email,
            n = completed.progress.messages_done,
            b = completed.progress.bytes_done,
        );
        let mut recipients = Vec::new();
        if let Some(admin) = &project.admin_email {
            recipients.push((admin.clone(), String::new()));
        }
        if project.notify_user {
            recipients.push((
                completed.target_email.clone(),
                completed.display_name.clone(),
            ));
        }
        for (to, to_name) in recipients {
            let mail = OutgoingMail {
                to,
                to_name,
                subject: format!("Ready to verify: {}", completed.target_email),
                text: text.clone(),
            };
            if let Err(e) = self.deps.mailer.send(&mail).await {
                tracing::warn!(user = %completed.id, error = %e, "could not send the ready-to-verify mail");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod throttle_tests {
    use super::*;

    #[test]
    fn too_many_connections_waits_seconds_not_a_minute() {
        let dovecot = "the server rejected the login: [LIMIT] Maximum number of connections from user+IP exceeded (mail_max_userip_connections=2)";
        assert!(is_connection_limit(dovecot));
        assert!(is_connection_limit(
            "[ALERT] Too many simultaneous connections. (Failure)"
        ));
        assert_eq!(refusal_delay(dovecot, None), Duration::from_secs(5));
        assert_eq!(
            refusal_delay("[THROTTLED] slow down", None),
            Duration::from_secs(60)
        );
        assert_eq!(
            refusal_delay(dovecot, Some(Duration::from_secs(30))),
            Duration::from_secs(30),
            "a server's own hint wins"
        );
    }

    #[test]
    fn a_throttled_folder_waits_as_asked_within_bounds() {
        assert_eq!(throttle_delay(None), Duration::from_secs(60));
        assert_eq!(
            throttle_delay(Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert_eq!(throttle_delay(Some(Duration::ZERO)), Duration::from_secs(5));
        assert_eq!(
            throttle_delay(Some(Duration::from_secs(7200))),
            Duration::from_secs(900)
        );
        let e = mailbox_err(MailboxError::Throttled {
            message: "[UNAVAILABLE] try again in 30 seconds".into(),
            retry_after: Some(Duration::from_secs(30)),
        });
        assert!(matches!(
            e,
            AppError::Throttled {
                retry_after: Some(d),
                ..
            } if d == Duration::from_secs(30)
        ));
    }
}
