//! A target whose folders are labels (Gmail): a message copied into one folder is already in
//! the account, and copying it into a second folder is applying a label. Uploading it again
//! would spend the account's daily upload budget (500 MB on Gmail) on bytes it has, so the
//! engine looks for each message in the target's All Mail first and COPYs what it finds into
//! the folder; only the rest is uploaded.
//!
//! A message is taken for one All Mail holds only when Message-ID, size and INTERNALDATE all
//! agree (Gmail keeps the bytes and the date APPEND gives); anything else is uploaded, so the
//! worst a miss costs is bandwidth, never a message. The copies land in the chunk's target
//! range like appended ones, so a crash between COPY and checkpoint is resumed the same way.

use std::collections::{HashMap, HashSet};

use crate::error::AppError;
use crate::mailbox::{AppendOutcome, MessageMeta, SpecialUse};

use super::decide;
use super::{App, Sessions, mailbox_err};

/// The target's All Mail, and the folders a label must never be applied to: on Gmail, Trash
/// and Spam exclude every other label, so a COPY there would take the message out of the
/// folders it was copied to before.
#[derive(Debug, Clone, Default)]
pub(super) struct LabelFolders {
    all_mail: Option<String>,
    exclusive: Vec<String>,
}

/// What labels gave a chunk: the messages now in the folder with their outcomes (as APPEND
/// would report them), and the messages still to upload, in the order given.
pub(super) struct Labelled<'m> {
    pub metas: Vec<MessageMeta>,
    pub outcomes: Vec<AppendOutcome>,
    pub upload: Vec<&'m MessageMeta>,
}

impl App {
    /// Applies `target_name`'s label to the messages of `wanted` the target already holds, and
    /// leaves the rest to upload. A target without labels, or without All Mail, uploads all.
    /// `uidnext` is the target folder's next UID before the chunk: a COPY answered with an
    /// older UID landed on a message the folder already showed (an identical message copied
    /// before), which is no copy of this one, so it is uploaded instead.
    pub(super) async fn label_instead_of_upload<'m>(
        &self,
        s: &mut Sessions,
        target_name: &str,
        wanted: &[&'m MessageMeta],
        uidnext: u32,
    ) -> Result<Labelled<'m>, AppError> {
        let mut labelled = Labelled {
            metas: Vec::new(),
            outcomes: Vec::new(),
            upload: wanted.to_vec(),
        };
        if !s.target_labels || wanted.iter().all(|m| m.message_id.is_none()) {
            return Ok(labelled);
        }
        let folders = match &s.target_all_mail {
            Some(known) => known.clone(),
            None => {
                let listed = s.target.list_folders().await.map_err(mailbox_err)?;
                let role = |uses: &[SpecialUse]| {
                    listed
                        .iter()
                        .filter(|f| f.special_use.is_some_and(|u| uses.contains(&u)))
                        .map(|f| f.name.clone())
                        .collect::<Vec<_>>()
                };
                let found = LabelFolders {
                    all_mail: role(&[SpecialUse::All]).into_iter().next(),
                    exclusive: role(&[SpecialUse::Trash, SpecialUse::Junk]),
                };
                s.target_all_mail = Some(found.clone());
                found
            }
        };
        // Into All Mail itself (archived mail) there is no label to apply; Trash and Spam
        // would take the message out of its other folders.
        let excluded = |name: &String| {
            name == target_name || folders.exclusive.iter().any(|e| e == target_name)
        };
        let Some(all_mail) = folders.all_mail.clone().filter(|n| !excluded(n)) else {
            return Ok(labelled);
        };
        s.target.select(&all_mail).await.map_err(mailbox_err)?;
        let mut found: Vec<(&'m MessageMeta, u32)> = Vec::new();
        let mut taken = HashSet::new();
        let mut upload = Vec::new();
        for &m in wanted {
            let hit = match &m.message_id {
                Some(id) => s
                    .target
                    .find_by_message_id(id)
                    .await
                    .map_err(mailbox_err)?
                    .into_iter()
                    .find(|f| decide::same_message(m, f) && !taken.contains(&f.uid)),
                None => None,
            };
            match hit {
                Some(f) => {
                    taken.insert(f.uid);
                    found.push((m, f.uid));
                }
                None => upload.push(m),
            }
        }
        if !found.is_empty() {
            let uids: Vec<u32> = found.iter().map(|&(_, uid)| uid).collect();
            let copies: HashMap<u32, Option<u32>> = s
                .target
                .copy_to(&uids, target_name)
                .await
                .map_err(mailbox_err)?
                .into_iter()
                .collect();
            for (m, uid) in found {
                match copies.get(&uid) {
                    // A message the folder showed before this chunk: not this one's copy.
                    Some(&Some(copy)) if copy < uidnext => upload.push(m),
                    Some(&copy) => {
                        labelled.metas.push(m.clone());
                        labelled
                            .outcomes
                            .push(AppendOutcome::Appended { uid: copy });
                    }
                    // Gone from All Mail meanwhile: uploaded after all.
                    None => upload.push(m),
                }
            }
        }
        upload.sort_by_key(|m| m.uid);
        labelled.upload = upload;
        Ok(labelled)
    }
}
