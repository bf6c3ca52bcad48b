//! Gmail's X-GM-MSGID (X-GM-EXT-1): the one id a message has in every label it shows in, which
//! tells the copy engine that a message of All Mail is one it already copied with a label.
//!
//! No IMAP parser knows Gmail's FETCH items (imap-codec refuses the whole response), so the
//! ids are asked for in a FETCH of their own (`UID FETCH … (UID X-GM-MSGID)`), during which the
//! session keeps the responses imap-codec cannot parse instead of failing, and these lines are
//! read here. They hold numbers only; anything else in them is skipped, and a line that still
//! does not make sense gives no id (the message is then matched by its header, as elsewhere).

use std::collections::HashMap;

use crate::error::ImapError;
use crate::raw::RawCommand;
use crate::session::Session;
use crate::uids::{RANGES_PER_COMMAND, UidSet};

impl Session {
    /// X-GM-MSGID of the messages with these UIDs in the selected folder, by UID.
    pub async fn gmail_ids(&mut self, uids: &UidSet) -> Result<HashMap<u32, u64>, ImapError> {
        self.require_selected("gmail_ids")?;
        let mut ids = HashMap::new();
        for chunk in uids.chunks(RANGES_PER_COMMAND) {
            let command =
                RawCommand::new("FETCH").text(&format!("UID FETCH {chunk} (UID X-GM-MSGID)"));
            self.unparsed = Some(Vec::new());
            let result = self.execute_raw(command).await;
            let lines = self.unparsed.take().unwrap_or_default();
            result?;
            ids.extend(lines.iter().filter_map(|line| gmail_id_line(line)));
        }
        Ok(ids)
    }
}

/// `(UID, X-GM-MSGID)` of one `* n FETCH (…)` line.
fn gmail_id_line(line: &[u8]) -> Option<(u32, u64)> {
    let text = std::str::from_utf8(line).ok()?.trim_end();
    let rest = text.strip_prefix("* ")?;
    let (seq, rest) = rest.split_once(' ')?;
    seq.parse::<u32>().ok()?;
    let (verb, rest) = rest.split_once(' ')?;
    if !verb.eq_ignore_ascii_case("FETCH") {
        return None;
    }
    let items = rest.strip_prefix('(')?.strip_suffix(')')?;
    let tokens = tokens(items)?;
    let (mut uid, mut id) = (None, None);
    for pair in tokens.chunks(2) {
        let [name, value] = pair else { return None };
        if name.eq_ignore_ascii_case("UID") {
            uid = value.parse::<u32>().ok().filter(|&u| u > 0);
        } else if name.eq_ignore_ascii_case("X-GM-MSGID") {
            id = value.parse::<u64>().ok();
        }
    }
    Some((uid?, id?))
}

/// The items of a FETCH response as words, a parenthesised list or a quoted string counting as
/// one word; `None` when the brackets or quotes do not balance.
fn tokens(items: &str) -> Option<Vec<&str>> {
    let bytes = items.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b' ' {
            i += 1;
            continue;
        }
        let start = i;
        let (mut depth, mut quoted) = (0usize, false);
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b'(' if !quoted => depth += 1,
                b')' if !quoted => depth = depth.checked_sub(1)?,
                b' ' if !quoted && depth == 0 => break,
                _ => {}
            }
            i += 1;
        }
        if quoted || depth != 0 {
            return None;
        }
        out.push(items.get(start..i.min(bytes.len()))?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_next::State;
    use imap_next::client::{Client, Error, Event, Options};

    #[test]
    fn a_gmail_fetch_line_gives_its_uid_and_message_id() {
        let line = b"* 12 FETCH (X-GM-MSGID 1278455344230334865 UID 5)\r\n";
        assert_eq!(gmail_id_line(line), Some((5, 1_278_455_344_230_334_865)));
        // Items Gmail may add unasked (flags changed meanwhile, labels) are skipped.
        let busy =
            b"* 3 FETCH (UID 9 FLAGS (\\Seen $Work) X-GM-LABELS (\"a (b\" \\Inbox) X-GM-MSGID 42)";
        assert_eq!(gmail_id_line(busy), Some((9, 42)));
        for broken in [
            b"* 3 FETCH (UID 9)".as_slice(),
            b"* 3 FETCH (X-GM-MSGID 42)",
            b"* 3 FETCH (UID 9 X-GM-MSGID 42",
            b"* 3 FETCH (UID 9 FLAGS (\\Seen X-GM-MSGID 42)",
            b"* 3 EXISTS",
            b"* 3 FETCH (UID 0 X-GM-MSGID 42)",
            b"* 3 FETCH (UID 9 X-GM-MSGID -1)",
            b"M4 OK done",
        ] {
            assert_eq!(
                gmail_id_line(broken),
                None,
                "{}",
                String::from_utf8_lossy(broken)
            );
        }
    }

    /// What `gmail_ids` relies on: imap-next reports a response it cannot parse and goes on
    /// with the next one, which parses as usual.
    #[test]
    fn a_response_no_parser_knows_is_skipped_and_the_next_one_read() {
        let mut client = Client::new(Options::default());
        client.enqueue_input(b"* OK ready\r\n");
        assert!(matches!(client.next(), Ok(Event::GreetingReceived { .. })));
        client.enqueue_input(b"* 1 FETCH (X-GM-MSGID 77 UID 4)\r\n* 2 FETCH (UID 5 FLAGS ())\r\n");
        match client.next() {
            Err(imap_next::Interrupt::Error(Error::MalformedMessage { discarded_bytes })) => {
                assert_eq!(gmail_id_line(discarded_bytes.declassify()), Some((4, 77)));
            }
            other => panic!("expected the unknown response, got {other:?}"),
        }
        assert!(
            matches!(client.next(), Ok(Event::DataReceived { .. })),
            "the next response is read as usual"
        );
    }
}
