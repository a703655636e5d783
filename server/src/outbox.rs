//! One client's outbound queue (CONN-3, CONN-4) and the writer that drains it.
//!
//! Why it looks like this:
//! - A broadcast is encoded once into a [`Line`] (`Arc<[u8]>`); every recipient's queue
//!   holds a clone of the same bytes, so fan-out costs a reference-count increment and a
//!   short per-outbox lock, never a re-encode or a copy.
//! - The queue is bounded in *bytes* (what memory actually costs), counting what is
//!   queued plus what the writer holds but has not written yet. A push past the limit
//!   never waits: it marks the client for disconnection and drops its queue, so a client
//!   that stops reading raises memory by at most the limit and never slows a sender.
//! - The writer drains everything queued with one vectored write (`writev`) per wake-up,
//!   up to [`IOV_MAX`] buffers, resuming partial writes mid-line. A push wakes the writer
//!   only when it was idle; a busy writer picks the new lines up on its next round.

use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, IoSlice, Write};
use std::net::{Shutdown, TcpStream};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_io::{Async, Timer};
use chat_proto::ServerMessage;
use futures_lite::AsyncWrite;

/// One encoded server line, LF included, shared by every recipient.
pub type Line = Arc<[u8]>;

/// Most buffers handed to one `writev` (Linux's `IOV_MAX`/`UIO_MAXIOV`).
pub const IOV_MAX: usize = 1024;

/// Writes per poll before the writer yields to other tasks (fairness under load).
const WRITES_PER_POLL: usize = 16;

/// An idle writer keeps at most this many queue slots allocated, in its batch and in the
/// queue each (memory of idle clients: 10,000 of them must stay cheap).
const IDLE_SLOTS: usize = 16;

thread_local! {
    /// Scratch buffer for encoding, so that a line costs one allocation (the `Arc`).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Encodes `msg` once into a shareable [`Line`].
pub fn encode(msg: &ServerMessage) -> Line {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            msg.encode(&mut buf);
            Line::from(&buf[..])
        }
        // Re-entered (cannot happen today): fall back to a fresh buffer.
        Err(_) => Line::from(msg.to_bytes()),
    })
}

/// What happened to a pushed line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued for the writer.
    Queued,
    /// The line did not fit: the client is now cut off (its queue is dropped and its
    /// writer sends `ERR sendq-exceeded` best-effort, then closes). The caller must
    /// remove it from the registry so the others see it leave (CONN-4).
    Overflow,
    /// The outbox no longer takes lines (closing or cut off); the line was dropped.
    Closed,
}

#[derive(Debug)]
enum Phase {
    /// Taking lines.
    Open,
    /// Send what is queued, then shut the connection down; take no more lines.
    Closing,
    /// Drop what is queued; write `notice` best-effort without waiting, then close.
    Killed { notice: Option<Line> },
}

#[derive(Debug)]
struct State {
    queue: VecDeque<Line>,
    /// Bytes queued plus bytes in the writer's batch not yet written.
    bytes: usize,
    phase: Phase,
    /// The writer task's waker, whenever it is not running.
    writer: Option<Waker>,
    /// True when the writer found nothing to do and waits for a push.
    writer_idle: bool,
    /// The writer has finished (our side is shut down or the socket is dead).
    writer_done: bool,
    /// The reader, waiting for `writer_done`.
    reader: Option<Waker>,
}

/// A client's bounded, byte-counted outbound queue.
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    limit: usize,
    /// The line sent when the queue overflows (shared, encoded once per server).
    overflow_notice: Line,
}

impl Outbox {
    /// An empty outbox that holds at most `limit` bytes of encoded lines. Allocates no
    /// queue storage until the first push.
    pub fn new(limit: usize) -> Outbox {
        Outbox::with_notice(limit, encode(&sendq_exceeded()))
    }

    /// Like [`Outbox::new`], with the overflow line already encoded (shared by all).
    pub(crate) fn with_notice(limit: usize, overflow_notice: Line) -> Outbox {
        Outbox {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                bytes: 0,
                phase: Phase::Open,
                writer: None,
                writer_idle: false,
                writer_done: false,
                reader: None,
            }),
            limit,
            overflow_notice,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding this lock leaves consistent-enough state (every
        // update is a few plain assignments); keep serving rather than cascade the panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The byte limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Queues `line` and wakes the writer if it was idle.
    pub fn push(&self, line: &Line) -> Pushed {
        let mut wake = None;
        let result = self.push_inner(line, &mut wake);
        if let Some(w) = wake {
            w.wake();
        }
        result
    }

    /// Queues `line`; a writer that must be woken is added to `wakers` instead of being
    /// woken now, so a broadcast can wake them all after releasing the hub's lock.
    pub fn push_deferred(&self, line: &Line, wakers: &mut Vec<Waker>) -> Pushed {
        let mut wake = None;
        let result = self.push_inner(line, &mut wake);
        if let Some(w) = wake {
            wakers.push(w);
        }
        result
    }

    fn push_inner(&self, line: &Line, wake: &mut Option<Waker>) -> Pushed {
        let mut st = self.lock();
        if !matches!(st.phase, Phase::Open) {
            return Pushed::Closed;
        }
        if st.bytes.saturating_add(line.len()) > self.limit {
            st.phase = Phase::Killed {
                notice: Some(self.overflow_notice.clone()),
            };
            st.queue = VecDeque::new();
            *wake = st.writer.clone();
            return Pushed::Overflow;
        }
        st.queue.push_back(line.clone());
        st.bytes += line.len();
        if st.writer_idle {
            st.writer_idle = false;
            *wake = st.writer.clone();
        }
        Pushed::Queued
    }

    /// Queues `line` even past the limit and then closes: for the last line of a
    /// connection (`ERR server-shutdown`), which must not be refused for lack of room.
    /// Does nothing when the outbox is already closing or cut off.
    pub fn push_final(&self, line: &Line) {
        let waker = {
            let mut st = self.lock();
            if !matches!(st.phase, Phase::Open) {
                return;
            }
            st.queue.push_back(line.clone());
            st.bytes = st.bytes.saturating_add(line.len());
            st.phase = Phase::Closing;
            st.writer_idle = false;
            st.writer.clone()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Sends what is queued, then closes; takes no more lines.
    pub fn close(&self) {
        let waker = {
            let mut st = self.lock();
            if !matches!(st.phase, Phase::Open) {
                return;
            }
            st.phase = Phase::Closing;
            st.writer_idle = false;
            st.writer.clone()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Drops what is queued and closes at once, sending nothing more.
    pub fn kill(&self) {
        let waker = {
            let mut st = self.lock();
            if matches!(st.phase, Phase::Killed { .. }) {
                return;
            }
            st.phase = Phase::Killed { notice: None };
            st.queue = VecDeque::new();
            st.writer_idle = false;
            st.writer.clone()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// True while lines are accepted.
    pub fn is_open(&self) -> bool {
        matches!(self.lock().phase, Phase::Open)
    }

    /// Bytes queued or being written.
    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Moves every queued line into `out` and forgets their bytes, as a writer would
    /// after writing them. For benches and tests that drive the hub without sockets.
    pub fn drain_into(&self, out: &mut Vec<Line>) -> usize {
        let mut st = self.lock();
        let n = st.queue.len();
        out.extend(st.queue.drain(..));
        st.bytes = 0;
        n
    }

    /// True once the writer has finished. Otherwise registers `waker` to be woken then.
    pub(crate) fn poll_writer_done(&self, waker: &Waker) -> bool {
        let mut st = self.lock();
        if st.writer_done {
            return true;
        }
        match &st.reader {
            Some(w) if w.will_wake(waker) => {}
            _ => st.reader = Some(waker.clone()),
        }
        false
    }

    fn writer_finished(&self) {
        let reader = {
            let mut st = self.lock();
            st.writer_done = true;
            st.writer = None;
            st.queue = VecDeque::new();
            st.reader.take()
        };
        if let Some(w) = reader {
            w.wake();
        }
    }
}

/// The line a client past its queue limit gets (CONN-4).
pub(crate) fn sendq_exceeded() -> ServerMessage {
    ServerMessage::error(
        chat_proto::ErrorCode::SendqExceeded,
        chat_proto::server::texts::SENDQ_EXCEEDED,
    )
}

/// Why a writer stopped.
#[derive(Debug)]
pub enum WriterEnd {
    /// Everything queued was sent and our side shut down (a normal close).
    Drained,
    /// The client was cut off (queue overflow or a kill).
    Killed,
    /// A closing client did not take its last lines in time.
    FlushTimeout,
    /// The socket failed (reset, broken pipe).
    Failed(io::Error),
}

/// Drains an [`Outbox`] into a socket. A future that ends when the connection is done.
pub struct Writer {
    outbox: Arc<Outbox>,
    stream: Arc<Async<TcpStream>>,
    /// Lines taken from the queue, being written; `offset` bytes of the first are sent.
    batch: VecDeque<Line>,
    offset: usize,
    /// Bytes written but not yet subtracted from the outbox's count.
    written: usize,
    flush_timeout: Duration,
    deadline: Option<Timer>,
}

impl Writer {
    /// A writer for `outbox` on `stream`. A closing connection gets `flush_timeout` to
    /// take what is queued for it.
    pub fn new(
        outbox: Arc<Outbox>,
        stream: Arc<Async<TcpStream>>,
        flush_timeout: Duration,
    ) -> Writer {
        Writer {
            outbox,
            stream,
            batch: VecDeque::new(),
            offset: 0,
            written: 0,
            flush_timeout,
            deadline: None,
        }
    }

    /// Consumes `n` written bytes from the front of the batch.
    fn consume(&mut self, mut n: usize) {
        self.written += n;
        while n > 0 {
            let Some(front) = self.batch.front() else {
                break;
            };
            let left = front.len() - self.offset;
            if n >= left {
                n -= left;
                self.offset = 0;
                self.batch.pop_front();
            } else {
                self.offset += n;
                n = 0;
            }
        }
    }

    /// One non-blocking attempt to finish the line being written (so the peer does not
    /// see half a line glued to the notice) and to send `notice`. Never waits.
    fn best_effort(&self, notice: &Line) {
        let rest = match self.batch.front() {
            Some(front) if self.offset > 0 => front.get(self.offset..).unwrap_or_default(),
            _ => &[],
        };
        let iov = [IoSlice::new(rest), IoSlice::new(notice)];
        // Best effort by definition (CONN-4): a full socket buffer means it is not sent.
        let _ = self.stream.get_ref().write_vectored(&iov);
    }

    fn finish(&mut self, how: Shutdown, end: WriterEnd) -> Poll<WriterEnd> {
        // The peer may already be gone; nothing more to do about it then.
        let _ = self.stream.get_ref().shutdown(how);
        self.batch = VecDeque::new();
        self.outbox.writer_finished();
        Poll::Ready(end)
    }

    /// After a burst, give the burst's queue storage back: an idle client should cost
    /// next to nothing. Small queues are kept to avoid churn under steady traffic.
    fn shrink_when_idle(&mut self) {
        if self.batch.capacity() > IDLE_SLOTS {
            self.batch = VecDeque::new();
        }
    }
}

impl Future for Writer {
    type Output = WriterEnd;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<WriterEnd> {
        let this = self.get_mut();
        for _ in 0..WRITES_PER_POLL {
            // Take new work and learn the phase, in one short critical section.
            let closing = {
                let mut st = this.outbox.lock();
                st.bytes = st.bytes.saturating_sub(std::mem::take(&mut this.written));
                if let Phase::Killed { notice } = &mut st.phase {
                    let notice = notice.take();
                    drop(st);
                    if let Some(notice) = notice {
                        this.best_effort(&notice);
                    }
                    return this.finish(Shutdown::Both, WriterEnd::Killed);
                }
                if this.batch.is_empty() {
                    std::mem::swap(&mut st.queue, &mut this.batch);
                } else {
                    this.batch.append(&mut st.queue);
                }
                let closing = matches!(st.phase, Phase::Closing);
                if this.batch.is_empty() {
                    if closing {
                        drop(st);
                        return this.finish(Shutdown::Write, WriterEnd::Drained);
                    }
                    st.writer_idle = true;
                }
                // Registered whether idle or busy, so that a close or kill always reaches
                // us; a push wakes us only when idle.
                match &st.writer {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => st.writer = Some(cx.waker().clone()),
                }
                if this.batch.is_empty() {
                    if st.queue.capacity() > IDLE_SLOTS {
                        st.queue = VecDeque::new();
                    }
                    drop(st);
                    this.shrink_when_idle();
                    return Poll::Pending;
                }
                closing
            };
            if closing && this.deadline.is_none() {
                this.deadline = Some(Timer::after(this.flush_timeout));
            }

            let result = {
                let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(this.batch.len().min(IOV_MAX));
                for (i, line) in this.batch.iter().take(IOV_MAX).enumerate() {
                    let bytes = if i == 0 {
                        line.get(this.offset..).unwrap_or_default()
                    } else {
                        line
                    };
                    iov.push(IoSlice::new(bytes));
                }
                Pin::new(&mut &*this.stream).poll_write_vectored(cx, &iov)
            };
            match result {
                Poll::Ready(Ok(0)) => {
                    let err = io::Error::from(io::ErrorKind::WriteZero);
                    this.outbox.kill();
                    return this.finish(Shutdown::Both, WriterEnd::Failed(err));
                }
                Poll::Ready(Ok(n)) => this.consume(n),
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => {
                    this.outbox.kill();
                    return this.finish(Shutdown::Both, WriterEnd::Failed(e));
                }
                Poll::Pending => {
                    if let Some(deadline) = &mut this.deadline
                        && Pin::new(deadline).poll(cx).is_ready()
                    {
                        this.outbox.kill();
                        return this.finish(Shutdown::Both, WriterEnd::FlushTimeout);
                    }
                    return Poll::Pending;
                }
            }
        }
        // Plenty written in one go: let other tasks run, then carry on.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> Line {
        Line::from(s.as_bytes())
    }

    #[test]
    fn conn_4_byte_counted_and_bounded() {
        let ob = Outbox::new(10);
        assert_eq!(ob.push(&line("12345\n")), Pushed::Queued);
        assert_eq!(ob.queued_bytes(), 6);
        assert_eq!(ob.push(&line("1234\n")), Pushed::Overflow);
        assert!(!ob.is_open());
        // The queue was dropped at once: memory does not wait for the writer.
        assert_eq!(ob.lock().queue.len(), 0);
        assert_eq!(ob.push(&line("x\n")), Pushed::Closed);
    }

    #[test]
    fn shared_bytes_not_copied() {
        let ob1 = Outbox::new(100);
        let ob2 = Outbox::new(100);
        let l = line("hello\n");
        ob1.push(&l);
        ob2.push(&l);
        let mut a = Vec::new();
        let mut b = Vec::new();
        ob1.drain_into(&mut a);
        ob2.drain_into(&mut b);
        assert!(Arc::ptr_eq(&a[0], &b[0]));
        assert!(Arc::ptr_eq(&a[0], &l));
        assert_eq!(ob1.queued_bytes(), 0);
    }

    #[test]
    fn final_line_ignores_limit_then_closes() {
        let ob = Outbox::new(8);
        ob.push(&line("1234567\n"));
        ob.push_final(&line("ERR server-shutdown bye\n"));
        assert!(!ob.is_open());
        assert_eq!(ob.lock().queue.len(), 2);
        assert_eq!(ob.push(&line("x\n")), Pushed::Closed);
    }

    /// A connected pair: (server side wrapped for async I/O, client side blocking).
    fn pair() -> (Arc<Async<TcpStream>>, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        (Arc::new(Async::new(server).unwrap()), client)
    }

    fn read_to_end(mut client: TcpStream) -> Vec<u8> {
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut client, &mut got).unwrap();
        got
    }

    /// CONN-4: on overflow the queue is dropped and the client gets `ERR sendq-exceeded`
    /// (best effort, bypassing the queue), then the connection is shut down.
    #[test]
    fn conn_4_overflow_sends_notice_and_closes() {
        let (server, client) = pair();
        let ob = Arc::new(Outbox::new(64));
        assert_eq!(ob.push(&line("queued: 1\n")), Pushed::Queued);
        let big = Line::from(vec![b'x'; 100]);
        assert_eq!(ob.push(&big), Pushed::Overflow);
        let end = async_io::block_on(Writer::new(ob, server, Duration::from_secs(1)));
        assert!(matches!(end, WriterEnd::Killed), "{end:?}");
        assert_eq!(read_to_end(client), encode(&sendq_exceeded()).to_vec());
    }

    /// The writer drains everything queued, in order, then shuts down on close; lines
    /// pushed while it runs are picked up too.
    #[test]
    fn writer_drains_in_order_then_closes() {
        let (server, client) = pair();
        let ob = Arc::new(Outbox::new(1 << 20));
        let mut want = Vec::new();
        for i in 0..3000 {
            let l = Line::from(format!("line {i}\n").into_bytes());
            want.extend_from_slice(&l);
            assert_eq!(ob.push(&l), Pushed::Queued);
        }
        ob.close();
        let reader = std::thread::spawn(move || read_to_end(client));
        let end = async_io::block_on(Writer::new(ob.clone(), server, Duration::from_secs(5)));
        assert!(matches!(end, WriterEnd::Drained), "{end:?}");
        assert_eq!(reader.join().unwrap(), want);
        assert_eq!(ob.queued_bytes(), 0);
    }

    /// A partial write resumes mid-line; when the client is cut off mid-line, the line
    /// is completed before the notice if the socket takes it.
    #[test]
    fn partial_write_resumes_and_kill_completes_the_line() {
        let (server, client) = pair();
        socket2::SockRef::from(server.get_ref())
            .set_send_buffer_size(4096)
            .unwrap();
        socket2::SockRef::from(&client)
            .set_recv_buffer_size(4096)
            .unwrap();
        let ob = Arc::new(Outbox::new(1 << 20));
        let mut l = vec![b'p'; 200_000];
        l.push(b'\n');
        let l = Line::from(l);
        ob.push(&l);
        let mut writer = Writer::new(ob.clone(), server, Duration::from_secs(5));
        // Poll once: the socket takes only part of the line.
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(Pin::new(&mut writer).poll(&mut cx).is_pending());
        assert!(
            writer.offset > 0 && writer.offset < l.len(),
            "offset {}",
            writer.offset
        );
        ob.kill();
        let reader = std::thread::spawn(move || read_to_end(client));
        assert!(matches!(async_io::block_on(&mut writer), WriterEnd::Killed));
        let got = reader.join().unwrap();
        // Whatever arrived is a prefix of the line: nothing glued into its middle.
        assert!(got.len() <= l.len());
        assert_eq!(&got[..], &l[..got.len()]);
    }

    #[test]
    fn encode_is_the_proto_encoding() {
        let m = ServerMessage::Connected;
        assert_eq!(&*encode(&m), &m.to_bytes()[..]);
    }
}
