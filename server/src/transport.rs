//! What a connection's reader and writer tasks need of the byte stream under them, so that
//! the connection code (`connection/`, `writer.rs`) is written once and runs over plain TCP
//! and over TLS (`tls.rs`, spec §17).
//!
//! Both tasks hold the same `Arc<T>` and call it through `&self`: the reader only reads,
//! the writer only writes, so each registers its own waker for its own direction of the
//! socket. The plain implementation is the socket itself ([`Async<TcpStream>`]), with the
//! exact calls the tasks made before this trait existed (one `read`, one `writev`); the
//! generic code is monomorphised, so plain connections pay nothing for TLS.

use std::io::{self, IoSlice, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use async_io::Async;
use futures_lite::{AsyncRead, AsyncWrite};

/// A connection's byte stream, shared by its reading and its writing task.
pub trait Transport: Send + Sync + 'static {
    /// Reads what has arrived (0 at the end of the stream).
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;

    /// Hands `bufs` (in order) to the stream; returns how many bytes it took. A stream
    /// that buffers (TLS) may keep some of them until [`Transport::poll_flush`].
    fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;

    /// Sends up to `len` bytes of `file` from `offset` on, without copying them through
    /// user space (`sendfile`); returns how many bytes went. With `wait_first` (the last
    /// send was short: the socket is full) it waits for writability before trying.
    /// `None` when this stream cannot (TLS must encrypt them): the caller writes the
    /// bytes instead.
    fn poll_send_file(
        &self,
        _cx: &mut Context<'_>,
        _file: BorrowedFd<'_>,
        _offset: u64,
        _len: usize,
        _wait_first: bool,
    ) -> Option<Poll<io::Result<usize>>> {
        None
    }

    /// Sends what earlier writes left buffered. Ready at once for a stream that buffers
    /// nothing (plain TCP).
    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// One non-blocking attempt to send `bufs` and whatever is buffered (the last words of
    /// a client that is cut off, CONN-4). Never waits; what does not fit is lost.
    fn write_now(&self, bufs: &[IoSlice<'_>]);

    /// Shuts the stream down (for TLS, after a best-effort `close_notify`). Wakes a task
    /// waiting to read it.
    fn shutdown(&self, how: Shutdown);

    /// The TCP socket under the stream.
    fn socket(&self) -> &TcpStream;

    /// Whether bytes written to [`Transport::socket`] reach the peer as they are (plain
    /// TCP), so that the prompt may be written straight to a fresh socket
    /// (`connection::greet_now`). Over TLS it must go through the stream.
    const RAW: bool;
}

impl Transport for Async<TcpStream> {
    const RAW: bool = true;

    #[inline]
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self).poll_read(cx, buf)
    }

    #[inline]
    fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self).poll_write_vectored(cx, bufs)
    }

    #[inline]
    fn poll_flush(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_send_file(
        &self,
        cx: &mut Context<'_>,
        file: BorrowedFd<'_>,
        offset: u64,
        len: usize,
        wait_first: bool,
    ) -> Option<Poll<io::Result<usize>>> {
        let Ok(mut off) = libc::off_t::try_from(offset) else {
            return Some(Poll::Ready(Err(io::ErrorKind::InvalidInput.into())));
        };
        // A `sendfile` that meets a full socket has already looked the pages up and
        // filled its pipe with them, all for nothing: after a short send, wait first.
        if wait_first {
            match self.poll_writable(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Some(Poll::Ready(Err(e))),
                Poll::Pending => return Some(Poll::Pending),
            }
        }
        loop {
            // The socket is non-blocking (async-io made it so): a full send buffer gives
            // EAGAIN, and a partly full one a short count, as `writev` does.
            // SAFETY: both descriptors are open for the call (borrowed); `off` is a
            // valid, exclusive pointer to an `off_t` for its duration.
            let n = unsafe {
                libc::sendfile(self.get_ref().as_raw_fd(), file.as_raw_fd(), &mut off, len)
            };
            if let Ok(n) = usize::try_from(n) {
                return Some(Poll::Ready(Ok(n)));
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock => match self.poll_writable(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Some(Poll::Ready(Err(e))),
                    Poll::Pending => return Some(Poll::Pending),
                },
                _ => return Some(Poll::Ready(Err(err))),
            }
        }
    }

    fn write_now(&self, bufs: &[IoSlice<'_>]) {
        // Best effort by definition (CONN-4): a full socket buffer means it is not sent.
        let _ = self.get_ref().write_vectored(bufs);
    }

    fn shutdown(&self, how: Shutdown) {
        // The peer may already be gone; nothing more to do about it then.
        let _ = self.get_ref().shutdown(how);
    }

    fn socket(&self) -> &TcpStream {
        self.get_ref()
    }
}
