//! `GET /websocket`: the realtime feed on the API's own port. Each connection is a pair of
//! tasks: one reads and answers requests, one writes the connection's queue (replies, events,
//! pings) to the socket. When either ends, both do, and the hub forgets the connection.

mod protocol;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
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
    // Frames somewhat over the limit are still read, so they can be refused with 1009.
    let read_limit = settings.max_message_bytes.saturating_mul(2).max(1024);
    // Small buffers: an idle subscriber should cost kilobytes, not the 128 KiB defaults.
    Ok(ws
        .read_buffer_size(1024)
        .write_buffer_size(8 * 1024)
        .max_message_size(read_limit)
        .max_frame_size(read_limit)
        .on_upgrade(move |socket| run(socket, state, conn, inbox, key, settings)))
}

/// What ended a connection from the reading side.
enum Ending {
    /// The client closed or the socket failed.
    Gone,
    Close(u16, &'static str),
}

async fn run(
    socket: WebSocket,
    state: AppState,
    conn: Connection,
    inbox: Inbox,
    key: ClientKey,
    settings: WsSettings,
) {
    let (mut sink, mut stream) = socket.split();
    let client_id = conn.client_id.clone();
    let Inbox {
        mut outbound,
        mut closed,
    } = inbox;
    let last_heard = Arc::new(AtomicI64::new(now_ms()));
    let (stop_tx, stop_rx) = watch::channel::<Option<(u16, &'static str)>>(None);

    let writer = {
        let client_id = client_id.clone();
        let mut stop_rx = stop_rx.clone();
        let mut shutdown = state.shutdown.clone();
        let mut ping = state.ping.clone();
        let last_heard = last_heard.clone();
        let settings = settings.clone();
        async move {
            let close_with = |code: u16, reason: &'static str| {
                Message::Close(Some(CloseFrame {
                    code,
                    reason: reason.into(),
                }))
            };
            loop {
                let frame = tokio::select! {
                    item = outbound.recv() => match item {
                        Some(item) => to_message(&client_id, item),
                        None => break,
                    },
                    _ = closed.changed() => {
                        if *closed.borrow() == Some(CloseReason::TooSlow) {
                            let _ = sink.send(close_with(CLOSE_TRY_AGAIN_LATER, "reading too slowly")).await;
                        }
                        break;
                    }
                    _ = shutdown.changed() => {
                        let _ = sink.send(close_with(CLOSE_GOING_AWAY, "server shutting down")).await;
                        break;
                    }
                    _ = stop_rx.changed() => {
                        let reason = *stop_rx.borrow();
                        if let Some((code, text)) = reason {
                            let _ = sink.send(close_with(code, text)).await;
                        }
                        break;
                    }
                    _ = ping.changed() => {
                        let silent_for = now_ms() - last_heard.load(Ordering::Relaxed);
                        if silent_for > i64::try_from(settings.idle_timeout.as_millis()).unwrap_or(i64::MAX) {
                            let _ = sink.send(close_with(CLOSE_GOING_AWAY, "no answer to ping")).await;
                            break;
                        }
                        Message::Ping(Vec::new().into())
                    }
                };
                if sink.feed(frame).await.is_err() {
                    break;
                }
                // Whatever else is already queued goes out with the same flush.
                let mut failed = false;
                for _ in 0..BATCH {
                    let Ok(item) = outbound.try_recv() else {
                        break;
                    };
                    if sink.feed(to_message(&client_id, item)).await.is_err() {
                        failed = true;
                        break;
                    }
                }
                if failed || sink.flush().await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        }
    };

    let reader = {
        let client_id = client_id.clone();
        let replies = conn.replies.clone();
        let last_heard = last_heard.clone();
        let conn = &conn;
        let state = &state;
        let key = &key;
        async move {
            let ending = loop {
                let message = match stream.next().await {
                    Some(Ok(message)) => message,
                    Some(Err(e)) if is_too_big(&e) => {
                        break Ending::Close(CLOSE_TOO_BIG, "message too big");
                    }
                    _ => break Ending::Gone,
                };
                last_heard.store(now_ms(), Ordering::Relaxed);
                let text = match message {
                    Message::Text(t) => t,
                    Message::Binary(b) if b.len() > settings.max_message_bytes => {
                        break Ending::Close(CLOSE_TOO_BIG, "message too big");
                    }
                    Message::Binary(_) => {
                        let frame = error(
                            None,
                            None,
                            &client_id,
                            "binary frames are not supported; send JSON text",
                            None,
                        );
                        if replies.try_send(Outbound::Reply(frame)).is_err() {
                            break Ending::Close(CLOSE_TRY_AGAIN_LATER, "reading too slowly");
                        }
                        continue;
                    }
                    Message::Close(_) => break Ending::Gone,
                    Message::Ping(_) | Message::Pong(_) => continue,
                };
                if text.len() > settings.max_message_bytes {
                    break Ending::Close(CLOSE_TOO_BIG, "message too big");
                }
                // Boxed: the state of handling a request lives only while one is handled,
                // not in every idle connection's task.
                let reply = Box::pin(handle(state, conn, key, &client_id, text.as_str())).await;
                if let Some(frame) = reply
                    && replies.try_send(Outbound::Reply(frame)).is_err()
                {
                    break Ending::Close(CLOSE_TRY_AGAIN_LATER, "reading too slowly");
                }
            };
            if let Ending::Close(code, reason) = ending {
                let _ = stop_tx.send(Some((code, reason)));
            } else {
                let _ = stop_tx.send(Some((1000, "bye")));
            }
        }
    };

    tokio::pin!(writer);
    tokio::pin!(reader);
    tokio::select! {
        () = &mut writer => {}
        () = &mut reader => { writer.await; }
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
