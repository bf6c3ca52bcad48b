//! Reading the Message-ID header out of a message's bytes, the way a server builds the
//! ENVELOPE's message-id: the first `Message-ID:` field of the header section (the lines before
//! the first empty line), name matched case-insensitively, value unfolded and trimmed, angle
//! brackets kept. One function, so the server's duplicate detection, `find_by_message_id` and
//! the metadata it reports all agree.

/// The Message-ID of `bytes`, including its angle brackets; `None` when the header section has
/// no such field or its value is empty.
pub fn message_id(bytes: &[u8]) -> Option<String> {
    let mut value: Option<Vec<u8>> = None;
    for line in bytes.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            // The end of the header section: the body may well contain "Message-ID:" lines
            // (a forwarded message), which are not this message's.
            break;
        }
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        match (&mut value, continuation) {
            // Unfolding (RFC 5322 2.2.3) removes the line break and keeps the whitespace.
            (Some(v), true) => v.extend_from_slice(line),
            (Some(_), false) => break,
            (None, true) => {}
            (None, false) => {
                if let Some(colon) = line.iter().position(|&b| b == b':') {
                    let name = String::from_utf8_lossy(&line[..colon]);
                    if name.trim_end().eq_ignore_ascii_case("message-id") {
                        value = Some(line[colon + 1..].to_vec());
                    }
                }
            }
        }
    }
    let value = value?;
    let value = String::from_utf8_lossy(&value).trim().to_owned();
    (!value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::message_id;

    #[test]
    fn finds_the_header_whatever_its_case_and_line_endings() {
        let crlf = b"From: a@x\r\nMessage-ID: <1@x>\r\nSubject: s\r\n\r\nbody\r\n";
        assert_eq!(message_id(crlf).as_deref(), Some("<1@x>"));
        let lf = b"From: a@x\nmessage-id:   <2@x>  \n\nbody\n";
        assert_eq!(message_id(lf).as_deref(), Some("<2@x>"));
        let upper = b"MESSAGE-ID: <3@x>\r\n\r\n";
        assert_eq!(message_id(upper).as_deref(), Some("<3@x>"));
    }

    #[test]
    fn unfolds_a_value_continued_on_the_next_line() {
        let folded = b"Subject: s\r\nMessage-Id:\r\n <4@example.org>\r\nFrom: a@x\r\n\r\n";
        assert_eq!(message_id(folded).as_deref(), Some("<4@example.org>"));
        let tab = b"Message-ID: <5@\n\tx>\n\n";
        assert_eq!(message_id(tab).as_deref(), Some("<5@\tx>"));
    }

    #[test]
    fn ignores_the_body_other_fields_and_empty_values() {
        let in_body = b"From: a@x\r\n\r\nMessage-ID: <6@x>\r\n";
        assert_eq!(message_id(in_body), None);
        let lookalike = b"X-Message-ID: <7@x>\r\nIn-Reply-To: <8@x>\r\n\r\n";
        assert_eq!(message_id(lookalike), None);
        let empty = b"Message-ID:   \r\nFrom: a@x\r\n\r\n";
        assert_eq!(message_id(empty), None);
        assert_eq!(message_id(b""), None);
        let first_wins = b"Message-ID: <9@x>\r\nMessage-ID: <10@x>\r\n\r\n";
        assert_eq!(message_id(first_wins).as_deref(), Some("<9@x>"));
    }
}
