//! The server's data behind its one lock: users, their folders and messages, the behaviour
//! switches, and the counters that make crash injection and dropped connections
//! deterministic. Everything here is synchronous; the async port lives in `session`, which
//! never holds the lock across an `.await`.

use std::collections::BTreeMap;
use std::sync::Arc;

use domain::mailbox::{FolderStatus, MailboxError, MessageMeta, SpecialUse};
use domain::secret::Credential;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::behaviour::Behaviour;
use crate::message_id::message_id;

/// A message as the server stores it.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub bytes: Vec<u8>,
    pub flags: Vec<String>,
    pub internaldate: OffsetDateTime,
    pub modseq: u64,
    /// Parsed once at store time; the bytes never change afterwards.
    pub message_id: Option<String>,
    /// X-GM-MSGID, on a server with Gmail's labels.
    pub gmail_id: Option<u64>,
}

/// One folder: its IMAP identity (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ) and messages by UID.
#[derive(Debug, Clone)]
pub(crate) struct Folder {
    pub special_use: Option<SpecialUse>,
    pub subscribed: bool,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highest_modseq: u64,
    pub messages: BTreeMap<u32, Message>,
}

impl Folder {
    fn new(uidvalidity: u32, special_use: Option<SpecialUse>, subscribed: bool) -> Folder {
        Folder {
            special_use,
            subscribed,
            uidvalidity,
            uidnext: 1,
            // RFC 7162: an empty mailbox that supports modseqs reports HIGHESTMODSEQ 1.
            highest_modseq: 1,
            messages: BTreeMap::new(),
        }
    }

    /// The next modseq; every change to the folder takes one, so `fetch_changed_since` sees it.
    fn bump(&mut self) -> u64 {
        self.highest_modseq += 1;
        self.highest_modseq
    }

    /// Stores a message under the next UID and returns that UID.
    pub fn store(&mut self, bytes: Vec<u8>, flags: &[String], internaldate: OffsetDateTime) -> u32 {
        let message = Message {
            message_id: message_id(&bytes),
            bytes,
            flags: clean_flags(flags),
            internaldate: imap_date(internaldate),
            modseq: 0,
            gmail_id: None,
        };
        self.put(message)
    }

    /// Stores this message (a copy, a label) under the next UID and returns that UID.
    pub fn put(&mut self, mut message: Message) -> u32 {
        let uid = self.uidnext;
        self.uidnext += 1;
        message.modseq = self.bump();
        self.messages.insert(uid, message);
        uid
    }

    /// The UID under which this folder shows the Gmail message `gmail_id`.
    pub fn find_gmail_id(&self, gmail_id: u64) -> Option<u32> {
        self.messages
            .iter()
            .find(|(_, m)| m.gmail_id == Some(gmail_id))
            .map(|(&uid, _)| uid)
    }

    /// Replaces a message's flags; false when there is no such UID. Setting the flags it
    /// already has changes nothing, so its modseq stays (as on Dovecot).
    pub fn set_flags(&mut self, uid: u32, flags: &[String]) -> bool {
        let flags = clean_flags(flags);
        let Some(current) = self.messages.get(&uid).map(|m| m.flags.clone()) else {
            return false;
        };
        if same_flags(&current, &flags) {
            return true;
        }
        let modseq = self.bump();
        if let Some(m) = self.messages.get_mut(&uid) {
            m.flags = flags;
            m.modseq = modseq;
        }
        true
    }

    pub fn expunge(&mut self, uid: u32) -> bool {
        let gone = self.messages.remove(&uid).is_some();
        if gone {
            self.bump();
        }
        gone
    }

    /// New UIDVALIDITY, UIDs 1.. in the old order: what a server does after rebuilding its
    /// index, or a mailbox restored from backup.
    pub fn renumber(&mut self, uidvalidity: u32) {
        let old = std::mem::take(&mut self.messages);
        self.messages = old
            .into_values()
            .zip(1u32..)
            .map(|(m, uid)| (uid, m))
            .collect();
        self.uidvalidity = uidvalidity;
        self.uidnext = u32::try_from(self.messages.len()).unwrap_or(u32::MAX - 1) + 1;
        self.bump();
    }

    pub fn bytes(&self) -> u64 {
        self.messages.values().map(|m| m.bytes.len() as u64).sum()
    }

    pub fn status(&self, condstore: bool) -> FolderStatus {
        FolderStatus {
            uidvalidity: self.uidvalidity,
            uidnext: self.uidnext,
            messages: u32::try_from(self.messages.len()).unwrap_or(u32::MAX),
            highest_modseq: condstore.then_some(self.highest_modseq),
        }
    }

    pub fn find_by_message_id(&self, id: &str) -> impl Iterator<Item = (u32, &Message)> {
        self.messages
            .iter()
            .filter(move |(_, m)| m.message_id.as_deref() == Some(id))
            .map(|(&uid, m)| (uid, m))
    }
}

/// What the port reports about a stored message.
pub(crate) fn meta(uid: u32, m: &Message, condstore: bool) -> MessageMeta {
    MessageMeta {
        uid,
        size: m.bytes.len() as u64,
        flags: m.flags.clone(),
        internaldate: m.internaldate,
        modseq: condstore.then_some(m.modseq),
        message_id: m.message_id.clone(),
        gmail_id: m.gmail_id,
    }
}

/// Flags as a server keeps them: `\Recent` is the server's own (never stored from a client),
/// and a flag set twice is one flag.
fn clean_flags(flags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(flags.len());
    for f in flags {
        if f.eq_ignore_ascii_case("\\Recent") || out.iter().any(|o| o.eq_ignore_ascii_case(f)) {
            continue;
        }
        out.push(f.clone());
    }
    out
}

fn same_flags(a: &[String], b: &[String]) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|f| b.iter().any(|g| g.eq_ignore_ascii_case(f)))
}

/// IMAP's INTERNALDATE has whole seconds; a date stored through IMAP loses the rest.
fn imap_date(date: OffsetDateTime) -> OffsetDateTime {
    date.replace_nanosecond(0).unwrap_or(date)
}

#[derive(Debug, Clone)]
pub(crate) struct User {
    pub password: String,
    pub folders: BTreeMap<String, Folder>,
}

impl User {
    pub fn stored_bytes(&self) -> u64 {
        self.folders.values().map(Folder::bytes).sum()
    }
}

/// A call that finished, or one the fail point stopped: the caller then never completes.
pub(crate) enum Flow<T> {
    Done(T),
    Crash,
}

pub(crate) struct State {
    pub users: BTreeMap<String, User>,
    pub behaviour: Behaviour,
    pub delimiter: char,
    next_uidvalidity: u32,
    /// Port operations so far (see `Server::ops`); the fail point is a value of this.
    pub ops: u64,
    pub tripped: bool,
    trip: Arc<Notify>,
    /// Session calls since the last dropped-connections event.
    pub commands: u64,
    /// Open sessions: id → login. A session not in here was dropped by the server.
    pub sessions: BTreeMap<u64, String>,
    pub next_session: u64,
    /// The last X-GM-MSGID given out.
    pub last_gmail_id: u64,
    /// Bytes of every message APPENDed and stored (not counting duplicates dropped or COPYs).
    pub uploaded_bytes: u64,
}

pub(crate) fn connection_reset() -> MailboxError {
    MailboxError::Connection("connection reset".into())
}

impl State {
    pub fn new(delimiter: char, trip: Arc<Notify>) -> State {
        State {
            users: BTreeMap::new(),
            behaviour: Behaviour::default(),
            delimiter,
            // Distinct from 1 so a test mixing up UIDs and UIDVALIDITYs notices.
            next_uidvalidity: 1000,
            ops: 0,
            tripped: false,
            trip,
            commands: 0,
            sessions: BTreeMap::new(),
            next_session: 1,
            last_gmail_id: 1_278_455_344_230_334_000,
            uploaded_bytes: 0,
        }
    }

    /// Counts one operation; true when the server is (now) tripped and the caller must hang.
    pub fn tick(&mut self) -> bool {
        if self.tripped {
            return true;
        }
        self.ops += 1;
        if self.behaviour.fail_point == Some(self.ops) {
            self.tripped = true;
            self.trip.notify_waiters();
        }
        self.tripped
    }

    /// The entry of every session call: the crash check, the operation count, the session's
    /// liveness and the dropped-connections budget.
    pub fn begin(&mut self, session: u64) -> Flow<Result<(), MailboxError>> {
        if self.tick() {
            return Flow::Crash;
        }
        if !self.sessions.contains_key(&session) {
            return Flow::Done(Err(connection_reset()));
        }
        self.commands += 1;
        if let Some(limit) = self.behaviour.disconnect_after_commands
            && self.commands > u64::from(limit)
        {
            // The server drops every connection it has; clients reconnect and start afresh.
            self.sessions.clear();
            self.commands = 0;
            return Flow::Done(Err(connection_reset()));
        }
        Flow::Done(Ok(()))
    }

    pub fn new_uidvalidity(&mut self) -> u32 {
        let v = self.next_uidvalidity;
        self.next_uidvalidity += 1;
        v
    }

    /// Stores a new message in `folder` and returns its UID; with Gmail's labels it gets a new
    /// X-GM-MSGID and shows in All Mail too.
    pub fn store_new(
        &mut self,
        login: &str,
        folder: &str,
        bytes: Vec<u8>,
        flags: &[String],
        internaldate: OffsetDateTime,
    ) -> Result<u32, MailboxError> {
        let uid = self
            .folder_mut(login, folder)?
            .store(bytes, flags, internaldate);
        if self.behaviour.gmail_labels {
            self.last_gmail_id += 1;
            let id = self.last_gmail_id;
            let f = self.folder_mut(login, folder)?;
            let message = f.messages.get_mut(&uid).map(|m| {
                m.gmail_id = Some(id);
                m.clone()
            });
            if let (Some(message), Some(all)) = (message, self.all_mail(login)?)
                && self.canonical(folder) != all
            {
                self.folder_mut(login, &all)?.put(message);
            }
        }
        Ok(uid)
    }

    /// The name of the user's All Mail (`\All`) folder, if any.
    pub fn all_mail(&self, login: &str) -> Result<Option<String>, MailboxError> {
        Ok(self
            .user(login)?
            .folders
            .iter()
            .find(|(_, f)| f.special_use == Some(SpecialUse::All))
            .map(|(name, _)| name.clone()))
    }

    /// UID COPY of `uids` from `from` into `to`: per UID the folder holds, the copy's UID
    /// (a UID it does not hold is left out, as COPYUID leaves it out). With Gmail's labels a copy is a label on the same message, and a
    /// folder that already shows it gets nothing new.
    pub fn copy(
        &mut self,
        login: &str,
        from: &str,
        uids: &[u32],
        to: &str,
    ) -> Result<Vec<(u32, Option<u32>)>, MailboxError> {
        self.folder(login, to)?;
        let mut out = Vec::with_capacity(uids.len());
        for &uid in uids {
            let Some(message) = self.folder(login, from)?.messages.get(&uid).cloned() else {
                continue;
            };
            let existing = match message.gmail_id {
                Some(id) if self.behaviour.gmail_labels => {
                    self.folder(login, to)?.find_gmail_id(id)
                }
                _ => None,
            };
            let copy = match existing {
                Some(copy) => copy,
                None => self.folder_mut(login, to)?.put(message),
            };
            out.push((uid, Some(copy)));
        }
        Ok(out)
    }

    /// INBOX is case-insensitive (RFC 3501 5.1), as the first component of a path too.
    pub fn canonical(&self, name: &str) -> String {
        let name = name.trim_end_matches(self.delimiter);
        let (first, rest) = match name.find(self.delimiter) {
            Some(i) => name.split_at(i),
            None => (name, ""),
        };
        if first.eq_ignore_ascii_case("INBOX") {
            format!("INBOX{rest}")
        } else {
            name.to_owned()
        }
    }

    pub fn user(&self, login: &str) -> Result<&User, MailboxError> {
        self.users
            .get(login)
            .ok_or_else(|| MailboxError::Auth(format!("no user {login}")))
    }

    pub fn user_mut(&mut self, login: &str) -> Result<&mut User, MailboxError> {
        self.users
            .get_mut(login)
            .ok_or_else(|| MailboxError::Auth(format!("no user {login}")))
    }

    pub fn folder(&self, login: &str, name: &str) -> Result<&Folder, MailboxError> {
        let key = self.canonical(name);
        self.user(login)?
            .folders
            .get(&key)
            .ok_or_else(|| not_found(name))
    }

    pub fn folder_mut(&mut self, login: &str, name: &str) -> Result<&mut Folder, MailboxError> {
        let key = self.canonical(name);
        self.user_mut(login)?
            .folders
            .get_mut(&key)
            .ok_or_else(|| not_found(name))
    }

    /// Creates `name` and any missing parents; returns whether `name` itself was new.
    pub fn create_folder(
        &mut self,
        login: &str,
        name: &str,
        special_use: Option<SpecialUse>,
        subscribed: bool,
    ) -> Result<bool, MailboxError> {
        let name = self.canonical(name);
        if name.is_empty() || name.split(self.delimiter).any(str::is_empty) {
            return Err(MailboxError::Refused(format!(
                "invalid folder name {name:?}"
            )));
        }
        self.user(login)?;
        let mut created = false;
        let mut path = String::new();
        for (i, part) in name.split(self.delimiter).enumerate() {
            if i > 0 {
                path.push(self.delimiter);
            }
            path.push_str(part);
            let exists = self.user(login)?.folders.contains_key(&path);
            if !exists {
                let uidvalidity = self.new_uidvalidity();
                let folder = Folder::new(uidvalidity, None, subscribed);
                self.user_mut(login)?.folders.insert(path.clone(), folder);
                created = path == name;
            }
        }
        if special_use.is_some() {
            self.folder_mut(login, &name)?.special_use = special_use;
        }
        Ok(created)
    }

    /// Opens a session for `login`, checking the password and the connection limit.
    pub fn open_session(
        &mut self,
        login: &str,
        credential: &Credential,
    ) -> Result<u64, MailboxError> {
        let accepted = match (self.users.get(login), credential) {
            (Some(u), Credential::Password(password)) => u.password == password.expose(),
            (Some(_), Credential::Bearer(token)) => {
                self.behaviour.app_tokens.contains(token.expose())
            }
            (None, _) => false,
        };
        if !accepted {
            return Err(MailboxError::Auth(
                "[AUTHENTICATIONFAILED] Authentication failed.".into(),
            ));
        }
        if let Some(max) = self.behaviour.max_connections {
            let open = self.sessions.values().filter(|l| *l == login).count();
            if open >= max as usize {
                return Err(MailboxError::Throttled {
                    message: "[LIMIT] Maximum number of connections from user+IP exceeded".into(),
                    retry_after: None,
                });
            }
        }
        let id = self.next_session;
        self.next_session += 1;
        self.sessions.insert(id, login.to_owned());
        Ok(id)
    }
}

fn not_found(name: &str) -> MailboxError {
    MailboxError::FolderNotFound(format!("[NONEXISTENT] Mailbox doesn't exist: {name}"))
}
