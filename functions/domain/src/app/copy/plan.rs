//! Planning a pass: which source folders are copied, under which target names, created on the
//! target (with subscriptions), a checkpoint per folder and one copy job each.

use std::collections::HashMap;

use contract::UserState;
use contract::jobs::Job;

use crate::error::AppError;
use crate::mailbox::FolderInfo;
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

    /// Records a checkpoint per folder to copy and queues one copy job each. Nothing here
    /// waits on a folder's size: each copy job examines its own folder (with its own deadline),
    /// so a mailbox of any size plans in two LISTs and one write per folder.
    async fn plan_with(
        &self,
        project: &Project,
        user: &MailUser,
        s: &mut Sessions,
    ) -> Result<JobOutcome, AppError> {
        let source_folders = s.source.list_folders().await.map_err(mailbox_err)?;
        let target_folders = s.target.list_folders().await.map_err(mailbox_err)?;
        let planned = plan_folders(&project.copy, &source_folders, &target_folders);
        let existing: HashMap<String, FolderState> = self
            .deps
            .store
            .list_folders(user.id)
            .await?
            .into_iter()
            .map(|f| (f.source_name.clone(), f))
            .collect();
        if !existing.values().any(|f| f.pass == user.pass) {
            // A new pass counts afresh: each folder's first copy job adds what it will copy.
            self.update_progress(user.id, |p| {
                p.messages_total = p.messages_done;
                p.bytes_total = p.bytes_done;
            })
            .await?;
        }
        let mut jobs = Vec::with_capacity(planned.len());
        for folder in &planned {
            let prior = existing.get(&folder.source);
            let next = checkpoint_for(folder, prior, user);
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
                folder: folder.source.clone(),
                attempt: 0,
            });
        }
        self.log_event(
            user,
            format!("pass {}: {} folders to copy", user.pass, jobs.len()),
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

/// A folder's checkpoint at the start of a pass: the earlier checkpoint carried over (what
/// was copied stays copied), or a fresh one.
fn checkpoint_for(
    folder: &PlannedFolder,
    prior: Option<&FolderState>,
    user: &MailUser,
) -> FolderState {
    match prior {
        Some(p) => FolderState {
            target_name: folder.target.clone(),
            pass: user.pass,
            subscribed: folder.subscribed,
            shares_target: folder.shares_target,
            done: false,
            version: p.version + 1,
            ..p.clone()
        },
        None => FolderState {
            subscribed: folder.subscribed,
            shares_target: folder.shares_target,
            ..FolderState::new(user.id, &folder.source, &folder.target, user.pass)
        },
    }
}

/// A source folder the pass copies, and where to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedFolder {
    pub source: String,
    pub target: String,
    pub subscribed: bool,
    /// Another planned source folder has the same target.
    pub shares_target: bool,
}

/// The folders a pass copies: the selectable source folders the project includes and does not
/// exclude, each with its target name.
pub(crate) fn plan_folders(
    options: &CopyOptions,
    source_folders: &[FolderInfo],
    target_folders: &[FolderInfo],
) -> Vec<PlannedFolder> {
    let target_delimiter = target_folders.iter().find_map(|f| f.delimiter);
    let mut planned: Vec<PlannedFolder> = source_folders
        .iter()
        .filter(|f| f.selectable)
        .filter(|f| {
            let included = options.include.is_empty()
                || options.include.iter().any(|p| glob_match(p, &f.name));
            included && !options.exclude.iter().any(|p| glob_match(p, &f.name))
        })
        .map(|f| PlannedFolder {
            source: f.name.clone(),
            target: map_folder_name(options, f, target_folders, target_delimiter),
            subscribed: f.subscribed,
            shares_target: false,
        })
        .collect();
    let mut per_target: HashMap<String, usize> = HashMap::new();
    for p in &planned {
        *per_target.entry(p.target.clone()).or_default() += 1;
    }
    for p in &mut planned {
        p.shares_target = per_target[&p.target] > 1;
    }
    planned
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

    #[test]
    fn a_pass_plans_included_selectable_folders_and_marks_shared_targets() {
        let mut hidden = folder("Hidden", '/', None);
        hidden.selectable = false;
        let source = vec![
            folder("INBOX", '/', None),
            folder("Sent", '/', Some(SpecialUse::Sent)),
            folder("Sent Messages", '/', Some(SpecialUse::Sent)),
            folder("Junk", '/', None),
            hidden,
        ];
        let target = vec![folder("Sent Items", '.', Some(SpecialUse::Sent))];
        let options = CopyOptions {
            exclude: vec!["Junk".into()],
            ..Default::default()
        };
        let planned = plan_folders(&options, &source, &target);
        let summary: Vec<(&str, &str, bool)> = planned
            .iter()
            .map(|p| (p.source.as_str(), p.target.as_str(), p.shares_target))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("INBOX", "INBOX", false),
                ("Sent", "Sent Items", true),
                ("Sent Messages", "Sent Items", true),
            ]
        );
    }
}
