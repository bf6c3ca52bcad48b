//! The copy engine: `Plan` lists and maps a user's folders and fans out one `Copy` job per
//! folder; `Copy` streams one folder from source to target in chunks, checkpointing after each.
//!
//! Exactly once on the target, with at-least-once queues and crashes:
//! - a worker copies a folder only while it holds the folder's lease (a version-checked write,
//!   renewed at every checkpoint), so two deliveries of one job never append at the same time;
//! - before appending a chunk it records the chunk's source UID range and the target folder's
//!   UIDNEXT (`InFlight`); after the append it records the new `last_uid` and clears the mark;
//! - a resume that finds the mark compares the source messages of that range with the target
//!   messages at or above the recorded UIDNEXT (Message-ID, size and INTERNALDATE; a SHA-256 of
//!   the bytes for messages without Message-ID) as multisets, and appends only what is missing,
//!   so exact duplicates on the source stay duplicates on the target, once.
//!
//! The source is only ever EXAMINEd and read with BODY.PEEK: it is never modified.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use contract::UserState;
use contract::jobs::Job;
use sha2::{Digest, Sha256};

use crate::error::AppError;
use crate::mailbox::{
    AppendItem, AppendOutcome, FolderInfo, MailSession, MailboxError, MessageMeta,
};
use crate::model::*;
use crate::ports::OutgoingMail;
use crate::secret::Secret;
use crate::state::Transition;

use super::projects::{Side, admin_password_aad, login_for};
use super::{App, JobOutcome};

/// Why a copy job stopped early.
enum Stop {
    /// Another worker holds the folder or took it over: leave it to them.
    LeaseLost,
    /// The budget is nearly spent: a continuation was queued.
    OutOfTime,
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

/// How long a folder waits after the server throttled it: the server's hint when it gave one,
/// a minute otherwise, at least 5 s and at most 15 minutes (the longest SQS delivery delay).
pub(crate) fn throttle_delay(hint: Option<Duration>) -> Duration {
    hint.unwrap_or(Duration::from_secs(60))
        .clamp(Duration::from_secs(5), Duration::from_secs(900))
}

/// A `*` glob match on a folder name.
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let mut rest = name;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(pos) => rest = &rest[pos + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// The target name of a source folder: explicit map, then special-use role, then the same path
/// with the target's delimiter (a component containing the target delimiter gets `_` instead).
pub(crate) fn map_folder_name(
    options: &CopyOptions,
    source: &FolderInfo,
    target_folders: &[FolderInfo],
    target_delimiter: Option<char>,
) -> String {
    if let Some(m) = options.folder_map.iter().find(|m| m.from == source.name) {
        return m.to.clone();
    }
    if source.name.eq_ignore_ascii_case("INBOX") {
        return "INBOX".into();
    }
    if let Some(role) = source.special_use
        && let Some(t) = target_folders
            .iter()
            .find(|t| t.special_use == Some(role) && t.selectable)
    {
        return t.name.clone();
    }
    match (source.delimiter, target_delimiter) {
        (Some(sd), Some(td)) if sd != td => source
            .name
            .split(sd)
            .map(|part| part.replace(td, "_"))
            .collect::<Vec<_>>()
            .join(&td.to_string()),
        _ => source.name.clone(),
    }
}

/// Identity of a message for duplicate detection on resume.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum MessageKey {
    Id {
        message_id: String,
        size: u64,
        internaldate: i64,
    },
    Content {
        size: u64,
        internaldate: i64,
        sha256: [u8; 32],
    },
}

fn id_key(m: &MessageMeta) -> Option<MessageKey> {
    m.message_id.as_ref().map(|id| MessageKey::Id {
        message_id: id.clone(),
        size: m.size,
        internaldate: m.internaldate.unix_timestamp(),
    })
}

fn content_key(meta: &MessageMeta, body: &[u8]) -> MessageKey {
    MessageKey::Content {
        size: meta.size,
        internaldate: meta.internaldate.unix_timestamp(),
        sha256: Sha256::digest(body).into(),
    }
}

/// Both sessions of a copy job.
struct Sessions {
    source: Box<dyn MailSession>,
    target: Box<dyn MailSession>,
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
        let deadline = Instant::now() + budget - self.config.copy.budget_reserve.min(budget / 4);
        let result = match job {
            Job::Plan { .. } => self.plan(user).await,
            Job::Copy {
                folder, attempt, ..
            } => self.copy_folder(user, folder, *attempt, deadline).await,
        };
        match result {
            Err(AppError::Upstream(m)) if m.starts_with("the login was rejected") => {
                // Retrying cannot help until someone fixes the password: fail the user visibly.
                self.fail_user(user.id, m).await?;
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

    /// Opens logged-in sessions on both sides with the project's credentials for this user.
    async fn open_sessions(
        &self,
        project: &Project,
        user: &MailUser,
    ) -> Result<Sessions, AppError> {
        let creds = self.credentials(user.id).await?.unwrap_or_default();
        let timeout = self.config.copy.command_timeout;
        let mut sessions = Vec::with_capacity(2);
        for (side, connector, email, per_user) in [
            (
                Side::Source,
                &project.source,
                &user.source_email,
                creds.source_password.clone(),
            ),
            (
                Side::Target,
                &project.target,
                &user.target_email,
                creds.target_password.clone(),
            ),
        ] {
            let password = match &connector.auth {
                ConnectorAuth::Admin { password, .. } => {
                    let plain = self
                        .deps
                        .vault
                        .open(password, &admin_password_aad(project.id, side))
                        .await?;
                    Secret::new(String::from_utf8(plain).map_err(AppError::internal)?)
                }
                ConnectorAuth::PerUser => Secret::new(per_user.ok_or_else(|| {
                    AppError::Upstream(format!(
                        "the login was rejected: no {} password is stored",
                        side.as_str()
                    ))
                })?),
            };
            let login = login_for(connector, email);
            let session = self
                .deps
                .connector
                .open(&connector.endpoint(), &login, &password, timeout)
                .await
                .map_err(|e| match e {
                    MailboxError::Auth(m) => AppError::Upstream(format!(
                        "the login was rejected: {} server: {m}",
                        side.as_str()
                    )),
                    other => mailbox_err(other),
                })?;
            sessions.push(session);
        }
        let target = sessions
            .pop()
            .ok_or_else(|| AppError::internal("no target session"))?;
        let source = sessions
            .pop()
            .ok_or_else(|| AppError::internal("no source session"))?;
        Ok(Sessions { source, target })
    }

    /// Lists and maps the folders, creates them on the target, records a checkpoint per folder
    /// and queues one copy job per folder.
    async fn plan(&self, user: &MailUser) -> Result<JobOutcome, AppError> {
        let project = self.project(user.project_id).await?;
        let user = if user.state == UserState::Scheduled {
            self.transition(user, Transition::StartWork, |_| {}).await?
        } else {
            user.clone()
        };
        let mut s = self.open_sessions(&project, &user).await?;
        let outcome = self.plan_with(&project, &user, &mut s).await;
        s.close().await;
        outcome
    }

    async fn plan_with(
        &self,
        project: &Project,
        user: &MailUser,
        s: &mut Sessions,
    ) -> Result<JobOutcome, AppError> {
        let source_folders = s.source.list_folders().await.map_err(mailbox_err)?;
        let target_folders = s.target.list_folders().await.map_err(mailbox_err)?;
        let target_delimiter = target_folders.iter().find_map(|f| f.delimiter);
        let options = &project.copy;
        let mut jobs = Vec::new();
        let (mut total_messages, mut total_bytes) = (0u64, 0u64);
        let existing: HashMap<String, FolderState> = self
            .deps
            .store
            .list_folders(user.id)
            .await?
            .into_iter()
            .map(|f| (f.source_name.clone(), f))
            .collect();
        for folder in source_folders.iter().filter(|f| f.selectable) {
            let included = options.include.is_empty()
                || options.include.iter().any(|p| glob_match(p, &folder.name));
            if !included || options.exclude.iter().any(|p| glob_match(p, &folder.name)) {
                continue;
            }
            let target_name = map_folder_name(options, folder, &target_folders, target_delimiter);
            if !target_folders.iter().any(|t| t.name == target_name) {
                s.target
                    .create_folder(&target_name)
                    .await
                    .map_err(mailbox_err)?;
            }
            if folder.subscribed {
                s.target
                    .subscribe(&target_name)
                    .await
                    .map_err(mailbox_err)?;
            }
            let status = s.source.examine(&folder.name).await.map_err(mailbox_err)?;
            let metas = if status.messages == 0 {
                Vec::new()
            } else {
                s.source
                    .fetch_meta(1, u32::MAX)
                    .await
                    .map_err(mailbox_err)?
            };
            let prior = existing.get(&folder.name);
            let last_uid = prior
                .filter(|p| p.uidvalidity == Some(status.uidvalidity))
                .map_or(0, |p| p.last_uid);
            let pending: Vec<&MessageMeta> = metas.iter().filter(|m| m.uid > last_uid).collect();
            total_messages += pending.len() as u64;
            total_bytes += pending.iter().map(|m| m.size).sum::<u64>();
            let next = match prior {
                Some(p) => FolderState {
                    target_name: target_name.clone(),
                    pass: user.pass,
                    source_messages: metas.len() as u64,
                    source_bytes: metas.iter().map(|m| m.size).sum(),
                    done: false,
                    version: p.version + 1,
                    ..p.clone()
                },
                None => FolderState {
                    user_id: user.id,
                    source_name: folder.name.clone(),
                    target_name: target_name.clone(),
                    pass: user.pass,
                    uidvalidity: None,
                    last_uid: 0,
                    in_flight: None,
                    highest_modseq: None,
                    source_messages: metas.len() as u64,
                    source_bytes: metas.iter().map(|m| m.size).sum(),
                    copied_messages: 0,
                    copied_bytes: 0,
                    target_messages: None,
                    target_bytes: None,
                    skipped: Vec::new(),
                    done: false,
                    copies: CopyMap::default(),
                    lease_owner: None,
                    lease_until: None,
                    version: 1,
                },
            };
            // A redelivered plan may race a copy already running for this folder: only reset
            // `done` when nobody changed the checkpoint meanwhile.
            match self
                .deps
                .store
                .put_folder(&next, prior.map(|p| p.version))
                .await
            {
                Ok(())
                | Err(crate::error::StoreError::Conflict)
                | Err(crate::error::StoreError::AlreadyExists) => {}
                Err(e) => return Err(e.into()),
            }
            jobs.push(Job::Copy {
                user_id: user.id.0,
                pass: user.pass,
                folder: folder.name.clone(),
                attempt: 0,
            });
        }
        self.update_progress(user.id, |p| {
            p.messages_total = p.messages_done + total_messages;
            p.bytes_total = p.bytes_done + total_bytes;
        })
        .await?;
        self.log_event(
            user,
            format!(
                "pass {}: {} folders, {total_messages} messages, {total_bytes} bytes to copy",
                user.pass,
                jobs.len()
            ),
        )
        .await;
        if jobs.is_empty() {
            self.complete_if_done(user.id).await?;
            return Ok(JobOutcome::Done);
        }
        for batch in jobs.chunks(10) {
            self.deps.queue.send_batch(batch).await?;
        }
        Ok(JobOutcome::Done)
    }

    /// Applies `change` to the user's progress with a version-checked write, retrying on
    /// conflicts (several folders of one user report at once).
    async fn update_progress(
        &self,
        id: UserId,
        change: impl Fn(&mut contract::Progress),
    ) -> Result<(), AppError> {
        for _ in 0..20 {
            let Some(current) = self.deps.store.get_user(id).await? else {
                return Ok(());
            };
            let mut next = current.clone();
            change(&mut next.progress);
            if next.progress == current.progress {
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

    /// Takes (or renews) the folder's lease; `None` when another worker holds it.
    async fn lease(
        &self,
        folder: &FolderState,
        owner: &str,
    ) -> Result<Option<FolderState>, AppError> {
        let now = self.deps.clock.now();
        let held_by_other = folder.lease_owner.as_deref().is_some_and(|o| o != owner)
            && folder.lease_until.is_some_and(|until| until > now);
        if held_by_other {
            return Ok(None);
        }
        let mut next = folder.clone();
        next.lease_owner = Some(owner.to_owned());
        next.lease_until = Some(now + self.config.copy.lease_ttl);
        next.version = folder.version + 1;
        match self
            .deps
            .store
            .put_folder(&next, Some(folder.version))
            .await
        {
            Ok(()) => Ok(Some(next)),
            Err(crate::error::StoreError::Conflict) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes a checkpoint, renewing the lease; `Err(Stop::LeaseLost)` when someone else wrote.
    async fn checkpoint(
        &self,
        folder: &mut FolderState,
        change: impl FnOnce(&mut FolderState),
    ) -> Result<Result<(), Stop>, AppError> {
        let mut next = folder.clone();
        change(&mut next);
        next.lease_until = Some(self.deps.clock.now() + self.config.copy.lease_ttl);
        next.version = folder.version + 1;
        match self
            .deps
            .store
            .put_folder(&next, Some(folder.version))
            .await
        {
            Ok(()) => {
                *folder = next;
                Ok(Ok(()))
            }
            Err(crate::error::StoreError::Conflict) => Ok(Err(Stop::LeaseLost)),
            Err(e) => Err(e.into()),
        }
    }

    async fn copy_folder(
        &self,
        user: &MailUser,
        source_name: &str,
        attempt: u32,
        deadline: Instant,
    ) -> Result<JobOutcome, AppError> {
        let Some(folder) = self.deps.store.get_folder(user.id, source_name).await? else {
            tracing::warn!(user = %user.id, folder = source_name, "copy job for a folder that was never planned");
            return Ok(JobOutcome::Done);
        };
        if folder.done && folder.pass == user.pass {
            return Ok(JobOutcome::Done);
        }
        let owner = crate::token::generate();
        let Some(mut folder) = self.lease(&folder, &owner).await? else {
            let wait = folder
                .lease_until
                .map(|u| (u - self.deps.clock.now()).unsigned_abs())
                .unwrap_or(Duration::from_secs(5));
            return Ok(JobOutcome::RetryLater {
                after: wait.max(Duration::from_secs(1)),
                reason: "another worker holds this folder".into(),
            });
        };
        let project = self.project(user.project_id).await?;
        let mut s = match self.open_sessions(&project, user).await {
            Ok(s) => s,
            Err(AppError::Throttled {
                message,
                retry_after,
            }) => {
                self.release_lease(&mut folder).await;
                return self
                    .continue_after_throttling(user, source_name, attempt, &message, retry_after)
                    .await;
            }
            Err(e) => {
                self.release_lease(&mut folder).await;
                return Err(e);
            }
        };
        let result = self
            .copy_with(&project, user, &mut folder, &mut s, deadline)
            .await;
        s.close().await;
        match result {
            Ok(Ok(())) => {
                self.complete_if_done(user.id).await?;
                Ok(JobOutcome::Done)
            }
            Ok(Err(Stop::LeaseLost)) => Ok(JobOutcome::Done),
            Ok(Err(Stop::OutOfTime)) => {
                self.release_lease(&mut folder).await;
                let next = Job::Copy {
                    user_id: user.id.0,
                    pass: user.pass,
                    folder: source_name.to_owned(),
                    attempt: attempt + 1,
                };
                self.deps.queue.send(&next, Duration::ZERO).await?;
                Ok(JobOutcome::Done)
            }
            Err(AppError::Throttled {
                message,
                retry_after,
            }) => {
                self.release_lease(&mut folder).await;
                self.continue_after_throttling(user, source_name, attempt, &message, retry_after)
                    .await
            }
            Err(e) => {
                self.release_lease(&mut folder).await;
                if let AppError::Upstream(m) = &e {
                    let _ = self
                        .set_last_error(user.id, format!("{source_name}: {m} (retrying)"))
                        .await;
                }
                Err(e)
            }
        }
    }

    /// The server asked us to slow down: the folder continues after the delay it asked for,
    /// as a new delivery, so throttling never counts toward the dead-letter limit.
    async fn continue_after_throttling(
        &self,
        user: &MailUser,
        source_name: &str,
        attempt: u32,
        message: &str,
        retry_after: Option<Duration>,
    ) -> Result<JobOutcome, AppError> {
        let delay = throttle_delay(retry_after);
        let _ = self
            .set_last_error(
                user.id,
                format!(
                    "{source_name}: {message}; continuing in {} s",
                    delay.as_secs()
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

    async fn set_last_error(&self, id: UserId, message: String) -> Result<(), AppError> {
        let Some(current) = self.deps.store.get_user(id).await? else {
            return Ok(());
        };
        let mut next = current.clone();
        next.last_error = Some(message);
        next.version = current.version + 1;
        next.updated_at = self.deps.clock.now();
        let _ = self.deps.store.update_user(&next, current.version).await;
        Ok(())
    }

    async fn release_lease(&self, folder: &mut FolderState) {
        let _ = self
            .checkpoint(folder, |f| {
                f.lease_owner = None;
            })
            .await
            .map(|_| ());
        folder.lease_until = None;
    }

    async fn copy_with(
        &self,
        project: &Project,
        user: &MailUser,
        folder: &mut FolderState,
        s: &mut Sessions,
        deadline: Instant,
    ) -> Result<Result<(), Stop>, AppError> {
        let status = match s.source.examine(&folder.source_name).await {
            Ok(st) => st,
            Err(MailboxError::FolderNotFound(_)) => {
                // Deleted at the source since planning: nothing left to copy.
                return self
                    .checkpoint(folder, |f| {
                        f.done = true;
                        f.lease_owner = None;
                    })
                    .await;
            }
            Err(e) => return Err(mailbox_err(e)),
        };
        if folder.uidvalidity.is_some_and(|v| v != status.uidvalidity) {
            // The source renumbered the folder: compare everything with the target again, so
            // nothing is copied twice and nothing is missed.
            self.log_event(
                user,
                format!(
                    "{}: UIDVALIDITY changed; rescanning with duplicate check",
                    folder.source_name
                ),
            )
            .await;
            let target_status = s
                .target
                .select(&folder.target_name)
                .await
                .map_err(mailbox_err)?;
            let stop = self
                .checkpoint(folder, |f| {
                    f.uidvalidity = Some(status.uidvalidity);
                    f.last_uid = 0;
                    f.in_flight = Some(InFlight {
                        to_uid: u32::MAX,
                        target_uidvalidity: target_status.uidvalidity,
                        target_uidnext: 1,
                    });
                })
                .await?;
            if stop.is_err() {
                return Ok(stop);
            }
        } else if folder.uidvalidity.is_none()
            && let Err(stop) = self
                .checkpoint(folder, |f| f.uidvalidity = Some(status.uidvalidity))
                .await?
        {
            return Ok(Err(stop));
        }
        let previous_modseq = folder.highest_modseq;

        let metas: Vec<MessageMeta> = if status.messages == 0 {
            Vec::new()
        } else {
            s.source
                .fetch_meta(folder.last_uid.saturating_add(1), u32::MAX)
                .await
                .map_err(mailbox_err)?
        };
        let mut metas: Vec<MessageMeta> = metas
            .into_iter()
            .filter(|m| m.uid > folder.last_uid)
            .collect();
        metas.sort_by_key(|m| m.uid);

        // A crash between append and checkpoint: keep only what the target does not have yet.
        // The recorded range is processed again as one chunk under the same mark, so the target
        // range it is compared with holds copies of exactly that source range (plus, at most,
        // mail delivered to the target meanwhile, which matches nothing). A UIDVALIDITY rescan
        // (`to_uid == u32::MAX`) compares the whole folder and keeps its mark until the end.
        let recovery = folder.in_flight;
        let rescan = recovery.is_some_and(|r| r.to_uid == u32::MAX);
        let mut already_there: std::collections::HashSet<u32> = std::collections::HashSet::new();
        if let Some(in_flight) = recovery {
            let target_status = s
                .target
                .select(&folder.target_name)
                .await
                .map_err(mailbox_err)?;
            let from = if target_status.uidvalidity == in_flight.target_uidvalidity {
                in_flight.target_uidnext
            } else {
                1
            };
            let range: Vec<&MessageMeta> =
                metas.iter().filter(|m| m.uid <= in_flight.to_uid).collect();
            let found = self.match_on_target(s, &range, from).await?;
            for uid in &found {
                already_there.insert(*uid);
            }
            tracing::info!(user = %user.id, folder = %folder.source_name, in_range = range.len(), found = found.len(), "resumed an unfinished append");
            if rescan
                && let Err(stop) = self
                    .checkpoint(folder, |f| {
                        f.copied_messages = 0;
                        f.copied_bytes = 0;
                    })
                    .await?
            {
                return Ok(Err(stop));
            }
        }

        let options = &project.copy;
        let mut chunks: Vec<&[MessageMeta]> = Vec::new();
        let mut rest: &[MessageMeta] = &metas;
        if let Some(r) = recovery.filter(|_| !rescan) {
            let n = metas.iter().take_while(|m| m.uid <= r.to_uid).count();
            if n > 0 {
                chunks.push(&metas[..n]);
            }
            rest = &metas[n..];
        }
        chunks.extend(chunk(
            rest,
            self.config.copy.chunk_messages,
            self.config.copy.chunk_bytes,
        ));
        let mut window_start = Instant::now();
        let mut window_bytes = 0u64;
        for (index, chunk) in chunks.into_iter().enumerate() {
            if Instant::now() >= deadline {
                return Ok(Err(Stop::OutOfTime));
            }
            let last = chunk.last().map_or(folder.last_uid, |m| m.uid);
            let mut skipped = Vec::new();
            let mut wanted = Vec::new();
            let mut present = 0u64;
            let mut present_bytes = 0u64;
            for m in chunk {
                if already_there.contains(&m.uid) {
                    present += 1;
                    present_bytes += m.size;
                } else if options.max_message_bytes.is_some_and(|max| m.size > max) {
                    skipped.push(contract::SkippedItem {
                        uid: m.uid,
                        size: m.size,
                        reason: "larger than the project's maximum message size".into(),
                    });
                } else if options.since.is_some_and(|t| m.internaldate < t)
                    || options.before.is_some_and(|t| m.internaldate >= t)
                {
                    skipped.push(contract::SkippedItem {
                        uid: m.uid,
                        size: m.size,
                        reason: "outside the project's date range".into(),
                    });
                } else {
                    wanted.push(m.uid);
                }
            }
            let mut appended = 0u64;
            let mut appended_bytes = 0u64;
            // (source UID, target UID) of this chunk's appends, and the target's UIDVALIDITY.
            let mut new_copies: Vec<(u32, u32)> = Vec::new();
            let mut copies_uidvalidity = None;
            if !wanted.is_empty() {
                let mark = match recovery {
                    Some(r) if rescan || index == 0 => r,
                    _ => {
                        let t = s
                            .target
                            .select(&folder.target_name)
                            .await
                            .map_err(mailbox_err)?;
                        InFlight {
                            to_uid: last,
                            target_uidvalidity: t.uidvalidity,
                            target_uidnext: t.uidnext,
                        }
                    }
                };
                copies_uidvalidity = Some(mark.target_uidvalidity);
                if folder.in_flight != Some(mark)
                    && let Err(stop) = self
                        .checkpoint(folder, |f| f.in_flight = Some(mark))
                        .await?
                {
                    return Ok(Err(stop));
                }
                // Hold the chunk's bytes against the process-wide memory budget while they are
                // fetched and appended; a chunk over the budget waits until it can run alone.
                let chunk_kib: u64 = chunk
                    .iter()
                    .filter(|m| wanted.contains(&m.uid))
                    .map(|m| m.size / 1024 + 1)
                    .sum();
                let budget_kib = (self.config.copy.memory_budget_bytes / 1024).max(1);
                let _memory = self
                    .copy_memory
                    .clone()
                    .acquire_many_owned(chunk_kib.min(budget_kib) as u32)
                    .await
                    .map_err(AppError::internal)?;
                let mut fetched: Vec<MessageMeta> = Vec::with_capacity(wanted.len());
                let mut items: Vec<AppendItem> = Vec::with_capacity(wanted.len());
                s.source
                    .fetch_bodies(&wanted, &mut |m| {
                        items.push(AppendItem {
                            body: m.body,
                            flags: m.meta.flags.clone(),
                            internaldate: m.meta.internaldate,
                        });
                        fetched.push(m.meta);
                        Ok(())
                    })
                    .await
                    .map_err(mailbox_err)?;
                let outcomes = s
                    .target
                    .append(&folder.target_name, items)
                    .await
                    .map_err(mailbox_err)?;
                for (m, outcome) in fetched.iter().zip(outcomes) {
                    match outcome {
                        AppendOutcome::Appended { uid } => {
                            appended += 1;
                            appended_bytes += m.size;
                            if let Some(t) = uid {
                                new_copies.push((m.uid, t));
                            }
                        }
                        AppendOutcome::Rejected { reason } => {
                            skipped.push(contract::SkippedItem {
                                uid: m.uid,
                                size: m.size,
                                reason: format!("the target refused it: {reason}"),
                            });
                        }
                    }
                }
                // Messages that vanished from the source between listing and fetching are
                // neither copied nor skipped: they no longer exist.
            }
            let done_in_chunk = appended + present;
            let bytes_in_chunk = appended_bytes + present_bytes;
            let skipped_count = skipped.len() as u64;
            if let Err(stop) = self
                .checkpoint(folder, |f| {
                    if !rescan {
                        f.last_uid = last;
                        f.in_flight = None;
                    }
                    f.copied_messages += done_in_chunk;
                    f.copied_bytes += bytes_in_chunk;
                    f.skipped.extend(skipped);
                    if let Some(uidvalidity) = copies_uidvalidity {
                        for &(source, target) in &new_copies {
                            f.copies.record(source, target, uidvalidity);
                        }
                    }
                })
                .await?
            {
                return Ok(Err(stop));
            }
            window_bytes += bytes_in_chunk;
            let elapsed = window_start.elapsed().as_secs_f64().max(0.001);
            let throughput = window_bytes as f64 / elapsed;
            if elapsed > 30.0 {
                window_start = Instant::now();
                window_bytes = 0;
            }
            self.update_progress(user.id, |p| {
                p.messages_done += done_in_chunk;
                p.bytes_done += bytes_in_chunk;
                p.skipped += skipped_count;
                p.throughput_bps = Some(throughput);
                p.eta_seconds = (throughput > 0.0).then(|| {
                    (p.bytes_total.saturating_sub(p.bytes_done) as f64 / throughput) as u64
                });
            })
            .await?;
        }
        let max_uid = metas.last().map(|m| m.uid);
        if rescan
            && let Err(stop) = self
                .checkpoint(folder, |f| {
                    f.last_uid = max_uid.unwrap_or(0);
                    f.in_flight = None;
                })
                .await?
        {
            return Ok(Err(stop));
        }

        // Delta passes: carry flag changes of messages copied in earlier passes.
        if let (Some(since), Some(_)) = (previous_modseq, status.highest_modseq)
            && user.pass > 1
        {
            self.sync_flags(s, folder, since).await?;
        }
        if options.deleted_at_source == contract::DeletedAtSource::Remove
            && user.pass > 1
            && !folder.copies.is_empty()
            && let Err(stop) = self.remove_deleted_at_source(s, user, folder).await?
        {
            return Ok(Err(stop));
        }

        // Verification figures of the target folder, then the folder is done.
        let target_status = s
            .target
            .select(&folder.target_name)
            .await
            .map_err(mailbox_err)?;
        let target_bytes = if target_status.messages == 0 {
            0
        } else {
            s.target
                .fetch_meta(1, u32::MAX)
                .await
                .map_err(mailbox_err)?
                .iter()
                .map(|m| m.size)
                .sum()
        };
        let highest = status.highest_modseq;
        self.checkpoint(folder, |f| {
            f.done = true;
            f.in_flight = None;
            f.highest_modseq = highest;
            f.target_messages = Some(target_status.messages as u64);
            f.target_bytes = Some(target_bytes);
            f.lease_owner = None;
        })
        .await
    }

    /// Which of `range` (source messages) are already on the target at UIDs ≥ `from`.
    async fn match_on_target(
        &self,
        s: &mut Sessions,
        range: &[&MessageMeta],
        from: u32,
    ) -> Result<Vec<u32>, AppError> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let target = s
            .target
            .fetch_meta(from, u32::MAX)
            .await
            .map_err(mailbox_err)?;
        let target: Vec<MessageMeta> = target.into_iter().filter(|m| m.uid >= from).collect();
        let mut available: HashMap<MessageKey, usize> = HashMap::new();
        let mut target_without_id = Vec::new();
        for t in &target {
            match id_key(t) {
                Some(k) => *available.entry(k).or_default() += 1,
                None => target_without_id.push(t.uid),
            }
        }
        // Messages without Message-ID are compared by content: fetch those bytes on both sides.
        let source_without_id: Vec<u32> = range
            .iter()
            .filter(|m| m.message_id.is_none())
            .map(|m| m.uid)
            .collect();
        let mut source_content: HashMap<u32, MessageKey> = HashMap::new();
        if !source_without_id.is_empty() && !target_without_id.is_empty() {
            let mut keys = Vec::new();
            s.target
                .fetch_bodies(&target_without_id, &mut |m| {
                    keys.push(content_key(&m.meta, &m.body));
                    Ok(())
                })
                .await
                .map_err(mailbox_err)?;
            for k in keys {
                *available.entry(k).or_default() += 1;
            }
            s.source
                .fetch_bodies(&source_without_id, &mut |m| {
                    source_content.insert(m.meta.uid, content_key(&m.meta, &m.body));
                    Ok(())
                })
                .await
                .map_err(mailbox_err)?;
        }
        let mut found = Vec::new();
        for m in range {
            let key = match id_key(m) {
                Some(k) => Some(k),
                None => source_content.get(&m.uid).cloned(),
            };
            if let Some(k) = key
                && let Some(n) = available.get_mut(&k)
                && *n > 0
            {
                *n -= 1;
                found.push(m.uid);
            }
        }
        Ok(found)
    }

    /// Removes from the target the copies of messages deleted at the source since they were
    /// copied: the source UIDs in the folder's copy map that the source no longer has. Only
    /// copies this engine made and whose target UID it was told are candidates, so mail that
    /// reached the target another way (new mail after the MX switch) is never touched. A
    /// target whose UIDVALIDITY changed since makes the map meaningless: nothing is removed.
    async fn remove_deleted_at_source(
        &self,
        s: &mut Sessions,
        user: &MailUser,
        folder: &mut FolderState,
    ) -> Result<Result<(), Stop>, AppError> {
        let present: std::collections::HashSet<u32> = s
            .source
            .all_uids()
            .await
            .map_err(mailbox_err)?
            .into_iter()
            .collect();
        let gone: Vec<(u32, u32)> = folder
            .copies
            .pairs()
            .filter(|(source, _)| !present.contains(source))
            .collect();
        if gone.is_empty() {
            return Ok(Ok(()));
        }
        let target = s
            .target
            .select(&folder.target_name)
            .await
            .map_err(mailbox_err)?;
        let removed = if folder.copies.target_uidvalidity == Some(target.uidvalidity) {
            let uids: Vec<u32> = gone.iter().map(|&(_, t)| t).collect();
            s.target.delete(&uids).await.map_err(mailbox_err)?
        } else {
            0
        };
        let sources: std::collections::HashSet<u32> = gone.iter().map(|&(s, _)| s).collect();
        let stop = self
            .checkpoint(folder, |f| f.copies.forget(&sources))
            .await?;
        if removed > 0 {
            self.log_event(
                user,
                format!(
                    "{}: removed {removed} message(s) deleted at the source",
                    folder.source_name
                ),
            )
            .await;
        }
        Ok(stop)
    }

    /// Copies flag changes made at the source since `since` onto the matching target messages.
    async fn sync_flags(
        &self,
        s: &mut Sessions,
        folder: &FolderState,
        since: u64,
    ) -> Result<(), AppError> {
        let changed = s
            .source
            .fetch_changed_since(since)
            .await
            .map_err(mailbox_err)?;
        let changed: Vec<MessageMeta> = changed
            .into_iter()
            .filter(|m| m.uid <= folder.last_uid)
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        s.target
            .select(&folder.target_name)
            .await
            .map_err(mailbox_err)?;
        for m in changed {
            let Some(id) = &m.message_id else { continue };
            let candidates = s.target.find_by_message_id(id).await.map_err(mailbox_err)?;
            if let Some(t) = candidates.iter().find(|t| {
                t.size == m.size
                    && t.internaldate.unix_timestamp() == m.internaldate.unix_timestamp()
            }) {
                let mut want = m.flags.clone();
                want.sort();
                let mut have = t.flags.clone();
                have.sort();
                if want != have {
                    s.target
                        .set_flags(t.uid, &m.flags)
                        .await
                        .map_err(mailbox_err)?;
                }
            }
        }
        Ok(())
    }

    /// Moves the user to Completed when every folder of the pass is done, and tells the admin
    /// (and the user, when the project asks for it) that the data is ready to verify.
    async fn complete_if_done(&self, id: UserId) -> Result<(), AppError> {
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
        let completed = match self
            .transition(&user, Transition::Complete, |u| {
                u.progress.throughput_bps = None;
                u.progress.eta_seconds = Some(0);
            })
            .await
        {
            Ok(u) => u,
            // Another worker finished the last folder at the same moment and completed the user.
            Err(AppError::Conflict(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let project = self.project(completed.project_id).await?;
        let skipped: u64 = folders.iter().map(|f| f.skipped.len() as u64).sum();
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

/// Splits metas into chunks of at most `max_messages` and `max_bytes` (a larger message is a
/// chunk of its own).
fn chunk(metas: &[MessageMeta], max_messages: usize, max_bytes: u64) -> Vec<&[MessageMeta]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0u64;
    for (i, m) in metas.iter().enumerate() {
        let count = i - start;
        if count > 0 && (count >= max_messages || bytes + m.size > max_bytes) {
            out.push(&metas[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += m.size;
    }
    if start < metas.len() {
        out.push(&metas[start..]);
    }
    out
}

#[cfg(test)]
mod throttle_tests {
    use super::*;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::SpecialUse;

    fn folder(name: &str, delimiter: char, special_use: Option<SpecialUse>) -> FolderInfo {
        FolderInfo {
            name: name.into(),
            delimiter: Some(delimiter),
            special_use,
            selectable: true,
            subscribed: true,
        }
    }

    #[test]
    fn globs_match_like_shell_stars() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("Archive/*", "Archive/2020"));
        assert!(!glob_match("Archive/*", "Archived"));
        assert!(glob_match("*Junk*", "Old Junk mail"));
        assert!(glob_match("INBOX", "INBOX"));
        assert!(!glob_match("INBOX", "INBOX/x"));
    }

    #[test]
    fn folder_names_follow_map_then_role_then_delimiter() {
        let target = vec![
            folder("Sent Items", '.', Some(SpecialUse::Sent)),
            folder("INBOX", '.', None),
        ];
        let options = CopyOptions {
            folder_map: vec![FolderMapping {
                from: "Old/Stuff".into(),
                to: "Archive.Stuff".into(),
            }],
            ..Default::default()
        };
        assert_eq!(
            map_folder_name(
                &options,
                &folder("Old/Stuff", '/', None),
                &target,
                Some('.')
            ),
            "Archive.Stuff"
        );
        assert_eq!(
            map_folder_name(
                &options,
                &folder("Sent", '/', Some(SpecialUse::Sent)),
                &target,
                Some('.')
            ),
            "Sent Items"
        );
        assert_eq!(
            map_folder_name(&options, &folder("inbox", '/', None), &target, Some('.')),
            "INBOX"
        );
        assert_eq!(
            map_folder_name(
                &options,
                &folder("Projects/v1.2/Ärger", '/', None),
                &target,
                Some('.')
            ),
            "Projects.v1_2.Ärger"
        );
    }

    #[test]
    fn chunks_respect_count_and_bytes() {
        let meta = |uid, size| MessageMeta {
            uid,
            size,
            flags: vec![],
            internaldate: time::OffsetDateTime::UNIX_EPOCH,
            modseq: None,
            message_id: None,
        };
        let metas = vec![
            meta(1, 10),
            meta(2, 10),
            meta(3, 100),
            meta(4, 10),
            meta(5, 10),
        ];
        let c = chunk(&metas, 2, 50);
        let uids: Vec<Vec<u32>> = c
            .iter()
            .map(|c| c.iter().map(|m| m.uid).collect())
            .collect();
        assert_eq!(uids, vec![vec![1, 2], vec![3], vec![4, 5]]);
        assert!(chunk(&[], 2, 50).is_empty());
    }
}
