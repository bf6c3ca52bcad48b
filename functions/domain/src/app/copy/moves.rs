//! Messages moved between folders at the source since the last pass. Without this a move is a
//! new message in one folder (downloaded and uploaded again) and a deletion in the other; with
//! it, the copy the target already holds is moved there on the target (COPY, and with removal
//! on, the old copy deleted), so nothing crosses the network twice.
//!
//! The plan of a delta pass finds them, before any folder job runs: a message new in folder B
//! (above B's high-water UID) whose Message-ID, size and INTERNALDATE equal those of the target
//! copy of a message gone from folder A (a source UID of A's copy map the source no longer
//! lists). Both folders' checkpoints record their part ([`FolderMoves`]); B's chunk then moves
//! instead of uploading, under its in-flight mark, so a crash between the COPY and the
//! checkpoint is resumed like an interrupted APPEND: the moved copy is found by identity in
//! B's target range and not copied again. A's removal step leaves the copies that move alone.
//! Whatever cannot be moved (the copy is gone, the folder was renumbered, no Message-ID, a
//! target that rewrites messages) is copied as before: a miss costs bandwidth, never mail.

use std::collections::{HashMap, HashSet};

use crate::error::AppError;
use crate::mailbox::{AppendOutcome, MailboxError, MessageMeta};
use crate::model::*;

use super::decide::same_message;
use super::labels::Labelled;
use super::plan::PlannedFolder;
use super::{App, Sessions, mailbox_err};

/// A message gone from a source folder since the last pass, with its copy on the target.
#[derive(Debug, Clone)]
pub(crate) struct Left {
    /// The source folder it left, and its UID there.
    pub folder: String,
    pub source_uid: u32,
    /// The target folder holding its copy, that folder's UIDVALIDITY, and the copy itself.
    pub target_folder: String,
    pub target_uidvalidity: u32,
    pub copy: MessageMeta,
}

/// Pairs each message that arrived in a folder (`(source folder, message)`) with a message
/// that left another folder and whose copy is the same message; each copy moves once.
/// Returns `(folder it arrived in, the move)` and `(folder it left, source UID there)`.
pub(crate) fn match_moves(
    arrived: &[(String, MessageMeta)],
    left: &[Left],
) -> Vec<((String, MoveIn), (String, u32))> {
    let mut by_id: HashMap<&str, Vec<&Left>> = HashMap::new();
    for l in left {
        if let Some(id) = &l.copy.message_id {
            by_id.entry(id.as_str()).or_default().push(l);
        }
    }
    let mut taken: HashSet<(&str, u32)> = HashSet::new();
    let mut out = Vec::new();
    for (folder, m) in arrived {
        let Some(candidates) = m.message_id.as_deref().and_then(|id| by_id.get(id)) else {
            continue;
        };
        let found = candidates.iter().find(|l| {
            l.folder != *folder
                && same_message(m, &l.copy)
                && !taken.contains(&(l.folder.as_str(), l.source_uid))
        });
        if let Some(l) = found {
            taken.insert((l.folder.as_str(), l.source_uid));
            out.push((
                (
                    folder.clone(),
                    MoveIn {
                        source_uid: m.uid,
                        from: l.target_folder.clone(),
                        target_uid: l.copy.uid,
                        target_uidvalidity: l.target_uidvalidity,
                        message_id: m.message_id.clone().unwrap_or_default(),
                        size: m.size,
                        internaldate: m.internaldate.unix_timestamp(),
                    },
                ),
                (l.folder.clone(), l.source_uid),
            ));
        }
    }
    out
}

impl App {
    /// The moves of a delta pass, per source folder: `planned` are the folders this pass
    /// copies, `existing` the checkpoints of earlier passes. Nothing on a first pass, or where
    /// folders are labels (Gmail: a message is in several at once). Only when some message
    /// left a folder are the new messages of every folder read.
    /// Best effort: a folder that cannot be read here is copied as before by its own job, so
    /// an error finds no moves rather than failing the plan.
    pub(super) async fn find_moves(
        &self,
        s: &mut Sessions,
        user: &MailUser,
        planned: &[PlannedFolder],
        existing: &HashMap<String, FolderState>,
    ) -> HashMap<String, FolderMoves> {
        // After the cutover the user works in the new mailbox: passes only add mail.
        if user.pass <= 1
            || s.source_labels
            || s.target_labels
            || user.sync.cut_over_at.is_some()
            || !s
                .target
                .capabilities()
                .iter()
                .any(|c| c.eq_ignore_ascii_case("UIDPLUS"))
        {
            return HashMap::new();
        }
        match self.try_find_moves(s, user, planned, existing).await {
            Ok(moves) => moves,
            Err(e) => {
                tracing::warn!(user = %user.id, error = %e, "could not look for moved messages; copying as before");
                HashMap::new()
            }
        }
    }

    async fn try_find_moves(
        &self,
        s: &mut Sessions,
        user: &MailUser,
        planned: &[PlannedFolder],
        existing: &HashMap<String, FolderState>,
    ) -> Result<HashMap<String, FolderMoves>, AppError> {
        let mut moves: HashMap<String, FolderMoves> = HashMap::new();
        let mut left = Vec::new();
        for f in planned.iter().filter_map(|p| existing.get(&p.source)) {
            left.extend(self.left_folder(s, f).await?);
        }
        if left.is_empty() {
            return Ok(moves);
        }
        let mut arrived = Vec::new();
        for p in planned {
            let status = match s.source.examine(&p.source).await {
                Ok(status) => status,
                Err(MailboxError::FolderNotFound(_)) => continue,
                Err(e) => return Err(mailbox_err(e)),
            };
            // Above the high-water mark of an earlier pass; all of a folder new to this one.
            let after = match existing.get(&p.source) {
                Some(f) if f.uidvalidity == Some(status.uidvalidity) => f.last_uid,
                Some(_) => continue,
                None => 0,
            };
            if status.messages == 0 || status.uidnext <= after + 1 {
                continue;
            }
            let new = s
                .source
                .fetch_meta(after + 1, u32::MAX)
                .await
                .map_err(mailbox_err)?;
            arrived.extend(
                new.into_iter()
                    .filter(|m| m.uid > after && m.message_id.is_some())
                    .map(|m| (p.source.clone(), m)),
            );
        }
        let new_part = || FolderMoves {
            pass: user.pass,
            ..FolderMoves::default()
        };
        for ((into, m), (from, uid)) in match_moves(&arrived, &left) {
            moves.entry(into).or_insert_with(new_part).incoming.push(m);
            moves
                .entry(from)
                .or_insert_with(new_part)
                .outgoing
                .push(uid);
        }
        Ok(moves)
    }

    /// The messages gone from `f` at the source whose copies the target still holds, with
    /// those copies as the target reports them. A folder the source renumbered or deleted, or
    /// whose target copy map no longer holds, gives none.
    async fn left_folder(&self, s: &mut Sessions, f: &FolderState) -> Result<Vec<Left>, AppError> {
        if f.copies.is_empty() {
            return Ok(Vec::new());
        }
        let status = match s.source.examine(&f.source_name).await {
            Ok(status) => status,
            Err(MailboxError::FolderNotFound(_)) => return Ok(Vec::new()),
            Err(e) => return Err(mailbox_err(e)),
        };
        if f.uidvalidity != Some(status.uidvalidity) {
            return Ok(Vec::new());
        }
        // By target UID.
        let gone: HashMap<u32, u32> = self
            .gone_copies(s, f)
            .await?
            .into_iter()
            .map(|(source, target)| (target, source))
            .collect();
        let (Some(&first), Some(&last)) = (gone.keys().min(), gone.keys().max()) else {
            return Ok(Vec::new());
        };
        let target = match s.target.select(&f.target_name).await {
            Ok(t) => t,
            Err(MailboxError::FolderNotFound(_)) => return Ok(Vec::new()),
            Err(e) => return Err(mailbox_err(e)),
        };
        if f.copies.target_uidvalidity != Some(target.uidvalidity) {
            return Ok(Vec::new());
        }
        let copies = s
            .target
            .fetch_meta(first, last)
            .await
            .map_err(mailbox_err)?;
        Ok(copies
            .into_iter()
            .filter_map(|copy| {
                let source_uid = *gone.get(&copy.uid)?;
                Some(Left {
                    folder: f.source_name.clone(),
                    source_uid,
                    target_folder: f.target_name.clone(),
                    target_uidvalidity: target.uidvalidity,
                    copy,
                })
            })
            .collect())
    }

    /// Moves on the target the messages of `wanted` that the pass's plan found moved at the
    /// source (COPY from the folder they left, then, when the project removes what the source
    /// deleted, the old copy deleted), and leaves the rest to upload. A copy answered with a
    /// UID below the chunk's `uidnext`, or not copied at all, is uploaded instead.
    pub(super) async fn move_instead_of_upload<'m>(
        &self,
        s: &mut Sessions,
        (target_name, incoming): (&str, &[MoveIn]),
        wanted: &[&'m MessageMeta],
        uidnext: u32,
        remove: bool,
    ) -> Result<Labelled<'m>, AppError> {
        let mut done = Labelled {
            metas: Vec::new(),
            outcomes: Vec::new(),
            upload: Vec::new(),
        };
        if incoming.is_empty() {
            done.upload = wanted.to_vec();
            return Ok(done);
        }
        let incoming: HashMap<u32, &MoveIn> = incoming.iter().map(|m| (m.source_uid, m)).collect();
        let mut by_origin: HashMap<(&str, u32), Vec<(&'m MessageMeta, u32)>> = HashMap::new();
        // Only a UID that still names the message the plan saw is moved.
        let same = |m: &MessageMeta, mv: &MoveIn| {
            m.message_id.as_deref() == Some(mv.message_id.as_str())
                && m.size == mv.size
                && m.internaldate.unix_timestamp() == mv.internaldate
        };
        for &m in wanted {
            match incoming.get(&m.uid).filter(|mv| same(m, mv)) {
                Some(mv) => by_origin
                    .entry((mv.from.as_str(), mv.target_uidvalidity))
                    .or_default()
                    .push((m, mv.target_uid)),
                None => done.upload.push(m),
            }
        }
        for ((from, uidvalidity), group) in by_origin {
            let origin = match s.target.select(from).await {
                Ok(status) => status,
                Err(MailboxError::FolderNotFound(_)) => {
                    done.upload.extend(group.iter().map(|(m, _)| *m));
                    continue;
                }
                Err(e) => return Err(mailbox_err(e)),
            };
            if origin.uidvalidity != uidvalidity {
                done.upload.extend(group.iter().map(|(m, _)| *m));
                continue;
            }
            let uids: Vec<u32> = group.iter().map(|&(_, uid)| uid).collect();
            let copies: HashMap<u32, Option<u32>> = match s.target.copy_to(&uids, target_name).await
            {
                Ok(copies) => copies.into_iter().collect(),
                Err(e) => {
                    tracing::info!(folder = %target_name, error = %e, "could not move on the target; uploading");
                    HashMap::new()
                }
            };
            for (m, uid) in group {
                match copies.get(&uid) {
                    // Only a copy the server names (COPYUID), made by this chunk, is taken for
                    // the message; anything else is uploaded (the worst is a second copy).
                    Some(&Some(copy)) if copy >= uidnext => {
                        done.metas.push(m.clone());
                        done.outcomes
                            .push(AppendOutcome::Appended { uid: Some(copy) });
                    }
                    _ => done.upload.push(m),
                }
            }
            if remove {
                // The messages left the origin folder at the source, moved or uploaded here:
                // its old copies go (still selected; a copy already gone is no matter).
                s.target.delete(&uids).await.map_err(mailbox_err)?;
            }
        }
        done.upload.sort_by_key(|m| m.uid);
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn meta(uid: u32, id: Option<&str>, size: u64) -> MessageMeta {
        MessageMeta {
            uid,
            size,
            flags: vec![],
            internaldate: datetime!(2026-05-01 9:00 UTC),
            modseq: None,
            message_id: id.map(str::to_owned),
            gmail_id: None,
        }
    }

    fn left(folder: &str, source_uid: u32, copy: MessageMeta) -> Left {
        Left {
            folder: folder.into(),
            source_uid,
            target_folder: format!("T.{folder}"),
            target_uidvalidity: 7,
            copy,
        }
    }

    #[test]
    fn a_message_that_left_one_folder_and_arrived_in_another_is_a_move() {
        let arrived = vec![
            ("Archive".to_owned(), meta(40, Some("<a@x>"), 1000)),
            ("Archive".to_owned(), meta(41, Some("<b@x>"), 2000)),
        ];
        let gone = vec![left("INBOX", 3, meta(12, Some("<a@x>"), 1000))];
        let moves = match_moves(&arrived, &gone);
        assert_eq!(moves.len(), 1);
        let ((into, mv), (from, uid)) = &moves[0];
        assert_eq!(
            (into.as_str(), from.as_str(), *uid),
            ("Archive", "INBOX", 3)
        );
        assert_eq!(
            mv,
            &MoveIn {
                source_uid: 40,
                from: "T.INBOX".into(),
                target_uid: 12,
                target_uidvalidity: 7,
                message_id: "<a@x>".into(),
                size: 1000,
                internaldate: datetime!(2026-05-01 9:00 UTC).unix_timestamp(),
            }
        );
    }

    #[test]
    fn anything_not_surely_the_same_message_is_copied_as_before() {
        let arrived = vec![
            // Same Message-ID, another size (another message, or a target that rewrote it).
            ("Archive".to_owned(), meta(40, Some("<a@x>"), 999)),
            // No Message-ID: identity unknown.
            ("Archive".to_owned(), meta(41, None, 500)),
            // Deleted and re-added in the same folder: not a move.
            ("INBOX".to_owned(), meta(42, Some("<c@x>"), 300)),
        ];
        let gone = vec![
            left("INBOX", 3, meta(12, Some("<a@x>"), 1000)),
            left("INBOX", 4, meta(13, None, 500)),
            left("INBOX", 5, meta(14, Some("<c@x>"), 300)),
        ];
        assert!(match_moves(&arrived, &gone).is_empty());
    }

    #[test]
    fn two_identical_messages_move_as_two_and_a_copy_moves_once() {
        let arrived = vec![
            ("Archive".to_owned(), meta(40, Some("<a@x>"), 1000)),
            ("Archive".to_owned(), meta(41, Some("<a@x>"), 1000)),
            ("Old".to_owned(), meta(7, Some("<a@x>"), 1000)),
        ];
        let gone = vec![
            left("INBOX", 3, meta(12, Some("<a@x>"), 1000)),
            left("INBOX", 4, meta(13, Some("<a@x>"), 1000)),
        ];
        let moves = match_moves(&arrived, &gone);
        let taken: HashSet<u32> = moves.iter().map(|(_, (_, uid))| *uid).collect();
        assert_eq!(
            moves.len(),
            2,
            "two copies, two moves; the third arrival is copied"
        );
        assert_eq!(taken, HashSet::from([3, 4]));
    }
}
