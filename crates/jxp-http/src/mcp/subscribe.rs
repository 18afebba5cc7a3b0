//! `resources/subscribe` on `jxp://<model>` or `jxp://<model>/<id>`: each subscription is a
//! connection of the realtime hub, authenticated with the request's credentials and
//! subscribed as a WebSocket would be, so which changes reach it is decided by the hub's one
//! delivery check (read permission on the document, owner rules, read hooks). Its outlet turns
//! each event into `notifications/resources/updated` naming the document's URI.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jxp_core::{
    CloseReason, Connection, Hub, Outbound, Outlet, PushError, SubscribeError, SubscribeOk,
    SubscribeRequest,
};
use jxp_model::sync::lock;
use rmcp::service::{Peer, RoleServer};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::McpCaller;
use crate::AppState;

/// Why a subscribe was refused; the text is what the client sees.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SubscribeFailed {
    #[error("not a document resource: use jxp://<model> or jxp://<model>/<id>")]
    BadUri,
    #[error("Unknown model {0}")]
    UnknownModel(String),
    #[error("subscribing needs credentials")]
    Anonymous,
    #[error("too many realtime connections; try again later")]
    Busy,
    #[error("{0}")]
    Refused(SubscribeError),
    #[error("the realtime hub has stopped")]
    Stopped,
}

/// A resource URI a subscription may name: a model's slug and maybe a document id.
pub(crate) fn parse_uri(uri: &str) -> Result<(&str, Option<&str>), SubscribeFailed> {
    let rest = uri.strip_prefix("jxp://").ok_or(SubscribeFailed::BadUri)?;
    let (slug, id) = match rest.split_once('/') {
        Some((slug, id)) => (slug, Some(id)),
        None => (rest, None),
    };
    if slug.is_empty() || id.is_some_and(|i| i.is_empty() || i.contains('/')) {
        return Err(SubscribeFailed::BadUri);
    }
    Ok((slug, id))
}

/// One MCP session's subscriptions, by URI. Dropped with the session, which disconnects them.
#[derive(Default)]
pub(crate) struct Subscriptions {
    by_uri: Mutex<HashMap<String, Subscription>>,
}

/// A hub connection and the task that forwards its events to the client.
struct Subscription {
    _conn: Connection,
    task: JoinHandle<()>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Subscriptions {
    /// Subscribes the session to `uri` (already checked to name a model the caller is shown).
    pub(crate) async fn add(
        &self,
        state: &AppState,
        caller: &McpCaller,
        uri: &str,
        peer: Peer<RoleServer>,
    ) -> Result<(), SubscribeFailed> {
        if lock(&self.by_uri).contains_key(uri) {
            return Ok(());
        }
        let (slug, id) = parse_uri(uri)?;
        if caller.creds == jxp_core::Credentials::None {
            return Err(SubscribeFailed::Anonymous);
        }
        let hub = state.app.hub();
        let (tx, rx) = mpsc::channel(hub.send_queue());
        let outlet = Arc::new(Forward {
            tx: Mutex::new(Some(tx)),
        });
        let client_id = Hub::new_client_id().map_err(|_| SubscribeFailed::Stopped)?;
        let conn = hub
            .connect(client_id, outlet)
            .map_err(|_| SubscribeFailed::Stopped)?
            .ok_or(SubscribeFailed::Busy)?;
        state
            .app
            .authenticate_connection(&conn, &caller.creds, &caller.client)
            .await
            .map_err(|_| SubscribeFailed::Refused(SubscribeError::NotAuthenticated))?;
        let (answer, answered) = oneshot::channel();
        let respond: jxp_core::Responder = Box::new(move |result| {
            let _ = answer.send(result);
            String::new()
        });
        let req = SubscribeRequest {
            model: slug.to_owned(),
            id: id.map(str::to_owned),
            filter: None,
            since: None,
            enter_leave: false,
        };
        conn.subscribe(req, respond)
            .map_err(|_| SubscribeFailed::Stopped)?;
        match answered.await {
            Ok(Ok(SubscribeOk::Subscribed | SubscribeOk::AlreadySubscribed)) => {}
            Ok(Err(e)) => return Err(SubscribeFailed::Refused(e)),
            Err(_) => return Err(SubscribeFailed::Stopped),
        }
        let task = tokio::spawn(forward(rx, slug.to_owned(), peer));
        lock(&self.by_uri).insert(uri.to_owned(), Subscription { _conn: conn, task });
        Ok(())
    }

    /// Ends the subscription to `uri`; whether there was one.
    pub(crate) fn remove(&self, uri: &str) -> bool {
        let removed = lock(&self.by_uri).remove(uri);
        removed.is_some()
    }
}

/// Sends the client one `notifications/resources/updated` per event, until the session or
/// the subscription ends.
async fn forward(mut rx: mpsc::Receiver<Arc<str>>, slug: String, peer: Peer<RoleServer>) {
    while let Some(body) = rx.recv().await {
        let Some(id) = event_id(&body) else { continue };
        let uri = format!("jxp://{slug}/{id}");
        if peer
            .notify_resource_updated(rmcp::model::ResourceUpdatedNotificationParam::new(uri))
            .await
            .is_err()
        {
            break;
        }
    }
}

/// The document id an event body is about.
fn event_id(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    v.get("item")?.get("_id")?.as_str().map(str::to_owned)
}

/// The hub's outlet for one subscription: events go to its forwarding task; replies, pings
/// and de-authentication mean nothing to an MCP client.
struct Forward {
    tx: Mutex<Option<mpsc::Sender<Arc<str>>>>,
}

impl Outlet for Forward {
    fn push(&self, item: Outbound) -> Result<(), PushError> {
        let Outbound::Event(body) = item else {
            return Ok(());
        };
        let guard = lock(&self.tx);
        let tx = guard.as_ref().ok_or(PushError::Closed)?;
        tx.try_send(body).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => PushError::Full,
            mpsc::error::TrySendError::Closed(_) => PushError::Closed,
        })
    }

    fn close(&self, _reason: CloseReason) {
        lock(&self.tx).take();
    }
}

// Tests only: an unwrap here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_uris() {
        assert_eq!(parse_uri("jxp://post").unwrap(), ("post", None));
        assert_eq!(parse_uri("jxp://post/abc").unwrap(), ("post", Some("abc")));
        for bad in [
            "jxp://",
            "post",
            "jxp://post/",
            "jxp://post/a/b",
            "http://post",
        ] {
            assert!(parse_uri(bad).is_err(), "{bad}");
        }
        assert_eq!(
            event_id(r#"{"event":"put","item":{"_id":"x1","a":1}}"#).as_deref(),
            Some("x1")
        );
    }
}
