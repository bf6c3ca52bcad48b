//! Copying a folder's messages chunk by chunk: each chunk is marked in flight (its source UID
//! range and the target's UIDNEXT) before its APPEND and checkpointed after, and its I/O runs
//! under the folder's lease and the job's deadline.

use std::collections::HashSet;
use std::time::Instant;

use contract::{ContentCheck, SkippedItem};

use crate::error::AppError;
use crate::mailbox::{AppendItem, MessageMeta};
use crate::model::*;
use crate::schedule;

use super::content::{self, Fingerprint};
use super::decide::{self, Settled};
use super::folder::is_rescan;
use super::readback::ContentReport;
use super::{App, Sessions, Stop, mailbox_err};

/// What a streamed message holds against the memory budget: about its read buffer.
const STREAM_BUFFER_KIB: u64 = 64;

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
    /// Bytes read from the source and written to the target (what daily budgets count; the
    /// messages already there moved nothing).
    moved: u64,
}

/// What a chunk's fetch gave: the messages with their bytes ready to append, the fingerprints
/// of those whose copies are checked, and what the source could not return.
struct Fetched {
    metas: Vec<MessageMeta>,
    items: Vec<AppendItem>,
    fingerprints: Vec<(u32, Fingerprint)>,
    unreadable: Vec<SkippedItem>,
}

impl App {
    /// Copies `metas` chunk by chunk, reporting progress after each.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn copy_chunks(
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
        let budgets = schedule::daily_budgets(project, user);
        for (chunk, mark) in chunks {
            if Instant::now() >= deadline {
                return Ok(Err(Stop::OutOfTime));
            }
            if self.budget_spent(&budgets).await? {
                // Checked before every chunk, so a job never moves more than one chunk past
                // a budget; the folder pauses until it renews (`end_job`).
                return Ok(Err(Stop::BudgetSpent));
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
            self.spend_budgets(&budgets, done.moved).await?;
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
        let mut sorted = decide::sort_chunk(chunk, attempt.already_there, attempt.options);
        decide::skip_oversize(&mut sorted, s.target_limit);
        let mut settled = Settled::default();
        let mut report = ContentReport::default();
        let mut copies = None;
        if !sorted.wanted.is_empty() {
            let mark = match carried_mark {
                Some(mark) => mark,
                None => self.new_mark(s, folder, last).await?,
            };
            let unreadable;
            (settled, unreadable, report) = match self
                .append_under_mark(attempt, folder, s, &sorted.wanted, mark)
                .await?
            {
                Ok(done) => done,
                Err(stop) => return Ok(Err(stop)),
            };
            sorted.skipped.extend(unreadable);
            let pairs = settled
                .appended
                .iter()
                .filter_map(|&(source, _, copy)| Some((source, copy?)));
            copies = Some(
                self.with_copies(folder, pairs, mark.target_uidvalidity)
                    .await?,
            );
        }
        sorted.skipped.append(&mut settled.skipped);
        self.keep_skipped(folder, &sorted.skipped).await?;
        let done = ChunkDone {
            messages: settled.appended.len() as u64 + sorted.present,
            bytes: settled.appended.iter().map(|a| a.1).sum::<u64>() + sorted.present_bytes,
            skipped: sorted.skipped.len() as u64,
            moved: settled.appended.iter().map(|a| a.1).sum::<u64>(),
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
                report.record(f);
            })
            .await?;
        Ok(stop.map(|()| done))
    }

    /// The in-flight mark of a chunk ending at source UID `last`: what the target folder's
    /// next UID is before anything of it is appended.
    async fn new_mark(
        &self,
        s: &mut Sessions,
        folder: &FolderState,
        last: u32,
    ) -> Result<InFlight, AppError> {
        let t = s
            .target
            .select(&folder.target_name)
            .await
            .map_err(mailbox_err)?;
        Ok(InFlight {
            to_uid: last,
            target_uidvalidity: t.uidvalidity,
            target_uidnext: t.uidnext,
        })
    }

    /// Records the mark, then fetches and appends `wanted` within the memory budget, under the
    /// lease and before the deadline. A target that asks to wait, or is full, leaves the mark
    /// in place: the next attempt finds what this one stored.
    async fn append_under_mark(
        &self,
        attempt: &Attempt<'_>,
        folder: &mut FolderState,
        s: &mut Sessions,
        wanted: &[&MessageMeta],
        mark: InFlight,
    ) -> Result<Result<(Settled, Vec<SkippedItem>, ContentReport), Stop>, AppError> {
        if folder.in_flight != Some(mark)
            && let Err(stop) = self
                .checkpoint(folder, |f| f.in_flight = Some(mark))
                .await?
        {
            return Ok(Err(stop));
        }
        // Hold the chunk's bytes against the process-wide memory budget while they are
        // fetched and appended; a chunk over the budget waits until it can run alone. A
        // streamed message holds a read buffer, not its size.
        let stream_from = self.config.copy.stream_from_bytes;
        let chunk_kib: u64 = wanted
            .iter()
            .map(|m| {
                if decide::streams(m.size, stream_from) {
                    STREAM_BUFFER_KIB
                } else {
                    m.size / 1024 + 1
                }
            })
            .sum();
        let budget_kib = (self.config.copy.memory_budget_bytes / 1024).max(1);
        let _memory = self
            .copy_memory
            .clone()
            .acquire_many_owned(chunk_kib.min(budget_kib) as u32)
            .await
            .map_err(AppError::internal)?;
        let target_name = folder.target_name.clone();
        let (policy, checked) = (attempt.options.verify_content, folder.content_checked);
        let incoming: Vec<MoveIn> = folder
            .moves
            .iter()
            .filter(|m| m.pass == folder.pass)
            .flat_map(|m| m.incoming.iter().cloned())
            .collect();
        let remove = attempt.options.deleted_at_source == contract::DeletedAtSource::Remove;
        let io = async {
            // Messages moved at the source since the last pass move on the target too.
            let moved = self
                .move_instead_of_upload(
                    s,
                    (&target_name, &incoming),
                    wanted,
                    mark.target_uidnext,
                    remove,
                )
                .await?;
            // On a target whose folders are labels, what it holds already gets a label.
            let labelled = self
                .label_instead_of_upload(s, &target_name, &moved.upload, mark.target_uidnext)
                .await?;
            // A moved copy keeps the flags it had in the folder it left: set the source's.
            let moved_flags: Vec<(u32, Vec<String>)> = moved
                .metas
                .iter()
                .zip(&moved.outcomes)
                .filter_map(|(m, o)| match o {
                    crate::mailbox::AppendOutcome::Appended { uid: Some(uid) } => {
                        Some((*uid, m.flags.clone()))
                    }
                    _ => None,
                })
                .collect();
            let moved_count = moved.metas.len() as u64;
            let (mut metas, mut outcomes) = (moved.metas, moved.outcomes);
            metas.extend(labelled.metas);
            outcomes.extend(labelled.outcomes);
            // Large messages stream through one at a time; the rest are held and appended
            // together.
            let (large, held): (Vec<&MessageMeta>, Vec<&MessageMeta>) = labelled
                .upload
                .iter()
                .partition(|m| decide::streams(m.size, stream_from));
            let mut fetched = self.fetch_chunk(s, &held, policy, checked).await?;
            if !fetched.items.is_empty() {
                outcomes.extend(
                    s.target
                        .append(&target_name, fetched.items)
                        .await
                        .map_err(mailbox_err)?,
                );
            }
            metas.extend(fetched.metas);
            let checked = checked + fetched.fingerprints.len() as u64;
            let streamed = self
                .stream_messages(s, &target_name, &large, policy, checked)
                .await?;
            metas.extend(streamed.metas);
            outcomes.extend(streamed.outcomes);
            fetched.fingerprints.extend(streamed.fingerprints);
            fetched.unreadable.extend(streamed.unreadable);
            Ok((
                metas,
                fetched.fingerprints,
                fetched.unreadable,
                outcomes,
                (moved_flags, moved_count),
            ))
        };
        let (fetched, fingerprints, unreadable, outcomes, (moved_flags, moved_count)) = match self
            .while_leased(folder, Some(attempt.deadline), io)
            .await?
        {
            Ok(done) => done,
            Err(stop) => return Ok(Err(stop)),
        };
        let mut settled = decide::settle(&fetched, outcomes);
        if let Some(reason) = settled.full.take() {
            // What this chunk stored is counted when the retry finds it.
            let stored = settled.appended.len() as u64;
            return Ok(Err(Stop::TargetFull(reason, stored)));
        }
        if let Some(deferral) = settled.deferred.take() {
            return Err(AppError::Throttled {
                message: format!("the target server asked to slow down: {}", deferral.reason),
                retry_after: deferral.retry_after,
            });
        }
        if moved_count > 0 {
            self.count_delta_changes(
                folder.user_id,
                folder.pass,
                super::super::sync::DeltaChanges {
                    moved: moved_count,
                    ..Default::default()
                },
            )
            .await;
        }
        let mut restore = decide::flags_to_restore(&fetched, &settled.appended, s.target_drops);
        restore.extend(moved_flags);
        if !restore.is_empty() {
            let store = self.restore_flags(s, &target_name, restore);
            match self
                .while_leased(folder, Some(attempt.deadline), store)
                .await?
            {
                Ok(()) => {}
                Err(stop) => return Ok(Err(stop)),
            }
        }
        let pairs: Vec<(u32, u32)> = settled
            .appended
            .iter()
            .filter_map(|&(source, _, copy)| Some((source, copy?)))
            .collect();
        let check = self.compare_copies(s, &target_name, &fingerprints, &pairs);
        let report = match self
            .while_leased(folder, Some(attempt.deadline), check)
            .await
        {
            Ok(Ok(report)) => report,
            // The copies are stored: a read-back cut short (deadline, lost lease) or failed
            // leaves them unchecked, and the chunk is still checkpointed below (which notices a
            // lost lease itself), so what was appended is never appended again.
            Ok(Err(_)) => ContentReport::default(),
            Err(e) => {
                tracing::warn!(folder = %target_name, error = %e, "could not read copies back to compare them");
                ContentReport::default()
            }
        };
        Ok(Ok((settled, unreadable, report)))
    }

    /// Sets the flags the target dropped on APPEND again, copy by copy (`(target UID, flags)`).
    /// The copies are stored and the chunk not yet checkpointed: a failure here retries the
    /// chunk, whose resume finds the copies and appends nothing again.
    async fn restore_flags(
        &self,
        s: &mut Sessions,
        target_name: &str,
        restore: Vec<(u32, Vec<String>)>,
    ) -> Result<(), AppError> {
        // SELECT again: the folder's view then includes what was just appended.
        s.target.select(target_name).await.map_err(mailbox_err)?;
        for (uid, flags) in restore {
            s.target.set_flags(uid, &flags).await.map_err(mailbox_err)?;
        }
        Ok(())
    }

    /// Fetches the bodies of `wanted`. A server that could not return some of them (a FETCH
    /// ending in NO) is asked again twice; what it still cannot return, and still lists, is
    /// skipped with its words. Messages it no longer lists were expunged meanwhile: they are
    /// neither copied nor skipped.
    /// The copies of messages [`content::wants_check`] picks (`checked` copies of the folder
    /// were read back before) are fingerprinted for [`App::check_copies`].
    async fn fetch_chunk(
        &self,
        s: &mut Sessions,
        wanted: &[&MessageMeta],
        policy: ContentCheck,
        mut checked: u64,
    ) -> Result<Fetched, AppError> {
        let mut fetched: Vec<MessageMeta> = Vec::with_capacity(wanted.len());
        let mut items: Vec<AppendItem> = Vec::with_capacity(wanted.len());
        let mut fingerprints = Vec::new();
        let mut missing: Vec<u32> = wanted.iter().map(|m| m.uid).collect();
        let mut server_error = None;
        for _ in 0..super::stream::FETCH_TRIES {
            let report = s
                .source
                .fetch_bodies(&missing, &mut |m| {
                    if content::wants_check(policy, &m.body, checked) {
                        checked += 1;
                        fingerprints.push((m.meta.uid, content::fingerprint(&m.body)));
                    }
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
        let missing: Vec<&MessageMeta> = wanted
            .iter()
            .copied()
            .filter(|m| missing.contains(&m.uid))
            .collect();
        let unreadable = self.unreadable(s, &missing, server_error).await?;
        Ok(Fetched {
            metas: fetched,
            items,
            fingerprints,
            unreadable,
        })
    }
}
