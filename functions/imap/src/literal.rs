//! Where the server's byte stream is (in a line, or in a literal of known length), and one
//! message body taken out of it on the way to imap-next.
//!
//! imap-next holds every response whole before it decodes it, and then decodes a second copy:
//! a 25 MB message would sit in memory twice. To stream a large body from the source's FETCH
//! into the target's APPEND, the transport runs every byte it reads through a [`Scanner`]
//! first. Armed for one command ([`Scanner::arm`]), the scanner holds each line back until it
//! is complete; a line of a response that ends in `BODY[] {n}` is handed on as `BODY[] {0}`,
//! and the `n` bytes that follow are the caller's to read ([`Transport::body_chunk`]) instead
//! of imap-next's. The rest of the response (`)` and CRLF, the tagged OK) goes to imap-next as
//! usual, which sees an empty body.
//!
//! Unarmed, bytes go on as they come and only the position is kept: a line's last bytes (to
//! read a literal's length at its end) and the literal bytes still due. Literal bytes are
//! counted, not searched, so the scanner costs a `memchr` over the text of the lines.
//!
//! [`Transport::body_chunk`]: crate::transport::Transport::body_chunk

/// How much of the end of a line is kept: enough for `BODY[]<0> {` and a 20-digit length.
const TAIL: usize = 40;

/// How much of the start of a response is kept: enough for `* ` and the word after it.
const HEAD: usize = 12;

/// The position in the server's stream, and the one body to take out of it when armed.
#[derive(Debug, Default)]
pub(crate) struct Scanner {
    /// Literal bytes still due before the line goes on.
    literal: u64,
    /// The end of the current line so far (unarmed), up to [`TAIL`] bytes.
    tail: Vec<u8>,
    /// The start of the current response, up to [`HEAD`] bytes: only data responses
    /// (`* 3 FETCH`, `* LIST`) carry literals; a status text may end in `{5}` as plain text.
    head: Vec<u8>,
    /// The current line continues a response after a literal.
    continued: bool,
    armed: Option<Armed>,
    /// Bytes of the taken body not yet read by the caller.
    body: u64,
}

#[derive(Debug, Default)]
struct Armed {
    /// The current line so far, kept from the state machine until it is complete.
    held: Vec<u8>,
    /// Whether the current response began after arming: only such a response can be the
    /// answer to the armed command.
    fresh: bool,
}

/// What to do with the bytes at the front of the input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Hand this many bytes to the state machine as they are.
    Pass(usize),
    /// This many bytes were kept (part of a line not yet complete).
    Held(usize),
    /// This many bytes completed a line: hand the line to the state machine. When the line
    /// announced the body, its literal is now `{0}` and [`Scanner::body_remaining`] says how
    /// many body bytes follow.
    Line(usize, Vec<u8>),
}

impl Scanner {
    /// The next response that carries `BODY[]` gives its bytes to the caller. The scanner
    /// stays armed until a body is taken or [`Scanner::disarm`].
    pub(crate) fn arm(&mut self) {
        let between_responses = self.literal == 0
            && self.body == 0
            && self.tail.is_empty()
            && self.head.is_empty()
            && !self.continued;
        self.armed = Some(Armed {
            held: Vec::new(),
            fresh: between_responses,
        });
    }

    /// Stops watching; a line held so far is returned for the state machine.
    pub(crate) fn disarm(&mut self) -> Vec<u8> {
        let held = self.armed.take().map(|a| a.held).unwrap_or_default();
        self.keep_tail(&held);
        held
    }

    /// Body bytes the caller has still to read.
    pub(crate) fn body_remaining(&self) -> u64 {
        self.body
    }

    /// The caller read `n` bytes of the body.
    pub(crate) fn body_taken(&mut self, n: usize) {
        self.body = self.body.saturating_sub(n as u64);
    }

    /// Decides about the bytes at the front of `input` (not empty, and no body bytes due).
    pub(crate) fn step(&mut self, input: &[u8]) -> Step {
        debug_assert_eq!(self.body, 0, "body bytes are read with body_chunk");
        if self.literal > 0 {
            let n = usize::try_from(self.literal)
                .unwrap_or(usize::MAX)
                .min(input.len());
            self.literal -= n as u64;
            return Step::Pass(n);
        }
        let end = memchr::memchr(b'\n', input).map(|i| i + 1);
        let n = end.unwrap_or(input.len());
        if !self.continued && self.head.len() < HEAD {
            let take = (HEAD - self.head.len()).min(n);
            self.head.extend_from_slice(&input[..take]);
        }
        let Some(armed) = self.armed.as_mut() else {
            self.keep_tail(&input[..n]);
            if end.is_some() {
                let literal = literal_at_end(&self.tail);
                self.tail.clear();
                self.line_ended(literal);
            }
            return Step::Pass(n);
        };
        armed.held.extend_from_slice(&input[..n]);
        if end.is_none() {
            return Step::Held(n);
        }
        let mut line = std::mem::take(&mut armed.held);
        let fresh = armed.fresh;
        // A line that began before arming has its start in `tail`.
        let literal = if self.tail.is_empty() {
            literal_at_end(&line)
        } else {
            let mut whole = std::mem::take(&mut self.tail);
            whole.extend_from_slice(&line);
            literal_at_end(&whole)
        };
        let literal = self.line_ended(literal);
        // An empty body stays in the response: imap-next gives it as it is.
        if let (true, Some(size @ 1..), Some(brace)) = (fresh, literal, body_brace(&line)) {
            line.truncate(brace);
            line.extend_from_slice(b"{0}\r\n");
            self.armed = None;
            self.literal = 0;
            self.body = size;
            return Step::Line(n, line);
        }
        if literal.is_none()
            && let Some(armed) = self.armed.as_mut()
        {
            // The response ended: the next one began after arming.
            armed.fresh = true;
        }
        Step::Line(n, line)
    }

    /// A line ended with `literal` at its end (as far as its text goes): a literal only in a
    /// data response, which then goes on after it; otherwise the response is over. Returns the
    /// literal that follows.
    fn line_ended(&mut self, literal: Option<u64>) -> Option<u64> {
        let literal = literal.filter(|_| may_carry_literals(&self.head));
        match literal {
            Some(size) => {
                self.literal = size;
                self.continued = true;
            }
            None => {
                self.head.clear();
                self.continued = false;
            }
        }
        literal
    }

    fn keep_tail(&mut self, bytes: &[u8]) {
        if bytes.len() >= TAIL {
            self.tail.clear();
            self.tail.extend_from_slice(&bytes[bytes.len() - TAIL..]);
        } else {
            let over = (self.tail.len() + bytes.len()).saturating_sub(TAIL);
            self.tail.drain(..over);
            self.tail.extend_from_slice(bytes);
        }
    }
}

/// The length of the literal a line (through its line feed) announces at its end: `{n}` or
/// `~{n}` (RFC 3516) right before CRLF.
fn literal_at_end(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Whether a response starting with `head` may carry literals: untagged data (`* 3 FETCH`,
/// `* LIST`), not a status (`* OK`, `* NO`, `* BAD`, `* BYE`, `* PREAUTH`), a tagged response or
/// a continuation request, whose text may end in `{5}` as plain text.
fn may_carry_literals(head: &[u8]) -> bool {
    let Some(rest) = head.strip_prefix(b"* ") else {
        return false;
    };
    let word: Vec<u8> = rest
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric())
        .map(u8::to_ascii_uppercase)
        .collect();
    !matches!(
        word.as_slice(),
        b"OK" | b"NO" | b"BAD" | b"BYE" | b"PREAUTH"
    )
}

/// Where `{` is in a line that ends in `BODY[] {n}` or `BODY[]<0> {n}` (any case), the whole
/// message as a literal.
fn body_brace(line: &[u8]) -> Option<usize> {
    let open = line.iter().rposition(|&b| b == b'{')?;
    let before = line[..open].strip_suffix(b" ")?;
    let upper = before.to_ascii_uppercase();
    (upper.ends_with(b" BODY[]")
        || upper.ends_with(b"(BODY[]")
        || upper.ends_with(b" BODY[]<0>")
        || upper.ends_with(b"(BODY[]<0>"))
    .then_some(open)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `input` through `scanner` in pieces of `piece` bytes, as reads would deliver it:
    /// what the state machine gets, and the body taken out.
    fn run(scanner: &mut Scanner, input: &[u8], piece: usize) -> (Vec<u8>, Vec<u8>) {
        let (mut state, mut body) = (Vec::new(), Vec::new());
        for chunk in input.chunks(piece.max(1)) {
            let mut rest = chunk;
            while !rest.is_empty() {
                if scanner.body_remaining() > 0 {
                    let n = (scanner.body_remaining() as usize).min(rest.len());
                    body.extend_from_slice(&rest[..n]);
                    scanner.body_taken(n);
                    rest = &rest[n..];
                    continue;
                }
                let n = match scanner.step(rest) {
                    Step::Pass(n) => {
                        state.extend_from_slice(&rest[..n]);
                        n
                    }
                    Step::Held(n) => n,
                    Step::Line(n, line) => {
                        state.extend_from_slice(&line);
                        n
                    }
                };
                rest = &rest[n..];
            }
        }
        (state, body)
    }

    const MESSAGE: &[u8] = b"Subject: {5}\r\n\r\nBODY[] {3}\r\nabc\r\n";

    fn fetch_response(seq: u32) -> Vec<u8> {
        let mut r = format!("* {seq} FETCH (UID 7 BODY[] {{{}}}\r\n", MESSAGE.len()).into_bytes();
        r.extend_from_slice(MESSAGE);
        r.extend_from_slice(b")\r\n");
        r
    }

    #[test]
    fn unarmed_everything_passes_unchanged_in_any_pieces() {
        let mut input = b"* 3 EXISTS\r\n".to_vec();
        input.extend(fetch_response(1));
        input.extend_from_slice(b"M1 OK done\r\n");
        for piece in [1, 2, 5, 7, 64, 4096] {
            let mut scanner = Scanner::default();
            let (state, body) = run(&mut scanner, &input, piece);
            assert_eq!(state, input, "piece {piece}");
            assert!(body.is_empty());
            assert_eq!((scanner.literal, scanner.tail.len()), (0, 0));
        }
    }

    #[test]
    fn armed_the_body_is_taken_out_and_announced_empty() {
        let mut input = b"* 3 EXISTS\r\n".to_vec();
        input.extend(fetch_response(1));
        input.extend_from_slice(b"M1 OK done\r\n");
        for piece in [1, 3, 16, 4096] {
            let mut scanner = Scanner::default();
            scanner.arm();
            let (state, body) = run(&mut scanner, &input, piece);
            assert_eq!(body, MESSAGE, "piece {piece}");
            assert_eq!(
                String::from_utf8_lossy(&state),
                "* 3 EXISTS\r\n* 1 FETCH (UID 7 BODY[] {0}\r\n)\r\nM1 OK done\r\n"
            );
            // One body per arming: the scanner is back to passing bytes.
            assert!(scanner.armed.is_none());
        }
    }

    #[test]
    fn a_literal_before_the_body_is_passed_and_the_body_still_found() {
        let mut input = b"* 1 FETCH (BODY[HEADER] {12}\r\nBODY[] {3}\r\n BODY[]<0> ".to_vec();
        input.extend_from_slice(format!("{{{}}}\r\n", MESSAGE.len()).as_bytes());
        input.extend_from_slice(MESSAGE);
        input.extend_from_slice(b")\r\n");
        let mut scanner = Scanner::default();
        scanner.arm();
        let (state, body) = run(&mut scanner, &input, 5);
        assert_eq!(body, MESSAGE);
        assert_eq!(
            String::from_utf8_lossy(&state),
            "* 1 FETCH (BODY[HEADER] {12}\r\nBODY[] {3}\r\n BODY[]<0> {0}\r\n)\r\n"
        );
    }

    #[test]
    fn a_response_that_began_before_arming_is_never_taken_apart() {
        let response = fetch_response(4);
        let (before, after) = response.split_at(6);
        let mut scanner = Scanner::default();
        let (state, _) = run(&mut scanner, before, 64);
        scanner.arm();
        let (rest, body) = run(&mut scanner, after, 64);
        assert!(body.is_empty());
        assert_eq!([state, rest].concat(), response);
        // The next response is the armed command's.
        let (_, body) = run(&mut scanner, &fetch_response(5), 64);
        assert_eq!(body, MESSAGE);
    }

    #[test]
    fn disarming_returns_what_was_held() {
        let mut scanner = Scanner::default();
        scanner.arm();
        let (state, _) = run(&mut scanner, b"* 2 FETCH (FLAGS (\\Seen) BODY[", 4);
        assert!(state.is_empty());
        assert_eq!(scanner.disarm(), b"* 2 FETCH (FLAGS (\\Seen) BODY[");
        let (state, _) = run(&mut scanner, b"] {2}\r\nab)\r\n", 4);
        assert_eq!(state, b"] {2}\r\nab)\r\n");
    }

    #[test]
    fn a_status_text_ending_in_braces_is_text_not_a_literal() {
        let mut input = b"* OK [ALERT] see {4}\r\nM7 NO failed {9}\r\n+ go {3}\r\n".to_vec();
        input.extend(fetch_response(2));
        for piece in [1, 3, 4096] {
            let mut scanner = Scanner::default();
            scanner.arm();
            let (state, body) = run(&mut scanner, &input, piece);
            assert_eq!(body, MESSAGE, "piece {piece}");
            assert!(String::from_utf8_lossy(&state).ends_with("BODY[] {0}\r\n)\r\n"));
        }
        assert!(may_carry_literals(b"* 12 FETCH ("));
        assert!(may_carry_literals(b"* LIST (\\Noselect"));
        assert!(!may_carry_literals(b"* ok [ALERT]"));
        assert!(!may_carry_literals(b"M1 OK done"));
    }

    #[test]
    fn arming_after_a_literal_inside_a_response_waits_for_the_next_response() {
        let response = fetch_response(4);
        // Up to the end of the literal: the response's `)` and CRLF are still due.
        let cut = response.len() - 3;
        let mut scanner = Scanner::default();
        let (state, _) = run(&mut scanner, &response[..cut], 64);
        scanner.arm();
        let (rest, body) = run(&mut scanner, &response[cut..], 64);
        assert!(body.is_empty());
        assert_eq!([state, rest].concat(), response);
        let (_, body) = run(&mut scanner, &fetch_response(5), 7);
        assert_eq!(body, MESSAGE);
    }

    /// One server response of a generated stream.
    #[derive(Debug, Clone)]
    enum Response {
        /// `* 1 FETCH (` with these literals, each after some text.
        Data(Vec<(String, Vec<u8>)>),
        /// `* OK <text>`, `M1 NO <text>`, `+ <text>` or `* BYE <text>`: text that may end in
        /// `{n}`.
        Status(u8, String),
        /// `* 2 FETCH (UID 9 BODY[] {n}` and the body.
        Body(Vec<u8>),
    }

    impl Response {
        /// The response on the wire; `taken`: as imap-next sees it once its body is taken out.
        fn bytes(&self, taken: bool) -> Vec<u8> {
            let mut out = Vec::new();
            match self {
                Response::Data(literals) => {
                    out.extend_from_slice(b"* 1 FETCH (");
                    for (text, bytes) in literals {
                        out.extend_from_slice(format!("{text} {{{}}}\r\n", bytes.len()).as_bytes());
                        out.extend_from_slice(bytes);
                    }
                    out.extend_from_slice(b")\r\n");
                }
                Response::Status(kind, text) => {
                    let start = ["* OK ", "M1 NO ", "+ ", "* BYE "][*kind as usize % 4];
                    out.extend_from_slice(format!("{start}{text}\r\n").as_bytes());
                }
                Response::Body(bytes) => {
                    let size = if taken { 0 } else { bytes.len() };
                    out.extend_from_slice(
                        format!("* 2 FETCH (UID 9 BODY[] {{{size}}}\r\n").as_bytes(),
                    );
                    if !taken {
                        out.extend_from_slice(bytes);
                    }
                    out.extend_from_slice(b")\r\n");
                }
            }
            out
        }
    }

    /// Bytes that look like protocol where they are only content.
    fn tricky_bytes() -> impl Strategy<Value = Vec<u8>> {
        let pieces = prop::sample::select(vec![
            &b"\r\n"[..],
            b"{3}\r\n",
            b" BODY[] {7}\r\n",
            b"* 3 FETCH (BODY[] {2}\r\n",
            b"abc",
            b"}",
            b"\n",
            b"\0\xff",
        ]);
        prop::collection::vec(pieces, 0..12).prop_map(|p| p.concat())
    }

    fn response() -> impl Strategy<Value = Response> {
        let text = prop::sample::select(vec!["see {5}", "done", "{12}", "x {0}", "BODY[] {4}"]);
        prop_oneof![
            prop::collection::vec((text.clone().prop_map(str::to_owned), tricky_bytes()), 0..3)
                .prop_map(Response::Data),
            (0u8..4, text.prop_map(str::to_owned)).prop_map(|(k, t)| Response::Status(k, t)),
            tricky_bytes().prop_map(Response::Body),
        ]
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Whatever the responses and however the reads cut them: unarmed, imap-next gets every
        /// byte as it came; armed at a response boundary, the first body is taken out whole and
        /// imap-next gets everything else, that body announced as `{0}`.
        #[test]
        fn the_stream_is_never_changed_but_for_the_one_body_taken(
            before in prop::collection::vec(response(), 0..6),
            after in prop::collection::vec(response(), 0..6),
            piece in 1usize..40,
        ) {
            let head: Vec<u8> = before.iter().flat_map(|r| r.bytes(false)).collect();
            let tail: Vec<u8> = after.iter().flat_map(|r| r.bytes(false)).collect();
            let input = [head.clone(), tail.clone()].concat();
            let (state, body) = run(&mut Scanner::default(), &input, piece);
            prop_assert_eq!(&state, &input);
            prop_assert!(body.is_empty());

            let mut scanner = Scanner::default();
            let (mut state, _) = run(&mut scanner, &head, piece);
            scanner.arm();
            let (rest, body) = run(&mut scanner, &tail, piece);
            state.extend(rest);
            let taken = after.iter().position(|r| matches!(r, Response::Body(b) if !b.is_empty()));
            let mut expected = head;
            for (i, r) in after.iter().enumerate() {
                expected.extend(r.bytes(Some(i) == taken));
            }
            prop_assert_eq!(&state, &expected);
            let wanted = match taken.map(|i| &after[i]) {
                Some(Response::Body(b)) => b.clone(),
                _ => Vec::new(),
            };
            prop_assert_eq!(body, wanted);
        }
    }

    #[test]
    fn literal_lengths_are_read_only_at_the_end_of_a_line() {
        assert_eq!(literal_at_end(b"* 1 FETCH (BODY[] {42}\r\n"), Some(42));
        assert_eq!(literal_at_end(b"* 1 FETCH (BINARY[] ~{7}\n"), Some(7));
        assert_eq!(literal_at_end(b"* OK {42} later\r\n"), None);
        assert_eq!(literal_at_end(b"* OK {}\r\n"), None);
        assert_eq!(literal_at_end(b"* OK {4x}\r\n"), None);
        assert_eq!(literal_at_end(b"* OK {99999999999999999999}\r\n"), None);
        assert_eq!(body_brace(b"* 1 FETCH (body[] {3}\r\n"), Some(18));
        assert_eq!(body_brace(b"* 1 FETCH (UID 2 BODY[]<0> {3}\r\n"), Some(27));
        assert_eq!(body_brace(b"* 1 FETCH (BODY[TEXT] {3}\r\n"), None);
        assert_eq!(body_brace(b"* 1 FETCH (X-BODY[] {3}\r\n"), None);
    }
}
