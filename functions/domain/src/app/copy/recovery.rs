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
    /// as `(source UID, target UID)` pairs. The target folder must be selected.
    pub(super) async fn match_on_target(
        &self,
        s: &mut Sessions,
        range: &[&MessageMeta],
        from: u32,
    ) -> Result<Vec<(u32, u32)>, AppError> {
        if range.is_empty() {
            return Ok(Vec::new());
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
            return Ok(Vec::new());
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
        let target: Vec<Candidate> = target
            .iter()
            .map(|m| candidate(m, target_content.get(&m.uid).copied()))
            .collect();
        Ok(identity::match_copies(&source, &target))
    }
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
