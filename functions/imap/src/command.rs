//! Commands written by hand (`raw.rs` builds them), run: each literal announced as the server
//! allows (`{n+}` with LITERAL+, or LITERAL- up to 4 KiB; otherwise `{n}` and a wait for the
//! server's `+`), its bytes sent straight from the caller's buffer or read from a body stream
//! while they are sent. Small non-synchronizing literals travel inside the command's text, so
//! a MULTIAPPEND of many small messages goes out in few large writes.

use imap_next::client::Event;
use imap_next::imap_types::core::Tag;
use imap_next::imap_types::response::{Status, Tagged};

use crate::error::ImapError;
use crate::raw::{Piece, RawCommand};
use crate::session::{Completion, Session};

/// Non-synchronizing literals up to this size are copied into the command's text and sent
/// with it; larger ones are sent straight from the caller's buffer.
const CARRIED_LITERAL: usize = 64 * 1024;
/// The command's text (with the literals it carries) is sent once it reaches this size.
const CARRIED_TEXT: usize = 256 * 1024;

impl Session {
    /// Runs a command written by hand (for what imap-types cannot express: LIST ... RETURN,
    /// MULTIAPPEND, APPEND with literals sent straight from the caller's buffer). Literals
    /// go non-synchronizing when the server allows it (LITERAL+, or LITERAL- up to 4 KiB);
    /// otherwise each waits for the server's `+`, and a tagged answer instead of the `+`
    /// (Dovecot refuses a too-large message that way) ends the command there.
    pub(crate) async fn execute_raw(
        &mut self,
        command: RawCommand<'_>,
    ) -> Result<Completion, ImapError> {
        self.begin()?;
        let result = self.execute_raw_inner(command, None).await;
        self.end();
        result
    }

    /// [`Session::execute_raw`] for a command whose [`Piece::Stream`] literal is read from
    /// `body` while it is sent. When the body fails half-way the connection is closed at once,
    /// mid-literal, so the server stores nothing of the command ([`ImapError::Source`]).
    pub(crate) async fn execute_raw_streaming(
        &mut self,
        command: RawCommand<'_>,
        body: &mut (dyn domain::mailbox::BodyStream + '_),
    ) -> Result<Completion, ImapError> {
        self.begin()?;
        let result = self.execute_raw_inner(command, Some(body)).await;
        if matches!(result, Err(ImapError::Source(_))) {
            // Close at once: a server keeps nothing of an APPEND whose literal never ended.
            self.abort().await;
        }
        self.end();
        result
    }

    async fn execute_raw_inner(
        &mut self,
        command: RawCommand<'_>,
        mut body: Option<&mut (dyn domain::mailbox::BodyStream + '_)>,
    ) -> Result<Completion, ImapError> {
        let name = command.name;
        let tag = self.tag();
        let mut line = Vec::with_capacity(256);
        line.extend_from_slice(tag.as_ref().as_bytes());
        line.push(b' ');
        let mut completion = Completion::default();
        for piece in command.pieces {
            let size = match &piece {
                Piece::Text(text) => {
                    line.extend_from_slice(text);
                    continue;
                }
                Piece::Literal(data) => data.len() as u64,
                Piece::Stream(size) => *size,
            };
            if self.non_synchronizing(size) {
                line.extend_from_slice(format!("{{{size}+}}\r\n").as_bytes());
                if let Piece::Literal(data) = &piece
                    && data.len() <= CARRIED_LITERAL
                {
                    // A small literal goes out with the text around it: one write (and with
                    // TLS full records) for many small messages rather than three each.
                    line.extend_from_slice(data);
                    if line.len() >= CARRIED_TEXT {
                        self.write_raw(&line, name).await?;
                        line.clear();
                    }
                    continue;
                }
                self.write_raw(&line, name).await?;
                line.clear();
            } else if let Some(refused) = self
                .announce_literal(&mut line, size, name, &tag, &mut completion)
                .await?
            {
                return refused;
            }
            match (piece, body.as_deref_mut()) {
                (Piece::Literal(data), _) => self.write_raw(&data, name).await?,
                (Piece::Stream(size), Some(body)) => self.write_stream(body, size, name).await?,
                _ => {
                    return Err(ImapError::InvalidInput(
                        "a streamed literal without a stream",
                    ));
                }
            }
        }
        line.extend_from_slice(b"\r\n");
        self.write_raw(&line, name).await?;
        self.collect(&tag, name, None, completion).await
    }

    /// Whether a literal of `size` bytes may follow its announcement without waiting for the
    /// server's `+`: LITERAL+, or LITERAL- up to 4 KiB (RFC 7888).
    fn non_synchronizing(&self, size: u64) -> bool {
        self.capabilities().has("LITERAL+") || (self.capabilities().has("LITERAL-") && size <= 4096)
    }

    /// Ends `line` with the announcement of a synchronizing literal of `size` bytes, sends it
    /// and waits for the server's `+`. A tagged answer instead of the `+` ends the command
    /// there: `Some` with its result.
    async fn announce_literal(
        &mut self,
        line: &mut Vec<u8>,
        size: u64,
        name: &'static str,
        tag: &Tag<'static>,
        completion: &mut Completion,
    ) -> Result<Option<Result<Completion, ImapError>>, ImapError> {
        line.extend_from_slice(format!("{{{size}}}\r\n").as_bytes());
        self.write_raw(line, name).await?;
        line.clear();
        loop {
            match self.next_event(name).await? {
                Event::ContinuationRequestReceived { .. } => return Ok(None),
                Event::DataReceived { data } => {
                    self.observe_data(&data);
                    completion.data.push(data);
                }
                Event::StatusReceived {
                    status: Status::Tagged(Tagged { tag: got, body }),
                } if &got == tag => {
                    let done = std::mem::take(completion);
                    return Ok(Some(self.finish(name, body, done)));
                }
                Event::StatusReceived { status } => self.observe_status(status, Some(completion)),
                _ => {}
            }
        }
    }

    /// Writes exactly `size` bytes read from `body`, as they arrive.
    async fn write_stream(
        &mut self,
        body: &mut (dyn domain::mailbox::BodyStream + '_),
        size: u64,
        during: &'static str,
    ) -> Result<(), ImapError> {
        let mut sent = 0u64;
        while let Some(chunk) = body.next_chunk().await.map_err(ImapError::Source)? {
            sent += chunk.len() as u64;
            if sent > size {
                break;
            }
            self.write_raw(chunk, during).await?;
        }
        if sent != size {
            return Err(ImapError::Source(
                domain::mailbox::MailboxError::Connection(format!(
                    "the message body had {sent} bytes where {size} were announced"
                )),
            ));
        }
        Ok(())
    }
}
