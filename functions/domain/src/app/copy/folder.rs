//! Copying one folder under its lease, in chunks: each chunk is marked in flight (its source
//! UID range and the target's UIDNEXT) before its APPEND and checkpointed after, so an
//! attempt that stops anywhere — crash, timeout, throttling, a full target — is resumed by
//! finding on the target what it stored (`recovery.rs`) and appending only the rest.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use contract::jobs::Job;
use contract::{SkipCause, SkippedItem};

use crate::error::AppError;
use crate::mailbox::{AppendItem, MailboxError, MessageMeta};
use crate::model::*;

use super::decide::{self, Settled};
use super::{App, JobOutcome, Sessions, Stop, mailbox_err};

/// Puts a folder into a rescan: the whole source folder is compared with the whole target
/// folder by identity (`recover` then rebuilds the copy map, the skipped list and the counts),
/// and the pass removes nothing. Used when the source renumbered the folder and when the admin
/// retries skipped messages.
pub(crate) fn begin_rescan(f: &mut FolderState, pass: u32, target_uidvalidity: u32) {
    f.last_uid = 0;
    f.in_flight = Some(InFlight {
        to_uid: u32::MAX,
        target_uidvalidity,
        target_uidnext: 1,
    });
    f.map_rebuilt_in_pass = Some(pass);
    // Planned again: the target folder may need creating (a retry after a refused CREATE).
    f.planned_in_pass = None;
    f.done = false;
}

fn is_rescan(mark: Option<InFlight>) -> bool {
    mark.is_some_and(|r| r.to_uid == u32::MAX)
}

/// What every chunk of one copy attempt shares.
struct Attempt<'a> {
    options: &'a CopyOptions,
    /// Source UIDs whose copy an interrupted attempt already made.
    already_there: &'a HashSet<u32>,
    rescan: bool,
    deadline: Instant,
}

/// What one chunk added.
#[derive(Default)]
struct ChunkDone {
    messages: u64,
    bytes: u64,
    skipped: u64,
}

impl App {
    /// Takes (or renews) the folder's lease; `None` when another worker holds it.
    pub(super) async fn lease(
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
        self.put_renewed(folder, next).await
    }

    /// Writes `next` over `folder` with the lease renewed, if nobody wrote it meanwhile.
    async fn put_renewed(
        &self,
        folder: &FolderState,
        mut next: FolderState,
    ) -> Result<Option<FolderState>, AppError> {
        next.lease_until = Some(self.deps.clock.now() + self.config.copy.lease_ttl);
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

    /// Runs `work` (mail server I/O that does not touch the checkpoint) while renewing the
    /// folder's lease every third of its term, so a long chunk never outlives its lease and a
    /// second worker never takes the folder over while this one still appends. Stops `work`
    /// where it is when the lease is lost or the deadline passes: what it stored is found by
    /// the next attempt through the in-flight mark.
    async fn while_leased<T>(
        &self,
        folder: &mut FolderState,
        deadline: Option<Instant>,
        work: impl std::future::Future<Output = Result<T, AppError>>,
    ) -> Result<Result<T, Stop>, AppError> {
        let mut work = std::pin::pin!(work);
        let renew_every = (self.config.copy.lease_ttl / 3).max(Duration::from_millis(10));
        let deadline = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let mut deadline = std::pin::pin!(deadline);
        loop {
            tokio::select! {
                done = &mut work => return done.map(Ok),
                () = &mut deadline => return Ok(Err(Stop::OutOfTime)),
                () = tokio::time::sleep(renew_every) => {
                    if let Err(stop) = self.checkpoint(folder, |_| {}).await? {
                        return Ok(Err(stop));
                    }
                }
            }
        }
    }

    /// Writes a checkpoint, renewing the lease; `Err(Stop::LeaseLost)` when someone else wrote.
    pub(super) async fn checkpoint(
        &self,
        folder: &mut FolderState,
        change: impl FnOnce(&mut FolderState),
    ) -> Result<Result<(), Stop>, AppError> {
        let mut next = folder.clone();
        change(&mut next);
        Ok(match self.put_renewed(folder, next).await? {
            Some(next) => {
                *folder = next;
                Ok(())
            }
            None => Err(Stop::LeaseLost),
        })
    }

    pub(super) async fn copy_folder(
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
        if folder.shares_target
            && let Some(before) = self.sharing_folder(user, &folder, true).await?
        {
            // It queues this folder's job when it is done.
            tracing::info!(user = %user.id, folder = source_name, waits_for = %before, "waits for a folder copying into the same target folder");
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
        if !folder.skipped.is_empty() {
            // A checkpoint from before skipped items were kept apart: move them out.
            let inline = folder.skipped.clone();
            self.keep_skipped(&folder, &inline).await?;
            if self
                .checkpoint(&mut folder, |f| {
                    f.skipped_count += inline.len() as u64;
                    f.skipped.clear();
                })
                .await?
                .is_err()
            {
                return Ok(JobOutcome::Done);
            }
        }
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
        let mut result = self
            .copy_with(&project, user, &mut folder, &mut s, deadline)
            .await;
        if let Ok(Err(Stop::TargetFull(_, ref mut left))) = result {
            // Counted while the source session is open: the stored count becomes what is left.
            *left = self.messages_left(&mut s, user, &folder, *left).await?;
        }
        s.close().await;
        match result {
            Ok(Ok(())) => {
                if folder.shares_target
                    && let Some(next) = self.sharing_folder(user, &folder, false).await?
                {
                    let job = Job::Copy {
                        user_id: user.id.0,
                        pass: user.pass,
                        folder: next,
                        attempt: 0,
                    };
                    self.deps.queue.send(&job, Duration::ZERO).await?;
                }
                self.complete_if_done(user.id).await?;
                Ok(JobOutcome::Done)
            }
            Ok(Err(Stop::LeaseLost)) => Ok(JobOutcome::Done),
            Ok(Err(Stop::TargetFull(reason, left))) => {
                // Nothing more fits: stop the user in a state the admin can act on. The chunk's
                // in-flight mark stays, so the admin's Retry resumes exactly here.
                self.release_lease(&mut folder).await;
                self.stop_for_full_target(user, &reason, left).await?;
                Ok(JobOutcome::Done)
            }
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

    /// The nearest source folder of this pass, not done yet, that copies into the same target
    /// folder, before (`earlier`) or after this one in source-name order. Two folders never
    /// append into one target folder at once: each would take the other's appends for its own
    /// copies when it resumes.
    async fn sharing_folder(
        &self,
        user: &MailUser,
        folder: &FolderState,
        earlier: bool,
    ) -> Result<Option<String>, AppError> {
        let sharing = self
            .deps
            .store
            .list_folders(user.id)
            .await?
            .into_iter()
            .filter(|f| f.target_name == folder.target_name && f.pass == user.pass && !f.done)
            .map(|f| f.source_name)
            .filter(|name| {
                if earlier {
                    *name < folder.source_name
                } else {
                    *name > folder.source_name
                }
            });
        Ok(if earlier {
            sharing.max()
        } else {
            sharing.min()
        })
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

    /// Copies what is left of the folder, then carries flag changes and removals (delta passes)
    /// and records the verification figures.
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
            // nothing is copied twice or missed, and rebuild the copy map by identity (its old
            // source UIDs mean nothing now).
            self.log_event(
                user,
                format!(
                    "{}: UIDVALIDITY changed; rescanning with duplicate check",
                    folder.source_name
                ),
            )
            .await;
            let target = s
                .target
                .select(&folder.target_name)
                .await
                .map_err(mailbox_err)?;
            let pass = user.pass;
            let stop = self
                .checkpoint(folder, |f| {
                    f.uidvalidity = Some(status.uidvalidity);
                    begin_rescan(f, pass, target.uidvalidity);
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
        // The pass's first job on the folder reads all of it (for the verification figures and
        // the user's totals); a continuation reads only what is left.
        let planning = folder.planned_in_pass != Some(user.pass);
        let from = if planning {
            1
        } else {
            folder.last_uid.saturating_add(1)
        };
        let mut metas: Vec<MessageMeta> = if status.messages == 0 {
            Vec::new()
        } else {
            s.source
                .fetch_meta(from, u32::MAX)
                .await
                .map_err(mailbox_err)?
        };
        metas.sort_by_key(|m| m.uid);
        if planning {
            match self.plan_folder(s, user, folder, &metas).await? {
                Ok(true) => {}
                Ok(false) => return Ok(Ok(())),
                Err(stop) => return Ok(Err(stop)),
            }
        }
        metas.retain(|m| m.uid > folder.last_uid);

        let recovery = folder.in_flight;
        let already_there = match recovery {
            Some(mark) => match self.recover(s, user, folder, &metas, mark).await? {
                Ok(found) => found,
                Err(stop) => return Ok(Err(stop)),
            },
            None => HashSet::new(),
        };
        if let Err(stop) = self
            .copy_chunks(project, user, folder, s, &metas, &already_there, deadline)
            .await?
        {
            return Ok(Err(stop));
        }
        if is_rescan(recovery) {
            let max_uid = metas.last().map_or(0, |m| m.uid);
            if let Err(stop) = self
                .checkpoint(folder, |f| {
                    f.last_uid = max_uid;
                    f.in_flight = None;
                })
                .await?
            {
                return Ok(Err(stop));
            }
        }

        // Delta passes: carry flag changes of messages copied in earlier passes, and remove
        // copies of messages deleted at the source when the project asks for it — never in a
        // pass that had to rebuild the copy map.
        if let (Some(since), Some(_)) = (previous_modseq, status.highest_modseq)
            && user.pass > 1
        {
            self.sync_flags(s, folder, since).await?;
        }
        if project.copy.deleted_at_source == contract::DeletedAtSource::Remove
            && user.pass > 1
            && folder.map_rebuilt_in_pass != Some(user.pass)
            && !folder.copies.is_empty()
            && let Err(stop) = self.remove_deleted_at_source(s, user, folder).await?
        {
            return Ok(Err(stop));
        }
        self.finish_folder(s, folder, status.highest_modseq).await
    }

    /// The pass's first look at a folder: its target folder is created when missing (and
    /// subscribed like the source's), and what is left to copy is added to the user's totals.
    /// A target that refuses the folder fails this folder only: its messages are listed as
    /// skipped with the server's words, and the other folders go on. `Ok(false)`: nothing to
    /// copy here.
    async fn plan_folder(
        &self,
        s: &mut Sessions,
        user: &MailUser,
        folder: &mut FolderState,
        all: &[MessageMeta],
    ) -> Result<Result<bool, Stop>, AppError> {
        let pending: Vec<&MessageMeta> = all.iter().filter(|m| m.uid > folder.last_uid).collect();
        // Creating a folder that exists is not an error (port contract), so this also covers
        // a folder another job or a person created since the plan listed the target.
        let created: Result<(), String> = match s.target.create_folder(&folder.target_name).await {
            Ok(()) => Ok(()),
            Err(MailboxError::Refused(text)) => Err(text),
            Err(e) => return Err(mailbox_err(e)),
        };
        let (pass, count, bytes) = (
            user.pass,
            all.len() as u64,
            all.iter().map(|m| m.size).sum::<u64>(),
        );
        if let Err(text) = created {
            let reason = format!(
                "the target refused to create the folder {}: {text}",
                folder.target_name
            );
            let skipped: Vec<SkippedItem> = pending
                .iter()
                .map(|m| SkippedItem {
                    uid: m.uid,
                    size: m.size,
                    reason: reason.clone(),
                    cause: SkipCause::TargetRefused,
                })
                .collect();
            let n = skipped.len() as u64;
            self.keep_skipped(folder, &skipped).await?;
            let stop = self
                .checkpoint(folder, |f| {
                    f.planned_in_pass = Some(pass);
                    f.source_messages = count;
                    f.source_bytes = bytes;
                    f.skipped_count += n;
                    f.done = true;
                    f.lease_owner = None;
                })
                .await?;
            self.log_event(user, format!("{}: {reason}", folder.source_name))
                .await;
            self.update_progress(user.id, |p| p.skipped += n).await?;
            return Ok(stop.map(|()| false));
        }
        if folder.subscribed
            && let Err(e) = s.target.subscribe(&folder.target_name).await
        {
            // A subscription is a convenience: the folder is copied all the same.
            tracing::warn!(user = %user.id, folder = %folder.target_name, error = %e, "the target refused a subscription");
        }
        let stop = self
            .checkpoint(folder, |f| {
                f.planned_in_pass = Some(pass);
                f.source_messages = count;
                f.source_bytes = bytes;
            })
            .await?;
        if stop.is_ok() {
            let (n, b) = (
                pending.len() as u64,
                pending.iter().map(|m| m.size).sum::<u64>(),
            );
            self.update_progress(user.id, |p| {
                p.messages_total += n;
                p.bytes_total += b;
            })
            .await?;
        }
        Ok(stop.map(|()| true))
    }

    /// After an interrupted attempt: which source messages of the marked range already have
    /// their copy on the target. Their pairs go into the copy map; a rescan (which compares the
    /// whole folder again, also when it was itself interrupted) starts the map, the skipped
    /// list and the counts afresh.
    async fn recover(
        &self,
        s: &mut Sessions,
        user: &MailUser,
        folder: &mut FolderState,
        metas: &[MessageMeta],
        mark: InFlight,
    ) -> Result<Result<HashSet<u32>, Stop>, AppError> {
        let target = s
            .target
            .select(&folder.target_name)
            .await
            .map_err(mailbox_err)?;
        let from = if target.uidvalidity == mark.target_uidvalidity {
            mark.target_uidnext
        } else {
            1
        };
        let range: Vec<&MessageMeta> = metas.iter().filter(|m| m.uid <= mark.to_uid).collect();
        let pairs = match self
            .while_leased(folder, None, self.match_on_target(s, &range, from))
            .await?
        {
            Ok(pairs) => pairs,
            Err(stop) => return Ok(Err(stop)),
        };
        tracing::info!(user = %user.id, folder = %folder.source_name, in_range = range.len(), found = pairs.len(), "resumed an unfinished append");
        let rescan = is_rescan(Some(mark));
        let base = if rescan {
            self.clear_details(folder).await?;
            FolderState {
                copies: CopyMap::default(),
                ..folder.clone()
            }
        } else {
            folder.clone()
        };
        let copies = self
            .with_copies(&base, pairs.iter().copied(), target.uidvalidity)
            .await?;
        let stop = self
            .checkpoint(folder, |f| {
                if rescan {
                    f.skipped.clear();
                    f.skipped_count = 0;
                    f.copied_messages = 0;
                    f.copied_bytes = 0;
                }
                f.copies = copies;
            })
            .await?;
        Ok(stop.map(|()| pairs.iter().map(|&(source, _)| source).collect()))
    }

    /// Copies `metas` chunk by chunk, reporting progress after each.
    #[allow(clippy::too_many_arguments)]
    async fn copy_chunks(
        &self,
        project: &Project,
        user: &MailUser,
        folder: &mut FolderState,
        s: &mut Sessions,
        metas: &[MessageMeta],
        already_there: &HashSet<u32>,
        deadline: Instant,
    ) -> Result<Result<(), Stop>, AppError> {
        // The recorded range of an interrupted attempt is processed again as one chunk under
        // the same mark, so the target range it is compared with holds copies of exactly that
        // source range. A rescan keeps its whole-folder mark until the end.
        let recovery = folder.in_flight;
        let rescan = is_rescan(recovery);
        let mut chunks: Vec<(&[MessageMeta], Option<InFlight>)> = Vec::new();
        let mut rest: &[MessageMeta] = metas;
        if let Some(r) = recovery.filter(|_| !rescan) {
            let n = metas.iter().take_while(|m| m.uid <= r.to_uid).count();
            if n > 0 {
                chunks.push((&metas[..n], Some(r)));
            }
            rest = &metas[n..];
        }
        let settings = &self.config.copy;
        chunks.extend(
            decide::chunk(rest, settings.chunk_messages, settings.chunk_bytes)
                .into_iter()
                .map(|c| (c, recovery.filter(|_| rescan))),
        );
        let mut window_start = Instant::now();
        let mut window_bytes = 0u64;
        for (chunk, mark) in chunks {
            if Instant::now() >= deadline {
                return Ok(Err(Stop::OutOfTime));
            }
            let attempt = Attempt {
                options: &project.copy,
                already_there,
                rescan,
                deadline,
            };
            let done = match self.copy_chunk(&attempt, folder, s, chunk, mark).await? {
                Ok(done) => done,
                Err(stop) => return Ok(Err(stop)),
            };
            window_bytes += done.bytes;
            let elapsed = window_start.elapsed().as_secs_f64().max(0.001);
            let throughput = window_bytes as f64 / elapsed;
            if elapsed > 30.0 {
                window_start = Instant::now();
                window_bytes = 0;
            }
            self.update_progress(user.id, |p| {
                p.messages_done += done.messages;
                p.bytes_done += done.bytes;
                p.skipped += done.skipped;
                p.throughput_bps = Some(throughput);
                p.eta_seconds = (throughput > 0.0).then(|| {
                    (p.bytes_total.saturating_sub(p.bytes_done) as f64 / throughput) as u64
                });
            })
            .await?;
        }
        Ok(Ok(()))
    }

    /// One chunk: what the project leaves out, what is already there, and the rest fetched and
    /// appended under an in-flight mark, then one checkpoint.
    async fn copy_chunk(
        &self,
        attempt: &Attempt<'_>,
        folder: &mut FolderState,
        s: &mut Sessions,
        chunk: &[MessageMeta],
        carried_mark: Option<InFlight>,
    ) -> Result<Result<ChunkDone, Stop>, AppError> {
        let last = chunk.last().map_or(folder.last_uid, |m| m.uid);
        let mut skipped = Vec::new();
        let mut wanted = Vec::new();
        let (mut present, mut present_bytes) = (0u64, 0u64);
        for m in chunk {
            if attempt.already_there.contains(&m.uid) {
                present += 1;
                present_bytes += m.size;
            } else if let Some(item) = decide::policy_skip(attempt.options, m) {
                skipped.push(item);
            } else {
                wanted.push(m);
            }
        }
        let mut settled = Settled::default();
        let mut copies_uidvalidity = None;
        if !wanted.is_empty() {
            let mark = match carried_mark {
                Some(mark) => mark,
                None => {
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
            let chunk_kib: u64 = wanted.iter().map(|m| m.size / 1024 + 1).sum();
            let budget_kib = (self.config.copy.memory_budget_bytes / 1024).max(1);
            let _memory = self
                .copy_memory
                .clone()
                .acquire_many_owned(chunk_kib.min(budget_kib) as u32)
                .await
                .map_err(AppError::internal)?;
            // Fetch and append while the lease is renewed; at the deadline the chunk stops
            // where it is (the mark stays, the continuation finds what was stored).
            let target_name = folder.target_name.clone();
            let io = async {
                let (fetched, items, unreadable) = self.fetch_chunk(s, &wanted).await?;
                let outcomes = s
                    .target
                    .append(&target_name, items)
                    .await
                    .map_err(mailbox_err)?;
                Ok((fetched, unreadable, outcomes))
            };
            let (fetched, unreadable, outcomes) = match self
                .while_leased(folder, Some(attempt.deadline), io)
                .await?
            {
                Ok(done) => done,
                Err(stop) => return Ok(Err(stop)),
            };
            skipped.extend(unreadable);
            settled = decide::settle(&fetched, outcomes);
            if !settled.is_final() {
                // The mark stays: the next attempt finds what this one stored.
                if let Some(reason) = settled.full.take() {
                    // What this chunk stored is counted when the retry finds it.
                    let stored = settled.appended.len() as u64;
                    return Ok(Err(Stop::TargetFull(reason, stored)));
                }
                let deferral = settled.deferred.take();
                return Err(AppError::Throttled {
                    message: deferral.as_ref().map_or_else(
                        || "the target server asked to slow down".into(),
                        |d| format!("the target server asked to slow down: {}", d.reason),
                    ),
                    retry_after: deferral.and_then(|d| d.retry_after),
                });
            }
        }
        skipped.append(&mut settled.skipped);
        self.keep_skipped(folder, &skipped).await?;
        let copies = match copies_uidvalidity {
            Some(uidvalidity) => Some(
                self.with_copies(
                    folder,
                    settled
                        .appended
                        .iter()
                        .filter_map(|&(source, _, copy)| Some((source, copy?))),
                    uidvalidity,
                )
                .await?,
            ),
            None => None,
        };
        let done = ChunkDone {
            messages: settled.appended.len() as u64 + present,
            bytes: settled.appended.iter().map(|a| a.1).sum::<u64>() + present_bytes,
            skipped: skipped.len() as u64,
        };
        let stop = self
            .checkpoint(folder, |f| {
                if !attempt.rescan {
                    f.last_uid = last;
                    f.in_flight = None;
                }
                f.copied_messages += done.messages;
                f.copied_bytes += done.bytes;
                f.skipped_count += done.skipped;
                if let Some(copies) = copies {
                    f.copies = copies;
                }
            })
            .await?;
        Ok(stop.map(|()| done))
    }

    /// Fetches the bodies of `wanted`. A server that could not return some of them (a FETCH
    /// ending in NO) is asked again twice; what it still cannot return, and still lists, is
    /// skipped with its words. Messages it no longer lists were expunged meanwhile: they are
    /// neither copied nor skipped.
    async fn fetch_chunk(
        &self,
        s: &mut Sessions,
        wanted: &[&MessageMeta],
    ) -> Result<(Vec<MessageMeta>, Vec<AppendItem>, Vec<SkippedItem>), AppError> {
        let mut fetched: Vec<MessageMeta> = Vec::with_capacity(wanted.len());
        let mut items: Vec<AppendItem> = Vec::with_capacity(wanted.len());
        let mut missing: Vec<u32> = wanted.iter().map(|m| m.uid).collect();
        let mut server_error = None;
        for _ in 0..3 {
            let report = s
                .source
                .fetch_bodies(&missing, &mut |m| {
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
            let got: HashSet<u32> = fetched.iter().map(|m| m.uid).collect();
            missing.retain(|uid| !got.contains(uid));
            let failed = report.server_error.is_some();
            server_error = report.server_error.or(server_error);
            if missing.is_empty() || !failed {
                break;
            }
        }
        let mut unreadable = Vec::new();
        if let (Some(&first), Some(&last)) = (missing.iter().min(), missing.iter().max()) {
            let listed: HashSet<u32> = s
                .source
                .fetch_meta(first, last)
                .await
                .map_err(mailbox_err)?
                .into_iter()
                .map(|m| m.uid)
                .collect();
            let why = server_error.unwrap_or_else(|| "it sent nothing for it".into());
            for m in wanted.iter().filter(|m| missing.contains(&m.uid)) {
                if listed.contains(&m.uid) {
                    unreadable.push(SkippedItem {
                        uid: m.uid,
                        size: m.size,
                        reason: format!("the source server could not return it: {why}"),
                        cause: SkipCause::SourceUnreadable,
                    });
                }
            }
        }
        Ok((fetched, items, unreadable))
    }

    /// Records the target folder's figures for the verification report; the folder is done.
    async fn finish_folder(
        &self,
        s: &mut Sessions,
        folder: &mut FolderState,
        highest_modseq: Option<u64>,
    ) -> Result<Result<(), Stop>, AppError> {
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
        self.checkpoint(folder, |f| {
            f.done = true;
            f.in_flight = None;
            f.highest_modseq = highest_modseq;
            f.target_messages = Some(target_status.messages as u64);
            f.target_bytes = Some(target_bytes);
            f.lease_owner = None;
        })
        .await
    }
}
