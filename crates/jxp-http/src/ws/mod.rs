//! `GET /websocket`: the realtime feed on the API's own port. Each connection has a
//! [`link::Link`], its writer, which the hub pushes events into directly, and one task that
//! reads and answers the client's requests, writes out what the socket could not take at
//! once, and closes the connection when the hub or the writer ends it.

mod link;
mod protocol;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Version, header};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use jxp_core::{Connection, CoreError, Hub, Outbound, Outlet};
use tokio_tungstenite::WebSocketStream;
use tungstenite::protocol::{Message, Role, WebSocketConfig};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::ClientKey;
use link::{Duplex, Ending, Link};
use protocol::{Request as WsRequest, error, okay, subscribe_reply};

/// WebSocket close codes used here.
const CLOSE_TOO_BIG: u16 = 1009;
const CLOSE_TRY_AGAIN_LATER: u16 = 1013;
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_PROTOCOL_ERROR: u16 = 1002;
const CLOSE_INVALID_DATA: u16 = 1007;

/// How long a closing connection may take to write its last frames and close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(30);

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

/// Upgrades to a WebSocket (RFC 6455 over HTTP/1.1); refuses with 403 a browser page of an
/// origin that may not call the API, and with 503 when the server holds its maximum.
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    key: ClientKey,
    mut request: Request,
) -> Result<Response, ApiError> {
    if !crate::cors::ws_origin_allowed(
        &state.http.cors,
        request.headers(),
        &state.app.settings().auth.api_url,
    ) {
        return Err(ApiError::forbidden(
            "this page's origin may not open a WebSocket here; see CORS_ORIGINS",
        ));
    }
    let accept = accept_key(request.version(), request.headers())
        .map_err(|why| ApiError::bad_request(format!("not a WebSocket upgrade: {why}")))?;
    let on_upgrade = request
        .extensions_mut()
        .remove::<OnUpgrade>()
        .ok_or_else(|| {
            ApiError::bad_request("not a WebSocket upgrade: connection cannot be upgraded")
        })?;
    let hub = state.app.hub();
    let settings = state.http.ws.clone();
    let client_id = Hub::new_client_id()?;
    let idle_ms = i64::try_from(settings.idle_timeout.as_millis()).unwrap_or(i64::MAX);
    let link = Arc::new(Link::new(client_id.clone(), hub.send_queue(), idle_ms));
    let outlet: Arc<dyn Outlet> = link.clone();
    let conn = hub.connect(client_id, outlet)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many WebSocket connections; try again later",
        )
    })?;
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                link.attach(TokioIo::new(upgraded));
                run(link, state, conn, key, settings).await;
            }
            Err(e) => tracing::debug!(error = %e, "WebSocket upgrade failed"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// The `Sec-WebSocket-Accept` answer to a valid upgrade request, or what is wrong with it.
fn accept_key(version: Version, headers: &HeaderMap) -> Result<HeaderValue, &'static str> {
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if version != Version::HTTP_11 {
        return Err("WebSocket upgrades need HTTP/1.1");
    }
    if !has(header::CONNECTION, "upgrade") {
        return Err("Connection header did not include 'upgrade'");
    }
    if !has(header::UPGRADE, "websocket") {
        return Err("Upgrade header did not include 'websocket'");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err("Sec-WebSocket-Version header did not include '13'");
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or("Sec-WebSocket-Key header missing")?;
    HeaderValue::from_str(&tungstenite::handshake::derive_accept_key(key.as_bytes()))
        .map_err(|_| "Sec-WebSocket-Key header is not valid")
}

/// How the connection's loop ended.
enum Step {
    /// The writer stopped taking frames.
    Ended(Ending),
    Incoming(Option<Result<Message, tungstenite::Error>>),
}

/// One task per connection: it answers requests and closes the connection when it ends. Events
/// do not pass through it: the hub writes them to the socket through the link, and this task
/// only writes out what the socket could not take at once (inside `poll_ending`).
async fn run(
    link: Arc<Link>,
    state: AppState,
    conn: Connection,
    key: ClientKey,
    settings: WsSettings,
) {
    let client_id = conn.client_id.clone();
    // Frames somewhat over the limit are still read and refused with 1009 by us; larger ones
    // fail the read with a capacity error, which is also answered with 1009.
    let read_limit = settings.max_message_bytes.saturating_mul(2).max(1024);
    // Small buffers: an idle subscriber should cost kilobytes, not the 128 KiB defaults.
    let config = WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_message_size(Some(read_limit))
        .max_frame_size(Some(read_limit));
    let mut socket =
        WebSocketStream::from_raw_socket(Duplex(link.clone()), Role::Server, Some(config)).await;
    metrics::gauge!("jxp_ws_connections_open").increment(1.0);
    let ending: Option<(u16, &'static str)> = loop {
        let step = tokio::select! {
            biased;
            why = std::future::poll_fn(|cx| link.poll_ending(cx)) => Step::Ended(why),
            message = socket.next() => Step::Incoming(message),
        };
        match step {
            Step::Ended(Ending::TooSlow) => {
                break Some((CLOSE_TRY_AGAIN_LATER, "reading too slowly"));
            }
            Step::Ended(Ending::Shutdown) => {
                break Some((CLOSE_GOING_AWAY, "server shutting down"));
            }
            Step::Ended(Ending::Silent) => break Some((CLOSE_GOING_AWAY, "no answer to ping")),
            Step::Ended(Ending::Broken | Ending::Closing) => break None,
            Step::Incoming(message) => {
                let message = match message {
                    Some(Ok(message)) => message,
                    Some(Err(e)) => break refusal(&e),
                    None => break None,
                };
                link.heard();
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
                            &[],
                        );
                        if link.push(Outbound::Reply(frame)).is_err() {
                            break Some((CLOSE_TRY_AGAIN_LATER, "reading too slowly"));
                        }
                        continue;
                    }
                    Message::Close(_) => {
                        // tungstenite has queued its reply, the client's code echoed (RFC 6455
                        // §5.5.1); flushing hands it to the link, which writes it after the
                        // frames queued before it, then closes the socket.
                        let _ = socket.flush().await;
                        link.finish(None, true, CLOSE_WAIT).await;
                        closed("client");
                        return;
                    }
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                };
                if text.len() > settings.max_message_bytes {
                    break Some((CLOSE_TOO_BIG, "message too big"));
                }
                // Boxed: the state of handling a request lives only while one is handled,
                // not in every idle connection's task.
                let reply = Box::pin(handle(&state, &conn, &key, &client_id, text.as_str())).await;
                if let Some(frame) = reply
                    && link.push(Outbound::Reply(frame)).is_err()
                {
                    break Some((CLOSE_TRY_AGAIN_LATER, "reading too slowly"));
                }
            }
        }
    };
    let code = ending.map_or("gone", |(code, _)| close_label(code));
    link.finish(ending, false, CLOSE_WAIT).await;
    closed(code);
}

/// Counts a closed socket by who or what closed it: the server's close code, `client` for a
/// client's close frame, `gone` for a socket that ended without one.
fn closed(code: &'static str) {
    metrics::gauge!("jxp_ws_connections_open").decrement(1.0);
    metrics::counter!("jxp_ws_closed_total", "code" => code).increment(1);
}

/// A close code as a label value, from the fixed set the server sends.
fn close_label(code: u16) -> &'static str {
    match code {
        1001 => "1001",
        1002 => "1002",
        1007 => "1007",
        1008 => "1008",
        1009 => "1009",
        1011 => "1011",
        1013 => "1013",
        _ => "other",
    }
}

/// The close frame that answers a failed read, if the client is still there to read it: a
/// frame over the size limit gets 1009, a text frame that is not UTF-8 1007, and any other
/// breach of RFC 6455 (an unmasked frame, reserved bits or opcodes, a control frame that is
/// fragmented or over 125 bytes) 1002. A socket that failed or ended gets none.
fn refusal(e: &tungstenite::Error) -> Option<(u16, &'static str)> {
    use tungstenite::error::ProtocolError;
    match e {
        tungstenite::Error::Capacity(_) => Some((CLOSE_TOO_BIG, "message too big")),
        tungstenite::Error::Utf8(_) => Some((CLOSE_INVALID_DATA, "text is not valid UTF-8")),
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        tungstenite::Error::Protocol(_) => Some((CLOSE_PROTOCOL_ERROR, "protocol error")),
        _ => None,
    }
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
                &[],
            ));
        }
    };
    let (action, msg_id) = (env.action.as_str(), &env.msg_id);
    let fail = |message: &str| Some(error(Some(action), Some(msg_id), client_id, message, &[]));
    match env.request {
        WsRequest::Ping => Some(okay(action, msg_id, client_id, "pong!".into())),
        WsRequest::Auth(creds) => {
            match state
                .app
                .authenticate_connection(conn, &creds, &key.0)
                .await
            {
                Ok(()) => Some(okay(action, msg_id, client_id, "Authed".into())),
                Err(CoreError::RateLimited { .. }) => fail("Too many attempts; try again later"),
                Err(_) => fail("Unable to authenticate"),
            }
        }
        WsRequest::Subscribe(req) => {
            let (msg_id, client_id, echo) = (msg_id.clone(), client_id.to_owned(), req.clone());
            let respond =
                Box::new(move |result| subscribe_reply(&msg_id, &client_id, &echo, result));
            match conn.subscribe(req, respond) {
                Ok(()) => None,
                Err(_) => fail("Server error"),
            }
        }
        WsRequest::Unsubscribe(req) => {
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

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        h.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        h
    }

    #[test]
    fn read_failures_are_answered_with_their_close_code() {
        use tungstenite::error::{CapacityError, ProtocolError};
        let code = |e: tungstenite::Error| refusal(&e).map(|(code, _)| code);
        let too_big = CapacityError::MessageTooLong {
            size: 2,
            max_size: 1,
        };
        assert_eq!(code(tungstenite::Error::Capacity(too_big)), Some(1009));
        assert_eq!(code(tungstenite::Error::Utf8("bad".into())), Some(1007));
        for violation in [
            ProtocolError::UnmaskedFrameFromClient,
            ProtocolError::NonZeroReservedBits,
            ProtocolError::UnknownDataFrameType(3),
            ProtocolError::UnknownControlFrameType(11),
            ProtocolError::ControlFrameTooBig,
            ProtocolError::FragmentedControlFrame,
        ] {
            assert_eq!(code(tungstenite::Error::Protocol(violation)), Some(1002));
        }
        let reset = ProtocolError::ResetWithoutClosingHandshake;
        assert_eq!(code(tungstenite::Error::Protocol(reset)), None);
        assert_eq!(code(tungstenite::Error::ConnectionClosed), None);
    }

    #[test]
    fn a_valid_upgrade_gets_the_rfc_6455_accept_key() {
        // The example of RFC 6455, section 1.3.
        let accept = accept_key(Version::HTTP_11, &upgrade_headers()).unwrap();
        assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn an_incomplete_upgrade_is_refused_with_the_reason() {
        assert!(accept_key(Version::HTTP_2, &upgrade_headers()).is_err());
        for (name, value, reason) in [
            (header::CONNECTION, Some("keep-alive"), "Connection"),
            (header::UPGRADE, Some("h2c"), "Upgrade"),
            (header::SEC_WEBSOCKET_VERSION, Some("8"), "Version"),
            (header::SEC_WEBSOCKET_KEY, None, "Key"),
        ] {
            let mut h = upgrade_headers();
            match value {
                Some(v) => h.insert(name, HeaderValue::from_static(v)),
                None => h.remove(name),
            };
            let why = accept_key(Version::HTTP_11, &h).unwrap_err();
            assert!(why.contains(reason), "{why}");
        }
    }
}
