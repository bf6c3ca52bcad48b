//! One large message read as it arrives: [`Session::open_body`] sends
//! `UID FETCH uid (UID BODY.PEEK[])` and hands the body out piece by piece ([`BodyReader`]),
//! taken out of the response before imap-next would hold it whole (see `literal.rs`). The
//! target writes each piece into its APPEND as it comes ([`Session::append_stream`]), so a
//! 25 MB message costs a read buffer, and the source serves it with one FETCH instead of a
//! partial FETCH per megabyte (each of which has it find its place in the message again).

use async_trait::async_trait;
use imap_next::client::Event;
use imap_next::imap_types::core::Tag;
use imap_next::imap_types::fetch::MessageDataItem;
use imap_next::imap_types::response::{Data, Status, Tagged};

use crate::error::ImapError;
use crate::session::{Completion, Session};
use crate::transport::Next;

/// A message body being read from the source; read it to the end (`None`) before the session
/// is used again. Dropped half-way, it leaves the session broken (its response is still on
/// the wire).
pub struct BodyReader<'s> {
    session: &'s mut Session,
    tag: Tag<'static>,
    size: u64,
    reading: Reading,
}

/// Where a [`BodyReader`] is.
enum Reading {
    /// The body is coming from the server.
    Streaming,
    /// The command completed with the body inside its response (empty, or in a form not taken
    /// out): handed out from memory once, and whether it has been.
    Inline { bytes: Vec<u8>, given: bool },
    /// All of the body was read and the command completed.
    Finished,
}

/// How the answer to the FETCH began.
enum Opened {
    /// The body follows, this many bytes.
    Stream(u64),
    /// The command completed with the body in its response.
    Inline(Vec<u8>),
    /// The command completed without the message: it is gone.
    Gone,
}

impl Session {
    /// Starts reading message `uid` of the selected folder (`BODY.PEEK`: `\Seen` is never
    /// set); `None` when the folder no longer has it. A NO is an error and leaves the session
    /// usable.
    pub async fn open_body(&mut self, uid: u32) -> Result<Option<BodyReader<'_>>, ImapError> {
        if self.selected.is_none() {
            return Err(ImapError::NotSelected("open_body"));
        }
        self.begin()?;
        let tag = self.tag();
        self.arm_body();
        let (size, reading) = match self.open_body_inner(uid, &tag).await {
            Ok(Opened::Stream(size)) => (size, Reading::Streaming),
            Ok(Opened::Inline(bytes)) => {
                self.end();
                let size = bytes.len() as u64;
                (
                    size,
                    Reading::Inline {
                        bytes,
                        given: false,
                    },
                )
            }
            Ok(Opened::Gone) => {
                self.end();
                return Ok(None);
            }
            Err(e) => {
                self.disarm_body();
                self.end();
                return Err(e);
            }
        };
        Ok(Some(BodyReader {
            session: self,
            tag,
            size,
            reading,
        }))
    }

    async fn open_body_inner(&mut self, uid: u32, tag: &Tag<'static>) -> Result<Opened, ImapError> {
        const DURING: &str = "fetching a message";
        let line = format!("{} UID FETCH {uid} (UID BODY.PEEK[])\r\n", tag.as_ref());
        self.write_raw(line.as_bytes(), "FETCH").await?;
        let mut inline = None;
        loop {
            let event = match self.next_step(DURING).await? {
                Next::Body(size) => return Ok(Opened::Stream(size)),
                Next::Event(event) => event,
            };
            match event {
                Event::DataReceived {
                    data: Data::Fetch { items, .. },
                } => {
                    for item in items.into_inner() {
                        if let MessageDataItem::BodyExt {
                            section: None,
                            data,
                            ..
                        } = item
                        {
                            inline = Some(
                                data.into_option()
                                    .map(|d| d.into_owned())
                                    .unwrap_or_default(),
                            );
                        }
                    }
                }
                Event::DataReceived { data } => self.observe_data(&data),
                Event::StatusReceived {
                    status: Status::Tagged(Tagged { tag: got, body }),
                } if &got == tag => {
                    self.disarm_body();
                    self.finish("FETCH", body, Completion::default())?;
                    return Ok(inline.map_or(Opened::Gone, Opened::Inline));
                }
                Event::StatusReceived { status } => self.observe_status(status, None),
                _ => {}
            }
        }
    }
}

impl BodyReader<'_> {
    /// The body's size, as the server announced it.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The next piece of the body; `None` once it is all read and the FETCH has completed.
    pub async fn next_chunk(&mut self) -> Result<Option<&[u8]>, ImapError> {
        match self.reading {
            Reading::Streaming => {}
            Reading::Finished => return Ok(None),
            // A body that came inside the response goes out once, whole. (Borrowed only on
            // this path, which returns: `self.reading` is assigned further down.)
            Reading::Inline { .. } => {
                let Reading::Inline { bytes, given } = &mut self.reading else {
                    return Ok(None);
                };
                let first = !std::mem::replace(given, true);
                return Ok((first && !bytes.is_empty()).then_some(bytes.as_slice()));
            }
        }
        match self.session.body_range("fetching a message").await? {
            Some(range) => Ok(Some(self.session.body_bytes(range))),
            None => {
                // The rest of the response (imap-next sees an empty body) and the tagged OK.
                let result = self
                    .session
                    .collect(&self.tag, "FETCH", None, Completion::default())
                    .await;
                self.session.end();
                self.reading = Reading::Finished;
                result.map(|_| None)
            }
        }
    }
}

#[async_trait]
impl domain::mailbox::BodyStream for BodyReader<'_> {
    fn size(&self) -> u64 {
        self.size
    }

    async fn next_chunk(&mut self) -> Result<Option<&[u8]>, domain::mailbox::MailboxError> {
        BodyReader::next_chunk(self)
            .await
            .map_err(crate::port::to_mailbox_error)
    }
}
