//! Commands written by hand, for what imap-types cannot express (LIST with RETURN options,
//! MULTIAPPEND, literals sent straight from the caller's buffer), and the IMAP syntax they
//! need: strings, mailbox names, flag lists, dates.

use std::borrow::Cow;

use time::OffsetDateTime;

use crate::mutf7;

/// One piece of a hand-written command.
#[derive(Debug)]
pub(crate) enum Piece<'a> {
    /// Bytes that go on the command line as they are.
    Text(Vec<u8>),
    /// A literal; the session announces it as `{n+}` or `{n}` as the server allows.
    Literal(Cow<'a, [u8]>),
    /// A literal of this many bytes read from a body stream while it is sent.
    Stream(u64),
}

/// A command as pieces, without its tag and final CRLF.
#[derive(Debug)]
pub(crate) struct RawCommand<'a> {
    pub(crate) name: &'static str,
    pub(crate) pieces: Vec<Piece<'a>>,
}

impl<'a> RawCommand<'a> {
    /// `name` is what errors call the command ("APPEND", "LIST").
    pub(crate) fn new(name: &'static str) -> Self {
        RawCommand {
            name,
            pieces: Vec::new(),
        }
    }

    /// Text that goes on the line as it is (keywords, numbers, spaces, parentheses).
    pub(crate) fn text(mut self, text: &str) -> Self {
        match self.pieces.last_mut() {
            Some(Piece::Text(line)) => line.extend_from_slice(text.as_bytes()),
            _ => self.pieces.push(Piece::Text(text.as_bytes().to_vec())),
        }
        self
    }

    /// An IMAP string: quoted when it can be, a literal otherwise.
    pub(crate) fn string(self, value: &[u8]) -> Self {
        match quoted(value) {
            Some(q) => self.text(&q),
            None => self.literal(Cow::Owned(value.to_vec())),
        }
    }

    /// A mailbox name given in UTF-8, encoded in modified UTF-7.
    pub(crate) fn mailbox(self, name: &str) -> Self {
        let encoded = mutf7::encode(name);
        self.string(encoded.as_bytes())
    }

    /// A mailbox name exactly as the server wrote it.
    pub(crate) fn raw_mailbox(self, raw: &str) -> Self {
        self.string(raw.as_bytes())
    }

    /// A literal of `size` bytes that comes from a body stream while the command is sent.
    pub(crate) fn stream(mut self, size: u64) -> Self {
        self.pieces.push(Piece::Stream(size));
        self
    }

    pub(crate) fn literal(mut self, data: Cow<'a, [u8]>) -> Self {
        self.pieces.push(Piece::Literal(data));
        self
    }
}

/// `"..."` when every byte may appear in a quoted string (7-bit, no CR, LF or NUL) and the
/// value is short; `None` when it needs a literal.
pub(crate) fn quoted(value: &[u8]) -> Option<String> {
    if value.len() > 1024
        || !value
            .iter()
            .all(|&b| (0x01..=0x7f).contains(&b) && b != b'\r' && b != b'\n')
    {
        return None;
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for &b in value {
        if b == b'"' || b == b'\\' {
            out.push('\\');
        }
        out.push(char::from(b));
    }
    out.push('"');
    Some(out)
}

/// Whether `name` is an IMAP atom (what a keyword, or a system flag after its `\`, must be).
pub(crate) fn is_atom(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && !b"(){%*\"\\]".contains(&b))
}

/// A flag as it may go into APPEND or STORE: `\Seen`-style system flags and keyword atoms.
/// `\Recent` is the server's to set and never sent; anything that is not a valid flag is
/// `None`.
pub(crate) fn valid_flag(flag: &str) -> Option<&str> {
    let flag = flag.trim();
    match flag.strip_prefix('\\') {
        Some(name) if name.eq_ignore_ascii_case("Recent") => None,
        Some(name) if is_atom(name) => Some(flag),
        Some(_) => None,
        None if is_atom(flag) => Some(flag),
        None => None,
    }
}

/// `(\Seen $Label1)`, dropping what [`valid_flag`] refuses.
pub(crate) fn flag_list<S: AsRef<str>>(flags: &[S]) -> String {
    let mut out = String::from("(");
    let mut first = true;
    for flag in flags {
        let Some(flag) = valid_flag(flag.as_ref()) else {
            tracing::warn!(flag = flag.as_ref(), "leaving out a flag IMAP cannot carry");
            continue;
        };
        if !first {
            out.push(' ');
        }
        first = false;
        out.push_str(flag);
    }
    out.push(')');
    out
}

/// An INTERNALDATE as APPEND takes it: `"05-Jan-2024 13:05:09 +0100"`. The offset is kept;
/// an offset with seconds (which IMAP cannot write) is cut to whole minutes.
pub(crate) fn internaldate(date: OffsetDateTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let offset = date.offset();
    let minutes = offset.whole_minutes();
    let sign = if minutes < 0 { '-' } else { '+' };
    let minutes = minutes.unsigned_abs();
    // The clock time shown is local to the offset, which is cut to whole minutes.
    let shown = match time::UtcOffset::from_whole_seconds(i32::from(offset.whole_minutes()) * 60) {
        Ok(cut) => date.to_offset(cut),
        Err(_) => date,
    };
    format!(
        "\"{:02}-{}-{:04} {:02}:{:02}:{:02} {}{:02}{:02}\"",
        shown.day(),
        MONTHS[usize::from(u8::from(shown.month())) - 1],
        shown.year(),
        shown.hour(),
        shown.minute(),
        shown.second(),
        sign,
        minutes / 60,
        minutes % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_or_become_literals() {
        assert_eq!(quoted(b"Sent Items").as_deref(), Some("\"Sent Items\""));
        assert_eq!(quoted(b"a\"b\\c").as_deref(), Some("\"a\\\"b\\\\c\""));
        assert_eq!(quoted("Entwürfe".as_bytes()), None);
        assert_eq!(quoted(b"two\r\nlines"), None);
        let command = RawCommand::new("X").text("X ").string("ä".as_bytes());
        assert!(matches!(command.pieces.last(), Some(Piece::Literal(_))));
    }

    #[test]
    fn flags_keep_keywords_and_drop_recent_and_junk() {
        let flags = [
            "\\Seen",
            "\\Recent",
            "$Label1",
            "NonJunk",
            "bad flag",
            "\\Flagged",
            "",
        ];
        assert_eq!(flag_list(&flags), "(\\Seen $Label1 NonJunk \\Flagged)");
        assert_eq!(flag_list::<&str>(&[]), "()");
    }

    #[test]
    fn internaldate_keeps_the_offset() {
        let date = time::macros::datetime!(2024-01-05 13:05:09 +01:00);
        assert_eq!(internaldate(date), "\"05-Jan-2024 13:05:09 +0100\"");
        let west = time::macros::datetime!(1999-12-31 23:59:59 -09:30);
        assert_eq!(internaldate(west), "\"31-Dec-1999 23:59:59 -0930\"");
    }
}
