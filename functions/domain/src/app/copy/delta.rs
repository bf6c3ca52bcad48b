//! Delta passes on a folder already copied: flag changes made at the source since the last
//! pass, and (when the project asks for it) removal of the copies of messages deleted at the
//! source since they were copied.

use std::collections::{HashMap, HashSet};

use crate::error::AppError;
use crate::mailbox::MessageMeta;
use crate::model::*;

use super::identity::{self, Content};
use super::recovery::candidate;
use super::{App, Sessions, Stop, mailbox_err};

/// The flags of a group of identical source messages, and their copies' UIDs and flags.
type FlagGroup = (Vec<Vec<String>>, Vec<(u32, Vec<String>)>);

impl App {
    /// Makes the flags of the target messages with `m`'s Message-ID and INTERNALDATE equal, as
    /// multisets, to those of the source messages with the same identity.
    async fn sync_group_flags(
        &self,
        s: &mut Sessions,
        m: &MessageMeta,
        id: &str,
    ) -> Result<u64, AppError> {
        let date = m.internaldate.unix_timestamp();
        let same = |c: &MessageMeta| c.internaldate.unix_timestamp() == date;
        let desired: Vec<Vec<String>> = s
            .source
            .find_by_message_id(id)
            .await
            .map_err(mailbox_err)?
            .into_iter()
            .filter(|c| same(c))
            .map(|c| c.flags)
            .collect();
        let targets: Vec<(u32, Vec<String>)> = s
            .target
            .find_by_message_id(id)
            .await
            .map_err(mailbox_err)?
            .into_iter()
            .filter(|c| same(c))
            .map(|c| (c.uid, c.flags))
            .collect();
        let mut changed = 0;
        for (uid, flags) in super::decide::flag_fixes(&desired, &targets) {
            s.target.set_flags(uid, &flags).await.map_err(mailbox_err)?;
            changed += 1;
        }
        Ok(changed)
    }

    /// The copy map's `(source UID, target UID)` pairs whose source message the open source
    /// folder no longer lists (deleted there, or moved to another folder).
    pub(super) async fn gone_copies(
        &self,
        s: &mut Sessions,
        folder: &FolderState,
    ) -> Result<Vec<(u32, u32)>, AppError> {
        let present: HashSet<u32> = s
            .source
            .all_uids()
            .await
            .map_err(mailbox_err)?
            .into_iter()
            .collect();
        Ok(self
            .copy_pairs(folder)
            .await?
            .into_iter()
            .filter(|(source, _)| !present.contains(source))
            .collect())
    }

    /// Removes from the target the copies of messages deleted at the source since they were
    /// copied: the source UIDs in the folder's copy map that the source no longer has. Only
    /// copies this engine made and whose target UID it knows are candidates, so mail that
    /// reached the target another way (new mail after the MX switch) is never touched. A
    /// target whose UIDVALIDITY changed since makes the map meaningless: nothing is removed.
    /// The caller skips this in a pass that rebuilt the map after the source renumbered the
    /// folder.
    pub(super) async fn remove_deleted_at_source(
        &self,
        s: &mut Sessions,
        user: &MailUser,
        folder: &mut FolderState,
    ) -> Result<Result<(), Stop>, AppError> {
        // Copies of messages moved to another folder are that folder's to move (`moves.rs`);
        // they stay in the map, so a later pass removes one the move left behind.
        let moving: HashSet<u32> = folder
            .moves
            .iter()
            .filter(|m| m.pass == user.pass)
            .flat_map(|m| m.outgoing.iter().copied())
            .collect();
        let gone: Vec<(u32, u32)> = self
            .gone_copies(s, folder)
            .await?
            .into_iter()
            .filter(|(source, _)| !moving.contains(source))
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
        let sources: HashSet<u32> = gone.iter().map(|&(s, _)| s).collect();
        let copies = self.without_copies(folder, &sources).await?;
        let stop = self.checkpoint(folder, |f| f.copies = copies).await?;
        if removed > 0 {
            let changes = crate::app::sync::DeltaChanges {
                removed,
                ..Default::default()
            };
            self.count_delta_changes(user.id, user.pass, changes).await;
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

    /// Copies flag changes made at the source since `since` onto the matching target messages:
    /// the copy the folder's map names (exact even on servers that rewrite messages), else the
    /// group of messages with that Message-ID and INTERNALDATE as a whole. Returns how many
    /// target messages got new flags.
    pub(super) async fn sync_flags(
        &self,
        s: &mut Sessions,
        folder: &FolderState,
        since: u64,
    ) -> Result<u64, AppError> {
        let changed = s
            .source
            .fetch_changed_since(since)
            .await
            .map_err(mailbox_err)?;
        let changed: Vec<MessageMeta> = changed
            .into_iter()
            .filter(|m| m.uid <= folder.copied_before_pass.unwrap_or(folder.last_uid))
            .collect();
        if changed.is_empty() {
            return Ok(0);
        }
        let target = s
            .target
            .select(&folder.target_name)
            .await
            .map_err(mailbox_err)?;
        let map: std::collections::HashMap<u32, u32> =
            if folder.copies.target_uidvalidity == Some(target.uidvalidity) {
                self.copy_pairs(folder).await?.into_iter().collect()
            } else {
                Default::default()
            };
        let mut without_id = Vec::new();
        let mut fixed = 0;
        for m in changed {
            let copy = match map.get(&m.uid) {
                Some(&t) => s
                    .target
                    .fetch_meta(t, t)
                    .await
                    .map_err(mailbox_err)?
                    .into_iter()
                    .find(|c| c.uid == t),
                None => {
                    // No map entry (no UIDPLUS, or an older copy): fix the flags of the whole
                    // group of identical messages at once, as multisets.
                    match &m.message_id {
                        Some(id) => fixed += self.sync_group_flags(s, &m, id).await?,
                        None => without_id.push(m),
                    }
                    continue;
                }
            };
            let Some(t) = copy else { continue };
            let mut want = m.flags.clone();
            want.sort();
            let mut have = t.flags.clone();
            have.sort();
            if want != have {
                s.target
                    .set_flags(t.uid, &m.flags)
                    .await
                    .map_err(mailbox_err)?;
                fixed += 1;
            }
        }
        if !without_id.is_empty() {
            fixed += self.sync_flags_without_id(s, folder, &without_id).await?;
        }
        Ok(fixed)
    }

    /// Flag changes of messages without Message-ID and without a map entry: their copies are
    /// found the way recovery finds them (by their bytes, or on a rewriting target by Date,
    /// From, To, Subject and INTERNALDATE), among the messages of both folders with the same
    /// INTERNALDATE, and each group of identical source messages gives its flags to its copies
    /// as a multiset (which copy belongs to which of two identical messages is unknowable).
    async fn sync_flags_without_id(
        &self,
        s: &mut Sessions,
        folder: &FolderState,
        changed: &[MessageMeta],
    ) -> Result<u64, AppError> {
        let dates: HashSet<i64> = changed
            .iter()
            .map(|m| m.internaldate.unix_timestamp())
            .collect();
        let alike = |m: &MessageMeta| {
            m.message_id.is_none() && dates.contains(&m.internaldate.unix_timestamp())
        };
        let source: Vec<MessageMeta> = s
            .source
            .fetch_meta(1, folder.last_uid.max(1))
            .await
            .map_err(mailbox_err)?
            .into_iter()
            .filter(alike)
            .collect();
        let target: Vec<MessageMeta> = s
            .target
            .fetch_meta(1, u32::MAX)
            .await
            .map_err(mailbox_err)?
            .into_iter()
            .filter(alike)
            .collect();
        let source_uids: Vec<u32> = source.iter().map(|m| m.uid).collect();
        let target_uids: Vec<u32> = target.iter().map(|m| m.uid).collect();
        let (source_content, target_content) =
            super::recovery::digests(s, &source_uids, &target_uids).await?;
        let candidates = |metas: &[MessageMeta], content: &HashMap<u32, Content>| {
            metas
                .iter()
                .map(|m| candidate(m, content.get(&m.uid).copied()))
                .collect::<Vec<_>>()
        };
        let pairs = identity::match_copies(
            &candidates(&source, &source_content),
            &candidates(&target, &target_content),
        );
        // Groups of identical source messages (same bytes and date) with their copies.
        let flags_of = |metas: &[MessageMeta], uid: u32| {
            metas
                .iter()
                .find(|m| m.uid == uid)
                .map(|m| m.flags.clone())
                .unwrap_or_default()
        };
        let mut groups: HashMap<([u8; 32], i64), FlagGroup> = HashMap::new();
        for (source_uid, target_uid) in pairs {
            let (Some(content), Some(m)) = (
                source_content.get(&source_uid),
                source.iter().find(|m| m.uid == source_uid),
            ) else {
                continue;
            };
            let group = groups
                .entry((content.bytes, m.internaldate.unix_timestamp()))
                .or_default();
            group.0.push(m.flags.clone());
            group.1.push((target_uid, flags_of(&target, target_uid)));
        }
        let wanted: HashSet<u32> = changed.iter().map(|m| m.uid).collect();
        let mut fixed = 0;
        for (key, (desired, targets)) in groups {
            let touched = source.iter().any(|m| {
                wanted.contains(&m.uid)
                    && source_content
                        .get(&m.uid)
                        .is_some_and(|c| (c.bytes, m.internaldate.unix_timestamp()) == key)
            });
            if !touched {
                continue;
            }
            for (uid, flags) in super::decide::flag_fixes(&desired, &targets) {
                s.target.set_flags(uid, &flags).await.map_err(mailbox_err)?;
                fixed += 1;
            }
        }
        Ok(fixed)
    }
}
