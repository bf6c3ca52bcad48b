//! A message body read as it arrives, for messages too large to hold in memory: the source's
//! [`MailSession::open_body`] gives a [`BodyStream`], the target's
//! [`MailSession::append_stream`] writes it out piece by piece, so a 25 MB message costs the
//! copy a read buffer, not 25 MB.
//!
//! [`MailSession::open_body`]: super::MailSession::open_body
//! [`MailSession::append_stream`]: super::MailSession::append_stream

use async_trait::async_trait;

use super::MailboxError;

/// A message body being read from a server.
#[async_trait]
pub trait BodyStream: Send {
    /// The body's size in bytes, as the server announced it before sending it.
    fn size(&self) -> u64;
    /// The next piece of the body; `None` once all of it is read and the server has finished
    /// the command (and again on every later call).
    async fn next_chunk(&mut self) -> Result<Option<&[u8]>, MailboxError>;
}

/// A body already in memory, as a stream (for sessions that cannot stream, and tests).
#[derive(Debug, Clone)]
pub struct BufferedBody {
    bytes: Vec<u8>,
    /// How much has been handed out.
    read: usize,
    /// The most handed out at once.
    piece: usize,
}

impl BufferedBody {
    pub fn new(bytes: Vec<u8>) -> Self {
        BufferedBody::in_pieces(bytes, usize::MAX)
    }

    /// Hands `bytes` out at most `piece` bytes at a time.
    pub fn in_pieces(bytes: Vec<u8>, piece: usize) -> Self {
        BufferedBody {
            bytes,
            read: 0,
            piece: piece.max(1),
        }
    }
}

#[async_trait]
impl BodyStream for BufferedBody {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    async fn next_chunk(&mut self) -> Result<Option<&[u8]>, MailboxError> {
        if self.read == self.bytes.len() {
            return Ok(None);
        }
        let from = self.read;
        self.read = (from + self.piece.min(self.bytes.len() - from)).min(self.bytes.len());
        Ok(Some(&self.bytes[from..self.read]))
    }
}

/// Reads the rest of `body` into memory, checking it has the size it announced.
pub async fn read_all(body: &mut (dyn BodyStream + '_)) -> Result<Vec<u8>, MailboxError> {
    let size = body.size();
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(32 << 20));
    while let Some(chunk) = body.next_chunk().await? {
        bytes.extend_from_slice(chunk);
    }
    if bytes.len() as u64 != size {
        return Err(MailboxError::Connection(format!(
            "the message body had {} bytes where {size} were announced",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// Reads what is left of `body` and drops it (a refused APPEND leaves the source's response
/// to finish).
pub async fn drain(body: &mut (dyn BodyStream + '_)) -> Result<(), MailboxError> {
    while body.next_chunk().await?.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_buffered_body_comes_out_whole_in_pieces_and_then_ends() {
        let mut body = BufferedBody::in_pieces(b"0123456789".to_vec(), 4);
        assert_eq!(body.size(), 10);
        let mut pieces = Vec::new();
        while let Some(p) = body.next_chunk().await.unwrap() {
            pieces.push(p.to_vec());
        }
        assert_eq!(pieces, [b"0123".to_vec(), b"4567".to_vec(), b"89".to_vec()]);
        assert_eq!(body.next_chunk().await.unwrap(), None);
        let mut body = BufferedBody::new(b"abc".to_vec());
        assert_eq!(read_all(&mut body).await.unwrap(), b"abc");
    }

    /// A stream that announces more than it delivers.
    struct Short;

    #[async_trait]
    impl BodyStream for Short {
        fn size(&self) -> u64 {
            5
        }
        async fn next_chunk(&mut self) -> Result<Option<&[u8]>, MailboxError> {
            Ok(None)
        }
    }

    #[tokio::test]
    async fn a_body_shorter_than_announced_is_an_error() {
        let err = read_all(&mut Short).await.unwrap_err();
        assert!(err.is_transient(), "{err}");
    }
}
