//! The WebSocket upgrade's `Origin` check: browsers open sockets to any site without asking
//! CORS, so the server refuses a page of an origin that may not call the API (403, before the
//! upgrade), and lets through clients that send no `Origin` and pages of its own origin.

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error, Message};

use super::{APP, STRANGER};
use crate::harness::TestServer;
use crate::realtime::client::{WAIT, ws_url};

/// How an upgrade from `origin` (none: a non-browser client) was answered: a socket that
/// answers a ping, or the refusal's status and JSON body.
async fn open_from(s: &TestServer, origin: Option<&str>) -> Result<(), (StatusCode, Value)> {
    let mut request = ws_url(&s.base, "/websocket").into_client_request().unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    let mut ws = match connect_async(request).await {
        Ok((ws, _)) => ws,
        Err(Error::Http(resp)) => {
            let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
            let body = resp.body().as_deref().unwrap_or_default();
            return Err((status, serde_json::from_slice(body).unwrap_or(Value::Null)));
        }
        Err(e) => panic!("upgrade from {origin:?} failed: {e}"),
    };
    let ping = json!({"action": "ping", "msg_id": "p", "data": {}});
    ws.send(Message::Text(ping.to_string().into()))
        .await
        .unwrap();
    let reply = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("a reply to ping")
        .expect("an open socket")
        .unwrap();
    let reply: Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
    assert_eq!(reply["result"], "pong!", "{reply}");
    Ok(())
}

#[track_caller]
fn assert_refused(got: Result<(), (StatusCode, Value)>, origin: &str) {
    let (status, body) = got.expect_err(origin);
    assert_eq!(status, StatusCode::FORBIDDEN, "{origin}: {body}");
    assert!(body["code"].is_string(), "{origin}: {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("CORS_ORIGINS"), "{origin}: {body}");
}

#[tokio::test]
async fn with_a_list_only_listed_origins_and_non_browsers_open_sockets() {
    let s = TestServer::open_with(&[("CORS_ORIGINS", APP)]).await;
    open_from(&s, Some(APP)).await.unwrap();
    open_from(&s, None).await.unwrap();
    // The server's own pages are same-origin whatever the list says.
    open_from(&s, Some(&s.base)).await.unwrap();
    for origin in [STRANGER, "http://app.example:3001", "null"] {
        assert_refused(open_from(&s, Some(origin)).await, origin);
    }
}

#[tokio::test]
async fn unset_allows_only_the_server_s_own_origin() {
    let s = TestServer::open().await;
    open_from(&s, None).await.unwrap();
    open_from(&s, Some(&s.base)).await.unwrap();
    // Another port of the same host is another origin, and `localhost` is not `127.0.0.1`
    // unless API_URL says so.
    let port: u16 = s.base.rsplit(':').next().unwrap().parse().unwrap();
    let other_port = format!("http://127.0.0.1:{}", port.wrapping_add(1).max(1));
    for origin in [APP, STRANGER, other_port.as_str(), "null"] {
        assert_refused(open_from(&s, Some(origin)).await, origin);
    }
}

#[tokio::test]
async fn api_url_names_the_server_s_public_origin() {
    // Behind a proxy that passes another Host, API_URL still says which pages are the server's.
    let s = TestServer::open_with(&[("API_URL", "https://api.example.com/v1")]).await;
    open_from(&s, Some("https://api.example.com"))
        .await
        .unwrap();
    assert_refused(
        open_from(&s, Some("http://api.example.com")).await,
        "http://api.example.com",
    );
}

#[tokio::test]
async fn star_allows_every_origin() {
    let s = TestServer::open_with(&[("CORS_ORIGINS", "*")]).await;
    for origin in [APP, STRANGER, "null"] {
        open_from(&s, Some(origin)).await.unwrap();
    }
}
