//! One WebSocket subscriber: connect, `auth`, `subscribe`, then a read loop that only parses
//! the few fields of each pushed event it needs and keeps them in its own list.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async_with_config};

use super::stats::{Kind, Rx};
use super::unix_us;
use crate::client::{error_chain, snippet};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Largest frame accepted from the server.
const MAX_MESSAGE: usize = 1 << 20;

/// What every subscriber of a run does.
#[derive(Debug)]
pub struct SubConfig {
    /// `ws://host:port/websocket`, derived from the checked loopback base.
    pub url: String,
    /// `data` of the `auth` request (`{"token"}` or `{"apikey"}`); `None`: no auth.
    pub auth: Option<Value>,
    pub model: String,
    /// The run's tag, sent in `foo` of every write.
    pub tag: String,
    /// Limit on one connection's connect + auth + subscribe.
    pub handshake_timeout: Duration,
}

/// Why a subscriber could not be set up.
#[derive(Debug, Clone)]
pub struct SubError {
    pub message: String,
    /// The OS error of a failed connect (24 = EMFILE, 99 = EADDRNOTAVAIL, ...).
    pub os_error: Option<i32>,
}

impl SubError {
    fn new(message: impl Into<String>) -> Self {
        SubError {
            message: message.into(),
            os_error: None,
        }
    }

    fn from_ws(what: &str, e: &tungstenite::Error) -> Self {
        let os_error = match e {
            tungstenite::Error::Io(io) => io.raw_os_error(),
            _ => None,
        };
        SubError {
            message: format!("{what}: {}", error_chain(e)),
            os_error,
        }
    }
}

/// What a subscriber saw while it was reading.
#[derive(Debug, Default)]
pub struct ConnLog {
    /// The handshake succeeded: this connection counts in the expected deliveries.
    pub subscribed: bool,
    /// Change events of the subscribed model, in arrival order.
    pub events: Vec<Rx>,
    /// Set when the connection ended before the run stopped it: why.
    pub ended: Option<String>,
    /// Set when the server sent a `deauth` event: its reason.
    pub deauth: Option<String>,
}

/// A text frame, as far as the benchmark cares.
#[derive(Debug, PartialEq)]
pub enum Frame {
    /// The answer to a request: `msg_id`, `status == "okay"`, the error message if any.
    Reply {
        msg_id: Value,
        ok: bool,
        message: String,
    },
    /// A change event of the subscribed model.
    Event(Rx),
    /// `{"data":{"event":"deauth","reason"}}`.
    Deauth(String),
    /// Anything else (another model's event, unknown frames).
    Other,
}

/// The fields of a text frame the benchmark reads; serde skips every other one without
/// building it, so reading an event costs a few small values instead of a whole JSON tree.
/// The values stay loosely typed so that an odd value reads as absent, not as a bad frame.
#[derive(Deserialize)]
struct Wire {
    msg_id: Option<Value>,
    status: Option<Value>,
    message: Option<Value>,
    data: Option<WireData>,
}

#[derive(Deserialize)]
struct WireData {
    event: Option<Value>,
    modelname: Option<Value>,
    seq: Option<Value>,
    reason: Option<Value>,
    item: Option<WireItem>,
}

#[derive(Deserialize)]
struct WireItem {
    foo: Option<Value>,
    bar: Option<Value>,
    n: Option<Value>,
}

/// Reads one text frame: only `msg_id`/`status`/`message` of replies and `event`,
/// `modelname`, `seq`, `item.foo`/`n`/`bar` of events.
pub fn parse_frame(text: &str, model: &str, tag: &str, recv_us: u64) -> Frame {
    let Ok(v) = serde_json::from_str::<Wire>(text) else {
        return Frame::Other;
    };
    if let Some(msg_id) = v.msg_id {
        let ok = v.status.as_ref().and_then(Value::as_str) == Some("okay");
        let message = v
            .message
            .as_ref()
            .and_then(Value::as_str)
            .map_or_else(|| snippet(text), str::to_owned);
        return Frame::Reply {
            msg_id,
            ok,
            message,
        };
    }
    let Some(data) = v.data else {
        return Frame::Other;
    };
    let Some(name) = data.event.as_ref().and_then(Value::as_str) else {
        return Frame::Other;
    };
    if name == "deauth" {
        let reason = data.reason.as_ref().and_then(Value::as_str).unwrap_or("");
        return Frame::Deauth(reason.to_owned());
    }
    let Some(kind) = Kind::from_event(name) else {
        return Frame::Other;
    };
    if data.modelname.as_ref().and_then(Value::as_str) != Some(model) {
        return Frame::Other;
    }
    let item = data.item.as_ref();
    Frame::Event(Rx {
        recv_us,
        seq: data.seq.as_ref().and_then(Value::as_u64),
        kind,
        n: item.and_then(|i| i.n.as_ref()).and_then(whole_u32),
        bar_us: item
            .and_then(|i| i.bar.as_ref())
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok()),
        ours: item.and_then(|i| i.foo.as_ref()).and_then(Value::as_str) == Some(tag),
    })
}

/// A JSON number that is a whole number in `u32` range (`7` or `7.0`).
fn whole_u32(v: &Value) -> Option<u32> {
    if let Some(u) = v.as_u64() {
        return u32::try_from(u).ok();
    }
    let f = v.as_f64()?;
    (f >= 0.0 && f <= f64::from(u32::MAX) && f.fract() == 0.0).then_some(f as u32)
}

/// Small buffers: tens of thousands of these connections share the machine with the server.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// The life of one subscriber: handshake (at most `gate`'s permits at once), report it on
/// `ready`, then record events until `stop` turns true or the connection ends.
pub async fn subscriber(
    cfg: Arc<SubConfig>,
    gate: Arc<Semaphore>,
    ready: mpsc::UnboundedSender<Result<(), SubError>>,
    seen: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> ConnLog {
    let handshake = {
        let Ok(_permit) = gate.acquire().await else {
            return ConnLog::default();
        };
        match timeout(cfg.handshake_timeout, handshake(&cfg)).await {
            Ok(r) => r,
            Err(_) => Err(SubError::new(format!(
                "no subscription within {} s",
                cfg.handshake_timeout.as_secs()
            ))),
        }
    };
    let mut ws = match handshake {
        Ok(ws) => {
            let _ = ready.send(Ok(()));
            ws
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return ConnLog::default();
        }
    };
    drop(ready);

    let mut log = ConnLog {
        subscribed: true,
        ..ConnLog::default()
    };
    // Pinned once: the wait stays registered instead of being made again for every frame.
    let stopped = stop.wait_for(|stop| *stop);
    tokio::pin!(stopped);
    loop {
        let next = tokio::select! {
            next = ws.next() => next,
            _ = &mut stopped => break,
        };
        match next {
            Some(Ok(Message::Text(text))) => {
                match parse_frame(text.as_str(), &cfg.model, &cfg.tag, unix_us()) {
                    Frame::Event(rx) => {
                        if rx.ours {
                            seen.fetch_add(1, Ordering::Relaxed);
                        }
                        log.events.push(rx);
                    }
                    Frame::Deauth(reason) => {
                        log.deauth.get_or_insert(reason);
                    }
                    Frame::Reply { .. } | Frame::Other => {}
                }
            }
            Some(Ok(Message::Close(frame))) => {
                log.ended = Some(match frame {
                    Some(f) => format!("closed by the server: {} {}", u16::from(f.code), f.reason),
                    None => "closed by the server".to_owned(),
                });
                break;
            }
            // Pings are answered by tungstenite on the next read.
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                log.ended = Some(format!("connection failed: {}", error_chain(&e)));
                break;
            }
            None => {
                log.ended = Some("connection closed".to_owned());
                break;
            }
        }
    }
    // Dropping the socket closes it; a close handshake per connection would only slow down
    // the end of runs with many thousands of them.
    log
}

/// Connect, `auth` (if configured), `subscribe`; each request waits for its reply.
pub async fn handshake(cfg: &SubConfig) -> Result<Ws, SubError> {
    let (mut ws, _response) = connect_async_with_config(cfg.url.as_str(), Some(ws_config()), true)
        .await
        .map_err(|e| SubError::from_ws(&format!("connecting to {}", cfg.url), &e))?;
    if let Some(auth) = &cfg.auth {
        request(&mut ws, cfg, "auth", 1, auth.clone()).await?;
    }
    request(&mut ws, cfg, "subscribe", 2, json!({ "model": cfg.model })).await?;
    Ok(ws)
}

async fn request(
    ws: &mut Ws,
    cfg: &SubConfig,
    action: &str,
    msg_id: u64,
    data: Value,
) -> Result<(), SubError> {
    let frame = json!({ "action": action, "msg_id": msg_id, "data": data }).to_string();
    ws.send(Message::text(frame))
        .await
        .map_err(|e| SubError::from_ws(&format!("sending {action}"), &e))?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                if let Frame::Reply {
                    msg_id: id,
                    ok,
                    message,
                } = parse_frame(text.as_str(), &cfg.model, &cfg.tag, 0)
                    && id.as_u64() == Some(msg_id)
                {
                    return if ok {
                        Ok(())
                    } else {
                        Err(SubError::new(format!("{action} refused: {message}")))
                    };
                }
            }
            Some(Ok(Message::Close(frame))) => {
                let why = frame.map_or_else(String::new, |f| {
                    format!(": {} {}", u16::from(f.code), f.reason)
                });
                return Err(SubError::new(format!(
                    "the server closed the connection during {action}{why}"
                )));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(SubError::from_ws(&format!("waiting for {action}"), &e)),
            None => {
                return Err(SubError::new(format!(
                    "the connection ended during {action}"
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: &str = "jxpb-1f";

    #[test]
    fn parses_events() -> anyhow::Result<()> {
        let text = r#"{"client_id":"c1","data":{"event":"put","modelname":"test","item":{"_id":"a","foo":"jxpb-1f","bar":"1700000000123456","n":7.0},"user_id":"u","user_name":null,"user_email":null,"seq":42}}"#;
        assert_eq!(
            parse_frame(text, "test", TAG, 99),
            Frame::Event(Rx {
                recv_us: 99,
                seq: Some(42),
                kind: Kind::Update,
                n: Some(7),
                bar_us: Some(1_700_000_000_123_456),
                ours: true,
            })
        );
        let foreign =
            r#"{"data":{"event":"del","modelname":"test","item":{"foo":"x","n":3},"seq":5}}"#;
        let Frame::Event(rx) = parse_frame(foreign, "test", TAG, 1) else {
            anyhow::bail!("not an event");
        };
        assert_eq!(
            (rx.kind, rx.n, rx.bar_us, rx.ours, rx.seq),
            (Kind::Delete, Some(3), None, false, Some(5))
        );
        Ok(())
    }

    #[test]
    fn odd_fields_are_tolerated() -> anyhow::Result<()> {
        let text = r#"{"data":{"event":"post","modelname":"test","item":{"foo":"jxpb-1f","bar":"soon","n":-1}}}"#;
        let Frame::Event(rx) = parse_frame(text, "test", TAG, 1) else {
            anyhow::bail!("not an event");
        };
        assert_eq!((rx.seq, rx.n, rx.bar_us), (None, None, None));
        assert_eq!(whole_u32(&json!(2.5)), None);
        assert_eq!(whole_u32(&json!(5_000_000_000u64)), None);
        assert_eq!(whole_u32(&json!(12)), Some(12));
        Ok(())
    }

    #[test]
    fn other_frames() {
        let other_model = r#"{"data":{"event":"post","modelname":"other","item":{},"seq":1}}"#;
        assert_eq!(parse_frame(other_model, "test", TAG, 0), Frame::Other);
        assert_eq!(parse_frame("not json", "test", TAG, 0), Frame::Other);
        assert_eq!(
            parse_frame(r#"{"data":{"event":"weird"}}"#, "test", TAG, 0),
            Frame::Other
        );
        assert_eq!(
            parse_frame(
                r#"{"client_id":"c","data":{"event":"deauth","reason":"expired"}}"#,
                "test",
                TAG,
                0
            ),
            Frame::Deauth("expired".into())
        );
    }

    #[test]
    fn parses_replies() {
        let ok =
            r#"{"action":"auth","status":"okay","msg_id":1,"client_id":"c","result":"Authed"}"#;
        assert!(matches!(
            parse_frame(ok, "test", TAG, 0),
            Frame::Reply { msg_id, ok: true, .. } if msg_id == json!(1)
        ));
        let err = r#"{"action":"auth","status":"error","msg_id":1,"client_id":"c","message":"Too many attempts; try again later"}"#;
        assert_eq!(
            parse_frame(err, "test", TAG, 0),
            Frame::Reply {
                msg_id: json!(1),
                ok: false,
                message: "Too many attempts; try again later".into()
            }
        );
    }
}
