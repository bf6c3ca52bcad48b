//! Commands written by hand (`raw.rs` builds them), run: each literal announced as the server
//! allows (`{n+}` with LITERAL+, or LITERAL- up to 4 KiB; otherwise `{n}` and a wait for the
//! server's `+`), its bytes sent straight from the caller's buffer or read from a body stream
//! while they are sent.

use imap_next::client::Event;
use imap_next::imap_types::core::Tag;
use imap_next::imap_types::response::{Status, Tagged};

use crate::error::ImapError;
use crate::raw::{Piece, RawCommand};
use crate::session::{Completion, Session};

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
            if let Some(refused) = self
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

    /// Ends `line` with the announcement of a literal of `size` bytes and sends it; for a
    /// synchronizing literal waits for the server's `+`. A tagged answer instead of the `+`
    /// ends the command there: `Some` with its result.
    async fn announce_literal(
        &mut self,
        line: &mut Vec<u8>,
        size: u64,
        name: &'static str,
        tag: &Tag<'static>,
        completion: &mut Completion,
    ) -> Result<Option<Result<Completion, ImapError>>, ImapError> {
        let non_sync = self.capabilities().has("LITERAL+")
            || (self.capabilities().has("LITERAL-") && size <= 4096);
        line.extend_from_slice(
            format!("{{{}{}}}\r\n", size, if non_sync { "+" } else { "" }).as_bytes(),
        );
        self.write_raw(line, name).await?;
        line.clear();
        if non_sync {
            return Ok(None);
        }
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
