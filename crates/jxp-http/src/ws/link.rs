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
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use jxp_core::{CloseReason, Outbound, Outlet, PushError};
use jxp_model::sync::lock;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use super::protocol::{EVENT_MID, EVENT_PREFIX, EVENT_SUFFIX, deauth_frame};

type Io = TokioIo<Upgraded>;

/// Queued frames written per `writev` at most (three pieces each).
const BATCH: usize = 64;

/// Room for a frame's header and, for an event, the JSON naming the connection before the
/// body: `{"client_id":"<32 hex>","data":` after a header of at most 10 bytes.
const HEAD_MAX: usize = 80;

/// How long a connection lingers after the server's close frame, reading what the client
/// still sends, and how many bytes it reads at most meanwhile.
const DRAIN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
const DRAIN_BYTES: usize = 4 << 20;

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
    /// Frames waiting for the socket, oldest first.
    queue: VecDeque<Frame>,
    /// Bytes of the front frame already written: a begun frame is always finished.
    sent: usize,
    ending: Option<Ending>,
    /// The server is shutting down: a closed connection stops lingering.
    halted: bool,
    /// The connection's task, while it waits for frames to write, for an ending, or for the
    /// client's last bytes.
    waker: Option<Waker>,
    /// Who waits for the queue to drain to a length ([`Outlet::when_drained`]).
    drained: Vec<(usize, DrainWake)>,
}

type DrainWake = Box<dyn FnOnce() + Send>;

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
                halted: false,
                waker: None,
                drained: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a frame half-queued: every change
        // under it is a single push or pop, so the state is usable either way.
        lock(&self.inner)
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
    /// (always, when `later`). Queuing moves the frame: an event's body stays shared.
    fn send(&self, inner: &mut Inner, frame: Frame, later: bool) -> Result<(), PushError> {
        if inner.ending.is_some() {
            return Err(PushError::Closed);
        }
        let io = match inner.io.as_mut() {
            Some(io) if inner.queue.is_empty() && !later => io,
            _ => {
                if inner.queue.len() >= self.limit {
                    return Err(PushError::Full);
                }
                inner.queue.push_back(frame);
                inner.wake();
                return Ok(());
            }
        };
        let [head, body, tail] = frame.parts();
        let slices = [IoSlice::new(head), IoSlice::new(body), IoSlice::new(tail)];
        // The waker is a no-op: if the socket is full the frame is queued and the
        // connection's task, woken below, waits for the socket with its own waker. The write
        // is outside tokio's cooperative budget: the hub writes to a thousand sockets in one
        // turn, and a spent budget would make every write after the 128th report a full
        // socket.
        let mut cx = Context::from_waker(Waker::noop());
        let write = std::future::poll_fn(|cx| Pin::new(&mut *io).poll_write_vectored(cx, &slices));
        let written = match std::pin::pin!(tokio::task::unconstrained(write)).poll(&mut cx) {
            Poll::Ready(Ok(n)) if n >= frame.len() => return Ok(()),
            Poll::Ready(Ok(n)) => n,
            Poll::Pending => 0,
            Poll::Ready(Err(_)) => {
                inner.end(Ending::Broken);
                return Err(PushError::Closed);
            }
        };
        inner.queue.push_back(frame);
        inner.sent = written;
        inner.wake();
        Ok(())
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
    /// already begun; then `close` is sent and everything written within `wait`. After a
    /// close frame of the server's, the connection then drains what the client still sends
    /// (see [`Link::drain`]).
    pub(super) async fn finish(
        &self,
        close: Option<(u16, &str)>,
        keep_queue: bool,
        wait: std::time::Duration,
    ) {
        let server_closes = close.is_some();
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
                let frame = Frame::new(OpCode::Control(Control::Close), Body::Owned(payload));
                inner.queue.push_back(frame);
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
        let sent = tokio::time::timeout(wait, flushed).await.is_ok();
        if sent && server_closes {
            self.drain().await;
        }
    }

    /// Reads and drops what the client still sends after the server's close frame, until the
    /// client closes its side, [`DRAIN_BYTES`] have come, [`DRAIN_WAIT`] has passed or the
    /// server shuts down. A socket closed with unread bytes in its receive buffer is reset by
    /// the kernel, and the reset can destroy the close frame before the client reads it: a
    /// client in the middle of an oversized frame would see a reset instead of 1009.
    async fn drain(&self) {
        let mut left = DRAIN_BYTES;
        let drained = std::future::poll_fn(|cx| {
            let mut inner = self.lock();
            // Only while the connection closes: an idle connection's memory is unaffected.
            let mut buf = [0u8; 4096];
            loop {
                if inner.halted {
                    return Poll::Ready(());
                }
                let Some(io) = inner.io.as_mut() else {
                    return Poll::Ready(());
                };
                let mut read = ReadBuf::new(&mut buf);
                match Pin::new(io).poll_read(cx, &mut read) {
                    Poll::Ready(Ok(())) if !read.filled().is_empty() => {
                        left = left.saturating_sub(read.filled().len());
                        if left == 0 {
                            return Poll::Ready(());
                        }
                    }
                    // The client closed its side, or the socket failed.
                    Poll::Ready(_) => return Poll::Ready(()),
                    Poll::Pending => {
                        // A shutdown wakes this task too.
                        inner.waker = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                }
            }
        });
        let _ = tokio::time::timeout(DRAIN_WAIT, drained).await;
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
        match (inner.ending, reason) {
            (None, CloseReason::TooSlow) => inner.end(Ending::TooSlow),
            (None, CloseReason::Shutdown) => inner.end(Ending::Shutdown),
            // A connection draining after its close frame does not hold up the shutdown.
            (Some(Ending::Closing), CloseReason::Shutdown) => {
                inner.halted = true;
                inner.wake();
            }
            (Some(_), _) => {}
        }
    }

    fn when_drained(&self, frames: usize, wake: DrainWake) {
        let mut inner = self.lock();
        if inner.ending.is_some() {
            return;
        }
        inner.drained.push((frames, wake));
        inner.drain_woken();
    }
}

impl Link {
    /// Takes one frame: written now unless `later` or something is queued before it.
    fn take(&self, item: Outbound, later: bool) -> Result<(), PushError> {
        let mut inner = self.lock();
        let frame = match item {
            Outbound::Event(body) => Frame::event(&self.client_id, body),
            Outbound::Reply(text) => Frame::text(text.into_bytes()),
            Outbound::Deauth(reason) => {
                Frame::text(deauth_frame(&self.client_id, &reason).into_bytes())
            }
            Outbound::Ping => {
                if inner.ending.is_none() && self.silent() {
                    inner.end(Ending::Silent);
                    return Ok(());
                }
                Frame::new(OpCode::Control(Control::Ping), Body::Owned(Vec::new()))
            }
        };
        self.send(&mut inner, frame, later)
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
        self.drained.clear();
        self.wake();
    }

    /// Calls those waiting for the queue to drain to its length now.
    fn drain_woken(&mut self) {
        let len = self.queue.len();
        if !self.drained.iter().any(|(frames, _)| len <= *frames) {
            return;
        }
        let (ready, waiting) = std::mem::take(&mut self.drained)
            .into_iter()
            .partition(|(frames, _)| len <= *frames);
        self.drained = waiting;
        for (_, wake) in ready {
            wake();
        }
    }

    /// Writes queued frames until the queue is empty or the socket is full.
    fn poll_write_queue(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.queue.is_empty() {
            let Some(io) = self.io.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            let mut slices = [IoSlice::new(&[]); BATCH * 3];
            let mut count = 0;
            // The front frame's first `sent` bytes are out already.
            let mut skip = self.sent;
            let pieces = self.queue.iter().take(BATCH).flat_map(Frame::parts);
            for piece in pieces {
                let rest = piece.get(skip..).unwrap_or_default();
                skip = skip.saturating_sub(piece.len());
                if let (false, Some(slot)) = (rest.is_empty(), slices.get_mut(count)) {
                    *slot = IoSlice::new(rest);
                    count += 1;
                }
            }
            if count == 0 {
                // The front frames are empty: drop them and go on.
                self.sent = advance(&mut self.queue, self.sent, 0);
                continue;
            }
            let written = match Pin::new(io).poll_write_vectored(cx, &slices[..count]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            self.sent = advance(&mut self.queue, self.sent, written);
            self.drain_woken();
        }
        Poll::Ready(Ok(()))
    }
}

/// Drops the frames `written` bytes finished from the front of `queue`, whose front frame had
/// `sent` bytes out already; answers how much of the new front frame is out.
fn advance(queue: &mut VecDeque<Frame>, mut sent: usize, mut written: usize) -> usize {
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

/// One outgoing frame: its head (the WebSocket header and, for an event, the JSON before the
/// body), its body and a tail. An event's body is the hub's shared string: it is written from
/// where it is, and queued by reference, never copied per subscriber.
struct Frame {
    head: [u8; HEAD_MAX],
    head_len: usize,
    body: Body,
    tail: &'static [u8],
}

enum Body {
    Shared(Arc<str>),
    Owned(Vec<u8>),
}

impl Body {
    fn bytes(&self) -> &[u8] {
        match self {
            Body::Shared(s) => s.as_bytes(),
            Body::Owned(v) => v,
        }
    }
}

impl Frame {
    /// A frame of `body` as it is, after a header for `opcode`.
    fn new(opcode: OpCode, body: Body) -> Self {
        let mut frame = Frame {
            head: [0; HEAD_MAX],
            head_len: 0,
            body,
            tail: &[],
        };
        let len = frame.body.bytes().len();
        frame.push_header(opcode, len);
        frame
    }

    fn text(text: Vec<u8>) -> Self {
        Frame::new(OpCode::Data(Data::Text), Body::Owned(text))
    }

    /// Bytes already framed (by tungstenite), sent as they are.
    fn raw(bytes: Vec<u8>) -> Self {
        Frame {
            head: [0; HEAD_MAX],
            head_len: 0,
            body: Body::Owned(bytes),
            tail: &[],
        }
    }

    /// `{"client_id":"…","data":` + body + `}` as a text frame.
    fn event(client_id: &str, body: Arc<str>) -> Self {
        let before = [
            EVENT_PREFIX.as_bytes(),
            client_id.as_bytes(),
            EVENT_MID.as_bytes(),
        ];
        let before_len: usize = before.iter().map(|p| p.len()).sum();
        if before_len + 10 > HEAD_MAX {
            // A client id longer than ours ever are: joined into one owned body instead.
            let text = [EVENT_PREFIX, client_id, EVENT_MID, &body, EVENT_SUFFIX].concat();
            return Frame::text(text.into_bytes());
        }
        let mut frame = Frame {
            head: [0; HEAD_MAX],
            head_len: 0,
            body: Body::Shared(body),
            tail: EVENT_SUFFIX.as_bytes(),
        };
        let len = before_len + frame.body.bytes().len() + frame.tail.len();
        frame.push_header(OpCode::Data(Data::Text), len);
        for piece in before {
            frame.push_head(piece);
        }
        frame
    }

    fn push_header(&mut self, opcode: OpCode, payload_len: usize) {
        let header = FrameHeader {
            opcode,
            ..FrameHeader::default()
        };
        let mut bytes = [0u8; 10];
        let mut out: &mut [u8] = &mut bytes;
        // A server's header is at most 10 bytes (no mask), so this cannot run out of room.
        let _ = header.format(payload_len as u64, &mut out);
        let used = 10 - out.len();
        self.push_head(bytes.get(..used).unwrap_or_default());
    }

    fn push_head(&mut self, bytes: &[u8]) {
        let end = self.head_len + bytes.len();
        if let Some(slot) = self.head.get_mut(self.head_len..end) {
            slot.copy_from_slice(bytes);
            self.head_len = end;
        }
    }

    fn parts(&self) -> [&[u8]; 3] {
        [
            self.head.get(..self.head_len).unwrap_or_default(),
            self.body.bytes(),
            self.tail,
        ]
    }

    fn len(&self) -> usize {
        self.parts().iter().map(|p| p.len()).sum()
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
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let link = &self.0;
        let mut inner = link.lock();
        // Already framed by tungstenite: sent as it is.
        match link.send(&mut inner, Frame::raw(data.to_vec()), false) {
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

    fn bytes(frame: &Frame) -> Vec<u8> {
        frame.parts().concat()
    }

    fn raw(len: usize, fill: u8) -> Frame {
        Frame::raw(vec![fill; len])
    }

    #[test]
    fn a_frame_is_its_header_then_its_body() {
        let frame = Frame::text(br#"{"a":1}"#.to_vec());
        assert_eq!(bytes(&frame), b"\x81\x07{\"a\":1}");
        assert_eq!(frame.len(), 9);
        let ping = Frame::new(OpCode::Control(Control::Ping), Body::Owned(Vec::new()));
        assert_eq!(bytes(&ping), [0x89, 0x00]);
        assert_eq!(bytes(&Frame::raw(vec![1, 2])), [1, 2]);
    }

    #[test]
    fn payload_lengths_take_one_three_or_nine_header_bytes() {
        for (len, head) in [
            (125, vec![0x81, 125]),
            (126, vec![0x81, 126, 0, 126]),
            (65_535, vec![0x81, 126, 0xff, 0xff]),
            (65_536, vec![0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
        ] {
            let frame = Frame::text(vec![b'x'; len]);
            assert_eq!(frame.parts()[0], head.as_slice(), "{len}");
            assert_eq!(frame.len(), head.len() + len);
        }
    }

    #[test]
    fn an_event_frame_is_the_joined_protocol_frame_around_the_shared_body() {
        let body: Arc<str> = r#"{"event":"post"}"#.into();
        let client_id = "0123456789abcdef0123456789abcdef";
        let frame = Frame::event(client_id, body.clone());
        let [head, shared, tail] = frame.parts();
        assert!(
            std::ptr::eq(shared, body.as_bytes()),
            "the body is not copied"
        );
        let expected = super::super::protocol::event_frame(client_id, &body);
        let whole = Frame::text(expected.clone().into_bytes());
        assert_eq!(bytes(&frame), bytes(&whole));
        assert_eq!((head.len(), tail), (2 + 14 + 32 + 9, b"}".as_slice()));
        // An id too long for the head still makes the same frame.
        let long = "x".repeat(100);
        let frame = Frame::event(&long, body.clone());
        let whole = Frame::text(super::super::protocol::event_frame(&long, &body).into_bytes());
        assert_eq!(bytes(&frame), bytes(&whole));
    }

    #[test]
    fn a_drain_wake_comes_once_the_queue_is_short_enough_and_never_after_an_end() {
        use std::sync::atomic::AtomicUsize;
        let woken = Arc::new(AtomicUsize::new(0));
        let wake = || -> DrainWake {
            let woken = woken.clone();
            Box::new(move || {
                woken.fetch_add(1, Ordering::SeqCst);
            })
        };
        // Before the upgrade every frame waits in the queue.
        let link = Link::new("c".into(), 8, 60_000);
        for _ in 0..3 {
            link.push(Outbound::Reply("{}".into())).unwrap();
        }
        link.when_drained(1, wake());
        assert_eq!(
            woken.load(Ordering::SeqCst),
            0,
            "three wait, not at most one"
        );
        link.when_drained(3, wake());
        assert_eq!(
            woken.load(Ordering::SeqCst),
            1,
            "already short enough: at once"
        );
        {
            let mut inner = link.lock();
            inner.queue.pop_front();
            inner.drain_woken();
        }
        assert_eq!(woken.load(Ordering::SeqCst), 1, "two still wait");
        {
            let mut inner = link.lock();
            inner.queue.pop_front();
            inner.drain_woken();
            inner.drain_woken();
        }
        assert_eq!(woken.load(Ordering::SeqCst), 2, "once, at one left");
        link.when_drained(0, wake());
        link.close(CloseReason::TooSlow);
        link.lock().queue.clear();
        link.lock().drain_woken();
        link.when_drained(5, wake());
        assert_eq!(
            woken.load(Ordering::SeqCst),
            2,
            "a closed link wakes nobody"
        );
    }

    #[test]
    fn advancing_finishes_frames_in_order_and_remembers_a_begun_one() {
        let mut queue: VecDeque<Frame> = [raw(4, 1), raw(3, 2), raw(5, 3)].into();
        // Part of the first frame.
        assert_eq!(advance(&mut queue, 0, 3), 3);
        assert_eq!(queue.len(), 3);
        // The rest of the first, all of the second, two bytes of the third.
        assert_eq!(advance(&mut queue, 3, 1 + 3 + 2), 2);
        assert_eq!(queue.len(), 1);
        assert_eq!(bytes(&queue[0]), [3; 5]);
        // Exactly the rest.
        assert_eq!(advance(&mut queue, 2, 3), 0);
        assert!(queue.is_empty());
        assert_eq!(advance(&mut queue, 0, 0), 0);
        // Nothing written still drops empty frames at the front, and only those.
        let mut queue: VecDeque<Frame> = [raw(0, 0), raw(0, 0), raw(2, 4)].into();
        assert_eq!(advance(&mut queue, 0, 0), 0);
        assert_eq!(queue.len(), 1);
    }
}
