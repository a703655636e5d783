//! The flood limit's hold-back (CONN-7): a frame that must wait for a token is put aside
//! with the rest of its chunk, and nothing more is read from the socket while it waits,
//! which pushes back on the client through TCP. Input is never dropped, only delayed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use async_io::Timer;
use chat_proto::Frame;

use super::state::{Conn, Core, Flow, Phase};
use crate::flood::{Admit, Bucket};

/// Input put aside by the flood limit: the frame that waits, and the rest of its chunk.
pub(super) struct Held {
    frame: OwnedFrame,
    rest: Vec<u8>,
    timer: Timer,
}

/// A [`Frame`] that outlives the framer's buffer.
enum OwnedFrame {
    Line(String),
    TooLong,
    InvalidUtf8,
    InvalidText,
}

impl OwnedFrame {
    fn new(frame: &Frame<'_>) -> OwnedFrame {
        match frame {
            Frame::Line(l) => OwnedFrame::Line((*l).to_owned()),
            Frame::TooLong => OwnedFrame::TooLong,
            Frame::InvalidUtf8 => OwnedFrame::InvalidUtf8,
            Frame::InvalidText => OwnedFrame::InvalidText,
        }
    }

    fn frame(&self) -> Frame<'_> {
        match self {
            OwnedFrame::Line(l) => Frame::Line(l),
            OwnedFrame::TooLong => Frame::TooLong,
            OwnedFrame::InvalidUtf8 => Frame::InvalidUtf8,
            OwnedFrame::InvalidText => Frame::InvalidText,
        }
    }
}

/// What the flood limit says about a frame.
pub(super) enum Gate {
    /// Act on it now.
    Go,
    /// It was put aside (reading stops until it is let through).
    Held,
    /// In excess for too long: close.
    Close(Flow),
}

/// CONN-7: asks the bucket before a frame is acted on in the chatting state; a frame
/// that must wait is put in `held` with `rest`, the unread part of its chunk. (Takes the
/// parts of a [`Core`] apart: the frame borrows its framer.)
pub(super) fn gate(
    bucket: &mut Bucket,
    conn: &mut Conn,
    held: &mut Option<Box<Held>>,
    frame: &Frame<'_>,
    rest: &[u8],
    waited: bool,
) -> Gate {
    // Every line in the chatting state takes a token; in the handshake only pre-join
    // commands do, nickname lines none (CONN-7, CAPS-4).
    let counts = match &conn.phase {
        Phase::Chatting(_) => true,
        Phase::Handshake { .. } => matches!(
            frame,
            Frame::Line(l) if chat_proto::ClientMessage::parse_pre_join(l).is_some()
        ),
        Phase::Closing { .. } => false,
    };
    if !bucket.limited() || !counts {
        return Gate::Go;
    }
    match bucket.admit(Instant::now(), waited) {
        Admit::Go => Gate::Go,
        Admit::Wait { wait, first } => {
            if first {
                conn.reply(&conn.hub.lines().flood.clone());
            }
            *held = Some(Box::new(Held {
                frame: OwnedFrame::new(frame),
                rest: rest.to_vec(),
                timer: Timer::after(wait),
            }));
            Gate::Held
        }
        Admit::Disconnect => Gate::Close(conn.excess_flood()),
    }
}

impl Core {
    /// Acts on the held frame once the bucket has a token. Returns `Pending` while it
    /// must still wait, `Ready` with what to do next otherwise.
    pub(super) fn poll_held(&mut self, cx: &mut Context<'_>) -> Poll<Flow> {
        let Some(held) = self.held.as_mut() else {
            return Poll::Ready(Flow::Continue);
        };
        if matches!(self.conn.phase, Phase::Closing { .. }) {
            self.held = None;
            return Poll::Ready(Flow::Continue);
        }
        loop {
            if Pin::new(&mut held.timer).poll(cx).is_pending() {
                return Poll::Pending;
            }
            match self.bucket.admit(Instant::now(), true) {
                Admit::Go => break,
                Admit::Wait { wait, .. } => held.timer = Timer::after(wait),
                Admit::Disconnect => {
                    self.held = None;
                    return Poll::Ready(self.conn.excess_flood());
                }
            }
        }
        let Some(held) = self.held.take() else {
            return Poll::Ready(Flow::Continue);
        };
        if let Flow::Close(why) = self.conn.on_frame(held.frame.frame()) {
            return Poll::Ready(Flow::Close(why));
        }
        Poll::Ready(self.feed_from(&held.rest, true))
    }
}
