//! The copy engine's decisions about one chunk, from plain values: how a folder is cut into
//! chunks, which messages the project's rules leave out, and what the target's answers to an
//! APPEND mean for the chunk (copied, skipped, wait and retry, or stop because the target is
//! full). The I/O around them lives in `folder.rs`.

use std::collections::HashMap;
use std::time::Duration;

use contract::{SkipCause, SkippedItem};

use crate::mailbox::{AppendOutcome, MessageMeta};
use crate::model::CopyOptions;

/// Splits metas into chunks of at most `max_messages` and `max_bytes` (a larger message is a
/// chunk of its own).
pub(crate) fn chunk(
    metas: &[MessageMeta],
    max_messages: usize,
    max_bytes: u64,
) -> Vec<&[MessageMeta]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0u64;
    for (i, m) in metas.iter().enumerate() {
        let count = i - start;
        if count > 0 && (count >= max_messages || bytes + m.size > max_bytes) {
            out.push(&metas[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += m.size;
    }
    if start < metas.len() {
        out.push(&metas[start..]);
    }
    out
}

/// Whether a message of `size` bytes is streamed from source to target as it arrives (and its
/// copy read back the same way) rather than held: larger than `stream_from` bytes.
pub(crate) fn streams(size: u64, stream_from: u64) -> bool {
    size > stream_from
}

/// The project's own reason to leave a message out, if any.
pub(crate) fn policy_skip(options: &CopyOptions, m: &MessageMeta) -> Option<SkippedItem> {
    let reason = if options.max_message_bytes.is_some_and(|max| m.size > max) {
        "larger than the project's maximum message size"
    } else if options.since.is_some_and(|t| m.internaldate < t)
        || options.before.is_some_and(|t| m.internaldate >= t)
    {
        "outside the project's date range"
    } else {
        return None;
    };
    Some(SkippedItem {
        uid: m.uid,
        size: m.size,
        reason: reason.into(),
        cause: SkipCause::Policy,
    })
}

/// What tells one Gmail message apart in every label it shows in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum LabelKey {
    /// Gmail's own X-GM-MSGID: exact, with or without a Message-ID.
    Gmail(u64),
    /// Without X-GM-EXT-1: Message-ID, size and INTERNALDATE (the same in each label).
    Header(String, u64, i64),
}

/// The message's [`LabelKey`]. `None` without X-GM-MSGID and without a Message-ID: such a
/// message is never taken for another, so All Mail keeps it (a copy too many rather than one
/// too few).
pub(crate) fn label_key(m: &MessageMeta) -> Option<LabelKey> {
    if let Some(id) = m.gmail_id {
        return Some(LabelKey::Gmail(id));
    }
    Some(LabelKey::Header(
        m.message_id.clone()?,
        m.size,
        m.internaldate.unix_timestamp(),
    ))
}

/// Whether `found` (a target message) is the copy of `m` that a target keeping bytes stores:
/// the same Message-ID, size and INTERNALDATE.
pub(crate) fn same_message(m: &MessageMeta, found: &MessageMeta) -> bool {
    m.message_id.is_some()
        && found.message_id == m.message_id
        && found.size == m.size
        && found.internaldate == m.internaldate
}

/// The largest message a target service takes, by its profile, and the service's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServiceLimit {
    pub max_bytes: u64,
    pub service: &'static str,
}

/// Moves the messages larger than the target service takes from `wanted` to `skipped`, with
/// the reason (not sent only to be refused; a retry of skipped messages tries them again).
pub(crate) fn skip_oversize(sorted: &mut Sorted<'_>, limit: Option<ServiceLimit>) {
    let Some(limit) = limit else { return };
    let (fits, oversize): (Vec<&MessageMeta>, Vec<&MessageMeta>) = sorted
        .wanted
        .iter()
        .partition(|m| m.size <= limit.max_bytes);
    sorted.wanted = fits;
    sorted
        .skipped
        .extend(oversize.into_iter().map(|m| SkippedItem {
            uid: m.uid,
            size: m.size,
            reason: format!(
                "larger than {} accepts over IMAP ({} MB)",
                limit.service,
                limit.max_bytes / 1_000_000
            ),
            cause: SkipCause::TargetRefused,
        }));
}

/// How one chunk's messages divide.
#[derive(Debug, Default)]
pub(crate) struct Sorted<'a> {
    /// To fetch and append.
    pub wanted: Vec<&'a MessageMeta>,
    /// Left out by the project's rules.
    pub skipped: Vec<SkippedItem>,
    /// Already on the target (an interrupted attempt copied them), and their bytes.
    pub present: u64,
    pub present_bytes: u64,
}

/// Sorts a chunk: what an interrupted attempt already copied, what the project's rules leave
/// out, and what is to copy.
pub(crate) fn sort_chunk<'a>(
    chunk: &'a [MessageMeta],
    already_there: &std::collections::HashSet<u32>,
    options: &CopyOptions,
) -> Sorted<'a> {
    let mut sorted = Sorted::default();
    for m in chunk {
        if already_there.contains(&m.uid) {
            sorted.present += 1;
            sorted.present_bytes += m.size;
        } else if let Some(item) = policy_skip(options, m) {
            sorted.skipped.push(item);
        } else {
            sorted.wanted.push(m);
        }
    }
    sorted
}

/// What the target's answers to one chunk's APPEND mean.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Settled {
    /// `(source UID, size, target UID when reported)` of the stored messages.
    pub appended: Vec<(u32, u64, Option<u32>)>,
    /// Messages the target refused for good.
    pub skipped: Vec<SkippedItem>,
    /// The target asked to wait: the chunk is not done.
    pub deferred: Option<Deferral>,
    /// The target mailbox is full, with the server's words: the chunk is not done.
    pub full: Option<String>,
}

/// A target's request to come back later, for one chunk.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Deferral {
    /// The server's words (of the first refusal).
    pub reason: String,
    /// The longest wait it named, if any.
    pub retry_after: Option<Duration>,
}

/// Pairs each fetched message with the target's answer for it.
pub(crate) fn settle(fetched: &[MessageMeta], outcomes: Vec<AppendOutcome>) -> Settled {
    let mut settled = Settled::default();
    for (m, outcome) in fetched.iter().zip(outcomes) {
        match outcome {
            AppendOutcome::Appended { uid } => settled.appended.push((m.uid, m.size, uid)),
            AppendOutcome::Rejected { reason } => settled.skipped.push(SkippedItem {
                uid: m.uid,
                size: m.size,
                reason: format!("the target refused it: {reason}"),
                cause: SkipCause::TargetRefused,
            }),
            AppendOutcome::Deferred {
                reason,
                retry_after,
            } => {
                let deferral = settled.deferred.get_or_insert(Deferral {
                    reason,
                    retry_after: None,
                });
                deferral.retry_after = deferral.retry_after.max(retry_after);
            }
            AppendOutcome::TargetFull { reason } => {
                settled.full.get_or_insert(reason);
            }
        }
    }
    settled
}

/// The copies whose flags the target dropped on APPEND, by the target profile's
/// `flags_after_append` (Exchange Online stores `\Flagged` only by STORE): each copy with a
/// target UID whose source message has one of `dropped` (compared without case), with the full
/// flag list to set on it.
pub(crate) fn flags_to_restore(
    fetched: &[MessageMeta],
    appended: &[(u32, u64, Option<u32>)],
    dropped: &[&str],
) -> Vec<(u32, Vec<String>)> {
    if dropped.is_empty() {
        return Vec::new();
    }
    let flags_of: HashMap<u32, &Vec<String>> = fetched.iter().map(|m| (m.uid, &m.flags)).collect();
    appended
        .iter()
        .filter_map(|&(source, _, copy)| {
            let flags = flags_of.get(&source)?;
            let hit = flags
                .iter()
                .any(|f| dropped.iter().any(|d| d.eq_ignore_ascii_case(f)));
            Some((copy?, (*flags).clone())).filter(|_| hit)
        })
        .collect()
}

/// Flag changes for a group of identical messages (same identity, so no way to tell which
/// target copy belongs to which source message): the target group's flag sets are made equal to
/// the source group's as multisets, changing as few messages as possible. Returns the target
/// UIDs to change with their new flags.
pub(crate) fn flag_fixes(
    desired: &[Vec<String>],
    targets: &[(u32, Vec<String>)],
) -> Vec<(u32, Vec<String>)> {
    let sorted = |f: &Vec<String>| {
        let mut f = f.clone();
        f.sort();
        f
    };
    let mut wanted: Vec<Vec<String>> = desired.iter().map(sorted).collect();
    let mut unmatched = Vec::new();
    for (uid, flags) in targets {
        let have = sorted(flags);
        match wanted.iter().position(|w| *w == have) {
            Some(i) => {
                wanted.swap_remove(i);
            }
            None => unmatched.push(*uid),
        }
    }
    unmatched.into_iter().zip(wanted).collect()
}

/// The recovered copies whose flags differ from their paired source message's (compared as
/// sets), with the source's flags to set: `range` the source messages, `pairs` `(source UID,
/// target UID)`, `copy_flags` each copy's flags now.
pub(crate) fn paired_flag_fixes(
    range: &[&MessageMeta],
    pairs: &[(u32, u32)],
    copy_flags: &HashMap<u32, Vec<String>>,
) -> Vec<(u32, Vec<String>)> {
    let sorted = |f: &[String]| {
        let mut f = f.to_vec();
        f.sort();
        f.dedup();
        f
    };
    let source: HashMap<u32, &Vec<String>> = range.iter().map(|m| (m.uid, &m.flags)).collect();
    pairs
        .iter()
        .filter_map(|(source_uid, target_uid)| {
            let want = source.get(source_uid)?;
            let have = copy_flags.get(target_uid)?;
            (sorted(want) != sorted(have)).then(|| (*target_uid, (*want).clone()))
        })
        .collect()
}

/// "4,365": counts in messages people read.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_larger_than_the_service_takes_are_skipped_saying_so() {
        let chunk = [meta(1, 10), meta(2, 36_000_000), meta(3, 35_000_000)];
        let mut sorted = sort_chunk(&chunk, &Default::default(), &CopyOptions::default());
        skip_oversize(&mut sorted, None);
        assert_eq!(sorted.wanted.len(), 3);
        skip_oversize(
            &mut sorted,
            Some(ServiceLimit {
                max_bytes: 35_000_000,
                service: "Google Workspace",
            }),
        );
        let wanted: Vec<u32> = sorted.wanted.iter().map(|m| m.uid).collect();
        assert_eq!(wanted, [1, 3]);
        assert_eq!(sorted.skipped.len(), 1);
        assert_eq!(sorted.skipped[0].uid, 2);
        assert_eq!(
            sorted.skipped[0].reason,
            "larger than Google Workspace accepts over IMAP (35 MB)"
        );
        assert!(sorted.skipped[0].cause.is_retryable());
    }

    /// A 10-byte message with these flags.
    fn with(uid: u32, flags: &[&str]) -> MessageMeta {
        MessageMeta {
            flags: flags.iter().map(|f| (*f).to_owned()).collect(),
            ..meta(uid, 10)
        }
    }

    #[test]
    fn a_recovered_copy_gets_the_flags_of_the_message_it_was_paired_with() {
        // 1 and 2 are identical but for their flags; the attempt appended 2's copy first (50),
        // and recovery paired it with 1. 3's copy lost \Flagged to the target.
        let range = [
            with(1, &[]),
            with(2, &["\\Seen"]),
            with(3, &["\\Seen", "\\Flagged"]),
            with(4, &["$Work", "\\Seen"]),
        ];
        let range: Vec<&MessageMeta> = range.iter().collect();
        let pairs = [(1, 50), (3, 51), (4, 52), (9, 53)];
        let copy_flags: HashMap<u32, Vec<String>> = [
            (50, vec!["\\Seen".to_owned()]),
            (51, vec!["\\Seen".to_owned()]),
            (52, vec!["\\Seen".to_owned(), "$Work".to_owned()]),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            paired_flag_fixes(&range, &pairs, &copy_flags),
            vec![
                (50, vec![]),
                (51, vec!["\\Seen".to_owned(), "\\Flagged".to_owned()]),
            ]
        );
    }

    #[test]
    fn flags_a_target_drops_on_append_are_set_again_on_the_copies_that_had_them() {
        let fetched = [
            with(1, &["\\Seen", "\\flagged"]),
            with(2, &["\\Seen"]),
            with(3, &["\\Flagged"]),
            with(4, &["\\Flagged", "$Work"]),
        ];
        // 3 got no UID (no UIDPLUS): nothing to STORE on; 4 was refused.
        let appended = [(1, 10, Some(11)), (2, 10, Some(12)), (3, 10, None)];
        assert_eq!(
            flags_to_restore(&fetched, &appended, &["\\Flagged"]),
            vec![(11, vec!["\\Seen".to_owned(), "\\flagged".to_owned()])]
        );
        assert!(flags_to_restore(&fetched, &appended, &[]).is_empty());
    }

    fn meta(uid: u32, size: u64) -> MessageMeta {
        MessageMeta {
            uid,
            size,
            flags: vec![],
            internaldate: time::OffsetDateTime::UNIX_EPOCH,
            modseq: None,
            message_id: None,
            gmail_id: None,
        }
    }

    #[test]
    fn a_gmail_message_is_known_by_its_own_id_in_every_label_else_by_its_header() {
        let with_id = MessageMeta {
            message_id: Some("<a@x>".into()),
            ..meta(1, 10)
        };
        assert_eq!(
            label_key(&with_id),
            Some(LabelKey::Header("<a@x>".into(), 10, 0))
        );
        // X-GM-MSGID wins, and names a message without Message-ID too.
        let gmail = MessageMeta {
            gmail_id: Some(77),
            ..with_id.clone()
        };
        assert_eq!(label_key(&gmail), Some(LabelKey::Gmail(77)));
        let bare = MessageMeta {
            gmail_id: Some(78),
            ..meta(2, 10)
        };
        assert_eq!(label_key(&bare), Some(LabelKey::Gmail(78)));
        assert_eq!(label_key(&meta(3, 10)), None);
    }

    #[test]
    fn a_copy_found_by_message_id_is_the_same_message_only_with_its_size_and_date() {
        let m = MessageMeta {
            message_id: Some("<a@x>".into()),
            ..meta(1, 10)
        };
        assert!(same_message(
            &m,
            &MessageMeta {
                uid: 9,
                ..m.clone()
            }
        ));
        assert!(!same_message(
            &m,
            &MessageMeta {
                size: 11,
                ..m.clone()
            }
        ));
        let later = m.internaldate + time::Duration::seconds(1);
        assert!(!same_message(
            &m,
            &MessageMeta {
                internaldate: later,
                ..m.clone()
            }
        ));
        // Without a Message-ID nothing is taken for the same message.
        assert!(!same_message(&meta(1, 10), &meta(2, 10)));
    }

    #[test]
    fn chunks_respect_count_and_bytes() {
        let metas = vec![
            meta(1, 10),
            meta(2, 10),
            meta(3, 100),
            meta(4, 10),
            meta(5, 10),
        ];
        let c = chunk(&metas, 2, 50);
        let uids: Vec<Vec<u32>> = c
            .iter()
            .map(|c| c.iter().map(|m| m.uid).collect())
            .collect();
        assert_eq!(uids, vec![vec![1, 2], vec![3], vec![4, 5]]);
        assert!(chunk(&[], 2, 50).is_empty());
    }

    #[test]
    fn the_projects_rules_skip_by_size_and_date() {
        let options = CopyOptions {
            max_message_bytes: Some(100),
            since: Some(time::OffsetDateTime::UNIX_EPOCH + Duration::from_secs(10)),
            ..Default::default()
        };
        let big = policy_skip(&options, &meta(1, 101)).expect("too big");
        assert_eq!(big.cause, SkipCause::Policy);
        assert!(big.reason.contains("maximum message size"));
        assert!(
            policy_skip(&options, &meta(2, 50))
                .expect("too old")
                .reason
                .contains("date range")
        );
        let mut recent = meta(3, 50);
        recent.internaldate += Duration::from_secs(60);
        assert_eq!(policy_skip(&options, &recent), None);
    }

    #[test]
    fn a_chunk_sorts_into_present_left_out_and_wanted() {
        let options = CopyOptions {
            max_message_bytes: Some(100),
            ..Default::default()
        };
        let chunk = [meta(1, 10), meta(2, 500), meta(3, 30), meta(4, 40)];
        let sorted = sort_chunk(&chunk, &[3].into_iter().collect(), &options);
        let wanted: Vec<u32> = sorted.wanted.iter().map(|m| m.uid).collect();
        assert_eq!(wanted, vec![1, 4]);
        assert_eq!((sorted.present, sorted.present_bytes), (1, 30));
        assert_eq!(sorted.skipped.len(), 1);
        assert_eq!(sorted.skipped[0].uid, 2);
    }

    #[test]
    fn one_refused_message_is_skipped_and_the_rest_copied() {
        let fetched = [meta(1, 10), meta(2, 20), meta(3, 30)];
        let s = settle(
            &fetched,
            vec![
                AppendOutcome::Appended { uid: Some(7) },
                AppendOutcome::Rejected {
                    reason: "malformed".into(),
                },
                AppendOutcome::Appended { uid: None },
            ],
        );
        assert!(s.deferred.is_none() && s.full.is_none());
        assert_eq!(s.appended, vec![(1, 10, Some(7)), (3, 30, None)]);
        assert_eq!(s.skipped.len(), 1);
        assert_eq!(s.skipped[0].cause, SkipCause::TargetRefused);
    }

    #[test]
    fn a_full_or_throttling_target_leaves_the_chunk_unfinished_and_skips_nothing_for_it() {
        let fetched = [meta(1, 10), meta(2, 20), meta(3, 30)];
        let s = settle(
            &fetched,
            vec![
                AppendOutcome::Appended { uid: Some(7) },
                AppendOutcome::Deferred {
                    reason: "throttled".into(),
                    retry_after: Some(Duration::from_millis(1500)),
                },
                AppendOutcome::Deferred {
                    reason: "throttled".into(),
                    retry_after: None,
                },
            ],
        );
        assert!(s.deferred.is_some() || s.full.is_some());
        assert_eq!(
            s.deferred.as_ref().map(|d| d.retry_after),
            Some(Some(Duration::from_millis(1500)))
        );
        assert!(s.skipped.is_empty());
        let s = settle(
            &fetched[..1],
            vec![AppendOutcome::TargetFull {
                reason: "[OVERQUOTA] full".into(),
            }],
        );
        assert_eq!(s.full.as_deref(), Some("[OVERQUOTA] full"));
        assert!(s.deferred.is_some() || s.full.is_some());
    }

    #[test]
    fn refusal_texts_are_classified_by_code_and_words() {
        use AppendOutcome as O;
        let full = O::from_refusal(
            Some("OVERQUOTA"),
            "[OVERQUOTA] Quota exceeded (mailbox for user is full)",
        );
        assert!(matches!(full, O::TargetFull { .. }));
        // Cyrus and Courier say it without a response code.
        for text in ["Over quota", "[ALERT] You exceeded your mail quota."] {
            assert!(
                matches!(O::from_refusal(None, text), O::TargetFull { .. }),
                "{text}"
            );
        }
        let exchange = O::from_refusal(
            None,
            "Request is throttled. Suggested Backoff Time: 1500 milliseconds",
        );
        assert_eq!(
            exchange,
            O::Deferred {
                reason: "Request is throttled. Suggested Backoff Time: 1500 milliseconds".into(),
                retry_after: Some(Duration::from_millis(1500)),
            }
        );
        assert!(matches!(
            O::from_refusal(Some("THROTTLED"), "[THROTTLED] try again in 30 seconds"),
            O::Deferred { retry_after: Some(d), .. } if d == Duration::from_secs(30)
        ));
        // Dovecot's per-message size limit is about this message, not the mailbox.
        assert!(matches!(
            O::from_refusal(Some("LIMIT"), "[LIMIT] Mail size is too large"),
            O::Rejected { .. }
        ));
        assert!(matches!(
            O::from_refusal(Some("OVERQUOTA"), "[OVERQUOTA] Message too large for quota"),
            O::Rejected { .. }
        ));
        assert!(matches!(
            O::from_refusal(None, "Message rejected: malformed header"),
            O::Rejected { .. }
        ));
    }

    #[test]
    fn identical_copies_get_the_flags_of_their_group_changing_as_few_as_possible() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // The source has one copy read and flagged, one now unflagged; the target still has
        // the old flags.
        let fixes = flag_fixes(
            &[f(&["\\Seen", "\\Flagged"]), f(&[])],
            &[(7, f(&["\\Flagged", "\\Seen"])), (8, f(&["\\Flagged"]))],
        );
        assert_eq!(fixes, vec![(8, f(&[]))]);
        assert!(flag_fixes(&[f(&["a"])], &[(1, f(&["a"]))]).is_empty());
        // More target copies than source ones (kept after a deletion): the extra keep theirs.
        assert_eq!(
            flag_fixes(&[f(&["a"])], &[(1, f(&[])), (2, f(&["b"]))]),
            vec![(1, f(&["a"]))]
        );
    }

    #[test]
    fn counts_read_with_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(4365), "4,365");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
