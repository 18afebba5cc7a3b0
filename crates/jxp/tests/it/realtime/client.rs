//! A WebSocket test client for `/websocket`: requests that await their own reply, events kept
//! in arrival order, bounded waits for events, and close frames.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, client_async, connect_async};

use crate::harness::TestServer;

/// How long a reply or an expected event may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);
/// How long to watch for something that must not arrive.
pub const QUIET: Duration = Duration::from_millis(300);

/// What the socket delivered next.
#[derive(Debug)]
pub enum Frame {
    /// A text frame, parsed as JSON.
    Json(Value),
    /// A close frame and its code (`None` for a close frame without a code).
    Close(Option<u16>),
    /// The stream ended or failed without a close frame.
    Ended(String),
}

/// How a socket ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// A close frame with this code (`None` when the frame carried none).
    Closed(Option<u16>),
    /// The stream ended without a close frame.
    Dropped(String),
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Closed(Some(code)) => write!(f, "close frame {code}"),
            Ending::Closed(None) => write!(f, "close frame without a code"),
            Ending::Dropped(why) => write!(f, "dropped without a close frame ({why})"),
        }
    }
}

/// A reply carries `status`; a pushed frame does not.
pub fn is_reply(v: &Value) -> bool {
    v.get("status").is_some()
}

/// The `ws://` URL of `path` on the server at `base` (`http://host:port`).
pub fn ws_url(base: &str, path: &str) -> String {
    format!("{}{path}", base.replacen("http://", "ws://", 1))
}

pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Events that arrived while a reply was awaited, in arrival order.
    events: VecDeque<Value>,
    next_id: u64,
    /// The `client_id` the server named in its first reply.
    pub client_id: Option<String>,
}

impl WsClient {
    /// Connects to `/websocket`; fails the test if the upgrade is refused.
    pub async fn connect(s: &TestServer) -> Self {
        Self::try_connect(&s.base, "/websocket")
            .await
            .unwrap_or_else(|e| panic!("WebSocket upgrade refused: {e}"))
    }

    /// Connects to `/websocket` from a socket whose send buffer holds about `bytes`, so a
    /// large frame is written only as fast as the server reads it.
    pub async fn connect_with_send_buffer(s: &TestServer, bytes: u32) -> Self {
        let addr: std::net::SocketAddr = s
            .base
            .trim_start_matches("http://")
            .parse()
            .expect("the server's address");
        let socket = TcpSocket::new_v4().expect("a socket");
        socket
            .set_send_buffer_size(bytes)
            .expect("set the send buffer");
        let tcp = socket.connect(addr).await.expect("connect");
        let (ws, resp) = client_async(ws_url(&s.base, "/websocket"), MaybeTlsStream::Plain(tcp))
            .await
            .unwrap_or_else(|e| panic!("WebSocket upgrade refused: {e}"));
        assert_eq!(resp.status().as_u16(), 101, "upgrade answered {resp:?}");
        WsClient {
            ws,
            events: VecDeque::new(),
            next_id: 0,
            client_id: None,
        }
    }

    /// Attempts an upgrade at `path`.
    pub async fn try_connect(base: &str, path: &str) -> Result<Self, tungstenite::Error> {
        let (ws, resp) = connect_async(ws_url(base, path)).await?;
        assert_eq!(resp.status().as_u16(), 101, "upgrade answered {resp:?}");
        Ok(WsClient {
            ws,
            events: VecDeque::new(),
            next_id: 0,
            client_id: None,
        })
    }

    /// Sends one text frame as is.
    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.try_send_text(text).await.expect("send a text frame");
    }

    /// Sends one text frame as is, answering whether the socket took all of it.
    pub async fn try_send_text(
        &mut self,
        text: impl Into<String>,
    ) -> Result<(), tungstenite::Error> {
        let text: String = text.into();
        self.ws.send(Message::Text(text.into())).await
    }

    /// The next frame within `timeout` (`None` on timeout); pings and pongs are skipped
    /// (tungstenite answers pings while reading).
    pub async fn next_frame(&mut self, timeout: Duration) -> Option<Frame> {
        let deadline = Instant::now() + timeout;
        loop {
            let message = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(None) => return Some(Frame::Ended("end of stream".into())),
                Ok(Some(Err(e))) => return Some(Frame::Ended(e.to_string())),
                Ok(Some(Ok(m))) => m,
            };
            match message {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(t.as_str())
                        .unwrap_or_else(|e| panic!("the server sent non-JSON text {t:?}: {e}"));
                    return Some(Frame::Json(v));
                }
                Message::Close(frame) => {
                    return Some(Frame::Close(frame.map(|f| u16::from(f.code))));
                }
                Message::Binary(b) => panic!("unexpected binary frame of {} bytes", b.len()),
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }

    fn note_client_id(&mut self, reply: &Value) {
        if self.client_id.is_none() {
            self.client_id = reply["client_id"].as_str().map(str::to_owned);
        }
    }

    /// Reads until the next reply (whatever its `msg_id`), keeping events meanwhile.
    pub async fn next_reply(&mut self, what: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_frame(left).await {
                None => panic!("no reply to {what} within {WAIT:?}"),
                Some(Frame::Json(v)) if is_reply(&v) => {
                    self.note_client_id(&v);
                    return v;
                }
                Some(Frame::Json(v)) => self.events.push_back(v),
                Some(other) => {
                    panic!("the socket ended while awaiting the reply to {what}: {other:?}")
                }
            }
        }
    }

    /// Sends `{action, msg_id, data}` and answers the reply with that `msg_id`; a reply to
    /// anything else fails the test (every request gets exactly one reply).
    pub async fn send(&mut self, action: &str, msg_id: impl Into<Value>, data: Value) -> Value {
        let msg_id = msg_id.into();
        let frame = json!({"action": action, "msg_id": msg_id, "data": data});
        self.send_text(frame.to_string()).await;
        let what = format!("{action} {msg_id}");
        let reply = self.next_reply(&what).await;
        assert_eq!(
            reply.get("msg_id"),
            Some(&msg_id),
            "a reply that is not for {what}: {reply}"
        );
        reply
    }

    /// `send` with a fresh `msg_id`.
    pub async fn request(&mut self, action: &str, data: Value) -> Value {
        self.next_id += 1;
        let id = format!("m{}", self.next_id);
        self.send(action, id, data).await
    }

    /// Sends a raw text frame and answers the next reply, whatever its `msg_id`.
    pub async fn send_raw(&mut self, text: &str) -> Value {
        self.send_text(text).await;
        self.next_reply(text).await
    }

    /// `ping` answers `"pong!"`: the connection is open and answering.
    pub async fn assert_alive(&mut self) {
        let reply = self.request("ping", json!({})).await;
        assert_eq!(reply["status"], "okay", "{reply}");
        assert_eq!(reply["result"], "pong!", "{reply}");
    }

    /// `auth`, asserting `"Authed"`.
    pub async fn auth_ok(&mut self, data: Value) {
        let reply = self.request("auth", data.clone()).await;
        assert_eq!(reply["status"], "okay", "auth {data}: {reply}");
        assert_eq!(reply["result"], "Authed", "auth {data}: {reply}");
    }

    /// `subscribe`, asserting an okay reply; answers the reply.
    pub async fn subscribe_ok(&mut self, data: Value) -> Value {
        let reply = self.request("subscribe", data.clone()).await;
        assert_eq!(reply["status"], "okay", "subscribe {data}: {reply}");
        reply
    }

    /// `unsubscribe`, asserting an okay reply.
    pub async fn unsubscribe_ok(&mut self, data: Value) {
        let reply = self.request("unsubscribe", data.clone()).await;
        assert_eq!(reply["status"], "okay", "unsubscribe {data}: {reply}");
    }

    /// The next pushed frame within `timeout`, buffered ones first; `None` on timeout. A reply
    /// nobody asked for, or the socket ending, fails the test.
    pub async fn next_event(&mut self, timeout: Duration) -> Option<Value> {
        if let Some(e) = self.events.pop_front() {
            return Some(e);
        }
        match self.next_frame(timeout).await {
            None => None,
            Some(Frame::Json(v)) if is_reply(&v) => panic!("a reply nobody asked for: {v}"),
            Some(Frame::Json(v)) => Some(v),
            Some(other) => panic!("the socket ended while awaiting an event: {other:?}"),
        }
    }

    /// The next pushed frame; fails the test if none arrives within `WAIT`.
    pub async fn event(&mut self) -> Value {
        self.next_event(WAIT)
            .await
            .unwrap_or_else(|| panic!("no event within {WAIT:?}"))
    }

    /// The next `n` pushed frames.
    pub async fn events(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match self.next_event(WAIT).await {
                Some(e) => out.push(e),
                None => panic!(
                    "only {} of {n} events arrived within {WAIT:?}; last: {:?}",
                    out.len(),
                    out.last()
                ),
            }
        }
        out
    }

    /// Asserts that nothing is pushed within `wait`.
    pub async fn expect_no_event(&mut self, wait: Duration) {
        if let Some(e) = self.next_event(wait).await {
            panic!("expected no event, got {e}");
        }
    }

    /// Reads until the socket ends, within `timeout`: the pushed frames read on the way (the
    /// buffered ones first) and how it ended. Fails the test on timeout.
    pub async fn read_until_close(&mut self, timeout: Duration) -> (Vec<Value>, Ending) {
        let deadline = Instant::now() + timeout;
        let mut seen: Vec<Value> = self.events.drain(..).collect();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_frame(left).await {
                None => panic!(
                    "the socket did not close within {timeout:?} ({} frames read)",
                    seen.len()
                ),
                Some(Frame::Json(v)) => seen.push(v),
                Some(Frame::Close(code)) => return (seen, Ending::Closed(code)),
                Some(Frame::Ended(why)) => return (seen, Ending::Dropped(why)),
            }
        }
    }

    /// Closes the socket with a close frame and reads until the server has answered it.
    pub async fn close(mut self) {
        self.ws.close(None).await.expect("send a close frame");
        let _ = self.read_until_close(WAIT).await;
    }

    /// Starts the close handshake with `code`; [`WsClient::ending`] then shows the server's
    /// answer.
    pub async fn send_close(&mut self, code: u16) {
        let frame = tungstenite::protocol::CloseFrame {
            code: code.into(),
            reason: "done".into(),
        };
        self.ws
            .send(Message::Close(Some(frame)))
            .await
            .expect("send a close frame");
    }

    /// How the socket ends, within `timeout`, ignoring frames on the way.
    pub async fn ending(&mut self, timeout: Duration) -> Ending {
        self.read_until_close(timeout).await.1
    }
}
