//! One WebSocket connection's writer. A frame goes onto the socket at once, from whichever
//! task pushes it (the hub with an event, the ticker with a ping, the connection's task with a
//! reply), and waits in the connection's bounded queue only while the socket is full; the
//! connection's task writes the queue out when the socket drains. So an event costs one
//! `writev` on the hub's thread: no task is woken and the body is not copied per subscriber.
//!
//! One lock per connection orders it all: a frame is written directly only when nothing is
//! queued before it, so frames leave in push order and never interleave.

use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use jxp_core::{CloseReason, Outbound, Outlet, PushError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use super::protocol::{EVENT_MID, EVENT_PREFIX, EVENT_SUFFIX, deauth_frame};

type Io = TokioIo<Upgraded>;

/// Queued frames written per `writev` at most.
const BATCH: usize = 64;

/// Why a connection's writer stopped taking frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// Its queue overflowed (1013).
    TooSlow,
    /// The server is shutting down (1001).
    Shutdown,
    /// A ping was due and the client had been silent too long (1001).
    Silent,
    /// The socket failed.
    Broken,
    /// The connection's task is closing it.
    Closing,
}

/// A connection's writer, shared by the hub (as its [`Outlet`]) and the connection's task.
pub(super) struct Link {
    client_id: String,
    /// Frames that may wait before the connection counts as too slow.
    limit: usize,
    idle_ms: i64,
    /// When the client was last heard from (ms since the epoch).
    last_heard: AtomicI64,
    inner: Mutex<Inner>,
}

struct Inner {
    /// `None` until the HTTP upgrade completes; frames pushed before wait in the queue.
    io: Option<Io>,
    /// Encoded frames waiting for the socket, oldest first.
    queue: VecDeque<Vec<u8>>,
    /// Bytes of the front frame already written: a begun frame is always finished.
    sent: usize,
    ending: Option<Ending>,
    /// The connection's task, while it waits for frames to write or for an ending.
    waker: Option<Waker>,
}

impl Link {
    pub(super) fn new(client_id: String, limit: usize, idle_ms: i64) -> Self {
        Link {
            client_id,
            limit: limit.max(1),
            idle_ms,
            last_heard: AtomicI64::new(now_ms()),
            inner: Mutex::new(Inner {
                io: None,
                queue: VecDeque::new(),
                sent: 0,
                ending: None,
                waker: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a frame half-queued: every change
        // under it is a single push or pop, so the state is usable either way.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The upgraded socket is here: frames go onto it from now on.
    pub(super) fn attach(&self, io: Io) {
        let mut inner = self.lock();
        inner.io = Some(io);
        inner.wake();
    }

    /// The client said something (a message, a pong): it is alive.
    pub(super) fn heard(&self) {
        self.last_heard.store(now_ms(), Ordering::Relaxed);
    }

    fn silent(&self) -> bool {
        now_ms() - self.last_heard.load(Ordering::Relaxed) > self.idle_ms
    }

    /// Writes `frame` now if nothing waits before it and the socket takes it, else queues it
    /// (always, when `later`).
    fn send(&self, inner: &mut Inner, frame: Frame<'_>, later: bool) -> Result<(), PushError> {
        if inner.ending.is_some() {
            return Err(PushError::Closed);
        }
        let io = match inner.io.as_mut() {
            Some(io) if inner.queue.is_empty() && !later => io,
            _ => {
                if inner.queue.len() >= self.limit {
                    return Err(PushError::Full);
                }
                inner.queue.push_back(frame.to_vec());
                inner.wake();
                return Ok(());
            }
        };
        let slices = frame.slices();
        // The waker is a no-op: if the socket is full the frame is queued and the
        // connection's task, woken below, waits for the socket with its own waker. The write
        // is outside tokio's cooperative budget: the hub writes to a thousand sockets in one
        // turn, and a spent budget would make every write after the 128th report a full
        // socket.
        let mut cx = Context::from_waker(Waker::noop());
        let write = std::future::poll_fn(|cx| Pin::new(&mut *io).poll_write_vectored(cx, &slices));
        match std::pin::pin!(tokio::task::unconstrained(write)).poll(&mut cx) {
            Poll::Ready(Ok(n)) if n >= frame.len() => Ok(()),
            Poll::Ready(Ok(n)) => {
                inner.queue.push_back(frame.to_vec());
                inner.sent = n;
                inner.wake();
                Ok(())
            }
            Poll::Pending => {
                inner.queue.push_back(frame.to_vec());
                inner.wake();
                Ok(())
            }
            Poll::Ready(Err(_)) => {
                inner.end(Ending::Broken);
                Err(PushError::Closed)
            }
        }
    }

    /// Waits until the writer stops taking frames, writing the queue out meanwhile; answers
    /// why it stopped. Cancel-safe: all its state is in the link.
    pub(super) fn poll_ending(&self, cx: &mut Context<'_>) -> Poll<Ending> {
        let mut inner = self.lock();
        if let Some(ending) = inner.ending {
            return Poll::Ready(ending);
        }
        if let Poll::Ready(Err(_)) = inner.poll_write_queue(cx) {
            inner.ending = Some(Ending::Broken);
            return Poll::Ready(Ending::Broken);
        }
        // The queue is empty, or the socket is full and will wake this task when it drains;
        // a push or an ending wakes it too.
        match &mut inner.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            w => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Ends the connection: frames still queued are dropped (unless `keep_queue`, when the
    /// client itself is closing and tungstenite's reply may be among them), except one
    /// already begun; then `close` is sent and everything written within `wait`.
    pub(super) async fn finish(
        &self,
        close: Option<(u16, &str)>,
        keep_queue: bool,
        wait: std::time::Duration,
    ) {
        {
            let mut inner = self.lock();
            inner.ending = Some(Ending::Closing);
            if !keep_queue {
                let begun = inner.sent > 0;
                inner.queue.truncate(usize::from(begun));
            }
            if let Some((code, reason)) = close {
                let mut payload = code.to_be_bytes().to_vec();
                payload.extend_from_slice(reason.as_bytes());
                let frame = Frame::new(
                    OpCode::Control(Control::Close),
                    [&payload, &[], &[], &[], &[]],
                );
                inner.queue.push_back(frame.to_vec());
            }
        }
        let flushed = std::future::poll_fn(|cx| {
            let mut inner = self.lock();
            match inner.poll_write_queue(cx) {
                Poll::Ready(_) => match inner.io.as_mut() {
                    Some(io) => Pin::new(io).poll_shutdown(cx).map(|_| ()),
                    None => Poll::Ready(()),
                },
                Poll::Pending => Poll::Pending,
            }
        });
        let _ = tokio::time::timeout(wait, flushed).await;
    }
}

impl Outlet for Link {
    fn push(&self, item: Outbound) -> Result<(), PushError> {
        self.take(item, false)
    }

    fn push_later(&self, item: Outbound) -> Result<(), PushError> {
        self.take(item, true)
    }

    fn close(&self, reason: CloseReason) {
        let mut inner = self.lock();
        if inner.ending.is_none() {
            inner.end(match reason {
                CloseReason::TooSlow => Ending::TooSlow,
                CloseReason::Shutdown => Ending::Shutdown,
            });
        }
    }
}

impl Link {
    /// Takes one frame: written now unless `later` or something is queued before it.
    fn take(&self, item: Outbound, later: bool) -> Result<(), PushError> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        match &item {
            Outbound::Event(body) => {
                let frame = Frame::text([
                    EVENT_PREFIX.as_bytes(),
                    self.client_id.as_bytes(),
                    EVENT_MID.as_bytes(),
                    body.as_bytes(),
                    EVENT_SUFFIX.as_bytes(),
                ]);
                self.send(inner, frame, later)
            }
            Outbound::Reply(text) => self.send(inner, Frame::text_of(text.as_bytes()), later),
            Outbound::Deauth(reason) => {
                let text = deauth_frame(&self.client_id, reason);
                self.send(inner, Frame::text_of(text.as_bytes()), later)
            }
            Outbound::Ping => {
                if inner.ending.is_none() && self.silent() {
                    inner.end(Ending::Silent);
                    return Ok(());
                }
                let frame = Frame::new(OpCode::Control(Control::Ping), [&[], &[], &[], &[], &[]]);
                self.send(inner, frame, later)
            }
        }
    }
}

impl Inner {
    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    fn end(&mut self, ending: Ending) {
        self.ending = Some(ending);
        self.wake();
    }

    /// Writes queued frames until the queue is empty or the socket is full.
    fn poll_write_queue(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(front) = self.queue.front() {
            let Some(io) = self.io.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            let mut slices = [IoSlice::new(&[]); BATCH];
            let mut count = 0;
            for (slot, frame) in slices.iter_mut().zip(self.queue.iter()) {
                *slot = IoSlice::new(frame);
                count += 1;
            }
            if let Some(first) = slices.first_mut() {
                *first = IoSlice::new(front.get(self.sent..).unwrap_or_default());
            }
            let written = match Pin::new(io).poll_write_vectored(cx, &slices[..count]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            self.sent = advance(&mut self.queue, self.sent, written);
        }
        Poll::Ready(Ok(()))
    }
}

/// Drops the frames `written` bytes finished from the front of `queue`, whose front frame had
/// `sent` bytes out already; answers how much of the new front frame is out.
fn advance(queue: &mut VecDeque<Vec<u8>>, mut sent: usize, mut written: usize) -> usize {
    while let Some(front) = queue.front() {
        let left = front.len().saturating_sub(sent);
        if written < left {
            return sent + written;
        }
        written -= left;
        sent = 0;
        queue.pop_front();
    }
    0
}

/// One outgoing frame as a header and up to five payload pieces, so an event's body, shared
/// by every subscriber, is written from where it is instead of being copied per subscriber.
struct Frame<'a> {
    header: [u8; 10],
    header_len: usize,
    parts: [&'a [u8]; 5],
}

impl<'a> Frame<'a> {
    fn text(parts: [&'a [u8]; 5]) -> Self {
        Frame::new(OpCode::Data(Data::Text), parts)
    }

    fn text_of(text: &'a [u8]) -> Self {
        Frame::text([text, &[], &[], &[], &[]])
    }

    fn new(opcode: OpCode, parts: [&'a [u8]; 5]) -> Self {
        let payload: usize = parts.iter().map(|p| p.len()).sum();
        let header = FrameHeader {
            opcode,
            ..FrameHeader::default()
        };
        let mut bytes = [0u8; 10];
        let mut out: &mut [u8] = &mut bytes;
        // A server's header is at most 10 bytes (no mask), so this cannot run out of room.
        let _ = header.format(payload as u64, &mut out);
        let header_len = 10 - out.len();
        Frame {
            header: bytes,
            header_len,
            parts,
        }
    }

    fn head(&self) -> &[u8] {
        self.header.get(..self.header_len).unwrap_or_default()
    }

    fn len(&self) -> usize {
        self.header_len + self.parts.iter().map(|p| p.len()).sum::<usize>()
    }

    fn slices(&self) -> [IoSlice<'_>; 6] {
        let [a, b, c, d, e] = self.parts;
        [
            IoSlice::new(self.head()),
            IoSlice::new(a),
            IoSlice::new(b),
            IoSlice::new(c),
            IoSlice::new(d),
            IoSlice::new(e),
        ]
    }

    fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        out.extend_from_slice(self.head());
        for part in self.parts {
            out.extend_from_slice(part);
        }
        out
    }
}

/// The socket as tungstenite sees it: reads come from the socket, and what it writes (pongs,
/// the reply to a close) goes through the link, in order with everything else.
pub(super) struct Duplex(pub(super) Arc<Link>);

impl AsyncRead for Duplex {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut inner = self.0.lock();
        match inner.io.as_mut() {
            Some(io) => Pin::new(io).poll_read(cx, buf),
            None => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

impl AsyncWrite for Duplex {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let link = &self.0;
        let mut inner = link.lock();
        // Already framed by tungstenite: sent as it is.
        let frame = Frame {
            header: [0; 10],
            header_len: 0,
            parts: [data, &[], &[], &[], &[]],
        };
        match link.send(&mut inner, frame, false) {
            Ok(()) => Poll::Ready(Ok(data.len())),
            Err(PushError::Full) => {
                inner.end(Ending::TooSlow);
                Poll::Ready(Err(io::Error::other("the client reads too slowly")))
            }
            Err(PushError::Closed) => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;

    fn joined(frame: &Frame<'_>) -> Vec<u8> {
        frame
            .slices()
            .iter()
            .flat_map(|s| s.iter().copied())
            .collect()
    }

    #[test]
    fn a_frame_is_its_header_then_its_pieces_in_order() {
        let frame = Frame::text([b"{\"a\":", b"1", b"", b"}", b""]);
        assert_eq!(joined(&frame), b"\x81\x07{\"a\":1}");
        assert_eq!(frame.to_vec(), joined(&frame));
        assert_eq!(frame.len(), 9);
        let ping = Frame::new(OpCode::Control(Control::Ping), [&[], &[], &[], &[], &[]]);
        assert_eq!(ping.to_vec(), [0x89, 0x00]);
    }

    #[test]
    fn payload_lengths_take_one_three_or_nine_header_bytes() {
        for (len, head) in [
            (125, vec![0x81, 125]),
            (126, vec![0x81, 126, 0, 126]),
            (65_535, vec![0x81, 126, 0xff, 0xff]),
            (65_536, vec![0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
        ] {
            let body = vec![b'x'; len];
            let frame = Frame::text_of(&body);
            assert_eq!(frame.head(), head.as_slice(), "{len}");
            assert_eq!(frame.len(), head.len() + len);
        }
    }

    #[test]
    fn advancing_finishes_frames_in_order_and_remembers_a_begun_one() {
        let mut queue: VecDeque<Vec<u8>> = [vec![1; 4], vec![2; 3], vec![3; 5]].into();
        // Part of the first frame.
        assert_eq!(advance(&mut queue, 0, 3), 3);
        assert_eq!(queue.len(), 3);
        // The rest of the first, all of the second, two bytes of the third.
        assert_eq!(advance(&mut queue, 3, 1 + 3 + 2), 2);
        assert_eq!(queue, VecDeque::from([vec![3; 5]]));
        // Exactly the rest.
        assert_eq!(advance(&mut queue, 2, 3), 0);
        assert!(queue.is_empty());
        assert_eq!(advance(&mut queue, 0, 0), 0);
    }

    #[test]
    fn an_event_frame_is_the_joined_protocol_frame() {
        let body = r#"{"event":"post"}"#;
        let frame = Frame::text([
            EVENT_PREFIX.as_bytes(),
            b"c1",
            EVENT_MID.as_bytes(),
            body.as_bytes(),
            EVENT_SUFFIX.as_bytes(),
        ]);
        let bytes = frame.to_vec();
        let payload = bytes.get(frame.head().len()..).unwrap();
        assert_eq!(
            payload,
            super::super::protocol::event_frame("c1", body).as_bytes()
        );
    }
}
