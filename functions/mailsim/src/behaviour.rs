//! The switches that make the simulated server behave like a particular real one, or fail the
//! way real ones do. `Behaviour::default()` is a well-behaved RFC server (UIDPLUS, CONDSTORE,
//! no limits); a test turns on what it wants to provoke, at any time, through
//! `Server::set_behaviour` or `Server::behaviour_mut`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// How the server behaves; applies to every user of one `Server` (a test that wants different
/// behaviour on the source and the target uses two servers).
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// Exchange Online rewrites what it stores: a header line is added in front, so the size
    /// and the bytes change while Message-ID, Date, From, Subject and INTERNALDATE survive.
    pub rewrite_on_append: bool,
    /// Gmail answers an APPEND of a Message-ID the folder already holds with OK and stores
    /// nothing; the outcome carries the existing message's UID.
    pub drop_duplicate_message_ids: bool,
    /// RFC 4315: APPEND reports the new UID. Off, the outcome is `Appended { uid: None }`.
    pub uidplus: bool,
    /// RFC 7162: modseqs are reported and `fetch_changed_since` works. Off, HIGHESTMODSEQ and
    /// message modseqs are `None` and `fetch_changed_since` is refused.
    pub condstore: bool,
    /// Messages (by Message-ID) whose body FETCH fails, with how many more times it fails
    /// (`u32::MAX`: always). A failing message is left out of `fetch_bodies`, which then
    /// reports Gmail's "Some messages could not be FETCHed (Failure)".
    pub fetch_failures: HashMap<String, u32>,
    /// A refusal every APPENDed message gets once `append_refusal_after` more have been
    /// accepted.
    pub append_refusal: Option<AppendRefusal>,
    /// How many further messages are accepted before `append_refusal` starts; counts down
    /// with each accepted message.
    pub append_refusal_after: u32,
    /// A real quota on each user's stored bytes (all folders): an APPEND that would go over it
    /// is refused with `[OVERQUOTA]`. Raising it later lets appends through again.
    pub quota_bytes: Option<u64>,
    /// Messages (by Message-ID) the server refuses for good ("malformed header").
    pub refuse_message_ids: HashSet<String>,
    /// Concurrent sessions one user may have open; one more is refused with Dovecot's
    /// `[LIMIT]` text as throttling.
    pub max_connections: Option<u32>,
    /// After this many session calls server-wide, the next call fails with "connection reset"
    /// and so does every later call on the sessions open at that moment (the server dropped
    /// them all); sessions opened afterwards work, and the count starts again.
    pub disconnect_after_commands: Option<u32>,
    /// Crash injection: when the server's operation counter (`Server::ops`) reaches this
    /// number the server trips, and that call and every later one never complete until
    /// `Server::clear_trip`, so a harness can drop the engine mid-operation.
    pub fail_point: Option<u64>,
    /// A slow server: each APPENDed message takes this long before it is stored (a call
    /// dropped while it waits stores nothing more).
    pub append_delay: Option<Duration>,
    /// Folders a CREATE is refused for (Cyrus without the right namespace: "Permission
    /// denied"); creating one that exists is still fine.
    pub refuse_create: HashSet<String>,
    /// A server that drips: each metadata FETCH takes this long.
    pub meta_delay: Option<Duration>,
    /// The personal namespace's prefix (`INBOX.` as Cyrus and Courier by default): folders
    /// may only be created under it ("Permission denied" elsewhere), and NAMESPACE says so.
    pub namespace_prefix: String,
    /// RFC 6154 CREATE-SPECIAL-USE: a folder created with a role keeps it.
    pub create_special_use: bool,
    /// Cyrus's `munge8bit`: each 8-bit byte of a stored message's header becomes `X` (same
    /// size, other bytes).
    pub munge_8bit_headers: bool,
    /// Flags an APPEND does not store (Exchange Online drops `\Flagged`); STORE sets them.
    pub drop_flags_on_append: Vec<String>,
    /// Bearer tokens (XOAUTH2) the server accepts for any of its users, as one app token opens
    /// every mailbox of a tenant; any other token is refused like a wrong password. The tokens
    /// themselves come from a real authority in the tests that name one; here a test decides
    /// which are valid, to model expiry and revocation.
    pub app_tokens: HashSet<String>,
    /// Gmail's labels (X-GM-EXT-1): a message is one message in every label it shows in, with
    /// one X-GM-MSGID; every message also shows in All Mail (the `\All` folder, when there is
    /// one); a COPY adds a label to the same message, storing nothing new (into a folder that
    /// already shows it, nothing at all). Off, no message has an X-GM-MSGID.
    pub gmail_labels: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            rewrite_on_append: false,
            drop_duplicate_message_ids: false,
            uidplus: true,
            condstore: true,
            fetch_failures: HashMap::new(),
            append_refusal: None,
            append_refusal_after: 0,
            quota_bytes: None,
            refuse_message_ids: HashSet::new(),
            max_connections: None,
            disconnect_after_commands: None,
            fail_point: None,
            append_delay: None,
            refuse_create: HashSet::new(),
            meta_delay: None,
            namespace_prefix: String::new(),
            create_special_use: false,
            munge_8bit_headers: false,
            drop_flags_on_append: Vec::new(),
            app_tokens: HashSet::new(),
            gmail_labels: false,
        }
    }
}

/// How a server refuses an APPEND, with the response code and text real servers use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendRefusal {
    /// RFC 5530 `[OVERQUOTA]` (Dovecot, Cyrus, Gmail): the mailbox is full.
    OverQuota,
    /// `[THROTTLED]` with a wait in the text.
    Throttled,
    /// Exchange Online's throttling answer: no response code, a backoff in milliseconds.
    ThrottledWithWait(Duration),
    /// A plain NO about the message itself.
    PlainNo,
}

impl AppendRefusal {
    /// The response code, upper-case without brackets, as the IMAP client reports it.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            AppendRefusal::OverQuota => Some("OVERQUOTA"),
            AppendRefusal::Throttled => Some("THROTTLED"),
            AppendRefusal::ThrottledWithWait(_) | AppendRefusal::PlainNo => None,
        }
    }

    /// The server's words.
    pub fn text(&self) -> String {
        match self {
            AppendRefusal::OverQuota => {
                "[OVERQUOTA] Quota exceeded (mailbox for user is full)".into()
            }
            AppendRefusal::Throttled => {
                "[THROTTLED] Too many requests, try again in 30 seconds".into()
            }
            AppendRefusal::ThrottledWithWait(wait) => format!(
                "Request is throttled. Suggested Backoff Time: {} milliseconds",
                wait.as_millis()
            ),
            AppendRefusal::PlainNo => "Message rejected: malformed header".into(),
        }
    }

    /// What the engine sees: the same classification the IMAP adapter applies.
    pub fn outcome(&self) -> domain::mailbox::AppendOutcome {
        domain::mailbox::AppendOutcome::from_refusal(self.code(), &self.text())
    }
}

/// The header line Exchange Online's rewriting adds in front of a stored message.
pub const REWRITE_HEADER: &str = "X-MS-Exchange-Organization-Rewritten: yes";

/// Stores `bytes` the way Exchange Online does: one header line more at the start, ending the
/// way the message's own first line ends (CRLF or bare LF), so everything else is unchanged.
pub fn rewrite_like_exchange(bytes: &[u8]) -> Vec<u8> {
    let crlf = match bytes.iter().position(|&b| b == b'\n') {
        Some(i) => i > 0 && bytes[i - 1] == b'\r',
        None => true,
    };
    let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
    let mut out = Vec::with_capacity(REWRITE_HEADER.len() + eol.len() + bytes.len());
    out.extend_from_slice(REWRITE_HEADER.as_bytes());
    out.extend_from_slice(eol);
    out.extend_from_slice(bytes);
    out
}

/// What Cyrus stores of a message with raw 8-bit bytes in its header: an `X` for each.
pub fn munge_8bit_header(bytes: &[u8]) -> Vec<u8> {
    let header_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(bytes.len());
    let mut out = bytes.to_vec();
    for b in &mut out[..header_end] {
        if *b >= 0x80 {
            *b = b'X';
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::mailbox::AppendOutcome;

    #[test]
    fn rewriting_keeps_the_line_endings_and_the_message_id() {
        let crlf = b"Message-ID: <1@x>\r\n\r\nbody\r\n";
        let out = rewrite_like_exchange(crlf);
        assert!(out.starts_with(b"X-MS-Exchange-Organization-Rewritten: yes\r\nMessage-ID"));
        assert_eq!(crate::message_id(&out).as_deref(), Some("<1@x>"));
        let lf = b"Message-ID: <2@x>\n\nbody\n";
        let out = rewrite_like_exchange(lf);
        assert!(out.starts_with(b"X-MS-Exchange-Organization-Rewritten: yes\nMessage-ID"));
        assert_eq!(out.len(), lf.len() + REWRITE_HEADER.len() + 1);
    }

    #[test]
    fn refusals_classify_as_the_engine_expects() {
        assert!(matches!(
            AppendRefusal::OverQuota.outcome(),
            AppendOutcome::TargetFull { .. }
        ));
        assert!(matches!(
            AppendRefusal::Throttled.outcome(),
            AppendOutcome::Deferred { retry_after: Some(d), .. } if d == Duration::from_secs(30)
        ));
        assert!(matches!(
            AppendRefusal::ThrottledWithWait(Duration::from_millis(1500)).outcome(),
            AppendOutcome::Deferred { retry_after: Some(d), .. } if d == Duration::from_millis(1500)
        ));
        assert!(matches!(
            AppendRefusal::PlainNo.outcome(),
            AppendOutcome::Rejected { .. }
        ));
    }
}
