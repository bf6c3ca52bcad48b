//! `UID COPY` of messages of the selected folder into another folder, with the copies' UIDs
//! from COPYUID (RFC 4315) when the server sends them. On Gmail a copy is the same message
//! with one more label, so nothing is uploaded again.

use std::collections::HashMap;

use imap_next::imap_types::extensions::uidplus::UidElement;
use imap_next::imap_types::response::Code;

use crate::error::ImapError;
use crate::raw::RawCommand;
use crate::session::Session;
use crate::uids::{RANGES_PER_COMMAND, UidSet};

impl Session {
    /// Copies the messages with these UIDs of the selected folder into `to` (a UTF-8 name);
    /// per UID in the order given, the copy's UID when COPYUID names it. With COPYUID, a UID
    /// it does not name was not copied (the message is gone) and is left out; without it
    /// (no UIDPLUS) every UID is listed, with `None`.
    pub async fn copy_uids(
        &mut self,
        uids: &[u32],
        to: &str,
    ) -> Result<Vec<(u32, Option<u32>)>, ImapError> {
        self.require_selected("copy_uids")?;
        let mut copies: HashMap<u32, Option<u32>> = HashMap::with_capacity(uids.len());
        let set = UidSet::from_uids(uids.iter().copied());
        for chunk in set.chunks(RANGES_PER_COMMAND) {
            let command = RawCommand::new("COPY")
                .text(&format!("UID COPY {chunk} "))
                .mailbox(to);
            let completion = self.execute_raw(command).await?;
            match copyuid(completion.code.as_ref()) {
                Some(pairs) => copies.extend(pairs.into_iter().map(|(a, b)| (a, Some(b)))),
                None => copies.extend(chunk.iter().map(|uid| (uid, None))),
            }
        }
        Ok(uids
            .iter()
            .filter_map(|&uid| Some((uid, *copies.get(&uid)?)))
            .collect())
    }
}

/// COPYUID's pairs of source and copy UIDs (RFC 4315: the two sets list the messages in the
/// same order). imap-codec parses the code; a form it does not know arrives as an unknown
/// code and is read here.
fn copyuid(code: Option<&Code<'_>>) -> Option<Vec<(u32, u32)>> {
    let (source, copies) = match code? {
        Code::CopyUid {
            source,
            destination,
            ..
        } => (expand(source.0.as_ref()), expand(destination.0.as_ref())),
        Code::Other(other) => {
            let text = std::str::from_utf8(other.inner()).ok()?;
            let mut words = text.split_ascii_whitespace();
            if !words.next()?.eq_ignore_ascii_case("COPYUID") {
                return None;
            }
            words.next()?.parse::<u32>().ok().filter(|&v| v > 0)?;
            (
                UidSet::parse_ordered(words.next()?)?,
                UidSet::parse_ordered(words.next()?)?,
            )
        }
        _ => return None,
    };
    // Sets of different lengths pair nothing for sure.
    (source.len() == copies.len()).then(|| source.into_iter().zip(copies).collect())
}

fn expand(elements: &[UidElement]) -> Vec<u32> {
    let mut out = Vec::new();
    for element in elements {
        match *element {
            UidElement::Single(uid) => out.push(uid.get()),
            UidElement::Range(a, b) => {
                let (a, b) = (a.get(), b.get());
                if a.abs_diff(b) > 1_000_000 {
                    return Vec::new();
                }
                if a <= b {
                    out.extend(a..=b);
                } else {
                    out.extend((b..=a).rev());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_next::imap_types::response::CodeOther;

    #[test]
    fn copyuid_pairs_each_source_uid_with_its_copy() {
        let code = Code::Other(CodeOther::unvalidated(
            b"COPYUID 38505 304,319:320 3956:3958".as_slice(),
        ));
        assert_eq!(
            copyuid(Some(&code)),
            Some(vec![(304, 3956), (319, 3957), (320, 3958)])
        );
        let uneven = Code::Other(CodeOther::unvalidated(b"COPYUID 1 1:3 7".as_slice()));
        assert_eq!(copyuid(Some(&uneven)), None);
        assert_eq!(copyuid(None), None);
    }

    #[test]
    fn copyuid_as_imap_codec_parses_it() {
        use imap_next::imap_types::core::Vec1;
        use imap_next::imap_types::extensions::uidplus::UidSet as Set;
        use std::num::NonZeroU32;
        let n = |v| NonZeroU32::new(v).unwrap();
        let code = Code::CopyUid {
            uid_validity: n(9),
            source: Set(Vec1::unvalidated(vec![
                UidElement::Single(n(4)),
                UidElement::Range(n(6), n(7)),
            ])),
            destination: Set(Vec1::from(UidElement::Range(n(20), n(22)))),
        };
        assert_eq!(copyuid(Some(&code)), Some(vec![(4, 20), (6, 21), (7, 22)]));
    }
}
