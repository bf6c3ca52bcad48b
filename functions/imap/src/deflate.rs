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

pub(crate) struct DeflateStream {
    inner: Stream,
    compress: Compress,
    decompress: Decompress,
    /// Compressed bytes not yet written to `inner`.
    out: Vec<u8>,
    /// Compressed bytes read from `inner`, not yet inflated: `input[read_pos..]`.
    input: Vec<u8>,
    read_pos: usize,
    /// Bytes were compressed since the last sync flush.
    unflushed: bool,
}

impl DeflateStream {
    pub(crate) fn new(inner: Stream) -> Self {
        DeflateStream {
            inner,
            // Level 1: the client mostly sends APPEND literals; speed matters more than ratio.
            compress: Compress::new(Compression::new(1), false),
            decompress: Decompress::new(false),
            out: Vec::new(),
            input: Vec::new(),
            read_pos: 0,
            unflushed: false,
        }
    }

    pub(crate) fn inner(&self) -> &Stream {
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

impl AsyncRead for DeflateStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.read_pos < this.input.len() && buf.remaining() > 0 {
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

impl AsyncWrite for DeflateStream {
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
