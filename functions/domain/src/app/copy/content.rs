//! Content verification: a copy read back from the target is compared with its source message
//! by fingerprint (SHA-256 of header and body apart, and the traits servers are known to
//! change), never by keeping the bytes. Counts and sizes cannot see Cyrus turning each 8-bit
//! header byte into `X`; this can, and says what changed.
//!
//! The decisions (which copies to check, what a difference means) are plain functions here;
//! `chunk.rs` reads the copies back right after their APPEND, while the chunk's source
//! fingerprints are at hand.

use contract::ContentCheck;
use sha2::{Digest, Sha256};

/// How many copies of each folder a sample checks besides the risky ones.
pub(crate) const SAMPLE_PER_FOLDER: u64 = 20;

/// What a comparison needs of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    pub size: u64,
    header: [u8; 32],
    /// `None` when a streamed message's body was not hashed (see [`Fingerprinting`]): the
    /// comparison then rests on the header, the size and the counts below.
    body: Option<[u8; 32]>,
    /// Bytes ≥ 0x80 in the header.
    header_8bit: usize,
    /// Line feeds without a carriage return before them.
    bare_lf: usize,
    nul: usize,
}

/// The length of the header, blank line included (the whole message when there is no body):
/// up to the first `\r\n\r\n` or `\n\n`, whichever ends first. Only line feeds are visited
/// (memchr), so a message costs a few vector instructions per line, not a comparison per byte.
fn header_len(bytes: &[u8]) -> usize {
    for i in memchr::memchr_iter(b'\n', bytes) {
        let rest = &bytes[i + 1..];
        if rest.first() == Some(&b'\n') {
            return i + 2;
        }
        if i > 0 && bytes[i - 1] == b'\r' && rest.starts_with(b"\r\n") {
            return i + 3;
        }
    }
    bytes.len()
}

/// Line feeds without a carriage return before them.
fn bare_line_feeds(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    memchr::memchr_iter(b'\n', bytes).filter(|&i| i == 0 || bytes[i - 1] != b'\r')
}

impl Fingerprint {
    /// Whether the body was hashed (see [`Fingerprinting`]).
    pub(crate) fn has_body_hash(&self) -> bool {
        self.body.is_some()
    }
}

pub(crate) fn fingerprint(bytes: &[u8]) -> Fingerprint {
    let mut print = Fingerprinting::new(true, false);
    print.update(bytes);
    print.finish()
}

/// A [`Fingerprint`] taken piece by piece, for a message streamed through rather than held:
/// the same result as [`fingerprint`] over the pieces put together, however they are cut.
///
/// Hashing the body is most of the cost (SHA-256 was 40% of the copy's CPU when every streamed
/// message was hashed), and a streamed message is large, so its body is hashed only when the
/// copy will surely be read back: always under [`ContentCheck::All`], for the folder's first
/// copies under a sample, and for a message whose header turns out risky. A message found risky
/// only in its body (NULs, bare line feeds) is still checked, on its size, header and counts:
/// what servers do to such messages changes those.
pub(crate) struct Fingerprinting {
    size: u64,
    header: Sha256,
    /// The body's hash, while it is wanted.
    body: Option<Sha256>,
    /// Hash the body only if the header is risky (decided when the header ends).
    body_if_risky_header: bool,
    /// The header's end has passed.
    in_body: bool,
    /// The last three bytes so far, newest last (for a header end or a bare line feed across
    /// pieces); `size` says how many are real.
    last: [u8; 3],
    header_8bit: usize,
    bare_lf: usize,
    nul: usize,
}

impl Fingerprinting {
    /// A fingerprint of a message whose copy may be checked under `policy`, `checked` copies of
    /// the folder having been picked before; `None` when no copy is checked.
    pub(crate) fn for_check(policy: ContentCheck, checked: u64) -> Option<Fingerprinting> {
        if policy == ContentCheck::Off {
            return None;
        }
        let surely = picked(policy, checked, || false);
        Some(Fingerprinting::new(surely, !surely))
    }

    /// A fingerprint that hashes the body (`hash_body`), or hashes it only when the header is
    /// risky.
    pub(crate) fn new(hash_body: bool, body_if_risky_header: bool) -> Fingerprinting {
        Fingerprinting {
            size: 0,
            header: Sha256::new(),
            body: hash_body.then(Sha256::new),
            body_if_risky_header,
            in_body: false,
            last: [0; 3],
            header_8bit: 0,
            bare_lf: 0,
            nul: 0,
        }
    }

    pub(crate) fn update(&mut self, piece: &[u8]) {
        // The byte `back` places before `piece[at]`, from the piece or the ones before it.
        let before = |last: &[u8; 3], size: u64, at: usize, back: usize| -> Option<u8> {
            if at >= back {
                Some(piece[at - back])
            } else {
                let from_end = back - at; // 1..=3 bytes before the piece
                (from_end as u64 <= size.min(3)).then(|| last[3 - from_end])
            }
        };
        let mut body_from = 0;
        if !self.in_body {
            body_from = piece.len();
            for j in memchr::memchr_iter(b'\n', piece) {
                let p1 = before(&self.last, self.size, j, 1);
                let ends = p1 == Some(b'\n')
                    || (p1 == Some(b'\r')
                        && before(&self.last, self.size, j, 2) == Some(b'\n')
                        && before(&self.last, self.size, j, 3) == Some(b'\r'));
                if ends {
                    body_from = j + 1;
                    self.in_body = true;
                    break;
                }
            }
            let header = &piece[..body_from];
            self.header.update(header);
            self.header_8bit += header.iter().filter(|&&b| b >= 0x80).count();
            if self.in_body && self.body_if_risky_header && self.header_8bit > 0 {
                self.body = Some(Sha256::new());
            }
        }
        if let Some(body) = self.body.as_mut() {
            body.update(&piece[body_from..]);
        }
        self.bare_lf += memchr::memchr_iter(b'\n', piece)
            .filter(|&i| before(&self.last, self.size, i, 1) != Some(b'\r'))
            .count();
        self.nul += memchr::memchr_iter(0, piece).count();
        for &b in piece.iter().rev().take(3).rev() {
            self.last = [self.last[1], self.last[2], b];
        }
        self.size += piece.len() as u64;
    }

    /// Whether a server is likely to store this message differently (see [`wants_check`]).
    fn is_risky(&self) -> bool {
        self.header_8bit > 0 || self.nul > 0 || self.bare_lf > 0
    }

    /// Whether the copy is read back (as [`wants_check`] decides for a held message).
    pub(crate) fn wants_check(&self, policy: ContentCheck, checked: u64) -> bool {
        picked(policy, checked, || self.is_risky())
    }

    pub(crate) fn finish(self) -> Fingerprint {
        Fingerprint {
            size: self.size,
            header: self.header.finalize().into(),
            body: self.body.map(|b| b.finalize().into()),
            header_8bit: self.header_8bit,
            bare_lf: self.bare_lf,
            nul: self.nul,
        }
    }
}

/// Whether a server is likely to store this message differently: 8-bit or NUL bytes in the
/// header, NULs anywhere, bare line feeds. Every copied message passes through here, so each
/// test is a vectorised search that stops at the first sign.
fn is_risky(bytes: &[u8]) -> bool {
    let header = &bytes[..header_len(bytes)];
    header.iter().any(|&b| b >= 0x80)
        || memchr::memchr(0, bytes).is_some()
        || bare_line_feeds(bytes).next().is_some()
}

/// Whether the copy of this message is read back, given how many of the folder's copies were
/// checked already.
pub(crate) fn wants_check(policy: ContentCheck, bytes: &[u8], checked: u64) -> bool {
    picked(policy, checked, || is_risky(bytes))
}

/// Whether a copy is read back under `policy`, `checked` of the folder's copies having been
/// picked before: all, none, or the first [`SAMPLE_PER_FOLDER`] and every `risky` one.
fn picked(policy: ContentCheck, checked: u64, risky: impl FnOnce() -> bool) -> bool {
    match policy {
        ContentCheck::Off => false,
        ContentCheck::All => true,
        ContentCheck::Sample => checked < SAMPLE_PER_FOLDER || risky(),
    }
}

/// What changed between a source message and its copy, in words; `None` when the copy is the
/// same.
pub(crate) fn describe_change(source: &Fingerprint, copy: &Fingerprint) -> Option<String> {
    let mut changes: Vec<String> = Vec::new();
    if source.header != copy.header {
        changes.push(
            if source.header_8bit > copy.header_8bit && source.size == copy.size {
                let n = source.header_8bit - copy.header_8bit;
                let unit = if n == 1 { "byte" } else { "bytes" };
                format!("8-bit header bytes replaced ({n} {unit})")
            } else {
                "headers rewritten".to_owned()
            },
        );
    }
    if let (Some(a), Some(b)) = (source.body, copy.body)
        && a != b
    {
        changes.push("body changed".to_owned());
    }
    if source.bare_lf > 0 && copy.bare_lf == 0 {
        changes.push("bare line feeds made CRLF".to_owned());
    }
    if source.nul > copy.nul {
        changes.push("NUL bytes removed".to_owned());
    }
    if source.size != copy.size {
        changes.push(format!("size {} → {} bytes", source.size, copy.size));
    } else if changes.is_empty() && (source.bare_lf != copy.bare_lf || source.nul != copy.nul) {
        changes.push("line ends or NUL bytes changed".to_owned());
    }
    (!changes.is_empty()).then(|| changes.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &[u8] = b"Subject: hi\r\nMessage-ID: <a@x>\r\n\r\nbody\r\n";

    #[test]
    fn the_same_bytes_are_the_same_copy() {
        assert_eq!(
            describe_change(&fingerprint(PLAIN), &fingerprint(PLAIN)),
            None
        );
    }

    #[test]
    fn cyrus_replacing_8bit_header_bytes_is_named_as_such() {
        let source = b"Subject: caf\xe9 cr\xe8me\r\n\r\nbody \xe9\r\n".to_vec();
        let mut copy = source.clone();
        for b in copy.iter_mut().take(20) {
            if *b >= 0x80 {
                *b = b'X';
            }
        }
        assert_eq!(
            describe_change(&fingerprint(&source), &fingerprint(&copy)).as_deref(),
            Some("8-bit header bytes replaced (2 bytes)")
        );
    }

    #[test]
    fn a_rewritten_header_and_a_changed_body_are_told_apart() {
        let rewritten = b"X-MS-Exchange: 1\r\nSubject: hi\r\nMessage-ID: <a@x>\r\n\r\nbody\r\n";
        assert_eq!(
            describe_change(&fingerprint(PLAIN), &fingerprint(rewritten)).as_deref(),
            Some("headers rewritten, size 40 → 58 bytes")
        );
        let other_body = b"Subject: hi\r\nMessage-ID: <a@x>\r\n\r\nBODY\r\n";
        assert_eq!(
            describe_change(&fingerprint(PLAIN), &fingerprint(other_body)).as_deref(),
            Some("body changed")
        );
        let bare = b"Subject: hi\n\nbody\n";
        let fixed = b"Subject: hi\r\n\r\nbody\r\n";
        let change = describe_change(&fingerprint(bare), &fingerprint(fixed)).unwrap();
        assert!(change.contains("bare line feeds made CRLF"), "{change}");
    }

    /// The definitions the fast scans must agree with, byte by byte.
    fn header_len_plain(bytes: &[u8]) -> usize {
        let crlf = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| p + 4);
        let lf = bytes.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
        match (crlf, lf) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(bytes.len()),
        }
    }

    fn is_risky_plain(bytes: &[u8]) -> bool {
        let header = header_len_plain(bytes);
        let mut previous = 0u8;
        for (i, &b) in bytes.iter().enumerate() {
            if b == 0 || (b >= 0x80 && i < header) || (b == b'\n' && previous != b'\r') {
                return true;
            }
            previous = b;
        }
        false
    }

    #[test]
    fn the_fast_scans_agree_with_the_byte_by_byte_definitions() {
        // Every message of up to 7 bytes over the alphabet that matters, then some longer ones
        // from a fixed generator.
        let alphabet = [b'\r', b'\n', b'a', 0, 0xe9];
        let mut cases: Vec<Vec<u8>> = vec![Vec::new()];
        let mut frontier = cases.clone();
        for _ in 0..7 {
            let next: Vec<Vec<u8>> = frontier
                .iter()
                .flat_map(|c| {
                    alphabet.iter().map(move |&b| {
                        let mut c = c.clone();
                        c.push(b);
                        c
                    })
                })
                .collect();
            cases.extend(next.iter().cloned());
            frontier = next;
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2_000 {
            let len = (state % 200) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    alphabet[(state % 5) as usize]
                })
                .collect();
            cases.push(bytes);
        }
        for bytes in &cases {
            assert_eq!(header_len(bytes), header_len_plain(bytes), "{bytes:?}");
            assert_eq!(is_risky(bytes), is_risky_plain(bytes), "{bytes:?}");
            let bare = bytes
                .iter()
                .enumerate()
                .filter(|&(i, &b)| b == b'\n' && (i == 0 || bytes[i - 1] != b'\r'))
                .count();
            assert_eq!(fingerprint(bytes).bare_lf, bare, "{bytes:?}");
            let (header, body) = bytes.split_at(header_len_plain(bytes));
            let by_definition = Fingerprint {
                size: bytes.len() as u64,
                header: Sha256::digest(header).into(),
                body: Some(Sha256::digest(body).into()),
                header_8bit: header.iter().filter(|&&b| b >= 0x80).count(),
                bare_lf: bare,
                nul: bytes.iter().filter(|&&b| b == 0).count(),
            };
            assert_eq!(fingerprint(bytes), by_definition, "{bytes:?}");
        }
    }

    #[test]
    fn a_fingerprint_taken_in_pieces_is_the_one_of_the_whole_however_cut() {
        let messages: [&[u8]; 6] = [
            PLAIN,
            b"Subject: caf\xe9\r\n\r\nbody\n\0\r\n",
            b"A: b\n\nbody\r\n\r\nmore",
            b"\n\nx",
            b"no header end at all \xe9\r\n",
            b"",
        ];
        for bytes in messages {
            let whole = fingerprint(bytes);
            for piece in 1..=bytes.len().max(1) {
                for first in 0..bytes.len().min(4) {
                    let mut f = Fingerprinting::new(true, false);
                    f.update(&bytes[..first]);
                    for p in bytes[first..].chunks(piece) {
                        f.update(p);
                        f.update(&[]);
                    }
                    let risky = f.is_risky();
                    assert_eq!(risky, is_risky(bytes), "{bytes:?}");
                    assert_eq!(
                        f.finish(),
                        whole,
                        "{bytes:?} in pieces of {piece} after {first}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_streamed_body_is_hashed_only_when_its_copy_is_surely_read_back() {
        let print = |policy, checked, bytes: &[u8]| {
            let mut f = Fingerprinting::for_check(policy, checked)?;
            for piece in bytes.chunks(3) {
                f.update(piece);
            }
            Some((f.wants_check(policy, checked), f.finish()))
        };
        let risky_header = b"Subject: caf\xe9\r\n\r\nbody\r\n".as_slice();
        let risky_body = b"Subject: x\r\n\r\nbo\0dy\n".as_slice();
        assert!(print(ContentCheck::Off, 0, PLAIN).is_none());
        let (wanted, all) = print(ContentCheck::All, 1_000, PLAIN).unwrap();
        assert!(wanted && all == fingerprint(PLAIN));
        let (wanted, first) = print(ContentCheck::Sample, 0, PLAIN).unwrap();
        assert!(wanted && first == fingerprint(PLAIN));
        let (wanted, _) = print(ContentCheck::Sample, SAMPLE_PER_FOLDER, PLAIN).unwrap();
        assert!(!wanted);
        let (wanted, header) =
            print(ContentCheck::Sample, SAMPLE_PER_FOLDER, risky_header).unwrap();
        assert!(
            wanted && header == fingerprint(risky_header),
            "the body is hashed too"
        );
        let (wanted, body) = print(ContentCheck::Sample, SAMPLE_PER_FOLDER, risky_body).unwrap();
        assert!(wanted && body.body.is_none());
        // Without the body's hash, what servers do to such a message still shows.
        let fixed = b"Subject: x\r\n\r\nbody\r\n";
        let mut copy = Fingerprinting::new(false, false);
        copy.update(fixed);
        assert_eq!(
            describe_change(&body, &copy.finish()).as_deref(),
            Some("bare line feeds made CRLF, NUL bytes removed")
        );
        let mut same = Fingerprinting::new(false, false);
        same.update(risky_body);
        assert_eq!(describe_change(&body, &same.finish()), None);
        let mut copy_of_full = Fingerprinting::new(false, false);
        copy_of_full.update(PLAIN);
        assert_eq!(describe_change(&first, &copy_of_full.finish()), None);
    }

    #[test]
    fn a_sample_checks_the_first_copies_and_every_risky_one() {
        let risky = b"Subject: caf\xe9\r\n\r\nx".as_slice();
        assert!(wants_check(ContentCheck::Sample, PLAIN, 0));
        assert!(!wants_check(ContentCheck::Sample, PLAIN, SAMPLE_PER_FOLDER));
        assert!(wants_check(ContentCheck::Sample, risky, 10_000));
        assert!(wants_check(ContentCheck::Sample, b"a\nb", 10_000));
        assert!(
            !wants_check(ContentCheck::Sample, b"a\r\n\r\nb\xe9", 10_000),
            "8-bit bodies are fine"
        );
        assert!(wants_check(ContentCheck::All, PLAIN, u64::MAX));
        assert!(!wants_check(ContentCheck::Off, risky, 0));
    }
}
