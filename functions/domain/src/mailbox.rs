//! The mailbox port of the copy engine: what the engine needs from a mail server session,
//! independent of the protocol. The IMAP crate implements it; a later Exchange or Graph
//! connector implements the same traits.

use async_trait::async_trait;
use std::time::Duration;
use time::OffsetDateTime;

use crate::error::LoginError;
use crate::model::Endpoint;
use crate::ports::LoginInfo;
use crate::secret::Credential;

mod body;
mod sides;
pub use body::{BodyStream, BufferedBody, drain, read_all};
pub use sides::{Source, Target};

/// RFC 6154 special-use roles, and Gmail's `\Important` (a view of the mail Gmail marks
/// important, listed with its own attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecialUse {
    All,
    Archive,
    Drafts,
    Flagged,
    Junk,
    Sent,
    Trash,
    Important,
}

/// A folder as the server lists it, name decoded to UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderInfo {
    pub name: String,
    pub delimiter: Option<char>,
    pub special_use: Option<SpecialUse>,
    /// False for `\Noselect` / `\NonExistent` (hierarchy-only) folders.
    pub selectable: bool,
    pub subscribed: bool,
}

impl FolderInfo {
    /// The parent's name, when the folder has one.
    pub fn parent(&self) -> Option<&str> {
        let delimiter = self.delimiter?;
        self.name.rsplit_once(delimiter).map(|(parent, _)| parent)
    }
}

/// Where an account's own folders live (RFC 2342's personal namespace): Dovecot's default
/// has no prefix and `/`; Cyrus's and Courier's defaults put every folder under `INBOX.`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Namespace {
    /// Prefix of every personal folder but INBOX, delimiter included (`INBOX.`), or empty.
    pub prefix: String,
    /// The hierarchy delimiter; `None` for a flat namespace.
    pub delimiter: Option<char>,
}

/// What SELECT/EXAMINE/STATUS tell about a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderStatus {
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub messages: u32,
    pub highest_modseq: Option<u64>,
}

/// Everything about a message but its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    pub uid: u32,
    pub size: u64,
    /// System flags (`\Seen`, …, never `\Recent`) and keywords.
    pub flags: Vec<String>,
    pub internaldate: OffsetDateTime,
    pub modseq: Option<u64>,
    /// The Message-ID header value including angle brackets, when the message has one.
    pub message_id: Option<String>,
    /// Gmail's X-GM-MSGID (X-GM-EXT-1): the one id a message has in every label it shows in.
    /// `None` on any other server.
    pub gmail_id: Option<u64>,
}

/// A message with its bytes, exactly as the source stores them.
#[derive(Debug, Clone)]
pub struct FetchedMessage {
    pub meta: MessageMeta,
    pub body: Vec<u8>,
}

/// One message to append on the target.
#[derive(Debug, Clone)]
pub struct AppendItem {
    pub body: Vec<u8>,
    pub flags: Vec<String>,
    pub internaldate: OffsetDateTime,
}

/// The result of appending one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Stored; the UID when the server reports it (UIDPLUS).
    Appended { uid: Option<u32> },
    /// The server refused this one message (too large, bad MIME, …): skip it with this reason.
    Rejected { reason: String },
    /// The server refused for now (throttled, busy): not stored; try again after the wait it
    /// asked for. Never a skip.
    Deferred {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The target mailbox is full: not stored, and nothing more will fit until someone makes
    /// room. Never a skip.
    TargetFull { reason: String },
}

impl From<FetchedMessage> for AppendItem {
    fn from(message: FetchedMessage) -> Self {
        AppendItem {
            body: message.body,
            flags: message.meta.flags,
            internaldate: message.meta.internaldate,
        }
    }
}

impl AppendOutcome {
    /// The UID the server gave the stored message, when it said (UIDPLUS).
    pub fn uid(&self) -> Option<u32> {
        match self {
            AppendOutcome::Appended { uid } => *uid,
            _ => None,
        }
    }

    pub fn is_appended(&self) -> bool {
        matches!(self, AppendOutcome::Appended { .. })
    }

    /// Sorts a server's refusal of one APPEND into what the engine does about it, from the
    /// response code (`OVERQUOTA`, `THROTTLED`, …, upper-case, without brackets) and the text.
    ///
    /// - `OVERQUOTA` (RFC 5530; Dovecot, Cyrus, Gmail) is a full mailbox, unless the text says
    ///   the message alone is too large.
    /// - `UNAVAILABLE`, `INUSE`, `THROTTLED` (RFC 5530 and common practice) and throttling texts
    ///   (Exchange Online: "Request is throttled. Suggested Backoff Time: N milliseconds";
    ///   Gmail: "Too many simultaneous …"/"try again later") are temporary.
    /// - Anything else, `LIMIT` and `TOOBIG` included (Dovecot's `[LIMIT] Mail size is too
    ///   large`), is about this message: it is skipped with the server's words.
    pub fn from_refusal(code: Option<&str>, text: &str) -> AppendOutcome {
        let code = code.unwrap_or_default().to_ascii_uppercase();
        let lower = text.to_ascii_lowercase();
        let message_too_large = ["too large", "too big", "size limit", "message size"]
            .iter()
            .any(|w| lower.contains(w));
        let mailbox_full = code == "OVERQUOTA"
            || [
                "mailbox is full",
                "mailbox full",
                "quota exceeded",
                "over quota",
                "exceeded your mail quota",
            ]
            .iter()
            .any(|w| lower.contains(w));
        if mailbox_full && !message_too_large {
            return AppendOutcome::TargetFull {
                reason: text.to_owned(),
            };
        }
        if is_temporary(Some(&code), text) {
            return AppendOutcome::Deferred {
                reason: text.to_owned(),
                retry_after: retry_hint(text),
            };
        }
        AppendOutcome::Rejected {
            reason: text.to_owned(),
        }
    }
}

/// Whether a refusal (its response code, upper-case without brackets, and its text) asks the
/// client to come back later: RFC 5530's `UNAVAILABLE`, `INUSE` and `SERVERBUG`, the common
/// `THROTTLED`, the words servers use for it, or a wait named in the text.
pub fn is_temporary(code: Option<&str>, text: &str) -> bool {
    matches!(
        code,
        Some("UNAVAILABLE" | "INUSE" | "THROTTLED" | "SERVERBUG")
    ) || is_throttling_text(&text.to_ascii_lowercase())
        || retry_hint(text).is_some()
}

/// Words servers use when they ask a client to slow down or come back later.
fn is_throttling_text(lower: &str) -> bool {
    [
        "throttl",
        "try again later",
        "too many simultaneous",
        "too many connections",
        "server busy",
        "temporarily unavailable",
        "suggested backoff",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

/// A wait a server's text asks for: "try again in 30 seconds", "retry after 2 minutes",
/// Exchange Online's "Suggested Backoff Time: 1500 milliseconds".
pub fn retry_hint(text: &str) -> Option<Duration> {
    let lower = text.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let unit_millis = |unit: &str| -> Option<u64> {
        Some(match unit {
            "ms" | "msec" | "millisecond" | "milliseconds" => 1,
            "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
            "min" | "mins" | "minute" | "minutes" => 60_000,
            "hour" | "hours" => 3_600_000,
            _ => return None,
        })
    };
    words.windows(3).find_map(|w| {
        if !matches!(w[0], "in" | "after" | "time") {
            return None;
        }
        let n: u64 = w[1].parse().ok()?;
        Some(Duration::from_millis(n.saturating_mul(unit_millis(w[2])?)))
    })
}

/// What a body fetch could not deliver.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchReport {
    /// The server's text when the FETCH ended in NO after delivering only some of the messages
    /// (Gmail: "Some messages could not be FETCHed"; Exchange: "could not be converted to
    /// RFC-822"). The caller finds which are missing by what its sink did not receive.
    pub server_error: Option<String>,
}

/// Why a mailbox operation failed, and whether a retry may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailboxError {
    /// The connection dropped, timed out, or the server is restarting: retry with backoff.
    #[error("connection problem: {0}")]
    Connection(String),
    /// The server asked us to slow down; retry after the hint when it gave one.
    #[error("the server is throttling: {message}")]
    Throttled {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The credentials no longer work (changed password, locked account).
    #[error("the login was rejected: {0}")]
    Auth(String),
    /// The folder does not exist (any more).
    #[error("folder not found: {0}")]
    FolderNotFound(String),
    /// The server answered NO/BAD to a command that should have worked.
    #[error("the server refused: {0}")]
    Refused(String),
}

impl MailboxError {
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            MailboxError::Connection(_) | MailboxError::Throttled { .. }
        )
    }
}

/// The one mail-server port: a login check for the credential page and the connection tests,
/// and logged-in sessions for the copy engine, which reads a source only through [`Source`] and
/// writes a target only through [`Target`].
#[async_trait]
pub trait MailServers: Send + Sync + 'static {
    /// Logs in and out again within `timeout`, reporting what the server offers.
    async fn test_login(
        &self,
        endpoint: &Endpoint,
        login: &str,
        credential: &Credential,
        timeout: Duration,
    ) -> Result<LoginInfo, LoginError>;

    /// A logged-in session with every operation; the engine wraps it in [`Source`] or
    /// [`Target`].
    async fn open(
        &self,
        endpoint: &Endpoint,
        login: &str,
        credential: &Credential,
        timeout: Duration,
    ) -> Result<Box<dyn MailSession>, MailboxError>;
}

/// One logged-in session. Folder operations act on the folder last selected or examined.
#[async_trait]
pub trait MailSession: Send {
    async fn list_folders(&mut self) -> Result<Vec<FolderInfo>, MailboxError>;
    /// The personal namespace: where the account's folders are, and may be created.
    async fn namespace(&mut self) -> Result<Namespace, MailboxError>;
    /// Opens a folder read-only (the source is never modified).
    async fn examine(&mut self, folder: &str) -> Result<FolderStatus, MailboxError>;
    /// Opens a folder read-write.
    async fn select(&mut self, folder: &str) -> Result<FolderStatus, MailboxError>;
    /// Metadata of the messages with UIDs in `from..=to` of the open folder.
    async fn fetch_meta(&mut self, from: u32, to: u32) -> Result<Vec<MessageMeta>, MailboxError>;
    /// The total size of the open folder's messages. The default adds up [`Self::fetch_meta`];
    /// a connector with a cheaper way (sizes only) says so.
    async fn folder_bytes(&mut self) -> Result<u64, MailboxError> {
        Ok(self
            .fetch_meta(1, u32::MAX)
            .await?
            .iter()
            .map(|m| m.size)
            .sum())
    }
    /// Metadata of messages whose flags changed after `modseq` (CONDSTORE).
    async fn fetch_changed_since(&mut self, modseq: u64) -> Result<Vec<MessageMeta>, MailboxError>;
    /// Bytes of these messages, fetched pipelined and handed over one by one in UID order so a
    /// caller can append while the rest downloads. Messages that vanished are left out, and so
    /// are messages the server could not return: the report carries its reason.
    async fn fetch_bodies(
        &mut self,
        uids: &[u32],
        sink: &mut (dyn FnMut(FetchedMessage) -> Result<(), MailboxError> + Send),
    ) -> Result<FetchReport, MailboxError>;
    /// The body of message `uid` of the open folder as it arrives, for a message too large to
    /// hold; `None` when the folder no longer has it. The stream is read to its end before the
    /// session is used again (dropping it half-way ends the session). By default the message
    /// is fetched whole and handed out from memory.
    async fn open_body(
        &mut self,
        uid: u32,
    ) -> Result<Option<Box<dyn BodyStream + '_>>, MailboxError> {
        let mut body = None;
        let report = self
            .fetch_bodies(&[uid], &mut |m| {
                body = Some(m.body);
                Ok(())
            })
            .await?;
        match (body, report.server_error) {
            (Some(bytes), _) => Ok(Some(Box::new(BufferedBody::new(bytes)))),
            (None, Some(text)) => Err(MailboxError::Refused(text)),
            (None, None) => Ok(None),
        }
    }
    /// Appends one message to `folder` as `body` delivers it. When the body fails half-way
    /// nothing is stored (the message is never completed) and the body's error is returned.
    /// By default the body is read into memory and appended whole.
    async fn append_stream(
        &mut self,
        folder: &str,
        flags: &[String],
        internaldate: OffsetDateTime,
        body: &mut (dyn BodyStream + '_),
    ) -> Result<AppendOutcome, MailboxError> {
        let bytes = read_all(body).await?;
        let item = AppendItem {
            body: bytes,
            flags: flags.to_vec(),
            internaldate,
        };
        let mut outcomes = self.append(folder, vec![item]).await?;
        outcomes
            .pop()
            .ok_or_else(|| MailboxError::Refused("the server gave no append result".into()))
    }
    /// Creates a folder (and its parents); an existing folder is not an error. With a role,
    /// the server is asked to mark the folder with it (RFC 6154 CREATE-SPECIAL-USE) when it
    /// can; a server that cannot creates a plain folder.
    async fn create_folder(
        &mut self,
        folder: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<(), MailboxError>;
    async fn subscribe(&mut self, folder: &str) -> Result<(), MailboxError>;
    /// Appends to `folder`; one outcome per item, in order. Takes the items by value so the
    /// bytes move through without a copy.
    async fn append(
        &mut self,
        folder: &str,
        items: Vec<AppendItem>,
    ) -> Result<Vec<AppendOutcome>, MailboxError>;
    /// Copies these messages of the open folder into `folder` (`UID COPY`); per message, its
    /// UID and the copy's UID when the server reports it (COPYUID), in the order given. A UID
    /// the server says it did not copy (gone meanwhile) is left out. On Gmail a copy is the
    /// same message with one more label: nothing is uploaded again.
    async fn copy_to(
        &mut self,
        uids: &[u32],
        folder: &str,
    ) -> Result<Vec<(u32, Option<u32>)>, MailboxError>;
    /// Metadata of the messages in the open folder whose Message-ID is `message_id`.
    async fn find_by_message_id(
        &mut self,
        message_id: &str,
    ) -> Result<Vec<MessageMeta>, MailboxError>;
    /// Every UID of the open folder as of now.
    async fn all_uids(&mut self) -> Result<Vec<u32>, MailboxError>;
    /// Removes exactly these messages from the open folder (a target's copies of messages
    /// deleted at the source); returns how many went.
    async fn delete(&mut self, uids: &[u32]) -> Result<u64, MailboxError>;
    /// Replaces the flags of one message in the open folder.
    async fn set_flags(&mut self, uid: u32, flags: &[String]) -> Result<(), MailboxError>;
    /// What the server announced it can do after login, upper-cased (`UIDPLUS`,
    /// `APPENDLIMIT=35882577`, …).
    fn capabilities(&self) -> Vec<String>;
    /// The storage quota over the account's INBOX (GETQUOTAROOT, RFC 9208); `None` when the
    /// server has no QUOTA or sets no storage limit.
    async fn quota(&mut self) -> Result<Option<Quota>, MailboxError>;
    async fn logout(self: Box<Self>);
}

/// A storage quota: bytes used and the most allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub used_bytes: u64,
    pub limit_bytes: u64,
}

/// The largest message a server takes, from its `APPENDLIMIT=n` capability (RFC 7889).
pub fn append_limit(capabilities: &[String]) -> Option<u64> {
    capabilities.iter().find_map(|c| {
        c.to_ascii_uppercase()
            .strip_prefix("APPENDLIMIT=")
            .and_then(|n| n.parse().ok())
    })
}
