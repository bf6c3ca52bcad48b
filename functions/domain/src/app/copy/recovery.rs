//! Finding on the target what an interrupted attempt already appended: the metadata of the
//! target range, and for messages without Message-ID the digests of their bytes on both
//! sides, handed to [`identity::match_copies`].

use std::collections::HashMap;

use crate::error::AppError;
use crate::mailbox::MessageMeta;

use super::identity::{self, Candidate, Content};
use super::{App, Sessions, mailbox_err};

pub(super) fn candidate(m: &MessageMeta, content: Option<Content>) -> Candidate {
    Candidate {
        uid: m.uid,
        message_id: m.message_id.clone(),
        size: m.size,
        internaldate: m.internaldate.unix_timestamp(),
        content,
    }
}

impl App {
    /// Which of `range` (source messages) already have a copy on the target at UIDs ≥ `from`,
    /// as `(source UID, target UID)` pairs, with the flags each of those copies has now. The
    /// target folder must be selected.
    pub(super) async fn match_on_target(
        &self,
        s: &mut Sessions,
        range: &[&MessageMeta],
        from: u32,
    ) -> Result<Found, AppError> {
        if range.is_empty() {
            return Ok(Found::default());
        }
        let target: Vec<MessageMeta> = s
            .target
            .fetch_meta(from, u32::MAX)
            .await
            .map_err(mailbox_err)?
            .into_iter()
            .filter(|m| m.uid >= from)
            .collect();
        if target.is_empty() {
            return Ok(Found::default());
        }
        // Messages without Message-ID are compared by their bytes: digest those on both sides
        // (only the digests are kept, so memory stays bounded by one message).
        let source_without_id: Vec<u32> = range
            .iter()
            .filter(|m| m.message_id.is_none())
            .map(|m| m.uid)
            .collect();
        let target_without_id: Vec<u32> = target
            .iter()
            .filter(|m| m.message_id.is_none())
            .map(|m| m.uid)
            .collect();
        let (source_content, target_content) =
            if !source_without_id.is_empty() && !target_without_id.is_empty() {
                digests(s, &source_without_id, &target_without_id).await?
            } else {
                Default::default()
            };
        let source: Vec<Candidate> = range
            .iter()
            .map(|m| candidate(m, source_content.get(&m.uid).copied()))
            .collect();
        let candidates: Vec<Candidate> = target
            .iter()
            .map(|m| candidate(m, target_content.get(&m.uid).copied()))
            .collect();
        let pairs = identity::match_copies(&source, &candidates);
        let paired: std::collections::HashSet<u32> = pairs.iter().map(|&(_, t)| t).collect();
        let copy_flags = target
            .into_iter()
            .filter(|m| paired.contains(&m.uid))
            .map(|m| (m.uid, m.flags))
            .collect();
        Ok(Found { pairs, copy_flags })
    }

    /// Gives each found copy the flags of the source message it was paired with, where they
    /// differ. Two identical messages with different flags cannot be told apart by what the
    /// target kept, and an interrupted attempt may have appended the second before the first
    /// (the first's FETCH failed once); without this, the copy map would name a copy of one
    /// for the other, and both copies would end with one message's flags. A copy whose flags
    /// a target dropped on APPEND, interrupted before they were set again, gets them here too.
    /// Best effort: a refused STORE leaves the copy as it is, and is logged.
    pub(super) async fn give_copies_their_flags(
        &self,
        s: &mut Sessions,
        range: &[&MessageMeta],
        found: &Found,
    ) {
        for (uid, flags) in super::decide::paired_flag_fixes(range, &found.pairs, &found.copy_flags)
        {
            if let Err(e) = s.target.set_flags(uid, &flags).await {
                tracing::warn!(uid, error = %e, "a recovered copy's flags could not be set");
            }
        }
    }
}

/// What recovery found on the target.
#[derive(Debug, Default)]
pub(super) struct Found {
    /// `(source UID, target UID)`: the source messages that have a copy.
    pub pairs: Vec<(u32, u32)>,
    /// The flags of those copies, by target UID.
    pub copy_flags: HashMap<u32, Vec<String>>,
}

/// The digests of these source and target messages' bytes (only the digests are kept, so
/// memory stays bounded by one message).
pub(super) async fn digests(
    s: &mut Sessions,
    source_uids: &[u32],
    target_uids: &[u32],
) -> Result<(HashMap<u32, Content>, HashMap<u32, Content>), AppError> {
    let mut source_content = HashMap::new();
    let mut target_content = HashMap::new();
    s.target
        .fetch_bodies(target_uids, &mut |m| {
            target_content.insert(m.meta.uid, Content::of(&m.body));
            Ok(())
        })
        .await
        .map_err(mailbox_err)?;
    s.source
        .fetch_bodies(source_uids, &mut |m| {
            source_content.insert(m.meta.uid, Content::of(&m.body));
            Ok(())
        })
        .await
        .map_err(mailbox_err)?;
    Ok((source_content, target_content))
}
