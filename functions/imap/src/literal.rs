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

/// The position in the server's stream, and the one body to take out of it when armed.
#[derive(Debug, Default)]
pub(crate) struct Scanner {
    /// Literal bytes still due before the line goes on.
    literal: u64,
    /// The end of the current line so far (unarmed), up to [`TAIL`] bytes.
    tail: Vec<u8>,
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
    /// This many bytes completed a line: hand the line to the state machine.
    Line(usize, Vec<u8>),
    /// This many bytes completed the line announcing the body: hand the line (its literal
    /// now `{0}`) to the state machine; the next `size` bytes are the body.
    Body(usize, Vec<u8>, u64),
}

impl Scanner {
    /// The next response that carries `BODY[]` gives its bytes to the caller. The scanner
    /// stays armed until a body is taken or [`Scanner::disarm`].
    pub(crate) fn arm(&mut self) {
        let at_start = self.literal == 0 && self.tail.is_empty() && self.body == 0;
        self.armed = Some(Armed {
            held: Vec::new(),
            fresh: at_start,
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
        let Some(armed) = self.armed.as_mut() else {
            let n = end.unwrap_or(input.len());
            self.keep_tail(&input[..n]);
            if end.is_some() {
                self.literal = literal_at_end(&self.tail).unwrap_or(0);
                self.tail.clear();
            }
            return Step::Pass(n);
        };
        let Some(n) = end else {
            armed.held.extend_from_slice(input);
            return Step::Held(input.len());
        };
        armed.held.extend_from_slice(&input[..n]);
        let mut line = std::mem::take(&mut armed.held);
        // A line that began before arming has its start in `tail`.
        let literal = if self.tail.is_empty() {
            literal_at_end(&line)
        } else {
            let mut whole = std::mem::take(&mut self.tail);
            whole.extend_from_slice(&line);
            literal_at_end(&whole)
        };
        if let (true, Some(size), Some(brace)) = (armed.fresh, literal, body_brace(&line)) {
            line.truncate(brace);
            line.extend_from_slice(b"{0}\r\n");
            self.armed = None;
            self.body = size;
            return Step::Body(n, line, size);
        }
        match literal {
            Some(size) => self.literal = size,
            // The response ended: the next one began after arming.
            None => armed.fresh = true,
        }
        Step::Line(n, line)
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
                    Step::Line(n, line) | Step::Body(n, line, _) => {
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
