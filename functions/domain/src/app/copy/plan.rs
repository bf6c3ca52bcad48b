//! Planning a pass: which source folders are copied, under which target names, created on the
//! target (with subscriptions), a checkpoint per folder and one copy job each.

use std::collections::HashMap;

use contract::UserState;
use contract::jobs::Job;

use crate::error::AppError;
use crate::mailbox::{FolderInfo, MessageMeta};
use crate::model::*;
use crate::state::Transition;

use super::{App, JobOutcome, Sessions, mailbox_err};

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

impl App {
    /// Lists and maps the folders, creates them on the target, records a checkpoint per folder
    /// and queues one copy job per folder.
    pub(super) async fn plan(&self, user: &MailUser) -> Result<JobOutcome, AppError> {
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
                    map_rebuilt_in_pass: None,
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
}
