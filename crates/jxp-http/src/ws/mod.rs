//! `GET /websocket`: the realtime feed on the API's own port. Each connection is one task that
//! answers requests, writes the connection's queue (replies, events, pings) to the socket and
//! reacts to the hub closing it; when it ends, the hub forgets the connection.

mod protocol;

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::SinkExt;
use jxp_core::{CloseReason, Connection, Credentials, Inbox, Outbound};
use tokio::sync::watch;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::ClientKey;
use protocol::{Request, deauth_frame, error, event_frame, okay, subscribe_reply};

/// WebSocket close codes used here.
const CLOSE_TOO_BIG: u16 = 1009;
const CLOSE_TRY_AGAIN_LATER: u16 = 1013;
const CLOSE_GOING_AWAY: u16 = 1001;

/// Queued frames written per flush at most.
const BATCH: usize = 64;

/// Settings of the WebSocket endpoint.
#[derive(Debug, Clone)]
pub struct WsSettings {
    /// Largest accepted frame; larger ones close the socket with 1009.
    pub max_message_bytes: usize,
    pub ping_interval: Duration,
    /// A socket silent for this long (no pong, no message) is closed.
    pub idle_timeout: Duration,
}

impl Default for WsSettings {
    fn default() -> Self {
        WsSettings {
            max_message_bytes: 65_536,
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Upgrades to a WebSocket, or refuses with 503 when the server holds its maximum.
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    key: ClientKey,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let ws = ws.map_err(|e| ApiError::bad_request(format!("not a WebSocket upgrade: {e}")))?;
    let (conn, inbox) = state.app.hub().connect().await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many WebSocket connections; try again later",
        )
    })?;
    let settings = state.http.ws.clone();
    // Frames somewhat over the limit are still read and refused with 1009 by us; larger ones
    // fail the read with a capacity error, which is also answered with 1009.
    let read_limit = settings.max_message_bytes.saturating_mul(2).max(1024);
    // Small buffers: an idle subscriber should cost kilobytes, not the 128 KiB defaults.
    Ok(ws
        .read_buffer_size(1024)
        .write_buffer_size(8 * 1024)
        .max_message_size(read_limit)
        .max_frame_size(read_limit)
        .on_upgrade(move |socket| run(socket, state, conn, inbox, key, settings)))
}

/// What the connection loop does next.
enum Step {
    Closed(Closed),
    Outgoing(Option<Outbound>),
    Incoming(Option<Result<Message, axum::Error>>),
}

/// Why the hub closed the connection.
enum Closed {
    TooSlow,
    Shutdown,
    HubGone,
}

/// Waits until the hub closes the connection. The receiver is the connection's own, so
/// polling it on every wake-up touches nothing another connection touches (pings and
/// shutdown come through the hub for the same reason).
async fn hub_closed(mut closed: watch::Receiver<Option<CloseReason>>) -> Closed {
    loop {
        if closed.changed().await.is_err() {
            return Closed::HubGone;
        }
        match *closed.borrow() {
            Some(CloseReason::TooSlow) => return Closed::TooSlow,
            Some(CloseReason::Shutdown) => return Closed::Shutdown,
            None => {}
        }
    }
}

/// What writing the queue came to.
enum Written {
    Ok,
    /// The socket failed.
    Failed,
    /// A ping was due and the client has been silent too long.
    Silent,
}

/// One task per connection: it answers requests, writes queued frames (replies, events) and
/// pings, and reacts to the hub closing it, all in one loop, so a connection is one task and
/// its socket is never shared between tasks.
async fn run(
    mut socket: WebSocket,
    state: AppState,
    conn: Connection,
    inbox: Inbox,
    key: ClientKey,
    settings: WsSettings,
) {
    let client_id = conn.client_id.clone();
    let Inbox {
        mut outbound,
        closed,
    } = inbox;
    let mut last_heard = now_ms();
    let idle_ms = i64::try_from(settings.idle_timeout.as_millis()).unwrap_or(i64::MAX);
    // Pinned once: the wait stays registered across frames instead of re-arming per event.
    let mut closing = Box::pin(hub_closed(closed));
    let ending: Option<(u16, &'static str)> = loop {
        let step = tokio::select! {
            biased;
            why = &mut closing => Step::Closed(why),
            item = outbound.recv() => Step::Outgoing(item),
            message = socket.recv() => Step::Incoming(message),
        };
        match step {
            Step::Closed(Closed::TooSlow) => {
                break Some((CLOSE_TRY_AGAIN_LATER, "reading too slowly"));
            }
            Step::Closed(Closed::Shutdown | Closed::HubGone) => {
                break Some((CLOSE_GOING_AWAY, "server shutting down"));
            }
            Step::Outgoing(None) => break None,
            Step::Outgoing(Some(item)) => {
                // Read only when a ping is written: no clock on the path of an event.
                let silent = || now_ms() - last_heard > idle_ms;
                match write_queued(&mut socket, &mut outbound, &client_id, item, silent).await {
                    Written::Ok => {}
                    Written::Failed => break None,
                    Written::Silent => break Some((CLOSE_GOING_AWAY, "no answer to ping")),
                }
            }
            Step::Incoming(message) => {
                let message = match message {
                    Some(Ok(message)) => message,
                    Some(Err(e)) if is_too_big(&e) => {
                        break Some((CLOSE_TOO_BIG, "message too big"));
                    }
                    _ => break None,
                };
                last_heard = now_ms();
                let text = match message {
                    Message::Text(t) => t,
                    Message::Binary(b) if b.len() > settings.max_message_bytes => {
                        break Some((CLOSE_TOO_BIG, "message too big"));
                    }
                    Message::Binary(_) => {
                        let frame = error(
                            None,
                            None,
                            &client_id,
                            "binary frames are not supported; send JSON text",
                            None,
                        );
                        if conn.replies.try_send(Outbound::Reply(frame)).is_err() {
                            break Some((CLOSE_TRY_AGAIN_LATER, "reading too slowly"));
                        }
                        continue;
                    }
                    Message::Close(_) => break None,
                    Message::Ping(_) | Message::Pong(_) => continue,
                };
                if text.len() > settings.max_message_bytes {
                    break Some((CLOSE_TOO_BIG, "message too big"));
                }
                // Boxed: the state of handling a request lives only while one is handled,
                // not in every idle connection's task.
                let reply = Box::pin(handle(&state, &conn, &key, &client_id, text.as_str())).await;
                if let Some(frame) = reply
                    && conn.replies.try_send(Outbound::Reply(frame)).is_err()
                {
                    break Some((CLOSE_TRY_AGAIN_LATER, "reading too slowly"));
                }
            }
        }
    };
    if let Some((code, reason)) = ending {
        let close = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = socket.send(close).await;
    }
}

/// Writes `first` and whatever else is already queued, then flushes once. A ping found on
/// the way closes the connection instead when the client has been `silent` too long.
async fn write_queued(
    socket: &mut WebSocket,
    outbound: &mut tokio::sync::mpsc::Receiver<Outbound>,
    client_id: &str,
    first: Outbound,
    silent: impl Fn() -> bool,
) -> Written {
    let mut next = Some(first);
    let mut fed = 0;
    while let Some(item) = next.take() {
        if matches!(item, Outbound::Ping) && silent() {
            return Written::Silent;
        }
        if socket.feed(to_message(client_id, item)).await.is_err() {
            return Written::Failed;
        }
        fed += 1;
        if fed <= BATCH {
            next = outbound.try_recv().ok();
        }
    }
    if socket.flush().await.is_ok() {
        Written::Ok
    } else {
        Written::Failed
    }
}

/// Whether a read failed because the frame was over the read limit.
fn is_too_big(e: &axum::Error) -> bool {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<tungstenite::Error>())
        .is_some_and(|t| matches!(t, tungstenite::Error::Capacity(_)))
}

/// The text frame for one queued item.
fn to_message(client_id: &str, item: Outbound) -> Message {
    match item {
        Outbound::Event(body) => Message::Text(event_frame(client_id, &body).into()),
        Outbound::Deauth(reason) => Message::Text(deauth_frame(client_id, &reason).into()),
        Outbound::Reply(frame) => Message::Text(frame.into()),
        Outbound::Ping => Message::Ping(Vec::new().into()),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Answers one text frame; `None` when the hub queues the reply itself (subscribe).
async fn handle(
    state: &AppState,
    conn: &Connection,
    key: &ClientKey,
    client_id: &str,
    text: &str,
) -> Option<String> {
    let env = match protocol::parse(text) {
        Ok(env) => env,
        Err(bad) => {
            return Some(error(
                bad.action.as_deref(),
                bad.msg_id.as_ref(),
                client_id,
                &bad.message,
                None,
            ));
        }
    };
    let (action, msg_id) = (env.action.as_str(), &env.msg_id);
    let fail = |message: &str| Some(error(Some(action), Some(msg_id), client_id, message, None));
    match env.request {
        Request::Ping => Some(okay(action, msg_id, client_id, "pong!".into())),
        Request::Auth(creds) => {
            // A password attempt always counts, as on `/login`; a token or key only when wrong.
            let limiter = state.app.login_limiter();
            let allowed = match creds {
                Credentials::Basic { .. } => limiter.check(&key.0),
                _ => limiter.peek(&key.0),
            };
            if allowed.is_err() {
                return fail("Too many attempts; try again later");
            }
            match state.app.authenticate_connection(conn, &creds).await {
                Ok(()) => Some(okay(action, msg_id, client_id, "Authed".into())),
                Err(_) => {
                    if !matches!(creds, Credentials::Basic { .. }) {
                        limiter.charge(&key.0);
                    }
                    fail("Unable to authenticate")
                }
            }
        }
        Request::Subscribe(req) => {
            let (msg_id, client_id, echo) = (msg_id.clone(), client_id.to_owned(), req.clone());
            let respond =
                Box::new(move |result| subscribe_reply(&msg_id, &client_id, &echo, result));
            match conn.subscribe(req, respond) {
                Ok(()) => None,
                Err(_) => fail("Server error"),
            }
        }
        Request::Unsubscribe(req) => {
            let what = match &req.id {
                Some(id) => format!("{}/{id}", req.model),
                None => req.model.clone(),
            };
            match conn.unsubscribe(req).await {
                Ok(Ok(())) => Some(okay(
                    action,
                    msg_id,
                    client_id,
                    format!("Unsubscribed from {what}").into(),
                )),
                Ok(Err(message)) => fail(&message),
                Err(_) => fail("Server error"),
            }
        }
    }
}
