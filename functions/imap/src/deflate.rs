//! COMPRESS=DEFLATE (RFC 4978): after the server's OK to `COMPRESS DEFLATE`, both directions
//! are raw deflate streams (no zlib header). [`DeflateStream`] wraps the connection's stream:
//! what the session writes is compressed (a sync flush on every flush, so each command leaves
//! at once), what the server sends is inflated.
//!
//! Off by default: on a fast network the server's compression costs more than the bytes it
//! saves (a full fetch over loopback was many times slower). It pays on slow or metered links.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::transport::Stream;

const CHUNK: usize = 64 * 1024;

pub(crate) struct DeflateStream<S = Stream> {
    inner: S,
    compress: Compress,
    decompress: Decompress,
    /// Compressed bytes not yet written to `inner`.
    out: Vec<u8>,
    /// Compressed bytes read from `inner`, not yet inflated: `input[read_pos..]`.
    input: Vec<u8>,
    read_pos: usize,
    /// The last inflate filled all the room it was given, so the inflater may still hold output
    /// without needing another input byte (a long back-reference, the tail of a stored block).
    /// Reading the connection then would wait for bytes the server never sends: it is waiting
    /// for the answer to what it already sent.
    inflater_full: bool,
    /// Bytes were compressed since the last sync flush.
    unflushed: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> DeflateStream<S> {
    pub(crate) fn new(inner: S) -> Self {
        DeflateStream {
            inner,
            // Level 1: the client mostly sends APPEND literals; speed matters more than ratio.
            compress: Compress::new(Compression::new(1), false),
            decompress: Decompress::new(false),
            out: Vec::new(),
            input: Vec::new(),
            read_pos: 0,
            inflater_full: false,
            unflushed: false,
        }
    }

    pub(crate) fn inner(&self) -> &S {
        &self.inner
    }

    /// Writes the pending compressed bytes to the connection.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

fn deflate_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("deflate: {e}"))
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for DeflateStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let has_input = this.read_pos < this.input.len();
            if (has_input || this.inflater_full) && buf.remaining() > 0 {
                let room = buf.remaining();
                let (in_before, out_before) =
                    (this.decompress.total_in(), this.decompress.total_out());
                let status = this
                    .decompress
                    .decompress(
                        &this.input[this.read_pos..],
                        buf.initialize_unfilled(),
                        FlushDecompress::None,
                    )
                    .map_err(deflate_error)?;
                let used = (this.decompress.total_in() - in_before) as usize;
                let made = (this.decompress.total_out() - out_before) as usize;
                this.read_pos += used;
                buf.advance(made);
                this.inflater_full = made == room;
                if made > 0 {
                    return Poll::Ready(Ok(()));
                }
                if status == Status::StreamEnd {
                    return Poll::Ready(Ok(()));
                }
                if used > 0 && this.read_pos < this.input.len() {
                    continue;
                }
            }
            // Everything read so far is inflated: read more from the connection.
            this.input.drain(..this.read_pos);
            this.read_pos = 0;
            let start = this.input.len();
            this.input.resize(start + CHUNK, 0);
            let mut rb = ReadBuf::new(&mut this.input[start..]);
            let polled = Pin::new(&mut this.inner).poll_read(cx, &mut rb);
            let n = rb.filled().len();
            this.input.truncate(start + n);
            ready!(polled)?;
            if n == 0 {
                // The connection closed.
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for DeflateStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Keep the pending output bounded: write it out before taking more.
        if this.out.len() >= CHUNK {
            ready!(this.poll_drain(cx))?;
        }
        let take = &data[..data.len().min(CHUNK)];
        this.out.reserve(take.len() + 64);
        let before = this.compress.total_in();
        this.compress
            .compress_vec(take, &mut this.out, FlushCompress::None)
            .map_err(deflate_error)?;
        let used = (this.compress.total_in() - before) as usize;
        this.unflushed |= used > 0;
        // Write what is ready without waiting; the rest goes on the next write or flush.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(used))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.unflushed {
            loop {
                this.out.reserve(CHUNK);
                let before = this.out.len();
                this.compress
                    .compress_vec(&[], &mut this.out, FlushCompress::Sync)
                    .map_err(deflate_error)?;
                // Done once the flush no longer fills the space it was given.
                if this.out.len() - before < CHUNK {
                    break;
                }
            }
            this.unflushed = false;
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// What a server sends: `data` as raw deflate, sync-flushed like a response.
    fn deflated(data: &[u8]) -> Vec<u8> {
        let mut compress = Compress::new(Compression::new(6), false);
        let mut out = Vec::with_capacity(data.len() + 1024);
        loop {
            let consumed = compress.total_in() as usize;
            out.reserve(64 * 1024);
            compress
                .compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
                .unwrap();
            if compress.total_in() as usize == data.len() && out.len() < out.capacity() {
                return out;
            }
        }
    }

    /// A response that compresses hard: a long run of one byte and repeated lines, so a few
    /// input bytes inflate to more than one read's room.
    fn response() -> Vec<u8> {
        let mut data = b"* 1 FETCH (UID 7 BODY[] {3000000}\r\n".to_vec();
        data.extend(std::iter::repeat_n(b'A', 1_000_000));
        for i in 0..40_000 {
            data.extend(format!("line {} of a long message body\r\n", i % 97).as_bytes());
        }
        data.extend(b")\r\nA1 OK done\r\n");
        data
    }

    #[tokio::test]
    async fn a_response_is_read_whole_when_the_inflater_holds_more_than_one_read() {
        // Arrange: the server sent one whole response and now waits for the client.
        let data = response();
        let (client, mut server) = tokio::io::duplex(8 * 1024 * 1024);
        server.write_all(&deflated(&data)).await.unwrap();
        let mut stream = DeflateStream::new(client);

        // Act: read it in small steps, as the driver does when its buffer is nearly full.
        let mut got = Vec::new();
        let mut buf = vec![0u8; 4096];
        let read_all = async {
            while got.len() < data.len() {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "the stream ended early");
                got.extend_from_slice(&buf[..n]);
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read_all)
            .await
            .expect("every byte already sent is read without more from the server");

        // Assert
        assert_eq!(got.len(), data.len());
        assert!(got == data, "the inflated bytes are the ones sent");
        drop(server);
    }

    #[tokio::test]
    async fn what_the_client_writes_arrives_whole_at_each_flush() {
        // Arrange
        let (client, mut server) = tokio::io::duplex(8 * 1024 * 1024);
        let mut stream = DeflateStream::new(client);
        let data = response();

        // Act: write a large literal, then flush as a command's end does.
        stream.write_all(&data).await.unwrap();
        stream.flush().await.unwrap();
        drop(stream);
        let mut wire = Vec::new();
        server.read_to_end(&mut wire).await.unwrap();

        // Assert: the flushed bytes inflate to all that was written.
        let mut inflate = Decompress::new(false);
        let mut out = Vec::with_capacity(data.len() + 1);
        inflate
            .decompress_vec(&wire, &mut out, FlushDecompress::Sync)
            .unwrap();
        assert!(out == data);
        assert!(wire.len() < data.len() / 4, "the bytes were compressed");
    }
}
