//! Folder names on the target: where each source folder goes (the explicit map, INBOX, the
//! folder with the same role, or the same path moved between the two servers' namespaces), a
//! distinct name for folders whose names would otherwise meet in one target folder, and the
//! safe name a folder gets when the target refuses the planned one.

use std::collections::{HashMap, HashSet};

use crate::mailbox::{FolderInfo, Namespace};
use crate::model::*;

/// The personal namespaces of both sides of a pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Namespaces {
    pub source: Namespace,
    pub target: Namespace,
}

/// How a target name was found. Folders may meet in one target folder on purpose (the admin's
/// map, two folders with the same role); when they meet only because their paths translate
/// alike, they are kept apart ([`keep_apart`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mapping {
    Explicit,
    Inbox,
    Role,
    Path,
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
///
/// Also says how the name was found.
pub(crate) fn map_folder(
    options: &CopyOptions,
    source: &FolderInfo,
    namespaces: &Namespaces,
    target_folders: &[FolderInfo],
) -> (String, Mapping) {
    if let Some(m) = options.folder_map.iter().find(|m| m.from == source.name) {
        return (m.to.clone(), Mapping::Explicit);
    }
    if source.name.eq_ignore_ascii_case("INBOX") {
        return ("INBOX".into(), Mapping::Inbox);
    }
    if let Some(role) = source.special_use
        && let Some(t) = target_folders
            .iter()
            .find(|t| t.special_use == Some(role) && t.selectable)
    {
        return (t.name.clone(), Mapping::Role);
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
    (format!("{}{path}", to.prefix), Mapping::Path)
}

/// A source folder's place on the target while a pass is planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placed {
    pub source: String,
    pub target: String,
    pub mapping: Mapping,
    /// The name it would have had, when [`keep_apart`] gave it another.
    pub renamed_from: Option<String>,
}

/// Folders whose paths translate to one target name (`Tax` and `INBOX/Tax` both become
/// `INBOX.Tax` on a server whose folders live under `INBOX.`) would be merged into one folder:
/// all but one get the name with `_2`, `_3`, … after it. The one that keeps the name: a folder
/// mapped there on purpose (the admin's map, INBOX, a role), else the one that was there in an
/// earlier pass (`prior`: source → target name of its checkpoint), else a folder that is not a
/// child of INBOX, else the first by name. A folder renamed in an earlier pass keeps its name;
/// a new name is taken by no other planned folder and no folder the target already has.
pub(crate) fn keep_apart(
    placed: &mut [Placed],
    prior: &HashMap<String, String>,
    target_folders: &[FolderInfo],
) {
    let mut by_target: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, p) in placed.iter().enumerate() {
        by_target.entry(p.target.clone()).or_default().push(i);
    }
    let mut taken: HashSet<String> = placed.iter().map(|p| p.target.clone()).collect();
    taken.extend(target_folders.iter().map(|f| f.name.clone()));
    let mut groups: Vec<(String, Vec<usize>)> = by_target
        .into_iter()
        .filter(|(_, members)| {
            members.len() > 1 && members.iter().any(|i| placed[*i].mapping == Mapping::Path)
        })
        .collect();
    groups.sort();
    for (target, mut members) in groups {
        let rank = |p: &Placed| {
            (
                p.mapping == Mapping::Path,
                prior.get(&p.source) != Some(&target),
                is_inbox_child(&p.source),
                p.source.clone(),
            )
        };
        members.sort_by_key(|i| rank(&placed[*i]));
        for &i in &members[1..] {
            if placed[i].mapping != Mapping::Path {
                continue; // meets the keeper on purpose
            }
            let earlier = prior
                .get(&placed[i].source)
                .filter(|name| is_numbered(name, &target))
                .cloned();
            let name = earlier.unwrap_or_else(|| {
                (2..)
                    .map(|n| format!("{target}_{n}"))
                    .find(|n| !taken.contains(n))
                    .unwrap_or_default()
            });
            taken.insert(name.clone());
            placed[i].renamed_from = Some(target.clone());
            placed[i].target = name;
        }
    }
}

/// A service's own top-level folders (Exchange's Calendar, Contacts, Notes, …: the target
/// profile's `reserved_folders`) hold no mail and refuse it: a folder whose path would start
/// with one of them gets `_2` after that level (`Notes` → `Notes_2`, `Notes/2020` →
/// `Notes_2/2020`), always the same name so later passes find it. Only path-derived names:
/// the admin's map and role matches are kept as chosen. [`keep_apart`] runs after this, so a
/// source folder that is itself called `Notes_2` still gets a name of its own.
pub(crate) fn avoid_reserved(placed: &mut [Placed], reserved: &[&str], target: &Namespace) {
    if reserved.is_empty() {
        return;
    }
    for p in placed.iter_mut().filter(|p| p.mapping == Mapping::Path) {
        let prefix_len = strip_prefix_ignoring_case(&p.target, &target.prefix)
            .map_or(0, |_| target.prefix.len());
        let (prefix, rest) = p.target.split_at(prefix_len);
        let (first, tail) = match target.delimiter.and_then(|d| rest.split_once(d)) {
            Some((first, tail)) => (first, Some(tail)),
            None => (rest, None),
        };
        if !reserved.iter().any(|r| r.eq_ignore_ascii_case(first)) {
            continue;
        }
        let mut renamed = format!("{prefix}{first}_2");
        if let (Some(tail), Some(d)) = (tail, target.delimiter) {
            renamed.push(d);
            renamed.push_str(tail);
        }
        p.renamed_from = Some(std::mem::replace(&mut p.target, renamed));
    }
}

/// `INBOX/Tax`, `INBOX.Tax`, `Inbox/x`: a folder below INBOX.
fn is_inbox_child(name: &str) -> bool {
    name.get(..5)
        .is_some_and(|head| head.eq_ignore_ascii_case("INBOX"))
        && name
            .as_bytes()
            .get(5)
            .is_some_and(|b| !b.is_ascii_alphanumeric())
        && name.len() > 6
}

/// `name` is `target` followed by `_` and a number.
fn is_numbered(name: &str, target: &str) -> bool {
    name.strip_prefix(target)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::mailbox::SpecialUse;

    fn map_folder_name(
        options: &CopyOptions,
        source: &FolderInfo,
        namespaces: &Namespaces,
        target_folders: &[FolderInfo],
    ) -> String {
        map_folder(options, source, namespaces, target_folders).0
    }

    /// A selectable, subscribed folder (shared with the planner's tests).
    pub(in crate::app::copy) fn folder(
        name: &str,
        delimiter: char,
        special_use: Option<SpecialUse>,
    ) -> FolderInfo {
        FolderInfo {
            name: name.into(),
            delimiter: Some(delimiter),
            special_use,
            selectable: true,
            subscribed: true,
        }
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

    fn place(
        source: &[FolderInfo],
        prior: &[(&str, &str)],
        target: &[FolderInfo],
        options: &CopyOptions,
    ) -> Vec<(String, String, Option<String>)> {
        let mut placed: Vec<Placed> = source
            .iter()
            .map(|f| {
                let (target_name, mapping) = map_folder(options, f, &dovecot_to_cyrus(), target);
                Placed {
                    source: f.name.clone(),
                    target: target_name,
                    mapping,
                    renamed_from: None,
                }
            })
            .collect();
        let prior: HashMap<String, String> = prior
            .iter()
            .map(|(s, t)| ((*s).to_owned(), (*t).to_owned()))
            .collect();
        keep_apart(&mut placed, &prior, target);
        placed
            .into_iter()
            .map(|p| (p.source, p.target, p.renamed_from))
            .collect()
    }

    fn row(s: &str, t: &str, from: Option<&str>) -> (String, String, Option<String>) {
        (s.into(), t.into(), from.map(str::to_owned))
    }

    #[test]
    fn folders_named_like_a_services_own_get_another_name_with_their_children() {
        let at = |source: &str, target: &str, mapping| Placed {
            source: source.into(),
            target: target.into(),
            mapping,
            renamed_from: None,
        };
        let reserved = ["Calendar", "Notes"];
        let target = ns("INBOX.", '.');
        let mut placed = vec![
            at("Notes", "INBOX.Notes", Mapping::Path),
            at("Notes/2020", "INBOX.Notes.2020", Mapping::Path),
            at("calendar", "INBOX.calendar", Mapping::Path),
            at("Notebook", "INBOX.Notebook", Mapping::Path),
            at("Old/Notes", "INBOX.Old.Notes", Mapping::Path),
            at("Mapped", "INBOX.Notes", Mapping::Explicit),
        ];
        avoid_reserved(&mut placed, &reserved, &target);
        let names: Vec<(&str, Option<&str>)> = placed
            .iter()
            .map(|p| (p.target.as_str(), p.renamed_from.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                ("INBOX.Notes_2", Some("INBOX.Notes")),
                ("INBOX.Notes_2.2020", Some("INBOX.Notes.2020")),
                ("INBOX.calendar_2", Some("INBOX.calendar")),
                ("INBOX.Notebook", None),
                // Only the top level is the service's.
                ("INBOX.Old.Notes", None),
                // The admin's map is followed as written.
                ("INBOX.Notes", None),
            ]
        );
        let mut flat = vec![at("Notes", "Notes", Mapping::Path)];
        avoid_reserved(&mut flat, &reserved, &ns("", '/'));
        assert_eq!(flat[0].target, "Notes_2");
    }

    #[test]
    fn folders_whose_paths_meet_on_the_target_are_kept_apart() {
        let source = [folder("INBOX/Tax", '/', None), folder("Tax", '/', None)];
        assert_eq!(
            place(&source, &[], &[], &CopyOptions::default()),
            [
                row("INBOX/Tax", "INBOX.Tax_2", Some("INBOX.Tax")),
                row("Tax", "INBOX.Tax", None),
            ],
            "the top-level folder keeps the name, INBOX's child gets another"
        );
    }

    #[test]
    fn a_folder_that_was_there_first_keeps_its_name_and_a_renamed_one_its_number() {
        let source = [folder("INBOX/Tax", '/', None), folder("Tax", '/', None)];
        let earlier = [("INBOX/Tax", "INBOX.Tax")];
        assert_eq!(
            place(&source, &earlier, &[], &CopyOptions::default()),
            [
                row("INBOX/Tax", "INBOX.Tax", None),
                row("Tax", "INBOX.Tax_2", Some("INBOX.Tax")),
            ]
        );
        let renamed = [("INBOX/Tax", "INBOX.Tax_3"), ("Tax", "INBOX.Tax")];
        assert_eq!(
            place(&source, &renamed, &[], &CopyOptions::default())[0],
            row("INBOX/Tax", "INBOX.Tax_3", Some("INBOX.Tax"))
        );
    }

    #[test]
    fn a_new_name_is_one_nobody_has_yet() {
        let source = [folder("INBOX/Tax", '/', None), folder("Tax", '/', None)];
        let target = [folder("INBOX.Tax_2", '.', None)];
        assert_eq!(
            place(&source, &[], &target, &CopyOptions::default())[0],
            row("INBOX/Tax", "INBOX.Tax_3", Some("INBOX.Tax"))
        );
    }

    #[test]
    fn folders_meeting_on_purpose_stay_together() {
        // The admin's map and folders with the same role merge; a path that meets a role's
        // folder by accident does not.
        let options = CopyOptions {
            folder_map: vec![
                FolderMapping {
                    from: "Old".into(),
                    to: "INBOX.Archive".into(),
                },
                FolderMapping {
                    from: "Older".into(),
                    to: "INBOX.Archive".into(),
                },
            ],
            ..Default::default()
        };
        let source = [
            folder("Old", '/', None),
            folder("Older", '/', None),
            folder("Sent", '/', Some(SpecialUse::Sent)),
            folder("Sent Messages", '/', Some(SpecialUse::Sent)),
            folder("INBOX/Sent Items", '/', None),
        ];
        let target = [folder("INBOX.Sent Items", '.', Some(SpecialUse::Sent))];
        assert_eq!(
            place(&source, &[], &target, &options),
            [
                row("Old", "INBOX.Archive", None),
                row("Older", "INBOX.Archive", None),
                row("Sent", "INBOX.Sent Items", None),
                row("Sent Messages", "INBOX.Sent Items", None),
                row(
                    "INBOX/Sent Items",
                    "INBOX.Sent Items_2",
                    Some("INBOX.Sent Items")
                ),
            ]
        );
    }

    #[test]
    fn inbox_children_are_told_apart_from_names_that_only_start_alike() {
        assert!(is_inbox_child("INBOX/Tax"));
        assert!(is_inbox_child("inbox.Tax"));
        assert!(!is_inbox_child("INBOXES"));
        assert!(!is_inbox_child("INBOX"));
        assert!(!is_inbox_child("Ärger/INBOX"));
        assert!(!is_inbox_child("ÄÄÄ/x"));
    }
}
