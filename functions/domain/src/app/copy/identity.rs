//! How the engine recognises, after a crash or a renumbering, which source messages already
//! have their copy on the target, without trusting the target to keep bytes.
//!
//! Servers differ in what they store: Dovecot, Cyrus and Courier keep the bytes (Cyrus may
//! replace 8-bit header bytes, keeping the size), while Exchange Online and Gmail rewrite
//! messages (headers added, MIME re-encoded), so size and a hash of the bytes change. What
//! survives everywhere is the Message-ID header and the INTERNALDATE the engine sets on
//! APPEND. The match therefore runs in two tiers over multisets, so exact duplicates on the
//! source pair with exactly as many copies on the target:
//!
//! 1. **exact**: Message-ID + size + INTERNALDATE, or for messages without Message-ID the
//!    SHA-256 of the bytes. On a target that keeps bytes every copy matches here, and two
//!    source messages sharing a Message-ID but differing in size are told apart.
//! 2. **rewritten**: what tier 1 left over, by Message-ID + INTERNALDATE, or for messages
//!    without Message-ID a digest of their Date, From, To and Subject header values +
//!    INTERNALDATE. Only a target that changed the bytes gets here.
//!
//! Size therefore only decides where the target keeps bytes; a rewriting target is matched by
//! what it keeps.

use std::collections::{HashMap, VecDeque};

use sha2::{Digest, Sha256};

/// What is known of a message on one side for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub uid: u32,
    pub message_id: Option<String>,
    pub size: u64,
    /// INTERNALDATE in seconds since the epoch.
    pub internaldate: i64,
    /// Digests of the bytes, for messages without Message-ID (fetched only for those).
    pub content: Option<Content>,
}

/// Digests of a message's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Content {
    /// SHA-256 of the exact bytes.
    pub bytes: [u8; 32],
    /// SHA-256 of the unfolded, trimmed values of Date, From, To and Subject.
    pub headers: [u8; 32],
}

impl Content {
    pub fn of(body: &[u8]) -> Content {
        Content {
            bytes: Sha256::digest(body).into(),
            headers: header_digest(body),
        }
    }
}

/// The digest of the header values a rewriting server leaves alone.
fn header_digest(body: &[u8]) -> [u8; 32] {
    let end = find_header_end(body);
    let header = String::from_utf8_lossy(&body[..end]);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in header.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let mut hash = Sha256::new();
    for wanted in ["date", "from", "to", "subject"] {
        for (_, value) in fields.iter().filter(|(n, _)| n == wanted) {
            hash.update(wanted.as_bytes());
            hash.update(b"\0");
            hash.update(value.split_whitespace().collect::<Vec<_>>().join(" "));
            hash.update(b"\0");
        }
    }
    hash.finalize().into()
}

fn find_header_end(body: &[u8]) -> usize {
    let crlf = body.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = body.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => body.len(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    IdExact(String, u64, i64),
    Bytes([u8; 32]),
    IdDate(String, i64),
    Headers([u8; 32], i64),
}

fn exact_key(c: &Candidate) -> Option<Key> {
    match (&c.message_id, &c.content) {
        (Some(id), _) => Some(Key::IdExact(id.clone(), c.size, c.internaldate)),
        (None, Some(content)) => Some(Key::Bytes(content.bytes)),
        (None, None) => None,
    }
}

fn rewritten_key(c: &Candidate) -> Option<Key> {
    match (&c.message_id, &c.content) {
        (Some(id), _) => Some(Key::IdDate(id.clone(), c.internaldate)),
        (None, Some(content)) => Some(Key::Headers(content.headers, c.internaldate)),
        (None, None) => None,
    }
}

/// Pairs source messages with distinct target messages that are their copies: `(source UID,
/// target UID)`, each target message used at most once, source messages in UID order taking
/// the lowest unused target UID of their key. Source messages without a pair are not on the
/// target.
pub(crate) fn match_copies(source: &[Candidate], target: &[Candidate]) -> Vec<(u32, u32)> {
    let mut pairs = Vec::new();
    let mut source_left: Vec<&Candidate> = source.iter().collect();
    source_left.sort_by_key(|c| c.uid);
    let mut target_left: Vec<&Candidate> = target.iter().collect();
    target_left.sort_by_key(|c| c.uid);
    for key_of in [exact_key, rewritten_key] {
        let mut available: HashMap<Key, VecDeque<u32>> = HashMap::new();
        for t in &target_left {
            if let Some(k) = key_of(t) {
                available.entry(k).or_default().push_back(t.uid);
            }
        }
        let mut used = std::collections::HashSet::new();
        source_left.retain(|s| {
            let found = key_of(s)
                .and_then(|k| available.get_mut(&k))
                .and_then(|q| q.pop_front());
            match found {
                Some(t) => {
                    pairs.push((s.uid, t));
                    used.insert(t);
                    false
                }
                None => true,
            }
        });
        target_left.retain(|t| !used.contains(&t.uid));
    }
    pairs.sort_unstable();
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_id(uid: u32, id: &str, size: u64, date: i64) -> Candidate {
        Candidate {
            uid,
            message_id: Some(id.into()),
            size,
            internaldate: date,
            content: None,
        }
    }

    fn without_id(uid: u32, body: &[u8], date: i64) -> Candidate {
        Candidate {
            uid,
            message_id: None,
            size: body.len() as u64,
            internaldate: date,
            content: Some(Content::of(body)),
        }
    }

    #[test]
    fn exact_copies_pair_one_to_one_and_duplicates_count() {
        let source = [
            with_id(1, "<a@x>", 10, 100),
            with_id(2, "<a@x>", 10, 100),
            with_id(3, "<b@x>", 20, 100),
        ];
        // Only one copy of the duplicate made it before the crash.
        let target = [with_id(50, "<a@x>", 10, 100), with_id(51, "<b@x>", 20, 100)];
        assert_eq!(match_copies(&source, &target), vec![(1, 50), (3, 51)]);
    }

    #[test]
    fn sizes_tell_messages_with_one_message_id_apart_on_a_target_that_keeps_bytes() {
        let source = [with_id(1, "<a@x>", 10, 100), with_id(2, "<a@x>", 99, 100)];
        let target = [with_id(7, "<a@x>", 99, 100)];
        assert_eq!(match_copies(&source, &target), vec![(2, 7)]);
    }

    #[test]
    fn a_rewriting_target_is_matched_by_message_id_and_date() {
        let source = [with_id(1, "<a@x>", 10, 100), with_id(2, "<c@x>", 10, 100)];
        let target = [with_id(9, "<a@x>", 57, 100), with_id(10, "<c@x>", 61, 999)];
        // <c@x> has another INTERNALDATE: not a copy (mail that came another way).
        assert_eq!(match_copies(&source, &target), vec![(1, 9)]);
    }

    #[test]
    fn messages_without_message_id_match_by_bytes_or_by_their_headers() {
        let original = b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nFrom: a@x\r\nSubject: hi\r\n there\r\n\r\nbody";
        let rewritten = b"X-Added: yes\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\nFrom:  a@x\r\nSubject: hi there\r\n\r\nbody, re-encoded";
        let other = b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nFrom: b@x\r\n\r\nbody";
        let source = [without_id(1, original, 5), without_id(2, other, 5)];
        assert_eq!(
            match_copies(&source, &[without_id(20, original, 5)]),
            vec![(1, 20)]
        );
        assert_eq!(
            match_copies(&source, &[without_id(21, rewritten, 5)]),
            vec![(1, 21)]
        );
        assert_eq!(
            match_copies(&source, &[without_id(22, rewritten, 6)]),
            vec![]
        );
    }

    #[test]
    fn exact_pairs_are_taken_before_loose_ones() {
        // Target 8 is an exact copy of source 2; source 1 must not take it in the loose tier.
        let source = [with_id(1, "<a@x>", 10, 100), with_id(2, "<a@x>", 20, 100)];
        let target = [with_id(8, "<a@x>", 20, 100)];
        assert_eq!(match_copies(&source, &target), vec![(2, 8)]);
    }
}
