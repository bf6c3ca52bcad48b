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
    pub(super) async fn label_instead_of_upload<'m>(
        &self,
        s: &mut Sessions,
        target_name: &str,
        wanted: &[&'m MessageMeta],
    ) -> Result<Labelled<'m>, AppError> {
        let mut labelled = Labelled {
            metas: Vec::new(),
            outcomes: Vec::new(),
            upload: wanted.to_vec(),
        };
        if !s.target_labels || wanted.iter().all(|m| m.message_id.is_none()) {
            return Ok(labelled);
        }
        let all_mail = match &s.target_all_mail {
            Some(known) => known.clone(),
            None => {
                let folders = s.target.list_folders().await.map_err(mailbox_err)?;
                let found = folders
                    .into_iter()
                    .find(|f| f.special_use == Some(SpecialUse::All))
                    .map(|f| f.name);
                s.target_all_mail = Some(found.clone());
                found
            }
        };
        // Into All Mail itself (archived mail) there is no label to apply.
        let Some(all_mail) = all_mail.filter(|name| name != target_name) else {
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
