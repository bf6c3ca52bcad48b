//! The I/O driver under imap-next's sans-I/O state machine.
//!
//! imap-next ships a driver (`imap_next::stream::Stream`) but it only wraps a bare `TcpStream`
//! (taking it back for STARTTLS needs an extra feature), decrypts TLS in 128-byte steps, and
//! logs every byte it moves at trace level in debug builds. This one is generic over plain
//! TCP and TLS, reads in steps of up to 256 KiB, writes while it reads (so a long pipeline of
//! commands cannot deadlock against a server that is itself blocked writing responses), and
//! keeps all progress in `self`, so a future dropped by a timeout leaves no half-written state
//! behind. Everything read passes a [`Scanner`] on its way to the state machine, which can take
//! one message body out of a response for the caller to stream (see [`crate::literal`]).

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use imap_next::{Interrupt, Io, State};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::literal::{Scanner, Step};

/// The read buffer: the most a streamed body hands out at once, so the largest write to the
/// target (whose server wakes up once per write).
const READ_CHUNK: usize = 256 * 1024;

/// The byte stream under a session.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Either of the above after COMPRESS=DEFLATE.
    Deflate(Box<crate::deflate::DeflateStream>),
}

impl Stream {
    pub(crate) fn is_tls(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(_) => true,
            Stream::Deflate(d) => d.inner().is_tls(),
        }
    }

    pub(crate) fn is_compressed(&self) -> bool {
        matches!(self, Stream::Deflate(_))
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Deflate(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Deflate(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Deflate(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Deflate(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Why the driver stopped.
#[derive(Debug)]
pub(crate) enum DriveError<E> {
    /// The peer closed the connection.
    Closed,
    Io(io::Error),
    /// The state machine refused the input (malformed or oversized response).
    State(E),
    /// Nothing could be read or written for the whole idle timeout.
    Idle,
    /// A body was taken out of the stream where no caller asked for one.
    UnexpectedBody,
}

/// What [`Transport::next_step`] stopped at.
#[derive(Debug)]
pub(crate) enum Next<E> {
    Event(E),
    /// A body of this many bytes (still to read) begins.
    Body(u64),
}

/// A stream plus the buffers between it and the state machine.
pub(crate) struct Transport {
    stream: Stream,
    read_buf: Box<[u8]>,
    /// `read_buf[start..end]` is read and not yet handed on (to the state machine, or as body
    /// bytes to the caller).
    start: usize,
    end: usize,
    /// Where the stream is, and the body to take out of it (see [`crate::literal`]).
    scanner: Scanner,
    write_buf: Vec<u8>,
    /// How much of `write_buf` has been written.
    written: usize,
    flush_pending: bool,
}

impl Transport {
    pub(crate) fn new(stream: Stream) -> Self {
        Transport {
            stream,
            read_buf: vec![0; READ_CHUNK].into_boxed_slice(),
            start: 0,
            end: 0,
            scanner: Scanner::default(),
            write_buf: Vec::new(),
            written: 0,
            flush_pending: false,
        }
    }

    pub(crate) fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// The stream back, for the TLS upgrade. Anything the server sent after the STARTTLS
    /// response and before the handshake is dropped with the old state machine (RFC 3207
    /// section 4.1 / CVE-2011-0411: plaintext injected before the handshake must not count).
    pub(crate) fn into_stream(self) -> Stream {
        self.stream
    }

    /// From now on both directions are deflate streams (after the OK to COMPRESS DEFLATE).
    pub(crate) fn into_compressed(self) -> Transport {
        Transport {
            stream: Stream::Deflate(Box::new(crate::deflate::DeflateStream::new(self.stream))),
            ..self
        }
    }

    pub(crate) fn is_compressed(&self) -> bool {
        self.stream.is_compressed()
    }

    /// Drives the state machine until it yields an event. `idle` bounds each wait for the
    /// network, not the whole event: a large FETCH response may take minutes to arrive, but
    /// the server may not go silent for longer than `idle`.
    pub(crate) async fn next<S: State>(
        &mut self,
        state: &mut S,
        idle: std::time::Duration,
    ) -> Result<S::Event, DriveError<S::Error>> {
        match self.next_step(state, idle).await? {
            Next::Event(event) => Ok(event),
            Next::Body(_) => Err(DriveError::UnexpectedBody),
        }
    }

    /// Like [`Transport::next`], but armed ([`Transport::arm`]) it also stops where a body
    /// begins, whose bytes the caller then reads with [`Transport::body_chunk`].
    pub(crate) async fn next_step<S: State>(
        &mut self,
        state: &mut S,
        idle: std::time::Duration,
    ) -> Result<Next<S::Event>, DriveError<S::Error>> {
        loop {
            if let Some(size) = self.feed(state) {
                return Ok(Next::Body(size));
            }
            match quiet(|| state.next()) {
                Ok(event) => return Ok(Next::Event(event)),
                Err(Interrupt::Error(e)) => return Err(DriveError::State(e)),
                Err(Interrupt::Io(Io::Output(bytes))) => self.queue(&bytes),
                Err(Interrupt::Io(Io::NeedMoreInput)) => {}
            }
            match tokio::time::timeout(idle, self.progress()).await {
                Ok(result) => result?,
                Err(_) => return Err(DriveError::Idle),
            }
        }
    }

    /// Hands what was read to the state machine, through the scanner. Stops where a body
    /// begins, or while one is being read: returns its bytes still due.
    fn feed<S: State>(&mut self, state: &mut S) -> Option<u64> {
        loop {
            let remaining = self.scanner.body_remaining();
            if remaining > 0 {
                return Some(remaining);
            }
            if self.start == self.end {
                return None;
            }
            let input = &self.read_buf[self.start..self.end];
            // Consecutive bytes that pass as they are go to the state machine in one piece.
            let mut passed = 0;
            let step = loop {
                match self.scanner.step(&input[passed..]) {
                    Step::Pass(n) if passed + n < input.len() => passed += n,
                    Step::Pass(n) => {
                        passed += n;
                        break None;
                    }
                    other => break Some(other),
                }
            };
            if passed > 0 {
                quiet(|| state.enqueue_input(&input[..passed]));
                self.start += passed;
            }
            match step {
                None | Some(Step::Pass(_)) => {}
                Some(Step::Held(n)) => self.start += n,
                Some(Step::Line(n, line)) => {
                    quiet(|| state.enqueue_input(&line));
                    self.start += n;
                }
            }
        }
    }

    /// The next response carrying a whole message body (`BODY[]`) gives the body's bytes to
    /// the caller: [`Transport::next_step`] stops where it begins.
    pub(crate) fn arm(&mut self) {
        self.scanner.arm();
    }

    /// No body is taken out any more; what the scanner held goes on to the state machine.
    pub(crate) fn disarm<S: State>(&mut self, state: &mut S) {
        let held = self.scanner.disarm();
        if !held.is_empty() {
            quiet(|| state.enqueue_input(&held));
        }
    }

    /// Where in the read buffer the next bytes of the body being taken out are (see
    /// [`Transport::arm`] and [`Transport::read_bytes`]); `None` once it has all been read.
    /// `idle` bounds the wait for the network.
    pub(crate) async fn body_chunk<E>(
        &mut self,
        idle: std::time::Duration,
    ) -> Result<Option<std::ops::Range<usize>>, DriveError<E>> {
        let remaining = self.scanner.body_remaining();
        if remaining == 0 {
            return Ok(None);
        }
        while self.start == self.end {
            match tokio::time::timeout(idle, self.progress()).await {
                Ok(result) => result?,
                Err(_) => return Err(DriveError::Idle),
            }
            // Whatever else has arrived comes along: each piece becomes one write to the
            // target, whose server wakes up once per piece.
            let wanted = usize::try_from(remaining).unwrap_or(usize::MAX);
            while self.end - self.start < wanted && self.read_now().await.map_err(DriveError::Io)? {
            }
        }
        let n = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(self.end - self.start);
        let from = self.start;
        self.start += n;
        self.scanner.body_taken(n);
        Ok(Some(from..from + n))
    }

    /// Appends to the read buffer what the stream has ready without waiting; whether anything
    /// came (nothing at the end of the stream or with the buffer full).
    async fn read_now(&mut self) -> io::Result<bool> {
        let Transport {
            stream,
            read_buf,
            end,
            ..
        } = self;
        if *end == read_buf.len() {
            return Ok(false);
        }
        let more = poll_fn(|cx| {
            let mut buf = ReadBuf::new(&mut read_buf[*end..]);
            match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
                Poll::Ready(result) => Poll::Ready(result.map(|()| buf.filled().len())),
                Poll::Pending => Poll::Ready(Ok(0)),
            }
        })
        .await?;
        *end += more;
        Ok(more > 0)
    }

    /// Bytes [`Transport::body_chunk`] pointed at.
    pub(crate) fn read_bytes(&self, range: std::ops::Range<usize>) -> &[u8] {
        &self.read_buf[range]
    }

    /// Closes the sending side at once, dropping anything queued: the server sees the
    /// connection end in the middle of whatever was being sent.
    pub(crate) async fn abort(&mut self) -> io::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.write_buf.clear();
        self.written = 0;
        match tokio::time::timeout(std::time::Duration::from_secs(5), self.stream.shutdown()).await
        {
            Ok(result) => result,
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        }
    }

    /// Writes what is queued and closes the sending side (TLS close_notify, TCP FIN).
    pub(crate) async fn shutdown(&mut self) -> io::Result<()> {
        use tokio::io::AsyncWriteExt;
        let pending = self.write_buf[self.written..].to_vec();
        self.stream.write_all(&pending).await?;
        self.write_buf.clear();
        self.written = 0;
        self.stream.shutdown().await
    }

    /// Writes `bytes` (and anything queued before them) straight from the caller's buffer, so
    /// a large literal is never copied. Input that arrives meanwhile is handed to the state
    /// machine, whose events the caller collects afterwards with [`Transport::next`]; reading
    /// while writing keeps a server that answers early from blocking on a full socket.
    pub(crate) async fn write_through<S: State>(
        &mut self,
        state: &mut S,
        bytes: &[u8],
        idle: std::time::Duration,
    ) -> Result<(), DriveError<S::Error>> {
        let mut done = 0;
        loop {
            self.feed(state);
            if done == bytes.len() && self.written == self.write_buf.len() && !self.flush_pending {
                return Ok(());
            }
            match tokio::time::timeout(idle, self.progress_external(bytes, &mut done)).await {
                Ok(result) => result?,
                Err(_) => return Err(DriveError::Idle),
            }
        }
    }

    /// One step of [`Transport::write_through`]: returns once some bytes went out, the
    /// output was flushed, or input arrived.
    async fn progress_external<E>(
        &mut self,
        bytes: &[u8],
        done: &mut usize,
    ) -> Result<(), DriveError<E>> {
        let Transport {
            stream,
            read_buf,
            start,
            end,
            write_buf,
            written,
            flush_pending,
            ..
        } = self;
        poll_fn(|cx| {
            let mut moved = false;
            loop {
                let pending: &[u8] = if *written < write_buf.len() {
                    &write_buf[*written..]
                } else if *done < bytes.len() {
                    &bytes[*done..]
                } else {
                    break;
                };
                match Pin::new(&mut *stream).poll_write(cx, pending) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(DriveError::Closed)),
                    Poll::Ready(Ok(n)) => {
                        moved = true;
                        *flush_pending = true;
                        if *written < write_buf.len() {
                            *written += n;
                            if *written == write_buf.len() {
                                write_buf.clear();
                                *written = 0;
                            }
                        } else {
                            *done += n;
                        }
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(DriveError::Io(e))),
                    Poll::Pending => break,
                }
            }
            let all_written = *written == write_buf.len() && *done == bytes.len();
            if all_written && *flush_pending {
                match Pin::new(&mut *stream).poll_flush(cx) {
                    Poll::Ready(Ok(())) => {
                        *flush_pending = false;
                        return Poll::Ready(Ok(()));
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(DriveError::Io(e))),
                    Poll::Pending => {}
                }
            }
            if *start == *end {
                let mut buf = ReadBuf::new(&mut read_buf[..]);
                match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                        return Poll::Ready(Err(DriveError::Closed));
                    }
                    Poll::Ready(Ok(())) => {
                        (*start, *end) = (0, buf.filled().len());
                        return Poll::Ready(Ok(()));
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(DriveError::Io(e))),
                    Poll::Pending => {}
                }
            }
            if moved {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        })
        .await
    }

    fn queue(&mut self, bytes: &[u8]) {
        if self.written > 0 && self.written == self.write_buf.len() {
            self.write_buf.clear();
            self.written = 0;
        } else if self.written > self.write_buf.len() / 2 {
            self.write_buf.drain(..self.written);
            self.written = 0;
        }
        self.write_buf.extend_from_slice(bytes);
    }

    /// One step of I/O: returns when queued output has been written and flushed, or when
    /// input has arrived, whichever comes first. Writing and reading happen in the same poll,
    /// so neither side can block the other.
    async fn progress<E>(&mut self) -> Result<(), DriveError<E>> {
        debug_assert_eq!(self.start, self.end);
        let Transport {
            stream,
            read_buf,
            start,
            end,
            write_buf,
            written,
            flush_pending,
            ..
        } = self;
        poll_fn(|cx| {
            while *written < write_buf.len() {
                match Pin::new(&mut *stream).poll_write(cx, &write_buf[*written..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(DriveError::Closed)),
                    Poll::Ready(Ok(n)) => {
                        *written += n;
                        if *written == write_buf.len() {
                            write_buf.clear();
                            *written = 0;
                            *flush_pending = true;
                        }
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(DriveError::Io(e))),
                    Poll::Pending => break,
                }
            }
            if *flush_pending {
                match Pin::new(&mut *stream).poll_flush(cx) {
                    Poll::Ready(Ok(())) => {
                        *flush_pending = false;
                        return Poll::Ready(Ok(()));
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(DriveError::Io(e))),
                    Poll::Pending => {}
                }
            }
            let mut buf = ReadBuf::new(&mut read_buf[..]);
            match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                    Poll::Ready(Err(DriveError::Closed))
                }
                Poll::Ready(Ok(())) => {
                    (*start, *end) = (0, buf.filled().len());
                    Poll::Ready(Ok(()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(DriveError::Io(e))),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }
}

/// Runs `f` with tracing switched off on this thread.
///
/// imap-next traces every fragment it reads or writes, and imap-types prints `Secret`s in
/// full in debug builds. Those fragments hold passwords, OAuth tokens and mail content, so the
/// state machine never gets to talk to the application's subscriber, whatever its filter.
/// This crate logs what it needs itself, without secrets.
pub(crate) fn quiet<T>(f: impl FnOnce() -> T) -> T {
    static SILENT: OnceLock<tracing::Dispatch> = OnceLock::new();
    let silent =
        SILENT.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
    tracing::dispatcher::with_default(silent, f)
}
