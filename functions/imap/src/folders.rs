//! Folders: list them (names decoded from modified UTF-7, special use, subscriptions),
//! their figures (STATUS, SELECT, EXAMINE), CONDSTORE / QRESYNC, and on a target creating
//! and subscribing them.

use imap_next::imap_types::extensions::quota::Resource;
use imap_next::imap_types::flag::FlagNameAttribute;
use imap_next::imap_types::mailbox::Mailbox;
use imap_next::imap_types::response::{Code, Data};
use imap_next::imap_types::status::StatusDataItem;

pub use domain::mailbox::{FolderInfo, FolderStatus, Namespace, SpecialUse};

use crate::error::ImapError;
use crate::mutf7;
use crate::raw::RawCommand;
use crate::session::{Completion, Session};

/// The role RFC 6154 gives a folder, from a LIST attribute such as `\\Sent`
/// (case-insensitive).
pub fn special_use_of(attribute: &str) -> Option<SpecialUse> {
    let name = attribute.strip_prefix('\\')?;
    Some(match name.to_ascii_lowercase().as_str() {
        "all" => SpecialUse::All,
        "archive" => SpecialUse::Archive,
        "drafts" => SpecialUse::Drafts,
        "flagged" => SpecialUse::Flagged,
        "junk" => SpecialUse::Junk,
        "sent" => SpecialUse::Sent,
        "trash" => SpecialUse::Trash,
        // Gmail's own (X-GM-EXT-1), not RFC 6154.
        "important" => SpecialUse::Important,
        _ => return None,
    })
}

/// The attribute RFC 6154 writes for a role (`\\Sent`).
pub fn special_use_attribute(role: SpecialUse) -> &'static str {
    match role {
        SpecialUse::All => "\\All",
        SpecialUse::Archive => "\\Archive",
        SpecialUse::Drafts => "\\Drafts",
        SpecialUse::Flagged => "\\Flagged",
        SpecialUse::Junk => "\\Junk",
        SpecialUse::Sent => "\\Sent",
        SpecialUse::Trash => "\\Trash",
        SpecialUse::Important => "\\Important",
    }
}

/// The folder a session has selected through [`Session::select`] or [`Session::examine`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    pub name: String,
    pub read_only: bool,
    /// The figures SELECT reported; `messages` then follows the server's EXISTS, EXPUNGE
    /// and VANISHED updates.
    pub status: FolderStatus,
}

impl Session {
    /// Every folder of the account with its special use and subscription: one
    /// `LIST "" "*" RETURN (SPECIAL-USE SUBSCRIBED)` when the server has LIST-EXTENDED,
    /// else LIST plus LSUB. Parents that only exist as part of a child's name come back with
    /// `selectable: false`.
    pub async fn list_folders(&mut self) -> Result<Vec<FolderInfo>, ImapError> {
        let extended = self.capabilities().has("LIST-EXTENDED");
        let command = if extended {
            let options = if self.capabilities().has("SPECIAL-USE") {
                "SPECIAL-USE SUBSCRIBED"
            } else {
                "SUBSCRIBED"
            };
            RawCommand::new("LIST").text(&format!("LIST \"\" \"*\" RETURN ({options})"))
        } else {
            RawCommand::new("LIST").text("LIST \"\" \"*\"")
        };
        let completion = self.execute_raw(command).await?;
        // Each folder with its name as the server wrote it, which LSUB answers name.
        let mut folders: Vec<(FolderInfo, String)> = completion
            .data
            .iter()
            .filter_map(|data| match data {
                Data::List {
                    items,
                    delimiter,
                    mailbox,
                } => Some(folder_info(
                    items,
                    delimiter.as_ref().map(|d| d.inner()),
                    mailbox,
                )),
                _ => None,
            })
            .collect();
        if !extended {
            let lsub = self
                .execute_raw(RawCommand::new("LSUB").text("LSUB \"\" \"*\""))
                .await?;
            let subscribed: Vec<String> = lsub
                .data
                .iter()
                .filter_map(|data| match data {
                    Data::Lsub { mailbox, .. } => Some(raw_name(mailbox)),
                    _ => None,
                })
                .collect();
            for (folder, raw) in &mut folders {
                folder.subscribed = subscribed
                    .iter()
                    .any(|s| s == raw || (raw == "INBOX" && s.eq_ignore_ascii_case("INBOX")));
            }
        }
        let folders: Vec<FolderInfo> = folders.into_iter().map(|(folder, _)| folder).collect();
        if let Some(first) = folders.iter().find_map(|f| f.delimiter) {
            self.delimiter.get_or_insert(Some(first));
        }
        Ok(folders)
    }

    /// The personal namespace (RFC 2342 NAMESPACE) when the server offers it, else no prefix
    /// and the delimiter `LIST "" ""` reports.
    pub async fn personal_namespace(&mut self) -> Result<Namespace, ImapError> {
        if self.capabilities().has("NAMESPACE") {
            let completion = self
                .execute_raw(RawCommand::new("NAMESPACE").text("NAMESPACE"))
                .await?;
            let personal = completion.data.iter().find_map(|data| match data {
                Data::Namespace { personal, .. } => personal.first().map(|ns| {
                    let raw = String::from_utf8_lossy(ns.prefix.as_ref()).into_owned();
                    Namespace {
                        prefix: mutf7::decode(&raw).unwrap_or(raw),
                        delimiter: ns.delimiter.as_ref().map(|d| d.inner()),
                    }
                }),
                _ => None,
            });
            if let Some(namespace) = personal {
                if let Some(delimiter) = namespace.delimiter {
                    self.delimiter.get_or_insert(Some(delimiter));
                }
                return Ok(namespace);
            }
        }
        Ok(Namespace {
            prefix: String::new(),
            delimiter: self.hierarchy_delimiter().await?,
        })
    }

    /// The storage quota over INBOX (`GETQUOTAROOT "INBOX"`, RFC 9208): the STORAGE
    /// resource of the first root that has one, in bytes (the server counts units of 1024).
    /// `None` without QUOTA, or when no root limits storage.
    pub async fn storage_quota(&mut self) -> Result<Option<domain::mailbox::Quota>, ImapError> {
        if !self.capabilities().has("QUOTA") {
            return Ok(None);
        }
        let completion = self
            .execute_raw(RawCommand::new("GETQUOTAROOT").text("GETQUOTAROOT \"INBOX\""))
            .await?;
        Ok(completion.data.iter().find_map(|data| match data {
            Data::Quota { quotas, .. } => quotas.as_ref().iter().find_map(|q| {
                matches!(q.resource, Resource::Storage).then(|| domain::mailbox::Quota {
                    used_bytes: q.usage.saturating_mul(1024),
                    limit_bytes: q.limit.saturating_mul(1024),
                })
            }),
            _ => None,
        }))
    }

    /// The hierarchy delimiter of the personal namespace (`LIST "" ""`), asked once.
    pub async fn hierarchy_delimiter(&mut self) -> Result<Option<char>, ImapError> {
        if let Some(delimiter) = self.delimiter {
            return Ok(delimiter);
        }
        let completion = self
            .execute_raw(RawCommand::new("LIST").text("LIST \"\" \"\""))
            .await?;
        let delimiter = completion.data.iter().find_map(|data| match data {
            Data::List { delimiter, .. } => Some(delimiter.as_ref().map(|d| d.inner())),
            _ => None,
        });
        let delimiter = delimiter.flatten();
        self.delimiter = Some(delimiter);
        Ok(delimiter)
    }

    /// A folder's figures without selecting it: STATUS with HIGHESTMODSEQ when the server
    /// has CONDSTORE.
    pub async fn status(&mut self, folder: &str) -> Result<FolderStatus, ImapError> {
        if self.selected.as_ref().is_some_and(|s| s.name == folder) {
            // STATUS on the selected folder may answer from this session's view of it
            // (Dovecot does), which only moves on when the session syncs: NOOP first.
            self.noop().await?;
        }
        let items = if self.capabilities().has("CONDSTORE") {
            " (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)"
        } else {
            " (MESSAGES UIDNEXT UIDVALIDITY)"
        };
        let command = RawCommand::new("STATUS")
            .text("STATUS ")
            .mailbox(folder)
            .text(items);
        let completion = self.execute_raw(command).await?;
        let mut uidvalidity = None;
        let mut uidnext = None;
        let mut messages = None;
        let mut highest_modseq = None;
        for data in &completion.data {
            if let Data::Status { items, .. } = data {
                for item in items.iter() {
                    match item {
                        StatusDataItem::Messages(n) => messages = Some(*n),
                        StatusDataItem::UidNext(n) => uidnext = Some(n.get()),
                        StatusDataItem::UidValidity(n) => uidvalidity = Some(n.get()),
                        StatusDataItem::HighestModSeq(n) => {
                            highest_modseq = Some(*n).filter(|&n| n > 0)
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(FolderStatus {
            uidvalidity: uidvalidity.ok_or_else(|| missing("STATUS", "UIDVALIDITY"))?,
            uidnext: uidnext.ok_or_else(|| missing("STATUS", "UIDNEXT"))?,
            messages: messages.ok_or_else(|| missing("STATUS", "MESSAGES"))?,
            highest_modseq,
        })
    }

    /// Selects a folder read-write (a target: APPEND needs no selection, deleting does).
    /// Asks for CONDSTORE with it when offered, so HIGHESTMODSEQ is reported.
    pub async fn select(&mut self, folder: &str) -> Result<FolderStatus, ImapError> {
        self.open_folder(folder, false).await
    }

    /// Selects a folder read-only (a source: nothing in it can change through this session,
    /// not even `\Recent`).
    pub async fn examine(&mut self, folder: &str) -> Result<FolderStatus, ImapError> {
        self.open_folder(folder, true).await
    }

    /// The folder selected through [`Session::select`] / [`Session::examine`], if any.
    pub fn selected(&self) -> Option<&Selected> {
        self.selected.as_ref()
    }

    /// Selects `folder` unless it is already selected with at least the access needed.
    pub(crate) async fn ensure_selected(
        &mut self,
        folder: &str,
        writable: bool,
    ) -> Result<(), ImapError> {
        match &self.selected {
            Some(selected) if selected.name == folder && (!writable || !selected.read_only) => {
                Ok(())
            }
            _ => self.open_folder(folder, !writable).await.map(|_| ()),
        }
    }

    /// The selected folder, or an error naming the operation that needs one.
    pub(crate) fn require_selected(&self, operation: &'static str) -> Result<&Selected, ImapError> {
        self.selected
            .as_ref()
            .ok_or(ImapError::NotSelected(operation))
    }

    async fn open_folder(
        &mut self,
        folder: &str,
        read_only: bool,
    ) -> Result<FolderStatus, ImapError> {
        let verb = if read_only { "EXAMINE" } else { "SELECT" };
        let condstore = self.capabilities().has("CONDSTORE") && !self.condstore_enabled;
        let mut command = RawCommand::new(verb).text(verb).text(" ").mailbox(folder);
        if condstore {
            command = command.text(" (CONDSTORE)");
        }
        // A failed SELECT leaves no folder selected (RFC 3501 6.3.1).
        self.selected = None;
        let completion = self.execute_raw(command).await?;
        if condstore {
            self.condstore_enabled = true;
        }
        let status = selected_status(&completion)?;
        let read_only = read_only || matches!(completion.code, Some(Code::ReadOnly));
        self.selected = Some(Selected {
            name: folder.to_owned(),
            read_only,
            status,
        });
        Ok(status)
    }

    /// Switches CONDSTORE on (`ENABLE CONDSTORE`); `false` when the server does not offer it.
    pub async fn enable_condstore(&mut self) -> Result<bool, ImapError> {
        if self.condstore_enabled {
            return Ok(true);
        }
        if !self.capabilities().has("CONDSTORE") {
            return Ok(false);
        }
        if self.capabilities().has("ENABLE") {
            let completion = self
                .execute_raw(RawCommand::new("ENABLE").text("ENABLE CONDSTORE"))
                .await?;
            self.condstore_enabled = enabled(&completion, "CONDSTORE");
        }
        Ok(self.condstore_enabled)
    }

    /// Switches QRESYNC on (`ENABLE QRESYNC`, which implies CONDSTORE); `false` when the
    /// server does not offer it. With it, expunges are reported as VANISHED and
    /// [`Session::fetch_changed_since`] also reports the UIDs removed since.
    pub async fn enable_qresync(&mut self) -> Result<bool, ImapError> {
        if self.qresync_enabled {
            return Ok(true);
        }
        if !self.capabilities().has("QRESYNC") || !self.capabilities().has("ENABLE") {
            return Ok(false);
        }
        let completion = self
            .execute_raw(RawCommand::new("ENABLE").text("ENABLE QRESYNC"))
            .await?;
        self.qresync_enabled = enabled(&completion, "QRESYNC");
        if self.qresync_enabled {
            self.condstore_enabled = true;
        }
        Ok(self.qresync_enabled)
    }

    /// Whether CONDSTORE is switched on for this session.
    pub fn condstore_enabled(&self) -> bool {
        self.condstore_enabled
    }

    /// Whether QRESYNC is switched on for this session.
    pub fn qresync_enabled(&self) -> bool {
        self.qresync_enabled
    }

    /// Creates a folder (UTF-8 name with the server's delimiter) and every missing parent,
    /// so each level is a real, selectable folder. A level that exists already is fine
    /// (`[ALREADYEXISTS]`, or a NO for a name LIST then shows). Returns whether the folder
    /// itself was created.
    pub async fn create_folder(&mut self, name: &str) -> Result<bool, ImapError> {
        self.create_special_folder(name, None).await
    }

    /// [`Session::create_folder`], and the folder marked with a role (`CREATE name (USE
    /// (\Sent))`) when the server has CREATE-SPECIAL-USE. A server that refuses the role (RFC
    /// 6154's `[USEATTR]`: it allows one folder per role, or not this one) gets a plain CREATE:
    /// the folder matters more than its mark.
    pub async fn create_special_folder(
        &mut self,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<bool, ImapError> {
        if name.is_empty() {
            return Err(ImapError::InvalidInput("folder name (empty)"));
        }
        let delimiter = self.hierarchy_delimiter().await?;
        let mut levels = Vec::new();
        if let Some(delimiter) = delimiter {
            for (i, ch) in name.char_indices() {
                if ch == delimiter && i > 0 {
                    levels.push(&name[..i]);
                }
            }
        }
        for level in levels {
            self.create_one(level, None).await?;
        }
        let role = special_use.filter(|_| self.capabilities().has("CREATE-SPECIAL-USE"));
        if let Some(role) = role {
            match self.create_one(name, Some(role)).await {
                Ok(made) => return Ok(made),
                Err(ImapError::No { text, .. } | ImapError::Bad { text, .. }) => {
                    tracing::debug!(%text, "CREATE with a special use refused; creating a plain folder");
                }
                Err(e) => return Err(e),
            }
        }
        self.create_one(name, None).await
    }

    async fn create_one(
        &mut self,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<bool, ImapError> {
        let mut command = RawCommand::new("CREATE").text("CREATE ").mailbox(name);
        if let Some(role) = special_use {
            command = command.text(&format!(" (USE ({}))", special_use_attribute(role)));
        }
        match self.execute_raw(command).await {
            Ok(_) => Ok(true),
            Err(ImapError::No {
                text,
                code,
                command,
            }) => {
                if text.starts_with("[ALREADYEXISTS]") || self.folder_exists(name).await? {
                    Ok(false)
                } else {
                    Err(ImapError::No {
                        command,
                        text,
                        code,
                    })
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Whether a folder of exactly this name exists (a selectable one or a parent).
    pub async fn folder_exists(&mut self, name: &str) -> Result<bool, ImapError> {
        let encoded = mutf7::encode(name);
        let command = RawCommand::new("LIST")
            .text("LIST \"\" ")
            .raw_mailbox(&encoded);
        let completion = self.execute_raw(command).await?;
        Ok(completion.data.iter().any(|data| match data {
            Data::List { mailbox, items, .. } => {
                let raw = raw_name(mailbox);
                let same =
                    raw == encoded || (raw == "INBOX" && encoded.eq_ignore_ascii_case("INBOX"));
                same && !items
                    .iter()
                    .any(|a| a.to_string().eq_ignore_ascii_case("\\NonExistent"))
            }
            _ => false,
        }))
    }

    /// SUBSCRIBE (servers answer OK for a folder that is subscribed already).
    pub async fn subscribe(&mut self, name: &str) -> Result<(), ImapError> {
        let command = RawCommand::new("SUBSCRIBE")
            .text("SUBSCRIBE ")
            .mailbox(name);
        self.execute_raw(command).await.map(|_| ())
    }
}

fn folder_info(
    items: &[FlagNameAttribute<'_>],
    delimiter: Option<char>,
    mailbox: &Mailbox<'_>,
) -> (FolderInfo, String) {
    let raw_name = raw_name(mailbox);
    let name = mutf7::decode(&raw_name).unwrap_or_else(|| raw_name.clone());
    let attributes: Vec<String> = items.iter().map(|a| a.to_string()).collect();
    let has = |wanted: &str| attributes.iter().any(|a| a.eq_ignore_ascii_case(wanted));
    let folder = FolderInfo {
        selectable: !has("\\Noselect") && !has("\\NonExistent"),
        subscribed: has("\\Subscribed"),
        special_use: attributes.iter().find_map(|a| special_use_of(a)),
        name,
        delimiter,
    };
    (folder, raw_name)
}

/// The name as the server wrote it; INBOX (any case) as `INBOX`.
fn raw_name(mailbox: &Mailbox<'_>) -> String {
    match mailbox {
        Mailbox::Inbox => "INBOX".to_owned(),
        Mailbox::Other(other) => String::from_utf8_lossy(other.as_ref()).into_owned(),
    }
}

/// The figures SELECT / EXAMINE report: EXISTS, and UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ in
/// untagged OKs. With QRESYNC, a `[CLOSED]` separates the previous folder's responses.
fn selected_status(completion: &Completion) -> Result<FolderStatus, ImapError> {
    let messages = completion
        .data
        .iter()
        .filter_map(|data| match data {
            Data::Exists(n) => Some(*n),
            _ => None,
        })
        .next_back()
        .ok_or_else(|| missing("SELECT", "EXISTS"))?;
    let mut uidvalidity = None;
    let mut uidnext = None;
    let mut highest_modseq = None;
    for body in &completion.untagged {
        match &body.code {
            Some(Code::Closed) => {
                uidvalidity = None;
                uidnext = None;
                highest_modseq = None;
            }
            Some(Code::UidValidity(n)) => uidvalidity = Some(n.get()),
            Some(Code::UidNext(n)) => uidnext = Some(n.get()),
            Some(Code::HighestModSeq(n)) => highest_modseq = Some(n.get()),
            Some(Code::NoModSeq) => highest_modseq = None,
            _ => {}
        }
    }
    Ok(FolderStatus {
        uidvalidity: uidvalidity.ok_or_else(|| missing("SELECT", "UIDVALIDITY"))?,
        // RFC 3501 requires UIDNEXT; a server that leaves it out gets a value that makes a
        // copy look at every UID above the highest one it has seen.
        uidnext: uidnext.unwrap_or(1),
        messages,
        highest_modseq,
    })
}

fn enabled(completion: &Completion, capability: &str) -> bool {
    completion.data.iter().any(|data| match data {
        Data::Enabled { capabilities } => capabilities
            .iter()
            .any(|c| c.to_string().eq_ignore_ascii_case(capability)),
        _ => false,
    })
}

fn missing(command: &str, item: &str) -> ImapError {
    ImapError::Protocol(format!("the answer to {command} lacks {item}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_use_attributes_are_recognised() {
        assert_eq!(special_use_of("\\Sent"), Some(SpecialUse::Sent));
        assert_eq!(special_use_of("\\junk"), Some(SpecialUse::Junk));
        assert_eq!(special_use_of("\\HasChildren"), None);
        assert_eq!(special_use_of("Sent"), None);
        // Gmail's own, listed beside RFC 6154's roles.
        assert_eq!(special_use_of("\\Important"), Some(SpecialUse::Important));
        for role in [
            SpecialUse::All,
            SpecialUse::Sent,
            SpecialUse::Trash,
            SpecialUse::Junk,
            SpecialUse::Important,
        ] {
            assert_eq!(special_use_of(special_use_attribute(role)), Some(role));
        }
    }

    #[test]
    fn parents_follow_the_delimiter() {
        let folder = FolderInfo {
            name: "Ärger/Überweisungen".into(),
            delimiter: Some('/'),
            special_use: None,
            selectable: true,
            subscribed: false,
        };
        assert_eq!(folder.parent(), Some("Ärger"));
    }
}
