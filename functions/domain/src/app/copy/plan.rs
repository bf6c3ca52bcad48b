//! Planning a pass: which source folders are copied, under which target names, created on the
//! target (with subscriptions), a checkpoint per folder and one copy job each.

use std::collections::HashMap;

use contract::UserState;
use contract::jobs::Job;

use crate::error::AppError;
use crate::mailbox::{FolderInfo, SpecialUse};
use crate::model::*;
use crate::state::Transition;

use super::naming::{Namespaces, Placed, avoid_reserved, keep_apart, map_folder};
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

/// The folders a pass of `project` copies, as both servers list them now: mapped by the
/// project's rules and the services' profiles, keeping the target names of `prior` passes.
pub(super) async fn planned_folders(
    project: &Project,
    s: &mut Sessions,
    prior: &HashMap<String, String>,
) -> Result<Vec<PlannedFolder>, AppError> {
    let source_folders = s.source.list_folders().await.map_err(mailbox_err)?;
    let target_folders = s.target.list_folders().await.map_err(mailbox_err)?;
    let namespaces = Namespaces {
        source: s.source.namespace().await.map_err(mailbox_err)?,
        target: s.target.namespace().await.map_err(mailbox_err)?,
    };
    let rules = ServiceRules {
        reserved: crate::providers::profile(project.target.kind)
            .reserved_folders
            .value,
        views: crate::providers::profile(project.source.kind)
            .virtual_folders
            .value,
    };
    Ok(plan_folders(
        &project.copy,
        &source_folders,
        &namespaces,
        &target_folders,
        prior,
        rules,
    ))
}

impl App {
    /// Lists and maps the folders, creates them on the target, records a checkpoint per folder
    /// and queues one copy job per folder.
    pub(super) async fn plan(
        &self,
        project: &Project,
        user: &MailUser,
        sessions: &mut Option<Sessions>,
    ) -> Result<JobOutcome, AppError> {
        let user = if user.state == UserState::Scheduled {
            self.transition(user, Transition::StartWork, |_| {}).await?
        } else {
            user.clone()
        };
        let mut s = self.sessions_for(sessions, project, &user).await?;
        let outcome = self.plan_with(project, &user, &mut s).await;
        if outcome.is_ok() {
            *sessions = Some(s);
        } else {
            s.close().await;
        }
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
        let existing: HashMap<String, FolderState> = self
            .deps
            .store
            .list_folders(user.id)
            .await?
            .into_iter()
            .map(|f| (f.source_name.clone(), f))
            .collect();
        let prior: HashMap<String, String> = existing
            .values()
            .map(|f| (f.source_name.clone(), f.target_name.clone()))
            .collect();
        let planned = planned_folders(project, s, &prior).await?;
        if !existing.values().any(|f| f.pass == user.pass) {
            // A new pass counts afresh: each folder's first copy job adds what it will copy.
            self.update_progress(user.id, |p| {
                p.messages_total = p.messages_done;
                p.bytes_total = p.bytes_done;
            })
            .await?;
        }
        let unchanged = self
            .unchanged_folders(project, s, user, &planned, &existing)
            .await;
        let changed: Vec<PlannedFolder> = planned
            .iter()
            .filter(|f| !unchanged.contains(&f.source))
            .cloned()
            .collect();
        let mut moves = self.find_moves(s, user, &changed, &existing).await;
        let mut jobs = Vec::with_capacity(planned.len());
        for folder in &planned {
            let prior = existing.get(&folder.source);
            let mut next = checkpoint_for(folder, prior, user);
            next.moves = moves.remove(&folder.source);
            let skip = unchanged.contains(&folder.source)
                && prior.is_some_and(|p| p.target_name == next.target_name);
            if skip {
                // Nothing to copy, no flag to carry, nothing removed: the folder is done for
                // this pass as it was for the last (its target figures are the last pass's).
                next.done = true;
                next.planned_in_pass = Some(user.pass);
                next.copied_before_pass = Some(next.last_uid);
                next.lease_owner = None;
            }
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
            if !skip {
                jobs.push(Job::Copy {
                    user_id: user.id.0,
                    pass: user.pass,
                    folder: folder.source.clone(),
                    attempt: 0,
                });
            }
        }
        let text = if unchanged.is_empty() {
            format!("pass {}: {} folders to copy", user.pass, jobs.len())
        } else {
            format!(
                "pass {}: {} folders to copy, {} unchanged since the last pass",
                user.pass,
                jobs.len(),
                unchanged.len()
            )
        };
        self.log_event(user, text).await;
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

impl App {
    /// The planned folders a delta pass can skip: finished in an earlier pass, nothing in
    /// flight or planned to move, and the source showing the very [`SourceMark`] it showed
    /// then. One EXAMINE each; a folder that cannot be examined is copied as usual. Never on
    /// Gmail (All Mail's content depends on the other folders).
    async fn unchanged_folders(
        &self,
        project: &Project,
        s: &mut Sessions,
        user: &MailUser,
        planned: &[PlannedFolder],
        existing: &HashMap<String, FolderState>,
    ) -> std::collections::HashSet<String> {
        let mut unchanged = std::collections::HashSet::new();
        if user.pass <= 1 || s.source_labels || s.target_labels {
            return unchanged;
        }
        // Removal asked for now but not done when the mark was taken (the policy changed,
        // or that pass rebuilt the copy map): copies of deleted messages may be left to remove.
        let removal_wanted = project.copy.deleted_at_source == contract::DeletedAtSource::Remove
            && user.sync.cut_over_at.is_none();
        for folder in planned {
            let Some(prior) = existing.get(&folder.source) else {
                continue;
            };
            let Some(mark) = prior.source_mark else {
                continue;
            };
            let settled = prior.done
                && prior.pass < user.pass
                && prior.in_flight.is_none()
                && prior.moves.is_none()
                && prior.lease_owner.is_none()
                && prior.uidvalidity == Some(mark.uidvalidity)
                && (mark.removal_settled || !removal_wanted);
            if !settled {
                continue;
            }
            match s.source.examine(&folder.source).await {
                Ok(status) if mark.still(&status) => {
                    unchanged.insert(folder.source.clone());
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(user = %user.id, folder = %folder.source, error = %e, "examine before the pass failed; the copy job will look");
                }
            }
        }
        unchanged
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
            // A folder the target made us rename keeps its new name, and a folder that has
            // copies keeps the folder they are in (a changed mapping, or a newer mailferry
            // mapping names by namespace, must not split a folder across two targets).
            target_name: if p.renamed_from.as_deref() == Some(folder.target.as_str())
                || p.last_uid > 0
                || p.copied_messages > 0
            {
                p.target_name.clone()
            } else {
                folder.target.clone()
            },
            renamed_from: folder.renamed_from.clone().or_else(|| {
                p.renamed_from
                    .clone()
                    .filter(|first| *first == folder.target)
            }),
            pass: user.pass,
            subscribed: folder.subscribed,
            shares_target: folder.shares_target,
            special_use: folder.special_use,
            done: false,
            version: p.version + 1,
            ..p.clone()
        },
        None => FolderState {
            subscribed: folder.subscribed,
            shares_target: folder.shares_target,
            special_use: folder.special_use,
            renamed_from: folder.renamed_from.clone(),
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
    /// The source folder's role, for a target folder created for it.
    pub special_use: Option<SpecialUse>,
    /// The name it would have had, had another folder's name not met it there.
    pub renamed_from: Option<String>,
}

/// What the two services' profiles say about folders.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ServiceRules {
    /// Top-level names the target's service keeps for itself.
    pub reserved: &'static [&'static str],
    /// Roles of the source's folders that only show mail held in other folders (Gmail's
    /// Starred and Important).
    pub views: &'static [SpecialUse],
}

/// The folders a pass copies: the selectable source folders the project includes and does not
/// exclude, and that are not a view of mail held elsewhere (`rules.views`), each with its
/// target name (a name the target's service keeps for itself gets another:
/// [`avoid_reserved`]).
pub(crate) fn plan_folders(
    options: &CopyOptions,
    source_folders: &[FolderInfo],
    namespaces: &Namespaces,
    target_folders: &[FolderInfo],
    prior: &HashMap<String, String>,
    rules: ServiceRules,
) -> Vec<PlannedFolder> {
    let chosen: Vec<&FolderInfo> = source_folders
        .iter()
        .filter(|f| f.selectable)
        .filter(|f| !f.special_use.is_some_and(|u| rules.views.contains(&u)))
        .filter(|f| {
            let included = options.include.is_empty()
                || options.include.iter().any(|p| glob_match(p, &f.name));
            included && !options.exclude.iter().any(|p| glob_match(p, &f.name))
        })
        .collect();
    let mut placed: Vec<Placed> = chosen
        .iter()
        .map(|f| {
            let (target, mapping) = map_folder(options, f, namespaces, target_folders);
            Placed {
                source: f.name.clone(),
                target,
                mapping,
                renamed_from: None,
            }
        })
        .collect();
    avoid_reserved(&mut placed, rules.reserved, &namespaces.target);
    keep_apart(&mut placed, prior, target_folders);
    let mut per_target: HashMap<String, usize> = HashMap::new();
    for p in &placed {
        *per_target.entry(p.target.clone()).or_default() += 1;
    }
    chosen
        .iter()
        .zip(placed)
        .map(|(f, p)| PlannedFolder {
            shares_target: per_target[&p.target] > 1,
            source: p.source,
            target: p.target,
            subscribed: f.subscribed,
            special_use: f.special_use,
            renamed_from: p.renamed_from,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::naming::tests::folder;
    use super::*;
    use crate::mailbox::SpecialUse;

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
        let planned = plan_folders(
            &options,
            &source,
            &Namespaces::default(),
            &target,
            &HashMap::new(),
            ServiceRules::default(),
        );
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

    #[test]
    fn a_sources_views_of_mail_held_elsewhere_are_not_copied_again() {
        let source = vec![
            folder("INBOX", '/', None),
            folder("[Gmail]/All Mail", '/', Some(SpecialUse::All)),
            folder("[Gmail]/Starred", '/', Some(SpecialUse::Flagged)),
            folder("[Gmail]/Important", '/', Some(SpecialUse::Important)),
            folder("Work", '/', None),
        ];
        let names = |rules| -> Vec<String> {
            plan_folders(
                &CopyOptions::default(),
                &source,
                &Namespaces::default(),
                &[],
                &HashMap::new(),
                rules,
            )
            .into_iter()
            .map(|p| p.source)
            .collect()
        };
        assert_eq!(names(ServiceRules::default()).len(), 5);
        let gmail = ServiceRules {
            views: crate::providers::GOOGLE_WORKSPACE.virtual_folders.value,
            ..ServiceRules::default()
        };
        // All Mail stays: it is the only home of archived mail.
        assert_eq!(names(gmail), ["INBOX", "[Gmail]/All Mail", "Work"]);
    }
}
