//! Planning a pass: which source folders are copied, under which target names, created on the
//! target (with subscriptions), a checkpoint per folder and one copy job each.

use std::collections::HashMap;

use contract::UserState;
use contract::jobs::Job;

use crate::error::AppError;
use crate::mailbox::{FolderInfo, Namespace, SpecialUse};
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

/// The personal namespaces of both sides of a pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Namespaces {
    pub source: Namespace,
    pub target: Namespace,
}

/// The target name of a source folder: the explicit map, then INBOX, then the target folder
/// that has the same special-use role, then the same path under the target's namespace: the
/// source's personal prefix taken off (`INBOX.Sent` on Cyrus is `Sent`), the target's put on
/// (`Sent` becomes `INBOX.Sent` on Cyrus), the target's delimiter between the levels (a level
/// containing the target delimiter gets `_` for it).
///
/// A child of INBOX on a server without a prefix (`INBOX/Tax`) goes to the same child of INBOX
/// on a target whose folders live under `INBOX.` (`INBOX.Tax`, not `INBOX.INBOX.Tax`); the other
/// way, `INBOX.Tax` becomes `Tax`.
pub(crate) fn map_folder_name(
    options: &CopyOptions,
    source: &FolderInfo,
    namespaces: &Namespaces,
    target_folders: &[FolderInfo],
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
    let (from, to) = (&namespaces.source, &namespaces.target);
    let source_delimiter = source.delimiter.or(from.delimiter);
    let target_delimiter = to
        .delimiter
        .or_else(|| target_folders.iter().find_map(|f| f.delimiter));
    let relative = relative_name(&source.name, from, source_delimiter, &to.prefix);
    let path = match (source_delimiter, target_delimiter) {
        (Some(sd), Some(td)) if sd != td => relative
            .split(sd)
            .map(|part| part.replace(td, "_"))
            .collect::<Vec<_>>()
            .join(&td.to_string()),
        _ => relative.to_owned(),
    };
    format!("{}{path}", to.prefix)
}

/// The source name without the source's personal prefix (and without `INBOX` + delimiter when
/// the target puts every folder under INBOX anyway).
fn relative_name<'a>(
    name: &'a str,
    source: &Namespace,
    source_delimiter: Option<char>,
    target_prefix: &str,
) -> &'a str {
    if !source.prefix.is_empty() {
        return strip_prefix_ignoring_case(name, &source.prefix).unwrap_or(name);
    }
    let target_under_inbox = strip_prefix_ignoring_case(target_prefix, "INBOX")
        .is_some_and(|rest| rest.chars().count() == 1);
    match source_delimiter {
        Some(sd) if target_under_inbox => {
            strip_prefix_ignoring_case(name, &format!("INBOX{sd}")).unwrap_or(name)
        }
        _ => name,
    }
}

/// `name` without `prefix`, compared without regard to ASCII case (`INBOX.` / `Inbox.`).
fn strip_prefix_ignoring_case<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let head = name.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &name[prefix.len()..])
        .filter(|rest| !rest.is_empty())
}

/// The name a folder gets when the target refuses the planned one (a character it does not
/// allow in names, a reserved word): every character of each level that is not a letter, a
/// digit, a space, `-` or `_` becomes `_`, and the target's prefix stays. `None` when that
/// changes nothing (the refusal is not about the name).
pub(crate) fn safe_folder_name(name: &str, namespace: &Namespace) -> Option<String> {
    let prefix = if name.len() > namespace.prefix.len() {
        strip_prefix_ignoring_case(name, &namespace.prefix).map(|_| &name[..namespace.prefix.len()])
    } else {
        None
    }
    .unwrap_or("");
    let rest = &name[prefix.len()..];
    let safe: String = rest
        .chars()
        .map(|c| {
            let keep = c.is_alphanumeric()
                || matches!(c, ' ' | '-' | '_')
                || Some(c) == namespace.delimiter;
            if keep { c } else { '_' }
        })
        .collect();
    (safe != rest).then(|| format!("{prefix}{safe}"))
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
        let namespaces = Namespaces {
            source: s.source.namespace().await.map_err(mailbox_err)?,
            target: s.target.namespace().await.map_err(mailbox_err)?,
        };
        let planned = plan_folders(&project.copy, &source_folders, &namespaces, &target_folders);
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
            renamed_from: p
                .renamed_from
                .clone()
                .filter(|first| *first == folder.target),
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
}

/// The folders a pass copies: the selectable source folders the project includes and does not
/// exclude, each with its target name.
pub(crate) fn plan_folders(
    options: &CopyOptions,
    source_folders: &[FolderInfo],
    namespaces: &Namespaces,
    target_folders: &[FolderInfo],
) -> Vec<PlannedFolder> {
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
            target: map_folder_name(options, f, namespaces, target_folders),
            subscribed: f.subscribed,
            shares_target: false,
            special_use: f.special_use,
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

    fn ns(prefix: &str, delimiter: char) -> Namespace {
        Namespace {
            prefix: prefix.into(),
            delimiter: Some(delimiter),
        }
    }

    /// Dovecot's default namespace as the source, one like Cyrus's or Courier's as the target.
    fn dovecot_to_cyrus() -> Namespaces {
        Namespaces {
            source: ns("", '/'),
            target: ns("INBOX.", '.'),
        }
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
        let flat = Namespaces {
            source: ns("", '/'),
            target: ns("", '.'),
        };
        let name = |f: FolderInfo| map_folder_name(&options, &f, &flat, &target);
        assert_eq!(name(folder("Old/Stuff", '/', None)), "Archive.Stuff");
        assert_eq!(
            name(folder("Sent", '/', Some(SpecialUse::Sent))),
            "Sent Items"
        );
        assert_eq!(name(folder("inbox", '/', None)), "INBOX");
        assert_eq!(
            name(folder("Projects/v1.2/Ärger", '/', None)),
            "Projects.v1_2.Ärger"
        );
    }

    #[test]
    fn names_move_between_namespaces_both_ways() {
        let options = CopyOptions::default();
        let to_cyrus = dovecot_to_cyrus();
        let name = |f: FolderInfo, n: &Namespaces| map_folder_name(&options, &f, n, &[]);
        // Into a namespace under INBOX: the prefix is put on, a child of INBOX stays one.
        assert_eq!(
            name(folder("Archive/2020", '/', None), &to_cyrus),
            "INBOX.Archive.2020"
        );
        assert_eq!(name(folder("INBOX/Tax", '/', None), &to_cyrus), "INBOX.Tax");
        assert_eq!(name(folder("INBOX", '/', None), &to_cyrus), "INBOX");
        assert_eq!(name(folder("Inbox/Tax", '/', None), &to_cyrus), "INBOX.Tax");
        // Out of it: the prefix comes off.
        let from_cyrus = Namespaces {
            source: to_cyrus.target.clone(),
            target: to_cyrus.source.clone(),
        };
        assert_eq!(
            name(folder("INBOX.Archive.2020", '.', None), &from_cyrus),
            "Archive/2020"
        );
        assert_eq!(name(folder("INBOX.a/b", '.', None), &from_cyrus), "a_b");
        // Courier to Cyrus: both under INBOX., same delimiter.
        let both = Namespaces {
            source: ns("INBOX.", '.'),
            target: ns("INBOX.", '.'),
        };
        assert_eq!(name(folder("INBOX.Sent", '.', None), &both), "INBOX.Sent");
        // Cyrus's upstream namespace (altnamespace, `/`): no prefix, folders beside INBOX.
        let upstream = Namespaces {
            source: ns("INBOX.", '.'),
            target: ns("", '/'),
        };
        assert_eq!(name(folder("INBOX.Sent", '.', None), &upstream), "Sent");
    }

    #[test]
    fn a_refused_name_gets_a_safe_one_under_the_same_prefix() {
        let cyrus = ns("INBOX.", '.');
        assert_eq!(
            safe_folder_name("INBOX.Projects.Q1: plan*", &cyrus).as_deref(),
            Some("INBOX.Projects.Q1_ plan_")
        );
        assert_eq!(
            safe_folder_name("Ärger/Überweisungen", &ns("", '/')),
            None,
            "letters of any script are kept: nothing to change, so no rename"
        );
        assert_eq!(safe_folder_name("Plain Name", &ns("", '/')), None);
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
        let planned = plan_folders(&options, &source, &Namespaces::default(), &target);
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
