//! The handles on the hub's shards: [`Hub`] (shared through the app) and one [`Connection`]
//! per socket, which send its shard commands; and what a connection's authentication hands
//! the hub.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::{mpsc, oneshot};

use super::outlet::{Outlet, Responder, SubscribeError, SubscribeRequest};
use crate::error::CoreError;
use crate::identity::Identity;
use crate::secret::random_token;

/// Limits of the realtime feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealtimeSettings {
    /// Open connections at most; more are refused.
    pub max_connections: usize,
    /// Frames queued per connection before it counts as too slow and is closed.
    pub send_queue: usize,
    /// Subscriptions per connection at most.
    pub max_subscriptions: usize,
    /// Hub shards: each owns its share of the connections and delivers every change to them,
    /// so the fan-out of one change runs on this many threads. One per core by default.
    pub shards: usize,
}

impl Default for RealtimeSettings {
    fn default() -> Self {
        RealtimeSettings {
            max_connections: 10_000,
            send_queue: 1024,
            max_subscriptions: 1000,
            shards: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

pub(crate) type ConnId = u64;

/// What the read hooks let one identity see, per model that has them: a filter its events
/// must match, or `None` when a hook refused the identity outright. Computed when a socket
/// authenticates, since the hub cannot await a hook per event.
pub(crate) type ReadLimits = Vec<(String, Option<jxp_query::Filter>)>;

/// The credential a connection authenticated with, for revocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CredentialTrace {
    pub token_hash: Option<String>,
    pub key_hash: Option<String>,
    /// SHA-256 of the stored password hash at authentication time.
    pub password_fp: String,
    pub expires_ms: Option<i64>,
}

pub(crate) enum HubCmd {
    Connect {
        id: ConnId,
        outlet: Arc<dyn Outlet>,
    },
    Disconnect {
        id: ConnId,
    },
    Auth {
        id: ConnId,
        identity: Identity,
        trace: CredentialTrace,
        limits: ReadLimits,
        reply: oneshot::Sender<()>,
    },
    Subscribe {
        id: ConnId,
        req: SubscribeRequest,
        respond: Responder,
    },
    Unsubscribe {
        id: ConnId,
        req: SubscribeRequest,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// A page of the change log for a `since` replay, read off the hub task.
    ReplayPage {
        id: ConnId,
        key: String,
        token: u64,
        page: Result<super::hub::Page, SubscribeError>,
    },
    /// The connection's queue drained enough for a replay to go on.
    ReplayDrained {
        id: ConnId,
        key: String,
        token: u64,
    },
    PingAll,
    CloseAll,
}

/// The hub's handle: cheap to clone, shared through `App`. A connection belongs to one shard
/// (its id modulo the shard count) for its whole life, and every command about it goes to
/// that shard, in order.
#[derive(Clone)]
pub struct Hub {
    shards: Arc<[mpsc::UnboundedSender<HubCmd>]>,
    next_id: Arc<AtomicU64>,
    /// Connections open now, over every shard: what `max_connections` limits.
    open: Arc<AtomicUsize>,
    settings: RealtimeSettings,
}

/// One connection's handle on the hub. Dropping it disconnects.
pub struct Connection {
    id: ConnId,
    /// A random 32-hex id the client sees.
    pub client_id: String,
    shard: mpsc::UnboundedSender<HubCmd>,
    open: Arc<AtomicUsize>,
}

fn stopped() -> CoreError {
    CoreError::Unavailable("the realtime hub has stopped".into())
}

impl Hub {
    pub(crate) fn new(
        shards: Vec<mpsc::UnboundedSender<HubCmd>>,
        settings: RealtimeSettings,
    ) -> Self {
        Hub {
            shards: shards.into(),
            next_id: Arc::new(AtomicU64::new(1)),
            open: Arc::new(AtomicUsize::new(0)),
            settings,
        }
    }

    /// Sends every shard the command `make` builds.
    fn broadcast(&self, make: impl Fn() -> HubCmd) {
        for shard in self.shards.iter() {
            let _ = shard.send(make());
        }
    }

    /// Pushes a ping to every connection, in order with its other frames; the outlet closes a
    /// connection whose client has been silent too long instead.
    pub fn ping_all(&self) {
        self.broadcast(|| HubCmd::PingAll);
    }

    /// Closes every connection, and any that connects from now on, as the server shuts down.
    pub fn close_all(&self) {
        self.broadcast(|| HubCmd::CloseAll);
    }

    /// Frames an outlet may hold waiting before its connection counts as too slow.
    pub fn send_queue(&self) -> usize {
        self.settings.send_queue.max(1)
    }

    /// A fresh 32-hex id for a connection, as its client sees it.
    pub fn new_client_id() -> Result<String, CoreError> {
        Ok(random_token()?.chars().take(32).collect())
    }

    /// Registers a connection whose frames go to `outlet`; `None` when the server holds
    /// `max_connections` already.
    pub fn connect(
        &self,
        client_id: String,
        outlet: Arc<dyn Outlet>,
    ) -> Result<Option<Connection>, CoreError> {
        let max = self.settings.max_connections;
        let admitted = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            return Ok(None);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // Counted from here: dropping the handle, even on the error below, uncounts it.
        let conn = Connection {
            id,
            client_id,
            shard: self.shard_of(id).clone(),
            open: self.open.clone(),
        };
        conn.send(HubCmd::Connect { id, outlet })?;
        Ok(Some(conn))
    }

    fn shard_of(&self, id: ConnId) -> &mpsc::UnboundedSender<HubCmd> {
        let n = self.shards.len() as u64;
        // `new` is never handed an empty list; the modulo keeps the index in range.
        &self.shards[usize::try_from(id % n.max(1)).unwrap_or(0)]
    }
}

impl Connection {
    fn send(&self, cmd: HubCmd) -> Result<(), CoreError> {
        self.shard.send(cmd).map_err(|_| stopped())
    }

    /// Makes `identity` the connection's identity (re-checking its subscriptions).
    pub(crate) async fn set_identity(
        &self,
        identity: Identity,
        trace: CredentialTrace,
        limits: ReadLimits,
    ) -> Result<(), CoreError> {
        let (reply, done) = oneshot::channel();
        self.send(HubCmd::Auth {
            id: self.id,
            identity,
            trace,
            limits,
            reply,
        })?;
        done.await.map_err(|_| stopped())
    }

    /// Subscribes; the hub queues the reply `respond` formats, then the events.
    pub fn subscribe(&self, req: SubscribeRequest, respond: Responder) -> Result<(), CoreError> {
        self.send(HubCmd::Subscribe {
            id: self.id,
            req,
            respond,
        })
    }

    /// Ends exactly the subscription `req` names; `Err(message)` if there was none.
    pub async fn unsubscribe(
        &self,
        req: SubscribeRequest,
    ) -> Result<Result<(), String>, CoreError> {
        let (reply, done) = oneshot::channel();
        self.send(HubCmd::Unsubscribe {
            id: self.id,
            req,
            reply,
        })?;
        done.await.map_err(|_| stopped())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.shard.send(HubCmd::Disconnect { id: self.id });
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}
