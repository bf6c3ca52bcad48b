//! One attempt at a folder, under its lease: notice a renumbered source, plan the folder on
//! the pass's first look (create its target folder, count what is left), resume an
//! interrupted attempt by finding on the target what it stored (`recovery.rs`), copy the rest
//! in chunks (`chunk.rs`), carry a delta pass's flag changes and removals (`delta.rs`), and
//! record the verification figures.

use std::collections::HashSet;
use std::time::Instant;

use contract::{SkipCause, SkippedItem};

use crate::error::AppError;
use crate::mailbox::{MailboxError, MessageMeta, SpecialUse};
use crate::model::*;

use super::decide;
use super::naming::safe_folder_name;
use super::{App, Sessions, Stop, mailbox_err};

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
    // The plan's moves name UIDs of the old numbering.
    f.moves = None;
    // Planned again: the target folder may need creating (a retry after a refused CREATE).
    f.planned_in_pass = None;
    f.done = false;
}

/// The bound of the messages whose flag changes a pass carries, taken when it plans the
/// folder: those copied before. A rescan finds copies of earlier passes again without copying
/// them, so it keeps no bound (all it matched get their flags compared).
fn copied_before_pass(f: &FolderState) -> Option<u32> {
    (!is_rescan(f.in_flight)).then_some(f.last_uid)
}

pub(super) fn is_rescan(mark: Option<InFlight>) -> bool {
    mark.is_some_and(|r| r.to_uid == u32::MAX)
}

impl App {
    /// Copies what is left of the folder, then carries flag changes and removals (delta passes)
    /// and records the verification figures.
    pub(super) async fn copy_with(
        &self,
        project: &Project,
        user: &MailUser,
        folder: &mut FolderState,
        s: &mut Sessions,
        deadline: Instant,
    ) -> Result<Result<(), Stop>, AppError> {
        // Gmail's All Mail adds only the mail no other copied folder holds (read before All
        // Mail is selected: each read selects its folder).
        let labelled = if s.source_labels && folder.special_use == Some(SpecialUse::All) {
            Some(self.labelled_elsewhere(s, user, folder).await?)
        } else {
            None
        };
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
        if let Err(stop) = self
            .check_uidvalidity(s, user, folder, status.uidvalidity)
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
        if let Some(labelled) = &labelled {
            metas.retain(|m| !decide::label_key(m).is_some_and(|k| labelled.contains(&k)));
        }
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
            Some(mark) => match self
                .recover(s, user, folder, &metas, mark, project.copy.verify_content)
                .await?
            {
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
        // After the cutover the user works in the new mailbox: a late pass (mail that still
        // reached the old server) only adds, it never changes flags or removes there.
        let cut_over = user.sync.cut_over_at.is_some();
        if let (Some(since), Some(_)) = (previous_modseq, status.highest_modseq)
            && user.pass > 1
            && !cut_over
        {
            let fixed = self.sync_flags(s, folder, since).await?;
            let changes = crate::app::sync::DeltaChanges {
                flags: fixed,
                ..Default::default()
            };
            self.count_delta_changes(user.id, user.pass, changes).await;
        }
        let removing = project.copy.deleted_at_source == contract::DeletedAtSource::Remove
            && user.pass > 1
            && !cut_over
            && folder.map_rebuilt_in_pass != Some(user.pass);
        if removing
            && !folder.copies.is_empty()
            && let Err(stop) = self.remove_deleted_at_source(s, user, folder).await?
        {
            return Ok(Err(stop));
        }
        let mark = SourceMark::taken(&status, removing);
        self.finish_folder(s, folder, &status, mark).await
    }
    /// The messages of the other folders of this pass, by [`decide::label_key`]: on Gmail they
    /// are the same messages All Mail shows (one message, several labels), copied with their
    /// labels' folders. A message skipped there is reported there.
    async fn labelled_elsewhere(
        &self,
        s: &mut Sessions,
        user: &MailUser,
        all_mail: &FolderState,
    ) -> Result<HashSet<decide::LabelKey>, AppError> {
        let mut keys = HashSet::new();
        for f in self.deps.store.list_folders(user.id).await? {
            if f.source_name == all_mail.source_name || f.pass != user.pass {
                continue;
            }
            let status = match s.source.examine(&f.source_name).await {
                Ok(status) => status,
                Err(MailboxError::FolderNotFound(_)) => continue,
                Err(e) => return Err(mailbox_err(e)),
            };
            if status.messages == 0 {
                continue;
            }
            let metas = s
                .source
                .fetch_meta(1, u32::MAX)
                .await
                .map_err(mailbox_err)?;
            keys.extend(metas.iter().filter_map(decide::label_key));
        }
        Ok(keys)
    }

    /// Records the source folder's UIDVALIDITY; when it changed, the source renumbered the
    /// folder (a restore, an index rebuild): everything is compared with the target again, so
    /// nothing is copied twice or missed, and the copy map is rebuilt by identity (its old
    /// source UIDs mean nothing now).
    async fn check_uidvalidity(
        &self,
        s: &mut Sessions,
        user: &MailUser,
        folder: &mut FolderState,
        uidvalidity: u32,
    ) -> Result<Result<(), Stop>, AppError> {
        match folder.uidvalidity {
            Some(known) if known == uidvalidity => Ok(Ok(())),
            None => {
                self.checkpoint(folder, |f| f.uidvalidity = Some(uidvalidity))
                    .await
            }
            Some(_) => {
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
                self.checkpoint(folder, |f| {
                    f.uidvalidity = Some(uidvalidity);
                    begin_rescan(f, pass, target.uidvalidity);
                })
                .await
            }
        }
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
        let created = self.create_target_folder(s, user, folder).await?;
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
                    f.copied_before_pass = copied_before_pass(f);
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
                f.copied_before_pass = copied_before_pass(f);
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
    /// Creates the folder's target folder, with the source's role. Creating a folder that
    /// exists is not an error (port contract), so this also covers a folder another job or a
    /// person created since the plan listed the target. A name the target refuses is tried
    /// once more as [`safe_folder_name`] makes it, recorded in the checkpoint and the user's
    /// events; `Err` carries the server's words when that fails too.
    async fn create_target_folder(
        &self,
        s: &mut Sessions,
        user: &MailUser,
        folder: &mut FolderState,
    ) -> Result<Result<(), String>, AppError> {
        let refusal = match s
            .target
            .create_folder(&folder.target_name, folder.special_use)
            .await
        {
            Ok(()) => return Ok(Ok(())),
            Err(MailboxError::Refused(text)) => text,
            Err(e) => return Err(mailbox_err(e)),
        };
        let namespace = s.target.namespace().await.map_err(mailbox_err)?;
        let Some(safe) = safe_folder_name(&folder.target_name, &namespace) else {
            return Ok(Err(refusal));
        };
        // The safe name must not be another folder's (that would merge the two); folders that
        // share the refused name on purpose share the safe one too.
        let first = folder.target_name.as_str();
        let elsewhere: HashSet<String> = self
            .deps
            .store
            .list_folders(user.id)
            .await?
            .into_iter()
            .filter(|f| f.source_name != folder.source_name)
            .filter(|f| f.target_name != first && f.renamed_from.as_deref() != Some(first))
            .map(|f| f.target_name)
            .collect();
        let safe = if elsewhere.contains(&safe) {
            (2..)
                .map(|n| format!("{safe}_{n}"))
                .find(|n| !elsewhere.contains(n))
                .unwrap_or(safe)
        } else {
            safe
        };
        match s.target.create_folder(&safe, folder.special_use).await {
            Ok(()) => {}
            Err(MailboxError::Refused(_)) => return Ok(Err(refusal)),
            Err(e) => return Err(mailbox_err(e)),
        }
        let first = folder.target_name.clone();
        self.log_event(
            user,
            format!(
                "{}: the target refused the name {first} ({refusal}); copied to {safe} instead",
                folder.source_name
            ),
        )
        .await;
        // The new name is written with the folder's planning checkpoint that follows.
        folder.renamed_from = Some(first);
        folder.target_name = safe;
        Ok(Ok(()))
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
        policy: contract::ContentCheck,
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
        let found = match self
            .while_leased(folder, None, self.match_on_target(s, &range, from))
            .await?
        {
            Ok(found) => found,
            Err(stop) => return Ok(Err(stop)),
        };
        self.give_copies_their_flags(s, &range, &found).await;
        let pairs = found.pairs;
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
        // The dead attempt's copies were never read back: compare them now (a whole chunk; a
        // rescan of the folder only a sample).
        let limit = if rescan {
            super::content::SAMPLE_PER_FOLDER as usize
        } else {
            pairs.len()
        };
        let before = folder.clone();
        let compare = self.compare_recovered(s, &before, policy, &pairs, limit);
        let report = match self.while_leased(folder, None, compare).await {
            Ok(Ok(report)) => report,
            Ok(Err(stop)) => return Ok(Err(stop)),
            Err(e) => {
                tracing::warn!(folder = %folder.target_name, error = %e, "could not read copies back to compare them");
                Default::default()
            }
        };
        let stop = self
            .checkpoint(folder, |f| {
                if rescan {
                    f.skipped.clear();
                    f.skipped_count = 0;
                    f.copied_messages = 0;
                    f.copied_bytes = 0;
                    f.content_checked = 0;
                    f.altered.clear();
                    f.altered_count = 0;
                }
                report.record(f);
                f.copies = copies;
            })
            .await?;
        Ok(stop.map(|()| pairs.iter().map(|&(source, _)| source).collect()))
    }
    /// Records the target folder's figures for the verification report; the folder is done.
    async fn finish_folder(
        &self,
        s: &mut Sessions,
        folder: &mut FolderState,
        status: &crate::mailbox::FolderStatus,
        mark: Option<SourceMark>,
    ) -> Result<Result<(), Stop>, AppError> {
        let target_status = s
            .target
            .select(&folder.target_name)
            .await
            .map_err(mailbox_err)?;
        let target_bytes = if target_status.messages == 0 {
            0
        } else {
            s.target.folder_bytes().await.map_err(mailbox_err)?
        };
        self.checkpoint(folder, |f| {
            f.done = true;
            f.in_flight = None;
            f.highest_modseq = status.highest_modseq;
            f.source_mark = mark;
            f.target_messages = Some(target_status.messages as u64);
            f.target_bytes = Some(target_bytes);
            f.lease_owner = None;
        })
        .await
    }
}
